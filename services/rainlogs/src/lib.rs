//! The `rainlogs` binary's command line and process wiring (a library so tests can check that
//! the commands used in `deploy/` exist).

pub mod cli;
mod demo;
mod index_rebuild;
mod rotate;
mod run;
mod search_cli;
mod search_output;
mod store_cli;
mod store_status;
mod store_watch;

/// Every metric family a process running all services exposes on `/metrics`, by who reports
/// it: each service (its descriptor), then what the process reports for every projection and
/// durable consumer it runs, and for its object storage. `docs/METRICS.md` is made from this.
pub fn metric_families() -> Vec<(&'static str, &'static [rainlogs_telemetry::MetricFamily])> {
    let mut families: Vec<_> = cli::ServiceName::ALL
        .iter()
        .map(|service| (service.0.name, service.0.metrics))
        .collect();
    families.push(("projections", rainlogs_db::METRIC_FAMILIES));
    families.push(("consumers", rainlogs_runtime::consumers::FAMILIES));
    families.push(("store", store_watch::FAMILIES));
    families
}
