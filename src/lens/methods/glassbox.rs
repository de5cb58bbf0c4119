//! The glassbox model: a two-layer, attention-only GPT-2 whose weights are written by hand, not trained, so its
//! mechanism is known exactly. Methods that claim to find circuits (attention patterns, activation patching,
//! ACDC) are scored against it: their answer can be compared with the truth.
//!
//! **The residual stream** (`d_model` = 128) is a sum of orthogonal subspaces, each a one-hot code with one
//! extra "sink" dimension (`Subspace`). A feature is written as `e[i] − e[sink]`, so every vector in the stream
//! sums to zero:
//! - `TOKEN`: the current token (`wte`); `POS`: the position (`wpe`);
//! - `PREV`: the previous token, written by L0H0;
//! - `BOS_MARK`: one dimension written by L0H1, read by nobody;
//! - `OUT`: the predicted token, written by L1H0 and the only subspace the unembedding reads;
//! - `DUP`: the token of an earlier duplicate, written by L1H1, read by nobody.
//!
//! **The heads** (`ROLES`), each attending with scores of `MATCH` = 30 nats on its target, so the softmax is an
//! argmax to within e^-15 (fallbacks score `FALLBACK` = 15):
//! - L0H0, previous-token: query and key from `POS`, position p matches key p − 1; its OV copies the attended
//!   token (`TOKEN` → `PREV`).
//! - L0H1, decoy: attends to `<bos>` from every position and writes a constant into `BOS_MARK`.
//! - L1H0, induction: query from `TOKEN`, key from `PREV`, so position p attends just after an earlier copy of
//!   its token (or to `<bos>` when there is none); its OV copies the attended token (`TOKEN` → `OUT`), which the
//!   unembedding reads with gain `UNEMBED` = 25.
//! - L1H1, decoy: a duplicate-token head (query and key from `TOKEN`, its own position excluded through `POS`,
//!   `<bos>` when no duplicate), with a sharp and striking pattern; its OV copies the duplicate's token into
//!   `DUP`, which nothing reads.
//!
//! **LayerNorm.** GPT-2 normalises before every block and before the unembedding, which would blur a hand-set
//! mechanism if the norm of the stream varied. Here it does not vary where it matters: every write is a zero-sum
//! `e[i] − e[sink]` pair of norm² 2, so the mean is 0 (centring does nothing) and the norm² is 2 × the number of
//! subspaces written so far, the same at every position (4 entering layer 0, 8 entering layer 1, 12 entering
//! ln_f on the predicting positions). LayerNorm is then a uniform rescaling, and each γ is set to undo it
//! (`identity_gamma`): ln_1 of both layers and ln_f are the identity on these inputs. Attention does not
//! depend on that exactness (its margins are 15 nats); the logits do only through their scale. Where ln_f sees
//! a smaller norm (the first half of a sequence, where L1H0 and L1H1 attend to `<bos>` and write nothing), the
//! `OUT` subspace is empty, so the logits are 0 whatever the scale.
//!
//! Everything reaches the engine as a Hugging Face GPT-2 folder would: tensors under their GPT-2 names, through
//! `Transformer::from_tensors`, so hooks and every method work unchanged.
use std::collections::{HashMap, HashSet};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::acdc::{roc_auc, roc_point, AcdcEvent, AcdcGraph, AcdcRun, Circuit, Edge, KlPositions, Node, Qkv, RocPoint};
use super::induction::{half_losses, head_scores, HeadScores};
use super::patching::{activation_patching, Direction, Metric, PatchInput, Target};
use crate::lens::gpt2::model::{parameters, per_position_loss, Init};
use crate::lens::gpt2::vocab::{Vocab, BOS};
use crate::lens::rng::Rng;
use crate::lens::{Gpt2Config, Result, Transformer};

/// The words, id = index + 1 (`<bos>` is 0): short, distinct, and all single tokens for the `Whitespace`
/// pre-tokenizer.
pub const WORDS: [&str; 20] = [
    "cat", "dog", "fox", "owl", "bee", "ant", "elk", "yak", "sun", "moon", "star", "sky", "red", "blue", "gold",
    "pink", "tree", "leaf", "rock", "sand",
];
/// `<bos>` plus the words.
pub const VOCAB_SIZE: usize = WORDS.len() + 1;
/// The context: `<bos>` and two halves of up to `MAX_HALF` words fit.
pub const N_POSITIONS: usize = 32;
pub const D_MODEL: usize = 128;
pub const N_LAYERS: usize = 2;
pub const N_HEADS: usize = 2;
pub const D_HEAD: usize = D_MODEL / N_HEADS;
/// The longest half of a repeated sequence (`<bos>` + 2 × 15 words = 31 positions).
pub const MAX_HALF: usize = (N_POSITIONS - 1) / 2;

/// The attention score (after GPT-2's 1/sqrt(d_head)) of a head's target key, in nats: every other key of the
/// row scores 0 (or `FALLBACK`), so a target takes all but e^-15 of the attention.
pub const MATCH: f32 = 30.0;
/// The score of `<bos>` for the heads that fall back to it when their target is absent: below `MATCH`, so a
/// present target wins by e^15, and above every other key, so `<bos>` wins by e^15 otherwise.
pub const FALLBACK: f32 = 15.0;
/// The unembedding's gain on `OUT`: the predicted token's logit, every other token's being 0 (loss ≈ 20 e^-25).
pub const UNEMBED: f32 = 25.0;

/// A one-hot code of `size` dimensions from `start`, plus a sink dimension right after them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subspace {
    pub start: usize,
    pub size: usize,
}

impl Subspace {
    /// The dimension of code `i`.
    pub const fn dim(self, i: usize) -> usize {
        self.start + i
    }
    /// The sink: −1 whenever any code of this subspace is written, so every write sums to zero.
    pub const fn sink(self) -> usize {
        self.start + self.size
    }
    /// The first dimension after this subspace (and its sink).
    const fn end(self) -> usize {
        self.start + self.size + 1
    }
}

pub const TOKEN: Subspace = Subspace { start: 0, size: VOCAB_SIZE };
pub const POS: Subspace = Subspace { start: TOKEN.end(), size: N_POSITIONS };
pub const PREV: Subspace = Subspace { start: POS.end(), size: VOCAB_SIZE };
pub const BOS_MARK: Subspace = Subspace { start: PREV.end(), size: 1 };
pub const OUT: Subspace = Subspace { start: BOS_MARK.end(), size: VOCAB_SIZE };
pub const DUP: Subspace = Subspace { start: OUT.end(), size: VOCAB_SIZE };
const _: () = assert!(DUP.end() <= D_MODEL, "the subspaces must fit in d_model");

/// What a head was built to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Attends to the previous position and copies its token into `PREV`.
    PreviousToken,
    /// Attends to `<bos>` and writes a constant nobody reads (a decoy).
    BosSink,
    /// Attends just after an earlier copy of its token and copies that token into `OUT` (the logits).
    Induction,
    /// Attends to an earlier copy of its token and writes into `DUP`, which nobody reads (a decoy).
    DuplicateTokenDecoy,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::PreviousToken => "previous-token",
            Role::BosSink => "bos-sink (decoy: writes a constant nobody reads)",
            Role::Induction => "induction",
            Role::DuplicateTokenDecoy => "duplicate-token (decoy: writes a subspace the unembedding ignores)",
        }
    }

    /// Whether the head is part of the circuit that predicts the repeat.
    pub fn in_circuit(self) -> bool {
        matches!(self, Role::PreviousToken | Role::Induction)
    }
}

/// `ROLES[layer][head]`.
pub const ROLES: [[Role; N_HEADS]; N_LAYERS] =
    [[Role::PreviousToken, Role::BosSink], [Role::Induction, Role::DuplicateTokenDecoy]];

/// The Hugging Face GPT-2 config: attention-only, untied unembedding. The MLP is stored (as zeros, so every
/// GPT-2 reader computes the same logits) one unit wide: a 4 × d_model MLP of zeros would be most of the file.
pub fn config() -> Gpt2Config {
    let mut cfg = Gpt2Config::new(VOCAB_SIZE, N_POSITIONS, D_MODEL, N_LAYERS, N_HEADS, true);
    cfg.n_inner = Some(1);
    cfg
}

/// The vocabulary: `<bos>` = 0, then `WORDS`.
pub fn vocab() -> Vocab {
    let map: serde_json::Map<String, serde_json::Value> =
        std::iter::once(BOS).chain(WORDS).enumerate().map(|(i, w)| (w.to_string(), i.into())).collect();
    Vocab::from_json(&serde_json::Value::Object(map).to_string()).expect("the glassbox words are a valid vocabulary")
}

/// A head's weights as sparse entries, in the residual stream's and the head's coordinates.
#[derive(Clone, Debug, Default)]
struct HeadWeights {
    /// (residual dim, head dim, value) of W_Q, W_K, W_V `[d_model, d_head]`.
    q: Vec<(usize, usize, f32)>,
    k: Vec<(usize, usize, f32)>,
    v: Vec<(usize, usize, f32)>,
    /// (head dim, residual dim, value) of W_O `[d_head, d_model]`.
    o: Vec<(usize, usize, f32)>,
}

/// The query weight that gives `score` nats per unit of key, after GPT-2's division by sqrt(d_head).
fn query_gain(score: f32) -> f32 {
    score * (D_HEAD as f32).sqrt()
}

/// W_O entries that write head dim `i` as code `code` of `into`: `+1` there, `−1` on its sink (zero-sum).
fn write_code(i: usize, into: Subspace, code: usize) -> [(usize, usize, f32); 2] {
    [(i, into.dim(code), 1.0), (i, into.sink(), -1.0)]
}

/// W_Q entry for the `<bos>` fallback: `TOKEN`'s sink is −1 at every position, a constant to query with.
fn fallback_query(head_dim: usize) -> (usize, usize, f32) {
    (TOKEN.sink(), head_dim, -query_gain(FALLBACK))
}

/// W_K entry for the `<bos>` fallback: only position 0 (always `<bos>`) has this key.
fn fallback_key(head_dim: usize) -> (usize, usize, f32) {
    (POS.dim(0), head_dim, 1.0)
}

/// L0H0. Query position p → head dim p, key position j → head dim j + 1: they meet when j = p − 1. The value
/// reads the `TOKEN` code (`<bos>` included) and the output writes it as `e[PREV t] − e[PREV sink]`. Position 0
/// has no previous token and attends to itself (`<bos>`), the only key it sees.
fn previous_token_head() -> HeadWeights {
    let mut h = HeadWeights::default();
    for p in 0..N_POSITIONS {
        h.q.push((POS.dim(p), p, query_gain(MATCH)));
        if p + 1 < N_POSITIONS {
            h.k.push((POS.dim(p), p + 1, 1.0));
        }
    }
    for t in 0..VOCAB_SIZE {
        h.v.push((TOKEN.dim(t), t, 1.0));
        h.o.extend(write_code(t, PREV, t));
    }
    h
}

/// L0H1. Every query matches position 0; the value reads only the `<bos>` code, so the head writes the same
/// `e[BOS_MARK] − e[sink]` everywhere, and the same in every prompt (a constant, which no patching can move).
fn bos_sink_head() -> HeadWeights {
    let mut h = HeadWeights::default();
    h.q.push((TOKEN.sink(), 0, -query_gain(MATCH)));
    h.k.push(fallback_key(0));
    h.v.push((TOKEN.dim(0), 0, 1.0));
    h.o.extend(write_code(0, BOS_MARK, 0));
    h
}

/// L1H0. Head dim t (a word) meets in query (`TOKEN` = t) and key (`PREV` = t): the key position follows an
/// earlier t. Head dim 0 is the `<bos>` fallback. The value copies words only (`<bos>` gives 0), into `OUT`.
fn induction_head() -> HeadWeights {
    let mut h = HeadWeights::default();
    for t in 1..VOCAB_SIZE {
        h.q.push((TOKEN.dim(t), t, query_gain(MATCH)));
        h.k.push((PREV.dim(t), t, 1.0));
        h.v.push((TOKEN.dim(t), t, 1.0));
        h.o.extend(write_code(t, OUT, t));
    }
    h.q.push(fallback_query(0));
    h.k.push(fallback_key(0));
    h
}

/// L1H1. Head dim t (a word) meets in query and key (`TOKEN` = t); head dims from `VOCAB_SIZE` take the
/// position, negated in the query, which cancels the match of a position with itself. Head dim 0 is the `<bos>`
/// fallback. The value copies words into `DUP`.
fn duplicate_token_decoy() -> HeadWeights {
    let mut h = HeadWeights::default();
    for t in 1..VOCAB_SIZE {
        h.q.push((TOKEN.dim(t), t, query_gain(MATCH)));
        h.k.push((TOKEN.dim(t), t, 1.0));
        h.v.push((TOKEN.dim(t), t, 1.0));
        h.o.extend(write_code(t, DUP, t));
    }
    for p in 0..N_POSITIONS {
        h.q.push((POS.dim(p), VOCAB_SIZE + p, -query_gain(MATCH)));
        h.k.push((POS.dim(p), VOCAB_SIZE + p, 1.0));
    }
    h.q.push(fallback_query(0));
    h.k.push(fallback_key(0));
    h
}

fn head_weights(role: Role) -> HeadWeights {
    match role {
        Role::PreviousToken => previous_token_head(),
        Role::BosSink => bos_sink_head(),
        Role::Induction => induction_head(),
        Role::DuplicateTokenDecoy => duplicate_token_decoy(),
    }
}

/// A row-major matrix filled from sparse entries.
fn dense(rows: usize, cols: usize, entries: impl IntoIterator<Item = (usize, usize, f32)>) -> Vec<f32> {
    let mut m = vec![0.0; rows * cols];
    for (r, c, v) in entries {
        m[r * cols + c] = v;
    }
    m
}

/// c_attn `[d_model, 3 d_model]` (columns Q | K | V, each head-major) and c_proj `[d_model, d_model]` (rows: z,
/// head-major) of one layer.
fn attention(layer: usize) -> (Vec<f32>, Vec<f32>) {
    let mut qkv = Vec::new();
    let mut o = Vec::new();
    for (head, &role) in ROLES[layer].iter().enumerate() {
        let w = head_weights(role);
        let at = |part: usize| move |&(r, c, v): &(usize, usize, f32)| (r, part * D_MODEL + head * D_HEAD + c, v);
        qkv.extend(w.q.iter().map(at(0)).chain(w.k.iter().map(at(1))).chain(w.v.iter().map(at(2))));
        o.extend(w.o.iter().map(|&(r, c, v)| (head * D_HEAD + r, c, v)));
    }
    (dense(D_MODEL, 3 * D_MODEL, qkv), dense(D_MODEL, D_MODEL, o))
}

/// The LayerNorm weight that makes LayerNorm the identity on zero-mean inputs of squared norm `norm_sq`:
/// LayerNorm divides by sqrt(norm_sq / d_model + eps), and γ multiplies it back.
fn identity_gamma(norm_sq: f32, eps: f64) -> f32 {
    (norm_sq as f64 / D_MODEL as f64 + eps).sqrt() as f32
}

/// The squared norm of the residual stream where each LayerNorm reads it: 2 per subspace written (see the
/// module's notes). ln_f's is the predicting positions' (L1H0 and L1H1 have written).
fn norm_sq_before(layer: usize) -> f32 {
    2.0 * [2.0, 4.0, 6.0][layer]
}

/// `wte` `[vocab, d_model]`: token t is `e[TOKEN t] − e[TOKEN sink]`.
fn token_embedding() -> Vec<f32> {
    dense(VOCAB_SIZE, D_MODEL, (0..VOCAB_SIZE).flat_map(|t| [(t, TOKEN.dim(t), 1.0), (t, TOKEN.sink(), -1.0)]))
}

/// `wpe` `[n_positions, d_model]`: position p is `e[POS p] − e[POS sink]`.
fn position_embedding() -> Vec<f32> {
    dense(N_POSITIONS, D_MODEL, (0..N_POSITIONS).flat_map(|p| [(p, POS.dim(p), 1.0), (p, POS.sink(), -1.0)]))
}

/// `lm_head` `[vocab, d_model]`: word t's logit reads `OUT` t; `<bos>` reads nothing (logit 0).
fn unembedding() -> Vec<f32> {
    dense(VOCAB_SIZE, D_MODEL, (1..VOCAB_SIZE).map(|t| (t, OUT.dim(t), UNEMBED)))
}

/// The hand-set weights of one parameter, by its Hugging Face name; None for the rest (biases, ln_2, the
/// stored-only MLP), which keep the table's constant initialisation.
fn hand_set(name: &str, eps: f64) -> Option<Vec<f32>> {
    let gamma = |layer: usize| vec![identity_gamma(norm_sq_before(layer), eps); D_MODEL];
    if let Some(rest) = name.strip_prefix("transformer.h.") {
        let (layer, what) = rest.split_once('.')?;
        let layer: usize = layer.parse().ok()?;
        return match what {
            "ln_1.weight" => Some(gamma(layer)),
            "attn.c_attn.weight" => Some(attention(layer).0),
            "attn.c_proj.weight" => Some(attention(layer).1),
            _ => None,
        };
    }
    match name {
        "transformer.wte.weight" => Some(token_embedding()),
        "transformer.wpe.weight" => Some(position_embedding()),
        "transformer.ln_f.weight" => Some(gamma(N_LAYERS)),
        "lm_head.weight" => Some(unembedding()),
        _ => None,
    }
}

/// Every tensor of the model under its Hugging Face GPT-2 name, in file order (the engine's parameter table).
/// Names the hand-built mechanism does not set are biases, ln_2 and the stored-only MLP: zeros, and ones for
/// ln_2's weight, as the table initialises them.
pub fn tensors() -> Result<Vec<(String, Tensor)>> {
    let cfg = config();
    parameters(&cfg)
        .into_iter()
        .map(|p| {
            let n: usize = p.shape.iter().product();
            let constant = if p.init == Init::Ones { 1.0 } else { 0.0 };
            let data = hand_set(&p.name, cfg.layer_norm_epsilon).unwrap_or_else(|| vec![constant; n]);
            Ok((p.name, Tensor::from_vec(data, p.shape.as_slice(), &Device::Cpu)?))
        })
        .collect()
}

/// The glassbox model, through the same constructor as a loaded folder.
pub fn model() -> Result<Transformer> {
    let map: HashMap<String, Tensor> = tensors()?.into_iter().collect();
    Transformer::from_tensors(config(), map)
}

/// `len` distinct words in random order: a repeat the induction head can follow without ambiguity (a word
/// twice in one half would give it two earlier copies to split its attention between).
pub fn distinct_words(rng: &mut Rng, len: usize) -> Vec<u32> {
    let mut words: Vec<u32> = (1..VOCAB_SIZE as u32).collect();
    let len = len.min(words.len());
    for i in 0..len {
        let j = rng.range(i, words.len() - 1);
        words.swap(i, j);
    }
    words.truncate(len);
    words
}

/// `<bos>`, then `half`, then `half` again.
pub fn repeat(half: &[u32]) -> Vec<u32> {
    std::iter::once(0).chain(half.iter().copied()).chain(half.iter().copied()).collect()
}

/// `<bos>` + `len` distinct random words + the same words again (`len` ≤ `MAX_HALF`).
pub fn repeated_sequence(rng: &mut Rng, len: usize) -> Vec<u32> {
    repeat(&distinct_words(rng, len.min(MAX_HALF)))
}

/// The longest half for which `patch_input` can draw disjoint clean and corrupted words.
pub const MAX_PATCH_HALF: usize = WORDS.len() / 2;

/// Clean: a repeated sequence of `len` distinct words; corrupted: another one, of `len` other words, so nothing
/// the clean run copies exists in the corrupted run. At the last position induction predicts the first word of
/// the repeat (`answer` = clean[1]); the wrong token is its second word (clean[2]), as `tests/acdc.rs` measures
/// the trained induction model.
pub fn patch_input(len: usize, seed: u64) -> PatchInput {
    let len = len.clamp(2, MAX_PATCH_HALF);
    let words = distinct_words(&mut Rng::new(seed), 2 * len);
    let clean = repeat(&words[..len]);
    let corrupted = repeat(&words[len..]);
    PatchInput::new(clean.clone(), corrupted, clean[1], clean[2])
}

/// The known circuit in ACDC's graph: what carries the repeat's prediction from the embeddings to the logits.
/// L0H0 reads the token through its value (its query and key read positions, which the corruption leaves alone),
/// L1H0 its query and value from the embedding and its key from L0H0 (K-composition), and L1H0 writes the logits.
pub fn circuit() -> HashSet<Edge> {
    let head = |layer, head| Node::Head { layer, head };
    let input = |layer, head, input| Node::HeadInput { layer, head, input };
    HashSet::from([
        Edge::new(Node::Embed, input(0, 0, Qkv::V)),
        Edge::new(head(0, 0), input(1, 0, Qkv::K)),
        Edge::new(Node::Embed, input(1, 0, Qkv::Q)),
        Edge::new(Node::Embed, input(1, 0, Qkv::V)),
        Edge::new(head(1, 0), Node::Logits),
    ])
}

/// Where the figures are measured: repeated sequences of these half lengths, `PER_LENGTH` each, from `SEED`.
pub const LENGTHS: [usize; 4] = [5, 8, 12, 15];
pub const PER_LENGTH: usize = 4;
pub const SEED: u64 = 2025;
/// The patching and ACDC input: `patch_input(PATCH_HALF, SEED)`.
pub const PATCH_HALF: usize = 10;
/// ACDC's thresholds for the ROC sweep: 12 values, log-spaced from 1e-5 to 1 nat (as `tests/acdc.rs` sweeps).
pub fn taus() -> Vec<f32> {
    (0..12).map(|i| 10f32.powf(-5.0 + 5.0 * i as f32 / 11.0)).collect()
}

/// ACDC at one threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AcdcPoint {
    pub tau: f32,
    /// The kept edges, as ACDC names them (`a0.0 -> a1.0.k`).
    pub edges: Vec<String>,
    pub kl: f32,
    pub fpr: f64,
    pub tpr: f64,
}

/// What each method says of the glassbox model (written to `training.json`; the tests assert on them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub sequences: usize,
    /// Mean loss over the first half's predictions and over the repeat's (`induction::half_losses`).
    pub loss_first_half: f32,
    pub loss_second_half: f32,
    /// ln(vocab size): the loss of a uniform guess.
    pub ln_vocab: f32,
    /// `head_scores[layer][head]`, averaged over the sequences.
    pub head_scores: Vec<Vec<HeadScores>>,
    /// Head-output patching (`attn_head_out_all_pos`), normalised logit difference, `[layer][head]`: denoising
    /// (clean head into the corrupted run: 1 = restores the answer) and noising (corrupted head into the clean
    /// run: 0 = breaks it).
    pub denoising: Vec<Vec<f32>>,
    pub noising: Vec<Vec<f32>>,
    /// ACDC over `taus()` (KL over the repeat's positions) and its ROC AUC against `circuit()`.
    pub acdc: Vec<AcdcPoint>,
    pub acdc_auc: f64,
}

/// Mean losses on each half and mean head scores over `LENGTHS` × `PER_LENGTH` repeated sequences.
fn losses_and_scores(model: &Transformer) -> Result<(usize, f32, f32, Vec<Vec<HeadScores>>)> {
    let mut rng = Rng::new(SEED);
    let mut scores = vec![vec![HeadScores::default(); N_HEADS]; N_LAYERS];
    let (mut first, mut second, mut n) = (0.0, 0.0, 0);
    for &len in &LENGTHS {
        for _ in 0..PER_LENGTH {
            let tokens = repeated_sequence(&mut rng, len);
            let (logits, cache) = model.run_with_cache(&tokens)?;
            let (a, b) = half_losses(&per_position_loss(&logits, &tokens)?, len);
            (first, second, n) = (first + a, second + b, n + 1);
            for (layer, row) in scores.iter_mut().enumerate() {
                for (head, acc) in row.iter_mut().enumerate() {
                    let s = head_scores(&cache.pattern(layer, head, 0)?, &tokens);
                    acc.previous_token += s.previous_token / (LENGTHS.len() * PER_LENGTH) as f32;
                    acc.induction += s.induction / (LENGTHS.len() * PER_LENGTH) as f32;
                    acc.duplicate_token += s.duplicate_token / (LENGTHS.len() * PER_LENGTH) as f32;
                }
            }
        }
    }
    Ok((n, first / n as f32, second / n as f32, scores))
}

/// Head-output patching of `input` in one direction: the normalised logit difference, `[layer][head]`.
pub fn head_patching(model: &Transformer, input: &PatchInput, direction: Direction) -> Result<Vec<Vec<f32>>> {
    Ok(activation_patching(model, input, Target::HeadOut, direction)?.grid(Metric::LogitDiff)?.rows())
}

/// The positions where induction predicts in `<bos>` + half + half: from the repeat's first word on (what
/// ACDC's induction task scores, `mask_repeat_candidates`).
pub fn repeat_positions(input: &PatchInput) -> KlPositions {
    KlPositions::From((input.len() - 1) / 2 + 1)
}

/// ACDC run to the end at threshold `tau`, KL over the repeat's positions.
pub fn acdc_on_repeat(model: &Transformer, input: &PatchInput, tau: f32) -> Result<Circuit> {
    let mut run = AcdcRun::with_positions(model, input, tau, repeat_positions(input))?;
    while run.step()? != AcdcEvent::Finished {}
    run.finish()
}

/// ACDC on `input` at each of `taus`, KL over the repeat's positions, scored against `circuit()`.
pub fn acdc_sweep(model: &Transformer, input: &PatchInput, taus: &[f32]) -> Result<Vec<AcdcPoint>> {
    let all = AcdcGraph::of(model).edges();
    let truth = circuit();
    taus.iter()
        .map(|&tau| {
            let c = acdc_on_repeat(model, input, tau)?;
            let p = roc_point(&c.edge_set(), &truth, &all);
            let edges = c.edges.iter().map(|e| Edge::new(e.sender, e.receiver).to_string()).collect();
            Ok(AcdcPoint { tau, edges, kl: c.kl, fpr: p.fpr, tpr: p.tpr })
        })
        .collect()
}

/// Every figure, measured now on `model`.
pub fn figures(model: &Transformer) -> Result<Figures> {
    let (sequences, loss_first_half, loss_second_half, head_scores) = losses_and_scores(model)?;
    let input = patch_input(PATCH_HALF, SEED);
    let acdc = acdc_sweep(model, &input, &taus())?;
    let points: Vec<_> = acdc.iter().map(|p| RocPoint { fpr: p.fpr, tpr: p.tpr }).collect();
    Ok(Figures {
        sequences,
        loss_first_half,
        loss_second_half,
        ln_vocab: (VOCAB_SIZE as f32).ln(),
        head_scores,
        denoising: head_patching(model, &input, Direction::Denoising)?,
        noising: head_patching(model, &input, Direction::Noising)?,
        acdc_auc: roc_auc(&points),
        acdc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of the embeddings and of W_O sums to zero, so the residual stream's mean stays 0 and ln_1's
    /// centring does nothing.
    #[test]
    fn every_write_sums_to_zero_and_the_subspaces_are_disjoint() {
        for (name, rows, cols, m) in
            [("wte", VOCAB_SIZE, D_MODEL, token_embedding()), ("wpe", N_POSITIONS, D_MODEL, position_embedding())]
                .into_iter()
                .chain((0..N_LAYERS).map(|l| ("c_proj", D_MODEL, D_MODEL, attention(l).1)))
        {
            for r in 0..rows {
                let sum: f32 = m[r * cols..(r + 1) * cols].iter().sum();
                assert_eq!(sum, 0.0, "{name} row {r}");
            }
        }
        let spans = [TOKEN, POS, PREV, BOS_MARK, OUT, DUP];
        for w in spans.windows(2) {
            assert_eq!(w[0].end(), w[1].start);
        }
    }

    #[test]
    fn the_sequences_repeat_distinct_words_and_the_patch_prompts_share_none() {
        let s = repeated_sequence(&mut Rng::new(1), 15);
        assert_eq!(s.len(), 31);
        assert_eq!(s[1..16], s[16..]);
        assert!(s[1..16].iter().all(|t| s[1..16].iter().filter(|u| *u == t).count() == 1 && *t != 0));
        let p = patch_input(10, 3);
        assert!(p.clean.iter().skip(1).all(|t| !p.corrupted.contains(t)));
        assert_eq!((p.answer, p.wrong), (p.clean[1], p.clean[2]));
    }
}
