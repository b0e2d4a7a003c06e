//! The `http_requests` field catalogue (reference §1.5), in alphabetical order, which is also output order.

macro_rules! catalogue {
    ($($name:ident => $desc:expr),* $(,)?) => {
        /// One `http_requests` field. Variant order is alphabetical and is the order fields are rendered in.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Field { $($name),* }

        /// `(field, name, description, "\"Name\":" prefix)` for every field.
        pub const CATALOGUE: &[(Field, &str, &str, &str)] = &[
            $((Field::$name, stringify!($name), $desc, concat!("\"", stringify!($name), "\":"))),*
        ];
    };
}

catalogue! {
    BotDetectionIDs => "IDs of heuristics that flagged the request as a bot",
    BotDetectionTags => "Tags describing detected bot behaviour",
    BotScore => "Bot score from 1 (likely bot) to 99 (likely human)",
    BotScoreSrc => "Detection engine that produced the bot score",
    BotTags => "Tags about the request's bot classification",
    CacheCacheStatus => "unknown | miss | expired | updating | stale | hit | ignored | bypass | revalidated | dynamic",
    CacheReserveUsed => "Whether Cache Reserve served the request",
    CacheResponseBytes => "Number of bytes returned by the cache",
    CacheResponseStatus => "HTTP status code returned by the cache to the edge (deprecated)",
    CacheTieredFill => "Whether the request was served by tiered cache",
    ClientASN => "Client AS number",
    ClientCity => "Approximate city of the client",
    ClientCountry => "2-letter ISO-3166 country code of the client IP",
    ClientDeviceType => "Client device type",
    ClientIP => "IP address of the client",
    ClientIPClass => "Client IP class",
    ClientLatitude => "Approximate latitude of the client",
    ClientLongitude => "Approximate longitude of the client",
    ClientMTLSAuthCertFingerprint => "SHA256 fingerprint of the client mTLS certificate",
    ClientMTLSAuthStatus => "Status of mTLS authentication",
    ClientRegionCode => "ISO-3166-2 region code of the client IP",
    ClientRequestBytes => "Number of bytes in the client request",
    ClientRequestHost => "Host requested by the client",
    ClientRequestMethod => "HTTP method of the client request",
    ClientRequestPath => "URI path requested by the client",
    ClientRequestProtocol => "HTTP protocol of the client request",
    ClientRequestReferer => "HTTP request referrer",
    ClientRequestScheme => "The URL scheme requested by the visitor",
    ClientRequestSource => "Whether the request came from an eyeball, a worker or the edge",
    ClientRequestURI => "URI requested by the client",
    ClientRequestUserAgent => "User agent reported by the client",
    ClientSSLCipher => "Client SSL cipher",
    ClientSSLProtocol => "Client SSL (TLS) protocol",
    ClientSrcPort => "Client source port",
    ClientTCPRTTMs => "Smoothed TCP round-trip time from the edge to the client in ms",
    ClientXRequestedWith => "X-Requested-With HTTP header",
    ContentScanObjResults => "Results of content scanning per object",
    ContentScanObjSizes => "Sizes of scanned objects",
    ContentScanObjTypes => "Types of scanned objects",
    Cookies => "Configured cookie names and values",
    EdgeCFConnectingO2O => "Whether the request was an orange-to-orange request",
    EdgeColoCode => "IATA airport code of the data center that received the request",
    EdgeColoID => "Cloudflare edge colo id",
    EdgeEndTimestamp => "Timestamp at which the edge finished sending the response to the client",
    EdgePathingOp => "Indicates what type of response was issued for this request",
    EdgePathingSrc => "Details how the request was classified based on security checks",
    EdgePathingStatus => "Indicates what data was used to determine the handling of this request",
    EdgeRequestHost => "Host header on the request from the edge to the origin",
    EdgeResponseBodyBytes => "Size of the HTTP response body returned to clients",
    EdgeResponseBytes => "Number of bytes returned by the edge to the client",
    EdgeResponseCompressionRatio => "The edge response compression ratio",
    EdgeResponseContentType => "Edge response Content-Type header value",
    EdgeResponseStatus => "HTTP status code returned by Cloudflare to the client",
    EdgeServerIP => "IP of the edge server making a request to the origin",
    EdgeStartTimestamp => "Timestamp at which the edge received the request from the client",
    EdgeTimeToFirstByteMs => "Total view of time to first byte as measured at the edge",
    FraudAttack => "Type of fraud attack detected",
    FraudDetectionIDs => "IDs of fraud detections",
    FraudDetectionTags => "Tags of fraud detections",
    FraudEmailRisk => "Risk of the email used in the request",
    FraudUserID => "User identifier used for fraud detection",
    JA3Hash => "The MD5 hash of the JA3 fingerprint used to profile SSL/TLS clients",
    JA4 => "The JA4 fingerprint used to profile SSL/TLS clients",
    JA4Signals => "Inter-request statistics computed for this JA4 fingerprint",
    JSDetectionPassed => "Whether the request passed background JavaScript detection",
    LeakedCredentialCheckResult => "Result of the check for leaked credentials",
    OriginDNSResponseTimeMs => "Time taken to receive a DNS response for an origin name",
    OriginIP => "IP of the origin server",
    OriginRequestHeaderSendDurationMs => "Time taken to send request headers to origin",
    OriginResponseBytes => "Number of bytes returned by the origin server (deprecated)",
    OriginResponseDurationMs => "Upstream response time, measured from the first datacenter that receives a request",
    OriginResponseHTTPExpires => "Value of the origin 'expires' header in RFC1123 format",
    OriginResponseHTTPLastModified => "Value of the origin 'last-modified' header in RFC1123 format",
    OriginResponseHeaderReceiveDurationMs => "Time taken for origin to return response headers",
    OriginResponseStatus => "Status returned by the upstream server",
    OriginResponseTime => "Number of nanoseconds it took the origin to return the response (deprecated)",
    OriginSSLProtocol => "SSL (TLS) protocol used to connect to the origin",
    OriginTCPHandshakeDurationMs => "Time taken to complete TCP handshake with origin",
    OriginTLSHandshakeDurationMs => "Time taken to complete TLS handshake with origin",
    ParentRayID => "Ray ID of the parent request if this request was made using a Worker script",
    PayPerCrawlStatus => "Pay per crawl outcome",
    RayID => "ID of the request",
    RequestHeaders => "Configured request header names and values",
    ResponseHeaders => "Configured response header names and values",
    SecurityAction => "Action of the security rule that triggered a terminating action, if any",
    SecurityActions => "Array of actions that Cloudflare security products performed on this request",
    SecurityRuleDescription => "Description of the security rule that triggered a terminating action, if any",
    SecurityRuleID => "Rule ID of the security rule that triggered a terminating action, if any",
    SecurityRuleIDs => "Array of security rule IDs that matched the request",
    SecuritySources => "Array of security products that matched the request",
    SmartRouteColoID => "The Cloudflare data center used to connect to the origin server if Argo Smart Routing is used",
    UpperTierColoID => "The upper tier data center that was checked for a cached copy if Tiered Cache is used",
    VerifiedBotCategory => "The category of verified bot",
    WAFAttackScore => "Overall request score generated by the WAF detection module",
    WAFFlags => "Additional configuration flags (deprecated)",
    WAFMatchedVar => "The full name of the most-recently matched variable (deprecated)",
    WAFRCEAttackScore => "WAF score for an RCE attack",
    WAFSQLiAttackScore => "WAF score for an SQLi attack",
    WAFXSSAttackScore => "WAF score for an XSS attack",
    WebAssetsLabelsManaged => "Managed labels of the matched API endpoint",
    WebAssetsOperationID => "ID of the matched API operation",
    WorkerCPUTime => "Amount of time in microseconds spent executing a Worker, if any",
    WorkerScriptName => "The Worker script name that made the request",
    WorkerStatus => "Status returned from Worker daemon",
    WorkerSubrequest => "Whether or not this request was a Worker subrequest",
    WorkerSubrequestCount => "Number of subrequests issued by a Worker when handling this request",
    WorkerWallTimeUs => "The elapsed time in microseconds between the start of a Worker invocation and when the Workers Runtime determines that no more JavaScript needs to run",
    ZoneName => "The human-readable name of the zone",
}

impl Field {
    pub fn name(self) -> &'static str {
        CATALOGUE[self as usize].1
    }

    pub fn key_prefix(self) -> &'static str {
        CATALOGUE[self as usize].3
    }

    pub fn from_name(name: &str) -> Option<Field> {
        CATALOGUE
            .iter()
            .find(|(_, n, _, _)| *n == name)
            .map(|(f, _, _, _)| *f)
    }

    pub fn all() -> Vec<Field> {
        CATALOGUE.iter().map(|(f, _, _, _)| *f).collect()
    }
}

/// The 9 fields Logpull returns when `fields` is absent (reference §1.5).
pub const DEFAULT_FIELDS: &[Field] = &[
    Field::ClientIP,
    Field::ClientRequestHost,
    Field::ClientRequestMethod,
    Field::ClientRequestURI,
    Field::EdgeEndTimestamp,
    Field::EdgeResponseBytes,
    Field::EdgeResponseStatus,
    Field::EdgeStartTimestamp,
    Field::RayID,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_sorted_and_indexed_by_variant() {
        for (i, (field, name, _, _)) in CATALOGUE.iter().enumerate() {
            assert_eq!(*field as usize, i);
            if i > 0 {
                assert!(CATALOGUE[i - 1].1 < *name, "{name} out of order");
            }
        }
        assert_eq!(CATALOGUE.len(), 108);
    }
}
