//! 9.5 Critiques: one card per caveat. Each card asks a question (its `:::card` in `content/9.5.md`), takes
//! the student's prediction, runs the experiment live on a shipped model, and then reveals its reading.
//!
//! This module holds the cards, the lab's URL state and each experiment's findings as plain data computed by
//! plain functions (tested natively against the shipped models); `view` runs them as jobs and draws them.
use crate::app::core::url::{Reader, UrlState, Writer};
use crate::lens::methods::acdc::{AcdcMetric, Circuit, Node};
use crate::lens::methods::glassbox::{self, Role, ROLES};
use crate::lens::methods::induction::{head_scores, HeadScores};
use crate::lens::methods::patching::{Metric, PatchResult};
use crate::lens::methods::probe::{selectivity, ProbeReport};
use crate::lens::methods::steering::{SteeringPair, SweepSettings, PAIRS};
use crate::lens::{LensError, Transformer};

pub mod polysemantic;
pub mod sae;
pub mod scorecard;
#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::CritiquesLab;

/// The experiments, in the order the lab shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Card {
    /// Attention patterns against patching, on the glassbox model (whose heads' roles are known).
    Attention,
    /// Activation patching read with two metrics and in both directions, on the IOI model.
    Metric,
    /// A probe trained on a randomly initialised network (Hewitt & Liang 2019).
    RandomProbe,
    /// The saliency sanity check (Adebayo et al. 2018): maps after the CNN's weights are randomised.
    Saliency,
    /// The logit lens against a tuned lens trained in the browser (Belrose et al. 2023).
    TunedLens,
    /// Steering swept over its coefficient: the target rate against the loss of the steered text.
    Steering,
    /// ACDC run with two metrics (KL divergence, logit difference) on the IOI model.
    AcdcMetric,
    /// The Moby-Dick SAE's reconstruction gap: the loss with its reconstruction spliced in, and dead latents.
    SaeGap,
    /// An SAE latent whose top contexts suggest one thing and whose logit effect another.
    SaeLatent,
    /// Small SAEs trained live at several L1 coefficients: sparsity against reconstruction.
    SaeL1,
    /// A polysemantic channel of the MNIST CNN: a clean feature visualization, mixed top examples.
    Polysemantic,
    /// Every method run on the glassbox model and scored against its known mechanism (`scorecard`).
    Scorecard,
}

impl Card {
    pub const ALL: [Card; 12] = [
        Card::Attention,
        Card::Metric,
        Card::AcdcMetric,
        Card::RandomProbe,
        Card::Saliency,
        Card::TunedLens,
        Card::Steering,
        Card::SaeGap,
        Card::SaeLatent,
        Card::SaeL1,
        Card::Polysemantic,
        Card::Scorecard,
    ];

    /// The card's key in links (`#/9.5?card=metric`), and its `:::card critique-{key}` in `content/9.5.md`.
    pub fn key(self) -> &'static str {
        match self {
            Card::Attention => "attention",
            Card::Metric => "metric",
            Card::RandomProbe => "random-probe",
            Card::Saliency => "saliency",
            Card::TunedLens => "tuned-lens",
            Card::Steering => "steering",
            Card::AcdcMetric => "acdc-metric",
            Card::SaeGap => "sae-gap",
            Card::SaeLatent => "sae-latent",
            Card::SaeL1 => "sae-l1",
            Card::Polysemantic => "polysemantic",
            Card::Scorecard => "scorecard",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Card::Attention => "A sharp attention pattern is not an important head",
            Card::Metric => "Patching answers depend on the metric and the direction",
            Card::RandomProbe => "A probe can succeed on a network that learned nothing",
            Card::Saliency => "A saliency map can outlive everything the model learned",
            Card::TunedLens => "The logit lens misreads early layers; a tuned lens reads more",
            Card::Steering => "Steering hits its target by breaking the text",
            Card::AcdcMetric => "The circuit ACDC finds depends on the metric it keeps",
            Card::SaeGap => "A good reconstruction can still cost the model",
            Card::SaeLatent => "A latent's top contexts are not what it does",
            Card::SaeL1 => "Sparser dictionaries reconstruct worse",
            Card::Polysemantic => "A clean picture can hide a mixed channel",
            Card::Scorecard => "Every method against a known answer",
        }
    }

    /// The model the experiment runs on, as the card names it.
    pub fn model(self) -> &'static str {
        match self {
            Card::Attention => "glassbox model (hand-built)",
            Card::Metric => "IOI model",
            Card::RandomProbe => "Moby-Dick model, and a random one of its shape",
            Card::Saliency => "MNIST CNN",
            Card::TunedLens => "Moby-Dick model",
            Card::Steering => "Moby-Dick model",
            Card::AcdcMetric => "IOI model",
            Card::SaeGap | Card::SaeLatent => "Moby-Dick model and its SAE",
            Card::SaeL1 => "Moby-Dick model, SAEs trained here",
            Card::Polysemantic => "MNIST CNN",
            Card::Scorecard => "glassbox model (hand-built)",
        }
    }

    /// The id of the card's prediction in the chapter's content.
    pub fn predict_id(self) -> String {
        format!("critique-{}", self.key())
    }

    fn choices() -> Vec<(&'static str, Card)> {
        Card::ALL.iter().map(|&c| (c.key(), c)).collect()
    }
}

/// The lab's state in the URL: the card a link points at (scrolled to and outlined), if any.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CritiquesState {
    pub card: Option<Card>,
}

impl UrlState for CritiquesState {
    fn read(r: &mut Reader) -> Self {
        CritiquesState { card: r.optional_choice("card", &Card::choices()) }
    }

    fn write(&self, w: &mut Writer) {
        w.optional_text("card", self.card.map(Card::key));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Card 1: attention against patching, on the glassbox model

/// The seed of the glassbox card's sequences: the one its `training.json` figures use.
pub const GLASSBOX_SEED: u64 = glassbox::SEED;

/// One head of the glassbox model: what its attention pattern looks like, what patching says it does, and
/// what it was built to do.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadFinding {
    pub layer: usize,
    pub head: usize,
    /// The detector scores of its pattern on the clean sequence.
    pub scores: HeadScores,
    /// Share of the clean logit difference lost when this head's output alone comes from the corrupted run
    /// (noising: 1 − the normalised logit difference), in [0, 1] or a little outside.
    pub lost: f32,
    /// What the head was built to do.
    pub role: Role,
}

impl HeadFinding {
    /// The pattern's most telling score: its name and value.
    pub fn pattern(&self) -> (&'static str, f32) {
        let s = self.scores;
        [("previous-token", s.previous_token), ("induction", s.induction), ("duplicate-token", s.duplicate_token)]
            .into_iter()
            .fold(("none", 0.0), |best, (n, v)| if v > best.1 { (n, v) } else { best })
    }

    /// A sharp pattern: one detector scores at least 0.5.
    pub fn looks_busy(&self) -> bool {
        self.pattern().1 >= 0.5
    }

    /// Patching finds it matters: it loses at least a fifth of the answer.
    pub fn matters(&self) -> bool {
        self.lost >= 0.2
    }

    /// The head as the labs name it.
    pub fn name(&self) -> String {
        format!("L{}H{}", self.layer, self.head)
    }
}

/// The clean sequence's head scores and the noising result: one finding per head, layer by layer.
pub fn head_findings(model: &Transformer, clean: &[u32], noising: &PatchResult) -> Result<Vec<HeadFinding>, LensError> {
    let (_, cache) = model.run_with_cache(clean)?;
    let lost = noising.grid(Metric::LogitDiff)?.rows();
    let mut out = Vec::new();
    for (layer, roles) in ROLES.iter().enumerate() {
        for (head, &role) in roles.iter().enumerate() {
            let scores = head_scores(&cache.pattern(layer, head, 0)?, clean);
            out.push(HeadFinding { layer, head, scores, lost: 1.0 - lost[layer][head], role });
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------
// Card 2: one patching experiment, two metrics, two directions (IOI model)

/// One head under head-output patching, read four ways.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricRow {
    pub layer: usize,
    pub head: usize,
    /// Denoising (clean head into the corrupted run), normalised logit difference: 1 = fully restored.
    pub denoise_ld: f32,
    /// Denoising, the answer's probability.
    pub denoise_prob: f32,
    /// Noising (corrupted head into the clean run), normalised logit difference: 0 = fully broken.
    pub noise_ld: f32,
    /// Noising, the answer's probability.
    pub noise_prob: f32,
}

/// Every head's four readings, from a denoising and a noising head-output sweep of the same prompts.
pub fn metric_rows(denoising: &PatchResult, noising: &PatchResult) -> Result<Vec<MetricRow>, LensError> {
    let grid = |r: &PatchResult, m: Metric| r.grid(m).map(|g| g.rows());
    let (dl, dp) = (grid(denoising, Metric::LogitDiff)?, grid(denoising, Metric::AnswerProb)?);
    let (nl, np) = (grid(noising, Metric::LogitDiff)?, grid(noising, Metric::AnswerProb)?);
    let mut out = Vec::new();
    for layer in 0..dl.len() {
        for head in 0..dl[layer].len() {
            out.push(MetricRow {
                layer,
                head,
                denoise_ld: dl[layer][head],
                denoise_prob: dp[layer][head],
                noise_ld: nl[layer][head],
                noise_prob: np[layer][head],
            });
        }
    }
    Ok(out)
}

/// The head that each reading ranks first: the largest effect (denoising: the highest value; noising: the
/// lowest, i.e. the most broken). In the order denoise_ld, denoise_prob, noise_ld, noise_prob.
pub fn top_heads(rows: &[MetricRow]) -> [(usize, usize); 4] {
    let best = |key: &dyn Fn(&MetricRow) -> f32| {
        let r = rows.iter().max_by(|a, b| key(a).total_cmp(&key(b))).expect("a model has heads");
        (r.layer, r.head)
    };
    [best(&|r| r.denoise_ld), best(&|r| r.denoise_prob), best(&|r| -r.noise_ld), best(&|r| -r.noise_prob)]
}

// ---------------------------------------------------------------------------------------------------------
// Card 3: a probe on a random network

/// The probe card's concept: whether the current character is a letter. On a random network its probe beats
/// the majority baseline by 20 points (`tests/critiques.rs`); "space next" gains only 2, "vowel next" 5.
pub const PROBE_CONCEPT: crate::lens::methods::probe::BuiltinConcept =
    crate::lens::methods::probe::BuiltinConcept::InsideWord;

/// The seed of the random network (the same shape as the Moby-Dick model, never trained): the probing
/// settings' own, as `tests/critiques.rs` measures it.
pub const RANDOM_SEED: u64 = 1;

/// How many labelled positions of the held-out text the card probes on: half the 9.2.3 lab's, so that
/// recording both networks and training both sets of probes fits the card's 3 s.
pub const PROBE_POSITIONS: usize = 2500;

/// One layer's test accuracies: the random network's probe and the trained model's, each on the concept and
/// on its control task (Hewitt & Liang 2019: a fixed random label per character, `probe::control_task_labels`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeRow {
    pub layer: usize,
    pub random: f32,
    pub trained: f32,
    pub random_control: f32,
    pub trained_control: f32,
}

impl ProbeRow {
    /// The random network's selectivity: accuracy on the concept minus accuracy on its control task.
    pub fn random_selectivity(&self) -> f32 {
        self.random - self.random_control
    }

    /// The trained model's selectivity.
    pub fn trained_selectivity(&self) -> f32 {
        self.trained - self.trained_control
    }
}

/// The four reports side by side, layer by layer (`probe::selectivity` pairs each concept's layers with its
/// control's), and the majority baseline both concept probes must beat.
pub fn probe_rows(
    random: &ProbeReport,
    trained: &ProbeReport,
    random_control: &ProbeReport,
    trained_control: &ProbeReport,
) -> (Vec<ProbeRow>, f32) {
    let sel_random = selectivity(random, random_control);
    let sel_trained = selectivity(trained, trained_control);
    let rows = random
        .layers
        .iter()
        .zip(&trained.layers)
        .filter_map(|(r, t)| {
            let sr = sel_random.iter().find(|s| s.0 == r.layer)?.1;
            let st = sel_trained.iter().find(|s| s.0 == t.layer)?.1;
            Some(ProbeRow {
                layer: r.layer,
                random: r.test_accuracy,
                trained: t.test_accuracy,
                random_control: r.test_accuracy - sr,
                trained_control: t.test_accuracy - st,
            })
        })
        .collect();
    (rows, random.baseline)
}

/// The random network's best margin over the majority baseline, in percentage points.
pub fn random_margin(rows: &[ProbeRow], baseline: f32) -> f32 {
    100.0 * (rows.iter().map(|r| r.random).fold(0.0, f32::max) - baseline)
}

/// Each network's best selectivity over the layers, in percentage points: (random, trained).
pub fn best_selectivity(rows: &[ProbeRow]) -> (f32, f32) {
    let best = |f: fn(&ProbeRow) -> f32| 100.0 * rows.iter().map(f).fold(f32::NEG_INFINITY, f32::max);
    (best(ProbeRow::random_selectivity), best(ProbeRow::trained_selectivity))
}

/// The probe card's experiment in one go, as the page runs it in slices (its positions, its seed, no shuffled
/// control, the control task from the probing settings' seed): the reports of the random network and the
/// trained model, on the concept and on its control task, in that order. For the native and in-browser tests.
pub fn probe_card_reports(
    model: &Transformer,
    vocab: &crate::lens::gpt2::text::CharVocab,
    text: &str,
) -> Result<[ProbeReport; 4], LensError> {
    use crate::lens::methods::probe::{
        probe_control_task, probe_recorded, random_model, record_probe_data, Concept, ProbeSettings,
    };
    let settings = ProbeSettings { positions: PROBE_POSITIONS, shuffled_control: false, ..ProbeSettings::default() };
    let concept = Concept::Builtin(PROBE_CONCEPT);
    let reports = |m: &Transformer| -> Result<(ProbeReport, ProbeReport), LensError> {
        let data = record_probe_data(m, vocab, text, &settings)?;
        Ok((probe_recorded(&data, &concept, &settings)?, probe_control_task(&data, &concept, &settings)?))
    };
    let (random, random_control) = reports(&random_model(&model.cfg, RANDOM_SEED)?)?;
    let (trained, trained_control) = reports(model)?;
    Ok([random, random_control, trained, trained_control])
}

// ---------------------------------------------------------------------------------------------------------
// Card 4: the saliency sanity check

/// How many of the shipped MNIST samples the saliency card averages over, and the randomisation's seed (what
/// `tests/critiques.rs` measures).
pub const SALIENCY_IMAGES: usize = 8;
pub const SALIENCY_SEED: u64 = 5;

/// One level of the cascade: the deepest layer randomised so far (from the top down) and each method's mean
/// rank correlation with its map on the trained model.
#[derive(Clone, Debug, PartialEq)]
pub struct SaliencyRow {
    pub level: String,
    pub gradient: f32,
    pub gradient_x_input: f32,
}

/// Accumulates one image's correlations (`SanityCorrelations::correlations`) into the running means.
pub fn add_correlations(means: &mut Vec<(String, f32)>, levels: &[(String, f32)], images: usize) {
    if means.is_empty() {
        means.extend(levels.iter().map(|(n, _)| (n.clone(), 0.0)));
    }
    for ((_, sum), (_, r)) in means.iter_mut().zip(levels) {
        *sum += r / images as f32;
    }
}

/// Both methods' means side by side, level by level.
pub fn saliency_rows(gradient: &[(String, f32)], gradient_x_input: &[(String, f32)]) -> Vec<SaliencyRow> {
    gradient
        .iter()
        .zip(gradient_x_input)
        .map(|((level, g), (_, gx))| SaliencyRow { level: level.clone(), gradient: *g, gradient_x_input: *gx })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// Card 3: ACDC with two metrics (IOI model)

/// The thresholds at which both metrics keep about a dozen edges of the IOI model's 193 on the chapter's
/// sentence (`tests/critiques_acdc.rs`): KL divergence in nats (the 9.4 lab's default), logit difference in
/// logits.
pub const ACDC_RUNS: [(AcdcMetric, f32); 2] = [(AcdcMetric::Kl, 0.01), (AcdcMetric::LogitDiff, 0.1)];

/// One ACDC run as the card shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct AcdcFinding {
    pub metric: AcdcMetric,
    pub tau: f32,
    pub edges: usize,
    /// The heads with a path to the logits, as the labs name them (`L1H3`), in forward order.
    pub heads: Vec<String>,
    /// KL(clean ‖ circuit) at the answer's position, nats, and the normalised logit difference.
    pub kl: f32,
    pub logit_diff: Option<f32>,
    /// The kept edges as ACDC names them (`a0.3 -> logits`), sorted.
    pub edge_names: Vec<String>,
}

impl AcdcFinding {
    pub fn of(c: &Circuit) -> AcdcFinding {
        let heads = c
            .nodes
            .iter()
            .filter_map(|n| match *n {
                Node::Head { layer, head } => Some(format!("L{layer}H{head}")),
                _ => None,
            })
            .collect();
        let mut edge_names: Vec<String> = c.edges.iter().map(|e| format!("{} -> {}", e.sender, e.receiver)).collect();
        edge_names.sort();
        AcdcFinding {
            metric: c.metric,
            tau: c.tau,
            edges: c.edges.len(),
            heads,
            kl: c.kl,
            logit_diff: c.logit_diff,
            edge_names,
        }
    }
}

/// The thresholds the card also sweeps, per metric, from low to high; each list holds its metric's `ACDC_RUNS`
/// τ. Every run keeps fewer edges as τ rises (`tests/critiques_acdc_tau.rs` pins the counts).
pub const ACDC_TAUS: [(AcdcMetric, [f32; 3]); 2] =
    [(AcdcMetric::Kl, [0.001, 0.01, 0.05]), (AcdcMetric::LogitDiff, [0.03, 0.1, 0.5])];

/// Every run the card makes, in order: each metric's thresholds from low to high.
pub fn acdc_runs() -> Vec<(AcdcMetric, f32)> {
    ACDC_TAUS.iter().flat_map(|(m, taus)| taus.iter().map(move |&t| (*m, t))).collect()
}

/// The two runs the metric comparison reads (`ACDC_RUNS`), out of the sweep's findings.
pub fn metric_pair(runs: &[AcdcFinding]) -> Option<[&AcdcFinding; 2]> {
    let find = |(m, t): (AcdcMetric, f32)| runs.iter().find(|r| r.metric == m && r.tau == t);
    Some([find(ACDC_RUNS[0])?, find(ACDC_RUNS[1])?])
}

/// What changes from one threshold to the next higher one of the same metric.
#[derive(Clone, Debug, PartialEq)]
pub struct TauStep {
    pub metric: AcdcMetric,
    pub from: f32,
    pub to: f32,
    /// Edges kept at `from` and gone at `to`, and the other way round (ACDC is greedy, so a higher τ can keep an
    /// edge the lower one dropped).
    pub dropped: Vec<String>,
    pub added: Vec<String>,
}

/// The steps between consecutive thresholds of each metric, in the order of `runs`.
pub fn tau_steps(runs: &[AcdcFinding]) -> Vec<TauStep> {
    runs.windows(2)
        .filter(|w| w[0].metric == w[1].metric)
        .map(|w| {
            let only = |a: &AcdcFinding, b: &AcdcFinding| {
                a.edge_names.iter().filter(|e| !b.edge_names.contains(e)).cloned().collect()
            };
            TauStep {
                metric: w[0].metric,
                from: w[0].tau,
                to: w[1].tau,
                dropped: only(&w[0], &w[1]),
                added: only(&w[1], &w[0]),
            }
        })
        .collect()
}

/// The heads only one of two runs keeps: (only in `a`, only in `b`).
pub fn head_difference(a: &AcdcFinding, b: &AcdcFinding) -> (Vec<String>, Vec<String>) {
    let only = |x: &AcdcFinding, y: &AcdcFinding| x.heads.iter().filter(|h| !y.heads.contains(h)).cloned().collect();
    (only(a, b), only(b, a))
}

// ---------------------------------------------------------------------------------------------------------
// Card 7: steering swept over its coefficient

/// The pair the sweep steers with: the steering lab's default ("SHOUTING minus quiet", after block 0).
pub fn steering_pair() -> &'static SteeringPair {
    &PAIRS[0]
}

/// The sweep's settings: the engine's defaults (coefficients 0 to 2, 120 characters each, seeded), which
/// `tests/critiques.rs` measures.
pub fn sweep_settings() -> SweepSettings {
    SweepSettings::default()
}

// ---------------------------------------------------------------------------------------------------------
// Card 5: the tuned lens

/// The tuned lens's settings for the card: the engine's defaults (400 seeded minibatch steps over about 2,400
/// positions of held-out text), which `tests/tuned_lens.rs` measures.
pub fn tuned_lens_settings() -> crate::lens::methods::tuned_lens::TunedLensSettings {
    crate::lens::methods::tuned_lens::TunedLensSettings::default()
}

/// A residual layer's name as the language labs print it.
pub fn layer_name(layer: usize) -> String {
    if layer == 0 {
        "embed".into()
    } else {
        format!("after block {}", layer - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::predict;
    use crate::lens::methods::glassbox::patch_input;
    use crate::lens::methods::patching::{activation_patching, Direction, Target};

    #[test]
    fn every_card_has_its_question_in_the_chapter() {
        for c in Card::ALL {
            let p =
                predict(&c.predict_id()).unwrap_or_else(|| panic!("no `:::card {}` in content/9.5.md", c.predict_id()));
            assert!(p.in_lab && p.section == "9.5", "{}", p.id);
        }
    }

    #[test]
    fn a_link_names_one_card_and_a_bad_one_is_reported() {
        for c in Card::ALL {
            let s = CritiquesState { card: Some(c) };
            assert_eq!(CritiquesState::from_query(&s.to_query()), (s, vec![]));
        }
        let (s, problems) = CritiquesState::from_query(&[("card".into(), "nope".into())]);
        assert_eq!(s, CritiquesState::default());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().contains(
            "“card=nope” is not one of attention, metric, acdc-metric, random-probe, saliency, tuned-lens, steering, \
             sae-gap, sae-latent, sae-l1, polysemantic, scorecard"
        ));
    }

    /// The glassbox card finds what the model was built to do: every head's pattern is sharp, and only the
    /// previous-token and induction heads matter under patching.
    #[test]
    fn the_glassbox_card_shows_busy_heads_that_do_nothing() {
        let model = glassbox::model().unwrap();
        let input = patch_input(glassbox::PATCH_HALF, GLASSBOX_SEED);
        let noising = activation_patching(&model, &input, Target::HeadOut, Direction::Noising).unwrap();
        let found = head_findings(&model, &input.clean, &noising).unwrap();
        assert_eq!(found.len(), 4);
        for f in &found {
            assert_eq!(f.matters(), f.role.in_circuit(), "{}: lost {}", f.name(), f.lost);
        }
        let decoy = found.iter().find(|f| f.role == Role::DuplicateTokenDecoy).unwrap();
        assert!(decoy.looks_busy() && decoy.pattern().0 == "duplicate-token", "{:?}", decoy.scores);
        assert!(decoy.lost.abs() < 1e-3, "{}", decoy.lost);
        let induction = found.iter().find(|f| f.role == Role::Induction).unwrap();
        assert!((induction.lost - 1.0).abs() < 1e-3 && induction.pattern().0 == "induction");
    }

    fn ioi() -> (Transformer, crate::lens::methods::patching::PatchInput) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/ioi");
        let read = |f: &str| std::fs::read(format!("{dir}/{f}")).unwrap();
        let model =
            Transformer::from_bytes(&String::from_utf8(read("config.json")).unwrap(), &read("model.safetensors"));
        let vocab =
            crate::lens::gpt2::vocab::Vocab::from_json(&String::from_utf8(read("vocab.json")).unwrap()).unwrap();
        (model.unwrap(), crate::lens::methods::ioi::chapter_input(&vocab).unwrap())
    }

    #[test]
    fn the_metric_card_on_the_ioi_model() {
        let (model, input) = ioi();
        let sweep = |d| activation_patching(&model, &input, Target::HeadOut, d).unwrap();
        let rows = metric_rows(&sweep(Direction::Denoising), &sweep(Direction::Noising)).unwrap();
        for r in &rows {
            eprintln!(
                "L{}H{}: denoise ld {:.3} p {:.3} | noise ld {:.3} p {:.3}",
                r.layer, r.head, r.denoise_ld, r.denoise_prob, r.noise_ld, r.noise_prob
            );
        }
        // What the card's reveal says: L0H3 leads three readings, but noising read by probability names L1H1,
        // which the logit difference calls harmless; L1H3 restores most of the logit difference and none of
        // the probability.
        assert_eq!(top_heads(&rows), [(0, 3), (0, 3), (0, 3), (1, 1)]);
        let head = |l, h| rows.iter().find(|r| (r.layer, r.head) == (l, h)).unwrap();
        assert!(head(1, 1).noise_ld > 0.95 && head(1, 1).noise_prob < 0.01, "{:?}", head(1, 1));
        assert!(head(1, 3).denoise_ld > 0.6 && head(1, 3).denoise_prob < 0.01, "{:?}", head(1, 3));
    }

    #[test]
    fn saliency_means_average_each_level_over_the_images() {
        let mut means = Vec::new();
        add_correlations(&mut means, &[("fc".into(), 0.5), ("conv3".into(), 0.2)], 2);
        add_correlations(&mut means, &[("fc".into(), 0.3), ("conv3".into(), 0.0)], 2);
        assert_eq!(means, vec![("fc".to_string(), 0.4), ("conv3".to_string(), 0.1)]);
        let rows = saliency_rows(&means, &[("fc".into(), 0.9), ("conv3".into(), 0.8)]);
        assert_eq!(rows[1], SaliencyRow { level: "conv3".into(), gradient: 0.1, gradient_x_input: 0.8 });
        assert_eq!((layer_name(0), layer_name(3)), ("embed".to_string(), "after block 2".to_string()));
    }

    #[test]
    fn the_acdc_card_finds_different_heads_with_each_metric() {
        let (model, input) = ioi();
        let found: Vec<AcdcFinding> = ACDC_RUNS
            .iter()
            .map(|&(metric, tau)| {
                let positions = crate::lens::methods::acdc::KlPositions::Last;
                let mut run =
                    crate::lens::methods::acdc::AcdcRun::with_metric(&model, &input, tau, positions, metric).unwrap();
                while run.step().unwrap() != crate::lens::methods::acdc::AcdcEvent::Finished {}
                AcdcFinding::of(&run.finish().unwrap())
            })
            .collect();
        // What the card's reveal says: about a dozen edges each, four heads in common, L1H1 only by KL and
        // two layer-2 heads only by the logit difference.
        assert_eq!((found[0].edges, found[1].edges), (14, 12));
        let (kl_only, ld_only) = head_difference(&found[0], &found[1]);
        assert_eq!((kl_only, ld_only), (vec!["L1H1".to_string()], vec!["L2H0".to_string(), "L2H2".to_string()]));
        assert!(found[1].kl > 5.0 && found[0].kl < 0.01, "{} {}", found[0].kl, found[1].kl);
    }

    /// The probe card as the page runs it (its positions, its seed, no shuffled control, the control task from
    /// the probing settings' seed): the random network's probe beats the majority baseline by at least ten
    /// points and does about as well as the trained model's, while its selectivity is far lower.
    #[test]
    fn the_probe_card_finds_letters_in_a_random_network() {
        use crate::lens::gpt2::text::{CharVocab, HELD_OUT_FILE};
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/moby");
        let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).unwrap();
        let weights = std::fs::read(format!("{dir}/model.safetensors")).unwrap();
        let model = Transformer::from_bytes(&read("config.json"), &weights).unwrap();
        let vocab = CharVocab::from_json(&read("vocab.json")).unwrap();
        let [random, random_control, trained, trained_control] =
            probe_card_reports(&model, &vocab, &read(HELD_OUT_FILE)).unwrap();
        let (rows, baseline) = probe_rows(&random, &trained, &random_control, &trained_control);
        let margin = random_margin(&rows, baseline);
        let best_trained = rows.iter().map(|r| r.trained).fold(0.0, f32::max);
        let (sel_random, sel_trained) = best_selectivity(&rows);
        eprintln!("baseline {baseline:.3}, random margin {margin:.1} points, selectivity {sel_random:.1} / {sel_trained:.1} points, {rows:?}");
        assert!(margin >= 10.0 && best_trained >= 0.97, "margin {margin}, trained {best_trained}");
        assert!(rows.iter().map(|r| r.random).fold(0.0, f32::max) > best_trained - 0.03);
        // Selectivity: the rows are the engine's (`probe::selectivity`), and the trained model's is markedly higher.
        for (r, (layer, s)) in rows.iter().zip(crate::lens::methods::probe::selectivity(&trained, &trained_control)) {
            assert_eq!((r.layer, r.trained_selectivity()), (layer, s));
        }
        // Measured: the random network's probe is no more selective than memorising characters at any layer
        // (−0.6 points at best: its control task scores 99.4 to 99.8%), the trained model's gains with depth
        // (0.2 points at the embedding, where both are a lookup of the character, up to 5.7 after block 2).
        assert!(sel_random <= 0.5 && sel_trained >= sel_random + 5.0, "selectivity {sel_random} / {sel_trained}");
        assert!(rows.iter().all(|r| r.random_selectivity() <= 0.005), "{rows:?}");
        assert!(rows[0].trained_selectivity().abs() < 0.01 && rows[3].trained_selectivity() > 0.04, "{rows:?}");
        // The reveal's figures: the random network's control at 99.4% or more everywhere; the trained model's
        // from block 0 on about 95% (94 to 97%) while its concept stays at 100% (rounded).
        assert!(rows.iter().all(|r| r.random_control >= 0.994), "{rows:?}");
        assert!(rows[1..].iter().all(|r| (0.94..0.97).contains(&r.trained_control) && r.trained >= 0.995), "{rows:?}");
    }

    #[test]
    fn top_heads_rank_by_effect() {
        let row = |layer, head, v: f32| MetricRow {
            layer,
            head,
            denoise_ld: v,
            denoise_prob: 1.0 - v,
            noise_ld: v,
            noise_prob: 1.0 - v,
        };
        let rows = [row(0, 0, 0.2), row(0, 1, 0.9)];
        assert_eq!(top_heads(&rows), [(0, 1), (0, 0), (0, 0), (0, 1)]);
    }
}
