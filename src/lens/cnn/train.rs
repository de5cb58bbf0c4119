//! Training the CNN on labelled digits, and measuring its accuracy.
use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use super::mnist::Samples;
use super::model::{Cnn, VisionConfig};
use crate::lens::rng::Rng;
use crate::lens::{LensError, Result};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VisionTrainConfig {
    pub seed: u64,
    pub epochs: usize,
    pub batch: usize,
    /// Peak learning rate (AdamW), reached after `warmup` steps and decayed by a cosine to a hundredth.
    pub lr: f64,
    pub warmup: usize,
    pub weight_decay: f64,
    /// Each training image is shifted by up to this many pixels in x and y (zeros fill in). Drawn digits are
    /// never centred as carefully as MNIST's, so this buys robustness in the lab as well as a little accuracy.
    pub max_shift: usize,
    pub log_every: usize,
}

/// A training image shifted by (dy, dx), zeros filling in, as bytes.
fn shifted(src: &[u8], side: usize, dy: isize, dx: isize, out: &mut Vec<f32>) {
    for y in 0..side as isize {
        for x in 0..side as isize {
            let (sy, sx) = (y - dy, x - dx);
            let v = if sy >= 0 && sx >= 0 && sy < side as isize && sx < side as isize {
                src[sy as usize * side + sx as usize]
            } else {
                0
            };
            out.push(v as f32 / 255.0);
        }
    }
}

/// Trains a fresh model with AdamW on shuffled minibatches. `on_log(step, epoch, mean_loss)` is called every
/// `log_every` steps with the mean training loss since the last call; return false to stop early.
pub fn train_cnn(
    cfg: VisionConfig,
    tc: &VisionTrainConfig,
    data: &Samples,
    mut on_log: impl FnMut(usize, usize, f32) -> bool,
) -> Result<Cnn> {
    if data.side != cfg.image_size || data.is_empty() {
        return Err(LensError::Input(format!(
            "training data holds {} images of side {}, the model reads side {}",
            data.len(),
            data.side,
            cfg.image_size
        )));
    }
    let mut rng = Rng::new(tc.seed);
    let (mut model, vars) = Cnn::init(cfg, &mut rng)?;
    let params = ParamsAdamW { lr: tc.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: tc.weight_decay };
    let mut opt = AdamW::new(vars.iter().map(|(_, v)| v.clone()).collect(), params)?;
    let side = data.side;
    let per_epoch = data.len() / tc.batch;
    let total = per_epoch * tc.epochs;
    let (mut acc, mut n, mut step) = (0.0f32, 0, 0);
    'outer: for epoch in 1..=tc.epochs {
        // Fisher-Yates shuffle from the seeded generator.
        let mut order: Vec<usize> = (0..data.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.range(0, i));
        }
        for chunk in order.chunks_exact(tc.batch) {
            step += 1;
            let lr = if step <= tc.warmup {
                tc.lr * step as f64 / tc.warmup as f64
            } else {
                let t = (step - tc.warmup) as f64 / (total - tc.warmup).max(1) as f64;
                tc.lr * (0.01 + 0.99 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
            };
            opt.set_learning_rate(lr);
            let mut xs = Vec::with_capacity(tc.batch * side * side);
            let mut ys = Vec::with_capacity(tc.batch);
            for &i in chunk {
                let s = tc.max_shift as isize;
                let (dy, dx) = if s > 0 {
                    (rng.range(0, 2 * s as usize) as isize - s, rng.range(0, 2 * s as usize) as isize - s)
                } else {
                    (0, 0)
                };
                shifted(&data.pixels[i * side * side..(i + 1) * side * side], side, dy, dx, &mut xs);
                ys.push(data.labels[i] as u32);
            }
            let x = Tensor::from_vec(xs, (tc.batch, 1, side, side), &Device::Cpu)?;
            let y = Tensor::from_vec(ys, tc.batch, &Device::Cpu)?;
            let loss = candle_nn::loss::cross_entropy(&model.forward(&x)?, &y)?;
            opt.backward_step(&loss)?;
            acc += loss.to_scalar::<f32>()?;
            n += 1;
            if step % tc.log_every == 0 || step == total {
                let mean = acc / n as f32;
                (acc, n) = (0.0, 0);
                if !mean.is_finite() {
                    return Err(LensError::Input(format!("training diverged at step {step} (loss {mean})")));
                }
                if !on_log(step, epoch, mean) {
                    break 'outer;
                }
            }
        }
    }
    // Re-read the trained weights as plain tensors, so the model carries no optimiser variables.
    model = Cnn::from_tensors(model.cfg.clone(), model.to_tensors()?.into_iter().collect())?;
    Ok(model)
}

/// Predicted class of every image, in batches.
pub fn predictions(model: &Cnn, data: &Samples, batch: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len());
    let idx: Vec<usize> = (0..data.len()).collect();
    for chunk in idx.chunks(batch.max(1)) {
        let logits = model.forward(&data.batch(chunk)?)?;
        out.extend(logits.argmax(1)?.to_vec1::<u32>()?.into_iter().map(|c| c as u8));
    }
    Ok(out)
}

/// Fraction of images classified correctly.
pub fn accuracy(model: &Cnn, data: &Samples) -> Result<f32> {
    let pred = predictions(model, data, 500)?;
    let right = pred.iter().zip(&data.labels).filter(|(p, l)| p == l).count();
    Ok(right as f32 / data.len().max(1) as f32)
}
