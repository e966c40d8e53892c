//! Contract compatibility: what a new version of a service breaks for the callers of the old one,
//! from the two versions' `$SRV.INFO` (their endpoints and the JSON Schemas natsrpc serves with
//! `request!(..., schema)`).
//!
//! A change breaks callers when something the old version accepted, the new one refuses (in a
//! request), or something the old one answered, the new one may not (in a response):
//!
//! | where | breaking |
//! |---|---|
//! | endpoints | one removed |
//! | a request | a field made required; a field removed where other fields are refused; fewer types allowed; a tighter bound (`minLength`, `maxLength`, `minimum`, `maximum`, `minItems`, `maxItems`...); an enum value removed; a pattern, `const` or choice (`oneOf`, `anyOf`) added or changed |
//! | a response | a required field no longer required or removed; more types allowed (`null` too, say); an enum value added (callers whose enums have no catch-all fail on it) |
//!
//! A breaking change is allowed with a new major version (`2.0.0` after `1.4.2`, in ADR-32's
//! `version`; under 1.0.0, a new minor one, `0.2.0` after `0.1.4`, as semver has it): [`check`]
//! passes then, listing them. Enums written as `oneOf` of `const`s (documented variants) count as
//! sets of values; other choices (`Option<T>` as `anyOf`, enums with data) are compared branch by
//! branch; a type that refers to itself is compared once.
//!
//! ```
//! use serde_json::json;
//! let info = |version: &str, required: &[&str]| json!({
//!     "name": "shop", "version": version,
//!     "endpoints": [{ "name": "buy", "subject": "shop.buy", "metadata": {
//!         "request_schema": json!({ "type": "object", "properties": { "sku": { "type": "string" }, "note": { "type": "string" } }, "required": required }).to_string()
//!     } }]
//! });
//! let breaks = natsrpc::compat::breaking_changes(&info("1.0.0", &["sku"]), &info("1.1.0", &["sku", "note"]));
//! assert_eq!(breaks[0].to_string(), "shop.buy request note: now required");
//! assert!(natsrpc::compat::check(&info("1.0.0", &["sku"]), &info("1.1.0", &["sku", "note"])).is_err());
//! assert!(natsrpc::compat::check(&info("1.0.0", &["sku"]), &info("2.0.0", &["sku", "note"])).is_ok());
//! ```

use std::fmt;

use serde_json::{Map, Value};

use crate::validation::field_path;

/// How deep the schemas are compared (a recursive schema ends there).
const MAX_DEPTH: usize = 32;

/// One change that breaks callers of the old version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The endpoint's subject.
    pub endpoint: String,
    /// `request`, `response`, or the endpoint itself (empty).
    pub side: &'static str,
    /// The field, as natsrpc names them (`items[].sku`; empty for the whole body).
    pub path: String,
    /// What changed.
    pub change: String,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = [self.endpoint.as_str(), self.side, self.path.as_str()];
        let at: Vec<&str> = at.into_iter().filter(|part| !part.is_empty()).collect();
        write!(f, "{}: {}", at.join(" "), self.change)
    }
}

/// Breaking changes in a version that does not say so (its major version is the old one's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} breaking change(s) from {old} to {new} without a new major version:\n  {}", .breaks.len(), .breaks.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
pub struct Incompatible {
    /// The old version.
    pub old: String,
    /// The new version.
    pub new: String,
    /// What breaks.
    pub breaks: Vec<Break>,
}

/// Every change from `old` to `new` (two `$SRV.INFO` answers of a service, or arrays of them, as
/// `natsrpc info --json` prints: the first is taken) that breaks callers of `old`.
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<Break> {
    let (old, new) = (first(old), first(new));
    let endpoints =
        |info: &Value| info.get("endpoints").and_then(Value::as_array).cloned().unwrap_or_default();
    let new_endpoints = endpoints(new);
    let mut breaks = Vec::new();
    for endpoint in endpoints(old) {
        let subject = endpoint.get("subject").and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(now) =
            new_endpoints.iter().find(|e| e.get("subject").and_then(Value::as_str) == Some(&subject))
        else {
            breaks.push(Break { endpoint: subject, side: "", path: String::new(), change: "removed".into() });
            continue;
        };
        for (side, key, direction) in [
            ("request", "request_schema", Direction::Accepted),
            ("response", "response_schema", Direction::Answered),
        ] {
            let schema = |endpoint: &Value| {
                endpoint
                    .get("metadata")
                    .and_then(|m| m.get(key))
                    .and_then(Value::as_str)
                    .and_then(|text| serde_json::from_str::<Value>(text).ok())
            };
            if let (Some(before), Some(after)) = (schema(&endpoint), schema(now)) {
                let mut found = Vec::new();
                let walk = Walk { old_root: &before, new_root: &after, direction, seen: Default::default() };
                walk.compare(&before, &after, "", 0, &mut found);
                breaks.extend(found.into_iter().map(|(path, change)| Break {
                    endpoint: subject.clone(),
                    side,
                    path,
                    change,
                }));
            }
        }
    }
    breaks
}

/// [`breaking_changes`], allowed when `new`'s major version is above `old`'s: the breaks, or
/// [`Incompatible`].
pub fn check(old: &Value, new: &Value) -> Result<Vec<Break>, Incompatible> {
    let breaks = breaking_changes(old, new);
    let version =
        |info: &Value| first(info).get("version").and_then(Value::as_str).unwrap_or_default().to_string();
    let (old, new) = (version(old), version(new));
    // The version's leading part that says "breaking" under semver: the major, or under 1.0.0 the
    // minor (0.2.0 after 0.1.4).
    let breaking = |version: &str| -> Option<(u64, u64)> {
        let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
        let (major, minor) = (parts.next()??, parts.next().flatten().unwrap_or(0));
        Some(if major == 0 { (0, minor) } else { (major, 0) })
    };
    let announced = matches!((breaking(&old), breaking(&new)), (Some(a), Some(b)) if b > a);
    if breaks.is_empty() || announced { Ok(breaks) } else { Err(Incompatible { old, new, breaks }) }
}

fn first(info: &Value) -> &Value {
    match info {
        Value::Array(instances) => instances.first().unwrap_or(info),
        _ => info,
    }
}

/// Which way a schema faces: what a service accepts (a request), or what it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Accepted,
    Answered,
}

struct Walk<'a> {
    old_root: &'a Value,
    new_root: &'a Value,
    direction: Direction,
    /// The (old, new) schemas compared already, by address: a type that refers to itself (or two
    /// fields of one type) is compared once, not once per way of reaching it.
    seen: std::cell::RefCell<std::collections::HashSet<(usize, usize)>>,
}

type Found = Vec<(String, String)>;

impl Walk<'_> {
    fn compare(&self, old: &Value, new: &Value, path: &str, depth: usize, found: &mut Found) {
        if depth > MAX_DEPTH {
            return;
        }
        let (old, new) = (self.resolve(old, self.old_root), self.resolve(new, self.new_root));
        let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else { return };
        let pair = (std::ptr::from_ref(old) as usize, std::ptr::from_ref(new) as usize);
        if !self.seen.borrow_mut().insert(pair) {
            return;
        }
        let mut say = |change: String| found.push((path.to_string(), change));
        let accepted = self.direction == Direction::Accepted;

        let (old_types, new_types) = (types(old), types(new));
        if let (Some(before), Some(after)) = (&old_types, &new_types) {
            // The types of `from` that `to` does not allow (a number allows an integer).
            let lost = |from: &[String], to: &[String]| -> Vec<String> {
                let allowed =
                    |t: &String| to.contains(t) || (t == "integer" && to.iter().any(|n| n == "number"));
                from.iter().filter(|t| !allowed(t)).cloned().collect()
            };
            let (narrower, wider) = (lost(before, after), lost(after, before));
            if accepted && !narrower.is_empty() {
                say(format!("no longer takes {}", narrower.join(", ")));
            }
            if !accepted && !wider.is_empty() {
                say(format!("may now be {}", wider.join(", ")));
            }
        }
        // Bounds: a request's that tighten, in either direction of each.
        if accepted {
            for (key, tighter) in [
                ("minLength", Bound::Up),
                ("maxLength", Bound::Down),
                ("minimum", Bound::Up),
                ("maximum", Bound::Down),
                ("exclusiveMinimum", Bound::Up),
                ("exclusiveMaximum", Bound::Down),
                ("minItems", Bound::Up),
                ("maxItems", Bound::Down),
                ("minProperties", Bound::Up),
                ("maxProperties", Bound::Down),
            ] {
                let (before, after) =
                    (old.get(key).and_then(Value::as_f64), new.get(key).and_then(Value::as_f64));
                let tightened = match (before, after, tighter) {
                    (None, Some(_), _) => true,
                    (Some(a), Some(b), Bound::Up) => b > a,
                    (Some(a), Some(b), Bound::Down) => b < a,
                    _ => false,
                };
                if tightened {
                    say(format!("{key} now {}", new.get(key).map(Value::to_string).unwrap_or_default()));
                }
            }
            for key in ["pattern", "const", "multipleOf"] {
                if new.get(key).is_some() && old.get(key) != new.get(key) {
                    say(format!("{key} now {}", new.get(key).map(Value::to_string).unwrap_or_default()));
                }
            }
        }
        match (values(old).as_deref(), values(new).as_deref()) {
            (Some(before), Some(after)) if accepted => {
                for gone in before.iter().filter(|v| !after.contains(v)) {
                    say(format!("no longer takes {gone}"));
                }
            }
            (Some(before), Some(after)) => {
                for added in after.iter().filter(|v| !before.contains(v)) {
                    say(format!("may now be {added}"));
                }
            }
            (None, Some(after)) if accepted => {
                let values: Vec<String> = after.iter().map(Value::to_string).collect();
                say(format!("now only one of {}", values.join(", ")));
            }
            (Some(_), None) if !accepted => say("no longer one of a fixed set".into()),
            _ => {}
        }
        // Choices that are not a set of values (`Option<T>` is `anyOf: [T, null]`, an enum with
        // data is `oneOf` of objects): compared branch by branch, in order.
        for key in ["oneOf", "anyOf", "allOf"] {
            let branches = |schema: &Map<String, Value>| -> Vec<Value> {
                if key != "allOf" && values(schema).is_some() {
                    return Vec::new();
                }
                schema.get(key).and_then(Value::as_array).cloned().unwrap_or_default()
            };
            let (before, after) = (branches(old), branches(new));
            let fewer = after.len() < before.len();
            match (before.is_empty(), after.is_empty()) {
                (true, true) => continue,
                (false, false) if key == "allOf" || before.len() == after.len() => {}
                _ if key != "allOf" && (fewer == accepted) => {
                    found.push((
                        path.to_string(),
                        format!("its choices ({key}) changed: compare them by hand"),
                    ));
                }
                _ => {}
            }
            for (before, after) in before.iter().zip(&after) {
                self.compare(before, after, path, depth + 1, found);
            }
        }

        // Objects: required fields and their properties.
        let required = |schema: &Map<String, Value>| -> Vec<String> {
            schema
                .get("required")
                .and_then(Value::as_array)
                .map_or_else(Vec::new, |r| r.iter().filter_map(Value::as_str).map(str::to_string).collect())
        };
        let (old_required, new_required) = (required(old), required(new));
        let properties =
            |schema: &Map<String, Value>| schema.get("properties").and_then(Value::as_object).cloned();
        let (old_properties, new_properties) =
            (properties(old).unwrap_or_default(), properties(new).unwrap_or_default());
        let closed =
            |schema: &Map<String, Value>| schema.get("additionalProperties") == Some(&Value::Bool(false));
        if accepted {
            for field in new_required.iter().filter(|f| !old_required.contains(f)) {
                found.push((field_path(path, field), "now required".into()));
            }
            if closed(new) {
                for field in old_properties.keys().filter(|f| !new_properties.contains_key(*f)) {
                    found.push((field_path(path, field), "no longer accepted".into()));
                }
                if !closed(old) {
                    found.push((path.to_string(), "other fields now refused".into()));
                }
            }
        } else {
            for field in old_required.iter().filter(|f| !new_required.contains(f)) {
                let change =
                    if new_properties.contains_key(field) { "may now be missing" } else { "removed" };
                found.push((field_path(path, field), change.into()));
            }
        }
        for (field, before) in &old_properties {
            if let Some(after) = new_properties.get(field) {
                self.compare(before, after, &field_path(path, field), depth + 1, found);
            }
        }
        if let (Some(before), Some(after)) = (old.get("items"), new.get("items")) {
            self.compare(before, after, &format!("{path}[]"), depth + 1, found);
        }
        if let (Some(before), Some(after)) =
            (old.get("additionalProperties"), new.get("additionalProperties"))
            && before.is_object()
            && after.is_object()
        {
            self.compare(before, after, &field_path(path, "*"), depth + 1, found);
        }
        let prefix =
            |schema: &Map<String, Value>| schema.get("prefixItems").and_then(Value::as_array).cloned();
        if let (Some(before), Some(after)) = (prefix(old), prefix(new)) {
            for (i, (before, after)) in before.iter().zip(&after).enumerate() {
                self.compare(before, after, &format!("{path}[{i}]"), depth + 1, found);
            }
        }
    }

    /// The schema a `$ref` leads to in its document (the schema itself when it has none).
    fn resolve<'v>(&self, schema: &'v Value, root: &'v Value) -> &'v Value {
        let mut at = schema;
        for _ in 0..MAX_DEPTH {
            match at.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
                Some(pointer) => match root.pointer(pointer) {
                    Some(target) => at = target,
                    None => return at,
                },
                None => return at,
            }
        }
        at
    }
}

#[derive(Clone, Copy)]
enum Bound {
    Up,
    Down,
}

/// The values a schema allows, when it is a set of them: `enum`, or `oneOf`/`anyOf` of `const`s
/// (how schemars writes a Rust enum whose variants have doc comments).
fn values(schema: &Map<String, Value>) -> Option<Vec<Value>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(values.clone());
    }
    let branches = schema.get("oneOf").or_else(|| schema.get("anyOf"))?.as_array()?;
    branches
        .iter()
        .map(|branch| match (branch.get("const"), branch.get("enum").and_then(Value::as_array)) {
            (Some(value), _) => Some(value.clone()),
            (None, Some(one)) if one.len() == 1 => Some(one[0].clone()),
            _ => None,
        })
        .collect()
}

/// The types a schema allows (`None`: any).
fn types(schema: &Map<String, Value>) -> Option<Vec<String>> {
    match schema.get("type")? {
        Value::String(one) => Some(vec![one.clone()]),
        Value::Array(many) => Some(many.iter().filter_map(Value::as_str).map(str::to_string).collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(version: &str, request: Value, response: Value) -> Value {
        json!({ "name": "shop", "version": version, "endpoints": [{ "name": "buy", "subject": "shop.buy", "metadata": {
            "request_schema": request.to_string(), "response_schema": response.to_string() } }] })
    }

    fn breaks(request: (Value, Value), response: (Value, Value)) -> Vec<String> {
        breaking_changes(&info("1.0.0", request.0, response.0), &info("1.0.1", request.1, response.1))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_request_that_accepts_less_breaks_and_one_that_accepts_more_does_not() {
        let any = (json!({}), json!({}));
        let line = |extra: Value| {
            let mut item = json!({ "type": "object", "properties": { "sku": { "type": "string", "maxLength": 10 }, "n": { "type": "integer", "minimum": 1 } }, "required": ["sku"] });
            if let (Some(item), Some(extra)) = (item.as_object_mut(), extra.as_object()) {
                item.extend(extra.clone());
            }
            json!({ "$defs": { "Line": item }, "type": "object", "properties": { "lines": { "type": "array", "items": { "$ref": "#/$defs/Line" } }, "kind": { "enum": ["a", "b"] } } })
        };
        assert_eq!(breaks((line(json!({})), line(json!({}))), any.clone()), Vec::<String>::new());
        // Looser: more types, a longer bound, a field no longer required.
        let looser = json!({ "properties": { "sku": { "type": ["string", "null"], "maxLength": 20 }, "n": { "type": "number" } }, "required": [] });
        assert_eq!(breaks((line(json!({})), line(looser)), any.clone()), Vec::<String>::new());
        let tighter = json!({ "properties": { "sku": { "type": "string", "maxLength": 5, "pattern": "^S" }, "n": { "type": "integer", "minimum": 2 } }, "required": ["sku", "n"], "additionalProperties": false });
        assert_eq!(
            breaks((line(json!({})), line(tighter)), any.clone()),
            [
                "shop.buy request lines[].n: now required",
                "shop.buy request lines[]: other fields now refused",
                "shop.buy request lines[].n: minimum now 2",
                "shop.buy request lines[].sku: maxLength now 5",
                "shop.buy request lines[].sku: pattern now \"^S\"",
            ]
        );
        let fewer_kinds = json!({ "type": "object", "properties": { "kind": { "enum": ["a"] } } });
        assert_eq!(
            breaks((line(json!({})), fewer_kinds), any),
            ["shop.buy request kind: no longer takes \"b\""]
        );
    }

    #[test]
    fn a_response_that_may_answer_less_or_otherwise_breaks() {
        let any = (json!({}), json!({}));
        let receipt = json!({ "type": "object", "properties": { "id": { "type": "string" }, "state": { "enum": ["open", "paid"] } }, "required": ["id", "state"] });
        let changed = json!({ "type": "object", "properties": { "id": { "type": ["string", "null"] }, "state": { "enum": ["open", "paid", "refunded"] } }, "required": ["id"] });
        assert_eq!(
            breaks(any.clone(), (receipt.clone(), changed)),
            [
                "shop.buy response state: may now be missing",
                "shop.buy response id: may now be null",
                "shop.buy response state: may now be \"refunded\"",
            ]
        );
        let more = json!({ "type": "object", "properties": { "id": { "type": "string" }, "state": { "enum": ["open", "paid"] }, "at": { "type": "integer" } }, "required": ["id", "state", "at"] });
        assert_eq!(breaks(any, (receipt, more)), Vec::<String>::new(), "a new field answered breaks nobody");
    }

    #[test]
    fn documented_enums_are_sets_options_are_followed_and_recursion_ends() {
        let any = (json!({}), json!({}));
        let method = |consts: &[&str]| {
            let branches: Vec<Value> =
                consts.iter().map(|c| json!({ "const": c, "description": format!("pay by {c}") })).collect();
            json!({ "type": "object", "properties": { "method": { "oneOf": branches } } })
        };
        assert_eq!(
            breaks((method(&["card"]), method(&["card", "iban"])), any.clone()),
            Vec::<String>::new(),
            "accepts more"
        );
        assert_eq!(
            breaks((method(&["card", "iban"]), method(&["card"])), any.clone()),
            ["shop.buy request method: no longer takes \"iban\""]
        );
        // `Option<Gift>`: a field of the gift made required is found through the `anyOf`.
        let gift = |required: &[&str]| {
            json!({ "$defs": { "Gift": { "type": "object", "properties": { "note": { "type": "string" } }, "required": required } },
            "type": "object", "properties": { "gift": { "anyOf": [{ "$ref": "#/$defs/Gift" }, { "type": "null" }] } } })
        };
        assert_eq!(
            breaks((gift(&[]), gift(&["note"])), any.clone()),
            ["shop.buy request gift.note: now required"]
        );
        // A type made of itself twice over: compared once, not 2^depth times.
        let tree = |max: u64| {
            json!({ "$defs": { "F": { "type": "object", "properties": {
            "and": { "type": "array", "items": { "$ref": "#/$defs/F" } }, "or": { "type": "array", "items": { "$ref": "#/$defs/F" } },
            "name": { "type": "string", "maxLength": max } } } }, "$ref": "#/$defs/F" })
        };
        assert_eq!(breaks((tree(10), tree(5)), any), ["shop.buy request name: maxLength now 5"]);
    }

    #[test]
    fn a_removed_endpoint_breaks_and_a_new_major_version_allows_it() {
        let old = info("1.4.2", json!({}), json!({}));
        let gone = json!({ "name": "shop", "version": "1.5.0", "endpoints": [] });
        let error = check(&old, &gone).unwrap_err();
        assert_eq!(error.breaks[0].to_string(), "shop.buy: removed");
        assert!(error.to_string().contains("from 1.4.2 to 1.5.0 without a new major version"), "{error}");
        let announced = json!({ "name": "shop", "version": "2.0.0", "endpoints": [] });
        assert_eq!(check(&old, &announced).unwrap().len(), 1, "allowed, and listed");
        assert_eq!(
            check(&json!([old.clone()]), &json!([old])).unwrap(),
            [],
            "instances as `natsrpc info --json` lists them"
        );
        // Under 1.0.0, a new minor version is the breaking one.
        let early = |version: &str| json!({ "name": "shop", "version": version, "endpoints": [] });
        assert!(check(&info("0.1.4", json!({}), json!({})), &early("0.2.0")).is_ok());
        assert!(check(&info("0.1.4", json!({}), json!({})), &early("0.1.5")).is_err());
    }
}
