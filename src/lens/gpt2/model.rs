//! A GPT-2-style transformer with TransformerLens hook points.
//!
//! tokens -> token + position embeddings -> n_layer pre-LayerNorm blocks -> final LayerNorm -> unembedding.
//! Each block: `x = x + attn(ln1(x))`, then (unless attention-only) `x = x + mlp(ln2(x))`.
//! Weights use the Hugging Face GPT-2 names and layouts (`Conv1D`: weight `[in, out]`, `y = x W + b`).
use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var, D};

use super::config::Gpt2Config;
use super::hooks::{ActivationCache, Hook, HookSet, Intervention};
use crate::lens::fast;
use crate::lens::rng::Rng;
use crate::lens::{LensError, Result};
use glassbox_kernels as kernels;

mod backward;

/// LayerNorm with its affine weight and bias, computed from basic ops so that autograd flows through it.
#[derive(Clone, Debug)]
struct LayerNorm {
    w: Tensor, // [d_model]
    b: Tensor, // [d_model]
}

#[derive(Clone, Debug)]
struct Mlp {
    ln2: LayerNorm,
    fc_w: Tensor,   // [d_model, d_mlp]
    fc_b: Tensor,   // [d_mlp]
    proj_w: Tensor, // [d_mlp, d_model]
    proj_b: Tensor, // [d_model]
}

#[derive(Clone, Debug)]
struct Block {
    ln1: LayerNorm,
    attn_w: Tensor, // c_attn [d_model, 3 * d_model]: columns are Q | K | V, each head-major
    attn_b: Tensor, // [3 * d_model]
    proj_w: Tensor, // c_proj [d_model, d_model]: rows are head-major z
    proj_b: Tensor, // [d_model]
    /// None for attention-only models: the stored MLP weights are zeros and are skipped.
    mlp: Option<Mlp>,
}

/// Keys and values of the tokens seen so far, per layer, for incremental decoding (`forward_cached`).
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    /// `(k, v)` per layer, each `[batch, head, len, d_head]`; None before the first token.
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
    batch: usize,
}

impl KvCache {
    pub fn new() -> Self {
        KvCache::default()
    }
    /// How many tokens the cache holds.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A forward pass between its pieces (`Transformer::begin`, `block`, `end`): the residual stream after the
/// blocks run so far. A clone shares its tensors, so a pass can be resumed from the same point more than once.
#[derive(Clone, Debug)]
pub struct Pass {
    resid: Tensor, // [batch, pos, d_model]
    /// The next block to run.
    layer: usize,
    /// Whether that block's attention has run (`resid` is then its `resid_mid`): see `Transformer::half_block`.
    mid: bool,
    batch: usize,
    pos: usize,
    /// Where the new tokens start (the tokens already in the key/value cache).
    start: usize,
    mask: Tensor, // [pos, start + pos]
}

impl Pass {
    /// Blocks run so far.
    pub fn layers_done(&self) -> usize {
        self.layer
    }

    /// Whether the next block's attention has run (the pass stands between its two halves).
    pub fn mid_block(&self) -> bool {
        self.mid
    }

    /// The same pass with its residual stream replaced by `resid` (same shape): what the later blocks see when
    /// an intervention replaces `blocks.{l}.hook_resid_post` at the point the pass stands at.
    pub fn with_resid(&self, resid: Tensor) -> Result<Pass> {
        if resid.dims() != self.resid.dims() {
            return Err(LensError::Input(format!(
                "a residual stream of shape {:?} cannot stand in for one of shape {:?}",
                resid.dims(),
                self.resid.dims()
            )));
        }
        Ok(Pass { resid, ..self.clone() })
    }

    /// The residual stream where the pass stands, `[batch, pos, d_model]`.
    pub fn resid(&self) -> &Tensor {
        &self.resid
    }
}

/// A forward pass that owns its hooks, taken half a block at a time (`step`: a block's attention, then its MLP),
/// for work that must give the thread back between pieces. Its logits and hooks (with the cache) equal
/// `forward`'s.
pub struct Stepped {
    pass: Option<Pass>,
    logits: Option<Tensor>,
    pub hooks: HookSet,
}

impl Stepped {
    /// Embeds `tokens` (one sequence); nothing else runs yet.
    pub fn new(model: &Transformer, tokens: &[u32], mut hooks: HookSet) -> Result<Stepped> {
        model.check_tokens(tokens)?;
        let t = Tensor::from_slice(tokens, (1, tokens.len()), &Device::Cpu)?;
        let pass = model.begin(&t, None, &mut hooks)?;
        Ok(Stepped { pass: Some(pass), logits: None, hooks })
    }

    /// Goes on from `pass` (one sequence, from `Transformer::begin` or a `Stepped`'s `pass`), with `hooks` on the
    /// pieces still to run.
    pub fn resume(pass: Pass, hooks: HookSet) -> Stepped {
        Stepped { pass: Some(pass), logits: None, hooks }
    }

    /// Where the pass stands, until the unembedding has run.
    pub fn pass(&self) -> Option<&Pass> {
        self.pass.as_ref()
    }

    /// Runs half a block (see `Transformer::half_block`), or the unembedding after the last; true once the
    /// logits are ready.
    pub fn step(&mut self, model: &Transformer) -> Result<bool> {
        let Some(mut pass) = self.pass.take() else { return Ok(true) };
        if pass.layer < model.cfg.n_layer {
            model.half_block(&mut pass, &mut self.hooks)?;
            self.pass = Some(pass);
            return Ok(false);
        }
        self.logits = Some(model.end(pass, None, &mut self.hooks)?);
        Ok(true)
    }

    /// The share of the pass done, in [0, 1].
    pub fn progress(&self, model: &Transformer) -> f32 {
        match &self.pass {
            Some(p) => (p.layer as f32 + if p.mid { 0.5 } else { 0.0 }) / (model.cfg.n_layer + 1) as f32,
            None => 1.0,
        }
    }

    /// The logits `[1, pos, vocab]` and the hooks (with their cache), once `step` has returned true.
    pub fn finish(self) -> Result<(Tensor, HookSet)> {
        match self.logits {
            Some(l) => Ok((l, self.hooks)),
            None => Err(LensError::Input("the forward pass is not finished: step it to the end first".into())),
        }
    }
}

/// One block's attention taken apart by head, as TransformerLens's `use_split_qkv_input` and `use_attn_result`
/// expose it: every head reads its query, key and value from its own copy of the residual stream
/// (`blocks.{l}.hook_q_input` and so on, each through ln1) and writes its own result (`attn.hook_result`, its z
/// through its rows of the output projection, without the bias). Given the same residual stream everywhere, the
/// results plus `b_o` sum to `hook_attn_out`. Edge patching (ACDC) builds each input from chosen senders.
#[derive(Clone, Debug)]
pub struct SplitAttention {
    ln1: LayerNorm,
    eps: f64,
    w: Tensor,   // [3, head, d_model, d_head]: W_Q, W_K, W_V
    b: Tensor,   // [3, head, 1, d_head]
    w_o: Tensor, // [head, d_head, d_model]
    /// The output projection's bias `[d_model]`: added once per layer, not per head.
    pub b_o: Tensor,
    /// sqrt(d_head) when the model scales its scores.
    scale: Option<f64>,
    mask: Tensor, // [n_positions, n_positions]
}

impl SplitAttention {
    /// The results of `heads` (one sequence), each from its own inputs: `inputs` `[3, heads.len(), pos, d_model]`
    /// holds the query, key and value inputs of each listed head, in that order. Returns `[heads.len(), pos, d_model]`.
    pub fn results(&self, heads: &[usize], inputs: &Tensor) -> Result<Tensor> {
        let (three, n, pos, d) = inputs.dims4()?;
        if three != 3 || n != heads.len() {
            return Err(LensError::Input(format!(
                "expected q, k and v inputs for {} heads, got shape {:?}",
                heads.len(),
                inputs.dims()
            )));
        }
        let d_head = self.w.dim(3)?;
        let idx = Tensor::from_vec(heads.iter().map(|&h| h as u32).collect::<Vec<_>>(), n, inputs.device())?;
        let w = self.w.index_select(&idx, 1)?.reshape((3 * n, d, d_head))?;
        let b = self.b.index_select(&idx, 1)?.reshape((3 * n, 1, d_head))?;
        let (_, normed) = self.ln1.forward(inputs, self.eps)?;
        let qkv = normed.reshape((3 * n, pos, d))?.matmul(&w)?.broadcast_add(&b)?; // [3 head, pos, d_head]
        let (q, k, v) = (qkv.narrow(0, 0, n)?, qkv.narrow(0, n, n)?, qkv.narrow(0, 2 * n, n)?.contiguous()?);
        let scores = q.contiguous()?.matmul(&k.t()?)?; // [head, q, k]
        let scores = match self.scale {
            Some(s) => (scores / s)?,
            None => scores,
        };
        let mask = self.mask.narrow(0, 0, pos)?.narrow(1, 0, pos)?;
        let pattern = softmax_rows(&scores.broadcast_add(&mask)?)?;
        let z = pattern.matmul(&v)?; // [head, pos, d_head]
        Ok(z.matmul(&self.w_o.index_select(&idx, 0)?)?) // [head, pos, d_model]
    }
}

#[derive(Clone, Debug)]
pub struct Transformer {
    pub cfg: Gpt2Config,
    wte: Tensor, // [vocab, d_model]
    wpe: Tensor, // [n_positions, d_model]
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    lm_head: Tensor, // [vocab, d_model]
    /// `lm_head` transposed and contiguous, `[d_model, vocab]`, made once: the unembedding matmul is the largest
    /// in a small model, and a transposed operand costs it ~30 %. Not used while training, where the weights
    /// change under it (see `unembedding`).
    lm_head_t: Tensor,
    /// Additive causal mask [n_positions, n_positions]: 0 on and below the diagonal, -inf above.
    mask: Tensor,
    /// Every parameter under its Hugging Face name, in file order (the same tensors as the fields above),
    /// for `to_tensors`.
    params: Vec<(String, Tensor)>,
    /// Set while training: softmax then uses ops that autograd can differentiate.
    pub autograd: bool,
}

/// How `Transformer::init` fills a parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Drawn from N(0, std²) with the seeded `Rng`, element after element in row-major order.
    Normal(f32),
    Ones,
    Zeros,
}

/// One tensor of a GPT-2 folder.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The Hugging Face name, e.g. `transformer.h.0.attn.c_attn.weight`.
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    /// The MLP of an attention-only model: written (identity ln_2, zero weights) so that any GPT-2 reader
    /// computes the same logits, but never read back, used or trained.
    pub stored_only: bool,
}

/// `Transformer::init`'s draws, one parameter per `step`, then the model as plain tensors. For the browser: a
/// model of the Moby-Dick model's shape is about 800,000 normal draws (each a logarithm, a square root and a
/// cosine), a 55 ms task in one call; a step draws one parameter (at most 65,536 numbers).
pub struct RandomInit {
    cfg: Gpt2Config,
    rng: Rng,
    /// Each parameter's size and fill, in file order (`build`'s order, which `init` draws in).
    specs: Vec<(usize, Init)>,
    drawn: Vec<Vec<f32>>,
}

impl RandomInit {
    pub fn new(cfg: Gpt2Config, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let mut specs = Vec::new();
        // The parameter table, walked once with empty placeholders to learn its order, sizes and fills.
        build(&cfg, |p| {
            specs.push((p.shape.iter().product(), p.init));
            Ok(Tensor::zeros(p.shape.as_slice(), DType::F32, &Device::Cpu)?)
        })?;
        Ok(RandomInit { cfg, rng: Rng::new(seed), specs, drawn: Vec::new() })
    }

    /// Draws the next parameter; true once every parameter is drawn.
    pub fn step(&mut self) -> bool {
        if let Some(&(n, init)) = self.specs.get(self.drawn.len()) {
            self.drawn.push(match init {
                Init::Normal(std) => (0..n).map(|_| self.rng.normal() * std).collect(),
                Init::Ones => vec![1.0; n],
                Init::Zeros => vec![0.0; n],
            });
        }
        self.drawn.len() == self.specs.len()
    }

    /// The share of the parameters drawn.
    pub fn progress(&self) -> f32 {
        self.drawn.len() as f32 / self.specs.len().max(1) as f32
    }

    pub fn finish(self) -> Result<Transformer> {
        if self.drawn.len() < self.specs.len() {
            return Err(LensError::Input("the random model is not drawn yet: step it to the end first".into()));
        }
        let mut drawn = self.drawn.into_iter();
        let (weights, params) = build(&self.cfg, |p| {
            let data = drawn.next().expect("one drawn parameter per parameter of the table");
            Ok(Tensor::from_vec(data, p.shape.as_slice(), &Device::Cpu)?)
        })?;
        Transformer::assemble(self.cfg, weights, params)
    }
}

/// The weights as `Transformer` holds them, before the derived tensors (mask, transposed unembedding).
struct Weights {
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    lm_head: Tensor,
}

/// The one place where GPT-2's parameters are named. Builds the weights in file order, asking `param` for each
/// tensor by its Hugging Face name, shape and initialisation, and returns them with every parameter it asked
/// for, in that order. Loading (`from_tensors`), saving (`to_tensors`), `init` (which draws its random numbers
/// in this order, so a seed always gives the same model) and `parameters` all go through it.
fn build(cfg: &Gpt2Config, mut param: impl FnMut(&Param) -> Result<Tensor>) -> Result<(Weights, Vec<(Param, Tensor)>)> {
    use Init::{Ones, Zeros};
    let (d, v, p, m) = (cfg.d_model(), cfg.vocab_size, cfg.n_positions, cfg.d_mlp());
    // GPT-2's initialisation: N(0, 0.02), with the projections into the residual stream scaled by
    // 1/sqrt(2 n_layer); LayerNorms at identity, biases zero.
    let normal = Init::Normal(0.02);
    let proj = Init::Normal(0.02 / (2.0 * cfg.n_layer as f32).sqrt());
    let mut all = Vec::new();
    let mut get = |name: String, shape: Vec<usize>, init: Init, stored_only: bool| -> Result<Tensor> {
        let p = Param { name, shape, init, stored_only };
        let t = param(&p)?;
        all.push((p, t.clone()));
        Ok(t)
    };
    let wte = get("transformer.wte.weight".into(), vec![v, d], normal, false)?;
    let wpe = get("transformer.wpe.weight".into(), vec![p, d], normal, false)?;
    let mut blocks = Vec::with_capacity(cfg.n_layer);
    for l in 0..cfg.n_layer {
        let h = |s: &str| format!("transformer.h.{l}.{s}");
        let ln1 = LayerNorm {
            w: get(h("ln_1.weight"), vec![d], Ones, false)?,
            b: get(h("ln_1.bias"), vec![d], Zeros, false)?,
        };
        let attn_w = get(h("attn.c_attn.weight"), vec![d, 3 * d], normal, false)?;
        let attn_b = get(h("attn.c_attn.bias"), vec![3 * d], Zeros, false)?;
        let proj_w = get(h("attn.c_proj.weight"), vec![d, d], proj, false)?;
        let proj_b = get(h("attn.c_proj.bias"), vec![d], Zeros, false)?;
        // An attention-only model stores an MLP that adds nothing: identity ln_2, zero weights.
        let off = cfg.attn_only;
        let (fc_init, proj_init) = if off { (Zeros, Zeros) } else { (normal, proj) };
        let mlp = Mlp {
            ln2: LayerNorm {
                w: get(h("ln_2.weight"), vec![d], Ones, off)?,
                b: get(h("ln_2.bias"), vec![d], Zeros, off)?,
            },
            fc_w: get(h("mlp.c_fc.weight"), vec![d, m], fc_init, off)?,
            fc_b: get(h("mlp.c_fc.bias"), vec![m], Zeros, off)?,
            proj_w: get(h("mlp.c_proj.weight"), vec![m, d], proj_init, off)?,
            proj_b: get(h("mlp.c_proj.bias"), vec![d], Zeros, off)?,
        };
        blocks.push(Block { ln1, attn_w, attn_b, proj_w, proj_b, mlp: (!off).then_some(mlp) });
    }
    let ln_f = LayerNorm {
        w: get("transformer.ln_f.weight".into(), vec![d], Ones, false)?,
        b: get("transformer.ln_f.bias".into(), vec![d], Zeros, false)?,
    };
    let lm_head =
        if cfg.tie_word_embeddings { wte.clone() } else { get("lm_head.weight".into(), vec![v, d], normal, false)? };
    Ok((Weights { wte, wpe, blocks, ln_f, lm_head }, all))
}

/// Every tensor of a GPT-2 folder with `cfg`, in file order: name, shape and initialisation.
pub fn parameters(cfg: &Gpt2Config) -> Vec<Param> {
    // `build` only stores what it is given, so one scalar stands in for every tensor.
    let placeholder = Tensor::new(0f32, &Device::Cpu).expect("a scalar on the CPU");
    let (_, all) = build(cfg, |_| Ok(placeholder.clone())).expect("placeholders never fail");
    all.into_iter().map(|(p, _)| p).collect()
}

/// Which tensors a GPT-2 folder holds, in Hugging Face names, with their shapes.
pub fn weight_shapes(cfg: &Gpt2Config) -> Vec<(String, Vec<usize>)> {
    parameters(cfg).into_iter().map(|p| (p.name, p.shape)).collect()
}

/// A stored-only parameter's constant value (`Init::Ones` or `Init::Zeros`).
fn constant(p: &Param) -> Result<Tensor> {
    let device = Device::Cpu;
    Ok(match p.init {
        Init::Ones => Tensor::ones(p.shape.as_slice(), DType::F32, &device)?,
        _ => Tensor::zeros(p.shape.as_slice(), DType::F32, &device)?,
    })
}

fn causal_mask(n: usize, device: &Device) -> Result<Tensor> {
    let data: Vec<f32> = (0..n * n).map(|i| if i % n > i / n { f32::NEG_INFINITY } else { 0.0 }).collect();
    Ok(Tensor::from_vec(data, (n, n), device)?)
}

/// Softmax over the last dimension without autograd, skipping the masked (-inf) entries: half of a causal
/// pattern is masked, and `exp` dominated the forward pass (measured: ~40 % of it with candle's softmax).
/// A row with no finite entry comes out NaN, as a softmax over nothing should. The loop is
/// `glassbox_kernels::softmax_rows` (a vectorised exp).
fn softmax_rows(scores: &Tensor) -> Result<Tensor> {
    let n = scores.dim(D::Minus1)?;
    fast::map(scores, &mut |x, out| {
        out.copy_from_slice(x);
        kernels::softmax_rows(out, n);
    })
}

/// `x W + b` for x `[batch, pos, in]`, W `[in, out]`: flattened to one matmul, which is faster than a batched one.
/// Without autograd `fast::linear` (in the browser the bias is added inside the product's pass), not candle's
/// broadcast op.
fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (batch, pos, d_in) = x.dims3()?;
    let x = x.reshape((batch * pos, d_in))?;
    let y = if fast::plain(&[&x, w, b]) { fast::linear(&x, w, b)? } else { fast::matmul(&x, w)?.broadcast_add(b)? };
    Ok(y.reshape((batch, pos, w.dim(1)?))?)
}

/// gelu_new, the tanh approximation, written as `x * sigmoid(2u)` with `u = sqrt(2/pi) (x + 0.044715 x^3)`, which
/// equals `0.5 x (1 + tanh(u))` up to rounding. Used because the scalar `tanhf` behind candle's `gelu` (forward
/// and backward) took over a quarter of a training step (and of a forward pass); the fused sigmoid has its own
/// cheap backward.
/// Without autograd it is one vectorised pass (`glassbox_kernels::gelu_new`) instead of seven candle ops with a
/// scalar `exp` each.
fn gelu_new_fast(x: &Tensor) -> Result<Tensor> {
    if fast::plain(&[x]) {
        return fast::map(x, &mut |x, out| kernels::gelu_new(x, out));
    }
    let c = 2.0 * (2.0 / std::f64::consts::PI).sqrt();
    let u = (x + (x.sqr()? * x)?.affine(0.044715, 0.0)?)?.affine(c, 0.0)?;
    Ok((x * candle_nn::ops::sigmoid(&u)?)?)
}

impl LayerNorm {
    /// Returns `(scale, normalized)` as TransformerLens hooks them: scale = sqrt(var + eps) `[batch, pos, 1]`.
    /// Without autograd, one pass per row (`glassbox_kernels::layer_norm`) instead of nine candle ops.
    fn forward(&self, x: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
        if fast::plain(&[x, &self.w, &self.b]) && x.dims().last() == Some(&self.w.elem_count()) {
            let dims = x.dims();
            let rows = x.elem_count() / self.w.elem_count().max(1);
            let (w, b) = (self.w.to_vec1::<f32>()?, self.b.to_vec1::<f32>()?);
            let mut scale = vec![0f32; rows];
            let normalized = fast::map(x, &mut |x, out| kernels::layer_norm(x, &w, &b, eps as f32, out, &mut scale))?;
            let mut scale_dims = dims.to_vec();
            *scale_dims.last_mut().expect("a LayerNorm input has a last dimension") = 1;
            return Ok((Tensor::from_vec(scale, scale_dims, x.device())?, normalized));
        }
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let scale = (centred.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?;
        let normalized = centred.broadcast_div(&scale)?.broadcast_mul(&self.w)?.broadcast_add(&self.b)?;
        Ok((scale, normalized))
    }
}

impl Transformer {
    /// Builds a model from tensors named as in a Hugging Face GPT-2 `model.safetensors`, checking every shape.
    /// Names without the `transformer.` prefix (a bare `GPT2Model`) are accepted too.
    pub fn from_tensors(cfg: Gpt2Config, map: HashMap<String, Tensor>) -> Result<Self> {
        Self::from_tensor_map(cfg, map, true, None)
    }

    /// `from_tensors` for f32 tensors already checked to be finite, with the unembedding already transposed
    /// (`open::WeightsReader` checks and transposes a piece at a time): skips the second pass over every value
    /// and the transpose, each a single long task for GPT-2 small (124M values; a 38M-value copy).
    pub fn from_checked_tensors(cfg: Gpt2Config, map: HashMap<String, Tensor>, lm_head_t: Tensor) -> Result<Self> {
        Self::from_tensor_map(cfg, map, false, Some(lm_head_t))
    }

    fn from_tensor_map(
        cfg: Gpt2Config,
        mut map: HashMap<String, Tensor>,
        check: bool,
        lm_head_t: Option<Tensor>,
    ) -> Result<Self> {
        cfg.validate()?;
        let mut take = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let t = map
                .remove(name)
                .or_else(|| name.strip_prefix("transformer.").and_then(|n| map.remove(n)))
                .ok_or_else(|| LensError::Weights(format!("tensor `{name}` is missing")))?;
            if t.dims() != shape {
                return Err(LensError::Weights(format!(
                    "tensor `{name}` has shape {:?}, expected {shape:?}",
                    t.dims()
                )));
            }
            let t = t.to_dtype(DType::F32)?;
            // A corrupt file can hold NaN or infinities that would silently poison every view.
            let bad = check && t.flatten_all()?.to_vec1::<f32>()?.iter().any(|v| !v.is_finite());
            if bad {
                return Err(LensError::Weights(format!("tensor `{name}` contains NaN or infinite values")));
            }
            Ok(t)
        };
        let (weights, params) = build(&cfg, |p| if p.stored_only { constant(p) } else { take(&p.name, &p.shape) })?;
        match lm_head_t {
            Some(t) if t.dims() == [cfg.d_model(), cfg.vocab_size] => Self::assemble_with(cfg, weights, params, t),
            Some(t) => Err(LensError::Weights(format!("the transposed unembedding has shape {:?}", t.dims()))),
            None => Self::assemble(cfg, weights, params),
        }
    }

    /// The model from its weights and the named list `build` made of them.
    fn assemble(cfg: Gpt2Config, w: Weights, params: Vec<(Param, Tensor)>) -> Result<Self> {
        let lm_head_t = w.lm_head.t()?.contiguous()?.detach();
        Self::assemble_with(cfg, w, params, lm_head_t)
    }

    /// `assemble` with the unembedding's transpose `[d_model, vocab]` given.
    fn assemble_with(cfg: Gpt2Config, w: Weights, params: Vec<(Param, Tensor)>, lm_head_t: Tensor) -> Result<Self> {
        let mask = causal_mask(cfg.n_positions, &Device::Cpu)?;
        let params = params.into_iter().map(|(p, t)| (p.name, t)).collect();
        let Weights { wte, wpe, blocks, ln_f, lm_head } = w;
        Ok(Transformer { cfg, wte, wpe, blocks, ln_f, lm_head, lm_head_t, mask, params, autograd: false })
    }

    /// Loads `config.json` text and `model.safetensors` bytes, as fetched by the app or read from disk.
    pub fn from_bytes(config_json: &str, safetensors: &[u8]) -> Result<Self> {
        let cfg = Gpt2Config::from_json(config_json)?;
        let map = candle_core::safetensors::load_buffer(safetensors, &Device::Cpu)
            .map_err(|e| LensError::Weights(format!("not a readable safetensors file ({e})")))?;
        Self::from_tensors(cfg, map)
    }

    /// A freshly initialised model for training, GPT-2 style: N(0, 0.02) weights, residual projections scaled by
    /// 1/sqrt(2 n_layer), LayerNorms at identity. Returns the trainable variables with their HF names.
    pub fn init(cfg: Gpt2Config, rng: &mut Rng) -> Result<(Self, Vec<(String, Var)>)> {
        cfg.validate()?;
        let mut vars = Vec::new();
        let (weights, params) = build(&cfg, |p| {
            let n = p.shape.iter().product();
            let data: Vec<f32> = match p.init {
                Init::Normal(std) => (0..n).map(|_| rng.normal() * std).collect(),
                Init::Ones => vec![1.0; n],
                Init::Zeros => vec![0.0; n],
            };
            let t = Tensor::from_vec(data, p.shape.as_slice(), &Device::Cpu)?;
            if p.stored_only {
                return Ok(t);
            }
            let var = Var::from_tensor(&t)?;
            vars.push((p.name.clone(), var.clone()));
            Ok(var.as_tensor().clone())
        })?;
        let mut model = Self::assemble(cfg, weights, params)?;
        model.autograd = true;
        Ok((model, vars))
    }

    /// A randomly initialised model drawn as `init` draws it from `Rng::new(seed)`, as plain tensors (no
    /// training variables, autograd off): the same numbers as `init`, in one go (`RandomInit` in steps).
    pub fn random(cfg: Gpt2Config, seed: u64) -> Result<Self> {
        let mut r = RandomInit::new(cfg, seed)?;
        while !r.step() {}
        r.finish()
    }

    /// Every weight under its Hugging Face GPT-2 name, in file order, ready for `model.safetensors`.
    /// Attention-only models include their zero MLP weights (and identity ln_2) so that any GPT-2 reader
    /// computes the same logits.
    pub fn to_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        // Detach from any autograd graph and make contiguous for serialisation.
        self.params.iter().map(|(n, t)| Ok((n.clone(), t.detach().contiguous()?))).collect()
    }

    /// Checks a token sequence before it reaches the model, with a message a student can act on.
    pub fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        if tokens.is_empty() {
            return Err(LensError::Input("the sequence is empty".into()));
        }
        if tokens.len() > self.cfg.n_positions {
            return Err(LensError::Input(format!(
                "the sequence has {} tokens but the model's context holds {}",
                tokens.len(),
                self.cfg.n_positions
            )));
        }
        if let Some(t) = tokens.iter().find(|&&t| t as usize >= self.cfg.vocab_size) {
            return Err(LensError::Input(format!(
                "token id {t} is outside the vocabulary (size {})",
                self.cfg.vocab_size
            )));
        }
        Ok(())
    }

    /// The forward pass on `tokens` `[batch, pos]` (u32), returning logits `[batch, pos, vocab]`.
    /// Every hook point passes through `hooks`, which applies interventions and records the cache.
    pub fn forward(&self, tokens: &Tensor, hooks: &mut HookSet) -> Result<Tensor> {
        self.forward_inner(tokens, None, hooks)
    }

    /// Incremental decoding: runs only the new `tokens` `[batch, new]`, which follow the `kv.len()` tokens whose
    /// keys and values `kv` holds, and appends theirs. Returns logits `[batch, new, vocab]` equal (up to
    /// rounding) to the last `new` rows of a full forward over all the tokens. Hooks see the new positions only:
    /// `attn.hook_pattern` is `[batch, head, new, kv.len() + new]`, and an intervention's `pos` counts from the
    /// first new token.
    pub fn forward_cached(&self, tokens: &Tensor, kv: &mut KvCache, hooks: &mut HookSet) -> Result<Tensor> {
        self.forward_inner(tokens, Some(kv), hooks)
    }

    fn forward_inner(&self, tokens: &Tensor, mut kv: Option<&mut KvCache>, hooks: &mut HookSet) -> Result<Tensor> {
        let mut pass = self.begin(tokens, kv.as_deref_mut(), hooks)?;
        while !self.block(&mut pass, kv.as_deref_mut(), hooks)? {}
        self.end(pass, kv, hooks)
    }

    /// The first piece of a forward pass taken a piece at a time: checks the length and embeds `tokens`
    /// `[batch, pos]`. Then call `block` until it returns true and finish with `end`, passing the same `kv` and
    /// `hooks` every time. The pieces are the very code `forward` runs, so the result is the same; the browser's
    /// main thread uses them to give the thread back between blocks (no task then grows with depth x length).
    pub fn begin(&self, tokens: &Tensor, kv: Option<&mut KvCache>, hooks: &mut HookSet) -> Result<Pass> {
        let (batch, pos) = tokens.dims2()?;
        // Tokens already in the cache come first: the new ones sit at positions start..start + pos.
        let start = kv.as_ref().map_or(0, |c| c.len);
        if pos == 0 || start + pos > self.cfg.n_positions {
            return Err(LensError::Input(format!(
                "sequence length {} is outside 1..={}",
                start + pos,
                self.cfg.n_positions
            )));
        }
        if let Some(c) = kv {
            if c.layers.is_empty() {
                c.layers = vec![None; self.cfg.n_layer];
            }
            if c.layers.len() != self.cfg.n_layer || (start > 0 && c.batch != batch) {
                return Err(LensError::Input("the key/value cache belongs to another model or batch".into()));
            }
            c.batch = batch;
        }
        let d = self.cfg.d_model();
        let embed = self.wte.index_select(&tokens.flatten_all()?, 0)?.reshape((batch, pos, d))?;
        let embed = hooks.run(Hook::Embed, embed)?; // [batch, pos, d_model]
        let pos_embed = self.wpe.narrow(0, start, pos)?.unsqueeze(0)?.broadcast_as((batch, pos, d))?.contiguous()?;
        let pos_embed = hooks.run(Hook::PosEmbed, pos_embed)?;
        let resid = (embed + pos_embed)?;
        // Rows: the new queries; columns: every key so far. [pos, start + pos]
        let mask = self.mask.narrow(0, start, pos)?.narrow(1, 0, start + pos)?;
        Ok(Pass { resid, layer: 0, mid: false, batch, pos, start, mask })
    }

    /// Runs the next block of `pass`; true once every block has run (then call `end`).
    pub fn block(&self, pass: &mut Pass, kv: Option<&mut KvCache>, hooks: &mut HookSet) -> Result<bool> {
        if !pass.mid {
            self.attention_half(pass, kv, hooks)?;
        }
        self.mlp_half(pass, hooks)
    }

    /// The next half of the current block: its attention, or its MLP once the attention has run (a block
    /// without an MLP is finished in one call). Returns true once the last block is done. Half a block of the
    /// Moby model over 128 positions is 5–12 ms in a browser, where a whole block could exceed a slice.
    pub fn half_block(&self, pass: &mut Pass, hooks: &mut HookSet) -> Result<bool> {
        self.half_block_cached(pass, None, hooks)
    }

    /// `half_block` with a key/value cache, for generation on a model whose blocks are too big to take whole in
    /// one slice (GPT-2 small over a 64-token prompt: 0.45G multiply-adds a block).
    pub fn half_block_cached(&self, pass: &mut Pass, kv: Option<&mut KvCache>, hooks: &mut HookSet) -> Result<bool> {
        let has_mlp = self.blocks.get(pass.layer).is_some_and(|b| b.mlp.is_some());
        if pass.mid || !has_mlp {
            return self.block(pass, kv, hooks);
        }
        self.attention_half(pass, kv, hooks)?;
        Ok(false)
    }

    /// A block's attention: `resid_pre` through `attn_out`, leaving `resid_mid` (before its hook) in the pass.
    fn attention_half(&self, pass: &mut Pass, kv: Option<&mut KvCache>, hooks: &mut HookSet) -> Result<()> {
        let l = pass.layer;
        let Some(block) = self.blocks.get(l) else { return Ok(()) };
        let (batch, pos) = (pass.batch, pass.pos);
        let (d, n_heads, d_head) = (self.cfg.d_model(), self.cfg.n_head, self.cfg.d_head());
        let eps = self.cfg.layer_norm_epsilon;
        let resid = hooks.run(Hook::ResidPre(l), pass.resid.clone())?;

        // Attention: x = x + attn(ln1(x))
        let (scale, normed) = block.ln1.forward(&resid, eps)?;
        hooks.run(Hook::Ln1Scale(l), scale)?;
        let normed = hooks.run(Hook::Ln1Normalized(l), normed)?;
        let qkv = linear(&normed, &block.attn_w, &block.attn_b)?; // [batch, pos, 3 d_model]
        let split =
            |i: usize| -> Result<Tensor> { Ok(qkv.narrow(2, i * d, d)?.reshape((batch, pos, n_heads, d_head))?) };
        let q = hooks.run(Hook::Q(l), split(0)?)?; // [batch, pos, head, d_head]
        let k = hooks.run(Hook::K(l), split(1)?)?;
        let v = hooks.run(Hook::V(l), split(2)?)?;
        // Views, not copies: the products below read each head where it lies.
        let q = q.transpose(1, 2)?; // [batch, head, pos, d_head]
        let mut k = k.transpose(1, 2)?;
        let mut v = v.transpose(1, 2)?;
        if let Some(c) = kv {
            // Prepend the cached keys and values: [batch, head, start + pos, d_head], kept contiguous.
            (k, v) = match &c.layers[l] {
                Some((k0, v0)) => (Tensor::cat(&[k0, &k], 2)?, Tensor::cat(&[v0, &v], 2)?),
                None => (k.contiguous()?, v.contiguous()?),
            };
            c.layers[l] = Some((k.clone(), v.clone()));
        }
        // The masked scores are never read (the softmax skips them, or they are set to -inf): left unmade.
        let scores = fast::attention_scores(&q, &k, Some(pass.start))?; // [batch, head, q, k]
        let mul = if self.cfg.scale_attn_weights { 1.0 / (d_head as f64).sqrt() } else { 1.0 };
        let (start, keys) = (pass.start, k.dim(2)?);
        let pattern = if fast::plain(&[&scores]) && !self.autograd && hooks.passes(Hook::AttnScores(l)) {
            // Nobody reads or changes the scores: scaled, masked and softmaxed in one pass (bit for bit the
            // three steps below), over the visible keys only.
            fast::map(&scores, &mut |s, out| {
                kernels::softmax_causal(s, out, pos, keys, start, mul as f32);
            })?
        } else {
            let scores = if fast::plain(&[&scores]) {
                // Scaled and masked in one pass, bit for bit `scores * mul + mask`.
                fast::map(&scores, &mut |s, out| {
                    kernels::scale_causal(s, out, pos, keys, start, mul as f32);
                })?
            } else {
                (scores * mul)?.broadcast_add(&pass.mask)?
            };
            let masked = hooks.leaves(Hook::AttnScores(l));
            let scores = hooks.run(Hook::AttnScores(l), scores)?;
            if self.autograd {
                candle_nn::ops::softmax(&scores, D::Minus1)?
            } else if masked && fast::plain(&[&scores]) {
                // Still masked as above: the softmax over each query's visible keys only (the same values).
                fast::map(&scores, &mut |s, out| {
                    kernels::softmax_visible(s, out, pos, keys, start);
                })?
            } else {
                softmax_rows(&scores)?
            }
        };
        // Zero beyond each query's keys, unless an intervention on the scores or the pattern put something there.
        let causal = (hooks.leaves(Hook::AttnScores(l)) && hooks.leaves(Hook::Pattern(l))).then_some(pass.start);
        let pattern = hooks.run(Hook::Pattern(l), pattern)?; // [batch, head, q, k]
        let z = fast::attention_mix(&pattern, &v, causal)?; // [batch, pos, head, d_head]
        let z = hooks.run(Hook::Z(l), z)?;
        let attn_out = linear(&z.reshape((batch, pos, d))?, &block.proj_w, &block.proj_b)?;
        let attn_out = hooks.run(Hook::AttnOut(l), attn_out)?;
        pass.resid = (resid + attn_out)?;
        pass.mid = true;
        Ok(())
    }

    /// A block's MLP (if it has one) after its attention: `resid_mid` through `resid_post`; then the next block.
    fn mlp_half(&self, pass: &mut Pass, hooks: &mut HookSet) -> Result<bool> {
        let l = pass.layer;
        let Some(block) = self.blocks.get(l) else { return Ok(true) };
        let eps = self.cfg.layer_norm_epsilon;
        let mut resid = pass.resid.clone();
        // MLP: x = x + mlp(ln2(x))
        if let Some(mlp) = &block.mlp {
            resid = hooks.run(Hook::ResidMid(l), resid)?;
            let (scale, normed) = mlp.ln2.forward(&resid, eps)?;
            hooks.run(Hook::Ln2Scale(l), scale)?;
            let normed = hooks.run(Hook::Ln2Normalized(l), normed)?;
            let pre = hooks.run(Hook::MlpPre(l), linear(&normed, &mlp.fc_w, &mlp.fc_b)?)?; // [batch, pos, d_mlp]
            let post = hooks.run(Hook::MlpPost(l), gelu_new_fast(&pre)?)?;
            let mlp_out = hooks.run(Hook::MlpOut(l), linear(&post, &mlp.proj_w, &mlp.proj_b)?)?;
            resid = (resid + mlp_out)?;
        }
        pass.resid = hooks.run(Hook::ResidPost(l), resid)?;
        pass.layer += 1;
        pass.mid = false;
        Ok(pass.layer == self.blocks.len())
    }

    /// The last piece: the final LayerNorm and the unembedding, logits `[batch, pos, vocab]`.
    pub fn end(&self, pass: Pass, kv: Option<&mut KvCache>, hooks: &mut HookSet) -> Result<Tensor> {
        let (batch, pos, d) = (pass.batch, pass.pos, self.cfg.d_model());
        let normed = self.final_normed(pass, kv, hooks)?;
        let logits = fast::matmul(&normed.reshape((batch * pos, d))?, &self.unembedding()?)?;
        Ok(logits.reshape((batch, pos, self.cfg.vocab_size))?)
    }

    /// The final LayerNorm of a finished pass, with its hooks, `[batch, pos, d_model]`: what `end` unembeds.
    fn final_normed(&self, pass: Pass, kv: Option<&mut KvCache>, hooks: &mut HookSet) -> Result<Tensor> {
        if pass.layer < self.blocks.len() {
            return Err(LensError::Input("the forward pass has blocks left to run".into()));
        }
        if let Some(c) = kv {
            c.len = pass.start + pass.pos;
        }
        let (scale, normed) = self.ln_f.forward(&pass.resid, self.cfg.layer_norm_epsilon)?;
        hooks.run(Hook::LnFinalScale, scale)?;
        hooks.run(Hook::LnFinalNormalized, normed)
    }

    /// `end` without the unembedding: the final LayerNorm's output at the last position of each sequence,
    /// `[batch, d_model]`, its hooks run over every position as `end` runs them. For a caller that unembeds a
    /// slice of the vocabulary at a time (`unembed_slice`).
    pub fn end_normed(&self, pass: Pass, kv: Option<&mut KvCache>, hooks: &mut HookSet) -> Result<Tensor> {
        let last = pass.pos - 1;
        let normed = self.final_normed(pass, kv, hooks)?; // [batch, pos, d_model]
        Ok(normed.narrow(1, last, 1)?.squeeze(1)?.contiguous()?)
    }

    /// The unembedding `[d_model, vocab]`. While training (the weights are `Var`s, updated in place, and may be
    /// evaluated mid-run with `autograd` off) a view of the live weights; otherwise the copy made at load.
    fn unembedding(&self) -> Result<Tensor> {
        Ok(if self.autograd || self.lm_head.is_variable() { self.lm_head.t()? } else { self.lm_head_t.clone() })
    }

    /// The last step of the model applied to any residual-stream vectors `[.., d_model]`: the final LayerNorm,
    /// then the unembedding. Returns logits `[.., vocab]`. On the last block's `hook_resid_post` this gives the
    /// model's own logits; on earlier layers it is the logit lens.
    pub fn unembed(&self, resid: &Tensor) -> Result<Tensor> {
        let dims = resid.dims().to_vec();
        let d = self.cfg.d_model();
        if dims.last() != Some(&d) {
            return Err(LensError::Input(format!("expected vectors of size d_model = {d}, got shape {dims:?}")));
        }
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let x = resid.reshape((1, rows, d))?;
        let (_, normed) = self.ln_f.forward(&x, self.cfg.layer_norm_epsilon)?;
        let logits = fast::matmul(&normed.reshape((rows, d))?, &self.unembedding()?)?;
        let mut out = dims;
        *out.last_mut().unwrap() = self.cfg.vocab_size;
        Ok(logits.reshape(out)?)
    }

    /// The final LayerNorm's gain `[d_model]` (`transformer.ln_f.weight`).
    pub fn ln_f_gain(&self) -> &Tensor {
        &self.ln_f.w
    }

    /// The final LayerNorm of residual-stream vectors `[n, d_model]`: what the unembedding reads.
    pub fn final_norm(&self, resid: &Tensor) -> Result<Tensor> {
        let (n, d) = resid.dims2()?;
        let (_, normed) = self.ln_f.forward(&resid.reshape((1, n, d))?, self.cfg.layer_norm_epsilon)?;
        Ok(normed.reshape((n, d))?)
    }

    /// The logits of tokens `from..from + len` only, `[n, len]`, for vectors `normed` `[n, d_model]` already
    /// through `final_norm`: the unembedding a slice of the vocabulary at a time, for a page that keeps each
    /// piece of work short (GPT-2 small's whole unembedding is 39M multiply-adds per vector).
    pub fn unembed_slice(&self, normed: &Tensor, from: usize, len: usize) -> Result<Tensor> {
        fast::matmul(normed, &self.unembedding()?.narrow(1, from, len)?)
    }

    /// The unembedding's columns for `tokens`, `[n, d_model]`: row i is `W_U[:, tokens[i]]`, whose dot product
    /// with a normed residual vector is that token's logit (rows of `lm_head`, read in place).
    pub fn unembedding_columns(&self, tokens: &[u32]) -> Result<Tensor> {
        let ids = Tensor::from_slice(tokens, tokens.len(), self.lm_head.device())?;
        Ok(self.lm_head.index_select(&ids, 0)?.detach())
    }

    /// `unembed_slice` run backwards: from the gradient of the logits of tokens `from..from + len`, `grad_logits`
    /// `[n, len]`, to their part of the gradient at the vectors `normed` `[n, d_model]` they came from,
    /// `grad · W_U[:, from..from + len]ᵀ`. Summed over slices that cover the vocabulary, it is the whole gradient.
    /// Not through autograd, whose matmul backward also forms the weights' gradient (39M values for GPT-2 small's
    /// whole vocabulary) that nothing would read.
    pub fn unembed_backward(&self, grad_logits: &Tensor, from: usize) -> Result<Tensor> {
        let len = grad_logits.dim(D::Minus1)?;
        // lm_head is W_Uᵀ `[vocab, d_model]`, the live weights (see `unembedding`): its rows are the slice's tokens.
        fast::matmul(grad_logits, &self.lm_head.narrow(0, from, len)?)
    }

    /// The embedding of one sequence, token plus position, `[1, pos, d_model]`: the residual stream entering block 0
    /// (`blocks.0.hook_resid_pre`), computed by the same code as `forward`'s first piece.
    pub fn embedding(&self, tokens: &[u32]) -> Result<Tensor> {
        Ok(self.begin(&self.tokens_tensor(tokens)?, None, &mut HookSet::none())?.resid)
    }

    /// Block `layer`'s attention taken apart by head (see `SplitAttention`).
    pub fn split_attention(&self, layer: usize) -> Result<SplitAttention> {
        let block = self.block_at(layer)?;
        let (d, n_heads, d_head) = (self.cfg.d_model(), self.cfg.n_head, self.cfg.d_head());
        // c_attn's columns are Q | K | V, each head-major: [d_model, 3, head, d_head] -> [3, head, d_model, d_head].
        let w = block.attn_w.reshape((d, 3, n_heads, d_head))?.permute((1, 2, 0, 3))?.contiguous()?;
        let b = block.attn_b.reshape((3, n_heads, 1, d_head))?;
        // c_proj's rows are the heads' z, head-major: [head, d_head, d_model].
        let w_o = block.proj_w.reshape((n_heads, d_head, d))?;
        let scale = self.cfg.scale_attn_weights.then(|| (d_head as f64).sqrt());
        Ok(SplitAttention {
            ln1: block.ln1.clone(),
            eps: self.cfg.layer_norm_epsilon,
            w,
            b,
            w_o,
            b_o: block.proj_b.clone(),
            scale,
            mask: self.mask.clone(),
        })
    }

    /// Block `layer`'s MLP on its own input `x` `[1, pos, d_model]` (ln2, then the MLP): its output `[1, pos, d_model]`,
    /// `blocks.{layer}.hook_mlp_out`. None for an attention-only model.
    pub fn mlp_out(&self, layer: usize, x: &Tensor) -> Result<Option<Tensor>> {
        let Some(mlp) = &self.block_at(layer)?.mlp else { return Ok(None) };
        let (_, normed) = mlp.ln2.forward(x, self.cfg.layer_norm_epsilon)?;
        let post = gelu_new_fast(&linear(&normed, &mlp.fc_w, &mlp.fc_b)?)?; // [1, pos, d_mlp]
        Ok(Some(linear(&post, &mlp.proj_w, &mlp.proj_b)?))
    }

    fn block_at(&self, layer: usize) -> Result<&Block> {
        self.blocks.get(layer).ok_or_else(|| {
            LensError::Input(format!("layer {layer} does not exist: the model has {} layers", self.blocks.len()))
        })
    }

    fn tokens_tensor(&self, tokens: &[u32]) -> Result<Tensor> {
        self.check_tokens(tokens)?;
        Ok(Tensor::from_slice(tokens, (1, tokens.len()), &Device::Cpu)?)
    }

    /// One sequence in, logits `[1, pos, vocab]` and every hooked activation out.
    pub fn run_with_cache(&self, tokens: &[u32]) -> Result<(Tensor, ActivationCache)> {
        let mut hooks = HookSet::cache_all();
        let logits = self.forward(&self.tokens_tensor(tokens)?, &mut hooks)?;
        Ok((logits, hooks.cache))
    }

    /// One sequence in, with interventions applied in order at their hooks; logits out.
    pub fn run_with_hooks(&self, tokens: &[u32], interventions: Vec<Intervention>) -> Result<Tensor> {
        let mut hooks = HookSet::intervening(interventions);
        self.forward(&self.tokens_tensor(tokens)?, &mut hooks)
    }

    /// Logits `[1, pos, vocab]` with no hooks: the fastest forward.
    pub fn logits(&self, tokens: &[u32]) -> Result<Tensor> {
        self.forward(&self.tokens_tensor(tokens)?, &mut HookSet::none())
    }
}

/// Per-position next-token loss (nats) from logits `[1, pos, vocab]`: entry i is -log p(tokens[i+1] | tokens[..=i]),
/// so there are pos - 1 entries.
pub fn per_position_loss(logits: &Tensor, tokens: &[u32]) -> Result<Vec<f32>> {
    let rows = logits.get(0)?.to_dtype(DType::F32)?;
    let vocab = rows.dim(1)?;
    let rows = fast::values(&rows)?;
    // log-sum-exp with the vectorised exp (`max_exp_sum`): `f32::exp` is a scalar call in wasm, 4 ms of a first
    // visit to the attention lab (profiled).
    Ok((0..tokens.len().saturating_sub(1))
        .map(|i| {
            let row = &rows[i * vocab..(i + 1) * vocab];
            let (max, sum) = kernels::max_exp_sum(row);
            max + sum.ln() - row[tokens[i + 1] as usize]
        })
        .collect())
}
#[cfg(test)]
mod softmax_tests {
    use super::*;

    #[test]
    fn masked_softmax_equals_candles_and_handles_empty_rows() {
        let v: Vec<f32> = (0..4 * 8 * 8)
            .map(|i| if (i % 8) > (i / 8) % 8 { f32::NEG_INFINITY } else { ((i * 37) % 23) as f32 * 0.7 - 8.0 })
            .collect();
        let t = Tensor::from_vec(v, (1, 4, 8, 8), &Device::Cpu).unwrap();
        let a: Vec<f32> = candle_nn::ops::softmax_last_dim(&t).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = softmax_rows(&t).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "{worst}");
        let empty =
            Tensor::from_vec(vec![f32::NEG_INFINITY, f32::NEG_INFINITY, 1.0, 1.0], (2, 2), &Device::Cpu).unwrap();
        let out: Vec<f32> = softmax_rows(&empty).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert!(out[0].is_nan() && out[1].is_nan() && out[2] == 0.5 && out[3] == 0.5, "{out:?}");
    }
}

#[cfg(test)]
mod unembedding_tests {
    use super::*;
    use crate::lens::rng::Rng;

    /// A model being trained (weights are `Var`s, updated in place) and evaluated mid-run with `autograd`
    /// off must use its current unembedding, not the copy made at construction.
    #[test]
    fn evaluation_during_training_sees_the_live_unembedding() {
        let cfg = Gpt2Config::new(11, 8, 16, 1, 2, true);
        let (mut model, vars) = Transformer::init(cfg.clone(), &mut Rng::new(3)).unwrap();
        let (_, lm_head) = vars.iter().find(|(n, _)| n == "lm_head.weight").expect("lm_head is trained");
        lm_head.set(&(lm_head.as_tensor() * 3.0).unwrap()).unwrap();
        model.autograd = false;
        let tokens = [1u32, 4, 2, 7];
        let live: Vec<f32> = model.logits(&tokens).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let copy = Transformer::from_tensors(cfg, model.to_tensors().unwrap().into_iter().collect()).unwrap();
        let want: Vec<f32> = copy.logits(&tokens).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let worst = live.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "mid-training evaluation differs by {worst}");
    }
}

#[cfg(test)]
mod parameter_tests {
    use super::*;

    /// `init` as it was written before the parameter table, by rules on the names: the table must give the
    /// same numbers from the same draws, in the same order, so that a seed still trains the shipped models
    /// bit for bit. Also: `to_tensors` writes exactly the table, and the trained variables are its non-stored rows.
    #[test]
    fn init_draws_as_the_gpt2_rules_in_file_order() {
        for (attn_only, tied) in [(true, false), (false, false), (false, true)] {
            let mut cfg = Gpt2Config::new(11, 8, 16, 2, 2, attn_only);
            cfg.tie_word_embeddings = tied;
            let (model, vars) = Transformer::init(cfg.clone(), &mut Rng::new(7)).unwrap();
            let saved = model.to_tensors().unwrap();
            let table = parameters(&cfg);
            let names: Vec<&str> = saved.iter().map(|(n, _)| n.as_str()).collect();
            let want: Vec<&str> = table.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names, want);
            assert_eq!(names.contains(&"lm_head.weight"), !tied);
            let trained: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
            let want: Vec<&str> = table.iter().filter(|p| !p.stored_only).map(|p| p.name.as_str()).collect();
            assert_eq!(trained, want);

            let mut rng = Rng::new(7);
            let std_proj = 0.02 / (2.0 * cfg.n_layer as f32).sqrt();
            for ((name, t), p) in saved.iter().zip(&table) {
                assert_eq!(t.dims(), p.shape.as_slice(), "{name}");
                let n = t.elem_count();
                let is_mlp = name.contains(".mlp.") || name.contains(".ln_2.");
                let want: Vec<f32> = if name.ends_with("ln_1.weight")
                    || name.ends_with("ln_2.weight")
                    || name.ends_with("ln_f.weight")
                {
                    vec![1.0; n]
                } else if name.ends_with(".bias") || (attn_only && is_mlp) {
                    vec![0.0; n]
                } else if name.ends_with("c_proj.weight") {
                    (0..n).map(|_| rng.normal() * std_proj).collect()
                } else {
                    (0..n).map(|_| rng.normal() * 0.02).collect()
                };
                let got: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
                assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{name}");
            }
        }
    }

    /// A folder read back gives the same tensors, in the same order, and an attention-only folder without its
    /// (stored-only) MLP tensors still loads.
    #[test]
    fn saved_tensors_load_back_and_stored_only_ones_are_optional() {
        let cfg = Gpt2Config::new(11, 8, 16, 2, 2, true);
        let (model, _) = Transformer::init(cfg.clone(), &mut Rng::new(1)).unwrap();
        let saved = model.to_tensors().unwrap();
        let reloaded = Transformer::from_tensors(cfg.clone(), saved.iter().cloned().collect()).unwrap();
        for ((a, x), (b, y)) in saved.iter().zip(reloaded.to_tensors().unwrap()) {
            assert_eq!(*a, b);
            let (x, y): (Vec<f32>, Vec<f32>) =
                (x.flatten_all().unwrap().to_vec1().unwrap(), y.flatten_all().unwrap().to_vec1().unwrap());
            assert_eq!(x, y, "{a}");
        }
        let stored_only: Vec<String> = parameters(&cfg).into_iter().filter(|p| p.stored_only).map(|p| p.name).collect();
        assert_eq!(stored_only.len(), 2 * 6);
        let without = saved.into_iter().filter(|(n, _)| !stored_only.contains(n)).collect();
        assert!(Transformer::from_tensors(cfg, without).is_ok());
    }
}

#[cfg(test)]
mod random_init_tests {
    use super::*;
    use crate::lens::rng::Rng;

    /// Drawn a parameter per step, the random model has exactly `init`'s numbers for the same seed, every
    /// weight (MLP and attention-only alike), and it predicts the same.
    #[test]
    fn stepped_random_init_is_init() {
        for attn_only in [false, true] {
            let cfg = Gpt2Config::new(11, 8, 16, 2, 2, attn_only);
            let (init, _) = Transformer::init(cfg.clone(), &mut Rng::new(5)).unwrap();
            let mut stepped = RandomInit::new(cfg.clone(), 5).unwrap();
            let mut steps = 0;
            while !stepped.step() {
                steps += 1;
                assert!(stepped.progress() < 1.0);
            }
            assert!(steps > 10, "one parameter per step");
            let random = stepped.finish().unwrap();
            assert!(!random.autograd);
            for ((a, ta), (b, tb)) in init.to_tensors().unwrap().iter().zip(random.to_tensors().unwrap().iter()) {
                assert_eq!(a, b);
                let (x, y): (Vec<f32>, Vec<f32>) =
                    (ta.flatten_all().unwrap().to_vec1().unwrap(), tb.flatten_all().unwrap().to_vec1().unwrap());
                assert_eq!(x, y, "{a}");
            }
            assert_eq!(Transformer::random(cfg, 5).unwrap().to_tensors().unwrap().len(), init.params.len());
        }
        assert!(RandomInit::new(Gpt2Config::new(11, 8, 16, 1, 2, true), 1).unwrap().finish().is_err());
    }
}
