//! `rainlogs keys rotate` against real NATS and PostgreSQL: every zone's Cloudflare token is
//! re-sealed with the current key, nothing secret is printed, and a second run has nothing to do.

use std::process::{Command, Output};

use rainlogs_bus::{connect, provision};
use rainlogs_db::rebuild;
use rainlogs_query_api::ControlProjection;
use rainlogs_schemas::events::{TenantCreated, ZoneAdded};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_testkit::{NatsServer, TestDatabase};
use rainlogs_tokens::TokenKey;

const TENANT: &str = "acme";
const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const TOKEN: &str = "cfut_the_zone_token_that_must_never_be_printed";

fn rotate(nats: &str, db: &str, current: &str, previous: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rainlogs"));
    command
        .args(["keys", "rotate"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RAINLOGS__NATS__URL", nats)
        .env("RAINLOGS__DATABASE__URL", db)
        .env("RAINLOGS__SECRETS__TOKEN_ENCRYPTION_KEY", current);
    if let Some(previous) = previous {
        command.env("RAINLOGS__SECRETS__PREVIOUS_TOKEN_ENCRYPTION_KEY", previous);
    }
    command.output().expect("run rainlogs keys rotate")
}

#[tokio::test]
async fn keys_rotate_reseals_every_token_with_the_current_key() {
    let nats = NatsServer::start();
    let db = TestDatabase::create().await;
    let bus = connect(&nats.url).await.expect("connect");
    provision(&bus, 1).await.expect("provision");
    let pool = rainlogs_db::connect(&db.url, 4).await.expect("database");
    rainlogs_db::migrate(&pool).await.expect("migrate");
    let (old_hex, new_hex, other_hex) = ("01".repeat(32), "02".repeat(32), "03".repeat(32));
    let old = TokenKey::from_hex(&old_hex).expect("old key");
    let new = TokenKey::from_hex(&new_hex).expect("new key");
    for event in [
        Event::TenantCreated(TenantCreated {
            name: "Acme".into(),
            email: "sec@acme.example".into(),
            retention_days: 395,
        }),
        Event::ZoneAdded(ZoneAdded {
            zone_id: ZONE.into(),
            name: "acme.example".into(),
            plan: "enterprise".into(),
            method: rainlogs_schemas::events::Method::Logpull,
            fields: "default".into(),
            sealed_token: old.seal(TENANT, ZONE, TOKEN),
            token_key_id: old.id().into(),
        }),
    ] {
        let envelope = Envelope::new(TENANT, Some(ZONE.into()), Actor::operator(), event);
        bus.publish(&subjects::control(TENANT), &envelope)
            .await
            .expect("publish");
    }
    rebuild(&pool, &bus, ControlProjection)
        .await
        .expect("project");

    // Without the key that sealed it, the token cannot be re-sealed: named, not printed, exit 1.
    let refused = rotate(&nats.url, &db.url, &other_hex, None);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains(ZONE) && said.contains("not re-sealed"),
        "{said}"
    );

    let rotated = rotate(&nats.url, &db.url, &new_hex, Some(&old_hex));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&rotated.stdout),
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(rotated.status.success(), "{said}");
    assert!(said.contains("1 tokens re-sealed"), "{said}");
    assert!(!said.contains(TOKEN), "the token is never printed");

    let stream = bus.js.get_stream("RL_CONTROL").await.expect("stream");
    let last = stream
        .get_last_raw_message_by_subject(&subjects::control(TENANT))
        .await
        .expect("last control event");
    let Event::ZoneChanged(change) = Envelope::from_cbor(&last.payload).expect("decode").event
    else {
        panic!("the rotation publishes a zone change");
    };
    assert_eq!(change.token_key_id.as_deref(), Some(new.id()));
    let sealed = change.sealed_token.expect("a new sealed token");
    assert_eq!(
        new.open(TENANT, ZONE, &sealed)
            .expect("opens with the new key")
            .as_str(),
        TOKEN
    );
    assert!(
        old.open(TENANT, ZONE, &sealed).is_err(),
        "no longer the old key's"
    );

    rebuild(&pool, &bus, ControlProjection)
        .await
        .expect("project");
    let again = rotate(&nats.url, &db.url, &new_hex, None);
    assert!(again.status.success(), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("0 tokens re-sealed"),
        "{again:?}"
    );
}
