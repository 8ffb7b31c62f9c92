//! The "NewModel" architecture of Alibaba's gte-v1.5 encoders, which Salesforce's SFR-Embedding-Code-400M_R (the
//! reference study's embedder) is built on: rotary positions, packed QKV, gated GELU MLP, post-layer norms.
//! candle ships it as the 400M variant of `stella_en_v5`; this loads a Hugging Face folder of such a model into
//! it and pools the CLS token (or what the folder's sentence-transformers pooling config says).
//!
//! Checked here only on tiny random weights (the real ones cannot be downloaded on this machine); its vectors have
//! not been compared with the PyTorch implementation yet.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Result;
use candle_core::{DType, Device};
use candle_nn::{Activation, VarBuilder};
use candle_transformers::models::stella_en_v5::{Config, EmbedHead, Model, ModelVariant};
use serde::Deserialize;
use tokenizers::Tokenizer;

use super::Embedder;
use super::folder::{Folder, Pooling};
use crate::BadInput;

/// The fields of a NewModel `config.json` that shape the network.
#[derive(Deserialize)]
struct NewConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    layer_norm_eps: f64,
    rope_theta: f64,
    rope_scaling: Option<RopeScaling>,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default = "yes")]
    pack_qkv: bool,
    #[serde(default = "default_position")]
    position_embedding_type: String,
    #[serde(default = "default_norm")]
    layer_norm_type: String,
}

#[derive(Deserialize)]
struct RopeScaling {
    #[serde(rename = "type")]
    kind: String,
    factor: f64,
}

fn default_type_vocab() -> usize {
    2
}
fn default_act() -> String {
    "gelu".into()
}
fn yes() -> bool {
    true
}
fn default_position() -> String {
    "rope".into()
}
fn default_norm() -> String {
    "layer_norm".into()
}

pub struct GteEmbedder {
    id: String,
    // candle's forward takes `&mut self`; one batch at a time.
    model: Mutex<Model>,
    tokenizer: Tokenizer,
    pooling: Pooling,
    device: Device,
}

impl GteEmbedder {
    pub fn load(dir: &Path) -> Result<Self> {
        let folder = Folder::open(dir, Pooling::Cls, 512)?;
        let config: NewConfig = folder.config()?;
        let unsupported = |what: String| BadInput(format!("{}: {what} is not supported", folder.config_path.display()));
        if !config.pack_qkv || config.position_embedding_type != "rope" || config.layer_norm_type != "layer_norm" {
            return Err(unsupported("a NewModel without packed QKV, rotary positions and layer norms".into()).into());
        }
        let activation = match config.hidden_act.as_str() {
            "gelu" => Activation::Gelu,
            other => return Err(unsupported(format!("hidden_act {other:?}")).into()),
        };
        let scaling_factor = match &config.rope_scaling {
            None => 0.0,
            Some(s) if s.kind == "ntk" => s.factor,
            Some(s) => return Err(unsupported(format!("rope_scaling type {:?}", s.kind)).into()),
        };
        let cfg = Config {
            variant: ModelVariant::Small,
            vocab_size: config.vocab_size,
            hidden_size: config.hidden_size,
            intermediate_size: config.intermediate_size,
            num_hidden_layers: config.num_hidden_layers,
            num_attention_heads: config.num_attention_heads,
            max_position_embeddings: config.max_position_embeddings,
            type_vocab_size: config.type_vocab_size,
            norm_eps: config.layer_norm_eps,
            rope_theta: config.rope_theta,
            scaling_factor,
            activation_fn: activation,
            // Unused by the encoder itself (the 1.5B variant's projection head).
            embed_head: EmbedHead { in_features: config.hidden_size, out_features: config.hidden_size },
            num_key_value_heads: config.num_attention_heads,
        };
        let device = Device::Cpu;
        // SAFETY: the weights file is mapped read-only and studentsim never writes it while the model is loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&folder.weights], DType::F32, &device)? };
        // candle names the tensors `new.*` (how stella saved them); plain NewModel checkpoints have no prefix.
        let vb = if vb.contains_tensor("new.embeddings.word_embeddings.weight") {
            vb
        } else {
            vb.rename_f(|name| name.strip_prefix("new.").unwrap_or(name).to_owned())
        };
        let model = Model::new(&cfg, vb).map_err(|e| {
            BadInput(format!("{}: not a NewModel checkpoint matching config.json: {e}", folder.weights.display()))
        })?;
        Ok(Self {
            id: folder.id("gte")?,
            model: Mutex::new(model),
            tokenizer: folder.tokenizer()?,
            pooling: folder.pooling,
            device,
        })
    }
}

impl Embedder for GteEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, mask) = super::folder::encode(&self.tokenizer, texts, &self.device)?;
        let hidden = self.model.lock().expect("no panic while embedding").forward(&ids, &mask)?;
        super::folder::pool_and_normalize(&hidden, &mask, self.pooling)
    }
}

#[cfg(test)]
pub(super) fn tiny_config() -> serde_json::Value {
    serde_json::json!({
        "architectures": ["NewModel"], "model_type": "new", "vocab_size": 30528, "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 512,
        "type_vocab_size": 2, "layer_norm_eps": 1e-12, "rope_theta": 160000.0,
        "rope_scaling": {"type": "ntk", "factor": 2.0}, "hidden_act": "gelu", "pack_qkv": true,
        "position_embedding_type": "rope", "layer_norm_type": "layer_norm"
    })
}

/// A tiny random NewModel folder: the config above, weights named as Hugging Face saves them (no `new.` prefix),
/// and the tokenizer of `tokenizer_from`.
#[cfg(test)]
pub(super) fn write_tiny_model(dir: &Path, tokenizer_from: &Path) -> Result<()> {
    let config = tiny_config();
    std::fs::write(dir.join("config.json"), config.to_string())?;
    std::fs::copy(tokenizer_from.join("tokenizer.json"), dir.join("tokenizer.json"))?;
    let cfg = Config {
        variant: ModelVariant::Small,
        vocab_size: 30528,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        max_position_embeddings: 512,
        type_vocab_size: 2,
        norm_eps: 1e-12,
        rope_theta: 160000.0,
        scaling_factor: 2.0,
        activation_fn: Activation::Gelu,
        embed_head: EmbedHead { in_features: 32, out_features: 32 },
        num_key_value_heads: 4,
    };
    let varmap = candle_nn::VarMap::new();
    Model::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
    let tensors: std::collections::HashMap<String, candle_core::Tensor> = varmap
        .data()
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|(name, var)| (name.strip_prefix("new.").unwrap_or(name).to_owned(), var.as_tensor().clone()))
        .collect();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    Ok(())
}
