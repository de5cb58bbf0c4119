//! The Web Worker that runs an opened model's own tokenizer (`lens::gpt2::tokenizer`).
//!
//! Trunk builds this binary with `data-type="worker"` and only the `tokenizer` feature, so the `tokenizers`
//! library it carries stays out of the app's own .wasm; the page starts it (`tokenizer_worker_loader.js`) when
//! a model is opened. Like the training worker, every message is one JSON `TokRequest`, answered by exactly one
//! JSON `TokReply`, in order, and it posts `READY` once it listens.

/// Posted once, when the worker listens.
#[allow(dead_code)]
const READY: &str = "{\"type\":\"Ready\"}";

#[cfg(target_arch = "wasm32")]
fn main() {
    use std::cell::RefCell;

    use glassbox::lens::gpt2::tokenizer::{TokReply, TokRequest, TokState};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let state = RefCell::new(TokState::default());
    let out = scope.clone();
    let onmessage = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        let reply = match ev.data().as_string().map(|s| serde_json::from_str::<TokRequest>(&s)) {
            Some(Ok(request)) => state.borrow_mut().handle(request),
            Some(Err(e)) => TokReply::Error { message: format!("the tokenizer worker could not read a request: {e}") },
            None => TokReply::Error { message: "the tokenizer worker expects JSON text".into() },
        };
        let json = serde_json::to_string(&reply).unwrap_or_else(|e| {
            format!("{{\"type\":\"Error\",\"message\":\"the tokenizer worker could not write its reply: {e}\"}}")
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
        "tokenizer_worker is the browser's tokenizer worker for opened models; Trunk builds it (see index.html)."
    );
}
