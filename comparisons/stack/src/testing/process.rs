//! A stack's HTTP binary run as its own process, as the benchmark scripts run it.

use std::time::{Duration, Instant};

use natsrpc::testing::ServiceProcess;

pub use natsrpc::testing::free_port;

/// Starts an HTTP stack binary on a free port (`HTTP_ADDR`) and waits (up to 20 s) for its
/// `GET /health`; answers the process and its base URL. Another port is tried when the one picked
/// was taken before the binary bound it.
pub async fn spawn_http(
    binary: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(ServiceProcess, String), String> {
    let http = reqwest::Client::new();
    let mut last = String::new();
    for _ in 0..3 {
        let address = format!("127.0.0.1:{}", free_port().map_err(|e| e.to_string())?);
        let mut all = env.to_vec();
        all.push(("HTTP_ADDR", &address));
        let mut process =
            ServiceProcess::spawn_with(binary, args, &all).map_err(|e| format!("{binary}: {e}"))?;
        let base = format!("http://{address}");
        match wait_for_health(&mut process, &http, &base).await {
            Ok(()) => return Ok((process, base)),
            Err(error) => last = format!("{binary}: {error}"),
        }
    }
    Err(last)
}

async fn wait_for_health(
    process: &mut ServiceProcess,
    http: &reqwest::Client,
    base: &str,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(response) = http.get(format!("{base}/health")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if let Some(status) = process.exited() {
            return Err(format!("exited at start: {status}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("no answer from {base}/health within 20 s"))
}

/// Restocks an item at `base` (`http://host:port`) until it answers 200, up to `within`: a stack
/// that has just started may refuse the first calls (nothing listening yet, or a 503 while its
/// workers come up). Answers the last failure when it never does.
pub async fn restock_until_ok(base: &str, within: Duration) -> Result<(), String> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + within;
    loop {
        let sent = http
            .post(format!("{base}/ecommerce/restock"))
            .header("content-type", "application/json")
            .body(r#"{"sku":"SKU-00001","quantity":5}"#)
            .send()
            .await;
        let last = match sent.map(|r| r.status().as_u16()) {
            Ok(200) => return Ok(()),
            Ok(status) => format!("answered {status}"),
            Err(error) => error.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!("{base} did not restock within {within:?}: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
