//! Micro-benchmarks of the services' real contracts and of the framework's request path:
//!
//! - `contracts/*`: decode plus validate of each service's main request, by size, valid and invalid
//!   with one and with many violations (collecting every violation with its path has a cost);
//! - `codec/*`: JSON against MessagePack, encode and decode, of a medium order;
//! - `dispatch/*`: a request through natsrpc's in-process pipeline (decode, validate, handler,
//!   envelope) against the bare handler call it wraps;
//! - `envelope/*`: encoding the success and the error envelope.
//!
//! `cargo bench -p micro-benchmarks --bench services -- contracts/create_order` runs one group.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use natsrpc::{Codec, ServiceError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use validator::Validate;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bytes(codec: Codec, value: &impl Serialize) -> Vec<u8> {
    codec.encode(value).unwrap_or_else(|e| panic!("bench input encodes: {e}"))
}

/// Decodes and validates; answers the violations found.
fn decode_validate<T: DeserializeOwned + Validate>(codec: Codec, body: &[u8]) -> usize {
    let value: T = codec.decode(body).unwrap_or_else(|e| panic!("bench input decodes: {e}"));
    match value.validate() {
        Ok(()) => 0,
        Err(errors) => natsrpc::validation::violations(&errors).len(),
    }
}

/// An order with many rules broken at once: its id, the email, and every item's quantity.
fn order_with_many_violations(order: &ecommerce::contracts::CreateOrder) -> serde_json::Value {
    let mut value = serde_json::to_value(order).unwrap_or_default();
    value["order_id"] = "x".into();
    value["customer"]["email"] = "not an email".into();
    if let Some(items) = value["items"].as_array_mut() {
        for item in items {
            item["quantity"] = 0.into();
        }
    }
    value
}

fn contracts(c: &mut Criterion) {
    use ecommerce::payloads::Size;
    let mut shop = ecommerce::payloads::Payloads::new(7, 1000);
    let mut group = c.benchmark_group("contracts/create_order");
    for (size, name) in [(Size::Small, "small"), (Size::Medium, "medium"), (Size::Large, "large")] {
        let order = shop.create_order(size);
        let one = shop
            .invalid_create_orders()
            .into_iter()
            .next()
            .map(|i| i.request)
            .unwrap_or_else(|| order.clone());
        let many = order_with_many_violations(&order);
        let cases: [(&str, Vec<u8>); 3] = [
            ("valid", bytes(Codec::Json, &order)),
            ("one_violation", bytes(Codec::Json, &one)),
            ("many_violations", bytes(Codec::Json, &many)),
        ];
        for (case, body) in cases {
            group.throughput(Throughput::Bytes(body.len() as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{case}/{name}"), order.items.len()),
                &body,
                |b, body| {
                    b.iter(|| {
                        decode_validate::<ecommerce::contracts::CreateOrder>(Codec::Json, black_box(body))
                    })
                },
            );
        }
    }
    group.finish();

    let mut events = analytics::payloads::Payloads::new(7, analytics::contracts::now_ms());
    let mut group = c.benchmark_group("contracts/ingest_batch");
    for (size, name) in [
        (analytics::payloads::Size::Small, "small"),
        (analytics::payloads::Size::Medium, "medium"),
        (analytics::payloads::Size::Large, "large"),
    ] {
        let batch = events.ingest_batch(size);
        let body = bytes(Codec::Json, &batch);
        group.throughput(Throughput::Elements(batch.events.len() as u64));
        // The batch, then each event on its own, as the service validates them.
        group.bench_with_input(BenchmarkId::new(name, batch.events.len()), &body, |b, body| {
            b.iter(|| {
                let batch: analytics::contracts::IngestBatch =
                    Codec::Json.decode(black_box(body)).unwrap_or_else(|e| panic!("{e}"));
                batch.events.iter().filter(|e| e.validate().is_err()).count()
            })
        });
    }
    group.finish();

    let mut files = fileproc::payloads::Payloads::new(7);
    let mut group = c.benchmark_group("contracts/process_batch");
    for (count, name) in [(10, "small"), (150, "medium"), (1000, "large")] {
        let job = files.process_batch(count);
        let body = bytes(Codec::Json, &job);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::new(name, count), &body, |b, body| {
            b.iter(|| {
                let job: fileproc::contracts::ProcessBatch =
                    Codec::Json.decode(black_box(body)).unwrap_or_else(|e| panic!("{e}"));
                job.records.iter().filter(|r| r.validate().is_err()).count()
            })
        });
    }
    group.finish();
}

fn codecs(c: &mut Criterion) {
    let order = ecommerce::payloads::Payloads::new(9, 1000).create_order(ecommerce::payloads::Size::Medium);
    let mut group = c.benchmark_group("codec/create_order_medium");
    for codec in [Codec::Json, Codec::MsgPack] {
        let body = bytes(codec, &order);
        let name = codec.content_type().trim_start_matches("application/");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("encode", name), &order, |b, order| {
            b.iter(|| bytes(codec, black_box(order)).len())
        });
        group.bench_with_input(BenchmarkId::new("decode", name), &body, |b, body| {
            b.iter(|| {
                codec
                    .decode::<ecommerce::contracts::CreateOrder>(black_box(body))
                    .map(|o| o.items.len())
                    .unwrap_or(0)
            })
        });
    }
    group.finish();
}

fn dispatch(c: &mut Criterion) {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let shop = Arc::new(ecommerce::domain::Shop::new(
        ecommerce::domain::MemoryStore::with_catalog(10, u64::MAX / 4),
        Arc::new(faults::Faults::none()),
    ));
    let dispatcher =
        natsrpc::Dispatcher::new(ecommerce::service(Arc::clone(&shop))).unwrap_or_else(|e| panic!("{e}"));
    let request = ecommerce::contracts::Restock { sku: "SKU-00001".into(), quantity: 1 };
    let body = bytes::Bytes::from(bytes(Codec::Json, &request));
    let mut group = c.benchmark_group("dispatch/restock");
    group.throughput(Throughput::Elements(1));
    group.bench_function("through_natsrpc", |b| {
        b.iter(|| {
            runtime
                .block_on(dispatcher.dispatch(
                    natsrpc::RequestHead::new("ecommerce.restock").with_content_type("application/json"),
                    black_box(body.clone()),
                ))
                .status
        })
    });
    // A caller in a trace: its `traceparent` is carried in the head (and read only when something
    // follows traces: a log at the request span's level, or an exporter).
    let traceparent = natsrpc::trace::TraceContext::new_root().traceparent();
    group.bench_function("through_natsrpc_traced", |b| {
        b.iter(|| {
            let head = natsrpc::RequestHead::new("ecommerce.restock")
                .with_content_type("application/json")
                .with_traceparent(black_box(&traceparent));
            runtime.block_on(dispatcher.dispatch(head, black_box(body.clone()))).status
        })
    });
    // One layer of the user's that lets everything through: what a layer costs in itself (the
    // stack below user layers is boxed once there are any).
    let layered = ecommerce::service(Arc::clone(&shop))
        .layer(natsrpc::server::layers::check(|_: &mut natsrpc::server::layers::Call| Ok(())));
    let layered = natsrpc::Dispatcher::new(layered).unwrap_or_else(|e| panic!("{e}"));
    group.bench_function("through_natsrpc_one_layer", |b| {
        b.iter(|| {
            let head = natsrpc::RequestHead::new("ecommerce.restock").with_content_type("application/json");
            runtime.block_on(layered.dispatch(head, black_box(body.clone()))).status
        })
    });
    group.bench_function("bare_handler", |b| {
        b.iter(|| {
            runtime.block_on(shop.restock(black_box(request.clone()))).map(|l| l.available).unwrap_or(0)
        })
    });
    group.finish();
}

fn envelopes(c: &mut Criterion) {
    let level = ecommerce::contracts::StockLevel { sku: "SKU-00001".into(), available: 42 };
    let error = ServiceError::validation(vec![natsrpc::Violation {
        path: "items[2].quantity".into(),
        code: "range".into(),
        message: "value must be between 1 and 100".into(),
        params: Default::default(),
    }]);
    let mut group = c.benchmark_group("envelope");
    for codec in [Codec::Json, Codec::MsgPack] {
        let name = codec.content_type().trim_start_matches("application/");
        group.bench_with_input(BenchmarkId::new("success", name), &level, |b, level| {
            b.iter(|| {
                natsrpc::envelope::encode_success(codec, black_box(level)).map(|v| v.len()).unwrap_or(0)
            })
        });
        group.bench_with_input(BenchmarkId::new("failure", name), &error, |b, error| {
            b.iter(|| natsrpc::envelope::encode_failure(codec, black_box(error)).len())
        });
    }
    group.finish();
}

criterion_group!(benches, contracts, codecs, dispatch, envelopes);
criterion_main!(benches);
