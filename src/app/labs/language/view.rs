//! The language-model lab's panels: the model switch, the text box, the logit-lens grid with the selected
//! cell's detail, and generation, on our models or on one opened in this tab (encoded by its tokenizer's
//! worker, read half a block per slice and decoded a slice of the vocabulary per step, with progress). The rules they follow live in `super` (plain, tested natively).
//! Bad input (empty, unknown characters or words) shows an inline message and keeps the last good grid.
use std::sync::Arc;

use leptos::prelude::*;

use super::{
    cell_outside, default_prompt, grid_markup, selection_after, show_char, text_for_url, to_view, InputError,
    LanguageState, LensJob, LensView, Sampling, Which, GENERATE, GENERATE_OWN, OWN_PROMPT,
};
use crate::app::core::browser::{now_ms, replace_hash_soon};
use crate::app::core::export::TableExport;
use crate::app::core::frame::{progress_bar, LabFrame, UrlNotes};
use crate::app::core::jobs::{Job, Jobs};
use crate::app::core::keys;
use crate::app::core::load::{load_char_model, load_model, LoadedChar, LoadedModel, Model};
use crate::app::core::models::own_not_open_showing;
use crate::app::core::opened::{opened, OwnInput, OwnModel, ReadText};
use crate::app::core::own_text::{show_piece, MAX_TOKENS};
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::gpt2::generate::{Generator, SampleSettings};
use crate::lens::gpt2::text::quoted_chars;
use crate::lens::methods::induction::random_repeat_text;
use crate::lens::methods::logit_lens::{resid_hooks, resid_label, LogitLens};
use crate::lens::{LensError, Transformer};

/// A generation: each character or token with its probability, the time taken and what a piece is called
/// ("characters", "tokens"); or why there is none.
type Generated = Result<(Vec<(String, f32)>, f64, &'static str), String>;

/// The opened model, if this tab has one: fixed for the life of the lab.
type Own = StoredValue<Option<Arc<OwnModel>>>;

/// The grid's state, shared by its panels.
#[derive(Clone, Copy)]
struct Grid {
    last_good: RwSignal<Option<Arc<LensView>>>,
    error: RwSignal<Option<InputError>>,
    selected: RwSignal<Option<(usize, usize)>>,
    /// Bumped on every new grid (the e2e tests wait on it), and the time the last one took.
    rev: RwSignal<u32>,
    last_ms: RwSignal<f64>,
}

#[component]
pub fn LanguageLab(query: Vec<(String, String)>) -> impl IntoView {
    let (url, problems) = LanguageState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    let own: Own = StoredValue::new(opened());
    // A link naming an opened model, in a tab that has none, says so and shows the Moby-Dick model.
    let first = match url.which {
        Which::Own if own.get_value().is_none() => {
            notes.add(own_not_open_showing("the Moby-Dick model"));
            Which::Moby
        }
        w => w,
    };
    // Each model loads only once it is shown (a lab opened on the student's own model reads no other).
    let which = RwSignal::new(first);
    let moby =
        Model::when_wanted("the Moby-Dick model", move || which.get() == Which::Moby, || load_char_model("moby"));
    let induction =
        Model::when_wanted("the induction model", move || which.get() == Which::Induction, || load_model("induction"));
    let moby_text = RwSignal::new(String::new());
    let ind_text = RwSignal::new(String::new());
    let own_text = RwSignal::new(url.prompt.clone().unwrap_or_else(|| OWN_PROMPT.to_string()));
    let grid = Grid {
        last_good: RwSignal::new(None),
        error: RwSignal::new(None),
        selected: RwSignal::new(None),
        rev: RwSignal::new(0),
        last_ms: RwSignal::new(0.0),
    };
    let text = move || match which.get() {
        Which::Moby => moby_text,
        Which::Induction => ind_text,
        Which::Own => own_text,
    };

    // Each box starts from the link's text once its model is there (the model says which characters it knows).
    let (from_url, words_from_url) = (url.text.clone(), url.words.clone());
    Effect::new(move |_| {
        let Some(m) = moby.get() else { return };
        if moby_text.get_untracked().is_empty() {
            moby_text.set(match &from_url {
                Some(t) if m.vocab.unknown_chars(t).is_empty() => t.clone(),
                Some(t) => {
                    notes.add(format!("The link's text has characters the model has never seen ({}), so the lab starts from its default text.", quoted_chars(&m.vocab.unknown_chars(t))));
                    default_prompt(&m.held_out)
                }
                None => default_prompt(&m.held_out),
            });
        }
    });
    Effect::new(move |_| {
        let Some(m) = induction.get() else { return };
        if ind_text.get_untracked().is_empty() {
            ind_text.set(words_from_url.clone().unwrap_or_else(|| random_repeat(&m, 2024)));
        }
    });

    let lens_jobs = run_lens(which, text, Sources { moby, induction, own }, grid, url.cell, notes);

    let sampling = RwSignal::new(url.sampling);
    // The URL follows every control.
    Effect::new(move |_| {
        let (moby_m, ind_m, own_m) = (moby.get().is_some(), induction.get().is_some(), own.get_value().is_some());
        let cell = grid.selected.get().filter(|c| grid.last_good.get().is_some_and(|v| v.default_cell() != *c));
        let state = LanguageState {
            which: which.get(),
            text: text_for_url(moby_text.get(), moby_m),
            words: text_for_url(ind_text.get(), ind_m),
            prompt: text_for_url(own_text.get(), own_m).filter(|t| t != OWN_PROMPT),
            cell,
            sampling: sampling.get(),
        };
        if moby_m || ind_m || which.get() == Which::Own {
            replace_hash_soon(&section_hash_with("9.2.2", &state.to_query()));
        }
    });

    let status = move || match which.get() {
        Which::Moby => moby.status().into_any(),
        Which::Induction => induction.status().into_any(),
        Which::Own => progress_bar(lens_jobs, "lens", || {}).into_any(),
    };
    let loaded = move || match which.get() {
        Which::Moby => moby.get().is_some(),
        Which::Induction => induction.get().is_some(),
        Which::Own => true,
    };
    let model_name = move || match which.get() {
        Which::Own => own.get_value().map(|o| o.name.clone()).unwrap_or_default(),
        w => w.key().to_string(),
    };

    view! {
        <LabFrame notes=notes model=Signal::derive(model_name)>
        <div class="language-lab" data-testid="language-lab" class:unloaded=move || !loaded()>
            <ModelSwitch which=which own=own />
            {status}
            <div class="lab-body">
                <TextPanel which=which text=Signal::derive(text) moby=moby induction=induction grid=grid />
                <section class="panel">
                    <h3>"Logit lens: the top guess read off each layer"</h3>
                    <p class="muted small">"Rows are layers of the residual stream, columns are positions. Each cell shows the most likely next token if the model stopped there; the brighter the colour (dark violet to yellow), the surer it is. Outlined cells match the true next token. Click a cell, or Tab into the grid, move with the arrow keys and press Enter."</p>
                    <LensGrid grid=grid />
                </section>
                <CellDetail grid=grid />
                <Show when=move || which.get() != Which::Induction>
                    <GeneratePanel which=which moby=moby own=own prompt=Signal::derive(text) sampling=sampling />
                </Show>
            </div>
        </div>
        </LabFrame>
    }
}

fn random_repeat(m: &LoadedModel, seed: u64) -> String {
    random_repeat_text(&m.vocab, m.model.cfg.n_positions, seed)
}

/// Runs a checked grid a block per slice; `None` when the job was stopped on the way.
async fn run_job(
    job: &Job,
    model: &Transformer,
    checked: Result<LensJob, InputError>,
    label: &dyn Fn(u32) -> String,
) -> Option<Result<LensView, InputError>> {
    let mut lens = match checked {
        Ok(l) => l,
        Err(e) => return Some(Err(e)),
    };
    match job.sliced("reading the layers", || lens.step(model)).await {
        Ok(true) => Some(lens.finish(model, label)),
        Ok(false) => None,
        Err(e) => Some(Err(e)),
    }
}

/// The grid of a text on an opened model: encoded by its tokenizer's worker, read half a block per slice, and
/// decoded a slice of the vocabulary per step (`OwnModel`). `None` when the job was stopped on the way.
async fn own_lens(own: &OwnModel, text: String, job: &Job) -> Option<Result<LensView, InputError>> {
    let model = &own.model;
    let n = model.cfg.n_layer + 1;
    let ReadText { input: OwnInput { ids, bos, .. }, cells, .. } = match own.read_text(text, &[], 0..n, job).await? {
        Ok(r) => r,
        Err(e) => return Some(Err((e, false))),
    };
    let note = bos.then(|| {
        let first = show_piece(&own.pieces[ids[0] as usize]);
        format!("Position 0 is the model's first token, {first}, put in front of your text as TransformerLens does; this page reads at most {MAX_TOKENS} tokens.")
    });
    let lens = LogitLens { tokens: ids, hooks: resid_hooks(model.cfg.n_layer), cells };
    Some(Ok(to_view(&lens, Which::Own, &|i| show_piece(&own.pieces[i as usize]), note)))
}

/// Where each model's grid comes from.
#[derive(Clone, Copy)]
struct Sources {
    moby: Model<LoadedChar>,
    induction: Model<LoadedModel>,
    own: Own,
}

/// Recomputes the grid on every edit or model switch; a bad input keeps the last good grid. The work runs as
/// a job in two tasks (the model, then the grid's redraw), each well under 50 ms, after the keystroke's own
/// task; a newer keystroke drops an older run. The link's cell is selected on the first grid if it fits.
/// Returns the jobs, whose progress an opened model's grid shows (GPT-2 small: about a second).
fn run_lens(
    which: RwSignal<Which>,
    text: impl Fn() -> RwSignal<String> + Send + Sync + Copy + 'static,
    sources: Sources,
    grid: Grid,
    asked_cell: Option<(usize, usize)>,
    notes: UrlNotes,
) -> Jobs {
    let lens_jobs = Jobs::new();
    let asked = StoredValue::new(asked_cell);
    Effect::new(move |_| {
        let (w, t) = (which.get(), text().get());
        // Only the model shown is tracked: the Moby-Dick model arriving must not read an opened model again.
        let (moby_m, ind_m) = match w {
            Which::Moby => (sources.moby.get(), None),
            Which::Induction => (None, sources.induction.get()),
            Which::Own => (None, None),
        };
        let own = sources.own.get_value();
        lens_jobs.spawn("reading the layers", move |job| async move {
            if !job.pause("reading the layers", 0.0).await {
                return;
            }
            let t0 = now_ms();
            let r = match (w, moby_m, ind_m, own) {
                (Which::Moby, Some(m), _, _) => {
                    let label = |i: u32| show_char(m.vocab.char(i));
                    run_job(&job, &m.model, LensJob::moby(&m.model, &m.vocab, &t), &label).await
                }
                (Which::Induction, _, Some(m), _) => {
                    let label = |i: u32| m.vocab.word(i).to_string();
                    run_job(&job, &m.model, LensJob::induction(&m.model, &m.vocab, &t), &label).await
                }
                (Which::Own, _, _, Some(o)) => own_lens(&o, t, &job).await,
                _ => return,
            };
            let Some(r) = r else { return };
            let ms = now_ms() - t0;
            if !job.pause("drawing the grid", 0.5).await {
                return;
            }
            match r {
                Ok(v) => {
                    let cell = match asked.get_value() {
                        Some(c) if v.contains(c) => c,
                        Some(c) => {
                            notes.add(cell_outside(c, &v));
                            v.default_cell()
                        }
                        None => selection_after(
                            grid.last_good.get_untracked().as_deref(),
                            &v,
                            grid.selected.get_untracked(),
                        ),
                    };
                    asked.set_value(None);
                    grid.selected.set(Some(cell));
                    grid.last_good.set(Some(Arc::new(v)));
                    grid.error.set(None);
                    grid.rev.update(|r| *r += 1);
                }
                Err(e) => grid.error.set(Some(e)),
            }
            grid.last_ms.set(ms);
        });
    });
    lens_jobs
}

#[component]
fn ModelSwitch(which: RwSignal<Which>, own: Own) -> impl IntoView {
    let radio = move |w: Which, label: String| {
        view! {
            <label><input type="radio" name="lens-model" data-testid=format!("model-{}", w.key())
                prop:checked=move || which.get() == w on:change=move |_| which.set(w) />{label}</label>
        }
    };
    // The opened model is offered beside ours only in the tab that opened it.
    let own_radio =
        own.get_value().map(|o| radio(Which::Own, format!(" Your model: {} ({} layers)", o.name, o.model.cfg.n_layer)));
    view! {
        <div class="model-switch" role="radiogroup" aria-label="Model">
            {radio(Which::Moby, " Moby-Dick (characters, 4 layers)".into())}
            {radio(Which::Induction, " Induction model (words, 2 layers)".into())}
            {own_radio}
        </div>
    }
}

/// The text box with its actions, its inline error and the grid's note.
#[component]
fn TextPanel(
    which: RwSignal<Which>,
    text: Signal<RwSignal<String>>,
    moby: Model<LoadedChar>,
    induction: Model<LoadedModel>,
    grid: Grid,
) -> impl IntoView {
    let random_seed = StoredValue::new(now_ms() as u64 | 1);
    let on_replace = move |_| {
        if let Some(m) = moby.get_untracked() {
            text.get_untracked().update(|t| *t = m.vocab.replace_unknown(t, Some(' ')));
        }
    };
    let on_random = move |_| {
        if let Some(m) = induction.get_untracked() {
            random_seed.update_value(|s| *s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
            text.get_untracked().set(random_repeat(&m, random_seed.get_value()));
        }
    };
    let label = move || match which.get() {
        Which::Moby => "Text (up to 128 characters are read)".to_string(),
        Which::Induction => "Words (a repeated random sequence shows induction)".to_string(),
        Which::Own => {
            format!("Text (any text: the model's own tokenizer splits it; up to {MAX_TOKENS} tokens are read)")
        }
    };
    view! {
        <section class="panel">
            <label class="input-label" for="lens-input">{label}</label>
            <textarea id="lens-input" data-testid="lens-text" rows="3" spellcheck="false"
                aria-invalid=move || grid.error.get().is_some().to_string()
                prop:value=move || text.get().get()
                on:input=move |ev| text.get_untracked().set(event_target_value(&ev))></textarea>
            <div class="input-actions">
                {move || (which.get() == Which::Induction).then(|| view! { <button data-testid="random-btn" class="primary" on:click=on_random>"Random repeat"</button> })}
                <span class="muted" data-testid="lab-status" role="status" data-rev=move || grid.rev.get() data-ms=move || format!("{:.2}", grid.last_ms.get())>
                    {move || format!("grid computed in {:.0} ms", grid.last_ms.get())}
                </span>
            </div>
            {move || grid.error.get().map(|(e, replace)| view! {
                <p class="input-error" data-testid="input-error" role="status">{e}
                    {replace.then(|| view! { " " <button data-testid="replace-btn" on:click=on_replace>"Replace them"</button> })}
                </p>
            })}
            {move || grid.last_good.get().and_then(|v| v.note.clone()).map(|n| view! { <p class="muted small" data-testid="input-note">{n}</p> })}
        </section>
    }
}

/// The layer × position grid. Its rows are markup (`grid_markup`), with one click handler on the table and one
/// Effect that moves the `selected` class, instead of a handler and a reactive class on each of up to 5 × 128
/// cells: a redraw is one call into the page.
#[component]
fn LensGrid(grid: Grid) -> impl IntoView {
    let table = NodeRef::<leptos::html::Table>::new();
    // The DOM side of the selection: the class follows `selected` and every redraw of the grid.
    Effect::new(move |_| {
        let (Some(t), sel) = (table.get(), grid.selected.get()) else { return };
        grid.last_good.track();
        // At most one cell carries the class.
        if let Ok(Some(e)) = t.query_selector("td.selected") {
            let _ = e.class_list().remove_1("selected");
        }
        if let Some((l, p)) = sel {
            if let Ok(Some(e)) = t.query_selector(&format!("td[data-layer=\"{l}\"][data-pos=\"{p}\"]")) {
                let _ = e.class_list().add_1("selected");
            }
        }
    });
    let on_click = move |ev: leptos::ev::MouseEvent| {
        use wasm_bindgen::JsCast;
        let cell = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest("td[data-layer]").ok().flatten());
        let num = |e: &web_sys::Element, k: &str| e.get_attribute(k).and_then(|v| v.parse::<usize>().ok());
        if let Some((l, p)) = cell.and_then(|e| num(&e, "data-layer").zip(num(&e, "data-pos"))) {
            grid.selected.set(Some((l, p)));
        }
    };
    // Keyboard: one tab stop in the grid (WAI-ARIA's data grid); the arrows, Home and End move the focus from
    // cell to cell, Enter or Space picks the focused cell, as a click does.
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        use wasm_bindgen::JsCast;
        let Some(cell) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlElement>().ok()) else { return };
        let num = |k: &str| cell.get_attribute(k).and_then(|v| v.parse::<usize>().ok());
        let (Some(l), Some(p), Some(v)) = (num("data-layer"), num("data-pos"), grid.last_good.get_untracked()) else {
            return;
        };
        let key = ev.key();
        if keys::activates(&key) {
            ev.prevent_default();
            grid.selected.set(Some((l, p)));
            return;
        }
        // Rows run from the top layer down, so the grid's row of layer l is n_layers - 1 - l.
        let top = v.n_layers().saturating_sub(1);
        let Some((row, col)) = keys::grid_move(&key, ev.ctrl_key(), (top - l, p), (v.n_layers(), v.n_pos())) else {
            return;
        };
        ev.prevent_default();
        let next = table
            .get_untracked()
            .and_then(|t| {
                t.query_selector(&format!("td[data-layer=\"{}\"][data-pos=\"{col}\"]", top - row)).ok().flatten()
            })
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
        if let Some(next) = next {
            cell.set_tab_index(-1);
            next.set_tab_index(0);
            let _ = next.focus();
        }
    };
    let rows = move || {
        let v = grid.last_good.get()?;
        // The tab stop starts on the selected cell, else the output layer's first position.
        let stop =
            grid.selected.get_untracked().filter(|c| v.contains(*c)).unwrap_or((v.n_layers().saturating_sub(1), 0));
        Some(grid_markup(&v, stop))
    };
    let shape = move |f: fn(&LensView) -> usize| grid.last_good.get().map(|v| f(&v).to_string());
    let which = move || grid.last_good.get().map(|v| v.which.key());
    view! {
        <Show when=move || grid.last_good.with(Option::is_some)>
            <div class="lens-scroll">
                <table class="lens-grid" data-testid="lens-grid" node_ref=table on:click=on_click on:keydown=on_key
                    aria-label="logit lens: the top guess at each layer (rows) and position (columns); arrow keys move, Enter picks a cell"
                    data-layers=move || shape(LensView::n_layers) data-positions=move || shape(LensView::n_pos) data-which=which
                    inner_html=rows>
                </table>
                <TableExport image=true what="logit lens grid" />
            </div>
        </Show>
    }
}

/// The selected cell: its top 5 and the true next token's probability at every layer.
#[component]
fn CellDetail(grid: Grid) -> impl IntoView {
    let bar = |label: String, q: f32, value: String| {
        view! {
            <span class="prob-label lens-mono">{label}</span>
            <span class="prob-bar"><span style=format!("width: {:.1}%", 100.0 * q)></span></span>
            <span class="prob-value">{value}</span>
        }
    };
    move || {
        let v = grid.last_good.get()?;
        let (l, p) = grid.selected.get().filter(|c| v.contains(*c))?;
        let top = v.cells[l][p]
            .top
            .iter()
            .map(|(s, q)| view! { <div class="prob-row" data-testid="top5-item" data-token=s.clone() data-p=format!("{q:.4}")>{bar(s.clone(), *q, format!("{:.1}%", 100.0 * q))}</div> })
            .collect_view();
        let across = match v.next[p].clone() {
            Some(t) => {
                let bars = (0..v.n_layers())
                    .map(|layer| {
                        let c = &v.cells[layer][p];
                        let q = c.target_prob.unwrap_or(0.0);
                        let rank = c.target_rank.map(|r| format!(" (rank {})", r + 1)).unwrap_or_default();
                        view! {
                            <div class="prob-row" class:best=layer == l data-testid="target-prob" data-layer=layer data-p=format!("{q:.4}")>
                                {bar(resid_label(layer), q, format!("{:.1}%{rank}", 100.0 * q))}
                            </div>
                        }
                    })
                    .collect_view();
                view! { <div><h4>{format!("Probability of the true next token “{t}”, layer by layer")}</h4>{bars}</div> }.into_any()
            }
            None => view! { <div><p class="muted">"This is the last position: there is no true next token to score."</p></div> }.into_any(),
        };
        Some(view! {
            <section class="panel lens-detail" data-testid="lens-detail">
                <h3>{format!("{} · position {p} (input “{}”)", resid_label(l), v.inputs[p])}</h3>
                <div class="lens-detail-cols">
                    <div data-testid="top5"><h4>"Top 5 guesses read at this layer"</h4>{top}</div>
                    {across}
                </div>
            </section>
        })
    }
}

/// The tokens a generation made, labelled, with the time since `t0`: what the panel shows once `sliced` ends
/// (`None` if it was stopped).
fn made(
    r: Result<bool, LensError>,
    gen: &Generator,
    label: impl Fn(u32) -> String,
    t0: f64,
    unit: &'static str,
) -> Option<Generated> {
    match r {
        Ok(true) => {
            let pieces = gen.out.tokens.iter().zip(&gen.out.probs).map(|(&i, &p)| (label(i), p)).collect();
            Some(Ok((pieces, now_ms() - t0, unit)))
        }
        Ok(false) => None,
        Err(e) => Some(Err(e.to_string())),
    }
}

/// Runs `gen` to `n` new tokens, a piece per slice (a token, or a block of a prefill; on a big model half a
/// block or a slice of the vocabulary), so the page stays responsive.
async fn run_generator(job: &Job, model: &Transformer, gen: &mut Generator, n: usize) -> Result<bool, LensError> {
    job.sliced("generating", || {
        gen.advance(model)?;
        let made = gen.out.tokens.len();
        Ok::<_, LensError>((made < n).then_some(made as f32 / n as f32))
    })
    .await
}

/// Generation on the Moby-Dick model (200 characters) or on an opened model (`GENERATE_OWN` tokens of its
/// tokenizer, the prompt encoded in its worker), with progress and Cancel.
#[component]
fn GeneratePanel(
    which: RwSignal<Which>,
    moby: Model<LoadedChar>,
    own: Own,
    prompt: Signal<RwSignal<String>>,
    sampling: RwSignal<Sampling>,
) -> impl IntoView {
    let gen_jobs = Jobs::new();
    let generated: RwSignal<Option<Generated>> = RwSignal::new(None);
    // A generation belongs to the model that made it.
    Effect::new(move |_| {
        which.track();
        generated.set(None);
    });
    let on_generate = move |_| {
        let t = prompt.get_untracked().get_untracked();
        let s = sampling.get_untracked();
        let s = SampleSettings { temperature: s.temperature, top_k: s.top_k, seed: s.seed };
        match (which.get_untracked(), moby.get_untracked(), own.get_value()) {
            (Which::Moby, Some(m), _) => gen_jobs.spawn("generating", move |job| async move {
                let t0 = now_ms();
                let start = || -> Result<Generator, String> {
                    if t.is_empty() {
                        return Err("Type a prompt first: generation continues your text.".to_string());
                    }
                    let ids = m.vocab.encode(&t).map_err(|e| format!("The prompt cannot be read: {e}"))?;
                    Generator::new(&m.model, &ids, &s, &[]).map_err(|e| e.to_string())
                };
                let mut gen = match start() {
                    Ok(g) => g,
                    Err(e) => return generated.set(Some(Err(e))),
                };
                let r = run_generator(&job, &m.model, &mut gen, GENERATE).await;
                if let Some(g) = made(r, &gen, |i| m.vocab.char(i).to_string(), t0, "characters") {
                    generated.set(Some(g));
                }
            }),
            (Which::Own, _, Some(o)) => gen_jobs.spawn("encoding the prompt", move |job| async move {
                let t0 = now_ms();
                let ids = match o.encode(t, &job, "encoding the prompt").await {
                    None => return,
                    Some(Ok(input)) => input.ids,
                    Some(Err(e)) => return generated.set(Some(Err(e))),
                };
                let mut gen = match Generator::new(&o.model, &ids, &s, &[]) {
                    Ok(g) => g,
                    Err(e) => return generated.set(Some(Err(e.to_string()))),
                };
                let r = run_generator(&job, &o.model, &mut gen, GENERATE_OWN).await;
                if let Some(g) = made(r, &gen, |i| o.pieces[i as usize].clone(), t0, "tokens") {
                    generated.set(Some(g));
                }
            }),
            _ => {}
        }
    };
    let set = move |f: fn(&mut Sampling, &str)| {
        move |ev: leptos::ev::Event| sampling.update(|s| f(s, &event_target_value(&ev)))
    };
    let own_vocab = move || own.get_value().map(|o| o.model.cfg.vocab_size);
    let top_k_max = move || match which.get() {
        Which::Own => own_vocab().unwrap_or(83).to_string(),
        _ => "83".to_string(),
    };
    let button = move || match (gen_jobs.busy(), which.get()) {
        (true, _) => "Generating…".to_string(),
        (false, Which::Own) => format!("Generate {GENERATE_OWN} tokens"),
        (false, _) => format!("Generate {GENERATE} characters"),
    };
    view! {
        <section class="panel" data-testid="gen-panel">
            <h3>"Generate"</h3>
            <div class="gen-controls">
                <label>"temperature " <input type="range" min="0" max="2" step="0.1" data-testid="gen-temperature"
                    prop:value=move || sampling.get().temperature.to_string()
                    on:input=set(|s, v| s.temperature = v.parse().unwrap_or(0.8)) />
                    {move || format!(" {:.1}", sampling.get().temperature)}</label>
                <label>"top-k " <input type="number" min="0" max=top_k_max data-testid="gen-topk" class="num-input"
                    prop:value=move || sampling.get().top_k.to_string()
                    on:change=set(|s, v| s.top_k = v.parse().unwrap_or(0)) /></label>
                <label>"seed " <input type="number" min="0" data-testid="gen-seed" class="num-input"
                    prop:value=move || sampling.get().seed.to_string()
                    on:change=set(|s, v| s.seed = v.parse().unwrap_or(1)) /></label>
                <button class="primary" data-testid="gen-btn" on:click=on_generate disabled=move || gen_jobs.busy()>
                    {button}</button>
            </div>
            {progress_bar(gen_jobs, "gen", || {})}
            <p class="muted small">"Temperature 0 always takes the most likely token; top-k 0 means no limit. The same seed gives the same text."</p>
            {move || generated.get().map(generated_view)}
        </section>
    }
}

fn generated_view(g: Generated) -> AnyView {
    match g {
        Err(e) => view! { <p class="input-error" data-testid="gen-error" role="status">{e}</p> }.into_any(),
        Ok((pieces, ms, unit)) => {
            let n = pieces.len();
            let spans = pieces
                .into_iter()
                .map(|(c, p)| {
                    let title = format!("{} · the model gave it {:.1}%", show_piece(&c), 100.0 * p);
                    view! { <span class="gen-char" class:low=p < 0.1 data-testid="gen-char" data-p=format!("{p:.4}") title=title>{c}</span> }
                })
                .collect_view();
            view! {
                <div>
                    <p class="gen-text" data-testid="gen-text">{spans}</p>
                    <p class="muted small" data-testid="gen-status">{format!("{n} {unit} in {ms:.0} ms. Hover one for its probability; underlined ones had less than 10%.")}</p>
                </div>
            }
            .into_any()
        }
    }
}
