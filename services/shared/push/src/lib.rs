//! Logpush pushes into `RL_PUSH`, whichever way they come in (the ingest endpoint's HTTP bodies,
//! objects in a customer's bucket): decoded as they arrive, every line checked to be a record of
//! the dataset, cut into parts that fit one NATS message, each stored once; and the customer's
//! bucket a Logpush job writes into, as a zone's source.

pub mod decode;
pub mod parts;
pub mod source;
pub mod store;

pub use parts::{Held, Refusal};
pub use source::{BucketAccess, BucketLocation, PushSource};
pub use store::{PART_BYTES, PushError, PushTarget, Stored, part_id, store_push};
