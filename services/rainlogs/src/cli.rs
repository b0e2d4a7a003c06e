use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use rainlogs_config::{Config, GENERATED_SECRET_NAMES, Sources, random_hex_32};
use rainlogs_runtime::ServiceDescriptor;

/// RainLogs: a Cloudflare log archive an auditor can verify.
#[derive(Parser)]
#[command(name = "rainlogs", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run services: all of them in one process by default, or only those named.
    Run(RunArgs),
    /// Create or update the JetStream streams and consumers from nats/, and report drift.
    Provision {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only report what is missing or drifted; change nothing (exit 1 if anything is).
        #[arg(long)]
        check: bool,
    },
    /// Apply the database migrations.
    Migrate {
        #[command(flatten)]
        config: ConfigArgs,
        /// First create database.url's database if it does not exist (connecting to the
        /// server's `postgres` database; the user needs the CREATEDB privilege).
        #[arg(long)]
        create_database: bool,
    },
    /// Manage the Postgres projections.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Manage tenants (the way in when `api.registration` is closed).
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// One retention pass now: archives past retain-until and under no legal hold get their
    /// prune entry, then are deleted. `--dry-run` lists what would go and why, changing nothing.
    Reaper {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        dry_run: bool,
    },
    /// The sealer's checkpoint signing key.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The symmetric secrets (token_encryption_key, api_key_digest_key, jwt_secret).
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Search indexes of archives.
    Index {
        #[command(subcommand)]
        command: IndexCommand,
    },
    /// Search a zone's archives in the bucket alone (read-only credentials and the pinned key):
    /// the records of a Ray ID, an address or a CIDR block, optionally in a time range, as NDJSON.
    Search(crate::search_cli::SearchArgs),
    /// The two storage providers (`store.url` and `store.secondary`).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Subcommand)]
enum IndexCommand {
    /// Index the archives sealed before indexes existed (not pruned, without an `index`
    /// entry): each is read and checked against its logged hash, its index object written
    /// beside it, and its `index` entry requested from the sealer. Idempotent; progress every
    /// 100 archives. Exit 1 if any archive could not be indexed.
    Rebuild {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only this zone.
        #[arg(long)]
        zone: Option<String>,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// What each provider lacks, from both listings (exit 1 if either lacks anything).
    Compare {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Copy every object one provider lacks from the other (hash-checked; a key whose bytes
    /// differ is reported, never overwritten), then drain this process's repair queue.
    /// `--dry-run` prints what would be copied and changes nothing. Exit 1 if anything is left.
    Repair {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Write a new token_encryption_key, api_key_digest_key and jwt_secret (32 random bytes as
    /// hex each) to their own files, mode 0600, and print the configuration that reads them.
    /// Refuses to overwrite an existing file.
    Generate {
        /// Directory for the files; created with mode 0700 when missing.
        #[arg(long, default_value = "secrets")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new private signing key (PRIVATE+KEY+...) to stdout; store it as a secret.
    Generate {
        /// Key name, conventionally `<your domain>/sealer`; auditors see it in every checkpoint.
        #[arg(long)]
        name: String,
    },
    /// Print the public verifier key of the configured secrets.signing_key: what auditors pin.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Re-seal every zone's Cloudflare token with secrets.token_encryption_key, opening it with
    /// secrets.previous_token_encryption_key; run until it reports 0 left, then drop the old key.
    Rotate {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Subcommand)]
enum TenantsCommand {
    /// Create a tenant and print its id and first admin API key (shown only this once).
    Create {
        #[command(flatten)]
        config: ConfigArgs,
        /// Organisation name (one line of printable text, at most 200 characters).
        #[arg(long)]
        name: String,
        /// Contact address; one tenant per address.
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ProjectionsCommand {
    /// Drop the projection tables and replay them from JetStream (stop query-api and the reaper first).
    Rebuild {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// List the events the projections set aside because they can never apply; --retry them.
    ///
    /// PostgreSQL refused what they hold, or they do not decode; each projection went on without
    /// them. One line each: projection, stream, sequence, subject, first seen, why.
    Poisoned {
        #[command(flatten)]
        config: ConfigArgs,
        /// Once their cause is fixed: fetch each from its stream and apply it alone (after the
        /// events that followed it, which are already applied); remove those that apply and
        /// report those that still fail (exit 1 if any do).
        #[arg(long)]
        retry: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration (file + environment + flags) as `rainlogs run` would, print
    /// the effective settings (secrets redacted) and say which services it can run. Exits 1
    /// when one of them cannot run.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
        /// Check only this service (repeatable), as for `rainlogs run --service`; the exit
        /// status then depends on these alone.
        #[arg(long = "service", value_enum)]
        services: Vec<ServiceName>,
    },
}

/// One of the services this binary runs, as `--service` names it.
#[derive(Clone, Copy)]
pub struct ServiceName(pub &'static ServiceDescriptor);

impl ServiceName {
    /// Every service of the binary, in start order. A new service is one line here; the rest
    /// (running it, checking its configuration, rebuilding its projections) reads its
    /// descriptor.
    pub const ALL: [ServiceName; 6] = [
        ServiceName(&rainlogs_ingest::SERVICE),
        ServiceName(&rainlogs_collector::SERVICE),
        ServiceName(&rainlogs_archiver::SERVICE),
        ServiceName(&rainlogs_sealer::SERVICE),
        ServiceName(&rainlogs_reaper::SERVICE),
        ServiceName(&rainlogs_query_api::SERVICE),
    ];

    pub fn as_str(self) -> &'static str {
        self.0.name
    }
}

impl PartialEq for ServiceName {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for ServiceName {}

impl std::fmt::Debug for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

impl ValueEnum for ServiceName {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.0.name).help(self.0.summary))
    }
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// A service to run (repeatable). Without it, every service runs in this process.
    #[arg(long = "service", value_enum)]
    pub services: Vec<ServiceName>,
    /// Development mode: generate missing secrets into <service.data_dir>/dev-secrets (mode
    /// 0600), provision streams and apply migrations before starting.
    #[arg(long)]
    pub dev: bool,
    /// Demo (implies --dev): Cloudflare is the built-in simulator with one zone per plan, and a
    /// demo tenant and its zones are registered through the API; prints the API URL, a key and
    /// the `rainlogs-verify` command for what gets archived.
    #[arg(long)]
    pub demo: bool,
}

/// Where configuration comes from; flags win over environment, file and defaults.
#[derive(Args, Clone, Default)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// nats.url (one URL or a comma-separated list of seed servers)
    #[arg(long)]
    pub nats_url: Option<String>,
    /// store.url (a directory, or s3://bucket/prefix)
    #[arg(long)]
    pub store_url: Option<String>,
    /// cloudflare.base_url
    #[arg(long)]
    pub cloudflare_base_url: Option<String>,
    /// api.listen
    #[arg(long)]
    pub api_listen: Option<String>,
    /// telemetry.listen
    #[arg(long)]
    pub telemetry_listen: Option<String>,
}

impl ConfigArgs {
    pub fn load(&self) -> anyhow::Result<Config> {
        let flags = [
            ("nats.url", &self.nats_url),
            ("store.url", &self.store_url),
            ("cloudflare.base_url", &self.cloudflare_base_url),
            ("api.listen", &self.api_listen),
            ("telemetry.listen", &self.telemetry_listen),
        ];
        let overrides = flags
            .into_iter()
            .filter_map(|(key, value)| value.clone().map(|v| (key, v)))
            .collect();
        rainlogs_config::load(&Sources {
            file: self.config.as_deref(),
            env: Sources::process_env(),
            overrides,
        })
        .context("configuration")
    }
}

/// `rainlogs secrets generate`: the files, then the configuration lines that read them.
fn generate_secrets(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let dir = std::path::absolute(dir).with_context(|| format!("--dir {}", dir.display()))?;
    let wanted: Vec<(&str, &dyn Fn() -> String)> = GENERATED_SECRET_NAMES
        .iter()
        .map(|name| (*name, &random_hex_32 as &dyn Fn() -> String))
        .collect();
    let paths = rainlogs_config::write_new_secrets(&dir, &wanted)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "[secrets]")?;
    for (name, path) in GENERATED_SECRET_NAMES.iter().zip(&paths) {
        writeln!(
            stdout,
            "{name}_file = {}",
            toml_string(&path.display().to_string())
        )?;
    }
    eprintln!(
        "wrote {} secrets (mode 0600) into {}; keep a copy in your secret store: without \
         token_encryption_key the stored Cloudflare tokens cannot be opened, without \
         api_key_digest_key every API key stops working",
        paths.len(),
        dir.display()
    );
    eprintln!(
        "environment form: {}",
        GENERATED_SECRET_NAMES
            .iter()
            .zip(&paths)
            .map(|(name, path)| format!(
                "RAINLOGS__SECRETS__{}_FILE={}",
                name.to_ascii_uppercase(),
                path.display()
            ))
            .collect::<Vec<_>>()
            .join(" ")
    );
    eprintln!(
        "the sealer's signing key: (umask 077; rainlogs keys generate --name <your domain>/sealer \
         > {}) and signing_key_file = that path",
        dir.join("signing_key").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A TOML string holding `text`: literal ('…') when it can be, else basic with escapes.
fn toml_string(text: &str) -> String {
    if text.chars().any(|c| c == '\'' || c.is_control()) {
        let mut quoted = String::from("\"");
        for c in text.chars() {
            match c {
                '"' => quoted.push_str("\\\""),
                '\\' => quoted.push_str("\\\\"),
                c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
                c => quoted.push(c),
            }
        }
        quoted.push('"');
        quoted
    } else {
        format!("'{text}'")
    }
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => crate::run::run(args).await,
        Command::Provision { config, check } => crate::run::provision(&config.load()?, check).await,
        Command::Migrate {
            config,
            create_database,
        } => {
            let config = config.load()?;
            if create_database {
                let (name, created) = crate::run::create_database(&config).await?;
                if created {
                    println!("database {name:?} created");
                } else {
                    println!("database {name:?} already exists");
                }
            }
            let db = crate::run::database(&config).await?;
            rainlogs_db::migrate(&db).await?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Projections {
            command: ProjectionsCommand::Rebuild { config },
        } => crate::run::rebuild_projections(&config.load()?).await,
        Command::Projections {
            command: ProjectionsCommand::Poisoned { config, retry },
        } => crate::run::poisoned_projections(&config.load()?, retry).await,
        Command::Tenants {
            command:
                TenantsCommand::Create {
                    config,
                    name,
                    email,
                },
        } => crate::run::create_tenant(&config.load()?, &name, &email).await,
        Command::Reaper { config, dry_run } => crate::run::reaper(&config.load()?, dry_run).await,
        Command::Keys {
            command: KeysCommand::Generate { name },
        } => {
            let key = rainlogs_sealer::generate_signing_key(&name).context("--name")?;
            println!("{}", key.as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys {
            command: KeysCommand::Show { config },
        } => {
            let config = config.load()?;
            let private = config
                .secrets
                .signing_key
                .as_ref()
                .context("secrets.signing_key is not set (set secrets.signing_key_file)")?;
            let public = rainlogs_sealer::verifier_key_text(private.expose())
                .context("secrets.signing_key")?;
            println!("{public}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys {
            command: KeysCommand::Rotate { config },
        } => crate::rotate::rotate_tokens(&config.load()?).await,
        Command::Config {
            command: ConfigCommand::Check { config, services },
        } => {
            let config = config.load()?;
            // Written, not println!: a closed pipe (`| head`) is an error, not a panic.
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", serde_json::to_string_pretty(&config)?)?;
            let chosen = if services.is_empty() {
                ServiceName::ALL.to_vec()
            } else {
                services
            };
            let preflight = crate::run::Preflight::new(&config, &chosen);
            for line in preflight.lines() {
                eprintln!("{line}");
            }
            Ok(if preflight.can_run() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Secrets {
            command: SecretsCommand::Generate { dir },
        } => generate_secrets(&dir),
        Command::Search(args) => crate::search_cli::search(args).await,
        Command::Index {
            command: IndexCommand::Rebuild { config, zone },
        } => crate::index_rebuild::rebuild(&config.load()?, zone.as_deref()).await,
        Command::Store {
            command: StoreCommand::Compare { config },
        } => crate::store_cli::compare(&config.load()?).await,
        Command::Store {
            command: StoreCommand::Repair { config, dry_run },
        } => crate::store_cli::repair(&config.load()?, dry_run).await,
    }
}
