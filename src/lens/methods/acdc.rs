//! ACDC, automatic circuit discovery (Conmy et al. 2023), on the language models, with the conventions of the
//! authors' implementation on TransformerLens.
//!
//! **The graph.** Senders write into the residual stream: the embedding (`embed`, token plus position, which is
//! `blocks.0.hook_resid_pre`), every head's result (`a{l}.{h}`, `blocks.{l}.attn.hook_result` at head h) and every
//! MLP's output (`m{l}`, `blocks.{l}.hook_mlp_out`). Receivers read from it: every head's query, key and value
//! inputs (`a{l}.{h}.q`, `.k`, `.v`: TransformerLens's `blocks.{l}.hook_q_input` etc. with `use_split_qkv_input`),
//! every MLP's input (`m{l}.in`) and the logits (`logits`, `blocks.{L-1}.hook_resid_post`). Because the residual
//! stream is a sum, there is an edge from every sender to every receiver downstream of it. Inside a head, its
//! q/k/v inputs lead to its result, and inside an MLP its input to its output: those edges are always kept.
//!
//! **Edge patching.** A receiver's input is the sum over its incoming edges of the sender's output *in the
//! circuit's own pass* when the edge is present, or of the sender's output on the corrupted prompt when it is
//! not (plus the biases, which do not depend on the prompt). With every edge present this is the clean run; with
//! none, the corrupted run. Every head then applies ln1 to each of its three inputs and its own slices of the
//! query, key and value projections (`SplitAttention`).
//!
//! **The algorithm.** Receivers are visited in reverse topological order, from the logits back to the first
//! layer's inputs (ACDC's order: logits; then, from the last layer down, the MLP's input, then every head's value,
//! key and query inputs). For each incoming edge (nearest sender first, the embedding last), ACDC removes it
//! (patches it to corrupted) and measures the circuit by its metric; it stays removed when the metric rose by at
//! most τ, and is put back otherwise. A receiver whose node no longer feeds anything present is skipped, its edges
//! removed untried (nothing downstream reads it). At the end, nodes with no path to the logits are dropped.
//!
//! Ties count as removal (ACDC removes on a strict "rise < τ"): with τ = 0 exactly the edges whose removal raises
//! the metric stay, instead of every edge that changes nothing as well.
//!
//! **The metric** (`AcdcMetric`) is something ACDC drives down: by default KL(clean model ‖ circuit) at
//! `KlPositions`; for IOI the authors also run it on the logit difference, negated so that lower is better, which
//! makes an edge's effect the *drop* in the logit difference its removal causes. Which metric is chosen changes
//! which edges survive: KL sees the whole next-token distribution, the logit difference only two of its logits.
//!
//! `AcdcRun` takes one edge per `step`, so the browser can run it between frames; `acdc` runs it to the end.
//! Trying an edge recomputes only what it can change: the receiver's head (or MLP, or the unembedding) and the
//! layers after it. The corrupted run's outputs and inputs are cached once, the circuit's own outputs kept
//! between steps.
use std::collections::HashSet;
use std::fmt;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::patching::{kl_divergence, log_softmax, measures, normalised_logit_diff, Measures, PatchInput};
use crate::lens::gpt2::SplitAttention;
use crate::lens::{LensError, Result, Transformer};

/// Which of a head's three inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Qkv {
    Q,
    K,
    V,
}

impl Qkv {
    /// In the order the inputs are stacked for `SplitAttention::results`.
    pub const ALL: [Qkv; 3] = [Qkv::Q, Qkv::K, Qkv::V];

    fn index(self) -> usize {
        self as usize
    }

    fn letter(self) -> &'static str {
        match self {
            Qkv::Q => "q",
            Qkv::K => "k",
            Qkv::V => "v",
        }
    }
}

/// A node of the graph. Senders: `Embed`, `Head`, `Mlp`; receivers: `HeadInput`, `MlpIn`, `Logits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Node {
    /// `embed`: token plus position embedding.
    Embed,
    /// `a{layer}.{head}`: the head's result.
    Head { layer: usize, head: usize },
    /// `a{layer}.{head}.q` (or `.k`, `.v`): the head's own input.
    HeadInput { layer: usize, head: usize, input: Qkv },
    /// `m{layer}`: the MLP's output.
    Mlp(usize),
    /// `m{layer}.in`: the MLP's input.
    MlpIn(usize),
    /// `logits`: the residual stream after the last block, read by ln_f and the unembedding.
    Logits,
}

impl Node {
    /// The component a receiver belongs to (a head for its inputs, an MLP for its input); other nodes are their
    /// own component.
    pub fn component(self) -> Node {
        match self {
            Node::HeadInput { layer, head, .. } => Node::Head { layer, head },
            Node::MlpIn(l) => Node::Mlp(l),
            n => n,
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Node::Embed => f.write_str("embed"),
            Node::Head { layer, head } => write!(f, "a{layer}.{head}"),
            Node::HeadInput { layer, head, input } => write!(f, "a{layer}.{head}.{}", input.letter()),
            Node::Mlp(l) => write!(f, "m{l}"),
            Node::MlpIn(l) => write!(f, "m{l}.in"),
            Node::Logits => f.write_str("logits"),
        }
    }
}

/// An edge of the residual stream: a sender's output read by a receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Edge {
    pub sender: Node,
    pub receiver: Node,
}

impl Edge {
    pub fn new(sender: Node, receiver: Node) -> Self {
        Edge { sender, receiver }
    }
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.sender, self.receiver)
    }
}

/// The nodes and edges of a model's graph, in ACDC's orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcdcGraph {
    pub n_layer: usize,
    pub n_heads: usize,
    /// Whether the blocks have MLPs (not for an attention-only model).
    pub mlp: bool,
}

impl AcdcGraph {
    pub fn of(model: &Transformer) -> Self {
        AcdcGraph { n_layer: model.cfg.n_layer, n_heads: model.cfg.n_head, mlp: !model.cfg.attn_only }
    }

    /// Senders per layer: its heads, then its MLP.
    fn per_layer(&self) -> usize {
        self.n_heads + self.mlp as usize
    }

    /// Every sender in forward order: `embed`, layer 0's heads, `m0`, layer 1's heads, ... Its position in this
    /// list is the sender's index in the run's caches.
    pub fn senders(&self) -> Vec<Node> {
        let mut v = vec![Node::Embed];
        for layer in 0..self.n_layer {
            v.extend((0..self.n_heads).map(|head| Node::Head { layer, head }));
            if self.mlp {
                v.push(Node::Mlp(layer));
            }
        }
        v
    }

    /// A sender's index in `senders()`.
    fn sender_index(&self, node: Node) -> usize {
        match node {
            Node::Embed => 0,
            Node::Head { layer, head } => 1 + layer * self.per_layer() + head,
            Node::Mlp(l) => 1 + l * self.per_layer() + self.n_heads,
            _ => unreachable!("{node} is not a sender"),
        }
    }

    /// How many senders lie upstream of a receiver: those are the first ones in `senders()`.
    fn upstream(&self, receiver: Node) -> usize {
        match receiver {
            Node::HeadInput { layer, .. } => 1 + layer * self.per_layer(),
            Node::MlpIn(l) => 1 + l * self.per_layer() + self.n_heads,
            Node::Logits => 1 + self.n_layer * self.per_layer(),
            _ => 0,
        }
    }

    /// Every receiver in the order ACDC visits them, from the logits back: the logits, then from the last layer
    /// down the MLP's input, then the heads' value, key and query inputs (heads from the last to the first), as
    /// the reverse of TransformerLens's hook order lists them.
    pub fn receivers(&self) -> Vec<Node> {
        let mut v = vec![Node::Logits];
        for layer in (0..self.n_layer).rev() {
            if self.mlp {
                v.push(Node::MlpIn(layer));
            }
            for input in [Qkv::V, Qkv::K, Qkv::Q] {
                v.extend((0..self.n_heads).rev().map(|head| Node::HeadInput { layer, head, input }));
            }
        }
        v
    }

    /// The senders of a receiver's edges in the order ACDC tries them: the nearest layer first (its MLP, then its
    /// heads in order), the embedding last.
    pub fn senders_of(&self, receiver: Node) -> Vec<Node> {
        let mut v: Vec<Node> = self.senders()[..self.upstream(receiver)].to_vec();
        v.remove(0);
        // Senders come layer by layer (heads, then MLP); take the layers from the last, MLP first within each.
        let per = self.per_layer();
        let mut out = Vec::with_capacity(v.len() + 1);
        let rows: Vec<&[Node]> = v.chunks(per).collect();
        for row in rows.into_iter().rev() {
            out.extend(row.iter().rev().filter(|n| matches!(n, Node::Mlp(_))));
            out.extend(row.iter().filter(|n| matches!(n, Node::Head { .. })));
        }
        out.push(Node::Embed);
        out
    }

    /// Every edge, in the order ACDC tries them.
    pub fn edges(&self) -> Vec<Edge> {
        self.receivers()
            .into_iter()
            .flat_map(|r| self.senders_of(r).into_iter().map(move |s| Edge::new(s, r)))
            .collect()
    }
}

/// Where KL(clean ‖ circuit) is measured; the metric is its mean over these positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KlPositions {
    /// The last position, where patching reads its answer (an IOI-style prompt).
    Last,
    /// Every position from the first token where the prompts differ. Earlier positions are left out because
    /// their KL is 0 in every circuit and would only shrink the mean.
    All,
    /// Every position from this one on: the task's positions, as ACDC's induction task scores only the
    /// positions where a repeat can be predicted (the second half of a repeated sequence).
    From(usize),
}

/// What ACDC drives down; an edge's effect is the metric's rise when the edge is removed, and the edge stays in
/// the circuit only when that rise is more than τ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AcdcMetric {
    /// KL(clean model ‖ circuit) at the run's `KlPositions`, in nats: 0 for the full circuit. ACDC's `kl_div`.
    #[default]
    Kl,
    /// −(logit(answer) − logit(wrong)) at the last position, in raw logits (not normalised), as ACDC's
    /// `logit_diff_metric` for IOI: the full circuit scores minus the clean logit difference. An edge's effect
    /// is then how much its removal *lowers* the logit difference; the test is signed (the authors' default, without
    /// `--abs-value-threshold`), so an edge whose removal raises the logit difference is always removed.
    LogitDiff,
}

impl fmt::Display for AcdcMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AcdcMetric::Kl => "KL divergence",
            AcdcMetric::LogitDiff => "logit difference",
        })
    }
}

/// What one `AcdcRun::step` did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AcdcEvent {
    /// One edge removed and the circuit measured by the run's `AcdcMetric`: `before` with the edge, `after`
    /// without; it stays only if the metric rose by more than τ.
    EdgeTried { sender: Node, receiver: Node, before: f32, after: f32, kept: bool },
    /// A receiver whose node feeds nothing left in the circuit: its `edges` were removed without a trial.
    ReceiverSkipped { receiver: Node, edges: usize },
    /// Every receiver has been visited.
    Finished,
}

/// A kept edge and what removing it cost when it was tried.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CircuitEdge {
    pub sender: Node,
    pub receiver: Node,
    /// The metric's rise when the edge was removed (more than τ, or it would not be here).
    pub effect: f32,
}

/// What ACDC found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Circuit {
    pub tau: f32,
    /// The metric the edges were judged by (`kl` and `logit_diff` below are reported whichever it was).
    #[serde(default)]
    pub metric: AcdcMetric,
    pub kl_positions: KlPositions,
    /// The kept edges, in the order they were tried.
    pub edges: Vec<CircuitEdge>,
    /// The nodes with a path to the logits, in forward order: senders (`embed`, heads, MLPs), the receivers their
    /// kept edges reach (`a1.0.k`, `m0.in`) and `logits`.
    pub nodes: Vec<Node>,
    /// How many edges the full graph has.
    pub total_edges: usize,
    /// KL(clean ‖ circuit) at `kl_positions` of the circuit alone (every other edge patched to corrupted), in
    /// nats: ACDC's default metric.
    pub kl: f32,
    /// The same KL for the corrupted run (the empty circuit), for scale.
    pub kl_corrupted: f32,
    /// The circuit's measures at the last position, as patching reads them.
    pub measures: Measures,
    /// The circuit's logit difference normalised as patching does (0 = corrupted, 1 = clean); None when the
    /// corruption does not change the logit difference.
    pub logit_diff: Option<f32>,
}

impl Circuit {
    /// The kept edges as plain edges.
    pub fn edge_set(&self) -> HashSet<Edge> {
        self.edges.iter().map(|e| Edge::new(e.sender, e.receiver)).collect()
    }
}

/// Where a pass of the circuit starts recomputing: what an edge into this receiver can change.
#[derive(Clone, Copy, Debug)]
enum Start {
    /// Everything, from layer 0's heads.
    All,
    /// One head of a layer, then every later block.
    Head { layer: usize, head: usize },
    /// A layer's MLP, then every later block.
    Mlp(usize),
    /// The unembedding only.
    Logits,
}

impl Start {
    fn of(receiver: Node) -> Start {
        match receiver {
            Node::HeadInput { layer, head, .. } => Start::Head { layer, head },
            Node::MlpIn(l) => Start::Mlp(l),
            _ => Start::Logits,
        }
    }
}

/// ACDC in steps: one edge per `step`.
pub struct AcdcRun {
    model: Transformer,
    graph: AcdcGraph,
    tau: f32,
    metric: AcdcMetric,
    kl_positions: KlPositions,
    input: PatchInput,
    splits: Vec<SplitAttention>,
    /// Each sender's output on the corrupted prompt, `[pos, d_model]`, in `graph.senders()` order.
    corrupted: Vec<Tensor>,
    /// The corrupted run's residual stream where receivers read it, `[pos, d_model]`: per layer, entering it
    /// (the heads' inputs) and, with MLPs, in its middle (the MLP's input); then after the last block (the logits').
    corrupted_resid: Vec<Tensor>,
    /// Each sender's output in the current circuit's own pass, `[pos, d_model]`.
    outputs: Vec<Tensor>,
    /// The positions the KL is measured at, and the clean model's log-probabilities there.
    positions: Vec<usize>,
    clean_log_probs: Vec<Vec<f64>>,
    clean: Measures,
    corrupted_measures: Measures,
    kl_corrupted: f32,
    /// The edges removed so far.
    removed: HashSet<Edge>,
    /// Every edge's rise in the metric when it was tried (None until then), in `edges` order.
    effects: Vec<Option<f32>>,
    edges: Vec<Edge>,
    /// The next edge to decide (an index into `edges`).
    next: usize,
    /// The current circuit's metric, its KL (the same number when the metric is KL) and its last-position logits
    /// `[1, 1, vocab]`.
    score: f32,
    kl: f32,
    last_logits: Tensor,
}

impl AcdcRun {
    /// ACDC with threshold `tau`, KL measured at the last position (as patching measures it). Runs both prompts
    /// once and the full circuit once; tries no edge yet.
    pub fn new(model: &Transformer, input: &PatchInput, tau: f32) -> Result<Self> {
        Self::with_positions(model, input, tau, KlPositions::Last)
    }

    /// ACDC with threshold `tau`, KL measured at `kl_positions`.
    pub fn with_positions(
        model: &Transformer,
        input: &PatchInput,
        tau: f32,
        kl_positions: KlPositions,
    ) -> Result<Self> {
        Self::with_metric(model, input, tau, kl_positions, AcdcMetric::Kl)
    }

    /// ACDC with threshold `tau` on `metric`. The KL is measured at `kl_positions` whichever the metric (with
    /// `LogitDiff` it is reported, not used to decide); the logit difference is read at the last position.
    pub fn with_metric(
        model: &Transformer,
        input: &PatchInput,
        tau: f32,
        kl_positions: KlPositions,
        metric: AcdcMetric,
    ) -> Result<Self> {
        input.check(model)?;
        if !(tau >= 0.0 && tau.is_finite()) {
            return Err(LensError::Input(format!("the threshold τ must be a number ≥ 0, got {tau}")));
        }
        let Some(first_diff) = input.clean.iter().zip(&input.corrupted).position(|(a, b)| a != b) else {
            return Err(LensError::Input(
                "the clean and corrupted prompts are the same: no edge can make a difference".into(),
            ));
        };
        let n_pos = input.len();
        let positions: Vec<usize> = match kl_positions {
            KlPositions::Last => vec![n_pos - 1],
            KlPositions::All => (first_diff..n_pos).collect(),
            KlPositions::From(p) if p < n_pos => (p..n_pos).collect(),
            KlPositions::From(p) => {
                return Err(LensError::Input(format!(
                    "the KL is to be measured from position {p}, but the prompts have {n_pos} tokens"
                )))
            }
        };
        let graph = AcdcGraph::of(model);
        let splits = (0..graph.n_layer).map(|l| model.split_attention(l)).collect::<Result<Vec<_>>>()?;
        let clean_logits = model.logits(&input.clean)?; // [1, pos, vocab]
        let corrupted_logits = model.logits(&input.corrupted)?;
        let clean_log_probs = rows_log_probs(&clean_logits.get(0)?, &positions)?;
        let last_clean = clean_log_probs.last().expect("at least one position").clone();
        let clean = measures(&clean_logits, input.answer, input.wrong, &last_clean)?;
        let corrupted_measures = measures(&corrupted_logits, input.answer, input.wrong, &last_clean)?;
        let edges = graph.edges();
        let mut run = AcdcRun {
            model: model.clone(),
            graph,
            tau,
            metric,
            kl_positions,
            input: input.clone(),
            splits,
            corrupted: Vec::new(),
            corrupted_resid: Vec::new(),
            outputs: Vec::new(),
            positions,
            clean_log_probs,
            clean,
            corrupted_measures,
            kl_corrupted: 0.0,
            removed: HashSet::new(),
            effects: vec![None; edges.len()],
            edges,
            next: 0,
            score: 0.0,
            kl: 0.0,
            last_logits: clean_logits,
        };
        let (corrupted, corrupted_resid) = run.plain_pass(&model.embedding(&input.corrupted)?)?;
        run.corrupted = corrupted;
        run.corrupted_resid = corrupted_resid;
        run.kl_corrupted = run.kl_of(&run.scored_rows(&corrupted_logits.get(0)?)?)?;
        // The full circuit (every edge present): the clean run, computed through the edges.
        let mut outputs = run.corrupted.clone();
        outputs[0] = model.embedding(&input.clean)?.squeeze(0)?;
        let logits = run.circuit_pass(&mut outputs, Start::All, &HashSet::new())?;
        run.outputs = outputs;
        (run.score, run.kl) = run.measure(&logits)?;
        run.last_logits = last_row(&logits)?;
        Ok(run)
    }

    /// The graph the run works on.
    pub fn graph(&self) -> AcdcGraph {
        self.graph
    }

    pub fn tau(&self) -> f32 {
        self.tau
    }

    pub fn metric(&self) -> AcdcMetric {
        self.metric
    }

    /// The current circuit's KL (every edge removed so far patched to corrupted).
    pub fn kl(&self) -> f32 {
        self.kl
    }

    /// The current circuit's metric: its KL, or minus its logit difference (see `AcdcMetric`).
    pub fn score(&self) -> f32 {
        self.score
    }

    /// The edges decided so far (tried or skipped), and in all.
    pub fn decided(&self) -> (usize, usize) {
        (self.next, self.edges.len())
    }

    /// The share of edges decided, in [0, 1].
    pub fn progress(&self) -> f32 {
        self.next as f32 / self.edges.len().max(1) as f32
    }

    pub fn is_finished(&self) -> bool {
        self.next == self.edges.len()
    }

    /// Decides the next edge: tries it (one pass from its receiver on), or skips its whole receiver when the
    /// receiver's node feeds nothing present any more.
    pub fn step(&mut self) -> Result<AcdcEvent> {
        let Some(&edge) = self.edges.get(self.next) else { return Ok(AcdcEvent::Finished) };
        let receiver = edge.receiver;
        if !self.feeds_circuit(receiver.component()) {
            let mut n = 0;
            while self.edges.get(self.next).is_some_and(|e| e.receiver == receiver) {
                self.removed.insert(self.edges[self.next]);
                self.next += 1;
                n += 1;
            }
            return Ok(AcdcEvent::ReceiverSkipped { receiver, edges: n });
        }
        self.removed.insert(edge);
        let mut outputs = self.outputs.clone();
        let logits = self.circuit_pass(&mut outputs, Start::of(receiver), &self.removed)?;
        let (after, kl_after) = self.measure(&logits)?;
        let before = self.score;
        self.effects[self.next] = Some(after - before);
        let kept = after - before > self.tau;
        if kept {
            self.removed.remove(&edge);
        } else {
            self.outputs = outputs;
            (self.score, self.kl) = (after, kl_after);
            self.last_logits = last_row(&logits)?;
        }
        self.next += 1;
        Ok(AcdcEvent::EdgeTried { sender: edge.sender, receiver, before, after, kept })
    }

    /// Whether a node has a present edge out of it (the logits always count as used).
    fn feeds_circuit(&self, node: Node) -> bool {
        match node {
            Node::Logits => true,
            sender => self.graph.receivers().into_iter().any(|r| {
                self.graph.upstream(r) > self.graph.sender_index(sender)
                    && !self.removed.contains(&Edge::new(sender, r))
            }),
        }
    }

    /// The circuit, once every edge is decided.
    pub fn finish(self) -> Result<Circuit> {
        if !self.is_finished() {
            return Err(LensError::Input("ACDC is not finished: step it until every edge is decided".into()));
        }
        let kept: Vec<(Edge, f32)> = self
            .edges
            .iter()
            .zip(&self.effects)
            .filter(|(e, _)| !self.removed.contains(e))
            .map(|(e, effect)| (*e, effect.unwrap_or(0.0)))
            .collect();
        // Walk back from the logits along kept edges (and from a receiver to its own component's inputs).
        let mut reached: HashSet<Node> = HashSet::from([Node::Logits]);
        let mut frontier = vec![Node::Logits];
        while let Some(node) = frontier.pop() {
            let inputs: Vec<Node> = match node {
                Node::Head { layer, head } => {
                    Qkv::ALL.iter().map(|&input| Node::HeadInput { layer, head, input }).collect()
                }
                Node::Mlp(l) => vec![Node::MlpIn(l)],
                _ => vec![node],
            };
            for r in inputs {
                for (e, _) in kept.iter().filter(|(e, _)| e.receiver == r) {
                    for n in [r, e.sender] {
                        if reached.insert(n) {
                            frontier.push(n);
                        }
                    }
                }
            }
        }
        let edges = kept
            .iter()
            .filter(|(e, _)| reached.contains(&e.receiver))
            .map(|&(e, effect)| CircuitEdge { sender: e.sender, receiver: e.receiver, effect })
            .collect();
        let mut nodes: Vec<Node> = reached.into_iter().collect();
        nodes.sort_by_key(|n| forward_order(*n));
        let last_clean = self.clean_log_probs.last().expect("at least one position");
        let m = measures(&self.last_logits, self.input.answer, self.input.wrong, last_clean)?;
        let logit_diff =
            normalised_logit_diff(m.logit_diff, self.clean.logit_diff, self.corrupted_measures.logit_diff).ok();
        Ok(Circuit {
            tau: self.tau,
            metric: self.metric,
            kl_positions: self.kl_positions,
            edges,
            nodes,
            total_edges: self.edges.len(),
            kl: self.kl,
            kl_corrupted: self.kl_corrupted,
            measures: m,
            logit_diff,
        })
    }

    /// The logits `[pos, vocab]` of the circuit made of every edge but `removed` (all positions), from scratch:
    /// for tests and for showing any hand-picked circuit.
    pub fn circuit_logits(&self, removed: &HashSet<Edge>) -> Result<Tensor> {
        let mut outputs = self.corrupted.clone();
        outputs[0] = self.model.embedding(&self.input.clean)?.squeeze(0)?;
        let resid = self.pass_to_end(&mut outputs, Start::All, removed)?;
        self.model.unembed(&resid)
    }

    /// A plain forward pass from the embedding `[1, pos, d_model]` through the split heads, every receiver
    /// reading the whole residual stream: each sender's output and the residual stream where receivers read it
    /// (see `corrupted_resid`), all `[pos, d_model]`.
    fn plain_pass(&self, embedding: &Tensor) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let (n_heads, heads) = (self.graph.n_heads, (0..self.graph.n_heads).collect::<Vec<_>>());
        let mut resid = embedding.squeeze(0)?; // [pos, d_model]
        let mut outputs = vec![resid.clone()];
        let mut sites = Vec::new();
        for (l, split) in self.splits.iter().enumerate() {
            sites.push(resid.clone());
            let (pos, d) = resid.dims2()?;
            let inputs = resid.unsqueeze(0)?.unsqueeze(0)?.broadcast_as((3, n_heads, pos, d))?.contiguous()?;
            let results = split.results(&heads, &inputs)?; // [head, pos, d_model]
            outputs.extend((0..n_heads).map(|h| results.get(h)).collect::<candle_core::Result<Vec<_>>>()?);
            resid = resid.broadcast_add(&split.b_o)?;
            for h in 0..n_heads {
                resid = (resid + results.get(h)?)?;
            }
            if self.graph.mlp {
                sites.push(resid.clone());
                let out = self.mlp(l, &resid)?;
                outputs.push(out.clone());
                resid = (resid + out)?;
            }
        }
        sites.push(resid);
        Ok((outputs, sites))
    }

    fn mlp(&self, layer: usize, x: &Tensor) -> Result<Tensor> {
        let out = self.model.mlp_out(layer, &x.unsqueeze(0)?)?;
        let out = out.ok_or_else(|| LensError::Input(format!("layer {layer} has no MLP")))?;
        Ok(out.squeeze(0)?)
    }

    /// The index in `corrupted_resid` of the residual stream a receiver reads.
    fn site(&self, receiver: Node) -> usize {
        let per = 1 + self.graph.mlp as usize;
        match receiver {
            Node::HeadInput { layer, .. } => layer * per,
            Node::MlpIn(l) => l * per + 1,
            _ => self.graph.n_layer * per,
        }
    }

    /// The inputs `[receivers, pos, d_model]` of receivers that read the same site: the corrupted residual stream
    /// there, plus (circuit − corrupted) output of every sender whose edge is present.
    fn inputs(&self, receivers: &[Node], outputs: &[Tensor], removed: &HashSet<Edge>) -> Result<Tensor> {
        let base = &self.corrupted_resid[self.site(receivers[0])]; // [pos, d_model]
        let (pos, d) = base.dims2()?;
        let senders = &self.graph.senders()[..self.graph.upstream(receivers[0])];
        // One row per sender that differs from the corrupted run in this circuit, and which receivers take it.
        let mut deltas = Vec::new();
        let mut mask = Vec::new(); // [receivers, senders], filled column by column below
        for (i, &s) in senders.iter().enumerate() {
            let column: Vec<f32> =
                receivers.iter().map(|&r| if removed.contains(&Edge::new(s, r)) { 0.0 } else { 1.0 }).collect();
            if column.iter().all(|&c| c == 0.0) {
                continue;
            }
            deltas.push((&outputs[i] - &self.corrupted[i])?.reshape(pos * d)?);
            mask.push(column);
        }
        let n = receivers.len();
        let base = base.reshape((1, pos * d))?.broadcast_as((n, pos * d))?;
        let inputs = if deltas.is_empty() {
            base.contiguous()?
        } else {
            let k = deltas.len();
            let m: Vec<f32> = (0..n).flat_map(|r| mask.iter().map(move |c| c[r])).collect();
            let m = Tensor::from_vec(m, (n, k), &Device::Cpu)?;
            (base + m.matmul(&Tensor::stack(&deltas, 0)?)?)?
        };
        Ok(inputs.reshape((n, pos, d))?)
    }

    /// Recomputes the circuit from `start` with the edges in `removed` patched to corrupted, updating `outputs`;
    /// returns the logits `[scored positions, vocab]`.
    fn circuit_pass(&self, outputs: &mut [Tensor], start: Start, removed: &HashSet<Edge>) -> Result<Tensor> {
        let resid = self.pass_to_end(outputs, start, removed)?;
        self.model.unembed(&self.scored_rows(&resid)?)
    }

    /// The blocks from `start` on; returns the final residual stream `[pos, d_model]` as the logits read it.
    fn pass_to_end(&self, outputs: &mut [Tensor], start: Start, removed: &HashSet<Edge>) -> Result<Tensor> {
        let g = self.graph;
        let (first, only_head, mlp_first) = match start {
            Start::All => (0, None, false),
            Start::Head { layer, head } => (layer, Some(head), false),
            Start::Mlp(l) => (l, None, true),
            Start::Logits => (g.n_layer, None, false),
        };
        for l in first..g.n_layer {
            if !(mlp_first && l == first) {
                let heads: Vec<usize> = match only_head {
                    Some(h) if l == first => vec![h],
                    _ => (0..g.n_heads).collect(),
                };
                let receivers: Vec<Node> = Qkv::ALL
                    .iter()
                    .flat_map(|&input| heads.iter().map(move |&head| Node::HeadInput { layer: l, head, input }))
                    .collect();
                let x = self.inputs(&receivers, outputs, removed)?; // [3 heads, pos, d_model]
                let (_, pos, d) = x.dims3()?;
                let results = self.splits[l].results(&heads, &x.reshape((3, heads.len(), pos, d))?)?;
                for (i, &head) in heads.iter().enumerate() {
                    outputs[g.sender_index(Node::Head { layer: l, head })] = results.get(i)?;
                }
            }
            if g.mlp {
                let x = self.inputs(&[Node::MlpIn(l)], outputs, removed)?.squeeze(0)?;
                outputs[g.sender_index(Node::Mlp(l))] = self.mlp(l, &x)?;
            }
        }
        Ok(self.inputs(&[Node::Logits], outputs, removed)?.squeeze(0)?)
    }

    /// The rows of `x` `[pos, n]` at the scored positions.
    fn scored_rows(&self, x: &Tensor) -> Result<Tensor> {
        let idx: Vec<u32> = self.positions.iter().map(|&p| p as u32).collect();
        Ok(x.index_select(&Tensor::from_vec(idx, self.positions.len(), &Device::Cpu)?, 0)?)
    }

    /// The circuit's metric and its KL, from its logits at the scored positions `[positions, vocab]` (the last
    /// of which is the prompt's last position, where the logit difference is read).
    fn measure(&self, logits: &Tensor) -> Result<(f32, f32)> {
        let kl = self.kl_of(logits)?;
        match self.metric {
            AcdcMetric::Kl => Ok((kl, kl)),
            AcdcMetric::LogitDiff => {
                let last: Vec<f32> = logits.get(logits.dim(0)? - 1)?.to_vec1()?;
                let logit_diff = last[self.input.answer as usize] - last[self.input.wrong as usize];
                Ok((-logit_diff, kl))
            }
        }
    }

    /// Mean KL(clean ‖ circuit) over the scored positions, from the circuit's logits there `[positions, vocab]`.
    fn kl_of(&self, logits: &Tensor) -> Result<f32> {
        let rows: Vec<Vec<f32>> = logits.to_vec2()?;
        let sum: f64 = rows.iter().zip(&self.clean_log_probs).map(|(r, c)| kl_divergence(c, &log_softmax(r))).sum();
        Ok((sum / rows.len() as f64) as f32)
    }
}

/// The log-probabilities of `logits` `[pos, vocab]` at `positions`.
fn rows_log_probs(logits: &Tensor, positions: &[usize]) -> Result<Vec<Vec<f64>>> {
    let rows: Vec<Vec<f32>> = logits.to_vec2()?;
    Ok(positions.iter().map(|&p| log_softmax(&rows[p])).collect())
}

/// The last row of logits `[rows, vocab]` as `[1, 1, vocab]`, the shape patching's `measures` reads.
fn last_row(logits: &Tensor) -> Result<Tensor> {
    let n = logits.dim(0)?;
    Ok(logits.narrow(0, n - 1, 1)?.unsqueeze(0)?)
}

/// A key that sorts nodes in forward order.
fn forward_order(node: Node) -> (usize, usize, usize) {
    match node {
        Node::Embed => (0, 0, 0),
        Node::HeadInput { layer, head, input } => (1 + layer, 0, head * 4 + input.index()),
        Node::Head { layer, head } => (1 + layer, 0, head * 4 + 3),
        Node::MlpIn(l) => (1 + l, 1, 0),
        Node::Mlp(l) => (1 + l, 1, 1),
        Node::Logits => (usize::MAX, 0, 0),
    }
}

/// ACDC run to the end: the circuit of `model` on `input` at threshold `tau`, KL at the last position.
pub fn acdc(model: &Transformer, input: &PatchInput, tau: f32) -> Result<Circuit> {
    let mut run = AcdcRun::new(model, input, tau)?;
    while run.step()? != AcdcEvent::Finished {}
    run.finish()
}

/// One point of a ROC curve: the edges a circuit kept, scored against a labelled circuit over every edge.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// The share of unlabelled edges kept.
    pub fpr: f64,
    /// The share of labelled edges kept.
    pub tpr: f64,
}

/// The ROC point of the `found` edges against the `labelled` ones, among `all` the graph's edges.
pub fn roc_point(found: &HashSet<Edge>, labelled: &HashSet<Edge>, all: &[Edge]) -> RocPoint {
    let positives = all.iter().filter(|e| labelled.contains(e)).count();
    let negatives = all.len() - positives;
    let tp = all.iter().filter(|e| labelled.contains(e) && found.contains(e)).count();
    let fp = all.iter().filter(|e| !labelled.contains(e) && found.contains(e)).count();
    RocPoint { fpr: fp as f64 / negatives.max(1) as f64, tpr: tp as f64 / positives.max(1) as f64 }
}

/// The area under the ROC curve through `points` (one per threshold), measured as ACDC's authors measure it: a
/// staircase from (0, 0) that rises at each point and stays flat until the next, never crediting the area a
/// straight line between two points would add. A point below one already passed (lower true positive rate at a
/// higher false positive rate) adds nothing.
pub fn roc_auc(points: &[RocPoint]) -> f64 {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.fpr.total_cmp(&b.fpr).then(a.tpr.total_cmp(&b.tpr)));
    let mut height = 0.0;
    let mut area = 0.0;
    for p in sorted {
        if p.tpr > height {
            area += (1.0 - p.fpr) * (p.tpr - height);
            height = p.tpr;
        }
    }
    area
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_print_as_acdc_names_them() {
        let names: Vec<String> = [
            Node::Embed,
            Node::Head { layer: 1, head: 5 },
            Node::HeadInput { layer: 1, head: 5, input: Qkv::K },
            Node::Mlp(0),
            Node::MlpIn(0),
            Node::Logits,
        ]
        .iter()
        .map(Node::to_string)
        .collect();
        assert_eq!(names, ["embed", "a1.5", "a1.5.k", "m0", "m0.in", "logits"]);
        assert_eq!(Edge::new(Node::Embed, Node::Logits).to_string(), "embed -> logits");
    }

    #[test]
    fn the_graph_lists_edges_in_acdcs_order() {
        let g = AcdcGraph { n_layer: 2, n_heads: 2, mlp: true };
        let s = |v: Vec<Node>| v.iter().map(Node::to_string).collect::<Vec<_>>().join(" ");
        assert_eq!(s(g.senders()), "embed a0.0 a0.1 m0 a1.0 a1.1 m1");
        assert_eq!(
            s(g.receivers()),
            "logits m1.in a1.1.v a1.0.v a1.1.k a1.0.k a1.1.q a1.0.q m0.in a0.1.v a0.0.v a0.1.k a0.0.k a0.1.q a0.0.q"
        );
        assert_eq!(s(g.senders_of(Node::Logits)), "m1 a1.0 a1.1 m0 a0.0 a0.1 embed");
        assert_eq!(s(g.senders_of(Node::MlpIn(1))), "a1.0 a1.1 m0 a0.0 a0.1 embed");
        assert_eq!(s(g.senders_of(Node::HeadInput { layer: 1, head: 0, input: Qkv::Q })), "m0 a0.0 a0.1 embed");
        assert_eq!(s(g.senders_of(Node::MlpIn(0))), "a0.0 a0.1 embed");
        assert_eq!(s(g.senders_of(Node::HeadInput { layer: 0, head: 1, input: Qkv::V })), "embed");
        // Logits 7, m1.in 6, layer 1's 6 inputs 4 each, m0.in 3, layer 0's 6 inputs 1 each.
        assert_eq!(g.edges().len(), 7 + 6 + 6 * 4 + 3 + 6);
        for (i, s) in g.senders().into_iter().enumerate() {
            assert_eq!(g.sender_index(s), i);
        }
        let attn_only = AcdcGraph { n_layer: 2, n_heads: 4, mlp: false };
        assert_eq!(attn_only.edges().len(), 9 + 12 * 5 + 12);
    }

    #[test]
    fn roc_area_as_acdcs_authors_measure_it() {
        let pts = |v: &[(f64, f64)]| v.iter().map(|&(fpr, tpr)| RocPoint { fpr, tpr }).collect::<Vec<_>>();
        assert_eq!(roc_auc(&pts(&[(0.0, 0.0), (1.0, 1.0)])), 0.0);
        assert_eq!(roc_auc(&pts(&[(0.5, 0.5), (0.0, 0.0), (1.0, 1.0)])), 0.25);
        assert_eq!(roc_auc(&pts(&[(0.0, 0.0), (0.25, 0.25), (0.75, 0.5), (1.0, 1.0)])), 0.25);
        // A perfect circuit at some threshold: the whole square.
        assert_eq!(roc_auc(&pts(&[(0.0, 1.0), (1.0, 1.0)])), 1.0);
        // A point below one already passed adds nothing.
        assert_eq!(roc_auc(&pts(&[(0.0, 0.5), (0.5, 0.25)])), 0.5);

        let e = |s, r| Edge::new(s, r);
        let all = [
            e(Node::Embed, Node::Logits),
            e(Node::Head { layer: 0, head: 0 }, Node::Logits),
            e(Node::Mlp(0), Node::Logits),
        ];
        let labelled = HashSet::from([all[0]]);
        let p = roc_point(&HashSet::from([all[0], all[1]]), &labelled, &all);
        assert_eq!((p.fpr, p.tpr), (0.5, 1.0));
    }
}
