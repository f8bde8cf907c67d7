//! TLS to PostgreSQL, as libpq's `sslmode` and `sslrootcert` say, against a real PostgreSQL 15
//! server speaking TLS with a certificate for `localhost` signed by a CA of its own (started
//! by `scripts/pg-test-server.sh` with `GENGDI_PG_TLS=1`, in a temporary directory).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use gengdi_service::store::PgStore;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-test-server.sh")
}

struct Server {
    dir: tempfile::TempDir,
    url: String,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::Builder::new()
            .prefix("gengdi-pg-tls-")
            .tempdir()
            .unwrap();
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path().join("pg"))
            .env("GENGDI_PG_TLS", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot start PostgreSQL (run scripts/install-deps.sh): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Server { dir, url }
    }

    fn cert(&self, name: &str) -> PathBuf {
        self.dir.path().join("pg/tls").join(name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path().join("pg"))
            .status();
    }
}

/// Whether the store's connections are encrypted, as the server sees them.
async fn encrypted(store: &PgStore) -> bool {
    let check = "DO $$ BEGIN
                   IF NOT (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) THEN
                     RAISE EXCEPTION 'in plain text';
                   END IF;
                 END $$";
    match store.execute_raw(check.into()).await {
        Ok(_) => true,
        Err(e) if e.to_string().contains("in plain text") => false,
        Err(e) => panic!("{e}"),
    }
}

fn with(url: &str, mode: &str, root: Option<&Path>) -> String {
    let mut u = format!("{url}?sslmode={mode}");
    if let Some(r) = root {
        u.push_str(&format!("&sslrootcert={}", r.display()));
    }
    u
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_connects_over_tls_as_sslmode_and_sslrootcert_say() {
    let server = Server::start();
    let by_ip = server.url.clone();
    let by_name = by_ip.replace("127.0.0.1", "localhost");
    let (ca, other) = (server.cert("ca.pem"), server.cert("other-ca.pem"));
    let connect = |url: String| async move { PgStore::connect(&url).await };

    // The default (prefer) and require: encrypted, the certificate unchecked; disable: not.
    assert!(encrypted(&connect(by_ip.clone()).await.unwrap()).await);
    assert!(encrypted(&connect(with(&by_ip, "require", None)).await.unwrap()).await);
    assert!(!encrypted(&connect(with(&by_ip, "disable", None)).await.unwrap()).await);

    // verify-full: signed by the CA and issued for the name connected to.
    let full = connect(with(&by_name, "verify-full", Some(&ca)))
        .await
        .unwrap();
    assert!(encrypted(&full).await);
    // Not for 127.0.0.1 (the certificate names only localhost); verify-ca does not look.
    let e = connect(with(&by_ip, "verify-full", Some(&ca)))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not valid for name"), "{e}");
    let ca_only = connect(with(&by_ip, "verify-ca", Some(&ca))).await.unwrap();
    assert!(encrypted(&ca_only).await);

    // A CA that did not sign it is refused, in every mode that checks, require included.
    for mode in ["verify-ca", "verify-full", "require"] {
        let e = connect(with(&by_name, mode, Some(&other)))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("UnknownIssuer"), "{mode}: {e}");
    }

    // Settings that cannot work are named.
    let e = connect(with(&by_ip, "verify", None))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("sslmode \"verify\""), "{e}");
    let missing = server.cert("missing.pem");
    let e = connect(with(&by_ip, "verify-ca", Some(&missing)))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");
}
