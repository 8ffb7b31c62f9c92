//! The `studentsim` binary end to end: output shapes, exit codes, and one-line errors for bad input.

use crate::common;

use common::{bad_input, studentsim, studentsim_dev};

use std::path::Path;
use std::process::{Command, Output};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn grade_files_prints_one_line_each_and_json_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.py");
    let bad = dir.path().join("bad.py");
    std::fs::write(&good, "def sum_digits(n):\n    return sum(int(d) for d in str(n))\n").unwrap();
    std::fs::write(&bad, "def sum_digits(n):\n    return n\n").unwrap();
    let out =
        studentsim(&["grade", "--terse", "--problem", "sum-digits", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].ends_with("good.py: no_error 4/4"), "{text}");
    assert!(lines[1].ends_with("bad.py: logical 2/4"), "{text}");

    // without --terse, each failing example as doctest reports it
    let out = studentsim(&["grade", "--problem", "sum-digits", good.to_str().unwrap(), bad.to_str().unwrap()]);
    let text = stdout(&out);
    let report: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(
        report[..6],
        [
            "    Failed example (line 6 of the problem):",
            "        sum_digits(123)",
            "    Expected:",
            "        6",
            "    Got:",
            "        123"
        ],
        "{text}"
    );
    assert_eq!(report.len(), 12, "two failing examples, six lines each: {text}");

    let out = studentsim(&["grade", "--json", "-p", "sum-digits", bad.to_str().unwrap()]);
    let record: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(record["label"], "logical");
    assert_eq!(record["examples"].as_array().unwrap().len(), 4);
    assert_eq!(record["examples"][1]["got"], "123\n");
}

#[test]
fn grade_jsonl_writes_rows_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out/results.jsonl");
    let out = studentsim(&[
        "grade",
        "--input",
        "examples/submissions.jsonl",
        "--output",
        output.to_str().unwrap(),
        "--jobs",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let input = std::fs::read_to_string("examples/submissions.jsonl").unwrap();
    let results = std::fs::read_to_string(&output).unwrap();
    assert_eq!(input.lines().count(), results.lines().count());
    let mut labels = std::collections::BTreeSet::new();
    for (i, r) in input.lines().zip(results.lines()) {
        let i: serde_json::Value = serde_json::from_str(i).unwrap();
        let r: serde_json::Value = serde_json::from_str(r).unwrap();
        assert_eq!(i["id"], r["id"]);
        for key in ["problem", "label", "reason", "pass_rate", "passed", "total", "examples"] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        labels.insert(r["label"].as_str().unwrap().to_owned());
    }
    assert_eq!(labels.len(), 4, "the example set shows every label: {labels:?}");
}

#[test]
fn bad_jsonl_rows_name_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("results.jsonl");
    let cases: [(&str, &[&str]); 5] = [
        (
            "{\"id\": 1, \"problem\": \"sum-digits\", \"code\": \"x\"}\n{\"id\": 2, \"problem\": \"sum-digits\"\n",
            &["subs.jsonl:2:", "malformed"],
        ),
        ("{\"id\": 1, \"problem\": \"sum-digits\"}\n", &["subs.jsonl:1:", "missing field `code`"]),
        (
            "{\"id\": 1, \"problem\": \"sum-digits\", \"code\": \"x\"}\n\n{\"id\": 1, \"problem\": \"factorial\", \"code\": \"y\"}\n",
            &["subs.jsonl:3:", "duplicate id 1 (first on line 1)"],
        ),
        (
            "{\"id\": \"a\", \"problem\": \"no-such-problem\", \"code\": \"x\"}\n",
            &["subs.jsonl:1:", "unknown problem `no-such-problem`"],
        ),
        ("{\"id\": [1], \"problem\": \"sum-digits\", \"code\": \"x\"}\n", &["subs.jsonl:1:", "`id` must be"]),
    ];
    for (text, needles) in cases {
        let input = dir.path().join("subs.jsonl");
        std::fs::write(&input, text).unwrap();
        let out = studentsim(&["grade", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()]);
        bad_input(&out, needles, Some(&output));
    }
    let input = dir.path().join("subs.jsonl");
    std::fs::write(&input, b"{\"id\": 1, \"problem\": \"sum-digits\", \"code\": \"\xff\"}\n").unwrap();
    let out = studentsim(&["grade", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()]);
    bad_input(&out, &["subs.jsonl:1:", "UTF-8"], Some(&output));
}

#[test]
fn bad_files_and_ids_are_one_line_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = studentsim(&["grade", "--problem", "no-such", "examples/submissions.jsonl"]);
    bad_input(&out, &["unknown problem `no-such`"], None);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("did you mean"), "nothing is near `no-such`");
    let out = studentsim(&["grade", "--problem", "count-vowel", "examples/submissions.jsonl"]);
    bad_input(&out, &["unknown problem `count-vowel` (did you mean `count-vowels`? registry"], None);

    let out = studentsim(&["grade", "--input", "missing.jsonl", "--output", dir.path().join("o").to_str().unwrap()]);
    bad_input(&out, &["missing.jsonl", "cannot read"], Some(&dir.path().join("o")));
}

/// `demo` checks its data before it starts: a `--data` folder without problems, or a `--problems` folder that is not
/// there, is one line, exit 2 and no output folder.
#[test]
fn demo_with_missing_data_is_one_line_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let out = dir.path().join("demo");
    let result = studentsim(&["demo", "--data", missing.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    bad_input(&result, &["nowhere/problems: not found", "--data needs"], Some(&out));

    let result = studentsim(&["--problems", missing.to_str().unwrap(), "demo", "--out", out.to_str().unwrap()]);
    bad_input(&result, &["nowhere: not found", "--problems needs a folder"], Some(&out));
}

/// A timeout of zero seconds would fail every request at once: it is refused before anything runs.
#[test]
fn zero_timeouts_are_one_line_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("streams.jsonl");
    let args = ["rollout", "stream", "--input", "examples/trajectories.jsonl", "--out", out.to_str().unwrap()];
    let result =
        studentsim(&[&args[..], &["--generator", "openai", "--model", "m", "--request-timeout", "0"]].concat());
    bad_input(&result, &["--request-timeout: 0 is not a positive number of seconds"], Some(&out));

    let result =
        studentsim(&[&args[..], &["--generator", "copy-last", "--tutor", "cat", "--tutor-timeout", "0"]].concat());
    bad_input(&result, &["--tutor-timeout: 0 is not a positive number of seconds"], Some(&out));
}

#[test]
fn missing_runtime_names_the_setup_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_studentsim"))
        .args(["grade", "--problem", "sum-digits", "examples/submissions.jsonl"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("STUDENTSIM_RUNTIME_DIR", dir.path())
        .output()
        .unwrap();
    bad_input(&out, &["runtime not found", "runtimes/setup.sh"], None);
}

/// One broken `problem.toml` makes that problem unavailable, never the registry: the others list and grade (with a
/// warning that names the file, line and column), and asking for the broken one is one line and exit 2.
#[test]
fn a_broken_manifest_leaves_the_other_problems_usable() {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().to_str().unwrap();
    for id in ["sum-digits", "count-vowels", "dedupe"] {
        let from = Path::new("problems").join(id).join("problem.toml");
        std::fs::create_dir(dir.path().join(id)).unwrap();
        std::fs::copy(from, dir.path().join(id).join("problem.toml")).unwrap();
    }
    let typo = dir.path().join("count-vowels/problem.toml");
    let text = std::fs::read_to_string(&typo).unwrap().replacen("statement =", "statment =", 1);
    let typo_line = text.lines().position(|l| l.starts_with("statment")).unwrap() + 1;
    std::fs::write(&typo, text).unwrap();
    // a Latin-1 byte on line 2, column 13
    std::fs::write(dir.path().join("dedupe/problem.toml"), b"id = \"dedupe\"\ntitle = \"caf\xe9\"\n").unwrap();

    let out = studentsim(&["--problems", reg, "problems", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "only sum-digits is listed: {}", stdout(&out));
    assert!(stdout(&out).starts_with("sum-digits"), "{}", stdout(&out));
    let warned = stderr(&out);
    assert!(
        warned.contains(&format!("count-vowels/problem.toml:{typo_line}:1: unknown field `statment`"))
            && warned.contains("dedupe/problem.toml:2:13: not valid UTF-8 (byte 26)"),
        "each broken manifest is a warning with its location: {warned}"
    );

    let good = dir.path().join("good.py");
    std::fs::write(&good, "def sum_digits(n):\n    return sum(int(d) for d in str(n))\n").unwrap();
    let out = studentsim(&["--problems", reg, "grade", "-p", "sum-digits", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).ends_with("good.py: no_error 4/4\n"), "{}", stdout(&out));

    // Asking for a broken problem: exit 2, its error as one line, and a warning only about the other broken one.
    let asked = |id: &str, other: &str| {
        let out = studentsim(&["--problems", reg, "grade", "-p", id, good.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(out.stdout.is_empty(), "nothing graded: {}", stdout(&out));
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines[0].starts_with("warning: ") && lines[0].contains(&format!("{other}/problem.toml")), "{err}");
        assert!(lines[1].starts_with(&format!("error: problem `{id}` is unavailable: ")), "{err}");
        lines[1].to_owned()
    };
    assert!(
        asked("count-vowels", "dedupe").contains(&format!("count-vowels/problem.toml:{typo_line}:1: unknown field"))
    );
    assert!(asked("dedupe", "count-vowels").contains("dedupe/problem.toml:2:13: not valid UTF-8 (byte 26)"));

    // `problems check` still fails on them, one FAIL line each
    let out = studentsim(&["--problems", reg, "problems", "check", "count-vowels", "dedupe"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("FAIL  count-vowels") && text.contains("FAIL  dedupe"), "{text}");
    assert!(text.contains("0 of 2 problems pass the check"), "{text}");
}

/// A batch of files grades every file it can read: a Latin-1 file is `compile` with CPython's own SyntaxError
/// (its line), one with a coding declaration is decoded as CPython decodes it, an empty file is graded, and an
/// unreadable one is a line of its own; the exit status is 2 at the end.
#[test]
fn one_bad_file_does_not_stop_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let solution = "def sum_digits(n):\n    return sum(int(d) for d in str(n))\n";
    let good = write("good.py", solution.as_bytes());
    let latin1 = write("latin1.py", b"def sum_digits(n):\n    # caf\xe9\n    return n\n");
    let declared = write("declared.py", format!("# -*- coding: latin-1 -*-\n# caf\u{e9}\n{solution}").as_bytes());
    let declared = {
        // the same text with é as one Latin-1 byte
        let bytes: Vec<u8> = std::fs::read_to_string(&declared).unwrap().chars().map(|c| c as u8).collect();
        std::fs::write(&declared, bytes).unwrap();
        declared
    };
    let empty = write("empty.py", b"");
    let missing = dir.path().join("missing.py").to_str().unwrap().to_owned();
    let folder = dir.path().join("folder.py");
    std::fs::create_dir(&folder).unwrap();
    let folder = folder.to_str().unwrap().to_owned();
    let files = [&good, &latin1, &missing, &declared, &empty, &folder];
    let mut args = vec!["grade", "--terse", "-p", "sum-digits"];
    args.extend(files.iter().map(|f| f.as_str()));
    let out = studentsim(&args);
    assert_eq!(out.status.code(), Some(2), "exit 2 once every file is done: {}", stderr(&out));
    assert_eq!(stderr(&out).trim_end(), "error: 2 of 6 files could not be read (see their lines above)");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(lines[0], format!("{good}: no_error 4/4"));
    assert_eq!(lines[1], format!("{latin1}: compile 0/4 (SyntaxError)"));
    assert!(lines[2].starts_with(&format!("{missing}: cannot read (No such file")), "{text}");
    assert_eq!(lines[3], format!("{declared}: no_error 4/4"), "decoded by its coding declaration");
    assert_eq!(lines[4], format!("{empty}: runtime 0/4 (NameError)"));
    assert!(lines[5].starts_with(&format!("{folder}: cannot read (")), "{text}");

    // the report under a compile error names its line
    let out = studentsim(&["grade", "-p", "sum-digits", &latin1]);
    assert!(
        stdout(&out).contains("\n    line 2: SyntaxError: Non-UTF-8 code starting with '\\xe9'"),
        "{}",
        stdout(&out)
    );

    let out = studentsim(&["grade", "--json", "-p", "sum-digits", &latin1, &missing]);
    assert_eq!(out.status.code(), Some(2));
    let rows: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        rows[0]["message"],
        format!(
            "SyntaxError: Non-UTF-8 code starting with '\\xe9' in file {latin1} on line 2, but no encoding declared; \
             see https://peps.python.org/pep-0263/ for details\n"
        )
    );
    assert_eq!(rows[0]["examples"].as_array().unwrap().len(), 4, "every example is there, not run");
    assert_eq!(rows[0]["line"], 2);
    assert!(rows[1]["error"].as_str().unwrap().starts_with("cannot read: No such file"), "{}", rows[1]);
}

#[test]
fn bundled_problems_pass_the_check() {
    let out = studentsim(&["problems", "check"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let ok = text.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(ok >= 12, "{text}");
}

#[test]
fn problems_list_and_show() {
    let out = studentsim(&["problems", "list"]);
    assert!(stdout(&out).lines().any(|l| l.starts_with("bank-account ")), "{}", stdout(&out));
    let out = studentsim(&["problems", "show", "bank-account"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("6 doctest examples"), "{text}");
}

#[test]
fn new_problem_scaffold_passes_check_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().to_str().unwrap();
    let out = studentsim(&["--problems", reg, "problems", "new", "my-problem"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = studentsim(&["--problems", reg, "problems", "check"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = studentsim(&["--problems", reg, "problems", "new", "my-problem"]);
    bad_input(&out, &["already exists"], None);
}

/// `--calibrate` times the reference solution and writes `[limits] example_timeout` into problem.toml, keeping
/// the file's own text; a solution slower than a limit set by hand fails the check with the way out.
#[test]
fn check_calibrates_a_per_example_limit_and_keeps_the_manifest_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().to_str().unwrap();
    assert!(studentsim(&["--problems", reg, "problems", "new", "timed"]).status.success());
    let path = dir.path().join("timed/problem.toml");
    let written = format!("# my own comment\n{}", std::fs::read_to_string(&path).unwrap());
    std::fs::write(&path, &written).unwrap();
    let out = studentsim(&["--problems", reg, "problems", "check", "--calibrate"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("suggested limit 0.050 s (set: none)"),
        "a fast solution gets the 50 ms floor: {}",
        stdout(&out)
    );
    let calibrated = std::fs::read_to_string(&path).unwrap();
    assert!(calibrated.starts_with(&written), "the manifest's own text is kept:\n{calibrated}");
    assert!(calibrated.ends_with("\n[limits]\nexample_timeout = 0.05\n"), "{calibrated}");
    let out = studentsim(&["--problems", reg, "problems", "check"]);
    assert!(stdout(&out).contains("(set: 0.050 s)"), "{}", stdout(&out));

    // A reference solution that takes 0.3 s per example, under a 0.1 s limit set by hand.
    let slow = calibrated
        .replace("example_timeout = 0.05", "example_timeout = 0.1")
        .replace("return x + 1", "import time\n    time.sleep(0.3)\n    return x + 1");
    std::fs::write(&path, slow).unwrap();
    let out = studentsim(&["--problems", reg, "problems", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("runs past the problem's own limit (limits.example_timeout = 0.100 s)"),
        "{}",
        stdout(&out)
    );
    let out = studentsim(&["--problems", reg, "problems", "check", "--calibrate"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let limit: f64 = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("example_timeout = ")?.parse().ok())
        .unwrap();
    assert!(
        (6.0..=2.0 * 6.0).contains(&limit) || limit == 2.0,
        "20× a 0.3 s example, capped at --example-timeout 2 s: {limit}"
    );
}

#[test]
fn check_fails_for_a_broken_problem() {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().to_str().unwrap();
    assert!(studentsim(&["--problems", reg, "problems", "new", "broken"]).status.success());
    let path = dir.path().join("broken/problem.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace("return x + 1", "return x + 2");
    std::fs::write(&path, text).unwrap();
    let out = studentsim(&["--problems", reg, "problems", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAIL  broken"), "{}", stdout(&out));
}

#[test]
fn refactory_import_gives_problems_that_pass_the_check() {
    let Some(data) = common::shared_data("refactory") else { return };
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().to_str().unwrap();
    let out = studentsim(&["problems", "import", "refactory", data.to_str().unwrap(), "--into", reg]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = studentsim(&["--problems", reg, "problems", "check"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(stdout(&out).lines().filter(|l| l.starts_with("ok ")).count(), 5);
}

#[test]
fn import_refuses_to_run_without_a_salt() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nc");
    let output = Command::new(env!("CARGO_BIN_EXE_studentsim"))
        .args(["import", "newcaledonia", "../shared/data/newcaledonia", "--out", out.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("STUDENTSIM_SALT")
        .output()
        .unwrap();
    bad_input(&output, &["refusing to import without an anonymization salt", "--salt-file"], Some(&out));
}

#[test]
fn split_writes_three_sets_and_rejects_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("t.jsonl");
    let mut text = String::new();
    for s in 0..10 {
        for p in 0..5 {
            text.push_str(&format!(
                "{{\"student\":\"s{s}\",\"problem\":\"p{p}\",\"time\":\"2020-01-01T00:00:0{p}Z\",\"attempt\":1,\"code\":\"x\"}}\n"
            ));
        }
    }
    std::fs::write(&input, &text).unwrap();
    let out = dir.path().join("split");
    let run = studentsim(&["split", "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--seed", "3"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let lines = |name: &str| std::fs::read_to_string(out.join(name)).unwrap().lines().count();
    assert_eq!((lines("train.jsonl"), lines("ns_op.jsonl"), lines("ns_np.jsonl")), (32, 8, 2));

    std::fs::write(&input, text.replacen("\"attempt\":1", "\"attempt\":\"one\"", 1)).unwrap();
    let out2 = dir.path().join("split2");
    let run = studentsim(&["split", "--input", input.to_str().unwrap(), "--out", out2.to_str().unwrap()]);
    bad_input(&run, &["t.jsonl:1:", "attempt"], Some(&out2));
    std::fs::write(&input, text.replacen(",\"code\":\"x\"", "", 1)).unwrap();
    let run = studentsim(&["split", "--input", input.to_str().unwrap(), "--out", out2.to_str().unwrap()]);
    bad_input(&run, &["t.jsonl:1:", "missing field `code`"], Some(&out2));
}

#[test]
fn metrics_writes_features_and_stream_edit_distances() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.jsonl");
    let rows = [(2, "x = 1\n"), (1, "x=1"), (3, "def f(x):\n    return x+1")];
    let text: String = rows
        .iter()
        .map(|(attempt, code)| {
            serde_json::json!({"student": "s1", "problem": "p", "time": format!("2020-01-01T00:00:0{attempt}Z"),
                "attempt": attempt, "code": code})
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&input, text).unwrap();
    let output = dir.path().join("out.jsonl");
    let run = studentsim(&["metrics", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));
    let out: Vec<serde_json::Value> =
        std::fs::read_to_string(&output).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let get = |i: usize, k: &str| out[i][k].as_i64().unwrap();
    // Row order is kept; edit distance follows the stream's time order (attempt 1, 2, 3).
    assert_eq!((get(0, "edit_distance"), get(1, "edit_distance"), get(2, "edit_distance")), (3, 0, 21));
    assert_eq!((get(0, "ast_depth"), get(0, "ast_width"), get(0, "ast_nodes")), (3, 2, 5));
    assert_eq!((get(2, "ast_depth"), get(2, "ast_width"), get(2, "ast_nodes")), (5, 3, 10));
    assert_eq!((get(1, "pep8"), get(1, "lines"), get(1, "chars")), (2, 1, 3), "E225 + W292");
    assert_eq!(out[0]["code"], "x = 1\n");

    std::fs::write(&input, "{\"student\": \"s1\"}\n").unwrap();
    let output2 = dir.path().join("out2.jsonl");
    let run = studentsim(&["metrics", "--input", input.to_str().unwrap(), "--output", output2.to_str().unwrap()]);
    bad_input(&run, &["rows.jsonl:1:", "missing field"], Some(&output2));
}

/// `leaderboard` on the bundled examples: one leaderboard per split and mode with the four weight-free
/// generators, values that say what they claim (copy-last never changes the last real attempt, the reference
/// always passes), closest picks that follow the values, the score reports beside them, a tutor's hints given
/// to every stream generator (none of which reads them), and the same numbers under the same seed.
#[test]
fn leaderboard_ranks_the_weight_free_generators_on_the_bundled_examples() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let out = dir.path().join(name);
        let result = studentsim(&[
            "leaderboard",
            "--out",
            out.to_str().unwrap(),
            "--tutor",
            "echo 'Look at the failing example again.'",
        ]);
        assert!(result.status.success(), "{}", stderr(&result));
        assert!(stdout(&result).contains("### ns_op, next-k3-context"), "{}", stdout(&result));
        (out.clone(), std::fs::read_to_string(out.join("leaderboards.json")).unwrap())
    };
    let (out, first) = run("a");
    let boards: Vec<serde_json::Value> = serde_json::from_str(&first).unwrap();
    let titles: Vec<&str> = boards.iter().map(|b| b["title"].as_str().unwrap().split(':').next().unwrap()).collect();
    let modes = ["next-k1", "next-k1-context", "next-k3", "next-k3-context", "stream"];
    let want: Vec<String> =
        ["ns_op", "ns_np"].iter().flat_map(|s| modes.iter().map(move |m| format!("{s}, {m}"))).collect();
    assert_eq!(titles, want);
    for board in &boards {
        assert_eq!(board["generators"], serde_json::json!(["copy-last", "reference", "retrieval", "edits"]));
        let measure = |name: &str| board["measures"].as_array().unwrap().iter().find(|m| m["name"] == name).cloned();
        for m in board["measures"].as_array().unwrap() {
            let values: Vec<Option<f64>> =
                m["values"].as_array().unwrap().iter().map(serde_json::Value::as_f64).collect();
            let badness = |v: f64| match m["goal"].as_str().unwrap() {
                "match_real" => (v - m["real"].as_f64().unwrap()).abs(),
                "lowest" => v,
                _ => -v,
            };
            let best = values.iter().flatten().map(|&v| badness(v)).min_by(f64::total_cmp);
            let closest: Vec<&str> = m["closest"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
            let want: Vec<&str> = ["copy-last", "reference", "retrieval", "edits"]
                .into_iter()
                .zip(&values)
                .filter(|(_, v)| v.zip(best).is_some_and(|(v, b)| badness(v) - b <= 1e-9))
                .map(|(g, _)| g)
                .collect();
            assert_eq!(closest, want, "{}: {}", board["title"], m["name"]);
        }
        if let Some(unchanged) = measure("unchanged share") {
            assert_eq!(unchanged["values"][0], 1.0, "copy-last repeats the last real attempt: {}", board["title"]);
            assert_eq!(
                measure("pass rate mean").unwrap()["values"][1],
                1.0,
                "the reference passes: {}",
                board["title"]
            );
        } else {
            assert_eq!(
                measure("attempts mean").unwrap()["values"][1],
                1.0,
                "the reference passes at once: {}",
                board["title"]
            );
            assert_eq!(
                board["hint_blind"], board["generators"],
                "no weight-free generator reads hints: {}",
                board["title"]
            );
        }
    }
    // The tutor's effect on each stream generator: its hints were given (copy-last never passes, so it gets one
    // after every attempt but the last) and changed nothing.
    let tutor: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("tutor.json")).unwrap()).unwrap();
    assert_eq!(tutor.len(), 2, "one per split");
    for split in &tutor {
        let copy_last = &split["generators"][0];
        assert_eq!(copy_last["generator"], "copy-last");
        assert_eq!(copy_last["hints"].as_u64().unwrap(), 9 * copy_last["streams"].as_u64().unwrap(), "{split}");
        assert_eq!(copy_last["pass_curve_shift"], 0.0);
    }
    assert!(out.join("ns_op/next-k3-context/report/metrics.json").is_file());
    assert!(out.join("ns_np/stream/edits.jsonl").is_file());
    let (_, second) = run("b");
    let differ = first.lines().zip(second.lines()).find(|(a, b)| a != b);
    assert!(differ.is_none() && first.len() == second.len(), "the same seed gives the same leaderboards: {differ:?}");

    let missing = dir.path().join("nowhere");
    let out = dir.path().join("c");
    let result = studentsim(&["leaderboard", "--data", missing.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    bad_input(&result, &["nowhere/problems: not found"], Some(&out));
}

/// `studentsim-dev bench edits --json` on the bundled examples: one JSON object whose figures add up, with its ratios; a
/// `--data` folder without the files is one line and exit 2.
#[test]
fn bench_edits_prints_one_json_object_with_its_ratios() {
    let result = studentsim_dev(&["bench", "edits", "--json"]);
    assert!(result.status.success(), "{}", stderr(&result));
    let figures: serde_json::Value = serde_json::from_str(stdout(&result).trim()).expect("one JSON object on stdout");
    let steps = figures["next_steps"].as_f64().unwrap();
    assert!(steps > 0.0, "{figures}");
    let (seconds, grading) =
        (figures["edits"]["seconds"].as_f64().unwrap(), figures["edits"]["grading_seconds"].as_f64().unwrap());
    assert!(grading > 0.0 && grading < seconds, "the edit model grades its candidates, inside its own time: {figures}");
    let rate = figures["edits"]["next_steps_per_s_excluding_grading"].as_f64().unwrap();
    assert!((rate - steps / (seconds - grading)).abs() < 1e-6 * rate, "{figures}");
    let ratio = figures["ratios"]["edits_vs_retrieval"].as_f64().unwrap();
    assert!(
        (ratio - rate / figures["retrieval"]["next_steps_per_s"].as_f64().unwrap()).abs() < 1e-9 * ratio,
        "{figures}"
    );

    let dir = tempfile::tempdir().unwrap();
    let result = studentsim_dev(&["bench", "edits", "--data", dir.path().join("nowhere").to_str().unwrap()]);
    bad_input(&result, &["nowhere/problems: not found"], None);
}

/// A user's own fields survive every command that writes rows (`metrics`, `split`, `rollout`), unchanged; a
/// field that looks like a misspelt known one is kept too, with one warning naming the field meant.
#[test]
fn rows_keep_their_own_fields_and_misspelt_ones_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.jsonl");
    let mut text = String::new();
    for (i, mut row) in common::example_rows().into_iter().enumerate() {
        row["id"] = serde_json::json!(format!("row-{i}"));
        row["course"] = serde_json::json!({"term": "2024", "section": i % 3});
        if i < 2 {
            row["lable"] = serde_json::json!("logical");
            row["lines"] = serde_json::json!(999);
        }
        text.push_str(&(row.to_string() + "\n"));
    }
    std::fs::write(&input, &text).unwrap();
    let key = |r: &serde_json::Value| (r["student"].to_string(), r["problem"].to_string(), r["attempt"].to_string());
    let by_key: std::collections::HashMap<_, serde_json::Value> =
        common::json_lines(&input).into_iter().map(|r| (key(&r), r)).collect();
    let kept = |file: &Path, what: &str| {
        let rows = common::json_lines(file);
        assert!(!rows.is_empty(), "{what}: no rows");
        for row in &rows {
            let original = &by_key[&key(row)];
            assert_eq!((&row["id"], &row["course"]), (&original["id"], &original["course"]), "{what}: {row}");
        }
        rows
    };

    let out = dir.path().join("metrics.jsonl");
    let run = studentsim(&["metrics", "--input", input.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));
    let warning = "unknown field `lable` kept as is; did you mean `label`?";
    assert_eq!(stderr(&run).matches(warning).count(), 1, "one warning: {}", stderr(&run));
    assert!(!stderr(&run).contains("`id`") && !stderr(&run).contains("`course`"), "{}", stderr(&run));
    let rows = kept(&out, "metrics");
    assert_eq!(rows[0]["lable"], "logical", "the misspelt field is kept");
    let first_line = std::fs::read_to_string(&out).unwrap().lines().next().unwrap().to_owned();
    assert_eq!(
        first_line.matches("\"lines\"").count(),
        1,
        "a column metrics writes replaces the row's own: {first_line}"
    );
    assert_ne!(rows[0]["lines"], 999);

    let split = dir.path().join("split");
    let run = studentsim(&["split", "--input", input.to_str().unwrap(), "--out", split.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));
    for part in ["train", "ns_op", "ns_np"] {
        kept(&split.join(format!("{part}.jsonl")), part);
    }

    let sims = dir.path().join("sims.jsonl");
    let run = studentsim(&[
        "rollout",
        "next-step",
        "--input",
        input.to_str().unwrap(),
        "--generator",
        "copy-last",
        "--out",
        sims.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    kept(&sims, "rollout next-step");

    let submissions = dir.path().join("submissions.jsonl");
    std::fs::write(&submissions, "{\"id\": 1, \"problem\": \"sum-digits\", \"code\": \"def sum_digits(n):\\n    return 0\\n\", \"section\": \"A\", \"label\": \"mine\"}\n").unwrap();
    let graded = dir.path().join("graded.jsonl");
    let run = studentsim(&["grade", "--input", submissions.to_str().unwrap(), "--output", graded.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));
    let line = std::fs::read_to_string(&graded).unwrap();
    let row: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!((&row["section"], &row["label"]), (&serde_json::json!("A"), &serde_json::json!("logical")), "{row}");
    assert_eq!(line.matches("\"label\"").count(), 1, "the grade's label replaces the row's own: {line}");
}

/// `studentsim-dev fuzz` with a small count, as CI runs it: every parser of a user's files sees mutated inputs, refuses many,
/// accepts some, and never panics or hangs (the full run, 100,000 cases per parser, is in the closing notes).
#[test]
fn fuzzing_every_parser_finds_no_panic_or_hang() {
    let run = studentsim_dev(&["fuzz", "--cases", "300", "--seed", "7", "--json"]);
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    let tallies: serde_json::Value = serde_json::from_str(stdout(&run).trim()).unwrap();
    let parsers = tallies.as_object().unwrap();
    let names = [
        "jsonl-row",
        "problem-toml",
        "python-literal",
        "model-reply",
        "tutor-reply",
        "qwen-config",
        "progsnap2-table",
        "adapter-config",
        "adapter-weights",
        "model-safetensors",
        "gguf",
    ];
    assert_eq!(parsers.len(), names.len(), "one tally per parser: {tallies}");
    for name in names {
        let t = &parsers[name];
        assert_eq!(
            (t["cases"].as_u64(), t["panics"].as_u64(), t["hangs"].as_u64()),
            (Some(300), Some(0), Some(0)),
            "{name}: {t}"
        );
        assert!(
            t["refused"].as_u64().unwrap() > 0 && t["accepted"].as_u64().unwrap() > 0,
            "{name}: the mutations reach both outcomes: {t}"
        );
    }
    let run = studentsim_dev(&["fuzz", "--only", "nothing-by-that-name"]);
    bad_input(&run, &["--only"], None);
}

/// Hidden examples and points: graded and scored, never shown. The plain line and every JSON output carry their
/// outcome and points but not their code or expected output, unless course staff ask with --reveal-hidden (which
/// shows that the check below would see a leak); `problems show` and `check` keep them too.
#[test]
fn hidden_examples_count_but_never_show() {
    let registry = common::hidden_registry();
    let reg = registry.path().to_str().unwrap();
    let out = studentsim(&["--problems", reg, "problems", "check"]);
    assert!(out.status.success(), "the reference gets full marks: {}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("ok    count-vowels             6 examples"), "{}", stdout(&out));

    let file = registry.path().join("hard-coded.py");
    std::fs::write(&file, common::HARD_CODED_VOWELS).unwrap();
    let file = file.to_str().unwrap();
    let out = studentsim(&["--problems", reg, "grade", "-p", "count-vowels", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{file}: logical 4/6; hidden 0/2; score 2/5\n    2 of 2 hidden examples failed\n")
    );

    let out = studentsim(&["--problems", reg, "grade", "--json", "-p", "count-vowels", file]);
    let text = stdout(&out);
    assert!(!text.contains(common::HIDDEN_MARKER), "grade --json leaks a hidden example: {text}");
    let record: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!((record["score"].as_f64(), record["max_score"].as_f64()), (Some(2.0), Some(5.0)));
    let hidden: Vec<&serde_json::Value> =
        record["examples"].as_array().unwrap().iter().filter(|e| e["hidden"] == true).collect();
    assert_eq!(hidden.len(), 2, "{text}");
    for example in hidden {
        assert_eq!(
            (&example["outcome"], &example["group"], &example["points"]),
            (&"fail".into(), &"edge cases".into(), &1.5.into())
        );
        assert_eq!((&example["source"], &example["want"], &example["got"]), (&"".into(), &"".into(), &"".into()));
    }
    assert_eq!(record["examples"][0]["points"], 0.5, "2 points over 4 visible examples");

    let revealed = studentsim(&["--problems", reg, "grade", "--json", "--reveal-hidden", "-p", "count-vowels", file]);
    assert!(stdout(&revealed).contains(common::HIDDEN_MARKER), "--reveal-hidden shows them to staff");

    let input = registry.path().join("in.jsonl");
    let output = registry.path().join("out.jsonl");
    let row = serde_json::json!({"id": 1, "problem": "count-vowels", "code": common::HARD_CODED_VOWELS});
    std::fs::write(&input, format!("{row}\n")).unwrap();
    let out = studentsim(&[
        "--problems",
        reg,
        "grade",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = std::fs::read_to_string(&output).unwrap();
    assert!(!written.contains(common::HIDDEN_MARKER), "grade --output leaks a hidden example: {written}");
    assert!(written.contains("\"score\":2.0") && written.contains("\"max_score\":5.0"), "{written}");

    let out = studentsim(&["--problems", reg, "problems", "show", "count-vowels"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains(common::HIDDEN_MARKER), "problems show leaks: {}", stdout(&out));
    assert!(stdout(&out).contains("2 hidden examples"), "{}", stdout(&out));
}

/// A submission can read a hidden example's code off the stack (the guest runs it), but not get it out: the
/// class name it raises is the only text of a hidden example's record it chooses, and a concealed record names
/// only built-in classes (before, the name below carried the hidden code into every output).
#[test]
fn a_hidden_examples_code_cannot_leave_through_an_exception_name() {
    let registry = common::hidden_registry();
    let reg = registry.path().to_str().unwrap();
    let file = registry.path().join("reads-the-stack.py");
    std::fs::write(
        &file,
        "import sys
def count_vowels(s):
    f = sys._getframe(1)
    while f is not None:
        source = f.f_locals.get('source')
        if isinstance(source, str):
            raise type('Leak ' + source.strip(), (Exception,), {})()
        f = f.f_back
    return 0
",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let revealed = studentsim(&["--problems", reg, "grade", "--json", "--reveal-hidden", "-p", "count-vowels", file]);
    assert!(stdout(&revealed).contains(common::HIDDEN_MARKER), "the attack reads the hidden code (staff see it)");
    for args in [&["grade", "--json"][..], &["grade"][..]] {
        let out = studentsim(&[&["--problems", reg][..], args, &["-p", "count-vowels", file][..]].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stdout(&out).contains(common::HIDDEN_MARKER), "{args:?} leaks a hidden example: {}", stdout(&out));
    }
    let out = studentsim(&["--problems", reg, "grade", "--json", "-p", "count-vowels", file]);
    let record: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    for example in record["examples"].as_array().unwrap() {
        let expected = if example["hidden"] == true { "Exception" } else { "Leak" };
        let name = example["exception"].as_str().unwrap_or_default();
        assert!(name.starts_with(expected), "an example names {name:?}: {record:#}");
    }
}

/// A CS 61A-style homework file (our fixture) becomes one problem per function or class with doctests; those with
/// a solution pass `problems check`, the one without is a FAIL that says so, and a second import refuses to
/// overwrite. A file with no doctests is one line, exit 2.
#[test]
fn a_homework_file_imports_as_problems_that_pass_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("reg");
    let into_arg = into.to_str().unwrap();
    let hw = "tests/fixtures/doctest-file/hw01.py";
    let sol = "tests/fixtures/doctest-file/hw01_sol.py";
    let import = |extra: &[&str]| {
        let mut args = vec!["problems", "import", "doctest-file", hw, "--into", into_arg, "--prefix", "hw01-"];
        args.extend_from_slice(extra);
        studentsim(&args)
    };
    let out = import(&["--solution", sol]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "Counter has no solution, so the check fails: {text}{}", stderr(&out));
    for id in ["hw01-a-plus-abs-b", "hw01-two-of-three", "hw01-hailstone"] {
        assert!(text.contains(&format!("ok    {id:<24} 2 examples")), "{id} passes the check: {text}");
    }
    assert!(text.contains("FAIL  hw01-counter             no reference solution"), "{text}");
    assert!(text.contains("not imported: tests/fixtures/doctest-file/hw01.py: no top-level `Counter` in"), "{text}");
    assert!(text.contains("3 of 4 problems pass the check"), "{text}");
    // CS 61A's construct_check reads the homework's own file, which a submission does not have in the sandbox
    assert!(
        text.contains("not imported: tests/fixtures/doctest-file/hw01.py:5: `HW_SOURCE_FILE = __file__` left out"),
        "{text}"
    );
    assert!(text.contains("`two_of_three`: 2 examples read the homework's own source file"), "{text}");
    let hailstone = std::fs::read_to_string(into.join("hw01-hailstone/problem.toml")).unwrap();
    let problem: toml::Value = toml::from_str(&hailstone).unwrap();
    assert_eq!(
        problem["statement"].as_str(),
        Some("Print the hailstone sequence starting at n and return its length.")
    );
    assert!(problem["fixed"].as_str().unwrap().contains("def _square(x)"), "helpers stay as fixed code");
    assert!(!problem["fixed"].as_str().unwrap().contains("def two_of_three"), "other problems are not fixed code");
    assert!(!problem["fixed"].as_str().unwrap().contains("__file__"), "{hailstone}");
    let two = std::fs::read_to_string(into.join("hw01-two-of-three/problem.toml")).unwrap();
    assert!(two.contains(">>> two_of_three(5, 3, 1)\n    10\n    \"\"\"\n"), "the check and its comment go: {two}");

    let out = import(&["--solution", sol]);
    bad_input(&out, &["hw01-a-plus-abs-b/problem.toml: already exists"], None);

    let plain = dir.path().join("plain.py");
    std::fs::write(&plain, "def f():\n    return 1\n").unwrap();
    let out = studentsim(&["problems", "import", "doctest-file", plain.to_str().unwrap(), "--into", into_arg]);
    bad_input(&out, &["plain.py: no top-level function or class has doctest examples"], None);
}

/// A homework that imports a package the sandbox lacks (numpy, as data-science courses' do) fails the check with
/// the module's name, not with the examples' empty output.
#[test]
fn a_homework_needing_a_missing_package_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let hw = dir.path().join("hw.py");
    std::fs::write(
        &hw,
        "import numpy as np\n\ndef mean(xs):\n    \"\"\"\n    >>> mean([1, 2, 3])\n    2.0\n    \"\"\"\n",
    )
    .unwrap();
    let sol = dir.path().join("sol.py");
    std::fs::write(&sol, "def mean(xs):\n    return float(np.mean(xs))\n").unwrap();
    let into = dir.path().join("reg");
    let out = studentsim(&[
        "problems",
        "import",
        "doctest-file",
        hw.to_str().unwrap(),
        "--solution",
        sol.to_str().unwrap(),
        "--into",
        into.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains("the module raised ModuleNotFoundError: No module named 'numpy' (the sandbox has CPython's"),
        "{text}"
    );
}

/// OK-format tests (our fixtures: an okpy-style file with setup, a hidden case and an unscored suite, and an
/// Otter-style file with per-case points) become problems that pass the check, with points and hidden cases
/// carried over; a locked case is one line, exit 2, nothing written.
#[test]
fn ok_tests_import_with_points_hidden_cases_and_setup() {
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("reg");
    let into_arg = into.to_str().unwrap();
    let (hw, sol) = ("tests/fixtures/ok/hw02.py", "tests/fixtures/ok/hw02_sol.py");
    let args = ["problems", "import", "ok", "tests/fixtures/ok/tests", "--homework", hw, "--solution", sol];
    let out = studentsim(&[&args[..], &["--into", into_arg, "--prefix", "hw02-"]].concat());
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("ok    hw02-product             7 examples"), "{text}");
    assert!(text.contains("ok    hw02-q2                  3 examples"), "{text}");
    assert!(text.contains("not imported: tests/fixtures/ok/tests/product.py: suite 2 is not scored"), "{text}");
    // the homework's own statements are reported once, not once per test file
    let file_line = "not imported: tests/fixtures/ok/hw02.py:5: `HW_SOURCE_FILE = __file__` left out of the given code";
    assert_eq!(text.matches(file_line).count(), 1, "{text}");

    let product: toml::Value =
        toml::from_str(&std::fs::read_to_string(into.join("hw02-product/problem.toml")).unwrap()).unwrap();
    assert_eq!(product["entry"].as_array().unwrap().len(), 1, "only the stub, not the helpers it calls");
    assert!(!product["fixed"].as_str().unwrap().contains("__file__"), "{product}");
    let todo = product["todo"].as_str().unwrap();
    assert!(!todo.contains("hidden-case-marker"), "a hidden case is not in the stub: {todo}");
    assert!(!todo.contains("from hw02 import"), "the submission is the homework module: {todo}");
    assert!(todo.contains(">>> triple = lambda x: 3 * x\n>>> product(3, square)\n36"), "setup runs before each case");
    assert_eq!(product["points"]["<module>"].as_float(), Some(2.0), "3 points over 3 cases, 2 of them visible");
    assert_eq!(product["hidden"][0]["points"].as_float(), Some(1.0));

    // Otter's per-case points: 1 claimed, the other 3 shared by the two cases without
    let q2: toml::Value = toml::from_str(&std::fs::read_to_string(into.join("hw02-q2/problem.toml")).unwrap()).unwrap();
    assert_eq!(q2["points"]["<module>"].as_float(), Some(2.5));
    assert_eq!(q2["hidden"][0]["points"].as_float(), Some(1.5));

    // graded: the hidden case counts, and never shows
    let file = dir.path().join("attempt.py");
    std::fs::write(&file, "def product(n, term):\n    return 6 if n == 3 and term(2) == 2 else 0\n").unwrap();
    let out = studentsim(&["--problems", into_arg, "grade", "--json", "-p", "hw02-product", file.to_str().unwrap()]);
    assert!(!stdout(&out).contains("hidden-case-marker"), "{}", stdout(&out));
    let record: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(record["max_score"], 3.0, "{record}");

    let locked = dir.path().join("locked");
    let out = studentsim(&[
        "problems",
        "import",
        "ok",
        "tests/fixtures/ok/locked",
        "--homework",
        hw,
        "--into",
        locked.to_str().unwrap(),
    ]);
    bad_input(&out, &["locked/q3.py: suite 1 case 1 is locked: unlock it first"], Some(&locked));
}

/// What a student can act on: a compile error's line and column with the line and a caret, a runtime error's
/// exception with the student's own traceback lines, and the same `message`/`line`/`column` in the JSON record.
#[test]
fn grade_reports_where_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let syntax = dir.path().join("syntax.py");
    std::fs::write(&syntax, "def sum_digits(n):\n    if n < 10\n        return n\n").unwrap();
    let crash = dir.path().join("crash.py");
    std::fs::write(&crash, "def sum_digits(n):\n    return n // 0\n").unwrap();
    let out = studentsim(&["grade", "-p", "sum-digits", syntax.to_str().unwrap(), crash.to_str().unwrap()]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1..4],
        ["    line 2, column 14: SyntaxError: expected ':'", "            if n < 10", "                     ^"],
        "{text}"
    );
    assert!(lines[4].ends_with("crash.py: runtime 0/4 (ZeroDivisionError)"), "{text}");
    assert_eq!(
        lines[9..13],
        [
            "    Exception raised:",
            "        line 2, in sum_digits",
            "            return n // 0",
            "        ZeroDivisionError: division by zero"
        ],
        "{text}"
    );

    let out = studentsim(&["grade", "--json", "-p", "sum-digits", syntax.to_str().unwrap(), crash.to_str().unwrap()]);
    let rows: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!((&rows[0]["line"], &rows[0]["column"]), (&2.into(), &14.into()));
    assert_eq!(rows[1]["message"], "ZeroDivisionError: division by zero", "a runtime error has its message");
}

/// `problems new` derives a valid Python name from any id, and `problems check` catches the usual mistakes with
/// lines counted from the top of problem.toml: a reference that does not compile (CPython's message), an entry
/// the code does not define, a wrong example; `--calibrate` says what it wrote.
#[test]
fn check_and_new_catch_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().to_str().unwrap();
    let out = studentsim(&["--problems", reg, "problems", "new", "2sum"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.path().join("2sum/problem.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    assert!(original.contains("def problem_2sum(x):"), "a function name Python accepts: {original}");
    let check = || {
        let out = studentsim(&["--problems", reg, "problems", "check"]);
        (out.status.code(), stdout(&out))
    };
    let line_of = |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;

    let broken = original.replace("return x + 1", "return x +");
    std::fs::write(&path, &broken).unwrap();
    let (code, text) = check();
    let want = format!(
        "the reference solution does not compile: problem.toml line {}: SyntaxError: invalid syntax",
        line_of(&broken, "return x +")
    );
    assert!(code == Some(1) && text.contains(&want), "{text}");

    let wrong = original.replace(">>> problem_2sum(1)", ">>> problem_2sum(1) + 10");
    std::fs::write(&path, &wrong).unwrap();
    let (_, text) = check();
    assert!(text.contains(&format!("problem.toml line {}: `problem_2sum(1) + 10`", line_of(&wrong, "+ 10"))), "{text}");

    std::fs::write(&path, original.replace("entry = [\"problem_2sum\"]", "entry = [\"two_sum\"]")).unwrap();
    let (_, text) = check();
    assert!(text.contains("entry `two_sum` is not defined at the top level of its `todo` code"), "{text}");

    std::fs::write(&path, &original).unwrap();
    let out = studentsim(&["--problems", reg, "problems", "check", "--calibrate"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("wrote [limits] example_timeout = 0.05 to"), "{}", stdout(&out));
}

/// `--format gradescope` grades one submission; more FILEs, or --output with another format, is one line, exit 2.
#[test]
fn gradescope_format_arguments_are_checked() {
    let out = studentsim(&["grade", "--format", "gradescope", "-p", "sum-digits", "a.py", "b.py"]);
    bad_input(&out, &["--format gradescope grades one FILE (a submission), not 2"], None);
    let out = studentsim(&["grade", "-p", "sum-digits", "--output", "x.json", "a.py"]);
    bad_input(&out, &["--output with FILEs is for --format gradescope"], Some(Path::new("x.json")));
}

/// `init` makes a course folder whose commands work as its README says; a second init into it is refused.
/// `completions` and `man` print what clap's crates generate.
#[test]
fn init_completions_and_man() {
    let dir = tempfile::tempdir().unwrap();
    let course = dir.path().join("course");
    let out = studentsim(&["init", course.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let problems = course.join("problems");
    let subs: Vec<String> = ["correct.py", "lowercase_only.py", "missing_colon.py"]
        .iter()
        .map(|f| course.join("submissions").join(f).to_str().unwrap().to_owned())
        .collect();
    let mut args = vec!["--problems", problems.to_str().unwrap(), "grade", "--terse", "-p", "count-vowels"];
    args.extend(subs.iter().map(String::as_str));
    let text = stdout(&studentsim(&args));
    let labels: Vec<&str> = text.lines().map(|l| l.rsplit_once(": ").unwrap().1).collect();
    assert_eq!(labels, ["no_error 4/4", "logical 3/4", "compile 0/4 (SyntaxError)"], "{text}");
    let out = studentsim(&["init", course.to_str().unwrap()]);
    bad_input(&out, &["course: already exists and is not empty"], None);

    let out = studentsim(&["completions", "bash"]);
    assert!(out.status.success() && stdout(&out).contains("_studentsim()"), "{}", stderr(&out));
    let out = studentsim(&["man"]);
    assert!(out.status.success() && stdout(&out).contains(".TH studentsim 1"), "{}", stderr(&out));
}

/// `-` is standard input for a FILE and for --input, and standard output for --output; --shard, which hashes its
/// input by name, refuses it.
#[test]
fn a_dash_is_standard_input_and_output() {
    let with_stdin = |args: &[&str], input: &str| {
        use std::io::Write as _;
        let mut child = Command::new(env!("CARGO_BIN_EXE_studentsim"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let good = "def sum_digits(n):\n    return sum(int(d) for d in str(n))\n";
    let out = with_stdin(&["grade", "-p", "sum-digits", "-"], good);
    assert_eq!(stdout(&out), "<stdin>: no_error 4/4\n", "{}", stderr(&out));

    let row = serde_json::json!({"id": 1, "problem": "sum-digits", "code": good});
    let out = with_stdin(&["grade", "--input", "-", "--output", "-"], &format!("{row}\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    let graded: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(graded["label"], "no_error");

    let out = with_stdin(&["grade", "--input", "-", "--output", "-", "--shard", "1/2"], &format!("{row}\n"));
    bad_input(&out, &["--shard reads its input files by name", "`-` is standard input"], None);
}
