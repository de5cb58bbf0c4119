//! The patching lab on a model opened in this tab (`model=own`): prompts encoded by the model's own tokenizer
//! (in its worker), and attribution patching (Nanda 2023) of every cell of a target at once, run half a block
//! per slice forwards and backwards (`AttributionRun`). Real patching needs one forward pass per cell, hundreds
//! of them at GPT-2 small's size, so on an opened model the lab shows the estimate, and says so.
//!
//! The run for the current prompts, direction and metric is kept: switching the target only reads another grid
//! from it. Bad input shows its message and the last result stays.
use std::sync::Arc;

use leptos::prelude::*;

use super::heat::{layout, Scale};
use super::heatmap::{Heatmap, HeatmapData};
use super::view::{problem_box, Choice, SettingsPanel};
use super::{
    check_gap, fmt_value, legend_note, metric_option, one_token, patch_sentence, same_length, InputProblem, PatchState,
    OWN_ANSWER, OWN_CLEAN, OWN_CORRUPTED, OWN_WRONG,
};
use crate::app::core::browser::{now_ms, replace_hash_soon};
use crate::app::core::format::sentence;
use crate::app::core::frame::progress_bar;
use crate::app::core::jobs::{Job, Jobs};
use crate::app::core::opened::OwnModel;
use crate::app::core::own_text::show_piece;
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::methods::patching::{
    AttributionPatching, AttributionRun, Baseline, Direction, Metric, PatchGrid, PatchInput, Target,
};

/// A finished estimate, as shown.
#[derive(Clone, Debug)]
struct Outcome {
    clean_words: Vec<String>,
    corrupted_words: Vec<String>,
    answer: String,
    wrong: String,
    grid: PatchGrid,
    direction: Direction,
    baseline: Baseline,
    /// The attribution run's time (a grid read from the kept run keeps its first time).
    ms: f64,
}

/// The attribution run kept for the prompts, direction and metric it was made for.
struct Kept {
    input: PatchInput,
    direction: Direction,
    metric: Metric,
    run: Arc<AttributionPatching>,
    ms: f64,
}

/// What the student typed and chose.
#[derive(Clone, Debug, PartialEq)]
struct Ask {
    clean: String,
    corrupted: String,
    answer: String,
    wrong: String,
    target: Target,
    direction: Direction,
    metric: Metric,
}

const ENCODING: &str = "encoding the prompts";
const ESTIMATING: &str = "attribution patching";

/// The prompts as the model reads them: the input, and each prompt's pieces as cells show them.
type Encoded = (PatchInput, Vec<String>, Vec<String>, String, String);

/// Encodes the four boxes and checks them; `None` if the job was stopped.
async fn encode(own: &OwnModel, ask: &Ask, job: &Job) -> Option<Result<Encoded, InputProblem>> {
    let clean = match own.encode(ask.clean.clone(), job, ENCODING).await? {
        Ok(x) => x,
        Err(e) => return Some(Err(format!("The clean prompt: {e}").into())),
    };
    let corrupted = match own.encode(ask.corrupted.clone(), job, ENCODING).await? {
        Ok(x) => x,
        Err(e) => return Some(Err(format!("The corrupted prompt: {e}").into())),
    };
    let show = |p: &[String]| p.iter().map(|s| show_piece(s)).collect::<Vec<_>>();
    let (clean_words, corrupted_words) = (show(&clean.pieces), show(&corrupted.pieces));
    if let Err(e) = same_length(clean.ids.len(), corrupted.ids.len(), &clean_words, &corrupted_words) {
        return Some(Err(e));
    }
    let mut tokens = Vec::with_capacity(2);
    for (what, text) in [("the answer", &ask.answer), ("the wrong token", &ask.wrong)] {
        let enc = match own.tokenize(text.clone(), job, ENCODING).await? {
            Ok(e) => e,
            Err(e) => return Some(Err(e.into())),
        };
        match one_token(what, text, &enc.ids, &enc.pieces) {
            Ok(id) => tokens.push((id, show_piece(&enc.pieces[0]))),
            Err(e) => return Some(Err(e.into())),
        }
    }
    let [(answer, answer_piece), (wrong, wrong_piece)] = <[_; 2]>::try_from(tokens).expect("two tokens pushed");
    if answer == wrong {
        return Some(Err("The answer and the wrong token are the same token: make them differ.".to_string().into()));
    }
    let input = PatchInput::new(clean.ids, corrupted.ids, answer, wrong);
    Some(Ok((input, clean_words, corrupted_words, answer_piece, wrong_piece)))
}

/// One estimate: the kept run if it fits, else a new one half a block per slice. `None` if the job was stopped.
async fn run(
    own: &OwnModel,
    ask: Ask,
    kept: StoredValue<Option<Kept>, LocalStorage>,
    job: &Job,
) -> Option<Result<Outcome, (InputProblem, bool)>> {
    let plain = |e: InputProblem| Some(Err((e, false)));
    let (input, clean_words, corrupted_words, answer, wrong) = match encode(own, &ask, job).await? {
        Ok(x) => x,
        Err(e) => return plain(e),
    };
    let fits = |k: &Kept| k.input == input && k.direction == ask.direction && k.metric == ask.metric;
    let (ap, ms) = match kept.with_value(|k| k.as_ref().filter(|k| fits(k)).map(|k| (k.run.clone(), k.ms))) {
        Some(x) => x,
        None => {
            let t0 = now_ms();
            let model = &own.model;
            let mut run = match AttributionRun::new(model, &input, ask.direction, ask.metric) {
                Ok(r) => r,
                Err(e) => return Some(Err((sentence(&e.to_string()).into(), ask.metric == Metric::LogitDiff))),
            };
            let stepped = job.sliced(ESTIMATING, || run.step(model).map(|done| (!done).then(|| run.progress(model))));
            match stepped.await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return plain(sentence(&e.to_string()).into()),
            }
            let ap = match run.finish() {
                Ok(ap) => Arc::new(ap),
                Err(e) => return Some(Err((sentence(&e.to_string()).into(), ask.metric == Metric::LogitDiff))),
            };
            let ms = now_ms() - t0;
            kept.set_value(Some(Kept {
                input: input.clone(),
                direction: ask.direction,
                metric: ask.metric,
                run: ap.clone(),
                ms,
            }));
            (ap, ms)
        }
    };
    let baseline = *ap.baseline();
    if ask.metric == Metric::LogitDiff {
        if let Err(e) = check_gap(baseline.clean.logit_diff, baseline.corrupted.logit_diff, &answer, &wrong) {
            return Some(Err((e.into(), true)));
        }
    }
    match ap.grid(ask.target) {
        Ok(grid) => Some(Ok(Outcome {
            clean_words,
            corrupted_words,
            answer,
            wrong,
            grid,
            direction: ask.direction,
            baseline,
            ms,
        })),
        Err(e) => plain(sentence(&e.to_string()).into()),
    }
}

/// The signals the panels share.
#[derive(Clone, Copy)]
struct Own {
    clean: RwSignal<String>,
    corrupted: RwSignal<String>,
    answer: RwSignal<String>,
    wrong: RwSignal<String>,
    target: RwSignal<Target>,
    direction: RwSignal<Direction>,
    metric: RwSignal<Metric>,
    pinned: RwSignal<Option<Vec<usize>>>,
    hover: RwSignal<Option<Vec<usize>>>,
    shown: RwSignal<Option<Arc<Outcome>>>,
    /// The last problem, and whether another metric would help.
    problem: RwSignal<Option<(InputProblem, bool)>>,
    rev: RwSignal<u32>,
}

#[component]
pub fn OwnPatching(own: Arc<OwnModel>, url: PatchState) -> impl IntoView {
    let text = |v: &Option<String>, d: &str| RwSignal::new(v.clone().unwrap_or_else(|| d.to_string()));
    let lab = Own {
        clean: text(&url.clean, OWN_CLEAN),
        corrupted: text(&url.corrupted, OWN_CORRUPTED),
        answer: text(&url.answer, OWN_ANSWER),
        wrong: text(&url.wrong, OWN_WRONG),
        target: RwSignal::new(url.target),
        direction: RwSignal::new(url.direction),
        metric: RwSignal::new(url.metric),
        pinned: RwSignal::new(url.cell.clone()),
        hover: RwSignal::new(None),
        shown: RwSignal::new(None),
        problem: RwSignal::new(None),
        rev: RwSignal::new(0),
    };
    let attn_only = own.model.cfg.attn_only;
    if attn_only && lab.target.get_untracked() == Target::MlpOut {
        lab.target.set(Target::ResidPre);
    }
    let jobs = Jobs::new();
    let kept: StoredValue<Option<Kept>, LocalStorage> = StoredValue::new_local(None);
    let model = StoredValue::new(own);
    Effect::new(move |_| {
        let ask = Ask {
            clean: lab.clean.get(),
            corrupted: lab.corrupted.get(),
            answer: lab.answer.get(),
            wrong: lab.wrong.get(),
            target: lab.target.get(),
            direction: lab.direction.get(),
            metric: lab.metric.get(),
        };
        let own = model.get_value();
        jobs.spawn(ENCODING, move |job| async move {
            // The keystroke's own task ends first.
            if !job.pause(ENCODING, 0.0).await {
                return;
            }
            match run(&own, ask, kept, &job).await {
                None => {}
                Some(Ok(o)) => {
                    if lab.pinned.get_untracked().is_some_and(|c| o.grid.get(&c).is_none()) {
                        lab.pinned.set(None);
                    }
                    lab.problem.set(None);
                    lab.shown.set(Some(Arc::new(o)));
                    lab.rev.update(|r| *r += 1);
                }
                Some(Err(p)) => lab.problem.set(Some(p)),
            }
        });
    });
    // The link follows every box and setting; a box left at its default is left out.
    Effect::new(move |_| {
        let typed = |s: RwSignal<String>, d: &str| Some(s.get()).filter(|v| v != d && !v.is_empty());
        let state = PatchState {
            own: true,
            clean: typed(lab.clean, OWN_CLEAN),
            corruption: super::Corruption::Typed,
            corrupted: typed(lab.corrupted, OWN_CORRUPTED),
            answer: typed(lab.answer, OWN_ANSWER),
            wrong: typed(lab.wrong, OWN_WRONG),
            target: lab.target.get(),
            direction: lab.direction.get(),
            metric: lab.metric.get(),
            cell: lab.pinned.get(),
            ..PatchState::default()
        };
        replace_hash_soon(&section_hash_with("9.3.1", &state.to_query()));
    });
    let cancel = move || {
        lab.problem.set(Some(("Cancelled. The last result stays on screen.".to_string().into(), false)));
    };
    let name = model.with_value(|o| o.name.clone());
    let choice = Choice {
        target: lab.target,
        direction: lab.direction,
        metric: lab.metric,
        pinned: lab.pinned,
        attribution: None,
    };
    view! {
        <div class="lab-body" data-testid="patch-own">
            <p class="muted small" data-testid="patch-own-note">"On " <strong>{name}</strong>
                ", the model you opened, this lab estimates every cell with attribution patching: one forward pass of each prompt and one backward pass, instead of a patched run per cell (hundreds at GPT-2 small's size). The estimate is first-order: check the cells that matter on one of our models, where real patching runs beside it."</p>
            <Prompts lab=lab />
            <SettingsPanel lab=choice attn_only=Signal::stored(attn_only) />
            {progress_bar(jobs, "patch", cancel)}
            <Problem lab=lab />
            <Result lab=lab />
        </div>
    }
}

#[component]
fn Prompts(lab: Own) -> impl IntoView {
    let area = |id: &'static str, label: &'static str, s: RwSignal<String>| {
        view! {
            <label class="input-label" for=id>{label}</label>
            <textarea id=id rows="2" spellcheck="false" data-testid=id prop:value=move || s.get()
                on:input=move |ev| s.set(event_target_value(&ev))></textarea>
        }
    };
    let word = |id: &'static str, label: &'static str, s: RwSignal<String>| {
        view! {
            <label>{label}<input type="text" class="word-input" data-testid=id spellcheck="false"
                prop:value=move || s.get() on:input=move |ev| s.set(event_target_value(&ev)) /></label>
        }
    };
    view! {
        <section class="panel patch-prompts">
            {area("patch-clean", "Clean prompt: the model gives the answer", lab.clean)}
            {area("patch-corrupted", "Corrupted prompt: as many tokens, a different answer", lab.corrupted)}
            <div class="gen-controls patch-tokens">
                {word("patch-answer", "Answer ", lab.answer)}
                {word("patch-wrong", "Wrong token ", lab.wrong)}
                <span class="muted small">"One token each; a word inside a sentence starts with its space."</span>
            </div>
        </section>
    }
}

/// The last bad input or failed run, shown as the lab shows it on our models.
#[component]
fn Problem(lab: Own) -> impl IntoView {
    move || {
        let (p, offer) = lab.problem.get()?;
        let stays = lab.shown.with(Option::is_some).then_some(" The last result stays on screen.");
        Some(problem_box(&p, offer, lab.metric, stays))
    }
}

#[component]
fn Result(lab: Own) -> impl IntoView {
    let data = Signal::derive(move || {
        let o = lab.shown.get()?;
        let heat = layout(&o.grid, &o.clean_words);
        let below = o.clean_words.iter().zip(&o.corrupted_words).map(|(a, b)| (a != b).then(|| b.clone())).collect();
        let scale = Scale::for_grid(o.grid.metric, &o.grid.values);
        Some(Arc::new(HeatmapData { heat, scale, below: if o.grid.axes().contains(&"pos") { below } else { vec![] } }))
    });
    let summary = move || {
        let o = lab.shown.get()?;
        let b = o.baseline;
        let line = |name: &str, m: &crate::lens::methods::patching::Measures| {
            format!(
                "{name} run: logit({a}) − logit({w}) = {:.2}, P({a}) = {:.2}%",
                m.logit_diff,
                100.0 * m.answer_prob,
                a = o.answer,
                w = o.wrong
            )
        };
        let scale = Scale::for_grid(o.grid.metric, &o.grid.values);
        let ticks = scale.ticks().map(|(_, t)| view! { <span>{t}</span> }).into_iter().collect_view();
        Some(view! {
            <p class="small patch-summary" data-testid="patch-summary" data-clean=format!("{:.4}", b.clean.logit_diff)
                data-corrupted=format!("{:.4}", b.corrupted.logit_diff)>{line("Clean", &b.clean)}<br />{line("Corrupted", &b.corrupted)}</p>
            <p class="muted small" data-testid="lab-status" data-rev=move || lab.rev.get() data-attr-ms=format!("{:.0}", o.ms)
                data-cells=o.grid.values.len()>
                {format!("{} cells estimated by attribution patching in {:.0} ms.", o.grid.values.len(), o.ms)}</p>
            <div class="patch-legend" data-testid="patch-legend">
                <div class="patch-legend-bar" style=format!("background: {}", scale.gradient())></div>
                <div class="patch-legend-ticks">{ticks}</div>
                <p class="muted small">{legend_note(o.grid.metric, o.direction)}</p>
            </div>
        })
    };
    let detail = move || {
        let o = lab.shown.get()?;
        let hovering = lab.hover.get();
        let Some(cell) = hovering.or_else(|| lab.pinned.get()) else {
            return Some(view! { <p class="muted small patch-detail" data-testid="cell-detail">"Point at a cell (or Tab to the grid and use the arrow keys) to see what it estimates; click or press Enter to keep it."</p> }.into_any());
        };
        let v = o.grid.get(&cell)?;
        let metric = o.grid.metric;
        Some(view! {
            <div class="patch-detail" data-testid="cell-detail" data-cell=super::cell_key(&cell) data-value=format!("{v:.4}")>
                <p><strong>{format!("estimated {} = {}", metric_option(metric), fmt_value(metric, v))}</strong></p>
                <p class="small">"If we " {patch_sentence(o.grid.target, o.direction, &cell, &o.clean_words)} "."</p>
            </div>
        }.into_any())
    };
    view! {
        <section class="panel patch-result" data-testid="patch-result">
            <Show when=move || lab.shown.with(Option::is_some) fallback=|| view! { <p class="muted">"The first estimate appears here."</p> }>
                {summary}
                <h4>"Attribution patching: a first-order estimate of every cell"</h4>
                <Heatmap data=data hover=lab.hover pinned=lab.pinned testid="heat-attr" />
                {detail}
            </Show>
        </section>
    }
}
