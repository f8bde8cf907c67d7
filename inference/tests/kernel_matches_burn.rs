//! The land-cover model's fused pixel kernel gives Burn's answer on real scenes: the same
//! class code for every pixel and the same confidence within 1e-5, with every instruction
//! set this CPU has. Burn's forward (`InferencePath::Burn`) is the reference; the kernel is
//! what `gengdi classify` and the season analysis run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gengdi_models::features::N_BANDS;
use gengdi_models::kernel::{Isa, PixelKernel};
use gengdi_models::{DeviceChoice, InferencePath, LandCoverModel, Registry, Task};
use gengdi_tiling::{Scene, SceneStack, StackOptions, TileGrid};
use ndarray::{Array2, Array3, Axis};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn model() -> LandCoverModel {
    let registry = Registry::new(root().join("models/weights"));
    LandCoverModel::load(
        &registry.active_dir(Task::LandCover).unwrap(),
        &DeviceChoice::NdArray.device(),
    )
    .unwrap()
}

/// Every layer of a stack, read whole: (bands, rows, cols) per date, in the model's band order.
fn layers(stack: &SceneStack) -> Vec<Array3<f32>> {
    let grid = TileGrid::new(
        stack.grid.width,
        stack.grid.height,
        stack.grid.width.max(stack.grid.height),
        0,
    )
    .unwrap();
    let tile = grid.tiles().next().unwrap();
    (0..stack.layers.len())
        .map(|d| stack.read_layer(&tile, d).unwrap())
        .collect()
}

/// Compare the kernel (every instruction set available) with Burn on one image; returns
/// (pixels compared, pixels classified).
fn compare(
    model: &LandCoverModel,
    band_names: &[&str],
    dn: &Array3<f32>,
    what: &str,
) -> (usize, usize) {
    let (_, rows, cols) = dn.dim();
    let valid = Array2::from_elem((rows, cols), true);
    let burn = model
        .classify_image_burn(band_names, dn.view(), valid.view())
        .unwrap();
    let kernel = model
        .classify_image(band_names, dn.view(), valid.view())
        .unwrap();
    assert_eq!(model.path(), InferencePath::Kernel);
    let check = |codes: &Array2<u8>, conf: &Array2<f32>, how: &str| {
        for ((idx, &a), &b) in burn.codes.indexed_iter().zip(codes.iter()) {
            assert_eq!(a, b, "{what}, {how}: class code at {idx:?}");
        }
        let worst = burn
            .confidence
            .iter()
            .zip(conf.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= 1e-5,
            "{what}, {how}: confidence differs by {worst}"
        );
    };
    check(&kernel.codes, &kernel.confidence, "default kernel");
    // Each instruction set on its own, through the plane interface.
    let norm = &model.card().input.normalisation;
    let planes: Vec<Vec<f32>> = dn
        .axis_iter(Axis(0))
        .map(|p| p.iter().copied().collect())
        .collect();
    let views: [&[f32]; N_BANDS] = std::array::from_fn(|k| planes[k].as_slice());
    for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
        if !isa.is_available() {
            eprintln!("{isa} not available on this CPU: not compared");
            continue;
        }
        let k = PixelKernel::with_isa(model.net(), &norm.means, &norm.stds, isa).unwrap();
        let mut codes = vec![0u8; rows * cols];
        let mut conf = vec![0f32; rows * cols];
        k.classify_planes(&views, None, &mut codes, &mut conf)
            .unwrap();
        let codes = Array2::from_shape_vec((rows, cols), codes).unwrap();
        let conf = Array2::from_shape_vec((rows, cols), conf).unwrap();
        check(&codes, &conf, &isa.to_string());
    }
    let classified = burn.codes.iter().filter(|&&c| c > 0).count();
    (rows * cols, classified)
}

#[test]
fn the_kernel_gives_burns_classes_on_every_date_of_the_slovenia_scene() {
    let model = model();
    let data = root().join("fixtures/data/eolearn-slovenia-s2");
    let scenes = ["20150711", "20150731", "20150820", "20150830", "20150909"]
        .iter()
        .map(|d| Scene::open(data.join(format!("s2l1c_{d}_13band.tif"))).unwrap())
        .collect();
    let stack = SceneStack::build(
        scenes,
        &StackOptions {
            bands: Some(model.card().input.bands.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let names: Vec<&str> = stack.band_names.iter().map(String::as_str).collect();
    let mut total = (0, 0);
    let mut classes = std::collections::BTreeSet::new();
    for (d, dn) in layers(&stack).iter().enumerate() {
        let (n, c) = compare(&model, &names, dn, &format!("Slovenia date {d}"));
        total = (total.0 + n, total.1 + c);
        let m = model
            .classify_image(
                &names,
                dn.view(),
                Array2::from_elem((dn.dim().1, dn.dim().2), true).view(),
            )
            .unwrap();
        classes.extend(m.codes.iter().copied());
    }
    assert_eq!(total.0, 5 * 100 * 101);
    assert_eq!(total.1, total.0, "every Slovenia pixel has data");
    assert!(
        classes.len() >= 4,
        "several classes are compared: {classes:?}"
    );
}

#[test]
fn the_kernel_gives_burns_classes_on_the_bigearthnet_patches_with_warped_20m_bands() {
    let model = model();
    let dir = root().join("fixtures/data/bigearthnet-tiny-s2/s2");
    let mut patches: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    patches.sort();
    assert_eq!(patches.len(), 11);
    let mut total = 0;
    for patch in &patches {
        let name = patch.file_name().unwrap().to_str().unwrap().to_string();
        let scenes: Vec<Scene> = model
            .card()
            .input
            .bands
            .iter()
            .map(|b| Scene::open(patch.join(format!("{name}_{b}.tif"))).unwrap())
            .collect();
        // One date of per-band files: 10 m bands read directly, 20 m bands warped (bilinear).
        let stack = SceneStack::build(
            scenes,
            &StackOptions {
                bands: Some(model.card().input.bands.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((stack.grid.width, stack.grid.height), (120, 120));
        let names: Vec<&str> = stack.band_names.iter().map(String::as_str).collect();
        for dn in layers(&stack) {
            total += compare(&model, &names, &dn, &name).0;
        }
    }
    assert_eq!(total, 11 * 120 * 120);
}
