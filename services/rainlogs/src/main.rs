//! `rainlogs`: one binary, every service.

use clap::Parser;
use rainlogs::cli;

fn main() -> std::process::ExitCode {
    // Two TLS providers are compiled in (ring via sqlx/async-nats, and others); without a process
    // default async-nats panics on its first TLS connection.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("rainlogs: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rainlogs: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
