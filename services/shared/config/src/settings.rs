use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ConfigError;
use crate::secret::{Secret, resolve};

/// The whole configuration. Each field documents its key; `rainlogs config check` validates a file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub nats: NatsSettings,
    pub database: DatabaseSettings,
    pub store: StoreSettings,
    pub cloudflare: CloudflareSettings,
    pub api: ApiSettings,
    pub ingest: IngestSettings,
    pub telemetry: TelemetrySettings,
    pub service: ServiceSettings,
    pub collector: CollectorSettings,
    pub retention: RetentionSettings,
    pub outbound: OutboundSettings,
    pub secrets: SecretSettings,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSettings {
    /// `nats.url`: the NATS servers (JetStream, version 2.11 or newer) to connect to: one URL, a
    /// comma-separated list or a TOML array. Several seeds of one cluster let a process start
    /// while one of them is down; the client learns the rest of the cluster from the server.
    #[serde(deserialize_with = "seed_urls")]
    pub url: Vec<String>,
    /// `nats.replicas`: stream replicas on `rainlogs provision` (production: 3).
    pub replicas: usize,
}

/// `nats.url` as a string (one URL or a comma-separated list, as an environment variable or a
/// flag gives it) or as an array of URLs.
fn seed_urls<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct Seeds;

    fn one<E: serde::de::Error>(url: &str) -> Result<String, E> {
        let url = url.trim();
        if url.is_empty() {
            return Err(E::custom("an empty URL in the list of NATS servers"));
        }
        Ok(url.to_owned())
    }

    impl<'de> serde::de::Visitor<'de> for Seeds {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a NATS URL, a comma-separated list of them, or an array of them")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            text.split(',').map(one).collect()
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut urls = Vec::new();
            while let Some(url) = seq.next_element::<String>()? {
                urls.push(one(&url)?);
            }
            if urls.is_empty() {
                return Err(serde::de::Error::custom(
                    "an empty list: at least one NATS server is needed",
                ));
            }
            Ok(urls)
        }
    }

    deserializer.deserialize_any(Seeds)
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: vec!["nats://127.0.0.1:4222".into()],
            replicas: 1,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `database.url`: PostgreSQL URL. Put a password only in `database.url_file`.
    pub url: Option<Secret>,
    pub url_file: Option<PathBuf>,
    /// `database.max_connections`: pool size per process.
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            max_connections: 10,
        }
    }
}

impl DatabaseSettings {
    /// The URL, or the password-less local default.
    pub fn url(&self) -> Secret {
        self.url
            .clone()
            .unwrap_or_else(|| Secret::new("postgres://postgres@127.0.0.1:5432/rainlogs"))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `store.url`: a directory path or `s3://bucket/prefix`. Empty means not set, which only
    /// `--dev` and `--demo` accept (they use [`DEV_STORE_URL`]): an archive that has to last
    /// 13 months must never land in whatever directory a process happened to start in.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// `store.endpoint`: S3 endpoint for S3-compatible providers (Hetzner, Scaleway, SeaweedFS…).
    pub endpoint: Option<String>,
    /// `store.region`.
    pub region: String,
    /// `store.path_style`: address buckets as `endpoint/bucket` (most non-AWS providers).
    pub path_style: bool,
    /// `store.access_key_id`; when unset the standard AWS environment/credential chain is used.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub secret_access_key_file: Option<PathBuf>,
    /// `store.secondary`: an optional second provider with every key above of its own (`url`,
    /// `endpoint`, `region`, `path_style`, credentials): every write goes to both, reads fall
    /// back to it, and either bucket verifies on its own. It has no secondary itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secondary: Option<Box<StoreSettings>>,
}

/// The archive directory `--dev` and `--demo` use when `store.url` is not set.
pub const DEV_STORE_URL: &str = "var/archive";

impl StoreSettings {
    /// `store.url`, when one was configured.
    pub fn configured_url(&self) -> Option<&str> {
        Some(self.url.as_str()).filter(|url| !url.trim().is_empty())
    }

    /// `--dev`/`--demo`: archives go to [`DEV_STORE_URL`] unless `store.url` says otherwise.
    pub fn use_dev_default(&mut self) {
        if self.configured_url().is_none() {
            self.url = DEV_STORE_URL.into();
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            endpoint: None,
            region: "eu-central-1".into(),
            path_style: true,
            access_key_id: None,
            secret_access_key: None,
            secret_access_key_file: None,
            secondary: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudflareSettings {
    /// `cloudflare.base_url`: the v4 API root (the simulator in tests and demos).
    pub base_url: String,
}

impl Default for CloudflareSettings {
    fn default() -> Self {
        Self {
            base_url: "https://api.cloudflare.com/client/v4".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// `api.listen`: REST API address.
    pub listen: SocketAddr,
    /// `api.trusted_proxies`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// `api.jwt_issuer` / `api.jwt_audience`: required claims of dashboard tokens.
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// `api.verifier_key`: the sealer's public key (C2SP vkey, as `rainlogs keys show` prints
    /// it), served to auditors and used for proofs. Lets an API process run without
    /// `secrets.signing_key`; when absent, the key is derived from that secret.
    pub verifier_key: Option<String>,
    /// `api.registration`: `open` lets anyone create a tenant with `POST /customers`; `closed`
    /// refuses it (403 `REGISTRATION_CLOSED`) and operators create tenants with
    /// `rainlogs tenants create`. Unset: closed, except under `--dev` and `--demo`.
    pub registration: Option<Registration>,
}

/// Who may create tenants through the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    Open,
    Closed,
}

impl ApiSettings {
    /// Whether `POST /customers` creates tenants.
    pub fn registration_open(&self) -> bool {
        self.registration == Some(Registration::Open)
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            trusted_proxies: Vec::new(),
            jwt_issuer: "rainlogs".into(),
            jwt_audience: "rainlogs-dashboard".into(),
            verifier_key: None,
            registration: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// `ingest.listen`: where Cloudflare Logpush pushes (`POST /logpush/v1/<zone>/<dataset>`),
    /// a listener of its own, apart from the API. Unset: the ingest service takes no pushes.
    pub listen: Option<SocketAddr>,
    /// `ingest.public_url`: the address at which Cloudflare reaches the ingest listener, e.g.
    /// `https://logs.example.eu` (behind the TLS proxy in front of `ingest.listen`). Logpush jobs
    /// RainLogs creates push to `<public_url>/logpush/v1/<zone>/<dataset>`. Unset: zones cannot
    /// be collected with Logpush.
    pub public_url: Option<String>,
    /// `ingest.max_push_bytes`: the most NDJSON one push may decompress to (Cloudflare's
    /// `max_upload_bytes` is at most 1 GB); a larger push is refused with 413 before it is stored.
    pub max_push_bytes: u64,
    /// `ingest.max_concurrent_pushes`: pushes taken at once; one more is answered 429 and
    /// Cloudflare retries it.
    pub max_concurrent_pushes: usize,
    /// `ingest.body_timeout`: a push whose body sends nothing for this long is dropped (408),
    /// and so is a request whose head takes longer; Cloudflare retries it.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            listen: None,
            public_url: None,
            max_push_bytes: 1_000_000_000,
            max_concurrent_pushes: 64,
            body_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// `telemetry.listen`: `/health`, `/ready` and `/metrics` (one port for all services in a process).
    pub listen: SocketAddr,
    /// `telemetry.log_format`: `json` (default) or `pretty`.
    pub log_format: LogFormat,
    /// `telemetry.log_level`: a tracing filter, e.g. `info,rainlogs_collector=debug`.
    pub log_level: String,
    /// `telemetry.otlp_endpoint`: where to send traces over OTLP/HTTP (JSON), the collector's
    /// base URL as in `OTEL_EXPORTER_OTLP_ENDPOINT` (e.g. `http://otel-collector:4318`;
    /// `/v1/traces` is appended). Unset: no traces are exported.
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            log_format: LogFormat::Json,
            log_level: "info".into(),
            otlp_endpoint: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSettings {
    /// `service.data_dir`: local state (dev secrets, repair queue).
    pub data_dir: PathBuf,
    /// `service.shutdown_timeout`: how long SIGTERM waits for in-flight work, e.g. `30s`.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            data_dir: "var/data".into(),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorSettings {
    /// `collector.window`: length of a collection window; windows end on multiples of it
    /// (1s..1h; Logpull accepts at most one hour per request).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// `collector.backfill`: how far back a newly added zone starts, clamped to what Cloudflare
    /// still holds (Logpull: 7 days).
    #[serde(with = "humantime_serde")]
    pub backfill: Duration,
    /// `collector.lease_ttl`: a collector process that stops renewing loses its zones to
    /// another process after this long (whole seconds, 2s to 5m; renewed every third of it).
    /// It is also how long a collector holds events in memory while JetStream is away.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// `collector.logpull_delay`: a Logpull window is requested once its end is this far in the
    /// past. Cloudflare's documentation allows one minute, its OpenAPI description says five;
    /// five is the safe default, and less than one minute is refused.
    #[serde(with = "humantime_serde")]
    pub logpull_delay: Duration,
    /// `collector.logpush_lateness`: a pushed (Logpush) window is closed and sealed once its
    /// end is this far in the past. Records that arrive later still reach the archive, as a
    /// `late` entry of their window; a longer lateness means fewer of those and a later seal.
    #[serde(with = "humantime_serde")]
    pub logpush_lateness: Duration,
}

/// The shortest `collector.logpull_delay`: Cloudflare serves no Logpull data younger than this.
pub const MIN_LOGPULL_DELAY: Duration = Duration::from_secs(60);
pub const MAX_LOGPUSH_LATENESS: Duration = Duration::from_secs(20 * 60);
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(2);
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(300);

impl Default for CollectorSettings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            backfill: Duration::from_secs(7 * 24 * 3600),
            lease_ttl: Duration::from_secs(15),
            logpull_delay: Duration::from_secs(300),
            logpush_lateness: Duration::from_secs(600),
        }
    }
}

/// How long archives are kept, in days after their window ends. Tenants and zones choose within
/// the bounds through the API; the policy in force when a window is archived fixes its
/// retain-until.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// `retention.default_days`: for tenants that did not choose (395: 13 months).
    pub default_days: u32,
    /// `retention.min_days` / `retention.max_days`: the range tenants may choose from. At least
    /// 7: raw batches stay in JetStream (RL_BATCH) for 7 days, so a shorter retention would
    /// keep personal data longer than the policy says.
    pub min_days: u32,
    pub max_days: u32,
}

/// RL_BATCH's `max_age` (nats/streams/RL_BATCH.json) in days.
pub const MIN_RETENTION_DAYS: u32 = 7;

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            default_days: 395,
            min_days: MIN_RETENTION_DAYS,
            max_days: 3650,
        }
    }
}

/// Connections to hosts that tenants name (the endpoint of a Logpush bucket): a tenant could
/// name an address inside the operator's network, so by default only public addresses are
/// reached, checked on every DNS lookup.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundSettings {
    /// `outbound.allow_private_networks`: also reach loopback, private, link-local and other
    /// non-public addresses. Only for tests and for a RainLogs whose tenants are all trusted.
    pub allow_private_networks: bool,
    /// `outbound.amazon_s3_endpoint`: where Amazon S3 is reached for Logpush buckets without an
    /// `endpoint=` of their own, e.g. an S3 interface endpoint in your VPC
    /// (`https://bucket.vpce-….s3.eu-central-1.vpce.amazonaws.com`). Unset: Amazon S3's public
    /// endpoints.
    pub amazon_s3_endpoint: Option<String>,
}

/// Secrets. Each `x` may instead be read from `x_file`. None has a default; `--dev` generates them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretSettings {
    /// `secrets.token_encryption_key`: 32 bytes hex; seals Cloudflare tokens at rest.
    pub token_encryption_key: Option<Secret>,
    pub token_encryption_key_file: Option<PathBuf>,
    /// `secrets.api_key_digest_key`: 32 bytes hex; keys the digest stored for API keys.
    pub api_key_digest_key: Option<Secret>,
    pub api_key_digest_key_file: Option<PathBuf>,
    /// `secrets.jwt_secret`: HS256 key for dashboard tokens.
    pub jwt_secret: Option<Secret>,
    pub jwt_secret_file: Option<PathBuf>,
    /// `secrets.signing_key`: the sealer's Ed25519 checkpoint key (`PRIVATE+KEY+…` note form).
    pub signing_key: Option<Secret>,
    pub signing_key_file: Option<PathBuf>,
    /// `secrets.previous_token_encryption_key`: the key `token_encryption_key` replaced, while
    /// `rainlogs keys rotate` re-seals the tokens it sealed. Opens tokens, never seals.
    pub previous_token_encryption_key: Option<Secret>,
    pub previous_token_encryption_key_file: Option<PathBuf>,
}

/// The secrets `rainlogs secrets generate` writes: 32 random bytes as hex each. The signing key
/// has its own generator (`rainlogs keys generate`), since it names the deployment.
pub const GENERATED_SECRET_NAMES: [&str; 3] =
    ["token_encryption_key", "api_key_digest_key", "jwt_secret"];

/// Names of the secrets, as used for `--dev` files and error messages.
pub const SECRET_NAMES: [&str; 4] = [
    "token_encryption_key",
    "api_key_digest_key",
    "jwt_secret",
    "signing_key",
];

impl SecretSettings {
    // `--dev` fills the first four (zipped with SECRET_NAMES); a previous key is never generated.
    fn slots(&mut self) -> [(&'static str, &mut Option<Secret>, &mut Option<PathBuf>); 5] {
        [
            (
                "secrets.token_encryption_key",
                &mut self.token_encryption_key,
                &mut self.token_encryption_key_file,
            ),
            (
                "secrets.api_key_digest_key",
                &mut self.api_key_digest_key,
                &mut self.api_key_digest_key_file,
            ),
            (
                "secrets.jwt_secret",
                &mut self.jwt_secret,
                &mut self.jwt_secret_file,
            ),
            (
                "secrets.signing_key",
                &mut self.signing_key,
                &mut self.signing_key_file,
            ),
            (
                "secrets.previous_token_encryption_key",
                &mut self.previous_token_encryption_key,
                &mut self.previous_token_encryption_key_file,
            ),
        ]
    }

    /// Points every secret that is still unset at `dir/<name>` (used by `--dev`).
    pub fn fill_from_dir(&mut self, dir: &std::path::Path) -> Result<(), ConfigError> {
        for ((key, value, file), name) in self.slots().into_iter().zip(SECRET_NAMES) {
            if value.is_none() && file.is_none() {
                *file = Some(dir.join(name));
                resolve(key, value, file)?;
            }
        }
        Ok(())
    }

    /// A secret a service cannot run without.
    pub fn require<'a>(
        secret: &'a Option<Secret>,
        key: &str,
        needed_by: &str,
    ) -> Result<&'a Secret, ConfigError> {
        secret.as_ref().ok_or_else(|| ConfigError::Secret {
            key: key.to_owned(),
            reason: format!(
                "required by {needed_by}; set {key} or {key}_file (env RAINLOGS__{}__{}_FILE), or run with --dev",
                key.split('.').next().unwrap_or("").to_ascii_uppercase(),
                key.split('.').nth(1).unwrap_or("").to_ascii_uppercase(),
            ),
        })
    }
}

impl Config {
    /// Values the types accept but the services cannot work with.
    pub(crate) fn check_ranges(&self) -> Result<(), ConfigError> {
        let window = self.collector.window.as_secs();
        if self.collector.window.subsec_nanos() != 0 || window == 0 || 3600 % window != 0 {
            return Err(ConfigError::Invalid(format!(
                "collector.window = {}: must be whole seconds that divide one hour (1s to 1h), \
                 so windows line up with the hour",
                humantime::format_duration(self.collector.window)
            )));
        }
        if self.collector.logpull_delay < MIN_LOGPULL_DELAY {
            return Err(ConfigError::Invalid(format!(
                "collector.logpull_delay = {}: must be at least {} (Cloudflare serves Logpull \
                 data no sooner than one minute after it was received; 5m is the safe default)",
                humantime::format_duration(self.collector.logpull_delay),
                humantime::format_duration(MIN_LOGPULL_DELAY)
            )));
        }
        if self.collector.logpush_lateness > MAX_LOGPUSH_LATENESS {
            return Err(ConfigError::Invalid(format!(
                "collector.logpush_lateness = {}: must be at most {} (the archiver lets go of a \
                 window's batches after 30 minutes without news, and a pushed window's first \
                 batches can wait the window length plus the lateness for its close)",
                humantime::format_duration(self.collector.logpush_lateness),
                humantime::format_duration(MAX_LOGPUSH_LATENESS)
            )));
        }
        let ttl = self.collector.lease_ttl;
        if ttl.subsec_nanos() != 0 || ttl < MIN_LEASE_TTL || ttl > MAX_LEASE_TTL {
            return Err(ConfigError::Invalid(format!(
                "collector.lease_ttl = {}: must be whole seconds from {} to {} (leases expire \
                 by NATS per-message TTL, counted in seconds)",
                humantime::format_duration(ttl),
                humantime::format_duration(MIN_LEASE_TTL),
                humantime::format_duration(MAX_LEASE_TTL)
            )));
        }
        if let Some(url) = &self.ingest.public_url {
            let host = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .map(|rest| rest.trim_end_matches('/'));
            if host.is_none_or(|h| h.is_empty() || h.contains(['?', '#', ' ']))
                || url.chars().any(char::is_whitespace)
            {
                return Err(ConfigError::Invalid(format!(
                    "ingest.public_url = {url:?}: must be the https:// URL (a path may follow, no \
                     query) at which Cloudflare reaches the ingest listener, e.g. https://logs.example.eu"
                )));
            }
        }
        if let Some(endpoint) = &self.outbound.amazon_s3_endpoint {
            let rest = endpoint
                .strip_prefix("http://")
                .or_else(|| endpoint.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(['/', '?', '#', '@']))
                || endpoint.chars().any(char::is_whitespace)
            {
                return Err(ConfigError::Invalid(format!(
                    "outbound.amazon_s3_endpoint = {endpoint:?}: must be an https:// URL of a \
                     server, without a path, e.g. https://s3.eu-central-1.amazonaws.com"
                )));
            }
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            let rest = endpoint
                .strip_prefix("http://")
                .or_else(|| endpoint.strip_prefix("https://"));
            let host = rest.and_then(|rest| rest.split(['/', '?', '#']).next());
            if host.is_none_or(str::is_empty) || endpoint.chars().any(char::is_whitespace) {
                return Err(ConfigError::Invalid(format!(
                    "telemetry.otlp_endpoint = {endpoint:?}: must be an http:// or https:// URL \
                     of an OTLP/HTTP collector, e.g. http://otel-collector:4318"
                )));
            }
        }
        let r = &self.retention;
        if r.min_days < MIN_RETENTION_DAYS
            || r.min_days > r.default_days
            || r.default_days > r.max_days
        {
            return Err(ConfigError::Invalid(format!(
                "retention: min_days ({}) <= default_days ({}) <= max_days ({}) must hold, with \
                 min_days at least {MIN_RETENTION_DAYS} (raw batches stay that long in RL_BATCH)",
                r.min_days, r.default_days, r.max_days
            )));
        }
        Ok(())
    }

    pub(crate) fn resolve_secret_files(&mut self) -> Result<(), ConfigError> {
        for (key, value, file) in self.secrets.slots() {
            resolve(key, value, file)?;
        }
        resolve(
            "database.url",
            &mut self.database.url,
            &self.database.url_file,
        )?;
        resolve(
            "store.secret_access_key",
            &mut self.store.secret_access_key,
            &self.store.secret_access_key_file,
        )?;
        if let Some(secondary) = &mut self.store.secondary {
            resolve(
                "store.secondary.secret_access_key",
                &mut secondary.secret_access_key,
                &secondary.secret_access_key_file,
            )?;
        }
        Ok(())
    }
}
