//! # fileproc-contracts
//!
//! The file-processing service's contracts: chunked uploads with a validation pipeline, and jobs
//! over many records.
//!
//! Endpoints: `begin_upload`, `upload_chunk`, `complete_upload`, `upload_status`, `process_batch`,
//! `job_status`. Chunk bytes travel as base64 text in JSON and as binary in MessagePack.
//!
//! A crate of their own, as for every service, so that a caller needs the contracts and not the
//! service's domain and store: the shop's order overview asks it about attachments.

use std::sync::LazyLock;

use natsrpc::Violation;
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

/// The service's name on NATS and in the Services API.
pub const SERVICE: &str = "fileproc";
/// The largest chunk accepted: 256 KiB.
pub const MAX_CHUNK_BYTES: usize = 256 * 1024;
/// The largest file accepted: 64 MiB.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

#[allow(clippy::expect_used)] // constant patterns, checked by the tests
fn pattern(source: &str) -> Regex {
    Regex::new(source).expect("a valid constant pattern")
}

/// 64 lowercase hex digits.
pub static SHA256_HEX: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[0-9a-f]{64}$"));
/// `upl_` and 6 to 60 letters, digits, `_` or `-`.
pub static UPLOAD_ID: LazyLock<Regex> = LazyLock::new(|| pattern(r"^upl_[A-Za-z0-9_-]{6,60}$"));
/// A file name without a path: letters, digits, `.`, `_`, `-`, not starting with a dot.
pub static FILE_NAME: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$"));

/// File types the pipeline recognises by their content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileType {
    /// Comma-separated values with a header row.
    Csv,
    /// A JSON document.
    Json,
    /// PNG image.
    Png,
    /// JPEG image.
    Jpeg,
    /// PDF document.
    Pdf,
}

/// Bytes on the wire: base64 in text codecs (JSON), binary in binary ones (MessagePack).
#[derive(Debug, Clone, PartialEq, Eq, Default, JsonSchema)]
#[schemars(with = "String", description = "base64 (standard alphabet, padded) in JSON")]
pub struct Chunk(pub Vec<u8>);

impl Serialize for Chunk {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            use base64::Engine;
            serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Chunk {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Chunk;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("base64 text or bytes")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Chunk, E> {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(text).map(Chunk).map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Chunk, E> {
                Ok(Chunk(bytes.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Chunk, E> {
                Ok(Chunk(bytes))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Visit)
        } else {
            deserializer.deserialize_bytes(Visit)
        }
    }
}

fn chunk_within_limit(chunk: &Chunk) -> Result<(), ValidationError> {
    if chunk.0.is_empty() {
        return Err(ValidationError::new("empty_chunk").with_message("a chunk has at least one byte".into()));
    }
    if chunk.0.len() > MAX_CHUNK_BYTES {
        let mut error = ValidationError::new("chunk_too_large").with_message(
            format!("{} bytes; a chunk is at most {MAX_CHUNK_BYTES} bytes", chunk.0.len()).into(),
        );
        error.add_param("max".into(), &MAX_CHUNK_BYTES);
        return Err(error);
    }
    Ok(())
}

/// Starts an upload of a file whose size and SHA-256 are known up front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct BeginUpload {
    /// The file's name, without a path.
    #[validate(regex(path = *FILE_NAME, code = "file_name_format", message = "letters, digits, ., _ and - only, up to 128"))]
    pub file_name: String,
    /// What the sender says the file is; checked against its content.
    pub declared_type: FileType,
    /// Total size in bytes, 1 to 64 MiB.
    #[validate(range(min = 1, max = 67_108_864u64))]
    pub size_bytes: u64,
    /// SHA-256 of the whole file, lowercase hex.
    #[validate(regex(path = *SHA256_HEX, code = "sha256_format", message = "must be 64 lowercase hex digits"))]
    pub sha256: String,
}

/// What `begin_upload` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UploadStarted {
    /// The upload's id, for its chunks.
    pub upload_id: String,
    /// The largest chunk accepted.
    pub max_chunk_bytes: u64,
}

/// One piece of the file, at its offset. Chunks come in order; sending an acknowledged chunk again
/// (after a lost reply) is acknowledged again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct UploadChunk {
    /// The upload.
    #[validate(regex(path = *UPLOAD_ID, code = "upload_id_format", message = "must be upl_ followed by 6 to 60 letters, digits, _ or -"))]
    pub upload_id: String,
    /// Where the chunk starts in the file.
    pub offset: u64,
    /// The bytes, 1 to 256 KiB.
    #[validate(custom(function = "chunk_within_limit"))]
    pub data: Chunk,
    /// SHA-256 of the chunk, lowercase hex.
    #[validate(regex(path = *SHA256_HEX, code = "sha256_format", message = "must be 64 lowercase hex digits"))]
    pub sha256: String,
}

/// What `upload_chunk` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChunkAccepted {
    /// The upload.
    pub upload_id: String,
    /// Bytes received so far: the offset of the next chunk.
    pub received_bytes: u64,
}

/// Finishes an upload: checks the whole file's SHA-256, then runs the validation pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct CompleteUpload {
    /// The upload.
    #[validate(regex(path = *UPLOAD_ID, code = "upload_id_format", message = "must be upl_ followed by 6 to 60 letters, digits, _ or -"))]
    pub upload_id: String,
}

/// What `complete_upload` answers when every step passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UploadCompleted {
    /// The upload.
    pub upload_id: String,
    /// The file's size.
    pub size_bytes: u64,
    /// The type its content shows.
    pub detected_type: FileType,
    /// Data rows, for CSV files.
    pub rows: Option<u64>,
    /// The steps run, in order.
    pub steps: Vec<String>,
}

/// Where an upload stands: what to resume from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct UploadStatus {
    /// The upload.
    #[validate(regex(path = *UPLOAD_ID, code = "upload_id_format", message = "must be upl_ followed by 6 to 60 letters, digits, _ or -"))]
    pub upload_id: String,
}

/// The states of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadPhase {
    /// Taking chunks.
    Receiving,
    /// Complete: the checksum and the pipeline are running.
    Checking,
    /// Completed and valid.
    Completed,
    /// Completed but refused by the checksum or the pipeline.
    Failed,
}

/// What `upload_status` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UploadState {
    /// The upload.
    pub upload_id: String,
    /// Its state.
    pub phase: UploadPhase,
    /// Bytes acknowledged: resume with a chunk at this offset.
    pub received_bytes: u64,
    /// The file's declared size.
    pub size_bytes: u64,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

/// One record of a job: an item of a catalogue import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct Record {
    /// The record's id, unique within the batch.
    #[validate(length(min = 1, max = 64))]
    pub record_id: String,
    /// The item's SKU.
    #[validate(length(min = 3, max = 32))]
    pub sku: String,
    /// Its name.
    #[validate(length(min = 1, max = 200))]
    pub name: String,
    /// Its price in cents, at least 1.
    #[validate(range(min = 1, max = 10_000_000))]
    pub price_cents: u64,
    /// Units, 0 to 1,000,000.
    #[validate(range(max = 1_000_000))]
    pub quantity: u32,
}

/// A job over 1 to 1,000 records, each validated on its own; failures are collected per record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct ProcessBatch {
    /// The job's id; submitting the same id again answers the first run's result.
    #[validate(length(min = 1, max = 64))]
    pub job_id: String,
    /// The records, validated one by one by the service (not as a whole).
    #[validate(length(min = 1, max = 1000))]
    pub records: Vec<Record>,
}

/// A record that failed, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecordError {
    /// Its position in the batch, from 0.
    pub index: u32,
    /// Its id as sent.
    pub record_id: String,
    /// Every rule it broke (paths relative to the record), or the business reason.
    #[schemars(with = "Vec<serde_json::Value>")]
    pub violations: Vec<Violation>,
}

/// The state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobPhase {
    /// Every record done, failures collected.
    Completed,
}

/// What `process_batch` and `job_status` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobReport {
    /// The job.
    pub job_id: String,
    /// Its state.
    pub phase: JobPhase,
    /// Records in the job.
    pub total: u32,
    /// Records processed successfully.
    pub succeeded: u32,
    /// Records that failed, with why.
    pub errors: Vec<RecordError>,
}

/// Reads a job's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, JsonSchema)]
pub struct JobStatus {
    /// The job.
    #[validate(length(min = 1, max = 64))]
    pub job_id: String,
}

natsrpc::request!(BeginUpload => UploadStarted, service = "fileproc", endpoint = "begin_upload", schema);
natsrpc::request!(UploadChunk => ChunkAccepted, service = "fileproc", endpoint = "upload_chunk", idempotent = true, schema);
natsrpc::request!(CompleteUpload => UploadCompleted, service = "fileproc", endpoint = "complete_upload", idempotent = true, schema);
natsrpc::request!(UploadStatus => UploadState, service = "fileproc", endpoint = "upload_status", idempotent = true, schema);
natsrpc::request!(ProcessBatch => JobReport, service = "fileproc", endpoint = "process_batch", idempotent = true, schema);
natsrpc::request!(JobStatus => JobReport, service = "fileproc", endpoint = "job_status", idempotent = true, schema);
