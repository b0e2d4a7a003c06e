//! The customer's bucket a zone's Logpush writes into, as `ctl.push_source_set` carries it
//! sealed: the job's `destination_conf` (`s3://bucket/path?region=…[&endpoint=…&access-key-id=…
//! &secret-access-key=…]`, the keys Cloudflare writes with) and the read-only keys RainLogs
//! reads with. Opened only in memory, like the zone's Cloudflare token; `Debug` shows no secret.

use rainlogs_store::{S3Config, S3Credentials, S3Store};
use rainlogs_tokens::TokenKeyring;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
pub struct PushSource {
    pub destination_conf: String,
    pub read_access_key_id: String,
    pub read_secret_access_key: String,
}

impl std::fmt::Debug for PushSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSource")
            .field("read_access_key_id", &self.read_access_key_id)
            .finish_non_exhaustive()
    }
}

/// Where the objects are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketLocation {
    pub bucket: String,
    /// The path below the bucket, without a trailing `{DATE}` and without slashes at the ends.
    pub path: String,
    pub region: String,
    /// `http(s)://host[:port]` of an S3-compatible provider; `None` is Amazon S3.
    pub endpoint: Option<String>,
}

impl PushSource {
    /// Opens the sealed source with the key that sealed it.
    pub fn open(
        keyring: &TokenKeyring,
        key_id: &str,
        tenant: &str,
        zone: &str,
        sealed: &[u8],
    ) -> Result<Self, String> {
        let text = keyring
            .open(key_id, tenant, zone, sealed)
            .map_err(|e| format!("cannot open the zone's sealed bucket source: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("the zone's bucket source: {e}"))
    }

    pub fn location(&self) -> Result<BucketLocation, String> {
        let rest = self
            .destination_conf
            .strip_prefix("s3://")
            .ok_or("the destination is not an s3:// bucket")?;
        let (place, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, path) = place.split_once('/').unwrap_or((place, ""));
        if bucket.is_empty() {
            return Err("the destination names no bucket".into());
        }
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_owned())
                .filter(|value| !value.is_empty())
        };
        let region = param("region").ok_or("the destination has no region")?;
        // Plain HTTP only to a provider on this machine (a test's); TLS everywhere else.
        let endpoint = param("endpoint").map(|host| {
            let local = host.starts_with("127.") || host.starts_with("localhost");
            format!("{}://{host}", if local { "http" } else { "https" })
        });
        let path = path.trim_matches('/');
        let path = path
            .strip_suffix("{DATE}")
            .unwrap_or(path)
            .trim_matches('/');
        Ok(BucketLocation {
            bucket: bucket.to_owned(),
            path: path.to_owned(),
            region,
            endpoint,
        })
    }

    /// A client for the bucket with the read-only keys.
    pub fn reader(&self, location: &BucketLocation) -> Result<S3Store, String> {
        let mut config = S3Config::new(&location.bucket);
        config.region.clone_from(&location.region);
        config.endpoint.clone_from(&location.endpoint);
        config.path_style = location.endpoint.is_some();
        config.credentials = Some(S3Credentials {
            access_key_id: self.read_access_key_id.clone(),
            secret_access_key: self.read_secret_access_key.clone(),
            session_token: None,
        });
        S3Store::new(config).map_err(|e| format!("the bucket client: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(conf: &str) -> PushSource {
        PushSource {
            destination_conf: conf.into(),
            read_access_key_id: "reader".into(),
            read_secret_access_key: "secret".into(),
        }
    }

    #[test]
    fn destinations_name_bucket_path_region_and_endpoint() {
        let compatible = source(
            "s3://logs/cf/{DATE}?region=eu-central-1&endpoint=s3.example.eu&access-key-id=w&secret-access-key=x",
        );
        assert_eq!(
            compatible.location(),
            Ok(BucketLocation {
                bucket: "logs".into(),
                path: "cf".into(),
                region: "eu-central-1".into(),
                endpoint: Some("https://s3.example.eu".into()),
            })
        );
        let aws = source("s3://logs?region=eu-west-1")
            .location()
            .expect("aws");
        assert_eq!((aws.path.as_str(), aws.endpoint), ("", None));
        assert!(source("https://x").location().is_err());
        assert!(source("s3://b/p").location().is_err(), "no region");
        assert!(!format!("{compatible:?}").contains("secret"));
    }
}
