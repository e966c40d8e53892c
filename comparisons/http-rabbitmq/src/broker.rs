//! Where RabbitMQ is and how to prove who we are: the URL (user, password and virtual host live
//! in it, as AMQP defines), and TLS for `amqps://`: a CA of one's own, a client certificate.
//! Every connection of the gateway and the workers is made here, and the URL is only ever shown
//! with its password hidden.

use std::path::PathBuf;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::{Connection, ConnectionProperties};

use crate::AmqpError;

/// The default broker address: the local RabbitMQ's `guest` user and default virtual host.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How to reach the broker.
///
/// ```
/// let broker = http_rabbitmq::Broker::from_lookup(|name| match name {
///     "AMQP_URL" => Some("amqps://shop:s3cret@rabbit:5671/orders".into()),
///     "AMQP_CA" => Some("/etc/rabbitmq/ca.pem".into()),
///     _ => None,
/// })
/// .unwrap();
/// assert_eq!(broker.to_string(), "amqps://shop:***@rabbit:5671/orders");
/// assert!(!format!("{broker:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct Broker {
    url: String,
    /// `AMQP_CA`: a PEM file of the CA that signed the broker's certificate, trusted on top of the
    /// system's.
    ca: Option<PathBuf>,
    /// `AMQP_CERT` and `AMQP_KEY`: a PEM client certificate and its PKCS#8 key, for brokers that
    /// verify their peers (`ssl_options.verify = verify_peer`).
    client: Option<(PathBuf, PathBuf)>,
}

impl Broker {
    /// The broker at `url`, with the system's CAs for `amqps://`.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), ca: None, client: None }
    }

    /// Reads `AMQP_URL` (default [`DEFAULT_AMQP_URL`]), `AMQP_CA`, `AMQP_CERT` + `AMQP_KEY`.
    pub fn from_env() -> Result<Self, AmqpError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Broker::from_env`] over any source of variables; empty counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AmqpError> {
        let var = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let url = var("AMQP_URL").unwrap_or_else(|| DEFAULT_AMQP_URL.to_string());
        if !url.starts_with("amqp://") && !url.starts_with("amqps://") {
            return Err(AmqpError::Config(format!(
                "AMQP_URL={} is neither amqp:// nor amqps://",
                natsrpc::redact_url(&url)
            )));
        }
        let client = match (var("AMQP_CERT"), var("AMQP_KEY")) {
            (Some(cert), Some(key)) => Some((cert.into(), key.into())),
            (None, None) => None,
            (Some(_), None) => return Err(AmqpError::Config("AMQP_CERT is set without AMQP_KEY".into())),
            (None, Some(_)) => return Err(AmqpError::Config("AMQP_KEY is set without AMQP_CERT".into())),
        };
        Ok(Self { url, ca: var("AMQP_CA").map(PathBuf::from), client })
    }

    /// The same broker, trusting `ca` (a PEM file) for its certificate.
    pub fn with_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.ca = Some(ca.into());
        self
    }

    /// Connects, naming the connection (as the management UI lists it). A refusal says which
    /// broker (password hidden) and why.
    pub async fn connect(&self, name: &str) -> Result<Connection, AmqpError> {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let runtime = lapin::runtime::default_runtime()?;
        let connected = Connection::connect_with_config(&self.url, properties, self.tls()?, runtime).await;
        let plain = self.url.starts_with("amqp://");
        let without_identity = !plain && self.client.is_none();
        connected.map_err(|error| AmqpError::Connect {
            broker: self.to_string(),
            reason: refusal(&error, plain, without_identity),
        })
    }

    /// The TLS settings for `amqps://`, from the files named (read at each connection, so that a
    /// renewed certificate is picked up by the next one).
    fn tls(&self) -> Result<OwnedTLSConfig, AmqpError> {
        let read = |variable: &str, path: &PathBuf| {
            std::fs::read(path)
                .map_err(|e| AmqpError::Config(format!("{variable}: cannot read {}: {e}", path.display())))
        };
        let cert_chain = match &self.ca {
            Some(ca) => Some(
                String::from_utf8(read("AMQP_CA", ca)?)
                    .map_err(|_| AmqpError::Config(format!("AMQP_CA: {} is not PEM text", ca.display())))?,
            ),
            None => None,
        };
        let identity = match &self.client {
            Some((cert, key)) => {
                Some(OwnedIdentity::PKCS8 { pem: read("AMQP_CERT", cert)?, key: read("AMQP_KEY", key)? })
            }
            None => None,
        };
        Ok(OwnedTLSConfig { identity, cert_chain })
    }
}

/// Why a connection failed, in words that point at the setting to check.
///
/// `without_identity`: TLS with no client certificate configured. A broker that requires one
/// sends TLS 1.3's `certificate_required` alert only after the handshake has completed on the
/// client's side, so the client has already written AMQP's greeting: whether it then reads the
/// alert or a reset depends on timing, and both have to name the cause.
fn refusal(error: &lapin::Error, plain: bool, without_identity: bool) -> String {
    let text = error.to_string();
    let lower = text.to_lowercase();
    if lower.contains("access_refused") || lower.contains("access-refused") {
        format!("the broker refused the user and password of AMQP_URL ({text})")
    } else if lower.contains("not_allowed") || lower.contains("vhost") {
        format!("the user may not open the virtual host of AMQP_URL ({text})")
    } else if ["certificate", "tls", "handshake", "unknownissuer"].iter().any(|w| lower.contains(w)) {
        format!("TLS failed (check amqps://, AMQP_CA and AMQP_CERT/AMQP_KEY): {text}")
    } else if without_identity && hung_up(error) {
        format!(
            "TLS failed: the broker hung up once the handshake was done; it may require a client \
             certificate, and AMQP_CERT/AMQP_KEY are not set: {text}"
        )
    } else if plain && (hung_up(error) || matches!(error.kind(), lapin::ErrorKind::ParsingError(_))) {
        // A TLS listener reads AMQP's greeting as a bad handshake: it answers with bytes that are
        // not AMQP, or resets the connection, whichever comes first.
        format!("the broker's end is not AMQP (a TLS-only listener reached with amqp://?): {text}")
    } else {
        text
    }
}

/// Whether the other end closed or reset the connection before AMQP got going.
fn hung_up(error: &lapin::Error) -> bool {
    use std::io::ErrorKind as Io;
    match error.kind() {
        lapin::ErrorKind::IOError(io) => {
            matches!(
                io.kind(),
                Io::ConnectionReset | Io::UnexpectedEof | Io::BrokenPipe | Io::ConnectionAborted
            )
        }
        _ => false,
    }
}

/// The URL with its password hidden: what logs and errors show.
impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&natsrpc::redact_url(&self.url))
    }
}

/// The password stays out of `{:?}` too.
impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("url", &natsrpc::redact_url(&self.url))
            .field("ca", &self.ca)
            .field("client", &self.client)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn settings_from_the_environment_and_their_mistakes() {
        let broker = Broker::from_lookup(lookup(&[])).unwrap();
        assert_eq!(broker.to_string(), "amqp://guest:***@127.0.0.1:5672/%2f");
        let broker = Broker::from_lookup(lookup(&[
            ("AMQP_CERT", "/c.pem"),
            ("AMQP_KEY", "/k.pem"),
            ("AMQP_CA", "/ca"),
        ]))
        .unwrap();
        assert!(broker.client.is_some() && broker.ca.is_some());
        for (vars, says) in [
            (&[("AMQP_CERT", "c")][..], "AMQP_CERT is set without AMQP_KEY"),
            (&[("AMQP_URL", "http://u:hunter2@h")][..], "neither amqp:// nor amqps://"),
        ] {
            let vars: &'static [(&'static str, &'static str)] = Box::leak(vars.to_vec().into_boxed_slice());
            let error = Broker::from_lookup(lookup(vars)).unwrap_err().to_string();
            assert!(error.contains(says) && !error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn unreadable_tls_files_are_named() {
        let broker = Broker::new("amqps://h").with_ca("/nonexistent/ca.pem");
        let error = broker.tls().unwrap_err().to_string();
        assert!(error.contains("AMQP_CA: cannot read /nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn a_reset_after_tls_names_the_missing_client_certificate_whichever_way_it_comes() {
        use std::sync::Arc;
        let reset = || {
            let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
            lapin::Error::from(lapin::ErrorKind::IOError(Arc::new(io)))
        };
        let error = refusal(&reset(), false, true);
        assert!(
            error.starts_with("TLS failed") && error.contains("AMQP_CERT/AMQP_KEY are not set"),
            "{error}"
        );
        let error = refusal(&reset(), true, false);
        assert!(error.contains("a TLS-only listener reached with amqp://?"), "{error}");
        // With a certificate configured, a reset is only a reset: no guess about its cause.
        assert!(!refusal(&reset(), false, false).contains("TLS"));
    }
}
