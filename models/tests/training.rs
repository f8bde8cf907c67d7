#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Training, saving, loading and inference on real (small) data.

mod common;

use std::collections::BTreeSet;

use chrono::Datelike;
use gengdi_models::features::BANDS;
use gengdi_models::model::SeasonSeries;
use gengdi_models::reference::NdarrayMlpReference;
use gengdi_models::samples::Observation;
use gengdi_models::samples::PSEUDO_SERIES_YEAR;
use gengdi_models::train::{croptype_split, landcover_split, series_split};
use gengdi_models::{
    evaluate_landcover, evaluate_series, fine_tune_croptype, fine_tune_landcover, train_croptype,
    train_landcover, train_season_cover, DeviceChoice, LandCoverModel, ModelError, Registry,
    SeasonCoverClass, SeriesModel, Task, TrainConfig,
};
use ndarray::{Array1, Array2, Array3};

fn tiny_config(seed: u64) -> TrainConfig {
    TrainConfig::new()
        .with_seed(seed)
        .with_max_epochs(3)
        .with_batch_size(128)
        .with_progress(false)
}

#[test]
fn real_data_loads_with_all_land_cover_classes_and_the_bare_rule_applied() {
    let lc = common::landcover();
    let mut classes = BTreeSet::new();
    for s in &lc.samples {
        classes.insert(s.class);
    }
    assert_eq!(classes.len(), 7, "every land-cover class has samples");
    // 270 EuroSAT patches x 16 pixels = 4,320 EuroSAT rows were read.
    let eurosat: u64 = lc
        .rule_counts
        .iter()
        .filter(|(k, _)| k.starts_with("eurosat"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(eurosat, 4320);
    assert!(lc.rule_counts.keys().any(|k| k.contains("relabelled bare")));
    assert_eq!(lc.fingerprint.files.len(), 3);
    let ct = common::croptype();
    assert!(ct.samples.len() > 1000);
}

#[test]
fn real_data_split_never_puts_a_group_in_two_parts() {
    let lc = common::landcover();
    let split = landcover_split(&lc, &TrainConfig::new());
    let groups = |rows: &[usize]| {
        rows.iter()
            .map(|&r| lc.samples[r].group.clone())
            .collect::<BTreeSet<_>>()
    };
    let (tr, va, te) = (
        groups(&split.train),
        groups(&split.validation),
        groups(&split.test),
    );
    assert!(tr.is_disjoint(&va) && tr.is_disjoint(&te) && va.is_disjoint(&te));
    assert!(!va.is_empty() && !te.is_empty());
    let ct = common::croptype();
    let split = croptype_split(&ct, &TrainConfig::new());
    let groups = |rows: &[usize]| {
        rows.iter()
            .map(|&r| ct.samples[r].0.group.clone())
            .collect::<BTreeSet<_>>()
    };
    assert!(groups(&split.train).is_disjoint(&groups(&split.validation)));
    assert!(groups(&split.train).is_disjoint(&groups(&split.test)));
}

/// `test_sources` holds out a whole source (a region / campaign) for both tasks: every sample
/// of it is in test, every other group keeps the part the plain split gives it, and a source
/// no sample comes from is a config error naming the sources there are.
#[test]
fn a_held_out_source_is_all_test_and_the_rest_is_split_as_before() {
    let held = "worldcereal:month_2022_FRA";
    let config = TrainConfig::new().with_test_sources(Some(vec![held.to_string()]));
    let lc = common::landcover();
    let (plain, out) = (
        landcover_split(&lc, &TrainConfig::new()),
        landcover_split(&lc, &config),
    );
    let mut n_held = 0;
    for (i, s) in lc.samples.iter().enumerate() {
        if s.source == held {
            n_held += 1;
            assert!(out.test.contains(&i), "{}", s.group);
        } else {
            assert_eq!(out.group_part[&s.group], plain.group_part[&s.group]);
        }
    }
    assert!(n_held > 1000, "{n_held} pixels of {held}");
    let ct = common::croptype();
    let (plain, out) = (
        croptype_split(&ct, &TrainConfig::new()),
        croptype_split(&ct, &config),
    );
    for (s, _) in &ct.samples {
        if s.source == held {
            assert_eq!(out.group_part[&s.group], gengdi_models::split::Part::Test);
        } else {
            assert_eq!(out.group_part[&s.group], plain.group_part[&s.group]);
        }
    }
    let bad = TrainConfig::new()
        .with_progress(false)
        .with_test_sources(Some(vec!["worldcereal:nowhere".into()]));
    match train_landcover(&bad, &lc, DeviceChoice::NdArray) {
        Err(ModelError::InvalidConfig(m)) => {
            assert!(m.contains("worldcereal:nowhere") && m.contains(held), "{m}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn seeded_training_is_reproducible_and_save_load_round_trip_predicts_identically() {
    let all = common::landcover();
    let tiny = common::tiny_landcover(&all, 4);
    let a = train_landcover(&tiny_config(7), &tiny, DeviceChoice::NdArray).unwrap();
    let b = train_landcover(&tiny_config(7), &tiny, DeviceChoice::NdArray).unwrap();
    assert_eq!(a.metrics(), b.metrics(), "same seed + data -> same metrics");
    assert_eq!(
        a.card.training.history, b.card.training.history,
        "same losses every epoch"
    );
    let c = train_landcover(&tiny_config(8), &tiny, DeviceChoice::NdArray).unwrap();
    assert_ne!(
        a.card.training.history, c.card.training.history,
        "another seed trains differently"
    );

    // Save, load, predict: identical to the in-memory evaluation.
    let dir = tempfile::tempdir().unwrap();
    let card = a.save(dir.path(), "test").unwrap();
    assert_eq!(card.id.len(), 16);
    let device = DeviceChoice::NdArray.device();
    let loaded = LandCoverModel::load(dir.path(), &device).unwrap();
    let report = evaluate_landcover(&loaded, &tiny.samples).unwrap();
    let loaded_again = LandCoverModel::load(dir.path(), &device).unwrap();
    let report_again = evaluate_landcover(&loaded_again, &tiny.samples).unwrap();
    assert_eq!(report, report_again);
    let split = landcover_split(&tiny, &card.training.config);
    let test: Vec<_> = split
        .test
        .iter()
        .map(|&r| tiny.samples[r].clone())
        .collect();
    assert_eq!(
        &evaluate_landcover(&loaded, &test).unwrap(),
        a.metrics(),
        "reloaded weights give the card's metrics"
    );
}

#[test]
fn fine_tuning_starts_from_the_base_models_weights_and_normalisation() {
    let all = common::landcover();
    let tiny = common::tiny_landcover(&all, 4);
    let base = train_landcover(&tiny_config(7), &tiny, DeviceChoice::NdArray).unwrap();
    let base_dir = tempfile::tempdir().unwrap();
    let base_card = base.save(base_dir.path(), "test").unwrap();
    let device = DeviceChoice::NdArray.device();
    let report = |trained: gengdi_models::TrainedModel| {
        let dir = tempfile::tempdir().unwrap();
        let card = trained.save(dir.path(), "test").unwrap();
        let model = LandCoverModel::load(dir.path(), &device).unwrap();
        (card, evaluate_landcover(&model, &tiny.samples).unwrap())
    };
    let (_, base_report) = report(base);

    // A step too small to move any weight, from another seed: the fine-tuned model classifies
    // every pixel as the base does, so it started from the base's weights and normalisation.
    let still = tiny_config(99).with_max_epochs(1).with_learning_rate(1e-12);
    let tuned = fine_tune_landcover(
        &still,
        &tiny,
        DeviceChoice::NdArray,
        &gengdi_models::Unobserved,
        base_dir.path(),
    )
    .unwrap();
    let (tuned_card, tuned_report) = report(tuned);
    assert_eq!(
        tuned_card.training.config.fine_tune_from.as_deref(),
        Some(base_card.id.as_str())
    );
    assert_eq!(
        tuned_card.input.normalisation,
        base_card.input.normalisation
    );
    assert_eq!(tuned_report, base_report);
    // The same step from a seeded initialisation classifies otherwise.
    let (scratch_card, scratch_report) =
        report(train_landcover(&still, &tiny, DeviceChoice::NdArray).unwrap());
    assert_eq!(scratch_card.training.config.fine_tune_from, None);
    assert_ne!(scratch_report, base_report);
    // A real fine-tuning moves the weights.
    let (moved_card, _) = report(
        fine_tune_landcover(
            &tiny_config(99),
            &tiny,
            DeviceChoice::NdArray,
            &gengdi_models::Unobserved,
            base_dir.path(),
        )
        .unwrap(),
    );
    assert_ne!(moved_card.id, base_card.id);
    // Only land-cover models of this build's features are fine-tuned.
    let e = fine_tune_landcover(
        &still,
        &tiny,
        DeviceChoice::NdArray,
        &gengdi_models::Unobserved,
        std::path::Path::new("/nonexistent/model"),
    )
    .map(|_| ())
    .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/model"), "{e}");
}

#[test]
fn crop_type_fine_tuning_starts_from_the_base_and_keeps_its_split() {
    let all = common::croptype();
    let tiny = common::tiny_croptype(&all, 12);
    let config = tiny_config(5).with_batch_size(32);
    let base = train_croptype(&config, &tiny, DeviceChoice::NdArray).unwrap();
    let base_dir = tempfile::tempdir().unwrap();
    let base_card = base.save(base_dir.path(), "test").unwrap();
    let device = DeviceChoice::NdArray.device();
    let report = |trained: gengdi_models::TrainedModel| {
        let dir = tempfile::tempdir().unwrap();
        let card = trained.save(dir.path(), "test").unwrap();
        let model = SeriesModel::load(dir.path(), &device, Task::CropType).unwrap();
        (card, evaluate_series(&model, &tiny.samples).unwrap())
    };
    let (_, base_report) = report(base);
    // A step too small to move any weight, from another seed: every season is classified as
    // the base classifies it, and the split (held-out series) is the base's, not seed 99's.
    let still = tiny_config(99)
        .with_batch_size(32)
        .with_max_epochs(1)
        .with_learning_rate(1e-12);
    let tuned = fine_tune_croptype(
        &still,
        &tiny,
        DeviceChoice::NdArray,
        &gengdi_models::Unobserved,
        base_dir.path(),
    )
    .unwrap();
    let (tuned_card, tuned_report) = report(tuned);
    assert_eq!(
        tuned_card.training.config.fine_tune_from.as_deref(),
        Some(base_card.id.as_str())
    );
    assert_eq!(
        tuned_card.input.normalisation,
        base_card.input.normalisation
    );
    assert_eq!(tuned_report, base_report);
    assert_eq!(
        tuned_card.training.split.test_groups_sha256,
        base_card.training.split.test_groups_sha256
    );
    assert_eq!(tuned_card.training.config.split_seed, Some(5));
    // From scratch, seed 99 draws another split and other weights.
    let (scratch_card, scratch_report) =
        report(train_croptype(&still, &tiny, DeviceChoice::NdArray).unwrap());
    assert_ne!(
        scratch_card.training.split.test_groups_sha256,
        base_card.training.split.test_groups_sha256
    );
    assert_ne!(scratch_report, base_report);
    // A land-cover model is no crop-type base.
    let lc = train_landcover(
        &tiny_config(7),
        &common::tiny_landcover(&common::landcover(), 2),
        DeviceChoice::NdArray,
    )
    .unwrap();
    let lc_dir = tempfile::tempdir().unwrap();
    lc.save(lc_dir.path(), "test").unwrap();
    let e = fine_tune_croptype(
        &still,
        &tiny,
        DeviceChoice::NdArray,
        &gengdi_models::Unobserved,
        lc_dir.path(),
    )
    .map(|_| ())
    .unwrap_err();
    assert!(e.to_string().contains("landcover"), "{e}");
}

#[test]
fn band_mismatch_is_a_typed_error_and_band_order_does_not_matter() {
    let all = common::landcover();
    let tiny = common::tiny_landcover(&all, 2);
    let trained = train_landcover(
        &tiny_config(1).with_max_epochs(1),
        &tiny,
        DeviceChoice::NdArray,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    trained.save(dir.path(), "test").unwrap();
    let model = LandCoverModel::load(dir.path(), &DeviceChoice::NdArray.device()).unwrap();
    let dn = Array2::from_shape_fn((5, 4), |(i, j)| 500.0 + (i * 4 + j) as f32 * 100.0);
    let valid = Array1::from_elem(5, true);
    let err = model
        .classify_pixels(&["B02", "B03", "B04", "B08"], dn.view(), valid.view())
        .unwrap_err();
    match err {
        ModelError::BandMismatch { missing, .. } => {
            assert_eq!(missing, vec!["B05", "B06", "B07", "B11", "B12"])
        }
        e => panic!("expected BandMismatch, got {e}"),
    }
    // The same pixels with bands reversed (plus an extra band) classify identically.
    let pixels: Vec<[f32; 9]> = tiny.samples.iter().take(50).map(|s| s.dn).collect();
    let fwd = Array2::from_shape_fn((50, 9), |(i, j)| pixels[i][j]);
    let mut names_rev: Vec<&str> = BANDS.iter().rev().copied().collect();
    names_rev.push("B8A");
    let rev = Array2::from_shape_fn(
        (50, 10),
        |(i, j)| if j < 9 { pixels[i][8 - j] } else { 1.0 },
    );
    let mut valid = Array1::from_elem(50, true);
    valid[3] = false;
    let a = model
        .classify_pixels(&BANDS, fwd.view(), valid.view())
        .unwrap();
    let b = model
        .classify_pixels(&names_rev, rev.view(), valid.view())
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.codes[3], 0, "invalid pixel is nodata");
    assert_eq!(a.confidence[3], 0.0);
    assert!(a
        .codes
        .iter()
        .enumerate()
        .all(|(i, &c)| i == 3 || (1..=7).contains(&c)));
    // Image layout gives the same codes as the pixel layout.
    let img = Array3::from_shape_fn((9, 5, 10), |(b, r, c)| pixels[r * 10 + c][b]);
    let map = model
        .classify_image(
            &BANDS,
            img.view(),
            valid.clone().into_shape_with_order((5, 10)).unwrap().view(),
        )
        .unwrap();
    assert_eq!(map.codes.into_shape_with_order(50).unwrap(), a.codes);
}

#[test]
fn ndarray_reference_forward_equals_burn_forward() {
    let all = common::landcover();
    let tiny = common::tiny_landcover(&all, 2);
    let trained = train_landcover(
        &tiny_config(3).with_max_epochs(2),
        &tiny,
        DeviceChoice::NdArray,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    trained.save(dir.path(), "test").unwrap();
    for choice in DeviceChoice::ALL {
        let model = LandCoverModel::load(dir.path(), &choice.device()).unwrap();
        let reference = NdarrayMlpReference::from_model(&model).unwrap();
        let rows: Vec<[f32; 9]> = all.samples.iter().step_by(7).map(|s| s.dn).collect();
        let features = model.features(&rows);
        let (codes, conf) = model.predict_features(&features).unwrap();
        let (rcodes, rconf) = reference.predict_features(&features, 4096).unwrap();
        let n = rows.len();
        let x = ndarray::ArrayView2::from_shape((n, 14), &features).unwrap();
        let logits = reference.logits(x);
        assert_eq!(logits.dim(), (n, 7));
        let mut max_diff = 0f32;
        for (a, b) in conf.iter().zip(&rconf) {
            max_diff = max_diff.max((a - b).abs());
        }
        assert!(
            max_diff < 1e-4,
            "{choice}: confidence differs by {max_diff}"
        );
        let disagreements = codes.iter().zip(&rcodes).filter(|(a, b)| a != b).count();
        // Only exact ties could flip the argmax; allow none beyond float-noise ties.
        assert!(
            disagreements <= n / 1000,
            "{choice}: {disagreements} class disagreements"
        );
    }
}

#[test]
fn crop_type_training_round_trips_and_accepts_any_number_of_dates() {
    let all = common::croptype();
    let tiny = common::tiny_croptype(&all, 12);
    let config = tiny_config(5).with_batch_size(32);
    let a = train_croptype(&config, &tiny, DeviceChoice::NdArray).unwrap();
    let b = train_croptype(&config, &tiny, DeviceChoice::NdArray).unwrap();
    assert_eq!(a.metrics(), b.metrics());
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(dir.path());
    let card = a.save_to_registry(registry.root(), "test").unwrap();
    assert!(matches!(
        registry.active_dir(Task::CropType),
        Err(ModelError::NoActiveModel { .. })
    ));
    registry.activate(&card.id[..6]).unwrap();
    let model = SeriesModel::load(
        &registry.active_dir(Task::CropType).unwrap(),
        &DeviceChoice::Flex.device(),
        Task::CropType,
    )
    .unwrap();
    let (s, _) = &tiny.samples[0];
    let obs = |n: usize| {
        s.observations
            .iter()
            .filter(|o| o.date.year() == s.season_year)
            .take(n)
            .cloned()
            .collect::<Vec<Observation>>()
    };
    let series = vec![
        SeasonSeries {
            season_year: s.season_year,
            observations: obs(1),
        },
        SeasonSeries {
            season_year: s.season_year,
            observations: obs(usize::MAX),
        },
        SeasonSeries {
            season_year: s.season_year + 10,
            observations: obs(usize::MAX),
        }, // outside window
    ];
    let c = model.classify_series(&series).unwrap();
    assert!((1..=5).contains(&c.codes[0]) && (1..=5).contains(&c.codes[1]));
    assert_eq!((c.codes[2], c.confidence[2]), (0, 0.0));
    // Stack layout equals series layout.
    let dates: Vec<_> = s.observations.iter().map(|o| o.date).collect();
    let stack = Array3::from_shape_fn((1, dates.len(), 9), |(_, d, b)| s.observations[d].dn[b]);
    let valid = Array2::from_elem((1, dates.len()), true);
    let st = model
        .classify_stack(&BANDS, &dates, s.season_year, stack.view(), valid.view())
        .unwrap();
    assert_eq!(st.codes[0], c.codes[1]);
    assert!((st.confidence[0] - c.confidence[1]).abs() < 1e-6);
}

#[test]
fn season_cover_samples_are_real_series_plus_eurosat_pseudo_series_split_like_land_cover() {
    let sc = common::season_cover();
    let count = |c: SeasonCoverClass| sc.samples.iter().filter(|(_, k)| *k == c).count();
    // ~170 WorldCereal permanent crops and ~44 tree samples (some without a valid date).
    assert!(count(SeasonCoverClass::Perennial) >= 190);
    assert!(count(SeasonCoverClass::AnnualCrop) >= 700);
    assert!(count(SeasonCoverClass::Fallow) >= 100);
    for (s, class) in &sc.samples {
        if s.source == "eurosat:l1c" {
            // Pseudo-series: water and built only, one pixel per month from January.
            assert!(
                matches!(class, SeasonCoverClass::Water | SeasonCoverClass::Built),
                "{class}"
            );
            assert!((3..=12).contains(&s.observations.len()), "{}", s.group);
            for (m, o) in s.observations.iter().enumerate() {
                assert_eq!(
                    (o.date.year(), o.date.month0() as usize),
                    (PSEUDO_SERIES_YEAR, m)
                );
            }
        } else {
            assert!(s.source.starts_with("worldcereal:"), "{}", s.source);
        }
    }
    // 47 EuroSAT water and 71 built patches pass, plus 2 and 2 WorldCereal samples.
    assert_eq!(count(SeasonCoverClass::Water), 49);
    assert_eq!(count(SeasonCoverClass::Built), 73);
    // The default split holds out a group in the season-cover model exactly when the
    // land-cover model holds it out: the generated test scenes render neither's training data.
    let config = TrainConfig::new();
    let lc = common::landcover();
    let lc_split = landcover_split(&lc, &config);
    let sc_split = series_split(&sc, &config);
    let lc_test: BTreeSet<&str> = lc_split
        .test
        .iter()
        .map(|&r| lc.samples[r].group.as_str())
        .collect();
    let lc_all: BTreeSet<&str> = lc.samples.iter().map(|s| s.group.as_str()).collect();
    let mut shared = 0;
    for (r, (s, _)) in sc.samples.iter().enumerate() {
        if lc_all.contains(s.group.as_str()) {
            shared += 1;
            assert_eq!(
                sc_split.test.contains(&r),
                lc_test.contains(s.group.as_str()),
                "{}",
                s.group
            );
        }
    }
    assert!(shared > 1000, "{shared} shared groups");
}

#[test]
fn season_cover_training_round_trips_with_the_slot_head() {
    let all = common::season_cover();
    let tiny = common::tiny_croptype(&all, 10);
    let mut config = tiny_config(3).with_batch_size(32);
    config.slot_head = Some(true);
    let trained = train_season_cover(&config, &tiny, DeviceChoice::NdArray).unwrap();
    assert_eq!(trained.card.task, Task::SeasonCover);
    assert_eq!(
        trained.card.class_names(),
        [
            "annual_crop",
            "perennial",
            "grassland",
            "fallow",
            "water",
            "built"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let card = trained.save(dir.path(), "test").unwrap();
    let device = DeviceChoice::NdArray.device();
    assert!(matches!(
        SeriesModel::load(dir.path(), &device, Task::CropType),
        Err(ModelError::WrongTask { .. })
    ));
    let model = SeriesModel::load(dir.path(), &device, Task::SeasonCover).unwrap();
    // The loaded weights give the card's held-out metrics again.
    let split = series_split(&tiny, &card.training.config);
    let test: Vec<_> = split
        .test
        .iter()
        .map(|&r| tiny.samples[r].clone())
        .collect();
    let report = evaluate_series(&model, &test).unwrap();
    assert_eq!(report.overall.confusion, card.metrics.overall.confusion);
    assert!(report.derived.contains_key("perennial_vs_rest"));
}

#[test]
fn registry_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(dir.path());
    assert!(registry.list().unwrap().is_empty());
    assert!(matches!(
        registry.show("abc"),
        Err(ModelError::ModelNotFound { .. })
    ));
    assert!(matches!(
        registry.activate("abc"),
        Err(ModelError::ModelNotFound { .. })
    ));
    assert!(matches!(
        registry.active_dir(Task::LandCover),
        Err(ModelError::NoActiveModel { .. })
    ));
    // Loading a land-cover folder as crop type is a typed error too.
    let all = common::landcover();
    let tiny = common::tiny_landcover(&all, 2);
    let trained = train_landcover(
        &tiny_config(1).with_max_epochs(1),
        &tiny,
        DeviceChoice::NdArray,
    )
    .unwrap();
    let card = trained.save_to_registry(dir.path(), "test").unwrap();
    let listed = registry.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].active);
    let mdir = registry.model_dir(&card.id).unwrap();
    assert!(matches!(
        SeriesModel::load(&mdir, &DeviceChoice::NdArray.device(), Task::CropType),
        Err(ModelError::WrongTask { .. })
    ));
    // A corrupted weights file is caught by the card's sha256.
    std::fs::write(mdir.join("weights.bpk"), b"not weights").unwrap();
    assert!(matches!(
        LandCoverModel::load(&mdir, &DeviceChoice::NdArray.device()),
        Err(ModelError::Weights { .. })
    ));
}

/// Records the epochs it is told of; asks to stop once `stop_after` epochs have ended.
struct Recorder {
    seen: std::sync::Mutex<Vec<(gengdi_models::training_config::EpochLog, usize)>>,
    stop_after: usize,
}

impl gengdi_models::TrainObserver for Recorder {
    fn epoch(&self, log: &gengdi_models::training_config::EpochLog, max_epochs: usize) {
        self.seen.lock().unwrap().push((log.clone(), max_epochs));
    }
    fn stop(&self) -> bool {
        self.seen.lock().unwrap().len() >= self.stop_after
    }
}

#[test]
fn an_observer_sees_every_epoch_as_it_ends_and_can_stop_the_training() {
    let all = common::landcover();
    let tiny = common::tiny_landcover(&all, 4);
    let config = tiny_config(5).with_patience(100);
    let watch = Recorder {
        seen: Default::default(),
        stop_after: usize::MAX,
    };
    let trained =
        gengdi_models::train_landcover_observed(&config, &tiny, DeviceChoice::NdArray, &watch)
            .unwrap();
    let seen = watch.seen.into_inner().unwrap();
    // Exactly the card's history, in order, each with the epoch limit.
    assert_eq!(
        seen.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
        trained.card.training.history
    );
    assert_eq!(
        seen.iter().map(|(l, m)| (l.epoch, *m)).collect::<Vec<_>>(),
        vec![(1, 3), (2, 3), (3, 3)]
    );
    // Watching does not change the training: the unobserved run is the same.
    let plain = train_landcover(&config, &tiny, DeviceChoice::NdArray).unwrap();
    assert_eq!(plain.card.training.history, trained.card.training.history);

    // Asked to stop after one epoch: the second never starts.
    let stopper = Recorder {
        seen: Default::default(),
        stop_after: 1,
    };
    let err =
        gengdi_models::train_landcover_observed(&config, &tiny, DeviceChoice::NdArray, &stopper)
            .unwrap_err();
    assert!(matches!(err, ModelError::Cancelled), "{err:?}");
    assert_eq!(stopper.seen.into_inner().unwrap().len(), 1);
}
