//! The Web Worker that runs an opened model's own tokenizer (`lens::gpt2::tokenizer`).
//!
//! Trunk builds this binary with `data-type="worker"` and only the `tokenizer` feature, so the `tokenizers`
//! library it carries stays out of the app's own .wasm; the page starts it (`tokenizer_worker_loader.js`) when
//! a model is opened. Like the training worker, every message is one JSON `TokRequest`, answered by exactly one
//! JSON `TokReply`, in order, and it posts `READY` once it listens. The tokenizer's files come attached to their
//! `LoadAttached` request, and this worker reads them.

#[cfg(target_arch = "wasm32")]
fn main() {
    let mut state = glassbox::lens::gpt2::tokenizer::TokState::default();
    glassbox::serve::serve(
        "the tokenizer worker",
        move |request: glassbox::lens::gpt2::tokenizer::TokRequest, attached| state.handle_attached(request, attached),
    );
}

/// Natively this is only a stub (so `cargo test --all-targets` builds every binary).
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "tokenizer_worker is the browser's tokenizer worker for opened models; Trunk builds it (see index.html)."
    );
}
