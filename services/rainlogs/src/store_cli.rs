//! `rainlogs store compare` and `rainlogs store repair`: the two providers side by side, and
//! copying what one lacks, for an operator after an outage (the running services repair what
//! they queued on their own; this also finds what no queue recorded).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use rainlogs_config::Config;
use rainlogs_store::{Comparison, ObjectKey, Replicated, Side, Store};

async fn replicated(config: &Config) -> anyhow::Result<(Arc<Replicated>, String)> {
    let store = rainlogs_runtime::open_store(config)
        .await
        .context("opening the store")?;
    match store.store {
        Store::Replicated(replicated) => Ok((replicated, listing_prefix(store.prefix.as_str()))),
        Store::Single(_) => anyhow::bail!(
            "store.secondary is not configured: there is one provider, nothing to compare"
        ),
    }
}

fn listing_prefix(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    }
}

fn print(comparison: &Comparison, replicated: &Replicated) {
    let primary = replicated.side(Side::Primary).location();
    let secondary = replicated.side(Side::Secondary).location();
    for (key, size) in &comparison.secondary_lacks {
        println!("secondary lacks\t{key}\t{size} bytes");
    }
    for (key, size) in &comparison.primary_lacks {
        println!("primary lacks\t{key}\t{size} bytes");
    }
    for (key, on_primary, on_secondary) in &comparison.sizes_differ {
        println!("sizes differ\t{key}\tprimary {on_primary} bytes, secondary {on_secondary} bytes");
    }
    println!(
        "primary {primary}: lacks {}; secondary {secondary}: lacks {}; sizes differ: {}; same on both: {}",
        comparison.primary_lacks.len(),
        comparison.secondary_lacks.len(),
        comparison.sizes_differ.len(),
        comparison.same
    );
}

/// The dry run's line for a key repair would leave alone because its retention has passed, if it is one.
async fn past_retention_of(replicated: &Replicated, key: &str) -> anyhow::Result<Option<String>> {
    let key = ObjectKey::new(key.to_owned()).with_context(|| format!("key {key}"))?;
    let past = replicated
        .past_retention(&key)
        .await
        .with_context(|| format!("reading the heads of {key}"))?;
    Ok(past.map(|(on, retain_until)| {
        format!(
            "past retention\t{key}\ton {on:?} only, retained until {retain_until}: would not be copied"
        )
    }))
}

pub async fn compare(config: &Config) -> anyhow::Result<ExitCode> {
    let (replicated, prefix) = replicated(config).await?;
    let comparison = replicated
        .compare_listings(&prefix)
        .await
        .context("listing both providers")?;
    print(&comparison, &replicated);
    Ok(if comparison.is_whole() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn repair(config: &Config, dry_run: bool) -> anyhow::Result<ExitCode> {
    let (replicated, prefix) = replicated(config).await?;
    if dry_run {
        let comparison = replicated
            .compare_listings(&prefix)
            .await
            .context("listing both providers")?;
        let queued = replicated
            .repair_queue_file()
            .pending()
            .await
            .context("reading the repair queue")?;
        // Repair leaves a key alone whose only copy's retention has passed; the heads tell which.
        let to_repair = comparison.keys_to_repair();
        let mut past_retention = 0;
        for key in &to_repair {
            match past_retention_of(&replicated, key).await {
                Ok(Some(line)) => {
                    println!("{line}");
                    past_retention += 1;
                }
                Ok(None) => println!("would repair\t{key}"),
                Err(e) => println!("would repair\t{key}\t(retention not known: {e:#})"),
            }
        }
        for entry in queued
            .iter()
            .filter(|entry| !to_repair.contains(&entry.key.as_str()))
        {
            if let Ok(Some(line)) = past_retention_of(&replicated, entry.key.as_str()).await {
                println!("{line}");
                past_retention += 1;
            }
        }
        for entry in &queued {
            println!(
                "queued\t{}\tmissing on {:?} since {}: {}",
                entry.key, entry.missing_on, entry.recorded_at, entry.reason
            );
        }
        print(&comparison, &replicated);
        println!("past retention (would not be copied) {past_retention}");
        return Ok(if comparison.is_whole() && queued.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let mut report = replicated
        .repair_prefix(&prefix)
        .await
        .context("repairing from both listings")?;
    let queued = replicated
        .repair_queue(replicated.repair_queue_file())
        .await
        .context("draining the repair queue")?;
    report.copied.extend(queued.copied);
    // A key past its retention found by the listing is found again in the queue: name it once.
    report.past_retention.extend(queued.past_retention);
    report.past_retention.sort_unstable();
    report.past_retention.dedup();
    report.incidents.extend(queued.incidents);
    report.failed.extend(queued.failed);
    for (key, to) in &report.copied {
        println!("copied\t{key}\tto {to:?}");
    }
    for key in &report.past_retention {
        println!(
            "past retention\t{key}\tretain-until passed, due for pruning: not copied (the reaper may have pruned the other copy on purpose)"
        );
    }
    for incident in &report.incidents {
        println!(
            "INCIDENT\t{}\tbytes differ between the providers (left as found): {incident:?}",
            incident.key
        );
    }
    for (key, why) in &report.failed {
        println!("failed\t{key}\t{why}");
    }
    println!(
        "copied {}, consistent {}, gone from both {}, past retention {}, incidents {}, failed {}",
        report.copied.len(),
        report.consistent,
        report.missing_on_both.len(),
        report.past_retention.len(),
        report.incidents.len(),
        report.failed.len()
    );
    Ok(if report.incidents.is_empty() && report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
