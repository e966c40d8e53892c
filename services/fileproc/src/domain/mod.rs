//! The file-processing logic, free of any transport: every stack calls these methods.
//!
//! An upload: `begin_upload` declares the file (type, size, SHA-256); chunks arrive in order, each
//! checked against its own SHA-256; `upload_status` says where to resume; `complete_upload` checks
//! the whole file's SHA-256, then runs the [`pipeline`], on a blocking thread (at most
//! [`FileLimits::checks_at_once`] files at a time), off the async workers that answer requests.
//! What the service holds is bounded by its [`FileLimits`].

mod forward;
mod limits;
pub mod pipeline;
mod store;

use std::collections::HashSet;
use std::sync::Arc;

use faults::Faults;
use natsrpc::CallOptions;
use sha2::{Digest, Sha256};
use validator::Validate;

pub use forward::Forwarding;
pub use limits::{CHECK_LEASE, FileLimits};
pub use store::{CheckOutcome, Checked, FileStore, MemoryStore};

use crate::contracts::{
    BeginUpload, ChunkAccepted, CompleteUpload, JobPhase, JobReport, JobStatus, MAX_CHUNK_BYTES,
    ProcessBatch, RecordError, UploadChunk, UploadCompleted, UploadStarted, UploadState, UploadStatus,
};
use crate::error::FileError;

/// SHA-256 as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// The file-processing service: its store, its injected faults, and where a job's records go.
#[derive(Debug)]
pub struct FileProcessor<S> {
    store: S,
    faults: Arc<Faults>,
    forwarding: Option<Forwarding>,
    checks: Arc<tokio::sync::Semaphore>,
}

impl<S: FileStore> FileProcessor<S> {
    /// A processor over `store`, checking as many files at once as the default limits say.
    pub fn new(store: S, faults: Arc<Faults>) -> Self {
        let checks = Arc::new(tokio::sync::Semaphore::new(FileLimits::default().checks_at_once));
        Self { store, faults, forwarding: None, checks }
    }

    /// Checks at most `n` files at once.
    pub fn with_checks_at_once(mut self, n: usize) -> Self {
        self.checks = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    /// Sends each job's accepted records to analytics (see [`Forwarding`]).
    pub fn with_forwarding(mut self, forwarding: Forwarding) -> Self {
        self.forwarding = Some(forwarding);
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Declares an upload.
    pub async fn begin_upload(&self, request: BeginUpload) -> Result<UploadStarted, FileError> {
        self.disturb().await?;
        let upload_id = format!("upl_{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>());
        self.store.begin(&upload_id, &request, now_ms()).await?;
        Ok(UploadStarted { upload_id, max_chunk_bytes: MAX_CHUNK_BYTES as u64 })
    }

    /// Takes one chunk, checked against its SHA-256.
    pub async fn upload_chunk(&self, request: UploadChunk) -> Result<ChunkAccepted, FileError> {
        self.disturb().await?;
        if sha256_hex(&request.data.0) != request.sha256 {
            return Err(FileError::ChunkChecksumMismatch(request.offset));
        }
        let received_bytes =
            self.store.append(&request.upload_id, request.offset, &request.data.0, now_ms()).await?;
        Ok(ChunkAccepted { upload_id: request.upload_id, received_bytes })
    }

    /// Where an upload stands.
    pub async fn upload_status(&self, request: UploadStatus) -> Result<UploadState, FileError> {
        self.disturb().await?;
        self.store.state(&request.upload_id).await
    }

    /// Checks the whole file and runs the pipeline; completing again answers the same outcome.
    pub async fn complete_upload(&self, request: CompleteUpload) -> Result<UploadCompleted, FileError> {
        self.disturb().await?;
        let id = request.upload_id;
        // Hashing up to 64 MiB and the pipeline are CPU work: on a blocking thread, a few at a
        // time, so that the async workers go on answering other requests meanwhile. The turn comes
        // first: a file waiting for it holds neither its bytes nor its check's lease.
        let _turn = self.checks.acquire().await.map_err(|_| FileError::Store("checks closed".into()))?;
        let (declared, data) = match self.store.take_for_checking(&id, now_ms()).await? {
            Checked::Take(declared, data) => (declared, data),
            Checked::Completed(done) => return Ok(done),
            Checked::Failed(reason) => {
                return Err(FileError::PipelineFailed { step: "previously", reason });
            }
        };
        let outcome = {
            let upload_id = id.clone();
            match tokio::task::spawn_blocking(move || check(upload_id, &declared, &data)).await {
                Ok(outcome) => outcome,
                // A panic in the check is the request's: the framework answers it 500.
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            }
        };
        let recorded = match &outcome {
            Ok(completed) => CheckOutcome::Completed(completed.clone()),
            Err(error) => CheckOutcome::Failed(error.to_string()),
        };
        // Recording is idempotent: asked again while the store fails, for as long as the check's
        // lease lasts (after which another request may check the upload again).
        let until = std::time::Instant::now() + CHECK_LEASE;
        let mut pause = std::time::Duration::from_millis(20);
        loop {
            match self.store.finish(&id, recorded.clone(), now_ms()).await {
                Err(FileError::Store(detail)) if std::time::Instant::now() < until => {
                    tracing::warn!(upload_id = %id, %detail, ?pause, "the store failed; asking again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(1));
                }
                finished => break finished?,
            }
        }
        outcome
    }

    /// Processes every record on its own and collects the failures; the same job id answers the
    /// first run's report. With [`Forwarding`], the accepted records go on to analytics first
    /// (calls made with `calls`: the caller's correlation id and deadline); the job is recorded only
    /// once they are there, so a failed forward can be retried with the same job id.
    pub async fn process_batch(
        &self,
        request: ProcessBatch,
        calls: CallOptions,
    ) -> Result<JobReport, FileError> {
        self.disturb().await?;
        if let Some(done) = self.store.job(&request.job_id).await? {
            return Ok(done);
        }
        let total = u32::try_from(request.records.len()).unwrap_or(u32::MAX);
        let mut seen = HashSet::new();
        let mut errors = Vec::new();
        let mut accepted = Vec::new();
        for (index, record) in request.records.iter().enumerate() {
            let mut violations = match record.validate() {
                Ok(()) => Vec::new(),
                Err(errors) => natsrpc::validation::violations(&errors),
            };
            if !seen.insert(record.record_id.as_str()) {
                violations.push(natsrpc::Violation {
                    path: "record_id".into(),
                    code: "duplicate_record_id".into(),
                    message: "the same record id appears earlier in the batch".into(),
                    params: Default::default(),
                });
            }
            if violations.is_empty() {
                accepted.push(record);
            } else {
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                errors.push(RecordError { index, record_id: record.record_id.clone(), violations });
            }
        }
        if let Some(forwarding) = &self.forwarding {
            forwarding.send(&request.job_id, &accepted, &calls).await?;
        }
        let succeeded = total - u32::try_from(errors.len()).unwrap_or(u32::MAX);
        let report =
            JobReport { job_id: request.job_id, phase: JobPhase::Completed, total, succeeded, errors };
        self.store.save_job(report, now_ms()).await
    }

    /// A job's report.
    pub async fn job_status(&self, request: JobStatus) -> Result<JobReport, FileError> {
        self.disturb().await?;
        self.store.job(&request.job_id).await?.ok_or(FileError::JobNotFound(request.job_id))
    }

    async fn disturb(&self) -> Result<(), FileError> {
        self.faults.disturb().await.map_err(|_| FileError::InjectedFault)
    }
}

/// The whole file's SHA-256, then the pipeline.
fn check(upload_id: String, declared: &BeginUpload, data: &[u8]) -> Result<UploadCompleted, FileError> {
    if sha256_hex(data) != declared.sha256 {
        return Err(FileError::FileChecksumMismatch);
    }
    let verdict = pipeline::run(data, declared.declared_type, declared.size_bytes)?;
    Ok(UploadCompleted {
        upload_id,
        size_bytes: data.len() as u64,
        detected_type: verdict.detected,
        rows: verdict.rows,
        steps: pipeline::STEPS.iter().map(|s| s.to_string()).collect(),
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
