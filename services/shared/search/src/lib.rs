//! Search over a zone's archives (docs/FORMAT.md §12): the records of a Ray ID, a client address
//! or a CIDR block, optionally within a time range, exactly as archived, each with where it was
//! found (the archive's log entry, the frame, the record's position) so it can be proven.
//!
//! Only what the log commits is trusted: an index object is used only when its SHA-256 is the
//! one its `index` entry logs, and every frame read is checked against the content SHA-256 its
//! index gives, so a planted or edited object can make a search fail but never change its
//! answer. An archive without an index (sealed before indexes existed) is read whole, so no
//! record is missed either way.
//!
//! * [`query`]: what is searched for, and which records and frames it matches.
//! * [`archived`]: what a log says about one archive and its index.
//! * [`cache`]: index objects kept on local disk under a size cap.
//! * [`search`]: the search itself and what it read.

pub mod archived;
pub mod cache;
pub mod query;
pub mod search;

pub use archived::{Archived, IndexRef};
pub use cache::IndexCache;
pub use query::{Key, KeyError, Query, QueryError};
pub use search::{Found, Position, SearchError, Searcher, Summary};
