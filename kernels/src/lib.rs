//! The engine's hot loops over `f32` slices: the matrix product, and the element-wise kernels around it.
//!
//! Why a crate of its own: the browser build compiles the engine at opt-level "z" to keep the .wasm small, and at
//! "z" LLVM does not inline iterator chains. These few loops are where a transformer forward spends the time that
//! is not matrix products (GELU's exponentials, the attention softmax, LayerNorm, bias adds), so this crate alone
//! is built at opt-level 2 (the `web` profile in the root Cargo.toml).
//! The hot element-wise loops are written in `F4` (four lanes, explicit simd128 in the browser; see `f4.rs` for
//! why the vectoriser cannot be relied on there): no calls to `exp`, no branches in the inner loops (selects
//! only), and reductions kept in eight independent partial sums. The public slice kernels are
//! `#[inline(never)]`: inlined into the app crate's code they would be optimised at its size level (no loop
//! unrolling, helpers left as calls); as functions of their own they keep this crate's.
//!
//! Each kernel has a plain reference it is tested against (tests/kernels.rs natively, tests/web.rs in Chromium):
//! candle's own op or a straightforward loop in f64.

mod f4;
mod matmul;
use f4::F4;
use matmul::gemm_indirect;
pub use matmul::{gemm, gemm_causal, matmul, matmul_bias, Causal, Gemm};

/// Partial sums and maxima are kept in this many independent lanes (two simd128 vectors).
const LANES: usize = 8;

/// `e^x` for `x <= 0`, to about 2e-7 relative error (below e^-87 it returns e^-87, about 1.6e-38, instead of
/// smaller numbers; -inf gives that too). wasm has no exp instruction and a call to `expf` cannot be
/// vectorised; this is range reduction `x = n ln 2 + r`, `|r| <= ln 2 / 2`, a degree-6 Taylor polynomial in
/// `r` (truncation error `r^7 / 7!` < 1.3e-7) and `2^n` built from its exponent bits, all of which vectorises.
pub fn exp_nonpositive(x: f32) -> f32 {
    exp4(F4::splat(x)).lanes()[0]
}

/// `exp_nonpositive` of four lanes.
#[inline(always)]
fn exp4(x: F4) -> F4 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that `n * LN2_HI` is exact for the n that occur here.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds a float of magnitude < 2^22 to the nearest integer, which then sits in the
    // low mantissa bits; no float-to-int conversion.
    const ROUND: f32 = 12_582_912.0;
    let c = F4::splat;
    // A select, not a min: it keeps a NaN a NaN.
    let x = F4::select(x.lt(c(-87.0)), c(-87.0), x);
    let k = x.mul(c(LOG2_E)).add(c(ROUND));
    let nf = k.sub(c(ROUND));
    let r = x.sub(nf.mul(c(LN2_HI))).sub(nf.mul(c(LN2_LO)));
    // Horner's rule written out: a loop over the coefficients stays a loop where this is inlined at a size level.
    let p = c(1.0 / 120.0).add(r.mul(c(1.0 / 720.0)));
    let p = c(1.0 / 24.0).add(r.mul(p));
    let p = c(1.0 / 6.0).add(r.mul(p));
    let p = c(0.5).add(r.mul(p));
    let p = c(1.0).add(r.mul(p));
    let p = c(1.0).add(r.mul(p));
    p.mul(F4::pow2_rounded(k, ROUND))
}

/// The logistic function `1 / (1 + e^-t)`, from `e^-|t|` (which never overflows), to about 3e-7 relative error.
pub fn sigmoid(t: f32) -> f32 {
    sigmoid4(F4::splat(t)).lanes()[0]
}

/// `sigmoid` of four lanes.
#[inline(always)]
fn sigmoid4(t: F4) -> F4 {
    let e = exp4(t.abs().neg());
    let r = F4::splat(1.0).div(F4::splat(1.0).add(e));
    F4::select(t.ge(F4::splat(0.0)), r, e.mul(r))
}

/// `2 sqrt(2 / pi)`: GELU's tanh argument doubled, for the sigmoid form (rounded from f64, as candle's `affine`
/// rounds the constant the candle ops used).
const GELU_C: f32 = (2.0 * 0.797_884_560_802_865_4_f64) as f32;

/// gelu_new (GPT-2's tanh approximation) of each `x` into `out`: `0.5 x (1 + tanh(u))`,
/// `u = sqrt(2/pi) (x + 0.044715 x^3)`, computed as `x sigmoid(2u)`, which is the same function. Within 1e-6
/// of the f64 formula relative to `max(|x|, 1)`.
#[inline(never)]
pub fn gelu_new(x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "gelu_new: input and output lengths differ");
    f4::map(x, out, |x| {
        // The same order of operations as the candle ops it replaces: (x + x^3 0.044715) c.
        let t = x.add(x.mul(x).mul(x).mul(F4::splat(0.044_715))).mul(F4::splat(GELU_C));
        x.mul(sigmoid4(t))
    });
}

/// The gradient through gelu_new, in place: each `grad` is multiplied by gelu_new's derivative at its `x`,
/// `s + x s (1 - s) c (1 + 3 0.044715 x^2)` with `s = sigmoid(t)`, `t = c (x + 0.044715 x^3)` (`c` = `GELU_C`).
/// `s (1 - s)` is computed as `e / (1 + e)^2` from `e = e^-|t|`, which does not cancel where `s` is near 1.
#[inline(never)]
pub fn gelu_new_backward(x: &[f32], grad: &mut [f32]) {
    assert_eq!(x.len(), grad.len(), "gelu_new_backward: input and gradient lengths differ");
    let c = F4::splat;
    let step = |x: F4, g: F4| {
        let t = x.add(x.mul(x).mul(x).mul(c(0.044_715))).mul(c(GELU_C));
        let e = exp4(t.abs().neg());
        let r = c(1.0).div(c(1.0).add(e));
        let s = F4::select(t.ge(c(0.0)), r, e.mul(r));
        let slope = c(1.0).add(c(0.134_145).mul(x).mul(x));
        g.mul(s.add(x.mul(e.mul(r).mul(r)).mul(c(GELU_C)).mul(slope)))
    };
    let mut gs = grad.chunks_exact_mut(4);
    let mut xs = x.chunks_exact(4);
    for (g, x) in (&mut gs).zip(&mut xs) {
        step(F4::load(x), F4::load(g)).store(g);
    }
    let (g, x) = (gs.into_remainder(), xs.remainder());
    if !g.is_empty() {
        step(F4::load_partial(x, 0.0), F4::load_partial(g, 0.0)).store_partial(g);
    }
}

/// The sum of `xs`, in eight partial sums (so it vectorises; the rounding differs from a left-to-right sum).
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    f4::fold_sum(xs, 0.0, |x| x)
}

/// Softmax of each row of `n` values, in place. Masked entries (-inf) come out exactly 0; a row with no finite
/// entry comes out NaN, as a softmax over nothing should. A row's trailing run of -inf (a causal pattern's
/// masked half) is filled with 0 without computing its exponentials.
#[inline(never)]
pub fn softmax_rows(v: &mut [f32], n: usize) {
    if n == 0 {
        return;
    }
    for row in v.chunks_exact_mut(n) {
        let live = n - row.iter().rev().take_while(|&&x| x == f32::NEG_INFINITY).count();
        let (seen, masked) = row.split_at_mut(live);
        masked.fill(0.0);
        if live == 0 {
            row.fill(f32::NAN);
            continue;
        }
        softmax_row(seen);
    }
}

/// Softmax of one row, in place (-inf entries come out 0; a row with no finite entry, NaN, and then false).
/// Not inlined: three kernels call it, and each inlined copy was ~3 KB of the .wasm (one call per row costs
/// nothing next to the row's exponentials).
#[inline(never)]
fn softmax_row(row: &mut [f32]) -> bool {
    let m = f4::max(row);
    if m == f32::NEG_INFINITY {
        row.fill(f32::NAN);
        return false;
    }
    let (mv, ninf) = (F4::splat(m), F4::splat(f32::NEG_INFINITY));
    let total = f4::map_sum(row, 0.0, |x| F4::select(x.eq(ninf), F4::splat(0.0), exp4(x.sub(mv))));
    let inv = F4::splat(1.0 / total);
    f4::map_in_place(row, |x| x.mul(inv));
    true
}

/// `softmax_rows` of scores masked as `scale_causal` masks them (query `i` sees keys `..=start + i`, the rest
/// -inf), from `scores` into `out`, equal to it bit for bit, without scanning each row for where its masked
/// entries start: for a forward that keeps the masked scores (the attention lab's cached run), then the pattern.
#[inline(never)]
pub fn softmax_visible(scores: &[f32], out: &mut [f32], q: usize, k: usize, start: usize) {
    causal_rows(scores, out, q, k, start, |src, seen, masked| {
        seen.copy_from_slice(src);
        // A row whose visible scores are all -inf is NaN throughout, as `softmax_rows` makes it.
        masked.fill(if softmax_row(seen) { 0.0 } else { f32::NAN });
    });
}

/// `f(visible scores, their place in out, the rest of the row in out)` for each row of each `[q, k]` matrix of
/// `scores` and `out` (the same length), where query `i` sees keys `..=start + i`.
#[inline(always)]
fn causal_rows(
    scores: &[f32],
    out: &mut [f32],
    q: usize,
    k: usize,
    start: usize,
    mut f: impl FnMut(&[f32], &mut [f32], &mut [f32]),
) {
    assert_eq!(scores.len(), out.len(), "causal scores: input and output lengths differ");
    if q == 0 || k == 0 {
        return;
    }
    for (i, (src, row)) in scores.chunks_exact(k).zip(out.chunks_exact_mut(k)).enumerate() {
        let visible = (start + i % q + 1).min(k);
        let (seen, masked) = row.split_at_mut(visible);
        f(&src[..visible], seen, masked);
    }
}

/// `scale_causal` then `softmax_rows` in one pass, from `scores` into `out`, equal to them bit for bit: each
/// row of each `[q, k]` matrix is scaled by `mul` over its visible keys only (query `i` sees keys up to
/// `start + i`), softmaxed there, and zero beyond. For a forward whose scores nobody looks at: the masked half is
/// never written twice or scanned.
#[inline(never)]
pub fn softmax_causal(scores: &[f32], out: &mut [f32], q: usize, k: usize, start: usize, mul: f32) {
    let (mulv, zero) = (F4::splat(mul), F4::splat(0.0));
    causal_rows(scores, out, q, k, start, |src, seen, masked| {
        // `+ 0.0` as `scale_causal` adds the mask's zero (it turns -0.0 into 0.0).
        f4::map(src, seen, |x| x.mul(mulv).add(zero));
        masked.fill(0.0);
        softmax_row(seen);
    });
}

/// The largest of `xs` and the sum of `e^(x - largest)` over them: what a softmax over `xs` needs, for a row that
/// is met a slice at a time (the logit lens streams the vocabulary). `(-inf, 0)` for no values or only -inf;
/// a NaN among them makes the sum NaN.
#[inline(never)]
pub fn max_exp_sum(xs: &[f32]) -> (f32, f32) {
    let m = f4::max(xs);
    if m == f32::NEG_INFINITY {
        return (m, 0.0);
    }
    let mv = F4::splat(m);
    // -inf gives e^-87 (see `exp_nonpositive`), below anything a sum of finite terms can show. `max` skips NaNs;
    // the sum does not (`exp_nonpositive` of a NaN is NaN).
    (m, f4::fold_sum(xs, m, |x| exp4(x.sub(mv))))
}

/// How many of `xs` are greater than `t` (NaNs are not).
#[inline(never)]
pub fn count_above(xs: &[f32], t: f32) -> usize {
    let mut acc = [0u32; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            acc[i] += (c[i] > t) as u32;
        }
    }
    let tail = chunks.remainder().iter().filter(|&&x| x > t).count();
    acc.iter().map(|&a| a as usize).sum::<usize>() + tail
}

/// LayerNorm of each row of `x` (rows of `w.len()` values): `(x - mean) / scale * w + b` into `out`, with
/// `scale = sqrt(var + eps)` (the biased variance) into `scale`, one per row, as TransformerLens hooks it.
#[inline(never)]
pub fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32], scale: &mut [f32]) {
    let n = w.len();
    assert!(n > 0 && b.len() == n, "layer_norm: weight and bias must have the row's length");
    assert!(x.len() == out.len() && x.len() == n * scale.len(), "layer_norm: shapes disagree");
    let inv_n = 1.0 / n as f32;
    for ((row, o), s) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)).zip(scale.iter_mut()) {
        let var = centre(row, o, inv_n);
        *s = (var + eps).sqrt();
        let sd = F4::splat(*s);
        let (mut os, mut ws, mut bs) = (o.chunks_exact_mut(4), w.chunks_exact(4), b.chunks_exact(4));
        for ((o, w), b) in (&mut os).zip(&mut ws).zip(&mut bs) {
            F4::load(o).div(sd).mul(F4::load(w)).add(F4::load(b)).store(o);
        }
        for ((o, &w), &b) in os.into_remainder().iter_mut().zip(ws.remainder()).zip(bs.remainder()) {
            *o = *o / *s * w + b;
        }
    }
}

/// Writes the row minus its mean into `out` and returns the row's variance (the mean of those squares, summed
/// in lanes). `inv_n` is 1 / the row's length. The first half of `layer_norm` and of its backward.
fn centre(row: &[f32], out: &mut [f32], inv_n: f32) -> f32 {
    let mean = F4::splat(sum(row) / row.len() as f32);
    f4::map(row, out, |x| x.sub(mean));
    f4::fold_sum(out, 0.0, |x| x.mul(x)) * inv_n
}

/// The gradient through `layer_norm` (weight `w`, any bias) to its input, row by row (rows of `w.len()` values):
/// from `grad`, the gradient at its output, into `out`. With `xhat = (x - mean) / scale` and `g = grad * w`,
/// `out = (g - mean(g) - xhat mean(g xhat)) / scale`.
#[inline(never)]
pub fn layer_norm_backward(x: &[f32], w: &[f32], eps: f32, grad: &[f32], out: &mut [f32]) {
    let n = w.len();
    assert!(n > 0, "layer_norm_backward: the weight must have the row's length");
    assert!(
        x.len() == out.len() && x.len() == grad.len() && x.len().is_multiple_of(n),
        "layer_norm_backward: shapes disagree"
    );
    let inv_n = 1.0 / n as f32;
    for ((row, g), o) in x.chunks_exact(n).zip(grad.chunks_exact(n)).zip(out.chunks_exact_mut(n)) {
        let inv_scale = 1.0 / (centre(row, o, inv_n) + eps).sqrt();
        // Now xhat in `out`; then the means of g = grad * w and of g xhat, in lanes.
        for o in o.iter_mut() {
            *o *= inv_scale;
        }
        let (mut g_sum, mut gx_sum) = ([0.0f32; LANES], [0.0f32; LANES]);
        let (mut gc, mut wc, mut xc) = (g.chunks_exact(LANES), w.chunks_exact(LANES), o.chunks_exact(LANES));
        for ((g, w), x) in (&mut gc).zip(&mut wc).zip(&mut xc) {
            for i in 0..LANES {
                let gw = g[i] * w[i];
                g_sum[i] += gw;
                gx_sum[i] += gw * x[i];
            }
        }
        let (mut g_tail, mut gx_tail) = (0.0f32, 0.0f32);
        for ((&g, &w), &x) in gc.remainder().iter().zip(wc.remainder()).zip(xc.remainder()) {
            g_tail += g * w;
            gx_tail += g * w * x;
        }
        let g_mean = (g_sum.iter().sum::<f32>() + g_tail) * inv_n;
        let gx_mean = (gx_sum.iter().sum::<f32>() + gx_tail) * inv_n;
        for ((o, &g), &w) in o.iter_mut().zip(g).zip(w) {
            *o = (g * w - g_mean - *o * gx_mean) * inv_scale;
        }
    }
}

/// Adds `bias` to every row of `y` (rows of `bias.len()` values), in place: a linear layer's bias.
#[inline(never)]
pub fn add_rows(y: &mut [f32], bias: &[f32]) {
    if bias.is_empty() {
        return;
    }
    let n = bias.len();
    let full = n / 4 * 4;
    for row in y.chunks_exact_mut(n) {
        for (y, b) in row[..full].chunks_exact_mut(4).zip(bias.chunks_exact(4)) {
            F4::load(y).add(F4::load(b)).store(y);
        }
        for (y, &b) in row[full..].iter_mut().zip(&bias[full..]) {
            *y += b;
        }
    }
}

/// Attention scores made ready for the softmax, from `scores` into `out`: both hold `[.., q, k]` matrices; every
/// entry is multiplied by `mul` (1 / sqrt(d_head), or 1), and entries whose key comes after their query are set
/// to -inf (the causal mask). Query row `i` sits at position `start + i` (`start` tokens are already cached), key
/// `j` at position `j`. Equal bit for bit to `scores * mul + mask` with the additive 0 / -inf mask.
#[inline(never)]
pub fn scale_causal(scores: &[f32], out: &mut [f32], q: usize, k: usize, start: usize, mul: f32) {
    let (mulv, zero) = (F4::splat(mul), F4::splat(0.0));
    causal_rows(scores, out, q, k, start, |src, seen, masked| {
        // `+ 0.0` as the mask add does it (it turns -0.0 into 0.0). `F4`: a plain loop stays scalar here.
        f4::map(src, seen, |x| x.mul(mulv).add(zero));
        masked.fill(f32::NEG_INFINITY);
    });
}

/// The shape of a stride-1 2-D convolution with zero padding: `batch` images of `c_in` maps `h x w`, `c_out`
/// kernels of `c_in x k x k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv {
    pub batch: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub k: usize,
    pub pad: usize,
}

impl Conv {
    /// The output maps' height and width (0 when the kernel does not fit).
    pub fn out_side(&self) -> (usize, usize) {
        let fit = |n: usize| (n + 2 * self.pad + 1).saturating_sub(self.k);
        (fit(self.h), fit(self.w))
    }
}

/// A stride-1 convolution with zero padding (cross-correlation, as torch and candle define it): `x` `[batch, c_in,
/// h, w]`, `weight` `[c_out, c_in, k, k]`, an optional `bias` `[c_out]`, and a ReLU after when `relu`. Returns
/// `[batch, c_out, oh, ow]`.
///
/// A matrix product with no im2col copy: each input map is copied once into a zero-padded one of width
/// `w + 2 pad`, and the outputs are computed at that width (the extra columns are dropped at the end). Output
/// `(y, x)` then sits at `y wp + x`, and its tap `(c, ky, kx)` reads the padded map `c` at the same index
/// shifted by `ky wp + kx`: so the product of the kernels `[c_out, c_in k k]` (the weight as it lies) by the
/// matrix whose row `(c, ky, kx)` is map `c` from that shift on is the whole convolution, each row a slice of
/// the padded input (`gemm_indirect`). Its tiles keep 4 output channels x 8 positions in registers across all
/// `c_in k k` taps; the loop over taps per channel it replaced loaded and stored the outputs once per input map
/// and called a function per (output, input) pair, 648 calls for the MNIST model (measured: 2.3x slower).
pub fn conv2d(x: &[f32], weight: &[f32], bias: Option<&[f32]>, relu: bool, s: Conv) -> Vec<f32> {
    let Conv { batch, c_in, h, w, c_out, k, pad } = s;
    assert_eq!(x.len(), batch * c_in * h * w, "conv2d: input length");
    assert_eq!(weight.len(), c_out * c_in * k * k, "conv2d: weight length");
    if let Some(b) = bias {
        assert_eq!(b.len(), c_out, "conv2d: bias length");
    }
    let (oh, ow) = s.out_side();
    let mut out = vec![0f32; batch * c_out * oh * ow];
    if oh == 0 || ow == 0 || k == 0 || c_in == 0 {
        if let Some(b) = bias {
            for (o, map) in out.chunks_exact_mut((oh * ow).max(1)).enumerate() {
                let v = b[o % c_out];
                map.fill(if relu && v <= 0.0 { 0.0 } else { v });
            }
        }
        return out;
    }
    let (hp, wp) = (h + 2 * pad, w + 2 * pad);
    // Outputs at padded width, rounded up to whole 8-column tiles: the extra columns read past the last row into
    // the zeros after the maps, and are dropped with the padding columns.
    let run = ((oh - 1) * wp + ow).next_multiple_of(8);
    let rows: Vec<usize> =
        (0..c_in).flat_map(|c| (0..k * k).map(move |t| c * hp * wp + (t / k) * wp + t % k)).collect();
    let last = rows.iter().max().copied().unwrap_or(0);
    let mut padded = vec![0f32; (c_in * hp * wp).max(last + run)];
    let mut acc = vec![0f32; c_out * run];
    for n in 0..batch {
        for c in 0..c_in {
            let src = &x[(n * c_in + c) * h * w..][..h * w];
            let dst = &mut padded[c * hp * wp..][..hp * wp];
            for (y, row) in src.chunks_exact(w).enumerate() {
                dst[(y + pad) * wp + pad..][..w].copy_from_slice(row);
            }
        }
        gemm_indirect(weight, c_in * k * k, c_out, &padded, &rows, run, &mut acc, run);
        let zero = F4::splat(0.0);
        for o in 0..c_out {
            let b = F4::splat(bias.map_or(0.0, |b| b[o]));
            let dst = &mut out[(n * c_out + o) * oh * ow..][..oh * ow];
            for (y, row) in dst.chunks_exact_mut(ow).enumerate() {
                f4::map(&acc[o * run + y * wp..][..ow], row, |a| {
                    let v = a.add(b);
                    if relu {
                        F4::select(v.gt(zero), v, zero)
                    } else {
                        v
                    }
                });
            }
        }
    }
    out
}

/// `acc += a x`, element by element (up to the shorter slice's length): one tap of `conv2d`'s generic kernel, and
/// probe training's gradient step. Not inlined: one vectorised copy serves every call.
#[inline(never)]
pub fn axpy(acc: &mut [f32], x: &[f32], a: f32) {
    lanes::axpy(acc, x, a);
}

/// 2 x 2 max-pool with stride 2 of `maps` maps `h x w` (row-major, one after another), dropping a last odd row
/// and column as torch's `max_pool2d` does. Returns the `maps x (h / 2) x (w / 2)` maxima. NaNs are not
/// expected (the inputs are ReLU outputs): a comparison, not `f32::max`, which at opt-level "s" was a call to
/// `fmaxf` per value (a fifth of the MNIST model's forward).
#[inline(never)]
pub fn max_pool2(x: &[f32], maps: usize, h: usize, w: usize) -> Vec<f32> {
    assert_eq!(x.len(), maps * h * w, "max_pool2: input length");
    let (h2, w2) = (h / 2, w / 2);
    let mut out = vec![0f32; maps * h2 * w2];
    if h2 == 0 || w2 == 0 {
        return out;
    }
    let max = |a: f32, b: f32| if a > b { a } else { b };
    for (map, dst) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(h2 * w2)) {
        for (y, row) in dst.chunks_exact_mut(w2).enumerate() {
            let (r0, r1) = (&map[2 * y * w..][..2 * w2], &map[(2 * y + 1) * w..][..2 * w2]);
            for (x, d) in row.iter_mut().enumerate() {
                *d = max(max(r0[2 * x], r0[2 * x + 1]), max(r1[2 * x], r1[2 * x + 1]));
            }
        }
    }
    out
}

/// The gradient of `max_pool2` with respect to its input: `x` the pool's input (`maps` maps `h x w`), `grad` the
/// gradient at its output (`maps x (h / 2) x (w / 2)`). Each window's gradient goes to its maxima, shared
/// equally among tied maxima (the subgradient the engine's pool defines); a last odd row or column, which the
/// pool drops, gets zero.
pub fn max_pool2_backward(x: &[f32], grad: &[f32], maps: usize, h: usize, w: usize) -> Vec<f32> {
    let (h2, w2) = (h / 2, w / 2);
    assert_eq!(x.len(), maps * h * w, "max_pool2_backward: input length");
    assert_eq!(grad.len(), maps * h2 * w2, "max_pool2_backward: gradient length");
    let mut out = vec![0f32; x.len()];
    if h2 == 0 || w2 == 0 {
        return out;
    }
    let max = |a: f32, b: f32| if a > b { a } else { b };
    for ((map, dst), g) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(h * w)).zip(grad.chunks_exact(h2 * w2)) {
        for y in 0..h2 {
            let (top, bottom) = (2 * y * w, (2 * y + 1) * w);
            for x in 0..w2 {
                let idx = [top + 2 * x, top + 2 * x + 1, bottom + 2 * x, bottom + 2 * x + 1];
                let v = idx.map(|i| map[i]);
                let m = max(max(v[0], v[1]), max(v[2], v[3]));
                let ties = v.iter().filter(|&&a| a == m).count() as f32;
                let share = g[y * w2 + x] / ties;
                for (&i, &a) in idx.iter().zip(&v) {
                    if a == m {
                        dst[i] = share;
                    }
                }
            }
        }
    }
    out
}

/// The gradient through a ReLU, in place: `grad` is kept where the ReLU's output `post` is positive and zeroed
/// elsewhere (PyTorch's convention at exactly 0).
#[inline(never)]
pub fn relu_backward(grad: &mut [f32], post: &[f32]) {
    assert_eq!(grad.len(), post.len(), "relu_backward: lengths differ");
    for (g, &p) in grad.iter_mut().zip(post) {
        *g = if p > 0.0 { *g } else { 0.0 };
    }
}

/// A convolution's kernels `[c_out, c_in, k, k]` rotated by 180° with inputs and outputs swapped,
/// `[c_in, c_out, k, k]`: the kernels whose convolution carries a gradient back to the convolution's input.
pub fn flip_transpose(w: &[f32], c_out: usize, c_in: usize, k: usize) -> Vec<f32> {
    assert_eq!(w.len(), c_out * c_in * k * k, "flip_transpose: weight length");
    let mut out = vec![0f32; w.len()];
    for o in 0..c_out {
        for c in 0..c_in {
            let src = &w[(o * c_in + c) * k * k..][..k * k];
            let dst = &mut out[(c * c_out + o) * k * k..][..k * k];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
    out
}

/// Dot product in `LANES` partial sums (probe training's inner loop): lane j sums the products of elements j,
/// j + 8, j + 16, … in order, then the lanes are added 0 to 7 and the remainder last, so every target gives the
/// same bits. `a` and `b` have the same length.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let acc = lanes::dot8(ca, cb);
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Standardised features for a probe: `x` holds rows of `d` values; returns each column's mean and standard
/// deviation (1 for a constant column, so that it stays 0 after centring) and the rows centred and divided by
/// them. Sums run row by row, in order. `d` is at least 1.
pub fn standardise(x: &[f32], d: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(d > 0, "standardise: rows of 0 values");
    let n = (x.len() / d) as f32;
    let mut mean = vec![0.0f32; d];
    for row in x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut std = vec![0.0f32; d];
    for row in x.chunks_exact(d) {
        for ((s, v), m) in std.iter_mut().zip(row).zip(&mean) {
            *s += (v - m).powi(2);
        }
    }
    std.iter_mut().for_each(|s| *s = if *s > 1e-12 { (*s / n).sqrt() } else { 1.0 });
    let inv_std: Vec<f32> = std.iter().map(|s| 1.0 / s).collect();
    let mut z = Vec::with_capacity(x.len());
    for row in x.chunks_exact(d) {
        z.extend(row.iter().zip(&mean).zip(&inv_std).map(|((v, m), i)| (v - m) * i));
    }
    (mean, std, z)
}

/// Probe training's inner loop, one pass of logistic regression's gradient: for each row `x` of `z` (`w.len()`
/// values) and its label `t`, `r = sigmoid(w . x + b) - t` (`1 / (1 + e^-v)` with the standard library's `exp`);
/// adds `r x` into `grad` and returns the sum of the `r`. Here rather than in the engine so that the browser build
/// runs the whole loop at this crate's opt-level.
pub fn logistic_gradient(z: &[f32], t: &[f32], w: &[f32], b: f32, grad: &mut [f32]) -> f32 {
    let mut gb = 0.0f32;
    for (row, &ti) in z.chunks_exact(w.len()).zip(t) {
        let r = 1.0 / (1.0 + (-(dot(row, w) + b)).exp()) - ti;
        gb += r;
        lanes::axpy(grad, row, r);
    }
    gb
}

/// `dot` and `axpy` written with WebAssembly SIMD (four lanes per `v128`, the same arithmetic in the same order as
/// the plain loops below). In the browser build (`web` profile, fat LTO) no plain loop of this crate comes out as
/// simd128 code (checked in the linked .wasm with wasm-dis): loop vectorisation follows the opt-level of the app
/// crate, which links everything, and that is a size level. Elsewhere plain loops, which opt-level 3 vectorises.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use core::arch::wasm32::{f32x4_add, f32x4_extract_lane, f32x4_mul, f32x4_splat, v128, v128_load, v128_store};
    use std::slice::ChunksExact;

    // Loads and stores by pointer: built from four indexed elements instead, they stayed four bounds-checked
    // scalar moves per vector at a size opt-level.
    #[inline(always)]
    fn load(x: &[f32; 4]) -> v128 {
        // SAFETY: `x` is four readable f32s (16 bytes); `v128_load` has no alignment requirement.
        unsafe { v128_load(x.as_ptr().cast()) }
    }

    #[inline(always)]
    fn store(g: &mut [f32; 4], v: v128) {
        // SAFETY: `g` is four writable f32s (16 bytes); `v128_store` has no alignment requirement.
        unsafe { v128_store(g.as_mut_ptr().cast(), v) }
    }

    #[inline(always)]
    fn four(x: &[f32]) -> &[f32; 4] {
        x.try_into().expect("a chunk of four")
    }

    #[inline(always)]
    pub fn dot8(a: ChunksExact<f32>, b: ChunksExact<f32>) -> [f32; 8] {
        let (mut lo, mut hi) = (f32x4_splat(0.0), f32x4_splat(0.0));
        for (x, y) in a.zip(b) {
            lo = f32x4_add(lo, f32x4_mul(load(four(&x[..4])), load(four(&y[..4]))));
            hi = f32x4_add(hi, f32x4_mul(load(four(&x[4..])), load(four(&y[4..]))));
        }
        let lane = |v: v128| {
            [
                f32x4_extract_lane::<0>(v),
                f32x4_extract_lane::<1>(v),
                f32x4_extract_lane::<2>(v),
                f32x4_extract_lane::<3>(v),
            ]
        };
        let (lo, hi) = (lane(lo), lane(hi));
        [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]]
    }

    #[inline(always)]
    pub fn axpy(acc: &mut [f32], x: &[f32], a: f32) {
        let av = f32x4_splat(a);
        let mut gc = acc.chunks_exact_mut(4);
        let mut xc = x.chunks_exact(4);
        for (gi, xi) in (&mut gc).zip(&mut xc) {
            let gi: &mut [f32; 4] = gi.try_into().expect("a chunk of four");
            let v = f32x4_add(load(gi), f32x4_mul(av, load(four(xi))));
            store(gi, v);
        }
        for (gi, xi) in gc.into_remainder().iter_mut().zip(xc.remainder()) {
            *gi += a * xi;
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod lanes {
    use std::slice::ChunksExact;

    #[inline(always)]
    pub fn dot8(a: ChunksExact<f32>, b: ChunksExact<f32>) -> [f32; 8] {
        let mut acc = [0.0f32; 8];
        for (x, y) in a.zip(b) {
            for j in 0..8 {
                acc[j] += x[j] * y[j];
            }
        }
        acc
    }

    #[inline(always)]
    pub fn axpy(acc: &mut [f32], x: &[f32], a: f32) {
        for (y, &x) in acc.iter_mut().zip(x) {
            *y += a * x;
        }
    }
}
