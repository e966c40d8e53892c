//! Stock and orders in Redis.
//!
//! - `{prefix}:stock`: a hash of sku to units. A reservation is one script that checks every line
//!   before taking any, so concurrent reservations from any number of instances never oversell.
//! - `{prefix}:order:{id}`: a hash with the order's `state` (`claimed` or `placed`), its content's
//!   fingerprint `fp` and, once placed, its `receipt` (JSON). A claim expires after
//!   [`CLAIM_TTL_MS`], so that an instance that died mid-order does not hold the id for ever.

use std::collections::BTreeMap;

use ecommerce::ShopError;
use ecommerce::contracts::{OrderReceipt, StockLevel, StockLine};
use ecommerce::domain::{OrderSlot, ShopStore, catalog_sku};
use redis::{AsyncCommands, Script};

use super::{RedisPool, Reply};

/// How long a claim on an order id outlives an instance that stopped answering.
pub const CLAIM_TTL_MS: u64 = 30_000;

const RESERVE: &str = r"
local levels = {}
for i = 1, #ARGV, 2 do
  local have = redis.call('HGET', KEYS[1], ARGV[i])
  if not have then return {'unknown', ARGV[i]} end
  if tonumber(have) < tonumber(ARGV[i + 1]) then return {'short', ARGV[i], ARGV[i + 1], have} end
end
local out = {'ok'}
for i = 1, #ARGV, 2 do
  table.insert(out, ARGV[i])
  table.insert(out, tostring(redis.call('HINCRBY', KEYS[1], ARGV[i], -tonumber(ARGV[i + 1]))))
end
return out
";

const CLAIM: &str = r"
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'claimed', 'fp', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'claimed'}
end
if redis.call('HGET', KEYS[1], 'fp') ~= ARGV[1] then return {'conflict'} end
if state == 'claimed' then return {'in_progress'} end
return {'placed', redis.call('HGET', KEYS[1], 'receipt')}
";

const ABANDON: &str = r"
if redis.call('HGET', KEYS[1], 'state') == 'claimed' then redis.call('DEL', KEYS[1]) end
return 1
";

const UPDATE: &str = r"
if redis.call('HGET', KEYS[1], 'state') == 'placed' and redis.call('HGET', KEYS[1], 'receipt') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'receipt', ARGV[2])
  return 1
end
return 0
";

/// The shop's [`ShopStore`] in Redis.
#[derive(Debug, Clone)]
pub struct RedisShopStore {
    pool: RedisPool,
    stock: String,
    reserve: Script,
    claim: Script,
    abandon: Script,
    update: Script,
}

fn store_error(error: impl std::fmt::Display) -> ShopError {
    ShopError::Store(error.to_string())
}

impl RedisShopStore {
    /// The store over `pool`.
    pub fn new(pool: RedisPool) -> Self {
        Self {
            stock: pool.key(format_args!("stock")),
            pool,
            reserve: Script::new(RESERVE),
            claim: Script::new(CLAIM),
            abandon: Script::new(ABANDON),
            update: Script::new(UPDATE),
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

impl ShopStore for RedisShopStore {
    async fn reserve(&self, lines: &[StockLine]) -> Result<Vec<StockLevel>, ShopError> {
        // Summed per sku and in sku order, as the in-memory store checks them.
        let mut wanted: BTreeMap<&str, u64> = BTreeMap::new();
        for line in lines {
            *wanted.entry(line.sku.as_str()).or_default() += u64::from(line.quantity);
        }
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
            "unknown" => Err(ShopError::UnknownSku(reply.text().map_err(store_error)?)),
            "short" => Err(ShopError::OutOfStock {
                sku: reply.text().map_err(store_error)?,
                requested: reply.number().map_err(store_error)?,
                available: reply.number().map_err(store_error)?,
            }),
            other => Err(store_error(format!("reserve answered {other:?}"))),
        }
    }

    async fn release(&self, lines: &[StockLine]) -> Result<(), ShopError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for line in lines {
            pipe.hincr(&self.stock, &line.sku, line.quantity).ignore();
        }
        pipe.query_async::<()>(&mut self.pool.connection()).await.map_err(store_error)
    }

    async fn restock(&self, sku: &str, quantity: u64) -> Result<StockLevel, ShopError> {
        let available: u64 =
            self.pool.connection().hincr(&self.stock, sku, quantity).await.map_err(store_error)?;
        Ok(StockLevel { sku: sku.to_string(), available })
    }

    async fn available(&self, sku: &str) -> Result<Option<u64>, ShopError> {
        self.pool.connection().hget(&self.stock, sku).await.map_err(store_error)
    }

    async fn claim_order(&self, order_id: &str, fingerprint: &str) -> Result<OrderSlot, ShopError> {
        let reply: Vec<Vec<u8>> = self
            .claim
            .key(self.order_key(order_id))
            .arg(fingerprint)
            .arg(CLAIM_TTL_MS)
            .invoke_async(&mut self.pool.connection())
            .await
            .map_err(store_error)?;
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
            other => return Err(store_error(format!("claim answered {other:?}"))),
        })
    }

    async fn complete_order(&self, receipt: &OrderReceipt) -> Result<(), ShopError> {
        let key = self.order_key(&receipt.order_id);
        let json = serde_json::to_string(receipt).map_err(store_error)?;
        redis::pipe()
            .atomic()
            .hset_multiple(&key, &[("state", "placed"), ("receipt", json.as_str())])
            .ignore()
            .persist(&key)
            .ignore()
            .query_async::<()>(&mut self.pool.connection())
            .await
            .map_err(store_error)
    }

    async fn abandon_order(&self, order_id: &str) -> Result<(), ShopError> {
        self.abandon
            .key(self.order_key(order_id))
            .invoke_async::<()>(&mut self.pool.connection())
            .await
            .map_err(store_error)
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

    async fn update_order(&self, expect: &OrderReceipt, receipt: &OrderReceipt) -> Result<bool, ShopError> {
        let updated: u8 = self
            .update
            .key(self.order_key(&receipt.order_id))
            .arg(serde_json::to_string(expect).map_err(store_error)?)
            .arg(serde_json::to_string(receipt).map_err(store_error)?)
            .invoke_async(&mut self.pool.connection())
            .await
            .map_err(store_error)?;
        Ok(updated == 1)
    }
}
