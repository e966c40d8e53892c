//! Secured NATS servers, each a private nats-server on a free port configured for one way in: a
//! user and password, a token, an NKey, TLS with a test CA and client certificates. The right
//! configuration connects and serves a call end to end; each wrong one is refused promptly with an
//! error that names the cause and never quotes the secret.

// A failed expectation is how a test fails: panicking on it is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use natsrpc::testing::NatsServer;
use natsrpc::{Client, NatsConfig};
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
    let pki = Pki::make(&dir);
    let other = Pki::make(&dir.join("other"));
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

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("natsrpc-secured-{name}-{}", nuid::next()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A test CA and a server and client certificate it signed (EC P-256, one day), made with the
/// `openssl` command (scripts/test.sh installs it when missing).
struct Pki {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
}

impl Pki {
    fn make(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let openssl = |args: &[&str]| {
            let status = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
            assert!(status.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&status.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=natsrpc test CA"],
            ]
            .concat(),
        );
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            let (key, csr, pem, ext) =
                (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
            std::fs::write(
                dir.join(&ext),
                format!("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n"),
            )
            .unwrap();
            openssl(
                &[&["req"][..], &ec, &["-keyout", &key, "-out", &csr, "-subj", &format!("/CN={name}")]]
                    .concat(),
            );
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "1",
                "-extfile",
                &ext,
            ]);
        }
        let pair = |name: &str| (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        Self { ca: dir.join("ca.pem"), server: pair("server"), client: pair("client") }
    }
}
