//! A metric family as a value: the instrument is built from it, the service descriptor lists it,
//! the operations doc prints it, and a test finds it on `/metrics`. One name, one help text.

use opentelemetry::metrics::{Counter, Gauge, Histogram, InstrumentBuilder, Meter};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// The base unit, as Prometheus names it in the family's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricUnit {
    None,
    Seconds,
    Bytes,
}

impl MetricUnit {
    /// The UCUM code OpenTelemetry carries; the Prometheus exporter turns it into the suffix.
    fn ucum(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Seconds => Some("s"),
            Self::Bytes => Some("By"),
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Seconds => "_seconds",
            Self::Bytes => "_bytes",
        }
    }
}

/// One metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricFamily {
    /// The instrument's name, without the unit and `_total` suffixes the exporter adds.
    pub name: &'static str,
    pub kind: MetricKind,
    pub unit: MetricUnit,
    /// Label names, in the order the doc lists them.
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

impl MetricFamily {
    pub const fn counter(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Self {
            name,
            kind: MetricKind::Counter,
            unit: MetricUnit::None,
            labels,
            help,
        }
    }

    pub const fn gauge(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Self {
            name,
            kind: MetricKind::Gauge,
            unit: MetricUnit::None,
            labels,
            help,
        }
    }

    pub const fn histogram(
        name: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Self {
            name,
            kind: MetricKind::Histogram,
            unit: MetricUnit::None,
            labels,
            help,
        }
    }

    pub const fn in_unit(mut self, unit: MetricUnit) -> Self {
        self.unit = unit;
        self
    }

    /// The family's name on `/metrics`, as Prometheus conventions make it: the unit, then
    /// `_total` for a counter.
    pub fn exposed_name(&self) -> String {
        let mut name = self.name.to_owned();
        if !name.ends_with(self.unit.suffix()) {
            name.push_str(self.unit.suffix());
        }
        if self.kind == MetricKind::Counter {
            name.push_str("_total");
        }
        name
    }

    /// The builder with the family's help and unit.
    fn described<'a, T>(&self, builder: InstrumentBuilder<'a, T>) -> InstrumentBuilder<'a, T> {
        let builder = builder.with_description(self.help);
        match self.unit.ucum() {
            Some(unit) => builder.with_unit(unit),
            None => builder,
        }
    }

    pub fn u64_counter(&self, meter: &Meter) -> Counter<u64> {
        debug_assert_eq!(self.kind, MetricKind::Counter, "{}", self.name);
        self.described(meter.u64_counter(self.name)).build()
    }

    pub fn u64_gauge(&self, meter: &Meter) -> Gauge<u64> {
        debug_assert_eq!(self.kind, MetricKind::Gauge, "{}", self.name);
        self.described(meter.u64_gauge(self.name)).build()
    }

    pub fn i64_gauge(&self, meter: &Meter) -> Gauge<i64> {
        debug_assert_eq!(self.kind, MetricKind::Gauge, "{}", self.name);
        self.described(meter.i64_gauge(self.name)).build()
    }

    pub fn f64_gauge(&self, meter: &Meter) -> Gauge<f64> {
        debug_assert_eq!(self.kind, MetricKind::Gauge, "{}", self.name);
        self.described(meter.f64_gauge(self.name)).build()
    }

    /// A histogram of durations in seconds, with buckets from 1 ms to 2 min: the default
    /// OpenTelemetry buckets are meant for milliseconds and would put every request in the first.
    pub fn seconds_histogram(&self, meter: &Meter) -> Histogram<f64> {
        debug_assert_eq!(self.kind, MetricKind::Histogram, "{}", self.name);
        debug_assert_eq!(self.unit, MetricUnit::Seconds, "{}", self.name);
        meter
            .f64_histogram(self.name)
            .with_description(self.help)
            .with_unit("s")
            .with_boundaries(SECONDS_BUCKETS.to_vec())
            .build()
    }
}

const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_names_follow_prometheus_conventions() {
        let requests = MetricFamily::counter("rainlogs_api_requests", &[], "");
        assert_eq!(requests.exposed_name(), "rainlogs_api_requests_total");
        let published = MetricFamily::counter("rainlogs_collector_published", &[], "")
            .in_unit(MetricUnit::Bytes);
        assert_eq!(
            published.exposed_name(),
            "rainlogs_collector_published_bytes_total"
        );
        let lag = MetricFamily::gauge("rainlogs_projection_lag_seconds", &[], "")
            .in_unit(MetricUnit::Seconds);
        assert_eq!(lag.exposed_name(), "rainlogs_projection_lag_seconds");
    }

    #[test]
    fn families_render_under_their_exposed_names() {
        let telemetry = crate::metrics::for_tests();
        let meter = telemetry.meter("family-test");
        let counter =
            MetricFamily::counter("rl_test_events", &["kind"], "events").in_unit(MetricUnit::Bytes);
        counter
            .u64_counter(&meter)
            .add(3, &[opentelemetry::KeyValue::new("kind", "a")]);
        let histogram = MetricFamily::histogram("rl_test_duration", &[], "durations")
            .in_unit(MetricUnit::Seconds);
        histogram.seconds_histogram(&meter).record(0.003, &[]);
        let gauge = MetricFamily::gauge("rl_test_age", &[], "age").in_unit(MetricUnit::Seconds);
        gauge.i64_gauge(&meter).record(7, &[]);
        let text = telemetry.render();
        for family in [counter, histogram, gauge] {
            assert!(
                text.contains(&format!("# TYPE {} ", family.exposed_name())),
                "{} missing from:\n{text}",
                family.exposed_name()
            );
        }
        assert!(
            text.lines()
                .any(|l| l.starts_with("rl_test_duration_seconds_bucket{")
                    && l.contains("le=\"0.005\"")
                    && l.ends_with(" 1")),
            "seconds buckets: {text}"
        );
    }
}
