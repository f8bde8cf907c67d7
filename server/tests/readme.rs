//! The README's example commands run, and print what they should.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn gengdi(args: &str) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("{} {args}", env!("CARGO_BIN_EXE_gengdi")))
        .current_dir(root())
        .output()
        .unwrap()
}

#[test]
fn every_gengdi_command_in_the_readme_succeeds() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut in_sh = false;
    let mut commands: Vec<&str> = Vec::new();
    for line in readme.lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            l if in_sh => commands.extend(l.strip_prefix("gengdi ")),
            _ => {}
        }
    }
    assert!(commands.len() >= 4, "the README shows its commands");
    // The commands write under target/, which a build elsewhere (CARGO_TARGET_DIR) does not
    // make.
    std::fs::create_dir_all(root().join("target")).unwrap();
    for c in commands {
        let out = gengdi(c);
        assert!(
            out.status.success(),
            "`gengdi {c}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "`gengdi {c}` printed nothing");
    }
}

#[test]
fn info_stats_match_the_raw_truth() {
    // The GDAL-made variant holds the same pixels as the raw truth file; band 1's sum and
    // count come from that file.
    let out = gengdi("info fixtures/data/geotiff-reader-fixtures/gdal-generated-variants/s2_u16_tiled64_zstd_pred2.tif --stats --json");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let raw = std::fs::read(root().join("fixtures/data/geotiff-reader-fixtures/gdal-generated-variants/s2_reference_13x101x100_u16le.raw")).unwrap();
    let truth: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let stats = v["stats"].as_array().unwrap();
    assert_eq!(stats.len(), 13);
    for (b, st) in stats.iter().enumerate() {
        let band = &truth[b * 10100..(b + 1) * 10100];
        let sum: u64 = band.iter().map(|x| *x as u64).sum();
        assert_eq!(st["sum"].as_f64().unwrap(), sum as f64, "band {}", b + 1);
        assert_eq!(st["valid_count"].as_u64().unwrap(), 10100);
        assert_eq!(
            st["min"].as_f64().unwrap(),
            *band.iter().min().unwrap() as f64
        );
        assert_eq!(
            st["max"].as_f64().unwrap(),
            *band.iter().max().unwrap() as f64
        );
    }
    assert_eq!(v["width"], 100);
    assert_eq!(v["height"], 101);
    assert_eq!(v["crs"]["epsg"], 32633);
    assert_eq!(v["reader"]["reader"], "fast");
}

#[test]
fn info_reports_nodata_and_excludes_it() {
    let out =
        gengdi("info fixtures/data/geotiff-reader-fixtures/rasterio/all-nodata.tif --stats --json");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for st in v["stats"].as_array().unwrap() {
        assert_eq!(st["valid_count"], 0);
        assert!(st["min"].is_null());
    }
    assert_eq!(v["bands"][0]["nodata"], 0.0);
}

#[test]
fn the_three_georeferencing_mechanisms_give_gdals_affine() {
    for (file, mech) in [
        (
            "austrian_capitals_model_tie_point_and_pixel_scale_pixel_is_area.tif",
            "tie_point_and_scale",
        ),
        (
            "austrian_capitals_model_transformation_pixel_is_area.tif",
            "model_transformation",
        ),
        (
            "austrian_capitals_model_tie_point_and_pixel_scale_pixel_is_point.tif",
            "tie_point_and_scale",
        ),
        (
            "austrian_capitals_model_transformation_pixel_is_point.tif",
            "model_transformation",
        ),
    ] {
        let out = gengdi(&format!(
            "info fixtures/data/geotiff-reader-fixtures/georust-geotiff/{file} --json"
        ));
        assert!(out.status.success(), "{file}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["georeferencing"], mech, "{file}");
        let ours: Vec<f64> = v["world_from_pixel"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let ds = gdal::Dataset::open(
            root()
                .join("fixtures/data/geotiff-reader-fixtures/georust-geotiff")
                .join(file),
        )
        .unwrap();
        let theirs = ds.geo_transform().unwrap();
        for (a, b) in ours.iter().zip(theirs.iter()) {
            assert!((a - b).abs() < 1e-9, "{file}: {ours:?} vs GDAL {theirs:?}");
        }
    }
}

#[test]
fn tiles_reports_the_layout_and_reads_every_value() {
    let out = gengdi(
        "tiles fixtures/data/eolearn-slovenia-s2/s2l1c_2015*_13band.tif --tile 30 --halo 4 --json",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tile_count"], 16);
    assert_eq!(v["tiles_across"], 4);
    assert_eq!(v["stack"]["layers"].as_array().unwrap().len(), 5);
    assert_eq!(v["read"]["tiles"], 16);
    assert_eq!(v["read"]["valid_pixels"], 5 * 13 * 100 * 101);
}

#[test]
fn bad_input_gives_one_clear_line_and_status_1() {
    for (args, needle) in [
        ("info /no/such/file.tif", "no such file"),
        ("info fixtures/data/README.md", "cannot open scene"),
        (
            "tiles fixtures/data/eolearn-slovenia-s2/s2l1c_20150711_13band.tif --tile 0",
            "tile size 0",
        ),
        (
            "tiles fixtures/data/eolearn-slovenia-s2/s2l1c_20150711_13band.tif --bands SCL",
            "no band \"SCL\"",
        ),
        (
            "info fixtures/data/eolearn-slovenia-s2/dem.tif --band-names a,b",
            "band mapping names 2 bands but the raster has 1",
        ),
    ] {
        let out = gengdi(args);
        assert_eq!(out.status.code(), Some(1), "{args}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args}: {err}");
        assert!(!err.contains("panicked"), "{args}: {err}");
    }
}
