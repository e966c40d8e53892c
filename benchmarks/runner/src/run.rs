//! The run: every scenario, on every stack in a shuffled order, repeated; each measurement on a
//! freshly started stack with the scenario's faults, after a warm-up, with resources sampled and
//! a progress line per interval; then medians, spreads, expectations and warnings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use bench_results::{
    CpuCost, EndpointResult, ExpectationCheck, IntervalResult, Measurement, ResourceGroup, RunResults,
    ScenarioResult, SoakResult, StackResult, StepResult, Summary, Usage, ValidationResult,
};

use natsrpc::ServiceStats;

use crate::BenchError;
use crate::config::{
    self, Arrivals, BenchmarkConfig, Expectations, Load, MixEntry, Phase, RunSettings, Scenario, StackSpec,
    Transport,
};
use crate::endpoint::{Endpoint, Target};
use crate::firing::{Firing, Observers, lock};
use crate::generator::recorder::{Recorder, Tally};
use crate::invariants::archive::Archivist;
use crate::invariants::contention::{self, Ledger};
use crate::invariants::convergence::Follower;
use crate::invariants::soak;
use crate::system::balancer::BALANCER;
use crate::system::environment;
use crate::system::private_brokers::Private;
use crate::system::resources::{Group, Sampler};
use crate::system::stacks::{RunningStack, StartOptions};
use crate::target::check::ExpectedFaults;
use crate::target::client::{StackClient, StatsSource};
use crate::workload::Workload;

/// A run about to happen.
#[derive(Debug)]
pub struct Runner {
    /// The configuration.
    pub config: BenchmarkConfig,
    /// The settings in force.
    pub settings: RunSettings,
    /// The profile named, if any.
    pub profile: Option<String>,
    /// The run folder.
    pub out: PathBuf,
    /// How stacks are started.
    pub start: StartOptions,
    /// The length of an interval (progress lines, percentiles over time, resource samples).
    pub interval: Duration,
}

/// Now, as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

impl Runner {
    /// Runs every scenario on every stack, writing interval logs as it goes.
    pub async fn run(&self) -> Result<RunResults, BenchError> {
        let started = now_rfc3339();
        let environment = environment::read();
        std::fs::create_dir_all(self.out.join("intervals"))
            .map_err(BenchError::io(self.out.join("intervals")))?;
        let nonce: String = nuid::next().to_string().chars().rev().take(8).collect();
        let mut warnings = Vec::new();
        let mut scenarios = Vec::new();
        let mut expectations = Vec::new();
        let settings = &self.settings;
        let mut aborted = false;
        for (index, name) in settings.scenarios.iter().enumerate() {
            if aborted {
                break;
            }
            let scenario = self
                .config
                .scenarios
                .get(name)
                .ok_or_else(|| BenchError::Config(format!("no scenario {name:?}")))?;
            let load = settings
                .durations
                .get(name)
                .or(settings.duration.as_ref())
                .map_or_else(|| scenario.load.clone(), |d| scenario.load.scaled_to(*d));
            let seed = settings.seed.wrapping_add(index as u64);
            let workload = Arc::new(Workload::new(scenario, seed, &nonce)?);
            let mut measured: BTreeMap<String, Vec<Measurement>> = BTreeMap::new();
            'repetitions: for repetition in 1..=settings.repetitions {
                let mut order: Vec<String> = settings
                    .stacks
                    .iter()
                    .filter(|s| scenario.stacks.as_ref().is_none_or(|only| only.contains(s)))
                    // A validation-off control would take the invalid requests for valid ones.
                    .filter(|s| scenario.invalid_share == 0.0 || !self.config.is_unvalidated_control(s))
                    .flat_map(|s| variants(s, scenario))
                    .collect();
                if order.is_empty() && repetition == 1 {
                    warnings.push(format!("{name}: none of its stacks is among the run's: it ran on none"));
                }
                if settings.shuffle_stacks {
                    order.shuffle(&mut StdRng::seed_from_u64(seed ^ (u64::from(repetition) << 32)));
                }
                for (position, stack) in order.iter().enumerate() {
                    crate::say!(
                        "== {name} on {stack}: repetition {repetition}/{}, {}/{} ({}, {:?})",
                        settings.repetitions,
                        position + 1,
                        order.len(),
                        load.label(),
                        load.duration()
                    );
                    let at = Place { scenario: name, stack, repetition, position: position as u32 + 1 };
                    match self.measure(&at, scenario, &load, &workload).await {
                        Ok((measurement, mut said)) => {
                            warnings.append(&mut said);
                            let missed = abort_on(scenario, &at, &measurement);
                            measured.entry(stack.clone()).or_default().push(measurement);
                            if !missed.is_empty() {
                                for check in &missed {
                                    crate::say!("   aborted: {}", check.describe());
                                }
                                warnings.push(format!(
                                    "the run was aborted after {name} on {stack}, repetition {repetition} (abort_on_fail): what came after it did not run"
                                ));
                                expectations.extend(missed);
                                aborted = true;
                                break 'repetitions;
                            }
                        }
                        // Figures of the wrong build, or shared with a stray, would mislead: stop.
                        Err(error @ (BenchError::Occupied(_) | BenchError::Build(_))) => return Err(error),
                        Err(error) => {
                            crate::say!("   failed: {error}");
                            warnings.push(format!("{name} on {stack}, repetition {repetition}: {error}"));
                        }
                    }
                }
            }
            let mut stacks = Vec::new();
            for stack in settings.stacks.iter().flat_map(|s| variants(s, scenario)) {
                let stack = &stack;
                let Some(repetitions) = measured.remove(stack) else { continue };
                let spec = self.config.stack_variant(stack)?;
                let summary = Summary::of(&repetitions);
                expectations.extend(ExpectationCheck::invariants(name, stack, &repetitions));
                if let Some(limits) = &scenario.performance_expectations {
                    expectations.extend(ExpectationCheck::all(
                        name,
                        stack,
                        &limits
                            .for_stack(config::scaled(stack).map_or(stack.as_str(), |(s, _)| s))
                            .recorded(),
                        &repetitions,
                    ));
                }
                stacks.push(StackResult {
                    name: stack.clone(),
                    description: spec.description.clone(),
                    transport: transport_name(spec.transport).to_string(),
                    repetitions,
                    summary,
                    cpus: spec
                        .processes
                        .iter()
                        .filter_map(|p| Some((p.name.clone(), p.cpus.clone()?)))
                        .collect(),
                    unvalidated_control_of: spec.unvalidated_control_of.clone(),
                    secured_variant_of: spec.secured_variant_of.clone(),
                    external: spec.is_external(),
                    scaled: config::scaled(stack).map(|(of, instances)| bench_results::Scaled {
                        of: of.to_string(),
                        instances,
                        process: spec.first_service().map(|p| p.name.clone()).unwrap_or_default(),
                        balanced: spec.processes.iter().any(|p| spec.behind_balancer(p)),
                    }),
                });
            }
            scenarios.push(ScenarioResult {
                name: name.clone(),
                description: scenario.description.clone(),
                load: load.recorded(),
                mix: scenario.mix.iter().map(MixEntry::recorded).collect(),
                flows: scenario.flows.iter().map(config::flow::Flow::recorded).collect(),
                invalid_share: scenario.invalid_share,
                faults: scenario.faults.as_ref().map(config::faults_recorded),
                expectations: scenario.performance_expectations.as_ref().map(Expectations::recorded),
                stacks,
            });
        }
        if settings.repetitions < 3 {
            warnings.push(format!(
                "only {} repetition(s): differences between stacks smaller than the spread of repeated runs (at least 3 needed to see it) are not established",
                settings.repetitions
            ));
        }
        Ok(RunResults {
            schema: bench_results::SCHEMA,
            started,
            finished: now_rfc3339(),
            profile: self.profile.clone(),
            environment,
            settings: settings.recorded(),
            scenarios,
            expectations,
            warnings,
        })
    }

    async fn measure(
        &self,
        at: &Place<'_>,
        scenario: &Scenario,
        load: &Load,
        workload: &Arc<Workload>,
    ) -> Result<(Measurement, Vec<String>), BenchError> {
        let spec = self.config.stack_variant(at.stack)?;
        let spec = spec.as_ref();
        // A DURATION override may have shortened the load below the outages' schedule.
        if let Some(problem) = crate::config::outage::problem(&scenario.outages, load.duration()) {
            return Err(BenchError::Config(format!("{}: {problem}", at.scenario)));
        }
        // Outages take down brokers: the stack's own, never the shared ones; an archive gets a
        // database of the stack's own.
        let wanted = Private {
            brokers: !scenario.outages.is_empty(),
            database: scenario.archive,
            proxied: scenario.outages.iter().any(crate::config::outage::Outage::cuts),
        };
        let private = if wanted == Private::default() && spec.nats_cluster.is_none() {
            None
        } else {
            // Named by a NUID alone: a stack's name is the config's, and no path of ours.
            let dir = std::env::temp_dir().join(format!("natsrpc-bench-brokers-{}", nuid::next()));
            Some(crate::system::private_brokers::on_private_brokers(at.stack, spec, &dir, wanted).await?)
        };
        let spec = private.as_ref().map_or(spec, |private| &private.spec);
        let mut start = self.start.clone();
        start.env.extend(fault_env(scenario.faults.as_ref())?);
        if scenario.convergence.is_some() {
            start.env.push(("ORDER_EVENTS".into(), "on".into()));
        }
        let mut running = RunningStack::start(at.stack, spec, &start).await?;
        let no_proxies = BTreeMap::new();
        let proxies = private.as_ref().map_or(&no_proxies, |private| &private.proxies);
        let database = private.as_ref().and_then(|private| private.database_url.as_deref());
        let measured =
            self.measure_running(at, spec, (&mut running, proxies, database), scenario, load, workload).await;
        running.stop(Duration::from_secs(10)).await?;
        let shared_nats =
            !private.as_ref().is_some_and(|private| private.brokers) && spec.nats_cluster.is_none();
        if scenario.convergence.is_some() && spec.transport == Transport::Nats && shared_nats {
            remove_event_stream(spec).await;
        }
        measured
    }

    async fn measure_running(
        &self,
        at: &Place<'_>,
        spec: &StackSpec,
        (running, proxies, database): (
            &mut RunningStack,
            &BTreeMap<String, crate::system::proxy::Proxy>,
            Option<&str>,
        ),
        scenario: &Scenario,
        load: &Load,
        workload: &Arc<Workload>,
    ) -> Result<(Measurement, Vec<String>), BenchError> {
        crate::outage::check(&scenario.outages, running, proxies)?;
        let client = Arc::new(StackClient::connect(spec, self.settings.request_timeout).await?);
        check_validation_build(&client, spec, at.stack).await?;
        let mut faults = ExpectedFaults::from_settings(scenario.faults.as_ref());
        if scenario.contention.is_some() {
            faults = faults.also(contention::CONFLICT);
        }
        let fire =
            Firing { workload: Arc::clone(workload), client: Arc::clone(&client), faults: Arc::new(faults) };
        setup(&client, workload, at.stack).await?;
        let ledger = scenario.contention.as_ref().map(|_| Arc::new(Ledger::new(workload.hot_skus.len())));
        let archivist = match database {
            Some(url) => Some(Arc::new(Archivist::new(url)?)),
            None => None,
        };
        let unmeasured =
            Observers { ledger: ledger.clone(), archivist: archivist.clone(), ..Observers::default() };

        if !self.settings.warmup.is_zero() {
            let warm_load = warm_up_load(load, self.settings.warmup);
            fire.run(&warm_load, &fire.recorder(self.interval, None), u64::MAX / 2, &unmeasured).await;
        }
        let (load, soak) = match load {
            Load::Soak { fraction, probe, duration, max_in_flight, .. } => {
                let recorder = fire.recorder(self.interval, None);
                fire.run(&load.scaled_to(*probe), &recorder, u64::MAX / 4, &unmeasured).await;
                let saturation = lock(&recorder).overall().answered() as f64 / probe.as_secs_f64();
                // Offered as draws (a flow is one, of several requests): answers over requests a draw.
                let rate = (saturation * fraction / workload.requests_per_draw()).max(1.0);
                crate::say!(
                    "   saturation probe: {saturation:.0} answers/s; soaking at {rate:.0} (x{fraction})"
                );
                let phases = vec![Phase { arrival_rate: rate, ramp_to: None, duration: *duration }];
                let arrivals = Arrivals::Uniform;
                (
                    Load::Open { phases, max_in_flight: *max_in_flight, arrivals },
                    Some((saturation, *fraction, rate)),
                )
            }
            other => (other.clone(), None),
        };

        let step = match &load {
            Load::Stepped { step_duration, .. } => Some(*step_duration),
            _ => None,
        };
        let recorder = fire.recorder(self.interval, step);
        let stop = Arc::new(AtomicBool::new(false));
        let monitor = tokio::spawn(monitor(
            Sampler::start(groups(running, spec, soak.is_some())),
            Arc::clone(&recorder),
            Arc::clone(&stop),
            self.interval,
        ));
        let follower = scenario
            .convergence
            .as_ref()
            .map(|settings| Arc::new(Follower::new(Arc::clone(&client), settings.clone())));
        let start = lock(&recorder).start;
        let timeline = (!scenario.outages.is_empty()).then(|| Arc::new(crate::outage::Timeline::new(start)));
        let measured =
            Observers { ledger, follower, timeline: timeline.clone(), archivist: archivist.clone() };
        let began = Instant::now();
        let watching = async {
            if let Some(archivist) = &archivist {
                archivist.watch(start, &stop).await;
            }
        };
        let ((target_rps, played), ()) = tokio::join!(
            async {
                let fired = tokio::join!(
                    fire.run(&load, &recorder, 0, &measured),
                    crate::outage::play(&scenario.outages, running, proxies, start)
                );
                stop.store(true, Ordering::Relaxed);
                fired
            },
            watching
        );
        let elapsed = began.elapsed();
        let usage = monitor.await?;
        let validation = validation(&client, spec).await;
        let unacknowledged = unacknowledged_orders(&lock(&recorder), &workload.endpoints);
        let (contention, convergence) = measured.conclude(&client, workload, unacknowledged).await;
        let settle = scenario.convergence.as_ref().map_or(Duration::from_secs(10), |c| c.settle);
        let archived = match &archivist {
            Some(archivist) => Some(archivist.finish(start, began + elapsed, settle).await),
            None => None,
        };
        let played = played?;
        let mut outages =
            timeline.as_ref().map(|timeline| crate::outage::recovery(&played, timeline, elapsed));
        if let (Some(archivist), Some(outages)) = (&archivist, outages.as_mut()) {
            archivist.drains(start, &played, outages).await;
        }
        let faults = outages.map(|outages| {
            let followed = convergence.clone().unwrap_or_default();
            bench_results::FaultsResult::of(
                outages,
                followed.lost + followed.not_recounted,
                followed.counted_twice,
            )
        });

        let recorder = lock(&recorder);
        write_interval_log(&self.out.join(at.interval_log()), &recorder, at.stack)?;
        let beside = Beside { elapsed, target_rps, resources: usage, validation };
        let mut measurement = measurement(at, &load, &recorder, workload, beside);
        measurement.contention = contention;
        measurement.convergence = convergence;
        measurement.faults = faults;
        measurement.archive = archived;
        measurement.soak = soak.map(|(saturation_rps, fraction, offered_rps)| SoakResult {
            saturation_rps,
            fraction,
            offered_rps,
            drift: soak::drift(&measurement.intervals),
            memory: measurement
                .resources
                .iter()
                // Each process on its own, and each broker; not the sum of the stack's processes.
                .filter(|u| matches!(u.group(), ResourceGroup::StackProcess(_) | ResourceGroup::Broker(_)))
                .filter_map(soak::memory_trend)
                .collect(),
        });
        let warnings = warnings(at, &measurement);
        Ok((measurement, warnings))
    }
}

/// The names a stack is measured under in `scenario`: its own, or in a scale-out one per
/// instance count (`{stack}@{count}`).
fn variants(stack: &str, scenario: &Scenario) -> Vec<String> {
    match &scenario.scale_out {
        Some(scale) => scale.instances.iter().map(|n| format!("{stack}@{n}")).collect(),
        None => vec![stack.to_string()],
    }
}

/// The processes sampled: the stack's (together, and each on its own in a soak, so that a leak
/// names its process), each broker's, and the load generator.
fn groups(running: &RunningStack, spec: &StackSpec, each_process: bool) -> Vec<Group> {
    // A stack that runs elsewhere has no processes here to read.
    let mut groups = Vec::new();
    if !spec.is_external() {
        groups.push(Group { group: ResourceGroup::Stack, pids: running.pids() });
    }
    if each_process {
        groups.extend(
            running
                .members()
                .iter()
                .filter(|m| !m.broker)
                .map(|m| Group { group: ResourceGroup::StackProcess(m.role.clone()), pids: vec![m.pid()] }),
        );
    }
    // A broker of the stack's own is its process (and children, and the other servers of its
    // cluster); a shared one is found by name.
    groups.extend(spec.brokers.iter().filter_map(|broker| {
        let own: Vec<u32> =
            running.members().iter().filter(|m| m.is_broker(broker)).flat_map(|m| m.family()).collect();
        if own.is_empty() { Group::broker(broker) } else { Some(Group::private_broker(broker, own)) }
    }));
    if let Some(balancer) = running.members().iter().find(|m| m.role == BALANCER) {
        groups.push(Group::private_broker(crate::system::balancer::PROGRAM, balancer.family()));
    }
    groups.push(Group::generator());
    groups
}

/// Removes the shop's JetStream stream (and its consumers) from the shared server once a stack
/// that published to it has stopped: the next stack starts from an empty one, and no run leaves
/// its orders behind.
async fn remove_event_stream(spec: &StackSpec) {
    let Some(stream) = crate::outage::order_stream() else { return };
    if let Ok(nats) = spec.connect_nats().await {
        let _ = async_nats::jetstream::new(nats).delete_stream(stream).await;
    }
}

/// Sends the workload's setup requests (the orders overviews read, the hot items' stock), each
/// of which must succeed.
async fn setup(client: &StackClient, workload: &Workload, stack: &str) -> Result<(), BenchError> {
    for (endpoint, body) in &workload.setup {
        let failed = match client.send(endpoint.subject(), body.clone()).await {
            Ok((200, _)) => continue,
            Ok((status, reply)) => format!("{status} {}", String::from_utf8_lossy(&reply)),
            Err(error) => format!("{error:?}"),
        };
        return Err(BenchError::Process(format!("setup {endpoint} on {stack}: {failed}")));
    }
    Ok(())
}

/// Orders sent that got no success (their fate unknown to the followers).
fn unacknowledged_orders(recorder: &Recorder, endpoints: &[Target]) -> u64 {
    endpoints
        .iter()
        .zip(&recorder.endpoints)
        .filter(|(endpoint, _)| **endpoint == Endpoint::CreateOrder)
        .map(|(_, tally)| tally.answered() - tally.ok)
        .sum()
}

/// With `abort_on_fail`, the limits `measurement` alone misses (named as what ended the run);
/// none otherwise.
fn abort_on(scenario: &Scenario, at: &Place<'_>, measurement: &Measurement) -> Vec<ExpectationCheck> {
    let Some(limits) = &scenario.performance_expectations else { return Vec::new() };
    let limits = limits.for_stack(config::scaled(at.stack).map_or(at.stack, |(s, _)| s));
    if !limits.abort_on_fail {
        return Vec::new();
    }
    let mut missed: Vec<ExpectationCheck> =
        ExpectationCheck::all(at.scenario, at.stack, &limits.recorded(), std::slice::from_ref(measurement))
            .into_iter()
            .filter(|check| !check.held)
            .collect();
    for check in &mut missed {
        check.metric = format!("{} (repetition {}: aborted the run)", check.metric, at.repetition);
    }
    missed
}

/// Where a measurement belongs.
struct Place<'a> {
    scenario: &'a str,
    stack: &'a str,
    repetition: u32,
    position: u32,
}

impl Place<'_> {
    /// Its interval histogram log, relative to the run folder.
    fn interval_log(&self) -> String {
        format!("intervals/{}-{}-r{}.hlog", self.scenario, self.stack, self.repetition)
    }
}

fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Nats => "nats",
        Transport::Http => "http",
    }
}

/// `FAULT_*` variables for the stack's processes.
fn fault_env(faults: Option<&faults::FaultSettings>) -> Result<Vec<(String, String)>, BenchError> {
    let Some(faults) = faults else { return Ok(Vec::new()) };
    let value = serde_json::to_value(faults)
        .map_err(|source| BenchError::Serialize { what: "the faults' settings", source })?;
    let Some(fields) = value.as_object() else { return Ok(Vec::new()) };
    Ok(fields.iter().map(|(k, v)| (format!("FAULT_{}", k.to_ascii_uppercase()), v.to_string())).collect())
}

/// The load that warms a stack up: the same model, shorter (a stepped load at its first rate).
fn warm_up_load(load: &Load, warmup: Duration) -> Load {
    match load {
        Load::Stepped { steps, max_in_flight, .. } => Load::Open {
            phases: vec![Phase {
                arrival_rate: steps.first().copied().unwrap_or(100.0),
                ramp_to: None,
                duration: warmup,
            }],
            max_in_flight: *max_in_flight,
            arrivals: Arrivals::Uniform,
        },
        other => other.scaled_to(warmup),
    }
}

/// Samples resources and prints a progress line every interval until told to stop.
async fn monitor(
    mut sampler: Sampler,
    recorder: Arc<Mutex<Recorder>>,
    stop: Arc<AtomicBool>,
    interval: Duration,
) -> Vec<Usage> {
    let begun = lock(&recorder).start;
    let mut ticker = tokio::time::interval_at((begun + interval).into(), interval);
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        sampler.sample();
        let (total, last) = {
            let recorder = lock(&recorder);
            let total: u64 = recorder.intervals.iter().map(|i| i.answered).sum();
            // The interval that has just ended (ticks may come a little early or late).
            let index = (begun.elapsed().as_secs_f64() / interval.as_secs_f64()).round() as usize;
            let last = recorder.intervals.get(index.saturating_sub(1)).map(|i| {
                (
                    i.answered,
                    i.response.value_at_quantile(0.5),
                    i.response.value_at_quantile(0.99),
                    i.unexpected,
                )
            });
            (total, last)
        };
        let (ops, p50, p99, unexpected) = last.unwrap_or_default();
        crate::say!(
            "   {:>5.0} s | {total:>9} ops | {:>8.0} ops/s | p50 {:>7.2} ms | p99 {:>7.2} ms | {unexpected:>4} unexpected | stack {:>5.0} MiB | generator {:>4.0} MiB",
            begun.elapsed().as_secs_f64(),
            ops as f64 / interval.as_secs_f64(),
            p50 as f64 / 1000.0,
            p99 as f64 / 1000.0,
            sampler.rss_mib(&ResourceGroup::Stack),
            sampler.rss_mib(&ResourceGroup::Generator),
        );
    }
    sampler.finish()
}

/// Each service's `$SRV.STATS` answer on NATS, or `GET /stats` on HTTP (where the services run in
/// the process that answers); what does not answer is left out.
async fn service_stats(client: &StackClient, spec: &StackSpec) -> Vec<ServiceStats> {
    let mut answers = Vec::new();
    match client.stats_source() {
        StatsSource::Nats(nats) => {
            for service in spec.services() {
                if let Ok(reply) = nats.request(format!("$SRV.STATS.{service}"), "".into()).await
                    && let Ok(value) = serde_json::from_slice(&reply.payload)
                {
                    answers.push(value);
                }
            }
        }
        StatsSource::Http(_) if spec.services().is_empty() => {}
        StatsSource::Http(connections) => {
            if let Ok(reply) = connections.get("/stats").await
                && reply.status == 200
                && let Ok(all) = serde_json::from_slice(&reply.payload)
            {
                answers = all;
            }
        }
    }
    answers
}

/// Refuses to measure a validation-off control whose services validate, or a stack whose services
/// do not (a control build in the wrong place would flatter it): every endpoint's stats say which
/// build answers (`data.validation`; builds older than the field validate). A control must prove
/// it; a stack whose services keep their stats elsewhere (the RabbitMQ workers) is let through.
async fn check_validation_build(
    client: &StackClient,
    spec: &StackSpec,
    stack: &str,
) -> Result<(), BenchError> {
    if spec.echo_subject.is_some() {
        return Ok(());
    }
    let stats = service_stats(client, spec).await;
    let builds: Vec<bool> =
        stats.iter().flat_map(|answer| &answer.endpoints).map(|endpoint| endpoint.data.validates()).collect();
    if spec.unvalidated_control_of.is_some() {
        if builds.is_empty() || builds.iter().any(|validates| *validates) {
            return Err(BenchError::Build(format!(
                "{stack} is a validation-off control, but its services validate (or do not say): \
                 build them with natsrpc's unvalidated-control feature (./scripts/run-benchmarks.sh does)"
            )));
        }
    } else if builds.contains(&false) {
        return Err(BenchError::Build(format!(
            "{stack}'s services were built without validation (natsrpc's unvalidated-control \
             feature): rebuild them (cargo build --release) before measuring"
        )));
    }
    Ok(())
}

/// Validation time per endpoint from the services' own stats.
async fn validation(client: &StackClient, spec: &StackSpec) -> Vec<ValidationResult> {
    if spec.echo_subject.is_some() {
        return Vec::new();
    }
    let mut results = Vec::new();
    // The names are the services' own words (an external target's too): escaped and cut before
    // they reach the results and the report.
    let name = |text: &str| natsrpc::escape::escape(text, 64).into_owned();
    for answer in service_stats(client, spec).await {
        for endpoint in answer.endpoints.iter().filter(|e| e.num_requests > 0) {
            results.push(ValidationResult {
                endpoint: format!("{}.{}", name(&answer.name), name(&endpoint.name)),
                requests: endpoint.num_requests,
                validation_us: endpoint.data.average_validation_time as f64 / 1000.0,
                processing_us: endpoint.average_processing_time as f64 / 1000.0,
                share: endpoint.data.validation_share,
            });
        }
    }
    results
}

fn write_interval_log(path: &std::path::Path, recorder: &Recorder, tag: &str) -> Result<(), BenchError> {
    use hdrhistogram::serialization::V2DeflateSerializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
    let io = |e: std::io::Error| BenchError::io(path)(e);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    let mut serializer = V2DeflateSerializer::new();
    let now = std::time::SystemTime::now();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment("response times in microseconds, one histogram per interval")
        .with_start_time(now)
        .with_base_time(now)
        .begin_log_with(&mut file, &mut serializer)
        .map_err(io)?;
    let tag: String = tag.chars().filter(|c| !c.is_whitespace() && *c != ',').collect();
    for (i, interval) in recorder.intervals.iter().enumerate() {
        let start = recorder.interval * i as u32;
        writer
            .write_histogram(&interval.response, start, recorder.interval, Tag::new(&tag))
            .map_err(|e| BenchError::io(path)(std::io::Error::other(format!("{e:?}"))))?;
    }
    Ok(())
}

/// What a measurement found beside the recorder's histograms.
struct Beside {
    /// How long the load ran.
    elapsed: Duration,
    /// The open loop's planned rate, averaged.
    target_rps: Option<f64>,
    /// CPU and memory of each group of processes.
    resources: Vec<Usage>,
    /// Validation's cost per endpoint, from the services' stats.
    validation: Vec<ValidationResult>,
}

/// The one place that turns everything measured into the result.
fn measurement(
    at: &Place<'_>,
    load: &Load,
    recorder: &Recorder,
    workload: &Workload,
    beside: Beside,
) -> Measurement {
    let Beside { elapsed, target_rps, resources, validation } = beside;
    let overall = recorder.overall();
    let answered = overall.answered();
    let duration_s = elapsed.as_secs_f64().max(1e-9);
    let sizes = workload.mean_sizes();
    let figures = |name: &str, mean_body_bytes: usize, tally: &Tally| EndpointResult {
        name: name.to_string(),
        mean_body_bytes,
        answered: tally.answered(),
        ok: tally.ok,
        expected_errors: tally.expected.clone(),
        unexpected_errors: tally.unexpected.clone(),
        latency_us: crate::generator::recorder::percentiles(&tally.response),
        service_time_us: crate::generator::recorder::percentiles(&tally.service),
    };
    let endpoints = recorder
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, tally)| figures(&workload.labels[i], sizes[i], tally))
        .collect();
    let flow_sizes = workload.flow_sizes();
    let flows = recorder
        .flows
        .iter()
        .enumerate()
        .map(|(i, tally)| figures(&workload.flow_names[i], flow_sizes[i], tally))
        .collect();
    let seconds = recorder.interval.as_secs_f64();
    let intervals = recorder
        .intervals
        .iter()
        .enumerate()
        .map(|(i, interval)| IntervalResult {
            t_s: i as f64 * seconds,
            answered: interval.answered,
            rps: interval.answered as f64 / seconds,
            unexpected: interval.unexpected,
            p50_us: interval.response.value_at_quantile(0.5),
            p99_us: interval.response.value_at_quantile(0.99),
            max_us: interval.response.max(),
        })
        .collect();
    let steps = match (load, &recorder.steps) {
        (Load::Stepped { steps, step_duration, sustained, .. }, Some((_, tallies))) => {
            let first_p99_us = tallies.first().map_or(0, |tally| tally.response.value_at_quantile(0.99));
            steps
                .iter()
                .enumerate()
                .map(|(i, draws)| {
                    // Requests planned, as answers are counted (a flow drawn plans its steps).
                    let rate = &(draws * workload.requests_per_draw());
                    let tally = tallies.get(i).cloned().unwrap_or_default();
                    let achieved_rps = tally.answered() as f64 / step_duration.as_secs_f64();
                    let p99_us = tally.response.value_at_quantile(0.99);
                    let unexpected = tally.unexpected_count();
                    let error_rate = unexpected as f64 / tally.answered().max(1) as f64;
                    StepResult {
                        target_rps: *rate,
                        achieved_rps,
                        p50_us: tally.response.value_at_quantile(0.5),
                        p99_us,
                        unexpected,
                        sustained: Some(sustained.holds(
                            *rate,
                            achieved_rps,
                            error_rate,
                            p99_us,
                            first_p99_us,
                        )),
                    }
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let cpu_of = |of: fn(&ResourceGroup) -> bool| {
        resources.iter().filter(|u| of(&u.group())).map(|u| u.cpu_s).sum::<f64>()
    };
    let stack_s = cpu_of(|g| *g == ResourceGroup::Stack);
    let generator_s = cpu_of(|g| *g == ResourceGroup::Generator);
    let brokers_s = cpu_of(|g| matches!(g, ResourceGroup::Broker(_)));
    let serving = stack_s + brokers_s;
    let cpu = CpuCost {
        stack_s,
        brokers_s,
        generator_s,
        ms_per_1000_requests: if answered == 0 { 0.0 } else { serving * 1e6 / answered as f64 },
        requests_per_cpu_second: if serving == 0.0 { 0.0 } else { answered as f64 / serving },
    };
    Measurement {
        repetition: at.repetition,
        position: at.position,
        load_model: load.label().to_string(),
        duration_s,
        target_rps,
        sent: recorder.sent,
        dropped: recorder.dropped,
        achieved_rps: answered as f64 / duration_s,
        answered,
        ok: overall.ok,
        expected_errors: overall.expected.clone(),
        unexpected_errors: overall.unexpected.clone(),
        unexpected_rate: if answered == 0 {
            0.0
        } else {
            overall.unexpected_count() as f64 / answered as f64
        },
        latency_us: crate::generator::recorder::percentiles(&overall.response),
        service_time_us: crate::generator::recorder::percentiles(&overall.service),
        dispatch_lag_us: crate::generator::recorder::percentiles(&recorder.lag),
        endpoints,
        flows,
        intervals,
        steps,
        resources,
        cpu,
        validation,
        interval_log: at.interval_log(),
        contention: None,
        convergence: None,
        soak: None,
        faults: None,
        archive: None,
    }
}

/// What a reader should know about one measurement.
fn warnings(at: &Place<'_>, m: &Measurement) -> Vec<String> {
    let mut said = Vec::new();
    let place = format!("{} on {} (repetition {})", at.scenario, at.stack, at.repetition);
    let generator_share = m.cpu.generator_s / m.duration_s;
    if generator_share > 0.85 {
        said.push(format!(
            "{place}: the load generator used {:.0}% of a core; the stack may have been held back by it",
            generator_share * 100.0
        ));
    }
    if m.target_rps.is_some() && m.dispatch_lag_us.p99 > 5_000 {
        said.push(format!(
            "{place}: the dispatcher sent 1% of requests more than {:.1} ms late (the generator is saturated; latencies still count from the planned time)",
            m.dispatch_lag_us.p99 as f64 / 1000.0
        ));
    }
    if m.dropped > 0 {
        said.push(format!("{place}: {} planned requests were dropped with too many in flight", m.dropped));
    }
    if let Some(target) = m.target_rps
        && m.achieved_rps < 0.95 * target
    {
        said.push(format!(
            "{place}: achieved {:.0} of {:.0} requests per second planned (saturated)",
            m.achieved_rps, target
        ));
    }
    for trend in m.soak.iter().flat_map(|s| &s.memory) {
        if trend.verdict == bench_results::MemoryVerdict::Growing {
            said.push(format!(
                "{place}: {}'s memory grew {:+.2} MiB a minute and still grew in the second half ({:.0} to {:.0} MiB){}",
                trend.name,
                trend.slope_mib_per_min,
                trend.start_mib,
                trend.end_mib,
                if trend.conclusive { ": a leak, or a cache without a bound" } else { " (too short a soak to be sure)" }
            ));
        }
    }
    let unexpected: u64 = m.unexpected_errors.values().sum();
    if unexpected > 0 {
        let kinds: Vec<String> = m.unexpected_errors.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        said.push(format!("{place}: {unexpected} unexpected errors ({})", kinds.join(", ")));
    }
    for line in &said {
        crate::say!("   warning: {line}");
    }
    said
}
