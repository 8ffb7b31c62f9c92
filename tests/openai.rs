//! The OpenAI-compatible generator against a real HTTP server on loopback that replies from a script:
//! prompts sent, code extracted, retries on 429/503, per-row errors, a refused key, no server, a hung request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::common;

use common::{EXAMPLES, example_rows, example_streams, json_lines as rows, studentsim};

/// What the script answers: status, extra headers, body; or no answer at all.
enum Reply {
    Json(u16, Vec<(&'static str, String)>, Value),
    Hang,
}

type Script = dyn Fn(&str, usize, &Value) -> Reply + Send + Sync;

/// A loopback HTTP/1.1 server; records every request body; the script sees (path, completion count, body).
struct Server {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

fn serve(script: Box<Script>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (seen, script) = (bodies.clone(), Arc::new(script));
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (seen, script, count) = (seen.clone(), script.clone(), count.clone());
            std::thread::spawn(move || answer(stream, &seen, &*script, &count));
        }
    });
    Server { url, bodies }
}

fn answer(stream: TcpStream, seen: &Mutex<Vec<Value>>, script: &Script, count: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = if path.ends_with("completions") { count.fetch_add(1, Ordering::SeqCst) } else { usize::MAX };
    if body != Value::Null {
        seen.lock().unwrap().push(body.clone());
    }
    match script(&path, n, &body) {
        Reply::Hang => std::thread::sleep(std::time::Duration::from_secs(30)),
        Reply::Json(status, headers, value) => {
            let text = value.to_string();
            let mut out = stream;
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                text.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            let _ = out.write_all(format!("{head}\r\n{text}").as_bytes());
        }
    }
}

fn chat(content: &str) -> Reply {
    Reply::Json(200, vec![], json!({"choices": [{"message": {"role": "assistant", "content": content}}]}))
}

fn rollout(server_url: &str, out: &std::path::Path, extra: &[&str]) -> Output {
    let base = [
        "rollout",
        "next-step",
        "--input",
        EXAMPLES,
        "--k",
        "1",
        "--generator",
        "openai",
        "--model",
        "tiny",
        "--base-url",
        server_url,
    ];
    studentsim(&[&base[..], extra, &["--out", out.to_str().unwrap()]].concat())
}

/// Rows of the bundled examples that have a predecessor: one next step each.
fn next_steps() -> usize {
    example_rows().len() - example_streams()
}

#[test]
fn chat_replies_become_graded_rows_and_failures_are_retried_or_recorded() {
    // Request 0 gets a 503 and request 1 a 429 (both retried); request 2 a reply without code (a per-row error).
    let server = serve(Box::new(|path, n, _| match (path, n) {
        (p, _) if p.ends_with("/models") => Reply::Json(200, vec![], json!({"data": []})),
        (_, 0) => Reply::Json(503, vec![], json!({"error": "overloaded"})),
        (_, 1) => Reply::Json(429, vec![("retry-after", "0".into())], json!({"error": "slow down"})),
        (_, 2) => chat("I would rather not."),
        _ => chat("Here is my attempt:\n```python\ndef sum_digits(n):\n    return 0\n```"),
    }));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sims.jsonl");
    let run = rollout(&server.url, &out, &["--jobs", "1"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let sims = rows(&out);
    assert_eq!(sims.len(), next_steps());
    let failed: Vec<&Value> = sims.iter().filter(|r| r["generated"]["error"].is_string()).collect();
    assert_eq!(failed.len(), 1, "only the reply without code failed");
    assert!(failed[0]["generated"]["error"].as_str().unwrap().contains("holds no code"));
    for sim in sims.iter().filter(|r| r["generated"]["error"].is_null()) {
        assert_eq!(sim["code"], "def sum_digits(n):\n    return 0");
        assert_eq!(sim["source"], "tiny");
        assert_eq!(sim["generated"]["prompt_sha256"].as_str().map(str::len), Some(64));
    }
    let bodies = server.bodies.lock().unwrap();
    assert_eq!(bodies.len(), next_steps() + 2, "one request per row, and two retries");
    let first = &bodies[0];
    assert_eq!(
        (first["model"].as_str(), first["temperature"].as_f64(), first["top_p"].as_f64()),
        (Some("tiny"), Some(0.7), Some(0.8))
    );
    assert_eq!(first["messages"][0]["role"], "system");
    let user = first["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("SUBMISSIONS SO FAR:\n<code>") && user.contains("Wrap the code in <code>"), "{user}");
}

#[test]
fn the_completions_endpoint_gets_the_fine_tuned_layout() {
    let server = serve(Box::new(|path, _, _| match path {
        p if p.ends_with("/models") => Reply::Json(404, vec![], json!({})),
        _ => Reply::Json(200, vec![], json!({"choices": [{"text": "<code>def sum_digits(n):\n    return n"}]})),
    }));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sims.jsonl");
    let run = rollout(&server.url, &out, &["--endpoint", "completions"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(rows(&out).iter().all(|r| r["code"] == "def sum_digits(n):\n    return n"));
    let bodies = server.bodies.lock().unwrap();
    let prompt = bodies[0]["prompt"].as_str().unwrap();
    assert!(prompt.starts_with("PROBLEM INSTRUCTIONS:\n") && prompt.ends_with("</code>\n"), "{prompt}");
    assert!(prompt.contains("\n\nSUBMISSIONS:\n<code>"), "{prompt}");
    assert_eq!(bodies[0]["stop"], json!(["</code>"]));
}

#[test]
fn a_refused_key_an_absent_server_and_a_hung_request_end_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sims.jsonl");

    let refusing =
        serve(Box::new(|_, _, _| Reply::Json(401, vec![], json!({"error": {"message": "Incorrect API key"}}))));
    let run = rollout(&refusing.url, &out, &[]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!((run.status.code(), err.trim_end().lines().count()), (Some(2), 1), "{err}");
    assert!(err.contains("refused the API key (HTTP 401)") && err.contains("Incorrect API key"), "{err}");
    assert!(!out.exists());

    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // bound, then dropped
    let run = rollout(&format!("http://{closed}/v1"), &out, &[]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!((run.status.code(), err.trim_end().lines().count()), (Some(2), 1), "{err}");
    assert!(err.contains("cannot reach"), "{err}");

    let hanging = serve(Box::new(|path, n, _| match (path, n) {
        (p, _) if p.ends_with("/models") => Reply::Json(200, vec![], json!({"data": []})),
        (_, 0) => Reply::Hang,
        _ => chat("<code>def sum_digits(n):\n    return 1</code>"),
    }));
    let started = std::time::Instant::now();
    let run = rollout(&hanging.url, &out, &["--request-timeout", "1", "--retries", "0", "--jobs", "1"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(started.elapsed().as_secs() < 20, "no hang");
    let sims = rows(&out);
    let errors: Vec<&str> = sims.iter().filter_map(|r| r["generated"]["error"].as_str()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("timed out"), "{errors:?}");
}

/// `leaderboard` with a served model: the model runs only in the study's setting (next-step k = 3 with context,
/// and streams) on a seeded sample of each split, which gets its own leaderboard with every generator on it;
/// the full leaderboards stay weight-free.
#[test]
fn leaderboard_samples_the_served_model_and_ranks_it_beside_the_others() {
    let server = serve(Box::new(|path, _, _| match path {
        p if p.ends_with("/models") => Reply::Json(200, vec![], json!({"data": []})),
        _ => chat("```python\ndef sum_digits(n):\n    return n\n```"),
    }));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let args = [
        "leaderboard",
        "--openai-model",
        "tiny",
        "--base-url",
        &server.url,
        "--llm-sample",
        "5",
        "--llm-streams",
        "2",
        "--max-attempts",
        "2",
    ];
    let run = studentsim(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let boards: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("leaderboards.json")).unwrap()).unwrap();
    let sampled: Vec<&Value> =
        boards.iter().filter(|b| b["title"].as_str().unwrap().contains("seeded sample")).collect();
    let titles: Vec<&str> =
        sampled.iter().map(|b| b["title"].as_str().unwrap().split(" on a").next().unwrap()).collect();
    assert_eq!(titles, ["ns_op, next-k3-context", "ns_op, stream", "ns_np, next-k3-context", "ns_np, stream"]);
    for board in &boards {
        let with_model = board["generators"].as_array().unwrap().iter().any(|g| g == "tiny");
        assert_eq!(with_model, sampled.contains(&board), "the model is only on the sampled boards: {}", board["title"]);
    }
    for board in &sampled {
        let title = board["title"].as_str().unwrap();
        let targets: usize = title.rsplit(", ").next().unwrap().split(' ').next().unwrap().parse().unwrap();
        if title.contains("next-k3") {
            assert!(targets >= 5, "at least --llm-sample targets: {title}");
            let pass = board["measures"].as_array().unwrap().iter().find(|m| m["name"] == "pass rate mean").unwrap();
            assert!(pass["values"][4].as_f64().is_some(), "the model's rows are scored: {title}");
        } else {
            assert!(title.contains(": 2 real streams"), "--llm-streams streams: {title}");
        }
    }
    let requests = server.bodies.lock().unwrap().len();
    assert!(requests >= 2 * 5, "the model answered every sampled target ({requests} requests)");
}
