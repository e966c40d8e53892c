//! The `fileproc` binary over a real (private) nats-server: uploads in both codecs, refuses what
//! exceeds the server's max_payload with a clear error, drains on SIGTERM.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fileproc::contracts::{Chunk, CompleteUpload, FileType, MAX_CHUNK_BYTES, UploadChunk};
use fileproc::domain::sha256_hex;
use fileproc::payloads::Payloads;
use natsrpc::testing::{NatsServer, ServiceProcess, endpoint_names};
use natsrpc::{CallOptions, Client, Codec, RpcError};

#[tokio::test]
async fn the_binary_takes_uploads_in_both_codecs_and_exits_0_on_sigterm() {
    let server = NatsServer::start().unwrap();
    let service = ServiceProcess::spawn(env!("CARGO_BIN_EXE_fileproc"), &server.url(), &[]).unwrap();
    let nats = natsrpc::connect(&server.url()).await.unwrap();
    let info = service.wait_for_info(&nats, "fileproc").await.unwrap();
    assert_eq!(
        endpoint_names(&info),
        ["begin_upload", "complete_upload", "job_status", "process_batch", "upload_chunk", "upload_status"]
    );

    let client = Client::new(nats);
    let file = Payloads::new(9).png_file(700_000);
    for codec in [Codec::Json, Codec::MsgPack] {
        let options = CallOptions::new().codec(codec);
        let started = client.call_with(&file.begin(), options.clone()).await.unwrap();
        for chunk in file.chunks(&started.upload_id, MAX_CHUNK_BYTES) {
            client.call_with(&chunk, options.clone()).await.unwrap();
        }
        let done = client.call_with(&CompleteUpload { upload_id: started.upload_id }, options).await.unwrap();
        assert_eq!((done.detected_type, done.size_bytes), (FileType::Png, 700_000));
    }

    // A request over the server's max_payload (1 MiB) is refused whole, naming the limit.
    let big = vec![7u8; 900 * 1024];
    let request = UploadChunk {
        upload_id: "upl_0123456789".into(),
        offset: 0,
        sha256: sha256_hex(&big),
        data: Chunk(big),
    };
    // Checked, the client refuses the chunk for its size; unchecked, NATS's own limit does.
    let error = client.call(&request).await.unwrap_err();
    assert_eq!(error.code(), Some("validation_failed"), "{error:?}");
    let error = client.call_with(&request, natsrpc::CallOptions::new().unchecked()).await.unwrap_err();
    assert!(matches!(error, RpcError::PayloadTooLarge(_)), "{error:?}");
    assert!(error.to_string().contains("1048576"), "{error}");

    let status = service.terminate().await.unwrap();
    assert!(status.success(), "exit status {status}");
}
