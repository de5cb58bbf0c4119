//! The superposition lab (9.2.4), as panels over `super`'s plain rules. All training runs in the Web Worker,
//! driven by the lab's jobs (`core::trainer::Trainer`): one for the model (building it, training it), one for the
//! phase-diagram sweep, each with its progress bar and Cancel. The page only draws the worker's replies
//! (computed by `lens::toy`).
use std::sync::Arc;

use leptos::prelude::*;

use super::{
    cell_index, cell_request, gaps_text, model_status, phase_heat, sharing_colour, sweep_summary, Preset, Settings,
    ToyState, TOY_BUDGET,
};
use crate::app::core::browser::{now_ms, replace_hash_soon};
use crate::app::core::charts::{sequential, Arrow, Arrows, Heat, HeatGrid};
use crate::app::core::frame::{progress_bar, LabFrame, UrlNotes};
use crate::app::core::jobs::{Job, Jobs};
use crate::app::core::trainer::*;
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::methods::superposition::metrics::{ToyMetrics, REPRESENTED_NORM};
use crate::lens::methods::superposition::phase::{PhaseCell, PhaseSpec};
use crate::lens::toy::model::{ToyConfig, ToySnapshot};
use crate::lens::toy::protocol::{LabReply, LabRequest};

#[derive(Clone, Debug, PartialEq)]
struct ToyView {
    snapshot: ToySnapshot,
    metrics: ToyMetrics,
}

/// W's columns as arrows in the plane (m = 2), labelled and coloured by importance.
fn feature_arrows(v: &ToyView) -> impl IntoView {
    let snap = &v.snapshot;
    let imp = snap.config.importances();
    let imax = imp.iter().cloned().fold(0.0f32, f32::max).max(1e-6);
    let imin = imp.iter().cloned().fold(f32::INFINITY, f32::min);
    let arrows = imp
        .iter()
        .enumerate()
        .take(snap.config.n_features)
        .map(|(i, &importance)| {
            let col = snap.column(i);
            let norm = v.metrics.norms[i];
            let t = if imax > imin { (importance - imin) / (imax - imin) } else { 1.0 };
            Arrow {
                x: col[0] as f64,
                y: col[1] as f64,
                // Viridis stops short of its yellow end, which would vanish on white paper.
                colour: sequential(0.8 * t).to_string(),
                bold: norm >= REPRESENTED_NORM,
                label: if norm > 0.15 { (i + 1).to_string() } else { String::new() },
                title: format!("feature {}: length {norm:.2}, importance {importance:.2}", i + 1),
            }
        })
        .collect();
    let extent = v.metrics.norms.iter().cloned().fold(1.0f32, f32::max) as f64 * 1.12;
    view! {
        <Arrows arrows=arrows extent=extent testid="feature-arrows" item="feature-arrow"
            label="each feature's direction in the two hidden dimensions" />
    }
}

// ---------------------------------------------------------------- 9.2.4

/// What the panels share: the worker, the job runners of the model and of the sweep, and the newest model the
/// worker sent.
#[derive(Clone, Copy)]
struct Lab {
    trainer: Trainer,
    /// Building and training the model.
    jobs: Jobs,
    /// The phase-diagram sweep.
    sweep: Jobs,
    toy: RwSignal<Option<Arc<ToyView>>>,
    /// Counts the models drawn (`data-rev`), so tests can wait for the next one.
    rev: RwSignal<u32>,
    error: RwSignal<Option<String>>,
}

impl Lab {
    fn show(self, reply: LabReply) {
        if let LabReply::Toy { snapshot, metrics } = reply {
            self.toy.set(Some(Arc::new(ToyView { snapshot, metrics })));
            self.rev.update(|r| *r += 1);
        }
    }

    fn training(self) -> bool {
        self.jobs.busy()
    }

    fn diverged(self) -> Option<String> {
        self.toy.with(|v| v.as_ref().and_then(|v| diverged_message(&v.snapshot.status)))
    }

    /// Whether Train can go on from the model on screen (untracked, for the button's handler).
    fn can_go_on(self) -> bool {
        self.toy.with_untracked(|v| v.as_ref().is_some_and(|v| diverged_message(&v.snapshot.status).is_none()))
    }

    /// Builds `config`'s model from its seed (a newer run replaces any older one); `train` trains it at once.
    fn rebuild(self, config: ToyConfig, train: bool) {
        self.error.set(None);
        self.trainer.rate.set(None);
        self.jobs.spawn("building the model", move |job| async move {
            let built = self.trainer.ask(&job, &LabRequest::NewToy { config }).await;
            match built {
                Some(Ok(reply)) => self.show(reply),
                Some(Err(message)) => {
                    self.error.set(Some(message));
                    return;
                }
                None => return,
            }
            if train {
                self.train(&job).await;
            }
        });
    }

    /// Trains `TOY_BUDGET` more steps, as `job`.
    async fn train(self, job: &Job) {
        let steps = |steps| LabRequest::StepToy { steps };
        let ended = self.trainer.train(job, "training", TOY_BUDGET, steps, move |r| self.show(r)).await;
        if let Some(Err(message)) = ended {
            self.error.set(Some(message));
        }
    }
}

#[component]
pub fn SuperpositionLab(query: Vec<(String, String)>) -> impl IntoView {
    let (url, problems) = ToyState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    let lab = Lab {
        trainer: Trainer::new(),
        jobs: Jobs::new(),
        sweep: Jobs::new(),
        toy: RwSignal::new(None),
        rev: RwSignal::new(0),
        error: RwSignal::new(None),
    };
    view! {
        <LabFrame notes=notes model="none: a toy model trained in this page">
        <div class="toy-lab" data-testid="toy-lab">
            {worker_alert(lab.trainer, "superposition lab")}
            <ModelPanel lab=lab url=url />
            <div class="toy-grid">
                <ArrowsPanel lab=lab />
                <NormsPanel lab=lab />
            </div>
            <MatricesAndLoss lab=lab />
            <PhasePanel lab=lab />
        </div>
        </LabFrame>
    }
}

/// The controls, Train / Stop / Reset, the status line and the run's messages. The URL follows the settings the
/// model was built from.
#[component]
fn ModelPanel(lab: Lab, url: ToyState) -> impl IntoView {
    let start = Settings::from_state(&url);
    let preset = RwSignal::new(start.preset);
    let sparsity = RwSignal::new(start.sparsity);
    let decay = RwSignal::new(start.decay);
    let seed = RwSignal::new(start.seed);
    let lr = RwSignal::new(start.lr);
    let settings = move || Settings {
        preset: preset.get_untracked(),
        sparsity: sparsity.get_untracked(),
        decay: decay.get_untracked(),
        seed: seed.get_untracked(),
        lr: lr.get_untracked(),
    };
    // A setting that does not parse keeps the last model on screen, with the message.
    let rebuild = move |train: bool| {
        let s = settings();
        replace_hash_soon(&section_hash_with("9.2.4", &s.url_state().to_query()));
        match s.config() {
            Ok(config) => lab.rebuild(config, train),
            Err(message) => {
                lab.jobs.cancel();
                lab.error.set(Some(message));
            }
        }
    };
    rebuild(true);
    // While a slider is dragged, start again once it rests for a moment (not on every pixel, which would queue
    // work the worker then throws away).
    let drag = StoredValue::new(0u64);
    let rebuild_soon = move || {
        lab.jobs.cancel();
        drag.update_value(|g| *g += 1);
        let g = drag.get_value();
        set_timeout(
            move || {
                // `try_`: the lab may have been left while the slider rested.
                if drag.try_get_value() == Some(g) {
                    rebuild(true);
                }
            },
            std::time::Duration::from_millis(120),
        );
    };
    let train = move |_| {
        if lab.can_go_on() {
            lab.jobs.spawn("training", move |job| async move { lab.train(&job).await });
        }
    };
    let status = move || match lab.toy.get() {
        None => "Starting the training worker…".to_string(),
        Some(v) => {
            let s = &v.snapshot;
            model_status(s.step, s.loss, lab.training(), lab.trainer.rate.get(), lab.diverged().is_some())
        }
    };
    let step = Signal::derive(move || lab.toy.with(|v| v.as_ref().map_or(0, |v| v.snapshot.step)));
    view! {
        <section class="panel">
            <h3>"A toy model: x′ = ReLU(WᵀW x + b)"</h3>
            <div class="toy-controls">
                <label>"Features n → hidden m "
                    <select data-testid="preset" on:change=move |ev| {
                        let p = Preset::from_key(&event_target_value(&ev)).unwrap_or(Preset::FiveInTwo);
                        preset.set(p);
                        decay.set(p.default_decay());
                        rebuild(true);
                    } prop:value=move || preset.get().key()>
                        <option value="5-2">"5 features in 2 dimensions"</option>
                        <option value="20-5">"20 features in 5 dimensions"</option>
                    </select>
                </label>
                {slider("Sparsity S", sparsity, (0.0, 0.99, 0.01), 2, "sparsity", Commit::WhileDragging, rebuild_soon)}
                {slider("Importance decay r", decay, (0.5, 1.0, 0.01), 2, "decay", Commit::WhileDragging, rebuild_soon)}
                <label>"Seed "
                    <input type="number" min="0" step="1" class="num" data-testid="seed" prop:value=move || seed.get()
                        on:change=move |ev| { seed.set(event_target_value(&ev)); rebuild(true); } />
                </label>
                <label>"Learning rate "
                    <input type="text" inputmode="decimal" class="num" data-testid="lr" prop:value=move || lr.get()
                        on:change=move |ev| { lr.set(event_target_value(&ev)); rebuild(true); } />
                </label>
            </div>
            <p class="small muted">"Feature i is nonzero with probability 1 − S (then uniform in [0, 1]) and counts with importance rⁱ. Changing a setting starts training again from the seed."</p>
            <div class="toy-buttons">
                <button data-testid="train" on:click=train
                    disabled=move || lab.training() || lab.sweep.busy() || lab.diverged().is_some() || !lab.trainer.ready()>"Train"</button>
                <button data-testid="stop" on:click=move |_| lab.jobs.cancel() disabled=move || !lab.training()>"Stop"</button>
                <button data-testid="reset" on:click=move |_| rebuild(false)>"Reset"</button>
                <RunStatus trainer=lab.trainer step=step training=Signal::derive(move || lab.training()) rev=lab.rev text=Signal::derive(status) />
            </div>
            {progress_bar(lab.jobs, "train", || {})}
            {run_messages(lab.error, move || lab.diverged())}
        </section>
    }
}

/// Each feature's direction in the plane (m = 2), and how many are represented.
#[component]
fn ArrowsPanel(lab: Lab) -> impl IntoView {
    let toy = lab.toy;
    let arrows = move || {
        let v = toy.get()?;
        Some(if v.snapshot.config.n_hidden == 2 {
            view! { <div class="arrows-wrap">{feature_arrows(&v)}</div> }.into_any()
        } else {
            view! { <p class="muted small arrows-note">{format!("With m = {} hidden dimensions the arrows would need {} dimensions to draw; the matrices below show the same geometry.", v.snapshot.config.n_hidden, v.snapshot.config.n_hidden)}</p> }.into_any()
        })
    };
    let summary = move || {
        let v = toy.get()?;
        let m = &v.metrics;
        let n = v.snapshot.config.n_features;
        let (gap_text, gaps_attr) = gaps_text(m.gaps.as_deref().unwrap_or_default());
        Some(view! {
            <p class="toy-summary" data-testid="represented" data-count=m.represented data-gaps=gaps_attr>
                <strong>{format!("{} of {n} features represented", m.represented)}</strong>
                {format!(" (length above {REPRESENTED_NORM})")}
                {m.dims_per_feature.map(|d| format!(" · {d:.2} dimensions per feature"))}
                "." {gap_text}
            </p>
        })
    };
    view! {
        <section class="panel">
            <h3>"Each feature's direction (columns of W)"</h3>
            {arrows}
            <div role="status">{summary}</div>
        </section>
    }
}

/// Each feature's length, and how much it shares its dimensions with the others.
#[component]
fn NormsPanel(lab: Lab) -> impl IntoView {
    let norms_view = move || {
        let v = lab.toy.get()?;
        let m = &v.metrics;
        let max = m.norms.iter().cloned().fold(1.0f32, f32::max);
        let rows = m
            .norms
            .iter()
            .enumerate()
            .map(|(i, &norm)| {
                let inter = m.interference.get(i).copied().unwrap_or(0.0);
                let colour = sharing_colour(inter);
                view! {
                    <div class="norm-row" data-testid="norm-row" data-feature=i data-norm=format!("{norm:.4}") data-interference=format!("{inter:.4}")>
                        <span class="norm-label">{format!("{}", i + 1)}</span>
                        <span class="norm-bar"><span style=format!("width: {:.1}%; background: {colour}", 100.0 * norm / max)></span></span>
                        <span class="norm-value">{format!("{norm:.2}")}</span>
                        <span class="norm-value muted">{format!("{inter:.2}")}</span>
                    </div>
                }
            })
            .collect_view();
        Some(view! {
            <div class="norm-head small muted"><span>"feature"</span><span>"length ‖Wᵢ‖"</span><span>""</span><span>"shared"</span></div>
            <div class="norms" data-testid="norms">{rows}</div>
        })
    };
    view! {
        <section class="panel">
            <h3>"Lengths and sharing"</h3>
            <p class="small muted">"Bar: the length of Wᵢ (above 0.5 counts as represented). Colour and last column: how much feature i shares its dimensions with the others, Σⱼ≠ᵢ (Ŵᵢ·Wⱼ)²; blue is a dimension of its own, orange is heavily shared."</p>
            {norms_view}
        </section>
    }
}

/// WᵀW and b as heatmaps, and the loss curve.
#[component]
fn MatricesAndLoss(lab: Lab) -> impl IntoView {
    let toy = lab.toy;
    let gram_view = move || {
        let v = toy.get()?;
        let n = v.snapshot.config.n_features;
        let label = |i: usize| format!("{}", i + 1);
        let gram = Heat::diverging(&v.metrics.gram, (n, n), &label, &label);
        let b = Heat::diverging(&v.metrics.b, (n, 1), &label, &|_| "b".into());
        Some(view! {
            <div class="heatmaps">
                <figure><HeatGrid heat=gram testid="gram-heatmap" label="WᵀW" /><figcaption class="small muted">"WᵀW: the diagonal is each feature's squared length; off the diagonal, how much two features overlap."</figcaption></figure>
                <figure><HeatGrid heat=b testid="bias-heatmap" label="b, the bias" /><figcaption class="small muted">"b, the bias"</figcaption></figure>
            </div>
        })
    };

    let loss_view = move || toy.get().map(|v| loss_chart(&v.snapshot.losses));
    view! {
        <div class="toy-grid">
            <section class="panel">
                <h3>"WᵀW and b"</h3>
                {gram_view}
            </section>
            <section class="panel">
                <h3>"Loss"</h3>
                <p class="small muted">"Importance-weighted squared error, log scale."</p>
                {loss_view}
            </section>
        </div>
    }
}

/// The phase diagram: a sweep of 12 × 12 cells in the worker, as a job of its own. Starting it stops the model's
/// training, and Train waits for it, so the sweep has the worker to itself.
#[component]
fn PhasePanel(lab: Lab) -> impl IntoView {
    let (trainer, jobs) = (lab.trainer, lab.sweep);
    let total_cells = PhaseSpec::default().cells();
    let phase_cells: RwSignal<Vec<Option<PhaseCell>>> = RwSignal::new(vec![None; total_cells]);
    let phase_secs: RwSignal<Option<f64>> = RwSignal::new(None);
    let phase_error: RwSignal<Option<String>> = RwSignal::new(None);
    let done = move || phase_cells.with(|c| c.iter().filter(|x| x.is_some()).count());

    let sweep = move |_| {
        lab.jobs.cancel();
        phase_cells.set(vec![None; total_cells]);
        phase_secs.set(None);
        phase_error.set(None);
        jobs.spawn("sweeping", move |job| async move {
            let (spec, t0) = (PhaseSpec::default(), now_ms());
            let requests = (0..total_cells).map(|i| cell_request(&spec, i));
            let place = |reply| {
                if let LabReply::PhaseCell { cell } = reply {
                    let i = cell_index(&spec, &cell);
                    phase_cells.update(|c| c[i] = Some(cell));
                    job.report("sweeping", done() as f32 / total_cells as f32);
                }
            };
            match trainer.ask_each(&job, requests, place).await {
                Some(Ok(())) => phase_secs.set(Some((now_ms() - t0) / 1000.0)),
                Some(Err(message)) => phase_error.set(Some(message)),
                None => {}
            }
        });
    };

    let phase_view = move || {
        let cells = phase_cells.get();
        let (done, total) = (cells.iter().filter(|c| c.is_some()).count(), cells.len());
        let heat = phase_heat(&PhaseSpec::default(), &cells);
        let secs = phase_secs.get();
        view! {
            <div class="phase-wrap" data-testid="phase-grid" data-done=done data-total=total data-seconds=secs.map(|s| format!("{s:.2}")).unwrap_or_default()>
                <HeatGrid heat=heat cell=28.0 x_title="relative importance of the extra feature →" y_title="density"
                    label="phase diagram: what becomes of the extra feature at each density and relative importance" />
            </div>
        }
    };

    view! {
        <section class="panel">
            <h3>"Phase diagram: when does a feature get its own dimension?"</h3>
            <p class="small muted">"Two features, one hidden dimension. Feature 1 has importance 1; the extra feature's importance runs along the x axis, and both have the density on the y axis (dense at the top). Each cell trains four small models and keeps the best: grey, the extra feature is ignored; blue, it gets the dimension to itself; orange, both share it in superposition."</p>
            <div class="toy-buttons">
                <button data-testid="sweep" on:click=sweep disabled=move || jobs.busy() || !trainer.ready()>"Run the 12 × 12 sweep"</button>
                <span class="small" data-testid="sweep-summary">{move || sweep_summary(done(), total_cells, jobs.busy(), phase_secs.get())}</span>
            </div>
            {progress_bar(jobs, "sweep", || {})}
            {move || phase_error.get().map(|e| view! { <p class="input-error" role="alert">{e}</p> })}
            {phase_view}
            <p class="small legend"><span class="swatch" style="background:#cbd5e1"></span>" ignored "<span class="swatch" style="background:#2563eb"></span>" own dimension "<span class="swatch" style="background:#d97706"></span>" superposed"</p>
        </section>
    }
}
