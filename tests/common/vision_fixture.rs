//! The native-numbers fixture for the vision engine, `tests/fixtures/mnist_cnn_native.json`: logits and input
//! gradients (candle autograd) of the shipped CNN (`public/models/mnist-cnn/`) on shipped sample images, which
//! the in-browser test (`tests/web.rs`) must reproduce in wasm to 1e-4.
//!
//! Written by `GLASSBOX_WRITE_FIXTURES=1 cargo test --test fixtures`, checked natively (to 1e-5) by the same
//! test. As with `fixture.rs`, the computation lives here once, so native and wasm run the same code.
//!
//! Included with `#[path = "common/vision_fixture.rs"] mod vision_fixture;`.
#![allow(dead_code)]
use glassbox::lens::cnn::{Cnn, Samples, VisionHook};
use glassbox::lens::methods::attribution::{input_gradient_autograd, vanilla_gradient, Target};
use serde::{Deserialize, Serialize};

pub const VISION_FIXTURE_PATH: &str = "tests/fixtures/mnist_cnn_native.json";
pub const VISION_MODEL_DIR: &str = "public/models/mnist-cnn";

/// The sample images used, by index into `samples.bin`.
pub const SAMPLES: [usize; 3] = [0, 1, 7];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisionModelId {
    pub dir: String,
    pub config_fnv1a64: String,
    pub safetensors_fnv1a64: String,
    pub samples_fnv1a64: String,
}

impl VisionModelId {
    pub fn of(config: &str, safetensors: &[u8], samples: &[u8]) -> Self {
        let h = |b: &[u8]| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for &x in b {
                h ^= x as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            format!("{h:016x}")
        };
        VisionModelId {
            dir: VISION_MODEL_DIR.into(),
            config_fnv1a64: h(config.as_bytes()),
            safetensors_fnv1a64: h(safetensors),
            samples_fnv1a64: h(samples),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GradientCase {
    pub sample: usize,
    /// `class 7`, `conv3 channel 5 mean`, `conv2 channel 3 at (4, 9)`.
    pub target: String,
    pub value: f32,
    /// 784 values, row-major.
    pub gradient: Vec<f32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VisionFixture {
    pub about: String,
    pub model: VisionModelId,
    /// `[sample][class]`.
    pub logits: Vec<Vec<f32>>,
    pub cases: Vec<GradientCase>,
}

/// The targets checked for one image: its label's logit, the most active conv3 channel's mean, and the most
/// active unit of conv2 (chosen from the forward pass, so that no target is a dead unit with zero gradient).
fn targets(model: &Cnn, x: &[f32], label: usize) -> Vec<(String, Target)> {
    let (_, cache) = model.run_with_cache(&model.image(x).unwrap()).unwrap();
    let argmax = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
    let conv3 = cache
        .get(VisionHook::Conv(3))
        .unwrap()
        .flatten_from(2)
        .unwrap()
        .mean(2)
        .unwrap()
        .get(0)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let c3 = argmax(&conv3);
    let conv2 =
        cache.get(VisionHook::Conv(2)).unwrap().get(0).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let u = argmax(&conv2);
    let (c2, y, xx) = (u / 196, (u % 196) / 14, u % 14);
    vec![
        (format!("class {label}"), Target::Class(label)),
        (format!("conv3 channel {c3} mean"), Target::Channel { hook: VisionHook::Conv(3), channel: c3 }),
        (
            format!("conv2 channel {c2} at ({y}, {xx})"),
            Target::Unit { hook: VisionHook::Conv(2), channel: c2, y, x: xx },
        ),
    ]
}

/// The fixture's numbers, with gradients from the engine's hand-written backward pass (`vanilla_gradient`).
pub fn compute(model: &Cnn, samples: &Samples, id: VisionModelId) -> VisionFixture {
    compute_with(model, samples, id, false)
}

/// The same numbers with the gradients taken by candle's autograd (`input_gradient_autograd`) instead, so
/// that both backward passes are checked against one fixture, natively and in wasm.
pub fn compute_with(model: &Cnn, samples: &Samples, id: VisionModelId, autograd: bool) -> VisionFixture {
    let mut logits = vec![];
    let mut cases = vec![];
    for &i in &SAMPLES {
        let x = samples.image(i);
        logits.push(model.forward(&model.image(&x).unwrap()).unwrap().flatten_all().unwrap().to_vec1().unwrap());
        for (name, target) in targets(model, &x, samples.labels[i] as usize) {
            let (value, gradient) = if autograd {
                let (v, g) = input_gradient_autograd(model, &model.image(&x).unwrap(), target).unwrap();
                (v.to_vec1::<f32>().unwrap()[0], g.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            } else {
                let s = vanilla_gradient(model, &x, target).unwrap();
                (s.value, s.map)
            };
            cases.push(GradientCase { sample: i, target: name, value, gradient });
        }
    }
    VisionFixture {
        about: format!("logits and input gradients (candle autograd) of {VISION_MODEL_DIR} on samples.bin images {SAMPLES:?}; written by `GLASSBOX_WRITE_FIXTURES=1 cargo test --test fixtures`"),
        model: id,
        logits,
        cases,
    }
}

/// Largest absolute differences (logits, values, gradients), or the list of what differs by more than `tol`.
pub fn compare(got: &VisionFixture, want: &VisionFixture, tol: f32) -> Result<[f32; 3], Vec<String>> {
    let mut worst = [0.0f32; 3];
    let mut problems = vec![];
    let mut check = |k: usize, what: String, a: &[f32], b: &[f32]| {
        if a.len() != b.len() {
            problems.push(format!("{what}: {} values, expected {}", a.len(), b.len()));
            return;
        }
        let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        worst[k] = worst[k].max(d);
        // NaN fails too: `d <= tol` is false for it.
        if d.is_nan() || d > tol {
            problems.push(format!("{what}: max abs difference {d:e}"));
        }
    };
    if got.logits.len() != want.logits.len() || got.cases.len() != want.cases.len() {
        return Err(vec!["the fixture describes different samples or targets".into()]);
    }
    for (i, (a, b)) in got.logits.iter().zip(&want.logits).enumerate() {
        check(0, format!("logits of sample {}", SAMPLES[i]), a, b);
    }
    for (a, b) in got.cases.iter().zip(&want.cases) {
        if a.target != b.target || a.sample != b.sample {
            check(
                1,
                format!("case `{}` of sample {} is `{}` of {} in the fixture", a.target, a.sample, b.target, b.sample),
                &[],
                &[0.0],
            );
            continue;
        }
        check(1, format!("value of `{}` on sample {}", a.target, a.sample), &[a.value], &[b.value]);
        check(2, format!("gradient of `{}` on sample {}", a.target, a.sample), &a.gradient, &b.gradient);
    }
    if problems.is_empty() {
        Ok(worst)
    } else {
        Err(problems)
    }
}
