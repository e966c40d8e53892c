//! The file-processing service on natsrpc: each endpoint hands its validated request to the
//! [`FileProcessor`].

use std::sync::Arc;

use natsrpc::{CallOptions, EndpointOptions, RequestContext, Service, ServiceBuilder, State};

use crate::contracts::{
    BeginUpload, ChunkAccepted, CompleteUpload, JobReport, JobStatus, MAX_CHUNK_BYTES, ProcessBatch, SERVICE,
    UploadChunk, UploadCompleted, UploadStarted, UploadState, UploadStatus,
};
use crate::domain::{FileProcessor, FileStore};
use crate::error::FileError;

/// The service's endpoints over `processor`, ready to start (or to test with `natsrpc::testing::Harness`).
/// Requests may carry a whole chunk (base64 in JSON): up to 512 KiB is accepted.
pub fn service<S: FileStore>(processor: Arc<FileProcessor<S>>) -> ServiceBuilder<Arc<FileProcessor<S>>> {
    Service::builder(SERVICE, env!("CARGO_PKG_VERSION"))
        .description("Chunked uploads with a validation pipeline, and record jobs")
        .max_payload(2 * MAX_CHUNK_BYTES)
        .state(processor)
        .endpoint(begin_upload::<S>)
        .endpoint(upload_chunk::<S>)
        .endpoint(complete_upload::<S>)
        .endpoint_with(upload_status::<S>, read_only())
        .endpoint(process_batch::<S>)
        .endpoint_with(job_status::<S>, read_only())
}

/// Status reads change nothing: a caller's deadline stops them (where a change runs to its end).
fn read_only() -> EndpointOptions {
    EndpointOptions::new().cancel_at_deadline()
}

type App<S> = State<Arc<FileProcessor<S>>>;

async fn begin_upload<S: FileStore>(
    State(app): App<S>,
    req: BeginUpload,
) -> Result<UploadStarted, FileError> {
    app.begin_upload(req).await
}

async fn upload_chunk<S: FileStore>(
    State(app): App<S>,
    req: UploadChunk,
) -> Result<ChunkAccepted, FileError> {
    app.upload_chunk(req).await
}

async fn complete_upload<S: FileStore>(
    State(app): App<S>,
    req: CompleteUpload,
) -> Result<UploadCompleted, FileError> {
    app.complete_upload(req).await
}

async fn upload_status<S: FileStore>(
    State(app): App<S>,
    req: UploadStatus,
) -> Result<UploadState, FileError> {
    app.upload_status(req).await
}

async fn process_batch<S: FileStore>(
    State(app): App<S>,
    ctx: RequestContext,
    req: ProcessBatch,
) -> Result<JobReport, FileError> {
    app.process_batch(req, CallOptions::new().within(&ctx)).await
}

async fn job_status<S: FileStore>(State(app): App<S>, req: JobStatus) -> Result<JobReport, FileError> {
    app.job_status(req).await
}
