//! The services over the Redis store: every sample answered as over the in-memory store, and the
//! guarantees that matter when several stateless instances share one Redis (no oversell, an
//! order placed once, an event counted once). Against the shared Redis, each test under a key
//! prefix of its own, removed at the end.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use analytics::contracts::QueryAggregates;
use analytics::domain::Analytics;
use ecommerce::domain::{Shop, ShopStore};
use faults::Faults;
use natsrpc::testing::{NatsServer, ServiceProcess};
use stack::Hosting;
use stack::redis::{RedisEventStore, RedisPool, RedisShopStore};
use stack::testing::parity;

const REDIS_URL: &str = "redis://127.0.0.1:6379";

fn prefix() -> String {
    format!("natsrpc-test:{}", nuid::next())
}

/// `n` pools on one prefix: `n` instances' worth of connections to the same state.
async fn instances(n: usize, prefix: &str) -> Vec<RedisPool> {
    let mut pools = Vec::new();
    for _ in 0..n {
        pools.push(RedisPool::connect(REDIS_URL, 1, prefix).await.unwrap());
    }
    pools
}

#[tokio::test]
async fn nats_services_over_redis_answer_every_sample_as_over_memory() {
    let reference_server = NatsServer::start().unwrap();
    let reference = natsrpc::connect(&reference_server.url()).await.unwrap();
    let memory = Hosting { skus: 1000, units: 1000, ..Hosting::default() };
    let _services = memory.start_on(&reference).await.unwrap();

    // The control binary, as the benchmark runs it.
    let redis_server = NatsServer::start().unwrap();
    let prefix = prefix();
    let env = [("STORE", "redis"), ("REDIS_PREFIX", prefix.as_str()), ("ECOMMERCE_STOCK", "1000")];
    let process =
        ServiceProcess::spawn(env!("CARGO_BIN_EXE_nats-services"), &redis_server.url(), &env).unwrap();
    let over_redis = natsrpc::connect(&redis_server.url()).await.unwrap();
    for service in ["ecommerce", "analytics", "fileproc"] {
        process.wait_for_info(&over_redis, service).await.unwrap();
    }

    let compared = parity::compare(
        async |service, endpoint, body| parity::over_nats(&reference, service, endpoint, body).await,
        async |service, endpoint, body| parity::over_nats(&over_redis, service, endpoint, body).await,
    )
    .await
    .unwrap();
    assert_eq!(compared, 36, "18 endpoints (all but the overview), a valid and an invalid sample each");
    assert!(process.terminate().await.unwrap().success());
    RedisPool::connect(REDIS_URL, 1, &prefix).await.unwrap().clear().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reservations_from_many_instances_never_oversell() {
    let prefix = prefix();
    let pools = instances(4, &prefix).await;
    let shops: Vec<_> = pools
        .iter()
        .map(|pool| Arc::new(Shop::new(RedisShopStore::new(pool.clone()), Arc::new(Faults::none()))))
        .collect();
    shops[0].store().seed_catalog(3, 100).await.unwrap();

    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let shop = Arc::clone(&shops[i % shops.len()]);
            tokio::spawn(async move { shop.reserve_inventory(ecommerce::payloads::contended_cart(i)).await })
        })
        .collect();
    let (mut granted, mut second_units) = (0, 0);
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(_) => {
                granted += 1;
                second_units += if i % 3 == 0 { 2 } else { 0 };
            }
            Err(ecommerce::ShopError::OutOfStock { .. }) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    let store = shops[0].store();
    assert_eq!(granted, 100, "exactly the stock there was");
    assert_eq!(store.available("SKU-00000").await.unwrap(), Some(0));
    assert_eq!(store.available("SKU-00001").await.unwrap(), Some(100 - second_units), "all or nothing");
    pools[0].clear().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_sent_to_several_instances_is_placed_once() {
    let prefix = prefix();
    let pools = instances(3, &prefix).await;
    let shops: Vec<_> = pools
        .iter()
        .map(|pool| Arc::new(Shop::new(RedisShopStore::new(pool.clone()), Arc::new(Faults::none()))))
        .collect();
    shops[0].store().seed_catalog(20, 10_000).await.unwrap();
    let mut payloads = ecommerce::payloads::Payloads::new(5, 20);
    let orders: Vec<_> = (0..30).map(|_| payloads.create_order(ecommerce::payloads::Size::Small)).collect();

    // Each order goes to every instance at once, as retries through a load balancer would.
    let tasks: Vec<_> = orders
        .iter()
        .flat_map(|order| shops.iter().map(move |shop| (Arc::clone(shop), order.clone())))
        .map(|(shop, order)| tokio::spawn(async move { shop.create_order(order).await }))
        .collect();
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) | Err(ecommerce::ShopError::OrderInProgress(_)) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    let mut taken = std::collections::HashMap::<String, u64>::new();
    for order in &orders {
        let placed = shops[2].get_order(ecommerce::contracts::GetOrder { order_id: order.order_id.clone() });
        assert_eq!(placed.await.unwrap().order_id, order.order_id);
        for item in &order.items {
            *taken.entry(item.sku.clone()).or_default() += u64::from(item.quantity);
        }
    }
    for (sku, units) in taken {
        assert_eq!(shops[1].store().available(&sku).await.unwrap(), Some(10_000 - units), "{sku} taken once");
    }
    pools[0].clear().await.unwrap();
}

#[tokio::test]
async fn events_sent_through_two_instances_are_counted_once_and_add_up_as_in_memory() {
    let prefix = prefix();
    let pools = instances(2, &prefix).await;
    let retention = analytics::contracts::RETENTION_MS;
    let on_redis: Vec<_> = pools
        .iter()
        .map(|pool| Analytics::new(RedisEventStore::new(pool.clone(), retention), Arc::new(Faults::none())))
        .collect();
    let in_memory =
        Analytics::new(analytics::domain::MemoryStore::new(retention, 1), Arc::new(Faults::none()));

    let mut payloads = analytics::payloads::Payloads::new(9, analytics::contracts::now_ms());
    // Before any event: every query answers, with nothing in it (as in memory).
    let window = payloads.window(60);
    let empty = on_redis[0]
        .query_aggregates(QueryAggregates { event_type: None, window: window.clone() })
        .await
        .unwrap();
    assert!(empty.types.is_empty(), "{empty:?}");
    let by_type = QueryAggregates { event_type: Some("page_view".into()), window };
    assert_eq!(
        on_redis[0].query_aggregates(by_type.clone()).await.unwrap(),
        in_memory.query_aggregates(by_type).await.unwrap()
    );

    let batches: Vec<_> = (0..4).map(|_| payloads.ingest_batch(analytics::payloads::Size::Large)).collect();
    let mut accepted = 0;
    for batch in &batches {
        let first = on_redis[0].ingest_batch(batch.clone()).await.unwrap();
        let again = on_redis[1].ingest_batch(batch.clone()).await.unwrap();
        assert_eq!(again.accepted, 0, "every event was counted by the first instance");
        assert_eq!(again.duplicates, first.accepted);
        accepted += first.accepted;
        assert_eq!(in_memory.ingest_batch(batch.clone()).await.unwrap(), first);
    }
    assert!(accepted > 0);

    let query = QueryAggregates { event_type: None, window: payloads.window(60) };
    let from_redis = on_redis[1].query_aggregates(query.clone()).await.unwrap();
    let from_memory = in_memory.query_aggregates(query).await.unwrap();
    assert_eq!(from_redis.types.iter().map(|t| t.count).sum::<u64>(), u64::from(accepted));
    assert_eq!(from_redis, from_memory, "counts, sums and percentiles to the last bit");
    pools[0].clear().await.unwrap();
}

/// Redis killed and started again empty: the shop's publisher (a pool of managed connections) and
/// analytics' follower (a connection of its own, blocked in `XREADGROUP`) both go on by
/// themselves, the follower with its consumer group made again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_follower_reads_on_after_redis_restarts() {
    use ecommerce::contracts::events::OrderPlacedEvent;
    use ecommerce::domain::{EventSink, ShopEvent};
    use stack::redis::streams::{self, RedisStreamEvents};
    use std::time::Duration;

    let mut server = stack::testing::RedisServer::start().unwrap();
    let pool = RedisPool::connect(&server.url(), 1, &prefix()).await.unwrap();
    let (seen, mut follows) = tokio::sync::mpsc::unbounded_channel();
    let follower: stack::links::Follower = Arc::new(move |event| {
        let seen = seen.clone();
        Box::pin(async move {
            let _ = seen.send(event);
            Ok(())
        })
    });
    let task =
        streams::follow(&server.url(), None, streams::stream_key(&pool), stack::links::ANALYTICS, follower)
            .await
            .unwrap();
    let events = RedisStreamEvents::new(pool.clone());
    let placed = |order_id: &str| {
        ShopEvent::Placed(OrderPlacedEvent {
            order_id: order_id.into(),
            customer_id: "cus_restart".into(),
            amount_cents: 100,
            currency: "EUR".into(),
            units: 1,
            placed_at_ms: 1,
        })
    };
    let before = placed("ord_before_the_restart");
    events.publish(before.clone()).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), follows.recv()).await.unwrap();
    assert_eq!(first, Some(before));

    server.restart().unwrap();
    let after = placed("ord_after_the_restart");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // The pool's connections find the new server on their next commands.
    while events.publish(after.clone()).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "publishing never worked again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let next = tokio::time::timeout(Duration::from_secs(10), follows.recv()).await;
    assert_eq!(next.ok().flatten(), Some(after), "the follower reads the events published after the restart");
    task.abort();
}

/// The outbox in Redis: a note per event of an order (the first time kept), due once older than
/// asked, oldest first, gone once sent; shared by every instance on the prefix.
#[tokio::test]
async fn the_outbox_keeps_each_unsent_event_once_until_it_is_sent() {
    use ecommerce::domain::{EventKind, Unsent};
    let prefix = prefix();
    let pools = instances(2, &prefix).await;
    let (one, other) = (RedisShopStore::new(pools[0].clone()), RedisShopStore::new(pools[1].clone()));
    let event = |kind, order_id: &str, at_ms| Unsent { kind, order_id: order_id.to_string(), at_ms };
    one.note_unsent(&event(EventKind::Placed, "ord_outbox_b", 2_000)).await.unwrap();
    one.note_unsent(&event(EventKind::Placed, "ord_outbox_a", 1_000)).await.unwrap();
    one.note_unsent(&event(EventKind::Cancelled, "ord_outbox_a", 3_000)).await.unwrap();
    // Noted again later (a retried request): the first time stays.
    other.note_unsent(&event(EventKind::Placed, "ord_outbox_a", 9_000)).await.unwrap();
    let due = other.unsent(2_500, 10).await.unwrap();
    assert_eq!(
        due,
        [event(EventKind::Placed, "ord_outbox_a", 1_000), event(EventKind::Placed, "ord_outbox_b", 2_000)]
    );
    assert_eq!(other.unsent(u64::MAX, 1).await.unwrap().len(), 1, "at most the limit");
    other.sent(&due[0]).await.unwrap();
    let left = one.unsent(u64::MAX, 10).await.unwrap();
    assert_eq!(
        left,
        [event(EventKind::Placed, "ord_outbox_b", 2_000), event(EventKind::Cancelled, "ord_outbox_a", 3_000)]
    );
    pools[0].clear().await.unwrap();
}

/// The archive follows the stream in a consumer group of its own: analytics gets every event while
/// the archive's database is down, and the archive, whose events wait in the stream meanwhile,
/// has each of them once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_catches_up_on_the_stream_once_its_database_is_back() {
    use archive::{Archive, ArchivedEvent};
    use ecommerce::domain::EventSink;
    use stack::redis::streams::{self, RedisStreamEvents};
    use stack::testing::archived::{archived, counted, counting, placed};
    use std::time::Duration;

    let redis = stack::testing::RedisServer::start().unwrap();
    let mut postgres = archive::server::PostgresServer::start().unwrap();
    let pool = RedisPool::connect(&redis.url(), 1, &prefix()).await.unwrap();
    let archive = Arc::new(Archive::connect(&postgres.url()).await.unwrap());
    let (analytics, count) = counting();
    let key = streams::stream_key(&pool);
    let mut following = Vec::new();
    for (group, follower) in [
        (stack::links::ANALYTICS, analytics),
        (stack::links::ARCHIVE, stack::links::archive_follower(Arc::clone(&archive))),
    ] {
        following.push(streams::follow(&redis.url(), None, key.clone(), group, follower).await.unwrap());
    }
    let events = RedisStreamEvents::new(pool.clone());
    let orders: Vec<String> = (0..60).map(|i| format!("ord_archived_{i:03}")).collect();
    for order in &orders[..20] {
        events.publish(placed(order, "cus_archive")).await.unwrap();
    }
    archived(&archive, 20, Duration::from_secs(10)).await.unwrap();

    postgres.kill();
    for order in &orders[20..] {
        events.publish(placed(order, "cus_archive")).await.unwrap();
    }
    counted(&count, 60, Duration::from_secs(10)).await.expect("analytics, unaffected, counts them all");

    postgres.restart().unwrap();
    // Failed events are claimed again after RECLAIM_AFTER; give it a few rounds.
    archived(&archive, 60, streams::RECLAIM_AFTER * 4).await.unwrap();
    let mut held = archive.holds(ArchivedEvent::Placed, &orders).await.unwrap();
    held.sort();
    assert_eq!(held, orders, "each order, once");
    for task in following {
        task.abort();
    }
}
