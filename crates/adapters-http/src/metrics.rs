//! Prometheus metrics on the `metrics` facade and `metrics-exporter-prometheus`: request
//! counts and latency histograms by method, route and status, and the service gauges.
//!
//! Every label comes from a fixed set (CONTRACT §9): the method is one of the methods
//! the API knows or `other`, the route is a registered route or `other`, and the status
//! is a three-digit code. No request can make a new series.
//!
//! Each router has its own recorder, never installed as the global one, so that several
//! services in one process (the tests) count apart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use axum::extract::MatchedPath;
use axum::http::Method;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use ports::inbound::ServiceGauges;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The request counter.
const REQUESTS: &str = "http_requests_total";
/// The request latency histogram.
const LATENCY: &str = "http_request_duration_seconds";

/// The service gauges and their help, in the order `Metrics::render` gives their values.
const GAUGES: [(&str, &str); 7] = [
    (
        "orgs_database_up",
        "Whether the service gauges could be read from the database.",
    ),
    ("orgs_db_pool_connections", "Open database connections."),
    (
        "orgs_db_pool_idle_connections",
        "Idle database connections.",
    ),
    (
        "orgs_db_pool_max_connections",
        "The most database connections.",
    ),
    ("orgs_outbox_backlog", "E-mails waiting in the outbox."),
    (
        "orgs_outbox_dead",
        "E-mails given up on after a permanent failure or too many attempts.",
    ),
    ("orgs_webhook_backlog", "Webhook deliveries pending."),
];

/// The recorder keeps each latency until it is folded into its histogram, at a scrape
/// or at an upkeep: this many requests run one upkeep, so memory stays bounded even
/// when nobody scrapes.
const UPKEEP_EVERY: u64 = 64;

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

/// The request metrics of one router.
#[derive(Debug)]
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    observed: AtomicU64,
    /// Each registered path → its canonical spelling (with or without the slash).
    canonical: HashMap<String, String>,
    /// The counter and histogram of each series seen, by (method, status) then route:
    /// a request counts without building its labels or looking them up in the
    /// recorder. The labels come from fixed sets, so this stays small.
    series: RwLock<SeriesByLabels>,
}

/// The handles of one series.
type Series = (metrics::Counter, metrics::Histogram);

/// Series by (method, status), then by route.
type SeriesByLabels = HashMap<(&'static str, u16), HashMap<String, Series>>;

/// A recorder that renders histograms with [`BUCKETS`].
fn recorder() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets(&BUCKETS)
        .expect("the bucket list is not empty")
        .build_recorder()
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
        let recorder = recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!(
                REQUESTS,
                "HTTP requests handled, by method, route and status."
            );
            metrics::describe_histogram!(
                LATENCY,
                "HTTP request latency, by method, route and status."
            );
        });
        Self {
            handle: recorder.handle(),
            recorder,
            observed: AtomicU64::new(0),
            canonical,
            series: RwLock::default(),
        }
    }

    /// The route label of a request: its canonical matched path, or
    /// [`UNMATCHED_ROUTE`].
    #[must_use]
    pub fn route_label(&self, matched: Option<&MatchedPath>) -> &str {
        matched
            .and_then(|path| self.canonical.get(path.as_str()))
            .map_or(UNMATCHED_ROUTE, String::as_str)
    }

    /// Counts one request.
    pub fn observe(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        let count = |(counter, histogram): &Series| {
            counter.increment(1);
            histogram.record(seconds);
        };
        // Counted under the read lock, without cloning the handles (two `Arc`s).
        let counted = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(method, status))
            .and_then(|routes| routes.get(route))
            .map(count)
            .is_some();
        if !counted {
            count(&self.register(method, route, status));
        }
        if self.observed.fetch_add(1, Ordering::Relaxed) % UPKEEP_EVERY == UPKEEP_EVERY - 1 {
            self.handle.run_upkeep();
        }
    }

    /// The handles of a series seen for the first time, kept for the next requests.
    fn register(&self, method: &'static str, route: &str, status: u16) -> Series {
        let labels = [
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        let series = metrics::with_local_recorder(&self.recorder, || {
            (
                metrics::counter!(REQUESTS, &labels),
                metrics::histogram!(LATENCY, &labels),
            )
        });
        self.series
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((method, status))
            .or_default()
            .entry(route.to_owned())
            .or_insert(series)
            .clone()
    }

    /// The Prometheus text exposition of the request metrics and of the service gauges,
    /// which are shown only when the service could give them.
    #[must_use]
    pub fn render(&self, gauges: Option<ServiceGauges>) -> String {
        // The gauges are read at each scrape: a recorder of their own, made for this
        // page, shows only what is known now.
        let values = match gauges {
            None => vec![0.0],
            #[allow(clippy::cast_precision_loss)] // counts far below 2^53
            Some(gauges) => vec![
                1.0,
                f64::from(gauges.pool_size),
                f64::from(gauges.pool_idle),
                f64::from(gauges.pool_max),
                gauges.outbox_backlog as f64,
                gauges.outbox_dead as f64,
                gauges.webhook_backlog as f64,
            ],
        };
        let current = recorder();
        metrics::with_local_recorder(&current, || {
            for ((name, help), value) in GAUGES.into_iter().zip(values) {
                metrics::describe_gauge!(name, help);
                metrics::gauge!(name).set(value);
            }
        });
        let mut page = self.handle.render();
        page.push_str(&current.handle().render());
        page
    }
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
    fn each_series_keeps_its_own_count_across_requests() {
        let metrics = Metrics::new(["/organizations/", "/healthz"]);

        for (method, route, status, times) in [
            (Method::GET, "/organizations/", 200, 3),
            (Method::GET, "/organizations/", 404, 2),
            (Method::POST, "/organizations/", 200, 1),
            (Method::GET, "/healthz", 200, 4),
        ] {
            for _ in 0..times {
                metrics.observe(&method, route, status, 0.001);
            }
        }
        let text = metrics.render(None);

        for (labels, count) in [
            ("method=\"GET\",route=\"/organizations/\",status=\"200\"", 3),
            ("method=\"GET\",route=\"/organizations/\",status=\"404\"", 2),
            (
                "method=\"POST\",route=\"/organizations/\",status=\"200\"",
                1,
            ),
            ("method=\"GET\",route=\"/healthz\",status=\"200\"", 4),
        ] {
            assert!(
                text.contains(&format!("http_requests_total{{{labels}}} {count}")),
                "{labels} {count}: {text}"
            );
        }
    }

    #[test]
    fn two_routers_in_one_process_count_apart() {
        let first = Metrics::new(["/healthz"]);
        let second = Metrics::new(["/healthz"]);

        for _ in 0..(UPKEEP_EVERY * 2 + 1) {
            first.observe(&Method::GET, "/healthz", 200, 0.001);
        }

        let counted = format!(
            "http_requests_total{{method=\"GET\",route=\"/healthz\",status=\"200\"}} {}",
            UPKEEP_EVERY * 2 + 1
        );
        assert!(first.render(None).contains(&counted));
        assert!(first.render(None).contains(&format!(
            "http_request_duration_seconds_count{{method=\"GET\",route=\"/healthz\",status=\"200\"}} {}",
            UPKEEP_EVERY * 2 + 1
        )));
        assert!(!second.render(None).contains("http_requests_total{"));
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
            webhook_backlog: 3,
        }));

        for line in [
            "orgs_db_pool_connections 4",
            "orgs_db_pool_idle_connections 3",
            "orgs_db_pool_max_connections 10",
            "orgs_outbox_backlog 7",
            "orgs_outbox_dead 2",
            "orgs_webhook_backlog 3",
            "orgs_database_up 1",
        ] {
            assert!(text.contains(line), "{line}");
        }
    }
}
