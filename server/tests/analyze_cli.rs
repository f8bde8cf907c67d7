//! `gengdi analyze --maps` on the real Slovenia scene: the parcel table a user opens to see
//! why a parcel was (or was not) flagged, with the crop-type season check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_parcel_table_carries_the_season_check_of_every_parcel_with_tree_pixels() {
    let out = tempfile::tempdir().unwrap();
    let maps = out.path().join("maps");
    let data = "fixtures/data/eolearn-slovenia-s2";
    let run = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{} analyze --scenes {data}/s2l1c_2015*_13band.tif --farmland {data}/lulc_raba_polygons.gpkg \
             --farmland-fields land_class=RABA_ID --config fixtures/slovenia-rules.toml --tile 64 \
             --out {} --maps {}",
            env!("CARGO_BIN_EXE_gengdi"),
            out.path().join("changes.geojson").display(),
            maps.display()
        ))
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let table = std::fs::read_to_string(maps.join("parcels.csv")).unwrap();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (id, flags, check, conf) = (
        col("parcel_id"),
        col("flags"),
        col("tree_check"),
        col("tree_check_confidence"),
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 88, "one row per register polygon");
    let mut checked = 0;
    for r in &rows {
        assert_eq!(r.len(), header.len(), "{r:?}");
        if r[flags].contains("tree_planting") {
            // Every flagged parcel went through the check and was not called an annual crop
            // with the default `tree_annual_crop_veto` confidence (0.4), nor grassland below
            // the default `tree_grassland_min_confidence` (0.3).
            let c: f64 = r[conf].parse().unwrap();
            let vetoed = ((r[check] == "grain" || r[check] == "non_grain") && c >= 0.4)
                || (r[check] == "grassland" && c < 0.3);
            assert!(
                !r[check].is_empty() && !vetoed,
                "{}: {:?} {c}",
                r[id],
                r[check]
            );
        }
        if !r[check].is_empty() {
            checked += 1;
            let c: f64 = r[conf].parse().unwrap();
            assert!((0.0..=1.0).contains(&c), "{}: {c}", r[id]);
        } else {
            assert!(r[conf].is_empty());
        }
    }
    assert!(checked >= 14, "{checked} parcels checked");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(maps.join("parcels.json")).unwrap()).unwrap();
    let with_check = json
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["tree_check"].is_null())
        .count();
    assert_eq!(with_check, checked);
}

/// A copy of the Slovenia register (layer `LULC`, 88 polygons) with a second polygon layer
/// `survey_area` (the scene's bounding box, EPSG:32633).
fn two_layer_farmland(dir: &std::path::Path) -> PathBuf {
    use gdal::vector::{Geometry, LayerAccess, LayerOptions, OGRwkbGeometryType};
    let path = dir.join("farmland.gpkg");
    std::fs::copy(
        root().join("fixtures/data/eolearn-slovenia-s2/lulc_raba_polygons.gpkg"),
        &path,
    )
    .unwrap();
    let mut ds = gdal::Dataset::open_ex(
        &path,
        gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR | gdal::GdalOpenFlags::GDAL_OF_UPDATE,
            ..Default::default()
        },
    )
    .unwrap();
    let srs = gdal::spatial_ref::SpatialRef::from_epsg(32633).unwrap();
    let mut layer = ds
        .create_layer(LayerOptions {
            name: "survey_area",
            srs: Some(&srs),
            ty: OGRwkbGeometryType::wkbPolygon,
            options: None,
        })
        .unwrap();
    layer
        .create_feature(
            Geometry::from_wkt(
                "POLYGON((465181 5079245,466180 5079245,466180 5080254,465181 5080254,465181 5079245))",
            )
            .unwrap(),
        )
        .unwrap();
    path
}

#[test]
fn analyze_reads_the_farmland_layer_named_by_farmland_layer_and_refuses_to_guess() {
    let dir = tempfile::tempdir().unwrap();
    let farmland = two_layer_farmland(dir.path());
    let data = "fixtures/data/eolearn-slovenia-s2";
    let analyze = |extra: &str| {
        Command::new("bash")
            .arg("-c")
            .arg(format!(
                "{} analyze --scenes {data}/s2l1c_2015*_13band.tif --farmland {} {extra} \
                 --farmland-fields land_class=RABA_ID --no-crop-type --tile 64 --out {}",
                env!("CARGO_BIN_EXE_gengdi"),
                farmland.display(),
                dir.path().join("changes.geojson").display(),
            ))
            .current_dir(root())
            .output()
            .unwrap()
    };
    // Two polygon layers, none named: an error naming both, with their feature counts.
    let out = analyze("");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for part in [
        "LULC (88 features",
        "survey_area (1 features",
        "--farmland-layer NAME",
    ] {
        assert!(stderr.contains(part), "{part:?} not in {stderr}");
    }
    // Named: that layer's 88 parcels are read.
    let out = analyze("--farmland-layer LULC");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("farmland: layer LULC, 88 features: 88 used"),
        "{stderr}"
    );
    // An unknown name: an error listing every layer.
    let out = analyze("--farmland-layer parcels");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no layer \"parcels\"")
            && stderr.contains("LULC (88 features")
            && stderr.contains("survey_area (1 features"),
        "{stderr}"
    );
}
