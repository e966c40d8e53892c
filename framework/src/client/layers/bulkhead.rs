//! A bulkhead: at most `running` calls at once through this client, at most `queued` waiting for
//! a place; a call beyond both is refused at once, so that a slow dependency ties up a bounded
//! share of the caller, not all of it.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::Semaphore;

use crate::client::{EncodedCall, EncodedReply};
use crate::error::RpcError;

/// Bounds a client's calls in flight (see the module's page).
#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    running: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
    limits: (usize, usize),
}

impl BulkheadLayer {
    /// At most `running` calls at once (at least 1), and `queued` waiting for a place.
    pub fn new(running: usize, queued: usize) -> Self {
        let running = running.max(1);
        Self {
            running: Arc::new(Semaphore::new(running)),
            waiting: Arc::new(Semaphore::new(running + queued)),
            limits: (running, queued),
        }
    }
}

guarding_layer!(BulkheadLayer => Bulkhead, "The service [`BulkheadLayer`] makes.");

impl BulkheadLayer {
    fn guard<S>(&self, inner: &mut S, call: EncodedCall) -> BoxFuture<'static, Result<EncodedReply, RpcError>>
    where
        S: tower::Service<EncodedCall, Response = EncodedReply, Error = RpcError>,
        S::Future: Send + 'static,
    {
        // A place among those running or waiting, taken at once or not at all.
        let Ok(admitted) = Arc::clone(&self.waiting).try_acquire_owned() else {
            let (running, queued) = self.limits;
            let why = format!("the bulkhead is full ({running} calls running, {queued} waiting)");
            return Box::pin(std::future::ready(Err(RpcError::Rejected {
                subject: call.subject.to_string(),
                why,
            })));
        };
        let running = Arc::clone(&self.running);
        let calling = inner.call(call);
        Box::pin(async move {
            let _admitted = admitted;
            let Ok(_running) = running.acquire_owned().await else {
                return Err(RpcError::config("the bulkhead's semaphore was closed"));
            };
            calling.await
        })
    }
}
