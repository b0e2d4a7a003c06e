//! S3 destinations: `s3://bucket[/path]?region=…` (Amazon S3, written with Cloudflare's own identity) and
//! `s3://bucket[/path]?region=…&endpoint=…&access-key-id=…&secret-access-key=…` (S3-compatible, written with the
//! keys given). Parsing, the object keys of batches, checks and ownership challenges, and the PUT itself.

use std::fmt;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::destination::{UploadError, host_of, is_loopback};
use crate::http::parse_query;
use crate::scenario::LogpushSpec;
use crate::traffic::render::push_rfc3339_secs;

/// Content types of what the simulator writes: batches and the check object are gzip files, the challenge is text.
pub(crate) const GZIP: &str = "application/gzip";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// Keys given in the destination; `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct S3Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for S3Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Keys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// A parsed `s3://` destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct S3Destination {
    pub bucket: String,
    /// The path below the bucket without leading or trailing `/`; may hold `{DATE}`.
    pub path: String,
    pub region: String,
    /// `http(s)://host[:port]` of an S3-compatible provider; `None` is Amazon S3 itself.
    pub endpoint: Option<String>,
    /// `access-key-id` and `secret-access-key`; `None` means Cloudflare writes with its own identity.
    pub keys: Option<S3Keys>,
}

impl S3Destination {
    /// `rest` is what follows `s3://`.
    pub fn parse(rest: &str) -> Result<Self, String> {
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, path) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() {
            return Err("destination_conf: missing bucket".into());
        }
        let params = parse_query(query);
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let region = param("region")
            .ok_or("destination_conf: region is required for S3 destinations")?
            .to_owned();
        let keys = match (param("access-key-id"), param("secret-access-key")) {
            (Some(id), Some(secret)) => Some(S3Keys {
                access_key_id: id.to_owned(),
                secret_access_key: secret.to_owned(),
            }),
            (None, None) => None,
            _ => {
                return Err(
                    "destination_conf: access-key-id and secret-access-key go together".into(),
                );
            }
        };
        let endpoint = param("endpoint").map(endpoint_url).transpose()?;
        if endpoint.is_some() && keys.is_none() {
            return Err(
                "destination_conf: an S3-compatible endpoint needs access-key-id and secret-access-key"
                    .into(),
            );
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            path: path.trim_matches('/').to_owned(),
            region,
            endpoint,
            keys,
        })
    }

    /// Amazon S3 written with Cloudflare's identity: creating a job needs the ownership challenge's token.
    pub fn needs_challenge(&self) -> bool {
        self.keys.is_none()
    }

    /// The path with `{DATE}` expanded to the UTC date of `second`.
    fn dir(&self, second: i64) -> String {
        self.path.replace("{DATE}", &yyyymmdd(second))
    }

    /// `<path>/<YYYYMMDD>/<start>_<end>_<tag>.log.gz` (the date directory only when the path has no `{DATE}`,
    /// which already puts each day in its own directory), start and end being the first and last receive second.
    pub fn batch_key(&self, first_second: i64, last_second: i64, tag: u32) -> String {
        let name = format!(
            "{}_{}_{tag:08x}.log.gz",
            compact(first_second),
            compact(last_second)
        );
        let dir = if self.path.contains("{DATE}") {
            self.dir(first_second)
        } else {
            join(&self.path, &yyyymmdd(first_second))
        };
        join(&dir, &name)
    }

    /// Where the destination check writes its object.
    pub fn check_key(&self, now: i64) -> String {
        join(&self.dir(now), "test.txt.gz")
    }

    /// Where an ownership challenge's token goes.
    pub fn challenge_key(&self, now: i64, tag: u32) -> String {
        join(
            &self.dir(now),
            &format!("ownership-challenge-{tag:08x}.txt"),
        )
    }

    /// `s3://bucket/key`, for error messages.
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` without its separators: `YYYYMMDDTHHMMSSZ`.
fn compact(second: i64) -> String {
    let mut out = Vec::with_capacity(20);
    push_rfc3339_secs(&mut out, second);
    out.retain(|b| *b != b'-' && *b != b':');
    String::from_utf8_lossy(&out).into_owned()
}

fn yyyymmdd(second: i64) -> String {
    compact(second)[..8].to_owned()
}

/// Cloudflare takes `host[:port]`; a scheme is accepted too. TLS unless the host is loopback (a simulator allowance
/// for local test servers, like plain-HTTP destinations); `https://` forces TLS, `http://` only on loopback.
fn endpoint_url(raw: &str) -> Result<String, String> {
    let (scheme, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
        None => (None, raw),
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(
            "destination_conf: endpoint must be host[:port], without the bucket or a path".into(),
        );
    }
    let loopback = is_loopback(host_of(authority));
    match scheme.as_deref() {
        None | Some("http") if loopback => Ok(format!("http://{authority}")),
        None | Some("https") => Ok(format!("https://{authority}")),
        Some("http") => {
            Err("destination_conf: plain-HTTP endpoints must be on a loopback host".into())
        }
        Some(other) => Err(format!(
            "destination_conf: unsupported endpoint scheme {other}"
        )),
    }
}

/// A client for one destination, writing to its bucket.
pub(crate) struct S3Writer {
    client: Client,
    destination: S3Destination,
}

impl S3Writer {
    /// Amazon S3 destinations go to `[logpush] aws_endpoint` (the simulator's stand-in for AWS) with the keys of
    /// the destination or else Cloudflare's identity (`aws_access_key_id`/`aws_secret_access_key`).
    pub fn new(
        spec: &LogpushSpec,
        destination: &S3Destination,
        timeout: Duration,
    ) -> Result<Self, UploadError> {
        let endpoint = destination
            .endpoint
            .clone()
            .or_else(|| spec.aws_endpoint.clone())
            .ok_or_else(|| {
                UploadError::Transport(
                    "Amazon S3 is not simulated: set [logpush] aws_endpoint to an S3-compatible stand-in"
                        .into(),
                )
            })?;
        let (id, secret) = match (
            &destination.keys,
            &spec.aws_access_key_id,
            &spec.aws_secret_access_key,
        ) {
            (Some(keys), _, _) => (keys.access_key_id.clone(), keys.secret_access_key.clone()),
            (None, Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => {
                return Err(UploadError::Transport(
                    "no identity to write to Amazon S3 with: set [logpush] aws_access_key_id and aws_secret_access_key"
                        .into(),
                ));
            }
        };
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(destination.region.clone()))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(id, secret, None, None, "cf-sim"))
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // The pusher retries on the simulated clock; one upload is one attempt.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeout.min(Duration::from_secs(5)))
                    .operation_timeout(timeout)
                    .build(),
            )
            .build();
        Ok(Self {
            client: Client::from_conf(config),
            destination: destination.clone(),
        })
    }

    /// One PUT of `body` under `key`. An answer other than 2xx is `Status`, no answer is `Transport`.
    pub async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), UploadError> {
        let result = self
            .client
            .put_object()
            .bucket(&self.destination.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await;
        let Err(error) = result else {
            return Ok(());
        };
        match error.raw_response().map(|r| r.status().as_u16()) {
            Some(status) => {
                let detail = format!(
                    "{}: {}",
                    error.code().unwrap_or("error"),
                    error.message().unwrap_or_default()
                );
                Err(UploadError::Status(
                    status,
                    detail.trim().chars().take(256).collect(),
                ))
            }
            None => Err(UploadError::Transport(format!(
                "PutObject \"{}\": {}",
                self.destination.url(key),
                DisplayErrorContext(&error)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(conf: &str) -> Result<S3Destination, String> {
        S3Destination::parse(conf.strip_prefix("s3://").unwrap_or(conf))
    }

    #[test]
    fn aws_and_compatible_destinations() {
        let aws = parse("s3://logs-bucket/cf/http?region=eu-west-1&sse=AES256").expect("aws");
        assert_eq!(
            (aws.bucket.as_str(), aws.path.as_str(), aws.region.as_str()),
            ("logs-bucket", "cf/http", "eu-west-1")
        );
        assert_eq!((aws.endpoint.as_ref(), aws.needs_challenge()), (None, true));
        let compatible = parse(
            "s3://b/p/?region=us-east-1&endpoint=127.0.0.1:9000&access-key-id=AK&secret-access-key=s%2Bk",
        )
        .expect("compatible");
        assert_eq!(
            compatible.endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(compatible.path, "p");
        assert_eq!(
            compatible
                .keys
                .as_ref()
                .map(|k| k.secret_access_key.as_str()),
            Some("s+k")
        );
        assert!(!compatible.needs_challenge());
        assert!(!format!("{compatible:?}").contains("s+k"));
        let remote = parse(
            "s3://b?region=auto&endpoint=fsn1.example.com&access-key-id=a&secret-access-key=b",
        )
        .expect("remote");
        assert_eq!(remote.endpoint.as_deref(), Some("https://fsn1.example.com"));
        assert_eq!(remote.path, "");
        for bad in [
            "s3://b/p",
            "s3:///p?region=x",
            "s3://b?region=x&endpoint=h.example.com",
            "s3://b?region=x&access-key-id=a",
            "s3://b?region=x&endpoint=http://h.example.com&access-key-id=a&secret-access-key=b",
            "s3://b?region=x&endpoint=h.example.com/b&access-key-id=a&secret-access-key=b",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn object_keys_sort_in_time_order_and_expand_date() {
        let d = parse("s3://b/logs?region=x").expect("valid");
        // 2026-01-15T12:00:00Z and 2026-01-15T12:00:29Z.
        assert_eq!(
            d.batch_key(1_768_478_400, 1_768_478_429, 0xab),
            "logs/20260115/20260115T120000Z_20260115T120029Z_000000ab.log.gz"
        );
        assert!(
            d.batch_key(1_768_478_400, 1_768_478_429, u32::MAX)
                < d.batch_key(1_768_478_430, 1_768_478_459, 0)
        );
        assert_eq!(d.check_key(1_768_478_400), "logs/test.txt.gz");
        assert_eq!(
            d.challenge_key(1_768_478_400, 1),
            "logs/ownership-challenge-00000001.txt"
        );
        let dated = parse("s3://b/cf/{DATE}/x?region=x").expect("valid");
        assert_eq!(
            dated.batch_key(1_768_478_400, 1_768_478_400, 0),
            "cf/20260115/x/20260115T120000Z_20260115T120000Z_00000000.log.gz"
        );
        let root = parse("s3://b?region=x").expect("valid");
        assert_eq!(root.check_key(0), "test.txt.gz");
    }
}
