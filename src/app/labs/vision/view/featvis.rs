//! Feature visualization: gradient ascent on the image, from noise, to maximise the channel in focus or a
//! class logit, with regularisers to toggle. The run is a job that animates the image a slice at a time; before
//! any run the shipped atlas's picture of the channel is shown.
use leptos::prelude::*;

use crate::app::core::export::{image_table, CanvasExport};

use super::paint::{paint_id, Colour};
use super::Lab;
use crate::app::core::jobs::Jobs;
use crate::app::labs::vision::features::{caption, picture, target_label, FvControls, FvPicture, FvRun, FV_STEPS};
use crate::lens::methods::featvis::FeatureVis;

const PHASE: &str = "optimising the image";

#[component]
pub fn FeatureVisPanel(lab: Lab) -> impl IntoView {
    let jobs = Jobs::new();
    let run: RwSignal<Option<FvRun>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let target = Memo::new(move |_| lab.fv.get().target(lab.focus.get()));
    let shown = Memo::new(move |_| {
        let m = lab.loaded()?;
        Some(picture(run.get().as_ref(), target.get(), m.atlas.as_ref().ok(), m.model.cfg.image_size))
    });
    Effect::new(move |_| {
        if let Some(p) = shown.get() {
            paint_id("fv-image", 28, p.pixels(), Colour::Gray);
        }
    });

    let start = move || {
        let Some(m) = lab.model.get_untracked() else { return };
        let goal = target.get_untracked();
        let mut fv = match FeatureVis::new(&m.model, goal, lab.fv.get_untracked().settings()) {
            Ok(fv) => fv,
            Err(e) => return error.set(Some(e.to_string())),
        };
        error.set(None);
        run.set(Some(FvRun::new(&fv)));
        jobs.spawn(PHASE, move |job| async move {
            // Every slice in a task of its own, the click's first, so the browser paints the image between
            // them. A new target ends the run.
            while fv.steps_done() < FV_STEPS
                && job.pause(PHASE, fv.steps_done() as f32 / FV_STEPS as f32).await
                && target.get_untracked() == goal
            {
                let sliced = job.slice(|| fv.step().map(|_| fv.steps_done() >= FV_STEPS));
                run.update(|r| {
                    if let Some(r) = r {
                        r.update(&fv);
                        r.error = sliced
                            .as_ref()
                            .err()
                            .map(|e| format!("The optimisation diverged ({e}). Reset and try gentler settings."));
                    }
                });
                if sliced.is_err() {
                    return;
                }
            }
        });
    };

    let fv_csv = Callback::new(move |_| {
        shown.with_untracked(|p| {
            let caption =
                format!("feature visualization of {}: the image's pixels", target_label(target.get_untracked()));
            Some(image_table(&caption, (28, 28), p.as_ref()?.pixels()))
        })
    });
    let best_sample = move || {
        let (l, c) = lab.focus.get();
        lab.layer_means(l)?.iter().filter_map(|row| row.get(c).copied()).reduce(f32::max)
    };
    // The run on screen, if it is one (not the atlas's preview).
    let on_run = move |f: fn(&FvRun) -> String| {
        move || shown.with(|p| p.as_ref().and_then(FvPicture::run).map(f)).unwrap_or_default()
    };
    view! {
        <div>
            <h4>"Feature visualization"</h4>
            <p class="muted small">"Gradient ascent on the image, from noise, to maximise " {move || target_label(target.get())} "."</p>
            <canvas id="fv-image" class="fv-image" data-testid="fv-image" width="28" height="28"></canvas>
            <CanvasExport selector="#fv-image" what="feature visualization" table=fv_csv />
            <p class="small" data-testid="fv-activation" data-value=on_run(|r| format!("{:.4}", r.activation))
                data-start=on_run(|r| format!("{:.4}", r.start)) data-steps=on_run(|r| r.steps.to_string())>
                {move || shown.with(|p| p.as_ref().map(|p| caption(p, best_sample())))}
            </p>
            <div class="fv-controls">
                {move || if jobs.busy() {
                    view! { <button data-testid="fv-stop" on:click=move |_| jobs.cancel()>"Stop"</button> }.into_any()
                } else {
                    view! { <button data-testid="fv-run" class="primary" on:click=move |_| start()>"Visualize"</button> }.into_any()
                }}
                <Regularisers lab=lab />
            </div>
            {move || error.get().or_else(|| shown.with(|p| p.as_ref().and_then(FvPicture::run).and_then(|r| r.error.clone())))
                .map(|e| view! { <p class="input-error" data-testid="fv-error" role="alert">{e}</p> })}
        </div>
    }
}

/// The regularisers' switches and the target menu, all kept in the URL.
#[component]
fn Regularisers(lab: Lab) -> impl IntoView {
    let switch = |testid: &'static str,
                  label: &'static str,
                  get: fn(&FvControls) -> bool,
                  set: fn(&mut FvControls, bool)| {
        view! {
            <label><input type="checkbox" data-testid=testid prop:checked=move || lab.fv.with(get)
                on:change=move |ev| { let on = event_target_checked(&ev); lab.fv.update(|c| set(c, on)) } />{label}</label>
        }
    };
    let classes = move || lab.loaded().map_or(10, |m| m.model.cfg.num_classes);
    view! {
        {switch("fv-jitter", " jitter", |c| c.jitter, |c, on| c.jitter = on)}
        {switch("fv-l2", " L2 decay", |c| c.l2, |c, on| c.l2 = on)}
        {switch("fv-tv", " total variation", |c| c.tv, |c, on| c.tv = on)}
        {switch("fv-blur", " blur", |c| c.blur, |c, on| c.blur = on)}
        <label>" target "
            <select data-testid="fv-target" on:change=move |ev| { let v = event_target_value(&ev); lab.fv.update(|c| c.class = v.parse().ok()) }>
                <option value="channel" selected=move || lab.fv.get().class.is_none()>"this channel"</option>
                {move || (0..classes()).map(|c| view! {
                    <option value=c.to_string() selected=move || lab.fv.get().class == Some(c)>{format!("class {c} logit")}</option>
                }).collect_view()}
            </select>
        </label>
    }
}
