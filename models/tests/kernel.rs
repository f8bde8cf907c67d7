#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The fused pixel kernel runs the shipped land-cover network as Burn does: same class codes,
//! confidences within 1e-5, on every real pixel of the training tables and with every
//! instruction set this CPU has; nodata and masked pixels get code 0 wherever they fall in a
//! block.

mod common;

use std::path::PathBuf;

use gengdi_models::features::{BANDS, N_BANDS};
use gengdi_models::kernel::{Isa, PixelKernel};
use gengdi_models::{DeviceChoice, InferencePath, LandCoverModel, Registry, Task};
use ndarray::{Array1, Array2};

fn model() -> LandCoverModel {
    let dir = Registry::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights"))
        .active_dir(Task::LandCover)
        .unwrap();
    LandCoverModel::load(&dir, &DeviceChoice::NdArray.device()).unwrap()
}

fn kernels(model: &LandCoverModel) -> Vec<PixelKernel> {
    let norm = &model.card().input.normalisation;
    [Isa::Avx512, Isa::Avx2, Isa::Portable]
        .into_iter()
        .filter(|i| i.is_available())
        .map(|isa| PixelKernel::with_isa(model.net(), &norm.means, &norm.stds, isa).unwrap())
        .collect()
}

/// Run one kernel on pixel rows (`n × 9`).
fn run(k: &PixelKernel, dn: &Array2<f32>, valid: Option<&[bool]>) -> (Vec<u8>, Vec<f32>) {
    let n = dn.nrows();
    let planes: Vec<Vec<f32>> = (0..N_BANDS).map(|b| dn.column(b).to_vec()).collect();
    let views: [&[f32]; N_BANDS] = std::array::from_fn(|b| planes[b].as_slice());
    let mut codes = vec![9u8; n];
    let mut conf = vec![9f32; n];
    k.classify_planes(&views, valid, &mut codes, &mut conf)
        .unwrap();
    (codes, conf)
}

#[test]
fn the_kernel_gives_burns_class_codes_on_every_pixel_of_the_training_tables() {
    let model = model();
    let samples = common::landcover();
    let n = samples.samples.len();
    assert!(n > 10_000, "{n} real pixels");
    let dn = Array2::from_shape_fn((n, N_BANDS), |(i, b)| samples.samples[i].dn[b]);
    let valid = Array1::from_elem(n, true);
    let burn = model
        .classify_pixels_burn(&BANDS, dn.view(), valid.view())
        .unwrap();
    assert_eq!(model.path(), InferencePath::Kernel);
    let fast = model
        .classify_pixels(&BANDS, dn.view(), valid.view())
        .unwrap();
    let mut outcomes = vec![(
        fast.codes.to_vec(),
        fast.confidence.to_vec(),
        "default".to_string(),
    )];
    for k in kernels(&model) {
        let (c, p) = run(&k, &dn, None);
        outcomes.push((c, p, k.isa().to_string()));
    }
    for (codes, conf, isa) in outcomes {
        let differ = burn
            .codes
            .iter()
            .zip(&codes)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differ, 0,
            "{isa}: {differ} of {n} class codes differ from Burn's"
        );
        let worst = burn
            .confidence
            .iter()
            .zip(&conf)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-5, "{isa}: confidence differs by up to {worst}");
        eprintln!("{isa}: {n} pixels, same codes, confidence within {worst:e}");
    }
}

#[test]
fn nodata_and_masked_pixels_get_code_zero_wherever_they_fall_in_a_block() {
    let model = model();
    let samples = common::landcover();
    // Lengths around every block size (1, 4, 24, 48 pixels) and a partial last block.
    for n in [0usize, 1, 3, 5, 23, 25, 47, 49, 100] {
        let mut dn = Array2::from_shape_fn((n, N_BANDS), |(i, b)| {
            samples.samples[(i * 37) % samples.samples.len()].dn[b]
        });
        let mut valid = vec![true; n];
        for i in 0..n {
            match i % 7 {
                1 => dn[[i, i % N_BANDS]] = f32::NAN,
                3 => dn[[i, 0]] = f32::INFINITY,
                5 => valid[i] = false,
                // A dark pixel: zero reflectance is data (its indices are 0), not nodata.
                6 => dn.row_mut(i).fill(0.0),
                _ => {}
            }
        }
        let burn = model
            .classify_pixels_burn(&BANDS, dn.view(), Array1::from(valid.clone()).view())
            .unwrap();
        for k in kernels(&model) {
            let (codes, conf) = run(&k, &dn, Some(&valid));
            for i in 0..n {
                let expect_nodata = matches!(i % 7, 1 | 3 | 5);
                assert_eq!(codes[i] == 0, expect_nodata, "{} n={n} pixel {i}", k.isa());
                assert_eq!(conf[i] == 0.0, expect_nodata, "{} n={n} pixel {i}", k.isa());
                assert_eq!(codes[i], burn.codes[i], "{} n={n} pixel {i}", k.isa());
                assert!((conf[i] - burn.confidence[i]).abs() <= 1e-5);
            }
        }
    }
}

#[test]
fn planes_of_different_lengths_are_refused() {
    let model = model();
    let a = vec![0f32; 10];
    let b = vec![0f32; 9];
    let mut views: [&[f32]; N_BANDS] = [&a; N_BANDS];
    views[4] = &b;
    let mut codes = vec![0u8; 10];
    let mut conf = vec![0f32; 10];
    let err = model
        .kernel()
        .classify_planes(&views, None, &mut codes, &mut conf)
        .unwrap_err()
        .to_string();
    assert!(err.contains("planes"), "{err}");
}
