//! Linear probes (Belinkov 2022): is a concept linearly decodable from the residual stream at a layer?
//!
//! Steps, as the chapter lists them: pick a concept; label every character position of a text with it;
//! record the residual stream at every layer (`lens::logit_lens::resid_hook`: layer 0 is the embedding);
//! train a logistic-regression probe per layer on most of the positions; report its accuracy on the rest
//! against two yardsticks: the majority-class baseline and a control. The controls are the same probe trained
//! on shuffled labels (a probe that is only memorising stays at the baseline there) and, optionally, the same
//! probe on a randomly initialised model of the same shape (a concept that a random network already exposes,
//! such as the identity of the current character, says little about what training taught).
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::hooks::{Hook, HookSet};
use super::logit_lens::resid_hooks;
use super::rng::Rng;
use super::text::CharVocab;
use super::{LensError, Result, Transformer};

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
                if pattern.is_empty() {
                    return Err(LensError::Input("the regular expression is empty".into()));
                }
                let re = regex_lite::Regex::new(pattern)
                    .map_err(|e| LensError::Input(format!("the regular expression /{pattern}/ does not compile: {e}")))?;
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
                    return Err(LensError::Input(format!("the regular expression /{pattern}/ matches no character of the text")));
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

/// A trained logistic-regression probe: `p(concept) = sigmoid(w . (x - mean) / std + b)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogReg {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Weights on the standardised features.
    pub w: Vec<f32>,
    pub b: f32,
}

/// Dot product with eight accumulators, so the compiler can keep several lanes busy without fast-math.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

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
        let n = y.len();
        if d == 0 || n == 0 || x.len() != n * d {
            return Err(LensError::Input(format!("a probe needs n x d features: got {} numbers for {n} labels and d = {d}", x.len())));
        }
        let mut mean = vec![0.0f32; d];
        for row in x.chunks_exact(d) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f32);
        let mut std = vec![0.0f32; d];
        for row in x.chunks_exact(d) {
            for j in 0..d {
                std[j] += (row[j] - mean[j]).powi(2);
            }
        }
        // A constant feature gets std 1 so it stays 0 after centring instead of dividing by zero.
        std.iter_mut().for_each(|s| *s = if *s > 1e-12 { (*s / n as f32).sqrt() } else { 1.0 });
        let inv_std: Vec<f32> = std.iter().map(|s| 1.0 / s).collect();
        let mut z = Vec::with_capacity(x.len());
        for row in x.chunks_exact(d) {
            z.extend(row.iter().zip(&mean).zip(&inv_std).map(|((v, m), i)| (v - m) * i));
        }
        let t: Vec<f32> = y.iter().map(|&b| b as u8 as f32).collect();

        // Largest eigenvalue of Z^T Z / n by power iteration (a few steps suffice for a step-size bound).
        let mut v = vec![1.0f32 / (d as f32).sqrt(); d];
        let mut lambda = 1.0f32;
        for _ in 0..12 {
            let mut u = vec![0.0f32; d];
            for row in z.chunks_exact(d) {
                let s = dot(row, &v);
                for (uj, r) in u.iter_mut().zip(row) {
                    *uj += s * r;
                }
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
        let (mut w, mut b) = (vec![0.0f32; d], (rate / (1.0 - rate)).ln());
        let (mut w_prev, mut b_prev) = (w.clone(), b);
        let mut k = 1.0f32;
        let mut grad = vec![0.0f32; d];
        for _ in 0..settings.iterations {
            // Look-ahead point of Nesterov's method.
            let mom = (k - 1.0) / (k + 2.0);
            let wy: Vec<f32> = w.iter().zip(&w_prev).map(|(a, p)| a + mom * (a - p)).collect();
            let by = b + mom * (b - b_prev);
            grad.iter_mut().for_each(|g| *g = 0.0);
            let mut gb = 0.0f32;
            for (row, &ti) in z.chunks_exact(d).zip(&t) {
                let r = sigmoid(dot(row, &wy) + by) - ti;
                gb += r;
                for (g, x) in grad.iter_mut().zip(row) {
                    *g += r * x;
                }
            }
            let inv_n = 1.0 / n as f32;
            grad.iter_mut().zip(&wy).for_each(|(g, wj)| *g = *g * inv_n + settings.l2 * wj);
            gb *= inv_n;
            // Restart the momentum when the gradient points against the last step (O'Donoghue and Candes
            // 2015, gradient scheme): it needs no loss evaluation, so no logarithms in the loop.
            let against = grad.iter().zip(w.iter().zip(&w_prev)).map(|(g, (a, p))| g * (a - p)).sum::<f32>() + gb * (b - b_prev);
            w_prev = w;
            b_prev = b;
            w = wy.iter().zip(&grad).map(|(wj, g)| wj - step * g).collect();
            b = by - step * gb;
            k = if against > 0.0 { 1.0 } else { k + 1.0 };
        }
        Ok(LogReg { mean, std, w, b })
    }

    /// The probe's logit for one activation vector.
    pub fn logit(&self, x: &[f32]) -> f32 {
        let mut s = self.b;
        for j in 0..self.w.len() {
            s += self.w[j] * (x[j] - self.mean[j]) / self.std[j];
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
        ProbeSettings { positions: 5000, test_share: 0.2, fit: FitSettings::default(), shuffled_control: true, random_model_control: false, seed: 1 }
    }
}

/// One layer's probe and its scores on the held-out positions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerProbe {
    /// 0 = embedding, l = after block l - 1 (see `lens::logit_lens::resid_hook`).
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
fn windows(ids_len: usize, n_ctx: usize, max_positions: usize) -> Vec<(usize, usize)> {
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
    wins: Vec<(usize, usize)>,
    acts: Activations,
    /// The same windows through a randomly initialised model of the same shape, for the control.
    random_acts: Option<Activations>,
}

impl ProbeData {
    /// How many positions were recorded.
    pub fn positions(&self) -> usize {
        self.wins.iter().map(|w| w.1).sum()
    }
}

/// Records the residual stream of every layer over windows of `text` spread across it, about
/// `settings.positions` positions in all (every character must be in the vocabulary: see
/// `CharVocab::unknown_chars`). With `settings.random_model_control`, also records a random model's.
pub fn record_probe_data(model: &Transformer, vocab: &CharVocab, text: &str, settings: &ProbeSettings) -> Result<ProbeData> {
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
    Ok(ProbeData { text: text.to_string(), wins, acts, random_acts })
}

/// Trains and scores a probe per residual layer for `concept` on `text`: `record_probe_data`, then
/// `probe_recorded`.
pub fn probe_layers(model: &Transformer, vocab: &CharVocab, text: &str, concept: &Concept, settings: &ProbeSettings) -> Result<ProbeReport> {
    probe_recorded(&record_probe_data(model, vocab, text, settings)?, concept, settings)
}

/// Trains and scores a probe per residual layer for `concept` on recorded activations. The random-model
/// control runs only if `data` was recorded with it.
pub fn probe_recorded(data: &ProbeData, concept: &Concept, settings: &ProbeSettings) -> Result<ProbeReport> {
    let labels = concept.labels(&data.text)?;
    let wins = &data.wins;
    // Whole windows go to the test set, spread like the windows themselves: about one in 1 / test_share.
    let every = (1.0 / settings.test_share.clamp(0.05, 0.5)).round() as usize;
    if wins.len() < every {
        return Err(LensError::Input(format!(
            "the text is too short to probe: it needs at least {every} windows of {} characters",
            wins.first().map_or(0, |w| w.1)
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
    let name = concept.name();
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

    let d = data.acts.d_model;
    let mut layers = Vec::new();
    for (l, x) in data.acts.acts.iter().enumerate() {
        let (xtr, xte) = (take_rows(x, d, &rows_train), take_rows(x, d, &rows_test));
        let probe = LogReg::fit(&xtr, d, &y_train, settings.fit)?;
        let shuffled_accuracy = match &shuffled {
            Some((str_, ste)) => Some(LogReg::fit(&xtr, d, str_, settings.fit)?.accuracy(&xte, ste)),
            None => None,
        };
        let random_model_accuracy = match &data.random_acts {
            Some(r) if settings.random_model_control => {
                let (rtr, rte) = (take_rows(&r.acts[l], d, &rows_train), take_rows(&r.acts[l], d, &rows_test));
                Some(LogReg::fit(&rtr, d, &y_train, settings.fit)?.accuracy(&rte, &y_test))
            }
            _ => None,
        };
        let dir = probe.direction();
        let (mut sp, mut np, mut sn, mut nn) = (0.0f32, 0usize, 0.0f32, 0usize);
        for (row, &t) in xtr.chunks_exact(d).zip(&y_train) {
            let proj = dot(row, &dir);
            if t {
                sp += proj;
                np += 1;
            } else {
                sn += proj;
                nn += 1;
            }
        }
        layers.push(LayerProbe {
            layer: l,
            hook: super::logit_lens::resid_hook(l),
            train_accuracy: probe.accuracy(&xtr, &y_train),
            test_accuracy: probe.accuracy(&xte, &y_test),
            probe,
            shuffled_accuracy,
            random_model_accuracy,
            class_gap: sp / np.max(1) as f32 - sn / nn.max(1) as f32,
        });
    }
    Ok(ProbeReport { concept: name, n_train: y_train.len(), n_test: y_test.len(), positive_rate, baseline, layers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_labels_on_a_hand_made_text() {
        let chars: Vec<char> = "Ah “Yes, Sir.”\nOk".chars().collect();
        let on = |c: BuiltinConcept| -> Vec<usize> { c.labels(&chars).iter().enumerate().filter(|(_, l)| **l == Some(true)).map(|(i, _)| i).collect() };
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
        for (p, want) in [("(", "does not compile"), ("zebra", "matches no character"), ("(?s).", "matches every character"), ("", "empty")] {
            let e = Concept::Regex(p.into()).labels("the whale").unwrap_err().to_string();
            assert!(e.contains(want), "{p}: {e}");
        }
    }
}
