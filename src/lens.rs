//! The engine: models, hook points, activation caches, interventions and interpretability methods.
//!
//! By model family, each with its config, model, data and training: `gpt2` (the language models), `cnn` (the
//! MNIST CNN) and `toy` (the toy model of superposition). The methods that take models apart live in
//! `methods`. `error` and `rng` are shared by all of them.
//!
//! Invariant: nothing under `lens` knows about the browser (no leptos, web-sys or signals). It builds and
//! is tested natively and in wasm32, and the same functions serve the app, the training binary and the tests.
pub mod cnn;
pub mod error;
pub mod fast;
pub mod gpt2;
pub mod methods;
pub mod rng;
pub mod toy;

pub use error::{LensError, Result};
pub use gpt2::{ActivationCache, Gpt2Config, Hook, HookSet, Intervention, KvCache, Op, Stepped, Transformer};
