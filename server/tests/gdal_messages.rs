//! GDAL speaks through gengdi: its warnings reach stderr once, in gengdi's format, saying
//! which file, layer and feature GDAL was reading, at the level `-q` / `-v` / `RUST_LOG`
//! choose; and a file GDAL cannot open is an error in gengdi's words, saying what the file
//! is, never "GDALOpenEx returned a NULL pointer".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gdal::spatial_ref::SpatialRef;
use gdal::vector::{
    Feature, FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use gdal::DriverManager;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

const SCENE: &str = "fixtures/data/eolearn-slovenia-s2/s2l1c_20150711_13band.tif";
const FARMLAND: &str = "fixtures/data/eolearn-slovenia-s2/lulc_raba_polygons.gpkg";

/// Run gengdi from the repository root with `args`, `RUST_LOG` as given (unset if `None`).
fn gengdi(args: &[&str], rust_log: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gengdi"));
    cmd.args(args).current_dir(root()).env_remove("RUST_LOG");
    if let Some(v) = rust_log {
        cmd.env("RUST_LOG", v);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A GeoJSON farmland layer "parcels" in UTM 33N (the Slovenia scene's CRS), written with
/// OGR: parcel A1 a square, parcel B2 (FID 1) a bow tie crossing itself at (465800, 5079800).
fn farmland_with_a_bow_tie(dir: &Path) -> PathBuf {
    let path = dir.join("farmland.geojson");
    let drv = DriverManager::get_driver_by_name("GeoJSON").unwrap();
    let mut ds = drv.create_vector_only(&path).unwrap();
    let utm = SpatialRef::from_epsg(32633).unwrap();
    let layer = ds
        .create_layer(LayerOptions {
            name: "parcels",
            srs: Some(&utm),
            ty: OGRwkbGeometryType::wkbPolygon,
            options: None,
        })
        .unwrap();
    layer
        .create_defn_fields(&[("id", OGRFieldType::OFTString)])
        .unwrap();
    for (id, wkt) in [
        (
            "A1",
            "POLYGON ((465300 5079300,465600 5079300,465600 5079600,465300 5079600,465300 5079300))",
        ),
        (
            "B2",
            "POLYGON ((465700 5079700,465900 5079900,465900 5079700,465700 5079900,465700 5079700))",
        ),
    ] {
        let mut f = Feature::new(layer.defn()).unwrap();
        f.set_field(0, &FieldValue::StringValue(id.into())).unwrap();
        f.set_geometry(Geometry::from_wkt(wkt).unwrap()).unwrap();
        f.create(&layer).unwrap();
    }
    drop(ds);
    path
}

fn analyze_args<'a>(farmland: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "analyze",
        "--scenes",
        SCENE,
        "--farmland",
        farmland,
        "--out",
        out,
        "--tile",
        "64",
        "--no-crop-type",
    ]
}

#[test]
fn a_gdal_warning_about_a_farmland_feature_is_said_once_naming_file_layer_and_feature() {
    let dir = tempfile::tempdir().unwrap();
    let farmland = farmland_with_a_bow_tie(dir.path());
    let farmland = farmland.to_str().unwrap();
    let out = dir.path().join("changes.geojson");
    let out = out.to_str().unwrap();
    let expected = format!(
        "warning: GDAL: reading farmland layer \"parcels\" of {farmland}, feature 1 (parcel id B2): \
         Self-intersection at or near point 465800 5079800"
    );

    // Default level: the warning, once, in gengdi's format; GDAL prints nothing itself.
    let mut args = analyze_args(farmland, out);
    args.push("--json");
    let run = gengdi(&args, None);
    let err = text(&run.stderr);
    assert!(run.status.success(), "{err}");
    let gdal_lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("Self-intersection"))
        .collect();
    assert_eq!(gdal_lines, vec![expected.as_str()], "{err}");
    assert!(!err.contains("Warning 1:"), "a raw GDAL line: {err}");
    assert!(
        err.contains("farmland: layer parcels, 2 features: 2 used (1 repaired, 0 curved linearised), 0 rejected"),
        "{err}"
    );
    // stdout of --json stays pure JSON.
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let ids: Vec<&str> = v["parcels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["parcel_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["A1", "B2"], "the bow tie was repaired and used");

    // -q: errors only, so nothing at all on stderr.
    let mut quiet = vec!["-q"];
    quiet.extend(analyze_args(farmland, out));
    let run = gengdi(&quiet, None);
    assert!(run.status.success());
    assert_eq!(text(&run.stderr), "", "-q prints no warning");

    // RUST_LOG overrides the flags, both ways.
    let run = gengdi(&analyze_args(farmland, out), Some("error"));
    assert!(run.status.success());
    assert!(!text(&run.stderr).contains("Self-intersection"));
    let run = gengdi(&quiet, Some("gdal=warn"));
    assert!(run.status.success());
    assert_eq!(text(&run.stderr), format!("{expected}\n"));
}

/// One run that must fail: exit status 1, stderr exactly `expected` and a newline.
fn assert_fails_with(args: &[&str], expected: &str) {
    let run = gengdi(args, None);
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err, format!("{expected}\n"), "{args:?}");
    assert!(!err.contains("NULL pointer") && !err.contains("panicked"));
}

#[test]
fn a_directory_given_as_a_scene_is_a_directory_not_a_raster() {
    let dir = tempfile::tempdir().unwrap();
    let scene = dir.path().join("scene.tif");
    std::fs::create_dir(&scene).unwrap();
    let scene = scene.to_str().unwrap();
    assert_fails_with(
        &["info", scene],
        &format!(
            "error: cannot open scene: {scene}: a directory, not a raster file (a directory \
             stands for the rasters in it only where a command takes a folder of scenes)"
        ),
    );
}

#[test]
fn an_empty_scene_file_is_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let scene = dir.path().join("empty.tif");
    std::fs::write(&scene, b"").unwrap();
    let scene = scene.to_str().unwrap();
    assert_fails_with(
        &["info", scene],
        &format!("error: cannot open scene: {scene}: an empty file (0 bytes), not a raster"),
    );
}

#[test]
fn a_text_file_named_tif_is_no_raster_format_gdal_knows() {
    let dir = tempfile::tempdir().unwrap();
    let scene = dir.path().join("notes.tif");
    std::fs::write(&scene, b"these are notes, not pixels\n").unwrap();
    let scene = scene.to_str().unwrap();
    assert_fails_with(
        &["info", scene],
        &format!(
            "error: cannot open scene: {scene}: not a raster format GDAL knows \
             (a .tif file starting with \"these are notes,\")"
        ),
    );
}

#[test]
fn a_raster_given_as_farmland_is_not_a_vector_layer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("changes.geojson");
    assert_fails_with(
        &analyze_args(SCENE, out.to_str().unwrap()),
        &format!("error: {SCENE}: farmland layer: a raster dataset (GTiff), not a vector layer"),
    );
}

#[test]
fn a_farmland_file_gdal_cannot_read_says_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("changes.geojson");
    let out = out.to_str().unwrap();
    let folder = dir.path().join("parcels");
    std::fs::create_dir(&folder).unwrap();
    let empty = dir.path().join("parcels.gpkg");
    std::fs::write(&empty, b"").unwrap();
    let notes = dir.path().join("parcels.txt");
    std::fs::write(&notes, [0u8, 159, 146, 150]).unwrap();
    for (path, what) in [
        (
            &folder,
            "a directory in which GDAL finds no vector layer (give the layer's file: .gpkg, \
             .shp, .geojson, .fgb …)",
        ),
        (&empty, "an empty file (0 bytes), not a vector layer"),
        (
            &notes,
            "not a vector format GDAL knows (a .txt file starting with the bytes 00 9f 92 96)",
        ),
    ] {
        let p = path.to_str().unwrap();
        assert_fails_with(
            &analyze_args(p, out),
            &format!("error: {p}: farmland layer: {what}"),
        );
    }
}

#[test]
fn stac_assets_and_baseline_scenes_say_what_the_file_is() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("changes.geojson");
    let out = out.to_str().unwrap();
    std::fs::write(dir.path().join("empty.tif"), b"").unwrap();
    let bands: Vec<serde_json::Value> = [
        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
    ]
    .iter()
    .map(|b| serde_json::json!({ "name": b }))
    .collect();
    let item = serde_json::json!({
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "scene-1",
        "geometry": null,
        "properties": { "datetime": "2015-07-11T10:00:08Z" },
        "assets": { "data": { "href": "empty.tif", "eo:bands": bands } },
        "links": []
    });
    let stac = dir.path().join("item.json");
    std::fs::write(&stac, item.to_string()).unwrap();
    let stac = stac.to_str().unwrap();
    let empty = dir.path().join("empty.tif");
    let empty = empty.display();
    assert_fails_with(
        &[
            "analyze",
            "--scenes",
            stac,
            "--farmland",
            FARMLAND,
            "--out",
            out,
        ],
        &format!(
            "error: cannot open the scenes: {stac}: STAC item scene-1, asset data: {empty}: \
             an empty file (0 bytes), not a raster"
        ),
    );
    // A baseline directory is expanded; its empty .tif is named. (-q: the farmland summary
    // that comes first is not printed, the error is.)
    let folder = dir.path().to_str().unwrap();
    let mut args = vec!["-q"];
    args.extend(analyze_args(FARMLAND, out));
    args.extend(["--baseline", folder]);
    assert_fails_with(
        &args,
        &format!("error: cannot open the baseline scenes: {empty}: an empty file (0 bytes), not a raster"),
    );
}
