//! The gateway: HTTP in, AMQP RPC ([`crate::rpc`]) out, within the gateway's timeout (or the
//! caller's `X-Deadline-Ms`, when sooner).

use std::time::Duration;

use http_api::{Answer, Backend, Call};

use crate::rpc::{AmqpRpc, Request};
use crate::{AmqpError, CORRELATION_ID, STATUS, number_header, text_header};

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

    async fn call(&self, call: Call) -> Answer {
        let request = Request {
            service: &call.service,
            subject: &call.subject,
            content_type: call.content_type.as_deref(),
            correlation_id: call.correlation_id.as_deref(),
            timeout: call.deadline.map_or(self.timeout, |deadline| deadline.min(self.timeout)),
            body: &call.body,
        };
        let reply = match self.rpc.call(request).await {
            Ok(reply) => reply,
            Err(error) => {
                let mut answer = Answer::refusal(error);
                answer.correlation_id = call.correlation_id.clone();
                return answer;
            }
        };
        let properties = &reply.properties;
        Answer {
            status: number_header(properties.headers(), STATUS).map_or(500, |status| status as u16),
            content_type: properties
                .content_type()
                .as_ref()
                .map_or_else(|| "application/json".to_string(), |value| value.as_str().to_string()),
            correlation_id: text_header(properties.headers(), CORRELATION_ID).map(str::to_string),
            body: reply.data.into(),
        }
    }
}
