//! The logit lens (nostalgebraist 2020): read the residual stream after the embedding and after every block
//! through the model's own final LayerNorm and unembedding, as if the model stopped there, and see what it
//! would predict.
//!
//! One forward pass records the residual stream at every layer; the decode of all layers and positions is a
//! single batched LayerNorm + matmul.
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::lens::gpt2::hooks::{Hook, HookSet};
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
        if k == 0 {
            return Err(LensError::Input("ask for at least one guess per cell (k >= 1)".into()));
        }
        let forward = Stepped::new(model, tokens, HookSet::cache_only(resid_hooks(model.cfg.n_layer)))?;
        Ok(LensRun { tokens: tokens.to_vec(), k, forward })
    }

    /// Runs the next block; true once the forward pass is done.
    pub fn step(&mut self, model: &Transformer) -> Result<bool> {
        self.forward.step(model)
    }

    /// The share of the forward pass done, in [0, 1].
    pub fn progress(&self, model: &Transformer) -> f32 {
        self.forward.progress(model)
    }

    /// Every layer's guesses, once `step` has returned true.
    pub fn finish(self, model: &Transformer) -> Result<LogitLens> {
        let (tokens, k) = (self.tokens.clone(), self.k);
        decode_resid(model, &tokens, k, &self.finish_resid(model)?)
    }

    /// The residual stream of every layer, `[n_layer + 1, pos, d_model]`, once `step` has returned true: what
    /// `finish` decodes, for lenses that translate it first (`tuned_lens`).
    pub fn finish_resid(self, model: &Transformer) -> Result<Tensor> {
        let (_, set) = self.forward.finish()?;
        let stacked: Vec<Tensor> = resid_hooks(model.cfg.n_layer)
            .iter()
            .map(|h| set.cache.get(*h).cloned().ok_or_else(|| LensError::UnknownHook(h.to_string())))
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
/// `first_pos + n` of `tokens`. `decode_resid` is this for every layer; a page decodes a large model's grid a
/// few rows at a time with it (GPT-2 small's unembedding is 39M multiply-adds per row).
pub fn decode_rows(
    model: &Transformer,
    tokens: &[u32],
    k: usize,
    resid: &Tensor,
    first_pos: usize,
) -> Result<Vec<LensCell>> {
    let (n, _) = resid.dims2()?;
    if first_pos + n > tokens.len() {
        return Err(LensError::Input(format!("rows {first_pos}..{} of {} positions", first_pos + n, tokens.len())));
    }
    // [n, d_model] -> [n, vocab] probabilities
    let probs: Vec<Vec<f32>> = candle_nn::ops::softmax_last_dim(&model.unembed(resid)?)?.to_vec2()?;
    let k = k.clamp(1, model.cfg.vocab_size);
    Ok(probs
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut order: Vec<usize> = (0..row.len()).collect();
            // A partial sort is enough: only the top k are kept.
            order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]));
            let mut top: Vec<(u32, f32)> = order[..k].iter().map(|&i| (i as u32, row[i])).collect();
            top.sort_by(|a, b| b.1.total_cmp(&a.1));
            let target = tokens.get(first_pos + i + 1).map(|&t| t as usize);
            LensCell {
                top,
                target_prob: target.map(|t| row[t]),
                target_rank: target.map(|t| row.iter().filter(|&&q| q > row[t]).count()),
            }
        })
        .collect())
}
