//! The service's Prometheus metrics (`GET /metrics`), in the text exposition format.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::grade::GradeRecord;
use crate::sandbox::Limit;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LabelLabels {
    label: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

pub struct Telemetry {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
    grades: Family<LabelLabels, Counter>,
    limit_hits: Family<LimitLabels, Counter>,
    rejected: Counter,
    cancelled: Counter,
    queued: Gauge,
}

impl Telemetry {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("studentsim");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by endpoint and status", requests.clone());
        // 1 ms to about 65 s
        let latency = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register(
            "grade_request_seconds",
            "Time from accepting a grade request to its answer",
            latency.clone(),
        );
        let grades = Family::<LabelLabels, Counter>::default();
        registry.register("grades", "Submissions graded, by label", grades.clone());
        let limit_hits = Family::<LimitLabels, Counter>::default();
        registry.register(
            "limit_hits",
            "Submissions stopped by a sandbox limit (timeout, memory, output_limit, ...)",
            limit_hits.clone(),
        );
        let rejected = Counter::default();
        registry.register("rejected", "Submissions refused with 429 because the queue was full", rejected.clone());
        let cancelled = Counter::default();
        registry.register(
            "cancelled",
            "Submissions whose grade was stopped because the client hung up",
            cancelled.clone(),
        );
        let queued = Gauge::default();
        registry.register(
            "accepted_submissions",
            "Submissions accepted and not yet answered (grading or waiting)",
            queued.clone(),
        );
        Self { registry, requests, latency, grades, limit_hits, rejected, cancelled, queued }
    }

    pub fn request(&self, endpoint: &'static str, status: u16) {
        self.requests.get_or_create(&RequestLabels { endpoint, status }).inc();
    }

    pub fn graded(&self, record: &GradeRecord) {
        self.grades.get_or_create(&LabelLabels { label: record.label.as_str() }).inc();
        let limit = record.examples.iter().find_map(|e| e.limit).or_else(|| {
            // a limit that stopped the module before any example
            record.reason.as_deref().and_then(Limit::from_name)
        });
        if let Some(limit) = limit {
            self.limit_hits.get_or_create(&LimitLabels { limit: limit.name() }).inc();
        }
    }

    pub fn answered(&self, took: Duration) {
        self.latency.observe(took.as_secs_f64());
    }

    pub fn rejected(&self, submissions: usize) {
        self.rejected.inc_by(submissions as u64);
    }

    pub fn cancelled(&self) {
        self.cancelled.inc();
    }

    pub fn accepted(&self, delta: i64) {
        self.queued.inc_by(delta);
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
