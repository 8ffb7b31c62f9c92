//! The tutor-policy hook: after each graded attempt of a stream, a tutor bot may give a hint, which goes into the
//! next prompt and into the output row.
//!
//! A tutor reads one JSON object ([`TutorState`]: the problem, the attempt, its grade, the history) and answers
//! with a hint: plain text, or JSON `{"hint": "..."}`. It is a program run per hint (`--tutor CMD`, through
//! `sh -c`, the state on stdin, the hint on stdout) or an HTTP endpoint (`--tutor-url URL`, the state POSTed).
//! A tutor that crashes, hangs past its timeout or answers garbage gives no hint; the stream goes on and the
//! row records why.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::generate::openai::http_client;
use crate::generate::{BoxFuture, Feedback};
use crate::problems::Problem;

/// What a tutor is told.
#[derive(Debug, Clone, Serialize)]
pub struct TutorState<'a> {
    pub problem: TutorProblem<'a>,
    /// 1-based attempt number of `code`.
    pub attempt: u32,
    pub code: &'a str,
    pub grade: &'a Feedback,
    pub pass_rate: f64,
    /// Earlier attempts, oldest first.
    pub history: Vec<HistoryItem<'a>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TutorProblem<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub statement: &'a str,
    pub todo: &'a str,
}

impl<'a> From<&'a Problem> for TutorProblem<'a> {
    fn from(p: &'a Problem) -> Self {
        Self { id: &p.id, title: &p.title, statement: &p.statement, todo: &p.todo }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryItem<'a> {
    pub attempt: u32,
    pub code: &'a str,
    pub label: &'static str,
}

pub trait Tutor: Send + Sync {
    /// A hint for `state`, as sent (JSON) to the tutor.
    fn hint<'a>(&'a self, state: String) -> BoxFuture<'a, Result<String>>;
}

/// The tutor gave no answer within its time limit (typed, so `stress-tutor` can count timeouts apart from the
/// tutor's other failures, such as a refused connection).
#[derive(Debug, thiserror::Error)]
#[error("the tutor did not answer within {0:?}")]
pub struct TutorTimeout(pub Duration);

/// The longest hint kept, in bytes (a longer one is cut, with a marker).
const HINT_BYTES: usize = 4096;
/// The largest answer read from a tutor; a longer one is an error, so a tutor cannot fill memory.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// A tutor's answer as a hint: `{"hint": "..."}` or plain text; empty or non-text answers are errors.
pub fn parse_hint(bytes: &[u8]) -> Result<String> {
    let text = std::str::from_utf8(bytes).map_err(|_| anyhow!("the tutor's answer is not UTF-8 text"))?;
    let hint = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(o)) => o
            .get("hint")
            .and_then(|h| h.as_str())
            .ok_or_else(|| anyhow!("the tutor's JSON answer has no \"hint\" string"))?
            .to_owned(),
        _ => text.to_owned(),
    };
    let hint = hint.trim();
    if hint.is_empty() {
        bail!("the tutor gave an empty answer");
    }
    Ok(crate::text::cut_str(hint, HINT_BYTES))
}

/// A program run once per hint.
pub struct CommandTutor {
    pub command: String,
    pub timeout: Duration,
}

impl Tutor for CommandTutor {
    fn hint<'a>(&'a self, state: String) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let mut child = tokio::process::Command::new("sh")
                .args(["-c", &self.command])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting the tutor `{}`", self.command))?;
            let mut stdin = child.stdin.take().expect("piped");
            let mut stdout = child.stdout.take().expect("piped");
            let talk = async {
                // A tutor that exits without reading its input is not an error of ours.
                let _ = stdin.write_all(state.as_bytes()).await;
                drop(stdin);
                let mut answer = Vec::new();
                (&mut stdout).take(MAX_ANSWER_BYTES as u64 + 1).read_to_end(&mut answer).await?;
                if answer.len() > MAX_ANSWER_BYTES {
                    bail!("the tutor's answer is over {} KiB", MAX_ANSWER_BYTES >> 10);
                }
                let status = child.wait().await?;
                anyhow::Ok((status, answer))
            };
            let (status, answer) =
                tokio::time::timeout(self.timeout, talk).await.map_err(|_| TutorTimeout(self.timeout))??;
            if !status.success() {
                bail!("the tutor exited with {status}");
            }
            parse_hint(&answer)
        })
    }
}

/// An HTTP endpoint the state is POSTed to.
pub struct HttpTutor {
    pub url: String,
    pub client: reqwest::Client,
    pub timeout: Duration,
}

impl HttpTutor {
    pub fn new(url: &str, timeout: Duration) -> Result<Self> {
        Ok(Self { url: url.to_owned(), client: http_client(timeout)?, timeout })
    }
}

impl Tutor for HttpTutor {
    fn hint<'a>(&'a self, state: String) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let response = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .body(state)
                .send()
                .await
                .map_err(|e| -> anyhow::Error {
                    if e.is_timeout() {
                        anyhow::Error::new(TutorTimeout(self.timeout)).context(format!("the tutor at {}", self.url))
                    } else {
                        anyhow!("the tutor at {} could not be reached: {e}", self.url)
                    }
                })?;
            let status = response.status();
            let body = crate::generate::openai::body_within(response, MAX_ANSWER_BYTES).await?;
            if !status.is_success() {
                bail!("the tutor answered HTTP {}", status.as_u16());
            }
            parse_hint(&body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_text_or_json() {
        assert_eq!(parse_hint(b"  Check the loop bound.\n").unwrap(), "Check the loop bound.");
        assert_eq!(parse_hint(br#"{"hint": "Use //"}"#).unwrap(), "Use //");
        assert!(parse_hint(br#"{"advice": "x"}"#).is_err());
        assert!(parse_hint(b"   ").is_err());
        assert!(parse_hint(&[0xff, 0xfe]).is_err());
        let long = parse_hint("why ".repeat(5000).as_bytes()).unwrap();
        assert!(
            long.len() <= HINT_BYTES && long.ends_with("bytes in all]"),
            "a long hint is cut with a marker: {} bytes",
            long.len()
        );
    }
}
