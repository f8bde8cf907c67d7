//! Pixel data types and conversion between them.

use serde::Serialize;
use std::fmt;

/// The data type of a raster's samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl DataType {
    /// Bytes of one sample.
    pub const fn size(self) -> usize {
        match self {
            DataType::U8 | DataType::I8 => 1,
            DataType::U16 | DataType::I16 => 2,
            DataType::U32 | DataType::I32 | DataType::F32 => 4,
            DataType::U64 | DataType::I64 | DataType::F64 => 8,
        }
    }

    pub const fn is_float(self) -> bool {
        matches!(self, DataType::F32 | DataType::F64)
    }

    pub fn name(self) -> &'static str {
        match self {
            DataType::U8 => "u8",
            DataType::I8 => "i8",
            DataType::U16 => "u16",
            DataType::I16 => "i16",
            DataType::U32 => "u32",
            DataType::I32 => "i32",
            DataType::U64 => "u64",
            DataType::I64 => "i64",
            DataType::F32 => "f32",
            DataType::F64 => "f64",
        }
    }

    /// From GDAL's data type, where gengdi supports it.
    pub fn from_gdal(t: gdal::raster::GdalDataType) -> Option<DataType> {
        use gdal::raster::GdalDataType as G;
        Some(match t {
            G::UInt8 => DataType::U8,
            G::UInt16 => DataType::U16,
            G::Int16 => DataType::I16,
            G::UInt32 => DataType::U32,
            G::Int32 => DataType::I32,
            G::UInt64 => DataType::U64,
            G::Int64 => DataType::I64,
            G::Float32 => DataType::F32,
            G::Float64 => DataType::F64,
            _ => return None,
        })
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A type pixels can be read as. Conversion follows Rust's `as` (saturating for
/// float → int, exact for every u16 → f32), so reading a u16 file as `f32` gives the
/// same numbers as GDAL's `RasterIO` into a float buffer.
pub trait Sample:
    Copy + Default + PartialEq + Send + Sync + fmt::Debug + gdal::raster::GdalType + 'static
{
    const DTYPE: DataType;
    fn from_u8(v: u8) -> Self;
    fn from_i8(v: i8) -> Self;
    fn from_u16(v: u16) -> Self;
    fn from_i16(v: i16) -> Self;
    fn from_u32(v: u32) -> Self;
    fn from_i32(v: i32) -> Self;
    fn from_u64(v: u64) -> Self;
    fn from_i64(v: i64) -> Self;
    fn from_f32(v: f32) -> Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
}

macro_rules! impl_sample {
    ($t:ty, $d:expr) => {
        impl Sample for $t {
            const DTYPE: DataType = $d;
            #[inline(always)]
            fn from_u8(v: u8) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_i8(v: i8) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_u16(v: u16) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_i16(v: i16) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_u32(v: u32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_i32(v: i32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_u64(v: u64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    };
}

impl_sample!(u8, DataType::U8);
impl_sample!(u16, DataType::U16);
impl_sample!(i16, DataType::I16);
impl_sample!(u32, DataType::U32);
impl_sample!(i32, DataType::I32);
impl_sample!(u64, DataType::U64);
impl_sample!(i64, DataType::I64);
impl_sample!(f32, DataType::F32);
impl_sample!(f64, DataType::F64);
