//! Versioned CBOR events exchanged on RainLogs' JetStream subjects.
//!
//! Every message on an `rl.*` subject is one [`Envelope`] encoded as CBOR (RFC 8949). The envelope
//! carries routing and provenance (tenant, zone, causation, actor); the `type` and `payload` keys
//! carry one typed [`Event`]. `docs/EVENTS.md` describes every event in CDDL for outside
//! subscribers, and the golden files under `schemas/golden/` freeze the encodings.

mod codec;
mod envelope;
pub mod events;
pub mod subjects;

pub use codec::{DecodeError, EncodeError};
pub use envelope::{Actor, ENVELOPE_VERSION, Envelope, unix_now_ns};
pub use events::Event;
