//! A deterministic, seeded generator of files (as upload requests), chunks and record jobs, valid
//! and invalid.

use natsrpc::testing::{Invalid, Sample};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::contracts::{
    BeginUpload, Chunk, CompleteUpload, FileType, JobStatus, ProcessBatch, Record, UploadChunk, UploadStatus,
};
use crate::domain::sha256_hex;

/// A file to upload.
#[derive(Debug, Clone)]
pub struct File {
    /// Its name.
    pub name: String,
    /// What it is.
    pub file_type: FileType,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl File {
    /// The `begin_upload` that declares it.
    pub fn begin(&self) -> BeginUpload {
        BeginUpload {
            file_name: self.name.clone(),
            declared_type: self.file_type,
            size_bytes: self.bytes.len() as u64,
            sha256: sha256_hex(&self.bytes),
        }
    }

    /// Its chunks of at most `chunk_bytes`, in order.
    pub fn chunks(&self, upload_id: &str, chunk_bytes: usize) -> Vec<UploadChunk> {
        let mut offset = 0u64;
        self.bytes
            .chunks(chunk_bytes.max(1))
            .map(|piece| {
                let chunk = UploadChunk {
                    upload_id: upload_id.to_string(),
                    offset,
                    data: Chunk(piece.to_vec()),
                    sha256: sha256_hex(piece),
                };
                offset += piece.len() as u64;
                chunk
            })
            .collect()
    }
}

/// Generates files and jobs from a seed.
#[derive(Debug)]
pub struct Payloads {
    rng: StdRng,
}

impl Payloads {
    /// A generator.
    pub fn new(seed: u64) -> Self {
        Self { rng: StdRng::seed_from_u64(seed) }
    }

    /// A valid CSV of `rows` data rows (about 30 bytes each): `sku,quantity,price,name`.
    pub fn csv_file(&mut self, rows: usize) -> File {
        let mut text = String::from("sku,quantity,price,name\n");
        for i in 0..rows {
            let quantity = self.rng.random_range(1..500);
            let price = f64::from(self.rng.random_range(100..100_000u32)) / 100.0;
            text.push_str(&format!("SKU-{i:05},{quantity},{price},item {i}\n"));
        }
        File { name: format!("catalogue-{rows}.csv"), file_type: FileType::Csv, bytes: text.into_bytes() }
    }

    /// A CSV whose data row `bad_row` (from 1) has text in the quantity column, which holds integers.
    pub fn csv_with_bad_row(&mut self, rows: usize, bad_row: usize) -> File {
        let mut file = self.csv_file(rows);
        let text = String::from_utf8_lossy(&file.bytes).into_owned();
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, line)| {
                if i != bad_row {
                    return line.to_string();
                }
                let mut values: Vec<&str> = line.split(',').collect();
                values[1] = "lots";
                values.join(",")
            })
            .collect();
        file.bytes = (lines.join("\n") + "\n").into_bytes();
        file
    }

    /// A small valid PNG-shaped file.
    pub fn png_file(&mut self, bytes: usize) -> File {
        let mut data = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        data.extend((0..bytes.saturating_sub(data.len())).map(|_| self.rng.random::<u8>()));
        File { name: "image.png".into(), file_type: FileType::Png, bytes: data }
    }

    /// A valid job of `count` records.
    pub fn process_batch(&mut self, count: usize) -> ProcessBatch {
        let records = (0..count)
            .map(|i| Record {
                record_id: format!("rec-{i}"),
                sku: format!("SKU-{:05}", self.rng.random_range(0..1000)),
                name: format!("item {i}"),
                price_cents: self.rng.random_range(1..100_000),
                quantity: self.rng.random_range(0..1000),
            })
            .collect();
        ProcessBatch { job_id: format!("job-{}", self.rng.random::<u32>()), records }
    }

    /// A valid and an invalid request for every endpoint, as JSON.
    pub fn samples(&mut self) -> Vec<Sample> {
        let file = self.csv_file(20);
        let upload_id = "upl_0123456789abcdef";
        let begin = file.begin();
        let chunk = file.chunks(upload_id, 4096).remove(0);
        let bad_begin = BeginUpload { sha256: "not-a-hash".into(), ..begin.clone() };
        let bad_chunk = UploadChunk { data: Chunk(Vec::new()), ..chunk.clone() };
        let batch = self.process_batch(5);
        let bad_batch = ProcessBatch { records: Vec::new(), ..batch.clone() };
        let bad_id = || serde_json::json!({"upload_id": "upload-1"});
        vec![
            Sample::new("begin_upload", &begin, Invalid::new(bad_begin, "sha256", "sha256_format")),
            Sample::new("upload_chunk", &chunk, Invalid::new(bad_chunk, "data", "empty_chunk")),
            Sample::new(
                "complete_upload",
                &CompleteUpload { upload_id: upload_id.into() },
                Invalid::new(bad_id(), "upload_id", "upload_id_format"),
            ),
            Sample::new(
                "upload_status",
                &UploadStatus { upload_id: upload_id.into() },
                Invalid::new(bad_id(), "upload_id", "upload_id_format"),
            ),
            Sample::new("process_batch", &batch, Invalid::new(bad_batch, "records", "length")),
            Sample::new(
                "job_status",
                &JobStatus { job_id: batch.job_id.clone() },
                Invalid::new(serde_json::json!({"job_id": ""}), "job_id", "length"),
            ),
        ]
    }
}
