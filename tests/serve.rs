//! Issue 15 part 2: `studentsim serve` as a real process on loopback, driven over raw TCP so that hostile clients
//! (slow, oversized, malformed) can be played exactly. Grades equal `grade --json`; errors are JSON 4xx; a full
//! queue answers 429 with Retry-After; the service keeps serving after each; SIGTERM finishes what it accepted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

const TOKEN: &str = "user-token-1";
const ADMIN: &str = "admin-token-2";
const CORRECT: &str = "def sum_digits(n):\n    return sum(int(d) for d in str(n))\n";
const HANGS: &str = "def sum_digits(n):\n    while True:\n        pass\n";

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(dir.path().join("admin"), ADMIN).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_studentsim"))
        .args(["serve", "--bind", "127.0.0.1:0", "--token-file"])
        .arg(dir.path().join("token"))
        .arg("--admin-token-file")
        .arg(dir.path().join("admin"))
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    // keep draining stderr so the service never blocks on a full pipe
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Server { child, addr: addr.parse().unwrap(), _dir: dir }
}

/// One HTTP/1.1 exchange: (status, headers, body).
fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    read_response(stream)
}

fn read_response(mut stream: TcpStream) -> (u16, String, String) {
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw); // a reset after the answer (413 with an unread body) is fine
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response: {text:?}"));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

fn grade_body(problem: &str, code: &str) -> String {
    serde_json::json!({"problem": problem, "code": code}).to_string()
}

/// The record `grade --json` prints for `code`, without its `file` field.
fn cli_record(code: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("attempt.py");
    std::fs::write(&file, code).unwrap();
    let out = common::studentsim(&["grade", "--problem", "sum-digits", "--json", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut record = json(String::from_utf8_lossy(&out.stdout).trim());
    record.as_object_mut().unwrap().remove("file");
    record
}

fn assert_healthy(addr: SocketAddr) {
    assert_eq!(http(addr, "GET", "/healthz", None, None).0, 200, "the service stopped serving");
}

#[test]
fn grades_equal_the_cli_and_problems_hide_answers() {
    let server = start(&["--jobs", "2"]);
    let addr = server.addr;
    assert_eq!(
        http(addr, "GET", "/healthz", None, None),
        (200, http(addr, "GET", "/healthz", None, None).1, "ok\n".into())
    );
    for code in [CORRECT, "def sum_digits(n):\n    return n\n", "def sum_digits(n)\n    return 0\n"] {
        let cli = cli_record(code);
        let (status, _, body) = http(addr, "POST", "/v1/grade", Some(ADMIN), Some(&grade_body("sum-digits", code)));
        assert_eq!(status, 200, "{body}");
        assert_eq!(json(&body), cli, "the service's record for the admin differs from `grade --json`");
        let (status, _, body) = http(addr, "POST", "/v1/grade", Some(TOKEN), Some(&grade_body("sum-digits", code)));
        assert_eq!(status, 200, "{body}");
        let mut without_wants = cli.clone();
        for example in without_wants["examples"].as_array_mut().unwrap() {
            example.as_object_mut().unwrap().remove("want").expect("the CLI's record has every want");
        }
        assert_eq!(json(&body), without_wants, "a user's record is the CLI's without the expected outputs");
    }
    // grading the bare stub hands a user no expected output (issue 28: it used to return every example's `want`)
    let stub =
        json(&http(addr, "GET", "/v1/problems/sum-digits", Some(ADMIN), None).2)["stub"].as_str().unwrap().to_owned();
    let (_, _, body) = http(addr, "POST", "/v1/grade", Some(TOKEN), Some(&grade_body("sum-digits", &stub)));
    let stub_record = json(&body);
    let examples = stub_record["examples"].as_array().unwrap();
    assert!(!examples.is_empty() && examples.iter().all(|e| e.get("want").is_none()), "{stub_record}");
    assert!(!body.contains("\n    9\n") && !body.contains("\"9\\n\""), "an expected output leaked: {body}");
    // every error has the JSON body, 405 included
    let (status, _, body) = http(addr, "GET", "/v1/grade", Some(TOKEN), None);
    assert_eq!(status, 405);
    assert!(json(&body)["error"].as_str().unwrap().contains("method"), "{body}");
    let batch = serde_json::json!({"submissions": [
        {"id": "a", "problem": "sum-digits", "code": CORRECT},
        {"id": 7, "problem": "sum-digits", "code": "def sum_digits(n):\n    return 1 / 0\n"},
    ]});
    let (status, _, body) = http(addr, "POST", "/v1/grade", Some(TOKEN), Some(&batch.to_string()));
    assert_eq!(status, 200, "{body}");
    let results = json(&body)["results"].as_array().unwrap().clone();
    assert_eq!((results[0]["id"].clone(), results[0]["label"].clone()), ("a".into(), "no_error".into()));
    assert_eq!((results[1]["id"].clone(), results[1]["label"].clone()), (7.into(), "runtime".into()));

    // tokens
    assert_eq!(http(addr, "GET", "/v1/problems", None, None).0, 401);
    assert_eq!(http(addr, "GET", "/v1/problems", Some("wrong"), None).0, 401);
    let (status, _, body) = http(addr, "GET", "/v1/problems", Some(TOKEN), None);
    assert_eq!(status, 200);
    assert!(json(&body)["problems"].as_array().unwrap().iter().any(|p| p["id"] == "sum-digits"), "{body}");
    // a user sees the examples but not their answers, nor the solution; the admin sees both
    let user = json(&http(addr, "GET", "/v1/problems/sum-digits", Some(TOKEN), None).2);
    let admin = json(&http(addr, "GET", "/v1/problems/sum-digits", Some(ADMIN), None).2);
    let (user_stub, admin_stub) = (user["stub"].as_str().unwrap(), admin["stub"].as_str().unwrap());
    assert!(user_stub.contains(">>> sum_digits(4005)") && !user_stub.contains("\n    9\n"), "{user_stub}");
    assert!(admin_stub.contains(">>> sum_digits(4005)\n    9\n"), "{admin_stub}");
    assert!(
        user.get("solution").is_none() && admin["solution"].as_str().unwrap().contains("total"),
        "{user} / {admin}"
    );
    assert_eq!(http(addr, "GET", "/v1/problems/nope", Some(TOKEN), None).0, 404);

    let (_, _, metrics) = http(addr, "GET", "/metrics", None, None);
    for needle in [
        "studentsim_grades_total{label=\"no_error\"} 3",
        "studentsim_grades_total{label=\"runtime\"} 1",
        "studentsim_grade_request_seconds_bucket",
        "studentsim_http_requests_total{endpoint=\"grade\",status=\"200\"} 8",
    ] {
        assert!(metrics.contains(needle), "{needle:?} not in\n{metrics}");
    }
}

#[test]
fn hostile_clients_get_a_clear_4xx_and_the_service_keeps_serving() {
    let server = start(&[
        "--jobs",
        "1",
        "--queue",
        "1",
        "--max-body-kib",
        "16",
        "--body-timeout",
        "1",
        "--example-timeout",
        "2",
    ]);
    let addr = server.addr;
    let cases: [(&str, String, u16, &str); 5] = [
        ("malformed JSON", "{\"problem\": \"sum-digits\", \"code\": ".into(), 400, "body:"),
        ("not an object", "[1, 2]".into(), 400, "body:"),
        ("an unknown field", "{\"problem\": \"sum-digits\", \"code\": \"\", \"x\": 1}".into(), 400, "unknown field"),
        ("an unknown problem", grade_body("no-such-problem", CORRECT), 404, "unknown problem \"no-such-problem\""),
        ("an oversized body", grade_body("sum-digits", &"#".repeat(40 << 10)), 413, "over 16 KiB"),
    ];
    for (what, body, want, needle) in cases {
        let (status, _, answer) = http(addr, "POST", "/v1/grade", Some(TOKEN), Some(&body));
        assert_eq!(status, want, "{what}: {answer}");
        assert!(json(&answer)["error"].as_str().unwrap().contains(needle), "{what}: {answer}");
        assert_healthy(addr);
    }
    // a slow body: headers promise 200 bytes, 10 arrive, then nothing
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(format!("POST /v1/grade HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 200\r\n\r\n{{\"problem\"").as_bytes()).unwrap();
    let started = Instant::now();
    let (status, _, answer) = read_response(slow);
    assert_eq!(status, 408, "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5), "the slow body held the service for {:?}", started.elapsed());
    assert_healthy(addr);

    // a full queue: 1 grading + 1 waiting; the rest are refused at once with Retry-After
    let clients: Vec<_> = (0..5)
        .map(|_| {
            std::thread::spawn(move || {
                http(addr, "POST", "/v1/grade", Some(TOKEN), Some(&grade_body("sum-digits", HANGS)))
            })
        })
        .collect();
    let answers: Vec<(u16, String, String)> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let refused: Vec<&(u16, String, String)> = answers.iter().filter(|a| a.0 == 429).collect();
    let graded = answers.iter().filter(|a| a.0 == 200).count();
    assert!(graded >= 2 && !refused.is_empty() && graded + refused.len() == 5, "{answers:?}");
    assert!(refused.iter().all(|a| a.1.to_ascii_lowercase().contains("retry-after: 1")), "{refused:?}");
    assert!(answers.iter().filter(|a| a.0 == 200).all(|a| json(&a.2)["label"] == "runtime"), "{answers:?}");
    let (_, _, metrics) = http(addr, "GET", "/metrics", None, None);
    assert!(metrics.contains(&format!("studentsim_rejected_total {}", refused.len())), "{metrics}");
    assert!(metrics.contains("studentsim_limit_hits_total{limit=\"timeout\"}"), "{metrics}");
    assert_healthy(addr);
}

#[test]
fn sigterm_finishes_the_accepted_requests_then_exits() {
    let mut server = start(&["--jobs", "1", "--example-timeout", "1"]);
    let addr = server.addr;
    let in_flight = std::thread::spawn(move || {
        http(addr, "POST", "/v1/grade", Some(TOKEN), Some(&grade_body("sum-digits", HANGS)))
    });
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signals our own child process.
    assert_eq!(unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) }, 0);
    let (status, _, body) = in_flight.join().unwrap();
    assert_eq!(status, 200, "the accepted request was dropped: {body}");
    assert_eq!(json(&body)["label"], "runtime");
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit}");
    assert!(TcpStream::connect(addr).is_err(), "still listening after SIGTERM");
}

/// A line of `/metrics` that starts with `name ` (a series without labels), as a number.
fn metric(addr: SocketAddr, name: &str) -> f64 {
    let (_, _, metrics) = http(addr, "GET", "/metrics", None, None);
    let line = metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_client_that_hangs_up_cancels_its_grades() {
    // Issue 28: three hanging submissions abandoned after 0.5 s kept grading for 2 s apiece while their slots
    // were handed to the next request. Now hanging up stops them, and the slots return once they have stopped.
    let server = start(&["--jobs", "1", "--queue", "2", "--example-timeout", "2"]);
    let addr = server.addr;
    let batch = serde_json::json!({"submissions": (0..3).map(|i| serde_json::json!({"id": i, "problem": "sum-digits", "code": HANGS})).collect::<Vec<_>>()});
    let body = batch.to_string();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "POST /v1/grade HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(metric(addr, "studentsim_accepted_submissions"), 3.0, "the batch was accepted");
    let hung_up = Instant::now();
    drop(stream);
    while metric(addr, "studentsim_accepted_submissions") != 0.0 {
        assert!(hung_up.elapsed() < Duration::from_secs(2), "the abandoned grades went on (they would take 6 s)");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(metric(addr, "studentsim_cancelled_total"), 3.0, "all three were cancelled, none graded");
    let started = Instant::now();
    let (status, _, body) = http(addr, "POST", "/v1/grade", Some(TOKEN), Some(&grade_body("sum-digits", CORRECT)));
    assert_eq!((status, json(&body)["label"].clone()), (200, "no_error".into()), "{body}");
    assert!(started.elapsed() < Duration::from_secs(2), "the next request waited {:?}", started.elapsed());
}

#[test]
fn idle_and_trickling_connections_are_closed_and_cannot_starve_the_service() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    // 64 descriptors, as in the finding: 80 idle sockets used to leave /healthz unanswered.
    let mut command = Command::new(env!("CARGO_BIN_EXE_studentsim"));
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--header-timeout", "1", "--max-connections", "32", "--token-file"])
        .arg(dir.path().join("token"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; it only lowers this child's own descriptor limit.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            let limit = libc::rlimit { rlim_cur: 64, rlim_max: 64 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = command.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr: SocketAddr =
        line.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().parse().unwrap();
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let server = Server { child, addr, _dir: dir };

    // one that sends nothing is closed after the header timeout
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let _ = silent.read(&mut [0u8; 64]);
    assert!(started.elapsed() < Duration::from_secs(3), "a silent connection stayed open {:?}", started.elapsed());
    // one that trickles its head a byte at a time is closed too
    let mut trickle = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n".iter().cycle().take(40) {
        if trickle.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    trickle.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = trickle.read(&mut [0u8; 64]);
    assert!(started.elapsed() < Duration::from_secs(5), "a trickling connection stayed open {:?}", started.elapsed());

    // 80 idle sockets, more than the service has descriptors: /healthz still answers
    let idle: Vec<TcpStream> = (0..80).filter_map(|_| TcpStream::connect(addr).ok()).collect();
    let started = Instant::now();
    assert_healthy(server.addr);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "/healthz took {:?} behind {} idle sockets",
        started.elapsed(),
        idle.len()
    );
}

#[test]
fn shutdown_is_bounded_by_a_half_sent_request() {
    let mut server = start(&["--header-timeout", "2", "--shutdown-timeout", "3"]);
    let mut half = TcpStream::connect(server.addr).unwrap();
    half.write_all(b"POST /v1/grade HTTP/1.1\r\nHost: x\r\nContent-Le").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    // SAFETY: signals our own child process.
    assert_eq!(unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) }, 0);
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "shutdown took {:?} behind a half-sent request",
        started.elapsed()
    );
}

#[test]
fn a_batch_of_huge_exceptions_gets_a_small_answer() {
    // Issue 28: a 319-byte batch of three such submissions drew a 120 MB response. Records are bounded now, so an
    // answer grows with the batch, not with what the submissions raise.
    let server = start(&["--jobs", "2"]);
    let code = "def sum_digits(n):\n    raise ValueError('x' * 40_000_000)\n";
    let batch = serde_json::json!({"submissions": (0..3).map(|i| serde_json::json!({"id": i, "problem": "sum-digits", "code": code})).collect::<Vec<_>>()});
    let (status, _, body) = http(server.addr, "POST", "/v1/grade", Some(TOKEN), Some(&batch.to_string()));
    assert_eq!(status, 200, "{body:.300}");
    assert!(body.len() < 64 << 10, "a {} byte answer", body.len());
    assert!(json(&body)["results"].as_array().unwrap().iter().all(|r| r["reason"] == "ValueError"), "{body:.600}");
}

/// A hidden example's code and expected output never leave the service, with or without the admin token: grade
/// answers carry its outcome and points, and the problem's stub does not hold it.
#[test]
fn hidden_examples_never_leave_the_service() {
    let registry = common::hidden_registry();
    let server = start(&["--problems", registry.path().to_str().unwrap()]);
    for token in [TOKEN, ADMIN] {
        let (status, _, body) = http(
            server.addr,
            "POST",
            "/v1/grade",
            Some(token),
            Some(&grade_body("count-vowels", common::HARD_CODED_VOWELS)),
        );
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains(common::HIDDEN_MARKER), "a grade answer leaks a hidden example: {body}");
        let record = json(&body);
        assert_eq!((record["score"].as_f64(), record["max_score"].as_f64()), (Some(2.0), Some(5.0)), "{body}");
        let (status, _, body) = http(server.addr, "GET", "/v1/problems/count-vowels", Some(token), None);
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains(common::HIDDEN_MARKER), "the problem view leaks a hidden example: {body}");
    }
}
