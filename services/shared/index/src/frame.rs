//! One frame's keys: the Golomb-Rice coded fingerprints of its distinct Ray IDs, the networks of
//! its client addresses and the range of its records' times, built from the frame's content in
//! one pass.

use crate::fields::record_keys;
use crate::golomb::{self, GolombError};
use crate::ip::{IpBlock, PrefixList};
use crate::ray::RayId;

/// What a frame holds, for finding its records without reading it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameKeys {
    /// Records: non-empty lines.
    pub records: u64,
    /// Distinct Ray IDs in the frame.
    pub rays: u32,
    /// Their fingerprints ([`RayId::fingerprint`] with `rays`), sorted, Golomb-Rice coded.
    pub ray_set: Vec<u8>,
    pub networks: PrefixList,
    /// Earliest and latest record time (Unix ns) among the records that have one.
    pub time: Option<(u64, u64)>,
}

impl FrameKeys {
    /// The keys of `content`, NDJSON records separated by `0x0A`.
    pub fn build(content: &[u8]) -> Self {
        let mut rays: Vec<RayId> = Vec::new();
        let mut ips = Vec::new();
        let mut time: Option<(u64, u64)> = None;
        let mut records = 0;
        for line in content.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            records += 1;
            let keys = record_keys(line);
            rays.extend(keys.ray);
            ips.extend(keys.client_ip);
            if let Some(t) = keys.time_ns {
                time = Some(time.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
            }
        }
        rays.sort_unstable();
        rays.dedup();
        // A frame holds at most a few MiB of records, far below 2^32 Ray IDs.
        let distinct = u32::try_from(rays.len()).unwrap_or(u32::MAX);
        let mut fingerprints: Vec<u64> = rays
            .iter()
            .map(|r| r.fingerprint(u64::from(distinct)))
            .collect();
        fingerprints.sort_unstable();
        Self {
            records,
            rays: distinct,
            ray_set: golomb::encode(&fingerprints),
            networks: PrefixList::new(ips),
            time,
        }
    }

    /// Whether the frame may hold a record of `ray`: `false` is certain, `true` wrong about once
    /// in [`golomb::M`] frames.
    pub fn may_hold_ray(&self, ray: &RayId) -> Result<bool, GolombError> {
        if self.rays == 0 {
            return Ok(false);
        }
        let rays = u64::from(self.rays);
        golomb::contains(&self.ray_set, rays, ray.fingerprint(rays))
    }

    /// Whether the frame may hold a record from an address in `block` (one of its networks does).
    pub fn may_hold_client_in(&self, block: &IpBlock) -> bool {
        self.networks.meets(block)
    }

    /// Whether a record of the frame may have a time in `[start_ns, end_ns)`.
    pub fn may_hold_time_in(&self, start_ns: u64, end_ns: u64) -> bool {
        self.time
            .is_some_and(|(lo, hi)| lo < end_ns && hi >= start_ns)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use rand::{Rng as _, SeedableRng as _};

    use super::*;

    fn line(ray: u64, ip: [u8; 4], time: u64) -> String {
        format!(
            "{{\"ClientIP\":\"{}\",\"EdgeStartTimestamp\":{time},\"RayID\":\"{ray:016x}\"}}\n",
            IpAddr::from(ip)
        )
    }

    /// Against a scan of the frames: every frame holding a Ray ID or an address of a block is
    /// named (never a miss), and frames named without holding the Ray ID are rare.
    #[test]
    fn probes_never_miss_a_frame_a_scan_finds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(23);
        type Records = Vec<(u64, [u8; 4])>;
        let frames: Vec<(Records, FrameKeys)> = (0..24)
            .map(|_| {
                let records: Records = (0..rng.random_range(0..3_000))
                    .map(|_| {
                        (
                            rng.random::<u64>(),
                            [198, 51, rng.random_range(0..4), rng.random()],
                        )
                    })
                    .collect();
                let content: String = records
                    .iter()
                    .map(|(r, ip)| line(*r, *ip, 1_768_485_600_000_000_000))
                    .collect();
                let keys = FrameKeys::build(content.as_bytes());
                assert_eq!(keys.records, records.len() as u64);
                (records, keys)
            })
            .collect();
        let mut false_matches = 0;
        let mut probes = 0;
        for (records, _) in &frames {
            for (ray, ip) in records.iter().take(8) {
                let ray_id = RayId::parse(&format!("{ray:016x}")).expect("ray");
                let block = IpBlock::parse(&format!("{}", IpAddr::from(*ip))).expect("ip");
                for (other, keys) in &frames {
                    let held = other.iter().any(|(r, _)| r == ray);
                    let named = keys.may_hold_ray(&ray_id).expect("set");
                    assert!(named || !held, "a frame holding {ray:016x} was missed");
                    false_matches += usize::from(named && !held);
                    probes += 1;
                    let from_block = other.iter().any(|(_, i)| i == ip);
                    assert!(keys.may_hold_client_in(&block) || !from_block);
                }
            }
        }
        assert!(probes > 3_000, "{probes}");
        assert!(
            false_matches <= 8,
            "{false_matches} false matches in {probes} probes"
        );
    }

    #[test]
    fn a_frame_without_keys_names_nothing() {
        let keys = FrameKeys::build(b"{\"Note\":1}\n\n");
        assert_eq!((keys.records, keys.rays, keys.time), (1, 0, None));
        assert!(keys.ray_set.is_empty() && keys.networks.is_empty());
        let ray = RayId::parse("8d2f61c1fa0b1c3e").expect("ray");
        assert_eq!(keys.may_hold_ray(&ray), Ok(false));
        assert!(!keys.may_hold_time_in(0, u64::MAX));
    }

    #[test]
    fn the_time_range_is_the_records_earliest_and_latest() {
        let content = [
            line(1, [203, 0, 113, 1], 1_000_000_000_000_000_300),
            line(2, [203, 0, 113, 2], 1_000_000_000_000_000_100),
            "{\"RayID\":\"0000000000000003\"}\n".to_owned(),
            line(4, [203, 0, 113, 3], 1_000_000_000_000_000_200),
        ]
        .concat();
        let keys = FrameKeys::build(content.as_bytes());
        let (lo, hi) = (1_000_000_000_000_000_100, 1_000_000_000_000_000_300);
        assert_eq!((keys.records, keys.rays, keys.time), (4, 4, Some((lo, hi))));
        assert!(keys.may_hold_time_in(hi, hi + 1));
        assert!(!keys.may_hold_time_in(hi + 1, u64::MAX));
        assert!(!keys.may_hold_time_in(0, lo));
    }

    /// About 11.5 bits per Ray ID and a few bytes per network.
    #[test]
    fn keys_are_small_beside_the_records() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let content: String = (0..5_000)
            .map(|_| line(rng.random(), [203, 0, rng.random_range(0..200), 7], 1))
            .collect();
        let keys = FrameKeys::build(content.as_bytes());
        let ray_bits = keys.ray_set.len() as f64 * 8.0 / f64::from(keys.rays);
        assert!((10.5..13.0).contains(&ray_bits), "{ray_bits}");
        assert_eq!(keys.networks.v4.len(), 200);
    }
}
