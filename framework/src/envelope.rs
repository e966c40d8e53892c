//! The reply envelope: one shape for success and failure, in either codec.
//!
//! ```json
//! {"ok": true,  "data": { ...the endpoint's response... }}
//! {"ok": false, "error": { ...a ServiceError... }}
//! ```
//!
//! An error reply also carries the NATS Services API headers `Nats-Service-Error` and
//! `Nats-Service-Error-Code`, so tools that know nothing of the envelope still see the failure.

use serde::{Deserialize, Serialize};

use crate::codec::{Codec, DecodeError};
use crate::error::{RpcError, ServiceError};

#[derive(Serialize)]
struct Success<'a, T> {
    ok: bool,
    data: &'a T,
}

#[derive(Serialize)]
struct Failure<'a> {
    ok: bool,
    error: &'a ServiceError,
}

/// The envelope as read back by a client.
#[derive(Deserialize)]
struct Reply<T> {
    ok: bool,
    data: Option<T>,
    error: Option<ServiceError>,
}

/// Encodes a successful reply.
pub fn encode_success<T: Serialize>(codec: Codec, data: &T) -> Result<Vec<u8>, ServiceError> {
    codec
        .encode(&Success { ok: true, data })
        .map_err(|e| ServiceError::internal(format!("could not encode the response: {e}")))
}

/// Encodes an error reply. A `ServiceError` always encodes, in both codecs.
pub fn encode_failure(codec: Codec, error: &ServiceError) -> Vec<u8> {
    codec.encode(&Failure { ok: false, error }).unwrap_or_else(|_| {
        // Unreachable in practice (plain strings and numbers); keep a reply going out regardless.
        br#"{"ok":false,"error":{"status":500,"kind":"internal","code":"internal","message":"unencodable error"}}"#
            .to_vec()
    })
}

/// Decodes a reply into the contract's response or the service's error.
pub fn decode_reply<T: serde::de::DeserializeOwned>(codec: Codec, body: &[u8]) -> Result<T, RpcError> {
    let reply: Reply<T> = codec.decode(body).map_err(RpcError::Decode)?;
    let missing = |member: &str, message: String| {
        RpcError::Decode(DecodeError { codec, path: Some(member.to_string()), message })
    };
    match (reply.ok, reply.data, reply.error) {
        (true, Some(data), _) => Ok(data),
        // `data: null` is a legitimate `()` or `None` response.
        (true, None, _) => {
            use serde::de::IntoDeserializer;
            T::deserialize(().into_deserializer()).map_err(|e: serde::de::value::Error| {
                missing("data", format!("a success reply without it: {e}"))
            })
        }
        (false, _, Some(error)) => Err(error.into()),
        (false, _, None) => Err(missing("error", "an error reply without it".to_string())),
    }
}
