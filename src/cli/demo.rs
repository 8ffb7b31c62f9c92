//! `studentsim demo`: the whole loop on one dataset, through the same subcommands a user would run: split the
//! streams, roll out next steps and autoregressive streams with the edit model, the retrieval simulator and the
//! copy-last baseline (every attempt graded in the sandbox), score them against the held-out students, write the report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum as _};

use super::generators::{GeneratorArgs, GeneratorName};
use super::rollout::{CommonArgs, Mode, TutorArgs, execute};
use super::score::{ScoreSettings, SimArg, write_report};
use super::trajectories::split_into;
use super::{Context, dataset, default_jobs};
use crate::BadInput;
use crate::trajectory::split::SplitSpec;

#[derive(Debug, Args)]
#[command(after_help = "Without --data it uses the bundled problems and examples/trajectories.jsonl (illustrative \
    streams written by us, not real students). With --data DIR it uses DIR/problems and DIR/trajectories.jsonl, \
    the layout `studentsim import newcaledonia DIR` writes.\n\nExamples:\n  studentsim demo\n  studentsim demo --data nc --output nc-demo")]
pub struct DemoArgs {
    /// A folder with problems/ and trajectories.jsonl (e.g. the output of `import newcaledonia`).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Where the report goes (intermediate rows in its work/ folder, replaced on every run).
    #[arg(long = "output", short, alias = "out", value_name = "DIR", default_value = "studentsim-demo")]
    out: PathBuf,
    /// Share of students held out as the test set.
    #[arg(long, value_name = "SHARE", default_value_t = 0.34)]
    test_students: f64,
    /// Seeds the split and the simulated students.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Say which step of the demo runs, run it, and name the step in its error.
fn step(what: &str, run: impl FnOnce() -> Result<()>) -> Result<()> {
    eprintln!("demo: {what}");
    run().with_context(|| format!("demo: {what}"))
}

pub fn run(ctx: &Context, args: DemoArgs) -> Result<ExitCode> {
    // `--problems DIR` without `--data` grades the bundled streams against the user's own copy of the problems.
    let (problems, rows) = match &args.data {
        None if ctx.problems != Path::new("problems") => {
            if !ctx.problems.is_dir() {
                return Err(
                    BadInput(format!("{}: not found (--problems needs a folder)", ctx.problems.display())).into()
                );
            }
            (ctx.problems.clone(), dataset(None)?.1)
        }
        data => dataset(data.as_deref())?,
    };
    let started = Instant::now();
    let work = args.out.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    let ctx = ctx.with_problems(problems);
    let split = work.join("split");
    let spec = SplitSpec { seed: args.seed, test_students: args.test_students, ..SplitSpec::default() };
    step("splitting by held-out students", || split_into(&rows, &split, &spec))?;
    let (train, test) = (split.join("train.jsonl"), split.join("ns_op.jsonl"));
    let mut sims = Vec::new();
    let modes = [
        ("next-step", Mode::next_step(Mode::K)),
        ("stream", Mode::stream(Mode::MAX_ATTEMPTS, None, TutorArgs::default())),
    ];
    for (mode_name, mode) in &modes {
        for generator in [GeneratorName::Edits, GeneratorName::Retrieval, GeneratorName::CopyLast] {
            let name = generator.to_possible_value().expect("not hidden").get_name().to_owned();
            let file = work.join(format!("{mode_name}-{name}.jsonl"));
            let generator =
                GeneratorArgs { generator: Some(generator), train: Some(train.clone()), ..GeneratorArgs::default() };
            let rollout = CommonArgs::new(test.clone(), file.clone(), generator, args.seed, default_jobs());
            step(&format!("{mode_name} rollout with {name}"), || execute(&ctx, &rollout, mode))?;
            sims.push(SimArg { name: Some(format!("{name} ({mode_name})")), path: file });
        }
    }
    let score = ScoreSettings::new(&ctx, test, sims);
    step("scoring against the held-out students", || write_report(&score, &args.out, default_jobs()).map(drop))?;
    eprintln!(
        "demo: done in {:.1} s; report in {} (and report.md beside it)",
        started.elapsed().as_secs_f64(),
        args.out.join("report.html").display()
    );
    Ok(ExitCode::SUCCESS)
}
