//! Secured NATS servers, each a private nats-server on a free port configured for one way in: a
//! user and password, a token, an NKey, TLS with a test CA and client certificates. The right
//! configuration connects and serves a call end to end; each wrong one is refused promptly with an
//! error that names the cause and never quotes the secret.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use natsrpc::testing::{NatsServer, TestCa};
use natsrpc::{CallOptions, Client, NatsConfig};
use support::{shop, valid_order};

/// A configuration from `vars` alone (not the process's environment), pointed at `server`.
fn config(server: &NatsServer, scheme: &str, vars: &[(&str, String)]) -> NatsConfig {
    let url = server.url().replace("nats://", &format!("{scheme}://"));
    NatsConfig::from_lookup(|name| match name {
        "NATS_URL" => Some(url.clone()),
        _ => vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()),
    })
    .unwrap()
    .with_name("vault")
}

/// Connects the service and a client with `config`, and places an order through the server.
async fn serves(config: &NatsConfig) {
    let nats = config.connect().await.unwrap();
    let service = shop("a").start(&nats).await.unwrap();
    let caller = Client::new(config.connect().await.unwrap());
    assert_eq!(caller.call(&valid_order()).await.unwrap().total_cents, 3499);
    service.stop(Duration::from_secs(5)).await.unwrap();
}

/// The error a refused configuration gets, within a generous bound (a refusal must not hang or
/// retry without end).
async fn refused(config: &NatsConfig) -> String {
    let attempt = tokio::time::timeout(Duration::from_secs(30), config.connect()).await;
    let outcome = attempt.expect("a refused connection is reported, not retried without end");
    outcome.map(|_| ()).expect_err("the server let it in").to_string()
}

#[tokio::test]
async fn user_and_password() {
    let server = NatsServer::start_with_config(
        "authorization { users = [ { user: orders, password: \"c0rrect-h0rse\" } ] }",
    )
    .unwrap();
    let user = |password: &str| {
        config(&server, "nats", &[("NATS_USER", "orders".into()), ("NATS_PASSWORD", password.into())])
    };
    serves(&user("c0rrect-h0rse")).await;
    let error = refused(&user("wr0ng-battery")).await;
    assert!(error.contains("refused the credentials (NATS_USER/NATS_PASSWORD)"), "{error}");
    assert!(!error.contains("wr0ng-battery"), "the password is not quoted: {error}");
    let error = refused(&config(&server, "nats", &[])).await;
    assert!(error.contains("refused the credentials (no credentials)"), "{error}");
}

#[tokio::test]
async fn token() {
    let server = NatsServer::start_with_config("authorization { token: \"t0k3n-of-trust\" }").unwrap();
    serves(&config(&server, "nats", &[("NATS_TOKEN", "t0k3n-of-trust".into())])).await;
    let error = refused(&config(&server, "nats", &[("NATS_TOKEN", "guess".into())])).await;
    assert!(error.contains("refused the credentials (NATS_TOKEN)") && !error.contains("guess"), "{error}");
}

#[tokio::test]
async fn nkey() {
    let user = nkeys::KeyPair::new_user();
    let stranger = nkeys::KeyPair::new_user();
    let server = NatsServer::start_with_config(&format!(
        "authorization {{ users = [ {{ nkey: {} }} ] }}",
        user.public_key()
    ))
    .unwrap();
    let dir = scratch("nkey");
    let seed_of = |pair: &nkeys::KeyPair, name: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{}\n", pair.seed().unwrap())).unwrap();
        path
    };
    let with_seed = |path: &Path| config(&server, "nats", &[("NATS_NKEY", path.display().to_string())]);
    serves(&with_seed(&seed_of(&user, "user.nk"))).await;
    let error = refused(&with_seed(&seed_of(&stranger, "stranger.nk"))).await;
    assert!(error.contains("refused the credentials (NATS_NKEY)"), "{error}");
    assert!(!error.contains(&stranger.seed().unwrap()), "the seed is not quoted: {error}");
    std::fs::write(dir.join("not-a-seed"), "hello").unwrap();
    let error = refused(&with_seed(&dir.join("not-a-seed"))).await;
    assert!(error.contains("does not hold an NKey seed"), "{error}");
    let error = refused(&with_seed(&dir.join("missing"))).await;
    assert!(error.contains("NATS_NKEY: cannot read"), "{error}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn tls_with_a_private_ca_and_client_certificates() {
    let dir = scratch("tls");
    let pki = TestCa::make(&dir).unwrap();
    let other = TestCa::make(&dir.join("other")).unwrap();
    let server = NatsServer::start_with_config(&format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true, timeout: 2 }}",
        pki.server.0.display(),
        pki.server.1.display(),
        pki.ca.display()
    ))
    .unwrap();
    let path = |p: &Path| p.display().to_string();
    let mutual = |ca: &Path, client: &(PathBuf, PathBuf)| {
        vec![("NATS_CA", path(ca)), ("NATS_CERT", path(&client.0)), ("NATS_KEY", path(&client.1))]
    };
    serves(&config(&server, "tls", &mutual(&pki.ca, &pki.client))).await;
    serves(&config(&server, "nats", &mutual(&pki.ca, &pki.client))).await;

    let error = refused(&config(&server, "tls", &[("NATS_CA", path(&pki.ca))])).await;
    assert!(error.contains("TLS failed"), "without a client certificate: {error}");
    let error = refused(&config(&server, "tls", &mutual(&other.ca, &pki.client))).await;
    assert!(error.contains("TLS failed"), "a CA that did not sign the server's certificate: {error}");
    let error = refused(&config(&server, "tls", &mutual(&pki.ca, &other.client))).await;
    assert!(error.contains("TLS failed"), "a client certificate the server's CA did not sign: {error}");
    let error = refused(&config(&server, "nats", &[])).await;
    assert!(error.contains("TLS failed"), "plain, trusting only the system's CAs: {error}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn creds_of_an_operator_account_and_user() {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // A user the account has revoked: every JWT of it issued before now is refused.
    let revoked = nkeys::KeyPair::new_user();
    let operator_jwt =
        jwt(&operator, &operator.public_key(), serde_json::json!({"type": "operator", "version": 2}), None);
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        serde_json::json!({
            "type": "account", "version": 2,
            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                       "wildcards": true, "conn": -1, "leaf": -1},
            "default_permissions": {"pub": {}, "sub": {}},
            "revocations": {revoked.public_key(): now}
        }),
        None,
    );
    // The test server runs JetStream, which in operator mode wants a system account.
    let system = nkeys::KeyPair::new_account();
    let system_jwt =
        jwt(&operator, &system.public_key(), serde_json::json!({"type": "account", "version": 2}), None);
    let server = NatsServer::start_with_config(&format!(
        "operator: {operator_jwt}\nsystem_account: {0}\nresolver: MEMORY\nresolver_preload: {{ {0}: {system_jwt}, {1}: {account_jwt} }}\n",
        system.public_key(),
        account.public_key()
    ))
    .unwrap();
    let dir = scratch("creds");
    let creds_of = |user: &nkeys::KeyPair, name: &str, expires: Option<i64>| {
        let claims = serde_json::json!({"type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1});
        let path = dir.join(name);
        std::fs::write(
            &path,
            creds_file(&jwt(&account, &user.public_key(), claims, expires), &user.seed().unwrap()),
        )
        .unwrap();
        config(&server, "nats", &[("NATS_CREDS", path.display().to_string())])
    };
    let creds = |name: &str, expires: Option<i64>| creds_of(&nkeys::KeyPair::new_user(), name, expires);
    serves(&creds("user.creds", None)).await;
    let error = refused(&creds("expired.creds", Some(now - 60))).await;
    assert!(error.contains("refused the credentials (NATS_CREDS)"), "{error}");
    let error = refused(&creds_of(&revoked, "revoked.creds", None)).await;
    assert!(error.contains("refused the credentials (NATS_CREDS)"), "revoked: {error}");
    // Signed by an account the operator never issued.
    let stranger = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let claims = serde_json::json!({"type": "user", "version": 2, "pub": {}, "sub": {}});
    std::fs::write(
        dir.join("stranger.creds"),
        creds_file(&jwt(&stranger, &user.public_key(), claims, None), &user.seed().unwrap()),
    )
    .unwrap();
    let error = refused(&config(
        &server,
        "nats",
        &[("NATS_CREDS", dir.join("stranger.creds").display().to_string())],
    ))
    .await;
    assert!(error.contains("refused the credentials (NATS_CREDS)"), "{error}");
    let error =
        refused(&config(&server, "nats", &[("NATS_CREDS", dir.join("missing.creds").display().to_string())]))
            .await;
    assert!(error.contains("NATS_CREDS: cannot read"), "{error}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A NATS JWT (`ed25519-nkey`) for `subject`, signed by `issuer`, with `nats` claims.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, nats: serde_json::Value, expires: Option<i64>) -> String {
    use base64::Engine;
    let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut claims = serde_json::json!({
        "jti": nuid::next().to_string(),
        "iat": time::OffsetDateTime::now_utc().unix_timestamp() - 5,
        "iss": issuer.public_key(),
        "name": subject.get(..8).unwrap_or(subject),
        "sub": subject,
        "nats": nats,
    });
    if let Some(expires) = expires {
        claims["exp"] = expires.into();
    }
    let head = encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = encode(claims.to_string().as_bytes());
    let signature = issuer.sign(format!("{head}.{body}").as_bytes()).unwrap();
    format!("{head}.{body}.{}", encode(&signature))
}

/// A `.creds` file as `nsc` writes it.
fn creds_file(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("natsrpc-secured-{name}-{}", nuid::next()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Users whose permissions leave something out: the refusal is an error that names the subject,
/// at the service's start and at the call, never a service that silently hears nothing or a call
/// that only times out.
#[tokio::test]
async fn permissions_left_out_are_named_at_start_and_at_the_call() {
    let server = NatsServer::start_with_config(
        r#"authorization { users = [
            { user: shop, password: pw, permissions: {
                subscribe: ["shop.>", "$SRV.>"], allow_responses: true } }
            { user: half, password: pw, permissions: {
                subscribe: ["shop.place_order", "$SRV.*"], allow_responses: true } }
            { user: buyer, password: pw, permissions: {
                publish: ["shop.place_order"], subscribe: ["_INBOX.>"] } }
            { user: browser, password: pw, permissions: {
                publish: ["shop.sleep"], subscribe: ["_INBOX.>"] } }
            { user: deaf, password: pw, permissions: {
                publish: ["shop.place_order"], subscribe: ["elsewhere.>"] } }
        ] }"#,
    )
    .unwrap();
    let as_user =
        |user: &str| config(&server, "nats", &[("NATS_USER", user.into()), ("NATS_PASSWORD", "pw".into())]);

    // A service whose user may not subscribe to its subjects (`shop.>`, and the Services API's
    // `$SRV.*`, `$SRV.*.shop`, `$SRV.*.shop.*`) does not start, and says which.
    let half = as_user("half").connect().await.unwrap();
    let error = shop("half").start(&half).await.map(|_| ()).unwrap_err();
    let natsrpc::RpcError::PermissionDenied(denied) = &error else { panic!("{error:?}") };
    let subjects: Vec<&str> = denied.iter().map(|d| d.subject.as_str()).collect();
    assert!(subjects.contains(&"shop.>") && subjects.contains(&"$SRV.*.shop"), "{subjects:?}");
    assert!(!subjects.contains(&"$SRV.*"), "granted subjects are not listed: {subjects:?}");
    assert!(
        error.to_string().starts_with("permission denied by the NATS server: subscribe to `shop.>`"),
        "{error}"
    );

    let nats = as_user("shop").connect().await.unwrap();
    let service = shop("a").start(&nats).await.unwrap();
    let call = CallOptions::new().timeout(Duration::from_millis(500));

    let buyer_nats = as_user("buyer").connect().await.unwrap();
    let buyer = Client::new(buyer_nats.clone());
    assert_eq!(buyer.call(&valid_order()).await.unwrap().total_cents, 3499);
    let error = buyer.call_with(&support::Pad { bytes: 1 }, call.clone()).await.unwrap_err();
    assert!(matches!(&error, natsrpc::RpcError::PermissionDenied(d) if d.len() == 1), "{error:?}");
    assert_eq!(error.to_string(), "permission denied by the NATS server: publish to `shop.pad`");

    // A caller who may send but not hear replies learns that, not just that nothing came.
    let deaf = Client::new(as_user("deaf").connect().await.unwrap());
    for pause in [0, 1_500] {
        // The inbox is subscribed once per connection, and refused once: every call is told, a
        // later one too.
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let error = deaf.call_with(&valid_order(), call.clone()).await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains("permission denied") && text.contains("subscribe to `_INBOX."), "{text}");
    }

    // A timeout with nothing refused stays a timeout.
    let browser = Client::new(as_user("browser").connect().await.unwrap());
    let slow = support::Sleep { millis: 2_000 };
    let error = browser.call_with(&slow, call).await.unwrap_err();
    assert!(matches!(error, natsrpc::RpcError::Timeout { .. }), "{error:?}");
    let denied = natsrpc::permission_denials(&buyer_nats);
    assert_eq!(denied.iter().map(|d| d.subject.as_str()).collect::<Vec<_>>(), ["shop.pad"]);
    service.stop(Duration::from_secs(5)).await.unwrap();
}
