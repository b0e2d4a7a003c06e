//! The search index of archive objects (docs/FORMAT.md §12): for every frame of an archive,
//! which Ray IDs, which client networks and which times it holds, in a form that is small, exact
//! to specify, and never misses a record that is there.
//!
//! * [`golomb`]: a Golomb-Rice coded set of integers (the coding of BIP 158), the store for Ray
//!   ID fingerprints: about 11.5 bits per Ray ID, a frame named in vain once in 1 533 probes.
//! * [`ray`]: a Ray ID and its fingerprint in a frame's set.
//! * [`ip`]: a queried address or CIDR block, and a frame's client networks (/24, /48).
//! * [`time`]: a record's event time from any of Cloudflare's renderings.
//! * [`fields`]: the Ray ID, client IP and time of one archived record, read from its top-level
//!   JSON fields whatever the dataset's naming.
//! * [`frame`]: a frame's keys, built from its content and probed by a query.
//! * [`object`]: the index object of an archive, its canonical encoding and its builder.
//!
//! A probe says "maybe here" or "certainly not here": the frames it names are then read and
//! their records matched exactly, so a false match costs one frame read and nothing else.

pub mod fields;
pub mod frame;
pub mod golomb;
pub mod ip;
pub mod object;
pub mod ray;
pub mod time;

pub use fields::{RecordKeys, record_keys};
pub use frame::FrameKeys;
pub use ip::{IpBlock, IpBlockError, PrefixList};
pub use object::{
    ArchiveIndex, FrameIndex, FrameLocation, IndexBuilder, IndexError, index_archive,
};
pub use ray::{RayId, RayIdError};
pub use time::event_time_ns;
