//! The input: the drawing pad with a random test image as the alternative, and what the network sees and
//! answers (the 28x28 image it reads, the hovered cell's receptive field over it, the class probabilities).
use leptos::prelude::*;

use super::paint::{paint_id, Colour};
use super::Lab;
use crate::app::core::browser::now_ms;
use crate::app::core::export::{image_table, table_exports, CanvasExport};
use crate::app::labs::vision::analysis::receptive_box;
use crate::app::labs::vision::draw::{DrawPad, PAD};
use crate::app::labs::vision::{class_label, probs_table};
use crate::lens::cnn::mnist::preprocess_drawing;

#[component]
pub fn InputPanel(lab: Lab) -> impl IntoView {
    let on_draw = Callback::new(move |ink: Option<Vec<f32>>| match ink {
        None => {
            lab.drawn.set(None);
            if lab.sample.get_untracked().is_none() {
                lab.input_note.set(Some("Draw a digit: the pad is empty.".into()));
            }
        }
        Some(ink) => match preprocess_drawing(&ink, PAD as usize, PAD as usize) {
            Ok(img) => {
                if lab.sample.get_untracked().is_some() {
                    lab.sample.set(None);
                }
                lab.input_note.set(None);
                lab.drawn.set(Some(img));
            }
            Err(e) => lab.input_note.set(Some(format!("{e}"))),
        },
    });
    let pick_sample = move |_| {
        if let Some(m) = lab.model.get_untracked() {
            let seed = (now_ms() as u64).wrapping_mul(2654435761);
            lab.sample.set(Some((seed % m.samples.len() as u64) as usize));
            lab.input_note.set(None);
        }
    };
    let sample_label = move || {
        let (i, m) = (lab.sample.get()?, lab.loaded()?);
        let (src, label) = (m.samples.source_index.get(i)?, m.samples.labels.get(i)?);
        Some(
            view! { <span class="muted" data-testid="sample-label">{format!(" test image #{src} · labelled {label}")}</span> },
        )
    };
    // The input's own problem first; else why the model could not read it (the last analysis stays shown).
    let note = move || {
        let error = lab.analysis.with(|a| a.error.clone());
        let n = lab.input_note.get().or_else(|| error.map(|e| format!("The model could not read this image: {e}")))?;
        Some(view! { <p class="input-error" data-testid="input-note" role="status">{n}</p> })
    };
    view! {
        <section class="panel">
            <h3>"Draw a digit"</h3>
            <DrawPad on_change=on_draw label="Drawing pad: draw a digit from 0 to 9".to_string() />
            <p><button data-testid="sample-btn" on:click=pick_sample>"Random test image"</button>{sample_label}</p>
            {note}
        </section>
    }
}

/// The image the network reads, the hovered cell's receptive field, and its answer.
#[component]
pub fn SeenPanel(lab: Lab) -> impl IntoView {
    Effect::new(move |_| {
        if let Some(a) = lab.current() {
            paint_id("vis-input", 28, &a.image, Colour::Gray);
        }
    });
    let input_csv = Callback::new(move |_| {
        let a = untrack(move || lab.current())?;
        Some(image_table("the 28 x 28 image the network reads: 0 is background, 1 is ink", (28, 28), &a.image))
    });
    let rf_box = move || {
        let (cell, m) = (lab.hover.get()?, lab.loaded()?);
        let ((y0, x0, y1, x1), style) = receptive_box(&m.model.cfg, cell);
        Some(
            view! { <div class="rf-box" data-testid="rf-box" data-rf=format!("{y0},{x0},{y1},{x1}") style=style></div> },
        )
    };
    view! {
        <section class="panel">
            <h3>"What the network sees"</h3>
            <div class="vis-input-wrap">
                <canvas id="vis-input" class="vis-input" data-testid="vis-input" width="28" height="28" role="img"
                    aria-label="the 28 by 28 image the network reads"></canvas>
                {rf_box}
            </div>
            <CanvasExport selector="#vis-input" what="input image" table=input_csv />
            <p class="muted small" data-testid="seen-caption">"28×28 grey levels, as MNIST made its images: a drawing is cropped, scaled to 20 px and centred by its centre of mass; a test image comes so already."</p>
            <Probabilities lab=lab />
            // The answer, said again in a live region that stays in place, so a screen reader announces each new one.
            <p class="sr-only" role="status">{move || {
                let (a, m) = (lab.current()?, lab.loaded()?);
                let best = a.predicted();
                Some(format!("The network reads {} ({:.0}% sure)", class_label(&m.model.cfg.labels, best), 100.0 * a.probs[best]))
            }}</p>
            {move || lab.current().is_none().then(|| view! { <p class="muted" data-testid="empty-hint">"Draw a digit or pick a test image to see the network's answer."</p> })}
        </section>
    }
}

/// The prediction and a bar per class.
#[component]
fn Probabilities(lab: Lab) -> impl IntoView {
    move || {
        let (a, m) = (lab.current()?, lab.loaded()?);
        let labels = &m.model.cfg.labels;
        let best = a.predicted();
        let rows = a
            .probs
            .iter()
            .enumerate()
            .map(|(c, &p)| {
                view! {
                    <div class="prob-row" class:best=c == best data-testid="prob" data-class=c data-p=format!("{p:.4}")>
                        <span class="prob-label">{class_label(labels, c)}</span>
                        <span class="prob-bar"><span style=format!("width: {:.1}%", 100.0 * p)></span></span>
                        <span class="prob-value">{format!("{:.1}%", 100.0 * p)}</span>
                    </div>
                }
            })
            .collect_view();
        Some(view! {
            <p class="prediction" data-testid="prediction" data-class=best>
                "The network reads " <strong>{class_label(labels, best)}</strong>
                {format!(" ({:.0}% sure)", 100.0 * a.probs[best])}
            </p>
            <div class="probs" data-testid="probs">{rows}</div>
            {table_exports(probs_table(labels, &a.probs), "class probabilities")}
        })
    }
}
