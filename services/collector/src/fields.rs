//! The zone's `fields` setting (`default`, `extended`, `all` or an explicit list) as the explicit
//! list sent to Cloudflare. Explicit lists always: Cloudflare's default set may change at any
//! time, which would silently change what is archived.

use rainlogs_cloudflare::{CfError, FieldList};

/// The 9 fields Logpull documents as its default set.
pub const DEFAULT_FIELDS: &[&str] = &[
    "ClientIP",
    "ClientRequestHost",
    "ClientRequestMethod",
    "ClientRequestURI",
    "EdgeEndTimestamp",
    "EdgeResponseBytes",
    "EdgeResponseStatus",
    "EdgeStartTimestamp",
    "RayID",
];

/// What an incident responder usually needs on top of the default set.
pub const EXTENDED_EXTRA_FIELDS: &[&str] = &[
    "BotScore",
    "CacheCacheStatus",
    "CacheResponseBytes",
    "ClientASN",
    "ClientCountry",
    "ClientDeviceType",
    "ClientRequestBytes",
    "ClientRequestPath",
    "ClientRequestProtocol",
    "ClientRequestReferer",
    "ClientRequestScheme",
    "ClientRequestUserAgent",
    "ClientSSLProtocol",
    "ClientSrcPort",
    "EdgeColoCode",
    "EdgePathingOp",
    "EdgePathingSrc",
    "EdgePathingStatus",
    "EdgeServerIP",
    "OriginIP",
    "OriginResponseStatus",
    "ParentRayID",
    "SecurityAction",
    "SecurityRuleID",
    "WAFAttackScore",
    "WorkerSubrequest",
    "ZoneName",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldSpec {
    Default,
    Extended,
    /// Every field the zone offers (`GET .../logs/received/fields`).
    All,
    Explicit(Vec<String>),
}

impl FieldSpec {
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "default" => Self::Default,
            "extended" => Self::Extended,
            "all" => Self::All,
            _ => Self::Explicit(
                text.split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
        }
    }

    /// The explicit list, given the zone's full catalogue when the preset is `all` (callers
    /// without a catalogue pass `None` and get the extended set).
    pub fn resolve(&self, catalogue: Option<Vec<String>>) -> Result<FieldList, CfError> {
        let mut names: Vec<String> = match self {
            Self::Default => DEFAULT_FIELDS.iter().map(|f| (*f).to_owned()).collect(),
            Self::Extended => extended(),
            Self::All => catalogue.unwrap_or_else(extended),
            Self::Explicit(names) => names.clone(),
        };
        names.sort();
        names.dedup();
        FieldList::new(names)
    }
}

fn extended() -> Vec<String> {
    DEFAULT_FIELDS
        .iter()
        .chain(EXTENDED_EXTRA_FIELDS)
        .map(|f| (*f).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_lists_resolve_to_sorted_explicit_lists() {
        let default = FieldSpec::parse("default").resolve(None).unwrap();
        assert_eq!(default.as_slice().len(), 9);
        let extended = FieldSpec::parse("Extended").resolve(None).unwrap();
        assert_eq!(extended.as_slice().len(), 9 + EXTENDED_EXTRA_FIELDS.len());
        let all = FieldSpec::parse("all")
            .resolve(Some(vec!["b".into(), "a".into()]))
            .unwrap();
        assert_eq!(all.to_query_value(), "a,b");
        let explicit = FieldSpec::parse("RayID, ClientIP,RayID")
            .resolve(None)
            .unwrap();
        assert_eq!(explicit.to_query_value(), "ClientIP,RayID");
        assert!(FieldSpec::parse("Ray ID").resolve(None).is_err());
    }

    #[test]
    fn every_preset_field_exists_in_the_simulated_catalogue() {
        let known = cf_sim::http_request_fields();
        for field in DEFAULT_FIELDS.iter().chain(EXTENDED_EXTRA_FIELDS) {
            assert!(
                known.contains(field),
                "{field} is not an http_requests field"
            );
        }
        let mut default = cf_sim::default_http_request_fields();
        default.sort_unstable();
        assert_eq!(default, DEFAULT_FIELDS);
    }
}
