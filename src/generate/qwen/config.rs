//! A Qwen2 `config.json` and `generation_config.json`, read tolerantly.
//!
//! Transformers versions disagree on the layout: newer ones write `sliding_window: null` and move `rope_theta`
//! under `rope_parameters`; older checkpoints leave out fields that have defaults. Everything the model needs is
//! filled here, and what it cannot run (another architecture, RoPE scaling, sliding-window attention) is refused
//! with one line naming the file.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::BadInput;

/// What the model code needs, with defaults filled.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub max_position_embeddings: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub tie_word_embeddings: bool,
}

#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    architectures: Option<Vec<String>>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    max_position_embeddings: Option<usize>,
    rope_theta: Option<f64>,
    rope_parameters: Option<Value>,
    rope_scaling: Option<Value>,
    rms_norm_eps: Option<f64>,
    tie_word_embeddings: Option<bool>,
    use_sliding_window: Option<bool>,
    hidden_act: Option<String>,
}

impl Config {
    pub fn read(path: &Path) -> Result<Self, BadInput> {
        let text = std::fs::read_to_string(path).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| BadInput(format!("{}: {}", path.display(), e.0)))
    }

    pub fn parse(text: &str) -> Result<Self, BadInput> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| BadInput(format!("line {}: {e}", e.line())))?;
        let model_type = raw.model_type.as_deref().unwrap_or("");
        let architecture = raw.architectures.as_ref().and_then(|a| a.first()).map_or("", String::as_str);
        if model_type != "qwen2" && architecture != "Qwen2ForCausalLM" {
            return Err(BadInput(format!(
                "unsupported architecture (model_type {model_type:?}, architectures {:?}): studentsim runs Qwen2 and \
                 Qwen2.5 models (model_type \"qwen2\")",
                raw.architectures.unwrap_or_default()
            )));
        }
        // RoPE scaling (YaRN and friends) changes the position tables; a plain "default" entry does not.
        let scaling = raw.rope_scaling.as_ref().or(raw.rope_parameters.as_ref());
        if let Some(kind) = scaling.and_then(|s| s.get("rope_type").or_else(|| s.get("type"))).and_then(Value::as_str)
            && kind != "default"
        {
            return Err(BadInput(format!(
                "RoPE scaling {kind:?} is not supported; remove rope_scaling to run at the native context"
            )));
        }
        if raw.use_sliding_window == Some(true) {
            return Err(BadInput(
                "use_sliding_window: true is not supported (Qwen2.5 checkpoints set it false)".into(),
            ));
        }
        if let Some(act) = raw.hidden_act.as_deref().filter(|a| *a != "silu") {
            return Err(BadInput(format!("hidden_act {act:?} is not supported (Qwen2 uses \"silu\")")));
        }
        let rope_theta = raw
            .rope_theta
            .or_else(|| raw.rope_parameters.as_ref().and_then(|p| p.get("rope_theta")).and_then(Value::as_f64))
            .unwrap_or(10_000.0);
        let heads = raw.num_attention_heads;
        let kv_heads = raw.num_key_value_heads.unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(BadInput(format!(
                "num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}"
            )));
        }
        let head_dim = raw.head_dim.unwrap_or(raw.hidden_size / heads);
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(BadInput(format!("head dimension {head_dim} must be even and non-zero")));
        }
        Ok(Self {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim,
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(32_768),
            rope_theta,
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-6),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
        })
    }
}

/// `generation_config.json`: sampling defaults and end-of-sequence ids; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct GenerationConfig {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub min_p: Option<f64>,
    pub repetition_penalty: Option<f64>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub eos_token_id: Vec<u32>,
}

impl GenerationConfig {
    /// The file's settings, or none when the model folder has no such file.
    pub fn read_if_present(path: &Path) -> Result<Self, BadInput> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| BadInput(format!("{}:{}: {e}", path.display(), e.line())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(BadInput(format!("{}: {e}", path.display()))),
        }
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ids {
        One(u32),
        Many(Vec<u32>),
        Null(()),
    }
    Ok(match Ids::deserialize(d)? {
        Ids::One(id) => vec![id],
        Ids::Many(ids) => ids,
        Ids::Null(()) => vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const QWEN25_05B: &str = r#"{
      "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
      "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
      "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 24, "model_type": "qwen2",
      "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
      "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
      "transformers_version": "4.44.0", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936
    }"#;

    #[test]
    fn reads_a_released_config() {
        let c = Config::parse(QWEN25_05B).unwrap();
        assert_eq!((c.hidden_size, c.num_key_value_heads, c.head_dim, c.vocab_size), (896, 2, 64, 151_936));
        assert_eq!(c.rope_theta, 1e6);
        assert!(c.tie_word_embeddings);
    }

    #[test]
    fn reads_the_newer_layout_and_fills_defaults() {
        let text = r#"{"model_type": "qwen2", "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "sliding_window": null,
            "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}}"#;
        let c = Config::parse(text).unwrap();
        assert_eq!(c.rope_theta, 5e5);
        assert_eq!((c.num_key_value_heads, c.head_dim, c.max_position_embeddings), (4, 8, 32_768));
        assert_eq!(c.rms_norm_eps, 1e-6);
        assert!(!c.tie_word_embeddings);
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        let llama = QWEN25_05B.replace("\"qwen2\"", "\"llama\"").replace("Qwen2ForCausalLM", "LlamaForCausalLM");
        assert!(Config::parse(&llama).unwrap_err().0.contains("unsupported architecture"));
        let yarn = QWEN25_05B
            .replace("\"use_cache\"", "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}, \"use_cache\"");
        assert!(Config::parse(&yarn).unwrap_err().0.contains("yarn"));
        let sliding = QWEN25_05B.replace("\"use_sliding_window\": false", "\"use_sliding_window\": true");
        assert!(Config::parse(&sliding).unwrap_err().0.contains("use_sliding_window"));
    }

    #[test]
    fn generation_config_takes_one_or_many_eos_ids() {
        let g: GenerationConfig = serde_json::from_str(r#"{"eos_token_id": [151645, 151643], "top_k": 20}"#).unwrap();
        assert_eq!((g.eos_token_id, g.top_k), (vec![151_645, 151_643], Some(20)));
        let g: GenerationConfig = serde_json::from_str(r#"{"eos_token_id": 151643}"#).unwrap();
        assert_eq!(g.eos_token_id, vec![151_643]);
    }
}
