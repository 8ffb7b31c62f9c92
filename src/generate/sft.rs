//! Supervised fine-tuning rows in the study's layout: the fine-tuned prompt of every Experiment 1 stage and
//! every Experiment 2 next step (k priors), with and without student context, and the student's real code as
//! the completion (`<code>...</code>`; the study trained on the completion only and appended no EOS).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::prompt::fine_tuned;
use super::real_feedback::real_history;
use super::{Attempt, ContextProblem, Feedback, Request, Target};
use crate::problems::Problem;
use crate::trajectory::Submission;
use crate::trajectory::views::{self, Stage};

/// Which rows to write.
#[derive(Debug, Clone)]
pub struct SftSpec {
    pub stages: bool,
    /// Experiment 2 rows for each k (empty: none).
    pub ks: Vec<usize>,
    /// Write rows without context, with context (when the student has an earlier problem), or both.
    pub without_context: bool,
    pub with_context: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SftRow {
    pub prompt: String,
    pub completion: String,
    /// 1 (stages) or 2 (next steps).
    pub experiment: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    pub context: bool,
    pub student: String,
    pub problem: String,
    pub attempt: u32,
}

fn context_of(rows: &[Submission], context: &[usize]) -> Vec<ContextProblem> {
    match context.first() {
        Some(&first) => vec![ContextProblem {
            problem: rows[first].problem.clone(),
            codes: context.iter().map(|&i| rows[i].code.clone()).collect(),
        }],
        None => Vec::new(),
    }
}

/// Every SFT row `spec` asks for; rows on problems missing from `problems` are skipped. With `feedback` (see
/// [`real_feedback`](super::real_feedback)), a next-step prompt shows what its previous attempt was graded, as a
/// stream shows it; without, the rows are exactly the study's.
pub fn sft_rows(
    rows: &[Submission],
    problems: &HashMap<String, Arc<Problem>>,
    spec: &SftSpec,
    feedback: Option<&HashMap<usize, Feedback>>,
) -> Vec<SftRow> {
    let mut out = Vec::new();
    let variants: Vec<bool> =
        [(spec.without_context, false), (spec.with_context, true)].into_iter().filter(|v| v.0).map(|v| v.1).collect();
    let mut push = |target: usize, request: Request, experiment: u8, stage: Option<Stage>, k: Option<usize>| {
        let row = &rows[target];
        out.push(SftRow {
            prompt: fine_tuned(&request),
            completion: format!("<code>{}</code>", row.code.trim()),
            experiment,
            stage: stage.map(Stage::as_str),
            k,
            context: !request.context.is_empty(),
            student: row.student.clone(),
            problem: row.problem.clone(),
            attempt: row.attempt,
        });
    };
    let request = |target: &Submission, history: Vec<Attempt>, context: Vec<ContextProblem>, t: Target| {
        problems.get(&target.problem).map(|p| Request {
            problem: p.clone(),
            student: target.student.clone(),
            history,
            context,
            target: t,
            seed: 0,
        })
    };
    if spec.stages {
        let mut seen = std::collections::BTreeSet::new();
        for item in views::stages(rows).into_iter().filter(|i| seen.insert((i.target, i.stage))) {
            for &with in &variants {
                let context: Vec<usize> = item.context.into_iter().collect();
                if with && context.is_empty() {
                    continue;
                }
                let ctx = if with { context_of(rows, &context) } else { Vec::new() };
                if let Some(r) = request(&rows[item.target], Vec::new(), ctx, Target::Stage(item.stage)) {
                    push(item.target, r, 1, Some(item.stage), None);
                }
            }
        }
    }
    for &k in &spec.ks {
        for item in views::next_steps(rows, k) {
            for &with in &variants {
                if with && item.context.is_empty() {
                    continue;
                }
                let ctx = if with { context_of(rows, &item.context) } else { Vec::new() };
                let history = real_history(rows, &item.priors, feedback);
                if let Some(r) = request(&rows[item.target], history, ctx, Target::Next) {
                    push(item.target, r, 2, None, Some(k));
                }
            }
        }
    }
    out
}

/// `text`'s token ids, without special tokens added (the prompt formats carry their own).
pub fn token_ids(tokenizer: &tokenizers::Tokenizer, text: &str) -> anyhow::Result<Vec<u32>> {
    tokenizer.encode(text, false).map(|e| e.get_ids().to_vec()).map_err(|e| anyhow::anyhow!("tokenizing: {e}"))
}

/// A row as token ids: the prompt's, then the completion's, each encoded on its own as the model meets them (the
/// prompt at inference, the completion as it generates). The loss is taken after `prompt_len`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncodedRow {
    pub input_ids: Vec<u32>,
    pub prompt_len: usize,
}

impl EncodedRow {
    pub fn new(tokenizer: &tokenizers::Tokenizer, row: &SftRow) -> anyhow::Result<Self> {
        let mut input_ids = token_ids(tokenizer, &row.prompt)?;
        let prompt_len = input_ids.len();
        input_ids.extend(token_ids(tokenizer, &row.completion)?);
        Ok(Self { input_ids, prompt_len })
    }

    pub fn completion_tokens(&self) -> usize {
        self.input_ids.len() - self.prompt_len
    }
}

/// How much of the rows to train on: whole (student, problem) streams drawn in a seeded order until the next
/// would pass a budget (`None`: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budget {
    pub max_rows: Option<usize>,
    pub max_tokens: Option<usize>,
    /// Streams with a row longer than this many tokens are left out whole (long rows cost a CPU far more per
    /// completion token, and their activations may not fit in memory).
    pub max_row_tokens: Option<usize>,
    pub seed: u64,
}

/// The indices of the rows `budget` keeps, in their original order: streams are shuffled with the seed and taken
/// whole, skipping a stream that would pass the budget or has a row over `max_row_tokens`, so every row of a kept
/// stream is in. `tokens[i]` is row i's length.
pub fn sample_streams(rows: &[SftRow], tokens: &[usize], budget: &Budget) -> Vec<usize> {
    use rand::SeedableRng as _;
    use rand::seq::SliceRandom as _;
    let mut streams: std::collections::BTreeMap<(&str, &str), Vec<usize>> = std::collections::BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        streams.entry((&row.student, &row.problem)).or_default().push(i);
    }
    let mut order: Vec<Vec<usize>> = streams.into_values().collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(budget.seed));
    let (mut kept, mut n_rows, mut n_tokens) = (Vec::new(), 0, 0);
    for stream in order {
        if budget.max_row_tokens.is_some_and(|m| stream.iter().any(|&i| tokens[i] > m)) {
            continue;
        }
        let (rows_then, tokens_then) =
            (n_rows + stream.len(), n_tokens + stream.iter().map(|&i| tokens[i]).sum::<usize>());
        if budget.max_rows.is_some_and(|m| rows_then > m) || budget.max_tokens.is_some_and(|m| tokens_then > m) {
            continue;
        }
        (n_rows, n_tokens) = (rows_then, tokens_then);
        kept.extend(stream);
    }
    kept.sort_unstable();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(student: &str, problem: &str, attempt: u32) -> SftRow {
        SftRow {
            prompt: String::new(),
            completion: String::new(),
            experiment: 2,
            stage: None,
            k: Some(1),
            context: false,
            student: student.into(),
            problem: problem.into(),
            attempt,
        }
    }

    #[test]
    fn a_budget_keeps_whole_streams_and_no_more() {
        let rows = [
            row("a", "p", 2),
            row("a", "p", 3),
            row("b", "p", 2),
            row("c", "q", 2),
            row("c", "q", 3),
            row("c", "q", 4),
        ];
        let tokens = [10, 10, 10, 10, 10, 10];
        for seed in 0..20 {
            let kept = sample_streams(
                &rows,
                &tokens,
                &Budget { max_rows: Some(3), max_tokens: None, max_row_tokens: None, seed },
            );
            assert!(kept.len() <= 3, "seed {seed}: {} rows kept over a budget of 3", kept.len());
            for &i in &kept {
                let whole = rows
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.student == rows[i].student && r.problem == rows[i].problem);
                assert!(
                    whole.map(|(j, _)| j).all(|j| kept.contains(&j)),
                    "seed {seed}: stream of row {i} kept in part: {kept:?}"
                );
            }
            // a 3-row budget always has room for a 1- or 2-row stream beside whichever it took first
            assert!(kept.len() >= 2, "seed {seed}: only {kept:?}");
        }
        let all =
            sample_streams(&rows, &tokens, &Budget { max_rows: None, max_tokens: None, max_row_tokens: None, seed: 0 });
        assert_eq!(all, (0..6).collect::<Vec<_>>());
        let by_tokens = sample_streams(
            &rows,
            &tokens,
            &Budget { max_rows: None, max_tokens: Some(25), max_row_tokens: None, seed: 1 },
        );
        assert!(by_tokens.len() * 10 <= 25 && !by_tokens.is_empty(), "{by_tokens:?}");
        let a = sample_streams(
            &rows,
            &tokens,
            &Budget { max_rows: Some(3), max_tokens: None, max_row_tokens: None, seed: 7 },
        );
        assert_eq!(
            a,
            sample_streams(
                &rows,
                &tokens,
                &Budget { max_rows: Some(3), max_tokens: None, max_row_tokens: None, seed: 7 }
            ),
            "seeded"
        );
        let long = [10, 30, 10, 10, 10, 10];
        let short = sample_streams(
            &rows,
            &long,
            &Budget { max_rows: None, max_tokens: None, max_row_tokens: Some(20), seed: 0 },
        );
        assert_eq!(short, vec![2, 3, 4, 5], "stream (a, p) has a 30-token row and is left out whole");
    }
}
