//! Contracts: a request type names its service, its endpoint and its response type.
//!
//! The subject a request travels on is derived from the type, so call sites never spell an endpoint
//! name: `client.call(&CreateOrder { .. })` knows where to go and what comes back.

use serde::{Serialize, de::DeserializeOwned};
use validator::Validate;

/// A request type of one endpoint.
///
/// Implement it with the [`request!`](crate::request) macro, which keeps the subject consistent with the
/// service and endpoint names:
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use validator::Validate;
///
/// #[derive(Serialize, Deserialize, Validate)]
/// struct GetOrder {
///     #[validate(length(min = 1, max = 64))]
///     order_id: String,
/// }
///
/// #[derive(Serialize, Deserialize)]
/// struct Order {
///     order_id: String,
///     total_cents: u64,
/// }
///
/// natsrpc::request!(GetOrder => Order, service = "shop", endpoint = "get_order", idempotent = true);
///
/// use natsrpc::Request;
/// assert_eq!(GetOrder::SUBJECT, "shop.get_order");
/// assert!(GetOrder::IDEMPOTENT);
/// ```
pub trait Request: Serialize + DeserializeOwned + Validate + Send + Sync + 'static {
    /// What the endpoint answers on success.
    type Response: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The service's name, as registered with the NATS Services API.
    const SERVICE: &'static str;

    /// The endpoint's name: a snake_case verb such as `create_order`.
    const ENDPOINT: &'static str;

    /// The NATS subject the request is sent to: `"{SERVICE}.{ENDPOINT}"`, `"{group}.{ENDPOINT}"`
    /// for an endpoint in a group, or a subject of the endpoint's own (see [`request!`](crate::request)).
    const SUBJECT: &'static str;

    /// Whether calling the endpoint twice with the same request has the effect of calling it once.
    /// Only idempotent requests are retried by a client-wide [`RetryPolicy`](crate::RetryPolicy).
    const IDEMPOTENT: bool = false;

    /// Metadata the endpoint shows in its `$SRV.INFO` entry. `request!(..., schema)` puts the
    /// request's and the response's JSON Schemas here, as `request_schema` and `response_schema`.
    fn endpoint_metadata() -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Implements [`Request`] for a type in one line.
///
/// `request!(Req => Resp, service = "svc", endpoint = "verb")`, optionally followed, in this
/// order, by:
/// - `, group = "admin"`: the endpoint is in a group, as the NATS Services API's groups are, and
///   its subject is `admin.verb`; or `, subject = "v2.svc.verb"`: a subject of its own. Either way
///   the service subscribes to it apart from its `svc.>`, and the typed client sends there. It
///   must not begin with another service's name: that service's `{name}.>` would answer it 404.
/// - `, idempotent = true`.
/// - `, schema`: the endpoint's `$SRV.INFO` entry carries the JSON Schemas of both types
///   (`request_schema`, `response_schema`); both must derive `schemars::JsonSchema`, and the
///   calling crate must depend on `schemars` 1.x.
///
/// See [`Request`] for an example, and this for the subjects:
///
/// ```
/// # #[derive(serde::Serialize, serde::Deserialize, validator::Validate)] struct Reindex {}
/// # #[derive(serde::Serialize, serde::Deserialize, validator::Validate)] struct Health {}
/// natsrpc::request!(Reindex => u64, service = "search", endpoint = "reindex", group = "search.admin");
/// natsrpc::request!(Health => bool, service = "search", endpoint = "health", subject = "health.search");
/// use natsrpc::Request;
/// assert_eq!(Reindex::SUBJECT, "search.admin.reindex");
/// assert_eq!(Health::SUBJECT, "health.search");
/// ```
#[macro_export]
macro_rules! request {
    // The one impl both forms below expand to.
    (@impl $request:ty => $response:ty, $service:literal, $endpoint:literal, [$($group:literal)?], [$($subject:literal)?], [$($idempotent:literal)?], { $($extra:tt)* }) => {
        impl $crate::Request for $request {
            type Response = $response;
            const SERVICE: &'static str = $service;
            const ENDPOINT: &'static str = $endpoint;
            const SUBJECT: &'static str = $crate::request!(@subject $service, $endpoint, [$($group)?], [$($subject)?]);
            $(const IDEMPOTENT: bool = $idempotent;)?
            $($extra)*
        }
    };
    (@subject $service:literal, $endpoint:literal, [], []) => { concat!($service, ".", $endpoint) };
    (@subject $service:literal, $endpoint:literal, [$group:literal], []) => { concat!($group, ".", $endpoint) };
    (@subject $service:literal, $endpoint:literal, [], [$subject:literal]) => { $subject };
    ($request:ty => $response:ty, service = $service:literal, endpoint = $endpoint:literal $(, group = $group:literal)? $(, subject = $subject:literal)? $(, idempotent = $idempotent:literal)? $(,)?) => {
        $crate::request!(@impl $request => $response, $service, $endpoint, [$($group)?], [$($subject)?], [$($idempotent)?], {});
    };
    ($request:ty => $response:ty, service = $service:literal, endpoint = $endpoint:literal $(, group = $group:literal)? $(, subject = $subject:literal)? $(, idempotent = $idempotent:literal)?, schema $(,)?) => {
        $crate::request!(@impl $request => $response, $service, $endpoint, [$($group)?], [$($subject)?], [$($idempotent)?], {
            fn endpoint_metadata() -> Vec<(String, String)> {
                let schema = |schema: ::schemars::Schema| schema.as_value().to_string();
                vec![
                    ("request_schema".to_string(), schema(::schemars::schema_for!($request))),
                    ("response_schema".to_string(), schema(::schemars::schema_for!($response))),
                ]
            }
        });
    };
}

/// Why `subject` cannot be an endpoint's: NATS's own rules (dot-separated tokens, none empty, no
/// white space), no wildcard (a typed client sends to one subject), and not the Services API's
/// `$SRV` or a reply inbox.
pub(crate) fn subject_problem(subject: &str) -> Option<&'static str> {
    if subject.is_empty() || subject.len() > 256 {
        return Some("must be 1 to 256 bytes");
    }
    if subject.split('.').any(str::is_empty) {
        return Some("must be dot-separated tokens, none empty");
    }
    if subject.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || !b.is_ascii()) {
        return Some("must be printable ASCII without white space");
    }
    if subject.split('.').any(|token| token == "*" || token == ">") {
        return Some("must name one subject, without wildcards");
    }
    if subject.starts_with("$SRV.") || subject.starts_with("_INBOX.") {
        return Some("must not be in $SRV or _INBOX");
    }
    None
}

/// Whether `name` is usable as a service or endpoint name: the NATS Services API allows
/// `[A-Za-z0-9_-]+`, and a dot would break the `{service}.{endpoint}` subject scheme.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
