//! The first lab: attention patterns and induction heads on a 2-layer attention-only transformer.
//! Everything recomputes from the typed sequence; the sequence and the selected head live in the URL. The lab
//! is a handful of panels sharing one `Shared` set of signals; what they show is computed in `super`.
use std::sync::Arc;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::{
    best_induction_head, cell_at, compute, head_index, loss_bars, loss_of_cells, pattern_pixels, pattern_table,
    result_of, score_bars, thumb_batch_end, token_mark, training_curve, AttentionState, LabResult, TokenMark,
};
use crate::app::core::browser::{canvas_by_id, document, next_frame, now_ms, replace_hash_soon, yield_to_browser};
use crate::app::core::charts::{Axis, BarChart, Legend, LineChart};
use crate::app::core::export::{images_table, CanvasExport};
use crate::app::core::frame::{progress_bar, LabFrame, UrlNotes};
use crate::app::core::jobs::{Job, Jobs};
use crate::app::core::keys;
use crate::app::core::load::{LoadedModel, TaskModels};
use crate::app::core::models::{own_not_open, LabModel, TaskModel};
use crate::app::core::opened::{opened, OwnInput, OwnModel, ReadText};
use crate::app::core::own_text::{self, show_piece};
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::gpt2::Hook;
use crate::lens::methods::induction::random_repeat_text;
use crate::lens::methods::ioi::CHAPTER_PROMPT;

fn random_repeat(m: &LoadedModel, seed: u64) -> String {
    random_repeat_text(&m.vocab, m.model.cfg.n_positions, seed)
}

/// What a model opens on: a random repeat shows induction at once; the IOI model, the chapter's sentence.
fn default_text(which: TaskModel, m: &LoadedModel) -> String {
    match which {
        TaskModel::Induction => random_repeat(m, 2024),
        TaskModel::Ioi => CHAPTER_PROMPT.to_string(),
    }
}

/// The model the lab shows: a task model we ship, or the one opened in this tab.
#[derive(Clone)]
enum Shown {
    Task(TaskModel, Arc<LoadedModel>),
    Own(Arc<OwnModel>),
}

impl Shown {
    fn model(&self) -> &crate::lens::Transformer {
        match self {
            Shown::Task(_, m) => &m.model,
            Shown::Own(o) => &o.model,
        }
    }

    /// A random repeated sequence in the model's own words (`None` if its vocabulary has too few whole words).
    fn random_repeat(&self, seed: u64) -> Option<String> {
        match self {
            Shown::Task(_, m) => Some(random_repeat(m, seed)),
            Shown::Own(o) => own_text::random_repeat(&o.pieces, o.model.cfg.n_positions, seed),
        }
    }

    /// What the lab opens on: a random repeat shows induction at once; the IOI model, the chapter's sentence.
    fn default_text(&self) -> String {
        match self {
            Shown::Task(w, m) => default_text(*w, m),
            Shown::Own(_) => self.random_repeat(2024).unwrap_or_else(|| CHAPTER_PROMPT.to_string()),
        }
    }
}

/// The lab's result on an opened model: the text encoded by its tokenizer (in its worker), a pass half a block
/// per slice with every pattern recorded, and the model's output decoded a slice of the vocabulary at a time for
/// the loss. `None` if the job was replaced or cancelled.
async fn compute_own(own: &OwnModel, text: String, job: &Job) -> Option<Result<LabResult, String>> {
    let n_layer = own.model.cfg.n_layer;
    let hooks: Vec<Hook> = (0..n_layer).map(Hook::Pattern).collect();
    let input = match own.encode(text, job, "encoding the text").await? {
        Ok(x) => x,
        Err(e) => return Some(Err(e)),
    };
    if input.ids.len() < 2 {
        return Some(Err("Type a few words (or press “Random repeat”): the sequence is too short.".into()));
    }
    let read = match own.read_input(input, &hooks, n_layer..n_layer + 1, job).await? {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    let patterns = match read.patterns(n_layer) {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    let ReadText { input: OwnInput { ids, pieces, .. }, mut cells, .. } = read;
    let words = pieces.iter().map(|p| show_piece(p)).collect();
    Some(Ok(result_of(ids, words, patterns, loss_of_cells(&cells.pop().unwrap_or_default()))))
}

/// `canvas` made `side` pixels square (only if it is not: resizing a canvas allocates it again), and its 2D
/// context.
fn square_2d(canvas: &web_sys::HtmlCanvasElement, side: u32) -> Option<web_sys::CanvasRenderingContext2d> {
    if canvas.width() != side || canvas.height() != side {
        canvas.set_width(side);
        canvas.set_height(side);
    }
    canvas.get_context("2d").ok().flatten().and_then(|c| c.dyn_into().ok())
}

/// Paints `pattern` into `canvas` at `side` pixels square (`pattern_pixels`): one pixel per cell for the
/// selected head, which CSS scales up without smoothing, and `THUMB_PX` for a head's thumbnail.
fn draw_pattern(canvas: &web_sys::HtmlCanvasElement, pattern: &[Vec<f32>], side: u32, masked: (u8, u8, u8)) {
    if pattern.is_empty() {
        return;
    }
    let Some(ctx) = square_2d(canvas, side) else { return };
    let data = pattern_pixels(pattern, side as usize, masked);
    if let Ok(img) = web_sys::ImageData::new_with_u8_clamped_array_and_sh(wasm_bindgen::Clamped(&data), side, side) {
        let _ = ctx.put_image_data(&img, 0.0, 0.0);
    }
}

fn fmt_loss(x: f32) -> String {
    format!("{x:.2}")
}

/// Head thumbnails drawn per frame (every head of our models at once; GPT-2 small's 144 in six frames).
const THUMBS_PER_FRAME: usize = 24;
/// Of those, thumbnails drawn for the first time: a canvas's first drawing allocates its backing store, about
/// 2 ms of the page's thread each in Chromium (see `thumb_batch_end`).
const NEW_THUMBS_PER_FRAME: usize = 3;
/// A thumbnail canvas's side in pixels, whatever the pattern's size: the pattern is scaled into it, so a new
/// text length redraws the canvas without allocating it again (a canvas resized is a canvas allocated anew:
/// each keystroke in the lab on GPT-2 small cost 144 of them, in 50-90 ms tasks).
const THUMB_PX: u32 = 72;

/// The signals the panels share: the last good result, the selected head and what the pointer is over.
#[derive(Clone, Copy)]
struct Shared {
    last_good: RwSignal<Option<Arc<LabResult>>>,
    /// What the score and loss charts show: `last_good`, set a frame later for an opened model, whose 144 heads
    /// would otherwise lay out the grid and the charts in one long task.
    charted: RwSignal<Option<Arc<LabResult>>>,
    selected: RwSignal<Option<(usize, usize)>>,
    hover_tok: RwSignal<Option<usize>>,
    hover_cell: RwSignal<Option<(usize, usize)>>,
}

impl Shared {
    fn head(self) -> (usize, usize) {
        self.selected.get().unwrap_or((1, 0))
    }

    /// `f` of the selected head's pattern in the last good result (tracked; borrowed, not copied).
    fn with_pattern<R>(self, f: impl FnOnce(&[Vec<f32>]) -> R) -> Option<R> {
        let (l, h) = self.head();
        self.last_good.with(|r| r.as_ref()?.patterns.get(l)?.get(h).map(|p| f(p)))
    }
}

/// What a result updates besides the panels' shared signals.
#[derive(Clone, Copy)]
struct Output {
    text: RwSignal<String>,
    shared: Shared,
    error: RwSignal<Option<String>>,
    rev: RwSignal<u32>,
    last_ms: RwSignal<f64>,
}

/// Recomputes whenever the text or the model changes.
fn recompute(model: Signal<Option<Shown>>, out: Output, jobs: Jobs) {
    let Output { text, shared, error, rev, last_ms } = out;
    // Recompute whenever the text or the model changes: at once on a shipped model (9 ms on a long sequence), as
    // a job with progress on an opened one (GPT-2 small: about a second). A bad input keeps the last good result.
    let show = move |r: Result<LabResult, String>, t0: f64| {
        match r {
            Ok(r) => {
                if shared.selected.get_untracked().is_none() {
                    shared.selected.set(Some(best_induction_head(&r.scores)));
                }
                let r = Arc::new(r);
                shared.last_good.set(Some(r.clone()));
                shared.charted.set(Some(r));
                error.set(None);
                rev.update(|r| *r += 1);
            }
            Err(e) => error.set(Some(e)),
        }
        last_ms.set(now_ms() - t0);
    };
    // An opened model's result: the tokens, heads and pattern first, the charts and the new revision a frame later.
    let show_staged = move |r: LabResult, t0: f64, job: Job| async move {
        if shared.selected.get_untracked().is_none() {
            shared.selected.set(Some(best_induction_head(&r.scores)));
        }
        let r = Arc::new(r);
        shared.last_good.set(Some(r.clone()));
        error.set(None);
        last_ms.set(now_ms() - t0);
        // A task of its own, not an animation frame's: the thumbnails draw in frames.
        yield_to_browser().await;
        if job.alive() {
            shared.charted.set(Some(r));
            rev.update(|r| *r += 1);
        }
    };
    Effect::new(move |_| {
        let t = text.get();
        let t0 = now_ms();
        match model.get() {
            Some(Shown::Task(_, m)) => show(compute(&m.model, &m.vocab, &t), t0),
            Some(Shown::Own(o)) => jobs.spawn("encoding the text", move |job| async move {
                // The result is drawn in tasks of its own, apart from the last piece of work.
                match compute_own(&o, t, &job).await {
                    Some(Ok(r)) if job.frame().await => show_staged(r, t0, job).await,
                    Some(Err(e)) => show(Err(e), t0),
                    _ => {}
                }
            }),
            None => {}
        }
    });
}

#[component]
pub fn AttentionLab(query: Vec<(String, String)>) -> impl IntoView {
    let (url, problems) = AttentionState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    // A link naming an opened model, in a tab that has none, says so and shows the induction model.
    let own = opened();
    let first = match (url.model, &own) {
        (LabModel::Own, None) => {
            notes.add(own_not_open(TaskModel::Induction));
            LabModel::Task(TaskModel::Induction)
        }
        (m, _) => m,
    };
    let which = RwSignal::new(first);
    // The shipped model last chosen: fetched once first named, and kept while the opened model is shown.
    let task = RwSignal::new(first.task_or(TaskModel::Induction));
    let models = TaskModels::new(task);
    let own = StoredValue::new(own);
    let model = move || match which.get() {
        LabModel::Task(t) => models.of(t).get().map(|m| Shown::Task(t, m)),
        LabModel::Own => own.get_value().map(Shown::Own),
    };
    let shared = Shared {
        last_good: RwSignal::new(None),
        charted: RwSignal::new(None),
        selected: RwSignal::new(None),
        hover_tok: RwSignal::new(None),
        hover_cell: RwSignal::new(None),
    };
    let text = RwSignal::new(url.seq.clone().unwrap_or_default());
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let rev = RwSignal::new(0u32);
    let last_ms = RwSignal::new(0.0f64);
    let jobs = Jobs::new();

    // Once the model is there (first, and after each switch): an empty sequence starts from the model's default;
    // a head from the URL is checked against the first model's shape, once.
    let url_head = StoredValue::new(url.head);
    Effect::new(move |_| {
        let Some(m) = model() else { return };
        if text.get_untracked().trim().is_empty() {
            text.set(m.default_text());
        }
        let cfg = &m.model().cfg;
        match url_head.try_update_value(Option::take).flatten() {
            Some((l, h)) if l < cfg.n_layer && h < cfg.n_head => shared.selected.set(Some((l, h))),
            Some((l, h)) => notes.add(format!(
                "The link's head L{l}H{h} does not exist in this model of {} layers × {} heads, so the lab selects the strongest induction head.",
                cfg.n_layer, cfg.n_head
            )),
            None => {}
        }
    });
    // Switching the model starts from its default sequence and its strongest induction head.
    let switch = move |w: LabModel| {
        if which.get_untracked() == w {
            return;
        }
        jobs.cancel();
        shared.selected.set(None);
        shared.last_good.set(None);
        shared.charted.set(None);
        error.set(None);
        let next = match w {
            LabModel::Task(t) => {
                task.set(t);
                models.of(t).get_untracked().map(|m| Shown::Task(t, m))
            }
            LabModel::Own => own.get_value().map(Shown::Own),
        };
        text.set(next.map(|m| m.default_text()).unwrap_or_default());
        which.set(w);
    };

    recompute(Signal::derive(model), Output { text, shared, error, rev, last_ms }, jobs);

    // The URL follows the model, the sequence and the selected head.
    Effect::new(move |_| {
        let seq = text.get().trim().to_string();
        let state =
            AttentionState { model: which.get(), seq: (!seq.is_empty()).then_some(seq), head: shared.selected.get() };
        if model().is_some() {
            replace_hash_soon(&section_hash_with("attention", &state.to_query()));
        }
    });

    let folder = move || match which.get() {
        LabModel::Task(t) => t.folder().to_string(),
        LabModel::Own => own.get_value().map(|o| o.name.clone()).unwrap_or_default(),
    };
    let dims = Signal::derive(move || model().map(|m| (m.model().cfg.n_layer, m.model().cfg.n_head)));
    view! {
        <LabFrame notes=notes model=Signal::derive(folder)>
        <div class="attention-lab" class:unloaded=move || model().is_none()>
            {move || matches!(which.get(), LabModel::Task(_)).then(|| models.shown().status())}
            <div class="lab-body">
                <SequenceInput model=Signal::derive(model) which=which switch=switch text=text error=error rev=rev last_ms=last_ms shared=shared own=own.get_value() />
                {progress_bar(jobs, "attention", || {})}
                <TokenStrip shared=shared />
                <p class="hint muted">"Hover a token (or Tab to the tokens and use the arrow keys): blue marks what it attends to in the selected head, orange what attends to it."</p>
                <div class="lab-grid">
                    <HeadGrid dims=dims shared=shared />
                    <PatternPanel shared=shared />
                </div>
                <ScoresPanel shared=shared />
                <LossPanel shared=shared />
                {move || match which.get() {
                    LabModel::Task(t) => view! { <TrainingPanel model=models.of(t) which=t /> }.into_any(),
                    LabModel::Own => view! { <OwnPanel own=own.get_value() /> }.into_any(),
                }}
            </div>
        </div>
        </LabFrame>
    }
}

/// The sequence, Random repeat, the status line and the input's message.
#[component]
fn SequenceInput(
    model: Signal<Option<Shown>>,
    which: RwSignal<LabModel>,
    switch: impl Fn(LabModel) + Copy + Send + Sync + 'static,
    text: RwSignal<String>,
    error: RwSignal<Option<String>>,
    rev: RwSignal<u32>,
    last_ms: RwSignal<f64>,
    shared: Shared,
    own: Option<Arc<OwnModel>>,
) -> impl IntoView {
    let random_seed = RwSignal::new(now_ms() as u64);
    let on_random = move |_| {
        random_seed.update(|s| *s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
        if let Some(t) = model.get_untracked().and_then(|m| m.random_repeat(random_seed.get_untracked())) {
            text.set(t);
        }
    };
    let can_repeat = move || model.get().is_some_and(|m| m.random_repeat(0).is_some());
    let last_good = shared.last_good;
    let radio = move |w: LabModel, key: &str, label: String| {
        view! {
            <label><input type="radio" name="attention-model" data-testid=format!("attention-model-{key}")
                prop:checked=move || which.get() == w on:change=move |_| switch(w) />{label}</label>
        }
    };
    // The opened model is offered beside ours only in the tab that opened it.
    let own_radio =
        own.map(|o| radio(LabModel::Own, "own", format!(" Your model: {} ({} layers)", o.name, o.model.cfg.n_layer)));
    let label = move || match which.get() {
        LabModel::Task(_) => "Sequence (words from the model's vocabulary, separated by spaces)",
        LabModel::Own => "Sequence (any text: the model's own tokenizer splits it into tokens)",
    };
    view! {
        <div class="model-switch" role="radiogroup" aria-label="Model">
            {radio(LabModel::Task(TaskModel::Induction), "induction", " Induction model (2 layers)".into())}
            {radio(LabModel::Task(TaskModel::Ioi), "ioi", " IOI model (3 layers, 9.3.1)".into())}
            {own_radio}
        </div>
        <div class="input-row">
            <label for="seq-input" class="input-label">{label}</label>
            <textarea id="seq-input" data-testid="seq-input" rows="3" spellcheck="false"
                aria-invalid=move || error.get().is_some().to_string()
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))></textarea>
            <div class="input-actions">
                <button data-testid="random-btn" class="primary" on:click=on_random disabled=move || !can_repeat()>"Random repeat"</button>
                <span class="muted" data-testid="lab-status" data-rev=move || rev.get()
                    data-ms=move || format!("{:.2}", last_ms.get())>
                    {move || last_good.get().map(|r| format!("{} tokens · recomputed in {:.1} ms", r.tokens.len(), last_ms.get()))}
                </span>
            </div>
            {move || error.get().map(|e| view! { <p class="input-error" data-testid="input-error" role="alert">{e}
                {last_good.with(Option::is_some).then_some(view! { <span class="muted">" Showing the last good sequence."</span> })}</p> })}
        </div>
    }
}

/// The tokens, marked by what the hovered token attends to (or what attends to it) in the selected head.
#[component]
fn TokenStrip(shared: Shared) -> impl IntoView {
    // Every token's mark at once, and only when the pattern or the pointer changes: each token then reads its
    // own entry (before, each of its five attributes copied the whole pattern, 300 copies per update).
    let marks = Memo::new(move |_| {
        let n = shared.last_good.with(|r| r.as_ref().map_or(0, |r| r.words.len()));
        let (tok, cell) = (shared.hover_tok.get(), shared.hover_cell.get());
        shared
            .with_pattern(|p| (0..n).map(|pos| token_mark(p, pos, tok, cell)).collect::<Vec<_>>())
            .unwrap_or_else(|| vec![TokenMark::default(); n])
    });
    let mark = move |pos: usize| marks.with(|m| m.get(pos).copied().unwrap_or_default());
    // Keyboard: the strip is one tab stop (roving tabindex); focusing a token marks it as hovering does, and the
    // arrows, Home and End move along the tokens.
    let stop = RwSignal::new(0usize);
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let n = shared.last_good.with_untracked(|r| r.as_ref().map_or(0, |r| r.words.len()));
        let Some(next) = keys::list_move(&ev.key(), stop.get_untracked(), n, 8, false) else { return };
        ev.prevent_default();
        stop.set(next);
        if let Ok(Some(e)) = document().query_selector(&format!("[data-testid=token][data-pos=\"{next}\"]")) {
            if let Ok(e) = e.dyn_into::<web_sys::HtmlElement>() {
                let _ = e.focus();
            }
        }
    };
    // One span per position, kept from one text to the next (`For` keyed by position): only a token's word and
    // marks change. Rebuilt every update, the strip's 64 spans, their listeners and attributes were about a
    // fifth of the calls into the page an update made.
    let n = Memo::new(move |_| shared.last_good.with(|r| r.as_ref().map_or(0, |r| r.words.len())));
    let word = move |pos: usize| shared.last_good.with(|r| r.as_ref().and_then(|r| r.words.get(pos).cloned()));
    let second =
        move |pos: usize| shared.last_good.with(|r| r.as_ref().is_some_and(|r| pos > 0 && pos > r.half && r.half > 0));
    let tokens = view! {
        <For each=move || 0..n.get() key=|pos| *pos let:pos>
            <span class="token" data-testid="token" data-pos=pos
                class:bos=pos == 0 class:second-half=move || second(pos)
                class:attended=move || mark(pos).attended
                class:attending=move || mark(pos).attending
                class:linked=move || mark(pos).linked
                style=move || { let w = mark(pos).weight; if w > 0.0 { format!("--w: {w:.3}") } else { String::new() } }
                on:mouseenter=move |_| shared.hover_tok.set(Some(pos))
                on:mouseleave=move |_| shared.hover_tok.set(None)
                tabindex=move || keys::roving_tabindex(pos, stop.get())
                on:focus=move |_| { stop.set(pos); shared.hover_tok.set(Some(pos)) }
                on:blur=move |_| shared.hover_tok.set(None)
                title=format!("position {pos}")>
                {move || word(pos)}
            </span>
        </For>
    };
    view! { <div class="token-strip" data-testid="token-strip" on:keydown=on_key role="group"
    aria-label="tokens: focus one with Tab and the arrow keys to see its attention in the selected head">{tokens}</div> }
}

/// Every head as a thumbnail of its pattern, tagged by what its scores say it does; a click selects it.
#[component]
fn HeadGrid(dims: Signal<Option<(usize, usize)>>, shared: Shared) -> impl IntoView {
    // The thumbnails are canvases of a fixed size, redrawn after each result a few a frame (`thumb_batch_end`):
    // GPT-2 small's 144 at once held the thread for 60-90 ms, most of it the canvases' first allocation. A newer
    // result stops the drawing of an older one.
    let drawing = StoredValue::new(0u64);
    Effect::new(move |_| {
        let Some(r) = shared.last_good.get() else { return };
        let ticket = drawing.get_value() + 1;
        drawing.set_value(ticket);
        leptos::task::spawn_local(async move {
            let thumbs: Vec<(Option<web_sys::HtmlCanvasElement>, &Vec<Vec<f32>>)> = (r.patterns.iter().enumerate())
                .flat_map(|(l, layer)| {
                    layer.iter().enumerate().map(move |(h, p)| (canvas_by_id(&format!("thumb-{l}-{h}")), p))
                })
                .collect();
            let fresh = |i: usize| thumbs[i].0.as_ref().is_some_and(|c| c.width() != THUMB_PX);
            let mut from = 0;
            while from < thumbs.len() {
                if from > 0 {
                    next_frame().await;
                }
                if drawing.try_get_value() != Some(ticket) {
                    return;
                }
                let end = thumb_batch_end(from, thumbs.len(), fresh, THUMBS_PER_FRAME, NEW_THUMBS_PER_FRAME);
                for (thumb, pattern) in &thumbs[from..end] {
                    if let Some(c) = thumb {
                        draw_pattern(c, pattern, THUMB_PX, (255, 255, 255));
                    }
                }
                from = end;
            }
        });
    });
    let cell = move |l: usize, h: usize| {
        let score = move || {
            shared.last_good.get().and_then(|r| r.scores.get(l).and_then(|x| x.get(h)).copied()).unwrap_or_default()
        };
        view! {
            <button class="head-cell" data-testid="head-cell" data-layer=l data-head=h
                aria-pressed=move || (shared.head() == (l, h)).to_string()
                title=move || { let s = score(); format!("L{l}H{h}: previous-token {:.2}, induction {:.2}, duplicate-token {:.2}", s.previous_token, s.induction, s.duplicate_token) }
                on:click=move |_| shared.selected.set(Some((l, h)))>
                <canvas id=format!("thumb-{l}-{h}") class="thumb" data-label=format!("L{l}H{h}") width="1" height="1"></canvas>
                <span class="head-name">{format!("L{l}H{h}")}</span>
                <span class="head-tags">
                    {move || { let s = score(); let mut tags = vec![];
                        if s.previous_token >= 0.5 { tags.push(view! { <span class="tag prev">"prev"</span> }); }
                        if s.induction >= 0.5 { tags.push(view! { <span class="tag ind">"induction"</span> }); }
                        if s.duplicate_token >= 0.5 { tags.push(view! { <span class="tag dup">"dup"</span> }); }
                        tags }}
                </span>
            </button>
        }
    };
    // Every head's pattern in long form (head, query, key, value), read when the button is pressed.
    let all_csv = Callback::new(move |_| {
        shared.last_good.with_untracked(|r| {
            let r = r.as_ref()?;
            let heads: Vec<(String, (usize, usize), Vec<f32>)> = (r.patterns.iter().enumerate())
                .flat_map(|(l, layer)| {
                    layer.iter().enumerate().map(move |(h, p)| {
                        let n = p.len();
                        let cells = (0..n * n).map(|i| p[i / n].get(i % n).copied().unwrap_or(0.0)).collect();
                        (format!("L{l}H{h}"), (n, n), cells)
                    })
                })
                .collect();
            Some(images_table(
                "every head's attention pattern: rows are queries, columns are keys",
                ["head", "query", "key"],
                &heads,
            ))
        })
    });
    let rows = move || {
        let (nl, nh) = dims.get()?;
        let row = move |l: usize| {
            let cells = (0..nh).map(|h| cell(l, h)).collect_view();
            view! { <div class="head-row"><span class="layer-label">{format!("layer {l}")}</span>{cells}</div> }
        };
        Some((0..nl).map(row).collect_view())
    };
    view! {
        <section class="panel">
            <h3>"Heads"</h3>
            <div class="head-grid" id="head-grid-canvases" data-testid="head-grid">{rows}</div>
            <CanvasExport selector="#head-grid-canvases" what="every head's attention pattern" table=all_csv />
        </section>
    }
}

/// The selected head's pattern, large, with the hovered cell outlined and named in a tooltip.
#[component]
fn PatternPanel(shared: Shared) -> impl IntoView {
    // The CSV of the pattern shown: read when the button is pressed, so it is always the selected head's.
    let pattern_csv = Callback::new(move |_| {
        let head = shared.selected.get_untracked().unwrap_or((1, 0));
        shared.last_good.with_untracked(|r| {
            let r = r.as_ref()?;
            Some(pattern_table(r.patterns.get(head.0)?.get(head.1)?, &r.words, head))
        })
    });
    let tip_pos = RwSignal::new((0.0f64, 0.0f64));
    let n = Memo::new(move |_| shared.last_good.get().map(|r| r.tokens.len()).unwrap_or(0));
    // Painted on a canvas: a few thousand SVG rects cost tens of ms per update.
    Effect::new(move |_| {
        // The pattern is read first, so the effect tracks it even while the canvas is not there yet.
        shared.with_pattern(|p| {
            if let Some(c) = canvas_by_id("pattern-canvas") {
                draw_pattern(&c, p, p.len() as u32, (241, 245, 249));
            }
        });
    });
    let tooltip = move || -> Option<String> {
        let (q, k) = shared.hover_cell.get()?;
        let r = shared.last_good.get()?;
        let (l, h) = shared.head();
        let w = *r.patterns.get(l)?.get(h)?.get(q)?.get(k)?;
        Some(format!("L{l}H{h} · query {q} “{}” → key {k} “{}”: {w:.3}", r.words.get(q)?, r.words.get(k)?))
    };
    let on_move = move |ev: web_sys::MouseEvent| {
        let Some(el) = ev.current_target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return };
        let r = el.get_bounding_client_rect();
        tip_pos.set((ev.client_x() as f64 - r.left(), ev.client_y() as f64 - r.top()));
        // Cells are measured on the canvas itself, inside the frame's border.
        let c = document().get_element_by_id("pattern-canvas").map(|c| c.get_bounding_client_rect()).unwrap_or(r);
        let (cx, cy) = (ev.client_x() as f64 - c.left(), ev.client_y() as f64 - c.top());
        let size = n.get_untracked();
        let cell =
            if c.width() > 0.0 && c.height() > 0.0 { cell_at(cx / c.width(), cy / c.height(), size) } else { None };
        if shared.hover_cell.get_untracked() != cell {
            shared.hover_cell.set(cell);
        }
    };
    // Keyboard: the pattern is one tab stop; focus outlines a cell (the diagonal's first), the arrows move it and
    // the tooltip names it, as the pointer does.
    let tip_at = move |(q, k): (usize, usize)| {
        let el = document().get_element_by_id("pattern-canvas");
        if let Some(r) = el.map(|c| c.get_bounding_client_rect()) {
            let size = n.get_untracked().max(1) as f64;
            tip_pos.set(((k as f64 + 1.0) * r.width() / size, (q as f64 + 1.0) * r.height() / size));
        }
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let size = n.get_untracked();
        let at = shared.hover_cell.get_untracked().unwrap_or((0, 0));
        let Some(cell) = keys::grid_move(&ev.key(), ev.ctrl_key(), at, (size, size)) else { return };
        ev.prevent_default();
        tip_at(cell);
        shared.hover_cell.set(Some(cell));
    };
    let on_focus = move |_| {
        if shared.hover_cell.get_untracked().is_none() && n.get_untracked() > 0 {
            tip_at((0, 0));
            shared.hover_cell.set(Some((0, 0)));
        }
    };
    let outline = move || {
        shared.hover_cell.get().map(|(q, k)| {
            let n = n.get().max(1) as f64;
            let style = format!(
                "left: {:.4}%; top: {:.4}%; width: {:.4}%; height: {:.4}%",
                100.0 * k as f64 / n,
                100.0 * q as f64 / n,
                100.0 / n,
                100.0 / n
            );
            view! { <div class="pattern-hl" data-q=q data-k=k style=style></div> }
        })
    };
    let title = move || {
        let (l, h) = shared.head();
        format!("Attention pattern of L{l}H{h}")
    };
    let label = move || {
        let (l, h) = shared.head();
        format!("attention pattern of L{l}H{h}: rows are queries, columns are keys")
    };
    view! {
        <section class="panel pattern-panel">
            <h3 data-testid="pattern-title">{title}</h3>
            <div class="pattern-wrap">
                <span class="axis-y">"query (reading) ↓"</span>
                <div class="pattern-large" data-testid="pattern-large" data-n=move || n.get()
                    on:mousemove=on_move on:mouseleave=move |_| shared.hover_cell.set(None)
                    tabindex="0" on:keydown=on_key on:focus=on_focus on:blur=move |_| shared.hover_cell.set(None)
                    role="group" aria-label="attention pattern: arrow keys move from cell to cell"
                    aria-describedby="pattern-tip">
                    <canvas id="pattern-canvas" class="pattern-canvas" role="img" aria-label=label></canvas>
                    {outline}
                </div>
                <span class="axis-x">"key (attended to) →"</span>
                <div class="pattern-tooltip" data-testid="pattern-tooltip" role="tooltip" id="pattern-tip" aria-live="polite"
                    class:visible=move || shared.hover_cell.get().is_some()
                    style=move || { let (x, y) = tip_pos.get(); format!("left: {:.0}px; top: {:.0}px", x + 14.0, y + 14.0) }>
                    {tooltip}
                </div>
            </div>
            <CanvasExport selector="#pattern-canvas" what="attention pattern" table=pattern_csv />
        </section>
    }
}

#[component]
fn ScoresPanel(shared: Shared) -> impl IntoView {
    // A new head only moves the shaded band: Leptos updates the attributes that changed, not the whole chart.
    let chart = move || {
        shared.charted.get().map(|r| {
            let (groups, x) = score_bars(&r.scores);
            let band = head_index(&r.scores, shared.head()).map(|i| (i as f64, i as f64 + 1.0));
            view! {
                <BarChart groups=groups x=x y=Axis::linear(0.0, 1.0, 5).titled("score") size=(560.0, 240.0)
                    shade=band label="previous-token, induction and duplicate-token score of every head"
                    series=vec!["previous-token", "induction", "duplicate-token"] testid="head-score-chart" />
            }
        })
    };
    view! {
        <section class="panel">
            <h3>"Head scores"</h3>
            <Legend items=vec![("blue", "previous-token"), ("orange", "induction"), ("violet", "duplicate-token")]
                note="mean attention on the key each pattern predicts" />
            <div class="chart" data-testid="head-scores">{chart}</div>
        </section>
    }
}

#[component]
fn LossPanel(shared: Shared) -> impl IntoView {
    let summary = move || {
        shared.charted.get().map(|r| {
            let (a, b) = r.halves.unwrap_or((f32::NAN, f32::NAN));
            let label = if r.exact_repeat { "repeated half" } else { "second half" };
            let ratio = if a > 0.0 && b.is_finite() { format!("{:.0}%", 100.0 * b / a) } else { "–".into() };
            view! {
                <p class="loss-summary" data-testid="loss-summary" data-first-half=format!("{a:.4}") data-repeat-half=format!("{b:.4}")>
                    "Mean loss, first half: " <strong>{fmt_loss(a)}</strong> " nats · " {label} ": "
                    <strong class="second">{fmt_loss(b)}</strong> " nats (" {ratio} " of the first half)"
                    {(!r.exact_repeat).then(|| view! { <span class="muted">" — the halves are not an exact repeat"</span> })}
                </p>
            }
        })
    };
    let chart = move || {
        shared.charted.get().map(|r| {
            let (groups, x, rules) = loss_bars(&r);
            let max = r.loss.iter().fold(0.0f32, |m, &l| m.max(l)) as f64;
            let second = (r.half > 0 && r.half < r.loss.len()).then_some((r.half as f64, r.loss.len() as f64));
            view! {
                <BarChart groups=groups x=x.titled("position of the predicted token")
                    y=Axis::from_zero(max, 6).titled("loss (nats)") size=(560.0, 240.0) rules=rules
                    shade=second class="loss-bars" label="loss at each position, with each half's mean" />
            }
        })
    };
    view! {
        <section class="panel">
            <h3>"Loss at each position"</h3>
            // A live region that stays in place while its text changes, so screen readers announce each new result.
            <div role="status">{summary}</div>
            <div class="chart" data-testid="loss-chart">{chart}</div>
        </section>
    }
}

#[component]
fn TrainingPanel(model: crate::app::core::load::Model<LoadedModel>, which: TaskModel) -> impl IntoView {
    let curve = move || {
        let m = model.get()?;
        let pts = training_curve(m.training.as_ref()?);
        let xmax = pts.iter().fold(1.0f64, |m, p| m.max(p.0));
        let ymax = pts.iter().fold(0.1f64, |m, p| m.max(p.1));
        let (what, label) = match which {
            TaskModel::Induction => {
                ("loss on repeated tokens", "training curve: loss on repeated tokens against the training step")
            }
            TaskModel::Ioi => ("training loss", "training curve: loss against the training step"),
        };
        (!pts.is_empty()).then(|| {
            view! {
                <LineChart lines=vec![(pts, "blue")] x=Axis::from_zero(xmax, 6).titled("training step")
                    y=Axis::from_zero(ymax, 6).titled(what) size=(560.0, 240.0) label=label />
            }
        })
    };
    let about = match which {
        TaskModel::Induction => "Two attention-only layers of four heads, d_model 64, trained from a fixed seed on sequences of random words in which several segments, mostly 2 to 8 words long, reappear at random later offsets. Copied words count fully in the loss and fresh words at a tenth, so the model learns to copy early yet stays unsure where nothing repeats. The sharp drop in the curve is the induction circuit forming.",
        TaskModel::Ioi => "Three attention-only layers of four heads, d_model 64, trained from a fixed seed on sentences in which two people are introduced and one of them is named again; the next word should be the other one. Names, places, sentence templates, the order of the names and the number of leading clauses all vary, so the model cannot answer by position: it has to find the name that appears once. 9.3.1 patches it and 9.4 prunes it to a circuit.",
    };
    view! {
        <details class="panel">
            <summary>"How this model was trained"</summary>
            <p>{about}</p>
            <div class="chart" data-testid="training-curve">{curve}</div>
        </details>
    }
}

/// What the lab knows of an opened model: its name and shape, and where it came from.
#[component]
fn OwnPanel(own: Option<Arc<OwnModel>>) -> impl IntoView {
    own.map(|o| {
        let c = &o.model.cfg;
        let shape = format!(
            "{} layers of {} heads, d_model {}, a context of {} tokens and a vocabulary of {}.",
            c.n_layer,
            c.n_head,
            c.d_model(),
            c.n_positions,
            c.vocab_size
        );
        view! {
            <section class="panel" data-testid="own-model-panel">
                <h3>"About " {o.name.clone()}</h3>
                <p>"The model you opened in this tab: " {shape} " Its tokenizer splits the text, so a word may be several tokens, and the model's first token comes first. It stays in this tab until you close it, and a link to this lab names it without carrying it."</p>
                <p><a href="#/open">"Open another model"</a></p>
            </section>
        }
    })
}
