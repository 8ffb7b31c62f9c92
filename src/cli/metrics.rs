//! `studentsim metrics`: per-row features, so users and other tools can check every figure.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::output::progress;
use super::shard::{self, Kind, ShardArgs};
use super::{Context, LimitArgs, Pep8EngineArgs, default_jobs, tokio_runtime};
use crate::BadInput;
use crate::metrics::edit_distance;
use crate::metrics::style::{Style, styles_parallel};
use crate::trajectory::{self, Submission};

#[derive(Debug, Args)]
#[command(after_help = "Each output row is the input row plus: lines, chars, ast_depth, ast_width, ast_nodes, pep8, \
    pep8_wrapped, and edit_distance (character Levenshtein to the previous row of the same stream; 0 for the first).\n\nExamples:\n  studentsim metrics --input examples/trajectories.jsonl --output features.jsonl")]
pub struct MetricsArgs {
    /// Trajectory rows (the native JSONL schema).
    #[arg(long, value_name = "JSONL")]
    input: PathBuf,
    /// Where to write the rows with their features (written atomically).
    #[arg(long, short, value_name = "JSONL")]
    output: PathBuf,
    #[command(flatten)]
    pep8_engine: Pep8EngineArgs,
    /// Sandbox instances to run at once [default: number of cores].
    #[arg(long, short, value_name = "N", default_value_t = default_jobs(), hide_default_value = true)]
    jobs: usize,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    shard: ShardArgs,
}

#[derive(Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    submission: &'a Submission,
    #[serde(flatten)]
    style: Style,
    edit_distance: usize,
}

/// The columns this command adds; an input row's own fields of these names (a metrics file read again) are
/// replaced, not written twice.
const WRITTEN: [&str; 8] =
    ["lines", "chars", "ast_depth", "ast_width", "ast_nodes", "pep8", "pep8_wrapped", "edit_distance"];

pub fn run(ctx: &Context, args: MetricsArgs) -> Result<ExitCode> {
    let mut rows = trajectory::read(&args.input)?;
    for row in &mut rows {
        row.extra.retain(|name, _| !WRITTEN.contains(&name.as_str()));
    }
    if rows.is_empty() {
        return Err(BadInput(format!("{}: no rows", args.input.display())).into());
    }
    // A shard takes whole streams (edit distances stay within one), and writes its rows in input order.
    let positions: Vec<usize> = match args.shard.shard {
        Some(s) => {
            let mut mine: Vec<usize> = trajectory::streams(&rows)
                .into_values()
                .enumerate()
                .filter(|(j, _)| s.owns(*j))
                .flat_map(|(_, indices)| indices)
                .collect();
            mine.sort_unstable();
            mine
        }
        None => (0..rows.len()).collect(),
    };
    let manifest = args
        .shard
        .manifest(Kind::Metrics, &[&args.input], &(args.pep8_engine.pep8_engine, &args.limits))?
        .map(|m| shard::Manifest { positions: positions.clone(), input_rows: rows.len(), ..m });
    let all_rows = rows.len();
    let rows: Vec<Submission> = match args.shard.shard {
        Some(_) => positions.iter().map(|&i| rows[i].clone()).collect(),
        None => rows,
    };
    let grader = ctx.grader(&args.limits, args.jobs)?;
    let codes: Vec<&str> = rows.iter().map(|r| r.code.as_str()).collect();
    let bar = progress(codes.len(), "style features");
    let features = styles_parallel(
        tokio_runtime(args.jobs)?.handle(),
        &grader,
        &codes,
        args.pep8_engine.pep8_engine,
        args.jobs,
        &bar,
    )?;
    bar.finish_and_clear();
    let mut edits = vec![0; rows.len()];
    for indices in trajectory::streams(&rows).values() {
        for pair in indices.windows(2) {
            edits[pair[1]] = edit_distance(&rows[pair[0]].code, &rows[pair[1]].code);
        }
    }
    let out_rows = rows.iter().zip(features).zip(edits).map(|((submission, style), edit_distance)| Row {
        submission,
        style,
        edit_distance,
    });
    shard::write_output(&args.output, manifest, |out| crate::jsonl::write_rows(out, out_rows))?;
    let of = args.shard.shard.map(|s| format!(" (shard {s} of {all_rows})")).unwrap_or_default();
    eprintln!("{} rows{of} -> {}", rows.len(), args.output.display());
    Ok(ExitCode::SUCCESS)
}
