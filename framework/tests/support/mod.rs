//! A small shop service used by the integration tests, and helpers to start it on a private server.
#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use natsrpc::testing::NatsServer;
use natsrpc::{RequestContext, Service, ServiceBuilder, ServiceError, State};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
pub struct Address {
    #[validate(length(equal = 2))]
    pub country: String,
    #[validate(length(min = 3, max = 10))]
    pub postal_code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
pub struct Customer {
    #[validate(length(min = 1, max = 100))]
    pub name: String,
    #[validate(email)]
    pub email: String,
    #[validate(nested)]
    pub shipping_address: Address,
    #[validate(nested)]
    pub billing_address: Option<Address>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
pub struct Item {
    #[validate(length(min = 1, max = 32))]
    pub sku: String,
    #[validate(range(min = 1, max = 100))]
    pub quantity: u32,
    pub unit_price_cents: u64,
    pub options: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
pub struct PlaceOrder {
    #[validate(nested)]
    pub customer: Customer,
    #[validate(length(min = 1, max = 100), nested)]
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub total_cents: u64,
    pub item_count: usize,
    pub correlation_id: String,
    pub instance: String,
}

natsrpc::request!(PlaceOrder => OrderPlaced, service = "shop", endpoint = "place_order");

/// Sleeps, for timeouts, in-flight bounds and draining.
#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
pub struct Sleep {
    pub millis: u64,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slept {
    pub millis: u64,
}
natsrpc::request!(Sleep => Slept, service = "shop", endpoint = "sleep", idempotent = true);

/// Panics inside the handler.
#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
pub struct Explode {
    pub secret: String,
}
natsrpc::request!(Explode => (), service = "shop", endpoint = "explode");

/// Refused by a business rule.
#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
pub struct Reserve {
    pub sku: String,
}
natsrpc::request!(Reserve => (), service = "shop", endpoint = "reserve");

/// Answers a string of the asked length, for replies over the server's max_payload.
#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
pub struct Pad {
    pub bytes: usize,
}
natsrpc::request!(Pad => String, service = "shop", endpoint = "pad");

/// An endpoint nobody registers, to call an unknown endpoint with the typed client.
#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
pub struct Missing {}
natsrpc::request!(Missing => (), service = "shop", endpoint = "missing");

/// Per-instance state: who this is and how many orders it took.
#[derive(Debug, Default)]
pub struct Shop {
    pub instance: String,
    pub orders: AtomicU64,
}

/// The service's own error type, mapped to the wire in one place.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    #[error("sku {0} is out of stock")]
    OutOfStock(String),
}

impl From<ShopError> for ServiceError {
    fn from(error: ShopError) -> Self {
        match &error {
            ShopError::OutOfStock(sku) => {
                ServiceError::conflict("out_of_stock", error.to_string()).with_path(sku.clone())
            }
        }
    }
}

async fn place_order(
    State(shop): State<Arc<Shop>>,
    ctx: RequestContext,
    order: PlaceOrder,
) -> Result<OrderPlaced, ServiceError> {
    shop.orders.fetch_add(1, Ordering::Relaxed);
    Ok(OrderPlaced {
        total_cents: order.items.iter().map(|i| i.unit_price_cents * u64::from(i.quantity)).sum(),
        item_count: order.items.len(),
        correlation_id: ctx.correlation_id().to_string(),
        instance: shop.instance.clone(),
    })
}

async fn sleep(req: Sleep) -> Result<Slept, ServiceError> {
    tokio::time::sleep(Duration::from_millis(req.millis)).await;
    Ok(Slept { millis: req.millis })
}

async fn explode(req: Explode) -> Result<(), ServiceError> {
    panic!("boom with {}", req.secret);
}

async fn reserve(req: Reserve) -> Result<(), ShopError> {
    Err(ShopError::OutOfStock(req.sku))
}

async fn pad(req: Pad) -> Result<String, ServiceError> {
    Ok("x".repeat(req.bytes))
}

pub fn shop(instance: &str) -> ServiceBuilder<Arc<Shop>> {
    Service::builder("shop", "1.2.3")
        .description("A shop for tests")
        .metadata("team", "tests")
        .state(Arc::new(Shop { instance: instance.to_string(), orders: AtomicU64::new(0) }))
        .endpoint(place_order)
        .endpoint(sleep)
        .endpoint(explode)
        .endpoint(reserve)
        .endpoint(pad)
}

pub fn valid_order() -> PlaceOrder {
    let address = Address { country: "DE".into(), postal_code: "10115".into() };
    PlaceOrder {
        customer: Customer {
            name: "Ada".into(),
            email: "ada@example.com".into(),
            shipping_address: address.clone(),
            billing_address: Some(address),
        },
        items: vec![
            Item { sku: "A-1".into(), quantity: 2, unit_price_cents: 1250, options: None },
            Item { sku: "B-2".into(), quantity: 1, unit_price_cents: 999, options: None },
        ],
    }
}

/// A private nats-server and a connection to it.
pub async fn private_nats() -> (NatsServer, async_nats::Client) {
    let server = NatsServer::start()
        .expect("nats-server starts (is it installed? see scripts/start-test-services.sh)");
    let client = natsrpc::connect(&server.url()).await.expect("connects to the private server");
    (server, client)
}

/// A raw request with optional headers, bypassing the typed client.
pub async fn raw(
    nats: &async_nats::Client,
    subject: &str,
    headers: &[(&str, &str)],
    body: impl Into<bytes::Bytes>,
) -> async_nats::Message {
    let mut request = async_nats::Request::new().payload(body.into()).timeout(Some(Duration::from_secs(5)));
    if !headers.is_empty() {
        let mut map = async_nats::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, *value);
        }
        request = request.headers(map);
    }
    nats.send_request(subject.to_string(), request).await.expect("a reply")
}

/// `n` calls of the same request at once, each on its own task.
pub fn concurrently<R: natsrpc::Request + Clone>(
    client: &natsrpc::Client,
    n: usize,
    request: R,
) -> Vec<tokio::task::JoinHandle<Result<R::Response, natsrpc::RpcError>>> {
    (0..n)
        .map(|_| {
            let (client, request) = (client.clone(), request.clone());
            tokio::spawn(async move { client.call(&request).await })
        })
        .collect()
}

/// Waits (up to 10 s) until `endpoint` of `service` has `n` requests in flight, by its $SRV.STATS:
/// a deterministic "they are all inside the handler now", where a sleep would be a guess.
pub async fn wait_for_in_flight(nats: &async_nats::Client, service: &str, endpoint: &str, n: u64) -> u64 {
    let mut most = 0;
    for _ in 0..1000 {
        if let Ok(reply) = nats.request(format!("$SRV.STATS.{service}"), "".into()).await {
            let stats: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap_or_default();
            let endpoints = stats["endpoints"].as_array().cloned().unwrap_or_default();
            let in_flight = endpoints
                .iter()
                .find(|e| e["name"] == endpoint)
                .and_then(|e| e["data"]["in_flight"].as_u64());
            most = most.max(in_flight.unwrap_or(0));
            if most >= n {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    most
}

pub fn header<'a>(message: &'a async_nats::Message, name: &str) -> Option<&'a str> {
    message.headers.as_ref()?.get(name).map(|v| v.as_str())
}

pub fn json(message: &async_nats::Message) -> serde_json::Value {
    serde_json::from_slice(&message.payload).expect("a JSON reply")
}
