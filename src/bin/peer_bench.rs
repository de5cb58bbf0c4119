//! The engine's side of the peer benchmark (`node tests/peers/peers.mjs`): `glassbox::lens` compiled to wasm32
//! on its own, with a few entry points for the benchmark page, which runs the same weights in ONNX Runtime Web
//! and TensorFlow.js beside it.
//!
//! Built as the app's .wasm is built (`--profile web`, the same SIMD flags, wasm-bindgen `--target web`, then
//! wasm-opt -O3), but with `--no-default-features`, so the Leptos app is not linked: the figures are the
//! engine's, and the binary stays small. `tests/peers/setup` builds it.
//!
//! Each entry point runs the call a lab makes (`Transformer::logits`, `Transformer::run_with_cache`,
//! `Cnn::forward`, `input_gradient`), so the timings are the app's.

#[cfg(target_arch = "wasm32")]
mod web {
    use candle_core::{Device, Tensor};
    use glassbox::lens::cnn::model::Cnn;
    use glassbox::lens::methods::attribution::{input_gradient, Target};
    use glassbox::lens::{fast, ActivationCache, Transformer};
    use js_sys::Float32Array;
    use wasm_bindgen::prelude::*;

    fn js(e: impl std::fmt::Display) -> JsError {
        JsError::new(&e.to_string())
    }

    /// The values of `t` in `out`, a JS array kept from call to call (made, or remade, when the size changes).
    ///
    /// Why not return a `Vec<f32>` (wasm-bindgen's `.slice()` of the module's memory): in Chromium that copy
    /// costs ~60 µs for the 64 x 318 logits of the induction model (measured in the benchmark's Chromium), a
    /// tenth of its forward, where writing into a kept array is ~2 µs. The labs never copy their logits out
    /// at all; this is the benchmark's price for checking them, made as small as JS allows (ONNX Runtime's
    /// preallocated outputs do the same).
    fn deliver(t: &Tensor, out: &mut Option<Float32Array>) -> Result<Float32Array, JsError> {
        fast::read(t, |values| {
            let reuse = out.as_ref().filter(|o| o.length() as usize == values.len());
            let array = reuse.cloned().unwrap_or_else(|| Float32Array::new_with_length(values.len() as u32));
            array.copy_from(values);
            *out = Some(array.clone());
            array
        })
        .map_err(js)
    }

    /// A GPT-2-layout transformer, loaded from a Hugging Face folder's `config.json` and `model.safetensors`.
    #[wasm_bindgen]
    pub struct Gpt {
        model: Transformer,
        /// The last `logits_with_cache` run's activations, kept as a lab keeps them (until the next run).
        cache: Option<ActivationCache>,
        /// The array the logits are delivered in, overwritten by the next call.
        out: Option<Float32Array>,
    }

    #[wasm_bindgen]
    impl Gpt {
        #[wasm_bindgen(constructor)]
        pub fn new(config_json: &str, safetensors: &[u8]) -> Result<Gpt, JsError> {
            let model = Transformer::from_bytes(config_json, safetensors).map_err(js)?;
            Ok(Gpt { model, cache: None, out: None })
        }

        /// Logits `[pos, vocab]`, row-major, with no hooks: the fastest forward. The array is overwritten by
        /// the next call.
        pub fn logits(&mut self, tokens: &[u32]) -> Result<Float32Array, JsError> {
            let logits = self.model.logits(tokens).map_err(js)?;
            deliver(&logits, &mut self.out)
        }

        /// Logits `[pos, vocab]` from the forward that records every activation (the attention lab's run),
        /// overwritten by the next call.
        pub fn logits_with_cache(&mut self, tokens: &[u32]) -> Result<Float32Array, JsError> {
            let (logits, cache) = self.model.run_with_cache(tokens).map_err(js)?;
            self.cache = Some(cache);
            deliver(&logits, &mut self.out)
        }

        /// How many activations the last `logits_with_cache` recorded.
        pub fn cached(&self) -> usize {
            self.cache.as_ref().map_or(0, |c| c.len())
        }
    }

    /// The vision model (`public/models/mnist-cnn`).
    #[wasm_bindgen]
    pub struct Vision {
        model: Cnn,
        /// The array outputs are delivered in, overwritten by the next call.
        out: Option<Float32Array>,
    }

    #[wasm_bindgen]
    impl Vision {
        #[wasm_bindgen(constructor)]
        pub fn new(config_json: &str, safetensors: &[u8]) -> Result<Vision, JsError> {
            Ok(Vision { model: Cnn::from_bytes(config_json, safetensors).map_err(js)?, out: None })
        }

        /// Logits `[classes]` of one image (`image_size`² pixels, row-major), overwritten by the next call.
        pub fn logits(&mut self, pixels: &[f32]) -> Result<Float32Array, JsError> {
            let logits = self.model.forward(&self.model.image(pixels).map_err(js)?).map_err(js)?;
            deliver(&logits, &mut self.out)
        }

        /// The gradient of class `class`'s logit with respect to each pixel: the saliency lab's vanilla gradient.
        /// Overwritten by the next call.
        pub fn input_gradient(&mut self, pixels: &[f32], class: usize) -> Result<Float32Array, JsError> {
            let x = self.model.image(pixels).map_err(js)?;
            let (_, grad) = input_gradient(&self.model, &x, Target::Class(class)).map_err(js)?;
            deliver(&grad, &mut self.out)
        }
    }

    /// `a b` for two square `n x n` matrices: the matmul peak that gives the benchmark its roofline.
    #[wasm_bindgen]
    pub struct Matmul {
        a: Tensor, // [n, n]
        b: Tensor, // [n, n]
    }

    #[wasm_bindgen]
    impl Matmul {
        #[wasm_bindgen(constructor)]
        pub fn new(a: Vec<f32>, b: Vec<f32>, n: usize) -> Result<Matmul, JsError> {
            let a = Tensor::from_vec(a, (n, n), &Device::Cpu).map_err(js)?;
            let b = Tensor::from_vec(b, (n, n), &Device::Cpu).map_err(js)?;
            Ok(Matmul { a, b })
        }

        /// The product `[n, n]`, row-major.
        pub fn run(&self) -> Result<Vec<f32>, JsError> {
            self.a.matmul(&self.b).and_then(|c| c.flatten_all()).and_then(|c| c.to_vec1()).map_err(js)
        }
    }
}

/// The page loads the module and calls the exported types; there is nothing to start.
#[cfg(target_arch = "wasm32")]
fn main() {}

/// Natively this is only a stub (so `cargo test --all-targets` builds every binary).
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("peer_bench is the engine's side of the browser peer benchmark: see `node tests/peers/peers.mjs`.");
}
