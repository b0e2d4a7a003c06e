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
use crate::routes::search::SearchApi;
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
    SearchApi,
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
        SearchApi,
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
    document_rate_limit_headers(&mut document);
    let enums = enum_schemas(&document);
    plain_enum_refs(&mut document, &enums);
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

/// `#/components/schemas/<name>` → schema, of every schema that is an enumeration rather than
/// an object.
fn enum_schemas(document: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    document
        .pointer("/components/schemas")
        .and_then(serde_json::Value::as_object)
        .map(|schemas| {
            schemas
                .iter()
                .filter(|(_, schema)| schema.get("enum").is_some())
                .map(|(name, schema)| (format!("#/components/schemas/{name}"), schema.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// poem-openapi writes a documented property of an enum type as
/// `allOf: [{$ref: Enum}, {description}]`. `allOf` is for composing objects, and generators
/// refuse it around an enum (openapi-python-client drops the whole body schema, and with it
/// `createZone` and `createApiKey`), so such a property becomes `{$ref, description}`.
/// A nullable one cannot keep the reference (OpenAPI 3.0 ignores whatever stands beside a
/// `$ref`), so it becomes the enumeration itself with `null` among its values.
fn plain_enum_refs(
    value: &mut serde_json::Value,
    enums: &serde_json::Map<String, serde_json::Value>,
) {
    match value {
        serde_json::Value::Object(map) => {
            let documented = match map.get("allOf").and_then(serde_json::Value::as_array) {
                Some(parts) if parts.len() == 2 => {
                    let reference = parts[0]
                        .get("$ref")
                        .and_then(serde_json::Value::as_str)
                        .filter(|r| enums.contains_key(*r));
                    let extra = parts[1].as_object().filter(|extra| {
                        extra.keys().all(|k| k == "description" || k == "nullable")
                    });
                    reference.map(str::to_owned).zip(extra.cloned())
                }
                _ => None,
            };
            if let Some((reference, extra)) = documented {
                map.remove("allOf");
                map.retain(|k, _| k == "description");
                if let Some(description) = extra.get("description") {
                    map.insert("description".to_owned(), description.clone());
                }
                let schema = enums.get(&reference).and_then(serde_json::Value::as_object);
                match schema.filter(|_| extra.get("nullable") == Some(&true.into())) {
                    Some(schema) => {
                        for (key, part) in schema {
                            if key != "title" && key != "description" {
                                map.insert(key.clone(), part.clone());
                            }
                        }
                        map.insert("nullable".to_owned(), true.into());
                        if let Some(serde_json::Value::Array(values)) = map.get_mut("enum") {
                            values.push(serde_json::Value::Null);
                        }
                    }
                    None => {
                        map.insert("$ref".to_owned(), reference.into());
                    }
                }
            }
            for child in map.values_mut() {
                plain_enum_refs(child, enums);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                plain_enum_refs(item, enums);
            }
        }
        _ => {}
    }
}

/// The edge middleware adds `RateLimit-*` to every answer that went through a limiter and
/// `Retry-After` to a refusal; poem-openapi cannot declare headers it does not set itself, so
/// they are stated on every 429 here.
fn document_rate_limit_headers(document: &mut serde_json::Value) {
    let header = |description: &str| {
        serde_json::json!({"description": description, "required": false, "deprecated": false,
                           "schema": {"type": "integer", "format": "uint64", "minimum": 0}})
    };
    let headers = serde_json::json!({
        "Retry-After": header("Seconds until a request is allowed again (`RATE_LIMITED` only)."),
        "RateLimit-Limit": header("Requests the bucket holds when full."),
        "RateLimit-Remaining": header("Requests left in the bucket."),
        "RateLimit-Reset": header("Seconds until the bucket is full again."),
    });
    let Some(paths) = document
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        if let Some(refused) = operation.pointer_mut("/responses/429")
            && let Some(refused) = refused.as_object_mut()
        {
            refused.insert("headers".to_owned(), headers.clone());
        }
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
