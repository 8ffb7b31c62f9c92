//! Qwen2 from a GGUF file (llama.cpp's format), on the CPU, run by our own model ([`super::model::Qwen2`]).
//!
//! Each projection is kept twice: dequantized to f32, for the prompt prefill (many rows at once, where dense
//! matmuls are fastest), and quantized as in the file, for decoding (a few rows per step, where reading a
//! quarter of the bytes wins). Everything else (batches, RoPE, the KV cache) is the f32 model's.
//!
//! Tensor names map one to one onto the Hugging Face ones; llama.cpp stores Qwen2's Q and K unpermuted, since
//! its NeoX-style RoPE is the same rotation as transformers' `rotate_half`.
//!
//! A PEFT LoRA adapter ([`load_adapted`]) is merged exactly into the dequantized copy (`W + scale · B·A`, as a
//! Hugging Face folder merges it) and kept as an f32 side path beside the quantized copy
//! ([`super::matvec::LowRank`]), so prefill and decoding both see the whole adapter.

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;
use candle_nn::var_builder::SimpleBackend;

use super::config::Config;
use super::lora::{Adapter, merged};
use super::matvec::{LowRank, Quantized};
use super::model::{QuantizedWeights, Qwen2};
use crate::BadInput;

/// An open GGUF file: its metadata and tensor index, and the file to read tensors from. Cloning shares both.
#[derive(Clone)]
pub struct GgufWeights {
    content: Arc<gguf_file::Content>,
    file: Arc<Mutex<File>>,
    adapter: Option<Arc<Adapter>>,
}

/// Load a Qwen2 / Qwen2.5 GGUF file.
pub fn load(path: &Path) -> Result<Qwen2, BadInput> {
    load_adapted(path, None)
}

/// Load a Qwen2 / Qwen2.5 GGUF file with a PEFT LoRA adapter folder.
pub fn load_adapted(path: &Path, adapter: Option<&Path>) -> Result<Qwen2, BadInput> {
    let bad = |what: String| BadInput(format!("{}: {what}", path.display()));
    let mut file = File::open(path).map_err(|e| bad(e.to_string()))?;
    let content =
        gguf_file::Content::read(&mut file).map_err(|e| bad(format!("not a GGUF file: {}", super::first_line(&e))))?;
    let adapter = adapter.map(Adapter::read).transpose()?.map(Arc::new);
    let weights = GgufWeights { content: Arc::new(content), file: Arc::new(Mutex::new(file)), adapter };
    let config = weights.config().map_err(bad)?;
    if let Some(adapter) = &weights.adapter {
        weights.check_fits(adapter)?;
    }
    let vb = VarBuilder::from_backend(Box::new(weights.clone()), DType::F32, Device::Cpu);
    Qwen2::new(&config, vb, Some(&weights)).map_err(|e| bad(format!("incomplete model: {}", super::first_line(&e))))
}

impl GgufWeights {
    fn metadata(&self, key: &str) -> Result<&gguf_file::Value, String> {
        self.content.metadata.get(key).ok_or_else(|| format!("no {key} in the metadata"))
    }

    fn number(&self, key: &str) -> Result<usize, String> {
        self.metadata(key)?.to_u32().map(|v| v as usize).map_err(|e| format!("{key}: {}", super::first_line(&e)))
    }

    fn float(&self, key: &str) -> Result<f64, String> {
        self.metadata(key)?.to_f32().map(f64::from).map_err(|e| format!("{key}: {}", super::first_line(&e)))
    }

    /// The model's shape, from the `qwen2.*` metadata llama.cpp writes.
    fn config(&self) -> Result<Config, String> {
        let architecture = self.metadata("general.architecture").ok().and_then(|v| v.to_string().ok()).cloned();
        if architecture.as_deref() != Some("qwen2") {
            return Err(format!(
                "unsupported architecture {:?}: studentsim runs Qwen2 and Qwen2.5 GGUF files",
                architecture.unwrap_or_default()
            ));
        }
        let embeddings = self.content.tensor_infos.get("token_embd.weight").ok_or("no token_embd.weight tensor")?;
        let hidden_size = self.number("qwen2.embedding_length")?;
        let num_attention_heads = self.number("qwen2.attention.head_count")?;
        Ok(Config {
            vocab_size: embeddings.shape.dims()[0],
            hidden_size,
            intermediate_size: self.number("qwen2.feed_forward_length")?,
            num_hidden_layers: self.number("qwen2.block_count")?,
            num_attention_heads,
            num_key_value_heads: self.number("qwen2.attention.head_count_kv")?,
            head_dim: hidden_size / num_attention_heads.max(1),
            max_position_embeddings: self.number("qwen2.context_length")?,
            rope_theta: self.float("qwen2.rope.freq_base").unwrap_or(1e6),
            rms_norm_eps: self.float("qwen2.attention.layer_norm_rms_epsilon")?,
            tie_word_embeddings: !self.content.tensor_infos.contains_key("output.weight"),
        })
    }

    /// Every adapted module is a projection of the file, of the shape `B·A` has.
    fn check_fits(&self, adapter: &Adapter) -> Result<(), BadInput> {
        for (module, (a, b)) in adapter.modules() {
            let info = gguf_name(&format!("{module}.weight")).and_then(|g| self.content.tensor_infos.get(&g));
            let Some(info) = info else {
                return Err(BadInput(format!("{}: module {module} is not in the model", adapter.path().display())));
            };
            let want = info.shape.dims();
            if want != [b.dims()[0], a.dims()[1]] {
                return Err(BadInput(format!(
                    "{}: {module}: lora_B {:?} · lora_A {:?} does not fit the base weight {want:?}",
                    adapter.path().display(),
                    b.dims(),
                    a.dims()
                )));
            }
        }
        Ok(())
    }

    fn read(&self, gguf_name: &str) -> candle_core::Result<QTensor> {
        let mut file = self.file.lock().map_err(|_| candle_core::Error::Msg("the GGUF reader panicked".into()))?;
        self.content.tensor(&mut *file, gguf_name, &Device::Cpu)
    }
}

/// The GGUF name of a Hugging Face tensor name (`model.layers.3.self_attn.q_proj.weight` → `blk.3.attn_q.weight`).
pub(crate) fn gguf_name(hf: &str) -> Option<String> {
    let (module, kind) = hf.rsplit_once('.')?;
    let name = match module {
        "model.embed_tokens" => "token_embd".to_owned(),
        "model.norm" => "output_norm".to_owned(),
        "lm_head" => "output".to_owned(),
        _ => {
            let (layer, part) = module.strip_prefix("model.layers.")?.split_once('.')?;
            let part = match part {
                "self_attn.q_proj" => "attn_q",
                "self_attn.k_proj" => "attn_k",
                "self_attn.v_proj" => "attn_v",
                "self_attn.o_proj" => "attn_output",
                "mlp.gate_proj" => "ffn_gate",
                "mlp.up_proj" => "ffn_up",
                "mlp.down_proj" => "ffn_down",
                "input_layernorm" => "attn_norm",
                "post_attention_layernorm" => "ffn_norm",
                _ => return None,
            };
            format!("blk.{layer}.{part}")
        }
    };
    Some(format!("{name}.{kind}"))
}

impl GgufWeights {
    /// The adapter's (A, B, scale) for the weight `name`, when it adapts that layer.
    fn lora(&self, name: &str) -> Option<(&Tensor, &Tensor, f64)> {
        name.strip_suffix(".weight").and_then(|m| self.adapter.as_deref()?.module(m))
    }
}

impl SimpleBackend for GgufWeights {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.get_unchecked(name, dtype, dev)?;
        if tensor.shape() != &shape {
            candle_core::bail!("{name} has shape {:?}, the metadata implies {:?}", tensor.dims(), shape.dims());
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let gguf = gguf_name(name).ok_or_else(|| candle_core::Error::Msg(format!("{name} has no GGUF counterpart")))?;
        let base = self.read(&gguf)?.dequantize(dev)?;
        match self.lora(name) {
            Some((a, b, scale)) => merged(&base, a, b, scale)?.to_dtype(dtype),
            None => base.to_dtype(dtype),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        gguf_name(name).is_some_and(|g| self.content.tensor_infos.contains_key(&g))
    }
}

impl QuantizedWeights for GgufWeights {
    fn quantized(&self, name: &str, bias: Option<&Tensor>) -> candle_core::Result<Option<Quantized>> {
        // A tied output layer reads the embedding table.
        let gguf = match gguf_name(name) {
            Some(g) if g == "output.weight" && !self.content.tensor_infos.contains_key(&g) => {
                "token_embd.weight".to_owned()
            }
            Some(g) => g,
            None => return Ok(None),
        };
        let Some(info) = self.content.tensor_infos.get(&gguf) else { return Ok(None) };
        let tensor = match info.ggml_dtype {
            // f32 / f16 tensors gain nothing from a second copy.
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => return Ok(None),
            // candle's CPU kernels for these formats are scalar (no AVX2 dot product): a Q8_0 copy decodes
            // several times faster and is within 1/16 of a step of the file's values. (Q5_0 has our own.)
            GgmlDType::Q4_1 | GgmlDType::Q5_1 => {
                QTensor::quantize(&self.read(&gguf)?.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?
            }
            _ => self.read(&gguf)?,
        };
        let quantized = Quantized::new(tensor, bias)?;
        Ok(Some(match self.lora(name) {
            Some((a, b, scale)) => quantized.adapted(LowRank::new(a, b, scale)?),
            None => quantized,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::gguf_name;

    #[test]
    fn hugging_face_names_map_to_llama_cpp_names() {
        assert_eq!(gguf_name("model.layers.3.self_attn.q_proj.bias").as_deref(), Some("blk.3.attn_q.bias"));
        assert_eq!(gguf_name("model.layers.23.mlp.down_proj.weight").as_deref(), Some("blk.23.ffn_down.weight"));
        assert_eq!(
            gguf_name("model.layers.0.post_attention_layernorm.weight").as_deref(),
            Some("blk.0.ffn_norm.weight")
        );
        assert_eq!(gguf_name("model.embed_tokens.weight").as_deref(), Some("token_embd.weight"));
        assert_eq!(gguf_name("lm_head.weight").as_deref(), Some("output.weight"));
        assert_eq!(gguf_name("model.layers.0.self_attn.rotary_emb.inv_freq"), None);
    }
}
