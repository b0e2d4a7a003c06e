//! One verification run over one zone, in the order the checks depend on each other:
//! listing → checkpoints → log (entries, chain, tree, tile replay) → roots → coverage, retention, keys →
//! freshness → remembered state → tlog files → archives → inventory → state update.

use std::collections::BTreeSet;

use rainlogs_integrity::EntryBody;
use rainlogs_store::{Backend, Store};

use crate::archives::{self, Mode};
use crate::checkpoints;
use crate::coverage;
use crate::erasure;
use crate::finding::{Finding, Kind, Reason, Status};
use crate::freshness;
use crate::indexes;
use crate::inventory;
use crate::log::{self, Log};
use crate::options::{VerifyOptions, format_ns};
use crate::report::{Findings, Report, Summary};
use crate::retention;
use crate::source;
use crate::state;
use crate::tlog_files;

/// Verifies one zone's log and archives in `store`. Never fails: what could not be checked is a finding.
pub async fn verify(store: &Store, options: &VerifyOptions) -> Report {
    let mut findings = Findings::default();
    let mut summary = Summary::default();
    run(store, options, &mut findings, &mut summary).await;
    Report {
        origin: options.origin.to_string(),
        location: location(store),
        deep: options.deep,
        copy: options.copy,
        findings: findings.into_vec(),
        summary,
    }
}

/// The entries of a zone's log, read as a verification reads them: the newest checkpoint opened
/// with the pinned keys, every entry fetched, decoded strictly and chained, the Merkle root equal
/// to the signed one. What a search from the bucket alone may trust. When the log does not
/// verify this far, the findings that say why.
pub async fn verified_entries(
    store: &Store,
    options: &VerifyOptions,
) -> Result<Vec<rainlogs_integrity::Entry>, Vec<Finding>> {
    let mut findings = Findings::default();
    let tlog = options.prefix.tlog_prefix(&options.origin);
    let zone = options.prefix.zone_prefix(&options.origin);
    let listing = match source::list(store, &zone).await {
        Ok(listing) => Some(listing),
        Err(failure) => {
            findings.push(Finding::new(
                Kind::Store,
                &zone,
                failure.reason,
                format!("listing the zone failed: {}", failure.message),
            ));
            return Err(findings.into_vec());
        }
    };
    let checkpoints =
        match checkpoints::collect(store, options, listing.as_ref(), &mut findings).await {
            Ok(checkpoints) => checkpoints,
            Err(_) => return Err(findings.into_vec()),
        };
    let Some(target) = checkpoints.target.clone() else {
        return Err(findings.into_vec());
    };
    let mut published: BTreeSet<u64> = checkpoints.history_sizes.clone();
    published.extend(checkpoints.latest.as_ref().map(|h| h.size));
    published.insert(target.size);
    let Ok(log) = log::read(store, options, target.size, &published, &mut findings).await else {
        return Err(findings.into_vec());
    };
    findings.extend(checkpoints::check_roots(
        &checkpoints,
        &log.tree,
        &format!("{tlog}checkpoints/"),
    ));
    if !log.is_complete() || findings.count_status(Status::Tamper) > 0 {
        let mut findings = findings.into_vec();
        findings.retain(|f| f.status() != Status::Ok);
        return Err(findings);
    }
    Ok(log.decoded().map(|logged| logged.entry.clone()).collect())
}

/// Where the store is, without credentials.
pub fn location(store: &Store) -> String {
    match store {
        Store::Single(backend) => backend.location(),
        Store::Replicated(_) => "replicated store".to_owned(),
    }
}

/// Only S3 reports per-object Object Lock; a local directory has nothing to report.
fn reports_object_lock(store: &Store) -> bool {
    !matches!(store, Store::Single(Backend::Fs(_)))
}

async fn run(
    store: &Store,
    options: &VerifyOptions,
    findings: &mut Findings,
    summary: &mut Summary,
) {
    let zone = options.prefix.zone_prefix(&options.origin);
    let tlog = options.prefix.tlog_prefix(&options.origin);
    let checkpoint_key = options.prefix.checkpoint_key(&options.origin);

    let remembered = match &options.state_file {
        Some(path) => match state::load(path) {
            Ok(state) => Some((path, state)),
            Err(finding) => {
                findings.push(finding);
                None
            }
        },
        None => None,
    };

    let listing = match source::list(store, &zone).await {
        Ok(listing) => {
            summary.objects_listed = listing.len() as u64;
            Some(listing)
        }
        Err(failure) => {
            let fatal = failure.is_fatal();
            findings.push(Finding::new(
                Kind::Store,
                &zone,
                failure.reason,
                format!("listing the zone failed: {}", failure.message),
            ));
            if fatal {
                return;
            }
            None
        }
    };

    let Ok(checkpoints) = checkpoints::collect(store, options, listing.as_ref(), findings).await
    else {
        return;
    };
    summary.history_checkpoints = checkpoints.history.len() as u64;
    let Some(target) = checkpoints.target.clone() else {
        return;
    };
    summary.checkpoint_size = Some(target.size);
    summary.checkpoint_root = Some(target.root.to_hex());

    let mut published: BTreeSet<u64> = checkpoints.history_sizes.clone();
    published.extend(checkpoints.latest.as_ref().map(|h| h.size));
    published.insert(target.size);
    let tamper_before = findings.count_status(Status::Tamper);
    let Ok(log) = log::read(store, options, target.size, &published, findings).await else {
        return;
    };
    summary.entries = log.decoded().count() as u64;
    if log.is_complete() {
        let roots =
            checkpoints::check_roots(&checkpoints, &log.tree, &format!("{tlog}checkpoints/"));
        let roots_ok = roots.iter().all(|f| f.status() == Status::Ok);
        findings.extend(roots);
        if roots_ok && findings.count_status(Status::Tamper) == tamper_before {
            findings.push(log_verified(&log, &tlog));
        }
    }

    findings.extend(key_entries(&log, options));
    let (coverage, coverage_findings) = coverage::check(log.decoded());
    findings.extend(coverage_findings);
    if options.fail_on_gap {
        findings.extend(coverage::declared_gaps(&coverage.summary));
        findings.extend(coverage::declared_shortfalls(&coverage.summary));
    }
    summary.coverage = coverage.summary.clone();
    let (pruned, retention_findings) = retention::check(&log.entries);
    findings.extend(retention_findings);
    let (indexed, index_findings) = indexes::check(&log.entries, &pruned);
    findings.extend(index_findings);

    let (erased_at, erasure_findings) = erasure::check(log.decoded());
    findings.extend(erasure_findings);

    let (fresh, freshness_finding) = freshness::check(
        log.newest_sealed_ns(),
        options.now_ns(),
        options.max_staleness,
        &checkpoint_key,
    );
    // A log that stopped at its tenant's erasure is old on purpose. Only the finding changes:
    // tiles past its checkpoint are still judged as those of a stale log.
    findings.push(match erased_at {
        Some(at) if freshness_finding.reason == Reason::CheckpointStale => Finding::new(
            Kind::Freshness,
            checkpoint_key.clone(),
            Reason::ErasedNotStale,
            format!(
                "the log stopped at the tenant's erasure at {}",
                format_ns(at)
            ),
        ),
        _ => freshness_finding,
    });

    if let Some((path, state)) = &remembered
        && let Some(previous) = state.logs.get(options.origin.as_str())
        && log.is_complete()
    {
        findings.push(state::compare(previous, &log.tree, path));
    }

    if let Some(listing) = &listing {
        let inputs = tlog_files::Inputs {
            listing,
            checkpoints: &checkpoints,
            log: &log,
            fresh,
        };
        let (tlog_findings, checked) = tlog_files::check(store, options, inputs).await;
        summary.tlog_files_checked = checked;
        findings.extend(tlog_findings);
    }

    let mode = Mode {
        deep: options.deep,
        posture: reports_object_lock(store),
        copy: options.copy,
    };
    let inputs = archives::Inputs {
        entries: &log.entries,
        pruned: &pruned,
        indexed: &indexed,
        listing: listing.as_ref(),
        mode,
    };
    archives::check(store, options, inputs, findings, summary).await;

    if let Some(listing) = &listing {
        if log.is_complete() {
            findings.extend(inventory::check(options, listing, &log.entries, &coverage));
        } else {
            findings.push(Finding::new(
                Kind::Object,
                &zone,
                Reason::InventorySkipped,
                "the log could not be read whole, so objects it may reference were not judged",
            ));
        }
    }

    if let Some((path, state)) = remembered {
        let verified = findings.count_status(Status::Tamper) == 0
            && findings.count_status(Status::Incomplete) == 0;
        findings.push(if verified && log.is_complete() {
            let verified_at = format_ns(options.now_ns());
            state::record(
                path,
                state,
                options.origin.as_str(),
                target.size,
                &target.root,
                verified_at,
            )
        } else {
            Finding::new(
                Kind::State,
                path.display().to_string(),
                Reason::StateNotUpdated,
                "the run found tamper evidence or could not check everything",
            )
        });
    }
}

fn log_verified(log: &Log, tlog: &str) -> Finding {
    let head = log
        .head
        .map_or_else(|| "genesis".to_owned(), |head| head.to_hex());
    Finding::new(
        Kind::Log,
        tlog,
        Reason::LogVerified,
        format!(
            "{} entries decode strictly, belong to this zone and chain from genesis to {head}",
            log.size
        ),
    )
}

/// Key entries announce signing keys; only pinned keys are ever trusted.
fn key_entries(log: &Log, options: &VerifyOptions) -> Vec<Finding> {
    log.decoded()
        .filter_map(|logged| match &logged.entry.body {
            EntryBody::Key(record) => {
                let key = &record.verifier_key;
                let pinned = options.trusted_keys.contains(key);
                Some(Finding::new(
                    Kind::Key,
                    format!("entry {}", logged.entry.index),
                    Reason::KeyAnnounced,
                    format!(
                        "announces {}+{:08x} ({})",
                        key.name(),
                        key.key_id(),
                        if pinned {
                            "pinned"
                        } else {
                            "not pinned: checkpoints it alone signs are not trusted"
                        }
                    ),
                ))
            }
            _ => None,
        })
        .collect()
}
