//! The decode loop: prompts in, sampled completions out, batched as far as the model allows.

use std::sync::Arc;

use anyhow::{Result, bail};
use candle_core::Tensor;
use tokenizers::Tokenizer;

use super::sampler::{Sampler, Sampling};
use crate::generate::reply;

/// A causal language model that continues token sequences.
pub trait Decoder: Send {
    fn max_positions(&self) -> usize;
    /// Sequences one `prefill` can take.
    fn max_batch(&self) -> usize;
    /// Start new sequences (forgetting earlier ones); the logits of each row's last token, (rows, vocab), f32.
    /// `capacity` is the longest any row will grow.
    fn prefill(&mut self, rows: &[Vec<u32>], capacity: usize) -> candle_core::Result<Tensor>;
    /// Start `copies` sequences of one prompt, as `prefill` of that many equal rows would, but computing the
    /// prompt once (and a decoder may reuse what it kept of earlier prompts).
    fn prefill_shared(&mut self, prompt: &[u32], copies: usize, capacity: usize) -> candle_core::Result<Tensor> {
        self.prefill(&vec![prompt.to_vec(); copies], capacity)
    }
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

    fn prefill_shared(&mut self, prompt: &[u32], copies: usize, capacity: usize) -> candle_core::Result<Tensor> {
        self.prefill_shared(prompt, copies, capacity)
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
    /// It ended at an end-of-sequence token or after its code block ([`reply::code_is_over`]), not at the
    /// token limit.
    pub stopped: bool,
}

pub struct Engine {
    pub decoder: Box<dyn Decoder>,
    pub tokenizer: Arc<Tokenizer>,
    pub sampling: Sampling,
    /// Tokens that end a sequence: EOS, `<|im_end|>`.
    pub stop_tokens: Vec<u32>,
}

impl Engine {
    /// Complete each (prompt, seed) row; the i-th completion is drawn with its row's seed. Rows are decoded as
    /// left-padded batches, as many at once as the decoder takes.
    pub fn complete(&mut self, rows: &[(Vec<u32>, u64)]) -> Result<Vec<Completion>> {
        let limit = self.decoder.max_positions();
        if let Some((prompt, _)) = rows.iter().find(|(p, _)| p.len() >= limit) {
            bail!("the prompt is {} tokens, longer than the model's context of {limit}", prompt.len());
        }
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(self.decoder.max_batch().max(1)) {
            out.extend(self.complete_batch(chunk)?);
        }
        Ok(out)
    }

    fn complete_batch(&mut self, rows: &[(Vec<u32>, u64)]) -> Result<Vec<Completion>> {
        let longest = rows.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
        let max_new = self.sampling.max_new_tokens;
        let capacity = (longest + max_new).min(self.decoder.max_positions());
        let mut samplers: Vec<Sampler> =
            rows.iter().map(|&(_, seed)| Sampler::new(self.sampling.clone(), seed)).collect();
        let prompts: Vec<Vec<u32>> = rows.iter().map(|(p, _)| p.clone()).collect();
        let mut seen = prompts.clone();
        let mut generated: Vec<Vec<u32>> = vec![vec![]; rows.len()];
        let mut stopped = vec![false; rows.len()];
        let done = |stopped: &[bool], generated: &[Vec<u32>], i: usize| stopped[i] || generated[i].len() >= max_new;
        // A request's samples share their prompt: one prefill serves them all.
        let mut logits = if prompts.iter().all(|p| p == &prompts[0]) {
            self.decoder.prefill_shared(&prompts[0], prompts.len(), capacity)?
        } else {
            self.decoder.prefill(&prompts, capacity)?
        };
        for room in (0..capacity - longest).rev() {
            let all: Vec<Vec<f32>> = logits.to_vec2()?;
            let mut next = Vec::with_capacity(rows.len());
            for (i, row) in all.iter().enumerate() {
                if done(&stopped, &generated, i) {
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
                    stopped[i] = reply::code_is_over(&self.decode(&generated[i])?);
                }
            }
            if room == 0 || (0..rows.len()).all(|i| done(&stopped, &generated, i)) {
                break;
            }
            logits = self.decoder.step(&next)?;
        }
        generated
            .into_iter()
            .zip(stopped)
            .map(|(tokens, stopped)| Ok(Completion { text: self.decode(&tokens)?, tokens, stopped }))
            .collect()
    }

    fn decode(&self, tokens: &[u32]) -> Result<String> {
        self.tokenizer.decode(tokens, true).map_err(|e| anyhow::anyhow!("decoding: {e}"))
    }
}
