//! A season delivered as post-2022 Sentinel-2 products (`.SAFE` folders of JPEG 2000 band
//! files, every DN stored + 1000 as processing baseline 04.00 and later do) gives exactly
//! the change list of the same season as plain GeoTIFFs — through `gengdi analyze`, with the
//! SCL of each product as its cloud mask.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gdal::raster::Buffer;
use gdal::{DriverManager, Metadata};
use gengdi_fixtures::season::{generate_season, SeasonSpec};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `IMAGE_FILE` entries of the MTD by band name (`B02`, `SCL` …), at the band's native
/// resolution folder.
fn listed(mtd: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in mtd.lines() {
        let Some(rest) = line.trim().strip_prefix("<IMAGE_FILE>") else {
            continue;
        };
        let file = rest.trim_end_matches("</IMAGE_FILE>").to_string();
        let stem = file.rsplit('/').next().unwrap();
        let parts: Vec<&str> = stem.split('_').collect();
        let (band, res) = (parts[parts.len() - 2], parts[parts.len() - 1]);
        let native = match band {
            "B02" | "B03" | "B04" | "B08" => "10m",
            "B01" | "B09" => "60m",
            _ => "20m",
        };
        if res == native {
            out.push((band.to_string(), file));
        }
    }
    out
}

/// The GeoTIFF of one date as a baseline-05.09 L2A product of that date.
fn to_safe(tif: &Path, date: &str, dir: &Path) -> PathBuf {
    let template = std::fs::read_to_string(
        root().join("fixtures/data/gdal-sentinel2-safe/l2a_n0509_MTD_MSIL2A.xml"),
    )
    .unwrap();
    let safe = dir.join(format!(
        "S2B_MSIL2A_{}T095559_N0509_R122_T34UCF_{}T124759.SAFE",
        date.replace('-', ""),
        date.replace('-', "")
    ));
    std::fs::create_dir_all(&safe).unwrap();
    let mtd = template.replace("2023-08-23", date);
    std::fs::write(safe.join("MTD_MSIL2A.xml"), &mtd).unwrap();
    let src = gdal::Dataset::open(tif).unwrap();
    let (w, h) = src.raster_size();
    let mem = DriverManager::get_driver_by_name("MEM").unwrap();
    let jp2 = DriverManager::get_driver_by_name("JP2OpenJPEG").unwrap();
    let opts = gdal::raster::RasterCreationOptions::from_iter(["REVERSIBLE=YES", "QUALITY=100"]);
    let mut written = 0;
    for (band, file) in listed(&mtd) {
        let Some(i) = (1..=src.raster_count())
            .find(|i| src.rasterband(*i).unwrap().description().unwrap() == band)
        else {
            continue;
        };
        let rb = src.rasterband(i).unwrap();
        let mut data = rb.read_as::<u16>((0, 0), (w, h), (w, h), None).unwrap();
        let nodata = rb.no_data_value();
        if band != "SCL" {
            for v in data.data_mut() {
                if *v != 0 && Some(*v as f64) != nodata {
                    *v += 1000;
                }
            }
        }
        let mut ds = mem.create_with_band_type::<u16, _>("", w, h, 1).unwrap();
        ds.set_geo_transform(&src.geo_transform().unwrap()).unwrap();
        ds.set_spatial_ref(&src.spatial_ref().unwrap()).unwrap();
        let mut buf = Buffer::new((w, h), data.data().to_vec());
        ds.rasterband(1)
            .unwrap()
            .write((0, 0), (w, h), &mut buf)
            .unwrap();
        let dest = safe.join(format!("{file}.jp2"));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        ds.create_copy(&jp2, &dest, &opts).unwrap().close().unwrap();
        written += 1;
    }
    assert!(
        written >= 10,
        "{written} bands written for {}",
        tif.display()
    );
    safe
}

fn analyze(scenes: &[PathBuf], farmland: &Path, out: &Path) -> String {
    let run = Command::new(env!("CARGO_BIN_EXE_gengdi"))
        .arg("analyze")
        .arg("--scenes")
        .args(scenes)
        .arg("--farmland")
        .arg(farmland)
        .arg("--out")
        .arg(out)
        .args(["--tile", "128"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn a_season_of_post_2022_safe_products_gives_the_change_list_of_the_same_geotiffs() {
    let dir = tempfile::tempdir().unwrap();
    let season = dir.path().join("season");
    generate_season(&SeasonSpec::default(), &season).unwrap();
    let mut tifs: Vec<PathBuf> = std::fs::read_dir(&season)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("S2_L2A_")
                && p.extension().is_some_and(|e| e == "tif")
        })
        .collect();
    tifs.sort();
    assert_eq!(tifs.len(), 6);
    let products = dir.path().join("products");
    let safes: Vec<PathBuf> = tifs
        .iter()
        .map(|t| {
            let stem = t.file_stem().unwrap().to_string_lossy().into_owned();
            let d = stem.trim_start_matches("S2_L2A_");
            let date = format!("{}-{}-{}", &d[0..4], &d[4..6], &d[6..8]);
            to_safe(t, &date, &products)
        })
        .collect();
    // `gengdi info` says what the product is and how its values were read.
    let info = Command::new(env!("CARGO_BIN_EXE_gengdi"))
        .arg("info")
        .arg(&safes[0])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    assert!(
        said.contains("product:    Sentinel-2 L2A (surface reflectance), processing baseline 05.09, tile T34UCF, 2024-04-20, quantification 10000, offset -1000 on every band"),
        "{said}"
    );
    assert!(
        said.contains("values:     reflectance = value × 0.0001 − 0.1 (from MTD_MSIL2A.xml: BOA_QUANTIFICATION_VALUE 10000, BOA_ADD_OFFSET -1000)"),
        "{said}"
    );
    assert!(
        said.contains("values:     class codes (not scaled)"),
        "{said}"
    );
    let farmland = season.join("farmland.gpkg");
    let from_tif = analyze(&tifs, &farmland, &dir.path().join("tif.csv"));
    let from_safe = analyze(&safes, &farmland, &dir.path().join("safe.csv"));
    assert!(from_tif.lines().count() > 20, "{from_tif}");
    assert_eq!(from_safe, from_tif);

    // Read without its offset (as GDAL alone reads it) the same season is another season:
    // every reflectance 0.1 too bright.
    let wrong = Command::new(env!("CARGO_BIN_EXE_gengdi"))
        .arg("analyze")
        .arg("--scenes")
        .args(&safes)
        .args(["--scale", "0.0001", "--offset", "0"])
        .arg("--farmland")
        .arg(&farmland)
        .arg("--out")
        .arg(dir.path().join("wrong.csv"))
        .args(["--tile", "128"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(wrong.status.success());
    let wrong = std::fs::read_to_string(dir.path().join("wrong.csv")).unwrap();
    assert_ne!(wrong, from_tif);
}
