//! `destination_conf`: parsing, the HTTP upload every push and the destination check use, and its error texts.
//! S3 destinations are in `s3.rs`.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use poem::http::{HeaderName, HeaderValue};

use super::s3::S3Destination;
use crate::http::parse_query;

/// The body Cloudflare uploads to check an HTTP destination (as `test.txt.gz`), before gzip.
pub(crate) const CHECK_CONTENT: &[u8] = br#"{"content":"tests"}"#;

/// Content-Type of uploads unless `header_Content-Type` says otherwise: Cloudflare does not reliably send
/// `application/json`, and receivers that insist on it need the override.
const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Where a job delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Destination {
    /// `https://…`, or `http://` on a loopback host (a simulator allowance for tests).
    Http {
        /// The URL requested: the configured one without its `header_*` parameters.
        url: String,
        /// From the `header_<Name>=<value>` parameters, URL-decoded.
        headers: Vec<(String, String)>,
    },
    /// `s3://bucket[/path]?region=…[&endpoint=…&access-key-id=…&secret-access-key=…]`: one object per batch.
    S3(S3Destination),
    /// `r2://`, `gs://` or `azure://`: stored and listed, never pushed to.
    Stored,
}

impl Destination {
    pub fn parse(conf: &str) -> Result<Self, String> {
        let Some((scheme, rest)) = conf.split_once("://") else {
            return Err("destination_conf must be a URL".into());
        };
        match scheme {
            "s3" => S3Destination::parse(rest).map(Self::S3),
            "r2" | "gs" | "azure" if !rest.is_empty() => Ok(Self::Stored),
            "https" | "http" => parse_http(scheme, rest),
            _ => Err(format!(
                "destination_conf: unsupported destination type {scheme}"
            )),
        }
    }

    /// Whether the simulator pushes to it (HTTP and S3 do; the other storage kinds are only stored).
    pub fn is_pushed(&self) -> bool {
        matches!(self, Self::Http { .. } | Self::S3(_))
    }

    /// `destinationType` in `logpushHealthAdaptiveGroups` (`s3` as in Cloudflare's example; `http` is the
    /// simulator's guess for HTTP destinations). Stored-only destinations are never uploaded to.
    pub fn health_type(&self) -> &'static str {
        match self {
            Self::Http { .. } => "http",
            Self::S3(_) => "s3",
            Self::Stored => "",
        }
    }

    /// How `error_message` names the kind of upload (`error uploading to https: …`).
    pub fn upload_kind(&self) -> &'static str {
        match self {
            Self::S3(_) => "s3",
            _ => "https",
        }
    }
}

fn parse_http(scheme: &str, rest: &str) -> Result<Destination, String> {
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or_default();
    let host = host_of(authority);
    if host.is_empty() {
        return Err("destination_conf: missing host".into());
    }
    if scheme == "http" && !is_loopback(host) {
        return Err("destination_conf: HTTP destinations must use https".into());
    }
    let mut headers = Vec::new();
    let mut kept = Vec::new();
    for segment in query.split('&').filter(|s| !s.is_empty()) {
        let decoded = parse_query(segment);
        match decoded
            .first()
            .and_then(|(k, v)| Some((k.strip_prefix("header_")?, v)))
        {
            Some((name, value)) => {
                if HeaderName::from_bytes(name.as_bytes()).is_err()
                    || HeaderValue::from_str(value).is_err()
                {
                    return Err(format!("destination_conf: invalid header_{name}"));
                }
                headers.push((name.to_owned(), value.clone()));
            }
            None => kept.push(segment),
        }
    }
    let mut url = format!("{scheme}://{before_query}");
    if !kept.is_empty() {
        url.push('?');
        url.push_str(&kept.join("&"));
    }
    Ok(Destination::Http { url, headers })
}

pub(super) fn host_of(authority: &str) -> &str {
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

pub(super) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(crate) fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(data);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// Why an upload did not succeed.
#[derive(Clone, Debug)]
pub(crate) enum UploadError {
    /// The destination answered with a non-2xx status (and this body, shortened).
    Status(u16, String),
    /// No answer: connection refused, reset, timeout.
    Transport(String),
}

impl UploadError {
    /// `status` in `logpushHealthAdaptiveGroups`: the destination's answer, or 0 when there was none.
    pub fn health_status(&self) -> u16 {
        match self {
            Self::Status(status, _) => *status,
            Self::Transport(_) => 0,
        }
    }

    /// The job's `error_message`, shaped like the one Cloudflare reports for an HTTP destination
    /// (`error 415: error pushing: error uploading to https: 415 {…}` has been seen in the wild); `kind` is
    /// `https` or `s3` (the S3 variant is the simulator's by analogy).
    pub fn job_message(&self, kind: &str) -> String {
        match self {
            Self::Status(status, body) => {
                format!("error {status}: error pushing: error uploading to {kind}: {status} {body}")
            }
            Self::Transport(e) => format!("error pushing: error uploading to {kind}: {e}"),
        }
    }

    /// The failure alone, for API error messages.
    pub fn reason(&self) -> String {
        match self {
            Self::Status(status, body) => format!("{status} {body}"),
            Self::Transport(e) => e.clone(),
        }
    }
}

/// One client per simulator, made on first use: pooled connections belong to the runtime that opened them, so a
/// process-wide client would hand a later test's runtime connections of a finished one.
pub(crate) fn client(cell: &OnceLock<Option<reqwest::Client>>) -> Option<reqwest::Client> {
    cell.get_or_init(|| {
        reqwest::Client::builder()
            // Destinations in tests are loopback servers; an environment proxy must not sit in between.
            .no_proxy()
            .build()
            .ok()
    })
    .clone()
}

/// POST one gzip-compressed body with the destination's headers.
pub(crate) async fn upload(
    client: Option<reqwest::Client>,
    url: &str,
    headers: &[(String, String)],
    gzipped: Bytes,
    timeout: Duration,
) -> Result<(), UploadError> {
    let Some(client) = client else {
        return Err(UploadError::Transport("no HTTP client".into()));
    };
    let mut request = client
        .post(url)
        .timeout(timeout)
        .header("content-encoding", "gzip");
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        request = request.header("content-type", DEFAULT_CONTENT_TYPE);
    }
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request
        .body(gzipped)
        .send()
        .await
        .map_err(|e| UploadError::Transport(format!("Post \"{url}\": {e}")))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let body: String = body.trim().chars().take(256).collect();
    Err(UploadError::Status(status.as_u16(), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parameters_become_headers_and_leave_the_url() {
        let d = Destination::parse(
            "https://logs.example.com:8443/ingest/cf?header_Authorization=Bearer%20s3cr%2Bt&tag=a%20b&header_X-Env=prod",
        )
        .expect("valid");
        assert_eq!(
            d,
            Destination::Http {
                url: "https://logs.example.com:8443/ingest/cf?tag=a%20b".into(),
                headers: vec![
                    ("Authorization".into(), "Bearer s3cr+t".into()),
                    ("X-Env".into(), "prod".into()),
                ],
            }
        );
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(Destination::parse("http://127.0.0.1:9000/x").is_ok());
        assert!(Destination::parse("http://[::1]:9000/x").is_ok());
        assert!(Destination::parse("http://localhost/x").is_ok());
        assert!(Destination::parse("http://logs.example.com/x").is_err());
        assert!(matches!(
            Destination::parse("s3://bucket/path?region=eu-west-1"),
            Ok(Destination::S3(_))
        ));
        assert_eq!(
            Destination::parse("gs://bucket/path"),
            Ok(Destination::Stored)
        );
        assert!(Destination::parse("ftp://x/y").is_err());
        assert!(Destination::parse("https:///nohost").is_err());
    }
}
