//! The engine against an independent computation: a plain-loop GPT-2 forward written from the Hugging Face
//! definition (Conv1D weights `[in, out]`, pre-LayerNorm, causal softmax attention, gelu_new MLP), run on the
//! same weights. Forward logits and every attention pattern must agree to 1e-4.
//! The reference itself lives in `tests/common/reference.rs`, shared with the in-browser tests (`tests/web.rs`).
//! Also the hand-written backward pass of a half block against autograd.
use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use glassbox::lens::gpt2::model::per_position_loss;
use glassbox::lens::{Hook, Intervention, Op, Transformer};

#[path = "common/reference.rs"]
mod reference;
use reference::{assert_close, logits_vec, random_model, RefEdit, TOKENS};

#[test]
fn forward_and_patterns_match_the_plain_loop_reference() {
    for attn_only in [true, false] {
        for seed in [1, 2] {
            let (model, reference) = random_model(attn_only, seed);
            let (logits, cache) = model.run_with_cache(&TOKENS).unwrap();
            let (ref_logits, ref_patterns) = reference.forward(&TOKENS, &RefEdit::default());
            let flat: Vec<f32> = ref_logits.concat();
            assert_close(&logits_vec(&logits), &flat, 1e-4, &format!("logits (attn_only {attn_only}, seed {seed})"));
            for (l, heads) in ref_patterns.iter().enumerate().take(2) {
                for (h, want) in heads.iter().enumerate().take(3) {
                    let p = cache.pattern(l, h, 0).unwrap();
                    assert_close(&p.concat(), &want.concat(), 1e-4, &format!("pattern L{l}H{h}"));
                }
            }
        }
    }
}

#[test]
fn cache_holds_every_hook_with_transformer_lens_shapes() {
    for attn_only in [true, false] {
        let (model, _) = random_model(attn_only, 3);
        let (_, cache) = model.run_with_cache(&TOKENS).unwrap();
        let mut expected = Hook::all(2, attn_only);
        expected.sort();
        assert_eq!(cache.hooks(), expected);
        let n = TOKENS.len();
        let shape = |name: &str| cache.get_by_name(name).unwrap().dims().to_vec();
        assert_eq!(shape("hook_embed"), vec![1, n, 24]);
        assert_eq!(shape("blocks.1.attn.hook_q"), vec![1, n, 3, 8]);
        assert_eq!(shape("blocks.1.attn.hook_z"), vec![1, n, 3, 8]);
        assert_eq!(shape("blocks.0.attn.hook_pattern"), vec![1, 3, n, n]);
        assert_eq!(shape("blocks.0.ln1.hook_scale"), vec![1, n, 1]);
        assert_eq!(shape("ln_final.hook_normalized"), vec![1, n, 24]);
        if !attn_only {
            assert_eq!(shape("blocks.0.mlp.hook_post"), vec![1, n, 40]);
        }
        // The residual stream adds up: resid_post = resid_pre + attn_out (+ mlp_out).
        let pre = cache.get(Hook::ResidPre(1)).unwrap();
        let mut sum = (pre + cache.get(Hook::AttnOut(1)).unwrap()).unwrap();
        if !attn_only {
            sum = (sum + cache.get(Hook::MlpOut(1)).unwrap()).unwrap();
        }
        assert_close(&logits_vec(&sum), &logits_vec(cache.get(Hook::ResidPost(1)).unwrap()), 1e-5, "resid sum");
        // Patterns are causal probability distributions.
        let p = cache.pattern(1, 2, 0).unwrap();
        for (q, row) in p.iter().enumerate() {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(row[q + 1..].iter().all(|&v| v == 0.0));
        }
    }
}

#[test]
fn interventions_match_the_reference_with_the_same_edit() {
    let (model, reference) = random_model(false, 4);
    // Zero-ablate one head's z.
    let got = model.run_with_hooks(&TOKENS, vec![Intervention::new(Hook::Z(1), Op::Zero).head(2)]).unwrap();
    let want = reference.forward(&TOKENS, &RefEdit { zero_head: Some((1, 2)), ..Default::default() }).0.concat();
    assert_close(&logits_vec(&got), &want, 1e-4, "zero head L1H2");
    // Add a steering vector to the residual stream before block 1.
    let vec: Vec<f32> = (0..24).map(|i| (i as f32 - 12.0) / 7.0).collect();
    let steer = Tensor::from_vec(vec.clone(), 24, &Device::Cpu).unwrap();
    let got = model.run_with_hooks(&TOKENS, vec![Intervention::new(Hook::ResidPre(1), Op::Add(steer))]).unwrap();
    let want = reference.forward(&TOKENS, &RefEdit { add_resid_pre: Some((1, vec)), ..Default::default() }).0.concat();
    assert_close(&logits_vec(&got), &want, 1e-4, "steer resid_pre 1");
    // Scale(1) changes nothing; Scale(0) equals Zero.
    let plain = model.logits(&TOKENS).unwrap();
    let one = model.run_with_hooks(&TOKENS, vec![Intervention::new(Hook::Pattern(0), Op::Scale(1.0))]).unwrap();
    assert_close(&logits_vec(&one), &logits_vec(&plain), 0.0, "scale 1");
    let s0 = model.run_with_hooks(&TOKENS, vec![Intervention::new(Hook::V(0), Op::Scale(0.0)).head(1)]).unwrap();
    let z0 = model.run_with_hooks(&TOKENS, vec![Intervention::new(Hook::V(0), Op::Zero).head(1)]).unwrap();
    assert_close(&logits_vec(&s0), &logits_vec(&z0), 0.0, "scale 0 = zero");
}

#[test]
fn attention_only_zero_ablation_matches_reference() {
    let (model, reference) = random_model(true, 5);
    let ivs = (0..2).map(|l| Intervention::new(Hook::AttnOut(l), Op::Zero)).collect();
    let got = model.run_with_hooks(&TOKENS, ivs).unwrap();
    let want = reference.forward(&TOKENS, &RefEdit { zero_attn_out: true, ..Default::default() }).0.concat();
    assert_close(&logits_vec(&got), &want, 1e-4, "all attention zero-ablated");
}

#[test]
fn patching_the_whole_residual_stream_transplants_the_run() {
    let (model, _) = random_model(false, 6);
    let other: Vec<u32> = TOKENS.iter().map(|t| (t * 7 + 3) % 37).collect();
    let (other_logits, other_cache) = model.run_with_cache(&other).unwrap();
    let patched = model
        .run_with_hooks(
            &TOKENS,
            vec![Intervention::new(
                Hook::ResidPost(1),
                Op::Replace(other_cache.get(Hook::ResidPost(1)).unwrap().clone()),
            )],
        )
        .unwrap();
    assert_close(&logits_vec(&patched), &logits_vec(&other_logits), 1e-5, "patched resid_post");
    // Patching one position only changes that position's logits (the last block has run already).
    let one_pos = model
        .run_with_hooks(
            &TOKENS,
            vec![Intervention::new(
                Hook::ResidPost(1),
                Op::Replace(other_cache.get(Hook::ResidPost(1)).unwrap().clone()),
            )
            .pos(4)],
        )
        .unwrap();
    let base = model.logits(&TOKENS).unwrap();
    for p in 0..TOKENS.len() {
        let a = logits_vec(&one_pos.get(0).unwrap().get(p).unwrap());
        let b = logits_vec(&if p == 4 {
            other_logits.get(0).unwrap().get(p).unwrap()
        } else {
            base.get(0).unwrap().get(p).unwrap()
        });
        assert_close(&a, &b, 1e-5, &format!("position {p}"));
    }
}

#[test]
fn safetensors_round_trip_keeps_logits_and_hf_names() {
    let (model, _) = random_model(true, 7);
    let tensors: HashMap<String, Tensor> = model.to_tensors().unwrap().into_iter().collect();
    assert!(tensors.contains_key("transformer.h.1.attn.c_attn.weight"));
    assert!(
        tensors.contains_key("transformer.h.0.mlp.c_fc.weight"),
        "attention-only models still store zero MLP weights"
    );
    assert_eq!(
        tensors["transformer.h.0.mlp.c_fc.weight"].abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap(),
        0.0
    );
    let path = std::env::temp_dir().join(format!("glassbox-roundtrip-{}.safetensors", std::process::id()));
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let back = Transformer::from_bytes(&model.cfg.to_json(), &bytes).unwrap();
    assert_close(
        &logits_vec(&back.logits(&TOKENS).unwrap()),
        &logits_vec(&model.logits(&TOKENS).unwrap()),
        0.0,
        "reloaded",
    );
}

#[test]
fn broken_inputs_and_files_are_clear_errors() {
    let (model, _) = random_model(true, 8);
    let msg = |r: Result<Tensor, glassbox::lens::LensError>| r.unwrap_err().to_string();
    assert!(msg(model.logits(&[])).contains("empty"));
    assert!(msg(model.logits(&[0; 17])).contains("context holds 16"));
    assert!(msg(model.logits(&[0, 99])).contains("outside the vocabulary"));
    let cfg = model.cfg.to_json();
    assert!(Transformer::from_bytes(&cfg, b"not a safetensors file").unwrap_err().to_string().contains("safetensors"));
    // A file with a tensor missing names it.
    let mut tensors: HashMap<String, Tensor> = model.to_tensors().unwrap().into_iter().collect();
    tensors.remove("transformer.h.1.attn.c_proj.bias");
    let e = Transformer::from_tensors(model.cfg.clone(), tensors.clone()).unwrap_err().to_string();
    assert!(e.contains("transformer.h.1.attn.c_proj.bias") && e.contains("missing"), "{e}");
    // A wrong shape names the tensor and both shapes.
    tensors.insert("transformer.h.1.attn.c_proj.bias".into(), Tensor::zeros(5, DType::F32, &Device::Cpu).unwrap());
    let e = Transformer::from_tensors(model.cfg.clone(), tensors.clone()).unwrap_err().to_string();
    assert!(e.contains("[5]") && e.contains("[24]"), "{e}");
    // NaN weights are refused.
    tensors.insert(
        "transformer.h.1.attn.c_proj.bias".into(),
        Tensor::from_vec(vec![f32::NAN; 24], 24, &Device::Cpu).unwrap(),
    );
    assert!(Transformer::from_tensors(model.cfg.clone(), tensors).unwrap_err().to_string().contains("NaN"));
    assert!(Transformer::from_bytes("{}", b"").is_err());
}

#[test]
fn per_position_loss_is_cross_entropy() {
    // Logits favouring token 1 at every position: loss = logsumexp - logit of the target.
    let logits = Tensor::from_vec(vec![0f32, 2.0, 0.0, 0.0, 2.0, 0.0], (1, 2, 3), &Device::Cpu).unwrap();
    let l = per_position_loss(&logits, &[0, 1]).unwrap();
    let lse = (2.0f32.exp() + 2.0).ln();
    assert_eq!(l.len(), 1);
    assert!((l[0] - (lse - 2.0)).abs() < 1e-6);
}

/// `half_block_backward` (written out by hand) against autograd on the same half: the half run again with
/// candle's differentiable ops from a `Var` input, a zero `Var` added at every hook, and `(output · g).sum()`
/// differentiated. Every half of models with and without MLPs, scaled attention or not; every hook the hand-written
/// pass returns, and the input's gradient, to 1e-5 of the largest.
#[test]
fn half_block_backward_equals_autograd() {
    use candle_core::Var;
    use glassbox::lens::rng::Rng;
    use glassbox::lens::{Gpt2Config, HookSet, Stepped};

    for (attn_only, scaled) in [(false, true), (true, true), (false, false)] {
        let mut cfg = Gpt2Config::new(29, 16, 24, 2, 3, attn_only);
        cfg.scale_attn_weights = scaled;
        // Weights 8x GPT-2's initialisation, so that the softmaxes, GELUs and LayerNorms bend.
        let drawn = Transformer::random(cfg.clone(), 3).unwrap();
        let tensors = drawn.to_tensors().unwrap().into_iter().map(|(n, t)| {
            let t = if n.ends_with(".weight") && !n.contains("ln_") { (t * 8.0).unwrap() } else { t };
            (n, t)
        });
        let model = Transformer::from_tensors(cfg.clone(), tensors.collect()).unwrap();
        let tokens = [3u32, 17, 5, 5, 28, 0, 9];
        let reads: Vec<Hook> = (0..cfg.n_layer).flat_map(|l| model.backward_reads(l)).collect();
        let mut stepped = Stepped::new(&model, &tokens, HookSet::cache_only(reads)).unwrap();
        let (_, all) = model.run_with_cache(&tokens).unwrap();
        let mut rng = Rng::new(7);
        let mut halves = 0;
        while stepped.pass().unwrap().layers_done() < cfg.n_layer {
            let pass = stepped.pass().unwrap().clone();
            stepped.step(&model).unwrap();
            let cache = &stepped.hooks.cache;
            let d = cfg.d_model();
            let g: Vec<f32> = (0..tokens.len() * d).map(|_| rng.normal()).collect();
            let grad_out = Tensor::from_vec(g, (1, tokens.len(), d), &Device::Cpu).unwrap();
            let (grad_in, grads) = model.half_block_backward(&pass, cache, &grad_out).unwrap();

            let mut grad_model = model.clone();
            grad_model.autograd = true;
            let layer = pass.layers_done();
            let mut set = HookSet::none();
            let mut vars = Vec::new();
            for hook in Hook::all(cfg.n_layer, attn_only).into_iter().filter(|h| h.layer() == Some(layer)) {
                let var = Var::zeros(all.get(hook).unwrap().dims(), DType::F32, &Device::Cpu).unwrap();
                set.interventions.push(Intervention::new(hook, Op::Add(var.as_tensor().clone())));
                vars.push((hook, var));
            }
            let input = Var::from_tensor(pass.resid()).unwrap();
            let mut p = pass.with_resid(input.as_tensor().clone()).unwrap();
            grad_model.half_block(&mut p, &mut set).unwrap();
            let want = (p.resid() * &grad_out).unwrap().sum_all().unwrap().backward().unwrap();

            let what = format!("attn_only {attn_only}, scaled {scaled}, layer {layer}, mid {}", pass.mid_block());
            let flat = |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
            let compare = |got: &Tensor, want: &Tensor, name: String| {
                let (got, want) = (flat(got), flat(want));
                let largest = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(largest > 0.0, "{name}: a zero gradient checks nothing");
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-5 * largest, "{name}: {a} vs {b} (largest {largest})");
                }
            };
            compare(&grad_in, want.get(input.as_tensor()).unwrap(), format!("{what}: input"));
            let mut checked = 0;
            for (hook, var) in &vars {
                match (grads.get(*hook), want.get(var.as_tensor())) {
                    (Some(got), Some(w)) => {
                        compare(got, w, format!("{what}: {hook}"));
                        checked += 1;
                    }
                    // The LayerNorm scales are hooked but nothing reads the hook's value; other hooks belong to the
                    // layer's other half.
                    (None, _) => {}
                    (Some(_), None) => panic!("{what}: {hook} has a gradient autograd does not see"),
                }
            }
            let want_hooks = match (attn_only, pass.mid_block()) {
                (true, _) => 10, // resid_pre, ln1 normalized, q, k, v, scores, pattern, z, attn_out, resid_post
                (false, false) => 9,
                (false, true) => 6, // resid_mid, ln2 normalized, mlp pre, post, out, resid_post
            };
            assert_eq!((checked, grads.len()), (want_hooks, want_hooks), "{what}");
            halves += 1;
        }
        assert_eq!(halves, cfg.n_layer * if attn_only { 1 } else { 2 });
        // The gradient must have the output's shape.
        let pass = Stepped::new(&model, &tokens, HookSet::none()).unwrap().pass().unwrap().clone();
        let wrong = Tensor::zeros((1, 2, cfg.d_model()), DType::F32, &Device::Cpu).unwrap();
        assert!(model.half_block_backward(&pass, &all, &wrong).is_err());
    }
}
