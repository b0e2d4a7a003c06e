//! What a storage provider was seen to enforce when probed, as services expose it in `/ready` and metrics and
//! the verifier reports it. Every status comes from an attempt that should have been refused, never from a
//! provider's word: some providers answer 200 and ignore If-None-Match or Object Lock.

use time::OffsetDateTime;

use crate::model::LockMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Tried and refused/applied exactly as it should be.
    Enforced,
    /// The provider says it is not configured (for example, a bucket without Object Lock).
    Missing,
    /// The provider accepted the request and did not enforce it: the dangerous case.
    Ignored,
    /// Could not be tried (denied to these credentials, provider unreachable, not applicable).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    pub status: CheckStatus,
    pub detail: String,
}

impl Check {
    pub fn new(status: CheckStatus, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    pub fn is_enforced(&self) -> bool {
        self.status == CheckStatus::Enforced
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    LocalDirectory,
    S3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Only,
    Primary,
    Secondary,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Only => "store",
            Role::Primary => "primary",
            Role::Secondary => "secondary",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DefaultRetention {
    pub mode: Option<LockMode>,
    pub days: Option<i32>,
    pub years: Option<i32>,
}

/// The probed posture of one provider.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProviderPosture {
    pub role: Role,
    pub backend: BackendKind,
    /// Where it points, without credentials: a directory path or `s3://bucket at endpoint`.
    pub location: String,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    pub versioning: Check,
    /// Object Lock enabled on the bucket.
    pub object_lock: Check,
    pub default_retention: Option<DefaultRetention>,
    /// A COMPLIANCE retain-until set on a put is visible on head and refuses an early delete.
    pub per_object_retention: Check,
    /// A second `If-None-Match: *` PUT of an existing key is refused.
    pub conditional_put: Check,
    /// `If-None-Match: *` on CompleteMultipartUpload of an existing key is refused.
    pub conditional_multipart_complete: Check,
    /// A PUT whose `x-amz-checksum-sha256` does not match its bytes is refused.
    pub checksum_verification: Check,
    pub warnings: Vec<String>,
}

impl ProviderPosture {
    pub(crate) fn derive_warnings(&mut self) {
        let mut warnings = Vec::new();
        let lock = &self.object_lock;
        match lock.status {
            CheckStatus::Enforced => {}
            CheckStatus::Unknown => warnings.push(format!("Object Lock could not be checked: {}", lock.detail)),
            _ => warnings.push(format!(
                "no Object Lock: archives can be deleted or replaced before retain-until by anyone holding write \
                 credentials ({})",
                lock.detail
            )),
        }
        if lock.is_enforced() && !self.per_object_retention.is_enforced() {
            warnings.push(format!(
                "per-object COMPLIANCE retention not enforced ({:?}): {}",
                self.per_object_retention.status, self.per_object_retention.detail
            ));
        }
        if self.backend == BackendKind::S3 && !self.versioning.is_enforced() {
            warnings.push(format!(
                "bucket versioning not enabled ({:?}): {}",
                self.versioning.status, self.versioning.detail
            ));
        }
        for (name, check, consequence) in [
            (
                "If-None-Match on PUT",
                &self.conditional_put,
                "a retried or buggy writer could overwrite an archive",
            ),
            (
                "If-None-Match on CompleteMultipartUpload",
                &self.conditional_multipart_complete,
                "a large archive could be overwritten (the store checks with HEAD first, which is racy)",
            ),
            (
                "x-amz-checksum-sha256 verification",
                &self.checksum_verification,
                "bytes corrupted in transit would be stored unnoticed until the verifier reads them",
            ),
        ] {
            if !check.is_enforced() {
                warnings.push(format!(
                    "{name} {:?}: {consequence} ({})",
                    check.status, check.detail
                ));
            }
        }
        self.warnings = warnings;
    }

    /// True when every protection RainLogs relies on was seen enforced.
    pub fn is_fully_protected(&self) -> bool {
        self.warnings.is_empty()
    }
}

/// The posture of a whole store: one provider, or primary plus secondary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Posture {
    pub providers: Vec<ProviderPosture>,
    /// Every provider's warnings, prefixed with its role and location, for humans and `/ready`.
    pub warnings: Vec<String>,
}

impl Posture {
    pub fn new(providers: Vec<ProviderPosture>) -> Self {
        let warnings = providers
            .iter()
            .flat_map(|provider| {
                provider.warnings.iter().map(move |warning| {
                    format!(
                        "{} {}: {warning}",
                        provider.role.as_str(),
                        provider.location
                    )
                })
            })
            .collect();
        Self {
            providers,
            warnings,
        }
    }

    pub fn is_fully_protected(&self) -> bool {
        self.warnings.is_empty()
    }
}
