use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures::FutureExt;
use rainlogs_bus::{Bus, CancellationToken, StreamStatus};
use rainlogs_config::{Config, generate_dev_secrets, random_hex_32};
use rainlogs_db::{PgPool, ProjectionSpec, Retried};
use rainlogs_runtime::ServiceContext;
use rainlogs_telemetry::{Health, ServiceState, Telemetry, health_routes};
use sqlx::postgres::PgConnectOptions;
use tokio::task::JoinSet;

use crate::cli::{RunArgs, ServiceName};

/// What `rainlogs run` checks in the configuration before any service starts, and everything
/// `rainlogs config check` reports: one check, so the two cannot disagree. Nothing here touches
/// the network.
pub struct Preflight {
    /// Problems that stop every service: NATS, PostgreSQL and the store are opened once per
    /// process, whichever services run in it.
    pub shared: Vec<String>,
    pub services: Vec<ServiceCheck>,
}

/// One service's own needs.
pub struct ServiceCheck {
    pub service: ServiceName,
    /// Why it cannot start (besides [`Preflight::shared`]).
    pub problems: Vec<String>,
    /// What it does without an optional setting.
    pub notes: Vec<String>,
}

impl ServiceCheck {
    fn can_run(&self, shared: &[String]) -> bool {
        self.problems.is_empty() && shared.is_empty()
    }
}

impl Preflight {
    /// Checks what each of `services` needs.
    pub fn new(config: &Config, services: &[ServiceName]) -> Self {
        let mut shared = Vec::new();
        if let Err(e) = rainlogs_bus::server_addrs(&config.nats.url) {
            shared.push(e.to_string());
        }
        if let Err(e) = database_options(config) {
            shared.push(format!("{e:#}"));
        }
        shared.extend(rainlogs_runtime::store_problems(&config.store));
        let services = services
            .iter()
            .map(|&service| Self::service(config, service))
            .collect();
        Self { shared, services }
    }

    fn service(config: &Config, service: ServiceName) -> ServiceCheck {
        let own = service.0.check(config);
        ServiceCheck {
            service,
            problems: own.problems,
            notes: own.notes,
        }
    }

    /// Whether every checked service can start.
    pub fn can_run(&self) -> bool {
        self.services.iter().all(|s| s.can_run(&self.shared))
    }

    /// The report, one line each: the shared problems, then every service.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .shared
            .iter()
            .map(|problem| format!("every service: {problem}"))
            .collect();
        for check in &self.services {
            let name = check.service.as_str();
            let own = check.problems.join("; ");
            lines.push(match (own.is_empty(), self.shared.is_empty()) {
                (true, true) => format!("{name}: ok"),
                (true, false) => format!("{name}: blocked by the problems above"),
                (false, true) => format!("{name}: {own}"),
                (false, false) => format!("{name}: {own}; and the problems above"),
            });
            lines.extend(
                check
                    .notes
                    .iter()
                    .map(|note| format!("{name}: note: {note}")),
            );
        }
        let missing_secret = self
            .services
            .iter()
            .flat_map(|s| &s.problems)
            .any(|p| p.starts_with("missing secrets."));
        if missing_secret {
            lines.push(
                "hint: set each missing secret as secrets.<name>_file (or \
                 RAINLOGS__SECRETS__<NAME>_FILE); `rainlogs secrets generate` writes \
                 token_encryption_key, api_key_digest_key and jwt_secret, `rainlogs keys \
                 generate` makes the signing key, and `rainlogs run --dev` generates development \
                 ones"
                    .to_owned(),
            );
        }
        let blocked = self.blocked();
        if blocked.is_empty() {
            let names: Vec<&str> = self.services.iter().map(|s| s.service.as_str()).collect();
            lines.push(format!("configuration is valid for {}", names.join(", ")));
        } else {
            lines.push(format!("configuration cannot run {}", blocked.join(", ")));
        }
        lines
    }

    fn blocked(&self) -> Vec<&'static str> {
        self.services
            .iter()
            .filter(|s| !s.can_run(&self.shared))
            .map(|s| s.service.as_str())
            .collect()
    }

    /// `rainlogs run`: an error with the whole report when a service cannot start; notes are
    /// logged.
    pub fn require(&self) -> anyhow::Result<()> {
        if !self.can_run() {
            bail!("{}", self.lines().join("\n  "));
        }
        for check in &self.services {
            for note in &check.notes {
                tracing::warn!(service = check.service.as_str(), "{note}");
            }
        }
        Ok(())
    }
}

pub async fn connect_bus(config: &Config) -> anyhow::Result<Bus> {
    Ok(rainlogs_bus::connect_any(&config.nats.url).await?)
}

/// `database.url` parsed as the pool parses it. The message never shows the URL: it may hold
/// a password.
fn database_options(config: &Config) -> anyhow::Result<PgConnectOptions> {
    let url = config.database.url();
    url.expose().parse().map_err(|e: sqlx::Error| {
        anyhow!(
            "database.url is not a valid PostgreSQL URL: {}",
            e.to_string().replace(url.expose(), "<database.url>")
        )
    })
}

/// `host:port/database` of a connection, for messages (no user, no password).
fn describe_database(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        database_name(options)
    )
}

/// The database a connection opens: PostgreSQL takes the user name when none is given.
fn database_name(options: &PgConnectOptions) -> &str {
    options
        .get_database()
        .unwrap_or_else(|| options.get_username())
}

/// SQLSTATE 3D000, invalid_catalog_name: the server is there, the database is not.
fn is_missing_database(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "3D000")
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

async fn connect_once(options: &PgConnectOptions) -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::Connection as _;
    match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(options)).await {
        Err(_) => bail!(
            "cannot reach PostgreSQL at {}: no answer within {} s",
            describe_database(options),
            CONNECT_TIMEOUT.as_secs()
        ),
        Ok(Err(e)) if is_missing_database(&e) => {
            let name = database_name(options);
            bail!(
                "database {name:?} does not exist on the PostgreSQL server at {host}:{port}: \
                 create it with `rainlogs migrate --create-database` (which also applies the \
                 migrations), or `createdb -h {host} -p {port} -U {user} {name}` then `rainlogs \
                 migrate`",
                host = options.get_host(),
                port = options.get_port(),
                user = options.get_username(),
            )
        }
        Ok(Err(e)) => bail!(
            "cannot reach PostgreSQL at {}: {e}",
            describe_database(options)
        ),
        Ok(Ok(connection)) => Ok(connection),
    }
}

pub async fn database(config: &Config) -> anyhow::Result<PgPool> {
    let options = database_options(config)?;
    // One plain connection first: the pool turns a refused connection into text, and only the
    // driver's error tells a missing database (SQLSTATE 3D000) from an unreachable server.
    let probe = connect_once(&options).await?;
    let _ = sqlx::Connection::close(probe).await;
    Ok(rainlogs_db::connect(
        config.database.url().expose(),
        config.database.max_connections,
    )
    .await?)
}

/// `rainlogs migrate --create-database`: creates `database.url`'s database through the
/// `postgres` maintenance database, which every server has. Returns its name and whether it was
/// created (false: it already existed).
pub async fn create_database(config: &Config) -> anyhow::Result<(String, bool)> {
    let options = database_options(config)?;
    let name = database_name(&options).to_owned();
    let maintenance = options.clone().database("postgres");
    let mut connection = connect_once(&maintenance)
        .await
        .with_context(|| format!("creating database {name:?}"))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut connection)
            .await
            .context("looking for the database")?;
    if exists {
        return Ok((name, false));
    }
    // Identifiers cannot be bound as parameters; a quoted one with its quotes doubled is safe.
    let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
    match sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(&mut connection)
        .await
    {
        Ok(_) => Ok((name, true)),
        // 42P04 duplicate_database: another process created it since the look-up.
        Err(e)
            if e.as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|code| code == "42P04") =>
        {
            Ok((name, false))
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "CREATE DATABASE {name:?} on {}:{} (the user needs the CREATEDB privilege)",
                options.get_host(),
                options.get_port()
            )
        }),
    }
}

pub async fn provision(config: &Config, check_only: bool) -> anyhow::Result<ExitCode> {
    let bus = connect_bus(config).await?;
    let reports = if check_only {
        rainlogs_bus::check(&bus, config.nats.replicas).await?
    } else {
        rainlogs_bus::provision(&bus, config.nats.replicas).await?
    };
    let mut attention = false;
    for report in &reports {
        attention |= report.needs_attention();
        println!("{}", serde_json::to_string(report)?);
    }
    Ok(if attention {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn rebuild_projections(config: &Config) -> anyhow::Result<ExitCode> {
    let bus = connect_bus(config).await?;
    let db = database(config).await?;
    for service in ServiceName::ALL {
        for projection in service.0.projections {
            let replayed = projection
                .rebuild(&db, &bus)
                .await
                .with_context(|| format!("rebuilding the {} projection", projection.name))?;
            println!(
                "{}: {} ({}): replayed {replayed} events",
                service.as_str(),
                projection.name,
                projection.tables.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `rainlogs tenants create --name N --email E`: the same checks and events as registration
/// through the API; prints the first admin key once.
pub async fn create_tenant(config: &Config, name: &str, email: &str) -> anyhow::Result<ExitCode> {
    let store = rainlogs_runtime::open_store(config)
        .await
        .context("opening the store")?;
    let ctx = ServiceContext {
        config: Arc::new(config.clone()),
        bus: connect_bus(config).await?,
        db: database(config).await?,
        store,
        health: Health::default(),
        telemetry: rainlogs_telemetry::init(&config.telemetry)?,
        shutdown: CancellationToken::new(),
    };
    let created = rainlogs_query_api::create_tenant(ctx, name, email).await?;
    println!("customer_id\t{}", created.customer_id);
    println!("key_id\t{}", created.key_id);
    println!("api_key\t{}", created.api_key);
    eprintln!("the API key is shown only now: hand it to the customer's admin");
    Ok(ExitCode::SUCCESS)
}

/// `rainlogs projections poisoned [--retry]`.
pub async fn poisoned_projections(config: &Config, retry: bool) -> anyhow::Result<ExitCode> {
    let db = database(config).await?;
    if retry {
        let bus = connect_bus(config).await?;
        // Every projection any service of this binary runs.
        let mut still_failing = 0;
        for service in ServiceName::ALL {
            for projection in service.0.projections {
                still_failing += retry_poisoned(&db, &bus, projection).await?;
            }
        }
        eprintln!("{still_failing} poisoned events still fail");
        return Ok(if still_failing == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let events = rainlogs_db::poisoned_events(&db).await?;
    for event in &events {
        let first_seen = event
            .first_seen
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| event.first_seen.to_string());
        println!(
            "{}\t{}\t{}\t{}\t{first_seen}\t{}",
            event.projection,
            event.stream,
            event.stream_sequence,
            event.subject.as_deref().unwrap_or("-"),
            event.error,
        );
    }
    eprintln!("{} poisoned events", events.len());
    Ok(ExitCode::SUCCESS)
}

/// Re-applies one projection's poisoned events and prints each outcome; returns how many still
/// fail.
async fn retry_poisoned(
    db: &PgPool,
    bus: &Bus,
    projection: &ProjectionSpec,
) -> anyhow::Result<usize> {
    let outcomes = projection.retry_poisoned(db, bus).await.with_context(|| {
        format!(
            "retrying the {} projection's poisoned events",
            projection.name
        )
    })?;
    let mut still_failing = 0;
    for (sequence, outcome) in outcomes {
        let what = match outcome {
            Retried::Applied => "applied; removed".to_owned(),
            Retried::StillFails(why) => {
                still_failing += 1;
                format!("still fails: {why}")
            }
            Retried::GoneFromStream => "no longer in the stream; removed".to_owned(),
            Retried::NotPoisoned => "no longer poisoned (retried elsewhere)".to_owned(),
        };
        println!(
            "{}\t{}\t{sequence}\t{what}",
            projection.name, projection.stream
        );
    }
    Ok(still_failing)
}

/// `rainlogs reaper [--dry-run]`: one retention pass at the current time.
pub async fn reaper(config: &Config, dry_run: bool) -> anyhow::Result<ExitCode> {
    let bus = connect_bus(config).await?;
    let db = database(config).await?;
    let store = rainlogs_runtime::open_store(config)
        .await
        .context("opening the store")?;
    let reaper = rainlogs_reaper::Reaper {
        db,
        bus,
        store: store.store,
        batch: i64::MAX,
        metrics: None,
    };
    let now = rainlogs_reaper::now_ns();
    if dry_run {
        for c in reaper.plan(now).await? {
            let why = match &c.decision {
                rainlogs_reaper::Decision::Prune => {
                    "retain-until passed: prune entry, then delete".to_owned()
                }
                rainlogs_reaper::Decision::Delete => "prune entry logged: delete".to_owned(),
                rainlogs_reaper::Decision::Held { hold_id } => {
                    format!("kept by legal hold {hold_id}")
                }
            };
            println!(
                "{}\t{}\t{}\tentry {}\t{} bytes\tretain-until {}\t{why}",
                c.tenant,
                c.zone,
                c.object_key,
                c.entry_index,
                c.stored_size,
                format_ns(c.retain_until_ns),
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = reaper.sweep(now).await?;
    println!("{report:?}");
    Ok(if report.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn format_ns(ns: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ns.to_string())
}

/// `--dev`: secrets nobody has to invent, written once into the data directory.
fn dev_secrets(config: &mut Config) -> anyhow::Result<()> {
    let hex = || random_hex_32();
    let signing_key = rainlogs_sealer::generate_signing_key(rainlogs_sealer::DEV_KEY_NAME)?;
    let note_key = || signing_key.to_string();
    let dev = generate_dev_secrets(
        &config.service.data_dir,
        &[
            ("token_encryption_key", &hex),
            ("api_key_digest_key", &hex),
            ("jwt_secret", &hex),
            ("signing_key", &note_key),
        ],
    )?;
    if !dev.created.is_empty() {
        tracing::warn!(
            dir = %dev.dir().display(),
            created = ?dev.created,
            "--dev generated development secrets (mode 0600); never use them in production"
        );
    }
    config.secrets.fill_from_dir(dev.dir())?;
    Ok(())
}

/// Refuses to start on missing streams; drift is reported but not fatal.
async fn check_backbone(bus: &Bus, config: &Config, dev: bool) -> anyhow::Result<()> {
    if dev {
        for report in rainlogs_bus::provision(bus, config.nats.replicas).await? {
            if report.status != StreamStatus::UpToDate {
                tracing::info!(stream = %report.name, status = ?report.status, "--dev provisioned");
            }
        }
        return Ok(());
    }
    let reports = rainlogs_bus::check(bus, config.nats.replicas).await?;
    let missing: Vec<&str> = reports
        .iter()
        .filter(|r| r.status == StreamStatus::Missing)
        .map(|r| r.name.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "JetStream is not provisioned (missing: {}); run `rainlogs provision`",
            missing.join(", ")
        );
    }
    for report in reports.iter().filter(|r| r.needs_attention()) {
        tracing::warn!(stream = %report.name, status = ?report.status, "stream definition drift");
    }
    Ok(())
}

/// With two providers, what publishes each store watch pass for zone health; `None` with one
/// (nothing to report), or when this process cannot be given a name (logged: the rest works).
fn store_status_writer(
    config: &Config,
    bus: &Bus,
    store: &rainlogs_runtime::ObjectStore,
) -> Option<crate::store_status::StatusWriter> {
    if !matches!(store.store, rainlogs_store::Store::Replicated(_)) {
        return None;
    }
    let dir = &config.service.data_dir;
    crate::store_status::StatusWriter::open(bus.clone(), dir, store.prefix.as_str())
        .inspect_err(|e| {
            tracing::warn!(dir = %dir.display(), error = %e,
                "no name for this process's store status entry: zone health will not show its repair backlog");
        })
        .ok()
}

fn ensure_local_store(config: &Config) -> anyhow::Result<()> {
    if !config.store.url.starts_with("s3://") {
        std::fs::create_dir_all(&config.store.url)
            .with_context(|| format!("store.url directory {}", config.store.url))?;
    }
    Ok(())
}

fn readiness_checks(health: &Health, bus: &Bus, db: &PgPool) {
    let nats = bus.clone();
    health.add_check("nats", move || {
        let ok = nats.is_connected();
        async move {
            if ok {
                Ok(())
            } else {
                Err("disconnected".to_owned())
            }
        }
        .boxed()
    });
    let pool = db.clone();
    health.add_check("postgres", move || {
        let pool = pool.clone();
        async move { sqlx_ping(&pool).await.map_err(|e| e.to_string()) }.boxed()
    });
}

/// `/ready`'s `info.poisoned_events`: how many events each projection set aside, e.g.
/// `{"audit": 1}`. Information for the operator, never a readiness check: whoever can get one
/// event set aside must not be able to take the API out of its load balancer.
fn poisoned_info(health: &Health, db: &PgPool) {
    let pool = db.clone();
    health.add_info_source("poisoned_events", move || {
        let pool = pool.clone();
        async move {
            match rainlogs_db::poisoned_counts(&pool).await {
                Ok(counts) => serde_json::Value::Object(
                    counts
                        .into_iter()
                        .map(|(projection, count)| (projection, count.into()))
                        .collect(),
                ),
                Err(e) => serde_json::Value::String(format!("unknown: {e}")),
            }
        }
        .boxed()
    });
}

async fn sqlx_ping(pool: &PgPool) -> Result<(), rainlogs_db::DbError> {
    rainlogs_db::ping(pool).await
}

async fn shutdown_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut config = args.config.load()?;
    let telemetry: Telemetry = rainlogs_telemetry::init(&config.telemetry)?;
    let dev = args.dev || args.demo;
    // Kept for the life of the process: the demo's Cloudflare.
    let _simulator = if args.demo {
        Some(crate::demo::start_simulator(&mut config).await?)
    } else {
        None
    };
    if dev {
        dev_secrets(&mut config)?;
        // A development server is for trying things out: anyone on it may register, unless the
        // configuration says otherwise.
        config
            .api
            .registration
            .get_or_insert(rainlogs_config::Registration::Open);
        // Trying RainLogs out needs no storage decision; a real deployment must make one.
        config.store.use_dev_default();
    }
    let services = if args.services.is_empty() {
        ServiceName::ALL.to_vec()
    } else {
        args.services.clone()
    };

    let bus = connect_bus(&config).await?;
    check_backbone(&bus, &config, dev).await?;
    // Everything `rainlogs config check` reports, before PostgreSQL, the store or any service is
    // touched. NATS comes first: an old or unprovisioned server stops every configuration.
    Preflight::new(&config, &services).require()?;
    let db = database(&config).await?;
    if dev {
        rainlogs_db::migrate(&db).await?;
    }
    ensure_local_store(&config)?;
    let store = rainlogs_runtime::open_store(&config)
        .await
        .context("opening the store")?;
    let health = Health::default();
    readiness_checks(&health, &bus, &db);
    poisoned_info(&health, &db);
    let shutdown = CancellationToken::new();
    // Tries each protection (never trusting a provider's 200) before any service starts, then
    // keeps watching the providers and repairing what one of two missed; with two, each pass is
    // published for zone health.
    let store_status = store_status_writer(&config, &bus, &store);
    let store_watch =
        crate::store_watch::start(&store, &telemetry, &health, store_status, shutdown.clone())
            .await;

    let ctx = ServiceContext {
        config: Arc::new(config.clone()),
        bus: bus.clone(),
        db,
        store,
        health: health.clone(),
        telemetry: telemetry.clone(),
        shutdown: shutdown.clone(),
    };

    let listener = poem::listener::TcpListener::bind(config.telemetry.listen);
    let telemetry_shutdown = shutdown.clone();
    let spans = telemetry.clone();
    let telemetry_server = tokio::spawn(poem::Server::new(listener).run_with_graceful_shutdown(
        health_routes(health.clone(), telemetry),
        async move { telemetry_shutdown.cancelled().await },
        Some(Duration::from_secs(1)),
    ));

    let mut tasks = JoinSet::new();
    for service in services {
        health.set_service(service.as_str(), ServiceState::Starting);
        let ctx = ctx.clone();
        tasks.spawn(async move { (service, (service.0.run)(ctx).await) });
    }
    tracing::info!(telemetry = %config.telemetry.listen, "rainlogs started");
    if args.demo {
        let config = config.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::demo::onboard(&config).await {
                tracing::error!(error = %format!("{e:#}"), "demo onboarding failed");
            }
        });
    }

    // Run until a signal, or until a service stops on its own (which is a failure).
    let mut failed = false;
    tokio::select! {
        signal = shutdown_signal() => {
            tracing::info!(signal = signal?, "shutting down: finishing in-flight work");
        }
        Some(joined) = tasks.join_next() => {
            failed = true;
            match joined {
                Ok((service, Ok(()))) => tracing::error!(service = service.as_str(), "service stopped unexpectedly"),
                Ok((_, Err(e))) => tracing::error!(error = %e, "service failed"),
                Err(e) => tracing::error!(error = %e, "service panicked"),
            }
        }
    }
    shutdown.cancel();
    store_watch.abort();
    for name in ServiceName::ALL {
        health.set_service(name.as_str(), ServiceState::Stopping);
    }
    let drained = tokio::time::timeout(config.service.shutdown_timeout, async {
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((_, Err(e))) => {
                    failed = true;
                    tracing::error!(error = %e, "service failed while stopping");
                }
                Err(e) => {
                    failed = true;
                    tracing::error!(error = %e, "service panicked while stopping");
                }
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::error!(
            timeout = ?config.service.shutdown_timeout,
            "in-flight work did not finish within service.shutdown_timeout; unacknowledged work will be redelivered"
        );
        failed = true;
    }
    // Make sure every publish and ack reached the server before the process exits.
    if let Err(e) = bus.client.flush().await {
        tracing::warn!(error = %e, "flushing NATS on shutdown failed");
    }
    let _ = telemetry_server.await;
    tracing::info!("stopped");
    // The exporter's own thread sends what is left; waiting for it must not hold a worker.
    let _ = tokio::task::spawn_blocking(move || spans.flush()).await;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
