//! `POST /customers` (registration), `GET|DELETE /api/v1/customers/{id}`, `GET /api/v1/export`.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use rainlogs_schemas::events::{Event, Role, TenantCreated, TenantDeleted, UserCreated};
use time::OffsetDateTime;

use crate::auth::BearerAuth;
use crate::error::{ApiError, ErrorCode};
use crate::events::Outcome;
use crate::passwords;
use crate::routes::api_keys::{ApiKeyInfo, CreatedApiKey, RoleName, registration_actor};
use crate::routes::audit_log::AuditRecord;
use crate::routes::jobs::Job;
use crate::routes::zones::ZoneView;
use crate::state::{AppState, SharedState};
use crate::text::{Label, Text};
use crate::views::{ApiTags, from_ns, now};

pub struct CustomersApi;

#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub(crate) struct NewCustomer {
    /// Organisation name.
    #[oai(validator(max_length = 200))]
    name: Label,
    /// Contact address; one customer per address.
    #[oai(validator(
        min_length = 3,
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1F\x7F-\x9F]+@[^@\s\x00-\x1F\x7F-\x9F.][^@\s\x00-\x1F\x7F-\x9F]*\.[^@\s\x00-\x1F\x7F-\x9F.]+$"
    ))]
    email: Text,
    /// Creates a dashboard admin user with this password (12 to 1024 characters); absent or
    /// null: no dashboard user.
    #[oai(nullable, validator(min_length = 12, max_length = 1024))]
    password: Option<Text>,
    /// How long archives are kept, in days after a window ends (default `retention.default_days`,
    /// 395: 13 months; within `retention.min_days`..`retention.max_days`, never below 7).
    /// Absent or null: the default.
    // The schema's floor is `rainlogs_config::MIN_RETENTION_DAYS`; the configured range is
    // checked by the operation (the document cannot know it).
    #[oai(
        nullable,
        validator(minimum(value = "7"), maximum(value = "4294967295"))
    )]
    retention_days: Option<u32>,
}

#[derive(Object, serde::Serialize)]
pub struct QuotaView {
    pub max_zones: u32,
    pub max_stored_bytes_per_month: u64,
    pub max_pulls_per_hour: u32,
}

#[derive(Object, serde::Serialize)]
pub struct UsageView {
    pub zones: u32,
    /// Bytes of archives sealed since the start of this calendar month (UTC).
    pub stored_bytes_this_month: u64,
    pub pulls_last_hour: u32,
}

#[derive(Object, serde::Serialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub email: String,
    pub retention_days: u32,
    pub created_at: OffsetDateTime,
    pub quotas: QuotaView,
    pub usage: UsageView,
}

#[derive(Object)]
pub(crate) struct Onboarded {
    pub(crate) customer: Customer,
    /// The first admin key. Its secret is shown only here.
    pub(crate) api_key: CreatedApiKey,
}

#[derive(ApiResponse)]
enum RegisterResponse {
    /// The customer and its first admin API key.
    #[oai(status = 201)]
    Created(Json<Onboarded>),
}

/// Something kept after erasure, where, and why.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
struct Retained {
    what: String,
    /// Where it is kept (event streams, tables, the object store).
    #[oai(rename = "where")]
    location: String,
    /// Kept until then (absent: as long as the legal duty lasts, stated in `why`).
    until: Option<OffsetDateTime>,
    why: String,
}

/// What erasure (GDPR Art. 17) did.
#[derive(Object)]
struct Erasure {
    customer_id: String,
    erased_at: OffsetDateTime,
    erased: Vec<String>,
    retained: Vec<Retained>,
}

#[derive(Object, serde::Serialize)]
struct UserInfo {
    user_id: String,
    email: String,
    role: RoleName,
    created_at: OffsetDateTime,
}

/// Everything RainLogs holds about the tenant (GDPR Art. 15/20).
#[derive(Object)]
struct Export {
    exported_at: OffsetDateTime,
    customer: Customer,
    users: Vec<UserInfo>,
    api_keys: Vec<ApiKeyInfo>,
    zones: Vec<ZoneView>,
    jobs: Vec<Job>,
    audit_log: Vec<AuditRecord>,
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn customer_not_found(id: &str) -> ApiError {
    let shown: String = id.chars().take(64).collect();
    ApiError::new(
        ErrorCode::CustomerNotFound,
        format!("customer {shown} not found"),
    )
}

impl AppState {
    pub async fn customer(&self, tenant: &str) -> Result<Option<Customer>, ApiError> {
        let row: Option<(String, String, i32, OffsetDateTime)> = sqlx::query_as(
            "SELECT name, email, retention_days, created_at FROM tenants \
             WHERE tenant_id = $1 AND deleted_at IS NULL",
        )
        .bind(tenant)
        .fetch_optional(&self.db)
        .await?;
        let Some((name, email, retention_days, created_at)) = row else {
            return Ok(None);
        };
        let quotas = self.options.quotas;
        Ok(Some(Customer {
            id: tenant.to_owned(),
            name,
            email,
            retention_days: u32::try_from(retention_days).unwrap_or(0),
            created_at,
            quotas: QuotaView {
                max_zones: quotas.max_zones,
                max_stored_bytes_per_month: quotas.max_stored_bytes_per_month,
                max_pulls_per_hour: quotas.max_pulls_per_hour,
            },
            usage: self.usage(tenant).await?,
        }))
    }

    /// Refuses what would store more this month once the tenant's stored-bytes quota is used up.
    /// Collection of the zones already added goes on: a compliance archive never drops windows
    /// because of a quota, so only new zones and pull requests are refused.
    pub fn storage_quota_left(&self, usage: &UsageView, refused: &str) -> Result<(), ApiError> {
        let quota = self.options.quotas.max_stored_bytes_per_month;
        if usage.stored_bytes_this_month < quota {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "{} bytes archived this month; the quota is {quota} bytes per month, so {refused}. \
                 The zones already added keep being collected",
                usage.stored_bytes_this_month
            ),
        ))
    }

    pub async fn usage(&self, tenant: &str) -> Result<UsageView, ApiError> {
        let month_start = now()
            .replace_day(1)
            .map(|d| d.replace_time(time::Time::MIDNIGHT))
            .unwrap_or_else(|_| now());
        let (zones, stored, pulls): (i64, i64, i64) = sqlx::query_as(
            "SELECT \
               (SELECT count(*) FROM zones WHERE tenant_id = $1 AND removed_at IS NULL), \
               (SELECT COALESCE(sum(stored_size), 0)::BIGINT FROM jobs \
                  WHERE tenant_id = $1 AND kind IN ('archive', 'late') AND sealed_at_ns >= $2), \
               (SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'zone.pull' \
                  AND outcome = 'ok' AND occurred_at > now() - interval '1 hour')",
        )
        .bind(tenant)
        .bind(crate::views::to_ns(month_start))
        .fetch_one(&self.db)
        .await?;
        Ok(UsageView {
            zones: u32::try_from(zones).unwrap_or(u32::MAX),
            stored_bytes_this_month: u64::try_from(stored).unwrap_or(0),
            pulls_last_hour: u32::try_from(pulls).unwrap_or(u32::MAX),
        })
    }

    async fn email_taken(&self, email: &str) -> Result<bool, ApiError> {
        let (taken,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM tenants WHERE lower(email) = lower($1) AND deleted_at IS NULL) \
             OR EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1) AND deleted_at IS NULL)",
        )
        .bind(email)
        .fetch_one(&self.db)
        .await?;
        Ok(taken)
    }

    pub(crate) async fn register(&self, body: NewCustomer) -> Result<Onboarded, ApiError> {
        let email = body.email.trim().to_owned();
        if !valid_email(&email) {
            return Err(ApiError::invalid("email is not a valid address"));
        }
        let name = body.name.to_string();
        let password_hash = match &body.password {
            Some(password) => Some(passwords::hash(password.to_string()).await?),
            None => None,
        };
        let retention_days = body
            .retention_days
            .unwrap_or(self.options.retention.default_days);
        self.check_retention_days(retention_days)?;
        let tenant = format!("c{}", uuid::Uuid::new_v4().simple());
        let actor = registration_actor();

        // One registration per address at a time: the check and the publish are serialised on
        // a lock keyed by the address, held on its own connection until the projection shows it.
        let mut lock = self.db.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock(hashtext(lower($1)))")
            .bind(&email)
            .execute(&mut *lock)
            .await?;
        let result = async {
            if self.email_taken(&email).await? {
                return Err(ApiError::new(
                    ErrorCode::CustomerEmailExists,
                    "a customer with this email address already exists",
                ));
            }
            let (key_event, api_key) = self.mint_key("initial admin key", Role::Admin, None);
            let created = Event::TenantCreated(TenantCreated {
                name: name.clone(),
                email: email.clone(),
                retention_days,
            });
            let mut events = vec![created, key_event];
            if let Some(password_hash) = password_hash {
                events.push(Event::UserCreated(UserCreated {
                    user_id: format!("u{}", uuid::Uuid::new_v4().simple()),
                    email: email.clone(),
                    role: Role::Admin,
                    password_hash,
                }));
            }
            self.command(&tenant, None, &actor, events).await?;
            Ok(api_key)
        }
        .await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtext(lower($1)))")
            .bind(&email)
            .execute(&mut *lock)
            .await;
        if unlocked.is_err() {
            // Never hand a connection that may still hold the lock back to the pool.
            lock.detach();
        }
        let api_key = result?;
        self.audit(
            &tenant,
            &actor,
            "customer.create",
            &format!("customer/{tenant}"),
            Outcome::Ok,
            None,
        )
        .await?;
        let customer = self
            .customer(&tenant)
            .await?
            .ok_or_else(|| ApiError::internal("registered customer not visible"))?;
        Ok(Onboarded { customer, api_key })
    }

    /// Removes the tenant's events that hold personal data from the control stream, and the
    /// holds it released (their reasons are its own text; a released hold protects nothing, so
    /// a rebuild without it ends the same). The holds in force keep their events: a hold is a
    /// legal duty and must survive a rebuild of the read models.
    async fn erase_personal_events(&self, tenant: &str) -> Result<(), rainlogs_bus::EraseError> {
        let released = std::sync::Mutex::new(std::collections::HashSet::new());
        rainlogs_bus::erase_control_events(&self.bus, tenant, |event| {
            if let Event::LegalHoldReleased(release) = &event.event {
                released
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(release.hold_id.clone());
            }
            false
        })
        .await?;
        let released = released
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let erased = rainlogs_bus::erase_control_events(&self.bus, tenant, |event| {
            event.event.holds_personal_data()
                || matches!(&event.event, Event::LegalHoldSet(hold) if released.contains(&hold.hold_id))
        })
        .await?;
        tracing::info!(%tenant, events = erased, "personal data erased from the control stream");
        Ok(())
    }

    /// Publishes the erasure, removes personal data from the control stream and asks for the
    /// logs' erasure entries.
    async fn erase(&self, p: &crate::auth::Principal, reason: String) -> Result<Erasure, ApiError> {
        let reason_text = reason.clone();
        let (retain_until,): (Option<i64>,) = sqlx::query_as(
            "SELECT max(retain_until_ns) FROM jobs WHERE tenant_id = $1 AND kind IN ('archive', 'late') \
             AND pruned_by_index IS NULL",
        )
        .bind(&p.tenant)
        .fetch_one(&self.db)
        .await?;
        // First, so that a failure leaves the tenant in place and the request can be repeated.
        self.erase_personal_events(&p.tenant)
            .await
            .map_err(|e| ApiError::unavailable("the event backbone", e))?;
        self.command(
            &p.tenant,
            None,
            &p.actor,
            vec![Event::TenantDeleted(TenantDeleted { reason })],
        )
        .await?;
        // Missed ones (a failed publish) are requested again by `erasure_records::follow`.
        crate::erasure_records::request(self, Some(&p.tenant), &p.actor, &reason_text).await;
        // Again, for anything the tenant published while the first pass ran; the deletion stands
        // either way, so a failure here is for the operator.
        if let Err(e) = self.erase_personal_events(&p.tenant).await {
            tracing::error!(tenant = %p.tenant, error = %e, "personal data left in the control stream after an erasure");
        }
        const CONTROL_LOG: &str = "control event log (stream RL_CONTROL)";
        let mut retained = vec![
            Retained {
                what: "zone ids and zone names, with the Cloudflare API tokens encrypted".into(),
                location: format!("{CONTROL_LOG}, the ctl.zone_added events"),
                until: None,
                why: "the event that binds a zone id to the tenant that added it keeps the \
                      retained archives and their integrity log bound to it, and a stored event \
                      cannot be changed, only deleted; the read models no longer show the names \
                      or hold the tokens. Revoke the tokens at Cloudflare"
                    .into(),
            },
            Retained {
                what: "reasons of the legal holds in force".into(),
                location: format!("{CONTROL_LOG}, the ctl.legal_hold_set events"),
                until: None,
                why: "a legal hold is a legal duty and keeps holding the archives after the \
                      erasure; its event is what keeps it in force when the read models are \
                      rebuilt. The read model shows such a hold with the reason \"erased with \
                      the tenant\"; holds released before the erasure are erased with it"
                    .into(),
            },
            Retained {
                what: "the erasure reason given with this request".into(),
                location: format!(
                    "{CONTROL_LOG}, the ctl.tenant_deleted event; archive event log (stream \
                     RL_ARCHIVE), the archive.erasure_requested events"
                ),
                until: None,
                why: "the record that, when and why the tenant was erased: a rebuild of the read \
                      models erases it again from it, and each zone's integrity log is asked \
                      for its erasure entry with it"
                    .into(),
            },
            Retained {
                what: "audit log of access to this tenant's data (key, user and zone ids, IP \
                       addresses, times; no names, addresses or labels)"
                    .into(),
                location: "audit event log (stream RL_AUDIT) and its read model (table audit_log)"
                    .into(),
                until: None,
                why: "accountability evidence for the processing (GDPR Art. 5(2), NIS2 Art. 21); \
                      the audit stream is append-only"
                    .into(),
            },
        ];
        if let Some(until) = retain_until {
            retained.push(Retained {
                what: "archived Cloudflare logs and their integrity log".into(),
                location: "object store (archives, tiles, checkpoints), integrity log event \
                           stream (RL_CHAIN) and its read model (table jobs)"
                    .into(),
                until: Some(from_ns(until)),
                why: "legal retention duty set by the retention policy; each archive is deleted \
                      at its retain-until and the deletion is logged as a prune entry; each \
                      zone's integrity log records this erasure (an erasure entry)"
                    .into(),
            });
        }
        Ok(Erasure {
            customer_id: p.tenant.clone(),
            erased_at: now(),
            erased: vec![
                "customer name and email, also from the control event log".into(),
                "API key labels, also from the control event log".into(),
                "dashboard users (email, password hash), also from the control event log".into(),
                "API keys (revoked)".into(),
                "zone names and Cloudflare API tokens in the read models; the zones are removed"
                    .into(),
                "legal hold reasons in the read model (the holds in force stay, with the reason \
                 \"erased with the tenant\")"
                    .into(),
                "legal holds released before the erasure, with their reasons, also from the \
                 control event log"
                    .into(),
            ],
            retained,
        })
    }
}

#[OpenApi(tag = "ApiTags::Customers")]
impl CustomersApi {
    /// Register a customer; returns it and its first admin API key (shown once). Only when
    /// `api.registration` is `open`; otherwise 403 `REGISTRATION_CLOSED`
    /// (operators create tenants with `rainlogs tenants create`)
    #[oai(
        path = "/customers",
        method = "post",
        operation_id = "registerCustomer"
    )]
    async fn register(
        &self,
        state: Data<&SharedState>,
        body: Json<NewCustomer>,
    ) -> Result<RegisterResponse, ApiError> {
        if !state.registration_open {
            return Err(ApiError::new(
                ErrorCode::RegistrationClosed,
                "registration is closed on this server; an operator creates tenants \
                 (`rainlogs tenants create`)",
            ));
        }
        let onboarded = state.register(body.0).await?;
        Ok(RegisterResponse::Created(Json(onboarded)))
    }

    /// The caller's customer profile, quotas and usage (any role)
    #[oai(
        path = "/api/v1/customers/:id",
        method = "get",
        operation_id = "getCustomer"
    )]
    async fn get(
        &self,
        state: Data<&SharedState>,
        #[oai(validator(pattern = r"^c[0-9a-f]{32}$"))] id: Path<String>,
        auth: BearerAuth,
    ) -> Result<Json<Customer>, ApiError> {
        let p = &auth.0;
        if id.0 != p.tenant {
            return Err(customer_not_found(&id.0));
        }
        let customer = state
            .customer(&p.tenant)
            .await?
            .ok_or_else(|| customer_not_found(&id.0))?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "customer.read",
                &format!("customer/{}", p.tenant),
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(Json(customer))
    }

    /// Erase the customer (GDPR Art. 17; admin). Says what a legal duty keeps, and until when
    #[oai(
        path = "/api/v1/customers/:id",
        method = "delete",
        operation_id = "deleteCustomer"
    )]
    async fn delete(
        &self,
        state: Data<&SharedState>,
        #[oai(validator(pattern = r"^c[0-9a-f]{32}$"))] id: Path<String>,
        auth: BearerAuth,
        /// Why the customer is erased (kept in the control and archive event logs).
        #[oai(validator(max_length = 500))]
        reason: Query<Option<Label>>,
    ) -> Result<Json<Erasure>, ApiError> {
        let p = &auth.0;
        let target = format!("customer/{}", id.0);
        if id.0 != p.tenant {
            return Err(customer_not_found(&id.0));
        }
        state
            .authorize(p, &[Role::Admin], "customer.delete", &target)
            .await?;
        let reason = reason.0.map_or_else(
            || "erasure requested by the customer".to_owned(),
            Label::into_string,
        );
        let erasure = state.erase(p, reason).await?;
        state
            .audit(
                &p.tenant,
                &p.actor,
                "customer.delete",
                &target,
                Outcome::Ok,
                None,
            )
            .await?;
        Ok(Json(erasure))
    }

    /// Everything held about the tenant, as JSON (GDPR Art. 15/20; admin)
    #[oai(
        path = "/api/v1/export",
        method = "get",
        operation_id = "exportCustomer"
    )]
    async fn export(
        &self,
        state: Data<&SharedState>,
        auth: BearerAuth,
    ) -> Result<Json<Export>, ApiError> {
        let p = &auth.0;
        let target = format!("customer/{}", p.tenant);
        state
            .authorize(p, &[Role::Admin], "customer.export", &target)
            .await?;
        // Audited first: an export that cannot be recorded is not served.
        state
            .audit(
                &p.tenant,
                &p.actor,
                "customer.export",
                &target,
                Outcome::Ok,
                None,
            )
            .await?;
        let customer = state
            .customer(&p.tenant)
            .await?
            .ok_or_else(|| customer_not_found(&p.tenant))?;
        let users: Vec<(String, String, String, OffsetDateTime)> = sqlx::query_as(
            "SELECT user_id, email, role, created_at FROM users \
             WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY created_at",
        )
        .bind(&p.tenant)
        .fetch_all(&state.db)
        .await?;
        Ok(Json(Export {
            exported_at: now(),
            customer,
            users: users
                .into_iter()
                .map(|(user_id, email, role, created_at)| UserInfo {
                    user_id,
                    email,
                    role: RoleName::parse(&role),
                    created_at,
                })
                .collect(),
            api_keys: state.list_keys(&p.tenant).await?,
            zones: state.zones(&p.tenant, None).await?,
            jobs: state.all_jobs(&p.tenant).await?,
            audit_log: state.audit_records(&p.tenant, i64::MAX, None, None).await?,
        }))
    }
}
