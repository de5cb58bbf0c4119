//! The circuit into the focused channel: its 3x3 kernels from the strongest channels of the layer below, each
//! beside what that source channel responds to (its atlas picture, or for conv1 the input image).
use leptos::prelude::*;

use super::paint::{paint_id, Colour};
use super::Lab;
use crate::app::core::export::{images_table, CanvasExport};
use crate::app::labs::vision::max_abs;
use crate::lens::methods::units::{circuit, KernelLink};

/// How many source channels the circuit shows, strongest first.
const SHOWN: usize = 8;

#[component]
pub fn CircuitPanel(lab: Lab) -> impl IntoView {
    let links = move || {
        let m = lab.loaded()?;
        let (l, c) = lab.focus.get();
        let links = circuit(&m.model, l, c).ok()?;
        let scale = links.iter().map(|k| max_abs(&k.kernel)).fold(0.0f32, f32::max);
        // What each source responds to: the atlas's picture of the source channel; conv1's source is the image.
        let input = if l == 1 { lab.current().map(|a| a.image.clone()) } else { None };
        let items = links
            .into_iter()
            .take(SHOWN)
            .enumerate()
            .map(|(i, link)| {
                let source = if l == 1 {
                    input.clone()
                } else {
                    m.atlas.as_ref().ok().and_then(|a| a.get(l - 1, link.from)).map(|e| e.pixels.clone())
                };
                let painted =
                    Painted { kernel_side: m.model.cfg.kernel_size, image_side: m.model.cfg.image_size, scale };
                link_view(lab, l, i, link, source, painted)
            })
            .collect_view();
        let atlas_note = m.atlas.as_ref().err().filter(|_| l > 1).map(|e| {
            view! { <p class="muted small" data-testid="atlas-missing">{format!("Source visualizations are unavailable ({e}); the kernels are still shown.")}</p> }
        });
        Some(view! { {atlas_note} {items} })
    };
    // The kernels shown, in long form (source channel, row, column, weight).
    let csv = Callback::new(move |_| {
        let m = untrack(move || lab.loaded())?;
        let (l, c) = lab.focus.get_untracked();
        let side = m.model.cfg.kernel_size;
        let kernels: Vec<(String, (usize, usize), Vec<f32>)> = (circuit(&m.model, l, c).ok()?.into_iter())
            .take(SHOWN)
            .map(|k| (k.from.to_string(), (side, side), k.kernel))
            .collect();
        let caption = format!("the strongest kernels into conv{l} channel {c}, by source channel");
        Some(images_table(&caption, ["source channel", "row", "column"], &kernels))
    });
    view! {
        <div class="circuit" data-testid="circuit" id="circuit-canvases">{links}</div>
        <CanvasExport selector="#circuit-canvases" what="circuit kernels" table=csv />
    }
}

/// How a link's canvases are painted: the kernel's side and the colour scale shared by all kernels shown, and
/// the source picture's side.
#[derive(Clone, Copy)]
struct Painted {
    kernel_side: usize,
    image_side: usize,
    scale: f32,
}

/// The `i`-th link into conv `l`: the source's picture, the kernel, and a button to follow the circuit down.
fn link_view(lab: Lab, l: usize, i: usize, link: KernelLink, source: Option<Vec<f32>>, p: Painted) -> impl IntoView {
    let (id, src_id) = (format!("kernel-{i}"), format!("kernel-src-{i}"));
    let has_source = source.is_some();
    // Painted once the canvases exist.
    let (kernel, id2, src_id2) = (link.kernel.clone(), id.clone(), src_id.clone());
    request_animation_frame(move || {
        paint_id(&id2, p.kernel_side, &kernel, Colour::Diverging(p.scale));
        if let Some(src) = source {
            paint_id(&src_id2, p.image_side, &src, Colour::Gray);
        }
    });
    let (from, src_title) = if l == 1 {
        ("the input image".to_string(), "the current input".to_string())
    } else {
        (
            format!("conv{} channel {}", l - 1, link.from),
            format!("feature visualization of conv{} channel {}", l - 1, link.from),
        )
    };
    let (src_label, kernel_label) = if l == 1 {
        ("input".to_string(), "kernel from the input".to_string())
    } else {
        (format!("conv{} ch {}", l - 1, link.from), format!("kernel, ch {}", link.from))
    };
    let caption = if l > 1 {
        let below = (l - 1, link.from);
        view! { <button class="linklike" on:click=move |_| lab.focus.set(below)>{from}</button> }.into_any()
    } else {
        view! { <span>{from}</span> }.into_any()
    };
    view! {
        <figure class="kernel" data-testid="circuit-link" data-from=link.from>
            <div class="kernel-pair">
                {has_source.then(|| view! { <canvas id=src_id class="src-canvas" data-testid="circuit-source" title=src_title data-label=src_label width="1" height="1"></canvas> })}
                <canvas id=id class="kernel-canvas" title="3×3 kernel: orange excites, blue inhibits" data-label=kernel_label width="1" height="1"></canvas>
            </div>
            <figcaption>
                {caption}
                <span class="muted">{format!(" · +{:.2} / {:.2}", link.positive, link.negative)}</span>
            </figcaption>
        </figure>
    }
}
