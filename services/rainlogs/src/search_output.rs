//! How a search hit and a search's summary are written: one JSON object per hit (the record
//! exactly as archived, and its provenance), and one line on what was read.

use rainlogs_search::{Found, Summary};

/// One hit: the record exactly as archived and where it was found.
pub fn hit_line(found: &Found) -> String {
    found.to_ndjson(None)
}

pub fn summary_line(summary: &Summary) -> String {
    format!(
        "search: {} hits; {} archives considered, {} index objects read ({} bytes, {} from the cache), {} frames read, {} archives read whole; {} bytes in {} requests; {:.3} s{}",
        summary.hits,
        summary.archives_considered,
        summary.index_objects_read,
        summary.index_bytes_read,
        summary.index_objects_cached,
        summary.frames_read,
        summary.archives_read_whole,
        summary.bytes_read,
        summary.requests,
        summary.elapsed.as_secs_f64(),
        summary.next.map_or_else(String::new, |next| format!(
            "; more: continue with --after {}:{}",
            next.entry_index, next.record
        ))
    )
}
