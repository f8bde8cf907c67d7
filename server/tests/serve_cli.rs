//! `gengdi token` and `gengdi serve` as a user runs them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn gengdi(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gengdi"))
        .args(args)
        .env_remove("GENGDI_DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn get(addr: &str, path: &str, token: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

#[test]
fn tokens_are_made_listed_and_revoked_and_serve_honours_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let (ok, out, err) = gengdi(&[
        "token",
        "create",
        "--data-dir",
        d,
        "--role",
        "centre",
        "--name",
        "the centre",
    ]);
    assert!(ok, "{err}");
    let token = out.lines().last().unwrap().to_string();
    assert!(token.starts_with("gd_") && token.len() == 67, "{out}");
    let (ok, _, err) = gengdi(&["token", "create", "--data-dir", d, "--role", "inspector"]);
    assert!(!ok);
    assert!(err.contains("needs --region"), "{err}");
    let (ok, out, _) = gengdi(&[
        "token",
        "create",
        "--data-dir",
        d,
        "--role",
        "inspector",
        "--region",
        "640502",
    ]);
    assert!(ok);
    let inspector = out.lines().last().unwrap().to_string();
    let (ok, out, _) = gengdi(&["token", "list", "--data-dir", d]);
    assert!(ok);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(3).collect())
        .collect();
    assert_eq!(
        rows,
        vec![vec!["1", "centre", "-"], vec!["2", "inspector", "640502"]]
    );
    assert!(!out.contains(&token), "the token itself is never listed");
    assert!(gengdi(&["token", "revoke", "--data-dir", d, "2"]).0);
    assert!(
        !gengdi(&["token", "revoke", "--data-dir", d, "2"]).0,
        "already revoked"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let registry = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/weights");
    let config = dir.path().join("gengdi.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:1\"\ndata_dir = {d:?}\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gengdi"))
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--registry",
            registry.to_str().unwrap(),
        ])
        .env("GENGDI_LISTEN", &addr)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let health = loop {
        if let Some(r) = get(&addr, "/healthz", "") {
            break r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gengdi serve did not answer"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let centre = get(&addr, "/api/v1/farmland", &token).unwrap();
    let revoked = get(&addr, "/api/v1/changes", &inspector).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        centre.starts_with("HTTP/1.1 200") && centre.ends_with(r#"{"items":[]}"#),
        "{centre}"
    );
    assert!(
        revoked.starts_with("HTTP/1.1 401") && revoked.contains("revoked"),
        "{revoked}"
    );
    assert!(
        Path::new(&data).join("import").is_dir(),
        "the default import root is made"
    );
}
