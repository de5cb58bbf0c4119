//! Sampling text from a model, one token at a time, with a key/value cache so that each new token costs one
//! position of work instead of a forward pass over the whole context.
//!
//! Steering is an ordinary list of interventions (`Op::Add` at a residual hook, see `lens::methods::steering`) applied
//! at every generated position, and the random draws depend only on the seed: two generations from the same
//! prompt and seed differ only by what the interventions change.
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::hooks::{HookSet, Intervention};
use super::model::{KvCache, Pass, Transformer};
use crate::lens::rng::Rng;
use crate::lens::{LensError, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleSettings {
    /// Divides the logits before the softmax. 0 (or less) means greedy: always the most likely token.
    pub temperature: f32,
    /// Sample only among the k most likely tokens; 0 means no limit.
    pub top_k: usize,
    pub seed: u64,
}

impl Default for SampleSettings {
    fn default() -> Self {
        SampleSettings { temperature: 0.8, top_k: 0, seed: 1 }
    }
}

/// The generated tokens (prompt excluded) and, for each, how likely it was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    pub tokens: Vec<u32>,
    /// The model's own probability of each generated token (softmax of the logits, temperature 1, no top-k).
    pub probs: Vec<f32>,
    /// The probability it had under the sampling distribution (after temperature and top-k).
    pub sample_probs: Vec<f32>,
}

/// Softmax of a row of logits, in f64 for the sums.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}

/// The sampling distribution of `logits` under `temperature` and `top_k`: zero outside the k largest logits
/// (ties at the k-th value are all kept), softmax(logits / temperature) inside. Greedy (one-hot on the first
/// maximum) when the temperature is 0 or less.
pub fn sampling_distribution(logits: &[f32], temperature: f32, top_k: usize) -> Vec<f32> {
    let n = logits.len();
    if n == 0 {
        return Vec::new();
    }
    if temperature <= 0.0 || !temperature.is_finite() {
        let best = (0..n).fold(0, |b, i| if logits[i] > logits[b] { i } else { b });
        return (0..n).map(|i| if i == best { 1.0 } else { 0.0 }).collect();
    }
    let threshold = if top_k == 0 || top_k >= n {
        f32::NEG_INFINITY
    } else {
        let mut sorted = logits.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        sorted[top_k - 1]
    };
    let scaled: Vec<f32> =
        logits.iter().map(|&l| if l >= threshold { l / temperature } else { f32::NEG_INFINITY }).collect();
    softmax(&scaled)
}

/// Draws one index from a distribution with one uniform number from `rng` (always exactly one, so that two
/// runs with the same seed stay in step whatever they sample).
pub fn draw(probs: &[f32], rng: &mut Rng) -> usize {
    let u = rng.uniform() as f64;
    let mut acc = 0.0f64;
    let mut last = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            acc += p as f64;
            last = i;
            if u < acc {
                return i;
            }
        }
    }
    last // rounding left u just above the total: the last possible token
}

/// Generates `n_new` tokens after `prompt`. When the context fills up, the cache is rebuilt from the last
/// three quarters of the context, so generation can run past `n_positions` (the model then sees a sliding
/// window, as it did in training). A prompt longer than the context is cut to its last `n_positions` tokens.
/// `interventions` (e.g. a steering vector) apply at every position, prompt included; they must not be
/// restricted to a position.
pub fn generate(
    model: &Transformer,
    prompt: &[u32],
    n_new: usize,
    settings: &SampleSettings,
    interventions: &[Intervention],
) -> Result<Generated> {
    let mut g = Generator::new(model, prompt, settings, interventions)?;
    g.step(model, n_new)?;
    Ok(g.out)
}

/// A token whose whole pass (every block, then the unembedding) costs more multiply-adds than this is cut finer:
/// half a block per piece, and the unembedding a slice of the vocabulary per piece. The shipped models stay
/// under it (the Moby-Dick model: 0.8M) and keep their pieces; GPT-2 small (124M) goes over it.
const WHOLE_TOKEN_MACS: usize = 8_000_000;
/// About this many multiply-adds of the unembedding per piece in the finer cut (GPT-2 small: 5 pieces).
const UNEMBED_SLICE_MACS: usize = 8_000_000;

/// `generate` a few tokens at a time, so the browser can show the text as it grows and stop on request.
/// Running the same number of tokens in several `step`s gives exactly what one `generate` call gives.
pub struct Generator {
    settings: SampleSettings,
    interventions: Vec<Intervention>,
    context: Vec<u32>,
    rng: Rng,
    kv: KvCache,
    /// The tokens not yet run through the model: at first the whole prompt.
    pending: Vec<u32>,
    /// `pending` part-way through the model (a prefill taken a block per `advance`, or in the finer cut any
    /// token taken half a block per `advance`), with its hooks.
    prefill: Option<(Pass, HookSet)>,
    /// In the finer cut: the last position's final-normed vector `[1, d_model]` and its logits so far.
    unembedding: Option<(Tensor, Vec<f32>)>,
    /// Whether each token's pass is cut finer (see `WHOLE_TOKEN_MACS`), and the tokens unembedded per piece.
    fine: bool,
    unembed_cols: usize,
    pub out: Generated,
}

impl Generator {
    /// Checks the prompt and the interventions; generates nothing yet.
    pub fn new(
        model: &Transformer,
        prompt: &[u32],
        settings: &SampleSettings,
        interventions: &[Intervention],
    ) -> Result<Generator> {
        if prompt.is_empty() {
            return Err(LensError::Input("the prompt is empty: type at least one character".into()));
        }
        if interventions.iter().any(|iv| iv.pos.is_some()) {
            return Err(LensError::Input(
                "an intervention during generation applies at every position; remove its position".into(),
            ));
        }
        let context: Vec<u32> = prompt[prompt.len().saturating_sub(model.cfg.n_positions)..].to_vec();
        model.check_tokens(&context)?;
        let d = model.cfg.d_model();
        let token_macs = model.cfg.n_layer * 12 * d * d + d * model.cfg.vocab_size;
        Ok(Generator {
            settings: settings.clone(),
            interventions: interventions.to_vec(),
            pending: context.clone(),
            context,
            rng: Rng::new(settings.seed),
            kv: KvCache::new(),
            prefill: None,
            unembedding: None,
            fine: token_macs > WHOLE_TOKEN_MACS,
            unembed_cols: (UNEMBED_SLICE_MACS / d.max(1)).max(1),
            out: Generated { tokens: Vec::new(), probs: Vec::new(), sample_probs: Vec::new() },
        })
    }

    /// The finer cut (see `WHOLE_TOKEN_MACS`) on any model, `unembed_cols` tokens unembedded per piece, for
    /// tests: it gives the same tokens.
    pub fn cut_fine(mut self, unembed_cols: usize) -> Self {
        self.fine = true;
        self.unembed_cols = unembed_cols.max(1);
        self
    }

    /// Generates `n` more tokens.
    pub fn step(&mut self, model: &Transformer, n: usize) -> Result<()> {
        let mut made = 0;
        while made < n {
            if self.advance(model)? {
                made += 1;
            }
        }
        Ok(())
    }

    /// Does the next piece of work and says whether it produced a token. A piece is one whole token when the
    /// model sees one new position, or one block of a prefill (the prompt, or the context kept after a slide),
    /// which costs about `pos` times more: cut so, no piece grows with the context's length times the depth,
    /// and the browser's main thread can give the thread back between pieces. A model past `WHOLE_TOKEN_MACS`
    /// takes every token half a block per piece, then its unembedding a slice of the vocabulary per piece.
    pub fn advance(&mut self, model: &Transformer) -> Result<bool> {
        if let Some((normed, mut row)) = self.unembedding.take() {
            let vocab = model.cfg.vocab_size;
            let len = self.unembed_cols.min(vocab - row.len());
            row.extend(model.unembed_slice(&normed, row.len(), len)?.flatten_all()?.to_vec1::<f32>()?);
            if row.len() < vocab {
                self.unembedding = Some((normed, row));
                return Ok(false);
            }
            self.sample(&row);
            return Ok(true);
        }
        let (mut pass, mut hooks) = match self.prefill.take() {
            Some(p) => p,
            None => {
                let n_ctx = model.cfg.n_positions;
                if self.kv.len() + self.pending.len() > n_ctx {
                    // Slide: restart the cache from the most recent `keep` tokens.
                    let keep = (n_ctx * 3 / 4).max(1);
                    self.context.drain(..self.context.len() - keep);
                    self.kv = KvCache::new();
                    self.pending = self.context.clone();
                }
                let tokens = Tensor::from_slice(&self.pending, (1, self.pending.len()), &Device::Cpu)?;
                let mut hooks = HookSet::intervening(self.interventions.clone());
                (model.begin(&tokens, Some(&mut self.kv), &mut hooks)?, hooks)
            }
        };
        if self.fine {
            if !model.half_block_cached(&mut pass, Some(&mut self.kv), &mut hooks)? {
                self.prefill = Some((pass, hooks));
                return Ok(false);
            }
            let normed = model.end_normed(pass, Some(&mut self.kv), &mut hooks)?; // [1, d_model]
            self.unembedding = Some((normed, Vec::with_capacity(model.cfg.vocab_size)));
            return Ok(false);
        }
        if self.pending.len() > 1 {
            if !model.block(&mut pass, Some(&mut self.kv), &mut hooks)? {
                self.prefill = Some((pass, hooks));
                return Ok(false);
            }
        } else {
            while !model.block(&mut pass, Some(&mut self.kv), &mut hooks)? {}
        }
        let logits = model.end(pass, Some(&mut self.kv), &mut hooks)?; // [1, new, vocab]
        let last: Vec<f32> = logits.get(0)?.get(self.pending.len() - 1)?.to_vec1()?;
        self.sample(&last);
        Ok(true)
    }

    /// Draws the next token from the last position's logits and makes it the one the model reads next.
    fn sample(&mut self, last: &[f32]) {
        let dist = sampling_distribution(last, self.settings.temperature, self.settings.top_k);
        let t = draw(&dist, &mut self.rng);
        let p = softmax(last)[t];
        self.out.tokens.push(t as u32);
        self.out.probs.push(p);
        self.out.sample_probs.push(dist[t]);
        self.context.push(t as u32);
        self.pending = vec![t as u32];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_top_k_and_temperature_behave() {
        let logits = [1.0f32, 3.0, 2.0, -1.0];
        assert_eq!(sampling_distribution(&logits, 0.0, 0), vec![0.0, 1.0, 0.0, 0.0]);
        assert_eq!(sampling_distribution(&logits, 1.0, 1), vec![0.0, 1.0, 0.0, 0.0]);
        let two = sampling_distribution(&logits, 1.0, 2);
        assert_eq!((two[0], two[3]), (0.0, 0.0));
        let e = 1.0f32.exp();
        assert!((two[1] - e / (e + 1.0)).abs() < 1e-6, "{two:?}");
        // Temperature 2 halves the logits: the ratio of two probabilities is exp(diff / 2).
        let warm = sampling_distribution(&logits, 2.0, 0);
        assert!((warm[1] / warm[2] - 0.5f32.exp()).abs() < 1e-5);
        let full = sampling_distribution(&logits, 1.0, 0);
        assert!((full.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(full, softmax(&logits));
    }

    #[test]
    fn draws_follow_the_distribution_and_the_seed() {
        let probs = [0.1f32, 0.0, 0.6, 0.3];
        let mut rng = Rng::new(3);
        let mut counts = [0usize; 4];
        let n = 20_000;
        for _ in 0..n {
            counts[draw(&probs, &mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        for i in [0, 2, 3] {
            let f = counts[i] as f32 / n as f32;
            assert!((f - probs[i]).abs() < 0.015, "{i}: {f}");
        }
        let a: Vec<usize> = {
            let mut r = Rng::new(9);
            (0..50).map(|_| draw(&probs, &mut r)).collect()
        };
        let b: Vec<usize> = {
            let mut r = Rng::new(9);
            (0..50).map(|_| draw(&probs, &mut r)).collect()
        };
        assert_eq!(a, b);
    }
}
