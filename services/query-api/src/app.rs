//! The HTTP application: every route under one OpenAPI document, wrapped in the edge middleware.

use poem::{Endpoint, EndpointExt as _, Route};
use poem_openapi::OpenApiService;

use crate::allow::AllowIndex;
use crate::middleware::Edge;
use crate::routes::api_keys::ApiKeysApi;
use crate::routes::audit_log::AuditLogApi;
use crate::routes::customers::CustomersApi;
use crate::routes::jobs::JobsApi;
use crate::routes::legal_holds::LegalHoldsApi;
use crate::routes::login::LoginApi;
use crate::routes::retention::RetentionApi;
use crate::routes::system::SystemApi;
use crate::routes::zones::ZonesApi;
use crate::state::SharedState;

type Apis = (
    SystemApi,
    CustomersApi,
    LoginApi,
    ApiKeysApi,
    ZonesApi,
    RetentionApi,
    LegalHoldsApi,
    JobsApi,
    AuditLogApi,
);

fn service() -> OpenApiService<Apis, ()> {
    let apis = (
        SystemApi,
        CustomersApi,
        LoginApi,
        ApiKeysApi,
        ZonesApi,
        RetentionApi,
        LegalHoldsApi,
        JobsApi,
        AuditLogApi,
    );
    OpenApiService::new(apis, "RainLogs API", env!("CARGO_PKG_VERSION"))
        .description(
            "Cloudflare log archive with offline-verifiable integrity. Every error answer is \
             `{code, message, error_code, request_id}`; every response carries `X-Request-Id`.",
        )
        .server("/")
}

/// The application for `state`.
pub fn app(state: SharedState) -> impl Endpoint {
    let api = service();
    let document = openapi_json();
    let allow = AllowIndex::from_spec(&document);
    let spec = poem::endpoint::make_sync(move |_| {
        poem::Response::builder()
            .content_type("application/json")
            .body(document.clone())
    });
    let routes = Route::new()
        .at("/openapi.json", spec)
        .nest("/", api)
        .data(state.clone());
    Edge::new(routes, state, allow)
}

/// The OpenAPI document (JSON), as committed in `openapi/rainlogs.json`.
pub fn openapi_json() -> String {
    let generated = service().spec();
    let Ok(mut document) = serde_json::from_str::<serde_json::Value>(&generated) else {
        return generated;
    };
    merge_download_forms(&mut document);
    serde_json::to_string_pretty(&sorted(document)).unwrap_or(generated)
}

/// Keys in sorted order at every level, whether or not some crate in the build turned on
/// serde_json's `preserve_order`: the committed file must not depend on feature unification.
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

/// poem-openapi keeps one variant per status, but a download answers 200 in two forms: state
/// both media types and both digest headers (each present with its form).
fn merge_download_forms(document: &mut serde_json::Value) {
    let Some(ok) =
        document.pointer_mut("/paths/~1api~1v1~1logs~1jobs~1{job_id}~1download/get/responses/200")
    else {
        return;
    };
    let binary = serde_json::json!({"schema": {"type": "string", "format": "binary"}});
    let digest = |description: &str| {
        serde_json::json!({"description": description, "required": false, "deprecated": false,
                           "schema": {"type": "string"}})
    };
    ok["description"] = "The archive, streamed: decompressed NDJSON (`format=ndjson`, default) \
                         or the stored zstd object (`format=zst`)."
        .into();
    ok["content"] = serde_json::json!({
        "application/x-ndjson": binary.clone(),
        "application/zstd": binary,
    });
    ok["headers"]["X-CONTENT-SHA256"] =
        digest("With `format=ndjson`: SHA-256 of this body (hex), the job's `content_sha256`.");
    ok["headers"]["X-OBJECT-SHA256"] =
        digest("With `format=zst`: SHA-256 of this body (hex), the job's `stored_sha256`.");
}
