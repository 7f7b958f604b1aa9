//! The Prometheus endpoint: `skytime_`-prefixed metrics encoded by
//! `prometheus-client` (OpenMetrics text) from the same [`StatusReport`] that
//! `skytimectl status --json` prints, so a scrape and the CLI never disagree.
//!
//! The names are the ones `monitoring/skytime-alerts.yml` uses; a unit test
//! checks every metric the rules name is exported.

#[cfg(test)]
mod monitoring_tests;
mod report;
mod series;
#[cfg(test)]
mod tests;

use crate::ctl::report::ReportContext;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use std::sync::Arc;

pub use report::encode_report;

/// The content type of the OpenMetrics text format `prometheus-client` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Reads a fresh report at every scrape and encodes it.
#[derive(Clone)]
pub struct StatusCollector {
    ctx: Arc<ReportContext>,
}

impl std::fmt::Debug for StatusCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusCollector")
    }
}

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_report(&self.ctx.status(), &mut encoder)
    }
}

/// The registry served at `/metrics`.
pub fn registry(ctx: Arc<ReportContext>) -> Registry {
    let mut registry = Registry::with_prefix("skytime");
    registry.register_collector(Box::new(StatusCollector { ctx }));
    registry
}

/// One scrape's text.
pub fn scrape(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::with_capacity(8192);
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}
