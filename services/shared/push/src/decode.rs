//! A push body is gzip (recognised by its magic bytes, whatever `Content-Encoding` says;
//! concatenated members are read) or plain NDJSON, and is decompressed as it arrives.

use std::io::Write as _;

use flate2::write::MultiGzDecoder;

/// Gzip or not is known from the first two bytes.
pub enum Decoder {
    Undecided(Vec<u8>),
    Plain,
    Gzip(Box<MultiGzDecoder<Vec<u8>>>),
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl Default for Decoder {
    fn default() -> Self {
        Self::Undecided(Vec::new())
    }
}

impl Decoder {
    /// The decompressed bytes `chunk` yields.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<u8>, String> {
        if let Self::Undecided(start) = self {
            start.extend_from_slice(chunk);
            if start.len() < GZIP_MAGIC.len() {
                return Ok(Vec::new());
            }
            let start = std::mem::take(start);
            *self = if start.starts_with(&GZIP_MAGIC) {
                Self::Gzip(Box::new(MultiGzDecoder::new(Vec::new())))
            } else {
                Self::Plain
            };
            return self.feed(&start);
        }
        match self {
            Self::Undecided(_) => Ok(Vec::new()),
            Self::Plain => Ok(chunk.to_vec()),
            Self::Gzip(decoder) => {
                decoder.write_all(chunk).map_err(corrupt)?;
                Ok(std::mem::take(decoder.get_mut()))
            }
        }
    }

    /// What is left once the body ended; a gzip stream that stops early is refused.
    pub fn finish(self) -> Result<Vec<u8>, String> {
        match self {
            Self::Undecided(start) => Ok(start),
            Self::Plain => Ok(Vec::new()),
            Self::Gzip(decoder) => decoder.finish().map_err(corrupt),
        }
    }
}

fn corrupt(e: std::io::Error) -> String {
    format!("the gzip body is corrupt or cut short: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    fn decode(body: &[u8], chunk: usize) -> Result<Vec<u8>, String> {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        for piece in body.chunks(chunk) {
            out.extend(decoder.feed(piece)?);
        }
        out.extend(decoder.finish()?);
        Ok(out)
    }

    #[test]
    fn gzip_concatenated_members_and_plain_bodies_decode_in_any_chunking() {
        let text = b"{\"a\":1}\n{\"a\":2}\n".repeat(50);
        let mut two = gzip(&text[..300]);
        two.extend(gzip(&text[300..]));
        for chunk in [1, 2, 3, 100, 10_000] {
            assert_eq!(decode(&gzip(&text), chunk).expect("gzip"), text);
            assert_eq!(decode(&two, chunk).expect("two members"), text);
            assert_eq!(decode(&text, chunk).expect("plain"), text);
        }
    }

    #[test]
    fn a_gzip_body_cut_short_or_corrupt_is_refused() {
        let body = gzip(&b"{\"a\":1}\n".repeat(100));
        let cut = decode(&body[..body.len() - 10], 64).expect_err("cut short");
        assert!(cut.contains("gzip"), "{cut}");
        let mut bad = body.clone();
        bad[12] ^= 0xff;
        bad[20] ^= 0xff;
        assert!(decode(&bad, 64).is_err());
    }
}
