//! What the file must satisfy beyond its shape: every problem found names the key it is at,
//! and nothing runs until there are none.

use crate::config::{
    BenchmarkConfig, Expectations, Limits, Load, MixEntry, RunSettings, Scenario, Transport, names,
};
use crate::endpoint::Endpoint;

/// What is wrong with the configuration: the key it is at (`scenarios.x.mix[0].weight`), and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(String);

impl Invalid {
    /// The same problem, one key further out (`mix[0]` becomes `scenarios.x.mix[0]`).
    pub fn at(self, outer: &str) -> Self {
        Invalid(format!("{outer}{}", self.0))
    }
}

impl From<String> for Invalid {
    fn from(problem: String) -> Self {
        Invalid(problem)
    }
}

impl From<&str> for Invalid {
    fn from(problem: &str) -> Self {
        Invalid(problem.to_string())
    }
}

/// The CPUs this machine lets the run use.
fn machine_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Checks a CPU list (`0`, `0-3`, `0,2-3`) against the machine's `cores`; answers what is wrong.
pub fn check_cpu_list(list: &str, cores: usize) -> Result<(), Invalid> {
    let cpu = |text: &str| -> Result<usize, Invalid> {
        let cpu: usize = text
            .trim()
            .parse()
            .map_err(|_| Invalid(format!("{list:?} is not a CPU list such as 0-1 or 0,2")))?;
        if cpu >= cores {
            return Err(Invalid::from(format!(
                "{list:?} names CPU {cpu}, but this machine has CPUs 0 to {}",
                cores.saturating_sub(1)
            )));
        }
        Ok(cpu)
    };
    for part in list.split(',') {
        match part.split_once('-') {
            Some((first, last)) if cpu(first)? > cpu(last)? => {
                return Err(Invalid::from(format!("{list:?}: the range {part} runs backwards")));
            }
            Some(_) => {}
            None => {
                cpu(part)?;
            }
        }
    }
    Ok(())
}

/// What holds of a scenario's limits: sensible values, and labels the scenario has.
fn check_expectations(scenario: &Scenario, limits: &Expectations) -> Result<(), Invalid> {
    let labels: Vec<String> = scenario
        .mix
        .iter()
        .map(MixEntry::label)
        .chain(scenario.flows.iter().flat_map(|flow| {
            let steps = flow.steps.iter().enumerate().map(|(n, step)| flow.step_label(n + 1, step));
            std::iter::once(flow.name.clone()).chain(steps)
        }))
        .collect();
    if let Some(key) = limits.unknown.keys().next() {
        return Err(Invalid::from(format!(
            "{key}: unknown key (limits are p50_ms, p90_ms, p95_ms, p99_ms, max_ms, min_rps, max_unexpected_error_rate, max_error_rates; and endpoints, abort_on_fail, stacks)"
        )));
    }
    check_limits(&limits.limits)?;
    for (label, own) in &limits.endpoints {
        if !labels.contains(label) {
            return Err(Invalid::from(format!(
                "endpoints.{label:?}: not a label of the scenario's requests or flows (it has {})",
                labels.join(", ")
            )));
        }
        check_limits(own).map_err(|problem| problem.at(&format!("endpoints.{label:?}.")))?;
    }
    for (stack, own) in &limits.stacks {
        check_expectations(scenario, own).map_err(|problem| problem.at(&format!("stacks.{stack}.")))?;
    }
    Ok(())
}

fn check_limits(limits: &Limits) -> Result<(), Invalid> {
    let latencies = [
        ("p50_ms", limits.p50_ms),
        ("p90_ms", limits.p90_ms),
        ("p95_ms", limits.p95_ms),
        ("p99_ms", limits.p99_ms),
        ("max_ms", limits.max_ms),
        ("min_rps", limits.min_rps),
    ];
    if let Some((key, _)) = latencies.iter().find(|(_, v)| v.is_some_and(|v| !(v.is_finite() && v >= 0.0))) {
        return Err(Invalid::from(format!("{key}: a number, 0 or more")));
    }
    let rates = limits.max_error_rates.iter().map(|(kind, rate)| (kind.as_str(), Some(*rate)));
    for (key, rate) in
        std::iter::once(("max_unexpected_error_rate", limits.max_unexpected_error_rate)).chain(rates)
    {
        if rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
            return Err(Invalid::from(format!("{key}: a share of the answers, from 0 to 1")));
        }
    }
    if let Some(kind) = limits
        .max_error_rates
        .keys()
        .find(|k| k.is_empty() || k.contains(|c: char| c.is_whitespace() || c.is_control()))
    {
        return Err(Invalid::from(format!(
            "max_error_rates.{kind:?}: a kind (transport:timeout) or a class (transport)"
        )));
    }
    Ok(())
}

/// What holds of one kind of request, in the mix or in a flow.
fn check_entry(entry: &MixEntry) -> Result<(), Invalid> {
    if !(entry.weight.is_finite() && entry.weight > 0.0) {
        return Err(Invalid::from("weight: must be above 0"));
    }
    if let Some(name) = &entry.name
        && (name.is_empty() || name.len() > 64 || name.chars().any(char::is_control))
    {
        return Err(Invalid::from("name: 1 to 64 characters, none a control character"));
    }
    if let Some(items) = entry.items {
        let range = match entry.endpoint.catalog() {
            Some(Endpoint::GetOrderOverview) => 1..=100,
            Some(Endpoint::IngestBatch) => 5..=500,
            _ => {
                return Err(Invalid::from(
                    "items: only for ecommerce.get_order_overview and analytics.ingest_batch",
                ));
            }
        };
        if !range.contains(&items) {
            return Err(Invalid::from(format!(
                "items: from {} to {} for {}",
                range.start(),
                range.end(),
                entry.endpoint
            )));
        }
    }
    Ok(())
}

fn check_scenario(scenario: &Scenario) -> Result<(), Invalid> {
    if scenario.mix.is_empty() && scenario.flows.is_empty() {
        return Err(Invalid::from("mix: at least one entry (or a flow)"));
    }
    for (i, entry) in scenario.mix.iter().enumerate() {
        check_entry(entry).map_err(|problem| problem.at(&format!("mix[{i}].")))?;
        if !entry.capture.is_empty() || entry.think_time.is_some() {
            return Err(Invalid::from(format!("mix[{i}]: capture and think_time are a flow's steps'")));
        }
        if let Some(j) = scenario.mix[..i].iter().position(|other| other.label() == entry.label()) {
            return Err(Invalid::from(format!(
                "mix[{i}]: the same label as mix[{j}] ({}): give one a `name`",
                entry.label()
            )));
        }
    }
    for (f, flow) in scenario.flows.iter().enumerate() {
        let at = |problem: Invalid| problem.at(&format!("flows[{f}]."));
        flow.check().map_err(at)?;
        for (i, step) in flow.steps.iter().enumerate() {
            check_entry(step).map_err(|problem| at(problem.at(&format!("steps[{i}]."))))?;
        }
        let taken = scenario.mix.iter().any(|entry| entry.label() == flow.name)
            || scenario.flows[..f].iter().any(|other| other.name == flow.name);
        if taken {
            return Err(Invalid::from(format!(
                "flows[{f}].name: {:?} labels another flow or mix entry already",
                flow.name
            )));
        }
    }
    if let Some(limits) = &scenario.performance_expectations {
        check_expectations(scenario, limits).map_err(|problem| problem.at("performance_expectations."))?;
    }
    if let Some(scale) = &scenario.scale_out {
        let mut counts = scale.instances.clone();
        counts.sort_unstable();
        counts.dedup();
        if counts.is_empty()
            || counts.len() != scale.instances.len()
            || counts.iter().any(|n| !(1..=16).contains(n))
        {
            return Err(Invalid::from("scale_out.instances: different counts, each from 1 to 16"));
        }
        if !scenario.outages.is_empty() || scenario.archive {
            return Err(Invalid::from(
                "scale_out: not with outages or archive (one thing measured at a time)",
            ));
        }
    }
    if !(0.0..=1.0).contains(&scenario.invalid_share) {
        return Err(Invalid::from("invalid_share: must be between 0 and 1"));
    }
    let positive = |value: f64| value.is_finite() && value > 0.0;
    match &scenario.load {
        Load::Closed { users, duration, .. } => {
            if *users == 0 {
                return Err(Invalid::from("load.users: must be at least 1"));
            }
            if duration.is_zero() {
                return Err(Invalid::from("load.duration: must be above 0"));
            }
        }
        Load::Open { phases, .. } => {
            if phases.is_empty() {
                return Err(Invalid::from("load.phases: at least one phase"));
            }
            for (i, phase) in phases.iter().enumerate() {
                if !positive(phase.arrival_rate) || phase.ramp_to.is_some_and(|r| !positive(r)) {
                    return Err(Invalid::from(format!("load.phases[{i}]: rates must be above 0")));
                }
                if phase.duration.is_zero() {
                    return Err(Invalid::from(format!("load.phases[{i}].duration: must be above 0")));
                }
            }
        }
        Load::Soak { fraction, probe_users, probe, duration, .. } => {
            if !(positive(*fraction) && *fraction <= 1.0) {
                return Err(Invalid::from("load.fraction: must be above 0 and at most 1"));
            }
            if *probe_users == 0 || probe.is_zero() {
                return Err(Invalid::from(
                    "load.probe_users, load.probe: the saturation probe needs users and time",
                ));
            }
            if duration.is_zero() {
                return Err(Invalid::from("load.duration: must be above 0"));
            }
        }
        Load::Stepped { steps, step_duration, sustained, .. } => {
            if steps.is_empty() || steps.iter().any(|r| !positive(*r)) {
                return Err(Invalid::from("load.steps: at least one rate, each above 0"));
            }
            if step_duration.is_zero() {
                return Err(Invalid::from("load.step_duration: must be above 0"));
            }
            if !(0.0..=1.0).contains(&sustained.min_achieved)
                || !(0.0..=1.0).contains(&sustained.max_error_rate)
                || sustained.max_p99_ms.is_some_and(|ms| !positive(ms))
            {
                return Err(Invalid::from(
                    "load.sustained: min_achieved and max_error_rate from 0 to 1, max_p99_ms above 0",
                ));
            }
        }
    }
    let sends = |endpoint: Endpoint| scenario.requests().any(|e| e.endpoint == endpoint);
    if let Some(contention) = &scenario.contention {
        if !(1..=100).contains(&contention.hot_skus) {
            return Err(Invalid::from("contention.hot_skus: 1 to 100"));
        }
        if contention.initial_stock == 0 || contention.max_units == 0 || contention.max_restock == 0 {
            return Err(Invalid::from(
                "contention: initial_stock, max_units and max_restock must be at least 1",
            ));
        }
        if contention.max_units > 1000 || contention.max_restock.max(contention.initial_stock) > 1_000_000 {
            return Err(Invalid::from(
                "contention: max_units at most 1000, initial_stock and max_restock at most 1,000,000",
            ));
        }
        if !sends(Endpoint::ReserveInventory) {
            return Err(Invalid::from("contention: the mix needs ecommerce.reserve_inventory"));
        }
    }
    if let Some(convergence) = &scenario.convergence {
        if !sends(Endpoint::CreateOrder) {
            return Err(Invalid::from("convergence: the mix needs ecommerce.create_order"));
        }
        if convergence.poll.is_zero() || convergence.settle < convergence.poll {
            return Err(Invalid::from("convergence: poll must be above 0 and settle at least poll"));
        }
    }
    if !scenario.outages.is_empty() {
        if scenario.convergence.is_none() {
            return Err(Invalid::from(
                "outages: need convergence too (the orders followed into analytics show whether anything acknowledged was lost or counted twice)",
            ));
        }
        if let Some(problem) = crate::config::outage::problem(&scenario.outages, scenario.load.duration()) {
            return Err(Invalid::from(problem));
        }
    }
    if scenario.archive && scenario.convergence.is_none() {
        return Err(Invalid::from(
            "archive: needs convergence too (the shop's events on, and its orders followed)",
        ));
    }
    let takes_database = scenario
        .outages
        .iter()
        .filter_map(|outage| outage.action().map(|(_, target)| target))
        .any(|target| target == crate::config::outage::DATABASE || target == "postgres");
    if takes_database && !scenario.archive {
        return Err(Invalid::from("outages: the database is there only with archive: true"));
    }
    Ok(())
}

impl BenchmarkConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        if let Some(problem) = self.report.problem() {
            return Err(Invalid::from(problem));
        }
        for (name, stack) in &self.stacks {
            if name.contains('@') {
                return Err(Invalid::from(format!(
                    "stacks.{name}: @ is not in a stack's name (a scale-out names its counts `{{stack}}@{{count}}`)"
                )));
            }
            let schemes: &[&str] = match stack.transport {
                Transport::Nats => &["nats://", "tls://"],
                Transport::Http => &["http://", "https://"],
            };
            if !schemes.iter().any(|scheme| stack.url.starts_with(scheme))
                || crate::config::stack::host_port(&stack.url).is_none()
            {
                return Err(Invalid::from(format!(
                    "stacks.{name}.url: {:?} is not {}host:port",
                    natsrpc::redact_url(&stack.url),
                    schemes.join(" or ")
                )));
            }
            for broker in &stack.brokers {
                if !crate::config::stack::BROKERS.iter().any(|(name, _)| name == broker) {
                    return Err(Invalid::from(format!(
                        "stacks.{name}.brokers: {broker:?} is not nats, redis or rabbitmq"
                    )));
                }
            }
            if stack.transport == Transport::Http
                && let Some(path) = stack.echo_subject.as_ref().filter(|path| !path.starts_with('/'))
            {
                return Err(Invalid::from(format!(
                    "stacks.{name}.echo_subject: an HTTP echo's path starts with /, not {path:?}"
                )));
            }
            for variable in stack.nats.keys() {
                if stack.transport != Transport::Nats {
                    return Err(Invalid::from(format!("stacks.{name}.nats: only for a NATS stack")));
                }
                if variable == "NATS_URL" || !natsrpc::NATS_VARIABLES.contains(&variable.as_str()) {
                    return Err(Invalid::from(format!(
                        "stacks.{name}.nats.{variable}: not one of natsrpc's variables ({}; the server is `url`)",
                        natsrpc::NATS_VARIABLES[1..].join(", ")
                    )));
                }
            }
            if !stack.nats.is_empty() {
                stack.nats_config().map_err(|e| Invalid(format!("stacks.{name}.nats: {e}")))?;
            }
            if let Some(of) = &stack.unvalidated_control_of {
                let copied = self.stacks.get(of).filter(|copied| {
                    of != name
                        && copied.transport == stack.transport
                        && copied.unvalidated_control_of.is_none()
                });
                if copied.is_none() {
                    return Err(Invalid::from(format!(
                        "stacks.{name}.unvalidated_control_of: {of:?} is not another stack of the same transport \
                         (there are {})",
                        names(&self.stacks)
                    )));
                }
            }
            if let Some(of) = &stack.secured_variant_of {
                let copied = self.stacks.get(of).filter(|copied| {
                    of != name
                        && copied.transport == stack.transport
                        && copied.secured_variant_of.is_none()
                        && copied.unvalidated_control_of.is_none()
                });
                if copied.is_none() || stack.unvalidated_control_of.is_some() {
                    return Err(Invalid::from(format!(
                        "stacks.{name}.secured_variant_of: {of:?} is not another plain stack of the same transport \
                         (there are {})",
                        names(&self.stacks)
                    )));
                }
            }
            if stack.is_external()
                && (stack.nats_cluster.is_some()
                    || stack.unvalidated_control_of.is_some()
                    || stack.secured_variant_of.is_some())
            {
                return Err(Invalid::from(format!(
                    "stacks.{name}.processes: a stack that runs elsewhere (no processes) is neither a cluster the runner starts nor a control or variant of another"
                )));
            }
            for service in stack.services.iter().flatten() {
                let token = |b: u8| b.is_ascii_alphanumeric() || b"_-".contains(&b);
                if service.is_empty() || service.len() > 64 || !service.bytes().all(token) {
                    return Err(Invalid::from(format!(
                        "stacks.{name}.services: {:?} is not a service name (letters, digits, _ and -)",
                        natsrpc::escape::escape(service, 64)
                    )));
                }
            }
            if let Some(servers) = stack.nats_cluster
                && (!(3..=7).contains(&servers)
                    || stack.transport != Transport::Nats
                    || !stack.brokers.iter().any(|b| b == "nats")
                    || stack.processes.iter().any(|p| p.listens.is_some()))
            {
                return Err(Invalid::from(format!(
                    "stacks.{name}.nats_cluster: 3 to 7 servers, for a NATS stack with nats among its brokers and none of its own"
                )));
            }
            for (i, process) in stack.processes.iter().enumerate().filter(|(_, p)| p.serves) {
                if stack.transport != Transport::Http || process.listens.is_some() {
                    return Err(Invalid::from(format!(
                        "stacks.{name}.processes[{i}].serves: only a process of an HTTP stack that is not a broker"
                    )));
                }
                if stack.processes.iter().filter(|p| p.serves).count() > 1 {
                    return Err(Invalid::from(format!(
                        "stacks.{name}.processes[{i}].serves: one process answers the stack's url"
                    )));
                }
                if process.instances > 1 && stack.url.starts_with("https://") {
                    return Err(Invalid::from(format!(
                        "stacks.{name}.processes[{i}].instances: an HTTPS API runs as one instance (the balancer speaks plain HTTP)"
                    )));
                }
            }
            if let Some(i) = stack.processes.iter().position(|p| p.name == crate::config::stack::BALANCER) {
                return Err(Invalid::from(format!(
                    "stacks.{name}.processes[{i}].name: balancer is the runner's load balancer"
                )));
            }
            for (i, process) in stack.processes.iter().enumerate() {
                if process.command.is_empty() {
                    return Err(Invalid::from(format!("stacks.{name}.processes[{i}].command: empty")));
                }
                if process.instances == 0 {
                    return Err(Invalid::from(format!(
                        "stacks.{name}.processes[{i}].instances: must be at least 1"
                    )));
                }
                if let Some(address) = &process.listens
                    && (process.instances != 1 || address.parse::<std::net::SocketAddr>().is_err())
                {
                    return Err(Invalid::from(format!(
                        "stacks.{name}.processes[{i}].listens: {address:?} is not one process's ip:port"
                    )));
                }
                if let Some(cpus) = &process.cpus {
                    check_cpu_list(cpus, machine_cores())
                        .map_err(|problem| problem.at(&format!("stacks.{name}.processes[{i}].cpus: ")))?;
                }
            }
        }
        for (name, scenario) in &self.scenarios {
            check_scenario(scenario).map_err(|problem| problem.at(&format!("scenarios.{name}.")))?;
            for stack in scenario.stacks.iter().flatten() {
                if !self.stacks.contains_key(stack) {
                    return Err(Invalid::from(format!(
                        "scenarios.{name}.stacks: no stack {stack:?} (there are {})",
                        names(&self.stacks)
                    )));
                }
            }
        }
        self.check_run(&self.run, "run")?;
        for (name, profile) in &self.profiles {
            let run = self.run.with_profile(profile);
            self.check_run(&run, &format!("profiles.{name}"))?;
        }
        Ok(())
    }

    pub(super) fn check_run(&self, run: &RunSettings, at: &str) -> Result<(), Invalid> {
        if let Some(cpus) = &run.generator_cpus {
            check_cpu_list(cpus, machine_cores())
                .map_err(|problem| problem.at(&format!("{at}.generator_cpus: ")))?;
        }
        for stack in &run.stacks {
            if !self.stacks.contains_key(stack) {
                return Err(Invalid::from(format!(
                    "{at}.stacks: no stack {stack:?} (there are {})",
                    names(&self.stacks)
                )));
            }
        }
        for scenario in &run.scenarios {
            if !self.scenarios.contains_key(scenario) {
                return Err(Invalid::from(format!(
                    "{at}.scenarios: no scenario {scenario:?} (there are {})",
                    names(&self.scenarios)
                )));
            }
        }
        for scenario in run.durations.keys() {
            if !self.scenarios.contains_key(scenario) {
                return Err(Invalid::from(format!(
                    "{at}.durations: no scenario {scenario:?} (there are {})",
                    names(&self.scenarios)
                )));
            }
        }
        if run.repetitions == 0 {
            return Err(Invalid::from(format!("{at}.repetitions: must be at least 1")));
        }
        for name in &run.scenarios {
            let Some(scenario) = self.scenarios.get(name) else { continue };
            let stacks =
                run.stacks.iter().filter(|stack| scenario.stacks.as_ref().is_none_or(|s| s.contains(stack)));
            for (stack, spec) in stacks.filter_map(|stack| Some((stack, self.stacks.get(stack)?))) {
                if let Some(path) = scenario.requests().find(|e| e.endpoint.is_path())
                    && spec.transport == Transport::Nats
                {
                    return Err(Invalid::from(format!(
                        "scenarios.{name}: {} is an HTTP path, and {stack} is a NATS stack (name its subject, or leave {stack} out with the scenario's `stacks`)",
                        path.endpoint
                    )));
                }
                if spec.is_external()
                    && (!scenario.outages.is_empty() || scenario.scale_out.is_some() || scenario.archive)
                {
                    return Err(Invalid::from(format!(
                        "scenarios.{name}: its outages, scale-out or archive need processes the runner starts, and {stack} runs elsewhere (leave it out with the scenario's `stacks`)"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_are_checked_against_the_machine() {
        assert!(
            check_cpu_list("0", 2).is_ok()
                && check_cpu_list("0-1", 2).is_ok()
                && check_cpu_list("0,1", 2).is_ok()
        );
        assert!(check_cpu_list("2", 2).unwrap_err().to_string().contains("CPUs 0 to 1"));
        assert!(check_cpu_list("1-0", 2).unwrap_err().to_string().contains("backwards"));
        assert!(check_cpu_list("one", 2).unwrap_err().to_string().contains("not a CPU list"));
        assert!(check_cpu_list("", 2).is_err());
    }

    #[test]
    fn scenarios_are_checked_before_anything_runs() {
        let stacks = "stacks:\n  s:\n    description: d\n    transport: nats\n    url: nats://127.0.0.1:4222\n    processes: [{name: a, command: [b]}]\n";
        let bad_endpoint = format!(
            "{stacks}scenarios:\n  x:\n    description: d\n    load: {{model: closed, users: 1, duration: 1s}}\n    mix: [{{endpoint: shop.buy, weight: 1}}]\n"
        );
        let error = BenchmarkConfig::parse(&bad_endpoint, "b.yaml").unwrap_err().to_string();
        assert!(
            error.contains("scenarios.x.mix[0].endpoint: \"shop.buy\" is not one the load generator sends"),
            "{error}"
        );
        assert!(error.contains("ecommerce.create_order, ") && error.contains("give its body"), "{error}");
        let wildcard = bad_endpoint.replace("shop.buy", "shop.*");
        let error = BenchmarkConfig::parse(&wildcard, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("b.yaml:11:") && error.contains("scenarios.x.mix[0]"), "{error}");
        assert!(error.contains("neither one the load generator sends"), "{error}");
        let no_gate = format!("{stacks}report: {{regression_tolerance: .nan}}\n");
        let error = BenchmarkConfig::parse(&no_gate, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("report.regression_tolerance: a share of 0 or more"), "{error}");
        let bad_duration = format!(
            "{stacks}scenarios:\n  x:\n    description: d\n    load: {{model: closed, users: 1, duration: soon}}\n    mix: []\n"
        );
        let error = BenchmarkConfig::parse(&bad_duration, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("b.yaml:") && error.contains("soon"), "{error}");
        let unknown_model = format!(
            "{stacks}scenarios:\n  x:\n    description: d\n    load: {{model: poisson, rate: 1}}\n    mix: []\n"
        );
        let error = BenchmarkConfig::parse(&unknown_model, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("poisson"), "{error}");
        let bad_share = format!(
            "{stacks}scenarios:\n  x:\n    description: d\n    load: {{model: open, phases: [{{arrival_rate: 10, duration: 1s}}]}}\n    mix: [{{endpoint: ecommerce.restock, weight: 1}}]\n    invalid_share: 1.5\n"
        );
        let error = BenchmarkConfig::parse(&bad_share, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("scenarios.x.invalid_share"), "{error}");
        let scenario = |rest: &str| {
            format!(
                "{stacks}scenarios:\n  x:\n    description: d\n    load: {{model: closed, users: 1, duration: 1s}}\n{rest}"
            )
        };
        let no_reservations = scenario(
            "    mix: [{endpoint: ecommerce.restock, weight: 1}]\n    contention: {hot_skus: 2, initial_stock: 10}\n",
        );
        let error = BenchmarkConfig::parse(&no_reservations, "b.yaml").unwrap_err().to_string();
        assert!(
            error.contains("scenarios.x.contention: the mix needs ecommerce.reserve_inventory"),
            "{error}"
        );
        let no_orders =
            scenario("    mix: [{endpoint: ecommerce.restock, weight: 1}]\n    convergence: {settle: 1s}\n");
        let error = BenchmarkConfig::parse(&no_orders, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("scenarios.x.convergence: the mix needs ecommerce.create_order"), "{error}");
        let greedy_soak = format!(
            "{stacks}scenarios:\n  x:\n    description: d\n    load: {{model: soak, fraction: 1.5, duration: 1m}}\n    mix: [{{endpoint: ecommerce.restock, weight: 1}}]\n"
        );
        let error = BenchmarkConfig::parse(&greedy_soak, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("scenarios.x.load.fraction"), "{error}");

        // `items`: orders overviewed of 1 to 100 items, batches of 5 to 500 events, nothing else.
        let items = |endpoint: &str, items: u32| {
            BenchmarkConfig::parse(
                &scenario(&format!("    mix: [{{endpoint: {endpoint}, items: {items}}}]\n")),
                "b.yaml",
            )
            .map_err(|e| e.to_string())
        };
        assert!(
            items("analytics.ingest_batch", 500).is_ok() && items("ecommerce.get_order_overview", 1).is_ok()
        );
        let error = items("analytics.ingest_batch", 4).unwrap_err();
        assert!(error.contains("scenarios.x.mix[0].items: from 5 to 500"), "{error}");
        assert!(items("ecommerce.get_order_overview", 101).unwrap_err().contains("from 1 to 100"));
        assert!(items("ecommerce.restock", 3).unwrap_err().contains("items: only for"));

        // Limits name the scenario's own labels, with sensible values.
        let limits = |text: &str| {
            let yaml =
                format!("    mix: [{{endpoint: ecommerce.restock}}]\n    performance_expectations: {text}\n");
            BenchmarkConfig::parse(&scenario(&yaml), "b.yaml").map_err(|e| e.to_string())
        };
        assert!(limits("{ endpoints: { ecommerce.restock: { p95_ms: 5, max_error_rates: { transport:timeout: 0.01 } } } }").is_ok());
        let error = limits("{ endpoints: { ecommerce.restok: { p99_ms: 5 } } }").unwrap_err();
        assert!(
            error.contains("performance_expectations.endpoints.\"ecommerce.restok\": not a label"),
            "{error}"
        );
        assert!(
            limits("{ max_error_rates: { \"transport:\\u001b[31m\": 0.1 } }")
                .unwrap_err()
                .contains("max_error_rates.")
        );
        let error = limits("{ max_error_rates: { transport: 2 } }").unwrap_err();
        assert!(error.contains("performance_expectations.transport: a share"), "{error}");
        let error = limits("{ stacks: { nats: { max_ms: -1 } } }").unwrap_err();
        assert!(error.contains("performance_expectations.stacks.nats.max_ms"), "{error}");
        let error = limits("{ p75_ms: 1 }").unwrap_err();
        assert!(error.contains("performance_expectations.p75_ms: unknown key"), "{error}");
        let error = limits("{ endpoints: { ecommerce.restock: { p75_ms: 1 } } }").unwrap_err();
        assert!(error.contains("unknown field `p75_ms`"), "{error}");

        // A flow is labelled apart from the mix, and its steps' capture and think time stay in flows.
        let flow = "    flows: [{name: ecommerce.restock, steps: [{endpoint: ecommerce.restock}]}]\n";
        let error = BenchmarkConfig::parse(
            &scenario(&format!("    mix: [{{endpoint: ecommerce.restock}}]\n{flow}")),
            "b.yaml",
        );
        assert!(
            error.unwrap_err().to_string().contains("scenarios.x.flows[0].name"),
            "a flow named as an entry"
        );
        let only_flows = scenario(flow);
        assert!(BenchmarkConfig::parse(&only_flows, "b.yaml").is_ok(), "a scenario of flows alone");
        let stray = scenario("    mix: [{endpoint: ecommerce.restock, think_time: 1s}]\n");
        let error = BenchmarkConfig::parse(&stray, "b.yaml").unwrap_err().to_string();
        assert!(error.contains("scenarios.x.mix[0]: capture and think_time are a flow's"), "{error}");
    }

    #[test]
    fn a_validation_control_copies_another_stack_of_its_transport() {
        let stack = |name: &str, transport: &str, url: &str, of: Option<&str>| {
            let of = of.map(|of| format!("    unvalidated_control_of: {of}\n")).unwrap_or_default();
            format!(
                "  {name}:\n    description: d\n    transport: {transport}\n    url: {url}\n{of}    processes: [{{name: a, command: [b]}}]\n"
            )
        };
        let nats = stack("nats", "nats", "nats://127.0.0.1:4222", None);
        let web = stack("web", "http", "http://127.0.0.1:8080", None);
        let good = format!("stacks:\n{nats}{}", stack("bare", "nats", "nats://127.0.0.1:4222", Some("nats")));
        let config = BenchmarkConfig::parse(&good, "b.yaml").unwrap();
        assert_eq!(config.stacks["bare"].unvalidated_control_of.as_deref(), Some("nats"));
        let other_control = stack("other", "nats", "nats://127.0.0.1:4222", Some("nats"));
        for (control, why) in [
            (stack("bare", "nats", "nats://127.0.0.1:4222", Some("nowhere")), "an unknown stack"),
            (stack("bare", "nats", "nats://127.0.0.1:4222", Some("bare")), "itself"),
            (stack("bare", "http", "http://127.0.0.1:8081", Some("nats")), "another transport"),
            (stack("bare", "nats", "nats://127.0.0.1:4222", Some("other")), "another control"),
        ] {
            let text = format!("stacks:\n{nats}{web}{other_control}{control}");
            let error =
                BenchmarkConfig::parse(&text, "b.yaml").err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                error.contains("stacks.bare.unvalidated_control_of"),
                "a control of {why} was taken: {error:?}"
            );
        }
    }
}
