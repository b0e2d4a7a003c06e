//! Jobs are sealed windows (chain entries): `GET /api/v1/logs/jobs[/{job_id}[/download]]`,
//! `GET /api/v1/zones/{zone_id}/logs` and `GET /api/v1/zones/{zone_id}/checkpoint`.

mod copies;

use std::pin::Pin;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use poem::Body;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use rainlogs_store::ObjectKey;
use time::OffsetDateTime;
use tokio::io::AsyncRead;
use tracing::Instrument as _;

use crate::auth::BearerAuth;
use crate::download;
use crate::error::{ApiError, ErrorCode};
use crate::events::Outcome;
use crate::state::{AppState, SharedState};
use crate::views::{ApiTags, from_ns, hex_opt, page_size, to_ns, zone_not_found};

pub struct JobsApi;

/// What a sealed entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum JobKind {
    /// The window's records are stored in an archive object.
    Archive,
    /// The source answered with no records.
    Empty,
    /// No data could be collected; `gap_reason` says why.
    Gap,
    /// An archive was deleted under its retention policy.
    Prune,
    /// The checkpoint signing key changed.
    Key,
    /// The tenant was erased (GDPR Art. 17); the zone's log stops here.
    Erasure,
    /// Records that arrived (pushed by Logpush) after their window was sealed, stored in an
    /// archive object of their own; the window is the one they belong to.
    Late,
    /// Cloudflare counted more records for the window than the archive holds (Logpush gave up
    /// on some): the window is incomplete; `source_count` says how many Cloudflare counted.
    Shortfall,
    /// The search index of an archive or late object (docs/FORMAT.md §12), sealed right after
    /// it; `prune_target_index` is that object's job, and the index is deleted with it.
    Index,
}

impl JobKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Archive => "archive",
            Self::Empty => "empty",
            Self::Gap => "gap",
            Self::Prune => "prune",
            Self::Key => "key",
            Self::Erasure => "erasure",
            Self::Late => "late",
            Self::Shortfall => "shortfall",
            Self::Index => "index",
        }
    }
}

/// One sealed window (or log event) of a zone's integrity log.
#[derive(Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Job {
    /// SHA-256 of the entry bytes (the entry id), hex.
    pub job_id: String,
    pub zone_id: String,
    pub kind: String,
    /// Position in the zone's log: the Merkle leaf index.
    pub leaf_index: u64,
    pub dataset: Option<String>,
    pub window_start: Option<OffsetDateTime>,
    pub window_end: Option<OffsetDateTime>,
    pub method: Option<String>,
    /// Stored records stand for this many source records (4294967295: varies per record).
    pub sampling: Option<u32>,
    pub record_count: Option<u64>,
    /// Shortfall jobs: the records Cloudflare counted for the window (its analytics are
    /// sampled, so an estimate); the window's archive and late jobs hold fewer.
    pub source_count: Option<u64>,
    pub object_key: Option<String>,
    pub object_version: Option<String>,
    pub stored_size: Option<u64>,
    /// SHA-256 of the stored `.zst` object, hex.
    pub stored_sha256: Option<String>,
    /// SHA-256 of the decompressed NDJSON, hex.
    pub content_sha256: Option<String>,
    pub retain_until: Option<OffsetDateTime>,
    pub gap_reason: Option<String>,
    pub prune_target_index: Option<u64>,
    /// Set when the archive was deleted under retention (the index of the prune entry).
    pub pruned_by_index: Option<u64>,
    pub prev_chain_hash: String,
    pub chain_hash: String,
    /// RFC 6962 leaf hash, SHA-256(0x00 ∥ entry), hex.
    pub leaf_hash: String,
    pub sealed_at: OffsetDateTime,
    /// The canonical entry bytes (docs/FORMAT.md §4), base64; in single-job answers.
    pub entry: Option<String>,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
struct JobPage {
    jobs: Vec<Job>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    next_cursor: Option<String>,
}

#[derive(Object)]
pub struct CheckpointView {
    /// `rainlogs/<tenant>/<zone>`.
    origin: String,
    tree_size: u64,
    /// Root hash, hex.
    root_hash: String,
    /// The signed note exactly as stored in the bucket (C2SP signed-note).
    note: String,
    /// The key it verified with (`<name>+<id>+<base64>`).
    verifier_key: String,
}

/// An RFC 6962 audit path of the job's entry in the tree of `checkpoint`.
#[derive(Object)]
struct InclusionProof {
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: String,
    /// Sibling hashes from the leaf up, hex.
    audit_path: Vec<String>,
    checkpoint: CheckpointView,
}

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
struct JobDetail {
    job: Job,
    /// With `proof=true`, once the entry is covered by a signed checkpoint.
    proof: Option<InclusionProof>,
    /// Why there is no proof, when one was asked for.
    proof_unavailable: Option<String>,
}

/// Body form of a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
enum DownloadFormat {
    /// Decompressed NDJSON; `X-Content-SHA256` is the SHA-256 of the body.
    Ndjson,
    /// The stored zstd object; `X-Object-SHA256` is the SHA-256 of the body.
    Zst,
}

#[derive(ApiResponse)]
enum DownloadResponse {
    /// The decompressed archive, from a copy whose stored bytes are the sealed ones.
    #[oai(status = 200, content_type = "application/x-ndjson")]
    Ndjson(
        Binary<Body>,
        /// SHA-256 of this body (hex): the job's `content_sha256`.
        #[oai(header = "X-Content-SHA256")]
        String,
        /// RFC 9530 digest of this body.
        #[oai(header = "Repr-Digest")]
        String,
        #[oai(header = "Content-Disposition")] String,
        /// Which copy of the archive this is: `primary-current` (the object as it is now),
        /// `primary-sealed-version` (the object version the entry sealed, when the current one
        /// does not match) or `secondary` (the second provider's copy). Only a copy whose bytes
        /// are the sealed ones is served; when none is, the answer is a 500 (`ARCHIVE_DAMAGED`).
        #[oai(header = "X-RainLogs-Served-From")]
        String,
    ),
    /// The stored object, byte for byte as sealed.
    #[oai(status = 200, content_type = "application/zstd")]
    Zstd(
        Binary<Body>,
        /// SHA-256 of this body (hex): the job's `stored_sha256`.
        #[oai(header = "X-Object-SHA256")]
        String,
        /// RFC 9530 digest of this body.
        #[oai(header = "Repr-Digest")]
        String,
        #[oai(header = "Content-Disposition")] String,
        /// Which copy of the archive this is: `primary-current` (the object as it is now),
        /// `primary-sealed-version` (the object version the entry sealed, when the current one
        /// does not match) or `secondary` (the second provider's copy). Only a copy whose bytes
        /// are the sealed ones is served; when none is, the answer is a 500 (`ARCHIVE_DAMAGED`).
        #[oai(header = "X-RainLogs-Served-From")]
        String,
    ),
}

/// One `jobs` row as the API reads it.
#[derive(Clone, sqlx::FromRow)]
struct JobRow {
    job_id: String,
    zone_id: String,
    kind: String,
    leaf_index: i64,
    dataset: Option<String>,
    window_start_ns: Option<i64>,
    window_end_ns: Option<i64>,
    method: Option<String>,
    sampling: Option<i64>,
    record_count: Option<i64>,
    source_count: Option<i64>,
    object_key: Option<String>,
    object_version: Option<String>,
    stored_size: Option<i64>,
    stored_sha256: Option<Vec<u8>>,
    content_sha256: Option<Vec<u8>>,
    retain_until_ns: Option<i64>,
    gap_reason: Option<String>,
    prune_target_index: Option<i64>,
    pruned_by_index: Option<i64>,
    prev_chain_hash: Vec<u8>,
    chain_hash: Vec<u8>,
    leaf_hash: Vec<u8>,
    sealed_at_ns: i64,
    entry_bytes: Vec<u8>,
}

const JOB_COLUMNS: &str = "job_id, zone_id, kind, leaf_index, dataset, window_start_ns, \
    window_end_ns, method, sampling, record_count, source_count, object_key, object_version, stored_size, \
    stored_sha256, content_sha256, retain_until_ns, gap_reason, prune_target_index, \
    pruned_by_index, prev_chain_hash, chain_hash, leaf_hash, sealed_at_ns, entry_bytes";

fn unsigned(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

fn job_from(row: JobRow, with_entry: bool) -> Job {
    Job {
        job_id: row.job_id,
        zone_id: row.zone_id,
        kind: row.kind,
        leaf_index: u64::try_from(row.leaf_index).unwrap_or(0),
        dataset: row.dataset,
        window_start: row.window_start_ns.map(from_ns),
        window_end: row.window_end_ns.map(from_ns),
        method: row.method,
        sampling: row.sampling.and_then(|v| u32::try_from(v).ok()),
        record_count: unsigned(row.record_count),
        source_count: unsigned(row.source_count),
        object_key: row.object_key,
        object_version: row.object_version,
        stored_size: unsigned(row.stored_size),
        stored_sha256: hex_opt(row.stored_sha256),
        content_sha256: hex_opt(row.content_sha256),
        retain_until: row.retain_until_ns.map(from_ns),
        gap_reason: row.gap_reason,
        prune_target_index: unsigned(row.prune_target_index),
        pruned_by_index: unsigned(row.pruned_by_index),
        prev_chain_hash: hex::encode(row.prev_chain_hash),
        chain_hash: hex::encode(row.chain_hash),
        leaf_hash: hex::encode(row.leaf_hash),
        sealed_at: from_ns(row.sealed_at_ns),
        entry: with_entry.then(|| BASE64.encode(&row.entry_bytes)),
    }
}

fn job_not_found(job_id: &str) -> ApiError {
    let shown: String = job_id.chars().take(64).collect();
    ApiError::new(ErrorCode::JobNotFound, format!("job {shown} not found"))
}

fn is_job_id(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `<sealed_at_ns>.<job_id>`: the position after which the next page starts.
fn parse_cursor(cursor: Option<&str>) -> Result<(i64, String), ApiError> {
    let Some(cursor) = cursor else {
        return Ok((i64::MAX, "g".repeat(64)));
    };
    cursor
        .split_once('.')
        // Any 19 digits fit the document's pattern; a position past the last instant a bigint
        // holds starts where no cursor does, at the newest job.
        .and_then(|(at, id)| Some((at.parse::<u64>().ok()?, id)))
        .map(|(at, id)| (i64::try_from(at).unwrap_or(i64::MAX), id))
        .filter(|(_, id)| is_job_id(id))
        .map(|(at, id)| (at, id.to_owned()))
        .ok_or_else(|| ApiError::invalid("cursor is not one this API returned"))
}

/// Filters of a job listing.
struct JobFilter<'a> {
    zone: Option<&'a str>,
    kind: Option<JobKind>,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
}

impl AppState {
    async fn job_page(
        &self,
        tenant: &str,
        filter: &JobFilter<'_>,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<JobPage, ApiError> {
        let (before_at, before_id) = parse_cursor(cursor)?;
        let key = format!(
            "jobs/{:?}/{:?}/{:?}/{:?}/{before_at}.{before_id}/{limit}",
            filter.zone,
            filter.kind.map(JobKind::as_str),
            filter.from.map(to_ns),
            filter.to.map(to_ns),
        );
        let rows = self
            .read_cache
            .get_or_load(tenant, key, crate::read_cache::JOBS, || {
                self.job_rows(tenant, filter, before_at, &before_id, limit)
            })
            .await?;
        let more = rows.len() as i64 > limit;
        let jobs: Vec<Job> = rows
            .iter()
            .take(usize::try_from(limit).unwrap_or(0))
            .cloned()
            .map(|r| job_from(r, false))
            .collect();
        let next_cursor = more
            .then(|| jobs.last())
            .flatten()
            .map(|j| format!("{}.{}", to_ns(j.sealed_at), j.job_id));
        Ok(JobPage { jobs, next_cursor })
    }

    /// One page of rows, and one more when there is a next page.
    async fn job_rows(
        &self,
        tenant: &str,
        filter: &JobFilter<'_>,
        before_at: i64,
        before_id: &str,
        limit: i64,
    ) -> Result<Vec<JobRow>, ApiError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 \
             AND ($2::TEXT IS NULL OR zone_id = $2) AND ($3::TEXT IS NULL OR kind = $3) \
             AND ($4::BIGINT IS NULL OR window_end_ns > $4) \
             AND ($5::BIGINT IS NULL OR window_start_ns < $5) \
             AND (sealed_at_ns, job_id) < ($6, $7) \
             ORDER BY sealed_at_ns DESC, job_id DESC LIMIT $8"
        );
        // The statement is built from constants only; every value is a bind parameter.
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(filter.zone)
            .bind(filter.kind.map(JobKind::as_str))
            .bind(filter.from.map(to_ns))
            .bind(filter.to.map(to_ns))
            .bind(before_at)
            .bind(before_id)
            .bind(limit + 1)
            .fetch_all(&self.db)
            .await?;
        Ok(rows)
    }

    /// Every job of the tenant, oldest first (for the GDPR export).
    pub async fn all_jobs(&self, tenant: &str) -> Result<Vec<Job>, ApiError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 ORDER BY zone_id, leaf_index"
        );
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .fetch_all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|r| job_from(r, false)).collect())
    }

    async fn own_job(&self, tenant: &str, job_id: &str) -> Result<JobRow, ApiError> {
        if !is_job_id(job_id) {
            return Err(job_not_found(job_id));
        }
        let row = self
            .read_cache
            .get_or_load(
                tenant,
                format!("job/{job_id}"),
                crate::read_cache::JOBS,
                || async {
                    let sql = format!(
                        "SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1 AND tenant_id = $2"
                    );
                    let row: Option<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .bind(job_id)
                        .bind(tenant)
                        .fetch_optional(&self.db)
                        .await?;
                    Ok::<_, ApiError>(row)
                },
            )
            .await?;
        row.as_ref().clone().ok_or_else(|| job_not_found(job_id))
    }

    fn checkpoint_view(&self, signed: crate::proofs::SignedCheckpoint) -> CheckpointView {
        CheckpointView {
            origin: signed.checkpoint.origin.to_string(),
            tree_size: signed.checkpoint.size,
            root_hash: signed.checkpoint.root.to_hex(),
            note: signed.note,
            verifier_key: self
                .verifier
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        }
    }
}

fn hash32(bytes: Option<&Vec<u8>>) -> Result<[u8; 32], ApiError> {
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| ApiError::internal("archive job without a 32-byte hash"))
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Logs")]
impl JobsApi {
    /// List sealed windows of the tenant, newest first (any role)
    #[oai(path = "/logs/jobs", method = "get", operation_id = "listJobs")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&SharedState>,
        auth: BearerAuth,
        /// Only this zone.
        #[oai(validator(pattern = r"^[0-9a-f]{32}$"))]
        zone_id: Query<Option<String>>,
        kind: Query<Option<JobKind>>,
        /// Only windows ending after this time.
        from: Query<Option<OffsetDateTime>>,
        /// Only windows starting before this time.
        to: Query<Option<OffsetDateTime>>,
        /// 1 to 1000 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(pattern = r"^[0-9]{1,19}\.[0-9a-f]{64}$"))]
        cursor: Query<Option<String>>,
    ) -> Result<Json<JobPage>, ApiError> {
        let p = &auth.0;
        let limit = page_size(limit.0, 100, 1000)?;
        let filter = JobFilter {
            zone: zone_id.0.as_deref(),
            kind: kind.0,
            from: from.0,
            to: to.0,
        };
        let page = state
            .job_page(&p.tenant, &filter, cursor.0.as_deref(), limit)
            .await?;
        state
            .audit(&p.tenant, &p.actor, "job.list", "jobs", Outcome::Ok, None)
            .await?;
        Ok(Json(page))
    }

    /// The sealed windows of one zone, newest first (any role)
    #[oai(
        path = "/zones/:zone_id/logs",
        method = "get",
        operation_id = "listZoneLogs"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn zone_logs(
        &self,
        state: Data<&SharedState>,
        #[oai(validator(pattern = r"^[0-9a-f]{32}$"))] zone_id: Path<String>,
        auth: BearerAuth,
        kind: Query<Option<JobKind>>,
        from: Query<Option<OffsetDateTime>>,
        to: Query<Option<OffsetDateTime>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))] limit: Query<Option<u32>>,
        #[oai(validator(pattern = r"^[0-9]{1,19}\.[0-9a-f]{64}$"))] cursor: Query<Option<String>>,
    ) -> Result<Json<JobPage>, ApiError> {
        let p = &auth.0;
        if !state.zone_known(&p.tenant, &zone_id.0).await? {
            return Err(zone_not_found(&zone_id.0));
        }
        let limit = page_size(limit.0, 100, 1000)?;
        let filter = JobFilter {
            zone: Some(&zone_id.0),
            kind: kind.0,
            from: from.0,
            to: to.0,
        };
        let page = state
            .job_page(&p.tenant, &filter, cursor.0.as_deref(), limit)
            .await?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "zone.logs",
                &format!("zone/{}", zone_id.0),
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(Json(page))
    }

    /// One sealed window, optionally with its inclusion proof (any role)
    #[oai(path = "/logs/jobs/:job_id", method = "get", operation_id = "getJob")]
    async fn get(
        &self,
        state: Data<&SharedState>,
        #[oai(validator(pattern = r"^[0-9a-f]{64}$"))] job_id: Path<String>,
        auth: BearerAuth,
        /// Add an inclusion proof against the zone's latest signed checkpoint.
        proof: Query<Option<bool>>,
    ) -> Result<Json<JobDetail>, ApiError> {
        let p = &auth.0;
        let job = job_from(state.own_job(&p.tenant, &job_id.0).await?, true);
        let mut detail = JobDetail {
            job,
            proof: None,
            proof_unavailable: None,
        };
        if proof.0.unwrap_or(false) {
            match state
                .latest_checkpoint(&p.tenant, &detail.job.zone_id)
                .await?
            {
                Some(signed) if signed.checkpoint.size > detail.job.leaf_index => {
                    let path = state
                        .inclusion_proof(
                            &p.tenant,
                            &detail.job.zone_id,
                            detail.job.leaf_index,
                            &signed.checkpoint,
                        )
                        .await?;
                    detail.proof = Some(InclusionProof {
                        leaf_index: detail.job.leaf_index,
                        tree_size: signed.checkpoint.size,
                        leaf_hash: detail.job.leaf_hash.clone(),
                        audit_path: path.iter().map(|h| h.to_hex()).collect(),
                        checkpoint: state.checkpoint_view(signed),
                    });
                }
                _ => {
                    detail.proof_unavailable =
                        Some("the entry is not yet covered by a signed checkpoint".into());
                }
            }
        }
        state
            .audit(
                &p.tenant,
                &p.actor,
                "job.read",
                &format!("job/{}", detail.job.job_id),
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(Json(detail))
    }

    /// Download a job's archive, only from a copy whose bytes are the sealed ones (any role)
    #[oai(
        path = "/logs/jobs/:job_id/download",
        method = "get",
        operation_id = "downloadJob"
    )]
    async fn download(
        &self,
        state: Data<&SharedState>,
        #[oai(validator(pattern = r"^[0-9a-f]{64}$"))] job_id: Path<String>,
        auth: BearerAuth,
        /// `ndjson` (default) or `zst`.
        format: Query<Option<DownloadFormat>>,
    ) -> Result<DownloadResponse, ApiError> {
        let p = &auth.0;
        let row = state.own_job(&p.tenant, &job_id.0).await?;
        let target = format!("job/{}", row.job_id);
        if row.kind != "archive" && row.kind != "late" {
            return Err(ApiError::new(
                ErrorCode::JobHasNoArchive,
                format!(
                    "job {} is a {} entry and has no archive",
                    row.job_id, row.kind
                ),
            ));
        }
        if row.pruned_by_index.is_some() {
            return Err(ApiError::new(
                ErrorCode::ArchivePruned,
                format!(
                    "the archive of job {} was deleted under its retention policy",
                    row.job_id
                ),
            ));
        }
        let stored_sha256 = hash32(row.stored_sha256.as_ref())?;
        let content_sha256 = hash32(row.content_sha256.as_ref())?;
        let key = row
            .object_key
            .as_deref()
            .ok_or_else(|| ApiError::internal("archive job without an object key"))
            .and_then(|k| ObjectKey::new(k).map_err(ApiError::internal))?;
        let size = unsigned(row.stored_size)
            .ok_or_else(|| ApiError::internal("archive job without a stored size"))?;
        let sealed = copies::Sealed {
            key: &key,
            version: row.object_version.as_deref().filter(|v| !v.is_empty()),
            size,
            sha256: stored_sha256,
        };
        let format = format.0.unwrap_or(DownloadFormat::Ndjson);
        let form = match format {
            DownloadFormat::Ndjson => "ndjson",
            DownloadFormat::Zst => "zst",
        };
        let span = tracing::info_span!("archive_download", key = key.as_str(), job = %row.job_id);
        let chosen = {
            let copies = copies::StoreCopies::new(&state.store.store);
            copies::choose(&copies, &sealed, copies::BUFFER_LIMIT)
                .instrument(span.clone())
                .await
        };
        let chosen = match chosen {
            Ok(chosen) => chosen,
            Err(failure) => {
                let (reason, error) = span.in_scope(|| match failure {
                    copies::NoCopy::NoIntactCopy => (
                        "no_intact_copy",
                        ApiError::archive_damaged(key.as_str(), &stored_sha256),
                    ),
                    copies::NoCopy::Unavailable(e) => {
                        ("unavailable", ApiError::unavailable("the archive store", e))
                    }
                });
                span.in_scope(|| copies::note_failure(reason));
                state
                    .audit(
                        &p.tenant,
                        &p.actor,
                        "archive.download",
                        &target,
                        Outcome::Failed,
                        Some(format!("format={form}; {reason}")),
                    )
                    .await?;
                return Err(error);
            }
        };
        span.in_scope(|| copies::note_fallback(chosen.from, form));
        let detail = match chosen.from {
            copies::ServedFrom::PrimaryCurrent => format!("format={form}"),
            other => format!("format={form}; served_from={}", other.as_str()),
        };
        state
            .audit(
                &p.tenant,
                &p.actor,
                "archive.download",
                &target,
                Outcome::Ok,
                Some(detail),
            )
            .await?;
        let base = row
            .object_key
            .as_deref()
            .and_then(|k| k.rsplit('/').next())
            .unwrap_or("archive.ndjson.zst");
        let served_from = chosen.from.as_str().to_owned();
        let response = match (format, chosen.body) {
            // Checked whole: sent with its length. (The memory budget is given back now, while
            // the body is still being sent; it bounds the checking, the larger part.)
            (DownloadFormat::Zst, copies::ChosenBody::Checked(bytes)) => DownloadResponse::Zstd(
                Binary(Body::from_bytes(bytes)),
                hex::encode(stored_sha256),
                format!("sha-256=:{}:", BASE64.encode(stored_sha256)),
                format!("attachment; filename=\"{base}\""),
                served_from,
            ),
            (DownloadFormat::Zst, copies::ChosenBody::Unchecked(reader)) => {
                let stream = download::raw(reader, stored_sha256);
                DownloadResponse::Zstd(
                    Binary(Body::from_bytes_stream(copies::Watched::new(
                        stream,
                        span,
                        chosen.from,
                        None,
                    ))),
                    hex::encode(stored_sha256),
                    format!("sha-256=:{}:", BASE64.encode(stored_sha256)),
                    format!("attachment; filename=\"{base}\""),
                    served_from,
                )
            }
            (DownloadFormat::Ndjson, body) => {
                let reader: Pin<Box<dyn AsyncRead + Send>> = match body {
                    copies::ChosenBody::Checked(bytes) => Box::pin(std::io::Cursor::new(bytes)),
                    copies::ChosenBody::Unchecked(reader) => reader,
                };
                let stream = download::ndjson(reader, stored_sha256, content_sha256);
                DownloadResponse::Ndjson(
                    Binary(Body::from_bytes_stream(copies::Watched::new(
                        stream,
                        span,
                        chosen.from,
                        chosen.permit,
                    ))),
                    hex::encode(content_sha256),
                    format!("sha-256=:{}:", BASE64.encode(content_sha256)),
                    format!("attachment; filename=\"{}\"", base.trim_end_matches(".zst")),
                    served_from,
                )
            }
        };
        Ok(response)
    }

    /// The zone's latest signed checkpoint (any role)
    #[oai(
        path = "/zones/:zone_id/checkpoint",
        method = "get",
        operation_id = "getZoneCheckpoint"
    )]
    async fn checkpoint(
        &self,
        state: Data<&SharedState>,
        #[oai(validator(pattern = r"^[0-9a-f]{32}$"))] zone_id: Path<String>,
        auth: BearerAuth,
    ) -> Result<Json<CheckpointView>, ApiError> {
        let p = &auth.0;
        if !state.zone_known(&p.tenant, &zone_id.0).await? {
            return Err(zone_not_found(&zone_id.0));
        }
        let signed = state
            .latest_checkpoint(&p.tenant, &zone_id.0)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::CheckpointNotFound,
                    format!("zone {} has no signed checkpoint yet", zone_id.0),
                )
            })?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "zone.checkpoint",
                &format!("zone/{}", zone_id.0),
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(Json(state.checkpoint_view(signed)))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    const JOB: &str = "4ac1a108426ed4ec4cd7bbaa981be0ea0287697c0090e39749fbb2712701e8cb";

    #[test]
    fn every_cursor_the_document_allows_parses() {
        assert_eq!(
            parse_cursor(Some(&format!("42.{JOB}"))).ok(),
            Some((42, JOB.to_owned()))
        );
        // 19 digits beyond i64::MAX: the newest position, not a 400.
        assert_eq!(
            parse_cursor(Some(&format!("9999999999999999999.{JOB}"))).ok(),
            Some((i64::MAX, JOB.to_owned()))
        );
        assert!(parse_cursor(Some("42.nothex")).is_err());
    }
}
