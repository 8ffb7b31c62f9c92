//! Gradescope: a grade as the autograder specification's `results.json`, and `studentsim gradescope package`, the
//! autograder zip (`setup.sh`, `run_autograder`, this binary, the grader component and the problem) that grades a
//! submission there with no network.

mod glibc;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::Context;
use crate::BadInput;
use crate::grade::{ExampleRecord, GradeRecord, Outcome, report};
use crate::jsonl::write_atomically;
use crate::problems::MANIFEST;
use crate::sandbox::Runtime;

/// `results.json` for one graded submission: one test per example (hidden ones visible `after_published`, their
/// output only an outcome), the whole report as the top-level output.
pub fn results(record: &GradeRecord, submission: &str) -> Value {
    let tests: Vec<Value> = record
        .examples
        .iter()
        .enumerate()
        .map(|(i, example)| {
            let passed = example.outcome == Outcome::Pass;
            json!({
                "name": test_name(example),
                "number": format!("{}", i + 1),
                "score": if passed { example.points } else { 0.0 },
                "max_score": example.points,
                "status": if passed { "passed" } else { "failed" },
                "output": test_output(example, submission),
                "visibility": if example.hidden { "after_published" } else { "visible" },
            })
        })
        .collect();
    let mut output = format!("{} {}/{}", record.label, record.passed, record.total);
    if let Some(reason) = &record.reason {
        output.push_str(&format!(" ({reason})"));
    }
    // what concerns the whole submission (a compile error, a module that raised); each test has its own report
    for line in report::student_report(record, submission).iter().take_while(|l| !l.starts_with("    Failed example")) {
        output.push('\n');
        output.push_str(line);
    }
    json!({
        "score": record.score,
        "output": output,
        "output_format": "text",
        "visibility": "visible",
        "tests": tests,
    })
}

fn test_name(example: &ExampleRecord) -> String {
    if example.hidden {
        format!("{} (hidden), line {}", example.group, example.line)
    } else {
        format!("{}: {}", example.group, example.source.lines().next().unwrap_or_default())
    }
}

fn test_output(example: &ExampleRecord, submission: &str) -> String {
    if example.hidden || example.outcome == Outcome::Pass {
        return format!("{:?}", example.outcome).to_lowercase();
    }
    report::example_report(example, submission)
        .iter()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Subcommand)]
pub enum GradescopeCommand {
    /// Build a Gradescope autograder zip for one problem: `setup.sh`, `run_autograder`, this binary, the grader
    /// component and the problem. On Gradescope the submission's first `.py` file is graded into
    /// `/autograder/results/results.json`; nothing is fetched at grading time.
    #[command(after_help = "Examples:\n  \
        studentsim gradescope package --problem count-vowels --out autograder.zip")]
    Package(PackageArgs),
}

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// The problem the autograder grades.
    #[arg(long, short, value_name = "ID")]
    problem: String,
    /// The zip to write (atomically).
    #[arg(long = "output", short, alias = "out", value_name = "ZIP", default_value = "autograder.zip")]
    out: PathBuf,
    /// The studentsim binary to ship [default: this one]: an x86-64 Linux executable, static or linked against a
    /// glibc no newer than the image's (checked).
    #[arg(long, value_name = "FILE")]
    binary: Option<PathBuf>,
    /// The glibc of the autograder's base image: 2.35 is Ubuntu 22.04, Gradescope's default; 2.39 is Ubuntu 24.04.
    #[arg(long, value_name = "VERSION", default_value = "2.35")]
    glibc: glibc::Glibc,
}

pub fn run(ctx: &Context, cmd: GradescopeCommand) -> Result<ExitCode> {
    let GradescopeCommand::Package(args) = cmd;
    let registry = ctx.registry_naming(&[&args.problem])?;
    let problem = registry.get(&args.problem)?;
    let runtime = Runtime::locate(ctx.runtime.as_deref())?;
    let binary = match &args.binary {
        Some(path) => path.clone(),
        None => std::env::current_exe().context("finding this binary")?,
    };
    let binary_bytes =
        std::fs::read(&binary).map_err(|e| BadInput(format!("{}: cannot read: {e}", binary.display())))?;
    let needs = glibc::needs(&binary_bytes).map_err(|why| BadInput(format!("{}: {why}", binary.display())))?;
    let runs_there = match needs {
        glibc::Needs::Nothing => "static, runs on any x86-64 Linux".to_string(),
        glibc::Needs::Glibc(needed) if needed <= args.glibc => {
            format!("needs glibc {needed}, the image has {}", args.glibc)
        }
        glibc::Needs::Glibc(needed) => {
            return Err(BadInput(format!(
                "{}: needs glibc {needed}, newer than the image's {} (--glibc): build it on an older system or ship a \
                 static (musl) build with --binary",
                binary.display(),
                args.glibc
            ))
            .into());
        }
    };
    let manifest = std::fs::read(registry.dir().join(&problem.id).join(MANIFEST)).context("reading the problem")?;
    let mut files: Vec<(String, Vec<u8>, u32)> = vec![
        ("setup.sh".into(), setup_script(&problem.id).into_bytes(), 0o755),
        ("run_autograder".into(), run_script(&problem.id).into_bytes(), 0o755),
        ("studentsim".into(), binary_bytes, 0o755),
        (format!("problems/{}/{MANIFEST}", problem.id), manifest, 0o644),
    ];
    for (name, path) in runtime.files() {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        files.push((format!("runtime/{name}"), bytes, 0o644));
    }
    write_atomically(&args.out, |out| {
        let mut buffer = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buffer);
        for (name, bytes, mode) in &files {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .unix_permissions(*mode);
            zip.start_file(name.as_str(), options)?;
            zip.write_all(bytes)?;
        }
        zip.finish()?;
        out.write_all(buffer.get_ref())?;
        Ok(())
    })?;
    println!("wrote {} (problem {}; {} files; the binary {runs_there})", args.out.display(), problem.id, files.len());
    Ok(ExitCode::SUCCESS)
}

/// Gradescope runs it once when it builds the image: it compiles the grader for that machine and checks the problem.
fn setup_script(id: &str) -> String {
    format!(
        "#!/usr/bin/env bash\n# Written by `studentsim gradescope package`: runs once when Gradescope builds the image.\nset -euo pipefail\n\
         cd \"${{AUTOGRADER_ROOT:-/autograder}}/source\"\nchmod +x studentsim run_autograder\n\
         ./studentsim --runtime runtime --problems problems problems check {id}\n"
    )
}

/// Gradescope runs it for each submission.
fn run_script(id: &str) -> String {
    format!(
        "#!/usr/bin/env bash\n# Written by `studentsim gradescope package`: grades one submission.\nset -euo pipefail\n\
         root=\"${{AUTOGRADER_ROOT:-/autograder}}\"\n\
         submission=\"$(find \"$root/submission\" -name '*.py' -type f | sort | head -n 1)\"\n\
         mkdir -p \"$root/results\"\n\
         if [[ -z \"$submission\" ]]; then\n  \
         echo '{{\"score\": 0, \"output\": \"No .py file was submitted.\", \"tests\": []}}' > \"$root/results/results.json\"\n  \
         exit 0\nfi\n\
         cd \"$root/source\"\n\
         ./studentsim --runtime runtime --problems problems grade --format gradescope --problem {id} \"$submission\" \\\n  \
         --output \"$root/results/results.json\"\n"
    )
}
