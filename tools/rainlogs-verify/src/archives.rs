//! Archive objects: every logged archive is present and its stored bytes have the logged size and SHA-256
//! (deep mode: they decompress to the logged content SHA-256 and record count), unless a valid prune entry
//! covers its absence. Where the store can tell, each object's Object Lock retention is compared with the
//! logged retain-until.
//!
//! FORMAT.md §10 ("Copies: the sealing copy and replicas") is followed step by step: A1 key and single
//! reference, A2 presence, A3 stored bytes (and content in deep mode), A4 version (the sealing copy only), A5
//! Object Lock retention. On a replica ([`CopyRole::Replica`]) A4 is not done, and A5 is judged for the very
//! version whose bytes were read and reported per archive.
//!
//! A `late` entry's object is an archive object (FORMAT.md §3) under a late key (§2), so every step here
//! treats it exactly as an archive entry's; only the key A1 derives differs.
//!
//! An `index` entry's object (§12) goes through the same steps A2–A5 (its key was checked with the entry,
//! `indexes.rs`). Deep mode decodes it and checks it names its archive's bytes; and each indexed archive's
//! content is indexed again and must give the logged index bytes exactly.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read};
use std::rc::Rc;

use futures::{StreamExt as _, stream};
use rainlogs_integrity::framing::ArchiveReader;
use rainlogs_integrity::{EntryBody, EntryKind, Sha256Hash};
use rainlogs_store::{LockMode, ObjectLock, ObjectReader, Store};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;
use tokio_util::io::SyncIoBridge;

use crate::finding::{Finding, Kind, Reason, Status};
use crate::indexes::SealedIndex;
use crate::inventory;
use crate::log::LoggedEntry;
use crate::options::{CopyRole, VerifyOptions, format_ns};
use crate::report::{Findings, Summary};
use crate::source::{self, Listing, ReadFailure};

/// Read size for hashing stored bytes.
const READ_CHUNK: usize = 1 << 20;

/// One archive object to read, with what its entry says about it.
#[derive(Debug, Clone)]
struct Job {
    index: u64,
    key: String,
    version: String,
    stored_size: u64,
    stored_sha256: Sha256Hash,
    content_sha256: Sha256Hash,
    record_count: u64,
    retain_until_ns: u64,
    /// An archive with an index entry: the SHA-256 the index its content rebuilds to must have.
    index_sha256: Option<Sha256Hash>,
    /// An index object: the archive bytes it must name.
    indexes: Option<IndexOf>,
}

/// The archive an index object describes (its header names both hashes).
#[derive(Debug, Clone, Copy)]
struct IndexOf {
    target: u64,
    stored_sha256: Sha256Hash,
    content_sha256: Sha256Hash,
}

/// Longest index object deep mode reads whole (an index is about 3 % of its archive).
const MAX_INDEX_LEN: u64 = 256 << 20;

/// What HEAD said about an object's retention.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lock {
    NotChecked,
    Locked,
    None,
    Governance,
    Shorter { object_until: String },
    Failed(ReadFailure),
}

impl Lock {
    /// The A5 finding a judged retention gives, if any (FORMAT.md §10.2).
    fn reason(&self) -> Option<Reason> {
        match self {
            Lock::NotChecked | Lock::Locked => None,
            Lock::None => Some(Reason::NoObjectLock),
            Lock::Governance => Some(Reason::GovernanceMode),
            Lock::Shorter { .. } => Some(Reason::RetentionShorter),
            Lock::Failed(failure) => Some(failure.reason),
        }
    }
}

#[derive(Debug)]
struct Outcome {
    job: Job,
    /// The object was found and its bytes were read (A2 passed).
    opened: bool,
    /// The version id the provider reported with the bytes read, if any.
    version_read: Option<String>,
    bytes_read: u64,
    findings: Vec<Finding>,
    lock: Lock,
}

/// How the run looks at archives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mode {
    pub deep: bool,
    /// The store reports per-object Object Lock (S3), so posture is judged.
    pub posture: bool,
    /// The sealing copy (logged versions compared) or a replica (not compared), FORMAT.md §10.
    pub copy: CopyRole,
}

/// What the rest of the run learned that this check needs.
pub(crate) struct Inputs<'a> {
    pub entries: &'a [Option<LoggedEntry>],
    /// Archive indexes with a valid prune entry.
    pub pruned: &'a HashSet<u64>,
    /// Valid index entries, by the log index of the entry they index.
    pub indexed: &'a HashMap<u64, SealedIndex>,
    pub listing: Option<&'a Listing>,
    pub mode: Mode,
}

/// Checks the object of every archive and late entry.
pub(crate) async fn check(
    store: &Store,
    options: &VerifyOptions,
    inputs: Inputs<'_>,
    findings: &mut Findings,
    summary: &mut Summary,
) {
    let Inputs {
        entries,
        pruned,
        indexed,
        listing,
        mode,
    } = inputs;
    let mut local: Vec<Finding> = Vec::new();
    let mut jobs = Vec::new();
    let mut first_reference: HashMap<&str, u64> = HashMap::new();
    let mut pruned_gone = 0u64;
    let mut skipped = 0u64;
    for logged in entries.iter().flatten() {
        let Some(archive) = logged.entry.body.archive() else {
            continue;
        };
        let index = logged.entry.index;
        let late = logged.entry.kind() == EntryKind::Late;
        let key = archive.object.key.as_str();
        // A1 against the prefix the log was sealed under; the object is read where this store keeps it.
        let stored = options.stored_key(key);
        match inventory::object_key(
            options.sealed_prefix(),
            &options.origin,
            logged.entry.kind(),
            archive,
        ) {
            Ok(canonical) if canonical == key => {}
            Ok(canonical) => local.push(Finding::new(
                Kind::Archive,
                key,
                Reason::ArchiveKeyNoncanonical,
                format!(
                    "entry {index} names this object; FORMAT.md §2 derives {canonical}{}",
                    if mode.copy == CopyRole::Replica && options.sealing_prefix.is_none() {
                        " (a replica kept under another prefix than the sealing copy needs --sealing-prefix)"
                    } else {
                        ""
                    }
                ),
            )),
            Err(error) => local.push(Finding::new(
                Kind::Archive,
                key,
                Reason::ArchiveKeyNoncanonical,
                format!("entry {index}: no key can be derived: {error}"),
            )),
        }
        if let Some(first) = first_reference.insert(key, index) {
            local.push(Finding::new(
                Kind::Archive,
                key,
                Reason::DuplicateReference,
                format!("entries {first} and {index} both name this object"),
            ));
        }
        let key = stored.as_ref();
        let listed = listing.map(|l| l.contains_key(key));
        if pruned.contains(&index) {
            if listed == Some(true) {
                local.push(Finding::new(
                    Kind::Archive,
                    key,
                    Reason::PrunePending,
                    format!("entry {index} is logged as pruned but the object is still stored"),
                ));
            } else {
                pruned_gone += 1;
            }
            continue;
        }
        // A late object of an old window may have been written after --since: it is skipped only when
        // it was also sealed before.
        if options.since_ns.is_some_and(|since| {
            archive.window.end_ns() <= since && (!late || logged.entry.sealed_at_ns <= since)
        }) {
            skipped += 1;
            continue;
        }
        if listed == Some(false) {
            local.push(missing(index, key));
            continue;
        }
        jobs.push(Job {
            index,
            key: key.to_owned(),
            version: archive.object.version.clone(),
            stored_size: archive.stored_size,
            stored_sha256: archive.stored_sha256,
            content_sha256: archive.content_sha256,
            record_count: archive.record_count,
            retain_until_ns: archive.retain_until_ns,
            index_sha256: indexed.get(&index).map(|i| i.stored_sha256),
            indexes: None,
        });
    }
    let (index_jobs, index_findings, indexes_pruned) =
        index_jobs(options, entries, pruned, indexed, listing);
    local.extend(index_findings);
    pruned_gone += indexes_pruned;
    let index_count = index_jobs.len() as u64;
    jobs.extend(index_jobs);

    // Each object is hashed in its own task so that reading and hashing use every core.
    let mut outcomes: Vec<Outcome> = stream::iter(jobs)
        .map(|job| {
            let store = store.clone();
            tokio::spawn(read_archive(store, job, mode))
        })
        .buffer_unordered(options.jobs.max(1))
        .filter_map(|joined| async move { joined.ok() })
        .collect()
        .await;
    outcomes.sort_by_key(|o| o.job.index);

    let mut locks: BTreeMap<&'static str, (Reason, u64, String, String)> = BTreeMap::new();
    let mut locked = 0u64;
    for outcome in &outcomes {
        if outcome.job.indexes.is_some() {
            summary.indexes_checked += 1;
        } else {
            summary.archives_checked += 1;
        }
        summary.archive_bytes_read += outcome.bytes_read;
        local.extend(outcome.findings.iter().cloned());
        if mode.copy == CopyRole::Replica {
            // On a replica the retention is what the unpinned version is accepted by: named per archive.
            match replica_lock_finding(outcome) {
                Some(finding) => local.push(finding),
                None if outcome.lock == Lock::Locked => locked += 1,
                None => {}
            }
            continue;
        }
        let (reason, detail) = match &outcome.lock {
            Lock::NotChecked => continue,
            Lock::Locked => {
                locked += 1;
                continue;
            }
            Lock::Failed(failure) => {
                local.push(Finding::new(
                    Kind::Posture,
                    &outcome.job.key,
                    failure.reason,
                    format!("HEAD for Object Lock failed: {}", failure.message),
                ));
                continue;
            }
            Lock::None => (Reason::NoObjectLock, String::new()),
            Lock::Governance => (Reason::GovernanceMode, String::new()),
            Lock::Shorter { object_until } => (
                Reason::RetentionShorter,
                format!(
                    " (object until {object_until}, logged {})",
                    format_ns(outcome.job.retain_until_ns)
                ),
            ),
        };
        let slot = locks
            .entry(reason.code())
            .or_insert_with(|| (reason, 0, outcome.job.key.clone(), detail));
        slot.1 += 1;
    }
    summary.archives_pruned += pruned_gone;
    if mode.copy == CopyRole::Replica {
        local.push(versions_not_compared(options, mode, &outcomes));
    }

    if pruned_gone > 0 {
        local.push(Finding::new(
            Kind::Archive,
            options.prefix.zone_prefix(&options.origin),
            Reason::ArchivePruned,
            format!("{pruned_gone} archives were deleted under valid prune entries"),
        ));
    }
    if skipped > 0 {
        local.push(Finding::new(
            Kind::Archive,
            options.prefix.zone_prefix(&options.origin),
            Reason::ArchivesSkipped,
            format!("{skipped} archives of windows before --since were not read"),
        ));
    }
    let clean = !local
        .iter()
        .any(|f| matches!(f.status(), Status::Tamper | Status::Incomplete));
    if clean {
        local.push(Finding::new(
            Kind::Archive,
            options.prefix.zone_prefix(&options.origin),
            Reason::ArchivesVerified,
            format!(
                "{} archives and {index_count} index objects present with the logged {}",
                outcomes.len() as u64 - index_count,
                if mode.deep {
                    "stored bytes, content and record counts, indexes rebuilt from the content"
                } else {
                    "stored bytes"
                }
            ),
        ));
    }
    posture_findings(options, mode, &outcomes, locked, locks, &mut local);
    findings.extend(local);
}

/// The index objects to read: those of valid index entries (`indexes.rs`) whose archive is not pruned.
/// An archive's prune covers its index, which is deleted with it.
fn index_jobs(
    options: &VerifyOptions,
    entries: &[Option<LoggedEntry>],
    pruned: &HashSet<u64>,
    indexed: &HashMap<u64, SealedIndex>,
    listing: Option<&Listing>,
) -> (Vec<Job>, Vec<Finding>, u64) {
    let mut jobs = Vec::new();
    let mut findings = Vec::new();
    let mut gone = 0;
    for logged in entries.iter().flatten() {
        let EntryBody::Index(record) = &logged.entry.body else {
            continue;
        };
        let index = logged.entry.index;
        if indexed.get(&record.target_index).map(|i| i.entry) != Some(index) {
            continue;
        }
        let Some(target) = usize::try_from(record.target_index)
            .ok()
            .and_then(|i| entries.get(i)?.as_ref())
            .and_then(|t| t.entry.body.archive())
        else {
            continue;
        };
        let stored = options.stored_key(&record.object.key);
        let key = stored.as_ref();
        let listed = listing.map(|l| l.contains_key(key));
        if pruned.contains(&record.target_index) {
            if listed == Some(true) {
                findings.push(Finding::new(
                    Kind::Archive,
                    key,
                    Reason::PrunePending,
                    format!(
                        "the archive of entry {} is logged as pruned but its index (entry {index}) is still stored",
                        record.target_index
                    ),
                ));
            } else {
                gone += 1;
            }
            continue;
        }
        if options.since_ns.is_some_and(|since| {
            logged.entry.sealed_at_ns <= since && record.window.end_ns() <= since
        }) {
            continue;
        }
        if listed == Some(false) {
            findings.push(missing(index, key));
            continue;
        }
        jobs.push(Job {
            index,
            key: key.to_owned(),
            version: record.object.version.clone(),
            stored_size: record.stored_size,
            stored_sha256: record.stored_sha256,
            content_sha256: Sha256Hash::ZERO,
            record_count: 0,
            retain_until_ns: record.retain_until_ns,
            index_sha256: None,
            indexes: Some(IndexOf {
                target: record.target_index,
                stored_sha256: target.stored_sha256,
                content_sha256: target.content_sha256,
            }),
        });
    }
    (jobs, findings, gone)
}

fn posture_findings(
    options: &VerifyOptions,
    mode: Mode,
    outcomes: &[Outcome],
    locked: u64,
    locks: BTreeMap<&'static str, (Reason, u64, String, String)>,
    findings: &mut Vec<Finding>,
) {
    let zone = options.prefix.zone_prefix(&options.origin);
    if !mode.posture {
        findings.push(Finding::new(
            Kind::Posture,
            zone,
            Reason::PostureNotApplicable,
            "a local directory store cannot report Object Lock",
        ));
        return;
    }
    let total = outcomes.len();
    for (reason, count, example, detail) in locks.into_values() {
        let what = match reason {
            Reason::NoObjectLock => "have no Object Lock retention",
            Reason::GovernanceMode => "are under GOVERNANCE, not COMPLIANCE, retention",
            _ => "have an Object Lock retain-until before the logged retain-until",
        };
        findings.push(Finding::new(
            Kind::Posture,
            &zone,
            reason,
            format!("{count} of {total} archives read {what}, e.g. {example}{detail}"),
        ));
    }
    if locked > 0 && locked as usize == total {
        findings.push(Finding::new(
            Kind::Posture,
            zone,
            Reason::PostureLocked,
            format!("{locked} archives under COMPLIANCE retention until at least their logged retain-until"),
        ));
    }
}

fn missing(index: u64, key: &str) -> Finding {
    Finding::new(
        Kind::Archive,
        key,
        Reason::ArchiveMissing,
        format!("logged by entry {index}; no valid prune entry covers its absence"),
    )
}

async fn read_archive(store: Store, job: Job, mode: Mode) -> Outcome {
    let mut outcome = Outcome {
        opened: false,
        version_read: None,
        bytes_read: 0,
        findings: Vec::new(),
        lock: Lock::NotChecked,
        job,
    };
    let job = &outcome.job;
    let reader = match source::open(&store, &job.key).await {
        Ok(Some(reader)) => reader,
        Ok(None) => {
            outcome.findings.push(missing(job.index, &job.key));
            return outcome;
        }
        Err(failure) => {
            outcome.findings.push(Finding::new(
                Kind::Archive,
                &job.key,
                failure.reason,
                failure.message,
            ));
            return outcome;
        }
    };
    outcome.opened = true;
    outcome.version_read = reader.version_id.clone();
    outcome.findings.extend(version_finding(
        mode.copy,
        job,
        reader.version_id.as_deref(),
    ));
    let (bytes_read, findings) = match (mode.deep, job.indexes) {
        (true, Some(of)) => index_check(reader, job, of).await,
        (true, None) => deep_check(reader, job).await,
        (false, _) => stored_check(reader, job).await,
    };
    outcome.bytes_read = bytes_read;
    outcome.findings.extend(findings);
    if mode.posture {
        outcome.lock = lock_of(&store, job, mode.copy, outcome.version_read.as_deref()).await;
    }
    outcome
}

/// FORMAT.md §10.2 step A4. On the sealing copy the version the provider reports with the bytes read must be
/// the logged one, byte for byte, whenever both are known. A replica's version ids are its own: not compared.
fn version_finding(copy: CopyRole, job: &Job, current: Option<&str>) -> Option<Finding> {
    if copy == CopyRole::Replica {
        return None;
    }
    let current = current?;
    if job.version.is_empty() || current == job.version {
        return None;
    }
    Some(Finding::new(
        Kind::Archive,
        &job.key,
        Reason::ArchiveVersionMismatch,
        format!(
            "current version {current}, entry {} logged version {}",
            job.index, job.version
        ),
    ))
}

/// FORMAT.md §10.2 step A3: the stored bytes read have the logged size and SHA-256.
fn bytes_match(job: &Job, size: u64, sha256: &Sha256Hash) -> bool {
    size == job.stored_size && *sha256 == job.stored_sha256
}

/// How a version is shown in messages.
fn shown_version(version: Option<&str>) -> &str {
    match version {
        Some(version) if !version.is_empty() => version,
        _ => "no version id",
    }
}

/// On a replica, the per-archive finding for A5 when the version read is not under COMPLIANCE retention until
/// at least the logged retain-until (or its retention could not be read).
fn replica_lock_finding(outcome: &Outcome) -> Option<Finding> {
    let job = &outcome.job;
    let version = shown_version(outcome.version_read.as_deref());
    let logged = format_ns(job.retain_until_ns);
    let reason = outcome.lock.reason()?;
    let what = match &outcome.lock {
        Lock::NotChecked | Lock::Locked => return None,
        Lock::Failed(failure) => format!(
            "its Object Lock retention could not be read: {}",
            failure.message
        ),
        Lock::None => "has no Object Lock retention".to_owned(),
        Lock::Governance => {
            "is under GOVERNANCE retention, which privileged users can bypass".to_owned()
        }
        Lock::Shorter { object_until } => format!("is retained only until {object_until}"),
    };
    Some(Finding::new(
        Kind::Posture,
        &job.key,
        reason,
        format!(
            "entry {}: the version read ({version}) {what}; on a replica (--replica) the logged version is not \
             compared, and each archive needs COMPLIANCE retention until at least its logged {logged}",
            job.index
        ),
    ))
}

/// The replica rule's summary: which versions were read instead of the logged ones.
fn versions_not_compared(options: &VerifyOptions, mode: Mode, outcomes: &[Outcome]) -> Finding {
    let opened: Vec<&Outcome> = outcomes.iter().filter(|o| o.opened).collect();
    let unknown = opened
        .iter()
        .filter(|o| o.job.version.is_empty() || o.version_read.is_none())
        .count();
    let other = opened
        .iter()
        .filter(|o| {
            matches!(&o.version_read, Some(read) if !o.job.version.is_empty() && *read != o.job.version)
        })
        .count();
    let same = opened.len() - unknown - other;
    Finding::new(
        Kind::Archive,
        options.prefix.zone_prefix(&options.origin),
        Reason::VersionsNotCompared,
        format!(
            "copy replica: logged object versions name the sealing copy's versions and were not compared \
             (FORMAT.md §10); of {} archives read, {other} are other versions than logged, {same} the logged \
             version, {unknown} without a version id to compare; each is accepted by its stored bytes{} and {}",
            opened.len(),
            if mode.deep { ", content" } else { "" },
            if mode.posture {
                "its COMPLIANCE Object Lock retention"
            } else {
                "nothing else (a local directory has no Object Lock)"
            }
        ),
    )
}

fn stored_mismatch(job: &Job, size: u64, sha256: &Sha256Hash, extra: &str) -> Finding {
    Finding::new(
        Kind::Archive,
        &job.key,
        Reason::StoredSha256Mismatch,
        format!(
            "stored bytes are {size} bytes with SHA-256 {sha256}; entry {} logged {} bytes with {}{extra}",
            job.index, job.stored_size, job.stored_sha256
        ),
    )
}

async fn stored_check(mut reader: ObjectReader, job: &Job) -> (u64, Vec<Finding>) {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut size = 0u64;
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            Err(error) => {
                let finding = Finding::new(
                    Kind::Archive,
                    &job.key,
                    Reason::ReadFailed,
                    format!("reading failed after {size} bytes: {error}"),
                );
                return (size, vec![finding]);
            }
        }
    }
    let sha256 = Sha256Hash(hasher.finalize().into());
    if bytes_match(job, size, &sha256) {
        (size, Vec::new())
    } else {
        (size, vec![stored_mismatch(job, size, &sha256, "")])
    }
}

/// The result of decompressing an archive.
enum Deep {
    /// With the SHA-256 of the index the content rebuilds to, when asked for.
    Digest(rainlogs_integrity::ArchiveDigest, Option<Sha256Hash>),
    /// Not a clean zstd stream; the stored bytes were still hashed whole.
    Corrupt {
        error: io::Error,
        stored_size: u64,
        stored_sha256: Sha256Hash,
    },
    ReadFailed(io::Error, u64),
}

async fn deep_check(reader: ObjectReader, job: &Job) -> (u64, Vec<Finding>) {
    let bridge = SyncIoBridge::new(reader);
    let rebuild = job.index_sha256.is_some();
    let deep = match tokio::task::spawn_blocking(move || decompress(bridge, rebuild)).await {
        Ok(deep) => deep,
        Err(error) => Deep::ReadFailed(io::Error::other(error.to_string()), 0),
    };
    let mut findings = Vec::new();
    let size = match deep {
        Deep::Digest(digest, rebuilt) => {
            if let (Some(logged), Some(rebuilt)) = (job.index_sha256, rebuilt)
                && logged != rebuilt
                && bytes_match(job, digest.stored_size, &digest.stored_sha256)
            {
                findings.push(Finding::new(
                    Kind::Archive,
                    &job.key,
                    Reason::IndexMismatch,
                    format!(
                        "the content of entry {}'s archive indexes to SHA-256 {rebuilt}; its index entry logged {logged}",
                        job.index
                    ),
                ));
            }
            if !bytes_match(job, digest.stored_size, &digest.stored_sha256) {
                findings.push(stored_mismatch(
                    job,
                    digest.stored_size,
                    &digest.stored_sha256,
                    "",
                ));
            } else {
                if digest.content_sha256 != job.content_sha256 {
                    findings.push(Finding::new(
                        Kind::Archive,
                        &job.key,
                        Reason::ContentSha256Mismatch,
                        format!(
                            "content ({} bytes) hashes to {}; entry {} logged {}",
                            digest.content_size,
                            digest.content_sha256,
                            job.index,
                            job.content_sha256
                        ),
                    ));
                }
                if digest.record_count != job.record_count {
                    findings.push(Finding::new(
                        Kind::Archive,
                        &job.key,
                        Reason::RecordCountMismatch,
                        format!(
                            "content holds {} records; entry {} logged {}",
                            digest.record_count, job.index, job.record_count
                        ),
                    ));
                }
            }
            digest.stored_size
        }
        Deep::Corrupt {
            error,
            stored_size,
            stored_sha256,
        } => {
            if !bytes_match(job, stored_size, &stored_sha256) {
                let extra = format!(", and they do not decompress ({error})");
                findings.push(stored_mismatch(job, stored_size, &stored_sha256, &extra));
            } else {
                findings.push(Finding::new(
                    Kind::Archive,
                    &job.key,
                    Reason::ArchiveCorrupt,
                    format!(
                        "the logged bytes (entry {}) are not a clean zstd frame sequence: {error}",
                        job.index
                    ),
                ));
            }
            stored_size
        }
        Deep::ReadFailed(error, size) => {
            findings.push(Finding::new(
                Kind::Archive,
                &job.key,
                Reason::ReadFailed,
                format!("reading failed after {size} bytes: {error}"),
            ));
            size
        }
    };
    (size, findings)
}

/// Deep mode for an index object: its bytes are the logged ones, decode as FORMAT.md §12 lays them out, and
/// name the bytes of the archive they index.
async fn index_check(mut reader: ObjectReader, job: &Job, of: IndexOf) -> (u64, Vec<Finding>) {
    let mut bytes = Vec::new();
    let limit = job.stored_size.min(MAX_INDEX_LEN) + 1;
    if let Err(error) = (&mut reader).take(limit).read_to_end(&mut bytes).await {
        let finding = Finding::new(
            Kind::Archive,
            &job.key,
            Reason::ReadFailed,
            format!("reading failed after {} bytes: {error}", bytes.len()),
        );
        return (bytes.len() as u64, vec![finding]);
    }
    let size = bytes.len() as u64;
    let sha256 = Sha256Hash::digest(&bytes);
    if !bytes_match(job, size, &sha256) {
        return (size, vec![stored_mismatch(job, size, &sha256, "")]);
    }
    let finding = match rainlogs_index::ArchiveIndex::decode(&bytes) {
        Err(error) => Finding::new(
            Kind::Archive,
            &job.key,
            Reason::IndexCorrupt,
            format!(
                "the logged bytes (entry {}) are not an index object: {error}",
                job.index
            ),
        ),
        Ok(index)
            if index.archive_stored_sha256 != of.stored_sha256.0
                || index.archive_content_sha256 != of.content_sha256.0 =>
        {
            Finding::new(
                Kind::Archive,
                &job.key,
                Reason::IndexMismatch,
                format!(
                    "index entry {} names the archive of entry {}, but the index describes archive bytes {}",
                    job.index,
                    of.target,
                    Sha256Hash(index.archive_stored_sha256)
                ),
            )
        }
        Ok(_) => return (size, Vec::new()),
    };
    (size, vec![finding])
}

/// The source side of a decompression: hashes every stored byte and remembers whether the store (rather
/// than the data) failed, so a corrupt object and a broken connection are told apart.
struct Tee<R> {
    source: R,
    hasher: Sha256,
    size: u64,
    source_error: Option<io::Error>,
}

struct TeeReader<R>(Rc<RefCell<Tee<R>>>);

impl<R: Read> Read for TeeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut tee = self.0.borrow_mut();
        match tee.source.read(buf) {
            Ok(n) => {
                tee.hasher.update(&buf[..n]);
                tee.size += n as u64;
                Ok(n)
            }
            Err(error) => {
                let copy = io::Error::new(error.kind(), error.to_string());
                tee.source_error = Some(error);
                Err(copy)
            }
        }
    }
}

fn decompress<R: Read>(source: R, rebuild_index: bool) -> Deep {
    let tee = Rc::new(RefCell::new(Tee {
        source: io::BufReader::with_capacity(READ_CHUNK, source),
        hasher: Sha256::new(),
        size: 0,
        source_error: None,
    }));
    let result = if rebuild_index {
        rainlogs_index::index_archive(TeeReader(Rc::clone(&tee))).map(|(digest, index)| {
            let sha256 = Sha256Hash::digest(&index.encode());
            (digest, Some(sha256))
        })
    } else {
        ArchiveReader::new(TeeReader(Rc::clone(&tee)))
            .and_then(ArchiveReader::finish)
            .map(|digest| (digest, None))
    };
    let error = match result {
        Ok((digest, rebuilt)) => return Deep::Digest(digest, rebuilt),
        Err(error) => error,
    };
    let mut tee = tee.borrow_mut();
    if let Some(source_error) = tee.source_error.take() {
        return Deep::ReadFailed(source_error, tee.size);
    }
    // Hash the rest so the report can say whether the stored bytes are the logged ones.
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let tee = &mut *tee;
        match tee.source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                tee.hasher.update(&buf[..n]);
                tee.size += n as u64;
            }
            Err(read_error) => return Deep::ReadFailed(read_error, tee.size),
        }
    }
    let hasher = std::mem::take(&mut tee.hasher);
    Deep::Corrupt {
        error,
        stored_size: tee.size,
        stored_sha256: Sha256Hash(hasher.finalize().into()),
    }
}

/// HEAD of the object, judged by [`judge_lock`]. On a replica the retention must be that of the version whose
/// bytes were read: a HEAD answering for another version means the object changed during the check.
async fn lock_of(store: &Store, job: &Job, copy: CopyRole, version_read: Option<&str>) -> Lock {
    let head = match source::head(store, &job.key).await {
        Ok(Some(head)) => head,
        Ok(None) if copy == CopyRole::Replica => {
            return Lock::Failed(ReadFailure {
                reason: Reason::ReadFailed,
                message: "the object was gone when its retention was read".to_owned(),
            });
        }
        Ok(None) => return Lock::NotChecked,
        Err(failure) => return Lock::Failed(failure),
    };
    if copy == CopyRole::Replica
        && let (Some(read), Some(headed)) = (version_read, head.version_id.as_deref())
        && read != headed
    {
        return Lock::Failed(ReadFailure {
            reason: Reason::ReadFailed,
            message: format!(
                "the object changed during the check: its bytes were read from version {read}, HEAD answered \
                 for version {headed}"
            ),
        });
    }
    judge_lock(job.retain_until_ns, head.lock.as_ref())
}

/// FORMAT.md §10.2 step A5: COMPLIANCE retention whose retain-until, in whole seconds, is at least the logged
/// retain-until in whole seconds (both rounded down).
fn judge_lock(retain_until_ns: u64, lock: Option<&ObjectLock>) -> Lock {
    let Some(lock) = lock else {
        return Lock::None;
    };
    if lock.mode == LockMode::Governance {
        return Lock::Governance;
    }
    // Providers keep whole seconds; the store rounds up, so compare at second precision.
    let object_until = lock.retain_until.unix_timestamp();
    let logged_until = i64::try_from(retain_until_ns / 1_000_000_000).unwrap_or(i64::MAX);
    if object_until < logged_until {
        return Lock::Shorter {
            object_until: lock
                .retain_until
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        };
    }
    Lock::Locked
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use rainlogs_store::ObjectLock;
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    use super::*;

    const FORMAT: &str = include_str!("../../../docs/FORMAT.md");

    /// The body of the first text block after `heading` in FORMAT.md.
    fn block_after(heading: &str) -> &'static str {
        let section = &FORMAT[FORMAT.find(heading).unwrap()..];
        let start = section.find("```text\n").unwrap() + "```text\n".len();
        let end = section[start..].find("```").unwrap();
        &section[start..start + end]
    }

    fn field<'a>(block: &'a str, name: &str) -> &'a str {
        let line = block
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name}:")))
            .unwrap();
        line.split_once(':')
            .unwrap()
            .1
            .split_whitespace()
            .next()
            .unwrap()
    }

    fn sha(hex_text: &str) -> Sha256Hash {
        Sha256Hash(hex::decode(hex_text).unwrap().try_into().unwrap())
    }

    fn opt(token: &str) -> Option<&str> {
        (token != "-").then_some(token)
    }

    /// What the verifier reports for one row of the example, through the same rule functions a run uses:
    /// A2 (a missing object is only `archive_missing`), A4, A3, then A5 on the version read.
    fn judge(copy: CopyRole, job: &Job, row: &[&str]) -> BTreeSet<&'static str> {
        let [_, version, size, stored, mode, until, _] = row else {
            panic!("row {row:?} has not 7 columns");
        };
        let Some(size) = opt(size) else {
            return [missing(job.index, &job.key).reason.code()].into();
        };
        let mut out = BTreeSet::new();
        if let Some(finding) = version_finding(copy, job, opt(version)) {
            out.insert(finding.reason.code());
        }
        if !bytes_match(job, size.parse().unwrap(), &sha(stored)) {
            out.insert(stored_mismatch(job, 0, &Sha256Hash::ZERO, "").reason.code());
        }
        let lock = match *mode {
            "none" => None,
            mode => Some(ObjectLock {
                mode: match mode {
                    "COMPLIANCE" => LockMode::Compliance,
                    "GOVERNANCE" => LockMode::Governance,
                    other => panic!("lock mode {other}"),
                },
                retain_until: OffsetDateTime::parse(until, &Rfc3339).unwrap(),
            }),
        };
        let outcome = Outcome {
            job: job.clone(),
            opened: true,
            version_read: opt(version).map(str::to_owned),
            bytes_read: 0,
            findings: Vec::new(),
            lock: judge_lock(job.retain_until_ns, lock.as_ref()),
        };
        let lock_reason = match copy {
            CopyRole::Replica => replica_lock_finding(&outcome).map(|f| f.reason),
            CopyRole::Primary => outcome.lock.reason(),
        };
        out.extend(lock_reason.map(Reason::code));
        out
    }

    #[test]
    fn the_format_doc_replica_example_is_what_the_verifier_reports() {
        let block = block_after("### 10.3 Example");
        let job = Job {
            index: 1,
            key: "k".into(),
            version: field(block, "object_version").to_owned(),
            stored_size: field(block, "stored_size").parse().unwrap(),
            stored_sha256: sha(field(block, "stored_sha256")),
            content_sha256: Sha256Hash::ZERO,
            record_count: 1,
            index_sha256: None,
            indexes: None,
            retain_until_ns: field(block, "retain_until_ns").parse().unwrap(),
        };
        // The example is entry 1 of the sample log (FORMAT.md §4.6).
        assert!(FORMAT.contains(&format!(
            "object_version         {}",
            hex::encode({
                let mut text = (job.version.len() as u16).to_be_bytes().to_vec();
                text.extend_from_slice(job.version.as_bytes());
                text
            })
        )));
        assert!(FORMAT.contains(&format!("stored_sha256          {}", job.stored_sha256)));
        assert!(block.contains(&format!(
            "(R = {} = {})",
            job.retain_until_ns / 1_000_000_000,
            format_ns(job.retain_until_ns)
        )));
        let mut rows = 0;
        let mut copies = BTreeSet::new();
        for line in block
            .lines()
            .skip_while(|l| !l.starts_with("copy "))
            .skip(1)
        {
            let row: Vec<&str> = line.split_whitespace().collect();
            let copy = match row[0] {
                "primary" => CopyRole::Primary,
                "replica" => CopyRole::Replica,
                other => panic!("copy {other}"),
            };
            let documented: BTreeSet<&str> = match row.last().copied() {
                Some("-") => BTreeSet::new(),
                Some(list) => list.split(',').collect(),
                None => unreachable!(),
            };
            assert_eq!(
                judge(copy, &job, &row),
                documented,
                "FORMAT.md §10.3: {line}"
            );
            copies.insert(row[0]);
            rows += 1;
        }
        assert!(rows >= 10 && copies.len() == 2, "{rows} rows");
    }

    #[test]
    fn the_format_doc_step_table_names_real_reasons_with_their_status() {
        let section = &FORMAT[FORMAT.find("### 10.2 Checking one archive object").unwrap()..];
        let steps: Vec<&str> = section.lines().filter(|l| l.starts_with("| A")).collect();
        assert_eq!(steps.len(), 5);
        for line in steps {
            let last = line.trim_end_matches('|').rsplit('|').next().unwrap();
            // Each "(STATUS)" applies to the codes before it.
            let mut pending = Vec::new();
            let mut seen = 0;
            for piece in last.split(['`', ' ', ',', ';', ':']) {
                if let Some(reason) = Reason::ALL.iter().find(|r| r.code() == piece) {
                    pending.push(*reason);
                } else if let Some(status) =
                    piece.strip_prefix('(').and_then(|p| p.strip_suffix(')'))
                {
                    for reason in pending.drain(..) {
                        assert_eq!(reason.status().as_str(), status, "{line}");
                        seen += 1;
                    }
                }
            }
            assert!(pending.is_empty() && seen > 0, "{line}");
        }
    }

    #[test]
    fn a_replica_never_compares_versions_and_the_sealing_copy_always_does() {
        let job = Job {
            index: 7,
            key: "k".into(),
            version: "v1".into(),
            stored_size: 1,
            stored_sha256: Sha256Hash::ZERO,
            content_sha256: Sha256Hash::ZERO,
            record_count: 1,
            index_sha256: None,
            indexes: None,
            retain_until_ns: 1,
        };
        assert!(version_finding(CopyRole::Replica, &job, Some("v2")).is_none());
        assert!(version_finding(CopyRole::Primary, &job, Some("v1")).is_none());
        assert!(version_finding(CopyRole::Primary, &job, None).is_none());
        assert_eq!(
            version_finding(CopyRole::Primary, &job, Some("v2")).map(|f| f.reason),
            Some(Reason::ArchiveVersionMismatch)
        );
        // Version ids are compared byte for byte: no case folding, no trimming.
        assert!(version_finding(CopyRole::Primary, &job, Some("V1")).is_some());
        assert!(version_finding(CopyRole::Primary, &job, Some("v1 ")).is_some());
        let unversioned = Job {
            version: String::new(),
            ..job
        };
        assert!(version_finding(CopyRole::Primary, &unversioned, Some("v2")).is_none());
    }

    #[test]
    fn retention_is_compared_in_whole_seconds_rounded_down() {
        let until = |s: &str| ObjectLock {
            mode: LockMode::Compliance,
            retain_until: OffsetDateTime::parse(s, &Rfc3339).unwrap(),
        };
        // Logged 2027-02-19T14:00:00.7Z: R is 14:00:00, so an object locked until 14:00:00 passes.
        let logged = 1_803_045_600_700_000_000;
        assert_eq!(
            judge_lock(logged, Some(&until("2027-02-19T14:00:00Z"))),
            Lock::Locked
        );
        assert_eq!(
            judge_lock(logged, Some(&until("2027-02-19T14:00:00.999Z"))),
            Lock::Locked
        );
        assert!(matches!(
            judge_lock(logged, Some(&until("2027-02-19T13:59:59.999Z"))),
            Lock::Shorter { .. }
        ));
        assert_eq!(judge_lock(logged, None), Lock::None);
    }
}
