//! The tuned lens (Belrose et al. 2023): the logit lens with a learned affine translator per layer.
//!
//! The logit lens reads layer l's residual stream `h` through the model's final LayerNorm and unembedding, as if
//! the remaining blocks did nothing. Early layers are not in the basis the unembedding expects, so it reads
//! noise there. A tuned lens first maps `h` to `h + h A_l + b_l` (`A_l` `[d_model, d_model]`, `b_l` `[d_model]`;
//! row vectors, as GPT-2's `Conv1D`), with `A_l` and `b_l` trained to minimise KL(final ‖ lens) over positions
//! of real text. Both start at zero, so an untrained tuned lens is exactly the logit lens. The last layer is the
//! model's own output and needs no translator: layers 0 (the embedding) to n_layer - 1 have one.
//!
//! Steps, each in slices for the browser:
//! 1. `TunedLensRecording`: the residual stream of every layer and the model's final log-probabilities over
//!    windows of a text, half a block per `step`; every fifth window (with `test_share` 0.2) is held out.
//! 2. `TunedLensTraining`: Adam on minibatches of the training positions, one minibatch (every layer at once)
//!    per `step`, minibatches drawn from a seed; `finish` gives the `TunedLens`.
//! 3. Read-out: `TunedLens::layer_score` (mean KL to the final distribution and top-1 agreement with the final
//!    prediction on the held-out positions) and `compare_lenses` beside the logit lens; `TunedLens::finish_run`
//!    decodes a `LensRun` into the same `LogitLens` grid the logit lens shows.
use candle_core::{Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use super::logit_lens::{decode_resid, LensRun, LogitLens};
use super::probe::windows;
use crate::lens::gpt2::text::CharVocab;
use crate::lens::gpt2::train::warmup_cosine;
use crate::lens::rng::Rng;
use crate::lens::{LensError, Result, Transformer};

/// Which positions a tuned lens learns from, and how it trains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TunedLensSettings {
    /// About this many positions, in windows of the model's context spread over the text.
    pub positions: usize,
    /// Share of the windows held out for the read-out (every 1 / test_share-th window, rounded).
    pub test_share: f32,
    /// Positions per minibatch (each step trains every layer's translator on the same positions).
    pub batch: usize,
    pub steps: usize,
    /// Adam's peak learning rate, after a linear warm-up of `steps / 20` steps, then a cosine decay to a tenth.
    pub lr: f64,
    /// Decoupled weight decay: pulls the translators back towards zero, i.e. towards the logit lens.
    pub weight_decay: f64,
    /// Seeds the order of the minibatches.
    pub seed: u64,
}

impl Default for TunedLensSettings {
    fn default() -> Self {
        TunedLensSettings {
            positions: 3072,
            test_share: 0.2,
            batch: 64,
            steps: 400,
            lr: 5e-3,
            weight_decay: 1e-2,
            seed: 1,
        }
    }
}

/// The recorded residual streams and final distributions, split into training and held-out positions.
#[derive(Clone, Debug)]
pub struct TunedLensData {
    /// Layers 0..n_layer (the ones with a translator) at the training positions: `[n_layer, n_train, d_model]`.
    train: Tensor,
    /// The model's log-probabilities at those positions: `[n_train, vocab]`.
    train_logp: Tensor,
    /// Every layer 0..=n_layer at the held-out positions: `[n_layer + 1, n_test, d_model]`.
    test: Tensor,
    test_logp: Tensor, // [n_test, vocab]
}

impl TunedLensData {
    /// (training positions, held-out positions).
    pub fn sizes(&self) -> (usize, usize) {
        (self.train_logp.dims()[0], self.test_logp.dims()[0])
    }
}

/// Records a `TunedLensData` half a block at a time: each window is a `LensRun`.
pub struct TunedLensRecording {
    ids: Vec<u32>,
    wins: Vec<(usize, usize)>,
    /// A window w is held out when `w % every == every / 2`.
    every: usize,
    done: usize,
    run: Option<LensRun>,
    /// Per window, the residual stream `[n_layer + 1, pos, d_model]` and the log-probabilities `[pos, vocab]`.
    train: Vec<(Tensor, Tensor)>,
    test: Vec<(Tensor, Tensor)>,
}

impl TunedLensRecording {
    /// Encodes the text (every character must be in the vocabulary) and chooses the windows.
    pub fn new(model: &Transformer, vocab: &CharVocab, text: &str, settings: &TunedLensSettings) -> Result<Self> {
        let ids = vocab.encode(text)?;
        let wins = windows(ids.len(), model.cfg.n_positions, settings.positions);
        let every = (1.0 / settings.test_share.clamp(0.05, 0.5)).round() as usize;
        if wins.len() < every {
            return Err(LensError::Input(format!(
                "the text is too short for a tuned lens: it needs at least {every} windows of {} characters",
                model.cfg.n_positions
            )));
        }
        Ok(TunedLensRecording { ids, wins, every, done: 0, run: None, train: Vec::new(), test: Vec::new() })
    }

    /// The share of the windows recorded, in [0, 1].
    pub fn progress(&self, model: &Transformer) -> f32 {
        let current = self.run.as_ref().map_or(0.0, |r| r.progress(model));
        (self.done as f32 + current) / self.wins.len() as f32
    }

    /// Runs half a block of the current window (or its unembedding); true once every window is recorded.
    pub fn step(&mut self, model: &Transformer) -> Result<bool> {
        if self.done == self.wins.len() {
            return Ok(true);
        }
        let mut run = match self.run.take() {
            Some(run) => run,
            None => {
                let (start, len) = self.wins[self.done];
                LensRun::new(model, &self.ids[start..start + len], 1)?
            }
        };
        if !run.step(model)? {
            self.run = Some(run);
            return Ok(false);
        }
        // The last layer through ln_f and the unembedding is the model's own output: the lens's target.
        let resid = run.finish_resid(model)?; // [n_layer + 1, pos, d_model]
        let last = resid.narrow(0, model.cfg.n_layer, 1)?.squeeze(0)?; // [pos, d_model]
        let logp = candle_nn::ops::log_softmax(&model.unembed(&last)?, D::Minus1)?; // [pos, vocab]
        let held_out = self.done % self.every == self.every / 2;
        let part = if held_out { &mut self.test } else { &mut self.train };
        part.push((resid, logp));
        self.done += 1;
        Ok(self.done == self.wins.len())
    }

    /// The recorded data, once `step` has returned true.
    pub fn finish(self, model: &Transformer) -> Result<TunedLensData> {
        if self.done < self.wins.len() {
            return Err(LensError::Input("the recording is not finished: step it to the end first".into()));
        }
        let n_layer = model.cfg.n_layer;
        let cat = |parts: &[(Tensor, Tensor)], layers: usize| -> Result<(Tensor, Tensor)> {
            let resid = parts.iter().map(|(r, _)| r.narrow(0, 0, layers));
            let resid = resid.collect::<std::result::Result<Vec<Tensor>, _>>()?;
            let logp: Vec<&Tensor> = parts.iter().map(|(_, l)| l).collect();
            Ok((Tensor::cat(&resid, 1)?.contiguous()?, Tensor::cat(&logp, 0)?))
        };
        let (train, train_logp) = cat(&self.train, n_layer)?;
        let (test, test_logp) = cat(&self.test, n_layer + 1)?;
        Ok(TunedLensData { train, train_logp, test, test_logp })
    }
}

/// Records the data in one go (`TunedLensRecording` to the end).
pub fn record_tuned_lens_data(
    model: &Transformer,
    vocab: &CharVocab,
    text: &str,
    settings: &TunedLensSettings,
) -> Result<TunedLensData> {
    let mut rec = TunedLensRecording::new(model, vocab, text, settings)?;
    while !rec.step(model)? {}
    rec.finish(model)
}

/// The translators of layers 0..n_layer: `h ↦ h + h A_l + b_l`.
#[derive(Clone, Debug)]
pub struct TunedLens {
    pub a: Tensor, // [n_layer, d_model, d_model]
    pub b: Tensor, // [n_layer, 1, d_model]
}

/// One lens at one layer, on the held-out positions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LensScore {
    /// Mean KL(final ‖ lens) in nats.
    pub kl: f32,
    /// Share of positions whose top-1 token is the model's final top-1 token.
    pub top1: f32,
}

/// The logit lens and the tuned lens side by side at one residual layer (0 = embedding).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LensComparison {
    pub layer: usize,
    pub logit: LensScore,
    pub tuned: LensScore,
}

impl TunedLens {
    /// Zero translators: exactly the logit lens.
    pub fn identity(model: &Transformer) -> Result<TunedLens> {
        let (n_layer, d_model) = (model.cfg.n_layer, model.cfg.d_model());
        Ok(TunedLens {
            a: Tensor::zeros((n_layer, d_model, d_model), candle_core::DType::F32, &Device::Cpu)?,
            b: Tensor::zeros((n_layer, 1, d_model), candle_core::DType::F32, &Device::Cpu)?,
        })
    }

    /// The number of translated layers (n_layer).
    pub fn n_translated(&self) -> usize {
        self.a.dims()[0]
    }

    /// Translates a residual stream `[layers, rows, d_model]` whose first n_layer layers have translators;
    /// a last layer beyond them (the model's output) is kept as it is.
    pub fn translate(&self, resid: &Tensor) -> Result<Tensor> {
        let n = self.n_translated();
        let layers = resid.dims3()?.0;
        if layers != n && layers != n + 1 {
            return Err(LensError::Input(format!("expected {n} or {} layers, got {layers}", n + 1)));
        }
        let h = resid.narrow(0, 0, n)?;
        let translated = translate(&h, &self.a, &self.b)?;
        if layers == n {
            return Ok(translated);
        }
        Ok(Tensor::cat(&[&translated, &resid.narrow(0, n, 1)?], 0)?)
    }

    /// Decodes a finished `LensRun` through the translators: the tuned lens's grid, cell for cell the same
    /// shape as the logit lens's (`LensRun::finish`).
    pub fn finish_run(&self, model: &Transformer, run: LensRun) -> Result<LogitLens> {
        let (tokens, k) = (run.tokens().to_vec(), run.k());
        let resid = run.finish_resid(model)?;
        decode_resid(model, &tokens, k, &self.translate(&resid)?)
    }

    /// The tuned lens's grid for one token sequence in one go.
    pub fn grid(&self, model: &Transformer, tokens: &[u32], k: usize) -> Result<LogitLens> {
        let mut run = LensRun::new(model, tokens, k)?;
        while !run.step(model)? {}
        self.finish_run(model, run)
    }

    /// Mean KL to the final distribution and top-1 agreement at residual `layer` (0..=n_layer) on the
    /// held-out positions.
    pub fn layer_score(&self, model: &Transformer, data: &TunedLensData, layer: usize) -> Result<LensScore> {
        let n = self.n_translated();
        if layer > n {
            return Err(LensError::Input(format!("there is no residual layer {layer}: the model has 0 to {n}")));
        }
        let h = data.test.narrow(0, layer, 1)?; // [1, n_test, d_model]
        let h = if layer < n { translate(&h, &self.a.narrow(0, layer, 1)?, &self.b.narrow(0, layer, 1)?)? } else { h };
        let logq = candle_nn::ops::log_softmax(&model.unembed(&h.squeeze(0)?)?, D::Minus1)?; // [n_test, vocab]
        let logp = &data.test_logp;
        let kl = (logp.exp()? * (logp - &logq)?)?.sum(D::Minus1)?.mean_all()?.to_scalar::<f32>()?;
        let same = logq.argmax(D::Minus1)?.eq(&logp.argmax(D::Minus1)?)?;
        let top1 = same.to_dtype(candle_core::DType::F32)?.mean_all()?.to_scalar::<f32>()?;
        Ok(LensScore { kl, top1 })
    }
}

/// `h + h A + b` for `h` `[layers, rows, d_model]`, `a` `[layers, d_model, d_model]`, `b` `[layers, 1, d_model]`.
fn translate(h: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok((h + h.matmul(a)?)?.broadcast_add(b)?)
}

/// Every residual layer (0..=n_layer) read by the logit lens and by `tuned`, on the held-out positions.
pub fn compare_lenses(model: &Transformer, data: &TunedLensData, tuned: &TunedLens) -> Result<Vec<LensComparison>> {
    let logit = TunedLens::identity(model)?;
    (0..=model.cfg.n_layer)
        .map(|layer| {
            Ok(LensComparison {
                layer,
                logit: logit.layer_score(model, data, layer)?,
                tuned: tuned.layer_score(model, data, layer)?,
            })
        })
        .collect()
}

/// Training of every translator at once, one minibatch per `step`.
pub struct TunedLensTraining {
    model: Transformer,
    data: TunedLensData,
    settings: TunedLensSettings,
    a: Var,
    b: Var,
    opt: AdamW,
    rng: Rng,
    /// This epoch's order of the training positions; the next minibatch starts at `cursor`.
    order: Vec<u32>,
    cursor: usize,
    done: usize,
    /// Mean KL per translated layer on the last minibatch.
    last_kl: Vec<f32>,
}

impl TunedLensTraining {
    /// Zero translators (the logit lens) and Adam's state. `model` and `data` are cheap to clone (their tensors
    /// are shared), so the training owns them and `step` needs no arguments.
    pub fn new(model: &Transformer, data: &TunedLensData, settings: &TunedLensSettings) -> Result<Self> {
        let n_train = data.sizes().0;
        if settings.batch == 0 || settings.steps == 0 || n_train == 0 {
            return Err(LensError::Input("a tuned lens needs training positions, a batch and steps (all >= 1)".into()));
        }
        let identity = TunedLens::identity(model)?;
        if data.train.dims()[0] != identity.n_translated() || data.train.dims()[2] != model.cfg.d_model() {
            return Err(LensError::Input("the recorded data is not from a model of this shape".into()));
        }
        let (a, b) = (Var::from_tensor(&identity.a)?, Var::from_tensor(&identity.b)?);
        let params =
            ParamsAdamW { lr: settings.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: settings.weight_decay };
        let opt = AdamW::new(vec![a.clone(), b.clone()], params)?;
        let mut model = model.clone();
        model.autograd = false;
        Ok(TunedLensTraining {
            model,
            data: data.clone(),
            settings: settings.clone(),
            a,
            b,
            opt,
            rng: Rng::new(settings.seed),
            order: Vec::new(),
            cursor: n_train,
            done: 0,
            last_kl: Vec::new(),
        })
    }

    /// The next minibatch's positions: a seeded shuffle of the training positions, epoch after epoch.
    fn next_batch(&mut self) -> Vec<u32> {
        let n_train = self.data.sizes().0;
        let batch = self.settings.batch.min(n_train);
        if self.cursor + batch > n_train {
            self.order = (0..n_train as u32).collect();
            for i in (1..n_train).rev() {
                self.order.swap(i, self.rng.range(0, i));
            }
            self.cursor = 0;
        }
        self.cursor += batch;
        self.order[self.cursor - batch..self.cursor].to_vec()
    }

    /// One Adam step on one minibatch for every translator; true once `settings.steps` steps are done.
    pub fn step(&mut self) -> Result<bool> {
        if self.done >= self.settings.steps {
            return Ok(true);
        }
        let rows = self.next_batch();
        let idx = Tensor::from_vec(rows, (self.settings.batch.min(self.data.sizes().0),), &Device::Cpu)?;
        let h = self.data.train.index_select(&idx, 1)?; // [n_layer, batch, d_model]
        let logp = self.data.train_logp.index_select(&idx, 0)?; // [batch, vocab]
        let p = logp.exp()?;
        let u = translate(&h, self.a.as_tensor(), self.b.as_tensor())?;
        // KL(p ‖ q) = Σ p log p − Σ p log q; only the cross-entropy term depends on the translators.
        let logq = candle_nn::ops::log_softmax(&self.model.unembed(&u)?, D::Minus1)?; // [n_layer, batch, vocab]
        let cross = logq.broadcast_mul(&p)?.sum(D::Minus1)?.neg()?.mean(1)?; // [n_layer]
        let entropy = (&p * &logp)?.sum(D::Minus1)?.neg()?.mean_all()?;
        let warmup = (self.settings.steps / 20).max(1);
        self.opt.set_learning_rate(warmup_cosine(self.settings.lr, self.done + 1, warmup, self.settings.steps));
        self.opt.backward_step(&cross.sum_all()?)?;
        self.last_kl = cross.broadcast_sub(&entropy)?.to_vec1()?;
        self.done += 1;
        Ok(self.done >= self.settings.steps)
    }

    /// The share of the steps done, in [0, 1].
    pub fn progress(&self) -> f32 {
        self.done as f32 / self.settings.steps as f32
    }

    /// Mean KL(final ‖ lens) per translated layer on the last minibatch (empty before the first step).
    pub fn last_kl(&self) -> &[f32] {
        &self.last_kl
    }

    /// A copy of the translators as they stand (all steps done, or fewer): Adam updates the variables in
    /// place, so a view would change under the caller.
    pub fn lens(&self) -> Result<TunedLens> {
        Ok(TunedLens { a: self.a.as_detached_tensor().copy()?, b: self.b.as_detached_tensor().copy()? })
    }

    /// The trained lens.
    pub fn finish(self) -> Result<TunedLens> {
        self.lens()
    }
}

/// Trains a tuned lens in one go (`TunedLensTraining` to the end).
pub fn train_tuned_lens(model: &Transformer, data: &TunedLensData, settings: &TunedLensSettings) -> Result<TunedLens> {
    let mut training = TunedLensTraining::new(model, data, settings)?;
    while !training.step()? {}
    training.finish()
}
