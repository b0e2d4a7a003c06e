//! `GET /zones/{zone_id}`: the zone and its plan.

use crate::client::{RequestSpec, TokenClient};
use crate::error::CfError;
use crate::route::Endpoint;
use rainlogs_schemas::events::Method;
use serde::Deserialize;

/// The plan tier that decides the collection method: which log products Cloudflare offers a zone
/// is a matter of its plan, so the policy lives here, beside the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanTier {
    Free,
    Pro,
    Business,
    Enterprise,
    /// Neither `legacy_id` nor `name` was recognised; the raw values are kept for the operator.
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ZonePlan {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub legacy_id: Option<String>,
}

impl ZonePlan {
    /// `legacy_id` (`free|pro|business|enterprise`) first; the display name (`Enterprise Website`) as fallback.
    pub fn tier(&self) -> PlanTier {
        if let Some(tier) = self.legacy_id.as_deref().and_then(tier_from_word) {
            return tier;
        }
        if let Some(name) = &self.name {
            let lower = name.to_ascii_lowercase();
            for word in ["enterprise", "business", "pro", "free"] {
                if lower
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|w| w == word)
                {
                    return tier_from_word(word).unwrap_or(PlanTier::Unknown(name.clone()));
                }
            }
        }
        PlanTier::Unknown(format!(
            "legacy_id={:?} name={:?}",
            self.legacy_id, self.name
        ))
    }
}

impl PlanTier {
    /// The best method the plan offers: Logpull is complete by contract (Enterprise only),
    /// Instant Logs a sampled live tail (Business and up), GraphQL security events every plan has.
    pub fn default_method(&self) -> Method {
        match self {
            Self::Enterprise => Method::Logpull,
            Self::Business => Method::InstantLogs,
            Self::Free | Self::Pro | Self::Unknown(_) => Method::Graphql,
        }
    }

    /// Whether Cloudflare offers `method` on the plan. An unknown plan is given the benefit of
    /// the doubt: onboarding then finds out from Cloudflare's answer.
    pub fn allows(&self, method: Method) -> bool {
        match (method, self) {
            // Logpush is offered on every plan.
            (_, Self::Unknown(_))
            | (Method::Graphql | Method::LogpushHttp | Method::LogpushS3, _) => true,
            (Method::Logpull, tier) => *tier == Self::Enterprise,
            (Method::InstantLogs, tier) => matches!(tier, Self::Enterprise | Self::Business),
        }
    }

    /// The plan as a word for people (`enterprise`, `business`, …, or Cloudflare's raw values).
    pub fn word(&self) -> String {
        match self {
            Self::Free => "free".into(),
            Self::Pro => "pro".into(),
            Self::Business => "business".into(),
            Self::Enterprise => "enterprise".into(),
            Self::Unknown(raw) => raw.clone(),
        }
    }
}

fn tier_from_word(word: &str) -> Option<PlanTier> {
    match word.trim().to_ascii_lowercase().as_str() {
        "free" => Some(PlanTier::Free),
        "pro" => Some(PlanTier::Pro),
        "business" => Some(PlanTier::Business),
        "enterprise" => Some(PlanTier::Enterprise),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ZoneAccount {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Zone {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub paused: Option<bool>,
    #[serde(default)]
    pub account: Option<ZoneAccount>,
    pub plan: ZonePlan,
}

impl Zone {
    pub fn tier(&self) -> PlanTier {
        self.plan.tier()
    }
}

impl TokenClient {
    /// `GET /zones/{zone_id}` (Zone Read).
    pub async fn zone(&self, zone_id: &str) -> Result<Zone, CfError> {
        let spec = self.spec(Endpoint::Zone, Some(zone_id));
        self.envelope_result(&spec, &RequestSpec::get(self.url(&["zones", zone_id])))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(legacy: Option<&str>, name: Option<&str>) -> ZonePlan {
        ZonePlan {
            id: None,
            name: name.map(str::to_owned),
            legacy_id: legacy.map(str::to_owned),
        }
    }

    #[test]
    fn each_plan_gets_the_best_method_it_allows() {
        let unknown = PlanTier::Unknown("legacy_id=None name=None".into());
        for (tier, best) in [
            (PlanTier::Enterprise, Method::Logpull),
            (PlanTier::Business, Method::InstantLogs),
            (PlanTier::Pro, Method::Graphql),
            (PlanTier::Free, Method::Graphql),
            (unknown.clone(), Method::Graphql),
        ] {
            assert_eq!(tier.default_method(), best, "{tier:?}");
            assert!(tier.allows(best), "{tier:?}");
        }
        assert!(!PlanTier::Business.allows(Method::Logpull));
        assert!(!PlanTier::Pro.allows(Method::InstantLogs));
        assert!(PlanTier::Enterprise.allows(Method::InstantLogs));
        assert!(unknown.allows(Method::Logpull));
        assert_eq!(PlanTier::Business.word(), "business");
    }

    #[test]
    fn legacy_id_decides_the_tier() {
        assert_eq!(
            plan(Some("enterprise"), Some("Pro Website")).tier(),
            PlanTier::Enterprise
        );
        assert_eq!(plan(Some("business"), None).tier(), PlanTier::Business);
    }

    #[test]
    fn name_is_the_fallback() {
        assert_eq!(
            plan(None, Some("Enterprise Website")).tier(),
            PlanTier::Enterprise
        );
        assert_eq!(plan(Some(""), Some("Pro Website")).tier(), PlanTier::Pro);
        assert_eq!(plan(None, Some("Free Website")).tier(), PlanTier::Free);
        assert!(matches!(
            plan(None, Some("Professional Services")).tier(),
            PlanTier::Unknown(_)
        ));
        assert!(matches!(plan(None, None).tier(), PlanTier::Unknown(_)));
    }

    #[test]
    fn zone_parses_from_a_real_shaped_result() {
        let json = r#"{"id":"023e105f4ecef8ad9ca31a8372d0c353","name":"example.com","status":"active","paused":false,
            "account":{"id":"01a7362d577a6c3019a474fd6f485823","name":"Demo"},
            "plan":{"id":"94f3b7b768b0458b56d2cac4fe5ec0f9","name":"Enterprise Website","price":0,"currency":"USD",
                    "frequency":"","legacy_id":"enterprise","is_subscribed":true,"can_subscribe":false,"externally_managed":true},
            "name_servers":["a.ns.cloudflare.com"]}"#;
        let zone: Zone = serde_json::from_str(json).unwrap();
        assert_eq!(zone.tier(), PlanTier::Enterprise);
        assert_eq!(zone.account.unwrap().id, "01a7362d577a6c3019a474fd6f485823");
    }
}
