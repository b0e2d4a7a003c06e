//! Typed payloads. Adding an optional field keeps a type's schema version; any other change
//! introduces a new type name, so an old event stays decodable forever.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::DecodeError;

/// Largest uncompressed batch content accepted from the wire. Batches are cut at ~1 MB of
/// compressed payload; this bound stops a hostile size prefix from allocating without limit.
pub const MAX_BATCH_CONTENT: usize = 64 * 1024 * 1024;

/// Receive-time window `[start, end)` in Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

/// How the records of a window were obtained; decides what "complete" can mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Complete by Cloudflare's contract (Enterprise).
    Logpull,
    /// Sampled live tail; disconnects are gaps (Business).
    InstantLogs,
    /// Sampled security events (Pro/Free).
    Graphql,
    /// Complete: Cloudflare pushes every record to RainLogs' ingest endpoint (every plan,
    /// and the only complete source for an EU-only metadata boundary).
    LogpushHttp,
    /// Complete: Cloudflare writes every record into the customer's bucket, which RainLogs
    /// reads with read-only keys (`ctl.push_source_set`).
    LogpushS3,
}

impl Method {
    /// Its one name in events, the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logpull => "logpull",
            Self::InstantLogs => "instant_logs",
            Self::Graphql => "graphql",
            Self::LogpushHttp => "logpush_http",
            Self::LogpushS3 => "logpush_s3",
        }
    }

    pub const ALL: [Self; 5] = [
        Self::Logpull,
        Self::InstantLogs,
        Self::Graphql,
        Self::LogpushHttp,
        Self::LogpushS3,
    ];

    /// Cloudflare pushes the records (to the ingest endpoint or a bucket).
    pub fn is_pushed(self) -> bool {
        matches!(self, Self::LogpushHttp | Self::LogpushS3)
    }

    /// The method named by [`Method::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.as_str() == name)
    }

    /// What Cloudflare calls the product, for sentences people read.
    pub fn product(self) -> &'static str {
        match self {
            Self::Logpull => "Logpull",
            Self::InstantLogs => "Instant Logs",
            Self::Graphql => "GraphQL security events",
            Self::LogpushHttp => "Logpush",
            Self::LogpushS3 => "Logpush to the customer's bucket",
        }
    }
}

/// Role carried by an API key or user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Auditor,
    Operator,
    Admin,
}

/// Why a window has no archive although records may have existed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// The window fell out of Cloudflare's retention before it could be fetched.
    RetentionExpired,
    /// Instant Logs session was not connected during the window.
    Disconnected,
    /// Cloudflare refused the window permanently (the detail says why).
    Refused,
    /// Logpull retention flag was off for the zone.
    RetentionFlagOff,
    /// The zone was paused by an operator.
    Paused,
    /// No collector was running (crashed, restarting, its zones moving to another process) and
    /// the source cannot replay the time (Instant Logs): RainLogs' loss, not Cloudflare's.
    CollectorOutage,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum Event {
    #[serde(rename = "ctl.tenant_created")]
    TenantCreated(TenantCreated),
    #[serde(rename = "ctl.tenant_deleted")]
    TenantDeleted(TenantDeleted),
    #[serde(rename = "ctl.zone_added")]
    ZoneAdded(ZoneAdded),
    #[serde(rename = "ctl.zone_changed")]
    ZoneChanged(ZoneChanged),
    #[serde(rename = "ctl.zone_removed")]
    ZoneRemoved(ZoneRemoved),
    #[serde(rename = "ctl.zone_health")]
    ZoneHealth(ZoneHealth),
    #[serde(rename = "ctl.api_key_created")]
    ApiKeyCreated(ApiKeyCreated),
    #[serde(rename = "ctl.user_created")]
    UserCreated(UserCreated),
    #[serde(rename = "ctl.api_key_revoked")]
    ApiKeyRevoked(ApiKeyRevoked),
    #[serde(rename = "ctl.pull_requested")]
    PullRequested(PullRequested),
    #[serde(rename = "ctl.legal_hold_set")]
    LegalHoldSet(LegalHoldSet),
    #[serde(rename = "ctl.legal_hold_released")]
    LegalHoldReleased(LegalHoldReleased),
    #[serde(rename = "ctl.retention_set")]
    RetentionSet(RetentionSet),
    #[serde(rename = "ctl.push_endpoint_set")]
    PushEndpointSet(PushEndpointSet),
    #[serde(rename = "ctl.push_source_set")]
    PushSourceSet(PushSourceSet),
    #[serde(rename = "push.received")]
    PushReceived(PushReceived),
    #[serde(rename = "batch.collected")]
    BatchCollected(BatchCollected),
    #[serde(rename = "batch.window_closed")]
    WindowClosed(WindowClosed),
    #[serde(rename = "archive.stored")]
    ArchiveStored(ArchiveStored),
    #[serde(rename = "archive.window_empty")]
    WindowEmpty(WindowEmpty),
    #[serde(rename = "archive.window_gap")]
    WindowGap(WindowGap),
    #[serde(rename = "archive.window_short")]
    WindowShort(WindowShort),
    #[serde(rename = "archive.pruned")]
    ArchivePruned(ArchivePruned),
    #[serde(rename = "archive.index_rebuilt")]
    IndexRebuilt(IndexRebuilt),
    #[serde(rename = "archive.erasure_requested")]
    ErasureRequested(ErasureRequested),
    #[serde(rename = "chain.entry_sealed")]
    EntrySealed(EntrySealed),
    #[serde(rename = "audit.recorded")]
    AuditRecorded(AuditRecorded),
}

impl Event {
    /// Whether the payload holds personal data that a tenant's erasure (GDPR Art. 17) removes
    /// from the control stream: the registration (name, email), dashboard users (email, password
    /// hash) and API key labels. Everything
    /// else identifies zones, archives and keys, which the retention duty keeps.
    pub fn holds_personal_data(&self) -> bool {
        matches!(
            self,
            Event::TenantCreated(_) | Event::ApiKeyCreated(_) | Event::UserCreated(_)
        )
    }

    /// The `type` string on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::TenantCreated(_) => "ctl.tenant_created",
            Event::TenantDeleted(_) => "ctl.tenant_deleted",
            Event::ZoneAdded(_) => "ctl.zone_added",
            Event::ZoneChanged(_) => "ctl.zone_changed",
            Event::ZoneRemoved(_) => "ctl.zone_removed",
            Event::ZoneHealth(_) => "ctl.zone_health",
            Event::ApiKeyCreated(_) => "ctl.api_key_created",
            Event::UserCreated(_) => "ctl.user_created",
            Event::ApiKeyRevoked(_) => "ctl.api_key_revoked",
            Event::PullRequested(_) => "ctl.pull_requested",
            Event::LegalHoldSet(_) => "ctl.legal_hold_set",
            Event::LegalHoldReleased(_) => "ctl.legal_hold_released",
            Event::RetentionSet(_) => "ctl.retention_set",
            Event::PushEndpointSet(_) => "ctl.push_endpoint_set",
            Event::PushSourceSet(_) => "ctl.push_source_set",
            Event::PushReceived(_) => "push.received",
            Event::BatchCollected(_) => "batch.collected",
            Event::WindowClosed(_) => "batch.window_closed",
            Event::ArchiveStored(_) => "archive.stored",
            Event::WindowEmpty(_) => "archive.window_empty",
            Event::WindowGap(_) => "archive.window_gap",
            Event::WindowShort(_) => "archive.window_short",
            Event::ArchivePruned(_) => "archive.pruned",
            Event::IndexRebuilt(_) => "archive.index_rebuilt",
            Event::ErasureRequested(_) => "archive.erasure_requested",
            Event::EntrySealed(_) => "chain.entry_sealed",
            Event::AuditRecorded(_) => "audit.recorded",
        }
    }

    /// Newest payload schema version of this type that this build writes and reads.
    pub fn schema_version(&self) -> u16 {
        1
    }
}

/// The zone may push one dataset's logs to the ingest endpoint (Logpush over HTTP) with the
/// secret whose SHA-256 this is. A later event for the zone and dataset replaces it (rotation);
/// `ctl.zone_removed` ends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushEndpointSet {
    pub zone_id: String,
    /// SHA-256 of the bearer secret in the job's `destination_conf` (32 random bytes, so an
    /// unkeyed digest is enough); the secret itself is never stored.
    #[serde(with = "serde_bytes")]
    pub secret_sha256: Vec<u8>,
    /// The dataset the secret pushes; absent means `http_requests` (each dataset's job has its
    /// own secret, and events written before there were two name none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
}

impl PushEndpointSet {
    /// The dataset whose pushes the secret authorizes.
    pub fn dataset(&self) -> &str {
        self.dataset.as_deref().unwrap_or("http_requests")
    }
}

/// The zone's Logpush writes into the customer's bucket: the job's `destination_conf` (with the
/// keys Cloudflare writes with) and the read-only keys RainLogs reads with, as one JSON document
/// sealed like the zone's Cloudflare token (XChaCha20-Poly1305, AAD = tenant/zone). A later
/// event for the zone replaces it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushSourceSet {
    pub zone_id: String,
    #[serde(with = "serde_bytes")]
    pub sealed_source: Vec<u8>,
    /// Which token-encryption key sealed it (for rotation).
    pub key_id: String,
}

/// One part of a batch Cloudflare pushed, stored before the push was answered 200. A push is
/// cut into parts at line boundaries, each small enough for one NATS message; records are in
/// the order they arrived and are not yet assigned to windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushReceived {
    pub dataset: String,
    pub records: u32,
    /// SHA-256 of the part's NDJSON: a retried push cuts the same parts, and the event id (so
    /// the `Nats-Msg-Id`) is derived from it, so JetStream stores each part once.
    #[serde(with = "serde_bytes")]
    pub content_sha256: Vec<u8>,
    /// NDJSON lines (each ending in `\n`), LZ4 block with a little-endian u32 size prefix, as
    /// in `batch.collected`.
    #[serde(with = "serde_bytes")]
    pub content_lz4: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TenantCreated {
    pub name: String,
    pub email: String,
    pub retention_days: u32,
}

/// GDPR Art. 17 erasure request; what a retention duty holds is deleted at its retain-until.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TenantDeleted {
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoneAdded {
    /// Cloudflare zone id (32 hex).
    pub zone_id: String,
    pub name: String,
    /// `plan.legacy_id` as Cloudflare reported it at onboarding.
    pub plan: String,
    pub method: Method,
    /// Field preset (`default`, `extended`, `all`) or an explicit comma list.
    pub fields: String,
    /// Cloudflare API token, XChaCha20-Poly1305 sealed with AAD = tenant/zone.
    #[serde(with = "serde_bytes")]
    pub sealed_token: Vec<u8>,
    /// Which token-encryption key sealed it (for rotation).
    pub token_key_id: String,
}

/// Only the fields that are `Some` change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ZoneChanged {
    pub zone_id: String,
    pub paused: Option<bool>,
    pub method: Option<Method>,
    pub fields: Option<String>,
    #[serde(with = "serde_bytes", default)]
    pub sealed_token: Option<Vec<u8>>,
    pub token_key_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoneRemoved {
    pub zone_id: String,
}

/// Outcome of an onboarding check or a collection state change, in words a human can act on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoneHealth {
    pub zone_id: String,
    /// `ok`, `degraded` or `failing`.
    pub status: String,
    pub reason: String,
    pub plan: Option<String>,
    pub method: Option<Method>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyCreated {
    pub key_id: String,
    pub name: String,
    pub role: Role,
    /// Keyed digest of the secret part; the secret itself is never stored or published.
    #[serde(with = "serde_bytes")]
    pub digest: Vec<u8>,
    pub expires_at_ns: Option<i64>,
}

/// A dashboard user who signs in with email and password (`POST /api/v1/auth/login`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserCreated {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    /// PHC string (argon2id); the password itself is never stored or published.
    pub password_hash: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRevoked {
    pub key_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PullRequested {
    pub zone_id: String,
    pub window: Window,
}

/// Stops every deletion of the tenant's archives (or of one zone's) until released.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LegalHoldSet {
    pub hold_id: String,
    /// `None`: the hold covers every zone of the tenant.
    pub zone_id: Option<String>,
    /// Why, for the audit trail (case number, authority).
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LegalHoldReleased {
    pub hold_id: String,
}

/// How long archives sealed from now on are kept. Archives already sealed keep the retain-until
/// they were sealed with; a shorter policy never shortens them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetentionSet {
    /// `None`: the tenant's policy (zones without their own). `Some`: that zone's override.
    pub zone_id: Option<String>,
    /// Days after a window's end; `None` on a zone removes its override.
    pub days: Option<u32>,
}

/// A slice of one window's records, exactly as Cloudflare sent them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchCollected {
    pub dataset: String,
    pub window: Window,
    /// One collection attempt of the window; batches of an abandoned attempt are ignored.
    pub attempt: Uuid,
    /// Position of this batch within the attempt, from 0.
    pub seq: u32,
    pub records: u32,
    /// Live tails (Instant Logs) only: the collector's clock, Unix seconds, when the newest
    /// record of this batch arrived. After a crash it says how far the published records
    /// reach, so the window can be closed there instead of being lost whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_until: Option<i64>,
    /// A batch of a `late` attempt (records for a window already closed; see `WindowClosed`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
    /// NDJSON lines (each ending in `\n`), LZ4 block with a little-endian u32 size prefix.
    #[serde(with = "serde_bytes")]
    pub content_lz4: Vec<u8>,
}

impl BatchCollected {
    /// Packs NDJSON lines into a batch payload.
    pub fn compress(lines: &[u8]) -> Vec<u8> {
        lz4_flex::compress_prepend_size(lines)
    }

    /// The NDJSON lines of this batch, refusing a size prefix beyond [`MAX_BATCH_CONTENT`].
    pub fn content(&self) -> Result<Vec<u8>, DecodeError> {
        decompress_content(&self.content_lz4)
    }
}

impl PushReceived {
    /// The NDJSON lines of this part, refusing a size prefix beyond [`MAX_BATCH_CONTENT`].
    pub fn content(&self) -> Result<Vec<u8>, DecodeError> {
        decompress_content(&self.content_lz4)
    }
}

/// Unpacks size-prefixed LZ4 content without trusting the prefix beyond [`MAX_BATCH_CONTENT`].
fn decompress_content(content_lz4: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let prefix: [u8; 4] = content_lz4
        .get(..4)
        .and_then(|p| p.try_into().ok())
        .ok_or_else(|| DecodeError::Payload("missing size prefix".into()))?;
    let size = u32::from_le_bytes(prefix) as usize;
    if size > MAX_BATCH_CONTENT {
        return Err(DecodeError::Payload(format!(
            "declared size {size} exceeds {MAX_BATCH_CONTENT}"
        )));
    }
    lz4_flex::decompress_size_prepended(content_lz4)
        .map_err(|e| DecodeError::Payload(e.to_string()))
}

/// How a collection attempt of a window ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum WindowOutcome {
    /// All `batches` of the attempt were published.
    Complete {
        batches: u32,
        records: u64,
        method: Method,
        /// Records stand for this many events each (1 = unsampled).
        sample_interval: u32,
        fields: String,
    },
    /// Cloudflare answered with no records.
    Empty {
        method: Method,
    },
    Gap {
        reason: GapReason,
        detail: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowClosed {
    pub dataset: String,
    pub window: Window,
    pub attempt: Uuid,
    #[serde(flatten)]
    pub outcome: WindowOutcome,
    /// Pushed sources (Logpush) only: every record of the zone's pushes up to this `RL_PUSH`
    /// sequence that belongs to the window is in this close or an earlier one of the window.
    /// A collector that starts again reads the pushes after it without storing a record twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_through: Option<u64>,
    /// Records that arrived after the window was already closed: this close adds them to the
    /// window (archived and sealed as a `late` entry) and never replaces its first close.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
}

/// One archive object written and durable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchiveStored {
    pub dataset: String,
    pub window: Window,
    pub attempt: Uuid,
    pub object_key: String,
    pub object_version: Option<String>,
    pub stored_size: u64,
    #[serde(with = "serde_bytes")]
    pub stored_sha256: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub content_sha256: Vec<u8>,
    pub records: u64,
    /// Range of the records' event times (ns: `EdgeStartTimestamp`, or `Datetime` for
    /// security events), when present.
    pub event_time_min_ns: Option<i64>,
    pub event_time_max_ns: Option<i64>,
    pub method: Method,
    pub sample_interval: u32,
    pub fields: String,
    /// Unix seconds before which the object must not be deleted.
    pub retain_until: i64,
    /// Records that arrived after the window was sealed (a `late` close): sealed as a `late`
    /// entry that adds to the window instead of accounting for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
    /// The object's search index, written beside it (docs/FORMAT.md §12); sealed as an `index`
    /// entry right after the object's own entry. Absent from archivers that predate indexes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexStored>,
}

/// An index object written and durable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexStored {
    pub object_key: String,
    pub object_version: Option<String>,
    pub stored_size: u64,
    #[serde(with = "serde_bytes")]
    pub stored_sha256: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowEmpty {
    pub dataset: String,
    pub window: Window,
    pub attempt: Uuid,
    pub method: Method,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowGap {
    pub dataset: String,
    pub window: Window,
    pub attempt: Uuid,
    pub reason: GapReason,
    pub detail: String,
}

/// A pushed window holds fewer records than the source counted for it, beyond the collector's
/// tolerance: the records missing cannot be collected again. The sealer logs it as a
/// `shortfall` entry after the window's own entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowShort {
    pub dataset: String,
    pub window: Window,
    /// How the window was collected.
    pub method: Method,
    /// The source's count of the window's records (Cloudflare's analytics: sampled, an
    /// estimate).
    pub source_records: u64,
    /// Records the window's closes held when it was checked.
    pub archived_records: u64,
}

/// An archive object deleted after its retain-until; the sealer logs it as a `prune` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchivePruned {
    /// The `archive` entry whose object was deleted: its log index and its canonical bytes,
    /// so the sealer can check what it is asked to log without another lookup.
    pub target_index: u64,
    #[serde(with = "serde_bytes")]
    pub target_entry: Vec<u8>,
    /// Retention policy that allowed the deletion, e.g. `retention-395d`.
    pub policy: String,
    /// When the object was deleted, Unix ns.
    pub pruned_at_ns: i64,
}

/// The index object of an archive sealed without one (before indexes existed), written by
/// `rainlogs index rebuild`; the sealer logs it as an `index` entry naming that archive's entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexRebuilt {
    /// The `archive` or `late` entry indexed: its log index and its canonical bytes, so the
    /// sealer can check what it is asked to log without another lookup.
    pub target_index: u64,
    #[serde(with = "serde_bytes")]
    pub target_entry: Vec<u8>,
    pub index: IndexStored,
}

/// The zone's tenant was erased: the sealer appends the log's `erasure` entry (docs/FORMAT.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErasureRequested {
    /// Why, as given with the erasure (e.g. `GDPR Art. 17 request`).
    pub reason: String,
}

/// One entry appended to a zone's integrity log (see docs/FORMAT.md for `entry`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntrySealed {
    pub index: u64,
    /// Canonical entry bytes, exactly as hashed into the Merkle leaf.
    #[serde(with = "serde_bytes")]
    pub entry: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub chain_hash: Vec<u8>,
}

/// Every mutating action and every data access.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecorded {
    /// e.g. `zone.add`, `archive.download`, `api_key.revoke`.
    pub action: String,
    pub target: String,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    pub detail: Option<String>,
}

#[cfg(test)]
mod method_names {
    use super::Method;

    #[test]
    fn the_one_name_is_the_serialized_name_and_parses_back() {
        for method in Method::ALL {
            let serialized = ciborium::Value::serialized(&method).expect("cbor");
            assert_eq!(serialized, ciborium::Value::Text(method.as_str().into()));
            assert_eq!(Method::parse(method.as_str()), Some(method));
        }
        assert_eq!(Method::parse("Logpull"), None);
    }
}
