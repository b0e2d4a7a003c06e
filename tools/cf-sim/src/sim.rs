//! Starting, controlling and stopping a simulator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::Server;
use poem::listener::{Acceptor, AcceptorExt, BoxAcceptor, Listener, TcpListener};
use time::OffsetDateTime;

use crate::clock::{ClockStart, SimClock};
use crate::fault::Fault;
use crate::http::SimApp;
use crate::lock;
use crate::logpush::{self, LogpushDelivery, LogpushUpload};
use crate::scenario::{Scenario, ScenarioError};
use crate::state::{RequestRecord, Shared};
use crate::tls::{SelfSigned, TlsAcceptor, TlsError};
use crate::truth::{TruthError, TruthQuery, truth_lines};

/// How to run a simulator. `SimOptions::default()` listens on an ephemeral loopback port.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub listen: SocketAddr,
    /// Overrides the scenario's `seed`.
    pub seed: Option<u64>,
    /// Overrides the scenario's `[clock]`.
    pub clock: Option<ClockStart>,
    /// Also listen here with TLS (a self-signed certificate made at start): Instant Logs destinations become
    /// `wss://` on this address and plain `ws://` connects get 301, as on Cloudflare. Off by default because
    /// clients must be told to trust the certificate ([`RunningSim::wss_certificate_der`]).
    pub wss_listen: Option<SocketAddr>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: None,
            clock: None,
            wss_listen: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Truth(#[from] TruthError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

pub struct Simulator;

impl Simulator {
    /// Validate the scenario, bind the listener and serve in a background task.
    pub async fn start(scenario: Scenario, options: SimOptions) -> Result<RunningSim, SimError> {
        scenario.validate()?;
        let seed = options.seed.unwrap_or(scenario.seed);
        let clock_start = options.clock.unwrap_or(match scenario.clock.start {
            None => ClockStart::Real,
            Some(t) if scenario.clock.frozen => ClockStart::FrozenAt(t),
            Some(t) => ClockStart::RunningFrom(t),
        });
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared::new(
            &scenario,
            seed,
            SimClock::new(clock_start),
            shutdown_rx.clone(),
        ));
        let acceptor = TcpListener::bind(options.listen)
            .into_acceptor()
            .await
            .map_err(|source| SimError::Bind {
                addr: options.listen,
                source,
            })?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| SimError::Bind {
                addr: options.listen,
                source: std::io::Error::other("no local address"),
            })?;
        let (acceptor, wss): (BoxAcceptor, Option<(SocketAddr, SelfSigned)>) = match options
            .wss_listen
        {
            None => {
                let _ = shared.ws_base.set(format!("ws://{addr}"));
                (acceptor.boxed(), None)
            }
            Some(wss_addr) => {
                let cert = SelfSigned::generate(wss_addr.ip())?;
                let bind_err = |source| SimError::Bind {
                    addr: wss_addr,
                    source,
                };
                let listener = tokio::net::TcpListener::bind(wss_addr)
                    .await
                    .map_err(bind_err)?;
                let tls = TlsAcceptor::spawn(listener, cert.server_config()?, shutdown_rx.clone())
                    .map_err(bind_err)?;
                let tls_addr = tls
                    .local_addr()
                    .first()
                    .and_then(|a| a.as_socket_addr().copied())
                    .ok_or_else(|| bind_err(std::io::Error::other("no local address")))?;
                let _ = shared.ws_base.set(format!("wss://{tls_addr}"));
                let _ = shared.wss.set(());
                (acceptor.combine(tls).boxed(), Some((tls_addr, cert)))
            }
        };
        let app = SimApp {
            shared: shared.clone(),
        };
        let mut stop = shutdown_rx;
        let server = tokio::spawn(async move {
            let signal = async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            if let Err(e) = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(app, signal, Some(Duration::from_secs(2)))
                .await
            {
                tracing::error!(error = %e, "cf-sim server stopped with an error");
            }
        });
        Ok(RunningSim {
            shared,
            addr,
            wss,
            shutdown: shutdown_tx,
            server,
        })
    }
}

/// A running simulator. Dropping it stops the server like [`shutdown`](Self::shutdown), without waiting.
pub struct RunningSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    wss: Option<(SocketAddr, SelfSigned)>,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/client/v4`, the value to use instead of `https://api.cloudflare.com/client/v4`.
    pub fn base_url(&self) -> String {
        format!("http://{}/client/v4", self.addr)
    }

    /// `http://ADDR`, for `/__sim/...` routes.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The TLS listener's address, when started with [`SimOptions::wss_listen`].
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.wss.as_ref().map(|(addr, _)| *addr)
    }

    /// The self-signed certificate (DER) the TLS listener presents; a client adds it as a trust anchor.
    pub fn wss_certificate_der(&self) -> Option<Vec<u8>> {
        self.wss.as_ref().map(|(_, cert)| cert.cert_der.clone())
    }

    /// The same certificate in PEM.
    pub fn wss_certificate_pem(&self) -> Option<String> {
        self.wss.as_ref().map(|(_, cert)| cert.pem())
    }

    pub fn now(&self) -> OffsetDateTime {
        self.shared.now()
    }

    pub fn set_now(&self, now: OffsetDateTime) {
        self.shared.clock.set(now);
    }

    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// Arm a per-request fault or apply a state change (revocation, plan change, retention off).
    pub fn inject(&self, fault: Fault) {
        self.shared.inject(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Canonical NDJSON lines (each with its `\n`), sorted by bytes: what Cloudflare holds for the window.
    pub fn truth(&self, query: &TruthQuery) -> Result<Vec<String>, SimError> {
        let lines = truth_lines(&self.shared, query)?;
        Ok(lines
            .into_iter()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .collect())
    }

    /// The batches `zone`'s Logpush jobs have cut so far, in the order they were cut, with their delivery state.
    pub fn logpush_deliveries(&self, zone: &str) -> Vec<LogpushDelivery> {
        logpush::deliveries(&self.shared, zone)
    }

    /// The lines of `zone`'s dropped Logpush batches, of one job or of all (each with its `\n`, sorted by bytes): the
    /// job's truth for the seconds covered minus these is what its destination holds once nothing is pending.
    pub fn logpush_dropped_lines(&self, zone: &str, job_id: Option<u64>) -> Vec<String> {
        logpush::dropped_lines(&self.shared, zone, job_id)
            .into_iter()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .collect()
    }

    /// The lines of `zone`'s delivered Logpush batches, of one job or of all (each with its `\n`, sorted by bytes,
    /// each once however often its batch was sent): what the destination holds once nothing is pending.
    pub fn logpush_delivered_lines(&self, zone: &str, job_id: Option<u64>) -> Vec<String> {
        logpush::lines_of(
            &self.shared,
            zone,
            job_id,
            logpush::DeliveryStatus::Delivered,
        )
        .into_iter()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .collect()
    }

    /// Every upload attempt of `zone`'s Logpush jobs, oldest first: the events `logpushHealthAdaptiveGroups`
    /// aggregates.
    pub fn logpush_uploads(&self, zone: &str) -> Vec<LogpushUpload> {
        logpush::uploads(&self.shared, zone)
    }

    /// Every request answered so far (except `/__sim/` routes).
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Stop accepting connections, end WebSocket sessions and wait (at most ~2 s) for the server to finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
    }
}
