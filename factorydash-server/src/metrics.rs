//! `/metrics` in the OpenMetrics text format (which Prometheus scrapes), on
//! prometheus-client: per source the observations stored, the ingest rate, what waits to
//! be stored, gaps, restarts and reconnects and how long since the last contact; the
//! WebSocket clients; and the latency of every HTTP route as a histogram.

use std::sync::Arc;

use chrono::Utc;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::health::SourceHealth;
use crate::state::App;

/// The route label of a request latency.
pub type RouteLabels = Vec<(&'static str, &'static str)>;

/// The registry and the request latency histograms it holds.
pub struct Metrics {
    /// Everything `/metrics` encodes.
    pub registry: Registry,
    /// Seconds per request, by route.
    pub latency: Family<RouteLabels, Histogram>,
}

impl Metrics {
    /// A registry reading `app` at each scrape.
    pub fn new(app: Arc<App>) -> Self {
        let mut registry = Registry::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 0.25 ms to about 4 s.
            Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
        });
        registry.register(
            "factorydash_http_request_duration_seconds",
            "Time to answer an HTTP request, by route (WebSocket upgrades excluded)",
            latency.clone(),
        );
        registry.register_collector(Box::new(AppCollector(app)));
        Metrics { registry, latency }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// `value` escaped as an OpenMetrics label value: `\\`, `\"` and `\n` for a backslash,
/// a double quote and a line feed (OpenMetrics 1.0, "ABNF": `escaped-string`).
/// prometheus-client writes label values as they are.
pub fn label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The `source` label of a source: its URL with credentials redacted, escaped.
fn source_label(h: &SourceHealth) -> String {
    label_value(&crate::redact::redacted(&h.source))
}

struct AppCollector(Arc<App>);

/// A per-source counter: name, help, value.
type SourceCounter = (&'static str, &'static str, fn(&SourceHealth) -> u64);
/// A per-source gauge: name, help, value at an instant.
type SourceGauge = (
    &'static str,
    &'static str,
    fn(&SourceHealth, chrono::DateTime<Utc>) -> f64,
);

impl std::fmt::Debug for AppCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppCollector")
    }
}

impl Collector for AppCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let health = self.0.health.all();
        let now = Utc::now();
        let counters: [SourceCounter; 5] = [
            (
                "factorydash_source_observations_stored",
                "Observations stored from the source since this process started",
                |h| h.observations,
            ),
            (
                "factorydash_source_gaps",
                "Gaps recorded (observations the agent lost before they were read)",
                |h| h.gaps,
            ),
            (
                "factorydash_source_restarts",
                "Agent restarts seen (instanceId changes)",
                |h| h.restarts,
            ),
            (
                "factorydash_source_instance_switches",
                "Answers with an instanceId followed before (an agent alternating instances)",
                |h| h.instance_switches,
            ),
            (
                "factorydash_source_reconnects",
                "Streams lost and reopened",
                |h| h.reconnects,
            ),
        ];
        for (name, help, value) in counters {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for h in &health {
                let labels = [("source", source_label(h))];
                ConstCounter::new(value(h)).encode(family.encode_family(&labels)?)?;
            }
        }
        let gauges: [SourceGauge; 4] = [
            (
                "factorydash_source_observations_per_second",
                "Observations stored per second, averaged over about ten seconds",
                |h, _| h.observations_per_second,
            ),
            (
                "factorydash_source_buffered_observations",
                "Observations read from the source and waiting to be stored",
                |h, _| h.buffered as f64,
            ),
            (
                "factorydash_source_seconds_since_contact",
                "Seconds since the last successful answer from the source (NaN: never)",
                |h, now| {
                    h.last_contact
                        .map_or(f64::NAN, |t| (now - t).as_seconds_f64())
                },
            ),
            (
                "factorydash_source_up",
                "1 while the source answers and its observations are stored, else 0",
                |h, _| {
                    f64::from(u8::from(
                        h.unreachable_since.is_none() && h.store_unavailable_since.is_none(),
                    ))
                },
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for h in &health {
                let labels = [("source", source_label(h))];
                ConstGauge::new(value(h, now)).encode(family.encode_family(&labels)?)?;
            }
        }
        let clients = ConstGauge::new(self.0.live.clients() as i64);
        clients.encode(encoder.encode_descriptor(
            "factorydash_websocket_clients",
            "Browsers connected for live updates",
            None,
            clients.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::label_value;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            label_value("http://h/\"x\"\n# EOF\\"),
            r#"http://h/\"x\"\n# EOF\\"#
        );
    }
}
