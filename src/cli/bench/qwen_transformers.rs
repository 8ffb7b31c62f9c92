//! `studentsim-dev bench qwen --gguf FILE --peer transformers`: real weights through `--model DIR` and
//! `--adapter DIR`, checked against Hugging Face transformers and PEFT. transformers loads the GGUF dequantized
//! and `save_pretrained` writes a real model folder; PEFT trains a LoRA adapter on it (r 16, alpha 32, all
//! linear layers, a few AdamW steps on `export sft` rows of the bundled examples, so B is not zero) and saves
//! it. Our f32 model then loads that folder, with and without the adapter, and the last-position logits of the
//! study's chat prompts and the greedy tokens are compared with transformers' and PEFT's.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::super::Context;
use super::qwen_shared::{QwenArgs, encode, greedy, last_logits, study_prompts, study_tokenizer};
use crate::cli::machine::cpu_description;
use crate::generate::qwen::load_folder;
use crate::generate::sft::{SftSpec, sft_rows};
use crate::problems::Registry;
use crate::trajectory;

/// transformers + PEFT: write the folder and the adapter, and their logits and greedy tokens.
const PYTHON_PEER: &str = r#"
import json, os, sys
import torch, transformers, peft
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
job = json.load(sys.stdin)
torch.manual_seed(0)
torch.set_num_threads(job["threads"])
folder, name = os.path.split(job["gguf"])
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
model.save_pretrained(job["hf"])
def last_logits(m):
    with torch.inference_mode():
        return [m(torch.tensor([ids])).logits[0, -1].tolist() for ids in job["prompts"]]
base = last_logits(model)
first = torch.tensor([job["prompts"][0]])
with torch.inference_mode():
    greedy = model.generate(first, attention_mask=torch.ones_like(first), max_new_tokens=job["new_tokens"],
                            do_sample=False, min_new_tokens=job["new_tokens"])[0, first.shape[1]:].tolist()
config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
lora = get_peft_model(model, config)
optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-3)
lora.train()
losses = []
for prompt, completion in job["train"]:
    ids = torch.tensor([prompt + completion])
    labels = ids.clone()
    labels[0, :len(prompt)] = -100  # loss on the completion only, as the study trained
    loss = lora(input_ids=ids, labels=labels).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    losses.append(loss.item())
lora.eval()
lora.save_pretrained(job["adapter"])
json.dump({"base": base, "greedy": greedy, "adapted": last_logits(lora), "losses": losses,
           "versions": f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}"},
          sys.stdout)
"#;

#[derive(Deserialize)]
struct Peer {
    base: Vec<Vec<f32>>,
    greedy: Vec<u32>,
    adapted: Vec<Vec<f32>>,
    losses: Vec<f64>,
    versions: String,
}

#[derive(Serialize)]
struct Figures {
    model: String,
    cpu: String,
    peer: String,
    prompts: usize,
    folder_max_abs_logit_diff: f32,
    folder_top1_equal: usize,
    greedy_equal_prefix: usize,
    greedy_tokens: usize,
    greedy_text_equal: bool,
    adapter_max_abs_logit_diff: f32,
    /// How far the adapter moves PEFT's logits from the base model's: the check is only as strong as this.
    adapter_effect: f32,
    training_losses: Vec<f64>,
}

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs())).fold(0f32, f32::max)
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap_or(0)
}

pub fn run(ctx: &Context, args: &QwenArgs, file: &Path) -> Result<ExitCode> {
    let tokenizer = study_tokenizer(ctx)?;
    let encode = |t: &str| encode(&tokenizer, t);
    let prompts: Vec<Vec<u32>> =
        study_prompts(ctx, args.prompts as usize)?.iter().map(|t| encode(t)).collect::<Result<_>>()?;
    let train = training_rows(&encode)?;
    let work = tempfile::tempdir()?;
    let (hf, adapter) = (work.path().join("hf"), work.path().join("adapter"));
    let python = match &args.python {
        Some(p) => p.clone(),
        None => super::peer_python("bench-transformers.sh")?,
    };
    eprintln!("transformers: loading {} dequantized, saving a model folder, training a LoRA adapter", file.display());
    let job = serde_json::json!({
        "gguf": file, "hf": hf, "adapter": adapter, "prompts": prompts, "train": train,
        "new_tokens": args.new_tokens, "threads": args.threads,
    });
    let peer: Peer =
        super::python_json(&python, PYTHON_PEER, &job, "the transformers run (runtimes/bench-transformers.sh)")?;

    eprintln!("studentsim: the folder, then the folder with the adapter");
    let logits = |adapter: Option<&Path>| -> Result<(Vec<Vec<f32>>, Vec<u32>)> {
        let (mut model, _) = load_folder(&hf, adapter, &Device::Cpu)?;
        let out = last_logits(&mut model, &prompts)?;
        let tokens =
            if adapter.is_none() { greedy(&mut model, &prompts[0], args.new_tokens as usize)? } else { vec![] };
        Ok((out, tokens))
    };
    let (base, our_greedy) = logits(None)?;
    let (adapted, _) = logits(Some(&adapter))?;
    let text = |t: &[u32]| tokenizer.decode(t, false).unwrap_or_default();
    let figures = Figures {
        model: file.display().to_string(),
        cpu: cpu_description(),
        peer: peer.versions,
        prompts: prompts.len(),
        folder_max_abs_logit_diff: max_abs_diff(&base, &peer.base),
        folder_top1_equal: base.iter().zip(&peer.base).filter(|(a, b)| argmax(a) == argmax(b)).count(),
        greedy_equal_prefix: our_greedy.iter().zip(&peer.greedy).take_while(|(a, b)| a == b).count(),
        greedy_tokens: our_greedy.len(),
        greedy_text_equal: text(&our_greedy) == text(&peer.greedy),
        adapter_max_abs_logit_diff: max_abs_diff(&adapted, &peer.adapted),
        adapter_effect: max_abs_diff(&peer.adapted, &peer.base),
        training_losses: peer.losses,
    };
    if args.json {
        println!("{}", serde_json::to_string(&figures)?);
    } else {
        let f = &figures;
        println!("{} through --model DIR and --adapter DIR, against {}", f.model, f.peer);
        println!("cpu: {}", f.cpu);
        println!(
            "folder: last-position logits of {} study prompts max |diff| {:.2e}, top-1 equal {}/{}; greedy tokens equal for the first {}/{} (text equal: {})",
            f.prompts,
            f.folder_max_abs_logit_diff,
            f.folder_top1_equal,
            f.prompts,
            f.greedy_equal_prefix,
            f.greedy_tokens,
            f.greedy_text_equal
        );
        println!(
            "adapter (PEFT LoRA r 16, alpha 32, all linear, {} AdamW steps, losses {:?}): max |diff| {:.2e}; the adapter moves the logits by up to {:.3}",
            f.training_losses.len(),
            f.training_losses,
            f.adapter_max_abs_logit_diff,
            f.adapter_effect
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A few `export sft` rows of the bundled examples, as (prompt, completion) token ids, the prompt cut to its
/// last 256 tokens so that each training step stays short.
fn training_rows(encode: &dyn Fn(&str) -> Result<Vec<u32>>) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rows = trajectory::read(&root.join("examples/trajectories.jsonl"))?;
    let registry = Registry::load(&root.join("problems"))?;
    let problems: HashMap<String, Arc<crate::problems::Problem>> =
        registry.iter().map(|p| (p.id.clone(), Arc::new(p.clone()))).collect();
    let spec = SftSpec { stages: false, ks: vec![1], without_context: true, with_context: false };
    sft_rows(&rows, &problems, &spec, None)
        .iter()
        .take(4)
        .map(|row| {
            let prompt = encode(&row.prompt)?;
            Ok((prompt[prompt.len().saturating_sub(256)..].to_vec(), encode(&row.completion)?))
        })
        .collect()
}
