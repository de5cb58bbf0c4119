//! The Web Worker behind the superposition and sparse-autoencoder labs (9.2.4, 9.2.5).
//!
//! Trunk builds this binary with `data-type="worker"` (wasm-bindgen `--target no-modules`) and writes
//! `toy_worker_loader.js`, which the page starts with `new Worker(...)`. The worker owns one
//! `LabState`: every message is a JSON `LabRequest`, answered by exactly one JSON `LabReply`, in order.
//! Once it listens it posts `READY` so the page knows that nothing it sends is lost. Each request is
//! a short piece of work (the page sends training in chunks), so the worker never blocks for long.

/// Posted once, when the worker listens.
#[allow(dead_code)]
const READY: &str = "{\"type\":\"Ready\"}";

#[cfg(target_arch = "wasm32")]
fn main() {
    use std::cell::RefCell;

    use glassbox::lens::toy::protocol::{LabReply, LabRequest, LabState};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let state = RefCell::new(LabState::default());
    let out = scope.clone();
    let onmessage = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        let reply = match ev.data().as_string().map(|s| serde_json::from_str::<LabRequest>(&s)) {
            Some(Ok(request)) => state.borrow_mut().handle(request),
            Some(Err(e)) => LabReply::Error { message: format!("the training worker could not read a request: {e}") },
            None => LabReply::Error { message: "the training worker expects JSON text".into() },
        };
        let json = serde_json::to_string(&reply).unwrap_or_else(|e| {
            format!("{{\"type\":\"Error\",\"message\":\"the training worker could not write its reply: {e}\"}}")
        });
        let _ = out.post_message(&JsValue::from_str(&json));
    });
    scope.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    onmessage.forget();
    let _ = scope.post_message(&JsValue::from_str(READY));
}

/// Natively this is only a stub (so `cargo test --all-targets` builds every binary).
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "toy_worker is the browser's training worker for the superposition lab; Trunk builds it (see index.html)."
    );
}
