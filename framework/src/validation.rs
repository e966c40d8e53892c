//! Validation: every violation of a request, each with its path into the nested input.
//!
//! `validator` reports errors as a tree (struct fields, list indices, nested structs). The wire wants a
//! flat list a client can show next to its form fields: `customer.shipping_address.country`,
//! `items[2].quantity`. Violations are sorted by path, so the same input always gives the same reply.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use validator::{ValidationError, ValidationErrors, ValidationErrorsKind};

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// Where in the input: `items[2].quantity`; empty for a rule on the whole request.
    pub path: String,
    /// The rule's machine code: `length`, `range`, `email`, or a custom rule's own code.
    pub code: String,
    /// A human-readable sentence.
    pub message: String,
    /// The rule's parameters, such as `{"min": 1, "max": 100}`. The rejected value itself is never
    /// included: it may be a card number or a password.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
}

/// Flattens `validator`'s error tree into violations sorted by path.
pub fn violations(errors: &ValidationErrors) -> Vec<Violation> {
    let mut out = Vec::new();
    collect(errors, "", &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.code.cmp(&b.code)));
    out
}

fn collect(errors: &ValidationErrors, prefix: &str, out: &mut Vec<Violation>) {
    for (field, kind) in errors.errors() {
        // `__all__` holds the struct-level (schema) rules: they belong to the struct itself, or to
        // the field they name in a `field` parameter.
        let path = if field == STRUCT_LEVEL { prefix.to_string() } else { field_path(prefix, field) };
        match kind {
            ValidationErrorsKind::Field(list) => {
                out.extend(list.iter().map(|error| violation(&path, error)));
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

/// How natsrpc names `field` inside `prefix` (`customer.email`; the field alone at the top).
pub fn field_path(prefix: &str, field: &str) -> String {
    if prefix.is_empty() { field.to_string() } else { format!("{prefix}.{field}") }
}

/// Where `validator` files the errors of `#[validate(schema(...))]` rules.
const STRUCT_LEVEL: &str = "__all__";

/// The parameter a struct-level rule sets to name the field its violation is about.
pub const FIELD_PARAM: &str = "field";

/// A struct-level rule's error about one of the struct's fields: its violation's path ends in
/// `field`. For rules that compare fields, such as a postal code whose format depends on the country.
///
/// ```
/// use validator::{Validate, ValidationError};
///
/// #[derive(Validate)]
/// #[validate(schema(function = "postal_code_fits_country"))]
/// struct Address {
///     country: String,
///     postal_code: String,
/// }
///
/// fn postal_code_fits_country(address: &Address) -> Result<(), ValidationError> {
///     if address.country == "DE" && address.postal_code.len() != 5 {
///         return Err(natsrpc::validation::field_error("postal_code", "postal_code_format", "must be 5 digits in DE"));
///     }
///     Ok(())
/// }
///
/// let errors = Address { country: "DE".into(), postal_code: "123".into() }.validate().unwrap_err();
/// let violations = natsrpc::validation::violations(&errors);
/// assert_eq!(violations[0].path, "postal_code");
/// assert_eq!(violations[0].code, "postal_code_format");
/// ```
pub fn field_error(field: &'static str, code: &'static str, message: impl Into<String>) -> ValidationError {
    let mut error = ValidationError::new(code).with_message(message.into().into());
    error.add_param(FIELD_PARAM.into(), &field);
    error
}

/// A float that can be checked for being finite: `f32` and `f64`, by value or by reference (validator
/// passes an `Option`'s value by value and a plain field by reference).
pub trait Float {
    /// Neither NaN nor infinite.
    fn is_finite_number(&self) -> bool;
}

impl Float for f32 {
    fn is_finite_number(&self) -> bool {
        self.is_finite()
    }
}

impl Float for f64 {
    fn is_finite_number(&self) -> bool {
        self.is_finite()
    }
}

impl<F: Float + ?Sized> Float for &F {
    fn is_finite_number(&self) -> bool {
        (**self).is_finite_number()
    }
}

/// The rule every float field wants: NaN and the infinities are refused (code `finite`).
///
/// `validator`'s `range` lets NaN through, since every comparison with NaN is false, and JSON
/// cannot carry NaN but MessagePack can: one NaN accepted makes every sum it joins NaN, which JSON
/// then writes as `null`. Put this rule beside `range` on each `f32`/`f64` field (on an `Option`,
/// it checks the value when there is one):
///
/// ```
/// use validator::Validate;
///
/// #[derive(Validate)]
/// struct Reading {
///     #[validate(custom(function = "natsrpc::validation::finite"), range(min = -1e6, max = 1e6))]
///     celsius: Option<f64>,
///     #[validate(custom(function = "natsrpc::validation::finite"))]
///     weight: f32,
/// }
///
/// assert!(Reading { celsius: Some(21.5), weight: 1.0 }.validate().is_ok());
/// let errors = Reading { celsius: Some(f64::NAN), weight: f32::INFINITY }.validate().unwrap_err();
/// let violations = natsrpc::validation::violations(&errors);
/// let found: Vec<(&str, &str)> = violations.iter().map(|v| (v.path.as_str(), v.code.as_str())).collect();
/// assert_eq!(found, [("celsius", "finite"), ("weight", "finite")]);
/// ```
pub fn finite<F: Float>(value: F) -> Result<(), ValidationError> {
    if value.is_finite_number() { Ok(()) } else { Err(ValidationError::new("finite")) }
}

fn violation(path: &str, error: &ValidationError) -> Violation {
    let field = error.params.get(FIELD_PARAM).and_then(|f| f.as_str());
    let path = match field {
        Some(field) => field_path(path, field),
        None => path.to_string(),
    };
    let params: BTreeMap<String, serde_json::Value> = error
        .params
        .iter()
        .filter(|(name, _)| *name != "value" && *name != FIELD_PARAM)
        .map(|(name, value)| (name.to_string(), value.clone()))
        .collect();
    let message = match &error.message {
        Some(message) => message.to_string(),
        None => default_message(&error.code, &params),
    };
    Violation { path, code: error.code.to_string(), message, params }
}

/// A sentence for the built-in rules when the rule did not set its own message.
fn default_message(code: &str, params: &BTreeMap<String, serde_json::Value>) -> String {
    let bounds = |what: &str| match (params.get("min"), params.get("max"), params.get("equal")) {
        (_, _, Some(equal)) => format!("{what} must be exactly {equal}"),
        (Some(min), Some(max), _) => format!("{what} must be between {min} and {max}"),
        (Some(min), None, _) => format!("{what} must be at least {min}"),
        (None, Some(max), _) => format!("{what} must be at most {max}"),
        (None, None, _) => format!("{what} is out of bounds"),
    };
    match code {
        "length" => bounds("length"),
        "range" => match (params.get("exclusive_min"), params.get("exclusive_max")) {
            (Some(min), _) if !params.contains_key("max") => {
                format!("value must be greater than {min}")
            }
            (_, Some(max)) if !params.contains_key("min") => {
                format!("value must be less than {max}")
            }
            _ => bounds("value"),
        },
        "email" => "must be a valid email address".to_string(),
        "url" => "must be a valid URL".to_string(),
        "required" => "is required".to_string(),
        "regex" => "has an invalid format".to_string(),
        "credit_card" => "must be a valid card number".to_string(),
        "contains" => "must contain the required pattern".to_string(),
        "does_not_contain" => "contains a forbidden pattern".to_string(),
        "must_match" => "must match the other field".to_string(),
        "non_control_character" => "must not contain control characters".to_string(),
        "finite" => "must be a finite number (not NaN or infinite)".to_string(),
        "ip" | "ipv4" | "ipv6" => "must be a valid IP address".to_string(),
        other => format!("breaks the `{other}` rule"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use validator::Validate;

    #[derive(Validate, serde::Serialize)]
    struct Address {
        #[validate(length(equal = 2))]
        country: String,
    }

    #[derive(Validate, serde::Serialize)]
    struct Item {
        #[validate(range(min = 1, max = 100))]
        quantity: u32,
    }

    #[derive(Validate)]
    struct Order {
        #[validate(nested)]
        shipping: Address,
        #[validate(nested)]
        billing: Option<Address>,
        #[validate(length(min = 1), nested)]
        items: Vec<Item>,
        #[validate(email)]
        email: String,
    }

    #[test]
    fn every_violation_is_reported_with_its_path() {
        let order = Order {
            shipping: Address { country: "DEU".into() },
            billing: Some(Address { country: "X".into() }),
            items: vec![Item { quantity: 1 }, Item { quantity: 0 }, Item { quantity: 101 }],
            email: "not-an-email".into(),
        };
        let found = violations(&order.validate().expect_err("order is invalid"));
        let paths: Vec<&str> = found.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            ["billing.country", "email", "items[1].quantity", "items[2].quantity", "shipping.country"]
        );
        let quantity = &found[2];
        assert_eq!(quantity.code, "range");
        assert_eq!(quantity.message, "value must be between 1 and 100");
        assert_eq!(quantity.params.get("max"), Some(&serde_json::json!(100)));
        assert!(!quantity.params.contains_key("value"), "the rejected value is never echoed");
    }
}
