//! The embedded store: one SQLite file (`gengdi.sqlite` in the data dir) in WAL mode.
//!
//! rusqlite rather than sqlx: the calls are synchronous and short, run on tokio's blocking
//! pool through [`SqliteStore::call`], and the build stays small on the project's two cores;
//! the PostgreSQL backend ([`super::PgStore`]) implements the same [`Store`] trait with its
//! own async driver. rusqlite links the **system** SQLite (the one GDAL loads for GeoPackage and
//! SpatiaLite), not a bundled copy: two SQLites in one process interpose each other's symbols
//! and GDAL crashes opening a GeoPackage. Hence rusqlite 0.39 (SQLite >= 3.34.1; Debian 12
//! ships 3.40.1 with R*Tree) rather than 0.43, whose system build needs 3.45.3.
//!
//! One connection behind a mutex: writes are serialised as SQLite serialises them anyway,
//! and the calls are small (no long transaction holds the lock except storing a finished
//! job's patches).

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::*;
use crate::auth::{Role, Scope};
use crate::error::{sql, Result, ServiceError};

/// The database file's name in the data dir.
pub const DB_FILE: &str = "gengdi.sqlite";

/// The embedded SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Open (creating if needed) `gengdi.sqlite` in `data_dir` and bring its schema up to
    /// date. Blocking: call it before serving, or from a blocking task.
    pub fn open(data_dir: &Path) -> Result<SqliteStore> {
        std::fs::create_dir_all(data_dir).map_err(|source| ServiceError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let open_err = |reason: String| ServiceError::StoreOpen {
            path: path.clone(),
            reason,
        };
        let mut conn = Connection::open(&path).map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| open_err(e.to_string()))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| open_err(format!("cannot switch to WAL: {e}")))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(open_err(format!("journal mode is {mode}, not WAL")));
        }
        conn.execute_batch("PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;")
            .map_err(|e| open_err(e.to_string()))?;
        migrate(&mut conn).map_err(|e| open_err(e.to_string()))?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version applied.
    pub fn schema_version(&self) -> Result<i64> {
        let conn = self.conn.lock().map_err(|_| ServiceError::Poisoned)?;
        conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .map_err(sql("reading the schema version"))
    }

    /// Run `f` with the connection on the blocking pool.
    async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| ServiceError::Poisoned)?;
            f(&mut guard)
        })
        .await
        .map_err(|e| ServiceError::Join(e.to_string()))?
    }

    /// Run a statement directly (tests use it to show what the schema refuses).
    pub async fn execute_raw(&self, statement: String) -> Result<usize> {
        self.call(move |c| c.execute(&statement, []).map_err(sql("raw statement")))
            .await
    }
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
         INSERT INTO schema_version (version)
           SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);",
    )?;
    let current: i64 = conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0))?;
    for (i, m) in super::schema::MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= current {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(&super::schema::render(m, super::schema::Backend::Sqlite))?;
        tx.execute("UPDATE schema_version SET version = ?1", [version])?;
        tx.commit()?;
        tracing::info!("store: schema migrated to version {version}");
    }
    Ok(())
}

pub(super) fn corrupt(what: &'static str) -> impl Fn(String) -> ServiceError {
    move |reason| ServiceError::Corrupt { what, reason }
}

fn parse_role(s: &str) -> Result<Role> {
    s.parse()
        .map_err(|_| corrupt("tokens.role")(format!("unknown role {s:?}")))
}

// ---- tokens ----

const TOKEN_COLUMNS: &str = "id, name, role, region, created_at, revoked_at";

/// A token row with its role still text.
type TokenRow = (i64, String, String, Option<String>, String, Option<String>);

fn token_row(r: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn token_record((id, name, role, region, created_at, revoked_at): TokenRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id,
        name,
        role: parse_role(&role)?,
        region,
        created_at,
        revoked_at,
    })
}

// ---- farmland ----

const FARMLAND_COLUMNS: &str = "id, name, source, stored_path, layer, mapping, features, parcels, used, repaired, rejected, area_mu, pbf_area_mu, fields_used, created_at";

fn farmland_row(r: &Row<'_>) -> rusqlite::Result<(FarmlandRecord, String)> {
    Ok((
        FarmlandRecord {
            id: r.get(0)?,
            name: r.get(1)?,
            source: r.get(2)?,
            stored_path: r.get(3)?,
            layer: r.get(4)?,
            mapping: r.get(5)?,
            features: r.get(6)?,
            parcels: r.get(7)?,
            used: r.get(8)?,
            repaired: r.get(9)?,
            rejected: r.get(10)?,
            area_mu: r.get(11)?,
            pbf_area_mu: r.get(12)?,
            fields_used: serde_json::Value::Null,
            created_at: r.get(14)?,
        },
        r.get(13)?,
    ))
}

fn farmland_record((mut rec, fields): (FarmlandRecord, String)) -> Result<FarmlandRecord> {
    rec.fields_used = serde_json::from_str(&fields)
        .map_err(|e| corrupt("farmland.fields_used")(e.to_string()))?;
    Ok(rec)
}

// ---- administrative-boundary layers ----

const ADMIN_COLUMNS: &str =
    "id, name, source, stored_path, mapping, layers, features, used, rejected, units, fields_used, created_at";

/// An admin-layer row with its JSON columns (layers, units, fields_used) still text.
type AdminRow = (AdminLayerRecord, String, String, String);

fn admin_row(r: &Row<'_>) -> rusqlite::Result<AdminRow> {
    Ok((
        AdminLayerRecord {
            id: r.get(0)?,
            name: r.get(1)?,
            source: r.get(2)?,
            stored_path: r.get(3)?,
            mapping: r.get(4)?,
            layers: Vec::new(),
            features: r.get(6)?,
            used: r.get(7)?,
            rejected: r.get(8)?,
            units: serde_json::Value::Null,
            fields_used: serde_json::Value::Null,
            created_at: r.get(11)?,
        },
        r.get(5)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn admin_record((mut rec, layers, units, fields): AdminRow) -> Result<AdminLayerRecord> {
    rec.layers =
        serde_json::from_str(&layers).map_err(|e| corrupt("admin_layers.layers")(e.to_string()))?;
    rec.units =
        serde_json::from_str(&units).map_err(|e| corrupt("admin_layers.units")(e.to_string()))?;
    rec.fields_used = serde_json::from_str(&fields)
        .map_err(|e| corrupt("admin_layers.fields_used")(e.to_string()))?;
    Ok(rec)
}

fn get_admin_layer(c: &Connection, id: i64) -> Result<Option<AdminLayerRecord>> {
    c.query_row(
        &format!("SELECT {ADMIN_COLUMNS} FROM admin_layers WHERE id = ?1"),
        [id],
        admin_row,
    )
    .optional()
    .map_err(sql("reading an admin layer"))?
    .map(admin_record)
    .transpose()
}

// ---- batches / jobs ----

const BATCH_SELECT: &str = "SELECT b.id, b.name, b.farmland_id, b.scenes, j.status, j.stage, j.tiles_done, j.tiles_total, j.error, j.cancel_requested, j.patches, j.attempts, b.created_at, j.started_at, j.finished_at, b.options FROM batches b JOIN jobs j ON j.batch_id = b.id";

type BatchRow = (BatchRecord, String, String, String);

fn batch_row(r: &Row<'_>) -> rusqlite::Result<BatchRow> {
    let tiles_done: i64 = r.get(6)?;
    let tiles_total: i64 = r.get(7)?;
    Ok((
        BatchRecord {
            id: r.get(0)?,
            name: r.get(1)?,
            farmland: r.get(2)?,
            scenes: Vec::new(),
            options: BatchOptions::default(),
            status: JobStatus::Queued,
            progress: Progress {
                stage: r.get(5)?,
                tiles_done: u64::try_from(tiles_done).unwrap_or(0),
                tiles_total: u64::try_from(tiles_total).unwrap_or(0),
            },
            error: r.get(8)?,
            cancel_requested: r.get::<_, i64>(9)? != 0,
            patches: r.get(10)?,
            attempts: r.get(11)?,
            created_at: r.get(12)?,
            started_at: r.get(13)?,
            finished_at: r.get(14)?,
        },
        r.get(3)?,
        r.get(4)?,
        r.get(15)?,
    ))
}

fn batch_record((mut rec, scenes, status, options): BatchRow) -> Result<BatchRecord> {
    rec.scenes =
        serde_json::from_str(&scenes).map_err(|e| corrupt("batches.scenes")(e.to_string()))?;
    rec.options =
        serde_json::from_str(&options).map_err(|e| corrupt("batches.options")(e.to_string()))?;
    rec.status = JobStatus::parse(&status)
        .ok_or_else(|| corrupt("jobs.status")(format!("unknown status {status:?}")))?;
    Ok(rec)
}

fn get_batch(c: &Connection, id: i64) -> Result<Option<BatchRecord>> {
    c.query_row(&format!("{BATCH_SELECT} WHERE b.id = ?1"), [id], batch_row)
        .optional()
        .map_err(sql("reading a batch"))?
        .map(batch_record)
        .transpose()
}

// ---- patches ----

const PATCH_COLUMNS: &str = "p.id, p.batch_id, p.reference, p.kind, p.status, p.area_m2, p.area_mu, p.parcel, p.pbf, p.county_code, p.township_code, p.village_code, p.group_code, p.location_code, p.county_name, p.township_name, p.village_name, p.group_name, p.class_before, p.class_after, p.dates, p.confidence, p.model_version, p.evidence, p.min_x, p.min_y, p.max_x, p.max_y, p.class_found";

type PatchRow = (ChangeRecord, String, String);

fn patch_row(r: &Row<'_>) -> rusqlite::Result<PatchRow> {
    Ok((
        ChangeRecord {
            id: r.get(0)?,
            batch: r.get(1)?,
            reference: r.get(2)?,
            kind: r.get(3)?,
            status: PatchStatus::Open,
            class_found: r.get(28)?,
            area_m2: r.get(5)?,
            area_mu: r.get(6)?,
            parcel: r.get(7)?,
            pbf: r.get::<_, i64>(8)? != 0,
            admin: AdminCodes {
                county_code: r.get(9)?,
                township_code: r.get(10)?,
                village_code: r.get(11)?,
                group_code: r.get(12)?,
                location_code: r.get(13)?,
                county_name: r.get(14)?,
                township_name: r.get(15)?,
                village_name: r.get(16)?,
                group_name: r.get(17)?,
            },
            class_before: r.get(18)?,
            class_after: r.get(19)?,
            dates: Vec::new(),
            confidence: r.get(21)?,
            model_version: r.get(22)?,
            evidence: r.get(23)?,
            bbox: [r.get(24)?, r.get(25)?, r.get(26)?, r.get(27)?],
            geometry: None,
            series: None,
        },
        r.get(4)?,
        r.get(20)?,
    ))
}

fn patch_record((mut rec, status, dates): PatchRow) -> Result<ChangeRecord> {
    rec.status = PatchStatus::parse(&status)
        .ok_or_else(|| corrupt("patches.status")(format!("unknown status {status:?}")))?;
    rec.dates =
        serde_json::from_str(&dates).map_err(|e| corrupt("patches.dates")(e.to_string()))?;
    Ok(rec)
}

/// The scope as a SQL condition on `p` and its parameter.
/// Codes starting with `prefix` are those from `prefix` (inclusive) to this (exclusive):
/// `prefix` followed by the largest character, so that the index on `location_code` serves
/// the range (a `substr(...) = ?` or `LIKE` test would scan every patch).
pub(super) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// SQL text and parameters built together.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    params: Vec<rusqlite::types::Value>,
}

impl Conditions {
    fn push(&mut self, clause: &str, values: impl IntoIterator<Item = rusqlite::types::Value>) {
        self.clauses.push(clause.to_string());
        self.params.extend(values);
    }

    fn scope(&mut self, scope: &Scope) {
        if let Scope::Region(code) = scope {
            self.prefix(code);
        }
    }

    /// Patches whose location code starts with `prefix`.
    fn prefix(&mut self, prefix: &str) {
        self.push(
            "(p.location_code >= ? AND p.location_code < ?)",
            [prefix.to_string().into(), prefix_end(prefix).into()],
        );
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

fn get_patch(
    c: &Connection,
    scope: &Scope,
    id: i64,
    geometry: bool,
) -> Result<Option<ChangeRecord>> {
    let mut cond = Conditions::default();
    cond.push("p.id = ?", [id.into()]);
    cond.scope(scope);
    let q = format!(
        "SELECT {PATCH_COLUMNS}, p.geometry, p.series FROM patches p{}",
        cond.sql()
    );
    let row = c
        .query_row(&q, rusqlite::params_from_iter(cond.params.iter()), |r| {
            Ok((
                patch_row(r)?,
                r.get::<_, String>(29)?,
                r.get::<_, Option<String>>(30)?,
            ))
        })
        .optional()
        .map_err(sql("reading a patch"))?;
    let Some((row, geom, series)) = row else {
        return Ok(None);
    };
    let mut rec = patch_record(row)?;
    if geometry {
        rec.geometry = Some(
            serde_json::from_str(&geom).map_err(|e| corrupt("patches.geometry")(e.to_string()))?,
        );
        rec.series = series
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|e| corrupt("patches.series")(e.to_string()))?;
    }
    Ok(Some(rec))
}

fn insert_patches(tx: &Transaction<'_>, batch: i64, patches: &[NewPatch]) -> Result<usize> {
    let mut ins = tx
        .prepare(
            "INSERT INTO patches (batch_id, reference, kind, status, area_m2, area_mu, parcel, pbf,
               county_code, township_code, village_code, group_code, location_code,
               county_name, township_name, village_name, group_name,
               class_before, class_after, dates, confidence, model_version, evidence, geometry,
               min_x, min_y, max_x, max_y, series)
             VALUES (?1, ?2, ?3, 'open', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                     ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)",
        )
        .map_err(sql("preparing the patch insert"))?;
    let mut bbox = tx
        .prepare(
            "INSERT INTO patch_bbox (id, min_x, max_x, min_y, max_y) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(sql("preparing the bbox insert"))?;
    for p in patches {
        let dates =
            serde_json::to_string(&p.dates).map_err(|e| corrupt("patch dates")(e.to_string()))?;
        let series = p
            .series
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| corrupt("patch series")(e.to_string()))?;
        let a = &p.admin;
        ins.execute(params![
            batch,
            p.reference,
            p.kind,
            p.area_m2,
            p.area_mu,
            p.parcel,
            p.pbf,
            a.county_code,
            a.township_code,
            a.village_code,
            a.group_code,
            a.location_code,
            a.county_name,
            a.township_name,
            a.village_name,
            a.group_name,
            p.class_before,
            p.class_after,
            dates,
            p.confidence,
            p.model_version,
            p.evidence,
            p.geometry,
            p.bbox[0],
            p.bbox[1],
            p.bbox[2],
            p.bbox[3],
            series,
        ])
        .map_err(sql("inserting a patch"))?;
        let id = tx.last_insert_rowid();
        bbox.execute(params![id, p.bbox[0], p.bbox[2], p.bbox[1], p.bbox[3]])
            .map_err(sql("indexing a patch's bounding box"))?;
    }
    Ok(patches.len())
}

const VERDICT_COLUMNS: &str =
    "id, patch_id, verdict, note, from_status, to_status, token_id, actor, role, at, class_found";

fn verdict_row(r: &Row<'_>) -> rusqlite::Result<(VerdictRecord, [String; 4])> {
    Ok((
        VerdictRecord {
            id: r.get(0)?,
            patch: r.get(1)?,
            verdict: Verdict::Confirmed,
            note: r.get(3)?,
            class_found: r.get(10)?,
            from_status: PatchStatus::Open,
            to_status: PatchStatus::Open,
            token_id: r.get(6)?,
            actor: r.get(7)?,
            role: Role::Admin,
            at: r.get(9)?,
            photos: Vec::new(),
        },
        [r.get(2)?, r.get(4)?, r.get(5)?, r.get(8)?],
    ))
}

fn verdict_record(
    (mut rec, [verdict, from, to, role]): (VerdictRecord, [String; 4]),
) -> Result<VerdictRecord> {
    let status = |s: &str| {
        PatchStatus::parse(s)
            .ok_or_else(|| corrupt("verdicts status")(format!("unknown status {s:?}")))
    };
    rec.verdict = match PatchStatus::parse(&verdict) {
        Some(PatchStatus::Confirmed) => Verdict::Confirmed,
        Some(PatchStatus::FalsePositive) => Verdict::FalsePositive,
        Some(PatchStatus::Rectified) => Verdict::Rectified,
        _ => {
            return Err(corrupt("verdicts.verdict")(format!(
                "unknown verdict {verdict:?}"
            )))
        }
    };
    rec.from_status = status(&from)?;
    rec.to_status = status(&to)?;
    rec.role = parse_role(&role)?;
    Ok(rec)
}

/// The photos of verdict `verdict` (of patch `patch`), oldest first.
fn verdict_photos(c: &Connection, patch: i64, verdict: i64) -> Result<Vec<PhotoRecord>> {
    let mut st = c
        .prepare(
            "SELECT id, content_type, bytes, sha256, taken_at, lon, lat, file
             FROM verdict_photos WHERE verdict_id = ?1 ORDER BY id",
        )
        .map_err(sql("listing verdict photos"))?;
    let rows = st
        .query_map([verdict], |r| {
            let id: i64 = r.get(0)?;
            Ok(PhotoRecord {
                id,
                content_type: r.get(1)?,
                bytes: r.get(2)?,
                sha256: r.get(3)?,
                taken_at: r.get(4)?,
                lon: r.get(5)?,
                lat: r.get(6)?,
                url: format!("/api/v1/changes/{patch}/verdicts/{verdict}/photos/{id}"),
                file: r.get(7)?,
            })
        })
        .map_err(sql("listing verdict photos"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql("listing verdict photos"))?;
    Ok(rows)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_token(&self, new: NewToken) -> Result<TokenRecord> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO tokens (name, role, region, digest) VALUES (?1, ?2, ?3, ?4)",
                params![new.name, new.role.name(), new.region, new.digest],
            )
            .map_err(sql("inserting a token"))?;
            let id = c.last_insert_rowid();
            let row = c
                .query_row(
                    &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1"),
                    [id],
                    token_row,
                )
                .map_err(sql("reading a token"))?;
            token_record(row)
        })
        .await
    }

    async fn token_by_digest(&self, digest: &str) -> Result<Option<TokenRecord>> {
        let digest = digest.to_string();
        self.call(move |c| {
            c.query_row(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE digest = ?1"),
                [digest],
                token_row,
            )
            .optional()
            .map_err(sql("looking up a token"))?
            .map(token_record)
            .transpose()
        })
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        self.call(|c| {
            let mut st = c
                .prepare(&format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id"))
                .map_err(sql("listing tokens"))?;
            let rows = st
                .query_map([], token_row)
                .map_err(sql("listing tokens"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("listing tokens"))?;
            rows.into_iter().map(token_record).collect()
        })
        .await
    }

    async fn revoke_token(&self, id: i64) -> Result<bool> {
        self.call(move |c| {
            let n = c
                .execute(
                    "UPDATE tokens SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')
                     WHERE id = ?1 AND revoked_at IS NULL",
                    [id],
                )
                .map_err(sql("revoking a token"))?;
            Ok(n == 1)
        })
        .await
    }

    async fn insert_farmland(&self, new: NewFarmland) -> Result<FarmlandRecord> {
        self.call(move |c| {
            let fields = new.fields_used.to_string();
            c.execute(
                "INSERT INTO farmland (name, source, stored_path, layer, mapping, features, parcels,
                   used, repaired, rejected, area_mu, pbf_area_mu, fields_used, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    new.name,
                    new.source,
                    new.stored_path,
                    new.layer,
                    new.mapping,
                    new.features,
                    new.parcels,
                    new.used,
                    new.repaired,
                    new.rejected,
                    new.area_mu,
                    new.pbf_area_mu,
                    fields,
                    new.created_by
                ],
            )
            .map_err(sql("inserting a farmland layer"))?;
            let id = c.last_insert_rowid();
            let row = c
                .query_row(
                    &format!("SELECT {FARMLAND_COLUMNS} FROM farmland WHERE id = ?1"),
                    [id],
                    farmland_row,
                )
                .map_err(sql("reading a farmland layer"))?;
            farmland_record(row)
        })
        .await
    }

    async fn farmland(&self, id: i64) -> Result<Option<FarmlandRecord>> {
        self.call(move |c| {
            c.query_row(
                &format!("SELECT {FARMLAND_COLUMNS} FROM farmland WHERE id = ?1"),
                [id],
                farmland_row,
            )
            .optional()
            .map_err(sql("reading a farmland layer"))?
            .map(farmland_record)
            .transpose()
        })
        .await
    }

    async fn list_farmland(&self) -> Result<Vec<FarmlandRecord>> {
        self.call(|c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {FARMLAND_COLUMNS} FROM farmland ORDER BY id"
                ))
                .map_err(sql("listing farmland layers"))?;
            let rows = st
                .query_map([], farmland_row)
                .map_err(sql("listing farmland layers"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("listing farmland layers"))?;
            rows.into_iter().map(farmland_record).collect()
        })
        .await
    }

    async fn insert_admin_layer(&self, new: NewAdminLayer) -> Result<AdminLayerRecord> {
        self.call(move |c| {
            let layers = serde_json::to_string(&new.layers)
                .map_err(|e| corrupt("admin layers")(e.to_string()))?;
            c.execute(
                "INSERT INTO admin_layers (name, source, stored_path, mapping, layers, features,
                   used, rejected, units, fields_used, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    new.name,
                    new.source,
                    new.stored_path,
                    new.mapping,
                    layers,
                    new.features,
                    new.used,
                    new.rejected,
                    new.units.to_string(),
                    new.fields_used.to_string(),
                    new.created_by
                ],
            )
            .map_err(sql("inserting an admin layer"))?;
            let id = c.last_insert_rowid();
            get_admin_layer(c, id)?
                .ok_or_else(|| corrupt("admin_layers")(format!("layer {id} vanished")))
        })
        .await
    }

    async fn admin_layer(&self, id: i64) -> Result<Option<AdminLayerRecord>> {
        self.call(move |c| get_admin_layer(c, id)).await
    }

    async fn list_admin_layers(&self) -> Result<Vec<AdminLayerRecord>> {
        self.call(|c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {ADMIN_COLUMNS} FROM admin_layers ORDER BY id"
                ))
                .map_err(sql("listing admin layers"))?;
            let rows = st
                .query_map([], admin_row)
                .map_err(sql("listing admin layers"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("listing admin layers"))?;
            rows.into_iter().map(admin_record).collect()
        })
        .await
    }

    async fn store_parcels(&self, farmland: i64, parcels: Vec<NewParcel>) -> Result<()> {
        self.call(move |c| {
            let tx = c.transaction().map_err(sql("starting a transaction"))?;
            tx.execute(
                "DELETE FROM parcel_bbox WHERE rowid IN (SELECT rowid FROM parcels WHERE farmland_id = ?1)",
                [farmland],
            )
            .map_err(sql("removing parcel boxes"))?;
            tx.execute("DELETE FROM parcels WHERE farmland_id = ?1", [farmland])
                .map_err(sql("removing parcels"))?;
            {
                let mut row = tx
                    .prepare(
                        "INSERT INTO parcels (farmland_id, id, parcel, pbf, land_class, land_class_name,
                           area_mu, location_code, min_x, min_y, max_x, max_y, geometry)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    )
                    .map_err(sql("preparing the parcel insert"))?;
                let mut bbox = tx
                    .prepare(
                        "INSERT INTO parcel_bbox (rowid, min_x, max_x, min_y, max_y, farmland_id)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(sql("preparing the parcel box insert"))?;
                for (i, p) in parcels.iter().enumerate() {
                    let id = i as i64 + 1;
                    let a = &p.attributes;
                    row.execute(params![
                        farmland,
                        id,
                        a.parcel,
                        a.pbf,
                        a.land_class,
                        a.land_class_name,
                        a.area_mu,
                        a.location_code,
                        p.bbox[0],
                        p.bbox[1],
                        p.bbox[2],
                        p.bbox[3],
                        p.geometry
                    ])
                    .map_err(sql("inserting a parcel"))?;
                    let rowid = tx.last_insert_rowid();
                    bbox.execute(params![rowid, p.bbox[0], p.bbox[2], p.bbox[1], p.bbox[3], farmland])
                        .map_err(sql("inserting a parcel box"))?;
                }
            }
            let n = tx
                .execute(
                    "UPDATE farmland SET parcels_stored = 1 WHERE id = ?1",
                    [farmland],
                )
                .map_err(sql("marking the parcels stored"))?;
            if n == 0 {
                return Err(ServiceError::Invalid(format!("no farmland layer {farmland}")));
            }
            tx.commit().map_err(sql("committing the parcels"))
        })
        .await
    }

    async fn parcels_stored(&self, farmland: i64) -> Result<bool> {
        self.call(move |c| {
            let stored: Option<bool> = c
                .query_row(
                    "SELECT parcels_stored FROM farmland WHERE id = ?1",
                    [farmland],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql("reading whether parcels are stored"))?;
            Ok(stored.unwrap_or(false))
        })
        .await
    }

    async fn parcels_in(
        &self,
        farmland: i64,
        scope: &Scope,
        bbox: [f64; 4],
        limit: usize,
    ) -> Result<ParcelPage> {
        let scope = scope.clone();
        self.call(move |c| {
            // The R*Tree (single precision, rounded outwards) finds the candidates; the
            // exact boxes decide.
            let mut cond = String::from(
                "p.rowid IN (SELECT rowid FROM parcel_bbox WHERE max_x >= ?1 AND min_x <= ?2
                   AND max_y >= ?3 AND min_y <= ?4 AND farmland_id = ?5)
                 AND p.farmland_id = ?5
                 AND p.max_x >= ?1 AND p.min_x <= ?2 AND p.max_y >= ?3 AND p.min_y <= ?4",
            );
            let mut values: Vec<rusqlite::types::Value> = vec![
                bbox[0].into(),
                bbox[2].into(),
                bbox[1].into(),
                bbox[3].into(),
                farmland.into(),
            ];
            if let Scope::Region(code) = &scope {
                cond.push_str(" AND p.location_code >= ?6 AND p.location_code < ?7");
                values.push(code.clone().into());
                values.push(prefix_end(code).into());
            }
            let total: i64 = c
                .query_row(
                    &format!("SELECT count(*) FROM parcels p WHERE {cond}"),
                    rusqlite::params_from_iter(values.iter()),
                    |r| r.get(0),
                )
                .map_err(sql("counting parcels"))?;
            let mut st = c
                .prepare(&format!(
                    "SELECT p.id, p.parcel, p.pbf, p.land_class, p.land_class_name, p.area_mu,
                       p.location_code, p.geometry
                     FROM parcels p WHERE {cond} ORDER BY p.id LIMIT {limit}"
                ))
                .map_err(sql("listing parcels"))?;
            let rows = st
                .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                    Ok((
                        ParcelRecord {
                            id: r.get(0)?,
                            attributes: ParcelAttributes {
                                parcel: r.get(1)?,
                                pbf: r.get(2)?,
                                land_class: r.get(3)?,
                                land_class_name: r.get(4)?,
                                area_mu: r.get(5)?,
                                location_code: r.get(6)?,
                            },
                            geometry: serde_json::Value::Null,
                        },
                        r.get::<_, String>(7)?,
                    ))
                })
                .map_err(sql("listing parcels"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("listing parcels"))?;
            let items = rows
                .into_iter()
                .map(|(mut rec, geometry)| {
                    rec.geometry = serde_json::from_str(&geometry)
                        .map_err(|e| corrupt("parcels.geometry")(e.to_string()))?;
                    Ok(rec)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(ParcelPage { items, total })
        })
        .await
    }

    async fn create_batch(&self, new: NewBatch) -> Result<BatchCreated> {
        self.call(move |c| {
            let tx = c.transaction().map_err(sql("starting a transaction"))?;
            if let Some((key, digest)) = &new.idempotency {
                let seen: Option<(i64, Option<String>)> = tx
                    .query_row(
                        "SELECT id, request_digest FROM batches WHERE created_by = ?1 AND idempotency_key = ?2",
                        params![new.created_by, key],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(sql("looking up an idempotency key"))?;
                if let Some((id, seen_digest)) = seen {
                    if seen_digest.as_deref() != Some(digest.as_str()) {
                        return Ok(BatchCreated::KeyReused);
                    }
                    return match get_batch(&tx, id)? {
                        Some(b) => Ok(BatchCreated::Replayed(b)),
                        None => Err(corrupt("batches")(format!("batch {id} has no job"))),
                    };
                }
            }
            let scenes = serde_json::to_string(&new.scenes)
                .map_err(|e| corrupt("batch scenes")(e.to_string()))?;
            let options = serde_json::to_string(&new.options)
                .map_err(|e| corrupt("batch options")(e.to_string()))?;
            let (key, digest) = match &new.idempotency {
                Some((k, d)) => (Some(k.clone()), Some(d.clone())),
                None => (None, None),
            };
            tx.execute(
                "INSERT INTO batches (name, farmland_id, scenes, created_by, idempotency_key, request_digest, options)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![new.name, new.farmland, scenes, new.created_by, key, digest, options],
            )
            .map_err(sql("inserting a batch"))?;
            let id = tx.last_insert_rowid();
            tx.execute("INSERT INTO jobs (batch_id, status) VALUES (?1, 'queued')", [id])
                .map_err(sql("queueing a job"))?;
            let rec = get_batch(&tx, id)?
                .ok_or_else(|| corrupt("batches")(format!("batch {id} vanished")))?;
            tx.commit().map_err(sql("committing a batch"))?;
            Ok(BatchCreated::New(rec))
        })
        .await
    }

    async fn batch(&self, id: i64) -> Result<Option<BatchRecord>> {
        self.call(move |c| get_batch(c, id)).await
    }

    async fn list_batches(&self) -> Result<Vec<BatchRecord>> {
        self.call(|c| {
            let mut st = c
                .prepare(&format!("{BATCH_SELECT} ORDER BY b.id"))
                .map_err(sql("listing batches"))?;
            let rows = st
                .query_map([], batch_row)
                .map_err(sql("listing batches"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("listing batches"))?;
            rows.into_iter().map(batch_record).collect()
        })
        .await
    }

    async fn cancel_batch(&self, id: i64) -> Result<CancelOutcome> {
        self.call(move |c| {
            let tx = c.transaction().map_err(sql("starting a transaction"))?;
            let Some(b) = get_batch(&tx, id)? else {
                return Ok(CancelOutcome::NotFound);
            };
            let outcome = match b.status {
                JobStatus::Queued => {
                    tx.execute(
                        "UPDATE jobs SET status = 'cancelled', stage = 'cancelled',
                           finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE batch_id = ?1",
                        [id],
                    )
                    .map_err(sql("cancelling a job"))?;
                    CancelOutcome::Cancelled(get_batch(&tx, id)?.unwrap_or(b))
                }
                JobStatus::Running => {
                    tx.execute(
                        "UPDATE jobs SET cancel_requested = 1 WHERE batch_id = ?1",
                        [id],
                    )
                    .map_err(sql("requesting a cancellation"))?;
                    CancelOutcome::Requested(get_batch(&tx, id)?.unwrap_or(b))
                }
                _ => CancelOutcome::AlreadyFinished(b),
            };
            tx.commit().map_err(sql("committing a cancellation"))?;
            Ok(outcome)
        })
        .await
    }

    async fn claim_job(&self) -> Result<Option<BatchRecord>> {
        self.call(|c| {
            let tx = c.transaction().map_err(sql("starting a transaction"))?;
            let id: Option<i64> = tx
                .query_row(
                    "SELECT batch_id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql("finding a queued job"))?;
            let Some(id) = id else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE jobs SET status = 'running', stage = 'starting', attempts = attempts + 1,
                   tiles_done = 0, tiles_total = 0,
                   started_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE batch_id = ?1",
                [id],
            )
            .map_err(sql("claiming a job"))?;
            let rec = get_batch(&tx, id)?;
            tx.commit().map_err(sql("committing a claim"))?;
            Ok(rec)
        })
        .await
    }

    async fn update_progress(&self, id: i64, progress: Progress) -> Result<()> {
        self.call(move |c| {
            c.execute(
                "UPDATE jobs SET stage = ?2, tiles_done = ?3, tiles_total = ?4
                 WHERE batch_id = ?1 AND status = 'running'",
                params![
                    id,
                    progress.stage,
                    i64::try_from(progress.tiles_done).unwrap_or(i64::MAX),
                    i64::try_from(progress.tiles_total).unwrap_or(i64::MAX)
                ],
            )
            .map_err(sql("storing progress"))?;
            Ok(())
        })
        .await
    }

    async fn finish_job(&self, id: i64, outcome: JobOutcome) -> Result<BatchRecord> {
        self.call(move |c| {
            let tx = c.transaction().map_err(sql("starting a transaction"))?;
            match &outcome {
                JobOutcome::Done(patches) => {
                    let n = insert_patches(&tx, id, patches)?;
                    tx.execute(
                        "UPDATE jobs SET status = 'done', stage = 'done', patches = ?2,
                           finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE batch_id = ?1",
                        params![id, n as i64],
                    )
                    .map_err(sql("finishing a job"))?;
                }
                JobOutcome::Failed(reason) => {
                    tx.execute(
                        "UPDATE jobs SET status = 'failed', stage = 'failed', error = ?2,
                           finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE batch_id = ?1",
                        params![id, reason],
                    )
                    .map_err(sql("failing a job"))?;
                }
                JobOutcome::Cancelled => {
                    tx.execute(
                        "UPDATE jobs SET status = 'cancelled', stage = 'cancelled',
                           finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE batch_id = ?1",
                        [id],
                    )
                    .map_err(sql("cancelling a job"))?;
                }
            }
            let rec = get_batch(&tx, id)?
                .ok_or_else(|| corrupt("batches")(format!("batch {id} vanished")))?;
            tx.commit().map_err(sql("committing a finished job"))?;
            Ok(rec)
        })
        .await
    }

    async fn release_job(&self, id: i64) -> Result<bool> {
        self.call(move |c| {
            c.execute(
                "UPDATE jobs SET status = 'queued', stage = 'interrupted'
                 WHERE batch_id = ?1 AND status = 'running'",
                [id],
            )
            .map(|n| n > 0)
            .map_err(sql("releasing a job"))
        })
        .await
    }

    async fn requeue_running(&self) -> Result<usize> {
        self.call(|c| {
            c.execute(
                "UPDATE jobs SET status = 'queued', stage = 'queued', tiles_done = 0, tiles_total = 0
                 WHERE status = 'running'",
                [],
            )
            .map_err(sql("requeueing running jobs"))
        })
        .await
    }

    async fn list_changes(&self, scope: &Scope, filter: &ChangeFilter) -> Result<ChangePage> {
        let scope = scope.clone();
        let f = filter.clone();
        self.call(move |c| {
            let mut cond = Conditions::default();
            cond.scope(&scope);
            if let Some(b) = f.batch {
                cond.push("p.batch_id = ?", [b.into()]);
            }
            if let Some(k) = &f.kind {
                cond.push("p.kind = ?", [k.clone().into()]);
            }
            if let Some(s) = f.status {
                cond.push("p.status = ?", [s.name().to_string().into()]);
            }
            if let Some(r) = &f.region {
                cond.prefix(r);
            }
            if let Some(m) = f.min_mu {
                cond.push("p.area_mu >= ?", [m.into()]);
            }
            if let Some(pbf) = f.pbf {
                cond.push("p.pbf = ?", [i64::from(pbf).into()]);
            }
            if let Some(d) = &f.from {
                cond.push("substr(p.created_at, 1, 10) >= ?", [d.clone().into()]);
            }
            if let Some(d) = &f.to {
                cond.push("substr(p.created_at, 1, 10) <= ?", [d.clone().into()]);
            }
            if let Some([x0, y0, x1, y1]) = f.bbox {
                // The R*Tree finds candidates (its boxes are rounded outwards to 32-bit
                // floats); the stored boxes decide exactly.
                cond.push(
                    "p.id IN (SELECT id FROM patch_bbox WHERE max_x >= ? AND min_x <= ? AND max_y >= ? AND min_y <= ?)
                     AND p.max_x >= ? AND p.min_x <= ? AND p.max_y >= ? AND p.min_y <= ?",
                    [x0.into(), x1.into(), y0.into(), y1.into(), x0.into(), x1.into(), y0.into(), y1.into()],
                );
            }
            let total: i64 = c
                .query_row(
                    &format!("SELECT count(*) FROM patches p{}", cond.sql()),
                    rusqlite::params_from_iter(cond.params.iter()),
                    |r| r.get(0),
                )
                .map_err(sql("counting patches"))?;
            let (order, after) = f.sort.keyset(f.after)?;
            if let Some((clause, values)) = after {
                cond.push(
                    &clause,
                    values.into_iter().map(|v| match v {
                        KeyValue::Id(id) => id.into(),
                        KeyValue::Key(k) => k.into(),
                    }),
                );
            }
            let limit = i64::from(f.limit.max(1));
            let q = format!(
                "SELECT {PATCH_COLUMNS}, {} FROM patches p{} ORDER BY {order} LIMIT {}",
                if f.geometry { "p.geometry" } else { "NULL" },
                cond.sql(),
                limit + 1
            );
            let mut st = c.prepare(&q).map_err(sql("listing patches"))?;
            let rows = st
                .query_map(rusqlite::params_from_iter(cond.params.iter()), |r| {
                    Ok((patch_row(r)?, r.get::<_, Option<String>>(29)?))
                })
                .map_err(sql("listing patches"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("listing patches"))?;
            let mut items = rows
                .into_iter()
                .map(|(row, geom)| {
                    let mut rec = patch_record(row)?;
                    if let Some(g) = geom {
                        rec.geometry = Some(serde_json::from_str(&g).map_err(|e| {
                            corrupt("patches.geometry")(e.to_string())
                        })?);
                    }
                    Ok(rec)
                })
                .collect::<Result<Vec<_>>>()?;
            let more = items.len() as i64 > limit;
            items.truncate(limit as usize);
            let next_after = if more {
                items.last().map(|p| f.sort.cursor_after(p))
            } else {
                None
            };
            Ok(ChangePage {
                items,
                next_after,
                total,
            })
        })
        .await
    }

    async fn change(&self, scope: &Scope, id: i64) -> Result<Option<ChangeRecord>> {
        let scope = scope.clone();
        self.call(move |c| get_patch(c, &scope, id, true)).await
    }

    async fn record_verdict(
        &self,
        scope: &Scope,
        patch: i64,
        verdict: NewVerdict,
    ) -> Result<Option<(ChangeRecord, VerdictRecord)>> {
        let scope = scope.clone();
        self.call(move |c| {
            let tx = c.transaction().map_err(sql("starting a transaction"))?;
            let Some(before) = get_patch(&tx, &scope, patch, false)? else {
                return Ok(None);
            };
            let to = verdict.verdict.status();
            tx.execute(
                "INSERT INTO verdicts (patch_id, verdict, note, from_status, to_status, token_id, actor, role, class_found)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    patch,
                    to.name(),
                    verdict.note,
                    before.status.name(),
                    to.name(),
                    verdict.token_id,
                    verdict.actor,
                    verdict.role.name(),
                    verdict.class_found
                ],
            )
            .map_err(sql("appending a verdict"))?;
            let vid = tx.last_insert_rowid();
            for p in &verdict.photos {
                tx.execute(
                    "INSERT INTO verdict_photos (verdict_id, file, content_type, bytes, sha256, taken_at, lon, lat)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![vid, p.file, p.content_type, p.bytes, p.sha256, p.taken_at, p.lon, p.lat],
                )
                .map_err(sql("keeping a verdict photo"))?;
            }
            tx.execute(
                "UPDATE patches SET status = ?2, class_found = ?3 WHERE id = ?1",
                params![patch, to.name(), verdict.class_found],
            )
            .map_err(sql("setting a patch's status"))?;
            let v = tx
                .query_row(
                    &format!("SELECT {VERDICT_COLUMNS} FROM verdicts WHERE id = ?1"),
                    [vid],
                    verdict_row,
                )
                .map_err(sql("reading a verdict"))?;
            let mut v = verdict_record(v)?;
            v.photos = verdict_photos(&tx, patch, vid)?;
            let after = get_patch(&tx, &Scope::All, patch, false)?
                .ok_or_else(|| corrupt("patches")(format!("patch {patch} vanished")))?;
            tx.commit().map_err(sql("committing a verdict"))?;
            Ok(Some((after, v)))
        })
        .await
    }

    async fn verdicts(&self, scope: &Scope, patch: i64) -> Result<Vec<VerdictRecord>> {
        let scope = scope.clone();
        self.call(move |c| {
            if get_patch(c, &scope, patch, false)?.is_none() {
                return Ok(Vec::new());
            }
            let mut st = c
                .prepare(&format!(
                    "SELECT {VERDICT_COLUMNS} FROM verdicts WHERE patch_id = ?1 ORDER BY id"
                ))
                .map_err(sql("listing verdicts"))?;
            let rows = st
                .query_map([patch], verdict_row)
                .map_err(sql("listing verdicts"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("listing verdicts"))?;
            rows.into_iter()
                .map(|row| {
                    let mut v = verdict_record(row)?;
                    v.photos = verdict_photos(c, patch, v.id)?;
                    Ok(v)
                })
                .collect()
        })
        .await
    }
    async fn stats(&self, scope: &Scope, filter: &StatsFilter) -> Result<Vec<StatsRow>> {
        let scope = scope.clone();
        let f = filter.clone();
        self.call(move |c| {
            // The level names a column; never text from the request.
            let col = match f.level {
                AdminLevel::County => "county",
                AdminLevel::Township => "township",
                AdminLevel::Village => "village",
                AdminLevel::Group => "group",
            };
            let from = f.from.clone().unwrap_or_else(|| "0000-01-01".into());
            let to = f.to.clone().unwrap_or_else(|| "9999-12-31".into());
            let mut params: Vec<rusqlite::types::Value> =
                vec![from.clone().into(), to.clone().into(), from.into(), to.into()];
            let mut cond = Conditions::default();
            cond.scope(&scope);
            if let Some(b) = f.batch {
                cond.push("p.batch_id = ?", [b.into()]);
            }
            if let Some(r) = &f.region {
                cond.prefix(r);
            }
            params.extend(cond.params.iter().cloned());
            let q = format!(
                "SELECT q.code, max(q.name), q.kind, q.status,
                        sum(q.found), total(CASE WHEN q.found THEN q.area_mu END),
                        sum(q.restored), total(CASE WHEN q.restored THEN q.area_mu END)
                 FROM (SELECT p.{col}_code AS code, p.{col}_name AS name, p.kind, p.status, p.area_mu,
                         (substr(p.created_at, 1, 10) BETWEEN ? AND ?) AS found,
                         (p.status = 'rectified' AND EXISTS (
                            SELECT 1 FROM verdicts v WHERE v.patch_id = p.id
                              AND v.to_status = 'rectified'
                              AND substr(v.at, 1, 10) BETWEEN ? AND ?)) AS restored
                       FROM patches p{}) q
                 WHERE q.found OR q.restored
                 GROUP BY q.code, q.kind, q.status
                 ORDER BY q.code, q.kind, q.status",
                cond.sql()
            );
            let mut st = c.prepare(&q).map_err(sql("grouping patches"))?;
            let rows = st
                .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, f64>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, f64>(7)?,
                    ))
                })
                .map_err(sql("grouping patches"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("grouping patches"))?;
            rows.into_iter()
                .map(
                    |(code, name, kind, status, found, found_mu, restored, restored_mu)| {
                        Ok(StatsRow {
                            code,
                            name,
                            kind,
                            status: PatchStatus::parse(&status).ok_or_else(|| {
                                corrupt("patches.status")(format!("unknown status {status:?}"))
                            })?,
                            found,
                            found_mu,
                            restored,
                            restored_mu,
                        })
                    },
                )
                .collect()
        })
        .await
    }

    async fn job_summary(&self) -> Result<JobSummary> {
        self.call(|c| {
            let mut st = c
                .prepare("SELECT status, count(*), total(tiles_done) FROM jobs GROUP BY status")
                .map_err(sql("counting jobs"))?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, f64>(2)?,
                    ))
                })
                .map_err(sql("counting jobs"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("counting jobs"))?;
            let mut summary = JobSummary::of_counts(rows)?;
            let mut st = c
                .prepare(
                    "SELECT batch_id, tiles_done, tiles_total,
                            (julianday('now') - julianday(started_at)) * 86400.0
                     FROM jobs WHERE status = 'running' ORDER BY batch_id",
                )
                .map_err(sql("listing running jobs"))?;
            summary.running = st
                .query_map([], |r| {
                    Ok(RunningJob {
                        batch: r.get(0)?,
                        tiles_done: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        tiles_total: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        elapsed_s: r.get::<_, Option<f64>>(3)?.unwrap_or(0.0),
                    })
                })
                .map_err(sql("listing running jobs"))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql("listing running jobs"))?;
            Ok(summary)
        })
        .await
    }

    async fn create_training_job(
        &self,
        request: serde_json::Value,
        epochs: u64,
        created_by: i64,
    ) -> Result<TrainingJobRecord> {
        self.call(move |c| super::sqlite_training::create(c, &request, epochs, created_by))
            .await
    }

    async fn training_job(&self, id: i64) -> Result<Option<TrainingJobRecord>> {
        self.call(move |c| super::sqlite_training::get(c, id)).await
    }

    async fn list_training_jobs(&self) -> Result<Vec<TrainingJobRecord>> {
        self.call(super::sqlite_training::list).await
    }

    async fn claim_training_job(&self) -> Result<Option<TrainingJobRecord>> {
        self.call(super::sqlite_training::claim).await
    }

    async fn update_training_progress(&self, id: i64, stage: String, epoch: u64) -> Result<()> {
        self.call(move |c| super::sqlite_training::progress(c, id, &stage, epoch))
            .await
    }

    async fn finish_training_job(
        &self,
        id: i64,
        outcome: TrainingOutcome,
    ) -> Result<TrainingJobRecord> {
        self.call(move |c| super::sqlite_training::finish(c, id, &outcome))
            .await
    }

    async fn cancel_training_job(&self, id: i64) -> Result<TrainingCancel> {
        self.call(move |c| super::sqlite_training::cancel(c, id))
            .await
    }

    async fn requeue_running_training(&self) -> Result<usize> {
        self.call(super::sqlite_training::requeue).await
    }
}
