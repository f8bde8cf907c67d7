//! Imagery as it is delivered: Sentinel-2 SAFE products (folder, zip, metadata XML; L1C and
//! L2A; processing baselines before and after 04.00), Landsat Collection 2 Level-2 and
//! exports from other tools are read to the same reflectance.
//!
//! The products are built at test time around ESA's real metadata XML (GDAL's test suite,
//! `fixtures/data/gdal-sentinel2-safe`) with the real pixels of a BigEarthNet L2A patch
//! written as lossless JPEG 2000 by GDAL's JP2OpenJPEG driver: the post-2022 product stores
//! every valid DN + 1000, as ESA's processor does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gdal::raster::Buffer;
use gdal::{DriverManager, Metadata};
use gengdi_fixtures::fixture;
use gengdi_tiling::product::{self, sentinel2::ProductMetadata};
use gengdi_tiling::{
    PixelWindow, RadiometrySource, Scene, SceneOptions, SceneStack, StackOptions, TilingError,
};
use ndarray::{Array4, Axis};
use std::path::{Path, PathBuf};

const BEN: &str = "bigearthnet-tiny-s2/s2/S2B_MSIL2A_20180421T114349_47_56";
/// The land-cover model's bands and the cloud mask.
const MODEL_BANDS: [&str; 9] = [
    "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B11", "B12",
];

fn ben_file(band: &str) -> PathBuf {
    fixture(&format!(
        "{BEN}/S2B_MSIL2A_20180421T114349_47_56_{band}.tif"
    ))
}

/// A new GeoTIFF of `bands` bands of `T` on the BigEarthNet patch's georeferencing.
fn new_tiff<T: gdal::raster::GdalType>(path: &Path, size: usize, bands: usize) -> gdal::Dataset {
    let grid = gdal::Dataset::open(ben_file("B02")).unwrap();
    let gtiff = DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = gtiff
        .create_with_band_type::<T, _>(path, size, size, bands)
        .unwrap();
    ds.set_geo_transform(&grid.geo_transform().unwrap())
        .unwrap();
    ds.set_spatial_ref(&grid.spatial_ref().unwrap()).unwrap();
    ds
}

/// The image files an MTD lists, by band (finest resolution), as relative paths.
fn listed_files(mtd: &Path) -> Vec<(String, String)> {
    let meta = ProductMetadata::read(mtd).unwrap();
    meta.band_files
        .iter()
        .map(|(b, (f, _))| (b.clone(), f.clone()))
        .collect()
}

/// Write `band` of the BigEarthNet patch (or, for SCL, a class raster made from its B8A)
/// as a JPEG 2000 at `dest` with `add` added to every non-zero value.
fn write_band_jp2(band: &str, dest: &Path, add: u16, georeferenced: bool) {
    let src_band = if band == "SCL" { "B8A" } else { band };
    let src = gdal::Dataset::open(ben_file(src_band)).unwrap();
    let (w, h) = src.raster_size();
    let mut data: Vec<u16> = src
        .rasterband(1)
        .unwrap()
        .read_as::<u16>((0, 0), (w, h), (w, h), None)
        .unwrap()
        .data()
        .to_vec();
    let mem = DriverManager::get_driver_by_name("MEM").unwrap();
    let mut ds = if band == "SCL" {
        // A real-looking SCL: vegetation (4), bare (5), and a block of cloud (9).
        let classes: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if (i % w) < 10 && (i / w) < 10 {
                    9
                } else if *v > 2500 {
                    4
                } else {
                    5
                }
            })
            .collect();
        let ds = mem.create_with_band_type::<u8, _>("", w, h, 1).unwrap();
        let mut buf = Buffer::new((w, h), classes);
        ds.rasterband(1)
            .unwrap()
            .write((0, 0), (w, h), &mut buf)
            .unwrap();
        ds
    } else {
        for v in data.iter_mut().filter(|v| **v != 0) {
            *v += add;
        }
        let ds = mem.create_with_band_type::<u16, _>("", w, h, 1).unwrap();
        let mut buf = Buffer::new((w, h), data);
        ds.rasterband(1)
            .unwrap()
            .write((0, 0), (w, h), &mut buf)
            .unwrap();
        ds
    };
    if georeferenced {
        ds.set_geo_transform(&src.geo_transform().unwrap()).unwrap();
        ds.set_spatial_ref(&src.spatial_ref().unwrap()).unwrap();
    }
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let jp2 = DriverManager::get_driver_by_name("JP2OpenJPEG").unwrap();
    let opts = gdal::raster::RasterCreationOptions::from_iter([
        "REVERSIBLE=YES",
        "QUALITY=100",
        if georeferenced {
            "GMLJP2=YES"
        } else {
            "GMLJP2=NO"
        },
        if georeferenced {
            "GeoJP2=YES"
        } else {
            "GeoJP2=NO"
        },
    ]);
    ds.create_copy(&jp2, dest, &opts).unwrap().close().unwrap();
}

/// A SAFE folder under `dir` with the metadata `mtd` (a file of
/// `fixtures/data/gdal-sentinel2-safe`) and the BigEarthNet pixels in every band file it
/// lists (DN + `add`).
fn make_safe(dir: &Path, name: &str, mtd: &str, add: u16, georeferenced: bool) -> PathBuf {
    let template = fixture(&format!("gdal-sentinel2-safe/{mtd}"));
    let root = dir.join(name);
    std::fs::create_dir_all(&root).unwrap();
    let mtd_name = if mtd.contains("MSIL1C") {
        "MTD_MSIL1C.xml"
    } else {
        "MTD_MSIL2A.xml"
    };
    std::fs::copy(&template, root.join(mtd_name)).unwrap();
    for (band, file) in listed_files(&template) {
        if band == "B10" {
            continue; // cirrus: not among the BigEarthNet L2A bands (and not in L2A products)
        }
        write_band_jp2(&band, &root.join(format!("{file}.jp2")), add, georeferenced);
    }
    root
}

fn read_all(scenes: Vec<Scene>, bands: &[&str]) -> (SceneStack, Array4<f32>) {
    let stack = SceneStack::build(
        scenes,
        &StackOptions {
            bands: Some(bands.iter().map(|b| b.to_string()).collect()),
            ..Default::default()
        },
    )
    .unwrap();
    stack.check_radiometry().unwrap();
    let grid = stack.tile_grid(stack.grid.width, 0).unwrap();
    let tile = stack.read_tile(&grid.tile(0).unwrap()).unwrap();
    (stack, tile.values)
}

/// The same bands straight from the BigEarthNet GeoTIFFs (reflectance × 10 000, 2018).
fn reference() -> Array4<f32> {
    let scenes: Vec<Scene> = MODEL_BANDS
        .iter()
        .map(|b| Scene::open(ben_file(b)).unwrap())
        .collect();
    read_all(scenes, &MODEL_BANDS).1
}

fn safe_bands() -> Vec<&'static str> {
    MODEL_BANDS.iter().copied().chain(["SCL"]).collect()
}

#[test]
fn a_post_2022_product_reads_to_the_same_reflectance_as_a_pre_2022_one() {
    let dir = tempfile::tempdir().unwrap();
    let old = make_safe(
        dir.path(),
        "S2A_MSIL2A_20180818T094031_N0208_R036_T34VFJ_20180818T120345.SAFE",
        "l2a_n0208_MTD_MSIL2A.xml",
        0,
        true,
    );
    let new = make_safe(
        dir.path(),
        "S2B_MSIL2A_20230823T095559_N0509_R122_T34UCF_20230823T124759.SAFE",
        "l2a_n0509_MTD_MSIL2A.xml",
        1000,
        true,
    );
    let old_scenes = product::open_scenes(&old, &SceneOptions::default()).unwrap();
    let new_scenes = product::open_scenes(&new, &SceneOptions::default()).unwrap();

    // What the metadata says, as reported.
    let info_old = old_scenes[0].product.clone().unwrap();
    let info_new = new_scenes[0].product.clone().unwrap();
    assert_eq!(info_old.level, "L2A");
    assert_eq!(info_old.processing_baseline.as_deref(), Some("02.08"));
    assert!(info_old.offsets.is_empty());
    assert_eq!(info_old.tile_id.as_deref(), Some("T34VFJ"));
    assert_eq!(info_old.date.unwrap().to_string(), "2018-08-18");
    assert_eq!(info_new.processing_baseline.as_deref(), Some("05.09"));
    assert_eq!(info_new.tile_id.as_deref(), Some("T34UCF"));
    assert_eq!(info_new.date.unwrap().to_string(), "2023-08-23");
    assert_eq!(info_new.quantification, Some(10_000.0));
    assert_eq!(info_new.offsets.len(), 13);
    assert!(info_new.offsets.values().all(|o| *o == -1000.0));
    assert!(info_new.surface_reflectance);
    // Every band at its native resolution: 10 m, 20 m (SCL too), 60 m.
    for (band, folder) in [
        ("B02", "R10m"),
        ("B08", "R10m"),
        ("B05", "R20m"),
        ("B8A", "R20m"),
        ("SCL", "R20m"),
        ("B01", "R60m"),
        ("B09", "R60m"),
    ] {
        let f = info_new.bands[band].to_string_lossy().into_owned();
        assert!(f.contains(&format!("/{folder}/")), "{band}: {f}");
    }
    for s in &new_scenes {
        assert_eq!(s.date, info_new.date);
        let b = &s.bands[0];
        assert_eq!(s.bands.len(), 1);
        if b.name == "SCL" {
            assert_eq!(b.radiometry.source, RadiometrySource::Categorical);
        } else {
            assert_eq!(b.radiometry.to_canonical(), (1.0, -1000.0), "{}", b.name);
            assert_eq!(b.nodata, Some(0.0));
        }
    }

    let (stack, a) = read_all(old_scenes, &safe_bands());
    let (_, b) = read_all(new_scenes, &safe_bands());
    assert_eq!(stack.grid.width, 120);
    assert_eq!(
        a, b,
        "the same field gives the same reflectance before and after 2022"
    );
    // …and that reflectance is the delivered one: the BigEarthNet GeoTIFFs, exactly (the
    // JPEG 2000 is lossless, the 20 m bands are warped the same way).
    let r = reference();
    assert_eq!(
        a.slice(ndarray::s![.., ..9, .., ..]),
        r.view(),
        "SAFE bands equal the source GeoTIFF"
    );
    // The SCL comes through unscaled with nearest neighbour: the cloud block is class 9.
    let scl = a.index_axis(Axis(1), 9);
    assert_eq!(scl[[0, 0, 0]], 9.0);
    assert_eq!(scl[[0, 19, 19]], 9.0);
    assert!(scl.iter().all(|v| [4.0, 5.0, 9.0].contains(v)));
    // Without the offset every reflectance would be 0.1 too bright: check the product
    // really stores DN + 1000.
    let raw = Scene::open(info_new.bands["B04"].clone()).unwrap();
    let raw_b04 = raw
        .read_window::<f32>(&PixelWindow::full(120, 120), &[0])
        .unwrap();
    let ref_b04 = r.index_axis(Axis(1), 2);
    assert_eq!(raw_b04[[0, 60, 60]], ref_b04[[0, 60, 60]] + 1000.0);
}

#[test]
fn a_zipped_safe_and_its_metadata_xml_open_as_the_folder_does() {
    let dir = tempfile::tempdir().unwrap();
    let name = "S2B_MSIL2A_20230823T095559_N0509_R122_T34UCF_20230823T124759.SAFE";
    let safe = make_safe(dir.path(), name, "l2a_n0509_MTD_MSIL2A.xml", 1000, true);
    let zip = dir.path().join(name.replace(".SAFE", ".zip"));
    let status = std::process::Command::new("python3")
        .args(["-m", "zipfile", "-c"])
        .arg(&zip)
        .arg(&safe)
        .status()
        .unwrap();
    assert!(status.success());
    let (_, folder) = read_all(
        product::open_scenes(&safe, &SceneOptions::default()).unwrap(),
        &safe_bands(),
    );
    let zipped_scenes = product::open_scenes(&zip, &SceneOptions::default()).unwrap();
    assert!(zipped_scenes
        .iter()
        .all(|s| s.path.to_string_lossy().starts_with("/vsizip/")));
    let (_, zipped) = read_all(zipped_scenes, &safe_bands());
    assert_eq!(folder, zipped);
    // Nothing was unpacked beside the archive.
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 2);

    let by_xml =
        product::open_scenes(&safe.join("MTD_MSIL2A.xml"), &SceneOptions::default()).unwrap();
    let (_, xml) = read_all(by_xml, &safe_bands());
    assert_eq!(folder, xml);
}

#[test]
fn a_post_2022_l1c_product_applies_radio_add_offset_and_says_it_is_top_of_atmosphere() {
    let dir = tempfile::tempdir().unwrap();
    let safe = make_safe(
        dir.path(),
        "S2B_MSIL1C_20230823T095559_N0509_R122_T34UCF_20230823T120234.SAFE",
        "l1c_n0509_MTD_MSIL1C.xml",
        1000,
        true,
    );
    let scenes = product::open_scenes(&safe, &SceneOptions::default()).unwrap();
    let info = scenes[0].product.clone().unwrap();
    assert_eq!(info.level, "L1C");
    assert!(!info.surface_reflectance);
    assert!(info.summary().contains("top-of-atmosphere"));
    assert!(info.summary().contains("offset -1000 on every band"));
    let b04 = scenes.iter().find(|s| s.bands[0].name == "B04").unwrap();
    match &b04.bands[0].radiometry.source {
        RadiometrySource::ProductMetadata { what } => {
            assert!(what.contains("RADIO_ADD_OFFSET -1000"), "{what}");
            assert!(what.contains("QUANTIFICATION_VALUE 10000"), "{what}");
        }
        other => panic!("{other:?}"),
    }
    let (_, values) = read_all(scenes, &MODEL_BANDS);
    assert_eq!(values, reference());
}

#[test]
fn band_files_without_georeferencing_take_the_granule_position_from_mtd_tl() {
    let dir = tempfile::tempdir().unwrap();
    let safe = make_safe(
        dir.path(),
        "S2A_MSIL2A_20180818T094031_N0208_R036_T34VFJ_20180818T120345.SAFE",
        "l2a_n0208_MTD_MSIL2A.xml",
        0,
        false,
    );
    let granule = safe.join("GRANULE/L2A_T34VFJ_A016478_20180818T094030");
    std::fs::copy(
        fixture("gdal-sentinel2-safe/l2a_n0208_MTD_TL.xml"),
        granule.join("MTD_TL.xml"),
    )
    .unwrap();
    let scenes = product::open_scenes(&safe, &SceneOptions::default()).unwrap();
    let b02 = scenes.iter().find(|s| s.bands[0].name == "B02").unwrap();
    let b05 = scenes.iter().find(|s| s.bands[0].name == "B05").unwrap();
    assert_eq!(b02.crs.as_ref().unwrap().epsg, Some(32634));
    assert_eq!(
        b02.world_from_pixel.unwrap().0,
        [600000.0, 10.0, 0.0, 6400020.0, 0.0, -10.0]
    );
    assert_eq!(
        b05.world_from_pixel.unwrap().0,
        [600000.0, 20.0, 0.0, 6400020.0, 0.0, -20.0]
    );
    let (stack, values) = read_all(scenes, &MODEL_BANDS);
    assert_eq!(stack.grid.world_from_pixel.0[0], 600000.0);
    assert_eq!(values, reference(), "the pixels are the band files'");

    // Without MTD_TL.xml such a product cannot be placed: a clear error.
    std::fs::remove_file(granule.join("MTD_TL.xml")).unwrap();
    let err = product::open_scenes(&safe, &SceneOptions::default()).unwrap_err();
    assert!(matches!(err, TilingError::NoGeoreference { .. }), "{err}");
}

#[test]
fn a_product_without_a_quantification_value_is_refused_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let safe = make_safe(
        dir.path(),
        "S2B_MSIL2A_20230823T095559_N0509_R122_T34UCF_20230823T124759.SAFE",
        "l2a_n0509_MTD_MSIL2A.xml",
        1000,
        true,
    );
    let mtd = safe.join("MTD_MSIL2A.xml");
    let text = std::fs::read_to_string(&mtd).unwrap();
    let cut = text.replace(
        "<BOA_QUANTIFICATION_VALUE unit=\"none\">10000</BOA_QUANTIFICATION_VALUE>",
        "",
    );
    assert_ne!(cut, text);
    std::fs::write(&mtd, cut).unwrap();
    let err = product::open_scenes(&safe, &SceneOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("MTD_MSIL2A.xml"), "{msg}");
    assert!(msg.contains("no quantification value"), "{msg}");
    // A broken XML is a clear error too, never a panic.
    std::fs::write(&mtd, "<Level-2A_User_Product><General_Info>").unwrap();
    let msg = product::open_scenes(&safe, &SceneOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("malformed"), "{msg}");
}

/// A 12-band float GeoTIFF as Google Earth Engine (or R) exports Sentinel-2: bands named
/// `B1 … B8, B8A, B9, B11, B12`, reflectance in 0–1.
fn write_gee_export(path: &Path, scale_of_values: f32, metadata: Option<(&str, &str)>) {
    const GEE: [&str; 12] = [
        "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12",
    ];
    let mut ds = new_tiff::<f32>(path, 120, 12);
    let stack = {
        let scenes: Vec<Scene> = GEE
            .iter()
            .map(|b| {
                let name = match *b {
                    "B8A" | "B11" | "B12" => b.to_string(),
                    other => format!("B0{}", &other[1..]),
                };
                Scene::open(ben_file(&name)).unwrap()
            })
            .collect();
        let names: Vec<String> = scenes.iter().map(|s| s.bands[0].name.clone()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        read_all(scenes, &names).1
    };
    for (i, name) in GEE.iter().enumerate() {
        let mut band = ds.rasterband(i + 1).unwrap();
        band.set_description(name).unwrap();
        let data: Vec<f32> = stack
            .index_axis(Axis(1), i)
            .iter()
            .map(|v| v * scale_of_values)
            .collect();
        let mut buf = Buffer::new((120, 120), data);
        band.write((0, 0), (120, 120), &mut buf).unwrap();
    }
    if let Some((k, v)) = metadata {
        ds.set_metadata_item(k, v, "").unwrap();
    }
}

#[test]
fn an_earth_engine_export_with_float_reflectance_and_single_digit_band_names_reads_as_reflectance()
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gee_export.tif");
    write_gee_export(&path, 1.0 / 10_000.0, None);
    let scene = Scene::open(&path).unwrap();
    assert!(matches!(
        scene.bands[0].radiometry.source,
        RadiometrySource::FloatReflectance { .. }
    ));
    assert!(scene.bands[0].radiometry.to_string().contains("assumed"));
    assert_eq!(scene.band_index("B02").unwrap(), 1);
    assert_eq!(scene.band_index("B08").unwrap(), 7);
    let (_, values) = read_all(vec![scene], &MODEL_BANDS);
    let r = reference();
    let worst = values
        .iter()
        .zip(r.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst < 0.01,
        "float reflectance × 10000 = the DN, off by {worst}"
    );

    // What the user states wins: the same file read as if it held reflectance × 10000.
    let opts = SceneOptions {
        radiometry: Some(gengdi_tiling::Radiometry {
            scale: 0.0001,
            offset: 0.0,
            source: RadiometrySource::Given,
        }),
        ..Default::default()
    };
    let (_, as_dn) = read_all(vec![Scene::open_with(&path, &opts).unwrap()], &MODEL_BANDS);
    assert!((as_dn[[0, 2, 60, 60]] - r[[0, 2, 60, 60]] / 10_000.0).abs() < 1e-6);
}

#[test]
fn float_values_that_fit_no_convention_are_refused_before_classification() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kelvin.tif");
    write_gee_export(&path, 1000.0, None); // reflectance × 10^7: nobody's convention
    let scene = Scene::open(&path).unwrap();
    assert!(!scene.bands[0].radiometry.is_known());
    let stack = SceneStack::build(
        vec![scene],
        &StackOptions {
            bands: Some(MODEL_BANDS.iter().map(|b| b.to_string()).collect()),
            ..Default::default()
        },
    )
    .unwrap();
    let err = stack.check_radiometry().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("kelvin.tif"), "{msg}");
    assert!(msg.contains("--scale"), "{msg}");
    // Metadata that states the scale is believed.
    let stated = dir.path().join("stated.tif");
    write_gee_export(&stated, 1000.0, Some(("scale_factor", "0.0000001")));
    let scene = Scene::open(&stated).unwrap();
    let (gain, bias) = scene.bands[0].radiometry.to_canonical();
    assert!((gain - 0.001).abs() < 1e-9 && bias == 0.0, "{gain} {bias}");
    assert!(matches!(
        scene.bands[0].radiometry.source,
        RadiometrySource::FileMetadata { .. }
    ));
}

/// A Landsat 9 Collection 2 Level-2 product made from real reflectance: the BigEarthNet
/// bands at their Landsat wavelengths, stored as C2 DN = (reflectance + 0.2) / 0.0000275.
fn make_landsat(dir: &Path) -> PathBuf {
    let stem = "LC09_L2SP_129033_20230512_20230514_02_T1";
    let r = reference();
    // SR_B1..SR_B7 ← coastal (B02 stands in), blue, green, red, nir, swir1, swir2.
    let from = [0usize, 0, 1, 2, 6, 7, 8];
    let mut files = serde_json::Map::new();
    let mut params = serde_json::Map::new();
    let write = |name: &str, data: Vec<u16>| {
        let ds = new_tiff::<u16>(&dir.join(format!("{stem}_{name}.TIF")), 120, 1);
        let mut band = ds.rasterband(1).unwrap();
        band.set_no_data_value(Some(0.0)).unwrap();
        let mut buf = Buffer::new((120, 120), data);
        band.write((0, 0), (120, 120), &mut buf).unwrap();
    };
    for (n, src) in from.iter().enumerate() {
        let n = n + 1;
        let data: Vec<u16> = r
            .index_axis(Axis(1), *src)
            .iter()
            .map(|dn| ((dn / 10_000.0 + 0.2) / 0.0000275).round() as u16)
            .collect();
        write(&format!("SR_B{n}"), data);
        files.insert(
            format!("FILE_NAME_BAND_{n}"),
            format!("{stem}_SR_B{n}.TIF").into(),
        );
        params.insert(format!("REFLECTANCE_MULT_BAND_{n}"), "2.75E-05".into());
        params.insert(format!("REFLECTANCE_ADD_BAND_{n}"), "-0.2".into());
    }
    // QA_PIXEL: clear land, with a cloud in the top-left corner.
    let qa: Vec<u16> = (0..120 * 120)
        .map(|i| {
            if i % 120 < 10 && i / 120 < 10 {
                22280
            } else {
                21824
            }
        })
        .collect();
    write("QA_PIXEL", qa);
    files.insert(
        "FILE_NAME_QUALITY_L1_PIXEL".into(),
        format!("{stem}_QA_PIXEL.TIF").into(),
    );
    files.insert("PROCESSING_LEVEL".into(), "L2SP".into());
    files.insert("COLLECTION_NUMBER".into(), "02".into());
    let mtl = serde_json::json!({"LANDSAT_METADATA_FILE": {
        "PRODUCT_CONTENTS": files,
        "IMAGE_ATTRIBUTES": {"SPACECRAFT_ID": "LANDSAT_9", "WRS_PATH": "129", "WRS_ROW": "33",
                             "DATE_ACQUIRED": "2023-05-12"},
        "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS": params,
        "LEVEL1_RADIOMETRIC_RESCALING": {"REFLECTANCE_MULT_BAND_4": "2.0E-05",
                                         "REFLECTANCE_ADD_BAND_4": "-0.1"}
    }});
    let path = dir.join(format!("{stem}_MTL.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&mtl).unwrap()).unwrap();
    path
}

#[test]
fn a_landsat_collection_2_product_reads_as_surface_reflectance_with_its_qa_mask() {
    let dir = tempfile::tempdir().unwrap();
    let mtl = make_landsat(dir.path());
    for path in [mtl.clone(), dir.path().to_path_buf()] {
        let scenes = product::open_scenes(&path, &SceneOptions::default()).unwrap();
        assert_eq!(scenes.len(), 8);
        let info = scenes[0].product.clone().unwrap();
        assert_eq!(info.level, "L2SP");
        assert!(info.surface_reflectance);
        assert_eq!(info.tile_id.as_deref(), Some("129033"));
        assert_eq!(info.date.unwrap().to_string(), "2023-05-12");
        let red = scenes.iter().find(|s| s.bands[0].name == "SR_B4").unwrap();
        assert_eq!(red.sensor, Some(gengdi_tiling::Sensor::Landsat9));
        // The Level-2 scale, not the Level-1 one of the same band number.
        assert_eq!(red.bands[0].radiometry.scale, 0.0000275);
        assert_eq!(red.bands[0].radiometry.offset, -0.2);
        let qa = scenes
            .iter()
            .find(|s| s.bands[0].name == "QA_PIXEL")
            .unwrap();
        assert_eq!(qa.bands[0].radiometry.source, RadiometrySource::Categorical);
    }
    let scenes = product::open_scenes(&mtl, &SceneOptions::default()).unwrap();
    let (_, values) = read_all(
        scenes,
        &[
            "blue", "green", "red", "nir", "swir16", "swir22", "QA_PIXEL",
        ],
    );
    let r = reference();
    for (k, src) in [(0usize, 0usize), (1, 1), (2, 2), (3, 6), (4, 7), (5, 8)] {
        let worst = values
            .index_axis(Axis(1), k)
            .iter()
            .zip(r.index_axis(Axis(1), src).iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        // One C2 DN is 0.275 of reflectance × 10 000: rounding to DN loses at most half.
        assert!(worst <= 0.14, "band {k}: off by {worst}");
    }
    let qa = values.index_axis(Axis(1), 6);
    assert_eq!(qa[[0, 0, 0]], 22280.0);
    assert_eq!(qa[[0, 50, 50]], 21824.0);
    assert!(!gengdi_tiling::product::landsat::qa_pixel_is_clear(
        qa[[0, 0, 0]] as u16
    ));

    // The land-cover model needs red-edge bands Landsat has not: a clear error naming them.
    let scenes = product::open_scenes(&mtl, &SceneOptions::default()).unwrap();
    let err = SceneStack::build(
        scenes,
        &StackOptions {
            bands: Some(MODEL_BANDS.iter().map(|b| b.to_string()).collect()),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no band \"B05\""), "{err}");
    assert!(err.contains("SR_B4"), "{err}");
}

#[test]
fn plain_files_still_open_as_one_scene_and_old_products_are_named_unsupported() {
    let tif = ben_file("B02");
    let scenes = product::open_scenes(&tif, &SceneOptions::default()).unwrap();
    assert_eq!(scenes.len(), 1);
    assert!(scenes[0].product.is_none());
    assert_eq!(scenes[0].bands[0].radiometry.to_canonical(), (1.0, 0.0));
    assert!(!product::is_product(&tif));
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("S2A_OPER_PRD_MSIL1C.SAFE");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("S2A_OPER_MTD_SAFL1C_PDMC.xml"), "<x/>").unwrap();
    let err = product::open_scenes(&old, &SceneOptions::default()).unwrap_err();
    assert!(err.to_string().contains("OPER"), "{err}");
    let md = gdal::Dataset::open(&tif).unwrap();
    let _ = md.metadata_item("AREA_OR_POINT", "");
}

#[test]
fn a_gaofen_scene_is_named_dated_from_its_xml_and_not_taken_for_reflectance_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("GF2_PMS1_E105.1_N37.5_L1A0004781234-MSS1.tiff");
    let ds = new_tiff::<u16>(&path, 120, 4);
    for (i, b) in ["B02", "B03", "B04", "B08"].iter().enumerate() {
        let src = gdal::Dataset::open(ben_file(b)).unwrap();
        let mut buf = src
            .rasterband(1)
            .unwrap()
            .read_as::<u16>((0, 0), (120, 120), (120, 120), None)
            .unwrap();
        // 10-bit DN, as the PMS camera delivers them.
        for v in buf.data_mut() {
            *v /= 8;
        }
        ds.rasterband(i + 1)
            .unwrap()
            .write((0, 0), (120, 120), &mut buf)
            .unwrap();
    }
    drop(ds);
    std::fs::write(
        path.with_extension("xml"),
        "<?xml version=\"1.0\"?><ProductMetaData><SatelliteID>GF2</SatelliteID>\
         <SensorID>PMS1</SensorID><ReceiveTime>2020-05-04 01:00:00</ReceiveTime>\
         <StartTime>2020-05-03 03:52:10</StartTime></ProductMetaData>",
    )
    .unwrap();
    let scene = Scene::open(&path).unwrap();
    assert_eq!(scene.sensor, Some(gengdi_tiling::Sensor::Gaofen2));
    assert_eq!(scene.date.unwrap().to_string(), "2020-05-03");
    let names: Vec<&str> = scene.bands.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["B1", "B2", "B3", "B4"]);
    assert_eq!(scene.band_index("red").unwrap(), 2);
    assert_eq!(scene.band_index("nir").unwrap(), 3);
    let said = scene.bands[0].radiometry.to_string();
    assert!(said.contains("uncalibrated DN"), "{said}");
    let stack = SceneStack::build(vec![scene], &StackOptions::default()).unwrap();
    assert!(matches!(
        stack.check_radiometry(),
        Err(TilingError::UnknownRadiometry { .. })
    ));
    // Calibrated by the user's coefficients: accepted, and applied.
    let opts = SceneOptions {
        radiometry: Some(gengdi_tiling::Radiometry {
            scale: 0.0008,
            offset: 0.0,
            source: RadiometrySource::Given,
        }),
        ..Default::default()
    };
    let scene = Scene::open_with(&path, &opts).unwrap();
    let raw = scene
        .read_window::<f32>(&PixelWindow::full(120, 120), &[2])
        .unwrap();
    let stack = SceneStack::build(vec![scene], &StackOptions::default()).unwrap();
    stack.check_radiometry().unwrap();
    let grid = stack.tile_grid(120, 0).unwrap();
    let tile = stack.read_tile(&grid.tile(0).unwrap()).unwrap();
    assert!((tile.values[[0, 2, 7, 9]] - raw[[0, 7, 9]] * 8.0).abs() < 1e-3);
}

#[test]
fn a_coefficients_file_calibrates_gaofen_dn_to_top_of_atmosphere_reflectance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("GF2_PMS1_E105.1_N37.5_L1A0004781234-MSS1.tiff");
    let ds = new_tiff::<u16>(&path, 8, 4);
    for b in 1..=4 {
        let mut buf = Buffer::new((8, 8), vec![400u16 + b as u16 * 100; 64]);
        ds.rasterband(b)
            .unwrap()
            .write((0, 0), (8, 8), &mut buf)
            .unwrap();
    }
    drop(ds);
    std::fs::write(
        path.with_extension("xml"),
        "<ProductMetaData><SatelliteID>GF2</SatelliteID><SensorID>PMS1</SensorID>\
         <StartTime>2020-07-04 03:52:10</StartTime><SolarZenith>30.0</SolarZenith>\
         </ProductMetaData>",
    )
    .unwrap();
    let coefficients = dir.path().join("gaofen.toml");
    std::fs::write(
        &coefficients,
        "[[sensor]]\nsatellite = \"GF-2\"\nsensor = \"PMS1\"\ngain = [0.1322, 0.1363, 0.1337, 0.1283]\n\
         offset = [0.0, 0.0, 1.0, 0.0]\nesun = [1944.0, 1834.0, 1557.0, 1119.0]\n\
         [[sensor]]\nsatellite = \"GF1\"\nsensor = \"WFV1\"\ngain = [0.2, 0.2, 0.2, 0.2]\nesun = [1, 1, 1, 1]\n",
    )
    .unwrap();
    let cal = gengdi_tiling::calibration::CalibrationFile::load(&coefficients).unwrap();
    let opts = SceneOptions {
        calibration: Some(std::sync::Arc::new(cal)),
        ..Default::default()
    };
    let scene = Scene::open_with(&path, &opts).unwrap();
    // 4 July: aphelion, d = 1.0167 AU; cos 30° = 0.8660.
    let d: f64 = 1.0 - 0.01672 * (0.9856f64 * (186.0 - 4.0)).to_radians().cos();
    for (b, (gain, offset, esun)) in [
        (0.1322, 0.0, 1944.0),
        (0.1363, 0.0, 1834.0),
        (0.1337, 1.0, 1557.0),
        (0.1283, 0.0, 1119.0),
    ]
    .iter()
    .enumerate()
    {
        let dn = 400.0 + (b + 1) as f64 * 100.0;
        let expected =
            std::f64::consts::PI * (gain * dn + offset) * d * d / (esun * 30f64.to_radians().cos());
        let r = &scene.bands[b].radiometry;
        assert!(
            (dn * r.scale + r.offset - expected).abs() < 1e-12,
            "band {b}: {} vs {expected}",
            dn * r.scale + r.offset
        );
        assert!(r.to_string().contains("GF2 PMS1"), "{r}");
    }
    // The red band's reflectance, hand-computed: π·(0.1337·700 + 1)·d²/(1557·cos 30°).
    let red = &scene.bands[2].radiometry;
    assert!((700.0 * red.scale + red.offset - 0.2278).abs() < 5e-4);
    let stack = SceneStack::build(vec![scene], &StackOptions::default()).unwrap();
    stack.check_radiometry().unwrap();

    // A camera the file does not list stays uncalibrated, and says so.
    std::fs::write(
        path.with_extension("xml"),
        "<ProductMetaData><SatelliteID>GF2</SatelliteID><SensorID>PMS2</SensorID>\
         <StartTime>2020-07-04</StartTime><SolarElevation>60</SolarElevation></ProductMetaData>",
    )
    .unwrap();
    let scene = Scene::open_with(&path, &opts).unwrap();
    let said = scene.bands[0].radiometry.to_string();
    assert!(said.contains("no coefficients for GF2 PMS2"), "{said}");
    // A malformed coefficients file is refused with its name.
    std::fs::write(&coefficients, "[[sensor]]\nsatellite = \"GF2\"\n").unwrap();
    let err = gengdi_tiling::calibration::CalibrationFile::load(&coefficients).unwrap_err();
    assert!(err.to_string().contains("gaofen.toml"), "{err}");
}
