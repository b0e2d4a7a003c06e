//! Opens the object store `store.*` describes.

use std::sync::Arc;

use rainlogs_config::{Config, StoreSettings};
use rainlogs_store::{
    Backend, FileRepairQueue, FsStore, Replicated, S3Config, S3Credentials, S3Store, Store,
    StoreError,
};

/// The store plus the key prefix every object of this deployment lives under
/// (`s3://bucket/<prefix>`; empty for a directory store, whose root is the prefix).
#[derive(Clone)]
pub struct ObjectStore {
    pub store: Store,
    pub prefix: String,
}

async fn backend(url: &str, settings: &StoreSettings) -> Result<(Backend, String), StoreError> {
    let Some(rest) = url.strip_prefix("s3://") else {
        return Ok((Backend::Fs(FsStore::open(url).await?), String::new()));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
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
    Ok((
        Backend::S3(S3Store::new(config)?),
        prefix.trim_end_matches('/').to_owned(),
    ))
}

/// Opens `store.url` (and `store.secondary_url`, replicated, with the repair queue in the data dir).
pub async fn open_store(config: &Config) -> Result<ObjectStore, StoreError> {
    let (primary, prefix) = backend(&config.store.url, &config.store).await?;
    let Some(secondary_url) = &config.store.secondary_url else {
        return Ok(ObjectStore {
            store: Store::Single(primary),
            prefix,
        });
    };
    let (secondary, _) = backend(secondary_url, &config.store).await?;
    let queue = FileRepairQueue::new(config.service.data_dir.join("store-repair-queue.jsonl"));
    Ok(ObjectStore {
        store: Store::Replicated(Arc::new(Replicated::new(
            primary,
            secondary,
            Arc::new(queue),
        ))),
        prefix,
    })
}
