//! The land-cover model's fused per-pixel inference kernel.
//!
//! [`PixelKernel`] runs the same network as [`crate::nets::LandCoverMlp::forward`] — Burn's
//! forward stays the reference, and the weights are the Burn model's own, copied out once
//! when the model is loaded — but straight from band planes to class codes: DN → reflectance
//! → the 5 indices → normalisation → (Linear → ReLU)* → Linear → softmax → argmax and
//! confidence, in blocks of a few dozen pixels that live in registers and a few KiB of
//! scratch, with no per-pixel allocation and no copies of the image.
//!
//! Pixels sit in SIMD lanes (16 with AVX-512F, 8 with AVX2 + FMA, chosen at run time; 1 in
//! the portable fallback), so features are computed from the band planes as they are
//! stored, and each weight is broadcast once for a whole block. Every output of a layer is
//! computed as Burn's NdArray backend does (matrixmultiply's FMA kernels: a fused
//! multiply-add chain over the inputs in order, from zero, then the bias), the features with
//! the same divisions as [`crate::features::pixel_features`], so the logits agree with Burn's
//! to the last bit or nearly; softmax uses a polynomial e^x (relative error < 2e-7). On the
//! 28,958 real pixels of the training tables every class code equals Burn's and the largest
//! confidence difference is 1.2e-7 (AVX-512 and AVX2) or 8.9e-7 (portable): tests in
//! `models/tests/kernel.rs`, `inference/tests/kernel_matches_burn.rs` (the Slovenia scene,
//! the BigEarthNet patches) and `inference/tests/season_e2e.rs` (the same season analysis,
//! parcel evidence and patches, with either path).
//!
//! Inputs that a ReLU set to 0 for every pixel of a block are left out of the next layer
//! (about a fifth of them on a generated season: neighbouring pixels switch the same hidden
//! units off); adding 0 changes no sum, so this changes no result. On one core of this
//! project's VM the kernel classifies 4.8 M pixels/s with AVX-512 (about 80 % of the
//! machine's measured FMA peak) and 2.7 M/s with AVX2.

mod lanes;

use lanes::{exp, Lanes, Scalar};

use crate::features::{band, N_BANDS, N_PIXEL_FEATURES, REFLECTANCE_SCALE};
use crate::nets::LandCoverMlp;
use crate::{ModelError, Result};

/// Which instruction set the kernel runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// 16 lanes (x86-64 AVX-512F).
    Avx512,
    /// 8 lanes (x86-64 AVX2 + FMA).
    Avx2,
    /// Plain Rust, one pixel at a time.
    Portable,
}

impl Isa {
    /// The best one this CPU has.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Whether this CPU can run it.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Outputs computed together per weight pass (accumulators per pixel block).
    fn group(self) -> usize {
        match self {
            Isa::Avx512 => 8,
            Isa::Avx2 | Isa::Portable => 4,
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2+fma",
            Isa::Portable => "portable",
        })
    }
}

/// One Linear layer as plain matrices: `weight` is `d_in × width` row-major (Burn's
/// `[d_in, d_out]` layout, columns past `d_out` zero), `bias` has `width` values.
#[derive(Clone, Debug)]
struct Dense {
    d_in: usize,
    width: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
    relu: bool,
}

/// The land-cover network as a fused CPU kernel (see the module documentation).
#[derive(Clone, Debug)]
pub struct PixelKernel {
    means: [f32; N_PIXEL_FEATURES],
    stds: [f32; N_PIXEL_FEATURES],
    layers: Vec<Dense>,
    n_classes: usize,
    /// The widest activation (features or a layer's padded outputs).
    max_width: usize,
    isa: Isa,
}

fn tensor_values<const D: usize>(t: burn::tensor::Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))
}

impl PixelKernel {
    /// Copy the network's weights out of Burn (once) with the card's normalisation.
    pub fn new(net: &LandCoverMlp, means: &[f32], stds: &[f32]) -> Result<Self> {
        Self::with_isa(net, means, stds, Isa::detect())
    }

    /// As [`new`](Self::new), with a given instruction set (tests compare them); an
    /// instruction set this CPU lacks is an error.
    pub fn with_isa(net: &LandCoverMlp, means: &[f32], stds: &[f32], isa: Isa) -> Result<Self> {
        if !isa.is_available() {
            return Err(ModelError::InvalidConfig(format!(
                "this CPU cannot run the {isa} kernel"
            )));
        }
        let (Ok(means), Ok(stds)) = (
            <[f32; N_PIXEL_FEATURES]>::try_from(means),
            <[f32; N_PIXEL_FEATURES]>::try_from(stds),
        ) else {
            return Err(ModelError::ShapeMismatch {
                what: "normalisation".into(),
                expected: format!("{N_PIXEL_FEATURES} means and stds"),
                got: format!("{} and {}", means.len(), stds.len()),
            });
        };
        let group = isa.group();
        let mut layers = Vec::new();
        let mut d_prev = N_PIXEL_FEATURES;
        let n_hidden = net.hidden.len();
        for (i, linear) in net.hidden.iter().chain([&net.output]).enumerate() {
            let w = linear.weight.val();
            let [d_in, d_out] = w.dims();
            if d_in != d_prev || d_out == 0 {
                return Err(ModelError::ShapeMismatch {
                    what: format!("layer {i} of the land-cover network"),
                    expected: format!("[{d_prev}, n > 0]"),
                    got: format!("[{d_in}, {d_out}]"),
                });
            }
            let wv = tensor_values(w)?;
            let bv = match &linear.bias {
                Some(b) => tensor_values(b.val())?,
                None => vec![0.0; d_out],
            };
            let width = d_out.div_ceil(group) * group;
            let mut weight = vec![0f32; d_in * width];
            for k in 0..d_in {
                weight[k * width..k * width + d_out]
                    .copy_from_slice(&wv[k * d_out..(k + 1) * d_out]);
            }
            let mut bias = vec![0f32; width];
            bias[..d_out].copy_from_slice(&bv[..d_out]);
            layers.push(Dense {
                d_in,
                width,
                weight,
                bias,
                relu: i < n_hidden,
            });
            d_prev = d_out;
        }
        let max_width = layers
            .iter()
            .map(|l| l.width)
            .chain([N_PIXEL_FEATURES])
            .max()
            .unwrap_or(N_PIXEL_FEATURES);
        Ok(Self {
            means,
            stds,
            layers,
            n_classes: d_prev,
            max_width,
            isa,
        })
    }

    /// The instruction set it runs with.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Classify pixels given as band planes: `planes[b][i]` is the DN (reflectance × 10 000)
    /// of band [`crate::features::BANDS`]`[b]` at pixel `i`. Pixels that `valid` marks false,
    /// or with a non-finite DN, get code 0 and confidence 0; the others get class code
    /// (index + 1) and the max softmax probability. Runs on the calling thread.
    pub fn classify_planes(
        &self,
        planes: &[&[f32]; N_BANDS],
        valid: Option<&[bool]>,
        codes: &mut [u8],
        confidence: &mut [f32],
    ) -> Result<()> {
        let n = codes.len();
        if confidence.len() != n
            || planes.iter().any(|p| p.len() != n)
            || valid.is_some_and(|v| v.len() != n)
        {
            return Err(ModelError::ShapeMismatch {
                what: "band planes, validity mask and outputs".into(),
                expected: format!("{n} pixels each"),
                got: format!(
                    "planes {:?}, mask {:?}, confidence {}",
                    planes.iter().map(|p| p.len()).collect::<Vec<_>>(),
                    valid.map(<[bool]>::len),
                    confidence.len()
                ),
            });
        }
        let out = Outputs {
            valid,
            codes,
            confidence,
        };
        match self.isa {
            // SAFETY: `isa` was checked to be available when the kernel was built.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { run_avx512(self, planes, out) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { run_avx2(self, planes, out) },
            // SAFETY: the portable lanes run on every CPU.
            _ => unsafe { run::<Scalar, 4, 4>(self, planes, out) },
        }
        Ok(())
    }
}

struct Outputs<'a> {
    valid: Option<&'a [bool]>,
    codes: &'a mut [u8],
    confidence: &'a mut [f32],
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512(k: &PixelKernel, planes: &[&[f32]; N_BANDS], out: Outputs<'_>) {
    // SAFETY: this function is only entered when AVX-512F is available.
    unsafe { run::<lanes::Avx512, 3, 8>(k, planes, out) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(k: &PixelKernel, planes: &[&[f32]; N_BANDS], out: Outputs<'_>) {
    // SAFETY: this function is only entered when AVX2 and FMA are available.
    unsafe { run::<lanes::Avx2, 2, 4>(k, planes, out) }
}

/// The kernel over all pixels, `B` vectors of `V::N` pixels at a time, `G` outputs per
/// weight pass.
///
/// # Safety
/// `V`'s instruction set is available; `G` is the group `k` was padded for.
#[inline(always)]
unsafe fn run<V: Lanes, const B: usize, const G: usize>(
    k: &PixelKernel,
    planes: &[&[f32]; N_BANDS],
    out: Outputs<'_>,
) {
    let m = B * V::N;
    let n = out.codes.len();
    let mut act_a = vec![0f32; k.max_width * m];
    let mut act_b = vec![0f32; k.max_width * m];
    let mut active = vec![0u32; k.max_width];
    // The last, partial block is copied here, padded with NaN (so it is invalid).
    let mut tail = vec![f32::NAN; N_BANDS * m];
    let Outputs {
        valid,
        codes,
        confidence,
    } = out;
    let mut start = 0;
    while start < n {
        let len = m.min(n - start);
        let mut ptrs = [std::ptr::null::<f32>(); N_BANDS];
        if len == m {
            for (p, plane) in ptrs.iter_mut().zip(planes) {
                *p = plane[start..].as_ptr();
            }
        } else {
            for (b, plane) in planes.iter().enumerate() {
                let t = &mut tail[b * m..(b + 1) * m];
                t[..len].copy_from_slice(&plane[start..start + len]);
                t[len..].fill(f32::NAN);
            }
            for (b, p) in ptrs.iter_mut().enumerate() {
                *p = tail[b * m..].as_ptr();
            }
        }
        let block = BlockOut {
            valid: valid.map(|v| &v[start..start + len]),
            codes: &mut codes[start..start + len],
            confidence: &mut confidence[start..start + len],
        };
        // SAFETY: every pointer in `ptrs` is readable for `m` values; the scratch
        // buffers hold `max_width × m` values; the instruction set is available (caller).
        unsafe { block_kernel::<V, B, G>(k, &ptrs, &mut act_a, &mut act_b, &mut active, block) };
        start += len;
    }
}

struct BlockOut<'a> {
    valid: Option<&'a [bool]>,
    codes: &'a mut [u8],
    confidence: &'a mut [f32],
}

/// Normalised difference as [`crate::features::normalized_difference`]: `(a − b)/(a + b)`
/// clamped to [−1, 1]; 0 where `a + b` is under 1e-9 in magnitude or not finite.
#[inline(always)]
fn normalized_difference<V: Lanes>(a: V, b: V) -> V {
    let s = a.add(b);
    let d = a.sub(b).div(s).min(V::splat(1.0)).max(V::splat(-1.0));
    let mag = s.abs();
    let ok = V::and(mag.ge(V::splat(1e-9)), mag.lt(V::splat(f32::INFINITY)));
    V::select(ok, d, V::splat(0.0))
}

/// One block of `B × V::N` pixels.
///
/// # Safety
/// `ptrs[b]` is readable for `B × V::N` values; `act_a`, `act_b` hold at least
/// `max_width × B × V::N`; `V`'s instruction set is available.
#[inline(always)]
unsafe fn block_kernel<V: Lanes, const B: usize, const G: usize>(
    k: &PixelKernel,
    ptrs: &[*const f32; N_BANDS],
    act_a: &mut [f32],
    act_b: &mut [f32],
    active: &mut [u32],
    out: BlockOut<'_>,
) {
    let m = B * V::N;
    // Features, [feature][vector][lane], and the non-finite check (x − x is 0 for finite x).
    let mut finite = [V::splat(0.0); B];
    let scale = V::splat(REFLECTANCE_SCALE);
    let fa = act_a.as_mut_ptr();
    for (v, fin) in finite.iter_mut().enumerate() {
        let mut r = [V::splat(0.0); N_BANDS];
        for (b, rb) in r.iter_mut().enumerate() {
            // SAFETY: `ptrs[b]` is readable for `m` values (caller).
            let x = unsafe { V::load(ptrs[b].add(v * V::N)) };
            *fin = fin.add(x.sub(x));
            *rb = x.div(scale);
        }
        let (blue, green, red) = (r[band::B02], r[band::B03], r[band::B04]);
        let (nir, swir1) = (r[band::B08], r[band::B11]);
        let idx = [
            normalized_difference(nir, red),
            normalized_difference(green, nir),
            normalized_difference(green, swir1),
            normalized_difference(swir1.add(red), nir.add(blue)),
            normalized_difference(swir1, nir),
        ];
        for f in 0..N_PIXEL_FEATURES {
            let raw = if f < N_BANDS { r[f] } else { idx[f - N_BANDS] };
            let z = raw.sub(V::splat(k.means[f])).div(V::splat(k.stds[f]));
            // SAFETY: `act_a` holds `max_width × m ≥ N_PIXEL_FEATURES × m` values.
            unsafe { z.store(fa.add(f * m + v * V::N)) };
        }
    }
    // Skip the network when no pixel of the block is to be classified.
    let mut fin_lanes = [0f32; 64];
    for (v, fin) in finite.iter().enumerate() {
        // SAFETY: `fin_lanes` holds 64 ≥ B × V::N values (B ≤ 4, N ≤ 16).
        unsafe { fin.store(fin_lanes.as_mut_ptr().add(v * V::N)) };
    }
    let len = out.codes.len();
    let wanted = |i: usize| fin_lanes[i] == 0.0 && out.valid.is_none_or(|v| v[i]);
    if !(0..len).any(wanted) {
        out.codes.fill(0);
        out.confidence.fill(0.0);
        return;
    }
    // The layers, ping-ponging between the two buffers; inputs that a ReLU made 0 for
    // the whole block are skipped.
    let (mut src, mut dst) = (act_a, act_b);
    let mut after_relu = false;
    for layer in &k.layers {
        // SAFETY: both buffers hold `max_width × m` values, `layer.width ≤ max_width`,
        // `active` holds `max_width ≥ d_in` indices.
        unsafe { dense::<V, B, G>(layer, src.as_ptr(), dst.as_mut_ptr(), m, after_relu, active) };
        after_relu = layer.relu;
        std::mem::swap(&mut src, &mut dst);
    }
    // Softmax over the logits, argmax (the first of equal maxima, as `decide`) and its
    // probability.
    let logits = src.as_mut_ptr();
    let mut best_p = [0f32; 64];
    let mut best_i = [0f32; 64];
    for v in 0..B {
        let at = |c: usize| c * m + v * V::N;
        // SAFETY (the loads and stores below): rows `c < n_classes ≤ max_width` of `src`.
        let mut max = unsafe { V::load(logits.add(at(0))) };
        for c in 1..k.n_classes {
            max = max.max(unsafe { V::load(logits.add(at(c))) });
        }
        let mut sum = V::splat(0.0);
        for c in 0..k.n_classes {
            let e = exp(unsafe { V::load(logits.add(at(c))) }.sub(max));
            sum = sum.add(e);
            unsafe { e.store(logits.add(at(c))) };
        }
        let mut best = unsafe { V::load(logits.add(at(0))) }.div(sum);
        let mut arg = V::splat(0.0);
        for c in 1..k.n_classes {
            let p = unsafe { V::load(logits.add(at(c))) }.div(sum);
            let gt = p.gt(best);
            best = V::select(gt, p, best);
            arg = V::select(gt, V::splat(c as f32), arg);
        }
        // SAFETY: 64 ≥ B × V::N.
        unsafe {
            best.store(best_p.as_mut_ptr().add(v * V::N));
            arg.store(best_i.as_mut_ptr().add(v * V::N));
        }
    }
    for i in 0..len {
        if wanted(i) {
            out.codes[i] = best_i[i] as u8 + 1;
            out.confidence[i] = best_p[i];
        } else {
            out.codes[i] = 0;
            out.confidence[i] = 0.0;
        }
    }
}

/// One Linear layer (+ ReLU) over a block: `dst[o][·] = act(Σ_k src[k][·] · W[k][o] + b[o])`,
/// the sum a fused multiply-add chain over `k` in order from zero, as matrixmultiply's
/// kernels compute it for Burn; then the bias.
///
/// After a ReLU many inputs are 0 for every pixel of a block (neighbouring pixels switch
/// the same hidden units off): when `skip_zeros` is set those inputs are left out of the
/// chain, which changes nothing (a multiply-add of 0 leaves the sum as it was).
///
/// # Safety
/// `src` holds `layer.d_in × m` values, `dst` `layer.width × m`; `m = B × V::N`;
/// `layer.width` is a multiple of `G`; `active` has room for `layer.d_in` indices; `V`'s
/// instruction set is available.
#[inline(always)]
unsafe fn dense<V: Lanes, const B: usize, const G: usize>(
    layer: &Dense,
    src: *const f32,
    dst: *mut f32,
    m: usize,
    skip_zeros: bool,
    active: &mut [u32],
) {
    let w = layer.weight.as_ptr();
    let zero = V::splat(0.0);
    let mut n_active = 0;
    for kk in 0..layer.d_in {
        // SAFETY: row `kk < d_in` of `src` (caller).
        let live = !skip_zeros
            || (0..B).any(|v| unsafe { V::load(src.add(kk * m + v * V::N)) }.any_nonzero());
        if live {
            active[n_active] = kk as u32;
            n_active += 1;
        }
    }
    let active = &active[..n_active];
    let mut g = 0;
    while g < layer.width {
        let mut acc = [[zero; B]; G];
        for &kk in active {
            let kk = kk as usize;
            let mut x = [zero; B];
            for (v, xv) in x.iter_mut().enumerate() {
                // SAFETY: row `kk < d_in` of `src` (caller).
                *xv = unsafe { V::load(src.add(kk * m + v * V::N)) };
            }
            // SAFETY: `kk × width + g + j < d_in × width` since `g + G ≤ width`.
            let wrow = unsafe { w.add(kk * layer.width + g) };
            for (j, accj) in acc.iter_mut().enumerate() {
                let wj = V::splat(unsafe { *wrow.add(j) });
                for (a, xv) in accj.iter_mut().zip(&x) {
                    *a = xv.mul_add(wj, *a);
                }
            }
        }
        for (j, accj) in acc.iter().enumerate() {
            let bias = V::splat(layer.bias[g + j]);
            for (v, a) in accj.iter().enumerate() {
                let mut y = a.add(bias);
                if layer.relu {
                    y = y.max(zero);
                }
                // SAFETY: row `g + j < width` of `dst` (caller).
                unsafe { y.store(dst.add((g + j) * m + v * V::N)) };
            }
        }
        g += G;
    }
}
