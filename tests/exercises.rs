//! The chapter's predict-then-reveal exercises (`:::predict` blocks in `content/*.md`) checked against the shipped
//! models: every block is well formed, every link opens its lab without a problem, and each exercise's marked
//! answer is what the engine computes on the state its link opens. The numbers the reveals quote are printed
//! (`cargo test --test exercises -- --nocapture`).
use std::collections::{HashMap, HashSet};

use glassbox::app::core::models::{LabModel, TaskModel};
use glassbox::app::core::url::{parse_query, section_hash_with, UrlProblem, UrlState};
use glassbox::app::labs::acdc::{ioi_input, kl_positions, AcdcState};
use glassbox::app::labs::attention::{compute as attention, AttentionState};
use glassbox::app::labs::language::{compute_induction, compute_moby, LanguageState, Which};
use glassbox::app::labs::patching::{prepare, Corruption, PatchState, Typed, IOI_PROMPT};
use glassbox::app::labs::probe::ProbeState;
use glassbox::app::labs::sae::{SaeState, Tab, ToySae, SAE_BUDGET, SAE_TOY_STEPS};
use glassbox::app::labs::steer::{SteerState, DEFAULT_PROMPT, LENGTH, TEMPERATURE};
use glassbox::app::labs::superposition::{Settings, ToyState, TOY_BUDGET};
use glassbox::app::labs::vision::analysis::analyse;
use glassbox::app::labs::vision::features::FvControls;
use glassbox::app::labs::vision::saliency::{SaliencyKey, SaliencyWork};
use glassbox::app::labs::vision::{Method, VisionState};
use glassbox::lens::cnn::{Cnn, Samples, VisionHook};
use glassbox::lens::gpt2::generate::{generate, SampleSettings};
use glassbox::lens::gpt2::text::CharVocab;
use glassbox::lens::gpt2::vocab::Vocab;
use glassbox::lens::methods::acdc::{AcdcEvent, AcdcRun, Circuit, Node, Qkv};
use glassbox::lens::methods::featvis::FeatureVis;
use glassbox::lens::methods::induction::random_repeat_text;
use glassbox::lens::methods::ioi::CHAPTER_PROMPT;
use glassbox::lens::methods::logit_lens::{logit_lens, resid_hook};
use glassbox::lens::methods::patching::{Direction, Metric, PatchInput, PatchResult, PatchSweep, Target};
use glassbox::lens::methods::probe::{record_probe_data, BuiltinConcept, Concept, ProbeJob, ProbeSettings};
use glassbox::lens::methods::sae::FeatureIndex;
use glassbox::lens::methods::steering::{steering_from_contexts, PAIRS};
use glassbox::lens::methods::superposition::metrics::ToyMetrics;
use glassbox::lens::methods::superposition::phase::{phase_cell, Phase, PhaseSpec};
use glassbox::lens::methods::superposition::sae::{Sae, SaeConfig};
use glassbox::lens::methods::units::{channel_means, top_examples};
use glassbox::lens::toy::model::{ToyConfig, ToyModel};
use glassbox::lens::Transformer;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

// ---------------------------------------------------------------- the blocks

/// One `:::predict` block.
#[derive(Debug)]
struct Exercise {
    file: String,
    line: usize,
    id: String,
    question: String,
    choices: Vec<String>,
    correct: usize,
    reveal: String,
}

impl Exercise {
    /// The links into a lab in the reveal (`#/slug` or `#/slug?query`).
    fn links(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = self.reveal.as_str();
        while let Some(i) = rest.find("](#/") {
            let tail = &rest[i + 2..];
            let end = tail.find(')').expect("a link's target ends with `)`");
            out.push(tail[..end].to_string());
            rest = &tail[end..];
        }
        out
    }
}

/// Every `:::predict` block of the chapter, checked for the format's rules as it is read.
fn exercises() -> Vec<Exercise> {
    let mut files: Vec<_> = std::fs::read_dir(format!("{ROOT}/content"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut depth = 0usize;
        let mut open: Option<(usize, String, Vec<&str>)> = None;
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if let Some((_, _, body)) = open.as_mut() {
                if t == ":::" {
                    let (line, id, body) = open.take().unwrap();
                    out.push(parse_block(&name, line, id, &body));
                } else {
                    assert!(!t.starts_with(":::"), "{name}:{}: a block inside a :::predict block", i + 1);
                    body.push(line);
                }
                continue;
            }
            if let Some(rest) = t.strip_prefix(":::predict") {
                assert_eq!(depth, 0, "{name}:{}: a :::predict block must be top-level", i + 1);
                let id = rest.trim().to_string();
                assert!(
                    !id.is_empty() && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                    "{name}:{}: the id `{id}` is not [a-z0-9-]+",
                    i + 1
                );
                open = Some((i + 1, id, Vec::new()));
            } else if t == ":::" {
                depth -= 1;
            } else if t.starts_with(":::") {
                depth += 1;
            }
        }
        assert!(open.is_none(), "{name}: a :::predict block is never closed");
    }
    let mut seen = HashSet::new();
    for e in &out {
        assert!(seen.insert(e.id.clone()), "{}:{}: the id `{}` is used twice", e.file, e.line, e.id);
    }
    out
}

/// The question before the first ordered list, its items (one marked ` (*)`), the reveal after it.
fn parse_block(file: &str, line: usize, id: String, body: &[&str]) -> Exercise {
    let is_item = |l: &str| {
        let d = l.chars().take_while(char::is_ascii_digit).count();
        d > 0 && l[d..].starts_with(". ")
    };
    let first = body.iter().position(|l| is_item(l)).unwrap_or_else(|| panic!("{file}:{line}: `{id}` has no choices"));
    let mut last = first;
    while last + 1 < body.len() && is_item(body[last + 1]) {
        last += 1;
    }
    let items: Vec<&str> = body[first..=last].iter().map(|l| l.split_once(". ").unwrap().1).collect();
    assert!((2..=4).contains(&items.len()), "{file}:{line}: `{id}` has {} choices", items.len());
    let marked: Vec<usize> = (0..items.len()).filter(|&i| items[i].ends_with(" (*)")).collect();
    assert_eq!(marked.len(), 1, "{file}:{line}: `{id}` must mark exactly one choice with ` (*)`");
    let question = body[..first].join("\n").trim().to_string();
    let reveal = body[last + 1..].join("\n").trim().to_string();
    assert!(!question.is_empty() && !reveal.is_empty(), "{file}:{line}: `{id}` needs a question and a reveal");
    Exercise {
        file: file.into(),
        line,
        id,
        question,
        choices: items.iter().map(|s| s.trim_end_matches(" (*)").to_string()).collect(),
        correct: marked[0] + 1,
        reveal,
    }
}

/// What a lab makes of a link's query: the problems it reports.
fn problems(link: &str) -> Vec<UrlProblem> {
    let rest = link.strip_prefix("#/").expect("a lab link starts with #/");
    let (slug, query) = rest.split_once('?').unwrap_or((rest, ""));
    let q = parse_query(query);
    match slug {
        "9.2.1" => VisionState::from_query(&q).1,
        "attention" => AttentionState::from_query(&q).1,
        "9.2.2" => LanguageState::from_query(&q).1,
        "9.2.3" => ProbeState::from_query(&q).1,
        "9.2.4" => ToyState::from_query(&q).1,
        "9.2.5" => SaeState::from_query(&q).1,
        "9.3.1" => PatchState::from_query(&q).1,
        "9.3.2" => SteerState::from_query(&q).1,
        "9.4" => AcdcState::from_query(&q).1,
        other => panic!("{link}: no lab section `{other}`"),
    }
}

/// The exercise `id`, after checking that its marked answer is choice `correct` (counting from 1) and that its
/// reveal links to `slug` in exactly the state `state`.
fn exercise<S: UrlState>(id: &str, correct: usize, slug: &str, state: &S) -> Exercise {
    let e = exercises().into_iter().find(|e| e.id == id).unwrap_or_else(|| panic!("no exercise `{id}`"));
    assert_eq!(e.correct, correct, "{id}: the marked answer is choice {}, the engine says {correct}", e.correct);
    let link = section_hash_with(slug, &state.to_query());
    assert!(e.links().contains(&link), "{id}: the reveal should link to {link}; it links to {:?}", e.links());
    e
}

#[test]
fn every_predict_block_is_well_formed_and_its_links_open_cleanly() {
    let all = exercises();
    let mut per_file: HashMap<&str, usize> = HashMap::new();
    for e in &all {
        *per_file.entry(e.file.as_str()).or_default() += 1;
        assert!(!e.links().is_empty(), "{}: `{}` links into no lab", e.file, e.id);
        for link in e.links() {
            let p = problems(&link);
            assert!(p.is_empty(), "{}: `{}` links to {link}, which the lab reports: {p:?}", e.file, e.id);
        }
        assert!(e.choices.iter().all(|c| !c.is_empty() && !c.contains('\n')), "{}", e.id);
        assert!(e.question.len() > 20, "{}", e.id);
    }
    for f in ["9.2.1", "attention", "9.2.2", "9.2.3", "9.2.4", "9.2.5", "9.3.1", "9.3.2", "9.4"] {
        assert_eq!(per_file.get(format!("{f}.md").as_str()), Some(&2), "{f}.md should hold two exercises");
    }
}

// ---------------------------------------------------------------- the models

fn lm(name: &str) -> Transformer {
    let dir = format!("{ROOT}/public/models/{name}");
    let cfg = std::fs::read_to_string(format!("{dir}/config.json")).unwrap();
    Transformer::from_bytes(&cfg, &std::fs::read(format!("{dir}/model.safetensors")).unwrap()).unwrap()
}

fn words(name: &str) -> Vocab {
    Vocab::from_json(&std::fs::read_to_string(format!("{ROOT}/public/models/{name}/vocab.json")).unwrap()).unwrap()
}

fn moby() -> (Transformer, CharVocab, String) {
    let dir = format!("{ROOT}/public/models/moby");
    (
        lm("moby"),
        CharVocab::from_json(&std::fs::read_to_string(format!("{dir}/vocab.json")).unwrap()).unwrap(),
        std::fs::read_to_string(format!("{dir}/held_out.txt")).unwrap(),
    )
}

fn vision() -> (Cnn, Samples) {
    let dir = format!("{ROOT}/public/models/mnist-cnn");
    let model = Cnn::from_bytes(
        &std::fs::read_to_string(format!("{dir}/config.json")).unwrap(),
        &std::fs::read(format!("{dir}/model.safetensors")).unwrap(),
    )
    .unwrap();
    (model, Samples::from_bytes(&std::fs::read(format!("{dir}/samples.bin")).unwrap()).unwrap())
}

/// The induction model's random repeat that the attention and logit-lens exercises open on.
fn repeat_words() -> String {
    random_repeat_text(&words("induction"), 64, 1)
}

// ---------------------------------------------------------------- 9.2.1

#[test]
fn vision_noise_unregularised_feature_visualization_goes_higher() {
    let off = FvControls { class: None, jitter: false, l2: false, tv: false, blur: false };
    let state = VisionState { fv: off, ..VisionState::default() };
    exercise("vision-noise", 3, "9.2.1", &state);
    let (model, samples) = vision();
    let focus = state.focus;
    assert_eq!(focus, (3, 0));
    let means = channel_means(&model, &samples, VisionHook::Conv(focus.0)).unwrap();
    let best = top_examples(&means, focus.1, 1).unwrap()[0].1;
    let run = |fv: FvControls| FeatureVis::new(&model, fv.target(focus), fv.settings()).unwrap().run(200).unwrap();
    let (regularised, plain) = (run(FvControls::default()), run(off));
    eprintln!("conv3 channel 0: best test image {best:.2}, regularised {regularised:.2}, no regularisers {plain:.2}");
    assert!(plain > 1.1 * regularised && regularised > 2.0 * best);
}

#[test]
fn vision_sanity_gradient_times_input_survives_random_weights() {
    let state = VisionState { sample: Some(0), method: Method::GradientXInput, sanity: 4, ..VisionState::default() };
    exercise("vision-sanity", 3, "9.2.1", &state);
    let (model, samples) = vision();
    let image = samples.image(0);
    let class = analyse(&model, image.clone()).unwrap().predicted();
    assert_eq!(model.layer_names().len(), 4, "sanity level 4 randomises every layer");
    let correlation = |method| {
        let key = SaliencyKey { image: 0, method, sanity: 4 };
        let mut work = SaliencyWork::new(&model, &image, class, key, None).unwrap();
        while work.step().unwrap().is_some() {}
        work.finish().unwrap().correlation.unwrap()
    };
    let [g, gxi, sg, ig] =
        [Method::Gradient, Method::GradientXInput, Method::SmoothGrad, Method::IntegratedGradients].map(correlation);
    eprintln!(
        "sample 0 (a {class}), every layer random: gradient {g:.2}, gradient x input {gxi:.2}, SmoothGrad {sg:.2}, \
         integrated gradients {ig:.2}"
    );
    assert_eq!((samples.labels[0], class), (5, 5));
    assert!(gxi > 0.95 && ig > 0.95 && g < 0.6 && sg < 0.6);
}

// ---------------------------------------------------------------- the attention primer

#[test]
fn attention_loss_drops_from_the_second_repeated_word() {
    let seq = repeat_words();
    let state = AttentionState { seq: Some(seq.clone()), ..AttentionState::default() };
    exercise("attention-loss-drop", 2, "attention", &state);
    let r = attention(&lm("induction"), &words("induction"), &seq).unwrap();
    let n = r.half;
    assert!(r.exact_repeat && n == 10);
    // loss[i] is the loss of predicting token i + 1; tokens 1..=n are the first copy, n+1.. the second.
    let (first_word, second_word) = (r.loss[n], r.loss[n + 1]);
    let rest = r.loss[n + 2..].iter().fold(0f32, |m, &x| m.max(x));
    eprintln!("{seq}\nfirst half {:?}; second copy: first word {first_word:.2}, second {second_word:.2}, rest at most {rest:.2}; ln V = {:.2}", r.halves, (words("induction").len() as f32 - 1.0).ln());
    assert!((5.7..6.1).contains(&first_word) && (1.2..1.6).contains(&second_word) && rest < 0.25);
}

#[test]
fn attention_ioi_l1h3_reads_bottle() {
    let state =
        AttentionState { model: LabModel::Task(TaskModel::Ioi), seq: Some(CHAPTER_PROMPT.into()), head: Some((1, 3)) };
    exercise("attention-ioi-bottle", 3, "attention", &state);
    let r = attention(&lm("ioi"), &words("ioi"), CHAPTER_PROMPT).unwrap();
    let last = r.tokens.len() - 1;
    let bottle = r.words.iter().position(|w| w == "bottle").unwrap();
    assert_eq!(bottle, last - 1);
    let row = &r.patterns[1][3][last];
    eprintln!("L1H3 from the last 'to': {:.2} on 'bottle'", row[bottle]);
    assert!(row[bottle] > 0.9);
    // At 'bottle', the layer-0 heads that patching picks out read the names.
    let names: Vec<usize> = (0..r.words.len()).filter(|&i| r.words[i] == "john" || r.words[i] == "mary").collect();
    for h in [2, 3] {
        let on_names: f32 = names.iter().map(|&k| r.patterns[0][h][bottle][k]).sum();
        eprintln!("L0H{h} from 'bottle': {on_names:.2} on the names");
        assert!(on_names > 0.4);
    }
    // The heads that do look at the second John from the last position matter much less under patching.
    let (model, input) = patching_lab_ioi_input();
    let ld = sweep(&model, &input, Target::HeadOut, Direction::Denoising).grid(Metric::LogitDiff).unwrap().rows();
    for h in [0, 1] {
        assert!(r.patterns[2][h][last][10] > 0.9 && r.words[10] == "john");
        assert!(ld[2][h] < 0.3 && ld[1][3] > 0.7, "denoising L2H{h} {} against L1H3 {}", ld[2][h], ld[1][3]);
    }
    let top = ld.iter().flatten().fold(f32::MIN, |m, &v| m.max(v));
    assert_eq!(top, ld[1][3], "L1H3 matters most on this sentence");
}

// ---------------------------------------------------------------- 9.2.2

/// A passage of the held-out text, as the first logit-lens exercise opens it.
const LENS_TEXT: &str =
    "This whale is not dead; he is only dispirited; out of sorts, perhaps; hypochondriac; and so supine,";

/// Top-row hits after a space (the next word's first letter) and at a word's last letter (a space next).
fn first_letter_and_word_end(model: &Transformer, vocab: &CharVocab, text: &str) -> ([usize; 2], [usize; 2]) {
    let lens = logit_lens(model, &vocab.encode(text).unwrap(), 1).unwrap();
    let top = lens.n_layers() - 1;
    let cs: Vec<char> = text.chars().collect();
    let (mut first, mut end) = ([0; 2], [0; 2]);
    for p in 0..cs.len() - 1 {
        let hit = (lens.cells[top][p].target_rank == Some(0)) as usize;
        if cs[p] == ' ' && cs[p + 1].is_alphabetic() {
            first[0] += hit;
            first[1] += 1;
        } else if cs[p].is_alphabetic() && cs[p + 1] == ' ' {
            end[0] += hit;
            end[1] += 1;
        }
    }
    (first, end)
}

#[test]
fn lens_the_space_after_a_word_is_easier_than_the_next_first_letter() {
    let state = LanguageState { text: Some(LENS_TEXT.into()), ..LanguageState::default() };
    exercise("lens-first-letter", 2, "9.2.2", &state);
    let (model, vocab, held) = moby();
    assert!(compute_moby(&model, &vocab, LENS_TEXT).is_ok() && LENS_TEXT.chars().count() <= 128);
    let (first, end) = first_letter_and_word_end(&model, &vocab, LENS_TEXT);
    eprintln!("linked text, top row: first letters {}/{}, word ends {}/{}", first[0], first[1], end[0], end[1]);
    assert_eq!((first, end), ([1, 16], [9, 11]));
    // Over 30 windows of held-out text.
    let chars: Vec<char> = held.chars().collect();
    let (mut f, mut e) = ([0; 2], [0; 2]);
    for w in 0..30 {
        let text: String = chars[w * 1500..w * 1500 + 128].iter().collect();
        let (a, b) = first_letter_and_word_end(&model, &vocab, &text);
        (f[0], f[1], e[0], e[1]) = (f[0] + a[0], f[1] + a[1], e[0] + b[0], e[1] + b[1]);
    }
    let (fr, er) = (f[0] as f32 / f[1] as f32, e[0] as f32 / e[1] as f32);
    eprintln!(
        "held-out text, top row: first letters {:.0}% of {}, word ends {:.0}% of {}",
        100.0 * fr,
        f[1],
        100.0 * er,
        e[1]
    );
    assert!(er > 0.85 && fr < 0.25);
}

#[test]
fn lens_the_copy_appears_only_in_the_last_row() {
    let seq = repeat_words();
    let state = LanguageState { which: Which::Induction, words: Some(seq.clone()), ..LanguageState::default() };
    exercise("lens-induction-copy", 3, "9.2.2", &state);
    let v = compute_induction(&lm("induction"), &words("induction"), &seq).unwrap();
    let n = (v.n_pos() - 1) / 2;
    assert_eq!(v.n_layers(), 3);
    let hits = |l: usize| (n + 1..v.n_pos() - 1).filter(|&p| v.top1(l, p).2 == Some(true)).count();
    eprintln!(
        "second copy, {} positions: embed {}, block 0 {}, block 1 {}",
        v.n_pos() - 2 - n,
        hits(0),
        hits(1),
        hits(2)
    );
    assert_eq!((hits(0), hits(1), hits(2)), (0, 0, v.n_pos() - 2 - n));
}

// ---------------------------------------------------------------- 9.2.3

fn probe_layers(concept: BuiltinConcept) -> (f32, Vec<f32>) {
    let (model, vocab, held) = moby();
    let settings = ProbeSettings { positions: 5000, shuffled_control: true, ..ProbeSettings::default() };
    let data = record_probe_data(&model, &vocab, &held, &settings).unwrap();
    let layers: Vec<usize> = (0..=model.cfg.n_layer).collect();
    let mut job = ProbeJob::new(&data, &Concept::Builtin(concept), &settings, &layers).unwrap();
    while !job.step(&data, usize::MAX).unwrap() {}
    let r = job.report();
    (r.baseline, r.layers.iter().map(|l| l.test_accuracy).collect())
}

#[test]
fn probe_space_next_from_the_embedding_is_a_little_above_the_baseline() {
    exercise("probe-space-embed", 2, "9.2.3", &ProbeState::default());
    let (baseline, acc) = probe_layers(BuiltinConcept::SpaceNext);
    eprintln!("space next: baseline {baseline:.3}, per layer {acc:.3?}");
    assert!(acc[0] > baseline + 0.01 && acc[0] < baseline + 0.05);
    assert!(acc[1] > acc[0] + 0.04);
    assert!(acc.iter().all(|&a| a < 0.95));
}

#[test]
fn probe_inside_quotes_never_beats_the_baseline() {
    let state = ProbeState { concept: BuiltinConcept::InsideQuotes, ..ProbeState::default() };
    exercise("probe-quotes", 1, "9.2.3", &state);
    let (baseline, acc) = probe_layers(BuiltinConcept::InsideQuotes);
    eprintln!("inside quotes: baseline {baseline:.3}, per layer {acc:.3?}");
    assert!(acc.iter().all(|&a| a <= baseline + 0.005));
}

// ---------------------------------------------------------------- 9.2.4

#[test]
fn superposition_at_s_0_7_makes_a_cross_of_four() {
    let state = ToyState { sparsity: 0.7, ..ToyState::default() };
    exercise("superposition-cross", 2, "9.2.4", &state);
    let mut model = ToyModel::new(Settings::from_state(&state).config().unwrap()).unwrap();
    model.step(TOY_BUDGET).unwrap();
    let m = ToyMetrics::of(&model.snapshot());
    let gaps: Vec<f32> = m.gaps.as_ref().unwrap().iter().map(|g| g.degrees).collect();
    eprintln!(
        "S = 0.7 after {TOY_BUDGET} steps: {} represented, norms {:.2?}, gaps {gaps:.0?}",
        m.represented, m.norms
    );
    assert_eq!(m.represented, 4);
    assert!(gaps.iter().all(|g| (85.0..=95.0).contains(g)));
    // Other seeds make the same cross.
    for seed in [1, 2] {
        let mut model = ToyModel::new(ToyConfig { seed, ..Settings::from_state(&state).config().unwrap() }).unwrap();
        model.step(TOY_BUDGET).unwrap();
        let m = ToyMetrics::of(&model.snapshot());
        assert_eq!(m.represented, 4, "seed {seed}");
        assert!(m.gaps.unwrap().iter().all(|g| (85.0..=95.0).contains(&g.degrees)), "seed {seed}");
    }
}

#[test]
fn superposition_sparse_and_unimportant_is_still_superposed() {
    exercise("superposition-phase", 2, "9.2.4", &ToyState::default());
    let spec = PhaseSpec::default();
    let (rows, cols) = (spec.densities.len(), spec.importances.len());
    let sparse = phase_cell(&spec, rows - 1, 0).unwrap();
    let dense = phase_cell(&spec, 0, 0).unwrap();
    eprintln!(
        "density {} importance {}: {:?} (w {:.2?}); density {}: {:?}",
        sparse.density, sparse.importance, sparse.phase, sparse.w, dense.density, dense.phase
    );
    assert!((sparse.density - 0.01).abs() < 1e-4 && (sparse.importance - 0.1).abs() < 1e-4 && cols == 12);
    assert_eq!(sparse.phase, Phase::Superposed);
    assert!(sparse.w[0] * sparse.w[1] < 0.0, "an antipodal pair");
    assert_eq!(dense.phase, Phase::Ignored);
}

// ---------------------------------------------------------------- 9.2.5

#[test]
fn sae_the_q_latent_fires_far_more_often_than_q() {
    let state = SaeState { tab: Tab::Features, latent: Some(304), ..SaeState::default() };
    exercise("sae-latent-density", 3, "9.2.5", &state);
    let dir = format!("{ROOT}/public/models/moby");
    let index = FeatureIndex::from_json(&std::fs::read_to_string(format!("{dir}/sae/features.json")).unwrap()).unwrap();
    let held: Vec<char> = std::fs::read_to_string(format!("{dir}/held_out.txt")).unwrap().chars().collect();
    let card = &index.latents[304];
    assert!(card.contexts.iter().all(|c| matches!(held[c.pos], 'q' | 'Q')), "every top context peaks on a q");
    let qs = held.iter().filter(|&&c| c == 'q' || c == 'Q').count();
    eprintln!(
        "latent 304: fires at {} of {} characters ({:.1}%), q or Q occurs {qs} times ({:.2}%); histogram {:?}, max {:.1}",
        card.count,
        held.len(),
        100.0 * card.density,
        100.0 * qs as f32 / held.len() as f32,
        card.hist,
        card.max
    );
    assert!(card.count > 10 * qs);
    assert!(2 * card.hist[0] as usize > card.count, "most of its firing is in the weakest bin");
}

#[test]
fn sae_without_sparsity_reconstructs_perfectly_but_misses_a_feature() {
    let state = SaeState { toy: ToySae { l1: 0.0, ..ToySae::default() }, ..SaeState::default() };
    exercise("sae-no-sparsity", 2, "9.2.5", &state);
    let mut toy = ToyModel::new(ToyConfig::default()).unwrap();
    toy.step(SAE_TOY_STEPS).unwrap();
    let run = |l1: f32| {
        let cfg = SaeConfig { l1, d_sae: state.toy.d_sae, ..SaeConfig::default() };
        let mut sae = Sae::new(&toy.snapshot(), cfg).unwrap();
        sae.step(SAE_BUDGET).unwrap();
        sae.metrics()
    };
    let (none, default) = (run(0.0), run(ToySae::default().l1));
    for (name, m) in [("λ = 0", &none), ("default λ", &default)] {
        eprintln!(
            "{name}: recovered {}, FVU {:?}, L0 {:.2}, best cosines {:.2?}",
            m.recovered, m.fvu, m.l0, m.best_cosine
        );
    }
    assert!(none.fvu.unwrap() < 1e-4 && none.recovered < 5 && none.l0 > 3.0);
    assert!(default.recovered == 5 && default.l0 < 2.0);
}

// ---------------------------------------------------------------- 9.3.1

/// The patching lab's default input: the chapter's sentence against other names, as `#/9.3.1` opens it.
fn patching_lab_ioi_input() -> (Transformer, PatchInput) {
    let (model, vocab) = (lm("ioi"), words("ioi"));
    let input = prepare(&model, &vocab, &ioi_names(PatchState::default().seed)).unwrap().input;
    (model, input)
}

/// The chapter's sentence with the "other names" corruption drawn from `seed`, as the lab types it.
fn ioi_names(seed: u64) -> Typed<'static> {
    Typed {
        which: TaskModel::Ioi,
        clean: IOI_PROMPT,
        corruption: Corruption::Names,
        corrupted: "",
        answer: "",
        wrong: "",
        seed,
    }
}

fn sweep(model: &Transformer, input: &PatchInput, target: Target, direction: Direction) -> PatchResult {
    let mut s = PatchSweep::new(model, input, target, direction).unwrap();
    while !s.step(model, 16).unwrap() {}
    s.finish().unwrap()
}

#[test]
fn patching_resid_pre_at_layer_0_restores_at_mary_and_at_the_second_john() {
    let state = PatchState { cell: Some(vec![0, 10]), ..PatchState::default() };
    exercise("patch-resid-names", 2, "9.3.1", &state);
    let (model, vocab) = (lm("ioi"), words("ioi"));
    let p = prepare(&model, &vocab, &ioi_names(state.seed)).unwrap();
    assert_eq!(
        (p.clean_words[4].as_str(), p.clean_words[10].as_str(), p.clean_words[2].as_str()),
        ("mary", "john", "john")
    );
    assert_eq!((p.corrupted_words[2].as_str(), p.corrupted_words[4].as_str()), ("jane", "zoe"));
    let r = sweep(&model, &p.input, Target::ResidPre, Direction::Denoising);
    let ld = r.grid(Metric::LogitDiff).unwrap().rows()[0].clone();
    let prob = r.grid(Metric::AnswerProb).unwrap().rows()[0].clone();
    eprintln!("corrupted: {}\nlayer 0: LD {ld:.2?}\n P(mary) {prob:.3?}", p.corrupted_text);
    assert!(ld[4] > 0.8 && ld[10] > 0.8 && ld[2] < -0.2);
    assert!((0..ld.len()).filter(|p| ![2, 4, 10].contains(p)).all(|p| ld[p].abs() < 0.05));
    assert!(prob[4] > 0.5 && prob[10] < 0.01, "Mary comes back only where she is put back");
    // Patching resid_pre at layer 0 is running the corrupted words with one clean word put back. With John back
    // as the giver, the logit difference recovers because John's logit falls, far more than Mary's rises.
    let logits = |tokens: &[u32]| -> Vec<f32> {
        let l = model.logits(tokens).unwrap();
        let l = l.get(0).unwrap();
        l.get(tokens.len() - 1).unwrap().to_vec1().unwrap()
    };
    let (mary, john) = (vocab.id("mary").unwrap() as usize, vocab.id("john").unwrap() as usize);
    let mut giver = p.input.corrupted.clone();
    giver[10] = p.input.clean[10];
    let (before, after) = (logits(&p.input.corrupted), logits(&giver));
    let (d_mary, d_john) = (after[mary] - before[mary], after[john] - before[john]);
    eprintln!("John put back as the giver: logit(mary) {d_mary:+.2}, logit(john) {d_john:+.2}");
    assert!(d_john < 0.0 && -d_john > 2.0 * d_mary.abs());
}

#[test]
fn patching_the_induction_model_noising_needs_only_the_layer_1_heads() {
    let state = PatchState {
        which: TaskModel::Induction,
        corruption: Corruption::Redraw,
        target: Target::HeadOut,
        direction: Direction::Noising,
        ..PatchState::default()
    };
    exercise("patch-induction-noising", 2, "9.3.1", &state);
    let (model, vocab) = (lm("induction"), words("induction"));
    let clean = vocab.decode(&glassbox::app::labs::patching::repeated_sequence(
        model.cfg.vocab_size,
        model.cfg.n_positions,
        state.seed,
    ));
    let typed = Typed {
        which: TaskModel::Induction,
        clean: &clean,
        corruption: Corruption::Redraw,
        corrupted: "",
        answer: "",
        wrong: "",
        seed: state.seed,
    };
    let p = prepare(&model, &vocab, &typed).unwrap();
    let rows = sweep(&model, &p.input, Target::HeadOut, Direction::Noising).grid(Metric::LogitDiff).unwrap().rows();
    eprintln!(
        "{} | {}: answer {}, wrong {}\nnoising head outputs: {rows:.2?}",
        clean, p.corrupted_text, p.answer, p.wrong
    );
    assert!(rows[0].iter().all(|&v| v > 0.9), "no layer-0 head is needed");
    assert!([0, 1, 3].iter().all(|&h| rows[1][h] < 0.6), "the layer-1 induction heads are");
}

// ---------------------------------------------------------------- 9.3.2

fn steered(layer: usize, coef: f32) -> (String, String, f32, f32) {
    let (model, vocab, _) = moby();
    let pair = &PAIRS[0];
    let (p, n) = pair.contexts(&vocab).unwrap();
    let v = steering_from_contexts(&model, &p, &n, resid_hook(layer)).unwrap();
    let prompt = vocab.encode(DEFAULT_PROMPT).unwrap();
    let settings = SampleSettings { temperature: TEMPERATURE, top_k: 0, seed: 11 };
    let plain = vocab.decode(&generate(&model, &prompt, LENGTH, &settings, &[]).unwrap().tokens);
    let iv = v.intervention(coef).unwrap();
    let steered = vocab.decode(&generate(&model, &prompt, LENGTH, &settings, &[iv]).unwrap().tokens);
    // The typical length of the stream the vector is added to, over the prompt's positions.
    let (_, cache) = model.run_with_cache(&prompt).unwrap();
    let x: Vec<Vec<f32>> = cache.get(resid_hook(layer)).unwrap().get(0).unwrap().to_vec2().unwrap();
    let stream = x.iter().map(|r| r.iter().map(|a| a * a).sum::<f32>().sqrt()).sum::<f32>() / x.len() as f32;
    (plain, steered, v.norm(), stream)
}

#[test]
fn steering_at_the_embedding_with_a_tiny_vector_still_shouts() {
    let state = SteerState { layer: 0, coef: 1.0, ..SteerState::default() };
    exercise("steer-embedding", 3, "9.3.2", &state);
    let (plain, at0, norm0, stream0) = steered(0, 1.0);
    let (_, _, norm1, stream1) = steered(1, 1.0);
    let rate = |s: &str| PAIRS[0].rate(s);
    eprintln!(
        "layer 0: |v| {norm0:.2}, stream {stream0:.2}; layer 1: |v| {norm1:.1}, stream {stream1:.1}; capitals {:.1}% -> {:.1}%\n{at0:?}",
        100.0 * rate(&plain),
        100.0 * rate(&at0)
    );
    assert!(norm1 > 20.0 * norm0 && rate(&at0) > 0.9 && rate(&plain) < 0.02);
    assert!(norm0 / stream0 > 0.33 && stream1 > 5.0 * stream0, "small, but not beside the embedding");
    assert!(norm1 > stream1, "at c = 1 the push outweighs the stream at layer 1");
}

#[test]
fn steering_too_hard_gives_capitals_but_no_words() {
    let state = SteerState { coef: 1.0, ..SteerState::default() };
    exercise("steer-too-strong", 2, "9.3.2", &state);
    assert_eq!(state.layer, 1);
    let (_, _, held) = moby();
    let known: HashSet<String> =
        held.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    let real_words = |s: &str| {
        let ws: Vec<String> =
            s.split(|c: char| !c.is_alphabetic()).filter(|w| w.len() >= 3).map(str::to_lowercase).collect();
        ws.iter().filter(|w| known.contains(*w)).count() as f32 / ws.len().max(1) as f32
    };
    let (plain, gentle, _, _) = steered(1, 0.3);
    let (_, hard, _, _) = steered(1, 1.0);
    let rate = |s: &str| PAIRS[0].rate(s);
    for (name, s) in [("plain", &plain), ("c = 0.3", &gentle), ("c = 1", &hard)] {
        eprintln!(
            "{name}: capitals {:.1}%, known words {:.0}%: {:?}",
            100.0 * rate(s),
            100.0 * real_words(s),
            &s[..100]
        );
    }
    assert!((0.25..0.4).contains(&rate(&gentle)) && (0.4..0.6).contains(&real_words(&gentle)));
    assert!(rate(&hard) > 0.9 && real_words(&hard) == 0.0 && (0.7..0.8).contains(&real_words(&plain)));
}

// ---------------------------------------------------------------- 9.4

fn acdc_circuit(model: &Transformer, input: &PatchInput, state: &AcdcState) -> Circuit {
    let mut run = AcdcRun::with_positions(model, input, state.tau, kl_positions(state.which)).unwrap();
    while run.step().unwrap() != AcdcEvent::Finished {}
    run.finish().unwrap()
}

/// The inputs (q, k, v) through which a layer-0 head reaches a later head in the circuit.
fn layer0_to_later(c: &Circuit) -> Vec<Qkv> {
    c.edges
        .iter()
        .filter_map(|e| match (e.sender, e.receiver) {
            (Node::Head { layer: 0, .. }, Node::HeadInput { input, .. }) => Some(input),
            _ => None,
        })
        .collect()
}

#[test]
fn acdc_ioi_layer_0_feeds_values_only() {
    let state = AcdcState::default();
    exercise("acdc-ioi-values", 3, "9.4", &state);
    let (model, vocab) = (lm("ioi"), words("ioi"));
    let input = ioi_input(&vocab, model.cfg.n_positions, &state.clean, &state.corrupted).unwrap();
    let c = acdc_circuit(&model, &input, &state);
    let via = layer0_to_later(&c);
    eprintln!("IOI, τ = {}: {} edges; layer 0 into later heads through {via:?}", state.tau, c.edges.len());
    assert!(via.len() >= 4 && via.iter().all(|&q| q == Qkv::V));
    for (from, to) in [(2, 1), (2, 3), (3, 1), (3, 3)] {
        let edge = |e: &&glassbox::lens::methods::acdc::CircuitEdge| {
            e.sender == Node::Head { layer: 0, head: from }
                && e.receiver == Node::HeadInput { layer: 1, head: to, input: Qkv::V }
        };
        assert!(c.edges.iter().any(|e| edge(&e)), "a0.{from} -> a1.{to}.v");
    }
    // From the last word, L1H1 reads the comma and L1H3 "bottle", with either pair of names.
    for prompt in [&state.clean, &state.corrupted] {
        let r = attention(&model, &vocab, prompt).unwrap();
        let last = r.tokens.len() - 1;
        assert!(r.patterns[1][1][last][9] > 0.9 && r.words[9] == ",", "{prompt}");
        assert!(r.patterns[1][3][last][13] > 0.9 && r.words[13] == "bottle", "{prompt}");
    }
    // In the patching lab (its own default corruption), patching L1H3's values restores the answer; its queries
    // and keys do not.
    let (model, input) = patching_lab_ioi_input();
    let l1h3 = |t| sweep(&model, &input, t, Direction::Denoising).grid(Metric::LogitDiff).unwrap().rows()[1][3];
    let (v, q, k) = (l1h3(Target::V), l1h3(Target::Q), l1h3(Target::K));
    eprintln!("denoising L1H3: values {v:.2}, queries {q:.2}, keys {k:.2}");
    assert!(v > 0.7 && q.abs() < 0.05 && k.abs() < 0.05);
}

#[test]
fn acdc_induction_layer_0_feeds_keys_only() {
    let state = AcdcState {
        which: TaskModel::Induction,
        tau: glassbox::app::labs::acdc::default_tau(TaskModel::Induction),
        ..AcdcState::default()
    };
    exercise("acdc-induction-keys", 2, "9.4", &state);
    let model = lm("induction");
    let input = glassbox::app::labs::acdc::induction_input(model.cfg.vocab_size, model.cfg.n_positions, state.seed);
    let c = acdc_circuit(&model, &input, &state);
    let via = layer0_to_later(&c);
    eprintln!("induction, τ = {}: {} edges; layer 0 into layer 1 through {via:?}", state.tau, c.edges.len());
    assert!(via.len() >= 2 && via.iter().all(|&q| q == Qkv::K));
    let heads = |layer: usize| -> Vec<usize> {
        let mut h: Vec<usize> = c
            .nodes
            .iter()
            .filter_map(|n| match n {
                Node::Head { layer: l, head } if *l == layer => Some(*head),
                _ => None,
            })
            .collect();
        h.sort_unstable();
        h
    };
    assert_eq!((heads(0), heads(1)), (vec![1, 3], vec![0, 1, 3]));
    // The embeddings feed the copying heads' queries and values.
    assert!(c
        .edges
        .iter()
        .any(|e| e.sender == Node::Embed && matches!(e.receiver, Node::HeadInput { layer: 1, input: Qkv::Q, .. })));
    assert!(c
        .edges
        .iter()
        .any(|e| e.sender == Node::Embed && matches!(e.receiver, Node::HeadInput { layer: 1, input: Qkv::V, .. })));
}

/// The lab's "Random repeat" button draws from any seed, so the e2e test's claim (the last row is right on the
/// repeated half) must hold for every draw, not only the default: 400 seeds, every repeated position right.
#[test]
fn lens_every_random_repeat_is_copied_by_the_last_row() {
    let (model, vocab) = (lm("induction"), words("induction"));
    for seed in 1..400u64 {
        let seq = random_repeat_text(&vocab, 64, seed.wrapping_mul(6364136223846793005) | 1);
        let v = compute_induction(&model, &vocab, &seq).unwrap();
        let n = (v.n_pos() - 1) / 2;
        let half: std::collections::HashSet<_> = seq.split_whitespace().take(n).collect();
        assert_eq!(half.len(), n, "the first half's words are distinct: {seq}");
        let misses: Vec<usize> = (n + 1..v.n_pos() - 1).filter(|&p| v.top1(2, p).2 != Some(true)).collect();
        assert!(misses.is_empty(), "seed {seed}: wrong at {misses:?} on {seq}");
    }
}
