//! Every endpoint through the natsrpc pipeline (in-process harness): uploads that resume, checksums,
//! the validation pipeline's steps, and jobs with per-record errors.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use fileproc::contracts::{
    Chunk, CompleteUpload, FileType, JobStatus, MAX_CHUNK_BYTES, Record, UploadChunk, UploadPhase,
    UploadStatus,
};
use fileproc::domain::{FileProcessor, MemoryStore, sha256_hex};
use fileproc::payloads::{File, Payloads};
use natsrpc::RpcError;
use natsrpc::testing::Harness;

fn api() -> Harness {
    let app = Arc::new(FileProcessor::new(MemoryStore::default(), Arc::new(faults::Faults::none())));
    Harness::new(fileproc::service(app)).unwrap()
}

/// Begins `file` and sends its chunks; answers the upload id.
async fn upload(api: &Harness, file: &File, chunk_bytes: usize) -> String {
    let started = api.call(&file.begin()).await.unwrap();
    assert_eq!(started.max_chunk_bytes, MAX_CHUNK_BYTES as u64);
    for chunk in file.chunks(&started.upload_id, chunk_bytes) {
        api.call(&chunk).await.unwrap();
    }
    started.upload_id
}

#[tokio::test]
async fn an_upload_goes_through_every_step() {
    let api = api();
    let file = Payloads::new(1).csv_file(2_000);
    let upload_id = upload(&api, &file, 8 * 1024).await;
    let done = api.call(&CompleteUpload { upload_id: upload_id.clone() }).await.unwrap();
    assert_eq!(
        (done.detected_type, done.rows, done.size_bytes),
        (FileType::Csv, Some(2_000), file.bytes.len() as u64)
    );
    assert_eq!(done.steps, ["size_limits", "file_type", "content_rules"]);
    let state = api.call(&UploadStatus { upload_id: upload_id.clone() }).await.unwrap();
    assert_eq!((state.phase, state.received_bytes), (UploadPhase::Completed, file.bytes.len() as u64));
    assert_eq!(
        api.call(&CompleteUpload { upload_id }).await.unwrap(),
        done,
        "completing again answers the same"
    );

    let png = Payloads::new(2).png_file(600_000);
    let upload_id = upload(&api, &png, MAX_CHUNK_BYTES).await;
    let done = api.call(&CompleteUpload { upload_id }).await.unwrap();
    assert_eq!(done.detected_type, FileType::Png);
}

#[tokio::test]
async fn an_interrupted_upload_resumes_from_the_last_acknowledged_chunk() {
    let api = api();
    let file = Payloads::new(3).csv_file(1_000);
    let started = api.call(&file.begin()).await.unwrap();
    let chunks = file.chunks(&started.upload_id, 4096);
    for chunk in &chunks[..3] {
        api.call(chunk).await.unwrap();
    }
    // The connection drops; the sender asks where to resume.
    let state = api.call(&UploadStatus { upload_id: started.upload_id.clone() }).await.unwrap();
    assert_eq!((state.phase, state.received_bytes), (UploadPhase::Receiving, chunks[3].offset));
    // A chunk whose acknowledgement was lost is sent again: acknowledged again, not appended twice.
    assert_eq!(api.call(&chunks[2]).await.unwrap().received_bytes, chunks[3].offset);
    // A chunk from the future is refused with the offset to resume from.
    let skipped = api.call(&chunks[5]).await.unwrap_err();
    assert_eq!((skipped.status(), skipped.code()), (Some(409), Some("unexpected_offset")));
    assert!(skipped.to_string().contains(&format!("expected a chunk at offset {}", chunks[3].offset)));
    // Completing early is refused; the rest completes.
    let early = api.call(&CompleteUpload { upload_id: started.upload_id.clone() }).await.unwrap_err();
    assert_eq!(early.code(), Some("upload_incomplete"));
    for chunk in &chunks[3..] {
        api.call(chunk).await.unwrap();
    }
    assert_eq!(api.call(&CompleteUpload { upload_id: started.upload_id }).await.unwrap().rows, Some(1_000));
}

#[tokio::test]
async fn checksums_guard_every_chunk_and_the_whole_file() {
    let api = api();
    let file = Payloads::new(4).csv_file(100);
    let started = api.call(&file.begin()).await.unwrap();
    let mut chunk = file.chunks(&started.upload_id, 1024).remove(0);
    chunk.data.0[0] ^= 1;
    let corrupted = api.call(&chunk).await.unwrap_err();
    assert_eq!((corrupted.status(), corrupted.code()), (Some(422), Some("chunk_checksum_mismatch")));

    // Every chunk matches its own hash, but the file is not the one declared.
    let mut declared = file.begin();
    declared.sha256 = sha256_hex(b"another file");
    let started = api.call(&declared).await.unwrap();
    for chunk in file.chunks(&started.upload_id, 1024) {
        api.call(&chunk).await.unwrap();
    }
    let error = api.call(&CompleteUpload { upload_id: started.upload_id.clone() }).await.unwrap_err();
    assert_eq!(error.code(), Some("file_checksum_mismatch"));
    let state = api.call(&UploadStatus { upload_id: started.upload_id }).await.unwrap();
    assert_eq!(state.phase, UploadPhase::Failed);
    assert!(state.failure.unwrap().contains("SHA-256"));
}

#[tokio::test]
async fn a_failing_step_names_itself_and_the_reason() {
    let api = api();
    let bad_row = Payloads::new(5).csv_with_bad_row(50, 17);
    let upload_id = upload(&api, &bad_row, 1024).await;
    let RpcError::Remote(error) = api.call(&CompleteUpload { upload_id }).await.unwrap_err() else {
        panic!()
    };
    assert_eq!(
        (error.code.as_str(), error.path.as_deref()),
        ("validation_pipeline_failed", Some("content_rules"))
    );
    assert_eq!(error.message, "content_rules: row 17, column quantity: not an integer");

    let mut disguised = Payloads::new(6).png_file(5_000);
    disguised.file_type = FileType::Csv;
    let upload_id = upload(&api, &disguised, 4096).await;
    let RpcError::Remote(error) = api.call(&CompleteUpload { upload_id }).await.unwrap_err() else {
        panic!()
    };
    assert_eq!(error.path.as_deref(), Some("file_type"));
    assert!(error.message.contains("declared Csv but the content is Png"), "{}", error.message);
}

#[tokio::test]
async fn chunks_above_the_maximum_and_bad_declarations_are_refused() {
    let api = api();
    let file = Payloads::new(7).png_file(MAX_CHUNK_BYTES + 1);
    let started = api.call(&file.begin()).await.unwrap();
    let whole = UploadChunk {
        upload_id: started.upload_id,
        offset: 0,
        data: Chunk(file.bytes.clone()),
        sha256: sha256_hex(&file.bytes),
    };
    let RpcError::Validation { violations, .. } = api.call(&whole).await.unwrap_err() else { panic!() };
    assert_eq!((violations[0].path.as_str(), violations[0].code.as_str()), ("data", "chunk_too_large"));
    assert_eq!(violations[0].params["max"], MAX_CHUNK_BYTES);

    let mut declaration = file.begin();
    declaration.file_name = "../etc/passwd".into();
    declaration.size_bytes = 0;
    let RpcError::Validation { violations, .. } = api.call(&declaration).await.unwrap_err() else { panic!() };
    let found: Vec<(&str, &str)> = violations.iter().map(|v| (v.path.as_str(), v.code.as_str())).collect();
    assert_eq!(found, [("file_name", "file_name_format"), ("size_bytes", "range")]);
    let missing = api.call(&UploadStatus { upload_id: "upl_doesnotexist".into() }).await.unwrap_err();
    assert_eq!((missing.status(), missing.code()), (Some(404), Some("upload_not_found")));
}

#[tokio::test]
async fn a_job_collects_per_record_errors_and_answers_the_same_when_asked_again() {
    let api = api();
    let mut job = Payloads::new(8).process_batch(200);
    job.records[10].price_cents = 0;
    job.records[20].name.clear();
    job.records[30] = Record { record_id: job.records[29].record_id.clone(), ..job.records[30].clone() };
    let report = api.call(&job).await.unwrap();
    assert_eq!((report.total, report.succeeded), (200, 197));
    let errors: Vec<(u32, &str, &str)> = report
        .errors
        .iter()
        .map(|e| (e.index, e.violations[0].path.as_str(), e.violations[0].code.as_str()))
        .collect();
    assert_eq!(
        errors,
        [(10, "price_cents", "range"), (20, "name", "length"), (30, "record_id", "duplicate_record_id")]
    );

    assert_eq!(api.call(&JobStatus { job_id: job.job_id.clone() }).await.unwrap(), report);
    job.records.truncate(5);
    assert_eq!(api.call(&job).await.unwrap(), report, "the same job id answers the first run");
    let missing = api.call(&JobStatus { job_id: "nope".into() }).await.unwrap_err();
    assert_eq!(missing.code(), Some("job_not_found"));
}
