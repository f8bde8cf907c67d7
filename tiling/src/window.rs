//! Rectangles of pixels.

use serde::Serialize;
use std::fmt;

/// A rectangle of pixels in some raster's pixel space: columns `col_off..col_off + cols`,
/// rows `row_off..row_off + rows`. Offsets may be negative for halos that reach past the
/// raster's edge; a window read from a file is always inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PixelWindow {
    pub col_off: i64,
    pub row_off: i64,
    pub cols: usize,
    pub rows: usize,
}

impl PixelWindow {
    pub const fn new(col_off: i64, row_off: i64, cols: usize, rows: usize) -> Self {
        PixelWindow {
            col_off,
            row_off,
            cols,
            rows,
        }
    }

    /// The whole of a `width` x `height` raster.
    pub const fn full(width: usize, height: usize) -> Self {
        PixelWindow::new(0, 0, width, height)
    }

    pub fn col_end(&self) -> i64 {
        self.col_off + self.cols as i64
    }

    pub fn row_end(&self) -> i64 {
        self.row_off + self.rows as i64
    }

    pub fn pixel_count(&self) -> usize {
        self.cols * self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.cols == 0 || self.rows == 0
    }

    /// Whether the window lies wholly inside a `width` x `height` raster (computed in
    /// 128 bits, so that no window, however absurd, overflows).
    pub fn is_inside(&self, width: usize, height: usize) -> bool {
        self.col_off >= 0
            && self.row_off >= 0
            && self.col_off as i128 + self.cols as i128 <= width as i128
            && self.row_off as i128 + self.rows as i128 <= height as i128
    }

    /// The part of this window that is also in `other` (possibly empty).
    pub fn intersection(&self, other: &PixelWindow) -> PixelWindow {
        let c0 = self.col_off.max(other.col_off);
        let r0 = self.row_off.max(other.row_off);
        let c1 = self.col_end().min(other.col_end());
        let r1 = self.row_end().min(other.row_end());
        PixelWindow::new(c0, r0, (c1 - c0).max(0) as usize, (r1 - r0).max(0) as usize)
    }

    pub fn contains(&self, col: i64, row: i64) -> bool {
        col >= self.col_off && col < self.col_end() && row >= self.row_off && row < self.row_end()
    }
}

impl fmt::Display for PixelWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // In 128 bits: an error message about an absurd window must not overflow.
        write!(
            f,
            "cols {}..{} rows {}..{}",
            self.col_off,
            self.col_off as i128 + self.cols as i128,
            self.row_off,
            self.row_off as i128 + self.rows as i128
        )
    }
}
