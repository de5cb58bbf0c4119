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
