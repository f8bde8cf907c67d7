//! Researchers' own labels: the Slovenia land-use polygons (RABA register) and points written
//! here, read over the real Slovenia Sentinel-2 scenes, checked against GDAL's own
//! rasterisation and pixel reads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gdal::raster::Buffer;
use gdal::vector::LayerAccess;
use gdal::Metadata;
use gengdi_fixtures::fixture;
use gengdi_inference::labels::{
    croptype_samples, label_stack, landcover_samples, parse_class_map, LabelFileReport,
    LabelOptions,
};
use gengdi_inference::InferenceError;
use gengdi_models::features::BANDS;
use gengdi_models::samples::PixelSample;
use gengdi_models::split::Part;
use gengdi_models::train::landcover_split;
use gengdi_models::{DeviceChoice, LandCoverClass, TrainConfig};
use gengdi_tiling::{Scene, SceneStack};

const DIR: &str = "eolearn-slovenia-s2";
const POLYGONS: &str = "eolearn-slovenia-s2/lulc_raba_polygons.gpkg";
const MAP: &str = "1100=annual_crop,1300=grass,2000=tree,3000=built";
const W: usize = 100;
const H: usize = 101;

fn scene_paths() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture(DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("s2l1c_") && n.ends_with(".tif")
        })
        .collect();
    v.sort();
    assert_eq!(v.len(), 5);
    v
}

fn stack_of(paths: &[PathBuf]) -> SceneStack {
    label_stack(paths.iter().map(|p| Scene::open(p).unwrap()).collect()).unwrap()
}

fn options(map: &str) -> LabelOptions {
    let mut o = LabelOptions::new("RABA_ID");
    o.class_map = parse_class_map(map).unwrap();
    o
}

/// Model bands of every scene, read by GDAL: `[date][band][row * W + col]` (dates in file
/// name order = date order).
fn gdal_values(paths: &[PathBuf]) -> Vec<Vec<Vec<u16>>> {
    paths
        .iter()
        .map(|p| {
            let ds = gdal::Dataset::open(p).unwrap();
            BANDS
                .iter()
                .map(|b| {
                    let i = (1..=ds.raster_count())
                        .find(|&i| ds.rasterband(i).unwrap().description().unwrap() == *b)
                        .unwrap();
                    ds.rasterband(i)
                        .unwrap()
                        .read_band_as::<u16>()
                        .unwrap()
                        .data()
                        .to_vec()
                })
                .collect()
        })
        .collect()
}

/// The pixels (row, col), row-major, whose centre GDAL's rasteriser puts inside `geom`.
fn gdal_pixels(geom: &gdal::vector::Geometry, scene: &Path) -> Vec<(usize, usize)> {
    let src = gdal::Dataset::open(scene).unwrap();
    let mut ds = gdal::DriverManager::get_driver_by_name("MEM")
        .unwrap()
        .create_with_band_type::<u8, _>("", W, H, 1)
        .unwrap();
    ds.set_geo_transform(&src.geo_transform().unwrap()).unwrap();
    ds.set_spatial_ref(&src.spatial_ref().unwrap()).unwrap();
    gdal::raster::rasterize(&mut ds, &[1], std::slice::from_ref(geom), &[1.0], None).unwrap();
    let burnt = ds.rasterband(1).unwrap().read_band_as::<u8>().unwrap();
    (0..H * W)
        .filter(|&i| burnt.data()[i] == 1)
        .map(|i| (i / W, i % W))
        .collect()
}

/// Every feature of the polygon file: (FID, RABA_ID, GDAL pixels).
/// (FID, RABA_ID, pixels) of one polygon.
type RabaFeature = (u64, String, Vec<(usize, usize)>);

fn raba_features() -> Vec<RabaFeature> {
    let scene = &scene_paths()[0];
    let ds = gdal::Dataset::open(fixture(POLYGONS)).unwrap();
    let mut layer = ds.layer(0).unwrap();
    let idx = layer
        .defn()
        .fields()
        .position(|f| f.name() == "RABA_ID")
        .unwrap();
    layer
        .features()
        .map(|f| {
            let raba = f.field_as_string(idx).unwrap().unwrap();
            let px = gdal_pixels(f.geometry().unwrap(), scene);
            (f.fid().unwrap(), raba, px)
        })
        .collect()
}

fn by_group<'a>(samples: &'a [PixelSample], group: &str) -> Vec<&'a PixelSample> {
    samples.iter().filter(|s| s.group == group).collect()
}

fn accounted(r: &LabelFileReport) -> usize {
    r.used
        + r.no_class_value
        + r.unmapped.values().sum::<usize>()
        + r.rejected.len()
        + r.outside
        + r.no_pixel_centre
        + r.no_own_pixel
        + r.no_clear_observation
}

#[test]
fn polygons_give_every_pixel_centre_inside_at_every_valid_date_with_gdals_values() {
    let scenes = scene_paths();
    let stack = stack_of(&scenes);
    assert!(
        !stack.band_names.iter().any(|b| b == "SCL"),
        "L1C has no SCL"
    );
    let (samples, report) = landcover_samples(&[fixture(POLYGONS)], &options(MAP), &stack).unwrap();
    let values = gdal_values(&scenes);
    let mapped: BTreeMap<&str, LandCoverClass> = [
        ("1100", LandCoverClass::AnnualCrop),
        ("1300", LandCoverClass::Grass),
        ("2000", LandCoverClass::Tree),
        ("3000", LandCoverClass::Built),
    ]
    .into();
    let features = raba_features();
    assert_eq!(features.len(), 88);

    let mut used = 0;
    let mut outside_or_empty = 0;
    let mut checked_values = 0;
    for (fid, raba, pixels) in &features {
        let group = format!("lulc_raba_polygons:{fid}");
        let mine = by_group(&samples.samples, &group);
        let Some(class) = mapped.get(raba.as_str()) else {
            assert!(mine.is_empty(), "unmapped {raba} must give no sample");
            continue;
        };
        // No SCL and no nodata in these scenes: every date of every pixel is valid.
        assert_eq!(mine.len(), pixels.len() * 5, "feature {fid} ({raba})");
        if pixels.is_empty() {
            outside_or_empty += 1;
            continue;
        }
        used += 1;
        // Samples come pixel by pixel (row-major), date by date: each equals GDAL's read.
        for (k, s) in mine.iter().enumerate() {
            let (r, c) = pixels[k / 5];
            let date = k % 5;
            assert_eq!(s.class, *class);
            assert_eq!(s.source, "vector:lulc_raba_polygons");
            assert_eq!(s.stratum, format!("vector:{class}"));
            for (b, v) in s.dn.iter().enumerate() {
                assert_eq!(
                    *v,
                    f32::from(values[date][b][r * W + c]),
                    "feature {fid} pixel ({r}, {c}) date {date} band {}",
                    BANDS[b]
                );
            }
            checked_values += 1;
        }
    }
    assert_eq!(checked_values, samples.samples.len());
    assert!(used >= 20, "{used} features over the imagery");

    let f = &report.files[0];
    assert_eq!(f.features, 88);
    assert_eq!(f.used, used);
    assert_eq!(f.polygons, used);
    assert_eq!(f.points, 0);
    assert_eq!(f.class_field, "RABA_ID");
    assert_eq!(f.source_crs.as_deref(), Some("EPSG:32633"));
    assert_eq!(
        f.unmapped,
        BTreeMap::from([
            ("1410".to_string(), 15),
            ("1500".to_string(), 18),
            ("1600".to_string(), 4)
        ])
    );
    assert_eq!(f.outside + f.no_pixel_centre, outside_or_empty);
    // Outside = the mapped features whose geometry misses the imagery's extent (OGR says).
    let src = gdal::Dataset::open(&scenes[0]).unwrap();
    let gt = src.geo_transform().unwrap();
    let extent = gdal::vector::Geometry::bbox(
        gt[0],
        gt[3] + H as f64 * gt[5],
        gt[0] + W as f64 * gt[1],
        gt[3],
    )
    .unwrap();
    let ds = gdal::Dataset::open(fixture(POLYGONS)).unwrap();
    let mut layer = ds.layer(0).unwrap();
    let raba_idx = layer
        .defn()
        .fields()
        .position(|f| f.name() == "RABA_ID")
        .unwrap();
    let missing = layer
        .features()
        .filter(|x| {
            let raba = x.field_as_string(raba_idx).unwrap().unwrap();
            mapped.contains_key(raba.as_str()) && !x.geometry().unwrap().intersects(&extent)
        })
        .count();
    assert_eq!(f.outside, missing, "all these polygons touch the patch");
    assert_eq!(accounted(f), 88, "every feature is accounted for: {f:?}");
    assert_eq!(report.pixels_conflicting, 0);
    assert_eq!(report.pixels_shared, 0);
    assert_eq!(report.observations, samples.samples.len());
    assert_eq!(report.observations_dropped, 0);
    assert_eq!(report.pixels * 5, samples.samples.len());
    let per_class_obs: usize = report.per_class.values().map(|c| c.observations).sum();
    assert_eq!(per_class_obs, samples.samples.len());
    assert_eq!(
        report.per_class["grass"].observations,
        samples
            .samples
            .iter()
            .filter(|s| s.class == LandCoverClass::Grass)
            .count()
    );
    assert_eq!(
        samples.rule_counts["vector:lulc_raba_polygons: kept as grass"],
        report.per_class["grass"].observations as u64
    );
    // The fingerprint: the label file and the five scenes, with their sizes.
    let names: Vec<&str> = samples
        .fingerprint
        .files
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    let gpkg = samples
        .fingerprint
        .files
        .iter()
        .find(|f| f.name == "lulc_raba_polygons.gpkg")
        .unwrap();
    assert_eq!(
        gpkg.bytes,
        std::fs::metadata(fixture(POLYGONS)).unwrap().len()
    );
    for s in &scenes {
        let name = s.file_name().unwrap().to_string_lossy();
        assert!(names.contains(&name.as_ref()), "{name}");
    }
    assert!(samples
        .label_rules
        .iter()
        .any(|r| r.contains("class field RABA_ID") && r.contains("1300->grass")));
    // The printed report names what was skipped and why.
    let text = report.to_string();
    eprintln!("{text}");
    assert!(text.contains("1410 (15), 1500 (18), 1600 (4)"), "{text}");
    assert!(text.contains("clouds are NOT masked"), "{text}");
}

/// A single-band SCL GeoTIFF on the Slovenia grid for `date` (YYYYMMDD in the file name).
fn write_scl(dir: &Path, date: &str, value: impl Fn(usize, usize) -> u8) -> PathBuf {
    let src = gdal::Dataset::open(&scene_paths()[0]).unwrap();
    let path = dir.join(format!("scl_{date}.tif"));
    let mut ds = gdal::DriverManager::get_driver_by_name("GTiff")
        .unwrap()
        .create_with_band_type::<u8, _>(&path, W, H, 1)
        .unwrap();
    ds.set_geo_transform(&src.geo_transform().unwrap()).unwrap();
    ds.set_spatial_ref(&src.spatial_ref().unwrap()).unwrap();
    {
        let mut band = ds.rasterband(1).unwrap();
        band.set_description("SCL").unwrap();
        let data: Vec<u8> = (0..H * W).map(|i| value(i / W, i % W)).collect();
        let mut buf = Buffer::new((W, H), data);
        band.write((0, 0), (W, H), &mut buf).unwrap();
    }
    drop(ds); // closes (and flushes) the file
    path
}

fn scl_value(date: usize, r: usize, c: usize) -> u8 {
    match date {
        // 2015-07-11: cloud (9) over the top half, no data (0) in column 40..50, else vegetation.
        0 if (40..50).contains(&c) => 0,
        0 if r < 50 => 9,
        // 2015-07-31: cloud shadow (3) everywhere.
        1 => 3,
        // 2015-08-20: thin cirrus (10) in the left third, bare soil (5) elsewhere (clear).
        2 if c < 33 => 10,
        2 => 5,
        _ => 4,
    }
}

#[test]
fn with_an_scl_band_only_clear_observations_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let scenes = scene_paths();
    let dates = ["20150711", "20150731", "20150820", "20150830", "20150909"];
    let mut all = scenes.clone();
    for (d, date) in dates.iter().enumerate() {
        all.push(write_scl(dir.path(), date, |r, c| scl_value(d, r, c)));
    }
    let stack = stack_of(&all);
    assert_eq!(stack.layers.len(), 5);
    assert_eq!(stack.band_names.last().map(String::as_str), Some("SCL"));
    let (samples, report) = landcover_samples(&[fixture(POLYGONS)], &options(MAP), &stack).unwrap();
    assert!(report.scl);
    let values = gdal_values(&scenes);
    let mut expected_dropped = 0;
    for (fid, raba, pixels) in raba_features() {
        if !["1100", "1300", "2000", "3000"].contains(&raba.as_str()) {
            continue;
        }
        let mine = by_group(&samples.samples, &format!("lulc_raba_polygons:{fid}"));
        let mut expected = Vec::new();
        for &(r, c) in &pixels {
            for d in 0..5 {
                if [0u8, 1, 3, 8, 9, 10, 11].contains(&scl_value(d, r, c)) {
                    expected_dropped += 1;
                } else {
                    expected.push((r, c, d));
                }
            }
        }
        assert_eq!(mine.len(), expected.len(), "feature {fid}");
        for (s, &(r, c, d)) in mine.iter().zip(&expected) {
            assert_eq!(s.dn[0], f32::from(values[d][0][r * W + c]));
            assert_eq!(s.dn[8], f32::from(values[d][8][r * W + c]));
        }
    }
    assert_eq!(report.observations_dropped, expected_dropped);
    assert_eq!(report.observations, samples.samples.len());
    assert!(report.to_string().contains("SCL band: cloudy"));
    assert!(samples
        .label_rules
        .iter()
        .any(|r| r.contains("SCL not in [0, 1, 3, 8, 9, 10, 11]")));
}

#[test]
fn points_and_polygons_in_another_crs_label_the_pixels_they_cover() {
    let scenes = scene_paths();
    let src = gdal::Dataset::open(&scenes[0]).unwrap();
    let gt = src.geo_transform().unwrap();
    let mut utm = src.spatial_ref().unwrap();
    utm.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
    let mut wgs84 = gdal::spatial_ref::SpatialRef::from_epsg(4326).unwrap();
    wgs84.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
    let to_wgs84 = gdal::spatial_ref::CoordTransform::new(&utm, &wgs84).unwrap();
    // A point at (col + fx, row + fy) of the pixel grid, as lon/lat.
    let lonlat = |col: f64, row: f64| {
        let mut x = [gt[0] + col * gt[1]];
        let mut y = [gt[3] + row * gt[5]];
        to_wgs84.transform_coords(&mut x, &mut y, &mut []).unwrap();
        (x[0], y[0])
    };
    let point = |id: u32, class: &str, col: f64, row: f64| {
        let (x, y) = lonlat(col, row);
        format!(
            r#"{{"type":"Feature","id":{id},"properties":{{"cls":"{class}"}},"geometry":{{"type":"Point","coordinates":[{x:.10},{y:.10}]}}}}"#
        )
    };
    let (m1, m2) = (lonlat(70.5, 80.5), lonlat(71.5, 80.5));
    // A ring of pixel-space corners, as lon/lat.
    let ring = |c0: f64, r0: f64, c1: f64, r1: f64| {
        let pts: Vec<String> = [(c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0)]
            .iter()
            .map(|&(c, r)| {
                let (x, y) = lonlat(c, r);
                format!("[{x:.10},{y:.10}]")
            })
            .collect();
        format!("[{}]", pts.join(","))
    };
    let polygon = |id: u32, class: &str, rings: &[String]| {
        format!(
            r#"{{"type":"Feature","id":{id},"properties":{{"cls":"{class}"}},"geometry":{{"type":"Polygon","coordinates":[{}]}}}}"#,
            rings.join(",")
        )
    };
    let features = [
        point(1, "grass", 20.5, 10.5),  // pixel centre (row 10, col 20)
        point(2, "tree", 3.25, 57.75),  // inside pixel (row 57, col 3), off centre
        point(3, "built", 99.5, 100.5), // the last pixel
        point(4, "lake", 50.5, 50.5),   // not a class, not mapped
        point(5, "water", 150.5, 20.5), // east of the imagery
        format!(
            r#"{{"type":"Feature","id":6,"properties":{{"cls":"Annual_Crop"}},"geometry":{{"type":"MultiPoint","coordinates":[[{:.10},{:.10}],[{:.10},{:.10}]]}}}}"#,
            m1.0, m1.1, m2.0, m2.1
        ),
        // Pixels rows 40..44 × cols 30..34 less the hole rows 41..43 × cols 31..33.
        polygon(
            7,
            "orchard",
            &[ring(30.0, 40.0, 34.0, 44.0), ring(31.0, 41.0, 33.0, 43.0)],
        ),
        polygon(8, "grass", &[ring(-30.0, 10.0, -20.0, 20.0)]), // west of the imagery
        polygon(9, "grass", &[ring(60.1, 60.1, 60.3, 60.3)]),   // covers no pixel centre
        format!(
            r#"{{"type":"Feature","id":10,"properties":{{"cls":"grass"}},"geometry":{{"type":"LineString","coordinates":[[{:.10},{:.10}],[{:.10},{:.10}]]}}}}"#,
            m1.0, m1.1, m2.0, m2.1
        ),
        format!(
            r#"{{"type":"Feature","id":11,"properties":{{"cls":null}},"geometry":{{"type":"Point","coordinates":[{:.10},{:.10}]}}}}"#,
            m1.0, m1.1
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("field_points.geojson");
    std::fs::write(
        &path,
        format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        ),
    )
    .unwrap();
    let stack = stack_of(&scenes);
    let (samples, report) = landcover_samples(
        std::slice::from_ref(&path),
        &LabelOptions::new("cls"),
        &stack,
    )
    .unwrap();
    let values = gdal_values(&scenes);
    let expect = [
        (1, LandCoverClass::Grass, vec![(10, 20)]),
        (2, LandCoverClass::Tree, vec![(57, 3)]),
        (3, LandCoverClass::Built, vec![(100, 99)]),
        (6, LandCoverClass::AnnualCrop, vec![(80, 70), (80, 71)]),
        (
            7,
            LandCoverClass::Orchard,
            (40..44)
                .flat_map(|r| (30..34).map(move |c| (r, c)))
                .filter(|&(r, c)| !((41..43).contains(&r) && (31..33).contains(&c)))
                .collect(),
        ),
    ];
    for (id, class, pixels) in &expect {
        let mine = by_group(&samples.samples, &format!("field_points:{id}"));
        assert_eq!(mine.len(), pixels.len() * 5, "point {id}");
        for (k, s) in mine.iter().enumerate() {
            let (r, c) = pixels[k / 5];
            assert_eq!(s.class, *class);
            for (v, band) in s.dn.iter().zip(&values[k % 5]) {
                assert_eq!(*v, f32::from(band[r * W + c]), "point {id}");
            }
        }
    }
    assert_eq!(samples.samples.len(), (5 + 12) * 5);
    let f = &report.files[0];
    assert_eq!(f.source_crs.as_deref(), Some("EPSG:4326"));
    assert_eq!((f.features, f.used, f.points, f.polygons), (11, 5, 4, 1));
    assert_eq!(f.unmapped, BTreeMap::from([("lake".to_string(), 1)]));
    assert_eq!(f.outside, 2, "the point east and the polygon west");
    assert_eq!(f.no_pixel_centre, 1);
    assert_eq!(f.no_class_value, 1);
    let rejected: Vec<(&str, &str)> = f
        .rejected
        .iter()
        .map(|r| (r.id.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        rejected,
        vec![("FID 10", "not a point or polygon geometry (LINESTRING)")]
    );
    assert_eq!(accounted(f), 11);
}

#[test]
fn a_missing_class_field_lists_the_fields_present() {
    let stack = stack_of(&scene_paths());
    match landcover_samples(
        &[fixture(POLYGONS)],
        &LabelOptions::new("LANDUSE"),
        &stack,
    ) {
        Err(InferenceError::Labels { reason, .. }) => assert_eq!(
            reason,
            "no class field \"LANDUSE\"; the fields are index, RABA_ID, AREA, DATE, LULC_ID, LULC_NAME"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unmapped_values_are_counted_and_no_usable_label_is_an_error() {
    let stack = stack_of(&scene_paths());
    // Nothing maps: the error carries the report with every value and its feature count.
    let err =
        landcover_samples(&[fixture(POLYGONS)], &LabelOptions::new("RABA_ID"), &stack).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, InferenceError::NoLabels { .. }), "{text}");
    assert!(
        text.contains("1100 (4), 1300 (26), 1410 (15), 1500 (18), 1600 (4), 2000 (10), 3000 (11)"),
        "{text}"
    );
    // A mapping onto something that is not a class of the task.
    match parse_class_map("1300=meadow")
        .map(|m| LabelOptions {
            class_map: m,
            ..LabelOptions::new("RABA_ID")
        })
        .and_then(|o| landcover_samples(&[fixture(POLYGONS)], &o, &stack))
    {
        Err(InferenceError::Config { reason, .. }) => assert_eq!(
            reason,
            "1300=meadow: \"meadow\" is not a landcover class; the classes are annual_crop, orchard, tree, grass, bare, water, built"
        ),
        other => panic!("{other:?}"),
    }
    assert!(parse_class_map("1300").is_err());
    assert!(parse_class_map("1300=grass,1300=tree").is_err());
    assert_eq!(
        parse_class_map(" 1300 = grass ,, 2000=tree").unwrap(),
        BTreeMap::from([
            ("1300".to_string(), "grass".to_string()),
            ("2000".to_string(), "tree".to_string())
        ])
    );
}

#[test]
fn crop_type_series_are_per_date_means_of_each_features_pixels() {
    let scenes = scene_paths();
    let stack = stack_of(&scenes);
    let (samples, report) =
        croptype_samples(&[fixture(POLYGONS)], &options("1300=grassland"), &stack).unwrap();
    let values = gdal_values(&scenes);
    let dates: Vec<chrono::NaiveDate> = stack.layers.iter().map(|l| l.date.unwrap()).collect();
    let mut n = 0;
    for (fid, raba, pixels) in raba_features() {
        let series: Vec<_> = samples
            .samples
            .iter()
            .filter(|(s, _)| s.group == format!("lulc_raba_polygons:{fid}"))
            .collect();
        if raba != "1300" || pixels.is_empty() {
            assert!(series.is_empty());
            continue;
        }
        n += 1;
        assert_eq!(series.len(), 1, "one series per feature");
        let (s, class) = series[0];
        assert_eq!(*class, gengdi_models::CropTypeClass::Grassland);
        assert_eq!(s.season_year, 2015);
        assert_eq!(s.invalid_observations, 0);
        assert_eq!(
            s.observations.iter().map(|o| o.date).collect::<Vec<_>>(),
            dates
        );
        for (d, o) in s.observations.iter().enumerate() {
            for (b, (v, band)) in o.dn.iter().zip(&values[d]).enumerate() {
                let mean = pixels
                    .iter()
                    .map(|&(r, c)| f64::from(band[r * W + c]))
                    .sum::<f64>()
                    / pixels.len() as f64;
                assert!(
                    (f64::from(*v) - mean).abs() < 1e-3,
                    "feature {fid} date {d} band {b}: {v} vs {mean}"
                );
            }
        }
    }
    assert_eq!(samples.samples.len(), n);
    assert_eq!(report.files[0].used, n);
    assert_eq!(report.per_class["grassland"].features, n);
    assert_eq!(report.per_class["grassland"].observations, n * 5);
}

#[test]
fn a_model_trains_on_vector_labels_and_its_card_records_them() {
    let scenes = scene_paths();
    let stack = stack_of(&scenes);
    let (samples, report) = landcover_samples(&[fixture(POLYGONS)], &options(MAP), &stack).unwrap();
    let config = TrainConfig::new()
        .with_max_epochs(3)
        .with_hidden(vec![8])
        .with_progress(false);
    let trained = gengdi_models::train_landcover(&config, &samples, DeviceChoice::NdArray).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let card = trained.save_to_registry(dir.path(), "test").unwrap();
    let files: Vec<&str> = card
        .training
        .data
        .files
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert!(files.contains(&"lulc_raba_polygons.gpkg"), "{files:?}");
    assert!(files.contains(&"s2l1c_20150711_13band.tif"), "{files:?}");
    assert_eq!(card.training.data, samples.fingerprint);
    assert!(card
        .training
        .label_rules
        .iter()
        .any(|r| r.contains("lulc_raba_polygons.gpkg") && r.contains("class field RABA_ID")));
    // The split keeps each feature in one part, and every used feature is one group.
    let split = landcover_split(&samples, &config);
    assert_eq!(split.group_part.len(), report.files[0].used);
    for (part, rows) in [
        (Part::Train, &split.train),
        (Part::Validation, &split.validation),
        (Part::Test, &split.test),
    ] {
        for &r in rows.iter() {
            assert_eq!(split.group_part[&samples.samples[r].group], part);
        }
    }
    assert!(!split.test.is_empty() && !split.train.is_empty());
    assert_eq!(
        card.training.split.groups.iter().sum::<usize>(),
        report.files[0].used
    );
    assert_eq!(
        card.training.split.test_groups_sha256,
        split.test_groups_sha256()
    );
    assert_eq!(card.training.epochs_run, 3);
    // The model loads back from the registry.
    let model = gengdi_models::LandCoverModel::load(
        &dir.path().join("landcover").join(&card.id),
        &DeviceChoice::NdArray.device(),
    )
    .unwrap();
    assert_eq!(model.card().id, card.id);
}

#[test]
fn overlapping_features_keep_a_pixel_once_and_drop_it_between_classes() {
    let scenes = scene_paths();
    let gt = gdal::Dataset::open(&scenes[0])
        .unwrap()
        .geo_transform()
        .unwrap();
    let ring = |c0: f64, r0: f64, c1: f64, r1: f64| {
        let pts: Vec<String> = [(c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0)]
            .iter()
            .map(|&(c, r)| format!("[{},{}]", gt[0] + c * gt[1], gt[3] + r * gt[5]))
            .collect();
        format!("[[{}]]", pts.join(","))
    };
    let feature = |id: u32, class: &str, rings: String| {
        format!(
            r#"{{"type":"Feature","id":{id},"properties":{{"cls":"{class}"}},"geometry":{{"type":"Polygon","coordinates":{rings}}}}}"#
        )
    };
    let features = [
        feature(1, "tree", ring(10.0, 10.0, 14.0, 14.0)), // 16 px
        feature(2, "grass", ring(12.0, 12.0, 16.0, 16.0)), // 16 px, 4 shared with 1
        feature(3, "tree", ring(10.0, 10.0, 12.0, 12.0)), // 4 px, all inside 1
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("overlaps.geojson");
    std::fs::write(
        &path,
        format!(
            r#"{{"type":"FeatureCollection","crs":{{"type":"name","properties":{{"name":"urn:ogc:def:crs:EPSG::32633"}}}},"features":[{}]}}"#,
            features.join(",")
        ),
    )
    .unwrap();
    let stack = stack_of(&scenes);
    let (samples, report) = landcover_samples(&[path], &LabelOptions::new("cls"), &stack).unwrap();
    let count = |g: &str| by_group(&samples.samples, g).len();
    assert_eq!(count("overlaps:1"), 12 * 5);
    assert_eq!(count("overlaps:2"), 12 * 5);
    assert_eq!(count("overlaps:3"), 0);
    assert_eq!(report.pixels_conflicting, 4);
    assert_eq!(report.pixels_shared, 4);
    assert_eq!(report.pixels, 24);
    let f = &report.files[0];
    assert_eq!((f.features, f.used, f.no_own_pixel), (3, 2, 1));
    assert_eq!(f.source_crs.as_deref(), Some("EPSG:32633"));
}
