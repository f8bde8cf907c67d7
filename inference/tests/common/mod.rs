//! Shared by the end-to-end tests: every written patch read back through GDAL/OGR.

use gdal::vector::{Geometry, LayerAccess};
use gdal::Dataset;
use gengdi_inference::analysis::PatchRecord;
use gengdi_inference::output::write_patches;
use gengdi_tiling::Crs;
use std::collections::BTreeMap;
use std::path::Path;

/// Writes `patches` to `dir` as GeoJSON, GeoPackage and CSV, reads each file back through
/// GDAL/OGR (the CSV's WKT column through OGR's WKT reader) and returns, per format, the
/// patches GEOS `IsValid` rejects, as "id (kind)". Every file must hold every patch, in order.
pub fn invalid_patches_in_every_format(
    dir: &Path,
    patches: &[PatchRecord],
    grid_crs: &Crs,
    farmland_crs: Option<&Crs>,
) -> BTreeMap<&'static str, Vec<String>> {
    assert!(
        gdal::version::VersionInfo::has_geos(),
        "GDAL without GEOS: IsValid cannot be checked"
    );
    let mut invalid = BTreeMap::new();
    for (format, file) in [
        ("geojson", "valid.geojson"),
        ("gpkg", "valid.gpkg"),
        ("csv", "valid.csv"),
    ] {
        let path = dir.join(file);
        write_patches(&path, patches, grid_crs, farmland_crs).unwrap();
        let ds = Dataset::open(&path).unwrap();
        let mut layer = ds.layer(0).unwrap();
        let wkt = layer.defn().field_index("wkt_epsg4326").ok();
        let geometries: Vec<(String, Geometry)> = layer
            .features()
            .map(|f| {
                let id = f.field_as_string(0).unwrap().unwrap_or_default();
                let g = match wkt {
                    Some(i) => Geometry::from_wkt(&f.field_as_string(i).unwrap().unwrap()).unwrap(),
                    None => f.geometry().unwrap().clone(),
                };
                (id, g)
            })
            .collect();
        let ids: Vec<&str> = geometries.iter().map(|(id, _)| id.as_str()).collect();
        let want: Vec<&str> = patches.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, want, "{format}: not every patch read back, in order");
        let bad: Vec<String> = geometries
            .iter()
            .zip(patches)
            .filter(|((_, g), _)| !g.is_valid())
            .map(|(_, p)| format!("{} ({})", p.id, p.kind))
            .collect();
        invalid.insert(format, bad);
    }
    invalid
}

/// Asserts that no format holds an invalid patch, naming those that do.
pub fn assert_every_patch_is_valid(invalid: &BTreeMap<&'static str, Vec<String>>, n: usize) {
    let counts: Vec<String> = invalid
        .iter()
        .map(|(format, bad)| format!("{format}: {} of {n} invalid", bad.len()))
        .collect();
    println!("{}", counts.join(", "));
    assert!(
        invalid.values().all(Vec::is_empty),
        "{}\n{invalid:#?}",
        counts.join(", ")
    );
}

/// A patch's area in the analysis grid's CRS, by GEOS, from its rings as the analysis made
/// them (before any reprojection).
pub fn grid_area(p: &PatchRecord) -> f64 {
    let ring = |r: &Vec<(f64, f64)>| {
        let pts: Vec<String> = r.iter().map(|(x, y)| format!("{x} {y}")).collect();
        format!("({})", pts.join(","))
    };
    let polygons: Vec<String> = p
        .polygons
        .iter()
        .map(|rings| format!("({})", rings.iter().map(ring).collect::<Vec<_>>().join(",")))
        .collect();
    Geometry::from_wkt(&format!("MULTIPOLYGON({})", polygons.join(",")))
        .unwrap()
        .area()
}

/// Every patch outlined from pixels (all but the whole-parcel ones, whose geometry is the parcel)
/// covers a whole number of pixels in the grid CRS, and its reported (equal-area) area is
/// that within 0.5 %.
pub fn assert_pixel_patches_cover_whole_pixels(patches: &[PatchRecord], pixel_area: f64) {
    // Whole-parcel patches (non-grain use, tree planting the season-cover model calls
    // perennial, with class_after "perennial") are parcel polygons, not pixels.
    for p in patches
        .iter()
        .filter(|p| p.kind != "non_grain_pbf" && p.class_after != "perennial")
    {
        let area = grid_area(p);
        let pixels = area / pixel_area;
        assert!(
            pixels >= 1.0 && (pixels - pixels.round()).abs() < 1e-6,
            "{}: {pixels} pixels",
            p.id
        );
        assert!(
            (p.area_m2 - area).abs() / area < 0.005,
            "{}: {area} vs {}",
            p.id,
            p.area_m2
        );
    }
}
