//! Warming the engine's hot code while the page is idle, so that a student's first run is as quick as the next.
//!
//! Why: Chromium first runs each WebAssembly function as quickly compiled baseline code, and only swaps in
//! optimised code once the function has run for a while (that compile happens off the main thread). candle's
//! matrix kernels are several times slower as baseline code, so the first transformer block a lab ran took 40–50
//! ms where the same block later takes under 10 (traced in 9.2.5: the Moby model's first block, nearly all of it
//! in the gemm microkernel). A few small forward and backward passes of a throw-away model, one short task each,
//! get those kernels optimised first.
//!
//! Invariant: each pass is its own task of a few milliseconds even as baseline code (16 positions of a one-layer
//! model the width of the largest shipped one), and the whole warm-up is done within about two seconds of the
//! page opening, or, while the student is at work, after it: a pass waits for a pause in their input. Nothing
//! it computes is kept.
use gloo_timers::future::TimeoutFuture;

use super::browser::now_ms;

use crate::lens::rng::Rng;
use crate::lens::{Gpt2Config, Transformer};

/// When the warm-up starts: after the first paint and the first model's download have had the main thread.
const START_MS: u32 = 800;
/// Passes, and the pause between them (the page stays free to answer in between).
const ROUNDS: usize = 24;
const GAP_MS: u32 = 25;
/// The throw-away model: the Moby model's width (the largest shipped), one layer, a short sequence.
const D_MODEL: usize = 128;
const N_POS: usize = 16;
const VOCAB: usize = 64;

/// How long after the student's last input (a key, a click, the pointer moving, a typed character) a pass waits:
/// a pass is a few milliseconds the page cannot answer in, which landed in the lab updates of the first seconds
/// after opening (the bench's typed updates, p95).
const QUIET_MS: f64 = 300.0;

thread_local! {
    static LAST_INPUT: std::cell::Cell<f64> = const { std::cell::Cell::new(f64::NEG_INFINITY) };
}

/// Notes the time of every input on the page (capture phase, passive: it changes nothing), for `QUIET_MS`.
fn watch_input() {
    use wasm_bindgen::{closure::Closure, JsCast};
    let Some(w) = web_sys::window() else { return };
    let note = Closure::<dyn Fn()>::new(|| LAST_INPUT.with(|t| t.set(now_ms())));
    let opts = web_sys::AddEventListenerOptions::new();
    opts.set_capture(true);
    opts.set_passive(true);
    for kind in ["input", "keydown", "pointerdown", "pointermove", "wheel"] {
        let _ = w.add_event_listener_with_callback_and_add_event_listener_options(
            kind,
            note.as_ref().unchecked_ref(),
            &opts,
        );
    }
    // Listens for the page's life.
    note.forget();
}

/// Starts the warm-up in the background; call once, when the app has mounted.
pub fn soon() {
    watch_input();
    leptos::task::spawn_local(async {
        TimeoutFuture::new(START_MS).await;
        let mut cfg = Gpt2Config::new(VOCAB, N_POS, D_MODEL, 1, 4, false);
        cfg.n_inner = Some(4 * D_MODEL);
        let Ok((mut model, _vars)) = Transformer::init(cfg, &mut Rng::new(7)) else { return };
        let tokens: Vec<u32> = (0..N_POS as u32).map(|i| (i * 7) % VOCAB as u32).collect();
        for round in 0..ROUNDS {
            TimeoutFuture::new(GAP_MS).await;
            while now_ms() - LAST_INPUT.with(std::cell::Cell::get) < QUIET_MS {
                TimeoutFuture::new(GAP_MS).await;
            }
            // Forward with every activation cached, on the inference path the labs' views take (`init` turns
            // autograd on, which swaps in candle's softmax and a view of the unembedding), and now and then a
            // backward pass (feature visualization, saliency, attribution patching and the probes take
            // gradients).
            model.autograd = false;
            let _ = model.run_with_cache(&tokens);
            if round % 3 == 0 {
                model.autograd = true;
                let _ = model.logits(&tokens).and_then(|l| l.sum_all().and_then(|s| s.backward()).map_err(Into::into));
            }
        }
    });
}
