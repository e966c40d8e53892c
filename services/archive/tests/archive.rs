//! The archive on a PostgreSQL server of the test's own: rows written once however often an
//! event comes, migrations applied once, and a database that crashes, stalls or comes back
//! costing failed calls only: never a hang, a panic or a lost committed row.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use archive::server::PostgresServer;
use archive::{Archive, ArchiveError, ArchivedEvent, Recorded};
use ecommerce_contracts::events::{OrderCancelledEvent, OrderPlacedEvent};

fn placed(order: &str) -> OrderPlacedEvent {
    OrderPlacedEvent {
        order_id: order.into(),
        customer_id: "cus_1".into(),
        amount_cents: 1250,
        currency: "EUR".into(),
        units: 2,
        placed_at_ms: 1_700_000_000_000,
    }
}

#[tokio::test]
async fn each_order_and_event_is_one_row_however_often_it_comes() {
    let server = PostgresServer::start().unwrap();
    let archive = Archive::connect(&server.url()).await.unwrap();
    assert_eq!(archive.placed(&placed("ord_000001")).await.unwrap(), Recorded::New);
    assert_eq!(archive.placed(&placed("ord_000001")).await.unwrap(), Recorded::AlreadyThere);
    assert_eq!(archive.placed(&placed("ord_000002")).await.unwrap(), Recorded::New);
    let cancel = OrderCancelledEvent {
        order_id: "ord_000001".into(),
        customer_id: "cus_1".into(),
        refunded_cents: 1250,
        cancelled_at_ms: 1_700_000_000_500,
    };
    assert_eq!(archive.cancelled(&cancel).await.unwrap(), Recorded::New);
    assert_eq!(archive.cancelled(&cancel).await.unwrap(), Recorded::AlreadyThere);
    assert_eq!(archive.count(ArchivedEvent::Placed).await.unwrap(), 2);
    assert_eq!(archive.count(ArchivedEvent::Cancelled).await.unwrap(), 1);
    let asked = ["ord_000001".to_string(), "ord_000003".to_string()];
    assert_eq!(archive.holds(ArchivedEvent::Placed, &asked).await.unwrap(), ["ord_000001"]);

    // A figure the column cannot hold is refused before anything is written.
    let mut huge = placed("ord_000004");
    huge.amount_cents = u64::MAX;
    assert!(matches!(archive.placed(&huge).await, Err(ArchiveError::OutOfRange("amount_cents"))));
    assert_eq!(archive.count(ArchivedEvent::Placed).await.unwrap(), 2);
}

#[tokio::test]
async fn instances_starting_together_migrate_once() {
    let server = PostgresServer::start().unwrap();
    let url = server.url();
    let connects = (0..4).map(|_| Archive::connect(&url));
    let archives: Vec<Archive> =
        futures::future::join_all(connects).await.into_iter().map(Result::unwrap).collect();
    for (i, archive) in archives.iter().enumerate() {
        archive.placed(&placed(&format!("ord_00000{i}"))).await.unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let applied = client.query_one("SELECT count(*) FROM archive_migrations", &[]).await.unwrap();
    assert_eq!(applied.get::<_, i64>(0), archive::store::MIGRATIONS.len() as i64);
    assert_eq!(archives[0].count(ArchivedEvent::Placed).await.unwrap(), 4);
}

#[tokio::test]
async fn a_database_that_crashes_fails_calls_until_it_is_back_and_keeps_what_it_committed() {
    let mut server = PostgresServer::start().unwrap();
    let archive = Archive::new(&server.url()).unwrap();
    archive.placed(&placed("ord_before")).await.unwrap();

    server.kill();
    let began = Instant::now();
    let refused = archive.placed(&placed("ord_during")).await;
    assert!(refused.is_err(), "nothing to write to: {refused:?}");
    assert!(began.elapsed() < archive::store::ANSWER_WITHIN * 2, "a failure, not a hang");

    server.restart().unwrap();
    // The first call after may still meet the broken connection; a call after that connects anew.
    let mut answer = archive.placed(&placed("ord_during")).await;
    for _ in 0..20 {
        if answer.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = archive.placed(&placed("ord_during")).await;
    }
    assert_eq!(answer.unwrap(), Recorded::New);
    let held = ["ord_before".to_string(), "ord_during".to_string()];
    let mut archived = archive.holds(ArchivedEvent::Placed, &held).await.unwrap();
    archived.sort();
    assert_eq!(archived, held, "the row committed before the crash survived it");
}

#[tokio::test]
async fn a_stalled_database_times_calls_out_and_serves_them_once_it_runs_again() {
    let server = PostgresServer::start().unwrap();
    let archive = Arc::new(Archive::connect(&server.url()).await.unwrap());
    server.pause(true).unwrap();
    let began = Instant::now();
    let stalled = archive.placed(&placed("ord_stalled")).await;
    let waited = began.elapsed();
    server.pause(false).unwrap();
    assert!(matches!(stalled, Err(ArchiveError::TimedOut(_))), "{stalled:?}");
    assert!(waited < archive::store::ANSWER_WITHIN * 2, "gave up in time: {waited:?}");
    // The statement sent to the stalled server may have run once it woke: archived again, it is
    // still one row.
    let again = archive.placed(&placed("ord_stalled")).await.unwrap();
    assert!(matches!(again, Recorded::New | Recorded::AlreadyThere));
    assert_eq!(archive.holds(ArchivedEvent::Placed, &["ord_stalled".into()]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_address_that_is_none_is_refused_at_once() {
    assert!(matches!(Archive::new("not a url at all"), Err(ArchiveError::Url(_))));
    // A database nobody serves: an error within the connect timeout.
    let port = natsrpc::testing::free_port().unwrap();
    let began = Instant::now();
    let archive = Archive::new(&archive::server::url(port)).unwrap();
    assert!(matches!(archive.count(ArchivedEvent::Placed).await, Err(ArchiveError::Database(_))));
    assert!(began.elapsed() < archive::store::ANSWER_WITHIN * 2);
}

/// Whatever text an order carries is archived as it came (parameters, never SQL), but for NUL,
/// which PostgreSQL's text cannot hold: archived as U+FFFD rather than refused on every delivery.
#[tokio::test]
async fn hostile_text_is_archived_as_it_came_and_a_nul_as_a_replacement_character() {
    let server = PostgresServer::start().unwrap();
    let archive = Archive::connect(&server.url()).await.unwrap();
    let hostile = [
        "'; DROP TABLE archived_orders; --",
        "\r\nSet-Cookie: x",
        "\u{1b}[31mred",
        "\u{202e}reversed",
        "🦀🦀🦀",
        "a\0b",
        "\0",
    ];
    for (i, customer) in hostile.iter().enumerate() {
        let mut event = placed(&format!("ord_hostile_{i:02}"));
        event.customer_id = customer.to_string();
        assert_eq!(archive.placed(&event).await.unwrap(), Recorded::New, "{customer:?}");
        let record = archive.order(&event.order_id).await.unwrap();
        assert_eq!(record[0].customer_id, customer.replace('\0', "\u{fffd}"));
    }
    assert_eq!(
        archive.count(ArchivedEvent::Placed).await.unwrap(),
        hostile.len() as u64,
        "the table is still there"
    );
}

/// What the database refuses for an event's content is not waited out; what keeps it from
/// answering is.
#[tokio::test]
async fn only_a_database_that_cannot_answer_is_a_transient_failure() {
    let port = natsrpc::testing::free_port().unwrap();
    let unreachable = Archive::new(&archive::server::url(port)).unwrap().count(ArchivedEvent::Placed).await;
    assert!(unreachable.unwrap_err().is_transient(), "nobody listening");
    assert!(ArchiveError::TimedOut(Duration::from_secs(5)).is_transient());
    assert!(ArchiveError::Connecting.is_transient());
    assert!(!ArchiveError::OutOfRange("amount_cents").is_transient());

    let server = PostgresServer::start().unwrap();
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let refused = client.execute("SELECT 1/0", &[]).await.unwrap_err();
    let refused = ArchiveError::Database(refused);
    assert!(!refused.is_transient(), "{refused}");
    assert!(refused.to_string().contains("22012"), "the SQL state is in the text: {refused}");
    let service_error: natsrpc::ServiceError = refused.into();
    assert_eq!(service_error.status, 500);
    let service_error: natsrpc::ServiceError = ArchiveError::Connecting.into();
    assert_eq!((service_error.status, service_error.kind), (503, natsrpc::ErrorKind::Unavailable));
}
