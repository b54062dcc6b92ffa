//! What a consuming service (the worker, the persister) counts, served as
//! Prometheus text on its health listener (`/metrics`): messages by outcome,
//! dead letters by reason, and its backlog (consumer lag).
//!
//! The health listener is loopback in development and reachable only on the
//! stack's internal network in production: nothing here is published.

use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

#[derive(Clone)]
pub struct ConsumerMetrics {
    pub registry: Registry,
    /// `crunch_<service>_messages_total{outcome}`.
    pub messages: IntCounterVec,
    /// `crunch_<service>_dead_lettered_total{reason}`: `reason` is a code
    /// from a fixed set, never free text, so the series stay bounded.
    pub dead_lettered: IntCounterVec,
    /// `crunch_<service>_consumer_lag{<lag_labels>}`: messages not yet handled.
    pub lag: IntGaugeVec,
}

impl ConsumerMetrics {
    /// `service` is the metric prefix after `crunch_` (`worker`, `persister`);
    /// `lag_labels` name where a backlog waits (a queue; a topic and partition).
    pub fn new(service: &str, lag_labels: &[&str]) -> Self {
        let registry = Registry::new_custom(Some(format!("crunch_{service}")), None).expect("a valid metric prefix");
        let messages = IntCounterVec::new(Opts::new("messages_total", "Messages handled, by outcome"), &["outcome"]).expect("valid metric");
        let dead_lettered =
            IntCounterVec::new(Opts::new("dead_lettered_total", "Messages dead-lettered, by reason code"), &["reason"]).expect("valid metric");
        let lag = IntGaugeVec::new(Opts::new("consumer_lag", "Messages waiting to be handled"), lag_labels).expect("valid metric");
        for c in [Box::new(messages.clone()) as Box<dyn prometheus::core::Collector>, Box::new(dead_lettered.clone()), Box::new(lag.clone())] {
            registry.register(c).expect("metrics registered once");
        }
        Self { registry, messages, dead_lettered, lag }
    }

    /// Counts one dead-lettered message.
    pub fn dead_letter(&self, reason: &str) {
        self.dead_lettered.with_label_values(&[reason]).inc();
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_under_the_service_prefix() {
        let m = ConsumerMetrics::new("persister", &["topic", "partition"]);
        m.dead_letter("malformed");
        m.dead_letter("malformed");
        m.messages.with_label_values(&["stored"]).inc();
        m.messages.with_label_values(&["dead_lettered"]).inc_by(2);
        m.lag.with_label_values(&["selections", "0"]).set(7);
        let text = m.render();
        assert!(text.contains("crunch_persister_dead_lettered_total{reason=\"malformed\"} 2"), "{text}");
        assert!(text.contains("crunch_persister_messages_total{outcome=\"dead_lettered\"} 2"), "{text}");
        assert!(text.contains("crunch_persister_messages_total{outcome=\"stored\"} 1"), "{text}");
        assert!(text.contains("crunch_persister_consumer_lag{partition=\"0\",topic=\"selections\"} 7"), "{text}");
    }
}
