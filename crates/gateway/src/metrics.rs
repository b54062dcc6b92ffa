//! Prometheus metrics: requests, durations, jobs by kind and status, queue depth.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub durations: HistogramVec,
    pub jobs: IntGaugeVec,
    pub queue_depth: IntGaugeVec,
    pub submitted: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("crunch".into()), None).unwrap_or_default();
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by method, route and status"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let durations = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request durations by route")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["method", "route"],
        )
        .expect("valid metric");
        let jobs = IntGaugeVec::new(Opts::new("jobs", "Jobs in the database by kind and status"), &["kind", "status"])
            .expect("valid metric");
        let queue_depth = IntGaugeVec::new(Opts::new("queue_depth", "Messages waiting in a job queue"), &["queue"])
            .expect("valid metric");
        let submitted = IntCounterVec::new(
            Opts::new("jobs_submitted_total", "Submissions by kind and outcome (created, reused)"),
            &["kind", "outcome"],
        )
        .expect("valid metric");
        for c in [Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>, Box::new(durations.clone()),
                  Box::new(jobs.clone()), Box::new(queue_depth.clone()), Box::new(submitted.clone())] {
            let _ = registry.register(c);
        }
        Self { registry, requests, durations, jobs, queue_depth, submitted }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
