use std::time::Duration;

use async_nats::{ServerAddr, jetstream};

/// Oldest server RainLogs runs on: 2.9 breaks async-nats KV and lacks features the sealer needs,
/// and zone leases expire by per-message TTL (`allow_msg_ttl`), which 2.11 introduced.
pub const MIN_SERVER_VERSION: (u32, u32, u32) = (2, 11, 0);

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("nats.url `{url}` is not a NATS server URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot connect to NATS at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "NATS server at {url} is version {version}; RainLogs needs 2.11 or newer \
         (Debian's nats-server 2.9 is too old: run tools/dev-env up or upgrade the server)"
    )]
    ServerTooOld { url: String, version: String },
    #[error(
        "NATS server at {url} has JetStream disabled; start it with -js (or jetstream {{}} in its config)"
    )]
    JetStreamDisabled { url: String },
}

/// A connection to the backbone: core NATS plus its JetStream context.
#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
}

/// Parses seed server URLs exactly as the client will (no scheme means `nats://`, no port
/// 4222), so `rainlogs config check` refuses what connecting would refuse.
pub fn server_addrs<S: AsRef<str>>(urls: &[S]) -> Result<Vec<ServerAddr>, ConnectError> {
    if urls.is_empty() {
        return Err(ConnectError::BadUrl {
            url: String::new(),
            reason: "no server given".into(),
        });
    }
    urls.iter()
        .map(|url| {
            url.as_ref()
                .trim()
                .parse::<ServerAddr>()
                .map_err(|e| ConnectError::BadUrl {
                    url: redact(url.as_ref()),
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// Connects to one server, and refuses servers that are too old or lack JetStream.
pub async fn connect(url: &str) -> Result<Bus, ConnectError> {
    connect_any(&[url]).await
}

/// Connects to whichever of the seed servers `urls` (one cluster) answers first, and refuses
/// servers that are too old or lack JetStream. The client reconnects to the others, and to
/// servers the cluster announces, when its server goes away.
pub async fn connect_any<S: AsRef<str>>(urls: &[S]) -> Result<Bus, ConnectError> {
    let servers = server_addrs(urls)?;
    let url = urls
        .iter()
        .map(|u| redact(u.as_ref()))
        .collect::<Vec<_>>()
        .join(", ");
    let client = async_nats::ConnectOptions::new()
        .name("rainlogs")
        .connection_timeout(Duration::from_secs(5))
        .connect(servers)
        .await
        .map_err(|e| ConnectError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let info = client.server_info();
    if parse_version(&info.version).is_none_or(|v| v < MIN_SERVER_VERSION) {
        return Err(ConnectError::ServerTooOld {
            url,
            version: info.version,
        });
    }
    let js = jetstream::new(client.clone());
    // The INFO flag can be set while the account has no JetStream; ask the account too.
    if !info.jetstream || js.query_account().await.is_err() {
        return Err(ConnectError::JetStreamDisabled { url });
    }
    Ok(Bus { client, js })
}

/// A URL for messages: `user:password@` becomes `***@`, since a NATS URL may carry credentials.
fn redact(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let shown = match rest.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => rest.to_owned(),
    };
    if scheme.is_empty() {
        shown
    } else {
        format!("{scheme}://{shown}")
    }
}

fn parse_version(version: &str) -> Option<(u32, u32, u32)> {
    let core = version.trim_start_matches('v').split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

impl Bus {
    /// True while the connection to the server is up (for `/ready`).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

impl Bus {
    /// A durable pull consumer declared in `nats/consumers`, created from its definition when
    /// the server does not have it yet.
    pub async fn durable_consumer(
        &self,
        name: &str,
    ) -> Result<
        jetstream::consumer::Consumer<jetstream::consumer::pull::Config>,
        crate::ProvisionError,
    > {
        let err = |what: &str, e: &dyn std::fmt::Display| crate::ProvisionError::Server {
            what: format!("{what} consumer {name}"),
            reason: e.to_string(),
        };
        let definition =
            crate::definitions::consumer(name)?.ok_or_else(|| crate::ProvisionError::Server {
                what: format!("consumer {name}"),
                reason: "no definition in nats/consumers".into(),
            })?;
        let stream = self
            .js
            .get_stream(definition.stream)
            .await
            .map_err(|e| err("reading stream of", &e))?;
        if stream.consumer_info(name).await.is_err() {
            stream
                .create_consumer(definition.config)
                .await
                .map_err(|e| err("creating", &e))?;
        }
        stream
            .get_consumer(name)
            .await
            .map_err(|e| err("opening", &e))
    }
}

#[cfg(test)]
mod tests {
    use super::{ConnectError, parse_version, redact, server_addrs};

    #[test]
    fn seed_urls_parse_like_the_client_and_never_show_passwords() {
        let parsed = server_addrs(&["nats://a:4222", "b", "tls://c:4443"]).expect("valid");
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[1].port(), 4222, "no port means 4222");
        let err = server_addrs(&["nats://user:pw@a:4222,nats://b:4222"]).expect_err("one string");
        let message = err.to_string();
        assert!(matches!(err, ConnectError::BadUrl { .. }), "{message}");
        assert!(message.contains("invalid port number"), "{message}");
        assert!(!message.contains("pw"), "{message}");
        assert!(server_addrs::<&str>(&[]).is_err());
        assert_eq!(redact("nats://u:p@h:1"), "nats://***@h:1");
        assert_eq!(redact("h:1"), "h:1");
    }

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(parse_version("2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse_version("v2.10.0-beta.1"), Some((2, 10, 0)));
        assert!(parse_version("2.9.10") < Some((2, 10, 0)));
        assert_eq!(parse_version("garbage"), None);
    }
}
