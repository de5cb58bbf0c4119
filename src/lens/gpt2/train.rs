//! Training loops, shared by the native training command and (later) in-browser training.
use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use super::model::per_position_loss;
use super::{Gpt2Config, Transformer};
use crate::lens::methods::induction::{half_losses, head_scores, HeadScores, TaskSpec};
use crate::lens::rng::Rng;
use crate::lens::Result;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    pub seed: u64,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub warmup: usize,
    pub weight_decay: f64,
    pub log_every: usize,
    /// Loss weight of the unpredictable predictions (fresh random words) relative to the copied ones.
    /// 0 trains on copies only, which makes the induction phase change come early but leaves the model
    /// confidently wrong on fresh words; a small weight teaches it to spread its bets there too.
    /// With weight 1 (every prediction counts alike) the copy signal is swamped and heads form far later.
    #[serde(default)]
    pub other_weight: f32,
}

/// Next-token cross-entropy over a batch `[batch, pos]`: the mean over every prediction, or, with
/// `weights` `[batch, pos - 1]`, the weighted mean.
pub fn lm_loss(model: &Transformer, tokens: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
    let (b, p) = tokens.dims2()?;
    let logits = model.forward(tokens, &mut super::hooks::HookSet::none())?;
    let v = model.cfg.vocab_size;
    let pred = logits.narrow(1, 0, p - 1)?.reshape((b * (p - 1), v))?;
    let target = tokens.narrow(1, 1, p - 1)?.flatten_all()?;
    match weights {
        None => Ok(candle_nn::loss::cross_entropy(&pred, &target)?),
        Some(w) => {
            let logp = candle_nn::ops::log_softmax(&pred, candle_core::D::Minus1)?;
            let nll = logp.gather(&target.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?; // [b * (p - 1)]
            let w = w.flatten_all()?;
            Ok(((nll * &w)?.sum_all()? / w.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64)?)
        }
    }
}

/// The learning rate at `step` (1-based) of `steps`: a linear warm-up over `warmup` steps to `peak`, then a
/// cosine decay to a tenth of the peak at the last step.
pub fn warmup_cosine(peak: f64, step: usize, warmup: usize, steps: usize) -> f64 {
    if step <= warmup {
        peak * step as f64 / warmup as f64
    } else {
        let t = (step - warmup) as f64 / (steps - warmup).max(1) as f64;
        peak * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
    }
}

/// AdamW over every variable of a freshly initialised model (β = 0.9, 0.99, as is usual for small transformers).
fn adamw(vars: &[(String, Var)], lr: f64, weight_decay: f64) -> Result<AdamW> {
    let params = ParamsAdamW { lr, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay };
    Ok(AdamW::new(vars.iter().map(|(_, v)| v.clone()).collect(), params)?)
}

/// Trains a fresh model on the induction task. `on_log(step, loss)` is called every `log_every` steps
/// with the mean training loss (on the predictable tokens) since the last call; return false to stop early.
pub fn train_induction(
    cfg: Gpt2Config,
    tc: &TrainConfig,
    mut on_log: impl FnMut(usize, f32) -> bool,
) -> Result<Transformer> {
    let mut rng = Rng::new(tc.seed);
    let spec = TaskSpec::new(cfg.vocab_size, cfg.n_positions);
    let (mut model, vars) = Transformer::init(cfg, &mut rng)?;
    let mut opt = adamw(&vars, tc.lr, tc.weight_decay)?;
    let mut acc = 0.0f32;
    let mut n = 0;
    for step in 1..=tc.steps {
        opt.set_learning_rate(warmup_cosine(tc.lr, step, tc.warmup, tc.steps));
        let (mut data, mut weights) = (Vec::new(), Vec::new());
        for _ in 0..tc.batch {
            let (s, w) = spec.training_example(&mut rng);
            data.extend(s);
            weights.extend(w.into_iter().map(|w| if w > 0.0 { w } else { tc.other_weight }));
        }
        let tokens = Tensor::from_vec(data, (tc.batch, spec.seq_len), &Device::Cpu)?;
        let weights = Tensor::from_vec(weights, (tc.batch, spec.seq_len - 1), &Device::Cpu)?;
        let loss = lm_loss(&model, &tokens, Some(&weights))?;
        opt.backward_step(&loss)?;
        acc += loss.to_scalar::<f32>()?;
        n += 1;
        if step % tc.log_every == 0 || step == tc.steps {
            let mean = acc / n as f32;
            acc = 0.0;
            n = 0;
            if !mean.is_finite() {
                return Err(crate::lens::LensError::Input(format!("training diverged at step {step} (loss {mean})")));
            }
            if !on_log(step, mean) {
                break;
            }
        }
    }
    model.autograd = false;
    // Re-read the trained weights as plain tensors so the model no longer carries an autograd graph.
    let tensors = model.to_tensors()?.into_iter().collect();
    Transformer::from_tensors(model.cfg.clone(), tensors)
}

/// What the tests and the training report measure on `<bos> + half + half` sequences.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InductionMetrics {
    pub sequences: usize,
    pub repeat_lengths: Vec<usize>,
    pub loss_first_half: f32,
    pub loss_repeat_half: f32,
    /// `scores[layer][head]`, averaged over the sequences.
    pub scores: Vec<Vec<HeadScores>>,
}

impl InductionMetrics {
    /// (layer, head, score) of the head with the highest score picked by `f`, within `layer` if given.
    pub fn best(&self, layer: Option<usize>, f: impl Fn(&HeadScores) -> f32) -> (usize, usize, f32) {
        let mut best = (0, 0, f32::NEG_INFINITY);
        for (l, heads) in self.scores.iter().enumerate() {
            if layer.is_some_and(|x| x != l) {
                continue;
            }
            for (h, s) in heads.iter().enumerate() {
                if f(s) > best.2 {
                    best = (l, h, f(s));
                }
            }
        }
        best
    }
}

/// Runs `per_length` random repeated sequences for each repeat length, averaging losses and head scores.
pub fn evaluate_induction(
    model: &Transformer,
    lengths: &[usize],
    per_length: usize,
    seed: u64,
) -> Result<InductionMetrics> {
    let spec = TaskSpec::new(model.cfg.vocab_size, model.cfg.n_positions);
    let mut rng = Rng::new(seed);
    let (nl, nh) = (model.cfg.n_layer, model.cfg.n_head);
    let mut scores = vec![vec![HeadScores::default(); nh]; nl];
    let (mut first, mut repeat, mut count) = (0.0, 0.0, 0);
    for &len in lengths {
        for _ in 0..per_length {
            let tokens = spec.repeated_sequence(&mut rng, len);
            let (logits, cache) = model.run_with_cache(&tokens)?;
            let (a, b) = half_losses(&per_position_loss(&logits, &tokens)?, len);
            first += a;
            repeat += b;
            for (l, row) in scores.iter_mut().enumerate() {
                for (h, acc) in row.iter_mut().enumerate() {
                    let s = head_scores(&cache.pattern(l, h, 0)?, &tokens);
                    acc.previous_token += s.previous_token;
                    acc.induction += s.induction;
                    acc.duplicate_token += s.duplicate_token;
                }
            }
            count += 1;
        }
    }
    let c = count as f32;
    for s in scores.iter_mut().flatten() {
        s.previous_token /= c;
        s.induction /= c;
        s.duplicate_token /= c;
    }
    Ok(InductionMetrics {
        sequences: count,
        repeat_lengths: lengths.to_vec(),
        loss_first_half: first / c,
        loss_repeat_half: repeat / c,
        scores,
    })
}

/// Settings of a language-model training run on a token stream (the Moby-Dick model).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LmTrainConfig {
    pub seed: u64,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub warmup: usize,
    pub weight_decay: f64,
    pub log_every: usize,
    /// Every this many steps, measure the loss on the first `eval_chars` held-out characters.
    pub eval_every: usize,
    pub eval_chars: usize,
}

/// One point of a language model's training curve.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LmLogPoint {
    pub step: usize,
    /// Mean training loss since the previous point (nats per character).
    pub train_loss: f32,
    /// Held-out loss on a fixed subset, when measured at this step.
    pub held_out_loss: Option<f32>,
    pub seconds: f32,
}

/// Trains a fresh model on random windows of `train` (`n_positions` tokens each). `on_log` is called every
/// `log_every` steps; return false to stop early.
pub fn train_lm(
    cfg: Gpt2Config,
    tc: &LmTrainConfig,
    train: &[u32],
    held_out: &[Vec<u32>],
    mut on_log: impl FnMut(&LmLogPoint) -> bool,
) -> Result<Transformer> {
    let start = web_time_now();
    let mut rng = Rng::new(tc.seed);
    let n = cfg.n_positions;
    if train.len() <= n {
        return Err(crate::lens::LensError::Input(format!(
            "the training text has {} tokens, fewer than one window of {n}",
            train.len()
        )));
    }
    let (mut model, vars) = Transformer::init(cfg, &mut rng)?;
    // No weight decay on biases, LayerNorms and embeddings' positions would be the GPT-2 recipe; with a model
    // this small and AdamW's decoupled decay, one decay for all weights works as well and keeps this short.
    let mut opt = adamw(&vars, tc.lr, tc.weight_decay)?;
    let eval_set = subset(held_out, tc.eval_chars);
    let (mut acc, mut count) = (0.0f32, 0);
    for step in 1..=tc.steps {
        opt.set_learning_rate(warmup_cosine(tc.lr, step, tc.warmup, tc.steps));
        let mut data = Vec::with_capacity(tc.batch * n);
        for _ in 0..tc.batch {
            let s = rng.range(0, train.len() - n);
            data.extend_from_slice(&train[s..s + n]);
        }
        let tokens = Tensor::from_vec(data, (tc.batch, n), &Device::Cpu)?;
        let loss = lm_loss(&model, &tokens, None)?;
        opt.backward_step(&loss)?;
        acc += loss.to_scalar::<f32>()?;
        count += 1;
        if step % tc.log_every == 0 || step == tc.steps {
            let mean = acc / count as f32;
            (acc, count) = (0.0, 0);
            if !mean.is_finite() {
                return Err(crate::lens::LensError::Input(format!("training diverged at step {step} (loss {mean})")));
            }
            let held = if step % tc.eval_every == 0 || step == tc.steps {
                model.autograd = false;
                let l = held_out_loss(&model, &eval_set, 32)?;
                model.autograd = true;
                Some(l)
            } else {
                None
            };
            let point = LmLogPoint { step, train_loss: mean, held_out_loss: held, seconds: web_time_now() - start };
            if !on_log(&point) {
                break;
            }
        }
    }
    let tensors = model.to_tensors()?.into_iter().collect();
    Transformer::from_tensors(model.cfg.clone(), tensors)
}

/// Seconds since an arbitrary origin; training only runs natively, where `Instant` exists.
fn web_time_now() -> f32 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static T0: OnceLock<std::time::Instant> = OnceLock::new();
        T0.get_or_init(std::time::Instant::now).elapsed().as_secs_f32()
    }
    #[cfg(target_arch = "wasm32")]
    {
        0.0
    }
}

/// The first `chars` tokens of the held-out blocks (whole blocks, the last one cut).
fn subset(blocks: &[Vec<u32>], chars: usize) -> Vec<Vec<u32>> {
    let mut left = chars;
    let mut out = Vec::new();
    for b in blocks {
        if left == 0 {
            break;
        }
        let take = b.len().min(left);
        out.push(b[..take].to_vec());
        left -= take;
    }
    out
}

/// Windows of at most `n_ctx` tokens over a stream of `len`, overlapping by half, as `(start, first scored
/// position in the window)`: every position after the first window is scored in a window that gives it at
/// least `n_ctx / 2` tokens of context, and each position is scored exactly once.
pub fn scored_windows(len: usize, n_ctx: usize) -> Vec<(usize, usize)> {
    if len <= n_ctx {
        return if len == 0 { vec![] } else { vec![(0, 0)] };
    }
    let half = (n_ctx / 2).max(1);
    let mut out = vec![(0, 0)];
    let mut s = 0;
    while s + n_ctx < len {
        let next = (s + half).min(len - n_ctx);
        out.push((next, s + n_ctx - next));
        s = next;
    }
    out
}

/// Mean next-token loss (nats per token) over every prediction in `blocks`, each block read on its own with
/// windows of the model's context that overlap by half: every token after a block's first is predicted once,
/// with at least half a context of history (except near the start of a block). `batch` windows per forward.
pub fn held_out_loss(model: &Transformer, blocks: &[Vec<u32>], batch: usize) -> Result<f32> {
    let n = model.cfg.n_positions;
    // (window, first scored prediction inside the window) for every window of every block. A window's first
    // scored token is predicted one position before it.
    let mut windows: Vec<(&[u32], usize)> = Vec::new();
    for b in blocks {
        if b.len() < 2 {
            continue;
        }
        for (start, from) in scored_windows(b.len(), n) {
            windows.push((&b[start..(start + n).min(b.len())], from.saturating_sub(1)));
        }
    }
    let (mut total, mut count) = (0.0f64, 0usize);
    // Windows of equal length go through the model together.
    let mut i = 0;
    while i < windows.len() {
        let len = windows[i].0.len();
        let mut j = i;
        while j < windows.len() && j - i < batch.max(1) && windows[j].0.len() == len {
            j += 1;
        }
        let data: Vec<u32> = windows[i..j].iter().flat_map(|(w, _)| w.iter().copied()).collect();
        model.check_tokens(windows[i].0)?;
        let tokens = Tensor::from_vec(data, (j - i, len), &Device::Cpu)?;
        let logits = model.forward(&tokens, &mut super::hooks::HookSet::none())?;
        let logp = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1)?;
        let logp: Vec<Vec<Vec<f32>>> = logp.to_vec3()?;
        for (w, (window, from)) in windows[i..j].iter().enumerate() {
            for p in *from..len - 1 {
                total -= logp[w][p][window[p + 1] as usize] as f64;
                count += 1;
            }
        }
        i = j;
    }
    if count == 0 {
        return Err(crate::lens::LensError::Input("no held-out predictions to score".into()));
    }
    Ok((total / count as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::warmup_cosine;

    #[test]
    fn warmup_then_cosine_to_a_tenth() {
        let (peak, warmup, steps) = (1e-3, 100, 1100);
        assert!((warmup_cosine(peak, 1, warmup, steps) - 1e-5).abs() < 1e-15);
        assert!((warmup_cosine(peak, 50, warmup, steps) - 5e-4).abs() < 1e-15);
        assert!((warmup_cosine(peak, warmup, warmup, steps) - peak).abs() < 1e-15);
        // Halfway through the decay the cosine term is one half: 0.1 + 0.9 / 2 = 0.55 of the peak.
        assert!((warmup_cosine(peak, 600, warmup, steps) - 0.55e-3).abs() < 1e-12);
        assert!((warmup_cosine(peak, steps, warmup, steps) - 1e-4).abs() < 1e-15);
        // Monotone after the warm-up.
        let lrs: Vec<f64> = (warmup..=steps).map(|s| warmup_cosine(peak, s, warmup, steps)).collect();
        assert!(lrs.windows(2).all(|w| w[1] <= w[0]));
    }
}
