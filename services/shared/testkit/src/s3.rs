//! The dev SeaweedFS that `tools/dev-env` runs (Object Lock, checksums, If-None-Match enforced):
//! its endpoint, the writer's and the read-only auditor's credentials, and fresh buckets on it.

use rainlogs_store::{BucketOptions, S3Config, S3Credentials, S3Store};

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run tools/dev-env up and source var/dev-env.sh (this test needs \
             the real SeaweedFS)"
        )
    })
}

/// `RAINLOGS_TEST_S3_ENDPOINT`.
pub fn dev_s3_endpoint() -> String {
    required("RAINLOGS_TEST_S3_ENDPOINT")
}

/// `host:port` of the dev S3 endpoint, as a Logpush `endpoint=` parameter takes it.
pub fn dev_s3_host() -> String {
    let endpoint = dev_s3_endpoint();
    endpoint
        .split_once("://")
        .map_or(endpoint.as_str(), |(_, host)| host)
        .to_owned()
}

/// The `destination_conf` a customer gives Cloudflare's Logpush to write into `bucket` under
/// `path` at `host`, with the writer's keys.
pub fn logpush_destination(bucket: &str, path: &str, host: &str) -> String {
    let writer = dev_s3_writer();
    format!(
        "s3://{bucket}/{path}/{{DATE}}?region=us-east-1&endpoint={host}&access-key-id={}&secret-access-key={}",
        writer.access_key_id, writer.secret_access_key
    )
}

/// The identity that may write, lock and delete.
pub fn dev_s3_writer() -> S3Credentials {
    S3Credentials {
        access_key_id: required("RAINLOGS_TEST_S3_ACCESS_KEY"),
        secret_access_key: required("RAINLOGS_TEST_S3_SECRET_KEY"),
        session_token: None,
    }
}

/// The auditor's identity: read and list only.
pub fn dev_s3_auditor() -> S3Credentials {
    S3Credentials {
        access_key_id: required("RAINLOGS_TEST_S3_AUDITOR_ACCESS_KEY"),
        secret_access_key: required("RAINLOGS_TEST_S3_AUDITOR_SECRET_KEY"),
        session_token: None,
    }
}

/// `bucket` on the dev SeaweedFS with `credentials` (path-style addressing).
pub fn dev_s3_config(bucket: &str, credentials: S3Credentials) -> S3Config {
    let mut config = S3Config::new(bucket);
    config.endpoint = Some(dev_s3_endpoint());
    config.path_style = true;
    config.credentials = Some(credentials);
    config
}

/// A bucket name no other test uses: `rl-test-<purpose>-<12 hex>`.
pub fn unique_bucket(purpose: &str) -> String {
    format!(
        "rl-test-{purpose}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A fresh bucket on the dev SeaweedFS, with or without Object Lock, and the writer's store on it.
pub async fn dev_bucket(purpose: &str, object_lock: bool) -> S3Store {
    dev_bucket_with(purpose, object_lock, |_| {}).await
}

/// [`dev_bucket`], with the writer's client configured further (a part size, a timeout).
pub async fn dev_bucket_with(
    purpose: &str,
    object_lock: bool,
    configure: impl FnOnce(&mut S3Config),
) -> S3Store {
    let bucket = unique_bucket(purpose);
    let mut config = dev_s3_config(&bucket, dev_s3_writer());
    configure(&mut config);
    let store = S3Store::new(config).expect("s3 store");
    store
        .create_bucket(BucketOptions {
            object_lock,
            default_retention: None,
        })
        .await
        .unwrap_or_else(|e| panic!("creating bucket {bucket} on {}: {e}", dev_s3_endpoint()));
    store
}
