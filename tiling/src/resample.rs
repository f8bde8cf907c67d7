//! Scenes whose pixels are whole multiples of the analysis grid's, on the same CRS and
//! aligned to its pixel edges — a Sentinel-2 product's 20 m and 60 m bands under its 10 m
//! grid, a same-resolution scene with another extent — are put on the grid here instead of
//! through GDAL's warper: each tile reads the source window it needs once, through the
//! scene's own (pooled, cached) reader, and interpolates it in place.
//!
//! The arithmetic is the warper's (GDAL `gdalwarpkernel.cpp`, upsampling): a grid pixel
//! whose centre falls at source pixel coordinate `x` (pixel edges at integers) is empty
//! unless `0 <= x < n` and source pixel `floor(x)` (the one under its centre) has a value;
//! nearest takes that pixel; bilinear weighs the source pixel centres on either side of
//! `x` (`floor(x - 0.5)` and the next, by distance), skips those outside the source or
//! without a value and renormalises the weights of the rest, and leaves the pixel empty
//! when their weight is below 10⁻⁶. The test
//! `tiling/tests/stack.rs` checks the result against GDAL's warper on real bands.

use crate::geo::GeoTransform;
use crate::stack::{AnalysisGrid, Resampling};
use crate::window::PixelWindow;
use ndarray::{ArrayView2, ArrayViewMut2};
use serde::Serialize;

/// How a scene lies on the grid when each of its pixels is `factor` × `factor` grid pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ScaledGrid {
    /// Grid pixels per scene pixel along each axis.
    pub factor: usize,
    /// The grid row and column of the scene's top-left corner (may be negative).
    pub row_off: i64,
    pub col_off: i64,
    /// The scene's size in its own pixels.
    pub rows: usize,
    pub cols: usize,
}

/// Where one grid row (or column) takes its values from along that axis.
#[derive(Clone, Copy, Debug)]
struct Tap {
    /// The pixel's centre lies inside the source.
    inside: bool,
    /// Nearest: the source pixel under the centre.
    nearest: i64,
    /// Bilinear: the source pixel centre at or before the grid pixel's centre, and the
    /// weight of the next one.
    lower: i64,
    frac: f32,
}

fn taps(start: i64, len: usize, off: i64, factor: usize, n: usize) -> Vec<Tap> {
    (0..len as i64)
        .map(|i| {
            let x = ((start + i - off) as f64 + 0.5) / factor as f64;
            let c = x - 0.5;
            let lower = c.floor();
            Tap {
                inside: x >= 0.0 && x < n as f64,
                nearest: x.floor() as i64,
                lower: lower as i64,
                frac: (c - lower) as f32,
            }
        })
        .collect()
}

/// An integer to within a millionth, if `v` is one.
fn whole(v: f64) -> Option<i64> {
    let r = v.round();
    ((v - r).abs() <= 1e-6 && r.abs() < 1e15).then_some(r as i64)
}

impl ScaledGrid {
    /// The integer-scale placement of a scene on `own` onto `grid`, if it has one: same
    /// CRS, both north-up with the same orientation, scene pixels a whole number of grid
    /// pixels wide and high (the same number), corners on grid pixel edges.
    pub fn detect(own: &AnalysisGrid, grid: &AnalysisGrid) -> Option<ScaledGrid> {
        let (a, g): (&GeoTransform, &GeoTransform) =
            (&own.world_from_pixel, &grid.world_from_pixel);
        if !a.is_north_up() || !g.is_north_up() || !own.crs.same_as(&grid.crs) {
            return None;
        }
        let (a, g) = (a.0, g.0);
        if g[1] == 0.0 || g[5] == 0.0 {
            return None;
        }
        let kx = whole(a[1] / g[1])?;
        let ky = whole(a[5] / g[5])?;
        if kx != ky || kx < 1 {
            return None;
        }
        Some(ScaledGrid {
            factor: usize::try_from(kx).ok()?,
            col_off: whole((a[0] - g[0]) / g[1])?,
            row_off: whole((a[3] - g[3]) / g[5])?,
            rows: own.height,
            cols: own.width,
        })
    }

    /// The source window that grid window `w` needs (for either resampling), or `None`
    /// when no pixel of `w` has its centre inside the scene.
    pub fn source_window(&self, w: &PixelWindow) -> Option<PixelWindow> {
        let span = |start: i64, len: usize, off: i64, n: usize| -> Option<(usize, usize)> {
            let t = taps(start, len, off, self.factor, n);
            let inside = t.iter().filter(|t| t.inside);
            let lo = inside.clone().map(|t| t.lower.max(0)).min()?;
            let hi = inside.map(|t| (t.lower + 1).min(n as i64 - 1)).max()?;
            Some((lo as usize, (hi - lo + 1) as usize))
        };
        let (row_off, rows) = span(w.row_off, w.rows, self.row_off, self.rows)?;
        let (col_off, cols) = span(w.col_off, w.cols, self.col_off, self.cols)?;
        Some(PixelWindow::new(col_off as i64, row_off as i64, cols, rows))
    }

    /// Fill `dst` (the rows and columns of grid window `w`) from `src`, the values of
    /// source window `src_win` (NaN where there is no value); grid pixels whose centre
    /// lies outside the scene are left as they are.
    pub fn resample(
        &self,
        src: ArrayView2<'_, f32>,
        src_win: &PixelWindow,
        w: &PixelWindow,
        alg: Resampling,
        mut dst: ArrayViewMut2<'_, f32>,
    ) {
        let ty = taps(w.row_off, w.rows, self.row_off, self.factor, self.rows);
        let tx = taps(w.col_off, w.cols, self.col_off, self.factor, self.cols);
        let (r0, c0) = (src_win.row_off, src_win.col_off);
        let (sr, sc) = (src.nrows() as i64, src.ncols() as i64);
        // A source value by source pixel, None outside the window read or without a value.
        let at = |r: i64, c: i64| -> Option<f32> {
            let (r, c) = (r - r0, c - c0);
            if r < 0 || c < 0 || r >= sr || c >= sc {
                return None;
            }
            let v = src[[r as usize, c as usize]];
            (!v.is_nan()).then_some(v)
        };
        for (y, row_tap) in ty.iter().enumerate() {
            if !row_tap.inside {
                continue;
            }
            let mut out = dst.row_mut(y);
            match alg {
                Resampling::Nearest => {
                    for (x, col_tap) in tx.iter().enumerate() {
                        if col_tap.inside {
                            out[x] = at(row_tap.nearest, col_tap.nearest).unwrap_or(f32::NAN);
                        }
                    }
                }
                _ => {
                    let fy = row_tap.frac;
                    for (x, col_tap) in tx.iter().enumerate() {
                        if !col_tap.inside {
                            continue;
                        }
                        // The warper leaves a pixel empty whose own source pixel is.
                        if at(row_tap.nearest, col_tap.nearest).is_none() {
                            out[x] = f32::NAN;
                            continue;
                        }
                        let fx = col_tap.frac;
                        let (r, c) = (row_tap.lower, col_tap.lower);
                        let mut acc = 0.0f32;
                        let mut weight = 0.0f32;
                        for (v, wgt) in [
                            (at(r, c), (1.0 - fy) * (1.0 - fx)),
                            (at(r, c + 1), (1.0 - fy) * fx),
                            (at(r + 1, c), fy * (1.0 - fx)),
                            (at(r + 1, c + 1), fy * fx),
                        ] {
                            if let Some(v) = v {
                                acc += v * wgt;
                                weight += wgt;
                            }
                        }
                        out[x] = if weight < 1e-6 {
                            f32::NAN
                        } else if (0.99999..=1.00001).contains(&weight) {
                            acc
                        } else {
                            acc / weight
                        };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::geo::Crs;
    use ndarray::Array2;

    fn grid(x0: f64, y0: f64, px: f64, w: usize, h: usize) -> AnalysisGrid {
        AnalysisGrid {
            crs: Crs {
                epsg: Some(32633),
                name: "WGS 84 / UTM zone 33N".into(),
                wkt: String::new(),
            },
            world_from_pixel: GeoTransform([x0, px, 0.0, y0, 0.0, -px]),
            width: w,
            height: h,
        }
    }

    #[test]
    fn whole_multiples_on_pixel_edges_are_detected_and_nothing_else() {
        let g = grid(500_000.0, 4_000_000.0, 10.0, 100, 100);
        let s = ScaledGrid::detect(&grid(500_040.0, 3_999_980.0, 20.0, 10, 10), &g).unwrap();
        assert_eq!(
            (s.factor, s.row_off, s.col_off, s.rows, s.cols),
            (2, 2, 4, 10, 10)
        );
        let s = ScaledGrid::detect(&grid(499_400.0, 4_000_000.0, 60.0, 5, 5), &g).unwrap();
        assert_eq!((s.factor, s.row_off, s.col_off), (6, 0, -60));
        // Half a pixel off the grid's edges, 15 m pixels, finer pixels: the warper's job.
        assert!(ScaledGrid::detect(&grid(500_005.0, 4_000_000.0, 20.0, 10, 10), &g).is_none());
        assert!(ScaledGrid::detect(&grid(500_000.0, 4_000_000.0, 15.0, 10, 10), &g).is_none());
        assert!(ScaledGrid::detect(&grid(500_000.0, 4_000_000.0, 5.0, 10, 10), &g).is_none());
    }

    #[test]
    fn a_two_times_bilinear_upsampling_weighs_the_neighbours_by_distance() {
        // One 2 x 2 source on a grid of 4 x 4: every grid pixel centre is a quarter of a
        // source pixel from one source centre and three quarters from the other.
        let s = ScaledGrid {
            factor: 2,
            row_off: 0,
            col_off: 0,
            rows: 2,
            cols: 2,
        };
        let w = PixelWindow::full(4, 4);
        let src_win = s.source_window(&w).unwrap();
        assert_eq!(src_win, PixelWindow::full(2, 2));
        let src = Array2::from_shape_vec((2, 2), vec![0.0f32, 4.0, 8.0, 12.0]).unwrap();
        let mut out = Array2::from_elem((4, 4), f32::NAN);
        s.resample(
            src.view(),
            &src_win,
            &w,
            Resampling::Bilinear,
            out.view_mut(),
        );
        // Row 1, column 1: 0.75² × 0 + 0.75 × 0.25 × (4 + 8) + 0.25² × 12 = 3.0; the
        // outer pixels have one neighbour outside the scene and take the nearer value's
        // line only.
        assert_eq!(out.row(0).to_vec(), vec![0.0, 1.0, 3.0, 4.0]);
        assert_eq!(out.row(1).to_vec(), vec![2.0, 3.0, 5.0, 6.0]);
        assert_eq!(out.row(3).to_vec(), vec![8.0, 9.0, 11.0, 12.0]);
        let mut near = Array2::from_elem((4, 4), f32::NAN);
        s.resample(
            src.view(),
            &src_win,
            &w,
            Resampling::Nearest,
            near.view_mut(),
        );
        assert_eq!(near.row(1).to_vec(), vec![0.0, 0.0, 4.0, 4.0]);
        assert_eq!(near.row(2).to_vec(), vec![8.0, 8.0, 12.0, 12.0]);
    }

    #[test]
    fn empty_neighbours_are_left_out_and_pixels_outside_the_scene_are_untouched() {
        let s = ScaledGrid {
            factor: 2,
            row_off: 1,
            col_off: 1,
            rows: 2,
            cols: 2,
        };
        let w = PixelWindow::full(6, 6);
        let src_win = s.source_window(&w).unwrap();
        let src = Array2::from_shape_vec((2, 2), vec![f32::NAN, 4.0, 8.0, 12.0]).unwrap();
        let mut out = Array2::from_elem((6, 6), -1.0f32);
        s.resample(
            src.view(),
            &src_win,
            &w,
            Resampling::Bilinear,
            out.view_mut(),
        );
        // The scene covers grid rows and columns 1..5.
        assert!(out.row(0).iter().all(|&v| v == -1.0));
        assert!(out.column(5).iter().all(|&v| v == -1.0));
        // The top-left source pixel has no value: the four grid pixels it covers have none
        // either (as GDAL's warper does), and its neighbours weigh the other three only,
        // renormalised.
        for (r, c) in [(1, 1), (1, 2), (2, 1), (2, 2)] {
            assert!(out[[r, c]].is_nan(), "({r}, {c})");
        }
        let v = out[[3, 2]];
        let want = (0.25 * 0.25 * 4.0 + 0.75 * 0.75 * 8.0 + 0.75 * 0.25 * 12.0) / (1.0 - 0.1875);
        assert!((v - want).abs() < 1e-5, "{v} vs {want}");
        assert_eq!(out[[4, 4]], 12.0);
    }
}
