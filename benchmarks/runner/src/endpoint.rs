//! Where a mix sends its requests ([`Target`]): an endpoint of the shipped catalog
//! ([`Endpoint`]), whose bodies the load generator makes, or a subject or path of one's own, whose
//! body the mix entry gives (`crate::own_request`).
//!
//! The catalog's endpoints are named by their contracts' subjects (`R::SUBJECT`), so that a
//! renamed endpoint changes here by itself.

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

/// Where a mix entry's requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// An endpoint of the shipped catalog, with bodies the generator makes.
    Catalog(Endpoint),
    /// A NATS subject (`service.endpoint`) or an HTTP path (`/...`) of one's own, with the body
    /// the mix entry gives. Interned: a configuration names few, and the transports take a
    /// `&'static str` subject.
    Own(&'static str),
}

/// The longest subject or path a mix may name.
pub const MAX_TARGET: usize = 256;

impl Target {
    /// The subject (or, for an HTTP path of one's own, the path).
    pub fn subject(self) -> &'static str {
        match self {
            Target::Catalog(endpoint) => endpoint.subject(),
            Target::Own(subject) => subject,
        }
    }

    /// The catalog's endpoint, when it is one.
    pub fn catalog(self) -> Option<Endpoint> {
        match self {
            Target::Catalog(endpoint) => Some(endpoint),
            Target::Own(_) => None,
        }
    }

    /// Whether it is an HTTP path (`/...`), which only an HTTP stack can be sent.
    pub fn is_path(self) -> bool {
        self.subject().starts_with('/')
    }

    /// The same place, as one's own (the mix entry gives the body).
    pub fn own(self) -> Self {
        Target::Own(self.subject())
    }

    /// `text` as a target: the catalog's endpoint of that subject, or a subject or path of one's
    /// own; `None` when it is neither a NATS subject without wildcards nor an HTTP path.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(endpoint) = Endpoint::of_subject(text) {
            return Some(Target::Catalog(endpoint));
        }
        let fits = !text.is_empty() && text.len() <= MAX_TARGET;
        let valid = if let Some(path) = text.strip_prefix('/') {
            path.bytes().all(|b| b.is_ascii_graphic() && b != b'#')
        } else {
            text.split('.').all(|token| {
                !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-$".contains(&b))
            })
        };
        (fits && valid).then(|| Target::Own(intern(text)))
    }
}

/// `text` for as long as the program runs, once per distinct text.
fn intern(text: &str) -> &'static str {
    static INTERNED: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut interned = INTERNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = interned.iter().find(|known| **known == text) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.to_string().into_boxed_str());
    interned.push(leaked);
    leaked
}

impl PartialEq<Endpoint> for Target {
    fn eq(&self, other: &Endpoint) -> bool {
        *self == Target::Catalog(*other)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.subject())
    }
}

/// A mix names a catalog endpoint by its subject, or a subject or path of its own.
impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "endpoint {:?} is neither one the load generator sends ({}) nor a NATS subject \
                 (`service.endpoint`, no wildcards) or an HTTP path (`/...`) of your own",
                natsrpc::escape::escape(&text, 80),
                Endpoint::listed()
            ))
        })
    }
}

impl serde::Serialize for Target {
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

    #[test]
    fn targets_are_the_catalog_or_a_subject_or_path_of_ones_own() {
        assert_eq!(Target::parse("ecommerce.restock"), Some(Target::Catalog(Endpoint::Restock)));
        let echo = Target::parse("echo.echo").unwrap();
        assert_eq!((echo, echo.is_path()), (Target::Own("echo.echo"), false));
        assert!(std::ptr::eq(echo.subject(), Target::parse("echo.echo").unwrap().subject()), "interned once");
        assert!(Target::parse("/api/v1/orders?x=1").unwrap().is_path());
        for refused in ["", "a..b", "orders.*", "orders.>", "a b", "/a b", ".a", "x".repeat(300).as_str()] {
            assert_eq!(Target::parse(refused), None, "{refused:?}");
        }
        assert_eq!(Target::Catalog(Endpoint::TopN).own(), Target::Own("analytics.top_n"));
    }
}
