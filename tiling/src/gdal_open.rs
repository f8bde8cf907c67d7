//! Opening a user's raster or vector file with GDAL, and saying in gengdi's words what the
//! file is when GDAL cannot open it.
//!
//! GDAL answers an unopenable file with a NULL dataset and, unless a driver recognised the
//! file and then failed, no message at all (the gdal crate's "`GDALOpenEx` returned a NULL
//! pointer. Error msg: ''"). [`open`] looks at the file itself instead: a directory, an
//! empty file, one the process may not read, the other kind of dataset (a raster given as a
//! vector layer or the reverse), GDAL's own message when it gave one, or else a format GDAL
//! does not know, with the extension and the first bytes.

use gdal::{Dataset, DatasetOptions, GdalOpenFlags};
use std::fmt;
use std::io::Read;
use std::path::Path;

/// What kind of dataset the caller wants from a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    Raster,
    Vector,
}

impl DataKind {
    fn flags(self) -> GdalOpenFlags {
        match self {
            DataKind::Raster => GdalOpenFlags::GDAL_OF_RASTER,
            DataKind::Vector => GdalOpenFlags::GDAL_OF_VECTOR,
        }
    }

    fn other(self) -> DataKind {
        match self {
            DataKind::Raster => DataKind::Vector,
            DataKind::Vector => DataKind::Raster,
        }
    }

    /// `raster` / `vector layer`: what the caller wanted, as a noun.
    fn noun(self) -> &'static str {
        match self {
            DataKind::Raster => "raster",
            DataKind::Vector => "vector layer",
        }
    }

    /// `raster` / `vector`: as an adjective.
    fn adjective(self) -> &'static str {
        match self {
            DataKind::Raster => "raster",
            DataKind::Vector => "vector",
        }
    }
}

/// Why a file could not be opened as the dataset wanted: what the file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenFailure {
    /// Nothing at the path.
    NotFound,
    /// A directory (that GDAL does not read as a dataset of the kind wanted).
    Directory { kind: DataKind },
    /// A file of 0 bytes.
    Empty { kind: DataKind },
    /// The process may not read the file.
    PermissionDenied,
    /// Another I/O error while looking at the file.
    Unreadable { error: std::io::ErrorKind },
    /// GDAL opens it as the other kind: a raster given where a vector layer is wanted or
    /// the reverse. `driver` is GDAL's short name of its format.
    WrongKind { wanted: DataKind, driver: String },
    /// A driver recognised the file and said why it failed.
    Gdal { kind: DataKind, message: String },
    /// No GDAL driver recognised the file.
    UnknownFormat {
        kind: DataKind,
        extension: Option<String>,
        first_bytes: Vec<u8>,
    },
}

impl fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenFailure::NotFound => write!(f, "no such file"),
            OpenFailure::Directory {
                kind: DataKind::Raster,
            } => write!(
                f,
                "a directory, not a raster file (a directory stands for the rasters in it only \
                 where a command takes a folder of scenes)"
            ),
            OpenFailure::Directory {
                kind: DataKind::Vector,
            } => write!(
                f,
                "a directory in which GDAL finds no vector layer (give the layer's file: \
                 .gpkg, .shp, .geojson, .fgb …)"
            ),
            OpenFailure::Empty { kind } => {
                write!(f, "an empty file (0 bytes), not a {}", kind.noun())
            }
            OpenFailure::PermissionDenied => write!(f, "permission denied (cannot read the file)"),
            OpenFailure::Unreadable { error } => write!(f, "cannot read: {error}"),
            OpenFailure::WrongKind { wanted, driver } => write!(
                f,
                "a {} dataset ({driver}), not a {}",
                wanted.other().adjective(),
                wanted.noun()
            ),
            OpenFailure::Gdal { kind, message } => {
                write!(f, "GDAL cannot open it as a {}: {message}", kind.noun())
            }
            OpenFailure::UnknownFormat {
                kind,
                extension,
                first_bytes,
            } => {
                write!(f, "not a {} format GDAL knows (", kind.adjective())?;
                if let Some(e) = extension {
                    write!(f, "a .{e} file ")?;
                }
                write!(f, "starting with {})", describe_bytes(first_bytes))
            }
        }
    }
}

/// `"text"` when the bytes are printable text, else their hex values.
fn describe_bytes(bytes: &[u8]) -> String {
    let text = std::str::from_utf8(bytes).ok().filter(|t| {
        t.chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\r' || c == '\t')
    });
    match text {
        Some(t) => format!("{:?}", t),
        None => {
            let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("the bytes {}", hex.join(" "))
        }
    }
}

/// Bytes of a file shown when no driver knows it.
const SHOWN_BYTES: usize = 16;

/// Open `path` as a dataset of `kind`; on failure, say what the file is.
pub fn open(path: &Path, kind: DataKind) -> Result<Dataset, OpenFailure> {
    open_through(path, path, kind)
}

/// Open `gdal_path` (`path` itself, or a GDAL virtual path into it such as `/vsizip/…`) as a
/// dataset of `kind`; on failure, say what the file at `path` is.
pub fn open_through(path: &Path, gdal_path: &Path, kind: DataKind) -> Result<Dataset, OpenFailure> {
    let opened = Dataset::open_ex(
        gdal_path,
        DatasetOptions {
            open_flags: kind.flags(),
            ..Default::default()
        },
    );
    match opened {
        Ok(ds) => Ok(ds),
        Err(e) => {
            let message = match e {
                gdal::errors::GdalError::NullPointer { msg, .. } => msg,
                other => other.to_string(),
            };
            Err(diagnose(path, gdal_path, kind, message.trim()))
        }
    }
}

/// What the file at `path` is, GDAL having failed to open it (`gdal_message`, maybe empty).
fn diagnose(path: &Path, gdal_path: &Path, kind: DataKind, gdal_message: &str) -> OpenFailure {
    let io_failure = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => OpenFailure::NotFound,
        std::io::ErrorKind::PermissionDenied => OpenFailure::PermissionDenied,
        other => OpenFailure::Unreadable { error: other },
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return io_failure(e),
    };
    if meta.is_dir() {
        return OpenFailure::Directory { kind };
    }
    let mut first_bytes = Vec::with_capacity(SHOWN_BYTES);
    match std::fs::File::open(path) {
        Ok(f) => {
            if let Err(e) = f.take(SHOWN_BYTES as u64).read_to_end(&mut first_bytes) {
                return io_failure(e);
            }
        }
        Err(e) => return io_failure(e),
    }
    if meta.len() == 0 {
        return OpenFailure::Empty { kind };
    }
    if !gdal_message.is_empty() {
        return OpenFailure::Gdal {
            kind,
            message: gdal_message.to_string(),
        };
    }
    if let Ok(ds) = Dataset::open_ex(
        gdal_path,
        DatasetOptions {
            open_flags: kind.other().flags(),
            ..Default::default()
        },
    ) {
        return OpenFailure::WrongKind {
            wanted: kind,
            driver: ds.driver().short_name(),
        };
    }
    OpenFailure::UnknownFormat {
        kind,
        extension: path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_string),
        first_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_show_as_text_when_they_are_text_else_as_hex() {
        assert_eq!(describe_bytes(b"these are notes"), "\"these are notes\"");
        assert_eq!(describe_bytes(&[0, 1, 0xff]), "the bytes 00 01 ff");
    }

    #[test]
    fn each_failure_says_what_the_file_is() {
        let unknown = OpenFailure::UnknownFormat {
            kind: DataKind::Raster,
            extension: Some("tif".into()),
            first_bytes: b"hello".to_vec(),
        };
        assert_eq!(
            unknown.to_string(),
            "not a raster format GDAL knows (a .tif file starting with \"hello\")"
        );
        let wrong = OpenFailure::WrongKind {
            wanted: DataKind::Vector,
            driver: "GTiff".into(),
        };
        assert_eq!(
            wrong.to_string(),
            "a raster dataset (GTiff), not a vector layer"
        );
        assert_eq!(
            OpenFailure::Empty {
                kind: DataKind::Raster
            }
            .to_string(),
            "an empty file (0 bytes), not a raster"
        );
    }
}
