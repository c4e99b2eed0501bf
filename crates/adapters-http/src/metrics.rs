//! Prometheus metrics: request counts and latency histograms by route and status, and
//! one access-log line per request.
//!
//! Every label comes from a fixed set (CONTRACT §9): the method is one of the methods
//! the API knows or `other`, the route is a registered route or `other`, and the status
//! is a three-digit code. No request can make a new series.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use ports::inbound::ServiceGauges;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The label of a request whose route or method is not one the API knows, so that
/// unknown paths and made-up methods cannot make new series.
pub const OTHER: &str = "other";

/// The route label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = OTHER;

/// The method label: the standard methods the API could answer, else [`OTHER`].
#[must_use]
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => OTHER,
    }
}

#[derive(Debug, Clone, Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// (method, route, status) → series.
type Key = (&'static str, String, u16);

/// The request metrics of one router.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<Key, Series>>,
    /// Each registered path → its canonical spelling (with or without the slash).
    canonical: HashMap<String, String>,
}

impl Metrics {
    /// Metrics for a router whose canonical paths are `paths`; each path is also
    /// served with its trailing slash toggled, and both count as the canonical one.
    #[must_use]
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Self {
        let mut canonical = HashMap::new();
        for path in paths {
            canonical.insert(path.to_owned(), path.to_owned());
            canonical.insert(crate::alternate_path(path), path.to_owned());
        }
        Self {
            series: Mutex::default(),
            canonical,
        }
    }

    /// The route label of a request: its canonical matched path, or
    /// [`UNMATCHED_ROUTE`].
    #[must_use]
    pub fn route_label(&self, matched: Option<&MatchedPath>) -> String {
        matched
            .and_then(|path| self.canonical.get(path.as_str()))
            .map_or_else(|| UNMATCHED_ROUTE.to_owned(), Clone::clone)
    }

    /// Counts one request.
    pub fn observe(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = series
            .entry((method_label(method), route.to_owned(), status))
            .or_default();
        entry.count += 1;
        entry.sum += seconds;
        for (bucket, bound) in entry.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// The Prometheus text exposition of the request metrics and, when the service
    /// could give them, its gauges.
    #[must_use]
    pub fn render(&self, gauges: Option<ServiceGauges>) -> String {
        let series = self
            .series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut out = String::new();
        out.push_str(
            "# HELP http_requests_total HTTP requests handled, by method, route and status.\n",
        );
        out.push_str("# TYPE http_requests_total counter\n");
        for ((method, route, status), s) in &series {
            let _ = writeln!(
                out,
                "http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {}",
                escape(method),
                escape(route),
                s.count
            );
        }
        out.push_str("# HELP http_request_duration_seconds HTTP request latency, by method, route and status.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for ((method, route, status), s) in &series {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{status}\"",
                escape(method),
                escape(route)
            );
            for (bound, count) in BUCKETS.iter().zip(s.buckets) {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        let up = u8::from(gauges.is_some());
        out.push_str(
            "# HELP orgs_database_up Whether the service gauges could be read from the database.\n",
        );
        out.push_str("# TYPE orgs_database_up gauge\n");
        let _ = writeln!(out, "orgs_database_up {up}");
        if let Some(gauges) = gauges {
            let lines: [(&str, &str, u64); 5] = [
                (
                    "orgs_db_pool_connections",
                    "Open database connections.",
                    u64::from(gauges.pool_size),
                ),
                (
                    "orgs_db_pool_idle_connections",
                    "Idle database connections.",
                    u64::from(gauges.pool_idle),
                ),
                (
                    "orgs_db_pool_max_connections",
                    "The most database connections.",
                    u64::from(gauges.pool_max),
                ),
                (
                    "orgs_outbox_backlog",
                    "E-mails waiting in the outbox.",
                    gauges.outbox_backlog,
                ),
                (
                    "orgs_outbox_dead",
                    "E-mails given up on after a permanent failure or too many attempts.",
                    gauges.outbox_dead,
                ),
            ];
            for (name, help, value) in lines {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
                );
            }
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counts every request and writes one log line with its method, route, status,
/// latency and request id.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let route = metrics.route_label(request.extensions().get::<MatchedPath>());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_owned();

    let response = next.run(request).await;

    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    metrics.observe(&method, &route, status, elapsed.as_secs_f64());
    tracing::info!(
        method = method.as_str(),
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        request_id = %request_id,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_counts_in_every_bucket_at_or_above_its_latency() {
        let metrics = Metrics::new(["/organizations/"]);

        metrics.observe(&Method::GET, "/organizations/", 200, 0.03);
        let text = metrics.render(None);

        assert!(text.contains(
            "http_requests_total{method=\"GET\",route=\"/organizations/\",status=\"200\"} 1"
        ));
        assert!(text.contains("le=\"0.025\"} 0"));
        assert!(text.contains("le=\"0.05\"} 1"));
        assert!(text.contains("le=\"+Inf\"} 1"));
        assert!(text.contains("orgs_database_up 0"));
    }

    #[test]
    fn both_spellings_of_a_path_share_one_label() {
        let metrics = Metrics::new(["/organizations/{id}/", "/healthz"]);

        assert_eq!(
            metrics
                .canonical
                .get("/organizations/{id}")
                .map(String::as_str),
            Some("/organizations/{id}/")
        );
        assert_eq!(
            metrics.canonical.get("/healthz/").map(String::as_str),
            Some("/healthz")
        );
        assert_eq!(metrics.route_label(None), UNMATCHED_ROUTE);
    }

    #[test]
    fn made_up_methods_share_the_other_label() {
        let metrics = Metrics::new(["/organizations/"]);

        for index in 0..50 {
            let made_up = Method::from_bytes(format!("MADEUP{index}").as_bytes()).expect("a token");
            metrics.observe(&made_up, "/organizations/", 405, 0.001);
        }
        metrics.observe(&Method::CONNECT, UNMATCHED_ROUTE, 404, 0.001);
        let text = metrics.render(None);

        assert!(text.contains(
            "http_requests_total{method=\"other\",route=\"/organizations/\",status=\"405\"} 50"
        ));
        assert!(
            text.contains("http_requests_total{method=\"other\",route=\"other\",status=\"404\"} 1")
        );
        assert!(!text.contains("MADEUP"));
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }

    #[test]
    fn gauges_are_exposed_when_known() {
        let metrics = Metrics::new([]);

        let text = metrics.render(Some(ServiceGauges {
            pool_size: 4,
            pool_idle: 3,
            pool_max: 10,
            outbox_backlog: 7,
            outbox_dead: 2,
        }));

        for line in [
            "orgs_db_pool_connections 4",
            "orgs_db_pool_idle_connections 3",
            "orgs_db_pool_max_connections 10",
            "orgs_outbox_backlog 7",
            "orgs_outbox_dead 2",
            "orgs_database_up 1",
        ] {
            assert!(text.contains(line), "{line}");
        }
    }
}
