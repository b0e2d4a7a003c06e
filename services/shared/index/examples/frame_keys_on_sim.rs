//! How large index objects are beside the archives on the simulator's traffic, whose client IPs
//! repeat as real traffic's do: an hour of the example scenario's busiest zone with Logpull's
//! default fields (the shortest records, so the index's largest share), cut into the archiver's
//! 60 s windows (one frame each at this rate), each compressed with zstd level 3 and indexed.
//!
//! ```sh
//! cargo run --release -p rainlogs-index --example frame_keys_on_sim -- [HOURS] [FIELD,FIELD,...]
//! ```
//! Without a field list, Logpull's default 9 fields; a zone collecting more (the collector's
//! `extended` set, say) has longer records and a smaller index share.

use rainlogs_index::{FrameLocation, IndexBuilder};

const ZONE: &str = "3b2e1d0c9f8a7b6c5d4e3f2a1b0c9d8e";

#[tokio::main]
async fn main() {
    let hours: i64 = std::env::args()
        .nth(1)
        .map_or(1, |a| a.parse().expect("hours"));
    let fields: Option<Vec<String>> = std::env::args()
        .nth(2)
        .map(|list| list.split(',').map(str::to_owned).collect());
    let t0 = time::macros::datetime!(2026-01-15 12:00 UTC);
    let sim = cf_sim::Simulator::start(
        cf_sim::Scenario::example(),
        cf_sim::SimOptions {
            clock: Some(cf_sim::ClockStart::FrozenAt(t0)),
            ..cf_sim::SimOptions::default()
        },
    )
    .await
    .expect("simulator");
    let (mut records, mut raw, mut stored, mut ray_bytes, mut ip_bytes, mut networks, mut index) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    let mut windows = 0;
    for minute in 0..hours * 60 {
        let start = t0 - time::Duration::minutes(hours * 60 - minute);
        let mut query = cf_sim::TruthQuery::http(ZONE, start, start + time::Duration::minutes(1));
        query.fields = fields.clone();
        let lines = sim.truth(&query).expect("truth");
        if lines.is_empty() {
            continue;
        }
        let content: String = lines.concat();
        let compressed = zstd::bulk::compress(content.as_bytes(), 3).expect("zstd");
        let mut builder = IndexBuilder::default();
        let location = FrameLocation {
            stored_len: compressed.len() as u64,
            content_len: content.len() as u64,
            ..FrameLocation::default()
        };
        builder.add_frame(location, content.as_bytes());
        let built = builder.finish([0; 32], [0; 32]);
        let keys = &built.frames[0].keys;
        records += lines.len();
        raw += content.len();
        stored += compressed.len();
        ray_bytes += keys.ray_set.len();
        ip_bytes += rainlogs_index::ip::encode_sorted(&keys.networks.v4).len()
            + rainlogs_index::ip::encode_sorted(&keys.networks.v6).len();
        networks += keys.networks.v4.len() + keys.networks.v6.len();
        index += built.encode().len();
        windows += 1;
    }
    let per = |bytes: usize| bytes as f64 / records as f64;
    println!(
        "{windows} windows, {records} records ({:.0} B raw, {:.1} B compressed each)",
        per(raw),
        per(stored)
    );
    println!(
        "index objects: {:.2} B per record = {:.2} % of stored; of which Ray ID sets {:.2} B \
         ({:.2} %), client networks {:.2} B ({:.2} %), {:.1} networks per window of {:.0} records",
        per(index),
        100.0 * index as f64 / stored as f64,
        per(ray_bytes),
        100.0 * ray_bytes as f64 / stored as f64,
        per(ip_bytes),
        100.0 * ip_bytes as f64 / stored as f64,
        networks as f64 / f64::from(windows),
        records as f64 / f64::from(windows)
    );
    sim.shutdown().await;
}
