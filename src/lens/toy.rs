//! The superposition lab's engine (chapter 9.2.4 and 9.2.5): the toy model of superposition (Elhage et al.
//! 2022) and a sparse autoencoder trained on its hidden layer, where the true features are known.
//!
//! Everything here is plain f32 Rust on flat `Vec<f32>` buffers with hand-written forward and backward
//! passes, so thousands of training steps per second fit in one browser thread. candle is used only by the
//! tests, as an independent check of the gradients.
//!
//! - `data`: synthetic sparse features (each zero with probability S, otherwise uniform in [0, 1]).
//! - `adam`: the Adam optimiser on a flat parameter buffer.
//! - `model`: `ToyConfig`, `ToyModel` (x' = ReLU(WᵀW x + b)) with `step(k)`, and its `ToySnapshot`.
//! - `metrics`: the geometry of W: feature norms, interference, WᵀW, angles and gaps in 2-D.
//! - `phase`: the phase diagram (sparsity × relative importance → ignored / dedicated / superposed).
//! - `sae`: `Sae`, a sparse autoencoder on the toy model's hidden activations, and its metrics.
//! - `protocol`: serialisable requests and replies, so a Web Worker can own the training state.
//!
//! Layout convention: W (m x n) is stored column-major, so each feature's direction in the hidden space,
//! the column W_i, is contiguous: `w[i * m + k] = W[k][i]`. The SAE's decoder is stored the same way.
pub mod adam;
pub mod data;
pub mod metrics;
pub mod model;
pub mod phase;
pub mod protocol;
pub mod sae;

pub use metrics::{AngleGap, ToyMetrics, REPRESENTED_NORM};
pub use model::{Status, ToyConfig, ToyModel, ToySnapshot};
pub use phase::{Phase, PhaseCell, PhaseDiagram, PhaseSpec};
pub use protocol::{LabReply, LabRequest, LabState};
pub use sae::{Sae, SaeConfig, SaeMetrics, SaeSnapshot};
