//! What a run compares and how (`run:`), and the named sets of overrides of it (`profiles:`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::duration_text;

/// What a run compares, and how.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSettings {
    /// The stacks compared, run in a shuffled order in every repetition (every stack of the file
    /// when none are named).
    pub stacks: Vec<String>,
    /// The scenarios run, in this order (every scenario of the file, in name order, when none
    /// are named).
    pub scenarios: Vec<String>,
    /// Load before measuring, discarded.
    #[serde(with = "duration_text")]
    pub warmup: Duration,
    /// Measurements of each scenario on each stack.
    pub repetitions: u32,
    /// Seed of payloads, mixes and arrival jitter.
    pub seed: u64,
    /// A request with no answer after this is counted as a timeout.
    #[serde(with = "duration_text")]
    pub request_timeout: Duration,
    /// Replaces every scenario's duration (a quick run).
    #[serde(with = "duration_text::option")]
    pub duration: Option<Duration>,
    /// Replaces the duration of the scenarios named (before `duration`): a quick run's soak lasts
    /// longer than its other scenarios.
    #[serde(default, with = "duration_text::map")]
    pub durations: BTreeMap<String, Duration>,
    /// Shuffles the order of stacks in each repetition, so that drift of the machine over the run
    /// does not favour whichever stack goes first.
    pub shuffle_stacks: bool,
    /// The CPUs the load generator runs on (`taskset` list: `0`, `0-1`, `0,2`); by default every
    /// core, shared with the stacks and brokers. On a larger machine, keep it off the stacks' cores
    /// (and give each stack process its own with `cpus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_cpus: Option<String>,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            stacks: Vec::new(),
            scenarios: Vec::new(),
            warmup: Duration::from_secs(2),
            repetitions: 3,
            seed: 2026,
            request_timeout: Duration::from_secs(5),
            duration: None,
            durations: BTreeMap::new(),
            shuffle_stacks: true,
            generator_cpus: None,
        }
    }
}

/// Overrides of [`RunSettings`]; what is absent stays.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// One line saying what it is for.
    #[serde(default)]
    pub description: String,
    /// See [`RunSettings::stacks`].
    pub stacks: Option<Vec<String>>,
    /// See [`RunSettings::scenarios`].
    pub scenarios: Option<Vec<String>>,
    /// See [`RunSettings::warmup`].
    #[serde(default, with = "duration_text::option")]
    pub warmup: Option<Duration>,
    /// See [`RunSettings::repetitions`].
    pub repetitions: Option<u32>,
    /// See [`RunSettings::duration`].
    #[serde(default, with = "duration_text::option")]
    pub duration: Option<Duration>,
    /// See [`RunSettings::durations`].
    #[serde(default, with = "duration_text::map")]
    pub durations: BTreeMap<String, Duration>,
}

impl RunSettings {
    /// These settings with `profile`'s overrides.
    pub fn with_profile(&self, profile: &Profile) -> Self {
        let mut run = self.clone();
        if let Some(stacks) = &profile.stacks {
            run.stacks = stacks.clone();
        }
        if let Some(scenarios) = &profile.scenarios {
            run.scenarios = scenarios.clone();
        }
        run.warmup = profile.warmup.unwrap_or(run.warmup);
        run.repetitions = profile.repetitions.unwrap_or(run.repetitions);
        run.duration = profile.duration.or(run.duration);
        run.durations.extend(profile.durations.clone());
        run
    }
}
