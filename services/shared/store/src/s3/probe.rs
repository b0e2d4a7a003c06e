//! Capability probe: every protection is tried against objects under the probe prefix and counted only when the
//! provider visibly enforces it. A 200 proves nothing (Garage 2.5 accepts and ignores If-None-Match and Object
//! Lock).

use std::sync::atomic::Ordering;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectLockMode,
};
use bytes::Bytes;
use futures::StreamExt;
use time::OffsetDateTime;

use super::S3Store;
use super::bucket::{Versioning, default_retention_of};
use super::failure::Failure;
use super::put::{Lock, retain_until_to_s3};
use crate::digest::Sha256Hash;
use crate::error::StoreError;
use crate::key::ObjectKey;
use crate::model::LockMode;
use crate::posture::{BackendKind, Check, CheckStatus, ProviderPosture, Role};

/// At most this many leftovers of earlier probes are swept per probe, so a start never stalls on cleanup.
const SWEEP_LIMIT: usize = 100;

/// Age after which an earlier probe run is certainly finished and its objects may be swept.
const SWEEP_MIN_AGE: time::Duration = time::Duration::minutes(10);

const ORIGINAL: &[u8] = b"rainlogs probe: original";
const REPLACEMENT: &[u8] = b"rainlogs probe: replacement";

impl S3Store {
    /// Probes what the provider really enforces. Never fails: what could not be tried is `Unknown` with the reason
    /// (read-only credentials, unreachable provider). Writes a few tiny objects under the probe prefix.
    pub async fn probe(&self, role: Role) -> ProviderPosture {
        let not_tried = Check::new(CheckStatus::Unknown, "not tried");
        let mut posture = ProviderPosture {
            role,
            backend: BackendKind::S3,
            location: self.location(),
            checked_at: OffsetDateTime::now_utc(),
            versioning: not_tried.clone(),
            object_lock: not_tried.clone(),
            default_retention: None,
            per_object_retention: not_tried.clone(),
            conditional_put: not_tried.clone(),
            conditional_multipart_complete: not_tried.clone(),
            checksum_verification: not_tried,
            warnings: Vec::new(),
        };
        posture.versioning = match self.read_versioning().await {
            Ok(Versioning::Enabled) => Check::new(CheckStatus::Enforced, "versioning enabled"),
            Ok(Versioning::Suspended) => Check::new(CheckStatus::Missing, "versioning suspended"),
            Ok(Versioning::Never) => Check::new(CheckStatus::Missing, "versioning never enabled"),
            Err(error) => Check::new(CheckStatus::Unknown, error.to_string()),
        };
        posture.object_lock = match self.read_object_lock_configuration().await {
            Ok(Some(config)) => {
                let _ = self.inner.object_lock.set(true);
                posture.default_retention = default_retention_of(&config);
                Check::new(CheckStatus::Enforced, "Object Lock enabled on the bucket")
            }
            Ok(None) => {
                let _ = self.inner.object_lock.set(false);
                Check::new(
                    CheckStatus::Missing,
                    "the bucket has no Object Lock configuration",
                )
            }
            Err(error) => Check::new(CheckStatus::Unknown, error.to_string()),
        };
        self.sweep_old_probes().await;
        match self.exercise_writes(posture.object_lock.status).await {
            Ok(checks) => {
                posture.conditional_put = checks.conditional_put;
                posture.checksum_verification = checks.checksum_verification;
                posture.conditional_multipart_complete = checks.conditional_multipart_complete;
                posture.per_object_retention = checks.per_object_retention;
            }
            Err(error) => {
                let reason =
                    Check::new(CheckStatus::Unknown, format!("probe write failed: {error}"));
                posture.conditional_put = reason.clone();
                posture.checksum_verification = reason.clone();
                posture.conditional_multipart_complete = reason.clone();
                posture.per_object_retention = reason;
            }
        }
        if posture.object_lock.status == CheckStatus::Missing {
            posture.per_object_retention =
                Check::new(CheckStatus::Missing, "the bucket has no Object Lock");
        }
        let ignores_conditional = posture.conditional_put.status == CheckStatus::Ignored
            || posture.conditional_multipart_complete.status == CheckStatus::Ignored;
        self.inner
            .head_before_put
            .store(ignores_conditional, Ordering::Relaxed);
        posture.derive_warnings();
        posture
    }

    async fn exercise_writes(
        &self,
        object_lock_status: CheckStatus,
    ) -> Result<WriteChecks, StoreError> {
        let object_lock = object_lock_status == CheckStatus::Enforced;
        let run = ObjectKey::new(format!(
            "{}/{}-{}",
            self.config().probe_prefix,
            OffsetDateTime::now_utc().unix_timestamp(),
            uuid::Uuid::new_v4().simple()
        ))?;
        let original = run.join("conditional")?;
        let wrong = run.join("wrong-checksum")?;
        // Probe objects carry a short explicit retention: it overrides a bucket default of years, and the
        // early-delete test needs one.
        let retain_until = OffsetDateTime::now_utc() + self.config().probe_retention;
        let lock = object_lock.then(|| Lock {
            retain_until: retain_until_to_s3(retain_until),
        });
        let body = Bytes::from_static(ORIGINAL);
        let version = self
            .raw_put(
                &original,
                body.clone(),
                Sha256Hash::of(ORIGINAL),
                true,
                None,
                lock.as_ref(),
            )
            .await
            .map_err(|failure| failure.into_error("probe put", original.as_str()))?;

        let conditional_put = refusal(
            self.raw_put(
                &original,
                body,
                Sha256Hash::of(ORIGINAL),
                true,
                None,
                lock.as_ref(),
            )
            .await,
            |failure| failure.is_status(412),
            "a second PUT with If-None-Match: * was refused (412)",
            "a second PUT with If-None-Match: * was accepted",
        );
        let checksum_verification = refusal(
            self.raw_put(
                &wrong,
                Bytes::from_static(ORIGINAL),
                Sha256Hash::of(REPLACEMENT),
                true,
                None,
                lock.as_ref(),
            )
            .await,
            |failure| failure.is_checksum_refusal(),
            "a PUT whose x-amz-checksum-sha256 did not match its bytes was refused",
            "a PUT whose x-amz-checksum-sha256 did not match its bytes was stored",
        );
        let conditional_multipart_complete = refusal(
            self.multipart_over(&original, lock.as_ref()).await,
            |failure| failure.is_status(412),
            "CompleteMultipartUpload with If-None-Match: * on an existing key was refused (412)",
            "CompleteMultipartUpload with If-None-Match: * replaced an existing key",
        );
        let per_object_retention = match object_lock_status {
            CheckStatus::Enforced => {
                self.check_retention(&original, version.as_deref(), retain_until)
                    .await
            }
            CheckStatus::Missing => {
                Check::new(CheckStatus::Missing, "the bucket has no Object Lock")
            }
            _ => Check::new(
                CheckStatus::Unknown,
                "the bucket's Object Lock configuration could not be read",
            ),
        };
        for key in [&original, &wrong] {
            // Locked probe objects stay until their short retention passes; a later probe sweeps them.
            let _ = self.delete(key).await;
        }
        Ok(WriteChecks {
            conditional_put,
            checksum_verification,
            conditional_multipart_complete,
            per_object_retention,
        })
    }

    /// A one-part multipart upload completed with `If-None-Match: *` over an existing key.
    async fn multipart_over(
        &self,
        key: &ObjectKey,
        lock: Option<&Lock>,
    ) -> Result<Option<String>, Failure> {
        let mut create = self
            .client()
            .create_multipart_upload()
            .bucket(self.bucket())
            .key(key.as_str())
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        if let Some(lock) = lock {
            create = create
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(lock.retain_until);
        }
        let upload_id = create
            .send()
            .await
            .map_err(Failure::from_sdk)?
            .upload_id
            .unwrap_or_default();
        let checksum = Sha256Hash::of(REPLACEMENT).to_base64();
        let result = async {
            let part = self
                .client()
                .upload_part()
                .bucket(self.bucket())
                .key(key.as_str())
                .upload_id(&upload_id)
                .part_number(1)
                .checksum_sha256(checksum.clone())
                .body(ByteStream::from_static(REPLACEMENT))
                .send()
                .await
                .map_err(Failure::from_sdk)?;
            let completed = CompletedPart::builder()
                .part_number(1)
                .set_e_tag(part.e_tag)
                .checksum_sha256(part.checksum_sha256.unwrap_or(checksum))
                .build();
            let output = self
                .client()
                .complete_multipart_upload()
                .bucket(self.bucket())
                .key(key.as_str())
                .upload_id(&upload_id)
                .if_none_match("*")
                .multipart_upload(CompletedMultipartUpload::builder().parts(completed).build())
                .send()
                .await
                .map_err(Failure::from_sdk)?;
            Ok(output.version_id)
        }
        .await;
        if result.is_err() {
            self.abort(key, &upload_id).await;
        }
        result
    }

    /// Retention must be visible on head and must refuse deleting the version before retain-until.
    async fn check_retention(
        &self,
        key: &ObjectKey,
        version: Option<&str>,
        requested: OffsetDateTime,
    ) -> Check {
        let head = match self.head(key).await {
            Ok(Some(head)) => head,
            Ok(None) => return Check::new(CheckStatus::Unknown, "the probe object vanished"),
            Err(error) => return Check::new(CheckStatus::Unknown, error.to_string()),
        };
        let Some(lock) = head.lock else {
            return Check::new(
                CheckStatus::Ignored,
                "a PUT with COMPLIANCE retain-until was accepted but head shows no retention",
            );
        };
        let drift = (lock.retain_until - requested).abs();
        if lock.mode != LockMode::Compliance || drift > time::Duration::seconds(2) {
            return Check::new(
                CheckStatus::Ignored,
                format!(
                    "head shows {:?} until {} instead of COMPLIANCE until {requested}",
                    lock.mode, lock.retain_until
                ),
            );
        }
        let deleted = self
            .client()
            .delete_object()
            .bucket(self.bucket())
            .key(key.as_str())
            .set_version_id(version.map(str::to_owned))
            .send()
            .await;
        match deleted.map_err(Failure::from_sdk) {
            Err(failure) if failure.is_status(403) => Check::new(
                CheckStatus::Enforced,
                "COMPLIANCE retain-until is visible on head and deleting the version early was refused",
            ),
            Err(failure) => Check::new(
                CheckStatus::Unknown,
                format!("early delete failed oddly: {}", failure.message),
            ),
            Ok(_) => Check::new(
                CheckStatus::Ignored,
                "deleting a version under COMPLIANCE retention succeeded before retain-until",
            ),
        }
    }

    /// Removes objects left by earlier probes whose retention has passed; refusals are expected and ignored.
    /// Runs younger than `SWEEP_MIN_AGE` are left alone: they may belong to a probe running right now.
    async fn sweep_old_probes(&self) {
        let prefix = format!("{}/", self.config().probe_prefix);
        let cutoff = (OffsetDateTime::now_utc() - SWEEP_MIN_AGE).unix_timestamp();
        let mut listing = self.list(&prefix).take(SWEEP_LIMIT);
        while let Some(Ok(object)) = listing.next().await {
            let started = object
                .key
                .strip_prefix(&prefix)
                .and_then(|run| run.split(['-', '/']).next())
                .and_then(|seconds| seconds.parse::<i64>().ok());
            if started.is_some_and(|started| started < cutoff)
                && let Ok(key) = ObjectKey::new(object.key)
            {
                let _ = self.delete(&key).await;
            }
        }
    }
}

struct WriteChecks {
    conditional_put: Check,
    checksum_verification: Check,
    conditional_multipart_complete: Check,
    per_object_retention: Check,
}

/// `Enforced` when the provider refused as expected, `Ignored` when it accepted, `Unknown` otherwise.
fn refusal<T>(
    attempt: Result<T, Failure>,
    expected: impl Fn(&Failure) -> bool,
    enforced: &str,
    ignored: &str,
) -> Check {
    match attempt {
        Err(failure) if expected(&failure) => Check::new(CheckStatus::Enforced, enforced),
        Err(failure) => Check::new(
            CheckStatus::Unknown,
            format!(
                "refused for another reason (HTTP {:?} {:?}): {}",
                failure.status, failure.code, failure.message
            ),
        ),
        Ok(_) => Check::new(CheckStatus::Ignored, ignored),
    }
}
