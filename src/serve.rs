//! The worker side of our Web Workers (`src/bin/toy_worker.rs`, `src/bin/tokenizer_worker.rs`): listen for JSON
//! requests, answer each with exactly one JSON reply, in order, and post `READY` once listening, so the page
//! (`app::core::worker`) knows that nothing it sends is lost. Each request must be short work: the worker
//! cannot be interrupted mid-request.
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Posted once, when the worker listens.
pub const READY: &str = "{\"type\":\"Ready\"}";

/// Serves `handle` in this worker. `what` names the worker in the error replies ("the tokenizer worker"). A
/// request that cannot be read, or a reply that cannot be written, is answered `{"type":"Error","message":..}`,
/// which is every protocol's error reply.
pub fn serve<Q: DeserializeOwned, R: Serialize>(what: &'static str, mut handle: impl FnMut(Q) -> R + 'static) {
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let out = scope.clone();
    let error = |message: String| serde_json::json!({ "type": "Error", "message": message }).to_string();
    let onmessage = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        let json = match ev.data().as_string().map(|s| serde_json::from_str::<Q>(&s)) {
            Some(Ok(request)) => serde_json::to_string(&handle(request))
                .unwrap_or_else(|e| error(format!("{what} could not write its reply: {e}"))),
            Some(Err(e)) => error(format!("{what} could not read a request: {e}")),
            None => error(format!("{what} expects JSON text")),
        };
        let _ = out.post_message(&JsValue::from_str(&json));
    });
    scope.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    onmessage.forget();
    let _ = scope.post_message(&JsValue::from_str(READY));
}
