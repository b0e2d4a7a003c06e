//! `docs/METRICS.md` lists every metric family, made from the service descriptors: a family added
//! to a service's descriptor and not to the doc fails here.
//! Regenerate with `UPDATE_DOCS=1 cargo nextest run -p rainlogs --test metrics_doc`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use rainlogs_telemetry::MetricKind;

fn rendered() -> String {
    let mut doc = String::from(
        "# Metrics\n\n\
         Every process serves Prometheus text on `telemetry.listen` at `/metrics`. Each service \
         reports the families below while it runs in the process; every process reports the \
         projector's families for each projection it runs (label `projection`), the consumer \
         families for each durable JetStream consumer it reads (label `consumer`), and its \
         object storage. Counters end in `_total`; units are in the name (`_seconds`, \
         `_bytes`). Label values `zone` and `dataset` are the zone id and dataset name; `route` \
         is the API operation's OpenAPI `operationId`.\n\n\
         This file is generated from the service descriptors \
         (`UPDATE_DOCS=1 cargo nextest run -p rainlogs --test metrics_doc`).\n",
    );
    for (owner, families) in rainlogs::metric_families() {
        let _ = write!(
            doc,
            "\n## {owner}\n\n| Family | Type | Labels | Meaning |\n|---|---|---|---|\n"
        );
        for family in families {
            let kind = match family.kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
                MetricKind::Histogram => "histogram",
            };
            let labels = family
                .labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                doc,
                "| `{}` | {kind} | {labels} | {} |",
                family.exposed_name(),
                family.help.replace('|', "\\|")
            );
        }
    }
    doc
}

#[test]
fn the_metrics_doc_lists_every_family_of_every_descriptor() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/METRICS.md");
    let expected = rendered();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(path, &expected).expect("write docs/METRICS.md");
    }
    let found = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        found == expected,
        "docs/METRICS.md is out of date; regenerate it with \
         UPDATE_DOCS=1 cargo nextest run -p rainlogs --test metrics_doc"
    );
}

#[test]
fn family_names_are_unique_and_follow_prometheus_conventions() {
    let mut seen = BTreeSet::new();
    for (owner, families) in rainlogs::metric_families() {
        for family in families {
            let name = family.exposed_name();
            assert!(seen.insert(name.clone()), "{name} is reported twice");
            assert!(name.starts_with("rainlogs_"), "{owner}: {name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{owner}: {name}"
            );
            assert_eq!(
                name.ends_with("_total"),
                family.kind == MetricKind::Counter,
                "{owner}: only counters end in _total: {name}"
            );
            assert!(!family.help.is_empty(), "{owner}: {name} has no help");
        }
    }
}
