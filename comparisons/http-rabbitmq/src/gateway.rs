//! The gateway: HTTP in, AMQP RPC ([`crate::rpc`]) out, within the gateway's timeout (or the
//! caller's `X-Deadline-Ms`, when sooner).

use std::time::Duration;

use http_api::{Answer, Backend, Call};

use crate::rpc::{AmqpRpc, Request};
use crate::{AmqpError, CORRELATION_ID, reply_status, text_header};

/// The gateway's [`Backend`]: forwards each call to the workers over AMQP.
pub struct Gateway {
    rpc: AmqpRpc,
    timeout: Duration,
    services: Vec<String>,
}

impl Gateway {
    /// Connects to `broker` with `lanes` channels; calls to `services` (in the queues
    /// named with `queue_prefix`) give up after `timeout`.
    pub async fn connect(
        broker: &crate::Broker,
        queue_prefix: &str,
        services: Vec<String>,
        lanes: usize,
        timeout: Duration,
    ) -> Result<Self, AmqpError> {
        let rpc = AmqpRpc::connect(broker, "http-rabbitmq gateway", queue_prefix, lanes).await?;
        Ok(Self { rpc, timeout, services })
    }
}

impl Backend for Gateway {
    fn services(&self) -> Vec<String> {
        self.services.clone()
    }

    /// Healthy while the broker can be reached (asking connects again when it was lost).
    async fn healthy(&self) -> bool {
        self.rpc.is_connected().await
    }

    async fn call(&self, call: Call) -> Answer {
        let request = Request {
            service: &call.service,
            subject: call.head.subject(),
            content_type: call.head.content_type(),
            correlation_id: call.head.correlation_id(),
            traceparent: call.head.traceparent(),
            timeout: call.head.budget().map_or(self.timeout, |budget| budget.min(self.timeout)),
            body: &call.body,
        };
        let reply = match self.rpc.call(request).await {
            Ok(reply) => reply,
            // No worker answered in time, or none serves it: refused as the workers refuse.
            Err(error) => return natsrpc::Dispatched::refused(call.head, &call.body, error).into(),
        };
        let properties = &reply.properties;
        Answer {
            status: reply_status(properties.headers()),
            content_type: properties
                .content_type()
                .as_ref()
                .map_or_else(|| "application/json".to_string(), |value| value.as_str().to_string()),
            correlation_id: text_header(properties.headers(), CORRELATION_ID).map(str::to_string),
            body: reply.data.into(),
        }
    }
}
