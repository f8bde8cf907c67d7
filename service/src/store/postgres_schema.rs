//! The PostgreSQL/PostGIS schema, migration by migration, numbered as the embedded store's
//! ([`super::sqlite`]'s `MIGRATIONS`): migration N of one backend creates what migration N of
//! the other does, in each database's own types. `schema_version.version` records the
//! number applied, so a database of either backend says which definitions it holds, and
//! `service/tests/store_backends.rs` checks that both backends at the latest version have the
//! same tables and columns (besides the spatial indexes each does its own way: SQLite's
//! R*Tree tables, PostGIS's `geom` columns, and the work queue of shared runs, which only
//! PostgreSQL has: `tasks`, `batch_plans`).
//!
//! Differences from the SQLite definitions, all internal (the records read back are the same):
//! - times are `timestamptz`, read as the same ISO 8601 text (`gengdi_iso`, UTC, milliseconds);
//! - flags are `boolean`; counts `bigint`; measures `double precision`;
//! - codes, kinds and statuses are `COLLATE "C"`: the region prefix ranges and the sorted
//!   statistics compare bytes, as SQLite does, whatever the database's locale;
//! - patches and parcels carry a PostGIS `geom` (SRID 4326) with a GiST index beside the
//!   GeoJSON text the API serves unchanged (PostGIS would reformat the coordinates);
//! - the append-only audit tables refuse `UPDATE`, `DELETE` and `TRUNCATE` by trigger.

/// The migrations; entry `i` is version `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: tokens, farmland, batches, jobs, patches (+ GiST), verdicts (append-only).
    r#"
    CREATE FUNCTION gengdi_iso(t timestamptz) RETURNS text LANGUAGE sql STABLE AS
      $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;
    CREATE FUNCTION gengdi_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
      END $$;
    CREATE TABLE tokens (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name        text NOT NULL,
        role        text NOT NULL CHECK (role IN ('admin','centre','inspector','researcher')),
        region      text COLLATE "C",
        digest      text NOT NULL UNIQUE,
        created_at  timestamptz NOT NULL DEFAULT now(),
        revoked_at  timestamptz
    );
    CREATE TABLE farmland (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name        text NOT NULL,
        source      text NOT NULL,
        stored_path text NOT NULL,
        layer       text NOT NULL,
        mapping     text NOT NULL,
        features    bigint NOT NULL,
        parcels     bigint NOT NULL,
        used        bigint NOT NULL,
        repaired    bigint NOT NULL,
        rejected    bigint NOT NULL,
        area_mu     double precision NOT NULL,
        pbf_area_mu double precision NOT NULL,
        fields_used text NOT NULL,
        created_by  bigint NOT NULL REFERENCES tokens(id),
        created_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE batches (
        id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name            text,
        farmland_id     bigint NOT NULL REFERENCES farmland(id),
        scenes          text NOT NULL,
        created_by      bigint NOT NULL REFERENCES tokens(id),
        idempotency_key text,
        request_digest  text,
        created_at      timestamptz NOT NULL DEFAULT now(),
        UNIQUE (created_by, idempotency_key)
    );
    CREATE TABLE jobs (
        id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        batch_id         bigint NOT NULL UNIQUE REFERENCES batches(id),
        status           text COLLATE "C" NOT NULL
                         CHECK (status IN ('queued','running','done','failed','cancelled')),
        stage            text NOT NULL DEFAULT 'queued',
        tiles_done       bigint NOT NULL DEFAULT 0,
        tiles_total      bigint NOT NULL DEFAULT 0,
        error            text,
        cancel_requested boolean NOT NULL DEFAULT false,
        patches          bigint,
        attempts         bigint NOT NULL DEFAULT 0,
        started_at       timestamptz,
        finished_at      timestamptz
    );
    CREATE INDEX jobs_status ON jobs(status, id);
    CREATE TABLE patches (
        id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        batch_id      bigint NOT NULL REFERENCES batches(id),
        reference     text NOT NULL,
        kind          text COLLATE "C" NOT NULL,
        status        text COLLATE "C" NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open','confirmed','false_positive','rectified')),
        area_m2       double precision NOT NULL,
        area_mu       double precision NOT NULL,
        parcel        text NOT NULL,
        pbf           boolean NOT NULL,
        county_code   text COLLATE "C",
        township_code text COLLATE "C",
        village_code  text COLLATE "C",
        group_code    text COLLATE "C",
        location_code text COLLATE "C",
        county_name   text,
        township_name text,
        village_name  text,
        group_name    text,
        class_before  text NOT NULL,
        class_after   text NOT NULL,
        dates         text NOT NULL,
        confidence    double precision NOT NULL,
        model_version text NOT NULL,
        evidence      text NOT NULL,
        geometry      text NOT NULL,
        geom          geometry(Geometry, 4326) NOT NULL,
        min_x double precision NOT NULL, min_y double precision NOT NULL,
        max_x double precision NOT NULL, max_y double precision NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX patches_batch ON patches(batch_id, id);
    CREATE INDEX patches_location ON patches(location_code);
    CREATE INDEX patches_geom ON patches USING gist (geom);
    CREATE TABLE verdicts (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        patch_id    bigint NOT NULL REFERENCES patches(id),
        verdict     text NOT NULL CHECK (verdict IN ('confirmed','false_positive','rectified')),
        note        text NOT NULL,
        from_status text NOT NULL,
        to_status   text NOT NULL,
        token_id    bigint NOT NULL REFERENCES tokens(id),
        actor       text NOT NULL,
        role        text NOT NULL,
        at          timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX verdicts_patch ON verdicts(patch_id, id);
    CREATE TRIGGER verdicts_append_only BEFORE UPDATE OR DELETE ON verdicts
      FOR EACH ROW EXECUTE FUNCTION gengdi_append_only('verdicts are append-only');
    CREATE TRIGGER verdicts_no_truncate BEFORE TRUNCATE ON verdicts
      FOR EACH STATEMENT EXECUTE FUNCTION gengdi_append_only('verdicts are append-only');
    "#,
    // 2: training jobs (POST /api/v1/training).
    r#"
    CREATE TABLE training_jobs (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        request     text NOT NULL,
        status      text COLLATE "C" NOT NULL
                    CHECK (status IN ('queued','running','done','failed','cancelled')),
        stage       text NOT NULL DEFAULT 'queued',
        epoch       bigint NOT NULL DEFAULT 0,
        epochs      bigint NOT NULL,
        result      text,
        error       text,
        attempts    bigint NOT NULL DEFAULT 0,
        created_by  bigint NOT NULL REFERENCES tokens(id),
        created_at  timestamptz NOT NULL DEFAULT now(),
        started_at  timestamptz,
        finished_at timestamptz
    );
    CREATE INDEX training_jobs_status ON training_jobs(status, id);
    "#,
    // 3: change lists filtered by kind within a region.
    r#"
    CREATE INDEX patches_kind_location ON patches(kind, location_code);
    "#,
    // 4: administrative-boundary layers; a batch's options; verdict photos (append-only).
    r#"
    CREATE TABLE admin_layers (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name        text NOT NULL,
        source      text NOT NULL,
        stored_path text NOT NULL,
        mapping     text NOT NULL,
        layers      text NOT NULL,
        features    bigint NOT NULL,
        used        bigint NOT NULL,
        rejected    bigint NOT NULL,
        units       text NOT NULL,
        fields_used text NOT NULL,
        created_by  bigint NOT NULL REFERENCES tokens(id),
        created_at  timestamptz NOT NULL DEFAULT now()
    );
    ALTER TABLE batches ADD COLUMN options text NOT NULL DEFAULT '{}';
    ALTER TABLE training_jobs ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
    ALTER TABLE patches ADD COLUMN series text;
    CREATE TABLE verdict_photos (
        id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        verdict_id   bigint NOT NULL REFERENCES verdicts(id),
        file         text NOT NULL,
        content_type text NOT NULL,
        bytes        bigint NOT NULL,
        sha256       text NOT NULL,
        taken_at     text,
        lon          double precision,
        lat          double precision
    );
    CREATE INDEX verdict_photos_verdict ON verdict_photos(verdict_id, id);
    CREATE TRIGGER verdict_photos_append_only BEFORE UPDATE OR DELETE ON verdict_photos
      FOR EACH ROW EXECUTE FUNCTION gengdi_append_only('verdict photos are append-only');
    CREATE TRIGGER verdict_photos_no_truncate BEFORE TRUNCATE ON verdict_photos
      FOR EACH STATEMENT EXECUTE FUNCTION gengdi_append_only('verdict photos are append-only');
    "#,
    // 5: farmland parcels for the map (WGS 84 GeoJSON and its PostGIS geometry).
    r#"
    ALTER TABLE farmland ADD COLUMN parcels_stored boolean NOT NULL DEFAULT false;
    CREATE TABLE parcels (
        farmland_id     bigint NOT NULL REFERENCES farmland(id),
        id              bigint NOT NULL,
        parcel          text NOT NULL,
        pbf             boolean NOT NULL,
        land_class      text,
        land_class_name text,
        area_mu         double precision NOT NULL,
        location_code   text COLLATE "C",
        min_x           double precision NOT NULL,
        min_y           double precision NOT NULL,
        max_x           double precision NOT NULL,
        max_y           double precision NOT NULL,
        geometry        text NOT NULL,
        geom            geometry(Geometry, 4326) NOT NULL,
        PRIMARY KEY (farmland_id, id)
    );
    CREATE INDEX parcels_geom ON parcels USING gist (geom);
    "#,
    // 6: the work queue of shared runs (PostgreSQL only; SQLite's migration 6 is empty):
    // a batch is a plan task, then one task per tile with farmland, then a merge task. A
    // task is claimed with a lease that its worker's heartbeat renews; one whose heartbeat
    // stopped is claimed again. A tile's output is kept with its task, in the transaction
    // that finishes it.
    r#"
    CREATE TABLE tasks (
        id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        batch_id     bigint NOT NULL REFERENCES batches(id),
        kind         text COLLATE "C" NOT NULL CHECK (kind IN ('plan','tile','merge')),
        tile         bigint NOT NULL DEFAULT -1,
        status       text COLLATE "C" NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued','running','done','failed','cancelled')),
        worker       text,
        lease        text,
        lease_s      double precision,
        heartbeat_at timestamptz,
        attempts     bigint NOT NULL DEFAULT 0,
        result       bytea,
        error        text,
        created_at   timestamptz NOT NULL DEFAULT now(),
        finished_at  timestamptz,
        UNIQUE (batch_id, kind, tile),
        CHECK ((kind = 'tile') = (tile >= 0))
    );
    CREATE INDEX tasks_claim ON tasks(status, id);
    CREATE TABLE batch_plans (
        batch_id    bigint PRIMARY KEY REFERENCES batches(id),
        request     text NOT NULL,
        fingerprint text NOT NULL,
        tiles       bigint NOT NULL,
        planned_by  text NOT NULL,
        planned_at  timestamptz NOT NULL DEFAULT now()
    );
    "#,
];
