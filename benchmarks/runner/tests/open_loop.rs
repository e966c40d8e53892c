//! The open-loop scheduler keeps its planned times when the server stalls: a responder that stops
//! for a second shows that second in the response time of every request planned during it. A
//! closed loop, which waits for answers before sending, hides it (coordinated omission): the same
//! stall costs it one slow request.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench_runner::config::{Phase, StackSpec, Transport};
use bench_runner::generator::load::{Schedule, Shot, closed_loop, open_loop};
use bench_runner::generator::recorder::Recorder;
use bench_runner::target::check::check_echo;
use bench_runner::target::client::StackClient;
use futures::StreamExt;
use natsrpc::testing::NatsServer;

const STALL_AT: Duration = Duration::from_millis(500);
const STALL_FOR: Duration = Duration::from_secs(1);

/// Echoes on `stall.echo`, one request at a time, except that the first request after
/// [`STALL_AT`] waits [`STALL_FOR`] first (and everything behind it with it).
async fn stalling_responder(url: &str) -> tokio::task::JoinHandle<()> {
    let nats = natsrpc::connect(url).await.unwrap();
    let mut requests = nats.subscribe("stall.echo").await.unwrap();
    nats.flush().await.unwrap();
    tokio::spawn(async move {
        let started = Instant::now();
        let mut stalled = false;
        while let Some(request) = requests.next().await {
            if !stalled && started.elapsed() >= STALL_AT {
                stalled = true;
                tokio::time::sleep(STALL_FOR).await;
            }
            if let Some(reply) = request.reply {
                nats.publish(reply, request.payload).await.unwrap();
            }
        }
    })
}

async fn client(url: &str) -> Arc<StackClient> {
    let spec = StackSpec { echo_subject: Some("stall.echo".into()), ..StackSpec::new(Transport::Nats, url) };
    Arc::new(StackClient::connect(&spec, Duration::from_secs(5)).await.unwrap())
}

fn shot(client: &Arc<StackClient>, recorder: &Arc<Mutex<Recorder>>) -> Shot {
    let (client, recorder) = (Arc::clone(client), Arc::clone(recorder));
    Arc::new(move |_, planned| {
        let (client, recorder) = (Arc::clone(&client), Arc::clone(&recorder));
        Box::pin(async move {
            let sent = Instant::now();
            recorder.lock().unwrap().sent(planned, sent);
            let body = bytes::Bytes::from_static(b"ping");
            let answer = client.send("stall.echo", body.clone()).await;
            let verdict = check_echo(&body, &answer);
            recorder.lock().unwrap().answered(0, planned, sent, Instant::now(), &verdict);
        })
    })
}

/// Requests answered in 300 ms or more.
fn slow(recorder: &Mutex<Recorder>) -> u64 {
    let overall = recorder.lock().unwrap().overall();
    overall
        .response
        .iter_recorded()
        .filter(|v| v.value_iterated_to() >= 300_000)
        .map(|v| v.count_at_value())
        .sum()
}

#[tokio::test]
async fn a_stall_shows_in_full_in_open_loop_response_times() {
    let server = NatsServer::start().unwrap();
    let _responder = stalling_responder(&server.url()).await;
    let client = client(&server.url()).await;
    let recorder = Arc::new(Mutex::new(Recorder::new(1, 0, Duration::from_millis(250), None)));
    let schedule =
        Schedule::new(&[Phase { arrival_rate: 200.0, ramp_to: None, duration: Duration::from_secs(2) }]);

    let start = recorder.lock().unwrap().start;
    let dispatched = open_loop(start, &schedule, 10_000, shot(&client, &recorder), |_| {}).await;
    assert_eq!((dispatched.sent, dispatched.dropped), (400, 0));

    let r = recorder.lock().unwrap();
    let overall = r.overall();
    assert_eq!(overall.ok, 400, "every request answered");
    // Requests planned during the stall waited for it: about 200 of them, the first nearly 1 s.
    assert!(overall.response.max() >= 900_000, "max {} us", overall.response.max());
    drop(r);
    let waited = slow(&recorder);
    assert!(waited >= 100, "{waited} requests saw the stall");
    // The dispatcher kept to its plan while answers were late: sends were on time.
    let lag = recorder.lock().unwrap().lag.value_at_quantile(0.99);
    assert!(lag < 100_000, "sends lagged their plan by {lag} us at p99");
}

#[tokio::test]
async fn a_closed_loop_hides_the_same_stall() {
    let server = NatsServer::start().unwrap();
    let _responder = stalling_responder(&server.url()).await;
    let client = client(&server.url()).await;
    let recorder = Arc::new(Mutex::new(Recorder::new(1, 0, Duration::from_millis(250), None)));
    let start = recorder.lock().unwrap().start;
    closed_loop(start, 1, 0.0, Duration::from_secs(2), Duration::from_millis(5), shot(&client, &recorder))
        .await;
    assert!(recorder.lock().unwrap().overall().response.max() >= 900_000, "the stall is there...");
    assert_eq!(slow(&recorder), 1, "...but only one request saw it");
}
