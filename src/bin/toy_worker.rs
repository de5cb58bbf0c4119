//! The Web Worker behind the superposition and sparse-autoencoder labs (9.2.4, 9.2.5).
//!
//! Trunk builds this binary with `data-type="worker"` (wasm-bindgen `--target no-modules`) and writes
//! `toy_worker_loader.js`, which the page starts with `new Worker(...)`. The worker owns one
//! `LabState`: every message is a JSON `LabRequest`, answered by exactly one JSON `LabReply`, in order.
//! Once it listens it posts `READY` so the page knows that nothing it sends is lost. Each request is
//! a short piece of work (the page sends training in chunks), so the worker never blocks for long.

#[cfg(target_arch = "wasm32")]
fn main() {
    let mut state = glassbox::lens::toy::protocol::LabState::default();
    glassbox::serve::serve(
        "the training worker",
        move |request: glassbox::lens::toy::protocol::LabRequest, _attached| state.handle(request),
    );
}

/// Natively this is only a stub (so `cargo test --all-targets` builds every binary).
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "toy_worker is the browser's training worker for the superposition lab; Trunk builds it (see index.html)."
    );
}
