//! Methods on the toy model of superposition (`lens::toy`), plain f32 Rust like the model itself.
//!
//! - `metrics`: the geometry of W: feature norms, interference, dimensionality, WᵀW, angles and gaps in 2-D.
//! - `phase`: the phase diagram (sparsity × relative importance → ignored / dedicated / superposed).
//! - `sae`: `Sae`, a sparse autoencoder on the toy model's hidden activations, and its metrics.
//!
//! W (m x n) is stored column-major, as in `lens::toy`; the SAE's decoder is stored the same way.
pub mod metrics;
pub mod phase;
pub mod sae;

pub use metrics::{AngleGap, ToyMetrics, REPRESENTED_NORM};
pub use phase::{Phase, PhaseCell, PhaseDiagram, PhaseSpec};
pub use sae::{Sae, SaeConfig, SaeMetrics, SaeSnapshot};
