//! `legal_holds`, from `ctl.legal_hold_*`: which archives the reaper must not delete. The reaper
//! runs this projection itself, so deletion never waits for another process; it keeps no reason
//! text (the API shows that, from its own projection), so a tenant's erasure leaves nothing of
//! the tenant's words here while its holds go on holding.

use rainlogs_db::Projection;
use rainlogs_schemas::{Envelope, Event};
use sqlx::PgConnection;

#[derive(Debug, Default, Clone, Copy)]
pub struct LegalHoldsProjection;

impl Projection for LegalHoldsProjection {
    const NAME: &'static str = "legal-holds";
    const TABLES: &'static [&'static str] = &["legal_holds"];
    const STREAM: &'static str = rainlogs_bus::definitions::CONTROL;

    async fn apply(
        &self,
        conn: &mut PgConnection,
        _sequence: u64,
        event: &Envelope,
    ) -> Result<(), sqlx::Error> {
        match &event.event {
            Event::LegalHoldSet(hold) => {
                sqlx::query(
                    "INSERT INTO legal_holds (hold_id, tenant, zone, reason, set_at_ns) \
                     VALUES ($1, $2, $3, '', $4) ON CONFLICT (hold_id) DO NOTHING",
                )
                .bind(&hold.hold_id)
                .bind(&event.tenant)
                .bind(&hold.zone_id)
                .bind(event.occurred_at_ns)
                .execute(conn)
                .await?;
            }
            Event::LegalHoldReleased(release) => {
                // A hold is released only by its own tenant.
                sqlx::query("DELETE FROM legal_holds WHERE hold_id = $1 AND tenant = $2")
                    .bind(&release.hold_id)
                    .bind(&event.tenant)
                    .execute(conn)
                    .await?;
            }
            // GDPR Art. 17: a hold is a legal duty and keeps holding an erased tenant's
            // archives, so its row stays (it holds no text of the tenant's).
            _ => {}
        }
        Ok(())
    }
}
