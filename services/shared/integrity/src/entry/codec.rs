//! Byte layout of an entry: flattening to the fixed field list, writing, strict reading.

use super::kinds::{CollectionMethod, GapReason, Sampling};
use super::{
    ArchiveRecord, ENTRY_MAGIC, ENTRY_VERSION, EmptyRecord, Entry, EntryBody, EntryError,
    EntryKind, GapRecord, IndexRecord, KeyRecord, MAX_ENTRY_LEN, MAX_OBJECT_TEXT_LEN, ObjectRef,
    PruneRecord, ShortfallRecord,
};
use crate::hash::Sha256Hash;
use crate::keys::NoteVerifierKey;
use crate::names::{Dataset, Name, Origin, Window};

/// Every field of every kind, in encoding order, as plain values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Flat {
    kind: u8,
    index: u64,
    origin: String,
    dataset: String,
    window_start_ns: u64,
    window_end_ns: u64,
    method: u8,
    sampling: u32,
    object_key: String,
    object_version: String,
    stored_size: u64,
    stored_sha256: [u8; 32],
    content_sha256: [u8; 32],
    record_count: u64,
    retain_until_ns: u64,
    gap_reason: u8,
    prune_target_index: u64,
    prune_target_entry_id: [u8; 32],
    prune_policy: String,
    pruned_at_ns: u64,
    key: String,
    prev_chain_hash: [u8; 32],
    sealed_at_ns: u64,
}

/// One encoded field, for writing and for the annotated dump in docs/FORMAT.md.
enum Value<'a> {
    U8(u8),
    U32(u32),
    U64(u64),
    Hash(&'a [u8; 32]),
    Text(&'a str),
}

impl Value<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::U8(v) => out.push(*v),
            Value::U32(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::U64(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Hash(h) => out.extend_from_slice(&h[..]),
            Value::Text(s) => {
                // Length is bounded by validation (every string ≤ 1024 bytes) before writing.
                let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

impl Flat {
    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        vec![
            ("kind", Value::U8(self.kind)),
            ("index", Value::U64(self.index)),
            ("origin", Value::Text(&self.origin)),
            ("dataset", Value::Text(&self.dataset)),
            ("window_start_ns", Value::U64(self.window_start_ns)),
            ("window_end_ns", Value::U64(self.window_end_ns)),
            ("method", Value::U8(self.method)),
            ("sampling", Value::U32(self.sampling)),
            ("object_key", Value::Text(&self.object_key)),
            ("object_version", Value::Text(&self.object_version)),
            ("stored_size", Value::U64(self.stored_size)),
            ("stored_sha256", Value::Hash(&self.stored_sha256)),
            ("content_sha256", Value::Hash(&self.content_sha256)),
            ("record_count", Value::U64(self.record_count)),
            ("retain_until_ns", Value::U64(self.retain_until_ns)),
            ("gap_reason", Value::U8(self.gap_reason)),
            ("prune_target_index", Value::U64(self.prune_target_index)),
            (
                "prune_target_entry_id",
                Value::Hash(&self.prune_target_entry_id),
            ),
            ("prune_policy", Value::Text(&self.prune_policy)),
            ("pruned_at_ns", Value::U64(self.pruned_at_ns)),
            ("key", Value::Text(&self.key)),
            ("prev_chain_hash", Value::Hash(&self.prev_chain_hash)),
            ("sealed_at_ns", Value::U64(self.sealed_at_ns)),
        ]
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&ENTRY_MAGIC);
        out.push(ENTRY_VERSION);
        for (_, value) in self.fields() {
            value.write(&mut out);
        }
        out
    }

    fn from_entry(entry: &Entry) -> Self {
        let mut flat = Flat {
            kind: entry.kind().code(),
            index: entry.index,
            origin: entry.origin.as_str().to_owned(),
            prev_chain_hash: entry.prev_chain_hash.0,
            sealed_at_ns: entry.sealed_at_ns,
            ..Flat::default()
        };
        let set_window = |flat: &mut Flat, dataset: &Dataset, window: &Window| {
            flat.dataset = dataset.as_str().to_owned();
            flat.window_start_ns = window.start_ns();
            flat.window_end_ns = window.end_ns();
        };
        match &entry.body {
            EntryBody::Archive(r) | EntryBody::Late(r) => {
                set_window(&mut flat, &r.dataset, &r.window);
                flat.method = r.method.code();
                flat.sampling = r.sampling.code();
                flat.object_key = r.object.key.clone();
                flat.object_version = r.object.version.clone();
                flat.stored_size = r.stored_size;
                flat.stored_sha256 = r.stored_sha256.0;
                flat.content_sha256 = r.content_sha256.0;
                flat.record_count = r.record_count;
                flat.retain_until_ns = r.retain_until_ns;
            }
            EntryBody::Empty(r) => {
                set_window(&mut flat, &r.dataset, &r.window);
                flat.method = r.method.code();
                flat.sampling = r.sampling.code();
            }
            EntryBody::Gap(r) => {
                set_window(&mut flat, &r.dataset, &r.window);
                flat.method = r.method.code();
                flat.gap_reason = r.reason.code();
            }
            EntryBody::Shortfall(r) => {
                set_window(&mut flat, &r.dataset, &r.window);
                flat.method = r.method.code();
                flat.record_count = r.source_count;
            }
            EntryBody::Prune(r) => {
                flat.dataset = r.dataset.as_str().to_owned();
                flat.object_key = r.object.key.clone();
                flat.object_version = r.object.version.clone();
                flat.prune_target_index = r.target_index;
                flat.prune_target_entry_id = r.target_entry_id.0;
                flat.prune_policy = r.policy.as_str().to_owned();
                flat.pruned_at_ns = r.pruned_at_ns;
            }
            EntryBody::Index(r) => {
                set_window(&mut flat, &r.dataset, &r.window);
                flat.object_key = r.object.key.clone();
                flat.object_version = r.object.version.clone();
                flat.stored_size = r.stored_size;
                flat.stored_sha256 = r.stored_sha256.0;
                flat.retain_until_ns = r.retain_until_ns;
                flat.prune_target_index = r.target_index;
                flat.prune_target_entry_id = r.target_entry_id.0;
            }
            EntryBody::Key(r) => {
                flat.key = r.verifier_key.to_string();
            }
            EntryBody::Erasure => {}
        }
        flat
    }

    /// Builds the typed entry, enforcing every per-kind rule of docs/FORMAT.md §4.3.
    fn to_entry(&self) -> Result<Entry, EntryError> {
        let kind = EntryKind::from_code(self.kind)?;
        let origin = Origin::parse(&self.origin)?;
        if self.sealed_at_ns == 0 {
            return Err(invalid("sealed_at_ns", "must be non-zero"));
        }
        let mut rules = KindRules { kind, flat: self };
        let body = match kind {
            EntryKind::Archive | EntryKind::Late => {
                rules.unused_gap_fields()?;
                rules.unused_prune_fields()?;
                rules.unused_key()?;
                if self.stored_size == 0 {
                    return Err(invalid("stored_size", "an archive object is never empty"));
                }
                if self.record_count == 0 {
                    return Err(invalid(
                        "record_count",
                        "an archive holds at least one record (use an empty entry)",
                    ));
                }
                if self.retain_until_ns == 0 {
                    return Err(invalid("retain_until_ns", "must be non-zero"));
                }
                let record = ArchiveRecord {
                    dataset: Dataset::new(&self.dataset)?,
                    window: Window::new(self.window_start_ns, self.window_end_ns)?,
                    method: CollectionMethod::from_code(self.method)?,
                    sampling: Sampling::from_code(self.sampling)?,
                    object: self.object()?,
                    stored_size: self.stored_size,
                    stored_sha256: Sha256Hash(self.stored_sha256),
                    content_sha256: Sha256Hash(self.content_sha256),
                    record_count: self.record_count,
                    retain_until_ns: self.retain_until_ns,
                };
                if kind == EntryKind::Late {
                    EntryBody::Late(record)
                } else {
                    EntryBody::Archive(record)
                }
            }
            EntryKind::Empty => {
                rules.unused_object_fields()?;
                rules.unused_gap_fields()?;
                rules.unused_prune_fields()?;
                rules.unused_key()?;
                EntryBody::Empty(EmptyRecord {
                    dataset: Dataset::new(&self.dataset)?,
                    window: Window::new(self.window_start_ns, self.window_end_ns)?,
                    method: CollectionMethod::from_code(self.method)?,
                    sampling: Sampling::from_code(self.sampling)?,
                })
            }
            EntryKind::Gap => {
                rules.zero("sampling", u64::from(self.sampling))?;
                rules.unused_object_fields()?;
                rules.unused_prune_fields()?;
                rules.unused_key()?;
                EntryBody::Gap(GapRecord {
                    dataset: Dataset::new(&self.dataset)?,
                    window: Window::new(self.window_start_ns, self.window_end_ns)?,
                    method: CollectionMethod::from_code(self.method)?,
                    reason: GapReason::from_code(self.gap_reason)?,
                })
            }
            EntryKind::Shortfall => {
                rules.zero("sampling", u64::from(self.sampling))?;
                rules.unused_object_ref()?;
                rules.unused_stored_object()?;
                rules.unused_gap_fields()?;
                rules.unused_prune_fields()?;
                rules.unused_key()?;
                if self.record_count == 0 {
                    return Err(invalid(
                        "record_count",
                        "a shortfall names the source's count, at least one record",
                    ));
                }
                EntryBody::Shortfall(ShortfallRecord {
                    dataset: Dataset::new(&self.dataset)?,
                    window: Window::new(self.window_start_ns, self.window_end_ns)?,
                    method: CollectionMethod::from_code(self.method)?,
                    source_count: self.record_count,
                })
            }
            EntryKind::Prune => {
                rules.unused_window_fields()?;
                rules.unused_stored_object()?;
                rules.zero("record_count", self.record_count)?;
                rules.unused_gap_fields()?;
                rules.unused_key()?;
                self.earlier_target()?;
                if self.pruned_at_ns == 0 {
                    return Err(invalid("pruned_at_ns", "must be non-zero"));
                }
                EntryBody::Prune(PruneRecord {
                    dataset: Dataset::new(&self.dataset)?,
                    object: self.object()?,
                    target_index: self.prune_target_index,
                    target_entry_id: Sha256Hash(self.prune_target_entry_id),
                    policy: Name::new(&self.prune_policy)?,
                    pruned_at_ns: self.pruned_at_ns,
                })
            }
            EntryKind::Index => {
                rules.zero("method", u64::from(self.method))?;
                rules.zero("sampling", u64::from(self.sampling))?;
                rules.zero_hash("content_sha256", &self.content_sha256)?;
                rules.zero("record_count", self.record_count)?;
                rules.unused_gap_fields()?;
                rules.empty("prune_policy", &self.prune_policy)?;
                rules.zero("pruned_at_ns", self.pruned_at_ns)?;
                rules.unused_key()?;
                if self.stored_size == 0 {
                    return Err(invalid("stored_size", "an index object is never empty"));
                }
                if self.retain_until_ns == 0 {
                    return Err(invalid("retain_until_ns", "must be non-zero"));
                }
                self.earlier_target()?;
                EntryBody::Index(IndexRecord {
                    dataset: Dataset::new(&self.dataset)?,
                    window: Window::new(self.window_start_ns, self.window_end_ns)?,
                    object: self.object()?,
                    stored_size: self.stored_size,
                    stored_sha256: Sha256Hash(self.stored_sha256),
                    target_index: self.prune_target_index,
                    target_entry_id: Sha256Hash(self.prune_target_entry_id),
                    retain_until_ns: self.retain_until_ns,
                })
            }
            EntryKind::Key => {
                rules.empty("dataset", &self.dataset)?;
                rules.unused_window_fields()?;
                rules.unused_object_fields()?;
                rules.unused_gap_fields()?;
                rules.unused_prune_fields()?;
                let verifier_key = NoteVerifierKey::parse(&self.key)
                    .map_err(|e| invalid("key", &e.to_string()))?;
                EntryBody::Key(KeyRecord { verifier_key })
            }
            EntryKind::Erasure => {
                rules.empty("dataset", &self.dataset)?;
                rules.unused_window_fields()?;
                rules.unused_object_fields()?;
                rules.unused_gap_fields()?;
                rules.unused_prune_fields()?;
                rules.unused_key()?;
                EntryBody::Erasure
            }
        };
        Ok(Entry {
            index: self.index,
            origin,
            prev_chain_hash: Sha256Hash(self.prev_chain_hash),
            sealed_at_ns: self.sealed_at_ns,
            body,
        })
    }

    /// A prune or index entry names an earlier entry, by index and id.
    fn earlier_target(&self) -> Result<(), EntryError> {
        if self.prune_target_index >= self.index {
            return Err(invalid(
                "prune_target_index",
                "must refer to an earlier entry",
            ));
        }
        if self.prune_target_entry_id == [0; 32] {
            return Err(invalid("prune_target_entry_id", "must be set"));
        }
        Ok(())
    }

    fn object(&self) -> Result<ObjectRef, EntryError> {
        validate_object_text("object_key", &self.object_key, false)?;
        validate_object_text("object_version", &self.object_version, true)?;
        Ok(ObjectRef {
            key: self.object_key.clone(),
            version: self.object_version.clone(),
        })
    }
}

/// Checks that the fields a kind does not use hold their zero value.
struct KindRules<'a> {
    kind: EntryKind,
    flat: &'a Flat,
}

impl KindRules<'_> {
    fn fail(&self, field: &'static str) -> EntryError {
        EntryError::NotApplicable {
            field,
            kind: self.kind.as_str(),
        }
    }

    fn zero(&mut self, field: &'static str, value: u64) -> Result<(), EntryError> {
        if value == 0 {
            Ok(())
        } else {
            Err(self.fail(field))
        }
    }

    fn zero_hash(&mut self, field: &'static str, value: &[u8; 32]) -> Result<(), EntryError> {
        if *value == [0; 32] {
            Ok(())
        } else {
            Err(self.fail(field))
        }
    }

    fn empty(&mut self, field: &'static str, value: &str) -> Result<(), EntryError> {
        if value.is_empty() {
            Ok(())
        } else {
            Err(self.fail(field))
        }
    }

    fn unused_window_fields(&mut self) -> Result<(), EntryError> {
        let f = self.flat;
        self.zero("window_start_ns", f.window_start_ns)?;
        self.zero("window_end_ns", f.window_end_ns)?;
        self.zero("method", u64::from(f.method))?;
        self.zero("sampling", u64::from(f.sampling))
    }

    fn unused_object_fields(&mut self) -> Result<(), EntryError> {
        self.unused_object_ref()?;
        self.unused_stored_object()?;
        self.zero("record_count", self.flat.record_count)
    }

    /// Key and version: a prune names the object it deleted, other kinds without one leave them.
    fn unused_object_ref(&mut self) -> Result<(), EntryError> {
        let f = self.flat;
        self.empty("object_key", &f.object_key)?;
        self.empty("object_version", &f.object_version)
    }

    /// What describes a stored object: size, hashes, retain-until.
    fn unused_stored_object(&mut self) -> Result<(), EntryError> {
        let f = self.flat;
        self.zero("stored_size", f.stored_size)?;
        self.zero_hash("stored_sha256", &f.stored_sha256)?;
        self.zero_hash("content_sha256", &f.content_sha256)?;
        self.zero("retain_until_ns", f.retain_until_ns)
    }

    fn unused_gap_fields(&mut self) -> Result<(), EntryError> {
        self.zero("gap_reason", u64::from(self.flat.gap_reason))
    }

    fn unused_prune_fields(&mut self) -> Result<(), EntryError> {
        let f = self.flat;
        self.zero("prune_target_index", f.prune_target_index)?;
        self.zero_hash("prune_target_entry_id", &f.prune_target_entry_id)?;
        self.empty("prune_policy", &f.prune_policy)?;
        self.zero("pruned_at_ns", f.pruned_at_ns)
    }

    fn unused_key(&mut self) -> Result<(), EntryError> {
        self.empty("key", &self.flat.key)
    }
}

fn invalid(field: &'static str, reason: &str) -> EntryError {
    EntryError::InvalidField {
        field,
        reason: reason.to_owned(),
    }
}

/// Object keys and versions: printable ASCII without space (0x21-0x7E), at most 1024 bytes.
fn validate_object_text(
    field: &'static str,
    value: &str,
    may_be_empty: bool,
) -> Result<(), EntryError> {
    if value.is_empty() && !may_be_empty {
        return Err(invalid(field, "must not be empty"));
    }
    if value.len() > MAX_OBJECT_TEXT_LEN {
        return Err(invalid(field, "longer than 1024 bytes"));
    }
    if !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(invalid(field, "only printable ASCII without spaces"));
    }
    Ok(())
}

/// Encodes an entry after checking every rule the decoder checks.
pub fn encode(entry: &Entry) -> Result<Vec<u8>, EntryError> {
    let flat = Flat::from_entry(entry);
    // Sampling values without an encoding would otherwise be written as another meaning.
    if let Some(sampling) = match &entry.body {
        EntryBody::Archive(r) | EntryBody::Late(r) => Some(r.sampling),
        EntryBody::Empty(r) => Some(r.sampling),
        _ => None,
    } && !sampling.is_valid()
    {
        return Err(invalid("sampling", "interval must be 1..=0xFFFFFFFE"));
    }
    flat.to_entry()?;
    let bytes = flat.to_bytes();
    if bytes.len() > MAX_ENTRY_LEN {
        return Err(EntryError::TooLong(bytes.len()));
    }
    Ok(bytes)
}

/// Decodes an entry, rejecting: a wrong magic, any version but 1, unknown kinds or codes,
/// truncation, trailing bytes, invalid UTF-8 or names, non-zero fields a kind does not use,
/// and any byte string that is not the canonical encoding of the entry it decodes to.
pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
    if bytes.len() > MAX_ENTRY_LEN {
        return Err(EntryError::TooLong(bytes.len()));
    }
    let mut reader = Reader { rest: bytes };
    if reader.take("magic", 4)? != ENTRY_MAGIC {
        return Err(EntryError::BadMagic);
    }
    let version = reader.u8("version")?;
    if version != ENTRY_VERSION {
        return Err(EntryError::UnsupportedVersion(version));
    }
    let flat = Flat {
        kind: reader.u8("kind")?,
        index: reader.u64("index")?,
        origin: reader.text("origin")?,
        dataset: reader.text("dataset")?,
        window_start_ns: reader.u64("window_start_ns")?,
        window_end_ns: reader.u64("window_end_ns")?,
        method: reader.u8("method")?,
        sampling: reader.u32("sampling")?,
        object_key: reader.text("object_key")?,
        object_version: reader.text("object_version")?,
        stored_size: reader.u64("stored_size")?,
        stored_sha256: reader.hash("stored_sha256")?,
        content_sha256: reader.hash("content_sha256")?,
        record_count: reader.u64("record_count")?,
        retain_until_ns: reader.u64("retain_until_ns")?,
        gap_reason: reader.u8("gap_reason")?,
        prune_target_index: reader.u64("prune_target_index")?,
        prune_target_entry_id: reader.hash("prune_target_entry_id")?,
        prune_policy: reader.text("prune_policy")?,
        pruned_at_ns: reader.u64("pruned_at_ns")?,
        key: reader.text("key")?,
        prev_chain_hash: reader.hash("prev_chain_hash")?,
        sealed_at_ns: reader.u64("sealed_at_ns")?,
    };
    if !reader.rest.is_empty() {
        return Err(EntryError::TrailingBytes(reader.rest.len()));
    }
    let entry = flat.to_entry()?;
    // The layout leaves no room for a second spelling, but prove it rather than argue it.
    if encode(&entry)? != bytes {
        return Err(EntryError::NonCanonical);
    }
    Ok(entry)
}

/// A field-by-field hex dump of an encoded entry (offset, field, hex, meaning), as quoted in
/// docs/FORMAT.md.
pub fn annotate(entry: &Entry) -> Result<String, EntryError> {
    let flat = Flat::from_entry(entry);
    encode(entry)?;
    let mut out = String::new();
    let mut offset = 0usize;
    let mut line = |name: &str, bytes: &[u8], meaning: String| {
        out.push_str(&format!(
            "{offset:04x}  {name:<22} {}{}\n",
            hex::encode(bytes),
            if meaning.is_empty() {
                String::new()
            } else {
                format!("  ({meaning})")
            }
        ));
        offset += bytes.len();
    };
    line("magic", &ENTRY_MAGIC, "\"RLEN\"".into());
    line("version", &[ENTRY_VERSION], "1".into());
    for (name, value) in flat.fields() {
        let mut bytes = Vec::new();
        value.write(&mut bytes);
        let meaning = match value {
            Value::U8(v) => v.to_string(),
            Value::U32(v) => v.to_string(),
            Value::U64(v) => v.to_string(),
            Value::Hash(_) => String::new(),
            Value::Text(s) => format!("len {} {:?}", s.len(), s),
        };
        line(name, &bytes, meaning);
    }
    Ok(out)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, len: usize) -> Result<&'a [u8], EntryError> {
        if self.rest.len() < len {
            return Err(EntryError::Truncated {
                field,
                needed: len - self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], EntryError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, EntryError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, EntryError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, EntryError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    fn hash(&mut self, field: &'static str) -> Result<[u8; 32], EntryError> {
        self.array(field)
    }

    fn text(&mut self, field: &'static str) -> Result<String, EntryError> {
        let len = u16::from_be_bytes(self.array(field)?);
        let bytes = self.take(field, usize::from(len))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| invalid(field, "not valid UTF-8"))
    }
}
