//! `rainlogs run --demo`: Cloudflare is the simulator (`tools/cf-sim`) with its example scenario
//! (one zone per plan), a demo tenant and its zones are registered through the REST API like a
//! customer would, and the API URL, a key and the exact `rainlogs-verify` command are printed.
//! The zone whose account keeps its metadata in the EU (Logpull is closed to it) is collected
//! with Logpush: the simulator pushes to the ingest endpoint on loopback.
//!
//! The tenant and its key are kept in `<data_dir>/demo.json`, so a restart on the same data
//! continues the same demo instead of registering zones a second time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use cf_sim::{ClockStart, RunningSim, Scenario, SimOptions, Simulator};
use rainlogs_config::Config;
use serde::{Deserialize, Serialize};

/// The example scenario's token that may read every zone's logs and analytics.
const DEMO_TOKEN: &str = "cfut_full_access_token_0000000000000000";

/// Starts the simulator on the real clock and points the configuration at it. Windows of the
/// last few minutes are backfilled, so archives appear within minutes.
pub async fn start_simulator(config: &mut Config) -> anyhow::Result<RunningSim> {
    let sim = Simulator::start(
        Scenario::example(),
        SimOptions {
            clock: Some(ClockStart::Real),
            ..SimOptions::default()
        },
    )
    .await
    .context("starting the Cloudflare simulator")?;
    config.cloudflare.base_url = sim.base_url();
    config.collector.backfill = Duration::from_secs(15 * 60);
    if config.ingest.listen.is_none() {
        // A free loopback port for the pushes (the simulator pushes plain HTTP only there).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a port for the ingest endpoint")?
            .port();
        config.ingest.listen = Some(([127, 0, 0, 1], port).into());
    }
    if let (None, Some(listen)) = (&config.ingest.public_url, config.ingest.listen) {
        config.ingest.public_url = Some(format!("http://{listen}"));
    }
    // Pushed windows are sealed a minute and a half after they end, not ten minutes.
    config.collector.logpush_lateness = Duration::from_secs(90);
    Ok(sim)
}

#[derive(Serialize, Deserialize)]
struct DemoState {
    tenant: String,
    api_key: String,
}

/// Registers the demo tenant and zones (once per data directory) and prints how to use them.
pub async fn onboard(config: &Config) -> anyhow::Result<()> {
    let api = format!("http://{}", config.api.listen);
    let client = reqwest::Client::new();
    wait_for_api(&client, &api).await?;
    let state_file = config.service.data_dir.join("demo.json");
    let state = match std::fs::read(&state_file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a demo state file", state_file.display()))?,
        Err(_) => {
            let state = register(&client, &api).await?;
            std::fs::write(&state_file, serde_json::to_vec_pretty(&state)?)
                .with_context(|| format!("writing {}", state_file.display()))?;
            state
        }
    };
    print_usage(config, &api, &state)
}

async fn wait_for_api(client: &reqwest::Client, api: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        if client.get(format!("{api}/health")).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the API at {api} never answered")
}

async fn register(client: &reqwest::Client, api: &str) -> anyhow::Result<DemoState> {
    let suffix = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let response = client
        .post(format!("{api}/customers"))
        .json(&serde_json::json!({
            "name": "Demo GmbH",
            "email": format!("demo-{suffix}@rainlogs.example"),
        }))
        .send()
        .await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    if !status.is_success() {
        bail!("registering the demo tenant: {status} {body}");
    }
    let tenant = body["customer"]["id"]
        .as_str()
        .context("no customer id in the answer")?
        .to_owned();
    let api_key = body["api_key"]["key"]
        .as_str()
        .context("no API key in the answer")?
        .to_owned();
    for zone in &Scenario::example().zones {
        // Logpush is the complete option for an EU-only account; the others use their plan's.
        let method = (zone.cmb_region.as_deref() == Some("eu")).then_some("logpush_http");
        let response = client
            .post(format!("{api}/api/v1/zones"))
            .bearer_auth(&api_key)
            .json(&serde_json::json!({
                "zone_id": zone.id,
                "cf_api_token": DEMO_TOKEN,
                "method": method,
            }))
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status.is_success() {
            println!(
                "demo: zone {} ({}) added: {}",
                zone.name,
                zone.id,
                body["method"].as_str().unwrap_or("?")
            );
        } else {
            println!(
                "demo: zone {} ({}) refused: {status} {body}",
                zone.name, zone.id
            );
        }
    }
    Ok(DemoState { tenant, api_key })
}

fn print_usage(config: &Config, api: &str, state: &DemoState) -> anyhow::Result<()> {
    let signing_key = config
        .secrets
        .signing_key
        .as_ref()
        .context("secrets.signing_key is not set")?;
    let verifier = rainlogs_sealer::verifier_key_text(signing_key.expose())?;
    let store = absolute(Path::new(&config.store.url));
    let enterprise = Scenario::example()
        .zones
        .iter()
        .find(|z| matches!(z.plan, cf_sim::Plan::Enterprise))
        .map(|z| z.id.clone())
        .unwrap_or_default();
    println!(
        "\nRainLogs demo\n  API:      {api}  (docs: {api}/openapi.json)\n  API key:  {key}\n  \
         try:      curl -s -H 'Authorization: Bearer {key}' {api}/api/v1/zones\n  \
         verify (once the first checkpoint is written, a few minutes after start):\n    \
         cargo run -q -p rainlogs-verify -- --store {store} --tenant {tenant} --zone {enterprise} \
         --trusted-key '{verifier}'\n",
        key = state.api_key,
        store = store.display(),
        tenant = state.tenant,
    );
    Ok(())
}

fn absolute(path: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_owned())
}
