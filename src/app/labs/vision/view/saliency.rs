//! Saliency: which pixels matter for the predicted class, by the chosen method, and the weight-randomisation
//! sanity check. Each request (image, method, level) is a job computed in slices between frames, with a
//! progress bar and Cancel; a newer request replaces an older one, and the last map stays on screen meanwhile.
use leptos::prelude::*;

use crate::app::core::export::{image_table, CanvasExport};

use super::paint::{paint_id, Colour};
use super::Lab;
use crate::app::core::browser::now_ms;
use crate::app::core::frame::progress_bar;
use crate::app::core::jobs::Jobs;
use crate::app::labs::vision::saliency::{describe, shown_note, SaliencyKey, SaliencyOutcome, SaliencyWork};
use crate::app::labs::vision::{max_abs, Method, METHODS};

/// How long a request waits before it starts: a stroke makes a new image every frame, and a map is only worth
/// computing once the drawing pauses.
const SETTLE_MS: u32 = 150;

/// A finished map and the main-thread time it took.
type Shown = (SaliencyOutcome, f64);

/// Starts the job for `key`, replacing any older one. `shown` and `error` get its result.
fn request(lab: Lab, jobs: Jobs, key: SaliencyKey, shown: RwSignal<Option<Shown>>, error: RwSignal<Option<String>>) {
    let (Some(m), Some(a)) = (lab.model.get_untracked(), untrack(move || lab.current())) else { return };
    let reuse = shown.get_untracked().map(|(o, _)| o);
    jobs.spawn("computing the saliency map", move |job| async move {
        gloo_timers::future::TimeoutFuture::new(SETTLE_MS).await;
        if !job.alive() {
            return;
        }
        let mut work = match SaliencyWork::new(&m.model, &a.image, a.predicted(), key, reuse.as_ref()) {
            Ok(w) => w,
            Err(e) => return error.set(Some(e.to_string())),
        };
        let mut ms = 0.0;
        let step = || {
            let t0 = now_ms();
            let r = work.step();
            ms += now_ms() - t0;
            r
        };
        match job.sliced("computing the saliency map", step).await.map(|done| done.then(|| work.finish())) {
            Ok(Some(Ok(outcome))) => {
                shown.set(Some((outcome, ms)));
                error.set(None);
            }
            Ok(None) => {} // replaced, cancelled or left
            Ok(Some(Err(e))) | Err(e) => error.set(Some(format!("{e}. The last map stays on screen."))),
        }
    });
}

#[component]
pub fn SaliencyPanel(lab: Lab) -> impl IntoView {
    let jobs = Jobs::new();
    let shown: RwSignal<Option<Shown>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let key = Memo::new(move |_| {
        let image = lab.analysis.with(|a| a.good.as_ref().map(|_| a.rev))?;
        Some(SaliencyKey { image, method: lab.method.get(), sanity: lab.sanity.get() })
    });
    // The job runner follows the request: a new image, method or level starts a job.
    Effect::new(move |_| {
        if let Some(k) = key.get() {
            request(lab, jobs, k, shown, error);
        }
    });
    Effect::new(move |_| {
        shown.with(|s| {
            if let Some((o, _)) = s {
                paint_id("saliency-map", o.map.side, &o.map.map, Colour::Diverging(max_abs(&o.map.map)));
            }
        })
    });
    let info = move || {
        let (o, ms) = shown.get()?;
        let s = &o.map;
        Some(view! {
            <p data-testid="saliency-info" data-sum=format!("{:.5}", s.map.iter().sum::<f32>())
                data-value=format!("{:.5}", s.value) data-baseline=s.baseline_value.map(|b| format!("{b:.5}")).unwrap_or_default()>
                {describe(&o, ms)}
            </p>
        })
    };
    let saliency_csv = Callback::new(move |_| {
        shown.with_untracked(|s| {
            let (o, _) = s.as_ref()?;
            let caption =
                format!("saliency map ({}): each pixel's attribution to the predicted class", o.key.method.label());
            Some(image_table(&caption, (o.map.side, o.map.side), &o.map.map))
        })
    });
    let note = move || shown_note(shown.with(|s| s.as_ref().map(|(o, _)| o.key)), key.get(), jobs.busy());
    view! {
        <section class="panel">
            <h3>"Saliency: which pixels matter " <span class="badge extra-badge">"beyond the chapter"</span></h3>
            <SaliencyControls lab=lab />
            {progress_bar(jobs, "saliency", || {})}
            <div class="saliency-row">
                <canvas id="saliency-map" class="saliency-map" data-testid="saliency-map" width="28" height="28"></canvas>
                <div class="small">
                    {info}
                    {move || note().map(|n| view! { <p class="muted" data-testid="saliency-stale">{n}</p> })}
                    {move || error.get().map(|e| view! { <p class="input-error" data-testid="saliency-error" role="alert">{e}</p> })}
                    <p class="muted">"Red pixels push the predicted class up, blue push it down."</p>
                </div>
            </div>
            <CanvasExport selector="#saliency-map" what="saliency map" table=saliency_csv />
        </section>
    }
}

/// The method and the sanity level, both kept in the URL.
#[component]
fn SaliencyControls(lab: Lab) -> impl IntoView {
    let layer_names = move || lab.loaded().map(|m| m.model.layer_names()).unwrap_or_default();
    let levels = move || {
        let names = layer_names().into_iter().rev().enumerate();
        names
            .map(|(i, n)| {
                let level = i + 1;
                view! { <option value=level.to_string() selected=move || lab.sanity.get() == level>{format!("randomised down to {n}")}</option> }
            })
            .collect_view()
    };
    view! {
        <div class="saliency-controls">
            <label>"Method "
                <select data-testid="saliency-method" on:change=move |ev| lab.method.set(Method::from_key(&event_target_value(&ev)).unwrap_or(Method::Gradient))>
                    {METHODS.iter().map(|&(k, m)| view! { <option value=k selected=move || lab.method.get() == m>{m.label()}</option> }).collect_view()}
                </select>
            </label>
            <label>" Sanity check: "
                <select data-testid="sanity-select" on:change=move |ev| lab.sanity.set(event_target_value(&ev).parse().unwrap_or(0))>
                    <option value="0" selected=move || lab.sanity.get() == 0>"trained weights"</option>
                    {levels}
                </select>
            </label>
        </div>
    }
}
