//! Attribution patching a piece at a time (`AttributionRun`), so the browser's main thread is given back between
//! pieces: no piece is more than half a transformer block's forward, or its backward, or one row of the
//! unembedding. `AttributionPatching::new` is this run taken to the end.
//!
//! The gradient is taken half a block at a time, last first (backpropagation written out by hand between the
//! halves): each half is run again from its saved input with autograd, its input a `Var` and a zero `Var` added at
//! each of its hooks, and `(output · grad_out).sum()` is differentiated, where `grad_out` is ∂metric/∂output from
//! the half after it. That gives ∂metric/∂hook for the half's hooks, and ∂metric/∂input, the `grad_out` of the
//! half before it.
use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var, D};

use super::{
    last_log_probs, measures, normalised_logit_diff, AttributionPatching, Baseline, Direction, Metric, PatchInput,
};
use crate::lens::gpt2::hooks::{ActivationCache, Hook, HookSet, Intervention, Op};
use crate::lens::gpt2::model::{Pass, Stepped};
use crate::lens::{LensError, Result, Transformer};

/// Attribution patching (see `AttributionPatching`) one piece per `step`, for a page that must keep every task
/// short. The pieces, in order:
/// 1. the source prompt's forward pass, half a block per step, caching the activations attribution needs;
/// 2. the last position's logits of the source run (one row of the unembedding, not the whole `[pos, vocab]`);
/// 3. the base prompt's forward pass, half a block per step, caching the same activations and keeping the pass
///    at the start of every half;
/// 4. the base run's last logits, and the baseline;
/// 5. the metric's gradient with respect to the final residual stream (the last position's);
/// 6. the backward pass, half a block per step, last first, with each half's products (source − base) ⊙
///    gradient.
///
/// GPT-2 small over 32 tokens: 12 layers make 24 halves, so 3 × 24 + 3 = 75 steps.
pub struct AttributionRun {
    input: PatchInput,
    direction: Direction,
    metric: Metric,
    n_layer: usize,
    attn_only: bool,
    /// Every target's hook in every layer, sorted.
    hooks: Vec<Hook>,
    /// Halves of blocks: two per block with an MLP, one per attention-only block (`Transformer::half_block`).
    halves: usize,
    /// Steps run so far.
    done: usize,
    /// The forward pass under way (the source's, then the base's).
    forward: Option<Stepped>,
    source: ActivationCache,
    /// The source run's logits at the last position `[1, 1, vocab]`.
    source_last: Option<Tensor>,
    base: ActivationCache,
    /// The base run's pass at the start of each half, in forward order.
    inputs: Vec<Pass>,
    /// The base run's final residual stream `[1, pos, d_model]`.
    base_resid: Option<Tensor>,
    /// The base run's logits at the last position `[1, 1, vocab]`.
    base_last: Option<Tensor>,
    clean_log_probs: Vec<f64>,
    baseline: Baseline,
    base_raw: f32,
    /// ∂metric/∂(the output of the next half to run backwards) `[1, pos, d_model]`.
    grad_out: Option<Tensor>,
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
        Ok(AttributionRun {
            input: input.clone(),
            direction,
            metric,
            n_layer,
            attn_only,
            hooks,
            halves: n_layer * if attn_only { 1 } else { 2 },
            done: 0,
            forward: Some(forward),
            source: ActivationCache::default(),
            source_last: None,
            base: ActivationCache::default(),
            inputs: Vec::new(),
            base_resid: None,
            base_last: None,
            clean_log_probs: Vec::new(),
            baseline: Baseline::default(),
            base_raw: 0.0,
            grad_out: None,
            products: HashMap::new(),
        })
    }

    /// The number of steps in all: each prompt's halves forward, the halves backward, and the three single steps
    /// (source logits, base logits, the gradient at the final residual stream).
    pub fn len(&self) -> usize {
        3 * self.halves + 3
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Runs the next piece; true once every piece has run (then call `finish`). `model` must be the one the run
    /// was made with.
    pub fn step(&mut self, model: &Transformer) -> Result<bool> {
        let h = self.halves;
        match self.done {
            k if k >= self.len() => return Ok(true),
            k if k < h => self.forward_half(model, false)?,
            k if k == h => self.source_logits(model)?,
            k if k <= 2 * h => self.forward_half(model, true)?,
            k if k == 2 * h + 1 => self.base_logits(model)?,
            k if k == 2 * h + 2 => self.final_gradient(model)?,
            // The halves backwards: the last (h - 1) first.
            k => self.backward_half(model, 3 * h + 2 - k)?,
        }
        self.done += 1;
        Ok(self.done == self.len())
    }

    /// The share of the work done, in [0, 1]: steps weighted by their rough cost (a half's backward runs it again
    /// and then differentiates it, about three forward halves).
    pub fn progress(&self, _model: &Transformer) -> f32 {
        let weight = |k: usize| if k >= 2 * self.halves + 3 { 3.0 } else { 1.0 };
        let done: f32 = (0..self.done.min(self.len())).map(weight).sum();
        let all: f32 = (0..self.len()).map(weight).sum();
        done / all
    }

    /// The estimates, once `step` has returned true.
    pub fn finish(self) -> Result<AttributionPatching> {
        if self.done < self.len() {
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

    /// The next half block of the forward pass under way, without autograd; the base run keeps its pass first.
    fn forward_half(&mut self, model: &Transformer, base: bool) -> Result<()> {
        let forward = self.forward.as_mut().ok_or_else(|| unfinished("forward pass"))?;
        let pass = forward.pass().ok_or_else(|| unfinished("forward pass"))?;
        if base {
            self.inputs.push(pass.clone());
        }
        // Never the step after the last block: that is the whole unembedding `[pos, vocab]`, of which only the last
        // position is needed (`last_logits`).
        if pass.layers_done() < model.cfg.n_layer {
            forward.step(model)?;
        }
        Ok(())
    }

    /// Ends the forward pass under way: its cache and its final residual stream `[1, pos, d_model]`.
    fn end_forward(&mut self) -> Result<(ActivationCache, Tensor)> {
        let mut forward = self.forward.take().ok_or_else(|| unfinished("forward pass"))?;
        let resid = forward.pass().ok_or_else(|| unfinished("forward pass"))?.resid().clone();
        Ok((std::mem::take(&mut forward.hooks.cache), resid))
    }

    /// The source run's last logits; then the base prompt is embedded.
    fn source_logits(&mut self, model: &Transformer) -> Result<()> {
        let (cache, resid) = self.end_forward()?;
        self.source = cache;
        self.source_last = Some(last_logits(model, &resid)?);
        let base = self.direction.base(&self.input);
        self.forward = Some(Stepped::new(model, base, HookSet::cache_only(self.hooks.clone()))?);
        Ok(())
    }

    /// The base run's last logits, and from both runs' the baseline (an error when the logit difference is the
    /// metric and the corruption does not change it).
    fn base_logits(&mut self, model: &Transformer) -> Result<()> {
        let (cache, resid) = self.end_forward()?;
        self.base = cache;
        let base_last = last_logits(model, &resid)?;
        self.base_resid = Some(resid);
        let source_last = self.source_last.as_ref().ok_or_else(|| unfinished("source run"))?;
        let (clean, corrupted) = match self.direction {
            Direction::Denoising => (source_last, &base_last),
            Direction::Noising => (&base_last, source_last),
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
        self.clean_log_probs = clean_lp;
        self.base_last = Some(base_last);
        Ok(())
    }

    /// ∂metric/∂(the base run's final residual stream), `[1, pos, d_model]`: non-zero at the last position only.
    /// Autograd takes the metric back to the last logits and through the final LayerNorm; between the two, the
    /// unembedding is run backwards as a plain product (`Transformer::unembed_backward`).
    fn final_gradient(&mut self, model: &Transformer) -> Result<()> {
        let last = self.base_last.as_ref().ok_or_else(|| unfinished("base run"))?;
        let logits = Var::from_tensor(&last.flatten_all()?)?; // [vocab]
        let value = metric_value(self.metric, logits.as_tensor(), &self.input, &self.clean_log_probs)?;
        let grad_logits = value.backward()?.get(logits.as_tensor()).cloned().ok_or_else(|| unfinished("gradient"))?;
        let grad_normed = model.unembed_backward(&grad_logits.unsqueeze(0)?)?; // [1, d_model]

        let resid = self.base_resid.as_ref().ok_or_else(|| unfinished("base run"))?;
        let (_, pos, d) = resid.dims3()?;
        let x = Var::from_tensor(&resid.get(0)?.narrow(0, pos - 1, 1)?)?; // [1, d_model]
        let objective = (model.final_norm(x.as_tensor())? * grad_normed)?.sum_all()?;
        let grad_x = objective.backward()?.get(x.as_tensor()).cloned().ok_or_else(|| unfinished("gradient"))?;
        // The earlier positions do not reach the metric except through the blocks: zero there.
        self.grad_out = Some(grad_x.reshape((1, 1, d))?.pad_with_zeros(1, pos - 1, 0)?);
        Ok(())
    }

    /// Half `i` (in forward order) backwards: its hooks' products, and the gradient at its input.
    fn backward_half(&mut self, model: &Transformer, i: usize) -> Result<()> {
        let pass = self.inputs.get(i).ok_or_else(|| unfinished("base run"))?;
        let grad_out = self.grad_out.take().ok_or_else(|| unfinished("gradient"))?;
        let (layer, mlp_half) = (pass.layers_done(), pass.mid_block());
        // The hooks this half runs: an attention-only block is one half, with every hook of its layer.
        let here = |h: &&Hook| h.layer() == Some(layer) && (self.attn_only || mlp_side(**h) == mlp_half);
        let mut set = HookSet::none();
        let mut vars = Vec::new();
        for &hook in self.hooks.iter().filter(here) {
            let base = self.base.get(hook).ok_or_else(|| LensError::UnknownHook(hook.to_string()))?;
            let var = Var::zeros(base.dims(), DType::F32, &Device::Cpu)?;
            set.interventions.push(Intervention::new(hook, Op::Add(var.as_tensor().clone())));
            vars.push((hook, var));
        }
        let input = Var::from_tensor(pass.resid())?;
        let mut pass = pass.with_resid(input.as_tensor().clone())?;
        // The model's differentiable softmax (its plain one has no backward).
        let mut grad_model = model.clone();
        grad_model.autograd = true;
        grad_model.half_block(&mut pass, &mut set)?;
        let grads = (pass.resid() * &grad_out)?.sum_all()?.backward()?;

        for (hook, var) in vars {
            let base = self.base.get(hook).ok_or_else(|| LensError::UnknownHook(hook.to_string()))?;
            let src = self.source.get(hook).ok_or_else(|| LensError::UnknownHook(hook.to_string()))?;
            let delta = (src - base)?;
            let product = match grads.get(var.as_tensor()) {
                Some(g) => (delta * g)?,
                None => delta.zeros_like()?,
            };
            self.products.insert(hook, product);
        }
        self.grad_out = Some(match grads.get(input.as_tensor()) {
            Some(g) => g.detach(),
            None => grad_out.zeros_like()?,
        });
        Ok(())
    }
}

/// Whether `hook` runs in a block's second half (`Transformer::half_block`: its MLP, then `hook_resid_post`).
fn mlp_side(hook: Hook) -> bool {
    use Hook::*;
    matches!(hook, ResidMid(_) | Ln2Scale(_) | Ln2Normalized(_) | MlpPre(_) | MlpPost(_) | MlpOut(_) | ResidPost(_))
}

/// The logits at the last position `[1, 1, vocab]` from a final residual stream `[1, pos, d_model]`: one row of
/// the unembedding instead of `pos`.
fn last_logits(model: &Transformer, resid: &Tensor) -> Result<Tensor> {
    let pos = resid.dim(1)?;
    model.unembed(&resid.narrow(1, pos - 1, 1)?)
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

fn unfinished(what: &str) -> LensError {
    LensError::Input(format!("attribution patching stepped out of order: the {what} is not ready"))
}
