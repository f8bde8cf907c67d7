//! Real parcel layers are read completely, reprojected, mapped, and bad features are
//! reported by id and reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gengdi_fixtures::fixture;
use gengdi_inference::rasterize::burn;
use gengdi_inference::{FarmlandLayer, FieldMapping, InferenceError};
use gengdi_tiling::{Crs, GeoTransform};
use ndarray::Array2;

fn utm31() -> Crs {
    let srs = gdal::spatial_ref::SpatialRef::from_epsg(32631).unwrap();
    Crs::from_spatial_ref(&srs).unwrap()
}

#[test]
fn the_french_parcels_are_all_used_and_reprojected() {
    let layer = FarmlandLayer::read(
        &fixture("parcels-lpis/fr_rpg_ain_193parcels_lamb93.gpkg"),
        &FieldMapping::default(),
        &utm31(),
    )
    .unwrap();
    assert_eq!(layer.report.features, 193);
    assert_eq!(layer.report.used + layer.report.rejected.len(), 193);
    assert_eq!(layer.parcels.len(), layer.report.used);
    assert!(
        layer.report.rejected.is_empty(),
        "{:?}",
        layer.report.rejected
    );
    assert_eq!(layer.report.fields_used["id"], "id_parcel");
    assert_eq!(layer.report.fields_used["land_class"], "code_cultu");
    assert_eq!(layer.source_crs.as_ref().unwrap().epsg, Some(2154));
    // Reprojected into UTM 31N around 5.0E 45.8N: easting ~ 660 km, northing ~ 5075 km.
    let (x, y) = layer.parcels[0].polygons[0][0][0];
    assert!(
        (600_000.0..720_000.0).contains(&x) && (5_000_000.0..5_150_000.0).contains(&y),
        "({x}, {y})"
    );
    // The same parcels from the WGS84 GeoJSON land on the same coordinates (to a few mm).
    let geojson = FarmlandLayer::read(
        &fixture("parcels-lpis/fr_rpg_ain_193parcels_wgs84.geojson"),
        &FieldMapping::default(),
        &utm31(),
    )
    .unwrap();
    assert_eq!(geojson.parcels.len(), 193);
    let a = &layer
        .parcels
        .iter()
        .find(|p| p.id == geojson.parcels[5].id)
        .unwrap()
        .polygons[0][0][0];
    let b = &geojson.parcels[5].polygons[0][0][0];
    assert!(
        (a.0 - b.0).abs() < 0.05 && (a.1 - b.1).abs() < 0.05,
        "{a:?} vs {b:?}"
    );
}

#[test]
fn bad_features_are_reported_by_id_and_reason_and_invalid_rings_are_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.geojson");
    std::fs::write(
        &path,
        r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"TBBH":"ok-1","YJJBNT":"1","ZLDWDM":"6405021011030000000","DLBM":"0102"},
  "geometry":{"type":"Polygon","coordinates":[[[105.1,37.5],[105.101,37.5],[105.101,37.501],[105.1,37.501],[105.1,37.5]]]}},
 {"type":"Feature","properties":{"TBBH":"bowtie"},
  "geometry":{"type":"Polygon","coordinates":[[[105.2,37.5],[105.201,37.501],[105.201,37.5],[105.2,37.501],[105.2,37.5]]]}},
 {"type":"Feature","properties":{"TBBH":"point"},"geometry":{"type":"Point","coordinates":[105.3,37.5]}},
 {"type":"Feature","properties":{"TBBH":"nogeom"},"geometry":null},
 {"type":"Feature","properties":{"TBBH":"ok-1"},
  "geometry":{"type":"Polygon","coordinates":[[[105.4,37.5],[105.401,37.5],[105.401,37.501],[105.4,37.5]]]}},
 {"type":"Feature","properties":{"TBBH":"multi","YJJBNT":"0"},
  "geometry":{"type":"MultiPolygon","coordinates":[[[[105.5,37.5],[105.501,37.5],[105.501,37.501],[105.5,37.5]]],[[[105.6,37.5],[105.601,37.5],[105.601,37.501],[105.6,37.5]]]]}}
]}"#,
    )
    .unwrap();
    let zone =
        Crs::from_spatial_ref(&gdal::spatial_ref::SpatialRef::from_epsg(32648).unwrap()).unwrap();
    let layer = FarmlandLayer::read(&path, &FieldMapping::default(), &zone).unwrap();
    let r = &layer.report;
    assert_eq!(r.features, 6);
    assert_eq!(r.used, 3, "ok-1, the repaired bow-tie, the multipolygon");
    assert_eq!(r.repaired, 1);
    let reasons: Vec<(String, String)> = r
        .rejected
        .iter()
        .map(|x| (x.id.clone(), x.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("point".to_string(), "not a polygon (POINT)".to_string()),
            ("nogeom".to_string(), "no geometry".to_string()),
            ("ok-1".to_string(), "duplicate parcel id".to_string()),
        ]
    );
    let ok = &layer.parcels[0];
    assert!(ok.pbf);
    assert_eq!(ok.land_class.as_deref(), Some("0102"));
    assert_eq!(ok.admin.village_code.as_deref(), Some("640502101103"));
    let multi = layer.parcels.iter().find(|p| p.id == "multi").unwrap();
    assert_eq!(
        multi.polygons.len(),
        2,
        "a MultiPolygon stays one parcel with two parts"
    );
    assert!(!multi.pbf);
    let bowtie = layer.parcels.iter().find(|p| p.id == "bowtie").unwrap();
    assert!(bowtie.repaired);
    assert_eq!(
        bowtie.polygons.len(),
        2,
        "the bow-tie splits into its two triangles"
    );
}

#[test]
fn a_field_named_by_the_user_must_exist() {
    let m = FieldMapping::parse("id=NOPE").unwrap();
    match FarmlandLayer::read(
        &fixture("parcels-lpis/nl_brp_gewaspercelen_2023_100parcels.gpkg"),
        &m,
        &utm31(),
    ) {
        Err(InferenceError::Farmland { reason, .. }) => {
            assert!(reason.contains("no field \"NOPE\" for id"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        FarmlandLayer::read(
            std::path::Path::new("/no/such.gpkg"),
            &FieldMapping::default(),
            &utm31()
        ),
        Err(InferenceError::NotFound { .. })
    ));
}

#[test]
fn rasterised_parcel_area_matches_the_polygon_area() {
    let layer = FarmlandLayer::read(
        &fixture("parcels-lpis/fr_rpg_ain_193parcels_lamb93.gpkg"),
        &FieldMapping::default(),
        &utm31(),
    )
    .unwrap();
    // A 10 m grid over the block.
    let (mut minx, mut maxy) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in &layer.parcels {
        for &(x, y) in p.polygons.iter().flatten().flatten() {
            minx = minx.min(x);
            maxy = maxy.max(y);
        }
    }
    let gt = GeoTransform([minx.floor(), 10.0, 0.0, maxy.ceil(), 0.0, -10.0]);
    let mut labels = Array2::<u32>::zeros((600, 600));
    let mut total_px = 0usize;
    let mut total_area = 0.0;
    for p in &layer.parcels {
        total_px += burn(&mut labels, 0, 0, &p.pixel_polygons(&gt), p.index);
        total_area += p
            .polygons
            .iter()
            .map(|poly| {
                let ring_area = |r: &Vec<(f64, f64)>| {
                    let n = r.len();
                    (0..n)
                        .map(|i| r[i].0 * r[(i + 1) % n].1 - r[(i + 1) % n].0 * r[i].1)
                        .sum::<f64>()
                        .abs()
                        / 2.0
                };
                ring_area(&poly[0]) - poly[1..].iter().map(ring_area).sum::<f64>()
            })
            .sum::<f64>();
    }
    let px_area = total_px as f64 * 100.0;
    assert!(
        (px_area - total_area).abs() / total_area < 0.01,
        "{px_area} vs {total_area}"
    );
}

#[test]
fn shapefile_zipped_shapefile_flatgeobuf_and_a_gauss_kruger_crs_give_the_same_parcels() {
    let src = fixture("parcels-lpis/fr_rpg_ain_193parcels_lamb93.gpkg");
    let reference = FarmlandLayer::read(&src, &FieldMapping::default(), &utm31()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A CGCS2000-style 3-degree Gauss-Krüger zone (GRS80 transverse Mercator, central
    // meridian 6° E, 500 km false easting), as a PROJ string without an EPSG code.
    let gk = "+proj=tmerc +lat_0=0 +lon_0=6 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs";
    let variants = [
        ("parcels.shp", "ESRI Shapefile", None),
        ("parcels_gk.shp", "ESRI Shapefile", Some(gk)),
        // GDAL writes a zipped shapefile for a name ending in .shp.zip.
        ("parcels.shp.zip", "ESRI Shapefile", None),
        ("parcels.fgb", "FlatGeobuf", Some("EPSG:4490")),
    ];
    for (name, driver, srs) in variants {
        let dst = dir.path().join(name);
        let mut cmd = std::process::Command::new("ogr2ogr");
        cmd.args(["-f", driver]);
        if let Some(s) = srs {
            cmd.args(["-t_srs", s]);
        }
        let out = cmd
            .arg(&dst)
            .arg(&src)
            .output()
            .expect("ogr2ogr (gdal-bin) runs");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let layer = FarmlandLayer::read(&dst, &FieldMapping::default(), &utm31()).unwrap();
        assert_eq!(layer.report.used, 193, "{name}");
        assert!(layer.report.rejected.is_empty(), "{name}");
        assert_eq!(layer.report.fields_used["id"], "id_parcel", "{name}");
        if srs == Some(gk) {
            assert_eq!(layer.source_crs.as_ref().unwrap().epsg, None, "{name}");
        }
        // Every parcel, matched by id, has the same first vertex in UTM 31N (to 5 cm) and the
        // same land class.
        for p in &layer.parcels {
            let r = reference.parcels.iter().find(|q| q.id == p.id).unwrap();
            let (a, b) = (p.polygons[0][0][0], r.polygons[0][0][0]);
            assert!(
                (a.0 - b.0).abs() < 0.05 && (a.1 - b.1).abs() < 0.05,
                "{name} {}: {a:?} vs {b:?}",
                p.id
            );
            assert_eq!(p.land_class, r.land_class, "{name} {}", p.id);
        }
    }
}
