//! The generator options every rollout mode shares, and building the generator they name.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use candle_core::Device;
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::output::progress_of_unknown_length;
use super::{Context, LimitArgs, read_rows};
use crate::BadInput;
use crate::generate::Generator;
use crate::generate::baseline::{CopyLast, Reference};
use crate::generate::edits::EditModel;
use crate::generate::openai::{Endpoint, OpenAi, OpenAiConfig};
use crate::generate::qwen::sampler::Sampling;
use crate::generate::qwen::{Layout, LocalModel, SamplingOverrides, Source, fetched_tokenizer};
use crate::generate::retrieval::Retrieval;
use crate::trajectory::Submission;

/// Which generator writes the attempts, and its settings. `Default` holds every default, which `--help` shows;
/// `demo` and `leaderboard` start from it. Serialized into the settings hash of a rollout shard.
#[derive(Debug, Clone, Args, Serialize)]
pub struct GeneratorArgs {
    /// [default: qwen when --model names a folder or --gguf is given, else edits]
    #[arg(long, value_enum)]
    pub generator: Option<GeneratorName>,
    /// Training rows for the retrieval simulator and the edit model, e.g. the train part of the same split.
    #[arg(long, value_name = "JSONL")]
    pub train: Option<PathBuf>,
    /// Nearest training states the retrieval simulator and the edit model draw from.
    #[arg(long, default_value_t = GeneratorArgs::default().neighbours)]
    pub neighbours: usize,
    #[command(flatten)]
    pub openai: OpenAiArgs,
    #[command(flatten)]
    pub qwen: QwenArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

impl Default for GeneratorArgs {
    fn default() -> Self {
        Self {
            generator: None,
            train: None,
            neighbours: 5,
            openai: OpenAiArgs::default(),
            qwen: QwenArgs::default(),
            sampling: SamplingArgs::default(),
        }
    }
}

/// A built generator, and the local model behind it when there is one.
type Built = (Arc<dyn Generator>, Option<Arc<LocalModel>>);

impl GeneratorArgs {
    fn name(&self) -> GeneratorName {
        let local = self.qwen.gguf.is_some() || self.openai.model.as_deref().is_some_and(|m| Path::new(m).is_dir());
        self.generator.unwrap_or(if local { GeneratorName::Qwen } else { GeneratorName::Edits })
    }

    /// The --train rows, which `generator` needs.
    fn train_rows(&self, generator: &str) -> Result<Vec<Submission>> {
        let train = self.train.as_deref().ok_or_else(|| {
            BadInput(format!("--generator {generator} needs --train JSONL (the rows it learns from)"))
        })?;
        Ok(read_rows(train)?.into_iter().map(|(_, r)| r).collect())
    }

    /// The generator, and the local model again when it is one (so problems can be checked against its
    /// context).
    /// `limits` and `jobs` are the rollout's: the edit model grades its candidates in a sandbox of its own.
    pub fn build(&self, ctx: &Context, rt: &tokio::runtime::Runtime, limits: &LimitArgs, jobs: usize) -> Result<Built> {
        Ok(match self.name() {
            GeneratorName::CopyLast => (Arc::new(CopyLast), None),
            GeneratorName::Reference => (Arc::new(Reference), None),
            GeneratorName::Retrieval => {
                (Arc::new(Retrieval::fit(&self.train_rows("retrieval")?, self.neighbours)), None)
            }
            GeneratorName::Edits => {
                let model = EditModel::fit(&self.train_rows("edits")?, self.neighbours)
                    .judged_by(ctx.remembering_grader(limits, jobs)?);
                (Arc::new(model), None)
            }
            GeneratorName::Openai => {
                let client = openai_client(self)?;
                rt.block_on(client.check())?;
                (Arc::new(client), None)
            }
            GeneratorName::Qwen => {
                let model = Arc::new(local_model(ctx, self)?);
                (Arc::clone(&model) as Arc<dyn Generator>, Some(model))
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorName {
    /// Real students' edits, transplanted onto the student's own code, with the outcome drawn from the training
    /// label transitions (needs --train; weight-free).
    Edits,
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
#[derive(Debug, Clone, Args, Serialize)]
#[command(next_help_heading = "Model (--model and --name for openai and qwen; the rest for openai)")]
pub struct OpenAiArgs {
    /// API root, up to the version segment.
    #[arg(long, value_name = "URL", default_value_t = OpenAiArgs::default().base_url)]
    pub base_url: String,
    /// --generator openai: the model name sent with each request. --generator qwen: the Hugging Face model
    /// folder (config.json, model.safetensors or its shards, tokenizer.json).
    #[arg(long, value_name = "NAME|DIR")]
    pub model: Option<String>,
    /// Name written in each row's `source` [default: the model's name].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Environment variable holding the API key (sent as a bearer token when set).
    #[arg(long, value_name = "VAR", default_value_t = OpenAiArgs::default().api_key_env)]
    api_key_env: String,
    /// chat: the study's prompted layout; completions: the fine-tuned layout (qwen-student).
    #[arg(long, value_enum, default_value_t = OpenAiArgs::default().endpoint)]
    endpoint: Endpoint,
    /// Requests in flight at once.
    #[arg(long, default_value_t = OpenAiArgs::default().concurrency)]
    concurrency: usize,
    /// Seconds one request may take.
    #[arg(long, value_name = "SECS", default_value_t = OpenAiArgs::default().request_timeout)]
    request_timeout: f64,
    /// Retries of a request that got 429, 5xx or no connection (exponential backoff from 0.5 s).
    #[arg(long, default_value_t = OpenAiArgs::default().retries)]
    retries: u32,
}

impl Default for OpenAiArgs {
    fn default() -> Self {
        Self {
            base_url: "http://localhost:8000/v1".into(),
            model: None,
            name: None,
            api_key_env: "OPENAI_API_KEY".into(),
            endpoint: Endpoint::Chat,
            concurrency: 8,
            request_timeout: 120.0,
            retries: 4,
        }
    }
}

/// The in-process model, for --generator qwen (with --model DIR).
#[derive(Debug, Clone, Args, Serialize)]
#[command(next_help_heading = "Local model (--generator qwen)")]
pub struct QwenArgs {
    /// A PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors; `studentsim train` writes
    /// one): merged into --model at load, or with --gguf merged into the prefill weights and run beside the
    /// quantized ones as an f32 low-rank path when decoding.
    #[arg(long, value_name = "DIR")]
    pub adapter: Option<PathBuf>,
    /// A quantized Qwen2 GGUF file to run instead of --model (CPU only).
    #[arg(long, value_name = "FILE")]
    pub gguf: Option<PathBuf>,
    /// tokenizer.json for --gguf [default: one beside the file, else the Qwen2.5 tokenizer fetched by
    /// runtimes/setup.sh].
    #[arg(long, value_name = "FILE", requires = "gguf")]
    tokenizer: Option<PathBuf>,
    /// The prompt layout the model expects.
    #[arg(long, value_enum, default_value_t = QwenArgs::default().layout)]
    pub layout: Layout,
    /// Sequences decoded together: a request's samples, plus other requests waiting at that moment (raise --jobs
    /// to keep batches full). With more than 1 a row's batch partners depend on timing, which can change the
    /// last bits of its logits and so, rarely, a sampled token between runs.
    #[arg(long, value_name = "ROWS", default_value_t = QwenArgs::default().batch, value_parser = clap::value_parser!(u16).range(1..))]
    pub batch: u16,
    /// Where to run: cuda needs a build with `--features cuda`.
    #[arg(long, value_enum, default_value_t = QwenArgs::default().device)]
    device: DeviceName,
}

impl Default for QwenArgs {
    fn default() -> Self {
        Self {
            adapter: None,
            gguf: None,
            tokenizer: None,
            layout: Layout::FineTuned,
            batch: 1,
            device: DeviceName::Auto,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum DeviceName {
    /// The first CUDA GPU when built with --features cuda and one is present, else the CPU.
    Auto,
    Cpu,
    Cuda,
}

/// Sampling, for --generator openai and qwen. A local model's generation_config.json fills what is not given
/// here; the study's settings fill the rest.
#[derive(Debug, Clone, Args, Serialize)]
#[command(next_help_heading = "Sampling (--generator openai and qwen)")]
pub struct SamplingArgs {
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
    #[arg(long, default_value_t = SamplingArgs::default().max_tokens, value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens: u32,
}

impl Default for SamplingArgs {
    fn default() -> Self {
        Self { temperature: None, top_p: None, top_k: None, min_p: None, repetition_penalty: None, max_tokens: 1024 }
    }
}

fn openai_client(args: &GeneratorArgs) -> Result<OpenAi> {
    let (o, s) = (&args.openai, &args.sampling);
    let study = Sampling::default();
    let model = o.model.clone().ok_or_else(|| BadInput("--generator openai needs --model NAME".into()))?;
    let timeout = super::positive_secs("request-timeout", o.request_timeout)?;
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
        temperature: s.temperature.unwrap_or(study.temperature),
        top_p: s.top_p.unwrap_or(study.top_p),
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
fn local_model(ctx: &Context, args: &GeneratorArgs) -> Result<LocalModel> {
    let q = &args.qwen;
    let (source, default_name) = match (&q.gguf, &args.openai.model) {
        (Some(file), _) => {
            let beside = file.with_file_name("tokenizer.json");
            let tokenizer = q
                .tokenizer
                .clone()
                .unwrap_or_else(|| if beside.is_file() { beside } else { fetched_tokenizer(&ctx.runtime_dir()) });
            let name = match &q.adapter {
                Some(adapter) => adapter.file_name(),
                None => file.file_stem(),
            };
            (
                Source::Gguf { file: file.clone(), tokenizer, adapter: q.adapter.clone() },
                name.map(|s| s.to_string_lossy().into_owned()),
            )
        }
        (None, Some(dir)) => {
            let dir = PathBuf::from(dir);
            let name = q.adapter.as_ref().unwrap_or(&dir).file_name().map(|s| s.to_string_lossy().into_owned());
            (Source::Folder { dir, adapter: q.adapter.clone() }, name)
        }
        (None, None) => {
            return Err(
                BadInput("--generator qwen needs --model DIR (a Hugging Face folder) or --gguf FILE".into()).into()
            );
        }
    };
    let device = match q.device {
        DeviceName::Auto => Device::cuda_if_available(0)?,
        DeviceName::Cpu => Device::Cpu,
        DeviceName::Cuda => Device::new_cuda(0).map_err(|e| {
            BadInput(format!("--device cuda: {e} (build with `cargo build --release --features cuda`)"))
        })?,
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
