//! Search index pieces for the frames of an archive object (docs/FORMAT.md §3): which Ray IDs
//! and which client IPs a frame holds, in a form that is small, exact to specify, and never
//! misses a record that is there.
//!
//! * [`golomb`]: a Golomb-Rice coded set of integers (the coding of BIP 158), the store for Ray
//!   ID fingerprints: about 21 bits per Ray ID, a false match once in 784 931 frames probed.
//! * [`ray`]: a Ray ID's fingerprint in a frame's set.
//! * [`ip`]: a frame's distinct client IPs, sorted, answering an address or a CIDR block.
//! * [`fields`]: the Ray ID and client IP of one archived record, read from its top-level JSON
//!   fields whatever the dataset's naming.
//! * [`frame`]: a frame's keys, built from its content and probed by a query.
//!
//! A probe says "maybe here" or "certainly not here": the frames it names are then read and
//! their records matched exactly, so a false match costs one frame read and nothing else.
//!
//! Not yet written by the archiver: the index object that holds these keys for every frame,
//! its place in the log and the search over it are the next steps.
//! `examples/frame_keys_bench.rs` measures what building the keys costs beside compressing.

pub mod fields;
pub mod frame;
pub mod golomb;
pub mod ip;
pub mod ray;

pub use fields::{RecordKeys, record_keys};
pub use frame::FrameKeys;
pub use ip::{IpBlock, IpBlockError, IpList};
pub use ray::{RayId, RayIdError};
