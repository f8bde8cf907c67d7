//! Scenes in object storage: `s3://` hrefs read by the fast reader with range requests
//! through GDAL's `/vsis3/` virtual file layer, from a real S3-compatible server (moto's, from PyPI, installed by `scripts/install-deps.sh` into
//! `target/s3-test-venv` and started here on a free loopback port) give the same analysis
//! as the same files on disk; remote hrefs are read only under an allowed prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn slovenia() -> PathBuf {
    root().join("fixtures/data/eolearn-slovenia-s2")
}

const DATES: [&str; 5] = ["20150711", "20150731", "20150820", "20150830", "20150909"];

/// The S3-compatible server's Python environment (see scripts/install-deps.sh).
fn venv() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    target.join("s3-test-venv")
}

struct S3 {
    child: Child,
    endpoint: String,
}

impl S3 {
    fn start() -> S3 {
        let server = venv().join("bin/moto_server");
        assert!(
            server.exists(),
            "{} is missing: run scripts/install-deps.sh",
            server.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let endpoint = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(&endpoint).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        S3 { child, endpoint }
    }

    /// GDAL's settings for this server (as a centre sets them for its own store).
    fn env(&self, cmd: &mut Command) {
        cmd.env("AWS_S3_ENDPOINT", &self.endpoint)
            .env("AWS_HTTPS", "NO")
            .env("AWS_VIRTUAL_HOSTING", "FALSE")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1");
    }

    fn upload(&self, bucket: &str, files: &[(PathBuf, String)]) {
        let mut script = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url='http://{}', \
             aws_access_key_id='testing', aws_secret_access_key='testing', \
             region_name='us-east-1')\ns3.create_bucket(Bucket='{bucket}')\n",
            self.endpoint
        );
        for (file, key) in files {
            script.push_str(&format!(
                "s3.upload_file('{}', '{bucket}', '{key}')\n",
                file.display()
            ));
        }
        let ok = Command::new(venv().join("bin/python"))
            .args(["-c", &script])
            .status()
            .unwrap()
            .success();
        assert!(ok, "upload");
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn analyze(s3: &S3, scenes: &[String], out: &Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gengdi"));
    cmd.arg("analyze")
        .arg("--scenes")
        .args(scenes)
        .arg("--farmland")
        .arg(slovenia().join("lulc_raba_polygons.gpkg"))
        .args([
            "--farmland-fields",
            "land_class=RABA_ID",
            "--tile",
            "32",
            "-q",
        ])
        .arg("--config")
        .arg(root().join("fixtures/slovenia-rules.toml"))
        .arg("--out")
        .arg(out.join("changes.geojson"))
        .arg("--maps")
        .arg(out.join("maps"))
        .args(extra);
    s3.env(&mut cmd);
    cmd.output().unwrap()
}

#[test]
fn scenes_read_from_an_s3_server_give_the_analysis_of_the_files_on_disk() {
    let s3 = S3::start();
    let files: Vec<(PathBuf, String)> = DATES
        .iter()
        .map(|d| {
            let name = format!("s2l1c_{d}_13band.tif");
            (slovenia().join(&name), format!("t33/2015/{name}"))
        })
        .collect();
    s3.upload("scenes", &files);

    let local_dir = tempfile::tempdir().unwrap();
    let local: Vec<String> = files.iter().map(|(f, _)| f.display().to_string()).collect();
    let out = analyze(&s3, &local, local_dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let remote: Vec<String> = files
        .iter()
        .map(|(_, key)| format!("s3://scenes/{key}"))
        .collect();
    // Not under an allowed prefix: refused before anything is read, naming the href.
    let refused_dir = tempfile::tempdir().unwrap();
    for extra in [&[][..], &["--allow-remote", "s3://scenes/t3"][..]] {
        let out = analyze(&s3, &remote, refused_dir.path(), extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains("s3://scenes/t33/2015/s2l1c_20150711"), "{err}");
        assert!(err.contains("allowed prefix"), "{err}");
    }

    // The fast reader reads them, by range requests through GDAL's virtual file layer.
    let mut info = Command::new(env!("CARGO_BIN_EXE_gengdi"));
    info.args(["info", &remote[0], "--allow-remote", "s3://scenes/t33/"]);
    s3.env(&mut info);
    let out = info.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("reader:     fast"), "{text}");

    let remote_dir = tempfile::tempdir().unwrap();
    let out = analyze(
        &s3,
        &remote,
        remote_dir.path(),
        &["--allow-remote", "s3://scenes/t33/"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in ["changes.geojson", "maps/parcels.csv", "maps/parcels.json"] {
        let a = std::fs::read(local_dir.path().join(file)).unwrap();
        let b = std::fs::read(remote_dir.path().join(file)).unwrap();
        assert!(a.len() > 100, "{file}");
        assert!(a == b, "{file} differs between local and S3 scenes");
    }
}
