//! The endpoints the load generator can send, each named by its contract's subject
//! (`R::SUBJECT`), so that a renamed endpoint changes here by itself and a mix can only name
//! endpoints the generator knows how to make bodies for.

use std::fmt;

use natsrpc::Request;
use serde::{Deserialize, Deserializer};

/// An endpoint the load generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `ecommerce.create_order`: an order, paid, its stock reserved.
    CreateOrder,
    /// `ecommerce.reserve_inventory`: stock held for a reservation.
    ReserveInventory,
    /// `ecommerce.restock`: stock added.
    Restock,
    /// `ecommerce.get_order_overview`: an order with each item's stock and the buyer's activity,
    /// fanned out to other endpoints.
    GetOrderOverview,
    /// `analytics.ingest_event`: one event.
    IngestEvent,
    /// `analytics.ingest_batch`: many, accepted partially.
    IngestBatch,
    /// `analytics.query_aggregates`.
    QueryAggregates,
    /// `analytics.query_timeseries`.
    QueryTimeseries,
    /// `analytics.top_n`.
    TopN,
    /// `fileproc.process_batch`: records checked and transformed.
    ProcessBatch,
}

/// Which service an endpoint belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Orders, stock and payments.
    Ecommerce,
    /// Events and their aggregates.
    Analytics,
    /// Uploads and batch jobs.
    Fileproc,
}

impl Endpoint {
    /// Every endpoint, in the order they are listed to users.
    pub const ALL: [Endpoint; 10] = [
        Endpoint::CreateOrder,
        Endpoint::ReserveInventory,
        Endpoint::Restock,
        Endpoint::IngestEvent,
        Endpoint::IngestBatch,
        Endpoint::QueryAggregates,
        Endpoint::QueryTimeseries,
        Endpoint::TopN,
        Endpoint::ProcessBatch,
        Endpoint::GetOrderOverview,
    ];

    /// `service.endpoint`, from its contract.
    pub fn subject(self) -> &'static str {
        use analytics::contracts as events;
        use ecommerce::contracts as shop;
        match self {
            Endpoint::CreateOrder => shop::CreateOrder::SUBJECT,
            Endpoint::ReserveInventory => shop::ReserveInventory::SUBJECT,
            Endpoint::Restock => shop::Restock::SUBJECT,
            Endpoint::GetOrderOverview => shop::GetOrderOverview::SUBJECT,
            Endpoint::IngestEvent => events::IngestEvent::SUBJECT,
            Endpoint::IngestBatch => events::IngestBatch::SUBJECT,
            Endpoint::QueryAggregates => events::QueryAggregates::SUBJECT,
            Endpoint::QueryTimeseries => events::QueryTimeseries::SUBJECT,
            Endpoint::TopN => events::TopN::SUBJECT,
            Endpoint::ProcessBatch => fileproc::contracts::ProcessBatch::SUBJECT,
        }
    }

    /// The endpoint part of the subject.
    pub fn name(self) -> &'static str {
        self.subject().split_once('.').map_or(self.subject(), |(_, name)| name)
    }

    /// Its service.
    pub fn service(self) -> Service {
        match self {
            Endpoint::CreateOrder
            | Endpoint::ReserveInventory
            | Endpoint::Restock
            | Endpoint::GetOrderOverview => Service::Ecommerce,
            Endpoint::IngestEvent
            | Endpoint::IngestBatch
            | Endpoint::QueryAggregates
            | Endpoint::QueryTimeseries
            | Endpoint::TopN => Service::Analytics,
            Endpoint::ProcessBatch => Service::Fileproc,
        }
    }

    /// The endpoint of `subject`, if the generator sends it.
    pub fn of_subject(subject: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.subject() == subject)
    }

    /// Every subject, for messages that list them.
    pub fn listed() -> String {
        Self::ALL.map(Endpoint::subject).join(", ")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.subject())
    }
}

/// A mix names endpoints by subject; one the generator does not send is refused, with the list.
impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let subject = String::deserialize(deserializer)?;
        Self::of_subject(&subject).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "endpoint {subject:?} is not one the load generator sends ({})",
                Self::listed()
            ))
        })
    }
}

impl serde::Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.subject())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_its_contracts_subject_and_reads_back() {
        for endpoint in Endpoint::ALL {
            assert_eq!(Endpoint::of_subject(endpoint.subject()), Some(endpoint));
            let service = endpoint.subject().split_once('.').map(|(s, _)| s);
            let expected = match endpoint.service() {
                Service::Ecommerce => "ecommerce",
                Service::Analytics => "analytics",
                Service::Fileproc => "fileproc",
            };
            assert_eq!(service, Some(expected));
        }
        assert_eq!(Endpoint::TopN.name(), "top_n");
        assert_eq!(Endpoint::of_subject("ecommerce.get_order"), None);
    }
}
