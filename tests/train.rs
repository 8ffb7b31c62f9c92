//! Training qwen-student: `studentsim train`'s argument and input checks, and, where the training environment
//! exists (runtimes/train-venv.sh), a two-step LoRA run on a tiny random Qwen2 whose adapter then loads and changes
//! the model's logits. (`export sft --feedback` on real streams is in tests/newcaledonia.rs, beside the import.)

use crate::common;

use std::path::{Path, PathBuf};

use candle_core::Device;
use common::{EXAMPLES, bad_input, studentsim};
use studentsim::generate::qwen::load_folder;
use studentsim::generate::qwen::random::{self, Shape};
use studentsim::sandbox::Runtime;

fn tokenizer() -> PathBuf {
    let path = studentsim::generate::qwen::fetched_tokenizer(&Runtime::default_dir());
    assert!(path.is_file(), "{} is missing (run runtimes/setup.sh)", path.display());
    path
}

fn tiny(dir: &Path) -> PathBuf {
    let folder = dir.join("tiny");
    random::write_folder(&folder, &Shape::TINY, 5, &tokenizer()).unwrap();
    folder
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn train_refuses_bad_input_with_one_line() {
    let work = tempfile::tempdir().unwrap();
    let base = tiny(work.path());
    let out = work.path().join("adapter");
    let train = |extra: &[&str], out: &Path| {
        let mut args =
            vec!["train", "--input", EXAMPLES, "--out", path(out), "--base", path(&base), "--python", "/bin/false"];
        args.extend(extra);
        studentsim(&args)
    };

    // a base that is not Qwen2
    let llama = work.path().join("llama");
    std::fs::create_dir_all(&llama).unwrap();
    let mut config = Shape::TINY.config_json();
    config["model_type"] = "llama".into();
    config["architectures"] = serde_json::json!(["LlamaForCausalLM"]);
    std::fs::write(llama.join("config.json"), config.to_string()).unwrap();
    std::fs::write(llama.join("model.safetensors"), b"").unwrap();
    let run = studentsim(&["train", "--input", EXAMPLES, "--out", path(&out), "--base", path(&llama)]);
    bad_input(&run, &["llama", "Qwen2"], Some(&out));

    // no rows: one-attempt streams have no next step, and stages are left out
    let single = work.path().join("single.jsonl");
    let first_attempts: String = std::fs::read_to_string(EXAMPLES)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"attempt\": 1,"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!first_attempts.is_empty(), "the examples have first attempts");
    std::fs::write(&single, first_attempts).unwrap();
    let run =
        studentsim(&["train", "--input", path(&single), "--out", path(&out), "--base", path(&base), "--no-stages"]);
    bad_input(&run, &["single.jsonl", "no fine-tuning rows"], Some(&out));

    // a row over the context
    let run = train(&["--max-length", "40"], &out);
    bad_input(&run, &["tokens, over --max-length 40", "student"], Some(&out));

    // a budget nothing fits
    let run = train(&["--max-rows", "0"], &out);
    bad_input(&run, &["--max-rows"], Some(&out));

    // a folder that is not a run of ours
    let stranger = work.path().join("stranger");
    std::fs::create_dir_all(&stranger).unwrap();
    std::fs::write(stranger.join("notes.txt"), "mine").unwrap();
    bad_input(&train(&[], &stranger), &["not empty"], None);

    // the output of another run: the first run records its job (its python fails), the second asks for another rank
    let first = train(&["--max-steps", "1"], &out);
    assert_eq!(
        first.status.code(),
        Some(1),
        "the script cannot run under /bin/false: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(out.join("job.json").is_file() && out.join("rows.jsonl").is_file());
    bad_input(&train(&["--max-steps", "1", "--lora-r", "8"], &out), &["other rows or settings"], None);
}

/// The training environment's python, when runtimes/train-venv.sh has made it.
fn train_python() -> Option<PathBuf> {
    let python = std::env::var_os("STUDENTSIM_TRAIN_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("runtimes/.cache/train-venv"))
        .join("bin/python");
    if !python.is_file() {
        eprintln!(
            "skipping: {} not found (runtimes/train-venv.sh makes the training environment; about 6 GB)",
            python.display()
        );
        return None;
    }
    Some(python)
}

#[test]
fn two_training_steps_on_a_tiny_qwen2_make_an_adapter_that_changes_its_logits() {
    let Some(python) = train_python() else { return };
    let work = tempfile::tempdir().unwrap();
    let base = tiny(work.path());
    let out = work.path().join("adapter");
    let args = [
        "train",
        "--input",
        EXAMPLES,
        "--out",
        path(&out),
        "--base",
        path(&base),
        "--python",
        path(&python),
        "--no-stages",
        "--k",
        "1",
        "--context",
        "without",
        "--max-steps",
        "2",
        "--batch",
        "2",
        "--save-steps",
        "1",
        "--lr",
        "0.01",
        "--threads",
        "1",
    ];
    let run = studentsim(&args);
    assert!(
        run.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run.stderr),
        std::fs::read_to_string(out.join("train.log")).unwrap_or_default()
    );
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("training-card.json")).unwrap()).unwrap();
    assert_eq!(card["training"]["steps"], 2, "{card:#}");
    assert_eq!(card["training"]["loss_curve"].as_array().map(Vec::len), Some(2), "one loss per step: {card:#}");
    assert!(
        card["rows"]["trained"].as_u64().unwrap() > 0 && card["rows"]["completion_tokens"].as_u64().unwrap() > 0,
        "{card:#}"
    );
    assert_eq!(card["hyper_parameters"]["r"], 16);
    assert!(out.join("checkpoints/checkpoint-2").is_dir(), "a checkpoint per --save-steps");

    // the adapter loads into the in-process model and changes what it computes
    let prompt = [vec![9707u32, 11, 1879, 0, 576, 4226, 374]];
    let plain = load_folder(&base, None, &Device::Cpu).unwrap().0.prefill(&prompt, 16).unwrap();
    let tuned = load_folder(&base, Some(&out), &Device::Cpu).unwrap().0.prefill(&prompt, 16).unwrap();
    let diff =
        (plain - tuned).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    assert!(diff > 1e-4, "two steps at lr 0.01 move the logits: max difference {diff}");

    // a rerun of the same job resumes from the last checkpoint and finds nothing left to do
    let again = studentsim(&args);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("training-card.json")).unwrap()).unwrap();
    assert!(card["training"]["resumed_from"].as_str().is_some_and(|c| c.ends_with("checkpoint-2")), "{card:#}");
}
