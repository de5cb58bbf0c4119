//! The vision lab's engine: a small CNN for 28x28 MNIST digits and the methods that take it apart.
//!
//! - `model`: `Cnn`, its `VisionConfig` and the named activations (`VisionHook`, `VisionCache`).
//! - `mnist`: the IDX reader, the shipped sample set, and preprocessing of a drawn digit.
//! - `train`: the training loop and test accuracy.
//! - `attribution`: input gradients of a `Target`, saliency maps (vanilla, gradient × input, integrated
//!   gradients, SmoothGrad, occlusion) and the weight-randomisation sanity check.
//! - `featvis`: feature visualization by gradient ascent on the input, one step at a time.
//! - `atlas`: a precomputed feature visualization of every conv channel (`featvis.bin`), for the circuits view.
//! - `units`: what a channel responds to: top activating examples, class mix (polysemanticity), and
//!   the kernels that feed it (circuits).
//!
//! Layers are numbered from 1, as in the weight names: `VisionHook::Conv(1)` is `conv1`.
pub mod atlas;
pub mod attribution;
pub mod featvis;
pub mod mnist;
pub mod model;
pub mod receptive;
pub mod train;
pub mod units;

pub use atlas::{AtlasEntry, FeatureAtlas};
pub use attribution::{
    gradient_x_input, input_gradient, input_gradient_autograd, integrated_gradients, occlusion, rank_correlation,
    sanity_cascade, smoothgrad, vanilla_gradient, Saliency, Target,
};
pub use featvis::{FeatureVis, FeatureVisSettings};
pub use mnist::{preprocess_drawing, Idx, Samples};
pub use model::{Cnn, VisionCache, VisionConfig, VisionHook};
pub use units::{channel_means, circuit, polysemanticity, top_examples, ClassMix, KernelLink};
