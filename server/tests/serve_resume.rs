//! A job survives its server: `kill -9` of `gengdi serve` in the middle of an analysis, then a
//! restart on the same data dir, resumes the job from its finished tiles; SIGTERM stops the
//! server cleanly and the next start resumes the same way. Either way the change list equals
//! an uninterrupted run's: no patch lost, none stored twice. Real processes, a real port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gengdi_fixtures::season::{generate_season, SeasonSpec};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One HTTP/1.1 request with `Connection: close`: the status and the JSON body (`None` when
/// nothing listens).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Option<(u16, Value)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).ok()?
    };
    Some((status, value))
}

/// A free port on the loopback interface.
fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A data dir with an import root holding the demo season, a settings file (32 px tiles, so
/// that the analysis has tiles to be interrupted between) and an admin token.
struct Site {
    dir: PathBuf,
    token: String,
}

impl Site {
    fn new(dir: &Path, season: &Path) -> Site {
        // A copy: the import root refuses links that lead out of it.
        let import = dir.join("import/season");
        std::fs::create_dir_all(&import).unwrap();
        for entry in std::fs::read_dir(season).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, import.join(path.file_name().unwrap())).unwrap();
            }
        }
        std::fs::write(dir.join("gengdi.toml"), "tile = 32\n").unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_gengdi"))
            .args(["token", "create", "--role", "admin", "--data-dir"])
            .arg(dir.join("data"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .to_string();
        Site {
            dir: dir.to_path_buf(),
            token,
        }
    }

    /// Start `gengdi serve` on this site; returns once it answers.
    fn serve(&self, log: &str) -> (Child, String) {
        let addr = free_addr();
        let child = Command::new(env!("CARGO_BIN_EXE_gengdi"))
            .arg("serve")
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--import-root")
            .arg(self.dir.join("import"))
            .arg("--config")
            .arg(self.dir.join("gengdi.toml"))
            .args(["--listen", &addr])
            .arg("--registry")
            .arg(root().join("models/weights"))
            .env_remove("GENGDI_DATA_DIR")
            .env(
                "RUST_LOG",
                "warn,gengdi=info,gengdi_inference=info,gengdi_service=info",
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join(log)).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while http(&addr, "GET", "/healthz", "", None).is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "serve did not start: {}",
                self.log(log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        (child, addr)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn call(&self, addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        http(addr, method, path, &self.token, body).unwrap()
    }

    /// Register the season's farmland and submit its batch; the batch id.
    fn submit(&self, addr: &str, scenes: &[String]) -> i64 {
        let (status, f) = self.call(
            addr,
            "POST",
            "/api/v1/farmland",
            Some(&json!({"path": "season/farmland.gpkg"})),
        );
        assert_eq!(status, 201, "{f}");
        let (status, b) = self.call(
            addr,
            "POST",
            "/api/v1/batches",
            Some(&json!({"scenes": scenes, "farmland": f["id"]})),
        );
        assert_eq!(status, 202, "{b}");
        b["id"].as_i64().unwrap()
    }

    fn batch(&self, addr: &str, id: i64) -> Value {
        let (status, b) = self.call(addr, "GET", &format!("/api/v1/batches/{id}"), None);
        assert_eq!(status, 200, "{b}");
        b
    }

    /// Wait until the batch has finished at least `min` of its tiles, and not all.
    fn wait_mid_run(&self, addr: &str, id: i64, min: u64) -> u64 {
        let started = Instant::now();
        loop {
            let b = self.batch(addr, id);
            let done = b["progress"]["tiles_done"].as_u64().unwrap();
            let total = b["progress"]["tiles_total"].as_u64().unwrap();
            assert_ne!(
                b["status"], "done",
                "the batch ended before it could be interrupted: {b}"
            );
            if b["status"] == "running" && done >= min && total > 0 {
                assert!(done + 10 < total, "too few tiles left to interrupt: {b}");
                return done;
            }
            assert!(started.elapsed() < Duration::from_secs(300), "{b}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_done(&self, addr: &str, id: i64) -> Value {
        let started = Instant::now();
        loop {
            let b = self.batch(addr, id);
            match b["status"].as_str().unwrap() {
                "done" => return b,
                "queued" | "running" => {}
                other => panic!("batch {other}: {b}"),
            }
            assert!(started.elapsed() < Duration::from_secs(600), "{b}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The batch's patches: (reference, kind, area in mu, geometry), sorted.
    fn changes(&self, addr: &str, id: i64) -> Vec<(String, String, String, String)> {
        let (status, page) = self.call(
            addr,
            "GET",
            &format!("/api/v1/changes?batch={id}&limit=1000"),
            None,
        );
        assert_eq!(status, 200, "{page}");
        assert!(page["next_cursor"].is_null(), "one page holds them");
        let items = page["items"].as_array().unwrap();
        assert_eq!(page["total"], json!(items.len()));
        let mut out: Vec<_> = items
            .iter()
            .map(|p| {
                let (status, one) =
                    self.call(addr, "GET", &format!("/api/v1/changes/{}", p["id"]), None);
                assert_eq!(status, 200);
                (
                    p["reference"].as_str().unwrap().to_string(),
                    p["kind"].as_str().unwrap().to_string(),
                    p["area_mu"].to_string(),
                    one["geometry"].to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }

    fn tile_files(&self, id: i64) -> usize {
        std::fs::read_dir(self.dir.join(format!("data/jobs/{id}/tiles")))
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".bin")
                })
                .count()
            })
            .unwrap_or(0)
    }
}

fn stop(child: &mut Child, signal: &str) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "serve did not stop on {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_job_interrupted_by_kill_9_or_sigterm_resumes_from_its_tiles_with_the_same_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let season_dir = tmp.path().join("season");
    let season = generate_season(&SeasonSpec::default(), &season_dir).unwrap();
    let scenes: Vec<String> = season
        .scenes
        .iter()
        .map(|s| format!("season/{}", s.path.file_name().unwrap().to_string_lossy()))
        .collect();

    // The uninterrupted run.
    let plain = Site::new(&tmp.path().join("plain"), &season_dir);
    let (mut server, addr) = plain.serve("serve.log");
    let id = plain.submit(&addr, &scenes);
    let b = plain.wait_done(&addr, id);
    assert_eq!(b["attempts"], 1);
    let want = plain.changes(&addr, id);
    assert!(want.len() > 20, "{} patches", want.len());
    // A finished job's tiles are removed (just after its result is stored).
    let job_dir = plain.dir.join(format!("data/jobs/{id}"));
    let started = Instant::now();
    while job_dir.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} is left",
            job_dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop(&mut server, "-TERM");

    // kill -9 in the middle, then a restart on the same data dir.
    let killed = Site::new(&tmp.path().join("killed"), &season_dir);
    let (mut server, addr) = killed.serve("first.log");
    let id = killed.submit(&addr, &scenes);
    let done_before = killed.wait_mid_run(&addr, id, 3);
    stop(&mut server, "-KILL");
    let kept = killed.tile_files(id);
    assert!(
        kept as u64 >= done_before,
        "{kept} tile files, {done_before} tiles reported done"
    );
    let (mut server, addr) = killed.serve("second.log");
    let b = killed.wait_done(&addr, id);
    assert_eq!(b["attempts"], 2, "{b}");
    let log = killed.log("second.log");
    assert!(
        log.contains("queued again")
            && log.contains(&format!("{kept} of "))
            && log.contains("tiles with farmland read back"),
        "{log}"
    );
    assert_eq!(killed.changes(&addr, id), want);
    stop(&mut server, "-TERM");

    // SIGTERM in the middle: the server exits cleanly, the job waits in the queue.
    let termed = Site::new(&tmp.path().join("termed"), &season_dir);
    let (mut server, addr) = termed.serve("first.log");
    let id = termed.submit(&addr, &scenes);
    termed.wait_mid_run(&addr, id, 3);
    let status = stop(&mut server, "-TERM");
    assert!(status.success(), "{status:?}: {}", termed.log("first.log"));
    let log = termed.log("first.log");
    assert!(log.contains("interrupted by the shutdown"), "{log}");
    let kept = termed.tile_files(id);
    assert!(kept >= 3, "{kept}");
    let (mut server, addr) = termed.serve("second.log");
    let b = termed.wait_done(&addr, id);
    assert_eq!(b["attempts"], 2, "{b}");
    assert!(
        termed.log("second.log").contains(&format!("{kept} of ")),
        "{}",
        termed.log("second.log")
    );
    assert_eq!(termed.changes(&addr, id), want);
    stop(&mut server, "-TERM");
}
