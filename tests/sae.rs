//! The language-model SAE (`lens::methods::sae`): every metric on hand-checkable cases, then the shipped SAE of the
//! Moby-Dick model (`public/models/moby/sae/`) checked from its files.
//!
//! Shipped targets: on the whole of `held_out.txt`, FVU <= 0.12, L0 between 5 and 40, the loss with the
//! reconstruction spliced in at most 0.2 nats per character above the clean loss, at least 90% of the loss
//! recovered against zero-ablation (from `sae.json`); the clean and spliced losses recomputed here from the
//! shipped weights match `sae.json` within 0.002; the feature index recomputed for a few latents matches
//! `features.json`.
use candle_core::{Device, Tensor};
use glassbox::lens::gpt2::text::{CharVocab, HELD_OUT_FILE};
use glassbox::lens::gpt2::train::held_out_loss;
use glassbox::lens::methods::sae::*;
use glassbox::lens::{Hook, Transformer};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/moby");

/// d_in 2, d_sae 3: latent 0 reads x₀, latent 1 reads x₁, latent 2 reads -x₀ - x₁ with bias -1.
fn tiny() -> LmSae {
    LmSae::new(
        Hook::ResidPost(0),
        2,
        3,
        vec![1.0, 0.0, 0.0, 1.0, -1.0, -1.0],
        vec![0.0, 0.0, -1.0],
        vec![1.0, 0.0, 0.0, 1.0, -0.6, -0.8],
        vec![0.5, 0.0],
    )
    .unwrap()
}

#[test]
fn encode_and_decode_by_hand() {
    let sae = tiny();
    // x = (1.5, 2): centred (1, 2) → pre (1, 2, -4) → f (1, 2, 0) → x̂ = b_dec + 1·(1,0) + 2·(0,1) = (1.5, 2).
    // x = (-1.5, -1): centred (-2, -1) → pre (-2, -1, 2) → f (0, 0, 2) → x̂ = (0.5 - 1.2, -1.6) = (-0.7, -1.6).
    let f = sae.encode(&[1.5, 2.0, -1.5, -1.0]);
    assert_eq!(f, vec![1.0, 2.0, 0.0, 0.0, 0.0, 2.0]);
    let x_hat = sae.decode(&f);
    let want = [1.5, 2.0, -0.7, -1.6];
    for (a, b) in x_hat.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{x_hat:?}");
    }
    assert_eq!(sae.direction(2), &[-0.6, -0.8]);
}

#[test]
fn fvu_by_hand() {
    // Rows (0,0) and (2,0): mean (1,0), total squared deviation 2.
    let x = [0.0, 0.0, 2.0, 0.0];
    assert_eq!(fvu(&x, &x, 2), 0.0);
    assert!((fvu(&x, &[1.0, 0.0, 1.0, 0.0], 2) - 1.0).abs() < 1e-6, "the mean explains nothing");
    assert!((fvu(&x, &[0.0, 0.0, 1.0, 0.0], 2) - 0.5).abs() < 1e-6);
    assert!(fvu(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0, 1.0, 1.0], 2).is_nan(), "no variance: undefined, not 0");
}

#[test]
fn stats_by_hand() {
    let sae = tiny();
    // Rows: (1.5, 2) → f (1, 2, 0); (-1.5, -1) → f (0, 0, 2); (0.5, 0) → f (0, 0, 0).
    let x = [1.5, 2.0, -1.5, -1.0, 0.5, 0.0];
    let s = sae_stats(&sae, &x);
    assert_eq!(s.rows, 3);
    assert!((s.l0 - 1.0).abs() < 1e-6, "3 active latents over 3 rows: {}", s.l0);
    assert_eq!(s.density, vec![1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]);
    assert_eq!(s.dead, 0);
    // Errors: 0, (−1.5+0.7)² + (−1+1.6)² = 0.64 + 0.36 = 1, 0: MSE 1/3.
    assert!((s.mse - 1.0 / 3.0).abs() < 1e-5, "{}", s.mse);
    let only_third = sae_stats(&sae, &[0.5, 0.0]);
    assert_eq!((only_third.l0, only_third.dead), (0.0, 3));
}

#[test]
fn scored_windows_score_every_position_once_with_half_a_context() {
    assert_eq!(scored_windows(10, 4), vec![(0, 0), (2, 2), (4, 2), (6, 2)]);
    assert_eq!(scored_windows(9, 4), vec![(0, 0), (2, 2), (4, 2), (5, 3)]);
    assert_eq!(scored_windows(3, 4), vec![(0, 0)]);
    assert!(scored_windows(0, 4).is_empty());
    for len in 1..300 {
        for n in [2, 5, 8, 128] {
            let mut seen = vec![0; len];
            for (k, (s, from)) in scored_windows(len, n).into_iter().enumerate() {
                let end = (s + n).min(len);
                for (p, c) in seen.iter_mut().enumerate().take(end).skip(s + from) {
                    *c += 1;
                    assert!(k == 0 || p - s >= n / 2, "len {len} n {n}: position {p} has only {} before it", p - s);
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "len {len} n {n}: {seen:?}");
        }
    }
}

#[test]
fn quantisation_round_trips_within_a_sixteenth() {
    assert_eq!(quantise(0.0, 4.0), '0');
    assert_eq!(quantise(4.0, 4.0), 'f', "the maximum saturates at 15/16");
    assert_eq!(quantise(1.0, 4.0), '4');
    assert_eq!(quantise(1.0, 0.0), '0');
    for i in 0..=100 {
        let a = i as f32 / 100.0;
        assert!((dequantise(quantise(a, 1.0)) - a).abs() <= 1.0 / 16.0 + 1e-6);
    }
}

#[test]
fn index_by_hand() {
    // 20 positions; latent 0 fires 1.0 at 3, 4.0 at 5, 2.0 at 15; latent 1 never.
    let mut acts: Vec<Vec<(u32, f32)>> = vec![Vec::new(); 20];
    acts[3].push((0, 1.0));
    acts[5].push((0, 4.0));
    acts[15].push((0, 2.0));
    let idx = build_index(&acts, 2, IndexSettings { top: 3, before: 2, after: 1, bins: 4 });
    assert_eq!((idx.positions, idx.before, idx.after), (20, 2, 1));
    let l = &idx.latents[0];
    assert_eq!((l.count, l.max), (3, 4.0));
    assert!((l.density - 0.15).abs() < 1e-6);
    assert_eq!(l.hist, vec![1, 1, 0, 1], "1.0 in (0,1], 2.0 in (1,2], 4.0 in (3,4]");
    // Peak 5 first; 3 is within before + after of 5, so skipped; then 15.
    assert_eq!(l.contexts.len(), 2);
    assert_eq!(
        (l.contexts[0].pos, l.contexts[0].start, l.contexts[0].peak, l.contexts[0].acts.as_str()),
        (5, 3, 4.0, "40f0")
    );
    assert_eq!((l.contexts[1].pos, l.contexts[1].start, l.contexts[1].acts.as_str()), (15, 13, "0080"));
    let dead = &idx.latents[1];
    assert_eq!(
        (dead.count, dead.density, dead.max, dead.hist.clone(), dead.contexts.len()),
        (0, 0.0, 0.0, vec![0; 4], 0)
    );
    let json = serde_json::to_string(&idx).unwrap();
    assert_eq!(FeatureIndex::from_json(&json).unwrap(), idx);
}

#[test]
fn promoted_and_suppressed_by_hand() {
    let (up, down) = promoted_and_suppressed(&[0.5, -1.0, 2.0, 0.0], 2);
    assert_eq!(up, vec![(2, 2.0), (0, 0.5)]);
    assert_eq!(down, vec![(1, -1.0), (3, 0.0)]);
}

#[test]
fn bad_files_are_errors_with_a_reason() {
    assert!(LmSae::new(Hook::ResidPost(0), 2, 3, vec![0.0; 5], vec![0.0; 3], vec![0.0; 6], vec![0.0; 2])
        .unwrap_err()
        .to_string()
        .contains("W_enc"));
    assert!(LmSae::new(Hook::ResidPost(0), 2, 1, vec![f32::NAN, 0.0], vec![0.0], vec![0.0; 2], vec![0.0; 2]).is_err());
    let cfg = r#"{"hook": "blocks.0.hook_resid_post", "d_in": 2, "d_sae": 3}"#;
    assert!(LmSae::from_bytes(cfg, b"not safetensors").is_err());
    assert!(LmSae::from_bytes(r#"{"hook": "blocks.x", "d_in": 2, "d_sae": 3}"#, b"")
        .unwrap_err()
        .to_string()
        .contains("blocks.x"));
    let bad = r#"{"positions": 10, "before": 2, "after": 1, "latents": [{"count": 1, "density": 0.1, "max": 1.0, "hist": [1], "contexts": [{"pos": 12, "start": 10, "peak": 1.0, "acts": "f"}]}]}"#;
    assert!(FeatureIndex::from_json(bad).is_err());
    assert!(FeatureIndex::from_json(
        &bad.replace("\"pos\": 12, \"start\": 10", "\"pos\": 5, \"start\": 5").replace("\"f\"", "\"z\"")
    )
    .is_err());
}

#[test]
fn weights_round_trip_through_safetensors() {
    let sae = tiny();
    let path = std::env::temp_dir().join(format!("glassbox-sae-{}.safetensors", std::process::id()));
    let map: std::collections::HashMap<String, Tensor> = sae.tensors().unwrap().into_iter().collect();
    assert_eq!(map["W_enc"].dims(), &[2, 3], "SAELens layout: W_enc is [d_in, d_sae]");
    candle_core::safetensors::save(&map, &path).unwrap();
    let back =
        LmSae::from_bytes(&serde_json::to_string(&sae.config()).unwrap(), &std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        (back.w_enc, back.b_enc, back.w_dec, back.b_dec, back.hook),
        (sae.w_enc, sae.b_enc, sae.w_dec, sae.b_dec, sae.hook)
    );
}

#[test]
fn training_recovers_a_sparse_code() {
    // Inputs are sparse non-negative mixes of 4 orthogonal directions in 8 dimensions plus an offset.
    let mut rng = glassbox::lens::rng::Rng::new(5);
    let d = 8;
    let mut x = Vec::new();
    for _ in 0..4000 {
        let mut row = vec![0.3f32; d];
        for k in 0..4 {
            if rng.uniform() < 0.25 {
                row[2 * k] += 1.0 + rng.uniform();
            }
        }
        x.extend(row);
    }
    let tc = SaeTrainConfig { d_sae: 8, l1: 0.05, lr: 1e-2, batch: 256, steps: 600, l1_warmup: 50, seed: 1 };
    let sae = train_sae(&x, d, Hook::ResidPost(0), &tc, |_, _, _| true).unwrap();
    let s = sae_stats(&sae, &x);
    assert!(s.fvu < 0.1, "FVU {}", s.fvu);
    assert!(s.l0 < 2.0, "L0 {} (the data has 1 active direction per row on average)", s.l0);
    for j in 0..tc.d_sae {
        let n: f32 = sae.direction(j).iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "decoder row {j} has length {n}");
    }
}

/// `SaeTraining` a step at a time (as the 9.5 scorecard trains in the browser) gives `train_sae`'s SAE exactly,
/// and `train_sae`'s progress stops it early.
#[test]
fn stepped_training_is_train_sae() {
    let mut rng = glassbox::lens::rng::Rng::new(9);
    let d = 6;
    let x: Vec<f32> = (0..600 * d).map(|_| if rng.uniform() < 0.2 { rng.uniform() } else { 0.0 }).collect();
    let tc = SaeTrainConfig { d_sae: 5, l1: 0.05, lr: 1e-2, batch: 32, steps: 250, l1_warmup: 20, seed: 3 };
    let weights = |s: LmSae| (s.w_enc, s.b_enc, s.w_dec, s.b_dec);
    let one_go = weights(train_sae(&x, d, Hook::ResidPost(0), &tc, |_, _, _| true).unwrap());
    let mut t = SaeTraining::new(&x, d, Hook::ResidPost(0), &tc).unwrap();
    while !t.done() {
        t.step(&x).unwrap();
    }
    assert_eq!((t.steps_done(), t.progress()), (250, 1.0));
    assert_eq!(weights(t.finish().unwrap()), one_go);
    // Stopped at the first report (step 100): the same as 100 steps.
    let mut seen = Vec::new();
    let stopped = weights(
        train_sae(&x, d, Hook::ResidPost(0), &tc, |step, _, _| {
            seen.push(step);
            false
        })
        .unwrap(),
    );
    let mut t = SaeTraining::new(&x, d, Hook::ResidPost(0), &tc).unwrap();
    for _ in 0..100 {
        t.step(&x).unwrap();
    }
    assert_eq!((seen, weights(t.finish().unwrap())), (vec![100], stopped));
    // Other rows than it started with, or none at all, are errors.
    assert!(t.step(&x[..d]).is_err());
    assert!(SaeTraining::new(&[], d, Hook::ResidPost(0), &tc).is_err());
}

// ---------------------------------------------------------------- the shipped SAE

fn shipped() -> (Transformer, CharVocab, LmSae, serde_json::Value, String) {
    let model = Transformer::from_bytes(
        &std::fs::read_to_string(format!("{DIR}/config.json")).unwrap(),
        &std::fs::read(format!("{DIR}/model.safetensors")).unwrap(),
    )
    .unwrap();
    let vocab = CharVocab::from_json(&std::fs::read_to_string(format!("{DIR}/vocab.json")).unwrap()).unwrap();
    let cfg =
        std::fs::read_to_string(format!("{DIR}/sae/sae.json")).expect("public/models/moby/sae/sae.json is shipped");
    let sae = LmSae::from_bytes(
        &cfg,
        &std::fs::read(format!("{DIR}/sae/sae_weights.safetensors")).expect("sae_weights.safetensors is shipped"),
    )
    .unwrap();
    let held = std::fs::read_to_string(format!("{DIR}/{HELD_OUT_FILE}")).unwrap();
    (model, vocab, sae, serde_json::from_str(&cfg).unwrap(), held)
}

fn shipped_index() -> FeatureIndex {
    FeatureIndex::from_json(
        &std::fs::read_to_string(format!("{DIR}/sae/features.json")).expect("features.json is shipped"),
    )
    .unwrap()
}

#[test]
fn shipped_files_fit_the_model_and_the_budget() {
    let (model, _, sae, report, held) = shipped();
    assert_eq!(sae.hook, Hook::ResidPost(2));
    assert_eq!((sae.d_in, sae.d_sae), (model.cfg.d_model(), 512));
    for j in 0..sae.d_sae {
        let n: f32 = sae.direction(j).iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-3, "decoder row {j} has length {n}");
    }
    let idx = shipped_index();
    assert_eq!(idx.latents.len(), sae.d_sae);
    assert_eq!(idx.positions, held.chars().count());
    let bytes: u64 = ["sae.json", "sae_weights.safetensors", "features.json"]
        .iter()
        .map(|f| std::fs::metadata(format!("{DIR}/sae/{f}")).unwrap().len())
        .sum();
    assert!(bytes < 1_500_000, "the SAE's files take {bytes} bytes");
    let h = &report["held_out"];
    let f = |k: &str| h[k].as_f64().unwrap_or_else(|| panic!("sae.json lacks held_out.{k}"));
    eprintln!(
        "shipped: FVU {:.4}, L0 {:.2}, dead {}, loss {:.4} → {:.4} (zero-ablated {:.4}, recovered {:.3})",
        f("fvu"),
        f("l0"),
        f("dead"),
        f("loss_clean"),
        f("loss_spliced"),
        f("loss_zero_ablated"),
        f("loss_recovered")
    );
    assert!(f("fvu") <= 0.12, "FVU {}", f("fvu"));
    assert!((5.0..=40.0).contains(&f("l0")), "L0 {}", f("l0"));
    assert!(
        f("loss_spliced") - f("loss_clean") <= 0.2 && f("loss_spliced") >= f("loss_clean"),
        "spliced {} vs clean {}",
        f("loss_spliced"),
        f("loss_clean")
    );
    assert!(f("loss_recovered") >= 0.9);
    assert_eq!(f("dead") as usize, idx.latents.iter().filter(|l| l.count == 0).count());
}

#[test]
fn shipped_losses_and_fvu_recompute_from_the_files() {
    let (model, vocab, sae, report, held) = shipped();
    let ids = vocab.encode(&held).unwrap();
    let t = spliced_losses(&model, &sae, &ids, false).unwrap();
    let h = &report["held_out"];
    eprintln!("recomputed: clean {:.4}, spliced {:.4} over {} characters", t.clean_loss(), t.spliced_loss(), t.count);
    assert_eq!(t.count, ids.len() - 1);
    assert!((t.clean_loss() - h["loss_clean"].as_f64().unwrap()).abs() < 2e-3);
    assert!((t.spliced_loss() - h["loss_spliced"].as_f64().unwrap()).abs() < 2e-3);
    // The clean half is the same number `train::held_out_loss` gives on the text as one block.
    let reference = held_out_loss(&model, std::slice::from_ref(&ids), 16).unwrap() as f64;
    assert!((t.clean_loss() - reference).abs() < 1e-3, "{} vs held_out_loss {reference}", t.clean_loss());
    // FVU on the first 4,096 characters, from the hook's activations in their scoring windows.
    let n = model.cfg.n_positions;
    let mut x = Vec::new();
    for (s, from) in scored_windows(4096, n) {
        let w = &ids[s..s + n.min(4096 - s)];
        let (_, cache) = model.run_with_cache(w).unwrap();
        let v: Vec<f32> = cache.get(sae.hook).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        x.extend_from_slice(&v[from * sae.d_in..]);
    }
    let s = sae_stats(&sae, &x);
    eprintln!("first 4,096 held-out characters: FVU {:.4}, L0 {:.2}", s.fvu, s.l0);
    assert!(s.fvu <= 0.15 && (5.0..=40.0).contains(&s.l0));
}

#[test]
fn shipped_index_recomputes_for_a_few_latents() {
    let (model, vocab, sae, _, held) = shipped();
    let idx = shipped_index();
    let acts = latent_activations(&model, &sae, &vocab.encode(&held).unwrap()).unwrap();
    let fresh = build_index(&acts, sae.d_sae, IndexSettings::default());
    assert_eq!((fresh.positions, fresh.before, fresh.after), (idx.positions, idx.before, idx.after));
    let densest = (0..sae.d_sae).max_by(|&a, &b| idx.latents[a].density.total_cmp(&idx.latents[b].density)).unwrap();
    for j in [0, 17, 100, 311, 511, densest] {
        let (a, b) = (&fresh.latents[j], &idx.latents[j]);
        assert!(a.count.abs_diff(b.count) <= 2 + b.count / 500, "latent {j}: count {} vs shipped {}", a.count, b.count);
        assert!((a.max - b.max).abs() <= 1e-3 * b.max.max(1.0), "latent {j}: max {} vs {}", a.max, b.max);
        let pa: Vec<usize> = a.contexts.iter().take(3).map(|c| c.pos).collect();
        let pb: Vec<usize> = b.contexts.iter().take(3).map(|c| c.pos).collect();
        assert_eq!(pa, pb, "latent {j}: top contexts");
        assert_eq!(
            a.contexts.first().map(|c| &c.acts),
            b.contexts.first().map(|c| &c.acts),
            "latent {j}: shading of the top context"
        );
    }
}

#[test]
fn logit_effects_match_the_models_own_final_layer_norm() {
    let (model, _, sae, _, _) = shipped();
    let effects = logit_effects(&model, &sae).unwrap();
    let vocab = model.cfg.vocab_size;
    assert_eq!(effects.len(), sae.d_sae * vocab);
    // unembed(d) - unembed(0) = W_U (γ ⊙ (d - mean d)) / σ(d): the effect, divided by d's own spread.
    let zero = model.unembed(&Tensor::zeros((1, sae.d_in), candle_core::DType::F32, &Device::Cpu).unwrap()).unwrap();
    for j in [3, 200, 450] {
        let d = sae.direction(j);
        let mean = d.iter().sum::<f32>() / d.len() as f32;
        let sigma = (d.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / d.len() as f32
            + model.cfg.layer_norm_epsilon as f32)
            .sqrt();
        let lens =
            (model.unembed(&Tensor::from_slice(d, (1, sae.d_in), &Device::Cpu).unwrap()).unwrap() - &zero).unwrap();
        let lens: Vec<f32> = lens.flatten_all().unwrap().to_vec1().unwrap();
        for c in 0..vocab {
            let want = effects[j * vocab + c] / sigma;
            assert!((lens[c] - want).abs() < 1e-3 * (1.0 + want.abs()), "latent {j} char {c}: {} vs {want}", lens[c]);
        }
    }
}

#[test]
fn a_window_measured_in_pieces_equals_window_losses() {
    let (model, vocab, sae, _, held) = shipped();
    let ids = vocab.encode(&held).unwrap();
    let n = model.cfg.n_positions;
    for (start, from) in scored_windows(300, n) {
        let window = &ids[start..(start + n).min(300)];
        let whole = window_losses(&model, &sae, window, from, false).unwrap();
        let mut run = WindowRun::new(&model, &sae, window, from).unwrap();
        let mut pieces = 1;
        let got = loop {
            match run.step(&model, &sae).unwrap() {
                Some(t) => break t,
                None => pieces += 1,
            }
        };
        // Half a block per piece in each pass (and the unembedding), and the reconstruction a few positions a piece;
        // the spliced pass goes on from the clean pass's point after the hook (blocks.2.hook_resid_post), so it
        // runs only the last block.
        let after = model.cfg.n_layer - 3;
        let want = (2 * model.cfg.n_layer + 1) + window.len().div_ceil(RECONSTRUCT_ROWS) + (2 * after + 1);
        assert_eq!(pieces, want);
        assert_eq!(got, whole);
        assert!(run.step(&model, &sae).is_err(), "a finished window says so");
    }
}

#[test]
fn an_index_built_a_few_latents_at_a_time_is_the_index() {
    // 300 positions, 40 latents, each firing on a seeded third of the positions.
    let mut rng = glassbox::lens::rng::Rng::new(9);
    let mut acts: Vec<Vec<(u32, f32)>> = vec![Vec::new(); 300];
    for row in &mut acts {
        for j in 0..40u32 {
            if rng.range(0, 2) == 0 {
                row.push((j, 0.1 + rng.range(0, 100) as f32 / 10.0));
            }
        }
    }
    let s = IndexSettings { top: 5, before: 6, after: 2, bins: 10 };
    let whole = build_index(&acts, 40, s);
    let mut build = IndexBuild::new(&acts, 40, s);
    let mut steps = 0;
    while !build.step(&acts, 7) {
        steps += 1;
        assert!(build.progress() < 1.0);
    }
    assert_eq!((steps, build.progress()), (5, 1.0), "40 latents, 7 a step");
    assert_eq!(build.finish(), whole);
}

#[test]
fn recording_in_shorter_windows_after_a_first_token_keeps_every_text_position() {
    // The shipped model read in windows of 32 characters, each after a first token (id 0 standing in for a
    // model's <|endoftext|>): one row per character, and the first window's rows are what the model computes
    // for [0, text...] past its first position.
    let (model, vocab, sae, _, held) = shipped();
    let ids = vocab.encode(&held.chars().take(200).collect::<String>()).unwrap();
    let d = model.cfg.d_model();
    let read = |window: usize, bos: Option<u32>| {
        let mut rec = ActivationRecording::windowed(sae.hook, &ids, window, bos).unwrap();
        while !rec.step(&model).unwrap() {}
        rec.finish()
    };
    // Without a first token and in the model's own windows, `windowed` is `new`.
    let mut plain = ActivationRecording::new(&model, sae.hook, &ids).unwrap();
    while !plain.step(&model).unwrap() {}
    assert_eq!(read(model.cfg.n_positions, None), plain.finish());
    let x = read(32, Some(0));
    assert_eq!(x.len(), ids.len() * d);
    let first: Vec<u32> = std::iter::once(0).chain(ids[..32].iter().copied()).collect();
    let (_, cache) = model.run_with_cache(&first).unwrap();
    let want: Vec<f32> = cache.get(sae.hook).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(x[..32 * d], want[d..]);
}

#[test]
fn one_latents_logit_effects_are_its_row_of_all_of_them() {
    let (model, _, sae, _, _) = shipped();
    let all = logit_effects(&model, &sae).unwrap();
    let vocab = model.cfg.vocab_size;
    for j in [0, 7, sae.d_sae - 1] {
        let row = logit_effect_row(&model, &sae, j).unwrap();
        assert_eq!(row.len(), vocab);
        for (a, b) in row.iter().zip(&all[j * vocab..(j + 1) * vocab]) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "latent {j}: {a} vs {b}");
        }
    }
    assert!(logit_effect_row(&model, &sae, sae.d_sae).is_err());
}
