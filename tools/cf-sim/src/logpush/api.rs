//! `/zones/{id}/logpush/jobs[/{job_id}]` and `/zones/{id}/logpush/ownership`.

use std::sync::Arc;
use std::time::Duration;

use poem::http::{Method, StatusCode};
use poem::{Request, Response};
use serde_json::{Map, Value, json};

use super::destination::{self, CHECK_CONTENT, Destination};
use super::s3::{GZIP, S3Writer, TEXT};
use super::{Job, JobConfig, LineFormat, challenge, pusher};
use crate::fault::EndpointKind;
use crate::http::{Ctx, parse_query, respond};
use crate::lock;
use crate::rng::hash_str;
use crate::scenario::Permission;
use crate::state::Shared;
use crate::traffic::fields::{DEFAULT_FIELDS, Field};
use crate::traffic::firewall::LOGPUSH_FIREWALL_FIELDS;
use crate::traffic::http::HttpRenderer;
use crate::traffic::render::TimestampFormat;
use crate::truth::Dataset;

type Handled = Result<Response, Response>;

/// Cloudflare's documented answer to a fifth job in a zone; the code is the one reports of the same message show.
const MAX_JOBS: &str = "creating a new job is not allowed: exceeded max jobs allowed";
const CHECK_FAILED: &str = "error validating destination: error writing object: error uploading";
/// What Cloudflare answered a job created with a wrong token (seen in a Terraform provider report, code 1002).
const BAD_CHALLENGE: &str = "incorrect ownership challenge";

/// Settings a job body may carry; anything else is ignored, as Cloudflare ignores unknown keys.
const SETTINGS: &[&str] = &[
    "name",
    "dataset",
    "destination_conf",
    "output_options",
    "logpull_options",
    "max_upload_bytes",
    "max_upload_records",
    "max_upload_interval_seconds",
    "frequency",
    "kind",
    "filter",
];

/// `output_options` keys that only change the layout; the simulator pushes NDJSON and accepts only their defaults.
const LAYOUT_DEFAULTS: &[(&str, &str)] = &[
    ("output_type", "ndjson"),
    ("batch_prefix", ""),
    ("batch_suffix", ""),
    ("record_prefix", "{"),
    ("record_suffix", "}\n"),
    ("record_delimiter", ""),
    ("record_template", ""),
    ("field_delimiter", ","),
];

fn invalid(message: &str) -> Response {
    respond::error(StatusCode::BAD_REQUEST, 1002, message)
}

fn not_found() -> Response {
    respond::error(StatusCode::NOT_FOUND, 1003, "job not found")
}

fn body_object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(respond::error(
            StatusCode::BAD_REQUEST,
            6007,
            "Malformed JSON in request body",
        )),
    }
}

fn opt_str<'a>(raw: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Response> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(&format!("{key} must be a string"))),
    }
}

/// An unsigned integer in `[min, max]`, or 0 (the default). JSON floats with no fraction count as integers.
fn opt_limit(
    raw: &Map<String, Value>,
    key: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, Response> {
    let value = match raw.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
    };
    match value {
        Some(v) if v == 0 || (min..=max).contains(&v) => Ok(Some(v)),
        _ => Err(invalid(&format!(
            "{key} must be between {min} and {max}, or 0"
        ))),
    }
}

/// What the job renders: fields, timestamps and the Log4Shell rewrite, from `output_options` or else from the
/// legacy `logpull_options` query string.
struct OutputChoice {
    fields: Option<Vec<String>>,
    timestamps: TimestampFormat,
    log4shell_rewrite: bool,
}

fn output_choice(raw: &Map<String, Value>) -> Result<OutputChoice, Response> {
    if let Some(options) = raw.get("output_options").filter(|v| !v.is_null()) {
        let Value::Object(options) = options else {
            return Err(invalid("output_options must be an object"));
        };
        for (key, default) in LAYOUT_DEFAULTS {
            match options.get(*key) {
                None | Some(Value::Null) => {}
                Some(Value::String(s))
                    if s == default || (s.is_empty() && *key != "output_type") => {}
                Some(_) => {
                    return Err(invalid(&format!(
                        "output_options.{key}: only \"{}\" is supported by the simulator",
                        default.escape_default()
                    )));
                }
            }
        }
        if options
            .get("sample_rate")
            .is_some_and(|r| !r.is_null() && r.as_f64() != Some(1.0))
        {
            return Err(invalid(
                "output_options.sample_rate: only 1 is supported by the simulator",
            ));
        }
        let fields = match options.get("field_names") {
            None | Some(Value::Null) => None,
            Some(Value::Array(names)) => Some(
                names
                    .iter()
                    .map(|n| n.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid("output_options.field_names must be strings"))?,
            ),
            Some(_) => return Err(invalid("output_options.field_names must be a list")),
        };
        let timestamps = match options.get("timestamp_format") {
            None | Some(Value::Null) => TimestampFormat::Unixnano,
            Some(v) => v
                .as_str()
                .and_then(TimestampFormat::parse_logpush)
                .ok_or_else(|| {
                    invalid("output_options.timestamp_format must be one of unixnano, unix, rfc3339, rfc3339ms, rfc3339ns")
                })?,
        };
        let log4shell_rewrite = match options.get("CVE-2021-44228") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("output_options.CVE-2021-44228 must be a boolean")),
        };
        return Ok(OutputChoice {
            fields,
            timestamps,
            log4shell_rewrite,
        });
    }
    let params = parse_query(opt_str(raw, "logpull_options")?.unwrap_or_default());
    let mut choice = OutputChoice {
        fields: None,
        timestamps: TimestampFormat::Unixnano,
        log4shell_rewrite: false,
    };
    for (key, value) in params {
        match key.as_str() {
            "fields" => choice.fields = Some(value.split(',').map(str::to_owned).collect()),
            "timestamps" => {
                choice.timestamps = TimestampFormat::parse_logpush(&value).ok_or_else(|| {
                    invalid(&format!("logpull_options: invalid timestamps {value}"))
                })?;
            }
            "CVE-2021-44228" => choice.log4shell_rewrite = value == "true",
            _ => return Err(invalid(&format!("logpull_options: unknown option {key}"))),
        }
    }
    Ok(choice)
}

fn line_format(dataset: Dataset, choice: OutputChoice) -> Result<LineFormat, Response> {
    match dataset {
        Dataset::HttpRequests => {
            let fields = match &choice.fields {
                None => DEFAULT_FIELDS.to_vec(),
                Some(names) => names
                    .iter()
                    .map(|n| {
                        Field::from_name(n.trim())
                            .ok_or_else(|| invalid(&format!("invalid field: {n}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            };
            if fields.is_empty() {
                return Err(invalid("field_names must list at least one field"));
            }
            Ok(LineFormat::Http(HttpRenderer::new(
                fields,
                choice.timestamps,
                choice.log4shell_rewrite,
            )))
        }
        Dataset::FirewallEvents => {
            if let Some(bad) = choice
                .fields
                .iter()
                .flatten()
                .find(|f| !LOGPUSH_FIREWALL_FIELDS.contains(&f.as_str()))
            {
                return Err(invalid(&format!("invalid field: {bad}")));
            }
            if choice.fields.as_ref().is_some_and(Vec::is_empty) {
                return Err(invalid("field_names must list at least one field"));
            }
            Ok(LineFormat::Firewall {
                fields: choice.fields,
                timestamps: choice.timestamps,
                log4shell_rewrite: choice.log4shell_rewrite,
            })
        }
    }
}

fn parse_dataset(raw: &Map<String, Value>) -> Result<Dataset, Response> {
    match opt_str(raw, "dataset")? {
        Some("http_requests") => Ok(Dataset::HttpRequests),
        Some("firewall_events") => Ok(Dataset::FirewallEvents),
        Some(other) => Err(invalid(&format!("dataset {other} is not supported"))),
        None => Err(invalid("dataset is required")),
    }
}

/// Validate a whole job body (a create, or a PUT merged into the stored settings).
fn job_config(raw: Map<String, Value>) -> Result<JobConfig, Response> {
    let dataset = parse_dataset(&raw)?;
    let name = opt_str(&raw, "name")?.map(str::to_owned);
    if name.as_deref().is_some_and(|n| {
        !n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    }) {
        return Err(invalid(
            "name may only contain letters, digits, '-' and '.'",
        ));
    }
    let destination_conf = opt_str(&raw, "destination_conf")?
        .filter(|d| !d.is_empty())
        .ok_or_else(|| invalid("destination_conf is required"))?
        .to_owned();
    let destination = Destination::parse(&destination_conf).map_err(|e| invalid(&e))?;
    if !matches!(opt_str(&raw, "kind")?, None | Some("")) {
        return Err(invalid(
            "kind: only \"\" is supported for zone jobs by the simulator",
        ));
    }
    let frequency = opt_str(&raw, "frequency")?.unwrap_or("high").to_owned();
    if frequency != "high" && frequency != "low" {
        return Err(invalid("frequency must be high or low"));
    }
    if opt_str(&raw, "filter")?.is_some_and(|f| !f.trim().is_empty()) {
        return Err(invalid("filter is not supported by the simulator"));
    }
    let format = line_format(dataset, output_choice(&raw)?)?;
    let max_upload_bytes = opt_limit(&raw, "max_upload_bytes", 5_000_000, 1_000_000_000)?;
    let max_upload_records = opt_limit(&raw, "max_upload_records", 1_000, 1_000_000)?;
    let max_upload_interval_seconds = opt_limit(&raw, "max_upload_interval_seconds", 30, 300)?;
    Ok(JobConfig {
        name,
        dataset,
        destination_conf,
        destination,
        output_options: raw.get("output_options").cloned().filter(|v| !v.is_null()),
        logpull_options: opt_str(&raw, "logpull_options")?.map(str::to_owned),
        format: Arc::new(format),
        max_upload_bytes,
        max_upload_records,
        max_upload_interval_seconds,
        frequency,
        raw,
    })
}

fn settings_of(body: &Map<String, Value>) -> Map<String, Value> {
    body.iter()
        .filter(|(k, _)| SETTINGS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn enabled_flag(body: &Map<String, Value>) -> Result<Option<bool>, Response> {
    match body.get("enabled") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid("enabled must be a boolean")),
    }
}

/// Cloudflare writes a gzipped `{"content":"tests"}` before accepting a destination: an HTTP upload, or for S3 the
/// object `<path>/test.txt.gz`. Other storage destinations are not checked.
async fn check_destination(shared: &Shared, destination: &Destination) -> Result<(), Response> {
    let timeout = Duration::from_secs(shared.logpush_spec.upload_timeout_secs);
    match destination {
        Destination::Http { url, headers } => {
            let client = destination::client(&shared.logpush_client);
            destination::upload(
                client,
                url,
                headers,
                destination::gzip(CHECK_CONTENT),
                timeout,
            )
            .await
            .map_err(|_| invalid(CHECK_FAILED))
        }
        Destination::S3(s3) => {
            let key = s3.check_key(shared.now().unix_timestamp());
            let result = match S3Writer::new(&shared.logpush_spec, s3, timeout) {
                Ok(writer) => {
                    writer
                        .put(&key, destination::gzip(CHECK_CONTENT), GZIP)
                        .await
                }
                Err(e) => Err(e),
            };
            result.map_err(|e| {
                invalid(&format!(
                    "error validating destination: error writing object: {}",
                    e.reason()
                ))
            })
        }
        Destination::Stored => Ok(()),
    }
}

/// The `ownership_challenge` of a create or of a PUT that changes the destination: required for Amazon S3 written
/// with Cloudflare's identity, checked whenever given for an S3 destination, ignored for the others.
fn check_ownership(
    shared: &Shared,
    zone: &str,
    config: &JobConfig,
    body: &Map<String, Value>,
) -> Result<(), Response> {
    let Destination::S3(s3) = &config.destination else {
        return Ok(());
    };
    let token = opt_str(body, "ownership_challenge")?.filter(|t| !t.trim().is_empty());
    let proven = match token {
        Some(token) => challenge::verify(shared, zone, &config.destination_conf, token),
        None => !s3.needs_challenge(),
    };
    if proven {
        Ok(())
    } else {
        Err(invalid(BAD_CHALLENGE))
    }
}

fn start_pusher(shared: &Arc<Shared>, job: &Job) {
    if job.enabled && job.config.destination.is_pushed() {
        pusher::spawn(shared.clone(), job.id, job.generation);
    }
}

/// `GET|POST /zones/{id}/logpush/jobs`.
pub(crate) async fn jobs(ctx: &mut Ctx, req: &Request, zone_id: &str) -> Handled {
    let caller = ctx.caller(req)?;
    let write = ctx.method == Method::POST;
    let needed = if write {
        Permission::LogsEdit
    } else {
        Permission::LogsRead
    };
    let zone = ctx.zone_for(&caller, zone_id, &[needed])?;
    ctx.apply_fault(EndpointKind::LogpushJobs)?;
    let shared = ctx.shared.clone();
    if !write {
        let list = lock(&shared.logpush)
            .jobs_in_zone(&zone.id)
            .map(Job::json)
            .collect();
        return Ok(respond::ok_list(list));
    }
    let body = body_object(&ctx.body)?;
    let config = job_config(settings_of(&body))?;
    let enabled = enabled_flag(&body)?.unwrap_or(false);
    let max_jobs = shared.logpush_spec.max_jobs_per_zone;
    let over_limit = |state: &super::LogpushState| state.jobs_in_zone(&zone.id).count() >= max_jobs;
    if over_limit(&lock(&shared.logpush)) {
        return Err(respond::error(StatusCode::BAD_REQUEST, 1004, MAX_JOBS));
    }
    check_ownership(&shared, &zone.id, &config, &body)?;
    check_destination(&shared, &config.destination).await?;
    let now = shared.now();
    let job = {
        let mut state = lock(&shared.logpush);
        // Checked again: another create may have finished while the destination was being checked.
        if over_limit(&state) {
            return Err(respond::error(StatusCode::BAD_REQUEST, 1004, MAX_JOBS));
        }
        let mut job = Job {
            id: state.next_job_id(),
            zone: zone.id.clone(),
            config,
            enabled,
            generation: 0,
            cursor: (i64::MIN, 0),
            last_complete: None,
            last_error: None,
            error_message: None,
        };
        job.enable_from(now);
        state.jobs.insert(job.id, job.clone());
        job
    };
    start_pusher(&shared, &job);
    Ok(respond::ok(job.json()))
}

/// `GET|PUT|DELETE /zones/{id}/logpush/jobs/{job_id}`.
pub(crate) async fn job(ctx: &mut Ctx, req: &Request, zone_id: &str, job_id: &str) -> Handled {
    let caller = ctx.caller(req)?;
    let write = ctx.method != Method::GET;
    let needed = if write {
        Permission::LogsEdit
    } else {
        Permission::LogsRead
    };
    let zone = ctx.zone_for(&caller, zone_id, &[needed])?;
    ctx.apply_fault(EndpointKind::LogpushJobs)?;
    let id: u64 = job_id.parse().map_err(|_| respond::no_route(&ctx.path))?;
    let shared = ctx.shared.clone();
    let current = lock(&shared.logpush)
        .jobs
        .get(&id)
        .filter(|j| j.zone == zone.id)
        .cloned();
    match ctx.method {
        // A job that does not exist reads as `result: null`, which clients take to mean "gone".
        Method::GET => Ok(respond::ok(current.as_ref().map_or(Value::Null, Job::json))),
        Method::DELETE => {
            let current = current.ok_or_else(not_found)?;
            let mut state = lock(&shared.logpush);
            if current.enabled {
                pusher::abandon(&mut state, &shared, id, "job deleted");
            }
            state.jobs.remove(&id);
            Ok(respond::ok(json!({"id": id})))
        }
        _ => {
            let current = current.ok_or_else(not_found)?;
            let body = body_object(&ctx.body)?;
            update(&shared, &zone.id, current, &body).await
        }
    }
}

async fn update(
    shared: &Arc<Shared>,
    zone: &str,
    current: Job,
    body: &Map<String, Value>,
) -> Handled {
    let mut raw = current.config.raw.clone();
    raw.extend(settings_of(body));
    if raw.get("dataset") != current.config.raw.get("dataset") {
        return Err(invalid("dataset cannot be changed"));
    }
    let config = job_config(raw)?;
    let enabled = enabled_flag(body)?.unwrap_or(current.enabled);
    if config.destination_conf != current.config.destination_conf {
        check_ownership(shared, zone, &config, body)?;
        check_destination(shared, &config.destination).await?;
    }
    let now = shared.now();
    let job = {
        let mut state = lock(&shared.logpush);
        let Some(job) = state.jobs.get_mut(&current.id) else {
            return Err(not_found());
        };
        let was_enabled = job.enabled;
        job.config = config;
        job.generation += 1;
        if enabled && !was_enabled {
            job.enable_from(now);
        }
        job.enabled = enabled;
        if was_enabled && !enabled {
            pusher::abandon(&mut state, shared, current.id, "job disabled");
        }
        state.jobs.get(&current.id).cloned().ok_or_else(not_found)?
    };
    start_pusher(shared, &job);
    Ok(respond::ok(job.json()))
}

/// `POST /zones/{id}/logpush/ownership`: for an S3 destination, write a fresh token to
/// `<path>/ownership-challenge-<8 hex>.txt` and answer that key; for other destinations answer a file name without
/// writing anything (they are never pushed to, or need no challenge).
pub(crate) async fn ownership(ctx: &mut Ctx, req: &Request, zone_id: &str) -> Handled {
    let caller = ctx.caller(req)?;
    let zone = ctx.zone_for(&caller, zone_id, &[Permission::LogsEdit])?;
    ctx.apply_fault(EndpointKind::LogpushJobs)?;
    let body = body_object(&ctx.body)?;
    let conf = opt_str(&body, "destination_conf")?
        .filter(|d| !d.is_empty())
        .ok_or_else(|| invalid("destination_conf is required"))?;
    let destination = Destination::parse(conf).map_err(|e| invalid(&e))?;
    let shared = ctx.shared.clone();
    let Destination::S3(s3) = destination else {
        let path = conf
            .split_once("://")
            .map_or("", |(_, rest)| rest)
            .split('?')
            .next()
            .unwrap_or_default()
            .trim_end_matches('/');
        let filename = format!(
            "{path}/ownership-challenge-{:08x}.txt",
            hash_str(conf) as u32
        );
        return Ok(respond::ok(
            json!({"filename": filename, "message": "", "valid": true}),
        ));
    };
    let issued = challenge::issue(&shared, &zone.id, conf);
    let key = s3.challenge_key(shared.now().unix_timestamp(), issued.tag);
    let timeout = Duration::from_secs(shared.logpush_spec.upload_timeout_secs);
    let written = match S3Writer::new(&shared.logpush_spec, &s3, timeout) {
        Ok(writer) => {
            writer
                .put(&key, bytes::Bytes::from(issued.token.clone()), TEXT)
                .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        return Err(invalid(&format!(
            "error writing ownership challenge: {}",
            e.reason()
        )));
    }
    challenge::remember(&shared, issued);
    Ok(respond::ok(
        json!({"filename": key, "message": "", "valid": true}),
    ))
}
