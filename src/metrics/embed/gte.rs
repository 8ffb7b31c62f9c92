//! The "NewModel" architecture of Alibaba's gte-v1.5 encoders, which Salesforce's SFR-Embedding-Code-400M_R (the
//! reference study's embedder) is built on: rotary positions (NTK-scaled), packed QKV, a gated GELU MLP, layer
//! norms after each block. Pools the CLS token (or what the folder's sentence-transformers pooling config says).
//!
//! Written here, as `bert.rs` is, rather than taken from candle-transformers (its 400M `stella_en_v5`): that
//! crate was 90 CPU-seconds of a cold test build for this one model. The reference tests compare the two
//! (`cargo test --features reference-models`); the default run compares with the vectors they recorded. Checked
//! on tiny random weights only: the real ones cannot be downloaded on this machine.

use std::path::Path;

use anyhow::Result;
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;
use tokenizers::Tokenizer;

use super::Embedder;
use super::folder::{Folder, Pooling, encode, pool_and_normalize};
use super::layers::{attend, layer_norm, linear, padding_bias, split_heads};
use crate::BadInput;

/// The fields of a NewModel `config.json` that shape the network.
#[derive(Deserialize)]
struct NewConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
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

struct Layer {
    /// Query, key and value stacked: (3 × hidden, hidden).
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    /// The up projection and the gate stacked, in that order: (2 × intermediate, hidden), no bias.
    up_gate: Linear,
    down: Linear,
    mlp_norm: LayerNorm,
}

struct Encoder {
    words: Embedding,
    /// The token-type embedding of type 0, which every token of a single text has.
    token_type: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    intermediate: usize,
    /// The rotary frequencies of one head's dimension pairs.
    inverse_frequencies: Vec<f64>,
}

pub struct GteEmbedder {
    id: String,
    encoder: Encoder,
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
        if config.hidden_act != "gelu" {
            return Err(unsupported(format!("hidden_act {:?}", config.hidden_act)).into());
        }
        let ntk_scaling = match &config.rope_scaling {
            None => None,
            Some(s) if s.kind == "ntk" => Some(s.factor),
            Some(s) => return Err(unsupported(format!("rope_scaling type {:?}", s.kind)).into()),
        };
        let device = Device::Cpu;
        // SAFETY: the weights file is mapped read-only and studentsim never writes it while the model is loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&folder.weights], DType::F32, &device)? };
        // Checkpoints saved through a wrapper (as stella's were) name the tensors `new.*`.
        let vb = if vb.contains_tensor("new.embeddings.word_embeddings.weight") { vb.pp("new") } else { vb };
        let encoder = Encoder::load(vb, &config, ntk_scaling).map_err(|e| {
            BadInput(format!("{}: not a NewModel checkpoint matching config.json: {e}", folder.weights.display()))
        })?;
        Ok(Self { id: folder.id("gte")?, encoder, tokenizer: folder.tokenizer()?, pooling: folder.pooling, device })
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
        let (ids, mask) = encode(&self.tokenizer, texts, &self.device)?;
        let hidden = self.encoder.forward(&ids, &mask)?;
        pool_and_normalize(&hidden, &mask, self.pooling)
    }
}

impl Encoder {
    fn load(vb: VarBuilder, config: &NewConfig, ntk_scaling: Option<f64>) -> Result<Self> {
        let (h, inter) = (config.hidden_size, config.intermediate_size);
        let norm = |vb: VarBuilder| layer_norm(vb, h, config.layer_norm_eps);
        let e = vb.pp("embeddings");
        let layers = (0..config.num_hidden_layers)
            .map(|i| -> Result<Layer> {
                let l = vb.pp(format!("encoder.layer.{i}"));
                Ok(Layer {
                    qkv: linear(l.pp("attention.qkv_proj"), h, 3 * h)?,
                    attention_out: linear(l.pp("attention.o_proj"), h, h)?,
                    attention_norm: norm(l.pp("attn_ln"))?,
                    up_gate: Linear::new(l.pp("mlp.up_gate_proj").get((2 * inter, h), "weight")?, None),
                    down: linear(l.pp("mlp.down_proj"), inter, h)?,
                    mlp_norm: norm(l.pp("mlp_ln"))?,
                })
            })
            .collect::<Result<_>>()?;
        // gte's NTKScalingRotaryEmbedding: the base times the factor, each frequency divided by factor^(2/dim).
        let head = h / config.num_attention_heads;
        let base = config.rope_theta * ntk_scaling.unwrap_or(1.0);
        let shrink = ntk_scaling.map_or(1.0, |factor| factor.powf(2.0 / head as f64));
        let inverse_frequencies = (0..head).step_by(2).map(|i| base.powf(-(i as f64) / head as f64) / shrink).collect();
        Ok(Self {
            words: Embedding::new(e.pp("word_embeddings").get((config.vocab_size, h), "weight")?, h),
            token_type: e.pp("token_type_embeddings").get((config.type_vocab_size, h), "weight")?.get(0)?,
            embedding_norm: norm(e.pp("LayerNorm"))?,
            layers,
            heads: config.num_attention_heads,
            intermediate: inter,
            inverse_frequencies,
        })
    }

    /// Hidden states (batch, tokens, hidden) of token `ids` (batch, tokens) with `mask` 1 on real tokens.
    fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let mut x = self.embedding_norm.forward(&self.words.forward(ids)?.broadcast_add(&self.token_type)?)?;
        let (cos, sin) = self.rotary_tables(ids.dim(1)?, ids.device())?;
        let padding = padding_bias(mask)?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &padding, &cos, &sin)?;
        }
        Ok(x)
    }

    /// cos and sin of position × frequency, (tokens, head / 2) each.
    fn rotary_tables(&self, tokens: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        let angles: Vec<f64> =
            (0..tokens).flat_map(|t| self.inverse_frequencies.iter().map(move |f| t as f64 * f)).collect();
        let table = |f: fn(f64) -> f64| {
            let values: Vec<f32> = angles.iter().map(|&a| f(a) as f32).collect();
            Tensor::from_vec(values, (tokens, self.inverse_frequencies.len()), device)
        };
        Ok((table(f64::cos)?, table(f64::sin)?))
    }

    fn layer(&self, layer: &Layer, x: &Tensor, padding: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let [q, k, v] = split_heads(&layer.qkv.forward(x)?, self.heads)?;
        let rotate = |t: Tensor| candle_nn::rotary_emb::rope(&t.contiguous()?, cos, sin);
        let context = attend(&rotate(q)?, &rotate(k)?, &v, padding)?;
        let attended = layer.attention_norm.forward(&(layer.attention_out.forward(&context)? + x)?)?;
        let up_gate = layer.up_gate.forward(&attended)?;
        let up = up_gate.narrow(D::Minus1, 0, self.intermediate)?;
        let gate = super::gelu::gelu_erf(&up_gate.narrow(D::Minus1, self.intermediate, self.intermediate)?)?;
        Ok(layer.mlp_norm.forward(&(layer.down.forward(&(up * gate)?)? + attended)?)?)
    }
}

/// The tiny random NewModel of the tests: 2 layers of hidden size 32, NTK-scaled rotary positions.
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

/// A tiny NewModel folder: [`tiny_config`], seeded random weights named as Hugging Face saves them (no `new.`
/// prefix), and the tokenizer of `tokenizer_from`.
#[cfg(test)]
pub(super) fn write_tiny_model(dir: &Path, tokenizer_from: &Path) -> Result<()> {
    use rand::rngs::StdRng;
    use rand::{RngExt as _, SeedableRng};

    std::fs::write(dir.join("config.json"), tiny_config().to_string())?;
    std::fs::copy(tokenizer_from.join("tokenizer.json"), dir.join("tokenizer.json"))?;
    let (h, inter, vocab) = (32, 64, 30528);
    let mut shapes = vec![
        ("embeddings.word_embeddings.weight".to_owned(), vec![vocab, h], 0.0),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, h], 0.0),
        ("embeddings.LayerNorm.weight".into(), vec![h], 1.0),
        ("embeddings.LayerNorm.bias".into(), vec![h], 0.0),
    ];
    for i in 0..2 {
        let l = format!("encoder.layer.{i}");
        shapes.extend([
            (format!("{l}.attention.qkv_proj.weight"), vec![3 * h, h], 0.0),
            (format!("{l}.attention.qkv_proj.bias"), vec![3 * h], 0.0),
            (format!("{l}.attention.o_proj.weight"), vec![h, h], 0.0),
            (format!("{l}.attention.o_proj.bias"), vec![h], 0.0),
            (format!("{l}.attn_ln.weight"), vec![h], 1.0),
            (format!("{l}.attn_ln.bias"), vec![h], 0.0),
            (format!("{l}.mlp.up_gate_proj.weight"), vec![2 * inter, h], 0.0),
            (format!("{l}.mlp.down_proj.weight"), vec![h, inter], 0.0),
            (format!("{l}.mlp.down_proj.bias"), vec![h], 0.0),
            (format!("{l}.mlp_ln.weight"), vec![h], 1.0),
            (format!("{l}.mlp_ln.bias"), vec![h], 0.0),
        ]);
    }
    // Uniform in ±0.3 around 0 (1 for the norms' scales): the scale of a trained model's weights.
    let mut rng = StdRng::seed_from_u64(7);
    let mut tensors = std::collections::HashMap::new();
    for (name, shape, centre) in shapes {
        let values: Vec<f32> = (0..shape.iter().product()).map(|_| centre + rng.random_range(-0.3f32..0.3)).collect();
        tensors.insert(name, Tensor::from_vec(values, shape, &Device::Cpu)?);
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::embed::{default_model_dir, recorded};

    const TEXTS: [&str; 3] = ["def f(x):\n    return x + 1\n", "print('hello')", ""];
    const RECORDING: &str = "gte-tiny";

    /// The tiny model in a temp folder, or `None` (skipped) before `runtimes/setup.sh` fetched a tokenizer.
    fn tiny() -> Option<tempfile::TempDir> {
        if !default_model_dir().join("tokenizer.json").is_file() {
            eprintln!("skipped: {} not fetched (run runtimes/setup.sh)", default_model_dir().display());
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        write_tiny_model(dir.path(), &default_model_dir()).unwrap();
        Some(dir)
    }

    /// Our vectors equal the ones candle-transformers' `stella_en_v5` gave (recorded by the reference test below).
    #[test]
    fn vectors_equal_candle_transformers_recorded_ones() {
        let Some(dir) = tiny() else { return };
        recorded::assert_close(RECORDING, &GteEmbedder::load(dir.path()).unwrap().embed(&TEXTS).unwrap());
    }

    /// Our encoder gives the hidden states of candle-transformers' 400M `stella_en_v5` (the same architecture) on
    /// real tokens, and the recording is its vectors.
    #[cfg(feature = "reference-models")]
    #[test]
    fn the_encoder_equals_candle_transformers_stella() {
        use candle_transformers::models::stella_en_v5::{Config, EmbedHead, Model, ModelVariant};

        let Some(dir) = tiny() else { return };
        let ours = GteEmbedder::load(dir.path()).unwrap();
        let config = Config {
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
            activation_fn: candle_nn::Activation::Gelu,
            embed_head: EmbedHead { in_features: 32, out_features: 32 },
            num_key_value_heads: 4,
        };
        let weights = dir.path().join("model.safetensors");
        // SAFETY: read-only mapping of a file nobody writes during the test.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &Device::Cpu) }.unwrap();
        // candle's implementation names the tensors `new.*`, as stella saved them.
        let vb = vb.rename_f(|name| name.strip_prefix("new.").unwrap_or(name).to_owned());
        let mut theirs = Model::new(&config, vb).unwrap();
        let (ids, mask) = encode(&ours.tokenizer, &TEXTS, &Device::Cpu).unwrap();
        let a = ours.encoder.forward(&ids, &mask).unwrap();
        let b = theirs.forward(&ids, &mask).unwrap();
        recorded::assert_close_on_real_tokens(&a, &b, &mask);
        recorded::record_or_check(RECORDING, &pool_and_normalize(&b, &mask, ours.pooling).unwrap());
    }
}
