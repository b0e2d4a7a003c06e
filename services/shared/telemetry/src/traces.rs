//! Traces over OTLP/HTTP, when `telemetry.otlp_endpoint` is set: `tracing` spans become
//! OpenTelemetry spans, and the W3C trace context travels in NATS headers (`traceparent`), so a
//! window's path (collector → archiver → sealer) is one trace although three services handle it.

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::TelemetryError;

/// The provider exporting to `endpoint` (a collector's base URL), with the W3C trace-context
/// propagator installed for the process.
pub(crate) fn exporting_to(endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(url.clone())
        .build()
        .map_err(|e| TelemetryError::Traces {
            endpoint: url,
            reason: e.to_string(),
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("rainlogs").build())
        .build();
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
    ]));
    Ok(provider)
}
