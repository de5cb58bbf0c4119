//! The superposition lab's engine (`glassbox::lens::toy` and `glassbox::lens::methods::superposition`):
//! every metric on hand-made matrices, the hand-written gradients against candle's autograd, divergence,
//! determinism, rejected settings, and the results the chapter relies on (the pentagon, two features when
//! dense, the SAE recovering the features, the phase diagram's three regions).
use candle_core::{DType, Device, Tensor, Var};
use glassbox::lens::methods::superposition::metrics::*;
use glassbox::lens::methods::superposition::phase::{phase_cell, phase_diagram, SUPERPOSED_INTERFERENCE};
use glassbox::lens::methods::superposition::sae::*;
use glassbox::lens::methods::superposition::*;
use glassbox::lens::rng::Rng;
use glassbox::lens::toy::data::{FeatureSampler, SparseBatch};
use glassbox::lens::toy::model::{loss_and_grad, LossLog, LOSS_POINTS};
use glassbox::lens::toy::*;

fn close(a: f32, b: f32, tol: f32) -> bool {
    (a - b).abs() <= tol
}

fn assert_all_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(close(*g, *w, tol), "entry {i}: got {g}, want {w} (all: {got:?})");
    }
}

fn err<T: std::fmt::Debug>(r: glassbox::lens::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

// ---- metrics on hand-made matrices ---------------------------------------------------------------------

/// n = 3 features in m = 2 dimensions, column-major: W_0 = (1, 0), W_1 = (0, 2), W_2 = (-0.3, 0.4).
const W3: [f32; 6] = [1.0, 0.0, 0.0, 2.0, -0.3, 0.4];

#[test]
fn norms_gram_and_represented_count() {
    assert_all_close(&feature_norms(&W3, 2), &[1.0, 2.0, 0.5], 1e-6);
    // W_i · W_j: W_0·W_1 = 0, W_0·W_2 = -0.3, W_1·W_2 = 0.8, W_2·W_2 = 0.25.
    assert_all_close(&gram(&W3, 2), &[1.0, 0.0, -0.3, 0.0, 4.0, 0.8, -0.3, 0.8, 0.25], 1e-6);
    // 0.5 is not above the threshold.
    assert_eq!(represented_count(&feature_norms(&W3, 2)), 2);
}

#[test]
fn interference_and_dimensionality() {
    // Feature 0: Ŵ_0 = (1, 0); (Ŵ_0·W_1)² + (Ŵ_0·W_2)² = 0 + 0.09.
    // Feature 1: Ŵ_1 = (0, 1); 0 + 0.4² = 0.16.
    // Feature 2: Ŵ_2 = (-0.6, 0.8); (-0.6)² + 1.6² = 0.36 + 2.56 = 2.92.
    assert_all_close(&interference(&W3, 2), &[0.09, 0.16, 2.92], 1e-5);
    // D_i = ||W_i||² / (||W_i||² + interference_i).
    assert_all_close(&feature_dimensionality(&W3, 2), &[1.0 / 1.09, 4.0 / 4.16, 0.25 / 3.17], 1e-5);
    // An antipodal pair shares one dimension: each has interference 1 and dimensionality 1/2.
    let pair = [1.0, -1.0];
    assert_all_close(&interference(&pair, 1), &[1.0, 1.0], 1e-6);
    assert_all_close(&feature_dimensionality(&pair, 1), &[0.5, 0.5], 1e-6);
    // A zero column has no direction: interference 0, and it does not disturb the others' count.
    assert_all_close(&interference(&[1.0, 0.0, 0.0, 0.0], 2), &[0.0, 0.0], 0.0);
}

#[test]
fn angles_and_gaps_in_two_dimensions() {
    // Columns at 0°, 90°, 180° (norm 0.2, not represented) and 225°.
    let s = std::f32::consts::FRAC_1_SQRT_2;
    let w = [1.0, 0.0, 0.0, 1.0, -0.2, 0.0, -s, -s];
    assert_all_close(&angles_2d(&w), &[0.0, 90.0, 180.0, 225.0], 1e-4);
    let gaps = angular_gaps(&w);
    let got: Vec<(usize, usize)> = gaps.iter().map(|g| (g.from, g.to)).collect();
    assert_eq!(got, [(0, 1), (1, 3), (3, 0)]);
    assert_all_close(&gaps.iter().map(|g| g.degrees).collect::<Vec<_>>(), &[90.0, 135.0, 135.0], 1e-4);
    // A regular pentagon, listed out of order, has five 72° gaps.
    let order = [3, 0, 4, 1, 2];
    let pent: Vec<f32> = order
        .iter()
        .flat_map(|&k| {
            let a = (k as f32 * 72.0 + 10.0).to_radians();
            [a.cos(), a.sin()]
        })
        .collect();
    for g in angular_gaps(&pent) {
        assert!(close(g.degrees, 72.0, 1e-3), "{g:?}");
    }
    // One represented feature has no neighbour.
    assert!(angular_gaps(&[1.0, 0.0, 0.1, 0.1]).is_empty());
}

#[test]
fn toy_metrics_from_a_snapshot() {
    let cfg = ToyConfig { n_features: 3, ..ToyConfig::default() };
    let mut model = ToyModel::new(cfg).unwrap();
    model.set_params(&W3, &[0.1, -0.2, 0.0]).unwrap();
    let m = ToyMetrics::of(&model.snapshot());
    assert_eq!(m.represented, 2);
    assert_all_close(&m.norms, &[1.0, 2.0, 0.5], 1e-6);
    assert_all_close(&m.b, &[0.1, -0.2, 0.0], 0.0);
    // ||W||_F² = 1 + 4 + 0.25.
    assert!(close(m.dims_per_feature.unwrap(), 2.0 / 5.25, 1e-6));
    assert_eq!(m.angles.as_ref().unwrap().len(), 3);
    assert_eq!(m.gaps.as_ref().unwrap().len(), 2);
    // With m = 5 there are no angles.
    let m5 = ToyMetrics::of(&ToyModel::new(ToyConfig::twenty_in_five()).unwrap().snapshot());
    assert!(m5.angles.is_none() && m5.gaps.is_none() && m5.gram.len() == 400);
}

#[test]
fn sae_metrics_on_hand_made_activations() {
    // Three inputs, three latents: latent 2 never fires.
    let f = [1.0, 0.0, 0.0, 0.5, 2.0, 0.0, 0.0, 0.0, 0.0];
    assert!(close(l0(&f, 3), 3.0 / 3.0, 1e-6));
    assert_all_close(&density(&f, 3), &[2.0 / 3.0, 1.0 / 3.0, 0.0], 1e-6);
    assert_eq!(dead_latents(&f, 3), [2]);
    // Cosines: a = {(1, 0), (1, 1)}, b = {(0, 3), (-2, 0), (0, 0)}.
    let cos = cosine_matrix(&[1.0, 0.0, 1.0, 1.0], &[0.0, 3.0, -2.0, 0.0, 0.0, 0.0], 2);
    let r = std::f32::consts::FRAC_1_SQRT_2;
    assert_all_close(&cos, &[0.0, -1.0, 0.0, r, -r, 0.0], 1e-6);
    // Best latent per true feature (a column): feature 0 → latent 1 (0.707 > 0); feature 1 → latent 1
    // (-0.707 > -1); feature 2, a zero vector, → latent 0 (ties keep the first).
    let best = best_matches(&cos, 2, 3);
    assert_eq!((best[0].0, best[1].0, best[2].0), (1, 1, 0));
    assert!(close(best[0].1, r, 1e-6) && close(best[1].1, -r, 1e-6) && best[2].1 == 0.0);
    // Reconstruction: h = {(1, 0), (3, 0)} (mean (2, 0), variance sum 2); ĥ = {(1, 1), (3, 0)}: squared error 1.
    let (mse, fvu) = reconstruction_error(&[1.0, 0.0, 3.0, 0.0], &[1.0, 1.0, 3.0, 0.0], 2);
    assert!(close(mse, 0.25, 1e-6) && close(fvu.unwrap(), 0.5, 1e-6));
    assert_eq!(reconstruction_error(&[1.0, 1.0], &[1.0, 1.0], 2).1, None);
}

#[test]
fn sae_metrics_of_a_perfect_dictionary() {
    // A toy model with W = identity-like columns (3 features in 2-D, one ignored) and an SAE whose decoder is
    // exactly the two represented directions: both counted features are recovered with cosine 1.
    let toy_cfg = ToyConfig { n_features: 3, ..ToyConfig::default() };
    let mut toy = ToyModel::new(toy_cfg).unwrap();
    toy.set_params(&[1.0, 0.0, 0.0, 1.0, 0.1, 0.0], &[0.0; 3]).unwrap();
    let mut sae = Sae::new(&toy.snapshot(), SaeConfig { d_sae: 3, ..SaeConfig::default() }).unwrap();
    // Latent 2 points away from everything and has a very negative bias: it never fires.
    sae.set_params(
        &[1.0, 0.0, 0.0, 1.0, -1.0, -1.0],
        &[0.0, 0.0, -100.0],
        &[1.0, 0.0, 0.0, 1.0, -1.0, 0.0],
        &[0.0, 0.0],
    )
    .unwrap();
    let m = sae.metrics();
    assert_eq!(m.counted, [true, true, false]);
    assert_eq!((m.recovered, m.recovery), (2, 1.0));
    assert_eq!(&m.best_latent[..2], &[0, 1]);
    assert_eq!(m.dead, [2]);
    // The SAE reads h = (x_0 + 0.1 x_2, x_1) and reconstructs it exactly where h ≥ 0, which is always.
    assert!(m.mse < 1e-12, "{}", m.mse);
    assert_eq!(m.cosine.len(), 9);
}

// ---- gradients against candle's autograd -------------------------------------------------------------

fn t64(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.iter().map(|&x| x as f64).collect::<Vec<f64>>(), shape, &Device::Cpu).unwrap()
}

fn to_f32(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_dtype(DType::F32).unwrap().to_vec1().unwrap()
}

/// Largest difference relative to the largest gradient entry.
fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs())).max(1e-12);
    got.iter().zip(want).fold(0.0f32, |a, (g, w)| a.max((g - w).abs())) / scale
}

#[test]
fn toy_gradient_matches_candle_autograd() {
    for (n, m, sparsity) in [(5, 2, 0.7), (20, 5, 0.9), (6, 3, 0.0)] {
        let mut rng = Rng::new(11);
        let batch = 64;
        let w: Vec<f32> = (0..n * m).map(|_| 0.5 * rng.normal()).collect();
        // Biases away from 0, so no ReLU sits exactly at its kink (where one-sided derivatives differ).
        let b: Vec<f32> =
            (0..n).map(|i| if i % 2 == 0 { 0.05 + 0.1 * rng.uniform() } else { -0.05 - 0.1 * rng.uniform() }).collect();
        let imp: Vec<f32> = (0..n).map(|i| 0.8f32.powi(i as i32)).collect();
        let mut x = vec![0.0; batch * n];
        FeatureSampler::new(sparsity).fill(&mut rng, n, &mut x);
        let (mut gw, mut gb) = (vec![0.0; n * m], vec![0.0; n]);
        let loss = loss_and_grad(n, m, &imp, &w, &b, &x, &mut gw, &mut gb);

        // The same loss in f64 with candle: W as an [n, m] matrix whose rows are the columns W_i.
        let wv = Var::from_tensor(&t64(&w, &[n, m])).unwrap();
        let bv = Var::from_tensor(&t64(&b, &[n])).unwrap();
        let xt = t64(&x, &[batch, n]);
        let h = xt.matmul(wv.as_tensor()).unwrap(); // [batch, m]
        let y = h.matmul(&wv.as_tensor().t().unwrap()).unwrap().broadcast_add(bv.as_tensor()).unwrap(); // [batch, n]
        let diff = (y.relu().unwrap() - &xt).unwrap();
        let l =
            (diff.sqr().unwrap().broadcast_mul(&t64(&imp, &[n])).unwrap().sum_all().unwrap() / batch as f64).unwrap();
        let grads = l.backward().unwrap();
        let want_loss = l.to_dtype(DType::F32).unwrap().to_scalar::<f32>().unwrap();
        assert!(close(loss, want_loss, 1e-5 * want_loss.abs().max(1.0)), "loss {loss} vs {want_loss}");
        let want_gw = to_f32(grads.get(wv.as_tensor()).unwrap());
        let want_gb = to_f32(grads.get(bv.as_tensor()).unwrap());
        assert!(rel_err(&gw, &want_gw) < 1e-5, "n={n} dW: {gw:?} vs {want_gw:?}");
        assert!(rel_err(&gb, &want_gb) < 1e-5, "n={n} db: {gb:?} vs {want_gb:?}");
    }
}

#[test]
fn toy_gradient_matches_central_differences() {
    // A second, independent check in plain f64 arithmetic on a tiny case.
    let (n, m, batch) = (3, 2, 4);
    let x = [0.3, 0.0, 0.9, 0.0, 0.0, 0.0, 0.5, 0.7, 0.0, 0.0, 0.2, 0.4];
    let w = [0.8, -0.2, 0.1, 0.9, -0.6, 0.5];
    let b = [0.1, -0.05, 0.07];
    let imp = [1.0, 0.7, 0.49];
    let loss64 = |w: &[f64], b: &[f64]| -> f64 {
        let mut total = 0.0;
        for s in 0..batch {
            let xs = &x[s * n..(s + 1) * n];
            let h: Vec<f64> = (0..m).map(|k| (0..n).map(|j| w[j * m + k] * xs[j] as f64).sum()).collect();
            for i in 0..n {
                let y = b[i] + (0..m).map(|k| w[i * m + k] * h[k]).sum::<f64>();
                total += imp[i] as f64 * (y.max(0.0) - xs[i] as f64).powi(2);
            }
        }
        total / batch as f64
    };
    let (mut gw, mut gb) = (vec![0.0; n * m], vec![0.0; n]);
    loss_and_grad(n, m, &imp, &w, &b, &x, &mut gw, &mut gb);
    let w64: Vec<f64> = w.iter().map(|&v| v as f64).collect();
    let b64: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    let eps = 1e-6;
    for p in 0..n * m + n {
        let (mut wp, mut wm, mut bp, mut bm) = (w64.clone(), w64.clone(), b64.clone(), b64.clone());
        if p < n * m {
            wp[p] += eps;
            wm[p] -= eps;
        } else {
            bp[p - n * m] += eps;
            bm[p - n * m] -= eps;
        }
        let fd = (loss64(&wp, &bp) - loss64(&wm, &bm)) / (2.0 * eps);
        let got = if p < n * m { gw[p] } else { gb[p - n * m] };
        assert!((got as f64 - fd).abs() < 1e-5, "parameter {p}: {got} vs {fd}");
    }
}

#[test]
fn sae_gradient_matches_candle_autograd() {
    let (m, d, batch, l1) = (3, 7, 48, 0.03f32);
    let mut rng = Rng::new(5);
    let h: Vec<f32> = (0..batch * m).map(|_| rng.normal()).collect();
    let len = 2 * d * m + d + m;
    let mut params: Vec<f32> = (0..len).map(|_| 0.5 * rng.normal()).collect();
    // Keep the encoder biases clear of the ReLU kink.
    for j in 0..d {
        params[d * m + j] = if j % 2 == 0 { 0.2 } else { -0.1 };
    }
    let mut grads = vec![0.0; len];
    let mut f = vec![0.0; d];
    let loss = sae_loss_and_grad(m, d, l1, &params, &h, &mut grads, &mut f);

    let we = Var::from_tensor(&t64(&params[..d * m], &[d, m])).unwrap();
    let be = Var::from_tensor(&t64(&params[d * m..d * m + d], &[d])).unwrap();
    let wd = Var::from_tensor(&t64(&params[d * m + d..2 * d * m + d], &[d, m])).unwrap(); // row j = latent j's direction
    let bd = Var::from_tensor(&t64(&params[2 * d * m + d..], &[m])).unwrap();
    let ht = t64(&h, &[batch, m]);
    let c = ht.broadcast_sub(bd.as_tensor()).unwrap();
    let pre = c.matmul(&we.as_tensor().t().unwrap()).unwrap().broadcast_add(be.as_tensor()).unwrap();
    let fa = pre.relu().unwrap();
    let hat = fa.matmul(wd.as_tensor()).unwrap().broadcast_add(bd.as_tensor()).unwrap();
    let rec = (hat - &ht).unwrap().sqr().unwrap().sum_all().unwrap();
    let l = ((rec + (fa.sum_all().unwrap() * l1 as f64).unwrap()).unwrap() / batch as f64).unwrap();
    let g = l.backward().unwrap();
    let want_loss = l.to_dtype(DType::F32).unwrap().to_scalar::<f32>().unwrap();
    assert!(close(loss, want_loss, 1e-5 * want_loss.abs().max(1.0)), "{loss} vs {want_loss}");
    let want: Vec<f32> = [&we, &be, &wd, &bd].iter().flat_map(|v| to_f32(g.get(v.as_tensor()).unwrap())).collect();
    assert!(rel_err(&grads, &want) < 1e-5, "{grads:?}\nvs\n{want:?}");
}

// ---- training: data, divergence, determinism, settings --------------------------------------------------

#[test]
fn sampler_has_the_requested_sparsity_and_both_forms_agree() {
    let sampler = FeatureSampler::new(0.8);
    let mut x = vec![0.0; 50_000];
    sampler.fill(&mut Rng::new(3), 10, &mut x);
    let nonzero: Vec<f32> = x.iter().copied().filter(|&v| v != 0.0).collect();
    let frac_zero = 1.0 - nonzero.len() as f32 / x.len() as f32;
    assert!(close(frac_zero, 0.8, 0.01), "{frac_zero}");
    assert!(nonzero.iter().all(|&v| (0.0..1.0).contains(&v)));
    let mean = nonzero.iter().sum::<f32>() / nonzero.len() as f32;
    assert!(close(mean, 0.5, 0.01), "{mean}");
    // The sparse form draws the same numbers.
    let mut sparse = SparseBatch::with_capacity(10, 5000);
    sampler.fill_sparse(&mut Rng::new(3), 5000, &mut sparse);
    let want = SparseBatch::from_dense(&x, 10);
    assert_eq!((sparse.index.clone(), sparse.value.clone(), sparse.end.clone()), (want.index, want.value, want.end));
    // Sparsity 0: every feature is on.
    let mut dense = vec![0.0; 1000];
    FeatureSampler::new(0.0).fill(&mut Rng::new(1), 10, &mut dense);
    assert!(dense.iter().filter(|&&v| v == 0.0).count() <= 1);
}

#[test]
fn nonsense_configurations_are_rejected_with_a_reason() {
    let base = ToyConfig::default();
    let cases: [(ToyConfig, &str); 9] = [
        (ToyConfig { n_features: 2, n_hidden: 2, ..base.clone() }, "m = 2 must be smaller than n = 2"),
        (ToyConfig { n_features: 3, n_hidden: 5, ..base.clone() }, "fewer hidden dimensions than features"),
        (ToyConfig { n_features: 0, n_hidden: 0, ..base.clone() }, "at least one feature (n = 0)"),
        (ToyConfig { n_hidden: 0, ..base.clone() }, "at least one hidden dimension (m = 0)"),
        (ToyConfig { sparsity: 1.0, ..base.clone() }, "must be in [0, 1)"),
        (ToyConfig { sparsity: -0.1, ..base.clone() }, "must be in [0, 1)"),
        (ToyConfig { sparsity: f32::NAN, ..base.clone() }, "must be in [0, 1)"),
        (ToyConfig { lr: 0.0, ..base.clone() }, "learning rate"),
        (ToyConfig { importance: Some(vec![1.0; 3]), ..base.clone() }, "3 importances given for 5 features"),
    ];
    for (cfg, want) in cases {
        let msg = err(ToyModel::new(cfg.clone()));
        assert!(msg.contains(want), "{cfg:?}: {msg}");
    }
    assert!(err(ToyModel::new(ToyConfig { batch_size: 0, ..base.clone() })).contains("batch size"));
    assert!(err(ToyModel::new(ToyConfig { importance_decay: -1.0, ..base })).contains("importance decay"));
    let toy = ToyModel::new(ToyConfig::default()).unwrap().snapshot();
    assert!(err(Sae::new(&toy, SaeConfig { d_sae: 0, ..SaeConfig::default() })).contains("latents"));
    assert!(err(Sae::new(&toy, SaeConfig { l1: -1.0, ..SaeConfig::default() })).contains("L1"));
    let mut spec = PhaseSpec::grid(2, 2);
    spec.densities[1] = 0.0;
    assert!(err(phase_diagram(&spec)).contains("density"));
    assert!(err(phase_cell(&PhaseSpec::grid(2, 2), 2, 0)).contains("no cell (2, 0)"));
}

#[test]
fn a_huge_learning_rate_stops_with_a_divergence_not_nans() {
    let mut model = ToyModel::new(ToyConfig { lr: 1e30, ..ToyConfig::default() }).unwrap();
    let e = err(model.step(50));
    assert!(e.contains("diverged") && e.contains("Lower the learning rate"), "{e}");
    let snap = model.snapshot();
    let Status::Diverged { step, .. } = &snap.status else { panic!("{:?}", snap.status) };
    assert!(*step >= 1 && snap.step == step - 1);
    // The parameters shown are the last finite ones, and the recorded losses are all numbers.
    assert!(snap.w.iter().chain(&snap.b).all(|v| v.is_finite()));
    assert!(snap.losses.values.iter().all(|v| v.is_finite()));
    assert!(snap.loss.is_none_or(|l| l.is_finite()));
    // It stays stopped until reset, and the snapshot survives JSON.
    assert!(model.step(1).is_err());
    let json = serde_json::to_string(&snap).unwrap();
    assert_eq!(serde_json::from_str::<ToySnapshot>(&json).unwrap(), snap);
    model.reset();
    assert_eq!((model.status(), model.steps_done()), (&Status::Ready, 0));

    // The same for the SAE.
    let toy = ToyModel::new(ToyConfig::default()).unwrap().snapshot();
    let mut sae = Sae::new(&toy, SaeConfig { lr: 1e30, l1: 1e30, ..SaeConfig::default() }).unwrap();
    assert!(err(sae.step(50)).contains("diverged"));
    assert!(matches!(sae.status(), Status::Diverged { .. }));
    assert!(sae.snapshot().w_enc.iter().all(|v| v.is_finite()));
    sae.reset();
    assert_eq!(sae.status(), &Status::Ready);
}

#[test]
fn training_is_determined_by_the_seed() {
    let run = |seed| {
        let mut m = ToyModel::new(ToyConfig { seed, ..ToyConfig::twenty_in_five() }).unwrap();
        m.step(200).unwrap();
        m.snapshot()
    };
    assert_eq!(run(4), run(4));
    assert_ne!(run(4).w, run(5).w);
    // Reset returns to the same start, and chunking does not change the result.
    let mut a = ToyModel::new(ToyConfig::default()).unwrap();
    a.step(70).unwrap();
    a.reset();
    for _ in 0..10 {
        a.step(10).unwrap();
    }
    let mut b = ToyModel::new(ToyConfig::default()).unwrap();
    b.step(100).unwrap();
    assert_eq!(a.snapshot(), b.snapshot());
    // The SAE too.
    let toy = b.snapshot();
    let sae = |seed| {
        let mut s = Sae::new(&toy, SaeConfig { seed, ..SaeConfig::default() }).unwrap();
        s.step(100).unwrap();
        s.snapshot()
    };
    assert_eq!(sae(1), sae(1));
    assert_ne!(sae(1).w_dec, sae(2).w_dec);
}

#[test]
fn the_loss_log_stays_short() {
    let mut log = LossLog::new();
    for i in 0..200_000 {
        log.push(i as f32);
    }
    assert!(log.values.len() < LOSS_POINTS && log.values.len() > LOSS_POINTS / 4, "{}", log.values.len());
    // Each entry is the mean of `every` consecutive steps: the first covers steps 0..every.
    assert!(close(log.values[0], (log.every - 1) as f32 / 2.0, 1e-3), "{} {}", log.values[0], log.every);
}

#[test]
fn sae_decoder_columns_stay_unit_length() {
    let toy = ToyModel::new(ToyConfig::default()).unwrap().snapshot();
    let mut sae = Sae::new(&toy, SaeConfig::default()).unwrap();
    sae.step(30).unwrap();
    for v in feature_norms(sae.w_dec(), 2) {
        assert!(close(v, 1.0, 1e-5), "{v}");
    }
}

// ---- what the chapter shows -----------------------------------------------------------------------------

/// Five equally important features, 90% sparse, in two dimensions: all five are kept, as a regular pentagon.
#[test]
fn five_sparse_features_form_a_pentagon() {
    let mut model = ToyModel::new(ToyConfig::default()).unwrap();
    model.step(5000).unwrap();
    let m = ToyMetrics::of(&model.snapshot());
    assert_eq!(m.represented, 5, "norms {:?}", m.norms);
    let gaps = m.gaps.unwrap();
    assert_eq!(gaps.len(), 5);
    for g in &gaps {
        assert!(close(g.degrees, 72.0, 10.0), "{gaps:?}");
    }
    // Every feature shares its direction with others.
    assert!(m.interference.iter().all(|&i| i > 0.5), "{:?}", m.interference);
}

/// The setting with the sparsity at 0: five equally important dense features in two dimensions. Only
/// two are represented (norm > 0.5), each close to a dimension of its own, at about right angles. Which two
/// is a coin toss (every pair is equally good), so the test asserts the count and the geometry, not names.
#[test]
fn dense_equal_features_keep_only_two() {
    let mut model = ToyModel::new(ToyConfig { sparsity: 0.0, ..ToyConfig::default() }).unwrap();
    model.step(5000).unwrap();
    let m = ToyMetrics::of(&model.snapshot());
    assert_eq!(m.represented, 2, "norms {:?}", m.norms);
    let kept: Vec<usize> = (0..5).filter(|&i| m.norms[i] > REPRESENTED_NORM).collect();
    assert!(kept.iter().all(|&i| m.norms[i] > 0.8), "{:?}", m.norms);
    // The kept two barely share their directions; the rest are small leftovers.
    assert!(kept.iter().all(|&i| m.interference[i] < 0.3), "{:?}", m.interference);
    let gaps = m.gaps.unwrap();
    assert!(close(gaps[0].degrees.min(gaps[1].degrees), 90.0, 15.0), "{gaps:?}");
}

/// Dense features: only two fit, one per dimension, at right angles. The importance decays (0.9^i) so that
/// which two is decided: with five exactly equally important dense features every pair of directions is
/// almost equally good, and training ends in blurred mixtures rather than a clean answer.
#[test]
fn dense_features_keep_only_the_two_most_important() {
    let mut model = ToyModel::new(ToyConfig { sparsity: 0.0, importance_decay: 0.9, ..ToyConfig::default() }).unwrap();
    model.step(5000).unwrap();
    let m = ToyMetrics::of(&model.snapshot());
    assert_eq!(m.represented, 2, "norms {:?}", m.norms);
    assert!(m.norms[0] > 0.9 && m.norms[1] > 0.9, "{:?}", m.norms);
    assert!(m.norms[2..].iter().all(|&v| v < 0.2), "{:?}", m.norms);
    let gaps = m.gaps.unwrap();
    assert!(close(gaps[0].degrees.min(gaps[1].degrees), 90.0, 10.0), "{gaps:?}");
    assert!(m.interference[0] < 0.05 && m.interference[1] < 0.05, "{:?}", m.interference);
}

/// The SAE at its default settings on the default toy model finds (almost) every true feature direction.
#[test]
fn the_default_sae_recovers_the_true_features() {
    let mut toy = ToyModel::new(ToyConfig::default()).unwrap();
    toy.step(5000).unwrap();
    let mut sae = Sae::new(&toy.snapshot(), SaeConfig::default()).unwrap();
    sae.step(3000).unwrap();
    let m = sae.metrics();
    assert_eq!(m.counted.iter().filter(|&&c| c).count(), 5);
    assert!(m.recovery >= 0.9, "recovery {} with best cosines {:?}", m.recovery, m.best_cosine);
    assert!(m.fvu.unwrap() < 0.05, "{:?}", m.fvu);
    assert!(m.l0 > 0.3 && m.l0 < 3.0, "{}", m.l0);
}

/// Four cells of the n = 2, m = 1 phase diagram, one from each region: dense and unimportant → ignored;
/// dense and important → dedicated; sparse → superposed (an antipodal pair), whatever the importance.
#[test]
fn phase_diagram_corners() {
    let spec = PhaseSpec { densities: vec![1.0, 0.03], importances: vec![0.2, 5.0], ..PhaseSpec::default() };
    let d = phase_diagram(&spec).unwrap();
    let phases: Vec<Phase> = d.cells.iter().map(|c| c.phase).collect();
    assert_eq!(phases, [Phase::Ignored, Phase::Dedicated, Phase::Superposed, Phase::Superposed], "{:#?}", d.cells);
    let sup = d.at(1, 1);
    assert!(sup.interference >= SUPERPOSED_INTERFERENCE && sup.w[0] * sup.w[1] < 0.0, "antipodal: {sup:?}");
    // A cell alone gives the same answer as in the grid.
    assert_eq!(phase_cell(&spec, 1, 0).unwrap(), d.cells[2]);
    assert_eq!(Phase::classify(0.2, 0.0), Phase::Ignored);
    assert_eq!(Phase::classify(1.0, 0.1), Phase::Dedicated);
    assert_eq!(Phase::classify(1.0, 0.9), Phase::Superposed);
}

// ---- the worker protocol ------------------------------------------------------------------------------

#[test]
fn a_worker_session_through_json() {
    let mut state = LabState::default();
    let mut send = |req: LabRequest| -> LabReply {
        // Both directions go through JSON, as they would through postMessage.
        let req: LabRequest = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        let reply = state.handle(req);
        serde_json::from_str(&serde_json::to_string(&reply).unwrap()).unwrap()
    };
    assert!(matches!(send(LabRequest::StepToy { steps: 1 }), LabReply::Error { .. }));
    let LabReply::Error { message } =
        send(LabRequest::NewToy { config: ToyConfig { n_hidden: 7, ..ToyConfig::default() } })
    else {
        panic!()
    };
    assert!(message.contains("smaller than n"));
    let LabReply::Toy { snapshot, .. } = send(LabRequest::NewToy { config: ToyConfig::default() }) else { panic!() };
    assert_eq!((snapshot.step, snapshot.loss), (0, None));
    let LabReply::Toy { snapshot, metrics } = send(LabRequest::StepToy { steps: 20 }) else { panic!() };
    assert_eq!(snapshot.step, 20);
    assert!(snapshot.loss.is_some() && metrics.norms.len() == 5);
    let LabReply::Sae { snapshot, metrics } = send(LabRequest::NewSae { config: SaeConfig::default(), toy: None })
    else {
        panic!()
    };
    assert_eq!((snapshot.step, snapshot.toy.step), (0, 20));
    assert_eq!(metrics.cosine.len(), 10 * 5);
    let LabReply::Sae { snapshot, .. } = send(LabRequest::StepSae { steps: 5 }) else { panic!() };
    assert_eq!(snapshot.step, 5);
    let LabReply::Sae { snapshot, .. } = send(LabRequest::ResetSae) else { panic!() };
    assert_eq!(snapshot.step, 0);
    let spec = PhaseSpec { steps: 50, restarts: 1, ..PhaseSpec::grid(3, 3) };
    let LabReply::PhaseCell { cell } = send(LabRequest::PhaseCell { spec, row: 2, col: 1 }) else { panic!() };
    assert_eq!((cell.row, cell.col), (2, 1));
    // A diverging toy model reports its status in the snapshot.
    send(LabRequest::NewToy { config: ToyConfig { lr: 1e30, ..ToyConfig::default() } });
    let LabReply::Toy { snapshot, .. } = send(LabRequest::StepToy { steps: 100 }) else { panic!() };
    assert!(matches!(snapshot.status, Status::Diverged { .. }));
    let LabReply::Toy { snapshot, .. } = send(LabRequest::ResetToy) else { panic!() };
    assert_eq!(snapshot.status, Status::Ready);
}
