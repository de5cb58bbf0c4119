//! A sparse autoencoder on one residual-stream hook of a real language model (the Moby-Dick character
//! model), and what its feature browser shows: per-latent activation density and histogram, the top
//! activating contexts, the characters a latent's decoder direction promotes through the unembedding, and
//! the model's loss with the reconstruction spliced in.
//!
//! ```text
//! f = ReLU((x - b_dec) W_enc + b_enc)   // x: [d_in], W_enc: [d_in, d_sae], f: [d_sae]
//! x̂ = f W_dec + b_dec                   // W_dec: [d_sae, d_in], rows kept at unit length
//! L = mean_batch ( ||x - x̂||² + λ Σ_j f_j )
//! ```
//!
//! On disk the weights use SAELens's names and shapes (`W_enc` [d_in, d_sae], `b_enc`, `W_dec` [d_sae, d_in],
//! `b_dec`), so the file reads the same elsewhere. In memory both matrices are stored latent-major
//! (`w_enc[j * d_in..]` is latent j's encoder row), which makes encoding one vector a run of dot products.
//!
//! Inference is plain f32 loops, so it runs unchanged in the browser; training uses candle's autograd (natively
//! for the shipped SAE, `train -- moby-sae`; in the browser, a step at a time, for the 9.5 scorecard's small one).
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::lens::gpt2::model::Pass;
use crate::lens::gpt2::open::{index_of, read_all, PieceReader, TensorStream, Transposing, WeightsIndex, READ_BYTES};
use crate::lens::rng::Rng;
use crate::lens::{Hook, HookSet, Intervention, LensError, Op, Result, Stepped, Transformer};

/// What `sae.json` must hold to rebuild the SAE (it holds more: the training settings and metrics).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmSaeConfig {
    /// The TransformerLens name of the hook the SAE reads and replaces.
    pub hook: String,
    pub d_in: usize,
    pub d_sae: usize,
}

impl LmSaeConfig {
    /// The `cfg.json` SAELens writes beside `sae_weights.safetensors`, so `SAE.load_from_disk(dir)` reads the
    /// folder: our SAE is SAELens's "standard" one (ReLU, `b_dec` subtracted from the input, no activation
    /// normalisation). The keys are both the flat ones of SAELens 3–5 (`hook_name`, `hook_layer`, ...) and its
    /// version 6's `metadata` object; each version ignores the other's. `model_name` is the folder's name.
    pub fn saelens_cfg(&self, model_name: &str, context_size: usize) -> serde_json::Value {
        let layer = self.hook.parse::<Hook>().ok().and_then(|h| h.layer());
        let about = serde_json::json!({
            "model_name": model_name,
            "hook_name": self.hook,
            "hook_layer": layer,
            "hook_head_index": null,
            "context_size": context_size,
            "prepend_bos": false,
            "model_from_pretrained_kwargs": {},
        });
        let mut cfg = serde_json::json!({
            "architecture": "standard",
            "d_in": self.d_in,
            "d_sae": self.d_sae,
            "dtype": "float32",
            "device": "cpu",
            "activation_fn_str": "relu",
            "activation_fn_kwargs": {},
            "apply_b_dec_to_input": true,
            "finetuning_scaling_factor": false,
            "normalize_activations": "none",
            "reshape_activations": "none",
            "metadata": about.clone(),
        });
        if let (Some(flat), Some(about)) = (cfg.as_object_mut(), about.as_object()) {
            flat.extend(about.clone());
        }
        cfg
    }
}

/// What the app takes from a SAELens `cfg.json` (an SAE a student brings): the hook it reads and its sizes.
/// SAELens 3–5 keep `hook_name` at the top level, version 6 under `metadata`; both are read.
#[derive(Clone, Debug, PartialEq)]
pub struct SaelensCfg {
    pub hook: Hook,
    pub d_in: usize,
    pub d_sae: usize,
    /// The model it was trained on, as SAELens names it (shown to the student, not checked).
    pub model_name: Option<String>,
}

/// The largest SAE the browser opens: 2^28 weights per matrix is 1 GB of f32.
pub const MAX_SAE_WEIGHTS: usize = 1 << 28;

impl SaelensCfg {
    /// Reads a `cfg.json`, refusing (with what it says and why) the SAEs whose function this engine does not
    /// compute: any architecture but "standard" (ReLU of `(x - b_dec) W_enc + b_enc`), `apply_b_dec_to_input`
    /// false, normalised activations, a per-head hook.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |m: String| Err(LensError::Config(m));
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| LensError::Config(format!("not JSON ({e})")))?;
        let Some(top) = v.as_object() else { return bad("not a JSON object".into()) };
        let meta = top.get("metadata").and_then(|m| m.as_object());
        // A key from the top level, else from version 6's `metadata`.
        let get = |k: &str| {
            top.get(k).filter(|x| !x.is_null()).or_else(|| meta.and_then(|m| m.get(k)).filter(|x| !x.is_null()))
        };
        let text_of = |k: &str| get(k).and_then(|x| x.as_str());
        if let Some(a) = text_of("architecture").filter(|a| *a != "standard") {
            return bad(format!("architecture `{a}`: the browser reads standard (ReLU) SAEs only"));
        }
        if let Some(f) = text_of("activation_fn_str").filter(|f| *f != "relu") {
            return bad(format!("activation `{f}`: the browser reads ReLU SAEs only"));
        }
        if get("apply_b_dec_to_input").and_then(|x| x.as_bool()) == Some(false) {
            return bad("apply_b_dec_to_input is false: the browser's SAE subtracts b_dec from its input".into());
        }
        if let Some(n) = text_of("normalize_activations").filter(|n| *n != "none") {
            return bad(format!("normalize_activations `{n}`: the browser feeds the SAE the hook's raw activations"));
        }
        if get("hook_head_index").is_some() {
            return bad("hook_head_index is set: SAEs on one head's output are not supported".into());
        }
        let hook_name = text_of("hook_name").ok_or_else(|| LensError::Config("no hook_name".into()))?;
        let hook: Hook = hook_name.parse().map_err(|_| {
            LensError::Config(format!("hook_name `{hook_name}` is not a TransformerLens hook of a GPT-2 model"))
        })?;
        let size = |k: &str| -> Result<usize> {
            let n = get(k).and_then(|x| x.as_u64()).ok_or_else(|| LensError::Config(format!("no {k}")))?;
            usize::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| LensError::Config(format!("{k} is {n}")))
        };
        let (d_in, d_sae) = (size("d_in")?, size("d_sae")?);
        if d_in.checked_mul(d_sae).is_none_or(|n| n > MAX_SAE_WEIGHTS) {
            return bad(format!(
                "d_in {d_in} × d_sae {d_sae} is larger than the browser opens ({MAX_SAE_WEIGHTS} weights)"
            ));
        }
        let model_name = text_of("model_name").map(str::to_string);
        Ok(SaelensCfg { hook, d_in, d_sae, model_name })
    }

    /// Whether the SAE fits `cfg`'s model: its hook exists there, is one the labs can read and replace, and is
    /// `d_in` wide.
    pub fn check_against(&self, cfg: &crate::lens::Gpt2Config) -> Result<()> {
        let name = self.hook.to_string();
        if self.hook.layer().is_some_and(|l| l >= cfg.n_layer) {
            return Err(LensError::Config(format!("it reads `{name}`, but the model has {} layers", cfg.n_layer)));
        }
        let width = match self.hook {
            Hook::ResidPre(_) | Hook::ResidMid(_) | Hook::ResidPost(_) | Hook::AttnOut(_) | Hook::MlpOut(_) => {
                cfg.d_model()
            }
            Hook::MlpPre(_) | Hook::MlpPost(_) => cfg.d_mlp(),
            _ => {
                return Err(LensError::Config(format!(
                    "it reads `{name}`: the labs splice SAEs into the residual stream, attention or MLP outputs, or MLP activations"
                )))
            }
        };
        let needs_mlp = matches!(self.hook, Hook::ResidMid(_) | Hook::MlpPre(_) | Hook::MlpPost(_) | Hook::MlpOut(_));
        if needs_mlp && cfg.attn_only {
            return Err(LensError::Config(format!("it reads `{name}`, but the model has no MLP")));
        }
        if self.d_in != width {
            return Err(LensError::Config(format!(
                "d_in is {} but `{name}` is {width} wide in this model: the SAE is for another model",
                self.d_in
            )));
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct LmSae {
    pub hook: Hook,
    pub d_in: usize,
    pub d_sae: usize,
    /// `[d_sae][d_in]`: latent j's encoder row (the transpose of the file's `W_enc`).
    pub w_enc: Vec<f32>,
    pub b_enc: Vec<f32>,
    /// `[d_sae][d_in]`: latent j's decoder direction, unit length.
    pub w_dec: Vec<f32>,
    pub b_dec: Vec<f32>,
}

/// Reads a SAELens `sae_weights.safetensors` a piece at a time, as `gpt2::open::WeightsReader` reads a model:
/// the page hands it the byte ranges it asks for (`Blob.slice`), so a GPT-2-small SAE (768 × 24,576, 151 MB
/// of f32) is never in memory twice and no step holds the page. Every value is checked finite as it comes;
/// `W_enc` is turned latent-major a few rows per `prepare`.
pub struct SaeReader {
    hook: Hook,
    d_in: usize,
    d_sae: usize,
    stream: TensorStream,
    w_enc: Option<Transposing>,
    b_enc: Option<Vec<f32>>,
    w_dec: Option<Vec<f32>>,
    b_dec: Option<Vec<f32>>,
}

impl SaeReader {
    /// Checks that the file (its `index`) holds the four tensors at the shapes `d_in` and `d_sae` give, in a
    /// dtype we decode, before any weight is read.
    pub fn new(hook: Hook, d_in: usize, d_sae: usize, index: &WeightsIndex) -> Result<Self> {
        let wanted = tensor_shapes(d_in, d_sae)
            .iter()
            .map(|(name, shape)| index.want(name, name, shape, "cfg.json"))
            .collect::<Result<Vec<_>>>()?;
        let stream = TensorStream::new(wanted);
        Ok(Self { hook, d_in, d_sae, stream, w_enc: None, b_enc: None, w_dec: None, b_dec: None })
    }
}

impl PieceReader for SaeReader {
    type Out = LmSae;

    fn next_read(&self, max_bytes: usize) -> Option<(u64, u64)> {
        self.stream.next_read(max_bytes)
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        let Some((name, _, values)) = self.stream.feed(bytes)? else { return Ok(()) };
        let [w_enc, b_enc, w_dec, b_dec] = tensor_shapes(0, 0).map(|(n, _)| n);
        match name.as_str() {
            n if n == w_enc => self.w_enc = Some(Transposing::new(values, self.d_in, self.d_sae)),
            n if n == b_enc => self.b_enc = Some(values),
            n if n == w_dec => self.w_dec = Some(values),
            n if n == b_dec => self.b_dec = Some(values),
            _ => return Err(LensError::Weights(format!("tensor `{name}` was not asked for"))),
        }
        Ok(())
    }

    fn progress(&self) -> (u64, u64) {
        self.stream.progress()
    }

    /// Turns about `max_values` more of `W_enc` round.
    fn prepare(&mut self, max_values: usize) -> bool {
        self.w_enc.as_mut().is_none_or(|w| w.step(max_values))
    }

    /// The SAE.
    fn finish(self) -> Result<LmSae> {
        self.stream.check_done()?;
        let missing = |n: &str| LensError::Weights(format!("tensor `{n}` was not read"));
        let (_, w_enc) = self.w_enc.ok_or_else(|| missing("W_enc"))?.finish();
        let (b_enc, w_dec, b_dec) = (
            self.b_enc.ok_or_else(|| missing("b_enc"))?,
            self.w_dec.ok_or_else(|| missing("W_dec"))?,
            self.b_dec.ok_or_else(|| missing("b_dec"))?,
        );
        // The stream checked every length against the shapes and every value for NaN and infinities.
        Ok(LmSae { hook: self.hook, d_in: self.d_in, d_sae: self.d_sae, w_enc, b_enc, w_dec, b_dec })
    }
}

/// The SAE's tensors in file order, with SAELens's names and shapes: the one place the names are written.
pub fn tensor_shapes(d_in: usize, d_sae: usize) -> [(&'static str, Vec<usize>); 4] {
    [("W_enc", vec![d_in, d_sae]), ("b_enc", vec![d_sae]), ("W_dec", vec![d_sae, d_in]), ("b_dec", vec![d_in])]
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl LmSae {
    pub fn new(
        hook: Hook,
        d_in: usize,
        d_sae: usize,
        w_enc: Vec<f32>,
        b_enc: Vec<f32>,
        w_dec: Vec<f32>,
        b_dec: Vec<f32>,
    ) -> Result<Self> {
        if d_in == 0 || d_sae == 0 {
            return Err(LensError::Weights("the SAE needs d_in and d_sae of at least 1".into()));
        }
        let lens = [w_enc.len(), b_enc.len(), w_dec.len(), b_dec.len()];
        for ((name, shape), len) in tensor_shapes(d_in, d_sae).into_iter().zip(lens) {
            let want: usize = shape.iter().product();
            if len != want {
                return Err(LensError::Weights(format!(
                    "{name} has {len} values, but d_in = {d_in} and d_sae = {d_sae} need {want}"
                )));
            }
        }
        if w_enc.iter().chain(&b_enc).chain(&w_dec).chain(&b_dec).any(|v| !v.is_finite()) {
            return Err(LensError::Weights("the SAE's weights hold a NaN or an infinity".into()));
        }
        Ok(LmSae { hook, d_in, d_sae, w_enc, b_enc, w_dec, b_dec })
    }

    /// Reads `sae.json` (for the hook and sizes) and the safetensors file of SAELens-named weights.
    pub fn from_bytes(config_json: &str, safetensors: &[u8]) -> Result<Self> {
        let cfg: LmSaeConfig = serde_json::from_str(config_json).map_err(|e| LensError::Config(e.to_string()))?;
        let hook: Hook = cfg.hook.parse().map_err(|_| LensError::Config(format!("unknown hook `{}`", cfg.hook)))?;
        Self::from_weights(hook, cfg.d_in, cfg.d_sae, safetensors)
    }

    /// An SAE a student brings: SAELens's `cfg.json`, read by `SaelensCfg::parse`, and its
    /// `sae_weights.safetensors` (f32, f16 or bf16), whole (the page reads it a piece at a time, `SaeReader`).
    pub fn from_saelens(cfg: &SaelensCfg, safetensors: &[u8]) -> Result<Self> {
        Self::from_weights(cfg.hook, cfg.d_in, cfg.d_sae, safetensors)
    }

    fn from_weights(hook: Hook, d_in: usize, d_sae: usize, safetensors: &[u8]) -> Result<Self> {
        read_all(safetensors, SaeReader::new(hook, d_in, d_sae, &index_of(safetensors)?)?, READ_BYTES)
    }

    /// The weights under SAELens's names and shapes, for `candle_core::safetensors::save`.
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let (d, n) = (self.d_in, self.d_sae);
        let dev = &Device::Cpu;
        let [w_enc, b_enc, w_dec, b_dec] = tensor_shapes(d, n).map(|(name, _)| name.to_string());
        Ok(vec![
            (w_enc, Tensor::from_slice(&self.w_enc, (n, d), dev)?.t()?.contiguous()?),
            (b_enc, Tensor::from_slice(&self.b_enc, n, dev)?),
            (w_dec, Tensor::from_slice(&self.w_dec, (n, d), dev)?),
            (b_dec, Tensor::from_slice(&self.b_dec, d, dev)?),
        ])
    }

    pub fn config(&self) -> LmSaeConfig {
        LmSaeConfig { hook: self.hook.to_string(), d_in: self.d_in, d_sae: self.d_sae }
    }

    /// Latent j's decoder direction.
    pub fn direction(&self, j: usize) -> &[f32] {
        &self.w_dec[j * self.d_in..(j + 1) * self.d_in]
    }

    /// Latent activations of `x` (`rows x d_in`, row-major), `rows x d_sae`.
    pub fn encode(&self, x: &[f32]) -> Vec<f32> {
        let d = self.d_in;
        let mut out = Vec::with_capacity(x.len() / d * self.d_sae);
        let mut centred = vec![0.0; d];
        for row in x.chunks_exact(d) {
            for ((c, v), b) in centred.iter_mut().zip(row).zip(&self.b_dec) {
                *c = v - b;
            }
            for j in 0..self.d_sae {
                out.push((dot(&self.w_enc[j * d..(j + 1) * d], &centred) + self.b_enc[j]).max(0.0));
            }
        }
        out
    }

    /// The reconstruction of latent activations `f` (`rows x d_sae`), `rows x d_in`. Only active latents
    /// cost anything, which is most of the saving of a sparse code.
    pub fn decode(&self, f: &[f32]) -> Vec<f32> {
        let d = self.d_in;
        let mut out = Vec::with_capacity(f.len() / self.d_sae * d);
        for row in f.chunks_exact(self.d_sae) {
            let start = out.len();
            out.extend_from_slice(&self.b_dec);
            let x = &mut out[start..];
            for (j, &a) in row.iter().enumerate() {
                if a != 0.0 {
                    for (xi, w) in x.iter_mut().zip(&self.w_dec[j * d..(j + 1) * d]) {
                        *xi += a * w;
                    }
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------- metrics

/// Reconstruction quality and sparsity on a set of activations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SaeStats {
    pub rows: usize,
    /// Mean over rows of ||x - x̂||².
    pub mse: f32,
    /// Fraction of variance unexplained: Σ ||x - x̂||² / Σ ||x - mean(x)||².
    pub fvu: f32,
    /// Mean number of active latents per row.
    pub l0: f32,
    /// Per latent, the fraction of rows on which it is active.
    pub density: Vec<f32>,
    /// Latents active on no row.
    pub dead: usize,
}

/// FVU of a reconstruction `x_hat` of `x` (both `rows x d`): the squared error over the squared deviation
/// from the mean row. 0 is perfect; 1 is no better than always answering the mean.
pub fn fvu(x: &[f32], x_hat: &[f32], d: usize) -> f32 {
    let rows = x.len() / d;
    let mut mean = vec![0.0f64; d];
    for row in x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += *v as f64 / rows as f64;
        }
    }
    let (mut err, mut var) = (0.0f64, 0.0f64);
    for (row, rec) in x.chunks_exact(d).zip(x_hat.chunks_exact(d)) {
        for ((v, r), m) in row.iter().zip(rec).zip(&mean) {
            err += ((v - r) as f64).powi(2);
            var += (*v as f64 - m).powi(2);
        }
    }
    if var > 0.0 {
        (err / var) as f32
    } else {
        f32::NAN
    }
}

/// MSE, FVU, L0, densities and dead latents of `sae` on `x` (`rows x d_in`).
pub fn sae_stats(sae: &LmSae, x: &[f32]) -> SaeStats {
    let f = sae.encode(x);
    let x_hat = sae.decode(&f);
    let rows = x.len() / sae.d_in;
    let mut counts = vec![0usize; sae.d_sae];
    for row in f.chunks_exact(sae.d_sae) {
        for (c, a) in counts.iter_mut().zip(row) {
            *c += (*a > 0.0) as usize;
        }
    }
    let active: usize = counts.iter().sum();
    let sq: f64 = x.iter().zip(&x_hat).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
    SaeStats {
        rows,
        mse: (sq / rows.max(1) as f64) as f32,
        fvu: fvu(x, &x_hat, sae.d_in),
        l0: active as f32 / rows.max(1) as f32,
        density: counts.iter().map(|&c| c as f32 / rows.max(1) as f32).collect(),
        dead: counts.iter().filter(|&&c| c == 0).count(),
    }
}

/// `sae_stats`'s figures gathered a few rows at a time (the browser reconstructs a window in pieces): sums from
/// which MSE, FVU, L0 and the dead latents follow for every row added so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReconTally {
    pub rows: usize,
    /// Σ ||x - x̂||² over the rows.
    sq_err: f64,
    /// Per input dimension, Σ x; and Σ ||x||² (FVU's denominator is Σ ||x||² - rows ||mean||²).
    sum: Vec<f64>,
    sum_sq: f64,
    /// Per latent, the rows on which it is active.
    pub counts: Vec<usize>,
}

impl ReconTally {
    pub fn new(d_in: usize, d_sae: usize) -> Self {
        ReconTally { sum: vec![0.0; d_in], counts: vec![0; d_sae], ..ReconTally::default() }
    }

    /// Adds rows: `x` and `x_hat` are `rows x d_in`, `f` (the latents) `rows x d_sae`.
    pub fn add(&mut self, x: &[f32], f: &[f32], x_hat: &[f32]) {
        let d = self.sum.len().max(1);
        for (row, rec) in x.chunks_exact(d).zip(x_hat.chunks_exact(d)) {
            for ((s, v), r) in self.sum.iter_mut().zip(row).zip(rec) {
                *s += *v as f64;
                self.sum_sq += (*v as f64).powi(2);
                self.sq_err += ((v - r) as f64).powi(2);
            }
            self.rows += 1;
        }
        for row in f.chunks_exact(self.counts.len().max(1)) {
            for (c, a) in self.counts.iter_mut().zip(row) {
                *c += (*a > 0.0) as usize;
            }
        }
    }

    /// Another tally's rows (same sizes) added to this one's.
    pub fn merge(&mut self, other: &ReconTally) {
        self.rows += other.rows;
        self.sq_err += other.sq_err;
        self.sum_sq += other.sum_sq;
        self.sum.iter_mut().zip(&other.sum).for_each(|(a, b)| *a += b);
        self.counts.iter_mut().zip(&other.counts).for_each(|(a, b)| *a += b);
    }

    pub fn mse(&self) -> f32 {
        (self.sq_err / self.rows.max(1) as f64) as f32
    }

    /// As `fvu`: NaN when the rows do not vary.
    pub fn fvu(&self) -> f32 {
        let n = self.rows.max(1) as f64;
        let var = self.sum_sq - self.sum.iter().map(|s| s * s / n).sum::<f64>();
        if var > 0.0 {
            (self.sq_err / var) as f32
        } else {
            f32::NAN
        }
    }

    pub fn l0(&self) -> f32 {
        self.counts.iter().sum::<usize>() as f32 / self.rows.max(1) as f32
    }

    /// Latents active on none of the rows.
    pub fn dead(&self) -> usize {
        self.counts.iter().filter(|&&c| c == 0).count()
    }
}

// ---------------------------------------------------------------- windows over a text

/// The loss windows, shared with `gpt2::train::held_out_loss` so the spliced-in losses are on the trainer's scale.
pub use crate::lens::gpt2::train::scored_windows;

fn check_width(model: &Transformer, sae: &LmSae) -> Result<()> {
    if sae.d_in != model.cfg.d_model() {
        return Err(LensError::Input(format!(
            "the SAE reads vectors of {} numbers, but the model's d_model is {}",
            sae.d_in,
            model.cfg.d_model()
        )));
    }
    Ok(())
}

/// The activations at `hook` at every position of `ids`, `len x d_model`, each read in its scoring window of
/// `scored_windows` (so with at least half a context before it, past the first window).
pub fn scored_activations(model: &Transformer, hook: Hook, ids: &[u32]) -> Result<Vec<f32>> {
    let n = model.cfg.n_positions;
    let d = model.cfg.d_model();
    let mut out = Vec::with_capacity(ids.len() * d);
    for (start, from) in scored_windows(ids.len(), n) {
        let window = &ids[start..(start + n).min(ids.len())];
        model.check_tokens(window)?;
        let tokens = Tensor::from_slice(window, (1, window.len()), &Device::Cpu)?;
        let mut set = HookSet::cache_only(vec![hook]);
        model.forward(&tokens, &mut set)?;
        let acts: Vec<f32> =
            set.cache.get(hook).ok_or_else(|| LensError::UnknownHook(hook.to_string()))?.flatten_all()?.to_vec1()?;
        out.extend_from_slice(&acts[from * d..]);
    }
    Ok(out)
}

/// `scored_activations` in pieces: each `step` runs half a block of one scoring window's pass, which stops as soon
/// as the hook is recorded (the blocks after it are not needed), so the browser can record between frames. The
/// same numbers (tested).
pub struct ActivationRecording {
    hook: Hook,
    ids: Vec<u32>,
    /// Tokens of the text per window.
    window: usize,
    /// The model's first token, read in front of every window (its row is not kept).
    bos: Option<u32>,
    windows: Vec<(usize, usize)>,
    next: usize,
    pass: Option<Stepped>,
    out: Vec<f32>,
}

impl ActivationRecording {
    pub fn new(model: &Transformer, hook: Hook, ids: &[u32]) -> Result<Self> {
        Self::windowed(hook, ids, model.cfg.n_positions, None)
    }

    /// `new` with windows of `window` tokens of the text, each read after `bos` when given (as TransformerLens
    /// puts GPT-2's first token in front of a text): an opened model, whose context may be too long to read in
    /// one slice.
    pub fn windowed(hook: Hook, ids: &[u32], window: usize, bos: Option<u32>) -> Result<Self> {
        let window = window.max(1);
        let windows = scored_windows(ids.len(), window);
        Ok(ActivationRecording { hook, ids: ids.to_vec(), window, bos, windows, next: 0, pass: None, out: Vec::new() })
    }

    /// Runs the next piece; `Ok(true)` once every window is recorded.
    pub fn step(&mut self, model: &Transformer) -> Result<bool> {
        let Some(&(start, from)) = self.windows.get(self.next) else { return Ok(true) };
        let window = &self.ids[start..(start + self.window).min(self.ids.len())];
        let from = from + usize::from(self.bos.is_some());
        let mut pass = match self.pass.take() {
            Some(p) => p,
            None => {
                let input: Vec<u32> = self.bos.into_iter().chain(window.iter().copied()).collect();
                Stepped::new(model, &input, HookSet::cache_only(vec![self.hook]))?
            }
        };
        if pass.hooks.cache.get(self.hook).is_none() {
            let finished = pass.step(model)?;
            if pass.hooks.cache.get(self.hook).is_none() {
                if finished {
                    return Err(LensError::UnknownHook(self.hook.to_string()));
                }
                self.pass = Some(pass);
                return Ok(false);
            }
        }
        let acts: Vec<f32> = recorded(&pass.hooks, self.hook)?.flatten_all()?.to_vec1()?;
        self.out.extend_from_slice(&acts[from * model.cfg.d_model()..]);
        self.next += 1;
        Ok(self.next == self.windows.len())
    }

    /// Share of the windows recorded, 0 to 1.
    pub fn progress(&self) -> f32 {
        self.next as f32 / self.windows.len().max(1) as f32
    }

    /// `len x d_model`, as `scored_activations`.
    pub fn finish(self) -> Vec<f32> {
        self.out
    }
}

/// Per row of `x` (`rows x d_in`), the SAE's active latents as `(latent, activation)`.
pub fn active_latents(sae: &LmSae, x: &[f32]) -> Vec<Vec<(u32, f32)>> {
    sae.encode(x)
        .chunks_exact(sae.d_sae)
        .map(|row| row.iter().enumerate().filter(|(_, a)| **a > 0.0).map(|(j, a)| (j as u32, *a)).collect())
        .collect()
}

/// Per position of `ids`, the SAE's active latents, each position read in its scoring window.
pub fn latent_activations(model: &Transformer, sae: &LmSae, ids: &[u32]) -> Result<Vec<Vec<(u32, f32)>>> {
    check_width(model, sae)?;
    Ok(active_latents(sae, &scored_activations(model, sae.hook, ids)?))
}

/// Summed next-token losses over scored positions: the model as it is, with the SAE's reconstruction in
/// place of the hook's activation, and (optionally) with that activation set to zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LossTally {
    pub clean: f64,
    pub spliced: f64,
    pub zero_ablated: f64,
    pub count: usize,
}

impl LossTally {
    pub fn add(&mut self, other: LossTally) {
        self.clean += other.clean;
        self.spliced += other.spliced;
        self.zero_ablated += other.zero_ablated;
        self.count += other.count;
    }
    pub fn clean_loss(&self) -> f64 {
        self.clean / self.count.max(1) as f64
    }
    pub fn spliced_loss(&self) -> f64 {
        self.spliced / self.count.max(1) as f64
    }
    pub fn zero_ablated_loss(&self) -> f64 {
        self.zero_ablated / self.count.max(1) as f64
    }
    /// (L_zero − L_spliced) / (L_zero − L_clean): how much of the loss that zeroing the hook destroys the
    /// SAE's reconstruction gives back. 1 is a perfect splice; only meaningful with `zero_ablated` measured.
    pub fn loss_recovered(&self) -> f64 {
        (self.zero_ablated - self.spliced) / (self.zero_ablated - self.clean)
    }
}

/// Sum of -log p(next) over one `[1, len, vocab]` logits tensor, for the predictions of the tokens at
/// positions `from..len` of a scoring window. (The prediction of position p's token is made at p - 1, so the
/// first window scores predictions from 0, and each later one picks up the prediction that its predecessor,
/// ending one position short, could not make.) Over all windows every token but the first is scored once.
fn summed_loss(logits: &Tensor, window: &[u32], from: usize) -> Result<(f64, usize)> {
    let logp: Vec<Vec<f32>> = candle_nn::ops::log_softmax(&logits.get(0)?, candle_core::D::Minus1)?.to_vec2()?;
    let mut total = 0.0f64;
    let mut count = 0;
    for p in from.saturating_sub(1)..window.len().saturating_sub(1) {
        total -= logp[p][window[p + 1] as usize] as f64;
        count += 1;
    }
    Ok((total, count))
}

/// The first half of `window_losses`: the clean forward, which also records the hook and computes the SAE's
/// reconstruction of it. Split from the spliced forward so the browser can yield between the two.
pub struct CleanPass {
    pub clean: f64,
    pub count: usize,
    tokens: Tensor,
    replacement: Tensor,
}

/// `window_losses` without the zero ablation, in pieces: each `step` runs half a block of the clean pass, or the
/// SAE's reconstruction of `RECONSTRUCT_ROWS` of the recorded positions, or half a block of the spliced pass, so the
/// browser can give the thread back between pieces whatever the model's depth. The same figures as `window_losses` (tested).
pub struct WindowRun {
    window: Vec<u32>,
    from: usize,
    phase: Option<Phase>,
    /// For an SAE on `blocks.{l}.hook_resid_post`, the clean pass right after block l: the spliced and the
    /// zero-ablated passes go on from there with the residual stream replaced, instead of running blocks 0..=l
    /// again (the same numbers: those blocks see only the clean tokens).
    after_hook: Option<Pass>,
    /// Also run the pass with the hook set to zero (`with_zero_ablation`).
    zero: bool,
    stats: ReconTally,
}

enum Phase {
    Clean(Stepped),
    /// The recorded activations (`[1, pos, d_model]`) and their reconstruction so far, `RECONSTRUCT_ROWS`
    /// positions a piece: encoding all 128 positions at once is as long as two blocks.
    Reconstruct {
        clean: f64,
        count: usize,
        shape: candle_core::Shape,
        x: Vec<f32>,
        out: Vec<f32>,
    },
    Spliced {
        clean: f64,
        count: usize,
        forward: Stepped,
    },
    /// The pass with the hook set to zero, after the spliced one.
    Zero {
        tally: LossTally,
        forward: Stepped,
    },
}

/// Positions the SAE encodes and decodes per piece of a `WindowRun`.
pub const RECONSTRUCT_ROWS: usize = 32;

impl WindowRun {
    /// Checks the SAE against the model and the window; embeds the window.
    pub fn new(model: &Transformer, sae: &LmSae, window: &[u32], from: usize) -> Result<Self> {
        check_width(model, sae)?;
        let forward = Stepped::new(model, window, HookSet::cache_only(vec![sae.hook]))?;
        let stats = ReconTally::new(sae.d_in, sae.d_sae);
        let phase = Some(Phase::Clean(forward));
        Ok(WindowRun { window: window.to_vec(), from, phase, after_hook: None, zero: false, stats })
    }

    /// The same run with a fourth pass, the hook set to zero, for `LossTally::zero_ablated` (as
    /// `window_losses` with `zero_ablate`).
    pub fn with_zero_ablation(mut self) -> Self {
        self.zero = true;
        self
    }

    /// The reconstruction's quality on the window's scored positions (those from `from`, as
    /// `scored_activations` keeps them), complete once the reconstruction has run.
    pub fn stats(&self) -> &ReconTally {
        &self.stats
    }

    /// Runs the next piece; the window's losses once the last piece has run.
    pub fn step(&mut self, model: &Transformer, sae: &LmSae) -> Result<Option<LossTally>> {
        let phase = self.phase.take().ok_or_else(|| LensError::Input("this window is already measured".into()))?;
        let (next, done) = match phase {
            Phase::Clean(mut forward) => {
                let finished = forward.step(model)?;
                if let (Hook::ResidPost(l), Some(p)) = (sae.hook, forward.pass()) {
                    if self.after_hook.is_none() && p.layers_done() == l + 1 && !p.mid_block() {
                        self.after_hook = Some(p.clone());
                    }
                }
                if !finished {
                    (Phase::Clean(forward), None)
                } else {
                    let (logits, set) = forward.finish()?;
                    let (clean, count) = summed_loss(&logits, &self.window, self.from)?;
                    let acts = recorded(&set, sae.hook)?;
                    let (shape, x) = (acts.shape().clone(), acts.flatten_all()?.to_vec1()?);
                    (Phase::Reconstruct { clean, count, shape, out: Vec::with_capacity(x.len()), x }, None)
                }
            }
            Phase::Reconstruct { clean, count, shape, x, mut out } => {
                let rows = RECONSTRUCT_ROWS * sae.d_in;
                let first = out.len() / sae.d_in;
                let next = &x[out.len()..(out.len() + rows).min(x.len())];
                let f = sae.encode(next);
                let x_hat = sae.decode(&f);
                // Only the scored rows count in the statistics (the whole window is still spliced).
                let skip = self.from.saturating_sub(first).min(next.len() / sae.d_in);
                self.stats.add(&next[skip * sae.d_in..], &f[skip * sae.d_sae..], &x_hat[skip * sae.d_in..]);
                out.extend(x_hat);
                if out.len() < x.len() {
                    (Phase::Reconstruct { clean, count, shape, x, out }, None)
                } else {
                    let replacement = Tensor::from_vec(out, shape, &Device::Cpu)?;
                    let forward = self.replaced(model, sae.hook, Op::Replace(replacement))?;
                    (Phase::Spliced { clean, count, forward }, None)
                }
            }
            Phase::Spliced { clean, count, mut forward } => {
                if !forward.step(model)? {
                    (Phase::Spliced { clean, count, forward }, None)
                } else {
                    let spliced = summed_loss(&forward.finish()?.0, &self.window, self.from)?.0;
                    let tally = LossTally { clean, spliced, zero_ablated: 0.0, count };
                    if !self.zero {
                        return Ok(Some(tally));
                    }
                    let forward = self.replaced(model, sae.hook, Op::Zero)?;
                    (Phase::Zero { tally, forward }, None)
                }
            }
            Phase::Zero { mut tally, mut forward } => {
                if !forward.step(model)? {
                    (Phase::Zero { tally, forward }, None)
                } else {
                    tally.zero_ablated = summed_loss(&forward.finish()?.0, &self.window, self.from)?.0;
                    return Ok(Some(tally));
                }
            }
        };
        self.phase = Some(next);
        Ok(done)
    }
}

impl WindowRun {
    /// A pass with `op` at the SAE's hook: from the point after the hook when the clean pass kept it, else from
    /// the start with the op as an intervention.
    fn replaced(&self, model: &Transformer, hook: Hook, op: Op) -> Result<Stepped> {
        match (&self.after_hook, op) {
            (Some(p), Op::Replace(t)) => Ok(Stepped::resume(p.with_resid(t)?, HookSet::cache_only(vec![]))),
            (Some(p), Op::Zero) => {
                Ok(Stepped::resume(p.with_resid(p.resid().zeros_like()?)?, HookSet::cache_only(vec![])))
            }
            (_, op) => Stepped::new(model, &self.window, HookSet::intervening(vec![Intervention::new(hook, op)])),
        }
    }
}

pub fn clean_pass(model: &Transformer, sae: &LmSae, window: &[u32], from: usize) -> Result<CleanPass> {
    check_width(model, sae)?;
    model.check_tokens(window)?;
    let tokens = Tensor::from_slice(window, (1, window.len()), &Device::Cpu)?;
    let mut set = HookSet::cache_only(vec![sae.hook]);
    let logits = model.forward(&tokens, &mut set)?;
    let (clean, count) = summed_loss(&logits, window, from)?;
    let replacement = reconstruction(sae, recorded(&set, sae.hook)?)?;
    Ok(CleanPass { clean, count, tokens, replacement })
}

/// The activations a pass recorded at `hook`.
fn recorded(set: &HookSet, hook: Hook) -> Result<&Tensor> {
    set.cache.get(hook).ok_or_else(|| LensError::UnknownHook(hook.to_string()))
}

/// The SAE's reconstruction of recorded activations, in their shape: what the spliced pass puts in their place.
fn reconstruction(sae: &LmSae, acts: &Tensor) -> Result<Tensor> {
    let x: Vec<f32> = acts.flatten_all()?.to_vec1()?;
    Ok(Tensor::from_vec(sae.decode(&sae.encode(&x)), acts.shape(), &Device::Cpu)?)
}

/// The second half: the summed loss with the hook replaced by the reconstruction at every position, so the
/// later layers see only reconstructed vectors.
pub fn spliced_pass(model: &Transformer, sae: &LmSae, pass: &CleanPass, window: &[u32], from: usize) -> Result<f64> {
    let iv = Intervention::new(sae.hook, Op::Replace(pass.replacement.clone()));
    let logits = model.forward(&pass.tokens, &mut HookSet::intervening(vec![iv]))?;
    Ok(summed_loss(&logits, window, from)?.0)
}

/// One scoring window's losses (see `scored_windows`): clean, with the SAE's reconstruction spliced in, and
/// with `zero_ablate` also with the hook set to zero.
pub fn window_losses(
    model: &Transformer,
    sae: &LmSae,
    window: &[u32],
    from: usize,
    zero_ablate: bool,
) -> Result<LossTally> {
    let pass = clean_pass(model, sae, window, from)?;
    let spliced = spliced_pass(model, sae, &pass, window, from)?;
    let zero_ablated = if zero_ablate {
        let logits =
            model.forward(&pass.tokens, &mut HookSet::intervening(vec![Intervention::new(sae.hook, Op::Zero)]))?;
        summed_loss(&logits, window, from)?.0
    } else {
        0.0
    };
    Ok(LossTally { clean: pass.clean, spliced, zero_ablated, count: pass.count })
}

/// `window_losses` over every scoring window of `ids`.
pub fn spliced_losses(model: &Transformer, sae: &LmSae, ids: &[u32], zero_ablate: bool) -> Result<LossTally> {
    let n = model.cfg.n_positions;
    let mut tally = LossTally::default();
    for (start, from) in scored_windows(ids.len(), n) {
        tally.add(window_losses(model, sae, &ids[start..(start + n).min(ids.len())], from, zero_ablate)?);
    }
    Ok(tally)
}

// ---------------------------------------------------------------- the logit effect of a latent

/// Per latent, the change in every output logit that its decoder direction makes through the direct path:
/// `W_U (γ ⊙ (d_j − mean(d_j)))`, `d_sae x vocab`. The final LayerNorm centres a vector and scales it by γ
/// and by 1/σ of the whole residual vector; this keeps the centring and γ and drops 1/σ, which depends on
/// the position and is the same positive factor for every character, so the ranking of characters holds.
/// Layers after the hook can still transform the direction; this is only the path that skips them.
pub fn logit_effects(model: &Transformer, sae: &LmSae) -> Result<Vec<f32>> {
    check_width(model, sae)?;
    let tensors = model.to_tensors()?;
    let find = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone());
    let gamma: Vec<f32> = find("transformer.ln_f.weight")
        .ok_or_else(|| LensError::Weights("ln_f.weight is missing".into()))?
        .to_vec1()?;
    let w_u = find("lm_head.weight")
        .or_else(|| find("transformer.wte.weight"))
        .ok_or_else(|| LensError::Weights("no unembedding".into()))?;
    let w_u: Vec<f32> = w_u.flatten_all()?.to_vec1()?; // [vocab][d_model]
    let d = sae.d_in;
    let vocab = w_u.len() / d;
    let mut out = Vec::with_capacity(sae.d_sae * vocab);
    for j in 0..sae.d_sae {
        let dir = sae.direction(j);
        let mean = dir.iter().sum::<f32>() / d as f32;
        let v: Vec<f32> = dir.iter().zip(&gamma).map(|(x, g)| (x - mean) * g).collect();
        for c in 0..vocab {
            out.push(dot(&v, &w_u[c * d..(c + 1) * d]));
        }
    }
    Ok(out)
}

/// Latent `j`'s row of `logit_effects` alone, `[vocab]`: for a model whose every row at once would be too big
/// (GPT-2 small's 24,576 latents × 50,257 tokens).
pub fn logit_effect_row(model: &Transformer, sae: &LmSae, j: usize) -> Result<Vec<f32>> {
    check_width(model, sae)?;
    if j >= sae.d_sae {
        return Err(LensError::Input(format!("there is no latent {j}: the SAE has {}", sae.d_sae)));
    }
    let gamma: Vec<f32> = model.ln_f_gain().to_vec1()?;
    let dir = sae.direction(j);
    let d = sae.d_in;
    let mean = dir.iter().sum::<f32>() / d as f32;
    let v: Vec<f32> = dir.iter().zip(&gamma).map(|(x, g)| (x - mean) * g).collect();
    let v = Tensor::from_vec(v, (1, d), &Device::Cpu)?;
    Ok(model.unembed_slice(&v, 0, model.cfg.vocab_size)?.flatten_all()?.to_vec1()?)
}

/// The `k` highest and `k` lowest entries of one latent's row of `logit_effects`, as (index, value),
/// highest first and lowest first.
#[allow(clippy::type_complexity)]
pub fn promoted_and_suppressed(row: &[f32], k: usize) -> (Vec<(usize, f32)>, Vec<(usize, f32)>) {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    let top = idx.iter().take(k).map(|&i| (i, row[i])).collect();
    let bottom = idx.iter().rev().take(k).map(|&i| (i, row[i])).collect();
    (top, bottom)
}

// ---------------------------------------------------------------- the feature index

/// One of a latent's top activating contexts in a text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopContext {
    /// The position (character index) where the latent peaks.
    pub pos: usize,
    /// The first character shown.
    pub start: usize,
    /// The activation at `pos`.
    pub peak: f32,
    /// One hex digit per character from `start`: the latent's activation there as a share of the latent's
    /// maximum, in sixteenths, rounded (`0` is below 1/32 of the maximum, not necessarily zero).
    pub acts: String,
}

/// A latent's card in the feature browser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatentCard {
    /// Positions where the latent is active (> 0).
    pub count: usize,
    /// `count` over all positions.
    pub density: f32,
    /// The largest activation (0 for a dead latent).
    pub max: f32,
    /// Counts of the nonzero activations in `bins` equal bins over (0, max].
    pub hist: Vec<u32>,
    pub contexts: Vec<TopContext>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureIndex {
    /// Characters indexed (all of the text).
    pub positions: usize,
    /// How many characters are shown before and after each peak.
    pub before: usize,
    pub after: usize,
    pub latents: Vec<LatentCard>,
}

#[derive(Clone, Copy, Debug)]
pub struct IndexSettings {
    pub top: usize,
    pub before: usize,
    pub after: usize,
    pub bins: usize,
}

impl Default for IndexSettings {
    fn default() -> Self {
        IndexSettings { top: 8, before: 40, after: 10, bins: 20 }
    }
}

/// Quantises `a` against `max` to one hex digit (see `TopContext::acts`).
pub fn quantise(a: f32, max: f32) -> char {
    let q = if max > 0.0 { (a / max * 16.0).round().clamp(0.0, 15.0) as u32 } else { 0 };
    char::from_digit(q, 16).expect("0..=15")
}

/// The share of the maximum that a hex digit of `TopContext::acts` stands for.
pub fn dequantise(c: char) -> f32 {
    c.to_digit(16).map_or(0.0, |q| q as f32 / 16.0)
}

/// Builds every latent's card from per-position activations (`latent_activations`). Top contexts are the
/// highest peaks whose shown spans do not overlap an already chosen one, so one long passage cannot fill them.
pub fn build_index(acts: &[Vec<(u32, f32)>], d_sae: usize, s: IndexSettings) -> FeatureIndex {
    let mut build = IndexBuild::new(acts, d_sae, s);
    while !build.step(acts, usize::MAX) {}
    build.finish()
}

/// `build_index` a few latents per `step`, so the browser can build a big SAE's index between frames (GPT-2
/// small's SAEs have 24,576 latents). The same cards.
pub struct IndexBuild {
    settings: IndexSettings,
    positions: usize,
    /// Each latent's (position, activation) where it is active, taken as its card is made.
    per: Vec<Vec<(usize, f32)>>,
    latents: Vec<LatentCard>,
}

impl IndexBuild {
    /// Sorts the activations by latent (one pass over them).
    pub fn new(acts: &[Vec<(u32, f32)>], d_sae: usize, settings: IndexSettings) -> Self {
        let mut per: Vec<Vec<(usize, f32)>> = vec![Vec::new(); d_sae];
        for (p, row) in acts.iter().enumerate() {
            for &(j, a) in row {
                if (j as usize) < d_sae {
                    per[j as usize].push((p, a));
                }
            }
        }
        IndexBuild { settings, positions: acts.len(), per, latents: Vec::with_capacity(d_sae) }
    }

    /// Makes the next `n` latents' cards from the same `acts`; true once every latent has its card.
    pub fn step(&mut self, acts: &[Vec<(u32, f32)>], n: usize) -> bool {
        let s = self.settings;
        let total = self.positions;
        let value_at = |j: usize, p: usize| acts[p].iter().find(|(l, _)| *l as usize == j).map_or(0.0, |(_, a)| *a);
        let end = self.latents.len().saturating_add(n.max(1)).min(self.per.len());
        for j in self.latents.len()..end {
            let mut occ = std::mem::take(&mut self.per[j]);
            let max = occ.iter().map(|o| o.1).fold(0.0f32, f32::max);
            let mut hist = vec![0u32; s.bins];
            for &(_, a) in &occ {
                let b = ((a / max) * s.bins as f32).ceil() as usize;
                hist[b.clamp(1, s.bins) - 1] += 1;
            }
            occ.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut contexts: Vec<TopContext> = Vec::new();
            for &(p, a) in &occ {
                if contexts.len() == s.top {
                    break;
                }
                if contexts.iter().any(|c| p.abs_diff(c.pos) <= s.before + s.after) {
                    continue;
                }
                let start = p.saturating_sub(s.before);
                let end = (p + s.after + 1).min(total);
                let q = (start..end).map(|i| quantise(value_at(j, i), max)).collect();
                contexts.push(TopContext { pos: p, start, peak: a, acts: q });
            }
            let density = occ.len() as f32 / total.max(1) as f32;
            self.latents.push(LatentCard { count: occ.len(), density, max, hist, contexts });
        }
        self.latents.len() == self.per.len()
    }

    /// Share of the latents done, 0 to 1.
    pub fn progress(&self) -> f32 {
        self.latents.len() as f32 / self.per.len().max(1) as f32
    }

    /// The index; call once `step` has returned true.
    pub fn finish(self) -> FeatureIndex {
        let s = self.settings;
        FeatureIndex { positions: self.positions, before: s.before, after: s.after, latents: self.latents }
    }
}

impl FeatureIndex {
    pub fn from_json(text: &str) -> Result<Self> {
        let idx: FeatureIndex = serde_json::from_str(text).map_err(|e| LensError::Data(e.to_string()))?;
        for (j, l) in idx.latents.iter().enumerate() {
            for c in &l.contexts {
                if c.pos >= idx.positions
                    || c.start > c.pos
                    || c.start + c.acts.chars().count() > idx.positions
                    || c.acts.chars().any(|ch| ch.to_digit(16).is_none())
                {
                    return Err(LensError::Data(format!(
                        "latent {j} has a context outside the text or with a bad activation string"
                    )));
                }
            }
        }
        Ok(idx)
    }
}

// ---------------------------------------------------------------- training

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SaeTrainConfig {
    pub d_sae: usize,
    /// λ at the end of its warm-up.
    pub l1: f32,
    pub lr: f64,
    pub batch: usize,
    pub steps: usize,
    /// Steps over which λ rises linearly from 0, so latents find directions before the penalty bites
    /// (fewer of them die early).
    pub l1_warmup: usize,
    pub seed: u64,
}

/// Trains an SAE on `x` (`rows x d_in`) with Adam; after each step the decoder rows are scaled back to unit
/// length, so the L1 penalty cannot be dodged by shrinking f and growing W_dec. `progress(step, loss, mse)`
/// is called every 100 steps and may return false to stop. `SaeTraining` is the same a step at a time.
pub fn train_sae(
    x: &[f32],
    d_in: usize,
    hook: Hook,
    tc: &SaeTrainConfig,
    mut progress: impl FnMut(usize, f32, f32) -> bool,
) -> Result<LmSae> {
    let mut t = SaeTraining::new(x, d_in, hook, tc)?;
    while !t.done() {
        let (loss, mse) = t.step(x)?;
        if (t.steps_done() % 100 == 0 || t.done()) && !progress(t.steps_done(), loss, mse) {
            break;
        }
    }
    t.finish()
}

/// `train_sae` in pieces, one Adam step per `step`, so a browser can train between frames; the same seed gives
/// the same SAE either way (the same draws in the same order).
pub struct SaeTraining {
    tc: SaeTrainConfig,
    d_in: usize,
    hook: Hook,
    rows: usize,
    rng: Rng,
    w_enc: Var,
    b_enc: Var,
    w_dec: Var,
    b_dec: Var,
    opt: candle_nn::AdamW,
    batch: Vec<f32>,
    step: usize,
}

impl SaeTraining {
    /// Draws the starting dictionary for `x` (`rows x d_in`): decoder rows random unit directions, the encoder
    /// tied to them, b_dec the data's mean, so the first reconstructions are the mean rather than the origin.
    pub fn new(x: &[f32], d_in: usize, hook: Hook, tc: &SaeTrainConfig) -> Result<Self> {
        use candle_nn::{AdamW, Optimizer, ParamsAdamW};
        let rows = x.len() / d_in.max(1);
        if rows == 0 || tc.batch == 0 || tc.d_sae == 0 {
            return Err(LensError::Input("training an SAE needs activations, a batch and a dictionary".into()));
        }
        let dev = &Device::Cpu;
        let mut rng = Rng::new(tc.seed);
        let n = tc.d_sae;
        let mut dec: Vec<f32> = (0..n * d_in).map(|_| rng.normal()).collect();
        for row in dec.chunks_exact_mut(d_in) {
            let norm = dot(row, row).sqrt().max(1e-6);
            row.iter_mut().for_each(|v| *v /= norm);
        }
        let mut mean = vec![0.0f32; d_in];
        for row in x.chunks_exact(d_in) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v / rows as f32;
            }
        }
        let w_dec = Var::from_tensor(&Tensor::from_vec(dec, (n, d_in), dev)?)?;
        let w_enc = Var::from_tensor(&w_dec.as_tensor().t()?.contiguous()?)?;
        let b_enc = Var::from_tensor(&Tensor::zeros(n, DType::F32, dev)?)?;
        let b_dec = Var::from_tensor(&Tensor::from_vec(mean, d_in, dev)?)?;
        let params = ParamsAdamW { lr: tc.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };
        let opt = AdamW::new(vec![w_enc.clone(), b_enc.clone(), w_dec.clone(), b_dec.clone()], params)?;
        let batch = vec![0.0f32; tc.batch * d_in];
        Ok(SaeTraining { tc: tc.clone(), d_in, hook, rows, rng, w_enc, b_enc, w_dec, b_dec, opt, batch, step: 0 })
    }

    pub fn steps_done(&self) -> usize {
        self.step
    }

    pub fn done(&self) -> bool {
        self.step >= self.tc.steps
    }

    /// Share of the steps done, 0 to 1.
    pub fn progress(&self) -> f32 {
        self.step as f32 / self.tc.steps.max(1) as f32
    }

    /// One Adam step on a random batch of `x` (the rows `new` saw); the step's loss and MSE.
    pub fn step(&mut self, x: &[f32]) -> Result<(f32, f32)> {
        use candle_nn::Optimizer;
        let (d_in, tc) = (self.d_in, &self.tc);
        if x.len() != self.rows * d_in {
            return Err(LensError::Input("an SAE trains on the activations it started with".into()));
        }
        self.step += 1;
        for b in 0..tc.batch {
            let r = self.rng.range(0, self.rows - 1);
            self.batch[b * d_in..(b + 1) * d_in].copy_from_slice(&x[r * d_in..(r + 1) * d_in]);
        }
        let xb = Tensor::from_slice(&self.batch, (tc.batch, d_in), &Device::Cpu)?;
        let (w_enc, b_enc, w_dec, b_dec) = (&self.w_enc, &self.b_enc, &self.w_dec, &self.b_dec);
        let f =
            xb.broadcast_sub(b_dec.as_tensor())?.matmul(w_enc.as_tensor())?.broadcast_add(b_enc.as_tensor())?.relu()?;
        let x_hat = f.matmul(w_dec.as_tensor())?.broadcast_add(b_dec.as_tensor())?;
        let mse = (x_hat - &xb)?.sqr()?.sum(1)?.mean_all()?;
        let l1 = f.sum(1)?.mean_all()?;
        let lambda = tc.l1 as f64 * (self.step as f64 / tc.l1_warmup.max(1) as f64).min(1.0);
        let loss = (&mse + (l1 * lambda)?)?;
        self.opt.backward_step(&loss)?;
        let w = w_dec.as_tensor();
        let norms = w.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-6, f64::INFINITY)?;
        w_dec.set(&w.broadcast_div(&norms)?)?;
        Ok((loss.to_scalar::<f32>()?, mse.to_scalar::<f32>()?))
    }

    /// The SAE as trained so far.
    pub fn finish(&self) -> Result<LmSae> {
        let v = |t: &Var| -> Result<Vec<f32>> { Ok(t.as_tensor().flatten_all()?.to_vec1()?) };
        let w_enc_rows = self.w_enc.as_tensor().t()?.contiguous()?.flatten_all()?.to_vec1()?;
        LmSae::new(self.hook, self.d_in, self.tc.d_sae, w_enc_rows, v(&self.b_enc)?, v(&self.w_dec)?, v(&self.b_dec)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moby_cfg() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/moby/sae/cfg.json")).unwrap()
    }

    #[test]
    fn the_shipped_saelens_cfg_reads_and_fits_its_model() {
        let c = SaelensCfg::parse(&moby_cfg()).unwrap();
        assert_eq!((c.hook.to_string().as_str(), c.d_in, c.d_sae), ("blocks.2.hook_resid_post", 128, 512));
        assert_eq!(c.model_name.as_deref(), Some("moby"));
        let model =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/moby/config.json")).unwrap();
        c.check_against(&crate::lens::Gpt2Config::from_json(&model).unwrap()).unwrap();
        // Version 6 keeps the hook under `metadata` only.
        let mut v: serde_json::Value = serde_json::from_str(&moby_cfg()).unwrap();
        v.as_object_mut().unwrap().remove("hook_name");
        assert_eq!(SaelensCfg::parse(&v.to_string()).unwrap().hook, c.hook);
    }

    #[test]
    fn an_saelens_cfg_the_engine_cannot_compute_is_refused_with_the_reason() {
        let with = |k: &str, val: serde_json::Value| {
            let mut v: serde_json::Value = serde_json::from_str(&moby_cfg()).unwrap();
            v[k] = val;
            SaelensCfg::parse(&v.to_string()).unwrap_err().to_string()
        };
        assert!(with("architecture", "jumprelu".into()).contains("architecture `jumprelu`"));
        assert!(with("activation_fn_str", "topk".into()).contains("ReLU SAEs only"));
        assert!(with("apply_b_dec_to_input", false.into()).contains("apply_b_dec_to_input is false"));
        assert!(with("normalize_activations", "expected_average_only_in".into()).contains("raw activations"));
        assert!(with("hook_head_index", 3.into()).contains("one head"));
        assert!(with("hook_name", "blocks.2.hook_nonsense".into()).contains("not a TransformerLens hook"));
        assert!(with("d_sae", 0.into()).contains("d_sae is 0"));
        assert!(with("d_in", (1u64 << 40).into()).contains("larger than the browser opens"));
        assert!(SaelensCfg::parse("[1]").unwrap_err().to_string().contains("not a JSON object"));
    }

    #[test]
    fn the_shipped_sae_opens_through_its_saelens_cfg_as_through_sae_json() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/moby/sae/");
        let weights = std::fs::read(format!("{dir}sae_weights.safetensors")).unwrap();
        let ours = LmSae::from_bytes(&std::fs::read_to_string(format!("{dir}sae.json")).unwrap(), &weights).unwrap();
        let theirs = LmSae::from_saelens(&SaelensCfg::parse(&moby_cfg()).unwrap(), &weights).unwrap();
        assert_eq!((ours.hook, ours.d_in, ours.d_sae), (theirs.hook, theirs.d_in, theirs.d_sae));
        assert_eq!(ours.w_enc, theirs.w_enc);
        assert_eq!(ours.w_dec, theirs.w_dec);
        // Both read the file a piece at a time; candle's own reader, whole, must agree.
        let map = candle_core::safetensors::load_buffer(&weights, &Device::Cpu).unwrap();
        let flat = |name: &str, t: bool| -> Vec<f32> {
            let x = &map[name];
            let x = if t { x.t().unwrap().contiguous().unwrap() } else { x.clone() };
            x.flatten_all().unwrap().to_vec1().unwrap()
        };
        assert_eq!(theirs.w_enc, flat("W_enc", true));
        assert_eq!(
            (theirs.b_enc, theirs.w_dec, theirs.b_dec),
            (flat("b_enc", false), flat("W_dec", false), flat("b_dec", false))
        );
        // A cfg.json whose sizes disagree with the weights is refused.
        let wrong = SaelensCfg { d_sae: 256, ..SaelensCfg::parse(&moby_cfg()).unwrap() };
        assert!(LmSae::from_saelens(&wrong, &weights).unwrap_err().to_string().contains("has shape"));
    }

    /// A SAELens weights file of the four tensors in `dtype`, from `values` in SAELens's shapes.
    fn saelens_file(d: usize, n: usize, values: &[Vec<f32>; 4], dtype: safetensors::Dtype) -> Vec<u8> {
        let bytes: Vec<Vec<u8>> = values
            .iter()
            .map(|v| match dtype {
                safetensors::Dtype::F16 => v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect(),
                _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensor_shapes(d, n)
            .into_iter()
            .zip(&bytes)
            .map(|((name, shape), b)| {
                (name.to_string(), safetensors::tensor::TensorView::new(dtype, shape, b).unwrap())
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn read_in_pieces(d: usize, n: usize, file: &[u8], piece: usize) -> Result<LmSae> {
        let hook: Hook = "blocks.0.hook_resid_post".parse().unwrap();
        read_all(file, SaeReader::new(hook, d, n, &index_of(file)?)?, piece)
    }

    #[test]
    fn an_sae_read_a_few_bytes_at_a_time_is_the_file_and_a_damaged_file_is_refused() {
        let (d, n) = (3, 5);
        let mut rng = Rng::new(9);
        let values: [Vec<f32>; 4] =
            tensor_shapes(d, n).map(|(_, shape)| (0..shape.iter().product()).map(|_| rng.normal()).collect());
        // W_enc as latent-major rows, written out by hand: latent j's row is column j of the file's [d, n].
        let rows = |w: &[f32]| -> Vec<f32> { (0..n).flat_map(|j| (0..d).map(move |i| w[i * n + j])).collect() };
        for dtype in [safetensors::Dtype::F32, safetensors::Dtype::F16] {
            let file = saelens_file(d, n, &values, dtype);
            // What the file holds, as the reader must decode it.
            let stored: Vec<Vec<f32>> = values
                .iter()
                .map(|v| match dtype {
                    safetensors::Dtype::F16 => v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect(),
                    _ => v.clone(),
                })
                .collect();
            // Pieces of 6 bytes split values and tensors; a piece of a whole megabyte reads the file at once.
            for piece in [6, 1 << 20] {
                let sae = read_in_pieces(d, n, &file, piece).unwrap();
                assert_eq!(sae.w_enc, rows(&stored[0]), "{dtype:?}, pieces of {piece}");
                assert_eq!((&sae.b_enc, &sae.w_dec, &sae.b_dec), (&stored[1], &stored[2], &stored[3]));
            }
        }
        let why = |file: &[u8]| read_in_pieces(d, n, file, 6).unwrap_err().to_string();
        let mut nan = values.clone();
        nan[3][1] = f32::NAN;
        assert!(why(&saelens_file(d, n, &nan, safetensors::Dtype::F32)).contains("tensor `b_dec` holds NaN"));
        let file = saelens_file(d, n, &values, safetensors::Dtype::F32);
        assert!(why(&file[..file.len() - 4]).contains("cut short"));
        let wide = saelens_file(
            d,
            n + 1,
            &tensor_shapes(d, n + 1).map(|(_, s)| vec![0.5; s.iter().product()]),
            safetensors::Dtype::F32,
        );
        assert!(why(&wide).contains("tensor `W_enc` has shape [3, 6] but cfg.json implies [3, 5]"));
    }

    #[test]
    fn an_sae_for_another_model_or_hook_is_refused() {
        let model = |attn_only| crate::lens::Gpt2Config::new(50, 16, 64, 2, 4, attn_only);
        let sae = |hook: &str, d_in| SaelensCfg { hook: hook.parse().unwrap(), d_in, d_sae: 8, model_name: None };
        assert!(sae("blocks.1.hook_resid_post", 64).check_against(&model(false)).is_ok());
        assert!(sae("blocks.1.mlp.hook_post", 256).check_against(&model(false)).is_ok());
        let why = |s: SaelensCfg, attn_only| s.check_against(&model(attn_only)).unwrap_err().to_string();
        assert!(why(sae("blocks.2.hook_resid_post", 64), false).contains("the model has 2 layers"));
        assert!(why(sae("blocks.1.hook_resid_post", 128), false).contains("another model"));
        assert!(why(sae("blocks.1.attn.hook_pattern", 64), false).contains("splice"));
        assert!(why(sae("blocks.1.hook_mlp_out", 64), true).contains("no MLP"));
    }
}
