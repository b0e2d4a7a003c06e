//! Mutable simulator state shared by every request handler.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::SimClock;
use crate::fault::{Fault, FaultBook, FaultKind};
use crate::instant_logs::Sessions;
use crate::lock;
use crate::logpush::LogpushState;
use crate::ratelimit::{PerIpLimiter, RateLimiter, TimeoutTracker};
use crate::rng::hash_words;
use crate::scenario::{
    GlobalKeySpec, InstantLogsSpec, LimitsSpec, LogpullSpec, LogpushSpec, Plan, Scenario,
    TokenSpec, ZoneSpec,
};
use crate::traffic::ZoneTraffic;

/// One request the simulator answered, for `GET /__sim/requests`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// Raw query string (without `?`), empty when absent.
    pub query: String,
    pub status: u16,
    /// Simulated time of the request, RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Zone the request addressed, if any.
    pub zone: Option<String>,
    /// The fault that shaped the response, if any (its `kind` name).
    pub fault: Option<String>,
}

/// Zone properties that faults and API calls can change.
#[derive(Clone, Debug)]
pub(crate) struct ZoneDynamic {
    pub spec: ZoneSpec,
}

#[derive(Clone, Debug)]
pub(crate) struct TokenState {
    pub spec: TokenSpec,
    pub revoked: bool,
}

pub(crate) struct Shared {
    pub seed: u64,
    pub clock: SimClock,
    pub logpull: LogpullSpec,
    pub limits: LimitsSpec,
    pub instant_logs: InstantLogsSpec,
    pub graphql_sample_above: u64,
    pub traffic: HashMap<String, Arc<ZoneTraffic>>,
    pub zones: Mutex<HashMap<String, ZoneDynamic>>,
    pub tokens: Mutex<HashMap<String, TokenState>>,
    pub keys: Vec<GlobalKeySpec>,
    pub faults: Mutex<FaultBook>,
    pub limiter: Mutex<RateLimiter>,
    pub ip_limiter: Mutex<PerIpLimiter>,
    pub logpull_timeouts: Mutex<TimeoutTracker>,
    pub requests: Mutex<Vec<RequestRecord>>,
    pub sessions: Mutex<Sessions>,
    pub logpush_spec: LogpushSpec,
    pub logpush: Mutex<LogpushState>,
    /// The client pushes and destination checks use, made on first use.
    pub logpush_client: OnceLock<Option<reqwest::Client>>,
    /// `ws://host:port`, or `wss://host:port` when the TLS listener runs; known once the listeners are bound.
    pub ws_base: OnceLock<String>,
    /// Set when the TLS listener runs: Instant Logs sockets are then only accepted over TLS.
    pub wss: OnceLock<()>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    request_counter: AtomicU64,
}

impl Shared {
    pub fn new(
        scenario: &Scenario,
        seed: u64,
        clock: SimClock,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let traffic = scenario
            .zones
            .iter()
            .map(|z| {
                (
                    z.id.clone(),
                    Arc::new(ZoneTraffic::new(
                        seed,
                        &z.id,
                        &z.name,
                        z.rate,
                        z.firewall_rate,
                    )),
                )
            })
            .collect();
        let zones = scenario
            .zones
            .iter()
            .map(|z| (z.id.clone(), ZoneDynamic { spec: z.clone() }))
            .collect();
        let tokens = scenario
            .tokens
            .iter()
            .map(|t| {
                (
                    t.value.clone(),
                    TokenState {
                        spec: t.clone(),
                        revoked: false,
                    },
                )
            })
            .collect();
        let shared = Self {
            seed,
            clock,
            logpull: scenario.logpull.clone(),
            limits: scenario.limits.clone(),
            instant_logs: scenario.instant_logs.clone(),
            graphql_sample_above: scenario.graphql.sample_above,
            traffic,
            zones: Mutex::new(zones),
            tokens: Mutex::new(tokens),
            keys: scenario.keys.clone(),
            faults: Mutex::new(FaultBook::new(seed)),
            limiter: Mutex::new(RateLimiter::default()),
            ip_limiter: Mutex::new(PerIpLimiter::default()),
            logpull_timeouts: Mutex::new(TimeoutTracker::default()),
            requests: Mutex::new(Vec::new()),
            sessions: Mutex::new(Sessions::default()),
            logpush_spec: scenario.logpush.clone(),
            logpush: Mutex::new(LogpushState::default()),
            logpush_client: OnceLock::new(),
            ws_base: OnceLock::new(),
            wss: OnceLock::new(),
            shutdown,
            request_counter: AtomicU64::new(0),
        };
        for fault in &scenario.faults {
            shared.inject(fault.clone());
        }
        shared
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// A fresh seed per request: randomised line order and sampling differ between calls.
    pub fn request_seed(&self) -> u64 {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        hash_words(&[self.seed, n, 0x7265_7175])
    }

    pub fn zone(&self, id: &str) -> Option<ZoneSpec> {
        lock(&self.zones).get(id).map(|z| z.spec.clone())
    }

    pub fn zone_traffic(&self, id: &str) -> Option<Arc<ZoneTraffic>> {
        self.traffic.get(id).cloned()
    }

    pub fn set_retention(&self, zone: &str, flag: bool) {
        if let Some(z) = lock(&self.zones).get_mut(zone) {
            z.spec.retention = flag;
        }
    }

    pub fn set_plan(&self, zone: &str, plan: Plan) {
        if let Some(z) = lock(&self.zones).get_mut(zone) {
            z.spec.plan = plan;
        }
    }

    /// Apply a state change at once, or arm a per-request fault.
    pub fn inject(&self, fault: Fault) {
        match &fault.kind {
            FaultKind::RevokeToken { token } => {
                if let Some(t) = lock(&self.tokens).get_mut(token) {
                    t.revoked = true;
                }
            }
            FaultKind::PlanChange { plan } => {
                if let Some(zone) = &fault.zone {
                    self.set_plan(zone, *plan);
                }
            }
            FaultKind::RetentionOff => {
                let mut zones = lock(&self.zones);
                for (id, z) in zones.iter_mut() {
                    if fault.zone.as_ref().is_none_or(|want| want == id) {
                        z.spec.retention = false;
                    }
                }
            }
            _ => lock(&self.faults).arm(fault),
        }
    }

    pub fn record_request(&self, record: RequestRecord) {
        lock(&self.requests).push(record);
    }
}
