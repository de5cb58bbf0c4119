//! The glassbox scorecard: every method of the chapter run on the glassbox model, whose mechanism is known
//! exactly (`glassbox`: L0H0 writes the previous token into `PREV`, L1H0 reads it and writes the repeat's next
//! token into `OUT`, the only subspace the unembedding reads; L0H1 and L1H1 are decoys), and scored against
//! it. Each method's claim is put in the terms of the known answer (a set of heads, a set of edges, a layer, a
//! set of directions) and given a verdict: it recovers the answer, misses part of it, or gets it wrong (claims
//! something that is not there).
//!
//! The known answer is read off the model's own definition (`ROLES`, `circuit()`, the subspaces), never
//! written down here, so a change to the model changes what each method is scored against.
use std::collections::HashSet;
use std::hash::Hash;

use super::HeadFinding;
use crate::lens::methods::acdc::{Circuit, Edge};
use crate::lens::methods::glassbox::{self, Role, Subspace, MAX_HALF, POS, PREV, ROLES, TOKEN};
use crate::lens::methods::logit_lens::logit_lens;
use crate::lens::methods::probe::{FitSettings, LogReg, LogRegFit};
use crate::lens::methods::sae::{LmSae, SaeTrainConfig, SaeTraining};
use crate::lens::rng::Rng;
use crate::lens::Hook;
use crate::lens::{LensError, Result, Transformer};

/// What a method's claim comes to, held against the known mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It finds the known answer and nothing else.
    Recovers,
    /// What it claims is true, but part of the answer is missing.
    Misses,
    /// It claims something the mechanism does not have.
    GetsWrong,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Recovers => "recovers",
            Verdict::Misses => "misses",
            Verdict::GetsWrong => "gets wrong",
        }
    }

    /// From precision and recall against the known answer: any false claim gets it wrong; else any gap misses.
    pub fn of(precision: f32, recall: f32) -> Verdict {
        if precision < 1.0 {
            Verdict::GetsWrong
        } else if recall < 1.0 {
            Verdict::Misses
        } else {
            Verdict::Recovers
        }
    }
}

/// The methods, one row each, in the order the card shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Attention,
    Noising,
    Denoising,
    Acdc,
    LogitLens,
    Probe,
    Sae,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Attention => "attention patterns",
            Method::Noising => "patching each head (noising)",
            Method::Denoising => "patching each head (denoising)",
            Method::Acdc => "ACDC",
            Method::LogitLens => "logit lens",
            Method::Probe => "linear probe",
            Method::Sae => "sparse autoencoder",
        }
    }

    /// The row's key in the page (`data-method`).
    pub fn key(self) -> &'static str {
        match self {
            Method::Attention => "attention",
            Method::Noising => "noising",
            Method::Denoising => "denoising",
            Method::Acdc => "acdc",
            Method::LogitLens => "logit-lens",
            Method::Probe => "probe",
            Method::Sae => "sae",
        }
    }
}

/// One row of the scorecard.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    pub method: Method,
    /// What the method says, in the terms of the known answer.
    pub claim: String,
    /// The known answer.
    pub truth: String,
    /// The numbers behind the verdict.
    pub numbers: String,
    pub verdict: Verdict,
}

/// Share of `claimed` that is true, and share of `truth` that is claimed (1 for an empty set, which claims or
/// needs nothing).
pub fn precision_recall<T: Eq + Hash>(claimed: &HashSet<T>, truth: &HashSet<T>) -> (f32, f32) {
    let hits = claimed.intersection(truth).count() as f32;
    let share = |n: usize| if n == 0 { 1.0 } else { hits / n as f32 };
    (share(claimed.len()), share(truth.len()))
}

fn head_name((layer, head): (usize, usize)) -> String {
    format!("L{layer}H{head}")
}

fn head_list(heads: &HashSet<(usize, usize)>) -> String {
    let mut v: Vec<_> = heads.iter().copied().collect();
    v.sort();
    if v.is_empty() {
        "none".into()
    } else {
        v.into_iter().map(head_name).collect::<Vec<_>>().join(", ")
    }
}

/// The heads the model was built to predict the repeat with (`Role::in_circuit`).
pub fn circuit_heads() -> HashSet<(usize, usize)> {
    heads_where(|r| r.in_circuit())
}

fn heads_where(f: impl Fn(Role) -> bool) -> HashSet<(usize, usize)> {
    let mut out = HashSet::new();
    for (layer, roles) in ROLES.iter().enumerate() {
        for (head, &role) in roles.iter().enumerate() {
            if f(role) {
                out.insert((layer, head));
            }
        }
    }
    out
}

/// The known answer for a head-level method: the circuit's heads, and the decoys beside them.
fn heads_truth() -> String {
    format!("circuit: {}; decoys: {}", head_list(&circuit_heads()), head_list(&heads_where(|r| !r.in_circuit())))
}

/// The detector an attention pattern of this role should light up (`HeadFinding::pattern`'s names); None for a
/// role no detector names (the `<bos>` sink).
pub fn role_pattern(role: Role) -> Option<&'static str> {
    match role {
        Role::PreviousToken => Some("previous-token"),
        Role::Induction => Some("induction"),
        Role::DuplicateTokenDecoy => Some("duplicate-token"),
        Role::BosSink => None,
    }
}

/// Attention patterns read as a circuit: the heads with a sharp pattern (`HeadFinding::looks_busy`) taken as
/// the mechanism. Their labels are right, but the set holds a decoy.
pub fn attention_score(heads: &[HeadFinding]) -> Score {
    let busy: Vec<&HeadFinding> = heads.iter().filter(|h| h.looks_busy()).collect();
    let claimed: HashSet<_> = busy.iter().map(|h| (h.layer, h.head)).collect();
    let named_right = busy.iter().filter(|h| role_pattern(h.role) == Some(h.pattern().0)).count();
    let (precision, recall) = precision_recall(&claimed, &circuit_heads());
    let claim = busy.iter().map(|h| format!("{} {}", h.name(), h.pattern().0)).collect::<Vec<_>>().join(", ");
    Score {
        method: Method::Attention,
        claim: format!("sharp patterns: {}", if claim.is_empty() { "none".into() } else { claim }),
        truth: heads_truth(),
        numbers: format!(
            "patterns named right {named_right} of {}; as the circuit: precision {precision:.2}, recall {recall:.2}",
            busy.len()
        ),
        verdict: Verdict::of(precision, recall),
    }
}

/// Share of the answer a head must move to count: a fifth of the normalised logit difference (as
/// `HeadFinding::matters`).
pub const MATTERS: f32 = 0.2;

/// Head-output patching read as a circuit, from its normalised logit difference `[layer][head]`: noising counts
/// a head when corrupting it loses at least `MATTERS` of the answer (1 − value ≥ `MATTERS`), denoising when
/// restoring it alone brings back at least `MATTERS` (value ≥ `MATTERS`).
pub fn patching_score(method: Method, grid: &[Vec<f32>]) -> Score {
    let noising = method == Method::Noising;
    let effect = |v: f32| if noising { 1.0 - v } else { v };
    let mut claimed = HashSet::new();
    let mut effects = Vec::new();
    for (layer, row) in grid.iter().enumerate() {
        for (head, &v) in row.iter().enumerate() {
            if effect(v) >= MATTERS {
                claimed.insert((layer, head));
            }
            effects.push(format!("{} {:.2}", head_name((layer, head)), effect(v)));
        }
    }
    let (precision, recall) = precision_recall(&claimed, &circuit_heads());
    let what = if noising { "answer lost" } else { "answer restored" };
    Score {
        method,
        claim: format!("heads that matter: {}", head_list(&claimed)),
        truth: heads_truth(),
        numbers: format!("{what}: {}; precision {precision:.2}, recall {recall:.2}", effects.join(", ")),
        verdict: Verdict::of(precision, recall),
    }
}

/// The threshold the scorecard runs ACDC at (KL over the repeat's positions, nats): the 9.4 lab's default.
pub const ACDC_TAU: f32 = 0.01;

/// ACDC's circuit against `glassbox::circuit()`, edge by edge.
pub fn acdc_score(c: &Circuit) -> Score {
    let found = c.edge_set();
    let truth = glassbox::circuit();
    let (precision, recall) = precision_recall(&found, &truth);
    let names = |s: &HashSet<Edge>| {
        let mut v: Vec<_> = s.iter().copied().collect();
        v.sort();
        v.iter().map(|e| e.to_string().replace("->", "→")).collect::<Vec<_>>().join(", ")
    };
    Score {
        method: Method::Acdc,
        claim: format!("{} edges: {}", found.len(), names(&found)),
        truth: format!("{} edges: {}", truth.len(), names(&truth)),
        numbers: format!(
            "τ = {} (KL over the repeat): {} of {} edges kept; precision {precision:.2}, recall {recall:.2}",
            c.tau,
            found.len(),
            c.total_edges
        ),
        verdict: Verdict::of(precision, recall),
    }
}

/// A residual layer's name as the card prints it (0 = the embedding, l = after block l − 1).
fn resid_name(layer: usize) -> String {
    super::layer_name(layer)
}

/// The residual layer from which the stream holds what the head of `role` writes: after its block.
fn written_after(role: Role) -> usize {
    ROLES.iter().position(|r| r.contains(&role)).expect("every role is some head's") + 1
}

/// The first layer whose value reaches `bar`, scored against the layer the mechanism writes the quantity at:
/// readable earlier than written gets it wrong, never or later misses.
fn layer_verdict(values: &[f32], bar: f32, truth: usize) -> (Option<usize>, Verdict) {
    let first = values.iter().position(|&v| v >= bar);
    let verdict = match first {
        Some(l) if l == truth => Verdict::Recovers,
        Some(l) if l < truth => Verdict::GetsWrong,
        _ => Verdict::Misses,
    };
    (first, verdict)
}

/// The sequence the logit lens reads: the patching input's clean run (`<bos>`, ten words, the same ten again).
pub fn lens_tokens() -> Vec<u32> {
    glassbox::patch_input(glassbox::PATCH_HALF, glassbox::SEED).clean
}

/// The logit lens's mean probability of the true next token at each residual layer, over the positions where
/// induction can predict it (the repeat, `glassbox::repeat_positions`).
pub fn lens_probabilities(model: &Transformer, tokens: &[u32]) -> Result<Vec<f32>> {
    let lens = logit_lens(model, tokens, 1)?;
    let from = (tokens.len() - 1) / 2 + 1;
    Ok(lens
        .cells
        .iter()
        .map(|row| {
            let ps: Vec<f32> = row[from..].iter().filter_map(|c| c.target_prob).collect();
            ps.iter().sum::<f32>() / ps.len().max(1) as f32
        })
        .collect())
}

/// The probability at which the next token counts as readable.
pub const READABLE: f32 = 0.5;

/// The logit lens: at which layer the next token becomes readable, against where the induction head writes it.
pub fn logit_lens_score(probs: &[f32]) -> Score {
    let truth = written_after(Role::Induction);
    let (first, verdict) = layer_verdict(probs, READABLE, truth);
    let each = probs.iter().enumerate().map(|(l, p)| format!("{} {p:.2}", resid_name(l))).collect::<Vec<_>>();
    Score {
        method: Method::LogitLens,
        claim: format!(
            "the next token is readable {}",
            first.map_or("nowhere".into(), |l| format!("from {}", resid_name(l)))
        ),
        truth: format!("the induction head writes it (OUT), so from {}", resid_name(truth)),
        numbers: format!("mean probability of the next token on the repeat: {}", each.join(", ")),
        verdict,
    }
}

/// The probe's task: whether the previous token is one of the first half of the words (ids 1 to 10), a yes/no
/// question about the previous token's identity, which only `PREV` answers.
pub fn previous_in_first_half(prev: u32) -> bool {
    (1..=(glassbox::WORDS.len() / 2) as u32).contains(&prev)
}

/// How many repeated sequences (of `MAX_HALF` words each half) the probe records, and every how many one is held
/// out for testing.
pub const PROBE_SEQUENCES: usize = 32;
pub const PROBE_TEST_EVERY: usize = 4;
/// The accuracy at which the previous token counts as readable.
pub const PROBE_BAR: f32 = 0.95;

/// The probe's sequences, drawn from `glassbox::SEED`.
pub fn probe_sequences() -> Vec<Vec<u32>> {
    let mut rng = Rng::new(glassbox::SEED ^ 0x9E0B);
    (0..PROBE_SEQUENCES).map(|_| glassbox::repeated_sequence(&mut rng, MAX_HALF)).collect()
}

/// The residual stream at every layer for the previous-token probe, recorded a sequence at a time, with each
/// position's label (from position 2 on, where the previous token is a word).
#[derive(Clone, Debug, Default)]
pub struct PrevProbeData {
    /// `x[layer]`: rows of `d_model`, training rows and test rows kept apart.
    pub train: Vec<Vec<f32>>,
    pub test: Vec<Vec<f32>>,
    pub y_train: Vec<bool>,
    pub y_test: Vec<bool>,
    pub d_model: usize,
}

impl PrevProbeData {
    /// Records sequence number `k` of `probe_sequences` (every `PROBE_TEST_EVERY`-th is held out).
    pub fn record(&mut self, model: &Transformer, k: usize, tokens: &[u32]) -> Result<()> {
        if tokens.len() < 3 {
            return Err(LensError::Input("the previous-word probe needs sequences of at least 3 tokens".into()));
        }
        let layers = model.cfg.n_layer + 1;
        let d = model.cfg.d_model();
        self.d_model = d;
        if self.train.is_empty() {
            (self.train, self.test) = (vec![Vec::new(); layers], vec![Vec::new(); layers]);
        }
        let (_, cache) = model.run_with_cache(tokens)?;
        let test = k % PROBE_TEST_EVERY == PROBE_TEST_EVERY - 1;
        for layer in 0..layers {
            let hook = crate::lens::methods::logit_lens::resid_hook(layer);
            let t = cache.get(hook).ok_or_else(|| LensError::UnknownHook(hook.to_string()))?;
            let rows: Vec<f32> = t.flatten_all()?.to_vec1()?;
            let into = if test { &mut self.test[layer] } else { &mut self.train[layer] };
            into.extend_from_slice(&rows[2 * d..]);
        }
        let ys = tokens[1..tokens.len() - 1].iter().map(|&t| previous_in_first_half(t));
        if test {
            self.y_test.extend(ys);
        } else {
            self.y_train.extend(ys);
        }
        Ok(())
    }

    /// The majority answer's accuracy on the test rows.
    pub fn baseline(&self) -> f32 {
        let pos = self.y_train.iter().filter(|&&b| b).count() * 2 > self.y_train.len();
        self.y_test.iter().filter(|&&b| b == pos).count() as f32 / self.y_test.len().max(1) as f32
    }

    /// Starts layer `layer`'s probe (fitted with `LogRegFit::run`, a slice at a time).
    pub fn fit(&self, layer: usize) -> Result<LogRegFit> {
        LogRegFit::new(&self.train[layer], self.d_model, &self.y_train, FitSettings::default())
    }

    /// A fitted probe's accuracy on the test rows of `layer`.
    pub fn accuracy(&self, layer: usize, probe: &LogReg) -> f32 {
        probe.accuracy(&self.test[layer], &self.y_test)
    }

    /// Every layer's probe fitted in one go: test accuracies, layer by layer.
    pub fn accuracies(&self) -> Result<Vec<f32>> {
        (0..self.train.len())
            .map(|l| {
                let mut f = self.fit(l)?;
                f.run(FitSettings::default().iterations);
                Ok(self.accuracy(l, &f.probe()))
            })
            .collect()
    }
}

/// Records every probe sequence in one go.
pub fn record_prev_probe(model: &Transformer) -> Result<PrevProbeData> {
    let mut data = PrevProbeData::default();
    for (k, s) in probe_sequences().iter().enumerate() {
        data.record(model, k, s)?;
    }
    Ok(data)
}

/// The probe: at which layer the previous token becomes readable, against where the previous-token head
/// writes it (`PREV`).
pub fn probe_score(accuracies: &[f32], baseline: f32) -> Score {
    let truth = written_after(Role::PreviousToken);
    let (first, verdict) = layer_verdict(accuracies, PROBE_BAR, truth);
    let each = accuracies.iter().enumerate().map(|(l, a)| format!("{} {:.0}%", resid_name(l), 100.0 * a));
    Score {
        method: Method::Probe,
        claim: format!(
            "the previous token is readable {}",
            first.map_or("nowhere".into(), |l| format!("from {}", resid_name(l)))
        ),
        truth: format!("the previous-token head writes it (PREV), so from {}", resid_name(truth)),
        numbers: format!(
            "test accuracy of “the previous word is one of the first ten”: {} (majority {:.0}%)",
            each.collect::<Vec<_>>().join(", "),
            100.0 * baseline
        ),
        verdict,
    }
}

/// The residual layer the SAE reads: after block 0, where the stream holds the current token (`TOKEN`), its
/// position (`POS`) and the previous token (`PREV`), plus `BOS_MARK`'s constant.
pub const SAE_LAYER: usize = 1;

/// The SAE's settings: a dictionary wider than the 69 codes the rows hold, trained for a few hundred steps
/// (what fits the card's time; `tests/critiques_glassbox.rs` measures other seeds alike).
pub fn sae_config() -> SaeTrainConfig {
    SaeTrainConfig { d_sae: SAE_LATENTS, l1: 0.1, lr: 3e-2, batch: 64, steps: SAE_STEPS, l1_warmup: 100, seed: 1 }
}
pub const SAE_LATENTS: usize = 96;
pub const SAE_STEPS: usize = 300;

/// The cosine at which a decoder direction counts as a known one; the share of the known codes some latent
/// must match for the SAE to find them all, and the share of live latents that must match one code each for
/// its latents to be the codes (a stray in twenty allowed).
pub const SAE_COSINE: f32 = 0.9;
pub const SAE_RECALL: f32 = 0.9;
pub const SAE_PRECISION: f32 = 0.95;

/// The SAE's training rows: the probe's recording at `SAE_LAYER` (every sequence, from position 2 on).
pub fn sae_rows(data: &PrevProbeData) -> Vec<f32> {
    data.train[SAE_LAYER].iter().chain(&data.test[SAE_LAYER]).copied().collect()
}

/// Starts the SAE on `rows`.
pub fn sae_training(rows: &[f32], d_model: usize) -> Result<SaeTraining> {
    SaeTraining::new(rows, d_model, Hook::ResidPost(SAE_LAYER - 1), &sae_config())
}

/// The known directions of the stream at `SAE_LAYER`, with their subspace's name: one per code of `TOKEN`,
/// `POS` and `PREV` that the rows hold. Each subspace holds exactly one code in every row, so its average code
/// is part of the stream's mean (an SAE's `b_dec`), and what code i adds to the mean is its basis vector minus
/// that average: `e[i] − mean`, over the subspace's code dimensions (its sink is the same −1 in every row), unit
/// length.
pub fn known_codes(rows: &[f32], d_model: usize) -> Vec<(&'static str, Vec<f32>)> {
    let subspaces: [(&str, Subspace); 3] = [("TOKEN", TOKEN), ("POS", POS), ("PREV", PREV)];
    let n = (rows.len() / d_model.max(1)).max(1) as f32;
    let mut out = Vec::new();
    for (name, s) in subspaces {
        let mean: Vec<f32> =
            (0..s.size).map(|i| rows.chunks_exact(d_model).map(|r| r[s.dim(i)]).sum::<f32>() / n).collect();
        for i in (0..s.size).filter(|&i| rows.chunks_exact(d_model).any(|r| r[s.dim(i)] > 0.5)) {
            let mut v = vec![0.0f32; d_model];
            for (k, m) in mean.iter().enumerate() {
                v[s.dim(k)] = if k == i { 1.0 } else { 0.0 } - m;
            }
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            out.push((name, v));
        }
    }
    out
}

/// An SAE's latents against the known codes: which codes some live latent's decoder direction matches (cosine
/// with the code's basis vector ≥ `SAE_COSINE`), and how many live latents (active on some row) match a code.
#[derive(Clone, Debug, PartialEq)]
pub struct SaeMatch {
    /// Per subspace: (name, codes found, codes present).
    pub found: Vec<(&'static str, usize, usize)>,
    pub live: usize,
    pub matched: usize,
    /// Fraction of variance unexplained on the rows.
    pub fvu: f32,
}

impl SaeMatch {
    pub fn recall(&self) -> f32 {
        let (f, n) = self.found.iter().fold((0, 0), |(a, b), x| (a + x.1, b + x.2));
        f as f32 / n.max(1) as f32
    }

    pub fn precision(&self) -> f32 {
        self.matched as f32 / self.live.max(1) as f32
    }
}

/// How many rows `SaeTally::step` encodes and decodes at a time (a few milliseconds in the browser).
pub const SAE_SCORE_ROWS: usize = 64;

/// An SAE run over the rows a chunk at a time: which latents fire on some row, and the squared error of the
/// reconstruction so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SaeTally {
    pub live: Vec<bool>,
    pub sq_err: f64,
    pub next: usize,
}

impl SaeTally {
    /// Encodes and decodes the next `SAE_SCORE_ROWS` rows; true once every row is done.
    pub fn step(&mut self, sae: &LmSae, rows: &[f32]) -> bool {
        let d = sae.d_in;
        let n = rows.len() / d;
        if self.live.len() != sae.d_sae {
            self.live = vec![false; sae.d_sae];
        }
        let end = (self.next + SAE_SCORE_ROWS).min(n);
        let x = &rows[self.next * d..end * d];
        let f = sae.encode(x);
        for row in f.chunks_exact(sae.d_sae) {
            self.live.iter_mut().zip(row).for_each(|(l, a)| *l |= *a > 0.0);
        }
        let x_hat = sae.decode(&f);
        self.sq_err += x.iter().zip(&x_hat).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>();
        self.next = end;
        self.next >= n
    }
}

/// The SAE against the known codes once `tally` has run over `rows`.
pub fn sae_match_from(sae: &LmSae, rows: &[f32], tally: &SaeTally) -> SaeMatch {
    let d = sae.d_in;
    let codes = known_codes(rows, d);
    let live: Vec<usize> = (0..sae.d_sae).filter(|&j| tally.live.get(j) == Some(&true)).collect();
    // Decoder rows and known directions are unit length: the cosine is the dot product.
    let cos = |j: usize, v: &[f32]| sae.direction(j).iter().zip(v).map(|(a, b)| a * b).sum::<f32>();
    let best = |j: usize| codes.iter().map(|(_, v)| cos(j, v)).fold(f32::NEG_INFINITY, f32::max);
    let matched = live.iter().filter(|&&j| best(j) >= SAE_COSINE).count();
    let mut found: Vec<(&'static str, usize, usize)> = Vec::new();
    for (name, v) in &codes {
        let name = *name;
        let hit = live.iter().any(|&j| cos(j, v) >= SAE_COSINE) as usize;
        match found.iter_mut().find(|f| f.0 == name) {
            Some(f) => (f.1, f.2) = (f.1 + hit, f.2 + 1),
            None => found.push((name, hit, 1)),
        }
    }
    // FVU: the squared error over the squared deviation from the mean row.
    let n = (rows.len() / d).max(1);
    let mut mean = vec![0.0f64; d];
    for row in rows.chunks_exact(d) {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += *v as f64 / n as f64);
    }
    let var: f64 = rows.chunks_exact(d).flat_map(|r| r.iter().zip(&mean).map(|(v, m)| (*v as f64 - m).powi(2))).sum();
    SaeMatch { found, live: live.len(), matched, fvu: (tally.sq_err / var.max(1e-12)) as f32 }
}

/// `sae_match_from` after a tally over every row in one go.
pub fn sae_match(sae: &LmSae, rows: &[f32]) -> SaeMatch {
    let mut tally = SaeTally::default();
    while !tally.step(sae, rows) {}
    sae_match_from(sae, rows, &tally)
}

/// The SAE: whether its latents are the stream's known directions, all of them and only them.
pub fn sae_score(m: &SaeMatch) -> Score {
    let (precision, recall) = (m.precision(), m.recall());
    let verdict = if precision < SAE_PRECISION {
        Verdict::GetsWrong
    } else if recall < SAE_RECALL {
        Verdict::Misses
    } else {
        Verdict::Recovers
    };
    let found = m.found.iter().map(|(n, f, k)| format!("{n} {f} of {k}")).collect::<Vec<_>>().join(", ");
    Score {
        method: Method::Sae,
        claim: format!(
            "{} of {} codes found; {} of {} live latents are one code each, the rest blend codes",
            m.found.iter().map(|f| f.1).sum::<usize>(),
            m.found.iter().map(|f| f.2).sum::<usize>(),
            m.matched,
            m.live
        ),
        truth: format!("after block 0 the stream holds one code each of TOKEN, POS and PREV ({} codes)", m.found.iter().map(|f| f.2).sum::<usize>()),
        numbers: format!(
            "{SAE_LATENTS} latents, {SAE_STEPS} steps, {}; codes found (cosine ≥ {SAE_COSINE}): {found}; latents on one code: {:.0}%; FVU {:.3}",
            resid_name(SAE_LAYER),
            100.0 * precision,
            m.fvu
        ),
        verdict,
    }
}
