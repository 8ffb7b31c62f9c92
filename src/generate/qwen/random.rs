//! Seeded random Qwen2 checkpoints, for tests and benchmarks (no weights can be downloaded here).
//!
//! [`write_folder`] writes a Hugging Face folder (`config.json`, `model.safetensors`, the given
//! `tokenizer.json`); [`write_gguf`] writes the same weights as a GGUF file under llama.cpp's tensor names,
//! quantized to the given type (norms and biases stay f32).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use serde_json::json;

/// The shape of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub vocab: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub max_positions: usize,
}

impl Shape {
    /// Qwen2.5-Coder-0.5B's (tied embeddings).
    pub const QWEN25_CODER_05B: Shape = Shape {
        vocab: 151_936,
        hidden: 896,
        intermediate: 4864,
        layers: 24,
        heads: 14,
        kv_heads: 2,
        max_positions: 32_768,
    };

    /// A few layers with the real vocabulary, small enough for tests.
    pub const TINY: Shape =
        Shape { vocab: 151_936, hidden: 64, intermediate: 128, layers: 2, heads: 4, kv_heads: 2, max_positions: 4096 };

    pub fn config_json(&self) -> serde_json::Value {
        json!({
            "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
            "vocab_size": self.vocab, "hidden_size": self.hidden, "intermediate_size": self.intermediate,
            "num_hidden_layers": self.layers, "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads, "max_position_embeddings": self.max_positions,
            "rms_norm_eps": 1e-6, "rope_theta": 1_000_000.0, "sliding_window": null, "use_sliding_window": false,
            "tie_word_embeddings": true, "torch_dtype": "float32", "bos_token_id": 151_643, "eos_token_id": 151_643
        })
    }
}

/// Every weight under its Hugging Face name, uniform in ±0.05 (norm weights around 1), from `seed`.
pub fn weights(shape: &Shape, seed: u64) -> Result<BTreeMap<String, Tensor>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut random = |dims: &[usize], centre: f32| -> Result<Tensor> {
        let n: usize = dims.iter().product();
        let data: Vec<f32> = (0..n).map(|_| centre + rng.random_range(-0.05f32..0.05)).collect();
        Ok(Tensor::from_vec(data, dims, &Device::Cpu)?)
    };
    let (h, f) = (shape.hidden, shape.intermediate);
    let head_dim = h / shape.heads;
    let (q, kv) = (shape.heads * head_dim, shape.kv_heads * head_dim);
    let mut w = BTreeMap::new();
    w.insert("model.embed_tokens.weight".to_owned(), random(&[shape.vocab, h], 0.0)?);
    w.insert("model.norm.weight".to_owned(), random(&[h], 1.0)?);
    for i in 0..shape.layers {
        let p = format!("model.layers.{i}");
        for (name, dims, centre) in [
            ("self_attn.q_proj.weight", vec![q, h], 0.0),
            ("self_attn.q_proj.bias", vec![q], 0.0),
            ("self_attn.k_proj.weight", vec![kv, h], 0.0),
            ("self_attn.k_proj.bias", vec![kv], 0.0),
            ("self_attn.v_proj.weight", vec![kv, h], 0.0),
            ("self_attn.v_proj.bias", vec![kv], 0.0),
            ("self_attn.o_proj.weight", vec![h, q], 0.0),
            ("mlp.gate_proj.weight", vec![f, h], 0.0),
            ("mlp.up_proj.weight", vec![f, h], 0.0),
            ("mlp.down_proj.weight", vec![h, f], 0.0),
            ("input_layernorm.weight", vec![h], 1.0),
            ("post_attention_layernorm.weight", vec![h], 1.0),
        ] {
            w.insert(format!("{p}.{name}"), random(&dims, centre)?);
        }
    }
    Ok(w)
}

/// A Hugging Face folder with random weights and a copy of `tokenizer`.
pub fn write_folder(dir: &Path, shape: &Shape, seed: u64, tokenizer: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&shape.config_json())?)?;
    let weights = weights(shape, seed)?;
    candle_core::safetensors::save(&weights.into_iter().collect(), dir.join("model.safetensors"))?;
    std::fs::copy(tokenizer, dir.join("tokenizer.json")).with_context(|| format!("copying {}", tokenizer.display()))?;
    Ok(())
}

/// The same random weights as a GGUF file, matrices quantized to `dtype`.
pub fn write_gguf(path: &Path, shape: &Shape, seed: u64, dtype: GgmlDType) -> Result<()> {
    let mut tensors = Vec::new();
    for (name, tensor) in weights(shape, seed)? {
        let matrix = tensor.rank() == 2;
        let q = QTensor::quantize(&tensor, if matrix { dtype } else { GgmlDType::F32 })?;
        tensors.push((super::gguf::gguf_name(&name).expect("every Qwen2 tensor has a GGUF name"), q));
    }
    use gguf_file::Value;
    let metadata = [
        ("general.architecture", Value::String("qwen2".into())),
        ("qwen2.attention.head_count", Value::U32(shape.heads as u32)),
        ("qwen2.attention.head_count_kv", Value::U32(shape.kv_heads as u32)),
        ("qwen2.embedding_length", Value::U32(shape.hidden as u32)),
        ("qwen2.context_length", Value::U32(shape.max_positions as u32)),
        ("qwen2.block_count", Value::U32(shape.layers as u32)),
        ("qwen2.feed_forward_length", Value::U32(shape.intermediate as u32)),
        ("qwen2.attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
        ("qwen2.rope.freq_base", Value::F32(1_000_000.0)),
    ];
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    gguf_file::write(&mut file, &metadata, &tensors)?;
    Ok(())
}
