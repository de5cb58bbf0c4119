//! The ACDC lab (9.4): automatic circuit discovery on the IOI model (the chapter's sentence against its ABC
//! corruption, both names replaced) or on the induction model (a repeated random sequence against another one),
//! with the pruning drawn edge by edge and the threshold τ on a log-scale slider. Its URL state: the model, τ,
//! the two IOI prompts and the induction sequences' seed. The plain rules live here: the prompts' checks, the
//! slider's scale, the pruning's record for the animation, the heads' names and links; `layout.rs` places the
//! graph.
use std::collections::{HashSet, VecDeque};

use crate::app::core::export::{DataTable, Datum};
use crate::app::core::models::TaskModel;
use crate::app::core::url::{section_hash_with, Reader, UrlState, Writer};
use crate::lens::gpt2::vocab::{Tokenized, Vocab};
use crate::lens::methods::acdc::{AcdcEvent, AcdcGraph, Circuit, Edge, KlPositions, Node};
use crate::lens::methods::induction::TaskSpec;
use crate::lens::methods::ioi::{CHAPTER_CORRUPTED, CHAPTER_PROMPT, NAMES};
use crate::lens::methods::patching::PatchInput;
use crate::lens::rng::Rng;

pub mod layout;
#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::AcdcLab;

/// The corrupted prompt the lab opens on: the chapter's sentence with both names replaced.
pub const DEFAULT_CORRUPTED: &str = CHAPTER_CORRUPTED;
/// The longest prompt a link carries.
pub const MAX_PROMPT: usize = 400;
/// The induction sequences: `<bos>` + `INDUCTION_LEN` random words, then the same again (63 of the model's 64
/// positions), as the engine's tests recover the induction circuit.
pub const INDUCTION_LEN: usize = 31;
pub const DEFAULT_SEED: u64 = 1;
/// The slider's range in log10 τ, and its step.
pub const LOG_TAU_MIN: f32 = -4.0;
pub const LOG_TAU_MAX: f32 = 0.0;
pub const LOG_TAU_STEP: f32 = 0.25;
/// How many tried edges the side list shows.
pub const LOG_LEN: usize = 8;

/// The threshold a model opens at: a circuit of a dozen or two edges that keeps the clean behaviour.
pub fn default_tau(model: TaskModel) -> f32 {
    match model {
        TaskModel::Ioi => 0.01,
        TaskModel::Induction => 0.032,
    }
}

/// Where the KL is measured: the IOI answer's position, or the repeated half, where induction predicts.
pub fn kl_positions(model: TaskModel) -> KlPositions {
    match model {
        TaskModel::Ioi => KlPositions::Last,
        TaskModel::Induction => KlPositions::From(INDUCTION_LEN + 1),
    }
}

/// The threshold an opened model starts at (its KL is measured at the last position, as on the IOI model).
pub const OWN_TAU: f32 = 0.01;
/// The prompts an opened model starts from: a sentence of the IOI kind, and the same with both names replaced by
/// names of the same length (so a character-level model reads as many tokens in each).
pub const OWN_CLEAN: &str = "When Mary and John went to the store, John gave a drink to";
pub const OWN_CORRUPTED: &str = "When Anna and Paul went to the store, Paul gave a drink to";
/// The most edges ACDC tries on an opened model: each is a pass from its receiver on, so a run is seconds for
/// the shipped IOI model's 193 and hours for GPT-2 small's graph (tens of thousands, each a pass through up to
/// twelve of its blocks).
pub const MAX_OWN_EDGES: usize = 3000;

/// `model` in a link: a task model, or the model opened in this tab (`None`).
const MODEL_KEYS: &[(&str, Option<TaskModel>)] =
    &[("ioi", Some(TaskModel::Ioi)), ("induction", Some(TaskModel::Induction)), ("own", None)];

#[derive(Clone, Debug, PartialEq)]
pub struct AcdcState {
    /// On the model opened in this tab (URL `model=own`): its prompts are typed and cut by its tokenizer, and
    /// `which` is not used.
    pub own: bool,
    pub which: TaskModel,
    pub tau: f32,
    pub clean: String,
    pub corrupted: String,
    pub seed: u64,
    /// Draw the run one edge per frame (a few seconds), or as fast as it goes.
    pub watch: bool,
}

impl Default for AcdcState {
    fn default() -> Self {
        AcdcState {
            own: false,
            which: TaskModel::Ioi,
            tau: default_tau(TaskModel::Ioi),
            clean: CHAPTER_PROMPT.into(),
            corrupted: DEFAULT_CORRUPTED.into(),
            seed: DEFAULT_SEED,
            watch: true,
        }
    }
}

impl AcdcState {
    /// The state an opened model starts from.
    pub fn own_default() -> Self {
        AcdcState {
            own: true,
            tau: OWN_TAU,
            clean: OWN_CLEAN.into(),
            corrupted: OWN_CORRUPTED.into(),
            ..Self::default()
        }
    }

    /// The threshold and prompts the lab's model starts from.
    fn defaults(&self) -> (f32, &'static str, &'static str) {
        if self.own {
            (OWN_TAU, OWN_CLEAN, OWN_CORRUPTED)
        } else {
            (default_tau(self.which), CHAPTER_PROMPT, DEFAULT_CORRUPTED)
        }
    }
}

impl UrlState for AcdcState {
    fn read(r: &mut Reader) -> Self {
        let picked = r.choice("model", Some(TaskModel::Ioi), MODEL_KEYS);
        let mut s = match picked {
            Some(which) => AcdcState { which, ..Self::default() },
            None => Self::own_default(),
        };
        let (tau, clean, corrupted) = s.defaults();
        let tau_range = 10f32.powf(LOG_TAU_MIN)..=10f32.powf(LOG_TAU_MAX);
        s.tau = r.number("tau", tau, tau_range);
        s.clean = r.text("clean", clean, MAX_PROMPT);
        s.corrupted = r.text("corrupt", corrupted, MAX_PROMPT);
        s.seed = r.number("seed", DEFAULT_SEED, 0..=u64::MAX);
        s.watch = r.flag("watch", true);
        s
    }

    fn write(&self, w: &mut Writer) {
        let (tau, clean, corrupted) = self.defaults();
        w.choice("model", (!self.own).then_some(self.which), Some(TaskModel::Ioi), MODEL_KEYS);
        w.number("tau", self.tau, tau);
        w.text("clean", &self.clean, clean);
        w.text("corrupt", &self.corrupted, corrupted);
        w.number("seed", self.seed, DEFAULT_SEED);
        w.flag("watch", self.watch, true);
    }
}

/// An opened model's prompts, as its tokenizer cut them, checked before any work so that a bad pair keeps the
/// last graph: the same number of tokens, not the same, and a graph ACDC can get through (`MAX_OWN_EDGES`).
pub fn check_own_prompts(clean: &[u32], corrupted: &[u32], edges: usize) -> Result<(), String> {
    if edges > MAX_OWN_EDGES {
        return Err(format!(
            "This model's graph has {edges} edges. ACDC tries them one at a time, each with a pass through the \
             rest of the model, so the lab runs it on graphs of up to {MAX_OWN_EDGES} edges (the shipped IOI \
             model's has 193): try attribution patching (9.3.1), which estimates every head's effect in one pass."
        ));
    }
    if clean.len() != corrupted.len() {
        return Err(format!(
            "The clean prompt is {} tokens and the corrupted one {}: ACDC swaps activations position by position, \
             so both need the same number of tokens.",
            clean.len(),
            corrupted.len()
        ));
    }
    if clean == corrupted {
        return Err("The two prompts are the same tokens: change something in the corrupted one.".into());
    }
    Ok(())
}

/// The slider's position (log10 τ) for a threshold.
pub fn slider_of_tau(tau: f32) -> f32 {
    tau.log10().clamp(LOG_TAU_MIN, LOG_TAU_MAX)
}

/// The threshold at a slider position, to two significant digits (so the link reads `tau=0.018`).
pub fn tau_of_slider(log_tau: f32) -> f32 {
    let tau = 10f32.powf(log_tau.clamp(LOG_TAU_MIN, LOG_TAU_MAX));
    format!("{tau:.1e}").parse().unwrap_or(tau)
}

/// τ as the lab prints it.
pub fn tau_text(tau: f32) -> String {
    if tau >= 0.01 {
        format!("{tau}")
    } else {
        format!("{tau:.1e}")
    }
}

/// A prompt as the IOI model reads it, or the message naming the first unknown word.
fn encode(vocab: &Vocab, text: &str, which: &str) -> Result<Vec<u32>, String> {
    match vocab.encode(text) {
        Tokenized::Ok(t) if t.len() > 1 => Ok(t),
        Tokenized::Ok(_) => Err(format!("The {which} prompt is empty: type a sentence.")),
        Tokenized::Unknown(words) => {
            let hint = vocab.suggestions(&words[0], 4);
            let hint =
                if hint.is_empty() { String::new() } else { format!(" Known words like it: {}.", hint.join(", ")) };
            Err(format!(
                "“{}” in the {which} prompt is not in the IOI model's vocabulary of {} words.{hint}",
                words[0],
                vocab.len() - 1
            ))
        }
    }
}

/// The IOI prompts as patching's input, checked before any work so that a bad one keeps the last graph: known
/// words, the same length, not the same, at most `n_positions` tokens, and a clean prompt with two names, one
/// said once (the answer, the indirect object) and one more often (the subject, the wrong answer).
pub fn ioi_input(vocab: &Vocab, n_positions: usize, clean: &str, corrupted: &str) -> Result<PatchInput, String> {
    let c = encode(vocab, clean, "clean")?;
    let x = encode(vocab, corrupted, "corrupted")?;
    if c.len() > n_positions {
        return Err(format!(
            "The clean prompt has {} words; the model reads at most {}.",
            c.len() - 1,
            n_positions - 1
        ));
    }
    if c.len() != x.len() {
        return Err(format!(
            "The clean prompt has {} words and the corrupted one {}: ACDC swaps activations position by position, \
             so both need the same number of words (punctuation counts as a word).",
            c.len() - 1,
            x.len() - 1
        ));
    }
    if c == x {
        return Err("The two prompts are the same: change the names in the corrupted one.".into());
    }
    let names: Vec<u32> = NAMES.iter().filter_map(|n| vocab.id(n)).collect();
    let count = |t: u32| c.iter().filter(|&&u| u == t).count();
    let in_clean: Vec<u32> = names.into_iter().filter(|&t| count(t) > 0).collect();
    let once: Vec<u32> = in_clean.iter().copied().filter(|&t| count(t) == 1).collect();
    let more: Vec<u32> = in_clean.iter().copied().filter(|&t| count(t) > 1).collect();
    match (once.as_slice(), more.as_slice()) {
        (&[io], &[s]) => Ok(PatchInput::new(c, x, io, s)),
        _ => Err("The clean prompt needs two names, one said once (the answer) and one said twice, like the \
                  chapter's sentence."
            .into()),
    }
}

/// The induction task: a repeated random sequence (clean) against another one (corrupted), both drawn from
/// `seed`; the answer at the last position is what induction predicts there (the repeat's next word).
pub fn induction_input(vocab_size: usize, n_positions: usize, seed: u64) -> PatchInput {
    let spec = TaskSpec::new(vocab_size, n_positions);
    let mut rng = Rng::new(seed);
    let clean = spec.repeated_sequence(&mut rng, INDUCTION_LEN);
    let corrupted = spec.repeated_sequence(&mut rng, INDUCTION_LEN);
    PatchInput::new(clean.clone(), corrupted, clean[1], clean[2])
}

/// A head as the attention and patching labs name it.
pub fn head_name(layer: usize, head: usize) -> String {
    format!("L{layer}H{head}")
}

/// Where a head of the circuit is shown on its own, on the prompts ACDC ran on (`clean`, `corrupted`: as typed,
/// or the induction sequences' words): its attention pattern in the attention lab, and the patching lab's
/// head-output map with its cell selected, so patching can check what ACDC kept. Keys a lab would read as its
/// default (the IOI model, the chapter's sentence) are left out, so the links stay short.
pub fn head_links(model: TaskModel, layer: usize, head: usize, clean: &str, corrupted: &str) -> HeadLinks {
    let pair = |k: &str, v: String| (k.to_string(), v);
    let mut pattern = Vec::new();
    if model != TaskModel::Induction {
        pattern.push(pair("model", model.folder().into()));
    }
    pattern.extend([pair("seq", clean.into()), pair("layer", layer.to_string()), pair("head", head.to_string())]);
    let mut patching = Vec::new();
    if model != TaskModel::Ioi {
        patching.push(pair("model", model.folder().into()));
    }
    if !(model == TaskModel::Ioi && clean == CHAPTER_PROMPT) {
        patching.push(pair("clean", clean.into()));
    }
    patching.extend([
        pair("corr", "typed".into()),
        pair("corrupted", corrupted.into()),
        pair("target", "head_out".into()),
        pair("cell", format!("{layer}.{head}")),
    ]);
    HeadLinks { pattern: section_hash_with("attention", &pattern), patching: section_hash_with("9.3.1", &patching) }
}

/// The two links of `head_links`.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadLinks {
    pub pattern: String,
    pub patching: String,
}

/// What happened to an edge so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeStatus {
    Untried,
    /// Tried, and its removal raised the KL by more than τ.
    Kept,
    /// Tried and removed.
    Removed,
    /// Removed untried: its receiver fed nothing left.
    Skipped,
}

/// One tried edge, for the side list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tried {
    pub edge: Edge,
    pub kl_before: f32,
    pub kl_after: f32,
    pub kept: bool,
}

/// The pruning so far, as the animation draws it: each edge's status in ACDC's order, the edge tried next, and
/// the last tried edges (newest first).
#[derive(Clone, Debug, PartialEq)]
pub struct Pruning {
    pub graph: AcdcGraph,
    pub edges: Vec<Edge>,
    pub status: Vec<EdgeStatus>,
    /// The index of the next edge to decide (`edges.len()` at the end).
    pub next: usize,
    pub log: VecDeque<Tried>,
}

impl Pruning {
    pub fn new(graph: AcdcGraph) -> Self {
        let edges = graph.edges();
        Pruning { graph, status: vec![EdgeStatus::Untried; edges.len()], edges, next: 0, log: VecDeque::new() }
    }

    /// Records one step of the run; steps come in the run's order, the order of `edges`.
    pub fn apply(&mut self, event: &AcdcEvent) {
        match *event {
            AcdcEvent::EdgeTried { sender, receiver, before: kl_before, after: kl_after, kept } => {
                debug_assert_eq!(self.edges.get(self.next), Some(&Edge::new(sender, receiver)));
                self.status[self.next] = if kept { EdgeStatus::Kept } else { EdgeStatus::Removed };
                self.next += 1;
                self.log.push_front(Tried { edge: Edge::new(sender, receiver), kl_before, kl_after, kept });
                self.log.truncate(LOG_LEN);
            }
            AcdcEvent::ReceiverSkipped { edges, .. } => {
                for s in &mut self.status[self.next..self.next + edges] {
                    *s = EdgeStatus::Skipped;
                }
                self.next += edges;
            }
            AcdcEvent::Finished => {}
        }
    }

    /// The edge being tried: the next one, while any is left.
    pub fn current(&self) -> Option<Edge> {
        self.edges.get(self.next).copied()
    }

    /// The edges still present: kept or not tried yet.
    pub fn present(&self) -> usize {
        self.status.iter().filter(|s| matches!(s, EdgeStatus::Untried | EdgeStatus::Kept)).count()
    }
}

/// How an edge is drawn (its CSS class): while the run goes, kept edges stay, removed ones fade and untried
/// ones wait; once it is done, the circuit's edges stand out (a kept edge with no path to the logits is not in
/// the circuit).
pub fn edge_look(p: &Pruning, i: usize, circuit: Option<&HashSet<Edge>>) -> &'static str {
    if p.next < p.edges.len() {
        match p.status[i] {
            EdgeStatus::Untried => "untried",
            EdgeStatus::Kept => "kept",
            EdgeStatus::Removed | EdgeStatus::Skipped => "removed",
        }
    } else if circuit.is_some_and(|c| c.contains(&p.edges[i])) {
        "circuit"
    } else {
        "removed"
    }
}

/// A node's short label in the drawing: `L1H3` for a head, `MLP 0`, `embed`, `logits`.
pub fn node_label(node: Node) -> String {
    match node {
        Node::Head { layer, head } => head_name(layer, head),
        Node::Mlp(l) => format!("MLP {l}"),
        n => n.to_string(),
    }
}

/// An edge as the side list prints it: `a0.2 → a1.1.v`.
pub fn edge_text(edge: Edge) -> String {
    format!("{} → {}", edge.sender, edge.receiver)
}

/// Whether the pruning is shown edge by edge: the link's `watch` when it says so; otherwise on, unless the
/// student asked the system for reduced motion, where the animation is needless (one tick brings it back).
pub fn watch_at_start(url_watch: bool, in_link: bool, reduced_motion: bool) -> bool {
    if in_link {
        url_watch
    } else {
        url_watch && !reduced_motion
    }
}

/// The circuit's kept edges as a table (the graph's numbers): sender, receiver, and how much removing the edge
/// raised the metric.
pub fn circuit_table(c: &Circuit) -> DataTable {
    DataTable {
        caption: format!("the circuit's {} kept edges of {} (τ = {})", c.edges.len(), c.total_edges, c.tau),
        columns: vec!["sender".into(), "receiver".into(), "effect of removing".into()],
        rows: (c.edges.iter())
            .map(|e| {
                vec![Datum::Text(e.sender.to_string()), Datum::Text(e.receiver.to_string()), Datum::from(e.effect)]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::core::url::parse_query;
    use crate::lens::methods::acdc::AcdcRun;
    use crate::lens::Transformer;

    #[test]
    fn an_opened_model_has_its_own_prompts_and_threshold_in_links() {
        let own = AcdcState::own_default();
        assert_eq!(own.to_query(), [("model".to_string(), "own".to_string())]);
        assert_eq!(AcdcState::from_query(&own.to_query()), (own.clone(), vec![]));
        let typed = AcdcState { tau: 0.1, clean: "a b c".into(), corrupted: "a d c".into(), ..own };
        assert_eq!(AcdcState::from_query(&typed.to_query()), (typed, vec![]));
        // A task model's link is unchanged.
        let ind =
            AcdcState { which: TaskModel::Induction, tau: default_tau(TaskModel::Induction), ..Default::default() };
        assert_eq!(ind.to_query(), [("model".to_string(), "induction".to_string())]);
        assert_eq!(AcdcState::from_query(&parse_query("model=induction")).0, ind);
    }

    #[test]
    fn an_opened_models_prompts_are_checked_before_any_work() {
        assert_eq!(check_own_prompts(&[0, 5, 6], &[0, 5, 7], 193), Ok(()));
        assert!(check_own_prompts(&[0, 5, 6], &[0, 5], 193).unwrap_err().contains("3 tokens and the corrupted one 2"));
        assert!(check_own_prompts(&[0, 5], &[0, 5], 193).unwrap_err().contains("the same tokens"));
        let big = check_own_prompts(&[0, 5], &[0, 6], 40_000).unwrap_err();
        assert!(big.contains("40000 edges") && big.contains("9.3.1"), "{big}");
    }

    fn shipped(name: &str) -> (Transformer, Vocab) {
        let dir = format!("{}/public/models/{name}", env!("CARGO_MANIFEST_DIR"));
        let cfg = std::fs::read_to_string(format!("{dir}/config.json")).unwrap();
        let weights = std::fs::read(format!("{dir}/model.safetensors")).unwrap();
        let vocab = Vocab::from_json(&std::fs::read_to_string(format!("{dir}/vocab.json")).unwrap()).unwrap();
        (Transformer::from_bytes(&cfg, &weights).unwrap(), vocab)
    }

    #[test]
    fn every_control_round_trips_and_defaults_are_not_written() {
        assert!(AcdcState::default().to_query().is_empty());
        let s = AcdcState {
            own: false,
            which: TaskModel::Induction,
            tau: tau_of_slider(-1.75),
            clean: "When Tom and Anna went to the park, Tom gave a ball to".into(),
            corrupted: "When Sam and Ivy went to the park, Sam gave a ball to".into(),
            seed: 7,
            watch: false,
        };
        assert_eq!(AcdcState::from_query(&s.to_query()), (s, vec![]));
        // A model's own default τ is not written either.
        let ind =
            AcdcState { which: TaskModel::Induction, tau: default_tau(TaskModel::Induction), ..Default::default() };
        assert_eq!(ind.to_query(), vec![("model".to_string(), "induction".to_string())]);
    }

    #[test]
    fn a_tampered_link_names_every_bad_key() {
        let (s, p) = AcdcState::from_query(&parse_query("model=gpt4&tau=5&clean=&seed=-1&watch=2"));
        assert_eq!(s, AcdcState::default());
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["model", "tau", "clean", "seed", "watch"]);
        let (s, p) = AcdcState::from_query(&parse_query("model=induction&tau=abc"));
        assert_eq!((s.which, s.tau, p.len()), (TaskModel::Induction, default_tau(TaskModel::Induction), 1));
    }

    #[test]
    fn the_slider_is_log_scale_with_round_thresholds() {
        assert_eq!(tau_of_slider(-2.0), 0.01);
        assert_eq!(tau_of_slider(LOG_TAU_MIN), 1e-4);
        assert_eq!(tau_of_slider(LOG_TAU_MAX), 1.0);
        assert_eq!(tau_of_slider(-1.75), 0.018);
        assert_eq!(tau_of_slider(-9.0), 1e-4, "clamped");
        // Every slider position maps to a τ that maps back to the same position (to the slider's step).
        let steps = ((LOG_TAU_MAX - LOG_TAU_MIN) / LOG_TAU_STEP).round() as usize;
        for i in 0..=steps {
            let x = LOG_TAU_MIN + i as f32 * LOG_TAU_STEP;
            assert!((slider_of_tau(tau_of_slider(x)) - x).abs() < LOG_TAU_STEP / 2.0, "{x}");
        }
        // Both defaults sit on the slider's grid.
        for w in [TaskModel::Ioi, TaskModel::Induction] {
            let x = slider_of_tau(default_tau(w));
            assert_eq!(tau_of_slider((x / LOG_TAU_STEP).round() * LOG_TAU_STEP), default_tau(w));
        }
        assert_eq!((tau_text(0.032), tau_text(0.0018)), ("0.032".to_string(), "1.8e-3".to_string()));
    }

    #[test]
    fn ioi_prompts_are_checked_before_any_work() {
        let (model, vocab) = shipped("ioi");
        let n = model.cfg.n_positions;
        let input = ioi_input(&vocab, n, CHAPTER_PROMPT, DEFAULT_CORRUPTED).unwrap();
        assert_eq!((input.answer, input.wrong), (vocab.id("mary").unwrap(), vocab.id("john").unwrap()));
        assert_eq!(input.clean.len(), input.corrupted.len());
        let err = |c: &str, x: &str| ioi_input(&vocab, n, c, x).unwrap_err();
        assert!(err("When Jon and Mary went", "When Alice and Bob went").to_lowercase().contains("“jon”"));
        assert!(err(CHAPTER_PROMPT, "When Alice and Bob went to the store").contains("same number of words"));
        assert!(err(CHAPTER_PROMPT, CHAPTER_PROMPT).contains("the same"));
        assert!(err(" ", DEFAULT_CORRUPTED).contains("empty"));
        let no_repeat = "When John and Mary went to the store, Alice gave a bottle to";
        assert!(err(no_repeat, DEFAULT_CORRUPTED).contains("two names"));
    }

    #[test]
    fn the_induction_pair_is_two_different_repeats() {
        let input = induction_input(318, 64, 3);
        let n = INDUCTION_LEN;
        assert_eq!(input.clean.len(), 2 * n + 1);
        assert_eq!(input.clean[1..=n], input.clean[n + 1..]);
        assert_eq!(input.corrupted[1..=n], input.corrupted[n + 1..]);
        assert_ne!(input.clean, input.corrupted);
        assert_eq!(input, induction_input(318, 64, 3), "the seed decides");
    }

    #[test]
    fn the_pruning_record_follows_the_run_to_its_circuit() {
        let (model, vocab) = shipped("ioi");
        let input = ioi_input(&vocab, model.cfg.n_positions, CHAPTER_PROMPT, DEFAULT_CORRUPTED).unwrap();
        let mut run = AcdcRun::new(&model, &input, default_tau(TaskModel::Ioi)).unwrap();
        let mut p = Pruning::new(run.graph());
        assert_eq!((p.present(), p.current()), (p.edges.len(), Some(p.edges[0])));
        assert_eq!(edge_look(&p, 0, None), "untried");
        loop {
            let event = run.step().unwrap();
            p.apply(&event);
            assert_eq!(p.next, run.decided().0);
            if event == AcdcEvent::Finished {
                break;
            }
        }
        assert!(p.current().is_none() && p.status.iter().all(|&s| s != EdgeStatus::Untried));
        assert!(p.log.len() == LOG_LEN && p.log.iter().all(|t| t.kept == (t.kl_after - t.kl_before > run.tau())));
        let circuit = run.finish().unwrap();
        // The circuit's edges were all kept; kept edges with no path to the logits are dropped at the end.
        let kept: Vec<Edge> =
            p.edges.iter().zip(&p.status).filter(|(_, &s)| s == EdgeStatus::Kept).map(|(e, _)| *e).collect();
        assert!(circuit.edge_set().iter().all(|e| kept.contains(e)));
        assert_eq!(p.present(), kept.len());
        let set = circuit.edge_set();
        for (i, e) in p.edges.iter().enumerate() {
            assert_eq!(edge_look(&p, i, Some(&set)) == "circuit", set.contains(e));
        }
        assert!(!circuit.edges.is_empty() && circuit.edges.len() < 30, "{} edges", circuit.edges.len());
        assert!(circuit.logit_diff.unwrap() > 0.5, "{:?}", circuit.logit_diff);
        // Its table: a row per kept edge, in the engine's names, with the effect that kept it.
        let t = circuit_table(&circuit);
        assert_eq!(t.rows.len(), circuit.edges.len());
        let e = &circuit.edges[0];
        assert_eq!(
            t.rows[0],
            [Datum::Text(e.sender.to_string()), Datum::Text(e.receiver.to_string()), Datum::from(e.effect)]
        );
    }

    #[test]
    fn heads_are_named_and_linked_as_the_other_labs_do() {
        assert_eq!(head_name(1, 3), "L1H3");
        assert_eq!(node_label(Node::Head { layer: 2, head: 0 }), "L2H0");
        assert_eq!(node_label(Node::Mlp(1)), "MLP 1");
        let ind = head_links(TaskModel::Induction, 1, 3, "a b a b", "c d c d");
        assert_eq!(ind.pattern, "#/attention?seq=a+b+a+b&layer=1&head=3");
        assert_eq!(
            ind.patching,
            "#/9.3.1?model=induction&clean=a+b+a+b&corr=typed&corrupted=c+d+c+d&target=head_out&cell=1.3"
        );
        let ioi = head_links(TaskModel::Ioi, 1, 3, CHAPTER_PROMPT, "When Alice and Bob went");
        assert_eq!(ioi.patching, "#/9.3.1?corr=typed&corrupted=When+Alice+and+Bob+went&target=head_out&cell=1.3");
        assert!(ioi.pattern.starts_with("#/attention?model=ioi&seq=When+John+and+Mary"), "{}", ioi.pattern);
        assert!(ioi.pattern.ends_with("&layer=1&head=3"), "{}", ioi.pattern);
        // Another clean prompt is carried (the e2e test follows a link into the patching lab).
        assert_eq!(
            head_links(TaskModel::Ioi, 0, 2, "When Tom and Ann sat", "When Sam and Ivy sat").patching,
            "#/9.3.1?clean=When+Tom+and+Ann+sat&corr=typed&corrupted=When+Sam+and+Ivy+sat&target=head_out&cell=0.2"
        );
        assert_eq!(edge_text(Edge::new(Node::Embed, Node::Logits)), "embed → logits");
    }

    #[test]
    fn reduced_motion_turns_the_edge_by_edge_pruning_off_unless_the_link_asks() {
        assert!(watch_at_start(true, false, false), "the default: watch");
        assert!(!watch_at_start(true, false, true), "reduced motion: no animation by default");
        assert!(watch_at_start(true, true, true), "a link's watch=1 is kept");
        assert!(!watch_at_start(false, true, false), "a link's watch=0 is kept");
    }
}
