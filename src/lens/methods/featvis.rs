//! Feature visualization (Olah et al. 2017): start from seeded noise and change the input image by gradient
//! ascent until a target (a channel, a unit, a class logit) is as active as it can be.
//!
//! Without regularisation the result is high-frequency adversarial noise. The regularisers here are the
//! classic ones, each toggled by `FeatureVisSettings`: jitter (a random shift of the image before every step,
//! so the pattern must work wherever it lands), L2 decay (keep the image dark, like MNIST's background),
//! total variation (penalise differences between neighbouring pixels) and blur (smooth the image a little
//! after every step).
//!
//! The image is parameterised as `sigmoid(p)`, so it always stays in [0, 1], the model's input range; `p`
//! is updated with Adam, whose normalised steps behave the same for strong and weak targets.
//!
//! `FeatureVis` advances one step per call to `step()`, so the UI can animate the image and stop at any time.
use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::attribution::{input_gradient, Target};
use crate::lens::cnn::model::Cnn;
use crate::lens::rng::Rng;
use crate::lens::{LensError, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureVisSettings {
    pub seed: u64,
    /// Adam's step size in the pre-sigmoid parameter.
    pub lr: f32,
    /// Shift the image by up to this many pixels (wrapping around) before each step; 0 turns jitter off.
    pub jitter: usize,
    /// Weight of the L2 penalty, the mean of the squared pixel values; 0 turns it off.
    pub l2: f32,
    /// Weight of the total-variation penalty, the mean squared difference between neighbouring pixels.
    pub tv: f32,
    /// After each step, mix this fraction of a 3x3 blurred image into the parameter; 0 turns it off.
    pub blur: f32,
    /// Standard deviation of the starting noise in the parameter (around a dark grey).
    pub init_std: f32,
}

impl Default for FeatureVisSettings {
    /// The lab's defaults: every regulariser on. Blur is the one that fights the target hardest: at 0.1 per step
    /// one conv3 channel of a trained model stayed below its best dataset example after 200 steps (0.83 of it);
    /// at 0.05 every conv3 channel of the shipped model ends at least 1.37 times above its best of the 2,000
    /// samples (channel mean; `tests/vision.rs` checks that each ends above it).
    fn default() -> Self {
        FeatureVisSettings { seed: 0, lr: 0.1, jitter: 1, l2: 0.05, tv: 0.05, blur: 0.05, init_std: 0.5 }
    }
}

impl FeatureVisSettings {
    /// The same start, with every regulariser off: the adversarial-noise baseline the chapter warns about.
    pub fn unregularised(seed: u64) -> Self {
        FeatureVisSettings { seed, jitter: 0, l2: 0.0, tv: 0.0, blur: 0.0, ..Self::default() }
    }
}

/// One feature visualization in progress.
pub struct FeatureVis {
    model: Cnn,
    pub target: Target,
    pub settings: FeatureVisSettings,
    rng: Rng,
    /// Pre-sigmoid parameter, `side * side`.
    p: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    steps: usize,
    /// The target on the current image, measured without jitter.
    activation: f32,
}

/// The parameter's starting value: sigmoid(-2) ≈ 0.12, a dark grey close to MNIST's background.
const START: f32 = -2.0;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl FeatureVis {
    pub fn new(model: &Cnn, target: Target, settings: FeatureVisSettings) -> Result<Self> {
        let s = model.cfg.image_size;
        if model.cfg.in_channels != 1 {
            return Err(LensError::Input("feature visualization here handles one-channel images".into()));
        }
        if !(settings.lr > 0.0 && settings.lr.is_finite())
            || settings.jitter >= s
            || [settings.l2, settings.tv, settings.blur, settings.init_std]
                .iter()
                .any(|v| !(v.is_finite() && *v >= 0.0))
            || settings.blur > 1.0
        {
            return Err(LensError::Input(format!("feature visualization settings out of range: {settings:?}")));
        }
        let mut rng = Rng::new(settings.seed);
        let p: Vec<f32> = (0..s * s).map(|_| START + settings.init_std * rng.normal()).collect();
        let mut fv = FeatureVis {
            model: model.clone(),
            target,
            settings,
            rng,
            p,
            m: vec![0.0; s * s],
            v: vec![0.0; s * s],
            steps: 0,
            activation: 0.0,
        };
        fv.activation = fv.measure()?;
        Ok(fv)
    }

    /// The current image, `side * side` values in [0, 1].
    pub fn image(&self) -> Vec<f32> {
        self.p.iter().map(|&x| sigmoid(x)).collect()
    }

    /// The target on the current image (no jitter).
    pub fn activation(&self) -> f32 {
        self.activation
    }

    pub fn steps_done(&self) -> usize {
        self.steps
    }

    fn measure(&self) -> Result<f32> {
        let x = crate::lens::cnn::model::images_tensor(&self.model.cfg, &self.image(), 1)?;
        Ok(self.model.target_values(&x, self.target)?.to_vec1::<f32>()?[0])
    }

    /// One step of gradient ascent. Returns the target on the new image; an error if anything became
    /// NaN or infinite (the image is then left as it was).
    pub fn step(&mut self) -> Result<f32> {
        let s = self.model.cfg.image_size;
        let st = self.settings.clone();
        let shift = if st.jitter > 0 {
            let j = st.jitter;
            let dy = self.rng.range(0, 2 * j) as i64 - j as i64;
            let dx = self.rng.range(0, 2 * j) as i64 - j as i64;
            (dy, dx)
        } else {
            (0, 0)
        };
        let objective = Objective { model: &self.model, target: self.target, settings: &st };
        let g = objective_gradient(objective, &self.p, shift)?;
        let diverged = |what: &str| {
            LensError::Input(format!("feature visualization diverged at step {}: {what} is not finite", self.steps + 1))
        };
        if g.iter().any(|v| !v.is_finite()) {
            return Err(diverged("the gradient"));
        }
        // Adam, ascending.
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let t = (self.steps + 1) as i32;
        let mut next = self.p.clone();
        let (mut m, mut v) = (self.m.clone(), self.v.clone());
        for i in 0..next.len() {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let (mh, vh) = (m[i] / (1.0 - b1.powi(t)), v[i] / (1.0 - b2.powi(t)));
            next[i] += st.lr * mh / (vh.sqrt() + eps);
        }
        if st.blur > 0.0 {
            next = blend(&next, &blur3(&next, s), st.blur);
        }
        if next.iter().any(|v| !v.is_finite()) {
            return Err(diverged("the image"));
        }
        let old = std::mem::replace(&mut self.p, next);
        let a = self.measure()?;
        if !a.is_finite() {
            self.p = old;
            return Err(diverged("the activation"));
        }
        (self.m, self.v, self.activation) = (m, v, a);
        self.steps += 1;
        Ok(a)
    }

    /// Runs `n` steps; returns the final activation.
    pub fn run(&mut self, n: usize) -> Result<f32> {
        for _ in 0..n {
            self.step()?;
        }
        Ok(self.activation)
    }
}

/// What a step ascends: `target` on `model`'s input, with the penalties of `settings`.
#[derive(Clone, Copy)]
pub struct Objective<'a> {
    pub model: &'a Cnn,
    pub target: Target,
    pub settings: &'a FeatureVisSettings,
}

/// The gradient, with respect to the pre-sigmoid parameter `p` (`side * side`), of the step's objective:
/// the target on the image shifted by `shift` (rows, columns; wrapping round, as `Tensor::roll`), minus `l2`
/// times the mean squared pixel, minus `tv` times the mean squared difference of vertical and of horizontal
/// neighbours. A target that does not depend on the image has gradient zero.
///
/// Written out by hand: the target's part is `input_gradient`'s backward pass (candle's autograd took a conv's
/// input gradient by an unvectorised transposed convolution, most of a step's time), shifted back; the
/// penalties' parts are closed forms; the sigmoid's derivative is `img (1 - img)`.
/// `objective_gradient_autograd` is the same by candle's autograd, the independent check.
pub fn objective_gradient(o: Objective, p: &[f32], shift: (i64, i64)) -> Result<Vec<f32>> {
    let Objective { model, target, settings: st } = o;
    let s = model.cfg.image_size;
    let img: Vec<f32> = p.iter().map(|&x| sigmoid(x)).collect();
    let x = Tensor::from_vec(roll2(&img, s, shift), (1, 1, s, s), &Device::Cpu)?;
    let g = match input_gradient(model, &x, target) {
        Ok((_, g)) => g.flatten_all()?.to_vec1::<f32>()?,
        // A gradient that is not finite is the step's to report (as diverged), not an error of its own.
        Err(LensError::NotFinite(_)) => vec![f32::NAN; s * s],
        Err(e) => return Err(e),
    };
    let mut g = roll2(&g, s, (-shift.0, -shift.1));
    if st.l2 > 0.0 {
        let c = st.l2 * 2.0 / (s * s) as f32;
        for (gi, &v) in g.iter_mut().zip(&img) {
            *gi -= c * v;
        }
    }
    if st.tv > 0.0 && s > 1 {
        // Each of the two means is over (s - 1) s differences d = img[b] - img[a]: d(d²)/d img[b] = 2d = -d(d²)/d img[a].
        let c = st.tv * 2.0 / ((s - 1) * s) as f32;
        let mut pair = |a: usize, b: usize| {
            let d = c * (img[b] - img[a]);
            g[b] -= d;
            g[a] += d;
        };
        for y in 0..s {
            for x in 0..s {
                if y + 1 < s {
                    pair(y * s + x, (y + 1) * s + x);
                }
                if x + 1 < s {
                    pair(y * s + x, y * s + x + 1);
                }
            }
        }
    }
    for (gi, &v) in g.iter_mut().zip(&img) {
        *gi *= v * (1.0 - v);
    }
    Ok(g)
}

/// `objective_gradient` by candle's autograd through the same objective: slower, kept as the independent check.
pub fn objective_gradient_autograd(o: Objective, p: &[f32], shift: (i64, i64)) -> Result<Vec<f32>> {
    let Objective { model, target, settings: st } = o;
    let s = model.cfg.image_size;
    let p = Var::from_tensor(&Tensor::from_slice(p, (1, 1, s, s), &Device::Cpu)?)?;
    let img = (p.as_tensor().neg()?.exp()? + 1.0)?.recip()?; // sigmoid, from ops autograd knows
    let x = img.roll(shift.0 as i32, 2)?.roll(shift.1 as i32, 3)?;
    let mut objective = model.target_values(&x, target)?.sum_all()?;
    if st.l2 > 0.0 {
        objective = (objective - (img.sqr()?.mean_all()? * st.l2 as f64)?)?;
    }
    if st.tv > 0.0 {
        let dyv = (img.narrow(2, 1, s - 1)? - img.narrow(2, 0, s - 1)?)?.sqr()?.mean_all()?;
        let dxv = (img.narrow(3, 1, s - 1)? - img.narrow(3, 0, s - 1)?)?.sqr()?.mean_all()?;
        objective = (objective - ((dyv + dxv)? * st.tv as f64)?)?;
    }
    let grads = objective.backward()?;
    Ok(match grads.get(p.as_tensor()) {
        Some(g) => g.flatten_all()?.to_vec1()?,
        None => vec![0.0; s * s],
    })
}

/// An `s` x `s` image shifted by `(dy, dx)`, wrapping round: the value at (y, x) moves to (y + dy, x + dx).
fn roll2(v: &[f32], s: usize, (dy, dx): (i64, i64)) -> Vec<f32> {
    let n = s as i64;
    let mut out = vec![0.0; v.len()];
    for y in 0..n {
        for x in 0..n {
            out[((y + dy).rem_euclid(n) * n + (x + dx).rem_euclid(n)) as usize] = v[(y * n + x) as usize];
        }
    }
    out
}

/// `(1 - t) a + t b`.
fn blend(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| (1.0 - t) * x + t * y).collect()
}

/// A 3x3 binomial blur ([1 2 1]/4 in each direction), edges repeated.
fn blur3(p: &[f32], s: usize) -> Vec<f32> {
    let at = |y: isize, x: isize| p[(y.clamp(0, s as isize - 1) as usize) * s + x.clamp(0, s as isize - 1) as usize];
    let mut out = vec![0.0; s * s];
    for y in 0..s as isize {
        for x in 0..s as isize {
            let mut acc = 0.0;
            for (dy, wy) in [(-1, 1.0), (0, 2.0), (1, 1.0)] {
                for (dx, wx) in [(-1, 1.0), (0, 2.0), (1, 1.0)] {
                    acc += wy * wx * at(y + dy, x + dx);
                }
            }
            out[y as usize * s + x as usize] = acc / 16.0;
        }
    }
    out
}
