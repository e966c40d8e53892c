//! The file-processing service's error, and its one mapping to the wire.

use natsrpc::ServiceError;

/// What can go wrong with uploads and jobs.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// No upload with that id (404 `upload_not_found`).
    #[error("no upload {0}")]
    UploadNotFound(String),
    /// A chunk not at the next offset (409 `unexpected_offset`): resume from `expected`.
    #[error("expected a chunk at offset {expected}, got one at {got}")]
    UnexpectedOffset {
        /// Bytes received so far.
        expected: u64,
        /// The chunk's offset.
        got: u64,
    },
    /// A chunk that does not match its SHA-256 (422 `chunk_checksum_mismatch`).
    #[error("the chunk at offset {0} does not match its SHA-256")]
    ChunkChecksumMismatch(u64),
    /// A chunk past the declared size (422 `beyond_declared_size`).
    #[error("the chunk ends at byte {end}, past the declared size of {size}")]
    BeyondDeclaredSize {
        /// Where the chunk ends.
        end: u64,
        /// The declared size.
        size: u64,
    },
    /// Completing before every byte arrived (409 `upload_incomplete`).
    #[error("{received} of {size} bytes received")]
    Incomplete {
        /// Bytes received.
        received: u64,
        /// The declared size.
        size: u64,
    },
    /// The upload is being checked by another request, or is done (409 `upload_not_receiving`).
    #[error("upload {0} no longer takes chunks")]
    NotReceiving(String),
    /// The whole file does not match its SHA-256 (422 `file_checksum_mismatch`).
    #[error("the file does not match the SHA-256 given at the start")]
    FileChecksumMismatch,
    /// A step of the validation pipeline refused the file (422 `validation_pipeline_failed`, with
    /// the step's name as the path).
    #[error("{step}: {reason}")]
    PipelineFailed {
        /// The step.
        step: &'static str,
        /// Why.
        reason: String,
    },
    /// A file larger than the service takes (413 `file_too_large`).
    #[error("a file of {size} bytes is larger than the {max} bytes this service takes")]
    FileTooLarge {
        /// The declared size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// As many uploads are open as the service holds at once (503 `too_many_uploads`): finish one,
    /// or try again later.
    #[error("{0} uploads are open already; try again later")]
    TooManyUploads(u64),
    /// The open uploads declare as many bytes as the service holds (503 `upload_storage_full`).
    #[error("the open uploads hold {0} bytes already; try again later")]
    StorageFull(u64),
    /// No job with that id (404 `job_not_found`).
    #[error("no job {0}")]
    JobNotFound(String),
    /// Sending the job's records on to analytics failed (the part's error: 502, 503 or 504, naming
    /// the chunk); running the job again is safe.
    #[error("{0}")]
    Forward(natsrpc::ServiceError),
    /// An injected internal failure (500).
    #[error("injected internal error")]
    InjectedFault,
    /// The state store failed (500).
    #[error("store: {0}")]
    Store(String),
}

impl From<FileError> for ServiceError {
    fn from(error: FileError) -> Self {
        let message = error.to_string();
        match error {
            FileError::UploadNotFound(_) => ServiceError::not_found("upload_not_found", message),
            FileError::UnexpectedOffset { .. } => ServiceError::conflict("unexpected_offset", message),
            FileError::ChunkChecksumMismatch(_) => {
                ServiceError::unprocessable("chunk_checksum_mismatch", message).with_path("sha256")
            }
            FileError::BeyondDeclaredSize { .. } => {
                ServiceError::unprocessable("beyond_declared_size", message)
            }
            FileError::Incomplete { .. } => ServiceError::conflict("upload_incomplete", message),
            FileError::NotReceiving(_) => ServiceError::conflict("upload_not_receiving", message),
            FileError::FileChecksumMismatch => ServiceError::unprocessable("file_checksum_mismatch", message),
            FileError::PipelineFailed { step, .. } => {
                ServiceError::unprocessable("validation_pipeline_failed", message).with_path(step)
            }
            FileError::FileTooLarge { .. } => ServiceError {
                code: "file_too_large".into(),
                ..ServiceError::new(413, natsrpc::ErrorKind::PayloadTooLarge, message)
            }
            .with_path("size_bytes"),
            FileError::TooManyUploads(_) => ServiceError::business(503, "too_many_uploads", message),
            FileError::StorageFull(_) => ServiceError::business(503, "upload_storage_full", message),
            FileError::JobNotFound(_) => ServiceError::not_found("job_not_found", message),
            FileError::Forward(error) => error,
            FileError::InjectedFault => ServiceError::internal("internal error"),
            FileError::Store(detail) => {
                // The detail stays in the log; callers learn only that the service failed.
                tracing::error!(%detail, "store failure");
                ServiceError::internal("internal error")
            }
        }
    }
}
