//! Issue 13 part 6: `kill -9` in the middle of a command that writes a file (or, for `score`, a folder of
//! files) leaves no file at the output path and no temp file once the command runs again, and that run writes
//! the same bytes as an uninterrupted one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

/// Each row of `from` `times` times, with `id` / `student` made distinct per copy so no two rows are the same.
fn repeated(from: &str, times: usize, key: &str, to: &Path) {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(from)).unwrap();
    let mut out = String::new();
    for copy in 0..times {
        for line in text.lines() {
            let mut row: serde_json::Value = serde_json::from_str(line).unwrap();
            row[key] = format!("{}-{copy}", row[key].as_str().unwrap()).into();
            out.push_str(&row.to_string());
            out.push('\n');
        }
    }
    std::fs::write(to, out).unwrap();
}

fn run(args: &[String]) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    common::studentsim(&refs)
}

/// When to kill: after a while (in the middle of the work), or as soon as the output's temp file appears (in the
/// middle of writing it).
#[derive(Clone, Copy, Debug)]
enum Kill {
    After(Duration),
    WhileWriting,
}

/// Start `args`, kill it with SIGKILL at `when` (temp files watched in `dir`) while it still runs.
fn kill_midway(args: &[String], when: Kill, dir: &Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_studentsim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{args:?} finished before it was killed ({when:?}): give it more input"
        );
        let now = match when {
            Kill::After(after) => started.elapsed() >= after,
            Kill::WhileWriting => names(dir).iter().any(|n| n.ends_with(".tmp")),
        };
        if now {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{args:?}: no temp file appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}

/// The files of `dir`, by name.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// The whole check for one command whose output file is the last argument.
fn killed_then_rerun(make_args: impl Fn(&Path) -> Vec<String>, dir: &Path, when: Kill) {
    let reference: PathBuf = dir.join("reference.out");
    let output: PathBuf = dir.join("killed.out");
    let done = run(&make_args(&reference));
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    kill_midway(&make_args(&output), when, dir);
    assert!(!output.exists(), "killed ({when:?}), it left {}", output.display());
    let rerun = run(&make_args(&output));
    assert!(rerun.status.success(), "{}", String::from_utf8_lossy(&rerun.stderr));
    assert!(
        std::fs::read(&output).unwrap() == std::fs::read(&reference).unwrap(),
        "the rerun after the kill wrote other bytes"
    );
    let left: Vec<String> = names(dir).into_iter().filter(|n| n.ends_with(".tmp")).collect();
    assert!(left.is_empty(), "temp files left after the rerun: {left:?}");
}

#[test]
fn grade_killed_midway_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("submissions.jsonl");
    repeated("examples/submissions.jsonl", 4, "id", &input);
    let input = input.to_str().unwrap().to_owned();
    let args = |out: &Path| {
        ["grade", "--input", &input, "--jobs", "2", "--output", out.to_str().unwrap()].map(String::from).to_vec()
    };
    killed_then_rerun(args, dir.path(), Kill::After(Duration::from_millis(1500)));
}

#[test]
fn metrics_killed_midway_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.jsonl");
    repeated(common::EXAMPLES, 8, "student", &input);
    let input = input.to_str().unwrap().to_owned();
    // The sandboxed engine, so that the run lasts long enough to be killed in the middle.
    let args = |out: &Path| {
        ["metrics", "--input", &input, "--pep8-engine", "sandbox", "--output", out.to_str().unwrap()]
            .map(String::from)
            .to_vec()
    };
    killed_then_rerun(args, dir.path(), Kill::After(Duration::from_millis(1500)));
}

#[test]
fn export_killed_midway_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.jsonl");
    // About 50 MB of fine-tuning rows: a quarter of a second to write here.
    repeated(common::EXAMPLES, 60, "student", &input);
    let input = input.to_str().unwrap().to_owned();
    let args =
        |out: &Path| ["export", "sft", "--input", &input, "--out", out.to_str().unwrap()].map(String::from).to_vec();
    // Killed while writing, it leaves its temp file; the rerun removes it (its writer is gone).
    killed_then_rerun(args, dir.path(), Kill::WhileWriting);
}

#[test]
fn score_killed_midway_writes_no_report_file() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim.jsonl");
    // Three copies: a score of about 5 s in a test build here, so the kill at 1.5 s lands midway.
    repeated(common::EXAMPLES, 3, "student", &sim);
    let sim = sim.to_str().unwrap().to_owned();
    let files = [
        "metrics.json",
        "report.md",
        "report.html",
        "embeddings_pca.svg",
        "error_types.svg",
        "progress.svg",
        "attempts.svg",
        "embeddings_pca.png",
        "error_types.png",
        "progress.png",
        "attempts.png",
    ];
    // Each run has its own embedding cache, so the killed run cannot borrow the reference run's vectors and the
    // rerun reads what the killed one appended (a torn last record included).
    let args = |out: &Path, cache: &str| {
        let cache = dir.path().join(cache);
        [
            "score",
            "--real",
            common::EXAMPLES,
            "--sim",
            &sim,
            "--embedding-cache",
            cache.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let reference = dir.path().join("reference");
    let done = run(&args(&reference, "cache-reference"));
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));

    let killed = dir.path().join("killed");
    std::fs::create_dir(&killed).unwrap();
    kill_midway(&args(&killed, "cache-killed"), Kill::After(Duration::from_millis(1500)), &killed);
    assert_eq!(names(&killed), Vec::<String>::new(), "the killed score left files in its report folder");

    let rerun = run(&args(&killed, "cache-killed"));
    assert!(rerun.status.success(), "{}", String::from_utf8_lossy(&rerun.stderr));
    assert_eq!(names(&killed), names(&reference), "the rerun wrote other files (temp files left?)");
    for file in files {
        assert!(
            std::fs::read(killed.join(file)).unwrap() == std::fs::read(reference.join(file)).unwrap(),
            "{file}: the rerun after the kill wrote other bytes"
        );
    }
}
