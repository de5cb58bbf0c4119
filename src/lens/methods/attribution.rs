//! Which pixels matter: input gradients of a target and the saliency methods built on them, plus the
//! weight-randomisation sanity check (Adebayo et al. 2018).
//!
//! Every method takes one image (`image_size`² values, row-major, in [0, 1]) and returns a `Saliency` map of
//! the same size. Signs are kept: a positive value means "more of this pixel raises the target".
use candle_core::{Tensor, Var};

use crate::lens::cnn::model::{images_tensor, Cnn, VisionCache, VisionHook};
use crate::lens::fast;
use crate::lens::rng::Rng;
use crate::lens::{LensError, Result};

/// What a gradient or a feature visualization is taken of.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// The logit (before softmax) of one class.
    Class(usize),
    /// The mean over positions of one channel of a conv or pool activation. This is the measure used
    /// throughout the lab for "how active is a channel": feature visualization maximises it, and the top
    /// activating examples are ranked by it.
    Channel { hook: VisionHook, channel: usize },
    /// One unit: a channel at one position (`y`, `x`) of a conv or pool activation.
    Unit { hook: VisionHook, channel: usize, y: usize, x: usize },
}

impl Target {
    /// The activation the target reads.
    pub fn hook(&self) -> VisionHook {
        match *self {
            Target::Class(_) => VisionHook::Logits,
            Target::Channel { hook, .. } | Target::Unit { hook, .. } => hook,
        }
    }

    /// The target's value for each image of a forward pass that reached `self.hook()`: `[b]`.
    pub fn values(&self, cache: &VisionCache) -> Result<Tensor> {
        let t = cache.get(self.hook())?;
        let oob = |what: String| LensError::Input(format!("{what} is outside {} {:?}", self.hook(), &t.dims()[1..]));
        match *self {
            Target::Class(c) => {
                if c >= t.dim(1)? {
                    return Err(oob(format!("class {c}")));
                }
                Ok(t.narrow(1, c, 1)?.squeeze(1)?)
            }
            Target::Channel { hook, channel } => {
                let (_, ch, _, _) =
                    t.dims4().map_err(|_| LensError::Input(format!("{hook} has no channels; use a class target")))?;
                if channel >= ch {
                    return Err(oob(format!("channel {channel}")));
                }
                Ok(t.narrow(1, channel, 1)?.flatten_from(1)?.mean(1)?)
            }
            Target::Unit { hook, channel, y, x } => {
                let (_, ch, h, w) =
                    t.dims4().map_err(|_| LensError::Input(format!("{hook} has no channels; use a class target")))?;
                if channel >= ch || y >= h || x >= w {
                    return Err(oob(format!("unit (channel {channel}, y {y}, x {x})")));
                }
                Ok(t.narrow(1, channel, 1)?.narrow(2, y, 1)?.narrow(3, x, 1)?.flatten_from(1)?.squeeze(1)?)
            }
        }
    }
}

impl Cnn {
    /// The target's value for each image of `x` `[b, 1, s, s]`, running the model only as far as needed.
    pub fn target_values(&self, x: &Tensor, target: Target) -> Result<Tensor> {
        target.values(&self.forward_to(x, Some(target.hook()))?)
    }
}

/// Target values `[b]` and their gradients with respect to each input image `[b, 1, s, s]`.
/// The images are independent, so the gradient of the batch's sum is each image's own gradient.
///
/// The backward pass is written out by hand rather than left to autograd: candle 0.11 computes a conv's
/// input gradient with a direct (unvectorised) transposed convolution, which made a 50-step integrated
/// gradients map cost ~100 ms in the browser. Here the gradient through a conv is itself a conv (with the
/// kernel flipped and its channel axes swapped), which runs through im2col and a matrix multiply. The
/// autograd version, `input_gradient_autograd`, is kept as the independent computation the tests compare with.
/// At a pre-activation of exactly 0 the ReLU passes no gradient, as in PyTorch (candle's autograd passes it);
/// that only matters for untrained layers with zero biases, whose black background sits exactly at 0.
pub fn input_gradient(model: &Cnn, x: &Tensor, target: Target) -> Result<(Tensor, Tensor)> {
    let cache = model.forward_to(x, Some(target.hook()))?;
    let values = target.values(&cache)?;
    let b = x.dim(0)?;
    let cfg = &model.cfg;
    // d target / d (the target's hook activation)
    let at = cache.get(target.hook())?;
    let mut grad = match target {
        Target::Class(c) => {
            // d logit_c / d flat = row c of the head's weight, for every image.
            let (fc_w, _) = model.fc_weights();
            let last = cache.entries.iter().rev().find(|(h, _)| *h != VisionHook::Logits).map(|(_, t)| t.clone());
            let last = last.ok_or_else(|| LensError::Input("the model has no conv layer".into()))?;
            fc_w.narrow(0, c, 1)?.broadcast_as((b, fc_w.dim(1)?))?.reshape(last.dims())?
        }
        Target::Channel { channel, .. } => {
            let (_, ch, h, w) = at.dims4()?;
            one_hot_channel(b, ch, h, w, channel, None, 1.0 / (h * w) as f32)?
        }
        Target::Unit { channel, y, x: col, .. } => {
            let (_, ch, h, w) = at.dims4()?;
            one_hot_channel(b, ch, h, w, channel, Some((y, col)), 1.0)?
        }
    };
    // Walk back from the target's layer to the input.
    let hooks: Vec<VisionHook> = cache.entries.iter().map(|(h, _)| *h).filter(|h| *h != VisionHook::Logits).collect();
    for hook in hooks.iter().rev() {
        match *hook {
            VisionHook::Pool(l) => {
                // Max-pool: the gradient goes to the window's maxima, shared equally among ties, exactly as
                // `max_pool2` defines its (sub)gradient.
                grad = crate::lens::cnn::model::max_pool2_backward(cache.get(VisionHook::Conv(l))?, &grad)?;
            }
            VisionHook::Conv(l) => {
                // ReLU: only where the unit is active (PyTorch's convention at exactly 0). Values only, here and
                // below: this backward pass is written out by hand, never differentiated itself.
                let post = cache.get(*hook)?;
                let post = fast::values(post)?;
                grad = fast::map(&grad, &mut |g, out| {
                    out.copy_from_slice(g);
                    glassbox_kernels::relu_backward(out, &post);
                })?;
                // The conv's input gradient: a conv with the kernel rotated by 180° and in/out swapped.
                let (w, _) = model.conv_weights(l)?;
                let (c_out, c_in, k, _) = w.dims4()?;
                let flipped = glassbox_kernels::flip_transpose(&fast::values(w)?, c_out, c_in, k);
                let flipped = Tensor::from_vec(flipped, (c_in, c_out, k, k), w.device())?;
                grad = conv2d_direct(&grad, &flipped, k - 1 - cfg.padding)?;
            }
            VisionHook::Logits => {}
        }
    }
    check_finite(&grad, "the gradient")?;
    Ok((values, grad))
}

/// A stride-1 convolution with zero padding `pad` (no bias), `x` `[b, ci, h, w]`, `w` `[co, ci, k, k]`, as
/// plain loops (`glassbox_kernels::conv2d`). For these small maps it beats candle's im2col + matrix multiply
/// (which copies every input value k² times), above all for a single output channel.
fn conv2d_direct(x: &Tensor, w: &Tensor, pad: usize) -> Result<Tensor> {
    let (b, ci, h, wd) = x.dims4()?;
    let (co, ci2, k, k2) = w.dims4()?;
    if ci != ci2 || k != k2 || 2 * pad + 1 != k {
        return Err(LensError::Input(format!(
            "conv2d_direct: input {:?}, kernel {:?}, padding {pad}",
            x.dims(),
            w.dims()
        )));
    }
    let shape = glassbox_kernels::Conv { batch: b, c_in: ci, h, w: wd, c_out: co, k, pad };
    let out = glassbox_kernels::conv2d(&fast::values(x)?, &fast::values(w)?, None, false, shape);
    Ok(Tensor::from_vec(out, (b, co, h, wd), x.device())?)
}

/// `[b, ch, h, w]` zeros with `value` on `channel` (everywhere, or at one position).
fn one_hot_channel(
    b: usize,
    ch: usize,
    h: usize,
    w: usize,
    channel: usize,
    at: Option<(usize, usize)>,
    value: f32,
) -> Result<Tensor> {
    let mut data = vec![0f32; ch * h * w];
    match at {
        Some((y, x)) => data[channel * h * w + y * w + x] = value,
        None => data[channel * h * w..(channel + 1) * h * w].fill(value),
    }
    Ok(Tensor::from_vec(data, (1, ch, h, w), &candle_core::Device::Cpu)?.broadcast_as((b, ch, h, w))?.contiguous()?)
}

/// The same as `input_gradient`, by candle's autograd: slower, and kept as an independent check.
pub fn input_gradient_autograd(model: &Cnn, x: &Tensor, target: Target) -> Result<(Tensor, Tensor)> {
    let var = Var::from_tensor(x)?;
    let values = model.target_values(var.as_tensor(), target)?;
    let grads = values.sum_all()?.backward()?;
    // A target that does not depend on the input at all (a dead unit) has no gradient entry: it is zero.
    let g = match grads.get(var.as_tensor()) {
        Some(g) => g.clone(),
        None => x.zeros_like()?,
    };
    let values = values.detach();
    check_finite(&g, "the gradient")?;
    Ok((values, g))
}

fn check_finite(t: &Tensor, what: &str) -> Result<()> {
    if t.flatten_all()?.to_vec1::<f32>()?.iter().any(|v| !v.is_finite()) {
        return Err(LensError::NotFinite(what.into()));
    }
    Ok(())
}

/// A saliency map for one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Saliency {
    pub side: usize,
    /// `side * side` attributions, row-major, signed.
    pub map: Vec<f32>,
    /// The target's value on the image.
    pub value: f32,
    /// The target's value on the baseline (integrated gradients and occlusion), so a view can show
    /// completeness: for integrated gradients `map` sums to `value - baseline_value`.
    pub baseline_value: Option<f32>,
}

fn values_of(model: &Cnn, x: &Tensor, target: Target) -> Result<Vec<f32>> {
    Ok(model.target_values(x, target)?.to_vec1()?)
}

/// A saliency method with its settings: what `SaliencyRun` computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SaliencyMethod {
    /// `vanilla_gradient`.
    Gradient,
    /// `gradient_x_input`.
    GradientXInput,
    /// `integrated_gradients` from a black image.
    IntegratedGradients { steps: usize },
    /// `smoothgrad`.
    SmoothGrad { sigma: f32, n: usize, seed: u64 },
    /// `occlusion`.
    Occlusion { patch: usize, stride: usize, fill: f32 },
}

/// Images per step of a `SaliencyRun` whose images need a gradient (a forward and a backward pass each)...
const GRADIENTS_PER_STEP: usize = 2;
/// ... and whose images need only the target's value (occlusion). A step stays a few milliseconds in a
/// browser, so a job's slices stay short.
const VALUES_PER_STEP: usize = 8;

/// How a method turns its images' values and gradients into a map.
enum Reduce {
    Gradient,
    GradientXInput,
    /// The trapezoid weights along the path from `baseline` over `steps` intervals.
    Integrated {
        steps: usize,
        baseline: Vec<f32>,
    },
    /// The mean of `n` gradients; the target's value on the clean image, measured up front.
    Smooth {
        n: usize,
        value: f32,
    },
    /// The placements of the patch; the batch's first two images are the whole image and the blank one.
    Occlusion {
        patch: usize,
        places: Vec<(usize, usize)>,
    },
}

/// One saliency map computed a few images at a time (`step`), so that the browser can compute it between
/// frames. Every method is a batch of images whose target values (and for all but occlusion, gradients) are
/// reduced to a map; a step takes the next fixed handful, so the map does not depend on how the steps are
/// spread over time. The one-shot functions (`vanilla_gradient`, ...) run the same steps to the end, so both
/// give identical maps.
pub struct SaliencyRun {
    model: Cnn,
    target: Target,
    image: Vec<f32>,
    /// The images the method evaluates, concatenated.
    batch: Vec<f32>,
    n: usize,
    /// Whether the batch needs gradients, or only values.
    gradients: bool,
    done: usize,
    values: Vec<f32>,
    /// The running weighted sum of the gradients (every method but occlusion).
    sum: Vec<f32>,
    reduce: Reduce,
}

impl SaliencyRun {
    /// A run of `method` on one image (`image_size`² values, row-major, in [0, 1]).
    pub fn new(model: &Cnn, image: &[f32], target: Target, method: SaliencyMethod) -> Result<Self> {
        match method {
            SaliencyMethod::Gradient => Self::with(model, image, target, image.to_vec(), 1, true, Reduce::Gradient),
            SaliencyMethod::GradientXInput => {
                Self::with(model, image, target, image.to_vec(), 1, true, Reduce::GradientXInput)
            }
            SaliencyMethod::IntegratedGradients { steps } => Self::integrated(model, image, target, None, steps),
            SaliencyMethod::SmoothGrad { sigma, n, seed } => Self::smooth(model, image, target, sigma, n, seed),
            SaliencyMethod::Occlusion { patch, stride, fill } => {
                Self::occlusion(model, image, target, patch, stride, fill)
            }
        }
    }

    fn with(
        model: &Cnn,
        image: &[f32],
        target: Target,
        batch: Vec<f32>,
        n: usize,
        gradients: bool,
        reduce: Reduce,
    ) -> Result<Self> {
        images_tensor(&model.cfg, image, 1)?; // the image's size and values, checked before any work
        let sum = vec![0.0; if gradients { image.len() } else { 0 }];
        let (model, image) = (model.clone(), image.to_vec());
        Ok(SaliencyRun { model, target, image, batch, n, gradients, done: 0, values: Vec::new(), sum, reduce })
    }

    fn integrated(model: &Cnn, image: &[f32], target: Target, baseline: Option<&[f32]>, steps: usize) -> Result<Self> {
        if steps == 0 {
            return Err(LensError::Input("integrated gradients needs at least one step".into()));
        }
        let base = baseline.map(<[f32]>::to_vec).unwrap_or_else(|| vec![0.0; image.len()]);
        if base.len() != image.len() {
            return Err(LensError::Input(format!("the baseline has {} values, the image {}", base.len(), image.len())));
        }
        let mut path = Vec::with_capacity((steps + 1) * image.len());
        for k in 0..=steps {
            let a = k as f32 / steps as f32;
            path.extend(image.iter().zip(&base).map(|(x, b)| b + a * (x - b)));
        }
        Self::with(model, image, target, path, steps + 1, true, Reduce::Integrated { steps, baseline: base })
    }

    fn smooth(model: &Cnn, image: &[f32], target: Target, sigma: f32, n: usize, seed: u64) -> Result<Self> {
        if n == 0 || !(sigma >= 0.0 && sigma.is_finite()) {
            return Err(LensError::Input(format!(
                "SmoothGrad needs n >= 1 and a finite sigma >= 0 (got n {n}, sigma {sigma})"
            )));
        }
        let mut rng = Rng::new(seed);
        let noisy: Vec<f32> =
            (0..n).flat_map(|_| image.iter().map(|x| x + sigma * rng.normal()).collect::<Vec<_>>()).collect();
        let value = values_of(model, &images_tensor(&model.cfg, image, 1)?, target)?[0];
        Self::with(model, image, target, noisy, n, true, Reduce::Smooth { n, value })
    }

    fn occlusion(model: &Cnn, image: &[f32], target: Target, patch: usize, stride: usize, fill: f32) -> Result<Self> {
        let s = model.cfg.image_size;
        images_tensor(&model.cfg, image, 1)?;
        if patch == 0 || patch > s || stride == 0 {
            return Err(LensError::Input(format!(
                "occlusion needs 1 <= patch <= {s} and stride >= 1 (got patch {patch}, stride {stride})"
            )));
        }
        let mut starts: Vec<usize> = (0..=s - patch).step_by(stride).collect();
        if *starts.last().unwrap() != s - patch {
            starts.push(s - patch);
        }
        let places: Vec<(usize, usize)> = starts.iter().flat_map(|&y| starts.iter().map(move |&x| (y, x))).collect();
        let mut batch = Vec::with_capacity((places.len() + 2) * image.len());
        batch.extend_from_slice(image);
        batch.extend(std::iter::repeat_n(fill, image.len()));
        for &(y0, x0) in &places {
            let mut im = image.to_vec();
            for y in y0..y0 + patch {
                im[y * s + x0..y * s + x0 + patch].fill(fill);
            }
            batch.extend(im);
        }
        let n = places.len() + 2;
        Self::with(model, image, target, batch, n, false, Reduce::Occlusion { patch, places })
    }

    /// Evaluates the next few images; `Ok(true)` once every image is done.
    pub fn step(&mut self) -> Result<bool> {
        if self.done < self.n {
            let px = self.image.len();
            let m = if self.gradients { GRADIENTS_PER_STEP } else { VALUES_PER_STEP }.min(self.n - self.done);
            let x = images_tensor(&self.model.cfg, &self.batch[self.done * px..(self.done + m) * px], m)?;
            if self.gradients {
                let (v, g) = input_gradient(&self.model, &x, self.target)?;
                self.values.extend(v.to_vec1::<f32>()?);
                for (i, row) in g.reshape((m, px))?.to_vec2::<f32>()?.into_iter().enumerate() {
                    self.add_gradient(self.done + i, &row);
                }
            } else {
                self.values.extend(values_of(&self.model, &x, self.target)?);
            }
            self.done += m;
        }
        Ok(self.done == self.n)
    }

    /// Adds the `k`-th image's gradient to the running sum, with its weight.
    fn add_gradient(&mut self, k: usize, g: &[f32]) {
        match self.reduce {
            Reduce::Integrated { steps, .. } => {
                let w = if k == 0 || k == steps { 0.5 } else { 1.0 } / steps as f32;
                for (a, gi) in self.sum.iter_mut().zip(g) {
                    *a += w * gi;
                }
            }
            Reduce::Smooth { n, .. } => {
                for (a, gi) in self.sum.iter_mut().zip(g) {
                    *a += gi / n as f32;
                }
            }
            Reduce::Gradient | Reduce::GradientXInput => self.sum.copy_from_slice(g),
            Reduce::Occlusion { .. } => {}
        }
    }

    /// The fraction of the images done.
    pub fn progress(&self) -> f32 {
        self.done as f32 / self.n as f32
    }

    /// The map, once `step` has said it is done.
    pub fn finish(self) -> Result<Saliency> {
        if self.done < self.n {
            return Err(LensError::Input(format!("the saliency map is not finished ({} of {})", self.done, self.n)));
        }
        let side = self.model.cfg.image_size;
        let (image, values, sum) = (self.image, self.values, self.sum);
        let (map, value, baseline_value) = match self.reduce {
            Reduce::Gradient => (sum, values[0], None),
            Reduce::GradientXInput => (sum.iter().zip(&image).map(|(g, x)| g * x).collect(), values[0], None),
            Reduce::Integrated { steps, baseline } => {
                let map = sum.iter().zip(image.iter().zip(&baseline)).map(|(g, (x, b))| g * (x - b)).collect();
                (map, values[steps], Some(values[0]))
            }
            Reduce::Smooth { value, .. } => (sum, value, None),
            Reduce::Occlusion { patch, places } => {
                let (full, blank) = (values[0], values[1]);
                let (mut total, mut count) = (vec![0.0f32; side * side], vec![0u32; side * side]);
                for (&(y0, x0), v) in places.iter().zip(&values[2..]) {
                    for y in y0..y0 + patch {
                        for x in x0..x0 + patch {
                            total[y * side + x] += full - v;
                            count[y * side + x] += 1;
                        }
                    }
                }
                let map = total.iter().zip(&count).map(|(a, &c)| a / c.max(1) as f32).collect();
                (map, full, Some(blank))
            }
        };
        Ok(Saliency { side, map, value, baseline_value })
    }

    /// Every step at once.
    pub fn run(mut self) -> Result<Saliency> {
        while !self.step()? {}
        self.finish()
    }
}

/// The gradient of the target with respect to each pixel (Simonyan et al. 2013).
pub fn vanilla_gradient(model: &Cnn, image: &[f32], target: Target) -> Result<Saliency> {
    SaliencyRun::new(model, image, target, SaliencyMethod::Gradient)?.run()
}

/// Gradient times input: each pixel's first-order contribution relative to a black image.
pub fn gradient_x_input(model: &Cnn, image: &[f32], target: Target) -> Result<Saliency> {
    SaliencyRun::new(model, image, target, SaliencyMethod::GradientXInput)?.run()
}

/// Integrated gradients (Sundararajan et al. 2017): `(x - baseline)` times the gradient averaged along the
/// straight path from the baseline to `x`, here with the trapezoid rule over `steps` intervals (`steps + 1`
/// gradient evaluations). The baseline is a black image unless given. By the completeness axiom the map sums
/// to `f(x) - f(baseline)`, up to the error of the quadrature.
pub fn integrated_gradients(
    model: &Cnn,
    image: &[f32],
    target: Target,
    baseline: Option<&[f32]>,
    steps: usize,
) -> Result<Saliency> {
    SaliencyRun::integrated(model, image, target, baseline, steps)?.run()
}

/// SmoothGrad (Smilkov et al. 2017): the gradient averaged over `n` copies of the image with Gaussian noise of
/// standard deviation `sigma` (in pixel units, where ink is 1) added to every pixel, drawn from `seed`.
pub fn smoothgrad(model: &Cnn, image: &[f32], target: Target, sigma: f32, n: usize, seed: u64) -> Result<Saliency> {
    SaliencyRun::smooth(model, image, target, sigma, n, seed)?.run()
}

/// Occlusion (Zeiler & Fergus 2014): slide a `patch` x `patch` square of value `fill` over the image with
/// `stride`, and give each pixel the mean drop of the target over the placements that cover it. The last
/// placement in each direction is moved to touch the edge so that every pixel is covered.
/// `baseline_value` is the target with the whole image set to `fill`.
pub fn occlusion(
    model: &Cnn,
    image: &[f32],
    target: Target,
    patch: usize,
    stride: usize,
    fill: f32,
) -> Result<Saliency> {
    SaliencyRun::occlusion(model, image, target, patch, stride, fill)?.run()
}

/// The cascading randomisation sanity check (Adebayo et al. 2018) built one layer per `step`: copies of the
/// model with its layers re-drawn at random from the top down, cumulatively. Level `k` (from 1) is the model
/// with its top `k` layers random: first `fc`, then `fc` and `conv3`, and so on down to every layer. A
/// saliency method whose maps barely change along the cascade is not explaining what the model learned.
pub struct SanityCascade {
    rng: Rng,
    /// The layers still to randomise, the next one last.
    todo: Vec<String>,
    levels: Vec<(String, Cnn)>,
    current: Cnn,
}

impl SanityCascade {
    pub fn new(model: &Cnn, seed: u64) -> Self {
        SanityCascade { rng: Rng::new(seed), todo: model.layer_names(), levels: Vec::new(), current: model.clone() }
    }

    /// Randomises the next layer down; `Ok(true)` once every layer is random.
    pub fn step(&mut self) -> Result<bool> {
        if let Some(name) = self.todo.pop() {
            self.current = self.current.with_random_layer(&name, &mut self.rng)?;
            self.levels.push((name, self.current.clone()));
        }
        Ok(self.todo.is_empty())
    }

    /// The levels built so far: `(deepest layer randomised, model)`, from the top down.
    pub fn levels(&self) -> &[(String, Cnn)] {
        &self.levels
    }

    /// The number of levels when every layer is random.
    pub fn depth(&self) -> usize {
        self.levels.len() + self.todo.len()
    }
}

/// The whole cascade at once: entry `i` is `(name, model)` where `name` is the deepest layer randomised so far.
pub fn sanity_cascade(model: &Cnn, seed: u64) -> Result<Vec<(String, Cnn)>> {
    let mut cascade = SanityCascade::new(model, seed);
    while !cascade.step()? {}
    Ok(cascade.levels)
}

/// The sanity check's figure for one image and method, in steps: the map on the trained model, then after each
/// level of the `SanityCascade` its Spearman rank correlation (`rank_correlation`, of absolute values) with that
/// first map. A `step` is one `SaliencyRun` step or one layer randomised, so the browser can run it between
/// frames; `sanity_correlations` runs it to the end.
pub struct SanityCorrelations {
    image: Vec<f32>,
    target: Target,
    method: SaliencyMethod,
    cascade: SanityCascade,
    /// The map being computed: the trained model's first, then each level's.
    run: Option<SaliencyRun>,
    original: Option<Vec<f32>>,
    correlations: Vec<(String, f32)>,
}

impl SanityCorrelations {
    pub fn new(model: &Cnn, image: &[f32], target: Target, method: SaliencyMethod, seed: u64) -> Result<Self> {
        Ok(SanityCorrelations {
            image: image.to_vec(),
            target,
            method,
            cascade: SanityCascade::new(model, seed),
            run: Some(SaliencyRun::new(model, image, target, method)?),
            original: None,
            correlations: Vec::new(),
        })
    }

    /// Computes part of a map, or randomises the next layer and starts its map; `Ok(true)` once every level
    /// has its correlation.
    pub fn step(&mut self) -> Result<bool> {
        let Some(run) = &mut self.run else {
            if self.cascade.step()? && self.correlations.len() == self.cascade.depth() {
                return Ok(true);
            }
            let (_, model) = self.cascade.levels().last().expect("a cascade step adds a level");
            self.run = Some(SaliencyRun::new(model, &self.image, self.target, self.method)?);
            return Ok(false);
        };
        if !run.step()? {
            return Ok(false);
        }
        let map = self.run.take().expect("a run is in progress").finish()?.map;
        match &self.original {
            None => self.original = Some(map),
            Some(original) => {
                let (name, _) = self.cascade.levels().last().expect("a level's map follows its randomisation");
                self.correlations.push((name.clone(), rank_correlation(original, &map)));
            }
        }
        Ok(self.correlations.len() == self.cascade.depth())
    }

    /// The share of the maps done, in [0, 1].
    pub fn progress(&self) -> f32 {
        let maps = self.cascade.depth() + 1;
        let done = self.correlations.len() + self.original.is_some() as usize;
        let current = self.run.as_ref().map_or(0.0, SaliencyRun::progress);
        ((done as f32 + current) / maps as f32).min(1.0)
    }

    /// `(deepest layer randomised, correlation with the trained model's map)` for the levels done so far, from
    /// the top layer down.
    pub fn correlations(&self) -> &[(String, f32)] {
        &self.correlations
    }

    /// The trained model's map, once computed.
    pub fn original(&self) -> Option<&[f32]> {
        self.original.as_deref()
    }
}

/// The sanity check's figure in one go: for each level of the cascade (top layer down to every layer random),
/// the rank correlation of `method`'s map on `image` with its map on the trained model.
pub fn sanity_correlations(
    model: &Cnn,
    image: &[f32],
    target: Target,
    method: SaliencyMethod,
    seed: u64,
) -> Result<Vec<(String, f32)>> {
    let mut s = SanityCorrelations::new(model, image, target, method, seed)?;
    while !s.step()? {}
    Ok(s.correlations)
}

/// Spearman rank correlation of the absolute values of two maps: the similarity measure Adebayo et al. use
/// to compare a saliency map before and after randomisation (1 = same ranking of pixels).
pub fn rank_correlation(a: &[f32], b: &[f32]) -> f32 {
    fn ranks(v: &[f32]) -> Vec<f32> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].abs().total_cmp(&v[j].abs()));
        let mut r = vec![0.0; v.len()];
        // Ties share their mean rank, so an all-zero region does not look ordered.
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]].abs() == v[idx[i]].abs() {
                j += 1;
            }
            for &k in &idx[i..=j] {
                r[k] = (i + j) as f32 / 2.0;
            }
            i = j + 1;
        }
        r
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f32;
    let (ma, mb) = (ra.iter().sum::<f32>() / n, rb.iter().sum::<f32>() / n);
    let cov: f32 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f32 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f32 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

#[cfg(test)]
mod direct_conv_tests {
    use super::*;
    use candle_core::Device;

    /// The plain-loop convolution equals candle's conv2d, for one and several channels on each side.
    #[test]
    fn direct_conv_equals_candle_conv2d() {
        let mut rng = Rng::new(3);
        for (b, ci, co, h) in [(2, 1, 8, 28), (3, 8, 1, 28), (2, 16, 8, 14), (1, 32, 16, 7), (1, 2, 3, 1)] {
            let xs: Vec<f32> = (0..b * ci * h * h).map(|_| rng.normal()).collect();
            let ws: Vec<f32> = (0..co * ci * 9).map(|_| rng.normal()).collect();
            let x = Tensor::from_vec(xs, (b, ci, h, h), &Device::Cpu).unwrap();
            let w = Tensor::from_vec(ws, (co, ci, 3, 3), &Device::Cpu).unwrap();
            let want: Vec<f32> = x.conv2d(&w, 1, 1, 1, 1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let got: Vec<f32> = conv2d_direct(&x, &w, 1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(got.len(), want.len());
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-4, "{b}x{ci}->{co} at {h}x{h}: differs by {worst}");
        }
    }
}
