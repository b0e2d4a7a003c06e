//! Read models of the control plane (tenants, zones, API keys) and of the audit log.

use rainlogs_schemas::events::{Method, Role};
use rainlogs_schemas::{Envelope, Event};
use sqlx::PgConnection;
use time::OffsetDateTime;

use rainlogs_db::Projection;

fn at(event: &Envelope) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(event.occurred_at_ns))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Operator => "operator",
        Role::Auditor => "auditor",
    }
}

/// Whether `tenant` was erased.
async fn tenant_erased(conn: &mut PgConnection, tenant: &str) -> Result<bool, sqlx::Error> {
    let (erased,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1 AND deleted_at IS NOT NULL)",
    )
    .bind(tenant)
    .fetch_one(conn)
    .await?;
    Ok(erased)
}

/// An erased tenant's zones (or one of them): removed, without their token and their name. The
/// zone id stays bound to the tenant (its archives and integrity log are keyed by it).
async fn scrub_zones(
    conn: &mut PgConnection,
    tenant: &str,
    zone: Option<&str>,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE zones SET removed_at = COALESCE(removed_at, $3), sealed_token = ''::bytea, name = '' \
         WHERE tenant_id = $1 AND ($2::TEXT IS NULL OR zone_id = $2)",
    )
    .bind(tenant)
    .bind(zone)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Tenants, zones, API keys and dashboard users from `rl.ctl.>`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ControlProjection;

impl Projection for ControlProjection {
    const NAME: &'static str = "control";
    const TABLES: &'static [&'static str] = &["tenants", "zones", "api_keys", "users"];
    const STREAM: &'static str = rainlogs_bus::definitions::CONTROL;

    async fn apply(
        &self,
        conn: &mut PgConnection,
        _sequence: u64,
        event: &Envelope,
    ) -> Result<(), sqlx::Error> {
        let tenant = &event.tenant;
        match &event.event {
            Event::TenantCreated(e) => {
                sqlx::query(
                    "INSERT INTO tenants (tenant_id, name, email, retention_days, created_at) VALUES ($1,$2,$3,$4,$5) \
                     ON CONFLICT (tenant_id) DO NOTHING",
                )
                .bind(tenant)
                .bind(&e.name)
                .bind(&e.email)
                .bind(i32::try_from(e.retention_days).unwrap_or(i32::MAX))
                .bind(at(event))
                .execute(conn)
                .await?;
            }
            Event::TenantDeleted(_) => {
                // GDPR Art. 17: the read model keeps that the tenant existed and when it was
                // erased, not who it was. Its keys stop working and its tokens are dropped.
                // Erasure also removes the registration event from the stream, so a rebuild may
                // meet the deletion of a tenant it never saw created: the row is made here then.
                sqlx::query(
                    "INSERT INTO tenants (tenant_id, name, email, retention_days, created_at, deleted_at) \
                     VALUES ($1, '', '', 0, $2, $2) \
                     ON CONFLICT (tenant_id) DO UPDATE \
                     SET deleted_at = COALESCE(tenants.deleted_at, $2), name = '', email = ''",
                )
                .bind(tenant)
                .bind(at(event))
                .execute(&mut *conn)
                .await?;
                sqlx::query("DELETE FROM users WHERE tenant_id = $1")
                    .bind(tenant)
                    .execute(&mut *conn)
                    .await?;
                // Key labels and zone names are the tenant's own text: blanked. The ids stay
                // (the audit log and the retained archives refer to them).
                sqlx::query(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2), name = '' \
                     WHERE tenant_id = $1",
                )
                .bind(tenant)
                .bind(at(event))
                .execute(&mut *conn)
                .await?;
                scrub_zones(conn, tenant, None, at(event)).await?;
            }
            // A zone id stays with the tenant that first added it (its batches, cursor and chain
            // are keyed by the id alone): another tenant's add changes nothing.
            Event::ZoneAdded(e) => {
                sqlx::query(
                    "INSERT INTO zones (zone_id, tenant_id, name, plan, method, fields, sealed_token, token_key_id, added_at) \
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) \
                     ON CONFLICT (zone_id) DO UPDATE SET name = EXCLUDED.name, \
                     plan = EXCLUDED.plan, method = EXCLUDED.method, fields = EXCLUDED.fields, \
                     sealed_token = EXCLUDED.sealed_token, token_key_id = EXCLUDED.token_key_id, \
                     added_at = EXCLUDED.added_at, removed_at = NULL, paused = FALSE \
                     WHERE zones.tenant_id = EXCLUDED.tenant_id",
                )
                .bind(&e.zone_id)
                .bind(tenant)
                .bind(&e.name)
                .bind(&e.plan)
                .bind(e.method.as_str())
                .bind(&e.fields)
                .bind(&e.sealed_token)
                .bind(&e.token_key_id)
                .bind(at(event))
                .execute(&mut *conn)
                .await?;
                // Published while its tenant was being erased: erased like the tenant's others.
                if tenant_erased(conn, tenant).await? {
                    scrub_zones(conn, tenant, Some(&e.zone_id), at(event)).await?;
                }
            }
            Event::RetentionSet(e) => {
                let days = e.days.map(|d| i32::try_from(d).unwrap_or(i32::MAX));
                match (&e.zone_id, days) {
                    (None, Some(days)) => {
                        sqlx::query("UPDATE tenants SET retention_days = $2 WHERE tenant_id = $1")
                            .bind(tenant)
                            .bind(days)
                            .execute(conn)
                            .await?;
                    }
                    (Some(zone), days) => {
                        sqlx::query(
                            "UPDATE zones SET retention_days = $3 WHERE zone_id = $1 AND tenant_id = $2",
                        )
                        .bind(zone)
                        .bind(tenant)
                        .bind(days)
                        .execute(conn)
                        .await?;
                    }
                    (None, None) => {}
                }
            }
            Event::ZoneChanged(e) => {
                sqlx::query(
                    "UPDATE zones SET paused = COALESCE($3, paused), method = COALESCE($4, method), \
                     fields = COALESCE($5, fields), sealed_token = COALESCE($6, sealed_token), \
                     token_key_id = COALESCE($7, token_key_id) WHERE zone_id = $1 AND tenant_id = $2",
                )
                .bind(&e.zone_id)
                .bind(tenant)
                .bind(e.paused)
                .bind(e.method.map(Method::as_str))
                .bind(&e.fields)
                .bind(&e.sealed_token)
                .bind(&e.token_key_id)
                .execute(conn)
                .await?;
            }
            Event::ZoneRemoved(e) => {
                sqlx::query(
                    "UPDATE zones SET removed_at = $3 WHERE zone_id = $1 AND tenant_id = $2",
                )
                .bind(&e.zone_id)
                .bind(tenant)
                .bind(at(event))
                .execute(conn)
                .await?;
            }
            Event::ZoneHealth(e) => {
                sqlx::query(
                    "UPDATE zones SET health_status = $3, health_reason = $4, plan = COALESCE($5, plan), \
                     method = COALESCE($6, method) WHERE zone_id = $1 AND tenant_id = $2",
                )
                .bind(&e.zone_id)
                .bind(tenant)
                .bind(&e.status)
                .bind(&e.reason)
                .bind(&e.plan)
                .bind(e.method.map(Method::as_str))
                .execute(conn)
                .await?;
            }
            Event::ApiKeyCreated(e) => {
                let expires = e
                    .expires_at_ns
                    .and_then(|ns| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).ok());
                // A key or user published while its tenant was being erased is not made (the
                // erasure removes its event from the stream too).
                sqlx::query(
                    "INSERT INTO api_keys (key_id, tenant_id, name, role, digest, expires_at, created_at) \
                     SELECT $1,$2,$3,$4,$5,$6,$7 WHERE NOT EXISTS \
                     (SELECT 1 FROM tenants WHERE tenant_id = $2 AND deleted_at IS NOT NULL) \
                     ON CONFLICT (key_id) DO NOTHING",
                )
                .bind(&e.key_id)
                .bind(tenant)
                .bind(&e.name)
                .bind(role_name(e.role))
                .bind(&e.digest)
                .bind(expires)
                .bind(at(event))
                .execute(conn)
                .await?;
            }
            Event::UserCreated(e) => {
                sqlx::query(
                    "INSERT INTO users (user_id, tenant_id, email, role, password_hash, created_at) \
                     SELECT $1,$2,$3,$4,$5,$6 WHERE NOT EXISTS \
                     (SELECT 1 FROM tenants WHERE tenant_id = $2 AND deleted_at IS NOT NULL) \
                     ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(&e.user_id)
                .bind(tenant)
                .bind(&e.email)
                .bind(role_name(e.role))
                .bind(&e.password_hash)
                .bind(at(event))
                .execute(conn)
                .await?;
            }
            Event::ApiKeyRevoked(e) => {
                sqlx::query(
                    "UPDATE api_keys SET revoked_at = $3 WHERE key_id = $1 AND tenant_id = $2",
                )
                .bind(&e.key_id)
                .bind(tenant)
                .bind(at(event))
                .execute(conn)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// The audit log from `rl.audit.>`.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuditProjection;

impl Projection for AuditProjection {
    const NAME: &'static str = "audit";
    const TABLES: &'static [&'static str] = &["audit_log"];
    const STREAM: &'static str = rainlogs_bus::definitions::AUDIT;

    async fn apply(
        &self,
        conn: &mut PgConnection,
        sequence: u64,
        event: &Envelope,
    ) -> Result<(), sqlx::Error> {
        self.apply_run(conn, &[(sequence, event)]).await
    }

    /// Audit records are independent rows: a run is one multi-row insert, which is what lets
    /// the projection keep up with thousands of audited reads a second.
    async fn apply_run(
        &self,
        conn: &mut PgConnection,
        events: &[(u64, &Envelope)],
    ) -> Result<(), sqlx::Error> {
        let mut rows = AuditRows::default();
        for (sequence, event) in events {
            let Event::AuditRecorded(e) = &event.event else {
                continue;
            };
            rows.push(*sequence, event, e);
            if rows.bytes >= AuditRows::STATEMENT_BYTES {
                std::mem::take(&mut rows).insert(&mut *conn).await?;
            }
        }
        rows.insert(conn).await
    }
}

/// Columns of a run of audit records, for one `unnest` insert.
#[derive(Default)]
struct AuditRows<'a> {
    /// Roughly the size of the statement's parameters.
    bytes: usize,
    sequence: Vec<i64>,
    event_id: Vec<uuid::Uuid>,
    tenant: Vec<&'a str>,
    occurred_at: Vec<OffsetDateTime>,
    actor: Vec<&'a str>,
    action: Vec<&'a str>,
    target: Vec<&'a str>,
    outcome: Vec<&'a str>,
    client_ip: Vec<Option<&'a str>>,
    request_id: Vec<Option<&'a str>>,
    detail: Vec<Option<&'a str>>,
}

impl<'a> AuditRows<'a> {
    /// Largest statement sent at once. sqlx 0.9.0 leaves Nagle's algorithm on
    /// (sqlx issue 4335, fixed after 0.9.0), and a message that TLS splits into more than one record (16 KiB)
    /// then waits for the server's delayed ACK, about 40 ms a statement. Smaller statements in
    /// one transaction cost a round trip each instead.
    const STATEMENT_BYTES: usize = 12 * 1024;

    fn push(
        &mut self,
        sequence: u64,
        event: &'a Envelope,
        e: &'a rainlogs_schemas::events::AuditRecorded,
    ) {
        let optional = |text: Option<&str>| text.map_or(0, str::len);
        // Fixed-size columns plus a length word per column.
        self.bytes += 16
            + 8
            + 8
            + 11 * 4
            + event.tenant.len()
            + event.actor.0.len()
            + e.action.len()
            + e.target.len()
            + e.outcome.len()
            + optional(e.client_ip.as_deref())
            + optional(e.request_id.as_deref())
            + optional(e.detail.as_deref());
        self.sequence
            .push(i64::try_from(sequence).unwrap_or(i64::MAX));
        self.event_id.push(event.id);
        self.tenant.push(event.tenant.as_str());
        self.occurred_at.push(at(event));
        self.actor.push(event.actor.0.as_str());
        self.action.push(e.action.as_str());
        self.target.push(e.target.as_str());
        self.outcome.push(e.outcome.as_str());
        self.client_ip.push(e.client_ip.as_deref());
        self.request_id.push(e.request_id.as_deref());
        self.detail.push(e.detail.as_deref());
    }

    async fn insert(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.sequence.is_empty() {
            return Ok(());
        }
        // A publish retried after the duplicate window is stored twice with one event id; the
        // log keeps the first.
        sqlx::query(
            "INSERT INTO audit_log (stream_sequence, event_id, tenant_id, occurred_at, actor, action, target, \
             outcome, client_ip, request_id, detail) \
             SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.sequence)
        .bind(&self.event_id)
        .bind(&self.tenant)
        .bind(&self.occurred_at)
        .bind(&self.actor)
        .bind(&self.action)
        .bind(&self.target)
        .bind(&self.outcome)
        .bind(&self.client_ip)
        .bind(&self.request_id)
        .bind(&self.detail)
        .execute(conn)
        .await?;
        Ok(())
    }
}
