//! Decode plus validate of a nested order (customer with two addresses, 3 to 10 items, payment), the
//! work natsrpc does for every request before the handler runs. Valid orders, and invalid ones with
//! one and with many violations (the cost of collecting every violation with its path).
//!
//! The typed client's side too: validating a `create_order` before sending it, against encoding it.
//!
//! `cargo bench -p micro-benchmarks --bench decode_validate`

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use natsrpc::Codec;
use serde::{Deserialize, Serialize};
use validator::Validate;

// The allocator the service binaries run with: decoding is mostly allocating strings.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
struct Address {
    #[validate(length(min = 1, max = 100))]
    street: String,
    #[validate(length(min = 1, max = 60))]
    city: String,
    #[validate(length(min = 3, max = 10))]
    postal_code: String,
    #[validate(length(equal = 2))]
    country: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
struct Customer {
    #[validate(length(min = 1, max = 64))]
    id: String,
    #[validate(length(min = 1, max = 100))]
    name: String,
    #[validate(email)]
    email: String,
    #[validate(nested)]
    shipping_address: Address,
    #[validate(nested)]
    billing_address: Option<Address>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
struct Item {
    #[validate(length(min = 1, max = 32))]
    sku: String,
    #[validate(range(min = 1, max = 1000))]
    quantity: u32,
    #[validate(range(min = 1))]
    unit_price_cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
struct Payment {
    #[validate(length(min = 1, max = 20))]
    method: String,
    amount_cents: u64,
    #[validate(length(equal = 3))]
    currency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
struct Order {
    #[validate(length(min = 1, max = 64))]
    order_id: String,
    #[validate(nested)]
    customer: Customer,
    #[validate(length(min = 1, max = 100), nested)]
    items: Vec<Item>,
    #[validate(nested)]
    payment: Payment,
}

fn order(items: usize) -> Order {
    let address = Address {
        street: "Unter den Linden 1".into(),
        city: "Berlin".into(),
        postal_code: "10117".into(),
        country: "DE".into(),
    };
    Order {
        order_id: "ord-000000000042".into(),
        customer: Customer {
            id: "cus-1234".into(),
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            shipping_address: address.clone(),
            billing_address: Some(address),
        },
        items: (0..items)
            .map(|i| Item { sku: format!("SKU-{i:05}"), quantity: 1 + i as u32, unit_price_cents: 1999 })
            .collect(),
        payment: Payment { method: "card".into(), amount_cents: 1999, currency: "EUR".into() },
    }
}

/// The order with one broken rule, or with a broken rule in every item and both addresses.
fn broken(items: usize, many: bool) -> Order {
    let mut order = order(items);
    order.customer.email = "not-an-email".into();
    if many {
        for item in &mut order.items {
            item.quantity = 0;
        }
        order.customer.shipping_address.country = "DEU".into();
        if let Some(billing) = order.customer.billing_address.as_mut() {
            billing.postal_code = "1".into();
        }
    }
    order
}

/// What the framework does before the handler: decode, validate, and on failure list violations.
fn decode_and_validate(codec: Codec, body: &[u8]) -> usize {
    let order: Order = codec.decode(body).unwrap_or_else(|e| panic!("bench input decodes: {e}"));
    match order.validate() {
        Ok(()) => 0,
        Err(errors) => natsrpc::validation::violations(&errors).len(),
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_validate");
    for items in [3, 10] {
        for codec in [Codec::Json, Codec::MsgPack] {
            let name = match codec {
                Codec::Json => "json",
                Codec::MsgPack => "msgpack",
            };
            for (case, order) in [
                ("valid", order(items)),
                ("one_violation", broken(items, false)),
                ("many_violations", broken(items, true)),
            ] {
                let body = codec.encode(&order).unwrap_or_else(|e| panic!("bench input encodes: {e}"));
                group.throughput(Throughput::Bytes(body.len() as u64));
                group.bench_with_input(
                    BenchmarkId::new(format!("{name}/{case}"), items),
                    &body,
                    |b, body| b.iter(|| decode_and_validate(codec, black_box(body))),
                );
            }
        }
    }
    group.finish();

    // The two halves apart, for the 10-item valid order.
    let mut halves = c.benchmark_group("decode_validate_parts");
    let order = order(10);
    let json = Codec::Json.encode(&order).unwrap_or_else(|e| panic!("bench input encodes: {e}"));
    halves.bench_function("json_decode_only/10", |b| {
        b.iter(|| Codec::Json.decode::<Order>(black_box(&json)).map(|o| o.items.len()).unwrap_or(0))
    });
    halves.bench_function("validate_only/10", |b| b.iter(|| black_box(&order).validate().is_ok()));
    halves.finish();

    // The real contract: ecommerce's CreateOrder, with its formats, card checks and cross-field rules.
    let mut real = c.benchmark_group("decode_validate_create_order");
    let mut payloads = ecommerce::payloads::Payloads::new(7, 1000);
    for (name, size) in
        [("small", ecommerce::payloads::Size::Small), ("medium", ecommerce::payloads::Size::Medium)]
    {
        let order = payloads.create_order(size);
        for codec in [Codec::Json, Codec::MsgPack] {
            let body = codec.encode(&order).unwrap_or_else(|e| panic!("bench input encodes: {e}"));
            let label = format!("{}/{name}", if codec == Codec::Json { "json" } else { "msgpack" });
            real.throughput(Throughput::Bytes(body.len() as u64));
            real.bench_with_input(BenchmarkId::new(label, order.items.len()), &body, |b, body| {
                b.iter(|| {
                    let order: ecommerce::contracts::CreateOrder =
                        codec.decode(black_box(body)).unwrap_or_else(|e| panic!("bench input decodes: {e}"));
                    order.validate().is_ok()
                })
            });
        }
    }
    let order = payloads.create_order(ecommerce::payloads::Size::Medium);
    let json = Codec::Json.encode(&order).unwrap_or_else(|e| panic!("bench input encodes: {e}"));
    real.bench_function("json_decode_only/medium", |b| {
        b.iter(|| Codec::Json.decode::<ecommerce::contracts::CreateOrder>(black_box(&json)).is_ok())
    });
    real.bench_function("validate_only/medium", |b| b.iter(|| black_box(&order).validate().is_ok()));
    real.finish();

    // What the typed client adds before sending: the same order's validation against its encoding
    // (the work a call did before), medians apart and as a ratio in the closing notes.
    let mut client = c.benchmark_group("client_side_create_order");
    for (name, size) in
        [("small", ecommerce::payloads::Size::Small), ("medium", ecommerce::payloads::Size::Medium)]
    {
        let order = payloads.create_order(size);
        client.bench_function(format!("encode_json/{name}"), |b| {
            b.iter(|| Codec::Json.encode(black_box(&order)).map(|body| body.len()).unwrap_or(0))
        });
        client
            .bench_function(format!("validate/{name}"), |b| b.iter(|| black_box(&order).validate().is_ok()));
    }
    client.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
