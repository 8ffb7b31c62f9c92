//! `studentsim serve`: the grader as an HTTP service over a problem registry, for course platforms and tutor
//! bots that would rather call it (as they call Judge0) than shell out.
//!
//! Admission is bounded: `--jobs` submissions grade at once and `--queue` more may wait; a request that would
//! overflow the queue is answered 429 with `Retry-After` at once, so a burst never slows down what was already
//! accepted. Bodies are capped in size and in time, every error is JSON with a 4xx status, and on SIGTERM or
//! Ctrl-C the service stops accepting and finishes what it accepted, for at most `--shutdown-timeout`.
//!
//! Connections are bounded too: at most `--max-connections` at once (more wait in the listen backlog), and one
//! that sends no complete request head within `--header-timeout` (silent, trickling, or idle between keep-alive
//! requests) is closed. A client that hangs up cancels its grades (see `api::grade`).

mod api;
mod telemetry;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use tokio::sync::Semaphore;

use super::{Context, LimitArgs, default_jobs, positive_secs, tokio_runtime};
use crate::BadInput;
use crate::grade::{Grader, Tests};
use crate::problems::Problem;
use clap::builder::TypedValueParser as _;

/// serve's defaults that `bench serve` runs the service with too (each in this one place).
pub(in crate::cli) const DEFAULT_QUEUE: usize = 256;
pub(in crate::cli) const DEFAULT_HEADER_TIMEOUT_SECS: f64 = 5.0;
pub(in crate::cli) const DEFAULT_MAX_CONNECTIONS: u16 = 256;

#[derive(Debug, Args)]
#[command(after_help = "Endpoints:\n  \
    POST /v1/grade            {\"problem\": ID, \"code\": ...} -> the record of `grade --json`;\n                            \
    {\"submissions\": [{\"id\", \"problem\", \"code\"}, ...]} -> {\"results\": [...]}\n  \
    GET  /v1/problems         every problem's id, title and entry functions\n  \
    GET  /v1/problems/{id}    statement and stub (expected outputs removed; with the admin token, the solution \
    and the full stub too)\n  \
    GET  /healthz             \"ok\"\n  \
    GET  /metrics             Prometheus text: requests, latency, labels, limit hits, queue\n\n\
    With a token, /v1/ wants `Authorization: Bearer TOKEN`. Errors are {\"error\": ...} with a 4xx status: 400 \
    malformed, 401 no or wrong token, 404 unknown problem, 405 wrong method, 408 body too slow, 413 body or batch \
    too large, 429 queue full (Retry-After). Without the admin token, grade records carry no expected outputs.\n\nExamples:\n  studentsim serve --jobs 2 --token-file token --admin-token-file admin")]
pub struct ServeArgs {
    /// Address to listen on; loopback unless you mean otherwise (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8177")]
    bind: SocketAddr,
    /// A file holding the bearer token /v1/ requires [default: $STUDENTSIM_TOKEN, else none].
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// A file holding the admin token, which also shows solutions and expected outputs [default:
    /// $STUDENTSIM_ADMIN_TOKEN, else no admin access].
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// Submissions graded at once [default: number of cores].
    #[arg(long, short, value_name = "N", default_value_t = default_jobs(), hide_default_value = true, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    jobs: usize,
    /// Submissions that may wait for a free slot; beyond that, 429.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_QUEUE)]
    queue: usize,
    /// Largest request body, in KiB.
    #[arg(long, value_name = "KIB", default_value_t = 1024)]
    max_body_kib: usize,
    /// Seconds a client may take to send its body; slower ones get 408.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    body_timeout: f64,
    /// Seconds a connection may take to send a request's head, and may stay idle between requests; then it is
    /// closed.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_HEADER_TIMEOUT_SECS)]
    header_timeout: f64,
    /// Connections served at once; more wait in the listen backlog until one closes.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS.into(), value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    max_connections: usize,
    /// Seconds to finish accepted requests after SIGTERM or Ctrl-C before the remaining connections are dropped.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    shutdown_timeout: f64,
    #[command(flatten)]
    limits: LimitArgs,
}

/// A registry problem with its parsed tests.
pub(super) struct Served {
    pub problem: Problem,
    pub tests: Arc<Tests>,
}

/// How the service admits and checks requests.
pub(in crate::cli) struct Options {
    pub jobs: usize,
    pub queue: usize,
    pub token: Option<String>,
    pub admin_token: Option<String>,
    pub max_body: usize,
    pub body_timeout: Duration,
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
}

/// What every request handler shares.
pub(in crate::cli) struct Service {
    grader: Arc<Grader>,
    problems: HashMap<String, Served>,
    /// One permit per submission accepted (grading or waiting): `jobs + queue` in all.
    admission: Arc<Semaphore>,
    capacity: usize,
    /// One permit per submission grading now.
    workers: Arc<Semaphore>,
    options: Options,
    telemetry: telemetry::Telemetry,
}

impl Service {
    /// A service over `problems`, each one's tests parsed once here.
    pub(in crate::cli) async fn new(
        grader: Arc<Grader>,
        problems: impl IntoIterator<Item = Problem>,
        options: Options,
    ) -> Result<Arc<Self>> {
        let mut served = HashMap::new();
        for problem in problems {
            let tests =
                grader.problem_tests(&problem).await.with_context(|| format!("reading the tests of {}", problem.id))?;
            served.insert(problem.id.clone(), Served { problem, tests: Arc::new(tests) });
        }
        let capacity = options.jobs + options.queue;
        Ok(Arc::new(Self {
            grader,
            problems: served,
            admission: Arc::new(Semaphore::new(capacity)),
            capacity,
            workers: Arc::new(Semaphore::new(options.jobs)),
            options,
            telemetry: telemetry::Telemetry::new(),
        }))
    }
}

/// Serve `service` on `listener` until `shutdown` resolves, then finish the accepted requests (within the
/// shutdown timeout).
pub(in crate::cli) async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (header_timeout, shutdown_timeout) = (service.options.header_timeout, service.options.shutdown_timeout);
    let slots = Arc::new(Semaphore::new(service.options.max_connections));
    let router = api::router(service);
    let (closing, closing_seen) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors, or a connection reset before it was accepted: try again shortly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let mut closing_seen = closing_seen.clone();
        connections.spawn(async move {
            let _slot = slot;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = async { drop(closing_seen.wait_for(|closing| *closing).await) } => {
                    // Finish the request in progress, if any, then close.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    closing.send_replace(true);
    let drained =
        tokio::time::timeout(shutdown_timeout, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        eprintln!(
            "studentsim serve: {} connections still open after {shutdown_timeout:?}; closing them",
            connections.len()
        );
        connections.shutdown().await;
    }
    Ok(())
}

pub fn run(ctx: &Context, args: ServeArgs) -> Result<ExitCode> {
    let token = read_token(args.token_file.as_ref(), "STUDENTSIM_TOKEN")?;
    let admin_token = read_token(args.admin_token_file.as_ref(), "STUDENTSIM_ADMIN_TOKEN")?;
    let body_timeout = positive_secs("body-timeout", args.body_timeout)?;
    let header_timeout = positive_secs("header-timeout", args.header_timeout)?;
    let shutdown_timeout = positive_secs("shutdown-timeout", args.shutdown_timeout)?;
    if !args.bind.ip().is_loopback() && token.is_none() {
        eprintln!(
            "warning: listening on {} with no --token-file: anyone who can reach it may run code in the sandbox",
            args.bind
        );
    }
    let registry = ctx.registry()?;
    let grader = ctx.grader(&args.limits, args.jobs)?;
    // A grade holds its worker thread until it ends; one thread more than --jobs keeps accepting, reading and
    // refusing requests while every grading slot is busy.
    let rt = tokio_runtime(args.jobs + 1)?;
    let options = Options {
        jobs: args.jobs,
        queue: args.queue,
        token,
        admin_token,
        max_body: args.max_body_kib << 10,
        body_timeout,
        header_timeout,
        max_connections: args.max_connections,
        shutdown_timeout,
    };
    rt.block_on(async move {
        let service = Service::new(grader, registry.iter().cloned(), options).await?;
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .map_err(|e| BadInput(format!("--bind {}: {e}", args.bind)))?;
        // The first line says where, so a script that asked for port 0 learns the port.
        eprintln!(
            "studentsim serve: listening on http://{} ({} problems, {} jobs, queue {})",
            listener.local_addr()?,
            service.problems.len(),
            args.jobs,
            args.queue
        );
        serve(listener, service, shutdown_signal()).await?;
        eprintln!("studentsim serve: stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn read_token(file: Option<&PathBuf>, env: &str) -> Result<Option<String>, BadInput> {
    let token = match file {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| BadInput(format!("{}: cannot read: {e}", path.display())))?
        }
        None => match std::env::var(env) {
            Ok(token) => token,
            Err(_) => return Ok(None),
        },
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        let source = file.map_or_else(|| format!("${env}"), |p| p.display().to_string());
        return Err(BadInput(format!("{source}: the token is empty")));
    }
    Ok(Some(token))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    eprintln!("studentsim serve: shutting down; finishing accepted requests");
}
