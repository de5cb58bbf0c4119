//! A small CNN for 28x28 grayscale digits, in reading order, with every activation named.
//!
//! image [b, 1, 28, 28] in [0, 1]
//!   -> conv1 (1 -> 8, 3x3, pad 1) -> ReLU -> maxpool 2   [b, 8, 14, 14]
//!   -> conv2 (8 -> 16, 3x3, pad 1) -> ReLU -> maxpool 2  [b, 16, 7, 7]
//!   -> conv3 (16 -> 32, 3x3, pad 1) -> ReLU -> maxpool 2 [b, 32, 3, 3]
//!   -> flatten (channel-major, as torch.flatten)         [b, 288]
//!   -> fc (288 -> 10)                                   [b, 10] logits
//!
//! The weights use PyTorch's names and layouts, so the folder maps onto this torch module unchanged:
//!
//! ```text
//! class Cnn(nn.Module):
//!     def __init__(self):
//!         super().__init__()
//!         self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
//!         self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
//!         self.conv3 = nn.Conv2d(16, 32, 3, padding=1)
//!         self.fc = nn.Linear(32 * 3 * 3, 10)
//!     def forward(self, x):
//!         for conv in (self.conv1, self.conv2, self.conv3):
//!             x = F.max_pool2d(F.relu(conv(x)), 2)
//!         return self.fc(torch.flatten(x, 1))
//! ```
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::lens::fast;
use crate::lens::rng::Rng;
use crate::lens::{LensError, Result};
use glassbox_kernels as kernels;

/// `config.json` of a vision model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    /// Always `glassbox_cnn`: says which reader the folder is for.
    pub model_type: String,
    /// Height and width of the (square) input image.
    pub image_size: usize,
    pub in_channels: usize,
    /// Output channels of conv1, conv2, ...
    pub channels: Vec<usize>,
    /// Square kernels, stride 1.
    pub kernel_size: usize,
    pub padding: usize,
    /// Whether a 2x2 max-pool (stride 2) follows each conv's ReLU.
    pub pool: Vec<bool>,
    pub num_classes: usize,
    /// What each class index means (digits "0".."9").
    #[serde(default)]
    pub labels: Vec<String>,
}

impl VisionConfig {
    /// The shipped MNIST model's shape.
    pub fn mnist() -> Self {
        VisionConfig {
            model_type: "glassbox_cnn".into(),
            image_size: 28,
            in_channels: 1,
            channels: vec![8, 16, 32],
            kernel_size: 3,
            padding: 1,
            pool: vec![true, true, true],
            num_classes: 10,
            labels: (0..10).map(|d| d.to_string()).collect(),
        }
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let cfg: VisionConfig =
            serde_json::from_str(text).map_err(|e| LensError::Config(format!("not a vision model config ({e})")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config always serialises")
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LensError::Config(m));
        if self.model_type != "glassbox_cnn" {
            return bad(format!("model_type is `{}`, expected `glassbox_cnn`", self.model_type));
        }
        if self.channels.is_empty() || self.channels.contains(&0) || self.in_channels == 0 || self.num_classes == 0 {
            return bad("channels, in_channels and num_classes must be positive".into());
        }
        // Upper bounds before any size is multiplied out (a tampered `channels` or `image_size` would overflow
        // `fc_in` or allocate without end): far above what this playground's CNNs use.
        let widest = self.channels.iter().chain([&self.in_channels, &self.num_classes]).max().copied().unwrap_or(0);
        if self.channels.len() > 64 || widest > 4096 || self.image_size > 1024 || self.kernel_size > 31 {
            return bad(format!(
                "this playground runs at most 64 conv layers, 4,096 channels or classes, 1,024x1,024 images and \
                 31-wide kernels; the config has {} layers, {widest} channels or classes, {2}x{2} images and \
                 {1}-wide kernels",
                self.channels.len(),
                self.kernel_size,
                self.image_size,
            ));
        }
        if self.pool.len() != self.channels.len() {
            return bad(format!(
                "pool has {} entries but there are {} conv layers",
                self.pool.len(),
                self.channels.len()
            ));
        }
        if self.kernel_size == 0 || self.kernel_size.is_multiple_of(2) || 2 * self.padding + 1 != self.kernel_size {
            return bad(format!(
                "kernel_size {} with padding {} does not keep the image size",
                self.kernel_size, self.padding
            ));
        }
        if self.side(self.channels.len()) == 0 {
            return bad(format!("a {0}x{0} image is pooled away to nothing", self.image_size));
        }
        if !self.labels.is_empty() && self.labels.len() != self.num_classes {
            return bad(format!("{} labels for {} classes", self.labels.len(), self.num_classes));
        }
        Ok(())
    }

    /// Number of conv layers.
    pub fn n_conv(&self) -> usize {
        self.channels.len()
    }

    /// Side of the feature map after the first `layers` conv blocks (each pool halves it, rounding down).
    pub fn side(&self, layers: usize) -> usize {
        self.pool[..layers].iter().fold(self.image_size, |s, &p| if p { s / 2 } else { s })
    }

    /// Side of conv `l`'s output (1-based), before its pool.
    pub fn conv_side(&self, l: usize) -> usize {
        self.side(l - 1)
    }

    /// Inputs of the linear head.
    pub fn fc_in(&self) -> usize {
        let s = self.side(self.n_conv());
        self.channels[self.n_conv() - 1] * s * s
    }

    /// Input channels of conv `l` (1-based).
    pub fn conv_in(&self, l: usize) -> usize {
        if l == 1 {
            self.in_channels
        } else {
            self.channels[l - 2]
        }
    }

    /// Every tensor's PyTorch name and shape, in file order: the one place the names are written (loading,
    /// saving and `Cnn::init`, which draws in this order, all follow it).
    pub fn weight_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let k = self.kernel_size;
        let mut out = Vec::new();
        for l in 1..=self.n_conv() {
            let c = self.channels[l - 1];
            out.push((format!("conv{l}.weight"), vec![c, self.conv_in(l), k, k]));
            out.push((format!("conv{l}.bias"), vec![c]));
        }
        out.push(("fc.weight".into(), vec![self.num_classes, self.fc_in()]));
        out.push(("fc.bias".into(), vec![self.num_classes]));
        out
    }
}

/// A named activation. Layers count from 1, as in the weight names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VisionHook {
    /// `conv{l}`: conv layer `l` after its ReLU, `[b, channels, side, side]`.
    Conv(usize),
    /// `pool{l}`: the max-pool after conv `l`, `[b, channels, side / 2, side / 2]` (only where the config pools).
    Pool(usize),
    /// `logits`: `[b, num_classes]`, before softmax.
    Logits,
}

impl fmt::Display for VisionHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VisionHook::Conv(l) => write!(f, "conv{l}"),
            VisionHook::Pool(l) => write!(f, "pool{l}"),
            VisionHook::Logits => write!(f, "logits"),
        }
    }
}

impl FromStr for VisionHook {
    type Err = LensError;
    fn from_str(s: &str) -> Result<Self> {
        let num = |rest: &str| rest.parse::<usize>().ok().filter(|&l| l >= 1 && rest == l.to_string());
        let hook = if s == "logits" {
            Some(VisionHook::Logits)
        } else if let Some(rest) = s.strip_prefix("conv") {
            num(rest).map(VisionHook::Conv)
        } else if let Some(rest) = s.strip_prefix("pool") {
            num(rest).map(VisionHook::Pool)
        } else {
            None
        };
        hook.ok_or_else(|| LensError::UnknownHook(s.to_string()))
    }
}

/// Every activation of one forward pass, in order, keyed by hook.
#[derive(Clone, Debug, Default)]
pub struct VisionCache {
    pub entries: Vec<(VisionHook, Tensor)>,
}

impl VisionCache {
    pub fn get(&self, hook: VisionHook) -> Result<&Tensor> {
        self.entries
            .iter()
            .find(|(h, _)| *h == hook)
            .map(|(_, t)| t)
            .ok_or_else(|| LensError::UnknownHook(format!("{hook} (not computed by this model)")))
    }

    pub fn logits(&self) -> Result<&Tensor> {
        self.get(VisionHook::Logits)
    }

    /// One channel's map for batch item `item`: `side * side` values, row-major.
    pub fn channel(&self, hook: VisionHook, item: usize, channel: usize) -> Result<Vec<f32>> {
        let t = self.get(hook)?;
        let (b, c, _, _) = t.dims4().map_err(|_| LensError::Input(format!("{hook} has no channels")))?;
        if item >= b || channel >= c {
            return Err(LensError::Input(format!(
                "{hook}: item {item} / channel {channel} is outside {b} items x {c} channels"
            )));
        }
        Ok(t.get(item)?.get(channel)?.flatten_all()?.to_vec1()?)
    }

    /// One value: `channel` at (`y`, `x`) of a conv/pool map, or class `channel` of the logits (y = x = 0).
    pub fn unit(&self, hook: VisionHook, item: usize, channel: usize, y: usize, x: usize) -> Result<f32> {
        let t = self.get(hook)?;
        let out = match hook {
            VisionHook::Logits => t.get(item)?.get(channel)?,
            _ => t.get(item)?.get(channel)?.get(y)?.get(x)?,
        };
        Ok(out.to_scalar()?)
    }
}

#[derive(Clone, Debug)]
struct Conv {
    w: Tensor, // [out, in, k, k]
    b: Tensor, // [out]
}

#[derive(Clone, Debug)]
pub struct Cnn {
    pub cfg: VisionConfig,
    convs: Vec<Conv>,
    fc_w: Tensor, // [classes, fc_in]
    fc_b: Tensor, // [classes]
}

impl Cnn {
    /// Builds a model from PyTorch-named tensors, checking every name, shape and value.
    pub fn from_tensors(cfg: VisionConfig, mut map: HashMap<String, Tensor>) -> Result<Self> {
        cfg.validate()?;
        let mut take = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let t = map.remove(name).ok_or_else(|| LensError::Weights(format!("tensor `{name}` is missing")))?;
            if t.dims() != shape {
                return Err(LensError::Weights(format!(
                    "tensor `{name}` has shape {:?}, expected {shape:?}",
                    t.dims()
                )));
            }
            let t = t.to_dtype(DType::F32)?;
            if t.flatten_all()?.to_vec1::<f32>()?.iter().any(|v| !v.is_finite()) {
                return Err(LensError::Weights(format!("tensor `{name}` contains NaN or infinite values")));
            }
            Ok(t)
        };
        // `weight_shapes` order: (weight, bias) of conv1, conv2, ..., then fc (see `tensors`).
        let mut tensors = cfg.weight_shapes().into_iter().map(|(name, shape)| take(&name, &shape));
        let mut next = || tensors.next().expect("weight_shapes lists every tensor");
        let mut convs = Vec::new();
        for _ in 0..cfg.n_conv() {
            convs.push(Conv { w: next()?, b: next()? });
        }
        let (fc_w, fc_b) = (next()?, next()?);
        Ok(Cnn { cfg, convs, fc_w, fc_b })
    }

    /// Loads `config.json` text and `model.safetensors` bytes, as fetched by the app or read from disk.
    pub fn from_bytes(config_json: &str, safetensors: &[u8]) -> Result<Self> {
        let cfg = VisionConfig::from_json(config_json)?;
        let map = candle_core::safetensors::load_buffer(safetensors, &Device::Cpu)
            .map_err(|e| LensError::Weights(format!("not a readable safetensors file ({e})")))?;
        Self::from_tensors(cfg, map)
    }

    /// Every weight under its PyTorch name, detached and contiguous, ready for `model.safetensors`.
    pub fn to_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let names = self.cfg.weight_shapes().into_iter().map(|(name, _)| name);
        names.zip(self.tensors()).map(|(n, t)| Ok((n, t.detach().contiguous()?))).collect()
    }

    /// Every weight in `VisionConfig::weight_shapes` order, the one list of the names.
    fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        self.convs.iter().flat_map(|c| [&c.w, &c.b]).chain([&self.fc_w, &self.fc_b])
    }

    /// A fresh model for training: He-normal weights (std sqrt(2 / fan_in), suited to ReLU), zero biases.
    /// Returns the trainable variables with their names.
    pub fn init(cfg: VisionConfig, rng: &mut Rng) -> Result<(Self, Vec<(String, Var)>)> {
        let mut map = HashMap::new();
        let mut vars = Vec::new();
        for (name, shape) in cfg.weight_shapes() {
            let t = init_tensor(&name, &shape, rng)?;
            let var = Var::from_tensor(&t)?;
            map.insert(name.clone(), var.as_tensor().clone());
            vars.push((name, var));
        }
        Ok((Self::from_tensors(cfg, map)?, vars))
    }

    /// A copy whose layer `name` (`conv2`, `fc`, ...) holds fresh random weights drawn as at initialisation.
    pub fn with_random_layer(&self, name: &str, rng: &mut Rng) -> Result<Self> {
        let mut map: HashMap<String, Tensor> = self.to_tensors()?.into_iter().collect();
        let mut found = false;
        for (n, shape) in self.cfg.weight_shapes() {
            if n.split('.').next() == Some(name) {
                // The bias gets the weight's scale too: a zero bias would leave part of the layer's signal intact.
                let t = if n.ends_with(".bias") {
                    init_tensor(&format!("{name}.weight"), &[shape[0], 1], rng)?.reshape(shape)?
                } else {
                    init_tensor(&n, &shape, rng)?
                };
                map.insert(n, t);
                found = true;
            }
        }
        if !found {
            return Err(LensError::Input(format!("the model has no layer `{name}`")));
        }
        Self::from_tensors(self.cfg.clone(), map)
    }

    /// Layer names from the input up: `conv1`, `conv2`, ..., `fc`.
    pub fn layer_names(&self) -> Vec<String> {
        (1..=self.cfg.n_conv()).map(|l| format!("conv{l}")).chain(["fc".to_string()]).collect()
    }

    /// Every hook this model computes, in order.
    pub fn hooks(&self) -> Vec<VisionHook> {
        let mut out = Vec::new();
        for l in 1..=self.cfg.n_conv() {
            out.push(VisionHook::Conv(l));
            if self.cfg.pool[l - 1] {
                out.push(VisionHook::Pool(l));
            }
        }
        out.push(VisionHook::Logits);
        out
    }

    /// Conv `l`'s kernel `[out, in, k, k]` and bias `[out]` (1-based).
    pub fn conv_weights(&self, l: usize) -> Result<(&Tensor, &Tensor)> {
        let c = self
            .convs
            .get(l.wrapping_sub(1))
            .ok_or_else(|| LensError::Input(format!("the model has no layer conv{l}")))?;
        Ok((&c.w, &c.b))
    }

    /// The linear head: weight `[classes, fc_in]` and bias `[classes]`.
    pub fn fc_weights(&self) -> (&Tensor, &Tensor) {
        (&self.fc_w, &self.fc_b)
    }

    /// Checks that `x` is a batch of images this model reads: `[b, in_channels, size, size]`.
    fn check_input(&self, x: &Tensor) -> Result<()> {
        let s = self.cfg.image_size;
        match x.dims4() {
            Ok((b, c, h, w)) if b > 0 && c == self.cfg.in_channels && h == s && w == s => Ok(()),
            _ => Err(LensError::Input(format!(
                "expected images of shape [batch, {}, {s}, {s}], got {:?}",
                self.cfg.in_channels,
                x.dims()
            ))),
        }
    }

    /// The forward pass up to and including `stop` (the whole model when None), recording every activation.
    /// Stopping early saves the work after a feature-visualization target.
    pub fn forward_to(&self, x: &Tensor, stop: Option<VisionHook>) -> Result<VisionCache> {
        self.check_input(x)?;
        let mut cache = VisionCache::default();
        let mut h = x.clone();
        for (i, conv) in self.convs.iter().enumerate() {
            let l = i + 1;
            let c = conv.w.dim(0)?;
            h = if fast::plain(&[&h, &conv.w, &conv.b]) {
                conv_bias_relu(&h, &conv.w, &conv.b, self.cfg.padding)?
            } else {
                h.conv2d(&conv.w, self.cfg.padding, 1, 1, 1)?.broadcast_add(&conv.b.reshape((1, c, 1, 1))?)?.relu()?
            };
            cache.entries.push((VisionHook::Conv(l), h.clone())); // [b, c, side, side]
            if stop == Some(VisionHook::Conv(l)) {
                return Ok(cache);
            }
            if self.cfg.pool[i] {
                h = max_pool2(&h)?;
                cache.entries.push((VisionHook::Pool(l), h.clone())); // [b, c, side / 2, side / 2]
                if stop == Some(VisionHook::Pool(l)) {
                    return Ok(cache);
                }
            }
        }
        let flat = h.flatten_from(1)?; // [b, fc_in], channel-major like torch.flatten
        let w = self.fc_w.t()?; // fc_w is [classes, fc_in], as torch keeps it: read transposed in place
        let logits = if fast::plain(&[&flat, &w, &self.fc_b]) {
            fast::linear(&flat, &w, &self.fc_b)?
        } else {
            flat.matmul(&w)?.broadcast_add(&self.fc_b)?
        }; // [b, classes]
        cache.entries.push((VisionHook::Logits, logits));
        match stop {
            Some(hook) if hook != VisionHook::Logits => {
                Err(LensError::UnknownHook(format!("{hook} (not computed by this model)")))
            }
            _ => Ok(cache),
        }
    }

    /// Logits `[b, classes]` and every activation.
    pub fn run_with_cache(&self, x: &Tensor) -> Result<(Tensor, VisionCache)> {
        let cache = self.forward_to(x, None)?;
        Ok((cache.logits()?.clone(), cache))
    }

    /// Logits `[b, classes]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.run_with_cache(x)?.0)
    }

    /// Class probabilities of one image (`image_size`² pixels, row-major, in [0, 1]).
    pub fn predict(&self, pixels: &[f32]) -> Result<Vec<f32>> {
        let logits = self.forward(&self.image(pixels)?)?;
        Ok(candle_nn::ops::softmax_last_dim(&logits)?.get(0)?.to_vec1()?)
    }

    /// One image as a `[1, in_channels, size, size]` tensor, checking its length and values.
    pub fn image(&self, pixels: &[f32]) -> Result<Tensor> {
        images_tensor(&self.cfg, pixels, 1)
    }
}

/// `relu(conv2d(x, w) + b)` with no gradient to take: `glassbox_kernels::conv2d`, a direct convolution that beats
/// candle's im2col + matrix product on these small maps (it copied every input value k² times; measured: 57 % of
/// the MNIST model's forward). Equal to candle's ops to float rounding (tests/kernels.rs).
fn conv_bias_relu(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> Result<Tensor> {
    let (batch, c_in, h, wd) = x.dims4()?;
    let (c_out, _, k, _) = w.dims4()?;
    let shape = kernels::Conv { batch, c_in, h, w: wd, c_out, k, pad };
    let (oh, ow) = shape.out_side();
    let bias = b.to_vec1::<f32>()?;
    let out = fast::read(x, |x| fast::read(w, |w| kernels::conv2d(x, w, Some(&bias), true, shape)))??;
    Ok(Tensor::from_vec(out, (batch, c_out, oh, ow), x.device())?)
}

/// `n` images (row-major, concatenated) as a `[n, in_channels, size, size]` tensor.
pub fn images_tensor(cfg: &VisionConfig, pixels: &[f32], n: usize) -> Result<Tensor> {
    let s = cfg.image_size;
    let want = n * cfg.in_channels * s * s;
    if pixels.len() != want {
        return Err(LensError::Input(format!(
            "expected {want} pixel values ({n} images of {s}x{s}), got {}",
            pixels.len()
        )));
    }
    if pixels.iter().any(|v| !v.is_finite()) {
        return Err(LensError::Input("the image contains NaN or infinite values".into()));
    }
    Ok(Tensor::from_slice(pixels, (n, cfg.in_channels, s, s), &Device::Cpu)?)
}

/// 2x2 max-pool with stride 2, dropping a last odd row and column as `torch.nn.functional.max_pool2d` does.
///
/// Not candle's `max_pool2d`: candle 0.11's backward pass for it multiplies the gradient by the fraction of
/// maxima in each window (1/4 for a single maximum) instead of passing it through, so input gradients came
/// out 64 times too small after three pools. A plain max reduction is no better on ties, which are common
/// here (a dark region gives four equal ReLU(bias) values): it passes the full gradient to every tied
/// maximum, and integrated gradients then missed completeness by 12 %. So the pool is written as a weighted
/// sum `sum(x * w)` over each window, where `w` (held constant, outside autograd) is 1 / (number of maxima)
/// at the maxima and 0 elsewhere: the value is exactly the maximum, and the gradient is shared equally among
/// tied maxima, which is a true (sub)gradient of the max.
pub fn max_pool2(x: &Tensor) -> Result<Tensor> {
    if !x.track_op() {
        // No gradient will be taken through this call (a prediction, or the hand-written backward pass of
        // `input_gradient`): plain loops, several times faster than the strided tensor ops below.
        return max_pool2_plain(x);
    }
    let (b, c, h, w) = x.dims4()?;
    let (h2, w2) = (h / 2, w / 2);
    let x =
        if h % 2 == 1 || w % 2 == 1 { x.narrow(2, 0, 2 * h2)?.narrow(3, 0, 2 * w2)?.contiguous()? } else { x.clone() };
    // [b, c, h / 2, w / 2, 4]: each window's four values last.
    let windows = x.reshape((b, c, h2, 2, w2, 2))?.permute((0, 1, 2, 4, 3, 5))?.reshape((b, c, h2, w2, 4))?;
    let plain = windows.detach();
    let is_max = plain.broadcast_eq(&plain.max_keepdim(4)?)?.to_dtype(DType::F32)?;
    let share = is_max.broadcast_div(&is_max.sum_keepdim(4)?)?;
    Ok((windows * share)?.sum(4)?) // [b, c, h / 2, w / 2]
}

/// `max_pool2` without autograd: `glassbox_kernels::max_pool2`.
fn max_pool2_plain(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let out = fast::read(x, |x| kernels::max_pool2(x, b * c, h, w))?;
    Ok(Tensor::from_vec(out, (b, c, h / 2, w / 2), x.device())?)
}

/// The gradient of `max_pool2` with respect to its input `x` `[b, c, h, w]`, given the gradient at its
/// output `[b, c, h / 2, w / 2]`: each window's gradient goes to its maxima, shared equally among ties (the
/// subgradient `max_pool2` defines); a last odd row or column, which the pool drops, gets zero.
pub fn max_pool2_backward(x: &Tensor, grad_out: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (h2, w2) = (h / 2, w / 2);
    if grad_out.dims() != [b, c, h2, w2] {
        return Err(LensError::Input(format!(
            "pool gradient {:?} does not match input {:?}",
            grad_out.dims(),
            x.dims()
        )));
    }
    // Values only: this is the hand-written backward pass, never differentiated itself.
    let out = kernels::max_pool2_backward(&fast::values(x)?, &fast::values(grad_out)?, b * c, h, w);
    Ok(Tensor::from_vec(out, (b, c, h, w), x.device())?)
}

fn init_tensor(name: &str, shape: &[usize], rng: &mut Rng) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = if name.ends_with(".bias") {
        vec![0.0; n]
    } else {
        let fan_in: usize = shape[1..].iter().product();
        let std = (2.0 / fan_in as f32).sqrt();
        (0..n).map(|_| rng.normal() * std).collect()
    };
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_sizes_that_would_overflow() {
        // From the fuzz harness (`tests/fuzz.rs`): a huge channel count overflowed `fc_in`'s multiplication.
        let mut c = VisionConfig::mnist();
        c.channels[2] = usize::MAX / 2;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("at most 64 conv layers"), "{e}");
        assert!(VisionConfig::mnist().validate().is_ok());
    }

    #[test]
    fn hook_names_round_trip() {
        let model = Cnn::init(VisionConfig::mnist(), &mut Rng::new(0)).unwrap().0;
        let names: Vec<String> = model.hooks().iter().map(|h| h.to_string()).collect();
        assert_eq!(names, ["conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "logits"]);
        for h in model.hooks() {
            assert_eq!(h.to_string().parse::<VisionHook>().unwrap(), h);
        }
        for bad in ["conv0", "conv", "pool01", "Conv1", "logit", "conv1 "] {
            assert!(bad.parse::<VisionHook>().is_err(), "{bad}");
        }
    }

    #[test]
    fn max_pool_takes_window_maxima_and_passes_the_gradient_to_them() {
        // A 5x5 map: the last row and column are dropped, as in torch.
        let data: Vec<f32> = (0..25).map(|i| ((i * 7) % 11) as f32).collect();
        let x = Var::from_tensor(&Tensor::from_vec(data.clone(), (1, 1, 5, 5), &Device::Cpu).unwrap()).unwrap();
        let y = max_pool2(x.as_tensor()).unwrap();
        let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        let want: Vec<f32> = [(0, 0), (0, 2), (2, 0), (2, 2)]
            .iter()
            .map(|&(r, c)| {
                [data[r * 5 + c], data[r * 5 + c + 1], data[(r + 1) * 5 + c], data[(r + 1) * 5 + c + 1]]
                    .into_iter()
                    .fold(f32::MIN, f32::max)
            })
            .collect();
        assert_eq!(got, want);
        let g: Vec<f32> = y
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // Gradient 1 at each window's (unique) maximum, 0 elsewhere, including the dropped row and column.
        // (Ties are checked below.)
        assert_eq!(g.iter().sum::<f32>(), 4.0);
        for (i, &gi) in g.iter().enumerate() {
            let (r, c) = (i / 5, i % 5);
            let is_max = r < 4 && c < 4 && data[i] == want[(r / 2) * 2 + c / 2];
            assert_eq!(gi, if is_max { 1.0 } else { 0.0 }, "pixel {r},{c}");
        }
        // A window of four equal values (a dark region after ReLU) shares the gradient: 1/4 each.
        let x = Var::from_tensor(&Tensor::from_vec(vec![0.5f32, 0.5, 0.5, 0.5], (1, 1, 2, 2), &Device::Cpu).unwrap())
            .unwrap();
        let y = max_pool2(x.as_tensor()).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), [0.5]);
        let g = y
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(g, [0.25; 4]);
    }

    #[test]
    fn shapes_follow_the_config() {
        let cfg = VisionConfig::mnist();
        assert_eq!(cfg.fc_in(), 32 * 3 * 3);
        let model = Cnn::init(cfg, &mut Rng::new(0)).unwrap().0;
        let x = Tensor::zeros((2, 1, 28, 28), DType::F32, &Device::Cpu).unwrap();
        let (_, cache) = model.run_with_cache(&x).unwrap();
        let dims: Vec<Vec<usize>> = cache.entries.iter().map(|(_, t)| t.dims().to_vec()).collect();
        assert_eq!(
            dims,
            [
                vec![2, 8, 28, 28],
                vec![2, 8, 14, 14],
                vec![2, 16, 14, 14],
                vec![2, 16, 7, 7],
                vec![2, 32, 7, 7],
                vec![2, 32, 3, 3],
                vec![2, 10]
            ]
        );
    }
}

#[cfg(test)]
mod plain_pool_tests {
    use super::*;

    /// The loop version of the pool (used when no gradient is tracked) and its backward pass agree with the
    /// autograd version, on random maps (odd and even sizes) and on ties.
    #[test]
    fn plain_pool_and_its_backward_match_autograd() {
        let mut rng = Rng::new(4);
        for (h, w) in [(28, 28), (7, 7), (5, 6), (2, 2)] {
            for ties in [false, true] {
                let data: Vec<f32> = (0..2 * 3 * h * w)
                    .map(|_| if ties { (rng.uniform() * 2.0).floor() } else { rng.normal() })
                    .collect();
                let x = Tensor::from_vec(data, (2, 3, h, w), &Device::Cpu).unwrap();
                let var = Var::from_tensor(&x).unwrap();
                let tracked = max_pool2(var.as_tensor()).unwrap();
                let plain = max_pool2(&x).unwrap();
                assert_eq!(
                    plain.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                    tracked.flatten_all().unwrap().to_vec1::<f32>().unwrap()
                );
                let gout = Tensor::from_vec(
                    (0..tracked.elem_count()).map(|_| rng.normal()).collect::<Vec<f32>>(),
                    tracked.dims(),
                    &Device::Cpu,
                )
                .unwrap();
                let want = (tracked * &gout)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap()
                    .get(var.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let got = max_pool2_backward(&x, &gout).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(worst < 1e-6, "{h}x{w} ties {ties}: {worst}");
            }
        }
    }
}
