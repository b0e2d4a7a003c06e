//! The client: one shared `CloudflareClient` (HTTP pool, limiter, breakers) and cheap per-token handles.

use crate::body::BodyDecoder;
use crate::classify::error_from_response;
use crate::config::ClientConfig;
use crate::error::{CfError, TransportPhase};
use crate::exec::{CallSpec, Policies};
use crate::policy::breaker::{BreakerSnapshot, BreakerState, CircuitBreakers};
use crate::policy::limiter::RateLimiter;
use crate::route::Endpoint;
use crate::token::ApiToken;
use futures::StreamExt;
use reqwest::header::{ACCEPT_ENCODING, HeaderMap};
use reqwest::{Method, Response, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct Shared {
    pub http: reqwest::Client,
    pub config: ClientConfig,
    pub base: Url,
    pub policies: Policies,
}

/// `cloudflare.base_url` as the client uses it: an http(s) URL that can take path segments.
/// `rainlogs config check` asks the same question before anything starts.
pub fn parse_base_url(text: &str) -> Result<Url, String> {
    let url =
        Url::parse(text.trim_end_matches('/')).map_err(|e| format!("base URL `{text}`: {e}"))?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "base URL `{text}` is not an http(s) URL that can take a path"
        ));
    }
    Ok(url)
}

/// Shared by every tenant and zone of a process: one connection pool, one set of limiters and breakers.
#[derive(Debug, Clone)]
pub struct CloudflareClient {
    shared: Arc<Shared>,
}

impl CloudflareClient {
    pub fn new(config: ClientConfig) -> Result<Self, CfError> {
        let base = parse_base_url(&config.base_url).map_err(CfError::Setup)?;
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            // Decoded by `body::BodyDecoder` so truncated gzip is always caught.
            .no_gzip()
            .build()
            .map_err(|e| CfError::Setup(e.to_string()))?;
        let policies = Policies {
            retry: config.retry,
            limiter: RateLimiter::new(config.limits),
            breakers: CircuitBreakers::new(config.breaker),
            limiter_max_wait: config.limiter_max_wait,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                http,
                config,
                base,
                policies,
            }),
        })
    }

    /// A handle that calls Cloudflare with `token`. Cheap; create one per tenant or per call.
    pub fn with_token(&self, token: ApiToken) -> TokenClient {
        TokenClient {
            shared: Arc::clone(&self.shared),
            token,
        }
    }

    /// Current breaker states per (token id, endpoint), for metrics.
    pub fn breaker_states(&self) -> Vec<BreakerSnapshot> {
        self.shared.policies.breakers.snapshot()
    }

    pub fn config(&self) -> &ClientConfig {
        &self.shared.config
    }
}

/// Calls Cloudflare as one token. All endpoint methods live on this type (see `api::*`).
#[derive(Debug, Clone)]
pub struct TokenClient {
    pub(crate) shared: Arc<Shared>,
    pub(crate) token: ApiToken,
}

/// One request, fully described so it can be re-sent on retry.
#[derive(Debug, Clone)]
pub(crate) struct RequestSpec {
    pub method: Method,
    pub url: Url,
    pub query: Vec<(&'static str, String)>,
    pub json: Option<serde_json::Value>,
    /// Streamed bodies get no whole-request timeout (idle timeouts apply instead) and ask for gzip.
    pub streaming: bool,
}

impl RequestSpec {
    pub(crate) fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            query: Vec::new(),
            json: None,
            streaming: false,
        }
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    success: bool,
    result: Option<T>,
}

impl TokenClient {
    pub fn token(&self) -> &ApiToken {
        &self.token
    }

    /// The state of this token's breaker for `endpoint` and `zone` (closed until a call says
    /// otherwise).
    pub fn breaker_state(&self, endpoint: Endpoint, zone: Option<&str>) -> BreakerState {
        self.breakers()
            .state(&self.spec(endpoint, zone).breaker_key())
    }

    pub(crate) fn config(&self) -> &ClientConfig {
        &self.shared.config
    }

    pub(crate) fn spec(&self, endpoint: Endpoint, zone: Option<&str>) -> CallSpec {
        CallSpec::new(endpoint, self.token.id(), zone)
    }

    /// `base_url` plus path segments, each percent-encoded (a zone id can never smuggle in a `/`).
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.shared.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends once; a non-2xx status becomes a typed error (its body read, bounded, for the message).
    pub(crate) async fn send(
        &self,
        endpoint: Endpoint,
        request: &RequestSpec,
    ) -> Result<Response, CfError> {
        let config = &self.shared.config;
        let mut url = request.url.clone();
        if !request.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(request.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut builder = self
            .shared
            .http
            .request(request.method.clone(), url)
            .bearer_auth(self.token.expose_secret());
        if let Some(json) = &request.json {
            builder = builder.json(json);
        }
        let sent = if request.streaming {
            builder = builder.header(ACCEPT_ENCODING, "gzip");
            // Waiting for the status line is bounded by the idle timeout; the body by per-chunk idle timeouts.
            tokio::time::timeout(config.body_idle_timeout, builder.send())
                .await
                .map_err(|_| CfError::BodyStalled(config.body_idle_timeout))?
        } else {
            builder.timeout(config.request_timeout).send().await
        };
        let response = sent.map_err(|source| CfError::Transport {
            phase: TransportPhase::Request,
            source,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = tokio::time::timeout(
            config.request_timeout,
            read_error_body(response, config.max_error_body_bytes),
        )
        .await
        .unwrap_or_default();
        Err(error_from_response(
            endpoint,
            status.as_u16(),
            &headers,
            &body,
        ))
    }

    /// Sends under all policies and returns the whole body (JSON endpoints).
    pub(crate) async fn fetch(
        &self,
        spec: &CallSpec,
        request: &RequestSpec,
    ) -> Result<(u16, HeaderMap, bytes::Bytes), CfError> {
        self.shared
            .policies
            .run(spec, || async {
                let response = self.send(spec.endpoint, request).await?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = response
                    .bytes()
                    .await
                    .map_err(|source| CfError::Transport {
                        phase: TransportPhase::Body,
                        source,
                    })?;
                Ok((status, headers, body))
            })
            .await
    }

    /// A v4 envelope call returning `result`.
    pub(crate) async fn envelope<T: DeserializeOwned>(
        &self,
        spec: &CallSpec,
        request: &RequestSpec,
    ) -> Result<Option<T>, CfError> {
        let (status, headers, body) = self.fetch(spec, request).await?;
        let envelope: Envelope<T> =
            serde_json::from_slice(&body).map_err(|e| CfError::Protocol {
                endpoint: spec.endpoint,
                detail: format!("not a v4 envelope: {e}"),
            })?;
        if !envelope.success {
            return Err(error_from_response(spec.endpoint, status, &headers, &body));
        }
        Ok(envelope.result)
    }

    /// Like `envelope`, but a missing `result` is a protocol error.
    pub(crate) async fn envelope_result<T: DeserializeOwned>(
        &self,
        spec: &CallSpec,
        request: &RequestSpec,
    ) -> Result<T, CfError> {
        self.envelope(spec, request)
            .await?
            .ok_or_else(|| CfError::Protocol {
                endpoint: spec.endpoint,
                detail: "envelope has no result".into(),
            })
    }

    /// Opens a streamed response under all policies; retries stop once a 2xx status arrives.
    pub(crate) async fn open_stream(
        &self,
        spec: &CallSpec,
        request: &RequestSpec,
    ) -> Result<Response, CfError> {
        self.shared
            .policies
            .run(spec, || self.send(spec.endpoint, request))
            .await
    }

    pub(crate) fn breakers(&self) -> &Arc<CircuitBreakers> {
        &self.shared.policies.breakers
    }

    pub(crate) fn policies(&self) -> &Policies {
        &self.shared.policies
    }
}

/// Reads at most `limit` bytes of an error body, inflating it if the server compressed it (best effort: a
/// broken error body still leaves the status to classify by).
async fn read_error_body(response: Response, limit: usize) -> Vec<u8> {
    let decoder = BodyDecoder::for_headers(response.headers());
    let raw = read_bounded(response, limit).await;
    match decoder {
        Ok(mut decoder) if decoder.is_compressed() => {
            let mut plain = decoder
                .decode(raw.into())
                .map(|b| b.to_vec())
                .unwrap_or_default();
            plain.truncate(limit);
            plain
        }
        _ => raw,
    }
}

async fn read_bounded(response: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(Ok(chunk)) = chunks.next().await {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    body
}
