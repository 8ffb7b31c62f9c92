//! Shared set-up for integration tests: one real grader (the real sandbox) per test binary.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod pep8_inputs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
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

pub fn block_on<F: Future>(f: F) -> F::Output {
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
            let mut files: Vec<_> =
                std::fs::read_dir(&dir).expect("refactory dir").map(|e| e.unwrap().path()).collect();
            files.sort();
            programs.extend(files.iter().map(|f| std::fs::read_to_string(f).expect("utf-8")));
        }
    }
    Some(programs)
}

/// The real programs a parity sweep compares on: every fifth of [`real_programs`] (2,017 of the 10,083,
/// NewCaledonia's and Refactory's alike) in the default run, every one with `STUDENTSIM_FULL_PARITY=1` (listed in
/// the README; `studentsim-dev bench metrics` also reports the agreement on every row it is given).
pub fn parity_programs() -> Option<Vec<String>> {
    Some(every_fifth_unless_full(real_programs()?, "real program"))
}

/// Whether the sampled checks run whole (`STUDENTSIM_FULL_PARITY=1`, listed in the README).
pub fn full_parity() -> bool {
    std::env::var_os("STUDENTSIM_FULL_PARITY").is_some()
}

/// `all` whole with `STUDENTSIM_FULL_PARITY=1`, else every fifth item (saying so, with `what` names an item).
pub fn every_fifth_unless_full<T>(all: Vec<T>, what: &str) -> Vec<T> {
    if full_parity() {
        return all;
    }
    eprintln!("every fifth {what} (STUDENTSIM_FULL_PARITY=1 for all {})", all.len());
    all.into_iter().step_by(5).collect()
}

/// The bundled illustrative example streams, relative to the repository root.
pub const EXAMPLES: &str = "examples/trajectories.jsonl";

/// `--example-timeout` for tests that grade the bundled examples many times over and do not test the limit itself:
/// the bundled problems' slowest reference example takes 0.4 ms (`studentsim problems check`), while an example
/// student's first attempt at sum-digits loops forever and took the default 2 s of CPU at every grade (a rollout of
/// the examples: 7.0 CPU-seconds with the default, 3.2 with this).
pub const QUICK_EXAMPLE_TIMEOUT: &str = "0.25";

/// Run the studentsim binary in the repository root, with no API key in its environment.
pub fn studentsim(args: &[&str]) -> Output {
    run_binary(env!("CARGO_BIN_EXE_studentsim"), args)
}

/// Run the studentsim-dev binary (benches and the fuzzer) as [`studentsim`] runs studentsim.
pub fn studentsim_dev(args: &[&str]) -> Output {
    run_binary(env!("CARGO_BIN_EXE_studentsim-dev"), args)
}

fn run_binary(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap_or_else(|e| panic!("run {binary}: {e}"))
}

/// The JSON rows of a JSON Lines file.
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

pub fn example_rows() -> Vec<serde_json::Value> {
    json_lines(&Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLES))
}

/// The number of (student, problem) streams of the examples.
pub fn example_streams() -> usize {
    let keys: std::collections::BTreeSet<String> =
        example_rows().iter().map(|r| format!("{}/{}", r["student"], r["problem"])).collect();
    keys.len()
}

/// Exit code 2, exactly one line on stderr that contains every `needles`, and `output` not created.
pub fn bad_input(out: &Output, needles: &[&str], output: Option<&Path>) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line, got: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
    }
    if let Some(path) = output {
        assert!(!path.exists(), "{} was left behind", path.display());
    }
}

/// The marker every hidden example of [`hidden_registry`] prints and holds in its source: no output meant for a
/// student or a model may contain it.
pub const HIDDEN_MARKER: &str = "hidden-marker";

/// A registry holding `count-vowels` with points on its visible docstring (2 points over its 4 examples) and a
/// hidden group of two examples worth 3 points: 5 points in all.
pub fn hidden_registry() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("count-vowels");
    std::fs::create_dir(&folder).unwrap();
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("problems/count-vowels/problem.toml"))
            .unwrap();
    let extra = format!(
        "\n[points]\ncount_vowels = 2\n\n[[hidden]]\nname = \"edge cases\"\npoints = 3\ndoctest = '''\n>>> print(\"{HIDDEN_MARKER}\", count_vowels(\"xyz\"))\n{HIDDEN_MARKER} 0\n>>> count_vowels(\"Queue\")  # {HIDDEN_MARKER}\n4\n'''\n"
    );
    std::fs::write(folder.join("problem.toml"), manifest + &extra).unwrap();
    dir
}

/// A count-vowels submission that hard-codes the four visible examples: every visible one passes, both hidden
/// ones fail.
pub const HARD_CODED_VOWELS: &str =
    "def count_vowels(s):\n    return {'hello': 2, 'AEIOU and y': 6, 'rhythm': 0, '': 0}.get(s, 1)\n";
