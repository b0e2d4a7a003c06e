//! Which stored copy of an archive a download serves (issue 22, "Downloads that lie").
//!
//! An archive may exist in up to three copies: the current version of the object on the primary
//! provider, the version the entry sealed (its version id is in the entry; Object Lock keeps it
//! unchanged even after a plain PUT made a newer, unlocked version) and the object on the
//! secondary provider when two are configured. They are tried in that order, and a copy is
//! served only when its bytes are the sealed ones:
//!
//! - archives up to [`BUFFER_LIMIT`] are read whole and hashed before the status line goes out,
//!   so a copy that does not match is passed over and, when no copy matches, the answer is an
//!   error, never a 200;
//! - larger archives cannot be hashed before they are sent: the copy is chosen by what its
//!   response says (its size, and for the primary's current version whether it is the sealed
//!   version), then streamed while it is hashed, and a mismatch cuts the connection before the
//!   last chunk (see `crate::download`).
//!
//! Every copy passed over is logged at error level (key, expected and found hash, which copy);
//! a download served from a fallback copy is logged and counted
//! (`rainlogs_archive_download_fallbacks`), and so is one that fails
//! (`rainlogs_archive_download_failures`, by reason).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use rainlogs_store::{Backend, ObjectKey, Replicated, Side, Store, StoreError};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Archives up to this size are read and checked whole before they are served.
pub const BUFFER_LIMIT: u64 = 32 * 1024 * 1024;

/// All archives being checked or served from memory at once hold at most this much (in KiB,
/// one permit each); a download that would exceed it waits for others to finish.
const BUFFER_BUDGET_KIB: usize = 256 * 1024;

static BUFFERED: Semaphore = Semaphore::const_new(BUFFER_BUDGET_KIB);

/// One copy of an archive, as named in logs, metrics and `X-RainLogs-Served-From`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedFrom {
    /// The current version of the object on the primary (or only) provider.
    PrimaryCurrent,
    /// The object version the entry sealed, on the primary (or only) provider.
    PrimarySealedVersion,
    /// The object on the secondary provider.
    Secondary,
}

impl ServedFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrimaryCurrent => "primary-current",
            Self::PrimarySealedVersion => "primary-sealed-version",
            Self::Secondary => "secondary",
        }
    }
}

/// What the entry sealed about the archive object.
#[derive(Debug, Clone, Copy)]
pub struct Sealed<'a> {
    pub key: &'a ObjectKey,
    /// The primary provider's version id when the archive was sealed; `None` when unversioned.
    pub version: Option<&'a str>,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// An opened copy: what its response said, and its body.
pub struct Opened {
    pub size: Option<u64>,
    pub version_id: Option<String>,
    pub body: Pin<Box<dyn AsyncRead + Send>>,
}

/// Where the copies of an archive are read from.
pub trait Copies: Sync {
    /// The copies there are, in the order they are tried.
    fn order(&self, sealed: &Sealed<'_>) -> Vec<ServedFrom>;

    fn open(
        &self,
        which: ServedFrom,
        sealed: &Sealed<'_>,
    ) -> impl Future<Output = Result<Opened, StoreError>> + Send;
}

/// The copies the store holds: the primary's current and sealed versions, and the secondary.
pub struct StoreCopies<'a> {
    primary: &'a Backend,
    replicated: Option<&'a Replicated>,
}

impl<'a> StoreCopies<'a> {
    pub fn new(store: &'a Store) -> Self {
        match store {
            Store::Single(backend) => Self {
                primary: backend,
                replicated: None,
            },
            Store::Replicated(replicated) => Self {
                primary: replicated.side(Side::Primary).backend(),
                replicated: Some(replicated),
            },
        }
    }
}

fn opened(reader: rainlogs_store::ObjectReader) -> Opened {
    Opened {
        size: reader.size,
        version_id: reader.version_id.clone(),
        body: Box::pin(reader),
    }
}

impl Copies for StoreCopies<'_> {
    fn order(&self, sealed: &Sealed<'_>) -> Vec<ServedFrom> {
        let mut order = vec![ServedFrom::PrimaryCurrent];
        if sealed.version.is_some() {
            order.push(ServedFrom::PrimarySealedVersion);
        }
        if self.replicated.is_some() {
            order.push(ServedFrom::Secondary);
        }
        order
    }

    async fn open(&self, which: ServedFrom, sealed: &Sealed<'_>) -> Result<Opened, StoreError> {
        let reader = match (which, sealed.version, self.replicated) {
            (ServedFrom::PrimaryCurrent, _, _) => self.primary.get(sealed.key).await,
            (ServedFrom::PrimarySealedVersion, Some(version), _) => {
                self.primary.get_version(sealed.key, version).await
            }
            (ServedFrom::Secondary, _, Some(replicated)) => {
                replicated.side(Side::Secondary).get(sealed.key).await
            }
            _ => Err(StoreError::NotFound {
                key: sealed.key.to_string(),
            }),
        };
        reader.map(opened)
    }
}

/// The body of the copy chosen.
pub enum ChosenBody {
    /// Read whole and checked: these are the sealed bytes.
    Checked(Bytes),
    /// Too large to read first: to be streamed and checked as it goes.
    Unchecked(Pin<Box<dyn AsyncRead + Send>>),
}

pub struct Chosen {
    pub from: ServedFrom,
    pub body: ChosenBody,
    /// Memory budget held while the checked bytes are served.
    pub permit: Option<SemaphorePermit<'static>>,
}

/// No copy can be served.
#[derive(Debug)]
pub enum NoCopy {
    /// Every copy was read (or is missing), and none holds the sealed bytes.
    NoIntactCopy,
    /// No copy was intact, and at least one could not be read for a reason that may pass
    /// (network, timeouts, 5xx): the store may answer later.
    Unavailable(StoreError),
}

/// What a copy held instead of the sealed bytes.
enum Found {
    Size(u64),
    Bytes { size: u64, sha256: [u8; 32] },
}

fn passed_over(sealed: &Sealed<'_>, which: ServedFrom, found: &Found) {
    let expected = hex::encode(sealed.sha256);
    match found {
        Found::Size(size) => tracing::error!(
            key = sealed.key.as_str(),
            copy = which.as_str(),
            expected_sha256 = %expected,
            expected_size = sealed.size,
            found_size = size,
            "archive copy does not match its sealed size; passed over"
        ),
        Found::Bytes { size, sha256 } => tracing::error!(
            key = sealed.key.as_str(),
            copy = which.as_str(),
            expected_sha256 = %expected,
            found_sha256 = %hex::encode(sha256),
            expected_size = sealed.size,
            found_size = size,
            "archive copy does not match its sealed hash; passed over"
        ),
    }
}

/// Reads at most `limit + 1` bytes: enough to tell a body longer than the sealed size.
async fn read_capped(mut body: Pin<Box<dyn AsyncRead + Send>>, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(usize::try_from(limit).unwrap_or(0));
    (&mut body).take(limit + 1).read_to_end(&mut bytes).await?;
    Ok(bytes)
}

/// The first copy of the sealed archive that can be served (see the module documentation).
/// Archives up to `buffer_limit` bytes are checked whole first.
pub async fn choose<C: Copies>(
    copies: &C,
    sealed: &Sealed<'_>,
    buffer_limit: u64,
) -> Result<Chosen, NoCopy> {
    let permit = if sealed.size <= buffer_limit {
        let kib = u32::try_from(sealed.size.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        // The semaphore is never closed; a budget smaller than one archive would be a bug.
        Some(BUFFERED.acquire_many(kib).await.map_err(|e| {
            NoCopy::Unavailable(StoreError::Config(format!("download memory budget: {e}")))
        })?)
    } else {
        None
    };
    let mut unavailable: Option<StoreError> = None;
    // Streaming only: the primary's current version when it is not the sealed version, kept
    // as the last resort.
    let mut deferred: Option<Opened> = None;
    // The version id of the primary's current copy, when it was found wrong.
    let mut rejected_version: Option<String> = None;
    for which in copies.order(sealed) {
        if which == ServedFrom::PrimarySealedVersion
            && rejected_version.is_some()
            && rejected_version.as_deref() == sealed.version
        {
            // The current version is the sealed one, and it was just found wrong.
            continue;
        }
        let opened = match copies.open(which, sealed).await {
            Ok(opened) => opened,
            Err(StoreError::NotFound { .. }) => {
                tracing::error!(
                    key = sealed.key.as_str(),
                    copy = which.as_str(),
                    "archive copy is missing; passed over"
                );
                continue;
            }
            Err(error) => {
                tracing::error!(
                    key = sealed.key.as_str(),
                    copy = which.as_str(),
                    %error,
                    "archive copy could not be read; passed over"
                );
                // Only a provider that may answer later makes the download worth retrying.
                if error.is_retryable() {
                    unavailable.get_or_insert(error);
                }
                continue;
            }
        };
        if let Some(size) = opened.size
            && size != sealed.size
        {
            passed_over(sealed, which, &Found::Size(size));
            if which == ServedFrom::PrimaryCurrent {
                rejected_version = opened.version_id;
            }
            continue;
        }
        if permit.is_some() {
            let version_id = opened.version_id.clone();
            match read_capped(opened.body, sealed.size).await {
                Ok(bytes) => {
                    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
                    if bytes.len() as u64 == sealed.size && sha256 == sealed.sha256 {
                        return Ok(Chosen {
                            from: which,
                            body: ChosenBody::Checked(Bytes::from(bytes)),
                            permit,
                        });
                    }
                    let size = bytes.len() as u64;
                    passed_over(sealed, which, &Found::Bytes { size, sha256 });
                    if which == ServedFrom::PrimaryCurrent {
                        rejected_version = version_id;
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        key = sealed.key.as_str(),
                        copy = which.as_str(),
                        %error,
                        "archive copy could not be read; passed over"
                    );
                    unavailable.get_or_insert(StoreError::Unavailable {
                        operation: "get",
                        key: sealed.key.to_string(),
                        detail: error.to_string(),
                    });
                }
            }
            continue;
        }
        if which == ServedFrom::PrimaryCurrent
            && let (Some(sealed_version), Some(version)) = (sealed.version, &opened.version_id)
            && version != sealed_version
        {
            tracing::error!(
                key = sealed.key.as_str(),
                copy = which.as_str(),
                sealed_version,
                current_version = %version,
                "the current version of the archive object is not the sealed version; \
                 trying the other copies first"
            );
            deferred = Some(opened);
            continue;
        }
        return Ok(Chosen {
            from: which,
            body: ChosenBody::Unchecked(opened.body),
            permit: None,
        });
    }
    if let Some(opened) = deferred {
        return Ok(Chosen {
            from: ServedFrom::PrimaryCurrent,
            body: ChosenBody::Unchecked(opened.body),
            permit: None,
        });
    }
    Err(unavailable.map_or(NoCopy::NoIntactCopy, NoCopy::Unavailable))
}

/// A download body that logs, within the archive's span, why it was cut off, counts it, and
/// holds the memory budget of a checked archive until it has been sent.
pub struct Watched<S> {
    inner: Pin<Box<S>>,
    span: tracing::Span,
    from: ServedFrom,
    _permit: Option<SemaphorePermit<'static>>,
}

impl<S> Watched<S> {
    pub fn new(
        inner: S,
        span: tracing::Span,
        from: ServedFrom,
        permit: Option<SemaphorePermit<'static>>,
    ) -> Self {
        Self {
            inner: Box::pin(inner),
            span,
            from,
            _permit: permit,
        }
    }
}

impl<S: Stream<Item = io::Result<Bytes>>> Stream for Watched<S> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        let polled = this.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Err(error))) = &polled {
            // `crate::download` has logged what was expected and found; the metric's fields
            // stay few and fixed.
            let mismatch = error.to_string().contains("does not match");
            if !mismatch {
                tracing::error!(copy = this.from.as_str(), %error, "reading the archive copy failed mid-body");
            }
            tracing::error!(
                monotonic_counter.rainlogs_archive_download_failures = 1_u64,
                reason = if mismatch { "cut_off" } else { "read_failed" },
                copy = this.from.as_str(),
                "archive download cut off mid-body"
            );
        }
        polled
    }
}

/// Logs and counts a download served from a copy other than the primary's current version.
pub fn note_fallback(from: ServedFrom, form: &'static str) {
    if from != ServedFrom::PrimaryCurrent {
        tracing::warn!(
            monotonic_counter.rainlogs_archive_download_fallbacks = 1_u64,
            served_from = from.as_str(),
            form,
            "archive download served from a fallback copy"
        );
    }
}

/// Logs and counts a download that found no copy to serve.
pub fn note_failure(reason: &'static str) {
    tracing::error!(
        monotonic_counter.rainlogs_archive_download_failures = 1_u64,
        reason,
        "archive download failed: no intact copy could be served"
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// A copy held in memory, (bytes, version id), or how opening it fails.
    type Held = Result<(Vec<u8>, Option<&'static str>), &'static str>;

    #[derive(Default)]
    struct Fake {
        copies: HashMap<&'static str, Held>,
        order: Vec<ServedFrom>,
        opened: Mutex<Vec<ServedFrom>>,
    }

    impl Fake {
        fn with(mut self, which: ServedFrom, bytes: &[u8], version: Option<&'static str>) -> Self {
            self.copies
                .insert(which.as_str(), Ok((bytes.to_vec(), version)));
            self.order.push(which);
            self
        }

        fn failing(mut self, which: ServedFrom, how: &'static str) -> Self {
            self.copies.insert(which.as_str(), Err(how));
            self.order.push(which);
            self
        }
    }

    impl Copies for Fake {
        fn order(&self, _: &Sealed<'_>) -> Vec<ServedFrom> {
            self.order.clone()
        }

        async fn open(&self, which: ServedFrom, sealed: &Sealed<'_>) -> Result<Opened, StoreError> {
            self.opened.lock().unwrap().push(which);
            match self.copies.get(which.as_str()) {
                Some(Ok((bytes, version))) => Ok(Opened {
                    size: Some(bytes.len() as u64),
                    version_id: version.map(str::to_owned),
                    body: Box::pin(std::io::Cursor::new(bytes.clone())),
                }),
                Some(Err("unavailable")) => Err(StoreError::Unavailable {
                    operation: "get",
                    key: sealed.key.to_string(),
                    detail: "connection refused".into(),
                }),
                _ => Err(StoreError::NotFound {
                    key: sealed.key.to_string(),
                }),
            }
        }
    }

    const ORIGINAL: &[u8] = b"the sealed archive bytes";
    /// The same length, other bytes.
    const OTHER: &[u8] = b"The sealed archive bytes";

    fn key() -> ObjectKey {
        ObjectKey::new("rl/t/z/archive.ndjson.zst").unwrap()
    }

    fn sealed<'a>(key: &'a ObjectKey, version: Option<&'a str>) -> Sealed<'a> {
        Sealed {
            key,
            version,
            size: ORIGINAL.len() as u64,
            sha256: Sha256::digest(ORIGINAL).into(),
        }
    }

    async fn body(chosen: Chosen) -> Vec<u8> {
        match chosen.body {
            ChosenBody::Checked(bytes) => bytes.to_vec(),
            ChosenBody::Unchecked(mut reader) => {
                let mut out = Vec::new();
                reader.read_to_end(&mut out).await.unwrap();
                out
            }
        }
    }

    #[tokio::test]
    async fn a_replaced_current_version_is_passed_over_for_the_sealed_one() {
        let key = key();
        let sealed = sealed(&key, Some("v1"));
        let copies = Fake::default()
            .with(ServedFrom::PrimaryCurrent, OTHER, Some("v2"))
            .with(ServedFrom::PrimarySealedVersion, ORIGINAL, Some("v1"))
            .with(ServedFrom::Secondary, ORIGINAL, Some("s1"));
        for limit in [BUFFER_LIMIT, 0] {
            let chosen = choose(&copies, &sealed, limit).await.unwrap();
            assert_eq!(
                chosen.from,
                ServedFrom::PrimarySealedVersion,
                "limit {limit}"
            );
            assert_eq!(chosen.permit.is_some(), limit > 0);
            assert_eq!(body(chosen).await, ORIGINAL);
        }
    }

    #[tokio::test]
    async fn the_secondary_serves_when_the_primary_has_no_intact_copy() {
        let key = key();
        // The current version is the sealed version, and damaged: it is read once, not twice.
        let sealed = sealed(&key, Some("v1"));
        let copies = Fake::default()
            .with(ServedFrom::PrimaryCurrent, OTHER, Some("v1"))
            .with(ServedFrom::PrimarySealedVersion, OTHER, Some("v1"))
            .with(ServedFrom::Secondary, ORIGINAL, None);
        let chosen = choose(&copies, &sealed, BUFFER_LIMIT).await.unwrap();
        assert_eq!(chosen.from, ServedFrom::Secondary);
        assert_eq!(body(chosen).await, ORIGINAL);
        assert_eq!(
            *copies.opened.lock().unwrap(),
            [ServedFrom::PrimaryCurrent, ServedFrom::Secondary]
        );
    }

    #[tokio::test]
    async fn no_intact_copy_is_an_error_and_an_unreadable_one_says_so() {
        let key = key();
        let sealed = sealed(&key, Some("v1"));
        let copies = Fake::default()
            .with(ServedFrom::PrimaryCurrent, OTHER, Some("v2"))
            .failing(ServedFrom::PrimarySealedVersion, "missing")
            .with(ServedFrom::Secondary, &ORIGINAL[1..], None);
        let error = choose(&copies, &sealed, BUFFER_LIMIT).await.err().unwrap();
        assert!(matches!(error, NoCopy::NoIntactCopy), "{error:?}");

        let copies = Fake::default()
            .with(ServedFrom::PrimaryCurrent, OTHER, Some("v2"))
            .failing(ServedFrom::PrimarySealedVersion, "unavailable");
        let error = choose(&copies, &sealed, BUFFER_LIMIT).await.err().unwrap();
        assert!(matches!(error, NoCopy::Unavailable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn too_large_to_check_first_is_chosen_by_size_and_version() {
        let key = key();
        let sealed = sealed(&key, Some("v1"));
        // The current version is another version, the sealed version is gone, the secondary
        // has another size: the current version is the last resort, streamed and checked.
        let copies = Fake::default()
            .with(ServedFrom::PrimaryCurrent, OTHER, Some("v2"))
            .failing(ServedFrom::PrimarySealedVersion, "missing")
            .with(ServedFrom::Secondary, &ORIGINAL[1..], None);
        let chosen = choose(&copies, &sealed, 0).await.unwrap();
        assert_eq!(chosen.from, ServedFrom::PrimaryCurrent);
        assert!(matches!(chosen.body, ChosenBody::Unchecked(_)));
        // Unversioned: the current version is all there is.
        let sealed = Sealed {
            version: None,
            ..sealed
        };
        let copies = Fake::default().with(ServedFrom::PrimaryCurrent, ORIGINAL, None);
        let chosen = choose(&copies, &sealed, 0).await.unwrap();
        assert_eq!(chosen.from, ServedFrom::PrimaryCurrent);
    }

    #[tokio::test]
    async fn a_streamed_copy_that_is_not_the_sealed_bytes_is_cut_off() {
        let sha256: [u8; 32] = Sha256::digest(ORIGINAL).into();
        let stream = Watched::new(
            crate::download::raw(std::io::Cursor::new(OTHER.to_vec()), sha256),
            tracing::Span::none(),
            ServedFrom::PrimaryCurrent,
            None,
        );
        let mut stream = std::pin::pin!(stream);
        let mut received = Vec::new();
        let mut failed = false;
        while let Some(item) = futures::StreamExt::next(&mut stream).await {
            match item {
                Ok(bytes) => received.extend_from_slice(&bytes),
                Err(_) => failed = true,
            }
        }
        assert!(failed, "the stream ends with an error, never cleanly");
        assert!(received.len() < OTHER.len());
    }
}
