//! candle tensors handed to `glassbox_kernels`' plain loops and back, for the forward paths that no gradient is
//! taken through (`plain`): a prediction, a cached run, the hand-written backward passes. Where a tensor is
//! tracked by autograd (training, attribution patching's variables) the callers keep candle's differentiable
//! ops; the kernels compute the same functions, to float rounding (tests/kernels.rs).
//!
//! Results are always new tensors, never written in place: candle's in-place ops take the storage's write lock,
//! whose code (parking_lot's slow paths) made the .wasm ~3 KB larger for a copy that costs next to nothing.
use candle_core::{CpuStorage, Storage, Tensor};

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

/// A new tensor of `t`'s shape whose values `f` writes (into zeros), given `t`'s values as one row-major slice
/// (`t` is copied first only if it is a strided view). Not generic, so that its code is in the .wasm once.
pub fn map(t: &Tensor, f: &mut dyn FnMut(&[f32], &mut [f32])) -> Result<Tensor> {
    let t = t.contiguous()?;
    let out = {
        let (storage, layout) = t.storage_and_layout();
        let Storage::Cpu(CpuStorage::F32(all)) = &*storage else {
            return Err(LensError::Input(format!("expected f32 values on the CPU, got {:?}", t.dtype())));
        };
        let (from, to) = layout.contiguous_offsets().expect("a contiguous tensor has contiguous offsets");
        let mut out = vec![0f32; to - from];
        f(&all[from..to], &mut out);
        out
    };
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

/// `x w` by `glassbox_kernels::matmul`, or `None` where it does not apply: a tracked operand, a dtype other
/// than f32, or a `w` whose columns are not adjacent. Public so that native tests check it against candle.
pub fn matmul_kernel(x: &Tensor, w: &Tensor) -> Result<Option<Tensor>> {
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
    let ldb = wl.stride()[0];
    if k > 1 && ldb < n || n > 1 && wl.stride()[1] != 1 {
        return Ok(None);
    }
    let w_from = wl.start_offset();
    let w_to = if k == 0 || n == 0 { w_from } else { w_from + (k - 1) * ldb + n };
    let mut out = vec![0f32; m * n];
    glassbox_kernels::matmul(&xv[x_from..x_to], m, k, &wv[w_from..w_to], ldb.max(n), n, &mut out);
    Ok(Some(Tensor::from_vec(out, (m, n), x.device())?))
}
