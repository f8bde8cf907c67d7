//! The library call behind `gengdi analyze` (`gengdi_inference::pipeline::run`): its request
//! is data, it can be cancelled, it reports its progress, a failed tile names the tile, and it
//! gives what the CLI gives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gengdi_inference::pipeline::{
    self, AnalysisRequest, CancelToken, FarmlandRequest, Models, NoProgress, OutputRequest,
    PipelineError, ProgressSink, Stage,
};
use gengdi_inference::rules::RulesConfig;
use gengdi_inference::InferenceError;
use gengdi_models::{DeviceChoice, Registry, Task};
use gengdi_tiling::TilingError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

const DATES: [&str; 5] = ["20150711", "20150731", "20150820", "20150830", "20150909"];

fn slovenia() -> PathBuf {
    root().join("fixtures/data/eolearn-slovenia-s2")
}

/// What `gengdi analyze` runs in the Slovenia demo (scripts/demo.sh), as a request.
fn slovenia_request(scenes: Vec<PathBuf>, out: &Path) -> AnalysisRequest {
    AnalysisRequest {
        scenes,
        baseline: Vec::new(),
        farmland: FarmlandRequest {
            path: slovenia().join("lulc_raba_polygons.gpkg"),
            layer: None,
            fields: Some("land_class=RABA_ID".into()),
        },
        admin: None,
        scene_options: Default::default(),
        rules: RulesConfig::load(&root().join("fixtures/slovenia-rules.toml")).unwrap(),
        tile_size: 64,
        crop_type: true,
        outputs: OutputRequest {
            changes: Some(out.join("changes.geojson")),
            maps: Some(out.join("maps")),
            parcel_table: Some(out.join("maps")),
        },
        checkpoint: None,
    }
}

fn slovenia_scenes() -> Vec<PathBuf> {
    DATES
        .iter()
        .map(|d| slovenia().join(format!("s2l1c_{d}_13band.tif")))
        .collect()
}

fn models() -> Models {
    let registry = Registry::new(root().join("models/weights"));
    Models::load(
        &registry.active_dir(Task::LandCover).unwrap(),
        Some(&registry.active_dir(Task::CropType).unwrap()),
        None,
        DeviceChoice::NdArray,
    )
    .unwrap()
}

/// One worker, so that tiles run one after another in tile order.
fn one_thread() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
}

/// Records what a run reports; optionally acts on it.
#[derive(Default)]
struct Recorder {
    stages: Mutex<Vec<Stage>>,
    tiles: Mutex<Vec<(usize, usize)>>,
    on_stage: Option<Box<dyn Fn(Stage) + Sync>>,
    on_tile: Option<Box<dyn Fn(usize) + Sync>>,
}

impl ProgressSink for Recorder {
    fn stage(&self, stage: Stage) {
        self.stages.lock().unwrap().push(stage);
        if let Some(f) = &self.on_stage {
            f(stage);
        }
    }
    fn tiles(&self, done: usize, total: usize) {
        self.tiles.lock().unwrap().push((done, total));
        if let Some(f) = &self.on_tile {
            f(done);
        }
    }
}

#[test]
fn a_request_round_trips_through_json_and_unknown_fields_are_refused() {
    let mut req = slovenia_request(slovenia_scenes(), Path::new("/tmp/out"));
    req.baseline = vec![slovenia().join("s2l1c_20150711_13band.tif")];
    req.admin = Some(pipeline::AdminRequest {
        path: root().join("docs/examples/slovenia-admin.geojson"),
        fields: Some("code=XZQDM".into()),
    });
    req.scene_options.scale = Some(0.0001);
    req.scene_options.date = chrono::NaiveDate::from_ymd_opt(2015, 7, 11);
    req.rules.min_patch_mu = 0.25;
    let json = serde_json::to_string(&req).unwrap();
    let back: AnalysisRequest = serde_json::from_str(&json).unwrap();
    assert_eq!(back, req);
    // What a request leaves out takes the CLI's defaults.
    let minimal: AnalysisRequest =
        serde_json::from_str(r#"{"scenes": ["a.tif"], "farmland": {"path": "f.gpkg"}}"#).unwrap();
    assert_eq!(minimal.tile_size, 512);
    assert!(minimal.crop_type);
    assert_eq!(minimal.rules, RulesConfig::default());
    assert_eq!(minimal.outputs, OutputRequest::default());
    // A misspelt field is an error, at the top and inside.
    for bad in [
        r#"{"scenes": ["a.tif"], "farmland": {"path": "f.gpkg"}, "tile": 64}"#,
        r#"{"scenes": ["a.tif"], "farmland": {"path": "f.gpkg", "layers": "x"}}"#,
        r#"{"scenes": ["a.tif"], "farmland": {"path": "f.gpkg"}, "outputs": {"map": "m"}}"#,
        r#"{"scenes": ["a.tif"], "farmland": {"path": "f.gpkg"}, "rules": {"min_patch": 1}}"#,
    ] {
        let err = serde_json::from_str::<AnalysisRequest>(bad).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{bad}: {err}");
    }
    assert_eq!(
        serde_json::to_string(&Stage::AnalysingTiles).unwrap(),
        "\"analysing_tiles\""
    );
}

#[test]
fn a_run_cancelled_before_it_starts_reads_nothing() {
    let out = tempfile::tempdir().unwrap();
    let req = slovenia_request(slovenia_scenes(), out.path());
    let cancel = CancelToken::new();
    let other = cancel.clone();
    other.cancel();
    assert!(cancel.is_cancelled(), "clones share the flag");
    let rec = Recorder::default();
    let err = pipeline::run(&req, &models(), &rec, &cancel).unwrap_err();
    assert!(matches!(err, PipelineError::Cancelled), "{err:?}");
    assert!(rec.stages.lock().unwrap().is_empty());
    assert!(!out.path().join("changes.geojson").exists());
    assert!(!out.path().join("maps").exists());
}

#[test]
fn a_run_reports_its_stages_in_order_and_every_tile() {
    let out = tempfile::tempdir().unwrap();
    let req = slovenia_request(slovenia_scenes(), out.path());
    let rec = Recorder::default();
    let output = pipeline::run(&req, &models(), &rec, &CancelToken::new()).unwrap();
    assert_eq!(
        *rec.stages.lock().unwrap(),
        vec![
            Stage::OpeningScenes,
            Stage::ReadingFarmland,
            Stage::AnalysingTiles,
            Stage::WritingOutputs,
            Stage::Done
        ]
    );
    // 100 x 101 pixels in 64 px tiles: 2 x 2 tiles, all with farmland.
    assert_eq!(output.result.tiles_total, 4);
    assert_eq!(output.result.tiles_with_farmland, 4);
    let mut tiles = rec.tiles.lock().unwrap().clone();
    tiles.sort();
    assert_eq!(tiles, vec![(1, 4), (2, 4), (3, 4), (4, 4)]);
    assert_eq!(output.result.parcels.len(), 88);
    assert_eq!((output.grid.width, output.grid.height), (100, 101));
}

#[test]
fn a_run_cancelled_after_its_first_tile_reads_no_other_tile() {
    let out = tempfile::tempdir().unwrap();
    let req = slovenia_request(slovenia_scenes(), out.path());
    let cancel = CancelToken::new();
    let stop = cancel.clone();
    let rec = Recorder {
        on_tile: Some(Box::new(move |_| stop.cancel())),
        ..Default::default()
    };
    let models = models();
    let err = one_thread()
        .install(|| pipeline::run(&req, &models, &rec, &cancel))
        .unwrap_err();
    assert!(matches!(err, PipelineError::Cancelled), "{err:?}");
    assert_eq!(*rec.tiles.lock().unwrap(), vec![(1, 4)]);
    assert_eq!(
        *rec.stages.lock().unwrap(),
        vec![
            Stage::OpeningScenes,
            Stage::ReadingFarmland,
            Stage::AnalysingTiles
        ]
    );
    assert!(!out.path().join("changes.geojson").exists());
}

#[test]
fn a_scene_truncated_during_the_run_fails_its_first_tile_by_name() {
    let out = tempfile::tempdir().unwrap();
    let scenes: Vec<PathBuf> = slovenia_scenes()
        .iter()
        .map(|p| {
            let copy = out.path().join(p.file_name().unwrap());
            std::fs::copy(p, &copy).unwrap();
            copy
        })
        .collect();
    let victim = scenes[2].clone();
    let req = slovenia_request(scenes, out.path());
    // The third date's file loses its second half once the scenes are open (one worker:
    // tiles are read in order).
    let cut = victim.clone();
    let rec = Recorder {
        on_stage: Some(Box::new(move |stage| {
            if stage == Stage::AnalysingTiles {
                let len = std::fs::metadata(&cut).unwrap().len();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&cut)
                    .unwrap()
                    .set_len(len / 2)
                    .unwrap();
            }
        })),
        ..Default::default()
    };
    let models = models();
    let err = one_thread()
        .install(|| pipeline::run(&req, &models, &rec, &CancelToken::new()))
        .unwrap_err();
    let PipelineError::Tile {
        index,
        col,
        row,
        source,
    } = &err
    else {
        panic!("expected a tile error, got {err:?}");
    };
    // The first tile's pixels lie in the first half of the file; the second tile's do not.
    assert_eq!((*index, *col, *row), (1, 1, 0));
    match source.as_ref() {
        InferenceError::Tiling(TilingError::Io { path, source }) => {
            assert_eq!(path, &victim);
            assert_eq!(source.kind(), std::io::ErrorKind::UnexpectedEof);
        }
        other => panic!("expected a short read, got {other:?}"),
    }
    assert_eq!(err.to_string(), "tile 1 (column 1, row 0)");
    assert_eq!(*rec.tiles.lock().unwrap(), vec![(1, 4)]);
}

/// The result without its timings (wall-clock figures differ between runs).
fn without_timings(mut v: serde_json::Value) -> serde_json::Value {
    v.as_object_mut().unwrap().remove("timings").unwrap();
    v
}

#[test]
fn the_library_call_gives_what_the_cli_gives() {
    let lib = tempfile::tempdir().unwrap();
    let cli = tempfile::tempdir().unwrap();
    let req = slovenia_request(slovenia_scenes(), lib.path());
    let output = pipeline::run(&req, &models(), &NoProgress, &CancelToken::new()).unwrap();
    let data = "fixtures/data/eolearn-slovenia-s2";
    let run = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{} analyze --scenes {data}/s2l1c_2015*_13band.tif --farmland {data}/lulc_raba_polygons.gpkg \
             --farmland-fields land_class=RABA_ID --config fixtures/slovenia-rules.toml --tile 64 \
             --out {} --maps {} --json",
            env!("CARGO_BIN_EXE_gengdi"),
            cli.path().join("changes.geojson").display(),
            cli.path().join("maps").display()
        ))
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        without_timings(printed),
        // Through the text, as the CLI prints it (f32 fields are written with f32 digits).
        without_timings(
            serde_json::from_str(&serde_json::to_string_pretty(&output.result).unwrap()).unwrap()
        )
    );
    for file in ["changes.geojson", "maps/parcels.csv", "maps/parcels.json"] {
        assert_eq!(
            std::fs::read(lib.path().join(file)).unwrap(),
            std::fs::read(cli.path().join(file)).unwrap(),
            "{file}"
        );
    }
    assert_eq!(output.map_paths.len(), 6, "5 dates and the season kinds");
    assert!(!output.result.patches.is_empty());
}

/// The Slovenia request in 32 px tiles (4 x 4 tiles), with no class maps (checkpoints do not
/// hold them) and with the parcel table.
fn resumable_request(out: &Path, checkpoint: Option<PathBuf>) -> AnalysisRequest {
    let mut req = slovenia_request(slovenia_scenes(), out);
    req.tile_size = 32;
    req.outputs.maps = None;
    req.outputs.parcel_table = Some(out.join("table"));
    req.checkpoint = checkpoint;
    req
}

fn tile_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("tile-") && name.ends_with(".bin")
        })
        .count()
}

/// Runs `req` on one worker, cancelled once `stop_after` tiles are done.
fn run_stopped(req: &AnalysisRequest, models: &Models, stop_after: usize) -> PipelineError {
    let cancel = CancelToken::new();
    let stop = cancel.clone();
    let rec = Recorder {
        on_tile: Some(Box::new(move |done| {
            if done >= stop_after {
                stop.cancel()
            }
        })),
        ..Default::default()
    };
    one_thread()
        .install(|| pipeline::run(req, models, &rec, &cancel))
        .unwrap_err()
}

#[test]
fn a_stopped_run_resumes_from_its_finished_tiles_and_gives_the_uninterrupted_result() {
    let models = models();
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = pipeline::run(
        &resumable_request(plain_dir.path(), None),
        &models,
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    let total = plain.result.tiles_with_farmland;
    assert!(total >= 12, "{total} tiles with farmland");
    assert!(!plain.result.patches.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("checkpoint");
    let req = resumable_request(dir.path(), Some(cp.clone()));
    let err = run_stopped(&req, &models, 5);
    assert!(matches!(err, PipelineError::Cancelled), "{err:?}");
    assert_eq!(tile_files(&cp), 5, "the five finished tiles are kept");
    assert!(!dir.path().join("changes.geojson").exists());

    // Run again: only the other tiles are analysed, and progress counts the kept ones.
    let rec = Recorder::default();
    let resumed = pipeline::run(&req, &models, &rec, &CancelToken::new()).unwrap();
    let mut tiles = rec.tiles.lock().unwrap().clone();
    tiles.sort();
    assert_eq!(
        tiles,
        (6..=total).map(|d| (d, total)).collect::<Vec<_>>(),
        "tiles 1-5 came from the checkpoint"
    );
    assert_eq!(tile_files(&cp), total);
    assert_eq!(
        without_timings(serde_json::to_value(&resumed.result).unwrap()),
        without_timings(serde_json::to_value(&plain.result).unwrap())
    );
    for file in ["changes.geojson", "table/parcels.csv", "table/parcels.json"] {
        assert_eq!(
            std::fs::read(dir.path().join(file)).unwrap(),
            std::fs::read(plain_dir.path().join(file)).unwrap(),
            "{file}"
        );
    }
    pipeline::remove_checkpoint(&req).unwrap();
    assert!(!cp.exists());
}

#[test]
fn checkpoints_of_another_request_are_discarded_and_damaged_ones_redone() {
    let models = models();
    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("checkpoint");
    let req = resumable_request(dir.path(), Some(cp.clone()));
    run_stopped(&req, &models, 3);
    assert_eq!(tile_files(&cp), 3);

    // Other rules, same checkpoint directory: every tile is analysed again.
    let mut other = req.clone();
    other.rules.min_patch_mu *= 2.0;
    run_stopped(&other, &models, 2);
    assert_eq!(tile_files(&cp), 2, "the first request's tiles were removed");

    // A tile file cut short (a full disk) is analysed again, not merged.
    let first = std::fs::read_dir(&cp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "bin"))
        .unwrap();
    let bytes = std::fs::read(&first).unwrap();
    std::fs::write(&first, &bytes[..bytes.len() / 3]).unwrap();
    let rec = Recorder::default();
    let resumed = pipeline::run(&other, &models, &rec, &CancelToken::new()).unwrap();
    let total = resumed.result.tiles_with_farmland;
    let mut tiles = rec.tiles.lock().unwrap().clone();
    tiles.sort();
    assert_eq!(
        tiles.first(),
        Some(&(2, total)),
        "one tile kept, one redone"
    );
    let plain_dir = tempfile::tempdir().unwrap();
    let mut plain = other.clone();
    plain.checkpoint = None;
    plain.outputs.changes = Some(plain_dir.path().join("changes.geojson"));
    plain.outputs.parcel_table = None;
    let plain = pipeline::run(&plain, &models, &NoProgress, &CancelToken::new()).unwrap();
    assert_eq!(
        without_timings(serde_json::to_value(&resumed.result).unwrap()),
        without_timings(serde_json::to_value(&plain.result).unwrap())
    );
}

#[test]
fn a_resumable_run_refuses_class_maps_before_reading_anything() {
    let dir = tempfile::tempdir().unwrap();
    let mut req = resumable_request(dir.path(), Some(dir.path().join("cp")));
    req.outputs.maps = Some(dir.path().join("maps"));
    let rec = Recorder::default();
    let err = pipeline::run(&req, &models(), &rec, &CancelToken::new()).unwrap_err();
    assert!(err.to_string().contains("class maps"), "{err}");
    assert!(rec.stages.lock().unwrap().is_empty());
    assert!(!dir.path().join("cp").exists());
}

#[test]
fn tiles_shared_between_workers_merge_to_the_one_process_result() {
    use gengdi_inference::checkpoint::{MemoryTiles, TileStore};
    let models = models();
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = pipeline::run(
        &resumable_request(plain_dir.path(), None),
        &models,
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let req = resumable_request(dir.path(), None);
    let cancel = CancelToken::new();
    // Each worker opens the inputs itself and analyses its own tiles.
    let planner = pipeline::prepare(&req, &models, &NoProgress, &cancel).unwrap();
    let tiles = planner.tiles(&req, &models).unwrap();
    assert_eq!(tiles.len(), plain.result.tiles_with_farmland);
    assert!(tiles.windows(2).all(|w| w[0] < w[1]));
    let workers: Vec<MemoryTiles> = (0..3).map(|_| MemoryTiles::default()).collect();
    for (w, store) in workers.iter().enumerate() {
        let mine: std::collections::BTreeSet<usize> = tiles
            .iter()
            .copied()
            .filter(|t| t % 3 == w)
            .chain([usize::MAX - 1]) // not a tile with farmland: skipped
            .collect();
        let prepared = pipeline::prepare(&req, &models, &NoProgress, &cancel).unwrap();
        let n = prepared
            .analyse_tiles(&req, &models, &mine, store, &cancel)
            .unwrap();
        assert_eq!(n, mine.len() - 1);
        assert_eq!(
            store.finished().unwrap(),
            mine.iter()
                .copied()
                .filter(|t| *t != usize::MAX - 1)
                .collect()
        );
    }
    // The merge reads every worker's tiles (here: gathered into one store).
    let all = MemoryTiles::with(workers.into_iter().flat_map(MemoryTiles::into_inner));
    let merged = planner
        .merge(&req, &models, &all, &NoProgress, &cancel)
        .unwrap();
    assert_eq!(
        without_timings(serde_json::to_value(&merged.result).unwrap()),
        without_timings(serde_json::to_value(&plain.result).unwrap())
    );
    for file in ["changes.geojson", "table/parcels.csv", "table/parcels.json"] {
        assert_eq!(
            std::fs::read(dir.path().join(file)).unwrap(),
            std::fs::read(plain_dir.path().join(file)).unwrap(),
            "{file}"
        );
    }

    // A merge missing one tile's result is an error naming it, not a partial result.
    let first = tiles[0];
    let partial = MemoryTiles::with(all.into_inner().into_iter().filter(|(t, _)| *t != first));
    let err = planner
        .merge(&req, &models, &partial, &NoProgress, &cancel)
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!("(first: {first})")),
        "{err}"
    );
}
