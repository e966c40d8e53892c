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
    /// Endpoints the service's own figures show failing, and until when their calls are refused
    /// ([`fed_by_stats`](Self::fed_by_stats)); `None` when not fed.
    reported: Option<Arc<Mutex<super::stats_feed::Reported>>>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) failures: usize,
    window: Duration,
    pub(super) open_for: Duration,
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
        let settings = Settings { failures: failures.max(1), window, open_for };
        Self { settings, circuits: Arc::default(), reported: None }
    }

    /// Also opens an endpoint's circuit when the service's own figures show it failing for its
    /// callers, before this client has failed even once: every `every`, the breaker asks every
    /// instance of `service` for its `$SRV.STATS`, and when an endpoint answered at least
    /// `failures` requests since the last look, `share` or more of them with a failure (500, 503,
    /// 504: [`EndpointData::num_failures`](crate::server::EndpointData::num_failures)), its calls are
    /// refused for `open_for`. A 503 `overloaded` counts: an endpoint at its in-flight bound for
    /// most of its callers is better left alone for a while. An instance of a natsrpc older
    /// than the count reports no failures. The looking stops when the last copy of the layer is
    /// dropped.
    /// Call it within a tokio runtime (outside one, the breaker counts its own calls only, and
    /// says so in the log).
    pub fn fed_by_stats(
        mut self,
        nats: async_nats::Client,
        service: &str,
        every: Duration,
        share: f64,
    ) -> Self {
        let reported = Arc::new(Mutex::new(super::stats_feed::Reported::default()));
        let watch = super::stats_feed::Watch::new(nats, service, every, share, self.settings);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(watch.run(Arc::downgrade(&reported)));
                self.reported = Some(reported);
            }
            Err(_) => tracing::warn!("a circuit breaker fed by $SRV.STATS needs a tokio runtime: not fed"),
        }
        self
    }
}

guarding_layer!(CircuitBreakerLayer => CircuitBreaker, "The service [`CircuitBreakerLayer`] makes.");

/// Whether `error` counts against the endpoint.
fn is_failure(error: &RpcError) -> bool {
    match error {
        RpcError::NoResponders { .. } | RpcError::Timeout { .. } | RpcError::Transport(_) => true,
        RpcError::Remote(error) => crate::server::stats::is_failure(error.status),
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
        if let Some(left) =
            self.reported.as_ref().and_then(|reported| super::stats_feed::left(reported, subject))
        {
            return refused(format!("the service's figures show it failing; refused for {left:?} more"));
        }
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
                Ok(reply) => crate::server::stats::is_failure(reply.status),
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
