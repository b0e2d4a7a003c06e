//! The HTTP/1.1 listener of a public port (the API, the Logpush ingest endpoint), with the limits
//! it needs against slow and heavy clients. poem's own server exposes none of hyper's timeouts,
//! so connections are served here with hyper directly and handed to the poem application:
//!
//! - at most [`ConnectionLimits::max_connections`] at once; one more is closed at accept;
//! - the request head must arrive within `header_timeout` (slow headers), which also closes a
//!   keep-alive connection that sends nothing;
//! - the body must arrive within `body_timeout`, which the application enforces as it reads
//!   (the API reads small JSON bodies whole; the ingest endpoint streams large ones).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, IntoResponse as _};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Limits of the public listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish for `grace`.
pub async fn serve<E>(
    listener: TcpListener,
    app: E,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()>
where
    E: Endpoint + 'static,
{
    let app = Arc::new(app);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let local = listener.local_addr()?;
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(
                %peer,
                max = limits.max_connections,
                "connection refused: the listener's connection limit is reached"
            );
            drop(stream);
            continue;
        };
        let app = Arc::clone(&app);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            serve_connection(stream, local, peer, app, limits, shutdown, grace).await;
            drop(permit);
        });
    }
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown timeout were dropped");
    }
    Ok(())
}

async fn serve_connection<E: Endpoint + 'static>(
    stream: tokio::net::TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    app: Arc<E>,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let app = Arc::clone(&app);
        async move {
            let req: poem::Request = (
                req,
                LocalAddr(local.into()),
                RemoteAddr(peer.into()),
                Scheme::HTTP,
            )
                .into();
            let response = match app.call(req).await {
                Ok(output) => output.into_response(),
                Err(error) => error.into_response(),
            };
            Ok::<hyper::Response<BoxBody<bytes::Bytes, std::io::Error>>, Infallible>(
                response.into(),
            )
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        }
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(grace, connection).await;
        }
    }
}
