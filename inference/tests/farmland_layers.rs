//! A farmland file with several layers is read by the layer the user names, never silently by
//! its first one; curved parcels (arcs, as land-survey software writes them) are linearised.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gdal::spatial_ref::SpatialRef;
use gdal::vector::{
    Feature, FieldDefn, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use gdal::{Dataset, DriverManager};
use gengdi_fixtures::fixture;
use gengdi_inference::{FarmlandLayer, FarmlandOptions, FieldMapping, InferenceError};
use gengdi_tiling::Crs;
use std::path::{Path, PathBuf};

const FR: &str = "parcels-lpis/fr_rpg_ain_193parcels_lamb93.gpkg";
const NL: &str = "parcels-lpis/nl_brp_gewaspercelen_2023_100parcels.gpkg";

/// ETRS89 / LAEA Europe: one equal-area CRS for the French and the Dutch parcels.
fn laea() -> Crs {
    Crs::from_spatial_ref(&SpatialRef::from_epsg(3035).unwrap()).unwrap()
}

fn utm31() -> Crs {
    Crs::from_spatial_ref(&SpatialRef::from_epsg(32631).unwrap()).unwrap()
}

fn new_gpkg(path: &Path) -> Dataset {
    DriverManager::get_driver_by_name("GPKG")
        .unwrap()
        .create_vector_only(path)
        .unwrap()
}

/// Copy the only layer of `src` (geometries and every attribute) into `dst` as layer `name`.
fn copy_layer(dst: &mut Dataset, src: &Path, name: &str) {
    let src = Dataset::open(src).unwrap();
    let mut from = src.layer(0).unwrap();
    let srs = from.spatial_ref().unwrap();
    let ty = from.defn().geom_fields().next().unwrap().field_type();
    let fields: Vec<(String, OGRFieldType::Type)> = from
        .defn()
        .fields()
        .map(|f| (f.name(), f.field_type()))
        .collect();
    let to = dst
        .create_layer(LayerOptions {
            name,
            srs: Some(&srs),
            ty,
            options: None,
        })
        .unwrap();
    for (n, t) in &fields {
        FieldDefn::new(n, *t).unwrap().add_to_layer(&to).unwrap();
    }
    for feature in from.features() {
        let mut f = Feature::new(to.defn()).unwrap();
        for i in 0..fields.len() {
            if let Some(v) = feature.field(i).unwrap() {
                f.set_field(i, &v).unwrap();
            }
        }
        f.set_geometry(feature.geometry().unwrap().clone()).unwrap();
        f.create(&to).unwrap();
    }
}

/// A non-spatial table (GeoPackage "attributes"), as GeoPackages often carry beside layers.
fn add_table(dst: &mut Dataset, name: &str, rows: usize) {
    let table = dst
        .create_layer(LayerOptions {
            name,
            srs: None,
            ty: OGRwkbGeometryType::wkbNone,
            options: None,
        })
        .unwrap();
    FieldDefn::new("note", OGRFieldType::OFTString)
        .unwrap()
        .add_to_layer(&table)
        .unwrap();
    for i in 0..rows {
        let mut f = Feature::new(table.defn()).unwrap();
        f.set_field_string(0, &format!("row {i}")).unwrap();
        f.create(&table).unwrap();
    }
}

/// `parcels.gpkg`: the French parcels as `fr_parcels`, the Dutch ones as `nl_parcels`, and a
/// non-spatial table `notes` of 3 rows.
fn two_parcel_layers(dir: &Path) -> PathBuf {
    let path = dir.join("parcels.gpkg");
    let mut ds = new_gpkg(&path);
    copy_layer(&mut ds, &fixture(FR), "fr_parcels");
    copy_layer(&mut ds, &fixture(NL), "nl_parcels");
    add_table(&mut ds, "notes", 3);
    path
}

fn options(layer: Option<&str>) -> FarmlandOptions {
    FarmlandOptions {
        fields: FieldMapping::default(),
        layer: layer.map(str::to_string),
    }
}

/// Polygons → rings → points: outer rings count positive, holes negative.
fn area(polygons: &[Vec<Vec<(f64, f64)>>]) -> f64 {
    let ring = |r: &[(f64, f64)]| {
        let n = r.len();
        (0..n)
            .map(|k| r[k].0 * r[(k + 1) % n].1 - r[(k + 1) % n].0 * r[k].1)
            .sum::<f64>()
            .abs()
            / 2.0
    };
    polygons
        .iter()
        .map(|p| {
            p.iter()
                .enumerate()
                .map(|(i, r)| if i == 0 { ring(r) } else { -ring(r) })
                .sum::<f64>()
        })
        .sum()
}

fn total_area(layer: &FarmlandLayer) -> f64 {
    layer.parcels.iter().map(|p| area(&p.polygons)).sum()
}

#[test]
fn two_parcel_layers_and_none_named_is_an_error_naming_both_with_their_feature_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = two_parcel_layers(dir.path());
    let err = FarmlandLayer::read_with(&path, &options(None), &laea()).unwrap_err();
    let message = err.to_string();
    let InferenceError::FarmlandLayerAmbiguous { layers, .. } = err else {
        panic!("{message}");
    };
    // The non-spatial table is no candidate: only the two layers that can hold polygons.
    let listed: Vec<(&str, u64)> = layers
        .iter()
        .map(|l| (l.name.as_str(), l.features))
        .collect();
    assert_eq!(listed, [("fr_parcels", 193), ("nl_parcels", 100)]);
    for part in [
        "fr_parcels (193 features",
        "nl_parcels (100 features",
        "--farmland-layer",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    assert!(!message.contains("notes"), "{message}");
    // The plain reader refuses the file the same way.
    assert!(matches!(
        FarmlandLayer::read(&path, &FieldMapping::default(), &laea()),
        Err(InferenceError::FarmlandLayerAmbiguous { .. })
    ));
}

#[test]
fn a_named_layer_gives_exactly_the_parcels_of_that_layer() {
    let dir = tempfile::tempdir().unwrap();
    let path = two_parcel_layers(dir.path());
    for (name, source, n) in [("fr_parcels", FR, 193), ("nl_parcels", NL, 100)] {
        let named = FarmlandLayer::read_with(&path, &options(Some(name)), &laea()).unwrap();
        let alone =
            FarmlandLayer::read(&fixture(source), &FieldMapping::default(), &laea()).unwrap();
        assert_eq!(named.report.layer, name);
        assert_eq!(named.parcels.len(), n, "{name}");
        assert_eq!(named.parcels.len(), alone.parcels.len(), "{name}");
        assert_eq!(named.report.rejected.len(), alone.report.rejected.len());
        let (a, b) = (total_area(&named), total_area(&alone));
        assert!(
            a > 0.0 && (a - b).abs() <= 1e-9 * b,
            "{name}: {a} vs {b} m²"
        );
        assert_eq!(
            named.parcels.iter().map(|p| p.pbf).collect::<Vec<_>>(),
            alone.parcels.iter().map(|p| p.pbf).collect::<Vec<_>>()
        );
    }
    // The French parcels carry their own ids: the same ones, in the same order.
    let named = FarmlandLayer::read_with(&path, &options(Some("fr_parcels")), &laea()).unwrap();
    let alone = FarmlandLayer::read(&fixture(FR), &FieldMapping::default(), &laea()).unwrap();
    let ids = |l: &FarmlandLayer| l.parcels.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&named), ids(&alone));
    // A name that differs only in case still finds its (unambiguous) layer.
    let upper = FarmlandLayer::read_with(&path, &options(Some("NL_PARCELS")), &laea()).unwrap();
    assert_eq!(
        (upper.report.layer.as_str(), upper.parcels.len()),
        ("nl_parcels", 100)
    );
}

#[test]
fn an_unknown_layer_name_is_an_error_listing_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    let path = two_parcel_layers(dir.path());
    let err = FarmlandLayer::read_with(&path, &options(Some("parcels")), &laea()).unwrap_err();
    let message = err.to_string();
    let InferenceError::FarmlandLayerNotFound { name, layers, .. } = err else {
        panic!("{message}");
    };
    assert_eq!(name, "parcels");
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["fr_parcels", "nl_parcels", "notes"]);
    for part in [
        "no layer \"parcels\"",
        "fr_parcels (193 features",
        "nl_parcels (100 features",
        "notes (3 rows, no geometry column)",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    // Naming the table is refused too: it holds no polygons.
    let err = FarmlandLayer::read_with(&path, &options(Some("notes")), &laea()).unwrap_err();
    assert!(err.to_string().contains("cannot hold polygons"), "{err}");
}

#[test]
fn one_parcel_layer_beside_a_non_spatial_table_is_read_without_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.gpkg");
    {
        let mut ds = new_gpkg(&path);
        copy_layer(&mut ds, &fixture(NL), "nl_parcels");
        add_table(&mut ds, "notes", 2);
    }
    let layer = FarmlandLayer::read(&path, &FieldMapping::default(), &laea()).unwrap();
    assert_eq!(layer.report.layer, "nl_parcels");
    assert_eq!(layer.parcels.len(), 100);
}

#[test]
fn curved_parcels_are_linearised_and_counted_with_their_true_areas() {
    use std::f64::consts::PI;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("survey.gpkg");
    let r = 100.0;
    let (x, y) = (500_000.0, 5_000_000.0);
    // A circular field (one CIRCULARSTRING ring), a half-disc (a CompoundCurve ring: an arc
    // closed by a straight line) and a MultiSurface of a disc and a square.
    let circle = format!(
        "CURVEPOLYGON(CIRCULARSTRING({} {y},{x} {},{} {y},{x} {},{} {y}))",
        x + r,
        y + r,
        x - r,
        y - r,
        x + r
    );
    let x2 = x + 1000.0;
    let half = format!(
        "CURVEPOLYGON(COMPOUNDCURVE(CIRCULARSTRING({} {y},{x2} {},{} {y}),({} {y},{} {y})))",
        x2 + r,
        y + r,
        x2 - r,
        x2 - r,
        x2 + r
    );
    let x3 = x + 2000.0;
    let multi = format!(
        "MULTISURFACE(CURVEPOLYGON(CIRCULARSTRING({} {y},{x3} {},{} {y},{x3} {},{} {y})),\
         ((0 0,10 0,10 10,0 10,0 0)))",
        x3 + r,
        y + r,
        x3 - r,
        y - r,
        x3 + r
    );
    {
        let mut ds = new_gpkg(&path);
        let srs = SpatialRef::from_epsg(32631).unwrap();
        let layer = ds
            .create_layer(LayerOptions {
                name: "survey",
                srs: Some(&srs),
                ty: OGRwkbGeometryType::wkbMultiSurface,
                options: None,
            })
            .unwrap();
        layer
            .create_defn_fields(&[("TBBH", OGRFieldType::OFTString)])
            .unwrap();
        for (id, wkt) in [("circle", &circle), ("half", &half), ("multi", &multi)] {
            let mut f = Feature::new(layer.defn()).unwrap();
            f.set_field_string(0, id).unwrap();
            f.set_geometry(Geometry::from_wkt(wkt).unwrap()).unwrap();
            f.create(&layer).unwrap();
        }
    }
    let layer = FarmlandLayer::read(&path, &FieldMapping::default(), &utm31()).unwrap();
    assert!(
        layer.report.rejected.is_empty(),
        "{:?}",
        layer.report.rejected
    );
    assert_eq!((layer.report.used, layer.report.linearised), (3, 3));
    assert_eq!(layer.report.repaired, 0);
    let area_of = |id: &str| area(&layer.parcels.iter().find(|p| p.id == id).unwrap().polygons);
    let disc = PI * r * r;
    for (id, want) in [
        ("circle", disc),
        ("half", disc / 2.0),
        ("multi", disc + 100.0),
    ] {
        // Within 0.5 % (and, at OGR's default 4° of arc per segment, within 0.1 %, as the
        // README states).
        let got = area_of(id);
        assert!(
            (got - want).abs() <= 0.001 * want,
            "{id}: {got} m² vs {want} m²"
        );
    }
    // The multi-surface became two polygons.
    let multi = layer.parcels.iter().find(|p| p.id == "multi").unwrap();
    assert_eq!(multi.polygons.len(), 2);
}
