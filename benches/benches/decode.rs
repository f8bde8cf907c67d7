//! Decode throughput: whole-image reads of 2048² × 6-band u16 GeoTIFFs (256² tiles,
//! DEFLATE, ZSTD, DEFLATE + horizontal predictor) made of real Sentinel-2 pixels.
//!
//! Readers: the fast reader on one thread (`read_window`) and on the rayon pool
//! (`read_window_par`); GDAL single-threaded and with its own multi-threaded decoding
//! (`NUM_THREADS=ALL_CPUS`), both as one dataset-level RasterIO of all bands; and the raw
//! decompression of the same chunk bytes on one thread (`decompress_only`), the ceiling.
//! Throughput is bytes of decoded pixels. Every reader opens the file inside the timed
//! loop, so GDAL's block cache never serves a repeat read (the OS page cache serves the
//! compressed bytes to all readers alike).
//!
//! The test files are generated on first run (see `gengdi_benches::decode_test_files`)
//! into `$CARGO_TARGET_DIR/bench-data/` (else `target/bench-data/`).
//!
//! Full run: `cargo bench -p gengdi-benches --bench decode`; quick run:
//! `cargo bench -p gengdi-benches --bench decode -- --warm-up-time 0.5 --measurement-time 1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use gengdi_benches::{decode_test_files, default_cache_dir, gdal_open, gdal_read_all_u16};
use gengdi_tiling::tiff::TiffReader;
use gengdi_tiling::PixelWindow;
use std::hint::black_box;
use std::time::Duration;

fn decode(c: &mut Criterion) {
    let files = decode_test_files(&default_cache_dir()).expect("generating the test files");
    let threads = rayon::current_num_threads();
    for f in &files {
        let mut g = c.benchmark_group(format!("decode/{}", f.label));
        g.throughput(Throughput::Bytes(f.decoded_bytes));
        g.sampling_mode(SamplingMode::Flat);
        let full = PixelWindow::full(f.width, f.height);
        let bands: Vec<usize> = (0..f.bands).collect();
        eprintln!(
            "{}: {} x {} x {} u16, {:.1} MB decoded, {:.1} MB on disk (ratio {:.2})",
            f.path.display(),
            f.width,
            f.height,
            f.bands,
            f.decoded_bytes as f64 / 1e6,
            f.file_bytes as f64 / 1e6,
            f.decoded_bytes as f64 / f.file_bytes as f64
        );

        // The readers must agree before they are timed.
        let fast = TiffReader::open(&f.path).unwrap();
        let mine = fast.read_window_par::<u16>(&full, &bands).unwrap();
        let theirs = gdal_read_all_u16(&gdal_open(&f.path, None).unwrap()).unwrap();
        assert!(
            mine.as_slice().unwrap() == theirs.as_slice(),
            "{}: the fast reader and GDAL disagree",
            f.label
        );
        drop((mine, theirs));

        g.bench_function(BenchmarkId::new("fast_read_window", "1_thread"), |b| {
            b.iter(|| {
                let r = TiffReader::open(&f.path).unwrap();
                black_box(r.read_window::<u16>(&full, &bands).unwrap())
            })
        });
        g.bench_function(
            BenchmarkId::new("fast_read_window_par", format!("{threads}_threads")),
            |b| {
                b.iter(|| {
                    let r = TiffReader::open(&f.path).unwrap();
                    black_box(r.read_window_par::<u16>(&full, &bands).unwrap())
                })
            },
        );
        g.bench_function(BenchmarkId::new("gdal_rasterio", "1_thread"), |b| {
            b.iter(|| {
                let ds = gdal_open(&f.path, None).unwrap();
                black_box(gdal_read_all_u16(&ds).unwrap())
            })
        });
        g.bench_function(
            BenchmarkId::new("gdal_rasterio", "NUM_THREADS=ALL_CPUS"),
            |b| {
                b.iter(|| {
                    let ds = gdal_open(&f.path, Some("ALL_CPUS")).unwrap();
                    black_box(gdal_read_all_u16(&ds).unwrap())
                })
            },
        );
        g.bench_function(BenchmarkId::new("decompress_only", "1_thread"), |b| {
            b.iter(|| {
                let r = TiffReader::open(&f.path).unwrap();
                let l = r.layout();
                let (across, _) = l.chunks_across_down();
                let mut total = 0usize;
                for i in 0..l.chunk_count() {
                    let cy = (i % (l.chunk_count() / l.planes())) / across;
                    total += r.decompress_only(i, cy).unwrap();
                }
                assert_eq!(total as u64, f.decoded_bytes);
                black_box(total)
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = decode
}
criterion_main!(benches);
