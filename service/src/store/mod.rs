//! What the service keeps: tokens, farmland layers, batches and their jobs, patches and
//! verdicts, behind the [`Store`] trait: the embedded SQLite store ([`sqlite::SqliteStore`],
//! the default) and the PostgreSQL/PostGIS one ([`postgres::PgStore`]) serve the same
//! handlers; only the latter has the work queue of shared runs ([`queue`]).
//!
//! Region scoping lives here: every patch query takes a [`Scope`] and applies it in the query
//! itself.

pub mod models;
pub mod postgres;
pub mod queue;
mod schema;
pub mod sqlite;
mod sqlite_training;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::{Role, Scope};
use crate::error::Result;

pub use postgres::{PgStore, JOB_STALE_S};
pub use sqlite::SqliteStore;

/// A token as stored (never the token itself: its digest).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenRecord {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub region: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A token to store.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    pub region: Option<String>,
    /// [`crate::auth::token_digest`] of the token.
    pub digest: String,
}

/// A registered farmland layer and what its reader reported.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct FarmlandRecord {
    pub id: i64,
    pub name: String,
    /// The path the request named, relative to the import root.
    pub source: String,
    /// The copy under the data dir that analyses read.
    #[serde(skip)]
    pub stored_path: String,
    /// The layer read.
    pub layer: String,
    /// The attribute mapping as `role=FIELD,…` (empty: the defaults).
    pub mapping: String,
    /// Features in the layer.
    pub features: i64,
    /// Parcels kept (features with a usable geometry).
    pub parcels: i64,
    /// Features used (valid, or repaired), as the reader counts them.
    pub used: i64,
    pub repaired: i64,
    pub rejected: i64,
    /// Sum of the used parcels' areas on an equal-area projection, in mu.
    pub area_mu: f64,
    /// The same over the permanent basic farmland parcels.
    pub pbf_area_mu: f64,
    /// Which field each role was read from.
    pub fields_used: serde_json::Value,
    pub created_at: String,
}

/// A farmland layer to store (its id comes from the store).
#[derive(Clone, Debug)]
pub struct NewFarmland {
    pub name: String,
    pub source: String,
    pub stored_path: String,
    pub layer: String,
    pub mapping: String,
    pub features: i64,
    pub parcels: i64,
    pub used: i64,
    pub repaired: i64,
    pub rejected: i64,
    pub area_mu: f64,
    pub pbf_area_mu: f64,
    pub fields_used: serde_json::Value,
    pub created_by: i64,
}

/// A farmland parcel's attributes as the map shows them.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ParcelAttributes {
    /// The parcel's id in the layer (TBBH).
    pub parcel: String,
    /// Permanent basic farmland.
    pub pbf: bool,
    /// Land class code (DLBM).
    pub land_class: Option<String>,
    pub land_class_name: Option<String>,
    /// Area on an equal-area projection, in mu.
    pub area_mu: f64,
    /// The most precise administrative code the layer gives (group, village, township or
    /// county).
    pub location_code: Option<String>,
}

/// A farmland parcel as the map draws it (WGS 84), to store.
#[derive(Clone, Debug)]
pub struct NewParcel {
    pub attributes: ParcelAttributes,
    /// `[min_lon, min_lat, max_lon, max_lat]`.
    pub bbox: [f64; 4],
    /// A GeoJSON MultiPolygon, as text.
    pub geometry: String,
}

/// A stored farmland parcel.
#[derive(Clone, Debug, PartialEq)]
pub struct ParcelRecord {
    /// The parcel's row in this layer (1-based, in the layer's order).
    pub id: i64,
    pub attributes: ParcelAttributes,
    /// A GeoJSON MultiPolygon in WGS 84.
    pub geometry: serde_json::Value,
}

/// The parcels of a box.
#[derive(Clone, Debug)]
pub struct ParcelPage {
    pub items: Vec<ParcelRecord>,
    /// Parcels meeting the box (all, not only those returned).
    pub total: i64,
}

/// A registered administrative-boundary layer (county / township / village / group units)
/// and what its reader reported.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct AdminLayerRecord {
    pub id: i64,
    pub name: String,
    /// The path the request named, relative to the import root.
    pub source: String,
    /// The copy under the data dir that analyses read.
    #[serde(skip)]
    pub stored_path: String,
    /// The attribute mapping as `role=FIELD,…` (empty: the defaults).
    pub mapping: String,
    /// The file's layers (every one is read).
    pub layers: Vec<String>,
    /// Features over all layers.
    pub features: i64,
    /// Features used as units.
    pub used: i64,
    pub rejected: i64,
    /// Distinct unit codes per level: `{county, township, village, group}`.
    pub units: serde_json::Value,
    /// Per layer, which field each role was read from.
    pub fields_used: serde_json::Value,
    pub created_at: String,
}

/// An administrative-boundary layer to store (its id comes from the store).
#[derive(Clone, Debug)]
pub struct NewAdminLayer {
    pub name: String,
    pub source: String,
    pub stored_path: String,
    pub mapping: String,
    pub layers: Vec<String>,
    pub features: i64,
    pub used: i64,
    pub rejected: i64,
    pub units: serde_json::Value,
    pub fields_used: serde_json::Value,
    pub created_by: i64,
}

/// What a batch asks of its analysis beyond scenes and farmland.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchOptions {
    /// A registered administrative-boundary layer giving parcels their unit codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<i64>,
    /// Canonical scene paths of an earlier (baseline) period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline: Vec<String>,
    /// The rules' thresholds the batch overrides (a partial `RulesConfig` object, checked
    /// when the batch was accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<serde_json::Value>,
}

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Every status, in the order of a job's life.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|j| j.name() == s)
    }

    /// Done, failed or cancelled: nothing more will happen to the job.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// How far a running job is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Progress {
    /// `queued`, `opening_scenes`, `reading_farmland`, `analysing`, `storing`, `done`, ….
    pub stage: String,
    pub tiles_done: u64,
    pub tiles_total: u64,
}

/// A batch (scenes × a farmland layer) and its analysis job.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchRecord {
    pub id: i64,
    pub name: Option<String>,
    pub farmland: i64,
    /// Canonical scene paths (under the import root).
    pub scenes: Vec<String>,
    /// Admin layer, baseline scenes, rules.
    pub options: BatchOptions,
    pub status: JobStatus,
    pub progress: Progress,
    /// Why the job failed.
    pub error: Option<String>,
    /// A cancellation was asked for while the job was running.
    pub cancel_requested: bool,
    /// Patches stored when the job was done.
    pub patches: Option<i64>,
    pub attempts: i64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// A batch to create.
#[derive(Clone, Debug)]
pub struct NewBatch {
    pub name: Option<String>,
    pub farmland: i64,
    pub scenes: Vec<String>,
    pub options: BatchOptions,
    pub created_by: i64,
    /// The `Idempotency-Key` header and a digest of the request it came with.
    pub idempotency: Option<(String, String)>,
}

/// What [`Store::create_batch`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchCreated {
    /// A new batch, queued.
    New(BatchRecord),
    /// The same key and request were sent before: that batch.
    Replayed(BatchRecord),
    /// The same key came with another request.
    KeyReused,
}

/// What [`Store::cancel_batch`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum CancelOutcome {
    /// It was queued and is now cancelled.
    Cancelled(BatchRecord),
    /// It is running; cancellation is requested and takes effect at the job's next check.
    Requested(BatchRecord),
    /// It had already finished (done, failed or cancelled).
    AlreadyFinished(BatchRecord),
    NotFound,
}

/// How a job ended.
#[derive(Clone, Debug)]
pub enum JobOutcome {
    Done(Vec<NewPatch>),
    Failed(String),
    Cancelled,
}

/// Administrative units of a patch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct AdminCodes {
    pub county_code: Option<String>,
    pub township_code: Option<String>,
    pub village_code: Option<String>,
    pub group_code: Option<String>,
    /// The most detailed of the codes: the one region scoping matches by prefix.
    pub location_code: Option<String>,
    pub county_name: Option<String>,
    pub township_name: Option<String>,
    pub village_name: Option<String>,
    pub group_name: Option<String>,
}

/// A patch to store (from an analysis result).
#[derive(Clone, Debug, PartialEq)]
pub struct NewPatch {
    /// The analysis's id of the patch.
    pub reference: String,
    pub kind: String,
    pub parcel: String,
    pub pbf: bool,
    pub area_m2: f64,
    pub area_mu: f64,
    pub admin: AdminCodes,
    pub class_before: String,
    pub class_after: String,
    pub dates: Vec<String>,
    pub confidence: f64,
    pub model_version: String,
    pub evidence: String,
    /// GeoJSON geometry text, WGS 84 longitude / latitude.
    pub geometry: String,
    /// `[min_lon, min_lat, max_lon, max_lat]`.
    pub bbox: [f64; 4],
    /// The parcel's evidence over the season (None: not known, e.g. a patch made by hand).
    pub series: Option<PatchSeries>,
}

/// A patch's parcel over the season, as the analysis measured it: per date, the share of its
/// clear pixels in each land-cover class and the spectral indices of its mean clear
/// reflectance; the season's pixel kinds and the crop-type model's view of the parcel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PatchSeries {
    /// Land-cover classes (the keys of `class_fractions`).
    pub classes: Vec<String>,
    /// The season's dates, in order (the baseline's are not here).
    pub dates: Vec<SeriesDate>,
    /// The parcel's pixels on the analysis grid.
    pub pixels: u64,
    /// Its pixels per season kind (`stable`, `fishpond`, `tree_planting`, …).
    pub kinds: std::collections::BTreeMap<String, u64>,
    /// The crop-type model's class of the parcel's mean season, with its confidence.
    pub crop_type: Option<(String, f32)>,
    /// The crop-type model's class of the season of the parcel's tree pixels (the tree veto).
    pub tree_check: Option<(String, f32)>,
}

/// One date of a [`PatchSeries`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeriesDate {
    /// `YYYY-MM-DD` (None: a scene without a date).
    pub date: Option<String>,
    /// The parcel's clear pixels on this date (cloud, shadow and nodata left out).
    pub clear_pixels: u64,
    /// Share of the clear pixels per land-cover class (empty without a clear pixel).
    pub class_fractions: std::collections::BTreeMap<String, f32>,
    pub ndvi: Option<f32>,
    pub ndwi: Option<f32>,
    pub mndwi: Option<f32>,
    pub bsi: Option<f32>,
    pub ndbi: Option<f32>,
}

/// A patch's verification status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PatchStatus {
    Open,
    Confirmed,
    FalsePositive,
    Rectified,
}

impl PatchStatus {
    pub fn name(self) -> &'static str {
        match self {
            PatchStatus::Open => "open",
            PatchStatus::Confirmed => "confirmed",
            PatchStatus::FalsePositive => "false_positive",
            PatchStatus::Rectified => "rectified",
        }
    }

    pub fn parse(s: &str) -> Option<PatchStatus> {
        [
            PatchStatus::Open,
            PatchStatus::Confirmed,
            PatchStatus::FalsePositive,
            PatchStatus::Rectified,
        ]
        .into_iter()
        .find(|p| p.name() == s)
    }
}

/// A field verdict: what the inspector found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Confirmed,
    FalsePositive,
    Rectified,
}

impl Verdict {
    /// The patch status a verdict leads to.
    pub fn status(self) -> PatchStatus {
        match self {
            Verdict::Confirmed => PatchStatus::Confirmed,
            Verdict::FalsePositive => PatchStatus::FalsePositive,
            Verdict::Rectified => PatchStatus::Rectified,
        }
    }
}

/// A stored patch.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ChangeRecord {
    pub id: i64,
    pub batch: i64,
    pub reference: String,
    pub kind: String,
    pub status: PatchStatus,
    /// What the patch's latest verdict found on the ground (a land-cover class name), set
    /// with its status; empty when not recorded (and while open).
    #[schemars(
        description = "The land-cover class the inspector found on the ground, empty when not recorded (that of the patch's latest verdict)"
    )]
    pub class_found: String,
    pub area_m2: f64,
    pub area_mu: f64,
    pub parcel: String,
    pub pbf: bool,
    pub admin: AdminCodes,
    pub class_before: String,
    pub class_after: String,
    pub dates: Vec<String>,
    pub confidence: f64,
    pub model_version: String,
    pub evidence: String,
    pub bbox: [f64; 4],
    /// GeoJSON geometry (WGS 84); only filled by [`Store::change`].
    #[schemars(
        description = "GeoJSON geometry (WGS 84): in one patch (`GET /api/v1/changes/{id}`), not in lists"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geometry: Option<serde_json::Value>,
    /// The parcel's evidence over the season; only filled by [`Store::change`] (and absent
    /// for a patch stored without one).
    #[schemars(
        description = "The parcel's evidence over the season: in one patch (`GET /api/v1/changes/{id}`), not in lists"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<PatchSeries>,
}

/// Filters of a change list (all optional; `limit` is checked by the caller).
#[derive(Clone, Debug, Default)]
pub struct ChangeFilter {
    pub batch: Option<i64>,
    pub kind: Option<String>,
    pub status: Option<PatchStatus>,
    /// Administrative code prefix.
    pub region: Option<String>,
    /// `[min_lon, min_lat, max_lon, max_lat]`: patches whose bounding box meets it.
    pub bbox: Option<[f64; 4]>,
    pub min_mu: Option<f64>,
    /// On permanent basic farmland or off it.
    pub pbf: Option<bool>,
    /// Stored on or after / on or before this day (`YYYY-MM-DD`).
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: u32,
    /// The order of the list.
    pub sort: ChangeSort,
    /// Patches after this one in `sort` order (keyset pagination): the
    /// [`ChangePage::next_after`] of the previous page, under the same `sort`.
    pub after: Option<ChangeCursor>,
    /// Fill each record's `geometry` (exports).
    pub geometry: bool,
}

/// The order of a change list. The value sorts (area, confidence) break ties by ascending id,
/// so every order is total and keyset pagination through it exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum ChangeSort {
    /// Ascending id (the order patches were stored in).
    #[default]
    Id,
    /// Descending id (newest first).
    IdDesc,
    AreaMu,
    AreaMuDesc,
    Confidence,
    ConfidenceDesc,
}

impl ChangeSort {
    /// Every sort, in the order the API lists them.
    pub const ALL: [ChangeSort; 6] = [
        ChangeSort::Id,
        ChangeSort::IdDesc,
        ChangeSort::AreaMu,
        ChangeSort::AreaMuDesc,
        ChangeSort::Confidence,
        ChangeSort::ConfidenceDesc,
    ];

    /// The API's name: the field, with `-` in front for descending.
    pub fn name(self) -> &'static str {
        match self {
            ChangeSort::Id => "id",
            ChangeSort::IdDesc => "-id",
            ChangeSort::AreaMu => "area_mu",
            ChangeSort::AreaMuDesc => "-area_mu",
            ChangeSort::Confidence => "confidence",
            ChangeSort::ConfidenceDesc => "-confidence",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeSort> {
        ChangeSort::ALL.into_iter().find(|v| v.name() == s)
    }

    /// Descending (on its value, or on the id for [`ChangeSort::IdDesc`]).
    pub fn descending(self) -> bool {
        matches!(
            self,
            ChangeSort::IdDesc | ChangeSort::AreaMuDesc | ChangeSort::ConfidenceDesc
        )
    }

    /// Whether the order is by a value (with the id breaking ties) rather than by the id.
    pub fn by_value(self) -> bool {
        !matches!(self, ChangeSort::Id | ChangeSort::IdDesc)
    }

    /// The value a record sorts by (`None` for the id sorts).
    pub fn key_of(self, r: &ChangeRecord) -> Option<f64> {
        match self {
            ChangeSort::Id | ChangeSort::IdDesc => None,
            ChangeSort::AreaMu | ChangeSort::AreaMuDesc => Some(r.area_mu),
            ChangeSort::Confidence | ChangeSort::ConfidenceDesc => Some(r.confidence),
        }
    }

    /// The position just after `r` in this order.
    pub fn cursor_after(self, r: &ChangeRecord) -> ChangeCursor {
        ChangeCursor {
            key: self.key_of(r),
            id: r.id,
        }
    }

    /// Keyset pagination in SQL, for both stores (patches aliased `p`): the `ORDER BY` of
    /// this sort (value sorts: by the value, then by ascending id, so the order is total),
    /// and, with a cursor, the condition (with `?` for its values) keeping the rows after it.
    pub(crate) fn keyset(
        self,
        after: Option<ChangeCursor>,
    ) -> crate::error::Result<(String, Option<KeysetCondition>)> {
        let column = match self {
            ChangeSort::Id | ChangeSort::IdDesc => None,
            ChangeSort::AreaMu | ChangeSort::AreaMuDesc => Some("p.area_mu"),
            ChangeSort::Confidence | ChangeSort::ConfidenceDesc => Some("p.confidence"),
        };
        let (cmp, dir) = if self.descending() {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let order = match column {
            None => format!("p.id {dir}"),
            Some(col) => format!("{col} {dir}, p.id ASC"),
        };
        let after = match (after, column) {
            (None, _) => None,
            (Some(a), None) => Some((format!("p.id {cmp} ?"), vec![KeyValue::Id(a.id)])),
            (Some(ChangeCursor { key: Some(k), id }), Some(col)) if !k.is_nan() => Some((
                format!("({col} {cmp} ? OR ({col} = ? AND p.id > ?))"),
                vec![KeyValue::Key(k), KeyValue::Key(k), KeyValue::Id(id)],
            )),
            (Some(_), Some(_)) => {
                return Err(crate::error::ServiceError::Invalid(format!(
                    "sort {}: the cursor needs the value it sorts by",
                    self.name()
                )))
            }
        };
        Ok((order, after))
    }
}

/// A keyset condition: SQL with `?` for its values, and the values.
pub(crate) type KeysetCondition = (String, Vec<KeyValue>);

/// A value of a keyset condition ([`ChangeSort::keyset`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum KeyValue {
    Id(i64),
    Key(f64),
}

/// A position in a change list: the sort value (value sorts only) and the id of the last
/// patch of a page.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ChangeCursor {
    pub key: Option<f64>,
    pub id: i64,
}

impl ChangeCursor {
    /// The cursor as the API writes it. [`ChangeSort::Id`]: the id in decimal (as before
    /// sorts existed); the others name their sort, so that a cursor cannot be replayed under
    /// another one: `-id.<id>`, and for the value sorts `<sort>.<the f64's bits, 16 hex
    /// digits>.<id>` (the exact value, which a decimal rendering might not round-trip).
    pub fn encode(&self, sort: ChangeSort) -> String {
        match (sort, self.key) {
            (ChangeSort::Id, _) => self.id.to_string(),
            (_, Some(k)) if sort.by_value() => {
                format!("{}.{:016x}.{}", sort.name(), k.to_bits(), self.id)
            }
            _ => format!("{}.{}", sort.name(), self.id),
        }
    }

    /// A cursor [`ChangeCursor::encode`] wrote for `sort`; `None` for anything else (another
    /// sort's cursor, a negative id, a NaN value, stray text).
    pub fn parse(s: &str, sort: ChangeSort) -> Option<ChangeCursor> {
        let id = |t: &str| t.parse::<i64>().ok().filter(|v| *v >= 0);
        if sort == ChangeSort::Id {
            return id(s).map(|id| ChangeCursor { key: None, id });
        }
        let rest = s.strip_prefix(sort.name())?.strip_prefix('.')?;
        if !sort.by_value() {
            return id(rest).map(|id| ChangeCursor { key: None, id });
        }
        let (bits, rest) = rest.split_once('.')?;
        if bits.len() != 16 || !bits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let key = f64::from_bits(u64::from_str_radix(bits, 16).ok()?);
        if key.is_nan() {
            return None;
        }
        Some(ChangeCursor {
            key: Some(key),
            id: id(rest)?,
        })
    }
}

/// One page of changes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChangePage {
    pub items: Vec<ChangeRecord>,
    /// The position of the last patch of this page when more follow.
    pub next_after: Option<ChangeCursor>,
    /// Patches matching the filters (all pages).
    pub total: i64,
}

/// A verdict to append.
#[derive(Clone, Debug)]
pub struct NewVerdict {
    pub verdict: Verdict,
    pub note: String,
    /// The land-cover class the inspector found on the ground (a
    /// [`gengdi_models::LandCoverClass`] name, checked by the handler; empty: not recorded).
    pub class_found: String,
    pub token_id: i64,
    pub actor: String,
    pub role: Role,
    /// Field photos, already stored under the data dir.
    pub photos: Vec<NewPhoto>,
}

/// A field photo to keep with a verdict.
#[derive(Clone, Debug)]
pub struct NewPhoto {
    /// The stored file, relative to the data dir.
    pub file: String,
    /// `image/jpeg` or `image/png`.
    pub content_type: String,
    pub bytes: i64,
    pub sha256: String,
    /// When it was taken, as the client said (RFC 3339).
    pub taken_at: Option<String>,
    /// Where (WGS 84), as the client said.
    pub lon: Option<f64>,
    pub lat: Option<f64>,
}

/// A field photo kept with a verdict (append-only, as the verdicts are).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct PhotoRecord {
    pub id: i64,
    pub content_type: String,
    pub bytes: i64,
    pub sha256: String,
    pub taken_at: Option<String>,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    /// Where to fetch it (with the token).
    pub url: String,
    /// The stored file, relative to the data dir.
    #[serde(skip)]
    #[schemars(skip)]
    pub file: String,
}

/// One row of the append-only audit table.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct VerdictRecord {
    pub id: i64,
    pub patch: i64,
    pub verdict: Verdict,
    pub note: String,
    /// A land-cover class name, or empty.
    #[schemars(
        description = "The land-cover class the inspector found on the ground, empty when not recorded"
    )]
    pub class_found: String,
    pub from_status: PatchStatus,
    pub to_status: PatchStatus,
    pub token_id: i64,
    pub actor: String,
    pub role: Role,
    pub at: String,
    /// Field photos recorded with the verdict.
    pub photos: Vec<PhotoRecord>,
}

/// An administrative level of the five-level grid below the city.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdminLevel {
    #[default]
    County,
    Township,
    Village,
    /// Village group.
    Group,
}

impl AdminLevel {
    pub const ALL: [AdminLevel; 4] = [
        AdminLevel::County,
        AdminLevel::Township,
        AdminLevel::Village,
        AdminLevel::Group,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AdminLevel::County => "county",
            AdminLevel::Township => "township",
            AdminLevel::Village => "village",
            AdminLevel::Group => "group",
        }
    }

    pub fn parse(s: &str) -> Option<AdminLevel> {
        AdminLevel::ALL.into_iter().find(|l| l.name() == s)
    }
}

/// What [`Store::stats`] groups: patches of one level's units, optionally of one region and
/// one batch, over a period of days (inclusive, `YYYY-MM-DD`; open-ended when unset).
#[derive(Clone, Debug, Default)]
pub struct StatsFilter {
    pub level: AdminLevel,
    /// Administrative code prefix (of the location code, as the change list filters).
    pub region: Option<String>,
    pub batch: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Patches of one unit, kind and status: those found in the period (stored by an analysis
/// on one of its days) and those restored in it (status `rectified`, with a `rectified`
/// verdict recorded on one of its days).
#[derive(Clone, Debug, PartialEq)]
pub struct StatsRow {
    /// The unit's code at the level (None: patches without one).
    pub code: Option<String>,
    pub name: Option<String>,
    pub kind: String,
    pub status: PatchStatus,
    pub found: i64,
    pub found_mu: f64,
    pub restored: i64,
    pub restored_mu: f64,
}

/// A running job, for the metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningJob {
    pub batch: i64,
    pub tiles_done: u64,
    pub tiles_total: u64,
    /// Seconds since it was claimed.
    pub elapsed_s: f64,
}

/// The job table in numbers, for the metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobSummary {
    /// Jobs per status (every status, zeros included).
    pub counts: Vec<(JobStatus, i64)>,
    /// Tiles done, summed over every job.
    pub tiles_done: u64,
    pub running: Vec<RunningJob>,
}

impl JobSummary {
    /// The summary of per-status rows `(status, jobs, tiles done)` as a store groups its
    /// jobs table (the running jobs left to fill).
    pub(crate) fn of_counts(
        rows: impl IntoIterator<Item = (String, i64, f64)>,
    ) -> crate::error::Result<JobSummary> {
        let mut summary = JobSummary {
            counts: JobStatus::ALL.into_iter().map(|s| (s, 0)).collect(),
            ..JobSummary::default()
        };
        for (status, n, tiles) in rows {
            let s = JobStatus::parse(&status).ok_or_else(|| {
                sqlite::corrupt("jobs.status")(format!("unknown status {status:?}"))
            })?;
            if let Some(slot) = summary.counts.iter_mut().find(|(k, _)| *k == s) {
                slot.1 = n;
            }
            summary.tiles_done += tiles.max(0.0) as u64;
        }
        Ok(summary)
    }
}

/// A training job as stored: what was asked, how far it is, what it gave.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct TrainingJobRecord {
    pub id: i64,
    /// The request as accepted (`{task, batches, epochs, seed, tables}`, defaults filled).
    pub request: serde_json::Value,
    pub status: JobStatus,
    /// `queued`, `samples`, `training`, `evaluating`, `saving`, `done`, ….
    pub stage: String,
    /// Epochs run so far (known when training ends) of at most `epochs`.
    pub epoch: u64,
    pub epochs: u64,
    /// The new model and both models' metrics on its held-out split (when done).
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub attempts: i64,
    /// The token that asked for it.
    pub created_by: i64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// A cancellation was asked for while the job was running.
    pub cancel_requested: bool,
}

/// What [`Store::cancel_training_job`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainingCancel {
    /// It was queued and is now cancelled.
    Cancelled(TrainingJobRecord),
    /// It is running; it stops before its next epoch.
    Requested(TrainingJobRecord),
    /// It had already finished.
    AlreadyFinished(TrainingJobRecord),
    NotFound,
}

/// How a training job ended.
#[derive(Clone, Debug)]
pub enum TrainingOutcome {
    Done(serde_json::Value),
    Failed(String),
    Cancelled,
}

/// Everything the service keeps. Implementations must be cheap to share (`Arc<dyn Store>`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The work queue of shared runs (`gengdi worker`), when this store has one (PostgreSQL).
    fn task_queue(self: std::sync::Arc<Self>) -> Option<std::sync::Arc<dyn queue::TaskQueue>> {
        None
    }

    /// The models shared by every process of this store, when it has them (PostgreSQL).
    fn model_store(self: std::sync::Arc<Self>) -> Option<std::sync::Arc<dyn models::ModelStore>> {
        None
    }

    /// Renew the heartbeat of the jobs and training jobs this process runs, in a store that
    /// several servers share (where a job is queued again only once its heartbeat stops);
    /// nothing to do in the embedded store.
    async fn heartbeat_jobs(&self) -> Result<()> {
        Ok(())
    }

    // Tokens.
    async fn create_token(&self, new: NewToken) -> Result<TokenRecord>;
    /// The token with this digest, revoked or not.
    async fn token_by_digest(&self, digest: &str) -> Result<Option<TokenRecord>>;
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>>;
    /// Revoke a token; `false` when there is no such token or it was already revoked.
    async fn revoke_token(&self, id: i64) -> Result<bool>;

    // Farmland layers.
    async fn insert_farmland(&self, new: NewFarmland) -> Result<FarmlandRecord>;
    async fn farmland(&self, id: i64) -> Result<Option<FarmlandRecord>>;
    async fn list_farmland(&self) -> Result<Vec<FarmlandRecord>>;

    // Administrative-boundary layers.
    async fn insert_admin_layer(&self, new: NewAdminLayer) -> Result<AdminLayerRecord>;
    async fn admin_layer(&self, id: i64) -> Result<Option<AdminLayerRecord>>;
    async fn list_admin_layers(&self) -> Result<Vec<AdminLayerRecord>>;

    // Farmland parcels, for the map.
    /// Store the parcels of farmland layer `farmland` (replacing those stored before).
    async fn store_parcels(&self, farmland: i64, parcels: Vec<NewParcel>) -> Result<()>;
    /// Whether the parcels of `farmland` are stored.
    async fn parcels_stored(&self, farmland: i64) -> Result<bool>;
    /// The parcels of `farmland` whose bounding box meets `bbox` (`[min_lon, min_lat,
    /// max_lon, max_lat]`), within `scope` (a region: the parcels whose location code starts
    /// with it), at most `limit` by id, and how many meet it.
    async fn parcels_in(
        &self,
        farmland: i64,
        scope: &Scope,
        bbox: [f64; 4],
        limit: usize,
    ) -> Result<ParcelPage>;

    // Batches and their jobs.
    async fn create_batch(&self, new: NewBatch) -> Result<BatchCreated>;
    async fn batch(&self, id: i64) -> Result<Option<BatchRecord>>;
    async fn list_batches(&self) -> Result<Vec<BatchRecord>>;
    async fn cancel_batch(&self, id: i64) -> Result<CancelOutcome>;
    /// Take the oldest queued job and mark it running.
    async fn claim_job(&self) -> Result<Option<BatchRecord>>;
    async fn update_progress(&self, id: i64, progress: Progress) -> Result<()>;
    /// End a running job; its patches (when done) are stored in the same transaction.
    async fn finish_job(&self, id: i64, outcome: JobOutcome) -> Result<BatchRecord>;
    /// Put jobs left running (by a process that stopped) back in the queue; returns how many.
    /// In a store shared by several servers, only those whose server stopped beating
    /// ([`Store::heartbeat_jobs`]).
    async fn requeue_running(&self) -> Result<usize>;
    /// Put one running job back in the queue (its process is stopping; it resumes from its
    /// checkpointed tiles when claimed again); `false` when it was not running.
    async fn release_job(&self, id: i64) -> Result<bool>;

    // Patches and verdicts (always scoped).
    async fn list_changes(&self, scope: &Scope, filter: &ChangeFilter) -> Result<ChangePage>;
    async fn change(&self, scope: &Scope, id: i64) -> Result<Option<ChangeRecord>>;
    /// Append a verdict and set the patch's status; `None` when the patch is not in scope.
    async fn record_verdict(
        &self,
        scope: &Scope,
        patch: i64,
        verdict: NewVerdict,
    ) -> Result<Option<(ChangeRecord, VerdictRecord)>>;
    async fn verdicts(&self, scope: &Scope, patch: i64) -> Result<Vec<VerdictRecord>>;

    /// Patches grouped by unit (at the filter's level), kind and status; rows with neither a
    /// patch found nor one restored in the period are left out. Ordered by code, kind,
    /// status.
    async fn stats(&self, scope: &Scope, filter: &StatsFilter) -> Result<Vec<StatsRow>>;

    /// Jobs per status, tiles done and the running jobs.
    async fn job_summary(&self) -> Result<JobSummary>;

    // Training jobs (one queue of their own, beside the batches').
    /// Queue a training job: `request` as accepted, `epochs` its maximum.
    async fn create_training_job(
        &self,
        request: serde_json::Value,
        epochs: u64,
        created_by: i64,
    ) -> Result<TrainingJobRecord>;
    async fn training_job(&self, id: i64) -> Result<Option<TrainingJobRecord>>;
    async fn list_training_jobs(&self) -> Result<Vec<TrainingJobRecord>>;
    /// Take the oldest queued training job and mark it running.
    async fn claim_training_job(&self) -> Result<Option<TrainingJobRecord>>;
    async fn update_training_progress(&self, id: i64, stage: String, epoch: u64) -> Result<()>;
    async fn finish_training_job(
        &self,
        id: i64,
        outcome: TrainingOutcome,
    ) -> Result<TrainingJobRecord>;
    /// Cancel a queued training job, or ask a running one to stop.
    async fn cancel_training_job(&self, id: i64) -> Result<TrainingCancel>;
    /// Put training jobs left running by a stopped process back in the queue; how many
    /// (in a shared store, as [`Store::requeue_running`]).
    async fn requeue_running_training(&self) -> Result<usize>;
}
