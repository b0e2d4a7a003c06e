//! What the API knows about the request being served: its server-generated id, the client IP
//! (trusted-proxy aware) and the rate-limit state to report in headers. Set once by the
//! middleware, read by handlers and by error construction anywhere below it.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::rate_limit::Decision;

#[derive(Debug)]
pub struct RequestContext {
    pub id: String,
    pub client_ip: IpAddr,
    /// The most restrictive limiter decision taken for this request, reported as
    /// `RateLimit-*` headers.
    rate: Mutex<Option<Decision>>,
}

impl RequestContext {
    pub fn new(client_ip: IpAddr) -> Self {
        Self {
            id: uuid::Uuid::now_v7().simple().to_string(),
            client_ip,
            rate: Mutex::new(None),
        }
    }

    /// Keeps the decision with the fewest remaining requests.
    pub fn record_rate(&self, decision: Decision) {
        if let Ok(mut slot) = self.rate.lock() {
            let keep = slot
                .as_ref()
                .is_some_and(|current| current.remaining <= decision.remaining);
            if !keep {
                *slot = Some(decision);
            }
        }
    }

    pub fn rate(&self) -> Option<Decision> {
        self.rate.lock().ok().and_then(|slot| slot.clone())
    }
}

tokio::task_local! {
    static CURRENT: Arc<RequestContext>;
}

/// Runs `future` with `context` as the current request.
pub async fn scope<F: std::future::Future>(context: Arc<RequestContext>, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

/// The current request, when called while serving one.
pub fn current() -> Option<Arc<RequestContext>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// The current request id, or `-` outside a request.
pub fn current_request_id() -> String {
    current().map_or_else(|| "-".to_owned(), |c| c.id.clone())
}

/// The client address as the API believes it: the socket peer, unless that peer is a trusted
/// proxy, in which case the right-most `X-Forwarded-For` address that is not itself a trusted
/// proxy. A client can prepend anything to `X-Forwarded-For`, so only addresses appended by
/// trusted proxies are believed.
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    let fallback = IpAddr::from([0, 0, 0, 0]);
    let Some(peer) = peer else {
        return fallback;
    };
    if !trusted.contains(&canonical(peer)) {
        return canonical(peer);
    }
    let Some(header) = forwarded_for else {
        return canonical(peer);
    };
    let mut believed = canonical(peer);
    for hop in header.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(address) => {
                believed = canonical(address);
                if !trusted.contains(&believed) {
                    return believed;
                }
            }
            // A malformed hop ends what can be believed; the last good hop stands.
            Err(_) => return believed,
        }
    }
    believed
}

/// IPv4-mapped IPv6 peers (dual-stack sockets) are the IPv4 client.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(
            client_ip(Some(ip("198.51.100.7")), Some("203.0.113.1"), &[]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_trusted_proxy_is_skipped_to_the_hop_it_saw() {
        let proxy = ip("10.0.0.1");
        assert_eq!(
            client_ip(Some(proxy), Some("203.0.113.9, 198.51.100.7"), &[proxy]),
            ip("198.51.100.7"),
            "the client can forge the left part; only the proxy's own append counts"
        );
        assert_eq!(client_ip(Some(proxy), None, &[proxy]), proxy);
        assert_eq!(
            client_ip(Some(proxy), Some("junk, 198.51.100.7"), &[proxy]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn mapped_ipv4_peers_are_ipv4() {
        assert_eq!(
            client_ip(Some(ip("::ffff:192.0.2.1")), None, &[]),
            ip("192.0.2.1")
        );
    }
}
