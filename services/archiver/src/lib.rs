//! The archiver service. It attaches to its durable consumer `archiver` on RL_BATCH; processing
//! lands with its issue, until then every event stays unacknowledged in the stream.

use rainlogs_runtime::{ServiceContext, ServiceError, hold_subjects};

pub const NAME: &str = "archiver";

pub async fn run(ctx: ServiceContext) -> Result<(), ServiceError> {
    hold_subjects(&ctx, NAME, "archiver").await
}
