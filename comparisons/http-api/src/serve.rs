//! Serving the HTTP surface, plain or over TLS, until a shutdown signal, then letting the requests
//! in flight finish. Plain HTTP is axum's own server; HTTPS is the same router behind rustls
//! ([`ServerTls`]), so that the secured stacks differ from the plain ones only by TLS.

use std::future::Future;
use std::time::Duration;

use crate::tls::{ServeError, ServerTls};

/// How long a client may take over its TLS handshake before its connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the requests in flight at shutdown may take to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` (over TLS when `tls` says so) until `shutdown` resolves, then lets
/// the requests in flight finish (up to 10 s over TLS; axum's own wait for plain HTTP).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<&ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let Some(tls) = tls else {
        axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
        return Ok(());
    };
    let acceptor = tls.acceptor()?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: a pause rather than a busy loop.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, app, watcher) = (acceptor.clone(), app.clone(), graceful.watcher());
        tokio::spawn(async move {
            // A client that never finishes its handshake holds nothing for long.
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, "HTTPS connection ended with an error");
            }
        });
    }
    // No new connections while the open ones finish.
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("HTTPS connections still open after {DRAIN:?}: the process ends with them");
    }
    Ok(())
}
