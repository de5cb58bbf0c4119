//! The logit lens (nostalgebraist 2020): read the residual stream after the embedding and after every block
//! through the model's own final LayerNorm and unembedding, as if the model stopped there, and see what it
//! would predict.
//!
//! One forward pass records the residual stream at every layer; the decode of all layers and positions is a
//! single batched LayerNorm + matmul.
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::lens::gpt2::hooks::{ActivationCache, Hook, HookSet};
use crate::lens::{LensError, Result, Stepped, Transformer};

/// The residual stream's layers, numbered as the lab shows them: 0 is the embedding (token + position,
/// `blocks.0.hook_resid_pre`), and l >= 1 is the stream after block l - 1 (`blocks.{l-1}.hook_resid_post`).
pub fn resid_hook(layer: usize) -> Hook {
    if layer == 0 {
        Hook::ResidPre(0)
    } else {
        Hook::ResidPost(layer - 1)
    }
}

/// `resid_hook` for every layer: n_layer + 1 hooks.
pub fn resid_hooks(n_layer: usize) -> Vec<Hook> {
    (0..=n_layer).map(resid_hook).collect()
}

/// A short label for a residual layer: "embed", "block 0", "block 1", ...
pub fn resid_label(layer: usize) -> String {
    if layer == 0 {
        "embed".into()
    } else {
        format!("block {}", layer - 1)
    }
}

/// What the lens reads at one layer and position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LensCell {
    /// The k most likely next tokens with their probabilities, most likely first.
    pub top: Vec<(u32, f32)>,
    /// The probability of the token that actually comes next; None at the last position.
    pub target_prob: Option<f32>,
    /// Its rank (0 = top-1); None at the last position.
    pub target_rank: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogitLens {
    pub tokens: Vec<u32>,
    /// The hook read at each layer (see `resid_hook`).
    pub hooks: Vec<Hook>,
    /// `cells[layer][pos]`.
    pub cells: Vec<Vec<LensCell>>,
}

impl LogitLens {
    pub fn n_layers(&self) -> usize {
        self.cells.len()
    }

    /// The share of `positions` (those with a next token) at which the layer's top-1 guess is the next token.
    pub fn top1_accuracy(&self, layer: usize, positions: impl IntoIterator<Item = usize>) -> f32 {
        let (mut hit, mut n) = (0, 0);
        for p in positions {
            if let Some(r) = self.cells[layer].get(p).and_then(|c| c.target_rank) {
                hit += (r == 0) as usize;
                n += 1;
            }
        }
        if n == 0 {
            0.0
        } else {
            hit as f32 / n as f32
        }
    }

    /// Mean probability of the true next token at a layer over the positions that have one.
    pub fn mean_target_prob(&self, layer: usize) -> f32 {
        let ps: Vec<f32> = self.cells[layer].iter().filter_map(|c| c.target_prob).collect();
        if ps.is_empty() {
            0.0
        } else {
            ps.iter().sum::<f32>() / ps.len() as f32
        }
    }
}

/// Runs the logit lens on one token sequence, keeping the `k` best guesses per cell.
pub fn logit_lens(model: &Transformer, tokens: &[u32], k: usize) -> Result<LogitLens> {
    let mut run = LensRun::new(model, tokens, k)?;
    while !run.step(model)? {}
    run.finish(model)
}

/// `logit_lens` a block at a time (`step`), so the browser can give the thread back between blocks; `finish`
/// then reads the layers. The same numbers as `logit_lens`.
pub struct LensRun {
    tokens: Vec<u32>,
    k: usize,
    forward: Stepped,
}

impl LensRun {
    /// Checks `k` and the tokens and embeds them.
    pub fn new(model: &Transformer, tokens: &[u32], k: usize) -> Result<Self> {
        Self::recording(model, tokens, k, &[])
    }

    /// `new`, recording `also` as well (say the attention patterns, for a page that shows both from one pass):
    /// see `cache`.
    pub fn recording(model: &Transformer, tokens: &[u32], k: usize, also: &[Hook]) -> Result<Self> {
        if k == 0 {
            return Err(LensError::Input("ask for at least one guess per cell (k >= 1)".into()));
        }
        let mut hooks = resid_hooks(model.cfg.n_layer);
        hooks.extend(also.iter().filter(|h| !hooks.contains(h)).copied().collect::<Vec<_>>());
        let forward = Stepped::new(model, tokens, HookSet::cache_only(hooks))?;
        Ok(LensRun { tokens: tokens.to_vec(), k, forward })
    }

    /// What the pass has recorded so far.
    pub fn cache(&self) -> &ActivationCache {
        &self.forward.hooks.cache
    }

    /// Runs the next half block; true once every block has run. The lens reads the residual stream after each
    /// block, so the model's own final norm and unembedding never run: at GPT-2 small's size they are the
    /// largest piece of the pass (1.2G multiply-adds at 32 positions, a 45-80 ms task in one go).
    pub fn step(&mut self, model: &Transformer) -> Result<bool> {
        if !self.blocks_done(model) {
            self.forward.step(model)?;
        }
        Ok(self.blocks_done(model))
    }

    fn blocks_done(&self, model: &Transformer) -> bool {
        self.forward.pass().is_none_or(|p| p.layers_done() >= model.cfg.n_layer)
    }

    /// The share of the forward pass done, in [0, 1].
    pub fn progress(&self, model: &Transformer) -> f32 {
        match self.forward.pass() {
            Some(p) => {
                (p.layers_done() as f32 + if p.mid_block() { 0.5 } else { 0.0 }) / model.cfg.n_layer.max(1) as f32
            }
            None => 1.0,
        }
    }

    /// Every layer's guesses, once `step` has returned true.
    pub fn finish(self, model: &Transformer) -> Result<LogitLens> {
        let (tokens, k) = (self.tokens.clone(), self.k);
        decode_resid(model, &tokens, k, &self.finish_resid(model)?)
    }

    /// The residual stream of every layer, `[n_layer + 1, pos, d_model]`, once `step` has returned true: what
    /// `finish` decodes, for lenses that translate it first (`tuned_lens`).
    pub fn finish_resid(&self, model: &Transformer) -> Result<Tensor> {
        if !self.blocks_done(model) {
            return Err(LensError::Input("the forward pass is not finished: step it to the end first".into()));
        }
        let cache = self.cache();
        let stacked: Vec<Tensor> = resid_hooks(model.cfg.n_layer)
            .iter()
            .map(|h| cache.get(*h).cloned().ok_or_else(|| LensError::UnknownHook(h.to_string())))
            .collect::<Result<_>>()?;
        Ok(Tensor::cat(&stacked, 0)?)
    }

    /// The tokens being read.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The number of guesses kept per cell.
    pub fn k(&self) -> usize {
        self.k
    }
}

/// Decodes a residual stream of every layer, `resid` `[n_layer + 1, pos, d_model]`, through ln_f and the
/// unembedding, keeping the `k` best guesses per cell. The logit lens is this on the stream as recorded.
pub fn decode_resid(model: &Transformer, tokens: &[u32], k: usize, resid: &Tensor) -> Result<LogitLens> {
    let hooks = resid_hooks(model.cfg.n_layer);
    let (layers, pos, _) = resid.dims3()?;
    if layers != hooks.len() || pos != tokens.len() {
        return Err(LensError::Input(format!(
            "expected the residual stream of {} layers at {} positions, got {layers} x {pos}",
            hooks.len(),
            tokens.len()
        )));
    }
    let mut decode = LensDecode::new(model, tokens, resid, k)?;
    while !decode.step(model, DECODE_COLUMNS)? {}
    Ok(LogitLens { tokens: tokens.to_vec(), hooks, cells: decode.finish(model)? })
}

/// Columns of the vocabulary per step when nothing asks for short steps: a small model's whole vocabulary,
/// and for a large one a slice whose logits stay a few MB.
const DECODE_COLUMNS: usize = 4096;

/// The logit lens of the residual stream at some layers, `resid` `[layers, pos, d_model]` (the stream at every
/// position of `tokens` at each layer), a slice of the vocabulary per `step`, every layer's rows at once.
///
/// Why this shape: at GPT-2 small's size the unembedding is 768 x 50,257, so decoding 13 layers of 32 positions
/// is 16G multiply-adds. Done a layer at a time, the unembedding is streamed 13 times and each product has 32
/// rows; here all 416 rows share one pass over it. And no row of logits is kept: each slice of logits updates,
/// per row, what the cell needs (`RowScan`: the softmax's running maximum and sum, the k best tokens, the
/// target's rank), so the memory is a slice's logits, not 13 x 32 x 50,257 floats (84 MB).
pub struct LensDecode {
    resid: Tensor, // [layers * pos, d_model], as recorded
    /// The rows readied so far (`ready`), in blocks: each block of `resid` through ln_f, `[rows, d_model]`.
    normed: Vec<Tensor>,
    /// Each position's next token, and its column of the unembedding `[pos - 1, d_model]` (see `TargetScan`).
    next: Vec<u32>,
    columns: Vec<Vec<f32>>,
    rows_per_step: usize,
    pos: usize,
    k: usize,
    next_col: usize,
    rows: Vec<RowScan>, // [rows readied], of [layers * pos]
}

/// Values (rows x d_model) a readying step puts through ln_f, copies out and dots with its target's column in
/// f64: a few milliseconds. A long text's every layer (13 x 1,024 rows of 768 at GPT-2 small's size) is ten
/// such steps, where doing it at once held the page for one long task.
const READY_VALUES: usize = 1 << 20;

impl LensDecode {
    /// Checks the shapes and `k`. The rows go through the final LayerNorm in the first `step`s.
    pub fn new(model: &Transformer, tokens: &[u32], resid: &Tensor, k: usize) -> Result<Self> {
        let (layers, pos, d) = resid.dims3()?;
        if pos != tokens.len() {
            return Err(LensError::Input(format!("a stream of {pos} positions for {} tokens", tokens.len())));
        }
        if k == 0 {
            return Err(LensError::Input("ask for at least one guess per cell (k >= 1)".into()));
        }
        let k = k.min(model.cfg.vocab_size.max(1));
        let next: Vec<u32> = tokens.iter().skip(1).copied().collect();
        let columns: Vec<Vec<f32>> =
            if next.is_empty() || layers == 0 { Vec::new() } else { model.unembedding_columns(&next)?.to_vec2()? };
        Ok(LensDecode {
            resid: resid.reshape((layers * pos, d))?,
            normed: Vec::new(),
            next,
            columns,
            rows_per_step: (READY_VALUES / d.max(1)).max(1),
            pos,
            k,
            next_col: 0,
            rows: Vec::new(),
        })
    }

    /// Readies at most `rows` rows per step (at least one), instead of about a million values' worth.
    pub fn rows_per_step(mut self, rows: usize) -> Self {
        self.rows_per_step = rows.max(1);
        self
    }

    /// One step: the next block of rows through ln_f while any is left, then the logits of the next `cols`
    /// tokens of the vocabulary folded into every row's scan. True once every token's are in. Keep `cols` a
    /// multiple of 8: the matmul kernel's tiles are 8 columns wide.
    pub fn step(&mut self, model: &Transformer, cols: usize) -> Result<bool> {
        let total = self.resid.dim(0)?;
        if self.rows.len() < total {
            self.ready(model, total)?;
            return Ok(false);
        }
        let vocab = model.cfg.vocab_size;
        if self.next_col >= vocab {
            return Ok(true);
        }
        let len = cols.clamp(1, vocab - self.next_col);
        let mut start = 0;
        for block in &self.normed {
            let n = block.dim(0)?;
            // [n, len]
            let logits: Vec<f32> = model.unembed_slice(block, self.next_col, len)?.flatten_all()?.to_vec1()?;
            for (row, part) in self.rows[start..start + n].iter_mut().zip(logits.chunks_exact(len)) {
                row.scan(part, self.next_col, self.k);
            }
            start += n;
        }
        self.next_col += len;
        Ok(self.next_col >= vocab)
    }

    /// The next block of rows: through ln_f, and each row's scan begun with its target's logit (`TargetScan`).
    fn ready(&mut self, model: &Transformer, total: usize) -> Result<()> {
        let start = self.rows.len();
        let n = self.rows_per_step.min(total - start);
        let normed = model.final_norm(&self.resid.narrow(0, start, n)?)?;
        let x: Vec<Vec<f32>> = normed.to_vec2()?;
        for (r, x) in (start..).zip(&x) {
            let p = r % self.pos;
            let target = self.next.get(p).map(|&t| TargetScan::new(t as usize, x, &self.columns[p]));
            self.rows.push(RowScan::new(self.k, target));
        }
        self.normed.push(normed);
        Ok(())
    }

    /// The share of the work done, in [0, 1]: the rows readied, a twentieth, then the vocabulary.
    pub fn progress(&self, model: &Transformer) -> f32 {
        let total = self.resid.dim(0).unwrap_or(0).max(1);
        let ready = self.rows.len().min(total) as f32 / total as f32;
        0.05 * ready + 0.95 * self.next_col as f32 / model.cfg.vocab_size.max(1) as f32
    }

    /// The cells, `[layer][pos]`, once `step` has returned true.
    pub fn finish(self, model: &Transformer) -> Result<Vec<Vec<LensCell>>> {
        if self.next_col < model.cfg.vocab_size || self.rows.len() < self.resid.dim(0)? {
            return Err(LensError::Input("the decoding is not finished: step it to the end first".into()));
        }
        let cells: Vec<LensCell> = self.rows.iter().map(RowScan::cell).collect();
        Ok(cells.chunks(self.pos.max(1)).map(<[LensCell]>::to_vec).collect())
    }
}

/// What a lens cell needs of one row of logits, kept while the vocabulary goes past a slice at a time.
#[derive(Clone, Debug)]
struct RowScan {
    /// The largest logit so far, and the sum of `e^(logit - max)` over the columns so far.
    max: f32,
    sum: f32,
    /// The k largest logits so far with their tokens, largest first (of equal logits, the lower token first).
    top: Vec<(u32, f32)>,
    target: Option<TargetScan>,
}

/// The rank of the row's target token (how many logits exceed its own) needs its logit before the scan meets
/// its column. So it is computed first, on its own, in f64 (the estimate). The product the scan gets sums in
/// another order, in f32, so it may differ, but by at most `gamma_n sum |x_i w_i|` (n = d_model, `gamma_n =
/// n u / (1 - n u)`, u = 2^-24: the bound for any order of summation, with or without fused multiply-adds).
/// `lo` and `hi` are the estimate minus and plus that bound (`tol`): logits above `hi` certainly exceed the
/// target's, those at or below `lo` certainly do not, and the few in between are kept and compared once the
/// target's own logit is met.
#[derive(Clone, Debug)]
struct TargetScan {
    token: usize,
    lo: f32,
    hi: f32,
    /// Logits above `hi`.
    above: usize,
    /// Logits in `(lo, hi]`, the target's own among them.
    near: Vec<f32>,
    /// The target's logit as the scan met it.
    value: Option<f32>,
}

impl TargetScan {
    /// The target `token`, from the normed row `x` and the token's column of the unembedding `w`.
    fn new(token: usize, x: &[f32], w: &[f32]) -> Self {
        let (mut dot, mut abs) = (0.0f64, 0.0f64);
        for (&a, &b) in x.iter().zip(w) {
            dot += a as f64 * b as f64;
            abs += (a as f64 * b as f64).abs();
        }
        let nu = x.len() as f64 * f64::from(f32::EPSILON) / 2.0;
        // Twice the bound, and a few units in the last place of the estimate, so that rounding `lo` and `hi`
        // to f32 cannot narrow the band below it.
        let tol = 2.0 * nu / (1.0 - nu).max(f64::MIN_POSITIVE) * abs + 4.0 * f64::from(f32::EPSILON) * dot.abs();
        TargetScan { token, lo: (dot - tol) as f32, hi: (dot + tol) as f32, above: 0, near: Vec::new(), value: None }
    }

    fn scan(&mut self, xs: &[f32], from: usize) {
        let above = glassbox_kernels::count_above(xs, self.hi);
        if glassbox_kernels::count_above(xs, self.lo) > above {
            self.near.extend(xs.iter().filter(|&&x| x > self.lo && x <= self.hi));
        }
        self.above += above;
        if let Some(&v) = self.token.checked_sub(from).and_then(|i| xs.get(i)) {
            self.value = Some(v);
        }
    }

    /// How many logits exceed the target's. If the target's own logit fell outside the band (which the bound
    /// above rules out), the count is still of logits above the band's edge, so off by the few inside it.
    fn rank(&self) -> usize {
        let v = self.value.unwrap_or(f32::NAN);
        // Written so that a NaN (a row whose logits are NaN, which the cell then shows) does not trip it.
        debug_assert!(!(v < self.lo || v > self.hi), "the target's logit {v} left its band [{}, {}]", self.lo, self.hi);
        self.above + self.near.iter().filter(|&&x| x > v).count()
    }
}

impl RowScan {
    fn new(k: usize, target: Option<TargetScan>) -> Self {
        RowScan { max: f32::NEG_INFINITY, sum: 0.0, top: Vec::with_capacity(k + 1), target }
    }

    /// Folds in the logits of tokens `from..from + xs.len()`.
    fn scan(&mut self, xs: &[f32], from: usize, k: usize) {
        use glassbox_kernels::exp_nonpositive as exp;
        let (m, s) = glassbox_kernels::max_exp_sum(xs);
        // The two partial softmax sums, each taken to the larger maximum.
        if m > self.max {
            self.sum = self.sum * exp(self.max - m) + s;
            self.max = m;
        } else if m > f32::NEG_INFINITY || s.is_nan() {
            self.sum += s * exp(m - self.max);
        }
        // Most slices hold nothing that beats the k-th best so far: their largest logit says so.
        let full = self.top.len() >= k;
        if !full || self.top.last().is_some_and(|&(_, worst)| m > worst) {
            for (j, &x) in xs.iter().enumerate() {
                let beats = match self.top.last() {
                    Some(&(_, worst)) if self.top.len() >= k => x > worst,
                    _ => !x.is_nan(),
                };
                if beats {
                    let at = self.top.partition_point(|&(_, v)| v >= x);
                    self.top.insert(at, ((from + j) as u32, x));
                    self.top.truncate(k);
                }
            }
        }
        if let Some(t) = &mut self.target {
            t.scan(xs, from);
        }
    }

    fn cell(&self) -> LensCell {
        let prob = |l: f32| glassbox_kernels::exp_nonpositive(l - self.max) / self.sum;
        LensCell {
            top: self.top.iter().map(|&(t, l)| (t, prob(l))).collect(),
            target_prob: self.target.as_ref().map(|t| prob(t.value.unwrap_or(f32::NAN))),
            target_rank: self.target.as_ref().map(TargetScan::rank),
        }
    }
}
