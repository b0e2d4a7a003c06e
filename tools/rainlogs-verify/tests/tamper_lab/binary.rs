//! The binary an auditor runs: exit codes, the tab-separated human lines, JSON, and argument handling.

use crate::support::*;

#[tokio::test]
async fn clean_zone_prints_one_line_per_finding_and_a_summary() {
    let zone = DirZone::new().await;
    let mut args = zone_args(&dir_arg(zone.root()));
    args.extend(["--prefix".into(), PREFIX.into()]);
    let (code, stdout) = run_binary(&as_strs(&args), &[]);
    assert_eq!(code, 0, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    for line in &lines {
        let columns: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            columns.len(),
            3,
            "not <kind>\\t<path>\\t<STATUS: reason>: {line:?}"
        );
        assert!(
            [
                "OK: ",
                "INFO: ",
                "WARNING: ",
                "INCOMPLETE: ",
                "TAMPER: ",
                "VERIFIED: "
            ]
            .iter()
            .any(|s| columns[2].starts_with(s)),
            "{line}"
        );
    }
    let summary = lines.last().unwrap();
    assert!(
        summary.starts_with(&format!(
            "summary\trainlogs/{TENANT}/{ZONE}\tVERIFIED: exit 0;"
        )),
        "{summary}"
    );
    assert!(stdout.contains("\tOK: checkpoint_verified: "), "{stdout}");
    assert!(stdout.contains("\tOK: log_verified: "), "{stdout}");
}

#[tokio::test]
async fn json_output_carries_the_same_findings() {
    let zone = DirZone::new().await;
    let mut args = zone_args(&dir_arg(zone.root()));
    args.extend([
        "--prefix".into(),
        PREFIX.into(),
        "--json".into(),
        "--deep".into(),
    ]);
    let (code, stdout) = run_binary(&as_strs(&args), &[]);
    assert_eq!(code, 0, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["verdict"], "VERIFIED");
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["deep"], true);
    assert_eq!(json["summary"]["entries"], zone.b().size());
    assert_eq!(json["counts"]["tamper"], 0);
    assert_eq!(json["counts"]["gap"], 0);
    assert_eq!(json["summary"]["coverage"]["gaps"]["count"], 5);
    assert_eq!(
        json["summary"]["coverage"]["windows"],
        serde_json::json!({"archive": 21, "empty": 274, "gap": 5})
    );
    let reasons: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap())
        .collect();
    for expected in [
        "checkpoint_verified",
        "log_verified",
        "archives_verified",
        "inventory_clean",
    ] {
        assert!(reasons.contains(&expected), "{expected} not in {reasons:?}");
    }
}

#[tokio::test]
async fn tamper_evidence_exits_1_with_the_reason_on_its_line() {
    let zone = DirZone::new().await;
    let victim = zone.zone.live_archives()[0].key.clone();
    tamper::remove(zone.root(), &victim);
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = temp_path(&key_dir, "pinned.keys");
    std::fs::write(&key_file, format!("# sealer key\n{}\n", pinned())).unwrap();
    let args = [
        "--store",
        &dir_arg(zone.root()),
        "--prefix",
        PREFIX,
        "--tenant",
        TENANT,
        "--zone",
        ZONE,
        "--trusted-key",
        key_file.to_str().unwrap(),
    ];
    let (code, stdout) = run_binary(&args, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!("archive\t{victim}\tTAMPER: archive_missing: ")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .contains("\tTAMPER_EVIDENCE: exit 1;")
    );
}

#[tokio::test]
async fn a_tight_staleness_limit_flags_the_zone_and_state_is_written() {
    let zone = DirZone::new().await;
    let state_dir = tempfile::tempdir().unwrap();
    let state = temp_path(&state_dir, "state.json");
    let mut args = zone_args(&dir_arg(zone.root()));
    args.extend([
        "--prefix".into(),
        PREFIX.into(),
        "--state".into(),
        state.to_str().unwrap().into(),
    ]);
    let (code, stdout) = run_binary(&as_strs(&args), &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(state.is_file());
    // The newest entry was sealed seconds ago; a one-second limit makes it stale.
    args.extend(["--max-staleness".into(), "1s".into()]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, stdout) = run_binary(&as_strs(&args), &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("TAMPER: checkpoint_stale: "), "{stdout}");
    assert!(stdout.contains("INFO: state_not_updated: "), "{stdout}");
}

#[test]
fn a_store_that_does_not_exist_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-mounted");
    let (code, stdout) = run_binary(&as_strs(&zone_args(&dir_arg(&missing))), &[]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.contains("INCOMPLETE: store_unreachable: "),
        "{stdout}"
    );
    assert!(!missing.exists(), "the verifier must not create the store");
}

#[test]
fn unusable_arguments_exit_2_before_reading_anything() {
    let (code, _) = run_binary(
        &[
            "--store",
            "/nonexistent",
            "--tenant",
            "acme",
            "--zone",
            ZONE,
            "--trusted-key",
            "not-a-key",
        ],
        &[],
    );
    assert_eq!(code, 2);
}
