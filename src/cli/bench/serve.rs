//! `studentsim-dev bench serve`: `studentsim serve` on loopback under many concurrent clients (Refactory's programs
//! mixed with the hostile corpus and leak probes), against `grade --jobs N` on the same submissions in the same
//! run; then hostile clients (slow, oversized, malformed, unknown problems) while it keeps serving.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use clap::Args;
use clap::builder::TypedValueParser as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::super::serve::{Options, Service, serve};
use super::super::{Context, LimitArgs, output::progress, tokio_runtime};
use super::grade::{calibrate_all, problem_of};
use super::load::{HOSTILE, Kind, LEAK_PROBE, memory, plan};
use crate::BadInput;
use crate::grade::GradeRecord;
use crate::grade::batch::grade_many;
use crate::problems::refactory::{self, Verdict};

#[derive(Debug, Args)]
pub struct ServeBenchArgs {
    /// The Refactory dataset folder (its correct and wrong programs are the real part of the load).
    #[arg(long, value_name = "DIR", default_value = "../shared/data/refactory")]
    refactory: std::path::PathBuf,
    /// Requests in all, one submission each.
    #[arg(long, value_name = "N", default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    requests: usize,
    /// Concurrent clients.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    clients: usize,
    /// Hostile submissions per thousand.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u16).range(0..=1000).map(usize::from))]
    hostile_per_mille: usize,
    /// Submissions graded at once, by the service and by the `grade` it is compared with.
    #[arg(long, short, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    jobs: usize,
    /// The service's queue (submissions waiting beyond --jobs); smaller than --clients to see 429s.
    #[arg(long, value_name = "N", default_value_t = crate::cli::serve::DEFAULT_QUEUE)]
    queue: usize,
    /// Hostile clients of each kind (slow body, oversized body, malformed JSON, unknown problem).
    #[arg(long, value_name = "N", default_value_t = 25)]
    hostile_clients: usize,
    /// Seeds the clients' submissions and timing.
    #[arg(long, value_name = "N", default_value_t = 15)]
    seed: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// One answered request of the load.
struct Answer {
    latency: Duration,
    retries_after_429: usize,
    record: Option<GradeRecord>,
    failure: Option<String>,
}

pub fn run(ctx: &Context, args: ServeBenchArgs) -> Result<ExitCode> {
    let mut problems = refactory::import(&args.refactory)?;
    let programs = refactory::programs(&args.refactory, &[Verdict::Correct, Verdict::Wrong])?;
    if programs.is_empty() {
        return Err(BadInput(format!("{}: no programs to grade", args.refactory.display())).into());
    }
    // Clients and the service share the runtime; grading is bounded by the service's --jobs, and the thread
    // beyond them serves HTTP (as `serve` runs).
    let rt = tokio_runtime(args.jobs + 1)?;
    let grader = ctx.grader(&args.limits, args.jobs)?;
    calibrate_all(&rt, &grader, &mut problems, &args.limits)?;
    let kinds = plan(args.requests, 1000, args.hostile_per_mille, programs.len(), args.seed);
    let mut submissions: Vec<(String, String)> = Vec::with_capacity(kinds.len());
    for (turn, kind) in kinds.iter().enumerate() {
        let problem = &problems[(turn + 1) % problems.len()];
        submissions.push(match *kind {
            Kind::Real(i) => {
                let p = &programs[i];
                let code = std::fs::read_to_string(&p.path).with_context(|| format!("reading {}", p.path.display()))?;
                (p.problem_id.clone(), code)
            }
            Kind::Hostile(h) => {
                (problem.id.clone(), HOSTILE[h].1.replace("{f}", &problem.entry[0]).replace("{deep}", &"(".repeat(300)))
            }
            Kind::LeakProbe => (problem.id.clone(), format!("{LEAK_PROBE}\n{}", problem.solution)),
        });
    }

    // The peer: `grade --jobs N` on the same submissions, in this process.
    eprintln!("grading {} submissions with grade --jobs {} (the peer)", submissions.len(), args.jobs);
    let items = submissions.iter().map(|(id, code)| (problem_of(&problems, id), code.clone())).collect();
    let bar = progress(submissions.len(), "grade");
    let started = Instant::now();
    let reference: Vec<GradeRecord> =
        rt.block_on(grade_many(&grader, items, args.jobs, &bar))?.into_iter().map(|g| g.record).collect();
    let grade_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let rss_before = memory("VmRSS")?;

    let options = Options {
        jobs: args.jobs,
        queue: args.queue,
        token: None,
        admin_token: Some(BENCH_ADMIN.into()),
        // smaller and shorter than serve's defaults, so the hostile clients' requests end quickly
        max_body: 64 << 10,
        body_timeout: Duration::from_secs(2),
        shutdown_timeout: Duration::from_secs(5),
        // as serve runs by default
        header_timeout: Duration::from_secs_f64(crate::cli::serve::DEFAULT_HEADER_TIMEOUT_SECS),
        max_connections: crate::cli::serve::DEFAULT_MAX_CONNECTIONS.into(),
    };
    let service = rt.block_on(Service::new(grader, problems.iter().cloned(), options))?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(serve(listener, service, async move {
        let _ = stopped.await;
    }));
    eprintln!("{} requests from {} clients to http://{addr}", submissions.len(), args.clients);
    let client = crate::generate::openai::http_client(Duration::from_secs(120))?;
    let url = format!("http://{addr}/v1/grade");
    let submissions = Arc::new(submissions);
    let next = Arc::new(AtomicUsize::new(0));
    let bar = progress(submissions.len(), "serve");
    let started = Instant::now();
    let answers: Vec<(usize, Answer)> = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..args.clients {
            let (client, url, submissions, next, bar) =
                (client.clone(), url.clone(), submissions.clone(), next.clone(), bar.clone());
            tasks.spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((problem, code)) = submissions.get(i) else { break };
                    mine.push((i, request(&client, &url, problem, code).await));
                    bar.inc(1);
                }
                mine
            });
        }
        let mut all = Vec::new();
        while let Some(done) = tasks.join_next().await {
            all.extend(done.expect("a client task panicked"));
        }
        all
    });
    let serve_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let peak_mib = memory("VmHWM")?;

    // Verdicts: real programs and leak probes must get exactly grade's record; hostile ones its label.
    let mut wrong = Vec::new();
    let mut failures = Vec::new();
    let mut latencies: Vec<f64> = Vec::new();
    let mut retried = 0;
    for (i, answer) in &answers {
        latencies.push(answer.latency.as_secs_f64());
        retried += answer.retries_after_429;
        match (&answer.record, &answer.failure) {
            (Some(record), _) => {
                let same = match kinds[*i] {
                    Kind::Hostile(h) => record.label == HOSTILE[h].2 && record.label == reference[*i].label,
                    Kind::Real(_) | Kind::LeakProbe => *record == reference[*i],
                };
                if !same {
                    wrong.push(format!(
                        "submission {}: served {:?}, grade gave {:?}",
                        i + 1,
                        record.label,
                        reference[*i].label
                    ));
                }
            }
            (None, failure) => {
                failures.push(format!("submission {}: {}", i + 1, failure.as_deref().unwrap_or("no answer")))
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let quantile = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];

    let hostile = rt.block_on(hostile_clients(addr, args.hostile_clients, &problems[0].id))?;
    let healthy = rt
        .block_on(async { client.get(format!("http://{addr}/healthz")).send().await })
        .is_ok_and(|r| r.status().is_success());
    let _ = stop.send(());
    rt.block_on(server)??;

    let grade_rate = submissions.len() as f64 / grade_seconds;
    let serve_rate = submissions.len() as f64 / serve_seconds;
    let attempts = submissions.len() + retried;
    let figures = serde_json::json!({
        "requests": submissions.len(), "clients": args.clients, "jobs": args.jobs, "queue": args.queue,
        "serve_per_second": serve_rate, "grade_per_second": grade_rate,
        "p50_seconds": quantile(0.5), "p99_seconds": quantile(0.99),
        "share_429": retried as f64 / attempts as f64, "peak_rss_mib": peak_mib, "rss_before_serving_mib": rss_before,
        "wrong_verdicts": wrong.len(), "failed_requests": failures.len(), "hostile_clients": hostile, "healthy_after": healthy,
        "ratios": {"serve_vs_grade": serve_rate / grade_rate},
    });
    if args.json {
        println!("{figures}");
    } else {
        println!(
            "{} requests from {} clients, {} graded at once, queue {}",
            submissions.len(),
            args.clients,
            args.jobs,
            args.queue
        );
        println!(
            "  serve            {serve_rate:>7.1} submissions/s   p50 {:.3} s   p99 {:.3} s",
            quantile(0.5),
            quantile(0.99)
        );
        println!("  grade --jobs {}   {grade_rate:>7.1} submissions/s   (the same submissions, this run)", args.jobs);
        println!("  serve / grade    {:.2}", serve_rate / grade_rate);
        println!(
            "  429 answers      {retried} of {attempts} attempts ({:.1}%), each retried after Retry-After",
            100.0 * retried as f64 / attempts as f64
        );
        println!("  peak RSS         {peak_mib:.1} MiB ({rss_before:.1} MiB before serving)");
        println!("  verdicts         {} differ from grade's; {} requests failed", wrong.len(), failures.len());
        for (kind, (sent, as_expected, status)) in hostile
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k, (v["sent"].clone(), v["as_expected"].clone(), v["status"].clone())))
        {
            println!("  hostile: {kind:<16} {sent} sent, {as_expected} answered {status}");
        }
        println!("  healthy after    {healthy}");
        for line in wrong.iter().chain(&failures).take(20) {
            println!("  {line}");
        }
    }
    let hostile_ok = hostile.as_object().into_iter().flatten().all(|(_, v)| v["sent"] == v["as_expected"]);
    ensure!(
        wrong.is_empty() && failures.is_empty() && healthy && hostile_ok,
        "the service answered wrongly (listed above)"
    );
    Ok(ExitCode::SUCCESS)
}

/// The bench compares whole records with `grade`'s, expected outputs included, so it calls as the admin (a user's
/// records carry no `want`).
const BENCH_ADMIN: &str = "bench-serve-admin";

/// POST one submission; a 429 is retried after its Retry-After.
async fn request(client: &reqwest::Client, url: &str, problem: &str, code: &str) -> Answer {
    let started = Instant::now();
    let body = serde_json::json!({"problem": problem, "code": code});
    let mut retries_after_429 = 0;
    loop {
        let sent = client.post(url).bearer_auth(BENCH_ADMIN).json(&body).send().await;
        let failure =
            |why: String| Answer { latency: started.elapsed(), retries_after_429, record: None, failure: Some(why) };
        let response = match sent {
            Ok(r) => r,
            Err(e) => return failure(format!("{e:#}")),
        };
        if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            retries_after_429 += 1;
            let secs = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(secs)).await;
            continue;
        }
        let status = response.status();
        return match response.json::<GradeRecord>().await {
            Ok(record) if status.is_success() => {
                Answer { latency: started.elapsed(), retries_after_429, record: Some(record), failure: None }
            }
            Ok(_) => failure(format!("status {status}")),
            Err(e) => failure(format!("status {status}: {e:#}")),
        };
    }
}

/// Hostile clients of each kind, all at once: (kind → sent, answered as expected, the expected status).
async fn hostile_clients(addr: std::net::SocketAddr, each: usize, problem: &str) -> Result<serde_json::Value> {
    let kinds: [(&str, String, bool, u16); 4] = [
        ("slow body", format!("{{\"problem\": \"{problem}\""), true, 408),
        (
            "oversized body",
            serde_json::json!({"problem": problem, "code": "#".repeat(100 << 10)}).to_string(),
            false,
            413,
        ),
        ("malformed JSON", "{\"problem\": ".to_owned(), false, 400),
        ("unknown problem", serde_json::json!({"problem": "no-such-problem", "code": "x = 1"}).to_string(), false, 404),
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for (k, (_, body, slow, _)) in kinds.iter().enumerate() {
        for _ in 0..each {
            let (body, slow) = (body.clone(), *slow);
            tasks.spawn(async move { (k, raw_post(addr, &body, slow).await) });
        }
    }
    let mut counts = vec![0usize; kinds.len()];
    while let Some(done) = tasks.join_next().await {
        let (k, status) = done?;
        if status.is_ok_and(|s| s == kinds[k].3) {
            counts[k] += 1;
        }
    }
    Ok(kinds
        .iter()
        .zip(counts)
        .map(|((name, _, _, status), ok)| {
            (name.to_string(), serde_json::json!({"sent": each, "as_expected": ok, "status": status}))
        })
        .collect())
}

/// POST `body` over a raw connection; a slow client announces more bytes than it sends, then waits.
async fn raw_post(addr: std::net::SocketAddr, body: &str, slow: bool) -> Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let length = if slow { body.len() + 100 } else { body.len() };
    let head = format!(
        "POST /v1/grade HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let _ = stream.write_all(body.as_bytes()).await; // the service may answer 413 and close before the end
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no HTTP status in the answer")
}
