//! The line `rainlogs search` writes on what a search read (its hits are
//! [`rainlogs_search::Found::to_ndjson`]).

use rainlogs_search::Summary;

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
