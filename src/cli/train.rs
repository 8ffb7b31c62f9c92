//! `studentsim train`: LoRA fine-tuning of a Qwen2 model on real students' streams.
//!
//! The training itself is PEFT on transformers' Trainer (`runtimes/train-lora.py`, embedded in the binary) in the
//! pinned environment `runtimes/train-venv.sh` makes. This side does everything else: it makes the fine-tuning
//! rows (`export sft`'s, with `--feedback` if asked), samples whole streams to a budget, tokenizes them with the
//! tokenizer the model will be run with, checks every input before anything long starts, runs the script,
//! shows its progress and writes the training card beside the adapter.
//!
//! OUT holds `job.json` (what was asked), `rows.jsonl` (the tokenized rows), `checkpoints/`, `train.log` (the
//! script's stderr), and at the end `adapter_config.json`, `adapter_model.safetensors` and `training-card.json`.
//! A rerun with the same job resumes from the newest checkpoint; another job in the same OUT is refused.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::Context;
use super::trajectories::SftArgs;
use crate::BadInput;
use crate::generate::qwen::config::Config;
use crate::generate::qwen::fetched_gguf;
use crate::generate::qwen::fetched_tokenizer;
use crate::generate::sft::{Budget, EncodedRow, sample_streams};
use crate::jsonl::{self, write_atomically};
use crate::{hex, sha256_hex};

const SCRIPT: &str = include_str!("../../runtimes/train-lora.py");

#[derive(Debug, Args)]
#[command(after_help = "Defaults are the study's recipe: LoRA r 16, alpha 32, dropout 0.05 on all linear layers, \
    lr 1e-4 with a cosine schedule, one epoch, effective batch 16, loss on the completion only. The first run \
    installs the training environment (runtimes/train-venv.sh: torch, transformers, PEFT, pinned by sha256; \
    about 6 GB) and dequantizes the base GGUF once. A rerun with the same arguments resumes from the newest \
    checkpoint (every --save-steps steps). Roll the result out with `rollout ... --gguf FILE --adapter OUT` \
    or `--model BASE --adapter OUT`.\n\nExamples:\n  studentsim --problems nc/problems train --input nc/split/train.jsonl --output adapter --feedback --max-tokens 200000")]
pub struct TrainArgs {
    #[command(flatten)]
    rows: SftArgs,
    /// Folder for the adapter, its checkpoints and its training card.
    #[arg(long = "output", short, alias = "out", value_name = "DIR")]
    out: PathBuf,
    /// The base model: a Hugging Face Qwen2 folder, or a GGUF file (dequantized once into the runtime folder)
    /// [default: the fetched Qwen2.5-Coder-0.5B-Instruct GGUF].
    #[arg(long, value_name = "DIR|FILE")]
    base: Option<PathBuf>,
    #[command(flatten)]
    lora: LoraArgs,
    #[command(flatten)]
    optimizer: OptimizerArgs,
    #[command(flatten)]
    budget: BudgetArgs,
    /// Where to train.
    #[arg(long, value_enum, default_value_t = TrainDevice::Cpu)]
    device: TrainDevice,
    /// CPU threads for torch [default: every core].
    #[arg(long, value_name = "N", default_value_t = super::default_jobs(), hide_default_value = true)]
    threads: usize,
    /// Train in bfloat16 autocast (fast on CPUs with AVX-512 BF16 and on GPUs); f32 otherwise.
    #[arg(long)]
    bf16: bool,
    /// Optimizer steps between checkpoints: a killed run loses at most this many.
    #[arg(long, value_name = "STEPS", default_value_t = 10)]
    save_steps: usize,
    /// The Python to train with [default: the environment runtimes/train-venv.sh makes].
    #[arg(long, value_name = "PYTHON")]
    python: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
enum TrainDevice {
    Cpu,
    Cuda,
}

#[derive(Debug, Args)]
struct LoraArgs {
    /// LoRA rank.
    #[arg(long = "lora-r", value_name = "R", default_value_t = 16)]
    r: usize,
    /// LoRA scaling numerator (the update is scaled by alpha / r).
    #[arg(long = "lora-alpha", value_name = "ALPHA", default_value_t = 32.0)]
    alpha: f64,
    /// Dropout on the LoRA input.
    #[arg(long = "lora-dropout", value_name = "P", default_value_t = 0.05)]
    dropout: f64,
    /// Modules to adapt: all-linear (every linear layer but lm_head), or a comma-separated list of names
    /// (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj).
    #[arg(long, value_name = "NAMES", default_value = "all-linear")]
    target_modules: String,
    /// Adapt only the layers from this one (0-based) to the last: the backward pass stops there, so training is
    /// cheaper.
    #[arg(long, value_name = "LAYER")]
    layers_from: Option<usize>,
}

#[derive(Debug, Args)]
struct OptimizerArgs {
    /// Peak learning rate.
    #[arg(long, value_name = "LR", default_value_t = 1e-4)]
    lr: f64,
    /// transformers' scheduler name (cosine, linear, constant, ...).
    #[arg(long, value_name = "NAME", default_value = "cosine")]
    scheduler: String,
    /// Optimizer steps of linear warm-up before the schedule.
    #[arg(long, value_name = "STEPS", default_value_t = 0)]
    warmup_steps: usize,
    /// Passes over the rows.
    #[arg(long, value_name = "N", default_value_t = 1)]
    epochs: usize,
    /// Rows per optimizer step (the effective batch).
    #[arg(long, value_name = "ROWS", default_value_t = 16)]
    batch: usize,
    /// Rows per forward pass; the rest is gradient accumulation (1 wastes nothing on padding).
    #[arg(long, value_name = "ROWS", default_value_t = 1)]
    micro_batch: usize,
    /// Stop after this many optimizer steps (a short run; the schedule is laid out for these steps).
    #[arg(long, value_name = "STEPS")]
    max_steps: Option<usize>,
    /// Seeds the LoRA initialization, dropout and the row order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Debug, Args)]
struct BudgetArgs {
    /// Train on a seeded sample of whole streams with at most this many rows.
    #[arg(long, value_name = "N")]
    max_rows: Option<usize>,
    /// Train on a seeded sample of whole streams with at most this many tokens (prompts and completions).
    #[arg(long, value_name = "N")]
    max_tokens: Option<usize>,
    /// Leave out whole streams that have a row longer than this many tokens (on a CPU a long row costs far more
    /// per completion token, and its activations may not fit in memory); the card records it.
    #[arg(long, value_name = "TOKENS")]
    max_row_tokens: Option<usize>,
    /// Seeds the stream sample.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    sample_seed: u64,
    /// The longest row allowed, in tokens; a longer one is refused (the study's 8,192).
    #[arg(long, value_name = "TOKENS", default_value_t = 8192)]
    max_length: usize,
}

/// What the script is asked to do; `job.json` in OUT. Two runs with equal jobs are the same run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Job {
    mode: String,
    base: PathBuf,
    rows: PathBuf,
    rows_sha256: String,
    out: PathBuf,
    r: usize,
    alpha: f64,
    dropout: f64,
    target_modules: serde_json::Value,
    layers_from: Option<usize>,
    lr: f64,
    scheduler: String,
    warmup_steps: usize,
    epochs: usize,
    batch: usize,
    micro_batch: usize,
    max_steps: Option<usize>,
    seed: u64,
    bf16: bool,
    device: String,
    save_steps: usize,
    /// Not part of what makes two runs the same (see [`Job::same_run`]).
    threads: usize,
}

impl Job {
    fn same_run(&self, other: &Job) -> bool {
        Job { threads: other.threads, ..self.clone() } == *other
    }
}

/// One line the script prints.
#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum Event {
    Start { total_steps: u64, step: u64, trainable: u64, parameters: u64 },
    Log { step: u64, loss: f64 },
    Done(serde_json::Map<String, serde_json::Value>),
}

pub fn run(ctx: &Context, args: TrainArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let base_given = args.base.clone();
    // Cheap checks first: nothing long starts on input that will be refused.
    if let Some(base) = base_given.as_deref().filter(|b| b.is_dir()) {
        check_base_folder(base)?;
    }
    if args.budget.max_rows == Some(0) || args.budget.max_tokens == Some(0) {
        return Err(BadInput("--max-rows and --max-tokens must be above 0".into()).into());
    }
    if args.optimizer.micro_batch == 0 || !args.optimizer.batch.is_multiple_of(args.optimizer.micro_batch) {
        return Err(BadInput(format!(
            "--batch {} is not a multiple of --micro-batch {}",
            args.optimizer.batch, args.optimizer.micro_batch
        ))
        .into());
    }
    let tokenizer_path = match base_given.as_deref().filter(|b| b.is_dir()).map(|b| b.join("tokenizer.json")) {
        Some(own) if own.is_file() => own,
        _ => fetched_tokenizer(&ctx.runtime_dir()),
    };
    let tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)
        .map_err(|e| BadInput(format!("{}: {e} (run runtimes/setup.sh to fetch it)", tokenizer_path.display())))?;

    let rows = args.rows.rows(ctx)?;
    if rows.is_empty() {
        return Err(BadInput(format!(
            "{}: no fine-tuning rows (no stream has a row on a registered problem)",
            args.rows.input.display()
        ))
        .into());
    }
    let encoded: Vec<EncodedRow> = rows.iter().map(|r| EncodedRow::new(&tokenizer, r)).collect::<Result<_>>()?;
    let lengths: Vec<usize> = encoded.iter().map(|e| e.input_ids.len()).collect();
    let budget = Budget {
        max_rows: args.budget.max_rows,
        max_tokens: args.budget.max_tokens,
        max_row_tokens: args.budget.max_row_tokens,
        seed: args.budget.sample_seed,
    };
    let kept = sample_streams(&rows, &lengths, &budget);
    if kept.is_empty() {
        return Err(BadInput(format!(
            "no whole stream fits the budget (--max-rows {:?}, --max-tokens {:?}, --max-row-tokens {:?})",
            budget.max_rows, budget.max_tokens, budget.max_row_tokens
        ))
        .into());
    }
    if let Some(&long) = kept.iter().find(|&&i| lengths[i] > args.budget.max_length) {
        let r = &rows[long];
        return Err(BadInput(format!(
            "{}: the row for student {}, problem {}, attempt {} is {} tokens, over --max-length {}",
            args.rows.input.display(),
            r.student,
            r.problem,
            r.attempt,
            lengths[long],
            args.budget.max_length
        ))
        .into());
    }

    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let out = args.out.canonicalize()?;
    let rows_file = out.join("rows.jsonl");
    let mut rows_bytes = Vec::new();
    jsonl::write_rows(&mut rows_bytes, kept.iter().map(|&i| &encoded[i]))?;
    let rows_sha256 = sha256_hex(&rows_bytes);
    let base = match base_given {
        Some(b) if b.is_dir() => b.canonicalize()?,
        Some(gguf) => dequantized(ctx, &gguf, args.python.as_deref())?,
        None => dequantized(ctx, &fetched_gguf(&ctx.runtime_dir()), args.python.as_deref())?,
    };
    let job = Job {
        mode: "train".into(),
        base: base.clone(),
        rows: rows_file.clone(),
        rows_sha256: rows_sha256.clone(),
        out: out.clone(),
        r: args.lora.r,
        alpha: args.lora.alpha,
        dropout: args.lora.dropout,
        target_modules: match args.lora.target_modules.as_str() {
            "all-linear" => json!("all-linear"),
            list => json!(list.split(',').map(str::trim).collect::<Vec<_>>()),
        },
        layers_from: args.lora.layers_from,
        lr: args.optimizer.lr,
        scheduler: args.optimizer.scheduler.clone(),
        warmup_steps: args.optimizer.warmup_steps,
        epochs: args.optimizer.epochs,
        batch: args.optimizer.batch,
        micro_batch: args.optimizer.micro_batch,
        max_steps: args.optimizer.max_steps,
        seed: args.optimizer.seed,
        bf16: args.bf16,
        device: match args.device {
            TrainDevice::Cpu => "cpu".into(),
            TrainDevice::Cuda => "cuda".into(),
        },
        save_steps: args.save_steps.max(1),
        threads: args.threads.max(1),
    };
    claim_out(&out, &job)?;
    if std::fs::read(&rows_file).ok().as_deref() != Some(&rows_bytes[..]) {
        write_atomically(&rows_file, |w| Ok(w.write_all(&rows_bytes)?))?;
    }
    let python = match &args.python {
        Some(p) => p.clone(),
        None => train_python()?,
    };
    let result = run_script(&python, &job, &out.join("train.log"))?;

    let tokens: usize = kept.iter().map(|&i| lengths[i]).sum();
    let completion_tokens: usize = kept.iter().map(|&i| encoded[i].completion_tokens()).sum();
    let streams: std::collections::BTreeSet<(&str, &str)> =
        kept.iter().map(|&i| (rows[i].student.as_str(), rows[i].problem.as_str())).collect();
    let card = json!({
        "adapter": out,
        "base": base,
        "base_weights_sha256": weights_sha256(&base)?,
        "tokenizer": tokenizer_path,
        "input": args.rows.input,
        "input_sha256": sha256_hex(&std::fs::read(&args.rows.input)?),
        "rows_sha256": rows_sha256,
        "rows": {
            "made": rows.len(),
            "trained": kept.len(),
            "streams": streams.len(),
            "tokens": tokens,
            "completion_tokens": completion_tokens,
            "longest": kept.iter().map(|&i| lengths[i]).max(),
            "stages": !args.rows.no_stages,
            "k": args.rows.ks,
            "context": format!("{:?}", args.rows.context).to_lowercase(),
            "feedback": args.rows.feedback,
            "budget": budget,
        },
        "hyper_parameters": {
            "r": job.r, "alpha": job.alpha, "dropout": job.dropout, "target_modules": job.target_modules,
            "layers_from": job.layers_from, "lr": job.lr, "scheduler": job.scheduler, "warmup_steps": job.warmup_steps,
            "epochs": job.epochs, "batch": job.batch, "micro_batch": job.micro_batch, "max_steps": job.max_steps,
            "seed": job.seed, "bf16": job.bf16,
        },
        "training": result,
        "wall_seconds": started.elapsed().as_secs_f64(),
        "machine": {
            "device": job.device,
            "cpu": super::machine::cpu_description(),
            "cores": super::default_jobs(),
            "threads": job.threads,
        },
        "studentsim": env!("CARGO_PKG_VERSION"),
    });
    let card_file = out.join("training-card.json");
    write_atomically(&card_file, |w| Ok(serde_json::to_writer_pretty(&mut *w, &card).map(|_| w.write_all(b"\n"))??))?;
    let loss = result.get("train_loss").and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
    println!(
        "trained on {} rows ({} streams, {tokens} tokens): mean loss {loss:.4} -> {} (card: {})",
        kept.len(),
        streams.len(),
        out.display(),
        card_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A base folder must be a Qwen2 model with safetensors weights.
fn check_base_folder(base: &Path) -> Result<(), BadInput> {
    Config::read(&base.join("config.json"))?;
    let has_weights = std::fs::read_dir(base)
        .map_err(|e| BadInput(format!("{}: {e}", base.display())))?
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().ends_with(".safetensors"));
    if !has_weights {
        return Err(BadInput(format!("{}: no .safetensors weights", base.display())));
    }
    Ok(())
}

/// OUT may hold nothing, or an earlier run of the same job (resumed); anything else is refused.
fn claim_out(out: &Path, job: &Job) -> Result<()> {
    let job_file = out.join("job.json");
    match std::fs::read_to_string(&job_file) {
        Ok(text) => {
            let earlier: Job =
                serde_json::from_str(&text).map_err(|e| BadInput(format!("{}: {e}", job_file.display())))?;
            if !earlier.same_run(job) {
                return Err(BadInput(format!(
                    "{}: holds a training run with other rows or settings; choose another --out or remove it",
                    out.display()
                ))
                .into());
            }
            eprintln!("{}: resuming the run there", out.display());
        }
        Err(_) => {
            if std::fs::read_dir(out)?.next().is_some() {
                return Err(
                    BadInput(format!("{}: not empty and not a training run of studentsim's", out.display())).into()
                );
            }
        }
    }
    write_atomically(&job_file, |w| Ok(serde_json::to_writer_pretty(w, job)?))
}

/// The training environment's python, made once by runtimes/train-venv.sh.
fn train_python() -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("runtimes/train-venv.sh");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// `gguf` dequantized into a Hugging Face folder in the runtime folder (once; named by the file's sha256).
fn dequantized(ctx: &Context, gguf: &Path, python: Option<&Path>) -> Result<PathBuf> {
    let mut file = std::fs::File::open(gguf).map_err(|e| BadInput(format!("{}: {e}", gguf.display())))?;
    let mut magic = [0u8; 4];
    if std::io::Read::read_exact(&mut file, &mut magic).is_err() || &magic != b"GGUF" {
        return Err(BadInput(format!("{}: not a GGUF file, nor a model folder", gguf.display())).into());
    }
    let mut hash = Sha256::new();
    hash.update(magic);
    std::io::copy(&mut file, &mut hash)?;
    let stem = gguf.file_stem().map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    let dir = ctx.runtime_dir().join("dequantized").join(format!("{stem}-{}", &hex(&hash.finalize())[..12]));
    if dir.join("config.json").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(dir.parent().expect("a named folder"))?;
    eprintln!("studentsim: dequantizing {} into {} (once)", gguf.display(), dir.display());
    let python = match python {
        Some(p) => p.to_owned(),
        None => train_python()?,
    };
    let job = json!({ "mode": "dequantize", "gguf": gguf.canonicalize()?, "out": dir });
    run_script(&python, &job, &dir.with_file_name(format!("{stem}.log")))?;
    Config::read(&dir.join("config.json"))?;
    std::fs::copy(fetched_tokenizer(&ctx.runtime_dir()), dir.join("tokenizer.json"))
        .context("copying the tokenizer beside it")?;
    Ok(dir)
}

/// Run the script on `job` with a progress bar fed by its events; its stderr goes to `log`. The `done` event's
/// fields come back.
fn run_script(python: &Path, job: &impl Serialize, log: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .env("PYTHONUNBUFFERED", "1")
        .env("HF_HUB_OFFLINE", "1")
        .env("TOKENIZERS_PARALLELISM", "false")
        .spawn()
        .with_context(|| format!("starting {}", python.display()))?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(format!("{}\n", serde_json::to_string(job)?).as_bytes())?;
    drop(stdin);
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("training [{bar:30}] step {pos}/{len} {msg} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut done = None;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        match serde_json::from_str::<Event>(&line) {
            Ok(Event::Start { total_steps, step, trainable, parameters }) => {
                bar.set_length(total_steps);
                bar.set_position(step);
                bar.reset_eta();
                bar.println(format!(
                    "training {trainable} of {parameters} parameters, {total_steps} steps (from step {step})"
                ));
            }
            Ok(Event::Log { step, loss }) => {
                bar.set_position(step);
                bar.set_message(format!("loss {loss:.4}"));
                if bar.is_hidden() {
                    // no terminal: one line per step, for logs
                    eprintln!(
                        "step {step}/{}: loss {loss:.4}, {:.0} s",
                        bar.length().unwrap_or(0),
                        bar.elapsed().as_secs_f64()
                    );
                }
            }
            Ok(Event::Done(fields)) => done = Some(fields),
            Err(_) => bar.println(line),
        }
    }
    bar.finish_and_clear();
    let status = child.wait()?;
    match (status.success(), done) {
        (true, Some(fields)) => Ok(fields),
        (_, _) if status.code() == Some(2) => Err(BadInput(last_line(log)).into()),
        _ => bail!("the training script failed ({status}); its log is {}: {}", log.display(), last_line(log)),
    }
}

fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// sha256 of a model folder's weights (its .safetensors files, by name).
fn weights_sha256(dir: &Path) -> Result<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    for f in files {
        let mut file = std::fs::File::open(&f)?;
        std::io::copy(&mut file, &mut hash)?;
    }
    Ok(hex(&hash.finalize()))
}
