//! A service's own settings from its environment, with errors that name the variable: the way
//! [`NatsConfig::from_env`](crate::NatsConfig::from_env) reads the connection's.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_is_refused_by_name_and_an_unset_one_is_the_default() {
        assert_eq!(parse::<u64>("N", " 42 ", "a whole number"), Ok(42));
        let refused = parse::<u64>("FILE_MAX_BYTES", "-1\n", "a whole number").unwrap_err();
        assert_eq!(refused.to_string(), r#"FILE_MAX_BYTES="-1\\n" is not a whole number"#);
        assert_eq!(env_or("NATSRPC_SETTINGS_TEST_UNSET", 7u8, "a whole number"), Ok(7));
    }
}
