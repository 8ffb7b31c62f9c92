//! A grade as a student can act on it: doctest's own report of each failing visible example (`Failed example:`,
//! `Expected:`, `Got:`), a compile error's line and column with the offending line and a caret, the lines of a
//! traceback that are in the student's file, and for hidden examples only how many failed. Lines are returned
//! unescaped; whoever prints them to a terminal escapes each one.

use super::record::submission_frame_line;
use super::{ExampleRecord, GradeRecord, Label, Outcome};

/// The report under a file's result line, indented by four spaces; empty when everything passed.
pub fn student_report(record: &GradeRecord, submission: &str) -> Vec<String> {
    let mut out = Vec::new();
    let message = record.message.as_deref().map(str::trim_end).unwrap_or_default();
    match (record.label, record.line) {
        (Label::Compile, Some(line)) => {
            let column = record.column.map(|c| format!(", column {c}")).unwrap_or_default();
            out.push(format!("    line {line}{column}: {message}"));
            if let Some(code) = submission.lines().nth(line as usize - 1) {
                out.push(format!("        {code}"));
                if let Some(column) = record.column {
                    let before: String =
                        code.chars().take(column as usize - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
                    out.push(format!("        {before}^"));
                }
            }
        }
        (Label::Compile, None) => out.push(format!("    {message}")),
        // only a module-level exception has a line: the examples never ran
        (Label::Runtime, Some(line)) => out.push(format!("    line {line}: {message}")),
        _ => {}
    }
    for example in record.examples.iter().filter(|e| !e.hidden) {
        out.extend(example_report(example, submission));
    }
    let hidden: Vec<_> = record.examples.iter().filter(|e| e.hidden).collect();
    let hidden_failed = hidden.iter().filter(|e| e.outcome != Outcome::Pass).count();
    if hidden_failed > 0 {
        out.push(format!("    {hidden_failed} of {} hidden examples failed", hidden.len()));
    }
    out
}

/// Doctest's report of one visible example that ran and failed (nothing for one that passed or never ran).
pub fn example_report(example: &ExampleRecord, submission: &str) -> Vec<String> {
    if example.hidden || matches!(example.outcome, Outcome::Pass | Outcome::NotRun) {
        return Vec::new();
    }
    let mut out = vec![format!("    Failed example (line {} of the problem):", example.line)];
    out.extend(indented(&example.source));
    out.push("    Expected:".into());
    if example.want.is_empty() {
        out.push("        nothing".into());
    } else {
        out.extend(indented(&example.want));
    }
    match (example.outcome, example.limit) {
        (Outcome::Timeout, _) => out.push("    Time limit exceeded".into()),
        (_, Some(limit)) => out.push(format!("    Stopped by the sandbox's {} limit", limit.name())),
        _ => out.extend(got(&example.got, submission)),
    }
    out
}

fn indented(text: &str) -> impl Iterator<Item = String> + '_ {
    text.trim_end_matches('\n').lines().map(|l| format!("        {l}"))
}

/// What an example printed, and the exception it raised shown by the lines of its traceback that are in the
/// student's code (each with the line itself, from `submission`: the traceback cannot quote a file it never read).
fn got(got: &str, submission: &str) -> Vec<String> {
    let (printed, traceback) = match got.find("Traceback (most recent call last):") {
        Some(at) => (&got[..at], Some(&got[at..])),
        None => (got, None),
    };
    let mut out = Vec::new();
    match (printed.is_empty(), traceback) {
        (true, None) => out.push("    Got nothing".into()),
        (false, _) => {
            out.push("    Got:".into());
            out.extend(indented(printed));
        }
        (true, Some(_)) => {}
    }
    if let Some(traceback) = traceback {
        out.push("    Exception raised:".into());
        let lines: Vec<&str> = traceback.lines().collect();
        for line in &lines {
            if let Some(number) = submission_frame_line(line) {
                let rest = line.trim_start().trim_start_matches("File \"<submission>\", ");
                out.push(format!("        {rest}"));
                if let Some(code) = (number as usize).checked_sub(1).and_then(|n| submission.lines().nth(n)) {
                    out.push(format!("            {}", code.trim()));
                }
            }
        }
        if let Some(last) = lines.iter().rev().find(|l| !l.trim().is_empty()) {
            out.push(format!("        {}", last.trim()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(outcome: Outcome, got: &str) -> ExampleRecord {
        ExampleRecord {
            group: "f".into(),
            line: 4,
            source: "f(2)\n".into(),
            want: "4\n".into(),
            got: got.into(),
            outcome,
            exception: None,
            limit: None,
            hidden: false,
            points: 1.0,
        }
    }

    fn record(label: Label, examples: Vec<ExampleRecord>) -> GradeRecord {
        GradeRecord {
            label,
            reason: None,
            message: None,
            line: None,
            column: None,
            pass_rate: 0.0,
            passed: 0,
            total: examples.len(),
            score: 0.0,
            max_score: examples.len() as f64,
            examples,
        }
    }

    #[test]
    fn a_failing_example_is_reported_as_doctest_does() {
        let report = student_report(&record(Label::Logical, vec![example(Outcome::Fail, "5\n")]), "");
        assert_eq!(
            report,
            [
                "    Failed example (line 4 of the problem):",
                "        f(2)",
                "    Expected:",
                "        4",
                "    Got:",
                "        5"
            ]
        );
    }

    #[test]
    fn an_exception_shows_the_students_lines_only() {
        let traceback = "Traceback (most recent call last):\n  File \"<doctest f>\", line 1, in <module>\n  File \"<submission>\", line 2, in f\nZeroDivisionError: division by zero\n";
        let mut graded = record(Label::Runtime, vec![example(Outcome::Error, traceback)]);
        graded.examples.push(ExampleRecord { hidden: true, source: String::new(), ..example(Outcome::Fail, "") });
        let report = student_report(&graded, "def f(n):\n    return n // 0\n");
        assert_eq!(
            report[4..],
            [
                "    Exception raised:",
                "        line 2, in f",
                "            return n // 0",
                "        ZeroDivisionError: division by zero",
                "    1 of 1 hidden examples failed",
            ]
        );
    }

    #[test]
    fn a_compile_error_points_at_its_line_and_column() {
        let mut graded = record(Label::Compile, vec![]);
        (graded.message, graded.line, graded.column) = (Some("SyntaxError: expected ':'\n".into()), Some(2), Some(14));
        let report = student_report(&graded, "def f(n):\n    if n < 10\n        return n\n");
        assert_eq!(
            report,
            ["    line 2, column 14: SyntaxError: expected ':'", "            if n < 10", "                     ^"]
        );
    }
}
