//! Calls between services over HTTP: a [`natsrpc::Transport`] that posts each request to
//! `{base}/{service}/{endpoint}` with a pooled client (keep-alive connections, reused across calls),
//! so that a service's typed calls to another cross HTTP on the HTTP stacks as they cross NATS on
//! the NATS stack.

use std::collections::HashMap;
use std::time::Duration;

use natsrpc::RpcError;
use natsrpc::client::{Incoming, Outgoing, Reply, Transport};

/// Where each service answers: one base URL for all, and any number of exceptions.
#[derive(Debug, Clone)]
pub struct Routes {
    default: String,
    services: HashMap<String, String>,
}

impl Routes {
    /// Every service at `base` (`http://127.0.0.1:8080`).
    pub fn all_at(base: impl Into<String>) -> Self {
        Self { default: trim(base.into()), services: HashMap::new() }
    }

    /// `service` at `base` instead.
    pub fn with(mut self, service: impl Into<String>, base: impl Into<String>) -> Self {
        self.services.insert(service.into(), trim(base.into()));
        self
    }

    /// Exceptions from text such as `analytics=http://127.0.0.1:8091,fileproc=http://127.0.0.1:8092`.
    pub fn with_list(mut self, list: &str) -> Result<Self, String> {
        for entry in list.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let (service, base) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?}: expected service=http://host:port"))?;
            self = self.with(service.trim(), base.trim());
        }
        Ok(self)
    }

    fn url(&self, subject: &str) -> String {
        let (service, endpoint) = subject.split_once('.').unwrap_or((subject, ""));
        let base = self.services.get(service).unwrap_or(&self.default);
        format!("{base}/{service}/{endpoint}")
    }
}

fn trim(base: String) -> String {
    base.trim_end_matches('/').to_string()
}

/// The HTTP transport.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    routes: Routes,
}

impl HttpTransport {
    /// Calls services at `routes`, keeping up to 64 idle connections per host.
    pub fn new(routes: Routes) -> Result<Self, RpcError> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(|error| RpcError::Config(format!("http client: {error}")))?;
        Ok(Self { client, routes })
    }
}

impl Transport for HttpTransport {
    fn request<'a>(&'a self, request: &'a Outgoing) -> Reply<'a> {
        Box::pin(async move {
            let subject = request.subject;
            let mut sending = self.client.post(self.routes.url(subject));
            if let Some(correlation_id) = &request.correlation_id {
                sending = sending.header(natsrpc::headers::CORRELATION_ID, correlation_id.as_str());
            }
            let sent = sending
                .header(natsrpc::headers::CONTENT_TYPE, request.content_type)
                .header(natsrpc::headers::DEADLINE, request.timeout.as_millis().to_string())
                .timeout(request.timeout)
                .body(request.payload.clone())
                .send()
                .await;
            let failed = |error: reqwest::Error| {
                if error.is_timeout() {
                    RpcError::Timeout { subject: subject.to_string(), after: request.timeout }
                } else if error.is_connect() {
                    // Nothing listens there: as NATS's "no responders", worth a retry.
                    RpcError::NoResponders { subject: subject.to_string() }
                } else {
                    RpcError::Transport(error.to_string())
                }
            };
            let response = sent.map_err(failed)?;
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            let payload = response.bytes().await.map_err(failed)?;
            Ok(Incoming { content_type, payload })
        })
    }
}
