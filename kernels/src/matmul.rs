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
pub fn matmul(a: &[f32], m: usize, k: usize, b: &[f32], ldb: usize, n: usize, c: &mut [f32]) {
    matmul_bias(a, m, k, b, ldb, n, None, c)
}

/// `c = a b + bias`, `bias` (`n` values) added to every row, as `matmul` otherwise: a linear layer in one pass.
/// The bias is where each sum starts (written into `c` before the products are added to it), so no second pass
/// over `c` adds it. `None` is `matmul`.
///
/// Panics if a slice is shorter than its shape says, or `bias` does not hold `n` values.
#[allow(clippy::too_many_arguments)] // `matmul`'s shapes and the bias; a struct would only rename them
pub fn matmul_bias(
    a: &[f32],
    m: usize,
    k: usize,
    b: &[f32],
    ldb: usize,
    n: usize,
    bias: Option<&[f32]>,
    c: &mut [f32],
) {
    let shape = Gemm { m, k, n, lda: k, ldb, ldc: n, b_transposed: false };
    gemm(a, b, bias, c, shape);
}

/// The shapes and strides of one `gemm`: `a` `[m, k]` with rows `lda` apart; `b` `[k, n]` with rows `ldb`
/// apart, or, when `b_transposed`, `b` given as its transpose `[n, k]` with rows `ldb` apart (the attention's
/// keys: `q kᵀ` reads each key where it lies); `c` `[m, n]` with rows `ldc` apart. Every matrix's last dimension
/// is contiguous, so a head's slice of a `[pos, head, d_head]` activation is read and written in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gemm {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
    pub b_transposed: bool,
}

impl Gemm {
    /// How many values each of `a`, `b` and `c` must hold at least.
    fn extents(&self) -> (usize, usize, usize) {
        let b = if self.b_transposed { span(self.n, self.ldb, self.k) } else { span(self.k, self.ldb, self.n) };
        (span(self.m, self.lda, self.k), b, span(self.m, self.ldc, self.n))
    }
}

/// How many values a matrix of `rows` rows of `cols`, rows `ld` apart, spans (the last row ends at its last value).
fn span(rows: usize, ld: usize, cols: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * ld + cols
    }
}

/// `c = a b (+ bias)` with the strides of `s` (see `Gemm`); `c`'s `m x n` values are overwritten, the rest of
/// its rows (between `n` and `ldc`) left alone.
///
/// Panics if a slice is shorter than its shape says, a stride is below its row's length, or `bias` does not hold
/// `n` values.
pub fn gemm(a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32], s: Gemm) {
    let layout = s.checked(a, b, c);
    gemm_core(a, b, layout, bias, c, (s.m, s.k, s.n, s.lda, s.ldc), Causal::All);
}

impl Gemm {
    /// Where `b`'s values lie, once the slices and strides are checked against the shapes.
    ///
    /// Panics if a slice is shorter than its shape says or a stride is below its row's length.
    fn checked(&self, a: &[f32], b: &[f32], c: &[f32]) -> B<'static> {
        let Gemm { m, k, n, lda, ldb, ldc, b_transposed } = *self;
        let (need_a, need_b, need_c) = self.extents();
        assert!(lda >= k && ldc >= n, "gemm: a row stride is below its width: {self:?}");
        assert!(ldb >= if b_transposed { k } else { n }, "gemm: b's row stride is below its width: {self:?}");
        assert!(a.len() >= need_a, "gemm: a holds {} values, not {m} x {k} rows {lda} apart", a.len());
        assert!(b.len() >= need_b, "gemm: b holds {} values, too few for {self:?}", b.len());
        assert!(c.len() >= need_c, "gemm: c holds {} values, not {m} x {n} rows {ldc} apart", c.len());
        if b_transposed {
            B::Transposed(ldb)
        } else {
            B::Rows(ldb)
        }
    }
}

/// What of a product causal attention needs, where query row `i` sees the keys `0..=start + i` (`start` keys
/// came before the first query: a key/value cache).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Causal {
    /// All of it.
    All,
    /// The scores `q kᵀ`: row `i` needs the columns `j <= start + i` only. Those beyond hold their product or
    /// are left as the bias (or zero) left them: the caller masks them.
    Columns { start: usize },
    /// The mix `pattern v`: row `i` of `a` is zero beyond depth `start + i`, so its sums stop there. Leaving out
    /// exact zeros (`0 x` a finite value) changes no sum.
    Depth { start: usize },
}

impl Causal {
    /// One past the last column (`Columns`) or depth (`Depth`) that rows `..rows_end` need.
    fn end(self, rows_end: usize) -> usize {
        match self {
            Causal::All => usize::MAX,
            Causal::Columns { start } | Causal::Depth { start } => start + rows_end,
        }
    }
}

/// `gemm` doing only the part of the product that causal attention needs (see `Causal`): about half of the
/// attention's two products per head over a full context.
///
/// Panics as `gemm` does.
pub fn gemm_causal(a: &[f32], b: &[f32], c: &mut [f32], s: Gemm, causal: Causal) {
    let layout = s.checked(a, b, c);
    gemm_core(a, b, layout, None, c, (s.m, s.k, s.n, s.lda, s.ldc), causal);
}

/// `c = a b` where row `p` of `b` (`n` values) starts at `b[rows[p]]`: the rows are slices of `b` at any offsets
/// (`k = rows.len()`). A direct convolution is this product with no copy of its input: `a` the kernels
/// `[c_out, c_in k k]`, and row `(c, ky, kx)` of `b` the padded input map `c` shifted by that tap (see
/// `conv2d`). `a` `[m, k]` and `c` `[m, n]` have rows `lda` and `ldc` apart.
///
/// Panics if a slice is shorter than its shape says or a row runs past the end of `b`.
#[allow(clippy::too_many_arguments)] // the product's shapes and strides; a struct would only rename them
pub fn gemm_indirect(a: &[f32], lda: usize, m: usize, b: &[f32], rows: &[usize], n: usize, c: &mut [f32], ldc: usize) {
    let k = rows.len();
    assert!(lda >= k && ldc >= n, "gemm_indirect: a row stride is below its width");
    assert!(a.len() >= span(m, lda, k), "gemm_indirect: a holds {} values, not {m} x {k}", a.len());
    assert!(c.len() >= span(m, ldc, n), "gemm_indirect: c holds {} values, not {m} x {n}", c.len());
    assert!(n == 0 || rows.iter().all(|&r| r + n <= b.len()), "gemm_indirect: a row of b runs past its end");
    gemm_core(a, b, B::Indirect(rows), None, c, (m, k, n, lda, ldc), Causal::All);
}

/// Where `gemm_core` finds `b`'s values.
#[derive(Clone, Copy)]
enum B<'a> {
    /// Row-major, rows this far apart.
    Rows(usize),
    /// Given as its transpose, whose rows (`b`'s columns) are this far apart.
    Transposed(usize),
    /// Row `p` starts at this offset.
    Indirect(&'a [usize]),
}

impl B<'_> {
    /// The index of `b`'s value at depth `p`, column `j`.
    #[inline(always)]
    fn at(self, p: usize, j: usize) -> usize {
        match self {
            B::Rows(ld) => p * ld + j,
            B::Transposed(ld) => j * ld + p,
            B::Indirect(rows) => rows[p] + j,
        }
    }
}

/// The product, with every shape already checked by its caller: `(m, k, n, lda, ldc)`.
// With the `relaxed-simd` feature every tile below is inlined into this function, so the fused multiply-add it
// enables (`lanes::madd`) is allowed there; such a .wasm validates only where the engine has relaxed SIMD.
#[cfg_attr(all(target_arch = "wasm32", feature = "relaxed-simd"), target_feature(enable = "relaxed-simd"))]
fn gemm_core(
    a: &[f32],
    b: &[f32],
    layout: B,
    bias: Option<&[f32]>,
    c: &mut [f32],
    shape: (usize, usize, usize, usize, usize),
    causal: Causal,
) {
    let (m, k, n, lda, ldc) = shape;
    if let Some(bias) = bias {
        assert_eq!(bias.len(), n, "gemm: the bias holds {} values, not {n}", bias.len());
    }
    for i in 0..m {
        let row = &mut c[i * ldc..i * ldc + n];
        match bias {
            Some(bias) => row.copy_from_slice(bias),
            None => row.fill(0.0),
        }
    }
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let tiles = m.div_ceil(MR);
    // `a`'s rows for one depth piece, interleaved by tile, `[tile][p][MR]` (the last tile padded with zeros): a
    // tile's values for one `p` are then adjacent, and the loop keeps one pointer for them instead of one per row.
    let mut packed_a = vec![0f32; tiles * KC.min(k) * MR];
    // One strip of `b` (`kc` x `NR`) copied together when several tiles of rows pass over it: rows of a weight
    // matrix lie a power-of-two multiple of 4 KB apart (768 or 3072 floats), and read in place they all map to
    // the same L1 set and evict each other. A single tile (one row, in generation) reads a row-major `b` where
    // it lies.
    let in_place = match layout {
        B::Rows(ldb) if tiles == 1 => Some(ldb),
        _ => None,
    };
    let mut strip = if in_place.is_some() { Vec::new() } else { vec![0f32; KC.min(k) * NR] };
    // The last `n % NR` columns as a strip padded with zeros, through the same tiles (one scalar sum per value
    // was 5-7% of a forward of the small models, whose vocabularies are not multiples of 8).
    let mut last_strip = if n % NR != 0 { vec![0f32; KC.min(k) * NR] } else { Vec::new() };
    let mut scratch = [0f32; MR * NR];
    for p0 in (0..k).step_by(KC) {
        let kc = KC.min(k - p0);
        // The depth tile `t` needs in this piece: all of it, or with `Causal::Depth` up to its rows' last key.
        let tile_kc = |t: usize| match causal {
            Causal::Depth { .. } => kc.min(causal.end(t * MR + MR).saturating_sub(p0)),
            _ => kc,
        };
        // The first tile whose last row sees column `j0`: every tile unless `Causal::Columns`.
        let first_tile = |j0: usize| match causal {
            Causal::Columns { .. } => (0..tiles).find(|&t| causal.end(t * MR + MR) > j0).unwrap_or(tiles),
            _ => 0,
        };
        for (t, tile) in packed_a.chunks_exact_mut(kc * MR).take(tiles).enumerate() {
            let tkc = tile_kc(t);
            for (r, i) in (t * MR..m.min(t * MR + MR)).enumerate() {
                for (p, &x) in a[i * lda + p0..i * lda + p0 + tkc].iter().enumerate() {
                    tile[p * MR + r] = x;
                }
            }
        }
        for j0 in (0..n).step_by(NR) {
            let first = first_tile(j0);
            if first == tiles {
                break;
            }
            let width = NR.min(n - j0);
            let (b, ldb, b_from) = match in_place {
                _ if width < NR => {
                    for (p, row) in last_strip.chunks_exact_mut(NR).take(kc).enumerate() {
                        for (jj, x) in row[..width].iter_mut().enumerate() {
                            *x = b[layout.at(p0 + p, j0 + jj)];
                        }
                    }
                    (&last_strip[..], NR, 0)
                }
                Some(ldb) => (b, ldb, p0 * ldb + j0),
                None => {
                    for (p, row) in strip.chunks_exact_mut(NR).take(kc).enumerate() {
                        match layout {
                            B::Transposed(_) => {
                                for (jj, x) in row.iter_mut().enumerate() {
                                    *x = b[layout.at(p0 + p, j0 + jj)];
                                }
                            }
                            _ => {
                                let from = layout.at(p0 + p, j0);
                                row.copy_from_slice(&b[from..from + NR]);
                            }
                        }
                    }
                    (&strip[..], NR, 0)
                }
            };
            for t in first..tiles {
                let (at, tkc) = (&packed_a[t * kc * MR..(t + 1) * kc * MR], tile_kc(t));
                if tkc == 0 {
                    continue;
                }
                let rows = MR.min(m - t * MR);
                // The last, narrower strip goes through a full-width scratch tile and back (the padding's sums
                // are dropped): one call site, so one copy of the tiles in the .wasm.
                let c_at = t * MR * ldc + j0;
                if width < NR {
                    for r in 0..rows {
                        scratch[r * NR..r * NR + width].copy_from_slice(&c[c_at + r * ldc..][..width]);
                    }
                }
                let (out, ldo) = if width < NR { (&mut scratch[..], NR) } else { (&mut c[c_at..], ldc) };
                tiles_of(at, b, b_from, ldb, out, ldo, tkc, rows);
                if width < NR {
                    for r in 0..rows {
                        c[c_at + r * ldc..][..width].copy_from_slice(&scratch[r * NR..r * NR + width]);
                    }
                }
            }
        }
    }
}

/// One tile of `c` += its rows of `a` times a strip of `b`, in one of two shapes, each a copy of the loop in the
/// .wasm: one row (generation's case, where the weights are read once), and the full tile, whose padded rows of
/// `a` are zeros and whose results are not stored.
#[allow(clippy::too_many_arguments)] // a tile's place in three matrices; a struct would only rename them
#[inline(always)]
fn tiles_of(a: &[f32], b: &[f32], b_from: usize, ldb: usize, c: &mut [f32], ldc: usize, kc: usize, rows: usize) {
    if rows == 1 {
        tile::<1>(a, b, b_from, ldb, c, ldc, kc, 1);
    } else {
        tile::<MR>(a, b, b_from, ldb, c, ldc, kc, rows);
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
