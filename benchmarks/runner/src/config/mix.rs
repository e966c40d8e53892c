//! A scenario's mix: the kinds of request it sends and their weights. An entry names an
//! endpoint of the shipped catalog (the generator makes its bodies, valid and invalid), or gives
//! a body of its own for any subject or path:
//!
//! ```yaml
//! mix:
//!   - { endpoint: ecommerce.create_order, size: small, weight: 3 }
//!   - { endpoint: echo.echo, body: { message: "hello {{seq}}" } }
//!   - { endpoint: /api/orders, template: orders.json, data: customers.csv, codec: msgpack }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Invalid;
use crate::endpoint::Target;
use crate::own_request::{BodyCodec, Outcome, OwnRequest};

/// One kind of request in a mix.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// `service.endpoint`: one the load generator sends, or, with a body of one's own, any NATS
    /// subject (`service.endpoint`) or HTTP path (`/...`).
    pub endpoint: Target,
    /// Its label in progress lines and reports, instead of the endpoint's (two entries of one
    /// endpoint with bodies of their own tell apart so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Payload size where the endpoint has sizes: `small`, `medium` or `large`.
    #[serde(default)]
    pub size: Option<PayloadSize>,
    /// For `ecommerce.get_order_overview`: items in each order overviewed (1 to 100, default 4);
    /// the overview fans out to one sub-request per item plus one to analytics (K = items + 1).
    /// For `analytics.ingest_batch`: events in each batch (5 to 500), instead of `size`'s.
    #[serde(default)]
    pub items: Option<u32>,
    /// Relative weight (1 when unset).
    #[serde(default = "one")]
    pub weight: f64,
    /// A body of one's own, as JSON text with `{{variables}}` (see `own_request`) or as YAML
    /// (a mapping written as JSON, its strings' variables filled in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_yaml::Value>,
    /// The same from a file, relative to the configuration's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// A CSV file (header row, then rows) whose columns the body names `{{csv.COLUMN}}`, relative
    /// to the configuration's folder; each request takes the next row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// `json` (the default) or `msgpack`: how a body of one's own goes on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<BodyCodec>,
    /// What the answer to a body of one's own must be: `ok` (natsrpc's success, the default),
    /// `any` (any answer), or `{ invalid: { path: field, code: rule } }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Outcome>,
    /// In a flow's step: names for values of its answer (its `data` in natsrpc's envelope), each
    /// at a path (`order_id`, `items[0].sku`), for later steps' bodies to name as `{{name}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capture: BTreeMap<String, String>,
    /// In a flow's step: a pause before it is sent (not on the first).
    #[serde(default, with = "crate::config::duration_text::option", skip_serializing_if = "Option::is_none")]
    pub think_time: Option<Duration>,
    /// The body of one's own, parsed once the file is read.
    #[serde(skip)]
    pub own: Option<Arc<OwnRequest>>,
}

fn one() -> f64 {
    1.0
}

/// Payload sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadSize {
    /// The smallest valid shape.
    Small,
    /// Typical.
    Medium,
    /// Many items or records.
    Large,
}

impl MixEntry {
    /// An entry of the catalog's `endpoint`, weight 1, nothing else set.
    pub fn of(endpoint: crate::endpoint::Endpoint) -> Self {
        Self {
            endpoint: Target::Catalog(endpoint),
            name: None,
            size: None,
            items: None,
            weight: 1.0,
            body: None,
            template: None,
            data: None,
            codec: None,
            expect: None,
            capture: BTreeMap::new(),
            think_time: None,
            own: None,
        }
    }

    /// Reads its body of one's own (files relative to `dir`, else to the working folder) and
    /// parses it, with the values a flow's earlier steps capture (`captures`, in order); a catalog
    /// endpoint given a body becomes one's own. Answers what is wrong, by key.
    pub(super) fn resolve(&mut self, dir: Option<&Path>, captures: &[String]) -> Result<(), Invalid> {
        let read = |key: &str, file: &str| {
            let path = dir.map_or_else(|| Path::new(file).to_path_buf(), |dir| dir.join(file));
            std::fs::read_to_string(&path)
                .map_err(|e| Invalid::from(format!("{key}: {}: {e}", path.display())))
        };
        let text = match (&self.body, &self.template) {
            (Some(_), Some(_)) => return Err(Invalid::from("body: give `body` or `template`, not both")),
            (Some(serde_yaml::Value::String(text)), None) => Some(text.clone()),
            (Some(value), None) => Some(
                serde_json::to_string(value)
                    .map_err(|e| Invalid::from(format!("body: not something JSON can write: {e}")))?,
            ),
            (None, Some(file)) => Some(read("template", file)?),
            (None, None) => None,
        };
        let Some(text) = text else {
            if let Target::Own(subject) = self.endpoint {
                return Err(Invalid::from(format!(
                    "endpoint: {subject:?} is not one the load generator sends ({}): give its body with `body` or `template`",
                    crate::endpoint::Endpoint::listed()
                )));
            }
            let own_only = [
                ("data", self.data.is_some()),
                ("codec", self.codec.is_some()),
                ("expect", self.expect.is_some()),
            ];
            if let Some((key, _)) = own_only.iter().find(|(_, set)| *set) {
                return Err(Invalid::from(format!(
                    "{key}: only with a body of one's own (`body` or `template`)"
                )));
            }
            return Ok(());
        };
        if self.size.is_some() || self.items.is_some() {
            return Err(Invalid::from("size, items: only for the catalog's bodies, not one's own"));
        }
        let data = match &self.data {
            Some(file) => Some((file.as_str(), read("data", file)?)),
            None => None,
        };
        let request = OwnRequest::parse_in_flow(
            &text,
            self.codec.unwrap_or_default(),
            self.expect.clone().unwrap_or_default(),
            data.as_ref().map(|(name, text)| (*name, text.as_str())),
            captures,
        )
        .map_err(|why| {
            Invalid::from(format!("{}: {why}", if self.template.is_some() { "template" } else { "body" }))
        })?;
        self.endpoint = self.endpoint.own();
        self.own = Some(Arc::new(request));
        Ok(())
    }
}

#[cfg(test)]
impl MixEntry {
    /// [`MixEntry::resolve`] in the working folder, for other modules' tests.
    pub(crate) fn resolve_for_test(&mut self, captures: &[String]) {
        #[allow(clippy::unwrap_used)]
        self.resolve(None, captures).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(yaml: &str) -> Result<MixEntry, String> {
        let mut entry: MixEntry = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        entry.resolve(None, &[]).map_err(|e| e.to_string())?;
        Ok(entry)
    }

    #[test]
    fn a_body_of_ones_own_makes_any_subject_sendable() {
        let echo = entry("{ endpoint: echo.echo, body: { message: \"hi {{seq}}\" } }").unwrap();
        assert_eq!((echo.endpoint, echo.weight), (Target::Own("echo.echo"), 1.0));
        let body = echo.own.as_ref().unwrap().render(3, 1, "r");
        assert_eq!(&body[..], br#"{"message":"hi 3"}"#);
        let own_order =
            entry("{ endpoint: ecommerce.restock, body: '{\"sku\": \"S\", \"quantity\": 1}' }").unwrap();
        assert_eq!(own_order.endpoint, Target::Own("ecommerce.restock"), "no longer the catalog's bodies");
        let catalog = entry("{ endpoint: ecommerce.restock, weight: 2 }").unwrap();
        assert!(catalog.own.is_none() && catalog.endpoint.catalog().is_some());
    }

    #[test]
    fn what_a_body_of_ones_own_needs_is_named() {
        let refused = |yaml: &str| entry(yaml).unwrap_err();
        assert!(refused("{ endpoint: echo.echo }").contains("give its body"));
        assert!(refused("{ endpoint: echo.echo, body: '{}', template: t.json }").contains("not both"));
        assert!(refused("{ endpoint: ecommerce.restock, codec: msgpack }").contains("codec: only with"));
        assert!(refused("{ endpoint: echo.echo, body: '{}', size: small }").contains("size, items"));
        assert!(
            refused("{ endpoint: echo.echo, template: /nonexistent/t.json }")
                .contains("template: /nonexistent")
        );
        assert!(
            refused("{ endpoint: echo.echo, body: '{\"a\": {{x}}}' }")
                .contains("body: {{x}} is not a variable")
        );
        assert!(refused("{ endpoint: echo.echo, body: '{}', expect: maybe }").contains("unknown variant"));
    }
}
