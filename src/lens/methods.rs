//! Interpretability methods, each a set of plain functions over a model of `gpt2`, `cnn` or `toy`.
//!
//! On language models (`gpt2::Transformer`):
//! - `logit_lens`: the residual stream of every layer decoded through ln_f and the unembedding.
//! - `tuned_lens`: the same through a learned affine translator per layer, trained to match the final layer.
//! - `probe`: concepts, recorded activations and logistic-regression probes per layer.
//! - `steering`: steering vectors (difference of means, a probe's direction) as `Op::Add` interventions.
//! - `sae`: `LmSae`, a sparse autoencoder on one hook, its spliced-in loss and the feature index.
//! - `glassbox`: a two-layer attention-only GPT-2 whose weights are set by hand (no training), so its circuit is
//!   known exactly: the ground truth the other methods are scored against.
//! - `induction`: the induction task (repeated random tokens) and the head-detector scores.
//! - `ioi`: the indirect-object-identification task (templates, names, the train/held-out split), its
//!   evaluation (accuracy, logit difference IO − S) and head patching against the ABC corruption.
//! - `patching`: activation patching (denoising, noising) over TransformerLens's targets, and attribution
//!   patching (one forward and one backward pass) beside it.
//! - `acdc`: automatic circuit discovery (ACDC): edges of the residual stream patched one by one, kept when the
//!   KL from the clean model rises by more than τ.
//!
//! On the CNN (`cnn::Cnn`):
//! - `attribution`: input gradients of a `Target`, saliency maps and the weight-randomisation sanity check.
//! - `featvis`: feature visualization by gradient ascent on the input, one step at a time.
//! - `atlas`: a precomputed feature visualization of every conv channel (`featvis.bin`).
//! - `units`: what a channel responds to: top examples, class mix, and the kernels that feed it (circuits).
//!
//! On the toy model (`toy::ToyModel`):
//! - `superposition`: the geometry of W, the phase diagram and a sparse autoencoder on the hidden layer.
pub mod acdc;
pub mod atlas;
pub mod attribution;
pub mod featvis;
pub mod glassbox;
pub mod induction;
pub mod ioi;
pub mod logit_lens;
pub mod patching;
pub mod probe;
pub mod sae;
pub mod steering;
pub mod superposition;
pub mod tuned_lens;
pub mod units;
