//! `studentsim-dev bench embed`: the code embedder (candle) against sentence-transformers on PyTorch, same model
//! folder, same programs, same threads and length limit, each side at its best batch size.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use clap::Args;
use clap::builder::TypedValueParser as _;
use serde::Deserialize;

use super::super::Context;
use super::super::output::progress;
use crate::BadInput;
use crate::metrics::embed::{self, EmbeddingCache};
use crate::metrics::semantics::cosine_distance;
use crate::trajectory;

#[derive(Debug, Args)]
#[command(after_help = "Both sides embed the distinct programs of --input from scratch once per batch size \
    (ours through the same cached path `score` uses, into an empty cache) and the best time of each side is \
    compared. The peer is sentence-transformers on PyTorch in the environment runtimes/bench-embed.sh makes \
    (about 7 GB, made once; not part of the set-up). Both sides run with --threads threads (candle through \
    RAYON_NUM_THREADS, which this bench sets; PyTorch through torch.set_num_threads).")]
pub struct EmbedArgs {
    /// Trajectory rows (native JSONL), e.g. the output of `studentsim import newcaledonia`.
    #[arg(long, value_name = "JSONL")]
    input: PathBuf,
    /// The encoder folder [default: all-MiniLM-L6-v2 as runtimes/setup.sh unpacks it].
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Threads on both sides.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    threads: usize,
    /// Batch sizes to try on both sides, comma-separated.
    #[arg(long, value_name = "SIZES", value_delimiter = ',', default_value = "16,64")]
    batch_sizes: Vec<usize>,
    /// Embed only the first N distinct programs.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// The peer's python [default: the one runtimes/bench-embed.sh makes].
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Print one JSON object (figures and `ratios`) instead of the table.
    #[arg(long)]
    json: bool,
}

/// The peer: reads {model, texts, threads, max_length, batches, vectors_out} on stdin, writes the last run's
/// vectors as little-endian f32 to `vectors_out` and its timings and versions on stdout.
const PYTHON_PEER: &str = r#"
import json, sys, time
job = json.load(sys.stdin)
import torch
torch.set_num_threads(job["threads"])
torch.set_num_interop_threads(1)
import sentence_transformers, transformers
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(job["model"], device="cpu")
model.max_seq_length = job["max_length"]
texts = job["texts"]
model.encode(texts[:8], batch_size=8)
runs = []
for batch in job["batches"]:
    start = time.perf_counter()
    vectors = model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
    runs.append({"batch": batch, "seconds": time.perf_counter() - start})
with open(job["vectors_out"], "wb") as f:
    f.write(vectors.astype("<f4").tobytes())
versions = f"torch {torch.__version__}, transformers {transformers.__version__}, sentence-transformers {sentence_transformers.__version__}"
json.dump({"runs": runs, "versions": versions}, sys.stdout)
"#;

#[derive(Deserialize)]
struct PeerRun {
    batch: usize,
    seconds: f64,
}

#[derive(Deserialize)]
struct PeerResult {
    runs: Vec<PeerRun>,
    versions: String,
}

pub fn run(_ctx: &Context, args: EmbedArgs) -> Result<ExitCode> {
    ensure!(
        !args.batch_sizes.is_empty() && !args.batch_sizes.contains(&0),
        BadInput("--batch-sizes: give positive sizes".into())
    );
    let rows = trajectory::read(&args.input)?;
    let mut seen = std::collections::HashSet::new();
    let mut texts: Vec<&str> = rows.iter().map(|r| r.code.as_str()).filter(|c| seen.insert(*c)).collect();
    texts.truncate(args.limit.unwrap_or(usize::MAX));
    if texts.is_empty() {
        return Err(BadInput(format!("{}: no programs", args.input.display())).into());
    }
    let n = texts.len();
    let model_dir = args.model.clone().unwrap_or_else(embed::default_model_dir);
    // SAFETY: set before any thread of this process reads the environment (rayon's pool starts on first use).
    unsafe { std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string()) };
    let embedder = embed::load(&model_dir)?;
    eprintln!("embedding {n} distinct programs with {} ({} threads per side)", embedder.id(), args.threads);
    embedder.embed(&texts[..n.min(8)])?;

    let mut ours = Vec::new();
    let mut vectors = Vec::new();
    for &batch in &args.batch_sizes {
        let dir = tempfile::tempdir()?;
        let mut cache = EmbeddingCache::open(dir.path(), embedder.id())?;
        let bar = progress(n, &format!("candle, batch {batch}"));
        let start = Instant::now();
        vectors =
            embed::embed_cached(embedder.as_ref(), &mut cache, &texts, batch, |done| bar.set_position(done as u64))?;
        ours.push((batch, start.elapsed().as_secs_f64()));
        bar.finish_and_clear();
    }

    let python = match &args.python {
        Some(p) => p.clone(),
        None => super::peer_python("bench-embed.sh")?,
    };
    eprintln!("sentence-transformers on PyTorch ({})", python.display());
    let out = tempfile::NamedTempFile::new()?;
    let job = serde_json::json!({
        "model": model_dir, "texts": texts, "threads": args.threads, "max_length": max_length(&model_dir)?,
        "batches": args.batch_sizes, "vectors_out": out.path(),
    });
    let peer: PeerResult = super::python_json(&python, PYTHON_PEER, &job, "the sentence-transformers run")?;
    let bytes = std::fs::read(out.path()).context("reading the peer's vectors")?;
    let dim = vectors.first().map_or(0, Vec::len);
    ensure!(bytes.len() == n * dim * 4, "the peer wrote {} bytes of vectors, expected {n} × {dim} floats", bytes.len());
    let theirs: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
    let largest =
        vectors.iter().zip(theirs.chunks_exact(dim)).map(|(a, b)| cosine_distance(a, b)).fold(0.0_f64, f64::max);

    let best =
        |runs: &mut dyn Iterator<Item = (usize, f64)>| runs.min_by(|a, b| a.1.total_cmp(&b.1)).expect("a batch size");
    let (our_batch, our_s) = best(&mut ours.iter().copied());
    let (peer_batch, peer_s) = best(&mut peer.runs.iter().map(|r| (r.batch, r.seconds)));
    let (our_rate, peer_rate) = (n as f64 / our_s, n as f64 / peer_s);
    if args.json {
        let figures = serde_json::json!({
            "programs": n,
            "threads": args.threads,
            "model": embedder.id(),
            "studentsim": {"best_batch": our_batch, "programs_per_s": our_rate, "runs": ours.iter().map(|(b, s)| serde_json::json!({"batch": b, "seconds": s})).collect::<Vec<_>>()},
            "sentence_transformers": {"best_batch": peer_batch, "programs_per_s": peer_rate, "versions": peer.versions,
                "runs": peer.runs.iter().map(|r| serde_json::json!({"batch": r.batch, "seconds": r.seconds})).collect::<Vec<_>>()},
            "largest_cosine_difference": largest,
            "ratios": {"studentsim_vs_sentence_transformers": our_rate / peer_rate},
        });
        println!("{figures}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{n} distinct programs, {}, {} threads per side; peer: {}", embedder.id(), args.threads, peer.versions);
    println!("{:<24} {:>6} {:>10} {:>12}", "side", "batch", "seconds", "programs/s");
    for (batch, s) in &ours {
        println!("{:<24} {batch:>6} {s:>8.2} s {:>12.1}", "studentsim (candle)", n as f64 / s);
    }
    for r in &peer.runs {
        println!("{:<24} {:>6} {:>8.2} s {:>12.1}", "sentence-transformers", r.batch, r.seconds, n as f64 / r.seconds);
    }
    println!("ratio at each side's best batch ({our_batch} / {peer_batch}): {:.2}x", our_rate / peer_rate);
    println!("largest cosine difference between the two sides' vectors: {largest:.2e}");
    Ok(ExitCode::SUCCESS)
}

/// The token limit sentence-transformers applies to this folder (`sentence_bert_config.json`, else 256).
fn max_length(dir: &std::path::Path) -> Result<usize> {
    let path = dir.join("sentence_bert_config.json");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(256) };
    let config: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    Ok(config["max_seq_length"].as_u64().map_or(256, |m| m as usize))
}
