//! qwen-student in process: a Qwen2 / Qwen2.5 model run by candle, as a [`Generator`].
//!
//! - [`config`] reads `config.json` and `generation_config.json` tolerantly;
//! - [`weights`] maps the safetensors (single or sharded) and merges a PEFT LoRA adapter ([`lora`]) at load;
//! - [`model`] is our corrected Qwen2 (f32 RoPE tables, padded batches, a preallocated KV cache);
//! - [`gguf`] runs a quantized GGUF file instead;
//! - [`engine`] is the decode loop and [`sampler`] the study's sampling with transformers' semantics;
//! - [`random`] writes seeded random checkpoints (tests and `bench qwen`; no weights can be downloaded here).
//!
//! [`LocalModel`] ties them together: one thread owns the model and serves requests in batches.

pub mod config;
pub mod engine;
pub mod gguf;
pub mod lora;
pub mod matvec;
pub mod model;
pub mod random;
pub mod sampler;
pub mod weights;

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use anyhow::{Result, anyhow, bail};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use tokenizers::Tokenizer;
use tokio::sync::oneshot;

use super::prompt;
use super::reply::extract_code;
use super::{BoxFuture, Generation, Generator, NoCode, Request, prompt_sha256, raw_reply};
use crate::BadInput;
use config::{Config, GenerationConfig};
use engine::{Completion, Decoder, Engine};
use sampler::Sampling;

/// Which prompt layout the model was trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// The study's fine-tuned completion layout (qwen-student and its base model).
    FineTuned,
    /// The prompted layout in Qwen's chat template (an instruct model).
    Chat,
}

/// The Qwen2.5 `tokenizer.json` that `runtimes/setup.sh` fetches into the runtime folder.
pub fn fetched_tokenizer(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("qwen2.5-tokenizer/tokenizer.json")
}

/// The real Qwen2.5-Coder-0.5B-Instruct GGUF (Q4_K_M) that `runtimes/setup.sh` fetches into the runtime folder.
pub fn fetched_gguf(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
}

/// Where the weights come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A Hugging Face folder, with an optional PEFT LoRA adapter folder merged at load.
    Folder { dir: PathBuf, adapter: Option<PathBuf> },
    /// A GGUF file and the `tokenizer.json` to use with it, with an optional PEFT LoRA adapter folder.
    Gguf { file: PathBuf, tokenizer: PathBuf, adapter: Option<PathBuf> },
}

/// Sampling settings given on the command line; each overrides `generation_config.json`, which overrides the
/// study's defaults.
#[derive(Debug, Clone, Default)]
pub struct SamplingOverrides {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub min_p: Option<f64>,
    pub repetition_penalty: Option<f64>,
    pub max_new_tokens: Option<usize>,
}

/// A local model behind the [`Generator`] trait. One thread owns the model and serves requests in batches: a
/// request's samples always decode together, and with `batch_rows` > 1 other requests waiting at that moment
/// join the batch (left-padded), which multiplies throughput but lets a row's batch partners, and so the last
/// bits of its logits, depend on timing. A request's samples share one prefill, which starts after the longest
/// prefix it shares with a recent prompt: with several rollout jobs, which prompts are recent depends on timing
/// too (the logits differ from a cold prefill's by ~1e-7).
pub struct LocalModel {
    name: String,
    layout: Layout,
    tokenizer: Arc<Tokenizer>,
    max_positions: usize,
    jobs: mpsc::Sender<Job>,
    /// The most requests one decoded batch has held so far.
    largest_batch: Arc<std::sync::atomic::AtomicUsize>,
}

/// One request's prompt and sample seeds, and where its completions go.
struct Job {
    prompt: Vec<u32>,
    seeds: Vec<u64>,
    reply: oneshot::Sender<Result<Vec<Completion>, String>>,
}

impl LocalModel {
    pub fn load(
        name: &str,
        source: &Source,
        layout: Layout,
        device: &Device,
        overrides: &SamplingOverrides,
        batch_rows: usize,
    ) -> Result<Self> {
        let (decoder, tokenizer_path, generation): (Box<dyn Decoder>, PathBuf, GenerationConfig) = match source {
            Source::Folder { dir, adapter } => {
                let (model, generation) = load_folder(dir, adapter.as_deref(), device)?;
                (Box::new(model), dir.join("tokenizer.json"), generation)
            }
            Source::Gguf { file, tokenizer, adapter } => {
                if !device.is_cpu() {
                    return Err(BadInput(
                        "--gguf runs on the CPU only; leave out --device or give --device cpu".into(),
                    )
                    .into());
                }
                (
                    Box::new(gguf::load_adapted(file, adapter.as_deref())?),
                    tokenizer.clone(),
                    GenerationConfig::default(),
                )
            }
        };
        let tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| BadInput(format!("{}: cannot read the tokenizer: {e}", tokenizer_path.display())))?;
        let tokenizer = Arc::new(tokenizer);
        let sampling = sampling(&generation, overrides);
        sampling.check().map_err(BadInput)?;
        let mut stop_tokens = generation.eos_token_id.clone();
        for special in ["<|endoftext|>", "<|im_end|>"] {
            if let Some(id) = tokenizer.token_to_id(special).filter(|id| !stop_tokens.contains(id)) {
                stop_tokens.push(id);
            }
        }
        let max_positions = decoder.max_positions();
        let engine = Engine { decoder, tokenizer: Arc::clone(&tokenizer), sampling, stop_tokens };
        let (jobs, queue) = mpsc::channel();
        let largest_batch = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let largest = Arc::clone(&largest_batch);
        std::thread::Builder::new()
            .name("local-model".into())
            .spawn(move || serve(engine, &queue, batch_rows.max(1), &largest))?;
        Ok(Self { name: name.to_owned(), layout, tokenizer, max_positions, jobs, largest_batch })
    }

    /// The most requests that have decoded together in one batch so far.
    pub fn largest_batch(&self) -> usize {
        self.largest_batch.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The prompt text for a request in this model's layout.
    pub fn prompt(&self, request: &Request) -> String {
        match self.layout {
            Layout::FineTuned => prompt::fine_tuned(request),
            Layout::Chat => prompt::chatml(&prompt::prompted(request)),
        }
    }

    /// The prompt's tokens, or an error when they leave the model no room to answer.
    fn encode_fitting(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.tokenizer.encode(text, false).map_err(|e| anyhow!("tokenizing the prompt: {e}"))?;
        let tokens = encoding.get_ids().to_vec();
        if tokens.len() >= self.max_positions {
            bail!("its prompt is {} tokens, longer than the model's context of {}", tokens.len(), self.max_positions);
        }
        Ok(tokens)
    }

    /// Refuse a request whose prompt alone leaves no room for the answer, as bad input.
    pub fn check_fits(&self, request: &Request) -> Result<()> {
        self.encode_fitting(&self.prompt(request))
            .map(drop)
            .map_err(|e| BadInput(format!("problem {}: {e}", request.problem.id)).into())
    }

    async fn run(&self, request: &Request, n: usize) -> Result<Vec<Generation>> {
        let text = self.prompt(request);
        let prompt_sha256 = prompt_sha256(&text);
        // Checked here, not only in the engine, so that one long prompt fails its own row and not its batch.
        let prompt = self.encode_fitting(&text)?;
        let seeds: Vec<u64> = (0..n as u64).map(|i| request.seed.wrapping_add(i)).collect();
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { prompt, seeds, reply }).map_err(|_| anyhow!("the model thread has stopped"))?;
        let completions = answer.await.map_err(|_| anyhow!("the model thread has stopped"))?.map_err(|e| anyhow!(e))?;
        completions
            .into_iter()
            .map(|c| {
                let (code, submit) = self.code_of(&c.text).ok_or_else(|| NoCode::new(&c.text, !c.stopped))?;
                Ok(Generation {
                    code,
                    submit,
                    prompt_sha256: Some(prompt_sha256.clone()),
                    raw: Some(raw_reply(&c.text)),
                    truncated: !c.stopped,
                })
            })
            .collect()
    }

    /// The code in a completion. The fine-tuned layout's completion is the code itself (normally wrapped in
    /// `<code>` tags), so text without tags counts as code up to `</code>`.
    fn code_of(&self, text: &str) -> Option<(String, bool)> {
        extract_code(text)
            .or_else(|| {
                (self.layout == Layout::FineTuned).then(|| {
                    let code = text.split("</code>").next().unwrap_or("");
                    (code.replace("<SUBMIT>", "").trim().to_owned(), text.contains("<SUBMIT>"))
                })
            })
            .filter(|(code, _)| !code.is_empty())
    }
}

/// How long the model thread waits for more requests to fill a batch. Rollout tasks send their next requests
/// a few milliseconds apart (each first grades its last attempt), so taking only those already waiting would
/// mostly decode batches of one; a window this short is nothing next to a batch's seconds of decoding.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(100);

/// The model thread: take the next request, add those that arrive within [`BATCH_WINDOW`] up to `batch_rows`
/// rows, decode them as one batch, answer each; until every sender is gone.
fn serve(mut engine: Engine, queue: &mpsc::Receiver<Job>, batch_rows: usize, largest: &std::sync::atomic::AtomicUsize) {
    while let Ok(first) = queue.recv() {
        let mut rows = first.seeds.len();
        let mut batch = vec![first];
        let deadline = std::time::Instant::now() + BATCH_WINDOW;
        while rows < batch_rows {
            let wait = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(job) = queue.recv_timeout(wait) else { break };
            rows += job.seeds.len();
            batch.push(job);
        }
        largest.fetch_max(batch.len(), std::sync::atomic::Ordering::Relaxed);
        let flat: Vec<(Vec<u32>, u64)> =
            batch.iter().flat_map(|j| j.seeds.iter().map(|&s| (j.prompt.clone(), s))).collect();
        match engine.complete(&flat) {
            Ok(mut completions) => {
                for job in batch {
                    let rest = completions.split_off(job.seeds.len());
                    let _ = job.reply.send(Ok(std::mem::replace(&mut completions, rest)));
                }
            }
            Err(e) => {
                for job in batch {
                    let _ = job.reply.send(Err(format!("{e:#}")));
                }
            }
        }
    }
}

impl Generator for LocalModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Generation>> {
        Box::pin(async move { Ok(self.run(request, 1).await?.remove(0)) })
    }

    fn generate_many<'a>(&'a self, request: &'a Request, n: usize) -> BoxFuture<'a, Result<Vec<Generation>>> {
        Box::pin(self.run(request, n))
    }
}

/// The model of a Hugging Face folder (with the adapter merged), and its generation config.
pub fn load_folder(dir: &Path, adapter: Option<&Path>, device: &Device) -> Result<(model::Qwen2, GenerationConfig)> {
    if !dir.is_dir() {
        return Err(BadInput(format!("{}: no such model folder", dir.display())).into());
    }
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(
            BadInput(format!("{}: no config.json (is this a Hugging Face model folder?)", dir.display())).into()
        );
    }
    let config = Config::read(&config_path)?;
    let generation = GenerationConfig::read_if_present(&dir.join("generation_config.json"))?;
    let files = weights::weight_files(dir)?;
    let adapter = adapter.map(lora::Adapter::read).transpose()?;
    let backend = weights::MergedWeights::open(&files, adapter)?;
    let dtype = if device.is_cpu() { DType::F32 } else { DType::BF16 };
    let vb = VarBuilder::from_backend(Box::new(backend), dtype, device.clone());
    // Every failure here is a missing tensor or a shape that disagrees with config.json.
    let model = model::Qwen2::new(&config, vb, None)
        .map_err(|e| BadInput(format!("{}: the weights do not fit config.json: {}", dir.display(), first_line(&e))))?;
    Ok((model, generation))
}

fn sampling(generation: &GenerationConfig, o: &SamplingOverrides) -> Sampling {
    let study = Sampling::default();
    Sampling {
        temperature: o.temperature.or(generation.temperature).unwrap_or(study.temperature),
        top_p: o.top_p.or(generation.top_p).unwrap_or(study.top_p),
        top_k: o.top_k.or(generation.top_k).unwrap_or(study.top_k),
        min_p: o.min_p.or(generation.min_p).unwrap_or(study.min_p),
        repetition_penalty: o.repetition_penalty.or(generation.repetition_penalty).unwrap_or(study.repetition_penalty),
        max_new_tokens: o.max_new_tokens.unwrap_or(study.max_new_tokens),
    }
}

/// A candle error's message without the backtrace it carries when RUST_BACKTRACE is set.
pub(crate) fn first_line(error: &candle_core::Error) -> String {
    error.to_string().lines().next().unwrap_or_default().to_owned()
}
