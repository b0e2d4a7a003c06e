//! A private NATS server, a simulator with a frozen clock, and helpers to add zones, run collector
//! processes and read back what they published.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cf_sim::{ClockStart, RunningSim, Scenario, SimOptions, Simulator, TruthQuery};
use rainlogs_bus::async_nats::jetstream::stream::DirectGetErrorKind;
use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_cloudflare::policy::backoff::Backoff;
use rainlogs_cloudflare::{BreakerConfig, ClientConfig, RateLimits, RetryPolicy};
use rainlogs_collector::{
    CollectorDeps, CollectorOptions, FnClock, Identity, TokenKey, TokenKeyring, run_collector,
};
use rainlogs_schemas::events::{
    BatchCollected, Method, PullRequested, Window, WindowClosed, WindowOutcome, ZoneAdded,
    ZoneChanged, ZoneHealth,
};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_testkit::NatsServer;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const TENANT: &str = "acme";
pub const FREE_ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
pub const PRO_ZONE: &str = "1d5fdc9e88c8a8c4518b068cd94331fe";
pub const BUSINESS_ZONE: &str = "2a1f0a9b7c3d4e5f60718293a4b5c6d7";
pub const ENTERPRISE_ZONE: &str = "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e";
pub const SOVEREIGN_ZONE: &str = "4c3f2e1d0a9b8c7d6e5f4a3b2c1d0e9f";
/// A second Enterprise zone added by [`scenario`] so one zone's trouble can be watched against it.
pub const OTHER_ENTERPRISE_ZONE: &str = "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b";

pub const FULL_TOKEN: &str = "cfut_full_access_token_0000000000000000";
pub const LOGS_READ_ONLY_TOKEN: &str = "cfut_logs_read_only_00000000000000000000";
pub const SPARE_TOKEN: &str = "cfut_spare_full_access_token_00000000000";

pub const HTTP: &str = "http_requests";
pub use rainlogs_collector::fields::DEFAULT_FIELDS;
pub const FIREWALL: &str = "firewall_events";

/// The simulator's frozen start.
pub fn t0() -> OffsetDateTime {
    datetime!(2026-01-15 12:00 UTC)
}

pub fn key() -> TokenKey {
    TokenKey::new([42; 32])
}

/// The example scenario with generous limits (the frozen clock never refills Cloudflare's), a
/// second Enterprise zone, a spare token, and rates low enough for long catch-ups.
pub fn scenario() -> Scenario {
    let mut s = Scenario::example();
    s.limits.global_per_5min = 1_000_000;
    s.limits.logpull_per_zone_per_min = 1_000_000;
    s.limits.graphql_per_5min = 1_000_000;
    // The simulator's blocks last in simulated time, which these tests mostly freeze: a block
    // would never end. The client's own per-process limit is still in force (see `settings`).
    s.limits.per_ip_per_sec = 0;
    for zone in &mut s.zones {
        if zone.id == ENTERPRISE_ZONE {
            zone.rate = 5.0;
        }
    }
    let mut other = s
        .zones
        .iter()
        .find(|z| z.id == ENTERPRISE_ZONE)
        .cloned()
        .expect("enterprise zone");
    other.id = OTHER_ENTERPRISE_ZONE.into();
    other.name = "other.example.eu".into();
    other.rate = 2.0;
    s.zones.push(other);
    let mut spare = s
        .tokens
        .iter()
        .find(|t| t.value == FULL_TOKEN)
        .cloned()
        .expect("full token");
    spare.value = SPARE_TOKEN.into();
    s.tokens.push(spare);
    s
}

/// Fast timings for tests; no client-side limits (the simulator enforces its own).
pub fn settings(sim: &RunningSim) -> CollectorOptions {
    CollectorOptions {
        window: Duration::from_secs(60),
        // Catch-up windows off unless a test turns them on, so window counts stay simple.
        catch_up_window: Duration::from_secs(60),
        backfill: Duration::from_secs(600),
        batch_bytes: 64 * 1024,
        tick: Duration::from_millis(20),
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        recheck: Duration::from_millis(300),
        max_retry_after: Duration::from_secs(1),
        graphql_lag: Duration::from_secs(120),
        graphql_overlap: Duration::from_secs(120),
        lease_ttl: Duration::from_secs(2),
        instant_logs_rotate_after: Duration::from_secs(600),
        bucket_poll: Duration::from_millis(100),
        // The tests' Logpush buckets are on the dev SeaweedFS, on loopback.
        bucket_access: rainlogs_push::BucketAccess {
            addresses: rainlogs_store::AddressPolicy::AllowPrivate,
            amazon_s3_endpoint: None,
        },
        client: ClientConfig {
            retry: RetryPolicy {
                max_attempts: 3,
                backoff: Backoff {
                    base: Duration::from_millis(5),
                    max: Duration::from_millis(40),
                },
                max_server_wait: Duration::from_secs(2),
            },
            // The simulator enforces Cloudflare's per-IP limit, so the client keeps to it.
            limits: RateLimits {
                per_process: RateLimits::CLOUDFLARE.per_process,
                ..RateLimits::UNLIMITED
            },
            limiter_max_wait: Duration::from_secs(2),
            breaker: BreakerConfig {
                failure_threshold: 1000,
                open_for: Duration::from_millis(100),
            },
            body_idle_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            websocket_ping_after: Duration::from_millis(500),
            websocket_pong_timeout: Duration::from_millis(500),
            ..ClientConfig::with_base_url(sim.base_url())
        },
        ..CollectorOptions::default()
    }
}

pub struct Harness {
    /// `None` when the test runs its own cluster.
    pub nats: Option<NatsServer>,
    pub bus: Bus,
    pub sim: Arc<RunningSim>,
    pub settings: CollectorOptions,
}

/// A running collector process.
pub struct Process {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Process {
    /// Graceful stop: in-flight work ends, leases are released.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }

    /// A crash: the task is dropped wherever it is; its leases expire on their own.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Moves the simulated clock in small steps so a live tail streams each second.
pub async fn play(h: &Harness, seconds: u64) {
    for _ in 0..seconds / 5 {
        h.sim.advance(Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(scenario()).await
    }

    pub async fn start_with(scenario: Scenario) -> Self {
        let nats = NatsServer::start();
        let bus = rainlogs_bus::connect(&nats.url).await.expect("connect");
        rainlogs_bus::provision(&bus, 1).await.expect("provision");
        Self::start_on(Some(nats), bus, scenario).await
    }

    /// On servers the test runs itself (a cluster), already provisioned.
    pub async fn start_on_bus(bus: Bus, scenario: Scenario) -> Self {
        Self::start_on(None, bus, scenario).await
    }

    async fn start_on(nats: Option<NatsServer>, bus: Bus, scenario: Scenario) -> Self {
        let sim = Simulator::start(
            scenario,
            SimOptions {
                clock: Some(ClockStart::FrozenAt(t0())),
                ..SimOptions::default()
            },
        )
        .await
        .expect("simulator");
        let sim = Arc::new(sim);
        let settings = settings(&sim);
        Self {
            nats,
            bus,
            sim,
            settings,
        }
    }

    pub fn start_collector(&self) -> Process {
        self.start_collector_with(self.settings.clone())
    }

    pub fn start_collector_with(&self, settings: CollectorOptions) -> Process {
        self.start_collector_metered(settings, opentelemetry::global::meter("collector-test"))
    }

    pub fn start_collector_metered(
        &self,
        settings: CollectorOptions,
        meter: opentelemetry::metrics::Meter,
    ) -> Process {
        self.start_collector_as(settings, meter, Identity::fresh())
    }

    /// A collector with the given identity: the same one again is a restart of that process.
    pub fn start_collector_as(
        &self,
        settings: CollectorOptions,
        meter: opentelemetry::metrics::Meter,
        identity: Identity,
    ) -> Process {
        let sim = Arc::clone(&self.sim);
        let shutdown = CancellationToken::new();
        let deps = CollectorDeps {
            bus: self.bus.clone(),
            settings,
            keyring: TokenKeyring::new(vec![key()]),
            clock: Arc::new(FnClock(move || sim.now())),
            meter,
            shutdown: shutdown.clone(),
            identity,
        };
        let task = tokio::spawn(async move {
            if let Err(e) = run_collector(deps, || {}).await {
                panic!("collector failed: {e}");
            }
        });
        Process { shutdown, task }
    }

    pub async fn add_zone(&self, zone: &str, method: Method, fields: &str, token: &str) {
        let event = Envelope::new(
            TENANT,
            Some(zone.to_owned()),
            Actor::operator(),
            Event::ZoneAdded(ZoneAdded {
                zone_id: zone.to_owned(),
                name: format!("{zone}.example"),
                plan: "unknown".into(),
                method,
                fields: fields.to_owned(),
                sealed_token: key().seal(TENANT, zone, token),
                token_key_id: key().id().to_owned(),
            }),
        );
        self.bus
            .publish(&subjects::control(TENANT), &event)
            .await
            .expect("publish zone");
    }

    pub async fn change_zone(&self, change: ZoneChanged) {
        let zone = change.zone_id.clone();
        let event = Envelope::new(
            TENANT,
            Some(zone),
            Actor::operator(),
            Event::ZoneChanged(change),
        );
        self.bus
            .publish(&subjects::control(TENANT), &event)
            .await
            .expect("publish change");
    }

    pub async fn new_token(&self, zone: &str, token: &str) {
        self.change_zone(ZoneChanged {
            zone_id: zone.to_owned(),
            sealed_token: Some(key().seal(TENANT, zone, token)),
            token_key_id: Some(key().id().to_owned()),
            ..ZoneChanged::default()
        })
        .await;
    }

    /// What `POST /zones/{id}/pull` publishes.
    pub async fn request_pull(&self, zone: &str, window: Window) {
        let event = Envelope::new(
            TENANT,
            Some(zone.to_owned()),
            Actor::operator(),
            Event::PullRequested(PullRequested {
                zone_id: zone.to_owned(),
                window,
            }),
        );
        self.bus
            .publish(&subjects::control(TENANT), &event)
            .await
            .expect("publish pull");
    }

    /// Every message on a subject, decoded, in stream order.
    pub async fn read_subject(&self, subject: &str, stream: &str) -> Vec<Envelope> {
        let stream = self.bus.js.get_stream(stream).await.expect("stream");
        let mut out = Vec::new();
        let mut seq = 1;
        loop {
            match stream
                .direct_get_next_for_subject(subject.to_owned(), Some(seq))
                .await
            {
                Ok(message) => {
                    seq = message.sequence + 1;
                    out.push(Envelope::from_cbor(&message.payload).expect("decodable event"));
                }
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => return out,
                Err(e) => panic!("reading {subject}: {e}"),
            }
        }
    }

    pub async fn zone_events(&self, zone: &str) -> ZoneEvents {
        ZoneEvents::from(self.read_subject(&subjects::batch(zone), "RL_BATCH").await)
    }

    pub async fn health(&self, zone: &str) -> Vec<ZoneHealth> {
        self.read_subject(&subjects::control(TENANT), "RL_CONTROL")
            .await
            .into_iter()
            .filter_map(|e| match e.event {
                Event::ZoneHealth(h) if h.zone_id == zone => Some(h),
                _ => None,
            })
            .collect()
    }

    /// Polls until `check` holds on the zone's events (panics with `what` after a generous limit).
    pub async fn wait_for(
        &self,
        zone: &str,
        what: &str,
        check: impl Fn(&ZoneEvents) -> bool,
    ) -> ZoneEvents {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let events = self.zone_events(zone).await;
            if check(&events) {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} on {zone}: {} closes so far: {:?}",
                events.closes.len(),
                events
                    .closes
                    .iter()
                    .map(|c| (c.window, outcome_name(&c.outcome)))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_for_health(
        &self,
        zone: &str,
        what: &str,
        check: impl Fn(&ZoneHealth) -> bool,
    ) -> ZoneHealth {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(h) = self.health(zone).await.into_iter().find(|h| check(h)) {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for health {what} on {zone}: {:?}",
                self.health(zone).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `/__sim/truth` for a window, as sorted lines without terminators.
    pub fn truth(&self, zone: &str, window: Window, fields: &str) -> Vec<Vec<u8>> {
        let mut query = TruthQuery::http(zone, at(window.start), at(window.end));
        query.fields = Some(fields.split(',').map(str::to_owned).collect());
        let mut lines: Vec<Vec<u8>> = self
            .sim
            .truth(&query)
            .expect("truth")
            .into_iter()
            .map(|l| l.trim_end_matches('\n').as_bytes().to_vec())
            .collect();
        lines.sort();
        lines
    }

    /// Asserts that every completed window's records are exactly Cloudflare's, and empty ones
    /// are really empty. Windows older than the simulator's 7 days have no truth left to compare.
    /// A live tail's archived records: each one Cloudflare sent since `start`, none twice, and
    /// more than a hundred of them (the tail really delivered).
    pub fn assert_tail_records_are_truth_once(&self, zone: &str, events: &ZoneEvents, start: i64) {
        let now = self.sim.now().unix_timestamp();
        let truth: BTreeSet<Vec<u8>> = self
            .truth(zone, Window { start, end: now }, &DEFAULT_FIELDS.join(","))
            .into_iter()
            .collect();
        let mut seen = BTreeSet::new();
        for close in &events.closes {
            if matches!(close.outcome, WindowOutcome::Complete { .. }) {
                for line in events.attempt_lines(close.attempt) {
                    assert!(truth.contains(&line), "an archived record Cloudflare sent");
                    assert!(seen.insert(line), "no record is archived twice");
                }
            }
        }
        assert!(
            seen.len() > 100,
            "the tail delivered records ({})",
            seen.len()
        );
    }

    pub fn assert_windows_match_truth(&self, zone: &str, events: &ZoneEvents) {
        let held_from = self.sim.now().unix_timestamp() - 168 * 3600;
        for close in events.closes.iter().filter(|c| c.window.start >= held_from) {
            match &close.outcome {
                WindowOutcome::Complete {
                    records, fields, ..
                } => {
                    let lines = events.attempt_lines(close.attempt);
                    assert_eq!(
                        lines.len() as u64,
                        *records,
                        "record count of window {:?}",
                        close.window
                    );
                    assert_eq!(
                        sorted(lines),
                        self.truth(zone, close.window, fields),
                        "records of window {:?}",
                        close.window
                    );
                }
                WindowOutcome::Empty { .. } => {
                    assert!(events.attempt_lines(close.attempt).is_empty());
                    assert!(
                        self.truth(zone, close.window, DEFAULT_FIELDS[0]).is_empty(),
                        "window {:?} is not empty at Cloudflare",
                        close.window
                    );
                }
                WindowOutcome::Gap { .. } => {}
            }
        }
    }
}

pub fn at(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).expect("time")
}

pub fn sorted(mut lines: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    lines.sort();
    lines
}

pub fn outcome_name(outcome: &WindowOutcome) -> &'static str {
    match outcome {
        WindowOutcome::Complete { .. } => "complete",
        WindowOutcome::Empty { .. } => "empty",
        WindowOutcome::Gap { .. } => "gap",
    }
}

/// What a zone's subject holds.
pub struct ZoneEvents {
    pub batches: Vec<BatchCollected>,
    pub closes: Vec<WindowClosed>,
    pub ids: Vec<Uuid>,
}

impl From<Vec<Envelope>> for ZoneEvents {
    fn from(events: Vec<Envelope>) -> Self {
        let mut batches = Vec::new();
        let mut closes = Vec::new();
        let mut ids = Vec::new();
        for envelope in events {
            ids.push(envelope.id);
            match envelope.event {
                Event::BatchCollected(b) => batches.push(b),
                Event::WindowClosed(c) => closes.push(c),
                other => panic!("unexpected event on a batch subject: {}", other.type_name()),
            }
        }
        Self {
            batches,
            closes,
            ids,
        }
    }
}

impl ZoneEvents {
    /// Lines of one attempt, in batch order, each without its terminator.
    pub fn attempt_lines(&self, attempt: Uuid) -> Vec<Vec<u8>> {
        let mut batches: Vec<&BatchCollected> = self
            .batches
            .iter()
            .filter(|b| b.attempt == attempt)
            .collect();
        batches.sort_by_key(|b| b.seq);
        let seqs: Vec<u32> = batches.iter().map(|b| b.seq).collect();
        assert_eq!(
            seqs,
            (0..batches.len() as u32).collect::<Vec<_>>(),
            "batches of an attempt are numbered 0..n without holes or repeats"
        );
        batches
            .iter()
            .flat_map(|b| {
                let content = b.content().expect("batch content");
                assert!(content.is_empty() || content.ends_with(b"\n"));
                let lines: Vec<Vec<u8>> = content
                    .split(|c| *c == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect();
                assert_eq!(lines.len() as u32, b.records);
                lines
            })
            .collect()
    }

    pub fn closes_of(&self, dataset: &str) -> Vec<&WindowClosed> {
        self.closes
            .iter()
            .filter(|c| c.dataset == dataset)
            .collect()
    }

    pub fn closed_until(&self, dataset: &str) -> Option<i64> {
        self.closes_of(dataset).iter().map(|c| c.window.end).max()
    }

    pub fn count(&self, outcome: &str) -> usize {
        self.closes
            .iter()
            .filter(|c| outcome_name(&c.outcome) == outcome)
            .count()
    }

    /// Attempts that published batches but were never closed.
    pub fn abandoned_attempts(&self) -> BTreeSet<Uuid> {
        let closed: BTreeSet<Uuid> = self.closes.iter().map(|c| c.attempt).collect();
        self.batches
            .iter()
            .map(|b| b.attempt)
            .filter(|a| !closed.contains(a))
            .collect()
    }

    /// Windows are contiguous and non-overlapping, and each has exactly one close.
    pub fn assert_contiguous(&self, dataset: &str) {
        let closes = self.closes_of(dataset);
        let mut per_window: BTreeMap<(i64, i64), usize> = BTreeMap::new();
        for c in &closes {
            *per_window
                .entry((c.window.start, c.window.end))
                .or_default() += 1;
        }
        assert!(
            per_window.values().all(|n| *n == 1),
            "a window was closed twice: {per_window:?}"
        );
        for pair in closes.windows(2) {
            assert_eq!(
                pair[0].window.end, pair[1].window.start,
                "windows must be contiguous and in order"
            );
        }
        assert!(closes.iter().all(|c| c.window.start < c.window.end));
        let ids: BTreeSet<&Uuid> = self.ids.iter().collect();
        assert_eq!(ids.len(), self.ids.len(), "every event is stored once");
    }
}
