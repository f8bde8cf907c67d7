//! Classification metrics: confusion matrix, overall accuracy, Cohen's kappa, per-class
//! precision / recall / F1; printable and JSON-serialisable; per data source.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Precision, recall and F1 of one class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class name.
    pub class: String,
    /// True samples of this class.
    pub support: u64,
    /// Samples predicted as this class.
    pub predicted: u64,
    /// TP / predicted (0 when nothing is predicted).
    pub precision: f64,
    /// TP / support (0 when support is 0).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
}

/// Metrics of one set of predictions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Class names (confusion matrix order).
    pub classes: Vec<String>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    /// Number of samples.
    pub n: u64,
    /// Correct / n.
    pub overall_accuracy: f64,
    /// Cohen's kappa.
    pub kappa: f64,
    /// Mean F1 over classes with support > 0.
    pub macro_f1: f64,
    /// Per class.
    pub per_class: Vec<ClassMetrics>,
}

impl Metrics {
    /// Metrics of `(true, predicted)` class-index pairs; indices ≥ `classes.len()` are ignored.
    pub fn from_pairs(classes: &[&str], pairs: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let k = classes.len();
        let mut confusion = vec![vec![0u64; k]; k];
        for (t, p) in pairs {
            if t < k && p < k {
                confusion[t][p] += 1;
            }
        }
        Self::from_confusion(classes.iter().map(|s| s.to_string()).collect(), confusion)
    }

    /// Metrics of a confusion matrix `confusion[true][predicted]`.
    pub fn from_confusion(classes: Vec<String>, confusion: Vec<Vec<u64>>) -> Self {
        let k = classes.len();
        let n: u64 = confusion.iter().flatten().sum();
        let diag: u64 = (0..k).map(|i| confusion[i][i]).sum();
        let row: Vec<u64> = confusion.iter().map(|r| r.iter().sum()).collect();
        let col: Vec<u64> = (0..k)
            .map(|j| confusion.iter().map(|r| r[j]).sum())
            .collect();
        let nf = n as f64;
        let po = if n > 0 { diag as f64 / nf } else { 0.0 };
        let pe = if n > 0 {
            (0..k).map(|i| row[i] as f64 * col[i] as f64).sum::<f64>() / (nf * nf)
        } else {
            0.0
        };
        let kappa = if (1.0 - pe).abs() > 1e-12 {
            (po - pe) / (1.0 - pe)
        } else {
            0.0
        };
        let per_class: Vec<ClassMetrics> = (0..k)
            .map(|i| {
                let tp = confusion[i][i] as f64;
                let precision = if col[i] > 0 { tp / col[i] as f64 } else { 0.0 };
                let recall = if row[i] > 0 { tp / row[i] as f64 } else { 0.0 };
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassMetrics {
                    class: classes[i].clone(),
                    support: row[i],
                    predicted: col[i],
                    precision,
                    recall,
                    f1,
                }
            })
            .collect();
        let supported: Vec<f64> = per_class
            .iter()
            .filter(|c| c.support > 0)
            .map(|c| c.f1)
            .collect();
        let macro_f1 = if supported.is_empty() {
            0.0
        } else {
            supported.iter().sum::<f64>() / supported.len() as f64
        };
        Self {
            classes,
            confusion,
            n,
            overall_accuracy: po,
            kappa,
            macro_f1,
            per_class,
        }
    }

    /// Merge classes: `mapping[i]` is the new class index of old class `i`.
    pub fn collapse(&self, new_classes: &[&str], mapping: &[usize]) -> Self {
        let k = new_classes.len();
        let mut confusion = vec![vec![0u64; k]; k];
        for (i, row) in self.confusion.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                if let (Some(&a), Some(&b)) = (mapping.get(i), mapping.get(j)) {
                    if a < k && b < k {
                        confusion[a][b] += v;
                    }
                }
            }
        }
        Self::from_confusion(
            new_classes.iter().map(|s| s.to_string()).collect(),
            confusion,
        )
    }

    /// The metrics of one class by name.
    pub fn class(&self, name: &str) -> Option<&ClassMetrics> {
        self.per_class.iter().find(|c| c.class == name)
    }

    /// The printable table (per class, then the confusion matrix).
    pub fn table(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "n = {}   overall accuracy = {:.3}   kappa = {:.3}   macro F1 = {:.3}",
            self.n, self.overall_accuracy, self.kappa, self.macro_f1
        )?;
        writeln!(
            f,
            "{:<16} {:>8} {:>9} {:>9} {:>7}",
            "class", "support", "precision", "recall", "F1"
        )?;
        for c in &self.per_class {
            writeln!(
                f,
                "{:<16} {:>8} {:>9.3} {:>9.3} {:>7.3}",
                c.class, c.support, c.precision, c.recall, c.f1
            )?;
        }
        write!(
            f,
            "confusion (rows = true, columns = predicted)\n{:<16}",
            ""
        )?;
        for c in &self.classes {
            write!(f, " {:>8}", c.chars().take(8).collect::<String>())?;
        }
        writeln!(f)?;
        for (c, row) in self.classes.iter().zip(&self.confusion) {
            write!(f, "{c:<16}")?;
            for v in row {
                write!(f, " {v:>8}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Metrics over all samples and per data source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluationReport {
    /// All samples.
    pub overall: Metrics,
    /// Per source (both the family, e.g. `eurosat`, and the full source name).
    pub per_source: BTreeMap<String, Metrics>,
    /// Extra views (e.g. `grain_vs_rest` for crop type).
    #[serde(default)]
    pub derived: BTreeMap<String, Metrics>,
    /// Per class: precision and recall when only predictions at or above a confidence count,
    /// for choosing a rule's confidence threshold (e.g. `non_grain_min_confidence`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub confidence_sweeps: BTreeMap<String, Vec<ThresholdRow>>,
}

/// One class at one confidence threshold: predictions of the class with confidence at or
/// above `min_confidence` count, the others are no decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRow {
    pub min_confidence: f32,
    /// Samples of the class.
    pub support: u64,
    /// Predictions of the class at or above the threshold.
    pub predicted: u64,
    /// Of those, correct.
    pub correct: u64,
    /// `correct / predicted` (0 when nothing is predicted).
    pub precision: f64,
    /// `correct / support` (0 without support).
    pub recall: f64,
}

/// Precision and recall of `class` over `(true, predicted, confidence)` at each threshold.
pub fn confidence_sweep(
    class: usize,
    samples: &[(usize, usize, f32)],
    thresholds: &[f32],
) -> Vec<ThresholdRow> {
    let support = samples.iter().filter(|(t, _, _)| *t == class).count() as u64;
    thresholds
        .iter()
        .map(|&min_confidence| {
            let chosen = samples
                .iter()
                .filter(|(_, p, c)| *p == class && *c >= min_confidence);
            let (mut predicted, mut correct) = (0u64, 0u64);
            for (t, _, _) in chosen {
                predicted += 1;
                correct += u64::from(*t == class);
            }
            let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            ThresholdRow {
                min_confidence,
                support,
                predicted,
                correct,
                precision: ratio(correct, predicted),
                recall: ratio(correct, support),
            }
        })
        .collect()
}

impl EvaluationReport {
    /// Build from `(source, true, predicted)` triples.
    pub fn from_triples(classes: &[&str], triples: &[(String, usize, usize)]) -> Self {
        let overall = Metrics::from_pairs(classes, triples.iter().map(|(_, t, p)| (*t, *p)));
        let mut keys: Vec<String> = Vec::new();
        for (s, _, _) in triples {
            let fam = crate::samples::source_family(s).to_string();
            if !keys.contains(&fam) {
                keys.push(fam);
            }
            if !keys.contains(s) {
                keys.push(s.clone());
            }
        }
        let per_source = keys
            .into_iter()
            .map(|k| {
                let m = Metrics::from_pairs(
                    classes,
                    triples
                        .iter()
                        .filter(|(s, _, _)| *s == k || crate::samples::source_family(s) == k)
                        .map(|(_, t, p)| (*t, *p)),
                );
                (k, m)
            })
            .collect();
        Self {
            overall,
            per_source,
            derived: BTreeMap::new(),
            confidence_sweeps: BTreeMap::new(),
        }
    }
}

impl fmt::Display for EvaluationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== all sources ==\n{}", self.overall)?;
        for (k, m) in &self.per_source {
            writeln!(f, "== source {k} ==\n{m}")?;
        }
        for (k, m) in &self.derived {
            writeln!(f, "== {k} ==\n{m}")?;
        }
        if !self.confidence_sweeps.is_empty() {
            writeln!(
                f,
                "== precision / recall per class when only predictions at or above a confidence count =="
            )?;
            writeln!(
                f,
                "{:<16} {:>8} {:>8} {:>10} {:>8} {:>10} {:>8}",
                "class", "min conf", "support", "predicted", "correct", "precision", "recall"
            )?;
            for (k, rows) in &self.confidence_sweeps {
                for r in rows {
                    writeln!(
                        f,
                        "{:<16} {:>8.2} {:>8} {:>10} {:>8} {:>10.3} {:>8.3}",
                        k,
                        r.min_confidence,
                        r.support,
                        r.predicted,
                        r.correct,
                        r.precision,
                        r.recall
                    )?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confidence_sweep_counts_only_confident_predictions() {
        // (true, predicted, confidence); class 1 has 3 samples.
        let s = [
            (1, 1, 0.95),
            (1, 1, 0.65),
            (1, 0, 0.90),
            (0, 1, 0.70),
            (0, 1, 0.55),
            (0, 0, 0.99),
        ];
        let rows = confidence_sweep(1, &s, &[0.5, 0.6, 0.7, 0.96]);
        let got: Vec<(u64, u64, u64)> = rows
            .iter()
            .map(|r| (r.support, r.predicted, r.correct))
            .collect();
        assert_eq!(got, [(3, 4, 2), (3, 3, 2), (3, 2, 1), (3, 0, 0)]);
        assert_eq!(rows[0].precision, 0.5);
        assert!((rows[1].precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((rows[2].recall - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!((rows[3].precision, rows[3].recall), (0.0, 0.0));
    }

    #[test]
    fn metrics_of_a_known_confusion_matrix_are_exact() {
        // true a: 8 a, 2 b; true b: 1 a, 9 b
        let mut pairs = vec![(0, 0); 8];
        pairs.extend(vec![(0, 1); 2]);
        pairs.extend(vec![(1, 0); 1]);
        pairs.extend(vec![(1, 1); 9]);
        let m = Metrics::from_pairs(&["a", "b"], pairs);
        assert_eq!(m.confusion, vec![vec![8, 2], vec![1, 9]]);
        assert_eq!(m.n, 20);
        assert!((m.overall_accuracy - 0.85).abs() < 1e-12);
        // pe = (10*9 + 10*11)/400 = 0.5; kappa = (0.85 - 0.5)/0.5 = 0.7
        assert!((m.kappa - 0.7).abs() < 1e-12);
        let a = m.class("a").map(|c| (c.precision, c.recall, c.f1));
        let (p, r, f1) = a.unwrap_or_default();
        assert!((p - 8.0 / 9.0).abs() < 1e-12 && (r - 0.8).abs() < 1e-12);
        assert!((f1 - 2.0 * p * r / (p + r)).abs() < 1e-12);
        let collapsed = m.collapse(&["all"], &[0, 0]);
        assert_eq!(collapsed.confusion, vec![vec![20]]);
        assert!(m.table().contains("overall accuracy = 0.850"));
        let json = serde_json::to_string(&m).unwrap_or_default();
        let back: Metrics = serde_json::from_str(&json).unwrap_or_else(|_| m.clone());
        assert_eq!(back, m);
    }

    #[test]
    fn report_splits_by_source_family_and_name() {
        let t = vec![
            ("eurosat:l1c".to_string(), 0, 0),
            ("worldcereal:x".to_string(), 1, 0),
            ("worldcereal:y".to_string(), 1, 1),
        ];
        let r = EvaluationReport::from_triples(&["a", "b"], &t);
        assert_eq!(r.per_source["worldcereal"].n, 2);
        assert_eq!(r.per_source["worldcereal:x"].n, 1);
        assert_eq!(r.per_source["eurosat"].overall_accuracy, 1.0);
        assert_eq!(r.overall.n, 3);
    }
}
