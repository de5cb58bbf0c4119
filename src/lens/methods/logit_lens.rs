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
    let cells = (0..layers).map(|l| decode_rows(model, tokens, k, &resid.get(l)?, 0)).collect::<Result<_>>()?;
    Ok(LogitLens { tokens: tokens.to_vec(), hooks, cells })
}

/// The lens at some positions of one layer: `resid` `[n, d_model]` is the stream at positions `first_pos..`
/// `first_pos + n` of `tokens`. `decode_resid` is this for every layer; `RowsDecode` is this a slice of the
/// vocabulary at a time.
pub fn decode_rows(
    model: &Transformer,
    tokens: &[u32],
    k: usize,
    resid: &Tensor,
    first_pos: usize,
) -> Result<Vec<LensCell>> {
    let (n, _) = resid.dims2()?;
    let targets = targets_of(tokens, first_pos, n)?;
    // [n, d_model] -> [n, vocab] probabilities
    let probs: Vec<Vec<f32>> = candle_nn::ops::softmax_last_dim(&model.unembed(resid)?)?.to_vec2()?;
    Ok(probs.iter().zip(targets).map(|(row, target)| cell_of(row, k.clamp(1, row.len()), target)).collect())
}

/// The next token after each of positions `first_pos..first_pos + n` (none after the last).
fn targets_of(tokens: &[u32], first_pos: usize, n: usize) -> Result<Vec<Option<usize>>> {
    if first_pos + n > tokens.len() {
        return Err(LensError::Input(format!("rows {first_pos}..{} of {} positions", first_pos + n, tokens.len())));
    }
    Ok((first_pos..first_pos + n).map(|p| tokens.get(p + 1).map(|&t| t as usize)).collect())
}

/// One cell from a row of probabilities: its `k` best guesses and the rank and probability of `target`.
fn cell_of(row: &[f32], k: usize, target: Option<usize>) -> LensCell {
    let mut order: Vec<usize> = (0..row.len()).collect();
    // A partial sort is enough: only the top k are kept.
    order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]));
    let mut top: Vec<(u32, f32)> = order[..k].iter().map(|&i| (i as u32, row[i])).collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    LensCell {
        top,
        target_prob: target.map(|t| row[t]),
        target_rank: target.map(|t| row.iter().filter(|&&q| q > row[t]).count()),
    }
}

/// `decode_rows` a slice of the vocabulary at a time (`step`), for a page that keeps every piece of work
/// short: at GPT-2 small's size one layer's 32 positions are 1.2G multiply-adds. The logits then become cells
/// a few rows at a time (`finish_rows`: each row's softmax and top guesses; 32 rows of 50,257 at once were a
/// 50-70 ms task in Chromium), as `decode_rows` makes them (the same cells, up to float rounding in the last
/// place); `finish` hands them over.
pub struct RowsDecode {
    normed: Tensor,   // [n, d_model], through ln_f
    logits: Vec<f32>, // [n, vocab], filled a slice of columns at a time
    next_col: usize,
    targets: Vec<Option<usize>>,
    cells: Vec<LensCell>, // the rows made into cells so far
}

impl RowsDecode {
    /// Positions `first_pos..first_pos + n` of `tokens`, their stream `resid` `[n, d_model]`.
    pub fn new(model: &Transformer, tokens: &[u32], resid: &Tensor, first_pos: usize) -> Result<Self> {
        let (n, _) = resid.dims2()?;
        let targets = targets_of(tokens, first_pos, n)?;
        let normed = model.final_norm(resid)?;
        let logits = vec![0.0; n * model.cfg.vocab_size];
        Ok(RowsDecode { normed, logits, next_col: 0, targets, cells: Vec::with_capacity(n) })
    }

    /// The logits of the next `cols` tokens of the vocabulary; true once every token's are in.
    pub fn step(&mut self, model: &Transformer, cols: usize) -> Result<bool> {
        let vocab = model.cfg.vocab_size;
        if self.next_col >= vocab {
            return Ok(true);
        }
        let len = cols.clamp(1, vocab - self.next_col);
        let part: Vec<Vec<f32>> = model.unembed_slice(&self.normed, self.next_col, len)?.to_vec2()?;
        for (i, row) in part.iter().enumerate() {
            self.logits[i * vocab + self.next_col..i * vocab + self.next_col + len].copy_from_slice(row);
        }
        self.next_col += len;
        Ok(self.next_col >= vocab)
    }

    /// Whether every column's logits are in.
    pub fn columns_done(&self, model: &Transformer) -> bool {
        self.next_col >= model.cfg.vocab_size
    }

    /// The share of the work done, in [0, 1]: the vocabulary's columns, then the rows made into cells (a
    /// tenth of the whole, about their share of the time).
    pub fn progress(&self, model: &Transformer) -> f32 {
        let cols = self.next_col as f32 / model.cfg.vocab_size.max(1) as f32;
        let rows = self.cells.len() as f32 / self.targets.len().max(1) as f32;
        0.9 * cols + 0.1 * rows
    }

    /// Once every column is in (`step` returned true): makes the next `rows` rows into cells (`k` guesses
    /// each); true once every row is done.
    pub fn finish_rows(&mut self, model: &Transformer, k: usize, rows: usize) -> Result<bool> {
        let vocab = model.cfg.vocab_size;
        if self.next_col < vocab {
            return Err(LensError::Input("the decoding is not finished: step it to the end first".into()));
        }
        let (at, n) = (self.cells.len(), self.targets.len());
        let end = (at + rows.max(1)).min(n);
        if at < end {
            let part = &self.logits[at * vocab..end * vocab];
            let logits = Tensor::from_slice(part, (end - at, vocab), &candle_core::Device::Cpu)?;
            let probs: Vec<Vec<f32>> = candle_nn::ops::softmax_last_dim(&logits)?.to_vec2()?;
            let targets = &self.targets[at..end];
            self.cells.extend(probs.iter().zip(targets).map(|(row, &t)| cell_of(row, k.clamp(1, vocab), t)));
        }
        Ok(end == n)
    }

    /// The cells, once `step` has returned true (rows `finish_rows` has not done yet are done here).
    pub fn finish(mut self, model: &Transformer, k: usize) -> Result<Vec<LensCell>> {
        let rows = self.targets.len();
        self.finish_rows(model, k, rows)?;
        Ok(self.cells)
    }
}
