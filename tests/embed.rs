//! The default embedder (all-MiniLM-L6-v2, fetched by runtimes/setup.sh) run with candle, and the cache.

use std::sync::atomic::{AtomicUsize, Ordering};

use studentsim::metrics::embed::{self, BertEmbedder, Embedder, EmbeddingCache};
use studentsim::metrics::semantics::cosine_distance;

fn model() -> BertEmbedder {
    BertEmbedder::load(&embed::default_model_dir()).unwrap_or_else(|e| panic!("{e:#} (run runtimes/setup.sh)"))
}

const LOOP: &str = "def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n";
const LOOP_RENAMED: &str =
    "def total(items):\n    acc = 0\n    for item in items:\n        acc += item\n    return acc\n";
const UNRELATED: &str =
    "class BankAccount:\n    def __init__(self, owner):\n        self.owner = owner\n        self.balance = 0\n";

#[test]
fn vectors_are_unit_length_deterministic_and_meaningful() {
    let model = model();
    assert!(model.id().starts_with("bert-") && model.id().ends_with("-mean-256"), "{}", model.id());
    let long = "x = 1\n".repeat(400); // beyond the 256-token limit: truncated, not an error
    let v = model.embed(&[LOOP, LOOP_RENAMED, UNRELATED, "", &long]).unwrap();
    assert_eq!(v.len(), 5);
    for vector in &v {
        assert_eq!(vector.len(), 384);
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    // Batching and padding do not change a vector.
    let alone = model.embed(&[LOOP]).unwrap();
    assert!(cosine_distance(&alone[0], &v[0]) < 1e-5);
    let renamed = cosine_distance(&v[0], &v[1]);
    let unrelated = cosine_distance(&v[0], &v[2]);
    assert!(renamed < unrelated, "renamed {renamed} vs unrelated {unrelated}");
}

/// Counts how many texts reach the model.
struct Counting<'a>(&'a BertEmbedder, AtomicUsize);

impl Embedder for Counting<'_> {
    fn id(&self) -> &str {
        self.0.id()
    }
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        self.1.fetch_add(texts.len(), Ordering::Relaxed);
        self.0.embed(texts)
    }
}

#[test]
fn the_cache_embeds_each_distinct_program_once() {
    let model = model();
    let counting = Counting(&model, AtomicUsize::new(0));
    let dir = tempfile::tempdir().unwrap();
    let texts = [LOOP, UNRELATED, LOOP, LOOP_RENAMED, UNRELATED];
    let mut cache = EmbeddingCache::open(dir.path(), counting.id()).unwrap();
    let first = embed::embed_cached(&counting, &mut cache, &texts, 2, |_| {}).unwrap();
    assert_eq!(counting.1.load(Ordering::Relaxed), 3, "three distinct programs");
    assert_eq!(first[0], first[2]);

    let mut reopened = EmbeddingCache::open(dir.path(), counting.id()).unwrap();
    let again = embed::embed_cached(&counting, &mut reopened, &texts, 2, |_| {}).unwrap();
    assert_eq!(counting.1.load(Ordering::Relaxed), 3, "everything came from the cache");
    assert_eq!(again, first);
}

#[test]
fn a_folder_that_is_not_a_bert_model_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let error = embed::load(dir.path()).err().unwrap().to_string();
    assert!(error.contains("config.json") && error.contains("no such file"), "{error}");
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}"#)
        .unwrap();
    let error = embed::load(dir.path()).err().unwrap().to_string();
    assert!(error.contains("\"qwen2\" is not supported"), "{error}");
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "bert", "max_position_embeddings": 512}"#)
        .unwrap();
    let error = embed::load(dir.path()).err().unwrap().to_string();
    assert!(error.contains("model.safetensors: no such file"), "{error}");
}
