//! The in-process Qwen2 backend on tiny random checkpoints with the real Qwen2.5 tokenizer (fetched by
//! runtimes/setup.sh): the model fixes against the unbatched f32 path and upstream candle, the LoRA merge
//! against a hand-merged copy, GGUF against the safetensors model, seeded sampling, and `rollout stream`
//! through the real sandbox.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use candle_core::quantized::GgmlDType;
use candle_core::{Device, IndexOp, Tensor};
use common::{EXAMPLES, bad_input, block_on, grader, json_lines, studentsim};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use studentsim::generate::qwen::engine::{Decoder, Engine};
use studentsim::generate::qwen::gguf;
use studentsim::generate::qwen::model::Qwen2;
use studentsim::generate::qwen::random::{self, Shape};
use studentsim::generate::qwen::sampler::Sampling;
use studentsim::generate::qwen::{Layout, LocalModel, SamplingOverrides, Source, load_folder};
use studentsim::generate::{Generator, Request};
use studentsim::problems::{Problem, Registry};
use studentsim::sandbox::Runtime;

const SEED: u64 = 11;

fn tokenizer() -> PathBuf {
    let path = studentsim::generate::qwen::fetched_tokenizer(&Runtime::default_dir());
    assert!(path.is_file(), "{} is missing (run runtimes/setup.sh)", path.display());
    path
}

/// Test files, written once per test run under cargo's scratch folder for integration tests (a static temp
/// dir would never be removed): the tiny model folder and its GGUF copies.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qwen-fixtures");
        random::write_folder(&dir.join("tiny"), &Shape::TINY, SEED, &tokenizer()).unwrap();
        random::write_gguf(&dir.join("tiny-f32.gguf"), &Shape::TINY, SEED, GgmlDType::F32).unwrap();
        random::write_gguf(&dir.join("tiny-q4_0.gguf"), &Shape::TINY, SEED, GgmlDType::Q4_0).unwrap();
        random::write_gguf(&dir.join("tiny-q8_0.gguf"), &Shape::TINY, SEED, GgmlDType::Q8_0).unwrap();
        dir
    })
}

fn tiny() -> PathBuf {
    fixtures().join("tiny")
}

fn model(dir: &Path, adapter: Option<&Path>) -> Qwen2 {
    load_folder(dir, adapter, &Device::Cpu).unwrap().0
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

const PROMPTS: [&[u32]; 3] =
    [&[9707, 11, 1879, 0, 576, 4226, 374], &[750, 2629, 1445], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]];

#[test]
fn left_padded_batches_match_each_sequence_alone() {
    let mut batched = model(&tiny(), None);
    let rows: Vec<Vec<u32>> = PROMPTS.iter().map(|p| p.to_vec()).collect();
    let mut logits = batched.prefill(&rows, 32).unwrap();
    let mut alone: Vec<(Qwen2, Tensor)> = rows
        .iter()
        .map(|r| {
            let mut m = model(&tiny(), None);
            let l = m.prefill(std::slice::from_ref(r), 32).unwrap();
            (m, l)
        })
        .collect();
    for step in 0..4u32 {
        for (i, (_, l)) in alone.iter().enumerate() {
            let d = max_diff(&logits.i(i).unwrap(), &l.i(0).unwrap());
            assert!(d < 1e-4, "row {i} step {step}: batched and unbatched logits differ by {d}");
        }
        let next: Vec<u32> = (0..rows.len() as u32).map(|i| 100 + 7 * i + step).collect();
        logits = batched.step(&next).unwrap();
        for (i, (m, l)) in alone.iter_mut().enumerate() {
            *l = m.step(&next[i..=i]).unwrap();
        }
    }
}

#[test]
fn a_new_prefill_forgets_the_previous_sequence() {
    let mut reused = model(&tiny(), None);
    reused.prefill(&[PROMPTS[0].to_vec()], 32).unwrap();
    reused.step(&[42]).unwrap();
    let again = reused.prefill(&[PROMPTS[1].to_vec()], 32).unwrap();
    let fresh = model(&tiny(), None).prefill(&[PROMPTS[1].to_vec()], 32).unwrap();
    assert!(max_diff(&again, &fresh) < 1e-6);
}

#[test]
fn sharded_weights_load_like_one_file() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("sharded");
    std::fs::create_dir_all(&dir).unwrap();
    // A newer transformers' config layout: rope_theta under rope_parameters, sliding_window null.
    let mut config = Shape::TINY.config_json();
    config.as_object_mut().unwrap().remove("rope_theta");
    config["rope_parameters"] = serde_json::json!({"rope_type": "default", "rope_theta": 1_000_000.0});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let mut map = serde_json::Map::new();
    for (name, tensor) in random::weights(&Shape::TINY, SEED).unwrap() {
        let shard = if name.starts_with("model.layers.1.") { 2 } else { 1 };
        map.insert(name.clone(), format!("model-0000{shard}-of-00002.safetensors").into());
        if shard == 1 { first.push((name, tensor)) } else { second.push((name, tensor)) }
    }
    candle_core::safetensors::save(&first.into_iter().collect(), dir.join("model-00001-of-00002.safetensors")).unwrap();
    candle_core::safetensors::save(&second.into_iter().collect(), dir.join("model-00002-of-00002.safetensors"))
        .unwrap();
    std::fs::write(dir.join("model.safetensors.index.json"), serde_json::json!({"weight_map": map}).to_string())
        .unwrap();
    let prompt = [PROMPTS[1].to_vec()];
    let sharded = model(&dir, None).prefill(&prompt, 8).unwrap();
    assert!(max_diff(&sharded, &model(&tiny(), None).prefill(&prompt, 8).unwrap()) < 1e-6);
}

/// Our prefill and two decoding steps on PROMPTS[2], each step's logits summarized: the log-sum-exp over the
/// vocabulary, then the logits of every 4,999th token.
fn logit_summaries(step: impl FnMut(usize) -> Tensor) -> Vec<Vec<f32>> {
    (0..3)
        .map(step)
        .map(|logits| {
            let row = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let top = row.iter().copied().fold(f32::MIN, f32::max);
            let log_sum_exp = top + row.iter().map(|x| (x - top).exp()).sum::<f32>().ln();
            std::iter::once(log_sum_exp).chain(row.iter().step_by(4_999).copied()).collect()
        })
        .collect()
}

/// The tokens the two decoding steps feed, after PROMPTS[2].
const DECODED: [u32; 2] = [500, 77];

// The recordings' reader, shared with the encoders' unit tests.
#[path = "../src/metrics/embed/recorded.rs"]
#[cfg_attr(
    feature = "reference-models",
    expect(dead_code, reason = "the encoders' hidden-state comparison is for their own reference tests")
)]
mod recorded;

/// Our Qwen2 gives the logits candle-transformers' `qwen2` gave (recorded by the reference test below).
#[test]
fn one_sequence_matches_upstream_candle_qwen2s_recorded_logits() {
    let mut ours = model(&tiny(), None);
    let summaries = logit_summaries(|i| match i {
        0 => ours.prefill(&[PROMPTS[2].to_vec()], 32).unwrap(),
        _ => ours.step(&[DECODED[i - 1]]).unwrap(),
    });
    recorded::assert_close("qwen2-tiny", &summaries);
}

/// Our Qwen2 gives upstream candle's logits in prefill and decoding, and the recording is upstream's.
#[cfg(feature = "reference-models")]
#[test]
fn one_sequence_matches_upstream_candle_qwen2() {
    use candle_core::DType;
    use candle_nn::VarBuilder;
    use candle_transformers::models::qwen2;

    let mut config = Shape::TINY.config_json();
    config["sliding_window"] = 4096.into();
    config["max_window_layers"] = 2.into();
    let config: qwen2::Config = serde_json::from_value(config).unwrap();
    let files = [tiny().join("model.safetensors")];
    // SAFETY: the tests' own file, which nothing modifies while it is mapped.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, DType::F32, &Device::Cpu) }.unwrap();
    let mut upstream = qwen2::ModelForCausalLM::new(&config, vb).unwrap();
    let mut ours = model(&tiny(), None);

    let prompt = PROMPTS[2];
    let forward = |upstream: &mut qwen2::ModelForCausalLM, ids: &[u32], offset: usize| {
        let ids = Tensor::new(ids, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        upstream.forward(&ids, offset).unwrap().squeeze(1).unwrap()
    };
    let theirs = forward(&mut upstream, prompt, 0);
    let mine = ours.prefill(&[prompt.to_vec()], 32).unwrap();
    assert!(max_diff(&theirs, &mine) < 1e-4);
    let mut steps = vec![theirs];
    for (offset, token) in [prompt.len(), prompt.len() + 1].into_iter().zip(DECODED) {
        let theirs = forward(&mut upstream, &[token], offset);
        let mine = ours.step(&[token]).unwrap();
        assert!(max_diff(&theirs, &mine) < 1e-4, "decode at {offset}");
        steps.push(theirs);
    }
    recorded::record_or_check("qwen2-tiny", &logit_summaries(|i| steps[i].clone()));
}

/// A random PEFT adapter folder on layers' q_proj, v_proj and down_proj.
fn write_adapter(
    dir: &Path,
    r: usize,
    alpha: f64,
    extra_config: serde_json::Value,
    in_dim_fix: usize,
) -> BTreeMap<String, (Tensor, Tensor)> {
    std::fs::create_dir_all(dir).unwrap();
    let s = Shape::TINY;
    let kv = s.kv_heads * s.hidden / s.heads;
    let modules = [
        ("model.layers.0.self_attn.q_proj", s.hidden, s.hidden),
        ("model.layers.0.self_attn.v_proj", kv, s.hidden),
        ("model.layers.1.mlp.down_proj", s.hidden, s.intermediate),
    ];
    // Seeded, so every run checks the same adapter (candle's `randn` drew a new one each run, and some of them
    // failed the closeness check of `a_lora_adapter_on_a_gguf_reaches_prefill_and_decoding`). Uniform in ±0.5:
    // about the 0.3 standard deviation the draws had.
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut random = |rows: usize, columns: usize| {
        let values: Vec<f32> = (0..rows * columns).map(|_| rng.random_range(-0.5f32..0.5)).collect();
        Tensor::from_vec(values, (rows, columns), &Device::Cpu).unwrap()
    };
    let mut pairs = BTreeMap::new();
    let mut tensors = BTreeMap::new();
    for (i, (module, out, inp)) in modules.into_iter().enumerate() {
        let a = random(r, inp + in_dim_fix);
        let b = random(out, r);
        // PEFT's own key layout; one key uses the older `.default` infix.
        let infix = if i == 2 { ".default" } else { "" };
        tensors.insert(format!("base_model.model.{module}.lora_A{infix}.weight"), a.clone());
        tensors.insert(format!("base_model.model.{module}.lora_B{infix}.weight"), b.clone());
        pairs.insert(module.to_owned(), (a, b));
    }
    candle_core::safetensors::save(&tensors.into_iter().collect(), dir.join("adapter_model.safetensors")).unwrap();
    let mut config = serde_json::json!({"peft_type": "LORA", "r": r, "lora_alpha": alpha, "lora_dropout": 0.05,
        "target_modules": ["q_proj", "v_proj", "down_proj"], "bias": "none", "use_dora": false,
        "modules_to_save": null, "task_type": "CAUSAL_LM", "fan_in_fan_out": false});
    config.as_object_mut().unwrap().extend(extra_config.as_object().unwrap().clone());
    std::fs::write(dir.join("adapter_config.json"), config.to_string()).unwrap();
    pairs
}

/// The tiny model with `W += scale · B·A` done by hand, element by element in f64.
fn hand_merged(dir: &Path, pairs: &BTreeMap<String, (Tensor, Tensor)>, scale: f64) {
    let mut weights = random::weights(&Shape::TINY, SEED).unwrap();
    for (module, (a, b)) in pairs {
        let name = format!("{module}.weight");
        let w: Vec<Vec<f32>> = weights[&name].to_vec2().unwrap();
        let (a, b): (Vec<Vec<f32>>, Vec<Vec<f32>>) = (a.to_vec2().unwrap(), b.to_vec2().unwrap());
        let merged: Vec<f32> = (0..w.len())
            .flat_map(|o| {
                let (w, a, b) = (&w, &a, &b);
                (0..w[0].len()).map(move |i| {
                    let delta: f64 = (0..a.len()).map(|k| f64::from(b[o][k]) * f64::from(a[k][i])).sum();
                    (f64::from(w[o][i]) + scale * delta) as f32
                })
            })
            .collect();
        weights.insert(name, Tensor::from_vec(merged, (w.len(), w[0].len()), &Device::Cpu).unwrap());
    }
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(tiny().join("config.json"), dir.join("config.json")).unwrap();
    candle_core::safetensors::save(&weights.into_iter().collect(), dir.join("model.safetensors")).unwrap();
}

#[test]
fn a_lora_adapter_merges_like_a_hand_merged_copy() {
    let work = tempfile::tempdir().unwrap();
    for (name, extra, scale) in
        [("plain", serde_json::json!({}), 16.0 / 4.0), ("rslora", serde_json::json!({"use_rslora": true}), 16.0 / 2.0)]
    {
        let adapter = work.path().join(name);
        let pairs = write_adapter(&adapter, 4, 16.0, extra, 0);
        let reference = work.path().join(format!("{name}-merged"));
        hand_merged(&reference, &pairs, scale);
        let prompt = [PROMPTS[0].to_vec()];
        let merged = model(&tiny(), Some(&adapter)).prefill(&prompt, 16).unwrap();
        let by_hand = model(&reference, None).prefill(&prompt, 16).unwrap();
        let base = model(&tiny(), None).prefill(&prompt, 16).unwrap();
        assert!(max_diff(&merged, &by_hand) < 1e-4, "{name}: merged at load vs by hand");
        assert!(max_diff(&merged, &base) > 1e-2, "{name}: the adapter changes the model");
    }
}

/// An adapter on a GGUF is merged into the dequantized copy that prefill multiplies and kept as a side path
/// beside the quantized copy that decoding reads, on our kernels (Q8_0, the side paths' products fused into the
/// layer's pass) and on candle's (Q4_0, added after it). A prompt's last logits from prefill and from a
/// decoding step must then agree about as closely as they do without the adapter, though the adapter moves
/// them far more than that.
#[test]
fn a_lora_adapter_on_a_gguf_reaches_prefill_and_decoding() {
    let work = tempfile::tempdir().unwrap();
    let adapter = work.path().join("adapter");
    write_adapter(&adapter, 4, 16.0, serde_json::json!({}), 0);
    let prompt = PROMPTS[0];
    let (head, last) = prompt.split_at(prompt.len() - 1);
    for file in ["tiny-q8_0.gguf", "tiny-q4_0.gguf"] {
        let path = fixtures().join(file);
        let logits = |adapter: Option<&Path>| {
            let prefilled = gguf::load_adapted(&path, adapter).unwrap().prefill(&[prompt.to_vec()], 16).unwrap();
            let mut decoding = gguf::load_adapted(&path, adapter).unwrap();
            decoding.prefill(&[head.to_vec()], 16).unwrap();
            (prefilled, decoding.step(last).unwrap())
        };
        let (base_prefilled, base_decoded) = logits(None);
        let (prefilled, decoded) = logits(Some(&adapter));
        let effect = max_diff(&prefilled, &base_prefilled);
        let quantization = max_diff(&base_prefilled, &base_decoded);
        let gap = max_diff(&prefilled, &decoded);
        assert!(
            effect > 10.0 * quantization,
            "{file}: the adapter moves the logits ({effect}) beyond quantization ({quantization})"
        );
        assert!(
            gap < 2.0 * quantization + 1e-3,
            "{file}: decoding carries the adapter as prefill does: {gap} (without it {quantization})"
        );
    }
}

#[test]
fn unsupported_or_mismatched_adapters_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let refused = |name: &str, extra: serde_json::Value, in_dim_fix: usize| -> String {
        let adapter = work.path().join(name);
        write_adapter(&adapter, 4, 8.0, extra, in_dim_fix);
        let error = load_folder(&tiny(), Some(&adapter), &Device::Cpu).err().expect("refused").to_string();
        assert!(error.contains(name) || error.contains("adapter"), "{error}");
        error
    };
    assert!(refused("dora", serde_json::json!({"use_dora": true}), 0).contains("DoRA"));
    assert!(refused("saved", serde_json::json!({"modules_to_save": ["lm_head"]}), 0).contains("modules_to_save"));
    assert!(refused("bias", serde_json::json!({"bias": "all"}), 0).contains("bias"));
    let mismatch = refused("mismatch", serde_json::json!({}), 8);
    assert!(mismatch.contains("does not fit the base weight [64, 64]"), "{mismatch}");
}

#[test]
fn gguf_runs_the_same_model() {
    let prompt = [PROMPTS[0].to_vec()];
    let full = model(&tiny(), None).prefill(&prompt, 16).unwrap();
    let mut f32_gguf = gguf::load(&fixtures().join("tiny-f32.gguf")).unwrap();
    let unquantized = f32_gguf.prefill(&prompt, 16).unwrap();
    assert!(max_diff(&full, &unquantized) < 1e-3, "an f32 GGUF computes what the safetensors model does");
    let mut q4 = gguf::load(&fixtures().join("tiny-q4_0.gguf")).unwrap();
    let quantized = q4.prefill(&prompt, 16).unwrap();
    let d = max_diff(&full, &quantized);
    assert!(d > 0.0 && d < 0.5, "Q4_0 is close, not equal: {d}");
    // Decoding continues from the cache.
    assert_eq!(q4.step(&[5]).unwrap().dims(), &[1, Shape::TINY.vocab]);
}

fn request(seed: u64) -> Request {
    let mut problem = Problem::scaffold("add-one");
    problem.statement = "Write add_one(x), which returns x + 1.".into();
    problem.todo = "def add_one(x):\n    \"\"\"\n    >>> add_one(1)\n    2\n    \"\"\"\n".into();
    Request { seed, ..Request::bare(Arc::new(problem)) }
}

#[test]
fn same_seed_same_text() {
    let overrides = SamplingOverrides { max_new_tokens: Some(24), ..SamplingOverrides::default() };
    let source = Source::Folder { dir: tiny(), adapter: None };
    let local = LocalModel::load("tiny", &source, Layout::FineTuned, &Device::Cpu, &overrides, 1).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let draw = |seed, n| rt.block_on(local.generate_many(&request(seed), n)).unwrap();
    let first = draw(5, 3);
    assert_eq!(first, draw(5, 3), "same seed, same samples");
    assert_ne!(first, draw(6, 3), "another seed, other samples");
    assert_ne!(first[0].code, first[1].code, "the samples of one request differ");
    assert!(first.iter().all(|g| g.prompt_sha256 == first[0].prompt_sha256));
    let gguf = Source::Gguf { file: fixtures().join("tiny-q4_0.gguf"), tokenizer: tokenizer(), adapter: None };
    let quantized = LocalModel::load("tiny-q4", &gguf, Layout::FineTuned, &Device::Cpu, &overrides, 1).unwrap();
    let a = rt.block_on(quantized.generate_many(&request(1), 2)).unwrap();
    assert_eq!(a, rt.block_on(quantized.generate_many(&request(1), 2)).unwrap());
}

/// Replays a fixed token sequence: each step's logits put all the weight on the next scripted token.
struct Scripted {
    script: Vec<u32>,
    next: usize,
}

impl Scripted {
    fn logits(&mut self, rows: usize) -> candle_core::Result<Tensor> {
        let mut one_hot = vec![0f32; Shape::TINY.vocab];
        one_hot[self.script[self.next.min(self.script.len() - 1)] as usize] = 30.0;
        self.next += 1;
        Tensor::from_vec(one_hot.repeat(rows), (rows, Shape::TINY.vocab), &Device::Cpu)
    }
}

impl Decoder for Scripted {
    fn max_positions(&self) -> usize {
        64
    }
    fn max_batch(&self) -> usize {
        usize::MAX
    }
    fn prefill(&mut self, rows: &[Vec<u32>], _: usize) -> candle_core::Result<Tensor> {
        self.next = 0;
        self.logits(rows.len())
    }
    fn step(&mut self, tokens: &[u32]) -> candle_core::Result<Tensor> {
        self.logits(tokens.len())
    }
}

#[test]
fn the_engine_stops_at_code_end_a_stop_token_or_the_limit() {
    let tokenizer = tokenizers::Tokenizer::from_file(tokenizer()).unwrap();
    let script = tokenizer.encode("<code>x = 1</code> and more<|im_end|>", false).unwrap().get_ids().to_vec();
    let greedy = Sampling { temperature: 0.0, max_new_tokens: 40, ..Sampling::default() };
    let im_end = tokenizer.token_to_id("<|im_end|>").unwrap();
    let mut engine = Engine {
        decoder: Box::new(Scripted { script: script.clone(), next: 0 }),
        tokenizer: Arc::new(tokenizer),
        sampling: greedy,
        stop_tokens: vec![im_end],
    };
    let done = engine.complete(&[(vec![1, 2, 3], 0), (vec![4, 5], 1)]).unwrap();
    assert_eq!(
        done[0].text, "<code>x = 1</code> and",
        "stops at the first token after the code that is no submit mark"
    );
    assert!(done[0].stopped && done[0] == done[1]);
    let marked = engine.tokenizer.encode("<code>x = 1</code> <SUBMIT> and more", false).unwrap().get_ids().to_vec();
    let mut marked_engine = Engine { decoder: Box::new(Scripted { script: marked, next: 0 }), ..engine };
    let done = marked_engine.complete(&[(vec![1, 2, 3], 0)]).unwrap();
    assert_eq!(done[0].text, "<code>x = 1</code> <SUBMIT>", "the mark after the code is read, then it stops");
    let mut engine = Engine { decoder: Box::new(Scripted { script: script.clone(), next: 0 }), ..marked_engine };

    engine.stop_tokens = vec![script[2]];
    let done = engine.complete(&[(vec![1, 2, 3], 0)]).unwrap();
    assert_eq!(done[0].tokens, script[..2], "a stop token ends the text and is not part of it");

    engine.stop_tokens = vec![im_end];
    engine.sampling.max_new_tokens = 3;
    let done = engine.complete(&[(vec![1, 2, 3], 0)]).unwrap();
    assert_eq!((done[0].tokens.len(), done[0].stopped), (3, false), "the token limit");

    let too_long = engine.complete(&[(vec![7; 64], 0)]).unwrap_err().to_string();
    assert!(too_long.contains("longer than the model's context of 64"), "{too_long}");
}

#[test]
fn different_prompts_decode_in_one_batch_as_they_do_alone() {
    let tokenizer = Arc::new(tokenizers::Tokenizer::from_file(tokenizer()).unwrap());
    let engine = |sampling| Engine {
        decoder: Box::new(model(&tiny(), None)),
        tokenizer: Arc::clone(&tokenizer),
        sampling,
        stop_tokens: vec![],
    };
    for sampling in [
        Sampling { temperature: 0.0, max_new_tokens: 12, ..Sampling::default() },
        Sampling { max_new_tokens: 12, ..Sampling::default() },
    ] {
        let rows: Vec<(Vec<u32>, u64)> = PROMPTS.iter().enumerate().map(|(i, p)| (p.to_vec(), i as u64)).collect();
        let together = engine(sampling.clone()).complete(&rows).unwrap();
        for (row, batched) in rows.iter().zip(&together) {
            let alone = engine(sampling.clone()).complete(std::slice::from_ref(row)).unwrap();
            assert_eq!(batched.tokens, alone[0].tokens, "temperature {}", sampling.temperature);
        }
    }
}

#[test]
fn concurrent_requests_share_batches() {
    let overrides = SamplingOverrides { max_new_tokens: Some(8), ..SamplingOverrides::default() };
    let source = Source::Folder { dir: tiny(), adapter: None };
    let local = Arc::new(LocalModel::load("tiny", &source, Layout::FineTuned, &Device::Cpu, &overrides, 6).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answers = rt.block_on(async {
        let tasks: Vec<_> = (0..5u64)
            .map(|seed| {
                let local = Arc::clone(&local);
                tokio::spawn(async move { local.generate_many(&request(seed), 2).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap().unwrap());
        }
        answers
    });
    assert!(answers.iter().all(|a| a.len() == 2 && a.iter().all(|g| !g.code.is_empty())));
    // Room for 6 rows: up to three requests of 2 samples each decode as one batch (three when they all arrive
    // within the batch window; at least two share one on a busy machine).
    let largest = local.largest_batch();
    assert!((2..=3).contains(&largest), "requests waiting together share a batch: largest {largest}");
}

/// The first streams of the examples, as a smaller rollout input.
fn few_streams(dir: &Path) -> PathBuf {
    let path = dir.join("few.jsonl");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLES)).unwrap();
    std::fs::write(&path, text.lines().take(12).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    path
}

#[test]
fn rollout_stream_runs_the_tiny_model_and_its_gguf_through_the_sandbox() {
    let work = tempfile::tempdir().unwrap();
    let input = few_streams(work.path());
    let input = input.to_str().unwrap();
    let tiny = tiny();
    let gguf = fixtures().join("tiny-q4_0.gguf");
    let registry = Registry::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("problems")).unwrap();
    for (name, source) in
        [("folder", ["--model", tiny.to_str().unwrap()]), ("gguf", ["--gguf", gguf.to_str().unwrap()])]
    {
        let out = work.path().join(format!("{name}.jsonl"));
        let run = studentsim(&[
            "rollout",
            "stream",
            "--input",
            input,
            "--max-attempts",
            "2",
            "--max-tokens",
            "12",
            "--seed",
            "4",
            source[0],
            source[1],
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(run.status.success(), "{name}: {}", String::from_utf8_lossy(&run.stderr));
        let rows = json_lines(&out);
        assert!(!rows.is_empty());
        for row in &rows {
            let generated = &row["generated"];
            assert!(generated["error"].is_null(), "{name}: {row}");
            assert!(generated["prompt_sha256"].as_str().is_some_and(|h| h.len() == 64));
            // Random weights write random text; the row's label is the sandbox's verdict on the row's code.
            let problem = registry.get(row["problem"].as_str().unwrap()).unwrap();
            let tests = block_on(grader().parse_tests(&problem.todo)).unwrap();
            let record = block_on(grader().grade(&problem.fixed, row["code"].as_str().unwrap(), &tests));
            assert_eq!(row["label"].as_str(), Some(record.label.as_str()), "{name}: {row}");
            assert_eq!(row["pass_rate"].as_f64(), Some(record.pass_rate), "{name}: {row}");
        }
        // A stream that went on: the first attempt's row records what the student was shown, its grade's label
        // (tests/rollout.rs checks with a recording generator that this reaches the next request and prompt).
        let key = |r: &serde_json::Value| (r["student"].to_string(), r["problem"].to_string());
        let went_on: Vec<&serde_json::Value> = rows
            .iter()
            .filter(|r| r["attempt"] == 1 && rows.iter().any(|s| s["attempt"] == 2 && key(s) == key(r)))
            .collect();
        assert!(!went_on.is_empty(), "{name}: some stream has a second attempt");
        for first in went_on {
            assert_eq!(first["generated"]["feedback"]["label"], first["label"], "{name}: {first}");
        }
    }
    // Ground-truth-conditioned next steps with the chat layout and batched requests.
    let out = work.path().join("next.jsonl");
    let run = studentsim(&[
        "rollout",
        "next-step",
        "--input",
        input,
        "--k",
        "1",
        "--max-tokens",
        "8",
        "--model",
        tiny.to_str().unwrap(),
        "--layout",
        "chat",
        "--batch",
        "4",
        "--jobs",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let rows = json_lines(&out);
    assert!(!rows.is_empty() && rows.iter().all(|r| r["source"] == "tiny"));
    // A random model writes no <code> tags, and the chat layout needs them: each row records that error, and
    // what the model wrote.
    assert!(
        rows.iter().all(|r| r["generated"]["error"].as_str().is_some_and(|e| e.contains("holds no code"))),
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r["generated"]["raw"].as_str().is_some_and(|raw| !raw.is_empty())), "{rows:?}");
}

#[test]
fn bad_model_input_gets_one_line() {
    let work = tempfile::tempdir().unwrap();
    let input = few_streams(work.path());
    let input = input.to_str().unwrap();
    let out = work.path().join("out.jsonl");
    let o = out.to_str().unwrap();
    let run = |model_args: &[&str]| {
        let mut args = vec!["rollout", "stream", "--input", input, "--generator", "qwen", "--out", o];
        args.extend(model_args);
        studentsim(&args)
    };
    let missing = work.path().join("nowhere");
    bad_input(&run(&["--model", missing.to_str().unwrap()]), &["nowhere", "no such model folder"], Some(&out));

    // A partial download: config.json and a shard index whose shard is missing; then weights without a layer.
    let partial = work.path().join("partial");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::copy(tiny().join("config.json"), partial.join("config.json")).unwrap();
    std::fs::write(
        partial.join("model.safetensors.index.json"),
        r#"{"weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors"}}"#,
    )
    .unwrap();
    bad_input(
        &run(&["--model", partial.to_str().unwrap()]),
        &["model-00001-of-00002.safetensors", "missing"],
        Some(&out),
    );
    let mut weights = random::weights(&Shape::TINY, SEED).unwrap();
    weights.retain(|name, _| !name.starts_with("model.layers.1."));
    candle_core::safetensors::save(&weights.into_iter().collect(), partial.join("model-00001-of-00002.safetensors"))
        .unwrap();
    bad_input(&run(&["--model", partial.to_str().unwrap()]), &["partial", "model.layers.1"], Some(&out));

    let llama = work.path().join("llama");
    std::fs::create_dir_all(&llama).unwrap();
    let config = std::fs::read_to_string(tiny().join("config.json"))
        .unwrap()
        .replace("qwen2", "llama")
        .replace("Qwen2ForCausalLM", "LlamaForCausalLM");
    std::fs::write(llama.join("config.json"), config).unwrap();
    bad_input(&run(&["--model", llama.to_str().unwrap()]), &["config.json", "unsupported architecture"], Some(&out));

    let adapter = work.path().join("wrong-adapter");
    write_adapter(&adapter, 4, 8.0, serde_json::json!({}), 8);
    bad_input(
        &run(&["--model", tiny().to_str().unwrap(), "--adapter", adapter.to_str().unwrap()]),
        &["q_proj", "does not fit"],
        Some(&out),
    );

    // A context too short for any prompt of these problems.
    let short = work.path().join("short");
    random::write_folder(&short, &Shape { max_positions: 64, ..Shape::TINY }, SEED, &tokenizer()).unwrap();
    bad_input(&run(&["--model", short.to_str().unwrap()]), &["prompt is", "context of 64"], Some(&out));

    let not_gguf = work.path().join("model.gguf");
    std::fs::write(&not_gguf, "not a gguf file").unwrap();
    bad_input(&run(&["--gguf", not_gguf.to_str().unwrap()]), &["model.gguf", "not a GGUF file"], Some(&out));
}
