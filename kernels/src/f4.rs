//! `F4`, four `f32` lanes, the one vocabulary the element-wise kernels are written in.
//!
//! Why not plain loops: in the browser build no plain loop of this crate comes out as simd128 code. The app
//! crate links everything with fat LTO at a size opt-level, and loop vectorisation follows the level of the
//! crate that links (checked in the linked .wasm with wasm-dis: GELU, the softmax, LayerNorm, the bias add and
//! the convolution's taps were all scalar, a third of a forward pass). Explicit SIMD does not depend on the
//! vectoriser. So on wasm32 with simd128 `F4` is one `v128` and each method one instruction; elsewhere it is
//! `[f32; 4]` and each method a loop over the lanes (which native builds at opt-level 3 vectorise). Both give
//! the same bits: every method is one IEEE operation per lane, with no fused multiply-add.
//!
//! Masks are `F4`s whose lanes are all ones or all zeros, as simd128's comparisons make them.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::*;

    #[derive(Clone, Copy, Debug)]
    pub struct F4(v128);

    impl F4 {
        #[inline(always)]
        pub fn splat(x: f32) -> F4 {
            F4(f32x4_splat(x))
        }
        /// The first four values of `s` (which must hold at least four).
        #[inline(always)]
        pub fn load(s: &[f32]) -> F4 {
            let s: &[f32; 4] = s[..4].try_into().expect("four values");
            // SAFETY: `s` is four readable f32s (16 bytes); `v128_load` has no alignment requirement.
            F4(unsafe { v128_load(s.as_ptr().cast()) })
        }
        /// Writes the four lanes into the first four values of `s`.
        #[inline(always)]
        pub fn store(self, s: &mut [f32]) {
            let s: &mut [f32; 4] = (&mut s[..4]).try_into().expect("four values");
            // SAFETY: `s` is four writable f32s (16 bytes); `v128_store` has no alignment requirement.
            unsafe { v128_store(s.as_mut_ptr().cast(), self.0) }
        }
        #[inline(always)]
        pub fn lanes(self) -> [f32; 4] {
            [
                f32x4_extract_lane::<0>(self.0),
                f32x4_extract_lane::<1>(self.0),
                f32x4_extract_lane::<2>(self.0),
                f32x4_extract_lane::<3>(self.0),
            ]
        }
        #[inline(always)]
        pub fn add(self, o: F4) -> F4 {
            F4(f32x4_add(self.0, o.0))
        }
        #[inline(always)]
        pub fn sub(self, o: F4) -> F4 {
            F4(f32x4_sub(self.0, o.0))
        }
        #[inline(always)]
        pub fn mul(self, o: F4) -> F4 {
            F4(f32x4_mul(self.0, o.0))
        }
        #[inline(always)]
        pub fn div(self, o: F4) -> F4 {
            F4(f32x4_div(self.0, o.0))
        }
        #[inline(always)]
        pub fn abs(self) -> F4 {
            F4(f32x4_abs(self.0))
        }
        #[inline(always)]
        pub fn neg(self) -> F4 {
            F4(f32x4_neg(self.0))
        }
        /// Lanes where `self > o` (false where either is NaN).
        #[inline(always)]
        pub fn gt(self, o: F4) -> F4 {
            F4(f32x4_gt(self.0, o.0))
        }
        #[inline(always)]
        pub fn lt(self, o: F4) -> F4 {
            F4(f32x4_lt(self.0, o.0))
        }
        #[inline(always)]
        pub fn ge(self, o: F4) -> F4 {
            F4(f32x4_ge(self.0, o.0))
        }
        #[inline(always)]
        pub fn eq(self, o: F4) -> F4 {
            F4(f32x4_eq(self.0, o.0))
        }
        /// `a` where `mask` is set, else `b`, lane by lane.
        #[inline(always)]
        pub fn select(mask: F4, a: F4, b: F4) -> F4 {
            F4(v128_bitselect(a.0, b.0, mask.0))
        }
        /// `2^n` for `n` = the bits of `k` minus the bits of `round`, lane by lane: the exponent step of
        /// `exp4`, where `k = x + round` holds the integer `n` in its low mantissa bits.
        #[inline(always)]
        pub fn pow2_rounded(k: F4, round: f32) -> F4 {
            let n = i32x4_sub(k.0, i32x4_splat(round.to_bits() as i32));
            F4(i32x4_shl(i32x4_add(n, i32x4_splat(127)), 23))
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod imp {
    #[derive(Clone, Copy, Debug)]
    pub struct F4([f32; 4]);

    #[inline(always)]
    fn mask(b: bool) -> f32 {
        f32::from_bits(if b { u32::MAX } else { 0 })
    }

    impl F4 {
        #[inline(always)]
        fn zip(self, o: F4, f: impl Fn(f32, f32) -> f32) -> F4 {
            F4([f(self.0[0], o.0[0]), f(self.0[1], o.0[1]), f(self.0[2], o.0[2]), f(self.0[3], o.0[3])])
        }
        #[inline(always)]
        pub fn splat(x: f32) -> F4 {
            F4([x; 4])
        }
        #[inline(always)]
        pub fn load(s: &[f32]) -> F4 {
            F4(s[..4].try_into().expect("four values"))
        }
        #[inline(always)]
        pub fn store(self, s: &mut [f32]) {
            s[..4].copy_from_slice(&self.0);
        }
        #[inline(always)]
        pub fn lanes(self) -> [f32; 4] {
            self.0
        }
        #[inline(always)]
        pub fn add(self, o: F4) -> F4 {
            self.zip(o, |a, b| a + b)
        }
        #[inline(always)]
        pub fn sub(self, o: F4) -> F4 {
            self.zip(o, |a, b| a - b)
        }
        #[inline(always)]
        pub fn mul(self, o: F4) -> F4 {
            self.zip(o, |a, b| a * b)
        }
        #[inline(always)]
        pub fn div(self, o: F4) -> F4 {
            self.zip(o, |a, b| a / b)
        }
        #[inline(always)]
        pub fn abs(self) -> F4 {
            F4(self.0.map(f32::abs))
        }
        #[inline(always)]
        pub fn neg(self) -> F4 {
            F4(self.0.map(|a| -a))
        }
        #[inline(always)]
        pub fn gt(self, o: F4) -> F4 {
            self.zip(o, |a, b| mask(a > b))
        }
        #[inline(always)]
        pub fn lt(self, o: F4) -> F4 {
            self.zip(o, |a, b| mask(a < b))
        }
        #[inline(always)]
        pub fn ge(self, o: F4) -> F4 {
            self.zip(o, |a, b| mask(a >= b))
        }
        #[inline(always)]
        pub fn eq(self, o: F4) -> F4 {
            self.zip(o, |a, b| mask(a == b))
        }
        #[inline(always)]
        pub fn select(mask: F4, a: F4, b: F4) -> F4 {
            let pick =
                |m: f32, a: f32, b: f32| f32::from_bits((m.to_bits() & a.to_bits()) | (!m.to_bits() & b.to_bits()));
            F4([
                pick(mask.0[0], a.0[0], b.0[0]),
                pick(mask.0[1], a.0[1], b.0[1]),
                pick(mask.0[2], a.0[2], b.0[2]),
                pick(mask.0[3], a.0[3], b.0[3]),
            ])
        }
        #[inline(always)]
        pub fn pow2_rounded(k: F4, round: f32) -> F4 {
            F4(k.0.map(|k| {
                let n = (k.to_bits() as i32).wrapping_sub(round.to_bits() as i32);
                f32::from_bits((n.wrapping_add(127) as u32) << 23)
            }))
        }
    }
}

pub use imp::F4;

impl F4 {
    /// Up to four values of `s`, the missing lanes `fill`: a slice's tail read as a whole vector.
    #[inline(always)]
    pub fn load_partial(s: &[f32], fill: f32) -> F4 {
        // Lane by lane: `copy_from_slice` of up to three values was a call to `memcpy` each time.
        let mut v = [fill; 4];
        for (v, &x) in v.iter_mut().zip(s) {
            *v = x;
        }
        F4::load(&v)
    }
    /// The first `s.len()` (at most four) lanes into `s`.
    #[inline(always)]
    pub fn store_partial(self, s: &mut [f32]) {
        for (x, v) in s.iter_mut().zip(self.lanes()) {
            *x = v;
        }
    }
    /// The lanes added in the order `(0 + 1) + (2 + 3)`.
    #[inline(always)]
    pub fn sum(self) -> f32 {
        let l = self.lanes();
        (l[0] + l[1]) + (l[2] + l[3])
    }
    /// The largest lane (NaN lanes are skipped; -inf for none).
    #[inline(always)]
    pub fn max_lane(self) -> f32 {
        self.lanes().into_iter().fold(f32::NEG_INFINITY, |m, x| if x > m { x } else { m })
    }
    /// Lane by lane, `o` where it is greater, else `self` (so a NaN in `o` is skipped).
    #[inline(always)]
    pub fn max(self, o: F4) -> F4 {
        F4::select(o.gt(self), o, self)
    }
}

/// `f` applied to `x` four lanes at a time, into `out` (the same length); the tail as a padded vector, so every
/// value goes through the same arithmetic.
#[inline(always)]
pub fn map(x: &[f32], out: &mut [f32], f: impl Fn(F4) -> F4) {
    assert_eq!(x.len(), out.len(), "map: input and output lengths differ");
    let mut xs = x.chunks_exact(4);
    let mut os = out.chunks_exact_mut(4);
    for (x, o) in (&mut xs).zip(&mut os) {
        f(F4::load(x)).store(o);
    }
    let (x, o) = (xs.remainder(), os.into_remainder());
    if !x.is_empty() {
        f(F4::load_partial(x, 0.0)).store_partial(o);
    }
}

/// `f` applied in place to `v`, four lanes at a time (the tail as a padded vector).
#[inline(always)]
pub fn map_in_place(v: &mut [f32], f: impl Fn(F4) -> F4) {
    let mut chunks = v.chunks_exact_mut(4);
    for c in &mut chunks {
        f(F4::load(c)).store(c);
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        f(F4::load_partial(rest, 0.0)).store_partial(rest);
    }
}

/// `f` applied in place to `v`, four lanes at a time (the tail padded with `fill`); returns the sum of what `f`
/// wrote, in four partial sums (one vector, then `F4::sum`), the padding excluded. One vector, not two: with
/// the softmax's exponential as `f`, two in flight need more than the 16 vector registers V8 gives a wasm
/// function, and the softmax ran slower (the peer benchmark's cached runs).
#[inline(always)]
pub fn map_sum(v: &mut [f32], fill: f32, f: impl Fn(F4) -> F4) -> f32 {
    let zero = F4::splat(0.0);
    let mut acc = zero;
    let mut chunks = v.chunks_exact_mut(4);
    for c in &mut chunks {
        let a = f(F4::load(c));
        a.store(c);
        acc = acc.add(a);
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let a = f(F4::load_partial(rest, fill));
        a.store_partial(rest);
        acc = acc.add(F4::select(lane_below(rest.len()), a, zero));
    }
    acc.sum()
}

/// A mask of the first `n` lanes (n <= 4).
#[inline(always)]
fn lane_below(n: usize) -> F4 {
    let on = f32::from_bits(u32::MAX);
    let mut m = [0.0f32; 4];
    m[..n].fill(on);
    F4::load(&m)
}

/// The sum of `f` over `x`'s values read four at a time, in eight partial sums as `map_sum` keeps them; the tail
/// padded with `fill`, whose lanes are left out of the sum.
#[inline(always)]
pub fn fold_sum(x: &[f32], fill: f32, f: impl Fn(F4) -> F4) -> f32 {
    let zero = F4::splat(0.0);
    let (mut lo, mut hi) = (zero, zero);
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        lo = lo.add(f(F4::load(&c[..4])));
        hi = hi.add(f(F4::load(&c[4..])));
    }
    let rest = chunks.remainder();
    let (first, second) = rest.split_at(rest.len().min(4));
    if !first.is_empty() {
        lo = lo.add(F4::select(lane_below(first.len()), f(F4::load_partial(first, fill)), zero));
    }
    if !second.is_empty() {
        hi = hi.add(F4::select(lane_below(second.len()), f(F4::load_partial(second, fill)), zero));
    }
    lo.add(hi).sum()
}

/// The largest of `x` (NaNs skipped; -inf for none), in two vectors of running maxima.
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let ninf = F4::splat(f32::NEG_INFINITY);
    let (mut lo, mut hi) = (ninf, ninf);
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        lo = lo.max(F4::load(&c[..4]));
        hi = hi.max(F4::load(&c[4..]));
    }
    let rest = chunks.remainder();
    let (first, second) = rest.split_at(rest.len().min(4));
    lo = lo.max(F4::load_partial(first, f32::NEG_INFINITY));
    hi = hi.max(F4::load_partial(second, f32::NEG_INFINITY));
    lo.max(hi).max_lane()
}
