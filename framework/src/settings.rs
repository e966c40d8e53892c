//! A service's own settings from its environment, with errors that name the variable: the way
//! [`NatsConfig::from_env`](crate::NatsConfig::from_env) reads the connection's. And the command
//! line of a binary its environment configures ([`command_line`]): `--help` and `--version`, and
//! nothing it would ignore.
//!
//! ```
//! let skus: u32 = natsrpc::settings::env_or("SHOP_SKUS_NOT_SET_HERE", 1000, "a whole number")?;
//! assert_eq!(skus, 1000);
//! # Ok::<(), natsrpc::settings::SettingError>(())
//! ```

use std::str::FromStr;

/// A variable set to a value its setting cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?} is not {expected}")]
pub struct SettingError {
    /// The variable.
    pub name: String,
    /// Its value, escaped and cut (an environment is nobody's input, but its values reach logs).
    pub value: String,
    /// What it should have been, such as `a whole number`.
    pub expected: &'static str,
}

/// The variable `name` parsed as a `T` (white space around it ignored), `default` when it is
/// unset; when it does not parse, the error says it should have been `expected` (`"a whole
/// number"`, `"on or off"`).
pub fn env_or<T: FromStr>(name: &str, default: T, expected: &'static str) -> Result<T, SettingError> {
    match std::env::var(name) {
        Ok(value) => parse(name, &value, expected),
        Err(_) => Ok(default),
    }
}

fn parse<T: FromStr>(name: &str, value: &str, expected: &'static str) -> Result<T, SettingError> {
    value.trim().parse().map_err(|_| SettingError {
        name: name.to_string(),
        value: crate::escape::escape(value, 64).into_owned(),
        expected,
    })
}

/// The NATS connection's variables, as [`NatsConfig::from_env`](crate::NatsConfig::from_env) reads
/// them, for a binary's `--help`.
pub const NATS_HELP: &str = "\
  NATS_URL            the servers, comma-separated (default nats://127.0.0.1:4222)
  NATS_USER, NATS_PASSWORD | NATS_TOKEN | NATS_NKEY (a seed file) | NATS_CREDS (a file)
                      how to log in: at most one of the four
  NATS_CA             a PEM CA to trust for tls:// servers; NATS_CERT + NATS_KEY for mutual TLS
  NATS_TLS_FIRST      true: TLS before the server's INFO (handshake_first servers)
  NATS_INBOX_PREFIX   the replies' subject prefix (default _INBOX)
";

/// The variables of metrics ([`crate::metrics::serve_from_env`]) and traces
/// ([`crate::trace::export_from_env`]), for a binary's `--help`.
pub const TELEMETRY_HELP: &str = "\
  METRICS_ADDR        serve Prometheus metrics at http://METRICS_ADDR/metrics (default: none)
  OTEL_EXPORTER_OTLP_ENDPOINT  export request spans to this OTLP/HTTP collector, such as
                      http://127.0.0.1:4318 (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, the full URL)
";

/// What a binary's command line asks ([`command_line`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// To run, with the word of `words` given (`None` when none was).
    Run(Option<&'static str>),
    /// To print this on standard output and exit 0 (`--help`, `--version`).
    Print(String),
    /// To be refused: this on standard error, and exit 2 (the usage error's status, as clap's).
    Refuse(String),
}

/// The command line of a binary its environment configures: `-h`/`--help` prints `help`,
/// `-V`/`--version` prints `version`, and each exits 0; one of `words` (a subcommand, such as
/// `gateway`) may be given; anything else is refused with exit 2, because an option the binary
/// ignored would leave its user believing it took effect (and `--help` would start a service).
/// Answers the word given.
///
/// ```no_run
/// const HELP: &str = "orders: the orders service on NATS\n\nUsage: orders\n";
/// natsrpc::settings::command_line(HELP, concat!("orders ", env!("CARGO_PKG_VERSION")), &[]);
/// ```
pub fn command_line(help: &str, version: &str, words: &[&'static str]) -> Option<&'static str> {
    match asked(std::env::args().skip(1), help, version, words) {
        Asked::Run(word) => word,
        Asked::Print(text) => {
            print!("{text}");
            std::process::exit(0)
        }
        Asked::Refuse(text) => {
            eprintln!("{text}");
            std::process::exit(2)
        }
    }
}

/// What `args` (the arguments after the program's name) ask, as [`command_line`] reads them.
pub fn asked(
    args: impl IntoIterator<Item = String>,
    help: &str,
    version: &str,
    words: &[&'static str],
) -> Asked {
    let mut word = None;
    for arg in args {
        match arg.as_str() {
            "-h" | "--help" => return Asked::Print(help.to_string()),
            "-V" | "--version" => return Asked::Print(format!("{version}\n")),
            _ => match words.iter().find(|w| **w == arg) {
                Some(w) if word.is_none() => word = Some(*w),
                _ => {
                    return Asked::Refuse(format!(
                        "error: unexpected argument {:?}: this program is configured by its environment (see --help)",
                        crate::escape::escape(&arg, 64)
                    ));
                }
            },
        }
    }
    Asked::Run(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_and_version_are_printed_and_anything_else_is_refused() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ask = |list: &[&str]| asked(args(list), "HELP\n", "x 1.0", &["gateway", "worker"]);
        assert_eq!(ask(&[]), Asked::Run(None));
        assert_eq!(ask(&["worker"]), Asked::Run(Some("worker")));
        assert_eq!(ask(&["worker", "--help"]), Asked::Print("HELP\n".into()));
        assert_eq!(ask(&["-V"]), Asked::Print("x 1.0\n".into()));
        let Asked::Refuse(said) = ask(&["--port", "80"]) else { panic!() };
        assert!(said.contains("unexpected argument \"--port\""), "{said}");
        assert!(matches!(ask(&["worker", "gateway"]), Asked::Refuse(_)), "one word at most");
        let Asked::Refuse(said) = ask(&["\u{1b}[31mred"]) else { panic!() };
        assert!(!said.contains('\u{1b}'), "escaped: {said}");
    }

    #[test]
    fn a_bad_value_is_refused_by_name_and_an_unset_one_is_the_default() {
        assert_eq!(parse::<u64>("N", " 42 ", "a whole number"), Ok(42));
        let refused = parse::<u64>("FILE_MAX_BYTES", "-1\n", "a whole number").unwrap_err();
        assert_eq!(refused.to_string(), r#"FILE_MAX_BYTES="-1\\n" is not a whole number"#);
        assert_eq!(env_or("NATSRPC_SETTINGS_TEST_UNSET", 7u8, "a whole number"), Ok(7));
    }
}
