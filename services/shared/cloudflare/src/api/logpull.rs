//! Logpull: `received` (streamed), `received/fields`, `rayids/{ray}` and the retention flag.

use crate::client::{RequestSpec, TokenClient};
use crate::error::CfError;
use crate::logpull_stream::{LogpullStream, StreamSettings};
use crate::route::Endpoint;
use crate::timestamp::TimestampFormat;
use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `end - start` may not exceed one hour.
pub const LOGPULL_MAX_WINDOW: Duration = Duration::from_secs(3600);
/// `end` must lie at least this far in the past. The docs say 1 min, the OpenAPI spec 5 min; 5 is always safe.
pub const LOGPULL_MIN_DELAY: Duration = Duration::from_secs(300);
/// `start` may be at most 168 h (7 d) old; older windows are lost for good.
pub const LOGPULL_MAX_AGE: Duration = Duration::from_secs(168 * 3600);

/// A received-time window `[start, end)` on whole seconds, at most one hour long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogpullWindow {
    start: OffsetDateTime,
    end: OffsetDateTime,
}

impl LogpullWindow {
    pub fn new(start: OffsetDateTime, end: OffsetDateTime) -> Result<Self, CfError> {
        if start.nanosecond() != 0 || end.nanosecond() != 0 {
            return Err(CfError::InvalidRequest(format!(
                "window bounds must be whole seconds: [{start}, {end})"
            )));
        }
        if end <= start {
            return Err(CfError::InvalidRequest(format!(
                "window end {end} is not after start {start}"
            )));
        }
        if end - start > LOGPULL_MAX_WINDOW {
            return Err(CfError::InvalidRequest(format!(
                "window [{start}, {end}) is longer than one hour"
            )));
        }
        Ok(Self { start, end })
    }

    pub fn start(&self) -> OffsetDateTime {
        self.start
    }

    pub fn end(&self) -> OffsetDateTime {
        self.end
    }

    /// The newest `end` Cloudflare will serve at `now` (with the 5-minute safety delay).
    pub fn latest_end(now: OffsetDateTime) -> OffsetDateTime {
        now - LOGPULL_MIN_DELAY
    }

    /// The oldest `start` still served at `now`.
    pub fn earliest_start(now: OffsetDateTime) -> OffsetDateTime {
        now - LOGPULL_MAX_AGE
    }

    /// Whether Cloudflare will serve this window at `now`. The client does not check this itself because only the
    /// caller knows the right clock (the simulator runs its own); call it when choosing windows.
    pub fn check_servable(&self, now: OffsetDateTime) -> Result<(), CfError> {
        if self.end > Self::latest_end(now) {
            return Err(CfError::InvalidRequest(format!(
                "window end {} is less than 5 minutes before {now}",
                self.end
            )));
        }
        if self.start < Self::earliest_start(now) {
            return Err(CfError::InvalidRequest(format!(
                "window start {} is older than 168 hours at {now}",
                self.start
            )));
        }
        Ok(())
    }

    fn render(t: OffsetDateTime) -> Result<String, CfError> {
        t.to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .map_err(|e| CfError::InvalidRequest(format!("time {t}: {e}")))
    }
}

/// An explicit, validated field list. Never empty: Cloudflare's default set may change at any time, which would
/// silently change what is archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldList(Vec<String>);

impl FieldList {
    pub fn new<I, S>(fields: I) -> Result<Self, CfError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let fields: Vec<String> = fields.into_iter().map(Into::into).collect();
        if fields.is_empty() {
            return Err(CfError::InvalidRequest("the field list is empty".into()));
        }
        if let Some(bad) = fields
            .iter()
            .find(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(CfError::InvalidRequest(format!(
                "field name {bad:?} is not a plain identifier"
            )));
        }
        Ok(Self(fields))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Comma-separated without whitespace, as Logpull requires.
    pub fn to_query_value(&self) -> String {
        self.0.join(",")
    }
}

/// One `GET /zones/{zone}/logs/received` request. `count` and `sample` are deliberately absent: both drop data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogpullQuery {
    pub zone_id: String,
    pub window: LogpullWindow,
    pub fields: FieldList,
    pub timestamps: TimestampFormat,
    /// `CVE-2021-44228=true` rewrites `${` to `x{` in the output. It changes the data: record it with the archive.
    pub cve_2021_44228: bool,
}

impl LogpullQuery {
    pub fn new(zone_id: impl Into<String>, window: LogpullWindow, fields: FieldList) -> Self {
        Self {
            zone_id: zone_id.into(),
            window,
            fields,
            timestamps: TimestampFormat::UnixNano,
            cve_2021_44228: false,
        }
    }

    fn query_pairs(&self) -> Result<Vec<(&'static str, String)>, CfError> {
        let mut pairs = vec![
            ("start", LogpullWindow::render(self.window.start)?),
            ("end", LogpullWindow::render(self.window.end)?),
            ("fields", self.fields.to_query_value()),
            ("timestamps", self.timestamps.as_query_value().to_owned()),
        ];
        if self.cve_2021_44228 {
            pairs.push(("CVE-2021-44228", "true".to_owned()));
        }
        Ok(pairs)
    }
}

#[derive(Deserialize)]
struct FlagResult {
    flag: bool,
}

/// `received/fields` is documented as a bare object; tolerate an envelope around it too.
#[derive(Deserialize)]
#[serde(untagged)]
enum FieldsBody {
    Enveloped { result: BTreeMap<String, String> },
    Bare(BTreeMap<String, String>),
}

/// Ray IDs are 16 hex characters; the `-XXX` colo suffix is not part of the key.
pub fn normalise_ray_id(ray: &str) -> Result<String, CfError> {
    let id = ray
        .trim()
        .split('-')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CfError::InvalidRequest(format!("{ray:?} is not a Ray ID")));
    }
    Ok(id)
}

impl TokenClient {
    /// Streams one window's records. Retries (429, 5xx, 408, resets before the status) happen before the first line;
    /// once lines flow, a failure surfaces as the stream's terminal `Err` and the caller re-fetches the window.
    pub async fn logpull_received(&self, query: &LogpullQuery) -> Result<LogpullStream, CfError> {
        let spec = self.spec(Endpoint::LogpullReceived, Some(&query.zone_id));
        let request = RequestSpec {
            query: query.query_pairs()?,
            streaming: true,
            ..RequestSpec::get(self.url(&["zones", &query.zone_id, "logs", "received"]))
        };
        let response = self.open_stream(&spec, &request).await?;
        LogpullStream::from_response(response, self.stream_settings(spec.breaker_key()))
    }

    /// `GET /zones/{zone}/logs/received/fields`: field name → description for this zone.
    pub async fn logpull_fields(&self, zone_id: &str) -> Result<BTreeMap<String, String>, CfError> {
        let spec = self.spec(Endpoint::LogpullFields, Some(zone_id));
        let request = RequestSpec::get(self.url(&["zones", zone_id, "logs", "received", "fields"]));
        let (_, _, body) = self.fetch(&spec, &request).await?;
        match serde_json::from_slice::<FieldsBody>(&body) {
            Ok(FieldsBody::Enveloped { result } | FieldsBody::Bare(result)) => Ok(result),
            Err(e) => Err(CfError::Protocol {
                endpoint: spec.endpoint,
                detail: format!("fields body: {e}"),
            }),
        }
    }

    /// `GET /zones/{zone}/logs/rayids/{ray}`: zero, one or several records (Ray IDs are not unique).
    pub async fn logpull_ray(
        &self,
        zone_id: &str,
        ray_id: &str,
        fields: &FieldList,
        timestamps: TimestampFormat,
    ) -> Result<Vec<Bytes>, CfError> {
        let ray = normalise_ray_id(ray_id)?;
        let spec = self.spec(Endpoint::LogpullRayIds, Some(zone_id));
        let request = RequestSpec {
            query: vec![
                ("fields", fields.to_query_value()),
                ("timestamps", timestamps.as_query_value().to_owned()),
            ],
            streaming: true,
            ..RequestSpec::get(self.url(&["zones", zone_id, "logs", "rayids", &ray]))
        };
        // Small bodies: retry the whole exchange, including a body that breaks.
        self.policies()
            .run(&spec, || async {
                let response = self.send(spec.endpoint, &request).await?;
                let stream = LogpullStream::from_response(
                    response,
                    self.stream_settings(spec.breaker_key()),
                )?;
                stream.collect_window().await.map(|(lines, _)| lines)
            })
            .await
    }

    /// Reads the zone's Logpull retention flag (off by default; nothing can be pulled while it is off).
    pub async fn retention_flag(&self, zone_id: &str) -> Result<bool, CfError> {
        let spec = self.spec(Endpoint::RetentionFlag, Some(zone_id));
        let url = self.url(&["zones", zone_id, "logs", "control", "retention", "flag"]);
        Ok(self
            .envelope_result::<FlagResult>(&spec, &RequestSpec::get(url))
            .await?
            .flag)
    }

    /// Sets the retention flag (needs Logs Edit) and returns the value Cloudflare now reports.
    pub async fn set_retention_flag(&self, zone_id: &str, enabled: bool) -> Result<bool, CfError> {
        let spec = self.spec(Endpoint::RetentionFlag, Some(zone_id));
        let request = RequestSpec {
            method: Method::POST,
            json: Some(serde_json::json!({ "flag": enabled })),
            ..RequestSpec::get(self.url(&[
                "zones",
                zone_id,
                "logs",
                "control",
                "retention",
                "flag",
            ]))
        };
        Ok(self
            .envelope_result::<FlagResult>(&spec, &request)
            .await?
            .flag)
    }

    fn stream_settings(&self, key: crate::policy::breaker::BreakerKey) -> StreamSettings {
        StreamSettings {
            idle_timeout: self.config().body_idle_timeout,
            max_line_bytes: self.config().max_line_bytes,
            breaker: Some((std::sync::Arc::clone(self.breakers()), key)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn window_rules() {
        let start = datetime!(2026-01-15 12:00 UTC);
        assert!(LogpullWindow::new(start, start + Duration::from_secs(3600)).is_ok());
        assert!(
            LogpullWindow::new(start, start + Duration::from_secs(3601)).is_err(),
            "longer than 1 h"
        );
        assert!(LogpullWindow::new(start, start).is_err(), "empty");
        assert!(
            LogpullWindow::new(start + Duration::from_secs(60), start).is_err(),
            "reversed"
        );
        assert!(
            LogpullWindow::new(start, start + Duration::from_millis(1500)).is_err(),
            "sub-second bound"
        );
    }

    #[test]
    fn servable_windows_respect_delay_and_age() {
        let now = datetime!(2026-01-15 12:00 UTC);
        let latest = LogpullWindow::latest_end(now);
        assert_eq!(latest, datetime!(2026-01-15 11:55 UTC));
        let ok = LogpullWindow::new(latest - Duration::from_secs(60), latest).unwrap();
        assert!(ok.check_servable(now).is_ok());
        let too_recent = LogpullWindow::new(
            latest - Duration::from_secs(59),
            latest + Duration::from_secs(1),
        )
        .unwrap();
        assert!(too_recent.check_servable(now).is_err());
        let early = LogpullWindow::earliest_start(now);
        let too_old = LogpullWindow::new(
            early - Duration::from_secs(1),
            early + Duration::from_secs(59),
        )
        .unwrap();
        assert!(too_old.check_servable(now).is_err());
    }

    #[test]
    fn query_always_has_explicit_fields_and_never_count_or_sample() {
        let start = datetime!(2026-01-15 10:00 UTC);
        let window = LogpullWindow::new(start, start + Duration::from_secs(60)).unwrap();
        let query = LogpullQuery::new(
            "z",
            window,
            FieldList::new(["RayID", "EdgeStartTimestamp"]).unwrap(),
        );
        let pairs = query.query_pairs().unwrap();
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("fields"), Some("RayID,EdgeStartTimestamp"));
        assert_eq!(get("timestamps"), Some("unixnano"));
        assert_eq!(get("start"), Some("2026-01-15T10:00:00Z"));
        assert_eq!(get("end"), Some("2026-01-15T10:01:00Z"));
        assert!(
            get("count").is_none() && get("sample").is_none() && get("CVE-2021-44228").is_none()
        );
    }

    #[test]
    fn field_lists_reject_empty_and_unsafe_names() {
        assert!(FieldList::new(Vec::<String>::new()).is_err());
        assert!(FieldList::new(["RayID", "Client IP"]).is_err());
        assert!(FieldList::new(["RayID,ClientIP"]).is_err());
    }

    #[test]
    fn ray_ids_lose_the_colo_suffix() {
        assert_eq!(
            normalise_ray_id("49ddb3e70e665831-DFW").unwrap(),
            "49ddb3e70e665831"
        );
        assert!(normalise_ray_id("not-a-ray").is_err());
    }

    #[test]
    fn fields_body_bare_or_enveloped() {
        let bare: FieldsBody = serde_json::from_str(r#"{"RayID":"Ray ID"}"#).unwrap();
        assert!(matches!(bare, FieldsBody::Bare(m) if m["RayID"] == "Ray ID"));
        let wrapped: FieldsBody =
            serde_json::from_str(r#"{"success":true,"errors":[],"result":{"RayID":"Ray ID"}}"#)
                .unwrap();
        assert!(matches!(wrapped, FieldsBody::Enveloped { result } if result.len() == 1));
    }
}
