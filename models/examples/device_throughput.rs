//! Burn's throughput on one device against the CPU paths of the same machine: land-cover
//! inference (M pixels/s) at several forward batch sizes, and land-cover and crop-type
//! training (seconds per epoch), with the device's class codes checked against the CPU's.
//!
//! Built and run on a GPU machine (`scripts/gpu-throughput.sh`; docs/benchmarks.md, "GPU"):
//!
//! ```sh
//! cargo build --release -p gengdi-models --features vulkan --example device_throughput
//! target/release/examples/device_throughput --device vulkan --data fixtures/data \
//!     --weights models/weights --pixels 4194304 --rounds 5 --epochs 5
//! ```
//!
//! `--device ndarray` or `flex` measures Burn's CPU backends with the same command. Every
//! figure is the median of `--rounds` timed runs after one untimed warm-up run (which, on a
//! GPU, compiles and autotunes the kernels).
//!
//! - `kernel`: the fused CPU pixel kernel (what `gengdi classify` and `analyze` run) on all
//!   cores: the figure to beat.
//! - `burn forward`: [`LandCoverModel::predict_features`] on normalised features already in
//!   memory (host → device copy, forward, softmax, argmax, copy back), per batch size.
//! - `burn classify`: [`LandCoverModel::classify_pixels_burn`] from DN rows, the features
//!   computed on the CPU, at the default batch size.
//! - training: `train_landcover` / `train_croptype` with the shipped configs capped at
//!   `--epochs` epochs (no early stop), wall time divided by the epochs run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use gengdi_models::features::BANDS;
use gengdi_models::model::DEFAULT_INFERENCE_BATCH;
use gengdi_models::samples::{load_croptype, load_landcover};
use gengdi_models::train::load_train_config;
use gengdi_models::{
    train_croptype, train_landcover, DeviceChoice, InferencePath, LandCoverModel, Registry, Task,
    TrainConfig, TrainedModel,
};
use ndarray::{Array1, Array2};

struct Args {
    device: DeviceChoice,
    data: PathBuf,
    weights: PathBuf,
    pixels: usize,
    rounds: usize,
    epochs: usize,
    batches: Vec<usize>,
}

fn args() -> Result<Args, String> {
    fn parse<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        v.trim().parse().map_err(|e| format!("{flag} {v:?}: {e}"))
    }
    let mut a = Args {
        device: DeviceChoice::default(),
        data: PathBuf::from("fixtures/data"),
        weights: PathBuf::from("models/weights"),
        pixels: 1 << 22,
        rounds: 5,
        epochs: 5,
        batches: vec![DEFAULT_INFERENCE_BATCH, 1 << 16, 1 << 18, 1 << 20],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--device" => a.device = parse(&flag, &v)?,
            "--data" => a.data = v.into(),
            "--weights" => a.weights = v.into(),
            "--pixels" => a.pixels = parse::<usize>(&flag, &v)?.max(1),
            "--rounds" => a.rounds = parse::<usize>(&flag, &v)?.max(1),
            "--epochs" => a.epochs = parse(&flag, &v)?,
            "--batches" => {
                a.batches = v
                    .split(',')
                    .map(|b| parse(&flag, b))
                    .collect::<Result<_, _>>()?
            }
            other => {
                return Err(format!(
                    "unknown argument {other} (--device, --data, --weights, --pixels, --rounds, \
                     --epochs, --batches)"
                ))
            }
        }
    }
    Ok(a)
}

/// Median seconds of `rounds` runs of `f` after one untimed run.
fn time<T>(rounds: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut last = f();
    let mut secs = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        last = f();
        secs.push(t.elapsed().as_secs_f64());
    }
    secs.sort_by(f64::total_cmp);
    (secs[secs.len() / 2], last)
}

/// How many class codes two runs share, position by position.
fn agreeing<'a>(a: impl IntoIterator<Item = &'a u8>, b: impl IntoIterator<Item = &'a u8>) -> usize {
    a.into_iter().zip(b).filter(|(x, y)| x == y).count()
}

fn main() -> std::process::ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("device_throughput: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    println!(
        "device {} | {} pixels | {} rounds | {} rayon threads",
        a.device,
        a.pixels,
        a.rounds,
        rayon::current_num_threads()
    );
    let samples = load_landcover(std::slice::from_ref(&a.data)).expect("land-cover tables");
    let n = samples.samples.len();
    let dn = Array2::from_shape_fn((a.pixels, BANDS.len()), |(i, b)| {
        samples.samples[(i * 7919) % n].dn[b]
    });
    let valid = Array1::from_elem(a.pixels, true);
    let dir = Registry::new(a.weights.clone())
        .active_dir(Task::LandCover)
        .expect("an active land-cover model");
    let mpx = |secs: f64| a.pixels as f64 / secs / 1e6;

    // The CPU reference: the fused kernel (its codes equal Burn NdArray's, models/tests/kernel.rs).
    let cpu = LandCoverModel::load(&dir, &DeviceChoice::NdArray.device()).unwrap();
    let (secs, reference) = time(a.rounds, || {
        cpu.classify_pixels(&BANDS, dn.view(), valid.view())
            .unwrap()
    });
    println!("kernel (CPU, all cores)          {:8.2} M px/s", mpx(secs));

    let model = LandCoverModel::load(&dir, &a.device.device())
        .unwrap()
        .with_path(InferencePath::Burn);
    let rows: Vec<[f32; 9]> = dn
        .rows()
        .into_iter()
        .map(|r| std::array::from_fn(|b| r[b]))
        .collect();
    let features = model.features(&rows);
    for &batch in &a.batches {
        let m = LandCoverModel::load(&dir, &a.device.device())
            .unwrap()
            .with_batch_size(batch);
        let t = Instant::now();
        let first = m.predict_features(&features).unwrap();
        let first_secs = t.elapsed().as_secs_f64();
        let (secs, (codes, conf)) = time(a.rounds, || m.predict_features(&features).unwrap());
        let same = agreeing(&codes, &reference.codes);
        let max_diff = conf
            .iter()
            .zip(reference.confidence.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert_eq!(first.0, codes, "two runs on {} differ", a.device);
        println!(
            "burn forward, batch {batch:>8}       {:8.2} M px/s  (first run {first_secs:.2} s; \
             codes equal to the kernel's: {same}/{}, max |Δconfidence| {max_diff:.2e})",
            mpx(secs),
            a.pixels
        );
    }
    let (secs, c) = time(a.rounds, || {
        model
            .classify_pixels(&BANDS, dn.view(), valid.view())
            .unwrap()
    });
    let same = agreeing(&c.codes, &reference.codes);
    println!(
        "burn classify (DN rows), batch {DEFAULT_INFERENCE_BATCH}  {:8.2} M px/s  (codes equal: {same}/{})",
        mpx(secs),
        a.pixels
    );

    if a.epochs == 0 {
        return std::process::ExitCode::SUCCESS;
    }
    let configs = a.weights.join("../configs");
    // Train `task` from its shipped config capped at --epochs and print the time per epoch.
    let timed = |task: &str, samples: &str, train: &dyn Fn(&TrainConfig) -> TrainedModel| {
        let mut config = load_train_config(&configs.join(format!("{task}.json"))).unwrap();
        config.max_epochs = a.epochs;
        config.patience = a.epochs + 1;
        config.progress = false;
        let t = Instant::now();
        let epochs = train(&config).card.training.epochs_run;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "train {task}: {epochs} epochs in {secs:.1} s, {:.2} s/epoch (training split of {samples})",
            secs / epochs as f64
        );
    };
    timed("landcover", &format!("{n} pixels"), &|c| {
        train_landcover(c, &samples, a.device).unwrap()
    });
    let series = load_croptype(std::slice::from_ref(&a.data)).expect("crop-type tables");
    timed(
        "croptype",
        &format!("{} series", series.samples.len()),
        &|c| train_croptype(c, &series, a.device).unwrap(),
    );
    std::process::ExitCode::SUCCESS
}
