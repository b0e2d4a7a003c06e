//! One frame's keys: the Golomb-Rice coded fingerprints of its distinct Ray IDs and the sorted
//! list of its distinct client IPs, built from the frame's content in one pass.

use std::net::IpAddr;

use crate::fields::record_keys;
use crate::golomb::{self, GolombError};
use crate::ip::{IpBlock, IpList};
use crate::ray::RayId;

/// What a frame holds, for finding its records without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameKeys {
    /// Distinct Ray IDs in the frame.
    pub rays: u64,
    /// Their fingerprints ([`RayId::fingerprint`] with `rays`), sorted, Golomb-Rice coded.
    pub ray_set: Vec<u8>,
    pub client_ips: IpList,
}

impl FrameKeys {
    /// The keys of `content`, NDJSON records separated by `0x0A`.
    pub fn build(content: &[u8]) -> Self {
        let mut rays: Vec<RayId> = Vec::new();
        let mut ips: Vec<IpAddr> = Vec::new();
        for line in content.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let keys = record_keys(line);
            rays.extend(keys.ray);
            ips.extend(keys.client_ip);
        }
        rays.sort_unstable();
        rays.dedup();
        let distinct = rays.len() as u64;
        let mut fingerprints: Vec<u64> = rays.iter().map(|r| r.fingerprint(distinct)).collect();
        fingerprints.sort_unstable();
        Self {
            rays: distinct,
            ray_set: golomb::encode(&fingerprints),
            client_ips: IpList::new(ips),
        }
    }

    /// Whether the frame may hold a record of `ray`: `false` is certain, `true` wrong about once
    /// in [`golomb::M`] frames.
    pub fn may_hold_ray(&self, ray: &RayId) -> Result<bool, GolombError> {
        if self.rays == 0 {
            return Ok(false);
        }
        golomb::contains(&self.ray_set, self.rays, ray.fingerprint(self.rays))
    }

    /// Whether the frame holds a record from an address in `block` (exact).
    pub fn holds_client_in(&self, block: &IpBlock) -> bool {
        self.client_ips.meets(block)
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng as _, SeedableRng as _};

    use super::*;

    fn line(ray: u64, ip: [u8; 4]) -> String {
        format!(
            "{{\"ClientIP\":\"{}\",\"EdgeStartTimestamp\":1768485600000000000,\"RayID\":\"{ray:016x}\"}}\n",
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
                let content: String = records.iter().map(|(r, ip)| line(*r, *ip)).collect();
                let keys = FrameKeys::build(content.as_bytes());
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
                    assert_eq!(keys.holds_client_in(&block), from_block);
                }
            }
        }
        assert!(probes > 3_000, "{probes}");
        assert!(
            false_matches <= 1,
            "{false_matches} false matches in {probes} probes"
        );
    }

    #[test]
    fn a_frame_without_keys_names_nothing() {
        let keys = FrameKeys::build(b"{\"EdgeStartTimestamp\":1}\n\n");
        assert_eq!(keys.rays, 0);
        assert!(keys.ray_set.is_empty() && keys.client_ips.is_empty());
        let ray = RayId::parse("8d2f61c1fa0b1c3e").expect("ray");
        assert_eq!(keys.may_hold_ray(&ray), Ok(false));
    }

    /// About 21 bits per Ray ID and a few bytes per distinct address.
    #[test]
    fn keys_are_small_beside_the_records() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let content: String = (0..5_000)
            .map(|_| line(rng.random(), [203, 0, 113, rng.random_range(0..200)]))
            .collect();
        let keys = FrameKeys::build(content.as_bytes());
        let ray_bits = keys.ray_set.len() as f64 * 8.0 / keys.rays as f64;
        assert!((19.5..22.5).contains(&ray_bits), "{ray_bits}");
        assert_eq!(keys.client_ips.len(), 200);
        assert!(keys.client_ips.encode().len() <= 200 * 3);
    }
}
