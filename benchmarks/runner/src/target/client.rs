//! Sending one request to a stack, over its transport, and reading the status and body back.

use std::sync::Arc;
use std::time::Duration;

use bench_results::{ErrorKind, NoAnswer};
use bytes::{Bytes, BytesMut};

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
    /// Its kind in the error counts.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::NoAnswer(match self {
            SendError::Timeout => NoAnswer::Timeout,
            SendError::NoResponders => NoAnswer::NoResponders,
            SendError::Transport(_) => NoAnswer::Error,
        })
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
        /// The load's connections, and the runner's own questions' (`GET /stats`).
        connections: Arc<HttpConnections>,
        /// For an echo control: the path every request goes to.
        echo_path: Option<String>,
    },
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

    /// `POST`s `body` to `path`; answers the status and body.
    pub async fn post(&self, path: &str, body: Bytes) -> Result<(u16, Bytes), SendError> {
        self.send("POST", path, body).await
    }

    /// `GET`s `path`; answers the status and body.
    pub async fn get(&self, path: &str) -> Result<(u16, Bytes), SendError> {
        self.send("GET", path, Bytes::new()).await
    }

    async fn send(&self, method: &str, path: &str, body: Bytes) -> Result<(u16, Bytes), SendError> {
        let mut request = Vec::with_capacity(160 + path.len() + body.len());
        request.extend_from_slice(method.as_bytes());
        request.push(b' ');
        request.extend_from_slice(path.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        request.extend_from_slice(self.authority.as_bytes());
        request.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
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
        Ok((status, body))
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
        Ok(match spec.transport {
            Transport::Nats => {
                let nats = spec.connect_nats_with(Some(timeout)).await?;
                StackClient::Nats { nats, echo_subject: spec.echo_subject.clone(), timeout }
            }
            Transport::Http => {
                let connections = Arc::new(HttpConnections::to(spec, timeout)?);
                StackClient::Http { connections, echo_path: spec.echo_subject.clone() }
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
    /// Sends `request` to its endpoint and reads the answer with the framework's envelope reader:
    /// for the runner's own questions (a stock level, a customer's activity), where anything but
    /// a success is a failure to report.
    pub async fn ask<R: natsrpc::Request>(&self, request: &R) -> Result<R::Response, natsrpc::RpcError> {
        use natsrpc::RpcError;
        let body = serde_json::to_vec(request).map_err(|e| RpcError::Encode(e.to_string()))?;
        let subject = R::SUBJECT.to_string();
        let (_, reply) = self.send(R::SUBJECT, Bytes::from(body)).await.map_err(|error| match error {
            SendError::Timeout => RpcError::Timeout { subject, after: self.timeout() },
            SendError::NoResponders => RpcError::NoResponders { subject },
            SendError::Transport(why) => RpcError::Transport(why),
        })?;
        natsrpc::envelope::decode_reply(natsrpc::Codec::Json, &reply)
    }

    /// How long a request waits for its answer.
    fn timeout(&self) -> Duration {
        match self {
            StackClient::Nats { timeout, .. } => *timeout,
            StackClient::Http { connections, .. } => connections.timeout,
        }
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
        let spec = StackSpec::new(Transport::Http, format!("http://{address}"));
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
