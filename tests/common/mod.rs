//! Shared set-up for integration tests: one real grader (the real sandbox) per test binary.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use studentsim::grade::{GradeLimits, GradeRecord, Grader, Tests};
use studentsim::sandbox::Runtime;

pub fn grader() -> Arc<Grader> {
    static GRADER: OnceLock<Arc<Grader>> = OnceLock::new();
    GRADER
        .get_or_init(|| {
            let runtime = Runtime::locate(None).unwrap_or_else(|e| panic!("{e}"));
            Arc::new(Grader::new(&runtime, GradeLimits::default()).expect("grader"))
        })
        .clone()
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(f)
}

pub fn tests_for(todo: &str) -> Tests {
    block_on(grader().parse_tests(todo)).expect("parse doctests")
}

pub fn grade(todo: &str, submission: &str) -> GradeRecord {
    let tests = tests_for(todo);
    block_on(grader().grade("", submission, &tests))
}

/// `../shared/data/<rel>` when present; tests that need it skip (with a message) when it is not.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipping: {} not found (the shared real-data folder is absent)", path.display());
        None
    }
}

/// Every real program we have: NewCaledonia uploads and Refactory correct/wrong/fail files.
pub fn real_programs() -> Option<Vec<String>> {
    let nc = shared_data("newcaledonia")?;
    let refactory = shared_data("refactory")?;
    let text = std::fs::read_to_string(nc.join("NewCaledonia_5690_light.json")).ok()?;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("NewCaledonia json");
    let mut programs: Vec<String> = rows.iter().map(|r| r["upload"].as_str().expect("upload").to_owned()).collect();
    for q in 1..=5 {
        for verdict in ["correct", "wrong", "fail"] {
            let dir = refactory.join(format!("question_{q}/code/{verdict}"));
            let mut files: Vec<_> = std::fs::read_dir(&dir).expect("refactory dir").map(|e| e.unwrap().path()).collect();
            files.sort();
            programs.extend(files.iter().map(|f| std::fs::read_to_string(f).expect("utf-8")));
        }
    }
    Some(programs)
}

