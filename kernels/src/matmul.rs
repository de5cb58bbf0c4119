//! The matrix product `c = a b` of the engine's forward passes in the browser (`[pos, d_in] x [d_in, d_out]`).
//!
//! Why our own: candle's matmul goes to the gemm crate, whose wasm path packs both operands on every call and
//! keeps a small register tile. A forward pass multiplies a few dozen rows of activations by a weight matrix that
//! is much larger (GPT-2 small's unembedding is 768 x 50,257), so the work is one streaming pass over the weights
//! per block of rows, and a product that reads the weights where they lie, in tiles that fit the registers,
//! measured faster in Chromium (`node tests/peers/peers.mjs`). Natively the gemm crate (AVX, FMA, threads) stays.
//!
//! The tile is `MR` rows of `a` by `NR` columns of `b`: 4 x 8, eight simd128 accumulators, which with the two
//! vectors of `b`, one broadcast value of `a` and a product fit the 16 vector registers V8 gives a wasm function
//! on x86-64. Measured in Chromium against the alternatives (interleaved, same page): 5 x 8 and a depth loop
//! unrolled twice both spill and were slower, and reading `b` in place was slower than copying each strip.
//! The depth is cut into `KC`-long pieces so that a strip of `b` (8 KB) stays in L1 while every tile of rows
//! passes over it.
//!
//! Sums run over the depth in order, one accumulator per output, so a result can differ from candle's (which
//! splits the sum differently) by float rounding only (tests/common/kernel_checks.rs bounds it).

/// Rows of `a` per tile.
const MR: usize = 4;
/// Columns of `b` per tile: two simd128 vectors.
const NR: usize = 8;
/// Depth per pass over a strip of `b`.
const KC: usize = 256;

/// `c = a b` for row-major `a` `[m, k]`, `b` `[k, n]` whose rows are `ldb` apart (`ldb >= n`: a column slice of a
/// wider matrix is read in place), and `c` `[m, n]` (overwritten).
///
/// Panics if a slice is shorter than its shape says.
// With the `relaxed-simd` feature every tile below is inlined into this function, so the fused multiply-add it
// enables (`lanes::madd`) is allowed there; such a .wasm validates only where the engine has relaxed SIMD.
#[cfg_attr(all(target_arch = "wasm32", feature = "relaxed-simd"), target_feature(enable = "relaxed-simd"))]
pub fn matmul(a: &[f32], m: usize, k: usize, b: &[f32], ldb: usize, n: usize, c: &mut [f32]) {
    assert!(a.len() >= m * k, "matmul: a holds {} values, not {m} x {k}", a.len());
    assert!(ldb >= n, "matmul: b's row stride {ldb} is below its width {n}");
    assert!(k == 0 || b.len() >= (k - 1) * ldb + n, "matmul: b holds {} values, not {k} rows of {ldb}", b.len());
    assert!(c.len() >= m * n, "matmul: c holds {} values, not {m} x {n}", c.len());
    c[..m * n].fill(0.0);
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let full_n = n / NR * NR;
    let tiles = m.div_ceil(MR);
    // `a`'s rows for one depth piece, interleaved by tile, `[tile][p][MR]` (the last tile padded with zeros): a
    // tile's values for one `p` are then adjacent, and the loop keeps one pointer for them instead of one per row.
    let mut packed_a = vec![0f32; tiles * KC.min(k) * MR];
    // One strip of `b` (`kc` x `NR`) copied together when several tiles of rows pass over it: rows of a weight
    // matrix lie a power-of-two multiple of 4 KB apart (768 or 3072 floats), and read in place they all map to
    // the same L1 set and evict each other. A single tile (one row, in generation) reads `b` where it lies.
    let mut strip = if tiles > 1 { vec![0f32; KC.min(k) * NR] } else { Vec::new() };
    for p0 in (0..k).step_by(KC) {
        let kc = KC.min(k - p0);
        for (t, tile) in packed_a.chunks_exact_mut(kc * MR).take(tiles).enumerate() {
            for (r, i) in (t * MR..m.min(t * MR + MR)).enumerate() {
                for (p, &x) in a[i * k + p0..i * k + p0 + kc].iter().enumerate() {
                    tile[p * MR + r] = x;
                }
            }
        }
        for j0 in (0..full_n).step_by(NR) {
            let (b, ldb, b_from) = if tiles > 1 {
                for (p, row) in strip.chunks_exact_mut(NR).take(kc).enumerate() {
                    let from = (p0 + p) * ldb + j0;
                    row.copy_from_slice(&b[from..from + NR]);
                }
                (&strip[..], NR, 0)
            } else {
                (b, ldb, p0 * ldb + j0)
            };
            for t in 0..tiles {
                let at = &packed_a[t * kc * MR..(t + 1) * kc * MR];
                let rows = MR.min(m - t * MR);
                let c = &mut c[t * MR * n + j0..];
                // Two shapes of tile only, each a copy of the loop in the .wasm: one row (generation's case,
                // where the weights are read once), and the full tile, whose padded rows of `a` are zeros and
                // whose results are not stored.
                if rows == 1 {
                    tile::<1>(at, b, b_from, ldb, c, n, kc, 1);
                } else {
                    tile::<MR>(at, b, b_from, ldb, c, n, kc, rows);
                }
            }
        }
        // The last `n % NR` columns, one at a time.
        for i in 0..m {
            for j in full_n..n {
                let mut s = 0.0;
                for p in p0..p0 + kc {
                    s += a[i * k + p] * b[p * ldb + j];
                }
                c[i * n + j] += s;
            }
        }
    }
}

/// `c[..rows, ..NR] += a b` for one tile: `a` a packed tile (`[kc][MR]`, its first `R` rows used), `b` from
/// `b_from` on, `kc` rows of `NR` values `ldb` apart, `c` rows `ldc` apart, of which the first `rows` (at most
/// `R`) are written.
#[allow(clippy::too_many_arguments)] // a tile's place in three matrices; a struct would only rename them
#[inline(always)]
fn tile<const R: usize>(
    a: &[f32],
    b: &[f32],
    b_from: usize,
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    kc: usize,
    rows: usize,
) {
    // Every offset the loop below reads or writes, checked once here rather than in the loop.
    assert!(R <= MR && kc > 0 && a.len() >= kc * MR);
    assert!(b_from + (kc - 1) * ldb + NR <= b.len());
    assert!(rows >= 1 && rows <= R && (rows - 1) * ldc + NR <= c.len());
    // SAFETY: the asserts above bound every offset: `a` up to `kc MR`, `b` rows `b_from + p ldb` for `p < kc`
    // with `NR` values each, and `rows` rows of `c` with `NR` values each.
    unsafe { lanes::tile::<R>(a.as_ptr(), b.as_ptr().add(b_from), ldb, c.as_mut_ptr(), ldc, kc, rows) }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use super::{MR, NR};
    use core::arch::wasm32::{f32x4_add, f32x4_splat, v128, v128_load, v128_store};

    /// `acc + x b`, lane by lane: one fused multiply-add where relaxed SIMD is compiled in (`f32x4.relaxed_madd`,
    /// which an engine may run fused or as a multiply then an add: both are within the tests' bounds), else a
    /// multiply and an add.
    #[inline(always)]
    unsafe fn madd(acc: v128, x: v128, b: v128) -> v128 {
        #[cfg(feature = "relaxed-simd")]
        {
            core::arch::wasm32::f32x4_relaxed_madd(x, b, acc)
        }
        #[cfg(not(feature = "relaxed-simd"))]
        {
            f32x4_add(acc, core::arch::wasm32::f32x4_mul(x, b))
        }
    }

    /// One depth step of the tile: `b`'s row `p` (two vectors) times each of the tile's `R` values of `a`.
    #[inline(always)]
    unsafe fn step<const R: usize>(acc: &mut [[v128; 2]; R], a: *const f32, b: *const f32) {
        let b0 = v128_load(b.cast::<v128>());
        let b1 = v128_load(b.add(4).cast::<v128>());
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = f32x4_splat(*a.add(r));
            acc[0] = madd(acc[0], x, b0);
            acc[1] = madd(acc[1], x, b1);
        }
    }

    /// The tile, by pointers: `a` packed (`MR` values per depth step), `b` rows `ldb` apart, `c` rows `ldc`
    /// apart. Two accumulators per row.
    ///
    /// # Safety
    /// `a + p MR + r` and `b + p ldb + 0..NR` must be valid for `r < R`, `p < kc`, and `c + r ldc + 0..NR` for
    /// `r < rows`.
    #[inline(always)]
    pub unsafe fn tile<const R: usize>(
        a: *const f32,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        kc: usize,
        rows: usize,
    ) {
        const { assert!(NR == 8) };
        let mut acc = [[f32x4_splat(0.0); 2]; R];
        for p in 0..kc {
            step(&mut acc, a.add(p * MR), b.add(p * ldb));
        }
        for (r, acc) in acc.iter().enumerate().take(rows) {
            let cp = c.add(r * ldc);
            v128_store(cp.cast::<v128>(), f32x4_add(v128_load(cp.cast::<v128>()), acc[0]));
            v128_store(cp.add(4).cast::<v128>(), f32x4_add(v128_load(cp.add(4).cast::<v128>()), acc[1]));
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod lanes {
    use super::{MR, NR};

    /// The tile, by pointers, as the simd128 version (the same sums in the same order), in plain loops.
    ///
    /// # Safety
    /// `a + p MR + r` and `b + p ldb + 0..NR` must be valid for `r < R`, `p < kc`, and `c + r ldc + 0..NR` for
    /// `r < rows`.
    #[inline(always)]
    pub unsafe fn tile<const R: usize>(
        a: *const f32,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        kc: usize,
        rows: usize,
    ) {
        let mut acc = [[0f32; NR]; R];
        for p in 0..kc {
            let bp = b.add(p * ldb);
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = *a.add(p * MR + r);
                for (j, s) in acc.iter_mut().enumerate() {
                    *s += x * *bp.add(j);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate().take(rows) {
            for (j, s) in acc.iter().enumerate() {
                *c.add(r * ldc + j) += s;
            }
        }
    }
}
