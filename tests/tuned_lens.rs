//! The tuned lens (`lens::methods::tuned_lens`) on the shipped Moby-Dick model (`public/models/moby/`), trained on
//! its held-out text (`held_out.txt`, which the model never trained on; every fifth window is held out again
//! for the read-out).
//!
//! Must hold: zero translators are the logit lens exactly (grid and scores); at the last layer both lenses are
//! the model; the trained lens's held-out KL at layers 0 and 1 is at most 1/2 and 1/1.75 of the logit lens's, with
//! a clearly higher top-1 agreement with the model's prediction; a seed gives the same lens, stepped or in one go. `--nocapture` prints the per-layer table and the timings.
use std::sync::OnceLock;
use std::time::Instant;

use glassbox::lens::gpt2::text::{CharVocab, HELD_OUT_FILE};
use glassbox::lens::methods::logit_lens::{logit_lens, LensRun};
use glassbox::lens::methods::tuned_lens::{
    compare_lenses, record_tuned_lens_data, train_tuned_lens, TunedLens, TunedLensData, TunedLensRecording,
    TunedLensSettings, TunedLensTraining,
};
use glassbox::lens::Transformer;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/moby");

fn shipped() -> &'static (Transformer, CharVocab, String) {
    static MODEL: OnceLock<(Transformer, CharVocab, String)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let read =
            |f: &str| std::fs::read(format!("{DIR}/{f}")).unwrap_or_else(|e| panic!("{DIR}/{f} is shipped: {e}"));
        let cfg = String::from_utf8(read("config.json")).unwrap();
        let model = Transformer::from_bytes(&cfg, &read("model.safetensors")).expect("the shipped model loads");
        let vocab = CharVocab::from_json(&String::from_utf8(read("vocab.json")).unwrap()).unwrap();
        let text = vocab.replace_unknown(&String::from_utf8(read(HELD_OUT_FILE)).unwrap(), Some(' '));
        (model, vocab, text)
    })
}

/// The default recording, made once and shared by the tests.
fn data() -> &'static TunedLensData {
    static DATA: OnceLock<TunedLensData> = OnceLock::new();
    DATA.get_or_init(|| {
        let (model, vocab, text) = shipped();
        let start = Instant::now();
        let data = record_tuned_lens_data(model, vocab, text, &TunedLensSettings::default()).unwrap();
        eprintln!("recorded {:?} (training, held-out) positions in {:.2?}", data.sizes(), start.elapsed());
        data
    })
}

fn values(t: &candle_core::Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn zero_translators_are_the_logit_lens_exactly() {
    let (model, vocab, text) = shipped();
    let tokens = vocab.encode(&text.chars().take(100).collect::<String>()).unwrap();
    let identity = TunedLens::identity(model).unwrap();
    assert_eq!(identity.grid(model, &tokens, 5).unwrap(), logit_lens(model, &tokens, 5).unwrap());
    for c in compare_lenses(model, data(), &identity).unwrap() {
        assert_eq!(c.logit, c.tuned, "layer {}", c.layer);
    }
    // An untrained `TunedLensTraining` is the identity too.
    let training = TunedLensTraining::new(model, data(), &TunedLensSettings::default()).unwrap();
    assert!(values(&training.lens().unwrap().a).iter().all(|&v| v == 0.0));
}

#[test]
fn tuned_lens_beats_the_logit_lens_at_early_layers_and_both_are_the_model_at_the_last() {
    let (model, vocab, text) = shipped();
    let data = data();
    let settings = TunedLensSettings::default();
    let mut training = TunedLensTraining::new(model, data, &settings).unwrap();
    let (start, mut longest) = (Instant::now(), 0.0f64);
    loop {
        let t = Instant::now();
        let done = training.step().unwrap();
        longest = longest.max(t.elapsed().as_secs_f64());
        if done {
            break;
        }
    }
    let took = start.elapsed().as_secs_f64();
    eprintln!(
        "trained {} steps of {} positions in {took:.2} s ({:.2} ms a step on average, longest {:.2} ms)",
        settings.steps,
        settings.batch,
        took * 1e3 / settings.steps as f64,
        longest * 1e3
    );
    let tuned = training.finish().unwrap();
    let table = compare_lenses(model, data, &tuned).unwrap();
    eprintln!("layer  KL logit  KL tuned  top-1 logit  top-1 tuned  (held-out positions, nats)");
    for c in &table {
        eprintln!(
            "{:>5}  {:>8.3}  {:>8.3}  {:>11.3}  {:>11.3}",
            c.layer, c.logit.kl, c.tuned.kl, c.logit.top1, c.tuned.top1
        );
    }
    // Measured (held-out, 640 positions): layer 0 2.08 → 0.96 nats, top-1 0.09 → 0.45; layer 1 0.55 → 0.29,
    // top-1 0.54 → 0.73. The floor at layer 0 is what an affine map of the embedding can know: the current
    // character and its position, a bigram model, against a final distribution that uses the whole context. More
    // steps, other learning rates or weight decay do not move it; twice the positions takes layer 1 to 0.26.
    for (c, factor, gain) in [(&table[0], 2.0, 0.3), (&table[1], 1.75, 0.15)] {
        assert!(
            c.tuned.kl * factor <= c.logit.kl,
            "layer {}: tuned KL {} is not 1/{factor} of the logit lens's {}",
            c.layer,
            c.tuned.kl,
            c.logit.kl
        );
        assert!(c.tuned.top1 >= c.logit.top1 + gain, "layer {}: top-1 agreement rose too little", c.layer);
    }
    let last = table.last().unwrap();
    for s in [last.logit, last.tuned] {
        assert!(s.kl.abs() < 1e-4 && s.top1 == 1.0, "the last layer is the model itself: {s:?}");
    }
    // The grid's last layer is the model's own prediction at every position.
    let tokens = vocab.encode(&text.chars().skip(500).take(128).collect::<String>()).unwrap();
    let grid = tuned.grid(model, &tokens, 3).unwrap();
    let logits = model.logits(&tokens).unwrap().squeeze(0).unwrap();
    let argmax: Vec<u32> = logits.argmax(candle_core::D::Minus1).unwrap().to_vec1().unwrap();
    let last: Vec<u32> = grid.cells[model.cfg.n_layer].iter().map(|c| c.top[0].0).collect();
    assert_eq!(last, argmax);
}

#[test]
fn a_seed_gives_the_same_lens_stepped_or_in_one_go() {
    let (model, vocab, text) = shipped();
    let settings = TunedLensSettings { steps: 40, ..TunedLensSettings::default() };
    let one_go = train_tuned_lens(model, data(), &settings).unwrap();
    let mut stepped = TunedLensTraining::new(model, data(), &settings).unwrap();
    let mut progress = vec![stepped.progress()];
    while !stepped.step().unwrap() {
        // What a UI reads between steps must not disturb the training.
        progress.push(stepped.progress());
        assert_eq!(stepped.last_kl().len(), model.cfg.n_layer);
        let _ = stepped.lens().unwrap();
    }
    assert!(progress.windows(2).all(|w| w[0] < w[1]) && stepped.progress() == 1.0);
    let stepped = stepped.finish().unwrap();
    assert_eq!(values(&one_go.a), values(&stepped.a));
    assert_eq!(values(&one_go.b), values(&stepped.b));
    let other = train_tuned_lens(model, data(), &TunedLensSettings { seed: 2, ..settings.clone() }).unwrap();
    assert_ne!(values(&one_go.a), values(&other.a), "another seed draws other minibatches");

    // The recording in steps: a handful of windows, a half block per step, equals itself in one go; and the
    // tuned grid from a stepped `LensRun` equals the one-go grid.
    let small = TunedLensSettings { positions: 640, ..settings };
    let mut rec = TunedLensRecording::new(model, vocab, text, &small).unwrap();
    let mut steps = 0;
    while !rec.step(model).unwrap() {
        steps += 1;
    }
    // (The lens reads the residual stream after each block, so the model's own unembedding is never run.)
    assert_eq!(steps + 1, 5 * (2 * model.cfg.n_layer), "5 windows of a half block per step");
    let a = rec.finish(model).unwrap();
    let b = record_tuned_lens_data(model, vocab, text, &small).unwrap();
    assert_eq!(a.sizes(), (512, 128));
    let (ca, cb) = (compare_lenses(model, &a, &one_go).unwrap(), compare_lenses(model, &b, &one_go).unwrap());
    assert_eq!(ca, cb);
    let tokens = vocab.encode(&text.chars().take(64).collect::<String>()).unwrap();
    let mut run = LensRun::new(model, &tokens, 4).unwrap();
    while !run.step(model).unwrap() {}
    assert_eq!(one_go.finish_run(model, run).unwrap(), one_go.grid(model, &tokens, 4).unwrap());
}
