//! The inspectors' web map in a real browser: `gengdi serve` analyses the demo season (the
//! generated season's farmland and six dates, submitted over HTTP), then
//! `service/web/test/map.test.mjs` drives Debian's headless Chromium through the page with
//! playwright-core — sign-in (a wrong and a revoked token refused), the patches on the map
//! and in the list (exactly the API's), the kind filter, a patch's detail with its chips, a
//! verdict kept across a reload, the other county's and an empty county's inspectors, a
//! researcher, a phone-sized viewport, imagery tiles, the land-cover map and the farmland
//! parcels — with every request to another host
//! aborted and counted (0). Screenshots land in `<target>/tmp/web-screenshots/`;
//! `GENGDI_UPDATE_DOCS_IMAGES=1` also copies three of them into `docs/images/` for the README.
//!
//! Needs `/usr/bin/chromium` and the test's npm packages: `scripts/install-deps.sh` installs
//! both; without them this test fails and says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gengdi_fixtures::season::{generate_season, SeasonSpec};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn web_test_dir() -> PathBuf {
    root().join("service/web/test")
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
    let value = serde_json::from_str(body).unwrap_or(Value::Null);
    Some((status, value))
}

fn gengdi(args: &[&str], data: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gengdi"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("GENGDI_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gengdi {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A new token (the last line `gengdi token create` prints).
fn token(data: &Path, role: &str, region: Option<&str>, name: &str) -> String {
    let mut args = vec!["token", "create", "--role", role, "--name", name];
    if let Some(r) = region {
        args.extend(["--region", r]);
    }
    gengdi(&args, data).lines().last().unwrap().to_string()
}

/// Kills the server when the test ends, whatever happens.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the browser test needs on this machine, or why it cannot run.
fn browser_prerequisites() -> Result<(), String> {
    let fix =
        "run scripts/install-deps.sh (it installs Debian's chromium and the test's npm packages)";
    if !Path::new(CHROMIUM).exists() {
        return Err(format!("{CHROMIUM} is missing: {fix}"));
    }
    if !web_test_dir().join("node_modules/playwright-core").is_dir() {
        return Err(format!(
            "{} has no node_modules/playwright-core: {fix}",
            web_test_dir().display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(format!("node is missing (Node.js 20 or later): {fix}")),
    }
}

#[test]
fn the_page_names_no_other_host_and_every_file_it_loads_is_embedded() {
    let index = std::str::from_utf8(gengdi_service::api::web::asset("index.html").unwrap())
        .unwrap()
        .to_string();
    for name in ["index.html", "app.js", "app.css"] {
        // The SVG namespace names no host to fetch from (it is an identifier).
        let text = std::str::from_utf8(gengdi_service::api::web::asset(name).unwrap())
            .unwrap()
            .replace("'http://www.w3.org/2000/svg'", "'svg-namespace'");
        assert!(
            !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"),
            "{name} names another host"
        );
    }
    // Every /web/… file index.html loads is embedded.
    let mut found = 0;
    for part in index.split("\"/web/").skip(1) {
        let path = part.split('"').next().unwrap();
        assert!(
            gengdi_service::api::web::asset(path).is_some(),
            "index.html loads /web/{path}, which is not embedded"
        );
        found += 1;
    }
    assert!(
        found >= 4,
        "index.html loads its script, styles and Leaflet"
    );
}

#[test]
fn the_web_map_works_in_headless_chromium_with_other_hosts_blocked() {
    if let Err(why) = browser_prerequisites() {
        panic!("the web map's browser test cannot run: {why}");
    }
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let import = tmp.path().join("import");
    let season = generate_season(&SeasonSpec::default(), &import.join("season")).unwrap();
    let scenes: Vec<String> = season
        .scenes
        .iter()
        .map(|s| format!("season/{}", s.path.file_name().unwrap().to_string_lossy()))
        .collect();

    let centre = token(&data, "centre", None, "monitoring centre");
    let inspector = token(
        &data,
        "inspector",
        Some("640502"),
        "county 640502 inspector",
    );
    let other = token(
        &data,
        "inspector",
        Some("640521"),
        "county 640521 inspector",
    );
    let empty = token(
        &data,
        "inspector",
        Some("640522"),
        "county 640522 inspector",
    );
    let researcher = token(&data, "researcher", None, "researcher");
    let revoked = token(&data, "inspector", Some("640502"), "a revoked token");
    let listed = gengdi(&["token", "list"], &data);
    let revoked_id = listed
        .lines()
        .find(|l| l.ends_with("a revoked token"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    gengdi(&["token", "revoke", &revoked_id], &data);

    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let log = tmp.path().join("serve.log");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_gengdi"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .arg("--import-root")
            .arg(&import)
            .args(["--listen", &addr])
            .arg("--registry")
            .arg(root().join("models/weights"))
            .env_remove("GENGDI_DATA_DIR")
            .env("RUST_LOG", "warn,gengdi_service=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let server_log = || std::fs::read_to_string(&log).unwrap_or_default();
    while http(&addr, "GET", "/healthz", "", None).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve did not start: {}",
            server_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The demo: the centre registers the farmland and submits the season.
    let call = |method: &str, path: &str, body: Option<&Value>| {
        http(&addr, method, path, &centre, body).unwrap()
    };
    let (status, f) = call(
        "POST",
        "/api/v1/farmland",
        Some(&json!({"path": "season/farmland.gpkg", "name": "demo season"})),
    );
    assert_eq!(status, 201, "{f}");
    let (status, b) = call(
        "POST",
        "/api/v1/batches",
        Some(&json!({"scenes": scenes, "farmland": f["id"], "name": "demo season"})),
    );
    assert_eq!(status, 202, "{b}");
    let batch = b["id"].as_i64().unwrap();
    loop {
        let (_, b) = call("GET", &format!("/api/v1/batches/{batch}"), None);
        match b["status"].as_str().unwrap() {
            "done" => break,
            "queued" | "running" => {}
            other => panic!("batch {other}: {b}\n{}", server_log()),
        }
        assert!(started.elapsed() < Duration::from_secs(300), "{b}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let analysed = started.elapsed();

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let mut node = Command::new("node")
        .arg("map.test.mjs")
        .current_dir(web_test_dir())
        .env("GENGDI_URL", format!("http://{addr}"))
        .env("GENGDI_INSPECTOR_TOKEN", &inspector)
        .env("GENGDI_OTHER_TOKEN", &other)
        .env("GENGDI_EMPTY_TOKEN", &empty)
        .env("GENGDI_RESEARCHER_TOKEN", &researcher)
        .env("GENGDI_REVOKED_TOKEN", &revoked)
        .env("GENGDI_SCREENSHOTS", &shots)
        .env("GENGDI_CHROMIUM", CHROMIUM)
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read both pipes on threads so that a chatty browser cannot fill one and stall.
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = pipe(Box::new(node.stdout.take().unwrap()));
    let err = pipe(Box::new(node.stderr.take().unwrap()));
    let browser_started = Instant::now();
    let status = loop {
        if let Some(s) = node.try_wait().unwrap() {
            break Some(s);
        }
        if browser_started.elapsed() > Duration::from_secs(240) {
            let _ = node.kill();
            let _ = node.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    println!("{out}");
    eprintln!("{err}");
    println!(
        "analysis {:.1} s, browser test {:.1} s; screenshots in {}",
        analysed.as_secs_f64(),
        browser_started.elapsed().as_secs_f64(),
        shots.display()
    );
    let status = status.expect("the browser test ran past 240 s and was stopped");
    assert!(
        status.success(),
        "the browser test failed ({status}); server log:\n{}",
        server_log()
    );
    assert!(out.contains("blocked requests to other hosts: 0"), "{out}");
    for shot in [
        "map-desktop.png",
        "detail-desktop.png",
        "map-phone.png",
        "detail-phone.png",
        "landcover-parcels-desktop.png",
    ] {
        let len = std::fs::metadata(shots.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 10_000, "screenshot {shot}: {len} bytes");
    }
    if std::env::var("GENGDI_UPDATE_DOCS_IMAGES").as_deref() == Ok("1") {
        let docs = root().join("docs/images");
        std::fs::create_dir_all(&docs).unwrap();
        for (from, to) in [
            ("map-desktop.png", "web-map.png"),
            ("detail-desktop.png", "web-map-detail.png"),
            ("landcover-parcels-desktop.png", "web-map-landcover.png"),
        ] {
            std::fs::copy(shots.join(from), docs.join(to)).unwrap();
        }
    }
}
