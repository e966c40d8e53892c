//! Sending one request to a stack, over its transport, and reading the status and body back.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

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

/// A stack's client: NATS request/reply, or HTTP/1.1 over keep-alive connections of its own.
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
        /// For the runner's own questions (`GET /stats`).
        http: reqwest::Client,
        /// `http://host:port`.
        base: String,
        /// The load's connections.
        connections: Arc<HttpConnections>,
        /// For an echo control: the path every request goes to.
        echo_path: Option<String>,
    },
}

/// Keep-alive HTTP/1.1 connections, each carrying one request at a time, as wrk's do: a request
/// takes an idle one or opens one, and gives it back once answered. hyper's connection API with
/// no pool, no redirects, no per-request URL parsing: the load generator costs an HTTP stack about
/// what its NATS client costs a NATS stack (reqwest cost twice as much CPU per request, and on a
/// shared machine that CPU is taken from the stack measured).
pub struct HttpConnections {
    /// `host:port`.
    authority: String,
    /// `/service/endpoint` of each `service.endpoint`.
    paths: std::collections::HashMap<String, String>,
    idle: std::sync::Mutex<Vec<SendRequest<Full<Bytes>>>>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnections").field("authority", &self.authority).finish_non_exhaustive()
    }
}

impl HttpConnections {
    /// `POST`s `body` to `path`; answers the status and body.
    async fn post(&self, path: &str, body: Bytes) -> Result<(u16, Bytes), SendError> {
        let request = hyper::Request::post(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| SendError::Transport(e.to_string()))?;
        // The timeout covers the whole exchange, opening a connection included (a stack whose
        // accept queue is full leaves a connect waiting).
        let exchange = async {
            let mut connection = self.take().await?;
            let response =
                connection.send_request(request).await.map_err(|e| SendError::Transport(e.to_string()))?;
            let status = response.status().as_u16();
            let body =
                response.into_body().collect().await.map_err(|e| SendError::Transport(e.to_string()))?;
            Ok::<_, SendError>((connection, status, body.to_bytes()))
        };
        // A connection whose answer did not come in time is dropped, not reused: its answer may
        // still arrive.
        let (connection, status, body) =
            tokio::time::timeout(self.timeout, exchange).await.map_err(|_| SendError::Timeout)??;
        self.give_back(connection);
        Ok((status, body))
    }

    /// An idle connection that is still open, or a new one.
    async fn take(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
            match idle {
                Some(mut connection) if !connection.is_closed() => {
                    if connection.ready().await.is_ok() {
                        return Ok(connection);
                    }
                }
                Some(_closed) => {}
                None => return self.open().await,
            }
        }
    }

    async fn open(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        let stream = tokio::net::TcpStream::connect(&self.authority).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => SendError::NoResponders,
            _ => SendError::Transport(e.to_string()),
        })?;
        let _ = stream.set_nodelay(true);
        let (connection, driving) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Transport(e.to_string()))?;
        // The connection's I/O runs on its own task until the connection is dropped or closed.
        tokio::spawn(driving);
        Ok(connection)
    }

    fn give_back(&self, connection: SendRequest<Full<Bytes>>) {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(connection);
    }
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
                    .build()
                    .map_err(|e| crate::BenchError::Process(e.to_string()))?;
                let authority = crate::stacks::host_port(&spec.url)
                    .ok_or_else(|| crate::BenchError::Config(format!("bad url {}", spec.url)))?
                    .to_string();
                let paths = crate::workload::ENDPOINTS
                    .iter()
                    .map(|e| (e.to_string(), format!("/{}", e.replacen('.', "/", 1))))
                    .collect();
                let connections = Arc::new(HttpConnections {
                    authority,
                    paths,
                    idle: std::sync::Mutex::default(),
                    timeout,
                });
                StackClient::Http {
                    http,
                    base: spec.url.clone(),
                    connections,
                    echo_path: spec.echo_subject.clone(),
                }
            }
        })
    }

    /// Whether it talks to an echo control (which answers with the request's body, no envelope).
    pub fn is_echo(&self) -> bool {
        matches!(
            self,
            StackClient::Nats { echo_subject: Some(_), .. } | StackClient::Http { echo_path: Some(_), .. }
        )
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
            StackClient::Http { connections, echo_path, .. } => {
                match echo_path.as_ref().or_else(|| connections.paths.get(subject)) {
                    Some(path) => connections.post(path, body).await,
                    None => connections.post(&format!("/{}", subject.replacen('.', "/", 1)), body).await,
                }
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
