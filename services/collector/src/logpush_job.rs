//! The zone's Logpush jobs, as RainLogs keeps them at Cloudflare: one job named [`JOB_NAME`] per
//! zone and dataset, pushing to `<ingest.public_url>/logpush/v1/<zone>/<dataset>` with a bearer
//! secret only the job and (as a SHA-256) the ingest endpoint know, or into the customer's bucket.
//!
//! * Onboarding finds the job, or makes one: a fresh secret, announced to the ingest endpoint
//!   (`ctl.push_endpoint_set`, for that dataset) before Cloudflare's destination check reaches it.
//! * A paused zone's job is disabled, and enabled again when the zone resumes (Logpush never
//!   backfills the time in between: that time is a `paused` gap).
//! * A removed zone's job is deleted, and so is the job of a zone switched to another method.
//! * The job's own health (`last_error`, `error_message`) is shown in the zone's health.

use std::time::Duration;

use rainlogs_cloudflare::{
    CfError, LogpushDataset, LogpushJob, MAX_LOGPUSH_JOBS_PER_ZONE, NewLogpushJob,
};
use rainlogs_schemas::events::PushEndpointSet;
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_store::{ObjectKey, S3Store};
use sha2::{Digest as _, Sha256};

use crate::health::Status;
use crate::onboarding::OnboardingFailure;
use crate::zone_run::ZoneRun;

/// The name of the job RainLogs creates; jobs with other names are the customer's own.
pub const JOB_NAME: &str = "rainlogs";

/// Tries of a create whose destination check fails: the ingest endpoint may not have taken
/// the new secret from the control stream yet.
const CREATE_TRIES: u32 = 5;

/// Where the zone's job pushes.
#[derive(Clone, Debug)]
pub enum Destination {
    /// The ingest endpoint: `<public_url>/logpush/v1/<zone>/<dataset>`, a bearer secret added
    /// when the job is made.
    Endpoint { base: String },
    /// The customer's bucket, exactly as the customer gave it; `ownership` reads the ownership
    /// challenge's file where the job needs one (Amazon S3 written with Cloudflare's identity).
    Bucket {
        destination_conf: String,
        ownership: Option<S3Store>,
    },
}

impl Destination {
    /// The ingest endpoint of this RainLogs for the zone's `dataset`, when it has
    /// `ingest.public_url`.
    pub fn endpoint(run: &ZoneRun<'_>, dataset: LogpushDataset) -> Result<Self, OnboardingFailure> {
        let Some(push_url) = run.shared.settings.push_url.as_deref() else {
            return Err(OnboardingFailure {
                status: Status::Failing,
                reason: "Logpush needs ingest.public_url (the https address at which Cloudflare \
                         reaches this RainLogs' ingest endpoint); it is not set"
                    .into(),
                plan: None,
                transient: false,
            });
        };
        Ok(Self::Endpoint {
            base: destination_base(push_url, run.zone(), dataset.as_str()),
        })
    }

    /// A job named [`JOB_NAME`] pushing here (to the endpoint with whatever secret).
    fn is_ours(&self, job: &LogpushJob) -> bool {
        job.name.as_deref() == Some(JOB_NAME)
            && match self {
                Self::Endpoint { base } => job
                    .destination_conf
                    .strip_prefix(base.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('?')),
                Self::Bucket {
                    destination_conf, ..
                } => job.destination_conf == *destination_conf,
            }
    }
}

/// The URL pushes for this zone and dataset go to, without the secret.
fn destination_base(push_url: &str, zone: &str, dataset: &str) -> String {
    format!(
        "{}/logpush/v1/{zone}/{dataset}",
        push_url.trim_end_matches('/')
    )
}

/// What a job is for: the dataset, where it pushes, and the fields it asks for.
pub struct JobSpec {
    pub dataset: LogpushDataset,
    pub destination: Destination,
    pub fields: Vec<String>,
}

/// A job as [`ensure`] leaves it.
pub struct Ensured {
    pub job: LogpushJob,
    /// The job was there and on before: it pushed while no collector read (into `RL_PUSH` or
    /// the bucket), so nothing is missing from the time in between.
    pub pushing_before: bool,
}

/// The zone's job for `spec`, made if it has none; enabled unless the zone is paused.
pub async fn ensure(run: &mut ZoneRun<'_>, spec: &JobSpec) -> Result<Ensured, OnboardingFailure> {
    let destination = &spec.destination;
    let zone = run.zone().to_owned();
    let jobs = run.client.logpush_jobs(&zone).await.map_err(|e| {
        OnboardingFailure::from_error("cannot list the zone's Logpush jobs", &e, None)
    })?;
    let mut ours = jobs.iter().filter(|j| destination.is_ours(j));
    if let Some(job) = ours.next() {
        let job = job.clone();
        for extra in ours {
            // A create retried after its answer was lost: one job pushing is enough.
            if let Err(e) = run.client.delete_logpush_job(&zone, extra.id).await {
                tracing::warn!(%zone, job = extra.id, error = %e, "cannot delete a second RainLogs job");
            }
        }
        let pushing_before = job.enabled;
        let job = set_enabled(run, job, !run.is_paused()).await?;
        return Ok(Ensured {
            job,
            pushing_before,
        });
    }
    if jobs.len() >= MAX_LOGPUSH_JOBS_PER_ZONE {
        let names: Vec<String> = jobs
            .iter()
            .map(|j| format!("{} ({})", j.name.as_deref().unwrap_or("unnamed"), j.id))
            .collect();
        return Err(OnboardingFailure {
            status: Status::Failing,
            reason: format!(
                "Cloudflare allows at most {MAX_LOGPUSH_JOBS_PER_ZONE} Logpush jobs per zone and this zone has {}: {}; \
                 delete one in the Cloudflare dashboard and RainLogs creates its own",
                jobs.len(),
                names.join(", ")
            ),
            plan: None,
            transient: false,
        });
    }
    create(run, spec).await.map(|job| Ensured {
        job,
        pushing_before: false,
    })
}

async fn create(run: &mut ZoneRun<'_>, spec: &JobSpec) -> Result<LogpushJob, OnboardingFailure> {
    let zone = run.zone().to_owned();
    let destination = &spec.destination;
    let destination_conf = match destination {
        Destination::Endpoint { base } => {
            let secret = hex::encode(rand::random::<[u8; 32]>());
            announce_secret(run, spec.dataset, &secret).await?;
            format!("{base}?header_Authorization=Bearer%20{secret}")
        }
        Destination::Bucket {
            destination_conf, ..
        } => destination_conf.clone(),
    };
    let mut request = NewLogpushJob::new(
        JOB_NAME,
        spec.dataset.as_str(),
        destination_conf,
        spec.fields.clone(),
    );
    request.enabled = !run.is_paused();
    if let Destination::Bucket {
        destination_conf,
        ownership: Some(reader),
    } = destination
    {
        request.ownership_challenge = Some(ownership_token(run, destination_conf, reader).await?);
    }
    let mut wait = run
        .shared
        .settings
        .retry_base
        .max(Duration::from_millis(200));
    for attempt in 1..=CREATE_TRIES {
        match run.client.create_logpush_job(&zone, &request).await {
            Ok(job) => {
                tracing::info!(%zone, job = job.id, dataset = spec.dataset.as_str(), "created the zone's Logpush job");
                return Ok(job);
            }
            // Cloudflare's destination check reached the endpoint before the new secret did.
            Err(CfError::Api { status: 400, .. }) if attempt < CREATE_TRIES => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            Err(e) => {
                return Err(OnboardingFailure::from_error(
                    &format!(
                        "Cloudflare did not create the zone's Logpush job for {}",
                        spec.dataset.as_str()
                    ),
                    &e,
                    None,
                ));
            }
        }
    }
    Err(OnboardingFailure {
        status: Status::Degraded,
        reason: "Cloudflare could not check the ingest endpoint".into(),
        plan: None,
        transient: true,
    })
}

/// Tries of reading the challenge's file: a provider may list a new object a moment late.
const CHALLENGE_READS: u32 = 5;

/// Runs Cloudflare's ownership challenge for the bucket: Cloudflare writes a token into it, and
/// RainLogs reads it back with the zone's read keys, which shows the bucket is the customer's.
async fn ownership_token(
    run: &ZoneRun<'_>,
    destination_conf: &str,
    reader: &S3Store,
) -> Result<String, OnboardingFailure> {
    let zone = run.zone();
    let challenge = run
        .client
        .logpush_ownership(zone, destination_conf)
        .await
        .map_err(|e| {
            OnboardingFailure::from_error(
                "Cloudflare could not write the ownership challenge into the bucket (the bucket \
                 policy must let Cloudflare's Logpush write)",
                &e,
                None,
            )
        })?;
    let key = ObjectKey::new(challenge.filename.trim_start_matches('/')).map_err(|e| {
        OnboardingFailure {
            status: Status::Failing,
            reason: format!("Cloudflare named an ownership file RainLogs cannot read: {e}"),
            plan: None,
            transient: false,
        }
    })?;
    let mut wait = Duration::from_millis(200);
    let mut last = String::new();
    for attempt in 1..=CHALLENGE_READS {
        match reader.get_bytes(&key).await {
            Ok(bytes) => {
                let token = String::from_utf8_lossy(&bytes).trim().to_owned();
                if !token.is_empty() {
                    return Ok(token);
                }
                last = "the file is empty".into();
            }
            Err(e) => last = e.to_string(),
        }
        if attempt < CHALLENGE_READS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    Err(OnboardingFailure {
        status: Status::Failing,
        reason: format!(
            "Cloudflare wrote the ownership challenge to {}, but the read keys cannot read it: {last}",
            challenge.filename
        ),
        plan: None,
        transient: true,
    })
}

/// Tells the ingest endpoint the new secret of `dataset`'s job (its SHA-256) on the control
/// stream.
async fn announce_secret(
    run: &ZoneRun<'_>,
    dataset: LogpushDataset,
    secret: &str,
) -> Result<(), OnboardingFailure> {
    let event = Envelope::new(
        run.entry.tenant.clone(),
        Some(run.zone().to_owned()),
        Actor::service(crate::NAME),
        Event::PushEndpointSet(PushEndpointSet {
            zone_id: run.zone().to_owned(),
            secret_sha256: Sha256::digest(secret.as_bytes()).to_vec(),
            dataset: Some(dataset.as_str().to_owned()),
        }),
    );
    run.shared
        .bus
        .publish(&subjects::control(&run.entry.tenant), &event)
        .await
        .map(drop)
        .map_err(|e| OnboardingFailure {
            status: Status::Degraded,
            reason: format!("cannot announce the push secret to the ingest endpoint: {e}"),
            plan: None,
            transient: true,
        })
}

/// Switches the job on or off when it is not already.
pub async fn set_enabled(
    run: &ZoneRun<'_>,
    job: LogpushJob,
    enabled: bool,
) -> Result<LogpushJob, OnboardingFailure> {
    if job.enabled == enabled {
        return Ok(job);
    }
    let zone = run.zone();
    let job = run
        .client
        .set_logpush_job_enabled(zone, job.id, enabled)
        .await
        .map_err(|e| {
            OnboardingFailure::from_error("cannot switch the zone's Logpush job", &e, None)
        })?;
    tracing::info!(zone, job = job.id, enabled, "Logpush job switched");
    Ok(job)
}

/// Deletes the job of a removed zone, or of one no longer collected with Logpush (best effort:
/// the job is of no use either way).
pub async fn remove(run: &ZoneRun<'_>, job: &LogpushJob) {
    let zone = run.zone();
    match tokio::time::timeout(
        Duration::from_secs(30),
        run.client.delete_logpush_job(zone, job.id),
    )
    .await
    {
        Ok(Ok(())) => tracing::info!(zone, job = job.id, "deleted the removed zone's Logpush job"),
        Ok(Err(e)) => {
            tracing::warn!(zone, job = job.id, error = %e, "cannot delete the removed zone's Logpush job; delete it in the Cloudflare dashboard")
        }
        Err(_) => {
            tracing::warn!(
                zone,
                job = job.id,
                "deleting the removed zone's Logpush job timed out; delete it in the Cloudflare dashboard"
            )
        }
    }
}

/// What Cloudflare says about the job's pushes, when its last push failed.
pub fn trouble(job: &LogpushJob) -> Option<String> {
    let error = job.last_error.as_deref()?;
    // RFC 3339 in UTC sorts as text.
    if job
        .last_complete
        .as_deref()
        .is_some_and(|done| done >= error)
    {
        return None;
    }
    Some(format!(
        "Cloudflare's Logpush job {} last failed at {error}: {}; it retries and drops a batch \
         whose retries run out",
        job.id,
        job.error_message.as_deref().unwrap_or("no message")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, destination: &str) -> LogpushJob {
        LogpushJob {
            id: 1,
            name: Some(name.into()),
            dataset: Some("http_requests".into()),
            enabled: true,
            destination_conf: destination.into(),
            last_complete: None,
            last_error: None,
            error_message: None,
        }
    }

    #[test]
    fn only_a_job_named_rainlogs_pushing_here_is_ours() {
        let base = destination_base("https://logs.example.eu/", "z", "http_requests");
        assert_eq!(base, "https://logs.example.eu/logpush/v1/z/http_requests");
        let secret = format!("{base}?header_Authorization=Bearer%20abc");
        let endpoint = Destination::Endpoint { base };
        assert!(endpoint.is_ours(&job("rainlogs", &secret)));
        assert!(!endpoint.is_ours(&job("siem", &secret)));
        assert!(!endpoint.is_ours(&job(
            "rainlogs",
            "https://logs.example.eu/logpush/v1/z/http_requests2"
        )));
        assert!(!endpoint.is_ours(&job("rainlogs", "s3://bucket/z")));
        let bucket = Destination::Bucket {
            destination_conf: "s3://bucket/z?region=r".into(),
            ownership: None,
        };
        assert!(bucket.is_ours(&job("rainlogs", "s3://bucket/z?region=r")));
        assert!(!bucket.is_ours(&job("rainlogs", "s3://bucket/y?region=r")));
    }

    #[test]
    fn trouble_is_shown_only_while_the_last_push_failed() {
        let mut failing = job("rainlogs", "x");
        failing.last_error = Some("2026-01-15T12:05:00Z".into());
        failing.error_message = Some("HTTP 503".into());
        assert!(trouble(&failing).is_some_and(|t| t.contains("HTTP 503")));
        failing.last_complete = Some("2026-01-15T12:06:00Z".into());
        assert_eq!(trouble(&failing), None);
    }
}
