//! FORMAT.md §10 ("Copies: the sealing copy and replicas") on a real S3 server: a zone sealed in one Object
//! Lock bucket is copied object by object into another (same keys, the replica's own version ids, each object's
//! retention copied, as RainLogs' repair does), then verified with the auditor identity with and without
//! `--replica`. Damaged replicas (a changed byte, a missing archive, retention shorter than logged or none) are
//! each caught with their own reason and a non-zero exit.

use bytes::Bytes;
use futures::TryStreamExt as _;
use rainlogs_integrity::EntryBody;
use rainlogs_store::{ObjectKey, PutOptions, Store};
use rainlogs_verify::{CopyRole, Reason, Report, Status};

use crate::support::*;

fn auditor_env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// What goes wrong with one archive on its way to the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// One bit of the first byte flipped.
    ChangedByte,
    /// Not copied.
    Missing,
    /// COMPLIANCE retention an hour before the logged retain-until.
    ShorterRetention,
    /// Copied without Object Lock retention.
    NoRetention,
}

/// Copies every object under `zone_prefix` from `from` to `to` under `to_zone_prefix` (the same key when they
/// are equal; a new version there), with the source's Object Lock retain-until and the SHA-256 of what is
/// written; `damage` applies to `damaged`.
async fn copy_zone(
    from: &Store,
    to: &Store,
    zone_prefix: &str,
    to_zone_prefix: &str,
    damaged: Option<(&str, Damage)>,
) {
    let listed: Vec<_> = from.list(zone_prefix).try_collect().await.unwrap();
    assert!(!listed.is_empty(), "nothing under {zone_prefix}");
    for object in listed {
        let key = ObjectKey::new(object.key.clone()).unwrap();
        let to_key = ObjectKey::new(format!(
            "{to_zone_prefix}{}",
            object.key.strip_prefix(zone_prefix).unwrap()
        ))
        .unwrap();
        let head = from.head(&key).await.unwrap().unwrap();
        let mut bytes = from.get_bytes(&key).await.unwrap().to_vec();
        let mut retain_until = head.lock.as_ref().map(|lock| lock.retain_until);
        match damaged {
            Some((target, damage)) if target == object.key => match damage {
                Damage::ChangedByte => bytes[0] ^= 0x01,
                Damage::Missing => continue,
                Damage::ShorterRetention => {
                    retain_until = retain_until.map(|until| until - time::Duration::HOUR);
                }
                Damage::NoRetention => retain_until = None,
            },
            _ => {}
        }
        let options = PutOptions {
            sha256: Some(rainlogs_store::Sha256Hash(
                rainlogs_integrity::Sha256Hash::digest(&bytes).0,
            )),
            retain_until,
            content_type: head.content_type.clone(),
        };
        to.put_bytes(&to_key, Bytes::from(bytes), &options)
            .await
            .unwrap();
    }
}

/// A standard zone sealed in the Object Lock lab bucket and its copy in the replica bucket; the damaged
/// archive is the second live `http_requests` archive.
struct Replicated {
    prefix: String,
    primary: String,
    replica: String,
    zone: StandardZone,
    damaged: Option<StoredArchive>,
}

async fn replicated(purpose: &str, damage: Option<Damage>) -> Replicated {
    let (primary, writer) = lab_bucket(true).await;
    let (replica, replica_writer) = replica_bucket().await;
    let prefix = unique_prefix(purpose);
    let zone = standard_zone(writer.clone(), &prefix, TENANT, ZONE, now_ns(), true).await;
    let damaged = damage.map(|_| {
        (*zone
            .live_archives()
            .iter()
            .filter(|a| a.dataset == "http_requests")
            .nth(1)
            .unwrap())
        .clone()
    });
    let target = damaged.as_ref().map(|a| a.key.as_str()).zip(damage);
    let zone_prefix = zone.builder.zone_prefix();
    copy_zone(&writer, &replica_writer, &zone_prefix, &zone_prefix, target).await;
    Replicated {
        prefix,
        primary,
        replica,
        zone,
        damaged,
    }
}

impl Replicated {
    async fn verify(&self, bucket: &str, copy: CopyRole) -> Report {
        let mut options = options_for(&self.prefix);
        options.copy = copy;
        rainlogs_verify::verify(&auditor_store(bucket), &options).await
    }

    /// Runs the binary against `bucket` with `extra` arguments, as the auditor identity.
    fn run(&self, bucket: &str, extra: &[&str]) -> (i32, String) {
        let mut args = s3_args(bucket, &self.prefix);
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let env = auditor_env();
        run_binary(&as_strs(&args), &auditor_env_refs(&env))
    }

    fn damaged_key(&self) -> &str {
        &self.damaged.as_ref().unwrap().key
    }
}

/// The findings with `reason`, as (path, status).
fn with_reason(report: &Report, reason: Reason) -> Vec<(&str, Status)> {
    report
        .findings
        .iter()
        .filter(|f| f.reason == reason)
        .map(|f| (f.path.as_str(), f.status()))
        .collect()
}

#[tokio::test]
async fn a_whole_replica_verifies_as_a_replica_and_not_as_the_sealing_copy() {
    let r = replicated("replica-whole", None).await;
    let live = r.zone.live_archives();

    // The replica really has other version ids than the ones logged.
    let replica_store = auditor_store(&r.replica);
    for archive in &live {
        let entry = &r.zone.builder.entries[archive.index as usize].entry;
        let EntryBody::Archive(record) = &entry.body else {
            panic!("entry {} is not an archive", archive.index);
        };
        let head = replica_store
            .head(&ObjectKey::new(archive.key.clone()).unwrap())
            .await
            .unwrap()
            .unwrap();
        let version = head.version_id.unwrap();
        assert!(!record.object.version.is_empty());
        assert_ne!(version, record.object.version, "{}", archive.key);
    }

    // Under the replica rule it is whole: exit 0, every archive accepted by bytes and retention.
    let report = r.verify(&r.replica, CopyRole::Replica).await;
    assert_verdict(
        &report,
        0,
        &[
            Reason::ArchivesVerified,
            Reason::PostureLocked,
            Reason::VersionsNotCompared,
            Reason::InventoryClean,
            Reason::TlogFilesVerified,
            Reason::LogVerified,
        ],
    );
    assert_eq!(report.summary.archives_checked, live.len() as u64);
    let note = report
        .findings
        .iter()
        .find(|f| f.reason == Reason::VersionsNotCompared)
        .unwrap();
    assert!(
        note.message.contains(&format!(
            "of {n} archives read, {n} are other versions than logged, 0 the logged version",
            n = live.len()
        )),
        "{}",
        note.message
    );

    let (code, stdout) = r.run(&r.replica, &["--replica"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("\tINFO: versions_not_compared: "),
        "{stdout}"
    );
    assert!(stdout.contains("\tOK: posture_locked: "), "{stdout}");
    let summary = stdout.lines().last().unwrap();
    assert!(summary.contains("\tVERIFIED: exit 0;"), "{stdout}");
    assert!(
        summary.contains("; copy replica (logged object versions not compared);"),
        "{summary}"
    );

    let (code, stdout) = r.run(&r.replica, &["--replica", "--json", "--deep"]);
    assert_eq!(code, 0, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["copy"], "replica");
    assert_eq!(json["verdict"], "VERIFIED");
    assert_eq!(json["summary"]["archives_checked"], live.len());

    // Verified as the sealing copy, every archive's version is "wrong": that is the issue --replica solves.
    let report = r.verify(&r.replica, CopyRole::Primary).await;
    assert_verdict(&report, 1, &[Reason::ArchiveVersionMismatch]);
    assert_eq!(
        tamper_reasons(&report),
        vec![Reason::ArchiveVersionMismatch],
        "{}",
        report.to_human()
    );
    assert_eq!(
        with_reason(&report, Reason::ArchiveVersionMismatch).len(),
        live.len()
    );
    let (code, stdout) = r.run(&r.replica, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("\tTAMPER: archive_version_mismatch: "),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .contains("; copy primary (logged object versions compared);"),
        "{stdout}"
    );

    // The sealing copy is unchanged by all this: exit 0 under its own rule, and under the replica rule too.
    let (code, stdout) = r.run(&r.primary, &["--json"]);
    assert_eq!(code, 0, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["copy"], "primary");
    assert!(
        !stdout.contains("versions_not_compared"),
        "the sealing copy's rule compares versions: {stdout}"
    );
    let report = r.verify(&r.primary, CopyRole::Replica).await;
    assert_verdict(&report, 0, &[Reason::VersionsNotCompared]);
}

#[tokio::test]
async fn a_changed_byte_in_a_replica_archive_is_tamper_evidence() {
    let r = replicated("replica-byte", Some(Damage::ChangedByte)).await;
    let report = r.verify(&r.replica, CopyRole::Replica).await;
    assert_verdict(&report, 1, &[Reason::StoredSha256Mismatch]);
    assert_eq!(tamper_reasons(&report), vec![Reason::StoredSha256Mismatch]);
    assert_eq!(
        with_reason(&report, Reason::StoredSha256Mismatch),
        vec![(r.damaged_key(), Status::Tamper)]
    );
    assert!(!report.has(Reason::ArchivesVerified));
    let (code, stdout) = r.run(&r.replica, &["--replica"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "archive\t{}\tTAMPER: stored_sha256_mismatch: ",
            r.damaged_key()
        )),
        "{stdout}"
    );
    // --deep reads the same bytes and says the same.
    let (code, stdout) = r.run(&r.replica, &["--replica", "--deep"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("TAMPER: stored_sha256_mismatch: "),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_missing_replica_archive_is_tamper_evidence() {
    let r = replicated("replica-missing", Some(Damage::Missing)).await;
    let report = r.verify(&r.replica, CopyRole::Replica).await;
    assert_verdict(&report, 1, &[Reason::ArchiveMissing]);
    assert_eq!(tamper_reasons(&report), vec![Reason::ArchiveMissing]);
    assert_eq!(
        with_reason(&report, Reason::ArchiveMissing),
        vec![(r.damaged_key(), Status::Tamper)]
    );
    let (code, stdout) = r.run(&r.replica, &["--replica"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "archive\t{}\tTAMPER: archive_missing: ",
            r.damaged_key()
        )),
        "{stdout}"
    );
}

/// A replica archive without enough retention: named by key as a posture warning (exit 3), nothing else.
async fn retention_case(purpose: &str, damage: Damage, reason: Reason, code_text: &str) {
    let r = replicated(purpose, Some(damage)).await;
    let report = r.verify(&r.replica, CopyRole::Replica).await;
    assert_verdict(&report, 3, &[reason, Reason::ArchivesVerified]);
    assert_eq!(
        with_reason(&report, reason),
        vec![(r.damaged_key(), Status::Warning)],
        "{}",
        report.to_human()
    );
    assert!(!report.has(Reason::PostureLocked), "{}", report.to_human());
    let finding = report.findings.iter().find(|f| f.reason == reason).unwrap();
    let index = r.damaged.as_ref().unwrap().index;
    assert!(
        finding.message.contains(&format!("entry {index}: ")),
        "{}",
        finding.message
    );
    let (code, stdout) = r.run(&r.replica, &["--replica"]);
    assert_eq!(code, 3, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "posture\t{}\tWARNING: {code_text}: ",
            r.damaged_key()
        )),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .contains("VERIFIED_WITH_POSTURE_WARNINGS: exit 3;"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_replica_archive_retained_shorter_than_logged_is_named() {
    retention_case(
        "replica-short",
        Damage::ShorterRetention,
        Reason::RetentionShorter,
        "retention_shorter",
    )
    .await;
}

#[tokio::test]
async fn a_replica_archive_without_retention_is_named() {
    retention_case(
        "replica-nolock",
        Damage::NoRetention,
        Reason::NoObjectLock,
        "no_object_lock",
    )
    .await;
}

#[tokio::test]
async fn a_directory_copy_verified_as_a_replica_has_no_lock_to_judge() {
    let zone = DirZone::new().await;
    let mut options = zone.options();
    options.copy = CopyRole::Replica;
    let report = zone.verify_with(options).await;
    assert_verdict(
        &report,
        0,
        &[
            Reason::VersionsNotCompared,
            Reason::PostureNotApplicable,
            Reason::ArchivesVerified,
        ],
    );
    assert_eq!(report.to_json()["copy"], "replica");
    let (code, stdout) = run_binary(
        &as_strs(&{
            let mut args = zone_args(&dir_arg(zone.root()));
            args.extend(["--prefix".into(), PREFIX.into(), "--replica".into()]);
            args
        }),
        &[],
    );
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("copy replica"), "{stdout}");
}

#[tokio::test]
async fn a_replica_under_another_prefix_verifies_with_the_sealing_prefix() {
    let (primary, writer) = lab_bucket(true).await;
    let (replica, replica_writer) = replica_bucket().await;
    let prefix = unique_prefix("replica-rebased");
    let zone = standard_zone(writer.clone(), &prefix, TENANT, ZONE, now_ns(), true).await;
    let replica_prefix = format!("mirror/{prefix}");
    let origin = &zone.builder.origin;
    let replica_zone = rainlogs_integrity::BucketPrefix::new(&replica_prefix)
        .unwrap()
        .zone_prefix(origin);
    copy_zone(
        &writer,
        &replica_writer,
        &zone.builder.zone_prefix(),
        &replica_zone,
        None,
    )
    .await;
    let env = auditor_env();
    let run = |extra: &[&str]| {
        let mut args = s3_args(&replica, &replica_prefix);
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        run_binary(&as_strs(&args), &auditor_env_refs(&env))
    };

    // Told the sealing copy's prefix, the replica is whole.
    let (code, stdout) = run(&["--replica", "--sealing-prefix", &prefix]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("\tOK: archives_verified: "), "{stdout}");
    assert!(stdout.contains("\tOK: inventory_clean: "), "{stdout}");
    assert!(stdout.contains("\tOK: posture_locked: "), "{stdout}");
    let mut options = options_for(&replica_prefix);
    options.copy = CopyRole::Replica;
    options.sealing_prefix = Some(rainlogs_integrity::BucketPrefix::new(&prefix).unwrap());
    let report = rainlogs_verify::verify(&auditor_store(&replica), &options).await;
    assert_verdict(&report, 0, &[Reason::VersionsNotCompared]);
    assert_eq!(
        report.summary.archives_checked,
        zone.live_archives().len() as u64
    );

    // Without it every logged key names another prefix than the replica's: nothing matches, and the
    // verifier says what is missing.
    let (code, stdout) = run(&["--replica"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("TAMPER: archive_key_noncanonical: ")
            && stdout.contains("needs --sealing-prefix"),
        "{stdout}"
    );
    // --sealing-prefix belongs to the replica rule only.
    let mut args = s3_args(&replica, &replica_prefix);
    args.extend(["--sealing-prefix".into(), prefix.clone()]);
    let (code, _) = run_binary(&as_strs(&args), &auditor_env_refs(&env));
    assert_eq!(code, 2);
    // The sealing copy itself is untouched by the copy.
    let (code, stdout) = run_binary(
        &as_strs(&s3_args(&primary, &prefix)),
        &auditor_env_refs(&env),
    );
    assert_eq!(code, 0, "{stdout}");
}
