//! The vision lab's model: a small CNN for 28x28 MNIST digits. The methods that take it apart (attribution,
//! feature visualization, the atlas, units) are in `lens::methods`.
//!
//! - `model`: `Cnn`, its `VisionConfig` and the named activations (`VisionHook`, `VisionCache`).
//! - `mnist`: the IDX reader, the shipped sample set, and preprocessing of a drawn digit.
//! - `train`: the training loop and test accuracy.
//! - `receptive`: the input pixels a feature-map cell sees.
//!
//! Layers are numbered from 1, as in the weight names: `VisionHook::Conv(1)` is `conv1`.
pub mod mnist;
pub mod model;
pub mod receptive;
pub mod train;

pub use mnist::{preprocess_drawing, Idx, Samples};
pub use model::{Cnn, VisionCache, VisionConfig, VisionHook};
