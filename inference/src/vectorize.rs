//! Pixels → polygons: 4-connected components of a mask, each outlined along pixel edges
//! (exterior rings counter-clockwise in world space with y up, holes clockwise, as
//! RFC 7946 recommends).

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
/// (first point repeated) and have collinear points removed.
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
                // At a vertex where two diagonal pixels touch, turn so as to keep the
                // component's own pixel on the left (4-connectivity).
                let dir = (cur.0 - prev.0, cur.1 - prev.1);
                let pick = if outs.len() == 1 {
                    0
                } else {
                    let left = (dir.1, -dir.0);
                    outs.iter()
                        .position(|&o| (o.0 - cur.0, o.1 - cur.1) == left)
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
    }
}
