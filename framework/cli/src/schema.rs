//! Checking a request against its endpoint's JSON Schema (the `request_schema` natsrpc serves in
//! `$SRV.INFO`) before it is sent, so that a caller sees every broken field at once, by path, as
//! the service would name it.
//!
//! The keywords checked are those schemars writes (JSON Schema 2020-12): `type` (one or a list),
//! `properties`, `required`, `additionalProperties`, `items`, `prefixItems`, `enum`, `const`,
//! `minLength`, `maxLength`, `pattern`, `minimum`, `maximum`, `exclusiveMinimum`,
//! `exclusiveMaximum`, `multipleOf`, `minItems`, `maxItems`, `uniqueItems`, `minProperties`,
//! `maxProperties`, `allOf`, `anyOf`, `oneOf`, `not`, and `$ref` into the document (`#/$defs/..`).
//! Others (`format`, `description`...) are annotations here: the service checks what they mean.
//!
//! ```
//! use natsrpc_cli::schema::check;
//! let schema = serde_json::json!({
//!     "type": "object",
//!     "properties": { "sku": { "type": "string", "minLength": 3 }, "quantity": { "type": "integer", "minimum": 1 } },
//!     "required": ["sku", "quantity"]
//! });
//! let broken = check(&schema, &serde_json::json!({ "sku": "AB", "quantity": 0 }));
//! let paths: Vec<&str> = broken.iter().map(|v| v.path.as_str()).collect();
//! assert_eq!(paths, ["quantity", "sku"]);
//! ```

use natsrpc::validation::field_path;
use serde_json::Value;

/// How deep `$ref`s may lead (a recursive schema ends there rather than looping).
const MAX_DEPTH: usize = 64;

/// The most (schema, value) checks one request gets: a schema that branches on itself
/// (`allOf: [{$ref: "#"}, {$ref: "#"}]`, from whoever answers `$SRV.INFO`) would otherwise take
/// 2^depth of them.
const MAX_CHECKS: usize = 100_000;

/// A part of the request that breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, as natsrpc names fields: `items[0].sku` (empty for the whole request).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Every violation of `schema` by `value`, in the order of the paths.
pub fn check(schema: &Value, value: &Value) -> Vec<Violation> {
    let mut found = Vec::new();
    let checker = Checker { root: schema, left: std::cell::Cell::new(MAX_CHECKS) };
    checker.check(schema, value, "", 0, &mut found);
    if checker.left.get() == 0 {
        // What was found so far stands; the rest is the service's to check.
        found.push(Violation {
            path: String::new(),
            message: format!(
                "the schema takes more than {MAX_CHECKS} checks: too large or recursive to check here"
            ),
        });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.message.cmp(&b.message)));
    // The same break reached by two ways (a schema's branches) is one.
    found.dedup();
    found
}

struct Checker<'a> {
    root: &'a Value,
    /// Checks left ([`MAX_CHECKS`]).
    left: std::cell::Cell<usize>,
}

impl Checker<'_> {
    fn check(&self, schema: &Value, value: &Value, path: &str, depth: usize, found: &mut Vec<Violation>) {
        match self.left.get() {
            0 => return,
            left => self.left.set(left - 1),
        }
        let mut say = |message: String| found.push(Violation { path: path.to_string(), message });
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return say("nothing is allowed here".into()),
            Value::Object(schema) => schema,
            _ => return,
        };
        if depth > MAX_DEPTH {
            return say(format!("the schema nests deeper than {MAX_DEPTH}"));
        }
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            match self.resolve(reference) {
                Some(target) => self.check(target, value, path, depth + 1, found),
                None => found.push(Violation {
                    path: path.to_string(),
                    message: format!("the schema's $ref {reference:?} leads nowhere"),
                }),
            }
        }
        let mut say = |message: String| found.push(Violation { path: path.to_string(), message });
        if let Some(types) = schema.get("type") {
            let allowed: Vec<&str> = match types {
                Value::String(one) => vec![one.as_str()],
                Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !allowed.is_empty() && !allowed.iter().any(|t| is_type(value, t)) {
                // The rest describes a shape the value does not have.
                return say(format!("must be {}, not {}", allowed.join(" or "), type_of(value)));
            }
        }
        if let Some(choices) = schema.get("enum").and_then(Value::as_array)
            && !choices.contains(value)
        {
            say(format!("must be one of {}", list(choices)));
        }
        if let Some(only) = schema.get("const")
            && only != value
        {
            say(format!("must be {only}"));
        }
        match value {
            Value::String(text) => self.string(schema, text, &mut say),
            Value::Number(_) => number(schema, value, &mut say),
            Value::Array(items) => {
                let count = items.len() as u64;
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64).filter(|m| count < *m) {
                    say(format!("at least {min} items, not {count}"));
                }
                if let Some(max) = schema.get("maxItems").and_then(Value::as_u64).filter(|m| count > *m) {
                    say(format!("at most {max} items, not {count}"));
                }
                if schema.get("uniqueItems") == Some(&Value::Bool(true))
                    && items.iter().enumerate().any(|(i, item)| items[..i].contains(item))
                {
                    say("its items must differ".into());
                }
                let prefix =
                    schema.get("prefixItems").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{path}[{i}]");
                    match (prefix.get(i), schema.get("items")) {
                        (Some(own), _) => self.check(own, item, &at, depth + 1, found),
                        (None, Some(each)) => self.check(each, item, &at, depth + 1, found),
                        (None, None) => {}
                    }
                }
            }
            Value::Object(fields) => {
                let count = fields.len() as u64;
                if let Some(min) = schema.get("minProperties").and_then(Value::as_u64).filter(|m| count < *m)
                {
                    say(format!("at least {min} fields, not {count}"));
                }
                if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64).filter(|m| count > *m)
                {
                    say(format!("at most {max} fields, not {count}"));
                }
                let properties = schema.get("properties").and_then(Value::as_object);
                for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(name) = name.as_str().filter(|name| !fields.contains_key(*name)) {
                        found.push(Violation { path: field_path(path, name), message: "is required".into() });
                    }
                }
                for (name, field) in fields {
                    let at = field_path(path, name);
                    match (properties.and_then(|p| p.get(name)), schema.get("additionalProperties")) {
                        (Some(own), _) => self.check(own, field, &at, depth + 1, found),
                        (None, Some(Value::Bool(false))) => {
                            found.push(Violation {
                                path: at,
                                message: "is not a field of this request".into(),
                            });
                        }
                        (None, Some(other)) => self.check(other, field, &at, depth + 1, found),
                        (None, None) => {}
                    }
                }
            }
            _ => {}
        }
        for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            self.check(part, value, path, depth + 1, found);
        }
        let matching = |key: &str| {
            schema.get(key).and_then(Value::as_array).map(|parts| {
                parts.iter().filter(|part| self.violations(part, value, depth).is_empty()).count()
            })
        };
        if matching("anyOf") == Some(0) {
            found.push(Violation {
                path: path.to_string(),
                message: "matches none of the shapes allowed here".into(),
            });
        }
        if let Some(n) = matching("oneOf").filter(|n| *n != 1) {
            let message = if n == 0 {
                "matches none of the shapes allowed here"
            } else {
                "matches more than one shape"
            };
            found.push(Violation { path: path.to_string(), message: message.into() });
        }
        if let Some(not) = schema.get("not")
            && self.violations(not, value, depth).is_empty()
        {
            found.push(Violation { path: path.to_string(), message: "has a shape not allowed here".into() });
        }
    }

    fn violations(&self, schema: &Value, value: &Value, depth: usize) -> Vec<Violation> {
        let mut found = Vec::new();
        self.check(schema, value, "", depth + 1, &mut found);
        found
    }

    fn string(&self, schema: &serde_json::Map<String, Value>, text: &str, say: &mut impl FnMut(String)) {
        let length = text.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64).filter(|m| length < *m) {
            say(format!("at least {min} characters, not {length}"));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64).filter(|m| length > *m) {
            say(format!("at most {max} characters, not {length}"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            match regex::Regex::new(pattern) {
                Ok(pattern) if !pattern.is_match(text) => say(format!("must match {pattern}")),
                Ok(_) => {}
                // A pattern this checker cannot read is the service's to check.
                Err(_) => {}
            }
        }
    }

    /// The schema a `#/...` JSON pointer names in the document.
    fn resolve(&self, reference: &str) -> Option<&Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }
}

fn number(schema: &serde_json::Map<String, Value>, value: &Value, say: &mut impl FnMut(String)) {
    let Some(n) = value.as_f64() else { return };
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    if let Some(min) = bound("minimum").filter(|m| n < *m) {
        say(format!("at least {min}, not {value}"));
    }
    if let Some(max) = bound("maximum").filter(|m| n > *m) {
        say(format!("at most {max}, not {value}"));
    }
    if let Some(min) = bound("exclusiveMinimum").filter(|m| n <= *m) {
        say(format!("above {min}, not {value}"));
    }
    if let Some(max) = bound("exclusiveMaximum").filter(|m| n >= *m) {
        say(format!("below {max}, not {value}"));
    }
    if let Some(step) =
        bound("multipleOf").filter(|s| *s > 0.0 && ((n / s).round() * s - n).abs() > 1e-9 * n.abs().max(1.0))
    {
        say(format!("a multiple of {step}, not {value}"));
    }
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|n| n.fract() == 0.0),
        _ => true,
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn list(values: &[Value]) -> String {
    values.iter().map(Value::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_references_arrays_and_choices_are_followed() {
        let schema = json!({
            "$defs": { "Line": { "type": "object", "properties": { "sku": { "type": "string", "pattern": "^S-" }, "n": { "type": "integer", "minimum": 1 } }, "required": ["sku"], "additionalProperties": false } },
            "type": "object",
            "properties": {
                "lines": { "type": "array", "items": { "$ref": "#/$defs/Line" }, "minItems": 1 },
                "kind": { "enum": ["a", "b"] },
                "note": { "type": ["string", "null"], "maxLength": 3 },
                "pay": { "oneOf": [ { "type": "string" }, { "type": "integer" } ] }
            }
        });
        let broken = check(
            &schema,
            &json!({ "lines": [{ "sku": "X-1", "n": 1.5, "extra": 1 }, { "n": 2 }], "kind": "c", "note": "long", "pay": [] }),
        );
        let said: Vec<(&str, &str)> = broken.iter().map(|v| (v.path.as_str(), v.message.as_str())).collect();
        assert_eq!(
            said,
            [
                ("kind", "must be one of \"a\", \"b\""),
                ("lines[0].extra", "is not a field of this request"),
                ("lines[0].n", "must be integer, not a number"),
                ("lines[0].sku", "must match ^S-"),
                ("lines[1].sku", "is required"),
                ("note", "at most 3 characters, not 4"),
                ("pay", "matches none of the shapes allowed here"),
            ]
        );
        assert!(
            check(&schema, &json!({ "lines": [{ "sku": "S-1", "n": 2 }], "note": null, "pay": 3 }))
                .is_empty()
        );
        assert_eq!(check(&schema, &json!([1]))[0].message, "must be object, not an array");
    }

    #[test]
    fn a_schema_that_refers_to_itself_ends() {
        let schema = json!({ "$ref": "#" });
        let broken = check(&schema, &json!({}));
        assert!(broken.iter().any(|v| v.message.contains("deeper than")), "{broken:?}");
        // Twice over at every level: a bounded number of checks, not 2^64.
        let branching = json!({ "allOf": [{ "$ref": "#" }, { "$ref": "#" }] });
        let broken = check(&branching, &json!({}));
        assert!(broken.len() <= 3, "{broken:?}");
        assert!(check(&json!({ "$ref": "#/$defs/None" }), &json!(1))[0].message.contains("leads nowhere"));
    }
}
