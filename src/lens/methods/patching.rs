//! Activation patching (Meng et al. 2022; Wang et al. 2022; Heimersheim & Nanda 2024) and attribution patching
//! (Nanda 2023), with TransformerLens's targets and conventions.
//!
//! Two prompts of the same length: a clean one, on which the model gives the answer, and a corrupted one, on
//! which it does not. **Denoising** runs the corrupted prompt with one activation taken from the clean run
//! (how much does this piece restore the answer?); **noising** runs the clean prompt with one activation taken
//! from the corrupted run (how much does losing it break the answer?). The metric is always computed on the
//! patched run, at the last position:
//! - `Metric::LogitDiff`: logit(answer) − logit(wrong), normalised so the corrupted run is 0 and the clean
//!   run 1 (undefined, and an error, when the corruption does not change it);
//! - `Metric::AnswerProb`: the probability of the answer;
//! - `Metric::Kl`: KL(clean ‖ patched) of the next-token distributions.
//!
//! Targets are TransformerLens's `get_act_patch_*` functions (`Target`), each a grid over layers and positions
//! or heads. `activation_patching` (one run per cell) is `PatchSweep` run to the end; the sweep runs a few
//! cells per `step` for the browser. `AttributionPatching` estimates every grid at once to first order,
//! (source − base) · ∂metric/∂activation, from the source run's activations and one forward and one backward
//! pass of the base run; `correlation` compares it with real patching.
use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::lens::gpt2::hooks::{ActivationCache, Hook, HookSet, Intervention, Op};
use crate::lens::{LensError, Result, Transformer};

mod attribution;
pub use attribution::AttributionRun;

/// What patching compares: two prompts of the same length, the answer the clean prompt leads to, and the
/// wrong token the logit difference is measured against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchInput {
    pub clean: Vec<u32>,
    pub corrupted: Vec<u32>,
    pub answer: u32,
    pub wrong: u32,
}

impl PatchInput {
    pub fn new(clean: Vec<u32>, corrupted: Vec<u32>, answer: u32, wrong: u32) -> Self {
        PatchInput { clean, corrupted, answer, wrong }
    }

    /// The number of positions (both prompts have it once `check` passes).
    pub fn len(&self) -> usize {
        self.clean.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clean.is_empty()
    }

    /// Checks the input against the model, with a message a student can act on.
    pub fn check(&self, model: &Transformer) -> Result<()> {
        let (a, b) = (self.clean.len(), self.corrupted.len());
        if a != b {
            return Err(LensError::Input(format!(
                "the clean prompt has {a} tokens and the corrupted prompt {b}: patching swaps activations position \
                 by position, so both prompts need the same number of tokens"
            )));
        }
        let named = |which: &str, e: LensError| match e {
            LensError::Input(m) => LensError::Input(format!("the {which} prompt: {m}")),
            e => e,
        };
        model.check_tokens(&self.clean).map_err(|e| named("clean", e))?;
        model.check_tokens(&self.corrupted).map_err(|e| named("corrupted", e))?;
        let vocab = model.cfg.vocab_size;
        for (name, t) in [("answer", self.answer), ("wrong", self.wrong)] {
            if t as usize >= vocab {
                return Err(LensError::Input(format!(
                    "the {name} token id {t} is outside the vocabulary (size {vocab})"
                )));
            }
        }
        if self.answer == self.wrong {
            return Err(LensError::Input(format!(
                "the answer and the wrong token are the same token ({}): their logit difference is always 0",
                self.answer
            )));
        }
        Ok(())
    }
}

/// Which run is patched, and from which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Clean activations patched into the corrupted run: what is sufficient to restore the answer.
    Denoising,
    /// Corrupted activations patched into the clean run: what is necessary for the answer.
    Noising,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Denoising, Direction::Noising];

    pub fn name(self) -> &'static str {
        match self {
            Direction::Denoising => "denoising",
            Direction::Noising => "noising",
        }
    }

    /// The prompt that runs, with one activation replaced.
    pub fn base(self, input: &PatchInput) -> &[u32] {
        match self {
            Direction::Denoising => &input.corrupted,
            Direction::Noising => &input.clean,
        }
    }

    /// The prompt whose activations are patched in.
    pub fn source(self, input: &PatchInput) -> &[u32] {
        match self {
            Direction::Denoising => &input.clean,
            Direction::Noising => &input.corrupted,
        }
    }
}

/// What is patched, as TransformerLens's `get_act_patch_*` functions patch it: the activation, and the grid of
/// cells (one patched run each) over which the result is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    /// `blocks.{l}.hook_resid_pre`, one position at a time: `[layer, pos]`.
    ResidPre,
    /// `blocks.{l}.hook_attn_out`, one position at a time: `[layer, pos]`.
    AttnOut,
    /// `blocks.{l}.hook_mlp_out`, one position at a time: `[layer, pos]` (models with an MLP only).
    MlpOut,
    /// `blocks.{l}.attn.hook_z`, one head at every position: `[layer, head]`.
    HeadOut,
    /// `blocks.{l}.attn.hook_z`, one head at one position: `[layer, pos, head]`.
    HeadOutByPos,
    /// `blocks.{l}.attn.hook_pattern`, one head's whole pattern: `[layer, head]`.
    Pattern,
    /// `blocks.{l}.attn.hook_q`, one head at every position: `[layer, head]`.
    Q,
    /// `blocks.{l}.attn.hook_k`, one head at every position: `[layer, head]`.
    K,
    /// `blocks.{l}.attn.hook_v`, one head at every position: `[layer, head]`.
    V,
}

impl Target {
    pub const ALL: [Target; 9] = [
        Target::ResidPre,
        Target::AttnOut,
        Target::MlpOut,
        Target::HeadOut,
        Target::HeadOutByPos,
        Target::Pattern,
        Target::Q,
        Target::K,
        Target::V,
    ];

    /// TransformerLens's name for it: `get_act_patch_{name}`.
    pub fn name(self) -> &'static str {
        match self {
            Target::ResidPre => "resid_pre",
            Target::AttnOut => "attn_out",
            Target::MlpOut => "mlp_out",
            Target::HeadOut => "attn_head_out_all_pos",
            Target::HeadOutByPos => "attn_head_out_by_pos",
            Target::Pattern => "attn_head_pattern_all_pos",
            Target::Q => "attn_head_q_all_pos",
            Target::K => "attn_head_k_all_pos",
            Target::V => "attn_head_v_all_pos",
        }
    }

    /// The hook it patches in layer `layer`.
    pub fn hook(self, layer: usize) -> Hook {
        match self {
            Target::ResidPre => Hook::ResidPre(layer),
            Target::AttnOut => Hook::AttnOut(layer),
            Target::MlpOut => Hook::MlpOut(layer),
            Target::HeadOut | Target::HeadOutByPos => Hook::Z(layer),
            Target::Pattern => Hook::Pattern(layer),
            Target::Q => Hook::Q(layer),
            Target::K => Hook::K(layer),
            Target::V => Hook::V(layer),
        }
    }

    /// Its hook in every layer.
    pub fn hooks(self, n_layer: usize) -> Vec<Hook> {
        (0..n_layer).map(|l| self.hook(l)).collect()
    }

    /// The grid's axes, as TransformerLens orders them.
    pub fn axes(self) -> &'static [&'static str] {
        match self {
            Target::ResidPre | Target::AttnOut | Target::MlpOut => &["layer", "pos"],
            Target::HeadOutByPos => &["layer", "pos", "head"],
            Target::HeadOut | Target::Pattern | Target::Q | Target::K | Target::V => &["layer", "head"],
        }
    }

    /// The grid's size along each axis, for `model` and prompts of `n_pos` tokens.
    pub fn dims(self, model: &Transformer, n_pos: usize) -> Vec<usize> {
        let (l, h) = (model.cfg.n_layer, model.cfg.n_head);
        match self {
            Target::ResidPre | Target::AttnOut | Target::MlpOut => vec![l, n_pos],
            Target::HeadOutByPos => vec![l, n_pos, h],
            Target::HeadOut | Target::Pattern | Target::Q | Target::K | Target::V => vec![l, h],
        }
    }

    /// Whether the model has this activation: an attention-only model has no MLP.
    pub fn check(self, model: &Transformer) -> Result<()> {
        self.check_attn_only(model.cfg.attn_only)
    }

    fn check_attn_only(self, attn_only: bool) -> Result<()> {
        if self == Target::MlpOut && attn_only {
            return Err(LensError::Input(
                "this model is attention-only: it has no MLP output to patch (choose resid_pre, attn_out or a head)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The intervention that patches one cell (`cell` indexes `axes()`) with `source`, the whole activation of
    /// the source run at `self.hook(cell[0])`.
    pub fn intervention(self, cell: &[usize], source: &Tensor) -> Intervention {
        let iv = Intervention::new(self.hook(cell[0]), Op::Replace(source.clone()));
        match self {
            Target::ResidPre | Target::AttnOut | Target::MlpOut => iv.pos(cell[1]),
            Target::HeadOutByPos => iv.pos(cell[1]).head(cell[2]),
            Target::HeadOut | Target::Pattern | Target::Q | Target::K | Target::V => iv.head(cell[1]),
        }
    }
}

/// The cell at row-major `flat` index of a grid with `dims`.
pub fn unravel(flat: usize, dims: &[usize]) -> Vec<usize> {
    let mut cell = vec![0; dims.len()];
    let mut rest = flat;
    for (c, &d) in cell.iter_mut().zip(dims).rev() {
        *c = rest % d;
        rest /= d;
    }
    cell
}

/// What one run gives at the last position, before any normalisation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measures {
    /// logit(answer) − logit(wrong).
    pub logit_diff: f32,
    /// The probability of the answer.
    pub answer_prob: f32,
    /// KL(clean ‖ this run) of the next-token distributions, in nats.
    pub kl: f32,
}

/// The clean and corrupted runs' measures: the two ends of the scale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub clean: Measures,
    pub corrupted: Measures,
}

/// The last position's log-probabilities `[vocab]` from logits `[1, pos, vocab]`, in f64.
pub fn last_log_probs(logits: &Tensor) -> Result<Vec<f64>> {
    Ok(log_softmax(&last_row(logits)?))
}

/// The last position's logits `[vocab]` from logits `[1, pos, vocab]`.
fn last_row(logits: &Tensor) -> Result<Vec<f32>> {
    let (_, pos, _) = logits.dims3()?;
    Ok(logits.get(0)?.get(pos - 1)?.to_dtype(DType::F32)?.to_vec1()?)
}

/// The log-probabilities of one row of logits, in f64.
pub fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let lse = max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
    row.iter().map(|&v| v as f64 - lse).collect()
}

/// The measures of a run with logits `[1, pos, vocab]`; `clean_log_probs` are the clean run's (for the KL).
pub fn measures(logits: &Tensor, answer: u32, wrong: u32, clean_log_probs: &[f64]) -> Result<Measures> {
    let row = last_row(logits)?;
    let lp = log_softmax(&row);
    let kl = kl_divergence(clean_log_probs, &lp);
    Ok(Measures {
        logit_diff: row[answer as usize] - row[wrong as usize],
        answer_prob: lp[answer as usize].exp() as f32,
        kl: kl as f32,
    })
}

/// KL(p ‖ q) in nats from two rows of log-probabilities, clamped at 0 (rounding can take a zero KL below it).
pub fn kl_divergence(p_log: &[f64], q_log: &[f64]) -> f64 {
    let kl: f64 = p_log.iter().zip(q_log).map(|(&p, &q)| p.exp() * (p - q)).sum();
    kl.max(0.0)
}

/// How a patched run is scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Metric {
    /// The logit difference, normalised: 0 = the corrupted run, 1 = the clean run.
    LogitDiff,
    /// The probability of the answer.
    AnswerProb,
    /// KL(clean ‖ patched), in nats: 0 = the clean run's distribution.
    Kl,
}

impl Metric {
    pub const ALL: [Metric; 3] = [Metric::LogitDiff, Metric::AnswerProb, Metric::Kl];

    pub fn name(self) -> &'static str {
        match self {
            Metric::LogitDiff => "normalised logit difference",
            Metric::AnswerProb => "probability of the answer",
            Metric::Kl => "KL divergence from the clean run",
        }
    }

    /// The measure this metric is read from (before normalisation).
    fn raw(self, m: &Measures) -> f32 {
        match self {
            Metric::LogitDiff => m.logit_diff,
            Metric::AnswerProb => m.answer_prob,
            Metric::Kl => m.kl,
        }
    }

    /// The metric for a raw value (see `raw`); only the logit difference is normalised.
    fn scale_raw(self, raw: f32, baseline: &Baseline) -> Result<f32> {
        match self {
            Metric::LogitDiff => normalised_logit_diff(raw, baseline.clean.logit_diff, baseline.corrupted.logit_diff),
            Metric::AnswerProb | Metric::Kl => Ok(raw),
        }
    }

    /// The metric of a run with measures `m`.
    pub fn value(self, m: &Measures, baseline: &Baseline) -> Result<f32> {
        self.scale_raw(self.raw(m), baseline)
    }
}

/// (patched − corrupted) / (clean − corrupted): 0 = the corrupted run, 1 = the clean run. An error when the two
/// runs' logit differences are (all but) equal: the scale then has no length.
pub fn normalised_logit_diff(patched: f32, clean: f32, corrupted: f32) -> Result<f32> {
    let gap = clean - corrupted;
    if !gap.is_finite() || gap.abs() <= 1e-6 * (1.0 + clean.abs().max(corrupted.abs())) {
        return Err(LensError::Input(format!(
            "the corruption does not change the answer: the logit difference is {clean:.4} on the clean prompt and \
             {corrupted:.4} on the corrupted one, so the normalised logit difference is undefined (change the \
             corrupted prompt, or choose another answer or wrong token)"
        )));
    }
    Ok((patched - corrupted) / gap)
}

/// One metric over a target's grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchGrid {
    pub target: Target,
    pub metric: Metric,
    /// Sizes along `target.axes()`.
    pub dims: Vec<usize>,
    /// Row-major over `dims`.
    pub values: Vec<f32>,
}

impl PatchGrid {
    pub fn axes(&self) -> &'static [&'static str] {
        self.target.axes()
    }

    /// The value at one cell (one index per axis), None outside the grid.
    pub fn get(&self, cell: &[usize]) -> Option<f32> {
        if cell.len() != self.dims.len() || cell.iter().zip(&self.dims).any(|(i, d)| i >= d) {
            return None;
        }
        let flat = cell.iter().zip(&self.dims).fold(0, |acc, (i, d)| acc * d + i);
        self.values.get(flat).copied()
    }

    /// The values as `[layer][rest]` rows: `[layer][pos]`, `[layer][head]` or `[layer][pos * n_head + head]`.
    pub fn rows(&self) -> Vec<Vec<f32>> {
        let per = self.dims[1..].iter().product::<usize>().max(1);
        self.values.chunks(per).map(<[f32]>::to_vec).collect()
    }
}

/// Every cell's measures for one target: read any metric from it with `grid`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchResult {
    pub target: Target,
    pub direction: Direction,
    pub dims: Vec<usize>,
    pub baseline: Baseline,
    /// Row-major over `dims`.
    pub cells: Vec<Measures>,
}

impl PatchResult {
    pub fn grid(&self, metric: Metric) -> Result<PatchGrid> {
        let values = self.cells.iter().map(|m| metric.value(m, &self.baseline)).collect::<Result<Vec<f32>>>()?;
        Ok(PatchGrid { target: self.target, metric, dims: self.dims.clone(), values })
    }
}

fn tokens_tensor(tokens: &[u32]) -> Result<Tensor> {
    Ok(Tensor::from_slice(tokens, (1, tokens.len()), &Device::Cpu)?)
}

/// A forward pass of `tokens` caching `hooks`: logits `[1, pos, vocab]` and the cache.
fn cached_run(model: &Transformer, tokens: &[u32], hooks: Vec<Hook>) -> Result<(Tensor, ActivationCache)> {
    let mut set = HookSet::cache_only(hooks);
    let logits = model.forward(&tokens_tensor(tokens)?, &mut set)?;
    Ok((logits, set.cache))
}

/// The clean and corrupted runs, each once, caching `hooks` on the source run: the baseline, the clean
/// log-probabilities (for the KL) and the source activations.
fn source_and_baseline(
    model: &Transformer,
    input: &PatchInput,
    direction: Direction,
    hooks: Vec<Hook>,
) -> Result<(Baseline, Vec<f64>, ActivationCache)> {
    let (clean_hooks, corrupted_hooks) = match direction {
        Direction::Denoising => (hooks, vec![]),
        Direction::Noising => (vec![], hooks),
    };
    let (clean_logits, clean_cache) = cached_run(model, &input.clean, clean_hooks)?;
    let (corrupted_logits, corrupted_cache) = cached_run(model, &input.corrupted, corrupted_hooks)?;
    let clean_lp = last_log_probs(&clean_logits)?;
    let baseline = Baseline {
        clean: measures(&clean_logits, input.answer, input.wrong, &clean_lp)?,
        corrupted: measures(&corrupted_logits, input.answer, input.wrong, &clean_lp)?,
    };
    let source = match direction {
        Direction::Denoising => clean_cache,
        Direction::Noising => corrupted_cache,
    };
    Ok((baseline, clean_lp, source))
}

/// Activation patching of one target over its whole grid, a few cells per `step`, so the browser can run it
/// between frames; `activation_patching` runs one to the end, so both give identical results.
pub struct PatchSweep {
    input: PatchInput,
    target: Target,
    direction: Direction,
    dims: Vec<usize>,
    /// The base prompt `[1, pos]`.
    base: Tensor,
    /// The target's activations on the source run, one per layer.
    source: ActivationCache,
    clean_log_probs: Vec<f64>,
    baseline: Baseline,
    cells: Vec<Measures>,
}

impl PatchSweep {
    /// Checks the input and the target, then runs the clean and the corrupted prompt once each (caching the
    /// target's activations on the source run). Runs no patched cell yet.
    pub fn new(model: &Transformer, input: &PatchInput, target: Target, direction: Direction) -> Result<Self> {
        input.check(model)?;
        target.check(model)?;
        let (baseline, clean_log_probs, source) =
            source_and_baseline(model, input, direction, target.hooks(model.cfg.n_layer))?;
        Ok(PatchSweep {
            input: input.clone(),
            target,
            direction,
            dims: target.dims(model, input.len()),
            base: tokens_tensor(direction.base(input))?,
            source,
            clean_log_probs,
            baseline,
            cells: Vec::new(),
        })
    }

    /// The number of cells (patched runs) in all.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of cells run so far.
    pub fn done(&self) -> usize {
        self.cells.len()
    }

    /// The share of cells run, in [0, 1].
    pub fn progress(&self) -> f32 {
        self.done() as f32 / self.len().max(1) as f32
    }

    /// The clean and corrupted runs' measures.
    pub fn baseline(&self) -> &Baseline {
        &self.baseline
    }

    pub fn target(&self) -> Target {
        self.target
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The grid's size along `target().axes()`.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The intervention of the cell at row-major index `flat`.
    pub fn intervention(&self, flat: usize) -> Result<Intervention> {
        let cell = unravel(flat, &self.dims);
        let hook = self.target.hook(cell[0]);
        let source = self.source.get(hook).ok_or_else(|| LensError::UnknownHook(hook.to_string()))?;
        Ok(self.target.intervention(&cell, source))
    }

    /// The measures of the base run with these interventions (none: the base run itself).
    pub fn measure(&self, model: &Transformer, interventions: Vec<Intervention>) -> Result<Measures> {
        let logits = model.forward(&self.base, &mut HookSet::intervening(interventions))?;
        measures(&logits, self.input.answer, self.input.wrong, &self.clean_log_probs)
    }

    /// Runs up to `n` more cells; true once every cell has run.
    pub fn step(&mut self, model: &Transformer, n: usize) -> Result<bool> {
        for _ in 0..n {
            if self.done() == self.len() {
                break;
            }
            let iv = self.intervention(self.done())?;
            let m = self.measure(model, vec![iv])?;
            self.cells.push(m);
        }
        Ok(self.done() == self.len())
    }

    /// Every cell's measures, once every cell has run.
    pub fn finish(self) -> Result<PatchResult> {
        if self.done() < self.len() {
            return Err(LensError::Input("the patching sweep is not finished: run every cell first".into()));
        }
        Ok(PatchResult {
            target: self.target,
            direction: self.direction,
            dims: self.dims,
            baseline: self.baseline,
            cells: self.cells,
        })
    }
}

/// Activation patching of `target` over its whole grid, in one go: the clean and corrupted runs once, then one
/// patched run per cell.
pub fn activation_patching(
    model: &Transformer,
    input: &PatchInput,
    target: Target,
    direction: Direction,
) -> Result<PatchResult> {
    let mut sweep = PatchSweep::new(model, input, target, direction)?;
    while !sweep.step(model, usize::MAX)? {}
    sweep.finish()
}

/// The targets a model has (no `MlpOut` without an MLP).
pub fn targets(model: &Transformer) -> Vec<Target> {
    Target::ALL.into_iter().filter(|t| t.check(model).is_ok()).collect()
}

/// Attribution patching (Nanda 2023): every cell of every target estimated to first order at once,
/// metric(base) + (source − base) · ∂metric/∂activation, with the gradient taken on the base run.
///
/// Cost: one forward pass of the source prompt (caching its activations) and one forward and one backward pass
/// of the base prompt, against one forward per cell for real patching. The gradient at every hook comes from a
/// zero `Var` added there (`Op::Add`), so gradients still flow through it to earlier hooks. `AttributionRun`
/// computes it a piece at a time (the backward half a block per piece); `new` runs one to the end.
///
/// A first-order estimate is exact when the metric is linear in the activation, and poor where the model is
/// far from linear between the two runs (a softmax that saturates, a LayerNorm whose scale changes). Noising
/// with `Metric::Kl` estimates 0 everywhere: the KL from the clean run has its minimum on the clean run, where
/// its gradient vanishes.
pub struct AttributionPatching {
    metric: Metric,
    n_layer: usize,
    attn_only: bool,
    baseline: Baseline,
    /// The metric's raw value on the base run (see `Metric::raw`).
    base_raw: f32,
    /// Per hook, (source − base) ⊙ gradient, in the hook's shape (`[1, ...]`).
    products: HashMap<Hook, Tensor>,
}

impl AttributionPatching {
    /// Runs an `AttributionRun` to the end, in one call.
    pub fn new(model: &Transformer, input: &PatchInput, direction: Direction, metric: Metric) -> Result<Self> {
        let mut run = AttributionRun::new(model, input, direction, metric)?;
        while !run.step(model)? {}
        run.finish()
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The clean and corrupted runs' measures (from the two runs made here).
    pub fn baseline(&self) -> &Baseline {
        &self.baseline
    }

    /// The estimated metric of every cell of `target`, laid out as `activation_patching`'s grid.
    pub fn grid(&self, target: Target) -> Result<PatchGrid> {
        target.check_attn_only(self.attn_only)?;
        let n_layer = self.n_layer;
        let mut dims = Vec::new();
        let mut values = Vec::new();
        for layer in 0..n_layer {
            let hook = target.hook(layer);
            let p = self.products.get(&hook).ok_or_else(|| LensError::UnknownHook(hook.to_string()))?;
            // Sum the products over everything a cell patches.
            let cells = match target {
                // [1, pos, d] -> [pos]
                Target::ResidPre | Target::AttnOut | Target::MlpOut => p.sum(2)?.get(0)?,
                // [1, pos, head, d_head] -> [head]
                Target::HeadOut | Target::Q | Target::K | Target::V => p.sum(3)?.sum(1)?.get(0)?,
                // [1, pos, head, d_head] -> [pos, head]
                Target::HeadOutByPos => p.sum(3)?.get(0)?,
                // [1, head, q, k] -> [head]
                Target::Pattern => p.sum(3)?.sum(2)?.get(0)?,
            };
            if dims.is_empty() {
                dims.push(n_layer);
                dims.extend(cells.dims());
            }
            for d in cells.flatten_all()?.to_vec1::<f32>()? {
                values.push(self.metric.scale_raw(self.base_raw + d, &self.baseline)?);
            }
        }
        Ok(PatchGrid { target, metric: self.metric, dims, values })
    }
}

/// Attribution patching of one target: `AttributionPatching::new(..).grid(target)`.
pub fn attribution_patching(
    model: &Transformer,
    input: &PatchInput,
    target: Target,
    direction: Direction,
    metric: Metric,
) -> Result<PatchGrid> {
    target.check(model)?;
    AttributionPatching::new(model, input, direction, metric)?.grid(target)
}

/// Pearson's correlation of two equally long lists; None when they differ in length, hold fewer than two
/// values or one of them is constant.
pub fn pearson(a: &[f32], b: &[f32]) -> Option<f32> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let n = a.len() as f64;
    let ma = a.iter().map(|&v| v as f64).sum::<f64>() / n;
    let mb = b.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64 - ma, y as f64 - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    (saa > 0.0 && sbb > 0.0 && saa.is_finite() && sbb.is_finite()).then(|| (sab / (saa * sbb).sqrt()) as f32)
}

/// How well an estimate (attribution patching) follows real patching: Pearson's correlation over the cells.
pub fn correlation(real: &PatchGrid, estimate: &PatchGrid) -> Result<f32> {
    if real.target != estimate.target || real.dims != estimate.dims || real.metric != estimate.metric {
        return Err(LensError::Input(format!(
            "the grids do not match: {} {:?} by {} against {} {:?} by {}",
            real.target.name(),
            real.dims,
            real.metric.name(),
            estimate.target.name(),
            estimate.dims,
            estimate.metric.name()
        )));
    }
    pearson(&real.values, &estimate.values).ok_or_else(|| {
        LensError::Input(
            "one of the grids is constant (or has a single cell), so their correlation is undefined".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unravel_is_row_major() {
        assert_eq!(unravel(0, &[2, 3, 4]), vec![0, 0, 0]);
        assert_eq!(unravel(5, &[2, 3, 4]), vec![0, 1, 1]);
        assert_eq!(unravel(23, &[2, 3, 4]), vec![1, 2, 3]);
        let g = PatchGrid {
            target: Target::HeadOutByPos,
            metric: Metric::Kl,
            dims: vec![2, 3, 4],
            values: (0..24).map(|v| v as f32).collect(),
        };
        for flat in 0..24 {
            assert_eq!(g.get(&unravel(flat, &g.dims)), Some(flat as f32));
        }
        assert_eq!(g.get(&[2, 0, 0]), None);
        assert_eq!(g.get(&[0, 0]), None);
        assert_eq!(g.rows().len(), 2);
        assert_eq!(g.rows()[1][0], 12.0);
    }

    #[test]
    fn normalised_logit_diff_by_hand() {
        assert_eq!(normalised_logit_diff(3.0, 3.0, -1.0).unwrap(), 1.0);
        assert_eq!(normalised_logit_diff(-1.0, 3.0, -1.0).unwrap(), 0.0);
        assert_eq!(normalised_logit_diff(1.0, 3.0, -1.0).unwrap(), 0.5);
        let e = normalised_logit_diff(1.0, 2.0, 2.0).unwrap_err().to_string();
        assert!(e.contains("the corruption does not change the answer"), "{e}");
        assert!(normalised_logit_diff(1.0, f32::NAN, 2.0).is_err());
    }

    #[test]
    fn pearson_by_hand() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap() - 1.0).abs() < 1e-6);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-6);
        // x = (-1, 0, 1), y = (1, -2, 1): uncorrelated.
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[1.0, -2.0, 1.0]).unwrap(), 0.0);
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(pearson(&[1.0], &[1.0]), None);
        assert_eq!(pearson(&[1.0, 2.0], &[1.0]), None);
    }

    #[test]
    fn measures_by_hand() {
        // Logits (ln 1, ln 2, ln 1): probabilities 1/4, 1/2, 1/4.
        let l = [0.0f32, 2f32.ln(), 0.0];
        let logits = Tensor::from_slice(&[9.0f32, 9.0, 9.0, l[0], l[1], l[2]], (1, 2, 3), &Device::Cpu).unwrap();
        let uniform = vec![(1.0f64 / 3.0).ln(); 3];
        let m = measures(&logits, 1, 0, &uniform).unwrap();
        assert!((m.logit_diff - 2f32.ln()).abs() < 1e-6);
        assert!((m.answer_prob - 0.5).abs() < 1e-6);
        // KL(uniform ‖ (1/4, 1/2, 1/4)) = ln(1/3) - (2 ln(1/4) + ln(1/2)) / 3.
        let kl = (1.0f64 / 3.0).ln() - (2.0 * 0.25f64.ln() + 0.5f64.ln()) / 3.0;
        assert!((m.kl as f64 - kl).abs() < 1e-6, "{} vs {kl}", m.kl);
        let own = last_log_probs(&logits).unwrap();
        assert_eq!(measures(&logits, 1, 0, &own).unwrap().kl, 0.0);
    }

    #[test]
    fn target_names_axes_and_interventions() {
        assert_eq!(Target::ALL.len(), 9);
        assert_eq!(Target::HeadOutByPos.axes(), ["layer", "pos", "head"]);
        assert_eq!(Target::HeadOut.hook(1), Hook::Z(1));
        assert_eq!(Target::Pattern.hook(0).to_string(), "blocks.0.attn.hook_pattern");
        let t = Tensor::zeros((1, 3, 2, 2), DType::F32, &Device::Cpu).unwrap();
        let iv = Target::HeadOutByPos.intervention(&[1, 2, 0], &t);
        assert_eq!((iv.hook, iv.pos, iv.head), (Hook::Z(1), Some(2), Some(0)));
        let iv = Target::ResidPre.intervention(&[0, 1], &t);
        assert_eq!((iv.hook, iv.pos, iv.head), (Hook::ResidPre(0), Some(1), None));
        let iv = Target::V.intervention(&[1, 3], &t);
        assert_eq!((iv.hook, iv.pos, iv.head), (Hook::V(1), None, Some(3)));
    }
}
