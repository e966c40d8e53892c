//! Firing a measurement's load: each request (or flow) the load plans is drawn, sent, checked and
//! recorded, and shown to the observers that watch the answers beside the recorder (the stock
//! books, the orders' followers, the outage timeline, the archive).
//!
//! A flow runs its steps in turn: each step is recorded as an answer of its own (planned when the
//! step before it was answered and its think time over), values it captures go into the next
//! steps' bodies, and the journey is recorded as one (from its planned start) when it ends, at
//! its last step or at the first that was not a success.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench_results::{ContentionResult, ConvergenceResult, ErrorKind};
use bytes::Bytes;

use crate::config::{Arrivals, Load};
use crate::endpoint::Endpoint;
use crate::generator::load::{Schedule, Shot, closed_loop, open_loop};
use crate::generator::recorder::Recorder;
use crate::invariants::archive::Archivist;
use crate::invariants::contention::Ledger;
use crate::invariants::convergence::Follower;
use crate::target::check::{ExpectedFaults, Verdict, check, check_echo};
use crate::target::client::StackClient;
use crate::workload::{Drawn, Expect, FlowPlan, Pick, Template, Workload};

/// The recorder, locked; a poisoned lock means a panic mid-record elsewhere, and the figures stay
/// usable.
pub fn lock(recorder: &Mutex<Recorder>) -> std::sync::MutexGuard<'_, Recorder> {
    recorder.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What watches the answers beside the recorder: the stock books, the orders' followers.
#[derive(Clone, Default)]
pub struct Observers {
    /// The hot items' stock books (contention).
    pub ledger: Option<Arc<Ledger>>,
    /// The orders followed into analytics (convergence).
    pub follower: Option<Arc<Follower>>,
    /// Every answer's time and verdict (outages).
    pub timeline: Option<Arc<crate::outage::Timeline>>,
    /// The orders looked for in the archive.
    pub archivist: Option<Arc<Archivist>>,
}

impl Observers {
    /// Balances the books and waits for the followers, once the load is over.
    pub async fn conclude(
        &self,
        client: &StackClient,
        workload: &Workload,
        unacknowledged: u64,
    ) -> (Option<ContentionResult>, Option<ConvergenceResult>) {
        let contention = match &self.ledger {
            Some(ledger) => Some(ledger.settle(client, workload).await),
            None => None,
        };
        let convergence = match &self.follower {
            Some(follower) => Some(follower.finish(unacknowledged).await),
            None => None,
        };
        (contention, convergence)
    }
}

/// What every request of a measurement shares: the requests, the stack's client, the errors the
/// scenario makes legitimate.
pub struct Firing {
    /// The requests.
    pub workload: Arc<Workload>,
    /// The stack's client.
    pub client: Arc<StackClient>,
    /// The errors the scenario makes legitimate.
    pub faults: Arc<ExpectedFaults>,
}

/// One request's answer, judged.
struct Answered {
    verdict: Verdict,
    /// The answer's body, when there was one (for a flow's captures).
    body: Option<Bytes>,
    sent: Instant,
    done: Instant,
}

impl Firing {
    /// A fresh recorder for the workload's entries and flows, by `interval` (and `step`).
    pub fn recorder(&self, interval: Duration, step: Option<Duration>) -> Arc<Mutex<Recorder>> {
        let (entries, flows) = (self.workload.labels.len(), self.workload.flow_names.len());
        Arc::new(Mutex::new(Recorder::new(entries, flows, interval, step)))
    }

    /// Runs `load` into `recorder`, request keys from `key_offset` (so that a warm-up and a
    /// measurement draw different requests); answers the planned rate of an open loop, in
    /// requests a second (a flow's journey counting its steps).
    pub async fn run(
        &self,
        load: &Load,
        recorder: &Arc<Mutex<Recorder>>,
        key_offset: u64,
        observers: &Observers,
    ) -> Option<f64> {
        let seed = self.workload.seed() ^ key_offset;
        let draws = run_load(load, recorder, self.shot(recorder, key_offset, observers), seed).await;
        // Requests planned, as answers are counted: a flow drawn plans its steps.
        draws.map(|rate| rate * self.workload.requests_per_draw())
    }

    /// One request or flow: draw it, send it, check and record the answers (and show them to
    /// the observers).
    fn shot(&self, recorder: &Arc<Mutex<Recorder>>, key_offset: u64, observers: &Observers) -> Shot {
        // Everything a request needs behind one pointer: one reference count per request.
        let shared = Arc::new((
            Firing {
                workload: Arc::clone(&self.workload),
                client: Arc::clone(&self.client),
                faults: Arc::clone(&self.faults),
            },
            Arc::clone(recorder),
            observers.clone(),
        ));
        Arc::new(move |key, planned| {
            let shared = Arc::clone(&shared);
            Box::pin(async move {
                let (firing, recorder, observers) = &*shared;
                let key = key.wrapping_add(key_offset);
                match firing.workload.draw(key) {
                    Pick::Request(drawn) => {
                        let answered = firing.fire(&drawn, planned, recorder).await;
                        record(&drawn, planned, &answered, &answered.verdict, recorder, observers);
                    }
                    Pick::Flow(flow) => firing.journey(flow, key, planned, recorder, observers).await,
                }
            })
        })
    }

    /// Sends one request and judges its answer.
    async fn fire(&self, drawn: &Drawn<'_>, planned: Instant, recorder: &Mutex<Recorder>) -> Answered {
        let sent = Instant::now();
        lock(recorder).sent(planned, sent);
        let (to, codec) = (drawn.template.endpoint.subject(), drawn.template.codec);
        let answer = self.client.send_as(to, codec, drawn.body.clone()).await;
        let done = Instant::now();
        let verdict = if self.client.is_echo() {
            check_echo(&drawn.body, &answer)
        } else {
            check(&drawn.template.expect, codec, &answer, &self.faults)
        };
        Answered { verdict, body: answer.ok().map(|(_, body)| body), sent, done }
    }

    /// Runs `flow` (drawn as `key`, planned at `planned`) step by step.
    async fn journey(
        &self,
        flow: &FlowPlan,
        key: u64,
        planned: Instant,
        recorder: &Mutex<Recorder>,
        observers: &Observers,
    ) {
        let mut captured = vec![String::new(); flow.captures];
        let (mut outcome, mut first_sent, mut done) = (Verdict::Ok, None, planned);
        for (n, step) in flow.steps.iter().enumerate() {
            // A step is due once the one before it is answered and its think time is over.
            let step_planned = if n == 0 {
                planned
            } else {
                if !step.think_time.is_zero() {
                    tokio::time::sleep(step.think_time).await;
                }
                Instant::now()
            };
            let drawn = self.workload.step(step.entry, key, &captured);
            let answered = self.fire(&drawn, step_planned, recorder).await;
            first_sent.get_or_insert(answered.sent);
            done = answered.done;
            // The step's figure: its answer's verdict, unless the journey cannot go on for want of
            // a value in it. The observers see the answer as it was (an order placed is placed).
            let mut verdict = answered.verdict.clone();
            if verdict == Verdict::Ok && !step.capture.is_empty() {
                let value = answered.body.as_deref().and_then(|body| answer_value(drawn.template, body));
                for (slot, path) in &step.capture {
                    match (value.as_ref().and_then(|value| path.find(value)), captured.get_mut(*slot)) {
                        (Some(found), Some(into)) => *into = found,
                        _ => {
                            verdict = Verdict::Unexpected(ErrorKind::Flow("capture_missing".into()));
                            break;
                        }
                    }
                }
            }
            record(&drawn, step_planned, &answered, &verdict, recorder, observers);
            if verdict != Verdict::Ok {
                outcome = verdict;
                break;
            }
        }
        lock(recorder).flow_done(flow.index, planned, first_sent.unwrap_or(planned), done, &outcome);
    }
}

/// Records an answer of `drawn`'s entry as `recorded` (its verdict, or what a flow made of it),
/// and shows the answer as it was to the observers.
fn record(
    drawn: &Drawn<'_>,
    planned: Instant,
    answered: &Answered,
    recorded: &Verdict,
    recorder: &Mutex<Recorder>,
    observers: &Observers,
) {
    let Answered { verdict, sent, done, .. } = answered;
    if let Some(ledger) = &observers.ledger {
        ledger.book(&drawn.template.stock, verdict);
    }
    if *verdict == Verdict::Ok && drawn.template.endpoint == Endpoint::CreateOrder {
        if let Some(follower) = &observers.follower {
            follower.placed(&drawn.body, *done);
        }
        if let Some(archivist) = &observers.archivist {
            archivist.placed(&drawn.body, *done);
        }
    }
    if let Some(timeline) = &observers.timeline {
        timeline.answered(planned, *done, verdict);
    }
    lock(recorder).answered(drawn.template.entry, planned, *sent, *done, recorded);
}

/// What a flow captures from: natsrpc's envelope's `data`, or the whole answer where any answer
/// will do (a service that does not speak natsrpc's envelope).
fn answer_value(template: &Template, body: &[u8]) -> Option<serde_json::Value> {
    if template.expect == Expect::Any {
        return template.codec.decode(body).ok();
    }
    natsrpc::envelope::decode_reply(template.codec, body).ok()
}

/// Runs `load` from the recorder's start (Poisson arrivals drawn from `seed`); answers the planned
/// rate of an open loop.
pub async fn run_load(load: &Load, recorder: &Arc<Mutex<Recorder>>, shot: Shot, seed: u64) -> Option<f64> {
    let start = lock(recorder).start;
    let dropped = {
        let recorder = Arc::clone(recorder);
        move |_| lock(&recorder).dropped()
    };
    match load {
        Load::Closed { users, spawn_rate, duration, think_time } => {
            closed_loop(start, *users, *spawn_rate, *duration, *think_time, shot).await;
            None
        }
        Load::Open { phases, max_in_flight, arrivals } => {
            let schedule = match arrivals {
                Arrivals::Uniform => Schedule::new(phases),
                Arrivals::Poisson => Schedule::new(phases).poisson(seed),
            };
            open_loop(start, &schedule, u64::from(*max_in_flight), shot, dropped).await;
            Some(schedule.total() as f64 / load.duration().as_secs_f64())
        }
        // The saturation probe (and a soak's warm-up): users as fast as the stack answers.
        Load::Soak { probe_users, duration, .. } => {
            closed_loop(start, *probe_users, 0.0, *duration, Duration::ZERO, shot).await;
            None
        }
        Load::Stepped { steps, step_duration, max_in_flight, .. } => {
            let schedule = Schedule::stepped(steps, *step_duration);
            open_loop(start, &schedule, u64::from(*max_in_flight), shot, dropped).await;
            Some(schedule.total() as f64 / load.duration().as_secs_f64())
        }
    }
}
