//! The two tasks and their classes. Class codes written to maps are `index + 1`; 0 is nodata.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// What a model predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Task {
    /// One date, one pixel → [`LandCoverClass`].
    #[serde(rename = "landcover")]
    LandCover,
    /// One season of a pixel or parcel → [`CropTypeClass`].
    #[serde(rename = "croptype")]
    CropType,
    /// One season of one pixel or parcel → [`SeasonCoverClass`]: what covers the ground over
    /// the whole season (perennial woody against annual crop, grassland, fallow, water, built).
    #[serde(rename = "season")]
    SeasonCover,
}

impl Task {
    /// Both tasks.
    pub const ALL: [Task; 3] = [Task::LandCover, Task::CropType, Task::SeasonCover];

    /// The name used on the command line, in cards and as the registry folder.
    pub fn name(self) -> &'static str {
        match self {
            Task::LandCover => "landcover",
            Task::CropType => "croptype",
            Task::SeasonCover => "season",
        }
    }

    /// The class names of this task in code order (code = index + 1).
    pub fn class_names(self) -> Vec<&'static str> {
        match self {
            Task::LandCover => LandCoverClass::ALL.iter().map(|c| c.name()).collect(),
            Task::CropType => CropTypeClass::ALL.iter().map(|c| c.name()).collect(),
            Task::SeasonCover => SeasonCoverClass::ALL.iter().map(|c| c.name()).collect(),
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Task {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '_'], "")
            .as_str()
        {
            "landcover" => Ok(Task::LandCover),
            "croptype" => Ok(Task::CropType),
            "season" | "seasoncover" => Ok(Task::SeasonCover),
            _ => Err(ModelError::UnknownName {
                kind: "task",
                value: s.to_string(),
                expected: "landcover, croptype, season".into(),
            }),
        }
    }
}

/// Per-date, per-pixel land cover. Order = class code − 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LandCoverClass {
    /// Arable land with a temporary crop (code 1).
    AnnualCrop,
    /// Orchards, vineyards and other permanent crops (code 2).
    Orchard,
    /// Forest and trees (code 3).
    Tree,
    /// Grassland, pasture, herbaceous vegetation (code 4).
    Grass,
    /// Bare soil (code 5). Derived from real pixels by a spectral rule: no real labels exist.
    Bare,
    /// Open water (code 6).
    Water,
    /// Built-up: buildings, roads, industry (code 7).
    Built,
}

impl LandCoverClass {
    /// All classes in code order.
    pub const ALL: [LandCoverClass; 7] = [
        LandCoverClass::AnnualCrop,
        LandCoverClass::Orchard,
        LandCoverClass::Tree,
        LandCoverClass::Grass,
        LandCoverClass::Bare,
        LandCoverClass::Water,
        LandCoverClass::Built,
    ];

    /// Position in [`Self::ALL`] (network output index).
    pub fn index(self) -> usize {
        self as usize
    }
    /// Map code: index + 1 (0 = nodata).
    pub fn code(self) -> u8 {
        self as u8 + 1
    }
    /// The class of a network output index.
    pub fn from_index(index: usize) -> Option<Self> {
        Self::ALL.get(index).copied()
    }
    /// The class of a map code (0 = nodata → `None`).
    pub fn from_code(code: u8) -> Option<Self> {
        (code as usize).checked_sub(1).and_then(Self::from_index)
    }
    /// snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            LandCoverClass::AnnualCrop => "annual_crop",
            LandCoverClass::Orchard => "orchard",
            LandCoverClass::Tree => "tree",
            LandCoverClass::Grass => "grass",
            LandCoverClass::Bare => "bare",
            LandCoverClass::Water => "water",
            LandCoverClass::Built => "built",
        }
    }
}

impl fmt::Display for LandCoverClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a cropland parcel grows over one season. Order = class code − 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CropTypeClass {
    /// Cereals: wheat, maize, rice, barley, rye, oats, triticale, sorghum, millet (code 1).
    Grain,
    /// Other temporary crops: oilseeds, pulses, vegetables, roots and tubers, fibre, herbs (code 2).
    NonGrain,
    /// Permanent and temporary grassland, fodder grass (code 3).
    Grassland,
    /// Fallow / idle arable land (code 4).
    Fallow,
    /// Orchards, vineyards, olive groves, nuts and other permanent crops (code 5).
    PermanentCrop,
}

impl CropTypeClass {
    /// All classes in code order.
    pub const ALL: [CropTypeClass; 5] = [
        CropTypeClass::Grain,
        CropTypeClass::NonGrain,
        CropTypeClass::Grassland,
        CropTypeClass::Fallow,
        CropTypeClass::PermanentCrop,
    ];
    /// Position in [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
    /// Map code: index + 1 (0 = nodata).
    pub fn code(self) -> u8 {
        self as u8 + 1
    }
    /// The class of a network output index.
    pub fn from_index(index: usize) -> Option<Self> {
        Self::ALL.get(index).copied()
    }
    /// snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            CropTypeClass::Grain => "grain",
            CropTypeClass::NonGrain => "non_grain",
            CropTypeClass::Grassland => "grassland",
            CropTypeClass::Fallow => "fallow",
            CropTypeClass::PermanentCrop => "permanent_crop",
        }
    }
}

impl fmt::Display for CropTypeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Classes of the season-cover task ([`Task::SeasonCover`]): what covers a pixel or a parcel
/// over a whole season. Code = index + 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeasonCoverClass {
    /// Temporary crops: a bare or sparse spring, a canopy, a harvest.
    AnnualCrop,
    /// Perennial woody cover: orchards, vineyards, plantations, trees.
    Perennial,
    /// Grassland and temporary grasses.
    Grassland,
    /// Fallow or abandoned land.
    Fallow,
    /// Open water all season.
    Water,
    /// Built-up all season.
    Built,
}

impl SeasonCoverClass {
    /// All classes, in code order.
    pub const ALL: [SeasonCoverClass; 6] = [
        SeasonCoverClass::AnnualCrop,
        SeasonCoverClass::Perennial,
        SeasonCoverClass::Grassland,
        SeasonCoverClass::Fallow,
        SeasonCoverClass::Water,
        SeasonCoverClass::Built,
    ];
    /// Index in [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
    /// Class code in maps (index + 1).
    pub fn code(self) -> u8 {
        self as u8 + 1
    }
    /// The name in cards and outputs.
    pub fn name(self) -> &'static str {
        match self {
            SeasonCoverClass::AnnualCrop => "annual_crop",
            SeasonCoverClass::Perennial => "perennial",
            SeasonCoverClass::Grassland => "grassland",
            SeasonCoverClass::Fallow => "fallow",
            SeasonCoverClass::Water => "water",
            SeasonCoverClass::Built => "built",
        }
    }
}

impl fmt::Display for SeasonCoverClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The classes of a task whose input is a season series (crop type, season cover): what the
/// series training, evaluation and sample sets are generic over.
pub trait SeriesClass: Copy + Eq + Ord + fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// The task.
    const TASK: Task;
    /// All classes, in code order.
    fn all() -> &'static [Self];
    /// Index in [`Self::all`].
    fn class_index(self) -> usize;
    /// The name in cards and outputs.
    fn class_name(self) -> &'static str;
}

impl SeriesClass for CropTypeClass {
    const TASK: Task = Task::CropType;
    fn all() -> &'static [Self] {
        &Self::ALL
    }
    fn class_index(self) -> usize {
        self.index()
    }
    fn class_name(self) -> &'static str {
        self.name()
    }
}

impl SeriesClass for SeasonCoverClass {
    const TASK: Task = Task::SeasonCover;
    fn all() -> &'static [Self] {
        &Self::ALL
    }
    fn class_index(self) -> usize {
        self.index()
    }
    fn class_name(self) -> &'static str {
        self.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landcover_codes_are_one_based_in_the_documented_order() {
        let names: Vec<_> = LandCoverClass::ALL
            .iter()
            .map(|c| (c.code(), c.name()))
            .collect();
        assert_eq!(
            names,
            vec![
                (1, "annual_crop"),
                (2, "orchard"),
                (3, "tree"),
                (4, "grass"),
                (5, "bare"),
                (6, "water"),
                (7, "built")
            ]
        );
        assert_eq!(LandCoverClass::from_code(0), None);
        assert_eq!(LandCoverClass::from_code(5), Some(LandCoverClass::Bare));
        assert_eq!(LandCoverClass::from_code(8), None);
    }

    #[test]
    fn task_names_parse_back() {
        for t in Task::ALL {
            assert_eq!(t.name().parse::<Task>().ok(), Some(t));
        }
        assert!("land-cover".parse::<Task>().is_ok());
        assert_eq!("season_cover".parse::<Task>().ok(), Some(Task::SeasonCover));
        for c in SeasonCoverClass::ALL {
            assert_eq!(SeasonCoverClass::ALL[c.class_index()], c);
            assert_eq!(c.code() as usize, c.index() + 1);
        }
        assert!(matches!(
            "crops".parse::<Task>(),
            Err(ModelError::UnknownName { kind: "task", .. })
        ));
    }
}
