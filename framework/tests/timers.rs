//! Timers over a real nats-server with JetStream, two instances of one service: a timer of the
//! queue group runs each period on one instance only, a timer of every instance on each; a run
//! that outlasts its period skips the next ones instead of piling up; failures and panics are
//! counted and the timer goes on; a stopped service's timers stop.
// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use natsrpc::testing::NatsServer;
use natsrpc::{Runs, Service, ServiceBuilder, ServiceError, State, Tick};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate)]
struct Ping {}
natsrpc::request!(Ping => (), service = "ticker", endpoint = "ping");
async fn ping(_: Ping) -> Result<(), ServiceError> {
    Ok(())
}

/// What the timers saw, shared by both instances.
#[derive(Default)]
struct Seen {
    once: Mutex<Vec<(&'static str, u64)>>,
    every: Mutex<Vec<(&'static str, u64)>>,
    /// Slow runs going now on each instance, and the most ever.
    running: [AtomicUsize; 2],
    most_at_once: AtomicUsize,
}

type Shared = (&'static str, Arc<Seen>);

async fn once(State((me, seen)): State<Shared>, tick: Tick) -> Result<(), ServiceError> {
    seen.once.lock().unwrap().push((me, tick.slot));
    Ok(())
}

async fn every(State((me, seen)): State<Shared>, tick: Tick) -> Result<(), ServiceError> {
    seen.every.lock().unwrap().push((me, tick.slot));
    Ok(())
}

async fn flaky(_: State<Shared>, tick: Tick) -> Result<(), ServiceError> {
    match tick.slot % 3 {
        0 => Err(ServiceError::internal("the\nstore is away")),
        1 => panic!("the timer broke"),
        _ => Ok(()),
    }
}

/// Takes 2.5 periods: the periods it overlaps on its instance are skipped there.
async fn slow(State((me, seen)): State<Shared>, _: Tick) -> Result<(), ServiceError> {
    let running = &seen.running[usize::from(me == "b")];
    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
    seen.most_at_once.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

const PERIOD: Duration = Duration::from_millis(200);

fn ticker(me: &'static str, seen: &Arc<Seen>) -> ServiceBuilder<Shared> {
    Service::builder("ticker", "1.0.0")
        .state((me, Arc::clone(seen)))
        .endpoint(ping)
        .timer("once", PERIOD, Runs::OnOneInstance, once)
        .timer("every", PERIOD, Runs::OnEveryInstance, every)
        .timer("flaky", PERIOD, Runs::OnEveryInstance, flaky)
        .timer("slow", PERIOD, Runs::OnEveryInstance, slow)
}

#[tokio::test]
async fn each_period_runs_once_in_the_group_or_once_per_instance() {
    let server = NatsServer::start().unwrap();
    let seen = Arc::new(Seen::default());
    let (nats_a, nats_b) =
        (natsrpc::connect(&server.url()).await.unwrap(), natsrpc::connect(&server.url()).await.unwrap());
    let a = ticker("a", &seen).start(&nats_a).await.unwrap();
    let b = ticker("b", &seen).start(&nats_b).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;

    let stats = |id: &str| {
        let nats = nats_a.clone();
        let subject = format!("$SRV.STATS.ticker.{id}");
        async move {
            let reply = nats.request(subject, "".into()).await.unwrap();
            serde_json::from_slice::<natsrpc::ServiceStats>(&reply.payload).unwrap()
        }
    };
    let (stats_a, stats_b) = (stats(a.id()).await, stats(b.id()).await);
    a.stop(Duration::from_secs(2)).await.unwrap();
    b.stop(Duration::from_secs(2)).await.unwrap();

    // One instance per period, and every period had one.
    let once = seen.once.lock().unwrap().clone();
    let mut slots: Vec<u64> = once.iter().map(|(_, slot)| *slot).collect();
    slots.sort_unstable();
    let before = slots.len();
    slots.dedup();
    assert_eq!(slots.len(), before, "a period ran twice: {once:?}");
    // About ten periods; a loaded machine may starve both instances of one or two.
    assert!(slots.len() >= 6, "{once:?}");
    // Each instance, each period.
    let every = seen.every.lock().unwrap().clone();
    for me in ["a", "b"] {
        let mine: Vec<u64> = every.iter().filter(|(who, _)| *who == me).map(|(_, s)| *s).collect();
        assert!(mine.len() >= 6, "{me}: {every:?}");
    }
    assert_eq!(seen.most_at_once.load(Ordering::SeqCst), 1, "slow runs never overlapped on an instance");

    let timer = |stats: &natsrpc::ServiceStats, name: &str| {
        stats.timers.iter().find(|t| t.name == name).cloned().unwrap_or_else(|| panic!("{name}: {stats:?}"))
    };
    for stats in [&stats_a, &stats_b] {
        let flaky = timer(stats, "flaky");
        assert!(flaky.failed >= 3 && flaky.runs >= 1, "{flaky:?}");
        assert!(!flaky.last_error.contains('\n'), "escaped: {:?}", flaky.last_error);
        assert_eq!((flaky.runs_on.as_str(), flaky.period_ms), ("every_instance", 200));
    }
    // The slow timer's periods: on each instance, a run and then the two it overlapped skipped.
    for stats in [&stats_a, &stats_b] {
        let slow = timer(stats, "slow");
        assert!(slow.runs >= 2 && slow.skipped >= 4, "{slow:?}");
    }
    let ran = |name: &str| timer(&stats_a, name).runs + timer(&stats_b, name).runs;
    // Each period of `once`: run by one instance, skipped by the other.
    assert!(ran("once") >= 6 && timer(&stats_a, "once").skipped + timer(&stats_b, "once").skipped >= 6);

    // Stopped: nothing runs any more.
    let counted = seen.every.lock().unwrap().len() + seen.once.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(seen.every.lock().unwrap().len() + seen.once.lock().unwrap().len(), counted);
}

#[test]
fn timers_that_cannot_work_are_refused_when_the_service_is_built() {
    let seen = Arc::new(Seen::default());
    let refused = |builder: ServiceBuilder<Shared>| match natsrpc::Dispatcher::new(builder) {
        Ok(_) => panic!("accepted"),
        Err(error) => error.to_string(),
    };
    let base = || Service::builder("ticker", "1.0.0").state(("a", Arc::clone(&seen))).endpoint(ping);
    let fast = base().timer("busy", Duration::from_millis(10), Runs::OnEveryInstance, every);
    assert!(refused(fast).contains("shortest period"));
    let twice =
        base().timer("t", PERIOD, Runs::OnEveryInstance, every).timer("t", PERIOD, Runs::OnOneInstance, once);
    assert!(refused(twice).contains("unique"));
    assert!(refused(base().timer("a.b", PERIOD, Runs::OnEveryInstance, every)).contains("timer name"));
}

async fn endless(_: State<Shared>, _: Tick) -> Result<(), ServiceError> {
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[tokio::test]
async fn a_run_still_going_when_the_grace_period_ends_is_cut_short_and_counted() {
    let server = NatsServer::start().unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let seen = Arc::new(Seen::default());
    let service = Service::builder("ticker", "1.0.0")
        .state(("a", seen))
        .endpoint(ping)
        .timer("endless", PERIOD, Runs::OnEveryInstance, endless)
        .start(&nats)
        .await
        .unwrap();
    tokio::time::sleep(PERIOD * 2).await; // a run has begun
    let stopping = std::time::Instant::now();
    let report = service.stop(Duration::from_millis(300)).await.unwrap();
    assert_eq!(report.abandoned, 1, "{report:?}");
    assert!(stopping.elapsed() < Duration::from_secs(5), "the stop waited {:?}", stopping.elapsed());
}
