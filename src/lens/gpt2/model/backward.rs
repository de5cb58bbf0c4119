//! Half a block backwards, written out by hand: the gradient of some function of a half's output, at the half's
//! input and at each of its hooks, from the run's own activations.
//!
//! Why not autograd: candle's matmul backward also forms the gradient of every weight it passes (`[d_model,
//! 3 d_model]` and `[d_model, d_mlp]` here), which attribution patching never reads. At GPT-2 small's shape over
//! 32 tokens that, the weights' zeroed gradient stores and the re-run forward made an MLP half's backward ~40 ms
//! natively, against ~5 ms written out (two matrix products, the GELU and the LayerNorm).
use candle_core::{Tensor, D};
use glassbox_kernels as kernels;

use super::{LayerNorm, Mlp, Pass, Transformer};
use crate::lens::fast;
use crate::lens::gpt2::hooks::{ActivationCache, Hook};
use crate::lens::{LensError, Result};

impl Transformer {
    /// The activations of block `layer` that `half_block_backward` reads from the run's cache: the attention's
    /// `hook_q`, `hook_k`, `hook_v` and `hook_pattern`, and the MLP's `hook_pre` (models with an MLP).
    pub fn backward_reads(&self, layer: usize) -> Vec<Hook> {
        let mut hooks = vec![Hook::Q(layer), Hook::K(layer), Hook::V(layer), Hook::Pattern(layer)];
        if !self.cfg.attn_only {
            hooks.push(Hook::MlpPre(layer));
        }
        hooks
    }

    /// The half block that `half_block` runs from `pass` (one that started without a key/value cache), run
    /// backwards: from `grad_out`, the gradient of some function f at the half's output residual stream
    /// `[batch, pos, d_model]`, returns f's gradient at the half's input (the pass's residual stream) and at every
    /// hook the half runs (in each hook's shape; the LayerNorm scales, which nothing reads, excepted). `cache` must
    /// hold this layer's `backward_reads` from the same run. A hook's gradient is that of the activation the hook
    /// returns, so `hook_resid_pre` has the input's and `hook_resid_post` has `grad_out`.
    pub fn half_block_backward(
        &self,
        pass: &Pass,
        cache: &ActivationCache,
        grad_out: &Tensor,
    ) -> Result<(Tensor, ActivationCache)> {
        let l = pass.layer;
        let block = self.block_at(l)?;
        if grad_out.dims() != pass.resid.dims() || pass.start != 0 {
            return Err(LensError::Input(format!(
                "a half block's backward takes the gradient of its output, shape {:?} (got {:?}), on a pass without \
                 a key/value cache",
                pass.resid.dims(),
                grad_out.dims()
            )));
        }
        let mut grads = ActivationCache::default();
        let input = match (&block.mlp, pass.mid) {
            (Some(mlp), true) => self.mlp_backward(l, mlp, &pass.resid, cache, grad_out, &mut grads)?,
            (Some(_), false) => self.attention_backward(pass, cache, grad_out, &mut grads)?,
            (None, _) => {
                // An attention-only block is one half: its output is `hook_resid_post` itself.
                grads.insert(Hook::ResidPost(l), grad_out.clone());
                self.attention_backward(pass, cache, grad_out, &mut grads)?
            }
        };
        Ok((input, grads))
    }

    /// A block's attention backwards (see `attention_half`): `resid_pre` x `[batch, pos, d_model]` to
    /// `resid_mid = x + attn_out`, whose gradient is `grad`. Returns the gradient at x.
    fn attention_backward(
        &self,
        pass: &Pass,
        cache: &ActivationCache,
        grad: &Tensor,
        grads: &mut ActivationCache,
    ) -> Result<Tensor> {
        let l = pass.layer;
        let block = self.block_at(l)?;
        let (b, p, d) = pass.resid.dims3()?;
        let (n_heads, d_head) = (self.cfg.n_head, self.cfg.d_head());
        let get = |hook: Hook| cache.get(hook).ok_or_else(|| LensError::UnknownHook(hook.to_string()));
        // [batch, pos, head, d_head] -> [batch, head, pos, d_head], as the attention multiplies them.
        let heads_first = |t: &Tensor| -> Result<Tensor> { Ok(t.transpose(1, 2)?.contiguous()?) };
        grads.insert(Hook::AttnOut(l), grad.clone());

        // attn_out = z W_O + b_O.
        let g_z = grad.reshape((b * p, d))?.matmul(&block.proj_w.t()?)?.reshape((b, p, n_heads, d_head))?;
        grads.insert(Hook::Z(l), g_z.clone());
        // z = pattern v, per head: [batch, head, q, d_head].
        let (q, k, v, pattern) = (get(Hook::Q(l))?, get(Hook::K(l))?, get(Hook::V(l))?, get(Hook::Pattern(l))?);
        let g_z = heads_first(&g_z)?;
        let g_pattern = g_z.matmul(&heads_first(v)?.t()?)?; // [batch, head, q, k]
        let g_v = pattern.t()?.matmul(&g_z)?; // [batch, head, k, d_head]
        grads.insert(Hook::Pattern(l), g_pattern.clone());
        // pattern = softmax(scores) by row: g_scores = pattern (g_pattern - Σ_k pattern g_pattern). The masked
        // entries have pattern 0, so their gradient is 0.
        let row = (&g_pattern * pattern)?.sum_keepdim(D::Minus1)?;
        let g_scores = (pattern * g_pattern.broadcast_sub(&row)?)?;
        grads.insert(Hook::AttnScores(l), g_scores.clone());
        // scores = q kᵀ mul + mask.
        let mul = if self.cfg.scale_attn_weights { 1.0 / (d_head as f64).sqrt() } else { 1.0 };
        let g_q = (g_scores.matmul(&heads_first(k)?)? * mul)?; // [batch, head, q, d_head]
        let g_k = (g_scores.t()?.matmul(&heads_first(q)?)? * mul)?; // [batch, head, k, d_head]
        let mut g_qkv = Vec::with_capacity(3);
        for (hook, g) in [(Hook::Q(l), g_q), (Hook::K(l), g_k), (Hook::V(l), g_v)] {
            let g = g.transpose(1, 2)?.contiguous()?; // [batch, pos, head, d_head]
            g_qkv.push(g.reshape((b * p, d))?);
            grads.insert(hook, g);
        }
        // qkv = ln1(x) W_QKV + b: its columns are Q | K | V.
        let g_normed = Tensor::cat(&g_qkv, 1)?.matmul(&block.attn_w.t()?)?.reshape((b, p, d))?;
        grads.insert(Hook::Ln1Normalized(l), g_normed.clone());
        let g_in = (grad + self.layer_norm_backward(&block.ln1, &pass.resid, &g_normed)?)?;
        grads.insert(Hook::ResidPre(l), g_in.clone());
        Ok(g_in)
    }

    /// A block's MLP backwards (see `mlp_half`): `resid_mid` x `[batch, pos, d_model]` to
    /// `resid_post = x + mlp_out`, whose gradient is `grad`. Returns the gradient at x.
    fn mlp_backward(
        &self,
        l: usize,
        mlp: &Mlp,
        x: &Tensor,
        cache: &ActivationCache,
        grad: &Tensor,
        grads: &mut ActivationCache,
    ) -> Result<Tensor> {
        let (b, p, d) = x.dims3()?;
        let d_mlp = mlp.fc_w.dim(1)?;
        grads.insert(Hook::ResidPost(l), grad.clone());
        grads.insert(Hook::MlpOut(l), grad.clone());
        // mlp_out = post W_out + b_out.
        let g_post = grad.reshape((b * p, d))?.matmul(&mlp.proj_w.t()?)?; // [batch pos, d_mlp]
        grads.insert(Hook::MlpPost(l), g_post.reshape((b, p, d_mlp))?);
        // post = gelu_new(pre).
        let pre = cache.get(Hook::MlpPre(l)).ok_or_else(|| LensError::UnknownHook(Hook::MlpPre(l).to_string()))?;
        let pre = fast::values(pre)?;
        let g_pre = fast::map(&g_post, &mut |g, out| {
            out.copy_from_slice(g);
            kernels::gelu_new_backward(&pre, out);
        })?;
        grads.insert(Hook::MlpPre(l), g_pre.reshape((b, p, d_mlp))?);
        // pre = ln2(x) W_in + b_in.
        let g_normed = g_pre.matmul(&mlp.fc_w.t()?)?.reshape((b, p, d))?;
        grads.insert(Hook::Ln2Normalized(l), g_normed.clone());
        let g_in = (grad + self.layer_norm_backward(&mlp.ln2, x, &g_normed)?)?;
        grads.insert(Hook::ResidMid(l), g_in.clone());
        Ok(g_in)
    }

    /// The gradient at a LayerNorm's input x `[.., d_model]` from the gradient at its output.
    fn layer_norm_backward(&self, ln: &LayerNorm, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let (w, eps) = (fast::values(&ln.w)?, self.cfg.layer_norm_epsilon as f32);
        let x = fast::values(x)?;
        fast::map(grad, &mut |g, out| kernels::layer_norm_backward(&x, &w, eps, g, out))
    }
}
