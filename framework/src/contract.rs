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

    /// `"{SERVICE}.{ENDPOINT}"`: the NATS subject the request is sent to.
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
/// `request!(Req => Resp, service = "svc", endpoint = "verb")`, optionally followed by
/// `, idempotent = true` and by `, schema`. With `schema`, the endpoint's `$SRV.INFO` entry carries
/// the JSON Schemas of both types (`request_schema`, `response_schema`); both must derive
/// `schemars::JsonSchema`, and the calling crate must depend on `schemars` 1.x. See [`Request`] for
/// an example.
#[macro_export]
macro_rules! request {
    // The one impl both forms below expand to.
    (@impl $request:ty => $response:ty, $service:literal, $endpoint:literal, [$($idempotent:literal)?], { $($extra:tt)* }) => {
        impl $crate::Request for $request {
            type Response = $response;
            const SERVICE: &'static str = $service;
            const ENDPOINT: &'static str = $endpoint;
            const SUBJECT: &'static str = concat!($service, ".", $endpoint);
            $(const IDEMPOTENT: bool = $idempotent;)?
            $($extra)*
        }
    };
    ($request:ty => $response:ty, service = $service:literal, endpoint = $endpoint:literal $(, idempotent = $idempotent:literal)? $(,)?) => {
        $crate::request!(@impl $request => $response, $service, $endpoint, [$($idempotent)?], {});
    };
    ($request:ty => $response:ty, service = $service:literal, endpoint = $endpoint:literal $(, idempotent = $idempotent:literal)?, schema $(,)?) => {
        $crate::request!(@impl $request => $response, $service, $endpoint, [$($idempotent)?], {
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

/// Whether `name` is usable as a service or endpoint name: the NATS Services API allows
/// `[A-Za-z0-9_-]+`, and a dot would break the `{service}.{endpoint}` subject scheme.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
