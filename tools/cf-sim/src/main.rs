//! `cf-sim`: run the Cloudflare API simulator, or print an example scenario.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use cf_sim::{ClockStart, EXAMPLE_SCENARIO_TOML, Scenario, SimOptions, Simulator};
use clap::{Parser, Subcommand};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Parser)]
#[command(
    name = "cf-sim",
    about = "Deterministic Cloudflare API simulator (Logpull, Instant Logs, GraphQL)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Scenario TOML file (see `cf-sim example-scenario`); the built-in example when absent.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Traffic seed (overrides the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Start the simulated clock at this RFC 3339 time (overrides the scenario's `[clock]`).
    #[arg(long, value_parser = parse_rfc3339)]
    now: Option<OffsetDateTime>,
    /// With --now: keep the clock still until POST /__sim/clock moves it.
    #[arg(long, requires = "now")]
    frozen: bool,
    /// Also serve TLS here with a self-signed certificate: Instant Logs destinations become wss:// and plain
    /// ws:// connects get 301. Clients must trust the certificate (see --wss-cert-out).
    #[arg(long)]
    wss_listen: Option<SocketAddr>,
    /// With --wss-listen: write the generated certificate (PEM) to this file.
    #[arg(long, requires = "wss_listen")]
    wss_cert_out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a commented scenario with one zone per plan.
    ExampleScenario,
}

fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("not an RFC 3339 time: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::ExampleScenario) = cli.command {
        print!("{EXAMPLE_SCENARIO_TOML}");
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let scenario = match &cli.scenario {
        None => Scenario::example(),
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| Scenario::from_toml(&text).map_err(|e| e.to_string()))
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cf-sim: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let clock = cli.now.map(|t| {
        if cli.frozen {
            ClockStart::FrozenAt(t)
        } else {
            ClockStart::RunningFrom(t)
        }
    });
    let options = SimOptions {
        listen: cli.listen,
        seed: cli.seed,
        clock,
        wss_listen: cli.wss_listen,
    };
    let sim = match Simulator::start(scenario, options).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("cf-sim: {e}");
            return ExitCode::from(1);
        }
    };
    if let (Some(path), Some(pem)) = (&cli.wss_cert_out, sim.wss_certificate_pem())
        && let Err(e) = std::fs::write(path, pem)
    {
        eprintln!("cf-sim: cannot write {}: {e}", path.display());
        sim.shutdown().await;
        return ExitCode::from(1);
    }
    println!(
        "cf-sim listening on {} (API base {})",
        sim.addr(),
        sim.base_url()
    );
    if let Some(wss) = sim.wss_addr() {
        println!("cf-sim Instant Logs sockets on wss://{wss}");
    }
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}
