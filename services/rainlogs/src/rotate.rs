//! `rainlogs keys rotate`: re-seals every live zone's Cloudflare token with the current
//! `secrets.token_encryption_key`, opening it with `secrets.previous_token_encryption_key`.
//! Each re-sealed token is a `ctl.zone_changed` event, so the collector and the projections
//! follow on their own; a second run finds nothing left to do.

use std::process::ExitCode;

use anyhow::Context as _;
use rainlogs_config::Config;
use rainlogs_schemas::events::ZoneChanged;
use rainlogs_schemas::{Actor, Envelope, Event, subjects};

use crate::run::{connect_bus, database};

pub async fn rotate_tokens(config: &Config) -> anyhow::Result<ExitCode> {
    let keyring = rainlogs_collector::token_keyring(&config.secrets).map_err(anyhow::Error::msg)?;
    let current = keyring
        .current()
        .context("secrets.token_encryption_key is not set")?;
    let db = database(config).await?;
    let bus = connect_bus(config).await?;
    let zones: Vec<(String, String, Vec<u8>, String)> = sqlx::query_as(
        "SELECT tenant_id, zone_id, sealed_token, token_key_id FROM zones \
         WHERE removed_at IS NULL AND token_key_id <> $1 ORDER BY tenant_id, zone_id",
    )
    .bind(current.id())
    .fetch_all(&db)
    .await
    .context("reading the zones projection")?;
    let (mut resealed, mut failed) = (0, 0);
    for (tenant, zone, sealed, key_id) in zones {
        let token = match keyring.open(&key_id, &tenant, &zone, &sealed) {
            Ok(token) => token,
            Err(e) => {
                // Never the token itself: only which zone and why.
                eprintln!("{tenant}\t{zone}\tnot re-sealed: {e}");
                failed += 1;
                continue;
            }
        };
        let change = ZoneChanged {
            zone_id: zone.clone(),
            sealed_token: Some(current.seal(&tenant, &zone, &token)),
            token_key_id: Some(current.id().to_owned()),
            ..ZoneChanged::default()
        };
        let envelope = Envelope::new(
            tenant.clone(),
            Some(zone.clone()),
            Actor::operator(),
            Event::ZoneChanged(change),
        );
        bus.publish(&subjects::control(&tenant), &envelope)
            .await
            .with_context(|| format!("publishing the re-sealed token of zone {zone}"))?;
        println!("{tenant}\t{zone}\t{key_id} -> {}", current.id());
        resealed += 1;
    }
    eprintln!(
        "{resealed} tokens re-sealed with {}, {failed} could not be opened",
        current.id()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
