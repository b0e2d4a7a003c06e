//! Fault injection: what can go wrong, where, and how often.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::scenario::Plan;

/// Which kind of endpoint a fault targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointKind {
    /// Every endpoint below.
    #[default]
    Any,
    /// `GET /zones/{id}`.
    Zone,
    /// Both token verify routes.
    TokenVerify,
    /// `GET /zones/{id}/logs/received`.
    Logpull,
    /// `GET /zones/{id}/logs/received/fields`.
    LogpullFields,
    /// `GET /zones/{id}/logs/rayids/{ray}`.
    Rayids,
    /// Retention flag GET/POST.
    Retention,
    /// `GET /accounts/{id}/logs/control/cmb/config`.
    CmbConfig,
    /// Instant Logs job create/list.
    InstantLogsJobs,
    /// The Instant Logs WebSocket stream.
    InstantLogsStream,
    /// Logpush job routes (`/logpush/jobs[/{id}]`, `/logpush/ownership`).
    LogpushJobs,
    /// Batches Logpush jobs push (one fault is taken per batch when it is cut); only the push faults below fit.
    LogpushPush,
    /// `POST /graphql`.
    Graphql,
}

/// What happens when a fault fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// HTTP 429 (code 971) with `Retry-After`.
    RateLimit { retry_after_secs: u64 },
    /// An HTTP 5xx with a v4 error envelope.
    ServerError {
        #[serde(default = "default_5xx")]
        status: u16,
    },
    /// HTTP 408, as Cloudflare answers a Logpull stream idle for 30 s.
    IdleTimeout,
    /// The body is sent at this many bytes per second.
    SlowBody { bytes_per_sec: u64 },
    /// The TCP connection is dropped after this many body bytes.
    ResetAfterBytes { after_bytes: u64 },
    /// After this many lines the body ends with `Error streaming data` (status stays 200).
    StreamError { after_lines: u64 },
    /// The gzip body stops after this many compressed bytes, without the gzip trailer (HTTP framing is intact).
    TruncatedGzip { after_bytes: u64 },
    /// The WebSocket is dropped (no close frame) after this many frames.
    WsDrop { after_frames: u64 },
    /// The WebSocket goes silent after this many frames without closing.
    WsHalfOpen { after_frames: u64 },
    /// GraphQL `rate limiter budget depleted` with `extensions.code: "budget"`, delivered with this status (200 or 429).
    GraphqlBudget {
        #[serde(default = "default_budget_status")]
        status: u16,
    },
    /// The token stops being valid (applied immediately).
    RevokeToken { token: String },
    /// The zone moves to another plan (applied immediately; needs `zone`).
    PlanChange { plan: Plan },
    /// The Logpull retention flag is switched off (applied immediately; `zone` or all zones).
    RetentionOff,
    /// Logpush: once delivered, the batch is sent again this many simulated seconds later (at the earliest on the
    /// pusher's next tick, so after the batches delivered with it).
    Duplicate {
        #[serde(default)]
        after_secs: u64,
    },
    /// Logpush: the batch's first upload waits this many simulated seconds, so later batches arrive first.
    Delay { secs: u64 },
    /// Logpush: the batch is held back until a later batch of its job has been delivered or dropped (or 300
    /// simulated seconds passed), then sent.
    Reorder,
    /// Logpush: the batch is lost at once, as if its retries had run out.
    #[serde(rename = "drop")]
    DropBatch,
}

fn default_5xx() -> u16 {
    503
}

fn default_budget_status() -> u16 {
    200
}

/// One fault. `count` limits how many matching requests it hits; `probability` makes each match a coin flip.
/// With neither, it hits every matching request until cleared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Zone id, or `None` for every zone (and for zone-less endpoints).
    #[serde(default)]
    pub zone: Option<String>,
    /// Logpush pushes: only batches of jobs pushing this dataset; `None`: every job's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    #[serde(default)]
    pub endpoint: EndpointKind,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub probability: Option<f64>,
    #[serde(flatten)]
    pub kind: FaultKind,
}

impl Fault {
    /// Only for the batches of jobs pushing `dataset`.
    pub fn for_dataset(mut self, dataset: &str) -> Self {
        self.dataset = Some(dataset.to_owned());
        self
    }

    /// A fault on one endpoint kind of one zone that hits the next `count` requests.
    pub fn on_zone(zone: &str, endpoint: EndpointKind, count: u32, kind: FaultKind) -> Self {
        Self {
            zone: Some(zone.to_owned()),
            dataset: None,
            endpoint,
            count: Some(count),
            probability: None,
            kind,
        }
    }

    /// A fault on an endpoint kind of every zone that hits the next `count` requests.
    pub fn everywhere(endpoint: EndpointKind, count: u32, kind: FaultKind) -> Self {
        Self {
            zone: None,
            dataset: None,
            endpoint,
            count: Some(count),
            probability: None,
            kind,
        }
    }

    /// State changes (revocation, plan change, retention off) apply once instead of per request.
    pub fn is_state_change(&self) -> bool {
        matches!(
            self.kind,
            FaultKind::RevokeToken { .. } | FaultKind::PlanChange { .. } | FaultKind::RetentionOff
        )
    }

    pub fn validate(&self) -> Result<(), String> {
        if let Some(p) = self.probability
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(format!("fault probability {p} must be in (0, 1]"));
        }
        match &self.kind {
            FaultKind::ServerError { status } if !(500..=599).contains(status) => {
                Err(format!("server_error status {status} is not 5xx"))
            }
            FaultKind::GraphqlBudget { status } if *status != 200 && *status != 429 => {
                Err(format!("graphql_budget status {status} must be 200 or 429"))
            }
            FaultKind::SlowBody { bytes_per_sec: 0 } => {
                Err("slow_body bytes_per_sec must be > 0".into())
            }
            FaultKind::PlanChange { .. } if self.zone.is_none() => {
                Err("plan_change needs a zone".into())
            }
            FaultKind::Delay { secs: 0 } => Err("delay secs must be > 0".into()),
            _ => Ok(()),
        }
    }

    fn matches(&self, zone: Option<&str>, endpoint: EndpointKind) -> bool {
        let endpoint_ok = self.endpoint == EndpointKind::Any || self.endpoint == endpoint;
        let zone_ok = match (&self.zone, zone) {
            (None, _) => true,
            (Some(want), Some(got)) => want == got,
            (Some(_), None) => false,
        };
        endpoint_ok && zone_ok
    }
}

/// The set of armed per-request faults.
#[derive(Debug)]
pub(crate) struct FaultBook {
    armed: Vec<Fault>,
    rng: Rng,
}

impl FaultBook {
    pub fn new(seed: u64) -> Self {
        Self {
            armed: Vec::new(),
            rng: Rng::new(seed ^ 0x0fa0_17fa_0170),
        }
    }

    pub fn arm(&mut self, fault: Fault) {
        self.armed.push(fault);
    }

    pub fn clear(&mut self) {
        self.armed.clear();
    }

    pub fn armed(&self) -> Vec<Fault> {
        self.armed.clone()
    }

    /// The first armed fault that fires for this request (consuming one of its `count`).
    pub fn take(&mut self, zone: Option<&str>, endpoint: EndpointKind) -> Option<FaultKind> {
        self.take_for(zone, endpoint, None)
    }

    /// The fault, if any, for the next batch of `zone`'s job pushing `dataset`.
    pub fn take_push(&mut self, zone: &str, dataset: &str) -> Option<FaultKind> {
        self.take_for(Some(zone), EndpointKind::LogpushPush, Some(dataset))
    }

    fn take_for(
        &mut self,
        zone: Option<&str>,
        endpoint: EndpointKind,
        dataset: Option<&str>,
    ) -> Option<FaultKind> {
        let mut fired = None;
        for (i, fault) in self.armed.iter_mut().enumerate() {
            let targeted = fault.endpoint == endpoint;
            if !fault.matches(zone, endpoint)
                || !fits_endpoint(&fault.kind, endpoint, targeted)
                || fault
                    .dataset
                    .as_deref()
                    .is_some_and(|want| Some(want) != dataset)
            {
                continue;
            }
            if let Some(p) = fault.probability
                && !self.rng.chance(p)
            {
                continue;
            }
            if let Some(count) = fault.count.as_mut() {
                *count = count.saturating_sub(1);
            }
            fired = Some((i, fault.kind.clone()));
            break;
        }
        let (index, kind) = fired?;
        if self.armed[index].count == Some(0) {
            self.armed.remove(index);
        }
        Some(kind)
    }
}

/// Body-shaping faults only make sense where there is such a body; an `any` fault skips other endpoints.
/// `targeted`: the fault names this endpoint rather than `any`.
fn fits_endpoint(kind: &FaultKind, endpoint: EndpointKind, targeted: bool) -> bool {
    match kind {
        FaultKind::SlowBody { .. } | FaultKind::ResetAfterBytes { .. } => {
            matches!(endpoint, EndpointKind::Logpull | EndpointKind::Rayids)
        }
        FaultKind::StreamError { .. } | FaultKind::TruncatedGzip { .. } => {
            endpoint == EndpointKind::Logpull
        }
        FaultKind::WsDrop { .. } | FaultKind::WsHalfOpen { .. } => {
            endpoint == EndpointKind::InstantLogsStream
        }
        FaultKind::GraphqlBudget { .. } => endpoint == EndpointKind::Graphql,
        // A socket connect can be refused with 429 ("connection requests are rate limited"), but only by a fault
        // aimed at the stream: an `any` rate limit predates this and keeps leaving sockets alone.
        FaultKind::RateLimit { .. } => {
            endpoint != EndpointKind::LogpushPush
                && (endpoint != EndpointKind::InstantLogsStream || targeted)
        }
        // Pushes are answered by the destination, not by Cloudflare: its failures come from the receiver.
        FaultKind::ServerError { .. } | FaultKind::IdleTimeout => !matches!(
            endpoint,
            EndpointKind::InstantLogsStream | EndpointKind::LogpushPush
        ),
        FaultKind::Duplicate { .. }
        | FaultKind::Delay { .. }
        | FaultKind::Reorder
        | FaultKind::DropBatch => endpoint == EndpointKind::LogpushPush,
        FaultKind::RevokeToken { .. } | FaultKind::PlanChange { .. } | FaultKind::RetentionOff => {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_round_trips() {
        let json = r#"{"zone":"0123456789abcdef0123456789abcdef","endpoint":"logpull","count":2,"kind":"reset_after_bytes","after_bytes":1000}"#;
        let fault: Fault = serde_json::from_str(json).expect("parse");
        assert_eq!(fault.kind, FaultKind::ResetAfterBytes { after_bytes: 1000 });
        assert_eq!(fault.endpoint, EndpointKind::Logpull);
    }

    #[test]
    fn logpush_faults_only_hit_pushes() {
        let fault: Fault =
            serde_json::from_str(r#"{"endpoint":"any","count":1,"kind":"drop"}"#).expect("parse");
        assert_eq!(fault.kind, FaultKind::DropBatch);
        let delay: Fault =
            serde_json::from_str(r#"{"endpoint":"logpush_push","kind":"delay","secs":45}"#)
                .expect("parse");
        assert_eq!(delay.kind, FaultKind::Delay { secs: 45 });
        let mut book = FaultBook::new(1);
        book.arm(fault);
        book.arm(Fault::everywhere(
            EndpointKind::Any,
            1,
            FaultKind::ServerError { status: 503 },
        ));
        assert_eq!(
            book.take(Some("z"), EndpointKind::LogpushJobs),
            Some(FaultKind::ServerError { status: 503 })
        );
        assert!(book.take(Some("z"), EndpointKind::Logpull).is_none());
        assert_eq!(
            book.take(Some("z"), EndpointKind::LogpushPush),
            Some(FaultKind::DropBatch)
        );
    }

    #[test]
    fn a_push_fault_for_a_dataset_waits_for_that_datasets_batches() {
        let mut book = FaultBook::new(1);
        book.arm(
            Fault::on_zone("z", EndpointKind::LogpushPush, 1, FaultKind::DropBatch)
                .for_dataset("http_requests"),
        );
        assert_eq!(book.take_push("z", "firewall_events"), None);
        assert_eq!(book.take_push("y", "http_requests"), None);
        assert_eq!(
            book.take_push("z", "http_requests"),
            Some(FaultKind::DropBatch)
        );
        assert_eq!(book.take_push("z", "http_requests"), None, "used up");
        let parsed: Fault = serde_json::from_str(
            r#"{"zone":"z","dataset":"firewall_events","endpoint":"logpush_push","count":1,"kind":"reorder"}"#,
        )
        .expect("parse");
        assert_eq!(parsed.dataset.as_deref(), Some("firewall_events"));
    }

    #[test]
    fn count_is_consumed_then_fault_disappears() {
        let mut book = FaultBook::new(1);
        book.arm(Fault::on_zone(
            "z",
            EndpointKind::Logpull,
            2,
            FaultKind::IdleTimeout,
        ));
        assert!(book.take(Some("z"), EndpointKind::Zone).is_none());
        assert!(book.take(Some("other"), EndpointKind::Logpull).is_none());
        assert_eq!(
            book.take(Some("z"), EndpointKind::Logpull),
            Some(FaultKind::IdleTimeout)
        );
        assert_eq!(
            book.take(Some("z"), EndpointKind::Logpull),
            Some(FaultKind::IdleTimeout)
        );
        assert!(book.take(Some("z"), EndpointKind::Logpull).is_none());
    }
}
