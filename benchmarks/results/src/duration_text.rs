//! Durations written as `500ms`, `10s`, `1.5s`, `2m` or `1h`: how the configuration spells them,
//! and how `results.json` records them (whole milliseconds).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Text that is not a duration, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} {why}")]
pub struct BadDuration {
    text: String,
    why: &'static str,
}

/// Parses `500ms`, `10s`, `1.5s`, `2m`, `1h`.
pub fn parse(text: &str) -> Result<Duration, BadDuration> {
    let text = text.trim();
    let bad = |why| BadDuration { text: text.to_string(), why };
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.trim().parse().map_err(|_| bad("is not a duration like 10s"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(bad("has no unit of ms, s, m or h")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(bad("is not a duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// As text: whole milliseconds.
pub fn format(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

/// serde: from text.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// serde: to text.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*duration))
}

/// The same, for optional durations.
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// serde: from text, or absent.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|t| super::parse(&t).map_err(serde::de::Error::custom)).transpose()
    }

    /// serde: to text, or null.
    pub fn serialize<S: Serializer>(duration: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match duration {
            Some(d) => serializer.serialize_str(&super::format(*d)),
            None => serializer.serialize_none(),
        }
    }
}

/// The same, for durations by name.
pub mod map {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// serde: from a map of text.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, Duration>, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer)?
            .into_iter()
            .map(|(k, t)| super::parse(&t).map(|d| (k, d)).map_err(serde::de::Error::custom))
            .collect()
    }

    /// serde: to a map of text.
    pub fn serialize<S: Serializer>(
        durations: &BTreeMap<String, Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(durations.iter().map(|(k, d)| (k, super::format(*d))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_and_every_mistake() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse(" 1.5s "), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("10").unwrap_err().to_string(), "\"10\" has no unit of ms, s, m or h");
        assert!(parse("ten s").unwrap_err().to_string().contains("not a duration"));
        assert!(parse("-1s").is_err() && parse("NaNs").is_err() && parse("infs").is_err());
        assert_eq!(parse(&format(Duration::from_millis(1234))), Ok(Duration::from_millis(1234)));
    }
}
