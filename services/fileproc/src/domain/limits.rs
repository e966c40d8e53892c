//! What the file service holds at most, and for how long: every store enforces the same limits, so
//! that no caller (a careless one, or one that uploads and walks away) can fill its memory.

use std::time::Duration;

use crate::contracts::MAX_FILE_BYTES;

/// Limits of the file service.
///
/// ```
/// let limits = fileproc::domain::FileLimits { max_open_uploads: 8, ..Default::default() };
/// assert_eq!(limits.max_file_bytes, 64 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// The largest file an upload may declare (413 `file_too_large`); at most the contract's
    /// 64 MiB. `FILE_MAX_BYTES`.
    pub max_file_bytes: u64,
    /// Uploads open (receiving chunks or being checked) at once (503 `too_many_uploads`).
    /// `FILE_MAX_OPEN_UPLOADS`.
    pub max_open_uploads: u64,
    /// Bytes the open uploads may declare in all: what the store may have to hold
    /// (503 `upload_storage_full`). `FILE_MAX_OPEN_BYTES`.
    pub max_open_bytes: u64,
    /// An upload that receives nothing for this long is dropped with its bytes, and its place
    /// given back. `FILE_UPLOAD_IDLE_SECS`.
    pub upload_idle: Duration,
    /// How long a finished upload's outcome and a job's report are kept. `FILE_RETENTION_SECS`.
    pub retention: Duration,
    /// Job reports kept at most, the oldest dropped first (the in-memory store; Redis keeps each
    /// for `retention`). `FILE_MAX_JOBS`.
    pub max_jobs: usize,
    /// Files checked at once (the SHA-256 and the pipeline, on blocking threads, off the async
    /// workers); more wait their turn. `FILE_CHECKS_AT_ONCE`.
    pub checks_at_once: usize,
}

/// How long a file's check may take before another request may check it again (its checker
/// presumed dead).
pub const CHECK_LEASE: Duration = Duration::from_secs(120);

impl Default for FileLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: MAX_FILE_BYTES,
            max_open_uploads: 64,
            max_open_bytes: 1024 * 1024 * 1024,
            upload_idle: Duration::from_secs(3600),
            retention: Duration::from_secs(3600),
            max_jobs: 10_000,
            checks_at_once: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }
}

impl FileLimits {
    /// The defaults, with each limit its environment variable sets (see the fields); an unset
    /// variable keeps the default, one that is not a whole number is an error.
    pub fn from_env() -> Result<Self, natsrpc::settings::SettingError> {
        let defaults = Self::default();
        let number = |name: &str, default: u64| natsrpc::settings::env_or(name, default, "a whole number");
        let secs = |name: &str, default: Duration| number(name, default.as_secs()).map(Duration::from_secs);
        Ok(Self {
            max_file_bytes: number("FILE_MAX_BYTES", defaults.max_file_bytes)?.min(MAX_FILE_BYTES),
            max_open_uploads: number("FILE_MAX_OPEN_UPLOADS", defaults.max_open_uploads)?,
            max_open_bytes: number("FILE_MAX_OPEN_BYTES", defaults.max_open_bytes)?,
            upload_idle: secs("FILE_UPLOAD_IDLE_SECS", defaults.upload_idle)?,
            retention: secs("FILE_RETENTION_SECS", defaults.retention)?,
            max_jobs: usize::try_from(number("FILE_MAX_JOBS", defaults.max_jobs as u64)?)
                .unwrap_or(usize::MAX),
            checks_at_once: usize::try_from(number("FILE_CHECKS_AT_ONCE", defaults.checks_at_once as u64)?)
                .unwrap_or(usize::MAX)
                .max(1),
        })
    }

    /// Refuses a declaration the limits do not allow whatever else is open: too large a file.
    pub(crate) fn admit_size(&self, size: u64) -> Result<(), crate::FileError> {
        if size > self.max_file_bytes {
            return Err(crate::FileError::FileTooLarge { size, max: self.max_file_bytes });
        }
        Ok(())
    }
}
