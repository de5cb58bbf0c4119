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
