//! The superposition lab (9.2.4). All training runs in the Web Worker (through `core::trainer`); the page sends
//! short chunks of steps while "Train" is on, so Stop is immediate and the page never blocks. This file only
//! draws what the worker's `LabReply`s say (computed by `lens::toy`).
use std::sync::Arc;

use leptos::prelude::*;

use super::{Preset, ToyState};
use crate::app::core::browser::replace_hash_soon;
use crate::app::core::format::fmt_int;
use crate::app::core::frame::{LabFrame, UrlNotes};
use crate::app::core::trainer::*;
use crate::app::core::url::{section_hash_with, UrlState};
use crate::app::core::worker::{self, Kind, Tag, WorkerEvent};
use crate::lens::methods::superposition::metrics::{ToyMetrics, REPRESENTED_NORM};
use crate::lens::methods::superposition::phase::{Phase, PhaseCell, PhaseSpec};
use crate::lens::toy::model::{ToyConfig, ToySnapshot};
use crate::lens::toy::protocol::{LabReply, LabRequest};

#[derive(Clone, Debug, PartialEq)]
struct ToyView {
    snapshot: ToySnapshot,
    metrics: ToyMetrics,
}

/// W's columns as arrows in the plane (m = 2), labelled and coloured by importance.
fn arrows_svg(v: &ToyView) -> String {
    let snap = &v.snapshot;
    let n = snap.config.n_features;
    let imp = snap.config.importances();
    let imax = imp.iter().cloned().fold(0.0f32, f32::max).max(1e-6);
    let imin = imp.iter().cloned().fold(f32::INFINITY, f32::min);
    let rmax = v.metrics.norms.iter().cloned().fold(1.0f32, f32::max) as f64 * 1.12;
    let (size, c) = (340.0, 170.0);
    let scale = (c - 26.0) / rmax;
    let mut s = format!("<svg class=\"arrows\" data-testid=\"feature-arrows\" viewBox=\"0 0 {size} {size}\" role=\"img\" aria-label=\"each feature's direction in the two hidden dimensions\" font-size=\"13\">");
    s += "<defs><marker id=\"tip\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"context-stroke\"/></marker></defs>";
    s += &format!(
        "<circle cx=\"{c}\" cy=\"{c}\" r=\"{:.1}\" fill=\"none\" stroke=\"#cbd5e1\" stroke-dasharray=\"4 4\"/>",
        scale
    );
    s += &format!("<line x1=\"{}\" x2=\"{}\" y1=\"{c}\" y2=\"{c}\" stroke=\"#e2e8f0\"/><line y1=\"{}\" y2=\"{}\" x1=\"{c}\" x2=\"{c}\" stroke=\"#e2e8f0\"/>", 10.0, size - 10.0, 10.0, size - 10.0);
    for (i, &importance) in imp.iter().enumerate().take(n) {
        let col = snap.column(i);
        let (x, y) = (col[0] as f64, col[1] as f64);
        let norm = v.metrics.norms[i];
        let angle = (y.atan2(x).to_degrees() + 360.0) % 360.0;
        let t = if imax > imin { (importance - imin) / (imax - imin) } else { 1.0 };
        let colour = importance_colour(t);
        let (ex, ey) = (c + x * scale, c - y * scale);
        let width = if norm >= REPRESENTED_NORM { 3.0 } else { 1.5 };
        s += &format!(
            "<line data-testid=\"feature-arrow\" data-feature=\"{i}\" data-norm=\"{norm:.4}\" data-angle=\"{angle:.2}\" x1=\"{c}\" y1=\"{c}\" x2=\"{ex:.1}\" y2=\"{ey:.1}\" stroke=\"{colour}\" stroke-width=\"{width}\" marker-end=\"url(#tip)\"><title>feature {}: length {norm:.2}, importance {:.2}</title></line>",
            i + 1,
            importance
        );
        if norm > 0.15 {
            let len = (x * x + y * y).sqrt().max(1e-9);
            let (lx, ly) = (ex + 14.0 * x / len, ey - 14.0 * y / len);
            s += &format!(
                "<text x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#1e293b\" font-weight=\"600\">{}</text>",
                ly + 4.0,
                i + 1
            );
        }
    }
    s += "</svg>";
    s
}

// ---------------------------------------------------------------- 9.2.4

#[component]
pub fn SuperpositionLab(query: Vec<(String, String)>) -> impl IntoView {
    let (url, problems) = ToyState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    let preset = RwSignal::new(url.preset);
    let sparsity = RwSignal::new(url.sparsity);
    let decay = RwSignal::new(url.decay);
    let seed = RwSignal::new(url.seed.to_string());
    let lr = RwSignal::new(url.lr.to_string());
    let state = RwSignal::new(WorkerState::Starting);
    let toy: RwSignal<Option<Arc<ToyView>>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let rev = RwSignal::new(0u32);
    let pending: StoredValue<Option<Arc<ToyView>>> = StoredValue::new(None);

    // The phase diagram sweep.
    let spec = PhaseSpec::default();
    let total_cells = spec.cells();
    let phase_cells: RwSignal<Vec<Option<PhaseCell>>> = RwSignal::new(vec![None; total_cells]);
    let phase_running = RwSignal::new(false);
    let phase_gen = StoredValue::new(0u64);
    let phase_next = StoredValue::new(0usize);
    let phase_t0 = StoredValue::new(0.0f64);
    let phase_secs: RwSignal<Option<f64>> = RwSignal::new(None);
    let phase_error: RwSignal<Option<String>> = RwSignal::new(None);

    let pump_cell: StoredValue<Option<Pump>> = StoredValue::new(None);
    let pump = move || pump_cell.get_value().expect("pump");
    let spec_for_handler = spec.clone();
    let send_cell = move |p: Pump, spec: &PhaseSpec| {
        let i = phase_next.get_value();
        if i >= spec.cells() {
            return;
        }
        phase_next.set_value(i + 1);
        let cols = spec.importances.len();
        worker::send(
            p.conn,
            Tag { gen: phase_gen.get_value(), kind: Kind::Phase },
            &LabRequest::PhaseCell { spec: spec.clone(), row: i / cols, col: i % cols },
        );
    };

    let config = move || -> Result<ToyConfig, String> {
        let (n, m) = preset.get_untracked().dims();
        let seed = seed
            .get_untracked()
            .trim()
            .parse::<u64>()
            .map_err(|_| "The seed must be a whole number from 0 upwards.".to_string())?;
        let lr = lr
            .get_untracked()
            .trim()
            .parse::<f32>()
            .map_err(|_| "The learning rate must be a number, such as 0.01.".to_string())?;
        let cfg = ToyConfig {
            n_features: n,
            n_hidden: m,
            sparsity: sparsity.get_untracked(),
            importance_decay: decay.get_untracked(),
            importance: None,
            batch_size: 1024,
            lr,
            seed,
        };
        cfg.validate().map_err(|e| format!("{e}"))?;
        Ok(cfg)
    };

    let show = move |v: Arc<ToyView>| {
        toy.set(Some(v));
        rev.update(|r| *r += 1);
    };

    let handler = move |ev: WorkerEvent| match ev {
        WorkerEvent::Ready => state.set(WorkerState::Ready),
        WorkerEvent::Failed(msg) => {
            state.set(WorkerState::Failed(msg));
            if let Some(p) = pump_cell.get_value() {
                p.stop();
            }
            phase_running.set(false);
        }
        WorkerEvent::Reply(tag, reply) => {
            let p = pump();
            if tag.kind == Kind::Phase {
                if tag.gen != phase_gen.get_value() || !phase_running.get_untracked() {
                    return;
                }
                match *reply {
                    LabReply::PhaseCell { cell } => {
                        let cols = spec_for_handler.importances.len();
                        let idx = cell.row * cols + cell.col;
                        phase_cells.update(|c| c[idx] = Some(cell));
                        let done = phase_cells.with_untracked(|c| c.iter().filter(|x| x.is_some()).count());
                        if done >= spec_for_handler.cells() {
                            phase_running.set(false);
                            phase_secs.set(Some((now() - phase_t0.get_value()) / 1000.0));
                        } else {
                            send_cell(p, &spec_for_handler);
                        }
                    }
                    LabReply::Error { message } => {
                        phase_error.set(Some(message));
                        phase_running.set(false);
                    }
                    _ => {}
                }
                return;
            }
            if tag.gen != p.gen.get_value() {
                return;
            }
            match *reply {
                LabReply::Toy { snapshot, metrics } => {
                    let diverged = diverged_message(&snapshot.status).is_some();
                    let step = snapshot.step;
                    let v = Arc::new(ToyView { snapshot, metrics });
                    let draw = if tag.kind == Kind::StepToy { p.on_step(step, diverged) } else { true };
                    if draw {
                        pending.set_value(None);
                        p.drew();
                        show(v);
                    } else {
                        pending.set_value(Some(v));
                    }
                }
                LabReply::Error { message } => {
                    if tag.kind == Kind::StepToy {
                        p.on_step(0, true);
                    }
                    p.stop();
                    error.set(Some(message));
                }
                _ => {}
            }
        }
    };
    let conn = worker::connect(handler);
    pump_cell.set_value(Some(Pump::new(conn, Kind::StepToy)));
    on_cleanup(move || worker::disconnect(conn));
    // A chunk whose redraw was skipped is drawn once training stops.
    Effect::new(move |_| {
        if !pump().training.get() {
            if let Some(v) = pending.get_value() {
                pending.set_value(None);
                show(v);
            }
        }
    });

    // Build the model from the controls; `train` starts training at once.
    let rebuild = move |train: bool| {
        let p = pump();
        match config() {
            Ok(config) => {
                error.set(None);
                p.rebuild(Kind::NewToy, LabRequest::NewToy { config });
                if train {
                    p.start(0, TOY_BUDGET);
                }
            }
            Err(msg) => {
                p.stop();
                error.set(Some(msg));
            }
        }
        // The URL follows the settings the model was built from (a seed or rate that does not parse is not
        // written; the message above says why).
        let d = ToyState::default();
        let state = ToyState {
            preset: preset.get_untracked(),
            sparsity: (sparsity.get_untracked() * 100.0).round() / 100.0,
            decay: (decay.get_untracked() * 100.0).round() / 100.0,
            seed: seed.get_untracked().trim().parse().unwrap_or(d.seed),
            lr: lr.get_untracked().trim().parse().unwrap_or(d.lr),
        };
        replace_hash_soon(&section_hash_with("9.2.4", &state.to_query()));
    };
    rebuild(true);
    // While a slider is dragged, restart once it rests for a moment (not on every pixel, which would queue
    // work the worker then throws away).
    let drag_gen = StoredValue::new(0u64);
    let rebuild_soon = move || {
        pump().stop();
        drag_gen.update_value(|g| *g += 1);
        let g = drag_gen.get_value();
        set_timeout(
            move || {
                // `try_`: the lab may have been left while the slider rested.
                if drag_gen.try_get_value() == Some(g) {
                    rebuild(true);
                }
            },
            std::time::Duration::from_millis(120),
        );
    };

    let train = move |_| {
        let p = pump();
        let Some(v) = toy.get_untracked() else { return };
        if diverged_message(&v.snapshot.status).is_some() {
            return;
        }
        p.start(v.snapshot.step, TOY_BUDGET);
    };
    let stop = move |_| pump().stop();
    let reset = move |_| rebuild(false);

    let start_sweep = move |_| {
        let p = pump();
        p.stop();
        phase_gen.update_value(|g| *g += 1);
        phase_next.set_value(0);
        phase_cells.set(vec![None; total_cells]);
        phase_secs.set(None);
        phase_error.set(None);
        phase_t0.set_value(now());
        phase_running.set(true);
        let spec = PhaseSpec::default();
        for _ in 0..IN_FLIGHT {
            send_cell(p, &spec);
        }
    };
    let cancel_sweep = move |_| {
        phase_gen.update_value(|g| *g += 1);
        phase_running.set(false);
    };

    let training = move || pump().training.get();
    let diverged = move || toy.get().and_then(|v| diverged_message(&v.snapshot.status));

    let status_text = move || {
        if let WorkerState::Failed(m) = state.get() {
            return format!("The lab cannot train: {m}.");
        }
        let Some(v) = toy.get() else { return "Starting the training worker…".into() };
        let s = &v.snapshot;
        let loss = s.loss.map(|l| format!(" · loss {l:.5}")).unwrap_or_default();
        let what = if training() {
            let rate = pump().rate.get().map(|r| format!(" ({} steps/s)", fmt_int(r as usize))).unwrap_or_default();
            format!(" · training…{rate}")
        } else if s.step > 0 && diverged().is_none() {
            " · paused: Train goes on".to_string()
        } else {
            String::new()
        };
        format!("Step {}{loss}{what}", fmt_int(s.step))
    };

    let arrows = move || {
        let v = toy.get()?;
        Some(if v.snapshot.config.n_hidden == 2 {
            view! { <div class="arrows-wrap" inner_html=arrows_svg(&v)></div> }.into_any()
        } else {
            view! { <p class="muted small arrows-note">{format!("With m = {} hidden dimensions the arrows would need {} dimensions to draw; the matrices below show the same geometry.", v.snapshot.config.n_hidden, v.snapshot.config.n_hidden)}</p> }.into_any()
        })
    };

    let summary = move || {
        let v = toy.get()?;
        let m = &v.metrics;
        let n = v.snapshot.config.n_features;
        let gaps = m.gaps.clone().unwrap_or_default();
        let gap_text = if gaps.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = gaps.iter().map(|g| format!("{:.0}°", g.degrees)).collect();
            format!(" Angles between neighbouring represented features: {}.", list.join(", "))
        };
        let gaps_attr: Vec<String> = gaps.iter().map(|g| format!("{:.2}", g.degrees)).collect();
        Some(view! {
            <p class="toy-summary" data-testid="represented" data-count=m.represented data-gaps=gaps_attr.join(",")>
                <strong>{format!("{} of {n} features represented", m.represented)}</strong>
                {format!(" (length above {REPRESENTED_NORM})")}
                {m.dims_per_feature.map(|d| format!(" · {d:.2} dimensions per feature"))}
                "." {gap_text}
            </p>
        })
    };

    let norms_view = move || {
        let v = toy.get()?;
        let m = &v.metrics;
        let max = m.norms.iter().cloned().fold(1.0f32, f32::max);
        let rows = m
            .norms
            .iter()
            .enumerate()
            .map(|(i, &norm)| {
                let inter = m.interference.get(i).copied().unwrap_or(0.0);
                // Interference 0: dedicated (blue); 1 or more: shares its dimensions heavily (orange).
                let t = inter.clamp(0.0, 1.0);
                let colour = format!("rgb({},{},{})", (37.0 + t * (217.0 - 37.0)) as u8, (99.0 + t * (119.0 - 99.0)) as u8, (235.0 + t * (6.0 - 235.0)) as u8);
                view! {
                    <div class="norm-row" data-testid="norm-row" data-feature=i data-norm=format!("{norm:.4}") data-interference=format!("{inter:.4}")>
                        <span class="norm-label">{format!("{}", i + 1)}</span>
                        <span class="norm-bar"><span style=format!("width: {:.1}%; background: {colour}", 100.0 * norm / max)></span></span>
                        <span class="norm-value">{format!("{norm:.2}")}</span>
                        <span class="norm-value muted">{format!("{inter:.2}")}</span>
                    </div>
                }
            })
            .collect_view();
        Some(view! {
            <div class="norm-head small muted"><span>"feature"</span><span>"length ‖Wᵢ‖"</span><span>""</span><span>"shared"</span></div>
            <div class="norms" data-testid="norms">{rows}</div>
        })
    };

    let gram_view = move || {
        let v = toy.get()?;
        let n = v.snapshot.config.n_features;
        let label = |i: usize| format!("{}", i + 1);
        let gram = heatmap_svg(&v.metrics.gram, n, n, &label, &label, "gram-heatmap", &[]);
        let b = heatmap_svg(&v.metrics.b, n, 1, &label, &|_| "b".into(), "bias-heatmap", &[]);
        Some(view! {
            <div class="heatmaps">
                <figure><div inner_html=gram></div><figcaption class="small muted">"WᵀW: the diagonal is each feature's squared length; off the diagonal, how much two features overlap."</figcaption></figure>
                <figure><div inner_html=b></div><figcaption class="small muted">"b, the bias"</figcaption></figure>
            </div>
        })
    };

    let loss_view = move || toy.get().map(|v| view! { <div inner_html=loss_svg(&v.snapshot.losses)></div> });

    let phase_view = move || {
        let cells = phase_cells.get();
        let spec = PhaseSpec::default();
        let (rows, cols) = (spec.densities.len(), spec.importances.len());
        let cell = 22.0;
        let (left, top) = (52.0, 8.0);
        let (w, h) = (left + cell * cols as f64 + 8.0, top + cell * rows as f64 + 40.0);
        let done = cells.iter().filter(|c| c.is_some()).count();
        let mut s = format!("<svg class=\"phase-grid\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"phase diagram\" font-size=\"11\">");
        for (i, c) in cells.iter().enumerate() {
            let (r, k) = (i / cols, i % cols);
            let (fill, title) = match c {
                None => ("#f1f5f9".to_string(), "not computed yet".to_string()),
                Some(c) => {
                    let (fill, name) = match c.phase {
                        Phase::Ignored => ("#cbd5e1", "ignored"),
                        Phase::Dedicated => ("#2563eb", "its own dimension"),
                        Phase::Superposed => ("#d97706", "superposed"),
                    };
                    (
                        fill.to_string(),
                        format!(
                            "density {:.3}, relative importance {:.2}: {name} (length {:.2})",
                            c.density, c.importance, c.norm
                        ),
                    )
                }
            };
            s += &format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{cell}\" height=\"{cell}\" fill=\"{fill}\" stroke=\"#fff\"><title>{title}</title></rect>",
                left + cell * k as f64,
                top + cell * r as f64
            );
        }
        for (r, d) in spec.densities.iter().enumerate() {
            if r % 2 == 0 || r == rows - 1 {
                s += &format!(
                    "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#475569\">{}</text>",
                    left - 4.0,
                    top + cell * (r as f64 + 0.5) + 4.0,
                    if *d >= 0.1 { format!("{d:.2}") } else { format!("{d:.3}") }
                );
            }
        }
        for (k, imp) in spec.importances.iter().enumerate() {
            if k % 3 == 0 || k == cols - 1 {
                s += &format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#475569\">{imp:.1}</text>",
                    left + cell * (k as f64 + 0.5),
                    top + cell * rows as f64 + 14.0
                );
            }
        }
        s += &format!("<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#1e293b\">relative importance of the extra feature →</text>", left + cell * cols as f64 / 2.0, top + cell * rows as f64 + 32.0);
        s += "</svg>";
        let secs = phase_secs.get();
        view! {
            <div class="phase-wrap">
                <div class="phase-axis small muted">"density ↓"</div>
                <div data-testid="phase-grid" data-done=done data-total=cells.len() data-seconds=secs.map(|s| format!("{s:.2}")).unwrap_or_default() inner_html=s></div>
            </div>
        }
    };

    let lab_status = move || {
        view! {
            <p class="lab-status toy-status" data-testid="lab-status" data-rev=move || rev.get()
                data-step=move || toy.get().map(|v| v.snapshot.step).unwrap_or(0)
                data-training=move || if training() { "1" } else { "0" }
                data-steps-per-s=move || pump().rate.get().map(|r| format!("{r:.0}")).unwrap_or_default()
                data-chunk=move || { rev.get(); pump().chunk.get_value() }
                role="status" aria-live="polite">{status_text}</p>
        }
    };

    let failed = move || match state.get() {
        WorkerState::Failed(m) => Some(
            view! { <p class="load-error" data-testid="load-error" role="alert">{format!("The superposition lab could not start its training worker: {m}. Reload the page to try again.")}</p> },
        ),
        _ => None,
    };

    view! {
        <LabFrame notes=notes>
        <div class="toy-lab" data-testid="toy-lab">
            {failed}
            <section class="panel">
                <h3>"A toy model: x′ = ReLU(WᵀW x + b)"</h3>
                <div class="toy-controls">
                    <label>"Features n → hidden m "
                        <select data-testid="preset" on:change=move |ev| {
                            let p = Preset::from_key(&event_target_value(&ev)).unwrap_or(Preset::FiveInTwo);
                            preset.set(p);
                            decay.set(p.default_decay());
                            rebuild(true);
                        } prop:value=move || preset.get().key()>
                            <option value="5-2">"5 features in 2 dimensions"</option>
                            <option value="20-5">"20 features in 5 dimensions"</option>
                        </select>
                    </label>
                    {slider("Sparsity S", sparsity, (0.0, 0.99, 0.01), 2, "sparsity", Commit::WhileDragging, rebuild_soon)}
                    {slider("Importance decay r", decay, (0.5, 1.0, 0.01), 2, "decay", Commit::WhileDragging, rebuild_soon)}
                    <label>"Seed "
                        <input type="number" min="0" step="1" class="num" data-testid="seed" prop:value=move || seed.get()
                            on:change=move |ev| { seed.set(event_target_value(&ev)); rebuild(true); } />
                    </label>
                    <label>"Learning rate "
                        <input type="text" inputmode="decimal" class="num" data-testid="lr" prop:value=move || lr.get()
                            on:change=move |ev| { lr.set(event_target_value(&ev)); rebuild(true); } />
                    </label>
                </div>
                <p class="small muted">"Feature i is nonzero with probability 1 − S (then uniform in [0, 1]) and counts with importance rⁱ. Changing a setting starts training again from the seed."</p>
                <div class="toy-buttons">
                    <button data-testid="train" on:click=train disabled=move || training() || phase_running.get() || diverged().is_some() || state.get() != WorkerState::Ready>"Train"</button>
                    <button data-testid="stop" on:click=stop disabled=move || !training()>"Stop"</button>
                    <button data-testid="reset" on:click=reset>"Reset"</button>
                    {lab_status}
                </div>
                {move || error.get().map(|e| view! { <p class="input-error" data-testid="toy-error" role="alert">{e}</p> })}
                {move || diverged().map(|d| view! { <p class="input-error" data-testid="diverged" role="alert">{d}</p> })}
            </section>
            <div class="toy-grid">
                <section class="panel">
                    <h3>"Each feature's direction (columns of W)"</h3>
                    {arrows}
                    {summary}
                </section>
                <section class="panel">
                    <h3>"Lengths and sharing"</h3>
                    <p class="small muted">"Bar: the length of Wᵢ (above 0.5 counts as represented). Colour and last column: how much feature i shares its dimensions with the others, Σⱼ≠ᵢ (Ŵᵢ·Wⱼ)²; blue is a dimension of its own, orange is heavily shared."</p>
                    {norms_view}
                </section>
            </div>
            <div class="toy-grid">
                <section class="panel">
                    <h3>"WᵀW and b"</h3>
                    {gram_view}
                </section>
                <section class="panel">
                    <h3>"Loss"</h3>
                    <p class="small muted">"Importance-weighted squared error, log scale."</p>
                    {loss_view}
                </section>
            </div>
            <section class="panel">
                <h3>"Phase diagram: when does a feature get its own dimension?"</h3>
                <p class="small muted">"Two features, one hidden dimension. Feature 1 has importance 1; the extra feature's importance runs along the x axis, and both have the density on the y axis (dense at the top). Each cell trains four small models and keeps the best: grey, the extra feature is ignored; blue, it gets the dimension to itself; orange, both share it in superposition."</p>
                <div class="toy-buttons">
                    <button data-testid="sweep" on:click=start_sweep disabled=move || phase_running.get() || state.get() != WorkerState::Ready>"Run the 12 × 12 sweep"</button>
                    <button data-testid="sweep-cancel" on:click=cancel_sweep disabled=move || !phase_running.get()>"Cancel"</button>
                    <span class="small" data-testid="sweep-progress">{move || {
                        let done = phase_cells.with(|c| c.iter().filter(|x| x.is_some()).count());
                        match (phase_running.get(), phase_secs.get()) {
                            (true, _) => format!("{done} / {total_cells} cells…"),
                            (false, Some(s)) => format!("all {total_cells} cells in {s:.1} s"),
                            (false, None) if done > 0 => format!("cancelled at {done} / {total_cells} cells"),
                            _ => String::new(),
                        }
                    }}</span>
                </div>
                <progress max=total_cells value=move || phase_cells.with(|c| c.iter().filter(|x| x.is_some()).count())></progress>
                {move || phase_error.get().map(|e| view! { <p class="input-error" role="alert">{e}</p> })}
                {phase_view}
                <p class="small legend"><span class="swatch" style="background:#cbd5e1"></span>" ignored "<span class="swatch" style="background:#2563eb"></span>" own dimension "<span class="swatch" style="background:#d97706"></span>" superposed"</p>
            </section>
        </div>
        </LabFrame>
    }
}
