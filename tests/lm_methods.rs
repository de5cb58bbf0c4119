//! The language-model lab's methods on cases that can be checked by hand or against a plain forward pass:
//! incremental decoding with a key/value cache, sampling, the logit lens (on a random model and on the
//! shipped induction model), logistic-regression probes, and difference-of-means steering.
use candle_core::{Device, Tensor};
use glassbox::lens::gpt2::generate::{generate, softmax, SampleSettings};
use glassbox::lens::gpt2::hooks::{Hook, HookSet, Intervention, Op};
use glassbox::lens::methods::induction::TaskSpec;
use glassbox::lens::methods::logit_lens::{logit_lens, resid_hook, LensCell, LensDecode, LensRun};
use glassbox::lens::methods::probe::{FitSettings, LogReg};
use glassbox::lens::methods::steering::{difference_of_means, mean_activation, steering_from_contexts, ContextMeans};
use glassbox::lens::rng::Rng;
use glassbox::lens::{Gpt2Config, KvCache, Transformer};

/// A small randomly initialised model with MLPs, with weights large enough that every layer matters.
fn random_model(seed: u64) -> Transformer {
    let cfg = Gpt2Config::new(23, 24, 32, 3, 4, false);
    let mut rng = Rng::new(seed);
    let (model, _) = Transformer::init(cfg, &mut rng).unwrap();
    let scaled = model.to_tensors().unwrap().into_iter().map(|(n, t)| {
        let t = if n.ends_with(".weight") && !n.contains("ln_") { (t * 8.0).unwrap() } else { t };
        (n, t)
    });
    Transformer::from_tensors(model.cfg.clone(), scaled.collect()).unwrap()
}

fn induction_model() -> Transformer {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/induction");
    let cfg = std::fs::read_to_string(format!("{dir}/config.json")).expect("the induction model is shipped");
    let weights = std::fs::read(format!("{dir}/model.safetensors")).expect("the induction model is shipped");
    Transformer::from_bytes(&cfg, &weights).unwrap()
}

fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.get(0).unwrap().to_vec2().unwrap()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn kv_cache_decoding_equals_the_full_forward() {
    for (model, tokens) in [
        (random_model(1), (0..24u32).map(|i| (i * 7 + 3) % 23).collect::<Vec<u32>>()),
        (induction_model(), TaskSpec::new(318, 64).repeated_sequence(&mut Rng::new(5), 20)),
    ] {
        let full = rows(&model.logits(&tokens).unwrap());
        // Prefill a few tokens, then one at a time.
        let mut kv = KvCache::new();
        let mut inc = rows(
            &model
                .forward_cached(
                    &Tensor::from_slice(&tokens[..5], (1, 5), &Device::Cpu).unwrap(),
                    &mut kv,
                    &mut HookSet::none(),
                )
                .unwrap(),
        );
        for &t in &tokens[5..] {
            inc.extend(rows(
                &model
                    .forward_cached(
                        &Tensor::from_slice(&[t], (1, 1), &Device::Cpu).unwrap(),
                        &mut kv,
                        &mut HookSet::none(),
                    )
                    .unwrap(),
            ));
        }
        assert_eq!(kv.len(), tokens.len());
        let d = max_diff(&full, &inc);
        assert!(d < 1e-4, "incremental logits differ from the full forward by {d}");
        // The cache refuses to grow past the context.
        assert!(
            model
                .forward_cached(
                    &Tensor::from_slice(&[1u32], (1, 1), &Device::Cpu).unwrap(),
                    &mut kv,
                    &mut HookSet::none()
                )
                .is_err()
                || tokens.len() < model.cfg.n_positions
        );
    }
}

#[test]
fn kv_cache_decoding_with_steering_equals_the_steered_full_forward() {
    let model = random_model(2);
    let tokens: Vec<u32> = (0..20u32).map(|i| (i * 5 + 1) % 23).collect();
    let v = Tensor::from_vec((0..32).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<f32>>(), 32, &Device::Cpu).unwrap();
    let iv = vec![Intervention::new(Hook::ResidPost(1), Op::Add(v))];
    let full = rows(&model.run_with_hooks(&tokens, iv.clone()).unwrap());
    let mut kv = KvCache::new();
    let mut inc = Vec::new();
    for &t in &tokens {
        let mut hooks = HookSet::intervening(iv.clone());
        inc.extend(rows(
            &model
                .forward_cached(&Tensor::from_slice(&[t], (1, 1), &Device::Cpu).unwrap(), &mut kv, &mut hooks)
                .unwrap(),
        ));
    }
    assert!(max_diff(&full, &inc) < 1e-4);
}

#[test]
fn greedy_generation_follows_the_full_forward_and_seeds_reproduce() {
    let model = random_model(3);
    let prompt = vec![1u32, 2, 3];
    let greedy = generate(&model, &prompt, 30, &SampleSettings { temperature: 0.0, top_k: 0, seed: 1 }, &[]).unwrap();
    // Past the 24-token context the generator slides its window; check the steps inside the first window.
    let mut seq = prompt.clone();
    for (i, &t) in greedy.tokens.iter().enumerate().take(24 - prompt.len()) {
        let logits = rows(&model.logits(&seq).unwrap());
        let last = logits.last().unwrap();
        let best = (0..last.len()).fold(0, |b, j| if last[j] > last[b] { j } else { b });
        assert_eq!(t as usize, best, "step {i}");
        assert!((greedy.probs[i] - softmax(last)[best]).abs() < 1e-5);
        assert_eq!(greedy.sample_probs[i], 1.0);
        seq.push(t);
    }
    assert_eq!(greedy.tokens.len(), 30);
    let s = SampleSettings { temperature: 1.0, top_k: 5, seed: 42 };
    let a = generate(&model, &prompt, 40, &s, &[]).unwrap();
    let b = generate(&model, &prompt, 40, &s, &[]).unwrap();
    assert_eq!(a, b);
    let c = generate(&model, &prompt, 40, &SampleSettings { seed: 43, ..s.clone() }, &[]).unwrap();
    assert_ne!(a.tokens, c.tokens);
    assert!(generate(&model, &[], 5, &s, &[]).is_err());
    let positioned = Intervention::new(Hook::ResidPost(0), Op::Zero).pos(1);
    assert!(generate(&model, &prompt, 5, &s, &[positioned]).is_err());
}

#[test]
fn logit_lens_at_the_last_layer_is_the_models_own_prediction() {
    for model in [random_model(4), induction_model()] {
        let tokens: Vec<u32> = (0..20u32).map(|i| (i * 11 + 2) % 23).collect();
        let lens = logit_lens(&model, &tokens, 3).unwrap();
        let n_layer = model.cfg.n_layer;
        assert_eq!(lens.n_layers(), n_layer + 1);
        assert_eq!(lens.hooks[0], Hook::ResidPre(0));
        assert_eq!(lens.hooks[n_layer], Hook::ResidPost(n_layer - 1));
        let logits = rows(&model.logits(&tokens).unwrap());
        for (p, row) in logits.iter().enumerate() {
            let probs = softmax(row);
            let cell = &lens.cells[n_layer][p];
            let best = (0..probs.len()).fold(0, |b, j| if probs[j] > probs[b] { j } else { b });
            assert_eq!(cell.top[0].0 as usize, best);
            assert!((cell.top[0].1 - probs[best]).abs() < 1e-5);
            assert!(cell.top[0].1 >= cell.top[1].1 && cell.top[1].1 >= cell.top[2].1);
            if let Some(tp) = cell.target_prob {
                assert!((tp - probs[tokens[p + 1] as usize]).abs() < 1e-5);
            }
        }
        assert_eq!(lens.cells[0].last().unwrap().target_prob, None);
    }
}

/// The lens's cells from the logits in one piece, by plain code: candle's softmax, a full sort (of equal
/// probabilities, the lower token first), and the rank as the number of logits above the target's.
fn plain_cells(model: &Transformer, tokens: &[u32], k: usize, resid: &Tensor) -> Vec<Vec<LensCell>> {
    let logits = model.unembed(resid).unwrap();
    let probs: Vec<Vec<Vec<f32>>> = candle_nn::ops::softmax_last_dim(&logits).unwrap().to_vec3().unwrap();
    let logits: Vec<Vec<Vec<f32>>> = logits.to_vec3().unwrap();
    probs
        .iter()
        .zip(&logits)
        .map(|(layer, layer_logits)| {
            layer
                .iter()
                .zip(layer_logits)
                .enumerate()
                .map(|(p, (row, l))| {
                    let mut order: Vec<usize> = (0..row.len()).collect();
                    order.sort_by(|&a, &b| l[b].total_cmp(&l[a]).then(a.cmp(&b)));
                    let top = order[..k].iter().map(|&i| (i as u32, row[i])).collect();
                    let target = tokens.get(p + 1).map(|&t| t as usize);
                    LensCell {
                        top,
                        target_prob: target.map(|t| row[t]),
                        target_rank: target.map(|t| l.iter().filter(|&&x| x > l[t]).count()),
                    }
                })
                .collect()
        })
        .collect()
}

/// The lens decodes every layer's rows together, a slice of the vocabulary per step, keeping per row only
/// what a cell needs: in slices of any width (one column, uneven, all at once) its cells are those of plain
/// code over whole rows of logits (probabilities within 1e-6; tokens and ranks equal).
#[test]
fn the_lens_decoded_a_slice_of_the_vocabulary_at_a_time_equals_plain_code() {
    let model = random_model(7);
    let vocab = model.cfg.vocab_size;
    let tokens: Vec<u32> = (0..17u32).map(|i| (i * 5 + 1) % 23).collect();
    let whole = logit_lens(&model, &tokens, 4).unwrap();
    let mut run = LensRun::new(&model, &tokens, 4).unwrap();
    while !run.step(&model).unwrap() {}
    let resid = run.finish_resid(&model).unwrap();
    let want = plain_cells(&model, &tokens, 4, &resid);
    for cols in [1, 7, 8, vocab - 1, vocab, 1000] {
        let mut d = LensDecode::new(&model, &tokens, &resid, 4).unwrap();
        let mut steps = 0;
        while !d.step(&model, cols).unwrap() {
            steps += 1;
        }
        // One step readies the rows (all 51 are one block), then one step per slice.
        assert_eq!(steps, vocab.div_ceil(cols), "{cols} columns per step");
        assert!(d.step(&model, cols).unwrap(), "stepping past the end is a no-op");
        assert_eq!(d.progress(&model), 1.0);
        let cells = d.finish(&model).unwrap();
        assert_eq!(cells.len(), model.cfg.n_layer + 1);
        for (layer, (got, want)) in cells.iter().zip(&want).enumerate() {
            assert_eq!(got.len(), tokens.len());
            for (p, (c, LensCell { top, target_prob, target_rank })) in got.iter().zip(want).enumerate() {
                let at = format!("layer {layer} pos {p}, {cols} columns per step");
                assert_eq!(
                    c.top.iter().map(|t| t.0).collect::<Vec<_>>(),
                    top.iter().map(|t| t.0).collect::<Vec<_>>(),
                    "{at}"
                );
                assert!(c.top.iter().zip(top).all(|(a, b)| (a.1 - b.1).abs() < 1e-6), "{at}: {:?} vs {top:?}", c.top);
                assert!(c.top.windows(2).all(|w| w[0].1 >= w[1].1), "{at}: most likely first");
                assert_eq!(c.target_rank, *target_rank, "{at}");
                assert_eq!(c.target_prob.is_some(), target_prob.is_some(), "{at}");
                if let (Some(a), Some(b)) = (c.target_prob, target_prob) {
                    assert!((a - b).abs() < 1e-6, "{at}: target probability {a} vs {b}");
                }
            }
        }
        if cols == 1000 {
            assert_eq!(cells, whole.cells, "logit_lens is this decode");
        }
    }
    // The rows readied a few at a time (as a long text's are): the same cells, and the progress only grows.
    for rows in [1, 5, 50] {
        let mut d = LensDecode::new(&model, &tokens, &resid, 4).unwrap().rows_per_step(rows);
        let (mut steps, mut last) = (0, 0.0);
        while !d.step(&model, 8).unwrap() {
            steps += 1;
            let p = d.progress(&model);
            assert!(p >= last && p <= 1.0, "{rows} rows per step: progress {p} after {last}");
            last = p;
        }
        let blocks = (want.len() * tokens.len()).div_ceil(rows);
        assert_eq!(steps, blocks + vocab.div_ceil(8) - 1, "{rows} rows per step");
        // Fewer rows in each product: the same numbers up to rounding.
        for (got, want) in d.finish(&model).unwrap().iter().flatten().zip(whole.cells.iter().flatten()) {
            assert_eq!(
                got.top.iter().map(|t| t.0).collect::<Vec<_>>(),
                want.top.iter().map(|t| t.0).collect::<Vec<_>>()
            );
            assert!(got.top.iter().zip(&want.top).all(|(a, b)| (a.1 - b.1).abs() < 1e-6), "{rows} rows per step");
            assert_eq!(got.target_rank, want.target_rank, "{rows} rows per step");
        }
    }
    // Unfinished (rows not all readied, or the vocabulary not all seen), a stream of the wrong length, no
    // guesses: refused.
    let mut d = LensDecode::new(&model, &tokens, &resid, 4).unwrap().rows_per_step(2);
    d.step(&model, 7).unwrap();
    assert!(d.finish(&model).is_err(), "rows not readied");
    let mut d = LensDecode::new(&model, &tokens, &resid, 4).unwrap();
    d.step(&model, 7).unwrap();
    assert!(d.finish(&model).is_err(), "not finished");
    assert!(LensDecode::new(&model, &tokens[1..], &resid, 4).is_err());
    assert!(LensDecode::new(&model, &tokens, &resid, 0).is_err());
    // Some layers only: the same cells as those layers of the whole grid.
    let mut some = LensDecode::new(&model, &tokens, &resid.narrow(0, 1, 2).unwrap(), 4).unwrap();
    while !some.step(&model, 16).unwrap() {}
    for (got, want) in some.finish(&model).unwrap().iter().flatten().zip(whole.cells[1..3].iter().flatten()) {
        // Fewer rows in the product: the same numbers up to rounding.
        assert_eq!(got.top.iter().map(|t| t.0).collect::<Vec<_>>(), want.top.iter().map(|t| t.0).collect::<Vec<_>>());
        assert!(got.top.iter().zip(&want.top).all(|(a, b)| (a.1 - b.1).abs() < 1e-6));
        assert_eq!(got.target_rank, want.target_rank);
    }

    // Recording the patterns as well leaves the lens as it was, and the patterns are the forward pass's own.
    let mut both = LensRun::recording(&model, &tokens, 4, &[Hook::Pattern(0), Hook::Pattern(1)]).unwrap();
    while !both.step(&model).unwrap() {}
    let (_, cache) = model.run_with_cache(&tokens).unwrap();
    for l in 0..2 {
        let want: Vec<Vec<Vec<f32>>> = cache.get(Hook::Pattern(l)).unwrap().get(0).unwrap().to_vec3().unwrap();
        let got: Vec<Vec<Vec<f32>>> = both.cache().get(Hook::Pattern(l)).unwrap().get(0).unwrap().to_vec3().unwrap();
        assert_eq!(got, want, "layer {l}");
    }
    assert_eq!(both.finish(&model).unwrap(), whole);
}

/// The rank counts the logits strictly above the target's own, though the target's logit is needed before the
/// scan meets its column: tokens whose unembedding columns are copies of the target's tie with it, and the
/// rank agrees with the cell's own guesses (every guess more likely than the target is counted, no tie is),
/// however the vocabulary is sliced.
#[test]
fn the_lens_rank_counts_only_logits_strictly_above_the_target() {
    let model = random_model(9);
    // The target after position 0 is the model's own best guess there (position 0 reads only token 0), and three
    // tokens, before and after it in the vocabulary, become copies of it: four equal logits, at the top.
    let mut tokens: Vec<u32> = vec![3, 5, 8, 13, 2, 21, 1];
    let best = logit_lens(&model, &tokens, 1).unwrap().cells[model.cfg.n_layer][0].top[0].0;
    tokens[1] = best;
    let copies = [0, 11, 22].map(|c| if c == best { 1 } else { c });
    let mut weights = model.to_tensors().unwrap();
    let (_, head) = weights.iter_mut().find(|(n, _)| n == "lm_head.weight").expect("an untied unembedding");
    let mut w: Vec<Vec<f32>> = head.to_vec2().unwrap();
    for copy in copies {
        w[copy as usize] = w[best as usize].clone();
    }
    *head = Tensor::new(w, &Device::Cpu).unwrap();
    let model = Transformer::from_tensors(model.cfg.clone(), weights.into_iter().collect()).unwrap();
    let mut run = LensRun::new(&model, &tokens, 5).unwrap();
    while !run.step(&model).unwrap() {}
    let resid = run.finish_resid(&model).unwrap();
    let plain = plain_cells(&model, &tokens, 5, &resid);
    let mut seen_tie = false;
    for cols in [1, 5, 8, 23] {
        let mut d = LensDecode::new(&model, &tokens, &resid, 5).unwrap();
        while !d.step(&model, cols).unwrap() {}
        for (layer, (got, plain)) in d.finish(&model).unwrap().iter().zip(&plain).enumerate() {
            let (c, rank) = (&got[0], got[0].target_rank.unwrap());
            let p = c.target_prob.unwrap();
            let at = format!("layer {layer}, {cols} columns per step: {:?}, target p {p}, rank {rank}", c.top);
            let above = c.top.iter().filter(|t| t.1 > p).count();
            if rank < c.top.len() {
                assert_eq!(rank, above, "{at}");
                // The target and its copies are the next guesses, of equal probability.
                let ties: Vec<u32> = c.top[rank..].iter().filter(|t| t.1 == p).map(|t| t.0).collect();
                assert!(ties.contains(&best) || ties.len() == c.top.len() - rank, "{at}");
                seen_tie |= ties.len() > 1;
            } else {
                assert_eq!(above, c.top.len(), "{at}");
            }
            // Plain code ranks it the same, up to which of the four equal logits rounding puts first.
            assert!(rank.abs_diff(plain[0].target_rank.unwrap()) <= 3, "{at}, plain rank {:?}", plain[0].target_rank);
        }
    }
    assert!(seen_tie, "the copies tie with the target among the guesses somewhere");
}

#[test]
fn logit_lens_shows_the_induction_model_copying_only_after_layer_1() {
    let model = induction_model();
    let spec = TaskSpec::new(model.cfg.vocab_size, model.cfg.n_positions);
    let mut rng = Rng::new(2024);
    let (mut after0, mut after1) = (0.0, 0.0);
    let n = 24;
    for _ in 0..n {
        let len = rng.range(8, 31);
        let tokens = spec.repeated_sequence(&mut rng, len);
        let lens = logit_lens(&model, &tokens, 5).unwrap();
        // Positions whose next token lies in the repeated half (after its first token, which nothing predicts).
        let repeated = len + 1..2 * len;
        after0 += lens.top1_accuracy(1, repeated.clone());
        after1 += lens.top1_accuracy(2, repeated);
    }
    let (after0, after1) = (after0 / n as f32, after1 / n as f32);
    eprintln!(
        "induction model, top-1 accuracy on the repeated half: after block 0 {:.1}%, after block 1 {:.1}%",
        100.0 * after0,
        100.0 * after1
    );
    assert!(after1 >= 0.9, "after layer 1: {after1}");
    assert!(after0 <= 0.3, "after layer 0: {after0}");
}

#[test]
fn logistic_regression_separates_a_toy_set() {
    // Two clouds on either side of the line x0 + 2 x1 = 1, with a margin, plus a useless constant feature.
    let mut rng = Rng::new(7);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    while y.len() < 400 {
        let (a, b) = (rng.uniform() * 4.0 - 2.0, rng.uniform() * 4.0 - 2.0);
        let s = a + 2.0 * b - 1.0;
        if s.abs() < 0.3 {
            continue;
        }
        x.extend([a * 10.0 + 5.0, b, 3.0]); // different scales: standardisation must handle them
        y.push(s > 0.0);
    }
    let p = LogReg::fit(&x, 3, &y, FitSettings { l2: 1e-4, iterations: 300 }).unwrap();
    assert_eq!(p.accuracy(&x, &y), 1.0);
    // In raw units the boundary is a/10 + 2b = const, i.e. direction (0.1, 2, 0) / norm.
    let dir = p.direction();
    let want = [0.1 / 4.01f32.sqrt(), 2.0 / 4.01f32.sqrt(), 0.0];
    for j in 0..3 {
        assert!((dir[j] - want[j]).abs() < 0.05, "{dir:?} vs {want:?}");
    }
    assert!(LogReg::fit(&x, 4, &y, FitSettings::default()).is_err());
}

#[test]
fn difference_of_means_steering_matches_a_hand_computed_mean() {
    let model = random_model(5);
    let a = vec![vec![1u32, 2, 3], vec![4, 5]];
    let b = vec![vec![6u32, 7, 8, 9]];
    let hook = resid_hook(2);
    // By hand: every position's activation, averaged per set.
    let acts = |set: &[Vec<u32>]| -> Vec<Vec<f32>> {
        set.iter()
            .flat_map(|c| {
                let (_, cache) = model.run_with_cache(c).unwrap();
                cache.get(hook).unwrap().get(0).unwrap().to_vec2::<f32>().unwrap()
            })
            .collect()
    };
    let want = difference_of_means(&acts(&a), &acts(&b)).unwrap();
    let got = steering_from_contexts(&model, &a, &b, hook).unwrap();
    assert_eq!(got.hook, Hook::ResidPost(1));
    assert!(got.vector.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-4));
    let mean_a = mean_activation(&model, &a, hook).unwrap();
    assert_eq!(mean_a.len(), 32);
    // One context per step, as the browser runs it between frames: the very same vector.
    let mut job = ContextMeans::new(&model, &a, &b, hook).unwrap();
    let mut steps = 0;
    while !job.step(&model, 1).unwrap() {
        steps += 1;
        assert!(job.progress() < 1.0);
    }
    assert_eq!((steps, job.progress()), (2, 1.0));
    assert_eq!(job.finish().unwrap(), got);
    // A block per piece: resid_hook(2) is recorded by the second block, so each context takes two pieces.
    let mut job = ContextMeans::new(&model, &a, &b, hook).unwrap();
    let mut pieces = 1;
    while !job.advance(&model).unwrap() {
        pieces += 1;
    }
    assert_eq!(pieces, 2 * 3);
    assert_eq!(job.finish().unwrap(), got);
    let unfinished = ContextMeans::new(&model, &a, &b, hook).unwrap();
    assert!(unfinished.finish().is_err());
    let e = steering_from_contexts(&model, &a, &[vec![]], hook).unwrap_err().to_string();
    assert!(e.contains("second set of contexts is empty"), "{e}");
    assert!(steering_from_contexts(&model, &a, &b, Hook::Pattern(0)).is_err());
    // Adding the vector at coefficient 0 changes nothing; at 1 it changes the logits.
    let plain = rows(&model.logits(&a[0]).unwrap());
    let zero = rows(&model.run_with_hooks(&a[0], vec![got.intervention(0.0).unwrap()]).unwrap());
    let one = rows(&model.run_with_hooks(&a[0], vec![got.intervention(1.0).unwrap()]).unwrap());
    assert!(max_diff(&plain, &zero) < 1e-6);
    assert!(max_diff(&plain, &one) > 1e-3);
}

/// `skip_first`, as an opened model's lab runs it (its tokenizer puts the model's first token before every
/// context): the means leave each context's first positions out, checked against the cached activations by hand.
#[test]
fn context_means_can_leave_the_first_token_out() {
    let model = random_model(6);
    let a = vec![vec![0u32, 2, 3, 4], vec![0, 5, 6]];
    let b = vec![vec![0u32, 7, 8]];
    let hook = resid_hook(1);
    let acts = |set: &[Vec<u32>]| -> Vec<Vec<f32>> {
        set.iter()
            .flat_map(|c| {
                let (_, cache) = model.run_with_cache(c).unwrap();
                cache.get(hook).unwrap().get(0).unwrap().to_vec2::<f32>().unwrap().split_off(1)
            })
            .collect()
    };
    let want = difference_of_means(&acts(&a), &acts(&b)).unwrap();
    let mut job = ContextMeans::new(&model, &a, &b, hook).unwrap().skip_first(1);
    while !job.advance(&model).unwrap() {}
    let got = job.finish().unwrap();
    assert!(got.vector.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-4));
    // Not the same as keeping the first position, which the two sets share.
    let kept = steering_from_contexts(&model, &a, &b, hook).unwrap();
    assert!(got.vector.iter().zip(&kept.vector).any(|(g, k)| (g - k).abs() > 1e-3));
    // A set of contexts with nothing after the first token has nothing to average.
    let mut job = ContextMeans::new(&model, &a, &[vec![0u32]], hook).unwrap().skip_first(1);
    while !job.advance(&model).unwrap() {}
    let e = job.finish().unwrap_err().to_string();
    assert!(e.contains("second set has no token"), "{e}");
}

/// A text over the random model's 23 characters (21 letters, space, line break), with words and lines.
fn random_text(n: usize, seed: u64) -> String {
    let letters: Vec<char> = "abcdefghijklmnopqrstu".chars().collect();
    let mut rng = Rng::new(seed);
    let mut out = String::new();
    while out.len() < n {
        for _ in 0..rng.range(1, 8) {
            out.push(letters[rng.range(0, letters.len() - 1)]);
        }
        out.push(if rng.range(0, 9) == 0 { '\n' } else { ' ' });
    }
    out
}

#[test]
fn chunked_probing_equals_probing_in_one_go() {
    use glassbox::lens::gpt2::text::CharVocab;
    use glassbox::lens::methods::probe::{
        probe_recorded, BuiltinConcept, Concept, ProbeJob, ProbeRecording, ProbeSettings,
    };
    let model = random_model(5);
    let vocab = CharVocab::from_text("abcdefghijklmnopqrstu \n");
    assert_eq!(vocab.len(), 23);
    let text = random_text(1500, 3);
    let settings =
        ProbeSettings { positions: 1000, fit: FitSettings { l2: 1e-3, iterations: 40 }, ..ProbeSettings::default() };
    // Record two windows at a time, as the browser does between frames.
    let mut rec = ProbeRecording::new(&model, &vocab, &text, &settings).unwrap();
    let mut steps = 0;
    while !rec.step(&model, 2).unwrap() {
        steps += 1;
    }
    assert!(steps >= 3, "recorded in several steps");
    let (done, all) = rec.progress();
    assert_eq!(done, all);
    let data = rec.finish();
    assert!(data.positions() >= 1000);
    let concept = Concept::Builtin(BuiltinConcept::SpaceNext);
    let whole = probe_recorded(&data, &concept, &settings).unwrap();
    assert_eq!(whole.layers.len(), 4);
    // Train in small slices: the same probes, and progress grows to 1.
    let mut job = ProbeJob::new(&data, &concept, &settings, &[0, 1, 2, 3]).unwrap();
    let mut last = 0.0;
    while !job.step(&data, 7).unwrap() {
        assert!(job.progress() >= last);
        last = job.progress();
    }
    assert_eq!(job.progress(), 1.0);
    let sliced = job.report();
    assert_eq!(sliced, whole);
    // One layer only, for a steering direction.
    let mut one = ProbeJob::new(&data, &concept, &settings, &[2]).unwrap();
    while !one.step(&data, 1000).unwrap() {}
    let r = one.report();
    assert_eq!(r.layers.len(), 1);
    assert_eq!(r.layers[0], whole.layers[2]);
    assert!(ProbeJob::new(&data, &concept, &settings, &[9]).is_err());
    // Characters outside the vocabulary and empty text are refused with a message.
    assert!(ProbeRecording::new(&model, &vocab, "xyz!", &settings).is_err());
    assert!(ProbeRecording::new(&model, &vocab, "", &settings).is_err());
}

#[test]
fn probing_windows_read_one_at_a_time_equals_recording_them_together() {
    // What the browser does on an opened model: the windows from `from_ids`, each read by a `LensRun` (which
    // it steps half a block per slice), its residual stream pushed; labelled per token by a `TokenConcept`.
    use glassbox::lens::gpt2::text::CharVocab;
    use glassbox::lens::methods::probe::{
        BuiltinConcept, Concept, ProbeJob, ProbeRecording, ProbeSettings, ResidShape, TokenConcept,
    };
    let model = random_model(5);
    let vocab = CharVocab::from_text("abcdefghijklmnopqrstu \n");
    let text = random_text(1500, 3);
    let settings =
        ProbeSettings { positions: 1000, fit: FitSettings { l2: 1e-3, iterations: 40 }, ..ProbeSettings::default() };
    let mut together = ProbeRecording::new(&model, &vocab, &text, &settings).unwrap();
    while !together.step(&model, 3).unwrap() {}
    let together = together.finish();

    let ids = vocab.encode(&text).unwrap();
    let shape = ResidShape { layers: model.cfg.n_layer + 1, d_model: model.cfg.d_model() };
    let read = |window: &[u32], bos: Option<u32>| {
        let input: Vec<u32> = bos.into_iter().chain(window.iter().copied()).collect();
        let mut run = LensRun::recording(&model, &input, 1, &[]).unwrap();
        while !run.step(&model).unwrap() {}
        run.finish_resid(&model).unwrap()
    };
    let mut apart =
        ProbeRecording::from_ids(text.clone(), ids.clone(), shape, model.cfg.n_positions, &settings).unwrap();
    let mut pushed = 0;
    while let Some(window) = apart.next_window() {
        let resid = read(window, None);
        // A stream of another length is refused (the model's first token counted but not skipped, say).
        assert!(apart.push(&resid, 1).is_err());
        pushed += 1;
        let done = apart.push(&resid, 0).unwrap();
        assert_eq!(done, apart.next_window().is_none());
    }
    assert!(pushed >= 5);
    assert!(apart.push(&read(&ids[..4], None), 0).is_err(), "every window is recorded");
    let apart = apart.finish();
    assert_eq!(apart.positions(), together.positions());

    // "A space or line break after", as a token concept, gives the built-in's labels and the same probes.
    let chars: Vec<String> = text.chars().map(String::from).collect();
    let labels = TokenConcept { pattern: r"^\s".into(), next: true }.labels(&chars).unwrap();
    let builtin = Concept::Builtin(BuiltinConcept::SpaceNext);
    assert_eq!(labels, builtin.labels(&text).unwrap());
    let layers = [0, 1, 2, 3];
    let run = |job: ProbeJob, data| {
        let mut job = job;
        while !job.step(data, usize::MAX).unwrap() {}
        job.report()
    };
    let a = run(ProbeJob::new(&together, &builtin, &settings, &layers).unwrap(), &together);
    let b = run(ProbeJob::with_labels(&apart, "space after".into(), &labels, &settings, &layers).unwrap(), &apart);
    for (x, y) in a.layers.iter().zip(&b.layers) {
        assert!((x.test_accuracy - y.test_accuracy).abs() <= 2e-3, "{} vs {}", x.test_accuracy, y.test_accuracy);
        assert!((x.train_accuracy - y.train_accuracy).abs() <= 2e-3);
    }
    assert_eq!((a.n_train, a.n_test, a.baseline), (b.n_train, b.n_test, b.baseline));
    // Labels for another text length are refused.
    assert!(ProbeJob::with_labels(&apart, "short".into(), &labels[1..], &settings, &layers).is_err());

    // With the model's first token in front, its row is left out: the positions are the window's.
    let mut with_bos =
        ProbeRecording::from_ids(text.clone(), ids, shape, model.cfg.n_positions - 1, &settings).unwrap();
    while let Some(window) = with_bos.next_window() {
        let resid = read(window, Some(0));
        assert_eq!(resid.dims()[1], window.len() + 1);
        with_bos.push(&resid, 1).unwrap();
    }
    assert!(with_bos.finish().positions() >= 1000);
    assert!(ProbeRecording::from_ids(String::new(), vec![], shape, 8, &settings).is_err());
    // Fewer windows than the test split needs: refused before any reading, in words.
    let short = ProbeRecording::from_ids("abcd".into(), vec![1, 2, 3, 4], shape, 8, &settings).err().unwrap();
    assert!(short.to_string().contains("too short to probe: it is 4 tokens"), "{short}");
}

#[test]
fn generating_in_slices_equals_generating_in_one_go() {
    use glassbox::lens::gpt2::generate::Generator;
    let model = random_model(7);
    let prompt: Vec<u32> = (0..10).map(|i| (i * 5 % 23) as u32).collect();
    let settings = SampleSettings { temperature: 0.9, top_k: 0, seed: 4 };
    let steer =
        Intervention::new(resid_hook(1), Op::Add(Tensor::from_vec(vec![0.5f32; 32], 32, &Device::Cpu).unwrap()));
    for ivs in [vec![], vec![steer]] {
        // 60 tokens run past the 24-position context, so the sliding window is exercised too.
        let whole = generate(&model, &prompt, 60, &settings, &ivs).unwrap();
        let mut g = Generator::new(&model, &prompt, &settings, &ivs).unwrap();
        for n in [7, 1, 20, 32] {
            g.step(&model, n).unwrap();
        }
        assert_eq!(g.out, whole);
    }
}

#[test]
fn a_forward_pass_taken_half_a_block_at_a_time_equals_the_whole_pass() {
    use glassbox::lens::Stepped;
    let model = random_model(3);
    assert!(!model.cfg.attn_only, "the test needs blocks with an MLP half");
    let tokens: Vec<u32> = (0..20u32).map(|i| (i * 11 + 2) % 23).collect();
    let hooks = vec![resid_hook(0), resid_hook(2), Hook::Pattern(1), Hook::ResidMid(1), Hook::MlpOut(2)];
    let mut whole_set = HookSet::cache_only(hooks.clone());
    let whole = model.forward(&Tensor::from_slice(&tokens, (1, 20), &Device::Cpu).unwrap(), &mut whole_set).unwrap();
    let mut stepped = Stepped::new(&model, &tokens, HookSet::cache_only(hooks.clone())).unwrap();
    // Two steps per block (its attention, then its MLP), then one for the unembedding; progress only grows.
    let (mut steps, mut last) = (1, 0.0);
    while !stepped.step(&model).unwrap() {
        steps += 1;
        let p = stepped.progress(&model);
        assert!(p > last && p < 1.0, "progress {p} after {last}");
        last = p;
    }
    assert_eq!(steps, 2 * model.cfg.n_layer + 1);
    let (logits, set) = stepped.finish().unwrap();
    assert_eq!(max_diff(&rows(&logits), &rows(&whole)), 0.0);
    for h in hooks {
        let (a, b) = (set.cache.get(h).unwrap(), whole_set.cache.get(h).unwrap());
        let (a, b): (Vec<f32>, Vec<f32>) =
            (a.flatten_all().unwrap().to_vec1().unwrap(), b.flatten_all().unwrap().to_vec1().unwrap());
        assert_eq!(a, b, "{h}");
    }
    // Asking for the logits early is an error, not a panic.
    assert!(Stepped::new(&model, &tokens, HookSet::none()).unwrap().finish().is_err());
}

#[test]
fn generation_takes_a_prefill_one_block_per_piece() {
    use glassbox::lens::gpt2::generate::Generator;
    let model = random_model(8);
    let prompt: Vec<u32> = (0..12).map(|i| (i * 3 % 23) as u32).collect();
    let settings = SampleSettings { temperature: 0.7, top_k: 0, seed: 2 };
    let whole = generate(&model, &prompt, 40, &settings, &[]).unwrap();
    let mut g = Generator::new(&model, &prompt, &settings, &[]).unwrap();
    // The prompt: one piece per block, the last of which also samples the first token.
    let first: Vec<bool> = (0..model.cfg.n_layer).map(|_| g.advance(&model).unwrap()).collect();
    assert_eq!(first, [vec![false; model.cfg.n_layer - 1], vec![true]].concat());
    // Then one token per piece until the 24-position context is full, where a slide re-reads 18 tokens.
    let mut pieces = model.cfg.n_layer;
    while g.out.tokens.len() < 40 {
        g.advance(&model).unwrap();
        pieces += 1;
    }
    assert!(pieces > 40, "a slide's prefill is cut into blocks too");
    assert_eq!(g.out, whole);
}

/// A model too big to take a token's pass in one piece (GPT-2 small) is cut half a block per piece, then a slice
/// of the vocabulary per piece: the same tokens as the whole pass, steered or not, past a slide of the context.
#[test]
fn generation_cut_finer_gives_the_same_tokens() {
    use glassbox::lens::gpt2::generate::Generator;
    let model = random_model(9);
    let prompt: Vec<u32> = (0..10).map(|i| (i * 7 % 23) as u32).collect();
    let settings = SampleSettings { temperature: 0.8, top_k: 5, seed: 11 };
    let steer =
        Intervention::new(resid_hook(1), Op::Add(Tensor::from_vec(vec![0.3f32; 32], 32, &Device::Cpu).unwrap()));
    for ivs in [vec![], vec![steer]] {
        let whole = generate(&model, &prompt, 50, &settings, &ivs).unwrap();
        let mut g = Generator::new(&model, &prompt, &settings, &ivs).unwrap().cut_fine(5);
        // The prompt: two pieces per block (attention, MLP), then 5 slices of the 23-token vocabulary.
        let first: Vec<bool> = (0..2 * model.cfg.n_layer + 5).map(|_| g.advance(&model).unwrap()).collect();
        assert_eq!(first, [vec![false; 2 * model.cfg.n_layer + 4], vec![true]].concat());
        let mut pieces = first.len();
        while g.out.tokens.len() < 50 {
            g.advance(&model).unwrap();
            pieces += 1;
        }
        assert_eq!(pieces, 50 * (2 * model.cfg.n_layer + 5), "every token is cut as finely, a slide's too");
        assert_eq!(g.out.tokens, whole.tokens);
        for (a, b) in g.out.probs.iter().zip(&whole.probs).chain(g.out.sample_probs.iter().zip(&whole.sample_probs)) {
            assert!((a - b).abs() < 1e-5, "{a} against {b}");
        }
    }
}
