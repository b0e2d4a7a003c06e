//! What a service is. Each service crate exports one [`ServiceDescriptor`] as `SERVICE`; the
//! binary runs, checks and rebuilds by iterating over them, the readiness report names them, and
//! the boundary test reads the tables their projections own. Adding a service or a projection
//! touches its own crate (and, for a new service, the binary's list).

use futures::future::BoxFuture;
use rainlogs_config::{Config, Secret, SecretForm};
use rainlogs_db::ProjectionSpec;
use rainlogs_telemetry::MetricFamily;

use crate::{ServiceContext, ServiceError};

pub struct ServiceDescriptor {
    /// As in `--service`, logs, metrics and `/ready`.
    pub name: &'static str,
    /// What it does and what it promises about delivery, in one sentence.
    pub summary: &'static str,
    /// Runs the service until the context's shutdown fires.
    pub run: fn(ServiceContext) -> BoxFuture<'static, Result<(), ServiceError>>,
    /// The read models it keeps in PostgreSQL. Their tables are its own: no other service reads
    /// them (a test checks the SQL of every service crate).
    pub projections: &'static [ProjectionSpec],
    /// The metric families it exposes on `/metrics`; a process also reports the projector's
    /// ([`rainlogs_db::METRIC_FAMILIES`]) for each projection and the consumers'
    /// ([`crate::consumers::FAMILIES`]) for each durable consumer it runs.
    pub metrics: &'static [MetricFamily],
    /// What it needs of the configuration (never touches the network).
    pub check_config: fn(&Config, &mut ConfigCheck),
}

impl std::fmt::Debug for ServiceDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDescriptor")
            .field("name", &self.name)
            .field("projections", &self.projections)
            .finish_non_exhaustive()
    }
}

impl ServiceDescriptor {
    /// Every table the service's projections own.
    pub fn tables(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.projections
            .iter()
            .flat_map(|p| p.tables.iter().copied())
    }

    /// The configuration check of this service alone.
    pub fn check(&self, config: &Config) -> ConfigCheck {
        let mut check = ConfigCheck::default();
        (self.check_config)(config, &mut check);
        check
    }
}

/// One service's needs of the configuration: problems stop it, notes say what it does without
/// an optional setting.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConfigCheck {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

impl ConfigCheck {
    pub fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// A secret the service cannot start without, in `form`.
    pub fn require_secret(&mut self, name: &str, secret: Option<&Secret>, form: SecretForm) {
        match secret {
            None => self.problem(format!("missing secrets.{name}")),
            Some(secret) => self.check_secret(name, secret, form),
        }
    }

    /// An optional secret, when it is set, in `form`.
    pub fn check_secret(&mut self, name: &str, secret: &Secret, form: SecretForm) {
        if let Err(reason) = secret.check_form(form) {
            self.problem(format!("secrets.{name} {reason}"));
        }
    }
}

/// No configuration of its own beyond what every service shares.
pub fn nothing_to_check(_: &Config, _: &mut ConfigCheck) {}
