//! Outbound connections to hosts a tenant names (a Logpush bucket's endpoint today, webhook URLs
//! later) are a server-side request forgery risk: a tenant could point RainLogs at the metadata
//! service of its cloud, at the operator's own object store or at anything else on the private
//! network and read the answers back through error messages or health. So such a host may only
//! be reached at public addresses, checked after every DNS lookup (a name that resolves to a
//! public address at onboarding may resolve to a private one later), unless the operator allows
//! private networks (tests, or a RainLogs that only ever talks to a closed network).
//!
//! The operator's own endpoints (its storage, NATS, PostgreSQL, Cloudflare's base URL) are
//! configuration, not tenant input, and are not checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which addresses a tenant-named host may have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AddressPolicy {
    /// Only globally routable unicast addresses.
    #[default]
    PublicOnly,
    /// Any address, loopback and private ones included (`outbound.allow_private_networks`).
    AllowPrivate,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutboundError {
    #[error("{host} is at {address}, which is not a public address")]
    NotPublic { host: String, address: IpAddr },
    #[error("{host} has no address")]
    NoAddress { host: String },
    #[error("{host} cannot be resolved: {reason}")]
    Resolve { host: String, reason: String },
}

impl AddressPolicy {
    pub fn from_allow_private(allow_private: bool) -> Self {
        if allow_private {
            Self::AllowPrivate
        } else {
            Self::PublicOnly
        }
    }

    pub fn permits(self, address: IpAddr) -> bool {
        self == Self::AllowPrivate || is_public(address)
    }

    /// The addresses this policy lets `host` be reached at, for a connector to use: every
    /// address when all are permitted, an error naming the first one that is not otherwise. A
    /// name with one private address among public ones is refused as a whole, since which one
    /// a connection would use is up to the resolver.
    pub fn vet(self, host: &str, addresses: Vec<IpAddr>) -> Result<Vec<IpAddr>, OutboundError> {
        if addresses.is_empty() {
            return Err(OutboundError::NoAddress { host: host.into() });
        }
        match addresses.iter().find(|a| !self.permits(**a)) {
            Some(address) => Err(OutboundError::NotPublic {
                host: host.into(),
                address: *address,
            }),
            None => Ok(addresses),
        }
    }

    /// Resolves `host` (a name or an IP literal, IPv6 with or without brackets) and vets its
    /// addresses.
    pub async fn resolve(self, host: &str) -> Result<Vec<IpAddr>, OutboundError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(address) = bare.parse::<IpAddr>() {
            return self.vet(host, vec![address]);
        }
        let found =
            tokio::net::lookup_host((bare, 0))
                .await
                .map_err(|e| OutboundError::Resolve {
                    host: host.into(),
                    reason: e.to_string(),
                })?;
        let mut addresses: Vec<IpAddr> = found.map(|a| a.ip()).collect();
        addresses.dedup();
        self.vet(host, addresses)
    }
}

/// Whether `address` is globally routable unicast: not loopback, private, shared (CGNAT),
/// link-local, documentation, benchmarking, multicast, reserved or unspecified, and for IPv6
/// also not unique-local, and not an IPv4 address in disguise (mapped, NAT64, 6to4, Teredo)
/// unless that IPv4 address is public itself. (`IpAddr::is_global` is not stable yet.)
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [o0, o1, o2, _] = a.octets();
    !(a.is_unspecified()
        || o0 == 0 // "this network"
        || a.is_loopback()
        || a.is_private()
        || (o0 == 100 && (o1 & 0xc0) == 64) // 100.64.0.0/10, shared address space
        || a.is_link_local() // 169.254.0.0/16, where cloud metadata services live
        || (o0 == 192 && o1 == 0 && o2 == 0) // 192.0.0.0/24, protocol assignments
        || a.is_documentation()
        || (o0 == 198 && (o1 & 0xfe) == 18) // 198.18.0.0/15, benchmarking
        || a.is_multicast()
        || o0 >= 240) // reserved and broadcast
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = a.segments();
    let embedded_v4 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 6to4 reaches the IPv4 address in bits 16..48.
        return is_public_v4(embedded_v4(s[1], s[2]));
    }
    !(a.is_unspecified()
        || a.is_loopback()
        || s[0..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible, deprecated
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10, deprecated
        || a.is_multicast()
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo tunnels to anywhere
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only 100::/64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.169.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::10.0.0.1",
            "2002:c0a8:0101::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001:0:4136:e378::1",
            "100::1",
        ] {
            assert!(
                !is_public(ip(internal)),
                "{internal} must not count as public"
            );
        }
    }

    #[test]
    fn internet_addresses_are_public() {
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.17.0.1",
            "198.20.0.1",
            "223.255.255.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert!(is_public(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn one_private_address_refuses_the_whole_name() {
        let policy = AddressPolicy::PublicOnly;
        assert_eq!(
            policy.vet("s3.example.eu", vec![ip("1.1.1.1"), ip("10.0.0.5")]),
            Err(OutboundError::NotPublic {
                host: "s3.example.eu".into(),
                address: ip("10.0.0.5"),
            })
        );
        assert_eq!(
            policy.vet("s3.example.eu", vec![]),
            Err(OutboundError::NoAddress {
                host: "s3.example.eu".into()
            })
        );
        assert!(policy.vet("s3.example.eu", vec![ip("1.1.1.1")]).is_ok());
        assert!(
            AddressPolicy::AllowPrivate
                .vet("minio", vec![ip("10.0.0.5")])
                .is_ok()
        );
    }

    #[tokio::test]
    async fn literals_and_names_are_resolved_then_vetted() {
        let policy = AddressPolicy::PublicOnly;
        assert!(matches!(
            policy.resolve("127.0.0.1").await,
            Err(OutboundError::NotPublic { .. })
        ));
        assert!(matches!(
            policy.resolve("[::1]").await,
            Err(OutboundError::NotPublic { .. })
        ));
        // `localhost` resolves from /etc/hosts, without a network.
        assert!(matches!(
            policy.resolve("localhost").await,
            Err(OutboundError::NotPublic { .. })
        ));
        assert_eq!(
            AddressPolicy::AllowPrivate.resolve("127.0.0.1").await,
            Ok(vec![ip("127.0.0.1")])
        );
        assert!(policy.resolve("1.1.1.1").await.is_ok());
    }
}
