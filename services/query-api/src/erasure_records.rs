//! Every log of an erased tenant ends with an `erasure` entry (docs/FORMAT.md). The erasure asks
//! the sealer for them at once; this also asks again, periodically, for every log of an erased
//! tenant that the chain projection does not show closed yet, so a request lost to a failed
//! publish or a crash is made up for. The sealer seals one erasure per log and drops repeats.

use std::time::Duration;

use rainlogs_bus::CancellationToken;
use rainlogs_schemas::events::{ErasureRequested, Event};
use rainlogs_schemas::{Actor, Envelope, subjects};

use crate::state::{AppState, SharedState};

/// Reason given when a request is made up for (the deletion's own reason is not kept).
const CATCH_UP_REASON: &str = "tenant erased (GDPR Art. 17)";

/// Requests the erasure entry of every log of `tenant` (or of every erased tenant) that has
/// none yet; returns how many were requested. Failures are logged: the next round retries.
pub async fn request(state: &AppState, tenant: Option<&str>, actor: &Actor, reason: &str) -> usize {
    let logs: Result<Vec<(String, String)>, sqlx::Error> = sqlx::query_as(
        "SELECT t.tenant_id, z.zone_id FROM tenants t \
         JOIN (SELECT tenant_id, zone_id FROM zones \
               UNION SELECT DISTINCT tenant_id, zone_id FROM jobs) z USING (tenant_id) \
         WHERE t.deleted_at IS NOT NULL AND ($1::TEXT IS NULL OR t.tenant_id = $1) \
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.tenant_id = t.tenant_id \
                           AND j.zone_id = z.zone_id AND j.kind = 'erasure') \
         ORDER BY 1, 2",
    )
    .bind(tenant)
    .fetch_all(&state.db)
    .await;
    let logs = match logs {
        Ok(logs) => logs,
        Err(e) => {
            tracing::error!(?tenant, error = %e, "cannot list the logs of erased tenants");
            return 0;
        }
    };
    let mut requested = 0;
    for (tenant, zone) in logs {
        let event = Event::ErasureRequested(ErasureRequested {
            reason: reason.to_owned(),
        });
        let mut envelope = Envelope::new(&tenant, Some(zone.clone()), actor.clone(), event);
        envelope.correlation = crate::events::correlation();
        match state
            .bus
            .publish(&subjects::archive(&zone), &envelope)
            .await
        {
            Ok(_) => requested += 1,
            Err(e) => {
                tracing::error!(%tenant, %zone, error = %e, "erasure entry not requested; retried next round");
            }
        }
    }
    requested
}

/// Every `every`, requests what is still missing, until `shutdown`.
pub async fn follow(state: SharedState, every: Duration, shutdown: CancellationToken) {
    let actor = Actor::service(crate::NAME);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let requested = request(&state, None, &actor, CATCH_UP_REASON).await;
        if requested > 0 {
            tracing::info!(
                requested,
                "erasure entries requested again for erased tenants' logs"
            );
        }
    }
}
