//! Loading model folders (and the chapter's text) from the page's own origin, once per session, as a Leptos
//! resource with one loading view and one error view (with Retry) for every lab.
//!
//! Invariant: loading has an end. A folder that does not answer within `LOAD_TIMEOUT_MS` ends in a message
//! that says so, with Retry; a folder that answers with broken files ends in a message naming the file.
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::thread::LocalKey;

use futures::future::{FutureExt, LocalBoxFuture, Shared};
use leptos::prelude::*;

use super::models::TaskModel;
use crate::lens::gpt2::vocab::Vocab;
use crate::lens::Transformer;

/// A model with its vocabulary and training report, as shipped under `models/{name}/`.
pub struct LoadedModel {
    pub model: Transformer,
    pub vocab: Vocab,
    /// `training.json`, if present: the loss curve and final metrics.
    pub training: Option<serde_json::Value>,
}

/// Folders by name, one map per kind of model: each entry is its load, shared by every lab that asks while it
/// runs (a lab's prefetch, then the lab itself, fetch once) and holding the folder once it is there.
type Cache<T> = RefCell<HashMap<String, Loading<T>>>;

/// A load under way or ended, and when it started (`now_ms`).
struct Loading<T> {
    started_ms: f64,
    fut: Shared<LocalBoxFuture<'static, Result<Arc<T>, String>>>,
}

thread_local! {
    static LOADED: Cache<LoadedModel> = RefCell::new(HashMap::new());
}

/// The session's copy of `name`, loading it with `load` the first time: a folder is fetched and checked
/// once per session, and every lab that uses it afterwards gets it at once. A failed load is forgotten, and so is
/// one still waiting after `LOAD_TIMEOUT_MS` (its callers have given up on it), so that Retry fetches anew.
fn load_once<T: 'static, Fut>(
    cache: &'static LocalKey<Cache<T>>,
    name: &str,
    load: impl FnOnce(String) -> Fut,
) -> impl Future<Output = Result<Arc<T>, String>>
where
    Fut: Future<Output = Result<T, String>> + 'static,
{
    let now = super::browser::now_ms();
    cache.with(|c| {
        let mut c = c.borrow_mut();
        let stale = c.get(name).is_some_and(|l| match l.fut.peek() {
            Some(r) => r.is_err(),
            None => now - l.started_ms > f64::from(LOAD_TIMEOUT_MS),
        });
        if stale {
            c.remove(name);
        }
        let loading = c.entry(name.to_string()).or_insert_with(|| {
            let fut = load(format!("models/{name}"));
            Loading { started_ms: now, fut: async move { fut.await.map(Arc::new) }.boxed_local().shared() }
        });
        loading.fut.clone()
    })
}

/// The folder `name` if its load has ended well.
fn loaded<T>(cache: &'static LocalKey<Cache<T>>, name: &str) -> Option<Arc<T>> {
    cache.with(|c| c.borrow().get(name).and_then(|l| l.fut.peek()?.as_ref().ok().cloned()))
}

/// Names the file at fault when a model's config or weights do not load.
fn model_file_error(base: &str, e: crate::lens::LensError) -> String {
    match e {
        crate::lens::LensError::Config(_) => format!("`{base}/config.json`: {e}"),
        _ => format!("`{base}/model.safetensors`: {e}"),
    }
}

async fn fetch(url: &str) -> Result<gloo_net::http::Response, String> {
    let resp = gloo_net::http::Request::get(url)
        .send()
        .await
        .map_err(|_| format!("could not fetch `{url}` (is the server still running?)"))?;
    if !resp.ok() {
        return Err(format!("`{url}` could not be loaded (HTTP {})", resp.status()));
    }
    Ok(resp)
}

// The URL is taken by value so that the future owns it: several run at once (`futures::join!`) on `format!`s.
async fn fetch_text(url: impl AsRef<str>) -> Result<String, String> {
    let url = url.as_ref();
    fetch(url).await?.text().await.map_err(|_| format!("`{url}`: the download broke off"))
}

async fn fetch_bytes(url: impl AsRef<str>) -> Result<Vec<u8>, String> {
    let url = url.as_ref();
    fetch(url).await?.binary().await.map_err(|_| format!("`{url}`: the download broke off"))
}

thread_local! {
    static BOOK: RefCell<Option<Arc<String>>> = const { RefCell::new(None) };
}

/// The Moby-Dick model's held-out passages (`models/moby/held_out.txt`, 60,000 characters of the book), fetched
/// once per session: the long text an opened model reads by default (its SAE's feature index).
pub async fn load_book_text() -> Result<Arc<String>, String> {
    if let Some(t) = BOOK.with(|b| b.borrow().clone()) {
        return Ok(t);
    }
    let t = Arc::new(fetch_text("models/moby/held_out.txt").await?);
    BOOK.with(|b| *b.borrow_mut() = Some(t.clone()));
    Ok(t)
}

/// The chapter's text (`content::CHAPTER_FILE`, beside index.html), fetched and read once, when the app starts:
/// the shell keeps it for the session, so every section after the first opens at once. The built `index.html`
/// preloads the same URL, so the download runs beside the .wasm's. A failure names the file.
pub async fn load_chapter() -> Result<Arc<crate::content::ChapterText>, String> {
    let file = crate::content::CHAPTER_FILE;
    let json = fetch_text(file).await?;
    let text = crate::content::ChapterText::from_json(&json).map_err(|e| format!("`{file}`: {e}"))?;
    Ok(Arc::new(text))
}

/// Fetches and checks `models/{name}/`; every failure names the file and what is wrong with it.
pub async fn load_model(name: &str) -> Result<Arc<LoadedModel>, String> {
    load_once(&LOADED, name, |base| async move {
        // All at once: one after another, each request waited for the page's thread between two files (a
        // first visit's main thread is busy compiling and laying out), about 50 ms a file, traced.
        let [config, vocab, weights, training] = super::models::TASK_FILES;
        let (config, vocab_text, weights, training) = futures::join!(
            fetch_text(format!("{base}/{config}")),
            fetch_text(format!("{base}/{vocab}")),
            fetch_bytes(format!("{base}/{weights}")),
            fetch_text(format!("{base}/{training}")),
        );
        let (config, vocab_text, weights) = (config?, vocab_text?, weights?);
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
        let training = training.ok().and_then(|t| serde_json::from_str(&t).ok());
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
        let [config, vocab, weights, held_out] = super::models::CHAR_FILES;
        let (config, vocab_text, weights, held_out) = futures::join!(
            fetch_text(format!("{base}/{config}")),
            fetch_text(format!("{base}/{vocab}")),
            fetch_bytes(format!("{base}/{weights}")),
            fetch_text(format!("{base}/{held_out}")),
        );
        let (config, vocab_text, weights, held_out) = (config?, vocab_text?, weights?, held_out?);
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
        let [config, weights, samples, atlas] = super::models::VISION_FILES;
        let (config, weights, samples, atlas) = futures::join!(
            fetch_text(format!("{base}/{config}")),
            fetch_bytes(format!("{base}/{weights}")),
            fetch_bytes(format!("{base}/{samples}")),
            fetch_bytes(format!("{base}/{atlas}")),
        );
        let (config, weights, samples) = (config?, weights?, samples?);
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
        let atlas = match atlas {
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
    let model = name.to_string();
    load_once(&LOADED_SAE, name, |model_base| async move {
        let base = format!("{model_base}/sae");
        // The model (its own cached load) and the SAE's three files, fetched at once; the model's error first.
        let (lm, report_text, weights, index_text) = futures::join!(
            load_char_model(&model),
            fetch_text(format!("{base}/sae.json")),
            fetch_bytes(format!("{base}/sae_weights.safetensors")),
            fetch_text(format!("{base}/features.json")),
        );
        let (lm, report_text, weights, index_text) = (lm?, report_text?, weights?, index_text?);
        let sae = crate::lens::methods::sae::LmSae::from_bytes(&report_text, &weights).map_err(|e| match e {
            crate::lens::LensError::Config(_) => format!("`{base}/sae.json`: {e}"),
            _ => format!("`{base}/sae_weights.safetensors`: {e}"),
        })?;
        let report: serde_json::Value = serde_json::from_str(&report_text).map_err(|e| format!("`{base}/sae.json`: {e}"))?;
        // Reading the index and computing the logit effects are a few tens of milliseconds each in a browser: the
        // page gets the thread between them, so loading leaves no long task.
        crate::app::core::browser::yield_to_browser().await;
        let index = crate::lens::methods::sae::FeatureIndex::from_json(&index_text).map_err(|e| format!("`{base}/features.json`: {e}"))?;
        crate::app::core::browser::yield_to_browser().await;
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
        let effects = crate::lens::methods::sae::logit_effects(&lm.model, &sae).map_err(|e| format!("`{base}/sae_weights.safetensors` does not fit the model: {e}"))?;
        Ok(LoadedSae { lm, sae, index, report, effects, chars })
    })
    .await
}

/// How long a model folder may take before the lab says that the server does not answer. The largest shipped
/// folder is about 4 MB, which even a slow classroom network delivers well within this.
pub const LOAD_TIMEOUT_MS: u32 = 30_000;

/// `fut`, or an error if it has not finished after `LOAD_TIMEOUT_MS`.
pub async fn with_timeout<T>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    use futures::future::{select, Either};
    let timer = gloo_timers::future::TimeoutFuture::new(LOAD_TIMEOUT_MS);
    match select(Box::pin(fut), timer).await {
        Either::Left((r, _)) => r,
        Either::Right(_) => Err(format!(
            "{what} did not arrive within {} s: the server does not answer. Check that the site is still served, then retry.",
            LOAD_TIMEOUT_MS / 1000
        )),
    }
}

/// A model (or any loaded folder) as a resource of the lab that uses it: loading starts when the lab opens,
/// ends in `Ok` or in an error a student can act on, and can be retried.
pub struct Model<T: 'static> {
    res: LocalResource<Result<Arc<T>, String>>,
    what: &'static str,
}

impl<T: 'static> Clone for Model<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: 'static> Copy for Model<T> {}

impl<T: 'static> Model<T> {
    /// Starts loading `what` ("the Moby-Dick model") with `load`.
    pub fn new<Fut>(what: &'static str, load: impl Fn() -> Fut + 'static) -> Self
    where
        Fut: std::future::Future<Output = Result<Arc<T>, String>> + 'static,
    {
        let res = LocalResource::new(move || with_timeout(what, load()));
        Model { res, what }
    }

    /// `new`, but nothing is fetched until `wanted()` first turns true (a lab offering a second model loads it
    /// only once the student picks it); from then on the model stays, whatever `wanted` says later.
    ///
    /// One future waits for the go, then loads: the resource does not re-run on `wanted`. A resource awaits its
    /// current future before it runs a new one, so a "not yet" future that never ends would hold the real load
    /// back until the timeout ended it (a model picked after opening the lab took 30 s to appear). The wait is
    /// outside the timeout, which counts only the download.
    pub fn when_wanted<Fut>(
        what: &'static str,
        wanted: impl Fn() -> bool + 'static,
        load: impl Fn() -> Fut + 'static,
    ) -> Self
    where
        Fut: std::future::Future<Output = Result<Arc<T>, String>> + 'static,
    {
        let (go, gone) = futures::channel::oneshot::channel::<()>();
        let go = std::cell::Cell::new(Some(go));
        Effect::new(move |_| {
            if wanted() {
                if let Some(go) = go.take() {
                    let _ = go.send(());
                }
            }
        });
        // Taken by the first run; a retry finds it gone and loads at once.
        let gone = std::cell::Cell::new(Some(gone));
        let res = LocalResource::new(move || {
            let wait = gone.take();
            let fut = load();
            async move {
                if let Some(wait) = wait {
                    // Err only if the lab is gone before the model was wanted: then nothing is fetched.
                    if wait.await.is_err() {
                        futures::future::pending::<()>().await;
                    }
                }
                with_timeout(what, fut).await
            }
        });
        Model { res, what }
    }

    /// The model once loaded (tracked); `None` while loading or after a failure.
    pub fn get(self) -> Option<Arc<T>> {
        self.res.get().and_then(|r| r.ok())
    }

    /// `get` without tracking.
    pub fn get_untracked(self) -> Option<Arc<T>> {
        self.res.get_untracked().and_then(|r| r.ok())
    }

    /// The outcome (tracked): `None` while loading, then the folder or what went wrong.
    pub fn result(self) -> Option<Result<Arc<T>, String>> {
        self.res.get()
    }

    /// Whether loading has ended, well or not (tracked).
    pub fn settled(self) -> bool {
        self.res.with(|r| r.is_some())
    }

    pub fn retry(self) {
        self.res.refetch();
    }

    /// "Loading…" while it comes, the reason and Retry if it failed, nothing once it is there.
    pub fn status(self) -> impl IntoView {
        self.status_with("lab-loading", "load-error")
    }

    /// `status` with other test ids, for a lab that loads more than one folder.
    pub fn status_with(self, loading_id: &'static str, error_id: &'static str) -> impl IntoView {
        move || match self.res.get() {
            None => Some(
                view! {
                    <p class="loading" data-testid=loading_id role="status">
                        <span class="spinner"></span>{format!("Loading {}…", self.what)}
                    </p>
                }
                .into_any(),
            ),
            Some(Err(e)) => Some(
                view! {
                    <div class="load-error" data-testid=error_id role="alert">
                        <h3>{format!("{} could not be loaded", super::format::sentence(self.what))}</h3>
                        <p>{e}</p>
                        <p><button data-testid="load-retry" on:click=move |_| self.retry()>"Retry"</button></p>
                    </div>
                }
                .into_any(),
            ),
            Some(Ok(_)) => None,
        }
    }
}

/// The two task models of a lab that offers both (see `models`): each is fetched only once `shown` first names
/// it, and then stays.
#[derive(Clone, Copy)]
pub struct TaskModels {
    shown: RwSignal<TaskModel>,
    ioi: Model<LoadedModel>,
    induction: Model<LoadedModel>,
}

impl TaskModels {
    pub fn new(shown: RwSignal<TaskModel>) -> Self {
        let lazy =
            |me: TaskModel| Model::when_wanted(me.what(), move || shown.get() == me, move || load_model(me.folder()));
        TaskModels { shown, ioi: lazy(TaskModel::Ioi), induction: lazy(TaskModel::Induction) }
    }

    /// The model `shown` names (tracked).
    pub fn shown(self) -> Model<LoadedModel> {
        self.of(self.shown.get())
    }

    pub fn of(self, model: TaskModel) -> Model<LoadedModel> {
        match model {
            TaskModel::Ioi => self.ioi,
            TaskModel::Induction => self.induction,
        }
    }
}

/// The session's copy of a folder already loaded, if any (for the benchmark hooks).
pub fn loaded_model(name: &str) -> Option<Arc<LoadedModel>> {
    loaded(&LOADED, name)
}

pub fn loaded_char(name: &str) -> Option<Arc<LoadedChar>> {
    loaded(&LOADED_CHAR, name)
}

pub fn loaded_vision(name: &str) -> Option<Arc<LoadedVision>> {
    loaded(&LOADED_VISION, name)
}
