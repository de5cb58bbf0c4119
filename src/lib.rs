//! Glassbox: an interpretability playground.
//!
//! `lens` is the engine (models, hooks, interventions, methods); it knows nothing of the browser.
//! `content` is the chapter text, compiled from `content/*.md` at build time.
//! `app` is the Leptos user interface, built only for wasm32 and only with the `app` feature (on by
//! default; the Web Worker binary is built without it).
pub mod content;
pub mod lens;
pub mod routes;

#[cfg(all(target_arch = "wasm32", feature = "app"))]
pub mod app;
