//! The shared store: PostgreSQL 15+ with PostGIS 3 (`gengdi serve --database postgres://…`),
//! for a centre that runs several servers or workers against one database.
//!
//! tokio-postgres under a deadpool pool, over TLS as libpq's `sslmode` / `sslrootcert` say
//! ([`tls`]: rustls); statements are plain SQL with numbered parameters, as in the SQLite store,
//! and the records read back are the same, so the API behaves alike on both (the API tests
//! run against each, see `scripts/test.sh`). The schema is [`super::schema`], the same
//! definitions as the embedded store's rendered for PostgreSQL; its
//! migrations run under an advisory lock, so servers starting together migrate once.
//!
//! Jobs are claimed with `FOR UPDATE SKIP LOCKED`: two servers on one database never take
//! the same batch.

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{GenericClient, Row};

mod models;
mod queue;
pub mod tls;

use super::sqlite::corrupt;
use super::*;
use crate::auth::{Role, Scope};
use crate::error::{Result, ServiceError};

/// A parameter of a statement built at run time.
type Param = Box<dyn ToSql + Sync + Send>;

/// The PostgreSQL/PostGIS store.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The URL it was opened with (password included: never for messages).
    url: String,
    /// The URL without its password, for messages.
    display: String,
    /// This process, as the holder of the jobs and training jobs it runs (random).
    owner: String,
}

/// A running job or training job whose server has not renewed its heartbeat for this long
/// (it beats every [`crate::jobs::JOB_HEARTBEAT_S`]) is queued again by another server.
pub const JOB_STALE_S: f64 = 60.0;

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.display)
            .finish()
    }
}

/// Wrap a tokio-postgres error with what the statement was for. A lost or refused
/// connection is [`ServiceError::StoreUnavailable`] (HTTP 503), anything else
/// [`ServiceError::Postgres`].
pub(crate) fn pg(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> ServiceError {
    move |source| {
        let io = std::error::Error::source(&source).is_some_and(|s| s.is::<std::io::Error>());
        if source.is_closed() || io {
            ServiceError::StoreUnavailable(format!("{context}: {source}"))
        } else {
            // tokio-postgres prints a server error as "db error"; the server's words are in it.
            let message = match source.as_db_error() {
                Some(db) => {
                    let mut m = format!("{} (SQLSTATE {})", db.message(), db.code().code());
                    if let Some(detail) = db.detail() {
                        m.push_str(&format!(": {detail}"));
                    }
                    m
                }
                None => source.to_string(),
            };
            ServiceError::Postgres {
                context,
                message,
                source,
            }
        }
    }
}

/// `e` and the errors under it (a failed TLS handshake says why only there), each once.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// `url` with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    // postgres://user:password@host/db
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = creds.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

/// Read column `i` of `r` as `T`; a value of another type is a corrupt store, not a panic.
fn col<'a, T: FromSql<'a>>(r: &'a Row, i: usize, what: &'static str) -> Result<T> {
    r.try_get(i)
        .map_err(|e| corrupt(what)(format!("column {i}: {e}")))
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

impl PgStore {
    /// Connect to `url` (`postgres://user:password@host:port/db`, or key=value form), check
    /// that PostGIS is there (creating the extension when the role may) and bring the schema
    /// up to date.
    pub async fn connect(url: &str) -> Result<PgStore> {
        let display = redact_url(url);
        let open_err = |reason: String| ServiceError::StoreOpen {
            path: display.clone().into(),
            reason,
        };
        let (theirs, tls_settings) = tls::split(url).map_err(&open_err)?;
        let mut config = tokio_postgres::Config::from_str(&theirs)
            .map_err(|e| open_err(format!("not a PostgreSQL connection URL: {e}")))?;
        tls::check_hosts(&mut config, &tls_settings).map_err(&open_err)?;
        let manager = Manager::from_config(
            config,
            tls::connector(&tls_settings).map_err(&open_err)?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(10)))
            .wait_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| open_err(e.to_string()))?;
        let mut owner = [0u8; 16];
        getrandom::fill(&mut owner).map_err(|e| ServiceError::Random(e.to_string()))?;
        let store = PgStore {
            pool,
            url: url.to_string(),
            display: display.clone(),
            owner: hex::encode(owner),
        };
        let mut client = store
            .pool
            .get()
            .await
            .map_err(|e| open_err(format!("cannot connect: {}", with_causes(&e))))?;
        migrate(&mut client)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        drop(client);
        Ok(store)
    }

    /// The URL it was opened with, password included (to open another pool on the same
    /// database; never for messages: see [`PgStore::display`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database, password redacted.
    pub fn display(&self) -> &str {
        &self.display
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| ServiceError::StoreUnavailable(format!("{}: {e}", self.display)))
    }

    /// The row `sql` selects (at most one), read by `record`.
    async fn one<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        context: &'static str,
        record: fn(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        let c = self.client().await?;
        c.query_opt(sql, params)
            .await
            .map_err(pg(context))?
            .map(|r| record(&r))
            .transpose()
    }

    /// Every row `sql` selects, read by `record`.
    async fn all<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        context: &'static str,
        record: fn(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let c = self.client().await?;
        c.query(sql, params)
            .await
            .map_err(pg(context))?
            .iter()
            .map(record)
            .collect()
    }

    /// The schema version applied.
    pub async fn schema_version(&self) -> Result<i64> {
        let c = self.client().await?;
        let r = c
            .query_one("SELECT version FROM schema_version", &[])
            .await
            .map_err(pg("reading the schema version"))?;
        col(&r, 0, "schema_version")
    }

    /// Run a statement directly (tests use it to show what the schema refuses).
    pub async fn execute_raw(&self, statement: String) -> Result<u64> {
        let c = self.client().await?;
        c.execute(statement.as_str(), &[])
            .await
            .map_err(pg("raw statement"))
    }
}

async fn migrate(client: &mut deadpool_postgres::Object) -> Result<()> {
    let tx = client
        .transaction()
        .await
        .map_err(pg("starting the migration"))?;
    // One migrating process at a time (servers and workers may start together).
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7140731626412300001);
         CREATE EXTENSION IF NOT EXISTS postgis;
         CREATE TABLE IF NOT EXISTS schema_version (version bigint NOT NULL);
         INSERT INTO schema_version (version)
           SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);",
    )
    .await
    .map_err(pg("preparing the schema (is PostGIS installed?)"))?;
    let current: i64 = col(
        &tx.query_one("SELECT version FROM schema_version", &[])
            .await
            .map_err(pg("reading the schema version"))?,
        0,
        "schema_version",
    )?;
    let latest = super::schema::MIGRATIONS.len() as i64;
    if current > latest {
        return Err(ServiceError::Invalid(format!(
            "the database's schema is version {current}, newer than this gengdi's {latest}: \
             run the newer gengdi"
        )));
    }
    for (i, m) in super::schema::MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= current {
            continue;
        }
        tx.batch_execute(&super::schema::render(m, super::schema::Backend::Postgres))
            .await
            .map_err(pg("applying a schema migration"))?;
        tx.execute("UPDATE schema_version SET version = $1", &[&version])
            .await
            .map_err(pg("recording the schema version"))?;
        tracing::info!("store: schema migrated to version {version}");
    }
    tx.commit().await.map_err(pg("committing the migration"))
}

/// SQL conditions and their parameters built together; clauses are written with `?` and
/// numbered `$n` as they are pushed.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Conditions {
    fn push(&mut self, clause: &str, values: Vec<Param>) {
        let mut out = String::with_capacity(clause.len() + 8);
        let mut n = self.params.len();
        for ch in clause.chars() {
            if ch == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(ch);
            }
        }
        debug_assert_eq!(n, self.params.len() + values.len());
        self.clauses.push(out);
        self.params.extend(values);
    }

    /// A parameter outside the WHERE clause (LIMIT, a select-list value): its placeholder.
    fn bind(&mut self, value: Param) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    fn scope(&mut self, scope: &Scope) {
        if let Scope::Region(code) = scope {
            self.prefix(code);
        }
    }

    /// Rows whose location code starts with `prefix` (a range on the `COLLATE "C"` column,
    /// which its index serves).
    fn prefix(&mut self, prefix: &str) {
        self.push(
            "(p.location_code >= ? AND p.location_code < ?)",
            vec![
                Box::new(prefix.to_string()),
                Box::new(super::sqlite::prefix_end(prefix)),
            ],
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

fn parse_role(s: &str) -> Result<Role> {
    s.parse()
        .map_err(|_| corrupt("tokens.role")(format!("unknown role {s:?}")))
}

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &'static str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what)(e.to_string()))
}

fn to_json<T: Serialize>(value: &T, what: &'static str) -> Result<String> {
    serde_json::to_string(value).map_err(|e| corrupt(what)(e.to_string()))
}

// ---- tokens ----

const TOKEN_COLUMNS: &str =
    "id, name, role, region, gengdi_iso(created_at), gengdi_iso(revoked_at)";

fn token_record(r: &Row) -> Result<TokenRecord> {
    let w = "tokens";
    Ok(TokenRecord {
        id: col(r, 0, w)?,
        name: col(r, 1, w)?,
        role: parse_role(&col::<String>(r, 2, w)?)?,
        region: col(r, 3, w)?,
        created_at: col(r, 4, w)?,
        revoked_at: col(r, 5, w)?,
    })
}

// ---- farmland ----

const FARMLAND_COLUMNS: &str = "id, name, source, stored_path, layer, mapping, features, parcels, used, repaired, rejected, area_mu, pbf_area_mu, fields_used, gengdi_iso(created_at)";

fn farmland_record(r: &Row) -> Result<FarmlandRecord> {
    let w = "farmland";
    Ok(FarmlandRecord {
        id: col(r, 0, w)?,
        name: col(r, 1, w)?,
        source: col(r, 2, w)?,
        stored_path: col(r, 3, w)?,
        layer: col(r, 4, w)?,
        mapping: col(r, 5, w)?,
        features: col(r, 6, w)?,
        parcels: col(r, 7, w)?,
        used: col(r, 8, w)?,
        repaired: col(r, 9, w)?,
        rejected: col(r, 10, w)?,
        area_mu: col(r, 11, w)?,
        pbf_area_mu: col(r, 12, w)?,
        fields_used: json(&col::<String>(r, 13, w)?, "farmland.fields_used")?,
        created_at: col(r, 14, w)?,
    })
}

// ---- administrative-boundary layers ----

const ADMIN_COLUMNS: &str = "id, name, source, stored_path, mapping, layers, features, used, rejected, units, fields_used, gengdi_iso(created_at)";

fn admin_record(r: &Row) -> Result<AdminLayerRecord> {
    let w = "admin_layers";
    Ok(AdminLayerRecord {
        id: col(r, 0, w)?,
        name: col(r, 1, w)?,
        source: col(r, 2, w)?,
        stored_path: col(r, 3, w)?,
        mapping: col(r, 4, w)?,
        layers: json(&col::<String>(r, 5, w)?, "admin_layers.layers")?,
        features: col(r, 6, w)?,
        used: col(r, 7, w)?,
        rejected: col(r, 8, w)?,
        units: json(&col::<String>(r, 9, w)?, "admin_layers.units")?,
        fields_used: json(&col::<String>(r, 10, w)?, "admin_layers.fields_used")?,
        created_at: col(r, 11, w)?,
    })
}

async fn get_admin_layer<C: GenericClient + Sync>(
    c: &C,
    id: i64,
) -> Result<Option<AdminLayerRecord>> {
    c.query_opt(
        &format!("SELECT {ADMIN_COLUMNS} FROM admin_layers WHERE id = $1"),
        &[&id],
    )
    .await
    .map_err(pg("reading an admin layer"))?
    .map(|r| admin_record(&r))
    .transpose()
}

// ---- batches / jobs ----

const BATCH_SELECT: &str = "SELECT b.id, b.name, b.farmland_id, b.scenes, j.status, j.stage, j.tiles_done, j.tiles_total, j.error, j.cancel_requested, j.patches, j.attempts, gengdi_iso(b.created_at), gengdi_iso(j.started_at), gengdi_iso(j.finished_at), b.options FROM batches b JOIN jobs j ON j.batch_id = b.id";

fn batch_record(r: &Row) -> Result<BatchRecord> {
    let w = "batches";
    let status: String = col(r, 4, w)?;
    Ok(BatchRecord {
        id: col(r, 0, w)?,
        name: col(r, 1, w)?,
        farmland: col(r, 2, w)?,
        scenes: json(&col::<String>(r, 3, w)?, "batches.scenes")?,
        options: json(&col::<String>(r, 15, w)?, "batches.options")?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| corrupt("jobs.status")(format!("unknown status {status:?}")))?,
        progress: Progress {
            stage: col(r, 5, w)?,
            tiles_done: u64::try_from(col::<i64>(r, 6, w)?).unwrap_or(0),
            tiles_total: u64::try_from(col::<i64>(r, 7, w)?).unwrap_or(0),
        },
        error: col(r, 8, w)?,
        cancel_requested: col(r, 9, w)?,
        patches: col(r, 10, w)?,
        attempts: col(r, 11, w)?,
        created_at: col(r, 12, w)?,
        started_at: col(r, 13, w)?,
        finished_at: col(r, 14, w)?,
    })
}

async fn get_batch<C: GenericClient + Sync>(c: &C, id: i64) -> Result<Option<BatchRecord>> {
    c.query_opt(&format!("{BATCH_SELECT} WHERE b.id = $1"), &[&id])
        .await
        .map_err(pg("reading a batch"))?
        .map(|r| batch_record(&r))
        .transpose()
}

// ---- patches ----

const PATCH_COLUMNS: &str = "p.id, p.batch_id, p.reference, p.kind, p.status, p.area_m2, p.area_mu, p.parcel, p.pbf, p.county_code, p.township_code, p.village_code, p.group_code, p.location_code, p.county_name, p.township_name, p.village_name, p.group_name, p.class_before, p.class_after, p.dates, p.confidence, p.model_version, p.evidence, p.min_x, p.min_y, p.max_x, p.max_y, p.class_found";

/// A patch row; `geometry` (column 29) and `series` (30) are read when present.
fn patch_record(r: &Row) -> Result<ChangeRecord> {
    let w = "patches";
    let status: String = col(r, 4, w)?;
    let geometry: Option<String> = if r.len() > 29 { col(r, 29, w)? } else { None };
    let series: Option<String> = if r.len() > 30 { col(r, 30, w)? } else { None };
    Ok(ChangeRecord {
        id: col(r, 0, w)?,
        batch: col(r, 1, w)?,
        reference: col(r, 2, w)?,
        kind: col(r, 3, w)?,
        status: PatchStatus::parse(&status)
            .ok_or_else(|| corrupt("patches.status")(format!("unknown status {status:?}")))?,
        class_found: col(r, 28, w)?,
        area_m2: col(r, 5, w)?,
        area_mu: col(r, 6, w)?,
        parcel: col(r, 7, w)?,
        pbf: col(r, 8, w)?,
        admin: AdminCodes {
            county_code: col(r, 9, w)?,
            township_code: col(r, 10, w)?,
            village_code: col(r, 11, w)?,
            group_code: col(r, 12, w)?,
            location_code: col(r, 13, w)?,
            county_name: col(r, 14, w)?,
            township_name: col(r, 15, w)?,
            village_name: col(r, 16, w)?,
            group_name: col(r, 17, w)?,
        },
        class_before: col(r, 18, w)?,
        class_after: col(r, 19, w)?,
        dates: json(&col::<String>(r, 20, w)?, "patches.dates")?,
        confidence: col(r, 21, w)?,
        model_version: col(r, 22, w)?,
        evidence: col(r, 23, w)?,
        bbox: [
            col(r, 24, w)?,
            col(r, 25, w)?,
            col(r, 26, w)?,
            col(r, 27, w)?,
        ],
        geometry: geometry.map(|g| json(&g, "patches.geometry")).transpose()?,
        series: series.map(|s| json(&s, "patches.series")).transpose()?,
    })
}

async fn get_patch<C: GenericClient + Sync>(
    c: &C,
    scope: &Scope,
    id: i64,
    geometry: bool,
) -> Result<Option<ChangeRecord>> {
    let mut cond = Conditions::default();
    cond.push("p.id = ?", vec![Box::new(id)]);
    cond.scope(scope);
    let extra = if geometry {
        ", p.geometry, p.series"
    } else {
        ""
    };
    let q = format!("SELECT {PATCH_COLUMNS}{extra} FROM patches p{}", cond.sql());
    c.query_opt(q.as_str(), &refs(&cond.params))
        .await
        .map_err(pg("reading a patch"))?
        .map(|r| patch_record(&r))
        .transpose()
}

async fn insert_patches<C: GenericClient + Sync>(
    tx: &C,
    batch: i64,
    patches: &[NewPatch],
) -> Result<usize> {
    let ins = tx
        .prepare(
            "INSERT INTO patches (batch_id, reference, kind, status, area_m2, area_mu, parcel, pbf,
               county_code, township_code, village_code, group_code, location_code,
               county_name, township_name, village_name, group_name,
               class_before, class_after, dates, confidence, model_version, evidence, geometry,
               geom, min_x, min_y, max_x, max_y, series)
             VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                     $16, $17, $18, $19, $20, $21, $22, $23,
                     ST_SetSRID(ST_GeomFromGeoJSON($23), 4326), $24, $25, $26, $27, $28)",
        )
        .await
        .map_err(pg("preparing the patch insert"))?;
    for p in patches {
        let dates = to_json(&p.dates, "patch dates")?;
        let series = p
            .series
            .as_ref()
            .map(|s| to_json(s, "patch series"))
            .transpose()?;
        let a = &p.admin;
        tx.execute(
            &ins,
            &[
                &batch,
                &p.reference,
                &p.kind,
                &p.area_m2,
                &p.area_mu,
                &p.parcel,
                &p.pbf,
                &a.county_code,
                &a.township_code,
                &a.village_code,
                &a.group_code,
                &a.location_code,
                &a.county_name,
                &a.township_name,
                &a.village_name,
                &a.group_name,
                &p.class_before,
                &p.class_after,
                &dates,
                &p.confidence,
                &p.model_version,
                &p.evidence,
                &p.geometry,
                &p.bbox[0],
                &p.bbox[1],
                &p.bbox[2],
                &p.bbox[3],
                &series,
            ],
        )
        .await
        .map_err(pg("inserting a patch"))?;
    }
    Ok(patches.len())
}

// ---- verdicts ----

const VERDICT_COLUMNS: &str =
    "id, patch_id, verdict, note, from_status, to_status, token_id, actor, role, gengdi_iso(at), class_found";

fn verdict_record(r: &Row) -> Result<VerdictRecord> {
    let w = "verdicts";
    let status = |i: usize| -> Result<PatchStatus> {
        let s: String = col(r, i, w)?;
        PatchStatus::parse(&s)
            .ok_or_else(|| corrupt("verdicts status")(format!("unknown status {s:?}")))
    };
    let verdict = match status(2)? {
        PatchStatus::Confirmed => Verdict::Confirmed,
        PatchStatus::FalsePositive => Verdict::FalsePositive,
        PatchStatus::Rectified => Verdict::Rectified,
        PatchStatus::Open => return Err(corrupt("verdicts.verdict")("open".into())),
    };
    Ok(VerdictRecord {
        id: col(r, 0, w)?,
        patch: col(r, 1, w)?,
        verdict,
        note: col(r, 3, w)?,
        class_found: col(r, 10, w)?,
        from_status: status(4)?,
        to_status: status(5)?,
        token_id: col(r, 6, w)?,
        actor: col(r, 7, w)?,
        role: parse_role(&col::<String>(r, 8, w)?)?,
        at: col(r, 9, w)?,
        photos: Vec::new(),
    })
}

async fn verdict_photos<C: GenericClient + Sync>(
    c: &C,
    patch: i64,
    verdict: i64,
) -> Result<Vec<PhotoRecord>> {
    let rows = c
        .query(
            "SELECT id, content_type, bytes, sha256, taken_at, lon, lat, file
             FROM verdict_photos WHERE verdict_id = $1 ORDER BY id",
            &[&verdict],
        )
        .await
        .map_err(pg("listing verdict photos"))?;
    let w = "verdict_photos";
    rows.iter()
        .map(|r| {
            let id: i64 = col(r, 0, w)?;
            Ok(PhotoRecord {
                id,
                content_type: col(r, 1, w)?,
                bytes: col(r, 2, w)?,
                sha256: col(r, 3, w)?,
                taken_at: col(r, 4, w)?,
                lon: col(r, 5, w)?,
                lat: col(r, 6, w)?,
                url: format!("/api/v1/changes/{patch}/verdicts/{verdict}/photos/{id}"),
                file: col(r, 7, w)?,
            })
        })
        .collect()
}

// ---- training jobs ----

const TRAINING_SELECT: &str = "SELECT id, request, status, stage, epoch, epochs, result, error, attempts, created_by, gengdi_iso(created_at), gengdi_iso(started_at), gengdi_iso(finished_at), cancel_requested FROM training_jobs";

fn training_record(r: &Row) -> Result<TrainingJobRecord> {
    let w = "training_jobs";
    let status: String = col(r, 2, w)?;
    Ok(TrainingJobRecord {
        id: col(r, 0, w)?,
        request: json(&col::<String>(r, 1, w)?, "training_jobs.request")?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| corrupt("training_jobs.status")(format!("unknown status {status:?}")))?,
        stage: col(r, 3, w)?,
        epoch: u64::try_from(col::<i64>(r, 4, w)?).unwrap_or(0),
        epochs: u64::try_from(col::<i64>(r, 5, w)?).unwrap_or(0),
        result: col::<Option<String>>(r, 6, w)?
            .map(|s| json(&s, "training_jobs.result"))
            .transpose()?,
        error: col(r, 7, w)?,
        attempts: col(r, 8, w)?,
        created_by: col(r, 9, w)?,
        created_at: col(r, 10, w)?,
        started_at: col(r, 11, w)?,
        finished_at: col(r, 12, w)?,
        cancel_requested: col(r, 13, w)?,
    })
}

async fn get_training<C: GenericClient + Sync>(
    c: &C,
    id: i64,
) -> Result<Option<TrainingJobRecord>> {
    c.query_opt(&format!("{TRAINING_SELECT} WHERE id = $1"), &[&id])
        .await
        .map_err(pg("reading a training job"))?
        .map(|r| training_record(&r))
        .transpose()
}

fn vanished(what: &'static str, id: i64) -> ServiceError {
    corrupt(what)(format!("row {id} vanished"))
}

#[async_trait]
impl Store for PgStore {
    async fn create_token(&self, new: NewToken) -> Result<TokenRecord> {
        let c = self.client().await?;
        let r = c
            .query_one(
                &format!(
                    "INSERT INTO tokens (name, role, region, digest) VALUES ($1, $2, $3, $4)
                     RETURNING {TOKEN_COLUMNS}"
                ),
                &[&new.name, &new.role.name(), &new.region, &new.digest],
            )
            .await
            .map_err(pg("inserting a token"))?;
        token_record(&r)
    }

    async fn token_by_digest(&self, digest: &str) -> Result<Option<TokenRecord>> {
        self.one(
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE digest = $1"),
            &[&digest],
            "looking up a token",
            token_record,
        )
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        self.all(
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id"),
            &[],
            "listing tokens",
            token_record,
        )
        .await
    }

    async fn revoke_token(&self, id: i64) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
                &[&id],
            )
            .await
            .map_err(pg("revoking a token"))?;
        Ok(n == 1)
    }

    async fn insert_farmland(&self, new: NewFarmland) -> Result<FarmlandRecord> {
        let c = self.client().await?;
        let fields = new.fields_used.to_string();
        let r = c
            .query_one(
                &format!(
                    "INSERT INTO farmland (name, source, stored_path, layer, mapping, features,
                       parcels, used, repaired, rejected, area_mu, pbf_area_mu, fields_used,
                       created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                     RETURNING {FARMLAND_COLUMNS}"
                ),
                &[
                    &new.name,
                    &new.source,
                    &new.stored_path,
                    &new.layer,
                    &new.mapping,
                    &new.features,
                    &new.parcels,
                    &new.used,
                    &new.repaired,
                    &new.rejected,
                    &new.area_mu,
                    &new.pbf_area_mu,
                    &fields,
                    &new.created_by,
                ],
            )
            .await
            .map_err(pg("inserting a farmland layer"))?;
        farmland_record(&r)
    }

    async fn farmland(&self, id: i64) -> Result<Option<FarmlandRecord>> {
        self.one(
            &format!("SELECT {FARMLAND_COLUMNS} FROM farmland WHERE id = $1"),
            &[&id],
            "reading a farmland layer",
            farmland_record,
        )
        .await
    }

    async fn list_farmland(&self) -> Result<Vec<FarmlandRecord>> {
        self.all(
            &format!("SELECT {FARMLAND_COLUMNS} FROM farmland ORDER BY id"),
            &[],
            "listing farmland layers",
            farmland_record,
        )
        .await
    }

    async fn insert_admin_layer(&self, new: NewAdminLayer) -> Result<AdminLayerRecord> {
        let c = self.client().await?;
        let layers = to_json(&new.layers, "admin layers")?;
        let r = c
            .query_one(
                &format!(
                    "INSERT INTO admin_layers (name, source, stored_path, mapping, layers,
                       features, used, rejected, units, fields_used, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                     RETURNING {ADMIN_COLUMNS}"
                ),
                &[
                    &new.name,
                    &new.source,
                    &new.stored_path,
                    &new.mapping,
                    &layers,
                    &new.features,
                    &new.used,
                    &new.rejected,
                    &new.units.to_string(),
                    &new.fields_used.to_string(),
                    &new.created_by,
                ],
            )
            .await
            .map_err(pg("inserting an admin layer"))?;
        admin_record(&r)
    }

    async fn admin_layer(&self, id: i64) -> Result<Option<AdminLayerRecord>> {
        let c = self.client().await?;
        get_admin_layer(&**c, id).await
    }

    async fn list_admin_layers(&self) -> Result<Vec<AdminLayerRecord>> {
        self.all(
            &format!("SELECT {ADMIN_COLUMNS} FROM admin_layers ORDER BY id"),
            &[],
            "listing admin layers",
            admin_record,
        )
        .await
    }

    async fn store_parcels(&self, farmland: i64, parcels: Vec<NewParcel>) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c
            .transaction()
            .await
            .map_err(pg("starting a transaction"))?;
        tx.execute("DELETE FROM parcels WHERE farmland_id = $1", &[&farmland])
            .await
            .map_err(pg("removing parcels"))?;
        let ins = tx
            .prepare(
                "INSERT INTO parcels (farmland_id, id, parcel, pbf, land_class, land_class_name,
                   area_mu, location_code, min_x, min_y, max_x, max_y, geometry, geom)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                         ST_SetSRID(ST_GeomFromGeoJSON($13), 4326))",
            )
            .await
            .map_err(pg("preparing the parcel insert"))?;
        for (i, p) in parcels.iter().enumerate() {
            let id = i as i64 + 1;
            let a = &p.attributes;
            tx.execute(
                &ins,
                &[
                    &farmland,
                    &id,
                    &a.parcel,
                    &a.pbf,
                    &a.land_class,
                    &a.land_class_name,
                    &a.area_mu,
                    &a.location_code,
                    &p.bbox[0],
                    &p.bbox[1],
                    &p.bbox[2],
                    &p.bbox[3],
                    &p.geometry,
                ],
            )
            .await
            .map_err(pg("inserting a parcel"))?;
        }
        let n = tx
            .execute(
                "UPDATE farmland SET parcels_stored = true WHERE id = $1",
                &[&farmland],
            )
            .await
            .map_err(pg("marking the parcels stored"))?;
        if n == 0 {
            return Err(ServiceError::Invalid(format!(
                "no farmland layer {farmland}"
            )));
        }
        tx.commit().await.map_err(pg("committing the parcels"))
    }

    async fn parcels_stored(&self, farmland: i64) -> Result<bool> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                "SELECT parcels_stored FROM farmland WHERE id = $1",
                &[&farmland],
            )
            .await
            .map_err(pg("reading whether parcels are stored"))?;
        Ok(match r {
            Some(r) => col(&r, 0, "farmland.parcels_stored")?,
            None => false,
        })
    }

    async fn parcels_in(
        &self,
        farmland: i64,
        scope: &Scope,
        bbox: [f64; 4],
        limit: usize,
    ) -> Result<ParcelPage> {
        let c = self.client().await?;
        // The GiST index finds the candidates (its boxes are single precision, rounded
        // outwards); the exact stored boxes decide.
        let mut cond = Conditions::default();
        cond.push(
            "p.farmland_id = ? AND p.geom && ST_MakeEnvelope(?, ?, ?, ?, 4326)
             AND p.max_x >= ? AND p.min_x <= ? AND p.max_y >= ? AND p.min_y <= ?",
            vec![
                Box::new(farmland),
                Box::new(bbox[0]),
                Box::new(bbox[1]),
                Box::new(bbox[2]),
                Box::new(bbox[3]),
                Box::new(bbox[0]),
                Box::new(bbox[2]),
                Box::new(bbox[1]),
                Box::new(bbox[3]),
            ],
        );
        cond.scope(scope);
        let total: i64 = col(
            &c.query_one(
                &format!("SELECT count(*) FROM parcels p{}", cond.sql()),
                &refs(&cond.params),
            )
            .await
            .map_err(pg("counting parcels"))?,
            0,
            "parcels",
        )?;
        let limit = cond.bind(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
        let rows = c
            .query(
                &format!(
                    "SELECT p.id, p.parcel, p.pbf, p.land_class, p.land_class_name, p.area_mu,
                       p.location_code, p.geometry
                     FROM parcels p{} ORDER BY p.id LIMIT {limit}",
                    cond.sql()
                ),
                &refs(&cond.params),
            )
            .await
            .map_err(pg("listing parcels"))?;
        let w = "parcels";
        let items = rows
            .iter()
            .map(|r| {
                Ok(ParcelRecord {
                    id: col(r, 0, w)?,
                    attributes: ParcelAttributes {
                        parcel: col(r, 1, w)?,
                        pbf: col(r, 2, w)?,
                        land_class: col(r, 3, w)?,
                        land_class_name: col(r, 4, w)?,
                        area_mu: col(r, 5, w)?,
                        location_code: col(r, 6, w)?,
                    },
                    geometry: json(&col::<String>(r, 7, w)?, "parcels.geometry")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ParcelPage { items, total })
    }

    async fn create_batch(&self, new: NewBatch) -> Result<BatchCreated> {
        let mut c = self.client().await?;
        let tx = c
            .transaction()
            .await
            .map_err(pg("starting a transaction"))?;
        if let Some((key, digest)) = &new.idempotency {
            // Two requests with one key racing: the second waits on the first's row lock
            // through the unique constraint and then finds its batch below on retry; here
            // the plain lookup serves the usual replay.
            let seen = tx
                .query_opt(
                    "SELECT id, request_digest FROM batches
                     WHERE created_by = $1 AND idempotency_key = $2",
                    &[&new.created_by, key],
                )
                .await
                .map_err(pg("looking up an idempotency key"))?;
            if let Some(r) = seen {
                let id: i64 = col(&r, 0, "batches")?;
                let seen_digest: Option<String> = col(&r, 1, "batches")?;
                if seen_digest.as_deref() != Some(digest.as_str()) {
                    return Ok(BatchCreated::KeyReused);
                }
                return match get_batch(&*tx, id).await? {
                    Some(b) => Ok(BatchCreated::Replayed(b)),
                    None => Err(corrupt("batches")(format!("batch {id} has no job"))),
                };
            }
        }
        let scenes = to_json(&new.scenes, "batch scenes")?;
        let options = to_json(&new.options, "batch options")?;
        let (key, digest) = match &new.idempotency {
            Some((k, d)) => (Some(k.clone()), Some(d.clone())),
            None => (None, None),
        };
        let r = tx
            .query_one(
                "INSERT INTO batches (name, farmland_id, scenes, created_by, idempotency_key,
                   request_digest, options)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    &new.name,
                    &new.farmland,
                    &scenes,
                    &new.created_by,
                    &key,
                    &digest,
                    &options,
                ],
            )
            .await
            .map_err(pg("inserting a batch"))?;
        let id: i64 = col(&r, 0, "batches")?;
        tx.execute(
            "INSERT INTO jobs (batch_id, status) VALUES ($1, 'queued')",
            &[&id],
        )
        .await
        .map_err(pg("queueing a job"))?;
        // Its first task, for the workers of a shared run (`queue`).
        tx.execute(
            "INSERT INTO tasks (batch_id, kind) VALUES ($1, 'plan')",
            &[&id],
        )
        .await
        .map_err(pg("queueing a plan task"))?;
        let rec = get_batch(&*tx, id)
            .await?
            .ok_or_else(|| vanished("batches", id))?;
        tx.commit().await.map_err(pg("committing a batch"))?;
        Ok(BatchCreated::New(rec))
    }

    async fn batch(&self, id: i64) -> Result<Option<BatchRecord>> {
        let c = self.client().await?;
        get_batch(&**c, id).await
    }

    async fn list_batches(&self) -> Result<Vec<BatchRecord>> {
        self.all(
            &format!("{BATCH_SELECT} ORDER BY b.id"),
            &[],
            "listing batches",
            batch_record,
        )
        .await
    }

    async fn cancel_batch(&self, id: i64) -> Result<CancelOutcome> {
        let mut c = self.client().await?;
        let tx = c
            .transaction()
            .await
            .map_err(pg("starting a transaction"))?;
        // Lock the job row: a worker claiming or finishing it waits for this decision.
        tx.execute("SELECT 1 FROM jobs WHERE batch_id = $1 FOR UPDATE", &[&id])
            .await
            .map_err(pg("locking a job"))?;
        let Some(b) = get_batch(&*tx, id).await? else {
            return Ok(CancelOutcome::NotFound);
        };
        let outcome = match b.status {
            JobStatus::Queued => {
                tx.execute(
                    "UPDATE jobs SET status = 'cancelled', stage = 'cancelled',
                       finished_at = now() WHERE batch_id = $1",
                    &[&id],
                )
                .await
                .map_err(pg("cancelling a job"))?;
                CancelOutcome::Cancelled(get_batch(&*tx, id).await?.unwrap_or(b))
            }
            JobStatus::Running if PgStore::cancel_shared(&tx, id).await? => {
                CancelOutcome::Cancelled(get_batch(&*tx, id).await?.unwrap_or(b))
            }
            JobStatus::Running => {
                tx.execute(
                    "UPDATE jobs SET cancel_requested = true WHERE batch_id = $1",
                    &[&id],
                )
                .await
                .map_err(pg("requesting a cancellation"))?;
                CancelOutcome::Requested(get_batch(&*tx, id).await?.unwrap_or(b))
            }
            _ => CancelOutcome::AlreadyFinished(b),
        };
        tx.commit().await.map_err(pg("committing a cancellation"))?;
        Ok(outcome)
    }

    fn task_queue(self: Arc<Self>) -> Option<Arc<dyn super::queue::TaskQueue>> {
        Some(self)
    }

    fn model_store(self: Arc<Self>) -> Option<Arc<dyn super::models::ModelStore>> {
        Some(self)
    }

    async fn heartbeat_jobs(&self) -> Result<()> {
        let c = self.client().await?;
        for table in ["jobs", "training_jobs"] {
            c.execute(
                &format!(
                    "UPDATE {table} SET heartbeat_at = now()
                     WHERE owner = $1 AND status = 'running'"
                ),
                &[&self.owner],
            )
            .await
            .map_err(pg("renewing the heartbeat of running jobs"))?;
        }
        Ok(())
    }

    async fn claim_job(&self) -> Result<Option<BatchRecord>> {
        let mut c = self.client().await?;
        let tx = c
            .transaction()
            .await
            .map_err(pg("starting a transaction"))?;
        // SKIP LOCKED: servers sharing the database each take a different queued job.
        let r = tx
            .query_opt(
                "UPDATE jobs SET status = 'running', stage = 'starting', attempts = attempts + 1,
                   tiles_done = 0, tiles_total = 0, started_at = now(), owner = $1,
                   heartbeat_at = now()
                 WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id
                             LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING batch_id",
                &[&self.owner],
            )
            .await
            .map_err(pg("claiming a job"))?;
        let Some(r) = r else {
            return Ok(None);
        };
        let id: i64 = col(&r, 0, "jobs")?;
        // Taken whole: no worker plans it. A plan task locked by a worker's claim right now
        // is skipped here; that claim then finds the job running and drops it.
        tx.execute(
            "UPDATE tasks SET status = 'cancelled', finished_at = now()
             WHERE id IN (SELECT id FROM tasks WHERE batch_id = $1 AND kind = 'plan'
                          AND status = 'queued' FOR UPDATE SKIP LOCKED)",
            &[&id],
        )
        .await
        .map_err(pg("taking a batch whole"))?;
        let rec = get_batch(&*tx, id).await?;
        tx.commit().await.map_err(pg("committing a claim"))?;
        Ok(rec)
    }

    async fn update_progress(&self, id: i64, progress: Progress) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE jobs SET stage = $2, tiles_done = $3, tiles_total = $4
             WHERE batch_id = $1 AND status = 'running'",
            &[
                &id,
                &progress.stage,
                &i64::try_from(progress.tiles_done).unwrap_or(i64::MAX),
                &i64::try_from(progress.tiles_total).unwrap_or(i64::MAX),
            ],
        )
        .await
        .map_err(pg("storing progress"))?;
        Ok(())
    }

    async fn finish_job(&self, id: i64, outcome: JobOutcome) -> Result<BatchRecord> {
        let mut c = self.client().await?;
        let tx = c
            .transaction()
            .await
            .map_err(pg("starting a transaction"))?;
        match &outcome {
            JobOutcome::Done(patches) => {
                let n = insert_patches(&*tx, id, patches).await? as i64;
                tx.execute(
                    "UPDATE jobs SET status = 'done', stage = 'done', patches = $2,
                       finished_at = now() WHERE batch_id = $1",
                    &[&id, &n],
                )
                .await
                .map_err(pg("finishing a job"))?;
            }
            JobOutcome::Failed(reason) => {
                tx.execute(
                    "UPDATE jobs SET status = 'failed', stage = 'failed', error = $2,
                       finished_at = now() WHERE batch_id = $1",
                    &[&id, reason],
                )
                .await
                .map_err(pg("failing a job"))?;
            }
            JobOutcome::Cancelled => {
                tx.execute(
                    "UPDATE jobs SET status = 'cancelled', stage = 'cancelled',
                       finished_at = now() WHERE batch_id = $1",
                    &[&id],
                )
                .await
                .map_err(pg("cancelling a job"))?;
            }
        }
        let rec = get_batch(&*tx, id)
            .await?
            .ok_or_else(|| vanished("batches", id))?;
        tx.commit().await.map_err(pg("committing a finished job"))?;
        Ok(rec)
    }

    async fn release_job(&self, id: i64) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE jobs SET status = 'queued', stage = 'interrupted'
                 WHERE batch_id = $1 AND status = 'running'",
                &[&id],
            )
            .await
            .map_err(pg("releasing a job"))?;
        Ok(n > 0)
    }

    async fn requeue_running(&self) -> Result<usize> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE jobs SET status = 'queued', stage = 'queued', tiles_done = 0,
                   tiles_total = 0, owner = NULL
                 WHERE status = 'running' AND (owner IS NULL OR heartbeat_at IS NULL
                   OR heartbeat_at < now() - make_interval(secs => $1))",
                &[&JOB_STALE_S],
            )
            .await
            .map_err(pg("requeueing running jobs"))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn list_changes(&self, scope: &Scope, filter: &ChangeFilter) -> Result<ChangePage> {
        let f = filter;
        let mut cond = Conditions::default();
        cond.scope(scope);
        if let Some(b) = f.batch {
            cond.push("p.batch_id = ?", vec![Box::new(b)]);
        }
        if let Some(k) = &f.kind {
            cond.push("p.kind = ?", vec![Box::new(k.clone())]);
        }
        if let Some(s) = f.status {
            cond.push("p.status = ?", vec![Box::new(s.name().to_string())]);
        }
        if let Some(r) = &f.region {
            cond.prefix(r);
        }
        if let Some(m) = f.min_mu {
            cond.push("p.area_mu >= ?", vec![Box::new(m)]);
        }
        if let Some(pbf) = f.pbf {
            cond.push("p.pbf = ?", vec![Box::new(pbf)]);
        }
        if let Some(d) = &f.from {
            cond.push(
                "to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') >= ?",
                vec![Box::new(d.clone())],
            );
        }
        if let Some(d) = &f.to {
            cond.push(
                "to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') <= ?",
                vec![Box::new(d.clone())],
            );
        }
        if let Some([x0, y0, x1, y1]) = f.bbox {
            // The GiST index finds candidates; the stored boxes decide exactly.
            cond.push(
                "p.geom && ST_MakeEnvelope(?, ?, ?, ?, 4326)
                 AND p.max_x >= ? AND p.min_x <= ? AND p.max_y >= ? AND p.min_y <= ?",
                vec![
                    Box::new(x0),
                    Box::new(y0),
                    Box::new(x1),
                    Box::new(y1),
                    Box::new(x0),
                    Box::new(x1),
                    Box::new(y0),
                    Box::new(y1),
                ],
            );
        }
        let c = self.client().await?;
        let total: i64 = col(
            &c.query_one(
                &format!("SELECT count(*) FROM patches p{}", cond.sql()),
                &refs(&cond.params),
            )
            .await
            .map_err(pg("counting patches"))?,
            0,
            "patches",
        )?;
        let (order, after) = f.sort.keyset(f.after)?;
        if let Some((clause, values)) = after {
            cond.push(
                &clause,
                values
                    .into_iter()
                    .map(|v| -> Param {
                        match v {
                            KeyValue::Id(id) => Box::new(id),
                            KeyValue::Key(k) => Box::new(k),
                        }
                    })
                    .collect(),
            );
        }
        let limit = i64::from(f.limit.max(1));
        let where_sql = cond.sql();
        let limit_param = cond.bind(Box::new(limit + 1));
        let q = format!(
            "SELECT {PATCH_COLUMNS}{} FROM patches p{where_sql} ORDER BY {order} LIMIT {limit_param}",
            if f.geometry { ", p.geometry" } else { "" },
        );
        let rows = c
            .query(q.as_str(), &refs(&cond.params))
            .await
            .map_err(pg("listing patches"))?;
        let mut items = rows.iter().map(patch_record).collect::<Result<Vec<_>>>()?;
        let more = items.len() as i64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
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
    }

    async fn change(&self, scope: &Scope, id: i64) -> Result<Option<ChangeRecord>> {
        let c = self.client().await?;
        get_patch(&**c, scope, id, true).await
    }

    async fn record_verdict(
        &self,
        scope: &Scope,
        patch: i64,
        verdict: NewVerdict,
    ) -> Result<Option<(ChangeRecord, VerdictRecord)>> {
        let mut c = self.client().await?;
        let tx = c
            .transaction()
            .await
            .map_err(pg("starting a transaction"))?;
        // Lock the patch: two verdicts on one patch record their from-status in order.
        let locked = tx
            .query_opt("SELECT id FROM patches WHERE id = $1 FOR UPDATE", &[&patch])
            .await
            .map_err(pg("locking a patch"))?;
        if locked.is_none() {
            return Ok(None);
        }
        let Some(before) = get_patch(&*tx, scope, patch, false).await? else {
            return Ok(None);
        };
        let to = verdict.verdict.status();
        let r = tx
            .query_one(
                &format!(
                    "INSERT INTO verdicts (patch_id, verdict, note, from_status, to_status,
                       token_id, actor, role, class_found)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {VERDICT_COLUMNS}"
                ),
                &[
                    &patch,
                    &to.name(),
                    &verdict.note,
                    &before.status.name(),
                    &to.name(),
                    &verdict.token_id,
                    &verdict.actor,
                    &verdict.role.name(),
                    &verdict.class_found,
                ],
            )
            .await
            .map_err(pg("appending a verdict"))?;
        let mut v = verdict_record(&r)?;
        for p in &verdict.photos {
            tx.execute(
                "INSERT INTO verdict_photos (verdict_id, file, content_type, bytes, sha256,
                   taken_at, lon, lat)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &v.id,
                    &p.file,
                    &p.content_type,
                    &p.bytes,
                    &p.sha256,
                    &p.taken_at,
                    &p.lon,
                    &p.lat,
                ],
            )
            .await
            .map_err(pg("keeping a verdict photo"))?;
        }
        tx.execute(
            "UPDATE patches SET status = $2, class_found = $3 WHERE id = $1",
            &[&patch, &to.name(), &verdict.class_found],
        )
        .await
        .map_err(pg("setting a patch's status"))?;
        v.photos = verdict_photos(&*tx, patch, v.id).await?;
        let after = get_patch(&*tx, &Scope::All, patch, false)
            .await?
            .ok_or_else(|| vanished("patches", patch))?;
        tx.commit().await.map_err(pg("committing a verdict"))?;
        Ok(Some((after, v)))
    }

    async fn verdicts(&self, scope: &Scope, patch: i64) -> Result<Vec<VerdictRecord>> {
        let c = self.client().await?;
        if get_patch(&**c, scope, patch, false).await?.is_none() {
            return Ok(Vec::new());
        }
        let rows = c
            .query(
                &format!("SELECT {VERDICT_COLUMNS} FROM verdicts WHERE patch_id = $1 ORDER BY id"),
                &[&patch],
            )
            .await
            .map_err(pg("listing verdicts"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut v = verdict_record(r)?;
            v.photos = verdict_photos(&**c, patch, v.id).await?;
            out.push(v);
        }
        Ok(out)
    }

    async fn stats(&self, scope: &Scope, filter: &StatsFilter) -> Result<Vec<StatsRow>> {
        let f = filter;
        // The level names a column; never text from the request.
        let col_name = match f.level {
            AdminLevel::County => "county",
            AdminLevel::Township => "township",
            AdminLevel::Village => "village",
            AdminLevel::Group => "group",
        };
        let from = f.from.clone().unwrap_or_else(|| "0000-01-01".into());
        let to = f.to.clone().unwrap_or_else(|| "9999-12-31".into());
        // The period's bounds are the first four parameters ($1..$4), as in the select list.
        let mut cond = Conditions {
            params: vec![
                Box::new(from.clone()),
                Box::new(to.clone()),
                Box::new(from),
                Box::new(to),
            ],
            ..Conditions::default()
        };
        cond.scope(scope);
        if let Some(b) = f.batch {
            cond.push("p.batch_id = ?", vec![Box::new(b)]);
        }
        if let Some(r) = &f.region {
            cond.prefix(r);
        }
        let q = format!(
            "SELECT q.code, max(q.name), q.kind, q.status,
                    count(*) FILTER (WHERE q.found),
                    coalesce(sum(q.area_mu) FILTER (WHERE q.found), 0),
                    count(*) FILTER (WHERE q.restored),
                    coalesce(sum(q.area_mu) FILTER (WHERE q.restored), 0)
             FROM (SELECT p.{col_name}_code AS code, p.{col_name}_name AS name, p.kind, p.status,
                     p.area_mu,
                     (to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') BETWEEN $1 AND $2)
                       AS found,
                     (p.status = 'rectified' AND EXISTS (
                        SELECT 1 FROM verdicts v WHERE v.patch_id = p.id
                          AND v.to_status = 'rectified'
                          AND to_char(v.at AT TIME ZONE 'UTC', 'YYYY-MM-DD') BETWEEN $3 AND $4))
                       AS restored
                   FROM patches p{}) q
             WHERE q.found OR q.restored
             GROUP BY q.code, q.kind, q.status
             ORDER BY q.code NULLS FIRST, q.kind, q.status",
            cond.sql()
        );
        let c = self.client().await?;
        let rows = c
            .query(q.as_str(), &refs(&cond.params))
            .await
            .map_err(pg("grouping patches"))?;
        let w = "patches (statistics)";
        rows.iter()
            .map(|r| {
                let status: String = col(r, 3, w)?;
                Ok(StatsRow {
                    code: col(r, 0, w)?,
                    name: col(r, 1, w)?,
                    kind: col(r, 2, w)?,
                    status: PatchStatus::parse(&status).ok_or_else(|| {
                        corrupt("patches.status")(format!("unknown status {status:?}"))
                    })?,
                    found: col(r, 4, w)?,
                    found_mu: col(r, 5, w)?,
                    restored: col(r, 6, w)?,
                    restored_mu: col(r, 7, w)?,
                })
            })
            .collect()
    }

    async fn job_summary(&self) -> Result<JobSummary> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT status, count(*), coalesce(sum(tiles_done), 0)::double precision
                 FROM jobs GROUP BY status",
                &[],
            )
            .await
            .map_err(pg("counting jobs"))?;
        let mut summary = JobSummary::of_counts(
            rows.iter()
                .map(|r| Ok((col(r, 0, "jobs")?, col(r, 1, "jobs")?, col(r, 2, "jobs")?)))
                .collect::<Result<Vec<_>>>()?,
        )?;
        let rows = c
            .query(
                "SELECT batch_id, tiles_done, tiles_total,
                        extract(epoch FROM now() - started_at)::double precision
                 FROM jobs WHERE status = 'running' ORDER BY batch_id",
                &[],
            )
            .await
            .map_err(pg("listing running jobs"))?;
        summary.running = rows
            .iter()
            .map(|r| {
                Ok(RunningJob {
                    batch: col(r, 0, "jobs")?,
                    tiles_done: u64::try_from(col::<i64>(r, 1, "jobs")?).unwrap_or(0),
                    tiles_total: u64::try_from(col::<i64>(r, 2, "jobs")?).unwrap_or(0),
                    elapsed_s: col::<Option<f64>>(r, 3, "jobs")?.unwrap_or(0.0),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(summary)
    }

    async fn create_training_job(
        &self,
        request: serde_json::Value,
        epochs: u64,
        created_by: i64,
    ) -> Result<TrainingJobRecord> {
        let c = self.client().await?;
        let r = c
            .query_one(
                &format!(
                    "INSERT INTO training_jobs (request, status, epochs, created_by)
                     VALUES ($1, 'queued', $2, $3)
                     RETURNING {}",
                    TRAINING_SELECT
                        .trim_start_matches("SELECT ")
                        .trim_end_matches(" FROM training_jobs")
                ),
                &[
                    &request.to_string(),
                    &i64::try_from(epochs).unwrap_or(i64::MAX),
                    &created_by,
                ],
            )
            .await
            .map_err(pg("queueing a training job"))?;
        training_record(&r)
    }

    async fn training_job(&self, id: i64) -> Result<Option<TrainingJobRecord>> {
        let c = self.client().await?;
        get_training(&**c, id).await
    }

    async fn list_training_jobs(&self) -> Result<Vec<TrainingJobRecord>> {
        self.all(
            &format!("{TRAINING_SELECT} ORDER BY id"),
            &[],
            "listing training jobs",
            training_record,
        )
        .await
    }

    async fn claim_training_job(&self) -> Result<Option<TrainingJobRecord>> {
        let mut c = self.client().await?;
        let tx = c
            .transaction()
            .await
            .map_err(pg("starting a transaction"))?;
        let r = tx
            .query_opt(
                "UPDATE training_jobs SET status = 'running', stage = 'starting', epoch = 0,
                   attempts = attempts + 1, started_at = now(), owner = $1,
                   heartbeat_at = now()
                 WHERE id = (SELECT id FROM training_jobs WHERE status = 'queued' ORDER BY id
                             LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING id",
                &[&self.owner],
            )
            .await
            .map_err(pg("claiming a training job"))?;
        let Some(r) = r else {
            return Ok(None);
        };
        let id: i64 = col(&r, 0, "training_jobs")?;
        let rec = get_training(&*tx, id).await?;
        tx.commit().await.map_err(pg("committing a claim"))?;
        Ok(rec)
    }

    async fn update_training_progress(&self, id: i64, stage: String, epoch: u64) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE training_jobs SET stage = $2, epoch = $3 WHERE id = $1 AND status = 'running'",
            &[&id, &stage, &i64::try_from(epoch).unwrap_or(i64::MAX)],
        )
        .await
        .map_err(pg("storing training progress"))?;
        Ok(())
    }

    async fn finish_training_job(
        &self,
        id: i64,
        outcome: TrainingOutcome,
    ) -> Result<TrainingJobRecord> {
        let (status, result, error) = match &outcome {
            TrainingOutcome::Done(r) => ("done", Some(r.to_string()), None),
            TrainingOutcome::Failed(e) => ("failed", None, Some(e.clone())),
            TrainingOutcome::Cancelled => ("cancelled", None, None),
        };
        let c = self.client().await?;
        // Only while this process holds it: a job another server queued again (this one
        // stopped beating) is that claim's to finish.
        let n = c
            .execute(
                "UPDATE training_jobs SET status = $2, stage = $2, result = $3, error = $4,
                   finished_at = now()
                 WHERE id = $1 AND status = 'running' AND (owner = $5 OR owner IS NULL)",
                &[&id, &status, &result, &error, &self.owner],
            )
            .await
            .map_err(pg("finishing a training job"))?;
        if n == 0 {
            tracing::warn!(
                "training: job {id} was no longer this server's when it ended ({status}): \
                 its outcome is not recorded"
            );
        }
        get_training(&**c, id)
            .await?
            .ok_or_else(|| vanished("training_jobs", id))
    }

    async fn cancel_training_job(&self, id: i64) -> Result<TrainingCancel> {
        let mut c = self.client().await?;
        let tx = c
            .transaction()
            .await
            .map_err(pg("starting a transaction"))?;
        tx.execute(
            "SELECT 1 FROM training_jobs WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await
        .map_err(pg("locking a training job"))?;
        let Some(job) = get_training(&*tx, id).await? else {
            return Ok(TrainingCancel::NotFound);
        };
        let outcome = match job.status {
            JobStatus::Queued => {
                tx.execute(
                    "UPDATE training_jobs SET status = 'cancelled', stage = 'cancelled',
                       cancel_requested = true, finished_at = now() WHERE id = $1",
                    &[&id],
                )
                .await
                .map_err(pg("cancelling a training job"))?;
                TrainingCancel::Cancelled(
                    get_training(&*tx, id)
                        .await?
                        .ok_or_else(|| vanished("training_jobs", id))?,
                )
            }
            JobStatus::Running => {
                tx.execute(
                    "UPDATE training_jobs SET cancel_requested = true WHERE id = $1",
                    &[&id],
                )
                .await
                .map_err(pg("cancelling a training job"))?;
                TrainingCancel::Requested(
                    get_training(&*tx, id)
                        .await?
                        .ok_or_else(|| vanished("training_jobs", id))?,
                )
            }
            _ => TrainingCancel::AlreadyFinished(job),
        };
        tx.commit().await.map_err(pg("committing a cancellation"))?;
        Ok(outcome)
    }

    async fn requeue_running_training(&self) -> Result<usize> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE training_jobs SET status = 'queued', stage = 'queued', epoch = 0,
                   owner = NULL
                 WHERE status = 'running' AND (owner IS NULL OR heartbeat_at IS NULL
                   OR heartbeat_at < now() - make_interval(secs => $1))",
                &[&JOB_STALE_S],
            )
            .await
            .map_err(pg("requeueing running training jobs"))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
