//! Following orders into analytics: every order the shop acknowledges publishes `order_placed`,
//! which analytics counts against the order's customer. Each order here has a customer of its
//! own, so analytics' count of that customer's events is the count of that order.
//!
//! A probe per acknowledged order asks analytics (`user_activity`) at once, then every `poll`
//! (a tenth of the time waited, once that is longer, up to a second) until the order shows. The lag is from the acknowledgement to the middle of the first question
//! that saw it (when analytics most likely read its store), so it holds half a question's round
//! trip and, for an order not seen at once, up to one pause more (`poll`, or a tenth of the time
//! waited once that is longer, up to a second). An order seen by the first
//! question was in analytics by the time its buyer heard back; those are counted apart. After the
//! load, every order is counted once more: 0 is an order lost (nothing after `settle`), 2 or more
//! an order counted twice.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use tokio::task::JoinHandle;

use crate::config::Convergence;
use crate::target::client::StackClient;
use bench_results::ConvergenceResult;

/// Probes of the orders acknowledged so far.
#[derive(Debug)]
pub struct Follower {
    client: std::sync::Arc<StackClient>,
    settings: Convergence,
    window: analytics::contracts::Window,
    probes: Mutex<Vec<JoinHandle<Probe>>>,
    unreadable: Mutex<u64>,
}

/// One order followed.
#[derive(Debug)]
struct Probe {
    customer: String,
    /// From acknowledgement to the first answer that counted it, if one did within `settle`.
    lag: Option<Duration>,
    /// Whether the first question saw it.
    at_once: bool,
    /// Questions that failed (not "not yet", but no answer).
    failed: u64,
}

#[derive(serde::Deserialize)]
struct Placed {
    customer: Customer,
}

#[derive(serde::Deserialize)]
struct Customer {
    id: String,
}

impl Follower {
    /// Follows orders through `client`.
    pub fn new(client: std::sync::Arc<StackClient>, settings: Convergence) -> Self {
        let now = analytics::contracts::now_ms();
        // From well before the run to well after it: the window only has to hold each order.
        let window = analytics::contracts::Window {
            from_ms: now.saturating_sub(30 * 60_000),
            to_ms: now + 20 * 60_000,
        };
        Self { client, settings, window, probes: Mutex::new(Vec::new()), unreadable: Mutex::new(0) }
    }

    /// Starts following the order `body` placed, acknowledged at `acked`.
    pub fn placed(&self, body: &[u8], acked: Instant) {
        let Ok(placed) = serde_json::from_slice::<Placed>(body) else {
            *lock(&self.unreadable) += 1;
            return;
        };
        let (client, settings) = (std::sync::Arc::clone(&self.client), self.settings.clone());
        let request =
            analytics::contracts::UserActivity { user_id: placed.customer.id, window: self.window.clone() };
        let probe = tokio::spawn(async move {
            let (mut failed, mut questions) = (0, 0);
            loop {
                let asked = Instant::now();
                let answer = client.ask(&request).await;
                questions += 1;
                match answer {
                    Ok(activity) if activity.events > 0 => {
                        let middle = asked + asked.elapsed() / 2;
                        let lag = Some(middle.saturating_duration_since(acked));
                        return Probe { customer: request.user_id, lag, at_once: questions == 1, failed };
                    }
                    Ok(_) => {}
                    Err(_) => failed += 1,
                }
                let waited = acked.elapsed();
                if waited >= settings.settle {
                    return Probe { customer: request.user_id, lag: None, at_once: false, failed };
                }
                // Quick at first, where the lags are; then a tenth of the time waited (up to a
                // second), so that the lag keeps a resolution of about 10%: thousands of orders
                // late together (after an outage) must not become a load that keeps analytics
                // from catching up.
                let pause = (waited / 10).min(Duration::from_secs(1)).max(settings.poll);
                tokio::time::sleep(pause).await;
            }
        });
        lock(&self.probes).push(probe);
    }

    /// Waits for every probe, counts every order once more, and sums up.
    pub async fn finish(&self, unacknowledged: u64) -> ConvergenceResult {
        let handles: Vec<JoinHandle<Probe>> = std::mem::take(&mut *lock(&self.probes));
        let mut probes = Vec::with_capacity(handles.len());
        for handle in handles {
            if let Ok(probe) = handle.await {
                probes.push(probe);
            }
        }
        let mut lag = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).ok();
        let mut failed_questions = 0;
        for probe in &probes {
            failed_questions += probe.failed;
            if let (Some(lag), Some(histogram)) = (probe.lag, lag.as_mut()) {
                let _ = histogram.record((lag.as_micros() as u64).max(1));
            }
        }
        // The recount, a few at a time: after every probe has ended, so a second delivery that
        // came late is seen.
        let counts: Vec<Result<u64, natsrpc::RpcError>> = futures::stream::iter(probes.iter().map(|probe| {
            let request = analytics::contracts::UserActivity {
                user_id: probe.customer.clone(),
                window: self.window.clone(),
            };
            let client = &self.client;
            async move { client.ask(&request).await.map(|a| a.events) }
        }))
        .buffer_unordered(32)
        .collect()
        .await;
        let count = |pick: fn(&Result<u64, natsrpc::RpcError>) -> bool| {
            counts.iter().filter(|c| pick(c)).count() as u64
        };
        ConvergenceResult {
            orders: probes.len() as u64,
            unacknowledged,
            unreadable: *lock(&self.unreadable),
            seen_at_once: probes.iter().filter(|p| p.at_once).count() as u64,
            counted_once: count(|c| matches!(c, Ok(1))),
            lost: count(|c| matches!(c, Ok(0))),
            counted_twice: count(|c| matches!(c, Ok(n) if *n > 1)),
            not_recounted: count(Result::is_err),
            failed_questions,
            lag_us: lag.as_ref().map(crate::generator::recorder::percentiles).unwrap_or_default(),
            settle_s: self.settings.settle.as_secs_f64(),
            poll_ms: self.settings.poll.as_secs_f64() * 1000.0,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
