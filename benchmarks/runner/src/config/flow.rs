//! A scenario's flows: user journeys of several requests in turn, where an answer can feed the
//! next request, and each step's latency is measured as well as the journey's.
//!
//! ```yaml
//! flows:
//!   - name: upload
//!     steps:
//!       - endpoint: fileproc.begin_upload
//!         template: flows/begin_upload.json
//!         capture: { upload_id: upload_id }      # from the answer's data
//!       - endpoint: fileproc.upload_chunk
//!         template: flows/upload_chunk.json      # names {{upload_id}}
//!         think_time: 20ms                       # a pause before this step
//!       - { endpoint: fileproc.complete_upload, body: { upload_id: "{{upload_id}}" } }
//! ```
//!
//! A step is a mix entry (the catalog's endpoint, or a body of one's own), with `capture` (names
//! for values of its answer, each at a path such as `order_id`, `items[0].sku` or `a.b`) and
//! `think_time`. A flow is drawn among the mix's entries by its `weight`, and runs its steps in
//! turn; a step that fails, or whose answer lacks a value to capture, ends the journey there.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Invalid, MixEntry};
use crate::own_request::OwnRequest;

/// The most steps in a flow.
pub const MAX_STEPS: usize = 32;

/// The longest think time.
pub const MAX_THINK_TIME: Duration = Duration::from_secs(60);

/// A user journey.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Its label: its steps are labelled `{name}/{n} {step}`.
    pub name: String,
    /// Relative weight among the mix's entries (1 when unset).
    #[serde(default = "one")]
    pub weight: f64,
    /// The requests, in turn.
    pub steps: Vec<MixEntry>,
}

fn one() -> f64 {
    1.0
}

impl Flow {
    /// The names its steps capture, in order.
    pub fn captures(&self) -> Vec<String> {
        self.steps.iter().flat_map(|step| step.capture.keys().cloned()).collect()
    }

    /// Its step `n`'s label (from 1).
    pub fn step_label(&self, n: usize, step: &MixEntry) -> String {
        format!("{}/{n} {}", self.name, step.label())
    }

    /// Whether it is well formed: steps, captures, think times; answers what is wrong, by key.
    pub fn check(&self) -> Result<(), Invalid> {
        if self.name.is_empty() || self.name.len() > 64 || self.name.chars().any(char::is_control) {
            return Err(Invalid::from("name: 1 to 64 characters, none a control character"));
        }
        if !(self.weight.is_finite() && self.weight > 0.0) {
            return Err(Invalid::from("weight: must be above 0"));
        }
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(Invalid::from(format!("steps: 1 to {MAX_STEPS}")));
        }
        let mut captured: Vec<&str> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let at = |problem: String| Invalid::from(format!("steps[{i}].{problem}"));
            if i == 0 && step.think_time.is_some() {
                return Err(at("think_time: a pause before a step, so not on the first".into()));
            }
            if step.think_time.is_some_and(|t| t > MAX_THINK_TIME) {
                return Err(at(format!("think_time: at most {}", MAX_THINK_TIME.as_secs())));
            }
            for (name, path) in &step.capture {
                let word = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && name.len() <= 64;
                if !word || OwnRequest::is_variable(name) {
                    return Err(at(format!(
                        "capture.{}: a name of letters, digits and _ (not a variable's: {})",
                        natsrpc::escape::escape(name, 64),
                        OwnRequest::variables()
                    )));
                }
                if captured.contains(&name.as_str()) {
                    return Err(at(format!("capture.{name}: captured by an earlier step already")));
                }
                CapturePath::parse(path).map_err(|why| at(format!("capture.{name}: {why}")))?;
                captured.push(name);
            }
        }
        Ok(())
    }
}

/// Where a captured value is in an answer: keys and indexes (`items[0].sku`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturePath(Vec<PathStep>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathStep {
    Key(String),
    Index(usize),
}

impl CapturePath {
    /// `text` read as a path: keys separated by `.`, each followed by any `[n]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > 256 {
            return Err("a path of 1 to 256 characters, such as order_id or items[0].sku".into());
        }
        let mut steps = Vec::new();
        for part in text.split('.') {
            let (key, indexes) = match part.split_once('[') {
                Some((key, rest)) => (key, Some(rest)),
                None => (part, None),
            };
            let shown = || natsrpc::escape::escape(text, 64);
            if key.is_empty() || key.contains(']') {
                return Err(format!("{:?}: a key before each . and [", shown()));
            }
            steps.push(PathStep::Key(key.to_string()));
            // After `[`: `n]`, then nothing or `[` and again.
            let mut rest = indexes;
            while let Some(inside) = rest {
                let (index, after) = inside
                    .split_once(']')
                    .and_then(|(n, after)| Some((n.parse::<usize>().ok()?, after)))
                    .ok_or_else(|| format!("{:?}: an index is [n]", shown()))?;
                steps.push(PathStep::Index(index));
                rest = match after.strip_prefix('[') {
                    Some(next) => Some(next),
                    None if after.is_empty() => None,
                    None => return Err(format!("{:?}: [n] ends a key", shown())),
                };
            }
        }
        Ok(Self(steps))
    }

    /// The value at this path in `value`, as the text a template takes: a string's own text, a
    /// number's or a boolean's JSON; `None` when there is none there (or null).
    pub fn find(&self, value: &serde_json::Value) -> Option<String> {
        let mut at = value;
        for step in &self.0 {
            at = match step {
                PathStep::Key(key) => at.get(key)?,
                PathStep::Index(index) => at.get(*index)?,
            };
        }
        match at {
            serde_json::Value::Null => None,
            serde_json::Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// The capture paths of a step, parsed (checked already by [`Flow::check`]).
pub fn capture_paths(capture: &BTreeMap<String, String>) -> Vec<(String, CapturePath)> {
    capture.iter().filter_map(|(name, path)| Some((name.clone(), CapturePath::parse(path).ok()?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_finds_keys_and_indexes_and_refuses_what_it_cannot_read() {
        let answer = serde_json::json!({"order_id": "ord_1", "items": [{"sku": "S-1", "n": 2}], "x": null});
        let find = |path: &str| CapturePath::parse(path).unwrap().find(&answer);
        assert_eq!(find("order_id").as_deref(), Some("ord_1"));
        assert_eq!(find("items[0].sku").as_deref(), Some("S-1"));
        assert_eq!(find("items[0].n").as_deref(), Some("2"), "a number as its JSON");
        assert_eq!(find("items[1].sku"), None);
        assert_eq!(find("x"), None, "null is nothing to capture");
        for bad in ["", "a..b", "[0]", "a[x]", "a[0]b", "a]", "d[", "a[0]["] {
            assert!(CapturePath::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn flow(yaml: &str) -> Result<(), String> {
        let flow: Flow = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        flow.check().map_err(|e| e.to_string())
    }

    #[test]
    fn a_flow_is_checked_step_by_step() {
        assert!(
            flow("{ name: f, steps: [{ endpoint: ecommerce.create_order, capture: { id: order_id } }] }")
                .is_ok()
        );
        let refused = |yaml: &str| flow(yaml).unwrap_err();
        assert!(refused("{ name: f, steps: [] }").contains("steps: 1 to 32"));
        assert!(
            refused("{ name: f, steps: [{ endpoint: ecommerce.restock, think_time: 1s }] }")
                .contains("steps[0].think_time")
        );
        assert!(
            refused("{ name: f, steps: [{ endpoint: ecommerce.restock, capture: { seq: a } }] }")
                .contains("steps[0].capture.seq")
        );
        assert!(
            refused("{ name: f, steps: [{ endpoint: ecommerce.restock, capture: { a: b, c: 'd[' } }] }")
                .contains("steps[0].capture.c")
        );
        let twice = "{ name: f, steps: [{ endpoint: ecommerce.restock, capture: { a: b } }, { endpoint: ecommerce.restock, capture: { a: b } }] }";
        assert!(refused(twice).contains("steps[1].capture.a: captured by an earlier step"));
    }
}
