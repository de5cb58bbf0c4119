//! The glassbox model (`lens::methods::glassbox`): a two-layer attention-only GPT-2 with hand-set weights, whose
//! circuit is known, and what each method makes of it:
//! - the model built in code is the shipped folder (`public/models/glassbox/`), and its `training.json` holds the
//!   figures measured now;
//! - LayerNorm is the identity on its inputs (the mechanism survives GPT-2's layout);
//! - it predicts the repeat of a repeated sequence (loss ≈ 0) and guesses uniformly before it (≈ ln vocab);
//! - attention patterns (the head detector) see every head it was built with, decoys included;
//! - head-output patching finds the two circuit heads and not the decoys;
//! - ACDC recovers exactly the known edges over a sweep of τ (ROC AUC 1);
//! - a summary of which method recovers which head (`cargo test --test glassbox -- --nocapture`).
use std::collections::{HashMap, HashSet};

use candle_core::Tensor;
use glassbox::lens::gpt2::hf::word_tokenizer_json as tokenizer_json;
use glassbox::lens::gpt2::hooks::Hook;
use glassbox::lens::gpt2::model::per_position_loss;
use glassbox::lens::gpt2::vocab::Vocab;
use glassbox::lens::methods::acdc::{roc_auc, AcdcGraph, Edge, RocPoint};
use glassbox::lens::methods::glassbox::{self as hand_built, Role, ROLES};
use glassbox::lens::methods::induction::{half_losses, head_scores, HeadScores};
use glassbox::lens::methods::patching::{Direction, PatchInput};
use glassbox::lens::rng::Rng;
use glassbox::lens::{Gpt2Config, Transformer};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/glassbox");

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{file}")).unwrap_or_else(|e| panic!("{DIR}/{file}: {e}"))
}

fn shipped() -> Transformer {
    let weights = std::fs::read(format!("{DIR}/model.safetensors")).expect("the glassbox model is shipped");
    Transformer::from_bytes(&read("config.json"), &weights).unwrap()
}

fn built() -> Transformer {
    hand_built::model().unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn name(layer: usize, head: usize) -> String {
    format!("L{layer}H{head}")
}

/// Every (layer, head) in order.
fn heads() -> impl Iterator<Item = (usize, usize)> {
    (0..hand_built::N_LAYERS).flat_map(|l| (0..hand_built::N_HEADS).map(move |h| (l, h)))
}

/// Repeated sequences of distinct words at every half length from 2 to `MAX_HALF`, three each.
fn repeated_sequences(seed: u64) -> Vec<(usize, Vec<u32>)> {
    let mut rng = Rng::new(seed);
    (2..=hand_built::MAX_HALF)
        .flat_map(|len| (0..3).map(|_| (len, hand_built::repeated_sequence(&mut rng, len))).collect::<Vec<_>>())
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// The folder.
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn the_model_built_in_code_is_the_shipped_folder() {
    let cfg = Gpt2Config::from_json(&read("config.json")).unwrap();
    assert_eq!(cfg, hand_built::config());
    assert!(cfg.attn_only);
    let (a, b) = (built(), shipped());
    let mut worst = 0.0f32;
    for (_, tokens) in repeated_sequences(1) {
        worst = worst.max(max_abs_diff(&flat(&a.logits(&tokens).unwrap()), &flat(&b.logits(&tokens).unwrap())));
    }
    // Every tensor, bit for bit.
    let saved: HashMap<String, Tensor> = b.to_tensors().unwrap().into_iter().collect();
    for (n, t) in a.to_tensors().unwrap() {
        assert_eq!(flat(&t), flat(&saved[&n]), "{n}");
    }
    eprintln!("built vs shipped: max |logit difference| {worst:.1e} over {} sequences", repeated_sequences(1).len());
    assert_eq!(worst, 0.0);

    let vocab = Vocab::from_json(&read("vocab.json")).unwrap();
    assert_eq!(vocab.len(), cfg.vocab_size);
    assert!((0..vocab.len() as u32).all(|i| vocab.word(i) == hand_built::vocab().word(i)));
    let tokenizer: serde_json::Value = serde_json::from_str(&read("tokenizer.json")).unwrap();
    assert_eq!(tokenizer, tokenizer_json(&vocab));

    let report: serde_json::Value = serde_json::from_str(&read("training.json")).unwrap();
    assert_eq!(report["hand_built"], true);
    for (l, h) in heads() {
        assert_eq!(report["heads"][name(l, h)], ROLES[l][h].name(), "{}", name(l, h));
    }
}

/// The figures in `training.json` are what the engine measures now (the file cannot drift from the code).
#[test]
fn training_json_holds_the_figures_measured_now() {
    let report: serde_json::Value = serde_json::from_str(&read("training.json")).unwrap();
    let stored: hand_built::Figures = serde_json::from_value(report["figures"].clone()).unwrap();
    let now = hand_built::figures(&shipped()).unwrap();
    assert_eq!(
        stored.acdc.iter().map(|p| &p.edges).collect::<Vec<_>>(),
        now.acdc.iter().map(|p| &p.edges).collect::<Vec<_>>()
    );
    let (a, b) = (serde_json::to_value(&stored).unwrap(), serde_json::to_value(&now).unwrap());
    assert_close(&a, &b, "figures");
}

/// Numbers equal to 1e-4 relative, everything else exactly.
fn assert_close(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value::{Array, Number, Object};
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-4 * (1.0 + x.abs().max(y.abs())), "{at}: {x} vs {y}");
        }
        (Array(x), Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            x.iter().zip(y).enumerate().for_each(|(i, (x, y))| assert_close(x, y, &format!("{at}[{i}]")));
        }
        (Object(x), Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}");
            x.iter().for_each(|(k, v)| assert_close(v, &y[k], &format!("{at}.{k}")));
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// LayerNorm and the losses.
// ---------------------------------------------------------------------------------------------------------------

/// Every LayerNorm's output equals its input (to 1e-4 of a unit code) where the mechanism reads it: ln_1 at every
/// position of both layers, ln_f on the repeat's positions. The stream's mean stays 0 throughout.
#[test]
fn layer_norm_is_the_identity_where_the_mechanism_reads_it() {
    let model = built();
    let (mut worst_ln1, mut worst_lnf, mut worst_mean) = (0.0f32, 0.0f32, 0.0f32);
    for (len, tokens) in repeated_sequences(2) {
        let (_, cache) = model.run_with_cache(&tokens).unwrap();
        let rows = |hook: Hook| -> Vec<Vec<f32>> { cache.get(hook).unwrap().get(0).unwrap().to_vec2().unwrap() };
        for layer in 0..hand_built::N_LAYERS {
            let (x, y) = (rows(Hook::ResidPre(layer)), rows(Hook::Ln1Normalized(layer)));
            for (x, y) in x.iter().zip(&y) {
                worst_ln1 = worst_ln1.max(max_abs_diff(x, y));
                worst_mean = worst_mean.max((x.iter().sum::<f32>() / x.len() as f32).abs());
            }
        }
        let (x, y) = (rows(Hook::ResidPost(hand_built::N_LAYERS - 1)), rows(Hook::LnFinalNormalized));
        for p in len + 1..tokens.len() {
            worst_lnf = worst_lnf.max(max_abs_diff(&x[p], &y[p]));
        }
    }
    eprintln!(
        "LayerNorm out − in: ln_1 (both layers, every position) {worst_ln1:.1e}, ln_f (the repeat) {worst_lnf:.1e}; \
         largest |mean| of the stream {worst_mean:.1e}"
    );
    assert!(worst_ln1 < 1e-4 && worst_lnf < 1e-4 && worst_mean < 1e-6);
}

#[test]
fn the_repeat_is_predicted_and_the_first_half_is_a_uniform_guess() {
    let model = built();
    let (mut first, mut second, mut worst_second) = (0.0, 0.0, 0.0f32);
    let seqs = repeated_sequences(3);
    for (len, tokens) in &seqs {
        let loss = per_position_loss(&model.logits(tokens).unwrap(), tokens).unwrap();
        let (a, b) = half_losses(&loss, *len);
        first += a / seqs.len() as f32;
        second += b / seqs.len() as f32;
        worst_second = worst_second.max(loss[len + 1..].iter().copied().fold(0.0, f32::max));
    }
    let ln_vocab = (hand_built::VOCAB_SIZE as f32).ln();
    eprintln!(
        "{} repeated sequences (halves of 2 to {} words): loss first half {first:.4} nats (ln {} = {ln_vocab:.4}), \
         repeated half {second:.2e} (worst position {worst_second:.2e})",
        seqs.len(),
        hand_built::MAX_HALF,
        hand_built::VOCAB_SIZE
    );
    assert!((first - ln_vocab).abs() < 1e-3, "first half {first} vs ln vocab {ln_vocab}");
    assert!(second < 1e-4 && worst_second < 1e-3, "repeated half {second}, worst {worst_second}");
}

// ---------------------------------------------------------------------------------------------------------------
// The three methods.
// ---------------------------------------------------------------------------------------------------------------

/// Mean head-detector scores `[layer][head]` over repeated sequences.
fn mean_head_scores(model: &Transformer) -> Vec<Vec<HeadScores>> {
    let seqs = repeated_sequences(4);
    let n = seqs.len() as f32;
    let mut scores = vec![vec![HeadScores::default(); hand_built::N_HEADS]; hand_built::N_LAYERS];
    for (_, tokens) in &seqs {
        let (_, cache) = model.run_with_cache(tokens).unwrap();
        for (l, h) in heads() {
            let s = head_scores(&cache.pattern(l, h, 0).unwrap(), tokens);
            let acc = &mut scores[l][h];
            acc.previous_token += s.previous_token / n;
            acc.induction += s.induction / n;
            acc.duplicate_token += s.duplicate_token / n;
        }
    }
    scores
}

/// Attention on `<bos>` averaged over every query row after position 0.
fn bos_attention(model: &Transformer, layer: usize, head: usize) -> f32 {
    let seqs = repeated_sequences(5);
    let mut sum = 0.0;
    let mut rows = 0;
    for (_, tokens) in &seqs {
        let (_, cache) = model.run_with_cache(tokens).unwrap();
        let p = cache.pattern(layer, head, 0).unwrap();
        sum += p[1..].iter().map(|r| r[0]).sum::<f32>();
        rows += p.len() - 1;
    }
    sum / rows as f32
}

#[test]
fn attention_patterns_see_every_head_it_was_built_with_decoys_included() {
    let model = built();
    let s = mean_head_scores(&model);
    for (l, h) in heads() {
        let x = s[l][h];
        eprintln!(
            "{} ({}): previous-token {:.3}, induction {:.3}, duplicate-token {:.3}",
            name(l, h),
            ROLES[l][h].name(),
            x.previous_token,
            x.induction,
            x.duplicate_token
        );
    }
    let bos = bos_attention(&model, 0, 1);
    eprintln!("L0H1: mean attention on <bos> {bos:.4}");
    assert!(s[0][0].previous_token >= 0.9, "L0H0 previous-token {}", s[0][0].previous_token);
    assert!(s[1][0].induction >= 0.9, "L1H0 induction {}", s[1][0].induction);
    assert!(s[1][1].duplicate_token >= 0.9, "L1H1 duplicate-token {}", s[1][1].duplicate_token);
    assert!(bos >= 0.9, "L0H1 on <bos> {bos}");
    // Each head looks like its own role only.
    assert!(s[1][1].induction < 0.1 && s[1][0].duplicate_token < 0.1 && s[0][0].induction < 0.1);
}

fn input() -> PatchInput {
    hand_built::patch_input(hand_built::PATCH_HALF, hand_built::SEED)
}

/// Denoising (the clean head into the corrupted run) restores the answer only through the induction head, which
/// alone carries the clean token to the logits; the previous-token head's clean output is useless once the
/// query and value read corrupted words. Noising (the corrupted head into the clean run) breaks the answer
/// through either circuit head. The decoys do nothing in either direction.
#[test]
fn patching_finds_the_circuit_heads_and_not_the_decoys() {
    let model = built();
    let input = input();
    let denoising = hand_built::head_patching(&model, &input, Direction::Denoising).unwrap();
    let noising = hand_built::head_patching(&model, &input, Direction::Noising).unwrap();
    for (l, h) in heads() {
        eprintln!(
            "{}: denoising restores {:+.4}, noising leaves {:+.4} (effect {:+.4})",
            name(l, h),
            denoising[l][h],
            noising[l][h],
            1.0 - noising[l][h]
        );
    }
    assert!(denoising[1][0] > 0.99, "denoising L1H0 {}", denoising[1][0]);
    for (l, h) in [(0, 0), (1, 0)] {
        assert!(1.0 - noising[l][h] > 0.99, "noising {} leaves {}", name(l, h), noising[l][h]);
    }
    for (l, h) in [(0, 1), (1, 1)] {
        assert!(denoising[l][h].abs() < 1e-3, "denoising {} {}", name(l, h), denoising[l][h]);
        assert!((1.0 - noising[l][h]).abs() < 1e-3, "noising {} {}", name(l, h), noising[l][h]);
    }
}

#[test]
fn acdc_recovers_exactly_the_known_edges() {
    let model = built();
    let input = input();
    let truth = hand_built::circuit();
    let all = AcdcGraph::of(&model).edges();
    let points = hand_built::acdc_sweep(&model, &input, &hand_built::taus()).unwrap();
    let names: HashSet<String> = truth.iter().map(Edge::to_string).collect();
    for p in &points {
        eprintln!("τ {:.1e}: {} edges, KL {:.1e}, FPR {:.2}, TPR {:.2}", p.tau, p.edges.len(), p.kl, p.fpr, p.tpr);
        assert_eq!(p.edges.iter().cloned().collect::<HashSet<_>>(), names, "τ = {}", p.tau);
    }
    let auc = roc_auc(&points.iter().map(|p| RocPoint { fpr: p.fpr, tpr: p.tpr }).collect::<Vec<_>>());
    let mut kept: Vec<String> = names.into_iter().collect();
    kept.sort();
    eprintln!("kept at every τ: {kept:?} ({} of {} edges); ROC AUC {auc:.3}", truth.len(), all.len());
    assert_eq!(auc, 1.0);

    // What each kept edge costs, and that the decoys' edges cost nothing: at the smallest τ the circuit alone
    // reproduces the clean run.
    let c = hand_built::acdc_on_repeat(&model, &input, hand_built::taus()[0]).unwrap();
    for e in &c.edges {
        eprintln!("  {} -> {}: removing it raises the KL by {:.2} nats", e.sender, e.receiver, e.effect);
        assert!(e.effect > 1.0);
    }
    eprintln!(
        "circuit KL {:.1e} (corrupted run {:.2}), normalised logit difference {:?}",
        c.kl, c.kl_corrupted, c.logit_diff
    );
    assert!(c.kl < 1e-4 && c.kl_corrupted > 5.0);
}

/// Which method recovers which head: attention patterns flag all four, patching and ACDC only the circuit.
#[test]
fn scoring_summary() {
    let model = built();
    let scores = mean_head_scores(&model);
    let input = input();
    let noising = hand_built::head_patching(&model, &input, Direction::Noising).unwrap();
    let circuit = hand_built::acdc_on_repeat(&model, &input, 1e-3).unwrap();
    eprintln!("head   role (built)            attention pattern says          patching (noising)   ACDC");
    let mut agree = 0;
    for (l, h) in heads() {
        let s = scores[l][h];
        let looks = if s.previous_token >= 0.9 {
            "previous-token".to_string()
        } else if s.induction >= 0.9 {
            "induction".to_string()
        } else if s.duplicate_token >= 0.9 {
            "duplicate-token".to_string()
        } else {
            format!("<bos> {:.2}", bos_attention(&model, l, h))
        };
        let patching = 1.0 - noising[l][h] > 0.5;
        let acdc = circuit.nodes.contains(&glassbox::lens::methods::acdc::Node::Head { layer: l, head: h });
        let role = ROLES[l][h];
        eprintln!(
            "{}   {:<22}  busy: {:<24}  {:<19}  {}",
            name(l, h),
            match role {
                Role::PreviousToken => "previous-token",
                Role::BosSink => "decoy (bos sink)",
                Role::Induction => "induction",
                Role::DuplicateTokenDecoy => "decoy (duplicate)",
            },
            looks,
            if patching { "matters" } else { "no effect" },
            if acdc { "in circuit" } else { "left out" }
        );
        assert_eq!(patching, role.in_circuit(), "{}", name(l, h));
        assert_eq!(acdc, role.in_circuit(), "{}", name(l, h));
        agree += 1;
    }
    eprintln!("patching and ACDC agree with the built roles on {agree} of 4 heads; attention patterns flag all 4");
}
