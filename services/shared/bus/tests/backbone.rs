//! Against real nats-server processes: version and JetStream checks, provisioning, publishing.

use rainlogs_bus::definitions::{self, BATCH, CHAIN, CONTROL};
use rainlogs_bus::{ConnectError, PublishError, StreamStatus, check, connect, provision};
use rainlogs_schemas::events::{TenantCreated, ZoneRemoved};
use rainlogs_schemas::{Actor, Envelope, Event, subjects};
use rainlogs_testkit::NatsServer;

fn tenant_event() -> Envelope {
    Envelope::new(
        "acme",
        None,
        Actor::operator(),
        Event::TenantCreated(TenantCreated {
            name: "Acme".into(),
            email: "a@acme.example".into(),
            retention_days: 395,
        }),
    )
}

#[tokio::test]
async fn refuses_nats_2_9() {
    let debian = std::path::Path::new("/usr/sbin/nats-server");
    assert!(
        debian.exists(),
        "this test needs Debian's nats-server 2.9 at /usr/sbin/nats-server"
    );
    let server = NatsServer::start_with(debian, true);
    let err = connect(&server.url)
        .await
        .err()
        .expect("2.9 must be refused");
    assert!(
        matches!(err, ConnectError::ServerTooOld { ref version, .. } if version.starts_with("2.9")),
        "{err}"
    );
    assert!(err.to_string().contains("2.11 or newer"));
}

#[tokio::test]
async fn refuses_a_server_without_jetstream() {
    let server = NatsServer::start_with(&rainlogs_testkit::nats_server_binary(), false);
    let err = connect(&server.url).await.err().expect("must be refused");
    assert!(
        matches!(err, ConnectError::JetStreamDisabled { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_server_is_a_clear_error() {
    let port = rainlogs_testkit::free_port();
    let err = connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .err()
        .expect("nothing listens");
    assert!(matches!(err, ConnectError::Unreachable { .. }), "{err}");
}

/// Changes a stream's configuration by hand, as an operator with the `nats` CLI would.
async fn edit_stream(
    bus: &rainlogs_bus::Bus,
    name: &str,
    edit: impl FnOnce(&mut rainlogs_bus::async_nats::jetstream::stream::Config),
) {
    let mut stream = bus.js.get_stream(name).await.expect("stream");
    let mut config = stream.info().await.expect("info").config.clone();
    edit(&mut config);
    bus.js.update_stream(config).await.expect("manual edit");
}

#[tokio::test]
async fn provisioning_is_idempotent_and_reports_drift() {
    let server = NatsServer::start();
    let bus = connect(&server.url).await.expect("connect");

    let before = check(&bus, 1).await.expect("check");
    assert!(
        before.iter().all(|r| r.status == StreamStatus::Missing),
        "{before:?}"
    );

    let first = provision(&bus, 1).await.expect("provision");
    let expected = definitions::streams(1).expect("defs").len()
        + definitions::consumers().expect("defs").len();
    assert_eq!(first.len(), expected);
    assert!(
        first.iter().all(|r| r.status == StreamStatus::Created),
        "{first:?}"
    );

    let second = provision(&bus, 1).await.expect("provision again");
    assert!(
        second.iter().all(|r| r.status == StreamStatus::UpToDate),
        "{second:?}"
    );

    // Someone shortens the batch replay buffer by hand.
    edit_stream(&bus, BATCH, |c| {
        c.max_age = std::time::Duration::from_secs(86_400)
    })
    .await;

    let drifted = check(&bus, 1).await.expect("check");
    let batch = drifted
        .iter()
        .find(|r| r.name == BATCH)
        .expect("batch report");
    match &batch.status {
        StreamStatus::Drifted { drift, .. } => assert_eq!(drift[0].field, "max_age"),
        other => panic!("expected drift on max_age, got {other:?}"),
    }
    assert!(
        drifted
            .iter()
            .filter(|r| r.name != BATCH)
            .all(|r| r.status == StreamStatus::UpToDate)
    );

    let fixed = provision(&bus, 1).await.expect("provision fixes");
    let batch = fixed
        .iter()
        .find(|r| r.name == BATCH)
        .expect("batch report");
    assert!(
        matches!(batch.status, StreamStatus::Updated { .. }),
        "{batch:?}"
    );
    assert!(
        check(&bus, 1)
            .await
            .expect("check")
            .iter()
            .all(|r| r.status == StreamStatus::UpToDate)
    );
}

#[tokio::test]
async fn chain_and_control_streams_refuse_purge_and_only_erasure_deletes_control_events() {
    let server = NatsServer::start();
    let bus = connect(&server.url).await.expect("connect");
    provision(&bus, 1).await.expect("provision");
    let control_event = bus
        .publish(&subjects::control("acme"), &tenant_event())
        .await
        .expect("publish");
    for name in [CONTROL, CHAIN] {
        let stream = bus.js.get_stream(name).await.expect("stream");
        assert!(stream.purge().await.is_err(), "{name} must deny purge");
    }
    let chain = bus.js.get_stream(CHAIN).await.expect("stream");
    let chain_event = bus
        .publish(&subjects::chain("zone1"), &tenant_event())
        .await
        .expect("publish");
    assert!(
        chain.delete_message(chain_event.sequence).await.is_err(),
        "RL_CHAIN must deny delete"
    );
    // Erasure removes the tenant's registration (it holds the address), and only it.
    let erased =
        rainlogs_bus::erase_control_events(&bus, "acme", |e| e.event.holds_personal_data())
            .await
            .expect("erase");
    assert_eq!(erased, 1);
    let control = bus.js.get_stream(CONTROL).await.expect("stream");
    assert!(
        control
            .get_raw_message(control_event.sequence)
            .await
            .is_err()
    );
    assert_eq!(
        rainlogs_bus::erase_control_events(&bus, "acme", |e| e.event.holds_personal_data())
            .await
            .expect("erase again"),
        0
    );
}

/// A control stream created before erasure existed denies deletes, and JetStream cannot lift
/// that in place: provisioning says so, and an erasure fails without deleting anything.
#[tokio::test]
async fn a_control_stream_that_still_denies_deletes_is_reported_and_erasure_fails_cleanly() {
    let server = NatsServer::start();
    let bus = connect(&server.url).await.expect("connect");
    provision(&bus, 1).await.expect("provision");
    edit_stream(&bus, CONTROL, |c| c.deny_delete = true).await;
    let registered = bus
        .publish(&subjects::control("acme"), &tenant_event())
        .await
        .expect("publish");

    let reports = provision(&bus, 1).await.expect("provision");
    let control = reports.iter().find(|r| r.name == CONTROL).expect("report");
    match &control.status {
        StreamStatus::Drifted { drift, note } => {
            assert_eq!(drift[0].field, "deny_delete");
            assert!(note.contains("refused"), "{note}");
        }
        other => panic!("expected the drift to be reported, got {other:?}"),
    }
    assert!(
        rainlogs_bus::erase_control_events(&bus, "acme", |e| e.event.holds_personal_data())
            .await
            .is_err()
    );
    let stream = bus.js.get_stream(CONTROL).await.expect("stream");
    assert!(stream.get_raw_message(registered.sequence).await.is_ok());
}

#[tokio::test]
async fn publish_deduplicates_by_event_id() {
    let server = NatsServer::start();
    let bus = connect(&server.url).await.expect("connect");
    provision(&bus, 1).await.expect("provision");
    let event = tenant_event();
    let first = bus
        .publish(&subjects::control("acme"), &event)
        .await
        .expect("publish");
    let retry = bus
        .publish(&subjects::control("acme"), &event)
        .await
        .expect("retry");
    assert!(!first.duplicate);
    assert!(
        retry.duplicate,
        "a retried publish of the same event must be recognised"
    );
    assert_eq!(first.sequence, retry.sequence);
    let mut stream = bus.js.get_stream(CONTROL).await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 1);
}

#[tokio::test]
async fn expected_last_subject_sequence_prevents_a_fork() {
    let server = NatsServer::start();
    let bus = connect(&server.url).await.expect("connect");
    provision(&bus, 1).await.expect("provision");
    let subject = subjects::chain("z1");
    let entry = || {
        Envelope::new(
            "acme",
            Some("z1".into()),
            Actor::service("sealer"),
            Event::ZoneRemoved(ZoneRemoved {
                zone_id: "z1".into(),
            }),
        )
    };

    let first = bus
        .publish_after(&subject, &entry(), 0)
        .await
        .expect("first entry on an empty subject");
    // Two writers both believe the chain ends at `first`; only one may append.
    let a = bus.publish_after(&subject, &entry(), first.sequence).await;
    let b = bus.publish_after(&subject, &entry(), first.sequence).await;
    assert!(a.is_ok());
    assert!(
        matches!(b, Err(PublishError::WrongLastSequence { expected, .. }) if expected == first.sequence),
        "{b:?}"
    );
}

#[tokio::test]
async fn publishing_without_a_stream_says_to_provision() {
    let server = NatsServer::start();
    let bus = connect(&server.url).await.expect("connect");
    let err = bus
        .publish(&subjects::control("acme"), &tenant_event())
        .await
        .expect_err("no stream");
    assert!(matches!(err, PublishError::NoStream { .. }), "{err:?}");
}
