//! Sending one request to a stack, over its transport, and reading the status and body back.

use std::sync::Arc;
use std::time::Duration;

use bench_results::{ErrorKind, NoAnswer};
use bytes::{Bytes, BytesMut};
use natsrpc::RpcError;
use natsrpc::client::{EncodedCall, EncodedReply, PendingReply, Transport};

use crate::config::{self, StackSpec};

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
    /// Its kind in the error counts.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::NoAnswer(match self {
            SendError::Timeout => NoAnswer::Timeout,
            SendError::NoResponders => NoAnswer::NoResponders,
            SendError::Transport(_) => NoAnswer::Error,
        })
    }
}

/// A stack's client: a framework [`Transport`] that reaches it, which the runner's typed
/// questions go through too.
///
/// The load sends raw bytes and reads back the status and body ([`StackClient::send`]); the
/// runner's own questions go through [`natsrpc::Client`] over the same transport
/// ([`StackClient::ask`]), with the framework's one envelope reader. Both send what a plain
/// client of each transport sends, and no more: the body and its `Content-Type`, no
/// `X-Deadline-Ms` (with it, the NATS services would give up at the runner's timeout under
/// overload, and the HTTP ones, which wrk-like clients do not tell, would not), no correlation id.
/// A stack on NATS is reached by [`NatsLoad`]; a stack on HTTP by [`HttpConnections`], the
/// runner's HTTP/1.1 client (cheaper than hyper's by a quarter, see its doc); an HTTP echo
/// control by [`EchoPath`].
#[derive(Clone)]
pub struct StackClient {
    transport: Arc<dyn Transport>,
    /// The typed client over `transport`.
    typed: natsrpc::Client,
    /// Where the services' stats are read (`$SRV.STATS` or `GET /stats`).
    stats: StatsSource,
    echo: bool,
    timeout: Duration,
}

impl std::fmt::Debug for StackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackClient")
            .field("echo", &self.echo)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where a stack's services tell their stats.
#[derive(Debug, Clone)]
pub enum StatsSource {
    /// `$SRV.STATS.{service}` on this NATS connection.
    Nats(async_nats::Client),
    /// `GET /stats` on these connections.
    Http(Arc<HttpConnections>),
}

/// NATS request/reply as the load sends it: each call to its endpoint's subject with the body's
/// `Content-Type` only; to an echo control, the bare body to the echo's one subject, as a raw
/// client would send it (the control measures the transport, not a framework). The request
/// timeout is the connection's (`StackSpec::connect_nats_with`).
pub struct NatsLoad {
    /// The connection.
    pub nats: async_nats::Client,
    /// For an echo control: the subject every request goes to.
    pub echo: Option<async_nats::Subject>,
    /// The connection's request timeout.
    pub timeout: Duration,
}

impl Transport for NatsLoad {
    fn request<'a>(&'a self, request: &'a EncodedCall) -> PendingReply<'a> {
        Box::pin(async move {
            let reply = match &self.echo {
                Some(echo) => self.nats.request(echo.clone(), request.payload.clone()).await,
                None => {
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert(natsrpc::headers::CONTENT_TYPE, request.content_type);
                    self.nats.request_with_headers(request.subject, headers, request.payload.clone()).await
                }
            };
            let subject = || self.echo.as_deref().unwrap_or(request.subject).to_string();
            let reply = reply.map_err(|error| match error.kind() {
                async_nats::client::RequestErrorKind::TimedOut => {
                    RpcError::Timeout { subject: subject(), after: self.timeout }
                }
                async_nats::client::RequestErrorKind::NoResponders => {
                    RpcError::NoResponders { subject: subject() }
                }
                _ => RpcError::transport(error),
            })?;
            let status = natsrpc::headers::reply_status(reply.headers.as_ref());
            Ok(EncodedReply { status, content_type: None, payload: reply.payload })
        })
    }
}

/// An HTTP echo control's transport: every request, whatever its endpoint, goes to the echo's one
/// path.
pub struct EchoPath {
    /// The connections.
    pub connections: Arc<HttpConnections>,
    /// The echo's path.
    pub path: String,
}

impl Transport for EchoPath {
    fn request<'a>(&'a self, request: &'a EncodedCall) -> PendingReply<'a> {
        Box::pin(async move {
            let connections = &self.connections;
            let sent = connections.post(&self.path, request.payload.clone()).await;
            sent.map_err(|e| e.into_rpc(&self.path, connections.timeout))
        })
    }
}

/// Keep-alive HTTP/1.1 connections, each carrying one request at a time, as wrk's do: a request
/// takes an idle one or opens one, writes the request in one write, reads the answer on the same
/// task, and gives the connection back. No pool task, no channel to a connection task, no
/// per-request URL parsing: the load generator costs an HTTP stack about what its NATS client costs
/// a NATS stack (reqwest cost twice as much CPU per request, hyper's connection API a quarter more
/// than wrk, and on a shared machine that CPU is taken from the stack measured).
pub struct HttpConnections {
    /// `host:port`.
    authority: String,
    /// For `https://`: the TLS client and the name the server's certificate must carry.
    tls: Option<(tokio_rustls::TlsConnector, rustls_pki_types::ServerName<'static>)>,
    /// `/service/endpoint` of each `service.endpoint`.
    paths: std::collections::HashMap<String, String>,
    idle: std::sync::Mutex<Vec<Connection>>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnections").field("authority", &self.authority).finish_non_exhaustive()
    }
}

/// One keep-alive connection and what it has read past the last answer (nothing, with servers
/// that do not answer early).
struct Connection {
    stream: Stream,
    read: BytesMut,
}

/// A connection's bytes: plain TCP, or TLS over it.
type Stream = tokio_util::either::Either<
    tokio::net::TcpStream,
    Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
>;

/// The runner's own requests' `Content-Type`.
const JSON: &str = "application/json";

/// The largest response head read (status line and headers).
const MAX_HEAD: usize = 64 * 1024;

/// The most headers a response may have.
const MAX_HEADERS: usize = 64;

/// The largest answer body read (the largest the stacks send is a few hundred KiB): a server that
/// says or sends more fails that request instead of filling the generator's memory.
const MAX_BODY: usize = 64 * 1024 * 1024;

fn too_large() -> Exchange {
    Exchange::Failed(format!("answer body above {MAX_BODY} bytes"))
}

impl HttpConnections {
    /// Connections to `spec`'s stack (`http://` or `https://`), each request giving up after
    /// `timeout`.
    pub fn to(spec: &StackSpec, timeout: Duration) -> Result<Self, crate::BenchError> {
        let authority = crate::config::stack::host_port(&spec.url)
            .ok_or_else(|| crate::BenchError::Config(format!("bad url {}", spec.url)))?
            .to_string();
        let tls = match spec.http_tls()? {
            None => None,
            Some(config) => {
                let host = authority.rsplit_once(':').map_or(authority.as_str(), |(host, _)| host);
                let name = rustls_pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| crate::BenchError::Config(format!("{}: {e}", spec.url)))?;
                Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
            }
        };
        let paths = crate::endpoint::Endpoint::ALL
            .iter()
            .map(|e| (e.subject().to_string(), format!("/{}", e.subject().replacen('.', "/", 1))))
            .collect();
        Ok(Self { authority, tls, paths, idle: std::sync::Mutex::default(), timeout })
    }

    /// `POST`s a JSON `body` to `path`; answers the status and body.
    pub async fn post(&self, path: &str, body: Bytes) -> Result<EncodedReply, SendError> {
        self.send("POST", path, JSON, body).await
    }

    /// `GET`s `path`; answers the status and body.
    pub async fn get(&self, path: &str) -> Result<EncodedReply, SendError> {
        self.send("GET", path, JSON, Bytes::new()).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<EncodedReply, SendError> {
        let mut request = Vec::with_capacity(160 + path.len() + body.len());
        request.extend_from_slice(method.as_bytes());
        request.push(b' ');
        request.extend_from_slice(path.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        request.extend_from_slice(self.authority.as_bytes());
        request.extend_from_slice(b"\r\nContent-Type: ");
        request.extend_from_slice(content_type.as_bytes());
        request.extend_from_slice(b"\r\nContent-Length: ");
        request.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(&body);
        // The timeout covers the whole exchange, opening a connection included (a stack whose
        // accept queue is full leaves a connect waiting). A connection whose answer did not come in
        // time is dropped with the exchange, not reused: its answer may still arrive.
        let exchange = async {
            let (mut connection, reused) = self.take().await?;
            match connection.exchange(&request).await {
                Ok(answer) => Ok((connection, answer)),
                // A kept-alive connection the server closed while it was idle: once more, on a
                // new one (nothing of the request was answered, so nothing was half done).
                Err(Exchange::ClosedBeforeAnswer) if reused => {
                    let mut connection = self.open().await?;
                    let answer = connection.exchange(&request).await.map_err(Exchange::into_send_error)?;
                    Ok((connection, answer))
                }
                Err(error) => Err(error.into_send_error()),
            }
        };
        let (connection, (status, body, keep_alive)) =
            tokio::time::timeout(self.timeout, exchange).await.map_err(|_| SendError::Timeout)??;
        if keep_alive {
            self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(connection);
        }
        // The stacks answer in the request's codec, and the runner sends JSON.
        Ok(EncodedReply { status, content_type: None, payload: body })
    }

    /// An idle connection (and `true`), or a new one.
    async fn take(&self) -> Result<(Connection, bool), SendError> {
        let idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        match idle {
            Some(connection) => Ok((connection, true)),
            None => Ok((self.open().await?, false)),
        }
    }

    async fn open(&self) -> Result<Connection, SendError> {
        let stream = tokio::net::TcpStream::connect(&self.authority).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => SendError::NoResponders,
            _ => SendError::Transport(e.to_string()),
        })?;
        let _ = stream.set_nodelay(true);
        let stream = match &self.tls {
            None => Stream::Left(stream),
            Some((connector, name)) => Stream::Right(Box::new(
                connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| SendError::Transport(format!("TLS failed: {e}")))?,
            )),
        };
        Ok(Connection { stream, read: BytesMut::with_capacity(16 * 1024) })
    }
}

/// `POST /{service}/{endpoint}` for each call (or the path itself, for a subject that is one:
/// `/...`). The body goes as sent, with its `Content-Type` and none of natsrpc's other headers,
/// as wrk sends it.
impl Transport for HttpConnections {
    fn request<'a>(&'a self, request: &'a EncodedCall) -> PendingReply<'a> {
        Box::pin(async move {
            let subject = request.subject;
            let path = match self.paths.get(subject) {
                Some(path) => std::borrow::Cow::Borrowed(path.as_str()),
                None if subject.starts_with('/') => std::borrow::Cow::Borrowed(subject),
                None => std::borrow::Cow::Owned(format!("/{}", subject.replacen('.', "/", 1))),
            };
            let sent = self.send("POST", &path, request.content_type, request.payload.clone()).await;
            sent.map_err(|e| e.into_rpc(subject, self.timeout))
        })
    }
}

impl SendError {
    /// The framework's error for it, on `subject` (`after`: the timeout that ran out).
    fn into_rpc(self, subject: &str, after: Duration) -> RpcError {
        match self {
            SendError::Timeout => RpcError::Timeout { subject: subject.to_string(), after },
            SendError::NoResponders => RpcError::NoResponders { subject: subject.to_string() },
            SendError::Transport(why) => RpcError::transport(why),
        }
    }

    /// The runner's error for the framework's.
    fn from_rpc(error: RpcError) -> Self {
        match error {
            RpcError::Timeout { .. } => SendError::Timeout,
            RpcError::NoResponders { .. } => SendError::NoResponders,
            other => SendError::Transport(other.to_string()),
        }
    }
}

/// How one exchange on a connection failed.
#[derive(Debug)]
enum Exchange {
    /// The server closed the connection before a byte of the answer.
    ClosedBeforeAnswer,
    /// Anything else.
    Failed(String),
}

impl Exchange {
    fn into_send_error(self) -> SendError {
        match self {
            Exchange::ClosedBeforeAnswer => {
                SendError::Transport("connection closed before the answer".into())
            }
            Exchange::Failed(why) => SendError::Transport(why),
        }
    }
}

impl Connection {
    /// Writes `request` and reads its answer: status, body, and whether the connection may carry
    /// another request.
    async fn exchange(&mut self, request: &[u8]) -> Result<(u16, Bytes, bool), Exchange> {
        use tokio::io::AsyncWriteExt;
        let failed = |e: std::io::Error| Exchange::Failed(e.to_string());
        self.stream.write_all(request).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                Exchange::ClosedBeforeAnswer
            }
            _ => failed(e),
        })?;
        let (status, head, framing, keep_alive) = loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.read) {
                Ok(httparse::Status::Complete(head)) => {
                    let status = response.code.unwrap_or(0);
                    let (framing, keep_alive) = framing(&response);
                    // An informational answer (100 Continue) precedes the real one.
                    if (100..200).contains(&status) {
                        let _ = self.read.split_to(head);
                        continue;
                    }
                    break (status, head, framing, keep_alive);
                }
                Ok(httparse::Status::Partial) if self.read.len() < MAX_HEAD => {
                    if self.fill().await? == 0 {
                        return Err(if self.read.is_empty() {
                            Exchange::ClosedBeforeAnswer
                        } else {
                            Exchange::Failed("connection closed in the answer's head".into())
                        });
                    }
                }
                Ok(httparse::Status::Partial) => {
                    return Err(Exchange::Failed("answer head too large".into()));
                }
                Err(e) => return Err(Exchange::Failed(format!("bad answer: {e}"))),
            }
        };
        let _ = self.read.split_to(head);
        let body = match framing {
            _ if status == 204 || status == 304 => Bytes::new(),
            Framing::Length(length) if length > MAX_BODY => return Err(too_large()),
            Framing::Length(length) => {
                while self.read.len() < length {
                    if self.fill().await? == 0 {
                        return Err(Exchange::Failed("connection closed in the answer's body".into()));
                    }
                }
                self.read.split_to(length).freeze()
            }
            Framing::Chunked => self.chunked().await?,
            Framing::UntilClose => {
                while self.fill().await? > 0 {
                    if self.read.len() > MAX_BODY {
                        return Err(too_large());
                    }
                }
                let body = self.read.split().freeze();
                return Ok((status, body, false));
            }
        };
        // Bytes past the answer mean the two sides disagree on framing: do not reuse.
        Ok((status, body, keep_alive && self.read.is_empty()))
    }

    /// Reads more into the buffer; answers how much (0 at the end of the stream).
    async fn fill(&mut self) -> Result<usize, Exchange> {
        use tokio::io::AsyncReadExt;
        if self.read.capacity() - self.read.len() < 4096 {
            self.read.reserve(16 * 1024);
        }
        match self.stream.read_buf(&mut self.read).await {
            // A TLS peer that closes without a close_notify: closed, as a plain one would be.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
            read => read.map_err(|e| Exchange::Failed(e.to_string())),
        }
    }

    /// A chunked body, joined (trailers are read and dropped).
    async fn chunked(&mut self) -> Result<Bytes, Exchange> {
        let mut body = BytesMut::new();
        loop {
            let (start, size) = match httparse::parse_chunk_size(&self.read) {
                Ok(httparse::Status::Complete((start, size))) => {
                    (start, usize::try_from(size).map_err(|_| Exchange::Failed("chunk too large".into()))?)
                }
                Ok(httparse::Status::Partial) => {
                    if self.fill().await? == 0 {
                        return Err(Exchange::Failed("connection closed in a chunk's size".into()));
                    }
                    continue;
                }
                Err(_) => return Err(Exchange::Failed("bad chunk size".into())),
            };
            if size == 0 {
                // Trailers, if any, then the empty line.
                let _ = self.read.split_to(start);
                loop {
                    if let Some(end) = self.read.windows(2).position(|w| w == b"\r\n") {
                        let line = self.read.split_to(end + 2);
                        if line.len() == 2 {
                            return Ok(body.freeze());
                        }
                    } else if self.read.len() > MAX_HEAD {
                        return Err(Exchange::Failed("trailers too large".into()));
                    } else if self.fill().await? == 0 {
                        return Err(Exchange::Failed("connection closed in the trailers".into()));
                    }
                }
            }
            // Checked before reading it: a chunk that says it is huge is refused, not awaited.
            if size > MAX_BODY - body.len() {
                return Err(too_large());
            }
            while self.read.len() < start + size + 2 {
                if self.fill().await? == 0 {
                    return Err(Exchange::Failed("connection closed in a chunk".into()));
                }
            }
            let _ = self.read.split_to(start);
            body.extend_from_slice(&self.read.split_to(size));
            if self.read.split_to(2).as_ref() != b"\r\n" {
                return Err(Exchange::Failed("a chunk without its CRLF".into()));
            }
        }
    }
}

/// How an answer's body ends.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// The body's framing, and whether the server keeps the connection open (HTTP/1.1 unless it says
/// `close`; HTTP/1.0 only when it says `keep-alive`).
fn framing(response: &httparse::Response<'_, '_>) -> (Framing, bool) {
    let mut framing = Framing::UntilClose;
    let mut keep_alive = response.version == Some(1);
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            if let (Framing::UntilClose, Ok(length)) = (&framing, value.parse()) {
                framing = Framing::Length(length);
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if value.to_ascii_lowercase().ends_with("chunked") {
                framing = Framing::Chunked;
            }
        } else if header.name.eq_ignore_ascii_case("connection") {
            let value = value.to_ascii_lowercase();
            if value.contains("close") {
                keep_alive = false;
            } else if value.contains("keep-alive") {
                keep_alive = true;
            }
        }
    }
    if matches!(framing, Framing::UntilClose) {
        keep_alive = false;
    }
    (framing, keep_alive)
}

impl StackClient {
    /// Connects to `spec`'s stack, giving up on a request after `timeout`.
    pub async fn connect(spec: &StackSpec, timeout: Duration) -> Result<Self, crate::BenchError> {
        let (transport, stats): (Arc<dyn Transport>, StatsSource) = match spec.transport {
            config::Transport::Nats => {
                let nats = spec.connect_nats_with(Some(timeout)).await?;
                let echo = spec.echo_subject.as_deref().map(async_nats::Subject::from);
                let transport: Arc<dyn Transport> = Arc::new(NatsLoad { nats: nats.clone(), echo, timeout });
                (transport, StatsSource::Nats(nats))
            }
            config::Transport::Http => {
                let connections = Arc::new(HttpConnections::to(spec, timeout)?);
                let transport: Arc<dyn Transport> = match &spec.echo_subject {
                    Some(path) => {
                        Arc::new(EchoPath { connections: Arc::clone(&connections), path: path.clone() })
                    }
                    None => Arc::clone(&connections) as Arc<dyn Transport>,
                };
                (transport, StatsSource::Http(connections))
            }
        };
        let typed = natsrpc::Client::over(Arc::clone(&transport)).with_timeout(timeout);
        Ok(Self { transport, typed, stats, echo: spec.echo_subject.is_some(), timeout })
    }

    /// Whether it talks to an echo control (which answers with the request's body, no envelope).
    pub fn is_echo(&self) -> bool {
        self.echo
    }

    /// Where the stack's services tell their stats.
    pub fn stats_source(&self) -> &StatsSource {
        &self.stats
    }

    /// Sends a JSON `body` to `subject` (`service.endpoint`); answers the status and body.
    pub async fn send(&self, subject: &'static str, body: Bytes) -> Result<(u16, Bytes), SendError> {
        self.send_as(subject, natsrpc::Codec::Json, body).await
    }

    /// Sends `body`, encoded in `codec`, to `subject` (`service.endpoint`, or an HTTP stack's
    /// path `/...`); answers the status and body.
    pub async fn send_as(
        &self,
        subject: &'static str,
        codec: natsrpc::Codec,
        body: Bytes,
    ) -> Result<(u16, Bytes), SendError> {
        let call = EncodedCall::new(subject, codec.content_type(), self.timeout, body);
        let reply = self.transport.request(&call).await.map_err(SendError::from_rpc)?;
        Ok((reply.status, reply.payload))
    }

    /// Sends `request` to its endpoint through the typed client: for the runner's own questions
    /// (a stock level, a customer's activity), where anything but a success is a failure to report.
    pub async fn ask<R: natsrpc::Request>(&self, request: &R) -> Result<R::Response, RpcError> {
        self.typed.call(request).await
    }
}

#[cfg(test)]
mod tests {
    //! The HTTP/1.1 client against a real TCP server that answers with scripted bytes: the framings
    //! servers use, answers cut into pieces, connections kept, closed, or closed while idle.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// What the server does with each request it reads on a connection, in order.
    #[derive(Clone)]
    enum Step {
        /// Writes these bytes, a few at a time.
        Answer(&'static str),
        /// Writes these bytes, then closes the connection.
        AnswerAndClose(&'static str),
        /// Closes the connection as soon as the request is read, answering nothing.
        Close,
    }

    /// Serves each connection with `steps` (all connections alike); counts connections.
    async fn server(steps: Vec<Step>) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                let index = counted.fetch_add(1, Ordering::SeqCst);
                // The first connection follows the script from its first step, later ones from the
                // step after a Close, so that a retry finds an answer.
                let start = if index == 0 {
                    0
                } else {
                    steps.iter().position(|s| matches!(s, Step::Close)).map_or(0, |i| i + 1)
                };
                let steps = steps[start..].to_vec();
                tokio::spawn(async move {
                    for step in steps {
                        if read_request(&mut stream).await.is_none() {
                            return;
                        }
                        match step {
                            Step::Close => return,
                            Step::Answer(bytes) | Step::AnswerAndClose(bytes) => {
                                for piece in bytes.as_bytes().chunks(7) {
                                    stream.write_all(piece).await.unwrap();
                                    stream.flush().await.unwrap();
                                    tokio::task::yield_now().await;
                                }
                                if matches!(step, Step::AnswerAndClose(_)) {
                                    return;
                                }
                            }
                        }
                    }
                    // Keeps the connection open, idle, until the client goes.
                    let _ = stream.read(&mut [0u8; 1]).await;
                });
            }
        });
        (address, connections)
    }

    /// Reads one request (head and Content-Length body).
    async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
        let mut read = Vec::new();
        loop {
            if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&read[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if read.len() >= end + 4 + length {
                    return Some(read);
                }
            }
            let mut buffer = [0u8; 1024];
            let n = stream.read(&mut buffer).await.ok()?;
            if n == 0 {
                return None;
            }
            read.extend_from_slice(&buffer[..n]);
        }
    }

    async fn http_client(address: &str) -> StackClient {
        let spec = StackSpec::new(config::Transport::Http, format!("http://{address}"));
        StackClient::connect(&spec, Duration::from_secs(5)).await.unwrap()
    }

    async fn send(client: &StackClient) -> Result<(u16, Bytes), SendError> {
        client.send("ecommerce.restock", Bytes::from_static(b"{\"sku\":\"SKU-00001\",\"quantity\":5}")).await
    }

    #[tokio::test]
    async fn content_length_answers_share_one_kept_connection() {
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";
        let (address, connections) = server(vec![Step::Answer(answer); 3]).await;
        let client = http_client(&address).await;
        for _ in 0..3 {
            assert_eq!(send(&client).await.unwrap(), (200, Bytes::from_static(b"{\"ok\":true}")));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn chunked_answers_with_trailers_and_informational_answers_are_read_whole() {
        let chunked = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 422 Unprocessable Entity\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"ok\"\r\n7;ext=1\r\n:false}\r\n0\r\nx-trailer: 1\r\n\r\n";
        let (address, connections) = server(vec![Step::Answer(chunked); 2]).await;
        let client = http_client(&address).await;
        for _ in 0..2 {
            assert_eq!(send(&client).await.unwrap(), (422, Bytes::from_static(b"{\"ok\":false}")));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1, "the chunked answer kept the connection");
    }

    #[tokio::test]
    async fn a_closing_server_gets_a_new_connection_each_time() {
        let close = "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}";
        let until_close = "HTTP/1.0 200 OK\r\n\r\nall of it";
        let (address, connections) = server(vec![Step::AnswerAndClose(close)]).await;
        let client = http_client(&address).await;
        for _ in 0..2 {
            assert_eq!(send(&client).await.unwrap(), (503, Bytes::from_static(b"{}")));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 2);
        let (address, _) = server(vec![Step::AnswerAndClose(until_close)]).await;
        assert_eq!(
            send(&http_client(&address).await).await.unwrap(),
            (200, Bytes::from_static(b"all of it"))
        );
    }

    #[tokio::test]
    async fn a_kept_connection_closed_while_idle_is_replaced_once() {
        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        // The first connection answers once, then closes on the next request; the second answers.
        let (address, connections) =
            server(vec![Step::Answer(answer), Step::Close, Step::Answer(answer)]).await;
        let client = http_client(&address).await;
        assert_eq!(send(&client).await.unwrap().0, 200);
        assert_eq!(send(&client).await.unwrap().0, 200, "sent again on a new connection");
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn garbage_a_cut_or_huge_answer_and_nothing_listening_are_errors_not_hangs() {
        let (address, _) = server(vec![Step::AnswerAndClose("SMTP ready\r\n\r\n")]).await;
        assert!(matches!(send(&http_client(&address).await).await, Err(SendError::Transport(_))));
        let cut = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort";
        let (address, _) = server(vec![Step::AnswerAndClose(cut)]).await;
        let error = send(&http_client(&address).await).await.unwrap_err();
        assert!(matches!(&error, SendError::Transport(why) if why.contains("body")), "{error:?}");
        for huge in [
            "HTTP/1.1 200 OK\r\ncontent-length: 99999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nFFFFFFFFFF\r\n",
        ] {
            let (address, _) = server(vec![Step::Answer(huge)]).await;
            let error = send(&http_client(&address).await).await.unwrap_err();
            assert!(matches!(&error, SendError::Transport(why) if why.contains("above")), "{error:?}");
        }
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
        assert_eq!(send(&http_client(&free).await).await.unwrap_err(), SendError::NoResponders);
    }
}
