//! Issue 15 part 1: `--shard K/N` runs as separate processes, joined by `studentsim merge`, equal the unsharded
//! output byte for byte, for grade, metrics, every rollout mode and score; and merge refuses shards that do not
//! make one whole run, with one line and no output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common;

const EXAMPLES: &str = common::EXAMPLES;
const SUBMISSIONS: &str = "examples/submissions.jsonl";
const QUICK: &str = common::QUICK_EXAMPLE_TIMEOUT;

/// How a shard learns its index: on the command line, or from a cluster scheduler's environment.
fn shard_command(args: &[String], out_flag: &str, part: &Path, k: u32) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_studentsim"));
    command
        .args(args)
        .arg(out_flag)
        .arg(part)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command.env_remove("JOB_COMPLETION_INDEX").env_remove("SLURM_ARRAY_TASK_ID").env_remove("SLURM_ARRAY_TASK_MIN");
    match k {
        // a Kubernetes Indexed Job: 0-based
        1 => command.args(["--shard", "auto/3"]).env("JOB_COMPLETION_INDEX", "0"),
        // a Slurm array submitted as --array=1-3
        2 => command.args(["--shard", "auto/3"]).env("SLURM_ARRAY_TASK_ID", "2").env("SLURM_ARRAY_TASK_MIN", "1"),
        _ => command.arg("--shard").arg(format!("{k}/3")),
    };
    command
}

/// Run `args` once unsharded and as 3 shards at once (separate processes), merge the shards (given in a shuffled
/// order), and return (unsharded output, merged output, the shard outputs).
fn run_both(args: &[String], out_flag: &str, dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<PathBuf>) {
    let all = dir.join(format!("{name}.all"));
    let out = Command::new(env!("CARGO_BIN_EXE_studentsim"))
        .args(args)
        .arg(out_flag)
        .arg(&all)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let parts: Vec<PathBuf> = (1..=3).map(|k| dir.join(format!("{name}.part{k}"))).collect();
    let children: Vec<_> =
        parts.iter().zip(1..).map(|(part, k)| shard_command(args, out_flag, part, k).spawn().unwrap()).collect();
    for (child, k) in children.into_iter().zip(1..) {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?} shard {k}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let merged = dir.join(format!("{name}.merged"));
    let shuffled = [&parts[2], &parts[0], &parts[1]].map(|p| p.to_str().unwrap().to_owned());
    let out = common::studentsim(
        &[&["merge", "--output", merged.to_str().unwrap()], &shuffled.each_ref().map(String::as_str)[..]].concat(),
    );
    assert!(out.status.success(), "merge {name}: {}", String::from_utf8_lossy(&out.stderr));
    (all, merged, parts)
}

/// The unsharded output and the merged one are the same bytes, and each shard did a real, smaller share.
fn assert_same_file(all: &Path, merged: &Path, parts: &[PathBuf]) {
    let (a, m) = (std::fs::read(all).unwrap(), std::fs::read(merged).unwrap());
    let lines = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count();
    assert!(lines(&a) >= 30, "{}: too few rows to share: {}", all.display(), lines(&a));
    assert!(a == m, "{} differs from the unsharded {}", merged.display(), all.display());
    let shares: Vec<usize> = parts.iter().map(|p| lines(&std::fs::read(p).unwrap())).collect();
    assert_eq!(shares.iter().sum::<usize>(), lines(&a), "shard rows {shares:?} do not add up");
    assert!(shares.iter().all(|&n| n > 0 && n < lines(&a)), "every shard does a share: {shares:?}");
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn grade_metrics_and_rollouts_merge_into_the_unsharded_output() {
    let dir = tempfile::tempdir().unwrap();
    let (all, merged, parts) = run_both(
        &strings(&["grade", "--input", SUBMISSIONS, "--jobs", "1", "--example-timeout", QUICK]),
        "--output",
        dir.path(),
        "grade",
    );
    assert_same_file(&all, &merged, &parts);
    let (all, merged, parts) =
        run_both(&strings(&["metrics", "--input", EXAMPLES, "--jobs", "1"]), "--output", dir.path(), "metrics");
    assert_same_file(&all, &merged, &parts);
    // a stream is never split: every (student, problem) of a metrics shard is in that shard only
    let streams = |p: &Path| -> std::collections::BTreeSet<String> {
        common::json_lines(p).iter().map(|r| format!("{}/{}", r["student"], r["problem"])).collect()
    };
    let sets: Vec<_> = parts.iter().map(|p| streams(p)).collect();
    assert_eq!(sets.iter().map(|s| s.len()).sum::<usize>(), common::example_streams(), "streams split across shards");
    for mode in ["next-step", "stages", "stream"] {
        // --jobs 2 unsharded against --jobs 1 shards: the finished file does not depend on either
        let jobs = if mode == "stream" { "2" } else { "1" };
        let args = strings(&[
            "rollout",
            mode,
            "--input",
            EXAMPLES,
            "--train",
            EXAMPLES,
            "--seed",
            "7",
            "--jobs",
            jobs,
            "--example-timeout",
            QUICK,
        ]);
        let (all, merged, parts) = run_both(&args, "--out", dir.path(), mode);
        assert_same_file(&all, &merged, &parts);
    }
}

/// Real programs (Refactory's wrong ones, 3 to a stream in file order) through grade and metrics shards.
#[test]
fn real_refactory_programs_shard_and_merge() {
    let Some(refactory) = common::shared_data("refactory") else { return };
    let dir = tempfile::tempdir().unwrap();
    let problems = dir.path().join("problems");
    for problem in studentsim::problems::refactory::import(&refactory).unwrap() {
        std::fs::create_dir_all(problems.join(&problem.id)).unwrap();
        std::fs::write(problems.join(&problem.id).join("problem.toml"), problem.to_toml()).unwrap();
    }
    let programs =
        studentsim::problems::refactory::programs(&refactory, &[studentsim::problems::refactory::Verdict::Wrong])
            .unwrap();
    let mut submissions = String::new();
    let mut trajectories = String::new();
    for (i, program) in programs.iter().step_by(7).take(150).enumerate() {
        let code = std::fs::read_to_string(&program.path).unwrap();
        let row = serde_json::json!({"id": i, "problem": program.problem_id, "code": code});
        submissions += &format!("{row}\n");
        let time = jiff::Timestamp::from_second(1_700_000_000 + 60 * i as i64).unwrap();
        let row = serde_json::json!({"student": format!("r{}", i / 3), "problem": program.problem_id, "time": time.to_string(), "attempt": i % 3 + 1, "code": code});
        trajectories += &format!("{row}\n");
    }
    std::fs::write(dir.path().join("subs.jsonl"), submissions).unwrap();
    std::fs::write(dir.path().join("traj.jsonl"), trajectories).unwrap();
    let global = ["--problems", problems.to_str().unwrap()];
    let subs = dir.path().join("subs.jsonl");
    let args = strings(&[&global[..], &["grade", "--input", subs.to_str().unwrap(), "--jobs", "1"]].concat());
    let (all, merged, parts) = run_both(&args, "--output", dir.path(), "grade");
    assert_same_file(&all, &merged, &parts);
    let traj = dir.path().join("traj.jsonl");
    let args = strings(&[&global[..], &["metrics", "--input", traj.to_str().unwrap(), "--jobs", "1"]].concat());
    let (all, merged, parts) = run_both(&args, "--output", dir.path(), "metrics");
    assert_same_file(&all, &merged, &parts);
}

#[test]
fn score_shards_merge_into_the_unsharded_report() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim.jsonl");
    let out = common::studentsim(&[
        "rollout",
        "stream",
        "--input",
        EXAMPLES,
        "--train",
        EXAMPLES,
        "--example-timeout",
        QUICK,
        "--out",
        sim.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Real rows without labels, so the shards grade as well as embed; each side starts from an empty cache.
    let cache = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let sim = sim.to_str().unwrap();
    let base =
        ["score", "--real", EXAMPLES, "--sim", sim, "--jobs", "1", "--example-timeout", QUICK, "--embedding-cache"];
    let report = dir.path().join("report");
    let out = common::studentsim(&[&base[..], &[&cache("cache-one"), "--out", report.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let args = strings(&[&base[..], &[&cache("cache-shards")]].concat());
    let parts: Vec<PathBuf> = (1..=3).map(|k| dir.path().join(format!("score.part{k}"))).collect();
    let children: Vec<_> =
        parts.iter().zip(1..).map(|(part, k)| shard_command(&args, "--out", part, k).spawn().unwrap()).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    for part in &parts {
        let text = std::fs::read_to_string(part).unwrap();
        assert!(
            text.contains("\"grade\"") && text.contains("\"embedding\""),
            "{}: a shard grades and embeds",
            part.display()
        );
    }
    let merged = dir.path().join("merged");
    let files: Vec<&str> = parts.iter().map(|p| p.to_str().unwrap()).collect();
    let out = common::studentsim(&[&["merge", "--output", merged.to_str().unwrap()], &files[..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut names: Vec<_> = std::fs::read_dir(&report).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names.len(), 11, "metrics.json, report.md, report.html and 4 figures as SVG and PNG: {names:?}");
    for name in names {
        let (a, b) = (std::fs::read(report.join(&name)).unwrap(), std::fs::read(merged.join(&name)).unwrap());
        assert!(a == b, "{name:?}: the merged report differs from the unsharded one");
    }
}

#[test]
fn merge_refuses_shards_that_are_not_one_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let grade = |input: &str, out: &str, shard: &str, extra: &[&str]| {
        let out = common::studentsim(
            &[&["grade", "--input", input, "--output", out, "--shard", shard, "--jobs", "1"], extra].concat(),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    for k in 1..=3 {
        grade(SUBMISSIONS, &path(&format!("g{k}")), &format!("{k}/3"), &[]);
    }
    let other_input = path("other.jsonl");
    std::fs::write(
        &other_input,
        std::fs::read_to_string(SUBMISSIONS).unwrap().lines().take(10).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    grade(&other_input, &path("foreign3"), "3/3", &[]);
    grade(SUBMISSIONS, &path("tighter3"), "3/3", &["--memory-mib", "200"]);
    grade(SUBMISSIONS, &path("of4"), "3/4", &[]);
    std::fs::write(path("bare"), "{}\n").unwrap();
    std::fs::copy(path("g3"), path("edited3")).unwrap();
    std::fs::copy(path("g3.shard.json"), path("edited3.shard.json")).unwrap();
    std::fs::write(path("edited3"), std::fs::read_to_string(path("g3")).unwrap().replace("no_error", "logical"))
        .unwrap();

    let merged = dir.path().join("merged.jsonl");
    let merge = |shards: &[&str]| {
        let shards: Vec<String> = shards.iter().map(|s| path(s)).collect();
        let refs: Vec<&str> = shards.iter().map(String::as_str).collect();
        common::studentsim(&[&["merge", "--output", merged.to_str().unwrap()], &refs[..]].concat())
    };
    common::bad_input(&merge(&["g1", "g2"]), &["shard 3/3 missing", "got 2 of 3"], Some(&merged));
    common::bad_input(&merge(&["g1", "g2", "g2"]), &["g2", "shard 2/3 again"], Some(&merged));
    common::bad_input(&merge(&["g1", "g2", "foreign3"]), &["foreign3", "another input"], Some(&merged));
    common::bad_input(&merge(&["g1", "g2", "tighter3"]), &["tighter3", "other settings"], Some(&merged));
    common::bad_input(&merge(&["g1", "g2", "of4"]), &["of4", "one of 4 shards, not 3"], Some(&merged));
    common::bad_input(
        &merge(&["g1", "g2", "edited3"]),
        &["edited3", "changed since its shard finished"],
        Some(&merged),
    );
    common::bad_input(&merge(&["g1", "g2", "bare"]), &["bare", "no shard manifest"], Some(&merged));
    // the whole run merges
    assert!(merge(&["g1", "g2", "g3"]).status.success());
    // --shard checks its value, and auto needs a scheduler's index
    let out = common::studentsim(&["grade", "--input", SUBMISSIONS, "--output", &path("x"), "--shard", "4/3"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("numbered 1 to 3"));
}
