//! Feeds one byte stream to two writers at once, each through a small bounded channel, so replicating an
//! object costs a few chunks of memory rather than a copy of it. A writer that gives up stops being fed; the
//! other carries on. A failing source reaches both writers as an error, never as a premature end that would
//! store a truncated object.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::io::StreamReader;

const CHUNK: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

pub(crate) type BranchReader = StreamReader<ReceiverStream<io::Result<Bytes>>, Bytes>;

type Branch = mpsc::Sender<io::Result<Bytes>>;

pub(crate) fn split<R: AsyncRead + Unpin>(
    source: R,
) -> (impl Future<Output = ()>, BranchReader, BranchReader) {
    let (first_tx, first_rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let (second_tx, second_rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let pump = pump(source, [Some(first_tx), Some(second_tx)]);
    (
        pump,
        StreamReader::new(ReceiverStream::new(first_rx)),
        StreamReader::new(ReceiverStream::new(second_rx)),
    )
}

async fn pump<R: AsyncRead + Unpin>(mut source: R, mut branches: [Option<Branch>; 2]) {
    loop {
        if branches.iter().all(Option::is_none) {
            return;
        }
        let mut buf = BytesMut::with_capacity(CHUNK);
        let chunk = match source.read_buf(&mut buf).await {
            Ok(0) => return,
            Ok(_) => Ok(buf.freeze()),
            Err(error) => Err(error),
        };
        let failed = chunk.is_err();
        for slot in &mut branches {
            let Some(branch) = slot else { continue };
            let message = match &chunk {
                Ok(bytes) => Ok(bytes.clone()),
                Err(error) => Err(io::Error::new(error.kind(), error.to_string())),
            };
            if branch.send(message).await.is_err() {
                *slot = None;
            }
        }
        if failed {
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    #[tokio::test]
    async fn both_branches_receive_every_byte() {
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 253) as u8).collect();
        let (pump, mut first, mut second) = split(&data[..]);
        let (_, first_bytes, second_bytes) = tokio::join!(
            pump,
            async {
                let mut out = Vec::new();
                first.read_to_end(&mut out).await.map(|_| out)
            },
            async {
                let mut out = Vec::new();
                second.read_to_end(&mut out).await.map(|_| out)
            }
        );
        assert_eq!(first_bytes.unwrap(), data);
        assert_eq!(second_bytes.unwrap(), data);
    }

    #[tokio::test]
    async fn a_dropped_branch_does_not_stop_the_other() {
        let data = vec![1u8; 20 * CHUNK];
        let (pump, mut first, second) = split(&data[..]);
        drop(second);
        let (_, first_bytes) = tokio::join!(pump, async {
            let mut out = Vec::new();
            first.read_to_end(&mut out).await.map(|_| out)
        });
        assert_eq!(first_bytes.unwrap().len(), data.len());
    }

    struct FailsAfter(usize);

    impl AsyncRead for FailsAfter {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.0 == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "source broke",
                )));
            }
            let n = self.0.min(buf.remaining());
            buf.put_slice(&vec![9u8; n]);
            self.0 -= n;
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_source_failure_is_an_error_on_both_branches_not_an_early_end() {
        let (pump, mut first, mut second) = split(FailsAfter(CHUNK + 5));
        let (_, first_result, second_result) = tokio::join!(
            pump,
            async {
                let mut out = Vec::new();
                first.read_to_end(&mut out).await
            },
            async {
                let mut out = Vec::new();
                second.read_to_end(&mut out).await
            }
        );
        assert_eq!(
            first_result.unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
        assert_eq!(
            second_result.unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
    }
}
