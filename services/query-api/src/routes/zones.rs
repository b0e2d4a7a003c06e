//! `POST|GET /api/v1/zones`, `PATCH|DELETE /api/v1/zones/{zone_id}`,
//! `POST /api/v1/zones/{zone_id}/pull`.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use rainlogs_cloudflare::{ApiToken, CfError, PlanTier, Zone};
use rainlogs_push::PushSource;
use rainlogs_schemas::events::{
    Event, Method, PullRequested, PushSourceSet, Role, Window, ZoneAdded, ZoneChanged, ZoneRemoved,
};
use time::OffsetDateTime;

use crate::auth::BearerAuth;
use crate::error::{ApiError, ErrorCode};
use crate::events::Outcome;
use crate::state::{AppState, SharedState};
use crate::storage_status::ZoneStorage;
use crate::text::{Label, Text};
use crate::views::{ApiTags, from_ns, is_zone_id, now, zone_not_found};

pub struct ZonesApi;

/// How a zone's logs are collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
pub enum MethodName {
    /// Complete HTTP request logs (Enterprise).
    Logpull,
    /// Sampled live tail (Business, Enterprise).
    InstantLogs,
    /// Sampled security events (every plan).
    Graphql,
    /// Complete HTTP request logs pushed by Cloudflare to the ingest endpoint (every plan).
    LogpushHttp,
    /// Complete HTTP request logs Cloudflare writes into the customer's bucket (every plan).
    LogpushS3,
}

/// How a zone is to be collected, as asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum MethodChoice {
    /// Complete HTTP request logs (Enterprise).
    Logpull,
    /// Sampled live tail (Business, Enterprise).
    InstantLogs,
    /// Sampled security events (every plan).
    Graphql,
    /// Complete HTTP request logs that Cloudflare pushes to this RainLogs (every plan; needs
    /// `ingest.public_url` and a token with Logs Edit, which creates the Logpush job).
    LogpushHttp,
    /// Complete HTTP request logs Cloudflare writes into the customer's bucket, which RainLogs
    /// reads (every plan; needs `bucket`, and a token with Logs Edit, which creates the job).
    LogpushS3,
    /// Logpush where this RainLogs can take pushes, else the best method the plan allows.
    Auto,
}

impl MethodName {
    fn method(self) -> Method {
        match self {
            Self::Logpull => Method::Logpull,
            Self::InstantLogs => Method::InstantLogs,
            Self::Graphql => Method::Graphql,
            Self::LogpushHttp => Method::LogpushHttp,
            Self::LogpushS3 => Method::LogpushS3,
        }
    }

    fn parse(text: &str) -> Self {
        match Method::parse(text) {
            Some(Method::Logpull) => Self::Logpull,
            Some(Method::InstantLogs) => Self::InstantLogs,
            Some(Method::LogpushHttp) => Self::LogpushHttp,
            Some(Method::LogpushS3) => Self::LogpushS3,
            _ => Self::Graphql,
        }
    }
}

/// The customer's bucket that Cloudflare's Logpush writes into, for `method: logpush_s3`.
/// RainLogs creates the zone's jobs (`http_requests` where `destination_conf` says, security
/// events under `<path>/firewall_events/`), reads each object Cloudflare writes once, in key
/// order, and leaves the objects where they are unless `delete_after_sealing` is set.
#[derive(Object)]
struct LogpushBucket {
    /// The job's destination. S3-compatible (EU providers):
    /// `s3://<bucket>/<path>/{DATE}?region=<r>&endpoint=<host>&access-key-id=<id>&secret-access-key=<secret>`
    /// with keys Cloudflare writes with. Amazon S3: `s3://<bucket>/<path>/{DATE}?region=<r>`,
    /// written with Cloudflare's own identity (the bucket policy must allow it); RainLogs runs
    /// the ownership challenge. The endpoint must be public.
    #[oai(validator(min_length = 8, max_length = 2048))]
    destination_conf: Text,
    /// A key that may list and read the bucket (sealed at rest, never shown again).
    #[oai(validator(min_length = 1, max_length = 256, pattern = r"^[\x21-\x7E]+$"))]
    read_access_key_id: Text,
    #[oai(validator(min_length = 1, max_length = 256, pattern = r"^[\x21-\x7E]+$"))]
    read_secret_access_key: Text,
    /// Delete each object once every record in it is sealed in the zone's log (the read key
    /// then needs delete rights). Absent or false: objects stay for the bucket's own lifecycle
    /// rules.
    #[oai(default)]
    delete_after_sealing: bool,
}

impl LogpushBucket {
    fn source(&self) -> PushSource {
        PushSource {
            destination_conf: self.destination_conf.to_string(),
            read_access_key_id: self.read_access_key_id.to_string(),
            read_secret_access_key: self.read_secret_access_key.to_string(),
            delete_after_sealing: self.delete_after_sealing,
        }
    }
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
struct NewZone {
    /// Cloudflare zone id (32 lowercase hex).
    #[oai(validator(pattern = "^[0-9a-f]{32}$"))]
    zone_id: Text,
    /// A Cloudflare API token with Zone Read and Logs Read (sealed at rest, never shown again).
    #[oai(validator(min_length = 1, max_length = 1024, pattern = r"^[\x21-\x7E]+$"))]
    cf_api_token: Text,
    /// A label; absent or null: the zone's name at Cloudflare.
    #[oai(nullable, validator(max_length = 253))]
    name: Option<Label>,
    /// Absent or null: the best pulled method the plan allows (`auto` prefers Logpush).
    #[oai(nullable)]
    method: Option<MethodChoice>,
    /// `default`, `extended`, `all` or a comma-separated field list; absent or null: `default`.
    #[oai(
        nullable,
        validator(
            max_length = 2000,
            pattern = r"^(default|extended|all|[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*)$"
        )
    )]
    fields: Option<Text>,
    /// With `method: logpush_s3` only: the bucket Cloudflare writes into.
    #[oai(nullable)]
    bucket: Option<LogpushBucket>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
/// Changes only the fields given; an absent or null field stays as it is.
struct ZonePatch {
    #[oai(nullable)]
    paused: Option<bool>,
    #[oai(nullable)]
    method: Option<MethodChoice>,
    #[oai(
        nullable,
        validator(
            max_length = 2000,
            pattern = r"^(default|extended|all|[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*)$"
        )
    )]
    fields: Option<Text>,
    /// A replacement Cloudflare API token, checked before it is stored.
    #[oai(
        nullable,
        validator(min_length = 1, max_length = 1024, pattern = r"^[\x21-\x7E]+$")
    )]
    cf_api_token: Option<Text>,
    /// A replacement bucket (or new read keys) for a `logpush_s3` zone, checked before it is
    /// stored; required when switching to `logpush_s3`.
    #[oai(nullable)]
    bucket: Option<LogpushBucket>,
}

#[derive(Object)]
struct PullRequest {
    /// Window start (inclusive).
    start: OffsetDateTime,
    /// Window end (exclusive); not in the future.
    end: OffsetDateTime,
}

#[derive(Object)]
struct PullAccepted {
    zone_id: String,
    start: OffsetDateTime,
    end: OffsetDateTime,
    /// Follow the resulting windows with `GET /api/v1/zones/{zone_id}/logs`.
    status: String,
}

/// Collection health in words a person can act on.
#[derive(Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ZoneHealthView {
    /// `ok`, `degraded`, `failing`, `paused` or `pending`.
    pub status: String,
    pub reason: String,
    /// End of the newest window with a sealed entry.
    pub last_window_end: Option<OffsetDateTime>,
    /// Minutes between now and `last_window_end`.
    pub lag_minutes: Option<i64>,
    /// With two storage providers: whether they answer and how much of this zone waits to be
    /// copied to the one that missed it, as the running RainLogs processes report it. Absent
    /// with one provider, or while no process reports.
    pub storage: Option<ZoneStorageView>,
}

/// The zone's archives on the two storage providers.
#[derive(Object, serde::Serialize)]
pub struct ZoneStorageView {
    /// `ok` (both providers answer, nothing waits for repair) or `degraded`.
    pub status: String,
    pub reason: String,
    /// Objects of this zone on one provider only, waiting to be copied to the other.
    pub backlog: u64,
}

#[derive(Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ZoneView {
    pub zone_id: String,
    pub name: String,
    /// Cloudflare plan as detected at onboarding (`free`, `pro`, `business`, `enterprise`).
    pub plan: String,
    pub method: MethodName,
    pub fields: String,
    pub paused: bool,
    pub added_at: OffsetDateTime,
    pub health: ZoneHealthView,
    /// The zone's own retention in days; absent: the tenant's applies.
    pub retention_days: Option<u32>,
}

#[derive(Object)]
struct ZoneList {
    zones: Vec<ZoneView>,
}

#[derive(ApiResponse)]
enum CreateZoneResponse {
    /// The zone, its detected plan and method.
    #[oai(status = 201)]
    Created(Json<ZoneView>),
}

#[derive(ApiResponse)]
enum DeleteZoneResponse {
    /// Collection stops; archives stay under their retention.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
enum PullResponse {
    /// The pull request is queued for the collector.
    #[oai(status = 202)]
    Accepted(Json<PullAccepted>),
}

/// Minutes behind after which a zone counts as lagging.
const LAG_WARNING_MINUTES: i64 = 10;

fn valid_fields(fields: &str) -> bool {
    matches!(fields, "default" | "extended" | "all")
        || fields
            .split(',')
            .all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// The most a pull may span.
const MAX_PULL: time::Duration = time::Duration::days(7);

/// How far back Cloudflare serves a method's logs: Logpull keeps 7 days; GraphQL's
/// `notOlderThan` is at most 31 days (less on smaller plans, which Cloudflare then refuses and
/// the collector records as a gap); Instant Logs is a live tail and keeps nothing.
fn reach(method: MethodName) -> time::Duration {
    match method {
        MethodName::Logpull => {
            time::Duration::try_from(rainlogs_cloudflare::LOGPULL_MAX_AGE).unwrap_or(MAX_PULL)
        }
        MethodName::Graphql => time::Duration::days(31),
        // A live tail and a push keep nothing to pull again.
        MethodName::InstantLogs | MethodName::LogpushHttp | MethodName::LogpushS3 => {
            time::Duration::ZERO
        }
    }
}

/// A pull window must be non-empty, over by `now`, at most 7 days long, and start within what
/// Cloudflare still keeps for the zone's method: anything else would collect nothing and
/// still use up the tenant's pull quota.
fn check_pull_window(
    method: MethodName,
    start: OffsetDateTime,
    end: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    let refuse = |why: String| Err(ApiError::new(ErrorCode::InvalidWindow, why));
    if start >= end {
        return refuse("start must be before end".into());
    }
    if end > now {
        return refuse("end must not be in the future".into());
    }
    if end - start > MAX_PULL {
        return refuse("a pull covers at most 7 days".into());
    }
    let reach = reach(method);
    if reach.is_zero() {
        return refuse(
            "Instant Logs is a live tail: Cloudflare keeps nothing to pull for past windows".into(),
        );
    }
    if start < now - reach {
        return refuse(format!(
            "start is older than the {} days Cloudflare keeps for {}",
            reach.whole_days(),
            method.method().as_str()
        ));
    }
    Ok(())
}

fn needs_bucket() -> ApiError {
    invalid_bucket(
        "logpush_s3 needs bucket: the destination_conf Cloudflare writes to and the keys RainLogs \
         reads it with"
            .into(),
    )
}

fn bucket_without_logpush_s3() -> ApiError {
    invalid_bucket("bucket is only taken with method logpush_s3".into())
}

/// A bucket the schema allows but RainLogs cannot take: 422, like other well-formed requests
/// that cannot be done.
fn invalid_bucket(why: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidBucket, why)
}

fn cloudflare_error(zone_id: &str, error: &CfError) -> ApiError {
    if error.is_retryable() {
        tracing::warn!(zone = zone_id, %error, "Cloudflare unavailable while checking a zone");
        return ApiError::new(
            ErrorCode::CloudflareUnavailable,
            format!("Cloudflare could not be asked about zone {zone_id}; try again shortly"),
        );
    }
    let why = match error {
        CfError::Auth { .. } => "Cloudflare refused the API token for this zone".to_owned(),
        CfError::InvalidZoneId { .. } => format!("Cloudflare does not know zone {zone_id}"),
        other => format!("Cloudflare refused the zone check: {other}"),
    };
    ApiError::new(ErrorCode::CloudflareRejected, why)
}

fn health_view(
    paused: bool,
    collector: Option<(String, String)>,
    last: Option<(String, i64, i64, Option<String>)>,
) -> ZoneHealthView {
    let now = now();
    let last_window_end = last.as_ref().map(|(_, _, end, _)| from_ns(*end));
    let lag_minutes = last_window_end.map(|end| (now - end).whole_minutes().max(0));
    let (status, reason) = if paused {
        ("paused".to_owned(), "paused by an operator".to_owned())
    } else if let Some((status, reason)) = collector.as_ref().filter(|(s, _)| s != "ok") {
        // The collector's own word on trouble wins: a recent sealed window does not make a
        // zone whose collector reports it degraded look healthy.
        (status.clone(), reason.clone())
    } else {
        match (&last, lag_minutes) {
            (None, _) => collector.unwrap_or_else(|| {
                (
                    "pending".into(),
                    "never pulled: waiting for the first window to be sealed".into(),
                )
            }),
            (Some((kind, start, _, gap_reason)), _) if kind == "gap" => (
                "degraded".into(),
                format!(
                    "gap since {} because {}",
                    from_ns(*start),
                    gap_reason.as_deref().unwrap_or("of an unknown reason")
                ),
            ),
            (Some(_), Some(lag)) if lag > LAG_WARNING_MINUTES => {
                ("degraded".into(), format!("lagging by {lag} min"))
            }
            (Some(_), _) => ("ok".into(), "collecting".into()),
        }
    };
    ZoneHealthView {
        status,
        reason,
        last_window_end,
        lag_minutes,
        storage: None,
    }
}

/// Adds the storage part: trouble there makes the zone `degraded` (a paused or failing zone
/// keeps its status), with the storage reason after any the zone already had.
fn with_storage(mut health: ZoneHealthView, storage: ZoneStorage) -> ZoneHealthView {
    if !storage.ok && !matches!(health.status.as_str(), "paused" | "failing") {
        health.reason = if health.status == "ok" {
            storage.reason.clone()
        } else {
            format!("{}; {}", health.reason, storage.reason)
        };
        health.status = "degraded".into();
    }
    health.storage = Some(ZoneStorageView {
        status: if storage.ok { "ok" } else { "degraded" }.into(),
        reason: storage.reason,
        backlog: storage.backlog,
    });
    health
}

/// A zone with the collector's word on it and its newest sealed window, as `zone_rows` reads it.
#[derive(Clone, sqlx::FromRow)]
pub struct ZoneRow {
    zone_id: String,
    name: String,
    plan: String,
    method: String,
    fields: String,
    paused: bool,
    added_at: OffsetDateTime,
    health_status: Option<String>,
    health_reason: Option<String>,
    /// The newest archive, empty or gap entry.
    kind: Option<String>,
    window_start_ns: Option<i64>,
    window_end_ns: Option<i64>,
    gap_reason: Option<String>,
    retention_days: Option<i32>,
}

impl AppState {
    /// The tenant's live zones (or one of them), with health.
    pub async fn zones(&self, tenant: &str, zone: Option<&str>) -> Result<Vec<ZoneView>, ApiError> {
        let key = format!("zones/{}", zone.unwrap_or("*"));
        let rows = self
            .read_cache
            .get_or_load(tenant, key, crate::read_cache::ZONES_AND_JOBS, || {
                self.zone_rows(tenant, zone)
            })
            .await?;
        // Not cached with the rows: it changes with no projection.
        let storage = self.storage_status.aggregate().await;
        Ok(rows
            .iter()
            .cloned()
            .map(|r| {
                let collector = r.health_status.zip(r.health_reason);
                let last = match (r.kind, r.window_start_ns, r.window_end_ns) {
                    (Some(kind), Some(start), Some(end)) => Some((kind, start, end, r.gap_reason)),
                    _ => None,
                };
                let mut health = health_view(r.paused, collector, last);
                if let Some(storage) = &storage {
                    health = with_storage(health, storage.zone(tenant, &r.zone_id));
                }
                ZoneView {
                    zone_id: r.zone_id,
                    name: r.name,
                    plan: r.plan,
                    method: MethodName::parse(&r.method),
                    fields: r.fields,
                    paused: r.paused,
                    added_at: r.added_at,
                    health,
                    retention_days: r.retention_days.and_then(|d| u32::try_from(d).ok()),
                }
            })
            .collect())
    }

    async fn zone_rows(&self, tenant: &str, zone: Option<&str>) -> Result<Vec<ZoneRow>, ApiError> {
        Ok(sqlx::query_as(
            "SELECT z.zone_id, z.name, z.plan, z.method, z.fields, z.paused, z.added_at, \
             z.health_status, z.health_reason, j.kind, j.window_start_ns, j.window_end_ns, j.gap_reason, \
             z.retention_days \
             FROM zones z LEFT JOIN LATERAL ( \
               SELECT kind, window_start_ns, window_end_ns, gap_reason FROM jobs \
               WHERE jobs.zone_id = z.zone_id AND jobs.tenant_id = z.tenant_id \
                 AND kind IN ('archive', 'empty', 'gap') \
               ORDER BY leaf_index DESC LIMIT 1) j ON TRUE \
             WHERE z.tenant_id = $1 AND z.removed_at IS NULL AND ($2::TEXT IS NULL OR z.zone_id = $2) \
             ORDER BY z.added_at, z.zone_id",
        )
        .bind(tenant)
        .bind(zone)
        .fetch_all(&self.db)
        .await?)
    }

    /// The tenant's live zone, or 404 (also for another tenant's zone).
    pub async fn own_zone(&self, tenant: &str, zone_id: &str) -> Result<ZoneView, ApiError> {
        if !is_zone_id(zone_id) {
            return Err(zone_not_found(zone_id));
        }
        self.zones(tenant, Some(zone_id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| zone_not_found(zone_id))
    }

    /// Whether the tenant has (or had) this zone: archives outlive a zone's removal.
    pub async fn zone_known(&self, tenant: &str, zone_id: &str) -> Result<bool, ApiError> {
        if !is_zone_id(zone_id) {
            return Ok(false);
        }
        let known = self
            .read_cache
            .get_or_load(
                tenant,
                format!("zone-known/{zone_id}"),
                crate::read_cache::ZONES_AND_JOBS,
                || async {
                    let (known,): (bool,) = sqlx::query_as(
                        "SELECT EXISTS (SELECT 1 FROM zones WHERE zone_id = $1 AND tenant_id = $2) \
                         OR EXISTS (SELECT 1 FROM jobs WHERE zone_id = $1 AND tenant_id = $2)",
                    )
                    .bind(zone_id)
                    .bind(tenant)
                    .fetch_one(&self.db)
                    .await?;
                    Ok::<_, ApiError>(known)
                },
            )
            .await?;
        Ok(*known)
    }

    /// Reads the zone at Cloudflare with `token`, and checks the token is active.
    async fn check_zone(&self, zone_id: &str, token: &str) -> Result<Zone, ApiError> {
        let client = self.cloudflare.with_token(ApiToken::new(token));
        let zone = client
            .zone(zone_id)
            .await
            .map_err(|e| cloudflare_error(zone_id, &e))?;
        let account = zone.account.as_ref().map(|a| a.id.clone());
        match client.verify_token_any(account.as_deref()).await {
            Ok(status) if !status.is_usable_at(now()) => {
                return Err(ApiError::new(
                    ErrorCode::CloudflareRejected,
                    format!(
                        "the Cloudflare API token is {:?}, not usable now; create a new one",
                        status.status
                    ),
                ));
            }
            Ok(_) => {}
            // The zone read worked, so the token works; verify routes differ by token kind.
            Err(error) => {
                tracing::debug!(zone = zone_id, %error, "token verify failed after a zone read")
            }
        }
        Ok(zone)
    }

    /// Checks a Logpush bucket the way the collector will use it: a well-formed destination,
    /// an endpoint at a public address, and read keys that can list where Cloudflare writes.
    /// Answers the source sealed for the zone, as `ctl.push_source_set` carries it.
    async fn check_bucket(
        &self,
        tenant: &str,
        zone_id: &str,
        bucket: &LogpushBucket,
    ) -> Result<PushSourceSet, ApiError> {
        let source = bucket.source();
        let location = source
            .check()
            .map_err(|why| invalid_bucket(format!("bucket: {why}")))?;
        // The client vets every lookup too; this says it plainly instead of as a failed list.
        if let Some(host) = location.endpoint_host() {
            self.bucket_access
                .addresses
                .resolve(host)
                .await
                .map_err(|why| invalid_bucket(format!("bucket: {why}")))?;
        }
        let reader = source
            .reader(&location, &self.bucket_access)
            .map_err(|why| invalid_bucket(format!("bucket: {why}")))?;
        let prefix = if location.path.is_empty() {
            String::new()
        } else {
            format!("{}/", location.path)
        };
        let listed = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            futures::StreamExt::next(&mut reader.list(&prefix)),
        )
        .await;
        let unreadable = |why: String| {
            ApiError::new(
                ErrorCode::BucketUnreadable,
                format!(
                    "the read keys cannot list s3://{}/{prefix}: {why}",
                    location.bucket
                ),
            )
        };
        match listed {
            Err(_) => return Err(unreadable("no answer within 20 s".into())),
            Ok(Some(Err(e))) => return Err(unreadable(e.to_string())),
            Ok(_) => {}
        }
        let json = serde_json::to_string(&source).map_err(|e| {
            ApiError::new(
                ErrorCode::Internal,
                format!("cannot encode the bucket: {e}"),
            )
        })?;
        Ok(PushSourceSet {
            zone_id: zone_id.to_owned(),
            sealed_source: self.token_key.seal(tenant, zone_id, &json),
            key_id: self.token_key.id().to_owned(),
        })
    }

    fn pick_method(
        &self,
        tier: &PlanTier,
        wanted: Option<MethodChoice>,
    ) -> Result<Method, ApiError> {
        let method = match wanted {
            None => return Ok(tier.default_method()),
            Some(MethodChoice::Auto) if self.logpush_available => Method::LogpushHttp,
            Some(MethodChoice::Auto) => return Ok(tier.default_method()),
            Some(MethodChoice::Logpull) => Method::Logpull,
            Some(MethodChoice::InstantLogs) => Method::InstantLogs,
            Some(MethodChoice::Graphql) => Method::Graphql,
            Some(MethodChoice::LogpushHttp) => Method::LogpushHttp,
            Some(MethodChoice::LogpushS3) => Method::LogpushS3,
        };
        if method == Method::LogpushHttp && !self.logpush_available {
            return Err(ApiError::invalid(
                "logpush_http needs this RainLogs to be reachable by Cloudflare: its operator \
                 sets ingest.public_url (and ingest.listen); until then use logpull, instant_logs \
                 or graphql",
            ));
        }
        if !tier.allows(method) {
            return Err(ApiError::invalid(format!(
                "{} is not available on the {} plan; use {}",
                method.as_str(),
                tier.word(),
                tier.default_method().as_str()
            )));
        }
        Ok(method)
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Zones")]
impl ZonesApi {
    /// Add a zone: checks token and zone at Cloudflare, seals the token (admin, operator)
    #[oai(path = "/zones", method = "post", operation_id = "createZone")]
    async fn create(
        &self,
        state: Data<&SharedState>,
        auth: BearerAuth,
        body: Json<NewZone>,
    ) -> Result<CreateZoneResponse, ApiError> {
        let p = &auth.0;
        let target = format!("zone/{}", body.zone_id);
        state
            .authorize(p, &[Role::Admin, Role::Operator], "zone.add", &target)
            .await?;
        let fields = body
            .fields
            .clone()
            .map_or_else(|| "default".to_owned(), Text::into_string);
        if !valid_fields(&fields) {
            return Err(ApiError::invalid(
                "fields must be default, extended, all or a comma-separated list of field names",
            ));
        }
        let usage = state.usage(&p.tenant).await?;
        if usage.zones >= state.options.quotas.max_zones {
            return Err(ApiError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "the tenant already has {} zones, its quota is {}",
                    usage.zones, state.options.quotas.max_zones
                ),
            ));
        }
        state.storage_quota_left(&usage, "no zone can be added")?;
        let zone = match state.check_zone(&body.zone_id, &body.cf_api_token).await {
            Ok(zone) => zone,
            Err(refused) => {
                // A refused onboarding is worth an audit line: it names who tried which zone.
                let why = refused.body().error_code.clone();
                if let Err(e) = state
                    .audit(
                        &p.tenant,
                        &p.actor,
                        "zone.add",
                        &target,
                        Outcome::Failed,
                        Some(why),
                    )
                    .await
                {
                    tracing::warn!(error = ?e.body().message, "could not audit a failed zone add");
                }
                return Err(refused);
            }
        };
        let (live_here, owned_elsewhere): (bool, bool) = sqlx::query_as(
            "SELECT \
               EXISTS (SELECT 1 FROM zones WHERE zone_id = $1 AND tenant_id = $2 AND removed_at IS NULL), \
               EXISTS (SELECT 1 FROM zones WHERE zone_id = $1 AND tenant_id <> $2)",
        )
        .bind(&*body.zone_id)
        .bind(&p.tenant)
        .fetch_one(&state.db)
        .await?;
        // A zone's archive history is keyed by its id, so the id stays with the first tenant even
        // after removal; the answer is the same as for a live zone. It comes only after
        // Cloudflare accepted the caller's token for the zone: whoever learns that the zone is
        // taken has shown access to it.
        if live_here || owned_elsewhere {
            return Err(ApiError::new(
                ErrorCode::ZoneExists,
                format!("zone {} is already being collected", body.zone_id),
            ));
        }
        let tier = zone.tier();
        let method = state.pick_method(&tier, body.method)?;
        let push_source = match (method, &body.bucket) {
            (Method::LogpushS3, Some(bucket)) => {
                Some(state.check_bucket(&p.tenant, &body.zone_id, bucket).await?)
            }
            (Method::LogpushS3, None) => return Err(needs_bucket()),
            (_, Some(_)) => return Err(bucket_without_logpush_s3()),
            (_, None) => None,
        };
        let sealed = state
            .token_key
            .seal(&p.tenant, &body.zone_id, &body.cf_api_token);
        let event = Event::ZoneAdded(ZoneAdded {
            zone_id: body.zone_id.to_string(),
            name: body.name.clone().map_or(zone.name, Label::into_string),
            plan: tier.word(),
            method,
            fields,
            sealed_token: sealed,
            token_key_id: state.token_key.id().to_owned(),
        });
        // The bucket follows the zone in the same command, so the collector never sees a
        // `logpush_s3` zone without it for longer than one event.
        let events = std::iter::once(event)
            .chain(push_source.map(Event::PushSourceSet))
            .collect();
        state
            .command(&p.tenant, Some(&body.zone_id), &p.actor, events)
            .await?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "zone.add",
                &target,
                Outcome::Ok,
                Some(format!("plan={} method={}", tier.word(), method.as_str())),
            )
            .await?;
        let view = state.own_zone(&p.tenant, &body.zone_id).await?;
        Ok(CreateZoneResponse::Created(Json(view)))
    }

    /// List the tenant's zones with collection health (any role)
    #[oai(path = "/zones", method = "get", operation_id = "listZones")]
    async fn list(
        &self,
        state: Data<&SharedState>,
        auth: BearerAuth,
    ) -> Result<Json<ZoneList>, ApiError> {
        let p = &auth.0;
        let zones = state.zones(&p.tenant, None).await?;
        state
            .audit(&p.tenant, &p.actor, "zone.list", "zones", Outcome::Ok, None)
            .await?;
        Ok(Json(ZoneList { zones }))
    }

    /// Change a zone: pause, method, fields or token (admin, operator)
    #[oai(
        path = "/zones/:zone_id",
        method = "patch",
        operation_id = "updateZone"
    )]
    async fn update(
        &self,
        state: Data<&SharedState>,
        #[oai(validator(pattern = r"^[0-9a-f]{32}$"))] zone_id: Path<String>,
        auth: BearerAuth,
        body: Json<ZonePatch>,
    ) -> Result<Json<ZoneView>, ApiError> {
        let p = &auth.0;
        let target = format!("zone/{}", zone_id.0);
        state
            .authorize(p, &[Role::Admin, Role::Operator], "zone.change", &target)
            .await?;
        let current = state.own_zone(&p.tenant, &zone_id.0).await?;
        if let Some(fields) = &body.fields
            && !valid_fields(fields)
        {
            return Err(ApiError::invalid(
                "fields must be default, extended, all or a comma-separated list of field names",
            ));
        }
        let mut change = ZoneChanged {
            zone_id: current.zone_id.clone(),
            paused: body.paused,
            fields: body.fields.clone().map(Text::into_string),
            ..ZoneChanged::default()
        };
        let tier = match &body.cf_api_token {
            Some(token) => {
                let zone = state.check_zone(&current.zone_id, token).await?;
                change.sealed_token =
                    Some(state.token_key.seal(&p.tenant, &current.zone_id, token));
                change.token_key_id = Some(state.token_key.id().to_owned());
                zone.tier()
            }
            None => match current.plan.as_str() {
                "free" => PlanTier::Free,
                "pro" => PlanTier::Pro,
                "business" => PlanTier::Business,
                "enterprise" => PlanTier::Enterprise,
                other => PlanTier::Unknown(other.to_owned()),
            },
        };
        if body.method.is_some() {
            change.method = Some(state.pick_method(&tier, body.method)?);
        }
        let method = change.method.unwrap_or(current.method.method());
        let push_source = match (method, &body.bucket) {
            (Method::LogpushS3, Some(bucket)) => Some(
                state
                    .check_bucket(&p.tenant, &current.zone_id, bucket)
                    .await?,
            ),
            (Method::LogpushS3, None) if current.method != MethodName::LogpushS3 => {
                return Err(needs_bucket());
            }
            (Method::LogpushS3, None) => None,
            (_, Some(_)) => return Err(bucket_without_logpush_s3()),
            (_, None) => None,
        };
        // A new bucket alone changes nothing else about the zone.
        let unchanged = ZoneChanged {
            zone_id: change.zone_id.clone(),
            ..ZoneChanged::default()
        };
        let events: Vec<Event> = (push_source.is_none() || change != unchanged)
            .then_some(Event::ZoneChanged(change))
            .into_iter()
            .chain(push_source.map(Event::PushSourceSet))
            .collect();
        state
            .command(&p.tenant, Some(&current.zone_id), &p.actor, events)
            .await?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "zone.change",
                &target,
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(Json(state.own_zone(&p.tenant, &current.zone_id).await?))
    }

    /// Stop collecting a zone; its archives stay under retention (admin, operator)
    #[oai(
        path = "/zones/:zone_id",
        method = "delete",
        operation_id = "deleteZone"
    )]
    async fn delete(
        &self,
        state: Data<&SharedState>,
        #[oai(validator(pattern = r"^[0-9a-f]{32}$"))] zone_id: Path<String>,
        auth: BearerAuth,
    ) -> Result<DeleteZoneResponse, ApiError> {
        let p = &auth.0;
        let target = format!("zone/{}", zone_id.0);
        state
            .authorize(p, &[Role::Admin, Role::Operator], "zone.remove", &target)
            .await?;
        let current = state.own_zone(&p.tenant, &zone_id.0).await?;
        state
            .command(
                &p.tenant,
                Some(&current.zone_id),
                &p.actor,
                vec![Event::ZoneRemoved(ZoneRemoved {
                    zone_id: current.zone_id.clone(),
                })],
            )
            .await?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "zone.remove",
                &target,
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(DeleteZoneResponse::Deleted)
    }

    /// Ask the collector to (re)pull a window of a zone (admin, operator)
    #[oai(
        path = "/zones/:zone_id/pull",
        method = "post",
        operation_id = "pullZone"
    )]
    async fn pull(
        &self,
        state: Data<&SharedState>,
        #[oai(validator(pattern = r"^[0-9a-f]{32}$"))] zone_id: Path<String>,
        auth: BearerAuth,
        body: Json<PullRequest>,
    ) -> Result<PullResponse, ApiError> {
        let p = &auth.0;
        let target = format!("zone/{}", zone_id.0);
        state
            .authorize(p, &[Role::Admin, Role::Operator], "zone.pull", &target)
            .await?;
        let zone = state.own_zone(&p.tenant, &zone_id.0).await?;
        if zone.paused {
            // The collector records a paused zone's time as `paused` gaps and fetches nothing.
            return Err(ApiError::new(
                ErrorCode::ZonePaused,
                format!(
                    "zone {} is paused, so a pull would collect nothing; resume it first \
                     (PATCH paused=false)",
                    zone.zone_id
                ),
            ));
        }
        let (start, end) = (body.start, body.end);
        check_pull_window(zone.method, start, end, now())?;
        let usage = state.usage(&p.tenant).await?;
        state.storage_quota_left(&usage, "no pull can be requested")?;
        if usage.pulls_last_hour >= state.options.quotas.max_pulls_per_hour {
            return Err(ApiError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "{} pulls in the last hour; the quota is {} per hour",
                    usage.pulls_last_hour, state.options.quotas.max_pulls_per_hour
                ),
            ));
        }
        let window = Window {
            start: start.unix_timestamp(),
            end: end.unix_timestamp(),
        };
        let event = Event::PullRequested(PullRequested {
            zone_id: zone.zone_id.clone(),
            window,
        });
        state
            .command(&p.tenant, Some(&zone.zone_id), &p.actor, vec![event])
            .await?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "zone.pull",
                &target,
                Outcome::Ok,
                Some(format!("window={}..{}", window.start, window.end)),
            )
            .await?;
        Ok(PullResponse::Accepted(Json(PullAccepted {
            zone_id: zone.zone_id,
            start,
            end,
            status: "requested".into(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_windows_within_what_cloudflare_keeps() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let hour = time::Duration::hours(1);
        let code = |method, start, end| {
            check_pull_window(method, start, end, now)
                .err()
                .map(|e| e.body().error_code.clone())
        };
        assert_eq!(code(MethodName::Logpull, now - hour, now), None);
        assert_eq!(
            code(
                MethodName::Graphql,
                now - time::Duration::days(30),
                now - time::Duration::days(29)
            ),
            None
        );
        let year_one = OffsetDateTime::from_unix_timestamp(-62_135_596_800).unwrap();
        for (method, start, end) in [
            (MethodName::Logpull, year_one, year_one + hour),
            (
                MethodName::Logpull,
                now - time::Duration::days(8),
                now - time::Duration::days(7) - hour,
            ),
            (
                MethodName::Graphql,
                now - time::Duration::days(32),
                now - time::Duration::days(31),
            ),
            (MethodName::Logpull, now, now),
            (MethodName::Logpull, now, now - hour),
            (MethodName::Logpull, now - hour, now + hour),
            (MethodName::Graphql, now - time::Duration::days(9), now),
            (MethodName::InstantLogs, now - hour, now),
        ] {
            assert_eq!(
                code(method, start, end).as_deref(),
                Some("INVALID_WINDOW"),
                "{method:?} {start}..{end}"
            );
        }
    }

    #[test]
    fn health_says_what_is_going_on() {
        let fresh = health_view(false, None, None);
        assert_eq!(fresh.status, "pending");
        assert!(fresh.reason.contains("never pulled"));
        let end = crate::views::to_ns(now() - time::Duration::minutes(42));
        let lagging = health_view(false, None, Some(("archive".into(), end - 60, end, None)));
        assert_eq!(lagging.reason, "lagging by 42 min");
        let gap = health_view(
            false,
            None,
            Some(("gap".into(), end - 60, end, Some("source_error".into()))),
        );
        assert!(
            gap.reason.starts_with("gap since ") && gap.reason.ends_with("because source_error")
        );
        assert_eq!(health_view(true, None, None).status, "paused");
        // The collector says degraded while the last window sealed a minute ago: degraded.
        let recent = crate::views::to_ns(now() - time::Duration::minutes(1));
        let degraded = health_view(
            false,
            Some((
                "degraded".into(),
                "Instant Logs session ended (closed by Cloudflare); reconnecting".into(),
            )),
            Some(("archive".into(), recent - 60, recent, None)),
        );
        assert_eq!(degraded.status, "degraded");
        assert!(degraded.reason.starts_with("Instant Logs session ended"));
        let ok = health_view(
            false,
            Some(("ok".into(), "collecting".into())),
            Some(("archive".into(), recent - 60, recent, None)),
        );
        assert_eq!(
            (ok.status.as_str(), ok.reason.as_str()),
            ("ok", "collecting")
        );
    }

    #[test]
    fn storage_trouble_degrades_a_zone_unless_paused_or_failing() {
        let trouble = || ZoneStorage {
            ok: false,
            reason: "2 objects of this zone are on one storage provider only".into(),
            backlog: 2,
        };
        let recent = crate::views::to_ns(now() - time::Duration::minutes(1));
        let ok = health_view(
            false,
            None,
            Some(("archive".into(), recent - 60, recent, None)),
        );
        let degraded = with_storage(ok, trouble());
        assert_eq!(degraded.status, "degraded");
        assert_eq!(degraded.reason, trouble().reason);
        let storage = degraded.storage.expect("storage part");
        assert_eq!((storage.status.as_str(), storage.backlog), ("degraded", 2));

        let pending = with_storage(health_view(false, None, None), trouble());
        assert_eq!(pending.status, "degraded");
        assert!(
            pending.reason.starts_with("never pulled")
                && pending.reason.ends_with(&trouble().reason),
            "{}",
            pending.reason
        );
        let paused = with_storage(health_view(true, None, None), trouble());
        assert_eq!(
            (paused.status.as_str(), paused.reason.as_str()),
            ("paused", "paused by an operator")
        );
        assert!(paused.storage.is_some());
        let failing = with_storage(
            health_view(
                false,
                Some(("failing".into(), "token revoked".into())),
                None,
            ),
            trouble(),
        );
        assert_eq!(
            (failing.status.as_str(), failing.reason.as_str()),
            ("failing", "token revoked")
        );

        let fine = ZoneStorage {
            ok: true,
            reason: "both storage providers answer".into(),
            backlog: 0,
        };
        let ok = health_view(
            false,
            None,
            Some(("archive".into(), recent - 60, recent, None)),
        );
        let still_ok = with_storage(ok, fine);
        assert_eq!(
            (still_ok.status.as_str(), still_ok.reason.as_str()),
            ("ok", "collecting")
        );
        assert_eq!(still_ok.storage.expect("storage part").status, "ok");
    }

    #[test]
    fn field_lists_are_presets_or_names() {
        assert!(valid_fields("default"));
        assert!(valid_fields("ClientIP,RayID"));
        assert!(!valid_fields("ClientIP,,RayID"));
        assert!(!valid_fields("a b"));
    }
}
