//! Generators: anything that writes a student's next attempt, behind one trait.
//!
//! A [`Request`] says what to write: the problem, the student's earlier attempts at it (each with the feedback
//! it got, in autoregressive streams), optional student context (the same student's code on an earlier
//! problem), and the target (a stage of Experiment 1, or the next attempt). Generators are seeded: the same
//! request and seed give the same attempts.

pub mod baseline;
pub mod edits;
pub mod openai;
pub mod prompt;
pub mod qwen;
pub mod real_feedback;
pub mod reply;
pub mod retrieval;
pub mod sft;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::grade::{ExampleRecord, GradeRecord, Outcome};
use crate::problems::Problem;
use crate::trajectory::views::Stage;
use anyhow::Result;

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Experiment 1: the student's first, middle or last submission.
    Stage(Stage),
    /// Experiment 2 and streams: the attempt after `Request::history`.
    Next,
}

/// One earlier attempt of the student at this problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub code: String,
    /// What the student was told after it (autoregressive streams only).
    pub feedback: Option<Feedback>,
}

/// The grader's outcome of an attempt, as shown to the student, and a tutor's hint if there was one.
pub use crate::records::{FailingExample, Feedback};

/// Failing examples shown per attempt, and characters kept of each expected and actual output.
const SHOWN_EXAMPLES: usize = 3;
const SHOWN_CHARS: usize = 300;

/// `text` as a prompt shows it: cut at [`SHOWN_CHARS`] characters, with `...` when cut.
pub fn shown(text: &str) -> String {
    let mut t: String = text.chars().take(SHOWN_CHARS).collect();
    if t.len() < text.len() {
        t.push_str("...");
    }
    t
}

/// The failing examples of `record` a student is shown: the first [`SHOWN_EXAMPLES`] visible ones that ran and
/// failed (a hidden example is never shown).
fn shown_failures(record: &GradeRecord) -> impl Iterator<Item = &ExampleRecord> {
    record
        .examples
        .iter()
        .filter(|e| !e.hidden && matches!(e.outcome, Outcome::Fail | Outcome::Error | Outcome::Timeout))
        .take(SHOWN_EXAMPLES)
}

/// Whether `next` passes at least one of the failing examples a student was shown of `previous` (did the next
/// attempt act on its feedback?); `None` when `previous` showed none (it passed, or failed before any example
/// ran).
pub fn fixes_shown(previous: &GradeRecord, next: &GradeRecord) -> Option<bool> {
    let shown: Vec<(&str, u32)> = shown_failures(previous).map(|e| (e.group.as_str(), e.line)).collect();
    if shown.is_empty() {
        return None;
    }
    Some(next.examples.iter().any(|e| e.outcome == Outcome::Pass && shown.contains(&(e.group.as_str(), e.line))))
}

impl Feedback {
    /// What a student is shown of `record`: its label, message, and its first few failing examples.
    pub fn from_record(record: &GradeRecord) -> Self {
        let failing = shown_failures(record)
            .map(|e| FailingExample {
                source: shown(&e.source),
                want: shown(&e.want),
                got: if e.outcome == Outcome::Timeout { "(time limit exceeded)".into() } else { shown(&e.got) },
            })
            .collect();
        // The message of a module that did not load; an example's exception is already in its `got`, and prompts
        // keep the layout the student model was trained on.
        let module_failed = record.examples.iter().all(|e| e.outcome == Outcome::NotRun);
        Self {
            label: record.label,
            message: record.message.as_deref().filter(|_| module_failed).map(shown),
            failing,
            hint: None,
            tutor_error: None,
        }
    }
}

/// The same student's code on an earlier, different problem.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextProblem {
    pub problem: String,
    pub codes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub problem: Arc<Problem>,
    /// The (anonymized) student the attempt is for; retrieval never copies from this student.
    pub student: String,
    /// Earlier attempts, oldest first.
    pub history: Vec<Attempt>,
    pub context: Vec<ContextProblem>,
    pub target: Target,
    pub seed: u64,
}

impl Request {
    /// The shortest request for `problem`: its first submission, from the problem alone.
    pub fn bare(problem: Arc<Problem>) -> Self {
        Self {
            problem,
            student: String::new(),
            history: vec![],
            context: vec![],
            target: Target::Stage(Stage::First),
            seed: 0,
        }
    }
}

/// One generated attempt.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Generation {
    pub code: String,
    /// The generator marked this attempt final (`<SUBMIT>`).
    pub submit: bool,
    /// sha256 of the exact prompt text, for generators that render one.
    pub prompt_sha256: Option<String>,
    /// What a model wrote, before the code was taken out of it (cut at [`RAW_REPLY_BYTES`], with a marker).
    pub raw: Option<String>,
    /// The model's reply ended at its token limit, not where it chose to stop.
    pub truncated: bool,
}

/// Bytes of a model's reply kept in its row.
pub const RAW_REPLY_BYTES: usize = 8192;

impl Generation {
    /// The attempt in a model's `reply` (see [`reply::extract_code`]); `None` when the reply holds no code.
    pub fn from_reply(reply: &str, truncated: bool, prompt_sha256: String) -> Option<Self> {
        let (code, submit) = reply::extract_code(reply)?;
        Some(Self { code, submit, prompt_sha256: Some(prompt_sha256), raw: Some(raw_reply(reply)), truncated })
    }
}

/// A model replied with no code in it. The rollout keeps the reply in the row, with this as its error.
#[derive(Debug, thiserror::Error)]
#[error("the model's reply holds no code: {}", snippet(.raw))]
pub struct NoCode {
    /// The reply, cut at [`RAW_REPLY_BYTES`].
    pub raw: String,
    pub truncated: bool,
}

impl NoCode {
    pub fn new(reply: &str, truncated: bool) -> Self {
        Self { raw: raw_reply(reply), truncated }
    }
}

/// The part of a model's reply kept in its row: all of it, or its start and a marker saying it was cut.
pub(crate) fn raw_reply(reply: &str) -> String {
    crate::text::cut_str(reply, RAW_REPLY_BYTES)
}

/// sha256 (hex) of a prompt's exact text, recorded in each row it produced.
pub(crate) fn prompt_sha256(text: &str) -> String {
    crate::sha256_hex(text.as_bytes())
}

/// The first 200 characters of a model's reply, on one line and with control characters escaped, for error
/// messages (which reach a terminal).
pub(crate) fn snippet(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = one_line.chars().take(200).collect();
    if cut.len() < one_line.len() {
        cut.push_str("...");
    }
    crate::text::for_terminal(&cut)
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Writes attempts. Implementations must be deterministic given the request (its seed included).
pub trait Generator: Send + Sync {
    /// The name written in each output row's `source` and `generator` fields.
    fn name(&self) -> &str;

    fn generate<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Generation>>;

    /// `n` samples for one request, the i-th with seed `request.seed + i`. Backends that batch samples (a local
    /// model, an API's `n`) override this.
    fn generate_many<'a>(&'a self, request: &'a Request, n: usize) -> BoxFuture<'a, Result<Vec<Generation>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(n);
            for i in 0..n as u64 {
                let seeded = Request { seed: request.seed.wrapping_add(i), ..request.clone() };
                out.push(self.generate(&seeded).await?);
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::Label;

    fn record(outcomes: &[Outcome]) -> GradeRecord {
        let examples: Vec<ExampleRecord> = outcomes
            .iter()
            .enumerate()
            .map(|(i, &outcome)| ExampleRecord {
                group: "f".into(),
                line: 3 + i as u32,
                source: format!("f({i})"),
                want: "1\n".into(),
                got: String::new(),
                outcome,
                exception: None,
                limit: None,
                hidden: false,
                points: 1.0,
            })
            .collect();
        let passed = outcomes.iter().filter(|&&o| o == Outcome::Pass).count();
        GradeRecord {
            label: if passed == outcomes.len() { Label::NoError } else { Label::Logical },
            reason: None,
            message: None,
            line: None,
            column: None,
            pass_rate: passed as f64 / outcomes.len().max(1) as f64,
            passed,
            total: outcomes.len(),
            score: passed as f64,
            max_score: outcomes.len() as f64,
            examples,
        }
    }

    #[test]
    fn a_hidden_failure_is_never_shown() {
        use Outcome::{Fail, Pass};
        let mut graded = record(&[Fail, Pass, Fail]);
        graded.examples[0].hidden = true;
        graded.examples[0].want = "SECRET\n".into();
        let shown = Feedback::from_record(&graded);
        assert_eq!(shown.failing.len(), 1, "only the visible failure: {shown:?}");
        assert_eq!(shown.failing[0].source, "f(2)");
        assert!(!format!("{shown:?}").contains("SECRET"));
        graded.examples[2].outcome = Pass;
        assert_eq!(fixes_shown(&graded, &graded), None, "a hidden failure alone shows nothing to act on");
    }

    #[test]
    fn fixing_counts_only_the_failures_shown() {
        use Outcome::{Error, Fail, NotRun, Pass, Timeout};
        let before = record(&[Pass, Fail, Error, Timeout, Fail]);
        assert_eq!(
            fixes_shown(&before, &record(&[Pass, Pass, Error, Timeout, Fail])),
            Some(true),
            "example 2 was shown and passes"
        );
        assert_eq!(
            fixes_shown(&before, &record(&[Pass, Fail, Error, Pass, Fail])),
            Some(true),
            "example 4 (a timeout) was shown"
        );
        // the fifth failure was not shown (three are), so passing it alone is no answer to the feedback
        assert_eq!(fixes_shown(&before, &record(&[Pass, Fail, Error, Timeout, Pass])), Some(false));
        assert_eq!(
            fixes_shown(&before, &record(&[NotRun; 5])),
            Some(false),
            "a next attempt that does not load fixes nothing"
        );
        assert_eq!(fixes_shown(&record(&[Pass, Pass]), &record(&[Pass, Pass])), None, "nothing failing was shown");
        assert_eq!(
            fixes_shown(&record(&[NotRun, NotRun]), &record(&[Pass, Pass])),
            None,
            "a compile error shows no example"
        );
    }
}
