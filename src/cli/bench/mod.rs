//! `studentsim-dev bench`: throughput figures against a peer measured in the same run. Not part of the tests.

mod adapter;
mod edits;
mod embed;
mod grade;
mod load;
mod metrics;
mod qwen;
mod qwen_gguf;
mod qwen_shared;
mod qwen_transformers;
mod serve;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, Result, ensure};
use clap::Subcommand;
use serde::de::DeserializeOwned;

use super::Context;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Grade the Refactory corpus (correct + wrong programs) in the sandbox and, in the same run, with native
    /// `python3` running doctest in one subprocess per submission; print submissions/s for both and the ratio.
    Grade(grade::GradeArgs),
    /// Grade many submissions (default 20,000: Refactory's programs, each several times, mixed with a hostile
    /// corpus and leak probes) in one process, a thousand at a time; print the throughput and the host's RSS
    /// after each thousand, the peak RSS, and any copy of a program graded differently from its first copy.
    Load(load::LoadArgs),
    /// Compute the per-row metrics (sizes, AST shape, PEP 8 plain and wrapped, edit distance within streams) of
    /// a trajectory file and, in the same run, with a Python pipeline (`ast`, native pycodestyle, rapidfuzz's
    /// Levenshtein) on as many processes; print both times and the ratio.
    Metrics(metrics::MetricsArgs),
    /// Prompt and decode tokens/s of the in-process Qwen2 (random weights at Qwen2.5-Coder-0.5B's shape, f32)
    /// and, in the same run, of Hugging Face transformers on PyTorch with the same weights and threads; the
    /// ratio, how closely the logits agree, and the same weights as GGUF Q4_0. With --gguf FILE: that real
    /// model against llama.cpp (llama-cpp-python) on the same file and threads; with --peer transformers, its
    /// transformers folder and a PEFT adapter through --model and --adapter against transformers and PEFT.
    Qwen(qwen_shared::QwenArgs),
    /// A LoRA adapter (`studentsim train`'s) on the GGUF model against PEFT on the folder it was trained on, in the
    /// same run: last-position logits (beside the base model's own agreement), decode tokens/s with and without
    /// the adapter and the ratio, decode-path against prefill-path logits, and the share of the adapter that
    /// requantizing the merged weights would keep.
    Adapter(adapter::AdapterArgs),
    /// Next steps per second of the edit model with its candidates' grading left out, and of retrieval (which
    /// grades nothing) on the same requests: the NS_OP targets of a split of a dataset (default: the bundled
    /// examples), one request at a time on one thread.
    Edits(edits::EditsArgs),
    /// Programs/s of the code embedder (candle) and, in the same run, of sentence-transformers on PyTorch with
    /// the same model folder, threads and length limit, each at its best batch size; the ratio and the largest
    /// cosine difference between the two sides' vectors.
    Embed(embed::EmbedArgs),
    /// `studentsim serve` on loopback under concurrent clients (default 5,000 requests from 64: Refactory's
    /// programs with the hostile corpus and leak probes), against `grade --jobs N` on the same submissions in
    /// the same run: throughput and the ratio, p50/p99 latency, the share of 429s, peak RSS, verdicts that
    /// differ; then slow, oversized, malformed and unknown-problem clients, and whether it still serves.
    Serve(serve::ServeBenchArgs),
}

pub fn run(ctx: &Context, cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Edits(args) => edits::run(ctx, args),
        BenchCommand::Embed(args) => embed::run(ctx, args),
        BenchCommand::Grade(args) => grade::run(ctx, args),
        BenchCommand::Load(args) => load::run(ctx, args),
        BenchCommand::Metrics(args) => metrics::run(ctx, args),
        BenchCommand::Qwen(args) => qwen::run(ctx, args),
        BenchCommand::Adapter(args) => adapter::run(ctx, &args),
        BenchCommand::Serve(args) => serve::run(ctx, args),
    }
}

/// The python of a peer environment that `runtimes/SCRIPT` makes on first use and prints.
fn peer_python(script: &str) -> Result<PathBuf> {
    peer_python_with(script, &[])
}

/// [`peer_python`] with `env` set for the script (e.g. which build it makes).
fn peer_python_with(script: &str, env: &[(&str, &str)]) -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("runtimes").join(script);
    let out = Command::new(&script)
        .envs(env.iter().copied())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(out.status.success(), "{} failed ({})", script.display(), out.status);
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// A peer process that ended without success; callers tell a crash (its signal) from a failure.
#[derive(Debug, thiserror::Error)]
#[error("{what} failed ({status})")]
struct PeerFailed {
    what: String,
    status: std::process::ExitStatus,
}

/// Run `script` with `python -c`, `job` as JSON on its stdin, and read its stdout as JSON; its stderr passes
/// through. `what` names the run in errors; a run that fails is a [`PeerFailed`].
fn python_json<T: DeserializeOwned>(python: &Path, script: &str, job: &serde_json::Value, what: &str) -> Result<T> {
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} for {what}", python.display()))?;
    child.stdin.take().expect("piped").write_all(job.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(PeerFailed { what: what.to_owned(), status: out.status }.into());
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("reading the result of {what}"))
}
