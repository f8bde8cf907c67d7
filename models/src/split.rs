//! Train / validation / test split by group (EuroSAT patch, WorldCereal sample), seeded and
//! independent of row order.
//!
//! Two methods. [`SplitMethod::GroupHash`] (the default of new training runs) puts a group in a
//! part by a hash of the seed and the group id alone, so every model trained with the same seed
//! and fractions holds out the same WorldCereal samples whatever its task, classes or other data:
//! a sample held out by the crop-type model is held out by the land-cover model too, and a scene
//! rendered from held-out samples tests both on fields neither saw. [`SplitMethod::Stratified`]
//! (models trained before) shuffles each stratum's groups and cuts exact fractions of it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::rng::SeededRng;
use crate::samples::hex;

/// Which part of the split a group is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// Fitted on.
    Train,
    /// Early stopping.
    Validation,
    /// Held out: reported metrics.
    Test,
}

/// How groups are assigned to parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMethod {
    /// Per stratum, the groups shuffled with the seed and cut at the fractions (exact
    /// proportions per stratum; the same group can land in different parts for two tasks
    /// whose strata differ). The method of models trained before `group_hash`.
    #[default]
    Stratified,
    /// `u = sha256(seed, group id)` read as a number in [0, 1): test when `u < test_fraction`,
    /// validation when `u < test_fraction + val_fraction`, else train. A group's part depends
    /// on nothing else, so it is the same for every task; fractions hold on average.
    GroupHash,
}

/// Fractions and seed of a split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitSpec {
    /// How groups are assigned (absent in older cards: stratified).
    #[serde(default)]
    pub method: SplitMethod,
    /// Seed.
    pub seed: u64,
    /// Fraction of each stratum's groups for validation.
    pub val_fraction: f64,
    /// Fraction of each stratum's groups for test.
    pub test_fraction: f64,
}

/// The split of a sample list: row indices of each part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupSplit {
    /// Training rows.
    pub train: Vec<usize>,
    /// Validation rows.
    pub validation: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
    /// Part of each group.
    pub group_part: BTreeMap<String, Part>,
}

/// Summary of a split written into model cards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    /// How the split was made.
    pub spec: SplitSpec,
    /// Groups per part.
    pub groups: [usize; 3],
    /// Samples per part.
    pub samples: [usize; 3],
    /// sha256 over the sorted test group ids, to check a recomputed split.
    pub test_groups_sha256: String,
}

impl GroupSplit {
    /// Summary for the card.
    pub fn summary(&self, spec: SplitSpec) -> SplitSummary {
        let count = |p: Part| self.group_part.values().filter(|x| **x == p).count();
        SplitSummary {
            spec,
            groups: [
                count(Part::Train),
                count(Part::Validation),
                count(Part::Test),
            ],
            samples: [self.train.len(), self.validation.len(), self.test.len()],
            test_groups_sha256: self.test_groups_sha256(),
        }
    }

    /// sha256 of the sorted test group ids.
    pub fn test_groups_sha256(&self) -> String {
        let mut h = Sha256::new();
        for (g, p) in &self.group_part {
            if *p == Part::Test {
                h.update(g.as_bytes());
                h.update(b"\n");
            }
        }
        hex(&h.finalize())
    }
}

/// The part of `group` under [`SplitMethod::GroupHash`].
pub fn hash_part(group: &str, spec: SplitSpec) -> Part {
    let mut h = Sha256::new();
    h.update(spec.seed.to_le_bytes());
    h.update(group.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let u = (u64::from_le_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
    if u < spec.test_fraction {
        Part::Test
    } else if u < spec.test_fraction + spec.val_fraction {
        Part::Validation
    } else {
        Part::Train
    }
}

/// Split rows by group. `keys[i] = (stratum, group)` of row `i`; a group's stratum is the one
/// of its first row. With [`SplitMethod::GroupHash`] each group's part is [`hash_part`] and
/// the strata play no role. With [`SplitMethod::Stratified`], in each stratum the groups are
/// sorted, shuffled with `spec.seed`, and the first `round(n × test_fraction)` go to test,
/// the next `round(n × val_fraction)` to validation, the rest to train (a stratum with 1 group
/// trains; with 2, one trains, one tests).
pub fn split_by_group<S: AsRef<str>, G: AsRef<str>>(
    keys: &[(S, G)],
    spec: SplitSpec,
) -> GroupSplit {
    let mut strata: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (s, g) in keys {
        if seen.insert(g.as_ref()) {
            strata.entry(s.as_ref()).or_default().insert(g.as_ref());
        }
    }
    let group_part = match spec.method {
        SplitMethod::GroupHash => seen
            .iter()
            .map(|g| (g.to_string(), hash_part(g, spec)))
            .collect(),
        SplitMethod::Stratified => stratified_parts(strata, spec),
    };
    rows_by_part(keys.iter().map(|(_, g)| g.as_ref()), group_part)
}

/// Each stratum's groups shuffled with the seed and cut at the fractions (see
/// [`split_by_group`]).
fn stratified_parts(
    strata: BTreeMap<&str, BTreeSet<&str>>,
    spec: SplitSpec,
) -> BTreeMap<String, Part> {
    let mut group_part = BTreeMap::new();
    for (stratum, groups) in strata {
        let mut groups: Vec<&str> = groups.into_iter().collect();
        let mut rng = SeededRng::stream(spec.seed, stratum);
        rng.shuffle(&mut groups);
        let n = groups.len();
        let mut n_test = (n as f64 * spec.test_fraction).round() as usize;
        let mut n_val = (n as f64 * spec.val_fraction).round() as usize;
        if n >= 2 && n_test == 0 && spec.test_fraction > 0.0 {
            n_test = 1;
        }
        if n >= 3 && n_val == 0 && spec.val_fraction > 0.0 {
            n_val = 1;
        }
        while n_test + n_val >= n && n > 0 {
            if n_val > 0 {
                n_val -= 1;
            } else {
                n_test = n_test.saturating_sub(1);
            }
        }
        for (i, g) in groups.iter().enumerate() {
            let part = if i < n_test {
                Part::Test
            } else if i < n_test + n_val {
                Part::Validation
            } else {
                Part::Train
            };
            group_part.insert(g.to_string(), part);
        }
    }
    group_part
}

/// The rows of each part, given row `i`'s group and each group's part (a group without a
/// part trains).
fn rows_by_part<'a>(
    groups: impl Iterator<Item = &'a str>,
    group_part: BTreeMap<String, Part>,
) -> GroupSplit {
    let mut split = GroupSplit::default();
    for (i, g) in groups.enumerate() {
        match group_part.get(g) {
            Some(Part::Test) => split.test.push(i),
            Some(Part::Validation) => split.validation.push(i),
            _ => split.train.push(i),
        }
    }
    split.group_part = group_part;
    split
}

/// `split` with every group in `forced` moved to the test part (a hold-out of whole sources or
/// regions): `groups[i]` is row `i`'s group. Other groups keep their part.
pub fn with_test_groups(split: GroupSplit, groups: &[&str], forced: &BTreeSet<&str>) -> GroupSplit {
    if forced.is_empty() {
        return split;
    }
    let mut group_part = split.group_part;
    for (g, part) in group_part.iter_mut() {
        if forced.contains(g.as_str()) {
            *part = Part::Test;
        }
    }
    rows_by_part(groups.iter().copied(), group_part)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<(String, String)> {
        let mut k = Vec::new();
        for s in 0..3 {
            for g in 0..20 {
                for _row in 0..(1 + g % 4) {
                    k.push((format!("s{s}"), format!("s{s}-g{g}")));
                }
            }
        }
        k
    }

    #[test]
    fn no_group_is_in_two_parts() {
        let k = keys();
        let split = split_by_group(
            &k,
            SplitSpec {
                method: SplitMethod::Stratified,
                seed: 3,
                val_fraction: 0.15,
                test_fraction: 0.2,
            },
        );
        let groups_of = |rows: &[usize]| {
            rows.iter()
                .map(|&i| k[i].1.clone())
                .collect::<BTreeSet<_>>()
        };
        let (tr, va, te) = (
            groups_of(&split.train),
            groups_of(&split.validation),
            groups_of(&split.test),
        );
        assert!(tr.is_disjoint(&va) && tr.is_disjoint(&te) && va.is_disjoint(&te));
        assert_eq!(
            split.train.len() + split.validation.len() + split.test.len(),
            k.len()
        );
        // 20 groups per stratum: 4 test, 3 validation, 13 train, in each of the 3 strata.
        assert_eq!((te.len(), va.len(), tr.len()), (12, 9, 39));
    }

    #[test]
    fn split_depends_on_seed_not_on_row_order() {
        let k = keys();
        let spec = SplitSpec {
            method: SplitMethod::Stratified,
            seed: 11,
            val_fraction: 0.15,
            test_fraction: 0.2,
        };
        let a = split_by_group(&k, spec);
        let mut rev = k.clone();
        rev.reverse();
        let b = split_by_group(&rev, spec);
        assert_eq!(a.group_part, b.group_part);
        let c = split_by_group(&k, SplitSpec { seed: 12, ..spec });
        assert_ne!(a.group_part, c.group_part);
    }

    #[test]
    fn group_hash_gives_a_group_the_same_part_whatever_its_stratum_or_company() {
        let k = keys();
        let spec = SplitSpec {
            method: SplitMethod::GroupHash,
            seed: 42,
            val_fraction: 0.15,
            test_fraction: 0.2,
        };
        let a = split_by_group(&k, spec);
        // Another task: other strata, half the groups, another order.
        let other: Vec<(String, String)> = k
            .iter()
            .rev()
            .filter(|(_, g)| g.ends_with('0') || g.ends_with('3') || g.ends_with('7'))
            .map(|(_, g)| (format!("other-{}", g.len()), g.clone()))
            .collect();
        let b = split_by_group(&other, spec);
        assert!(!b.group_part.is_empty());
        for (g, part) in &b.group_part {
            assert_eq!(a.group_part[g], *part, "{g}");
            assert_eq!(hash_part(g, spec), *part);
        }
        // Nested fractions: a smaller test fraction keeps a subset of the test groups.
        let smaller = split_by_group(
            &k,
            SplitSpec {
                test_fraction: 0.1,
                ..spec
            },
        );
        for (g, part) in &smaller.group_part {
            if *part == Part::Test {
                assert_eq!(a.group_part[g], Part::Test, "{g}");
            }
        }
        // 60 groups: the parts are near their fractions and the seed matters.
        let n = |p: Part| a.group_part.values().filter(|x| **x == p).count();
        assert!((5..=20).contains(&n(Part::Test)), "{}", n(Part::Test));
        assert!((3..=16).contains(&n(Part::Validation)));
        let c = split_by_group(&k, SplitSpec { seed: 43, ..spec });
        assert_ne!(a.group_part, c.group_part);
    }

    #[test]
    fn forced_groups_go_to_test_and_the_others_keep_their_part() {
        let k = keys();
        let spec = SplitSpec {
            method: SplitMethod::GroupHash,
            seed: 42,
            val_fraction: 0.15,
            test_fraction: 0.2,
        };
        let plain = split_by_group(&k, spec);
        let groups: Vec<&str> = k.iter().map(|(_, g)| g.as_str()).collect();
        // Hold out the whole of stratum s1.
        let forced: BTreeSet<&str> = k
            .iter()
            .filter(|(s, _)| s == "s1")
            .map(|(_, g)| g.as_str())
            .collect();
        let held = with_test_groups(plain.clone(), &groups, &forced);
        for (i, (s, g)) in k.iter().enumerate() {
            let part = held.group_part[g];
            if s == "s1" {
                assert_eq!(part, Part::Test, "{g}");
                assert!(held.test.contains(&i));
            } else {
                assert_eq!(part, plain.group_part[g], "{g}");
            }
        }
        assert_eq!(
            held.train.len() + held.validation.len() + held.test.len(),
            k.len()
        );
        assert!(held.train.iter().all(|&i| k[i].0 != "s1"));
    }
}
