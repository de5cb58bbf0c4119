//! Loading model folders from the page's own origin, once per session, and the benchmark hook.
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::thread::LocalKey;

use crate::lens::gpt2::vocab::Vocab;
use crate::lens::Transformer;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// A model with its vocabulary and training report, as shipped under `models/{name}/`.
pub struct LoadedModel {
    pub model: Transformer,
    pub vocab: Vocab,
    /// `training.json`, if present: the loss curve and final metrics.
    pub training: Option<serde_json::Value>,
}

/// Loaded folders by name, one map per kind of model.
type Cache<T> = RefCell<HashMap<String, Arc<T>>>;

thread_local! {
    static LOADED: Cache<LoadedModel> = RefCell::new(HashMap::new());
}

/// The session's copy of `name`, loading it with `load` the first time: a folder is fetched and checked
/// once per session, and every lab that uses it afterwards gets it at once.
async fn load_once<T, Fut>(
    cache: &'static LocalKey<Cache<T>>,
    name: &str,
    load: impl FnOnce(String) -> Fut,
) -> Result<Arc<T>, String>
where
    Fut: Future<Output = Result<T, String>>,
{
    if let Some(m) = cache.with(|c| c.borrow().get(name).cloned()) {
        return Ok(m);
    }
    let loaded = Arc::new(load(format!("models/{name}")).await?);
    cache.with(|c| c.borrow_mut().insert(name.to_string(), loaded.clone()));
    Ok(loaded)
}

/// Names the file at fault when a model's config or weights do not load.
fn model_file_error(base: &str, e: crate::lens::LensError) -> String {
    match e {
        crate::lens::LensError::Config(_) => format!("`{base}/config.json`: {e}"),
        _ => format!("`{base}/model.safetensors`: {e}"),
    }
}

/// The median of a benchmark's timings.
fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

/// How long `f` takes, in milliseconds.
fn time_ms(f: impl FnOnce()) -> f64 {
    let t0 = super::now_ms();
    f();
    super::now_ms() - t0
}

async fn fetch(url: &str) -> Result<web_sys::Response, String> {
    let window = web_sys::window().ok_or("no window")?;
    let resp = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|_| format!("could not fetch `{url}` (is the server still running?)"))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| format!("`{url}`: not a response"))?;
    if !resp.ok() {
        return Err(format!("`{url}` could not be loaded (HTTP {})", resp.status()));
    }
    Ok(resp)
}

async fn fetch_text(url: &str) -> Result<String, String> {
    let resp = fetch(url).await?;
    let text = JsFuture::from(resp.text().map_err(|_| format!("`{url}`: no body"))?)
        .await
        .map_err(|_| format!("`{url}`: the download broke off"))?;
    text.as_string().ok_or_else(|| format!("`{url}`: not text"))
}

async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let resp = fetch(url).await?;
    let buf = JsFuture::from(resp.array_buffer().map_err(|_| format!("`{url}`: no body"))?)
        .await
        .map_err(|_| format!("`{url}`: the download broke off"))?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

/// Fetches and checks `models/{name}/`; every failure names the file and what is wrong with it.
pub async fn load_model(name: &str) -> Result<Arc<LoadedModel>, String> {
    load_once(&LOADED, name, |base| async move {
        let config = fetch_text(&format!("{base}/config.json")).await?;
        let vocab_text = fetch_text(&format!("{base}/vocab.json")).await?;
        let weights = fetch_bytes(&format!("{base}/model.safetensors")).await?;
        let model = Transformer::from_bytes(&config, &weights).map_err(|e| model_file_error(&base, e))?;
        let vocab = Vocab::from_json(&vocab_text).map_err(|e| format!("`{base}/vocab.json`: {e}"))?;
        if vocab.len() != model.cfg.vocab_size {
            return Err(format!(
                "`{base}/vocab.json` has {} tokens but config.json says vocab_size {}",
                vocab.len(),
                model.cfg.vocab_size
            ));
        }
        // The training report is a nice-to-have: a missing or broken one only hides the training curve.
        let training = match fetch_text(&format!("{base}/training.json")).await {
            Ok(t) => serde_json::from_str(&t).ok(),
            Err(_) => None,
        };
        Ok(LoadedModel { model, vocab, training })
    })
    .await
}

/// A character-level model (`models/moby/`) with its `{char: id}` vocabulary and the held-out passages
/// (`held_out.txt`) used for default prompts, probes and demos.
pub struct LoadedChar {
    pub model: Transformer,
    pub vocab: crate::lens::gpt2::text::CharVocab,
    pub held_out: String,
}

thread_local! {
    static LOADED_CHAR: Cache<LoadedChar> = RefCell::new(HashMap::new());
}

/// Fetches and checks a character-level model folder; every failure names the file and what is wrong with it.
pub async fn load_char_model(name: &str) -> Result<Arc<LoadedChar>, String> {
    load_once(&LOADED_CHAR, name, |base| async move {
        let config = fetch_text(&format!("{base}/config.json")).await?;
        let vocab_text = fetch_text(&format!("{base}/vocab.json")).await?;
        let weights = fetch_bytes(&format!("{base}/model.safetensors")).await?;
        let held_out = fetch_text(&format!("{base}/held_out.txt")).await?;
        let model = Transformer::from_bytes(&config, &weights).map_err(|e| model_file_error(&base, e))?;
        let vocab = crate::lens::gpt2::text::CharVocab::from_json(&vocab_text)
            .map_err(|e| format!("`{base}/vocab.json`: {e}"))?;
        if vocab.len() != model.cfg.vocab_size {
            return Err(format!(
                "`{base}/vocab.json` has {} characters but config.json says vocab_size {}",
                vocab.len(),
                model.cfg.vocab_size
            ));
        }
        if held_out.trim().is_empty() {
            return Err(format!("`{base}/held_out.txt` is empty"));
        }
        Ok(LoadedChar { model, vocab, held_out })
    })
    .await
}

/// Benchmark hook for `tests/e2e/bench.mjs` (`window.wasmBindings.bench_language`): on the Moby-Dick model,
/// times generating 200 characters (KV cache, temperature 0.8) and the logit-lens grid on 128 characters.
#[wasm_bindgen]
pub fn bench_language(runs: usize) -> String {
    use crate::lens::gpt2::generate::{generate, SampleSettings};
    let Some(m) = LOADED_CHAR.with(|l| l.borrow().get("moby").cloned()) else {
        return r#"{"error":"the Moby-Dick model is not loaded yet: open #/9.2.2 first"}"#.into();
    };
    let runs = runs.max(3);
    let ctx = m.model.cfg.n_positions;
    let text: String = m.held_out.chars().filter(|&c| m.vocab.id(c).is_some()).take(ctx).collect();
    let tokens = m.vocab.encode(&text).expect("known characters");
    let prompt = &tokens[..32.min(tokens.len())];
    let gen: Vec<f64> = (0..runs)
        .map(|i| {
            time_ms(|| {
                let s = SampleSettings { temperature: 0.8, top_k: 0, seed: i as u64 + 1 };
                let _ = generate(&m.model, prompt, 200, &s, &[]).expect("generate");
            })
        })
        .collect();
    let lens: Vec<f64> = (0..runs)
        .map(|_| {
            time_ms(|| {
                let _ = crate::lens::methods::logit_lens::logit_lens(&m.model, &tokens, 5).expect("lens");
            })
        })
        .collect();
    format!(
        r#"{{"generate200_ms":{},"lens128_ms":{},"n_tokens":{},"runs":{runs}}}"#,
        median(gen),
        median(lens),
        tokens.len()
    )
}

/// The vision model with the shipped sample of test images (for dataset examples and "pick a test image").
pub struct LoadedVision {
    pub model: crate::lens::cnn::model::Cnn,
    pub samples: crate::lens::cnn::mnist::Samples,
    /// The precomputed feature visualization of every conv channel (`featvis.bin`), shown beside the
    /// circuits' kernels. Optional: without it the lab still works, and `atlas` says why it is missing.
    pub atlas: Result<crate::lens::methods::atlas::FeatureAtlas, String>,
}

thread_local! {
    static LOADED_VISION: Cache<LoadedVision> = RefCell::new(HashMap::new());
}

/// Fetches and checks a vision model folder; every failure names the file and what is wrong with it.
pub async fn load_vision(name: &str) -> Result<Arc<LoadedVision>, String> {
    load_once(&LOADED_VISION, name, |base| async move {
        let config = fetch_text(&format!("{base}/config.json")).await?;
        let weights = fetch_bytes(&format!("{base}/model.safetensors")).await?;
        let samples = fetch_bytes(&format!("{base}/samples.bin")).await?;
        let model =
            crate::lens::cnn::model::Cnn::from_bytes(&config, &weights).map_err(|e| model_file_error(&base, e))?;
        let samples =
            crate::lens::cnn::mnist::Samples::from_bytes(&samples).map_err(|e| format!("`{base}/samples.bin`: {e}"))?;
        if samples.side != model.cfg.image_size || samples.is_empty() {
            return Err(format!(
                "`{base}/samples.bin` holds {} images of {}x{}, but the model reads {}x{}",
                samples.len(),
                samples.side,
                samples.side,
                model.cfg.image_size,
                model.cfg.image_size
            ));
        }
        let atlas = match fetch_bytes(&format!("{base}/featvis.bin")).await {
            Ok(bytes) => crate::lens::methods::atlas::FeatureAtlas::from_bytes(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|a| {
                    if a.matches(&model) {
                        Ok(a)
                    } else {
                        Err("its channels do not match the model's".to_string())
                    }
                })
                .map_err(|e| format!("`{base}/featvis.bin`: {e}")),
            Err(e) => Err(e),
        };
        Ok(LoadedVision { model, samples, atlas })
    })
    .await
}

/// Benchmark hook for `tests/e2e/bench.mjs` (exposed as `window.wasmBindings.bench_forward`): runs the
/// induction model's forward pass with a full activation cache on `n_tokens` tokens `runs` times.
#[wasm_bindgen]
pub fn bench_forward(n_tokens: usize, runs: usize) -> String {
    let Some(m) = LOADED.with(|l| l.borrow().get("induction").cloned()) else {
        return r#"{"error":"the induction model is not loaded yet: open #/attention first"}"#.into();
    };
    let n = n_tokens.clamp(1, m.model.cfg.n_positions);
    let tokens: Vec<u32> =
        (0..n).map(|i| if i == 0 { 0 } else { 1 + (i as u32 * 7919) % (m.model.cfg.vocab_size as u32 - 1) }).collect();
    let _ = m.model.run_with_cache(&tokens);
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t0 = super::now_ms();
            let _ = m.model.run_with_cache(&tokens).expect("forward");
            super::now_ms() - t0
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = times[times.len() / 2];
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
    format!(r#"{{"median_ms":{median},"p90_ms":{p90},"runs":{},"n_tokens":{n}}}"#, times.len())
}

/// Panics on purpose, so that the end-to-end tests can check that a panic shows the error overlay
/// (with a reload button) instead of a white page.
#[wasm_bindgen]
pub fn glassbox_test_panic() {
    panic!("deliberate panic requested by the end-to-end test");
}

/// Benchmark hook for `tests/e2e/bench.mjs` (`window.wasmBindings.bench_vision`): on the first shipped test
/// image, times a prediction with every activation (what the lab does per drawing frame), one
/// feature-visualization step with the default regularisers, and a 50-step integrated-gradients map.
#[wasm_bindgen]
pub fn bench_vision(runs: usize) -> String {
    use crate::lens::cnn::VisionHook;
    use crate::lens::methods::attribution::{integrated_gradients, Target};
    use crate::lens::methods::featvis::{FeatureVis, FeatureVisSettings};
    let Some(m) = LOADED_VISION.with(|l| l.borrow().get("mnist-cnn").cloned()) else {
        return r#"{"error":"the MNIST model is not loaded yet: open #/9.2.1 first"}"#.into();
    };
    let runs = runs.max(3);
    let image = m.samples.image(0);
    let predict: Vec<f64> = (0..runs)
        .map(|_| {
            time_ms(|| {
                let x = m.model.image(&image).expect("image");
                let _ = m.model.run_with_cache(&x).expect("forward");
            })
        })
        .collect();
    let target = Target::Channel { hook: VisionHook::Conv(m.model.cfg.n_conv()), channel: 0 };
    let mut fv = FeatureVis::new(&m.model, target, FeatureVisSettings::default()).expect("feature vis");
    let _ = fv.step();
    let fv_step: Vec<f64> = (0..runs)
        .map(|_| {
            time_ms(|| {
                let _ = fv.step();
            })
        })
        .collect();
    let ig: Vec<f64> = (0..(runs / 4).max(3))
        .map(|_| {
            time_ms(|| {
                let _ = integrated_gradients(&m.model, &image, Target::Class(0), None, 50);
            })
        })
        .collect();
    format!(
        r#"{{"predict_ms":{},"fv_step_ms":{},"ig50_ms":{},"runs":{runs}}}"#,
        median(predict),
        median(fv_step),
        median(ig)
    )
}

/// Benchmark hook for `tests/e2e/bench.mjs` (`window.wasmBindings.bench_probe`): on the Moby-Dick model, times
/// recording the residual stream of every layer on the probing lab's 5,000 held-out positions, and training a
/// probe per layer with its shuffled-label control on them ("space next"), each in one go (the lab runs the
/// same work in slices between frames). Medians of `runs`.
#[wasm_bindgen]
pub fn bench_probe(runs: usize) -> String {
    use crate::lens::methods::probe::{probe_recorded, record_probe_data, BuiltinConcept, Concept};
    let Some(m) = LOADED_CHAR.with(|l| l.borrow().get("moby").cloned()) else {
        return r#"{"error":"the Moby-Dick model is not loaded yet: open #/9.2.3 first"}"#.into();
    };
    let settings = super::probe::probe_settings();
    let concept = Concept::Builtin(BuiltinConcept::SpaceNext);
    let runs = runs.max(1);
    let (mut record, mut train, mut positions, mut layers, mut best) = (Vec::new(), Vec::new(), 0, 0, 0.0f32);
    for _ in 0..runs {
        let t0 = super::now_ms();
        let data = match record_probe_data(&m.model, &m.vocab, &m.held_out, &settings) {
            Ok(d) => d,
            Err(e) => return format!(r#"{{"error":{:?}}}"#, e.to_string()),
        };
        let t1 = super::now_ms();
        let report = match probe_recorded(&data, &concept, &settings) {
            Ok(r) => r,
            Err(e) => return format!(r#"{{"error":{:?}}}"#, e.to_string()),
        };
        let t2 = super::now_ms();
        record.push(t1 - t0);
        train.push(t2 - t1);
        positions = data.positions();
        layers = report.layers.len();
        best = report.best_layer().test_accuracy;
    }
    let (r, t) = (median(record), median(train));
    format!(
        r#"{{"record_ms":{r},"train_ms":{t},"total_ms":{},"positions":{positions},"layers":{layers},"best_accuracy":{best},"runs":{runs}}}"#,
        r + t
    )
}

/// The sparse autoencoder shipped with a character-level model (`models/{name}/sae/`), with its feature
/// index over the model's `held_out.txt` and, per latent, the change it makes to every character's logit.
pub struct LoadedSae {
    pub lm: Arc<LoadedChar>,
    pub sae: crate::lens::methods::sae::LmSae,
    pub index: crate::lens::methods::sae::FeatureIndex,
    /// `sae.json`: hook, sizes, training settings and the shipped metrics.
    pub report: serde_json::Value,
    /// `logit_effects`, `d_sae x vocab`.
    pub effects: Vec<f32>,
    /// `held_out.txt` as characters, which the index's positions count.
    pub chars: Vec<char>,
}

thread_local! {
    static LOADED_SAE: Cache<LoadedSae> = RefCell::new(HashMap::new());
}

/// Fetches and checks `models/{name}/sae/` (and the model itself); every failure names the file and what is
/// wrong with it.
pub async fn load_char_sae(name: &str) -> Result<Arc<LoadedSae>, String> {
    let lm = load_char_model(name).await?;
    load_once(&LOADED_SAE, name, |model_base| async move {
        let base = format!("{model_base}/sae");
        let report_text = fetch_text(&format!("{base}/sae.json")).await?;
        let weights = fetch_bytes(&format!("{base}/sae.safetensors")).await?;
        let index_text = fetch_text(&format!("{base}/features.json")).await?;
        let sae = crate::lens::methods::sae::LmSae::from_bytes(&report_text, &weights).map_err(|e| match e {
            crate::lens::LensError::Config(_) => format!("`{base}/sae.json`: {e}"),
            _ => format!("`{base}/sae.safetensors`: {e}"),
        })?;
        let report: serde_json::Value = serde_json::from_str(&report_text).map_err(|e| format!("`{base}/sae.json`: {e}"))?;
        let index = crate::lens::methods::sae::FeatureIndex::from_json(&index_text).map_err(|e| format!("`{base}/features.json`: {e}"))?;
        let chars: Vec<char> = lm.held_out.chars().collect();
        if index.latents.len() != sae.d_sae || index.positions != chars.len() {
            return Err(format!(
                "`{base}/features.json` indexes {} latents over {} characters, but the SAE has {} latents and held_out.txt {} characters",
                index.latents.len(),
                index.positions,
                sae.d_sae,
                chars.len()
            ));
        }
        let effects = crate::lens::methods::sae::logit_effects(&lm.model, &sae).map_err(|e| format!("`{base}/sae.safetensors` does not fit the model: {e}"))?;
        Ok(LoadedSae { lm, sae, index, report, effects, chars })
    })
    .await
}
