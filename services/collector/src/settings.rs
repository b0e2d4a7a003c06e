//! How the collector behaves. Defaults are production values; tests shrink the timings.

use std::time::Duration;

use rainlogs_cloudflare::{ClientConfig, LOGPULL_MIN_DELAY};

#[derive(Clone, Debug)]
pub struct CollectorOptions {
    /// Window length (Logpull allows at most one hour). Windows end on multiples of it.
    pub window: Duration,
    /// Window length used while the cursor is far behind (backfill, after an outage); the
    /// Logpull maximum of one hour by default. Equal to `window` turns catch-up windows off.
    pub catch_up_window: Duration,
    /// How far back a zone seen for the first time starts (clamped to what Cloudflare retains).
    pub backfill: Duration,
    /// A window starting closer than this to the retention edge is recorded as expired rather
    /// than requested, so a request never races the edge into an endless "too early" 400.
    pub retention_margin: Duration,
    /// Uncompressed NDJSON bytes per `batch.collected` event (events stay under NATS' 1 MB).
    pub batch_bytes: usize,
    /// Longest real-time sleep between looks at the clock while a zone waits.
    pub tick: Duration,
    /// Backoff between attempts of a failed window: first delay and cap.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Longest server-requested wait honoured as is (GraphQL budgets say "5 minutes").
    pub max_retry_after: Duration,
    /// How often a zone stuck on a permanent problem (bad token, retention off) is checked again.
    pub recheck: Duration,
    /// Ownership lease of a zone; a process that stops renewing loses its zones after this.
    pub lease_ttl: Duration,
    /// A Logpull window is requested once its end is this far in the past (Cloudflare: at least
    /// one minute by its documentation, five by its OpenAPI description; five is the default).
    pub logpull_delay: Duration,
    /// A zone this far or further behind (first backfill, after an outage) reports its progress:
    /// once when it starts, then every `backfill_report_every`, in logs, metrics and health.
    pub backfill_report_after: Duration,
    pub backfill_report_every: Duration,
    /// GraphQL events may be ingested late: windows end this far before now...
    pub graphql_lag: Duration,
    /// ...and each query re-scans this much before the window for late events (de-duplicated).
    pub graphql_overlap: Duration,
    /// Where Cloudflare reaches the ingest endpoint (`ingest.public_url`); Logpush jobs
    /// RainLogs creates push there. `None`: Logpush zones cannot be onboarded.
    pub push_url: Option<String>,
    /// A pushed window is closed once its end is this far in the past (`collector.logpush_lateness`).
    pub logpush_lateness: Duration,
    /// How often a Logpush bucket is listed for new objects: well within the lateness, so objects
    /// land in their own windows.
    pub bucket_poll: Duration,
    /// How the customers' Logpush buckets are reached (`outbound.*`): public addresses only by
    /// default.
    pub bucket_access: rainlogs_push::BucketAccess,
    /// Instant Logs sessions are replaced before Cloudflare's 60-minute cap.
    pub instant_logs_rotate_after: Duration,
    /// Cloudflare client settings (base URL, retries, limits, timeouts).
    pub client: ClientConfig,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            catch_up_window: Duration::from_secs(3600),
            backfill: Duration::from_secs(168 * 3600),
            retention_margin: Duration::from_secs(120),
            batch_bytes: 1024 * 1024,
            tick: Duration::from_secs(5),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(3600),
            recheck: Duration::from_secs(300),
            lease_ttl: Duration::from_secs(15),
            logpull_delay: LOGPULL_MIN_DELAY,
            backfill_report_after: Duration::from_secs(3600),
            backfill_report_every: Duration::from_secs(60),
            graphql_lag: Duration::from_secs(300),
            graphql_overlap: Duration::from_secs(300),
            logpush_lateness: Duration::from_secs(600),
            push_url: None,
            bucket_poll: Duration::from_secs(5),
            bucket_access: rainlogs_push::BucketAccess::default(),
            instant_logs_rotate_after: Duration::from_secs(55 * 60),
            client: ClientConfig::default(),
        }
    }
}

impl CollectorOptions {
    pub fn window_secs(&self) -> i64 {
        i64::try_from(self.window.as_secs())
            .unwrap_or(60)
            .clamp(1, 3600)
    }

    /// The wait before trying again: backoff, but never less than the server asked (capped).
    pub fn retry_delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        self.backoff(failures)
            .max(retry_after.unwrap_or_default().min(self.max_retry_after))
    }

    /// `logpull_delay` in whole seconds, never under Cloudflare's one minute.
    pub fn logpull_delay_secs(&self) -> i64 {
        secs(self.logpull_delay).max(60)
    }

    pub fn catch_up_secs(&self) -> i64 {
        i64::try_from(self.catch_up_window.as_secs())
            .unwrap_or(3600)
            .clamp(1, 3600)
    }

    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(20)).unwrap_or(u32::MAX);
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }
}

pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}
