//! The 9.5 "Critiques" lab's failures, produced on the shipped models.
//!
//! - Probes succeed on an untrained network: on a randomly initialised model of the Moby-Dick model's shape,
//!   recorded and probed through the same sliced API as the lab (`ProbeRecording`, `ProbeJob`), "inside a word"
//!   beats the majority baseline by at least 10 points (at every layer, in fact).
//! - Probes memorise (Hewitt and Liang 2019): the control task (a fixed random label per character type) is
//!   learned too, so selectivity (concept accuracy − control accuracy) is about zero, or negative.
//! - Saliency sanity check (Adebayo et al. 2018): after every layer of the MNIST CNN is re-drawn at random,
//!   gradient × input still ranks pixels much as on the trained model (the input's ink dominates it), while
//!   the plain gradient does not.
//! - Steering breaks the text: the default steering pair swept over its coefficient (`SteeringSweep`, stepped as
//!   the browser runs it) raises the share of capitals from under 1 % to over 90 %, while the unsteered model's
//!   loss on the steered text climbs from 1.3 to 4 nats per character; stepped equals one go, and the steps'
//!   native times are printed.
//!
//! `--nocapture` prints every figure.
use std::sync::OnceLock;
use std::time::Instant;

use glassbox::lens::cnn::mnist::Samples;
use glassbox::lens::cnn::model::Cnn;
use glassbox::lens::gpt2::text::{CharVocab, HELD_OUT_FILE};
use glassbox::lens::methods::attribution::{sanity_correlations, SaliencyMethod, SanityCorrelations, Target};
use glassbox::lens::methods::probe::{
    control_task_job, probe_control_task, probe_recorded, random_model, record_probe_data, selectivity, BuiltinConcept,
    Concept, ProbeData, ProbeJob, ProbeRecording, ProbeReport, ProbeSettings,
};
use glassbox::lens::methods::steering::{steering_sweep, SteeringSweep, SweepSettings, PAIRS};
use glassbox::lens::Transformer;

const MOBY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/moby");
const CNN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/mnist-cnn");

fn moby() -> &'static (Transformer, CharVocab, String) {
    static MODEL: OnceLock<(Transformer, CharVocab, String)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let read = |f: &str| std::fs::read(format!("{MOBY}/{f}")).unwrap_or_else(|e| panic!("{MOBY}/{f}: {e}"));
        let cfg = String::from_utf8(read("config.json")).unwrap();
        let model = Transformer::from_bytes(&cfg, &read("model.safetensors")).expect("the shipped model loads");
        let vocab = CharVocab::from_json(&String::from_utf8(read("vocab.json")).unwrap()).unwrap();
        let text = String::from_utf8(read(HELD_OUT_FILE)).unwrap();
        (model, vocab, text)
    })
}

/// The lab's settings (5,000 positions of the held-out text), without the shuffled-label control.
fn settings() -> ProbeSettings {
    ProbeSettings { shuffled_control: false, ..ProbeSettings::default() }
}

/// A random model of the shipped shape, recorded through the lab's sliced API: a window per step.
fn random_data() -> &'static ProbeData {
    static DATA: OnceLock<ProbeData> = OnceLock::new();
    DATA.get_or_init(|| {
        let (model, vocab, text) = moby();
        let random = random_model(&model.cfg, settings().seed).unwrap();
        let mut rec = ProbeRecording::new(&random, vocab, text, &settings()).unwrap();
        while !rec.step(&random, 1).unwrap() {}
        rec.finish()
    })
}

/// Every layer's probe, trained a slice at a time as the lab does (8 iterations' worth per step).
fn sliced(mut job: ProbeJob, data: &ProbeData) -> ProbeReport {
    while !job.step(data, 8).unwrap() {}
    job.report()
}

fn print(r: &ProbeReport) {
    let accs: Vec<String> = r.layers.iter().map(|l| format!("{:.3}", l.test_accuracy)).collect();
    eprintln!("  {:<34} baseline {:.3}, per layer [{}]", r.concept, r.baseline, accs.join(", "));
}

fn best_margin(r: &ProbeReport) -> f32 {
    r.best_layer().test_accuracy - r.baseline
}

#[test]
fn probes_find_concepts_in_a_randomly_initialised_model() {
    let data = random_data();
    let layers: Vec<usize> = (0..=moby().0.cfg.n_layer).collect();
    eprintln!("randomly initialised model of the Moby-Dick shape, {} positions:", data.positions());
    let mut margins = Vec::new();
    for c in BuiltinConcept::ALL {
        let r = sliced(ProbeJob::new(data, &Concept::Builtin(c), &settings(), &layers).unwrap(), data);
        print(&r);
        margins.push((c, best_margin(&r)));
    }
    // The card's concept: "inside a word" (the current character is a letter). Measured: baseline 0.791, the
    // probe 0.995 at the embedding and still 0.989 after four random blocks. Nothing was trained; the residual
    // stream of any network keeps the current character, and the concept is a function of it. (The concepts
    // about the next character gain less: vowel next +5 points, space next +2.)
    let (_, word) = margins.iter().find(|(c, _)| *c == BuiltinConcept::InsideWord).unwrap();
    assert!(*word >= 0.10, "inside a word beats the baseline by only {word:.3} on the random model");
    let r = probe_recorded(data, &Concept::Builtin(BuiltinConcept::InsideWord), &settings()).unwrap();
    assert!((best_margin(&r) - word).abs() < 1e-6, "sliced and one-go probes differ");
    let last = r.layers.last().unwrap();
    assert!(last.test_accuracy >= r.baseline + 0.10, "after every random block: {}", last.test_accuracy);
}

#[test]
fn the_control_task_is_learned_too_so_selectivity_is_low() {
    let (model, vocab, text) = moby();
    let layers: Vec<usize> = (0..=model.cfg.n_layer).collect();
    let trained = record_probe_data(model, vocab, text, &settings()).unwrap();
    for (name, data) in [("random model", random_data()), ("trained model", &trained)] {
        eprintln!("{name}:");
        for c in [BuiltinConcept::VowelNext, BuiltinConcept::SpaceNext, BuiltinConcept::InsideWord] {
            let concept = Concept::Builtin(c);
            let real = sliced(ProbeJob::new(data, &concept, &settings(), &layers).unwrap(), data);
            let control = sliced(control_task_job(data, &concept, &settings(), &layers).unwrap(), data);
            assert_eq!(control, probe_control_task(data, &concept, &settings()).unwrap());
            print(&real);
            print(&control);
            let sel: Vec<String> = selectivity(&real, &control).iter().map(|(_, s)| format!("{s:+.3}")).collect();
            eprintln!("  selectivity per layer [{}]", sel.join(", "));
        }
    }
    // On the random model the card's concept and its control are both learned (measured: "inside a word" 0.989
    // to 0.995, its control 0.997 to 0.999), so selectivity is about zero at every layer: the probe's success says
    // nothing the character's identity does not. For "vowel next" the control (0.977 to 0.995 against a baseline
    // of 0.706) is learned better than the concept itself (0.75), so selectivity is negative.
    let data = random_data();
    let word = Concept::Builtin(BuiltinConcept::InsideWord);
    let (real, control) =
        (probe_recorded(data, &word, &settings()).unwrap(), probe_control_task(data, &word, &settings()).unwrap());
    for ((l, sel), k) in selectivity(&real, &control).into_iter().zip(&control.layers) {
        assert!(k.test_accuracy >= 0.95, "layer {l}: control accuracy {}", k.test_accuracy);
        assert!(sel.abs() <= 0.03, "layer {l}: selectivity {sel:.3} on the random model");
    }
    let vowel = Concept::Builtin(BuiltinConcept::VowelNext);
    let (real, control) =
        (probe_recorded(data, &vowel, &settings()).unwrap(), probe_control_task(data, &vowel, &settings()).unwrap());
    assert!(
        control.layers[0].test_accuracy >= control.baseline + 0.25,
        "control {:?}",
        control.layers[0].test_accuracy
    );
    assert!(selectivity(&real, &control).iter().all(|(_, s)| *s < 0.0), "vowel next is selective on a random model");
}

// ---- saliency sanity check ------------------------------------------------------------------------------

fn cnn() -> (Cnn, Samples) {
    let read = |f: &str| std::fs::read(format!("{CNN}/{f}")).unwrap_or_else(|e| panic!("{CNN}/{f}: {e}"));
    let model = Cnn::from_bytes(&String::from_utf8(read("config.json")).unwrap(), &read("model.safetensors")).unwrap();
    (model, Samples::from_bytes(&read("samples.bin")).unwrap())
}

#[test]
fn gradient_x_input_survives_full_randomisation_while_the_gradient_does_not() {
    let (model, samples) = cnn();
    let images = 8;
    let mut means = Vec::new();
    for (name, method) in [("gradient", SaliencyMethod::Gradient), ("gradient x input", SaliencyMethod::GradientXInput)]
    {
        let mut per_level: Vec<(String, f32)> = Vec::new();
        for i in 0..images {
            let target = Target::Class(samples.labels[i] as usize);
            let levels = sanity_correlations(&model, &samples.image(i), target, method, 5).unwrap();
            if per_level.is_empty() {
                per_level = levels.iter().map(|(n, _)| (n.clone(), 0.0)).collect();
            }
            for ((_, sum), (_, r)) in per_level.iter_mut().zip(&levels) {
                *sum += r / images as f32;
            }
        }
        let row: Vec<String> = per_level.iter().map(|(n, r)| format!("{n} {r:.3}")).collect();
        eprintln!(
            "{name:>16}: mean rank correlation over {images} images, cumulative from the top: {}",
            row.join(", ")
        );
        means.push(per_level.last().unwrap().1);
    }
    let (gradient, gxi) = (means[0], means[1]);
    assert!(gxi >= 0.5, "gradient x input keeps a rank correlation of only {gxi:.3} with every layer random");
    assert!(gradient + 0.25 <= gxi, "the gradient ({gradient:.3}) is not clearly below gradient x input ({gxi:.3})");

    // Stepped (as the browser runs it) equals the one-go figure.
    let image = samples.image(0);
    let target = Target::Class(samples.labels[0] as usize);
    let mut s = SanityCorrelations::new(&model, &image, target, SaliencyMethod::GradientXInput, 5).unwrap();
    let mut progress = vec![s.progress()];
    while !s.step().unwrap() {
        progress.push(s.progress());
    }
    assert!(progress.windows(2).all(|w| w[0] <= w[1]) && s.progress() == 1.0, "{progress:?}");
    let one_go = sanity_correlations(&model, &image, target, SaliencyMethod::GradientXInput, 5).unwrap();
    assert_eq!(s.correlations(), one_go.as_slice());
    assert_eq!(s.original().map(<[f32]>::len), Some(image.len()));
}

// ---- steering that breaks the text ----------------------------------------------------------------------

/// The steering lab's default prompt.
const PROMPT: &str = "It was a clear steel-blue day. The firmaments of air and sea were hardly separable";

/// One stepped sweep: its points, each step's time in ms and the progress after each step.
fn timed_sweep(model: &Transformer, sweep: &mut SteeringSweep) -> (Vec<f64>, Vec<f32>) {
    let (mut times, mut progress) = (Vec::new(), vec![sweep.progress()]);
    loop {
        let t = Instant::now();
        let done = sweep.step(model).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        progress.push(sweep.progress());
        if done {
            return (times, progress);
        }
    }
}

#[test]
fn steering_harder_hits_the_target_more_often_and_breaks_the_text() {
    let (model, vocab, _) = moby();
    let pair = &PAIRS[0];
    let vector = pair.steering_vector(model, vocab).unwrap();
    let settings = SweepSettings::default();
    // Three runs, each step's time the fastest of the three: the machine is shared, and a step preempted by
    // another process says nothing of the step.
    let mut fastest: Vec<f64> = Vec::new();
    let mut points = Vec::new();
    for _ in 0..3 {
        let mut sweep = SteeringSweep::new(model, vocab, &vector, pair.measure, PROMPT, &settings).unwrap();
        let (times, progress) = timed_sweep(model, &mut sweep);
        assert!(progress.windows(2).all(|w| w[0] <= w[1]) && progress.last() == Some(&1.0), "{progress:?}");
        fastest = if fastest.is_empty() { times } else { fastest.iter().zip(&times).map(|(a, b)| a.min(*b)).collect() };
        points = sweep.finish().unwrap();
    }
    let longest = fastest.iter().cloned().fold(0.0, f64::max);
    let total: f64 = fastest.iter().sum();
    eprintln!(
        "{} at {} ({} characters per coefficient, temperature {}, seed {}): {} steps, longest {longest:.2} ms, total {total:.0} ms",
        pair.name,
        vector.hook,
        settings.n_chars,
        settings.sample.temperature,
        settings.sample.seed,
        fastest.len()
    );
    for p in &points {
        eprintln!(
            "  coef {:>4}: {} {:.3}, loss {:.2} nats/char  {:?}",
            p.coef, pair.measure_name, p.target_rate, p.loss, p.text
        );
    }
    // Measured: capitals 0.8 % → 3.3 % → 72 % → 94 % → 95 % → 97.5 % over coefficients 0, 0.3, 0.6, 1, 1.5, 2;
    // the unsteered model's loss on the text 1.31 → 1.75 → 2.93 → 2.88 → 3.22 → 4.03 nats per character. The pair's
    // own coefficient (0.3) still reads as English; from 0.6 the target is hit at the cost of the words.
    let (plain, last) = (&points[0], points.last().unwrap());
    assert_eq!(plain.coef, 0.0);
    assert!(points.windows(2).all(|w| w[0].target_rate <= w[1].target_rate), "the target rate falls somewhere");
    assert!(last.target_rate >= 0.9 && plain.target_rate < 0.05, "{} → {}", plain.target_rate, last.target_rate);
    assert!(points.iter().all(|p| p.loss <= last.loss), "the largest coefficient's text is not the most costly");
    for p in &points[1..] {
        let ratio = p.loss / plain.loss;
        if p.coef <= pair.coefficient {
            assert!(ratio < 1.5, "coef {}: loss {:.2}× the unsteered text's", p.coef, ratio);
        } else {
            assert!(ratio >= 2.0, "coef {}: loss only {:.2}× the unsteered text's", p.coef, ratio);
        }
    }
    assert!(last.loss >= 2.5 * plain.loss, "{} against {}", last.loss, plain.loss);
    assert!(total < 3000.0, "{total} ms natively");

    // Stepped equals one go; bad settings are errors a student can act on.
    assert_eq!(points, steering_sweep(model, vocab, &vector, pair.measure, PROMPT, &settings).unwrap());
    let bad = |s: SweepSettings| {
        SteeringSweep::new(model, vocab, &vector, pair.measure, PROMPT, &s).err().unwrap().to_string()
    };
    assert!(bad(SweepSettings { n_chars: 128, ..settings.clone() }).contains("between 1 and 127"));
    assert!(bad(SweepSettings { coefficients: vec![], ..settings.clone() }).contains("no coefficient"));
    assert!(bad(SweepSettings { coefficients: vec![f32::NAN], ..settings }).contains("must be a number"));
}
