//! `studentsim grade`: files against one problem, or a JSONL batch.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use clap::builder::TypedValueParser as _;
use serde::{Deserialize, Serialize};

use super::output::progress;
use super::shard::{self, Kind, ShardArgs};
use super::{Context, LimitArgs, default_jobs, tokio_runtime};
use crate::grade::batch::grade_many;
use crate::grade::source::{self, Undecodable};
use crate::grade::{GradeRecord, report};
use crate::problems::{Problem, Registry};
use crate::text::for_terminal;
use crate::{BadInput, jsonl};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    studentsim grade --problem sum-digits attempt1.py attempt2.py\n  \
    studentsim grade --input examples/submissions.jsonl --output grades.jsonl --jobs 2\n\n\
    Input rows: {\"id\": ..., \"problem\": ..., \"code\": ...}. Output rows, in input order: {\"id\", \"problem\", \
    \"label\", \"reason\", \"pass_rate\", \"passed\", \"total\", \"examples\": [...]}.")]
pub struct GradeArgs {
    /// The problem the FILEs are submissions to.
    #[arg(long, short, value_name = "ID", required_unless_present = "input")]
    problem: Option<String>,

    /// Python files to grade (one line of output each; `-` is standard input).
    #[arg(value_name = "FILE", required_unless_present = "input", conflicts_with = "input")]
    files: Vec<PathBuf>,

    /// Print one JSON record per file instead of a line (the same as `--format json`).
    #[arg(long, conflicts_with = "format")]
    json: bool,

    /// How FILEs' results are written: a line per file with the report under it, a JSON record per file, or
    /// Gradescope's `results.json` for one FILE (to --output, else standard output).
    #[arg(long, value_enum, default_value_t = Format::Plain)]
    format: Format,

    /// A JSONL file of submissions to grade.
    #[arg(long, value_name = "JSONL", requires = "output", conflicts_with = "problem")]
    input: Option<PathBuf>,

    /// Where to write the results of --input (written atomically; with --shard, this shard's rows), or the
    /// results.json of `--format gradescope`.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Submissions graded in parallel [default: number of cores].
    #[arg(long, short, value_name = "N", default_value_t = default_jobs(), hide_default_value = true, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    jobs: usize,

    /// One line per file, without the report of what failed under it.
    #[arg(long, conflicts_with_all = ["json", "format"])]
    terse: bool,

    /// Keep hidden examples' code, expected output and what they printed in the output (course staff grading for
    /// themselves). Without it a hidden example shows only its group, line, outcome and points.
    #[arg(long)]
    reveal_hidden: bool,

    #[command(flatten)]
    limits: LimitArgs,

    #[command(flatten)]
    shard: ShardArgs,
}

impl GradeArgs {
    fn grader(&self, ctx: &Context) -> Result<std::sync::Arc<crate::grade::Grader>> {
        let limits =
            crate::grade::GradeLimits { reveal_hidden: self.reveal_hidden, ..self.limits.to_limits(self.jobs)? };
        ctx.grader_with(limits)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Plain,
    Json,
    /// Gradescope's autograder `results.json`.
    Gradescope,
}

pub fn run(ctx: &Context, args: GradeArgs) -> Result<ExitCode> {
    if args.input.is_none() && args.output.is_some() && args.format != Format::Gradescope {
        return Err(BadInput("--output with FILEs is for --format gradescope; other formats print".into()).into());
    }
    if args.format == Format::Gradescope && args.files.len() != 1 {
        return Err(
            BadInput(format!("--format gradescope grades one FILE (a submission), not {}", args.files.len())).into()
        );
    }
    let named: Vec<&str> = args.problem.iter().map(String::as_str).collect();
    let registry = ctx.registry_naming(&named)?;
    match (&args.input, &args.output) {
        (Some(input), Some(output)) => grade_jsonl(ctx, &registry, &args, input, output),
        _ => grade_files(ctx, &registry, &args),
    }
}

fn grade_files(ctx: &Context, registry: &Registry, args: &GradeArgs) -> Result<ExitCode> {
    if args.shard.shard.is_some() {
        return Err(BadInput("--shard shares the rows of --input; it does not apply to FILEs".into()).into());
    }
    let id = args.problem.as_deref().expect("clap requires --problem without --input");
    let problem = registry.get(id)?;
    let inputs: Vec<FileInput> = args.files.iter().map(|f| FileInput::read(f)).collect();
    let grader = args.grader(ctx)?;
    let rt = tokio_runtime(args.jobs)?;
    let tests = rt.block_on(grader.tests_for(problem))?;
    let codes: Vec<(&Problem, String)> = inputs
        .iter()
        .filter_map(|input| match input {
            FileInput::Code(code) => Some((problem, code.clone())),
            _ => None,
        })
        .collect();
    let bar = progress(codes.len(), "grading");
    let mut graded = rt.block_on(grade_many(&grader, codes, args.jobs, &bar))?.into_iter();
    bar.finish_and_clear();
    // Each FILE's record and the code it was graded as, or why it could not be read.
    let results: Vec<Result<(GradeRecord, String), String>> = inputs
        .into_iter()
        .map(|input| match input {
            FileInput::Code(code) => Ok((graded.next().expect("one grade per readable file").record, code)),
            FileInput::NotSource(error) => Ok((GradeRecord::undecodable(&tests, &error), String::new())),
            FileInput::Unreadable(why) => Err(why),
        })
        .collect();
    if args.format == Format::Gradescope {
        let (record, code) = results
            .into_iter()
            .next()
            .expect("one FILE")
            .map_err(|why| BadInput(format!("{}: cannot read ({why})", args.files[0].display())))?;
        let results = super::gradescope::results(&record, &code);
        match &args.output {
            Some(path) => jsonl::write_atomically(path, |out| Ok(serde_json::to_writer_pretty(out, &results)?))?,
            None => println!("{}", serde_json::to_string_pretty(&results)?),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let json = args.json || args.format == Format::Json;
    let mut out = std::io::stdout().lock();
    let mut unreadable = 0;
    for (file, result) in args.files.iter().zip(results) {
        let (record, code) = match result {
            Ok(graded) => graded,
            Err(why) => {
                unreadable += 1;
                if json {
                    let row = serde_json::json!({"file": file, "problem": id, "error": format!("cannot read: {why}")});
                    writeln!(out, "{row}")?;
                } else {
                    writeln!(out, "{}: cannot read ({})", for_terminal(&jsonl::shown(file)), for_terminal(&why))?;
                }
                continue;
            }
        };
        if json {
            #[derive(Serialize)]
            struct FileRecord<'a> {
                file: &'a Path,
                problem: &'a str,
                #[serde(flatten)]
                record: &'a GradeRecord,
            }
            serde_json::to_writer(&mut out, &FileRecord { file, problem: id, record: &record })?;
            writeln!(out)?;
        } else {
            // The reason is an exception class name the submission chose, and a file name may hold anything:
            // neither may start a line of its own or move the cursor.
            let reason = record.reason.as_deref().map(|r| format!(" ({})", for_terminal(r))).unwrap_or_default();
            let file = for_terminal(&jsonl::shown(file));
            let scoring = scoring_summary(&record, tests.hidden());
            writeln!(out, "{file}: {} {}/{}{reason}{scoring}", record.label, record.passed, record.total)?;
            if !args.terse {
                for line in report::student_report(&record, &code) {
                    writeln!(out, "{}", for_terminal(&line))?;
                }
            }
        }
    }
    if unreadable > 0 {
        // Every other file was graded and printed; the exit status still says that some were not.
        eprintln!("error: {unreadable} of {} files could not be read (see their lines above)", args.files.len());
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// What a plain line adds for a problem with hidden examples or its own points: `; hidden 1/2; score 4.5/6`.
fn scoring_summary(record: &GradeRecord, hidden: usize) -> String {
    let mut summary = String::new();
    if hidden > 0 {
        let passed = record.examples.iter().filter(|e| e.hidden && e.outcome == crate::grade::Outcome::Pass).count();
        summary.push_str(&format!("; hidden {passed}/{hidden}"));
    }
    if hidden > 0 || record.max_score != record.total as f64 {
        summary.push_str(&format!("; score {}/{}", record.score, record.max_score));
    }
    summary
}

/// One FILE as `grade` finds it: source to grade, bytes CPython would not decode (a `compile` result made on the
/// host), or a file that could not be read at all.
enum FileInput {
    Code(String),
    NotSource(Undecodable),
    Unreadable(String),
}

impl FileInput {
    /// `-` is standard input.
    fn read(path: &Path) -> Self {
        match jsonl::read_raw(path) {
            Err(e) => Self::Unreadable(e.to_string()),
            Ok(bytes) => match source::decode(&bytes, &jsonl::shown(path)) {
                Ok(code) => Self::Code(code),
                Err(error) => Self::NotSource(error),
            },
        }
    }
}

/// One row of a submissions file.
#[derive(Debug, Deserialize)]
struct SubmissionRow {
    id: serde_json::Value,
    problem: String,
    code: String,
    /// The row's other fields, written back beside the grade (but for those the grade itself writes).
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

/// The fields a result row's grade writes.
const GRADE_FIELDS: [&str; 11] =
    ["label", "reason", "message", "line", "column", "pass_rate", "passed", "total", "score", "max_score", "examples"];

#[derive(Serialize)]
struct ResultRow<'a> {
    id: &'a serde_json::Value,
    problem: &'a str,
    #[serde(flatten)]
    extra: &'a serde_json::Map<String, serde_json::Value>,
    #[serde(flatten)]
    record: &'a GradeRecord,
}

fn grade_jsonl(ctx: &Context, registry: &Registry, args: &GradeArgs, input: &Path, output: &Path) -> Result<ExitCode> {
    let all_rows = read_submissions(input, registry)?;
    // A shard grades every N-th row; its manifest says which, so merge can put them back in input order.
    let positions: Vec<usize> = (0..all_rows.len()).filter(|&i| args.shard.shard.is_none_or(|s| s.owns(i))).collect();
    let rows: Vec<&SubmissionRow> = positions.iter().map(|&i| &all_rows[i]).collect();
    let manifest = args
        .shard
        .manifest(Kind::Grade, &[input], &(&ctx.problems, &args.limits))?
        .map(|m| shard::Manifest { positions: positions.clone(), input_rows: all_rows.len(), ..m });
    let grader = args.grader(ctx)?;
    let rt = tokio_runtime(args.jobs)?;
    let items = rows.iter().map(|row| Ok((registry.get(&row.problem)?, row.code.clone()))).collect::<Result<_>>()?;
    let bar = progress(rows.len(), "grading");
    let records: Vec<GradeRecord> =
        rt.block_on(grade_many(&grader, items, args.jobs, &bar))?.into_iter().map(|g| g.record).collect();
    bar.finish_and_clear();
    let results = rows.iter().zip(&records).map(|(row, record)| ResultRow {
        id: &row.id,
        problem: &row.problem,
        extra: &row.extra,
        record,
    });
    shard::write_output(output, manifest, |out| jsonl::write_rows(out, results))?;
    let mut counts = std::collections::BTreeMap::new();
    for record in &records {
        *counts.entry(record.label.as_str()).or_insert(0) += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(label, n)| format!("{label} {n}")).collect();
    let of = args.shard.shard.map(|s| format!(" (shard {s} of {} rows)", all_rows.len())).unwrap_or_default();
    eprintln!("graded {} submissions{of} ({}) -> {}", records.len(), summary.join(", "), output.display());
    Ok(ExitCode::SUCCESS)
}

/// Read and validate every row before anything runs: any problem stops the command with its line number.
fn read_submissions(path: &Path, registry: &Registry) -> Result<Vec<SubmissionRow>, BadInput> {
    let mut rows = Vec::new();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    for (line, row) in jsonl::read::<SubmissionRow>(path)? {
        let at = |what: String| BadInput(format!("{}:{line}: {what}", path.display()));
        let key = match &row.id {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            other => return Err(at(format!("`id` must be a string or a number, not {other}"))),
        };
        if let Some(first) = first_line_of.insert(key.clone(), line) {
            return Err(at(format!("duplicate id {key} (first on line {first})")));
        }
        registry.get(&row.problem).map_err(|e| at(e.0))?;
        let mut row = row;
        row.extra.retain(|name, _| !GRADE_FIELDS.contains(&name.as_str()));
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::GRADE_FIELDS;
    use crate::grade::{GradeRecord, Label};

    #[test]
    fn grade_fields_are_what_a_grade_record_writes() {
        let record = GradeRecord {
            label: Label::Compile,
            reason: Some("SyntaxError".into()),
            message: Some("invalid syntax".into()),
            line: Some(1),
            column: Some(2),
            pass_rate: 0.0,
            passed: 0,
            total: 0,
            score: 0.0,
            max_score: 0.0,
            examples: vec![],
        };
        let written = serde_json::to_value(&record).unwrap();
        let keys: Vec<&str> = written.as_object().unwrap().keys().map(String::as_str).collect();
        let mut fields = GRADE_FIELDS.to_vec();
        fields.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, fields, "GRADE_FIELDS must name every field a full GradeRecord writes");
    }
}
