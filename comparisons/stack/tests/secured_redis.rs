//! The Redis store on a secured server: a private redis-server on a free port that speaks only TLS
//! (certificates of a test CA) and knows only an ACL user with a password. The right URL and CA
//! connect and keep state; a wrong password, a CA that did not sign the server's certificate and a
//! plain connection are refused, and no error quotes the password.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ecommerce::domain::ShopStore;
use natsrpc::testing::TestCa;
use stack::redis::{RedisPool, RedisShopStore};
use stack::testing::RedisServer;

#[tokio::test]
async fn an_acl_user_over_tls_with_a_private_ca() {
    let dir = std::env::temp_dir().join(format!("natsrpc-secured-redis-{}", nuid::next()));
    let pki = TestCa::make(&dir).unwrap();
    let other = TestCa::make(&dir.join("other")).unwrap();
    let path = |p: &std::path::Path| p.display().to_string();
    let (cert, key, ca) = (path(&pki.server.0), path(&pki.server.1), path(&pki.ca));
    let server = RedisServer::start_with(
        &[
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
            "--user",
            "default",
            "off",
            "--user",
            "shop",
            "on",
            ">c0rrect-h0rse",
            "~*",
            "&*",
            "+@all",
        ],
        true,
    )
    .unwrap();
    let url = |password: &str| server.url().replace("rediss://", &format!("rediss://shop:{password}@"));

    let pool = RedisPool::connect_with(&url("c0rrect-h0rse"), Some(&pki.ca), 1, "secured").await.unwrap();
    let store = RedisShopStore::new(pool.clone());
    store.seed_catalog(3, 10).await.unwrap();
    assert_eq!(
        store.available(&ecommerce::domain::catalog_sku(2)).await.unwrap(),
        Some(10),
        "state kept over TLS"
    );
    assert!(pool.clear().await.unwrap() > 0);

    let error =
        RedisPool::connect_with(&url("wr0ng-battery"), Some(&pki.ca), 1, "secured").await.unwrap_err();
    let said = error.to_string();
    assert!(!said.contains("wr0ng-battery"), "the password is not quoted: {said}");
    assert!(said.to_lowercase().contains("auth") || said.contains("WRONGPASS"), "{said}");

    let error =
        RedisPool::connect_with(&url("c0rrect-h0rse"), Some(&other.ca), 1, "secured").await.unwrap_err();
    assert!(error.to_string().to_lowercase().contains("certificate"), "a CA that did not sign it: {error}");

    let plain = url("c0rrect-h0rse").replace("rediss://", "redis://");
    let refused =
        tokio::time::timeout(std::time::Duration::from_secs(30), RedisPool::connect(&plain, 1, "secured"))
            .await
            .expect("a plain connection to a TLS port is refused, not left hanging");
    assert!(refused.is_err());
    let _ = std::fs::remove_dir_all(dir);
}
