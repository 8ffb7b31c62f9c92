//! `studentsim rollout` end to end on the bundled example streams, graded in the real sandbox: next steps,
//! autoregressive streams with feedback, resuming after a kill, and bad input.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;

use common::{EXAMPLES, QUICK_EXAMPLE_TIMEOUT, example_rows, example_streams, json_lines as rows, studentsim};

fn ok(out: &Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn key(row: &Value) -> (String, String, u64) {
    (row["student"].as_str().unwrap().into(), row["problem"].as_str().unwrap().into(), row["attempt"].as_u64().unwrap())
}

#[test]
fn next_steps_copy_the_previous_attempt_and_keep_the_target_row() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("next.jsonl");
    ok(&studentsim(&[
        "rollout",
        "next-step",
        "--input",
        EXAMPLES,
        "--generator",
        "copy-last",
        "--k",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]));
    let real: BTreeMap<_, _> = example_rows().into_iter().map(|r| (key(&r), r)).collect();
    let sims = rows(&out);
    assert_eq!(sims.len(), example_rows().len() - example_streams(), "every real row with a predecessor");
    for sim in &sims {
        let (student, problem, attempt) = key(sim);
        let previous = &real[&(student.clone(), problem.clone(), attempt - 1)];
        assert_eq!(sim["code"], previous["code"]);
        assert_eq!(sim["time"], real[&(student, problem, attempt)]["time"]);
        assert_eq!(
            (sim["source"].as_str(), sim["generated"]["generator"].as_str()),
            (Some("copy-last"), Some("copy-last"))
        );
        assert!(sim["label"].is_string() && sim["pass_rate"].is_number(), "graded: {sim}");
    }
}

#[test]
fn stages_write_one_row_per_distinct_stage_row() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stages.jsonl");
    ok(&studentsim(&[
        "rollout",
        "stages",
        "--input",
        EXAMPLES,
        "--generator",
        "reference",
        "--context",
        "--out",
        out.to_str().unwrap(),
    ]));
    let sims = rows(&out);
    // The example streams have 2 or 3 rows, so every row is some stage's row.
    assert_eq!(sims.iter().map(key).collect::<BTreeSet<_>>(), example_rows().iter().map(key).collect());
    assert!(
        sims.iter().all(|r| r["label"] == "no_error" && r["generated"]["submit"] == true),
        "the reference solutions pass"
    );
}

#[test]
fn streams_feed_each_grade_into_the_next_attempt_until_they_pass() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("streams.jsonl");
    let args = [
        "rollout",
        "stream",
        "--input",
        EXAMPLES,
        "--train",
        EXAMPLES,
        "--max-attempts",
        "6",
        "--seed",
        "3",
        "--example-timeout",
        QUICK_EXAMPLE_TIMEOUT,
        "--out",
    ];
    ok(&studentsim(&[&args[..], &[out.to_str().unwrap()]].concat()));
    let sims = rows(&out);
    let mut streams: BTreeMap<(String, String), Vec<&Value>> = BTreeMap::new();
    for sim in &sims {
        let (student, problem, _) = key(sim);
        streams.entry((student, problem)).or_default().push(sim);
    }
    assert_eq!(streams.len(), example_streams(), "one simulated stream per real stream");
    for stream in streams.values_mut() {
        stream.sort_by_key(|r| r["attempt"].as_u64());
        let attempts: Vec<u64> = stream.iter().map(|r| r["attempt"].as_u64().unwrap()).collect();
        assert_eq!(attempts, (1..=stream.len() as u64).collect::<Vec<_>>());
        let (last, before) = stream.split_last().unwrap();
        for row in before {
            assert_ne!(row["label"], "no_error", "a stream stops at its first pass");
            let feedback = &row["generated"]["feedback"];
            assert_eq!(feedback["label"], row["label"], "the feedback is this attempt's grade");
        }
        assert!(
            last["label"] == "no_error" || last["generated"]["submit"] == true || stream.len() == 6,
            "a stream ends by passing, submitting or reaching the limit: {last}"
        );
        // Simulated times: the real stream's start, then two minutes apart.
        if let [a, b, ..] = &stream[..] {
            let t = |r: &Value| r["time"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
            assert_eq!(t(b).duration_since(t(a)).as_secs(), 120);
        }
    }
    // Same seed, same streams.
    let again = dir.path().join("again.jsonl");
    ok(&studentsim(&[&args[..], &[again.to_str().unwrap()]].concat()));
    let sorted = |mut v: Vec<Value>| {
        v.sort_by_key(key);
        v
    };
    assert_eq!(sorted(rows(&again)), sorted(sims));
}

#[test]
fn a_killed_rollout_resumes_without_losing_or_repeating_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("killed.jsonl");
    // copy-last never passes, so every stream runs to the limit of 40 graded attempts.
    let args = [
        "rollout",
        "stream",
        "--input",
        EXAMPLES,
        "--generator",
        "copy-last",
        "--max-attempts",
        "40",
        "--jobs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    let total = example_streams() * 40;
    let mut child = Command::new(env!("CARGO_BIN_EXE_studentsim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::metadata(&out).map_or(0, |m| m.len()) < 20_000 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = std::fs::read_to_string(&out).unwrap();
    let complete = before.lines().filter(|l| serde_json::from_str::<Value>(l).is_ok()).count();
    assert!(complete > 0 && complete < total, "killed part-way: {complete} rows");

    ok(&studentsim(&args));
    let after = rows(&out);
    assert_eq!(after.len(), total);
    let keys: BTreeSet<_> = after.iter().map(key).collect();
    assert_eq!(keys.len(), after.len(), "no row written twice");

    // rows of one run are never continued by a run with other settings (here another seed)
    let finished = std::fs::read(&out).unwrap();
    let reseeded = [&args[..], &["--seed", "7"]].concat();
    refused(&reseeded, &["killed.jsonl: its", "rows were made from other settings", "killed.jsonl.run.json"]);
    assert_eq!(std::fs::read(&out).unwrap(), finished, "the refused run left the rows as they were");
    ok(&studentsim(&args));
    assert_eq!(std::fs::read(&out).unwrap(), finished, "the same run again has nothing left to do");
}

fn refused(args: &[&str], needles: &[&str]) {
    common::bad_input(&studentsim(args), needles, None);
}

#[test]
fn bad_input_gets_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let o = out.to_str().unwrap();
    refused(&["rollout", "next-step", "--input", EXAMPLES, "--out", o], &["--train"]);
    let mut unknown = example_rows()[..3].to_vec();
    unknown[2]["problem"] = "no-such-problem".into();
    let path = dir.path().join("unknown.jsonl");
    std::fs::write(&path, unknown.iter().map(|r| format!("{r}\n")).collect::<String>()).unwrap();
    refused(
        &["rollout", "stream", "--input", path.to_str().unwrap(), "--generator", "copy-last", "--out", o],
        &["unknown.jsonl:3", "no-such-problem"],
    );
    std::fs::write(&out, "not json\n").unwrap();
    refused(
        &["rollout", "next-step", "--input", EXAMPLES, "--generator", "copy-last", "--out", o],
        &["out.jsonl:1", "not a rollout row"],
    );
}

/// Stream rows of a two-attempt copy-last rollout with `tutor` (so every stream asks the tutor once).
fn tutored(dir: &Path, name: &str, tutor: &str, extra: &[&str]) -> Vec<Value> {
    let out = dir.join(name);
    let args = [
        "rollout",
        "stream",
        "--input",
        EXAMPLES,
        "--generator",
        "copy-last",
        "--max-attempts",
        "2",
        "--tutor",
        tutor,
        "--example-timeout",
        QUICK_EXAMPLE_TIMEOUT,
        "--out",
        out.to_str().unwrap(),
    ];
    ok(&studentsim(&[&args[..], extra].concat()));
    rows(&out)
}

#[test]
fn tutor_hints_reach_the_rows_and_a_broken_tutor_does_not_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let states = dir.path().join("states");
    std::fs::create_dir(&states).unwrap();
    let tutor = format!("cat > {}/$$.json; echo '{{\"hint\": \"Check the base case.\"}}'", states.display());
    let sims = tutored(dir.path(), "hinted.jsonl", &tutor, &[]);
    let first_attempts: Vec<&Value> = sims.iter().filter(|r| r["attempt"] == 1).collect();
    assert_eq!(first_attempts.len(), example_streams());
    for row in &first_attempts {
        assert_eq!(row["generated"]["feedback"]["hint"], "Check the base case.", "{row}");
    }
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(std::fs::read_dir(&states).unwrap().next().unwrap().unwrap().path()).unwrap(),
    )
    .unwrap();
    assert_eq!(state["attempt"], 1);
    assert!(
        state["problem"]["id"].is_string() && state["code"].is_string() && state["grade"]["label"].is_string(),
        "{state}"
    );

    for (name, tutor, extra, why) in [
        ("crash.jsonl", "exit 3", &[][..], "exited with"),
        ("hang.jsonl", "sleep 30", &["--tutor-timeout", "0.1"][..], "did not answer"),
        ("garbage.jsonl", "printf '\\377\\376'", &[][..], "not UTF-8"),
    ] {
        let sims = tutored(dir.path(), name, tutor, extra);
        assert_eq!(sims.len(), 2 * example_streams(), "{name}: the run went on");
        for row in sims.iter().filter(|r| r["attempt"] == 1) {
            let error = row["generated"]["feedback"]["tutor_error"].as_str().unwrap_or_default();
            assert!(error.contains(why), "{name}: {row}");
        }
    }
}

#[test]
fn stress_tutor_reports_latency_errors_and_leakage() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stress.jsonl");
    // Hands out the reference solution of sum-digits to everyone.
    let tutor = "cat > /dev/null; printf '%s\\n' '<code>def sum_digits(n):' '    total = 0' '    while n > 0:' \
        '        total += n % 10' '        n //= 10' '    return total</code>'";
    let json = dir.path().join("figures.json");
    let students = 2 * example_streams();
    let run = studentsim(&[
        "stress-tutor",
        "--input",
        EXAMPLES,
        "--generator",
        "copy-last",
        "--streams",
        &students.to_string(),
        "--max-attempts",
        "2",
        "--tutor",
        tutor,
        "--out",
        out.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    ok(&run);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains(&format!("{students} simulated students")) && text.contains("latency ms: p50"), "{text}");
    let figures: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!((figures["calls"].as_u64(), figures["errors"].as_u64()), (Some(students as u64), Some(0)), "{figures}");
    // The hints to students on sum-digits leak its solution; the others' do not match their problems.
    let on_sum_digits = example_rows().iter().filter(|r| r["problem"] == "sum-digits" && r["attempt"] == 1).count();
    assert_eq!(figures["leaked"].as_u64(), Some(2 * on_sum_digits as u64), "{figures}");
}

/// stress-tutor counts a tutor's time limit as a timeout and nothing else: a refused connection is an error, not
/// a timeout; a tutor that hangs is both.
#[test]
fn stress_tutor_counts_timeouts_by_their_type() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: every call is refused at once.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // Each call to the hanging tutor waits out its timeout, and the refused ones must not come near theirs.
    for (name, tutor, timeout, timeouts) in [
        ("refused", vec!["--tutor-url".to_owned(), format!("http://{free}/")], "0.3", false),
        ("hang", vec!["--tutor".to_owned(), "sleep 30".to_owned()], "0.1", true),
    ] {
        let (out, json) = (dir.path().join(format!("{name}.jsonl")), dir.path().join(format!("{name}.json")));
        let mut args = vec![
            "stress-tutor",
            "--input",
            EXAMPLES,
            "--generator",
            "copy-last",
            "--streams",
            "2",
            "--max-attempts",
            "2",
            "--tutor-timeout",
            timeout,
        ];
        args.extend(tutor.iter().map(String::as_str));
        args.extend(["--out", out.to_str().unwrap(), "--json", json.to_str().unwrap()]);
        ok(&studentsim(&args));
        let figures: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let calls = figures["calls"].as_u64().unwrap();
        assert!(calls > 0 && figures["errors"].as_u64() == Some(calls), "{name}: {figures}");
        assert_eq!(figures["timeouts"].as_u64(), Some(if timeouts { calls } else { 0 }), "{name}: {figures}");
    }
}

/// The edit model with a judge picks the outcome the training students' transitions give: here every changed
/// attempt after a `logical` one passed, so it transplants the fix that passes, and when no transplant applies
/// it jumps to the nearest passing submission; without a judge the same student resubmits.
#[test]
fn the_judged_edit_model_draws_the_outcome_from_training_transitions() {
    use std::sync::Arc;
    use studentsim::generate::edits::EditModel;
    use studentsim::generate::{Attempt, Generator, Request, Target};
    use studentsim::grade::Label;
    use studentsim::trajectory::{Source, Submission};

    let registry =
        studentsim::problems::Registry::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("problems").as_path()).unwrap();
    let problem = Arc::new(registry.get("sum-digits").unwrap().clone());
    let (wrong, right) =
        ("def sum_digits(n):\n    return n\n", "def sum_digits(n):\n    return sum(int(d) for d in str(n))\n");
    let row = |attempt: u32, code: &str, label: Label| Submission {
        student: "a".into(),
        problem: "sum-digits".into(),
        time: jiff::Timestamp::from_second(1_600_000_000 + i64::from(attempt)).unwrap(),
        attempt,
        code: code.into(),
        label: Some(label),
        pass_rate: None,
        source: Source::Real,
        platform_correct: None,
        generated: None,
        extra: Default::default(),
    };
    let train = [row(1, wrong, Label::Logical), row(2, right, Label::NoError)];
    let judged = EditModel::fit(&train, 5).judged_by(common::grader());
    let next = |model: &EditModel, code: &str| {
        let history = vec![Attempt { code: code.into(), feedback: None }];
        let request =
            Request { student: "b".into(), history, target: Target::Next, ..Request::bare(Arc::clone(&problem)) };
        common::block_on(model.generate(&request)).unwrap().code
    };
    assert_eq!(
        next(&judged, "def sum_digits(x):\n    return x\n"),
        "def sum_digits(x):\n    return sum(int(d) for d in str(x))\n"
    );
    let stuck = "def sum_digits(n):\n    total = 0\n    return total\n";
    assert_eq!(next(&judged, stuck), right, "no transplant applies: the nearest passing submission");
    assert_eq!(
        next(&EditModel::fit(&train, 5), stuck),
        stuck,
        "without a judge nothing applies and the student resubmits"
    );
}

/// The edit model works on the examples its feedback showed failing: of two training edits with the drawn
/// outcome (`logical` again), it takes the one that makes a shown example pass, whatever the seeded order of the
/// analogues.
#[test]
fn the_edit_model_fixes_an_example_its_feedback_showed_failing() {
    use std::sync::Arc;
    use studentsim::generate::edits::EditModel;
    use studentsim::generate::{Attempt, Feedback, Generator, Request, Target};
    use studentsim::grade::Label;
    use studentsim::trajectory::{Source, Submission};

    let registry =
        studentsim::problems::Registry::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("problems").as_path()).unwrap();
    let problem = Arc::new(registry.get("sum-digits").unwrap().clone());
    let row = |student: &str, attempt: u32, code: &str| Submission {
        student: student.into(),
        problem: "sum-digits".into(),
        time: jiff::Timestamp::from_second(1_600_000_000 + i64::from(attempt)).unwrap(),
        attempt,
        code: code.into(),
        label: Some(Label::Logical),
        pass_rate: None,
        source: Source::Real,
        platform_correct: None,
        generated: None,
        extra: Default::default(),
    };
    let (start, fixes_shown, fixes_hidden) = (
        "def sum_digits(n):\n    return 1\n",
        "def sum_digits(n):\n    return 7\n",
        "def sum_digits(n):\n    return 0\n",
    );
    // Two students, the same start; one fixes sum_digits(7), the other sum_digits(0).
    let train = [row("a", 1, start), row("a", 2, fixes_shown), row("c", 1, start), row("c", 2, fixes_hidden)];
    let model = EditModel::fit(&train, 5).judged_by(common::grader());
    let tests = common::block_on(common::grader().problem_tests(&problem)).unwrap();
    let feedback = Feedback::from_record(&common::block_on(common::grader().grade(&problem.fixed, start, &tests)));
    let shown: Vec<&str> = feedback.failing.iter().map(|e| e.source.as_str()).collect();
    assert!(
        shown.iter().any(|s| s.contains("sum_digits(7)")) && !shown.iter().any(|s| s.contains("sum_digits(0)")),
        "{shown:?}"
    );
    let mut picked = BTreeSet::new();
    for seed in 0..8 {
        let history = vec![Attempt { code: start.into(), feedback: Some(feedback.clone()) }];
        let request =
            Request { student: "b".into(), history, target: Target::Next, seed, ..Request::bare(Arc::clone(&problem)) };
        picked.insert(common::block_on(model.generate(&request)).unwrap().code);
    }
    assert_eq!(
        picked.into_iter().collect::<Vec<_>>(),
        [fixes_shown],
        "the edit that fixes the example the student was shown"
    );
}

/// What a simulated student is shown after an attempt reaches its next request in `rollout stream`: the label
/// and failing examples of the sandbox's grade and the tutor's hint (recorded by a generator that keeps every
/// request), and the prompt built from that request shows all three.
#[test]
fn feedback_and_the_tutors_hint_reach_the_next_request_and_its_prompt() {
    use std::sync::{Arc, Mutex};
    use studentsim::generate::{BoxFuture, Feedback, Generation, Generator, Request, prompt};
    use studentsim::grade::Label;
    use studentsim::rollout::StreamOptions;
    use studentsim::rollout::tutor::Tutor;

    const ATTEMPTS: [&str; 3] = [
        "def sum_digits(n):\n    return 1\n",
        "def sum_digits(n):\n    return 0\n",
        "def sum_digits(n):\n    return n\n",
    ];
    const HINT: &str = "Add the last digit, then drop it.";
    struct Recording(Mutex<Vec<Request>>);
    impl Generator for Recording {
        fn name(&self) -> &str {
            "recording"
        }
        fn generate<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, anyhow::Result<Generation>> {
            self.0.lock().unwrap().push(request.clone());
            let code = ATTEMPTS[request.history.len()].to_owned();
            Box::pin(async move { Ok(Generation { code, ..Generation::default() }) })
        }
    }
    struct FixedTutor;
    impl Tutor for FixedTutor {
        fn hint<'a>(&'a self, _state: String) -> BoxFuture<'a, anyhow::Result<String>> {
            Box::pin(async { Ok(HINT.to_owned()) })
        }
    }

    let recording = Arc::new(Recording(Mutex::new(Vec::new())));
    let options = StreamOptions {
        max_attempts: 3,
        interval: jiff::SignedDuration::from_secs(60),
        tutor: Some(Arc::new(FixedTutor)),
        shown_attempts: None,
    };
    let (problem, tests) = sum_digits_stream(recording.clone(), options);

    let requests = recording.0.lock().unwrap().clone();
    assert_eq!(requests.len(), 3, "three attempts: none of them passes");
    for (i, request) in requests.iter().enumerate().skip(1) {
        assert_eq!(request.history.len(), i);
        let shown = request.history[i - 1].feedback.as_ref().expect("the last attempt's feedback");
        let graded = common::block_on(common::grader().grade(&problem.fixed, ATTEMPTS[i - 1], &tests));
        let expected = Feedback::from_record(&graded);
        assert_eq!((shown.label, &shown.failing), (graded.label, &expected.failing), "attempt {i}");
        assert_eq!(shown.label, Label::Logical);
        assert!(!shown.failing.is_empty());
        assert_eq!(shown.hint.as_deref(), Some(HINT), "attempt {i}");
        let text = prompt::fine_tuned(request);
        assert!(text.contains("graded: logical") && text.contains(HINT), "attempt {i}: {text}");
        for f in &shown.failing {
            assert!(
                text.contains(f.source.trim_end()) && text.contains(&format!("got: {}", f.got.trim_end())),
                "attempt {i}: {text}"
            );
        }
    }
}

/// A tutor over HTTP on loopback that answers every POST with `hint`; it serves until the test ends.
fn http_tutor(hint: &'static str) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hint", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let answer = serde_json::json!({ "hint": hint }).to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                reader.get_mut().write_all(response.as_bytes()).unwrap();
            });
        }
    });
    url
}

/// Two tutor versions under the same simulated load: the same calls reach each, and each gets its own figures
/// (one leaks the solution, the other does not) and its own rows.
#[test]
fn stress_tutor_compares_tutor_urls_under_the_same_load() {
    let dir = tempfile::tempdir().unwrap();
    let leaky = http_tutor(
        "<code>def sum_digits(n):\n    total = 0\n    while n > 0:\n        total += n % 10\n        n //= 10\n    return total</code>",
    );
    let careful = http_tutor("Check what happens to n on each pass of the loop.");
    let (out, json) = (dir.path().join("stress.jsonl"), dir.path().join("figures.json"));
    let students = example_streams();
    let run = studentsim(&[
        "stress-tutor",
        "--input",
        EXAMPLES,
        "--generator",
        "copy-last",
        "--streams",
        &students.to_string(),
        "--max-attempts",
        "2",
        "--tutor-url",
        &leaky,
        "--tutor-url",
        &careful,
        "--out",
        out.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    ok(&run);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains(&format!("tutor {leaky}")) && text.contains(&format!("tutor {careful}")), "{text}");
    let figures: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let tutors = figures["tutors"].as_array().unwrap();
    assert_eq!(
        (tutors[0]["tutor"].as_str(), tutors[1]["tutor"].as_str()),
        (Some(leaky.as_str()), Some(careful.as_str()))
    );
    let calls: Vec<u64> = tutors.iter().map(|t| t["figures"]["calls"].as_u64().unwrap()).collect();
    assert!(calls[0] == students as u64 && calls[0] == calls[1], "the same load for both: {calls:?}");
    let on_sum_digits =
        example_rows().iter().filter(|r| r["problem"] == "sum-digits" && r["attempt"] == 1).count() as u64;
    assert_eq!(tutors[0]["figures"]["leaked"].as_u64(), Some(on_sum_digits), "{figures}");
    assert_eq!(tutors[1]["figures"]["leaked"].as_u64(), Some(0), "{figures}");
    for n in [1, 2] {
        let written = rows(&dir.path().join(format!("stress.tutor{n}.jsonl")));
        let hints = written.iter().filter(|r| r["generated"]["feedback"]["hint"].is_string()).count();
        assert!(hints > 0, "tutor {n}'s hints are not in its rows");
    }
    // a rollout has one tutor
    let one = studentsim(&[
        "rollout",
        "stream",
        "--input",
        EXAMPLES,
        "--generator",
        "copy-last",
        "--tutor-url",
        &leaky,
        "--tutor-url",
        &careful,
        "--out",
        dir.path().join("r.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(one.status.code(), Some(2), "{}", String::from_utf8_lossy(&one.stderr));
}

/// `rollout stream --history K` shows each request only the K most recent attempts (a model fine-tuned on next
/// steps with K real predecessors meets its training layout), the last one still with its feedback.
#[test]
fn a_stream_shows_only_the_most_recent_attempts_when_asked() {
    use std::sync::{Arc, Mutex};
    use studentsim::generate::{BoxFuture, Generation, Generator, Request};
    use studentsim::rollout::StreamOptions;

    const ATTEMPTS: [&str; 4] = [
        "def sum_digits(n):\n    return 1\n",
        "def sum_digits(n):\n    return 0\n",
        "def sum_digits(n):\n    return n\n",
        "def sum_digits(n):\n    return 2\n",
    ];
    struct Numbered(Mutex<Vec<Request>>);
    impl Generator for Numbered {
        fn name(&self) -> &str {
            "numbered"
        }
        fn generate<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, anyhow::Result<Generation>> {
            let mut seen = self.0.lock().unwrap();
            let code = ATTEMPTS[seen.len()].to_owned();
            seen.push(request.clone());
            Box::pin(async move { Ok(Generation { code, ..Generation::default() }) })
        }
    }

    let numbered = Arc::new(Numbered(Mutex::new(Vec::new())));
    let options = StreamOptions {
        max_attempts: 4,
        interval: jiff::SignedDuration::from_secs(60),
        tutor: None,
        shown_attempts: Some(2),
    };
    sum_digits_stream(numbered.clone(), options);

    let requests = numbered.0.lock().unwrap().clone();
    assert_eq!(requests.len(), 4, "four attempts: none of them passes");
    for (i, request) in requests.iter().enumerate() {
        let codes: Vec<&str> = request.history.iter().map(|a| a.code.as_str()).collect();
        assert_eq!(codes, ATTEMPTS[i.saturating_sub(2)..i].to_vec(), "request {i} shows the two most recent attempts");
        if i > 0 {
            assert!(
                request.history.last().unwrap().feedback.is_some(),
                "request {i}: the last attempt keeps its feedback"
            );
        }
    }
}

/// `feedback-uptake` on the bundled streams: copy-last never fixes a failing example it was shown and always
/// resubmits, the reference solution fixes every one, and both are measured on the real students' transitions.
#[test]
fn bench_feedback_tells_a_generator_that_ignores_its_feedback_from_one_that_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut sims = Vec::new();
    for generator in ["copy-last", "reference"] {
        let out = dir.path().join(format!("{generator}.jsonl"));
        let args = [
            "rollout",
            "next-step",
            "--input",
            EXAMPLES,
            "--generator",
            generator,
            "--k",
            "3",
            "--feedback",
            "--example-timeout",
            QUICK_EXAMPLE_TIMEOUT,
            "--out",
        ];
        ok(&studentsim(&[&args[..], &[out.to_str().unwrap()]].concat()));
        sims.push(format!("{generator}={}", out.display()));
    }
    let out = studentsim(&[
        "feedback-uptake",
        "--real",
        EXAMPLES,
        "--sim",
        &sims[0],
        "--sim",
        &sims[1],
        "--example-timeout",
        QUICK_EXAMPLE_TIMEOUT,
        "--json",
    ]);
    ok(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let set = |name: &str| report["sets"].as_array().unwrap().iter().find(|s| s["set"] == name).unwrap().clone();
    let (real, copy, reference) = (set("real"), set("copy-last"), set("reference"));
    let shown = real["shown"].as_u64().unwrap();
    assert!(shown > 0, "some real attempt before a next step failed an example: {report}");
    assert_eq!(
        (copy["shown"].as_u64(), reference["shown"].as_u64()),
        (Some(shown), Some(shown)),
        "the same transitions: {report}"
    );
    assert_eq!(
        (copy["fixed"].as_u64(), copy["unchanged"].as_u64()),
        (Some(0), Some(shown)),
        "copy-last resubmits: {report}"
    );
    assert_eq!(reference["fixed"].as_u64(), Some(shown), "the reference passes every example: {report}");
    let real_fixed = real["fixed"].as_u64().unwrap();
    assert!(real_fixed > 0 && real_fixed <= shown, "{report}");
}

/// One simulated stream of the bundled `sum-digits` problem by `generator` under `options`, graded in the real
/// sandbox; the problem and its parsed tests come back for the test's own checks.
fn sum_digits_stream(
    generator: std::sync::Arc<dyn studentsim::generate::Generator>,
    options: studentsim::rollout::StreamOptions,
) -> (std::sync::Arc<studentsim::problems::Problem>, std::sync::Arc<studentsim::grade::Tests>) {
    use std::collections::HashMap;
    use std::sync::Arc;
    use studentsim::rollout::output::ResumableOutput;
    use studentsim::rollout::{Prepared, Rollout};
    use studentsim::trajectory::{Source, Submission};

    let registry =
        studentsim::problems::Registry::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("problems").as_path()).unwrap();
    let problem = Arc::new(registry.get("sum-digits").unwrap().clone());
    let tests = Arc::new(common::block_on(common::grader().problem_tests(&problem)).unwrap());
    let rollout = Rollout {
        grader: common::grader(),
        generator,
        problems: HashMap::from([(
            problem.id.clone(),
            Prepared { problem: Arc::clone(&problem), tests: Arc::clone(&tests) },
        )]),
        seed: 0,
        jobs: 1,
        only_streams: None,
    };
    // the real row only names the student, problem and start time: a stream starts from nothing
    let real = Submission {
        student: "s".into(),
        problem: problem.id.clone(),
        time: jiff::Timestamp::from_second(1_600_000_000).unwrap(),
        attempt: 1,
        code: "def sum_digits(n):\n    return n\n".into(),
        label: None,
        pass_rate: None,
        source: Source::Real,
        platform_correct: None,
        generated: None,
        extra: Default::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let out = Arc::new(ResumableOutput::open(&dir.path().join("streams.jsonl")).unwrap());
    common::block_on(studentsim::rollout::streams(&rollout, &[real], options, &out, &studentsim::records::NoProgress))
        .unwrap();
    (problem, tests)
}
