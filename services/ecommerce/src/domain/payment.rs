//! A simulated payment gateway with the behaviour of a real one: latency, declines, transient
//! failures (some after the charge went through, the response lost), and idempotency keys, so that
//! a retried charge never charges twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faults::Faults;

/// A charge the gateway made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The gateway's id for it.
    pub transaction_id: String,
    /// Amount charged, in cents.
    pub amount_cents: u64,
    /// Whether it has been refunded.
    pub refunded: bool,
    /// Who holds it: the claim that made it, or the last that reused it (see [`PaymentGateway::void`]).
    pub holder: String,
}

/// Why a charge failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeFailure {
    /// Final: the issuer said no.
    Declined(&'static str),
    /// Worth retrying with the same idempotency key: the gateway did not answer.
    Transient,
}

/// The simulated gateway. Shared by every request of a service instance.
#[derive(Debug)]
pub struct PaymentGateway {
    faults: Arc<Faults>,
    charges: Mutex<HashMap<String, Charge>>,
}

impl PaymentGateway {
    /// A gateway whose latency, declines and transient failures come from `faults`.
    pub fn new(faults: Arc<Faults>) -> Self {
        Self { faults, charges: Mutex::default() }
    }

    /// Charges `amount_cents` under `idempotency_key` for `holder`. The same key charges at most
    /// once: a repeat answers the first charge, which `holder` then holds.
    pub async fn charge(
        &self,
        idempotency_key: &str,
        holder: &str,
        amount_cents: u64,
    ) -> Result<Charge, ChargeFailure> {
        let settings = self.faults.settings();
        if settings.payment_latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(settings.payment_latency_ms)).await;
        }
        if let Some(existing) = self.lock().get_mut(idempotency_key) {
            existing.holder = holder.to_string();
            return Ok(existing.clone());
        }
        // A transient failure loses the request or, half the time, only the response after the
        // charge went through: the case idempotency keys exist for.
        let transient = self.faults.happens(settings.payment_transient_rate);
        if transient && self.faults.happens(0.5) {
            return Err(ChargeFailure::Transient);
        }
        if !transient && self.faults.happens(settings.payment_decline_rate) {
            return Err(ChargeFailure::Declined("insufficient_funds"));
        }
        let charge = Charge {
            transaction_id: format!("txn_{idempotency_key}"),
            amount_cents,
            refunded: false,
            holder: holder.to_string(),
        };
        let charge = self.lock().entry(idempotency_key.to_string()).or_insert(charge).clone();
        if transient { Err(ChargeFailure::Transient) } else { Ok(charge) }
    }

    /// Refunds the charge made under `idempotency_key`; refunding twice refunds once. Answers the
    /// amount refunded, or `None` when no such charge was made.
    pub fn refund(&self, idempotency_key: &str) -> Option<u64> {
        let mut charges = self.lock();
        let charge = charges.get_mut(idempotency_key)?;
        charge.refunded = true;
        Some(charge.amount_cents)
    }

    /// Cancels a charge of an order that was not placed, so that the customer is not charged for
    /// it and the key can be used afresh, when `holder` still holds it: a request whose claim lapsed
    /// never voids the charge a later retry reused for the order it placed. Answers the amount
    /// voided, if a charge had gone through.
    pub fn void(&self, idempotency_key: &str, holder: &str) -> Option<u64> {
        let mut charges = self.lock();
        if charges.get(idempotency_key).is_some_and(|charge| charge.holder == holder) {
            return charges.remove(idempotency_key).map(|charge| charge.amount_cents);
        }
        None
    }

    /// Every charge made so far, refunded or not.
    pub fn charges(&self) -> Vec<Charge> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Charge>> {
        self.charges.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lapsed_claim_never_voids_the_charge_a_retry_reused() {
        let gateway = PaymentGateway::new(Arc::new(Faults::none()));
        let first = gateway.charge("ord_1", "claim-a", 500).await.ok();
        assert_eq!(gateway.void("ord_1", "claim-b"), None, "only its holder voids a charge");
        // A retry under a new claim reuses the charge (same idempotency key) and now holds it.
        assert_eq!(
            gateway.charge("ord_1", "claim-b", 500).await.ok().map(|c| c.transaction_id),
            first.map(|c| c.transaction_id)
        );
        assert_eq!(
            gateway.void("ord_1", "claim-a"),
            None,
            "the lapsed claim's undo keeps the retry's charge"
        );
        assert_eq!(gateway.charges().len(), 1);
        assert_eq!(gateway.void("ord_1", "claim-b"), Some(500));
        assert!(gateway.charges().is_empty());
    }
}
