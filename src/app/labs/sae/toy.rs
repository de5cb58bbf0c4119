//! The toy sparse-autoencoder tab of 9.2.5: an SAE trained in the worker on the toy model's hidden layer,
//! where the true features are known, so recovery can be checked.
use std::sync::Arc;

use leptos::prelude::*;

use crate::app::core::format::fmt_int;
use crate::app::core::trainer::*;
use crate::app::core::worker::{self, Kind, WorkerEvent};
use crate::lens::methods::superposition::sae::{SaeConfig, SaeMetrics, SaeSnapshot, RECOVERY_COSINE};
use crate::lens::toy::model::ToyConfig;
use crate::lens::toy::protocol::{LabReply, LabRequest};

#[derive(Clone, Debug, PartialEq)]
struct SaeView {
    snapshot: SaeSnapshot,
    metrics: SaeMetrics,
}

#[component]
pub fn SaeLab() -> impl IntoView {
    let state = RwSignal::new(WorkerState::Starting);
    let toy_step = RwSignal::new(0usize);
    let toy_ready = RwSignal::new(false);
    let l1 = RwSignal::new(SaeConfig::default().l1);
    let d_sae = RwSignal::new(SaeConfig::default().d_sae);
    let sae: RwSignal<Option<Arc<SaeView>>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let rev = RwSignal::new(0u32);
    let pending: StoredValue<Option<Arc<SaeView>>> = StoredValue::new(None);
    let toy_pump: StoredValue<Option<Pump>> = StoredValue::new(None);
    let sae_pump: StoredValue<Option<Pump>> = StoredValue::new(None);
    let tp = move || toy_pump.get_value().expect("pump");
    let sp = move || sae_pump.get_value().expect("pump");

    let new_sae = move || {
        let config = SaeConfig { l1: l1.get_untracked(), d_sae: d_sae.get_untracked(), ..SaeConfig::default() };
        error.set(None);
        sp().rebuild(Kind::NewSae, LabRequest::NewSae { config, toy: None });
    };
    let show = move |v: Arc<SaeView>| {
        sae.set(Some(v));
        rev.update(|r| *r += 1);
    };

    let handler = move |ev: WorkerEvent| match ev {
        WorkerEvent::Ready => {
            state.set(WorkerState::Ready);
        }
        WorkerEvent::Failed(msg) => {
            state.set(WorkerState::Failed(msg));
            tp().stop();
            sp().stop();
        }
        WorkerEvent::Reply(tag, reply) => match (tag.kind, *reply) {
            (Kind::NewToy | Kind::StepToy, LabReply::Toy { snapshot, .. }) => {
                let t = tp();
                if tag.gen != t.gen.get_value() {
                    return;
                }
                toy_step.set(snapshot.step);
                if tag.kind == Kind::StepToy {
                    t.on_step(snapshot.step, diverged_message(&snapshot.status).is_some());
                }
                if snapshot.step >= SAE_TOY_STEPS && !toy_ready.get_untracked() {
                    toy_ready.set(true);
                    new_sae();
                }
            }
            (Kind::NewSae | Kind::StepSae, LabReply::Sae { snapshot, metrics }) => {
                let p = sp();
                if tag.gen != p.gen.get_value() {
                    return;
                }
                let step = snapshot.step;
                let diverged = diverged_message(&snapshot.status).is_some();
                let v = Arc::new(SaeView { snapshot, metrics });
                let draw = if tag.kind == Kind::StepSae { p.on_step(step, diverged) } else { true };
                if draw {
                    pending.set_value(None);
                    p.drew();
                    show(v);
                } else {
                    pending.set_value(Some(v));
                }
            }
            (kind, LabReply::Error { message }) => {
                if kind == Kind::StepSae {
                    sp().on_step(0, true);
                }
                sp().stop();
                tp().stop();
                error.set(Some(message));
            }
            _ => {}
        },
    };
    let conn = worker::connect(handler);
    toy_pump.set_value(Some(Pump::new(conn, Kind::StepToy)));
    sae_pump.set_value(Some(Pump::new(conn, Kind::StepSae)));
    on_cleanup(move || worker::disconnect(conn));
    Effect::new(move |_| {
        if !sp().training.get() {
            if let Some(v) = pending.get_value() {
                pending.set_value(None);
                show(v);
            }
        }
    });
    // First the toy model of 9.2.4's first picture (five features, two dimensions, S = 0.9).
    tp().rebuild(Kind::NewToy, LabRequest::NewToy { config: ToyConfig::default() });
    tp().start(0, SAE_TOY_STEPS);

    let training = move || sp().training.get();
    let train = move |_| {
        if let Some(v) = sae.get_untracked() {
            if diverged_message(&v.snapshot.status).is_none() {
                sp().start(v.snapshot.step, SAE_BUDGET);
            }
        }
    };
    let stop = move |_| sp().stop();
    let reset = move |_| new_sae();

    let status_text = move || {
        if let WorkerState::Failed(m) = state.get() {
            return format!("The lab cannot train: {m}.");
        }
        if !toy_ready.get() {
            return format!(
                "Training the toy model first (five features in two dimensions): step {} of {}…",
                fmt_int(toy_step.get()),
                fmt_int(SAE_TOY_STEPS)
            );
        }
        let Some(v) = sae.get() else { return "Building the sparse autoencoder…".into() };
        let s = &v.snapshot;
        let loss = s.loss.map(|l| format!(" · loss {l:.5}")).unwrap_or_default();
        let what = if training() {
            let rate = sp().rate.get().map(|r| format!(" ({} steps/s)", fmt_int(r as usize))).unwrap_or_default();
            format!(" · training…{rate}")
        } else if s.step == 0 {
            " · untrained: press Train".to_string()
        } else {
            " · paused: Train goes on".to_string()
        };
        format!("SAE step {}{loss}{what}", fmt_int(s.step))
    };

    let metrics_view = move || {
        let v = sae.get()?;
        let m = &v.metrics;
        let counted = m.counted.iter().filter(|c| **c).count();
        let dead = if m.dead.is_empty() {
            "none".to_string()
        } else {
            format!("{} ({})", m.dead.len(), m.dead.iter().map(|d| (d + 1).to_string()).collect::<Vec<_>>().join(", "))
        };
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
                    <span class="metric-value">{dead}</span>
                    <span class="metric-label">"dead latents (never fire)"</span>
                </div>
            </div>
        })
    };

    let cosine_view = move || {
        let v = sae.get()?;
        let m = &v.metrics;
        let (d, n) = (v.snapshot.config.d_sae, v.snapshot.toy.config.n_features);
        let best: Vec<(usize, usize)> = m
            .best_latent
            .iter()
            .enumerate()
            .filter(|(i, _)| m.best_cosine[*i] >= RECOVERY_COSINE)
            .map(|(i, &l)| (l, i))
            .collect();
        let svg = heatmap_svg(
            &m.cosine,
            d,
            n,
            &|r| format!("L{}", r + 1),
            &|c| format!("f{}", c + 1),
            "cosine-heatmap",
            &best,
        );
        Some(view! { <div inner_html=svg></div> })
    };

    let loss_view = move || sae.get().map(|v| view! { <div inner_html=loss_svg(&v.snapshot.losses)></div> });

    view! {
        <div class="toy-lab sae-lab" data-testid="sae-lab">
            {move || match state.get() {
                WorkerState::Failed(m) => Some(view! { <p class="load-error" data-testid="load-error" role="alert">{format!("The sparse-autoencoder lab could not start its training worker: {m}. Reload the page to try again.")}</p> }),
                _ => None,
            }}
            <section class="panel">
                <h3>"A sparse autoencoder on the toy model's hidden layer"</h3>
                <p class="small muted">"The toy model squeezes five sparse features into two dimensions (a pentagon, as in 9.2.4). The SAE sees only those two numbers and must find the five directions again: f = ReLU(W_enc (h − b_dec) + b_enc), ĥ = W_dec f + b_dec, with an L1 penalty on f."</p>
                <div class="toy-controls">
                    {slider("L1 coefficient λ", l1, (0.0, 0.3, 0.005), 3, "l1", Commit::OnRelease, move || if toy_ready.get_untracked() { new_sae(); })}
                    <label>"Dictionary size "
                        <select data-testid="d-sae" prop:value=move || d_sae.get().to_string() on:change=move |ev| {
                            if let Ok(v) = event_target_value(&ev).parse::<usize>() {
                                d_sae.set(v);
                                if toy_ready.get_untracked() { new_sae(); }
                            }
                        }>
                            <option value="3">"3 latents (fewer than features)"</option>
                            <option value="5">"5 latents"</option>
                            <option value="10">"10 latents"</option>
                            <option value="20">"20 latents"</option>
                            <option value="40">"40 latents"</option>
                        </select>
                    </label>
                </div>
                <div class="toy-buttons">
                    <button data-testid="train" on:click=train disabled=move || training() || sae.get().is_none()>"Train"</button>
                    <button data-testid="stop" on:click=stop disabled=move || !training()>"Stop"</button>
                    <button data-testid="reset" on:click=reset disabled=move || !toy_ready.get()>"Reset"</button>
                    <p class="lab-status toy-status" data-testid="lab-status" data-rev=move || rev.get()
                        data-step=move || sae.get().map(|v| v.snapshot.step).unwrap_or(0)
                        data-training=move || if training() { "1" } else { "0" }
                        data-steps-per-s=move || sp().rate.get().map(|r| format!("{r:.0}")).unwrap_or_default()
                        role="status" aria-live="polite">{status_text}</p>
                </div>
                {move || error.get().map(|e| view! { <p class="input-error" data-testid="toy-error" role="alert">{e}</p> })}
                {move || sae.get().and_then(|v| diverged_message(&v.snapshot.status)).map(|d| view! { <p class="input-error" data-testid="diverged" role="alert">{d}</p> })}
            </section>
            <section class="panel">
                <h3>"How good is the dictionary?"</h3>
                {metrics_view}
            </section>
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
            <aside class="panel planned-note" data-testid="sae-lm-note">
                "On the toy model we know the true features, which is exactly what a real model never gives us. The other tab applies the same method to the character-level language model, where the only checks are the ones you make by reading."
            </aside>
        </div>
    }
}
