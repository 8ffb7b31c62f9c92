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
