//! The focused channel in the data: its nine most exciting test images and the labels of its top 20, and the
//! class mix of every channel of its layer. Each layer's channel means over the shipped test images are scanned
//! once, as a job, a few images per step.
use std::sync::Arc;

use leptos::prelude::*;

use super::paint::{paint_id, Colour};
use super::Lab;
use crate::app::core::export::{images_table, CanvasExport};
use crate::app::core::jobs::Jobs;
use crate::lens::cnn::VisionHook;
use crate::lens::methods::units::{top_examples, ChannelScan, ClassMix};

/// The focused layer and the class mix of each of its channels.
pub type LayerMix = Memo<Option<(usize, Vec<ClassMix>)>>;

const PHASE: &str = "scanning the test images";

/// Scans the focused layer's channel means when they are not there yet. A newer layer's scan replaces an
/// older one's; another channel of the layer being scanned does not restart it.
fn scan_focused_layer(lab: Lab, jobs: Jobs) {
    let scanning: StoredValue<Option<usize>> = StoredValue::new(None);
    Effect::new(move |_| {
        let l = lab.focus.get().0;
        let Some(m) = lab.loaded() else { return };
        let have = lab.means.with_untracked(|c| c.get(l).is_some_and(Option::is_some));
        if have || (jobs.busy_untracked() && scanning.get_value() == Some(l)) {
            return;
        }
        scanning.set_value(Some(l));
        jobs.spawn(PHASE, move |job| async move {
            let Ok(mut scan) = ChannelScan::new(VisionHook::Conv(l)) else { return };
            let n = m.samples.len();
            let step = || scan.step(&m.model, &m.samples).map(|done| (!done).then(|| scan.done() as f32 / n as f32));
            // The click's task ends before the first slice, and the last slice's before the layer's examples and
            // class mix render. A failure leaves the layer unscanned; focusing it again tries again.
            if job.pause(PHASE, 0.0).await
                && matches!(job.sliced(PHASE, step).await, Ok(true))
                && job.pause(PHASE, 1.0).await
            {
                lab.means.update(|c| {
                    c.resize(c.len().max(l + 1), None);
                    c[l] = Some(Arc::new(scan.finish()));
                });
            }
        });
    });
}

#[component]
pub fn DatasetPanel(lab: Lab, layer_mix: LayerMix) -> impl IntoView {
    let jobs = Jobs::new();
    scan_focused_layer(lab, jobs);
    let top9 = Memo::new(move |_| {
        let (l, c) = lab.focus.get();
        top_examples(&lab.layer_means(l)?, c, 9).ok()
    });
    Effect::new(move |_| {
        let (Some(m), Some(top)) = (lab.loaded(), top9.get()) else { return };
        for (i, (idx, _)) in top.iter().enumerate() {
            paint_id(&format!("top-{i}"), 28, &m.samples.image(*idx), Colour::Gray);
        }
    });
    let csv = Callback::new(move |_| {
        let (m, top) = (untrack(move || lab.loaded())?, top9.get_untracked()?);
        let (l, c) = lab.focus.get_untracked();
        let images: Vec<(String, (usize, usize), Vec<f32>)> = (top.iter())
            .map(|&(idx, _)| {
                let name = format!(
                    "test image #{} (labelled {})",
                    m.samples.source_index.get(idx).map_or(idx, |&s| s as usize),
                    m.samples.labels.get(idx).copied().unwrap_or_default()
                );
                (name, (28, 28), m.samples.image(idx))
            })
            .collect();
        Some(images_table(
            &format!("the test images that excite conv{l} channel {c} most"),
            ["image", "row", "column"],
            &images,
        ))
    });
    let busy = move || {
        let total = lab.loaded().map_or(0, |m| m.samples.len());
        let done = jobs.progress().map_or(0, |p| (p.frac * total as f32).round() as usize);
        top9.with(Option::is_none).then(|| {
            view! { <p class="muted small" data-testid="top-busy">{format!("Scanning the {total} shipped test images… {done}")}</p> }
        })
    };
    let label = move |i: usize| {
        move || {
            let (m, idx) = (lab.loaded()?, top9.with(|t| t.as_ref()?.get(i).map(|t| t.0))?);
            Some(format!("a {}", m.samples.labels.get(idx)?))
        }
    };
    let class_mix = move || {
        let c = lab.focus.get().1;
        let mix = layer_mix.with(|m| m.as_ref()?.1.get(c).cloned())?;
        let parts: Vec<String> =
            mix.counts.iter().enumerate().filter(|(_, &n)| n > 0).map(|(c, n)| format!("{c}: {n}")).collect();
        Some(view! {
            <p class="small" data-testid="class-mix" data-polysemantic=mix.polysemantic.to_string()>
                "Labels of its top 20: " {parts.join(" · ")}
                {if mix.polysemantic { " — polysemantic: no digit has a clear majority." } else { "" }}
            </p>
        })
    };
    view! {
        <div>
            <h4>"Test images that excite it most"</h4>
            {busy}
            <div class="top-grid" id="top-examples-grid" data-testid="top-examples">
                {(0..9).map(|i| view! {
                    <figure class="top-item">
                        <canvas id=format!("top-{i}") class="top-canvas" data-label=format!("top {}", i + 1) width="28" height="28"></canvas>
                        <figcaption class="small" data-testid="top-label">{label(i)}</figcaption>
                    </figure>
                }).collect_view()}
            </div>
            <CanvasExport selector="#top-examples-grid" what="top test images" table=csv />
            {class_mix}
        </div>
    }
}

/// A tile per channel of the focused layer: its most common digit among its top 20, and the mix as a bar.
#[component]
pub fn MixOverview(lab: Lab, layer_mix: LayerMix) -> impl IntoView {
    move || {
        let (l, mixes) = layer_mix.get()?;
        let focused = lab.focus.get().1;
        let n_poly = mixes.iter().filter(|m| m.polysemantic).count();
        let tiles = mixes.into_iter().map(|mix| mix_tile(lab, l, mix, focused)).collect_view();
        Some(view! {
            <p class="muted small">{format!("Every channel of conv{l}: the most common digit among its top 20 test images, and the mix as a bar. {n_poly} marked \"?\" have no digit above 60% — candidates for polysemantic units. Click one to inspect it.")}</p>
            <div class="mix-grid" data-testid="mix-overview" data-poly-count=n_poly>{tiles}</div>
        })
    }
}

fn mix_tile(lab: Lab, l: usize, mix: ClassMix, focused: usize) -> impl IntoView {
    let c = mix.channel;
    let total: usize = mix.counts.iter().sum::<usize>().max(1);
    let segments = mix
        .counts
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(digit, &n)| {
            let style = format!("width:{:.1}%;background:var(--digit-{digit})", 100.0 * n as f32 / total as f32);
            view! { <span style=style title=format!("digit {digit}: {n} of {total}")></span> }
        })
        .collect_view();
    let poly = if mix.polysemantic { " — polysemantic" } else { "" };
    let title =
        format!("conv{l} channel {c}: {:.0}% of its top {total} are {}{poly}", 100.0 * mix.top_share, mix.top_class);
    view! {
        <button class="mix-tile" class:poly=mix.polysemantic data-testid="mix-tile" data-channel=c
            data-polysemantic=mix.polysemantic.to_string() aria-pressed=(c == focused).to_string() title=title
            on:click=move |_| lab.focus.set((l, c))>
            <span class="mix-head"><span class="muted">{c.to_string()}</span><strong>{format!("{}{}", mix.top_class, if mix.polysemantic { "?" } else { "" })}</strong></span>
            <span class="mix-bar">{segments}</span>
        </button>
    }
}
