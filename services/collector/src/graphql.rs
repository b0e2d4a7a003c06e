//! GraphQL `firewallEventsAdaptive` collection (Pro/Free, dataset `firewall_events`).
//!
//! * Windows end `graphql_lag` before now, because events may be ingested late.
//! * Each window's query also re-scans `graphql_overlap` before the window; events seen there
//!   for the first time (late arrivals) are archived with this window, and the natural key
//!   `(rayName, matchIndex, source, ruleId, datetime)` keeps anything from being archived twice.
//! * No cursors exist: a slice that returns `limit` rows is split in halves until it fits.
//! * Rows are sampled by Cloudflare; the largest `sampleInterval` is recorded with the window.
//! * Errors inside HTTP 200 are errors (the client inspects `errors[]` on every answer).

use std::collections::HashMap;

use bytes::Bytes;
use rainlogs_cloudflare::{CfError, Endpoint, FirewallEventsQuery};
use rainlogs_schemas::events::{GapReason, Method, Window};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::Instrument as _;

use crate::attempt::{Attempt, AttemptError};
use crate::backfill::BackfillWatch;
use crate::clock::at;
use crate::health::Status;
use crate::ledger::Ledger;
use crate::settings::secs;
use crate::zone_run::{Exit, NextWindow, ZoneRun, journal_exit};

/// The natural key of one security event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventKey {
    pub ray_name: String,
    pub match_index: i64,
    pub source: String,
    pub rule_id: String,
    pub datetime: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyFields {
    #[serde(default)]
    ray_name: String,
    #[serde(default)]
    match_index: i64,
    #[serde(default)]
    source: String,
    #[serde(default)]
    rule_id: String,
    #[serde(default)]
    datetime: String,
    #[serde(default)]
    sample_interval: Option<u32>,
}

/// A row's key, event time (Unix seconds) and sampling weight.
pub fn parse_row(row: &[u8]) -> Option<(EventKey, i64, u32)> {
    let fields: KeyFields = serde_json::from_slice(row).ok()?;
    let at = OffsetDateTime::parse(&fields.datetime, &Rfc3339)
        .ok()?
        .unix_timestamp();
    Some((
        EventKey {
            ray_name: fields.ray_name,
            match_index: fields.match_index,
            source: fields.source,
            rule_id: fields.rule_id,
            datetime: fields.datetime,
        },
        at,
        fields.sample_interval.unwrap_or(1).max(1),
    ))
}

/// Keys already archived, with their event times, for the trailing overlap.
#[derive(Default)]
pub struct SeenEvents {
    keys: HashMap<EventKey, i64>,
}

impl SeenEvents {
    /// True the first time a key is offered.
    pub fn insert(&mut self, key: EventKey, at: i64) -> bool {
        self.keys.insert(key, at).is_none()
    }

    /// Forgets events older than `before` (they can no longer be re-scanned).
    pub fn prune(&mut self, before: i64) {
        self.keys.retain(|_, at| *at >= before);
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

pub async fn run(run: &mut ZoneRun<'_>) -> Exit {
    let shared = run.shared;
    let settings = &shared.settings;
    let dataset = run.plan.dataset;
    let Some(limits) = run.plan.firewall.clone() else {
        return Exit::Reconfigure;
    };
    let size = settings.window_secs();
    let margin = secs(settings.retention_margin);
    let lag = secs(settings.graphql_lag);
    let overlap = secs(settings.graphql_overlap);
    let max_age = i64::try_from(limits.not_older_than).unwrap_or(i64::MAX / 4);
    let earliest = |now: i64| now - max_age + margin;
    let cursor = match run.journal.recover_cursor(dataset).await {
        Ok(cursor) => cursor,
        Err(e) => return journal_exit(run.zone(), &e, settings),
    };
    let now = run.now();
    let resumed = cursor.is_some();
    let cursor = cursor.unwrap_or_else(|| {
        Ledger::initial_cursor(now, secs(settings.backfill), earliest(now), size)
    });
    // Catch-up windows stay within the plan's longest query range.
    let max_range = i64::try_from(limits.max_duration).unwrap_or(i64::MAX);
    let mut ledger =
        Ledger::new(cursor, size).with_catch_up(settings.catch_up_secs().min(max_range));
    let mut seen = SeenEvents::default();
    // Never re-scan before the zone's coverage began: those events are not late, just earlier.
    let coverage_floor = if resumed { cursor - overlap } else { cursor };
    if resumed {
        // After a restart the keys archived in the overlap are unknown: take what Cloudflare
        // shows for it now as seen, so nothing is archived twice (an event ingested during the
        // restart inside the overlap is the price).
        let since = (cursor - overlap).max(earliest(now));
        if since < cursor {
            match fetch_slices(run, since, cursor, limits.max_page_size).await {
                Ok(rows) => {
                    for row in rows {
                        if let Some((key, t, _)) = parse_row(&row) {
                            seen.insert(key, t);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(zone = %run.zone(), error = %e, "cannot re-read the overlap after a restart")
                }
            }
        }
    }
    tracing::info!(zone = %run.zone(), dataset, cursor, "GraphQL collection starts");
    let expired_detail = format!(
        "Cloudflare serves security events for {max_age} s on this plan; this window expired before it was fetched"
    );
    let mut failures: u32 = 0;
    let mut backfill = BackfillWatch::new(shared, run.zone(), dataset, &ledger);
    loop {
        if let Some(exit) = run.take_changes() {
            return exit;
        }
        let now = run.now();
        let latest_end = now - lag;
        // From real time, as for Logpull: the ingestion lag is part of how old the data is.
        run.shared
            .metrics
            .lag(run.zone(), dataset, now - ledger.cursor());
        let step = ledger.next(latest_end, earliest(now));
        backfill
            .observe(
                run,
                &ledger,
                step,
                (latest_end, earliest(now)),
                failures == 0,
            )
            .await;
        let window = match run
            .next_window(&mut ledger, step, now, lag, &expired_detail)
            .await
        {
            NextWindow::Collect(window) => window,
            NextWindow::Again => continue,
            NextWindow::Exit(exit) => return exit,
        };
        let since = (window.start - overlap)
            .max(coverage_floor)
            .max(earliest(now))
            .min(window.start);
        let rows = match fetch_slices(run, since, window.end, limits.max_page_size).await {
            Ok(rows) => rows,
            Err(error) => {
                failures += 1;
                let delay = match &error {
                    CfError::Auth { .. } => {
                        run.report(Status::Failing, format!("Cloudflare refuses the zone's token for GraphQL ({error}); windows wait for a valid token")).await;
                        settings.recheck
                    }
                    e if e.is_retryable() => {
                        if failures >= 3 {
                            run.report(Status::Degraded, format!("GraphQL keeps failing: {error}"))
                                .await;
                        }
                        settings.retry_delay(failures - 1, e.retry_after())
                    }
                    _ => {
                        run.report(
                            Status::Failing,
                            format!("Cloudflare refuses the GraphQL query: {error}"),
                        )
                        .await;
                        settings.recheck
                    }
                };
                if let Some(exit) = run.idle(delay).await {
                    return exit;
                }
                continue;
            }
        };
        let span = run.window_span(window);
        match archive_window(run, window, rows, &mut seen)
            .instrument(span)
            .await
        {
            Ok((records, bytes)) => {
                let outcome = if records == 0 { "empty" } else { "complete" };
                run.shared
                    .metrics
                    .window_closed(run.zone(), dataset, outcome);
                run.shared
                    .metrics
                    .published(run.zone(), dataset, records, bytes);
                ledger.advance(window);
                seen.prune(window.end - overlap);
                if failures > 0 {
                    failures = 0;
                    backfill
                        .report_recovered(run, latest_end - ledger.cursor())
                        .await;
                }
            }
            Err(AttemptError::Journal(e)) => return journal_exit(run.zone(), &e, settings),
            Err(AttemptError::RecordTooLarge { bytes }) => {
                let detail = format!("an event of {bytes} bytes cannot be carried in one batch");
                if let Err(exit) = run
                    .skip_as_gap(&mut ledger, dataset, window, GapReason::Refused, detail)
                    .await
                {
                    return exit;
                }
            }
        }
    }
}

/// Publishes the rows not seen before as one attempt and closes the window.
async fn archive_window(
    run: &mut ZoneRun<'_>,
    window: Window,
    rows: Vec<Bytes>,
    seen: &mut SeenEvents,
) -> Result<(u64, u64), AttemptError> {
    let mut attempt = Attempt::new(run.plan.dataset, window, run.shared.settings.batch_bytes);
    let mut sample_interval = 1u32;
    let mut fresh = Vec::new();
    for row in rows {
        match parse_row(&row) {
            Some((key, t, interval)) => {
                if seen.insert(key, t) {
                    sample_interval = sample_interval.max(interval);
                    fresh.push(row);
                }
            }
            // Kept rather than dropped: the archive holds what Cloudflare sent.
            None => fresh.push(row),
        }
    }
    for row in &fresh {
        attempt.push(&mut run.journal, row).await?;
    }
    let fields = run.plan.fields.to_query_value();
    let totals = attempt
        .complete(&mut run.journal, Method::Graphql, sample_interval, &fields)
        .await?;
    Ok((totals.records, totals.bytes))
}

/// All rows of `[since, until)`, splitting any slice that hit the page limit.
async fn fetch_slices(
    run: &ZoneRun<'_>,
    since: i64,
    until: i64,
    page_size: u32,
) -> Result<Vec<Bytes>, CfError> {
    let mut rows = Vec::new();
    let mut pending = vec![(since, until)];
    while let Some((start, end)) = pending.pop() {
        let mut query = FirewallEventsQuery::new(run.zone(), at(start), at(end), page_size.max(1));
        query.fields = run.plan.fields.as_slice().to_vec();
        let answer = run.client.firewall_events(&query).await;
        run.record_response(Endpoint::Graphql, &answer);
        let page = answer?;
        if page.limit_reached && end - start > 1 {
            let middle = start + (end - start) / 2;
            // Later half first on the stack so slices are fetched in time order.
            pending.push((middle, end));
            pending.push((start, middle));
            continue;
        }
        if page.limit_reached {
            tracing::warn!(zone = %run.zone(), start, "one second holds more security events than a page; Cloudflare's page limit truncates it");
        }
        rows.extend(page.rows);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_to_their_natural_key() {
        let row = br#"{"action":"block","datetime":"2026-01-15T11:00:01Z","matchIndex":2,"rayName":"8f1c","ruleId":"r1","sampleInterval":10,"source":"waf"}"#;
        let (key, t, interval) = parse_row(row).unwrap();
        assert_eq!(key.ray_name, "8f1c");
        assert_eq!(key.match_index, 2);
        assert_eq!(t, 1_768_474_801);
        assert_eq!(interval, 10);
        assert!(parse_row(b"{\"datetime\":\"yesterday\"}").is_none());
    }

    #[test]
    fn seen_events_deduplicate_and_forget_old_keys() {
        let key = |ray: &str| EventKey {
            ray_name: ray.into(),
            match_index: 0,
            source: "waf".into(),
            rule_id: "r".into(),
            datetime: "t".into(),
        };
        let mut seen = SeenEvents::default();
        assert!(seen.insert(key("a"), 100));
        assert!(!seen.insert(key("a"), 100), "the same event twice");
        assert!(seen.insert(key("b"), 200));
        seen.prune(150);
        assert_eq!(seen.len(), 1);
        assert!(seen.insert(key("a"), 100), "forgotten after the overlap");
    }
}
