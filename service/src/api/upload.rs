//! Request bodies that are either JSON (files named by path under the import root) or a
//! `multipart/form-data` upload of the files themselves.
//!
//! An upload is streamed to `<import root>/uploads/<random>/` (never held in memory), at most
//! `upload_limit` bytes in all (413 `payload_too_large` past it, the partial files removed),
//! and its files are then named by their path under the import root, so that the rest of the
//! request takes the same path as a JSON one: the same import-root checks, the same limits
//! (pixels, zip archives), the same store records. JSON bodies keep the small `body_limit`.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

use super::error::ApiError;
use super::AppState;

/// A JSON body, or the files and fields of an upload.
#[derive(Debug)]
pub enum JsonOrUpload<T> {
    Json(T),
    Upload(Upload),
}

/// What an upload held.
#[derive(Debug, Default)]
pub struct Upload {
    /// Where its files are, relative to the import root (`uploads/<random>`).
    pub dir: String,
    /// (form field name, path relative to the import root) of each file, in order.
    pub files: Vec<(String, String)>,
    /// The text fields.
    pub fields: BTreeMap<String, String>,
    /// SHA-256 over the files' names and contents and the fields: what an idempotent replay
    /// must match.
    pub digest: String,
}

impl Upload {
    /// The files sent under the form field `name`.
    pub fn files_named(&self, name: &str) -> Vec<String> {
        self.files
            .iter()
            .filter(|(f, _)| f == name)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

fn too_large(limit: usize, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the {what} is over the limit of {limit} bytes"),
    )
    .with_details(serde_json::json!({ "limit_bytes": limit }))
}

/// A file name safe to create: its last component, with anything but letters, digits, `.`,
/// `-` and `_` replaced; never empty, never `.` or `..`.
fn safe_name(name: &str, index: usize) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        format!("file-{index}")
    } else {
        cleaned
    }
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for JsonOrUpload<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            let multipart = Multipart::from_request(req, state)
                .await
                .map_err(|e| ApiError::new(e.status(), "bad_multipart", e.body_text()))?;
            return receive(multipart, state).await.map(JsonOrUpload::Upload);
        }
        // JSON: the small body limit, whatever the route allows uploads.
        let limit = state.body_limit();
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| too_large(limit, "request body"))?;
        let req = Request::from_parts(parts, Body::from(bytes));
        let super::extract::ApiJson(v) =
            super::extract::ApiJson::<T>::from_request(req, state).await?;
        Ok(JsonOrUpload::Json(v))
    }
}

/// Stream every part to disk (files) or memory (short text fields).
async fn receive(mut multipart: Multipart, state: &AppState) -> Result<Upload, ApiError> {
    let limit = state.upload_limit();
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).map_err(|e| ApiError::internal(e.to_string()))?;
    let dir_rel = format!("uploads/{}", hex::encode(random));
    let dir: PathBuf = state.import_root().path().join(&dir_rel);
    let result = async {
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", dir.display())))?;
        let mut upload = Upload {
            dir: dir_rel.clone(),
            ..Upload::default()
        };
        let mut digest = Sha256::new();
        let mut total = 0usize;
        let bad = |e: axum::extract::multipart::MultipartError| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                too_large(limit, "upload")
            } else {
                ApiError::new(status, "bad_multipart", e.body_text())
            }
        };
        while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
            let name = field.name().unwrap_or("").to_string();
            digest.update(format!("\n{name}\n").as_bytes());
            match field.file_name().map(str::to_string) {
                Some(file_name) => {
                    let safe = safe_name(&file_name, upload.files.len());
                    if upload
                        .files
                        .iter()
                        .any(|(_, p)| p.ends_with(&format!("/{safe}")))
                    {
                        return Err(ApiError::bad_request(format!(
                            "two files named {safe:?} in one upload"
                        )));
                    }
                    digest.update(safe.as_bytes());
                    let path = dir.join(&safe);
                    let mut out = tokio::fs::File::create(&path).await.map_err(|e| {
                        ApiError::internal(format!("cannot create {}: {e}", path.display()))
                    })?;
                    while let Some(chunk) = field.chunk().await.map_err(bad)? {
                        total += chunk.len();
                        if total > limit {
                            return Err(too_large(limit, "upload"));
                        }
                        digest.update(&chunk);
                        out.write_all(&chunk).await.map_err(|e| {
                            ApiError::internal(format!("cannot write {}: {e}", path.display()))
                        })?;
                    }
                    out.flush().await.map_err(|e| {
                        ApiError::internal(format!("cannot write {}: {e}", path.display()))
                    })?;
                    upload.files.push((name, format!("{dir_rel}/{safe}")));
                }
                None => {
                    let text = field.text().await.map_err(bad)?;
                    total += text.len();
                    if total > limit || text.len() > state.body_limit() {
                        return Err(too_large(state.body_limit(), "form field"));
                    }
                    digest.update(text.as_bytes());
                    upload.fields.insert(name, text);
                }
            }
        }
        upload.digest = hex::encode(digest.finalize());
        Ok(upload)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_dir_all(&dir).await;
    }
    result
}

/// Remove an upload's files (a request that failed after receiving them, or a replay).
pub async fn discard(state: &AppState, upload: &Upload) {
    let dir = state.import_root().path().join(&upload.dir);
    if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
        tracing::warn!("cannot remove the upload {}: {e}", dir.display());
    }
}
