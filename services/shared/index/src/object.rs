//! The index object of one archive or late object (docs/FORMAT.md §12): for every frame where
//! it lies, the SHA-256 of its content, its records' time range, the fingerprints of its Ray IDs
//! and the networks of its client addresses. Written once beside the archive; its SHA-256 is
//! sealed in the log by an `index` entry, so an edited index is caught like an edited archive.
//!
//! The encoding is canonical: [`ArchiveIndex::decode`] accepts exactly the bytes
//! [`ArchiveIndex::encode`] writes, and nothing else.

use std::io::Read;

use rainlogs_integrity::{ArchiveDigest, FrameInfo, FrameScanner};
use sha2::{Digest as _, Sha256};

use crate::frame::FrameKeys;
use crate::golomb;
use crate::ip::{V4_PREFIX_BITS, V6_PREFIX_BITS, decode_sorted, encode_sorted};

const MAGIC: &[u8; 4] = b"RLIX";
const VERSION: u8 = 1;
/// Bytes of a frame before its variable parts; a bound on the frames a header may claim.
const FRAME_FIXED: usize = 6 * 8 + 32 + 2 * 8 + 3 * 8;

/// Where a frame lies in the archive object (stored bytes) and in its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameLocation {
    pub stored_offset: u64,
    pub stored_len: u64,
    pub content_offset: u64,
    pub content_len: u64,
    /// Index in the archive of the frame's first record.
    pub first_record: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameIndex {
    pub location: FrameLocation,
    pub content_sha256: [u8; 32],
    pub keys: FrameKeys,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveIndex {
    /// The archive object this index describes (its stored and content SHA-256).
    pub archive_stored_sha256: [u8; 32],
    pub archive_content_sha256: [u8; 32],
    pub frames: Vec<FrameIndex>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IndexError {
    #[error("not an index object (magic {0:02x?})")]
    Magic(Vec<u8>),
    #[error("index version {0} is not known (this reader knows 1)")]
    Version(u8),
    #[error("the index ends inside {0}")]
    Truncated(&'static str),
    #[error("frame {frame}: {why}")]
    Frame { frame: usize, why: String },
    #[error("{0} bytes follow the last frame")]
    Trailing(usize),
}

/// Builds an archive's index frame by frame, as the archive is written.
#[derive(Debug, Default)]
pub struct IndexBuilder {
    frames: Vec<FrameIndex>,
}

impl IndexBuilder {
    /// Adds the next frame: where it lies and its content (whole lines).
    pub fn add_frame(&mut self, location: FrameLocation, content: &[u8]) {
        self.frames.push(FrameIndex {
            location,
            content_sha256: Sha256::digest(content).into(),
            keys: FrameKeys::build(content),
        });
    }

    /// Adds a frame as the archive writer or a [`FrameScanner`] shows it.
    pub fn add(&mut self, frame: &FrameInfo, content: &[u8]) {
        let location = FrameLocation {
            stored_offset: frame.stored_offset,
            stored_len: frame.stored_len,
            content_offset: frame.content_offset,
            content_len: frame.content_len,
            first_record: frame.first_record,
        };
        self.add_frame(location, content);
    }

    pub fn finish(self, stored_sha256: [u8; 32], content_sha256: [u8; 32]) -> ArchiveIndex {
        ArchiveIndex {
            archive_stored_sha256: stored_sha256,
            archive_content_sha256: content_sha256,
            frames: self.frames,
        }
    }
}

/// Reads a stored archive object through and builds its index, as the archiver built it while
/// writing the object: how an index is rebuilt for an archive sealed before indexes existed,
/// and how a verifier checks one.
pub fn index_archive<R: Read>(stored: R) -> std::io::Result<(ArchiveDigest, ArchiveIndex)> {
    let mut scanner = FrameScanner::new(stored);
    let mut builder = IndexBuilder::default();
    while let Some((frame, content)) = scanner.next_frame()? {
        builder.add(&frame, &content);
    }
    let digest = scanner.finish()?;
    let index = builder.finish(digest.stored_sha256.0, digest.content_sha256.0);
    Ok((digest, index))
}

/// Big-endian reads that say what was cut.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], IndexError> {
        if self.bytes.len() < n {
            return Err(IndexError::Truncated(what));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, IndexError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, IndexError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_be_bytes(b))
    }

    fn hash(&mut self, what: &'static str) -> Result<[u8; 32], IndexError> {
        let mut b = [0u8; 32];
        b.copy_from_slice(self.take(32, what)?);
        Ok(b)
    }

    /// `u32 count ∥ u32 length ∥ bytes`.
    fn counted(&mut self, what: &'static str) -> Result<(u32, &'a [u8]), IndexError> {
        let count = self.u32(what)?;
        let len = self.u32(what)? as usize;
        Ok((count, self.take(len, what)?))
    }
}

fn put_counted(out: &mut Vec<u8>, count: usize, bytes: &[u8]) {
    // Counts and lengths of one frame's parts are far below 2^32 (a frame is about 1 MiB).
    out.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

impl ArchiveIndex {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.archive_stored_sha256);
        out.extend_from_slice(&self.archive_content_sha256);
        // An archive has far fewer than 2^32 frames (each holds about 1 MiB).
        out.extend_from_slice(
            &u32::try_from(self.frames.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for frame in &self.frames {
            let l = &frame.location;
            for n in [
                l.stored_offset,
                l.stored_len,
                l.content_offset,
                l.content_len,
                l.first_record,
                frame.keys.records,
            ] {
                out.extend_from_slice(&n.to_be_bytes());
            }
            out.extend_from_slice(&frame.content_sha256);
            let (lo, hi) = frame.keys.time.unwrap_or((0, 0));
            out.extend_from_slice(&lo.to_be_bytes());
            out.extend_from_slice(&hi.to_be_bytes());
            put_counted(&mut out, frame.keys.rays as usize, &frame.keys.ray_set);
            let networks = &frame.keys.networks;
            put_counted(&mut out, networks.v4.len(), &encode_sorted(&networks.v4));
            put_counted(&mut out, networks.v6.len(), &encode_sorted(&networks.v6));
        }
        out
    }

    /// The index `bytes` hold, checked for the rules of docs/FORMAT.md §12: frames follow each
    /// other without holes in the object, the content and the records, every part decodes to
    /// exactly its count, and the bytes are the one encoding of what they hold.
    pub fn decode(bytes: &[u8]) -> Result<Self, IndexError> {
        let mut r = Reader { bytes };
        let magic = r.take(4, "the magic")?;
        if magic != MAGIC {
            return Err(IndexError::Magic(magic.to_vec()));
        }
        let version = r.take(1, "the version")?[0];
        if version != VERSION {
            return Err(IndexError::Version(version));
        }
        let archive_stored_sha256 = r.hash("the archive's stored SHA-256")?;
        let archive_content_sha256 = r.hash("the archive's content SHA-256")?;
        let count = r.u32("the frame count")? as usize;
        let mut frames = Vec::with_capacity(count.min(bytes.len() / FRAME_FIXED));
        let mut expected = FrameLocation::default();
        for frame in 0..count {
            let bad = |why: String| IndexError::Frame { frame, why };
            let location = FrameLocation {
                stored_offset: r.u64("a frame's stored offset")?,
                stored_len: r.u64("a frame's stored length")?,
                content_offset: r.u64("a frame's content offset")?,
                content_len: r.u64("a frame's content length")?,
                first_record: r.u64("a frame's first record")?,
            };
            let records = r.u64("a frame's record count")?;
            if (
                location.stored_offset,
                location.content_offset,
                location.first_record,
            ) != (
                expected.stored_offset,
                expected.content_offset,
                expected.first_record,
            ) {
                return Err(bad(format!(
                    "starts at stored byte {}, content byte {}, record {}; the frames before end at {}, {}, {}",
                    location.stored_offset,
                    location.content_offset,
                    location.first_record,
                    expected.stored_offset,
                    expected.content_offset,
                    expected.first_record
                )));
            }
            if location.stored_len == 0 || location.content_len == 0 {
                return Err(bad("is empty".into()));
            }
            if records > location.content_len {
                return Err(bad(format!(
                    "claims {records} records in {} bytes",
                    location.content_len
                )));
            }
            let overflow = || bad("runs past 2^64".into());
            expected = FrameLocation {
                stored_offset: location
                    .stored_offset
                    .checked_add(location.stored_len)
                    .ok_or_else(overflow)?,
                content_offset: location
                    .content_offset
                    .checked_add(location.content_len)
                    .ok_or_else(overflow)?,
                first_record: location
                    .first_record
                    .checked_add(records)
                    .ok_or_else(overflow)?,
                ..FrameLocation::default()
            };
            let content_sha256 = r.hash("a frame's content SHA-256")?;
            let lo = r.u64("a frame's earliest time")?;
            let hi = r.u64("a frame's latest time")?;
            let time = match (lo, hi) {
                (0, 0) => None,
                (lo, hi) if lo != 0 && lo <= hi => Some((lo, hi)),
                _ => return Err(bad(format!("time range [{lo}, {hi}] is not a range"))),
            };
            let (rays, ray_set) = r.counted("a frame's Ray ID set")?;
            if u64::from(rays) > records {
                return Err(bad(format!("{rays} Ray IDs in {records} records")));
            }
            let range = u64::from(rays) * golomb::M;
            for value in golomb::decode(ray_set, u64::from(rays)) {
                let value = value.map_err(|e| bad(e.to_string()))?;
                if value >= range {
                    return Err(bad(format!("Ray ID fingerprint {value} is out of range")));
                }
            }
            let mut networks = crate::ip::PrefixList::default();
            for (list, bits, what) in [
                (&mut networks.v4, V4_PREFIX_BITS, "a frame's IPv4 networks"),
                (&mut networks.v6, V6_PREFIX_BITS, "a frame's IPv6 networks"),
            ] {
                let (count, coded) = r.counted(what)?;
                *list = decode_sorted(coded, count as usize, bits)
                    .ok_or_else(|| bad(format!("{what} are not {count} sorted networks")))?;
            }
            frames.push(FrameIndex {
                location,
                content_sha256,
                keys: FrameKeys {
                    records,
                    rays,
                    ray_set: ray_set.to_vec(),
                    networks,
                    time,
                },
            });
        }
        if !r.bytes.is_empty() {
            return Err(IndexError::Trailing(r.bytes.len()));
        }
        let index = Self {
            archive_stored_sha256,
            archive_content_sha256,
            frames,
        };
        // The Ray ID sets' padding bits and any other freedom the parts leave: one encoding only.
        if index.encode() != bytes {
            return Err(IndexError::Frame {
                frame: count.saturating_sub(1),
                why: "the bytes are not the canonical encoding of what they hold".into(),
            });
        }
        Ok(index)
    }

    /// Records in the archive.
    pub fn records(&self) -> u64 {
        self.frames.iter().map(|f| f.keys.records).sum()
    }

    /// The earliest and latest record time, over the records that have one.
    pub fn time(&self) -> Option<(u64, u64)> {
        self.frames
            .iter()
            .filter_map(|f| f.keys.time)
            .reduce(|(lo, hi), (l, h)| (lo.min(l), hi.max(h)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IpBlock, RayId};

    fn sample() -> (ArchiveIndex, Vec<u8>) {
        let frames = [
            "{\"ClientIP\":\"203.0.113.7\",\"EdgeStartTimestamp\":1768485600000000000,\"RayID\":\"8d2f61c1fa0b1c3e\"}\n",
            "{\"ClientIP\":\"2001:db8::1\",\"EdgeStartTimestamp\":1768485659000000000,\"RayID\":\"8d2f61c1fa0b1c3f\"}\n{\"Note\":1}\n",
        ];
        let mut builder = IndexBuilder::default();
        let mut location = FrameLocation::default();
        for (i, content) in frames.iter().enumerate() {
            location.content_len = content.len() as u64;
            location.stored_len = 40 + i as u64;
            builder.add_frame(location, content.as_bytes());
            location.stored_offset += location.stored_len;
            location.content_offset += location.content_len;
            location.first_record += content.lines().count() as u64;
        }
        let index = builder.finish([1; 32], [2; 32]);
        let bytes = index.encode();
        (index, bytes)
    }

    #[test]
    fn an_index_round_trips_and_answers_for_its_frames() {
        let (index, bytes) = sample();
        assert_eq!(ArchiveIndex::decode(&bytes), Ok(index.clone()));
        assert_eq!(index.records(), 3);
        assert_eq!(
            index.time(),
            Some((1_768_485_600_000_000_000, 1_768_485_659_000_000_000))
        );
        let ray = RayId::parse("8d2f61c1fa0b1c3f").expect("ray");
        let named: Vec<bool> = index
            .frames
            .iter()
            .map(|f| f.keys.may_hold_ray(&ray).expect("set"))
            .collect();
        assert_eq!(named, [false, true]);
        let block = IpBlock::parse("203.0.113.0/24").expect("block");
        assert!(index.frames[0].keys.may_hold_client_in(&block));
        assert!(!index.frames[1].keys.may_hold_client_in(&block));
        assert_eq!(
            index.frames[1].content_sha256,
            <[u8; 32]>::from(Sha256::digest(
                "{\"ClientIP\":\"2001:db8::1\",\"EdgeStartTimestamp\":1768485659000000000,\"RayID\":\"8d2f61c1fa0b1c3f\"}\n{\"Note\":1}\n"
            ))
        );
    }

    /// Every cut, every flipped byte and every appended byte is refused or decodes to a
    /// different index; nothing panics.
    #[test]
    fn damaged_indexes_are_refused_not_misread() {
        let (index, bytes) = sample();
        for cut in 0..bytes.len() {
            assert!(ArchiveIndex::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in 0..bytes.len() {
            let mut edited = bytes.clone();
            edited[at] ^= 0x01;
            if let Ok(decoded) = ArchiveIndex::decode(&edited) {
                assert_ne!(decoded, index, "byte {at} flipped and nothing changed");
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(ArchiveIndex::decode(&longer), Err(IndexError::Trailing(1)));
        let mut hole = index.clone();
        hole.frames[1].location.stored_offset += 1;
        assert!(matches!(
            ArchiveIndex::decode(&hole.encode()),
            Err(IndexError::Frame { frame: 1, .. })
        ));
        let mut huge = bytes[..73].to_vec();
        huge[69..73].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(ArchiveIndex::decode(&huge).is_err());
    }
}
