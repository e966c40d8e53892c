//! Reading a [`MetricsServer`](crate::metrics::MetricsServer)'s page as Prometheus would.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The samples at `http://{address}/metrics`, each value by its series (the line's name and
/// labels as written, such as `natsrpc_requests_total{service="shop",endpoint="cancel"}`).
/// An answer other than 200, or a line that is not a sample, comment or blank, is an error.
pub async fn scrape_metrics(address: &str) -> std::io::Result<BTreeMap<String, f64>> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: scrape\r\n\r\n").await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no page within 10 s"))??;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if !head.starts_with("HTTP/1.1 200 ") {
        return Err(invalid(format!("answered {:?}", head.lines().next().unwrap_or_default())));
    }
    let mut samples = BTreeMap::new();
    for line in body.lines().filter(|line| !line.is_empty() && !line.starts_with('#')) {
        let (series, value) =
            line.rsplit_once(' ').ok_or_else(|| invalid(format!("not a sample: {line}")))?;
        let value = value.parse().map_err(|_| invalid(format!("not a number: {line}")))?;
        samples.insert(series.to_string(), value);
    }
    Ok(samples)
}
