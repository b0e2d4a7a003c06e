//! Deterministic synthetic traffic: every record is a pure function of (seed, zone, second received, index).

pub mod fields;
pub mod firewall;
pub mod http;
pub mod pools;
pub mod render;

use crate::rng::{Rng, hash_str, hash_words, mix64, unmix64};

/// Per-zone generator parameters (immutable once the simulator runs).
#[derive(Debug)]
pub struct ZoneTraffic {
    /// Zone name, JSON-escaped.
    pub zone_name: String,
    /// Host names clients ask for, JSON-escaped.
    pub hosts: Vec<String>,
    pub origin_ips: Vec<String>,
    pub rate: f64,
    pub firewall_rate: f64,
    key: u64,
}

/// Ray IDs carry (second, index) under a keyed bijection so `/logs/rayids` needs no index; 24 bits of index.
const MAX_PER_SECOND: u64 = 1 << 24;

impl ZoneTraffic {
    pub fn new(seed: u64, zone_id: &str, zone_name: &str, rate: f64, firewall_rate: f64) -> Self {
        let key = hash_words(&[seed, hash_str(zone_id)]);
        let name = pools::json_escape(zone_name);
        let hosts = vec![
            name.clone(),
            format!("www.{name}"),
            format!("api.{name}"),
            format!("static.{name}"),
        ];
        let mut rng = Rng::new(key ^ 0x0123_4567);
        let origin_ips = (0..3)
            .map(|_| format!("203.0.113.{}", 1 + rng.below(254)))
            .collect();
        Self {
            zone_name: name,
            hosts,
            origin_ips,
            rate,
            firewall_rate,
            key,
        }
    }

    pub fn key(&self) -> u64 {
        self.key
    }

    /// Number of `http_requests` records received in `second` (Unix seconds).
    pub fn http_count(&self, second: i64) -> u32 {
        let mut rng = Rng::new(hash_words(&[self.key, second as u64, 0x4854_5450]));
        rng.poisson(self.rate).min(MAX_PER_SECOND - 1) as u32
    }

    /// Number of firewall events whose `datetime` is `second`.
    pub fn firewall_count(&self, second: i64) -> u32 {
        let mut rng = Rng::new(hash_words(&[self.key, second as u64, 0x4657]));
        rng.poisson(self.firewall_rate).min(MAX_PER_SECOND - 1) as u32
    }

    /// Seed for record `index` of `second`.
    pub fn record_seed(&self, second: i64, index: u32, dataset_tag: u64) -> u64 {
        hash_words(&[self.key, second as u64, u64::from(index), dataset_tag])
    }

    pub fn ray_id(&self, second: i64, index: u32) -> u64 {
        let plain = ((second as u64 & 0xffff_ffff) << 32) | (u64::from(index) << 8);
        mix64(plain ^ self.key)
    }

    /// Inverse of [`ray_id`](Self::ray_id); `None` if the id was not minted for this zone.
    pub fn decode_ray(&self, ray: u64) -> Option<(i64, u32)> {
        let plain = unmix64(ray) ^ self.key;
        if plain & 0xff != 0 {
            return None;
        }
        let second = (plain >> 32) as i64;
        let index = ((plain >> 8) & (MAX_PER_SECOND - 1)) as u32;
        (index < self.http_count(second)).then_some((second, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ray_ids_decode_to_their_record() {
        let zone = ZoneTraffic::new(
            1,
            "0123456789abcdef0123456789abcdef",
            "a.example",
            50.0,
            1.0,
        );
        let second = 1_767_225_600;
        for index in 0..zone.http_count(second) {
            assert_eq!(
                zone.decode_ray(zone.ray_id(second, index)),
                Some((second, index))
            );
        }
        let other = ZoneTraffic::new(
            1,
            "fedcba9876543210fedcba9876543210",
            "b.example",
            50.0,
            1.0,
        );
        let foreign = (0..20)
            .filter(|i| other.decode_ray(zone.ray_id(second, *i)).is_some())
            .count();
        assert!(
            foreign <= 1,
            "ray ids of one zone should almost never decode in another"
        );
    }
}
