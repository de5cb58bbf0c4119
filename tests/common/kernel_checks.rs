//! Every fast kernel of `glassbox_kernels` against its plain reference (candle's op, or a straightforward loop in
//! f64) on seeded random inputs, edge sizes included: lengths that are not a multiple of the SIMD width (0, 1,
//! 3, 7, 9, 15, 17, ...), large magnitudes, -inf from the causal mask. Shared by tests/kernels.rs (native) and
//! tests/web.rs (wasm32 in Chromium, where the kernels run as simd128 code), so both targets check the same.
//!
//! Tolerances, and why:
//! - exp: 5e-7 relative (a degree-6 polynomial after range reduction; the f64 `exp` is the reference);
//! - sigmoid and GELU: 1e-6 relative to max(1, |x|) against the f64 formulas (the exp's error, a few roundings);
//! - softmax and LayerNorm: 1e-6 absolute / relative against candle's ops (summation order differs);
//! - the causal scale-and-mask and the bias add: bit for bit (the same operations in the same order);
//! - max-pool, its backward, the ReLU mask and the kernel flip: exactly (a maximum is one of its inputs);
//! - convolution: 1e-5 relative to the largest output against candle's conv2d (the sums run in another order);
//! - the matrix product: 1e-6 of `sum |a| |b|` per output against an f64 sum (f32 sums of up to 1000 terms in
//!   another order), and exactly 0 where the depth is 0;
//! - GELU's derivative: as GELU; LayerNorm's backward: 1e-5 of its terms' size against the f64 formula.
#![allow(dead_code)]

use candle_core::{Device, Tensor, D};
use glassbox::lens::rng::Rng;
use glassbox_kernels as k;

#[path = "matmul_checks.rs"]
mod matmul_checks;

/// Lengths that exercise every remainder of 4-, 8- and 16-wide loops.
pub const LENGTHS: [usize; 12] = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 33, 1000];

fn randoms(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.normal() * scale).collect()
}

fn tensor(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

pub fn exp_is_accurate_over_its_range() {
    let mut worst = 0.0f64;
    for i in 0..=200_000 {
        let x = -87.0 * i as f32 / 200_000.0;
        let want = (x as f64).exp();
        worst = worst.max(((k::exp_nonpositive(x) as f64) - want).abs() / want);
    }
    assert!(worst < 5e-7, "exp: worst relative error {worst}");
    assert_eq!(k::exp_nonpositive(0.0), 1.0);
    // Below its range, and the mask's -inf: the smallest value it gives, never NaN.
    for x in [-88.0, -1e4, f32::NEG_INFINITY] {
        let e = k::exp_nonpositive(x);
        assert!(e > 0.0 && e < 2e-38, "exp({x}) = {e}");
    }
}

/// The f64 formulas the GELU kernel computes: tanh form, as GPT-2 defines it.
fn gelu_f64(x: f32) -> f64 {
    let x = x as f64;
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
}

pub fn sigmoid_and_gelu_match_the_f64_formulas() {
    let mut rng = Rng::new(11);
    for &n in &LENGTHS {
        for scale in [1.0f32, 4.0, 30.0, 1e3] {
            let x = randoms(&mut rng, n, scale);
            let mut out = vec![f32::NAN; n];
            k::gelu_new(&x, &mut out);
            for (&x, &y) in x.iter().zip(&out) {
                let want = gelu_f64(x);
                let err = (y as f64 - want).abs() / (x.abs() as f64).max(1.0);
                assert!(err < 1e-6, "gelu_new({x}) = {y}, want {want} (n {n})");
                let s = k::sigmoid(x) as f64;
                let want = 1.0 / (1.0 + (-(x as f64)).exp());
                assert!((s - want).abs() <= 1e-6 * want.max(1e-30) + 1e-37, "sigmoid({x}) = {s}, want {want}");
            }
        }
    }
    // Exact points and the far tails: gelu(0) = 0, gelu(x) = x for large x, ~0 (never NaN) for very negative x.
    let x = [0.0, 1e20, -1e20, 50.0, -50.0, f32::INFINITY, f32::MAX];
    let mut out = [f32::NAN; 7];
    k::gelu_new(&x, &mut out);
    assert_eq!(out[0], 0.0);
    assert_eq!(out[1], 1e20);
    assert!(out[2].abs() < 1e-17 && out[4].abs() < 1e-30, "{out:?}");
    assert_eq!(out[3], 50.0);
    assert_eq!(out[5], f32::INFINITY);
    assert_eq!(out[6], f32::MAX);
}

/// The GELU kernel against the candle ops the transformer used before it (`x * sigmoid(c (x + 0.044715 x^3))`).
pub fn gelu_matches_the_candle_ops() {
    let mut rng = Rng::new(12);
    for &n in &LENGTHS[1..] {
        let x = randoms(&mut rng, n, 3.0);
        let t = tensor(&x, &[n]);
        let c = 2.0 * (2.0 / std::f64::consts::PI).sqrt();
        let u = (&t + (t.sqr().unwrap() * &t).unwrap().affine(0.044715, 0.0).unwrap()).unwrap().affine(c, 0.0).unwrap();
        let want = values(&(&t * candle_nn::ops::sigmoid(&u).unwrap()).unwrap());
        let mut got = vec![0.0; n];
        k::gelu_new(&x, &mut got);
        for ((&a, &b), &x) in got.iter().zip(&want).zip(&x) {
            assert!((a - b).abs() <= 1e-6 * x.abs().max(1.0), "gelu({x}): kernel {a}, candle {b}");
        }
    }
}

pub fn softmax_matches_candle_with_masks_and_edges() {
    let mut rng = Rng::new(13);
    for &n in &LENGTHS[1..] {
        for scale in [1.0f32, 10.0, 1e4] {
            let rows = 5;
            let mut v = randoms(&mut rng, rows * n, scale);
            // A causal-like mask: row r keeps its first r + 1 entries; the last row is fully masked.
            for (r, row) in v.chunks_exact_mut(n).enumerate() {
                let keep = if r == rows - 1 { 0 } else { (r + 1).min(n) };
                row[keep..].fill(f32::NEG_INFINITY);
            }
            let want = values(&candle_nn::ops::softmax(&tensor(&v, &[rows, n]), D::Minus1).unwrap());
            let mut got = v.clone();
            k::softmax_rows(&mut got, n);
            for (r, (g, w)) in got.chunks_exact(n).zip(want.chunks_exact(n)).enumerate() {
                if r == rows - 1 {
                    assert!(g.iter().all(|x| x.is_nan()), "a fully masked row is NaN: {g:?}");
                    continue;
                }
                for (j, (&a, &b)) in g.iter().zip(w).enumerate() {
                    if v[r * n + j] == f32::NEG_INFINITY {
                        assert_eq!(a, 0.0, "masked entries are exactly 0");
                    }
                    assert!((a - b).abs() < 1e-6, "softmax row {r} entry {j}: {a} vs {b} (n {n}, scale {scale})");
                }
                let s: f32 = g.iter().sum();
                assert!((s - 1.0).abs() < 1e-5, "row sums to {s}");
            }
        }
    }
    k::softmax_rows(&mut [], 0);
}

/// The logit lens's row statistics (`max_exp_sum`, `count_above`) against f64 loops, every remainder of the
/// lanes, with -inf and a NaN.
pub fn row_statistics_match_f64() {
    let mut rng = Rng::new(21);
    for &n in &LENGTHS {
        for scale in [1.0f32, 30.0] {
            let mut v = randoms(&mut rng, n, scale);
            if n > 2 {
                v[n / 2] = f32::NEG_INFINITY;
            }
            let (m, s) = k::max_exp_sum(&v);
            let want_m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(m, want_m, "max of {n}");
            let want_s: f64 = v.iter().map(|&x| (x as f64 - want_m as f64).exp()).sum();
            if n == 0 {
                assert_eq!(s, 0.0);
            } else {
                assert!(((s as f64) - want_s).abs() <= 1e-6 * want_s, "sum of exps over {n}: {s} vs {want_s}");
            }
            for t in [f32::NEG_INFINITY, -1.0, 0.0, 0.5 * scale, v.first().copied().unwrap_or(0.0)] {
                assert_eq!(k::count_above(&v, t), v.iter().filter(|&&x| x > t).count(), "count above {t} of {n}");
            }
        }
    }
    assert_eq!(k::max_exp_sum(&[f32::NEG_INFINITY; 3]), (f32::NEG_INFINITY, 0.0));
    let (m, s) = k::max_exp_sum(&[1.0, f32::NAN, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0]);
    assert_eq!(m, 3.0);
    assert!(s.is_nan(), "a NaN logit makes the sum NaN, not a number");
    assert_eq!(k::count_above(&[f32::NAN, 1.0], 0.0), 1);
}

pub fn layer_norm_matches_candle() {
    let mut rng = Rng::new(14);
    for &n in &LENGTHS[1..] {
        for (scale, offset) in [(1.0f32, 0.0f32), (0.01, 3.0), (100.0, -1e3)] {
            let rows = 3;
            let x: Vec<f32> = randoms(&mut rng, rows * n, scale).iter().map(|v| v + offset).collect();
            let (w, b) = (randoms(&mut rng, n, 1.0), randoms(&mut rng, n, 1.0));
            let eps = 1e-5f64;
            let t = tensor(&x, &[rows, n]);
            let centred = t.broadcast_sub(&t.mean_keepdim(D::Minus1).unwrap()).unwrap();
            let sd = (centred.sqr().unwrap().mean_keepdim(D::Minus1).unwrap() + eps).unwrap().sqrt().unwrap();
            let normed = centred.broadcast_div(&sd).unwrap();
            let want =
                values(&normed.broadcast_mul(&tensor(&w, &[n])).unwrap().broadcast_add(&tensor(&b, &[n])).unwrap());
            let want_sd = values(&sd);
            let (mut out, mut got_sd) = (vec![0.0; rows * n], vec![0.0; rows]);
            k::layer_norm(&x, &w, &b, eps as f32, &mut out, &mut got_sd);
            for (a, b) in got_sd.iter().zip(&want_sd) {
                assert!((a - b).abs() <= 1e-5 * b.abs(), "scale {a} vs {b} (n {n})");
            }
            // Relative to the weights' size: the normalised values are O(1), times w plus b.
            for (i, (&a, &c)) in out.iter().zip(&want).enumerate() {
                // Centring a row far from 0 cancels: both sides' means differ by their summation order, a few
                // ulps of the offset, which the division by the (small) spread magnifies.
                let tol = 4e-6 * (w[i % n].abs() + 1.0) * (1.0 + offset.abs() / scale);
                assert!((a - c).abs() <= tol, "layer_norm [{i}] {a} vs {c} (n {n}, scale {scale}, offset {offset})");
            }
        }
    }
}

/// The additive causal mask `[q, keys]`: 0 where query `i` (at position `start + i`) may see key `j`, else -inf.
fn causal_mask(q: usize, keys: usize, start: usize) -> Vec<f32> {
    (0..q * keys).map(|i| if i % keys > start + i / keys { f32::NEG_INFINITY } else { 0.0 }).collect()
}

pub fn bias_add_and_causal_mask_are_bit_exact() {
    let mut rng = Rng::new(15);
    for &n in &LENGTHS[1..] {
        let rows = 4;
        let y = randoms(&mut rng, rows * n, 5.0);
        let b = randoms(&mut rng, n, 5.0);
        let want = values(&tensor(&y, &[rows, n]).broadcast_add(&tensor(&b, &[n])).unwrap());
        let mut got = y.clone();
        k::add_rows(&mut got, &b);
        assert_eq!(got, want);
    }
    for (q, start) in [(1, 0), (1, 5), (3, 0), (7, 2), (17, 0), (16, 16)] {
        let keys = start + q;
        let heads = 3;
        let s = randoms(&mut rng, heads * q * keys, 10.0);
        let mask = causal_mask(q, keys, start);
        for mul in [1.0f64, 1.0 / 32f64.sqrt()] {
            let want = values(
                &(tensor(&s, &[heads, q, keys]) * mul).unwrap().broadcast_add(&tensor(&mask, &[q, keys])).unwrap(),
            );
            let mut got = vec![f32::NAN; s.len()];
            k::scale_causal(&s, &mut got, q, keys, start, mul as f32);
            let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "scale_causal q {q} start {start} mul {mul}");
        }
    }
}

/// `softmax_causal`, and `scale_causal` then `softmax_visible`, are `scale_causal` then `softmax_rows`, bit for
/// bit, with and without cached keys in front.
pub fn fused_causal_softmax_is_the_two_steps() {
    let mut rng = Rng::new(19);
    for (q, start) in [(1, 0), (1, 5), (3, 0), (7, 2), (17, 0), (16, 16), (33, 1)] {
        let keys = start + q;
        let heads = 3;
        let s = randoms(&mut rng, heads * q * keys, 10.0);
        for mul in [1.0f32, 1.0 / 32f32.sqrt()] {
            let mut masked = vec![f32::NAN; s.len()];
            k::scale_causal(&s, &mut masked, q, keys, start, mul);
            let mut want = masked.clone();
            k::softmax_rows(&mut want, keys);
            let mut got = vec![f32::NAN; s.len()];
            k::softmax_causal(&s, &mut got, q, keys, start, mul);
            let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "softmax_causal q {q} start {start} mul {mul}");
            // The cached run's two steps: scores kept masked, then the softmax over their visible part.
            let mut got = vec![f32::NAN; s.len()];
            k::softmax_visible(&masked, &mut got, q, keys, start);
            let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "softmax_visible q {q} start {start} mul {mul}");
        }
    }
    k::softmax_causal(&[], &mut [], 0, 0, 0, 1.0);
    k::softmax_visible(&[], &mut [], 0, 0, 0);
    // Visible scores all -inf: NaN throughout, as softmax_rows makes such a row.
    let mut row = vec![0.0; 6];
    k::softmax_visible(&[f32::NEG_INFINITY; 6], &mut row, 2, 3, 0);
    assert!(row.iter().all(|x| x.is_nan()), "{row:?}");
}

pub fn conv2d_matches_candle() {
    let mut rng = Rng::new(16);
    let mut cases = 0;
    for (h, w) in [(1, 1), (2, 3), (3, 3), (7, 7), (13, 9), (14, 14), (28, 28)] {
        for (c_in, c_out) in [(1, 1), (1, 8), (3, 5), (16, 4)] {
            for (kk, pad) in [(1, 0), (3, 1), (3, 0), (5, 2), (3, 2)] {
                if h + 2 * pad < kk || w + 2 * pad < kk {
                    continue;
                }
                let batch = 1 + cases % 2;
                let x = randoms(&mut rng, batch * c_in * h * w, 1.0);
                let wt = randoms(&mut rng, c_out * c_in * kk * kk, 0.5);
                let bias = randoms(&mut rng, c_out, 0.5);
                let xt = tensor(&x, &[batch, c_in, h, w]);
                let wtt = tensor(&wt, &[c_out, c_in, kk, kk]);
                let conv = xt.conv2d(&wtt, pad, 1, 1, 1).unwrap();
                let shape = k::Conv { batch, c_in, h, w, c_out, k: kk, pad };
                let (oh, ow) = shape.out_side();
                assert_eq!(conv.dims(), &[batch, c_out, oh, ow]);
                let with_bias = conv.broadcast_add(&tensor(&bias, &[1, c_out, 1, 1])).unwrap();
                for relu in [false, true] {
                    let want = values(&if relu { with_bias.relu().unwrap() } else { with_bias.clone() });
                    let got = k::conv2d(&x, &wt, Some(&bias), relu, shape);
                    let top = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                    assert!(worst <= 1e-5 * top, "conv2d {shape:?} relu {relu}: off by {worst} (largest {top})");
                }
                let plain = k::conv2d(&x, &wt, None, false, shape);
                let want = values(&conv);
                let top = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                assert!(plain.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-5 * top), "conv2d {shape:?}, no bias");
                cases += 1;
            }
        }
    }
    assert!(cases > 80, "{cases} cases");
    // Nothing in, nothing out.
    let empty = k::Conv { batch: 0, c_in: 1, h: 4, w: 4, c_out: 2, k: 3, pad: 1 };
    assert!(k::conv2d(&[], &[0.0; 18], None, true, empty).is_empty());
}

pub fn max_pool2_matches_candle() {
    let mut rng = Rng::new(17);
    for (h, w) in [(2, 2), (3, 3), (7, 7), (14, 14), (28, 28), (5, 8), (9, 2)] {
        let maps = 3;
        let x = randoms(&mut rng, maps * h * w, 2.0);
        let want = values(&tensor(&x, &[1, maps, h, w]).max_pool2d(2).unwrap());
        assert_eq!(k::max_pool2(&x, maps, h, w), want, "max_pool2 {h}x{w}");
    }
    // Maps too small to pool give nothing.
    assert!(k::max_pool2(&[1.0, 2.0], 2, 1, 1).is_empty());
    assert!(k::max_pool2(&[], 0, 4, 4).is_empty());
}

/// The backward pieces of the hand-written input gradient against straightforward references: candle's flip and
/// transpose, the ReLU mask as candle ops, the pool's backward as a plain loop (ties shared equally).
pub fn backward_kernels_match_references() {
    let mut rng = Rng::new(18);
    for (c_out, c_in, kk) in [(1, 1, 1), (4, 3, 3), (2, 5, 5)] {
        let w = randoms(&mut rng, c_out * c_in * kk * kk, 1.0);
        let want = values(
            &tensor(&w, &[c_out, c_in, kk, kk]).flip(&[2, 3]).unwrap().transpose(0, 1).unwrap().contiguous().unwrap(),
        );
        assert_eq!(k::flip_transpose(&w, c_out, c_in, kk), want);
    }
    for &n in &LENGTHS {
        let g = randoms(&mut rng, n, 1.0);
        let mut post = randoms(&mut rng, n, 1.0);
        if n > 2 {
            post[1] = 0.0;
        }
        let want = if n == 0 {
            vec![]
        } else {
            let mask = tensor(&post, &[n]).gt(0f32).unwrap().to_dtype(candle_core::DType::F32).unwrap();
            values(&(tensor(&g, &[n]) * mask).unwrap())
        };
        let mut got = g.clone();
        k::relu_backward(&mut got, &post);
        assert_eq!(got, want, "relu_backward n {n}");
    }
    for (h, w) in [(2, 2), (3, 5), (7, 7), (14, 14)] {
        let maps = 2;
        // Values on a coarse grid, so that windows often hold tied maxima.
        let x: Vec<f32> = (0..maps * h * w).map(|_| (rng.uniform() * 3.0).floor()).collect();
        let g = randoms(&mut rng, maps * (h / 2) * (w / 2), 1.0);
        let mut want = vec![0f32; x.len()];
        for m in 0..maps {
            for y in 0..h / 2 {
                for xx in 0..w / 2 {
                    let idx: Vec<usize> = [(0, 0), (0, 1), (1, 0), (1, 1)]
                        .iter()
                        .map(|(dy, dx)| m * h * w + (2 * y + dy) * w + 2 * xx + dx)
                        .collect();
                    let top = idx.iter().map(|&i| x[i]).fold(f32::NEG_INFINITY, f32::max);
                    let ties = idx.iter().filter(|&&i| x[i] == top).count() as f32;
                    for &i in &idx {
                        if x[i] == top {
                            want[i] = g[m * (h / 2) * (w / 2) + y * (w / 2) + xx] / ties;
                        }
                    }
                }
            }
        }
        assert_eq!(k::max_pool2_backward(&x, &g, maps, h, w), want, "max_pool2_backward {h}x{w}");
    }
}

/// The transformer's backward kernels (attribution patching's hand-written backward pass) against the f64
/// formulas: gelu_new's derivative to 1e-6 relative to max(1, |x|), as the forward; LayerNorm's input gradient to
/// 1e-5 of its terms' size (more where the row sits far from 0, as for the forward).
pub fn transformer_backward_kernels_match_f64() {
    let mut rng = Rng::new(20);
    let c = (2.0 / std::f64::consts::PI).sqrt();
    for &n in &LENGTHS {
        for scale in [1.0f32, 4.0, 30.0, 1e3] {
            let x = randoms(&mut rng, n, scale);
            let g = randoms(&mut rng, n, 1.0);
            let mut got = g.clone();
            k::gelu_new_backward(&x, &mut got);
            for ((&a, &x), &g) in got.iter().zip(&x).zip(&g) {
                let xf = x as f64;
                let th = (c * (xf + 0.044715 * xf * xf * xf)).tanh();
                let d = 0.5 * (1.0 + th) + 0.5 * xf * (1.0 - th * th) * c * (1.0 + 3.0 * 0.044715 * xf * xf);
                let want = d * g as f64;
                assert!((a as f64 - want).abs() <= 1e-6 * (x.abs().max(1.0) as f64), "gelu'({x}) {g}: {a} vs {want}");
            }
        }
    }
    for &n in &LENGTHS[1..] {
        for (scale, offset) in [(1.0f32, 0.0f32), (0.01, 3.0), (100.0, -1e3)] {
            let rows = 3;
            let x: Vec<f32> = randoms(&mut rng, rows * n, scale).iter().map(|v| v + offset).collect();
            let (w, g) = (randoms(&mut rng, n, 1.0), randoms(&mut rng, rows * n, 1.0));
            let eps = 1e-5f64;
            let mut got = vec![0.0; rows * n];
            k::layer_norm_backward(&x, &w, eps as f32, &g, &mut got);
            for r in 0..rows {
                let (x, g) = (&x[r * n..(r + 1) * n], &g[r * n..(r + 1) * n]);
                let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
                let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
                let sd = (var + eps).sqrt();
                let xhat: Vec<f64> = x.iter().map(|&v| (v as f64 - mean) / sd).collect();
                let gw: Vec<f64> = g.iter().zip(&w).map(|(&g, &w)| g as f64 * w as f64).collect();
                let g_mean = gw.iter().sum::<f64>() / n as f64;
                let gx_mean = gw.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f64>() / n as f64;
                let want: Vec<f64> = (0..n).map(|i| (gw[i] - g_mean - xhat[i] * gx_mean) / sd).collect();
                // Relative to the terms' size, |grad w| / scale: the result can cancel to far less (with two
                // values a row, LayerNorm's output barely depends on its input).
                let terms = gw.iter().fold(0.0f64, |m, v| m.max(v.abs())) / sd;
                let tol = 1e-5 * terms * (1.0 + (offset / scale).abs() as f64);
                for (i, (&a, &b)) in got[r * n..(r + 1) * n].iter().zip(&want).enumerate() {
                    assert!(
                        (a as f64 - b).abs() <= tol,
                        "layer_norm_backward [{r}, {i}] {a} vs {b} (n {n}, scale {scale})"
                    );
                }
            }
        }
    }
}

/// The probe's dot product and `g += r x`: bit for bit the plain loops they replace (eight lanes summed in
/// order, then the remainder; element by element).
pub fn dot_and_axpy_match_references() {
    let mut rng = Rng::new(19);
    for &n in &LENGTHS {
        let a = randoms(&mut rng, n, 1.0);
        let b = randoms(&mut rng, n, 1.0);
        let mut lanes = [0f32; 8];
        let full = n / 8 * 8;
        for i in 0..full {
            lanes[i % 8] += a[i] * b[i];
        }
        let mut want: f32 = lanes.iter().sum();
        for i in full..n {
            want += a[i] * b[i];
        }
        assert_eq!(k::dot(&a, &b).to_bits(), want.to_bits(), "dot n {n}");
        let mut g = randoms(&mut rng, n, 1.0);
        let want: Vec<f32> = g.iter().zip(&a).map(|(g, x)| g + 0.3 * x).collect();
        k::axpy(&mut g, &a, 0.3);
        assert_eq!(g, want, "axpy n {n}");
    }
}

/// `glassbox_kernels::matmul` against an f64 product (tests/common/matmul_checks.rs, which the relaxed-SIMD
/// build's own test shares).
pub fn matmul_matches_f64() {
    matmul_checks::matmul_matches_f64();
    matmul_checks::gemm_matches_f64();
    matmul_checks::gemm_causal_is_gemm_where_read();
}

/// `lens::fast::matmul_kernel`, the glue from candle tensors to the kernel, against candle's matmul: a whole
/// matrix, a slice of its columns (the unembedding's vocabulary slices), a slice of its rows (their backward),
/// and a transposed view, which the kernel does not take.
pub fn fast_matmul_matches_candle() {
    use glassbox::lens::fast::{matmul_kernel, matmul_kernel_bias};
    let mut rng = Rng::new(29);
    let x = tensor(&randoms(&mut rng, 5 * 37, 1.0), &[5, 37]);
    let w = tensor(&randoms(&mut rng, 37 * 70, 1.0), &[37, 70]);
    let cases = [
        ("whole", x.clone(), w.clone()),
        ("columns 11..40", x.clone(), w.narrow(1, 11, 29).unwrap()),
        ("rows 3..8", tensor(&randoms(&mut rng, 5 * 5, 1.0), &[5, 5]), w.narrow(0, 3, 5).unwrap()),
        ("a strided x", w.narrow(1, 0, 5).unwrap().t().unwrap(), w.narrow(1, 20, 9).unwrap()),
    ];
    for (what, x, w) in cases {
        let want = values(&x.matmul(&w).unwrap());
        let got = values(&matmul_kernel(&x, &w).unwrap().unwrap_or_else(|| panic!("{what}: not taken")));
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, e) in got.iter().zip(&want) {
            assert!((g - e).abs() <= 1e-5 * e.abs().max(1.0), "{what}: {g} against {e}");
        }
    }
    // A transposed view is read in place (below, with a bias); its values must still be adjacent one way.
    let wt = w.t().unwrap().contiguous().unwrap().t().unwrap();
    let got = values(&matmul_kernel(&x, &wt).unwrap().expect("a transposed w is taken"));
    for (g, e) in got.iter().zip(&values(&x.matmul(&w).unwrap())) {
        assert!((g - e).abs() <= 1e-5 * e.abs().max(1.0), "transposed w: {g} against {e}");
    }
    assert!(matmul_kernel(&x, &w.narrow(0, 0, 36).unwrap()).is_err(), "inner sizes differ");

    // With a bias added in the same pass (a linear layer), against candle's product plus its broadcast add; every
    // width's remainder of the 8-column tiles, and a one-row input (generation's case).
    for (rows, n) in [(5, 70), (1, 70), (9, 8), (4, 3)] {
        let x = tensor(&randoms(&mut rng, rows * 37, 1.0), &[rows, 37]);
        let w = w.narrow(1, 0, n).unwrap();
        let b = randoms(&mut rng, n, 3.0);
        let want = values(&x.matmul(&w).unwrap().broadcast_add(&tensor(&b, &[n])).unwrap());
        let got = values(&matmul_kernel_bias(&x, &w, Some(&b)).unwrap().expect("taken"));
        for (g, e) in got.iter().zip(&want) {
            assert!((g - e).abs() <= 1e-5 * e.abs().max(1.0), "with a bias, {rows} x {n}: {g} against {e}");
        }
        let linear = values(&glassbox::lens::fast::linear(&x, &w, &tensor(&b, &[n])).unwrap());
        for (g, e) in linear.iter().zip(&want) {
            assert!((g - e).abs() <= 1e-5 * e.abs().max(1.0), "fast::linear, {rows} x {n}: {g} against {e}");
        }
    }
    assert!(matmul_kernel_bias(&x, &w, Some(&[0.0; 3])).is_err(), "a bias of the wrong length");

    // A weight stored [d_out, d_in] (torch's layout, the CNN's head), given as its transposed view and read in
    // place: against candle, for every remainder of the 8-column tiles and a one-row input.
    for (rows, n, k) in [(2, 10, 288), (1, 10, 37), (5, 8, 3), (3, 17, 9)] {
        let x = tensor(&randoms(&mut rng, rows * k, 1.0), &[rows, k]);
        let w = tensor(&randoms(&mut rng, n * k, 1.0), &[n, k]).t().unwrap();
        let b = randoms(&mut rng, n, 3.0);
        let want = values(&x.matmul(&w).unwrap().broadcast_add(&tensor(&b, &[n])).unwrap());
        for (how, got) in [
            ("kernel", matmul_kernel_bias(&x, &w, Some(&b)).unwrap().expect("taken")),
            ("fast::linear", glassbox::lens::fast::linear(&x, &w, &tensor(&b, &[n])).unwrap()),
        ] {
            let got = values(&got);
            assert_eq!(got.len(), want.len());
            for (g, e) in got.iter().zip(&want) {
                assert!(
                    (g - e).abs() <= 1e-5 * e.abs().max(1.0),
                    "{how}, {rows} x {k} by [{n}, {k}]ᵀ: {g} against {e}"
                );
            }
        }
    }
    // Values adjacent along neither dimension: not taken.
    let sparse =
        tensor(&randoms(&mut rng, 37 * 70 * 2, 1.0), &[37, 70, 2]).narrow(2, 0, 1).unwrap().squeeze(2).unwrap();
    assert!(matmul_kernel(&x, &sparse).unwrap().is_none(), "a w strided both ways");
}

/// `lens::fast::attention_scores` and `attention_mix` (in the browser one kernel product per head, reading the
/// heads in place) against candle's batched matmul on contiguous copies: heads as views of a fused `[pos, 3 d]`
/// projection (as the model makes them), contiguous ones, one query row, and shapes that disagree; and the
/// causal products (with keys before the first query or not) wherever causal attention reads them.
pub fn attention_products_match_candle() {
    use glassbox::lens::fast::{attention_mix, attention_scores};
    let mut rng = Rng::new(31);
    for (batch, pos, heads, d_head) in [(1, 17, 4, 32), (2, 5, 3, 9), (1, 1, 1, 1), (1, 9, 2, 16)] {
        let d = heads * d_head;
        let qkv = tensor(&randoms(&mut rng, batch * pos * 3 * d, 1.0), &[batch, pos, 3 * d]);
        let head = |i: usize| qkv.narrow(2, i * d, d).unwrap().reshape((batch, pos, heads, d_head)).unwrap();
        let (q, k, v) =
            (head(0).transpose(1, 2).unwrap(), head(1).transpose(1, 2).unwrap(), head(2).transpose(1, 2).unwrap());
        let close = |got: &Tensor, want: &Tensor, what: &str| {
            assert_eq!(got.dims(), want.dims(), "{what}");
            for (g, e) in values(got).iter().zip(&values(want)) {
                assert!(
                    (g - e).abs() <= 1e-5 * e.abs().max(1.0),
                    "{what} ({batch}, {pos}, {heads}, {d_head}): {g} against {e}"
                );
            }
        };
        let (qc, kc, vc) = (q.contiguous().unwrap(), k.contiguous().unwrap(), v.contiguous().unwrap());
        let want = qc.matmul(&kc.t().unwrap()).unwrap();
        close(&attention_scores(&q, &k, None).unwrap(), &want, "scores from views");
        close(&attention_scores(&qc, &kc, None).unwrap(), &want, "scores from contiguous heads");
        let pattern = candle_nn::ops::softmax(&want, D::Minus1).unwrap();
        let want_z = pattern.matmul(&vc).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
        close(&attention_mix(&pattern, &v, None).unwrap(), &want_z, "z from a view of v");
        close(&attention_mix(&pattern, &vc, None).unwrap(), &want_z, "z from contiguous v");
        // Causal: the last `pos - start` queries over all `pos` keys (`start` of them before the first query).
        for start in [0, pos / 2, pos - 1] {
            let q = q.narrow(2, start, pos - start).unwrap();
            let want = q.contiguous().unwrap().matmul(&kc.t().unwrap()).unwrap();
            let got = values(&attention_scores(&q, &k, Some(start)).unwrap());
            let want_v = values(&want);
            let rows = pos - start;
            for (idx, (g, e)) in got.iter().zip(&want_v).enumerate() {
                let (i, j) = (idx / pos % rows, idx % pos);
                if j <= start + i {
                    assert!((g - e).abs() <= 1e-5 * e.abs().max(1.0), "causal scores, start {start}: {g} against {e}");
                }
            }
            // A causal pattern (zero beyond each query's keys), mixed with and without the promise.
            let mask = causal_mask(rows, pos, start);
            let masked = want.broadcast_add(&tensor(&mask, &[rows, pos])).unwrap();
            let pattern = candle_nn::ops::softmax(&masked, D::Minus1).unwrap();
            let want_z = pattern.matmul(&vc).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
            close(&attention_mix(&pattern, &v, Some(start)).unwrap(), &want_z, "causal z");
            close(&attention_mix(&pattern, &v, None).unwrap(), &want_z, "z of a causal pattern, no promise");
        }
    }
    let a = tensor(&randoms(&mut rng, 2 * 3 * 4, 1.0), &[1, 2, 3, 4]);
    assert!(
        attention_scores(&a, &tensor(&randoms(&mut rng, 2 * 5 * 3, 1.0), &[1, 2, 5, 3]), None).is_err(),
        "d_head differs"
    );
}

/// Runs every check (for tests/web.rs, where one browser test is cheaper than seven).
pub fn all() {
    exp_is_accurate_over_its_range();
    sigmoid_and_gelu_match_the_f64_formulas();
    gelu_matches_the_candle_ops();
    softmax_matches_candle_with_masks_and_edges();
    row_statistics_match_f64();
    layer_norm_matches_candle();
    bias_add_and_causal_mask_are_bit_exact();
    fused_causal_softmax_is_the_two_steps();
    conv2d_matches_candle();
    max_pool2_matches_candle();
    backward_kernels_match_references();
    transformer_backward_kernels_match_f64();
    dot_and_axpy_match_references();
    matmul_matches_f64();
    fast_matmul_matches_candle();
    attention_products_match_candle();
}
