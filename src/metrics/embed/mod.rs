//! Code embeddings for the semantic metrics: the [`Embedder`] trait, encoders run with candle from a local
//! Hugging Face folder ([`load`]: BERT-family models such as the default all-MiniLM-L6-v2, and the gte-v1.5
//! "NewModel" family of SFR-Embedding-Code-400M_R), and a persistent cache of vectors keyed by code sha256.

mod bert;
mod cache;
mod folder;
mod gelu;
mod gte;
mod layers;
#[cfg(test)]
mod recorded;

pub use bert::BertEmbedder;
pub use cache::{EmbeddingCache, key as text_key};
pub use gte::GteEmbedder;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::BadInput;

/// Turns programs into unit-length vectors. Implementations are deterministic: the same text always gets the
/// same vector, which is what makes the cache sound.
pub trait Embedder: Send + Sync {
    /// Names the model and every setting that changes its vectors (weights hash, pooling, length limit);
    /// cached vectors are only reused under the same id.
    fn id(&self) -> &str;

    /// One vector per text, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}

/// Load the encoder in `dir`, by the architecture its `config.json` names.
pub fn load(dir: &Path) -> Result<Box<dyn Embedder>> {
    match folder::architecture(dir)?.as_str() {
        "bert" | "BertModel" => Ok(Box::new(BertEmbedder::load(dir)?)),
        "new" | "NewModel" => Ok(Box::new(GteEmbedder::load(dir)?)),
        other => Err(BadInput(format!(
            "{}: model_type {other:?} is not supported; the embedder runs BERT-family models (model_type \"bert\") \
             and gte-v1.5 / SFR-Embedding-Code models (model_type \"new\")",
            dir.join("config.json").display()
        ))
        .into()),
    }
}

/// The default model folder: all-MiniLM-L6-v2 as unpacked by `runtimes/setup.sh`.
pub fn default_model_dir() -> PathBuf {
    crate::sandbox::Runtime::default_dir().join("all-MiniLM-L6-v2")
}

/// Embed `texts` through `cache`: only texts whose vectors are not cached go to the model (in batches of
/// `batch`, calling `progress` with the number done after each), and their vectors are appended to the cache.
pub fn embed_cached(
    embedder: &dyn Embedder,
    cache: &mut EmbeddingCache,
    texts: &[&str],
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    let keys: Vec<[u8; 32]> = texts.iter().map(|t| cache::key(t)).collect();
    let batches = batches_of_missing(cache, texts, &keys, batch);
    let mut done = texts.len() - batches.iter().map(Vec::len).sum::<usize>();
    progress(done);
    for chunk in batches {
        let batch_texts: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
        let vectors = embedder.embed(&batch_texts)?;
        for (&i, vector) in chunk.iter().zip(vectors) {
            cache.insert(keys[i], vector)?;
        }
        done += chunk.len();
        progress(done);
    }
    cache.flush()?;
    Ok(keys.iter().map(|k| cache.get(k).expect("every vector was computed").to_vec()).collect())
}

/// The texts (indices into `texts`) whose vectors `cache` lacks, each distinct text once, in the batches
/// [`embed_cached`] embeds them in. A text's vector can differ in its last bits with the batch it is padded in,
/// so work shared out by batch gives the same vectors as one run.
pub fn missing_batches(cache: &EmbeddingCache, texts: &[&str], batch: usize) -> Vec<Vec<usize>> {
    let keys: Vec<[u8; 32]> = texts.iter().map(|t| cache::key(t)).collect();
    batches_of_missing(cache, texts, &keys, batch)
}

/// [`missing_batches`], with each text's cache key (`keys[i]` of `texts[i]`) already computed.
fn batches_of_missing(cache: &EmbeddingCache, texts: &[&str], keys: &[[u8; 32]], batch: usize) -> Vec<Vec<usize>> {
    // Identical programs (common in real logs) are embedded once.
    let mut seen = std::collections::HashSet::new();
    let mut missing: Vec<usize> =
        (0..texts.len()).filter(|&i| cache.get(&keys[i]).is_none() && seen.insert(keys[i])).collect();
    // Batches of similar length waste little on padding.
    missing.sort_by_key(|&i| texts[i].len());
    missing.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::semantics::cosine_distance;

    #[test]
    fn a_tiny_random_gte_model_loads_and_embeds_deterministically() {
        let dir = tempfile::tempdir().unwrap();
        gte::write_tiny_model(dir.path(), &default_model_dir()).expect("run runtimes/setup.sh for the tokenizer");
        let model = load(dir.path()).unwrap();
        assert!(model.id().starts_with("gte-") && model.id().ends_with("-cls-512"), "{}", model.id());
        let texts = ["def f(x):\n    return x + 1\n", "print('hello')", ""];
        let batch = model.embed(&texts).unwrap();
        assert_eq!(batch.len(), 3);
        for v in &batch {
            assert_eq!(v.len(), 32);
            assert!((v.iter().map(|x| x * x).sum::<f32>().sqrt() - 1.0).abs() < 1e-4);
        }
        let alone = model.embed(&texts[..1]).unwrap();
        assert!(cosine_distance(&alone[0], &batch[0]) < 1e-5, "padding changed a vector");
        assert!(cosine_distance(&batch[0], &batch[1]) > 1e-4);
        assert_eq!(load(dir.path()).unwrap().embed(&texts).unwrap(), batch);
    }
}
