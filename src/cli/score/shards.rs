//! `score --shard K/N`: a share of score's costly part, grading the rows that have no label and embedding the
//! programs, written as one JSONL file; `studentsim merge` reads every shard back and makes the report, which is
//! then byte for byte the unsharded one. Style features are left to the merge: natively they take well under a
//! millisecond a program.
//!
//! Rows to grade are shared by stream; programs to embed by batch, in the batches one run would embed them in
//! ([`embed::missing_batches`]), since a vector can differ in its last bits with the batch it was padded in.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{Input, ScoreArgs, ScoreSettings, grade_items, grade_todo, load_embedder, read_inputs, todo_problems};
use crate::BadInput;
use crate::cli::shard::{self, Kind, Manifest, Shard, ShardFile};
use crate::cli::{default_jobs, output::progress, tokio_runtime};
use crate::grade::Label;
use crate::grade::batch::grade_distinct;
use crate::hex;
use crate::metrics::embed::{self, EmbeddingCache};

/// One line of a score shard.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Part {
    /// The grade of row `row` (in score's row order) of set `set` (0 the real one, then the --sim sets).
    Grade { set: usize, row: usize, label: Label, pass_rate: f64 },
    /// The vector of the program whose text has this sha256, as little-endian f32 in hex (exact, unlike decimals).
    Embedding { sha256: String, vector: String },
}

/// What the shards computed, for the report.
#[derive(Default)]
pub(super) struct Precomputed {
    pub grades: HashMap<(usize, usize), (Label, f64)>,
    pub vectors: Vec<([u8; 32], Vec<f32>)>,
}

pub(super) fn run_shard(settings: &ScoreSettings, args: &ScoreArgs, shard: Shard) -> Result<ExitCode> {
    let ctx = &settings.context();
    let (real, sims) = read_inputs(settings)?;
    let inputs: Vec<&Input> = std::iter::once(&real).chain(&sims).collect();
    let paths: Vec<&Path> = inputs.iter().map(|i| i.path.as_path()).collect();
    let manifest = Manifest {
        score: Some(serde_json::to_value(settings)?),
        ..args.shard.manifest(Kind::Score, &paths, settings)?.expect("a shard")
    };
    let embedder = load_embedder(settings)?;
    let grader = ctx.grader(&settings.limits, args.jobs)?;
    let rt = tokio_runtime(args.jobs)?;

    // Grades: the rows without one, by stream across the sets in order.
    let registry = ctx.registry()?;
    let todo = grade_todo(&inputs);
    let problems = todo_problems(ctx, &registry, &inputs, &todo)?;
    // Streams are numbered set after set, each set's in (student, problem) order, as `trajectory::streams` keys them.
    let mut stream_number: HashMap<(usize, &str, &str), usize> = HashMap::new();
    for (s, input) in inputs.iter().enumerate() {
        let streams: BTreeSet<(&str, &str)> =
            input.rows.iter().map(|(_, r)| (r.student.as_str(), r.problem.as_str())).collect();
        for (student, problem) in streams {
            let next = stream_number.len();
            stream_number.insert((s, student, problem), next);
        }
    }
    let mine: Vec<(usize, usize)> = todo
        .into_iter()
        .filter(|&(s, i)| {
            let row = &inputs[s].rows[i].1;
            shard.owns(stream_number[&(s, row.student.as_str(), row.problem.as_str())])
        })
        .collect();
    let items = grade_items(&inputs, &problems, &mine);
    let bar = progress(mine.len(), "grading");
    let graded = rt.block_on(grade_distinct(&grader, items, args.jobs, &bar))?;
    bar.finish_and_clear();
    let mut parts: Vec<Part> = mine
        .iter()
        .zip(graded)
        .map(|(&(set, row), g)| Part::Grade { set, row, label: g.record.label, pass_rate: g.record.pass_rate })
        .collect();

    // Embeddings: every shard-th batch of the programs the cache lacks. The cache is only read: shards on many
    // machines must not append to one file.
    let codes: Vec<&str> = inputs.iter().flat_map(|s| s.rows.iter().map(|(_, r)| r.code.as_str())).collect();
    let cache = EmbeddingCache::open(&super::cache_dir(settings), embedder.id())?;
    let batches: Vec<Vec<usize>> = embed::missing_batches(&cache, &codes, super::EMBED_BATCH)
        .into_iter()
        .enumerate()
        .filter(|(c, _)| shard.owns(*c))
        .map(|(_, b)| b)
        .collect();
    let bar = progress(batches.iter().map(Vec::len).sum(), "embeddings");
    for batch in batches {
        let texts: Vec<&str> = batch.iter().map(|&i| codes[i]).collect();
        for (text, vector) in texts.iter().zip(embedder.embed(&texts)?) {
            let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
            parts.push(Part::Embedding { sha256: hex(&embed::text_key(text)), vector: hex(&bytes) });
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    shard::write_output(&args.out, Some(manifest), |out| crate::jsonl::write_rows(out, &parts))?;
    eprintln!(
        "score shard {shard}: {} grades, {} embeddings -> {}",
        mine.len(),
        parts.len() - mine.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The report from all the shards of one score run, into `output`.
pub(in crate::cli) fn merge(shards: &[ShardFile], output: &Path) -> Result<()> {
    let first = &shards[0];
    let settings: ScoreSettings =
        first.manifest.score.clone().and_then(|json| serde_json::from_value(json).ok()).ok_or_else(|| {
            BadInput(format!("{}: no score settings in the manifest", shard::manifest_path(&first.path).display()))
        })?;
    let (real, sims) = read_inputs(&settings)?;
    let paths: Vec<&Path> = std::iter::once(&real).chain(&sims).map(|i| i.path.as_path()).collect();
    if shard::inputs_sha256(&paths)? != shards[0].manifest.input_sha256 {
        return Err(BadInput(format!(
            "{}: the real or simulated sets changed since the shards ran",
            shards[0].path.display()
        ))
        .into());
    }
    let mut pre = Precomputed::default();
    for s in shards {
        for (index, line) in s.bytes.split(|&b| b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
            let at = |what: String| BadInput(format!("{}:{}: {what}", s.path.display(), index + 1));
            match serde_json::from_slice(line).map_err(|e| at(format!("not a score shard row: {e}")))? {
                Part::Grade { set, row, label, pass_rate } => {
                    pre.grades.insert((set, row), (label, pass_rate));
                }
                Part::Embedding { sha256, vector } => {
                    let key = unhex(&sha256)
                        .and_then(|k| <[u8; 32]>::try_from(k).ok())
                        .ok_or_else(|| at("a bad sha256".into()))?;
                    let bytes = unhex(&vector).filter(|b| b.len() % 4 == 0).ok_or_else(|| at("a bad vector".into()))?;
                    pre.vectors.push((
                        key,
                        bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect(),
                    ));
                }
            }
        }
    }
    super::write_report_with(&settings, output, default_jobs(), Some(&pre))?;
    Ok(())
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    text.len().is_multiple_of(2).then_some(())?;
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}
