//! `studentsim-dev bench adapter`: a LoRA adapter on the GGUF model, against PEFT on the base folder it was trained
//! on, in the same run: the last-position logits of the study's prompts (with the base model's own agreement
//! beside them, the floor any adapter check stands on), decode tokens/s with and without the adapter, the decode
//! path's logits against the prefill path's, and how much of the adapter a merge into the quantized weights
//! (requantizing) would keep, the alternative to our side path.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow};
use candle_core::quantized::{QTensor, gguf_file};
use candle_core::{DType, Device, Tensor};
use clap::Args;
use serde::Deserialize;
use serde_json::json;

use super::super::Context;
use super::qwen_shared::{argmax_row, encode, last_logits, study_prompts, study_tokenizer};
use crate::generate::qwen::engine::Decoder;
use crate::generate::qwen::lora::Adapter;
use crate::generate::qwen::{fetched_gguf, gguf};

#[derive(Debug, Args)]
pub struct AdapterArgs {
    /// The adapter folder (`studentsim train`'s OUT).
    #[arg(long, value_name = "DIR")]
    adapter: PathBuf,
    /// The GGUF model [default: the fetched Qwen2.5-Coder-0.5B-Instruct].
    #[arg(long, value_name = "FILE")]
    gguf: Option<PathBuf>,
    /// The Hugging Face folder the adapter was trained on [default: the `base` of its training-card.json].
    #[arg(long, value_name = "DIR")]
    base: Option<PathBuf>,
    /// Study prompts whose last-position logits are compared.
    #[arg(long, default_value_t = 8)]
    prompts: u16,
    /// Tokens decoded per timing round.
    #[arg(long, default_value_t = 64)]
    new_tokens: u16,
    /// The Python with PEFT [default: the training environment, runtimes/train-venv.sh].
    #[arg(long, value_name = "PYTHON")]
    python: Option<PathBuf>,
    /// CPU threads for each side (ours and PEFT's) [default: number of cores].
    #[arg(long, default_value_t = super::super::default_jobs() as u16, hide_default_value = true)]
    threads: u16,
    /// Print one JSON object (figures and `ratios`) instead of the summary.
    #[arg(long)]
    json: bool,
}

const PYTHON_PEER: &str = r#"
import json, sys
import torch, transformers, peft
from transformers import AutoModelForCausalLM
from peft import PeftModel
job = json.load(sys.stdin)
torch.set_num_threads(job["threads"])
model = AutoModelForCausalLM.from_pretrained(job["base"], dtype=torch.float32).eval()
def last(m):
    with torch.inference_mode():
        return [m(torch.tensor([ids])).logits[0, -1].tolist() for ids in job["prompts"]]
base = last(model)
adapted = last(PeftModel.from_pretrained(model, job["adapter"]).eval())
json.dump({"base": base, "adapted": adapted,
           "versions": f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}"}, sys.stdout)
"#;

#[derive(Deserialize)]
struct Peer {
    base: Vec<Vec<f32>>,
    adapted: Vec<Vec<f32>>,
    versions: String,
}

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs())).fold(0f32, f32::max)
}

fn top1_equal(a: &[Vec<f32>], b: &[Vec<f32>]) -> usize {
    let argmax = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap_or(0);
    a.iter().zip(b).filter(|(x, y)| argmax(x) == argmax(y)).count()
}

/// Decode tokens/s (best of three rounds after the prompt) and the first step's logits.
fn decode_speed(model: &mut dyn Decoder, ids: &[u32], new_tokens: usize) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let mut logits = model.prefill(&[ids.to_vec()], ids.len() + new_tokens + 1)?;
        let start = Instant::now();
        for _ in 0..new_tokens {
            logits = model.step(&[argmax_row(&logits)?])?;
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(new_tokens as f64 / best)
}

/// The last position's logits through a decoding step (prefill all but the last token, then step it), per prompt.
fn stepped_logits(model: &mut dyn Decoder, prompts: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
    prompts
        .iter()
        .map(|ids| {
            let (last, head) = ids.split_last().ok_or_else(|| anyhow!("an empty prompt"))?;
            model.prefill(&[head.to_vec()], ids.len() + 1)?;
            Ok(model.step(&[*last])?.squeeze(0)?.to_vec1::<f32>()?)
        })
        .collect()
}

/// For each adapted layer, the share of `scale · B·A` that survives merging it into the file's quantized weights
/// and quantizing again (`<requantized − W, ΔW> / <ΔW, ΔW>`): the mean, the least and the layer count.
fn requantized_share(file: &std::path::Path, adapter: &Adapter) -> Result<(f64, f64, usize)> {
    let mut reader = std::fs::File::open(file)?;
    let content = gguf_file::Content::read(&mut reader).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let mut shares = Vec::new();
    for (module, _) in adapter.modules() {
        let Some(name) = gguf::gguf_name(&format!("{module}.weight")) else { continue };
        let quantized = content.tensor(&mut reader, &name, &Device::Cpu)?;
        let (a, b, scale) = adapter.module(module).expect("listed");
        let w = quantized.dequantize(&Device::Cpu)?;
        let delta = (b.matmul(a)? * scale)?;
        let again = QTensor::quantize(&(&w + &delta)?, quantized.dtype())?.dequantize(&Device::Cpu)?;
        let dot = |x: &Tensor, y: &Tensor| -> Result<f64> {
            Ok((x * y)?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?)
        };
        shares.push(dot(&(again - &w)?, &delta)? / dot(&delta, &delta)?.max(f64::MIN_POSITIVE));
    }
    let mean = shares.iter().sum::<f64>() / shares.len().max(1) as f64;
    Ok((mean, shares.iter().copied().fold(f64::INFINITY, f64::min), shares.len()))
}

pub fn run(ctx: &Context, args: &AdapterArgs) -> Result<ExitCode> {
    let file = args.gguf.clone().unwrap_or_else(|| fetched_gguf(&ctx.runtime_dir()));
    let base = match &args.base {
        Some(b) => b.clone(),
        None => {
            let card = args.adapter.join("training-card.json");
            let text =
                std::fs::read_to_string(&card).with_context(|| format!("{} (or give --base DIR)", card.display()))?;
            let card: serde_json::Value = serde_json::from_str(&text)?;
            PathBuf::from(card["base"].as_str().ok_or_else(|| anyhow!("{}: no base", args.adapter.display()))?)
        }
    };
    let tokenizer = study_tokenizer(ctx)?;
    let texts = study_prompts(ctx, args.prompts as usize)?;
    let prompts: Vec<Vec<u32>> = texts.iter().map(|t| encode(&tokenizer, t)).collect::<Result<_>>()?;
    let new_tokens = args.new_tokens as usize;
    // SAFETY: set before any thread pool starts
    unsafe { std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string()) };

    eprintln!("studentsim: the GGUF alone");
    let mut plain = gguf::load(&file)?;
    let plain_logits = last_logits(&mut plain, &prompts)?;
    let plain_stepped = stepped_logits(&mut plain, &prompts)?;
    let plain_speed = decode_speed(&mut plain, &prompts[0], new_tokens)?;
    drop(plain);
    eprintln!("studentsim: the GGUF with the adapter");
    let mut adapted = gguf::load_adapted(&file, Some(&args.adapter))?;
    let adapted_logits = last_logits(&mut adapted, &prompts)?;
    let adapted_stepped = stepped_logits(&mut adapted, &prompts)?;
    let adapted_speed = decode_speed(&mut adapted, &prompts[0], new_tokens)?;
    drop(adapted);
    eprintln!("studentsim: what requantizing would keep");
    let (share_mean, share_least, layers) = requantized_share(&file, &Adapter::read(&args.adapter)?)?;
    eprintln!("studentsim: PEFT on {}", base.display());
    let python = match &args.python {
        Some(p) => p.clone(),
        None => super::peer_python("train-venv.sh")?,
    };
    let job = json!({"base": base, "adapter": args.adapter, "prompts": prompts, "threads": args.threads});
    let peer: Peer = super::python_json(&python, PYTHON_PEER, &job, "the PEFT run (runtimes/train-venv.sh)")?;

    let figures = json!({
        "cpu": crate::cli::machine::cpu_description(),
        "threads": args.threads,
        "peer": peer.versions,
        "prompts": prompts.len(),
        "base_vs_transformers": {"max_abs_logit_diff": max_abs_diff(&plain_logits, &peer.base), "top1_equal": top1_equal(&plain_logits, &peer.base)},
        "adapted_vs_peft": {"max_abs_logit_diff": max_abs_diff(&adapted_logits, &peer.adapted), "top1_equal": top1_equal(&adapted_logits, &peer.adapted)},
        "adapter_effect_peft": max_abs_diff(&peer.base, &peer.adapted),
        "adapter_effect_ours": max_abs_diff(&plain_logits, &adapted_logits),
        "decode_vs_prefill": {"plain": max_abs_diff(&plain_stepped, &plain_logits), "adapted": max_abs_diff(&adapted_stepped, &adapted_logits)},
        "decode_tokens_per_s": {"plain": plain_speed, "adapted": adapted_speed},
        "ratios": {"adapted_vs_plain_decode": adapted_speed / plain_speed},
        "requantized_share_of_adapter": {"mean": share_mean, "least": share_least, "layers": layers},
    });
    if args.json {
        println!("{figures}");
    } else {
        let n = prompts.len();
        println!(
            "{} prompts, {} threads, {}; peer {}\n\
             logits, max |ours - peer| (top-1 equal): base {:.2e} ({}/{n}), with the adapter {:.2e} ({}/{n})\n\
             the adapter moves the logits by up to {:.3} (PEFT) / {:.3} (ours)\n\
             decode-path against prefill-path logits: base {:.2e}, with the adapter {:.2e}\n\
             decode: {:.1} tokens/s without the adapter, {:.1} with it: ratio {:.3}\n\
             requantizing the merged weights would keep {:.1}% of the adapter (least layer {:.1}%, {layers} layers)",
            n,
            args.threads,
            crate::cli::machine::cpu_description(),
            peer.versions,
            max_abs_diff(&plain_logits, &peer.base),
            top1_equal(&plain_logits, &peer.base),
            max_abs_diff(&adapted_logits, &peer.adapted),
            top1_equal(&adapted_logits, &peer.adapted),
            max_abs_diff(&peer.base, &peer.adapted),
            max_abs_diff(&plain_logits, &adapted_logits),
            max_abs_diff(&plain_stepped, &plain_logits),
            max_abs_diff(&adapted_stepped, &adapted_logits),
            plain_speed,
            adapted_speed,
            adapted_speed / plain_speed,
            100.0 * share_mean,
            100.0 * share_least,
        );
    }
    Ok(ExitCode::SUCCESS)
}
