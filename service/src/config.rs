//! The service's settings: defaults, then a TOML file, then what the caller overrides (the
//! `gengdi serve` flags and `GENGDI_*` environment variables, merged by the binary).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::error::{Result, ServiceError};

/// Default data dir.
pub const DEFAULT_DATA_DIR: &str = "./gengdi-data";
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default request body limit: 1 MiB (requests are JSON; files are named by path).
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
/// Default largest multipart upload (all its files): 4 GiB, a Sentinel-2 product's zip.
pub const DEFAULT_UPLOAD_LIMIT: usize = 4 << 30;
/// Default analysis tile side in pixels (as `gengdi analyze --tile`).
pub const DEFAULT_TILE: usize = 512;
/// Default sustained requests per second per token, and the burst above it.
pub const DEFAULT_RATE_LIMIT: f64 = 100.0;
pub const DEFAULT_RATE_BURST: f64 = 200.0;
/// Default longest time a request may take, in seconds.
pub const DEFAULT_REQUEST_TIMEOUT_S: f64 = 60.0;

/// Default cropland target (耕地保有量), in mu: the city's commitment.
pub const DEFAULT_CROPLAND_TARGET_MU: f64 = 4_401_200.0;
/// Default permanent basic farmland target (永久基本农田), in mu.
pub const DEFAULT_PBF_TARGET_MU: f64 = 3_434_500.0;

/// Everything `gengdi serve` needs to know.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceConfig {
    /// Where the database and the stored farmland copies live.
    pub data_dir: PathBuf,
    /// A PostgreSQL/PostGIS database (`postgres://user:password@host:port/db`) to use
    /// instead of the embedded SQLite file in the data dir (which still holds the stored
    /// farmland copies, photos, models and checkpoints).
    pub database: Option<String>,
    /// With a database: how many workers of shared runs this process runs beside the API
    /// (default: the cores, a tile task running mostly on one thread; 0: none, the batches
    /// wait for `gengdi worker` processes).
    pub workers: usize,
    /// With a database: a claimed task not renewed for this long is claimed again, in seconds.
    pub task_lease_s: f64,
    /// Remote scene hrefs (`s3://bucket/prefix/`, `https://host/path/`) batches may name,
    /// read through GDAL with its `AWS_*` settings from the environment; none by default.
    pub remote_prefixes: Vec<String>,
    pub listen: SocketAddr,
    /// Requests may only name files under this folder (default: `<data dir>/import`).
    pub import_root: PathBuf,
    /// Largest JSON request body accepted, in bytes.
    pub body_limit: usize,
    /// Largest multipart upload of files (farmland layers, scenes), in bytes.
    pub upload_limit: usize,
    /// Analysis tile side in pixels.
    pub tile: usize,
    /// Run the crop-type model (non-grain on PBF flags).
    pub crop_type: bool,
    /// Most pixels per band of a scene a batch may name.
    pub max_scene_pixels: u64,
    /// Most bytes a zip archive a request names may unpack to.
    pub max_unpacked_bytes: u64,
    /// Requests per second each token may make, sustained (0: no limit) …
    pub rate_limit: f64,
    /// … and how many above that it may make at once.
    pub rate_burst: f64,
    /// A request taking longer is answered 503 `timeout`.
    pub request_timeout_s: f64,
    /// Cropland area the statistics compare the farmland layers with, in mu.
    pub cropland_target_mu: f64,
    /// Permanent basic farmland area the statistics compare with, in mu.
    pub pbf_target_mu: f64,
    /// Labelled tables training jobs add (`tables: true`); default: the repository's shipped
    /// tables when found ([`crate::jobs::training::default_training_tables`]), else none.
    pub training_tables: Vec<PathBuf>,
}

impl ServiceConfig {
    /// The file limits in force.
    pub fn limits(&self) -> crate::limits::Limits {
        crate::limits::Limits {
            max_scene_pixels: self.max_scene_pixels,
            max_unpacked_bytes: self.max_unpacked_bytes,
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        let data_dir = PathBuf::from(DEFAULT_DATA_DIR);
        ServiceConfig {
            import_root: data_dir.join("import"),
            data_dir,
            database: None,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            task_lease_s: crate::jobs::shared::DEFAULT_LEASE_S,
            remote_prefixes: Vec::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit: DEFAULT_BODY_LIMIT,
            upload_limit: DEFAULT_UPLOAD_LIMIT,
            tile: DEFAULT_TILE,
            crop_type: true,
            max_scene_pixels: crate::limits::DEFAULT_MAX_SCENE_PIXELS,
            max_unpacked_bytes: crate::limits::DEFAULT_MAX_UNPACKED_BYTES,
            rate_limit: DEFAULT_RATE_LIMIT,
            rate_burst: DEFAULT_RATE_BURST,
            request_timeout_s: DEFAULT_REQUEST_TIMEOUT_S,
            cropland_target_mu: DEFAULT_CROPLAND_TARGET_MU,
            pbf_target_mu: DEFAULT_PBF_TARGET_MU,
            training_tables: crate::jobs::training::default_training_tables(),
        }
    }
}

/// The TOML file: every key optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub workers: Option<usize>,
    pub task_lease_s: Option<f64>,
    pub remote_prefixes: Option<Vec<String>>,
    pub listen: Option<SocketAddr>,
    pub import_root: Option<PathBuf>,
    pub body_limit: Option<usize>,
    pub upload_limit: Option<usize>,
    pub tile: Option<usize>,
    pub crop_type: Option<bool>,
    pub max_scene_pixels: Option<u64>,
    pub max_unpacked_bytes: Option<u64>,
    pub rate_limit: Option<f64>,
    pub rate_burst: Option<f64>,
    pub request_timeout_s: Option<f64>,
    pub cropland_target_mu: Option<f64>,
    pub pbf_target_mu: Option<f64>,
    pub training_tables: Option<Vec<PathBuf>>,
}

impl ConfigFile {
    /// Read a TOML settings file; unknown keys are an error.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let text = std::fs::read_to_string(path).map_err(|source| ServiceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ServiceError::Config {
            what: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// `self`'s values over `other`'s.
    pub fn or(self, other: ConfigFile) -> ConfigFile {
        ConfigFile {
            data_dir: self.data_dir.or(other.data_dir),
            database: self.database.or(other.database),
            workers: self.workers.or(other.workers),
            task_lease_s: self.task_lease_s.or(other.task_lease_s),
            remote_prefixes: self.remote_prefixes.or(other.remote_prefixes),
            listen: self.listen.or(other.listen),
            import_root: self.import_root.or(other.import_root),
            body_limit: self.body_limit.or(other.body_limit),
            upload_limit: self.upload_limit.or(other.upload_limit),
            tile: self.tile.or(other.tile),
            crop_type: self.crop_type.or(other.crop_type),
            max_scene_pixels: self.max_scene_pixels.or(other.max_scene_pixels),
            max_unpacked_bytes: self.max_unpacked_bytes.or(other.max_unpacked_bytes),
            rate_limit: self.rate_limit.or(other.rate_limit),
            rate_burst: self.rate_burst.or(other.rate_burst),
            request_timeout_s: self.request_timeout_s.or(other.request_timeout_s),
            cropland_target_mu: self.cropland_target_mu.or(other.cropland_target_mu),
            pbf_target_mu: self.pbf_target_mu.or(other.pbf_target_mu),
            training_tables: self.training_tables.or(other.training_tables),
        }
    }

    /// The settings, defaults filling what is unset; the import root defaults to
    /// `<data dir>/import`.
    pub fn resolve(self) -> Result<ServiceConfig> {
        let d = ServiceConfig::default();
        let data_dir = self.data_dir.unwrap_or(d.data_dir);
        let tile = self.tile.unwrap_or(d.tile);
        if !(16..=8192).contains(&tile) {
            return Err(ServiceError::Config {
                what: "tile".into(),
                reason: format!("{tile}: must be 16 to 8192 pixels"),
            });
        }
        let positive = |what: &str, v: f64, zero_ok: bool| {
            if v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0)) {
                Ok(v)
            } else {
                Err(ServiceError::Config {
                    what: what.into(),
                    reason: format!(
                        "{v}: must be a positive number{}",
                        if zero_ok { " or 0" } else { "" }
                    ),
                })
            }
        };
        let task_lease_s = positive(
            "task_lease_s",
            self.task_lease_s.unwrap_or(d.task_lease_s),
            false,
        )?;
        let rate_limit = positive("rate_limit", self.rate_limit.unwrap_or(d.rate_limit), true)?;
        let rate_burst = positive("rate_burst", self.rate_burst.unwrap_or(d.rate_burst), false)?;
        let request_timeout_s = positive(
            "request_timeout_s",
            self.request_timeout_s.unwrap_or(d.request_timeout_s),
            false,
        )?;
        let target = |what: &str, v: Option<f64>, default: f64| match v {
            None => Ok(default),
            Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
            Some(v) => Err(ServiceError::Config {
                what: what.into(),
                reason: format!("{v}: must be a non-negative number of mu"),
            }),
        };
        let cropland_target_mu = target(
            "cropland_target_mu",
            self.cropland_target_mu,
            d.cropland_target_mu,
        )?;
        let pbf_target_mu = target("pbf_target_mu", self.pbf_target_mu, d.pbf_target_mu)?;
        Ok(ServiceConfig {
            max_scene_pixels: self.max_scene_pixels.unwrap_or(d.max_scene_pixels),
            max_unpacked_bytes: self.max_unpacked_bytes.unwrap_or(d.max_unpacked_bytes),
            rate_limit,
            rate_burst,
            request_timeout_s,
            import_root: self.import_root.unwrap_or_else(|| data_dir.join("import")),
            data_dir,
            database: match self.database {
                Some(url)
                    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") =>
                {
                    return Err(ServiceError::Config {
                        what: "database".into(),
                        reason: format!(
                            "{}: a PostgreSQL URL starts with postgres:// (leave it unset for the \
                             embedded SQLite store)",
                            crate::store::postgres::redact_url(&url)
                        ),
                    })
                }
                other => other,
            },
            workers: self.workers.unwrap_or(d.workers),
            task_lease_s,
            remote_prefixes: match self.remote_prefixes {
                Some(p) => {
                    if let Some(bad) = p
                        .iter()
                        .find(|p| gengdi_tiling::vsi::remote_path(p.trim()).is_none())
                    {
                        return Err(ServiceError::Config {
                            what: "remote_prefixes".into(),
                            reason: format!(
                                "{bad}: a prefix starts with s3://, http:// or https://"
                            ),
                        });
                    }
                    p
                }
                None => d.remote_prefixes,
            },
            listen: self.listen.unwrap_or(d.listen),
            body_limit: self.body_limit.unwrap_or(d.body_limit),
            upload_limit: self.upload_limit.unwrap_or(d.upload_limit),
            tile,
            crop_type: self.crop_type.unwrap_or(d.crop_type),
            cropland_target_mu,
            pbf_target_mu,
            training_tables: self
                .training_tables
                .unwrap_or_else(crate::jobs::training::default_training_tables),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_the_file_overrides_the_defaults() {
        let file: ConfigFile =
            toml::from_str("data_dir = \"/srv/gengdi\"\nlisten = \"0.0.0.0:9000\"\ntile = 256\n")
                .unwrap();
        let flags = ConfigFile {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 7000))),
            ..ConfigFile::default()
        };
        let c = flags.or(file).resolve().ok();
        assert_eq!(
            c,
            Some(ServiceConfig {
                data_dir: "/srv/gengdi".into(),
                listen: SocketAddr::from(([127, 0, 0, 1], 7000)),
                import_root: "/srv/gengdi/import".into(),
                body_limit: DEFAULT_BODY_LIMIT,
                tile: 256,
                crop_type: true,
                ..ServiceConfig::default()
            })
        );
        for bad in [
            "rate_limit = -1",
            "rate_burst = 0",
            "request_timeout_s = nan",
        ] {
            let file: ConfigFile = toml::from_str(bad).unwrap();
            let err = file.resolve().unwrap_err().to_string();
            assert!(err.contains(bad.split(' ').next().unwrap()), "{bad}: {err}");
        }
        assert!(toml::from_str::<ConfigFile>("listn = \"x\"").is_err());
        let file: ConfigFile =
            toml::from_str("cropland_target_mu = 1000.5\npbf_target_mu = 800").unwrap();
        let c = file.resolve().unwrap();
        assert_eq!((c.cropland_target_mu, c.pbf_target_mu), (1000.5, 800.0));
        let bad: ConfigFile = toml::from_str("pbf_target_mu = -1.0").unwrap();
        assert!(bad.resolve().is_err());
    }
}
