//! A PEFT LoRA adapter folder: `adapter_config.json` and `adapter_model.safetensors`.
//!
//! Plain LoRA on linear layers is supported (rsLoRA's α/√r scale too). Everything that changes the arithmetic
//! in ways a merge of `W + scale · B·A` would get wrong (DoRA, trained biases, extra saved modules, per-module
//! ranks, embedding adapters, transposed layers) is refused with a line saying what.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use serde_json::Value;

use crate::BadInput;

#[derive(Deserialize)]
struct AdapterConfig {
    peft_type: Option<String>,
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    use_rslora: bool,
    modules_to_save: Option<Vec<String>>,
    bias: Option<String>,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    rank_pattern: BTreeMap<String, Value>,
    #[serde(default)]
    alpha_pattern: BTreeMap<String, Value>,
}

/// The adapter's low-rank pairs by module name (`model.layers.0.self_attn.q_proj`), in f32.
pub struct Adapter {
    path: PathBuf,
    pairs: BTreeMap<String, (Tensor, Tensor)>,
    scale: f64,
}

impl Adapter {
    pub fn read(dir: &Path) -> Result<Self, BadInput> {
        let config_path = dir.join("adapter_config.json");
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| BadInput(format!("{}: {e}", config_path.display())))?;
        let config: AdapterConfig = serde_json::from_str(&text)
            .map_err(|e| BadInput(format!("{}:{}: {e}", config_path.display(), e.line())))?;
        let refuse = |what: &str| Err(BadInput(format!("{}: {what} is not supported", config_path.display())));
        match config.peft_type.as_deref() {
            None | Some("LORA") => {}
            Some(other) => return refuse(&format!("peft_type {other:?} (only LORA)")),
        }
        if config.use_dora {
            return refuse("DoRA (use_dora: true)");
        }
        if config.modules_to_save.as_ref().is_some_and(|m| !m.is_empty()) {
            return refuse("modules_to_save");
        }
        if config.bias.as_deref().is_some_and(|b| b != "none") {
            return refuse("bias training (bias other than \"none\")");
        }
        if config.fan_in_fan_out {
            return refuse("fan_in_fan_out: true");
        }
        if !config.rank_pattern.is_empty() || !config.alpha_pattern.is_empty() {
            return refuse("per-module rank_pattern / alpha_pattern");
        }
        if config.r == 0 {
            return refuse("r = 0");
        }
        let scale = if config.use_rslora {
            config.lora_alpha / (config.r as f64).sqrt()
        } else {
            config.lora_alpha / config.r as f64
        };

        let weights_path = dir.join("adapter_model.safetensors");
        if !weights_path.is_file() {
            return Err(BadInput(format!(
                "{}: no adapter_model.safetensors (adapter_model.bin is not read)",
                dir.display()
            )));
        }
        let tensors = candle_core::safetensors::load(&weights_path, &Device::Cpu).map_err(|e| {
            BadInput(format!("{}: not readable safetensors: {}", weights_path.display(), super::first_line(&e)))
        })?;
        let mut a_of = BTreeMap::new();
        let mut b_of = BTreeMap::new();
        for (key, tensor) in tensors {
            let (module, which) = split_key(&key).ok_or_else(|| {
                BadInput(format!("{}: tensor {key} is not a LoRA A/B weight of a linear layer", weights_path.display()))
            })?;
            let tensor = tensor
                .to_dtype(DType::F32)
                .map_err(|e| BadInput(format!("{}: {key}: {}", weights_path.display(), super::first_line(&e))))?;
            if tensor.rank() != 2 {
                return Err(BadInput(format!(
                    "{}: {key} has shape {:?}, not a matrix",
                    weights_path.display(),
                    tensor.dims()
                )));
            }
            if which == 'A' {
                a_of.insert(module, tensor)
            } else {
                b_of.insert(module, tensor)
            };
        }
        let mut pairs = BTreeMap::new();
        for (module, a) in a_of {
            let b = b_of
                .remove(&module)
                .ok_or_else(|| BadInput(format!("{}: {module} has lora_A but no lora_B", weights_path.display())))?;
            if a.dims()[0] != config.r || b.dims()[1] != config.r {
                return Err(BadInput(format!(
                    "{}: {module}: lora_A {:?} and lora_B {:?} do not have rank r = {}",
                    weights_path.display(),
                    a.dims(),
                    b.dims(),
                    config.r
                )));
            }
            pairs.insert(module, (a, b));
        }
        if let Some(module) = b_of.keys().next() {
            return Err(BadInput(format!("{}: {module} has lora_B but no lora_A", weights_path.display())));
        }
        if pairs.is_empty() {
            return Err(BadInput(format!("{}: no LoRA weights", weights_path.display())));
        }
        Ok(Self { path: dir.to_owned(), pairs, scale })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every adapted module with its (A, B).
    pub fn modules(&self) -> impl Iterator<Item = (&str, &(Tensor, Tensor))> {
        self.pairs.iter().map(|(m, p)| (m.as_str(), p))
    }

    /// A module's (A, B, scale), when the adapter changes it.
    pub fn module(&self, module: &str) -> Option<(&Tensor, &Tensor, f64)> {
        self.pairs.get(module).map(|(a, b)| (a, b, self.scale))
    }
}

/// `base + scale · B·A` in f32, on `base`'s device: how an adapter changes a dense weight.
pub fn merged(base: &Tensor, a: &Tensor, b: &Tensor, scale: f64) -> candle_core::Result<Tensor> {
    let dev = base.device();
    let delta = (b.to_device(dev)?.matmul(&a.to_device(dev)?)? * scale)?;
    base.to_dtype(DType::F32)? + delta
}

/// `base_model.model.<module>.lora_A[.default].weight` → (`<module>`, 'A').
fn split_key(key: &str) -> Option<(String, char)> {
    let rest = key.strip_prefix("base_model.model.")?.strip_suffix(".weight")?;
    let rest = rest.strip_suffix(".default").unwrap_or(rest);
    let (module, which) = rest.rsplit_once('.')?;
    match which {
        "lora_A" => Some((module.to_owned(), 'A')),
        "lora_B" => Some((module.to_owned(), 'B')),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::split_key;

    #[test]
    fn keys_name_the_module() {
        assert_eq!(
            split_key("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"),
            Some(("model.layers.0.self_attn.q_proj".into(), 'A'))
        );
        assert_eq!(
            split_key("base_model.model.model.layers.3.mlp.up_proj.lora_B.default.weight").map(|k| k.1),
            Some('B')
        );
        assert_eq!(split_key("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"), None);
        assert_eq!(split_key("base_model.model.model.embed_tokens.lora_embedding_A"), None);
    }
}
