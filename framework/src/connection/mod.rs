//! Connecting to NATS, and logging, the way a long-running service should.

/// Logs to stderr with the level from `RUST_LOG` (default `info`): what a service binary's `main`
/// calls first. Does nothing when a subscriber is already installed.
///
/// Panics are logged through it too, as one line with their text escaped (see [`crate::escape`]):
/// a handler's panic message may quote the request, and the default hook would print it raw.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init().is_ok() {
        std::panic::set_hook(Box::new(|info| {
            let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            let text = crate::server::panic_text(info.payload());
            tracing::error!(%location, panic = %crate::escape::escape(text, 1024), "panicked");
        }));
    }
    if cfg!(feature = "unvalidated-control") {
        tracing::warn!("built with natsrpc's unvalidated-control feature: requests are not validated");
    }
}

use std::time::Duration;

use crate::error::RpcError;

mod config;
pub(crate) mod denials;

pub use config::{DEFAULT_URL, NatsAuth, NatsConfig, NatsTls, VARIABLES, redact_url};
pub use denials::{Denial, DeniedAction, permission_denials};

/// Connects to `url` with connection events logged and unlimited reconnects: a service outlives a
/// NATS server restart, and its subscriptions are restored when the server is back. For servers
/// that want credentials or TLS, see [`NatsConfig`].
pub async fn connect(url: &str) -> Result<async_nats::Client, RpcError> {
    connect_with(url, async_nats::ConnectOptions::new()).await
}

/// [`connect`] with your own options (credentials, TLS, name); events are logged and reconnects are
/// unlimited whatever the options say.
pub async fn connect_with(
    url: &str,
    options: async_nats::ConnectOptions,
) -> Result<async_nats::Client, RpcError> {
    let refusal = Refusal { auth: "the options given", without_identity: false };
    connect_to(&[url], &redact_url(url), refusal, options).await
}

/// What a refused first connection's error can say about the settings used.
struct Refusal<'a> {
    /// The way of authenticating.
    auth: &'a str,
    /// TLS with no client certificate configured. A server that requires one sends TLS 1.3's
    /// `certificate_required` alert only after the handshake is done on the client's side, so the
    /// client may already have written and read a reset instead of the alert: timing decides.
    without_identity: bool,
}

/// The one way every connection is made: `shown` is `servers` as logs may show them, `refusal`
/// what an error names.
async fn connect_to(
    servers: &[&str],
    shown: &str,
    refusal: Refusal<'_>,
    options: async_nats::ConnectOptions,
) -> Result<async_nats::Client, RpcError> {
    let denials = std::sync::Arc::new(denials::Denials::default());
    let recording = std::sync::Arc::clone(&denials);
    let client = options
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let recording = std::sync::Arc::clone(&recording);
            async move { log_event(event, &recording) }
        })
        .connect(servers)
        .await
        .map_err(|error| {
            RpcError::transport_explained(
                format!("cannot connect to {shown}: {}", refusal.explain(&error)),
                error,
            )
        })?;
    denials::register(&client, denials);
    Ok(client)
}

fn log_event(event: async_nats::Event, denials: &denials::Denials) {
    use async_nats::{Event, ServerError};
    match event {
        Event::Connected => {
            denials.reconnected();
            tracing::info!("NATS connected")
        }
        Event::Disconnected => tracing::warn!("NATS disconnected; reconnecting"),
        Event::LameDuckMode => tracing::warn!("NATS server entering lame duck mode"),
        Event::SlowConsumer(sid) => tracing::warn!(sid, "slow consumer: messages dropped"),
        Event::ServerError(ServerError::Other(text)) => match denials.record(&text) {
            Some(denial) if denial.subject.ends_with(denials::PROBE) => {
                tracing::debug!(action = %denial.action, "the permission probe was refused, as expected")
            }
            // The subject may be a caller's reply inbox, chosen by whoever sent the request.
            Some(denial) => tracing::error!(action = %denial.action,
                subject = %crate::escape::escape(&denial.subject, 256), "NATS permission denied"),
            None => tracing::warn!(error = %crate::escape::escape(&text, 512), "NATS server error"),
        },
        other => tracing::info!(event = %other, "NATS event"),
    }
}

impl Refusal<'_> {
    /// Why a first connection failed, in words that point at the setting to check.
    fn explain(&self, error: &async_nats::ConnectError) -> String {
        use async_nats::ConnectErrorKind as Kind;
        let (text, auth) = (error.to_string().to_lowercase(), self.auth);
        let hung_up = ["reset", "eof", "broken pipe", "aborted"].iter().any(|w| text.contains(w));
        match error.kind() {
            Kind::AuthorizationViolation => {
                format!("the server refused the credentials ({auth}): authorization violation")
            }
            Kind::Authentication => format!("could not sign the server's challenge ({auth}): {error}"),
            Kind::Tls => tls_failed(error),
            // rustls's refusals of a certificate come back as I/O errors.
            Kind::Io if ["certificate", "tls", "handshake"].iter().any(|w| text.contains(w)) => {
                tls_failed(error)
            }
            Kind::Io if self.without_identity && hung_up => format!(
                "TLS failed: the server hung up once the handshake was done; it may require a client \
                 certificate, and NATS_CERT/NATS_KEY are not set: {error}"
            ),
            Kind::TimedOut => {
                format!("no answer within 5 s (a TLS-only server reached without TLS?): {error}")
            }
            _ => error.to_string(),
        }
    }
}

fn tls_failed(error: &async_nats::ConnectError) -> String {
    format!("TLS failed (check NATS_CA, NATS_CERT/NATS_KEY, tls:// and NATS_TLS_FIRST): {error}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::{ConnectError, ConnectErrorKind};

    #[test]
    fn a_reset_after_tls_names_the_missing_client_certificate_whichever_way_it_comes() {
        let reset = || {
            let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
            ConnectError::with_source(ConnectErrorKind::Io, io)
        };
        let refusal = Refusal { auth: "no credentials", without_identity: true };
        let error = refusal.explain(&reset());
        assert!(
            error.starts_with("TLS failed") && error.contains("NATS_CERT/NATS_KEY are not set"),
            "{error}"
        );
        // With a certificate configured, a reset is only a reset: no guess about its cause.
        let refusal = Refusal { without_identity: false, ..refusal };
        assert!(!refusal.explain(&reset()).contains("TLS"));
    }
}
