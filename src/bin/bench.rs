//! Native benchmark: prints the figures the issues ask for (the browser figures come from `tests/e2e/bench.mjs`).
//!
//!     cargo run --release --bin bench
use std::time::Instant;

use candle_core::{Device, Tensor};
use glassbox::lens::gpt2::train::lm_loss;
use glassbox::lens::methods::induction::TaskSpec;
use glassbox::lens::rng::Rng;
use glassbox::lens::Transformer;

fn median_ms(mut f: impl FnMut(), runs: usize) -> (f64, f64) {
    f(); // warm up
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (t[runs / 2], t[runs * 9 / 10])
}

fn main() {
    // `bench toy` prints only the superposition lab's figures (they need no model files).
    if std::env::args().nth(1).as_deref() == Some("toy") {
        bench_toy();
        return;
    }
    let dir = std::env::args().nth(1).unwrap_or_else(|| "public/models/induction".into());
    let cfg = std::fs::read_to_string(format!("{dir}/config.json")).expect("config.json (train the model first)");
    let weights = std::fs::read(format!("{dir}/model.safetensors")).expect("model.safetensors");
    let model = Transformer::from_bytes(&cfg, &weights).expect("model loads");
    let spec = TaskSpec::new(model.cfg.vocab_size, model.cfg.n_positions);
    let mut rng = Rng::new(0);
    let tokens: Vec<u32> = spec.repeated_sequence(&mut rng, 31).into_iter().chain([7]).collect();
    assert_eq!(tokens.len(), 64);

    println!(
        "native benchmark ({} cores, RAYON_NUM_THREADS={})",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
    let (m, p90) = median_ms(|| drop(model.run_with_cache(&tokens).unwrap()), 300);
    println!("forward with full cache, 64 tokens: median {m:.3} ms, p90 {p90:.3} ms");
    let (m, p90) = median_ms(|| drop(model.logits(&tokens).unwrap()), 300);
    println!("forward without hooks, 64 tokens:   median {m:.3} ms, p90 {p90:.3} ms");

    bench_acdc(&model, &spec);

    // Training step cost, for planning training runs.
    let (mut train_model, vars) = Transformer::init(model.cfg.clone(), &mut rng).unwrap();
    train_model.autograd = true;
    let batch: Vec<u32> = (0..32).flat_map(|_| spec.training_sequence(&mut rng)).collect();
    let batch = Tensor::from_vec(batch, (32, spec.seq_len), &Device::Cpu).unwrap();
    let (m, _) = median_ms(|| drop(lm_loss(&train_model, &batch, None).unwrap()), 10);
    println!("training forward, batch 32x64:      median {m:.3} ms");
    if std::env::var("BENCH_DETAIL").is_ok() {
        train_model.autograd = false;
        let (m, _) = median_ms(|| drop(train_model.forward(&batch, &mut glassbox::lens::HookSet::none()).unwrap()), 10);
        println!("  forward only, fused softmax:      median {m:.3} ms");
        let (m, _) = median_ms(|| drop(lm_loss(&train_model, &batch, None).unwrap()), 10);
        println!("  + loss:                           median {m:.3} ms");
        train_model.autograd = true;
    }
    let (m, _) = median_ms(|| drop(lm_loss(&train_model, &batch, None).unwrap().backward().unwrap()), 10);
    println!("training forward+backward:          median {m:.3} ms");
    drop(vars);

    bench_ioi("public/models/ioi");
    bench_vision("public/models/mnist-cnn");
    bench_lm("public/models/moby");
    bench_toy();
}

/// ACDC on the induction model: one τ to the end (the browser's budget is 5 s, wasm runs ~2-3x slower), and its
/// longest step (one edge tried), which must fit in a main-thread slice.
fn bench_acdc(model: &Transformer, spec: &TaskSpec) {
    use glassbox::lens::methods::acdc::KlPositions;
    use glassbox::lens::methods::patching::PatchInput;
    let mut rng = Rng::new(1);
    let len = 31;
    let clean = spec.repeated_sequence(&mut rng, len);
    let corrupted = spec.repeated_sequence(&mut rng, len);
    let input = PatchInput::new(clean.clone(), corrupted, clean[1], clean[2]);
    let (m, p90, longest) = time_acdc(model, &input, KlPositions::From(len + 1), 20);
    println!("ACDC, 63 tokens, 81 edges, τ = 1e-2:  median {m:.1} ms, p90 {p90:.1} ms; longest step {longest:.2} ms");
}

/// The 9.3.1 and 9.4 labs' work on the IOI model: the chapter's sentence against other names (ABC), each
/// target's patching map (denoising), attribution patching of every target, and ACDC at the lab's τ.
fn bench_ioi(dir: &str) {
    use glassbox::lens::gpt2::vocab::Vocab;
    use glassbox::lens::methods::acdc::KlPositions;
    use glassbox::lens::methods::ioi::chapter_input;
    use glassbox::lens::methods::patching::{activation_patching, targets, AttributionPatching, Direction, Metric};
    let cfg = std::fs::read_to_string(format!("{dir}/config.json")).expect("the IOI model is shipped");
    let model = Transformer::from_bytes(&cfg, &std::fs::read(format!("{dir}/model.safetensors")).unwrap()).unwrap();
    let vocab = Vocab::from_json(&std::fs::read_to_string(format!("{dir}/vocab.json")).unwrap()).unwrap();
    let input = chapter_input(&vocab).unwrap();
    println!("ioi ({} layers x {} heads, {} tokens):", model.cfg.n_layer, model.cfg.n_head, input.len());
    let mut all = 0.0;
    let mut slowest = ("", 0.0);
    for t in targets(&model) {
        let (m, _) = median_ms(|| drop(activation_patching(&model, &input, t, Direction::Denoising).unwrap()), 10);
        all += m;
        if m > slowest.1 {
            slowest = (t.name(), m);
        }
    }
    println!("  patching, slowest target map:               median {:.1} ms ({})", slowest.1, slowest.0);
    println!("  patching, every target's map in a row:      {all:.0} ms");
    let (m, p90) = median_ms(
        || drop(AttributionPatching::new(&model, &input, Direction::Denoising, Metric::LogitDiff).unwrap()),
        10,
    );
    println!("  attribution patching, every target:         median {m:.1} ms, p90 {p90:.1} ms");
    let (m, p90, longest) = time_acdc(&model, &input, KlPositions::Last, 10);
    println!(
        "  ACDC, 193 edges, τ = 1e-2:                  median {m:.1} ms, p90 {p90:.1} ms; longest step {longest:.2} ms"
    );
}

/// ACDC at τ = 1e-2 to the end, `runs` times: the median and p90 of the whole run (ms), and its longest step
/// (one edge tried), which must fit in a main-thread slice.
fn time_acdc(
    model: &Transformer,
    input: &glassbox::lens::methods::patching::PatchInput,
    positions: glassbox::lens::methods::acdc::KlPositions,
    runs: usize,
) -> (f64, f64, f64) {
    use glassbox::lens::methods::acdc::{AcdcEvent, AcdcRun};
    let mut longest = 0.0f64;
    let (m, p90) = median_ms(
        || {
            let mut run = AcdcRun::with_positions(model, input, 1e-2, positions).unwrap();
            loop {
                let s = Instant::now();
                let done = run.step().unwrap() == AcdcEvent::Finished;
                longest = longest.max(s.elapsed().as_secs_f64() * 1e3);
                if done {
                    break;
                }
            }
            drop(run.finish().unwrap());
        },
        runs,
    );
    (m, p90, longest)
}

/// Best rate over `runs` timed chunks of `chunk` calls, after a warm-up chunk: the machine may be shared,
/// and the best chunk is the closest to the code's own speed.
fn best_rate(mut f: impl FnMut(usize), chunk: usize, runs: usize) -> (f64, f64) {
    f(chunk);
    let mut rates: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f(chunk);
            chunk as f64 / s.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (rates[runs - 1], rates[runs / 2])
}

/// The superposition lab (one thread): toy-model and SAE training steps per second, and the phase diagram.
fn bench_toy() {
    use glassbox::lens::methods::superposition::phase::{phase_cell, phase_diagram};
    use glassbox::lens::methods::superposition::{PhaseSpec, Sae, SaeConfig};
    use glassbox::lens::toy::{ToyConfig, ToyModel};
    println!("superposition lab (single thread):");
    for cfg in [ToyConfig::default(), ToyConfig::twenty_in_five()] {
        let label = format!("n={}, m={}, S={}, batch {}", cfg.n_features, cfg.n_hidden, cfg.sparsity, cfg.batch_size);
        let mut model = ToyModel::new(cfg).unwrap();
        let (best, median) = best_rate(
            |k| {
                model.step(k).unwrap();
            },
            500,
            10,
        );
        println!("  toy model {label}: best {best:.0} steps/s, median {median:.0}");
    }
    let mut dense = ToyModel::new(ToyConfig { sparsity: 0.0, ..ToyConfig::twenty_in_five() }).unwrap();
    let (best, median) = best_rate(
        |k| {
            dense.step(k).unwrap();
        },
        200,
        10,
    );
    println!("  toy model n=20, m=5, S=0 (dense, slowest): best {best:.0} steps/s, median {median:.0}");

    let mut toy = ToyModel::new(ToyConfig::default()).unwrap();
    toy.step(5000).unwrap();
    let mut sae = Sae::new(&toy.snapshot(), SaeConfig::default()).unwrap();
    let (best, median) = best_rate(
        |k| {
            sae.step(k).unwrap();
        },
        500,
        10,
    );
    println!("  SAE d_sae=10 on m=2, batch 1024: best {best:.0} steps/s, median {median:.0}");
    let s = Instant::now();
    let metrics = sae.metrics();
    println!(
        "  SAE metrics ({} inputs): {:.2} ms",
        glassbox::lens::methods::superposition::sae::METRIC_SAMPLES,
        s.elapsed().as_secs_f64() * 1e3
    );
    drop(metrics);

    let spec = PhaseSpec::default();
    let s = Instant::now();
    phase_cell(&spec, 0, 0).unwrap();
    println!(
        "  phase-diagram cell ({} restarts x {} steps, batch {}): {:.1} ms",
        spec.restarts,
        spec.steps,
        spec.batch_size,
        s.elapsed().as_secs_f64() * 1e3
    );
    let s = Instant::now();
    let d = phase_diagram(&spec).unwrap();
    println!(
        "  phase diagram {}x{} ({} cells): {:.2} s",
        spec.densities.len(),
        spec.importances.len(),
        d.cells.len(),
        s.elapsed().as_secs_f64()
    );
}

/// The language-model lab's figures on the Moby-Dick model: generation, the logit-lens grid, probes.
fn bench_lm(dir: &str) {
    use glassbox::lens::gpt2::generate::{generate, SampleSettings};
    use glassbox::lens::gpt2::text::CharVocab;
    use glassbox::lens::methods::logit_lens::logit_lens;
    use glassbox::lens::methods::probe::{
        probe_layers, probe_recorded, record_probe_data, BuiltinConcept, Concept, ProbeSettings,
    };
    let cfg = std::fs::read_to_string(format!("{dir}/config.json")).expect("config.json (train -- moby first)");
    let weights = std::fs::read(format!("{dir}/model.safetensors")).expect("model.safetensors");
    let vocab = CharVocab::from_json(&std::fs::read_to_string(format!("{dir}/vocab.json")).expect("vocab.json"))
        .expect("vocab loads");
    let text = std::fs::read_to_string(format!("{dir}/held_out.txt")).expect("held_out.txt");
    let model = Transformer::from_bytes(&cfg, &weights).expect("model loads");
    println!("moby (character-level GPT, {} layers, d_model {}):", model.cfg.n_layer, model.cfg.n_embd);
    let prompt = vocab.encode("Call me Ishmael. ").unwrap();
    let settings = SampleSettings { temperature: 0.8, top_k: 0, seed: 1 };
    let (m, p90) = median_ms(|| drop(generate(&model, &prompt, 200, &settings, &[]).unwrap()), 10);
    println!("  generate 200 characters (KV cache):         median {m:.1} ms, p90 {p90:.1} ms");
    let tokens = vocab.encode(&text.chars().take(128).collect::<String>()).unwrap();
    let (m, p90) = median_ms(|| drop(logit_lens(&model, &tokens, 5).unwrap()), 50);
    println!("  logit-lens grid, 128 characters x 5 layers: median {m:.1} ms, p90 {p90:.1} ms");
    let concept = Concept::Builtin(BuiltinConcept::SpaceNext);
    let data = record_probe_data(&model, &vocab, &text, &ProbeSettings::default()).unwrap();
    let (m, p90) = median_ms(|| drop(record_probe_data(&model, &vocab, &text, &ProbeSettings::default()).unwrap()), 5);
    println!("  record activations, 5,000 positions:        median {m:.0} ms, p90 {p90:.0} ms");
    let (m, p90) = median_ms(
        || {
            drop(
                probe_recorded(&data, &concept, &ProbeSettings { shuffled_control: false, ..ProbeSettings::default() })
                    .unwrap(),
            )
        },
        5,
    );
    println!("  train 5 probes on recorded activations:     median {m:.0} ms, p90 {p90:.0} ms");
    let plain = ProbeSettings { shuffled_control: false, ..ProbeSettings::default() };
    let (m, p90) = median_ms(|| drop(probe_layers(&model, &vocab, &text, &concept, &plain).unwrap()), 5);
    println!("  probes, every layer, 5,000 positions:       median {m:.0} ms, p90 {p90:.0} ms");
    let with_control = ProbeSettings::default();
    let (m, p90) = median_ms(|| drop(probe_layers(&model, &vocab, &text, &concept, &with_control).unwrap()), 5);
    println!("  + shuffled-label control (the default):     median {m:.0} ms, p90 {p90:.0} ms");
    let both = ProbeSettings { random_model_control: true, ..ProbeSettings::default() };
    let (m, p90) = median_ms(|| drop(probe_layers(&model, &vocab, &text, &concept, &both).unwrap()), 3);
    println!("  + random-model control too:                 median {m:.0} ms, p90 {p90:.0} ms");
}

/// The vision lab's figures: one prediction, one feature-visualization step, a 50-step integrated-gradients map.
fn bench_vision(dir: &str) {
    use glassbox::lens::cnn::{Samples, VisionHook};
    use glassbox::lens::methods::attribution::{integrated_gradients, Target};
    use glassbox::lens::methods::featvis::{FeatureVis, FeatureVisSettings};
    let cfg = std::fs::read_to_string(format!("{dir}/config.json")).expect("config.json (train -- mnist first)");
    let weights = std::fs::read(format!("{dir}/model.safetensors")).expect("model.safetensors");
    let samples =
        Samples::from_bytes(&std::fs::read(format!("{dir}/samples.bin")).expect("samples.bin")).expect("samples load");
    let model = glassbox::lens::cnn::Cnn::from_bytes(&cfg, &weights).expect("model loads");
    let image = samples.image(0);
    println!("mnist-cnn:");
    let (m, p90) = median_ms(|| drop(model.predict(&image).unwrap()), 500);
    println!("  prediction (forward, softmax), 1 image:     median {m:.3} ms, p90 {p90:.3} ms");
    let (m, p90) = median_ms(|| drop(model.run_with_cache(&model.image(&image).unwrap()).unwrap()), 500);
    println!("  forward with full cache, 1 image:           median {m:.3} ms, p90 {p90:.3} ms");
    let mut fv = FeatureVis::new(
        &model,
        Target::Channel { hook: VisionHook::Conv(3), channel: 0 },
        FeatureVisSettings::default(),
    )
    .unwrap();
    let (m, p90) = median_ms(
        || {
            fv.step().unwrap();
        },
        300,
    );
    println!("  feature-vis step (fwd + bwd + measure):     median {m:.3} ms, p90 {p90:.3} ms");
    let class = samples.labels[0] as usize;
    let (m, p90) =
        median_ms(|| drop(integrated_gradients(&model, &image, Target::Class(class), None, 50).unwrap()), 50);
    println!("  integrated gradients, 50 steps (51 grads):  median {m:.3} ms, p90 {p90:.3} ms");
}
