//! The toy sparse-autoencoder tab of 9.2.5: an SAE trained in the worker on the toy model's hidden layer, where
//! the true features are known, so recovery can be checked. One job runner drives the worker
//! (`core::trainer::Trainer`): first the toy model's training and the SAE's building, then each press of Train;
//! what the tab says and when it may train are `super`'s plain rules.
use std::sync::Arc;

use leptos::prelude::*;

use super::{best_matches, dead_text, toy_tab_status, ToyTabStep, DICT_SIZES, L1_RANGE, SAE_BUDGET, SAE_TOY_STEPS};
use crate::app::core::charts::{Heat, HeatGrid};
use crate::app::core::frame::progress_bar;
use crate::app::core::jobs::{Job, Jobs};
use crate::app::core::trainer::*;
use crate::lens::methods::superposition::sae::{SaeConfig, SaeMetrics, SaeSnapshot, RECOVERY_COSINE};
use crate::lens::toy::model::ToyConfig;
use crate::lens::toy::protocol::{LabReply, LabRequest};

#[derive(Clone, Debug, PartialEq)]
struct SaeView {
    snapshot: SaeSnapshot,
    metrics: SaeMetrics,
}

/// What the panels share: the worker and its job runner, the toy model's progress, the SAE's settings and the
/// newest SAE the worker sent.
#[derive(Clone, Copy)]
struct Tab {
    trainer: Trainer,
    jobs: Jobs,
    toy_step: RwSignal<usize>,
    toy_ready: RwSignal<bool>,
    l1: RwSignal<f32>,
    d_sae: RwSignal<usize>,
    sae: RwSignal<Option<Arc<SaeView>>>,
    /// Counts the SAEs drawn (`data-rev`).
    rev: RwSignal<u32>,
    error: RwSignal<Option<String>>,
}

impl Tab {
    fn show(self, reply: LabReply) {
        match reply {
            LabReply::Toy { snapshot, .. } => self.toy_step.set(snapshot.step),
            LabReply::Sae { snapshot, metrics } => {
                self.sae.set(Some(Arc::new(SaeView { snapshot, metrics })));
                self.rev.update(|r| *r += 1);
            }
            _ => {}
        }
    }

    fn diverged(self) -> Option<String> {
        self.sae.with(|v| v.as_ref().and_then(|v| diverged_message(&v.snapshot.status)))
    }

    /// Starts `step` as the tab's job; a newer one replaces it.
    fn start(self, step: ToyTabStep) {
        self.error.set(None);
        self.jobs.spawn(step.phase(), move |job| async move {
            let done = match step {
                ToyTabStep::FinishToy => self.finish_toy(&job).await,
                ToyTabStep::BuildSae => self.build_sae(&job).await,
                ToyTabStep::TrainSae => self.train_sae(&job).await,
            };
            if let Some(Err(message)) = done {
                self.error.set(Some(message));
            }
        });
    }

    /// Trains the toy model of 9.2.4's first picture (five features, two dimensions, S = 0.9) up to
    /// `SAE_TOY_STEPS`, from where it stopped, then builds the SAE on it.
    async fn finish_toy(self, job: &Job) -> Option<Result<(), String>> {
        if self.toy_step.get_untracked() == 0 {
            match self.trainer.ask(job, &LabRequest::NewToy { config: ToyConfig::default() }).await? {
                Ok(reply) => self.show(reply),
                Err(message) => return Some(Err(message)),
            }
        }
        let left = SAE_TOY_STEPS.saturating_sub(self.toy_step.get_untracked());
        let steps = |steps| LabRequest::StepToy { steps };
        match self.trainer.train(job, ToyTabStep::FinishToy.phase(), left, steps, move |r| self.show(r)).await? {
            Ok(Ended::Finished) => {
                self.toy_ready.set(true);
                self.build_sae(job).await
            }
            Ok(Ended::Diverged) => Some(Err("The toy model diverged; reload the page to start again.".into())),
            Err(message) => Some(Err(message)),
        }
    }

    /// A new, untrained SAE with the settings on screen.
    async fn build_sae(self, job: &Job) -> Option<Result<(), String>> {
        let config =
            SaeConfig { l1: self.l1.get_untracked(), d_sae: self.d_sae.get_untracked(), ..SaeConfig::default() };
        let built = self.trainer.ask(job, &LabRequest::NewSae { config, toy: None }).await?;
        Some(built.map(|reply| self.show(reply)))
    }

    async fn train_sae(self, job: &Job) -> Option<Result<(), String>> {
        let steps = |steps| LabRequest::StepSae { steps };
        let ended =
            self.trainer.train(job, ToyTabStep::TrainSae.phase(), SAE_BUDGET, steps, move |r| self.show(r)).await?;
        Some(ended.map(|_| ()))
    }
}

#[component]
pub fn SaeLab(l1: RwSignal<f32>, d_sae: RwSignal<usize>) -> impl IntoView {
    let tab = Tab {
        trainer: Trainer::new(),
        jobs: Jobs::new(),
        toy_step: RwSignal::new(0),
        toy_ready: RwSignal::new(false),
        l1,
        d_sae,
        sae: RwSignal::new(None),
        rev: RwSignal::new(0),
        error: RwSignal::new(None),
    };
    tab.start(ToyTabStep::FinishToy);
    view! {
        <div class="toy-lab sae-lab" data-testid="sae-lab">
            {worker_alert(tab.trainer, "sparse-autoencoder lab")}
            <SaeControls tab=tab />
            <section class="panel">
                <h3>"How good is the dictionary?"</h3>
                <SaeMetricsView tab=tab />
            </section>
            <SaeCharts tab=tab />
            <aside class="panel planned-note" data-testid="sae-lm-note">
                "On the toy model we know the true features, which is exactly what a real model never gives us. The other tab applies the same method to the character-level language model, where the only checks are the ones you make by reading."
            </aside>
        </div>
    }
}

/// The SAE's settings (a change builds a new SAE once the toy model is ready), Train / Stop / Reset, the status
/// line and the run's messages.
#[component]
fn SaeControls(tab: Tab) -> impl IntoView {
    let rebuild = move || {
        if tab.toy_ready.get_untracked() {
            tab.start(ToyTabStep::BuildSae);
        }
    };
    let busy = move || tab.jobs.busy();
    let train = move |_| {
        if tab.diverged().is_none() {
            tab.start(ToyTabStep::of(tab.toy_ready.get_untracked(), tab.sae.with_untracked(Option::is_some)));
        }
    };
    let status = move || {
        let sae = tab.sae.with(|v| v.as_ref().map(|v| (v.snapshot.step, v.snapshot.loss)));
        toy_tab_status(tab.toy_step.get(), tab.toy_ready.get(), sae, busy(), tab.trainer.rate.get())
    };
    let step = Signal::derive(move || tab.sae.with(|v| v.as_ref().map_or(0, |v| v.snapshot.step)));
    let options =
        DICT_SIZES.iter().map(|&(n, label)| view! { <option value=n.to_string()>{label}</option> }).collect_view();
    view! {
        <section class="panel">
            <h3>"A sparse autoencoder on the toy model's hidden layer"</h3>
            <p class="small muted">"The toy model squeezes five sparse features into two dimensions (a pentagon, as in 9.2.4). The SAE sees only those two numbers and must find the five directions again: f = ReLU(W_enc (h − b_dec) + b_enc), ĥ = W_dec f + b_dec, with an L1 penalty on f."</p>
            <div class="toy-controls">
                {slider("L1 coefficient λ", tab.l1, L1_RANGE, 3, "l1", Commit::OnRelease, rebuild)}
                <label>"Dictionary size "
                    <select data-testid="d-sae" prop:value=move || tab.d_sae.get().to_string() on:change=move |ev| {
                        if let Ok(v) = event_target_value(&ev).parse::<usize>() {
                            tab.d_sae.set(v);
                            rebuild();
                        }
                    }>
                        {options}
                    </select>
                </label>
            </div>
            <div class="toy-buttons">
                <button data-testid="train" on:click=train disabled=move || busy() || tab.diverged().is_some() || !tab.trainer.ready()>"Train"</button>
                <button data-testid="stop" on:click=move |_| tab.jobs.cancel() disabled=move || !busy()>"Stop"</button>
                <button data-testid="reset" on:click=move |_| rebuild() disabled=move || !tab.toy_ready.get()>"Reset"</button>
                <RunStatus trainer=tab.trainer step=step training=Signal::derive(busy) rev=tab.rev text=Signal::derive(status) />
            </div>
            {progress_bar(tab.jobs, "train", || {})}
            {run_messages(tab.error, move || tab.diverged())}
        </section>
    }
}

/// Recovery, reconstruction error, FVU, L0 and dead latents.
#[component]
fn SaeMetricsView(tab: Tab) -> impl IntoView {
    move || {
        let v = tab.sae.get()?;
        let m = &v.metrics;
        let counted = m.counted.iter().filter(|c| **c).count();
        Some(view! {
            <div class="sae-metrics">
                <div class="metric" data-testid="recovery" data-recovery=format!("{:.4}", m.recovery) data-recovered=m.recovered data-counted=counted>
                    <span class="metric-value">{format!("{:.0}%", 100.0 * m.recovery)}</span>
                    <span class="metric-label">{format!("recovery: {} of {counted} true features have a latent with cosine ≥ {RECOVERY_COSINE}", m.recovered)}</span>
                </div>
                <div class="metric" data-testid="mse" data-mse=format!("{:.6}", m.mse)>
                    <span class="metric-value">{format!("{:.4}", m.mse)}</span>
                    <span class="metric-label">"reconstruction error (MSE)"</span>
                </div>
                <div class="metric" data-testid="fvu">
                    <span class="metric-value">{m.fvu.map(|f| format!("{:.1}%", 100.0 * f)).unwrap_or_else(|| "–".into())}</span>
                    <span class="metric-label">"variance unexplained (FVU)"</span>
                </div>
                <div class="metric" data-testid="l0" data-l0=format!("{:.3}", m.l0)>
                    <span class="metric-value">{format!("{:.2}", m.l0)}</span>
                    <span class="metric-label">"L0: latents active per input"</span>
                </div>
                <div class="metric" data-testid="dead" data-dead=m.dead.len()>
                    <span class="metric-value">{dead_text(&m.dead)}</span>
                    <span class="metric-label">"dead latents (never fire)"</span>
                </div>
            </div>
        })
    }
}

/// The latents against the true features, and the SAE's loss curve.
#[component]
fn SaeCharts(tab: Tab) -> impl IntoView {
    let sae = tab.sae;
    let cosine_view = move || {
        let v = sae.get()?;
        let m = &v.metrics;
        let (d, n) = (v.snapshot.config.d_sae, v.snapshot.toy.config.n_features);
        let best = best_matches(m);
        let heat = Heat {
            outlined: best,
            ..Heat::diverging(&m.cosine, (d, n), &|r| format!("L{}", r + 1), &|c| format!("f{}", c + 1))
        };
        let label = "cosine between each latent's decoder direction and each true feature's direction";
        Some(view! { <HeatGrid heat=heat testid="cosine-heatmap" label=label /> })
    };
    let loss_view = move || sae.get().map(|v| loss_chart(&v.snapshot.losses));
    view! {
        <div class="toy-grid">
            <section class="panel">
                <h3>"Latents against the true features"</h3>
                <p class="small muted">"Cosine between each latent's decoder direction (rows) and each true feature's direction Wᵢ (columns). A framed cell is the best match of a recovered feature."</p>
                {cosine_view}
            </section>
            <section class="panel">
                <h3>"SAE loss"</h3>
                <p class="small muted">"Reconstruction error plus λ times the L1 norm of the latents, log scale."</p>
                {loss_view}
            </section>
        </div>
    }
}
