//! What the `bench qwen` runs share: the arguments, and greedy decoding, tokenizing and prompts both peers use.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow, ensure};
use candle_core::Tensor;
use clap::{Args, ValueEnum};
use tokenizers::Tokenizer;

use super::super::Context;
use crate::generate::qwen::engine::Decoder;
use crate::generate::qwen::fetched_tokenizer;
use crate::generate::{Attempt, Request, Target, prompt};
use crate::trajectory::views::Stage;

#[derive(Debug, Args)]
pub struct QwenArgs {
    /// Checkpoint shape: Qwen2.5-Coder-0.5B's, or the tests' tiny one (a quick smoke run).
    #[arg(long, value_enum, default_value_t = ShapeName::Coder05b)]
    pub(super) shape: ShapeName,
    /// Prompt tokens prefilled in one pass.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(16..))]
    pub prompt_tokens: u32,
    /// Tokens decoded one at a time after the prompt (greedy).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub new_tokens: u32,
    /// CPU threads on both sides.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: u16,
    /// A Python with torch and transformers [default: the environment runtimes/bench-transformers.sh makes,
    /// about 7 GB, created on first use].
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Skip the GGUF Q4_0 run.
    #[arg(long)]
    pub(super) no_gguf: bool,
    /// Bench this real GGUF model (e.g. runtimes/.cache/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf) against
    /// llama.cpp instead (or, with --peer transformers, against transformers and PEFT): speed on a study prompt,
    /// and agreement on the registry's study chat prompts. --python then names the peer's Python [default: the
    /// environment runtimes/bench-llama-cpp.sh or runtimes/bench-transformers.sh builds].
    #[arg(long, value_name = "FILE")]
    pub gguf: Option<PathBuf>,
    /// What --gguf FILE is checked against.
    #[arg(long, value_enum, default_value_t = PeerName::LlamaCpp, requires = "gguf")]
    pub(super) peer: PeerName,
    /// Study prompts whose last-position logits are compared (--gguf).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..))]
    pub prompts: u32,
    /// Print the figures as one JSON object, its `ratios` map naming each ratio against its peer.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum PeerName {
    /// llama.cpp (llama-cpp-python) on the same file: speed, logits, greedy tokens, the tokenizer.
    LlamaCpp,
    /// transformers loads the file dequantized and saves a model folder, PEFT trains and saves a LoRA adapter;
    /// `--model DIR` and `--adapter DIR` on them against transformers' and PEFT's logits and greedy tokens.
    Transformers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum ShapeName {
    /// 24 layers, hidden 896, 14 heads (2 KV), MLP 4864, vocabulary 151,936: 494M parameters.
    #[value(name = "coder-0.5b")]
    Coder05b,
    Tiny,
}

/// Seconds for `new_tokens` greedy steps of four prompts of different lengths decoded as one batch.
pub(super) fn batched_decode(model: &mut dyn Decoder, ids: &[u32], new_tokens: usize) -> Result<f64> {
    let rows: Vec<Vec<u32>> = (0..4).map(|i| ids[..ids.len() - i * ids.len() / 12].to_vec()).collect();
    let mut logits = model.prefill(&rows, ids.len() + new_tokens + 1)?;
    let start = Instant::now();
    for _ in 0..new_tokens {
        let next = logits.argmax(1)?.to_vec1::<u32>()?;
        logits = model.step(&next)?;
    }
    Ok(start.elapsed().as_secs_f64())
}

pub(super) fn argmax_row(logits: &Tensor) -> Result<u32> {
    Ok(logits.squeeze(0)?.argmax(0)?.to_scalar::<u32>()?)
}

/// The Qwen2.5 tokenizer the set-up fetched, which both sides' token ids come from.
pub(super) fn study_tokenizer(ctx: &Context) -> Result<Tokenizer> {
    let path = fetched_tokenizer(&ctx.runtime_dir());
    Tokenizer::from_file(&path).map_err(|e| anyhow!("{}: {e}", path.display()))
}

pub(super) use crate::generate::sft::token_ids as encode;

/// The last-position logits of each prompt, prefilled alone.
pub(super) fn last_logits(model: &mut dyn Decoder, prompts: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
    prompts
        .iter()
        .map(|ids| Ok(model.prefill(std::slice::from_ref(ids), ids.len() + 1)?.squeeze(0)?.to_vec1::<f32>()?))
        .collect()
}

/// `n` greedy tokens after `prompt`.
pub(super) fn greedy(model: &mut dyn Decoder, prompt: &[u32], n: usize) -> Result<Vec<u32>> {
    let mut logits = model.prefill(&[prompt.to_vec()], prompt.len() + n + 1)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let token = argmax_row(&logits)?;
        out.push(token);
        logits = model.step(&[token])?;
    }
    Ok(out)
}

/// The study's chat prompts for the registry's problems: a first and a last submission, and a next step after
/// the reference solution, until `n` prompts.
pub(super) fn study_prompts(ctx: &Context, n: usize) -> Result<Vec<String>> {
    let registry = ctx.registry()?;
    let problems: Vec<_> = registry.iter().map(|p| Arc::new(p.clone())).collect();
    ensure!(!problems.is_empty(), "{}: no problems", ctx.problems.display());
    let prompt = |i: usize| {
        let problem = &problems[i % problems.len()];
        let mut request = Request::bare(Arc::clone(problem));
        request.target = match i / problems.len() % 3 {
            0 => Target::Stage(Stage::First),
            1 => Target::Stage(Stage::Last),
            _ => {
                request.history = vec![Attempt { code: problem.solution.clone(), feedback: None }];
                Target::Next
            }
        };
        prompt::chatml(&prompt::prompted(&request))
    };
    Ok((0..n).map(prompt).collect())
}
