//! Sending one request to a stack, over its transport, and reading the status and body back.

use std::time::Duration;

use bytes::Bytes;

use crate::config::{StackSpec, Transport};

/// How a request failed to get any answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Nothing came back within the request timeout.
    Timeout,
    /// Nothing listens (NATS no responders, HTTP connection refused).
    NoResponders,
    /// Any other transport failure.
    Transport(String),
}

impl SendError {
    /// Its name in the error counts.
    pub fn kind(&self) -> &'static str {
        match self {
            SendError::Timeout => "transport:timeout",
            SendError::NoResponders => "transport:no_responders",
            SendError::Transport(_) => "transport:error",
        }
    }
}

/// A stack's client: NATS request/reply, or HTTP with pooled keep-alive connections.
#[derive(Debug, Clone)]
pub enum StackClient {
    /// `{service}.{endpoint}` over NATS.
    Nats {
        /// The connection.
        nats: async_nats::Client,
        /// For an echo control: the subject every request goes to.
        echo_subject: Option<String>,
        /// The request timeout.
        timeout: Duration,
    },
    /// `POST {base}/{service}/{endpoint}`.
    Http {
        /// The pooled client.
        http: reqwest::Client,
        /// `http://host:port`.
        base: String,
        /// Each endpoint's URL, parsed once rather than on every request.
        urls: std::collections::HashMap<String, reqwest::Url>,
    },
}

impl StackClient {
    /// Connects to `spec`'s stack, giving up on a request after `timeout`.
    pub async fn connect(spec: &StackSpec, timeout: Duration) -> Result<Self, crate::BenchError> {
        Ok(match spec.transport {
            Transport::Nats => {
                let nats = async_nats::ConnectOptions::new()
                    .request_timeout(Some(timeout))
                    .connect(&spec.url)
                    .await
                    .map_err(|e| crate::BenchError::Nats(e.to_string()))?;
                StackClient::Nats { nats, echo_subject: spec.echo_subject.clone(), timeout }
            }
            Transport::Http => {
                let http = reqwest::Client::builder()
                    .timeout(timeout)
                    .pool_max_idle_per_host(4096)
                    .tcp_nodelay(true)
                    .http1_only()
                    .build()
                    .map_err(|e| crate::BenchError::Process(e.to_string()))?;
                let urls = crate::workload::ENDPOINTS
                    .iter()
                    .filter_map(|e| {
                        let url = format!("{}/{}", spec.url, e.replacen('.', "/", 1));
                        Some((e.to_string(), reqwest::Url::parse(&url).ok()?))
                    })
                    .collect();
                StackClient::Http { http, base: spec.url.clone(), urls }
            }
        })
    }

    /// Whether it talks to an echo control (which answers with the request's body, no envelope).
    pub fn is_echo(&self) -> bool {
        matches!(self, StackClient::Nats { echo_subject: Some(_), .. })
    }

    /// Sends a JSON `body` to `subject` (`service.endpoint`); answers the status and body.
    pub async fn send(&self, subject: &str, body: Bytes) -> Result<(u16, Bytes), SendError> {
        match self {
            StackClient::Nats { nats, echo_subject, timeout } => {
                let reply = match echo_subject {
                    Some(echo) => nats.request(echo.clone(), body).await,
                    None => {
                        let mut headers = async_nats::HeaderMap::new();
                        headers.insert(natsrpc::headers::CONTENT_TYPE, "application/json");
                        nats.request_with_headers(subject.to_string(), headers, body).await
                    }
                };
                let reply = reply.map_err(|error| match error.kind() {
                    async_nats::client::RequestErrorKind::TimedOut => SendError::Timeout,
                    async_nats::client::RequestErrorKind::NoResponders => SendError::NoResponders,
                    _ => SendError::Transport(format!("{error} (timeout {timeout:?})")),
                })?;
                let status = natsrpc::headers::reply_status(reply.headers.as_ref());
                Ok((status, reply.payload))
            }
            StackClient::Http { http, base, urls } => {
                let url = match urls.get(subject) {
                    Some(url) => url.clone(),
                    None => reqwest::Url::parse(&format!("{base}/{}", subject.replacen('.', "/", 1)))
                        .map_err(|e| SendError::Transport(e.to_string()))?,
                };
                let response = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(http_error)?;
                let status = response.status().as_u16();
                let body = response.bytes().await.map_err(http_error)?;
                Ok((status, body))
            }
        }
    }
}

impl StackClient {
    /// Sends `request` to `subject` and reads the answer's data: for the runner's own questions
    /// (a stock level, a customer's activity), where anything but a success is a failure to report.
    pub async fn ask<A: serde::de::DeserializeOwned>(
        &self,
        subject: &str,
        request: &impl serde::Serialize,
    ) -> Result<A, String> {
        #[derive(serde::Deserialize)]
        struct Envelope<A> {
            data: Option<A>,
        }
        let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        let (status, reply) =
            self.send(subject, Bytes::from(body)).await.map_err(|e| e.kind().to_string())?;
        let envelope: Option<Envelope<A>> = serde_json::from_slice(&reply).ok();
        match envelope.and_then(|e| e.data) {
            Some(data) if status == 200 => Ok(data),
            _ => Err(format!("{subject}: {status} {}", String::from_utf8_lossy(&reply))),
        }
    }
}

fn http_error(error: reqwest::Error) -> SendError {
    if error.is_timeout() {
        SendError::Timeout
    } else if error.is_connect() {
        SendError::NoResponders
    } else {
        SendError::Transport(error.to_string())
    }
}
