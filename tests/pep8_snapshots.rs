//! The PEP 8 port (`metrics::pep8`) against pycodestyle 2.14.0's recorded answers, with no runtime needed (ruff's
//! fixture tests). `tests/fixtures/pycodestyle/<FAMILY>.py` holds cases of one family of checks, each after a
//! `# case: NAME` line; `<FAMILY>.py.snap` holds pycodestyle's (line, column, code) list for every case, plain and
//! in the study's wrapped mode. `programs.jsonl` holds the lexer's edge cases, the bundled example programs and
//! 300 seeded mutations of them, each with its answers.
//!
//! The answers are pycodestyle's own, run in the sandbox, never the port's:
//! `STUDENTSIM_RECORD_PEP8=1 cargo test --test pep8_snapshots` records them again (after `runtimes/setup.sh`).
//! tests/pep8_native.rs keeps the full proof against the sandboxed pycodestyle on every real program.

use crate::common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::pep8_inputs::{EDGE_CASES, cpython_reads_before_a_line, mutations};
use serde::{Deserialize, Serialize};
use studentsim::metrics::pep8;
use studentsim::records::StyleProblem;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pycodestyle")
}

/// Whether this run records the snapshots from the sandboxed pycodestyle instead of checking against them.
fn recording() -> bool {
    std::env::var_os("STUDENTSIM_RECORD_PEP8").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A (line, column, code) list as `line:column:code` words; `undefined` where CPython's own answer is (see
/// `cpython_reads_before_a_line`).
fn listed(found: &[StyleProblem]) -> String {
    found.iter().map(|p| format!("{}:{}:{}", p.line, p.column, p.code)).collect::<Vec<_>>().join(" ")
}

const UNDEFINED: &str = "undefined";

/// The port's answers on `code`, plain and wrapped, in the snapshots' words.
fn ours(code: &str) -> [String; 2] {
    [false, true].map(|wrapped| listed(&pep8::check(code, wrapped)))
}

/// pycodestyle's answers on every program, plain and wrapped, from the sandbox.
fn pycodestyle(codes: &[&str]) -> Vec<[String; 2]> {
    let [plain, wrapped] = [false, true].map(|wrapped| {
        let found =
            common::block_on(common::grader().pep8_problems(codes, wrapped)).expect("pycodestyle in the sandbox");
        found
            .iter()
            .zip(codes)
            .map(
                |(problems, code)| {
                    if cpython_reads_before_a_line(code, wrapped) { UNDEFINED.to_owned() } else { listed(problems) }
                },
            )
            .collect::<Vec<_>>()
    });
    plain.into_iter().zip(wrapped).map(|(p, w)| [p, w]).collect()
}

/// Each mode where the snapshot's answer is defined and ours differs, as a failure line.
fn compare(what: &str, want: &[String; 2], got: &[String; 2]) -> Vec<String> {
    ["plain", "wrapped"]
        .iter()
        .zip(want.iter().zip(got))
        .filter(|(_, (want, got))| want.as_str() != UNDEFINED && want != got)
        .map(|(mode, (want, got))| format!("{what} ({mode}):\n  pycodestyle: {want}\n  ours:        {got}"))
        .collect()
}

/// The cases of a family fixture: each `# case: NAME` line starts one, and the lines up to the next are its code
/// (without the final newline when the name ends with "(no newline at end)").
fn cases(text: &str) -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        match line.strip_prefix("# case: ") {
            Some(name) => cases.push((name.trim_end().to_owned(), String::new())),
            None => cases.last_mut().expect("a fixture starts with a `# case:` line").1.push_str(line),
        }
    }
    for (name, code) in &mut cases {
        if name.ends_with("(no newline at end)") {
            code.pop();
        }
    }
    cases
}

/// A family fixture's snapshot: for each case, its name and the answers.
fn read_snapshot(path: &Path) -> Vec<(String, [String; 2])> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e} (record it first)", path.display()));
    let mut lines = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty());
    let mut cases = Vec::new();
    while let Some(case) = lines.next() {
        let mut answer = |prefix: &str| {
            let line = lines.next().unwrap_or_default();
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{}: `{prefix}` expected, found {line:?}", path.display()))
                .trim_start()
                .to_owned()
        };
        let name = case.strip_prefix("case: ").unwrap_or_else(|| panic!("{}: not a case: {case:?}", path.display()));
        cases.push((name.to_owned(), [answer("plain:"), answer("wrapped:")]));
    }
    cases
}

fn write_snapshot(path: &Path, fixture: &str, cases: &[(String, String)], answers: &[[String; 2]]) {
    let mut text = format!(
        "# pycodestyle 2.14.0 on {fixture}, case by case: `line:column:code` (columns from 0), plain and in the \
         study's wrapped mode.\n# Recorded from the sandbox: STUDENTSIM_RECORD_PEP8=1 cargo test --test \
         pep8_snapshots\n"
    );
    for ((name, _), [plain, wrapped]) in cases.iter().zip(answers) {
        write!(text, "\ncase: {name}\nplain: {plain}\nwrapped: {wrapped}\n").expect("a String takes writes");
    }
    std::fs::write(path, text).expect("the fixtures folder is writable");
}

fn family_fixtures() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures/pycodestyle")
        .map(|e| e.expect("a readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn the_port_answers_every_family_fixture_as_pycodestyle_did() {
    let mut failures = Vec::new();
    let paths = family_fixtures();
    assert!(paths.len() >= 11, "expected a fixture per family of checks, found {}", paths.len());
    for path in paths {
        let fixture = path.file_name().expect("a file").to_string_lossy().into_owned();
        let cases = cases(&std::fs::read_to_string(&path).expect("a readable fixture"));
        let snapshot = path.with_file_name(format!("{fixture}.snap"));
        if recording() {
            let codes: Vec<&str> = cases.iter().map(|(_, code)| code.as_str()).collect();
            write_snapshot(&snapshot, &fixture, &cases, &pycodestyle(&codes));
        }
        let answers = read_snapshot(&snapshot);
        let names: Vec<&str> = cases.iter().map(|(name, _)| name.as_str()).collect();
        let recorded: Vec<&str> = answers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, recorded, "{fixture}: its cases and its snapshot's differ (record it again)");
        // A family fixture that trips none of its family's checks tests nothing of them.
        let family = fixture.trim_end_matches(".py");
        let prefix = &family[..2];
        assert!(
            answers.iter().any(|(_, [plain, _])| plain
                .split(' ')
                .any(|p| p.rsplit(':').next().is_some_and(|c| c.starts_with(prefix)))),
            "{fixture}: pycodestyle reports no {prefix}xx code on any case"
        );
        for ((name, code), (_, want)) in cases.iter().zip(&answers) {
            failures.extend(compare(&format!("{fixture}: {name}"), want, &ours(code)));
        }
    }
    assert!(failures.is_empty(), "{} answers differ:\n{}", failures.len(), failures.join("\n"));
}

/// One program of `programs.jsonl` and pycodestyle's answers on it.
#[derive(Serialize, Deserialize)]
struct Program {
    code: String,
    plain: String,
    wrapped: String,
}

/// The programs: the lexer's edge cases, the bundled example programs, and 300 seeded mutations of those.
fn programs_to_record() -> Vec<String> {
    let mut examples: Vec<String> =
        common::example_rows().iter().map(|r| r["code"].as_str().expect("a row has code").to_owned()).collect();
    examples.sort();
    examples.dedup();
    let mutated = mutations(&examples, 300, 29);
    EDGE_CASES.iter().map(|s| (*s).to_owned()).chain(examples).chain(mutated).collect()
}

#[test]
fn the_port_answers_the_edge_cases_and_mutated_examples_as_pycodestyle_did() {
    let path = fixtures().join("programs.jsonl");
    if recording() {
        let codes = programs_to_record();
        let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
        let rows: Vec<Program> = codes
            .iter()
            .zip(pycodestyle(&refs))
            .map(|(code, [plain, wrapped])| Program { code: code.clone(), plain, wrapped })
            .collect();
        let text: String =
            rows.iter().map(|r| serde_json::to_string(r).expect("a program serializes") + "\n").collect();
        std::fs::write(&path, text).expect("the fixtures folder is writable");
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let programs: Vec<Program> = text.lines().map(|l| serde_json::from_str(l).expect("a programs.jsonl row")).collect();
    assert!(programs.len() >= 300, "programs.jsonl has {} programs, expected a few hundred", programs.len());
    let with_problems = programs.iter().filter(|p| !p.plain.is_empty() && p.plain != UNDEFINED).count();
    assert!(with_problems * 2 > programs.len(), "only {with_problems} programs have any PEP 8 problem");
    let failures: Vec<String> = programs
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            compare(&format!("program {} {:?}", i + 1, p.code), &[p.plain.clone(), p.wrapped.clone()], &ours(&p.code))
        })
        .collect();
    assert!(failures.is_empty(), "{} answers differ:\n{}", failures.len(), failures.join("\n"));
}
