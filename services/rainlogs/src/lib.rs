//! The `rainlogs` binary's command line and process wiring (a library so tests can check that
//! the commands used in `deploy/` exist).

pub mod cli;
mod demo;
mod rotate;
mod run;
mod store_cli;
mod store_status;
mod store_watch;
