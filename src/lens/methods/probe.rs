//! Linear probes (Belinkov 2022): is a concept linearly decodable from the residual stream at a layer?
//!
//! Steps, as the chapter lists them: pick a concept; label every character position of a text with it;
//! record the residual stream at every layer (`lens::methods::logit_lens::resid_hook`: layer 0 is the embedding);
//! train a logistic-regression probe per layer on most of the positions; report its accuracy on the rest
//! against two yardsticks: the majority-class baseline and a control. The controls are the same probe trained
//! on shuffled labels (a probe that is only memorising stays at the baseline there) and, optionally, the same
//! probe on a randomly initialised model of the same shape (a concept that a random network already exposes,
//! such as the identity of the current character, says little about what training taught).
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::logit_lens::resid_hooks;
use crate::lens::gpt2::hooks::{Hook, HookSet};
use crate::lens::gpt2::text::CharVocab;
use crate::lens::rng::Rng;
use crate::lens::{Gpt2Config, LensError, Result, Transformer};

/// Concepts the lab offers, each computed from the text around a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BuiltinConcept {
    /// The next character is a space or a line break: the current word ends here.
    SpaceNext,
    /// The next character is a capital letter.
    CapitalNext,
    /// The next character is a vowel (a, e, i, o, u, either case).
    VowelNext,
    /// The position is inside a quotation (after “ and before ”; a paragraph break also ends it).
    InsideQuotes,
    /// The current character is a letter.
    InsideWord,
    /// The previous character is a line break: this character starts a line.
    LineStart,
}

impl BuiltinConcept {
    pub const ALL: [BuiltinConcept; 6] = [
        BuiltinConcept::SpaceNext,
        BuiltinConcept::CapitalNext,
        BuiltinConcept::VowelNext,
        BuiltinConcept::InsideQuotes,
        BuiltinConcept::InsideWord,
        BuiltinConcept::LineStart,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BuiltinConcept::SpaceNext => "space next",
            BuiltinConcept::CapitalNext => "capital next",
            BuiltinConcept::VowelNext => "vowel next",
            BuiltinConcept::InsideQuotes => "inside quotes",
            BuiltinConcept::InsideWord => "inside a word",
            BuiltinConcept::LineStart => "line start",
        }
    }

    /// A short stable key (`space-next`), for links and file names.
    pub fn key(self) -> &'static str {
        match self {
            BuiltinConcept::SpaceNext => "space-next",
            BuiltinConcept::CapitalNext => "capital-next",
            BuiltinConcept::VowelNext => "vowel-next",
            BuiltinConcept::InsideQuotes => "inside-quotes",
            BuiltinConcept::InsideWord => "inside-word",
            BuiltinConcept::LineStart => "line-start",
        }
    }

    /// Every concept with its key, as a link's choices.
    pub fn by_key() -> Vec<(&'static str, BuiltinConcept)> {
        BuiltinConcept::ALL.into_iter().map(|c| (c.key(), c)).collect()
    }

    /// The concept with this `key`.
    pub fn from_key(key: &str) -> Option<BuiltinConcept> {
        BuiltinConcept::ALL.into_iter().find(|c| c.key() == key)
    }

    pub fn description(self) -> &'static str {
        match self {
            BuiltinConcept::SpaceNext => "the next character is a space or a line break (the word ends here)",
            BuiltinConcept::CapitalNext => "the next character is a capital letter",
            BuiltinConcept::VowelNext => "the next character is a vowel",
            BuiltinConcept::InsideQuotes => "the position is inside a quotation, between “ and ”",
            BuiltinConcept::InsideWord => "the current character is a letter",
            BuiltinConcept::LineStart => "the previous character is a line break",
        }
    }

    /// Labels for every character of `chars`; None where the concept is undefined (no next character).
    pub fn labels(self, chars: &[char]) -> Vec<Option<bool>> {
        let next = |i: usize| chars.get(i + 1).copied();
        match self {
            BuiltinConcept::SpaceNext => (0..chars.len()).map(|i| next(i).map(|c| c == ' ' || c == '\n')).collect(),
            BuiltinConcept::CapitalNext => (0..chars.len()).map(|i| next(i).map(char::is_uppercase)).collect(),
            BuiltinConcept::VowelNext => (0..chars.len()).map(|i| next(i).map(|c| "aeiouAEIOU".contains(c))).collect(),
            BuiltinConcept::InsideWord => chars.iter().map(|c| Some(c.is_alphabetic())).collect(),
            BuiltinConcept::LineStart => (0..chars.len()).map(|i| Some(i > 0 && chars[i - 1] == '\n')).collect(),
            BuiltinConcept::InsideQuotes => {
                let mut inside = false;
                (0..chars.len())
                    .map(|i| {
                        match chars[i] {
                            '\u{201C}' => inside = true,
                            '\u{201D}' => inside = false,
                            '\n' if i > 0 && chars[i - 1] == '\n' => inside = false,
                            _ => {}
                        }
                        Some(inside)
                    })
                    .collect()
            }
        }
    }
}

/// What a probe looks for: a built-in concept, or the characters inside the matches of a regular expression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Concept {
    Builtin(BuiltinConcept),
    /// A position is labelled true when its character lies inside a match of the pattern (regex-lite syntax).
    Regex(String),
}

/// The largest compiled regular expression a concept may use, in bytes (regex-lite's own measure). Ordinary
/// patterns (`[A-Z][a-z]+`, `wh(ale|ich)`) take a few kilobytes.
pub const MAX_REGEX_BYTES: usize = 64 * 1024;

impl Concept {
    pub fn name(&self) -> String {
        match self {
            Concept::Builtin(b) => b.name().to_string(),
            Concept::Regex(p) => format!("regex /{p}/"),
        }
    }

    /// Labels for every character of `text`, with a clear error for a pattern that does not compile or that
    /// marks no character or every character (a probe then has nothing to tell apart).
    pub fn labels(&self, text: &str) -> Result<Vec<Option<bool>>> {
        match self {
            Concept::Builtin(b) => Ok(b.labels(&text.chars().collect::<Vec<_>>())),
            Concept::Regex(pattern) => {
                let re = compile(pattern)?;
                // Byte offsets of char starts, to turn match spans into character positions.
                let starts: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
                let mut labels = vec![Some(false); starts.len()];
                for m in re.find_iter(text) {
                    let first = starts.partition_point(|&b| b < m.start());
                    let end = starts.partition_point(|&b| b < m.end());
                    for l in &mut labels[first..end] {
                        *l = Some(true);
                    }
                }
                let positives = labels.iter().filter(|l| **l == Some(true)).count();
                if positives == 0 {
                    return Err(LensError::Input(format!(
                        "the regular expression /{pattern}/ matches no character of the text"
                    )));
                }
                if positives == labels.len() {
                    return Err(LensError::Input(format!(
                        "the regular expression /{pattern}/ matches every character of the text, so there is nothing to tell apart"
                    )));
                }
                Ok(labels)
            }
        }
    }
}

/// `pattern` compiled, or a message a student can act on. The compiled size bounds the matching time
/// (regex-lite's search costs pattern size x text length), so a counted repetition such as `(a|b){50}{50}` is
/// refused at once instead of freezing the page for seconds.
fn compile(pattern: &str) -> Result<regex_lite::Regex> {
    if pattern.is_empty() {
        return Err(LensError::Input("the regular expression is empty".into()));
    }
    regex_lite::RegexBuilder::new(pattern).size_limit(MAX_REGEX_BYTES).build().map_err(|e| {
        let e = e.to_string();
        if e.contains("size limit") || e.contains("exceeds") {
            LensError::Input(format!(
                "the regular expression /{pattern}/ is too costly to run over the text; use fewer or smaller repetitions"
            ))
        } else {
            LensError::Input(format!("the regular expression /{pattern}/ does not compile: {e}"))
        }
    })
}

/// A concept over the tokens of any tokenizer (a model opened in the browser): a position is labelled true
/// when the text of its token, or of the token after it, contains a match of `pattern`. On a character-level
/// model `^\s` on the next token is the built-in "space next".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenConcept {
    pub pattern: String,
    /// Read the next token's text (a guess about what follows) rather than the position's own.
    pub next: bool,
}

impl TokenConcept {
    pub fn name(&self) -> String {
        let whose = if self.next { "the next token" } else { "the token" };
        format!("regex /{}/ on {whose}", self.pattern)
    }

    /// A label per token, `pieces[i]` being token i's text; with `next`, the last token has none (nothing
    /// follows it). Refuses a pattern that does not compile or that labels every token alike.
    pub fn labels(&self, pieces: &[impl AsRef<str>]) -> Result<Vec<Option<bool>>> {
        let re = compile(&self.pattern)?;
        let hit: Vec<bool> = pieces.iter().map(|p| re.is_match(p.as_ref())).collect();
        let labels: Vec<Option<bool>> = if self.next {
            (0..hit.len()).map(|i| hit.get(i + 1).copied()).collect()
        } else {
            hit.into_iter().map(Some).collect()
        };
        let labelled = labels.iter().flatten().count();
        let positives = labels.iter().filter(|l| **l == Some(true)).count();
        if positives == 0 || positives == labelled {
            let how = if positives == 0 { "no token" } else { "every token" };
            return Err(LensError::Input(format!(
                "{} matches {how} of the text, so there is nothing to tell apart",
                self.name()
            )));
        }
        Ok(labels)
    }
}

/// A trained logistic-regression probe: `p(concept) = sigmoid(w . (x - mean) / std + b)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogReg {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Weights on the standardised features.
    pub w: Vec<f32>,
    pub b: f32,
}

/// The loops probe training spends its time in (the gradient pass over every row, and the power iteration's dot
/// products and `g += r x`) live in `glassbox_kernels`, which the browser build compiles at opt-level 2 while this
/// crate is at "z" for size (see the root Cargo.toml); here they ran 7 times slower.
use glassbox_kernels::{axpy, dot, logistic_gradient, standardise};

/// Settings of the probe's optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitSettings {
    /// L2 penalty on the standardised weights (the bias is not penalised).
    pub l2: f32,
    pub iterations: usize,
}

impl Default for FitSettings {
    fn default() -> Self {
        FitSettings { l2: 1e-3, iterations: 120 }
    }
}

impl LogReg {
    /// Fits a probe on rows `x` (`n` rows of `d` features, row-major) with labels `y`: features standardised,
    /// then Nesterov-accelerated gradient descent on the mean cross-entropy plus `l2/2 |w|^2`, with the step
    /// 1/L from the loss's curvature bound L = max eigenvalue of Z^T Z / n / 4 + l2 (power iteration), and a
    /// momentum restart whenever the gradient turns against the last step.
    pub fn fit(x: &[f32], d: usize, y: &[bool], settings: FitSettings) -> Result<LogReg> {
        let mut f = LogRegFit::new(x, d, y, settings)?;
        f.run(settings.iterations);
        Ok(f.probe())
    }

    /// The probe's logit for one activation vector.
    pub fn logit(&self, x: &[f32]) -> f32 {
        let mut s = self.b;
        for (j, w) in self.w.iter().enumerate() {
            s += w * (x[j] - self.mean[j]) / self.std[j];
        }
        s
    }

    pub fn predict(&self, x: &[f32]) -> bool {
        self.logit(x) > 0.0
    }

    /// Share of rows classified correctly.
    pub fn accuracy(&self, x: &[f32], y: &[bool]) -> f32 {
        let d = self.w.len();
        if y.is_empty() {
            return 0.0;
        }
        let hits = x.chunks_exact(d).zip(y).filter(|(row, &t)| self.predict(row) == t).count();
        hits as f32 / y.len() as f32
    }

    /// The probe's direction in the raw activation space (un-standardised: `w_j / std_j`), unit length.
    pub fn direction(&self) -> Vec<f32> {
        let raw: Vec<f32> = self.w.iter().zip(&self.std).map(|(w, s)| w / s).collect();
        let norm = dot(&raw, &raw).sqrt().max(1e-12);
        raw.iter().map(|v| v / norm).collect()
    }
}

/// A probe being fitted, one slice of iterations at a time, so the browser can train between frames.
/// `LogReg::fit` is `new`, `run(settings.iterations)`, `probe`; running the iterations in several calls gives
/// exactly the same probe.
pub struct LogRegFit {
    mean: Vec<f32>,
    std: Vec<f32>,
    /// Standardised features, `n x d`.
    z: Vec<f32>,
    t: Vec<f32>,
    step: f32,
    l2: f32,
    w: Vec<f32>,
    b: f32,
    w_prev: Vec<f32>,
    b_prev: f32,
    k: f32,
    grad: Vec<f32>,
    done: usize,
}

impl LogRegFit {
    /// Standardises the features and bounds the step size (about the cost of 14 iterations).
    pub fn new(x: &[f32], d: usize, y: &[bool], settings: FitSettings) -> Result<LogRegFit> {
        let n = y.len();
        if d == 0 || n == 0 || x.len() != n * d {
            return Err(LensError::Input(format!(
                "a probe needs n x d features: got {} numbers for {n} labels and d = {d}",
                x.len()
            )));
        }
        // Standardised features: `glassbox_kernels` for the same reason as the training loop (see `dot` above).
        let (mean, std, z) = standardise(x, d);
        let t: Vec<f32> = y.iter().map(|&b| b as u8 as f32).collect();

        // Largest eigenvalue of Z^T Z / n by power iteration (a few steps suffice for a step-size bound).
        let mut v = vec![1.0f32 / (d as f32).sqrt(); d];
        let mut lambda = 1.0f32;
        for _ in 0..12 {
            let mut u = vec![0.0f32; d];
            for row in z.chunks_exact(d) {
                let s = dot(row, &v);
                axpy(&mut u, row, s);
            }
            let norm = dot(&u, &u).sqrt() / n as f32;
            if norm <= 0.0 {
                break;
            }
            lambda = norm;
            let inv = 1.0 / dot(&u, &u).sqrt();
            v = u.iter().map(|x| x * inv).collect();
        }
        // The bias column is orthogonal to the centred features, with eigenvalue 1. Power iteration can
        // underestimate; 1.1x leaves room.
        let lip = 0.25 * 1.1 * lambda.max(1.0) + settings.l2;
        let step = 1.0 / lip;

        // Start the bias at the log-odds of the base rate, the best constant predictor.
        let rate = (t.iter().sum::<f32>() / n as f32).clamp(1e-4, 1.0 - 1e-4);
        let (w, b) = (vec![0.0f32; d], (rate / (1.0 - rate)).ln());
        Ok(LogRegFit {
            mean,
            std,
            z,
            t,
            step,
            l2: settings.l2,
            w_prev: w.clone(),
            b_prev: b,
            w,
            b,
            k: 1.0,
            grad: vec![0.0f32; d],
            done: 0,
        })
    }

    /// Iterations run so far.
    pub fn iterations(&self) -> usize {
        self.done
    }

    /// Runs `iterations` more steps of Nesterov-accelerated gradient descent.
    pub fn run(&mut self, iterations: usize) {
        let n = self.t.len();
        for _ in 0..iterations {
            // Look-ahead point of Nesterov's method.
            let mom = (self.k - 1.0) / (self.k + 2.0);
            let wy: Vec<f32> = self.w.iter().zip(&self.w_prev).map(|(a, p)| a + mom * (a - p)).collect();
            let by = self.b + mom * (self.b - self.b_prev);
            self.grad.iter_mut().for_each(|g| *g = 0.0);
            let mut gb = logistic_gradient(&self.z, &self.t, &wy, by, &mut self.grad);
            let inv_n = 1.0 / n as f32;
            let l2 = self.l2;
            self.grad.iter_mut().zip(&wy).for_each(|(g, wj)| *g = *g * inv_n + l2 * wj);
            gb *= inv_n;
            // Restart the momentum when the gradient points against the last step (O'Donoghue and Candes
            // 2015, gradient scheme): it needs no loss evaluation, so no logarithms in the loop.
            let against =
                self.grad.iter().zip(self.w.iter().zip(&self.w_prev)).map(|(g, (a, p))| g * (a - p)).sum::<f32>()
                    + gb * (self.b - self.b_prev);
            self.w_prev = std::mem::take(&mut self.w);
            self.b_prev = self.b;
            self.w = wy.iter().zip(&self.grad).map(|(wj, g)| wj - self.step * g).collect();
            self.b = by - self.step * gb;
            self.k = if against > 0.0 { 1.0 } else { self.k + 1.0 };
            self.done += 1;
        }
    }

    /// The probe as it stands after the iterations run so far.
    pub fn probe(&self) -> LogReg {
        LogReg { mean: self.mean.clone(), std: self.std.clone(), w: self.w.clone(), b: self.b }
    }
}

/// Which positions and controls a probing run uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeSettings {
    /// At most this many labelled positions, taken from the start of the text in windows of the model's context.
    pub positions: usize,
    /// Share of the windows held out for testing (every 1 / test_share-th window, rounded).
    pub test_share: f32,
    pub fit: FitSettings,
    /// Also train each layer's probe on shuffled labels.
    pub shuffled_control: bool,
    /// Also train each layer's probe on a randomly initialised model of the same shape (one more forward pass).
    pub random_model_control: bool,
    /// Seeds the label shuffle and the random model.
    pub seed: u64,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            positions: 5000,
            test_share: 0.2,
            fit: FitSettings::default(),
            shuffled_control: true,
            random_model_control: false,
            seed: 1,
        }
    }
}

/// One layer's probe and its scores on the held-out positions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerProbe {
    /// 0 = embedding, l = after block l - 1 (see `lens::methods::logit_lens::resid_hook`).
    pub layer: usize,
    pub hook: Hook,
    pub probe: LogReg,
    pub train_accuracy: f32,
    pub test_accuracy: f32,
    /// The same probe trained and tested on shuffled labels.
    pub shuffled_accuracy: Option<f32>,
    /// The same probe on a randomly initialised model of the same shape, with the true labels.
    pub random_model_accuracy: Option<f32>,
    /// Mean of the probe's direction . activation over positive minus negative training positions: how far
    /// apart the two classes sit along the direction, in activation units (used to scale a steering vector).
    pub class_gap: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub concept: String,
    pub n_train: usize,
    pub n_test: usize,
    /// Share of true labels among all used positions.
    pub positive_rate: f32,
    /// Accuracy of always answering the training set's majority class, on the test positions.
    pub baseline: f32,
    pub layers: Vec<LayerProbe>,
}

impl ProbeReport {
    /// The layer whose probe scores best on the test positions (the first of equals).
    pub fn best_layer(&self) -> &LayerProbe {
        self.layers.iter().fold(&self.layers[0], |best, l| if l.test_accuracy > best.test_accuracy { l } else { best })
    }
}

/// Residual-stream activations of every layer at the chosen positions: `acts[layer]` is `rows x d_model`.
pub struct Activations {
    pub acts: Vec<Vec<f32>>,
    pub d_model: usize,
}

/// Windows of the model's context over `ids`, non-overlapping and spread evenly over the whole text, enough to
/// cover about `max_positions` positions (all of them when the text is shorter). Spreading them keeps rare
/// concepts (quotations, say) from missing just because the start of the text has none.
pub(crate) fn windows(ids_len: usize, n_ctx: usize, max_positions: usize) -> Vec<(usize, usize)> {
    if ids_len <= n_ctx {
        return vec![(0, ids_len)];
    }
    let available = ids_len / n_ctx;
    let wanted = max_positions.div_ceil(n_ctx).clamp(1, available);
    (0..wanted).map(|i| (i * available / wanted * n_ctx, n_ctx)).collect()
}

/// Runs the windows through the model (all at once when they share a length) and keeps each residual layer.
pub fn record_resid(model: &Transformer, ids: &[u32], wins: &[(usize, usize)]) -> Result<Activations> {
    let hooks = resid_hooks(model.cfg.n_layer);
    let d = model.cfg.d_model();
    let mut acts = vec![Vec::new(); hooks.len()];
    let mut i = 0;
    while i < wins.len() {
        let len = wins[i].1;
        let mut j = i;
        while j < wins.len() && wins[j].1 == len {
            j += 1;
        }
        let data: Vec<u32> = wins[i..j].iter().flat_map(|&(s, l)| ids[s..s + l].iter().copied()).collect();
        model.check_tokens(&data[..len])?;
        let tokens = Tensor::from_vec(data, (j - i, len), &Device::Cpu)?;
        let mut set = HookSet::cache_only(hooks.clone());
        model.forward(&tokens, &mut set)?;
        for (l, h) in hooks.iter().enumerate() {
            let t = set.cache.get(*h).ok_or_else(|| LensError::UnknownHook(h.to_string()))?;
            acts[l].extend(t.flatten_all()?.to_vec1::<f32>()?);
        }
        i = j;
    }
    Ok(Activations { acts, d_model: d })
}

/// Keeps the rows (positions) listed in `rows` of an `n x d` matrix.
fn take_rows(x: &[f32], d: usize, rows: &[usize]) -> Vec<f32> {
    rows.iter().flat_map(|&r| x[r * d..(r + 1) * d].iter().copied()).collect()
}

/// A text's residual-stream activations, recorded once so that probing several concepts on the same text
/// costs only the probes' training (the lab records when the text changes, and probes when the concept does).
pub struct ProbeData {
    text: String,
    /// How many tokens the text is (as many as its characters on a character-level model): one label each.
    len: usize,
    wins: Vec<(usize, usize)>,
    acts: Activations,
    /// The same windows through a randomly initialised model of the same shape, for the control.
    random_acts: Option<Activations>,
}

impl ProbeData {
    /// The text the activations were recorded on.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How many positions were recorded.
    pub fn positions(&self) -> usize {
        self.wins.iter().map(|w| w.1).sum()
    }
}

/// Records the residual stream of every layer over windows of `text` spread across it, about
/// `settings.positions` positions in all (every character must be in the vocabulary: see
/// `CharVocab::unknown_chars`). With `settings.random_model_control`, also records a random model's.
pub fn record_probe_data(
    model: &Transformer,
    vocab: &CharVocab,
    text: &str,
    settings: &ProbeSettings,
) -> Result<ProbeData> {
    let ids = vocab.encode(text)?;
    let wins = windows(ids.len(), model.cfg.n_positions, settings.positions);
    let acts = record_resid(model, &ids, &wins)?;
    let random_acts = if settings.random_model_control {
        let mut rng = Rng::new(settings.seed);
        let (mut random, _) = Transformer::init(model.cfg.clone(), &mut rng)?;
        random.autograd = false;
        Some(record_resid(&random, &ids, &wins)?)
    } else {
        None
    };
    Ok(ProbeData { text: text.to_string(), len: ids.len(), wins, acts, random_acts })
}

/// Trains and scores a probe per residual layer for `concept` on `text`: `record_probe_data`, then
/// `probe_recorded`.
pub fn probe_layers(
    model: &Transformer,
    vocab: &CharVocab,
    text: &str,
    concept: &Concept,
    settings: &ProbeSettings,
) -> Result<ProbeReport> {
    probe_recorded(&record_probe_data(model, vocab, text, settings)?, concept, settings)
}

/// Trains and scores a probe per residual layer for `concept` on recorded activations. The random-model
/// control runs only if `data` was recorded with it.
pub fn probe_recorded(data: &ProbeData, concept: &Concept, settings: &ProbeSettings) -> Result<ProbeReport> {
    let layers: Vec<usize> = (0..data.acts.acts.len()).collect();
    let mut job = ProbeJob::new(data, concept, settings, &layers)?;
    while !job.step(data, usize::MAX)? {}
    Ok(job.report())
}

/// `record_probe_data` a few windows at a time, so the browser can record between frames (without the
/// random-model control).
pub struct ProbeRecording {
    text: String,
    ids: Vec<u32>,
    wins: Vec<(usize, usize)>,
    done: usize,
    acts: Activations,
}

/// The size of each of a model's activations that `ProbeRecording::from_ids` needs to know: residual layers
/// (`n_layer + 1`) and `d_model`.
#[derive(Clone, Copy, Debug)]
pub struct ResidShape {
    pub layers: usize,
    pub d_model: usize,
}

impl ProbeRecording {
    /// Encodes the text (every character must be in the vocabulary) and chooses the windows.
    pub fn new(model: &Transformer, vocab: &CharVocab, text: &str, settings: &ProbeSettings) -> Result<ProbeRecording> {
        let ids = vocab.encode(text)?;
        let shape = ResidShape { layers: model.cfg.n_layer + 1, d_model: model.cfg.d_model() };
        ProbeRecording::from_ids(text.to_string(), ids, shape, model.cfg.n_positions, settings)
    }

    /// A recording of `ids` (`text` as some tokenizer cut it) in windows of `window` tokens, for a model that is
    /// read elsewhere a window at a time (`next_window`, then `push` its residual stream): an opened model,
    /// whose forward pass the browser cuts into half blocks.
    pub fn from_ids(
        text: String,
        ids: Vec<u32>,
        shape: ResidShape,
        window: usize,
        settings: &ProbeSettings,
    ) -> Result<ProbeRecording> {
        if ids.is_empty() {
            return Err(LensError::Input("the text is empty: there is nothing to probe".into()));
        }
        let wins = windows(ids.len(), window.max(1), settings.positions);
        // `ProbeJob` would refuse the recording; say so before any of it is read.
        let every = test_every(settings);
        if wins.len() < every {
            return Err(LensError::Input(format!(
                "the text is too short to probe: it is {} tokens, and the probes need at least {every} windows of {window} tokens",
                ids.len()
            )));
        }
        let acts = Activations { acts: vec![Vec::new(); shape.layers], d_model: shape.d_model };
        Ok(ProbeRecording { text, ids, wins, done: 0, acts })
    }

    /// The tokens of the next window to record, `None` once all are recorded.
    pub fn next_window(&self) -> Option<&[u32]> {
        self.wins.get(self.done).map(|&(s, l)| &self.ids[s..s + l])
    }

    /// Keeps the residual stream `resid` `[layers, skip + window, d_model]` of the model reading
    /// `next_window` after `skip` tokens of its own (its first token, as TransformerLens puts it in front);
    /// those `skip` rows are left out. True once every window is recorded.
    pub fn push(&mut self, resid: &Tensor, skip: usize) -> Result<bool> {
        let Some(&(_, len)) = self.wins.get(self.done) else {
            return Err(LensError::Input("every window is already recorded".into()));
        };
        let want = (self.acts.acts.len(), skip + len, self.acts.d_model);
        if resid.dims() != [want.0, want.1, want.2] {
            return Err(LensError::Input(format!(
                "a window's residual stream has shape {:?}, expected {want:?}",
                resid.dims()
            )));
        }
        let rows = resid.narrow(1, skip, len)?;
        for (l, all) in self.acts.acts.iter_mut().enumerate() {
            all.extend(rows.get(l)?.flatten_all()?.to_vec1::<f32>()?);
        }
        self.done += 1;
        Ok(self.done == self.wins.len())
    }

    /// (windows recorded, windows in all).
    pub fn progress(&self) -> (usize, usize) {
        (self.done, self.wins.len())
    }

    /// Records up to `n` more windows (one batched forward pass); true once every window is recorded.
    pub fn step(&mut self, model: &Transformer, n: usize) -> Result<bool> {
        let end = (self.done + n.max(1)).min(self.wins.len());
        if self.done < end {
            let part = record_resid(model, &self.ids, &self.wins[self.done..end])?;
            for (all, new) in self.acts.acts.iter_mut().zip(part.acts) {
                all.extend(new);
            }
            self.done = end;
        }
        Ok(self.done == self.wins.len())
    }

    /// The recorded data; call once `step` has returned true.
    pub fn finish(self) -> ProbeData {
        ProbeData { text: self.text, len: self.ids.len(), wins: self.wins, acts: self.acts, random_acts: None }
    }
}

/// Whole windows go to the test set, spread like the windows themselves: one in `test_every`, about
/// 1 / test_share.
fn test_every(settings: &ProbeSettings) -> usize {
    (1.0 / settings.test_share.clamp(0.05, 0.5)).round() as usize
}

/// Which fit of a layer is running: the probe itself, then its controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FitKind {
    Real,
    Shuffled,
    RandomModel,
}

/// The layer whose probes are being fitted.
struct LayerWork {
    layer: usize,
    xtr: Vec<f32>,
    xte: Vec<f32>,
    kind: FitKind,
    fit: LogRegFit,
    probe: Option<LogReg>,
    shuffled_accuracy: Option<f32>,
    random_model_accuracy: Option<f32>,
}

/// Probes for several layers trained a slice at a time (`step`), so the browser can show progress between
/// slices and stop on request. `probe_recorded` runs one to the end.
pub struct ProbeJob {
    name: String,
    settings: ProbeSettings,
    rows_train: Vec<usize>,
    rows_test: Vec<usize>,
    y_train: Vec<bool>,
    y_test: Vec<bool>,
    shuffled: Option<(Vec<bool>, Vec<bool>)>,
    baseline: f32,
    positive_rate: f32,
    todo: Vec<usize>,
    current: Option<LayerWork>,
    layers: Vec<LayerProbe>,
    fits_per_layer: usize,
    total_layers: usize,
    fits_done: usize,
}

/// What starting a fit (standardising, the power iteration) costs, in iterations of the descent.
const FIT_SETUP_COST: usize = 15;

impl ProbeJob {
    /// Labels the positions, splits them into training and test windows and checks both hold both classes.
    /// `layers` are residual layers (0 = embedding).
    pub fn new(data: &ProbeData, concept: &Concept, settings: &ProbeSettings, layers: &[usize]) -> Result<ProbeJob> {
        let labels = concept.labels(&data.text)?;
        ProbeJob::with_labels(data, concept.name(), &labels, settings, layers)
    }

    /// `new` with labels made elsewhere, one per token of the recorded text (per character on a
    /// character-level model), such as a concept's control task (`control_task_labels`) or a `TokenConcept`'s;
    /// `name` names them in the report and in messages.
    pub fn with_labels(
        data: &ProbeData,
        name: String,
        labels: &[Option<bool>],
        settings: &ProbeSettings,
        layers: &[usize],
    ) -> Result<ProbeJob> {
        if labels.len() != data.len {
            return Err(LensError::Input(format!(
                "{name} has {} labels for a text of {} tokens",
                labels.len(),
                data.len
            )));
        }
        let wins = &data.wins;
        let every = test_every(settings);
        if wins.len() < every {
            return Err(LensError::Input(format!(
                "the text is too short to probe: it needs at least {every} windows of {} tokens",
                wins.first().map_or(0, |w| w.1)
            )));
        }
        if let Some(&l) = layers.iter().find(|&&l| l >= data.acts.acts.len()) {
            return Err(LensError::Input(format!(
                "there is no residual layer {l}: the model has layers 0 to {}",
                data.acts.acts.len() - 1
            )));
        }
        let is_test = |w: usize| w % every == every / 2;
        // Row r of the recorded activations is position wins[w].0 + k of the text.
        let mut rows_train = Vec::new();
        let mut rows_test = Vec::new();
        let (mut y_train, mut y_test) = (Vec::new(), Vec::new());
        let mut row = 0;
        for (w, &(s, len)) in wins.iter().enumerate() {
            for k in 0..len {
                if let Some(label) = labels[s + k] {
                    if !is_test(w) {
                        rows_train.push(row);
                        y_train.push(label);
                    } else {
                        rows_test.push(row);
                        y_test.push(label);
                    }
                }
                row += 1;
            }
        }
        for (set, ys) in [("training", &y_train), ("test", &y_test)] {
            let pos = ys.iter().filter(|&&b| b).count();
            if pos == 0 || pos == ys.len() {
                return Err(LensError::Input(format!(
                    "the {set} positions are all {} for {name}: the text needs examples of both classes (try a longer text or another concept)",
                    if pos == 0 { "negative" } else { "positive" }
                )));
            }
        }
        let majority = y_train.iter().filter(|&&b| b).count() * 2 > y_train.len();
        let baseline = y_test.iter().filter(|&&b| b == majority).count() as f32 / y_test.len() as f32;
        let all: Vec<bool> = y_train.iter().chain(&y_test).copied().collect();
        let positive_rate = all.iter().filter(|&&b| b).count() as f32 / all.len() as f32;

        // One permutation of all used labels, shared by every layer: train and test on shuffled labels.
        let shuffled: Option<(Vec<bool>, Vec<bool>)> = settings.shuffled_control.then(|| {
            let mut rng = Rng::new(settings.seed ^ 0x5EED);
            let mut s = all.clone();
            for i in (1..s.len()).rev() {
                s.swap(i, rng.range(0, i));
            }
            let test = s.split_off(y_train.len());
            (s, test)
        });
        let random = settings.random_model_control && data.random_acts.is_some();
        let fits_per_layer = 1 + settings.shuffled_control as usize + random as usize;
        Ok(ProbeJob {
            name,
            settings: settings.clone(),
            rows_train,
            rows_test,
            y_train,
            y_test,
            shuffled,
            baseline,
            positive_rate,
            todo: layers.iter().rev().copied().collect(),
            current: None,
            layers: Vec::new(),
            fits_per_layer,
            total_layers: layers.len(),
            fits_done: 0,
        })
    }

    /// Share of the work done, from 0 to 1.
    pub fn progress(&self) -> f32 {
        let per_fit = (self.settings.fit.iterations + FIT_SETUP_COST) as f32;
        let total = (self.total_layers * self.fits_per_layer) as f32 * per_fit;
        let current = self.current.as_ref().map_or(0.0, |c| (c.fit.iterations() + FIT_SETUP_COST) as f32);
        if total <= 0.0 {
            1.0
        } else {
            ((self.fits_done as f32 * per_fit + current) / total).min(1.0)
        }
    }

    /// The layers finished so far.
    pub fn finished_layers(&self) -> &[LayerProbe] {
        &self.layers
    }

    pub fn is_done(&self) -> bool {
        self.current.is_none() && self.todo.is_empty()
    }

    /// Does about `budget` iterations' worth of work (starting a fit counts as `FIT_SETUP_COST`); true once
    /// every layer is done.
    pub fn step(&mut self, data: &ProbeData, budget: usize) -> Result<bool> {
        let d = data.acts.d_model;
        let iterations = self.settings.fit.iterations;
        let mut budget = budget;
        while budget > 0 {
            let Some(mut work) = self.current.take() else {
                let Some(layer) = self.todo.pop() else { return Ok(true) };
                let x = &data.acts.acts[layer];
                let (xtr, xte) = (take_rows(x, d, &self.rows_train), take_rows(x, d, &self.rows_test));
                let fit = LogRegFit::new(&xtr, d, &self.y_train, self.settings.fit)?;
                self.current = Some(LayerWork {
                    layer,
                    xtr,
                    xte,
                    kind: FitKind::Real,
                    fit,
                    probe: None,
                    shuffled_accuracy: None,
                    random_model_accuracy: None,
                });
                budget = budget.saturating_sub(FIT_SETUP_COST);
                continue;
            };
            let n = (iterations - work.fit.iterations()).min(budget);
            work.fit.run(n);
            budget -= n;
            if work.fit.iterations() < iterations {
                self.current = Some(work);
                continue;
            }
            // This fit is finished: keep its result and start the layer's next fit, if any.
            self.fits_done += 1;
            let fitted = work.fit.probe();
            match work.kind {
                FitKind::Real => work.probe = Some(fitted),
                FitKind::Shuffled => {
                    let (_, ste) = self.shuffled.as_ref().expect("a shuffled fit runs only with shuffled labels");
                    work.shuffled_accuracy = Some(fitted.accuracy(&work.xte, ste));
                }
                FitKind::RandomModel => {
                    let r = data.random_acts.as_ref().expect("a random-model fit runs only with its activations");
                    let rte = take_rows(&r.acts[work.layer], d, &self.rows_test);
                    work.random_model_accuracy = Some(fitted.accuracy(&rte, &self.y_test));
                }
            }
            let next = match work.kind {
                FitKind::Real if self.shuffled.is_some() => Some(FitKind::Shuffled),
                FitKind::Real | FitKind::Shuffled
                    if self.settings.random_model_control && data.random_acts.is_some() =>
                {
                    Some(FitKind::RandomModel)
                }
                _ => None,
            };
            budget = budget.saturating_sub(if next.is_some() { FIT_SETUP_COST } else { 0 });
            match next {
                Some(FitKind::Shuffled) => {
                    let (str_, _) = self.shuffled.as_ref().expect("checked above");
                    work.fit = LogRegFit::new(&work.xtr, d, str_, self.settings.fit)?;
                    work.kind = FitKind::Shuffled;
                    self.current = Some(work);
                }
                Some(FitKind::RandomModel) => {
                    let r = data.random_acts.as_ref().expect("checked above");
                    let rtr = take_rows(&r.acts[work.layer], d, &self.rows_train);
                    work.fit = LogRegFit::new(&rtr, d, &self.y_train, self.settings.fit)?;
                    work.kind = FitKind::RandomModel;
                    self.current = Some(work);
                }
                _ => self.layers.push(self.finish_layer(work, d)),
            }
        }
        Ok(self.is_done())
    }

    fn finish_layer(&self, work: LayerWork, d: usize) -> LayerProbe {
        let probe = work.probe.expect("the real probe is fitted first");
        let dir = probe.direction();
        let (mut sp, mut np, mut sn, mut nn) = (0.0f32, 0usize, 0.0f32, 0usize);
        for (row, &t) in work.xtr.chunks_exact(d).zip(&self.y_train) {
            let proj = dot(row, &dir);
            if t {
                sp += proj;
                np += 1;
            } else {
                sn += proj;
                nn += 1;
            }
        }
        LayerProbe {
            layer: work.layer,
            hook: super::logit_lens::resid_hook(work.layer),
            train_accuracy: probe.accuracy(&work.xtr, &self.y_train),
            test_accuracy: probe.accuracy(&work.xte, &self.y_test),
            probe,
            shuffled_accuracy: work.shuffled_accuracy,
            random_model_accuracy: work.random_model_accuracy,
            class_gap: sp / np.max(1) as f32 - sn / nn.max(1) as f32,
        }
    }

    /// The report over the finished layers (all of them once `step` has returned true).
    pub fn report(self) -> ProbeReport {
        ProbeReport {
            concept: self.name,
            n_train: self.y_train.len(),
            n_test: self.y_test.len(),
            positive_rate: self.positive_rate,
            baseline: self.baseline,
            layers: self.layers,
        }
    }
}

/// The labels of Hewitt and Liang's (2019) control task for `concept` on `text`: every character *type* gets a
/// fixed random label, drawn from `seed`, so that about the same share of positions is positive as for the
/// concept itself (the positions where the concept is undefined stay unlabelled). The labels follow nothing
/// but the current character's identity, so a probe that scores well on them is reading token identity; one
/// that scores well on the concept but not on its control has found more than that. Types are given labels in
/// a seeded order, each made positive while that brings the positive count closer to the concept's.
pub fn control_task_labels(concept: &Concept, text: &str, seed: u64) -> Result<Vec<Option<bool>>> {
    let real = concept.labels(text)?;
    let chars: Vec<char> = text.chars().collect();
    // Each type's count over the labelled positions, in the order of the characters (not of a hash map), so the
    // draw below depends only on the text and the seed.
    let mut counts: std::collections::BTreeMap<char, usize> = std::collections::BTreeMap::new();
    for (c, l) in chars.iter().zip(&real) {
        if l.is_some() {
            *counts.entry(*c).or_default() += 1;
        }
    }
    let mut types: Vec<(char, usize)> = counts.into_iter().collect();
    let mut rng = Rng::new(seed ^ 0xC0_47_01);
    for i in (1..types.len()).rev() {
        types.swap(i, rng.range(0, i));
    }
    let target = real.iter().filter(|l| **l == Some(true)).count();
    let (mut positive, mut chosen) = (0usize, std::collections::BTreeSet::new());
    for (c, n) in types {
        // Take the type if the count then lands nearer the target: positive + n - target < target - positive.
        if 2 * positive + n < 2 * target {
            positive += n;
            chosen.insert(c);
        }
    }
    Ok(chars.iter().zip(&real).map(|(c, l)| l.map(|_| chosen.contains(c))).collect())
}

/// The name a control task's report carries.
pub fn control_task_name(concept: &Concept) -> String {
    format!("control task for {}", concept.name())
}

/// A `ProbeJob` on `concept`'s control task (`control_task_labels` drawn from `settings.seed`), to be stepped
/// like any other.
pub fn control_task_job(
    data: &ProbeData,
    concept: &Concept,
    settings: &ProbeSettings,
    layers: &[usize],
) -> Result<ProbeJob> {
    let labels = control_task_labels(concept, &data.text, settings.seed)?;
    ProbeJob::with_labels(data, control_task_name(concept), &labels, settings, layers)
}

/// Probes every layer on `concept`'s control task in one go (`control_task_job` to the end).
pub fn probe_control_task(data: &ProbeData, concept: &Concept, settings: &ProbeSettings) -> Result<ProbeReport> {
    let layers: Vec<usize> = (0..data.acts.acts.len()).collect();
    let mut job = control_task_job(data, concept, settings, &layers)?;
    while !job.step(data, usize::MAX)? {}
    Ok(job.report())
}

/// Hewitt and Liang's selectivity per layer: test accuracy on the concept minus test accuracy on its control
/// task, `(layer, selectivity)` for the layers both reports hold. Near zero means the probe could have scored
/// as well by memorising which characters are positive.
pub fn selectivity(concept: &ProbeReport, control: &ProbeReport) -> Vec<(usize, f32)> {
    concept
        .layers
        .iter()
        .filter_map(|c| {
            let k = control.layers.iter().find(|k| k.layer == c.layer)?;
            Some((c.layer, c.test_accuracy - k.test_accuracy))
        })
        .collect()
}

/// A randomly initialised model of `cfg`'s shape, drawn from `seed`: the weights the random-model control of
/// `record_probe_data` uses with the same seed, as plain tensors (no training variables), so it can be recorded
/// with `ProbeRecording` and probed with `ProbeJob` like the trained model.
pub fn random_model(cfg: &Gpt2Config, seed: u64) -> Result<Transformer> {
    Transformer::random(cfg.clone(), seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_concepts_label_a_token_or_the_next_and_explain_failures() {
        let pieces = [" The", " cat", "\n", " sat", "."];
        let space_next = TokenConcept { pattern: r"^\s".into(), next: true };
        assert_eq!(space_next.labels(&pieces).unwrap(), [Some(true), Some(true), Some(true), Some(false), None]);
        let capital = TokenConcept { pattern: "[A-Z]".into(), next: false };
        assert_eq!(capital.labels(&pieces).unwrap(), [true, false, false, false, false].map(Some));
        assert_eq!(capital.name(), "regex /[A-Z]/ on the token");
        let fails = |pattern: &str, next: bool, pieces: &[&str]| {
            TokenConcept { pattern: pattern.into(), next }.labels(pieces).unwrap_err().to_string()
        };
        assert!(fails("zzz", false, &pieces).contains("matches no token"));
        assert!(fails("(?s).", true, &pieces).contains("matches every token"));
        assert!(fails("", false, &pieces).contains("empty"));
        assert!(fails("(", false, &pieces).contains("does not compile"));
        assert!(fails("(a|b){50}{50}", false, &pieces).contains("too costly"));
        // One token has no next one: nothing is labelled.
        assert!(fails("T", true, &[" The"]).contains("matches no token"));
    }

    #[test]
    fn on_characters_a_space_after_is_the_builtin_space_next() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/moby/held_out.txt"))
            .expect("the book's held-out text is shipped");
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let tokens = TokenConcept { pattern: r"^\s".into(), next: true }.labels(&chars).unwrap();
        assert_eq!(tokens, BuiltinConcept::SpaceNext.labels(&text.chars().collect::<Vec<_>>()));
    }

    #[test]
    fn costly_patterns_are_refused_and_ordinary_ones_run() {
        let text = "The whale, the Whale! ab ba";
        for costly in ["(a|b){50}{50}", "[a-z]{1000}{20}"] {
            let e = Concept::Regex(costly.into()).labels(text).unwrap_err().to_string();
            assert!(e.contains("too costly"), "{costly}: {e}");
        }
        let labels = Concept::Regex("[Ww]hale".into()).labels(text).unwrap();
        assert_eq!(labels.iter().filter(|l| **l == Some(true)).count(), 10);
        let e = Concept::Regex("(".into()).labels(text).unwrap_err().to_string();
        assert!(e.contains("does not compile"), "{e}");
    }

    #[test]
    fn control_task_labels_follow_the_character_and_match_the_positive_rate() {
        let text = "the whale, the sea; a ship\nand the whale again. Call me Ishmael.".repeat(4);
        let concept = Concept::Builtin(BuiltinConcept::SpaceNext);
        let real = concept.labels(&text).unwrap();
        let control = control_task_labels(&concept, &text, 7).unwrap();
        assert_eq!(control, control_task_labels(&concept, &text, 7).unwrap(), "a seed gives the same labels");
        assert_ne!(control, control_task_labels(&concept, &text, 8).unwrap());
        let chars: Vec<char> = text.chars().collect();
        let mut label_of = std::collections::HashMap::new();
        for ((c, r), k) in chars.iter().zip(&real).zip(&control) {
            assert_eq!(r.is_some(), k.is_some(), "the control labels the same positions");
            if let Some(k) = k {
                assert_eq!(*label_of.entry(*c).or_insert(*k), *k, "one label per character type");
            }
        }
        let rate = |ls: &[Option<bool>]| ls.iter().filter(|l| **l == Some(true)).count() as f32 / ls.len() as f32;
        assert!((rate(&real) - rate(&control)).abs() < 0.06, "{} vs {}", rate(&real), rate(&control));
    }

    #[test]
    fn concept_keys_round_trip() {
        for c in BuiltinConcept::ALL {
            assert_eq!(BuiltinConcept::from_key(c.key()), Some(c));
        }
        assert_eq!(BuiltinConcept::by_key().len(), BuiltinConcept::ALL.len());
        assert_eq!(BuiltinConcept::from_key("nope"), None);
    }

    #[test]
    fn builtin_labels_on_a_hand_made_text() {
        let chars: Vec<char> = "Ah “Yes, Sir.”\nOk".chars().collect();
        let on = |c: BuiltinConcept| -> Vec<usize> {
            c.labels(&chars).iter().enumerate().filter(|(_, l)| **l == Some(true)).map(|(i, _)| i).collect()
        };
        assert_eq!(on(BuiltinConcept::SpaceNext), vec![1, 7, 13]);
        assert_eq!(on(BuiltinConcept::CapitalNext), vec![3, 8, 14]);
        assert_eq!(on(BuiltinConcept::InsideQuotes), (3..=12).collect::<Vec<_>>());
        assert_eq!(on(BuiltinConcept::LineStart), vec![15]);
        assert_eq!(BuiltinConcept::SpaceNext.labels(&chars).last(), Some(&None));
    }

    #[test]
    fn regex_concepts_label_matched_characters_and_explain_failures() {
        let l = Concept::Regex("wh[a-z]+".into()).labels("the whale—whose?").unwrap();
        let on: Vec<usize> = l.iter().enumerate().filter(|(_, x)| **x == Some(true)).map(|(i, _)| i).collect();
        assert_eq!(on, vec![4, 5, 6, 7, 8, 10, 11, 12, 13, 14]);
        for (p, want) in [
            ("(", "does not compile"),
            ("zebra", "matches no character"),
            ("(?s).", "matches every character"),
            ("", "empty"),
        ] {
            let e = Concept::Regex(p.into()).labels("the whale").unwrap_err().to_string();
            assert!(e.contains(want), "{p}: {e}");
        }
    }
}
