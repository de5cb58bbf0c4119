//! The engine: models, hook points, activation caches, interventions and interpretability methods.
//!
//! Invariant: nothing under `lens` knows about the browser (no leptos, web-sys or signals). It builds and
//! is tested natively and in wasm32, and the same functions serve the app, the training binary and the tests.
pub mod config;
pub mod error;
pub mod generate;
pub mod hooks;
pub mod induction;
pub mod logit_lens;
pub mod model;
pub mod probe;
pub mod rng;
pub mod sae;
pub mod steering;
pub mod text;
pub mod toy;
pub mod train;
pub mod vision;
pub mod vocab;

pub use config::Gpt2Config;
pub use error::{LensError, Result};
pub use hooks::{ActivationCache, Hook, HookSet, Intervention, Op};
pub use model::{KvCache, Transformer};
