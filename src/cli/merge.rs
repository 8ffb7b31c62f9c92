//! `studentsim merge`: join the outputs of `--shard K/N` runs into what one unsharded run writes, after checking
//! from their manifests that they are all the shards of one run: every K once, the same N, input and settings,
//! and each output as its shard left it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::shard::{self, Kind, Manifest};
use crate::BadInput;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    studentsim grade --input subs.jsonl --output grades.$K.jsonl --shard $K/3   # K = 1, 2, 3, anywhere\n  \
    studentsim merge --output grades.jsonl grades.*.jsonl\n\n\
    Each shard output has its manifest beside it (<output>.shard.json, written when the shard finished). The \
    shards of grade, metrics and rollout merge into one file, byte for byte what the unsharded command writes; \
    the shards of score merge into its report folder.")]
pub struct MergeArgs {
    /// The shard outputs, in any order.
    #[arg(value_name = "SHARD", required = true)]
    shards: Vec<PathBuf>,
    /// The joined output: a file, or for score shards the report folder.
    #[arg(long, value_name = "PATH")]
    output: PathBuf,
}

/// A shard output and what its manifest says.
pub(super) struct ShardFile {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub bytes: Vec<u8>,
}

pub fn run(args: MergeArgs) -> Result<ExitCode> {
    let shards = read_shards(&args.shards)?;
    let kind = shards[0].manifest.kind;
    match kind {
        Kind::Grade | Kind::Metrics => {
            let lines = by_position(&shards)?;
            shard::write_output(&args.output, None, |out| {
                Ok(lines.iter().try_for_each(|line| out.write_all(line))?)
            })?;
        }
        Kind::Rollout => {
            let mut all = Vec::new();
            for s in &shards {
                all.extend_from_slice(&s.bytes);
            }
            // One sort of every row finds a row two shards both wrote.
            let lines = crate::rollout::output::lines_in_key_order(&all, &args.output)
                .map_err(|e| BadInput(format!("{} (the shards overlap)", e.0)))?;
            shard::write_output(&args.output, None, |out| {
                Ok(lines.iter().try_for_each(|(_, line)| out.write_all(line))?)
            })?;
        }
        Kind::Score => super::score::merge(&shards, &args.output)?,
    }
    eprintln!("merged {} {} shards -> {}", shards.len(), kind.as_str(), args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Read every shard and its manifest, and check they are the N shards of one run, each once.
fn read_shards(paths: &[PathBuf]) -> Result<Vec<ShardFile>, BadInput> {
    let mut by_index: BTreeMap<u32, ShardFile> = BTreeMap::new();
    for path in paths {
        let file = read_shard(path)?;
        if let Some(first) = by_index.values().next() {
            let (a, b) = (&first.manifest, &file.manifest);
            let differs = if a.kind != b.kind {
                Some(format!("a {} shard, not {}", b.kind.as_str(), a.kind.as_str()))
            } else if a.shard.count != b.shard.count {
                Some(format!("one of {} shards, not {}", b.shard.count, a.shard.count))
            } else if a.input_sha256 != b.input_sha256 {
                Some("made from another input".to_owned())
            } else if a.settings_sha256 != b.settings_sha256 {
                Some("made with other settings (arguments or studentsim version)".to_owned())
            } else {
                None
            };
            if let Some(why) = differs {
                return Err(BadInput(format!(
                    "{}: not a shard of the same run as {}: {why}",
                    path.display(),
                    first.path.display()
                )));
            }
        }
        if let Some(other) = by_index.get(&file.manifest.shard.index) {
            return Err(BadInput(format!(
                "{}: shard {} again (also {})",
                path.display(),
                file.manifest.shard,
                other.path.display()
            )));
        }
        by_index.insert(file.manifest.shard.index, file);
    }
    let count = by_index.values().next().expect("clap requires a shard").manifest.shard.count;
    let missing: Vec<String> =
        (1..=count).filter(|k| !by_index.contains_key(k)).map(|k| format!("{k}/{count}")).collect();
    if !missing.is_empty() {
        return Err(BadInput(format!("shard {} missing (got {} of {count})", missing.join(", "), by_index.len())));
    }
    Ok(by_index.into_values().collect())
}

fn read_shard(path: &Path) -> Result<ShardFile, BadInput> {
    let manifest_path = shard::manifest_path(path);
    let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
        BadInput(format!(
            "{}: no shard manifest {} ({e}): not a --shard output, or its run has not finished",
            path.display(),
            manifest_path.display()
        ))
    })?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| BadInput(format!("{}:{}: not a shard manifest: {e}", manifest_path.display(), e.line())))?;
    if manifest.studentsim_shard != shard::FORMAT {
        return Err(BadInput(format!(
            "{}: shard format {}, this studentsim reads {}",
            manifest_path.display(),
            manifest.studentsim_shard,
            shard::FORMAT
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| BadInput(format!("{}: cannot read: {e}", path.display())))?;
    if shard::sha256_hex(&bytes) != manifest.output_sha256 {
        return Err(BadInput(format!(
            "{}: changed since its shard finished (sha256 differs from {})",
            path.display(),
            manifest_path.display()
        )));
    }
    Ok(ShardFile { path: path.to_owned(), manifest, bytes })
}

/// The lines of row-per-input shards put back at their input positions; every position filled exactly once.
fn by_position(shards: &[ShardFile]) -> Result<Vec<&[u8]>, BadInput> {
    let rows = shards[0].manifest.input_rows;
    let mut lines: Vec<Option<&[u8]>> = vec![None; rows];
    for s in shards {
        let own: Vec<&[u8]> = s.bytes.split_inclusive(|&b| b == b'\n').collect();
        let positions = &s.manifest.positions;
        if own.len() != positions.len() {
            return Err(BadInput(format!(
                "{}: {} rows, its manifest lists {}",
                s.path.display(),
                own.len(),
                positions.len()
            )));
        }
        for (&at, line) in positions.iter().zip(own) {
            match lines.get_mut(at) {
                Some(slot @ None) => *slot = Some(line),
                Some(Some(_)) => {
                    return Err(BadInput(format!("{}: input row {} is in two shards", s.path.display(), at + 1)));
                }
                None => {
                    return Err(BadInput(format!(
                        "{}: input row {} is past the input's {rows} rows",
                        s.path.display(),
                        at + 1
                    )));
                }
            }
        }
    }
    match lines.iter().position(Option::is_none) {
        Some(at) => Err(BadInput(format!("input row {} is in no shard", at + 1))),
        None => Ok(lines.into_iter().map(|l| l.expect("every position is filled")).collect()),
    }
}
