//! Uploads and job reports behind a small trait. The in-memory store is here; the Redis store lives
//! with the HTTP+Redis stack.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use crate::contracts::{BeginUpload, JobReport, UploadCompleted, UploadPhase, UploadState};
use crate::error::FileError;

/// Uploads (their bytes until completion) and job reports. Every method is atomic on its own.
pub trait FileStore: Send + Sync + 'static {
    /// Records a new upload.
    fn begin(
        &self,
        upload_id: &str,
        upload: &BeginUpload,
    ) -> impl Future<Output = Result<(), FileError>> + Send;

    /// Appends a chunk at `offset`, which must be the bytes received so far; a chunk already
    /// received (same offset, same bytes) is acknowledged again. Answers the bytes received.
    fn append(
        &self,
        upload_id: &str,
        offset: u64,
        data: &[u8],
    ) -> impl Future<Output = Result<u64, FileError>> + Send;

    /// Where an upload stands.
    fn state(&self, upload_id: &str) -> impl Future<Output = Result<UploadState, FileError>> + Send;

    /// Ends the receiving of a fully received upload and hands over its declaration and bytes; the
    /// upload is `checking` until [`FileStore::finish`].
    fn take_for_checking(&self, upload_id: &str) -> impl Future<Output = Result<Checked, FileError>> + Send;

    /// Records the pipeline's outcome; the bytes are gone from the store by now.
    fn finish(
        &self,
        upload_id: &str,
        outcome: Result<UploadCompleted, String>,
    ) -> impl Future<Output = Result<(), FileError>> + Send;

    /// Saves a job's report, unless one with its id exists; answers the report kept.
    fn save_job(&self, report: JobReport) -> impl Future<Output = Result<JobReport, FileError>> + Send;

    /// A job's report.
    fn job(&self, job_id: &str) -> impl Future<Output = Result<Option<JobReport>, FileError>> + Send;
}

/// What [`FileStore::take_for_checking`] answers.
#[derive(Debug)]
pub enum Checked {
    /// The declaration and bytes, to check now.
    Take(BeginUpload, Vec<u8>),
    /// Already completed: its result.
    Completed(UploadCompleted),
    /// Already refused: why.
    Failed(String),
}

#[derive(Debug)]
struct Upload {
    declared: BeginUpload,
    data: Vec<u8>,
    phase: UploadPhase,
    completed: Option<UploadCompleted>,
    failure: Option<String>,
}

/// State in this process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    uploads: Mutex<HashMap<String, Upload>>,
    jobs: Mutex<HashMap<String, JobReport>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere mid-update; each update keeps the maps whole.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FileStore for MemoryStore {
    async fn begin(&self, upload_id: &str, upload: &BeginUpload) -> Result<(), FileError> {
        let entry = Upload {
            declared: upload.clone(),
            data: Vec::new(),
            phase: UploadPhase::Receiving,
            completed: None,
            failure: None,
        };
        lock(&self.uploads).insert(upload_id.to_string(), entry);
        Ok(())
    }

    async fn append(&self, upload_id: &str, offset: u64, data: &[u8]) -> Result<u64, FileError> {
        let mut uploads = lock(&self.uploads);
        let upload =
            uploads.get_mut(upload_id).ok_or_else(|| FileError::UploadNotFound(upload_id.to_string()))?;
        if upload.phase != UploadPhase::Receiving {
            return Err(FileError::NotReceiving(upload_id.to_string()));
        }
        let received = upload.data.len() as u64;
        let end = offset + data.len() as u64;
        if offset == received {
            if end > upload.declared.size_bytes {
                return Err(FileError::BeyondDeclaredSize { end, size: upload.declared.size_bytes });
            }
            upload.data.extend_from_slice(data);
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
            uploads.get(upload_id).ok_or_else(|| FileError::UploadNotFound(upload_id.to_string()))?;
        Ok(UploadState {
            upload_id: upload_id.to_string(),
            phase: upload.phase,
            received_bytes: upload.completed.as_ref().map_or(upload.data.len() as u64, |c| c.size_bytes),
            size_bytes: upload.declared.size_bytes,
            failure: upload.failure.clone(),
        })
    }

    async fn take_for_checking(&self, upload_id: &str) -> Result<Checked, FileError> {
        let mut uploads = lock(&self.uploads);
        let upload =
            uploads.get_mut(upload_id).ok_or_else(|| FileError::UploadNotFound(upload_id.to_string()))?;
        match upload.phase {
            UploadPhase::Completed => {
                return upload
                    .completed
                    .clone()
                    .map(Checked::Completed)
                    .ok_or(FileError::NotReceiving(upload_id.into()));
            }
            UploadPhase::Failed => return Ok(Checked::Failed(upload.failure.clone().unwrap_or_default())),
            UploadPhase::Checking => return Err(FileError::NotReceiving(upload_id.to_string())),
            UploadPhase::Receiving => {}
        }
        let received = upload.data.len() as u64;
        if received != upload.declared.size_bytes {
            return Err(FileError::Incomplete { received, size: upload.declared.size_bytes });
        }
        upload.phase = UploadPhase::Checking;
        Ok(Checked::Take(upload.declared.clone(), std::mem::take(&mut upload.data)))
    }

    async fn finish(
        &self,
        upload_id: &str,
        outcome: Result<UploadCompleted, String>,
    ) -> Result<(), FileError> {
        let mut uploads = lock(&self.uploads);
        let upload =
            uploads.get_mut(upload_id).ok_or_else(|| FileError::UploadNotFound(upload_id.to_string()))?;
        match outcome {
            Ok(completed) => {
                upload.phase = UploadPhase::Completed;
                upload.completed = Some(completed);
            }
            Err(reason) => {
                upload.phase = UploadPhase::Failed;
                upload.failure = Some(reason);
            }
        }
        Ok(())
    }

    async fn save_job(&self, report: JobReport) -> Result<JobReport, FileError> {
        Ok(lock(&self.jobs).entry(report.job_id.clone()).or_insert(report).clone())
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobReport>, FileError> {
        Ok(lock(&self.jobs).get(job_id).cloned())
    }
}
