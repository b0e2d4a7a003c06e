//! Client addresses: a queried address or CIDR block, and the networks a frame's client
//! addresses belong to. Every address is a 128-bit number, IPv4 as IPv4-mapped IPv6
//! (`::ffff:a.b.c.d`), so an address and a block are both a range of numbers.

use std::net::{IpAddr, Ipv6Addr};

/// An address as a 128-bit number (IPv4 mapped into IPv6).
pub fn number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// A CIDR block (an address is a block of one): the numbers `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock {
    pub first: u128,
    pub last: u128,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpBlockError {
    #[error("{0:?} is not an IPv4 or IPv6 address")]
    Address(String),
    #[error("/{prefix} is not a prefix length of {family} (at most /{max})")]
    Prefix {
        prefix: String,
        family: &'static str,
        max: u8,
    },
    #[error("/{prefix} of {family} is broader than a search may ask for (at least /{min})")]
    TooBroad {
        prefix: u8,
        family: &'static str,
        min: u8,
    },
    #[error("{0} has bits set after its prefix; the block starts at {1}")]
    NotBlockStart(String, String),
}

/// The broadest block a search may ask for: a /8 of IPv4, a /16 of IPv6 (a `/0` would read
/// everything).
const MIN_V4_PREFIX: u8 = 8;
const MIN_V6_PREFIX: u8 = 16;

impl IpBlock {
    /// `203.0.113.7`, `2001:db8::1`, `203.0.113.0/24` or `2001:db8::/32`. A block must start
    /// at its prefix boundary, so a typo is not silently widened.
    pub fn parse(text: &str) -> Result<Self, IpBlockError> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let ip: IpAddr = address
            .parse()
            .map_err(|_| IpBlockError::Address(address.to_owned()))?;
        let (family, max, min) = match ip {
            IpAddr::V4(_) => ("IPv4", 32u8, MIN_V4_PREFIX),
            IpAddr::V6(_) => ("IPv6", 128u8, MIN_V6_PREFIX),
        };
        let prefix = match prefix {
            None => max,
            Some(digits) => digits
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max && !digits.starts_with('+') && !digits.is_empty())
                .ok_or_else(|| IpBlockError::Prefix {
                    prefix: digits.to_owned(),
                    family,
                    max,
                })?,
        };
        if prefix < min {
            return Err(IpBlockError::TooBroad {
                prefix,
                family,
                min,
            });
        }
        let first = number(ip);
        // IPv4 sits in the low 32 bits of its mapped form.
        let host_bits = u32::from(max - prefix);
        let host_mask = if host_bits == 0 {
            0
        } else {
            u128::MAX >> (128 - host_bits)
        };
        if first & host_mask != 0 {
            let start = first & !host_mask;
            let shown = match ip {
                IpAddr::V4(_) => Ipv6Addr::from(start)
                    .to_ipv4_mapped()
                    .map_or_else(|| start.to_string(), |v4| v4.to_string()),
                IpAddr::V6(_) => Ipv6Addr::from(start).to_string(),
            };
            return Err(IpBlockError::NotBlockStart(text.to_owned(), shown));
        }
        Ok(Self {
            first,
            last: first | host_mask,
        })
    }

    pub fn holds(&self, number: u128) -> bool {
        (self.first..=self.last).contains(&number)
    }
}

/// IPv4 addresses in their mapped form: `::ffff:0:0/96`.
const MAPPED_V4: (u128, u128) = (0xffff_u128 << 32, (0xffff_u128 << 32) | 0xffff_ffff);

/// The distinct networks a frame's client addresses belong to: a /24 for IPv4 (IPv4-mapped
/// IPv6 addresses count as IPv4), a /48 for IPv6. An address or block meets the list when one of
/// its networks is there; the records are then matched exactly, so a network shared with other
/// addresses costs a frame read, never a miss.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixList {
    /// The top 24 bits of each IPv4 address, sorted, distinct.
    pub v4: Vec<u64>,
    /// The top 48 bits of each IPv6 address, sorted, distinct.
    pub v6: Vec<u64>,
}

/// Bits kept of an IPv4 and of an IPv6 address.
pub const V4_PREFIX_BITS: u32 = 24;
pub const V6_PREFIX_BITS: u32 = 48;

impl PrefixList {
    pub fn new(ips: impl IntoIterator<Item = IpAddr>) -> Self {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for ip in ips {
            let n = number(ip);
            if (MAPPED_V4.0..=MAPPED_V4.1).contains(&n) {
                v4.push(((n & 0xffff_ffff) >> (32 - V4_PREFIX_BITS)) as u64);
            } else {
                v6.push((n >> (128 - V6_PREFIX_BITS)) as u64);
            }
        }
        for list in [&mut v4, &mut v6] {
            list.sort_unstable();
            list.dedup();
        }
        Self { v4, v6 }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Whether a network of the list holds an address of `block`.
    pub fn meets(&self, block: &IpBlock) -> bool {
        let any_in = |list: &[u64], lo: u64, hi: u64| {
            let from = list.partition_point(|n| *n < lo);
            list.get(from).is_some_and(|n| *n <= hi)
        };
        let (first, last) = (block.first.max(MAPPED_V4.0), block.last.min(MAPPED_V4.1));
        let shift = 32 - V4_PREFIX_BITS;
        let v4 = first <= last
            && any_in(
                &self.v4,
                ((first & 0xffff_ffff) >> shift) as u64,
                ((last & 0xffff_ffff) >> shift) as u64,
            );
        let shift = 128 - V6_PREFIX_BITS;
        v4 || any_in(
            &self.v6,
            (block.first >> shift) as u64,
            (block.last >> shift) as u64,
        )
    }
}

/// A strictly increasing list as the differences of its values (the first from 0), each an
/// unsigned LEB128 number: small for values near each other.
pub fn encode_sorted(values: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut previous = 0u64;
    for value in values {
        let mut delta = value - previous;
        previous = *value;
        loop {
            let low = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                out.push(low);
                break;
            }
            out.push(low | 0x80);
        }
    }
    out
}

/// The `count` values `encode_sorted` wrote, each below `2^bits`; `None` when the bytes do not
/// hold exactly that (cut, overlong, not strictly increasing, or too large).
pub fn decode_sorted(bytes: &[u8], count: usize, bits: u32) -> Option<Vec<u64>> {
    let mut values = Vec::with_capacity(count.min(bytes.len()));
    let mut rest = bytes;
    let mut previous = 0u64;
    for _ in 0..count {
        let mut delta = 0u64;
        let mut shift = 0u32;
        loop {
            let (&byte, tail) = rest.split_first()?;
            rest = tail;
            let low = u64::from(byte & 0x7f);
            if shift >= 64 || low.checked_shl(shift)? >> shift != low {
                return None;
            }
            delta |= low << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                // One encoding per number: no trailing zero groups.
                if byte == 0 && shift > 7 {
                    return None;
                }
                break;
            }
        }
        if !values.is_empty() && delta == 0 {
            return None;
        }
        previous = previous.checked_add(delta)?;
        if previous >> bits != 0 {
            return None;
        }
        values.push(previous);
    }
    rest.is_empty().then_some(values)
}

#[cfg(test)]
mod tests {
    use rand::{Rng as _, SeedableRng as _};

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn blocks_meet_the_networks_of_the_addresses() {
        let list = PrefixList::new([
            ip("203.0.113.7"),
            ip("198.51.100.1"),
            ip("2001:db8::1"),
            ip("::ffff:203.0.113.9"),
        ]);
        assert_eq!(list.v4, [0xc63364, 0xcb0071]);
        assert_eq!(list.v6, [0x2001_0db8_0000]);
        for (query, hit) in [
            ("203.0.113.7", true),
            // Same /24: named, and the records then say no.
            ("203.0.113.8", true),
            ("203.0.113.0/24", true),
            ("203.0.112.0/24", false),
            ("203.0.112.0/23", true),
            ("198.51.0.0/16", true),
            ("198.50.0.0/16", false),
            ("2001:db8::/32", true),
            ("2001:db9::/32", false),
            ("2001:db8:1::1", false),
            ("::ffff:203.0.113.7", true),
            // An IPv6 block around the mapped IPv4 space meets IPv4 networks too.
            ("::/16", true),
        ] {
            let block = IpBlock::parse(query).expect(query);
            assert_eq!(list.meets(&block), hit, "{query}");
        }
    }

    #[test]
    fn bad_blocks_say_what_is_wrong() {
        assert_eq!(
            IpBlock::parse("203.0.113.0/0"),
            Err(IpBlockError::TooBroad {
                prefix: 0,
                family: "IPv4",
                min: 8
            })
        );
        for (bad, wrong) in [
            ("2001:db8::/8", "too broad"),
            ("203.0.113.0/33", "prefix"),
            ("203.0.113.0/+24", "prefix"),
            ("203.0.113.0/", "prefix"),
            ("203.0.113", "address"),
        ] {
            let said = match IpBlock::parse(bad) {
                Err(IpBlockError::TooBroad { .. }) => "too broad",
                Err(IpBlockError::Prefix { .. }) => "prefix",
                Err(IpBlockError::Address(_)) => "address",
                other => panic!("{bad}: {other:?}"),
            };
            assert_eq!(said, wrong, "{bad}");
        }
        assert_eq!(
            IpBlock::parse("203.0.113.7/24"),
            Err(IpBlockError::NotBlockStart(
                "203.0.113.7/24".into(),
                "203.0.113.0".into()
            ))
        );
        let message = IpBlock::parse("203.0.113.7/24").unwrap_err().to_string();
        assert!(message.contains("starts at 203.0.113.0"), "{message}");
    }

    #[test]
    fn random_lists_round_trip_and_never_miss_what_a_scan_finds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        for _ in 0..200 {
            let ips: Vec<IpAddr> = (0..rng.random_range(0..300))
                .map(|_| {
                    if rng.random_bool(0.7) {
                        IpAddr::from([203, 0, rng.random_range(100..104), rng.random::<u8>()])
                    } else {
                        IpAddr::from([
                            0x2001,
                            0xdb8,
                            rng.random::<u16>() & 0x3,
                            0,
                            0,
                            0,
                            rng.random::<u16>() & 0xff,
                            rng.random(),
                        ])
                    }
                })
                .collect();
            let list = PrefixList::new(ips.clone());
            for (values, bits) in [(&list.v4, V4_PREFIX_BITS), (&list.v6, V6_PREFIX_BITS)] {
                let coded = encode_sorted(values);
                assert_eq!(
                    decode_sorted(&coded, values.len(), bits).as_ref(),
                    Some(values)
                );
                assert_eq!(decode_sorted(&coded, values.len() + 1, bits), None);
                if let Some((_, cut)) = coded.split_last() {
                    assert_eq!(decode_sorted(cut, values.len(), bits), None);
                }
            }
            for query in [
                "203.0.101.0/24",
                "203.0.102.9",
                "203.0.100.0/22",
                "2001:db8::/112",
                "2001:db8:2::/48",
                "2001:db8::1:0/112",
            ] {
                let block = IpBlock::parse(query).expect(query);
                let scan = ips.iter().any(|ip| block.holds(number(*ip)));
                assert!(list.meets(&block) || !scan, "{query} missed");
            }
        }
    }

    #[test]
    fn hostile_lists_are_refused() {
        // Not increasing, overlong, beyond the bits, trailing bytes.
        assert_eq!(decode_sorted(&[5, 0], 2, 24), None);
        assert_eq!(decode_sorted(&[0x85, 0x00], 1, 24), None);
        assert_eq!(decode_sorted(&[0xff, 0xff, 0xff, 0x7f], 1, 24), None);
        assert_eq!(decode_sorted(&[1, 1], 1, 24), None);
        assert_eq!(decode_sorted(&[0xff; 11], 1, 64), None);
        assert_eq!(decode_sorted(&[1, 2], 2, 24), Some(vec![1, 3]));
    }
}
