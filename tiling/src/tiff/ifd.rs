//! TIFF / BigTIFF header and image file directory (IFD) parsing.
//!
//! Every count and offset read from the file is checked against the file's length before
//! anything is allocated, so a tiny file that declares huge arrays is rejected instead of
//! making us allocate them; and the tag values of all IFDs together may not add up to
//! much more than the file, so many tags pointing at one large array cannot multiply it.

use super::source::ByteSource;
use crate::error::{Result, TilingError};
use std::collections::BTreeMap;

/// Byte order of a TIFF file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    Little,
    Big,
}

/// The value of one IFD entry, widened.
#[derive(Clone, Debug, PartialEq)]
pub enum TagValue {
    /// BYTE, SHORT, LONG, LONG8, IFD, IFD8 (and UNDEFINED bytes).
    Unsigned(Vec<u64>),
    /// SBYTE, SSHORT, SLONG, SLONG8.
    Signed(Vec<i64>),
    /// FLOAT, DOUBLE, RATIONAL, SRATIONAL.
    Float(Vec<f64>),
    Ascii(String),
}

impl TagValue {
    pub fn as_u64s(&self) -> Option<&[u64]> {
        match self {
            TagValue::Unsigned(v) => Some(v),
            _ => None,
        }
    }

    pub fn first_u64(&self) -> Option<u64> {
        match self {
            TagValue::Unsigned(v) => v.first().copied(),
            TagValue::Signed(v) => v.first().and_then(|x| u64::try_from(*x).ok()),
            _ => None,
        }
    }

    pub fn as_f64s(&self) -> Option<Vec<f64>> {
        match self {
            TagValue::Float(v) => Some(v.clone()),
            TagValue::Unsigned(v) => Some(v.iter().map(|x| *x as f64).collect()),
            TagValue::Signed(v) => Some(v.iter().map(|x| *x as f64).collect()),
            TagValue::Ascii(_) => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            TagValue::Ascii(s) => Some(s),
            _ => None,
        }
    }
}

/// One parsed IFD: tag number → value.
#[derive(Clone, Debug, Default)]
pub struct Ifd {
    pub tags: BTreeMap<u16, TagValue>,
}

impl Ifd {
    pub fn get(&self, tag: u16) -> Option<&TagValue> {
        self.tags.get(&tag)
    }

    pub fn u64_of(&self, tag: u16) -> Option<u64> {
        self.get(tag).and_then(TagValue::first_u64)
    }
}

/// Most IFDs a file may chain (GDAL COGs have a handful; a loop is malformed).
pub const MAX_IFDS: usize = 256;
/// Most entries in one IFD.
const MAX_ENTRIES: u64 = 4096;
/// Most entries in all IFDs together (real files: a few IFDs of a few dozen entries).
const MAX_TOTAL_ENTRIES: usize = 1 << 16;

/// Most bytes of out-of-line tag values all IFDs together may read: in a well-formed file
/// every value lies in its own bytes, so they add up to less than the file.
fn tag_bytes_allowed(file_len: u64) -> u64 {
    file_len.saturating_mul(2).saturating_add(64 * 1024)
}

/// If `bytes` (fewer than a header's worth) could be the start of a TIFF header, the
/// length of that header: 8 bytes, or 16 for BigTIFF.
fn header_len_if_tiff(bytes: &[u8]) -> Option<u64> {
    let start = bytes.get(..4).unwrap_or(bytes);
    if start.is_empty() {
        return None;
    }
    [(b"II*\0", 8), (b"MM\0*", 8), (b"II+\0", 16), (b"MM\0+", 16)]
        .iter()
        .find(|(magic, _)| magic.starts_with(start))
        .map(|(_, n)| *n)
}

/// The parsed header: byte order, BigTIFF or not, and the IFDs in file order.
#[derive(Debug)]
pub struct Header {
    pub byte_order: ByteOrder,
    pub big_tiff: bool,
    pub ifds: Vec<Ifd>,
}

struct Cursor<'a> {
    src: &'a ByteSource,
    order: ByteOrder,
}

impl Cursor<'_> {
    fn u16_at(&self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        match self.order {
            ByteOrder::Little => u16::from_le_bytes(a),
            ByteOrder::Big => u16::from_be_bytes(a),
        }
    }
    fn u32_at(&self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self.order {
            ByteOrder::Little => u32::from_le_bytes(a),
            ByteOrder::Big => u32::from_be_bytes(a),
        }
    }
    fn u64_at(&self, b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        match self.order {
            ByteOrder::Little => u64::from_le_bytes(a),
            ByteOrder::Big => u64::from_be_bytes(a),
        }
    }
}

/// Size in bytes of one value of a TIFF field type, or `None` for unknown types.
fn type_size(field_type: u16) -> Option<u64> {
    Some(match field_type {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 | 16 | 17 | 18 => 8,
        _ => return None,
    })
}

/// Parse the header and every IFD of the chain.
pub fn parse(src: &ByteSource) -> Result<Header> {
    let path = src.path();
    let len = src.len();
    if len < 8 {
        let magic = src.read_exact_at(0, len as usize, "header")?;
        if let Some(end) = header_len_if_tiff(&magic) {
            return Err(TilingError::Truncated {
                path: path.to_path_buf(),
                what: "header".into(),
                offset: 0,
                end,
                file_len: len,
            });
        }
        return Err(TilingError::NotTiff {
            path: path.to_path_buf(),
            magic,
        });
    }
    let head = src.read_exact_at(0, 16.min(len as usize), "header")?;
    let order = match &head[0..2] {
        b"II" => ByteOrder::Little,
        b"MM" => ByteOrder::Big,
        _ => {
            return Err(TilingError::NotTiff {
                path: path.to_path_buf(),
                magic: head[..4].to_vec(),
            })
        }
    };
    let c = Cursor { src, order };
    let version = c.u16_at(&head[2..4]);
    let (big_tiff, first_ifd) = match version {
        42 => (false, c.u32_at(&head[4..8]) as u64),
        43 => {
            if head.len() < 16 {
                return Err(TilingError::Truncated {
                    path: path.to_path_buf(),
                    what: "header".into(),
                    offset: 0,
                    end: 16,
                    file_len: len,
                });
            }
            let offsize = c.u16_at(&head[4..6]);
            if offsize != 8 {
                return Err(TilingError::malformed(
                    path,
                    format!("BigTIFF offset size {offsize}, expected 8"),
                ));
            }
            (true, c.u64_at(&head[8..16]))
        }
        _ => {
            return Err(TilingError::NotTiff {
                path: path.to_path_buf(),
                magic: head[..4].to_vec(),
            })
        }
    };

    let mut ifds = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut next = first_ifd;
    let mut budget = ParseBudget {
        entries_left: MAX_TOTAL_ENTRIES,
        tag_bytes_left: tag_bytes_allowed(len),
    };
    while next != 0 {
        if !seen.insert(next) {
            return Err(TilingError::malformed(
                path,
                format!("IFD chain loops back to offset {next}"),
            ));
        }
        if ifds.len() >= MAX_IFDS {
            return Err(TilingError::malformed(
                path,
                format!("more than {MAX_IFDS} IFDs"),
            ));
        }
        let (ifd, following) = parse_ifd(&c, next, big_tiff, &mut budget)?;
        ifds.push(ifd);
        next = following;
    }
    if ifds.is_empty() {
        return Err(TilingError::malformed(
            path,
            "the file has no image (first IFD offset is 0)",
        ));
    }
    Ok(Header {
        byte_order: order,
        big_tiff,
        ifds,
    })
}

/// What the IFDs still to parse may use, so that overlapping IFDs and tags cannot make a
/// small file into a large amount of memory.
struct ParseBudget {
    entries_left: usize,
    tag_bytes_left: u64,
}

fn parse_ifd(
    c: &Cursor<'_>,
    offset: u64,
    big: bool,
    budget: &mut ParseBudget,
) -> Result<(Ifd, u64)> {
    let path = c.src.path();
    let (count_size, entry_size, inline_size) = if big { (8u64, 20u64, 8u64) } else { (2, 12, 4) };
    let count_bytes = c
        .src
        .read_exact_at(offset, count_size as usize, "IFD entry count")?;
    let count = if big {
        c.u64_at(&count_bytes)
    } else {
        c.u16_at(&count_bytes) as u64
    };
    if count > MAX_ENTRIES {
        return Err(TilingError::malformed(
            path,
            format!("IFD at {offset} declares {count} entries"),
        ));
    }
    budget.entries_left = budget
        .entries_left
        .checked_sub(count as usize)
        .ok_or_else(|| {
            TilingError::malformed(
                path,
                format!("more than {MAX_TOTAL_ENTRIES} IFD entries in all"),
            )
        })?;
    let table_len = count * entry_size + if big { 8 } else { 4 };
    let table = c
        .src
        .read_exact_at(offset + count_size, table_len as usize, "IFD entries")?;
    let mut ifd = Ifd::default();
    for i in 0..count as usize {
        let e = &table[i * entry_size as usize..(i + 1) * entry_size as usize];
        let tag = c.u16_at(&e[0..2]);
        let field_type = c.u16_at(&e[2..4]);
        let n = if big {
            c.u64_at(&e[4..12])
        } else {
            c.u32_at(&e[4..8]) as u64
        };
        let Some(size) = type_size(field_type) else {
            // Unknown field types are skipped, as the TIFF specification asks readers to.
            continue;
        };
        let total = n.checked_mul(size).ok_or_else(|| {
            TilingError::malformed(path, format!("tag {tag}: value count {n} overflows"))
        })?;
        let value_field = &e[if big { 12 } else { 8 }..];
        let bytes: Vec<u8> = if total <= inline_size {
            value_field[..total as usize].to_vec()
        } else {
            let at = if big {
                c.u64_at(value_field)
            } else {
                c.u32_at(value_field) as u64
            };
            if total > c.src.len() {
                return Err(TilingError::Truncated {
                    path: path.to_path_buf(),
                    what: format!("tag {tag} ({n} values)"),
                    offset: at,
                    end: at.saturating_add(total),
                    file_len: c.src.len(),
                });
            }
            budget.tag_bytes_left = budget.tag_bytes_left.checked_sub(total).ok_or_else(|| {
                TilingError::malformed(
                    path,
                    format!(
                        "tag values add up to more than {} bytes in a file of {} bytes \
                             (tag {tag} reads {total} more)",
                        tag_bytes_allowed(c.src.len()),
                        c.src.len()
                    ),
                )
            })?;
            c.src
                .read_exact_at(at, total as usize, &format!("tag {tag}"))?
        };
        ifd.tags
            .insert(tag, decode_values(c, field_type, n as usize, &bytes));
    }
    let tail = &table[(count * entry_size) as usize..];
    let next = if big {
        c.u64_at(tail)
    } else {
        c.u32_at(tail) as u64
    };
    Ok((ifd, next))
}

fn decode_values(c: &Cursor<'_>, field_type: u16, n: usize, b: &[u8]) -> TagValue {
    match field_type {
        1 | 7 => TagValue::Unsigned(b.iter().map(|x| *x as u64).collect()),
        2 => {
            let end = b.iter().position(|x| *x == 0).unwrap_or(b.len());
            TagValue::Ascii(String::from_utf8_lossy(&b[..end]).into_owned())
        }
        3 => TagValue::Unsigned((0..n).map(|i| c.u16_at(&b[i * 2..]) as u64).collect()),
        4 | 13 => TagValue::Unsigned((0..n).map(|i| c.u32_at(&b[i * 4..]) as u64).collect()),
        16 | 18 => TagValue::Unsigned((0..n).map(|i| c.u64_at(&b[i * 8..])).collect()),
        6 => TagValue::Signed(b.iter().map(|x| *x as i8 as i64).collect()),
        8 => TagValue::Signed(
            (0..n)
                .map(|i| c.u16_at(&b[i * 2..]) as i16 as i64)
                .collect(),
        ),
        9 => TagValue::Signed(
            (0..n)
                .map(|i| c.u32_at(&b[i * 4..]) as i32 as i64)
                .collect(),
        ),
        17 => TagValue::Signed((0..n).map(|i| c.u64_at(&b[i * 8..]) as i64).collect()),
        5 => TagValue::Float(
            (0..n)
                .map(|i| {
                    let num = c.u32_at(&b[i * 8..]) as f64;
                    let den = c.u32_at(&b[i * 8 + 4..]) as f64;
                    num / den
                })
                .collect(),
        ),
        10 => TagValue::Float(
            (0..n)
                .map(|i| {
                    let num = c.u32_at(&b[i * 8..]) as i32 as f64;
                    let den = c.u32_at(&b[i * 8 + 4..]) as i32 as f64;
                    num / den
                })
                .collect(),
        ),
        11 => TagValue::Float(
            (0..n)
                .map(|i| f32::from_bits(c.u32_at(&b[i * 4..])) as f64)
                .collect(),
        ),
        12 => TagValue::Float(
            (0..n)
                .map(|i| f64::from_bits(c.u64_at(&b[i * 8..])))
                .collect(),
        ),
        _ => TagValue::Unsigned(Vec::new()),
    }
}
