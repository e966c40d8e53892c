//! Stock and orders in Redis.
//!
//! - `{prefix}:stock`: a hash of sku to units. Stock is taken by one script that checks every line
//!   before taking any, so concurrent reservations from any number of instances never oversell.
//! - `{prefix}:order:{id}`: a hash with the order's `state` (`claimed` or `placed`), its content's
//!   fingerprint `fp`; while claimed, the claim's `token`, its `lines` (JSON) and `expires`; once
//!   placed, its `receipt` (JSON) and, once cancelled, `cancelled_by`.
//! - `{prefix}:claims`: a sorted set of the claimed orders' ids by expiry time, which the sweep
//!   reads. Claims are given back by the sweep, never by a key's TTL, which would take the
//!   reserved stock's record with it.
//!
//! - `{prefix}:outbox`: a sorted set of the events to publish (`placed:{id}`, `cancelled:{id}`) by
//!   the time they happened, noted before their change and removed once published (the shop's
//!   outbox, which its relay reads).
//!
//! Every change to stock is made in the same script as the change to its order.

use std::collections::BTreeMap;

use ecommerce::ShopError;
use ecommerce::contracts::{OrderReceipt, StockLevel, StockLine};
use ecommerce::domain::{Claim, EventKind, OrderSlot, ShopStore, Unsent, catalog_sku, receipt_lines};
use redis::{AsyncCommands, Script};

use super::{BadReply, RedisPool, Reply};

/// Checks and takes the lines in ARGV[from..] (sku, units pairs) from the stock hash KEYS[stock]:
/// all or none. Shared by the scripts that take stock.
const TAKE: &str = r"
local function take(stock, from)
  for i = from, #ARGV, 2 do
    local have = redis.call('HGET', stock, ARGV[i])
    if not have then return {'unknown', ARGV[i]} end
    if tonumber(have) < tonumber(ARGV[i + 1]) then return {'short', ARGV[i], ARGV[i + 1], have} end
  end
  local out = {'ok'}
  for i = from, #ARGV, 2 do
    table.insert(out, ARGV[i])
    table.insert(out, tostring(redis.call('HINCRBY', stock, ARGV[i], -tonumber(ARGV[i + 1]))))
  end
  return out
end
local function put_back(stock, lines)
  for i = 1, #lines, 2 do redis.call('HINCRBY', stock, lines[i], tonumber(lines[i + 1])) end
end
";

/// KEYS: stock. ARGV: sku, units pairs.
const RESERVE: &str = "return take(KEYS[1], 1)";

/// KEYS: order, stock, claims. ARGV: fingerprint, token, expires (ms), order id, then sku, units
/// pairs.
const CLAIM: &str = r"
local state = redis.call('HGET', KEYS[1], 'state')
if state then
  if state == 'claimed' and redis.call('HGET', KEYS[1], 'token') == ARGV[2] then return {'claimed'} end
  if redis.call('HGET', KEYS[1], 'fp') ~= ARGV[1] then return {'conflict'} end
  if state == 'claimed' then return {'in_progress'} end
  return {'placed', redis.call('HGET', KEYS[1], 'receipt')}
end
local taken = take(KEYS[2], 5)
if taken[1] ~= 'ok' then return taken end
local lines = {}
for i = 5, #ARGV do table.insert(lines, ARGV[i]) end
redis.call('HSET', KEYS[1], 'state', 'claimed', 'fp', ARGV[1], 'token', ARGV[2],
  'lines', cjson.encode(lines), 'expires', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return {'claimed'}
";

/// KEYS: order, claims. ARGV: token, receipt, order id.
const COMPLETE: &str = r"
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'placed' then
  if redis.call('HGET', KEYS[1], 'receipt') == ARGV[2] then return 1 end
  return 0
end
if state ~= 'claimed' or redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'placed', 'receipt', ARGV[2])
redis.call('HDEL', KEYS[1], 'token', 'lines', 'expires')
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
";

/// Gives back one claimed order's stock and forgets the claim. KEYS: order, stock, claims.
const GIVE_BACK: &str = r"
local function give_back(order, stock, claims, id)
  put_back(stock, cjson.decode(redis.call('HGET', order, 'lines') or '[]'))
  redis.call('DEL', order)
  redis.call('ZREM', claims, id)
end
";

/// KEYS: order, stock, claims. ARGV: token, order id.
const ABANDON: &str = r"
if redis.call('HGET', KEYS[1], 'state') == 'claimed' and redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  give_back(KEYS[1], KEYS[2], KEYS[3], ARGV[2])
end
return 1
";

/// KEYS: stock, claims. ARGV: now (ms), the orders' key prefix. Up to 100 claims a call; the order
/// keys are derived from the claims' ids (one Redis, not a cluster).
const EXPIRE: &str = r"
local expired = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 100)) do
  local order = ARGV[2] .. id
  if redis.call('HGET', order, 'state') == 'claimed' then
    give_back(order, KEYS[1], KEYS[2], id)
    expired = expired + 1
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
return expired
";

/// KEYS: order, stock. ARGV: expected receipt, cancelled receipt, token, then sku, units pairs.
const CANCEL: &str = r"
if redis.call('HGET', KEYS[1], 'state') ~= 'placed' then return 0 end
if redis.call('HGET', KEYS[1], 'receipt') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'receipt', ARGV[2], 'cancelled_by', ARGV[3])
  local lines = {}
  for i = 4, #ARGV do table.insert(lines, ARGV[i]) end
  put_back(KEYS[2], lines)
  return 1
end
if redis.call('HGET', KEYS[1], 'cancelled_by') == ARGV[3] then return 1 end
return 0
";

/// The shop's [`ShopStore`] in Redis.
#[derive(Debug, Clone)]
pub struct RedisShopStore {
    pool: RedisPool,
    stock: String,
    claims: String,
    outbox: String,
    reserve: Script,
    claim: Script,
    complete: Script,
    abandon: Script,
    expire: Script,
    cancel: Script,
}

/// An event's member of the outbox's sorted set: `placed:{order id}`.
fn outbox_member(event: &Unsent) -> String {
    format!("{}:{}", event.kind.name(), event.order_id)
}

fn store_error(error: impl std::fmt::Display) -> ShopError {
    ShopError::Store(error.to_string())
}

impl RedisShopStore {
    /// The store over `pool`.
    pub fn new(pool: RedisPool) -> Self {
        let script = |parts: &[&str]| Script::new(&parts.concat());
        Self {
            stock: pool.key(format_args!("stock")),
            claims: pool.key(format_args!("claims")),
            outbox: pool.key(format_args!("outbox")),
            pool,
            reserve: script(&[TAKE, RESERVE]),
            claim: script(&[TAKE, CLAIM]),
            complete: Script::new(COMPLETE),
            abandon: script(&[TAKE, GIVE_BACK, ABANDON]),
            expire: script(&[TAKE, GIVE_BACK, EXPIRE]),
            cancel: script(&[TAKE, CANCEL]),
        }
    }

    /// Stocks `SKU-00000` to `SKU-{skus - 1}` with `units` each, leaving items that already exist as
    /// they are, so that every instance of a stack can run this at start.
    pub async fn seed_catalog(&self, skus: u32, units: u64) -> Result<(), ShopError> {
        let mut pipe = redis::pipe();
        for i in 0..skus {
            pipe.hset_nx(&self.stock, catalog_sku(i), units).ignore();
        }
        pipe.query_async::<()>(&mut self.pool.connection()).await.map_err(store_error)
    }

    fn order_key(&self, order_id: &str) -> String {
        self.pool.key(format_args!("order:{order_id}"))
    }
}

/// Summed per sku and in sku order, as the in-memory store checks them.
fn summed(lines: &[StockLine]) -> BTreeMap<&str, u64> {
    let mut wanted: BTreeMap<&str, u64> = BTreeMap::new();
    for line in lines {
        *wanted.entry(line.sku.as_str()).or_default() += u64::from(line.quantity);
    }
    wanted
}

/// What a script that takes stock answered besides `ok`.
fn not_taken(reply: &mut Reply, answer: &str) -> ShopError {
    let read = |reply: &mut Reply| -> Result<ShopError, BadReply> {
        Ok(match answer {
            "unknown" => ShopError::UnknownSku(reply.text()?),
            "short" => ShopError::OutOfStock {
                sku: reply.text()?,
                requested: reply.number()?,
                available: reply.number()?,
            },
            other => return Err(BadReply::Unexpected(natsrpc::escape::escape(other, 64).into_owned())),
        })
    };
    read(reply).unwrap_or_else(store_error)
}

impl ShopStore for RedisShopStore {
    async fn reserve(&self, lines: &[StockLine]) -> Result<Vec<StockLevel>, ShopError> {
        let wanted = summed(lines);
        let mut invocation = self.reserve.key(&self.stock);
        for (sku, quantity) in &wanted {
            invocation.arg(*sku).arg(*quantity);
        }
        let reply: Vec<Vec<u8>> =
            invocation.invoke_async(&mut self.pool.connection()).await.map_err(store_error)?;
        let mut reply = Reply::new(reply);
        match reply.text().map_err(store_error)?.as_str() {
            "ok" => {
                let mut remaining = Vec::with_capacity(wanted.len());
                for _ in 0..wanted.len() {
                    let sku = reply.text().map_err(store_error)?;
                    let available = reply.number().map_err(store_error)?;
                    remaining.push(StockLevel { sku, available });
                }
                Ok(remaining)
            }
            other => Err(not_taken(&mut reply, other)),
        }
    }

    async fn restock(&self, sku: &str, quantity: u64) -> Result<StockLevel, ShopError> {
        let available: u64 =
            self.pool.connection().hincr(&self.stock, sku, quantity).await.map_err(store_error)?;
        Ok(StockLevel { sku: sku.to_string(), available })
    }

    async fn available(&self, sku: &str) -> Result<Option<u64>, ShopError> {
        self.pool.connection().hget(&self.stock, sku).await.map_err(store_error)
    }

    async fn claim_order(&self, claim: &Claim) -> Result<OrderSlot, ShopError> {
        let mut invocation = self.claim.key(self.order_key(&claim.order_id));
        invocation
            .key(&self.stock)
            .key(&self.claims)
            .arg(&claim.fingerprint)
            .arg(&claim.token)
            .arg(claim.expires_at_ms)
            .arg(&claim.order_id);
        for (sku, quantity) in summed(&claim.lines) {
            invocation.arg(sku).arg(quantity);
        }
        let reply: Vec<Vec<u8>> =
            invocation.invoke_async(&mut self.pool.connection()).await.map_err(store_error)?;
        let mut reply = Reply::new(reply);
        Ok(match reply.text().map_err(store_error)?.as_str() {
            "claimed" => OrderSlot::Claimed,
            "in_progress" => OrderSlot::InProgress,
            "conflict" => OrderSlot::Conflict,
            "placed" => {
                let receipt =
                    serde_json::from_slice(&reply.bytes().map_err(store_error)?).map_err(store_error)?;
                OrderSlot::Placed(Box::new(receipt))
            }
            other => return Err(not_taken(&mut reply, other)),
        })
    }

    async fn complete_order(&self, receipt: &OrderReceipt, token: &str) -> Result<bool, ShopError> {
        let completed: u8 = self
            .complete
            .key(self.order_key(&receipt.order_id))
            .key(&self.claims)
            .arg(token)
            .arg(serde_json::to_string(receipt).map_err(store_error)?)
            .arg(&receipt.order_id)
            .invoke_async(&mut self.pool.connection())
            .await
            .map_err(store_error)?;
        Ok(completed == 1)
    }

    async fn abandon_order(&self, order_id: &str, token: &str) -> Result<(), ShopError> {
        self.abandon
            .key(self.order_key(order_id))
            .key(&self.stock)
            .key(&self.claims)
            .arg(token)
            .arg(order_id)
            .invoke_async::<()>(&mut self.pool.connection())
            .await
            .map_err(store_error)
    }

    async fn expire_claims(&self, now_ms: u64) -> Result<usize, ShopError> {
        let mut expired = 0;
        loop {
            let batch: usize = self
                .expire
                .key(&self.stock)
                .key(&self.claims)
                .arg(now_ms)
                .arg(self.order_key(""))
                .invoke_async(&mut self.pool.connection())
                .await
                .map_err(store_error)?;
            expired += batch;
            if batch < 100 {
                return Ok(expired);
            }
        }
    }

    async fn order(&self, order_id: &str) -> Result<Option<OrderReceipt>, ShopError> {
        let (state, receipt): (Option<String>, Option<Vec<u8>>) = self
            .pool
            .connection()
            .hmget(self.order_key(order_id), &["state", "receipt"])
            .await
            .map_err(store_error)?;
        match (state.as_deref(), receipt) {
            (Some("placed"), Some(json)) => serde_json::from_slice(&json).map(Some).map_err(store_error),
            _ => Ok(None),
        }
    }

    async fn cancel_order(
        &self,
        expect: &OrderReceipt,
        cancelled: &OrderReceipt,
        token: &str,
    ) -> Result<bool, ShopError> {
        let mut invocation = self.cancel.key(self.order_key(&expect.order_id));
        invocation
            .key(&self.stock)
            .arg(serde_json::to_string(expect).map_err(store_error)?)
            .arg(serde_json::to_string(cancelled).map_err(store_error)?)
            .arg(token);
        let lines = receipt_lines(expect);
        for (sku, quantity) in summed(&lines) {
            invocation.arg(sku).arg(quantity);
        }
        let cancelled: u8 =
            invocation.invoke_async(&mut self.pool.connection()).await.map_err(store_error)?;
        Ok(cancelled == 1)
    }

    async fn note_unsent(&self, event: &Unsent) -> Result<(), ShopError> {
        let _: u64 = redis::cmd("ZADD")
            .arg(&self.outbox)
            .arg("NX")
            .arg(event.at_ms)
            .arg(outbox_member(event))
            .query_async(&mut self.pool.connection())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn sent(&self, event: &Unsent) -> Result<(), ShopError> {
        let _: u64 =
            self.pool.connection().zrem(&self.outbox, outbox_member(event)).await.map_err(store_error)?;
        Ok(())
    }

    async fn unsent(&self, before_ms: u64, limit: usize) -> Result<Vec<Unsent>, ShopError> {
        let due: Vec<(String, u64)> = redis::cmd("ZRANGE")
            .arg(&self.outbox)
            .arg("-inf")
            .arg(format!("({before_ms}"))
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .arg("WITHSCORES")
            .query_async(&mut self.pool.connection())
            .await
            .map_err(store_error)?;
        Ok(due
            .into_iter()
            // A member this code did not write (no kind it knows) is left alone.
            .filter_map(|(member, at_ms)| {
                let (kind, order_id) = member.split_once(':')?;
                Some(Unsent { kind: EventKind::named(kind)?, order_id: order_id.to_string(), at_ms })
            })
            .collect())
    }
}
