//! Synthetic data for the toy model: n independent features, each exactly zero with probability S (the
//! sparsity) and otherwise uniform in [0, 1].
use crate::lens::rng::Rng;

/// Draws batches of sparse feature vectors. One 64-bit draw per feature gives both the on/off gate (its
/// top 24 bits) and the value (the next 24 bits), which halves the generator's work in the training loop.
#[derive(Clone, Debug)]
pub struct FeatureSampler {
    /// A feature is zero when its 24-bit gate is below this.
    zero_below: u32,
}

const SCALE_24: f32 = 1.0 / (1u32 << 24) as f32;

impl FeatureSampler {
    /// `sparsity` must be in [0, 1); the config checks that before a sampler is built.
    pub fn new(sparsity: f32) -> Self {
        FeatureSampler { zero_below: (sparsity.clamp(0.0, 1.0) as f64 * (1u64 << 24) as f64).round() as u32 }
    }

    /// Fills `x` (a whole number of feature vectors, row-major) with fresh samples.
    #[inline]
    pub fn fill(&self, rng: &mut Rng, x: &mut [f32]) {
        for v in x.iter_mut() {
            let r = rng.next_u64();
            let gate = (r >> 40) as u32;
            *v = if gate < self.zero_below { 0.0 } else { ((r >> 16) & 0xFF_FFFF) as f32 * SCALE_24 };
        }
    }
}

/// A batch of sparse feature vectors: sample s's nonzero features are `index[end[s-1]..end[s]]` with values
/// `value[..]` at the same positions (`end[-1]` taken as 0). Reused from step to step without allocating.
#[derive(Clone, Debug, Default)]
pub struct SparseBatch {
    pub n: usize,
    pub index: Vec<u32>,
    pub value: Vec<f32>,
    pub end: Vec<u32>,
}

impl SparseBatch {
    pub fn with_capacity(n: usize, batch: usize) -> Self {
        SparseBatch { n, index: Vec::with_capacity(n * batch), value: Vec::with_capacity(n * batch), end: Vec::with_capacity(batch) }
    }

    /// The sparse form of a dense `batch x n` matrix.
    pub fn from_dense(x: &[f32], n: usize) -> Self {
        let mut s = SparseBatch::with_capacity(n, x.len() / n.max(1));
        for xs in x.chunks_exact(n) {
            for (j, &v) in xs.iter().enumerate() {
                if v != 0.0 {
                    s.index.push(j as u32);
                    s.value.push(v);
                }
            }
            s.end.push(s.index.len() as u32);
        }
        s
    }

    pub fn len(&self) -> usize {
        self.end.len()
    }

    pub fn is_empty(&self) -> bool {
        self.end.is_empty()
    }

    /// Sample s as (feature indices, values).
    #[inline]
    pub fn sample(&self, s: usize) -> (&[u32], &[f32]) {
        let a = if s == 0 { 0 } else { self.end[s - 1] as usize };
        let b = self.end[s] as usize;
        (&self.index[a..b], &self.value[a..b])
    }
}

impl FeatureSampler {
    /// Fills `out` with `batch` fresh samples of `out.n` features: the same distribution and the same
    /// generator draws as `fill`, kept in sparse form.
    #[inline]
    pub fn fill_sparse(&self, rng: &mut Rng, batch: usize, out: &mut SparseBatch) {
        // Branch-free: every draw is written at the cursor, which only moves past the nonzero ones. The
        // gates are random, so a branch here would be mispredicted often.
        let n = out.n;
        out.index.resize(n * batch + 1, 0);
        out.value.resize(n * batch + 1, 0.0);
        out.end.clear();
        let mut at = 0usize;
        for _ in 0..batch {
            for j in 0..n {
                let r = rng.next_u64();
                out.index[at] = j as u32;
                out.value[at] = ((r >> 16) & 0xFF_FFFF) as f32 * SCALE_24;
                at += (((r >> 40) as u32) >= self.zero_below) as usize;
            }
            out.end.push(at as u32);
        }
        out.index.truncate(at);
        out.value.truncate(at);
    }
}

/// The hidden activations h = W x of a batch: `x` is `batch x n`, `w` is column-major (`n` columns of
/// length `m`), and `h` receives `batch x m`.
pub fn hidden(w: &[f32], n: usize, m: usize, x: &[f32], h: &mut [f32]) {
    for (xs, hs) in x.chunks_exact(n).zip(h.chunks_exact_mut(m)) {
        hs.fill(0.0);
        for (j, &xj) in xs.iter().enumerate() {
            if xj != 0.0 {
                for (hk, wk) in hs.iter_mut().zip(&w[j * m..(j + 1) * m]) {
                    *hk += xj * wk;
                }
            }
        }
    }
}
