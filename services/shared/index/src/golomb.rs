//! Golomb-Rice coded sets, as BIP 158 codes its filters: the sorted values' differences, each as
//! its quotient by 2^P in unary (that many `1` bits, then a `0`) followed by its remainder in P
//! bits, most significant bit first, the last byte padded with `0` bits.
//!
//! With `n` values spread evenly over `[0, n × M)`, a value not in the set matches one of them
//! with probability about 1/M, and the set takes about P + 1.5 bits per value when M is close to
//! 1.497 × 2^P (BIP 158's ratio; BIP 158 itself uses P = 19). RainLogs' index objects use
//! P = 10, M = 1 533: 11.5 bits per Ray ID, and a frame named in vain once in 1 533 probes, which
//! costs one frame read. A smaller P keeps the index small beside archives of short records.

/// Remainder bits.
pub const P: u8 = 10;
/// Inverse false-match rate: values are reduced to `[0, n × M)`.
pub const M: u64 = 1_533;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum GolombError {
    #[error("the coded set ends before its {expected} values")]
    Truncated { expected: u64 },
    #[error("a value of the coded set does not fit in 64 bits")]
    Overflow,
}

/// Writes bits most significant first.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    used: u8,
}

impl BitWriter {
    fn bit(&mut self, one: bool) {
        if self.used == 0 {
            self.bytes.push(0);
        }
        if one && let Some(last) = self.bytes.last_mut() {
            *last |= 0x80 >> self.used;
        }
        self.used = (self.used + 1) % 8;
    }

    fn bits(&mut self, value: u64, count: u8) {
        for shift in (0..count).rev() {
            self.bit(value >> shift & 1 == 1);
        }
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Option<bool> {
        let byte = self.bytes.get(self.position / 8)?;
        let one = byte & (0x80 >> (self.position % 8)) != 0;
        self.position += 1;
        Some(one)
    }
}

/// Codes `values`, which must be sorted ascending; repeated values are coded once each time.
pub fn encode(values: &[u64]) -> Vec<u8> {
    let mut out = BitWriter::default();
    let mut previous = 0;
    for &value in values {
        let delta = value - previous;
        previous = value;
        for _ in 0..delta >> P {
            out.bit(true);
        }
        out.bit(false);
        out.bits(delta, P);
    }
    out.bytes
}

/// The `count` values of a coded set, ascending.
pub fn decode(coded: &[u8], count: u64) -> impl Iterator<Item = Result<u64, GolombError>> + '_ {
    let mut reader = BitReader {
        bytes: coded,
        position: 0,
    };
    let mut previous = 0u64;
    (0..count).map(move |_| {
        let truncated = GolombError::Truncated { expected: count };
        let mut quotient = 0u64;
        loop {
            match reader.bit() {
                Some(true) => quotient += 1,
                Some(false) => break,
                None => return Err(truncated),
            }
        }
        let mut remainder = 0u64;
        for _ in 0..P {
            let bit = reader.bit().ok_or_else(|| truncated.clone())?;
            remainder = remainder << 1 | u64::from(bit);
        }
        let delta = quotient
            .checked_shl(u32::from(P))
            .filter(|q| q >> P == quotient)
            .ok_or(GolombError::Overflow)?
            | remainder;
        previous = previous.checked_add(delta).ok_or(GolombError::Overflow)?;
        Ok(previous)
    })
}

/// Whether `value` is one of the `count` coded values (stops once past it).
pub fn contains(coded: &[u8], count: u64, value: u64) -> Result<bool, GolombError> {
    for decoded in decode(coded, count) {
        let decoded = decoded?;
        if decoded >= value {
            return Ok(decoded == value);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use rand::{Rng as _, SeedableRng as _};

    use super::*;

    #[test]
    fn a_small_set_has_the_bits_the_coding_says() {
        // 3: `0`, then 3 in 10 bits; the difference 2^10 + 1: `10`, then 1 in 10 bits. 23 bits:
        // ones at bits 9, 10 (the 3), 11 (the unary 1) and 22 (the 1), padded to 3 bytes.
        let coded = encode(&[3, 3 + (1 << P) + 1]);
        assert_eq!(coded, [0x00, 0x70, 0x02]);
        let decoded: Vec<u64> = decode(&coded, 2).map(Result::unwrap).collect();
        assert_eq!(decoded, [3, 3 + (1 << P) + 1]);
    }

    #[test]
    fn random_sets_round_trip_and_answer_membership_exactly() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(158);
        for _ in 0..200 {
            let n = rng.random_range(0..2_000u64);
            let range = n.max(1) * M;
            let mut values: Vec<u64> = (0..n).map(|_| rng.random_range(0..range)).collect();
            values.sort_unstable();
            let coded = encode(&values);
            let decoded: Vec<u64> = decode(&coded, n).map(Result::unwrap).collect();
            assert_eq!(decoded, values);
            for value in values.iter().take(20) {
                assert_eq!(contains(&coded, n, *value), Ok(true));
            }
            let absent = rng.random_range(0..range);
            assert_eq!(
                contains(&coded, n, absent),
                Ok(values.binary_search(&absent).is_ok())
            );
            // About P + 1.5 bits per value.
            if n >= 500 {
                let bits = coded.len() as f64 * 8.0 / n as f64;
                assert!((10.5..13.0).contains(&bits), "{bits} bits per value");
            }
        }
    }

    #[test]
    fn a_cut_or_hostile_set_is_an_error_not_a_panic() {
        let coded = encode(&[1, 2, 3]);
        assert!(decode(&coded[..1], 3).any(|v| v.is_err()));
        // A unary run that never ends.
        let ones = vec![0xff; 9_000];
        assert_eq!(
            decode(&ones, 1).next(),
            Some(Err(GolombError::Truncated { expected: 1 }))
        );
        // More values asked for than coded.
        assert_eq!(
            decode(&coded, 4).last(),
            Some(Err(GolombError::Truncated { expected: 4 }))
        );
    }
}
