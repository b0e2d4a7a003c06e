//! `GET /api/v1/search`: the records of a Ray ID, a client address or a CIDR block in one zone,
//! exactly as archived, streamed as NDJSON with their provenance, then a summary line. Index
//! objects pick the frames; only those are read (ranged reads), each checked against its sealed
//! hash. Tenant-scoped and audited like every read, with limits on span and cost.

use std::time::Duration;

use bytes::Bytes;
use poem::Body;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Binary;
use poem_openapi::{ApiResponse, OpenApi};
use rainlogs_search::{Archived, Found, IndexRef, Key, Position, Searcher, Summary};
use time::OffsetDateTime;

use crate::auth::BearerAuth;
use crate::error::{ApiError, ErrorCode};
use crate::events::Outcome;
use crate::state::{AppState, SharedState};
use crate::views::{ApiTags, to_ns, zone_not_found};

pub struct SearchApi;

/// The longest time range an address or block search may cover: it reads every frame that
/// holds the address's network, so its cost grows with the range.
pub const MAX_CLIENT_SPAN: Duration = Duration::from_secs(31 * 86_400);
/// The most archives one search may consider (a Ray ID without a time range considers all of
/// a zone's): beyond it the answer is a 400 asking for a narrower range.
pub const MAX_ARCHIVES: usize = 100_000;

#[derive(ApiResponse)]
enum SearchResponse {
    /// One JSON object per line: each hit `{"record": <the record exactly as archived>,
    /// "provenance": {job_id, entry_index, record, frame, frame_content_sha256, dataset,
    /// object_key, proof}}`, in log order, then `{"summary": {hits, archives_considered,
    /// index_objects_read, index_bytes_read, frames_read, archives_read_whole, bytes_read,
    /// requests, elapsed_ms, next_cursor, index_problems}}`; or, if the search fails part way,
    /// `{"error": "..."}` as the last line.
    #[oai(status = 200, content_type = "application/x-ndjson")]
    Ndjson(Binary<Body>),
}

/// One `jobs` row the search needs.
#[derive(sqlx::FromRow)]
struct ObjectRow {
    leaf_index: i64,
    job_id: String,
    kind: String,
    dataset: Option<String>,
    window_start_ns: Option<i64>,
    window_end_ns: Option<i64>,
    object_key: Option<String>,
    stored_size: Option<i64>,
    stored_sha256: Option<Vec<u8>>,
    content_sha256: Option<Vec<u8>>,
    prune_target_index: Option<i64>,
}

/// A search that follows the document but cannot be run (422 `INVALID_SEARCH`).
fn invalid_search(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidSearch, message)
}

fn hash(bytes: Option<&Vec<u8>>) -> Option<[u8; 32]> {
    <[u8; 32]>::try_from(bytes?.as_slice()).ok()
}

fn unsigned(value: Option<i64>) -> Option<u64> {
    value.and_then(|v| u64::try_from(v).ok())
}

impl AppState {
    /// The zone's archives not pruned, with their indexes, in log order; only those whose
    /// window may hold records of `[start, end)` (with the searcher's margin) when given.
    async fn searchable_archives(
        &self,
        tenant: &str,
        zone: &str,
        window: Option<(u64, u64)>,
    ) -> Result<Vec<Archived>, ApiError> {
        let margin = 3_600_000_000_000i64;
        let (from, to) = match window {
            Some((start, end)) => (
                i64::try_from(start)
                    .unwrap_or(i64::MAX)
                    .saturating_sub(margin),
                i64::try_from(end)
                    .unwrap_or(i64::MAX)
                    .saturating_add(margin),
            ),
            None => (i64::MIN, i64::MAX),
        };
        let rows: Vec<ObjectRow> = sqlx::query_as(
            "SELECT leaf_index, job_id, kind, dataset, window_start_ns, window_end_ns, object_key, \
             stored_size, stored_sha256, content_sha256, prune_target_index FROM jobs \
             WHERE tenant_id = $1 AND zone_id = $2 AND kind IN ('archive', 'late', 'index') \
             AND pruned_by_index IS NULL AND window_end_ns > $3 AND window_start_ns < $4 \
             ORDER BY leaf_index LIMIT $5",
        )
        .bind(tenant)
        .bind(zone)
        .bind(from)
        .bind(to)
        .bind(i64::try_from(2 * MAX_ARCHIVES + 1).unwrap_or(i64::MAX))
        .fetch_all(&self.db)
        .await?;
        let mut indexes = std::collections::HashMap::new();
        for row in rows.iter().filter(|r| r.kind == "index") {
            if let (Some(target), Some(key), Some(size), Some(sha)) = (
                row.prune_target_index,
                &row.object_key,
                unsigned(row.stored_size),
                hash(row.stored_sha256.as_ref()),
            ) {
                indexes.insert(
                    target,
                    IndexRef {
                        key: key.clone(),
                        stored_size: size,
                        stored_sha256: sha,
                    },
                );
            }
        }
        let archives: Vec<Archived> = rows
            .iter()
            .filter(|r| r.kind != "index")
            .filter_map(|row| {
                Some(Archived {
                    entry_index: u64::try_from(row.leaf_index).ok()?,
                    entry_id: row.job_id.clone(),
                    dataset: row.dataset.clone()?,
                    window: (unsigned(row.window_start_ns)?, unsigned(row.window_end_ns)?),
                    key: row.object_key.clone()?,
                    stored_size: unsigned(row.stored_size)?,
                    stored_sha256: hash(row.stored_sha256.as_ref())?,
                    content_sha256: hash(row.content_sha256.as_ref())?,
                    index: indexes.remove(&row.leaf_index),
                })
            })
            .collect();
        if archives.len() > MAX_ARCHIVES {
            return Err(invalid_search(format!(
                "the search would read more than {MAX_ARCHIVES} archives; give start and end to narrow it"
            )));
        }
        Ok(archives)
    }
}

fn time_range(
    key: &Key,
    start: Option<OffsetDateTime>,
    end: Option<OffsetDateTime>,
) -> Result<Option<(u64, u64)>, ApiError> {
    let ns = |t: OffsetDateTime, what: &str| {
        u64::try_from(to_ns(t)).map_err(|_| invalid_search(format!("{what} is before 1970")))
    };
    let range = match (start, end) {
        (Some(start), Some(end)) => Some((ns(start, "start")?, ns(end, "end")?)),
        (None, None) => None,
        _ => return Err(invalid_search("give both start and end, or neither")),
    };
    if let Some((start, end)) = range
        && end <= start
    {
        return Err(invalid_search("end must be after start"));
    }
    if let Key::Client(_) = key {
        let span = u64::try_from(MAX_CLIENT_SPAN.as_nanos()).unwrap_or(u64::MAX);
        match range {
            None => {
                return Err(invalid_search(
                    "an address or block search needs start and end",
                ));
            }
            Some((start, end)) if end - start > span => {
                return Err(invalid_search(format!(
                    "an address or block search covers at most {} days",
                    MAX_CLIENT_SPAN.as_secs() / 86_400
                )));
            }
            Some(_) => {}
        }
    }
    Ok(range)
}

/// `<entry index>:<record>`, as a summary's `next_cursor` gives it.
fn cursor_of(text: &str) -> Result<Position, ApiError> {
    text.split_once(':')
        .and_then(|(entry, record)| {
            Some(Position {
                entry_index: entry.parse().ok()?,
                record: record.parse().ok()?,
            })
        })
        .ok_or_else(|| invalid_search("cursor is not one this API returned"))
}

fn hit_line(found: &Found) -> Bytes {
    let proof = format!("/api/v1/logs/jobs/{}?proof=true", found.entry_id);
    Bytes::from(format!("{}\n", found.to_ndjson(Some(proof))))
}

fn summary_line(summary: &Summary) -> Bytes {
    let line = serde_json::json!({ "summary": {
        "hits": summary.hits,
        "archives_considered": summary.archives_considered,
        "index_objects_read": summary.index_objects_read,
        "index_objects_cached": summary.index_objects_cached,
        "index_bytes_read": summary.index_bytes_read,
        "frames_read": summary.frames_read,
        "archives_read_whole": summary.archives_read_whole,
        "bytes_read": summary.bytes_read,
        "requests": summary.requests,
        "elapsed_ms": summary.elapsed.as_secs_f64() * 1000.0,
        "next_cursor": summary.next.map(|p| format!("{}:{}", p.entry_index, p.record)),
        "index_problems": summary.index_problems,
    }});
    Bytes::from(format!("{line}\n"))
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Logs")]
impl SearchApi {
    /// Find a zone's records by Ray ID, client address or CIDR block, with provenance (any role)
    #[oai(path = "/search", method = "get", operation_id = "search")]
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        state: Data<&SharedState>,
        auth: BearerAuth,
        #[oai(validator(pattern = r"^[0-9a-f]{32}$"))] zone_id: Query<String>,
        /// Records at or after this time. Optional for a Ray ID; an address or block search
        /// needs start and end, at most 31 days apart.
        start: Query<Option<OffsetDateTime>>,
        /// Records before this time.
        end: Query<Option<OffsetDateTime>>,
        /// 16 hexadecimal digits, as in 8d2f61c1fa0b1c3e (a `-FRA` colo suffix is allowed).
        #[oai(validator(pattern = r"^[0-9a-fA-F]{16}(-[A-Za-z]{3,4})?$"))]
        ray_id: Query<Option<String>>,
        /// One IPv4 or IPv6 address (one that is none is a 422).
        #[oai(validator(pattern = r"^[0-9a-fA-F:.]{2,45}$"))]
        client_ip: Query<Option<String>>,
        /// A CIDR block: /8 to /32 of IPv4, /16 to /128 of IPv6, starting at its prefix
        /// boundary (a block broader than that would read everything).
        #[oai(validator(pattern = r"^[0-9a-fA-F:.]{2,45}/([89]|[1-9][0-9]|1[01][0-9]|12[0-8])$"))]
        cidr: Query<Option<String>>,
        /// Hits at most, 1 to 10000 (default 100); `next_cursor` continues.
        #[oai(validator(minimum(value = "1"), maximum(value = "10000")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous answer's summary.
        #[oai(validator(pattern = r"^[0-9]{1,19}:[0-9]{1,19}$"))]
        cursor: Query<Option<String>>,
    ) -> Result<SearchResponse, ApiError> {
        let p = &auth.0;
        let key = Key::one_of(
            ray_id.0.as_deref(),
            client_ip.0.as_deref(),
            cidr.0.as_deref(),
        )
        .map_err(|e| invalid_search(e.to_string()))?;
        let time = time_range(&key, start.0, end.0)?;
        let after = cursor.0.as_deref().map(cursor_of).transpose()?;
        let query =
            rainlogs_search::Query::new(key, time).map_err(|e| invalid_search(e.to_string()))?;
        if !state.zone_known(&p.tenant, &zone_id.0).await? {
            return Err(zone_not_found(&zone_id.0));
        }
        let archives = state
            .searchable_archives(&p.tenant, &zone_id.0, time)
            .await?;
        let described = match (&ray_id.0, &client_ip.0, &cidr.0) {
            (Some(ray), _, _) => format!("ray_id={ray}"),
            (_, Some(ip), _) => format!("client_ip={ip}"),
            (_, _, Some(block)) => format!("cidr={block}"),
            _ => String::new(),
        };
        let detail = match time {
            Some((s, e)) => format!("{described}; range={s}..{e}"),
            None => described,
        };
        state
            .audit(
                &p.tenant,
                &p.actor,
                "search",
                &format!("zone/{}", zone_id.0),
                Outcome::Ok,
                Some(detail),
            )
            .await?;
        let searcher = Searcher::new(state.store.store.clone(), state.search_cache.clone());
        let limit = u64::from(limit.0.unwrap_or(100));
        let (lines, body) = tokio::sync::mpsc::channel::<Bytes>(64);
        let (hits, mut found) = tokio::sync::mpsc::channel::<Found>(64);
        let search =
            tokio::spawn(
                async move { searcher.search(&archives, &query, limit, after, hits).await },
            );
        tokio::spawn(async move {
            while let Some(hit) = found.recv().await {
                if lines.send(hit_line(&hit)).await.is_err() {
                    return;
                }
            }
            let last = match search.await {
                Ok(Ok(summary)) => summary_line(&summary),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "search failed part way");
                    Bytes::from(format!(
                        "{}\n",
                        serde_json::json!({ "error": e.to_string() })
                    ))
                }
                Err(e) => {
                    tracing::error!(error = %e, "search task failed");
                    Bytes::from("{\"error\":\"internal error\"}\n")
                }
            };
            let _ = lines.send(last).await;
        });
        let stream = futures::stream::unfold(body, |mut body| async move {
            body.recv()
                .await
                .map(|line| (Ok::<_, std::io::Error>(line), body))
        });
        Ok(SearchResponse::Ndjson(Binary(Body::from_bytes_stream(
            stream,
        ))))
    }
}
