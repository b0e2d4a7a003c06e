//! The tamper lab: a realistic zone built by the auditor-side reference sealer (support::fixture), then one
//! attack per test, each of which the verifier must catch with exit 1 and a specific reason. Directory-store
//! attacks run everywhere; the S3 tests need `tools/dev-env up` and `source var/dev-env.sh`.
#![allow(clippy::unwrap_used)]

mod attacks;
mod binary;
mod clean;
mod gaps;
mod indexes;
mod late;
mod replica;
mod s3;
mod support;
