//! Activation and attribution patching (`lens::methods::patching`) on cases checked by hand or by a plain
//! forward pass:
//! - a hand-built one-layer, two-head attention-only model whose patched answers are computed in f64 below;
//! - every cell of every target, in both directions, against `run_with_hooks` with an intervention built here;
//! - the sliced sweep against the one-go sweep; noising against denoising with the prompts swapped;
//! - attribution patching against real patching on a model whose metric is linear in every activation, and its
//!   correlation with real patching on the shipped induction model;
//! - attribution patching a piece at a time (`AttributionRun`) against the gradient of the whole graph at once;
//! - errors a student can act on (unequal lengths, a corruption that does not change the answer, no MLP);
//! - on the shipped induction model, denoising the strongest induction head's output restores most of the answer.
#[path = "common/patch_fixture.rs"]
mod patch_fixture;
use std::collections::HashMap;

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var, D};
use glassbox::lens::gpt2::hooks::{Hook, HookSet, Intervention, Op};
use glassbox::lens::methods::induction::{head_scores, TaskSpec};
use glassbox::lens::methods::patching::{
    activation_patching, attribution_patching, correlation, last_log_probs, measures, normalised_logit_diff, targets,
    unravel, AttributionPatching, AttributionRun, Baseline, Direction, Metric, PatchInput, PatchSweep, Target,
};
use glassbox::lens::rng::Rng;
use glassbox::lens::{Gpt2Config, Transformer};

// ---------------------------------------------------------------------------------------------------------------
// The hand-built model.
//
// Vocabulary A = 0, C = 1, B = 2; d_model 4, two heads of size 2, three positions, no position embeddings.
// Embeddings: A = (1, -1, 0, 0), C = (-1, 1, 0, 0), B = (0, 0, 1, -1).
// Queries are zero, so every head attends uniformly to the positions so far (the pattern never depends on the
// tokens). Head 0's value is ln1(x)[0] (its z's first entry), written by the output projection to dimension 0;
// head 1's value is ln1(x)[1], written to dimension 1. The unembedding reads A = (1, -1, 0, 0), C = (-1, 1, 0, 0),
// B = 0. Clean A B B answers A; corrupted C B B answers C.
// ---------------------------------------------------------------------------------------------------------------

const A: u32 = 0;
const C: u32 = 1;
const B: u32 = 2;

/// The hand-built model. `v_scale` multiplies the value weights and `u_scale` the unembedding; `eps` is the
/// LayerNorm epsilon. With a huge epsilon both LayerNorms are linear (x − mean) / sqrt(eps) to 1e-9, and the
/// scales bring the signal back to order 1: the logit difference is then linear in every activation.
fn hand_model(eps: f64, v_scale: f32, u_scale: f32) -> Transformer {
    let mut cfg = Gpt2Config::new(3, 3, 4, 1, 2, true);
    cfg.layer_norm_epsilon = eps;
    let dev = Device::Cpu;
    let t = |v: Vec<f32>, shape: &[usize]| Tensor::from_vec(v, shape, &dev).unwrap();
    let mut c_attn = vec![0f32; 4 * 12]; // [d_model, 3 d_model]: Q | K | V columns, head-major
    c_attn[8] = v_scale; // row 0 (ln1 dim 0) -> V column 0 (head 0, entry 0)
    c_attn[12 + 10] = v_scale; // row 1 (ln1 dim 1) -> V column 2 (head 1, entry 0)
    let mut c_proj = vec![0f32; 16]; // [z (head-major), d_model]
    c_proj[0] = 1.0; // z head 0 entry 0 -> dim 0
    c_proj[2 * 4 + 1] = 1.0; // z head 1 entry 0 -> dim 1
    let u = u_scale;
    let tensors: HashMap<String, Tensor> = [
        ("transformer.wte.weight", t(vec![1., -1., 0., 0., -1., 1., 0., 0., 0., 0., 1., -1.], &[3, 4])),
        ("transformer.wpe.weight", t(vec![0.; 12], &[3, 4])),
        ("transformer.h.0.ln_1.weight", t(vec![1.; 4], &[4])),
        ("transformer.h.0.ln_1.bias", t(vec![0.; 4], &[4])),
        ("transformer.h.0.attn.c_attn.weight", t(c_attn, &[4, 12])),
        ("transformer.h.0.attn.c_attn.bias", t(vec![0.; 12], &[12])),
        ("transformer.h.0.attn.c_proj.weight", t(c_proj, &[4, 4])),
        ("transformer.h.0.attn.c_proj.bias", t(vec![0.; 4], &[4])),
        ("transformer.ln_f.weight", t(vec![1.; 4], &[4])),
        ("transformer.ln_f.bias", t(vec![0.; 4], &[4])),
        ("lm_head.weight", t(vec![u, -u, 0., 0., -u, u, 0., 0., 0., 0., 0., 0.], &[3, 4])),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    Transformer::from_tensors(cfg, tensors).unwrap()
}

fn hand_input() -> PatchInput {
    PatchInput::new(vec![A, B, B], vec![C, B, B], A, C)
}

/// LayerNorm without weights, in f64.
fn ln(x: [f64; 4], eps: f64) -> [f64; 4] {
    let m = x.iter().sum::<f64>() / 4.0;
    let var = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 4.0;
    x.map(|v| (v - m) / (var + eps).sqrt())
}

/// The hand-built model's logits (A, C, B) at the last position, from its heads' outputs there: the last
/// residual is B's embedding plus (z0, z1, 0, 0).
fn hand_logits(z0: f64, z1: f64) -> [f64; 3] {
    let r = ln([z0, z1, 1.0, -1.0], 1e-5);
    [r[0] - r[1], r[1] - r[0], 0.0]
}

/// Measures from logits (A, C, B) and the clean run's logits, by hand.
fn hand_measures(l: [f64; 3], clean: [f64; 3]) -> (f64, f64, f64) {
    let probs = |l: [f64; 3]| {
        let s: f64 = l.iter().map(|v| v.exp()).sum();
        l.map(|v| v.exp() / s)
    };
    let (p, pc) = (probs(l), probs(clean));
    let kl = (0..3).map(|i| pc[i] * (pc[i] / p[i]).ln()).sum();
    (l[0] - l[1], p[0], kl)
}

fn close(a: f32, b: f64, tol: f64, what: &str) {
    assert!((a as f64 - b).abs() <= tol, "{what}: {a} vs {b}");
}

#[test]
fn the_hand_built_model_patches_as_computed_by_hand() {
    let model = hand_model(1e-5, 1.0, 1.0);
    let input = hand_input();
    // ln1 of A's embedding is (n, -n, 0, 0); each head averages its value over the three positions.
    let n = 1.0 / (0.5f64 + 1e-5).sqrt();
    let a = n / 3.0;
    let clean = hand_logits(a, -a);
    let corrupted = hand_logits(-a, a);
    let (ld_clean, p_clean, _) = hand_measures(clean, clean);
    let (ld_corr, p_corr, kl_corr) = hand_measures(corrupted, clean);

    let r = activation_patching(&model, &input, Target::ResidPre, Direction::Denoising).unwrap();
    close(r.baseline.clean.logit_diff, ld_clean, 1e-5, "clean logit difference");
    close(r.baseline.corrupted.logit_diff, ld_corr, 1e-5, "corrupted logit difference");
    close(r.baseline.clean.answer_prob, p_clean, 1e-6, "clean probability");
    close(r.baseline.corrupted.answer_prob, p_corr, 1e-6, "corrupted probability");
    close(r.baseline.corrupted.kl, kl_corr, 1e-5, "corrupted KL");
    assert_eq!(r.baseline.clean.kl, 0.0);
    // Only position 0 differs between the prompts: patching it is the clean run, patching the others changes nothing.
    assert_eq!(r.dims, vec![1, 3]);
    assert_eq!(r.grid(Metric::LogitDiff).unwrap().values, vec![1.0, 0.0, 0.0]);

    // Only the last position's attention output reaches the answer (there is no later layer).
    let r = activation_patching(&model, &input, Target::AttnOut, Direction::Denoising).unwrap();
    assert_eq!(r.grid(Metric::LogitDiff).unwrap().values, vec![0.0, 0.0, 1.0]);

    // One head restored: the last residual is (a, a, 1, -1), so A and C tie with B at logit 0: p(A) = 1/3, and the
    // logit difference (0) is halfway between the corrupted (-x) and the clean (+x) one.
    let half = hand_measures(hand_logits(a, a), clean);
    assert!(half.0.abs() < 1e-12 && (half.1 - 1.0 / 3.0).abs() < 1e-12);
    for target in [Target::HeadOut, Target::V] {
        for direction in Direction::ALL {
            let r = activation_patching(&model, &input, target, direction).unwrap();
            assert_eq!(r.dims, vec![1, 2]);
            for (h, cell) in r.cells.iter().enumerate() {
                let what = format!("{} {} head {h}", target.name(), direction.name());
                close(r.grid(Metric::LogitDiff).unwrap().values[h], 0.5, 1e-5, &what);
                close(cell.answer_prob, 1.0 / 3.0, 1e-6, &what);
                // Noising gives (-a, -a) or (a, a): the same three tied logits.
                close(cell.kl, half.2, 1e-5, &what);
            }
        }
    }
    // By position: only the last position's z matters.
    let r = activation_patching(&model, &input, Target::HeadOutByPos, Direction::Denoising).unwrap();
    assert_eq!(r.dims, vec![1, 3, 2]);
    let g = r.grid(Metric::LogitDiff).unwrap();
    for pos in 0..3 {
        for h in 0..2 {
            let want = if pos == 2 { 0.5 } else { 0.0 };
            close(g.get(&[0, pos, h]).unwrap(), want, 1e-5, &format!("z pos {pos} head {h}"));
        }
    }
    // The pattern never depends on the tokens: patching it, its queries or its keys does nothing.
    for target in [Target::Pattern, Target::Q, Target::K] {
        for direction in Direction::ALL {
            let r = activation_patching(&model, &input, target, direction).unwrap();
            let want = if direction == Direction::Denoising { 0.0 } else { 1.0 };
            assert_eq!(r.grid(Metric::LogitDiff).unwrap().values, vec![want; 2], "{}", target.name());
        }
    }
    // Noising position 0 is the corrupted run; the other positions are the clean run.
    let r = activation_patching(&model, &input, Target::ResidPre, Direction::Noising).unwrap();
    assert_eq!(r.grid(Metric::LogitDiff).unwrap().values, vec![0.0, 1.0, 1.0]);
    let kl = r.grid(Metric::Kl).unwrap().values;
    close(kl[0], kl_corr, 1e-5, "noised position 0");
    assert_eq!(&kl[1..], [0.0, 0.0]);
}

// ---------------------------------------------------------------------------------------------------------------
// A random model with MLPs, and the shipped induction model.
// ---------------------------------------------------------------------------------------------------------------

/// A small randomly initialised model with MLPs, with weights large enough that every layer matters.
fn random_model(seed: u64) -> Transformer {
    let cfg = Gpt2Config::new(23, 24, 32, 3, 4, false);
    let (model, _) = Transformer::init(cfg, &mut Rng::new(seed)).unwrap();
    let scaled = model.to_tensors().unwrap().into_iter().map(|(n, t)| {
        let t = if n.ends_with(".weight") && !n.contains("ln_") { (t * 8.0).unwrap() } else { t };
        (n, t)
    });
    Transformer::from_tensors(model.cfg.clone(), scaled.collect()).unwrap()
}

/// Two prompts differing in a few positions; the answer is the clean run's top token and the wrong token the
/// corrupted run's (or its second choice when both agree).
fn random_input(model: &Transformer) -> PatchInput {
    let clean: Vec<u32> = (0..8u32).map(|i| (i * 7 + 3) % 23).collect();
    let mut corrupted = clean.clone();
    corrupted[2] = 11;
    corrupted[5] = 4;
    let ranked = |tokens: &[u32]| -> Vec<u32> {
        let last: Vec<f32> =
            model.logits(tokens).unwrap().get(0).unwrap().get(tokens.len() - 1).unwrap().to_vec1().unwrap();
        let mut ids: Vec<u32> = (0..last.len() as u32).collect();
        ids.sort_by(|&a, &b| last[b as usize].total_cmp(&last[a as usize]));
        ids
    };
    let answer = ranked(&clean)[0];
    let wrong = ranked(&corrupted).into_iter().find(|&t| t != answer).unwrap();
    PatchInput::new(clean, corrupted, answer, wrong)
}

fn induction_model() -> Transformer {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/induction");
    let cfg = std::fs::read_to_string(format!("{dir}/config.json")).expect("the induction model is shipped");
    let weights = std::fs::read(format!("{dir}/model.safetensors")).expect("the induction model is shipped");
    Transformer::from_bytes(&cfg, &weights).unwrap()
}

/// Clean: `<bos>`, `len` random words, then the same words again up to the last one, which is the answer.
/// Corrupted: the second half re-drawn. The wrong token is the re-drawn last word, absent from both prompts.
fn induction_input(model: &Transformer, len: usize, seed: u64) -> PatchInput {
    let spec = TaskSpec::new(model.cfg.vocab_size, model.cfg.n_positions);
    let mut rng = Rng::new(seed);
    loop {
        let clean = spec.repeated_sequence(&mut rng, len);
        let redrawn = spec.repeated_sequence(&mut rng, len);
        let (answer, wrong) = (clean[2 * len], redrawn[len]);
        let mut corrupted = clean[..=len].to_vec();
        corrupted.extend(&redrawn[1..len]);
        let clean = clean[..2 * len].to_vec();
        if answer != wrong
            && !clean.contains(&wrong)
            && !corrupted.contains(&wrong)
            && !corrupted[len + 1..].contains(&answer)
        {
            return PatchInput::new(clean, corrupted, answer, wrong);
        }
    }
}

/// The intervention of one cell, built here from the target's definition (not through `Target::intervention`).
fn by_hand(target: Target, cell: &[usize], source: &Tensor) -> Intervention {
    let replace = |hook: Hook| Intervention::new(hook, Op::Replace(source.clone()));
    let l = cell[0];
    match target {
        Target::ResidPre => replace(Hook::ResidPre(l)).pos(cell[1]),
        Target::AttnOut => replace(Hook::AttnOut(l)).pos(cell[1]),
        Target::MlpOut => replace(Hook::MlpOut(l)).pos(cell[1]),
        Target::HeadOut => replace(Hook::Z(l)).head(cell[1]),
        Target::HeadOutByPos => replace(Hook::Z(l)).head(cell[2]).pos(cell[1]),
        Target::Pattern => replace(Hook::Pattern(l)).head(cell[1]),
        Target::Q => replace(Hook::Q(l)).head(cell[1]),
        Target::K => replace(Hook::K(l)).head(cell[1]),
        Target::V => replace(Hook::V(l)).head(cell[1]),
    }
}

fn last_row(logits: &Tensor) -> Vec<f32> {
    let n = logits.dim(1).unwrap();
    logits.get(0).unwrap().get(n - 1).unwrap().to_vec1().unwrap()
}

fn probs(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let e: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

#[test]
fn every_cell_equals_a_plain_forward_with_the_same_intervention() {
    for (model, input) in [
        (random_model(1), None),
        (hand_model(1e-5, 1.0, 1.0), Some(hand_input())),
        (induction_model(), Some(induction_input(&induction_model(), 6, 4))),
    ] {
        let input = input.unwrap_or_else(|| random_input(&model));
        let clean_probs = probs(&last_row(&model.logits(&input.clean).unwrap()));
        for direction in Direction::ALL {
            let (_, source) = model.run_with_cache(direction.source(&input)).unwrap();
            let base = direction.base(&input);
            for target in targets(&model) {
                let r = activation_patching(&model, &input, target, direction).unwrap();
                assert_eq!(r.dims, target.dims(&model, input.len()));
                assert_eq!(r.cells.len(), r.dims.iter().product::<usize>());
                for (flat, cell) in r.cells.iter().enumerate() {
                    let at = unravel(flat, &r.dims);
                    let iv = by_hand(target, &at, source.get(target.hook(at[0])).unwrap());
                    let row = last_row(&model.run_with_hooks(base, vec![iv]).unwrap());
                    let what = format!("{} {} {at:?}", target.name(), direction.name());
                    assert_eq!(cell.logit_diff, row[input.answer as usize] - row[input.wrong as usize], "{what}");
                    let p = probs(&row);
                    close(cell.answer_prob, p[input.answer as usize], 1e-6, &what);
                    let kl: f64 = clean_probs.iter().zip(&p).map(|(c, q)| c * (c / q).ln()).sum();
                    close(cell.kl, kl, 1e-5, &what);
                }
            }
        }
    }
}

#[test]
fn patching_nothing_is_0_and_patching_the_whole_embedding_is_1() {
    let induction = induction_model();
    for (model, input) in [
        (random_model(2), None),
        (hand_model(1e-5, 1.0, 1.0), Some(hand_input())),
        (induction_model(), Some(induction_input(&induction, 12, 9))),
    ] {
        let input = input.unwrap_or_else(|| random_input(&model));
        for direction in Direction::ALL {
            let sweep = PatchSweep::new(&model, &input, Target::ResidPre, direction).unwrap();
            let b = *sweep.baseline();
            let (_, source) = model.run_with_cache(direction.source(&input)).unwrap();
            let everything =
                Intervention::new(Hook::ResidPre(0), Op::Replace(source.get(Hook::ResidPre(0)).unwrap().clone()));
            let nothing = Metric::LogitDiff.value(&sweep.measure(&model, vec![]).unwrap(), &b).unwrap();
            let all = Metric::LogitDiff.value(&sweep.measure(&model, vec![everything]).unwrap(), &b).unwrap();
            let (want_nothing, want_all) = match direction {
                Direction::Denoising => (0.0, 1.0),
                Direction::Noising => (1.0, 0.0),
            };
            assert_eq!((nothing, all), (want_nothing, want_all), "{}", direction.name());
        }
    }
}

#[test]
fn noising_is_denoising_with_the_prompts_swapped() {
    let model = random_model(3);
    let input = random_input(&model);
    let swapped = PatchInput::new(input.corrupted.clone(), input.clean.clone(), input.answer, input.wrong);
    for target in targets(&model) {
        let noised = activation_patching(&model, &input, target, Direction::Noising).unwrap();
        let denoised = activation_patching(&model, &swapped, target, Direction::Denoising).unwrap();
        // The same patched runs: the same raw numbers.
        for (a, b) in noised.cells.iter().zip(&denoised.cells) {
            assert_eq!((a.logit_diff, a.answer_prob), (b.logit_diff, b.answer_prob), "{}", target.name());
        }
        // On the swapped scale clean and corrupted trade places: x becomes 1 - x.
        let (n, d) = (noised.grid(Metric::LogitDiff).unwrap(), denoised.grid(Metric::LogitDiff).unwrap());
        for (x, y) in n.values.iter().zip(&d.values) {
            assert!((x + y - 1.0).abs() < 1e-4, "{}: {x} + {y}", target.name());
        }
    }
}

#[test]
fn the_sliced_sweep_equals_the_sweep_in_one_go() {
    let model = random_model(4);
    let input = random_input(&model);
    for target in targets(&model) {
        for direction in Direction::ALL {
            let whole = activation_patching(&model, &input, target, direction).unwrap();
            let mut sweep = PatchSweep::new(&model, &input, target, direction).unwrap();
            assert_eq!(sweep.progress(), 0.0);
            let mut last = 0.0;
            let mut steps = 0;
            while !sweep.step(&model, 5).unwrap() {
                assert!(sweep.progress() > last && sweep.progress() < 1.0);
                last = sweep.progress();
                steps += 1;
            }
            assert_eq!(sweep.progress(), 1.0);
            assert_eq!(steps, sweep.len().div_ceil(5) - 1);
            assert!(sweep.step(&model, 5).unwrap(), "a finished sweep stays finished");
            assert_eq!(sweep.finish().unwrap(), whole, "{} {}", target.name(), direction.name());
        }
    }
    // An unfinished sweep has no result.
    let mut sweep = PatchSweep::new(&model, &input, Target::HeadOut, Direction::Denoising).unwrap();
    sweep.step(&model, 1).unwrap();
    assert!(sweep.finish().is_err());
}

#[test]
fn attribution_patching_is_exact_where_the_metric_is_linear() {
    // LayerNorm epsilon 1e8: both LayerNorms are linear to ~1e-9, attention is uniform, so the logit difference is
    // linear in every activation and the first-order estimate is the real effect.
    let model = hand_model(1e8, 1e4, 1e4);
    let input = hand_input();
    for direction in Direction::ALL {
        let attribution = AttributionPatching::new(&model, &input, direction, Metric::LogitDiff).unwrap();
        for target in targets(&model) {
            let real = activation_patching(&model, &input, target, direction).unwrap().grid(Metric::LogitDiff).unwrap();
            let estimate = attribution.grid(target).unwrap();
            assert_eq!((estimate.target, &estimate.dims), (target, &real.dims));
            for (r, e) in real.values.iter().zip(&estimate.values) {
                assert!(
                    (r - e).abs() < 1e-4,
                    "{} {}: real {:?}, estimate {:?}",
                    target.name(),
                    direction.name(),
                    real.values,
                    estimate.values
                );
            }
        }
        // Some cells move the answer all the way, so the check is not about zeros.
        let g = attribution.grid(Target::ResidPre).unwrap();
        assert!(g.values.iter().any(|&v| (v - 0.5).abs() > 0.4), "{:?}", g.values);
    }
    // On the ordinary model, where the final LayerNorm bends, the estimate is near but not equal.
    let model = hand_model(1e-5, 1.0, 1.0);
    let real = activation_patching(&model, &input, Target::HeadOut, Direction::Denoising)
        .unwrap()
        .grid(Metric::LogitDiff)
        .unwrap();
    let estimate =
        attribution_patching(&model, &input, Target::HeadOut, Direction::Denoising, Metric::LogitDiff).unwrap();
    eprintln!("hand model, head outputs: real {:?}, estimate {:?}", real.values, estimate.values);
    for (r, e) in real.values.iter().zip(&estimate.values) {
        assert!((r - e).abs() < 0.25, "real {r}, estimate {e}");
    }
}

/// Attribution patching's estimate minus the base run's metric is the derivative of the metric along the patch,
/// d/dt metric(base + t (source − base)) at t = 0: checked against central differences on the induction model,
/// where softmax and LayerNorm make the metric far from linear.
#[test]
fn attribution_patching_is_the_derivative_along_the_patch() {
    let model = induction_model();
    let input = induction_input(&model, 10, 2);
    let n_pos = input.len();
    let eps = 1e-2f64;
    let (mut checked, mut steepest) = (0, 0.0f64);
    for direction in Direction::ALL {
        let attribution = AttributionPatching::new(&model, &input, direction, Metric::LogitDiff).unwrap();
        let (_, base) = model.run_with_cache(direction.base(&input)).unwrap();
        let (_, source) = model.run_with_cache(direction.source(&input)).unwrap();
        let base_value = if direction == Direction::Denoising { 0.0 } else { 1.0 };
        for target in targets(&model) {
            let sweep = PatchSweep::new(&model, &input, target, direction).unwrap();
            let b = *sweep.baseline();
            let estimate = attribution.grid(target).unwrap();
            let cells: Vec<Vec<usize>> = (0..estimate.values.len())
                .map(|flat| unravel(flat, &estimate.dims))
                // Positions: the last three only (earlier ones barely reach the answer).
                .filter(|c| target.axes()[1] != "pos" || c[1] + 3 >= n_pos)
                .collect();
            for cell in cells {
                let hook = target.hook(cell[0]);
                let (a, s) = (base.get(hook).unwrap(), source.get(hook).unwrap());
                let at = |t: f64| -> f64 {
                    let moved = (a + ((s - a).unwrap() * t).unwrap()).unwrap();
                    let m = sweep.measure(&model, vec![target.intervention(&cell, &moved)]).unwrap();
                    Metric::LogitDiff.value(&m, &b).unwrap() as f64
                };
                let slope = (at(eps) - at(-eps)) / (2.0 * eps);
                let est = estimate.get(&cell).unwrap() as f64 - base_value;
                let what = format!("{} {} {cell:?}", direction.name(), target.name());
                assert!((est - slope).abs() <= 2e-3 + 0.02 * slope.abs(), "{what}: estimate {est}, derivative {slope}");
                checked += 1;
                steepest = steepest.max(slope.abs());
            }
        }
    }
    eprintln!("{checked} cells, steepest derivative {steepest:.3}");
    assert!(checked > 50 && steepest > 0.5, "{checked} cells, steepest derivative {steepest}");
}

/// Attribution patching against real patching, over several prompts: Pearson's correlation per grid. Noising (the
/// gradient on the clean run) follows real patching closely; denoising starts from the corrupted run, where the
/// induction heads attend elsewhere and one swapped token moves the attention far beyond first order (its
/// resid_pre and q grids can even anticorrelate), so only its attention-layer outputs are held to it.
#[test]
fn attribution_patching_follows_real_patching_on_the_induction_model() {
    let model = induction_model();
    let checks = [
        (Direction::Noising, Target::AttnOut),
        (Direction::Noising, Target::HeadOut),
        (Direction::Noising, Target::HeadOutByPos),
        (Direction::Noising, Target::Pattern),
        (Direction::Noising, Target::ResidPre),
        (Direction::Denoising, Target::AttnOut),
    ];
    let mut table: HashMap<(Direction, Target), Vec<f32>> = HashMap::new();
    for seed in 0..6 {
        let input = induction_input(&model, 16, seed);
        for direction in Direction::ALL {
            let attribution = AttributionPatching::new(&model, &input, direction, Metric::LogitDiff).unwrap();
            for &(_, target) in checks.iter().filter(|(d, _)| *d == direction) {
                let real =
                    activation_patching(&model, &input, target, direction).unwrap().grid(Metric::LogitDiff).unwrap();
                let r = correlation(&real, &attribution.grid(target).unwrap()).unwrap();
                table.entry((direction, target)).or_default().push(r);
            }
        }
    }
    for key in checks {
        let rs = &table[&key];
        let mean = rs.iter().sum::<f32>() / rs.len() as f32;
        eprintln!("{} {}: correlations {rs:.2?}, mean {mean:.2}", key.0.name(), key.1.name());
        assert!(mean >= 0.8, "{} {}: mean correlation {mean}", key.0.name(), key.1.name());
    }
}

/// The strongest layer-1 induction head (by `head_scores` on the clean prompt) is the head whose clean output
/// restores the most, over a dozen prompts; the layer-1 induction heads together restore nearly all of it, and
/// noising the strongest one alone removes most of it.
#[test]
fn denoising_the_strongest_induction_head_restores_most_of_the_answer() {
    let model = induction_model();
    let (mut alone, mut together, mut removed, mut others) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for seed in 0..12 {
        let input = induction_input(&model, 16, seed);
        let (_, cache) = model.run_with_cache(&input.clean).unwrap();
        let scores: Vec<f32> = (0..model.cfg.n_head)
            .map(|h| head_scores(&cache.pattern(1, h, 0).unwrap(), &input.clean).induction)
            .collect();
        let best = (0..scores.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
        let denoised = activation_patching(&model, &input, Target::HeadOut, Direction::Denoising).unwrap();
        let g = denoised.grid(Metric::LogitDiff).unwrap();
        alone.push(g.get(&[1, best]).unwrap());
        others.extend((0..model.cfg.n_head).filter(|&h| h != best).map(|h| g.get(&[1, h]).unwrap()));
        let noised = activation_patching(&model, &input, Target::HeadOut, Direction::Noising).unwrap();
        removed.push(noised.grid(Metric::LogitDiff).unwrap().get(&[1, best]).unwrap());
        // Every induction head of layer 1 at once.
        let sweep = PatchSweep::new(&model, &input, Target::HeadOut, Direction::Denoising).unwrap();
        let z = cache.get(Hook::Z(1)).unwrap();
        let heads: Vec<Intervention> = (0..model.cfg.n_head)
            .filter(|&h| scores[h] >= 0.5)
            .map(|h| Intervention::new(Hook::Z(1), Op::Replace(z.clone())).head(h))
            .collect();
        assert!(heads.len() >= 2, "{scores:?}");
        together.push(Metric::LogitDiff.value(&sweep.measure(&model, heads).unwrap(), sweep.baseline()).unwrap());
    }
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    eprintln!(
        "strongest head denoised {alone:.2?} (mean {:.2}); other heads' mean {:.2}; induction heads together {together:.2?} \
         (mean {:.2}); strongest head noised {removed:.2?} (mean {:.2})",
        mean(&alone),
        mean(&others),
        mean(&together),
        mean(&removed)
    );
    assert!(mean(&alone) >= 0.3, "the strongest induction head restores {:.2} on average", mean(&alone));
    assert!(mean(&alone) >= 3.0 * mean(&others).max(0.0), "{} against {}", mean(&alone), mean(&others));
    assert!(mean(&together) >= 0.85 && together.iter().all(|&v| v >= 0.5), "{together:?}");
    assert!(mean(&removed) <= 0.4, "noising the strongest head leaves {:.2} on average", mean(&removed));
}

#[test]
fn errors_name_what_to_change() {
    let model = hand_model(1e-5, 1.0, 1.0);
    let short = PatchInput::new(vec![A, B, B], vec![C, B], A, C);
    let e = PatchSweep::new(&model, &short, Target::ResidPre, Direction::Denoising).err().unwrap().to_string();
    assert!(e.contains("clean prompt has 3 tokens") && e.contains("corrupted prompt 2"), "{e}");
    assert!(AttributionPatching::new(&model, &short, Direction::Denoising, Metric::LogitDiff).is_err());

    // The same prompt twice: nothing to restore.
    let same = PatchInput::new(vec![A, B, B], vec![A, B, B], A, C);
    let r = activation_patching(&model, &same, Target::ResidPre, Direction::Denoising).unwrap();
    let e = r.grid(Metric::LogitDiff).unwrap_err().to_string();
    assert!(e.contains("the corruption does not change the answer"), "{e}");
    assert!(r.grid(Metric::AnswerProb).is_ok(), "the other metrics stay defined");
    let e = AttributionPatching::new(&model, &same, Direction::Noising, Metric::LogitDiff).err().unwrap().to_string();
    assert!(e.contains("the corruption does not change the answer"), "{e}");

    let e = PatchSweep::new(&model, &hand_input(), Target::MlpOut, Direction::Noising).err().unwrap().to_string();
    assert!(e.contains("attention-only"), "{e}");
    let e = attribution_patching(&model, &hand_input(), Target::MlpOut, Direction::Noising, Metric::Kl)
        .unwrap_err()
        .to_string();
    assert!(e.contains("attention-only"), "{e}");
    assert!(!targets(&model).contains(&Target::MlpOut));

    for (bad, want) in [
        (PatchInput::new(vec![A, B, B], vec![C, B, B], A, A), "same token"),
        (PatchInput::new(vec![A, B, B], vec![C, B, B], 7, C), "answer token id 7"),
        (PatchInput::new(vec![A, B, 9], vec![C, B, B], A, C), "the clean prompt: token id 9"),
        (PatchInput::new(vec![A, B, B, B], vec![C, B, B, B], A, C), "the clean prompt: the sequence has 4 tokens"),
        (PatchInput::new(vec![], vec![], A, C), "the clean prompt: the sequence is empty"),
    ] {
        let e = PatchSweep::new(&model, &bad, Target::ResidPre, Direction::Denoising).err().unwrap().to_string();
        assert!(e.contains(want), "{e}");
    }

    // Grids of different targets or metrics are not compared.
    let a = activation_patching(&model, &hand_input(), Target::HeadOut, Direction::Denoising).unwrap();
    let b = activation_patching(&model, &hand_input(), Target::V, Direction::Denoising).unwrap();
    assert!(correlation(&a.grid(Metric::LogitDiff).unwrap(), &b.grid(Metric::LogitDiff).unwrap()).is_err());
    assert!(correlation(&a.grid(Metric::LogitDiff).unwrap(), &a.grid(Metric::Kl).unwrap()).is_err());
}

// ---------------------------------------------------------------------------------------------------------------
// Attribution patching a piece at a time.
// ---------------------------------------------------------------------------------------------------------------

/// Attribution patching as it was computed before it was stepped, kept as the reference: the base run with
/// autograd over the whole graph (a zero `Var` added at every hook), one `backward` from the metric, then every
/// target's grid from (source − base) ⊙ gradient. Returns the grids' values by target and the base run's metric.
fn whole_graph(
    model: &Transformer,
    input: &PatchInput,
    direction: Direction,
    metric: Metric,
) -> (HashMap<Target, Vec<f32>>, f32) {
    let n_layer = model.cfg.n_layer;
    let mut hooks: Vec<Hook> = targets(model).into_iter().flat_map(|t| t.hooks(n_layer)).collect();
    hooks.sort();
    hooks.dedup();
    let (source_logits, source) = model.run_with_cache(direction.source(input)).unwrap();

    let mut grad_model = model.clone();
    grad_model.autograd = true;
    let mut set = HookSet::cache_only(hooks.clone());
    let mut vars = Vec::new();
    for &hook in &hooks {
        let var = Var::zeros(source.get(hook).unwrap().dims(), DType::F32, &Device::Cpu).unwrap();
        set.interventions.push(Intervention::new(hook, Op::Add(var.as_tensor().clone())));
        vars.push((hook, var));
    }
    let base_tokens = direction.base(input);
    let tokens = Tensor::from_slice(base_tokens, (1, base_tokens.len()), &Device::Cpu).unwrap();
    let base_logits = grad_model.forward(&tokens, &mut set).unwrap();

    let (clean_logits, corrupted_logits) = match direction {
        Direction::Denoising => (&source_logits, &base_logits),
        Direction::Noising => (&base_logits, &source_logits),
    };
    let clean_lp = last_log_probs(clean_logits).unwrap();
    let baseline = Baseline {
        clean: measures(clean_logits, input.answer, input.wrong, &clean_lp).unwrap(),
        corrupted: measures(corrupted_logits, input.answer, input.wrong, &clean_lp).unwrap(),
    };
    let base = if direction == Direction::Denoising { baseline.corrupted } else { baseline.clean };
    let base_raw = match metric {
        Metric::LogitDiff => base.logit_diff,
        Metric::AnswerProb => base.answer_prob,
        Metric::Kl => base.kl,
    };
    let scale = |raw: f32| match metric {
        Metric::LogitDiff => {
            normalised_logit_diff(raw, baseline.clean.logit_diff, baseline.corrupted.logit_diff).unwrap()
        }
        _ => raw,
    };

    let last = base_logits.get(0).unwrap().get(input.len() - 1).unwrap();
    let value = match metric {
        Metric::LogitDiff => {
            (last.get(input.answer as usize).unwrap() - last.get(input.wrong as usize).unwrap()).unwrap()
        }
        Metric::AnswerProb => {
            candle_nn::ops::log_softmax(&last, D::Minus1).unwrap().get(input.answer as usize).unwrap().exp().unwrap()
        }
        Metric::Kl => {
            let lp_clean = Tensor::new(clean_lp.iter().map(|&v| v as f32).collect::<Vec<f32>>(), &Device::Cpu).unwrap();
            let lp = candle_nn::ops::log_softmax(&last, D::Minus1).unwrap();
            (lp_clean.exp().unwrap() * (lp_clean - lp).unwrap()).unwrap().sum_all().unwrap()
        }
    };
    let grads = value.backward().unwrap();
    let mut products = HashMap::new();
    for (hook, var) in vars {
        let delta = (source.get(hook).unwrap() - set.cache.get(hook).unwrap().detach()).unwrap();
        let product = match grads.get(var.as_tensor()) {
            Some(g) => (delta * g).unwrap(),
            None => delta.zeros_like().unwrap(),
        };
        products.insert(hook, product);
    }

    let mut grids = HashMap::new();
    for target in targets(model) {
        let mut values = Vec::new();
        for layer in 0..n_layer {
            let p = &products[&target.hook(layer)];
            let cells = match target {
                Target::ResidPre | Target::AttnOut | Target::MlpOut => p.sum(2).unwrap(),
                Target::HeadOut | Target::Q | Target::K | Target::V => p.sum(3).unwrap().sum(1).unwrap(),
                Target::HeadOutByPos => p.sum(3).unwrap(),
                Target::Pattern => p.sum(3).unwrap().sum(2).unwrap(),
            };
            values.extend(
                cells.flatten_all().unwrap().to_vec1::<f32>().unwrap().into_iter().map(|d| scale(base_raw + d)),
            );
        }
        grids.insert(target, values);
    }
    (grids, scale(base_raw))
}

/// A GPT-2 model with MLPs as `Transformer::random` draws it (GPT-2's initialisation), tied unembedding.
fn gpt2_random_small() -> Transformer {
    let mut cfg = Gpt2Config::new(41, 16, 32, 3, 4, false);
    cfg.tie_word_embeddings = true;
    Transformer::random(cfg, 11).unwrap()
}

/// An `AttributionRun` to the end, a step at a time.
fn stepped(model: &Transformer, input: &PatchInput, direction: Direction, metric: Metric) -> AttributionPatching {
    let mut run = AttributionRun::new(model, input, direction, metric).unwrap();
    while !run.step(model).unwrap() {}
    run.finish().unwrap()
}

/// The stepped computation (half a block of backward per step, the gradient passed by hand between halves) gives
/// the whole graph's gradients: every grid of every target, both directions, every metric, on two shipped
/// attention-only models and on three models with MLPs (GPT-2's initialisation; weights scaled up so that every
/// nonlinearity bends; a vocabulary unembedded in several slices). Compared as changes from the base run's
/// metric, to 1e-4 of the grid's largest change.
#[test]
fn stepped_attribution_equals_the_whole_graph() {
    let induction = induction_model();
    let induction_in = induction_input(&induction, 8, 3);
    let (ioi_model, ioi_in) = patch_fixture::ioi_chapter_model_and_input();
    let gpt2 = gpt2_random_small();
    let gpt2_in = random_input(&gpt2);
    let scaled = random_model(5);
    let scaled_in = random_input(&scaled);
    // GPT-2 small's width and a vocabulary of 25,000: the last logits and their gradient take three slices.
    let mut wide_cfg = Gpt2Config::new(25_000, 16, 768, 1, 12, false);
    wide_cfg.tie_word_embeddings = true;
    let wide = Transformer::random(wide_cfg, 2).unwrap();
    let wide_in = random_input(&wide);
    let run = AttributionRun::new(&wide, &wide_in, Direction::Noising, Metric::Kl).unwrap();
    assert_eq!(run.len(), 3 * 2 + 3 * 3, "two halves, three slices");
    let cases = [
        ("ioi", &ioi_model, &ioi_in),
        ("induction", &induction, &induction_in),
        ("gpt2 random", &gpt2, &gpt2_in),
        ("scaled random", &scaled, &scaled_in),
        ("wide vocabulary", &wide, &wide_in),
    ];
    let mut worst = 0.0f32;
    for (name, model, input) in cases {
        for direction in Direction::ALL {
            for metric in Metric::ALL {
                let (reference, base) = whole_graph(model, input, direction, metric);
                let got = stepped(model, input, direction, metric);
                for target in targets(model) {
                    let want = &reference[&target];
                    let grid = got.grid(target).unwrap();
                    assert_eq!(grid.values.len(), want.len());
                    let largest = want.iter().map(|v| (v - base).abs()).fold(0.0f32, f32::max);
                    let what = format!("{name} {} {} {}", direction.name(), metric.name(), target.name());
                    for (a, b) in grid.values.iter().zip(want) {
                        let off = (a - b).abs();
                        assert!(off <= 1e-4 * largest + 1e-6, "{what}: {a} against {b} (largest change {largest})");
                        if largest > 1e-3 {
                            worst = worst.max(off / largest);
                        }
                    }
                }
            }
        }
    }
    eprintln!("the worst difference: {worst:.2e} of the grid's largest change");
}

/// `progress` rises with every step and reaches 1 at the last; the run has 3 steps per half block plus 3;
/// `finish` is an error before the end; a finished run stays finished; `AttributionPatching::new` is the same run.
#[test]
fn attribution_run_progress_and_finish() {
    for (model, halves) in [(gpt2_random_small(), 6), (hand_model(1e-5, 1.0, 1.0), 1)] {
        let input = if model.cfg.attn_only { hand_input() } else { random_input(&model) };
        let mut run = AttributionRun::new(&model, &input, Direction::Denoising, Metric::Kl).unwrap();
        assert_eq!(run.len(), 3 * halves + 3);
        assert_eq!(run.progress(&model), 0.0);
        let mut steps = 0;
        loop {
            let before = run.progress(&model);
            let done = run.step(&model).unwrap();
            steps += 1;
            assert!(run.progress(&model) > before, "step {steps}");
            if done {
                break;
            }
            assert!(run.progress(&model) < 1.0);
        }
        assert_eq!((steps, run.progress(&model)), (run.len(), 1.0));
        assert!(run.step(&model).unwrap(), "a finished run stays finished");
        let got = run.finish().unwrap();
        let whole = AttributionPatching::new(&model, &input, Direction::Denoising, Metric::Kl).unwrap();
        for target in targets(&model) {
            assert_eq!(got.grid(target).unwrap(), whole.grid(target).unwrap());
        }

        let fresh = AttributionRun::new(&model, &input, Direction::Noising, Metric::LogitDiff).unwrap();
        assert!(fresh.finish().err().unwrap().to_string().contains("not finished"));
        let mut early = AttributionRun::new(&model, &input, Direction::Noising, Metric::LogitDiff).unwrap();
        for _ in 0..early.len() - 1 {
            assert!(!early.step(&model).unwrap());
        }
        assert!(early.finish().is_err(), "one step short");
    }
    // The checks come first: a bad input fails in `new`.
    let model = hand_model(1e-5, 1.0, 1.0);
    let short = PatchInput::new(vec![A, B, B], vec![C, B], A, C);
    assert!(AttributionRun::new(&model, &short, Direction::Denoising, Metric::Kl).is_err());
}

/// The pieces' durations at GPT-2 small's shape (12 layers, 12 heads, d_model 768, vocab 50,257, random weights)
/// over 32 tokens: `cargo test --release --test patching -- --ignored --nocapture attribution_steps`.
#[test]
#[ignore]
fn attribution_steps_at_gpt2_small_scale() {
    let mut cfg = Gpt2Config::new(50_257, 1_024, 768, 12, 12, false);
    cfg.tie_word_embeddings = true;
    let t = Instant::now();
    let model = Transformer::random(cfg, 1).unwrap();
    eprintln!("model drawn in {:.1} s", t.elapsed().as_secs_f32());
    let clean: Vec<u32> = (0..32u32).map(|i| (i * 7919 + 13) % 50_257).collect();
    let mut corrupted = clean.clone();
    for (i, t) in [(3, 101), (17, 2_024), (29, 40_000)] {
        corrupted[i] = t;
    }
    let input = PatchInput::new(clean, corrupted, 464, 11_000);
    for metric in [Metric::LogitDiff, Metric::Kl] {
        for direction in Direction::ALL {
            let start = Instant::now();
            let mut run = AttributionRun::new(&model, &input, direction, metric).unwrap();
            let mut times = vec![start.elapsed().as_secs_f64() * 1e3];
            loop {
                let t = Instant::now();
                let done = run.step(&model).unwrap();
                times.push(t.elapsed().as_secs_f64() * 1e3);
                if done {
                    break;
                }
            }
            run.finish().unwrap();
            let total = start.elapsed().as_secs_f64() * 1e3;
            let (slowest, at) = times.iter().enumerate().fold((0.0, 0), |m, (i, &v)| if v > m.0 { (v, i) } else { m });
            let rounded: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
            eprintln!(
                "{} {}: new + {} steps, slowest {slowest:.1} ms (piece {at}, 0 = new), total {total:.0} ms\n  [{}]",
                metric.name(),
                direction.name(),
                times.len() - 1,
                rounded.join(", ")
            );
        }
    }
}
