//! What every encoder folder shares: the files (`config.json`, `model.safetensors`, `tokenizer.json`), the
//! sentence-transformers settings (`1_Pooling/config.json`, `sentence_bert_config.json`), tokenizing a batch,
//! pooling and normalizing.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use crate::BadInput;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
}

/// A Hugging Face model folder, checked to hold the files an encoder needs.
pub struct Folder {
    pub config_path: PathBuf,
    config_text: String,
    pub weights: PathBuf,
    tokenizer_path: PathBuf,
    pub pooling: Pooling,
    /// Tokens kept per text; longer texts are truncated.
    pub max_len: usize,
    pad_id: u32,
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

/// The `config.json` fields every encoder has.
#[derive(Deserialize)]
struct Common {
    max_position_embeddings: usize,
    #[serde(default)]
    pad_token_id: u32,
}

/// The architecture a folder holds, from `config.json`: its `model_type`, else its first `architectures` entry.
pub fn architecture(dir: &Path) -> Result<String, BadInput> {
    #[derive(Deserialize)]
    struct Arch {
        model_type: Option<String>,
        #[serde(default)]
        architectures: Vec<String>,
    }
    let path = require(dir, "config.json")?;
    let arch: Arch = parse(&path, &read(&path)?)?;
    Ok(arch.model_type.or_else(|| arch.architectures.first().cloned()).unwrap_or_else(|| "none".into()))
}

fn require(dir: &Path, name: &str) -> Result<PathBuf, BadInput> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(BadInput(format!(
            "{}: no such file (an embedder folder needs config.json, model.safetensors and tokenizer.json)",
            path.display()
        )))
    }
}

fn read(path: &Path) -> Result<String, BadInput> {
    std::fs::read_to_string(path).map_err(|e| BadInput(format!("{}: cannot read: {e}", path.display())))
}

fn parse<T: for<'de> Deserialize<'de>>(path: &Path, text: &str) -> Result<T, BadInput> {
    serde_json::from_str(text).map_err(|e| BadInput(format!("{}:{}: {e}", path.display(), e.line())))
}

fn read_optional<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, BadInput> {
    if path.is_file() { parse(path, &read(path)?).map(Some) } else { Ok(None) }
}

impl Folder {
    /// Open `dir`; `pooling` and `max_len` apply when the folder has no sentence-transformers settings
    /// (`max_len` is capped by the model's position limit either way).
    pub fn open(dir: &Path, pooling: Pooling, max_len: usize) -> Result<Self, BadInput> {
        let config_path = require(dir, "config.json")?;
        let config_text = read(&config_path)?;
        let common: Common = parse(&config_path, &config_text)?;
        let pooling = match read_optional::<PoolingConfig>(&dir.join("1_Pooling/config.json"))? {
            Some(p) if p.pooling_mode_cls_token && !p.pooling_mode_mean_tokens => Pooling::Cls,
            Some(p) if p.pooling_mode_mean_tokens => Pooling::Mean,
            _ => pooling,
        };
        let max_len = read_optional::<SentenceConfig>(&dir.join("sentence_bert_config.json"))?
            .map_or(max_len, |s| s.max_seq_length)
            .min(common.max_position_embeddings);
        Ok(Self {
            weights: require(dir, "model.safetensors")?,
            tokenizer_path: require(dir, "tokenizer.json")?,
            config_path,
            config_text,
            pooling,
            max_len,
            pad_id: common.pad_token_id,
        })
    }

    /// `config.json` as `T`.
    pub fn config<T: for<'de> Deserialize<'de>>(&self) -> Result<T, BadInput> {
        parse(&self.config_path, &self.config_text)
    }

    /// The tokenizer, truncating to `max_len` and padding each batch to its longest text.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        let path = &self.tokenizer_path;
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: self.max_len, ..Default::default() }))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        tokenizer.with_padding(Some(PaddingParams { pad_id: self.pad_id, ..Default::default() }));
        Ok(tokenizer)
    }

    /// `<family>-<16 hex digits of the files' sha256>-<pooling>-<max_len>`: changes whenever the vectors would.
    pub fn id(&self, family: &str) -> Result<String> {
        let digest = files_digest(&[&self.config_path, &self.weights, &self.tokenizer_path])?;
        Ok(format!("{family}-{}-{:?}-{}", &digest[..16], self.pooling, self.max_len).to_lowercase())
    }
}

/// Each file's path, length and modification time: what [`files_digest`] remembers a digest by.
type Stamp = (PathBuf, u64, Option<SystemTime>);

/// The sha256 of `paths`' bytes one after another, read once per process for each set of [`Stamp`]s: a leaderboard
/// loads the model once per board, and hashing its weights each time was 4% of the run.
fn files_digest(paths: &[&Path]) -> Result<String> {
    static DIGESTS: Mutex<BTreeMap<Vec<Stamp>, String>> = Mutex::new(BTreeMap::new());
    let stamps = paths
        .iter()
        .map(|path| {
            let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
            Ok((path.to_path_buf(), meta.len(), meta.modified().ok()))
        })
        .collect::<Result<Vec<Stamp>>>()?;
    if let Some(digest) = DIGESTS.lock().unwrap_or_else(PoisonError::into_inner).get(&stamps) {
        return Ok(digest.clone());
    }
    let mut hasher = Sha256::new();
    for path in paths {
        let mut file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
        std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    }
    let digest = crate::hex(&hasher.finalize());
    DIGESTS.lock().unwrap_or_else(PoisonError::into_inner).insert(stamps, digest.clone());
    Ok(digest)
}

/// Token ids and attention mask of a batch, each (batch, tokens).
pub fn encode(tokenizer: &Tokenizer, texts: &[&str], device: &Device) -> Result<(Tensor, Tensor)> {
    let encodings = tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
    let stack = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor> {
        let rows = encodings.iter().map(|e| Tensor::new(f(e), device)).collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Tensor::stack(&rows, 0)?)
    };
    Ok((stack(&|e| e.get_ids())?, stack(&|e| e.get_attention_mask())?))
}

/// Pool hidden states (batch, tokens, hidden) into one unit-length vector per text.
pub fn pool_and_normalize(hidden: &Tensor, mask: &Tensor, pooling: Pooling) -> Result<Vec<Vec<f32>>> {
    let hidden = hidden.to_dtype(DType::F32)?;
    let pooled = match pooling {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_hashed_once_per_length_and_modification_time() {
        let dir = tempfile::tempdir().unwrap();
        let (config, weights) = (dir.path().join("config.json"), dir.path().join("model.safetensors"));
        std::fs::write(&config, "config").unwrap();
        std::fs::write(&weights, "weights").unwrap();
        let first = files_digest(&[&config, &weights]).unwrap();
        assert_eq!(first, crate::hex(&Sha256::digest(b"configweights")), "the files' bytes one after another");

        // other bytes of the same length, with the old modification time: remembered, not read again
        let time = std::fs::metadata(&weights).unwrap().modified().unwrap();
        std::fs::write(&weights, "WEIGHTS").unwrap();
        File::options().write(true).open(&weights).unwrap().set_modified(time).unwrap();
        assert_eq!(files_digest(&[&config, &weights]).unwrap(), first, "hashed once per length and time");

        std::fs::write(&weights, "weights, retrained").unwrap();
        let again = files_digest(&[&config, &weights]).unwrap();
        assert_eq!(again, crate::hex(&Sha256::digest(b"configweights, retrained")), "another length is read again");
    }
}
