//! Supervised fine-tuning rows in the study's layout: the fine-tuned prompt of every Experiment 1 stage and
//! every Experiment 2 next step (k priors), with and without student context, and the student's real code as
//! the completion (`<code>...</code>`; the study trained on the completion only and appended no EOS).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::prompt::fine_tuned;
use super::{Attempt, ContextProblem, Request, Target};
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

/// Every SFT row `spec` asks for; rows on problems missing from `problems` are skipped.
pub fn sft_rows(rows: &[Submission], problems: &HashMap<String, Arc<Problem>>, spec: &SftSpec) -> Vec<SftRow> {
    let mut out = Vec::new();
    let variants: Vec<bool> = [(spec.without_context, false), (spec.with_context, true)].into_iter().filter(|v| v.0).map(|v| v.1).collect();
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
                let history = item.priors.iter().map(|&i| Attempt { code: rows[i].code.clone(), feedback: None }).collect();
                if let Some(r) = request(&rows[item.target], history, ctx, Target::Next) {
                    push(item.target, r, 2, None, Some(k));
                }
            }
        }
    }
    out
}
