//! Glassbox: an interpretability playground.
//!
//! `lens` is the engine (models, hooks, interventions, methods); it knows nothing of the browser.
//! `content` is the chapter text, compiled from `content/*.md` at build time.
//! `app` is the Leptos user interface, built only with the `app` feature (on by default; the Web Worker binary
//! is built without it). Its views build for wasm32 only; its plain parts (URL state, lab rules) natively too.
pub mod content;
pub mod lens;
pub mod routes;
/// The worker side of our Web Workers (wasm32 only).
#[cfg(target_arch = "wasm32")]
pub mod serve;

#[cfg(feature = "app")]
pub mod app;
