use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder, TextEncoder};
use rainlogs_config::{LogFormat, TelemetrySettings};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry.log_level {level:?} is not a valid filter: {reason}")]
    Filter { level: String, reason: String },
    #[error("cannot build the Prometheus exporter: {0}")]
    Exporter(String),
}

/// The process-wide meter provider and the registry `/metrics` renders.
#[derive(Clone)]
pub struct Telemetry {
    registry: prometheus::Registry,
    provider: SdkMeterProvider,
}

impl Telemetry {
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
    let registry = prometheus::Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let provider = SdkMeterProvider::builder().with_reader(exporter).build();
    opentelemetry::global::set_meter_provider(provider.clone());

    let filter = EnvFilter::try_new(&settings.log_level).map_err(|e| TelemetryError::Filter {
        level: settings.log_level.clone(),
        reason: e.to_string(),
    })?;
    let metrics_layer = tracing_opentelemetry::MetricsLayer::new(provider.clone());
    let registry_layer = tracing_subscriber::registry()
        .with(filter)
        .with(metrics_layer);
    // A second init in the same process (tests) is not an error worth failing for.
    let _ = match settings.log_format {
        LogFormat::Json => registry_layer
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry_layer
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    Ok(Telemetry { registry, provider })
}
