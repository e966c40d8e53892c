//! Each transport's ceiling on this machine: responders that answer every request with its own body
//! and do nothing else. They are the control stacks `nats-raw-echo` and `http-raw-echo` (run by
//! `echo-vs-raw --serve-raw` and `--serve-raw-http`), which show how fast a stack on that transport
//! could possibly answer here, and what `bench selfcheck` measures the load generators against.

use std::net::SocketAddr;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::BenchError;

/// The subject the NATS echo answers on.
pub const NATS_SUBJECT: &str = "raw.echo";

/// The largest body the HTTP echo takes, as the HTTP stacks (1 MiB).
pub const HTTP_MAX_BODY: usize = 1024 * 1024;

fn terminate() -> Result<tokio::signal::unix::Signal, BenchError> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(BenchError::program("SIGTERM handler"))
}

/// Subscribes to [`NATS_SUBJECT`] and publishes each payload back to its reply subject, until
/// SIGTERM.
pub async fn serve_nats(url: &str) -> Result<(), BenchError> {
    let nats = async_nats::connect(url).await.map_err(BenchError::nats)?;
    let mut requests = nats.subscribe(NATS_SUBJECT).await.map_err(BenchError::nats)?;
    let mut terminate = terminate()?;
    loop {
        tokio::select! {
            _ = terminate.recv() => return Ok(()),
            message = requests.next() => {
                let Some(message) = message else { return Ok(()) };
                if let Some(reply) = message.reply {
                    let _ = nats.publish(reply, message.payload).await;
                }
            }
        }
    }
}

/// Answers every HTTP/1.1 request on `address` with `200` and its own body (`413` above
/// [`HTTP_MAX_BODY`]), keeping connections alive, until SIGTERM.
pub async fn serve_http(address: SocketAddr) -> Result<(), BenchError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(BenchError::program(format!("listening on {address}")))?;
    let mut terminate = terminate()?;
    loop {
        tokio::select! {
            _ = terminate.recv() => return Ok(()),
            accepted = listener.accept() => {
                // A failed accept (out of descriptors, a reset) loses that connection only; a short
                // pause keeps one that fails again at once (descriptors) from spinning a core.
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(echo);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

async fn echo(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (status, body) = match Limited::new(request.into_body(), HTTP_MAX_BODY).collect().await {
        Ok(collected) => (StatusCode::OK, collected.to_bytes()),
        Err(_) => (StatusCode::PAYLOAD_TOO_LARGE, Bytes::new()),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    Ok(response)
}
