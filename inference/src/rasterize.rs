//! Polygons → pixels, by pixel centres, in the analysis grid's pixel space.
//!
//! A pixel belongs to a polygon when its centre lies inside (even–odd rule over all rings,
//! so holes are holes). The test for a pixel depends only on the pixel's global position
//! and the polygon's coordinates — never on the window being filled — so rasterising tile
//! by tile gives exactly the whole-image result.

use ndarray::Array2;

/// A polygon as rings of (col, row) pixel-space coordinates; the first ring is the shell.
pub type PixelPolygon = Vec<Vec<(f64, f64)>>;

/// Polygons → rings → (x, y) world coordinates into the pixel space of `world_from_pixel`.
pub fn pixel_polygons(
    polygons: &[Vec<Vec<(f64, f64)>>],
    world_from_pixel: &gengdi_tiling::GeoTransform,
) -> Vec<PixelPolygon> {
    polygons
        .iter()
        .map(|poly| {
            poly.iter()
                .map(|ring| {
                    ring.iter()
                        .filter_map(|&(x, y)| world_from_pixel.pixel_from_world(x, y))
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// Bounding box of polygons in pixel space: (min col, min row, max col, max row).
pub fn pixel_bbox(polys: &[PixelPolygon]) -> [f64; 4] {
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for ring in polys.iter().flatten() {
        for &(x, y) in ring {
            b[0] = b[0].min(x);
            b[1] = b[1].min(y);
            b[2] = b[2].max(x);
            b[3] = b[3].max(y);
        }
    }
    b
}

/// Burn `value` into `out` (covering columns `col_off..`, rows `row_off..` of the grid) for
/// every pixel whose centre is inside `polys` (a multipolygon). Returns the pixels burnt.
pub fn burn(
    out: &mut Array2<u32>,
    col_off: i64,
    row_off: i64,
    polys: &[PixelPolygon],
    value: u32,
) -> usize {
    let (rows, cols) = out.dim();
    let b = pixel_bbox(polys);
    if !b[0].is_finite() {
        return 0;
    }
    // Rows whose centre may be inside: centre y = r + 0.5 within [min y, max y).
    let r_first = ((b[1] - 0.5).ceil() as i64).max(row_off);
    let r_last = ((b[3] - 0.5).ceil() as i64 - 1).min(row_off + rows as i64 - 1);
    let mut xs: Vec<f64> = Vec::new();
    let mut burnt = 0;
    for r in r_first..=r_last {
        let y = r as f64 + 0.5;
        for poly in polys {
            xs.clear();
            for ring in poly {
                let n = ring.len();
                for i in 0..n {
                    let (x1, y1) = ring[i];
                    let (x2, y2) = ring[(i + 1) % n];
                    if (y1 <= y && y < y2) || (y2 <= y && y < y1) {
                        xs.push(x1 + (y - y1) * (x2 - x1) / (y2 - y1));
                    }
                }
            }
            xs.sort_by(f64::total_cmp);
            for pair in xs.chunks_exact(2) {
                // Columns whose centre c + 0.5 lies in [x_a, x_b).
                let c_from = ((pair[0] - 0.5).ceil() as i64).max(col_off);
                let c_to = ((pair[1] - 0.5).ceil() as i64).min(col_off + cols as i64);
                for c in c_from..c_to {
                    out[[(r - row_off) as usize, (c - col_off) as usize]] = value;
                    burnt += 1;
                }
            }
        }
    }
    burnt
}

/// One parcel's pixels (centre inside) in a window of the grid, for questions about single
/// pixels: inside the parcel, or pure (see [`ParcelMask::pure`]). Outside the window every
/// answer is "no", so the window must cover the pixels asked about and their neighbours.
pub struct ParcelMask {
    col_off: i64,
    row_off: i64,
    mask: Array2<u32>,
}

impl ParcelMask {
    /// The parcel `polys` over columns `c0..=c1` and rows `r0..=r1` of the grid, clipped to
    /// the parcel's bounding box (so a huge polygon costs no more than its window).
    pub fn new(polys: &[PixelPolygon], c0: i64, r0: i64, c1: i64, r1: i64) -> ParcelMask {
        let b = pixel_bbox(polys);
        let empty = ParcelMask {
            col_off: 0,
            row_off: 0,
            mask: Array2::zeros((0, 0)),
        };
        if !b[0].is_finite() {
            return empty;
        }
        let (c0, r0) = (
            c0.max(b[0].floor() as i64 - 1),
            r0.max(b[1].floor() as i64 - 1),
        );
        let (c1, r1) = (
            c1.min(b[2].ceil() as i64 + 1),
            r1.min(b[3].ceil() as i64 + 1),
        );
        if c1 < c0 || r1 < r0 {
            return empty;
        }
        let mut mask = Array2::<u32>::zeros(((r1 - r0 + 1) as usize, (c1 - c0 + 1) as usize));
        burn(&mut mask, c0, r0, polys, 1);
        ParcelMask {
            col_off: c0,
            row_off: r0,
            mask,
        }
    }

    /// Whether the centre of pixel (col, row) lies in the parcel.
    pub fn inside(&self, col: i64, row: i64) -> bool {
        let (c, r) = (col - self.col_off, row - self.row_off);
        let (rows, cols) = self.mask.dim();
        c >= 0
            && r >= 0
            && (c as usize) < cols
            && (r as usize) < rows
            && self.mask[[r as usize, c as usize]] == 1
    }

    /// A pure pixel: it and its eight neighbours all lie in the parcel, so its footprint does
    /// not straddle the parcel boundary. Boundary pixels mix the parcel with its neighbour
    /// (a forest edge, a road) and, with image misregistration, may show mostly the neighbour.
    pub fn pure(&self, col: i64, row: i64) -> bool {
        (-1..=1).all(|dr| (-1..=1).all(|dc| self.inside(col + dc, row + dr)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<(f64, f64)> {
        vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    }

    #[test]
    fn pixel_centres_decide_and_holes_stay_empty() {
        let poly = vec![square(1.0, 1.0, 9.0, 9.0), square(3.0, 3.0, 7.0, 7.0)];
        let mut a = Array2::<u32>::zeros((10, 10));
        let n = burn(&mut a, 0, 0, &[poly], 5);
        assert_eq!(n, 64 - 16);
        assert_eq!(a[[0, 0]], 0);
        assert_eq!(a[[1, 1]], 5);
        assert_eq!(a[[4, 4]], 0, "inside the hole");
        assert_eq!(a[[8, 8]], 5);
        assert_eq!(a[[9, 9]], 0);
    }

    /// Rows with a pure pixel in column 1.
    fn mask_pure_rows(m: &ParcelMask) -> Vec<i64> {
        (-3..15).filter(|&r| m.pure(1, r)).collect()
    }

    #[test]
    fn pure_pixels_are_those_whose_neighbours_are_all_in_the_parcel() {
        // 12 × 12 pixels with a 2 × 2 hole: 140 pixels inside; the pure ones are the 10 × 10
        // interior less the 4 × 4 block around the hole.
        let poly = vec![square(0.0, 0.0, 12.0, 12.0), square(5.0, 5.0, 7.0, 7.0)];
        let mask = ParcelMask::new(std::slice::from_ref(&poly), -100, -100, 100, 100);
        let all: Vec<(i64, i64)> = (-3..15)
            .flat_map(|r| (-3..15).map(move |c| (c, r)))
            .collect();
        assert_eq!(all.iter().filter(|&&(c, r)| mask.inside(c, r)).count(), 140);
        assert_eq!(all.iter().filter(|&&(c, r)| mask.pure(c, r)).count(), 84);
        assert!(mask.inside(0, 0) && !mask.pure(0, 0), "a corner pixel");
        assert!(mask.pure(1, 1) && mask.pure(3, 3));
        assert!(!mask.pure(4, 4), "next to the hole");
        assert!(!mask.inside(5, 5) && !mask.pure(5, 5), "in the hole");
        // A strip two pixels wide has no pure pixel at all.
        let strip = vec![square(0.0, 0.0, 30.0, 2.0)];
        let mask = ParcelMask::new(std::slice::from_ref(&strip), -100, -100, 100, 100);
        assert!(all.iter().all(|&(c, r)| !mask.pure(c, r)));
        // An empty parcel has neither.
        let none = ParcelMask::new(&[], -100, -100, 100, 100);
        assert!(!none.inside(0, 0) && !none.pure(0, 0));
        // A window answers inside itself only: the same square seen through rows 0..=5.
        let part = ParcelMask::new(std::slice::from_ref(&poly), -100, 0, 100, 5);
        assert!(part.inside(3, 5) && !part.inside(3, 6) && mask_pure_rows(&part) == [1, 2, 3, 4]);
    }

    #[test]
    fn tiled_rasterisation_equals_whole_rasterisation() {
        // An irregular polygon with a hole and edges through pixel centres.
        let shell = vec![
            (0.5, 2.3),
            (17.2, 0.5),
            (29.5, 12.5),
            (20.0, 30.7),
            (3.3, 25.1),
            (8.0, 14.5),
        ];
        let hole = vec![(10.5, 10.5), (18.0, 11.0), (15.5, 19.5)];
        let polys = vec![vec![shell, hole]];
        let mut whole = Array2::<u32>::zeros((32, 32));
        let n_whole = burn(&mut whole, 0, 0, &polys, 1);
        for t in [1usize, 3, 7, 8, 13] {
            let mut assembled = Array2::<u32>::zeros((32, 32));
            let mut n = 0;
            for r0 in (0..32).step_by(t) {
                for c0 in (0..32).step_by(t) {
                    let (h, w) = (t.min(32 - r0), t.min(32 - c0));
                    let mut tile = Array2::<u32>::zeros((h, w));
                    n += burn(&mut tile, c0 as i64, r0 as i64, &polys, 1);
                    assembled
                        .slice_mut(ndarray::s![r0..r0 + h, c0..c0 + w])
                        .assign(&tile);
                }
            }
            assert_eq!(assembled, whole, "tile {t}");
            assert_eq!(n, n_whole);
        }
        assert!(n_whole > 300);
    }
}
