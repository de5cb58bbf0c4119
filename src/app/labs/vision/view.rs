//! The vision lab for 9.2.1: draw a digit (or pick a test image) and watch a small MNIST CNN respond:
//! class probabilities, every layer's feature maps with receptive fields, feature visualization with its
//! regularisers, the top dataset examples of a channel, its circuit and class mix, and saliency maps with
//! the weight-randomisation sanity check. All numbers come from `lens::vision`; this file only shows them.
use std::rc::Rc;
use std::sync::Arc;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::draw::{DrawPad, PAD};
use super::{Method, VisionState, METHODS};
use crate::app::core::browser::{canvas_by_id, now_ms, replace_hash_soon};
use crate::app::core::frame::{LabFrame, UrlNotes};
use crate::app::core::jobs::Jobs;
use crate::app::core::load::{load_vision, Model};
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::cnn::mnist::preprocess_drawing;
use crate::lens::cnn::model::{Cnn, VisionHook};
use crate::lens::methods::attribution::{
    gradient_x_input, integrated_gradients, occlusion, rank_correlation, smoothgrad, vanilla_gradient, Saliency, Target,
};
use crate::lens::methods::featvis::{FeatureVis, FeatureVisSettings};
use crate::lens::methods::units::{circuit, polysemanticity, top_examples};

/// Steps of one feature-visualization run: what the tests guarantee is enough to beat the dataset.
const FV_STEPS: usize = 200;
/// Integrated-gradients steps.
const IG_STEPS: usize = 50;

/// What the network made of the current image.
struct Analysis {
    image: Vec<f32>,
    probs: Vec<f32>,
    /// Per conv layer (1-based index = position + 1): `maps[channel]` of `side * side` values after ReLU.
    layers: Vec<LayerMaps>,
}

struct LayerMaps {
    side: usize,
    maps: Vec<Vec<f32>>,
    /// The largest value in the layer, so all its channels share one colour scale.
    max: f32,
}

fn analyse(model: &Cnn, image: Vec<f32>) -> Result<Analysis, String> {
    let x = model.image(&image).map_err(|e| e.to_string())?;
    let (logits, cache) = model.run_with_cache(&x).map_err(|e| e.to_string())?;
    let probs: Vec<f32> =
        candle_nn::ops::softmax_last_dim(&logits).and_then(|p| p.get(0)?.to_vec1()).map_err(|e| e.to_string())?;
    let mut layers = Vec::new();
    for l in 1..=model.cfg.n_conv() {
        let hook = VisionHook::Conv(l);
        let maps: Vec<Vec<f32>> = (0..model.cfg.channels[l - 1])
            .map(|c| cache.channel(hook, 0, c))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let max = maps.iter().flatten().fold(0.0f32, |m, &v| m.max(v));
        layers.push(LayerMaps { side: model.cfg.conv_side(l), maps, max });
    }
    Ok(Analysis { image, probs, layers })
}

trait MethodView {
    fn label(self) -> &'static str;
    fn run(self, model: &Cnn, image: &[f32], target: Target) -> crate::lens::Result<Saliency>;
}

impl MethodView for Method {
    fn label(self) -> &'static str {
        match self {
            Method::Gradient => "Vanilla gradient",
            Method::GradientXInput => "Gradient × input",
            Method::IntegratedGradients => "Integrated gradients (50 steps)",
            Method::SmoothGrad => "SmoothGrad (25 noisy copies)",
            Method::Occlusion => "Occlusion (4×4 patch)",
        }
    }
    fn run(self, model: &Cnn, image: &[f32], target: Target) -> crate::lens::Result<Saliency> {
        match self {
            Method::Gradient => vanilla_gradient(model, image, target),
            Method::GradientXInput => gradient_x_input(model, image, target),
            Method::IntegratedGradients => integrated_gradients(model, image, target, None, IG_STEPS),
            Method::SmoothGrad => smoothgrad(model, image, target, 0.15, 25, 7),
            Method::Occlusion => occlusion(model, image, target, 4, 2, 0.0),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Colour {
    /// 0 black .. 1 white, like MNIST.
    Gray,
    /// 0 paper .. `max` full heat colour.
    Heat(f32),
    /// Negative blue, zero white, positive red, symmetric around `max_abs`.
    Diverging(f32),
}

/// Paints `side * side` values one pixel each; CSS scales the canvas up without smoothing.
fn paint(canvas: &web_sys::HtmlCanvasElement, side: usize, values: &[f32], colour: Colour) {
    if side == 0 || values.len() != side * side {
        return;
    }
    if canvas.width() != side as u32 {
        canvas.set_width(side as u32);
        canvas.set_height(side as u32);
    }
    let Some(ctx) =
        canvas.get_context("2d").ok().flatten().and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    let mut data = vec![255u8; side * side * 4];
    for (i, &v) in values.iter().enumerate() {
        let (r, g, b) = match colour {
            Colour::Gray => {
                let g = (v.clamp(0.0, 1.0) * 255.0) as u8;
                (g, g, g)
            }
            Colour::Heat(max) => {
                let a = if max > 0.0 { (v / max).clamp(0.0, 1.0) } else { 0.0 };
                // Paper to a deep orange: easy to read on a projector.
                let mix = |c: f32| (255.0 - a * (255.0 - c)) as u8;
                (mix(194.0), mix(65.0), mix(12.0))
            }
            Colour::Diverging(max_abs) => {
                let a = if max_abs > 0.0 { (v / max_abs).clamp(-1.0, 1.0) } else { 0.0 };
                if a >= 0.0 {
                    let mix = |c: f32| (255.0 - a * (255.0 - c)) as u8;
                    (mix(200.0), mix(30.0), mix(45.0))
                } else {
                    let a = -a;
                    let mix = |c: f32| (255.0 - a * (255.0 - c)) as u8;
                    (mix(30.0), mix(90.0), mix(200.0))
                }
            }
        };
        data[i * 4] = r;
        data[i * 4 + 1] = g;
        data[i * 4 + 2] = b;
    }
    if let Ok(img) =
        web_sys::ImageData::new_with_u8_clamped_array_and_sh(wasm_bindgen::Clamped(&data), side as u32, side as u32)
    {
        let _ = ctx.put_image_data(&img, 0.0, 0.0);
    }
}

fn paint_id(id: &str, side: usize, values: &[f32], colour: Colour) {
    if let Some(c) = canvas_by_id(id) {
        paint(&c, side, values, colour);
    }
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, &x| m.max(x.abs()))
}

/// Each test image's mean activation per channel of one layer (`[image][channel]`).
type LayerMeans = Arc<Vec<Vec<f32>>>;
/// The weight-randomisation cascade: a label and the model randomised down to that layer.
type Cascade = Vec<(String, Cnn)>;
/// A saliency map with its rank correlation to the trained model's (at a randomisation level) and the time taken.
type SaliencyResult = Result<(Saliency, Option<f32>, f64), String>;

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0)
}

#[component]
pub fn VisionLab(query: Vec<(String, String)>) -> impl IntoView {
    let state = Model::new("the MNIST model", || load_vision("mnist-cnn"));
    let model = move || state.get();
    let (url, problems) = VisionState::from_query(&query);
    let notes = UrlNotes::new(&problems);

    // The image under study: a drawing (preprocessed like MNIST) or a test image from the shipped sample.
    let sample: RwSignal<Option<usize>> = RwSignal::new(url.sample);
    let drawn: RwSignal<Option<Vec<f32>>> = RwSignal::new(None);
    let input_note: RwSignal<Option<String>> = RwSignal::new(None);
    let analysis: RwSignal<Option<Arc<Analysis>>> = RwSignal::new(None);
    let focus: RwSignal<(usize, usize)> = RwSignal::new(url.focus);
    let hover: RwSignal<Option<(usize, usize, usize)>> = RwSignal::new(None);
    let rev = RwSignal::new(0u32);

    // A tampered `?sample=` falls back to drawing, and a channel that does not exist to the default, with a note.
    Effect::new(move |_| {
        let Some(m) = model() else { return };
        if let Some(i) = sample.get_untracked() {
            if i >= m.samples.len() {
                sample.set(None);
                input_note.set(Some(format!(
                    "There is no test image {i} (the lab ships {}); draw a digit instead.",
                    m.samples.len()
                )));
            }
        }
        let (l, c) = focus.get_untracked();
        let channels = m.model.cfg.channels.get(l.wrapping_sub(1)).copied();
        if channels.is_none_or(|n| c >= n) {
            notes.add(format!(
                "The link's channel {c} of conv{l} does not exist in this model, so the lab shows conv3 channel 0."
            ));
            focus.set(VisionState::default().focus);
        }
    });

    let on_draw = Callback::new(move |ink: Option<Vec<f32>>| match ink {
        None => {
            drawn.set(None);
            if sample.get_untracked().is_none() {
                analysis.set(None);
                input_note.set(Some("Draw a digit: the pad is empty.".into()));
            }
        }
        Some(ink) => match preprocess_drawing(&ink, PAD as usize, PAD as usize) {
            Ok(img) => {
                sample.set(None);
                input_note.set(None);
                drawn.set(Some(img));
            }
            Err(e) => input_note.set(Some(format!("{e}"))),
        },
    });

    // Recompute on every new image; a failure keeps the last analysis on screen.
    Effect::new(move |_| {
        let Some(m) = model() else { return };
        let image = match (sample.get(), drawn.get()) {
            (Some(i), _) if i < m.samples.len() => m.samples.image(i),
            (_, Some(img)) => img,
            _ => return,
        };
        match analyse(&m.model, image) {
            Ok(a) => {
                analysis.set(Some(Arc::new(a)));
                rev.update(|r| *r += 1);
            }
            Err(e) => input_note.set(Some(format!("The model could not read this image: {e}"))),
        }
    });

    let pick_sample = move |_| {
        if let Some(m) = model() {
            let n = m.samples.len();
            let seed = (now_ms() as u64).wrapping_mul(2654435761);
            sample.set(Some((seed % n as u64) as usize));
            input_note.set(None);
        }
    };

    // Paint the input preview and every feature map after each analysis.
    Effect::new(move |_| {
        let Some(a) = analysis.get() else { return };
        paint_id("vis-input", 28, &a.image, Colour::Gray);
        for (li, layer) in a.layers.iter().enumerate() {
            for (c, map) in layer.maps.iter().enumerate() {
                paint_id(&format!("act-{}-{c}", li + 1), layer.side, map, Colour::Heat(layer.max));
            }
        }
    });
    Effect::new(move |_| {
        let Some(a) = analysis.get() else { return };
        let (l, c) = focus.get();
        if let Some(layer) = a.layers.get(l - 1) {
            if let Some(map) = layer.maps.get(c) {
                paint_id("focus-map", layer.side, map, Colour::Heat(layer.max));
            }
        }
    });

    let probs_view = move || {
        let a = analysis.get()?;
        let m = model()?;
        let best = argmax(&a.probs);
        let rows = a
            .probs
            .iter()
            .enumerate()
            .map(|(c, &p)| {
                let label = m.model.cfg.labels.get(c).cloned().unwrap_or_else(|| c.to_string());
                view! {
                    <div class="prob-row" class:best=c == best data-testid="prob" data-class=c data-p=format!("{p:.4}")>
                        <span class="prob-label">{label}</span>
                        <span class="prob-bar"><span style=format!("width: {:.1}%", 100.0 * p)></span></span>
                        <span class="prob-value">{format!("{:.1}%", 100.0 * p)}</span>
                    </div>
                }
            })
            .collect_view();
        Some(view! {
            <p class="prediction" data-testid="prediction" data-class=best>
                "The network reads " <strong>{m.model.cfg.labels.get(best).cloned().unwrap_or_else(|| best.to_string())}</strong>
                {format!(" ({:.0}% sure)", 100.0 * a.probs[best])}
            </p>
            <div class="probs" data-testid="probs">{rows}</div>
        })
    };

    // Receptive field of the hovered feature-map cell, drawn over the input preview.
    let rf_box = move || {
        let (l, y, x) = hover.get()?;
        let m = model()?;
        let (y0, x0, y1, x1) = m.model.cfg.receptive_field(l, y, x);
        let s = m.model.cfg.image_size as f64;
        let style = format!(
            "left: {:.3}%; top: {:.3}%; width: {:.3}%; height: {:.3}%",
            100.0 * x0 as f64 / s,
            100.0 * y0 as f64 / s,
            100.0 * (x1 + 1 - x0) as f64 / s,
            100.0 * (y1 + 1 - y0) as f64 / s
        );
        Some(
            view! { <div class="rf-box" data-testid="rf-box" data-rf=format!("{y0},{x0},{y1},{x1}") style=style></div> },
        )
    };

    let layers_view = move || {
        let m = model()?;
        let cfg = m.model.cfg.clone();
        let views = (1..=cfg.n_conv())
            .map(|l| {
                let n = cfg.channels[l - 1];
                let side = cfg.conv_side(l);
                let cells = (0..n)
                    .map(|c| {
                        let pressed = move || focus.get() == (l, c);
                        view! {
                            <button class="act-channel" data-testid="act-channel" data-layer=l data-channel=c
                                aria-pressed=move || pressed().to_string() title=format!("conv{l} channel {c}")
                                on:click=move |_| focus.set((l, c))>
                                <canvas id=format!("act-{l}-{c}") class="act-canvas" width="1" height="1"></canvas>
                            </button>
                        }
                    })
                    .collect_view();
                view! {
                    <div class="act-layer" data-testid="act-layer" data-layer=l>
                        <h4>{format!("conv{l}")} <span class="muted">{format!(" · {n} channels · {side}×{side}")}</span></h4>
                        <div class="act-grid">{cells}</div>
                    </div>
                }
            })
            .collect_view();
        Some(views)
    };

    let on_focus_move = move |ev: web_sys::MouseEvent| {
        let Some(m) = model() else { return };
        let Some(el) = ev.current_target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return };
        let r = el.get_bounding_client_rect();
        let (l, _) = focus.get_untracked();
        let side = m.model.cfg.conv_side(l);
        let fx = (ev.client_x() as f64 - r.left()) / r.width();
        let fy = (ev.client_y() as f64 - r.top()) / r.height();
        let cell = ((0.0..1.0).contains(&fx) && (0.0..1.0).contains(&fy)).then_some((
            l,
            (fy * side as f64) as usize,
            (fx * side as f64) as usize,
        ));
        if hover.get_untracked() != cell {
            hover.set(cell);
        }
    };
    let focus_value = move || {
        let (l, y, x) = hover.get()?;
        let a = analysis.get()?;
        let (fl, c) = focus.get();
        if fl != l {
            return None;
        }
        let layer = a.layers.get(l - 1)?;
        let v = layer.maps.get(c)?.get(y * layer.side + x)?;
        Some(format!("conv{l} channel {c} at row {y}, column {x}: {v:.3}"))
    };

    // ---- Feature visualization ----
    let fv_settings = RwSignal::new(FeatureVisSettings::default());
    let fv_target_class: RwSignal<Option<usize>> = RwSignal::new(None);
    let fv_jobs = Jobs::new();
    let fv_image: RwSignal<Option<Vec<f32>>> = RwSignal::new(None);
    let fv_activation: RwSignal<Option<f32>> = RwSignal::new(None);
    let fv_steps = RwSignal::new(0usize);
    // The activation on the starting noise, to compare the result against.
    let fv_start: RwSignal<Option<f32>> = RwSignal::new(None);
    let fv_error: RwSignal<Option<String>> = RwSignal::new(None);
    // True while the canvas shows the shipped atlas's picture rather than a run of the student's.
    let fv_preview = RwSignal::new(false);
    let fv_target = move || -> Target {
        match fv_target_class.get() {
            Some(c) => Target::Class(c),
            None => {
                let (l, c) = focus.get();
                Target::Channel { hook: VisionHook::Conv(l), channel: c }
            }
        }
    };
    let fv_target_label = move || match fv_target() {
        Target::Class(c) => format!("the logit of class {c}"),
        Target::Channel { hook, channel } => format!("{hook} channel {channel} (mean activation)"),
        Target::Unit { hook, channel, y, x } => format!("{hook} channel {channel} at ({y}, {x})"),
    };

    let start_fv = {
        move || {
            let Some(m) = model() else { return };
            let target = fv_target();
            let settings = fv_settings.get_untracked();
            fv_error.set(None);
            let mut fv = match FeatureVis::new(&m.model, target, settings) {
                Ok(fv) => fv,
                Err(e) => {
                    fv_error.set(Some(e.to_string()));
                    return;
                }
            };
            fv_preview.set(false);
            fv_steps.set(0);
            fv_image.set(Some(fv.image()));
            fv_activation.set(Some(fv.activation()));
            fv_start.set(Some(fv.activation()));
            fv_jobs.spawn("optimising the image", move |job| async move {
                while fv.steps_done() < FV_STEPS {
                    // Two steps per frame keep the animation smooth and the page responsive.
                    for _ in 0..2 {
                        if let Err(e) = fv.step() {
                            fv_error
                                .set(Some(format!("The optimisation diverged ({e}). Reset and try gentler settings.")));
                            return;
                        }
                    }
                    fv_image.set(Some(fv.image()));
                    fv_activation.set(Some(fv.activation()));
                    fv_steps.set(fv.steps_done());
                    job.report("optimising the image", fv.steps_done() as f32 / FV_STEPS as f32);
                    if !job.frame().await {
                        return;
                    }
                }
            });
        }
    };
    let stop_fv = move || fv_jobs.cancel();
    Effect::new(move |_| {
        if let Some(img) = fv_image.get() {
            paint_id("fv-image", 28, &img, Colour::Gray);
        }
    });
    // A new target stops any run and shows the shipped atlas's picture of the channel (computed the same
    // way, 200 steps with the default regularisers), so there is something to see before pressing the button.
    Effect::new(move |_| {
        let target = fv_target();
        let Some(m) = model() else { return };
        fv_jobs.cancel();
        fv_steps.set(0);
        fv_start.set(None);
        fv_activation.set(None);
        fv_error.set(None);
        let entry = match target {
            Target::Channel { hook: VisionHook::Conv(l), channel } => {
                m.atlas.as_ref().ok().and_then(|a| a.get(l, channel)).cloned()
            }
            _ => None,
        };
        fv_preview.set(entry.is_some());
        let side = m.model.cfg.image_size;
        let pixels = entry.map(|e| e.pixels).unwrap_or_else(|| vec![0.0; side * side]);
        fv_image.set(Some(pixels));
    });

    // Dataset examples: each channel's mean activation over the shipped test sample, computed once per layer.
    let means_cache: StoredValue<Vec<Option<LayerMeans>>, LocalStorage> = StoredValue::new_local(Vec::new());
    let means_rev = RwSignal::new(0u32);
    let means_jobs = Jobs::new();
    // The layer being scanned: a click on another channel of the same layer must not restart its scan.
    let scanning: StoredValue<Option<usize>> = StoredValue::new(None);
    let means_progress = RwSignal::new(0usize);
    let layer_means = move |l: usize| -> Option<Arc<Vec<Vec<f32>>>> {
        means_rev.track();
        means_cache.with_value(|c| c.get(l).cloned().flatten())
    };
    Effect::new(move |_| {
        let Some(m) = model() else { return };
        let (l, _) = focus.get();
        if layer_means(l).is_some() || (means_jobs.busy_untracked() && scanning.get_value() == Some(l)) {
            return;
        }
        scanning.set_value(Some(l));
        means_progress.set(0);
        // A newer layer's scan replaces an older one's (`spawn` stops it).
        means_jobs.spawn("scanning the test images", move |job| async move {
            // In chunks, a frame apart, so the page stays responsive and shows how far the scan has got.
            let n = m.samples.len();
            let mut means: Vec<Vec<f32>> = Vec::with_capacity(n);
            let mut failed = false;
            for start in (0..n).step_by(200) {
                if !job.frame().await {
                    return;
                }
                let idx: Vec<usize> = (start..(start + 200).min(n)).collect();
                match crate::lens::methods::units::channel_means(&m.model, &m.samples.subset(&idx), VisionHook::Conv(l))
                {
                    Ok(rows) => means.extend(rows),
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
                means_progress.set(means.len());
                job.report("scanning the test images", means.len() as f32 / n as f32);
            }
            if !failed {
                means_cache.update_value(|c| {
                    if c.len() <= l {
                        c.resize(l + 1, None);
                    }
                    c[l] = Some(Arc::new(means));
                });
                means_rev.update(|r| *r += 1);
            }
        });
    });
    let top9 = move || -> Option<Vec<(usize, f32)>> {
        let (l, c) = focus.get();
        let means = layer_means(l)?;
        top_examples(&means, c, 9).ok()
    };
    let max_on_samples = move || -> Option<f32> {
        let (l, c) = focus.get();
        let means = layer_means(l)?;
        means.iter().filter_map(|row| row.get(c).copied()).reduce(f32::max)
    };
    Effect::new(move |_| {
        let (Some(m), Some(top)) = (model(), top9()) else { return };
        for (i, (idx, _)) in top.iter().enumerate() {
            paint_id(&format!("top-{i}"), 28, &m.samples.image(*idx), Colour::Gray);
        }
    });
    // The class mix of every channel in the focused layer, so polysemantic channels stand out at a glance.
    let layer_mix = Memo::new(move |_| {
        let (l, _) = focus.get();
        let means = layer_means(l)?;
        let m = model()?;
        polysemanticity(&means, &m.samples.labels, 20).ok().map(|v| (l, v))
    });
    let class_mix = move || {
        let (_, c) = focus.get();
        layer_mix.get().and_then(|(_, v)| v.into_iter().nth(c))
    };
    let mix_overview = move || {
        let (l, mixes) = layer_mix.get()?;
        let focused = focus.get().1;
        let n_poly = mixes.iter().filter(|m| m.polysemantic).count();
        let tiles = mixes
            .into_iter()
            .map(|mix| {
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
                let label = format!("{}{}", mix.top_class, if mix.polysemantic { "?" } else { "" });
                let title = format!(
                    "conv{l} channel {c}: {:.0}% of its top {total} are {}{}",
                    100.0 * mix.top_share,
                    mix.top_class,
                    if mix.polysemantic { " — polysemantic" } else { "" }
                );
                view! {
                    <button class="mix-tile" class:poly=mix.polysemantic data-testid="mix-tile" data-channel=c
                        data-polysemantic=mix.polysemantic.to_string() aria-pressed=(c == focused).to_string() title=title
                        on:click=move |_| focus.set((l, c))>
                        <span class="mix-head"><span class="muted">{c.to_string()}</span><strong>{label}</strong></span>
                        <span class="mix-bar">{segments}</span>
                    </button>
                }
            })
            .collect_view();
        Some(view! {
            <p class="muted small">{format!("Every channel of conv{l}: the most common digit among its top 20 test images, and the mix as a bar. {n_poly} marked \"?\" have no digit above 60% — candidates for polysemantic units. Click one to inspect it.")}</p>
            <div class="mix-grid" data-testid="mix-overview" data-poly-count=n_poly>{tiles}</div>
        })
    };

    // Circuit: the chosen channel's kernels from each channel of the layer below, strongest first.
    let circuit_view = move || {
        let m = model()?;
        let (l, c) = focus.get();
        let links = circuit(&m.model, l, c).ok()?;
        let k = m.model.cfg.kernel_size;
        let scale = links.iter().map(|k| max_abs(&k.kernel)).fold(0.0f32, f32::max);
        let side = m.model.cfg.image_size;
        // What each source channel responds to: its precomputed visualization from the atlas, or for the
        // first layer (whose only source is the image) the current input.
        let input = if l == 1 { analysis.get().map(|a| a.image.clone()) } else { None };
        let items = links
            .into_iter()
            .take(8)
            .enumerate()
            .map(|(i, link)| {
                let from = if l == 1 { "the input image".to_string() } else { format!("conv{} channel {}", l - 1, link.from) };
                let id = format!("kernel-{i}");
                let src_id = format!("kernel-src-{i}");
                let kernel = link.kernel.clone();
                let (id2, src_id2) = (id.clone(), src_id.clone());
                let source: Option<Vec<f32>> = if l == 1 {
                    input.clone()
                } else {
                    m.atlas.as_ref().ok().and_then(|a| a.get(l - 1, link.from)).map(|e| e.pixels.clone())
                };
                let has_source = source.is_some();
                // Paint once the canvases exist.
                request_animation_frame(move || {
                    paint_id(&id2, k, &kernel, Colour::Diverging(scale));
                    if let Some(src) = source {
                        paint_id(&src_id2, side, &src, Colour::Gray);
                    }
                });
                let prev = (l > 1).then_some(link.from);
                let src_title = if l == 1 { "the current input".to_string() } else { format!("feature visualization of conv{} channel {}", l - 1, link.from) };
                view! {
                    <figure class="kernel" data-testid="circuit-link" data-from=link.from>
                        <div class="kernel-pair">
                            {has_source.then(|| view! { <canvas id=src_id class="src-canvas" data-testid="circuit-source" title=src_title width="1" height="1"></canvas> })}
                            <canvas id=id class="kernel-canvas" title="3×3 kernel: red excites, blue inhibits" width="1" height="1"></canvas>
                        </div>
                        <figcaption>
                            {match prev {
                                Some(p) => view! { <button class="linklike" on:click=move |_| focus.set((l - 1, p))>{from.clone()}</button> }.into_any(),
                                None => view! { <span>{from.clone()}</span> }.into_any(),
                            }}
                            <span class="muted">{format!(" · +{:.2} / {:.2}", link.positive, link.negative)}</span>
                        </figcaption>
                    </figure>
                }
            })
            .collect_view();
        let atlas_note = m.atlas.as_ref().err().filter(|_| l > 1).map(|e| {
            view! { <p class="muted small" data-testid="atlas-missing">{format!("Source visualizations are unavailable ({e}); the kernels are still shown.")}</p> }
        });
        Some(view! { {atlas_note} {items} })
    };

    // ---- Saliency ----
    let method = RwSignal::new(url.method);
    let sanity: RwSignal<usize> = RwSignal::new(url.sanity);
    let cascade: StoredValue<Option<Rc<Cascade>>, LocalStorage> = StoredValue::new_local(None);
    let saliency: RwSignal<Option<SaliencyResult>> = RwSignal::new(None);
    // Saliency is costlier than a prediction (integrated gradients runs 50 backward passes), so it waits
    // until the drawing pauses instead of running on every stroke.
    let saliency_gen = StoredValue::new(0u64);
    let compute_saliency = move || {
        let (Some(m), Some(a)) = (model(), analysis.get_untracked()) else { return };
        let meth = method.get_untracked();
        let level = sanity.get_untracked();
        let target = Target::Class(argmax(&a.probs));
        let t0 = now_ms();
        let trained = meth.run(&m.model, &a.image, target);
        let result = if level == 0 {
            trained.map(|s| (s, None))
        } else {
            let cas = cascade.with_value(|c| c.clone()).unwrap_or_else(|| {
                let c = Rc::new(crate::lens::methods::attribution::sanity_cascade(&m.model, 11).unwrap_or_default());
                cascade.set_value(Some(c.clone()));
                c
            });
            match (trained, cas.get(level - 1)) {
                (Ok(base), Some((_, random))) => meth.run(random, &a.image, target).map(|s| {
                    let r = rank_correlation(&base.map, &s.map);
                    (s, Some(r))
                }),
                (Err(e), _) => Err(e),
                (_, None) => Err(crate::lens::LensError::Input("no such randomisation level".into())),
            }
        };
        let ms = now_ms() - t0;
        saliency.set(Some(result.map(|(s, r)| (s, r, ms)).map_err(|e| e.to_string())));
    };
    Effect::new(move |_| {
        analysis.track();
        method.track();
        sanity.track();
        saliency_gen.update_value(|g| *g += 1);
        let gen = saliency_gen.get_value();
        set_timeout(
            move || {
                // `try_`: the lab may have been left during the pause.
                if saliency_gen.try_get_value() == Some(gen) {
                    compute_saliency();
                }
            },
            std::time::Duration::from_millis(150),
        );
    });
    Effect::new(move |_| {
        if let Some(Ok((s, _, _))) = saliency.get() {
            paint_id("saliency-map", s.side, &s.map, Colour::Diverging(max_abs(&s.map)));
        }
    });
    // The URL follows the image, the focus and the saliency settings.
    Effect::new(move |_| {
        let state =
            VisionState { sample: sample.get(), focus: focus.get(), method: method.get(), sanity: sanity.get() };
        if model().is_some() {
            replace_hash_soon(&section_hash_with("9.2.1", &state.to_query()));
        }
    });
    let layer_names = move || model().map(|m| m.model.layer_names()).unwrap_or_default();

    view! {
        <LabFrame notes=notes>
        <div class="vision-lab" data-testid="vision-lab" class:unloaded=move || model().is_none()>
            {state.status()}
            <div class="lab-body">
            <span class="lab-status" data-testid="lab-status" data-rev=move || rev.get()></span>
            <div class="vis-top">
                <section class="panel">
                    <h3>"Draw a digit"</h3>
                    <DrawPad on_change=on_draw label="Drawing pad: draw a digit from 0 to 9".to_string() />
                    <p><button data-testid="sample-btn" on:click=pick_sample>"Random test image"</button>
                        {move || {
                            let (i, m) = (sample.get()?, model()?);
                            let (src, label) = (m.samples.source_index.get(i)?, m.samples.labels.get(i)?);
                            Some(view! { <span class="muted" data-testid="sample-label">{format!(" test image #{src} · labelled {label}")}</span> })
                        }}
                    </p>
                    {move || input_note.get().map(|n| view! { <p class="input-error" data-testid="input-note" role="status">{n}</p> })}
                </section>
                <section class="panel">
                    <h3>"What the network sees"</h3>
                    <div class="vis-input-wrap">
                        <canvas id="vis-input" class="vis-input" data-testid="vis-input" width="28" height="28" role="img"
                            aria-label="the 28 by 28 image the network reads"></canvas>
                        {rf_box}
                    </div>
                    <p class="muted small">"Your drawing, cropped, scaled to 20 px and centred by its centre of mass in 28×28, as MNIST was made."</p>
                    {probs_view}
                    {move || analysis.get().is_none().then(|| view! { <p class="muted" data-testid="empty-hint">"Draw a digit or pick a test image to see the network's answer."</p> })}
                </section>
            </div>

            <section class="panel">
                <h3>"Activations"</h3>
                <p class="muted small">"Every channel of every conv layer (after ReLU), darker = stronger. Click a channel to study it below; hover its large map to see which input pixels that cell can see."</p>
                <div class="act-layers">{layers_view}</div>
            </section>

            <section class="panel focus-panel">
                <h3 data-testid="focus-title">{move || { let (l, c) = focus.get(); format!("conv{l} channel {c}") }}</h3>
                <div class="focus-grid">
                    <div>
                        <h4>"Its map for this image"</h4>
                        <canvas id="focus-map" class="focus-map" data-testid="focus-map" width="1" height="1"
                            on:mousemove=on_focus_move on:mouseleave=move |_| hover.set(None)></canvas>
                        <p class="muted small" data-testid="focus-value">{move || focus_value().unwrap_or_else(|| "Hover the map.".into())}</p>
                    </div>
                    <div>
                        <h4>"Feature visualization"</h4>
                        <p class="muted small">"Gradient ascent on the image, from noise, to maximise " {fv_target_label} "."</p>
                        <canvas id="fv-image" class="fv-image" data-testid="fv-image" width="28" height="28"></canvas>
                        <p class="small" data-testid="fv-activation" data-value=move || fv_activation.get().map(|a| format!("{a:.4}")).unwrap_or_default()
                            data-start=move || fv_start.get().map(|a| format!("{a:.4}")).unwrap_or_default()
                            data-steps=move || fv_steps.get()>
                            {move || fv_activation.get().map(|a| format!("step {} of {FV_STEPS} · activation {a:.3}", fv_steps.get()))}
                            {move || (fv_preview.get() && fv_activation.get().is_none()).then_some("Precomputed with the default settings. Press Visualize to watch it form from noise. ")}
                            {move || max_on_samples().map(|m| format!("{}Best test image: {m:.3}.", if fv_activation.get().is_some() { " · " } else { "" }))}
                        </p>
                        <div class="fv-controls">
                            {
                                move || if fv_jobs.busy() {
                                    view! { <button data-testid="fv-stop" on:click=move |_| stop_fv()>"Stop"</button> }.into_any()
                                } else {
                                    view! { <button data-testid="fv-run" class="primary" on:click=move |_| start_fv()>"Visualize"</button> }.into_any()
                                }
                            }
                            <label><input type="checkbox" data-testid="fv-jitter" prop:checked=move || { fv_settings.get().jitter > 0 }
                                on:change=move |ev| { let on = event_target_checked(&ev); fv_settings.update(|s| s.jitter = if on { 1 } else { 0 }) } /> " jitter"</label>
                            <label><input type="checkbox" data-testid="fv-l2" prop:checked=move || { fv_settings.get().l2 > 0.0 }
                                on:change=move |ev| { let on = event_target_checked(&ev); fv_settings.update(|s| s.l2 = if on { FeatureVisSettings::default().l2 } else { 0.0 }) } /> " L2 decay"</label>
                            <label><input type="checkbox" data-testid="fv-tv" prop:checked=move || { fv_settings.get().tv > 0.0 }
                                on:change=move |ev| { let on = event_target_checked(&ev); fv_settings.update(|s| s.tv = if on { FeatureVisSettings::default().tv } else { 0.0 }) } /> " total variation"</label>
                            <label><input type="checkbox" data-testid="fv-blur" prop:checked=move || { fv_settings.get().blur > 0.0 }
                                on:change=move |ev| { let on = event_target_checked(&ev); fv_settings.update(|s| s.blur = if on { FeatureVisSettings::default().blur } else { 0.0 }) } /> " blur"</label>
                            <label>" target "
                                <select data-testid="fv-target" on:change=move |ev| { let v = event_target_value(&ev); fv_target_class.set(v.parse().ok()) }>
                                    <option value="channel" selected=true>"this channel"</option>
                                    {(0..10).map(|c| view! { <option value=c.to_string()>{format!("class {c} logit")}</option> }).collect_view()}
                                </select>
                            </label>
                        </div>
                        {move || fv_error.get().map(|e| view! { <p class="input-error" data-testid="fv-error" role="alert">{e}</p> })}
                    </div>
                    <div>
                        <h4>"Test images that excite it most"</h4>
                        {move || if top9().is_none() {
                            let total = model().map(|m| m.samples.len()).unwrap_or(0);
                            Some(view! { <p class="muted small" data-testid="top-busy">{format!("Scanning the {total} shipped test images… {}", means_progress.get())}</p> })
                        } else { None }}
                        <div class="top-grid" data-testid="top-examples">
                            {(0..9).map(|i| view! {
                                <figure class="top-item">
                                    <canvas id=format!("top-{i}") class="top-canvas" width="28" height="28"></canvas>
                                    <figcaption class="small" data-testid="top-label">{move || {
                                        let (m, top) = (model()?, top9()?);
                                        let idx = top.get(i)?.0;
                                        Some(format!("a {}", m.samples.labels.get(idx)?))
                                    }}</figcaption>
                                </figure>
                            }).collect_view()}
                        </div>
                        {move || class_mix().map(|mix| {
                            let parts: Vec<String> = mix.counts.iter().enumerate().filter(|(_, &n)| n > 0).map(|(c, n)| format!("{c}: {n}")).collect();
                            view! {
                                <p class="small" data-testid="class-mix" data-polysemantic=mix.polysemantic.to_string()>
                                    "Labels of its top 20: " {parts.join(" · ")}
                                    {if mix.polysemantic { " — polysemantic: no digit has a clear majority." } else { "" }}
                                </p>
                            }
                        })}
                    </div>
                </div>
                <h4>"Class mix across the layer"</h4>
                {mix_overview}
                <h4>"Circuit: what feeds it"</h4>
                <p class="muted small">"Its 3×3 kernels from the strongest channels of the layer below (red excites, blue inhibits), each beside a feature visualization of that source channel, strongest first. Click a source channel to follow the circuit down."</p>
                <div class="circuit" data-testid="circuit">{circuit_view}</div>
            </section>

            <section class="panel">
                <h3>"Saliency: which pixels matter " <span class="badge extra-badge">"beyond the chapter"</span></h3>
                <div class="saliency-controls">
                    <label>"Method "
                        <select data-testid="saliency-method" on:change=move |ev| method.set(METHODS.iter().find(|(k, _)| *k == event_target_value(&ev)).map(|(_, m)| *m).unwrap_or(Method::Gradient))>
                            {METHODS.iter().map(|&(k, m)| view! { <option value=k selected=move || method.get() == m>{m.label()}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>" Sanity check: "
                        <select data-testid="sanity-select" on:change=move |ev| sanity.set(event_target_value(&ev).parse().unwrap_or(0))>
                            <option value="0" selected=move || sanity.get() == 0>"trained weights"</option>
                            {move || layer_names().into_iter().rev().enumerate().map(|(i, n)| view! { <option value=(i + 1).to_string() selected=move || sanity.get() == i + 1>{format!("randomised down to {n}")}</option> }).collect_view()}
                        </select>
                    </label>
                </div>
                <div class="saliency-row">
                    <canvas id="saliency-map" class="saliency-map" data-testid="saliency-map" width="28" height="28"></canvas>
                    <div class="small">
                        {move || saliency.get().map(|r| match r {
                            Ok((s, corr, ms)) => view! {
                                <p data-testid="saliency-info" data-sum=format!("{:.5}", s.map.iter().sum::<f32>())
                                    data-value=format!("{:.5}", s.value) data-baseline=s.baseline_value.map(|b| format!("{b:.5}")).unwrap_or_default()>
                                    {format!("Target: the predicted class's logit, {:.3}. ", s.value)}
                                    {s.baseline_value.map(|b| format!("On a black image it is {b:.3}, so the attributions should add up to {:.3}; they add up to {:.3}. ", s.value - b, s.map.iter().sum::<f32>()))}
                                    {corr.map(|r| format!("Rank correlation with the trained model's map: {r:.2} — a method that still looks the same is not explaining the trained network. "))}
                                    {format!("Computed in {ms:.0} ms.")}
                                </p>
                            }.into_any(),
                            Err(e) => view! { <p class="input-error" role="alert">{e}</p> }.into_any(),
                        })}
                        <p class="muted">"Red pixels push the predicted class up, blue push it down."</p>
                    </div>
                </div>
            </section>
            </div>
        </div>
        </LabFrame>
    }
}
