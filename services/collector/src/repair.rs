//! Repair of short Logpush windows from Logpull (Enterprise zones).
//!
//! Logpush drops a batch for good once its retries run out, but an Enterprise zone's Logpull
//! still serves the same requests for 7 days. When the completeness cross-check finds a window
//! short, the window is pulled from Logpull and every record whose Ray ID the window does not
//! hold yet is archived as a `late` close of the window, collected by `logpull`; the window's
//! `shortfall` entry stays in the log, and the late entry after it shows what was recovered.
//!
//! Records are matched by Ray ID (one per request), not by their bytes: Logpull and Logpush do
//! not promise the same field order. So the repair needs `RayID` and `EdgeStartTimestamp` among
//! the zone's fields, and keeps the Ray IDs of the windows awaiting their check (8 bytes a
//! record) in memory: a window an earlier owner of the zone closed is checked but not repaired.
//! Logpull selects by the time a request ended, Logpush windows by the time it started, so the
//! pull reaches [`PULL_PAST_END`] past the window's end and keeps the records that started in it;
//! a request that ran longer than that is not recovered.

use std::collections::{BTreeMap, HashSet};

use futures::StreamExt as _;
use rainlogs_cloudflare::api::logpull::normalise_ray_id;
use rainlogs_cloudflare::{
    CfError, Endpoint, FieldList, LogpullItem, LogpullQuery, LogpullWindow, LogpushDataset,
};
use rainlogs_schemas::events::Window;
use serde::Deserialize;

use crate::clock::at;
use crate::zone_run::ZoneRun;

/// How far past a window's end its records are looked for in Logpull (see the module doc).
pub const PULL_PAST_END: i64 = 60;
/// Pulls tried for one window before it is left short.
pub const TRIES: u32 = 3;

/// Why a zone's short windows cannot be repaired from Logpull.
pub fn not_repairable(plan: &str, fields: &FieldList) -> Option<String> {
    if plan != "enterprise" {
        return Some(format!(
            "Logpull needs an Enterprise plan (the zone's is {plan})"
        ));
    }
    let has = |name: &str| fields.as_slice().iter().any(|f| f == name);
    if !has("RayID") || !has("EdgeStartTimestamp") {
        return Some(
            "Logpull records are matched by Ray ID: RayID and EdgeStartTimestamp must be among the \
             zone's fields"
                .into(),
        );
    }
    None
}

/// The Ray IDs each window awaiting its check holds, by window start.
#[derive(Debug, Default)]
pub struct SeenRays {
    windows: BTreeMap<i64, HashSet<u64>>,
}

impl SeenRays {
    /// Notes a record filed into the window starting at `start`.
    pub fn saw(&mut self, start: i64, line: &[u8]) {
        if let Some(ray) = ray_id(line) {
            self.windows.entry(start).or_default().insert(ray);
        }
    }

    /// The Ray IDs of the window starting at `start`, which the repair now owns.
    pub fn take(&mut self, start: i64) -> Option<HashSet<u64>> {
        self.windows.remove(&start)
    }

    /// Forgets the windows starting before `start` (checked, or too old to be).
    pub fn forget_before(&mut self, start: i64) {
        self.windows = self.windows.split_off(&start);
    }
}

/// A record's Ray ID as a number (16 hex digits), if it has one.
pub fn ray_id(line: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Ray<'a> {
        #[serde(rename = "RayID", borrow)]
        ray: std::borrow::Cow<'a, str>,
    }
    let ray = serde_json::from_slice::<Ray<'_>>(line).ok()?.ray;
    let id = normalise_ray_id(&ray).ok()?;
    u64::from_str_radix(&id, 16).ok()
}

/// Whether Logpull serves the pull of `window` at `now`: its end plus [`PULL_PAST_END`] must be
/// Cloudflare's five minutes in the past. A window is checked five minutes after its end, so its
/// repair waits for the next check.
pub fn ready(window: Window, now: i64) -> bool {
    at(window.end + PULL_PAST_END) <= LogpullWindow::latest_end(at(now))
}

/// A short window waiting for its repair.
#[derive(Debug)]
pub struct Due {
    pub window: Window,
    /// Ray IDs the window holds.
    pub held: HashSet<u64>,
    pub tries: u32,
}

/// The window's records Logpull serves that it does not hold, once each, in Logpull's order.
pub async fn missing_records(
    run: &mut ZoneRun<'_>,
    window: Window,
    held: &HashSet<u64>,
) -> Result<Vec<Vec<u8>>, CfError> {
    let pull = LogpullWindow::new(at(window.start), at(window.end + PULL_PAST_END))?;
    pull.check_servable(at(run.now()))?;
    let query = LogpullQuery::new(run.zone(), pull, run.plan.fields.clone());
    let received = run.client.logpull_received(&query).await;
    run.record_response(Endpoint::LogpullReceived, &received);
    let mut stream = received?;
    let (from, until) = (
        i128::from(window.start) * 1_000_000_000,
        i128::from(window.end) * 1_000_000_000,
    );
    let mut taken = HashSet::new();
    let mut missing = Vec::new();
    while let Some(item) = stream.next().await {
        match item? {
            LogpullItem::Line(line) => {
                let Some(ray) = ray_id(&line) else { continue };
                let started = LogpushDataset::HttpRequests
                    .record_time_ns(&line)
                    .map(i128::from);
                if started.is_ok_and(|ns| (from..until).contains(&ns))
                    && !held.contains(&ray)
                    && taken.insert(ray)
                {
                    missing.push(line.to_vec());
                }
            }
            LogpullItem::Complete(_) => return Ok(missing),
        }
    }
    Err(CfError::Protocol {
        endpoint: Endpoint::LogpullReceived,
        detail: "stream ended without a verdict".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ray_ids_are_read_whatever_the_field_order_and_colo_suffix() {
        let a = br#"{"RayID":"8f0a1b2c3d4e5f70","EdgeStartTimestamp":1}"#;
        let b =
            br#"{"EdgeStartTimestamp":1,"ClientIP":"192.0.2.1","RayID":"8F0A1B2C3D4E5F70-FRA"}"#;
        assert_eq!(ray_id(a), Some(0x8f0a_1b2c_3d4e_5f70));
        assert_eq!(ray_id(a), ray_id(b));
        assert_eq!(ray_id(br#"{"RayID":"nope"}"#), None);
        assert_eq!(ray_id(br#"{"ClientIP":"192.0.2.1"}"#), None);
        assert_eq!(ray_id(b"not json"), None);
    }

    #[test]
    fn a_window_is_pulled_once_logpull_serves_a_minute_past_its_end() {
        let window = Window {
            start: 1_768_478_400,
            end: 1_768_478_460,
        };
        assert!(!ready(window, window.end + 300));
        assert!(!ready(window, window.end + 359));
        assert!(ready(window, window.end + 360));
    }

    #[test]
    fn windows_are_kept_until_taken_or_forgotten() {
        let mut seen = SeenRays::default();
        seen.saw(60, br#"{"RayID":"0000000000000001"}"#);
        seen.saw(60, br#"{"RayID":"0000000000000002"}"#);
        seen.saw(120, br#"{"RayID":"0000000000000003"}"#);
        seen.saw(180, br#"{"no":"ray"}"#);
        assert_eq!(seen.take(60).map(|rays| rays.len()), Some(2));
        assert_eq!(seen.take(60), None);
        seen.forget_before(180);
        assert_eq!(seen.take(120), None);
    }

    #[test]
    fn only_enterprise_zones_with_ray_ids_and_start_times_are_repaired() {
        let fields = |list: &[&str]| FieldList::new(list.iter().copied()).expect("fields");
        let full = fields(&["ClientIP", "EdgeStartTimestamp", "RayID"]);
        assert_eq!(not_repairable("enterprise", &full), None);
        assert!(not_repairable("business", &full).is_some_and(|why| why.contains("Enterprise")));
        assert!(
            not_repairable("enterprise", &fields(&["ClientIP", "EdgeStartTimestamp"]))
                .is_some_and(|why| why.contains("RayID"))
        );
    }
}
