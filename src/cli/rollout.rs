//! `studentsim rollout`: simulated attempts, graded in the sandbox, written as trajectory rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::builder::TypedValueParser as _;
use jiff::SignedDuration;
use clap::{Args, Subcommand, ValueEnum};

use super::output::progress_of_unknown_length;
use super::{Context, LimitArgs, default_jobs, registry_problems, tokio_runtime};
use candle_core::Device;

use crate::generate::{Generator, Request};
use crate::generate::baseline::{CopyLast, Reference};
use crate::generate::openai::{Endpoint, OpenAi, OpenAiConfig};
use crate::generate::qwen::{Layout, LocalModel, SamplingOverrides, Source};
use crate::generate::retrieval::Retrieval;
use crate::rollout::output::ResumableOutput;
use crate::rollout::tutor::{CommandTutor, HttpTutor, Tutor};
use crate::rollout::{self, Prepared, Rollout, StreamOptions};
use crate::trajectory::Submission;
use crate::{BadInput, jsonl};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GeneratorName {
    /// Real successors of the nearest real states from other students (needs --train).
    Retrieval,
    /// Repeats the previous attempt.
    CopyLast,
    /// Always the problem's reference solution.
    Reference,
    /// A model behind an OpenAI-compatible API (see the --base-url options).
    Openai,
    /// qwen-student (or any Qwen2 / Qwen2.5) run in process: --model DIR [--adapter DIR], or --gguf FILE.
    Qwen,
}

/// The served model, for --generator openai.
#[derive(Debug, Args)]
#[command(next_help_heading = "Model (--model and --name for openai and qwen; the rest for openai)")]
struct OpenAiArgs {
    /// API root, up to the version segment.
    #[arg(long, value_name = "URL", default_value = "http://localhost:8000/v1")]
    base_url: String,
    /// --generator openai: the model name sent with each request. --generator qwen: the Hugging Face model
    /// folder (config.json, model.safetensors or its shards, tokenizer.json).
    #[arg(long, value_name = "NAME|DIR")]
    model: Option<String>,
    /// Name written in each row's `source` [default: the model's name].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Environment variable holding the API key (sent as a bearer token when set).
    #[arg(long, value_name = "VAR", default_value = "OPENAI_API_KEY")]
    api_key_env: String,
    /// chat: the study's prompted layout; completions: the fine-tuned layout (qwen-student).
    #[arg(long, value_enum, default_value_t = Endpoint::Chat)]
    endpoint: Endpoint,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds one request may take.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    request_timeout: f64,
    /// Retries of a request that got 429, 5xx or no connection (exponential backoff from 0.5 s).
    #[arg(long, default_value_t = 4)]
    retries: u32,
}

/// The in-process model, for --generator qwen (with --model DIR).
#[derive(Debug, Args)]
#[command(next_help_heading = "Local model (--generator qwen)")]
struct QwenArgs {
    /// A PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) merged into --model at load.
    #[arg(long, value_name = "DIR")]
    adapter: Option<PathBuf>,
    /// A quantized Qwen2 GGUF file to run instead of --model (CPU only).
    #[arg(long, value_name = "FILE", conflicts_with = "adapter")]
    gguf: Option<PathBuf>,
    /// tokenizer.json for --gguf [default: one beside the file, else the Qwen2.5 tokenizer fetched by
    /// runtimes/setup.sh].
    #[arg(long, value_name = "FILE", requires = "gguf")]
    tokenizer: Option<PathBuf>,
    /// The prompt layout the model expects.
    #[arg(long, value_enum, default_value_t = Layout::FineTuned)]
    layout: Layout,
    /// Sequences decoded together: a request's samples, plus other requests waiting at that moment (raise --jobs
    /// to keep batches full). With more than 1 a row's batch partners depend on timing, which can change the
    /// last bits of its logits and so, rarely, a sampled token between runs.
    #[arg(long, value_name = "ROWS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    batch: u16,
    /// Where to run: cuda needs a build with `--features cuda`.
    #[arg(long, value_enum, default_value_t = DeviceName::Auto)]
    device: DeviceName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DeviceName {
    /// The first CUDA GPU when built with --features cuda and one is present, else the CPU.
    Auto,
    Cpu,
    Cuda,
}

/// Sampling, for --generator openai and qwen. A local model's generation_config.json fills what is not given
/// here; the study's settings fill the rest.
#[derive(Debug, Args)]
#[command(next_help_heading = "Sampling (--generator openai and qwen)")]
struct SamplingArgs {
    /// Softmax temperature; 0 is greedy [default: 0.7]
    #[arg(long)]
    temperature: Option<f64>,
    /// Nucleus sampling mass [default: 0.8]
    #[arg(long)]
    top_p: Option<f64>,
    /// The k most likely tokens only; 0 is off [default: 20; not sent to an API unless given]
    #[arg(long)]
    top_k: Option<usize>,
    /// Drop tokens below this share of the top one's probability [default: 0; not sent to an API unless given]
    #[arg(long)]
    min_p: Option<f64>,
    /// Transformers' repetition penalty [default: 1, none; not sent to an API unless given].
    #[arg(long)]
    repetition_penalty: Option<f64>,
    /// New tokens per attempt at most.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens: u32,
}

/// What every rollout mode takes.
#[derive(Debug, Args)]
pub(super) struct CommonArgs {
    /// The real rows to simulate (native JSONL), e.g. the ns_op part of a split.
    #[arg(long, value_name = "JSONL")]
    pub(super) input: PathBuf,
    /// Training rows for the retrieval simulator, e.g. the train part of the same split.
    #[arg(long, value_name = "JSONL")]
    train: Option<PathBuf>,
    /// [default: qwen when --model names a folder or --gguf is given, else retrieval]
    #[arg(long, value_enum)]
    generator: Option<GeneratorName>,
    /// Nearest training states the retrieval simulator draws from.
    #[arg(long, default_value_t = 5)]
    neighbours: usize,
    #[command(flatten)]
    openai: OpenAiArgs,
    #[command(flatten)]
    qwen: QwenArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output rows (JSONL), appended as they finish; a rerun with the same arguments skips finished rows.
    #[arg(long, value_name = "JSONL")]
    pub(super) out: PathBuf,
    /// Attempts (next steps) or streams worked on at once.
    #[arg(long, default_value_t = default_jobs())]
    jobs: usize,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Args)]
pub struct NextStepArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Real predecessors each attempt is conditioned on.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    k: usize,
    /// Also show the student's submissions on an earlier problem (student context).
    #[arg(long)]
    context: bool,
}

#[derive(Debug, Args)]
pub struct StagesArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Also show the student's submission on an earlier problem at the same stage (student context).
    #[arg(long)]
    context: bool,
}

#[derive(Debug, Args)]
pub struct StreamArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Attempts after which a stream stops even without success.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,
    /// Simulated seconds between two attempts (the first takes the real stream's start time).
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    interval: u32,
    #[command(flatten)]
    tutor: TutorArgs,
}

/// A tutor bot whose hints go into the next prompt.
#[derive(Debug, Args)]
pub struct TutorArgs {
    /// A program (run with `sh -c`) that reads the state as JSON on stdin and prints a hint (text, or
    /// {"hint": "..."}) after each attempt.
    #[arg(long, value_name = "CMD", conflicts_with = "tutor_url")]
    tutor: Option<String>,
    /// An HTTP endpoint that gets the same JSON POSTed and answers with a hint.
    #[arg(long, value_name = "URL")]
    tutor_url: Option<String>,
    /// Seconds a tutor may take per hint.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    tutor_timeout: f64,
}

impl TutorArgs {
    pub fn build(&self) -> Result<Option<Arc<dyn Tutor>>> {
        let timeout = Duration::try_from_secs_f64(self.tutor_timeout)
            .map_err(|_| BadInput(format!("--tutor-timeout: {} is not a number of seconds", self.tutor_timeout)))?;
        Ok(match (&self.tutor, &self.tutor_url) {
            (Some(command), _) => Some(Arc::new(CommandTutor { command: command.clone(), timeout })),
            (None, Some(url)) => Some(Arc::new(HttpTutor::new(url, timeout)?)),
            (None, None) => None,
        })
    }
}

pub fn run(ctx: &Context, cmd: RolloutCommand) -> Result<ExitCode> {
    let args = match &cmd {
        RolloutCommand::NextStep(a) => &a.common,
        RolloutCommand::Stages(a) => &a.common,
        RolloutCommand::Stream(a) => &a.common,
    };
    let (rollout, rows, rt) = prepare(ctx, args)?;
    let out = Arc::new(ResumableOutput::open(&args.out)?);
    if out.done() > 0 {
        eprintln!("{}: {} rows already there; continuing", args.out.display(), out.done());
    }
    let summary = match &cmd {
        RolloutCommand::NextStep(a) => {
            let bar = progress_of_unknown_length("next steps");
            let summary = rt.block_on(rollout::next_step(&rollout, &rows, a.k, a.context, &out, &bar))?;
            bar.finish_and_clear();
            summary
        }
        RolloutCommand::Stages(a) => {
            let bar = progress_of_unknown_length("stages");
            let summary = rt.block_on(rollout::stages(&rollout, &rows, a.context, &out, &bar))?;
            bar.finish_and_clear();
            summary
        }
        RolloutCommand::Stream(a) => {
            let options = StreamOptions {
                max_attempts: a.max_attempts,
                interval: SignedDuration::from_secs(a.interval.into()),
                tutor: a.tutor.build()?,
            };
            let bar = progress_of_unknown_length("streams");
            let summary = rt.block_on(rollout::streams(&rollout, &rows, options, &out, &bar))?;
            bar.finish_and_clear();
            summary
        }
    };
    eprintln!(
        "{} rows written to {} ({} already there, {} generator failures)",
        summary.written,
        args.out.display(),
        summary.skipped,
        summary.failed
    );
    Ok(ExitCode::SUCCESS)
}

/// Read and check the inputs, build the generator, parse each problem's tests once.
pub(super) fn prepare(ctx: &Context, args: &CommonArgs) -> Result<(Rollout, Vec<Submission>, tokio::runtime::Runtime)> {
    let rows = read_rows(&args.input)?;
    let rt = tokio_runtime(args.jobs)?;
    let mut local = None;
    let generator: Arc<dyn Generator> = match args.generator_name() {
        GeneratorName::CopyLast => Arc::new(CopyLast),
        GeneratorName::Reference => Arc::new(Reference),
        GeneratorName::Retrieval => {
            let train = args.train.as_deref().ok_or_else(|| BadInput("--generator retrieval needs --train JSONL (the rows it retrieves from)".into()))?;
            let train: Vec<Submission> = read_rows(train)?.into_iter().map(|(_, r)| r).collect();
            Arc::new(Retrieval::fit(&train, args.neighbours))
        }
        GeneratorName::Openai => {
            let client = openai_client(args)?;
            rt.block_on(client.check())?;
            Arc::new(client)
        }
        GeneratorName::Qwen => {
            let model = Arc::new(local_model(ctx, args)?);
            local = Some(Arc::clone(&model));
            model
        }
    };
    let registry = ctx.registry()?;
    let found = registry_problems(ctx, &registry, &args.input, rows.iter().map(|(line, r)| (*line, r.problem.as_str())), "")?;
    let grader = ctx.grader(&args.limits, args.jobs)?;
    let mut problems = HashMap::new();
    for (id, problem) in found {
        let problem = Arc::new(problem.clone());
        if let Some(model) = &local {
            model.check_fits(&Request::bare(Arc::clone(&problem)))?;
        }
        let tests = rt.block_on(grader.problem_tests(&problem)).with_context(|| format!("reading the tests of {id}"))?;
        problems.insert(id, Prepared { problem, tests: Arc::new(tests) });
    }
    let rollout = Rollout { grader, generator, problems, seed: args.seed, jobs: args.jobs };
    Ok((rollout, rows.into_iter().map(|(_, r)| r).collect(), rt))
}

impl CommonArgs {
    fn generator_name(&self) -> GeneratorName {
        let local = self.qwen.gguf.is_some() || self.openai.model.as_deref().is_some_and(|m| Path::new(m).is_dir());
        self.generator.unwrap_or(if local { GeneratorName::Qwen } else { GeneratorName::Retrieval })
    }
}

fn openai_client(args: &CommonArgs) -> Result<OpenAi> {
    let (o, s) = (&args.openai, &args.sampling);
    let model = o.model.clone().ok_or_else(|| BadInput("--generator openai needs --model NAME".into()))?;
    let timeout = Duration::try_from_secs_f64(o.request_timeout)
        .map_err(|_| BadInput(format!("--request-timeout: {} is not a number of seconds", o.request_timeout)))?;
    let mut extra_sampling = serde_json::Map::new();
    if let Some(k) = s.top_k {
        extra_sampling.insert("top_k".into(), k.into());
    }
    if let Some(p) = s.min_p {
        extra_sampling.insert("min_p".into(), p.into());
    }
    if let Some(r) = s.repetition_penalty {
        extra_sampling.insert("repetition_penalty".into(), r.into());
    }
    let config = OpenAiConfig {
        base_url: o.base_url.clone(),
        model: model.clone(),
        api_key: std::env::var(&o.api_key_env).ok().filter(|k| !k.is_empty()),
        endpoint: o.endpoint,
        temperature: s.temperature.unwrap_or(0.7),
        top_p: s.top_p.unwrap_or(0.8),
        max_tokens: s.max_tokens,
        extra_sampling,
        concurrency: o.concurrency,
        timeout,
        retries: o.retries,
        backoff: Duration::from_millis(500),
    };
    OpenAi::new(o.name.as_deref().unwrap_or(&model), config)
}

/// The in-process model of --model DIR [--adapter DIR] or --gguf FILE.
fn local_model(ctx: &Context, args: &CommonArgs) -> Result<LocalModel> {
    let q = &args.qwen;
    let (source, default_name) = match (&q.gguf, &args.openai.model) {
        (Some(file), _) => {
            let beside = file.with_file_name("tokenizer.json");
            let tokenizer = q.tokenizer.clone().unwrap_or_else(|| {
                if beside.is_file() { beside } else { ctx.runtime_dir().join("qwen2.5-tokenizer/tokenizer.json") }
            });
            (Source::Gguf { file: file.clone(), tokenizer }, file.file_stem().map(|s| s.to_string_lossy().into_owned()))
        }
        (None, Some(dir)) => {
            let dir = PathBuf::from(dir);
            let name = q.adapter.as_ref().unwrap_or(&dir).file_name().map(|s| s.to_string_lossy().into_owned());
            (Source::Folder { dir, adapter: q.adapter.clone() }, name)
        }
        (None, None) => return Err(BadInput("--generator qwen needs --model DIR (a Hugging Face folder) or --gguf FILE".into()).into()),
    };
    let device = match q.device {
        DeviceName::Auto => Device::cuda_if_available(0)?,
        DeviceName::Cpu => Device::Cpu,
        DeviceName::Cuda => Device::new_cuda(0)
            .map_err(|e| BadInput(format!("--device cuda: {e} (build with `cargo build --release --features cuda`)")))?,
    };
    let s = &args.sampling;
    let overrides = SamplingOverrides {
        temperature: s.temperature,
        top_p: s.top_p,
        top_k: s.top_k,
        min_p: s.min_p,
        repetition_penalty: s.repetition_penalty,
        max_new_tokens: Some(s.max_tokens as usize),
    };
    let name = args.openai.name.clone().or(default_name).unwrap_or_else(|| "qwen".into());
    let bar = progress_of_unknown_length("loading the model");
    let model = LocalModel::load(&name, &source, q.layout, &device, &overrides, q.batch.into());
    bar.finish_and_clear();
    model
}

fn read_rows(path: &Path) -> Result<Vec<(usize, Submission)>, BadInput> {
    let rows: Vec<(usize, Submission)> = jsonl::read(path)?;
    if rows.is_empty() {
        return Err(BadInput(format!("{}: no rows", path.display())));
    }
    Ok(rows)
}
