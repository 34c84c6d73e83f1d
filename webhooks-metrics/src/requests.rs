//! API requests by route and status, fed by the API router ([`webhooks_api::RequestObserver`]).
//! The route is the matched template (`/v2/accounts/{account_id}/webhooks`), never the raw
//! path: one series per route, however many accounts there are.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

type Histograms = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// `webhooks_api_requests_total` and `webhooks_api_request_duration_seconds`.
#[derive(Debug)]
pub struct RequestMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Histograms,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        fn histogram() -> Histogram {
            Histogram::new(webhooks_engine::LATENCY_BUCKETS)
        }
        RequestMetrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(histogram),
        }
    }
}

/// Methods beyond these are counted as `other`: a client cannot grow the series.
fn method_label(method: &str) -> &str {
    match method {
        "GET" | "PUT" | "POST" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => method,
        _ => "other",
    }
}

impl RequestMetrics {
    /// Help texts have no final period: `Registry::register` adds one.
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "webhooks_api_requests",
            "API requests answered, by route template (unmatched: no route), method and status",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "webhooks_api_request_duration",
            "Time to answer an API request, by route template and method",
            Unit::Seconds,
            self.durations.clone(),
        );
    }
}

impl webhooks_api::RequestObserver for RequestMetrics {
    fn observe(&self, route: &str, method: &str, status: u16, took: Duration) {
        let method = method_label(method).to_owned();
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.clone(),
                status: status.to_string(),
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                method,
            })
            .observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webhooks_api::RequestObserver;

    #[test]
    fn requests_are_counted_by_route_method_and_status() {
        let m = RequestMetrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        let route = "/v2/accounts/{account_id}/webhooks";
        m.observe(route, "GET", 200, Duration::from_millis(3));
        m.observe(route, "GET", 200, Duration::from_millis(4));
        m.observe(route, "BREW", 405, Duration::from_millis(1));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains(
            r#"webhooks_api_requests_total{route="/v2/accounts/{account_id}/webhooks",method="GET",status="200"} 2"#
        ), "{text}");
        assert!(text.contains(r#"method="other",status="405"} 1"#), "{text}");
        assert!(text.contains(
            r#"webhooks_api_request_duration_seconds_count{route="/v2/accounts/{account_id}/webhooks",method="GET"} 2"#
        ), "{text}");
    }
}
