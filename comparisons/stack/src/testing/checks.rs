//! Checks of how the services work together, run against any stack through a typed client over
//! that stack's transport: NATS, HTTP, or HTTP in front of AMQP workers. Each answers `Err` with
//! what it found wrong.

use std::time::Duration;

use analytics::contracts::{QueryAggregates, UserActivity, Window, now_ms};
use ecommerce::contracts::{CancelOrder, GetOrderOverview, GetStock, OrderReceipt};
use ecommerce::payloads::{Payloads, Size};
use futures::future::join_all;
use natsrpc::Client;

fn last_ten_minutes() -> Window {
    let now = now_ms();
    Window { from_ms: now - 600_000, to_ms: now + 1 }
}

/// Count and sum of one event type in analytics over the last ten minutes.
pub async fn counted(client: &Client, kind: &str) -> Result<(u64, f64), String> {
    let query = QueryAggregates { event_type: Some(kind.into()), window: last_ten_minutes() };
    let types = client.call(&query).await.map_err(|e| e.to_string())?.types;
    Ok(types.first().map_or((0, 0.0), |t| (t.count, t.sum)))
}

/// Waits (up to 10 s) until analytics counts at least `count` events of `kind`, then a moment
/// more for anything counted twice to show.
pub async fn wait_for(client: &Client, kind: &str, count: u64) -> Result<(u64, f64), String> {
    for _ in 0..200 {
        if counted(client, kind).await?.0 >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    counted(client, kind).await
}

/// Places 30 orders at once on a stack with `ORDER_EVENTS=on` (catalog of at least 50 items),
/// sends 10 of them again and cancels 5: analytics must count exactly 30 `order_placed`, with the
/// receipts' revenue to the cent, and exactly 5 `order_cancelled`.
pub async fn orders_counted_once(client: &Client, seed: u64) -> Result<(), String> {
    let mut payloads = Payloads::new(seed, 50);
    let orders: Vec<_> = (0..30).map(|_| payloads.create_order(Size::Small)).collect();
    let mut receipts: Vec<OrderReceipt> = Vec::new();
    for placed in join_all(orders.iter().map(|order| client.call(order))).await {
        receipts.push(placed.map_err(|e| format!("create_order: {e}"))?);
    }
    // Sent again, as a client that missed the answers would: placed once, so no new event.
    for order in &orders[..10] {
        client.call(order).await.map_err(|e| format!("create_order again: {e}"))?;
    }
    for receipt in &receipts[..5] {
        let cancel = CancelOrder { order_id: receipt.order_id.clone(), reason: None };
        client.call(&cancel).await.map_err(|e| format!("cancel_order: {e}"))?;
    }
    let revenue: f64 = receipts.iter().map(|r| r.charged.amount_cents as f64 / 100.0).sum();
    let (count, sum) = wait_for(client, "order_placed", 30).await?;
    if count != 30 {
        return Err(format!("{count} order_placed counted for 30 orders"));
    }
    if (sum - revenue).abs() > 1e-6 {
        return Err(format!("revenue {sum} counted against {revenue} charged"));
    }
    let (cancelled, _) = wait_for(client, "order_cancelled", 5).await?;
    if cancelled != 5 {
        return Err(format!("{cancelled} order_cancelled counted for 5 cancellations"));
    }
    Ok(())
}

/// `get_order_overview` on a stack whose services call each other: an order of 4 items with one
/// attachment makes 6 sub-requests whose answers are joined; an attachment that does not exist
/// fails the overview with a 502 naming that part.
pub async fn overview_gathers_its_parts(client: &Client, seed: u64) -> Result<(), String> {
    let order = Payloads::new(seed, 50).order_of(4);
    let receipt = client.call(&order).await.map_err(|e| format!("create_order: {e}"))?;
    let upload = fileproc::payloads::Payloads::new(seed).csv_file(10).begin();
    let started = client.call(&upload).await.map_err(|e| format!("begin_upload: {e}"))?;

    let request =
        GetOrderOverview { order_id: receipt.order_id.clone(), attachments: vec![started.upload_id.clone()] };
    let overview = client.call(&request).await.map_err(|e| format!("get_order_overview: {e}"))?;
    if overview.sub_requests != 6 || overview.stock.len() != 4 || overview.attachments.len() != 1 {
        return Err(format!("expected 6 parts (4 items, activity, 1 attachment), got {overview:?}"));
    }
    for level in &overview.stock {
        let direct = client.call(&GetStock { sku: level.sku.clone() }).await.map_err(|e| e.to_string())?;
        if direct.available > level.available {
            return Err(format!(
                "{}: stock rose from {} to {} with no restock",
                level.sku, level.available, direct.available
            ));
        }
    }
    if overview.attachments[0].phase != "receiving" || overview.attachments[0].upload_id != started.upload_id
    {
        return Err(format!("attachment: {:?}", overview.attachments[0]));
    }
    if overview.activity.customer_id != receipt.customer_id {
        return Err(format!("activity of {:?}", overview.activity));
    }

    let missing =
        GetOrderOverview { order_id: receipt.order_id, attachments: vec!["upl_missing_0001".into()] };
    match client.call(&missing).await {
        Err(error) if error.status() == Some(502) => {
            let natsrpc::RpcError::Remote(remote) = &error else { return Err(format!("{error:?}")) };
            if remote.code != "part_failed"
                || remote.path.as_deref() != Some("fileproc.upload_status[upl_missing_0001]")
            {
                return Err(format!("the failed part is not named: {remote:?}"));
            }
            if !remote.message.contains("upload_not_found") {
                return Err(format!("the part's own error is lost: {}", remote.message));
            }
            Ok(())
        }
        other => Err(format!("an overview with a missing attachment answered {other:?}")),
    }
}

/// `process_batch` sends its accepted records on to analytics: a job of 30 records, 2 of them
/// invalid, adds 28 `record_processed` events; running the same job id again adds none.
pub async fn jobs_reach_analytics(client: &Client, seed: u64) -> Result<(), String> {
    let before = counted(client, "record_processed").await?.0;
    let mut job = fileproc::payloads::Payloads::new(seed).process_batch(30);
    job.job_id = format!("job-forward-{seed}-{}", now_ms());
    job.records[3].price_cents = 0;
    job.records[17].name.clear();
    let report = client.call(&job).await.map_err(|e| format!("process_batch: {e}"))?;
    if report.succeeded != 28 {
        return Err(format!("{} of 30 records succeeded, expected 28", report.succeeded));
    }
    let after = counted(client, "record_processed").await?.0;
    if after - before != 28 {
        return Err(format!("analytics counted {} records of the job, expected 28", after - before));
    }
    client.call(&job).await.map_err(|e| format!("process_batch again: {e}"))?;
    let again = counted(client, "record_processed").await?.0;
    if again != after {
        return Err(format!("running the job again counted {} more", again - after));
    }
    let activity = UserActivity { user_id: "usr_fileproc".into(), window: last_ten_minutes() };
    let events = client.call(&activity).await.map_err(|e| e.to_string())?.events;
    if events < 28 {
        return Err(format!("user_activity counts {events} events of the file service"));
    }
    Ok(())
}

/// An order overview called in a trace of the caller's comes back to `collector` as one trace:
/// the overview's span a child of the caller's, and each of its K parts (a `get_stock` per item,
/// the customer's activity, the attachment's status) a child of the overview's. Answers the trace
/// drawn as a tree, with each span's duration.
pub async fn overview_is_one_trace(
    client: &Client,
    collector: &natsrpc::testing::OtlpCollector,
    seed: u64,
) -> Result<String, String> {
    let order = Payloads::new(seed, 50).order_of(4);
    let receipt = client.call(&order).await.map_err(|e| format!("create_order: {e}"))?;
    let upload = fileproc::payloads::Payloads::new(seed).csv_file(10).begin();
    let started = client.call(&upload).await.map_err(|e| format!("begin_upload: {e}"))?;
    let root = natsrpc::trace::TraceContext::new_root();
    let request = GetOrderOverview { order_id: receipt.order_id, attachments: vec![started.upload_id] };
    let traced = natsrpc::CallOptions::new().trace(root);
    client.call_with(&request, traced).await.map_err(|e| format!("get_order_overview: {e}"))?;

    let expected = 1 + 4 + 1 + 1;
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = collector.spans().into_iter().filter(|s| s.trace_id == root.trace_id()).collect();
        if spans.len() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(overview) = spans.iter().find(|s| s.name == "ecommerce.get_order_overview") else {
        return Err(format!("no overview span in {spans:?}"));
    };
    if overview.parent_span_id != Some(root.span_id()) {
        return Err(format!("the overview's parent is {:?}, not the caller's span", overview.parent_span_id));
    }
    let mut parts: Vec<_> = spans.iter().filter(|s| s.span_id != overview.span_id).collect();
    parts.sort_by(|a, b| (&a.name, a.start_unix_nanos).cmp(&(&b.name, b.start_unix_nanos)));
    let names: Vec<&str> = parts.iter().map(|s| s.name.as_str()).collect();
    let stock = "ecommerce.get_stock";
    let want = ["analytics.user_activity", stock, stock, stock, stock, "fileproc.upload_status"];
    if spans.len() != expected || names != want {
        return Err(format!("expected the overview and its 6 parts, got {names:?}"));
    }
    if let Some(stray) = parts.iter().find(|s| s.parent_span_id.as_ref() != Some(&overview.span_id)) {
        return Err(format!("{} is not a child of the overview: {stray:?}", stray.name));
    }
    // Drawn in the order the parts started, each with when it started after the overview did and
    // how long it took where it was served.
    parts.sort_by_key(|s| s.start_unix_nanos);
    let micros = |s: &natsrpc::testing::CollectedSpan| s.duration().as_micros();
    let offset = |s: &natsrpc::testing::CollectedSpan| {
        s.start_unix_nanos.saturating_sub(overview.start_unix_nanos) / 1000
    };
    let mut tree = format!("{} {} us, trace {}\n", overview.name, micros(overview), root.trace_id());
    for (i, part) in parts.iter().enumerate() {
        let branch = if i + 1 == parts.len() { "└─" } else { "├─" };
        tree +=
            &format!("  {branch} {:<24} starts +{} us, takes {} us\n", part.name, offset(part), micros(part));
    }
    Ok(tree)
}
