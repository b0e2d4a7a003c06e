//! Bucket-level reads (Object Lock configuration, versioning) and a creation helper for tests and provisioning.

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, DefaultRetention,
    ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
};

use super::S3Store;
use super::failure::Failure;
use crate::error::StoreError;
use crate::model::LockMode;
use crate::posture;

/// A bucket-wide default retention: objects written without their own retain-until get this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRetentionRule {
    pub mode: LockMode,
    pub days: i32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketOptions {
    /// Create with Object Lock enabled (which also enables versioning, permanently).
    pub object_lock: bool,
    pub default_retention: Option<DefaultRetentionRule>,
}

pub(crate) enum Versioning {
    Enabled,
    Suspended,
    Never,
}

impl S3Store {
    /// Creates the configured bucket. An existing bucket owned by these credentials is left as it is.
    pub async fn create_bucket(&self, options: BucketOptions) -> Result<(), StoreError> {
        let bucket = self.bucket();
        let mut request = self
            .client()
            .create_bucket()
            .bucket(bucket)
            .object_lock_enabled_for_bucket(options.object_lock);
        let region = &self.config().region;
        if region != "us-east-1" {
            let constraint = CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build();
            request = request.create_bucket_configuration(constraint);
        }
        if let Err(error) = request.send().await {
            let failure = Failure::from_sdk(error);
            if !failure.code_is("BucketAlreadyOwnedByYou") {
                return Err(failure.into_error("create bucket", bucket));
            }
        }
        if let Some(rule) = options.default_retention {
            let mode = match rule.mode {
                LockMode::Compliance => ObjectLockRetentionMode::Compliance,
                LockMode::Governance => ObjectLockRetentionMode::Governance,
            };
            let configuration = ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(mode)
                                .days(rule.days)
                                .build(),
                        )
                        .build(),
                )
                .build();
            self.client()
                .put_object_lock_configuration()
                .bucket(bucket)
                .object_lock_configuration(configuration)
                .send()
                .await
                .map_err(|error| {
                    Failure::from_sdk(error).into_error("put object lock configuration", bucket)
                })?;
        }
        Ok(())
    }

    /// The bucket's Object Lock configuration when Object Lock is enabled, `None` when it is not.
    pub(super) async fn read_object_lock_configuration(
        &self,
    ) -> Result<Option<ObjectLockConfiguration>, StoreError> {
        let response = self
            .client()
            .get_object_lock_configuration()
            .bucket(self.bucket())
            .send()
            .await;
        match response {
            Ok(output) => Ok(output
                .object_lock_configuration
                .filter(|config| config.object_lock_enabled == Some(ObjectLockEnabled::Enabled))),
            Err(error) => {
                let failure = Failure::from_sdk(error);
                if failure.is_status(404) || failure.code_is("ObjectLockConfigurationNotFoundError")
                {
                    Ok(None)
                } else {
                    Err(failure.into_error("get object lock configuration", self.bucket()))
                }
            }
        }
    }

    pub(super) async fn read_versioning(&self) -> Result<Versioning, StoreError> {
        let output = self
            .client()
            .get_bucket_versioning()
            .bucket(self.bucket())
            .send()
            .await
            .map_err(|error| {
                Failure::from_sdk(error).into_error("get bucket versioning", self.bucket())
            })?;
        Ok(match output.status {
            Some(BucketVersioningStatus::Enabled) => Versioning::Enabled,
            Some(_) => Versioning::Suspended,
            None => Versioning::Never,
        })
    }
}

pub(super) fn default_retention_of(
    config: &ObjectLockConfiguration,
) -> Option<posture::DefaultRetention> {
    let retention = config.rule.as_ref()?.default_retention.as_ref()?;
    let mode = match retention.mode {
        Some(ObjectLockRetentionMode::Compliance) => Some(LockMode::Compliance),
        Some(ObjectLockRetentionMode::Governance) => Some(LockMode::Governance),
        _ => None,
    };
    Some(posture::DefaultRetention {
        mode,
        days: retention.days,
        years: retention.years,
    })
}
