//! Pixels → polygons: 4-connected components of a mask, each outlined along pixel edges
//! (exterior rings counter-clockwise in world space with y up, holes clockwise, as
//! RFC 7946 recommends) into a polygon that is valid under the OGC simple-features rules
//! (GEOS `IsValid`): no ring touches itself. Where two pixels of a component meet only at a
//! corner, the two pieces of background there are always different rings (one may be the
//! exterior, the other a hole, or both holes), which touch at that one point as OGC allows.
//! Two components that meet only at a corner are two polygons of a valid MultiPolygon.

use std::collections::HashMap;

/// A component: its pixels (col, row) in grid pixel space.
pub type Component = Vec<(i64, i64)>;

/// 4-connected components of a set of pixels, each sorted, in a deterministic order
/// (by their first pixel, row-major).
pub fn components(pixels: &[(i64, i64)]) -> Vec<Component> {
    let set: std::collections::HashSet<(i64, i64)> = pixels.iter().copied().collect();
    let mut seen = std::collections::HashSet::with_capacity(set.len());
    let mut sorted: Vec<(i64, i64)> = set.iter().copied().collect();
    sorted.sort_by_key(|&(c, r)| (r, c));
    let mut out = Vec::new();
    for start in sorted {
        if !seen.insert(start) {
            continue;
        }
        let mut comp = vec![start];
        let mut stack = vec![start];
        while let Some((c, r)) = stack.pop() {
            for n in [(c + 1, r), (c - 1, r), (c, r + 1), (c, r - 1)] {
                if set.contains(&n) && seen.insert(n) {
                    comp.push(n);
                    stack.push(n);
                }
            }
        }
        comp.sort_by_key(|&(c, r)| (r, c));
        out.push(comp);
    }
    out
}

/// 3 × 3 majority smoothing of a set of pixels inside a region (the usual post-classification
/// filter that removes speckle and fills pinholes): a pixel of the region is in the result
/// when more than half of the region's pixels in its 3 × 3 neighbourhood, itself included,
/// are in `pixels`. Straight edges stay where they are; isolated pixels and single-pixel
/// spurs go; one-pixel holes and notches fill; the region's own border does not erode (pixels
/// outside the region do not vote). The result is sorted row-major. Pixels outside the region
/// never enter it.
pub fn majority_smooth(
    pixels: &[(i64, i64)],
    in_region: &dyn Fn(i64, i64) -> bool,
) -> Vec<(i64, i64)> {
    if pixels.is_empty() {
        return Vec::new();
    }
    let (mut c0, mut r0, mut c1, mut r1) = (i64::MAX, i64::MAX, i64::MIN, i64::MIN);
    for &(c, r) in pixels {
        c0 = c0.min(c);
        r0 = r0.min(r);
        c1 = c1.max(c);
        r1 = r1.max(r);
    }
    // Bitmap with a one-pixel margin on every side.
    let (w, h) = ((c1 - c0 + 3) as usize, (r1 - r0 + 3) as usize);
    let mut set = vec![false; w * h];
    let at = |c: i64, r: i64| (r - r0 + 1) as usize * w + (c - c0 + 1) as usize;
    for &(c, r) in pixels {
        set[at(c, r)] = true;
    }
    let mut out = Vec::new();
    for r in r0 - 1..=r1 + 1 {
        for c in c0 - 1..=c1 + 1 {
            if !in_region(c, r) {
                continue;
            }
            let (mut n, mut voters) = (0, 0);
            for dr in -1..=1 {
                for dc in -1..=1 {
                    let (cc, rr) = (c + dc, r + dr);
                    if !in_region(cc, rr) {
                        continue;
                    }
                    voters += 1;
                    if cc >= c0 && cc <= c1 && rr >= r0 && rr <= r1 && set[at(cc, rr)] {
                        n += 1;
                    }
                }
            }
            if 2 * n > voters {
                out.push((c, r));
            }
        }
    }
    out
}

/// The outline of a 4-connected component as rings of pixel-corner coordinates
/// (col, row); the first ring is the exterior, the others holes. Rings are closed
/// (first point repeated), have collinear points removed and never pass a corner twice:
/// each ring bounds one 4-connected piece of the background (the pixels not in the
/// component), so where two of the component's pixels meet only at a corner its rings
/// touch there without any of them touching itself. The rings enclose exactly the
/// component's pixels.
pub fn outline(component: &Component) -> Vec<Vec<(i64, i64)>> {
    let set: std::collections::HashSet<(i64, i64)> = component.iter().copied().collect();
    // Directed boundary edges with the inside on the left when walking in pixel space
    // (x right, y down): exterior rings come out clockwise on screen, i.e.
    // counter-clockwise in a y-up world.
    let mut next: HashMap<(i64, i64), Vec<(i64, i64)>> = HashMap::new();
    let mut count = 0usize;
    for &(c, r) in component {
        if !set.contains(&(c, r - 1)) {
            next.entry((c + 1, r)).or_default().push((c, r)); // top edge, right → left
            count += 1;
        }
        if !set.contains(&(c, r + 1)) {
            next.entry((c, r + 1)).or_default().push((c + 1, r + 1)); // bottom, left → right
            count += 1;
        }
        if !set.contains(&(c - 1, r)) {
            next.entry((c, r)).or_default().push((c, r + 1)); // left, top → bottom
            count += 1;
        }
        if !set.contains(&(c + 1, r)) {
            next.entry((c + 1, r + 1)).or_default().push((c + 1, r)); // right, bottom → top
            count += 1;
        }
    }
    let mut rings = Vec::new();
    let mut used = 0usize;
    let mut starts: Vec<(i64, i64)> = next.keys().copied().collect();
    starts.sort_by_key(|&(x, y)| (y, x));
    for s in starts {
        while next.get(&s).is_some_and(|v| !v.is_empty()) {
            let mut ring = vec![s];
            let mut prev = s;
            let mut cur = match next.get_mut(&s).and_then(|v| v.pop()) {
                Some(p) => p,
                None => break,
            };
            used += 1;
            while cur != s {
                ring.push(cur);
                let Some(outs) = next.get_mut(&cur) else {
                    break;
                };
                if outs.is_empty() {
                    break;
                }
                // At a corner where two of the component's pixels meet diagonally (the
                // other two are background), turn right, around the background pixel
                // on the right, never left around the component's pixel: the ring then
                // follows one 4-connected piece of background. In a 4-connected component
                // the two background pixels at such a corner are never in one 4-connected
                // piece (a 4-path between them and the corner would separate the two
                // pixels, which a 4-path of the component joins), so no ring comes back
                // to the corner. Turning left instead joins them through the corner into
                // one ring that touches itself there ("Ring Self-intersection" in GEOS).
                let dir = (cur.0 - prev.0, cur.1 - prev.1);
                let pick = if outs.len() == 1 {
                    0
                } else {
                    // Pixel space has y down: the right of (dx, dy) is (-dy, dx).
                    let right = (-dir.1, dir.0);
                    outs.iter()
                        .position(|&o| (o.0 - cur.0, o.1 - cur.1) == right)
                        .unwrap_or(0)
                };
                let n = outs.swap_remove(pick);
                used += 1;
                prev = cur;
                cur = n;
            }
            ring.push(s);
            rings.push(simplify(ring));
        }
    }
    debug_assert_eq!(used, count);
    // The rings enclose exactly the component's pixels (exteriors are negative with y down).
    debug_assert_eq!(
        rings.iter().map(|r| signed_area2(r)).sum::<i64>(),
        -2 * component.len() as i64
    );
    // Exterior first: the ring with the largest absolute area.
    rings.sort_by_key(|r| std::cmp::Reverse(signed_area2(r).abs()));
    rings
}

/// Twice the signed area (shoelace) of a closed ring.
pub fn signed_area2(ring: &[(i64, i64)]) -> i64 {
    ring.windows(2)
        .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
        .sum()
}

fn simplify(ring: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    // Drop points in the middle of straight runs.
    let n = ring.len();
    if n < 4 {
        return ring;
    }
    let pts = &ring[..n - 1];
    let m = pts.len();
    let mut out = Vec::with_capacity(m + 1);
    for i in 0..m {
        let a = pts[(i + m - 1) % m];
        let b = pts[i];
        let c = pts[(i + 1) % m];
        let cross = (b.0 - a.0) * (c.1 - b.1) - (b.1 - a.1) * (c.0 - b.0);
        if cross != 0 {
            out.push(b);
        }
    }
    if let Some(&f) = out.first() {
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gdal::vector::Geometry;

    /// One polygon's rings, exterior first.
    type Rings = Vec<Vec<(i64, i64)>>;

    /// The mask's components outlined, as one MULTIPOLYGON in pixel-corner coordinates.
    fn multipolygon(pixels: &[(i64, i64)]) -> (Vec<Rings>, Geometry) {
        let polygons: Vec<Rings> = components(pixels).iter().map(outline).collect();
        let wkt = format!(
            "MULTIPOLYGON({})",
            polygons
                .iter()
                .map(|rings| format!(
                    "({})",
                    rings
                        .iter()
                        .map(|ring| format!(
                            "({})",
                            ring.iter()
                                .map(|(x, y)| format!("{x} {y}"))
                                .collect::<Vec<_>>()
                                .join(",")
                        ))
                        .collect::<Vec<_>>()
                        .join(",")
                ))
                .collect::<Vec<_>>()
                .join(",")
        );
        let geometry = Geometry::from_wkt(&wkt).unwrap_or_else(|e| panic!("{wkt}: {e}"));
        (polygons, geometry)
    }

    /// Outlines `pixels` and checks what every outline must be: valid under GEOS `IsValid`
    /// (all components as one MultiPolygon), each ring closed and simple (no vertex
    /// visited twice), exteriors first and oriented one way, holes the other, and the area
    /// exactly the pixel count. Returns the number of rings of each polygon.
    fn outline_checked(pixels: &[(i64, i64)]) -> Vec<usize> {
        assert!(
            gdal::version::VersionInfo::has_geos(),
            "GDAL without GEOS: IsValid cannot be checked"
        );
        let (polygons, geometry) = multipolygon(pixels);
        let mask = picture(pixels);
        assert!(
            geometry.is_valid(),
            "invalid outline of\n{mask}{}",
            geometry.wkt().unwrap_or_default()
        );
        let distinct: std::collections::HashSet<(i64, i64)> = pixels.iter().copied().collect();
        assert_eq!(geometry.area(), distinct.len() as f64, "area of\n{mask}");
        let mut net = 0;
        for rings in &polygons {
            for (i, ring) in rings.iter().enumerate() {
                assert_eq!(ring.first(), ring.last(), "open ring in\n{mask}");
                let mut seen = std::collections::HashSet::new();
                for p in &ring[1..] {
                    assert!(
                        seen.insert(*p),
                        "ring passes {p:?} twice in\n{mask}{ring:?}"
                    );
                }
                let a = signed_area2(ring);
                // Pixel space has y down: exteriors are negative here (counter-clockwise with
                // y up, in the world), holes positive.
                assert!(
                    if i == 0 { a < 0 } else { a > 0 },
                    "orientation of ring {i} in\n{mask}"
                );
                net += a;
            }
        }
        assert_eq!(-net, 2 * distinct.len() as i64, "ring areas of\n{mask}");
        polygons.iter().map(Vec::len).collect()
    }

    /// The mask drawn as text ('#' in the set), for failure messages.
    fn picture(pixels: &[(i64, i64)]) -> String {
        let set: std::collections::HashSet<(i64, i64)> = pixels.iter().copied().collect();
        let (c1, r1) = pixels
            .iter()
            .fold((0, 0), |(c, r), &(pc, pr)| (c.max(pc), r.max(pr)));
        let mut s = String::new();
        for r in 0..=r1 {
            for c in 0..=c1 {
                s.push(if set.contains(&(c, r)) { '#' } else { '.' });
            }
            s.push('\n');
        }
        s
    }

    /// Pixels of a picture: '#' is in the set, row by row from the top.
    fn mask(rows: &[&str]) -> Vec<(i64, i64)> {
        rows.iter()
            .enumerate()
            .flat_map(|(r, row)| {
                row.chars()
                    .enumerate()
                    .filter(|(_, ch)| *ch == '#')
                    .map(move |(c, _)| (c as i64, r as i64))
            })
            .collect()
    }

    #[test]
    fn two_diagonal_pixels_are_two_squares_touching_at_a_corner() {
        assert_eq!(outline_checked(&mask(&["#.", ".#"])), vec![1, 1]);
        assert_eq!(outline_checked(&mask(&[".#", "#."])), vec![1, 1]);
    }

    #[test]
    fn a_checkerboard_is_one_square_per_pixel() {
        let board = mask(&["#.#.#", ".#.#.", "#.#.#", ".#.#.", "#.#.#"]);
        assert_eq!(outline_checked(&board), vec![1; 13]);
    }

    #[test]
    fn a_checkerboard_inside_a_frame_is_a_frame_with_holes_and_squares_in_its_big_hole() {
        // The checkerboard's pixels that touch the frame by an edge belong to it; the four
        // in the middle touch only corners and are squares of their own. The frame's corner
        // pixels (1, 1), (5, 1), (1, 5), (5, 5) are holes of their own that touch the big
        // middle hole at one point each, never a hole ring that touches itself.
        let framed = mask(&[
            "#######", "#.#.#.#", "##.#.##", "#.#.#.#", "##.#.##", "#.#.#.#", "#######",
        ]);
        assert_eq!(outline_checked(&framed), vec![1 + 5, 1, 1, 1, 1]);
        // The other parity: no pixel of the frame meets another only at a corner, so its
        // one hole is the whole middle, with five squares in it.
        let framed = mask(&[
            "#######", "##.#.##", "#.#.#.#", "##.#.##", "#.#.#.#", "##.#.##", "#######",
        ]);
        assert_eq!(outline_checked(&framed), vec![2, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn a_hole_touching_the_outside_at_a_corner_is_a_hole_not_a_pinched_exterior() {
        // The hole (1, 1) and the outside meet at the corner (2, 2), between the pixels
        // (2, 1) and (1, 2): an exterior and a hole touching at one point, which OGC allows.
        assert_eq!(outline_checked(&mask(&["###", "#.#", "##."])), vec![2]);
        // The same at every corner, and with a larger hole.
        assert_eq!(outline_checked(&mask(&[".##", "#.#", "###"])), vec![2]);
        assert_eq!(outline_checked(&mask(&["##.", "#.#", "###"])), vec![2]);
        assert_eq!(outline_checked(&mask(&["###", "#.#", ".##"])), vec![2]);
        assert_eq!(
            outline_checked(&mask(&["#####", "#...#", "#...#", "####.", "####."])),
            vec![2]
        );
    }

    #[test]
    fn a_hole_pinched_at_a_corner_is_two_holes_touching_at_a_point() {
        let block = mask(&["####", "#.##", "##.#", "####"]);
        assert_eq!(outline_checked(&block), vec![3]);
        let block = mask(&["#####", "#..##", "#..##", "###.#", "#####"]);
        assert_eq!(outline_checked(&block), vec![3]);
    }

    #[test]
    fn a_u_closed_by_a_diagonal_link_is_two_polygons_or_a_hole() {
        // A U whose opening a lone pixel closes diagonally: the pixel is its own square,
        // touching the U's arms at two corners; the opening is a hole of neither.
        let u = mask(&[".#.", "#.#", "#.#", "###"]);
        assert_eq!(outline_checked(&u), vec![1, 1]);
        // A U whose opening a pixel of one arm closes diagonally: one polygon, the inside of
        // the U a hole touching the exterior at one point.
        let u = mask(&[".##", "#.#", "#.#", "###"]);
        assert_eq!(outline_checked(&u), vec![2]);
        let u = mask(&["###.", "#..#", "#..#", "####"]);
        assert_eq!(outline_checked(&u), vec![2]);
    }

    #[test]
    fn random_masks_outline_to_valid_polygons_of_their_exact_area() {
        // SplitMix64: masks from fixed seeds, so a failure names a mask that can be rerun.
        let mut state = 0x5eed_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut diagonal_links = 0;
        for _ in 0..1500 {
            let (w, h) = (2 + next() % 9, 2 + next() % 9);
            // Densities from sparse to nearly full: sparse masks have many diagonal links,
            // dense ones many pinched holes.
            let p = 0.2 + 0.7 * (next() % 1000) as f64 / 1000.0;
            let pixels: Vec<(i64, i64)> = (0..h as i64)
                .flat_map(|r| (0..w as i64).map(move |c| (c, r)))
                .filter(|_| (next() % 1_000_000) as f64 / 1_000_000.0 < p)
                .collect();
            if pixels.is_empty() {
                continue;
            }
            let set: std::collections::HashSet<(i64, i64)> = pixels.iter().copied().collect();
            let has = |c: i64, r: i64| set.contains(&(c, r));
            diagonal_links += pixels
                .iter()
                .filter(|&&(c, r)| {
                    has(c + 1, r + 1) && !has(c + 1, r) && !has(c, r + 1)
                        || has(c - 1, r + 1) && !has(c - 1, r) && !has(c, r + 1)
                })
                .count();
            outline_checked(&pixels);
        }
        // The masks do exercise the corner cases: pixels meeting only at a corner.
        assert!(diagonal_links > 1000, "{diagonal_links}");
    }

    #[test]
    fn components_are_four_connected() {
        let px = vec![(0, 0), (1, 0), (1, 1), (3, 3), (4, 4)];
        let c = components(&px);
        assert_eq!(c.len(), 3, "diagonal neighbours are separate components");
        assert_eq!(c[0], vec![(0, 0), (1, 0), (1, 1)]);
    }

    #[test]
    fn a_square_with_a_hole_outlines_to_two_rings_with_the_right_area() {
        let mut px = Vec::new();
        for r in 0..5 {
            for c in 0..5 {
                if !(r == 2 && c == 2) {
                    px.push((c, r));
                }
            }
        }
        let comps = components(&px);
        assert_eq!(comps.len(), 1);
        let rings = outline(&comps[0]);
        assert_eq!(rings.len(), 2);
        assert_eq!(rings[0].len(), 5, "exterior is 4 corners + closing point");
        // Signed areas: exterior and hole of opposite orientation; net = 24 pixels.
        let (a, h) = (signed_area2(&rings[0]), signed_area2(&rings[1]));
        assert_eq!(a.abs(), 2 * 25);
        assert_eq!(h.abs(), 2);
        assert!(a.signum() != h.signum());
        assert_eq!((a + h).abs(), 2 * 24);
    }

    #[test]
    fn majority_smoothing_removes_speckle_fills_pinholes_and_keeps_straight_edges() {
        // A 6 × 4 block with a pinhole at (2, 1), plus an isolated pixel far away.
        let mut px: Vec<(i64, i64)> = (0..4)
            .flat_map(|r| (0..6).map(move |c| (c, r)))
            .filter(|&p| p != (2, 1))
            .collect();
        px.push((10, 10));
        let everywhere = |_: i64, _: i64| true;
        let out = majority_smooth(&px, &everywhere);
        // The pinhole fills, the isolated pixel goes, the four corners erode (4 of 9), and
        // nothing grows outside the block's straight edges (at most 3 of 9).
        let mut want: Vec<(i64, i64)> = (0..4)
            .flat_map(|r| (0..6).map(move |c| (c, r)))
            .filter(|p| ![(0, 0), (5, 0), (0, 3), (5, 3)].contains(p))
            .collect();
        want.sort_by_key(|&(c, r)| (r, c));
        assert_eq!(out, want);
        // The region bounds the result: nothing right of column 3.
        let left = |c: i64, _: i64| c <= 3;
        assert!(majority_smooth(&px, &left).iter().all(|&(c, _)| c <= 3));
        // When the block is the whole region, its corners stay: outside pixels do not vote.
        let block = |c: i64, r: i64| (0..6).contains(&c) && (0..4).contains(&r);
        let mut whole: Vec<(i64, i64)> = (0..4).flat_map(|r| (0..6).map(move |c| (c, r))).collect();
        whole.sort_by_key(|&(c, r)| (r, c));
        assert_eq!(majority_smooth(&px, &block), whole);
        assert!(majority_smooth(&[], &everywhere).is_empty());
    }

    #[test]
    fn an_l_shape_keeps_every_pixel_edge() {
        let px = vec![(0, 0), (0, 1), (0, 2), (1, 2), (2, 2)];
        let rings = outline(&components(&px)[0]);
        assert_eq!(rings.len(), 1);
        assert_eq!(signed_area2(&rings[0]).abs(), 10);
        assert_eq!(rings[0].len(), 7, "6 corners + closing point");
    }

    #[test]
    fn a_ring_of_pixels_touching_itself_diagonally_stays_valid() {
        // A component whose outline passes through one vertex twice.
        let px = vec![
            (0, 0),
            (1, 0),
            (2, 0),
            (0, 1),
            (2, 1),
            (0, 2),
            (1, 2),
            (3, 1),
            (3, 2),
        ];
        let comps = components(&px);
        assert_eq!(comps.len(), 1);
        let rings = outline(&comps[0]);
        let net: i64 = rings.iter().map(|r| signed_area2(r)).sum();
        assert_eq!(net.abs(), 2 * px.len() as i64);
        // The hole (1, 1) touches the outside at (2, 2): an exterior and a hole.
        assert_eq!(outline_checked(&px), vec![2]);
    }
}
