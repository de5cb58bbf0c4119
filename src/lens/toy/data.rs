//! Synthetic data for the toy model: n independent features, each exactly zero with probability S (the
//! sparsity) and otherwise uniform in [0, 1].
use crate::lens::rng::Rng;

/// Draws batches of sparse feature vectors. One 64-bit draw serves two features, 32 bits each: a 16-bit
/// on/off gate and a 16-bit value (so values are multiples of 1/65536, and S is resolved to 1/65536). The
/// generator is a large part of a training step's work, and this halves it.
#[derive(Clone, Debug)]
pub struct FeatureSampler {
    /// A feature is zero when its 16-bit gate is below this.
    zero_below: u32,
}

const SCALE_16: f32 = 1.0 / 65536.0;

/// The (gate, value bits) of the two features one draw serves.
#[inline(always)]
fn halves(r: u64) -> [(u32, u32); 2] {
    [(((r >> 48) & 0xFFFF) as u32, ((r >> 32) & 0xFFFF) as u32), (((r >> 16) & 0xFFFF) as u32, (r & 0xFFFF) as u32)]
}

impl FeatureSampler {
    /// `sparsity` must be in [0, 1); the config checks that before a sampler is built.
    pub fn new(sparsity: f32) -> Self {
        FeatureSampler { zero_below: (sparsity.clamp(0.0, 1.0) as f64 * 65536.0).round() as u32 }
    }

    /// Fills `x` with fresh samples of `n` features each (`batch x n`, row-major). Each sample starts on a
    /// fresh draw, so an odd n leaves half of its last draw unused.
    pub fn fill(&self, rng: &mut Rng, n: usize, x: &mut [f32]) {
        for xs in x.chunks_exact_mut(n) {
            for pair in xs.chunks_mut(2) {
                for (v, (gate, bits)) in pair.iter_mut().zip(halves(rng.next_u64())) {
                    *v = if gate < self.zero_below { 0.0 } else { bits as f32 * SCALE_16 };
                }
            }
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
        SparseBatch {
            n,
            index: Vec::with_capacity(n * batch),
            value: Vec::with_capacity(n * batch),
            end: Vec::with_capacity(batch),
        }
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
        out.index.resize(n * batch + 2, 0);
        out.value.resize(n * batch + 2, 0.0);
        out.end.clear();
        let mut at = 0usize;
        for _ in 0..batch {
            let mut j = 0;
            while j < n {
                let [a, b] = halves(rng.next_u64());
                out.index[at] = j as u32;
                out.value[at] = a.1 as f32 * SCALE_16;
                at += (a.0 >= self.zero_below) as usize;
                if j + 1 < n {
                    out.index[at] = j as u32 + 1;
                    out.value[at] = b.1 as f32 * SCALE_16;
                    at += (b.0 >= self.zero_below) as usize;
                }
                j += 2;
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
