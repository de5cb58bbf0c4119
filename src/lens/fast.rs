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

/// Runs `f` on the values of `t` (f32, on the CPU) as one row-major slice (copied first only if `t` is a
/// strided view).
pub fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    // The work is in `visit`, compiled once; this generic shell is a few instructions per use.
    let (mut f, mut out) = (Some(f), None);
    visit(t, &mut |x| out = f.take().map(|f| f(x)))?;
    Ok(out.expect("visit calls its function once"))
}

fn visit(t: &Tensor, f: &mut dyn FnMut(&[f32])) -> Result<()> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(all)) = &*storage else {
        return Err(LensError::Input(format!("expected f32 values on the CPU, got {:?}", t.dtype())));
    };
    let (from, to) = layout.contiguous_offsets().expect("a contiguous tensor has contiguous offsets");
    f(&all[from..to]);
    Ok(())
}

/// A new tensor of `t`'s shape whose values `f` writes, given `t`'s values.
pub fn map(t: &Tensor, f: impl FnOnce(&[f32], &mut [f32])) -> Result<Tensor> {
    let mut f = Some(f);
    map_dyn(t, &mut |x, out| {
        if let Some(f) = f.take() {
            f(x, out)
        }
    })
}

fn map_dyn(t: &Tensor, f: &mut dyn FnMut(&[f32], &mut [f32])) -> Result<Tensor> {
    let mut out = Vec::new();
    visit(t, &mut |x| {
        out = vec![0f32; x.len()];
        f(x, &mut out);
    })?;
    Ok(Tensor::from_vec(out, t.shape(), t.device())?)
}
