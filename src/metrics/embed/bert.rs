//! BERT-family encoders (all-MiniLM-L6-v2, the default) from a local Hugging Face folder, run with candle on the
//! CPU: tokenize (truncated to the model's sequence limit), encode, pool (mean over real tokens unless the
//! folder's sentence-transformers pooling config says CLS), L2-normalize.
//!
//! The encoder is written here rather than taken from candle-transformers, for speed on the CPU: one matmul
//! for the query, key and value projections, GELU with a vectorized erf ([`gelu`]), and the fused last-axis
//! softmax. `bench embed` compares it with sentence-transformers on PyTorch.

use std::path::Path;

use anyhow::Result;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;
use tokenizers::Tokenizer;

use super::Embedder;
use super::folder::{Folder, Pooling, encode, pool_and_normalize};
use super::gelu;
use super::layers::{attend, layer_norm, linear, padding_bias, split_heads};
use crate::BadInput;

/// The fields of a BERT `config.json` that shape the encoder.
#[derive(Deserialize)]
struct Config {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    hidden_act: HiddenAct,
    max_position_embeddings: usize,
    type_vocab_size: usize,
    layer_norm_eps: f64,
    #[serde(default = "absolute")]
    position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".into()
}

/// `hidden_act`, as Hugging Face's BERT names it.
#[derive(Clone, Copy, Deserialize)]
enum HiddenAct {
    #[serde(rename = "gelu")]
    Gelu,
    /// GELU's tanh approximation.
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh")]
    GeluTanh,
    #[serde(rename = "relu")]
    Relu,
}

struct Layer {
    /// Query, key and value stacked: (3 × hidden, hidden).
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    up: Linear,
    down: Linear,
    out_norm: LayerNorm,
}

struct Encoder {
    words: Embedding,
    positions: Embedding,
    /// The token-type embedding of type 0, which every token of a single text has.
    token_type: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    activation: HiddenAct,
}

pub struct BertEmbedder {
    id: String,
    encoder: Encoder,
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
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        let encoder = Encoder::load(vb, &config).map_err(|e| {
            BadInput(format!("{}: not a BERT checkpoint matching config.json: {e}", folder.weights.display()))
        })?;
        Ok(Self { id: folder.id("bert")?, encoder, tokenizer: folder.tokenizer()?, pooling: folder.pooling, device })
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
        let hidden = self.encoder.forward(&ids, &mask)?; // (batch, tokens, hidden)
        pool_and_normalize(&hidden, &mask, self.pooling)
    }
}

impl Encoder {
    fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        if config.position_embedding_type != "absolute" {
            anyhow::bail!("position_embedding_type {:?} is not supported", config.position_embedding_type);
        }
        let h = config.hidden_size;
        let norm = |vb: VarBuilder| layer_norm(vb, h, config.layer_norm_eps);
        let embedding =
            |vb: VarBuilder, n: usize| -> Result<Embedding> { Ok(Embedding::new(vb.get((n, h), "weight")?, h)) };
        let e = vb.pp("embeddings");
        let token_types = e.pp("token_type_embeddings").get((config.type_vocab_size, h), "weight")?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| -> Result<Layer> {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let s = l.pp("attention.self");
                // The query, key and value projections stacked into one.
                let stacked = |shape: &[usize], what: &str| -> Result<Tensor> {
                    let parts = ["query", "key", "value"].map(|name| s.pp(name).get(shape, what));
                    Ok(Tensor::cat(&parts.into_iter().collect::<candle_core::Result<Vec<_>>>()?, 0)?)
                };
                Ok(Layer {
                    qkv: Linear::new(stacked(&[h, h], "weight")?, Some(stacked(&[h], "bias")?)),
                    attention_out: linear(l.pp("attention.output.dense"), h, h)?,
                    attention_norm: norm(l.pp("attention.output.LayerNorm"))?,
                    up: linear(l.pp("intermediate.dense"), h, config.intermediate_size)?,
                    down: linear(l.pp("output.dense"), config.intermediate_size, h)?,
                    out_norm: norm(l.pp("output.LayerNorm"))?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            words: embedding(e.pp("word_embeddings"), config.vocab_size)?,
            positions: embedding(e.pp("position_embeddings"), config.max_position_embeddings)?,
            token_type: token_types.get(0)?,
            embedding_norm: norm(e.pp("LayerNorm"))?,
            layers,
            heads: config.num_attention_heads,
            activation: config.hidden_act,
        })
    }

    /// Hidden states (batch, tokens, hidden) of token `ids` (batch, tokens) with `mask` 1 on real tokens.
    fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let tokens = ids.dim(1)?;
        let positions = Tensor::arange(0u32, tokens as u32, ids.device())?;
        let x = self
            .words
            .forward(ids)?
            .broadcast_add(&self.positions.forward(&positions)?)?
            .broadcast_add(&self.token_type)?;
        let mut x = self.embedding_norm.forward(&x)?;
        let padding = padding_bias(mask)?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &padding)?;
        }
        Ok(x)
    }

    fn layer(&self, layer: &Layer, x: &Tensor, padding: &Tensor) -> Result<Tensor> {
        let [q, k, v] = split_heads(&layer.qkv.forward(x)?, self.heads)?;
        let context = attend(&q, &k, &v, padding)?;
        let attended = layer.attention_norm.forward(&(layer.attention_out.forward(&context)? + x)?)?;
        let up = layer.up.forward(&attended)?;
        let activated = match self.activation {
            HiddenAct::Gelu => gelu::gelu_erf(&up)?,
            HiddenAct::GeluTanh => up.gelu()?,
            HiddenAct::Relu => up.relu()?,
        };
        Ok(layer.out_norm.forward(&(layer.down.forward(&activated)? + attended)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::embed::recorded;

    const TEXTS: [&str; 2] = ["def f(x):\n    return x + 1\n", "for i in range(10):\n    print(i * i)\n# a longer one"];
    const RECORDING: &str = "all-MiniLM-L6-v2";

    /// The fetched all-MiniLM-L6-v2, or `None` (skipped) before `runtimes/setup.sh` has run.
    fn fetched() -> Option<std::path::PathBuf> {
        let dir = super::super::default_model_dir();
        if dir.join("model.safetensors").is_file() {
            Some(dir)
        } else {
            eprintln!("skipped: {} not fetched (run runtimes/setup.sh)", dir.display());
            None
        }
    }

    /// Our vectors equal the ones candle-transformers' BERT gave (recorded by the reference test below).
    #[test]
    fn vectors_equal_candle_transformers_recorded_ones() {
        let Some(dir) = fetched() else { return };
        recorded::assert_close(RECORDING, &BertEmbedder::load(&dir).unwrap().embed(&TEXTS).unwrap());
    }

    /// Our encoder gives candle-transformers' BERT's hidden states, padding included, and the recording is
    /// candle-transformers' vectors.
    #[cfg(feature = "reference-models")]
    #[test]
    fn the_encoder_equals_candle_transformers_bert() {
        let Some(dir) = fetched() else { return };
        let ours = BertEmbedder::load(&dir).unwrap();
        let folder = Folder::open(&dir, Pooling::Mean, usize::MAX).unwrap();
        let config: candle_transformers::models::bert::Config = folder.config().unwrap();
        // SAFETY: read-only mapping of a file nobody writes during the test.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&folder.weights], DType::F32, &Device::Cpu).unwrap() };
        let theirs = candle_transformers::models::bert::BertModel::load(vb, &config).unwrap();
        let (ids, mask) = encode(&ours.tokenizer, &TEXTS, &Device::Cpu).unwrap();
        let a = ours.encoder.forward(&ids, &mask).unwrap();
        let b = theirs.forward(&ids, &ids.zeros_like().unwrap(), Some(&mask)).unwrap();
        recorded::assert_close_on_real_tokens(&a, &b, &mask);
        recorded::record_or_check(RECORDING, &pool_and_normalize(&b, &mask, ours.pooling).unwrap());
    }
}
