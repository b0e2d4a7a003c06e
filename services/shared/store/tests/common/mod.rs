//! Shared test helpers: the real SeaweedFS from `tools/dev-env`, unique buckets, and generated content that
//! never sits in memory whole.
#![allow(dead_code)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use rainlogs_store::{S3Config, S3Credentials, S3Store, Sha256Hash};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

pub const MIB: usize = 1024 * 1024;

// Each test binary uses some of them.
#[allow(unused_imports)]
pub use rainlogs_testkit::s3::{
    dev_s3_auditor as auditor_credentials, dev_s3_endpoint as endpoint,
    dev_s3_writer as writer_credentials, unique_bucket,
};

pub fn config(bucket: &str, endpoint: String, credentials: S3Credentials) -> S3Config {
    let mut config = S3Config::new(bucket);
    config.endpoint = Some(endpoint);
    config.path_style = true;
    config.credentials = Some(credentials);
    config.part_size = 5 * MIB;
    config
}

/// A fresh bucket on the dev SeaweedFS, with or without Object Lock, and a store writing to it
/// in 5 MiB parts.
pub async fn new_bucket(purpose: &str, object_lock: bool) -> S3Store {
    rainlogs_testkit::s3::dev_bucket_with(purpose, object_lock, |config| {
        config.part_size = 5 * MIB;
    })
    .await
}

/// Deterministic pseudo-random bytes generated on the fly, so a test can stream gigabytes without holding
/// them. Each 8-byte word depends only on its position, so the stream is the same however reads split it.
pub struct Generated {
    position: u64,
    len: u64,
    seed: u64,
}

impl Generated {
    pub fn new(len: u64, seed: u64) -> Self {
        Self {
            position: 0,
            len,
            seed,
        }
    }

    fn word(&self, index: u64) -> [u8; 8] {
        // splitmix64
        let mut z = self
            .seed
            .wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)).to_le_bytes()
    }

    fn fill(&mut self, out: &mut [u8]) {
        let mut written = 0;
        while written < out.len() {
            let word = self.word(self.position / 8);
            let offset = (self.position % 8) as usize;
            let take = (8 - offset).min(out.len() - written);
            out[written..written + take].copy_from_slice(&word[offset..offset + take]);
            written += take;
            self.position += take as u64;
        }
    }

    fn remaining(&self) -> u64 {
        self.len - self.position
    }

    /// The sha256 of the full generated stream, computed independently of the store.
    pub fn sha256(len: u64, seed: u64) -> Sha256Hash {
        let mut generator = Self::new(len, seed);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; MIB];
        while generator.remaining() > 0 {
            let n = (generator.remaining() as usize).min(buf.len());
            generator.fill(&mut buf[..n]);
            hasher.update(&buf[..n]);
        }
        Sha256Hash(hasher.finalize().into())
    }

    pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut out = vec![0u8; len];
        Self::new(len as u64, seed).fill(&mut out);
        out
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = (self.remaining() as usize)
            .min(buf.remaining())
            .min(256 * 1024);
        let this = &mut *self;
        this.fill(buf.initialize_unfilled_to(n));
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

pub async fn read_all(mut reader: impl AsyncRead + Unpin) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.unwrap();
    out
}

pub async fn hash_all(mut reader: impl AsyncRead + Unpin) -> (Sha256Hash, u64) {
    use tokio::io::AsyncReadExt;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; MIB];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    (Sha256Hash(hasher.finalize().into()), size)
}
