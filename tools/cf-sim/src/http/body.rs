//! Streaming Logpull bodies: records rendered on the fly in a per-request random order, optional gzip, and
//! body-shaping faults (slow, reset, `Error streaming data` trailer, truncated gzip).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use poem::Body;

use crate::fault::FaultKind;
use crate::rng::Rng;
use crate::traffic::ZoneTraffic;
use crate::traffic::http::{HttpRecord, HttpRenderer};

const CHUNK: usize = 256 * 1024;
/// Room for the line that crosses the chunk target.
const LINE_SLACK: usize = 64 * 1024;

/// Something that renders NDJSON lines into a buffer; `true` once it has nothing more.
pub(crate) trait LineSource: Send + 'static {
    fn fill(&mut self, out: &mut Vec<u8>, target: usize) -> bool;
}

/// Every record of a receive window: seconds in shuffled order, lines within a second shuffled too, so the order
/// differs per call without ever holding more than one second of indices.
pub(crate) struct WindowSource {
    zone: Arc<ZoneTraffic>,
    renderer: HttpRenderer,
    seconds: Vec<i64>,
    next_second: usize,
    current: i64,
    order: Vec<u32>,
    next_in_second: usize,
    rng: Rng,
    sample: Option<f64>,
    limit: Option<u64>,
    emitted: u64,
}

impl WindowSource {
    pub fn new(
        zone: Arc<ZoneTraffic>,
        renderer: HttpRenderer,
        seconds: std::ops::Range<i64>,
        request_seed: u64,
        sample: Option<f64>,
        limit: Option<u64>,
    ) -> Self {
        let mut rng = Rng::new(request_seed);
        let mut seconds: Vec<i64> = seconds.collect();
        rng.shuffle(&mut seconds);
        Self {
            zone,
            renderer,
            seconds,
            next_second: 0,
            current: 0,
            order: Vec::new(),
            next_in_second: 0,
            rng,
            sample,
            limit,
            emitted: 0,
        }
    }
}

impl LineSource for WindowSource {
    fn fill(&mut self, out: &mut Vec<u8>, target: usize) -> bool {
        while out.len() < target {
            if self.limit.is_some_and(|l| self.emitted >= l) {
                return true;
            }
            if self.next_in_second >= self.order.len() {
                let Some(second) = self.seconds.get(self.next_second).copied() else {
                    return true;
                };
                self.next_second += 1;
                self.current = second;
                self.order.clear();
                self.order.extend(0..self.zone.http_count(second));
                self.rng.shuffle(&mut self.order);
                self.next_in_second = 0;
                continue;
            }
            let index = self.order[self.next_in_second];
            self.next_in_second += 1;
            if let Some(p) = self.sample
                && !self.rng.chance(p)
            {
                continue;
            }
            let record = HttpRecord::generate(&self.zone, self.current, index);
            self.renderer.render(&self.zone, &record, None, out);
            self.emitted += 1;
        }
        false
    }
}

/// Lines that are already rendered (Ray ID look-ups).
pub(crate) struct BufferSource(pub Vec<u8>);

impl LineSource for BufferSource {
    fn fill(&mut self, out: &mut Vec<u8>, _target: usize) -> bool {
        out.append(&mut self.0);
        true
    }
}

/// Caps a source at `n` lines and then appends Cloudflare's failure trailer.
pub(crate) struct ErrorAfterLines<S> {
    inner: S,
    remaining: u64,
    done: bool,
}

impl<S: LineSource> ErrorAfterLines<S> {
    pub fn new(inner: S, lines: u64) -> Self {
        Self {
            inner,
            remaining: lines,
            done: false,
        }
    }
}

impl<S: LineSource> LineSource for ErrorAfterLines<S> {
    fn fill(&mut self, out: &mut Vec<u8>, target: usize) -> bool {
        if self.done {
            return true;
        }
        let start = out.len();
        let exhausted = self.inner.fill(out, target);
        let mut kept = start;
        for line in out[start..].split_inclusive(|b| *b == b'\n') {
            if self.remaining == 0 {
                break;
            }
            kept += line.len();
            self.remaining -= 1;
        }
        out.truncate(kept);
        if exhausted || self.remaining == 0 {
            out.extend_from_slice(b"Error streaming data");
            self.done = true;
            return true;
        }
        false
    }
}

struct StreamState {
    source: Box<dyn LineSource>,
    raw: Vec<u8>,
    gzip: Option<GzEncoder<Vec<u8>>>,
    finished: bool,
    fail_next: bool,
    sent: u64,
    reset_after: Option<u64>,
    truncate_after: Option<u64>,
    bytes_per_sec: Option<u64>,
}

impl StreamState {
    /// Render and (maybe) compress the next piece; empty only when the body is complete.
    fn produce(&mut self) -> Vec<u8> {
        let target = self
            .bytes_per_sec
            .map_or(CHUNK, |bps| (bps as usize / 10).clamp(1, CHUNK));
        loop {
            self.raw.clear();
            let exhausted = self.source.fill(&mut self.raw, target);
            let chunk = match self.gzip.as_mut() {
                // Hand the rendered buffer over without copying; the allocator recycles the freed one.
                None => std::mem::replace(&mut self.raw, Vec::with_capacity(CHUNK + LINE_SLACK)),
                Some(encoder) => {
                    // Writing into a Vec cannot fail.
                    let _ = encoder.write_all(&self.raw);
                    if exhausted {
                        let mut rest = self
                            .gzip
                            .take()
                            .map(|e| e.finish().unwrap_or_default())
                            .unwrap_or_default();
                        if self.truncate_after.is_some() {
                            // Always lose the gzip trailer (CRC + size) so the stream is truncated whatever N is.
                            rest.truncate(rest.len().saturating_sub(8));
                        }
                        rest
                    } else {
                        std::mem::take(encoder.get_mut())
                    }
                }
            };
            if exhausted {
                self.finished = true;
            }
            if !chunk.is_empty() || self.finished {
                return chunk;
            }
        }
    }
}

async fn next_chunk(mut st: StreamState) -> Option<(std::io::Result<Bytes>, StreamState)> {
    if st.fail_next {
        // Pending for a moment lets hyper flush the bytes already handed over before the connection dies.
        tokio::time::sleep(Duration::from_millis(20)).await;
        return Some(reset(st));
    }
    if st.finished {
        return None;
    }
    let mut chunk = st.produce();
    if let Some(limit) = st.truncate_after {
        let room = limit.saturating_sub(st.sent) as usize;
        if chunk.len() >= room {
            chunk.truncate(room);
            st.finished = true;
        }
    }
    if let Some(limit) = st.reset_after {
        let room = limit.saturating_sub(st.sent) as usize;
        if chunk.len() > room || st.finished {
            chunk.truncate(room);
            st.fail_next = true;
        }
    }
    if let Some(bps) = st.bytes_per_sec
        && !chunk.is_empty()
    {
        tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / bps as f64)).await;
    }
    st.sent += chunk.len() as u64;
    if chunk.is_empty() {
        if st.fail_next {
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Some(reset(st));
        }
        return None;
    }
    Some((Ok(Bytes::from(chunk)), st))
}

fn reset(mut st: StreamState) -> (std::io::Result<Bytes>, StreamState) {
    st.fail_next = false;
    st.finished = true;
    // An error from the body stream makes hyper abort the connection without the final chunk.
    (
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        )),
        st,
    )
}

/// Whether the response is gzip-encoded.
pub(crate) fn build_body(
    source: Box<dyn LineSource>,
    gzip: bool,
    fault: Option<&FaultKind>,
) -> (Body, bool) {
    let gzip = gzip || matches!(fault, Some(FaultKind::TruncatedGzip { .. }));
    let state = StreamState {
        source,
        raw: Vec::with_capacity(CHUNK + LINE_SLACK),
        gzip: gzip.then(|| GzEncoder::new(Vec::with_capacity(CHUNK), Compression::fast())),
        finished: false,
        fail_next: false,
        sent: 0,
        reset_after: match fault {
            Some(FaultKind::ResetAfterBytes { after_bytes }) => Some(*after_bytes),
            _ => None,
        },
        truncate_after: match fault {
            Some(FaultKind::TruncatedGzip { after_bytes }) => Some(*after_bytes),
            _ => None,
        },
        bytes_per_sec: match fault {
            Some(FaultKind::SlowBody { bytes_per_sec }) => Some(*bytes_per_sec),
            _ => None,
        },
    };
    let stream = futures::stream::unfold(state, next_chunk);
    (Body::from_bytes_stream(stream), gzip)
}
