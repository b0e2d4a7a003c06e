//! A frame's distinct client IPs: IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), every address as
//! a 128-bit number, sorted, so one address and a CIDR block are both a range of that list.

use std::net::{IpAddr, Ipv6Addr};

/// An address as a 128-bit number (IPv4 mapped into IPv6).
fn number(ip: IpAddr) -> u128 {
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

/// Distinct addresses, sorted as numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpList {
    numbers: Vec<u128>,
}

impl IpList {
    /// The distinct addresses among `ips`.
    pub fn new(ips: impl IntoIterator<Item = IpAddr>) -> Self {
        let mut numbers: Vec<u128> = ips.into_iter().map(number).collect();
        numbers.sort_unstable();
        numbers.dedup();
        Self { numbers }
    }

    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// Whether an address of the list lies in `block`.
    pub fn meets(&self, block: &IpBlock) -> bool {
        let from = self.numbers.partition_point(|n| *n < block.first);
        self.numbers.get(from).is_some_and(|n| *n <= block.last)
    }

    /// The differences of the sorted numbers (the first from 0), each as an unsigned LEB128
    /// number: small for addresses near each other.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut previous = 0u128;
        for number in &self.numbers {
            let mut delta = number - previous;
            previous = *number;
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

    /// The list `encode` wrote for `count` addresses; `None` when the bytes do not hold exactly
    /// that (cut, overlong, or a number beyond 128 bits).
    pub fn decode(bytes: &[u8], count: usize) -> Option<Self> {
        let mut numbers = Vec::with_capacity(count.min(bytes.len()));
        let mut rest = bytes;
        let mut previous = 0u128;
        for _ in 0..count {
            let mut delta = 0u128;
            let mut shift = 0u32;
            loop {
                let (&byte, tail) = rest.split_first()?;
                rest = tail;
                let low = u128::from(byte & 0x7f);
                if shift >= 128 || (shift > 121 && low >> (128 - shift) != 0) {
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
            if !numbers.is_empty() && delta == 0 {
                return None;
            }
            previous = previous.checked_add(delta)?;
            numbers.push(previous);
        }
        rest.is_empty().then_some(Self { numbers })
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng as _, SeedableRng as _};

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn blocks_are_ranges_of_the_mapped_numbers() {
        let list = IpList::new([
            ip("203.0.113.7"),
            ip("198.51.100.1"),
            ip("2001:db8::1"),
            ip("203.0.113.7"),
        ]);
        assert_eq!(list.len(), 3);
        for (query, hit) in [
            ("203.0.113.7", true),
            ("203.0.113.8", false),
            ("203.0.113.0/24", true),
            ("203.0.112.0/24", false),
            ("198.51.0.0/16", true),
            ("2001:db8::/32", true),
            ("2001:db9::/32", false),
            ("2001:db8::1", true),
            ("::ffff:203.0.113.7", true),
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
    fn random_lists_round_trip_and_answer_like_a_scan() {
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
                            0,
                            0,
                            0,
                            0,
                            rng.random::<u16>() & 0xff,
                            rng.random(),
                        ])
                    }
                })
                .collect();
            let list = IpList::new(ips.clone());
            let coded = list.encode();
            assert_eq!(IpList::decode(&coded, list.len()), Some(list.clone()));
            assert_eq!(IpList::decode(&coded, list.len() + 1), None);
            if !coded.is_empty() {
                assert_eq!(IpList::decode(&coded[..coded.len() - 1], list.len()), None);
            }
            for query in [
                "203.0.101.0/24",
                "203.0.102.9",
                "2001:db8::/112",
                "2001:db8::1:0/112",
            ] {
                let block = IpBlock::parse(query).expect(query);
                let scan = ips.iter().any(|ip| block.holds(number(*ip)));
                assert_eq!(list.meets(&block), scan, "{query}");
            }
        }
    }
}
