//! `api_legal_holds`, from `ctl.legal_hold_*` and `ctl.tenant_deleted`: the holds the API lists,
//! with their reasons. The reaper keeps its own projection of the same events for deletion.

use rainlogs_db::Projection;
use rainlogs_schemas::{Envelope, Event};
use sqlx::PgConnection;

/// The reason a legal hold of an erased tenant shows instead of its own.
const ERASED_REASON: &str = "erased with the tenant";

#[derive(Debug, Default, Clone, Copy)]
pub struct LegalHoldListProjection;

impl Projection for LegalHoldListProjection {
    const NAME: &'static str = "api-legal-holds";
    const TABLES: &'static [&'static str] = &["api_legal_holds"];
    const STREAM: &'static str = rainlogs_bus::definitions::CONTROL;

    async fn apply(
        &self,
        conn: &mut PgConnection,
        _sequence: u64,
        event: &Envelope,
    ) -> Result<(), sqlx::Error> {
        match &event.event {
            Event::LegalHoldSet(hold) => {
                // A hold of a tenant already erased (a rebuild, or one published while the
                // erasure ran) is made with the fixed reason at once.
                sqlx::query(
                    "INSERT INTO api_legal_holds (hold_id, tenant, zone, reason, set_at_ns) \
                     SELECT $1, $2, $3, CASE WHEN EXISTS (SELECT 1 FROM tenants \
                       WHERE tenant_id = $2 AND deleted_at IS NOT NULL) THEN $6 ELSE $4 END, $5 \
                     ON CONFLICT (hold_id) DO NOTHING",
                )
                .bind(&hold.hold_id)
                .bind(&event.tenant)
                .bind(&hold.zone_id)
                .bind(&hold.reason)
                .bind(event.occurred_at_ns)
                .bind(ERASED_REASON)
                .execute(conn)
                .await?;
            }
            Event::TenantDeleted(_) => {
                // GDPR Art. 17: a hold keeps holding the erased tenant's archives, so its row
                // stays; its reason is the tenant's own text and goes.
                sqlx::query("UPDATE api_legal_holds SET reason = $2 WHERE tenant = $1")
                    .bind(&event.tenant)
                    .bind(ERASED_REASON)
                    .execute(conn)
                    .await?;
            }
            Event::LegalHoldReleased(release) => {
                // A hold is released only by its own tenant.
                sqlx::query("DELETE FROM api_legal_holds WHERE hold_id = $1 AND tenant = $2")
                    .bind(&release.hold_id)
                    .bind(&event.tenant)
                    .execute(conn)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
