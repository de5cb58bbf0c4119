//! Attribution patching a piece at a time (`AttributionRun`), so the browser's main thread is given back between
//! pieces: no piece is more than half a transformer block's forward or backward pass, or a slice of the
//! unembedding at one position. `AttributionPatching::new` is this run taken to the end.
//!
//! The gradient is taken half a block at a time, last first: `Transformer::half_block_backward` takes ∂metric/∂
//! (the half's output) from the half after it, and gives ∂metric/∂hook for the half's hooks and ∂metric/∂input,
//! which the half before it takes. The metric's own gradient, at the last position of the final residual stream,
//! is autograd's on the last logits and through the final LayerNorm, with the unembedding between the two run
//! backwards by hand (`Transformer::unembed_backward`).
use std::collections::HashMap;

use candle_core::{Device, Tensor, Var, D};

use super::{
    last_log_probs, measures, normalised_logit_diff, AttributionPatching, Baseline, Direction, Metric, PatchInput,
};
use crate::lens::gpt2::hooks::{ActivationCache, Hook, HookSet};
use crate::lens::gpt2::model::{Pass, Stepped};
use crate::lens::{LensError, Result, Transformer};

/// Multiply-adds per slice of the unembedding (one position's logits, or their gradient run back): the whole
/// of GPT-2 small's is 39M, its 154 MB of weights read once, a 6–17 ms task natively.
const UNEMBED_SLICE_MACS: usize = 8_000_000;

/// Where an `AttributionRun` stands.
enum Phase {
    /// A prompt's forward pass (`AttributionRun::forward`), half a block per step: the source's, then the base's.
    Forward,
    /// The last position's logits of the run just ended, a slice of the vocabulary per step: `normed` `[1,
    /// d_model]` is its final residual stream there through the final LayerNorm.
    Logits {
        normed: Tensor,
        logits: Vec<f32>,
    },
    /// ∂metric/∂(the last position's `normed`) `[1, d_model]`, summed over the vocabulary a slice per step from
    /// ∂metric/∂logits `[1, vocab]`.
    Unembedding {
        grad_logits: Tensor,
        grad_normed: Option<Tensor>,
        done: usize,
    },
    /// The halves backwards, the last first (each `Pass` popped from `inputs`), from ∂metric/∂(its output).
    Backward {
        grad_out: Tensor,
    },
    Done,
}

/// Attribution patching (see `AttributionPatching`) one piece per `step`, for a page that must keep every task
/// short. The pieces, in order:
/// 1. the source prompt's forward pass, half a block per step, caching the activations attribution needs;
/// 2. the source run's logits at the last position, a slice of the vocabulary per step (never the whole
///    `[pos, vocab]` unembedding);
/// 3. the base prompt's forward pass, half a block per step, caching the same activations (and what the
///    backward pass reads), and keeping the pass at the start of every half;
/// 4. the base run's last logits, a slice per step; then the baseline and ∂metric/∂logits;
/// 5. that gradient run back through the unembedding, a slice per step; then through the final LayerNorm;
/// 6. the backward pass, half a block per step, last first, with each half's products (source − base) ⊙
///    gradient.
///
/// GPT-2 small over 32 tokens: 24 halves and 5 slices of the vocabulary, 3 × 24 + 3 × 5 = 87 steps, none over
/// ~6 ms natively.
pub struct AttributionRun {
    input: PatchInput,
    direction: Direction,
    metric: Metric,
    n_layer: usize,
    attn_only: bool,
    /// Every target's hook in every layer, sorted.
    hooks: Vec<Hook>,
    /// Tokens of the vocabulary per slice of the unembedding.
    cols: usize,
    /// Steps in all, and run so far.
    len: usize,
    done: usize,
    phase: Phase,
    /// The forward pass under way (the source's, then the base's).
    forward: Option<Stepped>,
    source: ActivationCache,
    /// The source run's logits at the last position `[1, 1, vocab]`, once computed.
    source_last: Option<Tensor>,
    base: ActivationCache,
    /// The base run's pass at the start of each half, in forward order, until the backward pass takes them.
    inputs: Vec<Pass>,
    /// The final residual stream `[1, pos, d_model]` of the run whose logits are computed or, later, the base's.
    final_resid: Option<Tensor>,
    baseline: Baseline,
    base_raw: f32,
    products: HashMap<Hook, Tensor>,
}

impl AttributionRun {
    /// Checks the input; embeds the source prompt, and runs nothing else yet.
    pub fn new(model: &Transformer, input: &PatchInput, direction: Direction, metric: Metric) -> Result<Self> {
        input.check(model)?;
        let n_layer = model.cfg.n_layer;
        let mut hooks: Vec<Hook> = super::targets(model).into_iter().flat_map(|t| t.hooks(n_layer)).collect();
        hooks.sort();
        hooks.dedup();
        let forward = Stepped::new(model, direction.source(input), HookSet::cache_only(hooks.clone()))?;
        let attn_only = model.cfg.attn_only;
        let halves = n_layer * if attn_only { 1 } else { 2 };
        let vocab = model.cfg.vocab_size;
        let cols = (UNEMBED_SLICE_MACS / model.cfg.d_model().max(1)).clamp(1, vocab);
        Ok(AttributionRun {
            input: input.clone(),
            direction,
            metric,
            n_layer,
            attn_only,
            hooks,
            cols,
            len: 3 * halves + 3 * vocab.div_ceil(cols),
            done: 0,
            phase: Phase::Forward,
            forward: Some(forward),
            source: ActivationCache::default(),
            source_last: None,
            base: ActivationCache::default(),
            inputs: Vec::new(),
            final_resid: None,
            baseline: Baseline::default(),
            base_raw: 0.0,
            products: HashMap::new(),
        })
    }

    /// The number of steps in all: three per half block (each prompt's forward, the base's backward) and three
    /// per slice of the vocabulary (each prompt's last logits, their gradient run back).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Runs the next piece; true once every piece has run (then call `finish`). `model` must be the one the run
    /// was made with. After an error the run is spoilt.
    pub fn step(&mut self, model: &Transformer) -> Result<bool> {
        self.phase = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Done => return Ok(true),
            Phase::Forward => self.forward_half(model)?,
            Phase::Logits { normed, logits } => self.logits_slice(model, normed, logits)?,
            Phase::Unembedding { grad_logits, grad_normed, done } => {
                self.unembedding_slice(model, grad_logits, grad_normed, done)?
            }
            Phase::Backward { grad_out } => self.backward_half(model, grad_out)?,
        };
        self.done += 1;
        Ok(matches!(self.phase, Phase::Done))
    }

    /// The share of the steps run, in [0, 1] (they are of about the same cost).
    pub fn progress(&self, _model: &Transformer) -> f32 {
        if matches!(self.phase, Phase::Done) {
            return 1.0;
        }
        self.done as f32 / self.len.max(1) as f32
    }

    /// The estimates, once `step` has returned true.
    pub fn finish(self) -> Result<AttributionPatching> {
        if !matches!(self.phase, Phase::Done) {
            return Err(LensError::Input("attribution patching is not finished: step it to the end first".into()));
        }
        Ok(AttributionPatching {
            metric: self.metric,
            n_layer: self.n_layer,
            attn_only: self.attn_only,
            baseline: self.baseline,
            base_raw: self.base_raw,
            products: self.products,
        })
    }

    /// Whether the forward pass under way, or the logits being computed, are the base run's.
    fn on_base(&self) -> bool {
        self.source_last.is_some()
    }

    /// The next half block of the forward pass under way, without autograd; the base run keeps its pass first.
    /// After the last block, on to the last position's logits (never `Stepped`'s last step, the unembedding of
    /// every position).
    fn forward_half(&mut self, model: &Transformer) -> Result<Phase> {
        let on_base = self.on_base();
        let forward = self.forward.as_mut().ok_or_else(|| out_of_order("forward pass"))?;
        let pass = forward.pass().ok_or_else(|| out_of_order("forward pass"))?;
        if on_base {
            self.inputs.push(pass.clone());
        }
        forward.step(model)?;
        let pass = forward.pass().ok_or_else(|| out_of_order("forward pass"))?;
        if pass.layers_done() < self.n_layer {
            return Ok(Phase::Forward);
        }
        let resid = pass.resid().clone();
        let cache = std::mem::take(&mut forward.hooks.cache);
        self.forward = None;
        if on_base {
            self.base = cache;
        } else {
            self.source = cache;
        }
        let pos = resid.dim(1)?;
        let normed = model.final_norm(&resid.get(0)?.narrow(0, pos - 1, 1)?)?; // [1, d_model]
        self.final_resid = Some(resid);
        Ok(Phase::Logits { normed, logits: Vec::with_capacity(model.cfg.vocab_size) })
    }

    /// The next slice of the last logits. Once all are in: after the source run, the base prompt is embedded;
    /// after the base run, the baseline and the metric's gradient at the logits.
    fn logits_slice(&mut self, model: &Transformer, normed: Tensor, mut logits: Vec<f32>) -> Result<Phase> {
        let vocab = model.cfg.vocab_size;
        let len = self.cols.min(vocab - logits.len());
        logits.extend(model.unembed_slice(&normed, logits.len(), len)?.flatten_all()?.to_vec1::<f32>()?);
        if logits.len() < vocab {
            return Ok(Phase::Logits { normed, logits });
        }
        let last = Tensor::from_vec(logits, (1, 1, vocab), &Device::Cpu)?;
        if !self.on_base() {
            self.source_last = Some(last);
            // The base run also keeps what the backward pass reads (the MLPs' pre-activations besides the targets').
            let mut hooks = self.hooks.clone();
            hooks.extend((0..self.n_layer).flat_map(|l| model.backward_reads(l)));
            let base = self.direction.base(&self.input);
            self.forward = Some(Stepped::new(model, base, HookSet::cache_only(hooks))?);
            return Ok(Phase::Forward);
        }
        let clean_log_probs = self.baseline(&last)?;
        let value = Var::from_tensor(&last.flatten_all()?)?; // [vocab]
        let metric = metric_value(self.metric, value.as_tensor(), &self.input, &clean_log_probs)?;
        let grad = metric.backward()?.get(value.as_tensor()).cloned().ok_or_else(|| out_of_order("gradient"))?;
        Ok(Phase::Unembedding { grad_logits: grad.unsqueeze(0)?, grad_normed: None, done: 0 })
    }

    /// Both runs' measures from their last logits `[1, 1, vocab]` (the base run's given): sets the baseline (an
    /// error when the logit difference is the metric and the corruption does not change it) and the metric on the
    /// base run; returns the clean run's log-probabilities.
    fn baseline(&mut self, base_last: &Tensor) -> Result<Vec<f64>> {
        let source_last = self.source_last.as_ref().ok_or_else(|| out_of_order("source run"))?;
        let (clean, corrupted) = match self.direction {
            Direction::Denoising => (source_last, base_last),
            Direction::Noising => (base_last, source_last),
        };
        let (answer, wrong) = (self.input.answer, self.input.wrong);
        let clean_lp = last_log_probs(clean)?;
        let baseline = Baseline {
            clean: measures(clean, answer, wrong, &clean_lp)?,
            corrupted: measures(corrupted, answer, wrong, &clean_lp)?,
        };
        if self.metric == Metric::LogitDiff {
            normalised_logit_diff(0.0, baseline.clean.logit_diff, baseline.corrupted.logit_diff)?;
        }
        self.base_raw = self.metric.raw(match self.direction {
            Direction::Denoising => &baseline.corrupted,
            Direction::Noising => &baseline.clean,
        });
        self.baseline = baseline;
        Ok(clean_lp)
    }

    /// The next slice of ∂metric/∂logits run back through the unembedding. Once all are summed, the gradient goes
    /// through the final LayerNorm (autograd, a `Var` for the last position's residual) to ∂metric/∂(the final
    /// residual stream), `[1, pos, d_model]`, zero but at the last position: the backward pass starts there.
    fn unembedding_slice(
        &mut self,
        model: &Transformer,
        grad_logits: Tensor,
        grad_normed: Option<Tensor>,
        done: usize,
    ) -> Result<Phase> {
        let vocab = model.cfg.vocab_size;
        let len = self.cols.min(vocab - done);
        let part = model.unembed_backward(&grad_logits.narrow(1, done, len)?, done)?; // [1, d_model]
        let grad_normed = match grad_normed {
            Some(g) => (g + part)?,
            None => part,
        };
        if done + len < vocab {
            return Ok(Phase::Unembedding { grad_logits, grad_normed: Some(grad_normed), done: done + len });
        }
        let resid = self.final_resid.take().ok_or_else(|| out_of_order("base run"))?;
        let (_, pos, d) = resid.dims3()?;
        let x = Var::from_tensor(&resid.get(0)?.narrow(0, pos - 1, 1)?)?; // [1, d_model]
        let objective = (model.final_norm(x.as_tensor())? * grad_normed)?.sum_all()?;
        let grad_x = objective.backward()?.get(x.as_tensor()).cloned().ok_or_else(|| out_of_order("gradient"))?;
        // The earlier positions reach the metric only through the blocks.
        Ok(Phase::Backward { grad_out: grad_x.reshape((1, 1, d))?.pad_with_zeros(1, pos - 1, 0)? })
    }

    /// The last half not yet run backwards (`Transformer::half_block_backward`): its hooks' products, and the
    /// gradient at its input, the `grad_out` of the half before it.
    fn backward_half(&mut self, model: &Transformer, grad_out: Tensor) -> Result<Phase> {
        let pass = self.inputs.pop().ok_or_else(|| out_of_order("base run"))?;
        let (grad_in, grads) = model.half_block_backward(&pass, &self.base, &grad_out)?;
        // The half's own hooks are the ones it has gradients for.
        for &hook in self.hooks.iter().filter(|&&h| grads.get(h).is_some()) {
            let base = self.base.get(hook).ok_or_else(|| LensError::UnknownHook(hook.to_string()))?;
            let src = self.source.get(hook).ok_or_else(|| LensError::UnknownHook(hook.to_string()))?;
            let grad = grads.get(hook).ok_or_else(|| LensError::UnknownHook(hook.to_string()))?;
            self.products.insert(hook, ((src - base)? * grad)?);
        }
        Ok(if self.inputs.is_empty() { Phase::Done } else { Phase::Backward { grad_out: grad_in } })
    }
}

/// The metric's raw value (see `Metric::raw`) as a differentiable function of the last logits `[vocab]`.
fn metric_value(metric: Metric, last: &Tensor, input: &PatchInput, clean_log_probs: &[f64]) -> Result<Tensor> {
    Ok(match metric {
        Metric::LogitDiff => (last.get(input.answer as usize)? - last.get(input.wrong as usize)?)?,
        Metric::AnswerProb => candle_nn::ops::log_softmax(last, D::Minus1)?.get(input.answer as usize)?.exp()?,
        Metric::Kl => {
            let lp_clean = clean_log_probs.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let lp_clean = Tensor::new(lp_clean, &Device::Cpu)?;
            let p_clean = lp_clean.exp()?;
            let lp = candle_nn::ops::log_softmax(last, D::Minus1)?;
            (p_clean * (lp_clean - lp)?)?.sum_all()?
        }
    })
}

fn out_of_order(what: &str) -> LensError {
    LensError::Input(format!("attribution patching stepped out of order: the {what} is not ready"))
}
