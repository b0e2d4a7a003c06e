//! The local store's posture, found by exercising its own write path under the probe prefix: a filesystem
//! without hard links, or a read-only mount, shows up here rather than on the first archive.

use time::OffsetDateTime;

use super::FsStore;
use crate::digest::Sha256Hash;
use crate::error::StoreError;
use crate::key::ObjectKey;
use crate::model::{Presence, PutOptions};
use crate::posture::{BackendKind, Check, CheckStatus, ProviderPosture, Role};

impl FsStore {
    pub async fn probe(&self, role: Role) -> ProviderPosture {
        let mut posture = ProviderPosture {
            role,
            backend: BackendKind::LocalDirectory,
            location: self.location(),
            checked_at: OffsetDateTime::now_utc(),
            versioning: Check::new(CheckStatus::Missing, "a local directory keeps no versions"),
            object_lock: Check::new(
                CheckStatus::Missing,
                "a local directory has no Object Lock; retention relies on file permissions and operators",
            ),
            default_retention: None,
            per_object_retention: Check::new(
                CheckStatus::Missing,
                "not available on a local directory",
            ),
            conditional_put: Check::new(CheckStatus::Unknown, "not tried"),
            conditional_multipart_complete: Check::new(CheckStatus::Unknown, "not tried"),
            checksum_verification: Check::new(CheckStatus::Unknown, "not tried"),
            warnings: Vec::new(),
        };
        match self.exercise_probe().await {
            Ok((conditional, checksum)) => {
                posture.conditional_multipart_complete = Check::new(
                    conditional.status,
                    "the local store has no multipart path; every write is create-new",
                );
                posture.conditional_put = conditional;
                posture.checksum_verification = checksum;
            }
            Err(error) => {
                let failed =
                    Check::new(CheckStatus::Unknown, format!("probe write failed: {error}"));
                posture.conditional_put = failed.clone();
                posture.conditional_multipart_complete = failed.clone();
                posture.checksum_verification = failed;
            }
        }
        posture.derive_warnings();
        posture
    }

    async fn exercise_probe(&self) -> Result<(Check, Check), StoreError> {
        let run = ObjectKey::new(format!("{}/{}", self.probe_prefix, uuid::Uuid::new_v4()))?;
        let first = run.join("create-new")?;
        let plain = PutOptions::default();
        self.put_stream(&first, &b"rainlogs probe: original"[..], &plain)
            .await?;
        let conditional = match self
            .put_stream(&first, &b"rainlogs probe: replacement"[..], &plain)
            .await
        {
            Err(StoreError::Incident(_)) => Check::new(
                CheckStatus::Enforced,
                "a second create of the key was refused",
            ),
            Ok(outcome) if outcome.presence == Presence::AlreadyPresent => Check::new(
                CheckStatus::Ignored,
                "different content was reported as already present",
            ),
            Ok(_) => Check::new(
                CheckStatus::Ignored,
                "a second create of the key replaced it",
            ),
            Err(error) => Check::new(
                CheckStatus::Unknown,
                format!("second create failed unexpectedly: {error}"),
            ),
        };
        let wrong = PutOptions {
            sha256: Some(Sha256Hash::of(b"some other content")),
            ..PutOptions::default()
        };
        let second = run.join("wrong-checksum")?;
        let checksum = match self
            .put_stream(&second, &b"rainlogs probe: checksum"[..], &wrong)
            .await
        {
            Err(StoreError::ChecksumMismatch { .. }) => Check::new(
                CheckStatus::Enforced,
                "content that does not match its declared sha256 was refused",
            ),
            Ok(_) => Check::new(
                CheckStatus::Ignored,
                "content with a wrong declared sha256 was stored",
            ),
            Err(error) => Check::new(CheckStatus::Unknown, format!("unexpected failure: {error}")),
        };
        for key in [&first, &second] {
            if let Err(error) = self.delete(key).await {
                tracing::warn!(%key, %error, "could not remove a probe object");
            }
        }
        let run_dir = self.root.join(run.as_str());
        let _ = tokio::fs::remove_dir(&run_dir).await;
        Ok((conditional, checksum))
    }
}
