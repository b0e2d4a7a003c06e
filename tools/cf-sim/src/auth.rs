//! Credentials: `Authorization: Bearer` tokens and legacy `X-Auth-Email` + `X-Auth-Key`.

use poem::http::HeaderMap;

use crate::lock;
use crate::scenario::{Permission, TokenKind, TokenSpec, TokenStatus, ZoneSpec};
use crate::state::Shared;

#[derive(Clone, Debug)]
pub(crate) enum Credential {
    Token(TokenSpec),
    GlobalKey { email: String },
}

#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub credential: Credential,
}

/// Why a request could not be authenticated; mapped to Cloudflare's codes by the HTTP layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// 6003 with these `error_chain` entries (6102 / 6103 / 6111).
    MalformedHeaders(Vec<(u32, &'static str)>),
    /// No credentials at all.
    Missing,
    /// A well-formed token that does not exist or was revoked.
    UnknownToken,
    /// A well-formed global key / email pair that does not match.
    UnknownKey,
}

pub(crate) const CHAIN_EMAIL: (u32, &str) = (6102, "Invalid format for X-Auth-Email header");
pub(crate) const CHAIN_KEY: (u32, &str) = (6103, "Invalid format for X-Auth-Key header");
pub(crate) const CHAIN_AUTHORIZATION: (u32, &str) =
    (6111, "Invalid format for Authorization header");

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"))
}

fn valid_token_chars(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn valid_email(email: &str) -> bool {
    let mut parts = email.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(local), Some(domain), None)
        if !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace))
}

fn valid_global_key(key: &str) -> bool {
    key.len() == 37 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn authenticate(headers: &HeaderMap, shared: &Shared) -> Result<Caller, AuthFailure> {
    if let Some(authorization) = header(headers, "authorization") {
        let token = authorization
            .strip_prefix("Bearer ")
            .filter(|t| valid_token_chars(t));
        let Some(token) = token else {
            return Err(AuthFailure::MalformedHeaders(vec![CHAIN_AUTHORIZATION]));
        };
        let tokens = lock(&shared.tokens);
        return match tokens.get(token) {
            Some(state) if !state.revoked => Ok(Caller {
                credential: Credential::Token(state.spec.clone()),
            }),
            _ => Err(AuthFailure::UnknownToken),
        };
    }
    let email = header(headers, "x-auth-email");
    let key = header(headers, "x-auth-key");
    if email.is_none() && key.is_none() {
        return Err(AuthFailure::Missing);
    }
    let mut chain = Vec::new();
    if !email.is_some_and(valid_email) {
        chain.push(CHAIN_EMAIL);
    }
    if !key.is_some_and(valid_global_key) {
        chain.push(CHAIN_KEY);
    }
    if !chain.is_empty() {
        return Err(AuthFailure::MalformedHeaders(chain));
    }
    let (email, key) = (email.unwrap_or_default(), key.unwrap_or_default());
    shared
        .keys
        .iter()
        .find(|k| k.email.eq_ignore_ascii_case(email) && k.key.eq_ignore_ascii_case(key))
        .map(|k| Caller {
            credential: Credential::GlobalKey {
                email: k.email.clone(),
            },
        })
        .ok_or(AuthFailure::UnknownKey)
}

impl Caller {
    /// Key for per-credential rate limits.
    pub fn principal(&self) -> String {
        match &self.credential {
            Credential::Token(t) => format!("token:{}", t.value),
            Credential::GlobalKey { email } => format!("key:{email}"),
        }
    }

    pub fn token(&self) -> Option<&TokenSpec> {
        match &self.credential {
            Credential::Token(t) => Some(t),
            Credential::GlobalKey { .. } => None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.token().is_none_or(|t| t.status == TokenStatus::Active)
    }

    /// Logs Edit also grants Logs Read, as the dashboard's "Write" does.
    pub fn has(&self, permission: Permission) -> bool {
        match &self.credential {
            Credential::GlobalKey { .. } => true,
            Credential::Token(t) => {
                t.permissions.contains(&permission)
                    || (permission == Permission::LogsRead
                        && t.permissions.contains(&Permission::LogsEdit))
            }
        }
    }

    pub fn has_any(&self, permissions: &[Permission]) -> bool {
        permissions.iter().any(|p| self.has(*p))
    }

    pub fn can_access_zone(&self, zone: &ZoneSpec) -> bool {
        match &self.credential {
            Credential::GlobalKey { .. } => true,
            Credential::Token(t) => {
                let in_account = t.kind == TokenKind::User
                    || t.account_id.as_deref() == Some(zone.account_id.as_str());
                let in_scope = t.zones.iter().any(|z| z == "*" || *z == zone.id);
                in_account && in_scope
            }
        }
    }

    pub fn can_access_account(&self, account_id: &str, shared: &Shared) -> bool {
        match &self.credential {
            Credential::GlobalKey { .. } => true,
            Credential::Token(t) => match t.kind {
                TokenKind::Account => t.account_id.as_deref() == Some(account_id),
                TokenKind::User => lock(&shared.zones)
                    .values()
                    .any(|z| z.spec.account_id == account_id && self.can_access_zone(&z.spec)),
            },
        }
    }
}
