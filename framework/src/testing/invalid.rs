//! Requests made to break a rule, and the checked-in samples of every endpoint, for payload
//! generators and the tests and benchmarks that use them.

/// A request that breaks exactly one rule, and the violation it must come back with.
#[derive(Debug, Clone)]
pub struct Invalid<T> {
    /// The request.
    pub request: T,
    /// The violation's path, such as `items[0].quantity`.
    pub path: String,
    /// The violation's code, such as `range`.
    pub code: &'static str,
}

impl<T> Invalid<T> {
    /// A request breaking the rule `code` at `path`.
    pub fn new(request: T, path: &str, code: &'static str) -> Self {
        Self { request, path: path.to_string(), code }
    }
}

impl<T: serde::Serialize> Invalid<T> {
    /// The same case with the request as JSON.
    pub fn to_json(&self) -> Invalid<serde_json::Value> {
        Invalid {
            request: serde_json::to_value(&self.request).unwrap_or_default(),
            path: self.path.clone(),
            code: self.code,
        }
    }
}

/// One endpoint's samples: a valid request and one that breaks a named rule.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The endpoint.
    pub endpoint: &'static str,
    /// A valid request.
    pub valid: serde_json::Value,
    /// A request that breaks one rule.
    pub invalid: Invalid<serde_json::Value>,
}

impl Sample {
    /// A sample from typed requests.
    pub fn new<V: serde::Serialize, I: serde::Serialize>(
        endpoint: &'static str,
        valid: &V,
        invalid: Invalid<I>,
    ) -> Self {
        Self { endpoint, valid: serde_json::to_value(valid).unwrap_or_default(), invalid: invalid.to_json() }
    }
}
