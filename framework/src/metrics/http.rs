//! The scrape endpoint: `GET /metrics` over HTTP/1.1, one request per connection.
//!
//! Written out rather than taken from an HTTP framework, so that a service on NATS does not carry
//! one for a single read-only page. What it takes from outside is bounded: a request head of at
//! most [`MAX_HEAD`] bytes, read within [`READ_TIMEOUT`], at most [`MAX_CONNECTIONS`] at a time
//! (more are closed at once), and nothing of what a client sends is echoed back or logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The longest request head (request line and headers) read.
const MAX_HEAD: usize = 8 * 1024;
/// The time a client has to send its request head, and then to take the answer.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long, and how much, a client's unread bytes are read and dropped before closing.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;
/// Scrapes served at once.
const MAX_CONNECTIONS: usize = 16;

/// Serves [`render`](super::render) at `GET /metrics` until stopped or dropped.
#[derive(Debug)]
pub struct MetricsServer {
    address: SocketAddr,
    stop: CancellationToken,
    serving: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `address` (`127.0.0.1:9464`; port 0 takes a free one).
    pub async fn bind(address: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let stop = CancellationToken::new();
        let serving = tokio::spawn(accept(listener, stop.clone()));
        Ok(Self { address, stop, serving: Some(serving) })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops listening and waits until the listener is closed.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(serving) = self.serving.take() {
            let _ = serving.await;
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept(listener: TcpListener, stop: CancellationToken) {
    let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, say: waiting a moment beats spinning on the error.
                tracing::warn!(%error, "metrics: could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Over the bound the connection is dropped, closed unanswered: a scraper retries.
        let Ok(place) = Arc::clone(&places).try_acquire_owned() else { continue };
        let stop = stop.clone();
        tokio::spawn(async move {
            let _place = place;
            tokio::select! {
                () = stop.cancelled() => {}
                _ = tokio::time::timeout(READ_TIMEOUT * 2, exchange(stream)) => {}
            }
        });
    }
}

/// Reads one request head and answers it.
async fn exchange(mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let answer = loop {
        if let Some(end) = find_end(&head) {
            break answer(&head[..end]);
        }
        if head.len() >= MAX_HEAD {
            break Answer::status(431, "Request Header Fields Too Large");
        }
        let read = match tokio::time::timeout(READ_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(read) => read?,
            Err(_) => break Answer::status(408, "Request Timeout"),
        };
        if read == 0 {
            return Ok(()); // the client went away before asking
        }
        head.extend_from_slice(&chunk[..read]);
    };
    stream.write_all(&answer.bytes()).await?;
    stream.shutdown().await?;
    // Closing with the client's bytes still unread would reset the connection, and a client
    // still sending (a head too large) could lose the answer: what is left is read and dropped,
    // for a moment and up to a bound, as HTTP servers linger.
    let mut left = LINGER_BYTES;
    while left > 0 {
        match tokio::time::timeout(LINGER, stream.read(&mut chunk)).await {
            Ok(Ok(read)) if read > 0 => left = left.saturating_sub(read),
            _ => break,
        }
    }
    Ok(())
}

fn find_end(head: &[u8]) -> Option<usize> {
    head.windows(4).position(|w| w == b"\r\n\r\n").or_else(|| head.windows(2).position(|w| w == b"\n\n"))
}

struct Answer {
    status: u16,
    reason: &'static str,
    extra: &'static str,
    body: String,
    /// `HEAD`: the length of the body, but not the body.
    without_body: bool,
}

impl Answer {
    fn status(status: u16, reason: &'static str) -> Self {
        Self { status, reason, extra: "", body: format!("{status} {reason}\n"), without_body: false }
    }

    fn bytes(&self) -> Vec<u8> {
        let content_type = if self.status == 200 {
            "text/plain; version=0.0.4; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        };
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
            self.status,
            self.reason,
            self.body.len(),
            self.extra,
        )
        .into_bytes();
        if !self.without_body {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

/// The answer to a request head: its request line is all that counts.
fn answer(head: &[u8]) -> Answer {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).unwrap_or_default().trim_end_matches('\r');
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Answer::status(400, "Bad Request");
    };
    if !version.starts_with("HTTP/1.") {
        return Answer::status(505, "HTTP Version Not Supported");
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return Answer::status(404, "Not Found");
    }
    match method {
        "GET" | "HEAD" => Answer {
            status: 200,
            reason: "OK",
            extra: "",
            body: super::render(),
            without_body: method == "HEAD",
        },
        _ => Answer { extra: "Allow: GET, HEAD\r\n", ..Answer::status(405, "Method Not Allowed") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_get_of_the_metrics_page_is_answered_with_it() {
        assert_eq!(answer(b"GET /metrics HTTP/1.1\r\nHost: x").status, 200);
        assert_eq!(answer(b"GET /metrics?name[]=x HTTP/1.0").status, 200);
        let head = answer(b"HEAD /metrics HTTP/1.1");
        assert!(head.without_body && !head.bytes().ends_with(b"\n\n") && head.status == 200);
        assert_eq!(answer(b"POST /metrics HTTP/1.1").status, 405);
        assert_eq!(answer(b"GET / HTTP/1.1").status, 404);
        assert_eq!(answer(b"GET /metrics SPDY/3").status, 505);
        assert_eq!(answer(b"GET  /metrics HTTP/1.1").status, 400);
        assert_eq!(answer(b"\xff\xfe").status, 400);
        assert_eq!(answer(b"").status, 400);
    }
}
