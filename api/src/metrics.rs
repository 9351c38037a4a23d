//! Prometheus metrics: requests, login outcomes and plugin call latency.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    login_attempts: IntCounterVec,
    plugin_calls: HistogramVec,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("gatehouse_http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )
        .expect("metric definition is static and valid");
        let http_duration = HistogramVec::new(
            HistogramOpts::new("gatehouse_http_request_seconds", "HTTP request latency"),
            &["method", "route"],
        )
        .expect("metric definition is static and valid");
        let login_attempts = IntCounterVec::new(
            Opts::new(
                "gatehouse_login_attempts_total",
                "Finished login attempts by protocol, outcome and reason",
            ),
            &["protocol", "outcome", "reason"],
        )
        .expect("metric definition is static and valid");
        let plugin_calls = HistogramVec::new(
            HistogramOpts::new("gatehouse_plugin_call_seconds", "Plugin call latency")
                .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["protocol", "method", "outcome"],
        )
        .expect("metric definition is static and valid");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(login_attempts.clone()),
            Box::new(plugin_calls.clone()),
        ] {
            registry
                .register(collector)
                .expect("each metric name is registered once");
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            login_attempts,
            plugin_calls,
        }
    }

    /// Counts one HTTP request. `route` is the matched pattern, never the raw path.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one finished login.
    pub fn login(&self, protocol: &str, outcome: &str, reason: &str) {
        self.login_attempts
            .with_label_values(&[protocol, outcome, reason])
            .inc();
    }

    /// Records one plugin call.
    pub fn plugin_call(&self, protocol: &str, method: &str, elapsed: Duration, outcome: &str) {
        self.plugin_calls
            .with_label_values(&[protocol, method, outcome])
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut buffer).is_err() {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
