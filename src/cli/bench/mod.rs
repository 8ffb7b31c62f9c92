//! `studentsim bench`: throughput figures against a peer measured in the same run. Not part of the tests.

mod grade;
mod metrics;
mod qwen;

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::Context;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Grade the Refactory corpus (correct + wrong programs) in the sandbox and, in the same run, with native
    /// `python3` running doctest in one subprocess per submission; print submissions/s for both and the ratio.
    Grade(grade::GradeArgs),
    /// Compute the per-row metrics (sizes, AST shape, PEP 8 plain and wrapped, edit distance within streams) of
    /// a trajectory file and, in the same run, with a Python pipeline (`ast`, native pycodestyle, rapidfuzz's
    /// Levenshtein) on as many processes; print both times and the ratio.
    Metrics(metrics::MetricsArgs),
    /// Prompt and decode tokens/s of the in-process Qwen2 (random weights at Qwen2.5-Coder-0.5B's shape, f32)
    /// and, in the same run, of Hugging Face transformers on PyTorch with the same weights and threads; the
    /// ratio, how closely the logits agree, and the same weights as GGUF Q4_0.
    Qwen(qwen::QwenArgs),
}

pub fn run(ctx: &Context, cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Grade(args) => grade::run(ctx, args),
        BenchCommand::Metrics(args) => metrics::run(ctx, args),
        BenchCommand::Qwen(args) => qwen::run(ctx, args),
    }
}
