//! The routes of `studentsim serve` and their JSON.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::{Served, Service};
use crate::grade::GradeRecord;
use crate::sandbox::Cancel;

pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/v1/grade", post(grade))
        .route("/v1/problems", get(list_problems))
        .route("/v1/problems/{id}", get(show_problem))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint (see `studentsim serve --help`)") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint does not take that method (see `studentsim serve --help`)",
            )
        })
        .with_state(service)
}

/// An error answer: its status and `{"error": ...}`.
struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u32>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(serde_json::json!({ "error": self.message }))).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Who the request is from, by its bearer token.
#[derive(PartialEq, Eq)]
enum Caller {
    User,
    Admin,
}

fn caller(service: &Service, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let matches = |token: &Option<String>| {
        token.as_deref().zip(given).is_some_and(|(t, g)| constant_time_eq(t.as_bytes(), g.as_bytes()))
    };
    if matches(&service.options.admin_token) {
        return Ok(Caller::Admin);
    }
    match &service.options.token {
        None => Ok(Caller::User),
        Some(_) if matches(&service.options.token) => Ok(Caller::User),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong `Authorization: Bearer` token")),
    }
}

/// Equality whose time does not depend on where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct One {
    problem: String,
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    submissions: Vec<BatchItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItem {
    #[serde(default)]
    id: serde_json::Value,
    problem: String,
    code: String,
}

/// The record of `grade --json`, with the problem (and, in a batch, the item's id).
#[derive(Serialize)]
struct Graded<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a serde_json::Value>,
    problem: &'a str,
    #[serde(flatten)]
    record: &'a GradeRecord,
}

async fn grade(State(service): State<Arc<Service>>, request: Request) -> Response {
    let start = Instant::now();
    let response = match grade_request(&service, request, start).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    service.telemetry.request("grade", response.status().as_u16());
    response
}

async fn grade_request(service: &Arc<Service>, request: Request, start: Instant) -> Result<Response, ApiError> {
    let who = caller(service, request.headers())?;
    let body = read_body(service, request.into_body()).await?;
    let bad = |e: serde_json::Error| ApiError::new(StatusCode::BAD_REQUEST, format!("body: {e}"));
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(bad)?;
    let batch = value.get("submissions").is_some();
    let items: Vec<(Option<serde_json::Value>, String, String)> = if batch {
        let b: Batch = serde_json::from_value(value).map_err(bad)?;
        b.submissions.into_iter().map(|i| (Some(i.id), i.problem, i.code)).collect()
    } else {
        let one: One = serde_json::from_value(value).map_err(bad)?;
        vec![(None, one.problem, one.code)]
    };
    if items.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "submissions: empty"));
    }
    if items.len() > service.capacity {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a batch of {} is more than the service accepts at once ({})", items.len(), service.capacity),
        ));
    }
    let mut served: Vec<&Served> = Vec::with_capacity(items.len());
    for (n, (_, problem, _)) in items.iter().enumerate() {
        let found = service.problems.get(problem).ok_or_else(|| {
            let at = if batch { format!("submissions[{n}].problem") } else { "problem".to_owned() };
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("{at}: unknown problem {problem:?} (GET /v1/problems lists them)"),
            )
        })?;
        served.push(found);
    }
    // Admission: all of a request's submissions or none; a full queue answers now instead of making everyone wait.
    let n = u32::try_from(items.len()).expect("checked against the capacity");
    let Ok(admitted) = service.admission.clone().try_acquire_many_owned(n) else {
        service.telemetry.rejected(items.len());
        return Err(ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "the grading queue is full; retry later")
        });
    };
    service.telemetry.accepted(i64::from(n));
    // Each grade runs in its own task and holds its own admission slot until it has really stopped. When the
    // client hangs up, hyper drops this handler, and with it `hung_up`, which cancels the grades (their guests
    // stop at the next epoch tick); the slots come back as each task ends.
    let cancel = Cancel::default();
    let hung_up = CancelOnDrop(cancel.clone());
    let mut admitted = admitted;
    let grades: Vec<_> = items
        .iter()
        .zip(&served)
        .map(|((_, _, code), served)| {
            let slot = admitted.split(1).expect("one slot per submission was admitted");
            let (service, tests, fixed, code, cancel) =
                (service.clone(), served.tests.clone(), served.problem.fixed.clone(), code.clone(), cancel.clone());
            tokio::spawn(async move {
                let record = {
                    let _worker = service.workers.acquire().await.expect("the semaphore is never closed");
                    let record = service.grader.grade_cancellable(&fixed, &code, &tests, &cancel).await;
                    (!cancel.is_cancelled()).then_some(record)
                };
                match &record {
                    Some(record) => service.telemetry.graded(record),
                    None => service.telemetry.cancelled(),
                }
                service.telemetry.accepted(-1);
                drop(slot);
                record
            })
        })
        .collect();
    let mut records = Vec::with_capacity(items.len());
    for task in grades {
        records.push(task.await.expect("a grading task panicked").expect("only a hung-up request is cancelled"));
    }
    drop(hung_up);
    let graded: Vec<serde_json::Value> = items
        .iter()
        .zip(&records)
        .map(|((id, problem, _), record)| {
            let mut graded =
                serde_json::to_value(Graded { id: id.as_ref(), problem, record }).expect("a record serializes");
            if who != Caller::Admin {
                without_expected_outputs(&mut graded);
            }
            graded
        })
        .collect();
    service.telemetry.answered(start.elapsed());
    Ok(if batch {
        axum::Json(serde_json::json!({ "results": graded })).into_response()
    } else {
        axum::Json(&graded[0]).into_response()
    })
}

/// Cancels its grades when dropped: the handler holding it ended, answered or abandoned.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A graded record as a client without the admin token may see it: no example's expected output (the stub they
/// get shows none either), so grading a stub never hands out the answers.
fn without_expected_outputs(graded: &mut serde_json::Value) {
    for example in graded["examples"].as_array_mut().into_iter().flatten() {
        if let Some(example) = example.as_object_mut() {
            example.remove("want");
        }
    }
}

/// The request body, within the size and time limits.
async fn read_body(service: &Service, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over {} KiB", service.options.max_body >> 10))
    };
    match tokio::time::timeout(service.options.body_timeout, axum::body::to_bytes(body, service.options.max_body)).await
    {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the body took over {:?} to arrive", service.options.body_timeout),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => match e.into_inner().downcast_ref::<http_body_util::LengthLimitError>() {
            Some(_) => Err(too_large()),
            None => Err(ApiError::new(StatusCode::BAD_REQUEST, "the body broke off")),
        },
    }
}

#[derive(Serialize)]
struct ProblemSummary<'a> {
    id: &'a str,
    title: &'a str,
    entry: &'a [String],
}

async fn list_problems(State(service): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let response = match caller(&service, &headers) {
        Ok(_) => {
            let mut list: Vec<ProblemSummary> = service
                .problems
                .values()
                .map(|s| ProblemSummary { id: &s.problem.id, title: &s.problem.title, entry: &s.problem.entry })
                .collect();
            list.sort_by_key(|p| p.id);
            axum::Json(serde_json::json!({ "problems": list })).into_response()
        }
        Err(e) => e.into_response(),
    };
    service.telemetry.request("problems", response.status().as_u16());
    response
}

#[derive(Serialize)]
struct ProblemView<'a> {
    id: &'a str,
    title: &'a str,
    statement: &'a str,
    entry: &'a [String],
    /// The stub, its doctests' expected outputs removed unless the caller is an admin.
    stub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    solution: Option<&'a str>,
}

async fn show_problem(State(service): State<Arc<Service>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let response = match caller(&service, &headers) {
        Err(e) => e.into_response(),
        Ok(who) => match service.problems.get(&id) {
            None => ApiError::new(StatusCode::NOT_FOUND, format!("unknown problem {id:?}")).into_response(),
            Some(Served { problem, .. }) => {
                let admin = who == Caller::Admin;
                axum::Json(ProblemView {
                    id: &problem.id,
                    title: &problem.title,
                    statement: &problem.statement,
                    entry: &problem.entry,
                    stub: if admin {
                        problem.todo.clone()
                    } else {
                        crate::problems::without_expected_outputs(&problem.todo)
                    },
                    solution: admin.then_some(problem.solution.as_str()),
                })
                .into_response()
            }
        },
    };
    service.telemetry.request("problem", response.status().as_u16());
    response
}

async fn metrics(State(service): State<Arc<Service>>) -> Response {
    service.telemetry.request("metrics", 200);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], service.telemetry.encode())
        .into_response()
}
