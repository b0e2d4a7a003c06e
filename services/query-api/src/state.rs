//! Everything a request handler may use, built once at start from the service context.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rainlogs_bus::Bus;
use rainlogs_cloudflare::{ClientConfig, CloudflareClient};
use rainlogs_config::Config;
use rainlogs_db::PgPool;
use rainlogs_integrity::{NoteSigningKey, NoteVerifierKey};
use rainlogs_runtime::ObjectStore;
use rainlogs_tokens::TokenKey;

use crate::api_keys::KeyDigester;
use crate::jwt::JwtKeys;
use crate::key_cache::KeyCache;
use crate::login_throttle::LoginThrottle;
use crate::rate_limit::{Limiter, Rate};
use crate::read_cache::ReadCache;
use crate::storage_status::StorageStatus;

/// Per-tenant limits shown in the customer profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub max_zones: u32,
    pub max_stored_bytes_per_month: u64,
    pub max_pulls_per_hour: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            max_zones: 50,
            max_stored_bytes_per_month: 500 * 1024 * 1024 * 1024,
            max_pulls_per_hour: 60,
        }
    }
}

/// Tunables of the API that are not (yet) configuration keys.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Before authentication, per client IP (issue: 60/s, burst 120).
    pub ip_rate: Rate,
    /// After authentication, per tenant (issue: 30/s, burst 60).
    pub tenant_rate: Rate,
    /// Largest request body accepted.
    pub body_limit: usize,
    /// How long a write waits for its projection before answering 503 `PROJECTION_LAGGING`.
    pub read_your_writes: Duration,
    pub quotas: Quotas,
    /// How long a valid API key is trusted without a database look-up (see `key_cache`); zero
    /// turns the cache off.
    pub key_cache_ttl: Duration,
    /// Default and range of the retention tenants and zones may choose.
    pub retention: rainlogs_config::RetentionSettings,
    /// How often erased tenants' logs still without an erasure entry are requested again.
    pub erasure_record_retry: Duration,
    /// Connection cap and read timeouts of the listener.
    pub connections: rainlogs_http::ConnectionLimits,
    /// How long zone health reuses what it read of the processes' storage status
    /// (`RL_STORE_STATUS`).
    pub storage_status_cache: Duration,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            ip_rate: Rate {
                per_second: 60.0,
                burst: 120,
            },
            tenant_rate: Rate {
                per_second: 30.0,
                burst: 60,
            },
            body_limit: 64 * 1024,
            read_your_writes: Duration::from_secs(10),
            quotas: Quotas::default(),
            key_cache_ttl: crate::key_cache::DEFAULT_TTL,
            retention: rainlogs_config::RetentionSettings::default(),
            erasure_record_retry: Duration::from_secs(600),
            connections: rainlogs_http::ConnectionLimits::default(),
            storage_status_cache: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("secrets.api_key_digest_key is required by the query-api: {0}")]
    DigestKey(String),
    #[error(
        "secrets.token_encryption_key is required by the query-api (zones' Cloudflare tokens are sealed with it): {0}"
    )]
    TokenKey(String),
    #[error("secrets.signing_key is not a valid note signing key: {0}")]
    SigningKey(String),
    #[error("api.verifier_key is not a valid note verifier key: {0}")]
    VerifierKey(String),
    #[error("cloudflare.base_url: {0}")]
    Cloudflare(String),
}

pub struct AppState {
    pub db: PgPool,
    pub bus: Bus,
    pub store: ObjectStore,
    pub digester: KeyDigester,
    pub key_cache: Arc<KeyCache>,
    pub read_cache: Arc<ReadCache>,
    pub token_key: TokenKey,
    pub cloudflare: CloudflareClient,
    /// Absent when `secrets.jwt_secret` is not configured: login then answers 503.
    pub jwt: Option<JwtKeys>,
    /// The public key checkpoints are signed with, when known to this process.
    pub verifier: Option<NoteVerifierKey>,
    pub trusted_proxies: Vec<IpAddr>,
    pub options: ApiOptions,
    pub ip_limiter: Limiter<IpAddr>,
    pub tenant_limiter: Limiter<String>,
    pub login_throttle: LoginThrottle,
    /// `api.registration` is `open`.
    pub registration_open: bool,
    /// `ingest.public_url` is set: Cloudflare can push to this RainLogs, so zones may use
    /// Logpush.
    pub logpush_available: bool,
    /// How customers' Logpush buckets are reached (`outbound.*`): checked at onboarding with
    /// the same rules the collector reads them by.
    pub bucket_access: rainlogs_push::BucketAccess,
    /// The storage providers and repair backlog, as the running processes report them.
    pub storage_status: StorageStatus,
    /// Index objects searches read, kept under `<service.data_dir>/index-cache`.
    pub search_cache: rainlogs_search::IndexCache,
}

/// Size cap of the index cache of searches.
const SEARCH_CACHE_BYTES: u64 = 512 << 20;

pub type SharedState = Arc<AppState>;

pub struct Parts {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub bus: Bus,
    pub store: ObjectStore,
}

impl AppState {
    pub fn new(parts: Parts, options: ApiOptions) -> Result<Self, StateError> {
        let config = &parts.config;
        let secrets = &config.secrets;
        let digester = secrets
            .api_key_digest_key
            .as_ref()
            .ok_or_else(|| StateError::DigestKey("not set".into()))
            .and_then(|s| {
                KeyDigester::from_hex(s.expose()).map_err(|e| StateError::DigestKey(e.to_string()))
            })?;
        let token_key = secrets
            .token_encryption_key
            .as_ref()
            .ok_or_else(|| StateError::TokenKey("not set".into()))
            .and_then(|s| {
                TokenKey::from_hex(s.expose()).map_err(|e| StateError::TokenKey(e.to_string()))
            })?;
        // The API only needs the public half: configured, or derived from the signing key when
        // the API runs in the sealer's process.
        let verifier = match &config.api.verifier_key {
            Some(text) => Some(
                NoteVerifierKey::parse(text.trim())
                    .map_err(|e| StateError::VerifierKey(e.to_string()))?,
            ),
            None => secrets
                .signing_key
                .as_ref()
                .map(|s| {
                    NoteSigningKey::parse(s.expose().trim())
                        .map(|k| k.verifier_key())
                        .map_err(|e| StateError::SigningKey(e.to_string()))
                })
                .transpose()?,
        };
        let jwt = secrets.jwt_secret.as_ref().map(|s| {
            JwtKeys::new(
                s.expose().trim().as_bytes(),
                &config.api.jwt_issuer,
                &config.api.jwt_audience,
            )
        });
        let cloudflare = CloudflareClient::new(interactive_client(&config.cloudflare.base_url))
            .map_err(|e| StateError::Cloudflare(e.to_string()))?;
        Ok(Self {
            db: parts.db,
            storage_status: StorageStatus::new(parts.bus.clone(), options.storage_status_cache),
            search_cache: rainlogs_search::IndexCache::in_dir(
                config.service.data_dir.join("index-cache"),
                SEARCH_CACHE_BYTES,
            )
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no index cache: every search reads its indexes");
                rainlogs_search::IndexCache::none()
            }),
            bus: parts.bus,
            store: parts.store,
            digester,
            key_cache: Arc::new(KeyCache::new(options.key_cache_ttl)),
            read_cache: Arc::new(ReadCache::default()),
            token_key,
            cloudflare,
            jwt,
            verifier,
            trusted_proxies: config.api.trusted_proxies.clone(),
            ip_limiter: Limiter::new(options.ip_rate),
            tenant_limiter: Limiter::new(options.tenant_rate),
            login_throttle: LoginThrottle::default(),
            registration_open: config.api.registration_open(),
            logpush_available: config.ingest.public_url.is_some(),
            bucket_access: rainlogs_push::BucketAccess {
                addresses: rainlogs_store::AddressPolicy::from_allow_private(
                    config.outbound.allow_private_networks,
                ),
                amazon_s3_endpoint: config.outbound.amazon_s3_endpoint.clone(),
            },
            options,
        })
    }
}

/// A person is waiting on the answer: one retry, short waits, and a clear 502 otherwise (the
/// collector, not the API, is the patient caller).
fn interactive_client(base_url: &str) -> ClientConfig {
    let mut config = ClientConfig::with_base_url(base_url);
    config.request_timeout = Duration::from_secs(15);
    config.limiter_max_wait = Duration::from_secs(5);
    config.retry.max_attempts = 2;
    config.retry.max_server_wait = Duration::from_secs(5);
    config
}
