//! The analysis's inputs and side outputs: parcels outside the imagery, SCL decided up
//! front, STAC input, the administrative-boundary layer, the baseline period and the class
//! maps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gdal::vector::Geometry;
use gengdi_inference::analysis::{analyze, AnalysisInput, AnalysisResult, PixelClassifier};
use gengdi_inference::inputs::{build_stack, every_date_has, open_scenes};
use gengdi_inference::models_adapter::LandCoverAdapter;
use gengdi_inference::rules::RulesConfig;
use gengdi_inference::{FarmlandLayer, FieldMapping};
use gengdi_models::{DeviceChoice, LandCoverModel, Registry, Task};
use gengdi_tiling::{Scene, SceneOptions, SceneStack};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn landcover() -> LandCoverAdapter {
    let reg = Registry::new(root().join("models/weights"));
    let device = DeviceChoice::NdArray.device();
    LandCoverAdapter(
        LandCoverModel::load(&reg.active_dir(Task::LandCover).unwrap(), &device).unwrap(),
    )
}

fn slovenia_scenes() -> Vec<PathBuf> {
    let dir = root().join("fixtures/data/eolearn-slovenia-s2");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("s2l1c_2015") && n.ends_with("_13band.tif")
        })
        .collect();
    v.sort();
    v
}

fn season_scenes(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("S2_L2A_")
        })
        .collect();
    files.sort();
    files
}

fn stack_of(inputs: &[PathBuf], lc: &LandCoverAdapter) -> SceneStack {
    let bands = lc.bands();
    let scenes = open_scenes(
        inputs,
        &SceneOptions::default(),
        &bands,
        &["SCL".to_string()],
    )
    .unwrap();
    build_stack(scenes, &bands, None).unwrap()
}

fn run(
    stack: &SceneStack,
    farmland: &FarmlandLayer,
    lc: &LandCoverAdapter,
    tile: usize,
) -> AnalysisResult {
    let rules = RulesConfig::default();
    let input = AnalysisInput {
        stack,
        farmland,
        landcover: lc,
        croptype: None,
        season_cover: None,
        rules: &rules,
        tile_size: tile,
    };
    analyze(&input, None).unwrap()
}

fn slovenia_farmland(stack: &SceneStack) -> FarmlandLayer {
    FarmlandLayer::read(
        &root().join("fixtures/data/eolearn-slovenia-s2/lulc_raba_polygons.gpkg"),
        &FieldMapping::parse("land_class=RABA_ID").unwrap(),
        &stack.grid.crs,
    )
    .unwrap()
}

/// Whether any pixel centre of the stack's grid lies inside the parcel, by OGR (independent
/// of the analysis's rasteriser).
fn has_pixel_centre(stack: &SceneStack, polygons: &[Vec<Vec<(f64, f64)>>]) -> bool {
    let gt = stack.grid.world_from_pixel;
    for poly in polygons {
        let mut wkt = String::from("POLYGON(");
        for (i, ring) in poly.iter().enumerate() {
            if i > 0 {
                wkt.push(',');
            }
            let mut pts: Vec<String> = ring.iter().map(|(x, y)| format!("{x} {y}")).collect();
            pts.push(format!("{} {}", ring[0].0, ring[0].1));
            wkt.push_str(&format!("({})", pts.join(",")));
        }
        wkt.push(')');
        let g = Geometry::from_wkt(&wkt).unwrap();
        let env = g.envelope();
        for r in 0..stack.grid.height {
            for c in 0..stack.grid.width {
                let (x, y) = gt.world_from_pixel(c as f64 + 0.5, r as f64 + 0.5);
                if x < env.MinX || x > env.MaxX || y < env.MinY || y > env.MaxY {
                    continue;
                }
                if g.contains(&Geometry::from_wkt(&format!("POINT({x} {y})")).unwrap()) {
                    return true;
                }
            }
        }
    }
    false
}

#[test]
fn parcels_outside_the_imagery_are_reported_not_covered() {
    let lc = landcover();
    let stack = stack_of(&slovenia_scenes(), &lc);
    let farmland = slovenia_farmland(&stack);
    assert_eq!(farmland.parcels.len(), 88);
    let r = run(&stack, &farmland, &lc, 64);
    // Every parcel of the register is in the list, in register order.
    assert_eq!(r.parcels.len(), 88);
    let not_covered: Vec<&str> = r
        .parcels
        .iter()
        .filter(|p| p.status == "not_covered")
        .map(|p| p.parcel_id.as_str())
        .collect();
    assert_eq!(not_covered.len(), 7, "{not_covered:?}");
    for (p, s) in farmland.parcels.iter().zip(&r.parcels) {
        assert_eq!(p.id, s.parcel_id);
        let covered = has_pixel_centre(&stack, &p.polygons);
        assert_eq!(s.status != "not_covered", covered, "{}", p.id);
        if !covered {
            assert_eq!(s.pixels, 0);
            assert!(s.flags.is_empty());
            assert!(r.patches.iter().all(|x| x.parcel_id != p.id));
        }
    }
}

#[test]
fn scl_is_used_only_when_every_date_has_one() {
    let dir = tempfile::tempdir().unwrap();
    gengdi_fixtures::season::generate_season(
        &gengdi_fixtures::season::SeasonSpec::default(),
        dir.path(),
    )
    .unwrap();
    let lc = landcover();
    let files = season_scenes(dir.path());
    let stack = stack_of(&files, &lc);
    assert_eq!(stack.band_names.last().map(String::as_str), Some("SCL"));
    // The Slovenia L1C scenes carry no SCL.
    let slo: Vec<Scene> = slovenia_scenes()
        .iter()
        .map(|p| Scene::open(p).unwrap())
        .collect();
    assert!(!every_date_has(&slo, "SCL"));
    // One date without SCL (its last band renamed): the stack is built without SCL, at once.
    let mut scenes: Vec<Scene> = files.iter().map(|p| Scene::open(p).unwrap()).collect();
    let names: Vec<String> = scenes[2].bands.iter().map(|b| b.name.clone()).collect();
    let mut renamed = names.clone();
    *renamed.last_mut().unwrap() = "QA".into();
    scenes[2] = Scene::open_with(
        &files[2],
        &SceneOptions {
            band_names: Some(renamed),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!every_date_has(&scenes, "SCL"));
    let stack = build_stack(scenes, &lc.bands(), None).unwrap();
    assert!(!stack.band_names.iter().any(|b| b == "SCL"));
    assert_eq!(stack.layers.len(), 6);
}

/// A GeoPackage in EPSG:4326 with a `villages` layer (two rectangles splitting the scene at
/// `mid_lon`) and a `counties` layer (one rectangle around both).
fn write_admin(path: &Path, lon: (f64, f64, f64), lat: (f64, f64)) {
    use gdal::spatial_ref::SpatialRef;
    use gdal::vector::{Feature, FieldValue, LayerAccess, LayerOptions, OGRFieldType};
    let drv = gdal::DriverManager::get_driver_by_name("GPKG").unwrap();
    let mut ds = drv.create_vector_only(path).unwrap();
    let srs = SpatialRef::from_epsg(4326).unwrap();
    let rect = |x0: f64, x1: f64| {
        Geometry::from_wkt(&format!(
            "POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))",
            y0 = lat.0,
            y1 = lat.1
        ))
        .unwrap()
    };
    let (west, mid, east) = lon;
    for (name, units) in [
        (
            "villages",
            vec![
                ("640502101001", "West village", rect(west, mid)),
                ("640502101002", "East village", rect(mid, east)),
            ],
        ),
        (
            "counties",
            vec![("640502", "Test county", rect(west - 0.01, east + 0.01))],
        ),
    ] {
        let layer = ds
            .create_layer(LayerOptions {
                name,
                srs: Some(&srs),
                ty: gdal::vector::OGRwkbGeometryType::wkbPolygon,
                options: None,
            })
            .unwrap();
        layer
            .create_defn_fields(&[
                ("XZQDM", OGRFieldType::OFTString),
                ("XZQMC", OGRFieldType::OFTString),
            ])
            .unwrap();
        for (code, label, g) in units {
            let mut f = Feature::new(layer.defn()).unwrap();
            f.set_field(0, &FieldValue::StringValue(code.into()))
                .unwrap();
            f.set_field(1, &FieldValue::StringValue(label.into()))
                .unwrap();
            f.set_geometry(g).unwrap();
            f.create(&layer).unwrap();
        }
    }
}

#[test]
fn patches_carry_the_codes_and_names_of_the_admin_unit_holding_their_parcel() {
    use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
    use gengdi_inference::admin::{AdminFields, AdminLayer};
    let dir = tempfile::tempdir().unwrap();
    gengdi_fixtures::season::generate_season(
        &gengdi_fixtures::season::SeasonSpec::default(),
        dir.path(),
    )
    .unwrap();
    let lc = landcover();
    let stack = stack_of(&season_scenes(dir.path()), &lc);
    // The farmland without its location codes (ZLDWDM), so the admin layer must supply them.
    let mut mapping = FieldMapping::default();
    mapping.fields.insert("location".into(), vec![]);
    let mut farmland =
        FarmlandLayer::read(&dir.path().join("farmland.gpkg"), &mapping, &stack.grid.crs).unwrap();
    assert!(farmland
        .parcels
        .iter()
        .all(|p| p.admin.county_code.is_none()));
    // The scene's extent in longitude / latitude, split at the middle longitude.
    let src = stack.grid.crs.to_spatial_ref().unwrap();
    let mut wgs = SpatialRef::from_epsg(4326).unwrap();
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to_wgs = CoordTransform::new(&src, &wgs).unwrap();
    let b = stack.grid.bounds();
    let (mut xs, mut ys) = (vec![b[0], b[2], b[0], b[2]], vec![b[1], b[1], b[3], b[3]]);
    to_wgs
        .transform_coords(&mut xs, &mut ys, &mut [0.0; 4])
        .unwrap();
    let (w, e) = (
        xs.iter().cloned().fold(f64::INFINITY, f64::min) - 0.01,
        xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max) + 0.01,
    );
    let (s, n) = (
        ys.iter().cloned().fold(f64::INFINITY, f64::min) - 0.01,
        ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max) + 0.01,
    );
    let mid = (xs[0] + xs[1]) / 2.0;
    let admin_path = dir.path().join("admin.gpkg");
    write_admin(&admin_path, (w, mid, e), (s, n));
    let admin = AdminLayer::read(&admin_path, &AdminFields::default(), &stack.grid.crs).unwrap();
    assert_eq!(admin.report.used, 3);
    assert_eq!(admin.report.layers.len(), 2);
    let report = admin.assign(&mut farmland);
    assert_eq!(report.filled, farmland.parcels.len());
    assert_eq!(report.outside, 0);
    let r = run(&stack, &farmland, &lc, 512);
    assert!(r.patches.len() > 10);
    // Independently: a parcel wholly west of the split is in the west village, wholly east
    // in the east one; a parcel across the line is in one of the two it touches.
    let side = |parcel_id: &str| -> (bool, bool) {
        let p = farmland.parcels.iter().find(|p| p.id == parcel_id).unwrap();
        let mut lons: Vec<f64> = p.polygons.iter().flatten().flatten().map(|q| q.0).collect();
        let mut lats: Vec<f64> = p.polygons.iter().flatten().flatten().map(|q| q.1).collect();
        let mut zs = vec![0.0; lons.len()];
        to_wgs
            .transform_coords(&mut lons, &mut lats, &mut zs)
            .unwrap();
        (lons.iter().any(|&x| x < mid), lons.iter().any(|&x| x > mid))
    };
    let mut seen = std::collections::BTreeSet::new();
    for p in &r.patches {
        let (west, east) = side(&p.parcel_id);
        let v = p.village_code.as_deref().unwrap();
        match (west, east) {
            (true, false) => assert_eq!(v, "640502101001", "{}", p.parcel_id),
            (false, true) => assert_eq!(v, "640502101002", "{}", p.parcel_id),
            _ => assert!(v == "640502101001" || v == "640502101002"),
        }
        seen.insert(v.to_string());
        let name = if v.ends_with('1') {
            "West village"
        } else {
            "East village"
        };
        assert_eq!(p.village_name.as_deref(), Some(name));
        assert_eq!(p.township_code.as_deref(), Some("640502101"));
        assert_eq!(p.township_name, None, "no unit names the township");
        assert_eq!(p.county_code.as_deref(), Some("640502"));
        assert_eq!(p.county_name.as_deref(), Some("Test county"));
    }
    assert_eq!(seen.len(), 2, "patches on both sides");
    // The parcel's own attributes win: with ZLDWDM read, its codes stay, and the county's
    // name is looked up by code.
    let mut farmland = FarmlandLayer::read(
        &dir.path().join("farmland.gpkg"),
        &FieldMapping::default(),
        &stack.grid.crs,
    )
    .unwrap();
    let before: Vec<_> = farmland.parcels.iter().map(|p| p.admin.clone()).collect();
    admin.assign(&mut farmland);
    for (p, b) in farmland.parcels.iter().zip(&before) {
        assert_eq!(p.admin.village_code, b.village_code);
        assert_eq!(p.admin.county_code, b.county_code);
        if p.admin.county_code.as_deref() == Some("640502") {
            assert_eq!(p.admin.county_name.as_deref(), Some("Test county"));
        }
    }
}

fn season(dir: &Path) {
    gengdi_fixtures::season::generate_season(&gengdi_fixtures::season::SeasonSpec::default(), dir)
        .unwrap();
}

/// Copy bands (1-based) of a window of `src` into a new GeoTIFF `dst` with the same type
/// (u16), nodata, band descriptions and georeferencing (shifted to the window).
fn write_subset(src: &Path, dst: &Path, bands: &[usize], win: (usize, usize, usize, usize)) {
    use gdal::Metadata;
    let (c0, r0, w, h) = win;
    let s = gdal::Dataset::open(src).unwrap();
    let drv = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut d = drv
        .create_with_band_type::<u16, _>(dst, w, h, bands.len())
        .unwrap();
    let mut gt = s.geo_transform().unwrap();
    gt[0] += c0 as f64 * gt[1];
    gt[3] += r0 as f64 * gt[5];
    d.set_geo_transform(&gt).unwrap();
    d.set_projection(&s.projection()).unwrap();
    for (i, &b) in bands.iter().enumerate() {
        let sb = s.rasterband(b).unwrap();
        let mut buf = sb
            .read_as::<u16>((c0 as isize, r0 as isize), (w, h), (w, h), None)
            .unwrap();
        let mut db = d.rasterband(i + 1).unwrap();
        db.write((0, 0), (w, h), &mut buf).unwrap();
        if let Some(nd) = sb.no_data_value() {
            db.set_no_data_value(Some(nd)).unwrap();
        }
        db.set_description(&sb.description().unwrap()).unwrap();
    }
}

fn read_u8(path: &Path) -> (Vec<u8>, usize, usize) {
    let ds = gdal::Dataset::open(path).unwrap();
    let (w, h) = ds.raster_size();
    let b = ds.rasterband(1).unwrap();
    (b.read_band_as::<u8>().unwrap().data().to_vec(), w, h)
}

#[test]
fn class_maps_agree_with_the_parcels_and_patches_and_open_in_gdal() {
    use gdal::Metadata;
    use gengdi_inference::analysis::{analyze_with, AnalysisOptions, MapSink};
    use gengdi_inference::maps::ClassMaps;
    use gengdi_inference::rasterize::burn;
    use gengdi_inference::rules::PixelKind;
    let dir = tempfile::tempdir().unwrap();
    season(dir.path());
    let lc = landcover();
    let stack = stack_of(&season_scenes(dir.path()), &lc);
    let farmland = FarmlandLayer::read(
        &dir.path().join("farmland.gpkg"),
        &FieldMapping::default(),
        &stack.grid.crs,
    )
    .unwrap();
    // season_kind.tif holds each pixel's own season kind; patches are majority-smoothed
    // inside the parcel, so the exact pixel check below runs without the smoothing.
    let rules = RulesConfig {
        smooth_patches: false,
        ..RulesConfig::default()
    };
    let mut runs = Vec::new();
    for tile in [128, 512] {
        let maps_dir = dir.path().join(format!("maps{tile}"));
        let maps =
            ClassMaps::create(&maps_dir, &stack, &lc.class_names(), &lc.id(), false).unwrap();
        let input = AnalysisInput {
            stack: &stack,
            farmland: &farmland,
            landcover: &lc,
            croptype: None,
            season_cover: None,
            rules: &rules,
            tile_size: tile,
        };
        let opts = AnalysisOptions {
            baseline: None,
            maps: Some(&maps as &dyn MapSink),
            checkpoints: None,
            tiles: Default::default(),
        };
        let r = analyze_with(&input, &opts, None).unwrap();
        let paths = maps.finish().unwrap();
        assert_eq!(paths.len(), stack.layers.len() + 1);
        runs.push((r, maps_dir));
    }
    let (r, maps_dir) = &runs[0];
    // Identical maps whatever the tile size.
    for f in std::fs::read_dir(maps_dir).unwrap() {
        let name = f.unwrap().file_name();
        assert_eq!(
            read_u8(&maps_dir.join(&name)).0,
            read_u8(&runs[1].1.join(&name)).0,
            "{name:?}"
        );
    }
    let (w, h) = (stack.grid.width, stack.grid.height);
    let kind_path = maps_dir.join("season_kind.tif");
    let ds = gdal::Dataset::open(&kind_path).unwrap();
    assert_eq!(
        ds.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref(),
        Some("COG")
    );
    assert_eq!(ds.raster_size(), (w, h));
    let names = ds
        .rasterband(1)
        .unwrap()
        .metadata_item("CLASS_NAMES", "")
        .unwrap();
    assert!(names.contains("\"abandonment\""), "{names}");
    let (kind, _, _) = read_u8(&kind_path);
    // Parcel labels on the grid.
    let gt = stack.grid.world_from_pixel;
    let mut labels = ndarray::Array2::<u32>::zeros((h, w));
    for p in &farmland.parcels {
        burn(&mut labels, 0, 0, &p.pixel_polygons(&gt), p.index);
    }
    let lc_maps: Vec<Vec<u8>> = stack
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            read_u8(&maps_dir.join(gengdi_inference::maps::landcover_file_name(l.date, i))).0
        })
        .collect();
    // Outside farmland every map is 0; inside, the kind is set and per-parcel counts match
    // the parcel table.
    let mut kinds_per_parcel: std::collections::HashMap<
        u32,
        std::collections::BTreeMap<String, u64>,
    > = Default::default();
    let mut clear_per_parcel: std::collections::HashMap<u32, Vec<u64>> = Default::default();
    for r_ in 0..h {
        for c in 0..w {
            let i = r_ * w + c;
            let l = labels[[r_, c]];
            if l == 0 {
                assert_eq!(kind[i], 0, "kind outside farmland at {c},{r_}");
                assert!(
                    lc_maps.iter().all(|m| m[i] == 0),
                    "land cover outside farmland"
                );
                continue;
            }
            assert!(kind[i] >= 1);
            *kinds_per_parcel
                .entry(l)
                .or_default()
                .entry(PixelKind::from_code(kind[i]).name().to_string())
                .or_default() += 1;
            let e = clear_per_parcel
                .entry(l)
                .or_insert_with(|| vec![0; lc_maps.len()]);
            for (d, m) in lc_maps.iter().enumerate() {
                e[d] += u64::from(m[i] > 0);
            }
        }
    }
    for (p, s) in farmland.parcels.iter().zip(&r.parcels) {
        assert_eq!(
            kinds_per_parcel.get(&p.index).cloned().unwrap_or_default(),
            s.kinds,
            "{}",
            p.id
        );
        assert_eq!(
            clear_per_parcel
                .get(&p.index)
                .cloned()
                .unwrap_or_else(|| vec![0; lc_maps.len()]),
            s.clear_pixels,
            "{}",
            p.id
        );
    }
    // Every pixel of a patch has the patch's kind.
    let mut checked = 0;
    let abandonment = (0..=6u8)
        .find(|&k| PixelKind::from_code(k).name() == "abandonment")
        .unwrap();
    for patch in r.patches.iter().filter(|p| p.kind != "non_grain_pbf") {
        let code = (0..=6u8)
            .find(|&k| patch.kind == PixelKind::from_code(k).name())
            .unwrap();
        let pix: Vec<Vec<Vec<(f64, f64)>>> = patch
            .polygons
            .iter()
            .map(|poly| {
                poly.iter()
                    .map(|ring| {
                        ring.iter()
                            .map(|&(x, y)| gt.pixel_from_world(x, y).unwrap())
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let mut m = ndarray::Array2::<u32>::zeros((h, w));
        let mut dikes = 0;
        let n = burn(&mut m, 0, 0, &pix, 1);
        assert!(n > 0);
        for ((r_, c), v) in m.indexed_iter() {
            if *v == 1 {
                // A fishpond's dikes are abandonment pixels on its rim that joined it; the
                // evidence counts them.
                if patch.kind == "fishpond" && kind[r_ * w + c] == abandonment {
                    dikes += 1;
                    continue;
                }
                assert_eq!(kind[r_ * w + c], code, "patch {} at {c},{r_}", patch.id);
                checked += 1;
            }
        }
        let stated = patch
            .evidence
            .split("; ")
            .find_map(|e| {
                e.strip_suffix(
                    " px of it are the pond's dikes (bare or grassy rim, fishpond_dike_px)",
                )
            })
            .map_or(0, |n| n.parse::<usize>().unwrap());
        assert_eq!(dikes, stated, "patch {}: {}", patch.id, patch.evidence);
    }
    assert!(checked > 1000, "{checked}");

    // The land-cover map of a whole date (the web map's land-cover layer) is the analysis's
    // classification: the same code on every clear farmland pixel, 0 on every pixel the
    // analysis found not clear, and classes off farmland too.
    let grid = stack.tile_grid(w.max(h), 0).unwrap();
    let data = stack.read_tile(&grid.tile(0).unwrap()).unwrap();
    let v = data.core();
    let mut off_farmland = 0usize;
    for (d, m) in lc_maps.iter().enumerate() {
        let whole = gengdi_inference::analysis::landcover_map(
            &lc,
            &stack,
            v.index_axis(ndarray::Axis(0), d),
            &rules,
        )
        .unwrap();
        assert_eq!(whole.dim(), (h, w));
        for ((r_, c), &code) in whole.indexed_iter() {
            let i = r_ * w + c;
            if labels[[r_, c]] == 0 {
                off_farmland += usize::from(code > 0);
            } else {
                assert_eq!(code, m[i], "date {d} at {c},{r_}");
            }
        }
    }
    assert!(off_farmland > 1000, "{off_farmland}");
}

#[test]
fn a_baseline_period_decides_class_before_whatever_the_tile_size() {
    use gengdi_inference::analysis::{analyze_with, AnalysisOptions};
    use gengdi_tiling::stack::Placement;
    let dir = tempfile::tempdir().unwrap();
    season(dir.path());
    let lc = landcover();
    let files = season_scenes(dir.path());
    let stack = stack_of(&files, &lc);
    let farmland = FarmlandLayer::read(
        &dir.path().join("farmland.gpkg"),
        &FieldMapping::default(),
        &stack.grid.crs,
    )
    .unwrap();
    let rules = RulesConfig::default();
    let bands = lc.bands();
    // The baseline: the first two dates of the season, the second one cropped (another extent
    // on the season's pixels: scaled onto the season's grid).
    let cropped = dir.path().join("baseline_cropped.tif");
    write_subset(
        &files[1],
        &cropped,
        &(1..=11).collect::<Vec<_>>(),
        (10, 20, 300, 300),
    );
    let scenes = open_scenes(
        &[files[0].clone(), cropped],
        &SceneOptions::default(),
        &bands,
        &[],
    )
    .unwrap();
    let baseline = build_stack(scenes, &bands, Some(stack.grid.clone())).unwrap();
    // The cropped scene is on the grid's pixels, offset: scaled ×1, not warped.
    assert!(matches!(
        baseline.scenes[1].placement,
        Placement::Scaled { scaled, .. } if scaled.factor == 1
    ));
    assert!(baseline.grid.same_as(&stack.grid));
    let class_names = lc.class_names();
    let mut keys = Vec::new();
    for tile in [128, 512] {
        let input = AnalysisInput {
            stack: &stack,
            farmland: &farmland,
            landcover: &lc,
            croptype: None,
            season_cover: None,
            rules: &rules,
            tile_size: tile,
        };
        let r = analyze_with(
            &input,
            &AnalysisOptions {
                baseline: Some(&baseline),
                maps: None,
                checkpoints: None,
                tiles: Default::default(),
            },
            None,
        )
        .unwrap();
        assert_eq!(r.baseline_dates.len(), 2);
        assert!(r.patches.len() > 10);
        // A patch with a clear baseline pixel gets the model's class, one without (under the
        // baseline's clouds, or outside its cropped scene on both dates) the register's.
        let mut from_model = 0;
        for p in &r.patches {
            if class_names.contains(&p.class_before) {
                from_model += 1;
            } else {
                assert!(
                    ["水田", "水浇地", "旱地", "果园", "其他草地"]
                        .contains(&p.class_before.as_str()),
                    "{}: class_before {:?} is neither a model class nor the register's",
                    p.id,
                    p.class_before
                );
            }
        }
        assert!(from_model * 10 >= r.patches.len() * 9, "{from_model}");
        keys.push(
            r.patches
                .iter()
                .map(|p| {
                    (
                        p.id.clone(),
                        p.class_before.clone(),
                        format!("{:.2}", p.area_m2),
                    )
                })
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(keys[0], keys[1], "tile size changed class_before");
    // Without a baseline, class_before is the register's class (DLMC).
    let input = AnalysisInput {
        stack: &stack,
        farmland: &farmland,
        landcover: &lc,
        croptype: None,
        season_cover: None,
        rules: &rules,
        tile_size: 512,
    };
    let plain = analyze(&input, None).unwrap();
    assert!(plain
        .patches
        .iter()
        .all(|p| !class_names.contains(&p.class_before)));
    // A baseline on another grid is refused by the analysis.
    let other = build_stack(
        vec![Scene::open(dir.path().join("baseline_cropped.tif")).unwrap()],
        &bands,
        None,
    )
    .unwrap();
    let err = analyze_with(
        &input,
        &AnalysisOptions {
            baseline: Some(&other),
            maps: None,
            checkpoints: None,
            tiles: Default::default(),
        },
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("season's grid"), "{err}");
}

/// Season band names in file order (band descriptions of the generated scenes).
const SEASON_BANDS: [(&str, &str); 11] = [
    ("B02", "blue"),
    ("B03", "green"),
    ("B04", "red"),
    ("B05", "rededge1"),
    ("B06", "rededge2"),
    ("B07", "rededge3"),
    ("B08", "nir"),
    ("B8A", "nir08"),
    ("B11", "swir16"),
    ("B12", "swir22"),
    ("SCL", "scl"),
];

/// A STAC ItemCollection over the generated season: dates 0–2 one multi-band asset (relative
/// href, band names from the file), date 3 a multi-band asset with `eo:bands` and a file://
/// href, dates 4–5 one GeoTIFF per band (relative hrefs into `bands/`), some keyed by common
/// name, SCL by its key only; every item also has a remote thumbnail and a visual asset,
/// which are never read. Date 5 has `datetime: null` and a `start_datetime`.
fn write_stac(dir: &Path, files: &[PathBuf]) -> serde_json::Value {
    use serde_json::json;
    std::fs::create_dir_all(dir.join("bands")).unwrap();
    let mut features = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let date = format!("{}-{}-{}", &name[7..11], &name[11..13], &name[13..15]);
        let mut assets = serde_json::Map::new();
        assets.insert(
            "thumbnail".into(),
            json!({"href": format!("https://example.invalid/{name}.jpg"), "roles": ["thumbnail"]}),
        );
        assets.insert(
            "visual".into(),
            json!({"href": format!("https://example.invalid/{name}_TCI.tif"), "roles": ["visual"],
                   "eo:bands": [{"name": "B04", "common_name": "red"}, {"name": "B03"}, {"name": "B02"}]}),
        );
        match i {
            0..=2 => {
                assets.insert("data".into(), json!({"href": name, "roles": ["data"]}));
            }
            3 => {
                let bands: Vec<serde_json::Value> = SEASON_BANDS
                    .iter()
                    .map(|(n, c)| json!({"name": n, "common_name": c}))
                    .collect();
                assets.insert(
                    "data".into(),
                    json!({"href": format!("file://{}", f.display()), "type": "image/tiff; application=geotiff", "eo:bands": bands}),
                );
            }
            _ => {
                for (b, (n, c)) in SEASON_BANDS.iter().enumerate() {
                    let file = format!("bands/{}_{n}.tif", &name[..15]);
                    write_subset(f, &dir.join(&file), &[b + 1], (0, 0, 401, 401));
                    let (key, entry) = match b % 3 {
                        _ if *n == "SCL" => ("scl".to_string(), None),
                        0 => (c.to_string(), Some(json!([{"name": n, "common_name": c}]))),
                        1 => (n.to_string(), None),
                        _ => (format!("band{b}"), Some(json!([{"common_name": c}]))),
                    };
                    let mut a = json!({"href": file, "roles": ["data"]});
                    if let Some(e) = entry {
                        a["eo:bands"] = e;
                    }
                    assets.insert(key, a);
                }
            }
        }
        let properties = if i == 5 {
            json!({"datetime": null, "start_datetime": format!("{date}T10:30:00Z"), "end_datetime": format!("{date}T10:40:00Z"), "platform": "sentinel-2b"})
        } else {
            json!({"datetime": format!("{date}T10:30:31.024Z"), "platform": "sentinel-2a"})
        };
        features.push(json!({
            "type": "Feature", "stac_version": "1.0.0", "id": format!("item-{i}"),
            "geometry": null, "properties": properties, "assets": assets, "links": []
        }));
    }
    json!({"type": "FeatureCollection", "features": features})
}

#[test]
fn a_stac_item_collection_gives_the_same_analysis_as_the_scene_files() {
    use gengdi_inference::InferenceError;
    let dir = tempfile::tempdir().unwrap();
    season(dir.path());
    let lc = landcover();
    let files = season_scenes(dir.path());
    // The STAC JSON and its band files in a subdirectory: hrefs of dates 0–2 are relative
    // to the JSON, so the JSON lives beside the season's scenes.
    let collection = write_stac(dir.path(), &files);
    let stac_path = dir.path().join("season.stac.json");
    std::fs::write(
        &stac_path,
        serde_json::to_string_pretty(&collection).unwrap(),
    )
    .unwrap();
    let from_files = stack_of(&files, &lc);
    let from_stac = stack_of(std::slice::from_ref(&stac_path), &lc);
    assert_eq!(from_stac.layers.len(), 6);
    assert_eq!(from_stac.band_names, from_files.band_names);
    assert_eq!(
        from_stac.layers.iter().map(|l| l.date).collect::<Vec<_>>(),
        from_files.layers.iter().map(|l| l.date).collect::<Vec<_>>()
    );
    // Dates 4 and 5 come from one file per band.
    assert_eq!(from_stac.scenes.len(), 4 + 2 * 10);
    let farmland = FarmlandLayer::read(
        &dir.path().join("farmland.gpkg"),
        &FieldMapping::default(),
        &from_files.grid.crs,
    )
    .unwrap();
    let a = run(&from_files, &farmland, &lc, 128);
    let b = run(&from_stac, &farmland, &lc, 128);
    let key = |r: &AnalysisResult| -> Vec<String> {
        r.patches
            .iter()
            .map(|p| {
                format!(
                    "{} {} {:.2} {} {} {:?}",
                    p.id, p.kind, p.area_m2, p.class_after, p.confidence, p.dates
                )
            })
            .collect()
    };
    assert!(a.patches.len() > 10);
    assert_eq!(key(&a), key(&b));
    let status = |r: &AnalysisResult| -> Vec<(String, String, u64, Vec<u64>)> {
        r.parcels
            .iter()
            .map(|p| {
                (
                    p.parcel_id.clone(),
                    p.status.to_string(),
                    p.pixels,
                    p.clear_pixels.clone(),
                )
            })
            .collect()
    };
    assert_eq!(status(&a), status(&b));

    // Errors, each typed and naming what is wrong.
    let bands = lc.bands();
    let try_open = |v: &serde_json::Value| {
        let p = dir.path().join("broken.json");
        std::fs::write(&p, v.to_string()).unwrap();
        open_scenes(&[p], &SceneOptions::default(), &bands, &["SCL".to_string()])
    };
    // A remote href of a needed asset.
    let mut v = collection.clone();
    v["features"][0]["assets"]["data"]["href"] = "https://example.invalid/S2.tif".into();
    match try_open(&v) {
        Err(e @ InferenceError::StacRemoteHref { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("not under an allowed prefix") && m.contains("asset data"),
                "{m}"
            );
        }
        other => panic!("{:?}", other.map(|s| s.len())),
    }
    // A missing file.
    let mut v = collection.clone();
    v["features"][4]["assets"]["blue"]["href"] = "bands/nope.tif".into();
    match try_open(&v) {
        Err(e @ InferenceError::StacMissingAsset { .. }) => {
            assert!(e.to_string().contains("nope.tif"), "{e}")
        }
        other => panic!("{:?}", other.map(|s| s.len())),
    }
    // An item without a date.
    let mut v = collection.clone();
    v["features"][2]["properties"] = serde_json::json!({"datetime": null});
    match try_open(&v) {
        Err(e @ InferenceError::StacItemWithoutDate { .. }) => {
            assert!(e.to_string().contains("item-2"), "{e}")
        }
        other => panic!("{:?}", other.map(|s| s.len())),
    }
    // A required band missing (B08 = nir, and B06) from a per-band item.
    let mut v = collection.clone();
    let assets = v["features"][5]["assets"].as_object_mut().unwrap();
    assets.remove("nir");
    assets.remove("B06");
    match try_open(&v) {
        Err(InferenceError::StacMissingBands { item, bands, .. }) => {
            assert_eq!(item, "item-5");
            assert_eq!(bands, vec!["B06".to_string(), "B08".to_string()]);
        }
        other => panic!("{:?}", other.map(|s| s.len())),
    }
    // A single Item works too, and SCL is optional: without it the stack has none.
    let mut item = collection["features"][4].clone();
    item.as_object_mut().unwrap();
    item["assets"].as_object_mut().unwrap().remove("scl");
    let p = dir.path().join("one_item.json");
    std::fs::write(&p, item.to_string()).unwrap();
    let scenes = open_scenes(&[p], &SceneOptions::default(), &bands, &["SCL".to_string()]).unwrap();
    assert_eq!(scenes.len(), 9);
    assert!(!every_date_has(&scenes, "SCL"));
}
