//! Turning a non-success HTTP response (or a GraphQL `errors[]`) into a typed `CfError`.
//!
//! Kept pure (status, headers, body bytes in; error out) so every mapping is unit-tested without a server.

use crate::error::{ApiMessage, ApiMessages, CfError, RateLimitScope};
use crate::retry_after::retry_after_from_headers;
use crate::route::Endpoint;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use std::time::Duration;

/// v4 codes meaning "this token cannot do this": 10000 Authentication error, 9109 invalid/unauthorised token,
/// 1000 Invalid API Token, 6003/6102/6103/6111 malformed auth headers.
const AUTH_CODES: [i64; 7] = [10000, 9109, 1000, 6003, 6102, 6103, 6111];
/// 971 (current) and 10100 (older wording) are the global per-token limit.
const GLOBAL_RATE_LIMIT_CODES: [i64; 2] = [971, 10100];
const INVALID_ZONE_ID_CODE: i64 = 7003;
/// "not allowed" for the product: the plan or account lacks it (Logpull outside Enterprise).
const NOT_ENTITLED_CODE: i64 = 1004;
/// Seen in the wild as "Instant Logs session already active" (UNCONFIRMED in Cloudflare's docs).
const SESSION_ACTIVE_CODE: i64 = 1303;
/// GraphQL's budget errors say "try again after 5 minutes" without a header.
const GRAPHQL_BUDGET_WAIT: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Option<Vec<ApiMessage>>,
}

/// The `errors[]` of a v4 envelope, when the body is one.
pub(crate) fn envelope_errors(body: &[u8]) -> Option<ApiMessages> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    parsed.errors.filter(|e| !e.is_empty()).map(ApiMessages)
}

fn body_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).trim().to_owned()
}

pub(crate) fn error_from_response(
    endpoint: Endpoint,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> CfError {
    // A v4 global-limit envelope (code 971) can arrive on the GraphQL path too; it is the token's limit, not the
    // GraphQL budget, so it takes the v4 route below.
    let global_limit = envelope_errors(body)
        .is_some_and(|e| GLOBAL_RATE_LIMIT_CODES.iter().any(|c| e.has_code(*c)));
    if endpoint == Endpoint::Graphql
        && !global_limit
        && let Some(errors) = graphql_errors(body)
    {
        return graphql_error(status, headers, errors);
    }
    let errors = envelope_errors(body);
    let text = body_text(body);
    let detail = errors
        .as_ref()
        .map_or_else(|| text.clone(), ToString::to_string);
    let has = |codes: &[i64]| {
        errors
            .as_ref()
            .is_some_and(|e| codes.iter().any(|c| e.has_code(*c)))
    };

    match status {
        429 => {
            let scope = if endpoint.is_logpull()
                && !global_budget_exhausted(headers, has(&GLOBAL_RATE_LIMIT_CODES))
            {
                // Per-zone Logpull limit: blocking the whole token would stall every other zone.
                RateLimitScope::LogpullZone
            } else if has(&GLOBAL_RATE_LIMIT_CODES) {
                RateLimitScope::Token
            } else if endpoint == Endpoint::Graphql {
                RateLimitScope::Graphql
            } else {
                RateLimitScope::Token
            };
            CfError::RateLimited {
                scope,
                retry_after: retry_after_from_headers(headers),
                detail,
            }
        }
        408 => CfError::RequestTimeout { detail },
        409 => CfError::Conflict { detail },
        500..=599 => CfError::Server { status, detail },
        _ if has(&[NOT_ENTITLED_CODE]) => CfError::NotEntitled {
            status,
            errors: errors.unwrap_or_default(),
        },
        _ if is_metadata_boundary(&detail) => CfError::LogpullBlockedByMetadataBoundary {
            regions: "eu".into(),
        },
        _ if has(&AUTH_CODES) || status == 401 || status == 403 => CfError::Auth {
            status,
            errors: errors.unwrap_or_else(|| ApiMessages(vec![ApiMessage::text(text)])),
        },
        _ if has(&[INVALID_ZONE_ID_CODE]) => CfError::InvalidZoneId {
            status,
            errors: errors.unwrap_or_default(),
        },
        _ if has(&[SESSION_ACTIVE_CODE]) => CfError::SessionAlreadyActive {
            errors: errors.unwrap_or_default(),
        },
        _ if is_retention_off(&detail) => CfError::RetentionDisabled { message: detail },
        // Logpull answers window and field problems in plain text; keep Cloudflare's sentence verbatim.
        400 if errors.is_none() && (endpoint.is_logpull() || text.starts_with("bad query")) => {
            CfError::BadQuery {
                status,
                message: text,
            }
        }
        _ => CfError::Api {
            status,
            errors: errors.unwrap_or_else(|| ApiMessages(vec![ApiMessage::text(text)])),
        },
    }
}

/// Whether a 429 spent the token's global budget. The `Ratelimit` header (`r=` remaining) says so directly; without
/// it, code 971/10100 is the only hint.
fn global_budget_exhausted(headers: &HeaderMap, global_code: bool) -> bool {
    let remaining = headers
        .get("ratelimit")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(';')
                .find_map(|part| part.trim().strip_prefix("r=")?.trim().parse::<u64>().ok())
        });
    match remaining {
        Some(remaining) => remaining == 0,
        None => global_code,
    }
}

/// The text Cloudflare uses is UNCONFIRMED; this matches the phrase any such message must contain.
fn is_metadata_boundary(message: &str) -> bool {
    message.to_ascii_lowercase().contains("metadata boundary")
}

fn is_retention_off(message: &str) -> bool {
    message
        .to_ascii_lowercase()
        .contains("retention is not turned on")
}

// ---- GraphQL ----

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct GraphqlError {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub extensions: Option<GraphqlExtensions>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct GraphqlExtensions {
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Deserialize)]
struct GraphqlErrorsOnly {
    #[serde(default)]
    errors: Option<Vec<GraphqlError>>,
}

pub(crate) fn graphql_errors(body: &[u8]) -> Option<Vec<GraphqlError>> {
    let parsed: GraphqlErrorsOnly = serde_json::from_slice(body).ok()?;
    parsed.errors.filter(|e| !e.is_empty())
}

/// GraphQL reports most failures with HTTP 200, so the message decides, not the status.
pub(crate) fn graphql_error(
    status: u16,
    headers: &HeaderMap,
    errors: Vec<GraphqlError>,
) -> CfError {
    let joined = errors
        .iter()
        .map(|e| e.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let lower = joined.to_ascii_lowercase();
    let code_is = |wanted: &str| {
        errors
            .iter()
            .any(|e| e.extensions.as_ref().and_then(|x| x.code.as_deref()) == Some(wanted))
    };
    let messages = ApiMessages(
        errors
            .iter()
            .map(|e| ApiMessage::text(e.message.clone()))
            .collect(),
    );

    if code_is("budget")
        || status == 429
        || [
            "budget depleted",
            "exceeded its rate limit",
            "too many nodes",
            "excessive resources",
        ]
        .iter()
        .any(|m| lower.contains(m))
    {
        let retry_after = retry_after_from_headers(headers).or(Some(GRAPHQL_BUDGET_WAIT));
        return CfError::RateLimited {
            scope: RateLimitScope::Graphql,
            retry_after,
            detail: joined,
        };
    }
    if code_is("authz")
        || status == 401
        || status == 403
        || [
            "unauthorized",
            "not authorized",
            "does not have access",
            "authentication",
        ]
        .iter()
        .any(|m| lower.contains(m))
    {
        return CfError::Auth {
            status,
            errors: messages,
        };
    }
    if status >= 500
        || ["unable to execute query", "too many queries in progress"]
            .iter()
            .any(|m| lower.contains(m))
    {
        return CfError::Server {
            status: if status >= 500 { status } else { 503 },
            detail: joined,
        };
    }
    CfError::BadQuery {
        status,
        message: joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn classify(endpoint: Endpoint, status: u16, body: &str) -> CfError {
        error_from_response(endpoint, status, &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn auth_codes_are_permanent_and_keep_code_and_message() {
        let e = classify(
            Endpoint::LogpullReceived,
            403,
            r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}"#,
        );
        assert!(
            matches!(&e, CfError::Auth { status: 403, errors } if errors.0[0].message == "Authentication error")
        );
        assert_eq!(e.api_codes(), vec![10000]);
        assert!(!e.is_retryable());
        let e = classify(
            Endpoint::TokenVerify,
            400,
            r#"{"success":false,"errors":[{"code":1000,"message":"Invalid API Token"}]}"#,
        );
        assert!(matches!(e, CfError::Auth { status: 400, .. }));
        let e = classify(
            Endpoint::Zone,
            401,
            r#"{"success":false,"errors":[{"code":9109,"message":"Invalid access token"}]}"#,
        );
        assert_eq!(e.api_codes(), vec![9109]);
    }

    #[test]
    fn logpull_plain_text_400_is_a_bad_query_with_the_text_kept() {
        let text = "bad query: error parsing time: invalid time range: too long: maximum query range (difference between start and end) is 1h0m0s\n";
        let e = classify(Endpoint::LogpullReceived, 400, text);
        assert!(matches!(&e, CfError::BadQuery { status: 400, message } if message == text.trim()));
        assert!(!e.is_retryable());
    }

    #[test]
    fn retention_off_is_its_own_permanent_error() {
        let e = classify(
            Endpoint::LogpullReceived,
            400,
            "Retention is not turned on. Please enable log retention\n",
        );
        assert!(matches!(e, CfError::RetentionDisabled { .. }));
    }

    #[test]
    fn invalid_zone_id_7003() {
        let e = classify(
            Endpoint::Zone,
            400,
            r#"{"success":false,"errors":[{"code":7003,"message":"Could not route to /client/v4/zones/example.com, perhaps your object identifier is invalid?"},{"code":7000,"message":"No route for that URI"}]}"#,
        );
        assert!(matches!(&e, CfError::InvalidZoneId { errors, .. } if errors.has_code(7000)));
    }

    #[test]
    fn rate_limit_scope_follows_code_and_endpoint() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("12"));
        let global = error_from_response(Endpoint::LogpullReceived, 429, &headers, br#"{"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}]}"#);
        assert!(
            matches!(global, CfError::RateLimited { scope: RateLimitScope::Token, retry_after: Some(d), .. } if d == Duration::from_secs(12))
        );
        let zone = error_from_response(
            Endpoint::LogpullReceived,
            429,
            &headers,
            b"Too Many Requests",
        );
        assert!(matches!(
            zone,
            CfError::RateLimited {
                scope: RateLimitScope::LogpullZone,
                ..
            }
        ));
    }

    #[test]
    fn logpull_429_with_global_budget_left_is_a_zone_limit() {
        let body = br#"{"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}]}"#;
        let mut headers = HeaderMap::new();
        headers.insert(
            "ratelimit",
            HeaderValue::from_static("\"default\";r=1150;t=240"),
        );
        let e = error_from_response(Endpoint::LogpullReceived, 429, &headers, body);
        assert!(
            matches!(
                e,
                CfError::RateLimited {
                    scope: RateLimitScope::LogpullZone,
                    ..
                }
            ),
            "{e:?}"
        );
        headers.insert(
            "ratelimit",
            HeaderValue::from_static("\"default\";r=0;t=240"),
        );
        let e = error_from_response(Endpoint::LogpullReceived, 429, &headers, body);
        assert!(
            matches!(e, CfError::RateLimited { scope: RateLimitScope::Token, retry_after: Some(d), .. } if d == Duration::from_secs(240)),
            "{e:?}"
        );
        let other = error_from_response(Endpoint::Zone, 429, &HeaderMap::new(), b"");
        assert!(matches!(
            other,
            CfError::RateLimited {
                scope: RateLimitScope::Token,
                ..
            }
        ));
    }

    #[test]
    fn entitlement_and_metadata_boundary_refusals() {
        let e = classify(
            Endpoint::LogpullReceived,
            403,
            r#"{"success":false,"errors":[{"code":1004,"message":"Logpull is only available on the Enterprise plan"}]}"#,
        );
        assert!(
            matches!(e, CfError::NotEntitled { status: 403, .. }),
            "{e:?}"
        );
        let e = classify(
            Endpoint::LogpullReceived,
            400,
            "Logpull is not available for accounts with an EU Customer Metadata Boundary\n",
        );
        assert!(
            matches!(e, CfError::LogpullBlockedByMetadataBoundary { .. }),
            "{e:?}"
        );
    }

    #[test]
    fn transient_statuses_are_retryable() {
        for (status, body) in [
            (408, ""),
            (409, "{}"),
            (500, ""),
            (502, "<html>bad gateway</html>"),
            (
                503,
                r#"{"success":false,"errors":[{"code":10001,"message":"service unavailable"}]}"#,
            ),
        ] {
            let e = classify(Endpoint::LogpullReceived, status, body);
            assert!(
                e.is_retryable(),
                "HTTP {status} should be retryable, got {e:?}"
            );
            assert_eq!(e.http_status(), Some(status));
        }
    }

    #[test]
    fn session_already_active_and_generic_errors() {
        let e = classify(
            Endpoint::InstantLogsJob,
            400,
            r#"{"success":false,"errors":[{"code":1303,"message":"session already active"}]}"#,
        );
        assert!(matches!(e, CfError::SessionAlreadyActive { .. }));
        let e = classify(
            Endpoint::InstantLogsJob,
            404,
            r#"{"success":false,"errors":[{"code":7000,"message":"No route for that URI"}]}"#,
        );
        assert!(matches!(e, CfError::Api { status: 404, .. }));
    }

    #[test]
    fn graphql_budget_errors_are_rate_limits_with_200_or_429() {
        let body = br#"{"data":null,"errors":[{"message":"rate limiter budget depleted, try again after 5 minutes","path":null,"extensions":{"code":"budget","timestamp":"2024-01-01T00:00:00Z"}}]}"#;
        for status in [200, 429] {
            let e = error_from_response(Endpoint::Graphql, status, &HeaderMap::new(), body);
            assert!(
                matches!(e, CfError::RateLimited { scope: RateLimitScope::Graphql, retry_after: Some(d), .. } if d == GRAPHQL_BUDGET_WAIT),
                "{status}: {e:?}"
            );
        }
    }

    #[test]
    fn a_v4_global_limit_on_the_graphql_path_blocks_the_token() {
        let body = br#"{"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}]}"#;
        let e = error_from_response(Endpoint::Graphql, 429, &HeaderMap::new(), body);
        assert!(
            matches!(
                e,
                CfError::RateLimited {
                    scope: RateLimitScope::Token,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn graphql_auth_limit_and_service_errors() {
        let errors = |m: &str| {
            graphql_errors(format!(r#"{{"data":null,"errors":[{{"message":"{m}"}}]}}"#).as_bytes())
                .unwrap()
        };
        assert!(matches!(
            graphql_error(
                200,
                &HeaderMap::new(),
                errors("zones '[abc]' are not authorized")
            ),
            CfError::Auth { status: 200, .. }
        ));
        let e = graphql_error(
            200,
            &HeaderMap::new(),
            errors("cannot request data older than 2678400s"),
        );
        assert!(
            matches!(&e, CfError::BadQuery { message, .. } if message == "cannot request data older than 2678400s")
        );
        assert!(
            graphql_error(
                200,
                &HeaderMap::new(),
                errors("too many queries in progress, please try again later")
            )
            .is_retryable()
        );
        assert!(graphql_errors(br#"{"data":{"viewer":{}},"errors":null}"#).is_none());
    }
}
