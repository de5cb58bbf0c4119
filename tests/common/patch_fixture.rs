//! The native-numbers fixture `tests/fixtures/ioi_native.json`: activation patching, attribution patching and
//! ACDC as the engine computes them natively on the shipped IOI model (`public/models/ioi/`), on the chapter's
//! sentence against the same sentence with other names (what the 9.3.1 and 9.4 labs open on). The in-browser
//! tests (`tests/web.rs`) must reproduce them in wasm.
//!
//! Written by `GLASSBOX_WRITE_FIXTURES=1 cargo test --test fixtures`; checked without that variable by the same
//! test natively (to 1e-5) and by `tests/web.rs` in headless Chromium (to 1e-4). As with `fixture.rs`, the
//! computation lives here once, so native and wasm run the same code on the same inputs.
//!
//! Included with `#[path = "common/patch_fixture.rs"] mod patch_fixture;`; not every test crate uses every item.
#![allow(dead_code)]
use glassbox::lens::gpt2::vocab::Vocab;
use glassbox::lens::methods::acdc::{acdc, KlPositions};
use glassbox::lens::methods::ioi::chapter_input;
use glassbox::lens::methods::patching::{activation_patching, targets, AttributionPatching, Direction, Metric};
use glassbox::lens::Transformer;
use serde::{Deserialize, Serialize};

pub const FIXTURE_PATH: &str = "tests/fixtures/ioi_native.json";
pub const MODEL_DIR: &str = "public/models/ioi";
/// ACDC's threshold: the 9.4 lab's default on the IOI model.
pub const TAU: f32 = 0.01;

/// One target's map, in one direction, with the normalised logit difference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Map {
    pub target: String,
    pub direction: String,
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchFixture {
    /// FNV-1a of the model files, as `fixture::ModelId` computes them.
    pub config_fnv1a64: String,
    pub safetensors_fnv1a64: String,
    pub vocab_fnv1a64: String,
    pub clean: Vec<u32>,
    pub corrupted: Vec<u32>,
    /// Activation patching: every target, denoising and noising.
    pub real: Vec<Map>,
    /// Attribution patching's estimate of the same maps.
    pub attribution: Vec<Map>,
    /// ACDC at `TAU`: the kept edges as `sender -> receiver`, in the order tried; the circuit's KL and normalised
    /// logit difference.
    pub acdc_edges: Vec<String>,
    pub acdc_kl: f32,
    pub acdc_logit_diff: f32,
}

pub fn compute(model: &Transformer, vocab: &Vocab, files: [String; 3]) -> PatchFixture {
    let input = chapter_input(vocab).unwrap();
    let mut real = Vec::new();
    let mut attribution = Vec::new();
    for direction in [Direction::Denoising, Direction::Noising] {
        let estimate = AttributionPatching::new(model, &input, direction, Metric::LogitDiff).unwrap();
        for t in targets(model) {
            let grid = activation_patching(model, &input, t, direction).unwrap().grid(Metric::LogitDiff).unwrap();
            let map = |values: Vec<f32>, dims: Vec<usize>| Map {
                target: t.name().into(),
                direction: direction.name().into(),
                dims,
                values,
            };
            real.push(map(grid.values, grid.dims));
            let est = estimate.grid(t).unwrap();
            attribution.push(map(est.values, est.dims));
        }
    }
    let circuit = acdc(model, &input, TAU).unwrap();
    assert_eq!(circuit.kl_positions, KlPositions::Last);
    let [config_fnv1a64, safetensors_fnv1a64, vocab_fnv1a64] = files;
    PatchFixture {
        config_fnv1a64,
        safetensors_fnv1a64,
        vocab_fnv1a64,
        clean: input.clean.clone(),
        corrupted: input.corrupted.clone(),
        real,
        attribution,
        acdc_edges: circuit.edges.iter().map(|e| format!("{} -> {}", e.sender, e.receiver)).collect(),
        acdc_kl: circuit.kl,
        acdc_logit_diff: circuit.logit_diff.unwrap(),
    }
}

/// Every difference beyond `tol` (absolute, or relative for values over 1), or the largest difference.
pub fn compare(got: &PatchFixture, want: &PatchFixture, tol: f32) -> Result<f32, Vec<String>> {
    let mut problems = Vec::new();
    // (what, got, want) for every number compared.
    let mut numbers: Vec<(String, f32, f32)> = Vec::new();
    if (&got.clean, &got.corrupted) != (&want.clean, &want.corrupted) {
        problems.push("the prompts encode differently".into());
    }
    for (kind, g, w) in [("real", &got.real, &want.real), ("attribution", &got.attribution, &want.attribution)] {
        if g.len() != w.len() {
            problems.push(format!("{kind}: {} maps vs {}", g.len(), w.len()));
            continue;
        }
        for (a, b) in g.iter().zip(w) {
            let name = format!("{kind} {} {}", a.target, a.direction);
            if (&a.target, &a.direction, &a.dims) != (&b.target, &b.direction, &b.dims) {
                problems.push(format!("{name}: shape {:?} vs {} {} {:?}", a.dims, b.target, b.direction, b.dims));
                continue;
            }
            let cells = a.values.iter().zip(&b.values).enumerate();
            numbers.extend(cells.map(|(i, (x, y))| (format!("{name} cell {i}"), *x, *y)));
        }
    }
    if got.acdc_edges != want.acdc_edges {
        problems.push(format!("ACDC kept {:?}, the fixture {:?}", got.acdc_edges, want.acdc_edges));
    }
    numbers.push(("ACDC's KL".into(), got.acdc_kl, want.acdc_kl));
    numbers.push(("ACDC's logit difference".into(), got.acdc_logit_diff, want.acdc_logit_diff));
    let mut worst = 0.0f32;
    for (what, a, b) in numbers {
        // Absolute below 1, relative above: logit differences reach ~10.
        let d = (a - b).abs() / b.abs().max(1.0);
        worst = worst.max(d);
        // A NaN counts as a difference.
        if d.is_nan() || d > tol {
            problems.push(format!("{what}: {a} vs {b}"));
        }
    }
    if problems.is_empty() {
        Ok(worst)
    } else {
        Err(problems)
    }
}

/// The shipped IOI model and the chapter's input (its sentence against other names), read from disk: for the
/// native tests.
pub fn ioi_chapter_model_and_input() -> (Transformer, glassbox::lens::methods::patching::PatchInput) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/ioi");
    let cfg = std::fs::read_to_string(format!("{dir}/config.json")).expect("the IOI model is shipped");
    let model = Transformer::from_bytes(&cfg, &std::fs::read(format!("{dir}/model.safetensors")).unwrap()).unwrap();
    let vocab = Vocab::from_json(&std::fs::read_to_string(format!("{dir}/vocab.json")).unwrap()).unwrap();
    (model, chapter_input(&vocab).unwrap())
}
