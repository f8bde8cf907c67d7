//! Land-cover inference throughput of the shipped model (million pixels/s): the fused pixel
//! kernel (`gengdi_models::kernel`, what `gengdi classify` and the analysis run) with each
//! instruction set this CPU has, Burn on NdArray and on Flex (the reference forward), on one
//! thread and on all cores, and the plain-ndarray `.dot` reference
//! (`gengdi_models::reference`, a benchmark reference, not a production path).
//!
//! Every variant runs the full per-pixel path: 9 bands of DN → 14 normalised features →
//! MLP → softmax → class code + confidence.
//!
//! `cargo bench -p gengdi-benches --bench landcover_inference`
//!
//! "1 thread" runs inside a one-thread rayon pool. burn-ndarray's matrix products use
//! `matrixmultiply`'s own threads, which the rayon pool does not limit: for a strict
//! single-core figure run with `MATMUL_NUM_THREADS=1 RAYON_NUM_THREADS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gengdi_models::features::{BANDS, N_BANDS};
use gengdi_models::kernel::{Isa, PixelKernel};
use gengdi_models::reference::NdarrayMlpReference;
use gengdi_models::samples::load_landcover;
use gengdi_models::{DeviceChoice, LandCoverModel, Registry, Task};
use ndarray::{Array1, Array2};

const PIXELS: usize = 1 << 18;

fn pixels() -> Array2<f32> {
    let data = vec![
        gengdi_fixtures::fixture("eurosat-ms-samples/eurosat_ms_pixels_16perimage.csv.gz"),
        gengdi_fixtures::fixture(
            "worldcereal-s2-timeseries/worldcereal_s2l2a_timeseries_long.csv.gz",
        ),
    ];
    let samples = load_landcover(&data).expect("real pixels");
    let n = samples.samples.len();
    Array2::from_shape_fn((PIXELS, BANDS.len()), |(i, b)| {
        samples.samples[(i * 7919) % n].dn[b]
    })
}

fn bench(c: &mut Criterion) {
    let registry =
        Registry::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/weights"));
    let dir = registry
        .active_dir(Task::LandCover)
        .expect("a shipped land-cover model");
    let dn = pixels();
    let valid = Array1::from_elem(PIXELS, true);
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("landcover_inference");
    group.throughput(Throughput::Elements(PIXELS as u64));
    group.sample_size(10);
    for &choice in DeviceChoice::ALL {
        let model = LandCoverModel::load(&dir, &choice.device()).unwrap();
        group.bench_function(
            BenchmarkId::new(format!("burn_{choice}"), "all_cores"),
            |b| {
                b.iter(|| {
                    model
                        .classify_pixels_burn(&BANDS, dn.view(), valid.view())
                        .unwrap()
                })
            },
        );
        group.bench_function(
            BenchmarkId::new(format!("burn_{choice}"), "1_thread"),
            |b| {
                b.iter(|| {
                    one_thread.install(|| {
                        model
                            .classify_pixels_burn(&BANDS, dn.view(), valid.view())
                            .unwrap()
                    })
                })
            },
        );
    }
    let model = LandCoverModel::load(&dir, &DeviceChoice::NdArray.device()).unwrap();
    // The kernel from pixel rows (what `classify_pixels` does: rows → band planes per chunk).
    group.bench_function(BenchmarkId::new("kernel_from_rows", "all_cores"), |b| {
        b.iter(|| {
            model
                .classify_pixels(&BANDS, dn.view(), valid.view())
                .unwrap()
        })
    });
    // The kernel alone on band planes (what `classify_image` hands it), one thread.
    let planes: Vec<Vec<f32>> = (0..N_BANDS).map(|k| dn.column(k).to_vec()).collect();
    let views: [&[f32]; N_BANDS] = std::array::from_fn(|k| planes[k].as_slice());
    let norm = &model.card().input.normalisation;
    for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
        if !isa.is_available() {
            continue;
        }
        let kernel = PixelKernel::with_isa(model.net(), &norm.means, &norm.stds, isa).unwrap();
        let mut codes = vec![0u8; PIXELS];
        let mut conf = vec![0f32; PIXELS];
        group.bench_function(BenchmarkId::new(format!("kernel_{isa}"), "1_thread"), |b| {
            b.iter(|| {
                kernel
                    .classify_planes(&views, None, &mut codes, &mut conf)
                    .unwrap()
            })
        });
    }
    let reference = NdarrayMlpReference::from_model(&model).unwrap();
    let rows: Vec<[f32; 9]> = dn
        .rows()
        .into_iter()
        .map(|r| std::array::from_fn(|b| r[b]))
        .collect();
    group.bench_function(
        BenchmarkId::new("ndarray_dot_reference", "all_cores"),
        |b| {
            b.iter(|| {
                reference
                    .predict_features(&model.features(&rows), 4096)
                    .unwrap()
            })
        },
    );
    group.bench_function(BenchmarkId::new("ndarray_dot_reference", "1_thread"), |b| {
        b.iter(|| {
            one_thread.install(|| {
                reference
                    .predict_features(&model.features(&rows), 4096)
                    .unwrap()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
