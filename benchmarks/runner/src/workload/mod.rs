//! What the load generator sends: a scenario's weighted mix of endpoints turned into ready-made
//! request bodies, valid ones and invalid ones that each break one named rule.
//!
//! Bodies are made before the run (making an order takes longer than sending it), in several
//! variants per mix entry. Ids that must be new on every request (an order's id, an event's, a
//! job's) are written into the body at send time, over a placeholder of fixed width, so that a
//! body is a copy and a few byte writes, and every id in the run is unique.
//!
//! A mix entry with a body of one's own (`crate::own_request`) has one template, filled in at
//! send time, and no invalid ones.
//!
//! A flow's steps are entries too, after the mix's (so that each step has its own figures), sent
//! valid; a draw picks a mix entry's request or a whole flow ([`Pick`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use natsrpc::testing::Invalid;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::BenchError;
use crate::config::flow::{CapturePath, capture_paths};
use crate::config::{Contention, MixEntry, PayloadSize, Scenario};
use crate::draw::{splitmix64, unit};
use crate::endpoint::{Endpoint, Service, Target};
use crate::own_request::{Outcome, OwnRequest};

/// Where a fresh id goes: 12 characters no generated payload contains.
const PLACEHOLDER: &[u8; 12] = b"@@@@@@@@@@@@";
/// Valid variants made per mix entry.
const VARIANTS: usize = 32;

/// What the answer to a request must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// A success, or one of the scenario's injected faults.
    Valid,
    /// Any answer (a service of one's own that does not answer in natsrpc's envelope).
    Any,
    /// A validation error with a violation at `path` (code `code`).
    Invalid {
        /// The broken field.
        path: String,
        /// The broken rule.
        code: String,
    },
}

/// One ready-made request body.
#[derive(Debug, Clone)]
pub struct Template {
    /// Index of its mix entry.
    pub entry: usize,
    /// Where it goes.
    pub endpoint: Target,
    /// How its body is encoded.
    pub codec: natsrpc::Codec,
    /// JSON with placeholders.
    body: Vec<u8>,
    /// For a body of one's own: the template filled in at send time, instead of `body`.
    own: Option<OwnBody>,
    /// Where the placeholders are.
    slots: Vec<usize>,
    /// What the answer must be.
    pub expect: Expect,
    /// What it does to the hot items' stock when it succeeds (contention scenarios).
    pub stock: Vec<StockMove>,
}

/// A body of one's own and what its variables are drawn from.
#[derive(Debug, Clone)]
struct OwnBody {
    request: Arc<OwnRequest>,
    seed: u64,
    run: Arc<str>,
}

/// Units taken from or added to one hot item by a request that succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockMove {
    /// The item's index among the hot items.
    pub sku: usize,
    /// Units.
    pub units: u64,
    /// Taken (a reservation) rather than added (a restock).
    pub taken: bool,
}

impl Template {
    fn new(
        entry: usize,
        endpoint: Endpoint,
        value: &impl Serialize,
        expect: Expect,
    ) -> Result<Self, BenchError> {
        Self::from_json(entry, endpoint, json(value)?, expect)
    }

    fn from_json(
        entry: usize,
        endpoint: Endpoint,
        body: Vec<u8>,
        expect: Expect,
    ) -> Result<Self, BenchError> {
        let slots = body
            .windows(PLACEHOLDER.len())
            .enumerate()
            .filter(|(_, w)| *w == PLACEHOLDER)
            .map(|(i, _)| i)
            .collect();
        let (endpoint, codec) = (Target::Catalog(endpoint), natsrpc::Codec::Json);
        Ok(Self { entry, endpoint, codec, body, own: None, slots, expect, stock: Vec::new() })
    }

    /// The template of a body of one's own, `request`, sent to `endpoint`.
    fn own(entry: usize, endpoint: Target, request: &Arc<OwnRequest>, seed: u64, run: &str) -> Self {
        let expect = match &request.expect {
            Outcome::Ok => Expect::Valid,
            Outcome::Any => Expect::Any,
            Outcome::Invalid { path, code } => Expect::Invalid {
                path: path.clone(),
                code: code.clone().unwrap_or_else(|| "expected".to_string()),
            },
        };
        let own = OwnBody { request: Arc::clone(request), seed, run: Arc::from(run) };
        // Its size, for the report: a body as sent.
        let body = own.request.render(0, seed, run).to_vec();
        let codec = request.codec.codec();
        Self { entry, endpoint, codec, body, own: Some(own), slots: Vec::new(), expect, stock: Vec::new() }
    }

    /// The body with fresh ids from `ids` (for a body of one's own, `{{seq}}`).
    pub fn body(&self, ids: &AtomicU64) -> Bytes {
        self.body_captured(ids, &[])
    }

    /// [`Template::body`] of a flow's step, with the values its flow captured so far.
    pub fn body_captured(&self, ids: &AtomicU64, captured: &[String]) -> Bytes {
        if let Some(own) = &self.own {
            let seq = ids.fetch_add(1, Ordering::Relaxed);
            return own.request.render_captured(seq, own.seed, &own.run, captured);
        }
        if self.slots.is_empty() {
            return Bytes::from(self.body.clone());
        }
        let mut body = self.body.clone();
        let first = ids.fetch_add(self.slots.len() as u64, Ordering::Relaxed);
        for (i, at) in self.slots.iter().enumerate() {
            let id = format!("{:012}", (first + i as u64) % 1_000_000_000_000);
            body[*at..*at + PLACEHOLDER.len()].copy_from_slice(id.as_bytes());
        }
        Bytes::from(body)
    }

    /// Size of the body in bytes.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// Whether the body is empty (never, for a made template).
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
}

/// A scenario's requests: templates by mix entry (then by flow step), and the draw between them.
#[derive(Debug)]
pub struct Workload {
    /// The entries' labels (`ecommerce.create_order/small`, `upload/2 fileproc.upload_chunk`), by
    /// index.
    pub labels: Vec<String>,
    /// The entries' endpoints, by index.
    pub endpoints: Vec<Target>,
    /// The flows' names, by index.
    pub flow_names: Vec<String>,
    /// Requests sent (and required to succeed) before the warm-up, on each fresh stack: the
    /// orders the overviews read, the hot items' initial stock.
    pub setup: Vec<(Endpoint, Bytes)>,
    /// The items a contention scenario fights over, with the units each starts with.
    pub hot_skus: Vec<(String, u64)>,
    valid: Vec<Vec<Template>>,
    invalid: Vec<Vec<Template>>,
    flows: Vec<FlowPlan>,
    /// The mix's entries' and then the flows' cumulative shares of the draw.
    cumulative: Vec<f64>,
    invalid_share: f64,
    ids: AtomicU64,
    seed: u64,
}

/// What a draw picked: one request, or a flow to run step by step.
#[derive(Debug)]
pub enum Pick<'a> {
    /// A mix entry's request.
    Request(Drawn<'a>),
    /// A whole flow.
    Flow(&'a FlowPlan),
}

/// A flow as the generator runs it.
#[derive(Debug)]
pub struct FlowPlan {
    /// Its index among the scenario's flows.
    pub index: usize,
    /// Its steps, in turn.
    pub steps: Vec<StepPlan>,
    /// How many values its steps capture in all.
    pub captures: usize,
}

/// A step of a flow.
#[derive(Debug)]
pub struct StepPlan {
    /// Its entry (templates, figures).
    pub entry: usize,
    /// Where each value it captures goes among its flow's, and where it is in the answer.
    pub capture: Vec<(usize, CapturePath)>,
    /// The pause before it.
    pub think_time: Duration,
}

/// One drawn request.
#[derive(Debug, Clone)]
pub struct Drawn<'a> {
    /// Its template.
    pub template: &'a Template,
    /// Its body, ids filled in.
    pub body: Bytes,
}

impl Workload {
    /// Makes `scenario`'s templates, `seed` driving every choice; `nonce` makes its ids unlike any
    /// other run's.
    pub fn new(scenario: &Scenario, seed: u64, nonce: &str) -> Result<Self, BenchError> {
        let mut valid = Vec::new();
        let mut invalid = Vec::new();
        let mut labels = Vec::new();
        let mut setup = Vec::new();
        let hot_skus: Vec<(String, u64)> = scenario.contention.as_ref().map_or_else(Vec::new, |c| {
            (0..c.hot_skus as usize).map(|i| (hot_sku(i), u64::from(c.initial_stock))).collect()
        });
        for (sku, units) in &hot_skus {
            let restock = ecommerce::contracts::Restock { sku: sku.clone(), quantity: *units as u32 };
            setup.push((Endpoint::Restock, Bytes::from(json(&restock)?)));
        }
        let context = Context {
            seed,
            nonce,
            contention: scenario.contention.as_ref(),
            unique_customers: scenario.convergence.is_some(),
        };
        for (index, entry) in scenario.mix.iter().enumerate() {
            let (v, i) = templates(index, entry, &context, &mut setup)?;
            valid.push(v);
            invalid.push(i);
            labels.push(entry.label());
        }
        let mut flows = Vec::new();
        for (index, flow) in scenario.flows.iter().enumerate() {
            let mut steps = Vec::new();
            let mut slots = 0..;
            for (n, step) in flow.steps.iter().enumerate() {
                let entry = valid.len();
                // A journey's steps go valid: an invalid one would end it at once.
                let (v, _) = templates(entry, step, &context, &mut setup)?;
                valid.push(v);
                invalid.push(Vec::new());
                labels.push(flow.step_label(n + 1, step));
                let capture = capture_paths(&step.capture)
                    .into_iter()
                    .map(|(_, path)| (slots.next().unwrap_or_default(), path))
                    .collect();
                steps.push(StepPlan { entry, capture, think_time: step.think_time.unwrap_or_default() });
            }
            flows.push(FlowPlan { index, steps, captures: slots.next().unwrap_or_default() });
        }
        let weights: Vec<f64> =
            scenario.mix.iter().map(|e| e.weight).chain(scenario.flows.iter().map(|f| f.weight)).collect();
        let total: f64 = weights.iter().sum();
        let mut running = 0.0;
        let cumulative = weights
            .iter()
            .map(|weight| {
                running += weight / total;
                running
            })
            .collect();
        Ok(Self {
            labels,
            endpoints: scenario.requests().map(|e| e.endpoint).collect(),
            flow_names: scenario.flows.iter().map(|f| f.name.clone()).collect(),
            setup,
            hot_skus,
            valid,
            invalid,
            flows,
            cumulative,
            invalid_share: scenario.invalid_share,
            ids: AtomicU64::new(0),
            seed,
        })
    }

    /// Draws request (or flow) number `key` of the run: the same key, the same choice.
    pub fn draw(&self, key: u64) -> Pick<'_> {
        let mut state = key ^ self.seed;
        let mut next = || splitmix64(&mut state);
        let x = unit(next());
        let choice = self.cumulative.iter().position(|c| x < *c).unwrap_or(self.cumulative.len() - 1);
        let mix = self.cumulative.len() - self.flows.len();
        if let Some(flow) = choice.checked_sub(mix).and_then(|f| self.flows.get(f)) {
            return Pick::Flow(flow);
        }
        let entry = choice;
        let pool = if unit(next()) < self.invalid_share && !self.invalid[entry].is_empty() {
            &self.invalid[entry]
        } else {
            &self.valid[entry]
        };
        let template = &pool[(next() % pool.len() as u64) as usize];
        Pick::Request(Drawn { template, body: template.body(&self.ids) })
    }

    /// The request of a flow's step `entry`, in the flow drawn as `key`, with the values the flow
    /// captured so far.
    pub fn step(&self, entry: usize, key: u64, captured: &[String]) -> Drawn<'_> {
        let pool = &self.valid[entry];
        let mut state = key ^ self.seed ^ (entry as u64).rotate_left(32);
        let template = &pool[(splitmix64(&mut state) % pool.len().max(1) as u64) as usize];
        Drawn { template, body: template.body_captured(&self.ids, captured) }
    }

    /// The seed every choice follows.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Requests a draw makes on average: 1 for a mix entry, a flow's steps for a flow (all of
    /// them: a journey that ends early makes fewer).
    pub fn requests_per_draw(&self) -> f64 {
        let mix = self.cumulative.len() - self.flows.len();
        let share = |i: usize| self.cumulative[i] - if i == 0 { 0.0 } else { self.cumulative[i - 1] };
        (0..self.cumulative.len())
            .map(|i| share(i) * i.checked_sub(mix).map_or(1.0, |f| self.flows[f].steps.len() as f64))
            .sum::<f64>()
            .max(1.0)
    }

    /// Each flow's steps' mean sizes together, in bytes.
    pub fn flow_sizes(&self) -> Vec<usize> {
        let sizes = self.mean_sizes();
        self.flows.iter().map(|flow| flow.steps.iter().map(|step| sizes[step.entry]).sum()).collect()
    }

    /// Mean size of the valid bodies of each entry, in bytes.
    pub fn mean_sizes(&self) -> Vec<usize> {
        self.valid
            .iter()
            .map(|pool| pool.iter().map(Template::len).sum::<usize>() / pool.len().max(1))
            .collect()
    }
}

fn shop_size(size: Option<PayloadSize>) -> ecommerce::payloads::Size {
    match size.unwrap_or(PayloadSize::Small) {
        PayloadSize::Small => ecommerce::payloads::Size::Small,
        PayloadSize::Medium => ecommerce::payloads::Size::Medium,
        PayloadSize::Large => ecommerce::payloads::Size::Large,
    }
}

fn event_size(size: Option<PayloadSize>) -> analytics::payloads::Size {
    match size.unwrap_or(PayloadSize::Small) {
        PayloadSize::Small => analytics::payloads::Size::Small,
        PayloadSize::Medium => analytics::payloads::Size::Medium,
        PayloadSize::Large => analytics::payloads::Size::Large,
    }
}

fn invalid_expect<T>(invalid: &Invalid<T>) -> Expect {
    Expect::Invalid { path: invalid.path.clone(), code: invalid.code.to_string() }
}

fn fresh(prefix: &str, nonce: &str) -> String {
    format!("{prefix}{nonce}{}", String::from_utf8_lossy(PLACEHOLDER))
}

/// What every mix entry's templates depend on beside the entry.
struct Context<'a> {
    seed: u64,
    nonce: &'a str,
    contention: Option<&'a Contention>,
    /// Every order from a customer of its own, so that analytics' count of the customer's events
    /// is the count of that order's `order_placed`.
    unique_customers: bool,
}

/// The valid and invalid templates of one mix entry.
fn templates(
    index: usize,
    entry: &MixEntry,
    context: &Context<'_>,
    setup: &mut Vec<(Endpoint, Bytes)>,
) -> Result<(Vec<Template>, Vec<Template>), BenchError> {
    let (seed, nonce) = (context.seed.wrapping_add(index as u64), context.nonce);
    let endpoint = match (entry.endpoint, &entry.own) {
        (target, Some(own)) => return Ok((vec![Template::own(index, target, own, seed, nonce)], Vec::new())),
        (Target::Catalog(endpoint), None) => endpoint,
        (Target::Own(subject), None) => {
            return Err(BenchError::Config(format!("{subject}: not the catalog's, and no body of its own")));
        }
    };
    let valid =
        |body: Result<Vec<u8>, BenchError>| Template::from_json(index, endpoint, body?, Expect::Valid);
    let mut shop = ecommerce::payloads::Payloads::new(seed, 1000);
    let now = analytics::contracts::now_ms();
    let mut events = analytics::payloads::Payloads::new(seed, now);
    let mut files = fileproc::payloads::Payloads::new(seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut valid_ones = Vec::with_capacity(VARIANTS);
    for variant in 0..VARIANTS {
        let template = match endpoint {
            Endpoint::GetOrderOverview => {
                // The orders overviewed are placed before the measurement (`Workload::setup`).
                let mut order = shop.order_of(entry.items.unwrap_or(4).clamp(1, 100) as usize);
                order.order_id = format!("ord_ovw{nonce}{index:02}{variant:02}");
                setup.push((Endpoint::CreateOrder, Bytes::from(json(&order)?)));
                let overview =
                    ecommerce::contracts::GetOrderOverview { order_id: order.order_id, attachments: vec![] };
                valid(json(&overview))?
            }
            Endpoint::CreateOrder => {
                let mut order = shop.create_order(shop_size(entry.size));
                order.order_id = fresh("ord_", nonce);
                if context.unique_customers {
                    order.customer.id = fresh("cus_", nonce);
                }
                valid(json(&order))?
            }
            Endpoint::ReserveInventory => match context.contention {
                Some(contention) => hot_reservation(index, variant, contention, nonce)?,
                None => valid(json(&shop.reserve_inventory()))?,
            },
            Endpoint::Restock => match context.contention {
                Some(contention) => hot_restock(index, variant, contention)?,
                None => valid(json(&shop.restock()))?,
            },
            Endpoint::IngestEvent => {
                let mut event = events.ingest_event();
                event.event.event_id = fresh("evt_", nonce);
                valid(json(&event))?
            }
            Endpoint::IngestBatch => {
                let mut batch = match entry.items {
                    Some(count) => events.ingest_batch_of(count as usize),
                    None => events.ingest_batch(event_size(entry.size)),
                };
                for event in &mut batch.events {
                    event.event_id = fresh("evt_", nonce);
                }
                valid(json(&batch))?
            }
            Endpoint::QueryAggregates => valid(json(&events.query_aggregates()))?,
            Endpoint::QueryTimeseries => valid(json(&events.query_timeseries()))?,
            Endpoint::TopN => valid(json(&events.top_n()))?,
            Endpoint::ProcessBatch => {
                let count = match entry.size.unwrap_or(PayloadSize::Small) {
                    PayloadSize::Small => rng.random_range(5..=20),
                    PayloadSize::Medium => rng.random_range(100..=200),
                    PayloadSize::Large => rng.random_range(800..=1000),
                };
                let mut job = files.process_batch(count);
                job.job_id = fresh("job-", nonce);
                valid(json(&job))?
            }
        };
        valid_ones.push(template);
    }

    // Invalid ones: every rule the endpoint's generator knows how to break.
    let mut invalid_ones = Vec::new();
    match endpoint {
        Endpoint::CreateOrder => {
            for mut invalid in shop.invalid_create_orders() {
                if invalid.path != "order_id" {
                    invalid.request.order_id = fresh("ord_", nonce);
                }
                invalid_ones.push(Template::new(
                    index,
                    endpoint,
                    &invalid.request,
                    invalid_expect(&invalid),
                )?);
            }
        }
        Endpoint::GetOrderOverview => {
            use ecommerce::contracts::GetOrderOverview;
            let bad_id = GetOrderOverview { order_id: "order-1".into(), attachments: vec![] };
            let expect = Expect::Invalid { path: "order_id".into(), code: "order_id_format".into() };
            invalid_ones.push(Template::new(index, endpoint, &bad_id, expect)?);
            let too_many = GetOrderOverview {
                order_id: format!("ord_ovw{nonce}{index:02}00"),
                attachments: (0..=ecommerce::contracts::MAX_ATTACHMENTS)
                    .map(|i| format!("upl_att_{i:04}"))
                    .collect(),
            };
            let expect = Expect::Invalid { path: "attachments".into(), code: "too_many_attachments".into() };
            invalid_ones.push(Template::new(index, endpoint, &too_many, expect)?);
        }
        Endpoint::IngestEvent => {
            for invalid in events.invalid_events() {
                let path = format!("event.{}", invalid.path);
                let expect = Expect::Invalid { path, code: invalid.code.to_string() };
                let request = analytics::contracts::IngestEvent { event: invalid.request };
                invalid_ones.push(Template::new(index, endpoint, &request, expect)?);
            }
        }
        _ => {}
    }
    if invalid_ones.is_empty() {
        let samples = match endpoint.service() {
            Service::Ecommerce => shop.samples(),
            Service::Analytics => events.samples(),
            Service::Fileproc => files.samples(),
        };
        for sample in samples.into_iter().filter(|s| s.endpoint == endpoint.name()) {
            let mut request = sample.invalid.request.clone();
            if endpoint.service() == Service::Analytics {
                analytics::payloads::refresh_timestamps(&mut request, now);
            }
            invalid_ones.push(Template::new(index, endpoint, &request, invalid_expect(&sample.invalid))?);
        }
    }
    Ok((valid_ones, invalid_ones))
}

/// The name of hot item `i`.
fn hot_sku(i: usize) -> String {
    format!("HOT-{i:03}")
}

/// A reservation of one hot item, or (one in four) of two at once: all of it or none. Units
/// cycle with the variant the same way on every item, so that no item drains slower than another.
fn hot_reservation(
    index: usize,
    variant: usize,
    contention: &Contention,
    nonce: &str,
) -> Result<Template, BenchError> {
    use ecommerce::contracts::{ReserveInventory, StockLine};
    let hot = contention.hot_skus as usize;
    let round = variant / hot;
    let mut skus = vec![variant % hot];
    if round % 4 == 3 && hot > 1 {
        skus.push((variant + 1) % hot);
    }
    let stock: Vec<StockMove> = skus
        .iter()
        .map(|&sku| StockMove { sku, units: 1 + (round % contention.max_units as usize) as u64, taken: true })
        .collect();
    let lines = stock.iter().map(|m| StockLine { sku: hot_sku(m.sku), quantity: m.units as u32 }).collect();
    let request = ReserveInventory { reservation_id: fresh("res_", nonce), lines };
    let mut template = Template::new(index, Endpoint::ReserveInventory, &request, Expect::Valid)?;
    template.stock = stock;
    Ok(template)
}

/// A restock of one hot item; units spread over 1 to `max_restock` alike on every item.
fn hot_restock(index: usize, variant: usize, contention: &Contention) -> Result<Template, BenchError> {
    let hot = contention.hot_skus as usize;
    let (sku, round) = (variant % hot, variant / hot);
    let units = 1 + (round * 7 % contention.max_restock as usize) as u32;
    let request = ecommerce::contracts::Restock { sku: hot_sku(sku), quantity: units };
    let mut template = Template::new(index, Endpoint::Restock, &request, Expect::Valid)?;
    template.stock = vec![StockMove { sku, units: units.into(), taken: false }];
    Ok(template)
}

fn json(value: &impl Serialize) -> Result<Vec<u8>, BenchError> {
    serde_json::to_vec(value).map_err(|source| BenchError::Serialize { what: "a payload", source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Load, MixEntry};

    fn scenario(endpoints: &[Endpoint], invalid_share: f64) -> Scenario {
        Scenario {
            description: String::new(),
            load: Load::Closed {
                users: 1,
                spawn_rate: 0.0,
                duration: std::time::Duration::from_secs(1),
                think_time: std::time::Duration::ZERO,
            },
            mix: endpoints.iter().map(|&endpoint| MixEntry::of(endpoint)).collect(),
            invalid_share,
            flows: Vec::new(),
            faults: None,
            archive: false,
            scale_out: None,
            performance_expectations: None,
            stacks: None,
            contention: None,
            convergence: None,
            outages: Vec::new(),
        }
    }

    #[test]
    fn every_endpoint_has_valid_and_invalid_templates_whose_ids_are_fresh_each_time() {
        let workload = Workload::new(&scenario(&Endpoint::ALL, 0.0), 7, "n0nce").unwrap();
        for (entry, pool) in workload.valid.iter().enumerate() {
            assert_eq!(pool.len(), VARIANTS, "{}", workload.labels[entry]);
            assert!(!workload.invalid[entry].is_empty(), "{} has invalid templates", workload.labels[entry]);
        }
        let order = &workload.valid[0][0];
        let (a, b) = (order.body(&workload.ids), order.body(&workload.ids));
        assert_ne!(a, b, "a new order id each time");
        let value: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(value["order_id"], "ord_n0nce000000000000");
        // Valid bodies stay valid with their ids filled in.
        let order: ecommerce::contracts::CreateOrder = serde_json::from_slice(&b).unwrap();
        assert!(validator::Validate::validate(&order).is_ok());
        let batch = &workload.valid[4][0];
        let batch: analytics::contracts::IngestBatch =
            serde_json::from_slice(&batch.body(&workload.ids)).unwrap();
        let ids: std::collections::HashSet<_> = batch.events.iter().map(|e| e.event_id.clone()).collect();
        assert_eq!(ids.len(), batch.events.len(), "every event of a batch has its own id");
    }

    #[test]
    fn draws_follow_the_weights_and_the_invalid_share() {
        let mut mix = scenario(&[Endpoint::Restock, Endpoint::TopN], 0.25);
        mix.mix[0].weight = 3.0;
        let workload = Workload::new(&mix, 1, "x").unwrap();
        let (mut restocks, mut invalid) = (0, 0);
        for key in 0..10_000 {
            let Pick::Request(drawn) = workload.draw(key) else { panic!("no flows") };
            restocks += usize::from(drawn.template.entry == 0);
            invalid += usize::from(drawn.template.expect != Expect::Valid);
        }
        assert!((7_200..7_800).contains(&restocks), "{restocks}");
        assert!((2_200..2_800).contains(&invalid), "{invalid}");
        let endpoint = |key| match workload.draw(key) {
            Pick::Request(drawn) => drawn.template.endpoint,
            Pick::Flow(_) => panic!("no flows"),
        };
        assert_eq!(endpoint(42), endpoint(42), "reproducible");
    }

    #[test]
    fn a_flow_is_drawn_by_its_weight_and_its_steps_are_entries_after_the_mix() {
        let mut with_flow = scenario(&[Endpoint::Restock], 0.5);
        let flow = "{ name: shop, weight: 3, steps: [{ endpoint: ecommerce.create_order, capture: { id: order_id } }, { endpoint: ecommerce.get_order, body: '{\"order_id\": \"{{id}}\"}', think_time: 5ms }] }";
        let mut flow: crate::config::flow::Flow = serde_yaml::from_str(flow).unwrap();
        flow.steps[1].resolve_for_test(&["id".to_string()]);
        with_flow.flows.push(flow);
        let workload = Workload::new(&with_flow, 1, "x").unwrap();
        assert_eq!(
            workload.labels,
            ["ecommerce.restock", "shop/1 ecommerce.create_order", "shop/2 ecommerce.get_order"]
        );
        let flows = (0..4_000).filter(|key| matches!(workload.draw(*key), Pick::Flow(_))).count();
        assert!((2_800..3_200).contains(&flows), "three in four: {flows}");
        let Some(Pick::Flow(plan)) = (0..).map(|key| workload.draw(key)).find(|p| matches!(p, Pick::Flow(_)))
        else {
            unreachable!()
        };
        assert_eq!((plan.captures, plan.steps[0].entry, plan.steps[1].entry), (1, 1, 2));
        assert_eq!(plan.steps[1].think_time, Duration::from_millis(5));
        // One in four draws a request, three in four a journey of two.
        assert!((workload.requests_per_draw() - 1.75).abs() < 1e-9, "{}", workload.requests_per_draw());
        assert!(workload.invalid[1].is_empty(), "a step goes valid whatever the invalid share");
        let body = workload.step(2, 9, &["ord_\"x".to_string()]).body;
        assert_eq!(&body[..], br#"{"order_id": "ord_\"x"}"#, "the captured value, JSON-escaped");
    }
}
