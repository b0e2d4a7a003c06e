//! The store while the process runs: whether each provider answers, whether it still enforces
//! its protections, and (with two providers) copying what one of them missed from the other.
//! Readiness, `/ready`'s `info.store`, metrics and logs all read the same state; with two
//! providers each pass is also published for zone health (`store_status`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge};
use rainlogs_bus::CancellationToken;
use rainlogs_runtime::ObjectStore;
use rainlogs_store::{ObjectKey, Posture, Replicated, Side, Store, StoreError};
use rainlogs_telemetry::{Health, MetricFamily, Telemetry};
use serde::Serialize;

use crate::store_status::StatusWriter;

/// How often each provider is asked whether it answers, and the repair queue drained.
const PASS_EVERY: Duration = Duration::from_secs(10);
/// How often the protections are tried again (each try writes a few tiny probe objects).
const PROBE_EVERY: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug, Default, Serialize)]
struct ProviderState {
    role: &'static str,
    location: String,
    answering: bool,
    /// Why it did not answer, or what it stopped enforcing.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
struct WatchState {
    providers: Vec<ProviderState>,
    /// Objects one provider lacks, waiting to be copied from the other.
    #[serde(skip_serializing_if = "Option::is_none")]
    repair_backlog: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_repair: Option<String>,
}

#[derive(Clone)]
struct Metrics {
    up: Gauge<u64>,
    protection: Gauge<u64>,
    backlog: Gauge<u64>,
    repaired: Counter<u64>,
    incidents: Counter<u64>,
}

pub const PROVIDER_UP: MetricFamily = MetricFamily::gauge(
    "rainlogs_store_provider_up",
    &["role"],
    "1 while the storage provider answers, else 0",
);
pub const PROTECTION: MetricFamily = MetricFamily::gauge(
    "rainlogs_store_protection",
    &["role", "check"],
    "1 when the storage provider was last seen to enforce the protection, else 0",
);
pub const REPAIR_BACKLOG: MetricFamily = MetricFamily::gauge(
    "rainlogs_store_repair_backlog",
    &[],
    "objects one provider lacks, waiting to be copied from the other",
);
pub const REPAIRED: MetricFamily = MetricFamily::counter(
    "rainlogs_store_repaired",
    &["to"],
    "objects copied to the provider that lacked them",
);
pub const REPAIR_INCIDENTS: MetricFamily = MetricFamily::counter(
    "rainlogs_store_repair_incidents",
    &[],
    "keys whose bytes differ between the providers (left as found: investigate)",
);

/// Every family the process reports about its object storage.
pub const FAMILIES: &[MetricFamily] = &[
    PROVIDER_UP,
    PROTECTION,
    REPAIR_BACKLOG,
    REPAIRED,
    REPAIR_INCIDENTS,
];

impl Metrics {
    fn new(telemetry: &Telemetry) -> Self {
        let meter = telemetry.meter("store");
        Self {
            up: PROVIDER_UP.u64_gauge(&meter),
            protection: PROTECTION.u64_gauge(&meter),
            backlog: REPAIR_BACKLOG.u64_gauge(&meter),
            repaired: REPAIRED.u64_counter(&meter),
            incidents: REPAIR_INCIDENTS.u64_counter(&meter),
        }
    }

    fn record_posture(&self, posture: &Posture) {
        for provider in &posture.providers {
            for (check, status) in [
                ("object_lock", &provider.object_lock),
                ("per_object_retention", &provider.per_object_retention),
                ("versioning", &provider.versioning),
                ("conditional_put", &provider.conditional_put),
                (
                    "conditional_multipart_complete",
                    &provider.conditional_multipart_complete,
                ),
                ("checksum_verification", &provider.checksum_verification),
            ] {
                self.protection.record(
                    u64::from(status.is_enforced()),
                    &[
                        KeyValue::new("role", provider.role.as_str()),
                        KeyValue::new("check", check),
                    ],
                );
            }
        }
    }
}

/// Starts watching `store`: readiness (ready while one provider answers, `degraded` while only
/// one does), `/ready` `info.store`, metrics, and the repair loop; `status`, when given, gets
/// every pass of a replicated store. Probes the protections once before it returns, so the
/// first `/ready` already shows them.
pub async fn start(
    store: &ObjectStore,
    telemetry: &Telemetry,
    health: &Health,
    status: Option<StatusWriter>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let metrics = Metrics::new(telemetry);
    let state = Arc::new(Mutex::new(WatchState::default()));
    let posture = store.store.probe().await;
    for warning in &posture.warnings {
        tracing::warn!(%warning, "storage posture");
    }
    metrics.record_posture(&posture);
    health.set_info(
        "store_posture",
        serde_json::to_value(&posture).unwrap_or_default(),
    );
    let watch = Watch {
        store: store.clone(),
        metrics,
        state: Arc::clone(&state),
        health: health.clone(),
        lost_protection: Vec::new(),
        status,
    };
    let readable = Arc::clone(&state);
    health.add_info_source("store", move || {
        let state = lock(&readable).clone();
        async move { serde_json::to_value(state).unwrap_or_default() }.boxed()
    });
    let checked = store.clone();
    health.add_degradable_check("store", move || {
        let checked = checked.clone();
        async move { readiness(&checked).await }.boxed()
    });
    tokio::spawn(watch.run(shutdown))
}

fn lock(state: &Mutex<WatchState>) -> std::sync::MutexGuard<'_, WatchState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Watch {
    store: ObjectStore,
    metrics: Metrics,
    state: Arc<Mutex<WatchState>>,
    health: Health,
    /// (role, check) pairs already reported as no longer enforced, so the alarm is logged once.
    lost_protection: Vec<(String, String)>,
    /// Publishes each pass of a replicated store for zone health.
    status: Option<StatusWriter>,
}

impl Watch {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut pass = tokio::time::interval(PASS_EVERY);
        pass.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick of each fires at once; the probe already ran in `start`.
        probe.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = pass.tick() => self.pass().await,
                _ = probe.tick() => self.probe().await,
            }
        }
    }

    /// Asks each provider whether it answers; with two, copies what one missed.
    async fn pass(&mut self) {
        let answers = providers(&self.store).await;
        let previous = lock(&self.state).providers.clone();
        for provider in &answers {
            self.metrics.up.record(
                u64::from(provider.answering),
                &[KeyValue::new("role", provider.role)],
            );
            let was_answering = previous
                .iter()
                .find(|p| p.role == provider.role)
                .is_none_or(|p| p.answering);
            match (&provider.problem, was_answering, provider.answering) {
                (Some(problem), true, false) => tracing::error!(
                    role = provider.role,
                    location = %provider.location,
                    %problem,
                    "storage provider stopped answering"
                ),
                (_, false, true) => tracing::info!(
                    role = provider.role,
                    location = %provider.location,
                    "storage provider answers again"
                ),
                _ => {}
            }
        }
        let answered: Vec<(&str, bool)> = answers.iter().map(|p| (p.role, p.answering)).collect();
        lock(&self.state).providers = answers;
        if let Store::Replicated(replicated) = &self.store.store {
            self.repair(replicated).await;
            if let Some(status) = &mut self.status {
                status
                    .report(&answered, replicated.repair_queue_file())
                    .await;
            }
        }
    }

    async fn repair(&self, replicated: &Replicated) {
        let queue = replicated.repair_queue_file();
        let waiting = match queue.pending().await {
            Ok(pending) => pending.len(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the store's repair queue");
                return;
            }
        };
        if waiting == 0 {
            self.metrics.backlog.record(0, &[]);
            lock(&self.state).repair_backlog = Some(0);
            return;
        }
        let summary = match replicated.repair_queue(queue).await {
            Ok(report) => {
                for (_, to) in &report.copied {
                    self.metrics
                        .repaired
                        .add(1, &[KeyValue::new("to", side_name(*to))]);
                }
                for incident in &report.incidents {
                    self.metrics.incidents.add(1, &[]);
                    tracing::error!(key = %incident.key, provider = %incident.provider, "the providers hold different bytes under one key; nothing was changed: investigate");
                }
                let summary = format!(
                    "copied {}, already consistent {}, gone from both {}, past retention (not copied) {}, incidents {}, still failing {}",
                    report.copied.len(),
                    report.consistent,
                    report.missing_on_both.len(),
                    report.past_retention.len(),
                    report.incidents.len(),
                    report.failed.len()
                );
                if report.failed.is_empty() {
                    tracing::info!(%summary, "store repair pass");
                } else {
                    tracing::warn!(%summary, first_failure = ?report.failed.first(), "store repair pass: some objects wait for their provider");
                }
                summary
            }
            Err(e) => {
                tracing::warn!(error = %e, "store repair pass failed; retrying next pass");
                format!("failed: {e}")
            }
        };
        let left = queue.pending().await.map(|p| p.len()).unwrap_or(waiting);
        self.metrics.backlog.record(left as u64, &[]);
        let mut state = lock(&self.state);
        state.repair_backlog = Some(left);
        state.last_repair = Some(summary);
    }

    /// Tries the protections again; a provider that stops enforcing one is an alarm.
    async fn probe(&mut self) {
        let posture = self.store.store.probe().await;
        self.metrics.record_posture(&posture);
        for provider in &posture.providers {
            for (check, status) in [
                ("object_lock", &provider.object_lock),
                ("per_object_retention", &provider.per_object_retention),
                ("conditional_put", &provider.conditional_put),
            ] {
                let id = (provider.role.as_str().to_owned(), check.to_owned());
                let lost = self.lost_protection.contains(&id);
                if !status.is_enforced() && !lost {
                    tracing::error!(role = provider.role.as_str(), location = %provider.location, check, detail = %status.detail, "storage provider no longer shows it enforces a protection");
                    self.lost_protection.push(id);
                } else if status.is_enforced() && lost {
                    tracing::info!(
                        role = provider.role.as_str(),
                        check,
                        "storage provider enforces the protection again"
                    );
                    self.lost_protection.retain(|held| *held != id);
                }
            }
        }
        self.health.set_info(
            "store_posture",
            serde_json::to_value(&posture).unwrap_or_default(),
        );
    }
}

/// A HEAD of a key that need not exist on each provider: any answer (found or not) proves it
/// is reachable and the credentials work.
async fn providers(store: &ObjectStore) -> Vec<ProviderState> {
    let key = match ObjectKey::new(format!(
        "{}_rainlogs-ready",
        key_prefix(store.prefix.as_str())
    )) {
        Ok(key) => key,
        Err(e) => {
            return vec![ProviderState {
                role: "only",
                location: String::new(),
                answering: false,
                problem: Some(e.to_string()),
            }];
        }
    };
    match &store.store {
        Store::Single(backend) => {
            vec![state("only", backend.location(), backend.head(&key).await)]
        }
        Store::Replicated(replicated) => {
            let (primary, secondary) = (
                replicated.side(Side::Primary),
                replicated.side(Side::Secondary),
            );
            let (p, s) = tokio::join!(primary.head(&key), secondary.head(&key));
            vec![
                state("primary", primary.location(), p),
                state("secondary", secondary.location(), s),
            ]
        }
    }
}

/// Ready while any provider answers; degraded while only one of two does.
async fn readiness(store: &ObjectStore) -> Result<Option<String>, String> {
    let providers = providers(store).await;
    let down: Vec<String> = providers
        .iter()
        .filter(|p| !p.answering)
        .map(|p| {
            format!(
                "{} {} does not answer: {}",
                p.role,
                p.location,
                p.problem.as_deref().unwrap_or("unknown")
            )
        })
        .collect();
    if down.is_empty() {
        Ok(None)
    } else if down.len() < providers.len() {
        Ok(Some(format!(
            "{}; writes go to the other provider and are copied back when it returns",
            down.join("; ")
        )))
    } else {
        Err(down.join("; "))
    }
}

fn state<T>(role: &'static str, location: String, answer: Result<T, StoreError>) -> ProviderState {
    ProviderState {
        role,
        location,
        answering: answer.is_ok(),
        problem: answer.err().map(|e| e.to_string()),
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Primary => "primary",
        Side::Secondary => "secondary",
    }
}

fn key_prefix(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    }
}
