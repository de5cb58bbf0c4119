//! Every channel of every conv layer for the current image, as small heat maps; a click puts one in focus.
use leptos::html::Canvas;
use leptos::prelude::*;

use super::paint::{paint, Colour};
use super::Lab;
use crate::app::core::export::{images_table, CanvasExport};

#[component]
pub fn ActivationsPanel(lab: Lab) -> impl IntoView {
    let layers = move || {
        let m = lab.loaded()?;
        let cfg = &m.model.cfg;
        let views =
            (1..=cfg.n_conv()).map(|l| layer_grid(lab, l, cfg.channels[l - 1], cfg.conv_side(l))).collect_view();
        Some(views)
    };
    view! {
        <section class="panel">
            <h3>"Activations"</h3>
            <p class="muted small">"Every channel of every conv layer (after ReLU), dark violet = weak, yellow = strong. Click a channel (or Tab to it and press Enter) to study it below; hover its large map (or focus it and use the arrow keys) to see which input pixels that cell can see."</p>
            <div class="act-layers">{layers}</div>
        </section>
    }
}

/// One layer's `n` channels of `side` x `side`.
fn layer_grid(lab: Lab, l: usize, n: usize, side: usize) -> impl IntoView {
    let cells = (0..n).map(|c| channel_cell(lab, l, c)).collect_view();
    // Every channel's map in long form (channel, row, column, value), read when the button is pressed.
    let csv = Callback::new(move |_| {
        let a = untrack(move || lab.current())?;
        let maps: Vec<(String, (usize, usize), Vec<f32>)> =
            (0..n).filter_map(|c| a.map((l, c)).map(|(m, s, _)| (c.to_string(), (s, s), m.to_vec()))).collect();
        Some(images_table(&format!("conv{l}: every channel after ReLU"), ["channel", "row", "column"], &maps))
    });
    view! {
        <div class="act-layer" data-testid="act-layer" data-layer=l>
            <h4>{format!("conv{l}")} <span class="muted">{format!(" · {n} channels · {side}×{side}")}</span></h4>
            <div class="act-grid" id=format!("act-grid-{l}")>{cells}</div>
            <CanvasExport selector=format!("#act-grid-{l}") what=format!("conv{l} activations") table=csv />
        </div>
    }
}

/// A channel's map, painted again after each analysis (its layer shares one colour scale), and a button that
/// puts it in focus.
fn channel_cell(lab: Lab, l: usize, c: usize) -> impl IntoView {
    let canvas: NodeRef<Canvas> = NodeRef::new();
    // The grid appears with the model, perhaps after the analysis: the effect waits for its canvas.
    Effect::new(move |_| {
        if let (Some(el), Some(a)) = (canvas.get(), lab.current()) {
            if let Some((map, side, max)) = a.map((l, c)) {
                paint(&el, side, map, Colour::Heat(max));
            }
        }
    });
    view! {
        <button class="act-channel" data-testid="act-channel" data-layer=l data-channel=c
            aria-pressed=move || (lab.focus.get() == (l, c)).to_string() title=format!("conv{l} channel {c}")
            on:click=move |_| lab.focus.set((l, c))>
            <canvas node_ref=canvas id=format!("act-{l}-{c}") class="act-canvas" data-label=format!("channel {c}") width="1" height="1"></canvas>
        </button>
    }
}
