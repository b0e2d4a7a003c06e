//! Token verification (user and account routes) and the account's Customer Metadata Boundary.

use crate::client::{RequestSpec, TokenClient};
use crate::error::CfError;
use crate::route::Endpoint;
use serde::Deserialize;
use time::OffsetDateTime;

/// Which verify route to use. Account-owned tokens fail the user route with code 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOwner<'a> {
    User,
    Account(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenState {
    Active,
    Disabled,
    Expired,
    Other(String),
}

impl<'de> Deserialize<'de> for TokenState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(match raw.as_str() {
            "active" => Self::Active,
            "disabled" => Self::Disabled,
            "expired" => Self::Expired,
            _ => Self::Other(raw),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenStatus {
    pub id: String,
    pub status: TokenState,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_on: Option<OffsetDateTime>,
}

impl TokenStatus {
    /// Active and inside its validity period at `now`.
    pub fn is_usable_at(&self, now: OffsetDateTime) -> bool {
        self.status == TokenState::Active
            && self.not_before.is_none_or(|t| t <= now)
            && self.expires_on.is_none_or(|t| now < t)
    }
}

/// `GET /accounts/{id}/logs/control/cmb/config`. `regions = "eu"` means Logpull is unavailable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CmbConfig {
    #[serde(default)]
    pub regions: Option<String>,
    #[serde(default)]
    pub allow_out_of_region_access: Option<bool>,
}

impl CmbConfig {
    pub fn blocks_logpull(&self) -> bool {
        self.regions
            .as_deref()
            .is_some_and(|r| r.trim().eq_ignore_ascii_case("eu"))
    }
}

impl TokenClient {
    /// `GET /user/tokens/verify` or `GET /accounts/{id}/tokens/verify`. A disabled or expired token is returned
    /// as `Ok` with its state; an unknown or revoked one is `CfError::Auth`.
    pub async fn verify_token(&self, owner: TokenOwner<'_>) -> Result<TokenStatus, CfError> {
        let url = match owner {
            TokenOwner::User => self.url(&["user", "tokens", "verify"]),
            TokenOwner::Account(account_id) => {
                self.url(&["accounts", account_id, "tokens", "verify"])
            }
        };
        let spec = self.spec(Endpoint::TokenVerify, None);
        self.envelope_result(&spec, &RequestSpec::get(url)).await
    }

    /// Verifies on the right route without knowing the token kind: `cfat_` tokens go to the account route; others
    /// try the user route and, on code 1000 (what account tokens get there), the account route.
    pub async fn verify_token_any(&self, account_id: Option<&str>) -> Result<TokenStatus, CfError> {
        match account_id {
            Some(account) if self.token.looks_account_owned() => {
                self.verify_token(TokenOwner::Account(account)).await
            }
            Some(account) => match self.verify_token(TokenOwner::User).await {
                Err(error) if error.api_codes().contains(&1000) => {
                    self.verify_token(TokenOwner::Account(account)).await
                }
                other => other,
            },
            None => self.verify_token(TokenOwner::User).await,
        }
    }

    /// The account's Customer Metadata Boundary; no configuration means no boundary.
    pub async fn cmb_config(&self, account_id: &str) -> Result<CmbConfig, CfError> {
        let spec = self.spec(Endpoint::CmbConfig, None);
        let url = self.url(&["accounts", account_id, "logs", "control", "cmb", "config"]);
        Ok(self
            .envelope::<CmbConfig>(&spec, &RequestSpec::get(url))
            .await?
            .unwrap_or_default())
    }

    /// `Err(LogpullBlockedByMetadataBoundary)` when the account is EU-only (Logpull does not work there).
    pub async fn ensure_logpull_allowed(&self, account_id: &str) -> Result<(), CfError> {
        let config = self.cmb_config(account_id).await?;
        if config.blocks_logpull() {
            return Err(CfError::LogpullBlockedByMetadataBoundary {
                regions: config.regions.unwrap_or_default(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_result_parses_with_and_without_dates() {
        let status: TokenStatus = serde_json::from_str(
            r#"{"id":"ed17574386854bf78a67040be0a770b0","status":"active","not_before":"2018-07-01T05:20:00Z","expires_on":"2030-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert!(status.is_usable_at(now));
        assert!(
            !status.is_usable_at(OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap()),
            "past expires_on"
        );
        let disabled: TokenStatus =
            serde_json::from_str(r#"{"id":"x","status":"disabled"}"#).unwrap();
        assert_eq!(disabled.status, TokenState::Disabled);
        assert!(!disabled.is_usable_at(now));
    }

    #[test]
    fn only_an_eu_boundary_blocks_logpull() {
        assert!(
            CmbConfig {
                regions: Some("eu".into()),
                allow_out_of_region_access: Some(false)
            }
            .blocks_logpull()
        );
        assert!(
            !CmbConfig {
                regions: Some("us".into()),
                allow_out_of_region_access: None
            }
            .blocks_logpull()
        );
        assert!(!CmbConfig::default().blocks_logpull());
    }
}
