//! `studentsim-dev fuzz`: every parser that reads a user's files, on seeded mutations of valid inputs. A parser may
//! refuse an input (that is what bad input is for); it must never panic, hang or allocate without bound. The
//! process runs under a 4 GiB address-space limit, so an input that makes a parser allocate what a header
//! claims (a tensor of 2^60 elements) ends the run instead of passing unseen.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::BadInput;
use crate::generate::qwen::lora::Adapter;
use crate::generate::qwen::random::{self, Shape};
use crate::generate::qwen::weights::MergedWeights;
use crate::generate::qwen::{config, gguf};
use crate::generate::reply;
use crate::grade::literal;
use crate::problems::Problem;
use crate::rollout::tutor::parse_hint;
use crate::trajectory::{Submission, progsnap2};

/// A case slower than this counts as a hang.
const HANG: Duration = Duration::from_secs(2);
/// The address space the fuzzing process may use.
const MEMORY_LIMIT: u64 = 4 << 30;

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// Mutated inputs per parser.
    #[arg(long, default_value_t = 100_000)]
    cases: usize,
    /// Seeds the mutations (the same seed fuzzes the same inputs).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only the parsers whose names contain this.
    #[arg(long, value_name = "NAME")]
    only: Option<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

type Parser = Box<dyn Fn(&[u8]) -> bool>;

/// One parser: its name, valid inputs to mutate, and the call (Ok: accepted or refused; a panic is caught).
struct Target {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    parse: Parser,
}

#[derive(Debug, Default, serde::Serialize)]
struct Tally {
    cases: usize,
    accepted: usize,
    refused: usize,
    panics: usize,
    hangs: usize,
    slowest_ms: f64,
    /// The first input that panicked, lossily as text.
    first_panic: Option<String>,
}

pub fn run(args: FuzzArgs) -> Result<ExitCode> {
    limit_memory();
    let work = tempfile::tempdir()?;
    let targets: Vec<Target> =
        targets(work.path())?.into_iter().filter(|t| args.only.as_deref().is_none_or(|o| t.name.contains(o))).collect();
    if targets.is_empty() {
        return Err(BadInput(format!("--only {:?}: no parser of that name", args.only.unwrap_or_default())).into());
    }
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut tallies = Vec::new();
    for target in &targets {
        let bar = super::output::progress(args.cases, target.name);
        let mut rng = StdRng::seed_from_u64(args.seed ^ fxhash(target.name));
        let mut tally = Tally::default();
        for _ in 0..args.cases {
            let input = mutate(&target.seeds, &mut rng);
            let start = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| (target.parse)(&input)));
            let elapsed = start.elapsed();
            tally.cases += 1;
            tally.slowest_ms = tally.slowest_ms.max(elapsed.as_secs_f64() * 1000.0);
            tally.hangs += usize::from(elapsed > HANG);
            match outcome {
                Ok(true) => tally.accepted += 1,
                Ok(false) => tally.refused += 1,
                Err(_) => {
                    tally.panics += 1;
                    tally
                        .first_panic
                        .get_or_insert_with(|| String::from_utf8_lossy(&input).chars().take(500).collect());
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        tallies.push((target.name, tally));
    }
    std::panic::set_hook(quiet);
    let failed = tallies.iter().any(|(_, t)| t.panics > 0 || t.hangs > 0);
    if args.json {
        let figures: serde_json::Map<String, serde_json::Value> = tallies
            .iter()
            .map(|(name, t)| ((*name).to_owned(), serde_json::to_value(t).expect("plain numbers")))
            .collect();
        println!("{}", serde_json::Value::Object(figures));
    } else {
        println!(
            "{:<16} {:>9} {:>9} {:>9} {:>7} {:>6} {:>11}",
            "parser", "cases", "accepted", "refused", "panics", "hangs", "slowest ms"
        );
        for (name, t) in &tallies {
            println!(
                "{name:<16} {:>9} {:>9} {:>9} {:>7} {:>6} {:>11.1}",
                t.cases, t.accepted, t.refused, t.panics, t.hangs, t.slowest_ms
            );
            if let Some(input) = &t.first_panic {
                println!("  first panicking input: {input:?}");
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Every parser of a user's files, each with valid inputs to start from.
fn targets(work: &Path) -> Result<Vec<Target>> {
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rows = std::fs::read_to_string(bundled.join("examples/trajectories.jsonl"))?;
    let problems: Vec<Vec<u8>> = ["sum-digits", "fizzbuzz", "bank-account"]
        .iter()
        .map(|id| std::fs::read(bundled.join("problems").join(id).join("problem.toml")))
        .collect::<std::io::Result<_>>()?;
    let literals = [
        "{'a': 1, 'b': [1, 2.5, (3,)]}",
        "frozenset({1, 2})",
        "(1-2j)",
        "b'\\x00a'",
        "'it\\'s \\u00e9'",
        "set()",
        "[None, True, -0x1f, 1e-3]",
    ];
    let replies =
        ["Here you go:\n```python\ndef f(x):\n    return x\n```\nSUBMIT", "<code>\nprint(1)\n</code>", "```\nx = 1\n"];
    let hints = ["{\"hint\": \"Check the base case.\"}", "Look at what you return.", "{\"hint\": 3}"];
    random::write_gguf(&work.join("seed.gguf"), &Shape::TINY, 0, candle_core::quantized::GgmlDType::Q4_0)?;
    let (gguf_file, progsnap_dir) = (work.join("case.gguf"), work.join("progsnap2"));
    std::fs::create_dir_all(progsnap_dir.join("CodeStates"))?;
    std::fs::write(
        progsnap_dir.join("CodeStates/CodeStates.csv"),
        "CodeStateID,Code\nc1,x = 1\nc2,\"def f():\n    return 2\"\n",
    )?;
    let table = "EventID,SubjectID,ProblemID,CodeStateID,EventType,ServerTimestamp,Order,Score,X-Label,X-Row-id\n\
        1,u1,p1,c1,Submit,2021-01-01T10:00:00Z,1,0.5,logical,\"{\"\"a\"\": 1}\"\n2,u1,p1,c2,Run.Program,2021-01-01 10:05:00,2,,,x\n";
    let text = |bytes: &[u8]| std::str::from_utf8(bytes).ok().map(str::to_owned);
    let (adapter_seed, adapter_weights_seed, model_seed) = safetensors_seeds(work)?;
    let (config_dir, weights_dir, model_file) =
        (work.join("adapter-config"), work.join("adapter-weights"), work.join("model.safetensors"));
    for dir in [&config_dir, &weights_dir] {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("adapter_config.json"), &adapter_seed)?;
        std::fs::write(dir.join("adapter_model.safetensors"), &adapter_weights_seed)?;
    }
    Ok(vec![
        Target {
            name: "jsonl-row",
            seeds: rows.lines().take(20).map(|l| l.as_bytes().to_vec()).collect(),
            parse: Box::new(|b| serde_json::from_slice::<Submission>(b).is_ok()),
        },
        Target {
            name: "problem-toml",
            seeds: problems,
            parse: Box::new(move |b| {
                text(b).is_some_and(|t| Problem::from_toml(&t, Path::new("fuzz/problem.toml")).is_ok())
            }),
        },
        Target {
            name: "python-literal",
            seeds: literals.iter().map(|l| l.as_bytes().to_vec()).collect(),
            parse: Box::new(move |b| text(b).is_some_and(|t| literal::equal(&t, &t))),
        },
        Target {
            name: "model-reply",
            seeds: replies.iter().map(|r| r.as_bytes().to_vec()).collect(),
            parse: Box::new(move |b| {
                text(b).is_some_and(|t| reply::extract_code(&t).is_some() && reply::first_block(&t).is_some())
            }),
        },
        Target {
            name: "tutor-reply",
            seeds: hints.iter().map(|h| h.as_bytes().to_vec()).collect(),
            parse: Box::new(|b| parse_hint(b).is_ok()),
        },
        Target {
            name: "qwen-config",
            seeds: vec![serde_json::to_vec_pretty(&Shape::TINY.config_json())?],
            parse: Box::new(move |b| text(b).is_some_and(|t| config::Config::parse(&t).is_ok())),
        },
        Target {
            name: "progsnap2-table",
            seeds: vec![table.as_bytes().to_vec()],
            parse: Box::new(move |b| {
                std::fs::write(progsnap_dir.join("MainTable.csv"), b).expect("a writable temp folder");
                progsnap2::import(&progsnap_dir, None).is_ok()
            }),
        },
        adapter_target("adapter-config", config_dir, "adapter_config.json", adapter_seed),
        adapter_target("adapter-weights", weights_dir, "adapter_model.safetensors", adapter_weights_seed),
        Target {
            name: "model-safetensors",
            seeds: vec![model_seed],
            parse: Box::new(move |b| {
                use candle_nn::var_builder::SimpleBackend;
                std::fs::write(&model_file, b).expect("a writable temp folder");
                MergedWeights::open(std::slice::from_ref(&model_file), None).is_ok_and(|weights| {
                    SAFETENSORS_NAMES.iter().all(|name| {
                        weights.get_unchecked(name, candle_core::DType::F32, &candle_core::Device::Cpu).is_ok()
                    })
                })
            }),
        },
        Target {
            name: "gguf",
            seeds: vec![std::fs::read(work.join("seed.gguf"))?],
            parse: Box::new(move |b| {
                std::fs::write(&gguf_file, b).expect("a writable temp folder");
                gguf::load(&gguf_file).is_ok()
            }),
        },
    ])
}

/// The adapter reader on a folder whose `file` is mutated and whose other file stays valid.
fn adapter_target(name: &'static str, dir: PathBuf, file: &'static str, seed: Vec<u8>) -> Target {
    let parse = move |b: &[u8]| {
        std::fs::write(dir.join(file), b).expect("a writable temp folder");
        Adapter::read(&dir).is_ok()
    };
    Target { name, seeds: vec![seed], parse: Box::new(parse) }
}

/// The tensors of the model seed (a base weight the adapter seed fits, and two small others in other dtypes).
const SAFETENSORS_NAMES: [&str; 3] = ["model.layers.0.self_attn.q_proj.weight", "model.norm.weight", "lm_head.weight"];

/// Small valid inputs for the safetensors readers: a PEFT adapter's `adapter_config.json` and
/// `adapter_model.safetensors` (r 2, one module of width 64), and a model file with the module's base weight.
/// Small, so that 100,000 mutated copies are quick to write, but with more data than header, so that some
/// mutations (flipped bits in the data) still load.
fn safetensors_seeds(work: &Path) -> Result<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    use candle_core::{DType, Device, Tensor};
    let config =
        serde_json::json!({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "bias": "none", "target_modules": ["q_proj"]});
    let module = "base_model.model.model.layers.0.self_attn.q_proj";
    let cpu = &Device::Cpu;
    let adapter = [
        (format!("{module}.lora_A.weight"), Tensor::arange(0f32, 128.0, cpu)?.reshape((2, 64))?),
        (format!("{module}.lora_B.weight"), Tensor::ones((64, 2), DType::F32, cpu)?),
    ];
    let model = [
        (SAFETENSORS_NAMES[0].to_owned(), Tensor::ones((64, 64), DType::F32, cpu)?),
        (SAFETENSORS_NAMES[1].to_owned(), Tensor::ones(64, DType::BF16, cpu)?),
        (SAFETENSORS_NAMES[2].to_owned(), Tensor::zeros((3, 64), DType::F16, cpu)?),
    ];
    let bytes = |tensors: &[(String, Tensor)]| -> Result<Vec<u8>> {
        let path = work.join("seed.safetensors");
        candle_core::safetensors::save(&tensors.iter().cloned().collect(), &path)?;
        Ok(std::fs::read(&path)?)
    };
    Ok((serde_json::to_vec_pretty(&config)?, bytes(&adapter)?, bytes(&model)?))
}

/// A seed changed by one to four random edits: bytes flipped, removed, inserted or repeated, a token a parser
/// cares about put in, the input cut short, or a piece of another seed spliced in.
fn mutate(seeds: &[Vec<u8>], rng: &mut StdRng) -> Vec<u8> {
    const TOKENS: [&[u8]; 16] = [
        b"\"",
        b"'",
        b"{",
        b"}",
        b"[",
        b"]",
        b"(",
        b")",
        b":",
        b",",
        b"\n",
        b"\\",
        b"-99999999999999999999999",
        b"1e999",
        b"\xff\xfe",
        b"\x00",
    ];
    let mut input = seeds[rng.random_range(0..seeds.len())].clone();
    for _ in 0..rng.random_range(1..=4) {
        let len = input.len();
        let at = rng.random_range(0..=len);
        match rng.random_range(0..7) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                input[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let end = (at + rng.random_range(1..=16)).min(len);
                input.drain(at.min(end)..end);
            }
            2 => {
                let bytes: Vec<u8> = (0..rng.random_range(1..=8)).map(|_| rng.random()).collect();
                input.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let start = rng.random_range(0..len);
                let piece = input[start..(start + rng.random_range(1..=64)).min(len)].to_vec();
                input.splice(at..at, piece);
            }
            4 => {
                input.splice(at..at, TOKENS[rng.random_range(0..TOKENS.len())].iter().copied());
            }
            5 => input.truncate(at),
            _ => {
                let other = &seeds[rng.random_range(0..seeds.len())];
                let start = rng.random_range(0..=other.len());
                let end = (start + rng.random_range(0..=64)).min(other.len());
                input.splice(at..at, other[start..end].iter().copied());
            }
        }
        // Binary inputs also get their numbers changed where headers keep them: a 64-bit count set huge.
        if rng.random_range(0..8) == 0 && input.len() >= 8 {
            let i = rng.random_range(0..input.len() - 7);
            input[i..i + 8].copy_from_slice(&(1u64 << rng.random_range(20..63)).to_le_bytes());
        }
    }
    input
}

fn fxhash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Cap the address space, so an unbounded allocation aborts the run rather than passing unnoticed.
fn limit_memory() {
    let limit = libc::rlimit { rlim_cur: MEMORY_LIMIT, rlim_max: MEMORY_LIMIT };
    // SAFETY: setrlimit reads the struct it is given and changes only this process's limit.
    unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
}
