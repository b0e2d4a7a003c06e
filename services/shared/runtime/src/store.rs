//! Opens the object store `store.*` describes.

use std::sync::Arc;

use rainlogs_config::{Config, StoreSettings};
use rainlogs_integrity::BucketPrefix;
use rainlogs_store::{
    Backend, FileRepairQueue, FsStore, Replicated, S3Config, S3Credentials, S3Store, Store,
    StoreError,
};

/// The store plus the key prefix every object of this deployment lives under
/// (`s3://bucket/<prefix>`; empty for a directory store, whose root is the prefix).
#[derive(Clone)]
pub struct ObjectStore {
    pub store: Store,
    /// Checked once, here, by the layout's own rules (docs/FORMAT.md §2).
    pub prefix: BucketPrefix,
}

/// The key prefix of an `s3://bucket/<prefix>` URL (none for a directory).
fn url_prefix(url: &str) -> &str {
    url.strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .map_or("", |(_, prefix)| prefix.trim_end_matches('/'))
}

async fn backend(url: &str, settings: &StoreSettings) -> Result<Backend, StoreError> {
    let Some(rest) = url.strip_prefix("s3://") else {
        return Ok(Backend::Fs(FsStore::open(url).await?));
    };
    let bucket = rest.split_once('/').map_or(rest, |(bucket, _)| bucket);
    let mut config = S3Config::new(bucket);
    config.endpoint.clone_from(&settings.endpoint);
    config.region.clone_from(&settings.region);
    config.path_style = settings.path_style;
    config.credentials = match (&settings.access_key_id, &settings.secret_access_key) {
        (Some(id), Some(secret)) => Some(S3Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.expose().to_owned(),
            session_token: None,
        }),
        _ => None,
    };
    Ok(Backend::S3(S3Store::new(config)?))
}

/// Why the configured store cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// What [`store_problems`] found; each names its key.
    #[error("{}", .0.join("; "))]
    Settings(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What is wrong with `store.*` before anything is opened: `rainlogs config check`, `rainlogs
/// run` and [`open_store`] all ask this. Empty when the settings can be used.
pub fn store_problems(settings: &StoreSettings) -> Vec<String> {
    let mut problems = Vec::new();
    match settings.configured_url() {
        None => problems.push(
            "store.url is not set: say where archives go (s3://bucket/prefix, or a directory) \
             with store.url in the configuration file, --store-url or RAINLOGS__STORE__URL; \
             only --dev and --demo fall back to a local var/archive"
                .to_owned(),
        ),
        Some(url) => location_problems("store.url", url, &mut problems),
    }
    provider_problems("store", settings, &mut problems);
    if let Some(secondary) = &settings.secondary {
        match secondary.configured_url() {
            None => problems.push(
                "store.secondary.url is not set: the second provider needs its own \
                 s3://bucket/prefix (and endpoint, region and credentials where they differ)"
                    .into(),
            ),
            Some(url) => location_problems("store.secondary.url", url, &mut problems),
        }
        provider_problems("store.secondary", secondary, &mut problems);
        if secondary.secondary.is_some() {
            problems.push("store.secondary.secondary: there are two providers at most".into());
        }
        if same_location(settings, secondary) {
            problems.push(
                "store.secondary is the same bucket and prefix at the same endpoint as store.url: \
                 the replica must be a second location"
                    .into(),
            );
        }
    }
    problems
}

/// Endpoint, credentials and region of one provider (`section` is `store` or `store.secondary`).
fn provider_problems(section: &str, settings: &StoreSettings, problems: &mut Vec<String>) {
    if let Some(endpoint) = &settings.endpoint {
        // The S3 client takes any string and fails only on the first request; a scheme and a
        // host are what it needs.
        let host = endpoint
            .strip_prefix("https://")
            .or_else(|| endpoint.strip_prefix("http://"))
            .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
        if host.is_none_or(|h| h.is_empty() || h.contains(char::is_whitespace)) {
            problems.push(format!(
                "{section}.endpoint = {endpoint:?}: must be an http:// or https:// URL with a host"
            ));
        }
    }
    // One without the other used to fall back to the AWS environment chain without a word.
    match (&settings.access_key_id, &settings.secret_access_key) {
        (Some(_), None) => problems.push(format!(
            "{section}.access_key_id is set but {section}.secret_access_key(_file) is not; set \
             both, or neither to use the AWS credential chain"
        )),
        (None, Some(_)) => problems.push(format!(
            "{section}.secret_access_key is set but {section}.access_key_id is not; set both, or \
             neither to use the AWS credential chain"
        )),
        _ => {}
    }
    if settings.region.trim().is_empty() {
        problems.push(format!("{section}.region is empty"));
    }
}

fn same_location(primary: &StoreSettings, secondary: &StoreSettings) -> bool {
    let normalise = |url: &str| url.trim().trim_end_matches('/').to_owned();
    primary.configured_url().map(normalise) == secondary.configured_url().map(normalise)
        && primary.endpoint == secondary.endpoint
}

fn location_problems(key: &str, url: &str, problems: &mut Vec<String>) {
    if let Some(rest) = url.strip_prefix("s3://") {
        if rest.split('/').next().is_none_or(str::is_empty) {
            problems.push(format!("{key} = {url:?}: no bucket (s3://bucket/prefix)"));
        }
        if let Err(e) = BucketPrefix::new(url_prefix(url)) {
            problems.push(format!("{key} = {url:?}: {e}"));
        }
    } else if url.contains("://") {
        // Anything else would be taken for a directory named after the URL.
        problems.push(format!(
            "{key} = {url:?}: must be s3://bucket/prefix or a directory path"
        ));
    }
}

/// Opens `store.url` (and `store.secondary`, replicated, with the repair queue in the data
/// dir), once [`store_problems`] finds nothing wrong.
pub async fn open_store(config: &Config) -> Result<ObjectStore, OpenStoreError> {
    let problems = store_problems(&config.store);
    if !problems.is_empty() {
        return Err(OpenStoreError::Settings(problems));
    }
    let primary = backend(&config.store.url, &config.store).await?;
    // store_problems has checked both prefixes.
    let prefix = BucketPrefix::new(url_prefix(&config.store.url))
        .map_err(|e| OpenStoreError::Settings(vec![format!("store.url: {e}")]))?;
    let Some(secondary) = &config.store.secondary else {
        return Ok(ObjectStore {
            store: Store::Single(primary),
            prefix,
        });
    };
    let secondary_backend = backend(&secondary.url, secondary).await?;
    let queue = FileRepairQueue::new(config.service.data_dir.join("store-repair-queue.jsonl"));
    Ok(ObjectStore {
        store: Store::Replicated(Arc::new(
            Replicated::new(primary, secondary_backend, Arc::new(queue))
                .with_prefixes(prefix.as_str(), url_prefix(&secondary.url)),
        )),
        prefix,
    })
}
