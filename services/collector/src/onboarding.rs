//! Checks run when a zone is added or its token, method or fields change: is the token valid,
//! is the zone reachable, which plan is it on, which collection method fits, is Logpull allowed
//! (retention flag, EU metadata boundary), and what are the GraphQL limits. Every outcome is a
//! human sentence for `ctl.zone_health`.

use rainlogs_cloudflare::{
    CfError, DEFAULT_FIREWALL_FIELDS, FieldList, FirewallEventsSettings, TokenClient,
};
use rainlogs_schemas::events::Method;

use crate::clock::at;
use crate::fields::FieldSpec;
use crate::health::Status;
use crate::registry::ZoneEntry;

pub const HTTP_REQUESTS: &str = "http_requests";
pub const FIREWALL_EVENTS: &str = "firewall_events";

/// The natural key of a security event plus its sampling weight; requested before any other.
pub const FIREWALL_KEY_FIELDS: &[&str] = &[
    "datetime",
    "rayName",
    "matchIndex",
    "source",
    "ruleId",
    "sampleInterval",
];

/// How a zone is collected, as decided by onboarding.
#[derive(Clone, Debug)]
pub struct ZonePlan {
    /// `plan.legacy_id` (or the tier word derived from the name).
    pub plan: String,
    pub method: Method,
    pub dataset: &'static str,
    pub fields: FieldList,
    pub firewall: Option<FirewallEventsSettings>,
    /// Unix seconds at which onboarding switched Logpull retention on (nothing older exists).
    pub retention_enabled_at: Option<i64>,
    /// Retention is off and this token cannot switch it on.
    pub retention_off: bool,
    /// Logpush zones: why a short window cannot be repaired from Logpull (`None`: it can be).
    pub no_logpull_repair: Option<String>,
    pub status: Status,
    pub reason: String,
}

/// Onboarding could not finish.
#[derive(Clone, Debug)]
pub struct OnboardingFailure {
    pub status: Status,
    pub reason: String,
    pub plan: Option<String>,
    /// Worth trying again soon (network trouble) rather than at the slow recheck interval.
    pub transient: bool,
}

impl OnboardingFailure {
    pub(crate) fn from_error(context: &str, error: &CfError, plan: Option<String>) -> Self {
        Self {
            status: if error.is_retryable() {
                Status::Degraded
            } else {
                Status::Failing
            },
            reason: format!("{context}: {error}"),
            plan,
            transient: error.is_retryable(),
        }
    }
}

pub async fn onboard(
    client: &TokenClient,
    entry: &ZoneEntry,
    now: i64,
) -> Result<ZonePlan, OnboardingFailure> {
    let zone_id = entry.zone_id.as_str();
    let zone = match client.zone(zone_id).await {
        Ok(zone) => zone,
        Err(error @ CfError::Auth { .. }) => {
            return Err(explain_auth(client, zone_id, &error, now).await);
        }
        Err(error) => {
            return Err(OnboardingFailure::from_error(
                &format!("cannot read zone {zone_id} from Cloudflare"),
                &error,
                None,
            ));
        }
    };
    let tier = zone.tier();
    let plan = tier.word();
    let account = zone.account.as_ref().map(|a| a.id.clone());
    match client.verify_token_any(account.as_deref()).await {
        Ok(status) if !status.is_usable_at(at(now)) => {
            return Err(OnboardingFailure {
                status: Status::Failing,
                reason: format!(
                    "the Cloudflare API token is {:?} (not usable now); give the zone a new token",
                    status.status
                ),
                plan: Some(plan),
                transient: false,
            });
        }
        Ok(_) => {}
        // The zone read worked, so the token works; verify routes differ by token kind.
        Err(error) => {
            tracing::debug!(zone = zone_id, %error, "token verify failed after a successful zone read")
        }
    }

    let mut notes = Vec::new();
    let mut status = Status::Ok;
    let mut method = entry.method;
    if !tier.allows(method) {
        let fallback = tier.default_method();
        notes.push(format!(
            "{} is not available on the {plan} plan; using {} instead",
            method.product(),
            fallback.product()
        ));
        status = Status::Degraded;
        method = fallback;
    }
    if method == Method::Logpull
        && let Some(account) = &account
    {
        match client.cmb_config(account).await {
            Ok(cmb) if cmb.blocks_logpull() => {
                notes.push(
                    "Logpull is unavailable: the account's Customer Metadata Boundary is EU-only; \
                     using Instant Logs (a sampled live tail with gaps) instead — Logpush to EU \
                     storage is the complete alternative"
                        .into(),
                );
                status = Status::Degraded;
                method = Method::InstantLogs;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(zone = zone_id, %error, "cannot read the CMB config; Logpull will tell")
            }
        }
    }

    let spec = FieldSpec::parse(&entry.fields);
    let mut plan_out = ZonePlan {
        plan: plan.clone(),
        method,
        dataset: HTTP_REQUESTS,
        fields: spec
            .resolve(None)
            .map_err(|e| invalid_fields(&entry.fields, &e, &plan))?,
        firewall: None,
        retention_enabled_at: None,
        retention_off: false,
        no_logpull_repair: None,
        status,
        reason: String::new(),
    };
    match method {
        Method::Logpull => {
            if spec == FieldSpec::All {
                let catalogue = client.logpull_fields(zone_id).await.map_err(|e| {
                    OnboardingFailure::from_error(
                        "cannot list the zone's Logpull fields",
                        &e,
                        Some(plan.clone()),
                    )
                })?;
                plan_out.fields = spec
                    .resolve(Some(catalogue.into_keys().collect()))
                    .map_err(|e| invalid_fields(&entry.fields, &e, &plan))?;
            }
            check_retention(client, zone_id, now, &mut plan_out, &mut notes).await?;
        }
        Method::InstantLogs => {}
        // The records arrive by Logpush; the job itself is made through the API. Logpull can
        // repair what Logpush drops, where the zone has it.
        Method::LogpushHttp | Method::LogpushS3 => {
            plan_out.no_logpull_repair =
                logpull_for_repair(client, zone_id, account.as_deref(), &plan_out, &mut notes)
                    .await;
            if let Some(why) = &plan_out.no_logpull_repair
                && plan_out.plan == "enterprise"
            {
                notes.push(format!("short windows cannot be repaired: {why}"));
            }
        }
        Method::Graphql => {
            let settings = client
                .firewall_events_settings(zone_id)
                .await
                .map_err(|e| {
                    OnboardingFailure::from_error(
                        "cannot read the zone's GraphQL limits",
                        &e,
                        Some(plan.clone()),
                    )
                })?;
            if !settings.enabled {
                return Err(OnboardingFailure {
                    status: Status::Failing,
                    reason: "firewallEventsAdaptive is not enabled for this zone in GraphQL".into(),
                    plan: Some(plan),
                    transient: false,
                });
            }
            plan_out.dataset = FIREWALL_EVENTS;
            plan_out.fields = firewall_fields(&settings, &plan)?;
            plan_out.firewall = Some(settings);
        }
    }
    let mut reason = format!(
        "collecting {} with {} (plan {})",
        plan_out.dataset,
        method.product(),
        plan_out.plan
    );
    for note in &notes {
        reason.push_str("; ");
        reason.push_str(note);
    }
    plan_out.reason = reason;
    Ok(plan_out)
}

fn invalid_fields(text: &str, error: &CfError, plan: &str) -> OnboardingFailure {
    OnboardingFailure {
        status: Status::Failing,
        reason: format!("the zone's fields setting {text:?} is not usable: {error}"),
        plan: Some(plan.to_owned()),
        transient: false,
    }
}

/// Why Logpull cannot repair a Logpush zone's short windows, if it cannot: it needs an
/// Enterprise plan, `RayID` and `EdgeStartTimestamp` among the fields (records are matched by Ray
/// ID), an account whose metadata boundary allows Logpull, and log retention on, which is
/// switched on where the token may.
async fn logpull_for_repair(
    client: &TokenClient,
    zone_id: &str,
    account: Option<&str>,
    plan: &ZonePlan,
    notes: &mut Vec<String>,
) -> Option<String> {
    if let Some(why) = crate::repair::not_repairable(&plan.plan, &plan.fields) {
        return Some(why);
    }
    if let Some(account) = account
        && let Ok(cmb) = client.cmb_config(account).await
        && cmb.blocks_logpull()
    {
        return Some(
            "Logpull is unavailable: the account's Customer Metadata Boundary is EU-only".into(),
        );
    }
    match client.retention_flag(zone_id).await {
        Ok(true) => None,
        Ok(false) => match client.set_retention_flag(zone_id, true).await {
            Ok(true) => {
                notes.push(
                    "switched Logpull log retention on, so short windows can be repaired from it"
                        .into(),
                );
                None
            }
            Ok(false) | Err(_) => Some(
                "Logpull log retention is off and this token cannot switch it on (it needs Logs Edit)"
                    .into(),
            ),
        },
        Err(error) => Some(format!("cannot read the Logpull retention flag: {error}")),
    }
}

async fn check_retention(
    client: &TokenClient,
    zone_id: &str,
    now: i64,
    plan: &mut ZonePlan,
    notes: &mut Vec<String>,
) -> Result<(), OnboardingFailure> {
    let on = client.retention_flag(zone_id).await.map_err(|e| {
        OnboardingFailure::from_error(
            "cannot read the Logpull retention flag",
            &e,
            Some(plan.plan.clone()),
        )
    })?;
    if on {
        return Ok(());
    }
    match client.set_retention_flag(zone_id, true).await {
        Ok(true) => {
            notes.push(
                "switched Logpull log retention on (nothing older than now can be pulled)".into(),
            );
            plan.retention_enabled_at = Some(now);
        }
        Ok(false) | Err(_) => {
            notes.push(
                "Logpull log retention is off and this token cannot switch it on (it needs Logs Edit): \
                 enable it in the dashboard; until then every window is recorded as a retention_flag_off gap"
                    .into(),
            );
            plan.retention_off = true;
            plan.status = Status::Failing;
        }
    }
    Ok(())
}

/// The firewall-event fields to request: the natural key, time and sampling first, then what
/// the plan offers, within the plan's field limit.
fn firewall_fields(
    settings: &FirewallEventsSettings,
    plan: &str,
) -> Result<FieldList, OnboardingFailure> {
    let available = |f: &str| {
        settings.available_fields.is_empty() || settings.available_fields.iter().any(|a| a == f)
    };
    let limit = usize::try_from(settings.max_number_of_fields)
        .unwrap_or(usize::MAX)
        .max(1);
    let names: Vec<&str> = FIREWALL_KEY_FIELDS
        .iter()
        .chain(
            DEFAULT_FIREWALL_FIELDS
                .iter()
                .filter(|f| !FIREWALL_KEY_FIELDS.contains(f)),
        )
        .copied()
        .filter(|f| available(f))
        .take(limit)
        .collect();
    FieldList::new(names).map_err(|e| OnboardingFailure {
        status: Status::Failing,
        reason: format!("the plan offers none of the firewall event fields RainLogs archives: {e}"),
        plan: Some(plan.to_owned()),
        transient: false,
    })
}

/// Turns a refused zone read into the precise reason: bad token, or token without access.
async fn explain_auth(
    client: &TokenClient,
    zone_id: &str,
    error: &CfError,
    now: i64,
) -> OnboardingFailure {
    let reason = match client.verify_token_any(None).await {
        Err(CfError::Auth { .. }) => format!(
            "Cloudflare rejects the API token (unknown, revoked, disabled or expired): {error}; give the zone a new token"
        ),
        Ok(status) if !status.is_usable_at(at(now)) => format!(
            "the Cloudflare API token is {:?}; give the zone a new token",
            status.status
        ),
        _ => format!(
            "the API token may not read zone {zone_id} (it needs Zone Read and Logs Read or Analytics Read on this zone): {error}"
        ),
    };
    OnboardingFailure {
        status: Status::Failing,
        reason,
        plan: None,
        transient: false,
    }
}
