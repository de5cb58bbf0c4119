//! candle tensors handed to `glassbox_kernels`' plain loops and back, for the forward paths that no gradient is
//! taken through (`plain`): a prediction, a cached run, the hand-written backward passes. Where a tensor is
//! tracked by autograd (training, attribution patching's variables) the callers keep candle's differentiable
//! ops; the kernels compute the same functions, to float rounding (tests/kernels.rs).
//!
//! Results are always new tensors, never written in place: candle's in-place ops take the storage's write lock,
//! whose code (parking_lot's slow paths) made the .wasm ~3 KB larger for a copy that costs next to nothing.
use candle_core::{CpuStorage, Storage, Tensor};
use glassbox_kernels::Causal;

use crate::lens::{LensError, Result};

/// Whether none of `ts` is tracked by autograd, so that values computed from them outside candle's graph lose
/// nothing.
pub fn plain(ts: &[&Tensor]) -> bool {
    ts.iter().all(|t| !t.track_op())
}

/// The values of `t`, row-major (a copy): for weights, biases and the CNN's small maps, where a copy costs nothing
/// and reuses candle's code (no new code in the .wasm).
pub fn values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1()?)
}

/// `f` of `t`'s values, row-major: borrowed from its storage where `t` is contiguous, else copied first (as
/// `values` copies). For a kernel that only reads its operands (the CNN's maps and weights, every call).
pub fn read<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(all)) = &*storage else {
        return Err(LensError::Input(format!("expected f32 values on the CPU, got {:?}", t.dtype())));
    };
    let (from, to) = layout.contiguous_offsets().expect("a contiguous tensor has contiguous offsets");
    Ok(f(&all[from..to]))
}

/// A new tensor of `t`'s shape whose values `f` writes (into zeros), given `t`'s values as one row-major slice
/// (`t` is copied first only if it is a strided view). Not generic, so that its code is in the .wasm once.
pub fn map(t: &Tensor, f: &mut dyn FnMut(&[f32], &mut [f32])) -> Result<Tensor> {
    let out = read(t, |x| {
        let mut out = vec![0f32; x.len()];
        f(x, &mut out);
        out
    })?;
    Ok(Tensor::from_vec(out, t.shape(), t.device())?)
}

/// `x w` for `x` `[m, k]` and `w` `[k, n]`, a matrix whose rows are contiguous (a whole weight matrix, or a
/// slice of its rows or columns, read in place). In the browser it is `glassbox_kernels::matmul` when neither
/// operand is tracked by autograd (that kernel's docs say why it is ours); elsewhere, and for any other layout,
/// candle's matmul, whose native gemm (AVX, FMA, threads) is the faster there.
pub fn matmul(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if cfg!(target_arch = "wasm32") {
        if let Some(y) = matmul_kernel(x, w)? {
            return Ok(y);
        }
    }
    Ok(x.matmul(w)?)
}

/// The attention's scores, `q kᵀ` per batch and head: `q` `[batch, head, q_pos, d_head]` and `k` `[batch, head,
/// keys, d_head]`, views in any layout whose last dimension is contiguous (a head's columns of the fused
/// `[pos, 3 d_model]` projection, read in place), to `[batch, head, q_pos, keys]`. In the browser, without
/// autograd, one `glassbox_kernels::gemm` per head with the keys read as a transposed operand; elsewhere candle's
/// batched matmul on contiguous copies.
///
/// `causal: Some(start)` is for a caller that masks the scores (query `i` sees keys `..=start + i`): the masked
/// ones may then be left unmade (zero), about half of the product; `None` makes them all.
pub fn attention_scores(q: &Tensor, k: &Tensor, causal: Option<usize>) -> Result<Tensor> {
    let causal = causal.map_or(Causal::All, |start| Causal::Columns { start });
    if let Some(scores) = per_head_gemm(q, k, true, false, causal)? {
        return Ok(scores);
    }
    Ok(q.contiguous()?.matmul(&k.contiguous()?.t()?)?)
}

/// The attention's output per head, `pattern v`: `pattern` `[batch, head, q_pos, keys]` and `v` `[batch, head,
/// keys, d_head]` (any layout whose last dimension is contiguous), to `z` `[batch, q_pos, head, d_head]`, the
/// layout `hook_z` has. In the browser, without autograd, one `glassbox_kernels::gemm` per head writing its
/// columns of `z` in place; elsewhere candle's batched matmul and a transposing copy.
///
/// `causal: Some(start)` promises that the pattern is zero where query `i` may not look (keys beyond
/// `start + i`): the sums then stop at the last visible key, with the same result; `None` promises nothing.
pub fn attention_mix(pattern: &Tensor, v: &Tensor, causal: Option<usize>) -> Result<Tensor> {
    let causal = causal.map_or(Causal::All, |start| Causal::Depth { start });
    if let Some(z) = per_head_gemm(pattern, v, false, true, causal)? {
        return Ok(z);
    }
    Ok(pattern.contiguous()?.matmul(&v.contiguous()?)?.transpose(1, 2)?.contiguous()?)
}

/// `a b` (or `a bᵀ` when `b_transposed`) for each of the `[d0, d1]` matrices of two rank-4 tensors, by
/// `glassbox_kernels::gemm_causal` reading both where they lie; into `[d0, d1, m, n]`, or `[d0, m, d1, n]` when
/// `heads_inner` (each product's rows `d1 n` apart). `None` where the kernel does not apply: natively (candle's
/// gemm is the faster there), a tensor tracked by autograd, another dtype, or a last dimension that is not
/// contiguous.
fn per_head_gemm(
    a: &Tensor,
    b: &Tensor,
    b_transposed: bool,
    heads_inner: bool,
    causal: Causal,
) -> Result<Option<Tensor>> {
    if !cfg!(target_arch = "wasm32") || !plain(&[a, b]) {
        return Ok(None);
    }
    let (d0, d1, m, k) = a.dims4()?;
    let (e0, e1, rows, cols) = b.dims4()?;
    let (kb, n) = if b_transposed { (cols, rows) } else { (rows, cols) };
    if (d0, d1, k) != (e0, e1, kb) {
        return Err(LensError::Input(format!(
            "per-head product of {:?} by {:?}: the shapes disagree",
            a.dims(),
            b.dims()
        )));
    }
    let mut out = vec![0f32; d0 * d1 * m * n];
    if m > 0 && n > 0 && k > 0 {
        let ((sa, la), (sb, lb)) = (a.storage_and_layout(), b.storage_and_layout());
        let (Storage::Cpu(CpuStorage::F32(av)), Storage::Cpu(CpuStorage::F32(bv))) = (&*sa, &*sb) else {
            return Ok(None);
        };
        let (ast, bst) = (la.stride(), lb.stride());
        // Each matrix's rows must be contiguous and must not overlap (a broadcast has stride 0).
        if ast[3] != 1 && k > 1 || bst[3] != 1 && cols > 1 || m > 1 && ast[2] < k || rows > 1 && bst[2] < cols {
            return Ok(None);
        }
        let (lda, ldb) = (ast[2].max(k), bst[2].max(cols));
        let ldc = if heads_inner { d1 * n } else { n };
        for i0 in 0..d0 {
            for i1 in 0..d1 {
                let a_from = la.start_offset() + i0 * ast[0] + i1 * ast[1];
                let b_from = lb.start_offset() + i0 * bst[0] + i1 * bst[1];
                let c_from = if heads_inner { (i0 * m * d1 + i1) * n } else { (i0 * d1 + i1) * m * n };
                let shape = glassbox_kernels::Gemm { m, k, n, lda, ldb, ldc, b_transposed };
                glassbox_kernels::gemm_causal(&av[a_from..], &bv[b_from..], &mut out[c_from..], shape, causal);
            }
        }
    }
    let dims = if heads_inner { [d0, m, d1, n] } else { [d0, d1, m, n] };
    Ok(Some(Tensor::from_vec(out, &dims, a.device())?))
}

/// `x w + b` for `x` `[m, k]`, `w` `[k, n]` and `b` `[n]` (added to every row), none of them tracked by autograd:
/// a linear layer. In the browser one pass of `glassbox_kernels::gemm` (`matmul_kernel_bias`, where it applies),
/// the bias where each sum starts; elsewhere `matmul` then `glassbox_kernels::add_rows`.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let bias = values(b)?;
    if cfg!(target_arch = "wasm32") {
        if let Some(y) = matmul_kernel_bias(x, w, Some(&bias))? {
            return Ok(y);
        }
    }
    let y = matmul(x, w)?;
    if bias.len() != y.dim(1)? {
        return Err(LensError::Input(format!("a bias of {} values for {} columns", bias.len(), y.dim(1)?)));
    }
    map(&y, &mut |y, out| {
        out.copy_from_slice(y);
        glassbox_kernels::add_rows(out, &bias);
    })
}

/// `x w` by `glassbox_kernels::gemm`, or `None` where it does not apply: a tracked operand, a dtype other
/// than f32, or a `w` whose values are adjacent neither along its rows nor along its columns. Public so that
/// native tests check it against candle.
pub fn matmul_kernel(x: &Tensor, w: &Tensor) -> Result<Option<Tensor>> {
    matmul_kernel_bias(x, w, None)
}

/// `matmul_kernel` plus `bias` (one value per column of `w`) added to every row, in the same pass.
pub fn matmul_kernel_bias(x: &Tensor, w: &Tensor, bias: Option<&[f32]>) -> Result<Option<Tensor>> {
    if !plain(&[x, w]) {
        return Ok(None);
    }
    let (m, k) = x.dims2()?;
    let (k2, n) = w.dims2()?;
    if k != k2 {
        return Err(LensError::Input(format!("matmul of [{m}, {k}] by [{k2}, {n}]: the inner sizes differ")));
    }
    let x = x.contiguous()?;
    let (xs, xl) = x.storage_and_layout();
    let (ws, wl) = w.storage_and_layout();
    let (Storage::Cpu(CpuStorage::F32(xv)), Storage::Cpu(CpuStorage::F32(wv))) = (&*xs, &*ws) else {
        return Ok(None);
    };
    let (x_from, x_to) = xl.contiguous_offsets().expect("a contiguous tensor has contiguous offsets");
    let st = wl.stride();
    let b_transposed = n > 1 && st[1] != 1;
    let ldb = if b_transposed {
        // The transposed view of a row-major `[n, k]` (torch's `nn.Linear` weight: the CNN's head), whose
        // columns are the rows of that matrix: the product reads them in place.
        if k > 1 && st[0] != 1 || st[1] < k {
            return Ok(None);
        }
        st[1]
    } else {
        if k > 1 && st[0] < n {
            return Ok(None);
        }
        st[0].max(n)
    };
    if bias.is_some_and(|b| b.len() != n) {
        return Err(LensError::Input(format!("a bias of {} values for {n} columns", bias.map_or(0, <[f32]>::len))));
    }
    let mut out = vec![0f32; m * n];
    let shape = glassbox_kernels::Gemm { m, k, n, lda: k, ldb, ldc: n, b_transposed };
    glassbox_kernels::gemm(&xv[x_from..x_to], &wv[wl.start_offset()..], bias, &mut out, shape);
    Ok(Some(Tensor::from_vec(out, (m, n), x.device())?))
}
