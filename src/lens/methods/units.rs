//! What one channel responds to, read from data and from weights: its top activating examples, the class mix
//! of those examples (a polysemanticity flag), and the kernels that feed it from the layer below (circuits).
use serde::{Deserialize, Serialize};

use crate::lens::cnn::mnist::Samples;
use crate::lens::cnn::model::{Cnn, VisionHook};
use crate::lens::{LensError, Result};

/// Every sample's mean activation per channel at `hook`: `[sample][channel]`. The mean over positions is the
/// same measure as `Target::Channel`, so "top examples" and "feature visualization" rank by one number.
/// Compute it once per layer and reuse it: it runs the model over the whole sample set.
pub fn channel_means(model: &Cnn, samples: &Samples, hook: VisionHook) -> Result<Vec<Vec<f32>>> {
    let mut scan = ChannelScan::new(hook)?;
    while !scan.step(model, samples)? {}
    Ok(scan.finish())
}

/// Samples per step of a `ChannelScan`: a few milliseconds of forward passes in a browser.
const SCAN_STEP: usize = 8;

/// `channel_means` a few samples per `step`, so a browser can scan the sample set between frames. The steps
/// take fixed batches, so the result is `channel_means`'s, however the steps are spread over time.
pub struct ChannelScan {
    hook: VisionHook,
    means: Vec<Vec<f32>>,
}

impl ChannelScan {
    pub fn new(hook: VisionHook) -> Result<Self> {
        if hook == VisionHook::Logits {
            return Err(LensError::Input("logits have no channels; pick a conv or pool layer".into()));
        }
        Ok(ChannelScan { hook, means: Vec::new() })
    }

    /// Runs the next few samples; `Ok(true)` once every sample is done.
    pub fn step(&mut self, model: &Cnn, samples: &Samples) -> Result<bool> {
        let start = self.means.len();
        if start < samples.len() {
            let idx: Vec<usize> = (start..(start + SCAN_STEP).min(samples.len())).collect();
            let cache = model.forward_to(&samples.batch(&idx)?, Some(self.hook))?;
            self.means.extend(cache.get(self.hook)?.flatten_from(2)?.mean(2)?.to_vec2::<f32>()?);
            // [b, c]
        }
        Ok(self.means.len() == samples.len())
    }

    /// How many samples are done.
    pub fn done(&self) -> usize {
        self.means.len()
    }

    /// `[sample][channel]` for the samples done.
    pub fn finish(self) -> Vec<Vec<f32>> {
        self.means
    }
}

/// The `k` samples on which `channel` is most active, best first: `(sample index, mean activation)`.
/// Ties keep sample order, so the result is deterministic.
pub fn top_examples(means: &[Vec<f32>], channel: usize, k: usize) -> Result<Vec<(usize, f32)>> {
    if means.first().is_some_and(|row| channel >= row.len()) {
        return Err(LensError::Input(format!("channel {channel} is outside the layer's {} channels", means[0].len())));
    }
    let mut all: Vec<(usize, f32)> = means.iter().enumerate().map(|(i, row)| (i, row[channel])).collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    Ok(all)
}

/// A channel is flagged polysemantic when no single class makes up more than this fraction of its top
/// examples: it responds strongly to digits of several kinds.
pub const POLYSEMANTIC_MAX_SHARE: f32 = 0.6;

/// The classes among a channel's top-k activating examples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMix {
    pub channel: usize,
    /// `counts[class]` among the top examples.
    pub counts: Vec<usize>,
    pub top_class: usize,
    /// Fraction of the top examples in `top_class`.
    pub top_share: f32,
    /// Number of classes with at least one top example.
    pub classes_present: usize,
    /// `top_share <= POLYSEMANTIC_MAX_SHARE`.
    pub polysemantic: bool,
}

/// The class mix of every channel's top-`k` examples.
pub fn polysemanticity(means: &[Vec<f32>], labels: &[u8], k: usize) -> Result<Vec<ClassMix>> {
    if means.len() != labels.len() || means.is_empty() || k == 0 {
        return Err(LensError::Input(format!("{} activation rows for {} labels, k {k}", means.len(), labels.len())));
    }
    let n_classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(1).max(10);
    (0..means[0].len())
        .map(|c| {
            let top = top_examples(means, c, k)?;
            let mut counts = vec![0; n_classes];
            for (i, _) in &top {
                counts[labels[*i] as usize] += 1;
            }
            let top_class = (0..n_classes).max_by(|&a, &b| counts[a].cmp(&counts[b]).then(b.cmp(&a))).unwrap();
            let top_share = counts[top_class] as f32 / top.len() as f32;
            Ok(ClassMix {
                channel: c,
                classes_present: counts.iter().filter(|&&n| n > 0).count(),
                counts,
                top_class,
                top_share,
                polysemantic: top_share <= POLYSEMANTIC_MAX_SHARE,
            })
        })
        .collect()
}

/// One input channel's kernel into a chosen channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelLink {
    /// Channel of the layer below (of the input image for conv1).
    pub from: usize,
    /// `k * k` weights, row-major.
    pub kernel: Vec<f32>,
    /// L2 norm of the kernel: how strongly the input channel drives (or suppresses) this one.
    pub l2: f32,
    /// Sum of the positive weights: how much the input channel can excite this one.
    pub positive: f32,
    /// Sum of the negative weights (≤ 0): how much it can inhibit.
    pub negative: f32,
}

/// The circuit into `channel` of conv layer `layer` (1-based): one kernel per channel of the layer below,
/// strongest (by L2 norm) first. Since the layer below passes through ReLU (and a max-pool), its channels are
/// never negative, so a kernel's positive weights excite and its negative weights inhibit.
pub fn circuit(model: &Cnn, layer: usize, channel: usize) -> Result<Vec<KernelLink>> {
    let (w, _) = model.conv_weights(layer)?;
    let (out, inp, k, _) = w.dims4()?;
    if channel >= out {
        return Err(LensError::Input(format!("conv{layer} has {out} channels; there is no channel {channel}")));
    }
    let w = w.get(channel)?.reshape((inp, k * k))?.to_vec2::<f32>()?;
    let mut links: Vec<KernelLink> = w
        .into_iter()
        .enumerate()
        .map(|(from, kernel)| KernelLink {
            from,
            l2: kernel.iter().map(|x| x * x).sum::<f32>().sqrt(),
            positive: kernel.iter().filter(|&&x| x > 0.0).sum(),
            negative: kernel.iter().filter(|&&x| x < 0.0).sum(),
            kernel,
        })
        .collect();
    links.sort_by(|a, b| b.l2.total_cmp(&a.l2).then(a.from.cmp(&b.from)));
    Ok(links)
}
