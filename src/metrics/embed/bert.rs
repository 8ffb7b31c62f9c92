//! BERT-family encoders (all-MiniLM-L6-v2, the default) from a local Hugging Face folder, run with candle on the
//! CPU: tokenize (truncated to the model's sequence limit), encode, pool (mean over real tokens unless the
//! folder's sentence-transformers pooling config says CLS), L2-normalize.

use std::path::Path;

use anyhow::Result;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::Tokenizer;

use super::Embedder;
use super::folder::{Folder, Pooling, encode, pool_and_normalize};
use crate::BadInput;

pub struct BertEmbedder {
    id: String,
    model: BertModel,
    tokenizer: Tokenizer,
    pooling: Pooling,
    device: Device,
}

impl BertEmbedder {
    pub fn load(dir: &Path) -> Result<Self> {
        let folder = Folder::open(dir, Pooling::Mean, usize::MAX)?;
        let config: Config = folder.config()?;
        let device = Device::Cpu;
        // SAFETY: the weights file is mapped read-only and studentsim never writes it while the model is loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&folder.weights], DType::F32, &device)? };
        let model = BertModel::load(vb, &config).map_err(|e| {
            BadInput(format!("{}: not a BERT checkpoint matching config.json: {e}", folder.weights.display()))
        })?;
        Ok(Self { id: folder.id("bert")?, model, tokenizer: folder.tokenizer()?, pooling: folder.pooling, device })
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
        let (ids, mask) = encode(&self.tokenizer, texts, &self.device)?;
        let hidden = self.model.forward(&ids, &ids.zeros_like()?, Some(&mask))?; // (batch, tokens, hidden)
        pool_and_normalize(&hidden, &mask, self.pooling)
    }
}
