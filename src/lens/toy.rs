//! The toy model of superposition (Elhage et al. 2022), the model of chapters 9.2.4 and 9.2.5. Its metrics,
//! phase diagram and sparse autoencoder are in `lens::methods::superposition`.
//!
//! Everything here is plain f32 Rust on flat `Vec<f32>` buffers with hand-written forward and backward
//! passes, so thousands of training steps per second fit in one browser thread. candle is used only by the
//! tests, as an independent check of the gradients.
//!
//! - `data`: synthetic sparse features (each zero with probability S, otherwise uniform in [0, 1]).
//! - `adam`: the Adam optimiser on a flat parameter buffer.
//! - `model`: `ToyConfig`, `ToyModel` (x' = ReLU(WᵀW x + b)) with `step(k)`, and its `ToySnapshot`.
//! - `protocol`: serialisable requests and replies, so a Web Worker can own the training state (the model
//!   and the superposition methods on it).
//!
//! Layout convention: W (m x n) is stored column-major, so each feature's direction in the hidden space,
//! the column W_i, is contiguous: `w[i * m + k] = W[k][i]`.
pub mod adam;
pub mod data;
pub mod model;
pub mod protocol;

pub use model::{Status, ToyConfig, ToyModel, ToySnapshot};
pub use protocol::{LabReply, LabRequest, LabState};
