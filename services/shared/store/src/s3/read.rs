//! Reads, listings and deletes.

use aws_sdk_s3::types::{ChecksumMode, ObjectLockMode};
use futures::stream::{self, BoxStream, StreamExt};
use time::OffsetDateTime;

use super::S3Store;
use super::failure::Failure;
use super::put::s3_to_time;
use crate::digest::Sha256Hash;
use crate::error::StoreError;
use crate::key::ObjectKey;
use crate::model::{
    DeleteOutcome, ListedObject, LockMode, ObjectHead, ObjectLock, ObjectReader, PutOptions,
    PutOutcome,
};

/// A stored version of a key (or a delete marker, which holds no data but hides older versions).
struct Version {
    id: Option<String>,
}

impl S3Store {
    pub async fn put_bytes(
        &self,
        key: &ObjectKey,
        bytes: bytes::Bytes,
        options: &PutOptions,
    ) -> Result<PutOutcome, StoreError> {
        self.put_stream(key, &bytes[..], options).await
    }

    /// The whole object in memory: for small objects (checkpoints, entries), not archives.
    pub async fn get_bytes(&self, key: &ObjectKey) -> Result<bytes::Bytes, StoreError> {
        crate::stream::read_whole(key.as_str(), self.get(key).await?).await
    }

    pub async fn get(&self, key: &ObjectKey) -> Result<ObjectReader, StoreError> {
        self.get_version(key, None).await
    }

    /// One stored version of `key` (`None`: the current one). A version the provider does not
    /// hold fails like a missing object does.
    pub async fn get_version(
        &self,
        key: &ObjectKey,
        version_id: Option<&str>,
    ) -> Result<ObjectReader, StoreError> {
        let output = self
            .client()
            .get_object()
            .bucket(self.bucket())
            .key(key.as_str())
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(|error| Failure::from_sdk(error).into_error("get", key.as_str()))?;
        let size = output
            .content_length
            .and_then(|length| u64::try_from(length).ok());
        let body = output.body.into_async_read();
        Ok(ObjectReader::new(size, output.version_id, Box::pin(body)))
    }

    pub async fn get_range(
        &self,
        key: &ObjectKey,
        offset: u64,
        len: u64,
    ) -> Result<bytes::Bytes, StoreError> {
        if len == 0 {
            return Ok(bytes::Bytes::new());
        }
        let last = offset.saturating_add(len - 1);
        let output = self
            .client()
            .get_object()
            .bucket(self.bucket())
            .key(key.as_str())
            .range(format!("bytes={offset}-{last}"))
            .send()
            .await
            .map_err(|error| Failure::from_sdk(error).into_error("get range", key.as_str()))?;
        let body = output.body.into_async_read();
        crate::stream::read_whole(
            key.as_str(),
            ObjectReader::new(Some(len), output.version_id, Box::pin(body)),
        )
        .await
    }

    pub async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectHead>, StoreError> {
        self.head_version(key, None).await
    }

    async fn head_version(
        &self,
        key: &ObjectKey,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectHead>, StoreError> {
        let response = self
            .client()
            .head_object()
            .bucket(self.bucket())
            .key(key.as_str())
            .set_version_id(version_id.map(str::to_owned))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        let output = match response {
            Ok(output) => output,
            Err(error) => {
                let failure = Failure::from_sdk(error);
                if failure.is_status(404) {
                    return Ok(None);
                }
                return Err(failure.into_error("head", key.as_str()));
            }
        };
        let mode = match output.object_lock_mode {
            Some(ObjectLockMode::Compliance) => Some(LockMode::Compliance),
            Some(ObjectLockMode::Governance) => Some(LockMode::Governance),
            _ => None,
        };
        let retain_until = output
            .object_lock_retain_until_date
            .as_ref()
            .and_then(s3_to_time);
        let lock = match (mode, retain_until) {
            (Some(mode), Some(retain_until)) => Some(ObjectLock { mode, retain_until }),
            _ => None,
        };
        Ok(Some(ObjectHead {
            size: output
                .content_length
                .and_then(|length| u64::try_from(length).ok())
                .unwrap_or(0),
            sha256: output
                .checksum_sha256
                .as_deref()
                .and_then(Sha256Hash::from_s3_checksum),
            lock,
            version_id: output.version_id,
            content_type: output.content_type,
        }))
    }

    /// Objects whose key starts with `prefix`, page by page as the stream is read. The order is the
    /// provider's: SeaweedFS 4.48 pages in directory order, not the UTF-8 order S3 documents.
    pub fn list(&self, prefix: &str) -> BoxStream<'static, Result<ListedObject, StoreError>> {
        let prefix_owned = prefix.to_owned();
        let pages = self
            .client()
            .list_objects_v2()
            .bucket(self.bucket())
            .prefix(prefix)
            .into_paginator()
            .send();
        stream::unfold(pages, |mut pages| async move {
            pages.next().await.map(|page| (page, pages))
        })
        .flat_map(move |page| {
            let items: Vec<Result<ListedObject, StoreError>> = match page {
                Ok(page) => page
                    .contents
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(listed)
                    .collect(),
                Err(error) => vec![Err(
                    Failure::from_sdk(error).into_error("list", &prefix_owned)
                )],
            };
            stream::iter(items)
        })
        .boxed()
    }

    /// Deletes every version of `key`. Object Lock refusing it is `RetentionRefused`, a bug alarm for the caller.
    pub async fn delete(&self, key: &ObjectKey) -> Result<DeleteOutcome, StoreError> {
        let versions = self.versions_of(key).await?;
        if versions.is_empty() {
            return Ok(DeleteOutcome::NotFound);
        }
        for version in &versions {
            self.delete_version(key, version.id.as_deref()).await?;
        }
        Ok(DeleteOutcome::Deleted {
            versions: versions.len(),
        })
    }

    async fn versions_of(&self, key: &ObjectKey) -> Result<Vec<Version>, StoreError> {
        let mut versions = Vec::new();
        let mut markers: (Option<String>, Option<String>) = (None, None);
        loop {
            let response = self
                .client()
                .list_object_versions()
                .bucket(self.bucket())
                .prefix(key.as_str())
                .set_key_marker(markers.0.take())
                .set_version_id_marker(markers.1.take())
                .send()
                .await;
            let page = match response {
                Ok(page) => page,
                Err(error) => {
                    let failure = Failure::from_sdk(error);
                    // Providers without version listing: fall back to the one current object.
                    if failure.is_status(501) || failure.code_is("NotImplemented") {
                        return self.current_version(key).await;
                    }
                    return Err(failure.into_error("list versions", key.as_str()));
                }
            };
            let data = page
                .versions
                .unwrap_or_default()
                .into_iter()
                .filter(|version| version.key.as_deref() == Some(key.as_str()))
                .map(|version| Version {
                    id: version.version_id,
                });
            // Delete markers go after the data: removing them first would briefly resurrect a hidden version.
            let deletion_markers: Vec<Version> = page
                .delete_markers
                .unwrap_or_default()
                .into_iter()
                .filter(|marker| marker.key.as_deref() == Some(key.as_str()))
                .map(|marker| Version {
                    id: marker.version_id,
                })
                .collect();
            versions.extend(data);
            versions.extend(deletion_markers);
            if page.is_truncated != Some(true) || page.next_key_marker.is_none() {
                break;
            }
            markers = (page.next_key_marker, page.next_version_id_marker);
        }
        if versions.is_empty() {
            // Some providers list nothing for unversioned buckets.
            return self.current_version(key).await;
        }
        Ok(versions)
    }

    async fn current_version(&self, key: &ObjectKey) -> Result<Vec<Version>, StoreError> {
        Ok(match self.head(key).await? {
            Some(head) => vec![Version {
                id: head.version_id,
            }],
            None => Vec::new(),
        })
    }

    async fn delete_version(
        &self,
        key: &ObjectKey,
        version_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let response = self
            .client()
            .delete_object()
            .bucket(self.bucket())
            .key(key.as_str())
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await;
        let failure = match response {
            Ok(_) => return Ok(()),
            Err(error) => Failure::from_sdk(error),
        };
        if failure.is_status(404) {
            return Ok(());
        }
        if failure.is_status(403) || failure.code_is("AccessDenied") {
            // 403 is both "these credentials may not delete" and "Object Lock says no"; the retention on the
            // version tells them apart.
            let head = self.head_version(key, version_id).await.ok().flatten();
            if let Some(lock) = head.and_then(|head| head.lock)
                && lock.retain_until > OffsetDateTime::now_utc()
            {
                return Err(StoreError::RetentionRefused {
                    key: key.to_string(),
                    version_id: version_id.map(str::to_owned),
                    retain_until: Some(lock.retain_until),
                    detail: failure.message,
                });
            }
        }
        Err(failure.into_error("delete", key.as_str()))
    }
}

fn listed(object: aws_sdk_s3::types::Object) -> Option<Result<ListedObject, StoreError>> {
    Some(Ok(ListedObject {
        key: object.key?,
        size: object
            .size
            .and_then(|size| u64::try_from(size).ok())
            .unwrap_or(0),
        last_modified: object.last_modified.as_ref().and_then(s3_to_time),
    }))
}
