//! Import of the NewCaledonia dataset (Cleuziou & Flouvat, EGC 2021): 66 exercises become problems, 5,690
//! timestamped submissions become trajectories, graded in the sandbox.
//!
//! The exercises have a teacher solution and test inputs but no expected outputs and no statements: the expected
//! outputs come from running the teacher solution on each input inside the sandbox, and the statement is derived
//! from the function's name and signature (and says so).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use super::{Anonymizer, Source, Submission};
use crate::BadInput;
use crate::grade::batch::grade_distinct;
use crate::grade::{Compare, Grader, Outcome};
use crate::problems::{Problem, top_level_functions};
use crate::records::Progress;

pub const EXERCISES: &str = "NewCaledonia_exercises.json";
pub const SUBMISSIONS: &str = "NewCaledonia_5690_light.json";

#[derive(Debug, Deserialize)]
struct Exercise {
    exo_name: String,
    funcname: String,
    solution: String,
    entries: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct RawSubmission {
    user: String,
    exercise: String,
    date: String,
    #[serde(rename = "attemptID")]
    attempt_id: u64,
    correct: String,
    upload: String,
}

/// What an import produced.
pub struct Imported {
    pub problems: Vec<Problem>,
    pub submissions: Vec<Submission>,
    /// Test inputs left out because the teacher solution gave no stable expected output for them.
    pub dropped_examples: usize,
}

/// Import `dir`; `anonymizer: None` keeps raw student ids (only with `--no-anonymize`).
pub async fn import(
    dir: &Path,
    grader: Arc<Grader>,
    anonymizer: Option<&Anonymizer>,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Imported> {
    let exercises: Vec<Exercise> = read_json(&dir.join(EXERCISES))?;
    let raw: Vec<RawSubmission> = read_json(&dir.join(SUBMISSIONS))?;

    let mut problems = Vec::with_capacity(exercises.len());
    let mut dropped_examples = 0;
    let mut id_of = HashMap::new();
    for exercise in &exercises {
        let (problem, dropped) = problem_for(&grader, exercise).await?;
        dropped_examples += dropped;
        id_of.insert(exercise.exo_name.clone(), problem.id.clone());
        problems.push(problem);
    }

    let mut submissions = Vec::with_capacity(raw.len());
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by(|&a, &b| (&raw[a].date, raw[a].attempt_id).cmp(&(&raw[b].date, raw[b].attempt_id)));
    let mut attempts: HashMap<(&str, &str), u32> = HashMap::new();
    for i in order {
        let r = &raw[i];
        let at = |what: String| {
            BadInput(format!("{}: submission attemptID {}: {what}", dir.join(SUBMISSIONS).display(), r.attempt_id))
        };
        let problem = id_of.get(&r.exercise).ok_or_else(|| at(format!("unknown exercise {}", r.exercise)))?;
        let attempt = attempts.entry((&r.user, &r.exercise)).or_insert(0);
        *attempt += 1;
        submissions.push(Submission {
            student: anonymizer.map_or_else(|| r.user.clone(), |a| a.pseudonym(&r.user)),
            problem: problem.clone(),
            time: parse_time(&r.date).map_err(|e| at(format!("date {:?}: {e}", r.date)))?,
            attempt: *attempt,
            code: r.upload.clone(),
            label: None,
            pass_rate: None,
            source: Source::Real,
            platform_correct: Some(r.correct == "1"),
            generated: None,
            extra: Default::default(),
        });
    }

    let items = submissions
        .iter()
        .map(|s| {
            let problem = problems.iter().find(|p| p.id == s.problem).expect("every submission maps to a problem");
            (problem, s.code.clone())
        })
        .collect();
    progress.start(submissions.len() as u64);
    let graded = grade_distinct(&grader, items, jobs, progress).await?;
    for (submission, graded) in submissions.iter_mut().zip(graded) {
        submission.label = Some(graded.record.label);
        submission.pass_rate = Some(graded.record.pass_rate);
    }
    Ok(Imported { problems, submissions, dropped_examples })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| BadInput(format!("{}: cannot read: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| BadInput(format!("{}:{}: {e}", path.display(), e.line())).into())
}

/// The platform recorded local times without a zone; they are kept as written and labelled UTC.
fn parse_time(date: &str) -> Result<Timestamp, jiff::Error> {
    jiff::tz::TimeZone::UTC.to_timestamp(date.parse::<jiff::civil::DateTime>()?)
}

/// The problem for one exercise, and how many of its inputs were dropped.
async fn problem_for(grader: &Grader, exercise: &Exercise) -> Result<(Problem, usize)> {
    let name = &exercise.funcname;
    let signature = top_level_functions(&exercise.solution)
        .into_iter()
        .find(|(defined, _)| defined == name)
        .map(|(_, signature)| signature)
        .unwrap_or_else(|| format!("{name}(*args)"));
    let calls: Vec<String> = exercise.entries.iter().map(|entry| format!("{name}({})", arguments(entry))).collect();

    // First run the teacher solution on every call with no expectation, to learn the expected outputs.
    let probe = stub(name, &signature, calls.iter().map(|c| (c.as_str(), "")));
    let tests = grader.parse_tests(&probe).await.with_context(|| format!("exercise {name}"))?.comparing(Compare::Value);
    let observed = grader.grade("", &exercise.solution, &tests).await;
    let mut examples = Vec::new();
    for (call, record) in calls.iter().zip(&observed.examples) {
        let want = match (record.outcome, record.exception.as_deref()) {
            (Outcome::Pass | Outcome::Fail, None) => record.got.clone(),
            (Outcome::Error, Some(_)) if record.limit.is_none() => {
                let last = record.got.trim_end().lines().last().unwrap_or("").to_owned();
                format!("Traceback (most recent call last):\n  ...\n{last}\n")
            }
            _ => continue,
        };
        examples.push((call.as_str(), want));
    }
    let mut problem = Problem {
        id: format!("nc-{name}-{}", &exercise.exo_name[..6.min(exercise.exo_name.len())]),
        title: name.clone(),
        statement: format!(
            "Write the function {signature}. (Derived from the function's name and signature: the NewCaledonia \
             dataset has no problem statements.)"
        ),
        entry: vec![name.clone()],
        fixed: String::new(),
        todo: stub(name, &signature, examples.iter().map(|(c, w)| (*c, w.as_str()))),
        solution: exercise.solution.clone(),
        compare: Compare::Value,
        source: Some(format!(
            "NewCaledonia dataset (Cleuziou & Flouvat, EGC 2021), exercise {}; research use only",
            exercise.exo_name
        )),
        limits: Default::default(),
        points: Default::default(),
        hidden: Default::default(),
    };
    // Keep only the examples the teacher solution passes as written (a want cut at the record limit would not).
    let check = grader.grade("", &problem.solution, &grader.problem_tests(&problem).await?).await;
    let kept: Vec<(&str, String)> = examples
        .iter()
        .zip(&check.examples)
        .filter(|(_, r)| r.outcome == Outcome::Pass)
        .map(|((c, w), _)| (*c, w.clone()))
        .collect();
    let dropped = calls.len() - kept.len();
    problem.todo = stub(name, &signature, kept.iter().map(|(c, w)| (*c, w.as_str())));
    Ok((problem, dropped))
}

/// A stub whose raw docstring holds one doctest example per `(call, want)`.
fn stub<'a>(name: &str, signature: &str, examples: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut body = String::new();
    for (call, want) in examples {
        body.push_str(&format!("    >>> {call}\n"));
        for line in want.lines() {
            body.push_str(&format!("    {line}\n"));
        }
    }
    let quote = if body.contains("\"\"\"") { "'''" } else { "\"\"\"" };
    format!(
        "def {signature}:\n    r{quote}{name}: see the statement.\n\n{body}    {quote}\n    \"*** YOUR CODE HERE ***\"\n"
    )
}

/// The argument list for one test input: `{"__tuple__": true, "items": [...]}` is several arguments.
fn arguments(entry: &Value) -> String {
    match tuple_items(entry) {
        Some(items) => items.iter().map(python_literal).collect::<Vec<_>>().join(", "),
        None => python_literal(entry),
    }
}

/// The items of the dataset's tuple encoding, `{"__tuple__": true, "items": [...]}`.
fn tuple_items(value: &Value) -> Option<&Vec<Value>> {
    let map = value.as_object()?;
    match (map.get("__tuple__"), map.get("items")) {
        (Some(Value::Bool(true)), Some(Value::Array(items))) => Some(items),
        _ => None,
    }
}

/// A JSON value as a Python literal (JSON string escapes are valid Python escapes).
fn python_literal(value: &Value) -> String {
    let join = |items: &[Value]| items.iter().map(python_literal).collect::<Vec<_>>().join(", ");
    if let Some(items) = tuple_items(value) {
        return if items.len() == 1 { format!("({},)", join(items)) } else { format!("({})", join(items)) };
    }
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => serde_json::to_string(s).expect("a string serializes"),
        Value::Array(items) => format!("[{}]", join(items)),
        Value::Object(map) => {
            let pairs: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", serde_json::to_string(k).expect("a key serializes"), python_literal(v)))
                .collect();
            format!("{{{}}}", pairs.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_entries_become_python_arguments() {
        let entry: Value = serde_json::from_str(
            r#"{"__tuple__": true, "items": ["c", [1, 2.5], {"__tuple__": true, "items": [null]}, true]}"#,
        )
        .unwrap();
        assert_eq!(arguments(&entry), r#""c", [1, 2.5], (None,), True"#);
        assert_eq!(arguments(&Value::String("a\nb\"".into())), r#""a\nb\"""#);
        assert_eq!(arguments(&serde_json::json!({"k": 1})), r#"{"k": 1}"#);
    }

    #[test]
    fn platform_dates_read_as_utc() {
        assert_eq!(parse_time("2020-03-12 07:48:50").unwrap().to_string(), "2020-03-12T07:48:50Z");
    }
}
