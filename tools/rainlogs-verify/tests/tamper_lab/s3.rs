//! The same zone on a real S3 server (SeaweedFS from tools/dev-env), verified with the read+list-only auditor
//! identity, as an auditor would.

use bytes::Bytes;
use rainlogs_store::{ObjectKey, PutOptions};
use rainlogs_verify::Reason;

use crate::support::*;

fn auditor_env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn clean_zone_in_an_object_lock_bucket_verifies_with_read_only_credentials() {
    let (bucket, writer) = lab_bucket(true).await;
    let prefix = unique_prefix("clean");
    let zone = standard_zone(writer, &prefix, TENANT, ZONE, now_ns(), true).await;
    let env = auditor_env();
    let (code, stdout) = run_binary(
        &as_strs(&s3_args(&bucket, &prefix)),
        &auditor_env_refs(&env),
    );
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("\tOK: posture_locked: "), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .contains("\tVERIFIED: exit 0;"),
        "{stdout}"
    );

    let mut args = s3_args(&bucket, &prefix);
    args.extend(["--json".into(), "--deep".into()]);
    let (code, stdout) = run_binary(&as_strs(&args), &auditor_env_refs(&env));
    assert_eq!(code, 0, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["verdict"], "VERIFIED");
    assert_eq!(
        json["summary"]["archives_checked"],
        zone.live_archives().len()
    );

    // The logged object versions are the provider's.
    let report = rainlogs_verify::verify(&auditor_store(&bucket), &options_for(&prefix)).await;
    assert_verdict(
        &report,
        0,
        &[Reason::PostureLocked, Reason::ArchivesVerified],
    );
    assert!(zone.live_archives().iter().all(|a| {
        let entry = &zone.builder.entries[a.index as usize].entry;
        matches!(&entry.body, rainlogs_integrity::EntryBody::Archive(r) if !r.object.version.is_empty())
    }));
}

#[tokio::test]
async fn a_bucket_without_object_lock_is_a_posture_warning_only() {
    let (bucket, writer) = lab_bucket(false).await;
    let prefix = unique_prefix("nolock");
    standard_zone(writer, &prefix, TENANT, ZONE, now_ns(), true).await;
    let env = auditor_env();
    let (code, stdout) = run_binary(
        &as_strs(&s3_args(&bucket, &prefix)),
        &auditor_env_refs(&env),
    );
    assert_eq!(code, 3, "{stdout}");
    assert!(stdout.contains("\tWARNING: no_object_lock: "), "{stdout}");
    assert!(!stdout.contains("TAMPER"), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .contains("VERIFIED_WITH_POSTURE_WARNINGS: exit 3;")
    );
}

#[tokio::test]
async fn planted_objects_and_forged_checkpoints_are_caught_on_s3() {
    let (bucket, writer) = lab_bucket(true).await;
    let prefix = unique_prefix("attacks");
    let zone = standard_zone(writer.clone(), &prefix, TENANT, ZONE, now_ns(), true).await;
    let b = &zone.builder;
    let auditor = auditor_store(&bucket);

    let planted = ObjectKey::new(format!(
        "{}http_requests/2020/01/01/00/leftover.ndjson.zst",
        b.zone_prefix()
    ))
    .unwrap();
    writer
        .put_bytes(
            &planted,
            Bytes::from_static(b"not logged"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let report = rainlogs_verify::verify(&auditor, &options_for(&prefix)).await;
    assert_verdict(&report, 1, &[Reason::ObjectUnreferenced]);
    writer.delete(&planted).await.unwrap();
    assert_verdict(
        &rainlogs_verify::verify(&auditor, &options_for(&prefix)).await,
        0,
        &[],
    );

    let (size, root, _) = b.published.last().cloned().unwrap();
    b.put_latest(b.sign_with(&rogue_signer(), size, root).as_bytes())
        .await;
    let env = auditor_env();
    let (code, stdout) = run_binary(
        &as_strs(&s3_args(&bucket, &prefix)),
        &auditor_env_refs(&env),
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("\tTAMPER: untrusted_key: "), "{stdout}");
}

#[test]
fn an_unreachable_endpoint_exits_2() {
    let mut args = zone_args("s3://some-bucket/eu-archive");
    args.extend([
        "--endpoint".into(),
        "http://127.0.0.1:9".into(),
        "--path-style".into(),
    ]);
    let (code, stdout) = run_binary(
        &as_strs(&args),
        &[("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "y")],
    );
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.contains("INCOMPLETE: store_unreachable: "),
        "{stdout}"
    );
}
