//! `http-redis` on a private Redis that wants a password, given in `REDIS_URL`: it serves, and
//! nothing it prints, at the most talkative log level, quotes the password; with a wrong one it
//! exits at once, saying why, still without the password it was given.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stack::testing::{RedisServer, free_port, restock_until_ok};

const PASSWORD: &str = "c0rrect-h0rse";

/// Starts the binary on `redis_url`, its output in a file of its own.
fn start(redis_url: &str, address: &str, log: &std::path::Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_http-redis"))
        .env("STORE", "redis")
        .env("REDIS_URL", redis_url)
        .env("REDIS_PREFIX", format!("natsrpc-test:{}", nuid::next()))
        .env("HTTP_ADDR", address)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn the_redis_password_is_in_no_line_it_prints() {
    let server = RedisServer::start_with(&["--requirepass", PASSWORD], false).unwrap();
    let with = |password: &str| server.url().replace("redis://", &format!("redis://:{password}@"));
    let log = std::env::temp_dir().join(format!("natsrpc-http-redis-{}.log", nuid::next()));
    let address = format!("127.0.0.1:{}", free_port().unwrap());
    let mut serving = start(&with(PASSWORD), &address, &log);

    // It serves, state in the password-protected Redis.
    restock_until_ok(&format!("http://{address}"), Duration::from_secs(20)).await.unwrap();
    let _ = Command::new("kill").arg("-TERM").arg(serving.id().to_string()).status();
    assert!(serving.wait().unwrap().success());
    let printed = std::fs::read_to_string(&log).unwrap();
    assert!(printed.contains("state in redis") && printed.contains(":***@"), "{printed}");
    assert!(!printed.contains(PASSWORD), "the password is printed: {printed}");

    let address = format!("127.0.0.1:{}", free_port().unwrap());
    let mut refused = start(&with("wr0ng-battery"), &address, &log);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = refused.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "a refused binary keeps trying instead of exiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success());
    let printed = std::fs::read_to_string(&log).unwrap();
    assert!(printed.to_lowercase().contains("auth"), "it says why: {printed}");
    assert!(!printed.contains("wr0ng-battery"), "the password is printed: {printed}");
    let _ = std::fs::remove_file(log);
}
