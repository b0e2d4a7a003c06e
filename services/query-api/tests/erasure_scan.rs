//! Erasure really erases: a tenant whose every tenant-chosen text is a unique marker is erased,
//! then every column of every table and every message of every stream is searched for each
//! marker. A marker may be found only where the erasure answer says it stays, and the answer
//! must say so; the caches are checked through the API (the old credentials are refused, and a
//! fresh tenant sees nothing of the old one).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{ENTERPRISE_ZONE, FULL_TOKEN, Stack};
use futures::TryStreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The tenant's texts, each a unique marker (lower case, so a lower-cased search finds it).
struct Markers {
    name: String,
    /// The local part of the tenant's (and its dashboard user's) address.
    email: String,
    admin_key: String,
    auditor_key: String,
    zone: String,
    /// The reason of a hold that is still in force when the tenant is erased.
    hold_kept: String,
    /// The reason of a hold released before the erasure.
    hold_released: String,
    erasure_reason: String,
}

impl Markers {
    fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let marker = |what: &str| format!("marker-{what}-{id}");
        Self {
            name: marker("name"),
            email: marker("email"),
            admin_key: marker("admin-key-label"),
            auditor_key: marker("auditor-key-label"),
            zone: marker("zone-name"),
            hold_kept: marker("hold-in-force"),
            hold_released: marker("hold-released"),
            erasure_reason: marker("erasure-reason"),
        }
    }

    fn address(&self) -> String {
        format!("{}@example.com", self.email)
    }

    fn all(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("tenant name", &self.name),
            ("email", &self.email),
            ("admin key label", &self.admin_key),
            ("auditor key label", &self.auditor_key),
            ("zone name", &self.zone),
            ("reason of a hold in force", &self.hold_kept),
            ("reason of a released hold", &self.hold_released),
            ("erasure reason", &self.erasure_reason),
        ]
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    haystack.len() >= needle.len()
        && haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Every column of every table (and view) in the public schema that holds a marker, as
/// `table.column` → markers found there.
async fn scan_tables(stack: &Stack, markers: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::TEXT, column_name::TEXT, data_type::TEXT FROM information_schema.columns \
         WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    )
    .fetch_all(&stack.pool)
    .await
    .unwrap();
    assert!(
        columns
            .iter()
            .any(|(t, c, _)| t == "api_keys" && c == "name")
            && columns
                .iter()
                .any(|(t, c, _)| t == "api_legal_holds" && c == "reason"),
        "the scan sees the tables"
    );
    let mut found = BTreeMap::new();
    // Identifiers from the catalogue, quoted as identifiers.
    let ident = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    for (table, column, data_type) in &columns {
        let (table_id, column_id) = (ident(table), ident(column));
        // Every column, whatever its type: bytes are searched as bytes, anything else as text.
        let matches = if data_type == "bytea" {
            format!(
                "position(convert_to(lower($1), 'UTF8') IN {column_id}) > 0 \
                 OR position(convert_to(upper($1), 'UTF8') IN {column_id}) > 0"
            )
        } else {
            format!("strpos(lower({column_id}::TEXT), lower($1)) > 0")
        };
        let sql = format!("SELECT count(*) FROM {table_id} WHERE {matches}");
        for (_, marker) in markers {
            let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(*marker)
                .fetch_one(&stack.pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            if count > 0 {
                found
                    .entry(format!("{table}.{column}"))
                    .or_insert_with(Vec::new)
                    .push((*marker).to_owned());
            }
        }
    }
    found
}

/// Every stream the server has, every stored message's subject, headers and payload bytes:
/// stream name → markers found in it.
async fn scan_streams(stack: &Stack, markers: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
    let names: Vec<String> = stack.bus.js.stream_names().try_collect().await.unwrap();
    assert!(
        names.iter().any(|n| n == "RL_CONTROL") && names.iter().any(|n| n == "RL_AUDIT"),
        "{names:?}"
    );
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in names {
        let mut stream = stack.bus.js.get_stream(&name).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        if state.messages == 0 {
            continue;
        }
        let mut read = 0;
        for sequence in state.first_sequence..=state.last_sequence {
            // Deleted (erased) sequences are gone.
            let Ok(message) = stream.get_raw_message(sequence).await else {
                continue;
            };
            read += 1;
            let mut bytes = message.subject.as_bytes().to_vec();
            for (header, values) in message.headers.iter() {
                bytes.extend_from_slice(header.as_ref());
                for value in values {
                    bytes.extend_from_slice(value.as_ref());
                }
            }
            bytes.extend_from_slice(&message.payload);
            for (_, marker) in markers {
                if contains(&bytes, marker) {
                    let list = found.entry(name.clone()).or_default();
                    if !list.iter().any(|m| m == marker) {
                        list.push((*marker).to_owned());
                    }
                }
            }
        }
        assert_eq!(read, state.messages, "every message of {name} was read");
    }
    found
}

/// Waits until each projection has applied everything its stream holds.
async fn projections_caught_up(stack: &Stack) {
    for _ in 0..500 {
        let mut behind = Vec::new();
        for (projection, stream) in [
            ("control", "RL_CONTROL"),
            ("api-legal-holds", "RL_CONTROL"),
            ("audit", "RL_AUDIT"),
        ] {
            let mut stream = stack.bus.js.get_stream(stream).await.unwrap();
            let last = stream.info().await.unwrap().state.last_sequence;
            let offset: Option<(i64,)> = sqlx::query_as(
                "SELECT stream_sequence FROM projection_offsets WHERE projection = $1",
            )
            .bind(projection)
            .fetch_optional(&stack.pool)
            .await
            .unwrap();
            if offset.is_none_or(|(o,)| u64::try_from(o).unwrap() < last) {
                behind.push(projection);
            }
        }
        if behind.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the projections never caught up");
}

/// No marker in an answer the API gives after the erasure.
fn shows_nothing(reply: &common::Reply, markers: &[(&str, &str)], what: &str) {
    for (kind, marker) in markers {
        assert!(
            !contains(&reply.bytes, marker),
            "{what} shows the erased {kind}: {}",
            String::from_utf8_lossy(&reply.bytes)
        );
    }
}

#[tokio::test]
async fn erasure_leaves_only_what_the_answer_lists() {
    let stack = Stack::start().await;
    let m = Markers::new();
    let markers = m.all();
    let password = "correct horse battery staple";

    // A tenant whose every text is a marker: its registration creates a dashboard user with the
    // same address.
    let registered = stack
        .call(
            Method::POST,
            "/customers",
            None,
            Some(json!({"name": m.name, "email": m.address(), "password": password})),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.json
    );
    let tenant = registered.json["customer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = registered.json["api_key"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = |name: &str, role: &str| {
        let (stack, first) = (&stack, &first);
        let body = json!({"name": name, "role": role});
        async move {
            let reply = stack.post("/api/v1/api-keys", first, body).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
            reply.json["key"].as_str().unwrap().to_owned()
        }
    };
    let admin = key(&m.admin_key, "admin").await;
    let auditor = key(&m.auditor_key, "auditor").await;
    let login = stack
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": m.address(), "password": password})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.json);
    let session = login.json["access_token"].as_str().unwrap().to_owned();

    let zone = stack
        .post(
            "/api/v1/zones",
            &admin,
            json!({"zone_id": ENTERPRISE_ZONE, "cf_api_token": FULL_TOKEN, "name": m.zone}),
        )
        .await;
    assert_eq!(zone.status, StatusCode::CREATED, "{}", zone.json);

    let hold = |reason: &str| {
        let (stack, admin) = (&stack, &admin);
        let body = json!({"reason": reason});
        async move {
            let reply = stack.post("/api/v1/legal-holds", admin, body).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
            reply.json["hold_id"].as_str().unwrap().to_owned()
        }
    };
    hold(&m.hold_kept).await;
    let released = hold(&m.hold_released).await;
    projections_caught_up(&stack).await;
    let release = stack
        .call(
            Method::DELETE,
            &format!("/api/v1/legal-holds/{released}"),
            Some(&admin),
            None,
        )
        .await;
    assert!(release.status.is_success(), "{}", release.json);

    // Everything read once with every credential, so the key and read caches hold it.
    for credential in [&first, &admin, &auditor, &session] {
        for path in [
            format!("/api/v1/customers/{tenant}"),
            "/api/v1/zones".to_owned(),
            "/api/v1/legal-holds".to_owned(),
        ] {
            let reply = stack.get(&path, credential).await;
            // Only admins list legal holds.
            let refused = credential == &auditor && path.ends_with("legal-holds");
            assert_eq!(
                reply.status,
                if refused {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::OK
                },
                "{path}: {}",
                reply.json
            );
        }
    }
    let export = stack.get("/api/v1/export", &admin).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.json);
    for (kind, marker) in &markers[..5] {
        assert!(
            contains(&export.bytes, marker),
            "the export shows the {kind}"
        );
    }
    projections_caught_up(&stack).await;
    // Before the erasure, the scans find every marker (the scan is able to see them).
    let tables = scan_tables(&stack, &markers).await;
    let streams = scan_streams(&stack, &markers).await;
    for (kind, marker) in &markers {
        if *marker == m.erasure_reason {
            continue;
        }
        assert!(
            tables
                .values()
                .chain(streams.values())
                .flatten()
                .any(|f| f == marker),
            "the scans do not find the {kind} before the erasure"
        );
    }

    let erase = stack
        .call(
            Method::DELETE,
            &format!("/api/v1/customers/{tenant}?reason={}", m.erasure_reason),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(erase.status, StatusCode::OK, "{}", erase.json);
    let answer = &erase.json;
    projections_caught_up(&stack).await;

    // What stays: (marker, where). Nothing in any table; in the event logs, only what the
    // answer lists with its reason.
    let kept: BTreeSet<(String, String)> = [
        (m.zone.clone(), "RL_CONTROL".to_owned()),
        (m.hold_kept.clone(), "RL_CONTROL".to_owned()),
        (m.erasure_reason.clone(), "RL_CONTROL".to_owned()),
        (m.erasure_reason.clone(), "RL_ARCHIVE".to_owned()),
    ]
    .into();
    let tables = scan_tables(&stack, &markers).await;
    assert!(
        tables.is_empty(),
        "tenant text left in the database: {tables:?}"
    );
    let streams = scan_streams(&stack, &markers).await;
    let found: BTreeSet<(String, String)> = streams
        .iter()
        .flat_map(|(stream, found)| found.iter().map(|m| (m.clone(), stream.clone())))
        .collect();
    let name_of = |marker: &str| {
        markers
            .iter()
            .find(|(_, m)| *m == marker)
            .map_or("?", |(kind, _)| *kind)
    };
    let unexpected: Vec<_> = found
        .difference(&kept)
        .map(|(marker, stream)| format!("{} in {stream}", name_of(marker)))
        .collect();
    assert!(
        unexpected.is_empty(),
        "tenant text left in the event streams: {unexpected:?}"
    );
    assert_eq!(found, kept, "what stays is found where the answer says");

    // The answer lists each of them, where it stays and why.
    let retained = answer["retained"].as_array().unwrap();
    for (what, stream) in [
        ("zone names", "RL_CONTROL"),
        ("reasons of the legal holds in force", "RL_CONTROL"),
        ("erasure reason", "RL_CONTROL"),
        ("erasure reason", "RL_ARCHIVE"),
    ] {
        assert!(
            retained.iter().any(|r| {
                r["what"].as_str().unwrap().contains(what)
                    && r["where"].as_str().unwrap().contains(stream)
                    && !r["why"].as_str().unwrap().is_empty()
            }),
            "the answer does not list the {what} kept in {stream}: {answer}"
        );
    }
    for r in retained {
        assert!(
            r["where"].as_str().is_some_and(|w| !w.is_empty()),
            "every retained item says where: {answer}"
        );
    }
    let erased = answer["erased"].to_string();
    for what in ["API key labels", "zone names", "legal hold"] {
        assert!(
            erased.contains(what),
            "{what} not among the erased: {answer}"
        );
    }
    // The legal hold in force still holds (its row stays, with a fixed reason).
    let holds: Vec<(String,)> =
        sqlx::query_as("SELECT reason FROM api_legal_holds WHERE tenant = $1")
            .bind(&tenant)
            .fetch_all(&stack.pool)
            .await
            .unwrap();
    assert_eq!(holds.len(), 1, "{holds:?}");
    assert_eq!(holds[0].0, "erased with the tenant");

    // The caches: no old credential works, and nothing of the old tenant is shown.
    for credential in [&first, &admin, &auditor, &session] {
        for path in [
            format!("/api/v1/customers/{tenant}"),
            "/api/v1/zones".to_owned(),
            "/api/v1/legal-holds".to_owned(),
            "/api/v1/api-keys".to_owned(),
            "/api/v1/export".to_owned(),
        ] {
            let reply = stack.get(&path, credential).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{path} with an erased credential: {}",
                reply.json
            );
            shows_nothing(&reply, &markers, &path);
        }
    }
    let again = stack
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": m.address(), "password": password})),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.json);
    let (_, fresh) = stack.register("fresh@other.example").await;
    let mut answers = Vec::new();
    for path in [
        format!("/api/v1/customers/{tenant}"),
        "/api/v1/zones".to_owned(),
        format!("/api/v1/zones/{ENTERPRISE_ZONE}"),
        "/api/v1/legal-holds".to_owned(),
        "/api/v1/api-keys".to_owned(),
        "/api/v1/audit-log".to_owned(),
        "/api/v1/jobs".to_owned(),
        "/api/v1/export".to_owned(),
    ] {
        answers.push((path.clone(), stack.get(&path, &fresh).await));
    }
    answers.push((
        "adding the erased tenant's zone".to_owned(),
        stack.add_zone(&fresh, ENTERPRISE_ZONE).await,
    ));
    for (path, reply) in &answers {
        shows_nothing(reply, &markers, path);
    }
    // The address is free again.
    let reused = stack
        .call(
            Method::POST,
            "/customers",
            None,
            Some(json!({"name": "someone else", "email": m.address()})),
        )
        .await;
    assert_eq!(reused.status, StatusCode::CREATED, "{}", reused.json);
}
