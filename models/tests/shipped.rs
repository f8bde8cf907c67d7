#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The shipped models in `models/weights` load, match their cards, and reach the held-out
//! accuracy stated in `models/README.md` (evaluation only, no training).

mod common;

use std::path::PathBuf;

use gengdi_models::{
    evaluate_croptype, evaluate_landcover, held_out_croptype, held_out_landcover, DeviceChoice,
    LandCoverModel, Registry, SeriesModel, Task,
};

/// Stated in `models/README.md`: the shipped land-cover model's held-out overall accuracy is
/// 0.663 (target 0.85: not met) and its weakest class F1 (orchard) is 0.286 (target 0.6: not met).
const LANDCOVER_MIN_OA: f64 = 0.66;
const LANDCOVER_MIN_CLASS_F1: f64 = 0.28;
/// Stated: grain-vs-non-grain grain F1 0.854 (target 0.8: met), 5-class OA 0.656.
const CROPTYPE_MIN_GRAIN_F1: f64 = 0.85;
const CROPTYPE_MIN_OA: f64 = 0.65;

fn registry() -> Registry {
    Registry::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights"))
}

#[test]
fn shipped_landcover_model_reproduces_its_card_and_meets_the_stated_accuracy() {
    let dir = registry().active_dir(Task::LandCover).unwrap();
    let model = LandCoverModel::load(&dir, &DeviceChoice::NdArray.device()).unwrap();
    let card = model.card().clone();
    let samples = common::landcover();
    assert_eq!(
        samples.fingerprint, card.training.data,
        "the card names the shipped tables"
    );
    let test = held_out_landcover(&card, &samples).unwrap();
    let report = evaluate_landcover(&model, &test).unwrap();
    assert_eq!(report.overall.confusion, card.metrics.overall.confusion);
    // Confusion matrices are exact; derived floats may differ in the last digit after JSON.
    for (source, m) in &card.metrics.per_source {
        assert_eq!(report.per_source[source].confusion, m.confusion, "{source}");
    }
    assert!(
        (report.overall.overall_accuracy - card.metrics.overall.overall_accuracy).abs() < 1e-12
    );
    let m = &report.overall;
    eprintln!("{report}");
    assert!(
        m.overall_accuracy >= LANDCOVER_MIN_OA,
        "OA {}",
        m.overall_accuracy
    );
    for c in &m.per_class {
        assert!(c.f1 >= LANDCOVER_MIN_CLASS_F1, "{} F1 {}", c.class, c.f1);
    }
}

#[test]
fn shipped_croptype_model_reproduces_its_card_and_meets_the_stated_accuracy() {
    let dir = registry().active_dir(Task::CropType).unwrap();
    let model = SeriesModel::load(&dir, &DeviceChoice::NdArray.device(), Task::CropType).unwrap();
    let card = model.card().clone();
    let samples = common::croptype();
    assert_eq!(samples.fingerprint, card.training.data);
    let test = held_out_croptype(&card, &samples).unwrap();
    let report = evaluate_croptype(&model, &test).unwrap();
    assert_eq!(report.overall.confusion, card.metrics.overall.confusion);
    eprintln!("{report}");
    let binary = &report.derived["grain_vs_non_grain"];
    let grain_f1 = binary.class("grain").map(|c| c.f1).unwrap_or(0.0);
    assert!(grain_f1 >= CROPTYPE_MIN_GRAIN_F1, "grain F1 {grain_f1}");
    assert!(report.overall.overall_accuracy >= CROPTYPE_MIN_OA);
}

#[test]
fn shipped_models_give_the_same_answer_on_flex_and_ndarray() {
    let dir = registry().active_dir(Task::LandCover).unwrap();
    let a = LandCoverModel::load(&dir, &DeviceChoice::NdArray.device()).unwrap();
    let b = LandCoverModel::load(&dir, &DeviceChoice::Flex.device()).unwrap();
    let samples = common::landcover();
    let rows: Vec<[f32; 9]> = samples.samples.iter().step_by(5).map(|s| s.dn).collect();
    let f = a.features(&rows);
    let (ca, pa) = a.predict_features(&f).unwrap();
    let (cb, pb) = b.predict_features(&f).unwrap();
    let same = ca.iter().zip(&cb).filter(|(x, y)| x == y).count();
    assert!(same as f64 >= 0.999 * ca.len() as f64);
    assert!(pa.iter().zip(&pb).all(|(x, y)| (x - y).abs() < 1e-4));
}
