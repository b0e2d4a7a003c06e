//! `rainlogs-verify`: see the crate README for usage, checks, reason codes and exit codes.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use rainlogs_verify::cli::{Args, run};

fn main() -> ExitCode {
    let args = Args::parse();
    let invocation = match args.into_invocation() {
        Ok(invocation) => invocation,
        Err(error) => {
            eprintln!("rainlogs-verify: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rainlogs-verify: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(run(&invocation));
    let text = if invocation.json {
        format!("{:#}\n", report.to_json())
    } else {
        report.to_human()
    };
    // A closed pipe (e.g. `| head`) must not turn a verdict into a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    ExitCode::from(report.exit_code())
}
