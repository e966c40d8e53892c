//! Analytics events in Redis, aggregated per minute as the in-memory store does.
//!
//! Per minute `m` (milliseconds / 60,000), under `{prefix}:an:{m}:`:
//! - `type:{event_type}`: a hash with `count`, `sum` and `values` (how many carried a value);
//! - `sample:{event_type}`: a list of up to [`SAMPLE_SIZE`] values, a uniform reservoir sample;
//! - `types` and `users`: sorted sets counting events per type and per user.
//!
//! `{prefix}:an:seen:{event_id}` remembers an event so that it is counted once. Every key expires
//! with its minute's retention, so memory stays bounded as it does in the in-memory store.
//! Recording is one script per batch: atomic, and one round trip.

use std::collections::{BTreeMap, HashMap};

use analytics::AnalyticsError;
use analytics::contracts::{Bucket, Dimension, Event, RankEntry, TypeAggregate, Window};
use analytics::domain::{EventStore, MINUTE_MS, SAMPLE_SIZE, aggregate, minutes_of, rank};
use redis::Script;

use super::RedisPool;

const RECORD: &str = r"
local size = tonumber(ARGV[1])
local new = 0
for e = 0, #KEYS / 5 - 1 do
  local k, a = e * 5, 1 + e * 4
  local expire = ARGV[a + 4]
  if redis.call('SET', KEYS[k + 1], 1, 'NX', 'PXAT', expire) then
    new = new + 1
    local figures = KEYS[k + 2]
    redis.call('HINCRBY', figures, 'count', 1)
    local value = ARGV[a + 3]
    if value ~= '' then
      -- Lua numbers are doubles: the same sum, to the bit, as the in-memory store's f64.
      local sum = tonumber(redis.call('HGET', figures, 'sum') or '0') + tonumber(value)
      redis.call('HSET', figures, 'sum', string.format('%.17g', sum))
      local seen = redis.call('HINCRBY', figures, 'values', 1)
      if redis.call('LLEN', KEYS[k + 3]) < size then
        redis.call('RPUSH', KEYS[k + 3], value)
      else
        local slot = math.random(0, seen - 1)
        if slot < size then redis.call('LSET', KEYS[k + 3], slot, value) end
      end
      redis.call('PEXPIREAT', KEYS[k + 3], expire)
    end
    redis.call('ZINCRBY', KEYS[k + 4], 1, ARGV[a + 2])
    redis.call('ZINCRBY', KEYS[k + 5], 1, ARGV[a + 1])
    redis.call('PEXPIREAT', figures, expire)
    redis.call('PEXPIREAT', KEYS[k + 4], expire)
    redis.call('PEXPIREAT', KEYS[k + 5], expire)
  end
end
return new
";

/// The analytics [`EventStore`] in Redis.
#[derive(Debug, Clone)]
pub struct RedisEventStore {
    pool: RedisPool,
    retention_ms: u64,
    record: Script,
}

fn store_error(error: impl std::fmt::Display) -> AnalyticsError {
    AnalyticsError::Store(error.to_string())
}

impl RedisEventStore {
    /// The store over `pool`, keeping `retention_ms` of data.
    pub fn new(pool: RedisPool, retention_ms: u64) -> Self {
        Self { pool, retention_ms, record: Script::new(RECORD) }
    }

    fn minute_key(&self, minute: u64, rest: &str) -> String {
        self.pool.key(format_args!("an:{minute}:{rest}"))
    }

    /// Count and sum of one type in each minute of the window, oldest first.
    async fn figures(&self, event_type: &str, minutes: &[u64]) -> Result<Vec<(u64, f64)>, AnalyticsError> {
        let mut pipe = redis::pipe();
        for minute in minutes {
            pipe.hmget(self.minute_key(*minute, &format!("type:{event_type}")), &["count", "sum"]);
        }
        let rows: Vec<(Option<u64>, Option<f64>)> =
            pipe.query_async(&mut self.pool.connection()).await.map_err(store_error)?;
        Ok(rows.into_iter().map(|(count, sum)| (count.unwrap_or(0), sum.unwrap_or(0.0))).collect())
    }

    /// Each minute's counts in one of the sorted sets (`types` or `users`), oldest first.
    async fn counts(&self, set: &str, minutes: &[u64]) -> Result<Vec<Vec<(String, f64)>>, AnalyticsError> {
        let mut pipe = redis::pipe();
        for minute in minutes {
            pipe.zrange_withscores(self.minute_key(*minute, set), 0, -1);
        }
        pipe.query_async(&mut self.pool.connection()).await.map_err(store_error)
    }
}

impl EventStore for RedisEventStore {
    async fn record(&self, events: Vec<Event>) -> Result<u32, AnalyticsError> {
        if events.is_empty() {
            return Ok(0);
        }
        // Keys of a minute already past its retention still need a moment of life: the script
        // counts the event, as the in-memory store does until it next forgets.
        let soonest = analytics::contracts::now_ms() + 1_000;
        let mut invocation = self.record.arg(SAMPLE_SIZE);
        for event in &events {
            let minute = event.timestamp_ms / MINUTE_MS;
            let expire_at = ((minute + 1) * MINUTE_MS + self.retention_ms).max(soonest);
            invocation
                .key(self.pool.key(format_args!("an:seen:{}", event.event_id)))
                .key(self.minute_key(minute, &format!("type:{}", event.event_type)))
                .key(self.minute_key(minute, &format!("sample:{}", event.event_type)))
                .key(self.minute_key(minute, "users"))
                .key(self.minute_key(minute, "types"))
                .arg(&event.event_type)
                .arg(&event.user_id)
                .arg(event.value.map(|value| value.to_string()).unwrap_or_default())
                .arg(expire_at);
        }
        invocation.invoke_async(&mut self.pool.connection()).await.map_err(store_error)
    }

    async fn aggregates(
        &self,
        event_type: Option<&str>,
        window: &Window,
    ) -> Result<Vec<TypeAggregate>, AnalyticsError> {
        let minutes: Vec<u64> = minutes_of(window).collect();
        // Which types each minute has, then their figures and samples in one more round trip.
        let pairs: Vec<(u64, String)> = match event_type {
            Some(kind) => minutes.iter().map(|minute| (*minute, kind.to_string())).collect(),
            None => {
                let per_minute = self.counts("types", &minutes).await?;
                minutes
                    .iter()
                    .zip(per_minute)
                    .flat_map(|(minute, types)| types.into_iter().map(|(kind, _)| (*minute, kind)))
                    .collect()
            }
        };
        if pairs.is_empty() {
            // Nothing happened in the window; an empty pipeline is an error to Redis.
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (minute, kind) in &pairs {
            pipe.hmget(self.minute_key(*minute, &format!("type:{kind}")), &["count", "sum"]);
            pipe.lrange(self.minute_key(*minute, &format!("sample:{kind}")), 0, -1);
        }
        let rows: Vec<redis::Value> =
            pipe.query_async(&mut self.pool.connection()).await.map_err(store_error)?;
        let mut merged: BTreeMap<String, (u64, f64, Vec<f64>)> = BTreeMap::new();
        for ((_, kind), row) in pairs.into_iter().zip(rows.chunks(2)) {
            let [figures, sample] = row else { continue };
            let (count, sum): (Option<u64>, Option<f64>) =
                redis::from_redis_value(figures.clone()).map_err(store_error)?;
            let sample: Vec<f64> = redis::from_redis_value(sample.clone()).map_err(store_error)?;
            let Some(count) = count else { continue };
            let entry = merged.entry(kind).or_default();
            entry.0 += count;
            entry.1 += sum.unwrap_or(0.0);
            entry.2.extend(sample);
        }
        Ok(merged
            .into_iter()
            .map(|(kind, (count, sum, values))| aggregate(&kind, count, sum, values))
            .collect())
    }

    async fn timeseries(&self, event_type: &str, window: &Window) -> Result<Vec<Bucket>, AnalyticsError> {
        let minutes: Vec<u64> = minutes_of(window).collect();
        let figures = self.figures(event_type, &minutes).await?;
        Ok(minutes
            .into_iter()
            .zip(figures)
            .map(|(minute, (count, sum))| Bucket { minute_ms: minute * MINUTE_MS, count, sum })
            .collect())
    }

    async fn top(&self, by: Dimension, n: u32, window: &Window) -> Result<Vec<RankEntry>, AnalyticsError> {
        let minutes: Vec<u64> = minutes_of(window).collect();
        let set = match by {
            Dimension::EventType => "types",
            Dimension::User => "users",
        };
        let mut counts: HashMap<String, u64> = HashMap::new();
        for minute in self.counts(set, &minutes).await? {
            for (key, count) in minute {
                *counts.entry(key).or_default() += count as u64;
            }
        }
        Ok(rank(counts, n))
    }

    async fn user_events(&self, user_id: &str, window: &Window) -> Result<u64, AnalyticsError> {
        let mut pipe = redis::pipe();
        for minute in minutes_of(window) {
            pipe.zscore(self.minute_key(minute, "users"), user_id);
        }
        let scores: Vec<Option<f64>> =
            pipe.query_async(&mut self.pool.connection()).await.map_err(store_error)?;
        Ok(scores.into_iter().flatten().map(|count| count as u64).sum())
    }
}
