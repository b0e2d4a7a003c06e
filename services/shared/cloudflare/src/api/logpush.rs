//! Logpush jobs of a zone (`/zones/{zone}/logpush/jobs`): list, create, enable or disable, delete.
//!
//! Cloudflare allows at most four jobs per zone and refuses a fifth with HTTP 400 and a message
//! naming the limit; it checks an HTTP destination by pushing a test object before it creates a
//! job. A job's health is in `last_complete`, `last_error` and `error_message`.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{RequestSpec, TokenClient};
use crate::error::CfError;
use crate::route::Endpoint;

/// The most jobs Cloudflare lets one zone have.
pub const MAX_LOGPUSH_JOBS_PER_ZONE: usize = 4;

/// A job as Cloudflare reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogpushJob {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub dataset: Option<String>,
    #[serde(default)]
    pub enabled: bool,
    /// Where it pushes; for an HTTP destination this holds the bearer secret RainLogs gave it,
    /// so it is never logged.
    #[serde(default)]
    pub destination_conf: String,
    /// RFC 3339: the last time a batch was pushed.
    #[serde(default)]
    pub last_complete: Option<String>,
    /// RFC 3339: the last time a push failed, and why.
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
}

/// What to create: the dataset, an explicit field list, and timestamps RainLogs reads exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewLogpushJob {
    pub name: String,
    pub dataset: String,
    pub enabled: bool,
    pub destination_conf: String,
    pub output_options: OutputOptions,
    /// The token from the ownership challenge's file, for destinations that need one (Amazon
    /// S3 written with Cloudflare's identity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ownership_challenge: Option<String>,
}

/// Cloudflare's answer to an ownership challenge: the object it wrote the token into.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OwnershipChallenge {
    pub filename: String,
    #[serde(default)]
    pub valid: bool,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputOptions {
    pub field_names: Vec<String>,
    /// Always `unixnano`: integers with no rounding, read without guessing the unit.
    pub timestamp_format: String,
}

impl NewLogpushJob {
    pub fn new(name: &str, dataset: &str, destination_conf: String, fields: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            dataset: dataset.to_owned(),
            enabled: true,
            destination_conf,
            output_options: OutputOptions {
                field_names: fields,
                timestamp_format: "unixnano".into(),
            },
            ownership_challenge: None,
        }
    }
}

impl TokenClient {
    /// The zone's jobs (Logs Read).
    pub async fn logpush_jobs(&self, zone_id: &str) -> Result<Vec<LogpushJob>, CfError> {
        let spec = self.spec(Endpoint::LogpushJobs, Some(zone_id));
        let url = self.url(&["zones", zone_id, "logpush", "jobs"]);
        Ok(self
            .envelope::<Vec<LogpushJob>>(&spec, &RequestSpec::get(url))
            .await?
            .unwrap_or_default())
    }

    /// Creates a job (Logs Edit). Cloudflare first pushes a test object to the destination.
    pub async fn create_logpush_job(
        &self,
        zone_id: &str,
        job: &NewLogpushJob,
    ) -> Result<LogpushJob, CfError> {
        let spec = self.spec(Endpoint::LogpushJobs, Some(zone_id));
        let json = serde_json::to_value(job).map_err(|e| CfError::InvalidRequest(e.to_string()))?;
        let request = RequestSpec {
            method: Method::POST,
            json: Some(json),
            ..RequestSpec::get(self.url(&["zones", zone_id, "logpush", "jobs"]))
        };
        self.envelope_result(&spec, &request).await
    }

    /// Asks Cloudflare to write an ownership token into the destination (Logs Edit); the token
    /// in that file is what the job's create must carry.
    pub async fn logpush_ownership(
        &self,
        zone_id: &str,
        destination_conf: &str,
    ) -> Result<OwnershipChallenge, CfError> {
        let spec = self.spec(Endpoint::LogpushJobs, Some(zone_id));
        let request = RequestSpec {
            method: Method::POST,
            json: Some(serde_json::json!({ "destination_conf": destination_conf })),
            ..RequestSpec::get(self.url(&["zones", zone_id, "logpush", "ownership"]))
        };
        self.envelope_result(&spec, &request).await
    }

    /// Switches a job on or off (Logs Edit); an enabled job pushes only what arrives from then on.
    pub async fn set_logpush_job_enabled(
        &self,
        zone_id: &str,
        job_id: u64,
        enabled: bool,
    ) -> Result<LogpushJob, CfError> {
        let spec = self.spec(Endpoint::LogpushJobs, Some(zone_id));
        let id = job_id.to_string();
        let request = RequestSpec {
            method: Method::PUT,
            json: Some(serde_json::json!({ "enabled": enabled })),
            ..RequestSpec::get(self.url(&["zones", zone_id, "logpush", "jobs", &id]))
        };
        self.envelope_result(&spec, &request).await
    }

    /// Deletes a job (Logs Edit).
    pub async fn delete_logpush_job(&self, zone_id: &str, job_id: u64) -> Result<(), CfError> {
        let spec = self.spec(Endpoint::LogpushJobs, Some(zone_id));
        let id = job_id.to_string();
        let request = RequestSpec {
            method: Method::DELETE,
            ..RequestSpec::get(self.url(&["zones", zone_id, "logpush", "jobs", &id]))
        };
        self.envelope::<serde_json::Value>(&spec, &request)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_job_asks_for_exact_timestamps_and_the_fields_given() {
        let job = NewLogpushJob::new(
            "rainlogs",
            "http_requests",
            "https://ingest.example.eu/logpush/v1/z/http_requests".into(),
            vec!["EdgeStartTimestamp".into(), "RayID".into()],
        );
        let json = serde_json::to_value(&job).expect("json");
        assert_eq!(json["output_options"]["timestamp_format"], "unixnano");
        assert_eq!(
            json["output_options"]["field_names"],
            serde_json::json!(["EdgeStartTimestamp", "RayID"])
        );
        assert_eq!(json["enabled"], true);
    }

    #[test]
    fn jobs_read_with_missing_optional_fields() {
        let job: LogpushJob =
            serde_json::from_str(r#"{"id":7,"enabled":true,"destination_conf":"s3://b"}"#)
                .expect("job");
        assert_eq!((job.id, job.enabled, job.last_error), (7, true, None));
    }
}
