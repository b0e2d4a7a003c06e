//! Archive download bodies: the stored `.zst` bytes as they are, or the decompressed NDJSON.
//!
//! Archives up to 32 MiB (`routes::jobs::copies::BUFFER_LIMIT`) are read whole and checked
//! against their stored SHA-256 before the status line goes out: a copy that does not match is
//! passed over, and when no copy matches the answer is a 500 `ARCHIVE_DAMAGED`, never a 200.
//! Larger archives cannot be checked before they are sent: they are streamed through this module
//! and hashed while they flow, and a body that does not hash to what the entry (and so the
//! header) promises is cut off mid-body with an error, so a client can never receive a whole,
//! silently different archive. The NDJSON form is always decompressed as it streams and checked
//! against the content SHA-256 the same way.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_compression::tokio::bufread::ZstdDecoder;
use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, BufReader, ReadBuf};
use tokio_util::io::ReaderStream;

/// Passes bytes through, and at the end fails unless they hashed to `expected`.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    expected: [u8; 32],
    what: &'static str,
    done: bool,
}

impl<R> VerifyingReader<R> {
    pub fn new(inner: R, expected: [u8; 32], what: &'static str) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            expected,
            what,
            done: false,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for VerifyingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                if fresh.is_empty() {
                    self.done = true;
                    let actual: [u8; 32] = self.hasher.clone().finalize().into();
                    if actual != self.expected {
                        tracing::error!(
                            what = self.what,
                            expected = %hex::encode(self.expected),
                            actual = %hex::encode(actual),
                            "archive bytes do not match their sealed hash; download cut off"
                        );
                        return Poll::Ready(Err(io::Error::other(format!(
                            "{} does not match its sealed SHA-256",
                            self.what
                        ))));
                    }
                } else {
                    self.hasher.update(fresh);
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// Streams `reader` in chunks, holding the newest chunk back until the next one arrives: the
/// last chunk goes out only after the whole body hashed to `expected`. A mismatch therefore never
/// reaches the client as a complete body, even where the transport ends a failed stream cleanly.
pub fn verified_stream<R: AsyncRead + Unpin + Send + 'static>(
    reader: R,
    expected: [u8; 32],
    what: &'static str,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    struct State<R> {
        chunks: ReaderStream<R>,
        hasher: Sha256,
        held: Option<Bytes>,
        finished: bool,
    }
    let state = State {
        chunks: ReaderStream::new(reader),
        hasher: Sha256::new(),
        held: None,
        finished: false,
    };
    futures::stream::unfold(state, move |mut state| async move {
        if state.finished {
            return None;
        }
        loop {
            match state.chunks.next().await {
                Some(Ok(chunk)) => {
                    state.hasher.update(&chunk);
                    if let Some(previous) = state.held.replace(chunk) {
                        return Some((Ok(previous), state));
                    }
                }
                Some(Err(e)) => {
                    state.finished = true;
                    return Some((Err(e), state));
                }
                None => {
                    state.finished = true;
                    let actual: [u8; 32] = state.hasher.clone().finalize().into();
                    if actual != expected {
                        tracing::error!(
                            what,
                            expected = %hex::encode(expected),
                            actual = %hex::encode(actual),
                            "archive bytes do not match their sealed hash; download cut off"
                        );
                        let error =
                            io::Error::other(format!("{what} does not match its sealed SHA-256"));
                        return Some((Err(error), state));
                    }
                    return state.held.take().map(|last| (Ok(last), state));
                }
            }
        }
    })
}

/// The stored object, checked against its stored SHA-256.
pub fn raw<R: AsyncRead + Unpin + Send + 'static>(
    object: R,
    stored_sha256: [u8; 32],
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    verified_stream(object, stored_sha256, "the stored object")
}

/// The decompressed content (all zstd frames), checked against the stored SHA-256 on the way
/// in and the content SHA-256 on the way out.
pub fn ndjson<R: AsyncRead + Unpin + Send + 'static>(
    object: R,
    stored_sha256: [u8; 32],
    content_sha256: [u8; 32],
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let stored = VerifyingReader::new(object, stored_sha256, "the stored object");
    let mut decoder = ZstdDecoder::new(BufReader::new(stored));
    // An archive is a sequence of independent frames (docs/FORMAT.md §3).
    decoder.multiple_members(true);
    verified_stream(decoder, content_sha256, "the archive content")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(stream: impl Stream<Item = io::Result<Bytes>>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut stream = std::pin::pin!(stream);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    fn sha(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    fn archive(content: &[u8]) -> Vec<u8> {
        // Two frames, as the archiver writes them.
        let (a, b) = content.split_at(content.len() / 2);
        let mut out = zstd::encode_all(a, 3).unwrap();
        out.extend(zstd::encode_all(b, 3).unwrap());
        out
    }

    #[tokio::test]
    async fn both_forms_stream_and_check_out() {
        let content = b"{\"a\":1}\n{\"b\":2}\n".repeat(100);
        let stored = archive(&content);
        let out = collect(ndjson(
            std::io::Cursor::new(stored.clone()),
            sha(&stored),
            sha(&content),
        ))
        .await
        .unwrap();
        assert_eq!(out, content);
        let out = collect(raw(std::io::Cursor::new(stored.clone()), sha(&stored)))
            .await
            .unwrap();
        assert_eq!(out, stored);
    }

    #[tokio::test]
    async fn a_changed_object_is_cut_off() {
        let content = b"{\"a\":1}\n".repeat(10);
        let stored = archive(&content);
        // What a client receives before the error: never the whole body.
        let mut stream = std::pin::pin!(raw(std::io::Cursor::new(stored.clone()), [0; 32]));
        let mut received = Vec::new();
        let mut error = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => received.extend_from_slice(&bytes),
                Err(e) => error = Some(e),
            }
        }
        assert!(error.unwrap().to_string().contains("does not match"));
        assert!(received.len() < stored.len(), "the last chunk is held back");
        let error = collect(ndjson(
            std::io::Cursor::new(stored.clone()),
            sha(&stored),
            [0; 32],
        ))
        .await
        .unwrap_err();
        assert!(error.to_string().contains("content"));
    }
}
