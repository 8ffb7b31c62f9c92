//! The decode loop: prompts in, sampled completions out, batched as far as the model allows.

use anyhow::{Result, bail};
use candle_core::Tensor;
use tokenizers::Tokenizer;

use super::sampler::{Sampler, Sampling};

/// A causal language model that continues token sequences.
pub trait Decoder: Send {
    fn max_positions(&self) -> usize;
    /// Sequences one `prefill` can take.
    fn max_batch(&self) -> usize;
    /// Start new sequences (forgetting earlier ones); the logits of each row's last token, (rows, vocab), f32.
    /// `capacity` is the longest any row will grow.
    fn prefill(&mut self, rows: &[Vec<u32>], capacity: usize) -> candle_core::Result<Tensor>;
    /// One more token per row; the next logits.
    fn step(&mut self, tokens: &[u32]) -> candle_core::Result<Tensor>;
}

impl Decoder for super::model::Qwen2 {
    fn max_positions(&self) -> usize {
        self.max_positions()
    }

    fn max_batch(&self) -> usize {
        usize::MAX
    }

    fn prefill(&mut self, rows: &[Vec<u32>], capacity: usize) -> candle_core::Result<Tensor> {
        self.prefill(rows, capacity)
    }

    fn step(&mut self, tokens: &[u32]) -> candle_core::Result<Tensor> {
        self.step(tokens)
    }
}

/// A finished completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    pub tokens: Vec<u32>,
    /// It ended at an end-of-sequence token or `</code>`, not at the token limit.
    pub stopped: bool,
}

/// Text that ends a completion (kept in it).
const STOP_TEXT: &str = "</code>";
/// Trailing tokens decoded to look for [`STOP_TEXT`], which the tokenizer may split over several tokens.
const STOP_WINDOW: usize = 6;

pub struct Engine {
    pub decoder: Box<dyn Decoder>,
    pub tokenizer: Tokenizer,
    pub sampling: Sampling,
    /// Tokens that end a sequence: EOS, `<|im_end|>`.
    pub stop_tokens: Vec<u32>,
}

impl Engine {
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.tokenizer.encode(text, false).map_err(|e| anyhow::anyhow!("tokenizing the prompt: {e}"))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Complete `prompt` once per seed; the i-th completion is drawn with `seeds[i]`.
    pub fn complete(&mut self, prompt: &[u32], seeds: &[u64]) -> Result<Vec<Completion>> {
        let limit = self.decoder.max_positions();
        if prompt.len() >= limit {
            bail!("the prompt is {} tokens, longer than the model's context of {limit}", prompt.len());
        }
        let capacity = (prompt.len() + self.sampling.max_new_tokens).min(limit);
        let mut out = Vec::with_capacity(seeds.len());
        for chunk in seeds.chunks(self.decoder.max_batch().max(1)) {
            out.extend(self.complete_batch(prompt, chunk, capacity)?);
        }
        Ok(out)
    }

    fn complete_batch(&mut self, prompt: &[u32], seeds: &[u64], capacity: usize) -> Result<Vec<Completion>> {
        let rows = vec![prompt.to_vec(); seeds.len()];
        let mut samplers: Vec<Sampler> = seeds.iter().map(|&s| Sampler::new(self.sampling.clone(), s)).collect();
        let mut seen: Vec<Vec<u32>> = rows.clone();
        let mut generated: Vec<Vec<u32>> = vec![vec![]; seeds.len()];
        let mut stopped = vec![false; seeds.len()];
        let mut logits = self.decoder.prefill(&rows, capacity)?;
        for _ in prompt.len()..capacity {
            let all: Vec<Vec<f32>> = logits.to_vec2()?;
            let mut next = Vec::with_capacity(seeds.len());
            for (i, row) in all.iter().enumerate() {
                if stopped[i] {
                    next.push(*self.stop_tokens.first().unwrap_or(&0));
                    continue;
                }
                let token = samplers[i].sample(row, &seen[i]);
                next.push(token);
                seen[i].push(token);
                if self.stop_tokens.contains(&token) {
                    stopped[i] = true;
                } else {
                    generated[i].push(token);
                    stopped[i] = self.ends_with_stop_text(&generated[i])?;
                }
            }
            if stopped.iter().all(|&s| s) {
                break;
            }
            logits = self.decoder.step(&next)?;
        }
        generated
            .into_iter()
            .zip(stopped)
            .map(|(tokens, stopped)| {
                let text = self.tokenizer.decode(&tokens, true).map_err(|e| anyhow::anyhow!("decoding: {e}"))?;
                Ok(Completion { text, tokens, stopped })
            })
            .collect()
    }

    fn ends_with_stop_text(&self, tokens: &[u32]) -> Result<bool> {
        let tail = &tokens[tokens.len().saturating_sub(STOP_WINDOW)..];
        let text = self.tokenizer.decode(tail, true).map_err(|e| anyhow::anyhow!("decoding: {e}"))?;
        Ok(text.contains(STOP_TEXT))
    }
}
