//! `GET /api/v1/changes/{id}/chips/{date}.png` in-process, over GeoTIFF scenes written here
//! (UTM 48N, 10 m pixels, bands B02 B03 B04 B08, nodata 0; one date with a GDAL scale and
//! offset) and patches stored on pixel edges: the PNG is decoded and compared pixel by pixel
//! with the scenes' values read independently through GDAL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{gdalwarp_tile, patch, service, tile_of, TestService};
use gdal::raster::Buffer;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::Metadata;
use gengdi_service::api::chips::stretch;
use gengdi_service::store::{BatchCreated, JobOutcome, NewBatch, NewFarmland, NewPatch};
use serde_json::json;
use std::path::{Path, PathBuf};
use tower::ServiceExt;

const EPSG: u32 = 32648;
const X0: f64 = 500_000.0;
const Y0: f64 = 4_150_000.0;
const PIXEL: f64 = 10.0;
const BANDS: [&str; 4] = ["B02", "B03", "B04", "B08"];

/// The stored value of band `b` (0-based, in BANDS order) at (col, row).
fn value(b: usize, col: usize, row: usize) -> u16 {
    (400 + 7 * col + 11 * row + 250 * b) as u16
}

/// Nodata (0) in every band: rows 36..40, cols 42..50; and in the blue band only at (45, 80).
fn is_nodata_rect(col: usize, row: usize) -> bool {
    (36..40).contains(&row) && (42..50).contains(&col)
}

/// A `w × h` GeoTIFF of `bands`; `scale_offset` is written as every band's GDAL scale/offset.
fn write_scene(path: &Path, w: usize, h: usize, bands: &[&str], scale_offset: Option<(f64, f64)>) {
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = driver
        .create_with_band_type::<u16, _>(path, w, h, bands.len())
        .unwrap();
    ds.set_geo_transform(&[X0, PIXEL, 0.0, Y0, 0.0, -PIXEL])
        .unwrap();
    ds.set_spatial_ref(&SpatialRef::from_epsg(EPSG).unwrap())
        .unwrap();
    for (b, name) in bands.iter().enumerate() {
        let mut band = ds.rasterband(b + 1).unwrap();
        band.set_description(name).unwrap();
        band.set_no_data_value(Some(0.0)).unwrap();
        if let Some((s, o)) = scale_offset {
            band.set_scale(s).unwrap();
            band.set_offset(o).unwrap();
        }
        let mut data = Vec::with_capacity(w * h);
        for row in 0..h {
            for col in 0..w {
                let nodata = is_nodata_rect(col, row) || (b == 0 && (col, row) == (45, 80));
                data.push(if nodata { 0 } else { value(b, col, row) });
            }
        }
        band.write((0, 0), (w, h), &mut Buffer::new((w, h), data))
            .unwrap();
    }
}

/// Polygons given in scene pixel corners (col, row) → a patch whose geometry is in WGS 84.
fn pixel_patch(reference: &str, village: &str, rings: &[&[(f64, f64)]]) -> NewPatch {
    let utm = SpatialRef::from_epsg(EPSG).unwrap();
    let mut wgs = SpatialRef::from_epsg(4326).unwrap();
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let t = CoordTransform::new(&utm, &wgs).unwrap();
    let poly: Vec<Vec<(f64, f64)>> = rings
        .iter()
        .map(|ring| {
            let mut xs: Vec<f64> = ring.iter().map(|p| X0 + p.0 * PIXEL).collect();
            let mut ys: Vec<f64> = ring.iter().map(|p| Y0 - p.1 * PIXEL).collect();
            t.transform_coords(&mut xs, &mut ys, &mut []).unwrap();
            xs.into_iter().zip(ys).collect()
        })
        .collect();
    let polygons = vec![poly];
    let mut p = patch(reference, "fishpond", village, 0.0, 0.0, 1.0);
    p.geometry = gengdi_service::geometry::geojson_multipolygon(&polygons).to_string();
    p.bbox = gengdi_service::geometry::bbox(&polygons).unwrap();
    p
}

fn rect(c0: f64, r0: f64, c1: f64, r1: f64) -> [(f64, f64); 4] {
    [(c0, r0), (c1, r0), (c1, r1), (c0, r1)]
}

/// A done batch of `scenes` holding `patches`; its id.
async fn seed_batch(s: &TestService, scenes: Vec<String>, patches: Vec<NewPatch>) -> i64 {
    seed_batch_with(s, scenes, Default::default(), patches).await
}

/// The same with batch options (a baseline).
async fn seed_batch_with(
    s: &TestService,
    scenes: Vec<String>,
    options: gengdi_service::store::BatchOptions,
    patches: Vec<NewPatch>,
) -> i64 {
    let admin = s.store.list_tokens().await.unwrap()[0].id;
    let f = s
        .store
        .insert_farmland(NewFarmland {
            name: "f".into(),
            source: "f.gpkg".into(),
            stored_path: "/nonexistent/f.gpkg".into(),
            layer: "parcels".into(),
            mapping: String::new(),
            features: 1,
            parcels: 1,
            used: 1,
            repaired: 0,
            rejected: 0,
            area_mu: 1.0,
            pbf_area_mu: 0.0,
            fields_used: json!({}),
            created_by: admin,
        })
        .await
        .unwrap();
    let BatchCreated::New(b) = s
        .store
        .create_batch(NewBatch {
            options,
            name: None,
            farmland: f.id,
            scenes,
            created_by: admin,
            idempotency: None,
        })
        .await
        .unwrap()
    else {
        panic!("not new")
    };
    assert_eq!(s.store.claim_job().await.unwrap().unwrap().id, b.id);
    s.store
        .finish_job(b.id, JobOutcome::Done(patches))
        .await
        .unwrap();
    b.id
}

struct Got {
    status: StatusCode,
    content_type: String,
    cache: String,
    /// `X-Chip-Date`.
    chip_date: String,
    body: Vec<u8>,
}

async fn get(s: &TestService, uri: &str, token: Option<&str>) -> Got {
    let mut req = Request::get(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let res = s
        .app()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let h = |n: header::HeaderName| {
        res.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (content_type, cache) = (h(header::CONTENT_TYPE), h(header::CACHE_CONTROL));
    let chip_date = h(header::HeaderName::from_static("x-chip-date"));
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 26)
        .await
        .unwrap()
        .to_vec();
    Got {
        status,
        content_type,
        cache,
        chip_date,
        body,
    }
}

fn json_of(g: &Got) -> serde_json::Value {
    assert_eq!(g.content_type, "application/json");
    serde_json::from_slice(&g.body).unwrap()
}

/// Decode an 8-bit RGBA PNG: (width, height, pixels).
fn decode(png_bytes: &[u8]) -> (usize, usize, Vec<[u8; 4]>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let px = buf[..info.buffer_size()]
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    (info.width as usize, info.height as usize, px)
}

/// A scene read back through GDAL: values of B04, B03, B02 with each band's scale and
/// offset (1e-4 and 0 where the file states none: reflectance × 10 000) and nodata.
struct Truth {
    width: usize,
    planes: Vec<(Vec<u16>, f64, f64, Option<f64>)>,
}

impl Truth {
    fn read(path: &Path) -> Truth {
        let ds = gdal::Dataset::open(path).unwrap();
        let width = ds.raster_size().0;
        let planes = ["B04", "B03", "B02"]
            .iter()
            .map(|name| {
                let i = (1..=ds.raster_count())
                    .find(|&i| ds.rasterband(i).unwrap().description().unwrap() == *name)
                    .unwrap();
                let band = ds.rasterband(i).unwrap();
                let data = band.read_band_as::<u16>().unwrap().data().to_vec();
                (
                    data,
                    band.scale().filter(|s| *s != 1.0).unwrap_or(1e-4),
                    band.offset().unwrap_or(0.0),
                    band.no_data_value(),
                )
            })
            .collect();
        Truth { width, planes }
    }

    /// The chip pixel of scene pixel (col, row), outline aside.
    fn rgba(&self, col: usize, row: usize) -> [u8; 4] {
        let mut out = [0, 0, 0, 255];
        for (c, (data, scale, offset, nodata)) in self.planes.iter().enumerate() {
            let v = f64::from(data[row * self.width + col]);
            if Some(v) == *nodata {
                return [0, 0, 0, 0];
            }
            out[c] = stretch(v * scale + offset);
        }
        out
    }
}

const YELLOW: [u8; 4] = [255, 255, 0, 255];

/// Two dates (2024-04-20 as reflectance × 10 000; 2024-06-10 with a GDAL scale of 1e-4 and
/// an offset of −0.1) in a directory, a batch of that directory and patches on pixel edges.
struct Fixture {
    s: TestService,
    scenes: PathBuf,
    /// Patch ids: 40 × 20 rectangle; 10 × 8 rectangle at the raster's corner; the first
    /// patch's shape in the other county; 60 × 60 with a 20 × 20 hole.
    ids: [i64; 4],
}

async fn fixture() -> Fixture {
    let s = service().await;
    let scenes = s.config.import_root.join("scenes");
    std::fs::create_dir_all(&scenes).unwrap();
    write_scene(&scenes.join("S2_L2A_20240420.tif"), 200, 160, &BANDS, None);
    write_scene(
        &scenes.join("S2_L2A_20240610.tif"),
        200,
        160,
        &BANDS,
        Some((1e-4, -0.1)),
    );
    let a = rect(60.0, 50.0, 100.0, 70.0);
    let b = rect(2.0, 150.0, 12.0, 158.0);
    let outer = rect(120.0, 20.0, 180.0, 80.0);
    let hole = rect(140.0, 40.0, 160.0, 60.0);
    seed_batch(
        &s,
        vec![scenes.display().to_string()],
        vec![
            pixel_patch("a", "640502101001", &[&a]),
            pixel_patch("b", "640502101001", &[&b]),
            pixel_patch("c", "640521100003", &[&a]),
            pixel_patch("d", "640502101001", &[&outer, &hole]),
        ],
    )
    .await;
    Fixture {
        s,
        scenes,
        ids: [1, 2, 3, 4],
    }
}

/// Whether scene pixel (col, row) is a border pixel of the rectangle `[c0, c1) × [r0, r1)`.
fn on_border(col: usize, row: usize, [c0, r0, c1, r1]: [usize; 4]) -> bool {
    (c0..c1).contains(&col)
        && (r0..r1).contains(&row)
        && (col == c0 || col == c1 - 1 || row == r0 || row == r1 - 1)
}

/// Compare a chip with the scene pixel by pixel: the window's origin and size, yellow
/// exactly on `borders`, the stretched scene value everywhere else.
fn assert_chip(
    png_bytes: &[u8],
    truth: &Truth,
    origin: (usize, usize),
    size: (usize, usize),
    borders: &[[usize; 4]],
) {
    let (w, h, px) = decode(png_bytes);
    assert_eq!((w, h), size);
    let mut yellow = 0;
    for y in 0..h {
        for x in 0..w {
            let (col, row) = (origin.0 + x, origin.1 + y);
            let got = px[y * w + x];
            if borders.iter().any(|b| on_border(col, row, *b)) {
                assert_eq!(got, YELLOW, "outline at scene ({col}, {row})");
                yellow += 1;
            } else {
                assert_eq!(got, truth.rgba(col, row), "scene ({col}, {row})");
            }
        }
    }
    assert!(yellow > 0);
}

#[tokio::test]
async fn a_chip_is_the_stretched_scene_around_the_patch_with_its_outline_in_yellow() {
    let f = fixture().await;
    let admin = Some(f.s.tokens.admin.as_str());
    let april = Truth::read(&f.scenes.join("S2_L2A_20240420.tif"));
    let june = Truth::read(&f.scenes.join("S2_L2A_20240610.tif"));
    // The radiometry differs between the dates, so do the chips.
    assert_ne!(april.rgba(70, 60), june.rgba(70, 60));

    // 40 × 20 px: padded by 20 (half of 40) left and right, by 16 (the least) above and
    // below: cols 40..120, rows 34..86. The nodata rectangle and pixel are inside.
    let id = f.ids[0];
    for (date, truth) in [
        ("2024-04-20", &april),
        ("20240420", &april),
        ("2024-06-10", &june),
    ] {
        let g = get(
            &f.s,
            &format!("/api/v1/changes/{id}/chips/{date}.png"),
            admin,
        )
        .await;
        assert_eq!(g.status, StatusCode::OK, "{date}");
        assert_eq!(g.content_type, "image/png");
        assert_eq!(g.cache, "private, max-age=3600");
        assert_chip(&g.body, truth, (40, 34), (80, 52), &[[60, 50, 100, 70]]);
        // Nodata is transparent.
        let (w, _, px) = decode(&g.body);
        assert_eq!(px[(37 - 34) * w + (44 - 40)], [0, 0, 0, 0]);
        assert_eq!(px[(80 - 34) * w + (45 - 40)], [0, 0, 0, 0]);
        assert_eq!(px[(80 - 34) * w + (46 - 40)][3], 255);
    }

    // At the raster's corner the window is clamped: cols 0..28, rows 134..160.
    let g = get(
        &f.s,
        &format!("/api/v1/changes/{}/chips/2024-04-20.png", f.ids[1]),
        admin,
    )
    .await;
    assert_eq!(g.status, StatusCode::OK);
    assert_chip(&g.body, &april, (0, 134), (28, 26), &[[2, 150, 12, 158]]);

    // A hole is outlined too: on the pixels of the patch along it (just outside the hole;
    // its four sides, not the pixels touching it only at a corner).
    let g = get(
        &f.s,
        &format!("/api/v1/changes/{}/chips/2024-06-10.png", f.ids[3]),
        admin,
    )
    .await;
    assert_eq!(g.status, StatusCode::OK);
    // 60 × 60: padded by 30, clamped to the raster: cols 90..200, rows 0..110.
    assert_chip(
        &g.body,
        &june,
        (90, 0),
        (110, 110),
        &[
            [120, 20, 180, 80],
            [140, 39, 160, 40],
            [140, 60, 160, 61],
            [139, 40, 140, 60],
            [160, 40, 161, 60],
        ],
    );
}

#[tokio::test]
async fn dates_roles_and_scopes() {
    let f = fixture().await;
    let t = &f.s.tokens;
    let id = f.ids[0];
    let uri = |date: &str| format!("/api/v1/changes/{id}/chips/{date}");

    // A date of no scene: 404, with the batch's dates.
    let g = get(&f.s, &uri("2024-05-01.png"), Some(&t.admin)).await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
    assert_eq!(
        json_of(&g),
        json!({"code": "not_found", "message": "batch 1 has no scene of 2024-05-01",
               "details": {"dates": ["2024-04-20", "2024-06-10"], "baseline_dates": []}})
    );
    // Not a date; not a PNG.
    for (path, status, code) in [
        ("2024-13-01.png", StatusCode::BAD_REQUEST, "bad_date"),
        ("april.png", StatusCode::BAD_REQUEST, "bad_date"),
        ("2024-04-20", StatusCode::NOT_FOUND, "not_found"),
        ("2024-04-20.jpg", StatusCode::NOT_FOUND, "not_found"),
    ] {
        let g = get(&f.s, &uri(path), Some(&t.admin)).await;
        assert_eq!(
            (g.status, json_of(&g)["code"].clone()),
            (status, json!(code)),
            "{path}"
        );
    }
    let g = get(
        &f.s,
        "/api/v1/changes/x/chips/2024-04-20.png",
        Some(&t.admin),
    )
    .await;
    assert_eq!(
        (g.status, json_of(&g)["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("bad_path"))
    );

    // Every role reads chips; an inspector only in their county (elsewhere: 404 as if the
    // patch did not exist, the same body as for a patch that does not).
    for token in [&t.admin, &t.centre, &t.researcher, &t.inspector] {
        let g = get(&f.s, &uri("2024-04-20.png"), Some(token)).await;
        assert_eq!(g.status, StatusCode::OK);
    }
    for (token, patch) in [
        (&t.inspector_other, id),
        (&t.inspector_empty, id),
        (&t.inspector, f.ids[2]),
        (&t.admin, 99),
    ] {
        let g = get(
            &f.s,
            &format!("/api/v1/changes/{patch}/chips/2024-04-20.png"),
            Some(token),
        )
        .await;
        assert_eq!(g.status, StatusCode::NOT_FOUND);
        assert_eq!(
            json_of(&g),
            json!({"code": "not_found", "message": format!("no change {patch}")})
        );
    }
    let g = get(
        &f.s,
        &format!("/api/v1/changes/{}/chips/2024-04-20.png", f.ids[2]),
        Some(&t.inspector_other),
    )
    .await;
    assert_eq!(g.status, StatusCode::OK);
    // No token, a revoked one: 401. (No role is refused: all four may read patches.)
    for token in [None, Some(t.revoked.as_str())] {
        let g = get(&f.s, &uri("2024-04-20.png"), token).await;
        assert_eq!(g.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn a_date_without_true_colour_bands_is_422_naming_them() {
    let s = service().await;
    let dir = s.config.import_root.join("nir");
    std::fs::create_dir_all(&dir).unwrap();
    write_scene(
        &dir.join("S2_L2A_20240420.tif"),
        64,
        64,
        &["B08", "B11"],
        None,
    );
    write_scene(
        &dir.join("S2_L2A_20240610.tif"),
        64,
        64,
        &["B08", "B04"],
        None,
    );
    let p = pixel_patch("a", "640502101001", &[&rect(10.0, 10.0, 20.0, 20.0)]);
    seed_batch(&s, vec![dir.display().to_string()], vec![p]).await;
    let g = get(
        &s,
        "/api/v1/changes/1/chips/2024-04-20.png",
        Some(&s.tokens.admin),
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        json_of(&g),
        json!({"code": "missing_bands",
               "message": "the scenes of 2024-04-20 lack B04 (red), B03 (green), B02 (blue) for a true-colour chip",
               "details": {"missing": ["B04 (red)", "B03 (green)", "B02 (blue)"], "available": ["B08", "B11"]}})
    );
    let g = get(
        &s,
        "/api/v1/changes/1/chips/2024-06-10.png",
        Some(&s.tokens.admin),
    )
    .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        json_of(&g)["details"]["missing"],
        json!(["B03 (green)", "B02 (blue)"])
    );
}

#[tokio::test]
async fn a_large_patch_is_decimated_to_512_pixels() {
    let s = service().await;
    let dir = s.config.import_root.join("wide");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("S2_L2A_20240420.tif");
    write_scene(&path, 1200, 300, &BANDS, None);
    // 800 × 100 px: padded by 400 and 50: cols 0..1200 (clamped), rows 50..250; the longer
    // side 1200 > 512, so every 3rd pixel (k = 3): 400 × 67 (ceil(200 / 3)).
    let p = pixel_patch("a", "640502101001", &[&rect(200.0, 100.0, 1000.0, 200.0)]);
    seed_batch(&s, vec![dir.display().to_string()], vec![p]).await;
    let g = get(
        &s,
        "/api/v1/changes/1/chips/2024-04-20.png",
        Some(&s.tokens.admin),
    )
    .await;
    assert_eq!(g.status, StatusCode::OK);
    let (w, h, px) = decode(&g.body);
    assert_eq!((w, h), (400, 67));
    let truth = Truth::read(&path);
    let mut yellow = 0;
    for y in 0..h {
        for x in 0..w {
            let (col, row) = ((3 * x + 1).min(1199), 50 + (3 * y + 1).min(199));
            let got = px[y * w + x];
            if got == YELLOW {
                // On the patch's border in chip pixels: x 66 or 333, y 16 or 49.
                assert!(
                    ((66..=333).contains(&x) && (y == 16 || y == 49))
                        || ((16..=49).contains(&y) && (x == 66 || x == 333)),
                    "({x}, {y})"
                );
                yellow += 1;
            } else {
                assert_eq!(got, truth.rgba(col, row), "chip ({x}, {y})");
            }
        }
    }
    // The whole border: 2 × 268 + 2 × 32 pixels.
    assert_eq!(yellow, 2 * 268 + 2 * 32);
}

/// With a baseline, `before` is the baseline's latest date and `after` the season's: the
/// same pixels as asking for those dates; the baseline's dates are chips too. Without a
/// baseline, `before` is 404 `no_baseline` and `after` is the season's last date.
#[tokio::test]
async fn before_and_after_chips_come_from_the_baseline_and_the_season() {
    let f = fixture().await;
    let t = &f.s.tokens;
    let a = rect(60.0, 50.0, 100.0, 70.0);
    let baseline = f.scenes.join("S2_L2A_20240420.tif").display().to_string();
    let season = f.scenes.join("S2_L2A_20240610.tif").display().to_string();
    seed_batch_with(
        &f.s,
        vec![season],
        gengdi_service::store::BatchOptions {
            baseline: vec![baseline],
            ..Default::default()
        },
        vec![pixel_patch("e", "640502101001", &[&a])],
    )
    .await;
    let with = 5;
    let png = |id: i64, date: &'static str| {
        let s = &f.s;
        async move {
            get(
                s,
                &format!("/api/v1/changes/{id}/chips/{date}.png"),
                Some(&t.admin),
            )
            .await
        }
    };
    // The first batch's scenes hold both dates: the same chips as the second batch's.
    let (april, june) = (png(1, "2024-04-20").await, png(1, "2024-06-10").await);
    assert_eq!(
        (april.status, june.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_ne!(april.body, june.body, "the two dates differ");
    for (date, want, drawn) in [
        ("before", &april, "2024-04-20"),
        ("after", &june, "2024-06-10"),
        ("2024-04-20", &april, "2024-04-20"),
        ("2024-06-10", &june, "2024-06-10"),
    ] {
        let g = png(with, date).await;
        assert_eq!(g.status, StatusCode::OK, "{date}");
        assert_eq!(g.content_type, "image/png");
        assert_eq!(g.chip_date, drawn, "{date}");
        assert_eq!(g.body, want.body, "{date}");
    }
    let g = png(with, "2024-05-01").await;
    assert_eq!(
        json_of(&g),
        json!({"code": "not_found", "message": "batch 2 has no scene of 2024-05-01",
               "details": {"dates": ["2024-06-10"], "baseline_dates": ["2024-04-20"]}})
    );
    // No baseline: no before chip; after is the latest season date.
    let g = png(1, "before").await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
    assert_eq!(
        json_of(&g),
        json!({"code": "no_baseline", "message": "batch 1 has no baseline (with a date): no before chip"})
    );
    let g = png(1, "after").await;
    assert_eq!(
        (g.status, g.chip_date.as_str()),
        (StatusCode::OK, "2024-06-10")
    );
    assert_eq!(g.body, june.body);
}

/// Imagery tiles: the pixels are GDAL's warp of the scene onto the Web Mercator tile,
/// stretched as chips are (true and false colour); kept on disk and served again the same;
/// bad requests are clean errors; an inspector sees only batches with a patch in their
/// region.
#[tokio::test]
async fn imagery_tiles_are_gdal_warps_of_the_date_stretched_and_cached() {
    use gengdi_service::api::tiles::{tile_bounds, FALSE_COLOUR_WHITE};
    let f = fixture().await;
    let t = &f.s.tokens;
    // Near the scene's north-west corner, in longitude / latitude: its tile is partly outside.
    let utm = SpatialRef::from_epsg(EPSG).unwrap();
    let mut wgs = SpatialRef::from_epsg(4326).unwrap();
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to_wgs = CoordTransform::new(&utm, &wgs).unwrap();
    let (mut xs, mut ys) = (vec![X0 + 2.0 * PIXEL], vec![Y0 - 2.0 * PIXEL]);
    to_wgs.transform_coords(&mut xs, &mut ys, &mut []).unwrap();
    let z = 15;
    let (x, y) = tile_of(xs[0], ys[0], z);
    let bounds = tile_bounds(z, x, y);
    let uri = |date: &str, style: &str, z: u8, x: u32, y: u32| {
        format!("/tiles/1/{date}/{style}/{z}/{x}/{y}.png")
    };
    for (date, file, scale, offset) in [
        ("2024-04-20", "S2_L2A_20240420.tif", 1e-4, 0.0),
        ("2024-06-10", "S2_L2A_20240610.tif", 1e-4, -0.1),
    ] {
        let reference = gdalwarp_tile(
            &f.scenes.join(file),
            &[],
            bounds,
            "bilinear",
            &f.s.dir.path().join(format!("ref-{date}.tif")),
        );
        for (style, bands, white) in [
            ("true", [2usize, 1, 0], 0.3),
            ("false", [3usize, 2, 1], FALSE_COLOUR_WHITE),
        ] {
            let g = get(&f.s, &uri(date, style, z, x, y), Some(&t.inspector)).await;
            assert_eq!(
                g.status,
                StatusCode::OK,
                "{date} {style}: {:?}",
                json_of(&g)
            );
            assert_eq!(g.content_type, "image/png");
            let decoder = png::Decoder::new(std::io::Cursor::new(&g.body));
            let mut reader = decoder.read_info().unwrap();
            let mut px = vec![0u8; reader.output_buffer_size().unwrap()];
            let info = reader.next_frame(&mut px).unwrap();
            assert_eq!((info.width, info.height), (256, 256));
            let (mut opaque, mut same_alpha, mut worst) = (0, 0, 0i32);
            for i in 0..256 * 256 {
                let v: Vec<f32> = bands.iter().map(|&b| reference[b][i]).collect();
                let want_clear = v.iter().any(|x| !x.is_finite());
                let got = &px[i * 4..i * 4 + 4];
                if (got[3] == 0) == want_clear {
                    same_alpha += 1;
                }
                if want_clear || got[3] == 0 {
                    continue;
                }
                opaque += 1;
                for (c, value) in v.iter().enumerate() {
                    let refl = f64::from(*value) * scale + offset;
                    let want = stretch(refl * 0.3 / white);
                    worst = worst.max((i32::from(got[c]) - i32::from(want)).abs());
                }
            }
            // The scene covers part of the tile; the nodata holes too are transparent.
            assert!(
                opaque > 5000 && opaque < 256 * 256,
                "{date} {style}: {opaque}"
            );
            assert!(
                same_alpha >= 256 * 256 - 256,
                "{date} {style}: {same_alpha}"
            );
            assert!(worst <= 1, "{date} {style}: worst difference {worst}");
            // Kept on disk, served again the same.
            let kept =
                f.s.config
                    .data_dir
                    .join(format!("tiles/1/{date}/{style}/{z}/{x}/{y}.png"));
            assert_eq!(std::fs::read(&kept).unwrap(), g.body);
            let again = get(&f.s, &uri(date, style, z, x, y), Some(&t.admin)).await;
            assert_eq!(again.body, g.body);
        }
    }
    // A tile beside the scene: every pixel transparent.
    let g = get(
        &f.s,
        &uri("2024-04-20", "true", z, x + 40, y),
        Some(&t.admin),
    )
    .await;
    assert_eq!(g.status, StatusCode::OK);
    let mut reader = png::Decoder::new(std::io::Cursor::new(&g.body))
        .read_info()
        .unwrap();
    let mut px = vec![0u8; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut px).unwrap();
    assert!(px.chunks(4).all(|p| p[3] == 0));

    for (path, token, status, code) in [
        (
            uri("2024-04-20", "true", 10, x >> 5, y >> 5),
            &t.admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            "zoom_out",
        ),
        (
            uri("2024-05-01", "true", z, x, y),
            &t.admin,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            uri("2024-04-20", "infrared", z, x, y),
            &t.admin,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            uri("april", "true", z, x, y),
            &t.admin,
            StatusCode::BAD_REQUEST,
            "bad_date",
        ),
        (
            uri("2024-04-20", "true", 3, 9, 0),
            &t.admin,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            uri("2024-04-20", "true", z, x, y).replace("/1/", "/7/"),
            &t.admin,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        // Another region's inspector: the batch has no patch there.
        (
            uri("2024-04-20", "true", z, x, y),
            &t.inspector_empty,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let g = get(&f.s, &path, Some(token)).await;
        assert_eq!(g.status, status, "{path}");
        assert_eq!(json_of(&g)["code"].as_str(), Some(code), "{path}");
    }
    let g = get(&f.s, &uri("2024-04-20", "true", z, x, y), None).await;
    assert_eq!(g.status, StatusCode::UNAUTHORIZED);
}
