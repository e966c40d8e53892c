//! A throwaway certificate authority for tests of TLS against private servers.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A test CA in `dir` and a server and a client certificate it signed (EC P-256, valid one day,
/// the server's for `127.0.0.1` and `localhost`), made with the `openssl` command
/// (`scripts/test.sh` installs it when missing). Each pair is (certificate, key), PEM.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub server: (PathBuf, PathBuf),
    /// A client certificate and key, for mutual TLS.
    pub client: (PathBuf, PathBuf),
}

impl TestCa {
    /// Makes the CA and both certificates in `dir` (created if missing).
    pub fn make(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let openssl = |args: &[&str]| -> std::io::Result<()> {
            let output = Command::new("openssl").args(args).current_dir(dir).output()?;
            if output.status.success() {
                Ok(())
            } else {
                Err(std::io::Error::other(format!(
                    "openssl {}: {}",
                    args.first().copied().unwrap_or_default(),
                    String::from_utf8_lossy(&output.stderr).trim()
                )))
            }
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let ca_args = ["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=natsrpc test CA"];
        openssl(&[&["req", "-x509"][..], &ec, &ca_args].concat())?;
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            let (key, csr, pem, ext) =
                (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
            std::fs::write(
                dir.join(&ext),
                format!(
                    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n"
                ),
            )?;
            let subject = format!("/CN={name}");
            openssl(&[&["req"][..], &ec, &["-keyout", &key, "-out", &csr, "-subj", &subject]].concat())?;
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
            ])?;
        }
        let pair = |name: &str| (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        Ok(Self { ca: dir.join("ca.pem"), server: pair("server"), client: pair("client") })
    }
}
