//! Declared gaps (issue 21): a `gap` entry keeps coverage contiguous, but the auditor is told how many windows
//! of each kind a dataset has, how long its gaps are and why, and how many records it holds, in the text
//! report and in `--json`. `--fail-on-gap` makes any declared gap exit 4; without it gaps never change the
//! exit code.

use rainlogs_integrity::{CollectionMethod, GapReason, Sampling, Window};
use rainlogs_verify::{Reason, Status};

use crate::support::*;

/// Windows per dataset in the gap zone.
const GAP_ZONE_WINDOWS: u64 = 12;

/// Twelve 5-minute windows per dataset, sealed as a sealer would. `http_requests`: archives at 0, 4 and 8,
/// gaps at 2 and 3 (collector_outage) and at 6, 10 and 11 (source_error) when `with_gaps`, empty otherwise.
/// `firewall_events`: archives at 1 and 7, empty otherwise (never a gap).
async fn gap_zone(with_gaps: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ns();
    let now_s = now / SECOND_NS * SECOND_NS;
    let start = now_s - 40 * SECOND_NS - GAP_ZONE_WINDOWS * WINDOW_NS;
    let retain = now_s + DAY_NS;
    let mut b = ZoneBuilder::new(fs_store(dir.path()).await, PREFIX, TENANT, ZONE, now);
    b.key_entry(start);
    for k in 0..GAP_ZONE_WINDOWS {
        let window = Window::new(start + k * WINDOW_NS, start + (k + 1) * WINDOW_NS).unwrap();
        let sealed_at = window.end_ns() + 30 * SECOND_NS;
        let http = CollectionMethod::Logpull;
        let gap = match k {
            2 | 3 => Some(GapReason::CollectorOutage),
            6 | 10 | 11 => Some(GapReason::SourceError),
            _ => None,
        };
        match (k % 4 == 0, gap) {
            (true, _) => {
                let content = ndjson("http_requests", &window, 50 + k as usize);
                b.archive(
                    "http_requests",
                    window,
                    http,
                    Sampling::UNSAMPLED,
                    &content,
                    retain,
                    false,
                    sealed_at,
                )
                .await;
            }
            (false, Some(reason)) if with_gaps => {
                b.gap("http_requests", window, http, reason, sealed_at);
            }
            _ => {
                b.empty("http_requests", window, http, sealed_at);
            }
        }
        let firewall = CollectionMethod::Graphql;
        if k == 1 || k == 7 {
            let content = ndjson("firewall_events", &window, 6 + k as usize);
            b.archive(
                "firewall_events",
                window,
                firewall,
                Sampling::PerRecord,
                &content,
                retain,
                false,
                sealed_at,
            )
            .await;
        } else {
            b.empty("firewall_events", window, firewall, sealed_at);
        }
    }
    b.finish().await;
    dir
}

/// The arguments for the gap zone's directory store, plus `extra`.
fn gap_zone_args(dir: &tempfile::TempDir, extra: &[&str]) -> Vec<String> {
    let mut args = zone_args(&dir_arg(dir.path()));
    args.extend(["--prefix".into(), PREFIX.into()]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

const HTTP_TALLY: &str = "12 windows from ";
const HTTP_COUNTS: &str = " contiguous, none overlapping: 3 archive, 4 empty, 5 gap; declared gaps 25m: \
     2 × collector_outage 10m, 3 × source_error 15m; 162 records";
const FIREWALL_COUNTS: &str =
    " contiguous, none overlapping: 2 archive, 10 empty, 0 gap; no declared gaps; 20 records";
const LOG_COUNTS: &str = "; 24 windows in 2 datasets: 5 archive, 14 empty, 5 gap; declared gaps 25m: \
     2 × collector_outage 10m, 3 × source_error 15m; 182 records; ";

/// The one line of the human report with `kind`, `path` and `reason`.
fn line<'a>(stdout: &'a str, kind: &str, path: &str, reason: &str) -> &'a str {
    let head = format!("{kind}\t{path}\t");
    stdout
        .lines()
        .find(|l| l.starts_with(&head) && l.contains(&format!(": {reason}: ")))
        .unwrap_or_else(|| panic!("no {reason} line for {path} in:\n{stdout}"))
}

#[tokio::test]
async fn gaps_of_two_reasons_are_counted_in_the_text_report_without_changing_the_exit_code() {
    let dir = gap_zone(true).await;
    let (code, stdout) = run_binary(&as_strs(&gap_zone_args(&dir, &[])), &[]);
    assert_eq!(code, 0, "{stdout}");
    let http = line(&stdout, "coverage", "http_requests", "coverage_contiguous");
    assert!(
        http.starts_with(&format!(
            "coverage\thttp_requests\tOK: coverage_contiguous: {HTTP_TALLY}"
        )) && http.ends_with(HTTP_COUNTS),
        "{http}"
    );
    let firewall = line(
        &stdout,
        "coverage",
        "firewall_events",
        "coverage_contiguous",
    );
    assert!(firewall.ends_with(FIREWALL_COUNTS), "{firewall}");
    assert!(
        !stdout.contains("without gap"),
        "no line may claim the log has no gaps:\n{stdout}"
    );
    assert!(!stdout.contains("declared_gaps"), "{stdout}");
    let summary = stdout.lines().last().unwrap();
    assert!(summary.contains("\tVERIFIED: exit 0;"), "{summary}");
    assert!(summary.contains(LOG_COUNTS), "{summary}");
    assert!(
        summary.contains("0 tamper, 0 incomplete, 0 gap, 0 warning findings"),
        "{summary}"
    );
}

#[tokio::test]
async fn the_json_summary_counts_windows_gaps_by_reason_and_records_per_dataset() {
    let dir = gap_zone(true).await;
    let (code, stdout) = run_binary(&as_strs(&gap_zone_args(&dir, &["--json"])), &[]);
    assert_eq!(code, 0, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["verdict"], "VERIFIED");
    assert_eq!(json["counts"]["gap"], 0);
    let coverage = &json["summary"]["coverage"];
    let minutes = |n: u64| serde_json::json!(n * MINUTE_NS);
    assert_eq!(
        coverage["windows"],
        serde_json::json!({"archive": 5, "empty": 14, "gap": 5})
    );
    assert_eq!(coverage["records"], 182);
    assert_eq!(coverage["gaps"]["count"], 5);
    assert_eq!(coverage["gaps"]["duration_ns"], minutes(25));

    let http = &coverage["datasets"]["http_requests"];
    assert_eq!(http["contiguous"], true);
    assert_eq!(
        http["windows"],
        serde_json::json!({"archive": 3, "empty": 4, "gap": 5})
    );
    assert_eq!(http["records"], 162);
    assert_eq!(
        http["gaps"]["by_reason"],
        serde_json::json!({
            "collector_outage": {"count": 2, "duration_ns": minutes(10)},
            "source_error": {"count": 3, "duration_ns": minutes(15)},
        })
    );
    let first = http["start_ns"].as_u64().unwrap();
    assert_eq!(http["gaps"]["first_start_ns"], first + 2 * WINDOW_NS);
    assert_eq!(http["gaps"]["last_end_ns"], first + 12 * WINDOW_NS);
    assert_eq!(http["end_ns"], first + 12 * WINDOW_NS);

    let firewall = &coverage["datasets"]["firewall_events"];
    assert_eq!(
        firewall["windows"],
        serde_json::json!({"archive": 2, "empty": 10, "gap": 0})
    );
    assert_eq!(firewall["records"], 20);
    assert_eq!(
        firewall["gaps"],
        serde_json::json!({
            "count": 0, "duration_ns": 0, "by_reason": {}, "first_start_ns": null, "last_end_ns": null
        })
    );
}

#[tokio::test]
async fn fail_on_gap_exits_4_naming_the_reasons_and_time() {
    let dir = gap_zone(true).await;
    let (code, stdout) = run_binary(&as_strs(&gap_zone_args(&dir, &["--fail-on-gap"])), &[]);
    assert_eq!(code, 4, "{stdout}");
    let finding = line(&stdout, "coverage", "http_requests", "declared_gaps");
    assert!(
        finding.starts_with(
            "coverage\thttp_requests\tGAP: declared_gaps: 5 of 12 windows hold no data between "
        ),
        "{finding}"
    );
    assert!(
        finding.ends_with(
            ": declared gaps 25m: 2 × collector_outage 10m, 3 × source_error 15m; \
             --fail-on-gap requires every window collected"
        ),
        "{finding}"
    );
    assert!(
        !stdout.contains("firewall_events\tGAP"),
        "a dataset without gaps is not named:\n{stdout}"
    );
    let summary = stdout.lines().last().unwrap();
    assert!(summary.contains("\tDECLARED_GAPS: exit 4;"), "{summary}");
    assert!(
        summary.contains("0 tamper, 0 incomplete, 1 gap, 0 warning findings"),
        "{summary}"
    );

    let (code, stdout) = run_binary(
        &as_strs(&gap_zone_args(&dir, &["--fail-on-gap", "--json"])),
        &[],
    );
    assert_eq!(code, 4, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["verdict"], "DECLARED_GAPS");
    assert_eq!(json["exit_code"], 4);
    assert_eq!(json["counts"]["gap"], 1);
    let declared: Vec<&serde_json::Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["reason"] == "declared_gaps")
        .collect();
    assert_eq!(declared.len(), 1, "{stdout}");
    assert_eq!(declared[0]["status"], "GAP");
    assert_eq!(declared[0]["path"], "http_requests");
}

#[tokio::test]
async fn fail_on_gap_passes_a_zone_without_gaps() {
    let dir = gap_zone(false).await;
    let (code, stdout) = run_binary(&as_strs(&gap_zone_args(&dir, &["--fail-on-gap"])), &[]);
    assert_eq!(code, 0, "{stdout}");
    let http = line(&stdout, "coverage", "http_requests", "coverage_contiguous");
    assert!(
        http.ends_with(": 3 archive, 9 empty, 0 gap; no declared gaps; 162 records"),
        "{http}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .contains("\tVERIFIED: exit 0;")
    );
}

#[tokio::test]
async fn tamper_evidence_still_outranks_declared_gaps() {
    let dir = gap_zone(true).await;
    let mut options = options();
    options.fail_on_gap = true;
    let store = fs_store(dir.path()).await;
    let clean = rainlogs_verify::verify(&store, &options).await;
    assert_verdict(&clean, 4, &[Reason::DeclaredGaps, Reason::LogVerified]);
    assert_eq!(clean.count(Status::Gap), 1);
    assert_eq!(
        clean.summary.coverage.gaps.by_reason["source_error"].count,
        3
    );

    // A changed archive byte is tamper evidence whatever the gaps.
    let archive = tamper::keys_under(dir.path(), PREFIX)
        .into_iter()
        .find(|key| key.contains("/http_requests/"))
        .unwrap();
    tamper::flip_byte(dir.path(), &archive, 10);
    let tampered = rainlogs_verify::verify(&store, &options).await;
    assert_verdict(
        &tampered,
        1,
        &[Reason::StoredSha256Mismatch, Reason::DeclaredGaps],
    );
}
