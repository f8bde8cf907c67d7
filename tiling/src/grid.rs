//! Cutting a raster into tiles with a halo.
//!
//! Every pixel of the raster lies in exactly one tile's *core*; a tile's halo is the band
//! of `halo` pixels around the core that models needing context also see. Halos may
//! reach past the raster's edge: those pixels are read as nodata, never invented.

use crate::error::{Result, TilingError};
use crate::window::PixelWindow;
use serde::Serialize;

/// A raster's tile layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TileGrid {
    pub width: usize,
    pub height: usize,
    pub tile_size: usize,
    pub halo: usize,
}

/// One tile: its address in the grid and its windows in raster pixel space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Tile {
    /// Row-major index in the grid: `row * tiles_across + col`.
    pub index: usize,
    pub col: usize,
    pub row: usize,
    /// The pixels this tile is responsible for (clipped to the raster).
    pub core: PixelWindow,
    /// The core grown by the halo on every side; may extend past the raster.
    pub with_halo: PixelWindow,
}

impl Tile {
    /// Where the core sits inside the halo window (pixel offsets within the tile array).
    pub fn core_in_tile(&self) -> PixelWindow {
        PixelWindow::new(
            self.core.col_off - self.with_halo.col_off,
            self.core.row_off - self.with_halo.row_off,
            self.core.cols,
            self.core.rows,
        )
    }
}

impl TileGrid {
    /// Largest tile side accepted, and largest halo (they bound a tile's memory).
    pub const MAX_TILE: usize = 16_384;
    pub const MAX_HALO: usize = 1_024;

    pub fn new(width: usize, height: usize, tile_size: usize, halo: usize) -> Result<Self> {
        let bad = |reason: String| Err(TilingError::InvalidGrid { reason });
        if width == 0 || height == 0 {
            return bad(format!("raster is {width} x {height}"));
        }
        if tile_size == 0 || tile_size > Self::MAX_TILE {
            return bad(format!(
                "tile size {tile_size} (must be 1..={})",
                Self::MAX_TILE
            ));
        }
        if halo > Self::MAX_HALO {
            return bad(format!("halo {halo} (must be at most {})", Self::MAX_HALO));
        }
        Ok(TileGrid {
            width,
            height,
            tile_size,
            halo,
        })
    }

    pub fn tiles_across(&self) -> usize {
        self.width.div_ceil(self.tile_size)
    }

    pub fn tiles_down(&self) -> usize {
        self.height.div_ceil(self.tile_size)
    }

    pub fn len(&self) -> usize {
        self.tiles_across() * self.tiles_down()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tile at grid column `col`, row `row`.
    pub fn tile_at(&self, col: usize, row: usize) -> Option<Tile> {
        if col >= self.tiles_across() || row >= self.tiles_down() {
            return None;
        }
        let c0 = col * self.tile_size;
        let r0 = row * self.tile_size;
        let core = PixelWindow::new(
            c0 as i64,
            r0 as i64,
            self.tile_size.min(self.width - c0),
            self.tile_size.min(self.height - r0),
        );
        let h = self.halo as i64;
        let with_halo = PixelWindow::new(
            core.col_off - h,
            core.row_off - h,
            core.cols + 2 * self.halo,
            core.rows + 2 * self.halo,
        );
        Some(Tile {
            index: row * self.tiles_across() + col,
            col,
            row,
            core,
            with_halo,
        })
    }

    /// The tile with row-major index `index`.
    pub fn tile(&self, index: usize) -> Option<Tile> {
        let a = self.tiles_across();
        self.tile_at(index % a, index / a)
    }

    /// Every tile, row-major.
    pub fn tiles(&self) -> impl Iterator<Item = Tile> + '_ {
        (0..self.len()).filter_map(|i| self.tile(i))
    }

    /// The tile whose core holds pixel (col, row).
    pub fn tile_of_pixel(&self, col: usize, row: usize) -> Option<Tile> {
        if col >= self.width || row >= self.height {
            return None;
        }
        self.tile_at(col / self.tile_size, row / self.tile_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_pixel_lies_in_exactly_one_tile_core(
            width in 1usize..300, height in 1usize..300, tile in 1usize..97, halo in 0usize..20
        ) {
            let g = TileGrid::new(width, height, tile, halo).unwrap();
            let mut count = vec![0u8; width * height];
            for t in g.tiles() {
                prop_assert!(t.core.is_inside(width, height));
                prop_assert!(!t.core.is_empty());
                for r in t.core.row_off..t.core.row_end() {
                    for c in t.core.col_off..t.core.col_end() {
                        count[r as usize * width + c as usize] += 1;
                    }
                }
                // The halo window is the core grown by `halo` on each side.
                let inner = t.core_in_tile();
                prop_assert_eq!(inner.col_off, halo as i64);
                prop_assert_eq!(inner.row_off, halo as i64);
                prop_assert_eq!(t.with_halo.cols, t.core.cols + 2 * halo);
                prop_assert_eq!(g.tile(t.index), Some(t));
            }
            prop_assert!(count.iter().all(|c| *c == 1));
            prop_assert_eq!(g.len(), width.div_ceil(tile) * height.div_ceil(tile));
            // tile_of_pixel agrees with the cores.
            let (c, r) = (width - 1, height - 1);
            prop_assert!(g.tile_of_pixel(c, r).unwrap().core.contains(c as i64, r as i64));
        }
    }

    #[test]
    fn edge_tiles_are_partial_and_halos_reach_past_the_raster() {
        let g = TileGrid::new(100, 101, 64, 8).unwrap();
        assert_eq!((g.tiles_across(), g.tiles_down(), g.len()), (2, 2, 4));
        let last = g.tile(3).unwrap();
        assert_eq!(last.core, PixelWindow::new(64, 64, 36, 37));
        assert_eq!(last.with_halo, PixelWindow::new(56, 56, 52, 53));
        let first = g.tile(0).unwrap();
        assert_eq!(first.with_halo, PixelWindow::new(-8, -8, 80, 80));
    }

    #[test]
    fn nonsense_layouts_are_rejected() {
        assert!(TileGrid::new(0, 10, 8, 0).is_err());
        assert!(TileGrid::new(10, 10, 0, 0).is_err());
        assert!(TileGrid::new(10, 10, 8, 5000).is_err());
    }
}
