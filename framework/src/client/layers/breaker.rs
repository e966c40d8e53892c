//! A circuit breaker per endpoint: after `failures` failures within `window`, calls to that
//! endpoint are refused at once for `open_for`; then one call is let through to probe it, and its
//! outcome closes the circuit or opens it again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::client::{EncodedCall, EncodedReply};
use crate::error::RpcError;

/// Wraps a client's calls in a [`CircuitBreaker`]. Its state is shared by every service it makes
/// (each clone of a client), per endpoint subject.
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer {
    settings: Settings,
    circuits: Arc<Mutex<HashMap<&'static str, Circuit>>>,
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    failures: usize,
    window: Duration,
    open_for: Duration,
}

/// One endpoint's circuit.
#[derive(Debug)]
enum Circuit {
    /// Calls go through; the failures within the window are remembered.
    Closed(VecDeque<Instant>),
    /// Calls are refused until then.
    Open(Instant),
    /// One call probes the endpoint; the others are refused until it ends.
    Probing,
}

impl CircuitBreakerLayer {
    /// Opens an endpoint's circuit after `failures` failures (at least 1) within `window`, for
    /// `open_for`. A failure is what says the endpoint, not the request, is the trouble: no
    /// responders, no reply in time, a transport error, or a 500, 503 or 504 from the service.
    /// A refusal of the request itself (400, 404, 409, 422...) is an answer, and counts as one.
    pub fn new(failures: usize, window: Duration, open_for: Duration) -> Self {
        Self { settings: Settings { failures: failures.max(1), window, open_for }, circuits: Arc::default() }
    }
}

guarding_layer!(CircuitBreakerLayer => CircuitBreaker, "The service [`CircuitBreakerLayer`] makes.");

/// Whether `error` counts against the endpoint.
fn is_failure(error: &RpcError) -> bool {
    match error {
        RpcError::NoResponders { .. } | RpcError::Timeout { .. } | RpcError::Transport(_) => true,
        RpcError::Remote(error) => matches!(error.status, 500 | 503 | 504),
        _ => false,
    }
}

impl CircuitBreakerLayer {
    fn circuits(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Circuit>> {
        self.circuits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets a call to `subject` through (answering whether it is the probe), or says why not.
    fn admit(&self, subject: &'static str) -> Result<bool, RpcError> {
        let mut circuits = self.circuits();
        let circuit = circuits.entry(subject).or_insert_with(|| Circuit::Closed(VecDeque::new()));
        let refused = |why: String| Err(RpcError::Rejected { subject: subject.to_string(), why });
        match circuit {
            Circuit::Closed(_) => Ok(false),
            Circuit::Open(until) if Instant::now() < *until => {
                let left = until.saturating_duration_since(Instant::now());
                refused(format!("its circuit is open after repeated failures, for {left:?} more"))
            }
            Circuit::Open(_) => {
                *circuit = Circuit::Probing;
                Ok(true)
            }
            Circuit::Probing => refused("its circuit is open; a probe call is under way".to_string()),
        }
    }

    /// Counts how a call to `subject` went.
    fn record(&self, subject: &'static str, probe: bool, failed: bool) {
        let settings = self.settings;
        let mut circuits = self.circuits();
        let circuit = circuits.entry(subject).or_insert_with(|| Circuit::Closed(VecDeque::new()));
        let now = Instant::now();
        match circuit {
            _ if probe && failed => {
                tracing::warn!(%subject, open_for = ?settings.open_for, "the probe failed: the circuit opens again");
                *circuit = Circuit::Open(now + settings.open_for);
            }
            _ if probe => {
                tracing::info!(%subject, "the probe succeeded: the circuit closes");
                *circuit = Circuit::Closed(VecDeque::new());
            }
            Circuit::Closed(failures) if failed => {
                failures.push_back(now);
                while failures.front().is_some_and(|at| now.duration_since(*at) > settings.window) {
                    failures.pop_front();
                }
                if failures.len() >= settings.failures {
                    tracing::warn!(%subject, failures = failures.len(), window = ?settings.window,
                        open_for = ?settings.open_for, "the circuit opens");
                    *circuit = Circuit::Open(now + settings.open_for);
                }
            }
            // A call that began before the circuit opened, ending now, changes nothing.
            _ => {}
        }
    }
}

impl CircuitBreakerLayer {
    fn guard<S>(&self, inner: &mut S, call: EncodedCall) -> BoxFuture<'static, Result<EncodedReply, RpcError>>
    where
        S: tower::Service<EncodedCall, Response = EncodedReply, Error = RpcError>,
        S::Future: Send + 'static,
    {
        let subject = call.subject;
        let probe = match self.admit(subject) {
            Ok(probe) => probe,
            Err(refused) => return Box::pin(std::future::ready(Err(refused))),
        };
        let layer = self.clone();
        let calling = inner.call(call);
        Box::pin(async move {
            // Counted when the call ends, and also when it is dropped half-way (its caller gave
            // up): a probe must not leave the circuit probing for ever.
            let mut counted = Counted { layer, subject, probe, failed: true, done: false };
            let answer = calling.await;
            counted.failed = match &answer {
                Ok(reply) => matches!(reply.status, 500 | 503 | 504),
                Err(error) => is_failure(error),
            };
            counted.done = true;
            drop(counted);
            answer
        })
    }
}

/// Records a call's outcome when dropped: at its end, or when its caller gave up (as a failure).
struct Counted {
    layer: CircuitBreakerLayer,
    subject: &'static str,
    probe: bool,
    failed: bool,
    done: bool,
}

impl Drop for Counted {
    fn drop(&mut self) {
        // A call given up on before its end says nothing of the endpoint, unless it was the
        // probe, which must end: then it counts as failed.
        if self.done || self.probe {
            self.layer.record(self.subject, self.probe, self.failed);
        }
    }
}
