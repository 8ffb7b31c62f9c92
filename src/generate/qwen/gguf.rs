//! Quantized Qwen2 from a GGUF file (llama.cpp's format), on the CPU, through candle's `quantized_qwen2`.
//!
//! That model decodes one sequence at a time and starts a new one whenever it is fed position 0, which is all
//! the engine needs: it runs the samples of a request one after another.

use std::fs::File;
use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Result, Tensor};
use candle_transformers::models::quantized_qwen2::ModelWeights;

use super::engine::Decoder;
use crate::BadInput;

pub struct QuantizedQwen2 {
    model: ModelWeights,
    max_positions: usize,
    position: usize,
    device: Device,
}

impl QuantizedQwen2 {
    pub fn open(path: &Path) -> std::result::Result<Self, BadInput> {
        let bad = |what: String| BadInput(format!("{}: {what}", path.display()));
        let mut file = File::open(path).map_err(|e| bad(e.to_string()))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| bad(format!("not a GGUF file: {}", super::first_line(&e))))?;
        let architecture = content.metadata.get("general.architecture").and_then(|v| v.to_string().ok()).cloned();
        if architecture.as_deref() != Some("qwen2") {
            return Err(bad(format!(
                "unsupported architecture {:?}: studentsim runs Qwen2 and Qwen2.5 GGUF files",
                architecture.unwrap_or_default()
            )));
        }
        let max_positions = content
            .metadata
            .get("qwen2.context_length")
            .and_then(|v| v.to_u32().ok())
            .ok_or_else(|| bad("no qwen2.context_length in the metadata".into()))? as usize;
        let device = Device::Cpu;
        let model = ModelWeights::from_gguf(content, &mut file, &device).map_err(|e| bad(format!("incomplete model: {}", super::first_line(&e))))?;
        Ok(Self { model, max_positions, position: 0, device })
    }
}

impl Decoder for QuantizedQwen2 {
    fn max_positions(&self) -> usize {
        self.max_positions
    }

    fn max_batch(&self) -> usize {
        1
    }

    fn prefill(&mut self, rows: &[Vec<u32>], _capacity: usize) -> Result<Tensor> {
        let [row] = rows else { candle_core::bail!("the quantized model decodes one sequence at a time") };
        self.position = row.len();
        self.model.forward(&Tensor::new(row.as_slice(), &self.device)?.unsqueeze(0)?, 0)
    }

    fn step(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let logits = self.model.forward(&Tensor::new(tokens, &self.device)?.unsqueeze(0)?, self.position)?;
        self.position += 1;
        Ok(logits)
    }
}
