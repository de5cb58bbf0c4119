//! candle tensors handed to `glassbox_kernels`' plain loops and back, for the forward paths that no gradient is
//! taken through (`plain`): a prediction, a cached run, the hand-written backward passes. Where a tensor is
//! tracked by autograd (training, attribution patching's variables) the callers keep candle's differentiable
//! ops; the kernels compute the same functions, to float rounding (tests/kernels.rs).
use candle_core::{CpuStorage, InplaceOp1, Layout, Storage, Tensor};

use crate::lens::{LensError, Result};

/// Whether none of `ts` is tracked by autograd, so that values computed from them outside candle's graph lose
/// nothing.
pub fn plain(ts: &[&Tensor]) -> bool {
    ts.iter().all(|t| !t.track_op())
}

/// Runs `f` on the values of `t` (f32, on the CPU) as one row-major slice (copied first only if `t` is a
/// strided view).
pub fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(all)) = &*storage else {
        return Err(LensError::Input(format!("expected f32 values on the CPU, got {:?}", t.dtype())));
    };
    let (from, to) = layout.contiguous_offsets().expect("a contiguous tensor has contiguous offsets");
    Ok(f(&all[from..to]))
}

/// A new tensor of `t`'s shape whose values `f` writes, given `t`'s values.
pub fn map(t: &Tensor, f: impl FnOnce(&[f32], &mut [f32])) -> Result<Tensor> {
    let out = with_values(t, |x| {
        let mut out = vec![0f32; x.len()];
        f(x, &mut out);
        out
    })?;
    Ok(Tensor::from_vec(out, t.shape(), t.device())?)
}

/// An in-place update of a tensor's values, for `in_place`.
struct InPlace<F>(F);

impl<F: Fn(&mut [f32])> InplaceOp1 for InPlace<F> {
    fn name(&self) -> &'static str {
        "glassbox-in-place"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(all) = storage else { candle_core::bail!("expected f32 values") };
        let Some((from, to)) = layout.contiguous_offsets() else { candle_core::bail!("expected a contiguous tensor") };
        (self.0)(&mut all[from..to]);
        Ok(())
    }
}

/// Updates the values of `t` in place with `f`. Only for a tensor the caller has just made (a matrix product's
/// output) and shared with no one yet: every view of the same storage would see the change. `t` must be
/// contiguous.
pub fn in_place(t: &Tensor, f: impl Fn(&mut [f32])) -> Result<()> {
    Ok(t.inplace_op1(&InPlace(f))?)
}
