//! Byte-level JSON writing helpers shared by the record renderers.

use serde::{Deserialize, Serialize};

/// How `EdgeStartTimestamp`/`EdgeEndTimestamp` are rendered (Logpull `timestamps=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampFormat {
    /// Integer nanoseconds (the default).
    #[default]
    Unixnano,
    /// Integer seconds.
    Unix,
    /// String, second precision.
    Rfc3339,
    /// String with milliseconds (Logpush `timestamp_format` only; Logpull does not offer it).
    Rfc3339ms,
    /// String with nanoseconds (Logpush `timestamp_format` only).
    Rfc3339ns,
}

impl TimestampFormat {
    /// The values Logpull's `timestamps=` accepts.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unixnano" => Some(Self::Unixnano),
            "unix" => Some(Self::Unix),
            "rfc3339" => Some(Self::Rfc3339),
            _ => None,
        }
    }

    /// The values Logpush's `output_options.timestamp_format` accepts: Logpull's plus the sub-second RFC 3339 forms.
    pub fn parse_logpush(s: &str) -> Option<Self> {
        match s {
            "rfc3339ms" => Some(Self::Rfc3339ms),
            "rfc3339ns" => Some(Self::Rfc3339ns),
            _ => Self::parse(s),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Unixnano => "unixnano",
            Self::Unix => "unix",
            Self::Rfc3339 => "rfc3339",
            Self::Rfc3339ms => "rfc3339ms",
            Self::Rfc3339ns => "rfc3339ns",
        }
    }
}

pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    // Two digits per step from a table: this is the hottest helper when rendering.
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849\
5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    out.extend_from_slice(&buf[i..]);
}

pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

pub fn push_str(out: &mut Vec<u8>, escaped: &str) {
    out.push(b'"');
    out.extend_from_slice(escaped.as_bytes());
    out.push(b'"');
}

pub fn push_hex16(out: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        out.push(HEX[((v >> (shift * 4)) & 0xf) as usize]);
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds.
pub fn push_rfc3339_secs(out: &mut Vec<u8>, secs: i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    push_padded(out, y as u64, 4);
    out.push(b'-');
    push_padded(out, m as u64, 2);
    out.push(b'-');
    push_padded(out, d as u64, 2);
    out.push(b'T');
    push_padded(out, (rem / 3600) as u64, 2);
    out.push(b':');
    push_padded(out, (rem % 3600 / 60) as u64, 2);
    out.push(b':');
    push_padded(out, (rem % 60) as u64, 2);
    out.push(b'Z');
}

/// RFC 1123 date (`Tue, 15 Nov 1994 08:12:31 GMT`) for origin header fields.
pub fn rfc1123(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn push_padded(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut n = v;
    let mut i = 20;
    while n > 0 {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let start = (20 - width).min(i);
    out.extend_from_slice(&digits[start..]);
}

/// Howard Hinnant's days-from-civil inverse.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Push a timestamp given in Unix nanoseconds in the requested rendering.
pub fn push_timestamp(out: &mut Vec<u8>, nanos: i64, format: TimestampFormat) {
    match format {
        TimestampFormat::Unixnano => push_i64(out, nanos),
        TimestampFormat::Unix => push_i64(out, nanos.div_euclid(1_000_000_000)),
        TimestampFormat::Rfc3339 => {
            out.push(b'"');
            push_rfc3339_secs(out, nanos.div_euclid(1_000_000_000));
            out.push(b'"');
        }
        TimestampFormat::Rfc3339ms | TimestampFormat::Rfc3339ns => {
            out.push(b'"');
            push_rfc3339_secs(out, nanos.div_euclid(1_000_000_000));
            // Overwrite the `Z` with the fraction; the width is fixed (Go's `.000` rather than the trimming `.999`).
            out.pop();
            out.push(b'.');
            let frac = nanos.rem_euclid(1_000_000_000) as u64;
            if format == TimestampFormat::Rfc3339ms {
                push_padded(out, frac / 1_000_000, 3);
            } else {
                push_padded(out, frac, 9);
            }
            out.extend_from_slice(b"Z\"");
        }
    }
}

/// Cloudflare's `CVE-2021-44228=true`: every `${` becomes `x{`.
pub fn rewrite_log4shell(line: &mut [u8]) {
    let mut i = 0;
    while i + 1 < line.len() {
        if line[i] == b'$' && line[i + 1] == b'{' {
            line[i] = b'x';
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_time_crate() {
        for secs in [
            0i64,
            951_782_400,
            1_625_754_264,
            1_767_225_599,
            4_102_444_800,
        ] {
            let mut out = Vec::new();
            push_rfc3339_secs(&mut out, secs);
            let expected = time::OffsetDateTime::from_unix_timestamp(secs)
                .expect("valid")
                .format(&time::format_description::well_known::Rfc3339)
                .expect("format");
            assert_eq!(String::from_utf8(out).expect("utf8"), expected);
        }
    }

    #[test]
    fn subsecond_rfc3339_has_fixed_width() {
        let nanos = 1_625_754_264_006_000_123;
        let mut ms = Vec::new();
        push_timestamp(&mut ms, nanos, TimestampFormat::Rfc3339ms);
        assert_eq!(ms, b"\"2021-07-08T14:24:24.006Z\"".to_vec());
        let mut ns = Vec::new();
        push_timestamp(&mut ns, nanos, TimestampFormat::Rfc3339ns);
        assert_eq!(ns, b"\"2021-07-08T14:24:24.006000123Z\"".to_vec());
        let mut whole = Vec::new();
        push_timestamp(
            &mut whole,
            1_625_754_264_000_000_000,
            TimestampFormat::Rfc3339ns,
        );
        assert_eq!(whole, b"\"2021-07-08T14:24:24.000000000Z\"".to_vec());
    }

    #[test]
    fn integers_render_exactly() {
        let mut out = Vec::new();
        push_i64(&mut out, 1_625_754_264_676_000_123);
        push_u64(&mut out, 0);
        for v in [7u64, 10, 99, 100, 101, 999, 1000, 65535, u64::MAX] {
            let mut one = Vec::new();
            push_u64(&mut one, v);
            assert_eq!(String::from_utf8(one).expect("utf8"), v.to_string());
        }
        assert_eq!(out, b"16257542646760001230");
    }

    #[test]
    fn log4shell_rewrite_only_touches_dollar_brace() {
        let mut line = b"{\"a\":\"${jndi:x} $5 ${\"}".to_vec();
        rewrite_log4shell(&mut line);
        assert_eq!(line, b"{\"a\":\"x{jndi:x} $5 x{\"}".to_vec());
    }
}
