//! From a subject to its endpoint.

use std::collections::BTreeMap;

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

/// A service's endpoints, in registration order (which `INFO` and `STATS` list them in).
pub(crate) struct Router {
    pub(crate) service: ServiceIdentity,
    endpoints: Vec<Endpoint>,
}

impl Router {
    pub(crate) fn new(service: ServiceIdentity, endpoints: Vec<Endpoint>) -> Self {
        Self { service, endpoints }
    }

    /// A scan rather than a hash map: a service has a handful of endpoints, and comparing a few
    /// short strings costs less than hashing one with SipHash.
    pub(crate) fn route(&self, subject: &str) -> Result<&Endpoint, ServiceError> {
        self.endpoints
            .iter()
            .find(|e| e.subject == subject)
            .ok_or_else(|| ServiceError::unknown_endpoint(subject))
    }

    pub(crate) fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.endpoints.iter()
    }
}
