//! Writes: one PUT up to the part size, multipart above it. Memory stays at most
//! `(upload_concurrency + 1) * part_size` whatever the object size.

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectLockMode,
};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::io::AsyncRead;
use tokio::task::JoinSet;

use super::S3Store;
use super::failure::Failure;
use crate::conflict::{self, Existing};
use crate::digest::Sha256Hash;
use crate::error::StoreError;
use crate::key::ObjectKey;
use crate::model::{Presence, PutOptions, PutOutcome};
use crate::stream::{fill, hash_stream};

/// Object Lock headers for one write.
#[derive(Clone)]
pub(super) struct Lock {
    pub retain_until: DateTime,
}

/// Rounds up to a whole second: providers keep whole seconds, and retention must never come out shorter.
pub(super) fn retain_until_to_s3(at: OffsetDateTime) -> DateTime {
    let seconds = at.unix_timestamp() + i64::from(at.nanosecond() > 0);
    DateTime::from_secs(seconds)
}

pub(super) fn s3_to_time(at: &DateTime) -> Option<OffsetDateTime> {
    let nanos = i128::from(at.secs()) * 1_000_000_000 + i128::from(at.subsec_nanos());
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

impl S3Store {
    pub async fn put_stream<R: AsyncRead + Unpin + Send>(
        &self,
        key: &ObjectKey,
        mut reader: R,
        options: &PutOptions,
    ) -> Result<PutOutcome, StoreError> {
        let lock = match options.retain_until {
            Some(at) if self.bucket_has_object_lock().await? => Some(Lock {
                retain_until: retain_until_to_s3(at),
            }),
            _ => None,
        };
        let part_size = self.inner.config.part_size;
        let source_error = |source| StoreError::Source {
            key: key.to_string(),
            source,
        };
        let first = fill(&mut reader, part_size).await.map_err(source_error)?;
        if first.len() < part_size {
            return self.put_single(key, first, options, lock).await;
        }
        let second = fill(&mut reader, part_size).await.map_err(source_error)?;
        if second.is_empty() {
            return self.put_single(key, first, options, lock).await;
        }
        self.put_multipart(key, [first, second], reader, options, lock)
            .await
    }

    async fn put_single(
        &self,
        key: &ObjectKey,
        body: Bytes,
        options: &PutOptions,
        lock: Option<Lock>,
    ) -> Result<PutOutcome, StoreError> {
        let sha256 = Sha256Hash::of(&body);
        let size = body.len() as u64;
        check_declared(key, options, sha256)?;
        if self.head_before_put()
            && let Some(outcome) = self.settle_if_taken(key, sha256, size).await?
        {
            return Ok(outcome);
        }
        match self
            .raw_put(
                key,
                body,
                sha256,
                true,
                options.content_type.as_deref(),
                lock.as_ref(),
            )
            .await
        {
            Ok(version_id) => Ok(PutOutcome {
                presence: Presence::Stored,
                sha256,
                size,
                version_id,
                pending_repair: None,
            }),
            Err(failure) if failure.is_status(412) => self.settle_conflict(key, sha256, size).await,
            Err(failure) => Err(failure.into_error("put", key.as_str())),
        }
    }

    /// One PutObject; the probe uses it directly to send deliberately wrong checksums.
    pub(super) async fn raw_put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        checksum: Sha256Hash,
        if_none_match: bool,
        content_type: Option<&str>,
        lock: Option<&Lock>,
    ) -> Result<Option<String>, Failure> {
        let mut request = self
            .client()
            .put_object()
            .bucket(self.bucket())
            .key(key.as_str())
            .content_length(body.len() as i64)
            .checksum_sha256(checksum.to_base64())
            .body(ByteStream::from(body))
            .set_content_type(content_type.map(str::to_owned));
        if if_none_match {
            request = request.if_none_match("*");
        }
        if let Some(lock) = lock {
            request = request
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(lock.retain_until);
        }
        // The signed x-amz-checksum-sha256 header already binds the bytes; signing the payload too would hash
        // every byte a second time for nothing.
        let output = request
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(Failure::from_sdk)?;
        Ok(output.version_id)
    }

    async fn put_multipart<R: AsyncRead + Unpin + Send>(
        &self,
        key: &ObjectKey,
        first_parts: [Bytes; 2],
        reader: R,
        options: &PutOptions,
        lock: Option<Lock>,
    ) -> Result<PutOutcome, StoreError> {
        let mut create = self
            .client()
            .create_multipart_upload()
            .bucket(self.bucket())
            .key(key.as_str())
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .set_content_type(options.content_type.clone());
        if let Some(lock) = &lock {
            create = create
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(lock.retain_until);
        }
        let created = create.send().await.map_err(|error| {
            Failure::from_sdk(error).into_error("create multipart upload", key.as_str())
        })?;
        let upload_id = created.upload_id.ok_or_else(|| StoreError::Provider {
            operation: "create multipart upload",
            key: key.to_string(),
            status: None,
            code: None,
            detail: "response carried no upload id".into(),
        })?;
        let result = self
            .upload_and_complete(key, &upload_id, first_parts, reader, options)
            .await;
        if !matches!(result, Ok(Completion::Completed(_))) {
            self.abort(key, &upload_id).await;
        }
        match result? {
            Completion::Completed(outcome) => Ok(outcome),
            Completion::KeyTaken { sha256, size } => self.settle_conflict(key, sha256, size).await,
        }
    }

    async fn upload_and_complete<R: AsyncRead + Unpin + Send>(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        first_parts: [Bytes; 2],
        mut reader: R,
        options: &PutOptions,
    ) -> Result<Completion, StoreError> {
        let concurrency = self.inner.config.upload_concurrency;
        let part_size = self.inner.config.part_size;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut uploads: JoinSet<Result<CompletedPart, StoreError>> = JoinSet::new();
        let mut completed = Vec::new();
        let mut part_number = 0i32;
        let mut queued = Vec::from(first_parts);
        queued.reverse();
        loop {
            let part = match queued.pop() {
                Some(part) => part,
                None => {
                    fill(&mut reader, part_size)
                        .await
                        .map_err(|source| StoreError::Source {
                            key: key.to_string(),
                            source,
                        })?
                }
            };
            if part.is_empty() {
                break;
            }
            hasher.update(&part);
            size += part.len() as u64;
            part_number += 1;
            while uploads.len() >= concurrency {
                completed.push(joined(uploads.join_next().await)?);
            }
            uploads.spawn(self.clone().upload_part(
                key.clone(),
                upload_id.to_owned(),
                part_number,
                part,
            ));
        }
        while let Some(finished) = uploads.join_next().await {
            completed.push(joined(Some(finished))?);
        }
        let sha256 = Sha256Hash(hasher.finalize().into());
        check_declared(key, options, sha256)?;
        if self.head_before_put() && self.head(key).await?.is_some() {
            return Ok(Completion::KeyTaken { sha256, size });
        }
        completed.sort_by_key(|part| part.part_number);
        let finished = self
            .client()
            .complete_multipart_upload()
            .bucket(self.bucket())
            .key(key.as_str())
            .upload_id(upload_id)
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await;
        match finished {
            Ok(output) => Ok(Completion::Completed(PutOutcome {
                presence: Presence::Stored,
                sha256,
                size,
                version_id: output.version_id,
                pending_repair: None,
            })),
            Err(error) => {
                let failure = Failure::from_sdk(error);
                if failure.is_status(412) {
                    Ok(Completion::KeyTaken { sha256, size })
                } else {
                    Err(failure.into_error("complete multipart upload", key.as_str()))
                }
            }
        }
    }

    async fn upload_part(
        self,
        key: ObjectKey,
        upload_id: String,
        part_number: i32,
        part: Bytes,
    ) -> Result<CompletedPart, StoreError> {
        let checksum = Sha256Hash::of(&part).to_base64();
        let output = self
            .client()
            .upload_part()
            .bucket(self.bucket())
            .key(key.as_str())
            .upload_id(upload_id)
            .part_number(part_number)
            .content_length(part.len() as i64)
            .checksum_sha256(checksum.clone())
            .body(ByteStream::from(part))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|error| Failure::from_sdk(error).into_error("upload part", key.as_str()))?;
        Ok(CompletedPart::builder()
            .part_number(part_number)
            .set_e_tag(output.e_tag)
            .checksum_sha256(output.checksum_sha256.unwrap_or(checksum))
            .build())
    }

    pub(super) async fn abort(&self, key: &ObjectKey, upload_id: &str) {
        let aborted = self
            .client()
            .abort_multipart_upload()
            .bucket(self.bucket())
            .key(key.as_str())
            .upload_id(upload_id)
            .send()
            .await;
        if let Err(error) = aborted {
            let failure = Failure::from_sdk(error);
            tracing::warn!(%key, upload_id, error = %failure.message, "could not abort a multipart upload");
        }
    }

    /// The key was taken: identical content is an idempotent success, anything else an incident.
    async fn settle_conflict(
        &self,
        key: &ObjectKey,
        sha256: Sha256Hash,
        size: u64,
    ) -> Result<PutOutcome, StoreError> {
        match self.settle_if_taken(key, sha256, size).await? {
            Some(outcome) => Ok(outcome),
            // Refused as taken, yet nothing to head: SeaweedFS does this for a key that is a directory of
            // other keys. (A delete racing this put would look the same; the reaper never deletes keys that
            // are still being written.)
            None => Err(StoreError::KeyIsPrefix {
                key: key.to_string(),
            }),
        }
    }

    async fn settle_if_taken(
        &self,
        key: &ObjectKey,
        sha256: Sha256Hash,
        size: u64,
    ) -> Result<Option<PutOutcome>, StoreError> {
        let Some(head) = self.head(key).await? else {
            return Ok(None);
        };
        let existing_sha256 = match head.sha256 {
            Some(stored) => stored,
            None => {
                let reader = self.get(key).await?;
                hash_stream(reader)
                    .await
                    .map_err(|error| StoreError::Unavailable {
                        operation: "get",
                        key: key.to_string(),
                        detail: error.to_string(),
                    })?
                    .0
            }
        };
        let existing = Existing {
            sha256: existing_sha256,
            size: head.size,
            version_id: head.version_id,
        };
        conflict::settle(key.as_str(), &self.location(), existing, sha256, size).map(Some)
    }
}

enum Completion {
    Completed(PutOutcome),
    KeyTaken { sha256: Sha256Hash, size: u64 },
}

fn joined(
    finished: Option<Result<Result<CompletedPart, StoreError>, tokio::task::JoinError>>,
) -> Result<CompletedPart, StoreError> {
    match finished {
        Some(Ok(part)) => part,
        Some(Err(join)) => Err(StoreError::Provider {
            operation: "upload part",
            key: String::new(),
            status: None,
            code: None,
            detail: format!("part upload task failed: {join}"),
        }),
        None => Err(StoreError::Provider {
            operation: "upload part",
            key: String::new(),
            status: None,
            code: None,
            detail: "no part upload was running".into(),
        }),
    }
}

fn check_declared(
    key: &ObjectKey,
    options: &PutOptions,
    actual: Sha256Hash,
) -> Result<(), StoreError> {
    match options.sha256 {
        Some(expected) if expected != actual => Err(StoreError::ChecksumMismatch {
            key: key.to_string(),
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}
