//! Bad input never panics and never allocates what a file merely declares: every broken
//! file below is built in a tempdir (from a real fixture or by hand) and must fail with the
//! exact `TilingError` variant, with a message naming the file and the reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gengdi_fixtures::fixture;
use gengdi_tiling::scene::{ReaderKind, SceneOptions};
use gengdi_tiling::tiff::{ByteSource, TiffReader};
use gengdi_tiling::{DataKind, OpenFailure, PixelWindow, Scene, TilingError};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------
// Allocation tracking: the largest single allocation made by the current thread.

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<u128> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|c| c.set(c.get().max(size)));
    let _ = TOTAL.try_with(|c| c.set(c.get() + size as u128));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Run `f` on this thread; also return the largest single allocation (bytes) and the sum
/// of all allocations it made (Rust allocations only: C libraries such as zstd use malloc).
fn allocations_during<R>(f: impl FnOnce() -> R) -> (R, usize, u128) {
    LARGEST.with(|c| c.set(0));
    TOTAL.with(|c| c.set(0));
    let r = f();
    (r, LARGEST.with(Cell::get), TOTAL.with(Cell::get))
}

// ---------------------------------------------------------------------------------------
// Building bad files.

const MIB: u64 = 1 << 20;

fn fixture_bytes(relative: &str) -> Vec<u8> {
    std::fs::read(fixture(relative)).unwrap()
}

const BYTE_TIF: &str = "geotiff-reader-fixtures/rasterio/byte.tif";
const STRIPS_TIF: &str =
    "geotiff-reader-fixtures/gdal-generated-variants/s2_u16_strip_none_contig.tif";
const DEFLATE_TILES_TIF: &str =
    "geotiff-reader-fixtures/gdal-generated-variants/s2_u16_tiled32_deflate_separate.tif";
const LZW_TILES_TIF: &str =
    "geotiff-reader-fixtures/gdal-generated-variants/s2_u16_tiled16_lzw_pred2_contig.tif";
const BIGTIFF_TIF: &str =
    "geotiff-reader-fixtures/gdal-generated-variants/s2_u16_bigtiff_deflate_tiled.tif";
const SLOVENIA_13BAND: &str = "eolearn-slovenia-s2/s2l1c_20150711_13band.tif";

/// Write `bytes` as `name` in `dir`.
fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn u16_le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Byte offset of the first IFD of a classic little-endian TIFF.
fn first_ifd_at(b: &[u8]) -> usize {
    assert_eq!(&b[..4], b"II*\0");
    u32_le(b, 4) as usize
}

/// Byte offset of the 12-byte entry of `tag` in the first IFD of a classic LE TIFF.
fn entry_at(b: &[u8], tag: u16) -> usize {
    let ifd = first_ifd_at(b);
    let n = u16_le(b, ifd) as usize;
    (0..n)
        .map(|i| ifd + 2 + 12 * i)
        .find(|&at| u16_le(b, at) == tag)
        .unwrap_or_else(|| panic!("no tag {tag}"))
}

/// Byte offset of the next-IFD pointer of the first IFD.
fn next_ifd_pointer_at(b: &[u8]) -> usize {
    let ifd = first_ifd_at(b);
    ifd + 2 + 12 * u16_le(b, ifd) as usize
}

/// Replace the entry of `tag` with a single inline LONG (or SHORT) value.
fn set_tag(b: &mut [u8], tag: u16, field_type: u16, value: u32) {
    let at = entry_at(b, tag);
    b[at + 2..at + 4].copy_from_slice(&field_type.to_le_bytes());
    b[at + 4..at + 8].copy_from_slice(&1u32.to_le_bytes());
    let v = if field_type == 3 {
        let mut v = [0u8; 4];
        v[..2].copy_from_slice(&(value as u16).to_le_bytes());
        v
    } else {
        value.to_le_bytes()
    };
    b[at + 8..at + 12].copy_from_slice(&v);
}

/// A value of a hand-built IFD entry.
enum V {
    Short(Vec<u16>),
    Long(Vec<u32>),
    Long8(Vec<u64>),
    Ascii(&'static str),
}

impl V {
    fn field_type(&self) -> u16 {
        match self {
            V::Short(_) => 3,
            V::Long(_) => 4,
            V::Long8(_) => 16,
            V::Ascii(_) => 2,
        }
    }
    fn count(&self) -> u32 {
        match self {
            V::Short(v) => v.len() as u32,
            V::Long(v) => v.len() as u32,
            V::Long8(v) => v.len() as u32,
            V::Ascii(v) => v.len() as u32 + 1,
        }
    }
    fn to_le(&self) -> Vec<u8> {
        match self {
            V::Short(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            V::Long(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            V::Long8(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            V::Ascii(v) => v.bytes().chain([0]).collect(),
        }
    }
}

/// Where hand-built files put their pixel data: right after the 8-byte header.
const DATA_AT: u32 = 8;

/// A classic little-endian TIFF: header, `data` at offset 8, one IFD with `tags` (sorted
/// as given), then the values that do not fit in an entry.
fn tiff_le(tags: &[(u16, V)], data: &[u8]) -> Vec<u8> {
    let mut out = b"II*\0".to_vec();
    let ifd_at = (8 + data.len()).next_multiple_of(2);
    out.extend((ifd_at as u32).to_le_bytes());
    out.extend(data);
    out.resize(ifd_at, 0);
    let extra_at = ifd_at + 2 + 12 * tags.len() + 4;
    let mut extra = Vec::new();
    out.extend((tags.len() as u16).to_le_bytes());
    for (tag, v) in tags {
        out.extend(tag.to_le_bytes());
        out.extend(v.field_type().to_le_bytes());
        out.extend(v.count().to_le_bytes());
        let bytes = v.to_le();
        if bytes.len() <= 4 {
            let mut inline = bytes.clone();
            inline.resize(4, 0);
            out.extend(inline);
        } else {
            out.extend(((extra_at + extra.len()) as u32).to_le_bytes());
            extra.extend(&bytes);
            extra.resize(extra.len().next_multiple_of(2), 0);
        }
    }
    out.extend(0u32.to_le_bytes());
    out.extend(extra);
    out
}

/// A one-strip, one-band u8 image of `width` x `height` whose strip is `strip`, compressed
/// with `compression` (1 none, 8 DEFLATE, 50000 ZSTD …), without any GeoTIFF tags.
fn one_strip_u8(width: u32, height: u32, compression: u16, strip: &[u8]) -> Vec<u8> {
    tiff_le(
        &[
            (256, V::Long(vec![width])),
            (257, V::Long(vec![height])),
            (258, V::Short(vec![8])),
            (259, V::Short(vec![compression])),
            (262, V::Short(vec![1])),
            (273, V::Long(vec![DATA_AT])),
            (277, V::Short(vec![1])),
            (278, V::Long(vec![height])),
            (279, V::Long(vec![strip.len() as u32])),
        ],
        strip,
    )
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The error opening `path` gives (without printing the reader if it opens after all).
fn open_err(path: &Path) -> TilingError {
    match TiffReader::open(path) {
        Ok(r) => panic!(
            "{} opened ({} x {}) but must not",
            path.display(),
            r.width(),
            r.height()
        ),
        Err(e) => e,
    }
}

/// The message names the file and says `reason`.
fn assert_message(e: &TilingError, path: &Path, reason: &str) {
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message does not name the file: {msg}"
    );
    assert!(
        msg.contains(reason),
        "message does not say {reason:?}: {msg}"
    );
}

fn full(r: &TiffReader) -> PixelWindow {
    PixelWindow::full(r.width(), r.height())
}

// ---------------------------------------------------------------------------------------
// Truncation.

#[test]
fn a_file_cut_inside_the_header_is_truncated_not_misread() {
    let dir = TempDir::new().unwrap();
    let bytes = fixture_bytes(STRIPS_TIF);
    let path = write(&dir, "cut5.tif", &bytes[..5]);
    let e = open_err(&path);
    match &e {
        TilingError::Truncated {
            what,
            offset,
            end,
            file_len,
            ..
        } => assert_eq!(
            (what.as_str(), *offset, *end, *file_len),
            ("header", 0, 8, 5)
        ),
        other => panic!("{other:?}"),
    }
    assert_message(
        &e,
        &path,
        "truncated: header needs bytes 0..8 but the file has 5 bytes",
    );
}

#[test]
fn a_bigtiff_cut_inside_its_16_byte_header_is_truncated() {
    let dir = TempDir::new().unwrap();
    let bytes = fixture_bytes(BIGTIFF_TIF);
    assert_eq!(&bytes[..4], b"II+\0");
    let path = write(&dir, "cut12.tif", &bytes[..12]);
    let e = open_err(&path);
    assert!(
        matches!(&e, TilingError::Truncated { what, offset: 0, end: 16, file_len: 12, .. } if what == "header"),
        "{e:?}"
    );
    assert_message(&e, &path, "header needs bytes 0..16");
}

#[test]
fn a_file_cut_inside_the_ifd_is_truncated_at_the_entry_table() {
    let dir = TempDir::new().unwrap();
    let bytes = fixture_bytes(STRIPS_TIF);
    // The IFD is at 8: 2 bytes of count (17 entries), 17 x 12 bytes, 4 bytes of next offset.
    assert_eq!((first_ifd_at(&bytes), u16_le(&bytes, 8)), (8, 17));
    let path = write(&dir, "cut100.tif", &bytes[..100]);
    let e = open_err(&path);
    assert!(
        matches!(&e, TilingError::Truncated { what, offset: 10, end: 218, file_len: 100, .. } if what == "IFD entries"),
        "{e:?}"
    );
    assert_message(
        &e,
        &path,
        "IFD entries needs bytes 10..218 but the file has 100 bytes",
    );
}

#[test]
fn a_file_cut_inside_the_tag_arrays_names_the_tag_it_could_not_read() {
    let dir = TempDir::new().unwrap();
    let bytes = fixture_bytes(STRIPS_TIF);
    // StripOffsets: 34 LONGs at byte 312.
    let at = entry_at(&bytes, 273);
    assert_eq!((u32_le(&bytes, at + 4), u32_le(&bytes, at + 8)), (34, 312));
    let path = write(&dir, "cut300.tif", &bytes[..300]);
    let e = open_err(&path);
    assert!(
        matches!(&e, TilingError::Truncated { what, offset: 312, end: 448, file_len: 300, .. } if what == "tag 273"),
        "{e:?}"
    );
    assert_message(&e, &path, "tag 273 needs bytes 312..448");
}

#[test]
fn a_file_cut_inside_the_pixel_data_opens_but_reading_the_lost_strip_is_truncated() {
    let dir = TempDir::new().unwrap();
    let bytes = fixture_bytes(STRIPS_TIF);
    let intact = TiffReader::open(&fixture(STRIPS_TIF)).unwrap();
    let cut = bytes.len() - 1000;
    let path = write(&dir, "cut_pixels.tif", &bytes[..cut]);
    let reader = TiffReader::open(&path).unwrap();
    let l = reader.layout();
    assert_eq!(
        (reader.width(), reader.height(), l.offsets.len()),
        (100, 101, 34)
    );
    // Only the last strip (rows 99..101) lies past the cut.
    let lost: Vec<usize> = (0..34)
        .filter(|&i| l.offsets[i] + l.byte_counts[i] > cut as u64)
        .collect();
    assert_eq!(lost, vec![33]);
    let bands: Vec<usize> = (0..13).collect();
    let e = reader
        .read_window::<u16>(&full(&reader), &bands)
        .unwrap_err();
    let (o33, e33) = (l.offsets[33], l.offsets[33] + l.byte_counts[33]);
    assert!(
        matches!(&e, TilingError::Truncated { what, offset, end, file_len, .. }
            if what == "chunk 33" && *offset == o33 && *end == e33 && *file_len == cut as u64),
        "{e:?}"
    );
    assert_message(&e, &path, &format!("chunk 33 needs bytes {o33}..{e33}"));
    let par = reader
        .read_window_par::<u16>(&full(&reader), &bands)
        .unwrap_err();
    assert!(matches!(par, TilingError::Truncated { .. }), "{par:?}");
    // Everything above the lost strip still reads, value for value.
    let top = PixelWindow::new(0, 0, 100, 99);
    assert_eq!(
        reader.read_window::<u16>(&top, &bands).unwrap(),
        intact.read_window::<u16>(&top, &bands).unwrap()
    );
    // Through a Scene the same: it opens, and the read fails with the same error.
    let scene = Scene::open(&path).unwrap();
    assert!(matches!(scene.reader, ReaderKind::Fast));
    let e = scene
        .read_window::<u16>(&PixelWindow::new(0, 100, 1, 1), &[0])
        .unwrap_err();
    assert!(
        matches!(&e, TilingError::Truncated { what, .. } if what == "chunk 33"),
        "{e:?}"
    );
}

#[test]
fn an_empty_file_is_not_a_tiff() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "empty.tif", &[]);
    let e = open_err(&path);
    assert!(
        matches!(&e, TilingError::NotTiff { magic, .. } if magic.is_empty()),
        "{e:?}"
    );
    assert_message(&e, &path, "not a TIFF file");
}

// ---------------------------------------------------------------------------------------
// Not a TIFF.

#[test]
fn a_wrong_magic_number_is_not_a_tiff_and_names_the_bytes_found() {
    let dir = TempDir::new().unwrap();
    let mut bytes = fixture_bytes(BYTE_TIF);
    bytes[..4].copy_from_slice(b"GIF8");
    let path = write(&dir, "gif_magic.tif", &bytes);
    let e = open_err(&path);
    assert!(
        matches!(&e, TilingError::NotTiff { magic, .. } if magic == b"GIF8"),
        "{e:?}"
    );
    assert_message(&e, &path, "first bytes are [47, 49, 46, 38]");
    // A TIFF byte order with another version number is no TIFF either.
    let mut bytes = fixture_bytes(BYTE_TIF);
    bytes[2] = 41;
    let path = write(&dir, "version41.tif", &bytes);
    let e = open_err(&path);
    assert!(
        matches!(&e, TilingError::NotTiff { magic, .. } if magic == b"II)\0"),
        "{e:?}"
    );
}

#[test]
fn a_scene_that_neither_reader_can_open_is_no_raster_format_gdal_knows_with_its_first_bytes() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "notes.tif", b"these are notes, not pixels\n");
    assert!(matches!(open_err(&path), TilingError::NotTiff { .. }));
    let e = Scene::open(&path).unwrap_err();
    assert!(
        matches!(
            &e,
            TilingError::CannotOpen {
                failure: OpenFailure::UnknownFormat {
                    kind: DataKind::Raster,
                    ..
                },
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "{}: not a raster format GDAL knows (a .tif file starting with \"these are notes,\")",
            path.display()
        )
    );
}

#[test]
fn an_empty_scene_file_is_empty_and_a_vector_file_is_not_a_raster() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "empty.tif", &[]);
    let e = Scene::open(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: an empty file (0 bytes), not a raster", path.display())
    );
    let path = write(
        &dir,
        "parcels.geojson",
        br#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[1,2]}}]}"#,
    );
    let e = Scene::open(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: a vector dataset (GeoJSON), not a raster",
            path.display()
        )
    );
}

// ---------------------------------------------------------------------------------------
// Absurd dimensions in tiny files.

#[test]
fn a_tiny_file_declaring_4e9_columns_opens_but_reading_it_is_over_budget() {
    let dir = TempDir::new().unwrap();
    let mut bytes = fixture_bytes(BYTE_TIF);
    set_tag(&mut bytes, 256, 4, 4_000_000_000);
    let path = write(&dir, "width4e9.tif", &bytes);
    // One strip of 20 rows is still one strip: the layout is consistent.
    let reader = TiffReader::open(&path).unwrap();
    assert_eq!((reader.width(), reader.height()), (4_000_000_000, 20));
    let one = PixelWindow::new(0, 0, 1, 1);
    let ((), largest, _) = allocations_during(|| {
        let e = reader.read_window::<u8>(&one, &[0]).unwrap_err();
        // The default budget (2 GiB) already refuses the 80 GB strip.
        assert!(
            matches!(&e, TilingError::OverBudget { requested: 80_000_000_000, budget, .. }
                if *budget == gengdi_tiling::tiff::DEFAULT_BUDGET_BYTES),
            "{e:?}"
        );
        let small = TiffReader::open(&path).unwrap().with_budget(MIB);
        let e = small.read_window::<u8>(&one, &[0]).unwrap_err();
        assert!(
            matches!(&e, TilingError::OverBudget { what, requested: 80_000_000_000, budget: 1_048_576, .. }
                if what == "a decoded chunk"),
            "{e:?}"
        );
        assert_message(
            &e,
            &path,
            "a decoded chunk would need 80000000000 bytes, over the memory budget of 1048576 bytes",
        );
    });
    assert!(largest < MIB as usize, "largest allocation {largest} bytes");
    // GDAL refuses images wider than 2^31 - 1, so a Scene cannot be made of it.
    let e = Scene::open(&path).unwrap_err();
    assert!(
        matches!(
            &e,
            TilingError::CannotOpen {
                failure: OpenFailure::Gdal { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert_message(&e, &path, "GDAL cannot open it as a raster: ");
}

#[test]
fn a_tiny_file_declaring_4e9_rows_is_malformed_because_its_strips_do_not_cover_them() {
    let dir = TempDir::new().unwrap();
    let mut bytes = fixture_bytes(BYTE_TIF);
    set_tag(&mut bytes, 257, 4, 4_000_000_000);
    let path = write(&dir, "height4e9.tif", &bytes);
    let e = open_err(&path);
    assert!(matches!(e, TilingError::Malformed { .. }), "{e:?}");
    assert_message(
        &e,
        &path,
        "1 chunk offsets and 1 byte counts, but a 20x4000000000 image in this layout has 200000000 chunks",
    );
}

#[test]
fn a_tiny_file_declaring_2_pow_31_square_is_malformed() {
    let dir = TempDir::new().unwrap();
    let mut bytes = fixture_bytes(BYTE_TIF);
    set_tag(&mut bytes, 256, 4, 1 << 31);
    set_tag(&mut bytes, 257, 4, 1 << 31);
    let path = write(&dir, "square2p31.tif", &bytes);
    let e = open_err(&path);
    assert!(matches!(e, TilingError::Malformed { .. }), "{e:?}");
    assert_message(&e, &path, "has 107374183 chunks");
}

#[test]
fn a_scene_with_absurd_width_honours_the_budget_of_its_options() {
    let dir = TempDir::new().unwrap();
    let mut bytes = fixture_bytes(BYTE_TIF);
    set_tag(&mut bytes, 256, 4, 1 << 30);
    let path = write(&dir, "width2p30.tif", &bytes);
    let opts = SceneOptions {
        budget_bytes: MIB,
        ..SceneOptions::default()
    };
    let scene = Scene::open_with(&path, &opts).unwrap();
    assert_eq!((scene.width, scene.height), (1 << 30, 20));
    assert!(matches!(scene.reader, ReaderKind::Fast));
    let (e, largest, _) = allocations_during(|| {
        scene
            .read_window::<u8>(&PixelWindow::new(0, 0, 1, 1), &[0])
            .unwrap_err()
    });
    assert!(
        matches!(
            &e,
            TilingError::OverBudget {
                requested: 21_474_836_480,
                budget: 1_048_576,
                ..
            }
        ),
        "{e:?}"
    );
    assert_message(&e, &path, "over the memory budget of 1048576 bytes");
    assert!(largest < MIB as usize, "largest allocation {largest} bytes");
    // A whole-image read through GDAL is refused by the same budget before GDAL is asked.
    let e = scene
        .read_window_gdal::<u8>(&PixelWindow::full(1 << 30, 20), &[0])
        .unwrap_err();
    assert!(
        matches!(
            &e,
            TilingError::OverBudget {
                requested: 21_474_836_480,
                budget: 1_048_576,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn dimensions_past_32_bits_are_malformed_not_overflowed() {
    // ImageWidth and ImageLength as LONG8 of u64::MAX, with 1 x 1 tiles in two planes:
    // chunks across x down x planes does not even fit in 128 bits.
    let dir = TempDir::new().unwrap();
    let bytes = tiff_le(
        &[
            (256, V::Long8(vec![u64::MAX])),
            (257, V::Long8(vec![u64::MAX])),
            (258, V::Short(vec![8, 8])),
            (259, V::Short(vec![1])),
            (262, V::Short(vec![1])),
            (277, V::Short(vec![2])),
            (284, V::Short(vec![2])),
            (322, V::Short(vec![1])),
            (323, V::Short(vec![1])),
            (324, V::Long(vec![DATA_AT, DATA_AT])),
            (325, V::Long(vec![1, 1])),
        ],
        &[0, 0],
    );
    let path = write(&dir, "u64max.tif", &bytes);
    let e = open_err(&path);
    assert!(matches!(e, TilingError::Malformed { .. }), "{e:?}");
    assert_message(
        &e,
        &path,
        "image is 18446744073709551615 x 18446744073709551615, more than 4294967295 pixels a side",
    );
}

#[test]
fn a_zero_width_image_is_malformed() {
    let dir = TempDir::new().unwrap();
    let mut bytes = fixture_bytes(BYTE_TIF);
    set_tag(&mut bytes, 256, 3, 0);
    let path = write(&dir, "width0.tif", &bytes);
    let e = open_err(&path);
    assert!(matches!(e, TilingError::Malformed { .. }), "{e:?}");
    assert_message(&e, &path, "malformed TIFF: image is 0 x 20");
}

// ---------------------------------------------------------------------------------------
// Decompression bombs and declared sizes.

#[test]
fn a_deflate_strip_inflating_far_past_its_size_is_cut_at_the_strip_size() {
    let dir = TempDir::new().unwrap();
    // 16 MiB of sevens in a 16 KiB zlib stream, declared as one 64 x 64 strip.
    let bomb = zlib(&vec![7u8; 16 << 20]);
    assert!(bomb.len() < 20_000, "{}", bomb.len());
    let path = write(&dir, "deflate_bomb.tif", &one_strip_u8(64, 64, 8, &bomb));
    let reader = TiffReader::open(&path).unwrap();
    let (pixels, largest, _) = allocations_during(|| {
        reader
            .read_window::<u8>(&PixelWindow::full(64, 64), &[0])
            .unwrap()
    });
    assert_eq!(pixels.shape(), &[1, 64, 64]);
    assert!(pixels.iter().all(|v| *v == 7));
    // No buffer anywhere near the 16 MiB the stream inflates to.
    assert!(largest < 256 * 1024, "largest allocation {largest} bytes");
}

#[test]
fn a_zstd_strip_inflating_far_past_its_size_is_a_decode_error() {
    let dir = TempDir::new().unwrap();
    let bomb = zstd::bulk::compress(&vec![1u8; 16 << 20], 19).unwrap();
    assert!(bomb.len() < 20_000, "{}", bomb.len());
    let path = write(&dir, "zstd_bomb.tif", &one_strip_u8(64, 64, 50000, &bomb));
    let reader = TiffReader::open(&path).unwrap();
    let (e, largest, _) = allocations_during(|| {
        reader
            .read_window::<u8>(&PixelWindow::full(64, 64), &[0])
            .unwrap_err()
    });
    assert!(
        matches!(&e, TilingError::Decode { chunk: 0, reason, .. } if reason.starts_with("ZSTD: ")),
        "{e:?}"
    );
    assert_message(&e, &path, "chunk 0: ZSTD: ");
    assert!(largest < 256 * 1024, "largest allocation {largest} bytes");
}

/// A 65536 x 65536 image in one DEFLATE tile of a few bytes.
fn one_huge_tile() -> Vec<u8> {
    let data = zlib(&[0u8; 16]);
    tiff_le(
        &[
            (256, V::Long(vec![65536])),
            (257, V::Long(vec![65536])),
            (258, V::Short(vec![8])),
            (259, V::Short(vec![8])),
            (262, V::Short(vec![1])),
            (277, V::Short(vec![1])),
            (322, V::Long(vec![65536])),
            (323, V::Long(vec![65536])),
            (324, V::Long(vec![DATA_AT])),
            (325, V::Long(vec![data.len() as u32])),
        ],
        &data,
    )
}

#[test]
fn a_large_declared_tile_is_over_a_small_budget_before_anything_is_allocated() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "huge_tile.tif", &one_huge_tile());
    let reader = TiffReader::open(&path).unwrap().with_budget(16 * MIB);
    let (e, largest, _) = allocations_during(|| {
        reader
            .read_window::<u8>(&PixelWindow::new(0, 0, 1, 1), &[0])
            .unwrap_err()
    });
    assert!(
        matches!(&e, TilingError::OverBudget { what, requested: 4_294_967_296, budget: 16_777_216, .. }
            if what == "a decoded chunk"),
        "{e:?}"
    );
    assert!(largest < MIB as usize, "largest allocation {largest} bytes");
    // And through a Scene whose options set the budget.
    let opts = SceneOptions {
        budget_bytes: 16 * MIB,
        ..SceneOptions::default()
    };
    let scene = Scene::open_with(&path, &opts).unwrap();
    assert!(matches!(scene.reader, ReaderKind::Fast));
    let e = scene
        .read_window::<u8>(&PixelWindow::new(65535, 65535, 1, 1), &[0])
        .unwrap_err();
    assert!(
        matches!(
            &e,
            TilingError::OverBudget {
                requested: 4_294_967_296,
                budget: 16_777_216,
                ..
            }
        ),
        "{e:?}"
    );
    assert_message(&e, &path, "a decoded chunk would need 4294967296 bytes");
}

#[test]
fn an_uncompressed_strip_shorter_than_declared_is_a_decode_error_without_a_full_buffer() {
    let dir = TempDir::new().unwrap();
    // 4000 x 4000 declared, 16 bytes stored.
    let path = write(
        &dir,
        "short_strip.tif",
        &one_strip_u8(4000, 4000, 1, &[5u8; 16]),
    );
    let reader = TiffReader::open(&path).unwrap();
    let (e, largest, _) = allocations_during(|| {
        reader
            .read_window::<u8>(&PixelWindow::new(0, 0, 1, 1), &[0])
            .unwrap_err()
    });
    assert!(matches!(&e, TilingError::Decode { chunk: 0, .. }), "{e:?}");
    assert_message(
        &e,
        &path,
        "chunk 0: none data decodes to 16 bytes, expected 16000000",
    );
    assert!(largest < MIB as usize, "largest allocation {largest} bytes");
}

#[test]
fn sparse_tiles_read_as_the_nodata_value_across_thousands_of_bands() {
    // Found by the fuzzer (slow unit, 23 s under ASan): 20 x 20 f64 pixels of 9473 bands
    // in 16 x 16 ZSTD tiles, the top two sparse (byte count 0), the bottom two far past
    // the end of the file. Each sparse tile is 16 x 16 x 9473 x 8 = 19.4 MB of nodata,
    // which used to be built byte by byte.
    let dir = TempDir::new().unwrap();
    let bytes = tiff_le(
        &[
            (256, V::Short(vec![20])),
            (257, V::Short(vec![20])),
            (258, V::Short(vec![64])),
            (259, V::Short(vec![50000])),
            (262, V::Short(vec![1])),
            (277, V::Short(vec![9473])),
            (284, V::Short(vec![1])),
            (317, V::Short(vec![3])),
            (322, V::Short(vec![16])),
            (323, V::Short(vec![16])),
            (324, V::Long(vec![0, 0, 1 << 30, 1 << 30])),
            (325, V::Long(vec![0, 0, 100, 100])),
            (339, V::Short(vec![3])),
            (42113, V::Ascii("-7.5")),
        ],
        &[],
    );
    let path = write(&dir, "sparse_9473_bands.tif", &bytes);
    let reader = TiffReader::open(&path).unwrap();
    assert_eq!((reader.band_count(), reader.nodata()), (9473, Some(-7.5)));
    let bands: Vec<usize> = (0..9473).collect();
    // Across the two sparse tiles.
    let w = PixelWindow::new(14, 0, 4, 2);
    for px in [
        reader.read_window::<f64>(&w, &bands).unwrap(),
        reader.read_window_par::<f64>(&w, &bands).unwrap(),
    ] {
        assert_eq!(px.shape(), &[9473, 2, 4]);
        assert!(px.iter().all(|v| *v == -7.5));
    }
    let e = reader
        .read_window::<f32>(&PixelWindow::new(0, 19, 1, 1), &[0])
        .unwrap_err();
    assert!(
        matches!(&e, TilingError::Truncated { what, offset: 1_073_741_824, .. } if what == "chunk 2"),
        "{e:?}"
    );
}

#[test]
fn a_parallel_read_decodes_in_batches_that_fit_the_budget_and_matches_the_sequential_read() {
    let path = fixture(LZW_TILES_TIF);
    let bands: Vec<usize> = (0..13).collect();
    // The output is 262600 bytes; its 49 decoded tiles together are 326144 bytes.
    let reader = TiffReader::open(&path).unwrap().with_budget(300_000);
    let w = full(&reader);
    let seq = reader.read_window::<u16>(&w, &bands).unwrap();
    let par = reader.read_window_par::<u16>(&w, &bands).unwrap();
    assert_eq!(seq, par);
    let sum: u64 = seq.iter().map(|v| u64::from(*v)).sum();
    let reference = TiffReader::open(&path).unwrap();
    let sum_ref: u64 = reference
        .read_window_par::<u16>(&w, &bands)
        .unwrap()
        .iter()
        .map(|v| u64::from(*v))
        .sum();
    assert_eq!(sum, sum_ref);
}

#[test]
fn many_tags_pointing_at_one_large_array_are_malformed_not_multiplied_in_memory() {
    let dir = TempDir::new().unwrap();
    // 2000 private tags all pointing at the same 64 KiB of BYTEs: widened to u64 values
    // they would take 2000 x 512 KiB = 1 GB.
    let mut bytes = fixture_bytes(BYTE_TIF);
    let blob_at = bytes.len() as u32;
    bytes.extend(vec![1u8; 65536]);
    // A new IFD: the 15 entries of the original, then the private tags.
    let first = first_ifd_at(&bytes);
    let entries = bytes[first + 2..first + 2 + 15 * 12].to_vec();
    let ifd_at = bytes.len() as u32;
    let n = 2000u16;
    bytes.extend((15 + n).to_le_bytes());
    bytes.extend(entries);
    for i in 0..n {
        bytes.extend((50000 + i).to_le_bytes());
        bytes.extend(1u16.to_le_bytes());
        bytes.extend(65536u32.to_le_bytes());
        bytes.extend(blob_at.to_le_bytes());
    }
    bytes.extend(0u32.to_le_bytes());
    bytes[4..8].copy_from_slice(&ifd_at.to_le_bytes());
    let path = write(&dir, "shared_tag_data.tif", &bytes);
    let (e, _, total) = allocations_during(|| open_err(&path));
    assert!(matches!(e, TilingError::Malformed { .. }), "{e:?}");
    assert_message(&e, &path, "tag values add up to more than");
    assert!(
        total < 64 * u128::from(MIB),
        "allocated {total} bytes in all"
    );
}

// ---------------------------------------------------------------------------------------
// IFD structure.

#[test]
fn an_ifd_pointing_at_itself_is_a_loop() {
    let dir = TempDir::new().unwrap();
    let mut bytes = fixture_bytes(BYTE_TIF);
    let ifd = first_ifd_at(&bytes) as u32;
    let next = next_ifd_pointer_at(&bytes);
    bytes[next..next + 4].copy_from_slice(&ifd.to_le_bytes());
    let path = write(&dir, "self_loop.tif", &bytes);
    let e = open_err(&path);
    assert!(matches!(e, TilingError::Malformed { .. }), "{e:?}");
    assert_message(&e, &path, "IFD chain loops back to offset 408");
}

#[test]
fn two_ifds_pointing_at_each_other_are_a_loop() {
    let dir = TempDir::new().unwrap();
    let mut bytes = fixture_bytes(BYTE_TIF);
    let ifd = first_ifd_at(&bytes);
    let next = next_ifd_pointer_at(&bytes);
    // A copy of the IFD at the end of the file, pointing back at the first.
    let mut copy = bytes[ifd..next].to_vec();
    copy.extend((ifd as u32).to_le_bytes());
    let second = bytes.len() as u32;
    bytes[next..next + 4].copy_from_slice(&second.to_le_bytes());
    bytes.extend(copy);
    let path = write(&dir, "two_loop.tif", &bytes);
    let e = open_err(&path);
    assert!(matches!(e, TilingError::Malformed { .. }), "{e:?}");
    assert_message(&e, &path, "IFD chain loops back to offset 408");
}

#[test]
fn an_ifd_entry_count_past_the_end_of_the_file_is_truncated() {
    let dir = TempDir::new().unwrap();
    let mut bytes = fixture_bytes(BYTE_TIF);
    let ifd = first_ifd_at(&bytes);
    bytes[ifd..ifd + 2].copy_from_slice(&500u16.to_le_bytes());
    let path = write(&dir, "count500.tif", &bytes);
    let e = open_err(&path);
    assert!(
        matches!(&e, TilingError::Truncated { what, offset: 410, end: 6414, file_len: 736, .. }
            if what == "IFD entries"),
        "{e:?}"
    );
    assert_message(
        &e,
        &path,
        "IFD entries needs bytes 410..6414 but the file has 736 bytes",
    );
    // More entries than any real IFD has is malformed outright.
    bytes[ifd..ifd + 2].copy_from_slice(&5000u16.to_le_bytes());
    let path = write(&dir, "count5000.tif", &bytes);
    let e = open_err(&path);
    assert!(matches!(e, TilingError::Malformed { .. }), "{e:?}");
    assert_message(&e, &path, "IFD at 408 declares 5000 entries");
}

#[test]
fn a_first_ifd_offset_past_the_end_of_the_file_is_truncated() {
    let dir = TempDir::new().unwrap();
    let mut bytes = fixture_bytes(BYTE_TIF);
    bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let path = write(&dir, "ifd_far.tif", &bytes);
    let e = open_err(&path);
    assert!(
        matches!(&e, TilingError::Truncated { what, offset: 4_294_967_295, end: 4_294_967_297, .. }
            if what == "IFD entry count"),
        "{e:?}"
    );
    assert_message(
        &e,
        &path,
        "IFD entry count needs bytes 4294967295..4294967297",
    );
}

#[test]
fn a_tag_array_larger_than_the_file_is_truncated_before_it_is_allocated() {
    let dir = TempDir::new().unwrap();
    let mut bytes = fixture_bytes(BYTE_TIF);
    // StripOffsets claims 1e9 LONGs.
    let at = entry_at(&bytes, 273);
    bytes[at + 4..at + 8].copy_from_slice(&1_000_000_000u32.to_le_bytes());
    bytes[at + 8..at + 12].copy_from_slice(&8u32.to_le_bytes());
    let path = write(&dir, "offsets1e9.tif", &bytes);
    let (e, largest, _) = allocations_during(|| open_err(&path));
    assert!(
        matches!(&e, TilingError::Truncated { what, offset: 8, end: 4_000_000_008, file_len: 736, .. }
            if what == "tag 273 (1000000000 values)"),
        "{e:?}"
    );
    assert!(largest < MIB as usize, "largest allocation {largest} bytes");
}

#[test]
fn chunk_offsets_and_byte_counts_must_match_the_chunk_count() {
    let dir = TempDir::new().unwrap();
    let tags = |offsets: Vec<u32>, counts: Vec<u32>| {
        tiff_le(
            &[
                (256, V::Long(vec![4])),
                (257, V::Long(vec![4])),
                (258, V::Short(vec![8])),
                (273, V::Long(offsets)),
                (278, V::Long(vec![2])),
                (279, V::Long(counts)),
            ],
            &[1u8; 16],
        )
    };
    // Two strips of two rows, one offset.
    let path = write(&dir, "one_offset.tif", &tags(vec![DATA_AT], vec![8]));
    let e = open_err(&path);
    assert!(matches!(e, TilingError::Malformed { .. }), "{e:?}");
    assert_message(
        &e,
        &path,
        "1 chunk offsets and 1 byte counts, but a 4x4 image in this layout has 2 chunks",
    );
    // Two offsets, one byte count.
    let path = write(
        &dir,
        "one_count.tif",
        &tags(vec![DATA_AT, DATA_AT + 8], vec![8]),
    );
    let e = open_err(&path);
    assert!(matches!(e, TilingError::Malformed { .. }), "{e:?}");
    assert_message(&e, &path, "2 chunk offsets and 1 byte counts");
    // The same image with both arrays right reads all ones.
    let path = write(
        &dir,
        "good.tif",
        &tags(vec![DATA_AT, DATA_AT + 8], vec![8, 8]),
    );
    let r = TiffReader::open(&path).unwrap();
    let px = r.read_window::<u8>(&full(&r), &[0]).unwrap();
    assert_eq!(px.iter().map(|v| u32::from(*v)).sum::<u32>(), 16);
}

#[test]
fn a_missing_strip_offsets_tag_is_malformed() {
    let dir = TempDir::new().unwrap();
    let bytes = tiff_le(
        &[
            (256, V::Long(vec![4])),
            (257, V::Long(vec![4])),
            (258, V::Short(vec![8])),
            (279, V::Long(vec![16])),
        ],
        &[1u8; 16],
    );
    let path = write(&dir, "no_offsets.tif", &bytes);
    let e = open_err(&path);
    assert!(matches!(e, TilingError::Malformed { .. }), "{e:?}");
    assert_message(&e, &path, "missing chunk offsets");
}

// ---------------------------------------------------------------------------------------
// Compression the fast reader does not decode, and corrupt compressed data.

#[test]
fn a_compression_only_gdal_knows_falls_back_to_gdal_with_the_reason() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("byte_lzma.tif");
    let src = gdal::Dataset::open(fixture(BYTE_TIF)).unwrap();
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let opts = gdal::raster::RasterCreationOptions::from_iter(["COMPRESS=LZMA"]);
    drop(src.create_copy(&driver, &path, &opts).unwrap());
    let e = open_err(&path);
    assert!(
        matches!(&e, TilingError::Unsupported { reason, .. } if reason == "LZMA compression"),
        "{e:?}"
    );
    assert_message(
        &e,
        &path,
        "unsupported by the fast reader: LZMA compression",
    );
    let scene = Scene::open(&path).unwrap();
    assert!(
        matches!(&scene.reader, ReaderKind::Gdal { reason } if reason == "LZMA compression"),
        "{:?}",
        scene.reader
    );
    assert!(scene.fast_reader().is_none());
    // GDAL reads the same values the fast reader reads from the original.
    let w = PixelWindow::full(20, 20);
    let original = TiffReader::open(&fixture(BYTE_TIF)).unwrap();
    assert_eq!(
        scene.read_window::<u8>(&w, &[0]).unwrap(),
        original.read_window::<u8>(&w, &[0]).unwrap()
    );
}

#[test]
fn a_compression_nobody_knows_is_unsupported_by_the_fast_reader_and_a_gdal_error_for_a_scene() {
    let dir = TempDir::new().unwrap();
    let mut bytes = fixture_bytes(BYTE_TIF);
    set_tag(&mut bytes, 259, 3, 60000);
    let path = write(&dir, "compression60000.tif", &bytes);
    let e = open_err(&path);
    assert!(
        matches!(&e, TilingError::Unsupported { reason, .. } if reason == "code 60000 compression"),
        "{e:?}"
    );
    assert_message(&e, &path, "code 60000 compression");
    // GDAL's GTiff driver recognises the file and says why it cannot read it: its own words
    // make the error, once, not "GDALOpenEx returned a NULL pointer".
    let e = Scene::open(&path).unwrap_err();
    assert!(
        matches!(
            &e,
            TilingError::CannotOpen {
                failure: OpenFailure::Gdal {
                    kind: DataKind::Raster,
                    ..
                },
                ..
            }
        ),
        "{e:?}"
    );
    assert_message(&e, &path, "GDAL cannot open it as a raster: ");
    assert_message(&e, &path, "60000");
}

/// A copy of `relative` whose chunk `index` is overwritten with 0xFF bytes.
fn with_garbage_chunk(dir: &TempDir, relative: &str, index: usize) -> PathBuf {
    let mut bytes = fixture_bytes(relative);
    let l = TiffReader::open(&fixture(relative))
        .unwrap()
        .layout()
        .clone();
    let (o, n) = (l.offsets[index] as usize, l.byte_counts[index] as usize);
    bytes[o..o + n].fill(0xFF);
    write(dir, &format!("garbage_chunk_{index}.tif"), &bytes)
}

#[test]
fn corrupt_deflate_data_is_a_decode_error_naming_the_chunk() {
    let dir = TempDir::new().unwrap();
    // 32 x 32 tiles, band-interleaved: chunk 5 is band 1, tile row 1, tile column 1.
    let path = with_garbage_chunk(&dir, DEFLATE_TILES_TIF, 5);
    let reader = TiffReader::open(&path).unwrap();
    let e = reader
        .read_window::<u16>(&PixelWindow::new(40, 40, 1, 1), &[0])
        .unwrap_err();
    assert!(
        matches!(&e, TilingError::Decode { chunk: 5, reason, .. } if reason.starts_with("DEFLATE: ")),
        "{e:?}"
    );
    assert_message(&e, &path, "chunk 5: DEFLATE: ");
    // Other tiles and other bands of the same tile still read.
    let intact = TiffReader::open(&fixture(DEFLATE_TILES_TIF)).unwrap();
    for (w, b) in [
        (PixelWindow::new(0, 0, 32, 32), 0),
        (PixelWindow::new(40, 40, 1, 1), 1),
    ] {
        assert_eq!(
            reader.read_window::<u16>(&w, &[b]).unwrap(),
            intact.read_window::<u16>(&w, &[b]).unwrap()
        );
    }
}

#[test]
fn corrupt_lzw_data_is_a_decode_error_naming_the_chunk() {
    let dir = TempDir::new().unwrap();
    // 16 x 16 tiles, pixel-interleaved, 7 across: chunk 8 is tile row 1, tile column 1.
    let path = with_garbage_chunk(&dir, LZW_TILES_TIF, 8);
    let reader = TiffReader::open(&path).unwrap();
    let e = reader
        .read_window_par::<u16>(&PixelWindow::new(16, 16, 4, 4), &[0, 12])
        .unwrap_err();
    assert!(
        matches!(&e, TilingError::Decode { chunk: 8, reason, .. } if reason.starts_with("LZW: ")),
        "{e:?}"
    );
    assert_message(&e, &path, "chunk 8: LZW: ");
}

// ---------------------------------------------------------------------------------------
// Georeferencing and bands.

#[test]
fn a_tiff_without_geotags_has_no_georeference() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "plain.tif", &one_strip_u8(4, 4, 1, &[9u8; 16]));
    let scene = Scene::open(&path).unwrap();
    assert!(scene.crs.is_none());
    assert!(scene.world_from_pixel.is_none());
    let e = scene.georeference().unwrap_err();
    assert!(matches!(e, TilingError::NoGeoreference { .. }), "{e:?}");
    assert_message(&e, &path, "no georeferencing");
    // The pixels are fine all the same.
    let px = scene
        .read_window::<u8>(&PixelWindow::full(4, 4), &[0])
        .unwrap();
    assert_eq!(px.iter().map(|v| u32::from(*v)).sum::<u32>(), 144);
}

#[test]
fn an_unknown_band_name_lists_the_bands_there_are() {
    let path = fixture(SLOVENIA_13BAND);
    let scene = Scene::open(&path).unwrap();
    let e = scene.band_index("NOPE").unwrap_err();
    let available = "B01, B02, B03, B04, B05, B06, B07, B08, B8A, B09, B10, B11, B12";
    assert!(
        matches!(&e, TilingError::UnknownBand { name, available: a, .. } if name == "NOPE" && a == available),
        "{e:?}"
    );
    assert_message(
        &e,
        &path,
        &format!("no band named \"NOPE\" (bands: {available})"),
    );
    // Known names and common names still resolve.
    assert_eq!(scene.band_index("B8A").unwrap(), 8);
    assert_eq!(scene.band_index("red").unwrap(), 3);
}

#[test]
fn a_band_mapping_with_the_wrong_count_is_refused() {
    let path = fixture(SLOVENIA_13BAND);
    let opts = SceneOptions {
        band_names: Some(vec!["red".into(), "green".into(), "blue".into()]),
        ..SceneOptions::default()
    };
    let e = Scene::open_with(&path, &opts).unwrap_err();
    assert!(
        matches!(
            e,
            TilingError::BandMappingMismatch {
                given: 3,
                count: 13,
                ..
            }
        ),
        "{e:?}"
    );
    assert_message(
        &e,
        &path,
        "band mapping names 3 bands but the raster has 13",
    );
}

#[test]
fn reading_a_band_or_window_that_does_not_exist_is_an_error_not_a_panic() {
    let reader = TiffReader::open(&fixture(BYTE_TIF)).unwrap();
    let e = reader
        .read_window::<u8>(&PixelWindow::new(0, 0, 1, 1), &[1])
        .unwrap_err();
    assert!(
        matches!(
            e,
            TilingError::NoSuchBand {
                band: 2,
                count: 1,
                ..
            }
        ),
        "{e:?}"
    );
    for w in [
        PixelWindow::new(i64::MAX, 0, 10, 1),
        PixelWindow::new(0, i64::MAX - 1, 1, usize::MAX),
        PixelWindow::new(i64::MIN, 0, usize::MAX, 1),
        PixelWindow::new(19, 19, 2, 1),
    ] {
        let e = reader.read_window::<u8>(&w, &[0]).unwrap_err();
        assert!(
            matches!(
                e,
                TilingError::WindowOutOfBounds {
                    width: 20,
                    height: 20,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    // Chunks that do not exist.
    let e = reader.decode_chunk(1, 0).unwrap_err();
    assert!(matches!(&e, TilingError::Decode { chunk: 1, .. }), "{e:?}");
    assert_message(
        &e,
        &fixture(BYTE_TIF),
        "chunk 1: no such chunk (the image has 1)",
    );
    assert!(matches!(
        reader.raw_chunk(usize::MAX),
        Err(TilingError::Decode { .. })
    ));
    assert!(matches!(
        reader.decode_chunk(0, 7),
        Err(TilingError::Decode { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Paths.

#[test]
fn a_path_that_does_not_exist_is_not_found() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("missing.tif");
    let e = open_err(&path);
    assert!(matches!(e, TilingError::NotFound { .. }), "{e:?}");
    assert_message(&e, &path, "no such file");
    let e = Scene::open(&path).unwrap_err();
    assert!(matches!(e, TilingError::NotFound { .. }), "{e:?}");
    assert_message(&e, &path, "no such file");
}

#[test]
fn a_directory_is_not_a_raster() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("scene.tif");
    std::fs::create_dir(&path).unwrap();
    let e = open_err(&path);
    assert!(matches!(e, TilingError::Io { .. }), "{e:?}");
    assert_message(&e, &path, "cannot read: is a directory, not a raster file");
    let e = Scene::open(&path).unwrap_err();
    assert!(
        matches!(
            &e,
            TilingError::CannotOpen {
                failure: OpenFailure::Directory {
                    kind: DataKind::Raster
                },
                ..
            }
        ),
        "{e:?}"
    );
    assert_message(&e, &path, "a directory, not a raster file");
}

#[test]
fn in_memory_bytes_name_themselves_in_errors() {
    let e = TiffReader::from_source(ByteSource::from_bytes("upload-17.tif", b"II*\0".to_vec()))
        .unwrap_err();
    assert!(matches!(e, TilingError::Truncated { .. }), "{e:?}");
    assert_message(&e, Path::new("upload-17.tif"), "header needs bytes 0..8");
}
