//! The customer's bucket a zone's Logpush writes into (`method = logpush_s3`): the job's
//! `destination_conf` (`s3://bucket[/path]?region=…[&endpoint=…&access-key-id=…
//! &secret-access-key=…]`, the keys Cloudflare writes with) and the keys RainLogs reads with.
//! Checked at the edge (the API) before it is sealed and stored; opened only in memory, like the
//! zone's Cloudflare token. `Debug` shows no secret.

use rainlogs_store::{AddressPolicy, S3Config, S3Credentials, S3Store};
use rainlogs_tokens::TokenKeyring;
use serde::{Deserialize, Serialize};

/// The longest `destination_conf` taken; Cloudflare's own are far shorter.
const MAX_DESTINATION: usize = 2048;
/// Query parameters Cloudflare's S3 destinations know; anything else is a typo to point out.
const KNOWN_PARAMS: [&str; 5] = [
    "region",
    "endpoint",
    "access-key-id",
    "secret-access-key",
    "sse",
];

#[derive(Clone, Serialize, Deserialize)]
pub struct PushSource {
    pub destination_conf: String,
    pub read_access_key_id: String,
    pub read_secret_access_key: String,
    /// Delete each object once every record in it is sealed (the read keys then need delete
    /// rights); otherwise the objects stay for the bucket's own lifecycle rules.
    #[serde(default)]
    pub delete_after_sealing: bool,
}

impl std::fmt::Debug for PushSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSource")
            .field("read_access_key_id", &self.read_access_key_id)
            .field("delete_after_sealing", &self.delete_after_sealing)
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
    /// Whether Cloudflare writes with keys of the customer's (an S3-compatible provider) rather
    /// than its own identity (Amazon S3, which then needs the ownership challenge).
    pub has_write_keys: bool,
}

impl BucketLocation {
    /// The endpoint's host (a name, or an IP literal with IPv6 in brackets), without the port.
    pub fn endpoint_host(&self) -> Option<&str> {
        let authority = self.endpoint.as_deref()?.split_once("://")?.1;
        Some(match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority.split(':').next().unwrap_or(authority),
        })
    }
}

/// How RainLogs reaches buckets that tenants name.
#[derive(Clone, Debug, Default)]
pub struct BucketAccess {
    /// Which addresses a bucket's endpoint may have (`outbound.allow_private_networks`).
    pub addresses: AddressPolicy,
    /// Where Amazon S3 is reached instead of its public endpoints (an S3 interface endpoint
    /// inside a VPC, or a stand-in in tests); `None`: Amazon S3's own.
    pub amazon_s3_endpoint: Option<String>,
}

impl PushSource {
    /// Opens a sealed source with the key that sealed it (`ctl.push_source_set`).
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

    /// Everything wrong with the source, in words for the person who typed it.
    pub fn check(&self) -> Result<BucketLocation, String> {
        let location = self.location()?;
        for (name, value) in [
            ("read_access_key_id", &self.read_access_key_id),
            ("read_secret_access_key", &self.read_secret_access_key),
        ] {
            if value.is_empty() || value.len() > 256 || !value.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(format!(
                    "{name} must be 1 to 256 printable characters without spaces"
                ));
            }
        }
        Ok(location)
    }

    pub fn location(&self) -> Result<BucketLocation, String> {
        let conf = &self.destination_conf;
        if conf.len() > MAX_DESTINATION {
            return Err(format!(
                "destination_conf is longer than {MAX_DESTINATION} characters"
            ));
        }
        let rest = conf
            .strip_prefix("s3://")
            .ok_or("destination_conf must be an s3:// bucket (s3://bucket/path?region=…)")?;
        let (place, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, path) = place.split_once('/').unwrap_or((place, ""));
        check_bucket_name(bucket)?;
        let path = path.trim_matches('/');
        if !path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.-=!*'(){}".contains(&b))
            || path
                .split('/')
                .any(|segment| segment == ".." || segment == ".")
        {
            return Err(
                "the destination's path may hold letters, digits, `/ _ . - = ! * ' ( )` and {DATE}"
                    .into(),
            );
        }
        let without_date = path.strip_suffix("{DATE}").unwrap_or(path);
        if without_date.contains(['{', '}']) {
            return Err("{DATE} may only end the destination's path".into());
        }
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((unknown, _)) = params
            .iter()
            .find(|(k, _)| !KNOWN_PARAMS.contains(&k.as_str()))
        {
            return Err(format!(
                "destination_conf has an unknown parameter {unknown:?} (known: {})",
                KNOWN_PARAMS.join(", ")
            ));
        }
        let param = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
                .filter(|value| !value.is_empty())
        };
        let region = param("region").ok_or("destination_conf has no region")?;
        if region.len() > 32
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!("{region:?} is not a region name"));
        }
        let has_write_keys = match (param("access-key-id"), param("secret-access-key")) {
            (Some(_), Some(_)) => true,
            (None, None) => false,
            _ => return Err("access-key-id and secret-access-key go together".into()),
        };
        let endpoint = param("endpoint").map(endpoint_url).transpose()?;
        if endpoint.is_some() && !has_write_keys {
            return Err(
                "an S3-compatible endpoint needs the access-key-id and secret-access-key Cloudflare writes with"
                    .into(),
            );
        }
        Ok(BucketLocation {
            bucket: bucket.to_owned(),
            path: without_date.trim_matches('/').to_owned(),
            region: region.to_owned(),
            endpoint,
            has_write_keys,
        })
    }

    /// The source a job of `dataset` writes into: `http_requests` where the customer said;
    /// every other dataset one directory further down (`<path>/<dataset>/{DATE}`), so the jobs'
    /// dated directories never mix and each feed lists only its own.
    pub fn for_dataset(&self, dataset: &str) -> Self {
        if dataset == "http_requests" {
            return self.clone();
        }
        let conf = &self.destination_conf;
        let (place, query) = match conf.split_once('?') {
            Some((place, query)) => (place, Some(query)),
            None => (conf.as_str(), None),
        };
        let place = place.trim_end_matches('/');
        let mut moved = match place.strip_suffix("{DATE}") {
            Some(base) => format!("{}/{dataset}/{{DATE}}", base.trim_end_matches('/')),
            None => format!("{place}/{dataset}"),
        };
        if let Some(query) = query {
            moved.push('?');
            moved.push_str(query);
        }
        Self {
            destination_conf: moved,
            ..self.clone()
        }
    }

    /// A client for the bucket with the read keys, reaching only addresses `access` permits.
    pub fn reader(
        &self,
        location: &BucketLocation,
        access: &BucketAccess,
    ) -> Result<S3Store, String> {
        let mut config = S3Config::new(&location.bucket);
        config.region.clone_from(&location.region);
        config.endpoint = location
            .endpoint
            .clone()
            .or_else(|| access.amazon_s3_endpoint.clone());
        config.path_style = config.endpoint.is_some();
        config.addresses = access.addresses;
        config.credentials = Some(S3Credentials {
            access_key_id: self.read_access_key_id.clone(),
            secret_access_key: self.read_secret_access_key.clone(),
            session_token: None,
        });
        S3Store::new(config).map_err(|e| format!("the bucket client: {e}"))
    }
}

/// S3's bucket naming rules: 3 to 63 lowercase letters, digits, dots and hyphens, starting and
/// ending with a letter or digit. They also keep the name from changing the host it is put in.
fn check_bucket_name(bucket: &str) -> Result<(), String> {
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !bucket.contains("..");
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"
        ))
    }
}

/// `host[:port]` as Cloudflare takes it (optionally with `https://`, or `http://` on this
/// machine, which only a test's provider is), as a URL. No user, path or query: the endpoint
/// names a server, not a place on it.
fn endpoint_url(raw: &str) -> Result<String, String> {
    let (scheme, authority) = match raw.split_once("://") {
        Some((scheme, rest)) => (
            Some(scheme.to_ascii_lowercase()),
            rest.trim_end_matches('/'),
        ),
        None => (None, raw.trim_end_matches('/')),
    };
    let refuse = || format!("endpoint {raw:?} must be host[:port]");
    if authority.is_empty()
        || authority.contains(['/', '@', '?', '#', '%', '\\'])
        || !authority.is_ascii()
        || authority
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(refuse());
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(refuse)?;
            host.parse::<std::net::Ipv6Addr>().map_err(|_| refuse())?;
            if !(after.is_empty() || after.strip_prefix(':').is_some_and(valid_port)) {
                return Err(refuse());
            }
            host
        }
        None => {
            let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
            if !((port.is_empty() && !authority.contains(':')) || valid_port(port)) {
                return Err(refuse());
            }
            if host.is_empty()
                || !host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                return Err(refuse());
            }
            host
        }
    };
    let local = host == "localhost" || host.starts_with("127.") || host == "::1";
    match scheme.as_deref() {
        None | Some("http") if local => Ok(format!("http://{authority}")),
        None | Some("https") => Ok(format!("https://{authority}")),
        Some(other) => Err(format!(
            "endpoint {raw:?}: {other}:// is not taken; Cloudflare writes over https"
        )),
    }
}

fn valid_port(port: &str) -> bool {
    !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(conf: &str) -> PushSource {
        PushSource {
            destination_conf: conf.into(),
            read_access_key_id: "reader".into(),
            read_secret_access_key: "secret".into(),
            delete_after_sealing: false,
        }
    }

    #[test]
    fn other_datasets_write_one_directory_further_down() {
        let given = source(
            "s3://logs/cf/{DATE}?region=eu-central-1&endpoint=127.0.0.1:9000&access-key-id=w&secret-access-key=s",
        );
        assert_eq!(
            given.for_dataset("http_requests").destination_conf,
            given.destination_conf
        );
        let firewall = given.for_dataset("firewall_events");
        assert_eq!(
            firewall.destination_conf,
            "s3://logs/cf/firewall_events/{DATE}?region=eu-central-1&endpoint=127.0.0.1:9000&access-key-id=w&secret-access-key=s"
        );
        assert_eq!(
            firewall.location().map(|l| l.path),
            Ok("cf/firewall_events".into())
        );
        assert_eq!(firewall.read_access_key_id, "reader");
        for (conf, moved) in [
            ("s3://logs?region=r", "s3://logs/firewall_events?region=r"),
            (
                "s3://logs/{DATE}?region=r",
                "s3://logs/firewall_events/{DATE}?region=r",
            ),
            (
                "s3://logs/a/b/?region=r",
                "s3://logs/a/b/firewall_events?region=r",
            ),
        ] {
            let firewall = source(conf).for_dataset("firewall_events");
            assert_eq!(firewall.destination_conf, moved);
            assert!(firewall.location().is_ok(), "{moved}");
        }
    }

    #[test]
    fn destinations_name_bucket_path_region_and_endpoint() {
        let compatible = source(
            "s3://logs/cf/{DATE}?region=eu-central-1&endpoint=s3.example.eu&access-key-id=w&secret-access-key=x%2By",
        );
        assert_eq!(
            compatible.check(),
            Ok(BucketLocation {
                bucket: "logs".into(),
                path: "cf".into(),
                region: "eu-central-1".into(),
                endpoint: Some("https://s3.example.eu".into()),
                has_write_keys: true,
            })
        );
        let aws = source("s3://logs-eu?region=eu-west-1")
            .check()
            .expect("aws");
        assert_eq!(
            (aws.path.as_str(), aws.endpoint, aws.has_write_keys),
            ("", None, false)
        );
        let local = source(
            "s3://logs/p?region=us-east-1&endpoint=127.0.0.1:8333&access-key-id=w&secret-access-key=x",
        )
        .check()
        .expect("a test's provider");
        assert_eq!(local.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert_eq!(local.endpoint_host(), Some("127.0.0.1"));
        assert_eq!(
            compatible.location().expect("ok").endpoint_host(),
            Some("s3.example.eu")
        );
        let v6 = source(
            "s3://logs?region=r&endpoint=[2001:db8::1]:9000&access-key-id=w&secret-access-key=x",
        );
        assert_eq!(
            v6.location().expect("v6").endpoint_host(),
            Some("[2001:db8::1]")
        );
        assert!(!format!("{compatible:?}").contains("secret"));
    }

    #[test]
    fn every_malformed_destination_is_refused_with_a_reason() {
        let keys = "&access-key-id=w&secret-access-key=x";
        for (conf, why) in [
            ("https://logs.example.eu/x", "s3://"),
            ("s3://logs/p", "no region"),
            ("s3://?region=r", "bucket name"),
            ("s3://Logs?region=r", "bucket name"),
            ("s3://a?region=r", "bucket name"),
            ("s3://logs..x?region=r", "bucket name"),
            ("s3://logs.example.com:80@evil?region=r", "bucket name"),
            ("s3://logs/../other?region=r", "path"),
            ("s3://logs/a b?region=r", "path"),
            ("s3://logs/{DATE}/x?region=r", "{DATE}"),
            ("s3://logs?region=EU", "region"),
            ("s3://logs?region=r&acl=public", "unknown parameter"),
            ("s3://logs?region=r&access-key-id=w", "go together"),
            (
                "s3://logs?region=r&endpoint=s3.example.eu",
                "needs the access-key-id",
            ),
        ] {
            let error = source(conf).check().expect_err(conf);
            assert!(error.contains(why), "{conf}: {error}");
        }
        for endpoint in [
            "user@s3.example.eu",
            "s3.example.eu/bucket",
            "s3.example.eu:0",
            "s3.example.eu:99999",
            "s3.example.eu:",
            "http://s3.example.eu",
            "ftp://s3.example.eu",
            "s3.example.eu#x",
            "[::1",
            "s3 .example.eu",
        ] {
            let conf = format!("s3://logs?region=r&endpoint={endpoint}{keys}");
            let error = source(&conf).check().expect_err(&conf);
            assert!(error.contains("endpoint"), "{conf}: {error}");
        }
        let mut no_key = source("s3://logs?region=r");
        no_key.read_secret_access_key = "has space".into();
        assert!(
            no_key
                .check()
                .expect_err("key")
                .contains("read_secret_access_key")
        );
        assert!(
            source(&format!("s3://logs/{}?region=r", "x".repeat(3000)))
                .check()
                .is_err()
        );
    }

    #[test]
    fn a_tenants_bucket_reader_is_public_only_unless_the_operator_allows_more() {
        let local = source(
            "s3://logs?region=us-east-1&endpoint=127.0.0.1:8333&access-key-id=w&secret-access-key=x",
        );
        let location = local.location().expect("location");
        let error = local
            .reader(&location, &BucketAccess::default())
            .expect_err("loopback is not public");
        assert!(error.contains("not a public address"), "{error}");
        let open = BucketAccess {
            addresses: AddressPolicy::AllowPrivate,
            amazon_s3_endpoint: None,
        };
        assert!(local.reader(&location, &open).is_ok());
    }
}
