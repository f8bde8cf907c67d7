//! Fill a data dir's store with N synthetic patches (for the API load benchmark,
//! `scripts/bench-api.sh`): one farmland record, one done batch, patches spread over ten
//! counties × ten townships × ten villages, every unit with the five kinds and a 1° × 1° area.
//!
//! `cargo run --example seed_patches -- DATA_DIR N` (the data dir's SQLite store, or the
//! PostgreSQL database `GENGDI_DATABASE` names).

use gengdi_service::store::{
    AdminCodes, BatchCreated, JobOutcome, NewBatch, NewFarmland, NewPatch, NewToken,
};
use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: seed_patches DATA_DIR N")?);
    let n: usize = args
        .next()
        .ok_or("usage: seed_patches DATA_DIR N")?
        .parse()?;
    let config = gengdi_service::ServiceConfig {
        data_dir: dir.clone(),
        database: std::env::var("GENGDI_DATABASE")
            .ok()
            .filter(|s| !s.is_empty()),
        ..gengdi_service::ServiceConfig::default()
    };
    let (store, _) = gengdi_service::open_store(&config).await?;
    let owner = store
        .create_token(NewToken {
            name: "seed".into(),
            role: gengdi_service::auth::Role::Admin,
            region: None,
            digest: "seed-token-not-usable".into(),
        })
        .await?;
    let f = store
        .insert_farmland(NewFarmland {
            name: "seed".into(),
            source: "seed.gpkg".into(),
            stored_path: "/nonexistent/seed.gpkg".into(),
            layer: "parcels".into(),
            mapping: String::new(),
            features: n as i64,
            parcels: n as i64,
            used: n as i64,
            repaired: 0,
            rejected: 0,
            area_mu: n as f64 * 10.0,
            pbf_area_mu: n as f64 * 5.0,
            fields_used: serde_json::json!({}),
            created_by: owner.id,
        })
        .await?;
    let BatchCreated::New(b) = store
        .create_batch(NewBatch {
            options: Default::default(),
            name: Some("seed".into()),
            farmland: f.id,
            scenes: vec!["/nonexistent/a.tif".into()],
            created_by: owner.id,
            idempotency: None,
        })
        .await?
    else {
        return Err("the batch exists".into());
    };
    store.claim_job().await?;
    let kinds = [
        "abandonment",
        "tree_planting",
        "fishpond",
        "construction",
        "non_grain_pbf",
    ];
    // A small LCG: the same patches every run.
    let mut state: u64 = 20_261_129;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let patches: Vec<NewPatch> = (0..n)
        .map(|i| {
            // Kinds cycle with i; units with i / 5, so every unit holds every kind.
            let u = i / kinds.len();
            let county = format!("6405{:02}", 1 + u % 10);
            let township = format!("{county}{:03}", 1 + (u / 10) % 10);
            let village = format!("{township}{:03}", 1 + (u / 100) % 10);
            let (lon, lat) = (105.0 + next(), 37.0 + next());
            let d = 0.0005 + 0.001 * next();
            let ring = [
                [lon, lat],
                [lon + d, lat],
                [lon + d, lat + d],
                [lon, lat + d],
                [lon, lat],
            ];
            NewPatch {
                series: None,
                reference: format!("seed-{i}"),
                kind: kinds[i % kinds.len()].into(),
                parcel: format!("P{i}"),
                pbf: i % 2 == 0,
                area_m2: 667.0 * (1.0 + 20.0 * next()),
                area_mu: 1.0 + 20.0 * next(),
                admin: AdminCodes {
                    county_code: Some(county),
                    township_code: Some(township),
                    location_code: Some(village.clone()),
                    village_code: Some(village),
                    ..Default::default()
                },
                class_before: "annual_crop".into(),
                class_after: "bare".into(),
                dates: vec!["2024-04-20".into(), "2024-09-25".into()],
                confidence: 0.8,
                model_version: "seed".into(),
                evidence: "{}".into(),
                geometry: serde_json::json!({"type": "MultiPolygon", "coordinates": [[ring]]})
                    .to_string(),
                bbox: [lon, lat, lon + d, lat + d],
            }
        })
        .collect();
    store.finish_job(b.id, JobOutcome::Done(patches)).await?;
    println!("{n} patches stored in batch {} of {}", b.id, dir.display());
    Ok(())
}
