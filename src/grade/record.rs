//! Grade records: what one submission got, per example and overall.

use serde::{Deserialize, Serialize};

use super::bindings::{Ending, Example};
use super::checker::{check_output, expected_exception_type};
use super::literal;
use super::source::Undecodable;
use super::{Compare, Label, ModuleFailure, Tests};
use crate::sandbox::{Fault, Limit, Output};
use crate::text::{cut, cut_str};

// Every text a record carries is bounded (with a visible marker where it was cut), so a record's size never grows
// with what a submission prints or raises. What reaches the host is bounded before that: the sandbox's output cap
// per stream, and its cut of every text the guest hands over (`TEXT_KEPT`, read in place in the guest's memory).

/// The longest `got` kept in an example record.
pub const GOT_LIMIT: usize = 2048;
/// The longest compile error or module-level exception message kept in a grade record.
pub const TEXT_LIMIT: usize = 2048;
/// The longest exception class name kept (an example's `exception`, a record's `reason`).
pub const NAME_LIMIT: usize = 128;
/// The longest example `source` and `want` kept: the problem's own text, bounded all the same.
const EXAMPLE_LIMIT: usize = 4096;

/// The class names of CPython 3.14's built-in exceptions, the only ones a concealed hidden example names: one of
/// these tells a student no more than a few bits, as the outcome does.
#[rustfmt::skip]
const BUILTIN_EXCEPTIONS: &[&str] = &[
    "ArithmeticError", "AssertionError", "AttributeError", "BaseException", "BaseExceptionGroup", "BlockingIOError",
    "BrokenPipeError", "BufferError", "BytesWarning", "ChildProcessError", "ConnectionAbortedError", "ConnectionError",
    "ConnectionRefusedError", "ConnectionResetError", "DeprecationWarning", "EOFError", "EncodingWarning", "Exception",
    "ExceptionGroup", "FileExistsError", "FileNotFoundError", "FloatingPointError", "FutureWarning", "GeneratorExit",
    "ImportError", "ImportWarning", "IndentationError", "IndexError", "InterruptedError", "IsADirectoryError",
    "KeyError", "KeyboardInterrupt", "LookupError", "MemoryError", "ModuleNotFoundError", "NameError",
    "NotADirectoryError", "NotImplementedError", "OSError", "OverflowError", "PendingDeprecationWarning",
    "PermissionError", "ProcessLookupError", "PythonFinalizationError", "RecursionError", "ReferenceError",
    "ResourceWarning", "RuntimeError", "RuntimeWarning", "StopAsyncIteration", "StopIteration", "SyntaxError",
    "SyntaxWarning", "SystemError", "SystemExit", "TabError", "TimeoutError", "TypeError", "UnboundLocalError",
    "UnicodeDecodeError", "UnicodeEncodeError", "UnicodeError", "UnicodeTranslateError", "UnicodeWarning",
    "UserWarning", "ValueError", "Warning", "ZeroDivisionError",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    /// Ran, printed the wrong thing (or raised the expected exception type with another message).
    Fail,
    /// Raised an exception it should not have, or hit a memory, output or other sandbox limit.
    Error,
    Timeout,
    /// Never ran: the module did not load, or the submission's time ran out first.
    NotRun,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExampleRecord {
    /// The docstring the example comes from (`<module>`, `f`, `Class.method`).
    pub group: String,
    /// 1-based line of the example in the problem's code.
    pub line: u32,
    pub source: String,
    pub want: String,
    /// What it printed, then the traceback if it raised; cut at 2 KiB.
    pub got: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    /// A sandbox limit that stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// A hidden example: unless course staff asked to see it, its `source`, `want` and `got` are empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// What passing it is worth (its group's points shared by the group's examples).
    #[serde(default = "one_point", skip_serializing_if = "is_one_point")]
    pub points: f64,
}

fn one_point() -> f64 {
    1.0
}

fn is_one_point(points: &f64) -> bool {
    *points == 1.0
}

impl ExampleRecord {
    pub(super) fn not_run(group: &str, line: u32, source: &str, want: &str) -> Self {
        Self {
            group: group.to_owned(),
            line,
            source: cut_str(source, EXAMPLE_LIMIT),
            want: cut_str(want, EXAMPLE_LIMIT),
            got: String::new(),
            outcome: Outcome::NotRun,
            exception: None,
            limit: None,
            hidden: false,
            points: 1.0,
        }
    }

    pub(super) fn scored(self, hidden: bool, points: f64) -> Self {
        Self { hidden, points, ..self }
    }

    /// A hidden example as anyone but course staff may see it: where it is, its outcome, the limit and the
    /// built-in exception class that decided it, but not its code, its expected output or what it printed. A
    /// class of the submission's own shows as `Exception`: the submission names it, and could spell out the hidden
    /// code it read off the stack in that name.
    pub(super) fn conceal_if_hidden(&mut self) {
        if self.hidden {
            (self.source, self.want, self.got) = (String::new(), String::new(), String::new());
            if self.exception.as_deref().is_some_and(|name| !BUILTIN_EXCEPTIONS.contains(&name)) {
                self.exception = Some("Exception".into());
            }
        }
    }

    /// Decide the outcome from what the guest raised and wrote (its stdout: everything printed; its stderr:
    /// the display hook's reprs alone), as doctest's runner does.
    pub(super) fn judge(&mut self, example: &Example, compare: Compare, ending: Ending, mut output: Output) {
        let exception = (ending == Ending::Raised).then(|| Raised::reported(&mut output));
        let written = match compare {
            Compare::Output => &output.stdout,
            Compare::Value => &output.stderr,
        };
        // Invalid UTF-8 (a lone surrogate the harness passed through) becomes U+FFFD, which no expected output holds.
        let got = String::from_utf8_lossy(written).into_owned();
        self.outcome = match (&exception, example.exc_msg.as_deref()) {
            _ if output.over => {
                self.limit = Some(Limit::Output);
                Outcome::Error
            }
            (None, _) if check_output(&example.want, &got) => Outcome::Pass,
            // A value whose repr differs from the expected one but equals it as Python compares values.
            (None, _) if compare == Compare::Value && literal::equal(&example.want, &got) => Outcome::Pass,
            (None, _) => Outcome::Fail,
            (Some(_), None) => Outcome::Error,
            (Some(raised), Some(expected)) if check_output(expected, &raised.message) => Outcome::Pass,
            // The expected exception class with another message is a wrong answer; another class is a crash.
            (Some(raised), Some(expected)) if expected_exception_type(expected) == raised.type_name => Outcome::Fail,
            (Some(_), Some(_)) => Outcome::Error,
        };
        let mut got = got;
        if let Some(Raised { type_name, traceback, .. }) = exception {
            got.push_str(&traceback);
            self.exception = Some(cut(type_name, NAME_LIMIT));
        }
        self.got = cut(got, GOT_LIMIT);
    }

    /// A limit stopped the example; `got` keeps what it printed before that, unless a clock stopped it (how much
    /// a guest prints before a deadline varies from run to run, and records must repeat to the byte).
    pub(super) fn fault(&mut self, fault: &Fault, output: &Output) {
        self.outcome = if matches!(fault, Fault::Timeout | Fault::Fuel) { Outcome::Timeout } else { Outcome::Error };
        self.limit = Some(fault.limit());
        if !matches!(fault, Fault::Timeout | Fault::Cancelled) {
            self.got = cut(String::from_utf8_lossy(&output.stdout).into_owned(), GOT_LIMIT);
        }
    }

    /// The sub-reason this example gives a `runtime` label.
    fn runtime_reason(&self) -> Option<String> {
        match self.outcome {
            Outcome::Timeout | Outcome::Error => Some(match self.limit {
                Some(limit) => limit.name().to_owned(),
                None => reason_for_exception(self.exception.as_deref().unwrap_or("error")),
            }),
            _ => None,
        }
    }
}

/// An exception as the harness reported it through the sandbox's text slots (class name, message, traceback),
/// each already bounded there.
#[derive(Debug, Default)]
pub(super) struct Raised {
    pub type_name: String,
    /// What doctest compares against an expected exception: `format_exception_only`, SyntaxError carets dropped.
    pub message: String,
    /// The full traceback text, as doctest shows it in a failure report.
    pub traceback: String,
}

impl Raised {
    /// The exception the guest reported during the call that wrote `output` (empty texts where it sent none).
    pub(super) fn reported(output: &mut Output) -> Self {
        let mut text = |slot: usize| output.texts[slot].take().unwrap_or_default();
        Self { type_name: text(0), message: text(1), traceback: text(2) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeRecord {
    pub label: Label,
    /// Why: the exception type, or the name of the [`Limit`] that stopped it.
    #[serde(default)]
    pub reason: Option<String>,
    /// What went wrong, for every label but `logical` and `no_error`: the compile error, the module-level
    /// exception, or the first visible example's exception (`Type: message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where in the submission: a compile error's line and column, or the line a module-level exception was
    /// raised from (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    pub pass_rate: f64,
    pub passed: usize,
    pub total: usize,
    /// The points of the examples it passed, out of `max_score` (every example's points; 1 each by default).
    #[serde(default)]
    pub score: f64,
    #[serde(default)]
    pub max_score: f64,
    pub examples: Vec<ExampleRecord>,
}

impl GradeRecord {
    /// The record of a grade; `submission` is the code as graded (a compile error's column is counted in it).
    pub(super) fn summarize(
        module_failure: Option<ModuleFailure>,
        submission: &str,
        examples: Vec<ExampleRecord>,
    ) -> Self {
        let total = examples.len();
        let passed = examples.iter().filter(|e| e.outcome == Outcome::Pass).count();
        let (mut line, mut column) = (None, None);
        let (label, reason, message) = match module_failure {
            Some(ModuleFailure::Compile(raised)) => {
                if let Some((at, col)) = syntax_error_location(&raised.traceback, submission) {
                    (line, column) = (Some(at), col);
                }
                (Label::Compile, Some(cut(raised.type_name, NAME_LIMIT)), Some(cut(raised.message, TEXT_LIMIT)))
            }
            Some(ModuleFailure::Raised(raised)) => {
                line = last_submission_line(&raised.traceback);
                (
                    Label::Runtime,
                    Some(cut(reason_for_exception(&raised.type_name), NAME_LIMIT)),
                    Some(cut(raised.message, TEXT_LIMIT)),
                )
            }
            Some(ModuleFailure::Fault(fault)) => (Label::Runtime, Some(fault.limit().name().to_owned()), None),
            None => match examples.iter().find_map(ExampleRecord::runtime_reason) {
                Some(reason) => (Label::Runtime, Some(reason), first_example_error(&examples)),
                None if passed < total => (Label::Logical, None, None),
                None => (Label::NoError, None, None),
            },
        };
        let pass_rate = if total == 0 { 0.0 } else { passed as f64 / total as f64 };
        // `+ 0.0`: an empty float sum is -0.0, which JSON would show as `-0.0`
        let score = examples.iter().filter(|e| e.outcome == Outcome::Pass).map(|e| e.points).sum::<f64>() + 0.0;
        let max_score = examples.iter().map(|e| e.points).sum::<f64>() + 0.0;
        Self { label, reason, message, line, column, pass_rate, passed, total, score, max_score, examples }
    }
}

impl GradeRecord {
    /// A file CPython would not decode as source ([`super::source::decode`]): `compile` with CPython's
    /// `SyntaxError`, every example not run. Nothing reaches the sandbox.
    pub fn undecodable(tests: &Tests, error: &Undecodable) -> Self {
        let raised = Raised {
            type_name: "SyntaxError".into(),
            message: format!("SyntaxError: {}\n", error.message),
            traceback: String::new(),
        };
        let mut record = Self::summarize(Some(ModuleFailure::Compile(raised)), "", tests.not_run());
        record.line = Some(error.line);
        record
    }
}

/// What a runtime label's first erroring example raised, as its traceback's last line says (`Type: message`), or
/// the limit that stopped it; a hidden example's only by its class.
fn first_example_error(examples: &[ExampleRecord]) -> Option<String> {
    let example = examples.iter().find(|e| matches!(e.outcome, Outcome::Error | Outcome::Timeout))?;
    Some(match (example.limit, &example.exception) {
        (Some(limit), _) => format!("{} (line {} of the problem)", limit.name(), example.line),
        (None, Some(type_name)) if example.hidden => format!("a hidden example raised {type_name}"),
        (None, _) => cut_str(example.got.trim_end().lines().last().unwrap_or_default(), TEXT_LIMIT),
    })
}

/// The line and column (1-based, in `submission`) of a compile error, from CPython's own report of it:
/// `File "<submission>", line N`, the offending line stripped of its indentation, and a caret line under it.
fn syntax_error_location(traceback: &str, submission: &str) -> Option<(u32, Option<u32>)> {
    let lines: Vec<&str> = traceback.lines().collect();
    let (at, line) = lines.iter().enumerate().rev().find_map(|(i, l)| submission_frame_line(l).map(|n| (i, n)))?;
    let caret = lines.get(at + 2).filter(|l| l.trim_start().starts_with('^'))?;
    // CPython prints the stripped line and its carets after four spaces
    let caret_at = caret.find('^')?.checked_sub(4)?;
    let indent =
        submission.lines().nth(line as usize - 1).map_or(0, |l| l.chars().take_while(|c| c.is_whitespace()).count());
    Some((line, u32::try_from(indent + caret_at + 1).ok()))
}

/// The last line of the submission a traceback passes through.
fn last_submission_line(traceback: &str) -> Option<u32> {
    traceback.lines().rev().find_map(submission_frame_line)
}

/// The line number of a traceback line that is a frame in the submission: `File "<submission>", line N, ...`.
pub(super) fn submission_frame_line(traceback_line: &str) -> Option<u32> {
    let rest = traceback_line.trim_start().strip_prefix("File \"<submission>\", line ")?;
    rest.split(',').next()?.trim().parse().ok()
}

fn reason_for_exception(type_name: &str) -> String {
    match type_name {
        "MemoryError" => Limit::Memory.name().to_owned(),
        other => other.into(),
    }
}
