//! The channel in focus: its map for the current image (hover a cell for its value and receptive field),
//! its feature visualization, its top test images and class mix, and the circuit that feeds it.
use leptos::prelude::*;

use crate::app::core::export::{image_table, CanvasExport};
use wasm_bindgen::JsCast;

use super::circuit::CircuitPanel;
use super::dataset::{DatasetPanel, MixOverview};
use super::featvis::FeatureVisPanel;
use super::paint::{paint_id, Colour};
use super::Lab;
use crate::app::core::keys;
use crate::app::labs::vision::analysis::{cell_text, hover_cell};
use crate::lens::methods::units::polysemanticity;

#[component]
pub fn FocusPanel(lab: Lab) -> impl IntoView {
    // The class mix of every channel in the focused layer, so polysemantic channels stand out at a glance.
    let layer_mix = Memo::new(move |_| {
        let l = lab.focus.get().0;
        let (means, m) = (lab.layer_means(l)?, lab.loaded()?);
        polysemanticity(&means, &m.samples.labels, 20).ok().map(|v| (l, v))
    });
    view! {
        <section class="panel focus-panel">
            <h3 data-testid="focus-title">{move || { let (l, c) = lab.focus.get(); format!("conv{l} channel {c}") }}</h3>
            <div class="focus-grid">
                <FocusMap lab=lab />
                <FeatureVisPanel lab=lab />
                <DatasetPanel lab=lab layer_mix=layer_mix />
            </div>
            <h4>"Class mix across the layer"</h4>
            <MixOverview lab=lab layer_mix=layer_mix />
            <h4>"Circuit: what feeds it"</h4>
            <p class="muted small">"Its 3×3 kernels from the strongest channels of the layer below (orange excites, blue inhibits), each beside a feature visualization of that source channel, strongest first. Click a source channel to follow the circuit down."</p>
            <CircuitPanel lab=lab />
        </section>
    }
}

/// The focused channel's map, large; the cell under the pointer shows its value here and its receptive field
/// over the input.
#[component]
fn FocusMap(lab: Lab) -> impl IntoView {
    Effect::new(move |_| {
        let Some(a) = lab.current() else { return };
        if let Some((map, side, max)) = a.map(lab.focus.get()) {
            paint_id("focus-map", side, map, Colour::Heat(max));
        }
    });
    let on_move = move |ev: web_sys::MouseEvent| {
        let Some(m) = lab.model.get_untracked() else { return };
        let Some(el) = ev.current_target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return };
        let r = el.get_bounding_client_rect();
        let l = lab.focus.get_untracked().0;
        let fx = (ev.client_x() as f64 - r.left()) / r.width();
        let fy = (ev.client_y() as f64 - r.top()) / r.height();
        let cell = hover_cell(l, m.model.cfg.conv_side(l), fx, fy);
        if lab.hover.get_untracked() != cell {
            lab.hover.set(cell);
        }
    };
    // Keyboard: the map is a tab stop; focus picks its top-left cell and the arrows move the cell, so the value
    // and the receptive field show without a pointer.
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let Some(m) = lab.model.get_untracked() else { return };
        let l = lab.focus.get_untracked().0;
        let side = m.model.cfg.conv_side(l);
        let at = lab.hover.get_untracked().filter(|h| h.0 == l).map_or((0, 0), |(_, y, x)| (y, x));
        let Some((y, x)) = keys::grid_move(&ev.key(), ev.ctrl_key(), at, (side, side)) else { return };
        ev.prevent_default();
        lab.hover.set(Some((l, y, x)));
    };
    let on_focus = move |_| {
        if lab.model.get_untracked().is_some() && lab.hover.get_untracked().is_none() {
            lab.hover.set(Some((lab.focus.get_untracked().0, 0, 0)));
        }
    };
    let focus_csv = Callback::new(move |_| {
        let a = untrack(move || lab.current())?;
        let (l, c) = lab.focus.get_untracked();
        let (map, side, _) = a.map((l, c))?;
        Some(image_table(&format!("conv{l} channel {c} after ReLU, one value per cell"), (side, side), map))
    });
    let value = move || {
        let (a, cell) = (lab.current()?, lab.hover.get()?);
        cell_text(&a, lab.focus.get(), cell)
    };
    view! {
        <div>
            <h4>"Its map for this image"</h4>
            <canvas id="focus-map" class="focus-map" data-testid="focus-map" width="1" height="1"
                on:mousemove=on_move on:mouseleave=move |_| lab.hover.set(None)
                tabindex="0" role="img" aria-label=move || { let (l, c) = lab.focus.get(); format!("map of conv{l} channel {c}; arrow keys move from cell to cell") }
                aria-describedby="focus-value" on:keydown=on_key on:focus=on_focus on:blur=move |_| lab.hover.set(None)></canvas>
            <CanvasExport selector="#focus-map" what="focus map" table=focus_csv />
            <p class="muted small" data-testid="focus-value" id="focus-value" aria-live="polite">{move || value().unwrap_or_else(|| "Hover the map, or focus it and use the arrow keys.".into())}</p>
        </div>
    }
}
