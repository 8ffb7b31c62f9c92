//! `studentsim demo`: the whole loop on one dataset, through the same subcommands a user would run: split the
//! streams, roll out next steps and autoregressive streams with the edit model, the retrieval simulator and the
//! copy-last baseline (every attempt graded in the sandbox), score them against the held-out students, write the report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::Args;

use super::{Context, utf8};
use crate::BadInput;

#[derive(Debug, Args)]
#[command(after_help = "Without --data it uses the bundled problems and examples/trajectories.jsonl (illustrative \
    streams written by us, not real students). With --data DIR it uses DIR/problems and DIR/trajectories.jsonl, \
    the layout `studentsim import newcaledonia DIR` writes.")]
pub struct DemoArgs {
    /// A folder with problems/ and trajectories.jsonl (e.g. the output of `import newcaledonia`).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Where the report goes (intermediate rows in its work/ folder, replaced on every run).
    #[arg(long, value_name = "DIR", default_value = "studentsim-demo")]
    out: PathBuf,
    /// Share of students held out as the test set.
    #[arg(long, value_name = "SHARE", default_value_t = 0.34)]
    test_students: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// One step of the demo: a command line of studentsim itself.
fn step(what: &str, args: &[&str]) -> Result<()> {
    eprintln!("demo: {what}");
    super::run_own(args).with_context(|| format!("demo: {what}"))
}

pub fn run(ctx: &Context, args: DemoArgs) -> Result<ExitCode> {
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (problems, rows) = match &args.data {
        Some(dir) => (dir.join("problems"), dir.join("trajectories.jsonl")),
        None if ctx.problems != Path::new("problems") => {
            (ctx.problems.clone(), bundled.join("examples/trajectories.jsonl"))
        }
        None => (bundled.join("problems"), bundled.join("examples/trajectories.jsonl")),
    };
    for needed in [&problems, &rows] {
        if !needed.exists() {
            return Err(BadInput(format!(
                "{}: not found (--data needs problems/ and trajectories.jsonl)",
                needed.display()
            ))
            .into());
        }
    }
    let started = Instant::now();
    let work = args.out.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    let (problems, rows, work_s, out) = (utf8(&problems)?, utf8(&rows)?, utf8(&work)?, utf8(&args.out)?);
    let split = format!("{work_s}/split");
    let (seed, share) = (args.seed.to_string(), args.test_students.to_string());
    step(
        "splitting by held-out students",
        &["split", "--input", &rows, "--out", &split, "--seed", &seed, "--test-students", &share],
    )?;
    let (train, test) = (format!("{split}/train.jsonl"), format!("{split}/ns_op.jsonl"));
    let runtime: Vec<String> =
        ctx.runtime.iter().flat_map(|r| ["--runtime".to_owned(), r.display().to_string()]).collect();
    let runtime: Vec<&str> = runtime.iter().map(String::as_str).collect();
    let mut sims = Vec::new();
    let generators = ["edits", "retrieval", "copy-last"];
    for (mode, generator) in ["next-step", "stream"].into_iter().flat_map(|m| generators.map(|g| (m, g))) {
        let file = format!("{work_s}/{mode}-{generator}.jsonl");
        let common = [
            "--problems",
            &problems,
            "rollout",
            mode,
            "--input",
            &test,
            "--train",
            &train,
            "--generator",
            generator,
            "--seed",
            &seed,
            "--out",
            &file,
        ];
        step(&format!("{mode} rollout with {generator}"), &[&common[..], &runtime[..]].concat())?;
        sims.push(format!("{generator} ({mode})={file}"));
    }
    let mut score = vec!["--problems", &problems, "score", "--real", &test, "--out", &out];
    for sim in &sims {
        score.extend(["--sim", sim.as_str()]);
    }
    score.extend(&runtime);
    step("scoring against the held-out students", &score)?;
    eprintln!(
        "demo: done in {:.1} s; report in {} (and report.md beside it)",
        started.elapsed().as_secs_f64(),
        args.out.join("report.html").display()
    );
    Ok(ExitCode::SUCCESS)
}
