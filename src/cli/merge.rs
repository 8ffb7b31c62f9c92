//! `studentsim merge`: join the outputs of `--shard K/N` runs into what one unsharded run writes, after checking
//! from their manifests that they are all the shards of one run: every K once, the same N, input and settings,
//! and each output as its shard left it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::shard::{self, Kind, ShardFile, read_shards};
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
    #[arg(long, short, value_name = "PATH")]
    output: PathBuf,
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
