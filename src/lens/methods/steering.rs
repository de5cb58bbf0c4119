//! Activation steering: add a direction to the residual stream at one layer, at every position, while the
//! model generates (ActAdd, Turner et al. 2023). The direction is the difference between the mean activations
//! of two sets of contexts, or a trained probe's direction.
//!
//! A steering vector is applied through the ordinary intervention mechanism (`Op::Add` at its hook), so the
//! same code path serves patching, ablation and steering.
//!
//! `SteeringSweep` (for the 9.5 critiques) runs one vector at several coefficients and measures both sides of the
//! trade: how often the generated text shows the target, and how much that text costs the unsteered model (its
//! mean loss on it), which climbs once the steering breaks the text.
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::probe::LayerProbe;
use crate::lens::gpt2::generate::{Generator, SampleSettings};
use crate::lens::gpt2::hooks::{Hook, HookSet, Intervention, Op};
use crate::lens::gpt2::model::{per_position_loss, Pass, Stepped};
use crate::lens::gpt2::text::CharVocab;
use crate::lens::{LensError, Result, Transformer};

/// A direction in the residual stream at one hook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SteeringVector {
    pub hook: Hook,
    /// `[d_model]`.
    pub vector: Vec<f32>,
}

impl SteeringVector {
    pub fn norm(&self) -> f32 {
        self.vector.iter().map(|v| v * v).sum::<f32>().sqrt()
    }

    /// The intervention that adds `coefficient` times the vector at the hook, at every position.
    pub fn intervention(&self, coefficient: f32) -> Result<Intervention> {
        let v: Vec<f32> = self.vector.iter().map(|x| x * coefficient).collect();
        Ok(Intervention::new(self.hook, Op::Add(Tensor::from_vec(v, self.vector.len(), &Device::Cpu)?)))
    }
}

/// Checks that a hook is a residual-stream hook, where a `[d_model]` vector can be added.
fn check_resid_hook(model: &Transformer, hook: Hook) -> Result<()> {
    match hook {
        Hook::ResidPre(l) | Hook::ResidPost(l) | Hook::ResidMid(l) if l < model.cfg.n_layer => Ok(()),
        _ => Err(LensError::Input(format!(
            "steering adds a vector to the residual stream: choose blocks.{{l}}.hook_resid_pre or hook_resid_post with l < {}, not {hook}",
            model.cfg.n_layer
        ))),
    }
}

/// Adds the activations at `hook` of every position of one context to `sum`, and their number to `count`.
fn accumulate(model: &Transformer, context: &[u32], hook: Hook, sum: &mut [f64], count: &mut usize) -> Result<()> {
    let mut run = ContextRun::new(model, context, hook)?;
    while !run.block(model)? {}
    run.add_to(0, sum, count)
}

/// One context on its way to `hook`: the pass stops at the block that records it (the later blocks cannot change
/// it), and runs a block per call so a caller can give the thread back in between.
struct ContextRun {
    hook: Hook,
    pass: Pass,
    set: HookSet,
}

impl ContextRun {
    fn new(model: &Transformer, context: &[u32], hook: Hook) -> Result<Self> {
        // Longer contexts are cut to the model's context, keeping the end.
        let c = &context[context.len().saturating_sub(model.cfg.n_positions)..];
        model.check_tokens(c)?;
        let mut set = HookSet::cache_only(vec![hook]);
        let pass = model.begin(&Tensor::from_slice(c, (1, c.len()), &Device::Cpu)?, None, &mut set)?;
        Ok(ContextRun { hook, pass, set })
    }

    /// Runs one block; true once the hook has been recorded.
    fn block(&mut self, model: &Transformer) -> Result<bool> {
        if self.set.cache.get(self.hook).is_some() {
            return Ok(true);
        }
        let last = model.block(&mut self.pass, None, &mut self.set)?;
        match self.set.cache.get(self.hook) {
            Some(_) => Ok(true),
            None if last => Err(LensError::UnknownHook(self.hook.to_string())),
            None => Ok(false),
        }
    }

    /// Adds the recorded activations of every position from `skip` on to `sum`, and their number to `count`.
    fn add_to(&self, skip: usize, sum: &mut [f64], count: &mut usize) -> Result<()> {
        let acts: Vec<Vec<f32>> = self
            .set
            .cache
            .get(self.hook)
            .ok_or_else(|| LensError::UnknownHook(self.hook.to_string()))?
            .get(0)?
            .to_vec2()?;
        for row in acts.into_iter().skip(skip) {
            for (s, v) in sum.iter_mut().zip(row) {
                *s += v as f64;
            }
            *count += 1;
        }
        Ok(())
    }
}

/// The mean activation at `hook` over every position of every context.
pub fn mean_activation(model: &Transformer, contexts: &[Vec<u32>], hook: Hook) -> Result<Vec<f32>> {
    check_resid_hook(model, hook)?;
    let mut sum = vec![0.0f64; model.cfg.d_model()];
    let mut count = 0usize;
    for c in contexts {
        accumulate(model, c, hook, &mut sum, &mut count)?;
    }
    if count == 0 {
        return Err(LensError::Input("no context to average over".into()));
    }
    Ok(sum.iter().map(|s| (s / count as f64) as f32).collect())
}

/// mean(positive) - mean(negative) of two sets of activation vectors: the difference of means, on its own
/// so it can be checked by hand.
pub fn difference_of_means(positive: &[Vec<f32>], negative: &[Vec<f32>]) -> Result<Vec<f32>> {
    let mean = |set: &[Vec<f32>], name: &str| -> Result<Vec<f32>> {
        let first = set
            .first()
            .ok_or_else(|| LensError::Input(format!("the {name} set is empty: give it at least one example")))?;
        let d = first.len();
        if set.iter().any(|v| v.len() != d) {
            return Err(LensError::Input(format!("the {name} set mixes vectors of different sizes")));
        }
        Ok((0..d).map(|j| set.iter().map(|v| v[j]).sum::<f32>() / set.len() as f32).collect())
    };
    let (p, n) = (mean(positive, "positive")?, mean(negative, "negative")?);
    if p.len() != n.len() {
        return Err(LensError::Input("the two sets hold vectors of different sizes".into()));
    }
    Ok(p.iter().zip(&n).map(|(a, b)| a - b).collect())
}

/// The steering vector from two sets of contexts: the mean activation (over all their positions) of the
/// positive set minus that of the negative set, at `hook`.
pub fn steering_from_contexts(
    model: &Transformer,
    positive: &[Vec<u32>],
    negative: &[Vec<u32>],
    hook: Hook,
) -> Result<SteeringVector> {
    let mut job = ContextMeans::new(model, positive, negative, hook)?;
    while !job.step(model, usize::MAX)? {}
    job.finish()
}

/// `steering_from_contexts` a few contexts per `step`, so the browser can run it between frames whatever the
/// number of contexts; run to the end it gives exactly the same vector.
pub struct ContextMeans {
    hook: Hook,
    /// The positive and the negative set, without empty contexts.
    sets: [Vec<Vec<u32>>; 2],
    sums: [Vec<f64>; 2],
    counts: [usize; 2],
    /// Contexts done so far, over both sets (the positive set first).
    done: usize,
    /// The next context, part-way through the model.
    current: Option<ContextRun>,
    /// Positions left out at the start of every context (`skip_first`).
    skip: usize,
}

impl ContextMeans {
    /// Checks the hook and the sets; runs nothing yet.
    pub fn new(model: &Transformer, positive: &[Vec<u32>], negative: &[Vec<u32>], hook: Hook) -> Result<Self> {
        if positive.iter().all(Vec::is_empty) {
            return Err(LensError::Input("the first set of contexts is empty: type at least one line".into()));
        }
        if negative.iter().all(Vec::is_empty) {
            return Err(LensError::Input("the second set of contexts is empty: type at least one line".into()));
        }
        check_resid_hook(model, hook)?;
        let keep = |s: &[Vec<u32>]| -> Vec<Vec<u32>> { s.iter().filter(|c| !c.is_empty()).cloned().collect() };
        let d = model.cfg.d_model();
        Ok(ContextMeans {
            hook,
            sets: [keep(positive), keep(negative)],
            sums: [vec![0.0; d], vec![0.0; d]],
            counts: [0, 0],
            done: 0,
            current: None,
            skip: 0,
        })
    }

    /// Leaves the first `n` positions of every context out of the means. For an opened model, whose tokenizer
    /// puts the model's first token (`<|endoftext|>` for GPT-2) before every context: that position is the same
    /// in both sets, and its activations, in GPT-2 many times the size of any other's, would weigh on each
    /// mean by how many positions the set has rather than by what the contexts say.
    pub fn skip_first(mut self, n: usize) -> Self {
        self.skip = n;
        self
    }

    fn total(&self) -> usize {
        self.sets[0].len() + self.sets[1].len()
    }

    /// Runs up to `n` more contexts; true once every context has been run.
    pub fn step(&mut self, model: &Transformer, n: usize) -> Result<bool> {
        let target = self.done.saturating_add(n).min(self.total());
        while self.done < target {
            self.advance(model)?;
        }
        Ok(self.done == self.total())
    }

    /// Runs one block of the next context (a context of the whole model's length costs one pass; cut so, a piece
    /// stays small whatever was typed); true once every context has been run.
    pub fn advance(&mut self, model: &Transformer) -> Result<bool> {
        if self.done == self.total() {
            return Ok(true);
        }
        let (set, i) =
            if self.done < self.sets[0].len() { (0, self.done) } else { (1, self.done - self.sets[0].len()) };
        let mut run = match self.current.take() {
            Some(r) => r,
            None => ContextRun::new(model, &self.sets[set][i], self.hook)?,
        };
        if !run.block(model)? {
            self.current = Some(run);
            return Ok(false);
        }
        run.add_to(self.skip, &mut self.sums[set], &mut self.counts[set])?;
        self.done += 1;
        Ok(self.done == self.total())
    }

    /// The share of contexts done, in [0, 1].
    pub fn progress(&self) -> f32 {
        self.done as f32 / self.total().max(1) as f32
    }

    /// mean(positive) − mean(negative), once every context has been run.
    pub fn finish(self) -> Result<SteeringVector> {
        if self.done < self.total() {
            return Err(LensError::Input("the steering vector is not finished: run every context first".into()));
        }
        if let Some(k) = self.counts.iter().position(|&c| c == 0) {
            let set = ["first", "second"][k];
            return Err(LensError::Input(format!(
                "the {set} set has no token to average once the model's first token is left out: type longer contexts"
            )));
        }
        let mean = |k: usize| -> Vec<f32> { self.sums[k].iter().map(|s| (s / self.counts[k] as f64) as f32).collect() };
        Ok(SteeringVector { hook: self.hook, vector: difference_of_means(&[mean(0)], &[mean(1)])? })
    }
}

/// The steering vector along a trained probe's direction (un-standardised into activation space), scaled to
/// the gap between the two classes' mean projections, so coefficient 1 moves a typical negative position
/// to a typical positive one along the probe's direction.
pub fn steering_from_probe(probe: &LayerProbe) -> SteeringVector {
    let dir = probe.probe.direction();
    SteeringVector { hook: probe.hook, vector: dir.iter().map(|v| v * probe.class_gap).collect() }
}

/// One context per non-empty line of `text`, encoded with the character vocabulary; unknown characters are
/// an error that names them. `set` names the set in messages ("first", "second").
pub fn contexts_from_lines(vocab: &CharVocab, text: &str, set: &str) -> Result<Vec<Vec<u32>>> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Err(LensError::Input(format!("the {set} set of contexts is empty: type at least one line")));
    }
    lines.iter().map(|l| vocab.encode(l)).collect()
}

/// A built-in contrast for the lab: two sets of contexts, the layer and coefficient that work on the shipped
/// model, and the character class whose rate in generated text shows the effect.
#[derive(Clone, Copy, Debug)]
pub struct SteeringPair {
    pub name: &'static str,
    pub positive: &'static [&'static str],
    pub negative: &'static [&'static str],
    /// Residual layer in the lab's numbering (see `lens::methods::logit_lens::resid_hook`).
    pub layer: usize,
    pub coefficient: f32,
    /// What to count in generated text, and how it is described.
    pub measure: fn(char) -> bool,
    pub measure_name: &'static str,
}

impl SteeringPair {
    pub fn hook(&self) -> Hook {
        super::logit_lens::resid_hook(self.layer)
    }

    /// The encoded contexts of both sets.
    #[allow(clippy::type_complexity)]
    pub fn contexts(&self, vocab: &CharVocab) -> Result<(Vec<Vec<u32>>, Vec<Vec<u32>>)> {
        let enc = |s: &[&str]| s.iter().map(|l| vocab.encode(l)).collect::<Result<Vec<_>>>();
        Ok((enc(self.positive)?, enc(self.negative)?))
    }

    pub fn steering_vector(&self, model: &Transformer, vocab: &CharVocab) -> Result<SteeringVector> {
        let (p, n) = self.contexts(vocab)?;
        steering_from_contexts(model, &p, &n, self.hook())
    }

    /// The share of the characters of `text` that `measure` picks out.
    pub fn rate(&self, text: &str) -> f32 {
        target_rate(self.measure, text)
    }
}

/// The share of the characters of `text` that `measure` picks out (0 for no text).
pub fn target_rate(measure: fn(char) -> bool, text: &str) -> f32 {
    let n = text.chars().count().max(1);
    text.chars().filter(|&c| measure(c)).count() as f32 / n as f32
}

fn is_capital(c: char) -> bool {
    c.is_uppercase()
}
fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

/// The prompt the steering lab opens on (and the critiques lab's sweep generates from): a line of the book.
pub const DEFAULT_PROMPT: &str = "It was a clear steel-blue day. The firmaments of air and sea were hardly separable";

/// The lab's built-in pairs; the first is the default.
pub const PAIRS: &[SteeringPair] = &[
    SteeringPair {
        name: "SHOUTING minus quiet",
        positive: &[
            "CALL ME ISHMAEL. SOME YEARS AGO, NEVER MIND HOW LONG PRECISELY,",
            "THERE SHE BLOWS! THERE SHE BLOWS! A HUMP LIKE A SNOW-HILL! IT IS MOBY DICK!",
            "THE WHITE WHALE! THE WHITE WHALE! LOWER AWAY, MEN, AND PULL FOR YOUR LIVES!",
            "AND THE CAPTAIN STOOD UPON THE DECK AND CRIED OUT TO THE CREW.",
            "I SAY, THE SEA IS WIDE AND THE SHIP IS OLD, AND THE NIGHT IS DARK.",
        ],
        negative: &[
            "Call me Ishmael. Some years ago, never mind how long precisely,",
            "There she blows! there she blows! A hump like a snow-hill! It is Moby Dick!",
            "The white whale! the white whale! Lower away, men, and pull for your lives!",
            "And the captain stood upon the deck and cried out to the crew.",
            "I say, the sea is wide and the ship is old, and the night is dark.",
        ],
        // The difference of means is long (|v| ~ 18): a third of it already turns a fifth of the letters
        // into capitals while the text stays readable; 1 gives capitals only, and no words.
        layer: 1,
        coefficient: 0.3,
        measure: is_capital,
        measure_name: "capital letters",
    },
    SteeringPair {
        name: "numbers minus words",
        positive: &[
            "In 1851, 1820 and 1839 there were 42, 17 and 300 ships; 1, 2, 3, 40, 500.",
            "CHAPTER 101. 102. 103. In 1776 and 1690, 12 men and 25 boats, 60 barrels.",
            "Of 1000 whales, 250 were taken in 1828, 36 in 1829 and 7 in 1830.",
        ],
        negative: &[
            "In the year of the book there were many ships; one, two, three, forty.",
            "CHAPTER the first. The second. In the old days, a dozen men and boats.",
            "Of a thousand whales, a quarter were taken that year, a few the next.",
        ],
        layer: 2,
        coefficient: 1.0,
        measure: is_digit,
        measure_name: "digits",
    },
];

// ---------------------------------------------------------------- a sweep over the coefficient (9.5 critiques)

/// What a `SteeringSweep` runs: the coefficients in the order they are run (put 0 first to have the unsteered
/// text's figures), how many characters each generation makes, and the sampling, with one seed for every
/// coefficient so the texts differ only by the steering.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepSettings {
    pub coefficients: Vec<f32>,
    pub n_chars: usize,
    pub sample: SampleSettings,
}

impl Default for SweepSettings {
    /// Six coefficients up to the steering lab's largest (2), 120 characters each, sampled as the lab samples
    /// (temperature 0.8, seed 11): about a second of work in the browser.
    fn default() -> Self {
        SweepSettings {
            coefficients: vec![0.0, 0.3, 0.6, 1.0, 1.5, 2.0],
            n_chars: 120,
            sample: SampleSettings { temperature: 0.8, top_k: 0, seed: 11 },
        }
    }
}

/// One coefficient's generation and what it cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub coef: f32,
    /// The share of generated characters in the target class (`target_rate`).
    pub target_rate: f32,
    /// The unsteered model's mean loss on the generated characters, in nats per character.
    pub loss: f32,
    /// The generated text (prompt excluded).
    pub text: String,
}

/// Where the current coefficient is.
enum Phase {
    /// Generating with the steering, one piece per step.
    Generate(Box<Generator>),
    /// The unsteered model scoring the text (half a block per step), and the tokens it scores.
    Score(Stepped, Vec<u32>),
}

/// A coefficient sweep in small steps: for each coefficient, generate `n_chars` characters with the steering
/// (a `Generator::advance` per step), then run the *unsteered* model over the prompt and that text (half a block
/// per step) and take its mean loss on the generated part. Run to the end it gives what `steering_sweep` gives.
pub struct SteeringSweep {
    vector: SteeringVector,
    measure: fn(char) -> bool,
    vocab: CharVocab,
    prompt: Vec<u32>,
    settings: SweepSettings,
    /// The current coefficient's work; None once every coefficient is done.
    phase: Option<Phase>,
    /// Half blocks and the unembedding: the steps one scoring pass takes.
    score_steps: usize,
    /// Steps of the current scoring pass done so far.
    scored: usize,
    points: Vec<SweepPoint>,
}

impl SteeringSweep {
    /// Checks the vector, the prompt and the settings; starts the first coefficient's generation (nothing runs
    /// yet). `measure` picks out the target characters (a `SteeringPair`'s `measure`).
    pub fn new(
        model: &Transformer,
        vocab: &CharVocab,
        vector: &SteeringVector,
        measure: fn(char) -> bool,
        prompt: &str,
        settings: &SweepSettings,
    ) -> Result<Self> {
        check_resid_hook(model, vector.hook)?;
        if vector.vector.len() != model.cfg.d_model() {
            return Err(LensError::Input(format!(
                "the steering vector has {} numbers but the model's residual stream has {}",
                vector.vector.len(),
                model.cfg.d_model()
            )));
        }
        let Some(&first) = settings.coefficients.first() else {
            return Err(LensError::Input("the sweep has no coefficient: give at least one".into()));
        };
        if let Some(c) = settings.coefficients.iter().find(|c| !c.is_finite()) {
            return Err(LensError::Input(format!("every coefficient must be a number, got {c}")));
        }
        // The scoring pass sees the last n_positions tokens; each generated character needs one before it there.
        let n_ctx = model.cfg.n_positions;
        if settings.n_chars == 0 || settings.n_chars >= n_ctx {
            return Err(LensError::Input(format!(
                "generate between 1 and {} characters per coefficient (the model reads {n_ctx} at a time), not {}",
                n_ctx - 1,
                settings.n_chars
            )));
        }
        let prompt = vocab.encode(prompt)?;
        let mut sweep = SteeringSweep {
            vector: vector.clone(),
            measure,
            vocab: vocab.clone(),
            prompt,
            settings: settings.clone(),
            phase: None,
            score_steps: 2 * model.cfg.n_layer + 1,
            scored: 0,
            points: Vec::new(),
        };
        sweep.phase = Some(Phase::Generate(Box::new(sweep.generator(model, first)?)));
        Ok(sweep)
    }

    /// A generator of the prompt's continuation with the vector added `coef` times.
    fn generator(&self, model: &Transformer, coef: f32) -> Result<Generator> {
        Generator::new(model, &self.prompt, &self.settings.sample, &[self.vector.intervention(coef)?])
    }

    /// Does one piece of work: a generation piece (a token, or one block of a prefill) or half a block of the
    /// scoring pass. True once every coefficient is done.
    pub fn step(&mut self, model: &Transformer) -> Result<bool> {
        let n_chars = self.settings.n_chars;
        self.phase = match self.phase.take() {
            None => return Ok(true),
            Some(Phase::Generate(mut g)) => {
                g.advance(model)?;
                if g.out.tokens.len() < n_chars {
                    Some(Phase::Generate(g))
                } else {
                    // prompt + text, cut to the model's context: [<= n_positions]
                    let mut tokens = self.prompt.clone();
                    tokens.extend(&g.out.tokens);
                    let window = tokens.split_off(tokens.len().saturating_sub(model.cfg.n_positions));
                    self.scored = 0;
                    Some(Phase::Score(Stepped::new(model, &window, HookSet::none())?, window))
                }
            }
            Some(Phase::Score(mut pass, window)) => {
                self.scored += 1;
                if !pass.step(model)? {
                    Some(Phase::Score(pass, window))
                } else {
                    self.points.push(self.point(pass, &window)?);
                    match self.settings.coefficients.get(self.points.len()) {
                        Some(&coef) => Some(Phase::Generate(Box::new(self.generator(model, coef)?))),
                        None => None,
                    }
                }
            }
        };
        Ok(self.phase.is_none())
    }

    /// The current coefficient's point from its finished scoring pass over `window` (its last `n_chars` tokens
    /// are the generated text).
    fn point(&self, pass: Stepped, window: &[u32]) -> Result<SweepPoint> {
        let (logits, _) = pass.finish()?; // [1, window, vocab]
        let losses = per_position_loss(&logits, window)?; // [window - 1]: entry i predicts window[i + 1]
        let n = self.settings.n_chars;
        let loss = losses[losses.len() - n..].iter().map(|&l| l as f64).sum::<f64>() / n as f64;
        let text = self.vocab.decode(&window[window.len() - n..]);
        let coef = self.settings.coefficients[self.points.len()];
        Ok(SweepPoint { coef, target_rate: target_rate(self.measure, &text), loss: loss as f32, text })
    }

    /// The share of the work done, in [0, 1] (generated characters and scoring steps, coefficient by coefficient).
    pub fn progress(&self) -> f32 {
        let per = (self.settings.n_chars + self.score_steps) as f32;
        let within = match &self.phase {
            None => 0.0,
            Some(Phase::Generate(g)) => g.out.tokens.len() as f32,
            Some(Phase::Score(..)) => (self.settings.n_chars + self.scored) as f32,
        };
        (self.points.len() as f32 + within / per) / self.settings.coefficients.len() as f32
    }

    /// The points finished so far, in the order of the coefficients.
    pub fn points(&self) -> &[SweepPoint] {
        &self.points
    }

    pub fn is_finished(&self) -> bool {
        self.phase.is_none()
    }

    /// Every coefficient's point, once the sweep is finished.
    pub fn finish(self) -> Result<Vec<SweepPoint>> {
        if !self.is_finished() {
            return Err(LensError::Input("the sweep is not finished: step it until every coefficient is done".into()));
        }
        Ok(self.points)
    }
}

/// `SteeringSweep` run to the end.
pub fn steering_sweep(
    model: &Transformer,
    vocab: &CharVocab,
    vector: &SteeringVector,
    measure: fn(char) -> bool,
    prompt: &str,
    settings: &SweepSettings,
) -> Result<Vec<SweepPoint>> {
    let mut sweep = SteeringSweep::new(model, vocab, vector, measure, prompt, settings)?;
    while !sweep.step(model)? {}
    sweep.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_of_means_by_hand() {
        let pos = vec![vec![1.0, 2.0], vec![3.0, 4.0]]; // mean (2, 3)
        let neg = vec![vec![0.0, 1.0]];
        assert_eq!(difference_of_means(&pos, &neg).unwrap(), vec![2.0, 2.0]);
        let e = difference_of_means(&[], &neg).unwrap_err().to_string();
        assert!(e.contains("positive set is empty"), "{e}");
        assert!(difference_of_means(&pos, &[vec![1.0]]).is_err());
    }

    #[test]
    fn built_in_pairs_fit_a_moby_vocabulary() {
        // Every character of the pairs occurs in the book, so they encode with the shipped vocabulary.
        let book_like = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;!?-“”’";
        let vocab = CharVocab::from_text(book_like);
        for p in PAIRS {
            assert!(p.contexts(&vocab).is_ok(), "{}", p.name);
            assert_eq!(p.positive.len(), p.negative.len());
        }
        assert_eq!(PAIRS[0].rate("AbC!"), 0.5);
        assert_eq!(PAIRS[1].rate("a1b2"), 0.5);
    }
}
