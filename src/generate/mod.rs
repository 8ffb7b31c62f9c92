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

use anyhow::Result;
use crate::grade::{GradeRecord, Outcome};
use crate::problems::Problem;
use crate::trajectory::views::Stage;

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

impl Feedback {
    /// What a student is shown of `record`: its label, message, and its first few failing examples.
    pub fn from_record(record: &GradeRecord) -> Self {
        let failing = record
            .examples
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Fail | Outcome::Error | Outcome::Timeout))
            .take(SHOWN_EXAMPLES)
            .map(|e| FailingExample {
                source: shown(&e.source),
                want: shown(&e.want),
                got: if e.outcome == Outcome::Timeout { "(time limit exceeded)".into() } else { shown(&e.got) },
            })
            .collect();
        Self { label: record.label, message: record.message.as_deref().map(shown), failing, hint: None, tutor_error: None }
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
        Self { problem, student: String::new(), history: vec![], context: vec![], target: Target::Stage(Stage::First), seed: 0 }
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
    /// What a model wrote, before the code was taken out of it (cut at [`RAW_REPLY_CHARS`]).
    pub raw: Option<String>,
    /// The model's reply ended at its token limit, not where it chose to stop.
    pub truncated: bool,
}

/// Characters of a model's reply kept in its row.
pub const RAW_REPLY_CHARS: usize = 4096;

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
    /// The reply, cut at [`RAW_REPLY_CHARS`].
    pub raw: String,
    pub truncated: bool,
}

impl NoCode {
    pub fn new(reply: &str, truncated: bool) -> Self {
        Self { raw: raw_reply(reply), truncated }
    }
}

/// The part of a model's reply kept in its row.
pub(crate) fn raw_reply(reply: &str) -> String {
    reply.chars().take(RAW_REPLY_CHARS).collect()
}

/// sha256 (hex) of a prompt's exact text, recorded in each row it produced.
pub(crate) fn prompt_sha256(text: &str) -> String {
    use sha2::{Digest as _, Sha256};
    crate::sandbox::runtime::hex(&Sha256::digest(text.as_bytes()))
}

/// The first 200 characters of a model's reply, on one line, for error messages.
pub(crate) fn snippet(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = one_line.chars().take(200).collect();
    if cut.len() < one_line.len() {
        cut.push_str("...");
    }
    cut
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
