//! Requests made to break a rule, for payload generators and the tests and benchmarks that use them.

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
