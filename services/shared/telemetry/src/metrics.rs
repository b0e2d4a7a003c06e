use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prometheus::{Encoder, TextEncoder};
use rainlogs_config::{LogFormat, TelemetrySettings};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry.log_level {level:?} is not a valid filter: {reason}")]
    Filter { level: String, reason: String },
    #[error("cannot build the Prometheus exporter: {0}")]
    Exporter(String),
    #[error("telemetry.otlp_endpoint: cannot export traces to {endpoint}: {reason}")]
    Traces { endpoint: String, reason: String },
}

/// The process-wide meter provider and the registry `/metrics` renders.
#[derive(Clone)]
pub struct Telemetry {
    registry: prometheus::Registry,
    provider: SdkMeterProvider,
    /// Set when traces are exported (`telemetry.otlp_endpoint`).
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// A registry and provider of its own, not installed as the process's global one.
    fn unregistered() -> Result<Self, TelemetryError> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        Ok(Self {
            registry,
            provider,
            traces: None,
        })
    }

    /// Sends the spans not exported yet; call before the process exits.
    pub fn flush(&self) {
        if let Some(traces) = &self.traces
            && let Err(e) = traces.shutdown()
        {
            tracing::warn!(error = %e, "traces not all exported at exit");
        }
    }

    /// A meter for one component; instruments from it appear on `/metrics`.
    pub fn meter(&self, name: &'static str) -> opentelemetry::metrics::Meter {
        self.provider.meter(name)
    }

    /// Prometheus text exposition of every instrument.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Installs logging and metrics for the process. Metrics can also be emitted as tracing events
/// (`tracing::info!(monotonic_counter.rainlogs_windows = 1, zone = %z)`) through the
/// tracing-opentelemetry metrics layer. Calling it twice keeps the first subscriber.
pub fn init(settings: &TelemetrySettings) -> Result<Telemetry, TelemetryError> {
    let mut telemetry = Telemetry::unregistered()?;
    opentelemetry::global::set_meter_provider(telemetry.provider.clone());

    let filter = EnvFilter::try_new(&settings.log_level).map_err(|e| TelemetryError::Filter {
        level: settings.log_level.clone(),
        reason: e.to_string(),
    })?;
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    telemetry.traces = settings
        .otlp_endpoint
        .as_deref()
        .map(crate::traces::exporting_to)
        .transpose()?;
    // Spans are exported at info and above whatever `log_level` says: turning logs down must not
    // cut a window's trace in half.
    let spans = telemetry.traces.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("rainlogs"))
            .with_filter(LevelFilter::INFO)
    });
    let metrics = tracing_opentelemetry::MetricsLayer::new(telemetry.provider.clone());
    // A second init in the same process (tests) is not an error worth failing for.
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(metrics)
        .with(spans)
        .try_init();
    Ok(telemetry)
}

#[cfg(test)]
pub(crate) fn for_tests() -> Telemetry {
    Telemetry::unregistered().expect("a Prometheus exporter")
}
