//! Response body decoding, chunk by chunk.
//!
//! Gzip is decoded here rather than by reqwest so a truncated stream (no gzip trailer) is always detected and the
//! wire size can be counted. The decoder is push-based: each network chunk goes in, the inflated bytes come out.

use bytes::Bytes;
use flate2::write::GzDecoder;
use reqwest::header::{CONTENT_ENCODING, HeaderMap};
use std::io::{self, Write};

pub(crate) enum BodyDecoder {
    Identity,
    Gzip(Box<GzDecoder<Vec<u8>>>),
}

impl BodyDecoder {
    pub(crate) fn for_headers(headers: &HeaderMap) -> io::Result<Self> {
        let encoding = headers
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("identity");
        match encoding.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(Self::Identity),
            "gzip" | "x-gzip" => Ok(Self::Gzip(Box::new(GzDecoder::new(Vec::new())))),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unsupported Content-Encoding `{other}`"),
            )),
        }
    }

    pub(crate) fn is_compressed(&self) -> bool {
        matches!(self, Self::Gzip(_))
    }

    pub(crate) fn decode(&mut self, chunk: Bytes) -> io::Result<Bytes> {
        match self {
            Self::Identity => Ok(chunk),
            Self::Gzip(decoder) => {
                decoder.write_all(&chunk)?;
                decoder.flush()?;
                Ok(Bytes::from(std::mem::take(decoder.get_mut())))
            }
        }
    }

    /// Ends the body; for gzip this fails unless the stream ended with a valid trailer (CRC and length).
    pub(crate) fn finish(&mut self) -> io::Result<Bytes> {
        match self {
            Self::Identity => Ok(Bytes::new()),
            Self::Gzip(decoder) => {
                decoder.try_finish()?;
                Ok(Bytes::from(std::mem::take(decoder.get_mut())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use reqwest::header::HeaderValue;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn gzip_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        headers
    }

    fn decode_in_chunks(
        decoder: &mut BodyDecoder,
        data: &[u8],
        size: usize,
    ) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        for chunk in data.chunks(size) {
            out.extend_from_slice(&decoder.decode(Bytes::copy_from_slice(chunk))?);
        }
        Ok(out)
    }

    #[test]
    fn gzip_round_trips_across_tiny_chunks() {
        let plain: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect();
        let mut decoder = BodyDecoder::for_headers(&gzip_headers()).unwrap();
        assert!(decoder.is_compressed());
        let mut out = decode_in_chunks(&mut decoder, &gzip(&plain), 13).unwrap();
        out.extend_from_slice(&decoder.finish().unwrap());
        assert_eq!(out, plain);
    }

    #[test]
    fn truncated_gzip_fails_at_finish() {
        let plain: Vec<u8> = (0..5_000)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect();
        let compressed = gzip(&plain);
        for cut in [compressed.len() - 4, compressed.len() / 2, 5] {
            let mut decoder = BodyDecoder::for_headers(&gzip_headers()).unwrap();
            let partial = decode_in_chunks(&mut decoder, &compressed[..cut], 100);
            let finished = partial.and_then(|_| decoder.finish());
            assert!(
                finished.is_err(),
                "cut at {cut} of {} was accepted",
                compressed.len()
            );
        }
    }

    #[test]
    fn identity_passes_bytes_through_and_unknown_encodings_are_refused() {
        let mut decoder = BodyDecoder::for_headers(&HeaderMap::new()).unwrap();
        assert_eq!(
            decoder.decode(Bytes::from_static(b"abc")).unwrap(),
            Bytes::from_static(b"abc")
        );
        assert!(decoder.finish().unwrap().is_empty());
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert!(BodyDecoder::for_headers(&headers).is_err());
    }
}
