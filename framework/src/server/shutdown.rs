//! Shutdown on the signals a process manager sends.

use std::future::Future;

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
///
/// The signals are caught from the call on, not from the first poll: call it first thing in
/// `main`, before connecting, so that a SIGTERM that comes while the service starts (and already
/// answers) is a graceful stop rather than the default signal's instant death.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            listen(signal(SignalKind::interrupt()), "SIGINT"),
            listen(signal(SignalKind::terminate()), "SIGTERM"),
        )
    };
    #[cfg(not(unix))]
    let (interrupt, terminate) = (
        async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(%error, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        },
        std::future::pending::<()>(),
    );
    async move {
        tokio::select! {
            () = interrupt => tracing::info!("SIGINT received"),
            () = terminate => tracing::info!("SIGTERM received"),
        }
    }
}

/// Waits for a signal already registered; one that could not be never comes.
#[cfg(unix)]
async fn listen(registered: std::io::Result<tokio::signal::unix::Signal>, name: &'static str) {
    match registered {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(error) => {
            tracing::error!(%error, signal = name, "cannot listen for the signal");
            std::future::pending::<()>().await;
        }
    }
}
