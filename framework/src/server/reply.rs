//! A reply as the pipeline hands it to every transport, and how the NATS edge frames it.

use async_nats::HeaderMap;
use bytes::Bytes;

use super::context::RequestContext;
use super::head::RequestHead;
use crate::codec::Codec;
use crate::envelope;
use crate::error::ServiceError;
use crate::headers;

/// A reply as a transport should send it: the envelope, its codec, and for an error its status
/// and correlation id, for the transport to frame its own way (NATS headers, an HTTP status and
/// headers, AMQP properties).
#[derive(Debug, Clone)]
pub struct Dispatched {
    /// 200, or the error's status.
    pub status: u16,
    /// The codec the body is in (the request's).
    pub codec: Codec,
    /// The envelope.
    pub body: Bytes,
    /// For error replies: the correlation id (the caller's, escaped, or one made up to find the
    /// log line by).
    pub correlation_id: Option<String>,
    /// For error replies: the error the envelope carries.
    pub error: Option<ServiceError>,
}

impl Dispatched {
    /// A success reply is the envelope alone, in the request's codec: the caller chose the codec
    /// and knows its own correlation id. (Building and writing a header block was a tenth of the
    /// service's instructions per request under callgrind.) Standard NATS services answer the same
    /// way.
    pub(crate) fn success(codec: Codec, body: impl Into<Bytes>) -> Self {
        Self { status: 200, codec, body: body.into(), correlation_id: None, error: None }
    }

    /// An error reply: the envelope, and the correlation id that finds the service's log line.
    pub(crate) fn failure(codec: Codec, correlation_id: &str, error: ServiceError) -> Self {
        Self {
            status: error.status,
            codec,
            body: envelope::encode_failure(codec, &error).into(),
            correlation_id: Some(correlation_id.to_string()),
            error: Some(error),
        }
    }

    /// The reply to a request refused before any endpoint saw it (an unknown endpoint, a body too
    /// large to read, a full endpoint), in the codec its head and body name (JSON when unknown),
    /// with the caller's correlation id (escaped) or a new one: what a transport answers for
    /// refusals of its own, as the pipeline answers its.
    pub fn refused(head: RequestHead, body: &[u8], error: ServiceError) -> Self {
        let codec = head.codec(body).unwrap_or_default();
        Self::failure(codec, RequestContext::new(head).correlation_id(), error)
    }

    /// The NATS headers of the reply: none for a success; for an error `Content-Type`, the
    /// correlation id and the NATS Services API's error headers, which generic NATS tooling reads
    /// without knowing natsrpc's envelope.
    pub fn nats_headers(&self) -> Option<HeaderMap> {
        let error = self.error.as_ref()?;
        let mut map = HeaderMap::new();
        map.insert(headers::names::CONTENT_TYPE, self.codec.content_type());
        // The message and the id may carry the caller's text: escaped and bounded, never raw.
        if let Some(id) = &self.correlation_id {
            headers::insert(&mut map, headers::names::CORRELATION_ID, id);
        }
        headers::insert(&mut map, headers::names::SERVICE_ERROR, &error.message);
        map.insert(headers::names::SERVICE_ERROR_CODE, itoa::Buffer::new().format(error.status));
        Some(map)
    }
}
