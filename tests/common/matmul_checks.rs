//! The matrix product's check, shared by the engine's kernel checks (tests/common/kernel_checks.rs: natively and
//! in Chromium) and by the relaxed-SIMD build's own test in Chromium (kernels/tests/web_relaxed.rs), which is why
//! it needs nothing but `glassbox_kernels`: values from a small generator of its own rather than the engine's.
//!
//! Tolerance: 1e-6 of `sum |a| |b|` per output against an f64 sum (f32 sums of up to 600 terms in another
//! order, with or without a fused multiply-add), and exactly 0 where the depth is 0.

use glassbox_kernels as k;

/// Uniform values in [-1, 1) from a 64-bit linear congruential generator (Knuth's MMIX constants): the check
/// needs varied values, not statistical quality.
struct Uniform(u64);

impl Uniform {
    fn take(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }
}

/// `glassbox_kernels::matmul` against an f64 product, for every remainder of its 4 x 8 tile and 256-deep
/// pieces, with `b` read as a column slice of a wider matrix (row stride above its width) as the unembedding's
/// vocabulary slices are.
pub fn matmul_matches_f64() {
    let mut rng = Uniform(23);
    let sizes = [0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 17, 33];
    let depths = [0, 1, 3, 8, 255, 256, 257, 600];
    for &m in &sizes {
        for &n in &sizes {
            for &kd in &depths {
                // b is the columns [off, off + n) of a [kd, n + off + extra] matrix.
                let (off, extra) = (m % 3, n % 2);
                let ldb = n + off + extra;
                let a = rng.take(m * kd);
                let wide = rng.take(kd * ldb);
                let b = &wide[off.min(wide.len())..];
                let mut c = vec![f32::NAN; m * n];
                k::matmul(&a, m, kd, b, ldb, n, &mut c);
                for i in 0..m {
                    for j in 0..n {
                        let (mut want, mut size) = (0f64, 0f64);
                        for p in 0..kd {
                            let t = a[i * kd + p] as f64 * b[p * ldb + j] as f64;
                            want += t;
                            size += t.abs();
                        }
                        let got = c[i * n + j] as f64;
                        assert!(
                            (got - want).abs() <= 1e-6 * size,
                            "matmul {m}x{kd}x{n} (ldb {ldb}) at ({i}, {j}): {got} against {want}"
                        );
                    }
                }
            }
        }
    }
}

/// `glassbox_kernels::gemm` with every stride in play, against an f64 product: `a` and `c` as a head's columns
/// of wider rows (row strides above their widths, as the attention reads `q` and writes `z` in place), `b` read
/// directly or as its transpose (`q kᵀ`), with and without a bias; and the values of `c` outside its `m x n`
/// block left as they were.
pub fn gemm_matches_f64() {
    let mut rng = Uniform(29);
    let sizes = [1, 3, 4, 5, 8, 9, 17];
    let depths = [1, 7, 16, 257];
    let mut cases = 0;
    for &m in &sizes {
        for &n in &sizes {
            for &kd in &depths {
                for b_transposed in [false, true] {
                    let (lda, ldc) = (kd + 1 + m % 3, n + 2);
                    let ldb = if b_transposed { kd + n % 3 } else { n + 1 };
                    let s = k::Gemm { m, k: kd, n, lda, ldb, ldc, b_transposed };
                    let a = rng.take(m * lda);
                    let b = rng.take(if b_transposed { n * ldb } else { kd * ldb });
                    let b_at = |p: usize, j: usize| if b_transposed { b[j * ldb + p] } else { b[p * ldb + j] };
                    let bias = (cases % 2 == 1).then(|| rng.take(n));
                    let mut c = vec![f32::NAN; m * ldc];
                    k::gemm(&a, &b, bias.as_deref(), &mut c, s);
                    for i in 0..m {
                        for j in 0..ldc {
                            let got = c[i * ldc + j] as f64;
                            if j >= n {
                                assert!(got.is_nan(), "gemm {s:?} wrote outside its block at ({i}, {j})");
                                continue;
                            }
                            let mut want = bias.as_ref().map_or(0.0, |b| b[j] as f64);
                            let mut size = want.abs();
                            for p in 0..kd {
                                let t = a[i * lda + p] as f64 * b_at(p, j) as f64;
                                want += t;
                                size += t.abs();
                            }
                            assert!(
                                (got - want).abs() <= 1e-6 * size,
                                "gemm {s:?} at ({i}, {j}): {got} against {want}"
                            );
                        }
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 7 * 7 * 4 * 2);
}

/// `glassbox_kernels::gemm_causal` against `gemm`, bit for bit where causal attention reads the result: the
/// scores (`Causal::Columns`, `b` transposed as the keys are) at every `j <= start + i`, and the mix
/// (`Causal::Depth`, `a` zero beyond each row's last visible key, as a causal pattern is) everywhere. Sizes
/// around the 4 x 8 tile, with and without keys before the first query (`start`), depths up to past 256.
pub fn gemm_causal_is_gemm_where_read() {
    let mut rng = Uniform(37);
    let mut cases = 0;
    for m in [1, 3, 4, 5, 8, 9, 17, 64] {
        for start in [0, 1, 5, 8] {
            let keys = start + m;
            // The scores: q [m, d_head] by kᵀ, k [keys, d_head] read in place.
            for d_head in [1, 7, 16] {
                let s = k::Gemm { m, k: d_head, n: keys, lda: d_head, ldb: d_head, ldc: keys, b_transposed: true };
                let (q, kt) = (rng.take(m * d_head), rng.take(keys * d_head));
                let mut full = vec![f32::NAN; m * keys];
                k::gemm(&q, &kt, None, &mut full, s);
                let mut part = vec![f32::NAN; m * keys];
                k::gemm_causal(&q, &kt, &mut part, s, k::Causal::Columns { start });
                for i in 0..m {
                    for j in 0..=start + i {
                        let (g, e) = (part[i * keys + j], full[i * keys + j]);
                        assert_eq!(g.to_bits(), e.to_bits(), "scores {s:?} start {start} at ({i}, {j}): {g} vs {e}");
                    }
                }
                cases += 1;
            }
            // The mix: pattern [m, keys], zero beyond each row's keys, by v [keys, d_head] (rows ldb apart).
            for (d_head, ldb) in [(1, 1), (9, 12), (16, 48)] {
                let mut pattern = rng.take(m * keys);
                for i in 0..m {
                    pattern[i * keys + start + i + 1..(i + 1) * keys].fill(0.0);
                }
                let v = rng.take(keys * ldb);
                let s = k::Gemm { m, k: keys, n: d_head, lda: keys, ldb, ldc: d_head + 2, b_transposed: false };
                let mut full = vec![f32::NAN; m * (d_head + 2)];
                k::gemm(&pattern, &v, None, &mut full, s);
                let mut part = vec![f32::NAN; m * (d_head + 2)];
                k::gemm_causal(&pattern, &v, &mut part, s, k::Causal::Depth { start });
                for (idx, (g, e)) in part.iter().zip(&full).enumerate() {
                    assert_eq!(g.to_bits(), e.to_bits(), "mix {s:?} start {start} at {idx}: {g} vs {e}");
                }
                cases += 1;
            }
        }
    }
    // Deeper than one 256-long piece of the depth: keys past 256.
    let (m, start, d_head) = (70, 200, 8);
    let keys = start + m;
    let mut pattern = rng.take(m * keys);
    for i in 0..m {
        pattern[i * keys + start + i + 1..(i + 1) * keys].fill(0.0);
    }
    let v = rng.take(keys * d_head);
    let s = k::Gemm { m, k: keys, n: d_head, lda: keys, ldb: d_head, ldc: d_head, b_transposed: false };
    let (mut full, mut part) = (vec![0f32; m * d_head], vec![0f32; m * d_head]);
    k::gemm(&pattern, &v, None, &mut full, s);
    k::gemm_causal(&pattern, &v, &mut part, s, k::Causal::Depth { start });
    assert!(part.iter().zip(&full).all(|(g, e)| g.to_bits() == e.to_bits()), "mix over two depth pieces");
    assert_eq!(cases, 8 * 4 * 6);
}
