//! The sealer service. It attaches to its durable consumer `sealer` on RL_ARCHIVE; processing
//! lands with its issue, until then every event stays unacknowledged in the stream.

use rainlogs_runtime::{ServiceContext, ServiceError, hold_subjects};

pub const NAME: &str = "sealer";

pub async fn run(ctx: ServiceContext) -> Result<(), ServiceError> {
    hold_subjects(&ctx, NAME, "sealer").await
}
