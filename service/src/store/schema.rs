//! The schema of both stores, from one set of definitions: each migration is written once,
//! in SQL with placeholders for what SQLite and PostgreSQL spell differently, and rendered
//! for each backend by [`render`]. `schema_version.version` records the number applied, so a
//! database of either backend says which definitions it holds.
//!
//! Placeholders (in braces), SQLite / PostgreSQL:
//! - `id`: `INTEGER PRIMARY KEY` / `bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY`;
//! - `int`: `INTEGER` / `bigint`; `real`: `REAL` / `double precision`; `text`: `TEXT` / `text`;
//! - `code`: `TEXT` / `text COLLATE "C"`: codes, kinds and statuses compare bytes (the region
//!   prefix ranges, the sorted statistics) whatever the PostgreSQL database's locale, as
//!   SQLite always does;
//! - `bool`: `INTEGER` / `boolean`, with `false`: `0` / `false`;
//! - `time`: `TEXT` / `timestamptz`, with `now`: the current time as ISO 8601 text (UTC,
//!   milliseconds) / `now()`; PostgreSQL's times are read back as the same text
//!   (`gengdi_iso`).
//!
//! Lines between `@sqlite` and `@end` (or `@postgres` and `@end`) are one backend's alone:
//! - the spatial indexes, each backend's own way: SQLite's R*Tree tables, PostGIS `geom`
//!   columns (SRID 4326, beside the GeoJSON text the API serves unchanged) with GiST indexes;
//! - the triggers that make the audit tables append-only (PostgreSQL's also refuse
//!   `TRUNCATE`);
//! - what only a store shared by several processes needs, which is PostgreSQL's alone: the
//!   work queue of shared runs (migration 6), the models shared by its processes and the
//!   holder of each running job (migration 7).
//!
//! `service/tests/store_backends.rs` checks that both backends at the latest version have
//! the same tables and columns, besides those.

/// A backend the definitions are rendered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Backend {
    Sqlite,
    Postgres,
}

/// The migrations; entry `i` is version `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: tokens, farmland, batches, jobs, patches (+ spatial index), verdicts (append-only).
    r#"
    @postgres
    CREATE FUNCTION gengdi_iso(t timestamptz) RETURNS text LANGUAGE sql STABLE AS
      $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;
    CREATE FUNCTION gengdi_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
      END $$;
    @end
    CREATE TABLE tokens (
        id          {id},
        name        {text} NOT NULL,
        role        {text} NOT NULL CHECK (role IN ('admin','centre','inspector','researcher')),
        region      {code},
        digest      {text} NOT NULL UNIQUE,
        created_at  {time} NOT NULL DEFAULT {now},
        revoked_at  {time}
    );
    CREATE TABLE farmland (
        id          {id},
        name        {text} NOT NULL,
        source      {text} NOT NULL,
        stored_path {text} NOT NULL,
        layer       {text} NOT NULL,
        mapping     {text} NOT NULL,
        features    {int} NOT NULL,
        parcels     {int} NOT NULL,
        used        {int} NOT NULL,
        repaired    {int} NOT NULL,
        rejected    {int} NOT NULL,
        area_mu     {real} NOT NULL,
        pbf_area_mu {real} NOT NULL,
        fields_used {text} NOT NULL,
        created_by  {int} NOT NULL REFERENCES tokens(id),
        created_at  {time} NOT NULL DEFAULT {now}
    );
    CREATE TABLE batches (
        id              {id},
        name            {text},
        farmland_id     {int} NOT NULL REFERENCES farmland(id),
        scenes          {text} NOT NULL,
        created_by      {int} NOT NULL REFERENCES tokens(id),
        idempotency_key {text},
        request_digest  {text},
        created_at      {time} NOT NULL DEFAULT {now},
        UNIQUE (created_by, idempotency_key)
    );
    CREATE TABLE jobs (
        id               {id},
        batch_id         {int} NOT NULL UNIQUE REFERENCES batches(id),
        status           {code} NOT NULL
                         CHECK (status IN ('queued','running','done','failed','cancelled')),
        stage            {text} NOT NULL DEFAULT 'queued',
        tiles_done       {int} NOT NULL DEFAULT 0,
        tiles_total      {int} NOT NULL DEFAULT 0,
        error            {text},
        cancel_requested {bool} NOT NULL DEFAULT {false},
        patches          {int},
        attempts         {int} NOT NULL DEFAULT 0,
        started_at       {time},
        finished_at      {time}
    );
    CREATE INDEX jobs_status ON jobs(status, id);
    CREATE TABLE patches (
        id            {id},
        batch_id      {int} NOT NULL REFERENCES batches(id),
        reference     {text} NOT NULL,
        kind          {code} NOT NULL,
        status        {code} NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open','confirmed','false_positive','rectified')),
        area_m2       {real} NOT NULL,
        area_mu       {real} NOT NULL,
        parcel        {text} NOT NULL,
        pbf           {bool} NOT NULL,
        county_code   {code},
        township_code {code},
        village_code  {code},
        group_code    {code},
        location_code {code},
        county_name   {text},
        township_name {text},
        village_name  {text},
        group_name    {text},
        class_before  {text} NOT NULL,
        class_after   {text} NOT NULL,
        dates         {text} NOT NULL,
        confidence    {real} NOT NULL,
        model_version {text} NOT NULL,
        evidence      {text} NOT NULL,
        geometry      {text} NOT NULL,
        @postgres
        geom          geometry(Geometry, 4326) NOT NULL,
        @end
        min_x {real} NOT NULL, min_y {real} NOT NULL,
        max_x {real} NOT NULL, max_y {real} NOT NULL,
        created_at    {time} NOT NULL DEFAULT {now}
    );
    CREATE INDEX patches_batch ON patches(batch_id, id);
    CREATE INDEX patches_location ON patches(location_code);
    @sqlite
    CREATE VIRTUAL TABLE patch_bbox USING rtree(id, min_x, max_x, min_y, max_y);
    @end
    @postgres
    CREATE INDEX patches_geom ON patches USING gist (geom);
    @end
    CREATE TABLE verdicts (
        id          {id},
        patch_id    {int} NOT NULL REFERENCES patches(id),
        verdict     {text} NOT NULL CHECK (verdict IN ('confirmed','false_positive','rectified')),
        note        {text} NOT NULL,
        from_status {text} NOT NULL,
        to_status   {text} NOT NULL,
        token_id    {int} NOT NULL REFERENCES tokens(id),
        actor       {text} NOT NULL,
        role        {text} NOT NULL,
        at          {time} NOT NULL DEFAULT {now}
    );
    CREATE INDEX verdicts_patch ON verdicts(patch_id, id);
    @sqlite
    CREATE TRIGGER verdicts_append_only_update BEFORE UPDATE ON verdicts
    BEGIN SELECT RAISE(ABORT, 'verdicts are append-only'); END;
    CREATE TRIGGER verdicts_append_only_delete BEFORE DELETE ON verdicts
    BEGIN SELECT RAISE(ABORT, 'verdicts are append-only'); END;
    @end
    @postgres
    CREATE TRIGGER verdicts_append_only BEFORE UPDATE OR DELETE ON verdicts
      FOR EACH ROW EXECUTE FUNCTION gengdi_append_only('verdicts are append-only');
    CREATE TRIGGER verdicts_no_truncate BEFORE TRUNCATE ON verdicts
      FOR EACH STATEMENT EXECUTE FUNCTION gengdi_append_only('verdicts are append-only');
    @end
    "#,
    // 2: training jobs (POST /api/v1/training).
    r#"
    CREATE TABLE training_jobs (
        id          {id},
        request     {text} NOT NULL,
        status      {code} NOT NULL
                    CHECK (status IN ('queued','running','done','failed','cancelled')),
        stage       {text} NOT NULL DEFAULT 'queued',
        epoch       {int} NOT NULL DEFAULT 0,
        epochs      {int} NOT NULL,
        result      {text},
        error       {text},
        attempts    {int} NOT NULL DEFAULT 0,
        created_by  {int} NOT NULL REFERENCES tokens(id),
        created_at  {time} NOT NULL DEFAULT {now},
        started_at  {time},
        finished_at {time}
    );
    CREATE INDEX training_jobs_status ON training_jobs(status, id);
    "#,
    // 3: change lists filtered by kind within a region (the inspectors' usual query) find
    // their rows through an index instead of scanning every patch.
    r#"
    CREATE INDEX patches_kind_location ON patches(kind, location_code);
    "#,
    // 4: administrative-boundary layers; a batch's options (admin layer, baseline scenes,
    // rules); verdict photos (append-only).
    r#"
    CREATE TABLE admin_layers (
        id          {id},
        name        {text} NOT NULL,
        source      {text} NOT NULL,
        stored_path {text} NOT NULL,
        mapping     {text} NOT NULL,
        layers      {text} NOT NULL,
        features    {int} NOT NULL,
        used        {int} NOT NULL,
        rejected    {int} NOT NULL,
        units       {text} NOT NULL,
        fields_used {text} NOT NULL,
        created_by  {int} NOT NULL REFERENCES tokens(id),
        created_at  {time} NOT NULL DEFAULT {now}
    );
    ALTER TABLE batches ADD COLUMN options {text} NOT NULL DEFAULT '{}';
    ALTER TABLE training_jobs ADD COLUMN cancel_requested {bool} NOT NULL DEFAULT {false};
    ALTER TABLE patches ADD COLUMN series {text};
    CREATE TABLE verdict_photos (
        id           {id},
        verdict_id   {int} NOT NULL REFERENCES verdicts(id),
        file         {text} NOT NULL,
        content_type {text} NOT NULL,
        bytes        {int} NOT NULL,
        sha256       {text} NOT NULL,
        taken_at     {text},
        lon          {real},
        lat          {real}
    );
    CREATE INDEX verdict_photos_verdict ON verdict_photos(verdict_id, id);
    @sqlite
    CREATE TRIGGER verdict_photos_append_only_update BEFORE UPDATE ON verdict_photos
    BEGIN SELECT RAISE(ABORT, 'verdict photos are append-only'); END;
    CREATE TRIGGER verdict_photos_append_only_delete BEFORE DELETE ON verdict_photos
    BEGIN SELECT RAISE(ABORT, 'verdict photos are append-only'); END;
    @end
    @postgres
    CREATE TRIGGER verdict_photos_append_only BEFORE UPDATE OR DELETE ON verdict_photos
      FOR EACH ROW EXECUTE FUNCTION gengdi_append_only('verdict photos are append-only');
    CREATE TRIGGER verdict_photos_no_truncate BEFORE TRUNCATE ON verdict_photos
      FOR EACH STATEMENT EXECUTE FUNCTION gengdi_append_only('verdict photos are append-only');
    @end
    "#,
    // 5: farmland parcels for the map (WGS 84 GeoJSON, a spatial index); layers registered
    // before are filled in when their parcels are first asked for.
    r#"
    ALTER TABLE farmland ADD COLUMN parcels_stored {bool} NOT NULL DEFAULT {false};
    CREATE TABLE parcels (
        farmland_id     {int} NOT NULL REFERENCES farmland(id),
        id              {int} NOT NULL,
        parcel          {text} NOT NULL,
        pbf             {bool} NOT NULL,
        land_class      {text},
        land_class_name {text},
        area_mu         {real} NOT NULL,
        location_code   {code},
        min_x           {real} NOT NULL,
        min_y           {real} NOT NULL,
        max_x           {real} NOT NULL,
        max_y           {real} NOT NULL,
        geometry        {text} NOT NULL,
        @postgres
        geom            geometry(Geometry, 4326) NOT NULL,
        @end
        PRIMARY KEY (farmland_id, id)
    );
    @sqlite
    CREATE VIRTUAL TABLE parcel_bbox USING rtree(
        rowid, min_x, max_x, min_y, max_y, +farmland_id INTEGER
    );
    @end
    @postgres
    CREATE INDEX parcels_geom ON parcels USING gist (geom);
    @end
    "#,
    // 6: the work queue of shared runs (`gengdi worker`; the embedded store has none): a
    // batch is a plan task, then one task per tile with farmland, then a merge task. A task
    // is claimed with a lease that its worker's heartbeat renews; one whose heartbeat stopped
    // is claimed again. A tile's output is kept with its task, in the transaction that
    // finishes it.
    r#"
    @postgres
    CREATE TABLE tasks (
        id           {id},
        batch_id     {int} NOT NULL REFERENCES batches(id),
        kind         {code} NOT NULL CHECK (kind IN ('plan','tile','merge')),
        tile         {int} NOT NULL DEFAULT -1,
        status       {code} NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued','running','done','failed','cancelled')),
        worker       {text},
        lease        {text},
        lease_s      {real},
        heartbeat_at {time},
        attempts     {int} NOT NULL DEFAULT 0,
        result       bytea,
        error        {text},
        created_at   {time} NOT NULL DEFAULT {now},
        finished_at  {time},
        UNIQUE (batch_id, kind, tile),
        CHECK ((kind = 'tile') = (tile >= 0))
    );
    CREATE INDEX tasks_claim ON tasks(status, id);
    CREATE TABLE batch_plans (
        batch_id    {int} PRIMARY KEY REFERENCES batches(id),
        request     {text} NOT NULL,
        fingerprint {text} NOT NULL,
        tiles       {int} NOT NULL,
        planned_by  {text} NOT NULL,
        planned_at  {time} NOT NULL DEFAULT {now}
    );
    @end
    "#,
    // 7: models shared by every process of the database (their files, and the active one of
    // each task); the models a batch was planned with; the server holding a running job or
    // training job and its last heartbeat (a job is queued again only when its server
    // stopped beating, not when another server starts). The embedded store has one server,
    // whose registry is the data dir's.
    r#"
    @postgres
    CREATE TABLE models (
        id         {code} PRIMARY KEY,
        task       {code} NOT NULL,
        created_at {time} NOT NULL DEFAULT {now}
    );
    CREATE TABLE model_files (
        model_id {code} NOT NULL REFERENCES models(id),
        name     {text} NOT NULL,
        bytes    bytea NOT NULL,
        PRIMARY KEY (model_id, name)
    );
    CREATE TABLE active_models (
        task         {code} PRIMARY KEY,
        model_id     {code} NOT NULL REFERENCES models(id),
        activated_at {time} NOT NULL DEFAULT {now}
    );
    ALTER TABLE batch_plans ADD COLUMN models {text} NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN owner {text};
    ALTER TABLE jobs ADD COLUMN heartbeat_at {time};
    ALTER TABLE training_jobs ADD COLUMN owner {text};
    ALTER TABLE training_jobs ADD COLUMN heartbeat_at {time};
    @end
    "#,
    // 8: the land-cover class the inspector found on the ground (`class_found`, a class name,
    // empty when not recorded), with each verdict and, as of its latest verdict, on the patch
    // (set with its status). Adding a column rewrites no verdict: the audit triggers stand.
    r#"
    ALTER TABLE verdicts ADD COLUMN class_found {text} NOT NULL DEFAULT '';
    ALTER TABLE patches ADD COLUMN class_found {text} NOT NULL DEFAULT '';
    "#,
];

/// The placeholders and what they stand for, SQLite then PostgreSQL.
const SPELLINGS: &[(&str, &str, &str)] = &[
    (
        "{id}",
        "INTEGER PRIMARY KEY",
        "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    ),
    ("{int}", "INTEGER", "bigint"),
    ("{real}", "REAL", "double precision"),
    ("{text}", "TEXT", "text"),
    ("{code}", "TEXT", "text COLLATE \"C\""),
    ("{bool}", "INTEGER", "boolean"),
    ("{false}", "0", "false"),
    ("{time}", "TEXT", "timestamptz"),
    ("{now}", "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))", "now()"),
];

/// Migration `template` as `backend` runs it: placeholders spelt, the other backend's
/// lines left out.
pub(super) fn render(template: &str, backend: Backend) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut only: Option<Backend> = None;
    for line in template.lines() {
        match line.trim() {
            "@sqlite" => only = Some(Backend::Sqlite),
            "@postgres" => only = Some(Backend::Postgres),
            "@end" => only = None,
            _ if only.is_some_and(|b| b != backend) => {}
            _ => {
                let mut line = line.to_string();
                for (placeholder, sqlite, postgres) in SPELLINGS {
                    let spelt = match backend {
                        Backend::Sqlite => sqlite,
                        Backend::Postgres => postgres,
                    };
                    line = line.replace(placeholder, spelt);
                }
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_spelt_and_every_block_closed() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            let mut open = false;
            for line in m.lines().map(str::trim) {
                match line {
                    "@sqlite" | "@postgres" => {
                        assert!(!open, "migration {}: a block inside a block", i + 1);
                        open = true;
                    }
                    "@end" => {
                        assert!(open, "migration {}: @end without a block", i + 1);
                        open = false;
                    }
                    l => assert!(!l.starts_with('@'), "migration {}: {l}", i + 1),
                }
            }
            assert!(!open, "migration {}: a block left open", i + 1);
            for backend in [Backend::Sqlite, Backend::Postgres] {
                let sql = render(m, backend);
                // The one literal in braces is a JSON default.
                let rest = sql.replace("'{}'", "");
                assert!(
                    !rest.contains('{') && !rest.contains('@'),
                    "migration {} for {backend:?}:\n{sql}",
                    i + 1
                );
            }
        }
    }

    #[test]
    fn each_backend_gets_its_own_lines_and_spellings() {
        let m = "CREATE TABLE t (\n  id {id},\n  c {code} NOT NULL DEFAULT {now},\n  @postgres\n  geom geometry,\n  @end\n  f {bool} DEFAULT {false}\n);\n@sqlite\nCREATE VIRTUAL TABLE b USING rtree(id);\n@end\n";
        assert_eq!(
            render(m, Backend::Sqlite),
            "CREATE TABLE t (\n  id INTEGER PRIMARY KEY,\n  c TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),\n  f INTEGER DEFAULT 0\n);\nCREATE VIRTUAL TABLE b USING rtree(id);\n"
        );
        assert_eq!(
            render(m, Backend::Postgres),
            "CREATE TABLE t (\n  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n  c text COLLATE \"C\" NOT NULL DEFAULT now(),\n  geom geometry,\n  f boolean DEFAULT false\n);\n"
        );
    }
}
