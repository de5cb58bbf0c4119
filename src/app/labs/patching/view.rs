//! The patching lab's panels: the prompts (model, clean prompt, corruption, answer and wrong token), what to
//! patch (target, direction, metric, attribution), and the result (heatmaps, the cell under the pointer,
//! attribution against real patching, CSV). The rules live in `super` and `super::heat` (plain, tested natively).
//!
//! Every change of an input or a setting reruns at once through the job runner: the clean and corrupted runs,
//! then one patched run per cell in slices of about 16 ms. Results are kept per target and direction for the
//! current prompts, so switching back, or switching the metric, costs no model run. Bad input shows its
//! message and the last result stays.
use std::collections::HashMap;
use std::sync::Arc;

use leptos::prelude::*;

use super::heat::{layout, Heat, Scale};
use super::heatmap::{Heatmap, HeatmapData};
use super::own::OwnPatching;
use super::{
    cell_outside, cell_place, check_gap, corruptions, csv_name, csv_table, default_corruption, direction_label,
    direction_option, disagreements, fmt_value, legend_note, metric_label, metric_option, patch_sentence, prepare,
    repeated_sequence, target_label, target_option, Corruption, InputProblem, PatchState, Prepared, Typed, IOI_PROMPT,
    METRICS, TARGETS,
};
use crate::app::core::browser::{now_ms, replace_hash_soon};
use crate::app::core::export::{download_table, ExportContext, TableExport};
use crate::app::core::format::sentence;
use crate::app::core::frame::{progress_bar, LabFrame, UrlNotes};
use crate::app::core::jobs::{Job, Jobs};
use crate::app::core::load::{LoadedModel, Model, TaskModels};
use crate::app::core::models::{own_not_open, TaskModel};
use crate::app::core::opened::{opened, OwnModel};
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::methods::patching::{
    correlation, AttributionPatching, Baseline, Direction, Metric, PatchGrid, PatchInput, PatchResult, PatchSweep,
    Target,
};
use crate::lens::LensError;

/// Attribution patching's estimate of the same grid.
#[derive(Clone, Debug, PartialEq)]
struct Estimate {
    grid: PatchGrid,
    /// Pearson's correlation with real patching (None when either grid is constant).
    corr: Option<f32>,
    ms: f64,
}

/// A finished run, as shown.
#[derive(Clone, Debug, PartialEq)]
struct Outcome {
    prepared: Arc<Prepared>,
    direction: Direction,
    real: PatchGrid,
    estimate: Option<Estimate>,
    baseline: Baseline,
    /// The sweep's time when it ran (a result from the cache keeps its first time).
    sweep_ms: f64,
}

/// What the runs leave for the current prompts, so that a setting switched back reruns nothing.
#[derive(Default)]
struct Cache {
    input: Option<PatchInput>,
    sweeps: HashMap<(Target, Direction), (PatchResult, f64)>,
    estimates: HashMap<(Direction, Metric), Arc<AttributionPatching>>,
}

/// Why nothing new is shown: a message, both tokenizations when their lengths differ, and whether switching
/// the metric would help (the normalised logit difference is undefined).
#[derive(Clone, Debug, PartialEq)]
struct Problem {
    input: InputProblem,
    offer_metrics: bool,
}

/// What the panels share.
#[derive(Clone, Copy)]
struct Lab {
    which: RwSignal<TaskModel>,
    ioi_clean: RwSignal<String>,
    ind_clean: RwSignal<String>,
    /// Whether the induction box has been filled once its model came (its default needs the vocabulary).
    ind_filled: RwSignal<bool>,
    corruption: RwSignal<Corruption>,
    corrupted: RwSignal<String>,
    answer: RwSignal<String>,
    wrong: RwSignal<String>,
    seed: RwSignal<u64>,
    target: RwSignal<Target>,
    direction: RwSignal<Direction>,
    metric: RwSignal<Metric>,
    attribution: RwSignal<bool>,
    pinned: RwSignal<Option<Vec<usize>>>,
    hover: RwSignal<Option<Vec<usize>>>,
    shown: RwSignal<Option<Arc<Outcome>>>,
    problem: RwSignal<Option<Problem>>,
    rev: RwSignal<u32>,
}

impl Lab {
    fn choice(self) -> Choice {
        Choice {
            target: self.target,
            direction: self.direction,
            metric: self.metric,
            pinned: self.pinned,
            attribution: Some(self.attribution),
        }
    }

    /// The clean box of the model shown (tracking the model switch).
    fn clean(self) -> RwSignal<String> {
        self.clean_of(self.which.get())
    }

    fn clean_of(self, w: TaskModel) -> RwSignal<String> {
        if w == TaskModel::Ioi {
            self.ioi_clean
        } else {
            self.ind_clean
        }
    }
}

/// The model's default clean prompt: the chapter's sentence, or a repeated random sequence from `seed`.
fn default_clean(which: TaskModel, m: &LoadedModel, seed: u64) -> String {
    match which {
        TaskModel::Ioi => IOI_PROMPT.to_string(),
        TaskModel::Induction => {
            m.vocab.decode(&repeated_sequence(m.model.cfg.vocab_size, m.model.cfg.n_positions, seed))
        }
    }
}

/// The lab on one of our task models, or on the model opened in this tab (`super::own`), switched by the
/// model radios; a link naming an opened model in a tab that has none says so and shows the IOI model.
#[component]
pub fn PatchingLab(query: Vec<(String, String)>) -> impl IntoView {
    let (url, problems) = PatchState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    let own = opened();
    if url.own && own.is_none() {
        notes.add(own_not_open(url.which));
    }
    let own_mode = RwSignal::new(url.own && own.is_some());
    let url = StoredValue::new(url);
    let own = StoredValue::new(own);
    let frame_model = RwSignal::new(String::new());
    let to_task = move |w: TaskModel| {
        url.update_value(|u| *u = PatchState { which: w, ..PatchState::default() });
        own_mode.set(false);
    };
    let to_own = move || {
        url.update_value(|u| *u = PatchState { own: true, ..PatchState::default() });
        own_mode.set(true);
    };
    view! {
        <LabFrame notes=notes model=frame_model>
            {move || match (own_mode.get(), own.get_value()) {
                (true, Some(o)) => {
                    frame_model.set(o.name.clone());
                    view! {
                        <div class="patch-lab" data-testid="patch-lab">
                            <Models own=Some(o.clone()) shown=None to_task=to_task to_own=to_own />
                            <OwnPatching own=o url=url.get_value() />
                        </div>
                    }.into_any()
                }
                _ => view! { <TaskPatching url=url.get_value() notes=notes frame_model=frame_model own=own.get_value() to_own=to_own /> }.into_any(),
            }}
        </LabFrame>
    }
}

/// The model radios: our two task models, and the opened one in the tab that opened it. `shown` is the task
/// model shown (`None`: the opened one).
#[component]
fn Models(
    own: Option<Arc<OwnModel>>,
    shown: Option<RwSignal<TaskModel>>,
    to_task: impl Fn(TaskModel) + Copy + Send + Sync + 'static,
    to_own: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let is = move |w: Option<TaskModel>| shown.map(|s| s.get()) == w;
    let own_radio = own.map(|o| {
        let label = format!(" Your model: {} ({} layers)", o.name, o.model.cfg.n_layer);
        view! { <label><input type="radio" name="patch-model" data-testid="model-own" prop:checked=move || is(None)
        on:change=move |_| to_own() />{label}</label> }
    });
    view! {
        <div class="model-switch" role="radiogroup" aria-label="Model">
            <label><input type="radio" name="patch-model" data-testid="model-ioi" prop:checked=move || is(Some(TaskModel::Ioi))
                on:change=move |_| to_task(TaskModel::Ioi) />" IOI model (3 layers)"</label>
            <label><input type="radio" name="patch-model" data-testid="model-induction" prop:checked=move || is(Some(TaskModel::Induction))
                on:change=move |_| to_task(TaskModel::Induction) />" Induction model (2 layers)"</label>
            {own_radio}
        </div>
    }
}

#[component]
fn TaskPatching(
    url: PatchState,
    notes: UrlNotes,
    frame_model: RwSignal<String>,
    own: Option<Arc<OwnModel>>,
    to_own: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let which = RwSignal::new(url.which);
    let models = TaskModels::new(which);
    let (ioi, induction) = (models.of(TaskModel::Ioi), models.of(TaskModel::Induction));
    let lab = Lab {
        which,
        ioi_clean: RwSignal::new(
            url.clean.clone().filter(|_| url.which == TaskModel::Ioi).unwrap_or_else(|| IOI_PROMPT.into()),
        ),
        ind_clean: RwSignal::new(String::new()),
        ind_filled: RwSignal::new(false),
        corruption: RwSignal::new(url.corruption),
        corrupted: RwSignal::new(url.corrupted.clone().unwrap_or_default()),
        answer: RwSignal::new(url.answer.clone().unwrap_or_default()),
        wrong: RwSignal::new(url.wrong.clone().unwrap_or_default()),
        seed: RwSignal::new(url.seed),
        target: RwSignal::new(url.target),
        direction: RwSignal::new(url.direction),
        metric: RwSignal::new(url.metric),
        attribution: RwSignal::new(url.attribution),
        pinned: RwSignal::new(None),
        hover: RwSignal::new(None),
        shown: RwSignal::new(None),
        problem: RwSignal::new(None),
        rev: RwSignal::new(0),
    };
    let model = move |w: TaskModel| if w == TaskModel::Ioi { ioi.get() } else { induction.get() };

    // The induction box starts from the link's sequence or a repeated random one once its model is there (the
    // default needs its vocabulary); the IOI box starts from the link's prompt or the chapter's sentence.
    let from_url = url.clean.clone().filter(|_| url.which == TaskModel::Induction);
    Effect::new(move |_| {
        let Some(m) = induction.get() else { return };
        if !lab.ind_filled.get_untracked() {
            lab.ind_clean.set(
                from_url.clone().unwrap_or_else(|| default_clean(TaskModel::Induction, &m, lab.seed.get_untracked())),
            );
            lab.ind_filled.set(true);
        }
    });

    let prepared = Memo::new(move |_| {
        let w = lab.which.get();
        let m = model(w)?;
        if w == TaskModel::Induction && !lab.ind_filled.get() {
            return None;
        }
        let clean = lab.clean().get();
        let (corrupted, answer, wrong) = (lab.corrupted.get(), lab.answer.get(), lab.wrong.get());
        let t = Typed {
            which: w,
            clean: &clean,
            corruption: lab.corruption.get(),
            corrupted: &corrupted,
            answer: &answer,
            wrong: &wrong,
            seed: lab.seed.get(),
        };
        Some(prepare(&m.model, &m.vocab, &t).map(Arc::new))
    });

    let jobs = Jobs::new();
    let cache = StoredValue::new_local(Cache::default());
    let asked_cell = StoredValue::new(url.cell.clone());
    Effect::new(move |_| {
        let p = prepared.get();
        let req = Request {
            target: lab.target.get(),
            direction: lab.direction.get(),
            metric: lab.metric.get(),
            attribution: lab.attribution.get(),
        };
        let Some(m) = model(lab.which.get_untracked()) else { return };
        match p {
            None => {}
            Some(Err(e)) => {
                jobs.cancel();
                lab.problem.set(Some(Problem { input: e, offer_metrics: false }));
            }
            Some(Ok(p)) => {
                lab.problem.set(None);
                jobs.spawn("patching", move |job| run(job, m, p, req, lab, cache, asked_cell, notes));
            }
        }
    });

    write_url(lab, ioi, induction, prepared);

    let cancel = move || {
        lab.problem.set(Some(Problem {
            input: "Cancelled. The last result stays on screen.".to_string().into(),
            offer_metrics: false,
        }))
    };
    let status =
        move || if which.get() == TaskModel::Ioi { ioi.status().into_any() } else { induction.status().into_any() };
    let loaded = move || model(which.get()).is_some();
    Effect::new(move |_| frame_model.set(which.get().folder().to_string()));
    view! {
        <div class="patch-lab" data-testid="patch-lab" class:unloaded=move || !loaded()>
            <ModelSwitch lab=lab own=own to_own=to_own />
            {status}
            <div class="lab-body">
                <PromptPanel lab=lab prepared=prepared model=Signal::derive(move || model(which.get())) />
                <SettingsPanel lab=lab.choice() attn_only=Signal::derive(move || model(which.get()).is_some_and(|m| m.model.cfg.attn_only)) />
                {progress_bar(jobs, "patch", cancel)}
                <ProblemView lab=lab />
                <ResultPanel lab=lab />
            </div>
        </div>
    }
}

/// The settings a run reads besides the prompts.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Request {
    target: Target,
    direction: Direction,
    metric: Metric,
    attribution: bool,
}

/// The URL follows every control once a model is there. A prompt equal to the model's default is left out.
fn write_url(
    lab: Lab,
    ioi: Model<LoadedModel>,
    induction: Model<LoadedModel>,
    prepared: Memo<Option<Result<Arc<Prepared>, InputProblem>>>,
) {
    Effect::new(move |_| {
        let w = lab.which.get();
        let Some(m) = (if w == TaskModel::Ioi { ioi.get() } else { induction.get() }) else { return };
        prepared.track();
        let (clean, seed) = (lab.clean().get(), lab.seed.get());
        let some = |s: String| (!s.trim().is_empty()).then_some(s);
        let corruption = lab.corruption.get();
        let state = PatchState {
            which: w,
            own: false,
            clean: (clean != default_clean(w, &m, seed)).then_some(clean).and_then(some),
            corruption,
            corrupted: some(lab.corrupted.get()).filter(|_| corruption == Corruption::Typed),
            answer: some(lab.answer.get()),
            wrong: some(lab.wrong.get()),
            seed,
            target: lab.target.get(),
            direction: lab.direction.get(),
            metric: lab.metric.get(),
            cell: lab.pinned.get(),
            attribution: lab.attribution.get(),
        };
        replace_hash_soon(&section_hash_with("9.3.1", &state.to_query()));
    });
}

/// One run: the sweep (or the cache's), the metric, and attribution patching if asked; then the result.
#[allow(clippy::too_many_arguments)]
async fn run(
    job: Job,
    m: Arc<LoadedModel>,
    p: Arc<Prepared>,
    req: Request,
    lab: Lab,
    cache: StoredValue<Cache, LocalStorage>,
    asked_cell: StoredValue<Option<Vec<usize>>>,
    notes: UrlNotes,
) {
    // The keystroke's or click's own task ends first.
    if !job.pause("patching", 0.0).await {
        return;
    }
    let fail = |e: LensError, offer_metrics: bool| {
        lab.problem.set(Some(Problem {
            input: format!("{} The last result stays on screen.", sentence(&e.to_string())).into(),
            offer_metrics,
        }))
    };
    cache.update_value(|c| {
        if c.input.as_ref() != Some(&p.input) {
            *c = Cache { input: Some(p.input.clone()), ..Cache::default() };
        }
    });
    let key = (req.target, req.direction);
    let (result, sweep_ms) = match cache.with_value(|c| c.sweeps.get(&key).cloned()) {
        Some(r) => r,
        None => match sweep(&job, &m, &p, req).await {
            Ok(Some(r)) => {
                cache.update_value(|c| drop(c.sweeps.insert(key, r.clone())));
                r
            }
            Ok(None) => return,
            Err((e, offer)) => return fail(e, offer),
        },
    };
    // A result from the cache meets the same rule as a new sweep.
    let b = result.baseline;
    if req.metric == Metric::LogitDiff {
        if let Err(e) = check_gap(b.clean.logit_diff, b.corrupted.logit_diff, &p.answer, &p.wrong) {
            return fail(LensError::Input(e), true);
        }
    }
    let real = match result.grid(req.metric) {
        Ok(g) => g,
        Err(e) => return fail(e, true),
    };
    let estimate = if req.attribution {
        if !job.pause("attribution patching", 1.0).await {
            return;
        }
        match estimate(&m, &p.input, req, &real, cache) {
            Ok(e) => Some(e),
            Err(e) => return fail(e, req.metric == Metric::LogitDiff),
        }
    } else {
        None
    };
    // Drawing the heatmaps gets a task of its own, apart from the last slice or the attribution pass.
    if !job.pause("drawing", 1.0).await {
        return;
    }
    // The link's cell is selected on the first result if it lies in the grid.
    if let Some(c) = asked_cell.get_value() {
        asked_cell.set_value(None);
        if real.get(&c).is_some() {
            lab.pinned.set(Some(c));
        } else {
            notes.add(cell_outside(&c, &real.dims));
        }
    }
    if lab.pinned.get_untracked().is_some_and(|c| real.get(&c).is_none()) {
        lab.pinned.set(None);
    }
    let outcome =
        Outcome { prepared: p, direction: req.direction, real, estimate, baseline: result.baseline, sweep_ms };
    lab.shown.set(Some(Arc::new(outcome)));
    lab.rev.update(|r| *r += 1);
}

/// The sweep of one target in slices; `Ok(None)` when the job was stopped. An error says whether switching the
/// metric would help (the corruption does not change the logit difference).
async fn sweep(
    job: &Job,
    m: &LoadedModel,
    p: &Prepared,
    req: Request,
) -> Result<Option<(PatchResult, f64)>, (LensError, bool)> {
    let t0 = now_ms();
    let (answer, wrong) = (&p.answer, &p.wrong);
    let mut sweep = PatchSweep::new(&m.model, &p.input, req.target, req.direction).map_err(|e| (e, false))?;
    let b = *sweep.baseline();
    if req.metric == Metric::LogitDiff {
        check_gap(b.clean.logit_diff, b.corrupted.logit_diff, answer, wrong)
            .map_err(|e| (LensError::Input(e), true))?;
    }
    // The clean and corrupted runs took a task of their own.
    if !job.pause("patching", 0.0).await {
        return Ok(None);
    }
    let run = job.sliced("patching", || {
        let done = sweep.step(&m.model, 1)?;
        Ok::<_, LensError>((!done).then(|| sweep.progress()))
    });
    match run.await.map_err(|e| (e, false))? {
        true => Ok(Some((sweep.finish().map_err(|e| (e, false))?, now_ms() - t0))),
        false => Ok(None),
    }
}

/// Attribution patching of the same grid (one forward and one backward pass, kept per direction and metric).
fn estimate(
    m: &LoadedModel,
    input: &PatchInput,
    req: Request,
    real: &PatchGrid,
    cache: StoredValue<Cache, LocalStorage>,
) -> Result<Estimate, LensError> {
    let t0 = now_ms();
    let key = (req.direction, req.metric);
    let ap = match cache.with_value(|c| c.estimates.get(&key).cloned()) {
        Some(ap) => ap,
        None => {
            let ap = Arc::new(AttributionPatching::new(&m.model, input, req.direction, req.metric)?);
            cache.update_value(|c| drop(c.estimates.insert(key, ap.clone())));
            ap
        }
    };
    let grid = ap.grid(req.target)?;
    Ok(Estimate { corr: correlation(real, &grid).ok(), grid, ms: now_ms() - t0 })
}

/// Switching the model starts from its default prompt, corruption and tokens.
#[component]
fn ModelSwitch(
    lab: Lab,
    own: Option<Arc<OwnModel>>,
    to_own: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let set = move |w: TaskModel| {
        lab.which.set(w);
        lab.corruption.set(default_corruption(w));
        lab.corrupted.set(String::new());
        lab.answer.set(String::new());
        lab.wrong.set(String::new());
        lab.pinned.set(None);
    };
    view! { <Models own=own shown=Some(lab.which) to_task=set to_own=to_own /> }
}

/// The clean prompt, the corruption and the corrupted prompt it makes, the answer and the wrong token.
#[component]
fn PromptPanel(
    lab: Lab,
    prepared: Memo<Option<Result<Arc<Prepared>, InputProblem>>>,
    model: Signal<Option<Arc<LoadedModel>>>,
) -> impl IntoView {
    let ok = move || prepared.get().and_then(Result::ok);
    let set_corruption = move |v: String| {
        let Some(&(_, c)) = corruptions(lab.which.get_untracked()).iter().find(|(k, _)| *k == v) else { return };
        // The typed box starts from what the corruption made, so a student edits rather than retypes.
        if c == Corruption::Typed && lab.corrupted.get_untracked().is_empty() {
            if let Some(p) = ok() {
                lab.corrupted.set(p.corrupted_text.clone());
            }
        }
        lab.corruption.set(c);
    };
    let again = move |_| {
        let seed = lab.seed.get_untracked().wrapping_add(1);
        lab.seed.set(seed);
        if let (TaskModel::Induction, Some(m)) = (lab.which.get_untracked(), model.get_untracked()) {
            lab.ind_clean.set(default_clean(TaskModel::Induction, &m, seed));
        }
    };
    let options = move || {
        let w = lab.which.get();
        corruptions(w).iter().map(|(k, c)| view! { <option value=*k>{c.label()}</option> }).collect_view()
    };
    let typed = move || lab.corruption.get() == Corruption::Typed;
    let placeholder = move |f: fn(&Prepared) -> &String, what: &str| match ok() {
        Some(p) => f(&p).clone(),
        None => what.to_string(),
    };
    view! {
        <section class="panel patch-prompts">
            <label class="input-label" for="patch-clean">"Clean prompt: the model gives the answer"</label>
            <textarea id="patch-clean" rows="2" spellcheck="false" data-testid="patch-clean"
                prop:value=move || lab.clean().get() on:input=move |ev| lab.clean_of(lab.which.get_untracked()).set(event_target_value(&ev))></textarea>
            <div class="gen-controls">
                <label>"Corruption "
                    <select data-testid="patch-corruption" prop:value=move || lab.corruption.get().key()
                        on:change=move |ev| set_corruption(event_target_value(&ev))>{options}</select>
                </label>
                <Show when=move || !typed()>
                    <button data-testid="patch-again" on:click=again>
                        {move || if lab.which.get() == TaskModel::Ioi { "Other names" } else { "New random sequence" }}
                    </button>
                </Show>
            </div>
            <label class="input-label" for="patch-corrupted">"Corrupted prompt: the same length, a different answer"</label>
            <textarea id="patch-corrupted" rows="2" spellcheck="false" data-testid="patch-corrupted" readonly=move || !typed()
                class:derived=move || !typed()
                prop:value=move || if typed() { lab.corrupted.get() } else { ok().map(|p| p.corrupted_text.clone()).unwrap_or_default() }
                on:input=move |ev| lab.corrupted.set(event_target_value(&ev))></textarea>
            <div class="gen-controls patch-tokens">
                <label>"Answer " <input type="text" class="word-input" data-testid="patch-answer" spellcheck="false"
                    placeholder=move || placeholder(|p| &p.answer, "one word") prop:value=move || lab.answer.get()
                    on:input=move |ev| lab.answer.set(event_target_value(&ev)) /></label>
                <label>"Wrong token " <input type="text" class="word-input" data-testid="patch-wrong" spellcheck="false"
                    placeholder=move || placeholder(|p| &p.wrong, "one word") prop:value=move || lab.wrong.get()
                    on:input=move |ev| lab.wrong.set(event_target_value(&ev)) /></label>
                <span class="muted small">"Empty: taken from the prompts."</span>
            </div>
        </section>
    }
}

/// The settings both views of the lab share (ours and the opened model's, `super::own`).
#[derive(Clone, Copy)]
pub(super) struct Choice {
    pub target: RwSignal<Target>,
    pub direction: RwSignal<Direction>,
    pub metric: RwSignal<Metric>,
    /// Unpinned when the target changes (the pinned cell belongs to the old grid).
    pub pinned: RwSignal<Option<Vec<usize>>>,
    /// The "compare with attribution patching" box; `None` where the estimate is all the lab runs.
    pub attribution: Option<RwSignal<bool>>,
}

/// Target, direction, metric and attribution, each saying in plain words what it does.
#[component]
pub(super) fn SettingsPanel(lab: Choice, attn_only: Signal<bool>) -> impl IntoView {
    let target_options = move || {
        TARGETS
            .iter()
            .map(|&(k, t)| {
                let no_mlp = t == Target::MlpOut && attn_only.get();
                let label = if no_mlp { "mlp_out · none: this model is attention-only" } else { target_option(t) };
                view! { <option value=k disabled=no_mlp>{label}</option> }
            })
            .collect_view()
    };
    let set_target = move |v: String| {
        if let Some(&(_, t)) = TARGETS.iter().find(|(k, _)| *k == v) {
            lab.pinned.set(None);
            lab.target.set(t);
        }
    };
    let direction = |d: Direction, id: &'static str| {
        view! {
            <label><input type="radio" name="patch-direction" data-testid=id prop:checked=move || lab.direction.get() == d
                on:change=move |_| lab.direction.set(d) />" " {direction_option(d)}</label>
        }
    };
    let metric_options =
        METRICS.iter().map(|&(k, m)| view! { <option value=k>{metric_option(m)}</option> }).collect_view();
    view! {
        <section class="panel patch-settings">
            <div class="patch-settings-grid">
                <span>"Patch"</span>
                <div>
                    <select data-testid="patch-target" aria-label="what to patch" prop:value=move || super::target_key(lab.target.get())
                        on:change=move |ev| set_target(event_target_value(&ev))>{target_options}</select>
                    <p class="muted small">{move || target_label(lab.target.get())}</p>
                </div>
                <span>"Direction"</span>
                <div>
                    <div class="patch-radios">{direction(Direction::Denoising, "dir-denoising")}{direction(Direction::Noising, "dir-noising")}</div>
                    <p class="muted small">{move || direction_label(lab.direction.get())}</p>
                </div>
                <span>"Score"</span>
                <div>
                    <select data-testid="patch-metric" aria-label="metric" prop:value=move || super::metric_key(lab.metric.get())
                        on:change=move |ev| if let Some(&(_, m)) = METRICS.iter().find(|(k, _)| *k == event_target_value(&ev)) { lab.metric.set(m) }>
                        {metric_options}
                    </select>
                    <p class="muted small">{move || sentence(metric_label(lab.metric.get()))}"."</p>
                </div>
            </div>
            {lab.attribution.map(|on| view! {
                <label class="patch-check"><input type="checkbox" data-testid="patch-attribution" prop:checked=move || on.get()
                    on:change=move |ev| on.set(event_target_checked(&ev)) />
                    " Compare with attribution patching: every cell estimated at once from one forward and one backward pass"</label>
            })}
        </section>
    }
}

/// The message of the last bad input or failed run, with both tokenizations or the metrics that still work.
#[component]
fn ProblemView(lab: Lab) -> impl IntoView {
    move || lab.problem.get().map(|p| problem_box(&p.input, p.offer_metrics, lab.metric, None))
}

/// A problem's box (`input-error`): its message and `after`, both tokenizations when their lengths differ, and
/// buttons that switch `metric` to one that still works when `offer_metrics`. The opened model's lab shows its
/// problems the same way (`super::own`).
pub(super) fn problem_box(
    input: &InputProblem,
    offer_metrics: bool,
    metric: RwSignal<Metric>,
    after: Option<&'static str>,
) -> AnyView {
    let tokens = |label: &'static str, words: Vec<String>| {
        let chips = words
            .into_iter()
            .enumerate()
            .map(|(i, w)| view! { <span class="tok" title=format!("position {i}")>{w}</span> })
            .collect_view();
        view! { <div class="patch-tokrow"><span class="muted small">{label}</span>{chips}</div> }
    };
    let toks = input.tokenizations.clone().map(|(a, b)| {
        let (na, nb) = (a.len(), b.len());
        view! { <div data-testid="patch-tokenizations">{tokens("clean", a)}{tokens("corrupted", b)}<p class="muted small">{format!("{na} and {nb} tokens")}</p></div> }
    });
    let offer = offer_metrics.then(|| {
        view! {
            <p class="small">"Score by "
                <button data-testid="offer-prob" on:click=move |_| metric.set(Metric::AnswerProb)>"the probability of the answer"</button>" or "
                <button data-testid="offer-kl" on:click=move |_| metric.set(Metric::Kl)>"the KL divergence"</button>" instead."</p>
        }
    });
    view! {
        <div class="input-error" data-testid="input-error" role="status">
            <p>{input.message.clone()}{after}</p>{toks}{offer}
        </div>
    }
    .into_any()
}

/// The heatmap(s) with the legend, the cell under the pointer, attribution against real patching, downloads.
#[component]
fn ResultPanel(lab: Lab) -> impl IntoView {
    // One scale for both grids, so the same colour means the same value side by side.
    let scale = Memo::new(move |_| {
        let o = lab.shown.get()?;
        let mut values = o.real.values.clone();
        if let Some(e) = &o.estimate {
            values.extend(&e.grid.values);
        }
        Some(Scale::for_grid(o.real.metric, &values))
    });
    let data = move |estimate: bool| {
        Signal::derive(move || {
            let o = lab.shown.get()?;
            let grid = if estimate { &o.estimate.as_ref()?.grid } else { &o.real };
            Some(Arc::new(heat_data(&o, grid, scale.get()?)))
        })
    };
    view! {
        <section class="panel patch-result" data-testid="patch-result">
            <Show when=move || lab.shown.with(Option::is_some) fallback=|| view! { <p class="muted">"The first result appears here."</p> }>
                <Summary lab=lab />
                <Legend lab=lab scale=scale />
                <div class="patch-maps">
                    <div>
                        <h4>"Activation patching: one patched run per cell"</h4>
                        <Heatmap data=data(false) hover=lab.hover pinned=lab.pinned testid="heat-real" />
                        <DownloadButton lab=lab estimate=false />
                        <TableExport image=true csv=false what="activation patching" />
                    </div>
                    <Show when=move || lab.shown.get().is_some_and(|o| o.estimate.is_some())>
                        <div>
                            <h4>"Attribution patching: a first-order estimate of every cell"</h4>
                            <Heatmap data=data(true) hover=lab.hover pinned=lab.pinned testid="heat-attr" />
                            <DownloadButton lab=lab estimate=true />
                            <TableExport image=true csv=false what="attribution patching" />
                        </div>
                    </Show>
                </div>
                <CellDetail lab=lab />
                <Agreement lab=lab />
            </Show>
        </section>
    }
}

fn heat_data(o: &Outcome, grid: &PatchGrid, scale: Scale) -> HeatmapData {
    let heat: Heat = layout(grid, &o.prepared.clean_words);
    // Where the corrupted prompt differs, its token shows under the clean one.
    let below = o
        .prepared
        .clean_words
        .iter()
        .zip(&o.prepared.corrupted_words)
        .map(|(a, b)| (a != b).then(|| b.clone()))
        .collect();
    HeatmapData { heat, scale, below: if grid.axes().contains(&"pos") { below } else { vec![] } }
}

/// The two ends of the scale: the clean and corrupted runs, and the time taken.
#[component]
fn Summary(lab: Lab) -> impl IntoView {
    move || {
        let o = lab.shown.get()?;
        let (b, p) = (o.baseline, &o.prepared);
        let run = |name: &str, m: &crate::lens::methods::patching::Measures| {
            format!(
                "{name} run: logit({}) − logit({}) = {:.2}, P({}) = {:.1}%",
                p.answer,
                p.wrong,
                m.logit_diff,
                p.answer,
                100.0 * m.answer_prob
            )
        };
        let cells = o.real.values.len();
        let attr = o.estimate.as_ref().map(|e| format!("; attribution patching in {:.0} ms", e.ms)).unwrap_or_default();
        Some(view! {
            <p class="small patch-summary" data-testid="patch-summary" data-clean=format!("{:.4}", b.clean.logit_diff) data-corrupted=format!("{:.4}", b.corrupted.logit_diff)>
                {run("Clean", &b.clean)}<br />{run("Corrupted", &b.corrupted)}
            </p>
            <p class="muted small" data-testid="lab-status" data-rev=move || lab.rev.get() data-ms=format!("{:.0}", o.sweep_ms)
                data-attr-ms=o.estimate.as_ref().map(|e| format!("{:.0}", e.ms)).unwrap_or_default()>
                {format!("{cells} patched runs in {:.0} ms{attr}.", o.sweep_ms)}
            </p>
        })
    }
}

#[component]
fn Legend(lab: Lab, scale: Memo<Option<Scale>>) -> impl IntoView {
    move || {
        let (o, s) = (lab.shown.get()?, scale.get()?);
        let ticks = s.ticks().map(|(_, t)| view! { <span>{t}</span> }).into_iter().collect_view();
        Some(view! {
            <div class="patch-legend" data-testid="patch-legend">
                <div class="patch-legend-bar" style=format!("background: {}", s.gradient())></div>
                <div class="patch-legend-ticks">{ticks}</div>
                <p class="muted small">{legend_note(o.real.metric, o.direction)}</p>
            </div>
        })
    }
}

/// The cell under the pointer or keyboard focus, else the clicked one: its value and what was patched.
#[component]
fn CellDetail(lab: Lab) -> impl IntoView {
    move || {
        let o = lab.shown.get()?;
        let hovering = lab.hover.get();
        let Some(cell) = hovering.clone().or_else(|| lab.pinned.get()) else {
            return Some(view! { <p class="muted small patch-detail" data-testid="cell-detail">"Point at a cell (or Tab to the grid and use the arrow keys) to see what was patched; click or press Enter to keep it."</p> }.into_any());
        };
        let v = o.real.get(&cell)?;
        let metric = o.real.metric;
        let est = o
            .estimate
            .as_ref()
            .and_then(|e| e.grid.get(&cell))
            .map(|e| format!(" · attribution estimate {}", fmt_value(metric, e)));
        let kept = hovering.is_none();
        Some(view! {
            <div class="patch-detail" data-testid="cell-detail" data-cell=super::cell_key(&cell) data-value=format!("{v:.4}")>
                <p><strong>{format!("{} = {}", metric_option(metric), fmt_value(metric, v))}</strong>{est}</p>
                <p class="small">{sentence(&patch_sentence(o.real.target, o.direction, &cell, &o.prepared.clean_words))}"."</p>
                {kept.then(|| view! { <p class="muted small">"Kept (clicked). " <button data-testid="cell-clear" on:click=move |_| lab.pinned.set(None)>"Clear"</button></p> })}
            </div>
        }.into_any())
    }
}

/// How attribution patching compares: the correlation and the three cells where it is furthest off.
#[component]
fn Agreement(lab: Lab) -> impl IntoView {
    move || {
        let o = lab.shown.get()?;
        let e = o.estimate.as_ref()?;
        let corr = match e.corr {
            Some(r) => format!("Correlation with real patching over the {} cells: r = {r:.2}.", e.grid.values.len()),
            None => "One of the grids is constant, so their correlation is undefined.".into(),
        };
        let items = disagreements(&o.real, &e.grid, 3)
            .into_iter()
            .map(|(cell, r, a)| {
                let place = cell_place(o.real.target, &cell, &o.prepared.clean_words);
                let text =
                    format!("{place}: real {}, estimate {}", fmt_value(o.real.metric, r), fmt_value(o.real.metric, a));
                view! { <li data-testid="disagreement" data-cell=super::cell_key(&cell)>{text}</li> }
            })
            .collect_view();
        Some(view! {
            <div class="patch-agreement" data-testid="agreement" data-corr=e.corr.map(|r| format!("{r:.4}")).unwrap_or_default()>
                <p class="small">{corr}" The estimate is exact where the metric is linear in the activation, and worst where patching changes a lot at once."</p>
                <p class="small">"Largest disagreements:"</p><ol class="small">{items}</ol>
            </div>
        })
    }
}

/// Downloads the grid shown as CSV, built on the page (a Blob), so nothing leaves the browser.
#[component]
fn DownloadButton(lab: Lab, estimate: bool) -> impl IntoView {
    let ctx = use_context::<ExportContext>();
    let on_click = move |_| {
        let Some(o) = lab.shown.get_untracked() else { return };
        let (grid, method) = match (&o.estimate, estimate) {
            (Some(e), true) => (&e.grid, "attribution"),
            _ => (&o.real, "activation"),
        };
        download_table(ctx, &csv_name(grid, o.direction, method), &csv_table(grid, o.direction, method));
    };
    let id = if estimate { "download-attr" } else { "download-real" };
    view! { <button class="patch-download" data-testid=id on:click=on_click>"Download CSV"</button> }
}
