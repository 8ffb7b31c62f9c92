//! `studentsim rollout`: simulated attempts, graded in the sandbox, written as trajectory rows.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::builder::TypedValueParser as _;
use clap::{Args, Subcommand};
use jiff::SignedDuration;
use serde::Serialize;

use super::generators::GeneratorArgs;
use super::output::progress_of_unknown_length;
use super::shard::{self, Kind, ShardArgs};
use super::{Context, LimitArgs, default_jobs, read_rows, registry_problems, tokio_runtime};
use crate::BadInput;
use crate::generate::Request;
use crate::rollout::output::ResumableOutput;
use crate::rollout::tutor::{CommandTutor, HttpTutor, Tutor};
use crate::rollout::{self, Prepared, Rollout, ShownFeedback, StreamOptions};
use crate::trajectory::Submission;

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Ground-truth-conditioned next steps (Experiment 2): every real submission that has a predecessor is
    /// generated from its k real predecessors; the output row keeps the real row's student, problem, time and
    /// attempt, so `score` pairs them.
    NextStep(NextStepArgs),
    /// The first, middle and last submission of each real stream (Experiment 1), each from the problem alone
    /// (and the student context with --context).
    Stages(StagesArgs),
    /// Autoregressive streams: for each real (student, problem) stream, start from nothing and generate attempt
    /// after attempt; each is graded in the sandbox and its label and failing examples go into the next request,
    /// until it passes, the generator submits (<SUBMIT>), or --max-attempts.
    Stream(StreamArgs),
}

/// What every rollout mode takes.
#[derive(Debug, Args)]
pub(super) struct CommonArgs {
    /// The real rows to simulate (native JSONL), e.g. the ns_op part of a split.
    #[arg(long, value_name = "JSONL")]
    pub(super) input: PathBuf,
    /// The seed of every random choice (a generator's sampling, the edit model's draws).
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// Output rows (JSONL), appended as they finish; a rerun with the same arguments skips finished rows. When the
    /// rollout is done the file is rewritten sorted by (student, problem, attempt), so it does not depend on --jobs.
    #[arg(long = "output", short, alias = "out", value_name = "JSONL")]
    pub(super) out: PathBuf,
    /// Attempts (next steps) or streams worked on at once [default: number of cores].
    #[arg(long, short, value_name = "N", default_value_t = default_jobs(), hide_default_value = true)]
    pub(super) jobs: usize,
    // Last among the options: the generator's flattened groups set their own help headings.
    #[command(flatten)]
    pub(super) generator: GeneratorArgs,
    #[command(flatten)]
    pub(super) limits: LimitArgs,
    #[command(flatten)]
    pub(super) shard: ShardArgs,
}

impl CommonArgs {
    /// A whole (unsharded) rollout of `input` into `out` by `generator`, with the default limits.
    pub(super) fn new(input: PathBuf, out: PathBuf, generator: GeneratorArgs, seed: u64, jobs: usize) -> Self {
        Self { input, generator, seed, out, jobs, limits: LimitArgs::default(), shard: ShardArgs::default() }
    }
}

/// What a rollout simulates: each subcommand's own options, lowered once. Part of a shard's settings hash.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub(super) enum Mode {
    NextStep { k: usize, context: bool, feedback: Option<ShownFeedback> },
    Stages { context: bool },
    Stream { max_attempts: u32, interval: u32, history: Option<usize>, tutor: TutorArgs },
}

impl Mode {
    /// Real predecessors of a next step by default.
    pub(super) const K: usize = 3;
    /// Attempts of a stream at most by default.
    pub(super) const MAX_ATTEMPTS: u32 = 10;
    /// Simulated seconds between two attempts of a stream by default.
    const INTERVAL: u32 = 120;

    /// Next steps from `k` real predecessors, without the student's context or feedback.
    pub(super) fn next_step(k: usize) -> Self {
        Mode::NextStep { k, context: false, feedback: None }
    }

    /// Streams of up to `max_attempts`, every attempt shown, with `tutor`'s hints (if any).
    pub(super) fn stream(max_attempts: u32, history: Option<usize>, tutor: TutorArgs) -> Self {
        Mode::Stream { max_attempts, interval: Mode::INTERVAL, history, tutor }
    }
}

impl RolloutCommand {
    fn lower(self) -> (CommonArgs, Mode) {
        match self {
            RolloutCommand::NextStep(a) => {
                (a.common, Mode::NextStep { k: a.k, context: a.context, feedback: a.feedback })
            }
            RolloutCommand::Stages(a) => (a.common, Mode::Stages { context: a.context }),
            RolloutCommand::Stream(a) => (
                a.common,
                Mode::Stream { max_attempts: a.max_attempts, interval: a.interval, history: a.history, tutor: a.tutor },
            ),
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  studentsim rollout next-step --input split/ns_op.jsonl --output sims/edits.jsonl --generator edits --k 3\n  studentsim rollout next-step --input split/ns_op.jsonl -o sims/qwen.jsonl --generator qwen --gguf model.gguf --feedback"
)]
pub struct NextStepArgs {
    /// Real predecessors each attempt is conditioned on.
    #[arg(long, default_value_t = Mode::K, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    k: usize,
    /// Also show the student's submissions on an earlier problem (student context).
    #[arg(long)]
    context: bool,
    /// Show what the previous real attempt was graded (a FEEDBACK section, as streams show it and as `export sft
    /// --feedback` trains): each previous attempt is graded in the sandbox first. `--feedback other` shows instead
    /// a failing real attempt of another student at the same problem (seeded by --seed): the ablation that asks
    /// whether a model reads its feedback.
    #[arg(long, value_enum, value_name = "WHOSE", num_args = 0..=1, default_missing_value = "own")]
    feedback: Option<ShownFeedback>,
    // Last: its generator groups set help headings that would otherwise take in the options after it.
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  studentsim rollout stages --input split/ns_op.jsonl --output sims/stages.jsonl --generator retrieval"
)]
pub struct StagesArgs {
    /// Also show the student's submission on an earlier problem at the same stage (student context).
    #[arg(long)]
    context: bool,
    // Last: its generator groups set help headings that would otherwise take in the options after it.
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  studentsim rollout stream --input split/ns_op.jsonl --output sims/streams.jsonl --generator edits --max-attempts 10"
)]
pub struct StreamArgs {
    /// Attempts after which a stream stops even without success.
    #[arg(long, default_value_t = Mode::MAX_ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,
    /// Simulated seconds between two attempts (the first takes the real stream's start time).
    #[arg(long, value_name = "SECS", default_value_t = Mode::INTERVAL)]
    interval: u32,
    /// Show each request only the K most recent attempts [default: all]; a model fine-tuned on next steps with k
    /// real predecessors (`train --k 3`) meets its training layout with --history 3.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    history: Option<usize>,
    #[command(flatten)]
    tutor: TutorArgs,
    // Last: its generator groups set help headings that would otherwise take in the options after it.
    #[command(flatten)]
    common: CommonArgs,
}

/// A tutor bot whose hints go into the next prompt.
#[derive(Debug, Clone, Args, Serialize)]
pub struct TutorArgs {
    /// A program (run with `sh -c`) that reads the state as JSON on stdin and prints a hint (text, or
    /// {"hint": "..."}) after each attempt.
    #[arg(long, value_name = "CMD", conflicts_with = "tutor_url")]
    tutor: Option<String>,
    /// An HTTP endpoint that gets the same JSON POSTed and answers with a hint. stress-tutor takes it several
    /// times, to compare tutors under the same simulated load.
    #[arg(long, value_name = "URL")]
    tutor_url: Vec<String>,
    /// Seconds a tutor may take per hint.
    #[arg(long, value_name = "SECS", default_value_t = TutorArgs::default().tutor_timeout)]
    tutor_timeout: f64,
}

impl Default for TutorArgs {
    /// No tutor; 10 s a hint when there is one.
    fn default() -> Self {
        Self { tutor: None, tutor_url: Vec::new(), tutor_timeout: 10.0 }
    }
}

impl TutorArgs {
    /// The tutor program `command` (run with `sh -c`), with the default timeout.
    pub fn command(command: String) -> Self {
        Self { tutor: Some(command), ..Self::default() }
    }

    /// The one tutor of a rollout, if any.
    pub fn build(&self) -> Result<Option<Arc<dyn Tutor>>> {
        if self.tutor_url.len() > 1 {
            return Err(BadInput(format!(
                "--tutor-url given {} times: a rollout has one tutor (stress-tutor compares several)",
                self.tutor_url.len()
            ))
            .into());
        }
        Ok(self.build_all()?.into_iter().next().map(|(_, tutor)| tutor))
    }

    /// Every tutor named, with how to call it (the command or the URL).
    pub fn build_all(&self) -> Result<Vec<(String, Arc<dyn Tutor>)>> {
        let timeout = super::positive_secs("tutor-timeout", self.tutor_timeout)?;
        if let Some(command) = &self.tutor {
            return Ok(vec![(command.clone(), Arc::new(CommandTutor { command: command.clone(), timeout }))]);
        }
        self.tutor_url
            .iter()
            .map(|url| Ok((url.clone(), Arc::new(HttpTutor::new(url, timeout)?) as Arc<dyn Tutor>)))
            .collect()
    }
}

pub fn run(ctx: &Context, cmd: RolloutCommand) -> Result<ExitCode> {
    let (args, mode) = cmd.lower();
    execute(ctx, &args, &mode)?;
    Ok(ExitCode::SUCCESS)
}

/// One rollout: `mode` with the options of `args`.
pub(super) fn execute(ctx: &Context, args: &CommonArgs, mode: &Mode) -> Result<()> {
    // The tutor's arguments are checked before any work: hashing the input, loading the grader and the model.
    let tutor = match mode {
        Mode::Stream { tutor, .. } => tutor.build()?,
        _ => None,
    };
    let settings = (mode, &ctx.problems, &args.generator, args.seed, &args.limits);
    let manifest = args.shard.manifest(Kind::Rollout, &[&args.input], &settings)?;
    let (rollout, rows, rt) = prepare(ctx, args)?;
    let out = Arc::new(ResumableOutput::open(&args.out)?);
    RunStamp::new(&rows, &settings)?.check_and_record(&args.out, out.done())?;
    if out.done() > 0 {
        eprintln!("{}: {} rows already there; continuing", args.out.display(), out.done());
    }
    let summary = match mode {
        &Mode::NextStep { k, context, feedback } => {
            let bar = progress_of_unknown_length("next steps");
            let summary = rt.block_on(rollout::next_step(&rollout, &rows, k, context, feedback, &out, &bar))?;
            bar.finish_and_clear();
            summary
        }
        &Mode::Stages { context } => {
            let bar = progress_of_unknown_length("stages");
            let summary = rt.block_on(rollout::stages(&rollout, &rows, context, &out, &bar))?;
            bar.finish_and_clear();
            summary
        }
        Mode::Stream { max_attempts, interval, history, .. } => {
            let options = StreamOptions {
                max_attempts: *max_attempts,
                interval: SignedDuration::from_secs((*interval).into()),
                tutor,
                shown_attempts: *history,
            };
            let bar = progress_of_unknown_length("streams");
            let summary = rt.block_on(rollout::streams(&rollout, &rows, options, &out, &bar))?;
            bar.finish_and_clear();
            summary
        }
    };
    drop(out);
    // Rows were appended as they finished; the finished file is in key order, whatever --jobs or --shard.
    let bytes = std::fs::read(&args.out).with_context(|| format!("reading {}", args.out.display()))?;
    let lines = rollout::output::lines_in_key_order(&bytes, &args.out)?;
    shard::write_output(&args.out, manifest, |out| Ok(lines.iter().try_for_each(|(_, line)| out.write_all(line))?))?;
    eprintln!(
        "{} rows written to {} ({} already there, {} generator failures)",
        summary.written,
        args.out.display(),
        summary.skipped,
        summary.failed
    );
    Ok(())
}

/// What a rollout's rows follow from, kept beside its output as `OUT.run.json`: a rerun continues only the run that
/// wrote the rows already there, never adds rows made with other settings or from another input to them.
#[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
struct RunStamp {
    /// sha256 of the input rows as read.
    input_sha256: String,
    /// sha256 of every setting that changes the rows (as a shard manifest hashes them).
    settings_sha256: String,
}

impl RunStamp {
    fn new(rows: &[Submission], settings: &impl Serialize) -> Result<Self, BadInput> {
        let input = serde_json::to_vec(&rows).map_err(|e| BadInput(format!("the input rows cannot be hashed: {e}")))?;
        Ok(Self { input_sha256: crate::sha256_hex(&input), settings_sha256: shard::settings_sha256(settings)? })
    }

    /// Refuses an output whose `done` rows another run wrote; records this run's stamp before any row is added.
    fn check_and_record(&self, out: &std::path::Path, done: usize) -> Result<()> {
        let path = shard::beside(out, ".run.json");
        match std::fs::read(&path) {
            Ok(bytes) if done > 0 => {
                let earlier: RunStamp = serde_json::from_slice(&bytes)
                    .map_err(|e| BadInput(format!("{}: not a run stamp ({e}); remove it", path.display())))?;
                if earlier != *self {
                    let what =
                        if earlier.input_sha256 != self.input_sha256 { "another input" } else { "other settings" };
                    return Err(BadInput(format!(
                        "{}: its {done} rows were made from {what} (see {}); pass another --output, or remove both \
                         to start again",
                        out.display(),
                        path.display()
                    ))
                    .into());
                }
                return Ok(());
            }
            Err(_) if done > 0 => eprintln!(
                "warning: {}: {done} rows of a run that recorded no settings; continuing without checking them",
                out.display()
            ),
            _ => {}
        }
        let text = serde_json::to_vec_pretty(self)?;
        crate::jsonl::write_atomically(&path, |w| Ok(std::io::Write::write_all(w, &text)?))
    }
}

/// Read and check the inputs, build the generator, parse each problem's tests once.
pub(super) fn prepare(ctx: &Context, args: &CommonArgs) -> Result<(Rollout, Vec<Submission>, tokio::runtime::Runtime)> {
    let rows = read_rows(&args.input)?;
    let rt = tokio_runtime(args.jobs)?;
    let (generator, local) = args.generator.build(ctx, &rt, &args.limits, args.jobs)?;
    let registry = ctx.registry()?;
    let found =
        registry_problems(ctx, &registry, &args.input, rows.iter().map(|(line, r)| (*line, r.problem.as_str())), "")?;
    let grader = ctx.remembering_grader(&args.limits, args.jobs)?;
    let mut problems = HashMap::new();
    for (id, problem) in found {
        let problem = Arc::new(problem.clone());
        if let Some(model) = &local {
            model.check_fits(&Request::bare(Arc::clone(&problem)))?;
        }
        let tests =
            rt.block_on(grader.problem_tests(&problem)).with_context(|| format!("reading the tests of {id}"))?;
        problems.insert(id, Prepared { problem, tests: Arc::new(tests) });
    }
    let rows: Vec<Submission> = rows.into_iter().map(|(_, r)| r).collect();
    let only_streams = args.shard.shard.map(|s| shard::owned_streams(&rows, s));
    let rollout = Rollout { grader, generator, problems, seed: args.seed, jobs: args.jobs, only_streams };
    Ok((rollout, rows, rt))
}
