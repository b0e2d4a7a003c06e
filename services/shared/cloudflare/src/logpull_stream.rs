//! A Logpull body as a stream of raw NDJSON lines that ends with an explicit verdict.
//!
//! The stream yields `Line`s as they arrive and then exactly one terminal item: `Complete(summary)` when the body
//! ended cleanly, or an `Err` for a failed window (`Error streaming data` trailer, reset, stall, truncated gzip,
//! a non-JSON line). Nothing may be committed before the terminal item is seen.

use crate::body::BodyDecoder;
use crate::error::{CfError, TransportPhase};
use crate::ndjson::LineSplitter;
use crate::policy::breaker::{BreakerKey, CircuitBreakers};
use crate::route::Endpoint;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The line Cloudflare appends when a 200 response failed part-way.
pub const STREAMING_ERROR_TRAILER: &[u8] = b"Error streaming data";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogpullItem {
    /// One record, byte-exact as sent (without its line terminator).
    Line(Bytes),
    /// The body ended cleanly; the window may be committed.
    Complete(WindowSummary),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowSummary {
    pub lines: u64,
    /// Sum of the yielded lines' lengths (terminators excluded).
    pub line_bytes: u64,
    /// Body size after decompression.
    pub body_bytes: u64,
    /// Body size as received on the wire.
    pub wire_bytes: u64,
    pub gzip: bool,
}

/// Whether this non-record line is Cloudflare's streamed-failure marker.
pub fn is_streaming_error_trailer(line: &[u8]) -> bool {
    line.trim_ascii().starts_with(STREAMING_ERROR_TRAILER)
}

pub struct LogpullStream {
    inner: BoxStream<'static, Result<LogpullItem, CfError>>,
}

impl std::fmt::Debug for LogpullStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogpullStream").finish_non_exhaustive()
    }
}

impl Stream for LogpullStream {
    type Item = Result<LogpullItem, CfError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

pub(crate) struct StreamSettings {
    pub idle_timeout: Duration,
    pub max_line_bytes: usize,
    pub breaker: Option<(Arc<CircuitBreakers>, BreakerKey)>,
}

impl LogpullStream {
    pub(crate) fn from_response(
        response: reqwest::Response,
        settings: StreamSettings,
    ) -> Result<Self, CfError> {
        let decoder =
            BodyDecoder::for_headers(response.headers()).map_err(CfError::Decompression)?;
        let body = response.bytes_stream().boxed();
        Ok(Self::from_parts(body, decoder, settings))
    }

    fn from_parts(
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        decoder: BodyDecoder,
        settings: StreamSettings,
    ) -> Self {
        let state = State {
            summary: WindowSummary {
                gzip: decoder.is_compressed(),
                ..WindowSummary::default()
            },
            body,
            decoder,
            splitter: LineSplitter::new(settings.max_line_bytes),
            pending: VecDeque::new(),
            scratch: Vec::new(),
            idle_timeout: settings.idle_timeout,
            breaker: settings.breaker,
            body_ended: false,
            finished: false,
        };
        Self {
            inner: futures::stream::unfold(state, State::next_item).boxed(),
        }
    }

    /// Collects the whole window in memory (small windows, ray lookups, tests). Fails if the window failed.
    pub async fn collect_window(mut self) -> Result<(Vec<Bytes>, WindowSummary), CfError> {
        let mut lines = Vec::new();
        while let Some(item) = self.next().await {
            match item? {
                LogpullItem::Line(line) => lines.push(line),
                LogpullItem::Complete(summary) => return Ok((lines, summary)),
            }
        }
        Err(CfError::Protocol {
            endpoint: Endpoint::LogpullReceived,
            detail: "stream ended without a verdict".into(),
        })
    }
}

struct State {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    decoder: BodyDecoder,
    splitter: LineSplitter,
    pending: VecDeque<Bytes>,
    scratch: Vec<Bytes>,
    summary: WindowSummary,
    idle_timeout: Duration,
    breaker: Option<(Arc<CircuitBreakers>, BreakerKey)>,
    body_ended: bool,
    finished: bool,
}

impl State {
    async fn next_item(mut self) -> Option<(Result<LogpullItem, CfError>, Self)> {
        if self.finished {
            return None;
        }
        let item = self.advance().await;
        if !matches!(item, Ok(LogpullItem::Line(_))) {
            self.finished = true;
        }
        if let Err(error) = &item
            && error.is_endpoint_failure()
            && let Some((breakers, key)) = &self.breaker
        {
            breakers.report_failure(key);
        }
        Some((item, self))
    }

    async fn advance(&mut self) -> Result<LogpullItem, CfError> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return self.accept(line);
            }
            if self.body_ended {
                return Ok(LogpullItem::Complete(self.summary));
            }
            match tokio::time::timeout(self.idle_timeout, self.body.next()).await {
                Err(_) => return Err(CfError::BodyStalled(self.idle_timeout)),
                Ok(Some(Err(source))) => {
                    return Err(CfError::Transport {
                        phase: TransportPhase::Body,
                        source,
                    });
                }
                Ok(Some(Ok(chunk))) => {
                    self.summary.wire_bytes += chunk.len() as u64;
                    let decoded = self.decoder.decode(chunk).map_err(CfError::Decompression)?;
                    self.split(decoded)?;
                }
                Ok(None) => {
                    self.body_ended = true;
                    let tail = self.decoder.finish().map_err(CfError::Decompression)?;
                    self.split(tail)?;
                    self.pending.extend(self.splitter.finish());
                }
            }
        }
    }

    fn split(&mut self, decoded: Bytes) -> Result<(), CfError> {
        self.summary.body_bytes += decoded.len() as u64;
        self.splitter.push(decoded, &mut self.scratch)?;
        self.pending.extend(self.scratch.drain(..));
        Ok(())
    }

    fn accept(&mut self, line: Bytes) -> Result<LogpullItem, CfError> {
        if line.first() == Some(&b'{') {
            self.summary.lines += 1;
            self.summary.line_bytes += line.len() as u64;
            return Ok(LogpullItem::Line(line));
        }
        if is_streaming_error_trailer(&line) {
            return Err(CfError::StreamedFailure {
                lines: self.summary.lines,
            });
        }
        let excerpt = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
        Err(CfError::MalformedLine {
            line_number: self.summary.lines + 1,
            excerpt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn settings() -> StreamSettings {
        StreamSettings {
            idle_timeout: Duration::from_secs(5),
            max_line_bytes: 1 << 20,
            breaker: None,
        }
    }

    fn stream_of(chunks: Vec<Vec<u8>>, decoder: BodyDecoder) -> LogpullStream {
        let body = futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed();
        LogpullStream::from_parts(body, decoder, settings())
    }

    async fn drain(
        mut stream: LogpullStream,
    ) -> (Vec<Bytes>, Option<Result<WindowSummary, CfError>>, usize) {
        let mut lines = Vec::new();
        let mut terminal = None;
        let mut after_terminal = 0;
        while let Some(item) = stream.next().await {
            if terminal.is_some() {
                after_terminal += 1;
                continue;
            }
            match item {
                Ok(LogpullItem::Line(line)) => lines.push(line),
                Ok(LogpullItem::Complete(summary)) => terminal = Some(Ok(summary)),
                Err(error) => terminal = Some(Err(error)),
            }
        }
        (lines, terminal, after_terminal)
    }

    #[tokio::test]
    async fn clean_body_yields_lines_then_complete() {
        let body = b"{\"a\":1}\r\n{\"b\":2}\n{\"c\":3}".to_vec();
        let (lines, terminal, after) = drain(stream_of(
            vec![body[..5].to_vec(), body[5..].to_vec()],
            BodyDecoder::Identity,
        ))
        .await;
        assert_eq!(
            lines,
            vec![
                Bytes::from_static(b"{\"a\":1}"),
                Bytes::from_static(b"{\"b\":2}"),
                Bytes::from_static(b"{\"c\":3}")
            ]
        );
        let summary = terminal.unwrap().unwrap();
        assert_eq!(
            (summary.lines, summary.line_bytes, summary.body_bytes),
            (3, 21, body.len() as u64)
        );
        assert_eq!(after, 0, "nothing may follow the terminal item");
    }

    #[tokio::test]
    async fn empty_body_is_a_complete_empty_window() {
        let (lines, terminal, _) = drain(stream_of(vec![], BodyDecoder::Identity)).await;
        assert!(lines.is_empty());
        assert_eq!(terminal.unwrap().unwrap().lines, 0);
    }

    #[tokio::test]
    async fn error_streaming_data_trailer_fails_the_window() {
        for body in [
            &b"{\"a\":1}\n{\"b\":2}\nError streaming data"[..],
            b"{\"a\":1}\n{\"b\":2}\nError streaming data\n",
        ] {
            let (lines, terminal, _) =
                drain(stream_of(vec![body.to_vec()], BodyDecoder::Identity)).await;
            assert_eq!(lines.len(), 2);
            assert!(
                matches!(terminal, Some(Err(CfError::StreamedFailure { lines: 2 }))),
                "{terminal:?}"
            );
        }
    }

    #[tokio::test]
    async fn non_json_lines_fail_instead_of_being_archived() {
        let (_, terminal, _) = drain(stream_of(
            vec![b"{\"a\":1}\n<html>oops</html>\n".to_vec()],
            BodyDecoder::Identity,
        ))
        .await;
        assert!(
            matches!(
                terminal,
                Some(Err(CfError::MalformedLine { line_number: 2, .. }))
            ),
            "{terminal:?}"
        );
    }

    #[tokio::test]
    async fn gzip_bodies_decode_and_truncation_fails_the_window() {
        let plain: Vec<u8> = (0..2000)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect();
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&plain).unwrap();
        let compressed = encoder.finish().unwrap();
        let gzip = || BodyDecoder::Gzip(Box::new(flate2::write::GzDecoder::new(Vec::new())));

        let chunks: Vec<Vec<u8>> = compressed.chunks(512).map(<[u8]>::to_vec).collect();
        let (lines, terminal, _) = drain(stream_of(chunks, gzip())).await;
        let summary = terminal.unwrap().unwrap();
        assert_eq!(lines.len(), 2000);
        assert!(summary.gzip);
        assert_eq!(summary.wire_bytes, compressed.len() as u64);
        assert_eq!(summary.body_bytes, plain.len() as u64);

        let truncated = compressed[..compressed.len() - 6].to_vec();
        let (_, terminal, _) = drain(stream_of(vec![truncated], gzip())).await;
        assert!(
            matches!(terminal, Some(Err(CfError::Decompression(_)))),
            "{terminal:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_sending_fails_after_the_idle_timeout() {
        let first = futures::stream::iter(vec![Ok(Bytes::from_static(b"{\"a\":1}\n"))]);
        let body = first.chain(futures::stream::pending()).boxed();
        let (lines, terminal, _) = drain(LogpullStream::from_parts(
            body,
            BodyDecoder::Identity,
            settings(),
        ))
        .await;
        assert_eq!(lines.len(), 1);
        assert!(
            matches!(terminal, Some(Err(CfError::BodyStalled(_)))),
            "{terminal:?}"
        );
    }

    #[tokio::test]
    async fn collect_window_returns_lines_or_the_failure() {
        let ok = stream_of(vec![b"{\"a\":1}\n".to_vec()], BodyDecoder::Identity)
            .collect_window()
            .await
            .unwrap();
        assert_eq!(ok.0.len(), 1);
        let failed = stream_of(
            vec![b"{\"a\":1}\nError streaming data\n".to_vec()],
            BodyDecoder::Identity,
        )
        .collect_window()
        .await;
        assert!(matches!(failed, Err(CfError::StreamedFailure { .. })));
    }
}
