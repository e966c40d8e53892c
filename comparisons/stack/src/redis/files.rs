//! Uploads and job reports in Redis.
//!
//! - `{prefix}:upload:{id}`: a hash with the declaration (`declared`, JSON, and its `size`), the
//!   `phase`, and the outcome (`completed`, JSON, or `failure`);
//! - `{prefix}:upload:{id}:data`: the bytes received so far, appended to by one script per chunk
//!   that checks the offset, so that chunks from any instance land in order or not at all;
//! - `{prefix}:job:{id}`: a job's report (JSON), written once.
//!
//! Uploads expire [`UPLOAD_TTL_MS`] after their last change, so that abandoned ones go away.

use fileproc::FileError;
use fileproc::contracts::{BeginUpload, JobReport, UploadCompleted, UploadPhase, UploadState};
use fileproc::domain::{Checked, FileStore};
use redis::{AsyncCommands, Script};

use super::{RedisPool, Reply};

/// How long an upload is kept after its last change.
pub const UPLOAD_TTL_MS: u64 = 3_600_000;

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
  return {'ok', tostring(now)}
end
-- A chunk sent again after a lost acknowledgement: the same bytes at the same place.
if offset < received and offset + length <= received
   and redis.call('GETRANGE', KEYS[2], offset, offset + length - 1) == ARGV[2] then
  return {'ok', tostring(received)}
end
return {'unexpected', tostring(received)}
";

const TAKE: &str = r"
local phase = redis.call('HGET', KEYS[1], 'phase')
if not phase then return {'not_found'} end
if phase == 'completed' then return {'completed', redis.call('HGET', KEYS[1], 'completed')} end
if phase == 'failed' then return {'failed', redis.call('HGET', KEYS[1], 'failure') or ''} end
if phase ~= 'receiving' then return {'not_receiving'} end
local received, size = redis.call('STRLEN', KEYS[2]), redis.call('HGET', KEYS[1], 'size')
if received ~= tonumber(size) then return {'incomplete', tostring(received), size} end
redis.call('HSET', KEYS[1], 'phase', 'checking')
local data = redis.call('GET', KEYS[2]) or ''
redis.call('DEL', KEYS[2])
return {'take', redis.call('HGET', KEYS[1], 'declared'), data}
";

/// An upload's hash: `size`, `phase`, `completed` and `failure`.
type UploadFields = (Option<u64>, Option<String>, Option<Vec<u8>>, Option<String>);

/// The file processor's [`FileStore`] in Redis.
#[derive(Debug, Clone)]
pub struct RedisFileStore {
    pool: RedisPool,
    append: Script,
    take: Script,
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
    /// The store over `pool`.
    pub fn new(pool: RedisPool) -> Self {
        Self { pool, append: Script::new(APPEND), take: Script::new(TAKE) }
    }

    fn upload_key(&self, upload_id: &str) -> String {
        self.pool.key(format_args!("upload:{upload_id}"))
    }

    fn data_key(&self, upload_id: &str) -> String {
        self.pool.key(format_args!("upload:{upload_id}:data"))
    }
}

impl FileStore for RedisFileStore {
    async fn begin(&self, upload_id: &str, upload: &BeginUpload) -> Result<(), FileError> {
        let key = self.upload_key(upload_id);
        let declared = serde_json::to_string(upload).map_err(store_error)?;
        let size = upload.size_bytes.to_string();
        redis::pipe()
            .atomic()
            .del(&[&key, &self.data_key(upload_id)])
            .ignore()
            .hset_multiple(
                &key,
                &[
                    ("declared", declared.as_str()),
                    ("size", &size),
                    ("phase", phase_name(UploadPhase::Receiving)),
                ],
            )
            .ignore()
            .pexpire(&key, UPLOAD_TTL_MS as i64)
            .ignore()
            .query_async::<()>(&mut self.pool.connection())
            .await
            .map_err(store_error)
    }

    async fn append(&self, upload_id: &str, offset: u64, data: &[u8]) -> Result<u64, FileError> {
        let reply: Vec<Vec<u8>> = self
            .append
            .key(self.upload_key(upload_id))
            .key(self.data_key(upload_id))
            .arg(offset)
            .arg(data)
            .arg(UPLOAD_TTL_MS)
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

    async fn take_for_checking(&self, upload_id: &str) -> Result<Checked, FileError> {
        let reply: Vec<Vec<u8>> = self
            .take
            .key(self.upload_key(upload_id))
            .key(self.data_key(upload_id))
            .invoke_async(&mut self.pool.connection())
            .await
            .map_err(store_error)?;
        let mut reply = Reply::new(reply);
        match reply.text().map_err(store_error)?.as_str() {
            "take" => {
                let declared =
                    serde_json::from_slice(&reply.bytes().map_err(store_error)?).map_err(store_error)?;
                Ok(Checked::Take(declared, reply.bytes().map_err(store_error)?))
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

    async fn finish(
        &self,
        upload_id: &str,
        outcome: Result<UploadCompleted, String>,
    ) -> Result<(), FileError> {
        let key = self.upload_key(upload_id);
        let exists: bool = self.pool.connection().exists(&key).await.map_err(store_error)?;
        if !exists {
            return Err(FileError::UploadNotFound(upload_id.to_string()));
        }
        let fields = match outcome {
            Ok(completed) => [
                ("phase", phase_name(UploadPhase::Completed).to_string()),
                ("completed", serde_json::to_string(&completed).map_err(store_error)?),
            ],
            Err(reason) => [("phase", phase_name(UploadPhase::Failed).to_string()), ("failure", reason)],
        };
        self.pool.connection().hset_multiple::<_, _, _, ()>(&key, &fields).await.map_err(store_error)
    }

    async fn save_job(&self, report: JobReport) -> Result<JobReport, FileError> {
        let key = self.pool.key(format_args!("job:{}", report.job_id));
        let json = serde_json::to_string(&report).map_err(store_error)?;
        // SET NX GET: ours is kept unless a report exists, which is answered instead.
        let earlier: Option<Vec<u8>> = redis::cmd("SET")
            .arg(&key)
            .arg(json)
            .arg("NX")
            .arg("GET")
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
