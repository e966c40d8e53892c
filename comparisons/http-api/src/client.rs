//! Calls between services over HTTP: a [`natsrpc::Transport`] that posts each request to
//! `{base}/{service}/{endpoint}` with a pooled client (keep-alive connections, reused across calls),
//! so that a service's typed calls to another cross HTTP on the HTTP stacks as they cross NATS on
//! the NATS stack.

use std::collections::HashMap;
use std::time::Duration;

use natsrpc::RpcError;
use natsrpc::client::{EncodedCall, EncodedReply, PendingReply, Transport};

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
    pub fn with_list(mut self, list: &str) -> Result<Self, RpcError> {
        for entry in list.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let (service, base) = entry.split_once('=').ok_or_else(|| {
                let entry = natsrpc::escape::escape(entry, 128);
                RpcError::config(format!("{entry:?}: expected service=http://host:port"))
            })?;
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

/// The largest answer a peer's body may be: far above any the services send (their replies fit
/// NATS's `max_payload` too), so that a peer gone wrong fails the call instead of filling memory.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// The HTTP transport.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: Pool,
    routes: Routes,
}

/// hyper's pooled client over TCP, or TLS for `https://` routes.
type Pool = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

impl HttpTransport {
    /// Calls services at `routes`, keeping up to 64 idle connections per host; `https://` ones
    /// trusting the system's CAs.
    pub fn new(routes: Routes) -> Result<Self, RpcError> {
        Self::trusting(routes, None)
    }

    /// [`HttpTransport::new`], trusting for `https://` the CAs of the PEM file `ca` (`PEERS_CA`)
    /// instead of the system's.
    pub fn trusting(routes: Routes, ca: Option<&std::path::Path>) -> Result<Self, RpcError> {
        let tls = crate::tls::client_config(ca, "PEERS_CA").map_err(|e| RpcError::Config(Box::new(e)))?;
        let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Ok(Self { client, routes })
    }
}

impl Transport for HttpTransport {
    fn request<'a>(&'a self, request: &'a EncodedCall) -> PendingReply<'a> {
        Box::pin(async move {
            use http_body_util::BodyExt;
            let subject = request.subject;
            let mut sending = axum::http::Request::post(self.routes.url(subject));
            if let Some(correlation_id) = &request.correlation_id {
                sending = sending.header(natsrpc::headers::CORRELATION_ID, correlation_id.as_str());
            }
            if let Some(traceparent) = &request.traceparent {
                sending = sending.header(natsrpc::headers::TRACEPARENT, traceparent.as_str());
            }
            let sending = sending
                .header(natsrpc::headers::CONTENT_TYPE, request.content_type)
                .header(natsrpc::headers::DEADLINE, itoa::Buffer::new().format(request.timeout.as_millis()))
                .body(http_body_util::Full::new(request.payload.clone()))
                .map_err(|e| RpcError::transport_explained(format!("{subject}: {e}"), e))?;
            let exchange = async {
                let response = self.client.request(sending).await.map_err(|error| {
                    if let Some(refusal) = refused_tls(&error) {
                        // Something listens, but the TLS handshake failed: no retry will mend that.
                        RpcError::transport_explained(format!("TLS failed (PEERS_CA?): {refusal}"), error)
                    } else if error.is_connect() {
                        // Nothing listens there: as NATS's "no responders", worth a retry.
                        RpcError::NoResponders { subject: subject.to_string() }
                    } else {
                        RpcError::transport(error)
                    }
                })?;
                let status = response.status().as_u16();
                let content_type = response
                    .headers()
                    .get(axum::http::header::CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_string);
                // A peer is trusted no further than its answer's size.
                let payload = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                    .collect()
                    .await
                    .map_err(|e| RpcError::transport_explained(format!("{subject}: {e}"), e))?
                    .to_bytes();
                Ok(EncodedReply { status, content_type, payload })
            };
            tokio::time::timeout(request.timeout, exchange)
                .await
                .map_err(|_| RpcError::Timeout { subject: subject.to_string(), after: request.timeout })?
        })
    }
}

/// The TLS refusal somewhere in `error`'s causes (rustls's, as its text), if that is what failed.
fn refused_tls(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.is::<rustls::Error>() {
            return Some(current.to_string());
        }
        // rustls's error travels inside I/O errors, whose `source` skips what they wrap.
        let wrapped = current.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        cause = match wrapped {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    None
}
