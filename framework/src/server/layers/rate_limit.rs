//! A rate per caller: each caller has a token bucket (`burst` tokens, refilled at `rate` a
//! second); a request finding its caller's bucket empty is answered 429 `rate_limited`, with the
//! time until the next token, and costs nothing further (it is refused before decoding).
//!
//! Who the caller is, a function of the call says: a header, or what an authentication layer
//! outside this one kept ([`RequestContext::extension`](crate::RequestContext::extension)). The
//! key is kept only as a hash (with a key of the process's own), so that nothing a caller sends
//! is stored. Key on what a caller cannot choose freely (the caller an authentication layer
//! found): a header the caller sets at will gives a caller who changes it a fresh bucket each
//! time. Callers are remembered up to a bound ([`RateLimitLayer::max_callers`], 10,000 by
//! default): past it, callers idle long enough to have a full bucket are forgotten (looked for at
//! most once a second), and until then a new caller shares one bucket with the callers that say
//! nothing of themselves.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::Call;
use super::check::{CallCheck, CheckLayer};
use crate::error::ServiceError;

/// Limits each caller's rate (see the module's page).
///
/// ```
/// use natsrpc::server::layers::RateLimitLayer;
/// // 50 requests a second per `X-Tenant`, in bursts of up to 10.
/// let per_tenant = RateLimitLayer::per_header("X-Tenant", 50.0, 10);
/// # let _ = per_tenant;
/// ```
pub type RateLimitLayer = CheckLayer<RateLimiter>;

/// The service a [`RateLimitLayer`] makes.
pub type RateLimit<S> = super::Check<S, RateLimiter>;

/// The buckets of a [`RateLimitLayer`], shared by every service it makes.
#[derive(Clone)]
pub struct RateLimiter {
    shared: Arc<Shared>,
}

type KeyOf = dyn Fn(&Call) -> Option<u64> + Send + Sync;

struct Shared {
    /// Tokens a second.
    rate: f64,
    burst: f64,
    max_callers: usize,
    key: Arc<KeyOf>,
    buckets: Mutex<Buckets>,
}

struct Buckets {
    by_caller: HashMap<u64, Bucket>,
    /// When callers with full buckets were last forgotten: at most once a second, so that a
    /// flood of new callers costs a scan a second, not one each.
    swept: Instant,
    /// The callers that say nothing of themselves, and those past `max_callers`.
    shared: Bucket,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = &*self.shared;
        f.debug_struct("RateLimiter").field("rate", &shared.rate).field("burst", &shared.burst).finish()
    }
}

impl CheckLayer<RateLimiter> {
    /// `rate` requests a second per caller (a rate that is not a positive number allows next to
    /// none), in bursts of up to `burst` (at least 1); `caller` names the caller of a call
    /// (`None`: it does not say).
    pub fn per_caller<K, F>(rate: f64, burst: u32, caller: F) -> Self
    where
        K: Hash,
        F: Fn(&Call) -> Option<K> + Send + Sync + 'static,
    {
        let hasher = RandomState::new();
        let key: Arc<KeyOf> = Arc::new(move |call| caller(call).map(|key| hasher.hash_one(key)));
        let rate = if rate > 0.0 { rate } else { f64::MIN_POSITIVE };
        Shared::limiter(rate, f64::from(burst.max(1)), 10_000, key)
    }

    /// `rate` requests a second per value of the request header `name` (over NATS; see
    /// [`per_caller`](Self::per_caller)).
    pub fn per_header(name: &'static str, rate: f64, burst: u32) -> Self {
        Self::per_caller(rate, burst, move |call| call.ctx.header(name).map(str::to_owned))
    }

    /// Remembers at most `n` callers (see the module's page), 10,000 unless set.
    pub fn max_callers(self, n: usize) -> Self {
        let shared = &self.check.shared;
        Shared::limiter(shared.rate, shared.burst, n.max(1), Arc::clone(&shared.key))
    }
}

impl Shared {
    fn limiter(rate: f64, burst: f64, max_callers: usize, key: Arc<KeyOf>) -> RateLimitLayer {
        let full = Bucket { tokens: burst, at: Instant::now() };
        let buckets = Mutex::new(Buckets { by_caller: HashMap::new(), swept: full.at, shared: full });
        super::check(RateLimiter { shared: Arc::new(Shared { rate, burst, max_callers, key, buckets }) })
    }
}

impl CallCheck for RateLimiter {
    fn check(&self, call: &mut Call) -> Result<(), ServiceError> {
        let shared = &*self.shared;
        let caller = (shared.key)(call);
        let now = Instant::now();
        let mut buckets = shared.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = match caller {
            Some(caller) => buckets.of(caller, shared, now),
            None => &mut buckets.shared,
        };
        bucket.refill(shared, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::try_from_secs_f64((1.0 - bucket.tokens) / shared.rate).unwrap_or(Duration::MAX);
        Err(ServiceError::rate_limited(wait))
    }
}

impl Buckets {
    /// The caller's bucket: its own, or the shared one when no more callers can be remembered.
    fn of(&mut self, caller: u64, shared: &Shared, now: Instant) -> &mut Bucket {
        if !self.by_caller.contains_key(&caller) && self.by_caller.len() >= shared.max_callers {
            // Forgetting a caller whose bucket is full loses nothing: it would start full again.
            if now.saturating_duration_since(self.swept) >= Duration::from_secs(1) {
                self.swept = now;
                self.by_caller.retain(|_, bucket| {
                    bucket.refill(shared, now);
                    bucket.tokens < shared.burst
                });
            }
            if self.by_caller.len() >= shared.max_callers {
                return &mut self.shared;
            }
        }
        self.by_caller.entry(caller).or_insert(Bucket { tokens: shared.burst, at: now })
    }
}

impl Bucket {
    fn refill(&mut self, shared: &Shared, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * shared.rate).min(shared.burst);
        self.at = now;
    }
}
