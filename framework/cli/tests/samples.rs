//! No false refusal: every checked-in valid sample passes the JSON Schema its contract serves
//! (as schemars writes it, which `natsrpc call` checks against before sending).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use natsrpc_cli::schema::check;

macro_rules! samples {
    ($($file:literal => $contract:ty),* $(,)?) => {
        vec![$(($file, schemars::schema_for!($contract).as_value().clone())),*]
    };
}

#[test]
fn every_valid_sample_passes_its_contracts_schema() {
    let samples = samples![
        "ecommerce/create_order" => ecommerce_contracts::CreateOrder,
        "ecommerce/get_order" => ecommerce_contracts::GetOrder,
        "ecommerce/cancel_order" => ecommerce_contracts::CancelOrder,
        "ecommerce/reserve_inventory" => ecommerce_contracts::ReserveInventory,
        "ecommerce/restock" => ecommerce_contracts::Restock,
        "ecommerce/get_stock" => ecommerce_contracts::GetStock,
        "analytics/ingest_event" => analytics_contracts::IngestEvent,
        "analytics/ingest_batch" => analytics_contracts::IngestBatch,
        "analytics/query_aggregates" => analytics_contracts::QueryAggregates,
        "analytics/query_timeseries" => analytics_contracts::QueryTimeseries,
        "analytics/top_n" => analytics_contracts::TopN,
        "analytics/user_activity" => analytics_contracts::UserActivity,
        "fileproc/begin_upload" => fileproc_contracts::BeginUpload,
        "fileproc/upload_chunk" => fileproc_contracts::UploadChunk,
        "fileproc/complete_upload" => fileproc_contracts::CompleteUpload,
        "fileproc/upload_status" => fileproc_contracts::UploadStatus,
        "fileproc/process_batch" => fileproc_contracts::ProcessBatch,
        "fileproc/job_status" => fileproc_contracts::JobStatus,
    ];
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/test-payloads");
    for (sample, schema) in samples {
        let text = std::fs::read_to_string(data.join(format!("{sample}.valid.json"))).unwrap();
        let request: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(check(&schema, &request), [], "{sample}");
    }
}
