//! The S3 store against the real SeaweedFS 4.48 from `tools/dev-env` (auth enforced).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    Generated, MIB, auditor_credentials, config, endpoint, hash_all, new_bucket, writer_credentials,
};
use futures::{StreamExt, TryStreamExt};
use rainlogs_store::{
    AddressPolicy, CheckStatus, DeleteOutcome, LockMode, ObjectKey, Presence, PutOptions, Role,
    S3Store, Sha256Hash, StoreError,
};
use time::OffsetDateTime;

fn key(text: &str) -> ObjectKey {
    ObjectKey::new(text).unwrap()
}

fn auditor_of(store: &S3Store) -> S3Store {
    S3Store::new(config(
        &store.config().bucket,
        endpoint(),
        auditor_credentials(),
    ))
    .unwrap()
}

#[tokio::test]
async fn large_object_round_trips_through_multipart_with_equal_bytes_and_hashes() {
    let store = new_bucket("roundtrip", false).await;
    let len = 23 * MIB as u64 + 4_321; // five 5 MiB parts, the last one short
    let object = key("rl/t1/z1/http_requests/2026/01/02/03/0300-big.ndjson.zst");
    let options = PutOptions {
        content_type: Some("application/zstd".into()),
        ..PutOptions::default()
    };
    let outcome = store
        .put_stream(&object, Generated::new(len, 11), &options)
        .await
        .unwrap();
    let expected = Generated::sha256(len, 11);
    assert_eq!(
        (outcome.presence, outcome.sha256, outcome.size),
        (Presence::Stored, expected, len)
    );

    let head = store.head(&object).await.unwrap().expect("object exists");
    assert_eq!(head.size, len);
    assert_eq!(
        head.sha256, None,
        "a multipart SHA-256 checksum is composite and must not pose as the object hash"
    );
    assert_eq!(head.content_type.as_deref(), Some("application/zstd"));
    let reader = store.get(&object).await.unwrap();
    assert_eq!(reader.size, Some(len));
    assert_eq!(
        hash_all(reader).await,
        (expected, len),
        "bytes read back differ from bytes written"
    );
}

#[tokio::test]
async fn single_put_objects_keep_the_provider_verified_sha256() {
    let store = new_bucket("single", false).await;
    let object = key("rl/t1/z1/tlog/checkpoint");
    let body = Generated::bytes(3 * MIB, 12);
    let outcome = store
        .put_bytes(&object, body.clone().into(), &PutOptions::default())
        .await
        .unwrap();
    let head = store.head(&object).await.unwrap().unwrap();
    assert_eq!(head.sha256, Some(Sha256Hash::of(&body)));
    assert_eq!(outcome.sha256, Sha256Hash::of(&body));
    assert!(store.head(&key("rl/t1/z1/absent")).await.unwrap().is_none());
    assert!(matches!(
        store.get(&key("rl/t1/z1/absent")).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn overwrite_is_refused_identical_reput_is_idempotent_and_a_difference_is_an_incident() {
    let store = new_bucket("overwrite", false).await;
    for (name, len) in [("small", 1_000u64), ("multipart", 12 * MIB as u64 + 1)] {
        let object = key(&format!("rl/t1/z1/{name}"));
        let first = store
            .put_stream(&object, Generated::new(len, 21), &PutOptions::default())
            .await
            .unwrap();
        assert_eq!(first.presence, Presence::Stored, "{name}");

        let again = store
            .put_stream(&object, Generated::new(len, 21), &PutOptions::default())
            .await
            .unwrap();
        assert_eq!(
            again.presence,
            Presence::AlreadyPresent,
            "{name}: identical re-put must succeed idempotently"
        );
        assert_eq!(again.sha256, first.sha256);

        let error = store
            .put_stream(&object, Generated::new(len, 22), &PutOptions::default())
            .await
            .unwrap_err();
        let incident = error.incident().unwrap_or_else(|| {
            panic!("{name}: different content must be an incident, got {error:?}")
        });
        assert_eq!(incident.key, object.as_str());
        assert_eq!(incident.existing_sha256, Generated::sha256(len, 21));
        assert_eq!(incident.attempted_sha256, Generated::sha256(len, 22));
        assert!(
            incident
                .to_string()
                .contains(&incident.existing_sha256.to_hex())
        );
        let (stored, _) = hash_all(store.get(&object).await.unwrap()).await;
        assert_eq!(
            stored, first.sha256,
            "{name}: the original must be untouched"
        );
    }
    let uploads = raw_client(&store)
        .list_multipart_uploads()
        .bucket(&store.config().bucket)
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "refused multipart uploads must be aborted: {:?}",
        uploads.uploads()
    );
}

fn raw_client(store: &S3Store) -> aws_sdk_s3::Client {
    let credentials = writer_credentials();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            credentials.access_key_id,
            credentials.secret_access_key,
            None,
            None,
            "test",
        ))
        .build();
    let _ = store;
    aws_sdk_s3::Client::from_conf(config)
}

#[tokio::test]
async fn the_server_rejects_a_wrong_checksum_and_the_probe_sees_it() {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    let store = new_bucket("checksum", false).await;
    let client = raw_client(&store);
    let rejected = client
        .put_object()
        .bucket(&store.config().bucket)
        .key("wrong")
        .checksum_sha256(Sha256Hash::of(b"other bytes").to_base64())
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"these bytes",
        ))
        .send()
        .await
        .expect_err("SeaweedFS must refuse bytes that do not match x-amz-checksum-sha256");
    assert_eq!(rejected.code(), Some("BadDigest"));
    assert!(
        store.head(&key("wrong")).await.unwrap().is_none(),
        "a rejected put must leave no object"
    );

    let posture = store.probe(Role::Only).await;
    assert_eq!(
        posture.checksum_verification.status,
        CheckStatus::Enforced,
        "{posture:?}"
    );
}

#[tokio::test]
async fn object_lock_retain_until_is_visible_and_refuses_early_delete() {
    let store = new_bucket("lock", true).await;
    let object = key("rl/t1/z1/locked");
    let retain_until = OffsetDateTime::now_utc() + time::Duration::seconds(90);
    let options = PutOptions {
        retain_until: Some(retain_until),
        ..PutOptions::default()
    };
    let outcome = store
        .put_bytes(&object, "archive".into(), &options)
        .await
        .unwrap();
    assert!(
        outcome.version_id.is_some(),
        "an Object Lock bucket is versioned"
    );

    let head = store.head(&object).await.unwrap().unwrap();
    let lock = head.lock.expect("retention must be visible on head");
    assert_eq!(lock.mode, LockMode::Compliance);
    let expected = retain_until.replace_nanosecond(0).unwrap() + time::Duration::seconds(1);
    assert_eq!(
        lock.retain_until, expected,
        "retain-until is rounded up to whole seconds, never down"
    );

    let error = store.delete(&object).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::RetentionRefused { retain_until: Some(until), .. } if *until == expected),
        "early delete must be refused by Object Lock, got {error:?}"
    );
    assert!(error.is_alarm() && !error.is_retryable());
    assert_eq!(store.get_bytes(&object).await.unwrap(), "archive");

    let multipart = key("rl/t1/z1/locked-multipart");
    store
        .put_stream(&multipart, Generated::new(11 * MIB as u64, 5), &options)
        .await
        .unwrap();
    let head = store.head(&multipart).await.unwrap().unwrap();
    assert_eq!(
        head.lock.map(|lock| lock.mode),
        Some(LockMode::Compliance),
        "multipart uploads are locked too"
    );
    assert!(matches!(
        store.delete(&multipart).await,
        Err(StoreError::RetentionRefused { .. })
    ));
}

#[tokio::test]
async fn delete_succeeds_once_retention_has_passed() {
    let store = new_bucket("expiry", true).await;
    let object = key("rl/t1/z1/expiring");
    let options = PutOptions {
        retain_until: Some(OffsetDateTime::now_utc() + time::Duration::seconds(2)),
        ..PutOptions::default()
    };
    store
        .put_bytes(&object, "short-lived".into(), &options)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        store.delete(&object).await.unwrap(),
        DeleteOutcome::Deleted { versions: 1 }
    );
    assert!(store.head(&object).await.unwrap().is_none());
    let versions = raw_client(&store)
        .list_object_versions()
        .bucket(&store.config().bucket)
        .prefix(object.as_str())
        .send()
        .await
        .unwrap();
    assert!(
        versions.versions().is_empty() && versions.delete_markers().is_empty(),
        "no version may remain"
    );
    assert_eq!(
        store.delete(&object).await.unwrap(),
        DeleteOutcome::NotFound
    );
}

#[tokio::test]
async fn posture_of_a_lock_bucket_is_clean_and_a_plain_bucket_warns_about_object_lock() {
    let locked = new_bucket("posture-lock", true).await;
    let posture = locked.probe(Role::Only).await;
    assert_eq!(
        posture.versioning.status,
        CheckStatus::Enforced,
        "{posture:#?}"
    );
    assert_eq!(
        posture.object_lock.status,
        CheckStatus::Enforced,
        "{posture:#?}"
    );
    assert_eq!(
        posture.per_object_retention.status,
        CheckStatus::Enforced,
        "{posture:#?}"
    );
    assert_eq!(
        posture.conditional_put.status,
        CheckStatus::Enforced,
        "{posture:#?}"
    );
    assert_eq!(
        posture.conditional_multipart_complete.status,
        CheckStatus::Enforced,
        "{posture:#?}"
    );
    assert_eq!(
        posture.checksum_verification.status,
        CheckStatus::Enforced,
        "{posture:#?}"
    );
    assert!(posture.warnings.is_empty(), "{:?}", posture.warnings);

    let plain = new_bucket("posture-plain", false).await;
    let posture = plain.probe(Role::Only).await;
    assert_eq!(posture.object_lock.status, CheckStatus::Missing);
    assert_eq!(posture.per_object_retention.status, CheckStatus::Missing);
    assert_eq!(posture.conditional_put.status, CheckStatus::Enforced);
    assert!(
        posture
            .warnings
            .iter()
            .any(|warning| warning.contains("no Object Lock")),
        "missing Object Lock must be a warning: {:?}",
        posture.warnings
    );
    let json = serde_json::to_string(&posture).unwrap();
    assert!(
        !json.contains(&writer_credentials().secret_access_key),
        "posture must not carry secrets"
    );

    // Without Object Lock, a retain-until cannot be applied: the put still stores the archive, unlocked, and
    // the posture above is what tells the operator.
    let object = key("rl/t1/z1/unlocked");
    let options = PutOptions {
        retain_until: Some(OffsetDateTime::now_utc() + time::Duration::days(1)),
        ..PutOptions::default()
    };
    plain
        .put_bytes(&object, "x".into(), &options)
        .await
        .unwrap();
    assert_eq!(plain.head(&object).await.unwrap().unwrap().lock, None);
}

#[tokio::test]
async fn auditor_credentials_read_and_list_but_cannot_write_or_delete() {
    let store = new_bucket("auditor", false).await;
    let object = key("rl/t1/z1/evidence");
    store
        .put_bytes(&object, "evidence".into(), &PutOptions::default())
        .await
        .unwrap();
    let auditor = auditor_of(&store);

    assert_eq!(auditor.get_bytes(&object).await.unwrap(), "evidence");
    assert_eq!(auditor.head(&object).await.unwrap().unwrap().size, 8);
    let listed: Vec<String> = auditor
        .list("rl/")
        .map_ok(|object| object.key)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed, [object.to_string()]);

    let write = auditor
        .put_bytes(&key("rl/t1/z1/planted"), "x".into(), &PutOptions::default())
        .await;
    assert!(
        matches!(write, Err(StoreError::AccessDenied { .. })),
        "auditor write must be denied: {write:?}"
    );
    let large = auditor
        .put_stream(
            &key("rl/t1/z1/planted-big"),
            Generated::new(11 * MIB as u64, 3),
            &PutOptions::default(),
        )
        .await;
    assert!(
        matches!(large, Err(StoreError::AccessDenied { .. })),
        "auditor multipart must be denied: {large:?}"
    );
    let delete = auditor.delete(&object).await;
    assert!(
        matches!(delete, Err(StoreError::AccessDenied { .. })),
        "auditor delete must be denied: {delete:?}"
    );
    assert!(store.head(&object).await.unwrap().is_some());

    let posture = auditor.probe(Role::Only).await;
    assert_eq!(
        posture.conditional_put.status,
        CheckStatus::Unknown,
        "read-only credentials cannot probe writes"
    );
    assert!(
        posture.conditional_put.detail.contains("denied"),
        "{}",
        posture.conditional_put.detail
    );
}

#[tokio::test]
async fn listing_pages_through_more_than_one_thousand_objects() {
    let store = new_bucket("list", false).await;
    let names: BTreeSet<String> = (0..1_100)
        .map(|i| format!("rl/t1/z1/d/{:02}/obj-{i:05}", i % 7))
        .collect();
    futures::stream::iter(names.iter().cloned())
        .for_each_concurrent(16, |name| {
            let store = store.clone();
            async move {
                store
                    .put_bytes(
                        &key(&name),
                        name.clone().into_bytes().into(),
                        &PutOptions::default(),
                    )
                    .await
                    .unwrap();
            }
        })
        .await;
    store
        .put_bytes(&key("rl/t1/z2/other"), "o".into(), &PutOptions::default())
        .await
        .unwrap();
    let listed: Vec<String> = store
        .list("rl/t1/z1/")
        .map_ok(|object| object.key)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        names.len(),
        "every object exactly once across pages"
    );
    assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), names);
}

#[tokio::test]
async fn a_key_that_is_a_directory_of_other_keys_is_a_permanent_error() {
    // SeaweedFS keeps objects in a filer tree: `p/a` cannot be an object while `p/a/b` exists (S3 allows it).
    // It answers 412 to the conditional PUT although HEAD finds nothing.
    let store = new_bucket("prefix", false).await;
    store
        .put_bytes(&key("p/a/b"), "leaf".into(), &PutOptions::default())
        .await
        .unwrap();
    let error = store
        .put_bytes(&key("p/a"), "x".into(), &PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::KeyIsPrefix { .. }), "{error:?}");
    assert!(!error.is_retryable());
}

/// A bucket a tenant names is reached only at public addresses: the dev SeaweedFS on loopback is
/// refused whether the endpoint is an IP literal (at configuration) or a name that resolves to
/// loopback (at every lookup), and the same bucket reads fine where private networks are allowed.
#[tokio::test]
async fn a_public_only_client_cannot_reach_a_loopback_bucket() {
    let store = new_bucket("public-only", false).await;
    let bucket = store.config().bucket.clone();
    let key = key("probe/one.txt");
    store
        .put_bytes(&key, b"one".to_vec().into(), &PutOptions::default())
        .await
        .expect("put");

    let literal = endpoint();
    let mut refused = config(&bucket, literal.clone(), writer_credentials());
    refused.addresses = AddressPolicy::PublicOnly;
    let error = S3Store::new(refused).expect_err("a loopback literal is refused");
    assert!(
        error.to_string().contains("not a public address"),
        "{error}"
    );

    let by_name = literal.replace("127.0.0.1", "localhost");
    assert_ne!(by_name, literal, "the dev endpoint is a loopback literal");
    let mut named = config(&bucket, by_name.clone(), writer_credentials());
    named.addresses = AddressPolicy::PublicOnly;
    let error = S3Store::new(named)
        .expect("a name is checked when it is looked up")
        .get_bytes(&key)
        .await
        .expect_err("localhost resolves to loopback");
    assert!(
        format!("{error:?}").contains("not a public address"),
        "{error:?}"
    );

    let mut allowed = config(&bucket, by_name, writer_credentials());
    allowed.addresses = AddressPolicy::AllowPrivate;
    let read = S3Store::new(allowed)
        .expect("client")
        .get_bytes(&key)
        .await
        .expect("private networks allowed");
    assert_eq!(&read[..], b"one");
}
