//! How a search hit and a search's summary are written: one JSON object per hit (the record
//! exactly as archived, and its provenance), and one line on what was read.

use rainlogs_search::{Found, Summary};

/// `{"record":<the archived JSON, verbatim>,"provenance":{...}}`. A record that is not valid
/// JSON is given as a string instead, so every line stays JSON.
pub fn hit_line(found: &Found) -> String {
    let provenance = serde_json::json!({
        "job_id": found.entry_id,
        "entry_index": found.position.entry_index,
        "record": found.position.record,
        "dataset": found.dataset,
        "object_key": found.object_key,
        "frame": found.frame,
        "frame_content_sha256": found.frame_content_sha256.map(hex::encode),
    });
    let record = std::str::from_utf8(&found.line)
        .ok()
        .filter(|text| serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok())
        .map_or_else(
            || {
                serde_json::Value::String(String::from_utf8_lossy(&found.line).into_owned())
                    .to_string()
            },
            str::to_owned,
        );
    format!("{{\"record\":{record},\"provenance\":{provenance}}}")
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
