//! Archive object storage for RainLogs.
//!
//! Two providers with one key layout: a local directory (the embedded default) and S3-compatible buckets via
//! `aws-sdk-s3`. Every write is create-only (`If-None-Match: *` or a hard link), carries a SHA-256 the provider
//! verifies, and gets Object Lock COMPLIANCE retention where the bucket has it. A put that finds its key taken
//! compares hashes: same bytes is an idempotent success, different bytes an [`Incident`]. [`Store::probe`]
//! tries each protection and reports a [`Posture`] instead of trusting a provider's 200. [`Replicated`] writes
//! a primary and a secondary, queues what one side missed and repairs it later.

mod backend;
mod conflict;
mod digest;
mod error;
pub mod fs;
mod key;
mod model;
mod posture;
pub mod replicated;
pub mod s3;
mod store;
mod stream;

pub use backend::Backend;
pub use digest::Sha256Hash;
pub use error::{Incident, StoreError};
pub use fs::FsStore;
pub use key::ObjectKey;
pub use model::{
    DeleteOutcome, ListedObject, LockMode, ObjectHead, ObjectLock, ObjectReader, Presence,
    PutOptions, PutOutcome, Side,
};
pub use posture::{
    BackendKind, Check, CheckStatus, DefaultRetention, Posture, ProviderPosture, Role,
};
pub use rainlogs_outbound::AddressPolicy;
pub use replicated::{
    Comparison, FileRepairQueue, KeyRepair, REPLACED_KEY_SUFFIX, RepairEntry, RepairReport,
    Replicated,
};
pub use s3::{BucketOptions, DefaultRetentionRule, S3Config, S3Credentials, S3Store};
pub use store::Store;
