//! S3-compatible object storage through `aws-sdk-s3`: custom endpoints, path-style addressing, explicit or
//! environment credentials. Every write carries `x-amz-checksum-sha256` and `If-None-Match: *`, and Object Lock
//! COMPLIANCE retention where the bucket has Object Lock.

mod bucket;
mod failure;
mod probe;
mod put;
mod read;
mod vetted_dns;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider,
};
use aws_smithy_http_client::tls;
use rainlogs_outbound::AddressPolicy;
use tokio::sync::OnceCell;

pub use bucket::{BucketOptions, DefaultRetentionRule};

use crate::error::StoreError;

/// S3 refuses parts below 5 MiB (except the last) and above 5 GiB.
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
pub const DEFAULT_PROBE_PREFIX: &str = "_rainlogs-probe";

/// Explicit credentials. `Debug` never prints the secret.
#[derive(Clone)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Custom endpoint such as `https://fsn1.your-objectstorage.com`; `None` means AWS.
    pub endpoint: Option<String>,
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`), which most non-AWS providers and loopback servers need.
    pub path_style: bool,
    /// `None` reads the standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` variables.
    pub credentials: Option<S3Credentials>,
    /// Multipart part size; objects up to this size go in a single PUT. Memory per upload is about
    /// `(upload_concurrency + 1) * part_size`.
    pub part_size: usize,
    /// Parts uploaded at the same time within one multipart upload.
    pub upload_concurrency: usize,
    /// Key prefix the capability probe writes under; keep it outside the archive layout.
    pub probe_prefix: String,
    /// COMPLIANCE retention given to probe objects so the probe can test an early delete; they can be removed
    /// (by a later probe) after it passes.
    pub probe_retention: Duration,
    pub connect_timeout: Duration,
    /// Limit for one attempt of one request (one part, one PUT); the SDK retries transient failures 3 times.
    pub attempt_timeout: Duration,
    /// Which addresses the endpoint may have: the operator's own storage may be anywhere, a bucket a
    /// tenant names only at public addresses (checked on every DNS lookup) unless the operator allows
    /// private networks.
    pub addresses: AddressPolicy,
}

impl S3Config {
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            endpoint: None,
            region: "us-east-1".to_owned(),
            path_style: false,
            credentials: None,
            part_size: DEFAULT_PART_SIZE,
            upload_concurrency: 2,
            probe_prefix: DEFAULT_PROBE_PREFIX.to_owned(),
            probe_retention: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(120),
            addresses: AddressPolicy::AllowPrivate,
        }
    }

    fn validate(&self) -> Result<(), StoreError> {
        if self.bucket.is_empty() {
            return Err(StoreError::Config("S3 bucket name is empty".into()));
        }
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(StoreError::Config(format!(
                "S3 part size {} is outside 5 MiB..=5 GiB",
                self.part_size
            )));
        }
        if let Some(endpoint) = &self.endpoint {
            vetted_dns::check_endpoint(self.addresses, endpoint)?;
        }
        if self.upload_concurrency == 0 {
            return Err(StoreError::Config(
                "S3 upload concurrency must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// `s3://bucket at endpoint`, for logs and posture; never includes credentials.
    pub fn location(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("s3://{} at {endpoint}", self.bucket),
            None => format!("s3://{} in {}", self.bucket, self.region),
        }
    }
}

#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    config: S3Config,
    /// Whether the bucket has Object Lock, learned once (from the probe or the first locked put).
    object_lock: OnceCell<bool>,
    /// Set when the probe saw the provider ignore `If-None-Match`: then every put checks with HEAD first. That is
    /// racy, but it is the best a provider without conditional writes allows.
    head_before_put: AtomicBool,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("location", &self.inner.config.location())
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Builds the client; does not contact the provider (a dead secondary must not stop start-up).
    pub fn new(config: S3Config) -> Result<Self, StoreError> {
        config.validate()?;
        let credentials = match &config.credentials {
            Some(explicit) => SharedCredentialsProvider::new(Credentials::new(
                explicit.access_key_id.clone(),
                explicit.secret_access_key.clone(),
                explicit.session_token.clone(),
                None,
                "rainlogs-config",
            )),
            None => SharedCredentialsProvider::new(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            ),
        };
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .force_path_style(config.path_style)
            .credentials_provider(credentials)
            // The store sets x-amz-checksum-sha256 itself; an extra SDK CRC would only cost CPU, and callers
            // verify what they read against the chain anyway.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .operation_attempt_timeout(config.attempt_timeout)
                    .build(),
            );
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        if config.addresses == AddressPolicy::PublicOnly {
            builder = builder.http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::AwsLc,
                    ))
                    .build_with_resolver(vetted_dns::VettedDns {
                        policy: config.addresses,
                    }),
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                client: Client::from_conf(builder.build()),
                config,
                object_lock: OnceCell::new(),
                head_before_put: AtomicBool::new(false),
            }),
        })
    }

    pub fn config(&self) -> &S3Config {
        &self.inner.config
    }

    pub fn location(&self) -> String {
        self.inner.config.location()
    }

    fn client(&self) -> &Client {
        &self.inner.client
    }

    fn bucket(&self) -> &str {
        &self.inner.config.bucket
    }

    fn head_before_put(&self) -> bool {
        self.inner.head_before_put.load(Ordering::Relaxed)
    }

    /// Whether the bucket has Object Lock enabled; asked once and remembered.
    async fn bucket_has_object_lock(&self) -> Result<bool, StoreError> {
        self.inner
            .object_lock
            .get_or_try_init(|| async {
                match self.read_object_lock_configuration().await {
                    Ok(config) => Ok(config.is_some()),
                    // Credentials that may write but not read the configuration: send the headers anyway, so a
                    // bucket without Object Lock fails loudly instead of silently storing unprotected archives.
                    Err(StoreError::AccessDenied { .. }) => Ok(true),
                    Err(error) => Err(error),
                }
            })
            .await
            .copied()
    }
}
