//! The toy model of superposition (Elhage et al. 2022): n sparse features are squeezed into m < n hidden
//! dimensions and read back out,
//!
//! ```text
//! h = W x            // [m]     W is m x n, its column W_i is feature i's direction
//! x' = ReLU(Wᵀh + b) // [n]
//! ```
//!
//! trained to minimise the importance-weighted error, averaged over the batch:
//! `L = mean_batch Σ_i I_i (x_i - x'_i)²`, with I_i = r^i (r = 1: all features equally important).
//!
//! The forward and backward passes are written by hand on flat f32 buffers (`sparse_loss_and_grad`), and
//! `ToyModel::step` allocates nothing, so a browser thread runs thousands of steps per second. A Web Worker
//! calls `step(k)` in chunks and posts a `ToySnapshot` (plain data, serde) to the page after each chunk.
use serde::{Deserialize, Serialize};

use super::adam::Adam;
use super::data::{FeatureSampler, SparseBatch};
use crate::lens::rng::Rng;
use crate::lens::{LensError, Result};

/// Largest hidden size: the SAE kernel keeps per-sample vectors of this length on the stack.
pub const MAX_HIDDEN: usize = 64;
/// Largest number of features and batch size, so a slip of the keyboard cannot exhaust the page's memory.
pub const MAX_FEATURES: usize = 1000;
pub const MAX_BATCH: usize = 65_536;
/// A weight beyond this counts as diverged: no sensible solution comes near it, and its square products
/// (WᵀW, the metrics) would overflow f32.
pub const MAX_WEIGHT: f32 = 1e6;

/// What went wrong in a step, if anything: the loss or a weight stopped being a (reasonable) number.
pub(crate) fn divergence(loss: f32, params: &[f32]) -> Option<&'static str> {
    if !loss.is_finite() {
        Some("the loss is no longer a finite number")
    } else if params.iter().any(|p| !p.is_finite()) {
        Some("a weight is no longer a finite number")
    } else if params.iter().any(|p| p.abs() > MAX_WEIGHT) {
        Some("a weight has grown past 1e6")
    } else {
        None
    }
}

/// The training state the toy model and the toy SAE share: the parameters in one flat buffer, Adam, the loss
/// log and the divergence guard. A step whose loss or parameters stop being reasonable numbers is undone, and
/// training stays stopped, with a message, until a reset.
#[derive(Clone, Debug)]
pub(crate) struct Descent {
    pub params: Vec<f32>,
    /// Filled by the caller before `apply`.
    pub grads: Vec<f32>,
    /// The parameters before the current step, restored if the step diverges.
    backup: Vec<f32>,
    adam: Adam,
    pub step: usize,
    /// The last step's loss (NaN before the first step).
    pub loss: f32,
    pub losses: LossLog,
    pub status: Status,
}

impl Descent {
    pub fn new(params: Vec<f32>) -> Self {
        let len = params.len();
        Descent {
            grads: vec![0.0; len],
            backup: params.clone(),
            adam: Adam::new(len),
            params,
            step: 0,
            loss: f32::NAN,
            losses: LossLog::new(),
            status: Status::Ready,
        }
    }

    /// Adam's moments start afresh (after the parameters were set by hand).
    pub fn restart_adam(&mut self) {
        self.adam = Adam::new(self.params.len());
    }

    /// The divergence's message while training is stopped by one.
    pub fn ensure_ready(&self) -> Result<()> {
        match &self.status {
            Status::Diverged { message, .. } => Err(LensError::Input(message.clone())),
            Status::Ready => Ok(()),
        }
    }

    /// One Adam step along `grads` (computed at `loss`), then `constrain` on the parameters (a projection, say).
    /// On divergence the step is undone and the error names `what` was training.
    pub fn apply(&mut self, lr: f32, loss: f32, what: &str, constrain: impl FnOnce(&mut [f32])) -> Result<()> {
        self.backup.copy_from_slice(&self.params);
        self.adam.step(lr, &mut self.params, &self.grads);
        constrain(&mut self.params);
        if let Some(why) = divergence(loss, &self.params) {
            self.params.copy_from_slice(&self.backup);
            let message = format!(
                "{what} diverged at step {}: {why}. Lower the learning rate (now {lr}) and reset.",
                self.step + 1
            );
            self.status = Status::Diverged { step: self.step + 1, message: message.clone() };
            return Err(LensError::Input(message));
        }
        self.step += 1;
        self.loss = loss;
        self.losses.push(loss);
        Ok(())
    }

    /// What `step(k)` returns: the mean of the `k` losses summed in `total`, or the last loss if `k` is 0.
    pub fn mean(&self, total: f64, k: usize) -> f32 {
        if k == 0 {
            self.loss
        } else {
            (total / k as f64) as f32
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToyConfig {
    /// n, the number of features.
    pub n_features: usize,
    /// m, the number of hidden dimensions (fewer than n).
    pub n_hidden: usize,
    /// S, the probability that a feature is zero in a sample, in [0, 1).
    pub sparsity: f32,
    /// r in I_i = r^i; 1 makes every feature equally important.
    pub importance_decay: f32,
    /// Explicit importances (one per feature), used instead of the decay when set.
    #[serde(default)]
    pub importance: Option<Vec<f32>>,
    pub batch_size: usize,
    /// Adam's step size.
    pub lr: f32,
    pub seed: u64,
}

impl Default for ToyConfig {
    /// The chapter's first picture: five equally important features, sparse enough to share two dimensions
    /// as a pentagon.
    fn default() -> Self {
        ToyConfig {
            n_features: 5,
            n_hidden: 2,
            sparsity: 0.9,
            importance_decay: 1.0,
            importance: None,
            batch_size: 1024,
            lr: 0.01,
            seed: 0,
        }
    }
}

impl ToyConfig {
    /// n = 20 features in m = 5 dimensions, with importance decaying as 0.9^i.
    pub fn twenty_in_five() -> Self {
        ToyConfig { n_features: 20, n_hidden: 5, importance_decay: 0.9, ..Self::default() }
    }

    /// Rejects settings the model cannot train with, saying which one and why.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(LensError::Input(msg));
        let (n, m) = (self.n_features, self.n_hidden);
        if n == 0 {
            return bad("the toy model needs at least one feature (n = 0)".into());
        }
        if m == 0 {
            return bad("the toy model needs at least one hidden dimension (m = 0)".into());
        }
        if m >= n {
            return bad(format!(
                "superposition needs fewer hidden dimensions than features: m = {m} must be smaller than n = {n}"
            ));
        }
        if n > MAX_FEATURES || m > MAX_HIDDEN {
            return bad(format!(
                "at most {MAX_FEATURES} features and {MAX_HIDDEN} hidden dimensions (got n = {n}, m = {m})"
            ));
        }
        if !(0.0..1.0).contains(&self.sparsity) {
            return bad(format!(
                "sparsity is the probability that a feature is zero, so it must be in [0, 1) (got {}); at 1 every input would be zero",
                self.sparsity
            ));
        }
        if !(self.importance_decay.is_finite() && self.importance_decay > 0.0) {
            return bad(format!("the importance decay r must be a positive number (got {})", self.importance_decay));
        }
        if let Some(imp) = &self.importance {
            if imp.len() != n {
                return bad(format!("{} importances given for {n} features", imp.len()));
            }
            if imp.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                return bad(format!("importances must be finite and not negative (got {imp:?})"));
            }
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH {
            return bad(format!("the batch size must be between 1 and {MAX_BATCH} (got {})", self.batch_size));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("the learning rate must be a positive number (got {})", self.lr));
        }
        Ok(())
    }

    /// I_i for every feature: the explicit list, or r^i.
    pub fn importances(&self) -> Vec<f32> {
        match &self.importance {
            Some(v) => v.clone(),
            None => (0..self.n_features).map(|i| self.importance_decay.powi(i as i32)).collect(),
        }
    }
}

/// Whether training can go on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Status {
    Ready,
    /// The loss or a weight stopped being a finite number, or a weight grew past `MAX_WEIGHT`. The
    /// parameters are the last good ones; `reset` starts again.
    Diverged {
        step: usize,
        message: String,
    },
}

/// A loss curve of bounded length: each entry is the mean loss over `every` consecutive steps, and when the
/// curve reaches `LOSS_POINTS` entries, neighbours are merged and `every` doubles. A snapshot stays small
/// however long training runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LossLog {
    pub values: Vec<f32>,
    pub every: usize,
    /// The running sum and count of the entry being filled.
    acc: f64,
    count: usize,
}

pub const LOSS_POINTS: usize = 1000;
const FIRST_EVERY: usize = 10;

impl LossLog {
    pub fn new() -> Self {
        LossLog { values: Vec::with_capacity(LOSS_POINTS), every: FIRST_EVERY, acc: 0.0, count: 0 }
    }

    pub fn push(&mut self, loss: f32) {
        self.acc += loss as f64;
        self.count += 1;
        if self.count < self.every {
            return;
        }
        self.values.push((self.acc / self.count as f64) as f32);
        (self.acc, self.count) = (0.0, 0);
        if self.values.len() >= LOSS_POINTS {
            let half = self.values.len() / 2;
            for i in 0..half {
                self.values[i] = 0.5 * (self.values[2 * i] + self.values[2 * i + 1]);
            }
            self.values.truncate(half);
            self.every *= 2;
        }
    }
}

/// Plain data for the page: what a worker posts after each chunk of steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToySnapshot {
    pub config: ToyConfig,
    /// W, m x n, column-major: `w[i * m + k]` is component k of feature i's direction.
    pub w: Vec<f32>,
    /// b, one per feature.
    pub b: Vec<f32>,
    /// Training steps taken.
    pub step: usize,
    /// Loss of the last step (none before the first).
    pub loss: Option<f32>,
    pub losses: LossLog,
    pub status: Status,
}

impl ToySnapshot {
    /// Feature i's direction W_i in the hidden space.
    pub fn column(&self, i: usize) -> &[f32] {
        let m = self.config.n_hidden;
        &self.w[i * m..(i + 1) * m]
    }
}

/// The toy model and its training state.
#[derive(Clone, Debug)]
pub struct ToyModel {
    cfg: ToyConfig,
    importance: Vec<f32>,
    /// Parameters `[w (n*m, column-major) | b (n)]`, one buffer so one Adam serves both.
    opt: Descent,
    rng: Rng,
    sampler: FeatureSampler,
    /// The current batch.
    x: SparseBatch,
    scratch: Scratch,
}

impl ToyModel {
    /// A freshly initialised model: W drawn from a Xavier normal distribution (std sqrt(2 / (n + m))),
    /// b = 0, all from `cfg.seed`.
    pub fn new(cfg: ToyConfig) -> Result<Self> {
        cfg.validate()?;
        let (n, m) = (cfg.n_features, cfg.n_hidden);
        let mut rng = Rng::new(cfg.seed);
        let std = (2.0 / (n + m) as f32).sqrt();
        let mut params = vec![0.0; n * m + n];
        for p in &mut params[..n * m] {
            *p = std * rng.normal();
        }
        Ok(ToyModel {
            importance: cfg.importances(),
            sampler: FeatureSampler::new(cfg.sparsity),
            x: SparseBatch::with_capacity(n, cfg.batch_size),
            scratch: Scratch::new(n),
            opt: Descent::new(params),
            rng,
            cfg,
        })
    }

    /// Starts again from the config's seed (clears a divergence).
    pub fn reset(&mut self) {
        *self = ToyModel::new(self.cfg.clone()).expect("the config was valid when the model was built");
    }

    pub fn config(&self) -> &ToyConfig {
        &self.cfg
    }
    pub fn importance(&self) -> &[f32] {
        &self.importance
    }
    /// W, column-major (see the module doc).
    pub fn w(&self) -> &[f32] {
        &self.opt.params[..self.cfg.n_features * self.cfg.n_hidden]
    }
    pub fn b(&self) -> &[f32] {
        &self.opt.params[self.cfg.n_features * self.cfg.n_hidden..]
    }
    pub fn column(&self, i: usize) -> &[f32] {
        let m = self.cfg.n_hidden;
        &self.opt.params[i * m..(i + 1) * m]
    }
    pub fn steps_done(&self) -> usize {
        self.opt.step
    }
    /// The last step's loss (NaN before the first step).
    pub fn loss(&self) -> f32 {
        self.opt.loss
    }
    pub fn losses(&self) -> &LossLog {
        &self.opt.losses
    }
    pub fn status(&self) -> &Status {
        &self.opt.status
    }

    /// Sets W and b directly (for tests and hand-made examples); Adam's state starts afresh.
    pub fn set_params(&mut self, w: &[f32], b: &[f32]) -> Result<()> {
        let (n, m) = (self.cfg.n_features, self.cfg.n_hidden);
        if w.len() != n * m || b.len() != n {
            return Err(LensError::Input(format!(
                "W needs {} values and b {n} (got {} and {})",
                n * m,
                w.len(),
                b.len()
            )));
        }
        self.opt.params[..n * m].copy_from_slice(w);
        self.opt.params[n * m..].copy_from_slice(b);
        self.opt.restart_adam();
        Ok(())
    }

    /// Advances `k` training steps on fresh batches and returns the mean loss over them. After a divergence
    /// it returns the error without doing anything until `reset`.
    pub fn step(&mut self, k: usize) -> Result<f32> {
        self.opt.ensure_ready()?;
        let (n, m) = (self.cfg.n_features, self.cfg.n_hidden);
        let mut total = 0.0f64;
        for _ in 0..k {
            self.sampler.fill_sparse(&mut self.rng, self.cfg.batch_size, &mut self.x);
            let (w, b) = self.opt.params.split_at(n * m);
            let (gw, gb) = self.opt.grads.split_at_mut(n * m);
            let loss = sparse_loss_and_grad(m, &self.importance, w, b, &self.x, &mut self.scratch, gw, gb);
            self.opt.apply(self.cfg.lr, loss, "training", |_| {})?;
            total += loss as f64;
        }
        Ok(self.opt.mean(total, k))
    }

    /// The loss on `samples` fresh inputs drawn from `seed` (not the training stream), with no update.
    pub fn eval_loss(&self, samples: usize, seed: u64) -> f32 {
        let (n, m) = (self.cfg.n_features, self.cfg.n_hidden);
        let mut x = SparseBatch::with_capacity(n, samples);
        self.sampler.fill_sparse(&mut Rng::new(seed), samples, &mut x);
        let (mut gw, mut gb) = (vec![0.0; n * m], vec![0.0; n]);
        sparse_loss_and_grad(m, &self.importance, self.w(), self.b(), &x, &mut Scratch::new(n), &mut gw, &mut gb)
    }

    /// The model's output x' for a batch of inputs (`batch x n`).
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let (n, m) = (self.cfg.n_features, self.cfg.n_hidden);
        let mut h = vec![0.0; x.len() / n * m];
        super::data::hidden(self.w(), n, m, x, &mut h);
        let mut out = vec![0.0; x.len()];
        for (hs, os) in h.chunks_exact(m).zip(out.chunks_exact_mut(n)) {
            for (i, o) in os.iter_mut().enumerate() {
                let wi = &self.w()[i * m..(i + 1) * m];
                *o = (self.b()[i] + wi.iter().zip(hs).map(|(a, c)| a * c).sum::<f32>()).max(0.0);
            }
        }
        out
    }

    pub fn snapshot(&self) -> ToySnapshot {
        ToySnapshot {
            config: self.cfg.clone(),
            w: self.w().to_vec(),
            b: self.b().to_vec(),
            step: self.opt.step,
            loss: self.opt.loss.is_finite().then_some(self.opt.loss),
            losses: self.opt.losses.clone(),
            status: self.opt.status.clone(),
        }
    }
}

/// Buffers for `sparse_loss_and_grad`, allocated once per model.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    /// WᵀW and the loss's gradient with respect to it, n x n.
    gram: Vec<f32>,
    dgram: Vec<f32>,
    /// One sample's dense x, y and dL/dy.
    x: Vec<f32>,
    y: Vec<f32>,
    gy: Vec<f32>,
    /// 2 I_i / batch.
    coef: Vec<f32>,
}

impl Scratch {
    pub fn new(n: usize) -> Self {
        Scratch {
            gram: vec![0.0; n * n],
            dgram: vec![0.0; n * n],
            x: vec![0.0; n],
            y: vec![0.0; n],
            gy: vec![0.0; n],
            coef: vec![0.0; n],
        }
    }
}

/// One sample with exactly K active features `js` (distinct) and values `vs`, `s.x` holding it densely:
/// adds to `gb` and `s.dgram`, returns the sample's loss. y_i = b_i + Σ_k vs_k G[js_k][i] is computed on the
/// fly, and a feature with y_i ≤ 0 costs only that sum (its output is 0, so it has no gradient, and its loss
/// is I_i x_i², nonzero only for the active features, added at the end).
#[inline(always)]
fn fused<const K: usize>(
    n: usize,
    js: [u32; K],
    vs: [f32; K],
    s: &mut Scratch,
    importance: &[f32],
    b: &[f32],
    gb: &mut [f32],
) -> f32 {
    let js = js.map(|j| j as usize);
    let cols: [&[f32]; K] = js.map(|j| &s.gram[j * n..(j + 1) * n]);
    let (b, importance, coef, x, gb) = (&b[..n], &importance[..n], &s.coef[..n], &s.x[..n], &mut gb[..n]);
    let mut sample = 0.0f32;
    for i in 0..n {
        let mut y = b[i];
        for k in 0..K {
            y += vs[k] * cols[k][i];
        }
        if y > 0.0 {
            let d = y - x[i];
            sample += importance[i] * d * d;
            let g = coef[i] * d;
            gb[i] += g;
            for k in 0..K {
                s.dgram[js[k] * n + i] += vs[k] * g;
            }
        }
    }
    for k in 0..K {
        let j = js[k];
        let mut y = b[j];
        for k2 in 0..K {
            y += vs[k2] * cols[k2][j];
        }
        if y <= 0.0 {
            sample += importance[j] * vs[k] * vs[k];
        }
    }
    sample
}

/// The same for any number of active features, in passes over whole vectors (best when many are active).
fn general(n: usize, idx: &[u32], val: &[f32], s: &mut Scratch, importance: &[f32], b: &[f32], gb: &mut [f32]) -> f32 {
    // A plain loop: for a handful of features, copy_from_slice's call to memmove costs more.
    for (y, &bi) in s.y.iter_mut().zip(b) {
        *y = bi;
    }
    for (&j, &v) in idx.iter().zip(val) {
        let col = &s.gram[j as usize * n..(j as usize + 1) * n];
        for (y, g) in s.y.iter_mut().zip(col) {
            *y += v * g;
        }
    }
    let mut sample = 0.0f32;
    for i in 0..n {
        let y = s.y[i];
        let d = y.max(0.0) - s.x[i];
        sample += importance[i] * d * d;
        let g = if y > 0.0 { s.coef[i] * d } else { 0.0 };
        s.gy[i] = g;
        gb[i] += g;
    }
    for (&j, &v) in idx.iter().zip(val) {
        // Row j of dgram holds Σ x_j dL/dy (that is, column j of dL/dG); the symmetrisation at the end
        // makes the orientation irrelevant.
        let row = &mut s.dgram[j as usize * n..(j as usize + 1) * n];
        for (r, g) in row.iter_mut().zip(&s.gy) {
            *r += v * g;
        }
    }
    sample
}

/// The loss of a dense batch and its gradient: `x` is `batch x n`, `w` column-major (n columns of m),
/// `importance` and `b` have n entries; `gw` and `gb` are overwritten with dL/dW and dL/db. Returns
/// `L = (1/batch) Σ_samples Σ_i I_i (x_i - x'_i)²`. This convenience form allocates; training uses
/// `sparse_loss_and_grad`.
#[allow(clippy::too_many_arguments)]
pub fn loss_and_grad(
    n: usize,
    m: usize,
    importance: &[f32],
    w: &[f32],
    b: &[f32],
    x: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
) -> f32 {
    assert!(n > 0 && x.len().is_multiple_of(n));
    let batch = SparseBatch::from_dense(x, n);
    sparse_loss_and_grad(m, importance, w, b, &batch, &mut Scratch::new(n), gw, gb)
}

/// The loss and its gradient by hand, on a sparse batch.
///
/// The hidden layer only ever appears as WᵀW, so the pass works with the Gram matrix G = WᵀW (n x n,
/// computed once per batch): y = G x + b costs one column of G per *nonzero* feature, which is a few per
/// sample when features are sparse. Per sample, with x' = ReLU(y):
///   dL/dy_i = (2/batch) I_i (x'_i - x_i) where y_i > 0, else 0
///   dL/db_i += dL/dy_i;    dL/dG_ij += dL/dy_i x_j
/// and once per batch, since G_ij = W_i · W_j:  dL/dW_i = Σ_j (dL/dG_ij + dL/dG_ji) W_j.
/// Samples with no active feature all have y = b, so they are counted and handled together.
#[allow(clippy::too_many_arguments)]
pub fn sparse_loss_and_grad(
    m: usize,
    importance: &[f32],
    w: &[f32],
    b: &[f32],
    x: &SparseBatch,
    s: &mut Scratch,
    gw: &mut [f32],
    gb: &mut [f32],
) -> f32 {
    let n = x.n;
    assert!(m > 0 && w.len() == n * m && b.len() == n && importance.len() == n && gw.len() == n * m && gb.len() == n);
    assert!(s.gram.len() == n * n && s.x.len() == n);
    let batch = x.len();
    if batch == 0 {
        gw.fill(0.0);
        gb.fill(0.0);
        return 0.0;
    }
    let scale = 1.0 / batch as f32;
    for i in 0..n {
        s.coef[i] = 2.0 * scale * importance[i];
        for j in i..n {
            let g: f32 = w[i * m..(i + 1) * m].iter().zip(&w[j * m..(j + 1) * m]).map(|(a, c)| a * c).sum();
            s.gram[i * n + j] = g;
            s.gram[j * n + i] = g;
        }
    }
    s.dgram.fill(0.0);
    gb.fill(0.0);
    let mut loss = 0.0f64;
    let mut empty = 0usize;
    let mut start = 0usize;
    for &end in &x.end {
        let (idx, val) = (&x.index[start..end as usize], &x.value[start..end as usize]);
        start = end as usize;
        if idx.is_empty() {
            empty += 1;
            continue;
        }
        for (&j, &v) in idx.iter().zip(val) {
            s.x[j as usize] = v;
        }
        // Most samples have one to three active features: a fused pass with their count fixed at compile
        // time does the least work per feature (this is what keeps the browser fast at n = 20).
        let sample = match idx.len() {
            1 => fused::<1>(n, [idx[0]], [val[0]], s, importance, b, gb),
            2 => fused::<2>(n, [idx[0], idx[1]], [val[0], val[1]], s, importance, b, gb),
            3 => fused::<3>(n, [idx[0], idx[1], idx[2]], [val[0], val[1], val[2]], s, importance, b, gb),
            _ => general(n, idx, val, s, importance, b, gb),
        };
        loss += sample as f64;
        for &j in idx {
            s.x[j as usize] = 0.0;
        }
    }
    if empty > 0 {
        let mut sample = 0.0f32;
        for i in 0..n {
            let out = b[i].max(0.0);
            sample += importance[i] * out * out;
            gb[i] += empty as f32 * s.coef[i] * out;
        }
        loss += empty as f64 * sample as f64;
    }
    gw.fill(0.0);
    for i in 0..n {
        for j in 0..n {
            let d = s.dgram[i * n + j] + s.dgram[j * n + i];
            if d != 0.0 {
                for k in 0..m {
                    gw[i * m + k] += d * w[j * m + k];
                }
            }
        }
    }
    (loss * scale as f64) as f32
}
