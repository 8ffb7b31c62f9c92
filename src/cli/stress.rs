//! `studentsim stress-tutor`: many concurrent simulated students against one tutor bot; latency percentiles,
//! failures, and answer leakage (hints that hand out code close to the reference solution).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use jiff::SignedDuration;
use serde::Serialize;

use super::Context;
use super::output::progress_of_unknown_length;
use super::rollout::{CommonArgs, TutorArgs, prepare};
use crate::generate::BoxFuture;
use crate::generate::reply::extract_code;
use crate::rollout::output::ResumableOutput;
use crate::rollout::tutor::{Tutor, TutorTimeout};
use crate::rollout::{self, StreamOptions};
use crate::{BadInput, jsonl};

#[derive(Debug, Args)]
#[command(after_help = "--input gives the streams to imitate (repeated as new students up to --streams), --out a new \
    file for the simulated rows (their feedback holds each hint). Repeat --tutor-url to compare tutors: each gets the same \
    simulated students with the same seed, one after another, and its own figures and rows (--out with .tutorN).\n\nExamples:\n  studentsim stress-tutor --input split/ns_op.jsonl --output stress.jsonl --tutor-url http://localhost:9000/hint --streams 200")]
pub struct StressArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    tutor: TutorArgs,
    /// Simulated students in all: the input's streams are repeated (as new students) until there are this many.
    #[arg(long, default_value_t = 200)]
    streams: usize,
    /// Attempts each simulated student makes before giving up (fewer when one passes).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,
    /// A hint whose code is at least this similar to the reference solution (1 − edit distance / length) leaks
    /// the answer.
    #[arg(long, default_value_t = 0.8)]
    leak_similarity: f64,
    /// Also write the figures as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// One call to the tutor.
struct Call {
    problem: String,
    latency: Duration,
    outcome: Result<String, String>,
    /// The error was the tutor's time limit ([`TutorTimeout`]).
    timed_out: bool,
}

/// Wraps the tutor under test and records every call.
struct Measured {
    inner: Arc<dyn Tutor>,
    calls: Mutex<Vec<Call>>,
}

impl Tutor for Measured {
    fn hint<'a>(&'a self, state: String) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let problem = serde_json::from_str::<serde_json::Value>(&state)
                .ok()
                .and_then(|v| v["problem"]["id"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let start = Instant::now();
            let result = self.inner.hint(state).await;
            let outcome = result.as_ref().map(Clone::clone).map_err(|e| format!("{e:#}"));
            let timed_out = result.as_ref().is_err_and(|e| e.downcast_ref::<TutorTimeout>().is_some());
            self.calls.lock().expect("not poisoned").push(Call {
                problem,
                latency: start.elapsed(),
                outcome,
                timed_out,
            });
            result
        })
    }
}

#[derive(Debug, Serialize)]
struct Figures {
    calls: usize,
    latency_ms: Percentiles,
    errors: usize,
    timeouts: usize,
    leaked: usize,
    leaked_share: f64,
    error_examples: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub fn run(ctx: &Context, mut args: StressArgs) -> Result<ExitCode> {
    if let Some(shard) = args.common.shard.shard {
        return Err(BadInput(format!(
            "--shard {shard}: stress-tutor measures tutors under one load; it is not sharded"
        ))
        .into());
    }
    let tutors = args.tutor.build_all()?;
    if tutors.is_empty() {
        return Err(BadInput(
            "stress-tutor needs --tutor CMD or --tutor-url URL (repeat --tutor-url to compare tutors)".into(),
        )
        .into());
    }
    // One output file per tutor: --out itself for one, --out with `.tutorN` before its extension for several.
    let outs: Vec<PathBuf> = (1..=tutors.len())
        .map(|n| if tutors.len() == 1 { args.common.out.clone() } else { numbered(&args.common.out, n) })
        .collect();
    if let Some(existing) = outs.iter().find(|p| p.exists()) {
        return Err(BadInput(format!(
            "{}: already exists; a stress run writes its rows to a new file",
            existing.display()
        ))
        .into());
    }
    // Repeat the input's streams as new students until there are enough.
    let source: Vec<_> = jsonl::read::<crate::trajectory::Submission>(&args.common.input)?;
    let distinct = crate::trajectory::streams(&source.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>()).len().max(1);
    let copies = args.streams.div_ceil(distinct);
    let scratch = tempfile::tempdir()?;
    let input = scratch.path().join("students.jsonl");
    jsonl::write(
        &input,
        (0..copies).flat_map(|c| {
            source.iter().map(move |(_, r)| {
                let mut r = r.clone();
                r.student = format!("{}-{c}", r.student);
                r
            })
        }),
    )?;
    args.common.input = input;
    let (rollout, rows, rt) = prepare(ctx, &args.common)?;
    let students = crate::trajectory::streams(&rows).len();
    // Each tutor gets the same simulated students with the same seed, one tutor after another.
    let mut all = Vec::with_capacity(tutors.len());
    for ((name, tutor), out) in tutors.into_iter().zip(&outs) {
        let (figures, wall) = measure(&rollout, &rows, &rt, tutor, out, &args)?;
        if all.is_empty() || outs.len() == 1 {
            println!("{students} simulated students, {} tutor calls in {:.1} s", figures.calls, wall.as_secs_f64());
        }
        if outs.len() > 1 {
            println!(
                "\ntutor {name} ({} calls in {:.1} s, rows in {})",
                figures.calls,
                wall.as_secs_f64(),
                out.display()
            );
        }
        print_figures(&figures, args.leak_similarity);
        all.push((name, figures));
    }
    if let Some(path) = &args.json {
        jsonl::write_atomically(path, |w| {
            if all.len() == 1 {
                return Ok(serde_json::to_writer_pretty(w, &all[0].1)?);
            }
            let tutors: Vec<_> =
                all.iter().map(|(name, figures)| serde_json::json!({"tutor": name, "figures": figures})).collect();
            Ok(serde_json::to_writer_pretty(w, &serde_json::json!({ "students": students, "tutors": tutors }))?)
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `path` with `.tutorN` before its extension.
fn numbered(path: &std::path::Path, n: usize) -> PathBuf {
    let stem = path.file_stem().map_or_else(|| "stress".into(), |s| s.to_string_lossy().into_owned());
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    path.with_file_name(format!("{stem}.tutor{n}{ext}"))
}

/// Run the simulated students against one tutor; its figures and the wall time.
fn measure(
    rollout: &rollout::Rollout,
    rows: &[crate::trajectory::Submission],
    rt: &tokio::runtime::Runtime,
    tutor: Arc<dyn Tutor>,
    out: &std::path::Path,
    args: &StressArgs,
) -> Result<(Figures, Duration)> {
    let measured = Arc::new(Measured { inner: tutor, calls: Mutex::new(Vec::new()) });
    let options = StreamOptions {
        max_attempts: args.max_attempts,
        interval: SignedDuration::from_secs(60),
        tutor: Some(measured.clone()),
        shown_attempts: None,
    };
    let out = Arc::new(ResumableOutput::open(out)?);
    let bar = progress_of_unknown_length("students");
    let started = Instant::now();
    rt.block_on(rollout::streams(rollout, rows, options, &out, &bar))?;
    bar.finish_and_clear();
    let wall = started.elapsed();

    let calls = std::mem::take(&mut *measured.calls.lock().expect("not poisoned"));
    let mut latencies: Vec<f64> = calls.iter().map(|c| c.latency.as_secs_f64() * 1000.0).collect();
    latencies.sort_by(f64::total_cmp);
    let errors: Vec<&String> = calls.iter().filter_map(|c| c.outcome.as_ref().err()).collect();
    let leaked = calls
        .iter()
        .filter(|c| {
            let Ok(hint) = &c.outcome else { return false };
            let Some(prepared) = rollout.problems.get(&c.problem) else { return false };
            let code = extract_code(hint).map_or_else(|| hint.clone(), |(code, _)| code);
            crate::metrics::similarity(&code, &prepared.problem.solution) >= args.leak_similarity
        })
        .count();
    let ok = calls.len() - errors.len();
    let mut examples: Vec<String> = errors.iter().map(|e| (*e).clone()).collect();
    examples.sort();
    examples.dedup();
    examples.truncate(5);
    let figures = Figures {
        calls: calls.len(),
        latency_ms: Percentiles {
            p50: percentile(&latencies, 0.5),
            p90: percentile(&latencies, 0.9),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or(f64::NAN),
        },
        errors: errors.len(),
        timeouts: calls.iter().filter(|c| c.timed_out).count(),
        leaked,
        leaked_share: if ok == 0 { 0.0 } else { leaked as f64 / ok as f64 },
        error_examples: examples,
    };
    Ok((figures, wall))
}

fn print_figures(figures: &Figures, leak_similarity: f64) {
    let l = &figures.latency_ms;
    println!("latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}", l.p50, l.p90, l.p99, l.max);
    println!("errors: {} ({} timeouts)", figures.errors, figures.timeouts);
    for e in &figures.error_examples {
        println!("  e.g. {}", crate::text::for_terminal(e));
    }
    println!(
        "answer leakage: {} of {} hints ({:.1}%) hold code at least {:.0}% similar to the reference solution",
        figures.leaked,
        figures.calls - figures.errors,
        100.0 * figures.leaked_share,
        100.0 * leak_similarity
    );
}
