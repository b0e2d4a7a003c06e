//! Archive objects: every logged archive is present and its stored bytes have the logged size and SHA-256
//! (deep mode: they decompress to the logged content SHA-256 and record count), unless a valid prune entry
//! covers its absence. Where the store can tell, each object's Object Lock retention is compared with the
//! logged retain-until.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read};
use std::rc::Rc;

use futures::{StreamExt as _, stream};
use rainlogs_integrity::framing::ArchiveReader;
use rainlogs_integrity::{EntryBody, Sha256Hash};
use rainlogs_store::{LockMode, ObjectReader, Store};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;
use tokio_util::io::SyncIoBridge;

use crate::finding::{Finding, Kind, Reason, Status};
use crate::log::LoggedEntry;
use crate::options::{VerifyOptions, format_ns};
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
}

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

#[derive(Debug)]
struct Outcome {
    job: Job,
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
}

/// What the rest of the run learned that this check needs.
pub(crate) struct Inputs<'a> {
    pub entries: &'a [Option<LoggedEntry>],
    /// Archive indexes with a valid prune entry.
    pub pruned: &'a HashSet<u64>,
    pub listing: Option<&'a Listing>,
    pub mode: Mode,
}

/// Checks every archive entry's object.
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
        listing,
        mode,
    } = inputs;
    let mut local: Vec<Finding> = Vec::new();
    let mut jobs = Vec::new();
    let mut first_reference: HashMap<&str, u64> = HashMap::new();
    let mut pruned_gone = 0u64;
    let mut skipped = 0u64;
    for logged in entries.iter().flatten() {
        let EntryBody::Archive(archive) = &logged.entry.body else {
            continue;
        };
        let index = logged.entry.index;
        let key = archive.object.key.as_str();
        match options.prefix.archive_key(
            &options.origin,
            &archive.dataset,
            &archive.window,
            &archive.content_sha256,
        ) {
            Ok(canonical) if canonical == key => {}
            Ok(canonical) => local.push(Finding::new(
                Kind::Archive,
                key,
                Reason::ArchiveKeyNoncanonical,
                format!("entry {index} names this object; FORMAT.md §2 derives {canonical}"),
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
        if options
            .since_ns
            .is_some_and(|since| archive.window.end_ns() <= since)
        {
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
        });
    }

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
        summary.archives_checked += 1;
        summary.archive_bytes_read += outcome.bytes_read;
        local.extend(outcome.findings.iter().cloned());
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
                "{} archives present with the logged {}",
                outcomes.len(),
                if mode.deep {
                    "stored bytes, content and record counts"
                } else {
                    "stored bytes"
                }
            ),
        ));
    }
    posture_findings(options, mode, &outcomes, locked, locks, &mut local);
    findings.extend(local);
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
    if let Some(current) = &reader.version_id
        && !job.version.is_empty()
        && *current != job.version
    {
        outcome.findings.push(Finding::new(
            Kind::Archive,
            &job.key,
            Reason::ArchiveVersionMismatch,
            format!(
                "current version {current}, entry {} logged version {}",
                job.index, job.version
            ),
        ));
    }
    let (bytes_read, findings) = if mode.deep {
        deep_check(reader, job).await
    } else {
        stored_check(reader, job).await
    };
    outcome.bytes_read = bytes_read;
    outcome.findings.extend(findings);
    if mode.posture {
        outcome.lock = lock_of(&store, job).await;
    }
    outcome
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
    if size == job.stored_size && sha256 == job.stored_sha256 {
        (size, Vec::new())
    } else {
        (size, vec![stored_mismatch(job, size, &sha256, "")])
    }
}

/// The result of decompressing an archive.
enum Deep {
    Digest(rainlogs_integrity::ArchiveDigest),
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
    let deep = match tokio::task::spawn_blocking(move || decompress(bridge)).await {
        Ok(deep) => deep,
        Err(error) => Deep::ReadFailed(io::Error::other(error.to_string()), 0),
    };
    let mut findings = Vec::new();
    let size = match deep {
        Deep::Digest(digest) => {
            if digest.stored_size != job.stored_size || digest.stored_sha256 != job.stored_sha256 {
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
            if stored_size != job.stored_size || stored_sha256 != job.stored_sha256 {
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

fn decompress<R: Read>(source: R) -> Deep {
    let tee = Rc::new(RefCell::new(Tee {
        source: io::BufReader::with_capacity(READ_CHUNK, source),
        hasher: Sha256::new(),
        size: 0,
        source_error: None,
    }));
    let result = ArchiveReader::new(TeeReader(Rc::clone(&tee))).and_then(ArchiveReader::finish);
    let error = match result {
        Ok(digest) => return Deep::Digest(digest),
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

async fn lock_of(store: &Store, job: &Job) -> Lock {
    let head = match source::head(store, &job.key).await {
        Ok(Some(head)) => head,
        Ok(None) => return Lock::NotChecked,
        Err(failure) => return Lock::Failed(failure),
    };
    let Some(lock) = head.lock else {
        return Lock::None;
    };
    if lock.mode == LockMode::Governance {
        return Lock::Governance;
    }
    // Providers keep whole seconds; the store rounds up, so compare at second precision.
    let object_until = lock.retain_until.unix_timestamp();
    let logged_until = i64::try_from(job.retain_until_ns / 1_000_000_000).unwrap_or(i64::MAX);
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
