//! SIMD lanes for the pixel kernel: one vector of `N` pixels' values of one quantity.
//!
//! Three implementations: AVX-512F (16 lanes), AVX2 + FMA (8 lanes) and a portable scalar
//! one (1 lane). The vector types are only ever used inside the kernel's entry points, which
//! are entered after `is_x86_feature_detected!` has confirmed the instruction set, and every
//! method is `#[inline(always)]` so that it is compiled inside those `#[target_feature]`
//! functions.

/// A vector of `N` `f32` lanes.
///
/// # Safety
/// Implementations for an instruction set may only be used (any method, including `splat`)
/// on a CPU that has it; the kernel's `#[target_feature]` entry points guarantee this.
pub(crate) unsafe trait Lanes: Copy {
    /// Lanes per vector.
    const N: usize;
    /// A per-lane comparison result.
    type Mask: Copy;

    /// # Safety
    /// `p` is valid for reading `N` values.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p` is valid for writing `N` values.
    unsafe fn store(self, p: *mut f32);
    fn splat(v: f32) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn min(self, o: Self) -> Self;
    fn max(self, o: Self) -> Self;
    /// `self × b + c`, rounded once where the instruction set has a fused multiply-add.
    fn mul_add(self, b: Self, c: Self) -> Self;
    fn abs(self) -> Self;
    /// Round to the nearest integer (ties to even).
    fn round(self) -> Self;
    /// 2^self for integer-valued `self` in [-126, 127].
    fn pow2i(self) -> Self;
    fn gt(self, o: Self) -> Self::Mask;
    fn ge(self, o: Self) -> Self::Mask;
    fn lt(self, o: Self) -> Self::Mask;
    fn and(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    /// `a` where `m` is set, else `b`.
    fn select(m: Self::Mask, a: Self, b: Self) -> Self;
    /// Whether any lane is other than ±0 (NaN counts as other).
    fn any_nonzero(self) -> bool;
}

/// e^x, lane by lane (Cephes' single-precision polynomial: relative error below 2e-7 on
/// the range used here, x ≤ 0).
#[inline(always)]
pub(crate) fn exp<V: Lanes>(x: V) -> V {
    let x = x.max(V::splat(-87.336_54)).min(V::splat(88.0));
    let n = x.mul(V::splat(std::f32::consts::LOG2_E)).round();
    let r = n.mul_add(V::splat(-0.693_359_4), x);
    let r = n.mul_add(V::splat(2.121_944_4e-4), r);
    let mut p = V::splat(1.987_569_1e-4);
    p = p.mul_add(r, V::splat(1.398_199_9e-3));
    p = p.mul_add(r, V::splat(8.333_452e-3));
    p = p.mul_add(r, V::splat(4.166_579_6e-2));
    p = p.mul_add(r, V::splat(1.666_666_5e-1));
    p = p.mul_add(r, V::splat(0.5));
    let y = p.mul_add(r.mul(r), r).add(V::splat(1.0));
    y.mul(n.pow2i())
}

/// One lane: the portable fallback.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalar(f32);

// SAFETY: plain Rust arithmetic, valid on every CPU.
unsafe impl Lanes for Scalar {
    const N: usize = 1;
    type Mask = bool;

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees `p` is readable.
        Scalar(unsafe { *p })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees `p` is writable.
        unsafe { *p = self.0 }
    }
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Scalar(v)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Scalar(self.0 + o.0)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Scalar(self.0 - o.0)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Scalar(self.0 * o.0)
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        Scalar(self.0 / o.0)
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        Scalar(if self.0 < o.0 { self.0 } else { o.0 })
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        Scalar(if self.0 > o.0 { self.0 } else { o.0 })
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // Where FMA is a native instruction (aarch64) use it, as the matrix products Burn
        // calls do there; elsewhere a multiply and an add (no slow software fma).
        #[cfg(target_arch = "aarch64")]
        {
            Scalar(self.0.mul_add(b.0, c.0))
        }
        #[cfg(not(target_arch = "aarch64"))]
        {
            Scalar(self.0 * b.0 + c.0)
        }
    }
    #[inline(always)]
    fn abs(self) -> Self {
        Scalar(self.0.abs())
    }
    #[inline(always)]
    fn round(self) -> Self {
        Scalar(self.0.round_ties_even())
    }
    #[inline(always)]
    fn pow2i(self) -> Self {
        Scalar(f32::from_bits((((self.0 as i32) + 127) << 23) as u32))
    }
    #[inline(always)]
    fn gt(self, o: Self) -> bool {
        self.0 > o.0
    }
    #[inline(always)]
    fn ge(self, o: Self) -> bool {
        self.0 >= o.0
    }
    #[inline(always)]
    fn lt(self, o: Self) -> bool {
        self.0 < o.0
    }
    #[inline(always)]
    fn and(a: bool, b: bool) -> bool {
        a && b
    }
    #[inline(always)]
    fn select(m: bool, a: Self, b: Self) -> Self {
        if m {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn any_nonzero(self) -> bool {
        self.0 != 0.0
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Lanes;
    use std::arch::x86_64::*;

    /// Eight lanes, AVX2 + FMA.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx2(__m256);

    // SAFETY: used only inside `#[target_feature(enable = "avx2,fma")]` functions entered
    // after runtime detection (see `kernel::Isa::detect`).
    unsafe impl Lanes for Avx2 {
        const N: usize = 8;
        type Mask = __m256;

        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: `p` is readable for 8 values (caller); AVX is available (trait contract).
            Avx2(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: as for `load`.
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY (every method below): AVX2 and FMA are available (trait contract).
            Avx2(unsafe { _mm256_set1_ps(v) })
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_sub_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_mul_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn div(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_div_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn min(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_min_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn max(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_max_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            Avx2(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn abs(self) -> Self {
            Avx2(unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0) })
        }
        #[inline(always)]
        fn round(self) -> Self {
            Avx2(unsafe {
                _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0)
            })
        }
        #[inline(always)]
        fn pow2i(self) -> Self {
            Avx2(unsafe {
                let i = _mm256_add_epi32(_mm256_cvtps_epi32(self.0), _mm256_set1_epi32(127));
                _mm256_castsi256_ps(_mm256_slli_epi32::<23>(i))
            })
        }
        #[inline(always)]
        fn gt(self, o: Self) -> __m256 {
            unsafe { _mm256_cmp_ps::<_CMP_GT_OQ>(self.0, o.0) }
        }
        #[inline(always)]
        fn ge(self, o: Self) -> __m256 {
            unsafe { _mm256_cmp_ps::<_CMP_GE_OQ>(self.0, o.0) }
        }
        #[inline(always)]
        fn lt(self, o: Self) -> __m256 {
            unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, o.0) }
        }
        #[inline(always)]
        fn and(a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_and_ps(a, b) }
        }
        #[inline(always)]
        fn select(m: __m256, a: Self, b: Self) -> Self {
            Avx2(unsafe { _mm256_blendv_ps(b.0, a.0, m) })
        }
        #[inline(always)]
        fn any_nonzero(self) -> bool {
            unsafe {
                let ne = _mm256_cmp_ps::<_CMP_NEQ_UQ>(self.0, _mm256_setzero_ps());
                _mm256_movemask_ps(ne) != 0
            }
        }
    }

    /// Sixteen lanes, AVX-512F.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx512(__m512);

    // SAFETY: used only inside `#[target_feature(enable = "avx512f")]` functions entered
    // after runtime detection (see `kernel::Isa::detect`).
    unsafe impl Lanes for Avx512 {
        const N: usize = 16;
        type Mask = __mmask16;

        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: `p` is readable for 16 values (caller); AVX-512F is available.
            Avx512(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: as for `load`.
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY (every method below): AVX-512F is available (trait contract).
            Avx512(unsafe { _mm512_set1_ps(v) })
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Avx512(unsafe { _mm512_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            Avx512(unsafe { _mm512_sub_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            Avx512(unsafe { _mm512_mul_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn div(self, o: Self) -> Self {
            Avx512(unsafe { _mm512_div_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn min(self, o: Self) -> Self {
            Avx512(unsafe { _mm512_min_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn max(self, o: Self) -> Self {
            Avx512(unsafe { _mm512_max_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            Avx512(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn abs(self) -> Self {
            Avx512(unsafe { _mm512_abs_ps(self.0) })
        }
        #[inline(always)]
        fn round(self) -> Self {
            Avx512(unsafe {
                _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0)
            })
        }
        #[inline(always)]
        fn pow2i(self) -> Self {
            Avx512(unsafe {
                let i = _mm512_add_epi32(_mm512_cvtps_epi32(self.0), _mm512_set1_epi32(127));
                _mm512_castsi512_ps(_mm512_slli_epi32::<23>(i))
            })
        }
        #[inline(always)]
        fn gt(self, o: Self) -> __mmask16 {
            unsafe { _mm512_cmp_ps_mask::<_CMP_GT_OQ>(self.0, o.0) }
        }
        #[inline(always)]
        fn ge(self, o: Self) -> __mmask16 {
            unsafe { _mm512_cmp_ps_mask::<_CMP_GE_OQ>(self.0, o.0) }
        }
        #[inline(always)]
        fn lt(self, o: Self) -> __mmask16 {
            unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, o.0) }
        }
        #[inline(always)]
        fn and(a: __mmask16, b: __mmask16) -> __mmask16 {
            a & b
        }
        #[inline(always)]
        fn select(m: __mmask16, a: Self, b: Self) -> Self {
            Avx512(unsafe { _mm512_mask_blend_ps(m, b.0, a.0) })
        }
        #[inline(always)]
        fn any_nonzero(self) -> bool {
            unsafe { _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(self.0, _mm512_setzero_ps()) != 0 }
        }
    }
}
