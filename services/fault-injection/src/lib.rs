//! Injected faults: the failures and slowness real services have, at rates a benchmark sets, drawn
//! from a seeded random source so that a run can be repeated.
//!
//! Settings come from a YAML file named by `FAULTS_FILE`, then from `FAULT_<SETTING>` environment
//! variables (`FAULT_PAYMENT_DECLINE_RATE=0.05`), over the defaults (no faults). Unknown settings and
//! rates outside 0..=1 are refused, naming the setting.
//!
//! ```
//! let settings = faults::FaultSettings::from_yaml("seed: 7\npayment_decline_rate: 1.0").unwrap();
//! let faults = faults::Faults::new(settings);
//! assert!(faults.happens(faults.settings().payment_decline_rate));
//! assert!(!faults::Faults::none().happens(0.0));
//! ```

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// This crate's error.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The settings file could not be read.
    #[error("cannot read fault settings from {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The settings are not valid YAML of the right shape (an unknown setting, a wrong type).
    #[error("invalid fault settings{origin}: {message}")]
    Invalid {
        /// Where they came from, such as ` in faults.yaml`.
        origin: String,
        /// What is wrong, with line and column when known.
        message: String,
    },
    /// An injected internal failure, from [`Faults::disturb`].
    #[error("injected internal error")]
    Injected,
    /// A rate outside 0..=1.
    #[error("fault setting `{setting}` is {value}: a rate must be between 0 and 1")]
    Rate {
        /// The setting.
        setting: &'static str,
        /// Its value.
        value: f64,
    },
}

/// How often each fault happens, and how much latency is added. Rates are probabilities per
/// operation, from 0 (never) to 1 (always).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSettings {
    /// Seed of the random source.
    pub seed: u64,
    /// A payment the gateway declines (a business failure: 422).
    pub payment_decline_rate: f64,
    /// A payment attempt that fails transiently; the service retries it.
    pub payment_transient_rate: f64,
    /// Time one payment attempt takes at the simulated gateway, in milliseconds.
    pub payment_latency_ms: u64,
    /// A reservation refused as out of stock whatever the stock level (a business failure: 409).
    pub out_of_stock_rate: f64,
    /// A request that fails inside the service (500).
    pub internal_error_rate: f64,
    /// Latency added to every request, in milliseconds...
    pub extra_latency_ms: u64,
    /// ...plus a uniformly drawn part of up to this many milliseconds.
    pub extra_latency_jitter_ms: u64,
}

impl Default for FaultSettings {
    fn default() -> Self {
        Self {
            seed: 42,
            payment_decline_rate: 0.0,
            payment_transient_rate: 0.0,
            payment_latency_ms: 0,
            out_of_stock_rate: 0.0,
            internal_error_rate: 0.0,
            extra_latency_ms: 0,
            extra_latency_jitter_ms: 0,
        }
    }
}

impl FaultSettings {
    /// From `FAULTS_FILE` (if set), then `FAULT_*` environment variables, over the defaults.
    pub fn from_env() -> Result<Self, FaultError> {
        let (base, origin) = match std::env::var("FAULTS_FILE") {
            Ok(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| FaultError::Read { path: path.clone(), source })?;
                (text, format!(" in {path}"))
            }
            Err(_) => (String::new(), String::new()),
        };
        let overrides: Vec<(String, String)> = std::env::vars()
            .filter_map(|(name, value)| Some((name.strip_prefix("FAULT_")?.to_ascii_lowercase(), value)))
            .collect();
        Self::parse(&base, &overrides, &origin)
    }

    /// From YAML text (a mapping of settings; empty for the defaults).
    pub fn from_yaml(text: &str) -> Result<Self, FaultError> {
        Self::parse(text, &[], "")
    }

    fn parse(text: &str, overrides: &[(String, String)], origin: &str) -> Result<Self, FaultError> {
        let invalid = |message: String| FaultError::Invalid { origin: origin.to_string(), message };
        // Decoding the text itself keeps line and column in the error.
        let from_text: Self = if text.trim().is_empty() {
            Self::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| invalid(with_line(text, &e)))?
        };
        let settings = if overrides.is_empty() {
            from_text
        } else {
            let mut value = serde_yaml::to_value(&from_text).map_err(|e| invalid(e.to_string()))?;
            if let serde_yaml::Value::Mapping(map) = &mut value {
                for (name, raw) in overrides {
                    // A number stays a number; anything else is kept as text and refused by its type.
                    let parsed =
                        serde_yaml::from_str(raw).unwrap_or_else(|_| serde_yaml::Value::String(raw.clone()));
                    map.insert(serde_yaml::Value::String(name.clone()), parsed);
                }
            }
            serde_yaml::from_value(value)
                .map_err(|e| invalid(format!("{e} (from a FAULT_* environment variable)")))?
        };
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), FaultError> {
        let rates = [
            ("payment_decline_rate", self.payment_decline_rate),
            ("payment_transient_rate", self.payment_transient_rate),
            ("out_of_stock_rate", self.out_of_stock_rate),
            ("internal_error_rate", self.internal_error_rate),
        ];
        match rates.into_iter().find(|(_, value)| !(0.0..=1.0).contains(value)) {
            Some((setting, value)) => Err(FaultError::Rate { setting, value }),
            None => Ok(()),
        }
    }
}

/// serde_yaml's message, always with a line: its own location when it has one, else (as for some
/// unknown fields) the line where the unknown key stands.
fn with_line(text: &str, error: &serde_yaml::Error) -> String {
    let message = error.to_string();
    if message.contains(" at line ") {
        return message;
    }
    if let Some(at) = error.location() {
        return format!("{message} at line {} column {}", at.line(), at.column());
    }
    let key = message.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next());
    let line = key.and_then(|key| {
        text.lines()
            .position(|line| line.trim_start().strip_prefix(key).is_some_and(|rest| rest.starts_with(':')))
    });
    match line {
        Some(index) => format!("{message} at line {}", index + 1),
        None => message,
    }
}

/// The error codes the services answer with when a fault fires, spelled once for the services
/// that answer them and for the benchmark that expects them.
pub mod codes {
    /// A payment the gateway declined ([`FaultSettings::payment_decline_rate`](super::FaultSettings)).
    pub const PAYMENT_DECLINED: &str = "payment_declined";
    /// A payment that failed transiently on every retry.
    pub const PAYMENT_UNAVAILABLE: &str = "payment_unavailable";
    /// A reservation refused for want of stock: injected, or real under contention.
    pub const OUT_OF_STOCK: &str = "out_of_stock";
    /// A request that failed inside the service: natsrpc's code for an internal error.
    pub const INTERNAL: &str = "internal";
}

impl FaultSettings {
    /// The error codes ([`codes`]) these settings can make a service answer with: what a
    /// benchmark counts as expected, not as a failure.
    pub fn codes(&self) -> Vec<&'static str> {
        [
            (self.payment_decline_rate, codes::PAYMENT_DECLINED),
            // Most transient failures are retried away; those that outlast the retries are not.
            (self.payment_transient_rate, codes::PAYMENT_UNAVAILABLE),
            (self.out_of_stock_rate, codes::OUT_OF_STOCK),
            (self.internal_error_rate, codes::INTERNAL),
        ]
        .into_iter()
        .filter(|(rate, _)| *rate > 0.0)
        .map(|(_, code)| code)
        .collect()
    }
}

/// Draws faults from a seeded source. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Faults {
    settings: FaultSettings,
    rng: Mutex<StdRng>,
}

impl Faults {
    /// Faults at the given rates.
    pub fn new(settings: FaultSettings) -> Self {
        let rng = Mutex::new(StdRng::seed_from_u64(settings.seed));
        Self { settings, rng }
    }

    /// No faults at all.
    pub fn none() -> Self {
        Self::new(FaultSettings::default())
    }

    /// The settings drawn from.
    pub fn settings(&self) -> &FaultSettings {
        &self.settings
    }

    /// Whether a fault of probability `rate` happens this time. A rate of 0 never draws.
    pub fn happens(&self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        self.draw(|rng| rng.random::<f64>()) < rate
    }

    /// The extra latency for one request: the fixed part plus a uniform draw of the jitter.
    pub fn extra_latency(&self) -> Duration {
        let fixed = self.settings.extra_latency_ms;
        let jitter = self.settings.extra_latency_jitter_ms;
        let drawn = if jitter == 0 { 0 } else { self.draw(|rng| rng.random_range(0..=jitter)) };
        Duration::from_millis(fixed + drawn)
    }

    /// The faults every request may meet, in this order: the extra latency (slept), then an internal
    /// failure at `internal_error_rate`.
    pub async fn disturb(&self) -> Result<(), FaultError> {
        let latency = self.extra_latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if self.happens(self.settings.internal_error_rate) {
            return Err(FaultError::Injected);
        }
        Ok(())
    }

    fn draw<T>(&self, f: impl FnOnce(&mut StdRng) -> T) -> T {
        // A poisoned lock only means another draw panicked; the generator itself is still sound.
        let mut rng = self.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let settings = FaultSettings { seed: 9, internal_error_rate: 0.3, ..FaultSettings::default() };
        let draws = |faults: &Faults| (0..200).map(|_| faults.happens(0.3)).collect::<Vec<_>>();
        let (a, b) = (Faults::new(settings.clone()), Faults::new(settings));
        let first = draws(&a);
        assert_eq!(first, draws(&b));
        let hits = first.iter().filter(|hit| **hit).count();
        assert!((30..90).contains(&hits), "about 30% of 200: {hits}");
    }

    #[test]
    fn unknown_settings_and_bad_rates_are_refused_by_name() {
        for (text, line) in [("payment_decline: 0.1", "line 1"), ("seed: 1\npayment_decline: 0.1", "line 2")]
        {
            let unknown = FaultSettings::from_yaml(text).unwrap_err().to_string();
            assert!(unknown.contains("unknown field `payment_decline`"), "{unknown}");
            assert!(unknown.contains(line), "{unknown}");
        }
        let rate = FaultSettings::from_yaml("internal_error_rate: 1.5").unwrap_err().to_string();
        assert_eq!(rate, "fault setting `internal_error_rate` is 1.5: a rate must be between 0 and 1");
        let wrong_type = FaultSettings::from_yaml("seed: many").unwrap_err().to_string();
        assert!(wrong_type.contains("seed"), "{wrong_type}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let overrides = [("payment_latency_ms".to_string(), "25".to_string())];
        let settings = FaultSettings::parse("payment_latency_ms: 5\nseed: 3", &overrides, "").unwrap();
        assert_eq!((settings.payment_latency_ms, settings.seed), (25, 3));
        let typo = [("paymnt_latency_ms".to_string(), "25".to_string())];
        assert!(FaultSettings::parse("", &typo, "").is_err());
    }

    #[test]
    fn extra_latency_stays_within_its_jitter() {
        let faults = Faults::new(FaultSettings {
            extra_latency_ms: 10,
            extra_latency_jitter_ms: 5,
            ..FaultSettings::default()
        });
        for _ in 0..100 {
            let latency = faults.extra_latency();
            assert!((Duration::from_millis(10)..=Duration::from_millis(15)).contains(&latency));
        }
    }
}
