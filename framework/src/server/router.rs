//! From a subject to its endpoint.

use std::collections::{BTreeMap, HashMap};

use super::endpoint::Endpoint;
use crate::error::ServiceError;

/// Who this service instance is, as the Services API reports it.
#[derive(Debug, Clone)]
pub(crate) struct ServiceIdentity {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) version: String,
    pub(crate) description: String,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) queue_group: String,
    /// RFC 3339, UTC.
    pub(crate) started: String,
}

/// A service's endpoints by subject.
pub(crate) struct Router {
    pub(crate) service: ServiceIdentity,
    by_subject: HashMap<String, Endpoint>,
    /// Endpoint subjects in registration order, for stable `INFO` and `STATS` listings.
    order: Vec<String>,
}

impl Router {
    pub(crate) fn new(service: ServiceIdentity, endpoints: Vec<Endpoint>) -> Self {
        let order = endpoints.iter().map(|e| e.subject.clone()).collect();
        let by_subject = endpoints
            .into_iter()
            .map(|e| (e.subject.clone(), e))
            .collect();
        Self {
            service,
            by_subject,
            order,
        }
    }

    pub(crate) fn route(&self, subject: &str) -> Result<&Endpoint, ServiceError> {
        self.by_subject
            .get(subject)
            .ok_or_else(|| ServiceError::unknown_endpoint(subject))
    }

    pub(crate) fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.order
            .iter()
            .filter_map(|subject| self.by_subject.get(subject))
    }
}
