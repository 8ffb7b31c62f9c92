//! `studentsim-dev bench qwen`: prompt and decode speed of the in-process Qwen2 against Hugging Face transformers on
//! PyTorch (CPU), the same random checkpoint and threads, in the same run; then the same weights as GGUF Q4_0.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use candle_core::Device;
use candle_core::quantized::GgmlDType;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use serde::Deserialize;

use super::super::Context;
use super::qwen_shared::{PeerName, QwenArgs, ShapeName, argmax_row, batched_decode};
use crate::generate::qwen::engine::Decoder;
use crate::generate::qwen::gguf;
use crate::generate::qwen::load_folder;
use crate::generate::qwen::random::{self, Shape};

/// transformers' side: the same greedy prefill + decode, timed the same way.
const PYTHON_PEER: &str = r#"
import json, sys, time
import torch
from transformers import AutoModelForCausalLM
job = json.load(sys.stdin)
torch.set_num_threads(job["threads"])
model = AutoModelForCausalLM.from_pretrained(job["dir"], dtype=torch.float32).eval()
ids = torch.tensor([job["ids"]])
with torch.inference_mode():
    prefill = float("inf")
    for _ in range(3):  # the first pass warms up; the best of the other two counts
        start = time.perf_counter()
        out = model(ids, use_cache=True)
        prefill = min(prefill, time.perf_counter() - start)
    first = out.logits[0, -1].tolist()
    logits, past, tokens = out.logits[0, -1], out.past_key_values, []
    start = time.perf_counter()
    for _ in range(job["new_tokens"]):
        token = int(torch.argmax(logits))
        tokens.append(token)
        out = model(torch.tensor([[token]]), past_key_values=past, use_cache=True)
        logits, past = out.logits[0, -1], out.past_key_values
    decode = time.perf_counter() - start
json.dump({"prefill": prefill, "decode": decode, "tokens": tokens, "first": first,
           "versions": f"torch {torch.__version__}, transformers {__import__('transformers').__version__}"}, sys.stdout)
"#;

#[derive(Deserialize)]
struct Peer {
    prefill: f64,
    decode: f64,
    tokens: Vec<u32>,
    first: Vec<f32>,
    versions: String,
}

/// Seconds for the prefill and for the decode steps, the greedy tokens, and the prompt's last logits.
struct Run {
    prefill: f64,
    decode: f64,
    tokens: Vec<u32>,
    first: Vec<f32>,
}

pub fn run(ctx: &Context, args: QwenArgs) -> Result<ExitCode> {
    // candle sizes its CPU thread pool from this variable on first use; nothing has used it yet.
    // SAFETY: set before this process starts any other thread.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string()) };
    if let Some(file) = &args.gguf {
        return match args.peer {
            PeerName::LlamaCpp => super::qwen_gguf::run(ctx, &args, file),
            PeerName::Transformers => super::qwen_transformers::run(ctx, &args, file),
        };
    }
    let shape = match args.shape {
        ShapeName::Coder05b => Shape::QWEN25_CODER_05B,
        ShapeName::Tiny => Shape::TINY,
    };
    let work = tempfile::tempdir()?;
    let dir = work.path().join("model");
    let tokenizer = crate::generate::qwen::fetched_tokenizer(&ctx.runtime_dir());
    let described = format!(
        "{} layers, hidden {}, {} heads ({} KV), MLP {}, vocabulary {}",
        shape.layers, shape.hidden, shape.heads, shape.kv_heads, shape.intermediate, shape.vocab
    );
    eprintln!("writing a random checkpoint ({described}) to {}", dir.display());
    random::write_folder(&dir, &shape, 1, &tokenizer)?;
    let mut rng = StdRng::seed_from_u64(2);
    let ids: Vec<u32> = (0..args.prompt_tokens).map(|_| rng.random_range(0..151_643)).collect();
    let new_tokens = args.new_tokens as usize;

    eprintln!("studentsim (candle, f32, {} threads)", args.threads);
    let (mut model, _) = load_folder(&dir, None, &Device::Cpu)?;
    let ours = timed(&mut model, &ids, new_tokens)?;
    let batched = batched_decode(&mut model, &ids, new_tokens)?;
    drop(model);

    let python = match &args.python {
        Some(p) => p.clone(),
        None => super::peer_python("bench-transformers.sh")?,
    };
    eprintln!("transformers on PyTorch ({})", python.display());
    let peer = run_peer(&python, &dir, &ids, new_tokens, args.threads)?;

    let rate = |tokens: usize, secs: f64| tokens as f64 / secs;
    let p = args.prompt_tokens as usize;
    let diff = ours.first.iter().zip(&peer.first).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let same = ours.tokens.iter().zip(&peer.tokens).take_while(|(a, b)| a == b).count();
    let q4 = if args.no_gguf {
        None
    } else {
        let file = work.path().join("model-q4_0.gguf");
        eprintln!("quantizing to GGUF Q4_0");
        random::write_gguf(&file, &shape, 1, GgmlDType::Q4_0)?;
        let mut quantized = gguf::load(&file)?;
        let q = timed(&mut quantized, &ids, new_tokens)?;
        Some((rate(p, q.prefill), rate(new_tokens, q.decode), std::fs::metadata(&file)?.len() as f64 / 1e6))
    };
    if args.json {
        let figures = serde_json::json!({
            "weights": format!("random ({described}), f32"), "threads": args.threads, "prompt_tokens": p,
            "new_tokens": new_tokens, "cpu": crate::cli::machine::cpu_description(), "peer": peer.versions,
            "studentsim": {"prompt_tokens_per_s": rate(p, ours.prefill), "decode_tokens_per_s": rate(new_tokens, ours.decode),
                           "batch_of_4_decode_tokens_per_s": rate(4 * new_tokens, batched)},
            "transformers": {"prompt_tokens_per_s": rate(p, peer.prefill), "decode_tokens_per_s": rate(new_tokens, peer.decode)},
            "ratios": {"transformers_prompt": peer.prefill / ours.prefill, "transformers_decode": peer.decode / ours.decode},
            "agreement": {"max_abs_logit_diff": diff, "greedy_equal_prefix": same, "greedy_tokens": new_tokens},
            "gguf_q4_0": q4.map(|(prompt, decode, mb)| serde_json::json!({"prompt_tokens_per_s": prompt, "decode_tokens_per_s": decode, "megabytes": mb})),
        });
        println!("{figures}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "random weights ({described}), f32, {} threads, {p}-token prompt, {new_tokens} greedy new tokens",
        args.threads
    );
    println!("peer: {}", peer.versions);
    println!("{:<30} {:>14} {:>14}", "", "prompt tok/s", "decode tok/s");
    println!("{:<30} {:>14.1} {:>14.2}", "studentsim (candle)", rate(p, ours.prefill), rate(new_tokens, ours.decode));
    println!(
        "{:<30} {:>14.1} {:>14.2}",
        "transformers (PyTorch)",
        rate(p, peer.prefill),
        rate(new_tokens, peer.decode)
    );
    println!(
        "{:<30} {:>13.2}x {:>13.2}x",
        "ratio (studentsim / peer)",
        peer.prefill / ours.prefill,
        peer.decode / ours.decode
    );
    println!(
        "{:<30} {:>14} {:>14.2}   (4 prompts of {}..{p} tokens, left-padded)",
        "studentsim, batch of 4",
        "",
        rate(4 * new_tokens, batched),
        3 * p / 4
    );
    println!("agreement: prompt logits max |diff| {diff:.2e}; greedy tokens equal for the first {same}/{new_tokens}");
    if let Some((prompt, decode, mb)) = q4 {
        println!("{:<30} {:>14.1} {:>14.2}   ({mb:.0} MB)", "studentsim GGUF Q4_0", prompt, decode);
    }
    Ok(ExitCode::SUCCESS)
}

/// Time the prefill of `ids` (a warm-up pass, then the best of two) and `new_tokens` greedy steps after it.
fn timed(model: &mut dyn Decoder, ids: &[u32], new_tokens: usize) -> Result<Run> {
    let capacity = ids.len() + new_tokens + 1;
    let mut prefill = f64::INFINITY;
    let mut logits = model.prefill(&[ids.to_vec()], capacity)?;
    for _ in 0..2 {
        let start = Instant::now();
        logits = model.prefill(&[ids.to_vec()], capacity)?;
        prefill = prefill.min(start.elapsed().as_secs_f64());
    }
    let first = logits.squeeze(0)?.to_vec1::<f32>()?;
    let mut tokens = Vec::with_capacity(new_tokens);
    let start = Instant::now();
    for _ in 0..new_tokens {
        let token = argmax_row(&logits)?;
        tokens.push(token);
        logits = model.step(&[token])?;
    }
    Ok(Run { prefill, decode: start.elapsed().as_secs_f64(), tokens, first })
}

fn run_peer(python: &Path, dir: &Path, ids: &[u32], new_tokens: usize, threads: u16) -> Result<Peer> {
    let job = serde_json::json!({"dir": dir, "ids": ids, "new_tokens": new_tokens, "threads": threads});
    super::python_json(python, PYTHON_PEER, &job, "the transformers run")
}
