//! Signed checkpoints (docs/FORMAT.md §8): a C2SP tlog-checkpoint body in a C2SP signed note,
//! signed with Ed25519.
//!
//! ```text
//! rainlogs/<tenant>/<zone>\n<tree size>\n<base64 root>\n[<extension line>\n...]
//! \n
//! — <key name> <base64(key id ∥ signature)>\n
//! ```

use signed_note::{Note, NoteError, VerifierList};

use crate::hash::Sha256Hash;
use crate::keys::{NoteSigningKey, NoteVerifierKey};
use crate::merkle::{self, MerkleError};
use crate::names::Origin;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("malformed checkpoint body")]
    MalformedBody,
    #[error("malformed signed note")]
    MalformedNote,
    #[error("checkpoint origin {found:?} is not the expected {expected:?}")]
    WrongOrigin { expected: String, found: String },
    #[error("no signature from a trusted key")]
    UnknownKey,
    #[error("bad signature by trusted key {name}+{id:08x}")]
    BadSignature { name: String, id: u32 },
    #[error("trusted keys are ambiguous (two keys share name and id)")]
    AmbiguousKey,
    #[error("invalid extension line {0:?}")]
    BadExtension(String),
    #[error("checkpoints are not consistent: {0}")]
    Inconsistent(MerkleError),
    #[error("origin changed from {old} to {new}")]
    OriginChanged { old: String, new: String },
    #[error("signing failed: {0}")]
    Signing(String),
}

/// A tree head: which log, how many entries, which root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: Origin,
    pub size: u64,
    pub root: Sha256Hash,
    /// Optional extension lines (non-empty, without newline). RainLogs writes none.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    pub fn new(origin: Origin, size: u64, root: Sha256Hash) -> Self {
        Self {
            origin,
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text (body) that gets signed.
    pub fn to_body(&self) -> Result<String, CheckpointError> {
        for line in &self.extensions {
            if line.is_empty() || line.chars().any(char::is_control) {
                return Err(CheckpointError::BadExtension(line.clone()));
            }
        }
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        Ok(body)
    }

    /// Parses a checkpoint body; the origin must be a RainLogs origin.
    pub fn parse_body(body: &[u8]) -> Result<Self, CheckpointError> {
        let parsed =
            tlog_tiles::Checkpoint::from_bytes(body).map_err(|_| CheckpointError::MalformedBody)?;
        let origin = Origin::parse(parsed.origin()).map_err(|_| CheckpointError::WrongOrigin {
            expected: "rainlogs/<tenant>/<zone>".into(),
            found: parsed.origin().to_owned(),
        })?;
        let extensions = parsed
            .extension()
            .split_terminator('\n')
            .map(str::to_owned)
            .collect();
        let checkpoint = Self {
            origin,
            size: parsed.size(),
            root: (*parsed.hash()).into(),
            extensions,
        };
        // Accept only the exact text this type writes (e.g. no non-canonical base64).
        if checkpoint.to_body()?.as_bytes() != body {
            return Err(CheckpointError::MalformedBody);
        }
        Ok(checkpoint)
    }
}

/// Signs `checkpoint` as a signed note.
pub fn sign_checkpoint(
    checkpoint: &Checkpoint,
    key: &NoteSigningKey,
) -> Result<String, CheckpointError> {
    let body = checkpoint.to_body()?;
    let mut note = Note::new(body.as_bytes(), &[]).map_err(|_| CheckpointError::MalformedBody)?;
    note.add_sigs(&[key])
        .map_err(|e| CheckpointError::Signing(e.to_string()))?;
    String::from_utf8(note.to_bytes()).map_err(|_| CheckpointError::MalformedNote)
}

/// Signs `next` only if it extends `previous` (the last checkpoint this log signed): same origin,
/// not smaller, and `proof` is a valid consistency proof between them. A log must never sign two
/// inconsistent checkpoints.
pub fn sign_consistent_checkpoint(
    previous: Option<&Checkpoint>,
    next: &Checkpoint,
    proof: &[Sha256Hash],
    key: &NoteSigningKey,
) -> Result<String, CheckpointError> {
    if let Some(previous) = previous {
        check_consistent(previous, next, proof)?;
    }
    sign_checkpoint(next, key)
}

/// Checks that `newer` extends `older` (same origin, consistency proof verifies).
pub fn check_consistent(
    older: &Checkpoint,
    newer: &Checkpoint,
    proof: &[Sha256Hash],
) -> Result<(), CheckpointError> {
    if older.origin != newer.origin {
        return Err(CheckpointError::OriginChanged {
            old: older.origin.to_string(),
            new: newer.origin.to_string(),
        });
    }
    merkle::verify_consistency(older.size, &older.root, newer.size, &newer.root, proof)
        .map_err(CheckpointError::Inconsistent)
}

/// A checkpoint whose signature verified with a trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    pub checkpoint: Checkpoint,
    /// The trusted keys whose signatures verified.
    pub signed_by: Vec<NoteVerifierKey>,
    /// `name+id` of signatures from keys that are not trusted (ignored, as the spec requires).
    pub unknown_signers: Vec<String>,
}

/// Opens a signed checkpoint note: well-formed note, at least one valid signature by a key in
/// `trusted` and no invalid one, body well-formed, origin equal to `expected_origin`.
pub fn open_checkpoint(
    note: &[u8],
    expected_origin: &Origin,
    trusted: &[NoteVerifierKey],
) -> Result<VerifiedCheckpoint, CheckpointError> {
    let parsed = Note::from_bytes(note).map_err(|_| CheckpointError::MalformedNote)?;
    // Note::from_bytes splits at the last blank line; reject notes it would re-spell.
    if parsed.to_bytes() != note {
        return Err(CheckpointError::MalformedNote);
    }
    let verifiers = VerifierList::new(
        trusted
            .iter()
            .map(|k| Box::new(k.clone()) as Box<dyn signed_note::Verifier>)
            .collect(),
    );
    let (verified, unverified) = parsed.verify(&verifiers).map_err(|e| match e {
        NoteError::InvalidSignature { name, id } => CheckpointError::BadSignature { name, id },
        NoteError::UnverifiedNote => CheckpointError::UnknownKey,
        NoteError::VerificationError(signed_note::VerificationError::AmbiguousKey { .. }) => {
            CheckpointError::AmbiguousKey
        }
        _ => CheckpointError::MalformedNote,
    })?;
    let checkpoint = Checkpoint::parse_body(parsed.text())?;
    if checkpoint.origin != *expected_origin {
        return Err(CheckpointError::WrongOrigin {
            expected: expected_origin.to_string(),
            found: checkpoint.origin.to_string(),
        });
    }
    let signed_by = verified
        .iter()
        .filter_map(|sig| {
            trusted
                .iter()
                .find(|k| k.name() == sig.name() && k.key_id() == sig.id())
                .cloned()
        })
        .collect();
    let unknown_signers = unverified
        .iter()
        .map(|sig| format!("{}+{:08x}", sig.name(), sig.id()))
        .collect();
    Ok(VerifiedCheckpoint {
        checkpoint,
        signed_by,
        unknown_signers,
    })
}
