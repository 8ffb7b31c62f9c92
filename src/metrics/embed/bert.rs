//! A BERT-family sentence embedder from a local Hugging Face folder, run with candle on the CPU: tokenize
//! (truncated to the model's sequence limit), encode, pool (mean over real tokens, or the CLS token, as the
//! folder's sentence-transformers pooling config says), L2-normalize.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use super::Embedder;
use crate::BadInput;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pooling {
    Mean,
    Cls,
}

pub struct BertEmbedder {
    id: String,
    model: BertModel,
    tokenizer: Tokenizer,
    pooling: Pooling,
    device: Device,
}

/// `1_Pooling/config.json` (sentence-transformers).
#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

/// `sentence_bert_config.json` (sentence-transformers).
#[derive(Deserialize)]
struct SentenceConfig {
    max_seq_length: usize,
}

/// The fields of `config.json` that say which architecture a folder holds.
#[derive(Deserialize)]
struct Architecture {
    model_type: Option<String>,
    #[serde(default)]
    architectures: Vec<String>,
}

impl BertEmbedder {
    /// Load `dir`: `config.json`, `model.safetensors`, `tokenizer.json`, and the optional sentence-transformers
    /// files `1_Pooling/config.json` (default: mean pooling) and `sentence_bert_config.json` (default: the
    /// model's position limit).
    pub fn load(dir: &Path) -> Result<Self> {
        let file = |name: &str| -> Result<PathBuf, BadInput> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(BadInput(format!("{}: no such file (an embedder folder needs config.json, model.safetensors and tokenizer.json)", path.display())))
            }
        };
        let config_path = file("config.json")?;
        let config_text = std::fs::read_to_string(&config_path)?;
        let arch: Architecture = serde_json::from_str(&config_text)
            .map_err(|e| BadInput(format!("{}:{}: {e}", config_path.display(), e.line())))?;
        if arch.model_type.as_deref() != Some("bert") {
            let named = arch.model_type.or_else(|| arch.architectures.first().cloned()).unwrap_or_else(|| "none".into());
            return Err(BadInput(format!(
                "{}: model_type {named:?} is not supported; the embedder runs BERT-family models (model_type \"bert\")",
                config_path.display()
            ))
            .into());
        }
        let config: Config = serde_json::from_str(&config_text)
            .map_err(|e| BadInput(format!("{}:{}: {e}", config_path.display(), e.line())))?;
        let weights = file("model.safetensors")?;
        let tokenizer_path = file("tokenizer.json")?;

        let pooling = match read_optional::<PoolingConfig>(&dir.join("1_Pooling/config.json"))? {
            Some(p) if p.pooling_mode_cls_token && !p.pooling_mode_mean_tokens => Pooling::Cls,
            _ => Pooling::Mean,
        };
        let max_len = read_optional::<SentenceConfig>(&dir.join("sentence_bert_config.json"))?
            .map_or(config.max_position_embeddings, |s| s.max_seq_length)
            .min(config.max_position_embeddings);

        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| BadInput(format!("{}: {e}", tokenizer_path.display())))?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_len, ..Default::default() }))
            .map_err(|e| anyhow::anyhow!("{}: {e}", tokenizer_path.display()))?;
        tokenizer.with_padding(Some(PaddingParams { pad_id: config.pad_token_id as u32, ..Default::default() }));

        let device = Device::Cpu;
        // SAFETY: the weights file is mapped read-only and studentsim never writes it while the model is loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device)? };
        let model = BertModel::load(vb, &config)
            .map_err(|e| BadInput(format!("{}: not a BERT checkpoint matching config.json: {e}", weights.display())))?;

        let mut hasher = Sha256::new();
        for path in [&config_path, &weights, &tokenizer_path] {
            hasher.update(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
        }
        let digest = crate::sandbox::runtime::hex(&hasher.finalize());
        let id = format!("bert-{}-{pooling:?}-{max_len}", &digest[..16]).to_lowercase();
        Ok(Self { id, model, tokenizer, pooling, device })
    }
}

fn read_optional<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, BadInput> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| BadInput(format!("{}:{}: {e}", path.display(), e.line()))),
        Err(_) => Ok(None),
    }
}

impl Embedder for BertEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor> {
            let rows = encodings.iter().map(|e| Tensor::new(f(e), &self.device)).collect::<candle_core::Result<Vec<_>>>()?;
            Ok(Tensor::stack(&rows, 0)?)
        };
        let ids = rows(&|e| e.get_ids())?;
        let mask = rows(&|e| e.get_attention_mask())?;
        let hidden = self.model.forward(&ids, &ids.zeros_like()?, Some(&mask))?; // (batch, tokens, hidden)
        let pooled = match self.pooling {
            Pooling::Cls => hidden.get_on_dim(1, 0)?,
            Pooling::Mean => {
                let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                let sum = hidden.broadcast_mul(&mask)?.sum(1)?;
                sum.broadcast_div(&mask.sum(1)?.clamp(1e-9, f32::MAX)?)?
            }
        };
        let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
        Ok(pooled.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}
