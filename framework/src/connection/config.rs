//! How to reach NATS and prove who you are: the servers, one way of authenticating, and TLS. Every
//! binary of the project reads it from the same environment variables ([`NatsConfig::from_env`]);
//! a library user builds it as a struct.

use std::path::PathBuf;

use crate::error::RpcError;

/// The server a binary uses when `NATS_URL` is not set.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// The variables [`NatsConfig::from_env`] reads.
pub const VARIABLES: [&str; 11] = [
    "NATS_URL",
    "NATS_USER",
    "NATS_PASSWORD",
    "NATS_TOKEN",
    "NATS_NKEY",
    "NATS_CREDS",
    "NATS_CA",
    "NATS_CERT",
    "NATS_KEY",
    "NATS_TLS_FIRST",
    "NATS_INBOX_PREFIX",
];

/// Where and how to connect to NATS.
///
/// ```
/// use natsrpc::{NatsAuth, NatsConfig};
///
/// let config = NatsConfig::from_lookup(|name| match name {
///     "NATS_URL" => Some("tls://nats-1:4222,tls://nats-2:4222".into()),
///     "NATS_CREDS" => Some("/run/secrets/orders.creds".into()),
///     "NATS_CA" => Some("/etc/nats/ca.pem".into()),
///     _ => None,
/// })
/// .unwrap()
/// .with_name("ecommerce");
/// assert_eq!(config.servers.len(), 2);
/// assert!(matches!(config.auth, NatsAuth::Creds(_)));
///
/// // Two ways of authenticating at once is a mistake, named before anything connects.
/// let both = NatsConfig::from_lookup(|name| match name {
///     "NATS_TOKEN" => Some("s3cret".into()),
///     "NATS_USER" => Some("orders".into()),
///     "NATS_PASSWORD" => Some("pw".into()),
///     _ => None,
/// });
/// assert!(both.unwrap_err().to_string().contains("NATS_TOKEN and NATS_USER"));
/// ```
#[derive(Clone, Default)]
pub struct NatsConfig {
    /// The servers to try (`nats://host:port`, `tls://host:port`); empty means [`DEFAULT_URL`].
    pub servers: Vec<String>,
    /// The connection's name, as the server lists it (`nats server report connections`).
    pub name: Option<String>,
    /// How the connection authenticates.
    pub auth: NatsAuth,
    /// TLS: the CA to trust, a client certificate, handshake first.
    pub tls: NatsTls,
    /// `NATS_INBOX_PREFIX`: where replies to this connection's requests arrive, instead of
    /// `_INBOX`. With a prefix of its own per user, a server's permissions can let each one
    /// subscribe to its own replies only (`_INBOX_orders.>`), not to everyone's.
    pub inbox_prefix: Option<String>,
}

/// One way of authenticating to NATS.
#[derive(Clone, Default)]
pub enum NatsAuth {
    /// None (or credentials written in the server URL).
    #[default]
    None,
    /// `NATS_USER` and `NATS_PASSWORD`.
    UserPassword {
        /// The user.
        user: String,
        /// Its password.
        password: String,
    },
    /// `NATS_TOKEN`.
    Token(String),
    /// `NATS_NKEY`: the path of a file holding a user's NKey seed (`SU...`).
    NKeySeedFile(PathBuf),
    /// `NATS_CREDS`: the path of a `.creds` file (a user JWT and its seed), for decentralised auth.
    Creds(PathBuf),
}

/// TLS settings; a `tls://` server, a CA or a client certificate each turn TLS on.
#[derive(Clone, Debug, Default)]
pub struct NatsTls {
    /// `NATS_CA`: a PEM file of the CA (or CAs) that signed the server's certificate, trusted on top
    /// of the system's.
    pub ca: Option<PathBuf>,
    /// `NATS_CERT` and `NATS_KEY`: a PEM client certificate and its key, for mutual TLS.
    pub client: Option<(PathBuf, PathBuf)>,
    /// `NATS_TLS_FIRST`: the TLS handshake before the server's INFO, for servers configured with
    /// `handshake_first`.
    pub first: bool,
}

impl NatsConfig {
    /// Reads the process's environment: `NATS_URL` (comma-separated servers), `NATS_USER` +
    /// `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_NKEY`, `NATS_CREDS` (at most one of these four ways),
    /// `NATS_CA`, `NATS_CERT` + `NATS_KEY`, `NATS_TLS_FIRST` (`true`/`1`/`yes`), `NATS_INBOX_PREFIX`.
    /// Empty counts as unset.
    pub fn from_env() -> Result<Self, RpcError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`NatsConfig::from_env`] over any source of variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, RpcError> {
        let var = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let servers = var("NATS_URL")
            .map(|urls| urls.split(',').map(str::trim).filter(|u| !u.is_empty()).map(String::from).collect())
            .unwrap_or_default();
        let mut ways: Vec<(&str, NatsAuth)> = Vec::new();
        match (var("NATS_USER"), var("NATS_PASSWORD")) {
            (Some(user), Some(password)) => {
                ways.push(("NATS_USER", NatsAuth::UserPassword { user, password }))
            }
            (Some(_), None) => return Err(config_error("NATS_USER is set without NATS_PASSWORD")),
            (None, Some(_)) => return Err(config_error("NATS_PASSWORD is set without NATS_USER")),
            (None, None) => {}
        }
        if let Some(token) = var("NATS_TOKEN") {
            ways.push(("NATS_TOKEN", NatsAuth::Token(token)));
        }
        if let Some(seed) = var("NATS_NKEY") {
            ways.push(("NATS_NKEY", NatsAuth::NKeySeedFile(seed.into())));
        }
        if let Some(creds) = var("NATS_CREDS") {
            ways.push(("NATS_CREDS", NatsAuth::Creds(creds.into())));
        }
        // The variables are checked in a fixed order, so the message names them the same way each time.
        ways.sort_by_key(|(name, _)| {
            ["NATS_TOKEN", "NATS_USER", "NATS_NKEY", "NATS_CREDS"].iter().position(|n| n == name)
        });
        let auth = match ways.len() {
            0 => NatsAuth::None,
            1 => ways.remove(0).1,
            _ => {
                let names: Vec<&str> = ways.iter().map(|(name, _)| *name).collect();
                return Err(config_error(&format!(
                    "{} are set: choose one way of authenticating",
                    names.join(" and ")
                )));
            }
        };
        let client = match (var("NATS_CERT"), var("NATS_KEY")) {
            (Some(cert), Some(key)) => Some((cert.into(), key.into())),
            (None, None) => None,
            (Some(_), None) => return Err(config_error("NATS_CERT is set without NATS_KEY")),
            (None, Some(_)) => return Err(config_error("NATS_KEY is set without NATS_CERT")),
        };
        let first = match var("NATS_TLS_FIRST").map(|v| v.to_ascii_lowercase()) {
            None => false,
            Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => true,
            Some(v) if ["false", "0", "no", "off"].contains(&v.as_str()) => false,
            Some(_) => return Err(config_error("NATS_TLS_FIRST: not true or false")),
        };
        let tls = NatsTls { ca: var("NATS_CA").map(PathBuf::from), client, first };
        let inbox_prefix = var("NATS_INBOX_PREFIX");
        if let Some(prefix) = &inbox_prefix {
            let token =
                |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_graphic() && !"*>".contains(c));
            if !prefix.split('.').all(token) {
                return Err(config_error("NATS_INBOX_PREFIX: not a subject without wildcards"));
            }
        }
        Ok(Self { servers, name: None, auth, tls, inbox_prefix })
    }

    /// The same, with the connection named `name` (a service's name, so that the server's
    /// connection reports say which service each connection is).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The servers, with any password in them hidden: what logs and errors show.
    pub fn servers_redacted(&self) -> String {
        if self.servers.is_empty() {
            return DEFAULT_URL.to_string();
        }
        self.servers.iter().map(|s| redact_url(s)).collect::<Vec<_>>().join(",")
    }

    /// async-nats options for this configuration (reading the seed or creds file it names).
    pub async fn options(&self) -> Result<async_nats::ConnectOptions, RpcError> {
        let mut options = async_nats::ConnectOptions::new();
        if let Some(name) = &self.name {
            options = options.name(name);
        }
        options = match &self.auth {
            NatsAuth::None => options,
            NatsAuth::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.clone())
            }
            NatsAuth::Token(token) => options.token(token.clone()),
            NatsAuth::NKeySeedFile(path) => {
                let seed = std::fs::read_to_string(path).map_err(|e| file_error("NATS_NKEY", path, e))?;
                let seed = seed.trim().to_string();
                // Checked here, so that a wrong file is named before the server is asked.
                nkeys::KeyPair::from_seed(&seed).map_err(|_| {
                    config_error(&format!("NATS_NKEY: {} does not hold an NKey seed", path.display()))
                })?;
                options.nkey(seed)
            }
            NatsAuth::Creds(path) => {
                options.credentials_file(path).await.map_err(|e| file_error("NATS_CREDS", path, e))?
            }
        };
        if let Some(ca) = &self.tls.ca {
            readable("NATS_CA", ca)?;
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &self.tls.client {
            readable("NATS_CERT", cert)?;
            readable("NATS_KEY", key)?;
            options = options.add_client_certificate(cert.clone(), key.clone()).require_tls(true);
        }
        if self.tls.first {
            options = options.tls_first();
        }
        if let Some(prefix) = &self.inbox_prefix {
            options = options.custom_inbox_prefix(prefix);
        }
        Ok(options)
    }

    /// Connects (see [`crate::connect_with`]: events logged, reconnects without end once connected);
    /// a first connection that fails says why, naming the way of authenticating in use.
    pub async fn connect(&self) -> Result<async_nats::Client, RpcError> {
        self.connect_using(self.options().await?).await
    }

    /// [`NatsConfig::connect`] with `options` of your own, made from [`NatsConfig::options`] and
    /// changed (a request timeout, say), to every server of the configuration.
    pub async fn connect_using(
        &self,
        options: async_nats::ConnectOptions,
    ) -> Result<async_nats::Client, RpcError> {
        let servers: Vec<&str> = if self.servers.is_empty() {
            vec![DEFAULT_URL]
        } else {
            self.servers.iter().map(String::as_str).collect()
        };
        let tls = self.tls.ca.is_some() || self.tls.first || servers.iter().any(|s| s.starts_with("tls://"));
        let without_identity = tls && self.tls.client.is_none();
        let refusal = super::Refusal { auth: self.auth.described(), without_identity };
        super::connect_to(&servers, &self.servers_redacted(), refusal, options).await
    }
}

impl NatsAuth {
    /// Which variables this way of authenticating came from, for error messages.
    fn described(&self) -> &'static str {
        match self {
            NatsAuth::None => "no credentials",
            NatsAuth::UserPassword { .. } => "NATS_USER/NATS_PASSWORD",
            NatsAuth::Token(_) => "NATS_TOKEN",
            NatsAuth::NKeySeedFile(_) => "NATS_NKEY",
            NatsAuth::Creds(_) => "NATS_CREDS",
        }
    }
}

/// Secrets stay out of `{:?}`: a configuration is logged and printed in errors.
impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("servers", &self.servers_redacted())
            .field("name", &self.name)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("inbox_prefix", &self.inbox_prefix)
            .finish()
    }
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword { user, .. } => {
                f.debug_struct("UserPassword").field("user", user).field("password", &"***").finish()
            }
            NatsAuth::Token(_) => f.write_str("Token(***)"),
            NatsAuth::NKeySeedFile(path) => f.debug_tuple("NKeySeedFile").field(path).finish(),
            NatsAuth::Creds(path) => f.debug_tuple("Creds").field(path).finish(),
        }
    }
}

/// `url` with the password (or token) of its user part replaced by `***`. A URL that does not
/// parse (a password with an unescaped `/`, `?` or `#`, say) loses everything before its last `@`:
/// hiding too much is the safe way to be wrong.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        // `token@`: the user part is all secret.
        Ok(mut parsed) if !parsed.username().is_empty() => {
            let _ = parsed.set_username("***");
            parsed.to_string()
        }
        Ok(_) if !rest.contains('@') => url.to_string(),
        _ => match rest.rfind('@') {
            Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
            None => url.to_string(),
        },
    }
}

fn config_error(what: &str) -> RpcError {
    RpcError::config(format!("NATS connection: {what}"))
}

fn readable(variable: &str, path: &std::path::Path) -> Result<(), RpcError> {
    std::fs::metadata(path).map(|_| ()).map_err(|e| file_error(variable, path, e))
}

fn file_error(variable: &str, path: &std::path::Path, error: std::io::Error) -> RpcError {
    let what = format!("NATS connection: {variable}: cannot read {}: {error}", path.display());
    RpcError::config_explained(what, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn each_way_in_from_the_environment() {
        let config =
            NatsConfig::from_lookup(lookup(&[("NATS_USER", "orders"), ("NATS_PASSWORD", "pw")])).unwrap();
        assert!(
            matches!(&config.auth, NatsAuth::UserPassword { user, password } if user == "orders" && password == "pw")
        );
        let config = NatsConfig::from_lookup(lookup(&[("NATS_TOKEN", "t"), ("NATS_URL", "")])).unwrap();
        assert!(matches!(config.auth, NatsAuth::Token(_)));
        assert!(config.servers.is_empty(), "empty counts as unset");
        let config = NatsConfig::from_lookup(lookup(&[
            ("NATS_NKEY", "/seed"),
            ("NATS_CA", "/ca.pem"),
            ("NATS_CERT", "/c.pem"),
            ("NATS_KEY", "/k.pem"),
            ("NATS_TLS_FIRST", "yes"),
            ("NATS_INBOX_PREFIX", "_INBOX_orders"),
        ]))
        .unwrap();
        assert_eq!(config.inbox_prefix.as_deref(), Some("_INBOX_orders"));
        assert!(matches!(config.auth, NatsAuth::NKeySeedFile(_)));
        assert!(config.tls.ca.is_some() && config.tls.client.is_some() && config.tls.first);
    }

    #[test]
    fn half_set_and_conflicting_variables_are_refused_by_name() {
        for (vars, says) in [
            (&[("NATS_USER", "u")][..], "NATS_USER is set without NATS_PASSWORD"),
            (&[("NATS_PASSWORD", "p")][..], "NATS_PASSWORD is set without NATS_USER"),
            (&[("NATS_CERT", "c")][..], "NATS_CERT is set without NATS_KEY"),
            (&[("NATS_NKEY", "s"), ("NATS_CREDS", "c")][..], "NATS_NKEY and NATS_CREDS are set"),
            (&[("NATS_TLS_FIRST", "maybe")][..], "NATS_TLS_FIRST"),
            (&[("NATS_INBOX_PREFIX", "_INBOX.>")][..], "NATS_INBOX_PREFIX"),
            (&[("NATS_INBOX_PREFIX", "a..b")][..], "NATS_INBOX_PREFIX"),
        ] {
            let vars: &'static [(&'static str, &'static str)] = Box::leak(vars.to_vec().into_boxed_slice());
            let error = NatsConfig::from_lookup(lookup(vars)).unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_and_urls() {
        let config = NatsConfig::from_lookup(lookup(&[
            ("NATS_URL", "nats://orders:hunter2@a:4222, tls://b:4222"),
            ("NATS_TOKEN", "tok3n"),
        ]))
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("tok3n"), "{shown}");
        assert_eq!(config.servers_redacted(), "nats://orders:***@a:4222,tls://b:4222");
        assert_eq!(redact_url("nats://t0ken@host:4222/x@y"), "nats://***@host:4222/x@y");
        assert_eq!(redact_url("nats://host:4222"), "nats://host:4222");
        assert_eq!(
            redact_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact_url("rediss://:pw@127.0.0.1:6433"), "rediss://:***@127.0.0.1:6433");
        for unparsable in
            ["amqp://shop:pa/ss@rabbit/orders", "amqp://shop:pa?ss@rabbit", "redis://:p#w@host:6379"]
        {
            let shown = redact_url(unparsable);
            assert!(
                !shown.contains("pa") && !shown.contains("p#w") && shown.starts_with("amqp://***@")
                    || shown == "redis://***@host:6379",
                "{unparsable} -> {shown}"
            );
        }
        let password = NatsAuth::UserPassword { user: "u".into(), password: "hunter2".into() };
        assert!(!format!("{password:?}").contains("hunter2"));
    }
}
