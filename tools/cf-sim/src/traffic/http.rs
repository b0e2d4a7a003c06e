//! `http_requests` records: generation from a seed and hand-written JSON rendering.

use super::ZoneTraffic;
use super::fields::Field;
use super::pools::{
    COUNTRIES, METHODS, PROTOCOLS, PathKind, Pools, QUERIES, RULES, SSL, USER_AGENTS,
};
use super::render::{
    TimestampFormat, push_hex16, push_i64, push_str, push_timestamp, push_u64, rewrite_log4shell,
    rfc1123,
};
use crate::rng::{Rng, mix64};

const HTTP_TAG: u64 = 0x6874_7470;

/// The values of one request that several fields share; per-field extras derive from `seed`.
pub struct HttpRecord {
    seed: u64,
    ray: u64,
    client: usize,
    host: usize,
    method: &'static str,
    path: usize,
    query: Option<usize>,
    status: u16,
    ua: usize,
    start_ns: i64,
    end_ns: i64,
    bytes: u64,
    cache: &'static str,
    protocol: &'static str,
    https: bool,
    /// Index into `RULES` of the rule that acted, with the action.
    security: Option<(usize, &'static str)>,
    attack_score: u64,
}

impl HttpRecord {
    pub fn generate(zone: &ZoneTraffic, second: i64, index: u32) -> Self {
        let pools = Pools::get();
        let seed = zone.record_seed(second, index, HTTP_TAG);
        let mut rng = Rng::new(seed);
        let client = rng.skewed(pools.clients.len());
        let ua = if rng.chance(0.9) {
            pools.clients[client].ua
        } else {
            pools.random_ua(&mut rng)
        };
        let probe = rng.chance(0.02)
            || USER_AGENTS[ua].ua.starts_with("${")
            || USER_AGENTS[ua].ua.starts_with("sqlmap");
        let path = if probe {
            pools.probe_start + rng.below_usize(pools.paths.len() - pools.probe_start)
        } else {
            rng.skewed(pools.probe_start)
        };
        let kind = pools.paths[path].kind;
        let method = match kind {
            PathKind::Api => rng.weighted(METHODS),
            _ if rng.chance(0.95) => "GET",
            _ => rng.weighted(METHODS),
        };
        let query = (matches!(kind, PathKind::Page | PathKind::Api) && rng.chance(0.25))
            .then(|| rng.below_usize(QUERIES.len()));
        let query_attack =
            query.is_some_and(|q| QUERIES[q].contains("OR%20") || QUERIES[q].contains("${"));
        let attack_score = if probe || query_attack {
            1 + rng.below(20)
        } else {
            40 + rng.below(60)
        };
        let security = if attack_score <= 20 && rng.chance(0.8) {
            let rule = if QUERIES
                .get(query.unwrap_or(usize::MAX))
                .is_some_and(|q| q.contains("OR%20"))
            {
                1
            } else if probe && rng.chance(0.5) {
                0
            } else {
                rng.below_usize(RULES.len())
            };
            let action = if rng.chance(0.85) {
                "block"
            } else {
                "managedChallenge"
            };
            Some((rule, action))
        } else if rng.chance(0.003) {
            Some((4, "challenge"))
        } else {
            None
        };
        let status = if security.is_some() {
            403
        } else if probe {
            if rng.chance(0.8) { 404 } else { 403 }
        } else {
            let roll = rng.below(1000);
            match (kind, roll) {
                (_, 0..=4) => 500,
                (_, 5..=9) => 502,
                (_, 10..=14) => 499,
                (PathKind::Page | PathKind::Api, 15..=54) => 404,
                (PathKind::Page, 55..=84) => 301,
                (PathKind::Asset | PathKind::Image, 15..=174) => 304,
                (PathKind::Api, 55..=134) if method == "POST" => 201,
                (PathKind::Image, 175..=184) => 206,
                _ => 200,
            }
        };
        let bytes = match (status, kind) {
            (304, _) => 250 + rng.below(150),
            (301 | 403 | 404 | 499 | 500 | 502, _) => 400 + rng.below(4000),
            (_, PathKind::Page) => 4_000 + rng.below(90_000),
            (_, PathKind::Api) => 200 + rng.below(12_000),
            (_, PathKind::Asset) => 2_000 + rng.below(400_000),
            (_, PathKind::Image) => 1_000 + rng.below(900_000),
            (_, PathKind::Probe) => 500 + rng.below(3000),
        };
        let cache = match (kind, status) {
            (_, 403) => "unknown",
            (PathKind::Asset | PathKind::Image, _) => {
                let r = rng.below(100);
                if r < 78 {
                    "hit"
                } else if r < 90 {
                    "miss"
                } else if r < 95 {
                    "revalidated"
                } else {
                    "expired"
                }
            }
            _ => "dynamic",
        };
        // Windows select by receive time: the request itself finished up to ~3 s earlier, so edge timestamps
        // can fall before the window start.
        let end_ns = second * 1_000_000_000 - rng.below(3_000_000_000) as i64;
        let duration_ns =
            pools.durations_ns[rng.below_usize(pools.durations_ns.len())] + rng.below(1000) as i64;
        let start_ns = end_ns - duration_ns;
        Self {
            seed,
            ray: zone.ray_id(second, index),
            client,
            host: rng.skewed(zone.hosts.len()),
            method,
            path,
            query,
            status,
            ua,
            start_ns,
            end_ns,
            bytes,
            cache,
            protocol: rng.weighted(PROTOCOLS),
            https: rng.chance(0.97),
            security,
            attack_score,
        }
    }

    /// A draw independent of the shared ones, stable per (record, field).
    fn extra(&self, field: Field) -> Rng {
        Rng::new(mix64(
            self.seed ^ (field as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        ))
    }

    fn origin_contacted(&self) -> bool {
        !matches!(self.cache, "hit" | "revalidated") && self.status != 403
    }

    fn is_bot(&self) -> bool {
        USER_AGENTS[self.ua].bot.is_some()
    }
}

/// Renders records with a fixed field list and timestamp format into a caller-owned buffer.
#[derive(Clone, Debug)]
pub struct HttpRenderer {
    fields: Vec<Field>,
    timestamps: TimestampFormat,
    log4shell_rewrite: bool,
}

impl HttpRenderer {
    /// `fields` are sorted and de-duplicated: output order is the catalogue's, whatever the request order.
    pub fn new(
        mut fields: Vec<Field>,
        timestamps: TimestampFormat,
        log4shell_rewrite: bool,
    ) -> Self {
        fields.sort();
        fields.dedup();
        Self {
            fields,
            timestamps,
            log4shell_rewrite,
        }
    }

    /// Append one NDJSON line (with `\n`), optionally with a trailing `"sampleInterval":N`.
    pub fn render(
        &self,
        zone: &ZoneTraffic,
        record: &HttpRecord,
        sample_interval: Option<u64>,
        out: &mut Vec<u8>,
    ) {
        let line_start = out.len();
        out.push(b'{');
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(field.key_prefix().as_bytes());
            write_field(out, *field, zone, record, self.timestamps);
        }
        if let Some(n) = sample_interval {
            if !self.fields.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"sampleInterval\":");
            push_u64(out, n);
        }
        out.push(b'}');
        if self.log4shell_rewrite {
            rewrite_log4shell(&mut out[line_start..]);
        }
        out.push(b'\n');
    }
}

fn push_bool(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

fn push_str_array(out: &mut Vec<u8>, items: &[&str]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, item);
    }
    out.push(b']');
}

fn write_field(
    out: &mut Vec<u8>,
    field: Field,
    zone: &ZoneTraffic,
    r: &HttpRecord,
    ts: TimestampFormat,
) {
    let pools = Pools::get();
    let client = &pools.clients[r.client];
    let country = &COUNTRIES[client.country];
    let ua = &USER_AGENTS[r.ua];
    let origin = r.origin_contacted();
    let path = &pools.paths[r.path];
    match field {
        Field::BotDetectionIDs => {
            if r.is_bot() || ua.ua.starts_with("python") || ua.ua.starts_with("curl") {
                out.extend_from_slice(b"[33554817]");
            } else {
                out.extend_from_slice(b"[]");
            }
        }
        Field::BotDetectionTags => {
            if ua.ua.starts_with("python") || ua.ua.starts_with("curl") || ua.ua.starts_with("Go-")
            {
                push_str_array(out, &["api"]);
            } else {
                out.extend_from_slice(b"[]");
            }
        }
        Field::BotScore => {
            let mut x = r.extra(field);
            let score = if r.is_bot() || ua.ua.starts_with("python") || ua.ua.starts_with("curl") {
                1 + x.below(5)
            } else {
                30 + x.below(70)
            };
            push_u64(out, score);
        }
        Field::BotScoreSrc => push_str(
            out,
            if r.is_bot() {
                "Verified Bot"
            } else {
                "Machine Learning"
            },
        ),
        Field::BotTags => out.extend_from_slice(b"[]"),
        Field::CacheCacheStatus => push_str(out, r.cache),
        Field::CacheReserveUsed => push_bool(out, false),
        Field::CacheResponseBytes => push_u64(out, if r.cache == "unknown" { 0 } else { r.bytes }),
        Field::CacheResponseStatus => push_u64(
            out,
            if r.cache == "unknown" {
                0
            } else {
                u64::from(r.status)
            },
        ),
        Field::CacheTieredFill => push_bool(out, r.cache == "miss" && r.extra(field).chance(0.3)),
        Field::ClientASN => push_u64(out, u64::from(client.asn)),
        Field::ClientCity => push_str(out, country.city),
        Field::ClientCountry => push_str(out, country.code),
        Field::ClientDeviceType => push_str(out, ua.device),
        Field::ClientIP => push_str(out, &client.ip),
        Field::ClientIPClass => push_str(out, client.ip_class),
        Field::ClientLatitude => push_str(out, country.lat),
        Field::ClientLongitude => push_str(out, country.lon),
        Field::ClientMTLSAuthCertFingerprint => push_str(out, ""),
        Field::ClientMTLSAuthStatus => push_str(out, "unknown"),
        Field::ClientRegionCode => push_str(out, country.region),
        Field::ClientRequestBytes => push_u64(
            out,
            300 + r
                .extra(field)
                .below(if r.method == "GET" { 1500 } else { 20_000 }),
        ),
        Field::ClientRequestHost | Field::EdgeRequestHost => push_str(out, &zone.hosts[r.host]),
        Field::ClientRequestMethod => push_str(out, r.method),
        Field::ClientRequestPath => push_str(out, &path.path),
        Field::ClientRequestProtocol => push_str(out, r.protocol),
        Field::ClientRequestReferer => {
            let mut x = r.extra(field);
            match x.below(10) {
                0..=4 => push_str(out, ""),
                5..=7 => {
                    out.extend_from_slice(b"\"https://");
                    out.extend_from_slice(zone.hosts[r.host].as_bytes());
                    out.extend_from_slice(b"/\"");
                }
                8 => push_str(out, "https://www.google.com/"),
                _ => push_str(out, "https://duckduckgo.com/"),
            }
        }
        Field::ClientRequestScheme => push_str(out, if r.https { "https" } else { "http" }),
        Field::ClientRequestSource => push_str(out, "eyeball"),
        Field::ClientRequestURI => {
            out.push(b'"');
            out.extend_from_slice(path.path.as_bytes());
            if let Some(q) = r.query {
                out.extend_from_slice(QUERIES[q].as_bytes());
            }
            out.push(b'"');
        }
        Field::ClientRequestUserAgent => push_str(out, ua.ua),
        Field::ClientSSLCipher => push_str(out, if r.https { ssl(r).1 } else { "NONE" }),
        Field::ClientSSLProtocol => push_str(out, if r.https { ssl(r).0 } else { "none" }),
        Field::ClientSrcPort => push_u64(out, 1024 + r.extra(field).below(64_511)),
        Field::ClientTCPRTTMs => push_u64(
            out,
            u64::from(country.base_rtt_ms) / 2
                + r.extra(field).below(u64::from(country.base_rtt_ms)),
        ),
        Field::ClientXRequestedWith => push_str(
            out,
            if path.kind == PathKind::Api && r.extra(field).chance(0.4) {
                "XMLHttpRequest"
            } else {
                ""
            },
        ),
        Field::ContentScanObjResults | Field::ContentScanObjTypes | Field::ContentScanObjSizes => {
            out.extend_from_slice(b"[]")
        }
        Field::Cookies | Field::RequestHeaders | Field::ResponseHeaders => {
            out.extend_from_slice(b"{}")
        }
        Field::EdgeCFConnectingO2O => push_bool(out, false),
        Field::EdgeColoCode => push_str(out, country.colo),
        Field::EdgeColoID => push_u64(out, u64::from(country.colo_id)),
        Field::EdgeEndTimestamp => push_timestamp(out, r.end_ns, ts),
        Field::EdgePathingOp => push_str(
            out,
            if r.security.is_some_and(|(_, a)| a == "block") {
                "ban"
            } else {
                "wl"
            },
        ),
        Field::EdgePathingSrc => push_str(
            out,
            if r.security.is_some() {
                "filterBasedFirewall"
            } else {
                "macro"
            },
        ),
        Field::EdgePathingStatus => push_str(
            out,
            if r.security.is_some() {
                "unknown"
            } else {
                "nr"
            },
        ),
        Field::EdgeResponseBodyBytes => push_u64(out, r.bytes.saturating_sub(240)),
        Field::EdgeResponseBytes => push_u64(out, r.bytes),
        Field::EdgeResponseCompressionRatio => {
            let compressible = matches!(
                path.content_type,
                "text/html" | "application/json" | "application/javascript" | "text/css"
            );
            if compressible && r.status == 200 {
                let ratio = 200 + r.extra(field).below(450);
                push_u64(out, ratio / 100);
                out.push(b'.');
                let cents = ratio % 100;
                if cents < 10 {
                    out.push(b'0');
                }
                push_u64(out, cents);
            } else {
                out.extend_from_slice(b"0");
            }
        }
        Field::EdgeResponseContentType => push_str(
            out,
            if r.status >= 400 {
                "text/html"
            } else {
                path.content_type
            },
        ),
        Field::EdgeResponseStatus => push_u64(out, u64::from(r.status)),
        Field::EdgeServerIP => {
            if origin {
                push_str(
                    out,
                    &pools.edge_ips[(r.seed % pools.edge_ips.len() as u64) as usize],
                );
            } else {
                push_str(out, "");
            }
        }
        Field::EdgeStartTimestamp => push_timestamp(out, r.start_ns, ts),
        Field::EdgeTimeToFirstByteMs => push_u64(
            out,
            ((r.end_ns - r.start_ns) / 1_000_000).max(1) as u64 / 2 + 1,
        ),
        Field::FraudAttack | Field::FraudEmailRisk | Field::FraudUserID => push_str(out, ""),
        Field::FraudDetectionIDs => out.extend_from_slice(b"[]"),
        Field::FraudDetectionTags => out.extend_from_slice(b"[]"),
        Field::JA3Hash => push_str(out, if r.https { ua.ja3 } else { "" }),
        Field::JA4 => push_str(out, if r.https { ua.ja4 } else { "" }),
        Field::JA4Signals => out.extend_from_slice(b"{}"),
        Field::JSDetectionPassed => push_str(
            out,
            if path.kind == PathKind::Page && !r.is_bot() {
                "passed"
            } else {
                "missing"
            },
        ),
        Field::LeakedCredentialCheckResult => {
            let login =
                r.method == "POST" && (path.path == "/login" || path.path == "/api/v1/session");
            push_str(
                out,
                if !login {
                    "none"
                } else if r.extra(field).chance(0.05) {
                    "password_leaked"
                } else {
                    "clean"
                },
            );
        }
        Field::OriginDNSResponseTimeMs => {
            push_u64(out, if origin { r.extra(field).below(3) } else { 0 })
        }
        Field::OriginIP => push_str(
            out,
            if origin {
                &zone.origin_ips[(r.seed >> 8) as usize % zone.origin_ips.len()]
            } else {
                ""
            },
        ),
        Field::OriginRequestHeaderSendDurationMs => {
            push_u64(out, if origin { r.extra(field).below(2) } else { 0 })
        }
        Field::OriginResponseBytes => push_u64(out, if origin { r.bytes } else { 0 }),
        Field::OriginResponseDurationMs | Field::OriginResponseHeaderReceiveDurationMs => {
            push_u64(
                out,
                if origin {
                    ((r.end_ns - r.start_ns) / 1_000_000) as u64 * 3 / 4
                } else {
                    0
                },
            );
        }
        Field::OriginResponseHTTPExpires => push_str(out, ""),
        Field::OriginResponseHTTPLastModified => {
            if origin && matches!(path.kind, PathKind::Asset | PathKind::Image) {
                let secs = r.start_ns / 1_000_000_000 - 86_400 - (r.seed % (90 * 86_400)) as i64;
                push_str(out, &rfc1123(secs));
            } else {
                push_str(out, "");
            }
        }
        Field::OriginResponseStatus => push_u64(out, if origin { u64::from(r.status) } else { 0 }),
        Field::OriginResponseTime => push_i64(
            out,
            if origin {
                (r.end_ns - r.start_ns) * 3 / 4
            } else {
                0
            },
        ),
        Field::OriginSSLProtocol => push_str(out, if origin { "TLSv1.3" } else { "none" }),
        Field::OriginTCPHandshakeDurationMs => push_u64(
            out,
            if origin {
                1 + r.extra(field).below(20)
            } else {
                0
            },
        ),
        Field::OriginTLSHandshakeDurationMs => push_u64(
            out,
            if origin {
                2 + r.extra(field).below(30)
            } else {
                0
            },
        ),
        Field::ParentRayID => push_str(out, "00"),
        Field::PayPerCrawlStatus => push_str(out, ""),
        Field::RayID => {
            out.push(b'"');
            push_hex16(out, r.ray);
            out.push(b'"');
        }
        Field::SecurityAction => push_str(out, r.security.map_or("", |(_, action)| action)),
        Field::SecurityActions => match r.security {
            Some((_, action)) => push_str_array(out, &[action]),
            None => out.extend_from_slice(b"[]"),
        },
        Field::SecurityRuleDescription => {
            push_str(out, r.security.map_or("", |(rule, _)| RULES[rule].1))
        }
        Field::SecurityRuleID => push_str(out, r.security.map_or("", |(rule, _)| RULES[rule].0)),
        Field::SecurityRuleIDs => match r.security {
            Some((rule, _)) => push_str_array(out, &[RULES[rule].0]),
            None => out.extend_from_slice(b"[]"),
        },
        Field::SecuritySources => match r.security {
            Some((rule, _)) => push_str_array(out, &[RULES[rule].2]),
            None => out.extend_from_slice(b"[]"),
        },
        Field::SmartRouteColoID => push_u64(out, 0),
        Field::UpperTierColoID => push_u64(out, if r.cache == "miss" { 20 } else { 0 }),
        Field::VerifiedBotCategory => push_str(out, ua.bot.map_or("", |(_, category)| category)),
        Field::WAFAttackScore => push_u64(out, r.attack_score),
        Field::WAFFlags => push_str(out, "0"),
        Field::WAFMatchedVar => push_str(out, ""),
        Field::WAFRCEAttackScore | Field::WAFSQLiAttackScore | Field::WAFXSSAttackScore => {
            push_u64(out, (r.attack_score + r.extra(field).below(10)).min(99));
        }
        Field::WebAssetsLabelsManaged => out.extend_from_slice(b"[]"),
        Field::WebAssetsOperationID => push_str(out, ""),
        Field::WorkerCPUTime | Field::WorkerSubrequestCount | Field::WorkerWallTimeUs => {
            push_u64(out, 0)
        }
        Field::WorkerScriptName => push_str(out, ""),
        Field::WorkerStatus => push_str(out, "unknown"),
        Field::WorkerSubrequest => push_bool(out, false),
        Field::ZoneName => push_str(out, &zone.zone_name),
    }
}

fn ssl(r: &HttpRecord) -> (&'static str, &'static str) {
    let mut x = Rng::new(r.seed ^ 0x55_4c);
    x.weighted(SSL)
}
