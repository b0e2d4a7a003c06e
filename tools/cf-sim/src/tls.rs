//! The optional TLS listener that serves `wss://` Instant Logs sockets.
//!
//! Cloudflare hands out `wss://` destinations and answers plain `ws`/`https` with 301. Serving that needs a
//! certificate: a self-signed one for `localhost`, `127.0.0.1`, `::1` and the listen address is generated at
//! start (rcgen). Clients must trust it explicitly: see `RunningSim::wss_certificate_der`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot generate the simulator's certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot build the TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A self-signed certificate and its key.
pub(crate) struct SelfSigned {
    pub cert_der: Vec<u8>,
    key_pkcs8: Vec<u8>,
    pem: String,
}

impl SelfSigned {
    pub fn generate(listen_ip: IpAddr) -> Result<Self, TlsError> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let listen = listen_ip.to_string();
        if !listen_ip.is_unspecified() && !names.contains(&listen) {
            names.push(listen);
        }
        // Names that parse as IP addresses become IP subject alternative names.
        let certified = rcgen::generate_simple_self_signed(names)?;
        Ok(Self {
            cert_der: certified.cert.der().to_vec(),
            key_pkcs8: certified.key_pair.serialize_der(),
            pem: certified.cert.pem(),
        })
    }

    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        // The workspace enables more than one rustls crypto provider, so name the one to use.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone())),
            )?;
        // Only HTTP/1.1: a WebSocket upgrade needs it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    pub fn pem(&self) -> String {
        self.pem.clone()
    }
}

/// A poem acceptor fed by a task that accepts TCP connections and completes TLS handshakes off the accept path,
/// so a slow or broken handshake never holds up other connections.
pub(crate) struct TlsAcceptor {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsAcceptor {
    pub fn spawn(
        listener: TcpListener,
        config: rustls::ServerConfig,
        mut stop: watch::Receiver<bool>,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        tokio::spawn(async move {
            loop {
                let (tcp, remote) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            tracing::warn!(error = %e, "cf-sim TLS accept failed");
                            continue;
                        }
                    },
                    _ = stop.wait_for(|stopped| *stopped) => return,
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                    {
                        let _ = tx.send((tls, remote)).await;
                    }
                });
            }
        });
        Ok(Self { local, ready })
    }
}

impl Acceptor for TlsAcceptor {
    type Io = TlsStream<TcpStream>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        vec![LocalAddr(self.local.into())]
    }

    async fn accept(&mut self) -> std::io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        match self.ready.recv().await {
            Some((io, remote)) => Ok((
                io,
                LocalAddr(self.local.into()),
                RemoteAddr(remote.into()),
                Scheme::HTTPS,
            )),
            // The accept task has stopped (simulator shutting down): there will be no more connections, and an
            // error here would only make the server retry in a loop until its graceful shutdown ends it.
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_builds_into_a_server_config() {
        let cert =
            SelfSigned::generate(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)).expect("generate");
        assert_eq!(cert.cert_der[0], 0x30);
        cert.server_config()
            .expect("rustls accepts the certificate and key");
        assert!(cert.pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
