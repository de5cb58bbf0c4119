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
///
/// A message is the request's JSON text, or an array of that text and files (`Blob`s) attached to it, which
/// the worker reads here and hands to `handle` as texts, in order: a big file then never passes through the
/// page's own thread (`app::core::worker::Worker::ask_with`).
pub fn serve<Q: DeserializeOwned, R: Serialize>(
    what: &'static str,
    mut handle: impl FnMut(Q, Vec<String>) -> R + 'static,
) {
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let out = scope.clone();
    let error = |message: String| serde_json::json!({ "type": "Error", "message": message }).to_string();
    let onmessage = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        let json = match read_message(&ev.data()) {
            Ok((text, attached)) => match serde_json::from_str::<Q>(&text) {
                Ok(request) => serde_json::to_string(&handle(request, attached))
                    .unwrap_or_else(|e| error(format!("{what} could not write its reply: {e}"))),
                Err(e) => error(format!("{what} could not read a request: {e}")),
            },
            Err(e) => error(format!("{what} {e}")),
        };
        let _ = out.post_message(&JsValue::from_str(&json));
    });
    scope.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    onmessage.forget();
    let _ = scope.post_message(&JsValue::from_str(READY));
}

/// A message's request text and the texts of its attached files (a dedicated worker may read a file
/// synchronously, `FileReaderSync`). The error completes "the ... worker ...".
fn read_message(data: &JsValue) -> Result<(String, Vec<String>), String> {
    if let Some(text) = data.as_string() {
        return Ok((text, Vec::new()));
    }
    let parts: &js_sys::Array = data.dyn_ref().ok_or("expects JSON text")?;
    let text = parts.get(0).as_string().ok_or("expects JSON text first")?;
    let reader = web_sys::FileReaderSync::new().map_err(|_| "cannot read files here".to_string())?;
    let attached = (1..parts.length())
        .map(|i| {
            let part = parts.get(i);
            let name = part.dyn_ref::<web_sys::File>().map_or_else(|| format!("attachment {i}"), |f| f.name());
            let blob: &web_sys::Blob = part.dyn_ref().ok_or_else(|| format!("was sent {name}, which is not a file"))?;
            reader.read_as_text(blob).map_err(|_| format!("could not read {name}: was it moved or deleted?"))
        })
        .collect::<Result<_, _>>()?;
    Ok((text, attached))
}
