//! The reaper service. It attaches to its durable consumer `reaper` on RL_CHAIN; processing
//! lands with its issue, until then every event stays unacknowledged in the stream.

use rainlogs_runtime::{ServiceContext, ServiceError, hold_subjects};

pub const NAME: &str = "reaper";

pub async fn run(ctx: ServiceContext) -> Result<(), ServiceError> {
    hold_subjects(&ctx, NAME, "reaper").await
}
