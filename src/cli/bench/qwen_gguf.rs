//! `studentsim-dev bench qwen --gguf FILE`: a real GGUF model in process against llama.cpp (llama-cpp-python, built
//! from source by runtimes/bench-llama-cpp.sh) on the same file, threads and token ids, in the same run:
//! prompt and decode tokens/s with their ratios, and how closely the two agree (the last-position logits of the
//! study's chat prompts, greedy tokens, the tokenizer).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use super::super::Context;
use super::qwen_shared::{
    QwenArgs, argmax_row, batched_decode, encode, greedy, last_logits, study_prompts, study_tokenizer,
};
use crate::generate::qwen::engine::Decoder;
use crate::generate::qwen::gguf;
use crate::generate::{Attempt, ContextProblem, Request, Target, prompt};

/// llama-cpp-python's side: the same token ids through `Llama.eval`, timed the same way.
const PYTHON_PEER: &str = r#"
import json, sys, time
import numpy as np
import llama_cpp
job = json.load(sys.stdin)
ROUNDS = job["rounds"]
llm = llama_cpp.Llama(model_path=job["model"], n_ctx=job["n_ctx"], n_batch=512, n_ubatch=512,
                      n_threads=job["threads"], n_threads_batch=job["threads"], verbose=False)
def last_logits():
    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()
def prefill(ids):
    llm.reset()
    llm.eval(ids)
    return last_logits()
speed = job["speed_ids"]
best, decode = float("inf"), float("inf")
for round in range(ROUNDS):  # the best of each; the first prefill only warms up
    start = time.perf_counter()
    logits = prefill(speed)
    if round > 0:
        best = min(best, time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(job["new_tokens"]):
        llm.eval([int(np.argmax(logits))])
        logits = last_logits()
    decode = min(decode, time.perf_counter() - start)
prompts = []
for ids in job["prompts"]:
    prompts.append(prefill(ids).tolist())
logits, greedy = prefill(job["prompts"][0]), []
for _ in range(job["new_tokens"]):
    greedy.append(int(np.argmax(logits)))
    llm.eval([greedy[-1]])
    logits = last_logits()
tokens = [llm.tokenize(t.encode(), add_bos=False, special=True) for t in job["texts"]]
json.dump({"prefill": best, "decode": decode, "logits": prompts, "greedy": greedy, "tokens": tokens,
           "system_info": llama_cpp.llama_print_system_info().decode(),
           "version": llama_cpp.__version__}, sys.stdout)
"#;

#[derive(Deserialize)]
struct Peer {
    prefill: f64,
    decode: f64,
    logits: Vec<Vec<f32>>,
    greedy: Vec<u32>,
    tokens: Vec<Vec<u32>>,
    system_info: String,
    version: String,
}

/// The figures `--json` prints.
#[derive(Serialize)]
struct Figures {
    model: String,
    threads: u16,
    prompt_tokens: usize,
    new_tokens: usize,
    cpu: String,
    /// The instruction set of our quantized kernels in this run (after `STUDENTSIM_QUANT_KERNEL`).
    studentsim_kernels: &'static str,
    peer: String,
    studentsim: Speed,
    llama_cpp: Speed,
    ratios: Ratios,
    agreement: Agreement,
}

#[derive(Serialize)]
struct Speed {
    prompt_tokens_per_s: f64,
    decode_tokens_per_s: f64,
    /// Four sequences decoded as one left-padded batch, all four together (llama-cpp-python decodes one).
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_of_4_decode_tokens_per_s: Option<f64>,
}

#[derive(Serialize)]
struct Ratios {
    llama_cpp_prompt: f64,
    llama_cpp_decode: f64,
}

#[derive(Serialize)]
struct Agreement {
    prompts: usize,
    max_abs_logit_diff: f32,
    mean_max_abs_logit_diff: f32,
    top1_equal: usize,
    mean_top5_overlap: f64,
    greedy_equal_prefix: usize,
    greedy_tokens: usize,
    tokenizer_equal: usize,
}

pub fn run(ctx: &Context, args: &QwenArgs, file: &Path) -> Result<ExitCode> {
    let tokenizer = study_tokenizer(ctx)?;
    let encode = |t: &str| encode(&tokenizer, t);
    let texts = study_prompts(ctx, args.prompts as usize)?;
    let prompts: Vec<Vec<u32>> = texts.iter().map(|t| encode(t)).collect::<Result<_>>()?;
    let speed_ids = speed_prompt(ctx, &encode, args.prompt_tokens as usize)?;
    let new_tokens = args.new_tokens as usize;

    eprintln!("studentsim: loading {}", file.display());
    let mut model = gguf::load(file)?;
    eprintln!("studentsim: timing ({} threads)", args.threads);
    let ours = timed_rounds(&mut model, &speed_ids, new_tokens)?;
    eprintln!(
        "studentsim: prompt {:.1} tok/s, decode {:.2} tok/s",
        speed_ids.len() as f64 / ours.prefill,
        new_tokens as f64 / ours.decode
    );
    let batched = batched_decode(&mut model, &speed_ids, new_tokens)?;
    eprintln!(
        "studentsim: 4 sequences decoded as one batch: {:.2} tok/s (all four)",
        4.0 * new_tokens as f64 / batched
    );
    eprintln!("studentsim: logits of {} study prompts", prompts.len());
    let our_logits = last_logits(&mut model, &prompts)?;
    let our_greedy = greedy(&mut model, &prompts[0], new_tokens)?;
    drop(model);

    // llama.cpp built for the instruction set our kernels use: AVX2 against AVX2, AVX-512 against AVX-512
    let isa = match crate::generate::qwen::matvec::instruction_set() {
        "avx512" => "avx512",
        _ => "avx2",
    };
    let python = match &args.python {
        Some(p) => p.clone(),
        None => super::peer_python_with("bench-llama-cpp.sh", &[("LLAMA_CPP_ISA", isa)])?,
    };
    let built_for = peer_build(&python);
    eprintln!("llama.cpp: the same ({}, built for {built_for})", python.display());
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0).max(speed_ids.len()) + new_tokens + 8;
    let job = serde_json::json!({
        "model": file, "threads": args.threads, "n_ctx": longest, "rounds": ROUNDS, "speed_ids": speed_ids, "new_tokens": new_tokens,
        "prompts": prompts, "texts": texts,
    });
    let peer: Peer = super::python_json(&python, PYTHON_PEER, &job, "the llama.cpp run (runtimes/bench-llama-cpp.sh)")
        .map_err(|e| explain_crash(e, &built_for))?;

    let agreement = agreement(&our_logits, &peer, &our_greedy, &prompts);
    let p = speed_ids.len();
    let figures = Figures {
        model: file.display().to_string(),
        threads: args.threads,
        prompt_tokens: p,
        new_tokens,
        cpu: crate::cli::machine::cpu_description(),
        studentsim_kernels: crate::generate::qwen::matvec::instruction_set(),
        peer: format!("llama-cpp-python {} built for {built_for} ({})", peer.version, peer.system_info.trim()),
        studentsim: Speed {
            prompt_tokens_per_s: p as f64 / ours.prefill,
            decode_tokens_per_s: new_tokens as f64 / ours.decode,
            batch_of_4_decode_tokens_per_s: Some(4.0 * new_tokens as f64 / batched),
        },
        llama_cpp: Speed {
            prompt_tokens_per_s: p as f64 / peer.prefill,
            decode_tokens_per_s: new_tokens as f64 / peer.decode,
            batch_of_4_decode_tokens_per_s: None,
        },
        ratios: Ratios { llama_cpp_prompt: peer.prefill / ours.prefill, llama_cpp_decode: peer.decode / ours.decode },
        agreement,
    };
    if args.json {
        println!("{}", serde_json::to_string(&figures)?);
    } else {
        print_figures(&figures);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_figures(f: &Figures) {
    println!(
        "{} , {} threads, {}-token study prompt, {} greedy new tokens",
        f.model, f.threads, f.prompt_tokens, f.new_tokens
    );
    println!("cpu: {}; our quantized kernels: {}", f.cpu, f.studentsim_kernels);
    println!("peer: {}", f.peer);
    println!("{:<30} {:>14} {:>14}", "", "prompt tok/s", "decode tok/s");
    for (name, s) in [("studentsim (candle)", &f.studentsim), ("llama.cpp", &f.llama_cpp)] {
        println!("{name:<30} {:>14.1} {:>14.2}", s.prompt_tokens_per_s, s.decode_tokens_per_s);
    }
    println!(
        "{:<30} {:>13.2}x {:>13.2}x",
        "ratio (studentsim / llama.cpp)", f.ratios.llama_cpp_prompt, f.ratios.llama_cpp_decode
    );
    if let Some(batched) = f.studentsim.batch_of_4_decode_tokens_per_s {
        println!("{:<30} {:>14} {:>14.2}   (4 prompts, left-padded; all four)", "studentsim, batch of 4", "", batched);
    }
    let a = &f.agreement;
    println!(
        "agreement over {} study prompts: last-position logits max |diff| {:.3} (mean of per-prompt max {:.3}); top-1 \
         equal {}/{}; top-5 overlap {:.1}%; greedy tokens equal for the first {}/{}; tokenizer equal on {}/{}",
        a.prompts,
        a.max_abs_logit_diff,
        a.mean_max_abs_logit_diff,
        a.top1_equal,
        a.prompts,
        100.0 * a.mean_top5_overlap,
        a.greedy_equal_prefix,
        a.greedy_tokens,
        a.tokenizer_equal,
        a.prompts
    );
}

fn agreement(ours: &[Vec<f32>], peer: &Peer, our_greedy: &[u32], prompts: &[Vec<u32>]) -> Agreement {
    let top = |v: &[f32], k: usize| -> Vec<usize> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
        idx.truncate(k);
        idx
    };
    let mut max_diff = 0f32;
    let mut sum_max = 0f32;
    let (mut top1, mut top5) = (0, 0.0);
    for (a, b) in ours.iter().zip(&peer.logits) {
        let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        max_diff = max_diff.max(d);
        sum_max += d;
        let (ta, tb) = (top(a, 5), top(b, 5));
        top1 += usize::from(ta[0] == tb[0]);
        top5 += ta.iter().filter(|i| tb.contains(i)).count() as f64 / 5.0;
    }
    let n = ours.len().max(1);
    Agreement {
        prompts: ours.len(),
        max_abs_logit_diff: max_diff,
        mean_max_abs_logit_diff: sum_max / n as f32,
        top1_equal: top1,
        mean_top5_overlap: top5 / n as f64,
        greedy_equal_prefix: our_greedy.iter().zip(&peer.greedy).take_while(|(a, b)| a == b).count(),
        greedy_tokens: our_greedy.len(),
        tokenizer_equal: prompts.iter().zip(&peer.tokens).filter(|(a, b)| a == b).count(),
    }
}

/// Timing rounds on both sides: each prefills the speed prompt and decodes after it; the best of each counts
/// (the first prefill only warms up). Single runs on these shared machines move by a third.
const ROUNDS: usize = 3;

/// Seconds for the best prefill and the best decode of [`ROUNDS`] rounds.
fn timed_rounds(model: &mut dyn Decoder, ids: &[u32], new_tokens: usize) -> Result<Timing> {
    let (mut prefill, mut decode) = (f64::INFINITY, f64::INFINITY);
    for round in 0..ROUNDS {
        let start = Instant::now();
        let mut logits = model.prefill(&[ids.to_vec()], ids.len() + new_tokens + 1)?;
        if round > 0 {
            prefill = prefill.min(start.elapsed().as_secs_f64());
        }
        let start = Instant::now();
        for _ in 0..new_tokens {
            logits = model.step(&[argmax_row(&logits)?])?;
        }
        decode = decode.min(start.elapsed().as_secs_f64());
    }
    Ok(Timing { prefill, decode })
}

struct Timing {
    prefill: f64,
    decode: f64,
}

/// A next-step chat prompt with student context from the other problems, cut to its first `n` tokens.
fn speed_prompt(ctx: &Context, encode: &dyn Fn(&str) -> Result<Vec<u32>>, n: usize) -> Result<Vec<u32>> {
    let registry = ctx.registry()?;
    let problems: Vec<_> = registry.iter().collect();
    let mut request = Request::bare(Arc::new(problems[0].clone()));
    request.target = Target::Next;
    request.history = vec![Attempt { code: problems[0].solution.clone(), feedback: None }];
    for p in &problems[1..] {
        let ids = encode(&prompt::chatml(&prompt::prompted(&request)))?;
        if ids.len() >= n {
            break;
        }
        request.context.push(ContextProblem { problem: p.id.clone(), codes: vec![p.solution.clone(), p.todo.clone()] });
    }
    let mut ids = encode(&prompt::chatml(&prompt::prompted(&request)))?;
    ensure!(
        ids.len() >= n,
        "the registry's problems make a prompt of only {} tokens; ask for fewer --prompt-tokens",
        ids.len()
    );
    ids.truncate(n);
    Ok(ids)
}

/// What the peer environment was built for, as runtimes/bench-llama-cpp.sh wrote it beside the environment.
fn peer_build(python: &Path) -> String {
    let isa_file = python.parent().and_then(|bin| bin.parent()).map(|venv| venv.join("isa"));
    isa_file
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "an unknown instruction set (no isa file beside it)".into())
}

/// A peer killed by SIGILL ran an instruction this CPU lacks: say which build met which CPU.
fn explain_crash(error: anyhow::Error, built_for: &str) -> anyhow::Error {
    use std::os::unix::process::ExitStatusExt as _;
    let Some(failed) = error.downcast_ref::<super::PeerFailed>() else { return error };
    if failed.status.signal() != Some(libc::SIGILL) {
        return error;
    }
    anyhow::anyhow!(
        "{failed}: an illegal instruction. The peer was built for {built_for}; this CPU is {}. Rebuild it for this \
         CPU with runtimes/bench-llama-cpp.sh --isa avx2 (or without --isa: the best this CPU runs)",
        crate::cli::machine::cpu_description()
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    fn failed(raw_status: i32) -> anyhow::Error {
        super::super::PeerFailed {
            what: "the llama.cpp run".into(),
            status: std::process::ExitStatus::from_raw(raw_status),
        }
        .into()
    }

    #[test]
    fn a_peer_killed_by_sigill_names_its_build_and_the_cpu() {
        let message = explain_crash(failed(libc::SIGILL), "avx512").to_string();
        assert!(message.contains("the llama.cpp run failed (signal: 4 (SIGILL))"), "{message}");
        assert!(message.contains("built for avx512; this CPU is "), "{message}");
        assert!(message.contains(&crate::cli::machine::cpu_description()), "{message}");
        assert!(message.contains("--isa avx2"), "{message}");
    }

    #[test]
    fn other_failures_pass_through() {
        // exit code 1 (the raw wait status holds it in the second byte)
        assert_eq!(explain_crash(failed(1 << 8), "avx2").to_string(), "the llama.cpp run failed (exit status: 1)");
        assert_eq!(explain_crash(anyhow::anyhow!("no python"), "avx2").to_string(), "no python");
    }
}
