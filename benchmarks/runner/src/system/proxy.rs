//! A TCP proxy the runner holds between a stack's processes and one of its private brokers, so
//! that an outage can cut the connection (`cut:`) with both ends still up: the processes' sockets
//! are closed and new ones refused, as a network partition would, until it is joined again. This
//! kernel has no netem; a proxy in the runner needs no privilege.
//!
//! Only a scenario that cuts gets proxies: every byte crosses the runner's process, which costs
//! the load generator CPU and the stack some latency.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::BenchError;

/// A proxy from a port of its own to `upstream`; stopped when dropped.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    cut: watch::Sender<bool>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        // Ends every connection still carried.
        let _ = self.cut.send(true);
    }
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and carries each connection to `upstream`
    /// (`host:port`).
    pub async fn start(upstream: String) -> Result<Self, BenchError> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(BenchError::io("a proxy's port"))?;
        let port = listener.local_addr().map_err(BenchError::io("a proxy's port"))?.port();
        let (cut, watching) = watch::channel(false);
        let upstream: Arc<str> = upstream.into();
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((downstream, _)) = listener.accept().await else {
                    // Out of descriptors, say: a pause, not a spin on the runner's cores.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                if *watching.borrow() {
                    // Cut: refused at once (closed), as a partitioned peer would be unreachable.
                    drop(downstream);
                    continue;
                }
                tokio::spawn(carry(downstream, Arc::clone(&upstream), watching.clone()));
            }
        });
        Ok(Self { port, cut, accepting })
    }

    /// `127.0.0.1:{port}`, where the stack's processes connect.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Cuts every connection it carries and refuses new ones (`true`), or carries them again.
    pub fn set_cut(&self, cut: bool) {
        let _ = self.cut.send(cut);
    }
}

/// Carries one connection both ways until either end closes it or the proxy is cut.
async fn carry(mut downstream: TcpStream, upstream: Arc<str>, mut cut: watch::Receiver<bool>) {
    let Ok(mut upstream) = TcpStream::connect(&*upstream).await else { return };
    let _ = downstream.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut downstream, &mut upstream) => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
    // Both sockets close here.
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_cut_closes_what_it_carries_and_refuses_until_joined_again() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 64];
                    while let Ok(n) = socket.read(&mut buffer).await {
                        if n == 0 || socket.write_all(&buffer[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let proxy = Proxy::start(upstream).await.unwrap();
        let round_trip = |mut socket: TcpStream| async move {
            socket.write_all(b"ping").await.ok()?;
            let mut answer = [0u8; 4];
            socket.read_exact(&mut answer).await.ok()?;
            Some((socket, answer))
        };
        let carried = TcpStream::connect(proxy.address()).await.unwrap();
        let (mut carried, answer) = round_trip(carried).await.unwrap();
        assert_eq!(&answer, b"ping");

        proxy.set_cut(true);
        let mut rest = Vec::new();
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(2), carried.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the carried connection is closed: {read:?}");
        let refused = TcpStream::connect(proxy.address()).await.unwrap();
        assert!(round_trip(refused).await.is_none(), "a new connection is closed at once while cut");

        proxy.set_cut(false);
        let joined = TcpStream::connect(proxy.address()).await.unwrap();
        assert_eq!(round_trip(joined).await.map(|(_, answer)| answer), Some(*b"ping"));
    }
}
