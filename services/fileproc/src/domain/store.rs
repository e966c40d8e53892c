//! Uploads and job reports behind a small trait. The in-memory store is here; the Redis store lives
//! with the HTTP+Redis stack. Both hold to the same [`FileLimits`].

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::limits::{CHECK_LEASE, FileLimits};
use crate::contracts::{BeginUpload, JobReport, UploadCompleted, UploadPhase, UploadState};
use crate::error::FileError;

/// Uploads (their bytes until completion) and job reports. Every method is atomic on its own.
/// Times are milliseconds since the Unix epoch, given by the caller.
pub trait FileStore: Send + Sync + 'static {
    /// Records a new upload, within the store's limits: `FileTooLarge`, `TooManyUploads` and
    /// `StorageFull` say which it would break. Uploads idle for too long are dropped first.
    fn begin(
        &self,
        upload_id: &str,
        upload: &BeginUpload,
        now_ms: u64,
    ) -> impl Future<Output = Result<(), FileError>> + Send;

    /// Appends a chunk at `offset`, which must be the bytes received so far; a chunk already
    /// received (same offset, same bytes) is acknowledged again. Answers the bytes received.
    fn append(
        &self,
        upload_id: &str,
        offset: u64,
        data: &[u8],
        now_ms: u64,
    ) -> impl Future<Output = Result<u64, FileError>> + Send;

    /// Where an upload stands.
    fn state(&self, upload_id: &str) -> impl Future<Output = Result<UploadState, FileError>> + Send;

    /// Ends the receiving of a fully received upload and lends its declaration and bytes for
    /// checking; the upload is `checking` until [`FileStore::finish`], which only then drops the
    /// bytes. A check that never finishes (its process died) lets another take the upload again
    /// once [`CHECK_LEASE`] has passed.
    fn take_for_checking(
        &self,
        upload_id: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<Checked, FileError>> + Send;

    /// Records the pipeline's outcome, drops the bytes and gives the upload's place back, in one
    /// step; recording the same outcome again changes nothing.
    fn finish(
        &self,
        upload_id: &str,
        outcome: CheckOutcome,
        now_ms: u64,
    ) -> impl Future<Output = Result<(), FileError>> + Send;

    /// Saves a job's report, unless one with its id exists; answers the report kept.
    fn save_job(
        &self,
        report: JobReport,
        now_ms: u64,
    ) -> impl Future<Output = Result<JobReport, FileError>> + Send;

    /// A job's report.
    fn job(&self, job_id: &str) -> impl Future<Output = Result<Option<JobReport>, FileError>> + Send;
}

/// How the check of an upload ended, as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckOutcome {
    /// It passed: its result.
    Completed(UploadCompleted),
    /// It failed: why, in words shown to whoever asks about the upload later.
    Failed(String),
}

/// What [`FileStore::take_for_checking`] answers.
#[derive(Debug)]
pub enum Checked {
    /// The declaration and bytes, to check now.
    Take(BeginUpload, Arc<Vec<u8>>),
    /// Already completed: its result.
    Completed(UploadCompleted),
    /// Already refused: why.
    Failed(String),
}

#[derive(Debug)]
struct Upload {
    declared: BeginUpload,
    data: Arc<Vec<u8>>,
    phase: UploadPhase,
    completed: Option<UploadCompleted>,
    failure: Option<String>,
    /// Receiving: dropped after this, unless a chunk comes. Checking: taken again after this.
    /// Finished: forgotten after this.
    until_ms: u64,
}

impl Upload {
    fn is_open(&self) -> bool {
        matches!(self.phase, UploadPhase::Receiving | UploadPhase::Checking)
    }
}

#[derive(Debug, Default)]
struct Uploads {
    by_id: HashMap<String, Upload>,
    /// Declared bytes of the open uploads.
    open_bytes: u64,
    open: u64,
}

#[derive(Debug, Default)]
struct Jobs {
    by_id: HashMap<String, (JobReport, u64)>,
    /// Job ids, oldest first.
    order: VecDeque<String>,
}

/// State in this process, within its [`FileLimits`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    limits: FileLimits,
    uploads: Mutex<Uploads>,
    jobs: Mutex<Jobs>,
}

impl MemoryStore {
    /// A store holding to `limits`.
    pub fn new(limits: FileLimits) -> Self {
        Self { limits, uploads: Mutex::default(), jobs: Mutex::default() }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere mid-update; each update keeps the maps whole.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Uploads {
    /// Drops uploads past their time: idle ones with their bytes, finished ones' outcomes. Checking
    /// ones past their lease stay, to be taken again.
    fn sweep(&mut self, now_ms: u64, idle_ms: u64) {
        let (mut freed, mut closed) = (0, 0);
        self.by_id.retain(|_, upload| {
            let expired = match upload.phase {
                UploadPhase::Checking => upload.until_ms.saturating_add(idle_ms) < now_ms,
                _ => upload.until_ms < now_ms,
            };
            if expired && upload.is_open() {
                freed += upload.declared.size_bytes;
                closed += 1;
            }
            !expired
        });
        self.open_bytes = self.open_bytes.saturating_sub(freed);
        self.open = self.open.saturating_sub(closed);
    }
}

impl FileStore for MemoryStore {
    async fn begin(&self, upload_id: &str, upload: &BeginUpload, now_ms: u64) -> Result<(), FileError> {
        self.limits.admit_size(upload.size_bytes)?;
        let mut uploads = lock(&self.uploads);
        uploads.sweep(now_ms, millis(self.limits.upload_idle));
        if uploads.open >= self.limits.max_open_uploads {
            return Err(FileError::TooManyUploads(uploads.open));
        }
        if uploads.open_bytes.saturating_add(upload.size_bytes) > self.limits.max_open_bytes {
            return Err(FileError::StorageFull(uploads.open_bytes));
        }
        let entry = Upload {
            declared: upload.clone(),
            data: Arc::default(),
            phase: UploadPhase::Receiving,
            completed: None,
            failure: None,
            until_ms: now_ms.saturating_add(millis(self.limits.upload_idle)),
        };
        if let Some(earlier) = uploads.by_id.insert(upload_id.to_string(), entry)
            && earlier.is_open()
        {
            uploads.open_bytes = uploads.open_bytes.saturating_sub(earlier.declared.size_bytes);
            uploads.open -= 1;
        }
        uploads.open_bytes += upload.size_bytes;
        uploads.open += 1;
        Ok(())
    }

    async fn append(&self, upload_id: &str, offset: u64, data: &[u8], now_ms: u64) -> Result<u64, FileError> {
        let mut uploads = lock(&self.uploads);
        let upload = uploads
            .by_id
            .get_mut(upload_id)
            .ok_or_else(|| FileError::UploadNotFound(upload_id.to_string()))?;
        if upload.phase != UploadPhase::Receiving {
            return Err(FileError::NotReceiving(upload_id.to_string()));
        }
        let received = upload.data.len() as u64;
        let end = offset.saturating_add(data.len() as u64);
        if offset == received {
            if end > upload.declared.size_bytes {
                return Err(FileError::BeyondDeclaredSize { end, size: upload.declared.size_bytes });
            }
            // Only this store holds the bytes while receiving: no copy.
            Arc::make_mut(&mut upload.data).extend_from_slice(data);
            upload.until_ms = now_ms.saturating_add(millis(self.limits.upload_idle));
            return Ok(end);
        }
        // A chunk sent again after a lost acknowledgement: the same bytes at the same place.
        let resent = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(a, b)| upload.data.get(a..b));
        if resent == Some(data) {
            return Ok(received);
        }
        Err(FileError::UnexpectedOffset { expected: received, got: offset })
    }

    async fn state(&self, upload_id: &str) -> Result<UploadState, FileError> {
        let uploads = lock(&self.uploads);
        let upload =
            uploads.by_id.get(upload_id).ok_or_else(|| FileError::UploadNotFound(upload_id.to_string()))?;
        Ok(UploadState {
            upload_id: upload_id.to_string(),
            phase: upload.phase,
            received_bytes: upload.completed.as_ref().map_or(upload.data.len() as u64, |c| c.size_bytes),
            size_bytes: upload.declared.size_bytes,
            failure: upload.failure.clone(),
        })
    }

    async fn take_for_checking(&self, upload_id: &str, now_ms: u64) -> Result<Checked, FileError> {
        let mut uploads = lock(&self.uploads);
        let upload = uploads
            .by_id
            .get_mut(upload_id)
            .ok_or_else(|| FileError::UploadNotFound(upload_id.to_string()))?;
        match upload.phase {
            UploadPhase::Completed => {
                return upload
                    .completed
                    .clone()
                    .map(Checked::Completed)
                    .ok_or(FileError::NotReceiving(upload_id.into()));
            }
            UploadPhase::Failed => return Ok(Checked::Failed(upload.failure.clone().unwrap_or_default())),
            UploadPhase::Checking if upload.until_ms >= now_ms => {
                return Err(FileError::NotReceiving(upload_id.to_string()));
            }
            UploadPhase::Checking | UploadPhase::Receiving => {}
        }
        let received = upload.data.len() as u64;
        if received != upload.declared.size_bytes {
            return Err(FileError::Incomplete { received, size: upload.declared.size_bytes });
        }
        upload.phase = UploadPhase::Checking;
        upload.until_ms = now_ms.saturating_add(millis(CHECK_LEASE));
        Ok(Checked::Take(upload.declared.clone(), Arc::clone(&upload.data)))
    }

    async fn finish(&self, upload_id: &str, outcome: CheckOutcome, now_ms: u64) -> Result<(), FileError> {
        let mut uploads = lock(&self.uploads);
        let uploads = &mut *uploads;
        let upload = uploads
            .by_id
            .get_mut(upload_id)
            .ok_or_else(|| FileError::UploadNotFound(upload_id.to_string()))?;
        if upload.is_open() {
            uploads.open_bytes = uploads.open_bytes.saturating_sub(upload.declared.size_bytes);
            uploads.open = uploads.open.saturating_sub(1);
        }
        match outcome {
            CheckOutcome::Completed(completed) => {
                upload.phase = UploadPhase::Completed;
                upload.completed = Some(completed);
            }
            CheckOutcome::Failed(reason) => {
                upload.phase = UploadPhase::Failed;
                upload.failure = Some(reason);
            }
        }
        upload.data = Arc::default();
        upload.until_ms = now_ms.saturating_add(millis(self.limits.retention));
        Ok(())
    }

    async fn save_job(&self, report: JobReport, now_ms: u64) -> Result<JobReport, FileError> {
        let mut jobs = lock(&self.jobs);
        if let Some((kept, _)) = jobs.by_id.get(&report.job_id) {
            return Ok(kept.clone());
        }
        // The oldest go first: past their retention, or past the most kept.
        let retention = millis(self.limits.retention);
        while let Some(oldest) = jobs.order.front().cloned() {
            let expired =
                jobs.by_id.get(&oldest).is_none_or(|(_, saved)| saved.saturating_add(retention) < now_ms);
            if !expired && jobs.by_id.len() < self.limits.max_jobs.max(1) {
                break;
            }
            jobs.order.pop_front();
            jobs.by_id.remove(&oldest);
        }
        jobs.order.push_back(report.job_id.clone());
        jobs.by_id.insert(report.job_id.clone(), (report.clone(), now_ms));
        Ok(report)
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobReport>, FileError> {
        Ok(lock(&self.jobs).by_id.get(job_id).map(|(report, _)| report.clone()))
    }
}

#[cfg(test)]
mod tests {
    // The limits on uploads are tested on both stores in `comparisons/stack/tests/files.rs`.
    use super::*;
    use crate::contracts::JobPhase;

    #[tokio::test]
    async fn job_reports_are_bounded_in_number_and_time() {
        let limits = FileLimits {
            max_jobs: 2,
            retention: std::time::Duration::from_secs(10),
            ..FileLimits::default()
        };
        let store = MemoryStore::new(limits);
        let report = |id: &str| JobReport {
            job_id: id.into(),
            phase: JobPhase::Completed,
            total: 1,
            succeeded: 1,
            errors: vec![],
        };
        for (i, id) in ["j1", "j2", "j3"].into_iter().enumerate() {
            store.save_job(report(id), i as u64).await.ok();
        }
        assert!(store.job("j1").await.ok().flatten().is_none(), "the oldest went first");
        assert!(store.job("j3").await.ok().flatten().is_some());
        store.save_job(report("j4"), 20_000).await.ok();
        assert!(store.job("j2").await.ok().flatten().is_none(), "past its retention");
        assert!(store.job("j4").await.ok().flatten().is_some());
    }
}
