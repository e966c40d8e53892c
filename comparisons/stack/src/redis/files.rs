//! Uploads and job reports in Redis.
//!
//! - `{prefix}:upload:{id}`: a hash with the declaration (`declared`, JSON, and its `size`), the
//!   `phase`, the check's `lease` while checking, and the outcome (`completed`, JSON, or `failure`);
//! - `{prefix}:upload:{id}:data`: the bytes received so far, appended to by one script per chunk
//!   that checks the offset, so that chunks from any instance land in order or not at all;
//! - `{prefix}:uploads:open`: the open uploads' ids (receiving or checking) by the time they
//!   lapse, `{prefix}:uploads:sizes` their declared sizes and `{prefix}:uploads:bytes` their sum:
//!   what [`FileLimits`] bounds, read and changed by the same scripts that open and finish uploads;
//! - `{prefix}:job:{id}`: a job's report (JSON), written once, kept for the retention.
//!
//! An upload idle past [`FileLimits::upload_idle`] is dropped by the next upload's start (its keys
//! also expire by themselves); a finished one's outcome is kept for [`FileLimits::retention`].

use std::time::Duration;

use fileproc::FileError;
use fileproc::contracts::{BeginUpload, JobReport, UploadCompleted, UploadPhase, UploadState};
use fileproc::domain::{CHECK_LEASE, CheckOutcome, Checked, FileLimits, FileStore};
use redis::{AsyncCommands, Script};

use super::{RedisPool, Reply};

/// Drops the open uploads that lapsed before ARGV[1] (ms); KEYS: open, sizes, bytes; ARGV[2]: the
/// uploads' key prefix. Shared by the scripts below.
const SWEEP: &str = r"
local function sweep(open, sizes, bytes, now, prefix)
  repeat
    local lapsed = redis.call('ZRANGEBYSCORE', open, '-inf', '(' .. now, 'LIMIT', 0, 100)
    for _, id in ipairs(lapsed) do
      redis.call('DECRBY', bytes, tonumber(redis.call('HGET', sizes, id) or '0'))
      redis.call('HDEL', sizes, id)
      redis.call('ZREM', open, id)
      redis.call('DEL', prefix .. id, prefix .. id .. ':data')
    end
  until #lapsed < 100
end
";

/// KEYS: upload, data, open, sizes, bytes. ARGV: now, uploads' key prefix, id, declared (JSON),
/// size, lapses at, max open, max bytes, key TTL (ms).
const BEGIN: &str = r"
sweep(KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2])
local open = redis.call('ZCARD', KEYS[3])
if open >= tonumber(ARGV[7]) then return {'too_many', tostring(open)} end
local bytes = tonumber(redis.call('GET', KEYS[5]) or '0')
if bytes + tonumber(ARGV[5]) > tonumber(ARGV[8]) then return {'full', tostring(bytes)} end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'declared', ARGV[4], 'size', ARGV[5], 'phase', 'receiving')
redis.call('PEXPIRE', KEYS[1], ARGV[9])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[3])
redis.call('HSET', KEYS[4], ARGV[3], ARGV[5])
redis.call('INCRBY', KEYS[5], ARGV[5])
return {'ok'}
";

/// KEYS: upload, data, open. ARGV: offset, bytes, key TTL (ms), lapses at, id.
const APPEND: &str = r"
local size = redis.call('HGET', KEYS[1], 'size')
if not size then return {'not_found'} end
if redis.call('HGET', KEYS[1], 'phase') ~= 'receiving' then return {'not_receiving'} end
local received = redis.call('STRLEN', KEYS[2])
local offset, length = tonumber(ARGV[1]), string.len(ARGV[2])
if offset == received then
  if offset + length > tonumber(size) then return {'beyond', tostring(offset + length), size} end
  local now = redis.call('APPEND', KEYS[2], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('ZADD', KEYS[3], 'XX', ARGV[4], ARGV[5])
  return {'ok', tostring(now)}
end
-- A chunk sent again after a lost acknowledgement: the same bytes at the same place.
if offset < received and offset + length <= received
   and redis.call('GETRANGE', KEYS[2], offset, offset + length - 1) == ARGV[2] then
  return {'ok', tostring(received)}
end
return {'unexpected', tostring(received)}
";

/// KEYS: upload, data, open. ARGV: now, lease until, lapses at, id, key TTL (ms). The bytes stay
/// until the outcome is recorded.
const TAKE: &str = r"
local phase = redis.call('HGET', KEYS[1], 'phase')
if not phase then return {'not_found'} end
if phase == 'completed' then return {'completed', redis.call('HGET', KEYS[1], 'completed')} end
if phase == 'failed' then return {'failed', redis.call('HGET', KEYS[1], 'failure') or ''} end
if phase == 'checking' and tonumber(redis.call('HGET', KEYS[1], 'lease') or '0') >= tonumber(ARGV[1]) then
  return {'not_receiving'}
end
local received, size = redis.call('STRLEN', KEYS[2]), redis.call('HGET', KEYS[1], 'size')
if received ~= tonumber(size) then return {'incomplete', tostring(received), size} end
redis.call('HSET', KEYS[1], 'phase', 'checking', 'lease', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], 'XX', ARGV[3], ARGV[4])
return {'take', redis.call('HGET', KEYS[1], 'declared'), redis.call('GET', KEYS[2]) or ''}
";

/// KEYS: upload, data, open, sizes, bytes. ARGV: phase, field, value, retention (ms), id.
const FINISH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
redis.call('HSET', KEYS[1], 'phase', ARGV[1], ARGV[2], ARGV[3])
redis.call('HDEL', KEYS[1], 'lease')
redis.call('DEL', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local size = redis.call('HGET', KEYS[4], ARGV[5])
if size then
  redis.call('DECRBY', KEYS[5], tonumber(size))
  redis.call('HDEL', KEYS[4], ARGV[5])
end
redis.call('ZREM', KEYS[3], ARGV[5])
return {'ok'}
";

/// An upload's hash: `size`, `phase`, `completed` and `failure`.
type UploadFields = (Option<u64>, Option<String>, Option<Vec<u8>>, Option<String>);

/// The file processor's [`FileStore`] in Redis.
#[derive(Debug, Clone)]
pub struct RedisFileStore {
    pool: RedisPool,
    limits: FileLimits,
    begin: Script,
    append: Script,
    take: Script,
    finish: Script,
}

fn store_error(error: impl std::fmt::Display) -> FileError {
    FileError::Store(error.to_string())
}

fn phase_name(phase: UploadPhase) -> &'static str {
    match phase {
        UploadPhase::Receiving => "receiving",
        UploadPhase::Checking => "checking",
        UploadPhase::Completed => "completed",
        UploadPhase::Failed => "failed",
    }
}

fn phase_of(name: &str) -> Result<UploadPhase, FileError> {
    [UploadPhase::Receiving, UploadPhase::Checking, UploadPhase::Completed, UploadPhase::Failed]
        .into_iter()
        .find(|phase| phase_name(*phase) == name)
        .ok_or_else(|| store_error(format!("unknown upload phase {name:?}")))
}

impl RedisFileStore {
    /// The store over `pool`, holding to `limits`.
    pub fn new(pool: RedisPool, limits: FileLimits) -> Self {
        Self {
            pool,
            limits,
            begin: Script::new(&[SWEEP, BEGIN].concat()),
            append: Script::new(APPEND),
            take: Script::new(TAKE),
            finish: Script::new(FINISH),
        }
    }

    fn open_keys(&self) -> [String; 3] {
        ["open", "sizes", "bytes"].map(|name| self.pool.key(format_args!("uploads:{name}")))
    }

    /// How long an upload's keys live past their last change: a safety net behind the sweep.
    fn key_ttl_ms(&self) -> u64 {
        millis(self.limits.upload_idle + CHECK_LEASE)
    }

    fn upload_key(&self, upload_id: &str) -> String {
        self.pool.key(format_args!("upload:{upload_id}"))
    }

    fn data_key(&self, upload_id: &str) -> String {
        self.pool.key(format_args!("upload:{upload_id}:data"))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl FileStore for RedisFileStore {
    async fn begin(&self, upload_id: &str, upload: &BeginUpload, now_ms: u64) -> Result<(), FileError> {
        if upload.size_bytes > self.limits.max_file_bytes {
            return Err(FileError::FileTooLarge { size: upload.size_bytes, max: self.limits.max_file_bytes });
        }
        let [open, sizes, bytes] = self.open_keys();
        let reply: Vec<Vec<u8>> = self
            .begin
            .key(self.upload_key(upload_id))
            .key(self.data_key(upload_id))
            .key(open)
            .key(sizes)
            .key(bytes)
            .arg(now_ms)
            .arg(self.upload_key(""))
            .arg(upload_id)
            .arg(serde_json::to_string(upload).map_err(store_error)?)
            .arg(upload.size_bytes)
            .arg(now_ms.saturating_add(millis(self.limits.upload_idle)))
            .arg(self.limits.max_open_uploads)
            .arg(self.limits.max_open_bytes)
            .arg(self.key_ttl_ms())
            .invoke_async(&mut self.pool.connection())
            .await
            .map_err(store_error)?;
        let mut reply = Reply::new(reply);
        match reply.text().map_err(store_error)?.as_str() {
            "ok" => Ok(()),
            "too_many" => Err(FileError::TooManyUploads(reply.number().map_err(store_error)?)),
            "full" => Err(FileError::StorageFull(reply.number().map_err(store_error)?)),
            other => Err(store_error(format!("begin answered {other:?}"))),
        }
    }

    async fn append(&self, upload_id: &str, offset: u64, data: &[u8], now_ms: u64) -> Result<u64, FileError> {
        let [open, ..] = self.open_keys();
        let reply: Vec<Vec<u8>> = self
            .append
            .key(self.upload_key(upload_id))
            .key(self.data_key(upload_id))
            .key(open)
            .arg(offset)
            .arg(data)
            .arg(self.key_ttl_ms())
            .arg(now_ms.saturating_add(millis(self.limits.upload_idle)))
            .arg(upload_id)
            .invoke_async(&mut self.pool.connection())
            .await
            .map_err(store_error)?;
        let mut reply = Reply::new(reply);
        match reply.text().map_err(store_error)?.as_str() {
            "ok" => reply.number().map_err(store_error),
            "not_found" => Err(FileError::UploadNotFound(upload_id.to_string())),
            "not_receiving" => Err(FileError::NotReceiving(upload_id.to_string())),
            "beyond" => Err(FileError::BeyondDeclaredSize {
                end: reply.number().map_err(store_error)?,
                size: reply.number().map_err(store_error)?,
            }),
            "unexpected" => Err(FileError::UnexpectedOffset {
                expected: reply.number().map_err(store_error)?,
                got: offset,
            }),
            other => Err(store_error(format!("append answered {other:?}"))),
        }
    }

    async fn state(&self, upload_id: &str) -> Result<UploadState, FileError> {
        let key = self.upload_key(upload_id);
        let ((size, phase, completed, failure), received): (UploadFields, u64) = redis::pipe()
            .hmget(&key, &["size", "phase", "completed", "failure"])
            .strlen(self.data_key(upload_id))
            .query_async(&mut self.pool.connection())
            .await
            .map_err(store_error)?;
        let (Some(size_bytes), Some(phase)) = (size, phase) else {
            return Err(FileError::UploadNotFound(upload_id.to_string()));
        };
        let completed: Option<UploadCompleted> =
            completed.map(|json| serde_json::from_slice(&json)).transpose().map_err(store_error)?;
        Ok(UploadState {
            upload_id: upload_id.to_string(),
            phase: phase_of(&phase)?,
            received_bytes: completed.map_or(received, |done| done.size_bytes),
            size_bytes,
            failure,
        })
    }

    async fn take_for_checking(&self, upload_id: &str, now_ms: u64) -> Result<Checked, FileError> {
        let [open, ..] = self.open_keys();
        let lease = now_ms.saturating_add(millis(CHECK_LEASE));
        let reply: Vec<Vec<u8>> = self
            .take
            .key(self.upload_key(upload_id))
            .key(self.data_key(upload_id))
            .key(open)
            .arg(now_ms)
            .arg(lease)
            .arg(lease.saturating_add(millis(self.limits.upload_idle)))
            .arg(upload_id)
            .arg(self.key_ttl_ms())
            .invoke_async(&mut self.pool.connection())
            .await
            .map_err(store_error)?;
        let mut reply = Reply::new(reply);
        match reply.text().map_err(store_error)?.as_str() {
            "take" => {
                let declared =
                    serde_json::from_slice(&reply.bytes().map_err(store_error)?).map_err(store_error)?;
                Ok(Checked::Take(declared, reply.bytes().map_err(store_error)?.into()))
            }
            "completed" => {
                let done =
                    serde_json::from_slice(&reply.bytes().map_err(store_error)?).map_err(store_error)?;
                Ok(Checked::Completed(done))
            }
            "failed" => Ok(Checked::Failed(reply.text().map_err(store_error)?)),
            "not_found" => Err(FileError::UploadNotFound(upload_id.to_string())),
            "not_receiving" => Err(FileError::NotReceiving(upload_id.to_string())),
            "incomplete" => Err(FileError::Incomplete {
                received: reply.number().map_err(store_error)?,
                size: reply.number().map_err(store_error)?,
            }),
            other => Err(store_error(format!("take answered {other:?}"))),
        }
    }

    async fn finish(&self, upload_id: &str, outcome: CheckOutcome, _now_ms: u64) -> Result<(), FileError> {
        let (phase, field, value) = match outcome {
            CheckOutcome::Completed(completed) => {
                (UploadPhase::Completed, "completed", serde_json::to_string(&completed).map_err(store_error)?)
            }
            CheckOutcome::Failed(reason) => (UploadPhase::Failed, "failure", reason),
        };
        let [open, sizes, bytes] = self.open_keys();
        let reply: Vec<Vec<u8>> = self
            .finish
            .key(self.upload_key(upload_id))
            .key(self.data_key(upload_id))
            .key(open)
            .key(sizes)
            .key(bytes)
            .arg(phase_name(phase))
            .arg(field)
            .arg(value)
            .arg(millis(self.limits.retention).max(1))
            .arg(upload_id)
            .invoke_async(&mut self.pool.connection())
            .await
            .map_err(store_error)?;
        match Reply::new(reply).text().map_err(store_error)?.as_str() {
            "ok" => Ok(()),
            "not_found" => Err(FileError::UploadNotFound(upload_id.to_string())),
            other => Err(store_error(format!("finish answered {other:?}"))),
        }
    }

    async fn save_job(&self, report: JobReport, _now_ms: u64) -> Result<JobReport, FileError> {
        let key = self.pool.key(format_args!("job:{}", report.job_id));
        let json = serde_json::to_string(&report).map_err(store_error)?;
        // SET NX GET: ours is kept unless a report exists, which is answered instead.
        let earlier: Option<Vec<u8>> = redis::cmd("SET")
            .arg(&key)
            .arg(json)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(millis(self.limits.retention).max(1))
            .query_async(&mut self.pool.connection())
            .await
            .map_err(store_error)?;
        match earlier {
            Some(json) => serde_json::from_slice(&json).map_err(store_error),
            None => Ok(report),
        }
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobReport>, FileError> {
        let key = self.pool.key(format_args!("job:{job_id}"));
        let json: Option<Vec<u8>> = self.pool.connection().get(key).await.map_err(store_error)?;
        json.map(|json| serde_json::from_slice(&json)).transpose().map_err(store_error)
    }
}
