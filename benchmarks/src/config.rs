//! `config/benchmark-config.yaml`, read strictly: an unknown key or a bad value is refused before
//! anything runs, with the file, the line and the key.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::BenchError;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkConfig {
    /// The stacks, by name.
    pub stacks: BTreeMap<String, StackSpec>,
}

/// How a stack's clients reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// NATS request/reply on `{service}.{endpoint}`.
    Nats,
    /// HTTP `POST /{service}/{endpoint}`.
    Http,
}

/// One stack: what it is, where it listens, and its processes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackSpec {
    /// One line for the report.
    pub description: String,
    /// How clients reach it.
    pub transport: Transport,
    /// `nats://host:port` or `http://host:port`.
    pub url: String,
    /// For an echo control: the subject it answers on, instead of the three services.
    #[serde(default)]
    pub echo_subject: Option<String>,
    /// Started in this order, stopped in the reverse order.
    pub processes: Vec<ProcessSpec>,
}

/// One kind of process of a stack.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// Its role (`api`, `worker`...), for logs and the report.
    pub name: String,
    /// A binary of this workspace and its arguments.
    pub command: Vec<String>,
    /// How many to run.
    #[serde(default = "one")]
    pub instances: u32,
    /// Its environment, on top of the stack's own.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

impl BenchmarkConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, BenchError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| BenchError::Config(format!("{}: {error}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks `text`, naming `origin` in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, BenchError> {
        let config: Self = serde_yaml::from_str(text).map_err(|error| {
            let place = error.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
            BenchError::Config(format!("{origin}{place}: {error}"))
        })?;
        config.check().map_err(|problem| BenchError::Config(format!("{origin}: {problem}")))?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        for (name, stack) in &self.stacks {
            let scheme = match stack.transport {
                Transport::Nats => "nats://",
                Transport::Http => "http://",
            };
            if !stack.url.starts_with(scheme) || crate::stacks::host_port(&stack.url).is_none() {
                return Err(format!("stacks.{name}.url: {:?} is not {scheme}host:port", stack.url));
            }
            if stack.processes.is_empty() {
                return Err(format!("stacks.{name}.processes: a stack needs at least one process"));
            }
            for (i, process) in stack.processes.iter().enumerate() {
                if process.command.is_empty() {
                    return Err(format!("stacks.{name}.processes[{i}].command: empty"));
                }
                if process.instances == 0 {
                    return Err(format!("stacks.{name}.processes[{i}].instances: must be at least 1"));
                }
            }
        }
        Ok(())
    }

    /// A stack by name, or an error listing the names there are.
    pub fn stack(&self, name: &str) -> Result<&StackSpec, BenchError> {
        self.stacks.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.stacks.keys().map(String::as_str).collect();
            BenchError::Config(format!("no stack {name:?}; the config has {}", known.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/benchmark-config.yaml");
        let config = BenchmarkConfig::load(&path).unwrap();
        assert!(config.stacks.contains_key("http-rabbitmq"));
        assert_eq!(config.stack("http-rabbitmq").unwrap().processes[0].instances, 2);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_line_and_the_key() {
        let text = "stacks:\n  nats:\n    description: d\n    transport: nats\n    url: nats://127.0.0.1:4222\n    procesess: []\n";
        let error = BenchmarkConfig::parse(text, "bench.yaml").unwrap_err().to_string();
        assert!(error.contains("bench.yaml:6:"), "{error}");
        assert!(error.contains("unknown field `procesess`"), "{error}");

        let text = "stacks:\n  web:\n    description: d\n    transport: http\n    url: nats://x:1\n    processes: [{name: a, command: [b]}]\n";
        let error = BenchmarkConfig::parse(text, "bench.yaml").unwrap_err().to_string();
        assert!(error.contains("stacks.web.url"), "{error}");

        let text = "stacks:\n  web:\n    description: d\n    transport: carrier-pigeon\n";
        let error = BenchmarkConfig::parse(text, "bench.yaml").unwrap_err().to_string();
        assert!(error.contains("bench.yaml:4:") && error.contains("carrier-pigeon"), "{error}");
    }
}
