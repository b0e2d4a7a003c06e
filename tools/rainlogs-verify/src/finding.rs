//! What a check says: a status, a stable reason code, the object it is about and a sentence for humans.
//!
//! Reason codes are part of the verifier's interface (scripts match on them); each code always carries the
//! same status, so the exit code follows from the codes alone.

use std::fmt;

/// How bad a finding is. Ordered from harmless to worst; the worst one present decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// A check passed.
    Ok,
    /// Worth knowing, proves nothing either way (a pruned archive, an object waiting to be sealed).
    Info,
    /// Weakened protection: the data verifies, but could be deleted or replaced early (exit 3).
    Warning,
    /// Declared gaps an auditor asked to fail on (`--fail-on-gap`): the log verifies, but some windows were
    /// never collected (exit 4). Ranked above posture warnings because the auditor made it a requirement.
    Gap,
    /// Something could not be checked (unreachable store, denied read): no verdict on it (exit 2).
    Incomplete,
    /// Evidence that the archive was changed, dropped, reordered, replaced or deleted early (exit 1).
    Tamper,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Info => "INFO",
            Status::Warning => "WARNING",
            Status::Gap => "GAP",
            Status::Incomplete => "INCOMPLETE",
            Status::Tamper => "TAMPER",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which part of the zone a finding is about; the first column of the human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Store,
    Checkpoint,
    History,
    Log,
    Entry,
    Chain,
    Coverage,
    Archive,
    Prune,
    Object,
    Tlog,
    Freshness,
    State,
    Posture,
    Key,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Store => "store",
            Kind::Checkpoint => "checkpoint",
            Kind::History => "history",
            Kind::Log => "log",
            Kind::Entry => "entry",
            Kind::Chain => "chain",
            Kind::Coverage => "coverage",
            Kind::Archive => "archive",
            Kind::Prune => "prune",
            Kind::Object => "object",
            Kind::Tlog => "tlog",
            Kind::Freshness => "freshness",
            Kind::State => "state",
            Kind::Posture => "posture",
            Kind::Key => "key",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! reasons {
    ($( $variant:ident = $code:literal, $status:ident, $meaning:literal; )*) => {
        /// Every reason the verifier can give. The code and its status never change meaning.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( #[doc = $meaning] $variant, )*
        }

        impl Reason {
            /// Every reason, in documentation order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The stable snake_case code printed and matched on.
            pub fn code(self) -> &'static str {
                match self { $(Reason::$variant => $code,)* }
            }

            pub fn status(self) -> Status {
                match self { $(Reason::$variant => Status::$status,)* }
            }

            /// One line on what the code means (used for the README table).
            pub fn meaning(self) -> &'static str {
                match self { $(Reason::$variant => $meaning,)* }
            }
        }
    };
}

reasons! {
    // Access to the store.
    StoreUnreachable = "store_unreachable", Incomplete, "the store could not be reached (network error, timeout, missing directory)";
    AccessDenied = "access_denied", Incomplete, "the credentials may not read or list what the check needs";
    ReadFailed = "read_failed", Incomplete, "a read failed for another reason (I/O error, provider refusal)";
    ZoneEmpty = "zone_empty", Incomplete, "nothing is stored under the zone prefix (wrong --store, --tenant or --zone?)";
    // The newest checkpoint.
    CheckpointVerified = "checkpoint_verified", Ok, "the checkpoint is signed by a pinned key and names this zone";
    CheckpointMissing = "checkpoint_missing", Tamper, "tlog/checkpoint is missing although the zone holds objects";
    CheckpointMalformed = "checkpoint_malformed", Tamper, "not a well-formed signed checkpoint note";
    UntrustedKey = "untrusted_key", Tamper, "no signature by a pinned key (signed by another key, or key substitution)";
    BadSignature = "bad_signature", Tamper, "a pinned key's signature does not verify (edited checkpoint)";
    CheckpointWrongOrigin = "checkpoint_wrong_origin", Tamper, "the checkpoint belongs to another zone or tenant (substitution)";
    AmbiguousTrustedKeys = "ambiguous_trusted_keys", Incomplete, "two pinned keys share name and key id; fix --trusted-key";
    RootMismatch = "root_mismatch", Tamper, "the root recomputed from the entries differs from the signed root";
    CheckpointRollback = "checkpoint_rollback", Tamper, "tlog/checkpoint is older than a signed checkpoint kept in history";
    CheckpointPublishing = "checkpoint_publishing", Info, "a newer history checkpoint was written moments ago; the sealer is publishing";
    // Older checkpoints under tlog/checkpoints/.
    HistoryVerified = "history_verified", Ok, "every older checkpoint is signed, names this zone and is a prefix of the log";
    HistoryMissing = "history_missing", Tamper, "a published tree size has no checkpoint under tlog/checkpoints/ (deleted history)";
    HistoryNameMismatch = "history_name_mismatch", Tamper, "a history file holds a checkpoint of another size than its name says";
    HistoryInconsistent = "history_inconsistent", Tamper, "an older checkpoint's root is not the root of the log's prefix (fork, rewritten history)";
    // The entries.
    LogVerified = "log_verified", Ok, "every entry decodes, belongs to this zone and chains from genesis; the root matches";
    BundleMissing = "bundle_missing", Tamper, "an entry bundle the checkpoint needs is missing (deleted entries)";
    BundleMalformed = "bundle_malformed", Tamper, "an entry bundle does not hold exactly the entries its name promises";
    EntryMalformed = "entry_malformed", Tamper, "an entry does not decode strictly (edited bytes)";
    EntryWrongOrigin = "entry_wrong_origin", Tamper, "an entry of another zone or tenant (substitution)";
    EntryWrongIndex = "entry_wrong_index", Tamper, "an entry sits at another position than its index (reordered, removed or inserted entries)";
    ChainBroken = "chain_broken", Tamper, "prev_chain_hash does not match the chain recomputed from genesis";
    EmptyLog = "empty_log", Incomplete, "the checkpoint covers no entries, so nothing can be verified";
    // Coverage per dataset.
    CoverageContiguous = "coverage_contiguous", Ok, "the windows of a dataset follow each other with no unaccounted time and no overlap; the message counts them by kind (archive, empty, gap), declared gaps by reason and time, and records (and late entries with their records, if any)";
    CoverageCounted = "coverage_counted", Info, "the same counts for a dataset whose coverage has holes or overlaps (reported separately)";
    CoverageGap = "coverage_gap", Tamper, "time between two windows of a dataset has no entry (silent coverage gap)";
    CoverageOverlap = "coverage_overlap", Tamper, "a window starts before the previous one ended (duplicate or time travel)";
    DeclaredGaps = "declared_gaps", Gap, "--fail-on-gap: a dataset has gap entries (windows declared uncollected), named by reason and time";
    LateWithoutWindow = "late_without_window", Tamper, "a late entry names no window that an earlier archive or empty entry of its dataset accounts for exactly (a gap window, part of a window, or none)";
    WindowShort = "window_short", Info, "a shortfall entry: the source counted more records for a window than the log holds (records the source gave up delivering); the message gives the source's count and what the log holds";
    DeclaredShortfalls = "declared_shortfalls", Gap, "--fail-on-gap: a dataset has windows still short of the source's count (shortfall entries not made whole by later records), named with the counts";
    ShortfallWithoutWindow = "shortfall_without_window", Tamper, "a shortfall entry names no window that an earlier archive or empty entry of its dataset accounts for exactly";
    ShortfallInvalid = "shortfall_invalid", Tamper, "a second shortfall entry for a window, or one whose count is not above what the log held for the window plus the tolerance";
    // Archive objects.
    ArchivesVerified = "archives_verified", Ok, "every logged archive is present with the logged bytes";
    ArchiveMissing = "archive_missing", Tamper, "a logged archive is gone and no valid prune entry covers it";
    StoredSha256Mismatch = "stored_sha256_mismatch", Tamper, "the stored bytes differ from the logged size or SHA-256 (modified, truncated, bit rot)";
    ContentSha256Mismatch = "content_sha256_mismatch", Tamper, "the decompressed content differs from the logged SHA-256 (--deep)";
    RecordCountMismatch = "record_count_mismatch", Tamper, "the content holds another number of records than logged (--deep)";
    ArchiveCorrupt = "archive_corrupt", Tamper, "the object is not a clean sequence of zstd frames (--deep)";
    ArchiveVersionMismatch = "archive_version_mismatch", Tamper, "the current object version is not the logged one (overwritten)";
    VersionsNotCompared = "versions_not_compared", Info, "--replica: logged object versions name the sealing copy's versions and were not compared; the message counts the archives read in other versions";
    ArchiveKeyNoncanonical = "archive_key_noncanonical", Tamper, "an entry's object key is not the key FORMAT.md §2 derives for it";
    DuplicateReference = "duplicate_reference", Tamper, "two archive or late entries name the same object";
    ArchivePruned = "archive_pruned", Info, "an archive was deleted under a valid prune entry";
    PrunePending = "prune_pending", Info, "an archive is logged as pruned but still stored";
    ArchivesSkipped = "archives_skipped", Info, "archive objects of windows before --since were not read";
    // Index objects (FORMAT.md §12).
    IndexBadTarget = "index_bad_target", Tamper, "an index entry does not name an earlier archive or late entry exactly (index, entry id, dataset, window, retain-until, key), or indexes one a second time";
    IndexMismatch = "index_mismatch", Tamper, "an index object is not the index its archive's content rebuilds to, or names other archive bytes (--deep)";
    IndexCorrupt = "index_corrupt", Tamper, "an index object does not decode as FORMAT.md §12 lays it out (--deep)";
    ArchivesUnindexed = "archives_unindexed", Info, "archive or late entries without an index entry (sealed before indexes existed, or not rebuilt yet): a search reads them whole";
    // Retention.
    PruneBeforeRetainUntil = "prune_before_retain_until", Tamper, "an archive was pruned before its retain-until (early deletion disguised as retention)";
    PruneBadTarget = "prune_bad_target", Tamper, "a prune entry does not match the archive entry it names";
    PruneDuplicate = "prune_duplicate", Tamper, "an archive entry is pruned more than once";
    // Everything under the zone prefix.
    InventoryClean = "inventory_clean", Ok, "every object under the zone prefix is referenced once or is an expected tlog file";
    ObjectUnreferenced = "object_unreferenced", Tamper, "an object no entry references (injected or planted)";
    ObjectPending = "object_pending", Info, "an archive for a window after the sealed ones, or a late object written moments ago, young enough to be awaiting its entry";
    InventorySkipped = "inventory_skipped", Info, "unreferenced objects were not judged because the log could not be read whole";
    TlogFilesVerified = "tlog_files_verified", Ok, "tlog/ holds exactly the tiles and checkpoints the log implies, with the right bytes";
    TileMissing = "tile_missing", Tamper, "a tile or entry bundle the published sizes imply is missing";
    TileMismatch = "tile_mismatch", Tamper, "a tile or entry bundle does not hold the hashes or entries of the log";
    TlogUnexpectedObject = "tlog_unexpected_object", Tamper, "an object under tlog/ that is no checkpoint, tile or bundle the log implies";
    UnsignedTail = "unsigned_tail", Tamper, "tiles hold entries beyond the newest checkpoint and it is stale (rollback residue)";
    PendingTail = "pending_tail", Info, "tiles beyond the newest checkpoint while it is fresh (sealer between tiles and checkpoint)";
    // Freshness and remembered state.
    Fresh = "fresh", Ok, "the newest entry is younger than --max-staleness";
    CheckpointStale = "checkpoint_stale", Tamper, "the newest entry is older than --max-staleness (tail truncation or a stopped sealer)";
    StalenessNotChecked = "staleness_not_checked", Info, "--max-staleness off: tail truncation is only caught with --state";
    StateConsistent = "state_consistent", Ok, "the log extends the (size, root) remembered from the last verified run";
    StateRollback = "state_rollback", Tamper, "the log is smaller than when it was last verified (rollback, tail truncation)";
    StateFork = "state_fork", Tamper, "the log's prefix root differs from the root remembered for that size (fork, rewrite)";
    StateUnreadable = "state_unreadable", Incomplete, "the --state file could not be read or parsed";
    StateRecorded = "state_recorded", Ok, "the verified (size, root) was written to the --state file";
    StateNotUpdated = "state_not_updated", Info, "the --state file was left unchanged because the run did not verify";
    StateWriteFailed = "state_write_failed", Incomplete, "the --state file could not be written";
    // Object Lock posture.
    PostureLocked = "posture_locked", Ok, "every checked archive has COMPLIANCE retention until at least its logged retain-until";
    NoObjectLock = "no_object_lock", Warning, "archives without Object Lock retention: they can be deleted or replaced early";
    GovernanceMode = "governance_mode", Warning, "archives under GOVERNANCE retention, which privileged users can bypass";
    RetentionShorter = "retention_shorter", Warning, "an archive's Object Lock retain-until is earlier than the logged retain-until";
    PostureNotApplicable = "posture_not_applicable", Info, "a local directory has no Object Lock; protection rests on the file system";
    // Erasure.
    TenantErased = "tenant_erased", Info, "an erasure entry: the tenant was erased (GDPR Art. 17) and the log stops on purpose";
    ErasedNotStale = "erased_not_stale", Ok, "the log stopped at its tenant's erasure, so its age is not tail-truncation evidence";
    WindowAfterErasure = "window_after_erasure", Warning, "a window ending after the erasure, or a second erasure entry (data collected after erasure)";
    LateAfterErasure = "late_after_erasure", Warning, "a late entry after the erasure entry (records archived after the tenant was erased)";
    ShortfallAfterErasure = "shortfall_after_erasure", Warning, "a shortfall entry after the erasure entry (the tenant's windows were still being counted after it was erased)";
    // Keys.
    KeyAnnounced = "key_announced", Info, "a key entry announces a checkpoint signing key (trusted only if pinned)";
}

/// One result line: `<kind>\t<path>\t<STATUS>: <reason code>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    /// The object key, tlog path, dataset or prefix the finding is about.
    pub path: String,
    pub reason: Reason,
    pub message: String,
}

impl Finding {
    pub fn new(
        kind: Kind,
        path: impl Into<String>,
        reason: Reason,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            path: path.into(),
            reason,
            message: message.into(),
        }
    }

    pub fn status(&self) -> Status {
        self.reason.status()
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\t{}\t{}: {}: {}",
            self.kind,
            self.path,
            self.status(),
            self.reason.code(),
            one_line(&self.message)
        )
    }
}

/// Keeps one finding on one line whatever a provider's error text contains.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            let code = reason.code();
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(
                code.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{code}"
            );
        }
    }

    #[test]
    fn the_readme_documents_every_reason_with_its_status() {
        let readme = include_str!("../README.md");
        for reason in Reason::ALL {
            let row = format!("| `{}` | {} |", reason.code(), reason.status());
            assert!(readme.contains(&row), "README.md lacks the row {row}");
        }
    }

    #[test]
    fn a_finding_is_one_tab_separated_line() {
        let finding = Finding::new(
            Kind::Archive,
            "a/b.zst",
            Reason::ArchiveMissing,
            "gone\nreally",
        );
        assert_eq!(
            finding.to_string(),
            "archive\ta/b.zst\tTAMPER: archive_missing: gone really"
        );
    }
}
