//! The "open your own model" lab: a drop zone and two pickers (files, a whole folder), the reading as a job with
//! progress and Cancel, and what was opened. The files are read with `Blob.slice`, a few megabytes at a time,
//! so the weights are never in memory twice and the page keeps painting; nothing is sent anywhere.
use std::cell::RefCell;
use std::sync::Arc;

use js_sys::Uint8Array;
use leptos::prelude::*;
use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::{check_tokenizer, model_name, Summary};
use crate::app::core::browser::now_ms;
use crate::app::core::frame::progress_bar;
use crate::app::core::jobs::{Job, Jobs};
use crate::app::core::kept::{self, Manifest};
use crate::app::core::offline::megabytes;
use crate::app::core::opened::{self, KeptWith, OwnModel};
use crate::app::core::worker::{Tokenizing, Worker, WorkerEvent};
use crate::lens::gpt2::open::{
    header_len, plan_folder, PieceReader, TokenizerFiles, WeightsIndex, WeightsReader, READ_BYTES,
};
use crate::lens::gpt2::tokenizer::{TokReply, TokRequest, TokenizerSource};
use crate::lens::gpt2::{Gpt2Config, HookSet, Stepped};
use crate::lens::Transformer;

/// A tokenizer worker that is terminated when dropped, unless `keep` hands it on: every way out of `open`
/// before the model is kept ends the worker it started.
struct Started(Option<Worker<Tokenizing>>);

impl Started {
    fn keep(mut self) -> Worker<Tokenizing> {
        self.0.take().expect("kept once")
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(w) = self.0.take() {
            w.disconnect();
        }
    }
}

/// Starts a tokenizer worker and builds the tokenizer in it from `files` (named by `source`, in its order),
/// which the worker reads itself: the worker, its token count and every id's piece. `None` if the job was
/// stopped.
async fn load_tokenizer(
    source: TokenizerSource,
    files: &[web_sys::Blob],
    job: &Job,
) -> Option<Result<(Started, usize, Vec<String>), String>> {
    let failure = std::rc::Rc::new(RefCell::new(None::<String>));
    let heard = failure.clone();
    let worker = Started(Some(Worker::<Tokenizing>::connect(move |ev| {
        if let WorkerEvent::Failed(m) = ev {
            *heard.borrow_mut() = Some(m);
        }
    })));
    let answer = worker.0.expect("just started").ask_with(&TokRequest::LoadAttached { source }, files);
    Some(match job.wait_for(answer).await? {
        Some(TokReply::Loaded { tokens, pieces }) => Ok((worker, tokens, pieces)),
        Some(TokReply::Error { message }) => Err(message),
        Some(TokReply::Encoded(_)) => Err("the tokenizer worker answered out of turn".into()),
        None => Err(failure.borrow().clone().unwrap_or_else(|| "the tokenizer worker stopped".into())),
    })
}

const READING: &str = "reading the weights";
const PREPARING: &str = "preparing the unembedding";
const CHECKING: &str = "running a forward pass";

/// A picked file as the page knows it: its path within the picked folder (or its name) and size.
pub(super) fn path_of(f: &web_sys::File) -> String {
    // `webkitRelativePath` ("gpt2/config.json") is set when a folder was picked; web-sys does not bind it.
    let rel = js_sys::Reflect::get(f, &"webkitRelativePath".into()).ok().and_then(|v| v.as_string());
    rel.filter(|r| !r.is_empty()).unwrap_or_else(|| f.name())
}

async fn bytes_of(blob: &web_sys::Blob, start: u64, end: u64, file: &str) -> Result<Vec<u8>, String> {
    let part =
        blob.slice_with_f64_and_f64(start as f64, end as f64).map_err(|_| format!("{file} could not be read"))?;
    let buf = JsFuture::from(part.array_buffer())
        .await
        .map_err(|_| format!("{file} could not be read: was it moved or deleted?"))?;
    Ok(Uint8Array::new(&buf).to_vec())
}

async fn text_of(file: &web_sys::File) -> Result<String, String> {
    let name = path_of(file);
    let text = JsFuture::from(file.text()).await.map_err(|_| format!("{name} could not be read"))?;
    text.as_string().ok_or_else(|| format!("{name} is not text"))
}

/// The files a model was opened from (path and file), for keeping them in the browser.
type Used = Vec<(String, web_sys::File)>;

/// Opens the picked `files` as a model: sorts them, checks the config and tokenizer, reads the weights a piece
/// at a time (reporting to `job`), and times one forward pass with every activation recorded. `None` if the
/// job was cancelled or replaced. With the summary come the files it was opened from.
async fn open(files: Vec<web_sys::File>, job: &Job) -> Option<Result<(Summary, Used), String>> {
    let started = now_ms();
    let find = |path: &str| files.iter().find(|f| path_of(f) == path).cloned();
    let listed: Vec<(String, u64)> = files.iter().map(|f| (path_of(f), f.size() as u64)).collect();
    let plan = match plan_folder(&listed) {
        Ok(p) => p,
        Err(e) => return Some(Err(e.to_string())),
    };
    let (config_file, weights_file) = (find(&plan.config)?, find(&plan.weights)?);
    let config_text = match text_of(&config_file).await {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    let cfg = match Gpt2Config::from_json(&config_text) {
        Ok(c) => c,
        Err(e) => return Some(Err(format!("{}: {e}", plan.config))),
    };
    let config_json: Value = serde_json::from_str(&config_text).unwrap_or(Value::Null);
    // The tokenizer, built in its worker, which reads its files (GPT-2's are 1.5 MB of text: read and posted
    // from here they held the page for 45 ms) and counts its tokens. It is checked against the model's
    // vocabulary before the long read.
    let (source, tok_path, tok_label) = match &plan.tokenizer {
        TokenizerFiles::Json(file) => {
            (TokenizerSource::Json { file: file.clone(), text: String::new() }, file.clone(), "tokenizer.json")
        }
        TokenizerFiles::VocabMerges { vocab, merges } => (
            TokenizerSource::VocabMerges {
                vocab_file: vocab.clone(),
                vocab: String::new(),
                merges_file: merges.clone(),
                merges: String::new(),
            },
            vocab.clone(),
            "vocab.json + merges.txt",
        ),
    };
    let tok_files = source.files().into_iter().map(|f| find(f).map(web_sys::Blob::from)).collect::<Option<Vec<_>>>()?;
    if !job.report("building the tokenizer", 0.0) {
        return None;
    }
    let (tokenizer, tokens, pieces) = match load_tokenizer(source, &tok_files, job).await? {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    if let Err(e) = check_tokenizer(&tok_path, tokens, cfg.vocab_size) {
        return Some(Err(e));
    }
    if !job.pause(READING, 0.0).await {
        return None;
    }
    let model = match read_weights(&weights_file, &plan.weights, cfg.clone(), job).await? {
        Ok(m) => m,
        Err(e) => return Some(Err(e)),
    };
    let load_ms = now_ms() - started;
    let check = match check_run(&model, job).await? {
        Ok(c) => c,
        Err(e) => return Some(Err(format!("the model loaded but a forward pass failed: {e}"))),
    };
    let name = model_name(&plan.weights, &config_json);
    let params = model.to_tensors().map(|ts| ts.iter().map(|(_, t)| t.elem_count() as u64).sum()).unwrap_or(0);
    let summary = Summary {
        name: name.clone(),
        n_layer: cfg.n_layer,
        n_head: cfg.n_head,
        d_model: cfg.d_model(),
        d_mlp: cfg.d_mlp(),
        vocab_size: cfg.vocab_size,
        n_positions: cfg.n_positions,
        params,
        file_bytes: weights_file.size() as u64,
        tokenizer: format!("{tok_label} ({tokens} tokens)"),
        unused: plan.unused,
        load_ms,
        check,
    };
    opened::keep(OwnModel { name, model, tokenizer: tokenizer.keep(), pieces: Arc::new(pieces) });
    let mut used = vec![plan.config.clone(), plan.weights.clone()];
    match &plan.tokenizer {
        TokenizerFiles::Json(t) => used.push(t.clone()),
        TokenizerFiles::VocabMerges { vocab, merges } => used.extend([vocab.clone(), merges.clone()]),
    }
    let used = used.into_iter().filter_map(|p| find(&p).map(|f| (p, f))).collect();
    Some(Ok((summary, used)))
}

/// A safetensors file's index: its first 8 bytes, then its JSON header. Every failure names `path`.
pub(super) async fn read_index(file: &web_sys::File, path: &str) -> Result<WeightsIndex, String> {
    let len = file.size() as u64;
    let named = |e: crate::lens::LensError| format!("{path}: {e}");
    let first = bytes_of(file, 0, len.min(8), path).await?;
    let n = header_len(&first, len).map_err(named)?;
    let header = bytes_of(file, 8, 8 + n as u64, path).await?;
    WeightsIndex::parse(&header, len).map_err(named)
}

/// Drives `reader` over `file`, a piece of `READ_BYTES` at a time, each decoded before the next is asked for,
/// then its `prepare` a piece at a time too (the model's and an SAE's weights alike). `reading` and `preparing`
/// are the phases shown; every failure names `path`. `None` if the job was stopped.
pub(super) async fn read_pieces<R: PieceReader>(
    file: &web_sys::File,
    path: &str,
    mut reader: R,
    job: &Job,
    (reading, preparing): (&'static str, &'static str),
) -> Option<Result<R::Out, String>> {
    let named = |e: crate::lens::LensError| format!("{path}: {e}");
    while let Some((start, end)) = reader.next_read(READ_BYTES) {
        let piece = match bytes_of(file, start, end, path).await {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        if let Err(e) = reader.feed(&piece) {
            return Some(Err(named(e)));
        }
        let (done, total) = reader.progress();
        if !job.pause(reading, done as f32 / total.max(1) as f32).await {
            return None;
        }
    }
    while !reader.prepare(READ_BYTES / 4) {
        if !job.pause(preparing, 1.0).await {
            return None;
        }
    }
    Some(reader.finish().map_err(named))
}

/// The model's weights, read in pieces (`read_pieces`) after its index is checked against `cfg`.
async fn read_weights(
    file: &web_sys::File,
    path: &str,
    cfg: Gpt2Config,
    job: &Job,
) -> Option<Result<Transformer, String>> {
    let reader = read_index(file, path)
        .await
        .and_then(|index| WeightsReader::new(index, cfg).map_err(|e| format!("{path}: {e}")));
    match reader {
        // The unembedding is turned round for the logits' product while preparing.
        Ok(r) => read_pieces(file, path, r, job, (READING, PREPARING)).await,
        Err(e) => Some(Err(e)),
    }
}

/// One forward pass over up to 32 tokens with every activation recorded, half a block at a time: the tokens,
/// the time, the activations recorded.
async fn check_run(model: &Transformer, job: &Job) -> Option<Result<(usize, f64, usize), String>> {
    let n = model.cfg.n_positions.min(32);
    let tokens: Vec<u32> = (0..n).map(|i| (i % model.cfg.vocab_size) as u32).collect();
    let mut ms = 0.0;
    let mut pass = match Stepped::new(model, &tokens, HookSet::cache_all()) {
        Ok(p) => p,
        Err(e) => return Some(Err(e.to_string())),
    };
    // Every block, half a block at a time.
    while pass.pass().is_some_and(|p| p.layers_done() < model.cfg.n_layer) {
        let s = now_ms();
        let stepped = pass.step(model);
        ms += now_ms() - s;
        if let Err(e) = stepped {
            return Some(Err(e.to_string()));
        }
        if !job.pause(CHECKING, pass.progress(model)).await {
            return None;
        }
    }
    // Then the unembedding a few positions at a time: GPT-2 small's 50,257-word unembedding over 32 positions
    // at once is a 100 ms task.
    let Some(resid) = pass.pass().map(|p| p.resid().clone()) else {
        return Some(Err("the forward pass ended early".into()));
    };
    let chunk = (8_000_000 / (model.cfg.d_model() * model.cfg.vocab_size).max(1)).max(1);
    let mut at = 0;
    while at < n {
        let k = chunk.min(n - at);
        let s = now_ms();
        let logits = resid
            .narrow(1, at, k)
            .map_err(|e| e.to_string())
            .and_then(|r| model.unembed(&r).map_err(|e| e.to_string()));
        ms += now_ms() - s;
        if let Err(e) = logits {
            return Some(Err(e));
        }
        at += k;
        if !job.pause(CHECKING, 0.9 + 0.1 * at as f32 / n as f32).await {
            return None;
        }
    }
    Some(Ok((n, ms, pass.hooks.cache.len())))
}

/// Whether a drop holds a folder (`webkitGetAsEntry().isDirectory`, which web-sys does not bind).
fn dropped_a_folder(data: &web_sys::DataTransfer) -> bool {
    let items = data.items();
    (0..items.length()).filter_map(|i| items.get(i)).any(|item| {
        let entry = js_sys::Reflect::get(&item, &"webkitGetAsEntry".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
            .and_then(|f| f.call0(&item).ok());
        entry.and_then(|e| js_sys::Reflect::get(&e, &"isDirectory".into()).ok()).is_some_and(|d| d.is_truthy())
    })
}

/// What this page said of the model open in this tab, and the files it came from: when the student comes
/// back, the summary, the links to the labs and the Keep button are there again.
#[derive(Clone)]
struct Shown {
    summary: Summary,
    used: Used,
    from_kept: bool,
}

thread_local! {
    static SHOWN: KeptWith<Shown> = const { KeptWith::new() };
}

#[component]
pub fn OwnModelLab() -> impl IntoView {
    let jobs = Jobs::new();
    let outcome: RwSignal<Option<Result<Summary, String>>> = RwSignal::new(None);
    let opened_rev = RwSignal::new(0u32);
    let dragging = RwSignal::new(false);
    // A folder picker is a file input with `webkitdirectory`, which the view macro does not know as an attribute.
    let folder_input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(el) = folder_input.get() {
            let _ = el.set_attribute("webkitdirectory", "");
        }
    });
    // What is kept in this browser (read once the page is up), and the files the model in this tab came from.
    let keeping = Keeping::new();
    // Back on this page with a model open: its summary, the links to the labs and the Keep button again.
    if let Some(Shown { summary, used, from_kept }) = opened::opened().and_then(|m| SHOWN.with(|k| k.get(&m))) {
        keeping.opened(used, from_kept);
        outcome.set(Some(Ok(summary)));
    }
    let open_files = move |files: Vec<web_sys::File>, from_kept: bool| {
        jobs.spawn("opening the files", move |job| async move {
            match open(files, &job).await {
                Some(Ok((summary, used))) => {
                    if let Some(m) = opened::opened() {
                        let shown = Shown { summary: summary.clone(), used: used.clone(), from_kept };
                        SHOWN.with(|k| k.set(&m, Some(shown)));
                    }
                    opened_rev.update(|r| *r += 1);
                    keeping.opened(used, from_kept);
                    outcome.set(Some(Ok(summary)));
                }
                Some(Err(e)) => outcome.set(Some(Err(e))),
                None => {}
            }
        });
    };
    let start = move |list: Option<web_sys::FileList>| {
        let Some(list) = list else { return };
        let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
        if !files.is_empty() {
            open_files(files, false);
        }
    };
    let open_kept = move |m: Manifest| {
        jobs.spawn("opening the kept model", move |job| async move {
            if !job.report("reading this browser's storage", 0.0) {
                return;
            }
            match kept::kept_files(&m).await {
                Ok(files) => open_files(files, true),
                Err(e) => outcome.set(Some(Err(e))),
            }
        });
    };
    let on_pick = move |ev: leptos::ev::Event| {
        let input: Option<web_sys::HtmlInputElement> = ev.target().and_then(|t| t.dyn_into().ok());
        start(input.as_ref().and_then(|i| i.files()));
        // The same files picked again must start again.
        if let Some(i) = input {
            i.set_value("");
        }
    };
    let on_drop = move |ev: web_sys::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        let Some(data) = ev.data_transfer() else { return };
        // A dropped folder arrives as one empty "file": say what works instead of calling it a broken model.
        if dropped_a_folder(&data) {
            outcome.set(Some(Err(
                "a folder was dropped, and the browser hands the page its name only: drop the files in it, or use \"Choose a folder…\"".into(),
            )));
            return;
        }
        start(data.files());
    };
    view! {
        <div class="own-model-lab" data-testid="own-model-lab" data-kept-checked=move || keeping.checked.get().then_some("1")>
            <KeptPanel keeping=keeping open_kept=open_kept />
            <section class="panel">
                <h3>"Open a model folder"</h3>
                <div class="drop-zone" data-testid="drop-zone" class:dragging=move || dragging.get()
                    on:dragover=move |ev: web_sys::DragEvent| { ev.prevent_default(); dragging.set(true); }
                    on:dragleave=move |_| dragging.set(false)
                    on:drop=on_drop>
                    <p>"Drop the model's files here: " <code>"config.json"</code> ", " <code>"model.safetensors"</code>
                        " and " <code>"tokenizer.json"</code> " (or GPT-2's " <code>"vocab.json"</code> " and " <code>"merges.txt"</code> ")."</p>
                    <div class="drop-buttons">
                        <label class="button-like">"Choose files…"
                            <input type="file" multiple data-testid="pick-files" class="sr-only" on:change=on_pick />
                        </label>
                        <label class="button-like">"Choose a folder…"
                            <input type="file" multiple data-testid="pick-folder" class="sr-only" on:change=on_pick node_ref=folder_input />
                        </label>
                    </div>
                    <p class="muted small" data-testid="stays-here">"Nothing is uploaded: the files are read by this page, in this tab, and stay on this computer."</p>
                </div>
                {progress_bar(jobs, "open", || {})}
                <div aria-live="polite">{move || outcome.get().map(outcome_view)}</div>
                {move || matches!(outcome.get(), Some(Ok(_))).then(|| view! { <KeepButton keeping=keeping /> })}
            </section>
            // The model kept in this tab, tried out: it stays when a later folder is refused, and when the student
            // comes back to this page.
            {move || { opened_rev.track(); opened::opened().map(|m| view! { <super::try_it::TryIt own=m /> }) }}
        </div>
    }
}

fn outcome_view(outcome: Result<Summary, String>) -> AnyView {
    match outcome {
        Err(e) => view! {
            <p class="input-error" data-testid="open-error" role="alert">{format!("This model could not be opened. {e}")}</p>
        }
        .into_any(),
        Ok(s) => {
            let rows = s
                .rows()
                .into_iter()
                .map(|(k, v)| view! { <tr><th scope="row">{k}</th><td>{v}</td></tr> })
                .collect_view();
            view! {
                <div data-testid="opened" data-name=s.name.clone() data-layers=s.n_layer data-heads=s.n_head
                    data-params=s.params data-activations=s.check.2 data-load-ms=format!("{:.0}", s.load_ms)
                    data-check-ms=format!("{:.0}", s.check.1)>
                    <p class="prediction">"Opened " <strong>{s.name.clone()}</strong> "."</p>
                    <table class="summary-table" data-testid="opened-summary">
                        <caption class="sr-only">"The opened model"</caption>
                        <tbody>{rows}</tbody>
                    </table>
                    <p class="muted small">"It stays in this tab until you close it or open another. Try it below, or see every head's attention in "
                        <a href="#/attention?model=own" data-testid="own-to-attention">"the attention lab"</a>
                        ", its logit lens and text in " <a href="#/9.2.2?model=own" data-testid="own-to-language">"9.2.2"</a>
                        ", probes in " <a href="#/9.2.3?model=own" data-testid="own-to-probing">"9.2.3"</a>
                        ", a patching estimate in " <a href="#/9.3.1?model=own" data-testid="own-to-patching">"9.3.1"</a>
                        ", steering in " <a href="#/9.3.2?model=own" data-testid="own-to-steering">"9.3.2"</a>
                        " and, for a small model, circuit discovery in " <a href="#/9.4?model=own" data-testid="own-to-acdc">"9.4"</a> "."</p>
                </div>
            }
            .into_any()
        }
    }
}

/// Keeping the opened model in this browser: what is kept, the files the model in this tab came from, and
/// the state of a save in progress.
#[derive(Clone, Copy)]
struct Keeping {
    kept: RwSignal<Option<Manifest>>,
    /// The files of the model opened in this tab (not `Send`: kept on this thread).
    used: StoredValue<Used, LocalStorage>,
    /// Whether the model in this tab was opened from what is kept.
    from_kept: RwSignal<bool>,
    busy: RwSignal<bool>,
    error: RwSignal<Option<String>>,
    /// Whether the storage has been read once (the page says so for its tests: `data-kept-checked`).
    checked: RwSignal<bool>,
}

impl Keeping {
    fn new() -> Self {
        let k = Keeping {
            kept: RwSignal::new(None),
            used: StoredValue::new_local(Vec::new()),
            from_kept: RwSignal::new(false),
            busy: RwSignal::new(false),
            error: RwSignal::new(None),
            checked: RwSignal::new(false),
        };
        leptos::task::spawn_local(async move {
            k.kept.set(kept::kept().await);
            k.checked.set(true);
        });
        k
    }

    fn opened(self, used: Used, from_kept: bool) {
        self.used.set_value(used);
        self.from_kept.set(from_kept);
        self.error.set(None);
    }

    fn keep(self, name: String) {
        let used = self.used.get_value();
        self.busy.set(true);
        self.error.set(None);
        leptos::task::spawn_local(async move {
            match kept::keep(&name, &used).await {
                Ok(m) => {
                    self.kept.set(Some(m));
                    self.from_kept.set(true);
                    SHOWN.with(|k| k.update(|s| s.from_kept = true));
                }
                Err(e) => self.error.set(Some(e)),
            }
            self.busy.set(false);
        });
    }

    fn forget(self) {
        leptos::task::spawn_local(async move {
            match kept::forget().await {
                Ok(()) => {
                    self.kept.set(None);
                    self.from_kept.set(false);
                    SHOWN.with(|k| k.update(|s| s.from_kept = false));
                }
                Err(e) => self.error.set(Some(e)),
            }
        });
    }
}

/// A date as the page says it ("Thu Dec 03 2026").
fn day_of(ms: f64) -> String {
    js_sys::Date::new(&ms.into()).to_date_string().into()
}

/// The model kept in this browser, if any, with Open and Forget.
#[component]
fn KeptPanel(keeping: Keeping, open_kept: impl Fn(Manifest) + Copy + Send + Sync + 'static) -> impl IntoView {
    move || {
        let m = keeping.kept.get()?;
        let what = format!("{} ({}, kept on {})", m.name, megabytes(m.bytes()), day_of(m.kept_at));
        let open = m.clone();
        Some(view! {
            <section class="panel" data-testid="kept-model" data-name=m.name.clone()>
                <h3>"Kept in this browser"</h3>
                <p>{what}</p>
                <div class="drop-buttons">
                    <button class="primary" data-testid="open-kept" on:click=move |_| open_kept(open.clone())>"Open it"</button>
                    <button data-testid="forget-kept" on:click=move |_| keeping.forget()>"Forget it"</button>
                </div>
                <p class="muted small">"Its files are in this browser's storage for this site, on this computer; nothing was sent anywhere. Forget it to free the space."</p>
            </section>
        })
    }
}

/// Under an opened model: keep it for the next visit, only if the student asks.
#[component]
fn KeepButton(keeping: Keeping) -> impl IntoView {
    let on_keep = move |_| {
        if let Some(m) = opened::opened() {
            keeping.keep(m.name.clone());
        }
    };
    let bytes = move || megabytes(keeping.used.with_value(|u| u.iter().map(|(_, f)| f.size() as u64).sum()));
    view! {
        <div class="keep-model" data-testid="keep-panel">
            {move || if keeping.from_kept.get() {
                view! { <p class="muted small" data-testid="kept-note">"This model is kept in this browser: it opens from this page on your next visit."</p> }.into_any()
            } else {
                view! {
                    <p class="small">
                        <button data-testid="keep-model" disabled=move || keeping.busy.get() on:click=on_keep>
                            {move || if keeping.busy.get() { "Keeping…" } else { "Keep it in this browser" }}</button>
                        " " {move || format!("for your next visit ({}, in this browser's storage on this computer).", bytes())}
                    </p>
                }.into_any()
            }}
            {move || keeping.error.get().map(|e| view! { <p class="input-error" data-testid="keep-error" role="alert">{e}</p> })}
        </div>
    }
}
