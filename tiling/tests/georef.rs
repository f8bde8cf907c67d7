//! Georeferencing read from the GeoTIFF tags agrees with GDAL for every mechanism.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gengdi_fixtures::fixture;
use gengdi_tiling::tiff::geo::{GeoMechanism, RasterType};
use gengdi_tiling::Scene;

#[test]
fn several_tie_points_give_the_affine_through_gdals_ground_control_points() {
    for file in [
        "austrian_capitals_model_tie_points_pixel_is_area.tif",
        "austrian_capitals_model_tie_points_pixel_is_point.tif",
    ] {
        let path = fixture(&format!("geotiff-reader-fixtures/georust-geotiff/{file}"));
        let scene = Scene::open(&path).unwrap();
        assert_eq!(
            scene.georeferencing,
            Some(GeoMechanism::TiePoints),
            "{file}"
        );
        let gt = scene.world_from_pixel.unwrap();
        let ds = gdal::Dataset::open(&path).unwrap();
        let gcps = ds.gcps();
        assert!(gcps.len() >= 3, "{file}: GDAL sees {} GCPs", gcps.len());
        // GDAL reports the tie points as GCPs at the pixel position it uses (shifted by half
        // a pixel for PixelIsPoint, as with the other mechanisms); our affine maps them exactly.
        for g in gcps {
            let (x, y) = gt.world_from_pixel(g.pixel(), g.line());
            assert!(
                (x - g.x()).abs() < 1e-6 && (y - g.y()).abs() < 1e-6,
                "{file}: {g:?} -> ({x}, {y})"
            );
        }
        assert_eq!(scene.crs.as_ref().and_then(|c| c.epsg), Some(3035));
    }
}

#[test]
fn rotated_affines_and_pixel_is_point_match_gdal() {
    for (rel, rt) in [
        ("geotiff-reader-fixtures/rasterio/rotated.tif", RasterType::PixelIsArea),
        ("geotiff-reader-fixtures/georust-geotiff/austrian_capitals_model_transformation_pixel_is_point.tif", RasterType::PixelIsPoint),
        ("geotiff-reader-fixtures/rasterio/byte.tif", RasterType::PixelIsArea),
        ("eolearn-slovenia-s2/dem.tif", RasterType::PixelIsArea),
    ] {
        let path = fixture(rel);
        let scene = Scene::open(&path).unwrap();
        assert_eq!(scene.raster_type, rt, "{rel}");
        let ours = scene.world_from_pixel.unwrap().0;
        let theirs = gdal::Dataset::open(&path).unwrap().geo_transform().unwrap();
        for (a, b) in ours.iter().zip(theirs.iter()) {
            assert!((a - b).abs() < 1e-9, "{rel}: {ours:?} vs {theirs:?}");
        }
    }
    let rotated = Scene::open(fixture("geotiff-reader-fixtures/rasterio/rotated.tif")).unwrap();
    assert!(!rotated.world_from_pixel.unwrap().is_north_up());
    assert_eq!(rotated.crs, None, "rotated.tif carries no CRS");
}
