//! Listens for projection commits (`rainlogs_db::PROJECTED_CHANNEL`: `<projection> <tenant>`,
//! sent by PostgreSQL at commit) and tells the caches of this process.
//!
//! PostgreSQL delivers a notification only to a connection that is listening. When the
//! listening connection is lost, what was announced meanwhile is unknown, so the watchers are
//! reset; while nothing listens they cache nothing.

use std::sync::Arc;
use std::time::Duration;

use rainlogs_bus::CancellationToken;
use rainlogs_db::{PROJECTED_CHANNEL, PgPool};
use sqlx::postgres::PgListener;

/// Pause before listening again after the listener failed outright.
const RELISTEN_PAUSE: Duration = Duration::from_secs(1);

/// Something that keeps answers derived from projections.
pub trait Watcher: Send + Sync {
    /// `projection` committed a change for `tenant`.
    fn changed(&self, projection: &str, tenant: &str);
    /// Forget everything; cache again only if `listening`.
    fn reset(&self, listening: bool);
}

fn notified(watchers: &[Arc<dyn Watcher>], payload: &str) {
    match payload.split_once(' ') {
        Some((projection, tenant)) => watchers.iter().for_each(|w| w.changed(projection, tenant)),
        // Not a payload this code sends: be safe.
        None => watchers.iter().for_each(|w| w.reset(true)),
    }
}

/// Listens until `shutdown`; never fails (a lost listener turns caching off until it listens
/// again).
pub async fn follow(pool: PgPool, watchers: Vec<Arc<dyn Watcher>>, shutdown: CancellationToken) {
    loop {
        match listen(&pool, &watchers, &shutdown).await {
            Ok(()) => return,
            Err(e) => {
                watchers.iter().for_each(|w| w.reset(false));
                tracing::warn!(error = %e, "listening for projection commits failed; caches are off until it listens again");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RELISTEN_PAUSE) => {}
        }
    }
}

async fn listen(
    pool: &PgPool,
    watchers: &[Arc<dyn Watcher>],
    shutdown: &CancellationToken,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(PROJECTED_CHANNEL).await?;
    watchers.iter().for_each(|w| w.reset(true));
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            next = listener.try_recv() => next?,
        };
        match next {
            Some(notification) => notified(watchers, notification.payload()),
            // The connection was lost and listens again: what was announced in between is
            // unknown.
            None => watchers.iter().for_each(|w| w.reset(true)),
        }
    }
}
