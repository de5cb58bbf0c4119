//! Benchmark hooks for `tests/e2e/bench.mjs` (`window.wasmBindings.bench_*`), on the models a lab has loaded,
//! and the deliberate panic the end-to-end tests use to check the error overlay.
use wasm_bindgen::prelude::*;

use super::core::browser::now_ms;
use super::core::load::{loaded_char, loaded_model, loaded_vision};

/// The median of a benchmark's timings.
fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

/// How long `f` takes, in milliseconds.
fn time_ms(f: impl FnOnce()) -> f64 {
    let t0 = now_ms();
    f();
    now_ms() - t0
}

/// Benchmark hook for `tests/e2e/bench.mjs` (`window.wasmBindings.bench_language`): on the Moby-Dick model,
/// times generating 200 characters (KV cache, temperature 0.8) and the logit-lens grid on 128 characters.
#[wasm_bindgen]
pub fn bench_language(runs: usize) -> String {
    use crate::lens::gpt2::generate::{generate, SampleSettings};
    let Some(m) = loaded_char("moby") else {
        return r#"{"error":"the Moby-Dick model is not loaded yet: open #/9.2.2 first"}"#.into();
    };
    let runs = runs.max(3);
    let ctx = m.model.cfg.n_positions;
    let text: String = m.held_out.chars().filter(|&c| m.vocab.id(c).is_some()).take(ctx).collect();
    let tokens = m.vocab.encode(&text).expect("known characters");
    let prompt = &tokens[..32.min(tokens.len())];
    let gen: Vec<f64> = (0..runs)
        .map(|i| {
            time_ms(|| {
                let s = SampleSettings { temperature: 0.8, top_k: 0, seed: i as u64 + 1 };
                let _ = generate(&m.model, prompt, 200, &s, &[]).expect("generate");
            })
        })
        .collect();
    let lens: Vec<f64> = (0..runs)
        .map(|_| {
            time_ms(|| {
                let _ = crate::lens::methods::logit_lens::logit_lens(&m.model, &tokens, 5).expect("lens");
            })
        })
        .collect();
    format!(
        r#"{{"generate200_ms":{},"lens128_ms":{},"n_tokens":{},"runs":{runs}}}"#,
        median(gen),
        median(lens),
        tokens.len()
    )
}

/// Benchmark hook for `tests/e2e/bench.mjs` (exposed as `window.wasmBindings.bench_forward`): runs the
/// induction model's forward pass with a full activation cache on `n_tokens` tokens `runs` times.
#[wasm_bindgen]
pub fn bench_forward(n_tokens: usize, runs: usize) -> String {
    let Some(m) = loaded_model("induction") else {
        return r#"{"error":"the induction model is not loaded yet: open #/attention first"}"#.into();
    };
    let n = n_tokens.clamp(1, m.model.cfg.n_positions);
    let tokens: Vec<u32> =
        (0..n).map(|i| if i == 0 { 0 } else { 1 + (i as u32 * 7919) % (m.model.cfg.vocab_size as u32 - 1) }).collect();
    let _ = m.model.run_with_cache(&tokens);
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t0 = now_ms();
            let _ = m.model.run_with_cache(&tokens).expect("forward");
            now_ms() - t0
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = times[times.len() / 2];
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
    format!(r#"{{"median_ms":{median},"p90_ms":{p90},"runs":{},"n_tokens":{n}}}"#, times.len())
}

/// Panics on purpose, so that the end-to-end tests can check that a panic shows the error overlay
/// (with a reload button) instead of a white page.
#[wasm_bindgen]
pub fn glassbox_test_panic() {
    panic!("deliberate panic requested by the end-to-end test");
}

/// Benchmark hook for `tests/e2e/bench.mjs` (`window.wasmBindings.bench_vision`): on the first shipped test
/// image, times a prediction with every activation (what the lab does per drawing frame), one
/// feature-visualization step with the default regularisers, and a 50-step integrated-gradients map; and the
/// steps of what the lab runs as sliced jobs (each saliency method's batches, the sanity cascade's layers, the
/// dataset scan's batches), median and worst, which must stay well under a slice (`core::jobs::SLICE_MS`).
#[wasm_bindgen]
pub fn bench_vision(runs: usize) -> String {
    use crate::lens::cnn::VisionHook;
    use crate::lens::methods::attribution::{integrated_gradients, SaliencyMethod, SaliencyRun, SanityCascade, Target};
    use crate::lens::methods::featvis::{FeatureVis, FeatureVisSettings};
    use crate::lens::methods::units::ChannelScan;
    let Some(m) = loaded_vision("mnist-cnn") else {
        return r#"{"error":"the MNIST model is not loaded yet: open #/9.2.1 first"}"#.into();
    };
    let runs = runs.max(3);
    let image = m.samples.image(0);
    let predict: Vec<f64> = (0..runs)
        .map(|_| {
            time_ms(|| {
                let x = m.model.image(&image).expect("image");
                let _ = m.model.run_with_cache(&x).expect("forward");
            })
        })
        .collect();
    let target = Target::Channel { hook: VisionHook::Conv(m.model.cfg.n_conv()), channel: 0 };
    let mut fv = FeatureVis::new(&m.model, target, FeatureVisSettings::default()).expect("feature vis");
    let _ = fv.step();
    let fv_step: Vec<f64> = (0..runs)
        .map(|_| {
            time_ms(|| {
                let _ = fv.step();
            })
        })
        .collect();
    let ig: Vec<f64> = (0..(runs / 4).max(3))
        .map(|_| {
            time_ms(|| {
                let _ = integrated_gradients(&m.model, &image, Target::Class(0), None, 50);
            })
        })
        .collect();
    // The steps of each sliced job, as the lab sets them up (each job once: a median and the worst step).
    let mut saliency_steps = Vec::new();
    let methods = [
        SaliencyMethod::Gradient,
        SaliencyMethod::IntegratedGradients { steps: 50 },
        SaliencyMethod::SmoothGrad { sigma: 0.15, n: 25, seed: 7 },
        SaliencyMethod::Occlusion { patch: 4, stride: 2, fill: 0.0 },
    ];
    for method in methods {
        let mut run = SaliencyRun::new(&m.model, &image, Target::Class(0), method).expect("saliency");
        let mut done = false;
        while !done {
            saliency_steps.push(time_ms(|| done = run.step().expect("saliency step")));
        }
    }
    let mut cascade = SanityCascade::new(&m.model, 11);
    let (mut cascade_steps, mut done) = (Vec::new(), false);
    while !done {
        cascade_steps.push(time_ms(|| done = cascade.step().expect("cascade step")));
    }
    let mut scan_steps = Vec::new();
    for l in 1..=m.model.cfg.n_conv() {
        let mut scan = ChannelScan::new(VisionHook::Conv(l)).expect("scan");
        let mut done = false;
        while !done {
            scan_steps.push(time_ms(|| done = scan.step(&m.model, &m.samples).expect("scan step")));
        }
    }
    let worst = |t: &[f64]| t.iter().copied().fold(0.0, f64::max);
    let (saliency_max, cascade_max, scan_max) = (worst(&saliency_steps), worst(&cascade_steps), worst(&scan_steps));
    format!(
        concat!(
            r#"{{"predict_ms":{},"fv_step_ms":{},"ig50_ms":{},"saliency_step_ms":{},"saliency_step_max_ms":{},"#,
            r#""cascade_step_ms":{},"cascade_step_max_ms":{},"scan_step_ms":{},"scan_step_max_ms":{},"runs":{}}}"#
        ),
        median(predict),
        median(fv_step),
        median(ig),
        median(saliency_steps),
        saliency_max,
        median(cascade_steps),
        cascade_max,
        median(scan_steps),
        scan_max,
        runs
    )
}

/// Benchmark hook for `tests/e2e/bench.mjs` (`window.wasmBindings.bench_probe`): on the Moby-Dick model, times
/// recording the residual stream of every layer on the probing lab's 5,000 held-out positions, and training a
/// probe per layer with its shuffled-label control on them ("space next"), each in one go (the lab runs the
/// same work in slices between frames). Medians of `runs`.
#[wasm_bindgen]
pub fn bench_probe(runs: usize) -> String {
    use crate::lens::methods::probe::{probe_recorded, record_probe_data, BuiltinConcept, Concept};
    let Some(m) = loaded_char("moby") else {
        return r#"{"error":"the Moby-Dick model is not loaded yet: open #/9.2.3 first"}"#.into();
    };
    let settings = crate::app::core::probes::probe_settings();
    let concept = Concept::Builtin(BuiltinConcept::SpaceNext);
    let runs = runs.max(1);
    let (mut record, mut train, mut positions, mut layers, mut best) = (Vec::new(), Vec::new(), 0, 0, 0.0f32);
    for _ in 0..runs {
        let t0 = now_ms();
        let data = match record_probe_data(&m.model, &m.vocab, &m.held_out, &settings) {
            Ok(d) => d,
            Err(e) => return format!(r#"{{"error":{:?}}}"#, e.to_string()),
        };
        let t1 = now_ms();
        let report = match probe_recorded(&data, &concept, &settings) {
            Ok(r) => r,
            Err(e) => return format!(r#"{{"error":{:?}}}"#, e.to_string()),
        };
        let t2 = now_ms();
        record.push(t1 - t0);
        train.push(t2 - t1);
        positions = data.positions();
        layers = report.layers.len();
        best = report.best_layer().test_accuracy;
    }
    let (r, t) = (median(record), median(train));
    format!(
        r#"{{"record_ms":{r},"train_ms":{t},"total_ms":{},"positions":{positions},"layers":{layers},"best_accuracy":{best},"runs":{runs}}}"#,
        r + t
    )
}

/// Benchmark hook for `tests/e2e/bench.mjs` (`window.wasmBindings.bench_patching`): on the IOI model, the chapter's
/// sentence against the same sentence with other names (ABC), denoising with the normalised logit difference:
/// each target's whole map (medians of `runs`), all of them in a row, and attribution patching of every target.
#[wasm_bindgen]
pub fn bench_patching(runs: usize) -> String {
    use crate::lens::methods::patching::{activation_patching, targets, AttributionPatching, Direction, Metric};
    let Some(m) = loaded_model("ioi") else {
        return r#"{"error":"the IOI model is not loaded yet: open #/9.3.1 first"}"#.into();
    };
    let input = match crate::lens::methods::ioi::chapter_input(&m.vocab) {
        Ok(i) => i,
        Err(e) => return format!(r#"{{"error":{:?}}}"#, e.to_string()),
    };
    let runs = runs.max(1);
    let mut per_target = Vec::new();
    for t in targets(&m.model) {
        let times: Vec<f64> = (0..runs)
            .map(|_| {
                time_ms(|| {
                    activation_patching(&m.model, &input, t, Direction::Denoising).expect("patching");
                })
            })
            .collect();
        per_target.push(format!(r#""{}":{}"#, t.name(), median(times)));
    }
    let attribution: Vec<f64> = (0..runs)
        .map(|_| {
            time_ms(|| {
                AttributionPatching::new(&m.model, &input, Direction::Denoising, Metric::LogitDiff)
                    .expect("attribution");
            })
        })
        .collect();
    format!(
        r#"{{"targets_ms":{{{}}},"attribution_ms":{},"n_tokens":{},"runs":{runs}}}"#,
        per_target.join(","),
        median(attribution),
        input.len()
    )
}

/// Benchmark hook for `tests/e2e/bench.mjs` (`window.wasmBindings.bench_acdc`): ACDC as the 9.4 lab runs it, on
/// `model`: `induction` as the native bench runs it (31 random tokens repeated against another such sequence, KL
/// over the repeated half, τ = 1e-2), or `ioi` (the chapter's sentence against other names, KL at the last
/// position, τ = 1e-2): the whole run and its longest step (one edge tried), medians of `runs`.
#[wasm_bindgen]
pub fn bench_acdc(model: &str, runs: usize) -> String {
    use crate::lens::methods::acdc::{AcdcEvent, AcdcRun, KlPositions};
    use crate::lens::methods::induction::TaskSpec;
    use crate::lens::methods::patching::PatchInput;
    use crate::lens::rng::Rng;
    let Some(m) = loaded_model(model) else {
        return format!(r#"{{"error":"the {model} model is not loaded yet: open its lab first"}}"#);
    };
    let (input, positions) = if model == "ioi" {
        match crate::lens::methods::ioi::chapter_input(&m.vocab) {
            Ok(i) => (i, KlPositions::Last),
            Err(e) => return format!(r#"{{"error":{:?}}}"#, e.to_string()),
        }
    } else {
        let spec = TaskSpec::new(m.model.cfg.vocab_size, m.model.cfg.n_positions);
        let mut rng = Rng::new(1);
        let len = 31;
        let clean = spec.repeated_sequence(&mut rng, len);
        let corrupted = spec.repeated_sequence(&mut rng, len);
        (PatchInput::new(clean.clone(), corrupted, clean[1], clean[2]), KlPositions::From(len + 1))
    };
    let (mut whole, mut longest, mut kept) = (Vec::new(), 0.0f64, 0);
    for _ in 0..runs.max(1) {
        let t0 = now_ms();
        let mut run = match AcdcRun::with_positions(&m.model, &input, 1e-2, positions) {
            Ok(r) => r,
            Err(e) => return format!(r#"{{"error":{:?}}}"#, e.to_string()),
        };
        longest = longest.max(now_ms() - t0);
        loop {
            let s = now_ms();
            let done = run.step().expect("acdc step") == AcdcEvent::Finished;
            longest = longest.max(now_ms() - s);
            if done {
                break;
            }
        }
        kept = run.finish().expect("circuit").edges.len();
        whole.push(now_ms() - t0);
    }
    format!(r#"{{"acdc_ms":{},"longest_step_ms":{longest},"edges_kept":{kept},"runs":{}}}"#, median(whole), runs.max(1))
}
