//! The superposition lab (9.2.4) and the toy sparse-autoencoder lab (9.2.5). All training runs in the Web
//! Worker (`src/bin/toy_worker.rs`, through `super::worker`); the page sends short chunks of steps while
//! "Train" is on, so Stop is immediate and the page never blocks. This file only draws what the worker's
//! `LabReply`s say (computed by `lens::toy` and `lens::methods::superposition`).
use std::sync::Arc;

use leptos::prelude::*;

use super::fmt_int;
use super::worker::{self, Kind, Tag, WorkerEvent};
use crate::lens::methods::superposition::metrics::{ToyMetrics, REPRESENTED_NORM};
use crate::lens::methods::superposition::phase::{Phase, PhaseCell, PhaseSpec};
use crate::lens::methods::superposition::sae::{SaeConfig, SaeMetrics, SaeSnapshot, RECOVERY_COSINE};
use crate::lens::toy::model::{LossLog, Status, ToyConfig, ToySnapshot};
use crate::lens::toy::protocol::{LabReply, LabRequest};

/// One press of Train runs this many toy-model steps, then pauses (the pentagon needs about 5,000).
const TOY_BUDGET: usize = 10_000;
/// Steps the SAE lab trains its toy model for before building the SAE.
const SAE_TOY_STEPS: usize = 5_000;
/// One press of Train runs this many SAE steps.
const SAE_BUDGET: usize = 3_000;
/// Work per request, in milliseconds of worker time: short enough that Stop feels immediate.
const CHUNK_MS: f64 = 25.0;
/// Requests kept in flight while training, so the worker never waits for the page.
const IN_FLIGHT: usize = 2;
/// The page redraws at most this often while training.
const REDRAW_MS: f64 = 60.0;

fn now() -> f64 {
    super::now_ms()
}

#[derive(Clone, Debug, PartialEq)]
enum WorkerState {
    Starting,
    Ready,
    Failed(String),
}

/// Training in chunks: the generation (bumped when the model is rebuilt, so stale replies are ignored),
/// the chunk size, the steps already asked for, and the throughput of the current run.
#[derive(Clone, Copy)]
struct Pump {
    conn: u64,
    gen: StoredValue<u64>,
    chunk: StoredValue<usize>,
    in_flight: StoredValue<usize>,
    planned: StoredValue<usize>,
    budget: StoredValue<usize>,
    last_reply: StoredValue<Option<(f64, usize)>>,
    run_start: StoredValue<Option<(f64, usize)>>,
    training: RwSignal<bool>,
    rate: RwSignal<Option<f64>>,
    last_draw: StoredValue<f64>,
    step_kind: Kind,
}

impl Pump {
    fn new(conn: u64, step_kind: Kind) -> Self {
        Pump {
            conn,
            gen: StoredValue::new(0),
            chunk: StoredValue::new(50),
            in_flight: StoredValue::new(0),
            planned: StoredValue::new(0),
            budget: StoredValue::new(0),
            last_reply: StoredValue::new(None),
            run_start: StoredValue::new(None),
            training: RwSignal::new(false),
            rate: RwSignal::new(None),
            last_draw: StoredValue::new(0.0),
            step_kind,
        }
    }

    /// A new model (or a reset): later replies to older requests are ignored.
    fn rebuild(&self, kind: Kind, request: LabRequest) {
        self.gen.update_value(|g| *g += 1);
        self.in_flight.set_value(0);
        self.planned.set_value(0);
        self.last_reply.set_value(None);
        self.run_start.set_value(None);
        self.rate.set(None);
        self.training.set(false);
        worker::send(self.conn, Tag { gen: self.gen.get_value(), kind }, &request);
    }

    /// Train `budget` more steps from `step`.
    fn start(&self, step: usize, budget: usize) {
        self.budget.set_value(step + budget);
        self.planned.set_value(self.planned.get_value().max(step));
        self.run_start.set_value(Some((now(), step)));
        self.last_reply.set_value(None);
        self.training.set(true);
        self.pump();
    }

    fn stop(&self) {
        self.training.set(false);
    }

    fn pump(&self) {
        while self.training.get_untracked() && self.in_flight.get_value() < IN_FLIGHT {
            let left = self.budget.get_value().saturating_sub(self.planned.get_value());
            let k = self.chunk.get_value().min(left);
            if k == 0 {
                return;
            }
            let request = match self.step_kind {
                Kind::StepSae => LabRequest::StepSae { steps: k },
                _ => LabRequest::StepToy { steps: k },
            };
            if !worker::send(self.conn, Tag { gen: self.gen.get_value(), kind: self.step_kind }, &request) {
                self.training.set(false);
                return;
            }
            self.in_flight.update_value(|n| *n += 1);
            self.planned.update_value(|p| *p += k);
        }
    }

    /// A reply to a step request of the current generation arrived at `step`; returns whether to redraw now.
    fn on_step(&self, step: usize, diverged: bool) -> bool {
        self.in_flight.update_value(|n| *n = n.saturating_sub(1));
        let t = now();
        if let Some((t0, s0)) = self.last_reply.get_value() {
            let (dt, ds) = (t - t0, step.saturating_sub(s0));
            if dt > 1.0 && ds > 0 {
                // Aim the next chunks at CHUNK_MS of work, smoothly.
                let want = (ds as f64 * CHUNK_MS / dt).clamp(10.0, 20_000.0);
                let next = 0.5 * self.chunk.get_value() as f64 + 0.5 * want;
                self.chunk.set_value(next.round() as usize);
            }
        }
        self.last_reply.set_value(Some((t, step)));
        if let Some((t0, s0)) = self.run_start.get_value() {
            if t > t0 && step > s0 {
                self.rate.set(Some((step - s0) as f64 * 1000.0 / (t - t0)));
            }
        }
        if diverged || step >= self.budget.get_value() {
            self.training.set(false);
        }
        let draw = !self.training.get_untracked() || t - self.last_draw.get_value() >= REDRAW_MS;
        if self.training.get_untracked() {
            self.pump();
        }
        draw
    }

    fn drew(&self) {
        self.last_draw.set_value(now());
    }
}

#[derive(Clone, Debug, PartialEq)]
struct ToyView {
    snapshot: ToySnapshot,
    metrics: ToyMetrics,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Preset {
    FiveInTwo,
    TwentyInFive,
}

impl Preset {
    fn key(self) -> &'static str {
        match self {
            Preset::FiveInTwo => "5-2",
            Preset::TwentyInFive => "20-5",
        }
    }
    fn from_key(k: &str) -> Option<Preset> {
        [Preset::FiveInTwo, Preset::TwentyInFive].into_iter().find(|p| p.key() == k)
    }
    fn dims(self) -> (usize, usize) {
        match self {
            Preset::FiveInTwo => (5, 2),
            Preset::TwentyInFive => (20, 5),
        }
    }
    fn default_decay(self) -> f32 {
        match self {
            Preset::FiveInTwo => 1.0,
            Preset::TwentyInFive => 0.9,
        }
    }
}

fn diverged_message(status: &Status) -> Option<String> {
    match status {
        Status::Ready => None,
        // The engine's message already names the step and what to change.
        Status::Diverged { message, .. } => {
            let m = message.trim().trim_end_matches('.');
            let mut c = m.chars();
            let m = c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default();
            Some(format!("{m}. The view keeps the last good weights."))
        }
    }
}

// ---------------------------------------------------------------- drawing (SVG strings)

/// Diverging colour: negative blue, zero white, positive red, for `v / max_abs` in [-1, 1].
fn diverging(v: f32, max_abs: f32) -> String {
    let a = if max_abs > 0.0 { (v / max_abs).clamp(-1.0, 1.0) } else { 0.0 };
    let (c, a) = if a >= 0.0 { ((200.0, 30.0, 45.0), a) } else { ((30.0, 90.0, 200.0), -a) };
    let mix = |x: f32| (255.0 - a * (255.0 - x)) as u8;
    format!("rgb({},{},{})", mix(c.0), mix(c.1), mix(c.2))
}

/// Importance colour: light teal (least important) to deep violet (most).
fn importance_colour(t: f32) -> String {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f32, b: f32| (a + (b - a) * t) as u8;
    format!("rgb({},{},{})", lerp(45.0, 91.0), lerp(170.0, 33.0), lerp(160.0, 182.0))
}

/// A heatmap as SVG: `values` row-major `rows x cols`, coloured on one diverging scale.
fn heatmap_svg(
    values: &[f32],
    rows: usize,
    cols: usize,
    row_label: &dyn Fn(usize) -> String,
    col_label: &dyn Fn(usize) -> String,
    testid: &str,
    highlight: &[(usize, usize)],
) -> String {
    let max_abs = values.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    let cell = if rows.max(cols) <= 6 {
        36.0
    } else if rows.max(cols) <= 12 {
        24.0
    } else {
        15.0
    };
    let (left, top) = (34.0, 22.0);
    let (w, h) = (left + cell * cols as f64 + 4.0, top + cell * rows as f64 + 4.0);
    let mut s = format!(
        "<svg class=\"heatmap\" data-testid=\"{testid}\" data-max-abs=\"{max_abs:.4}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" font-size=\"11\">"
    );
    let label_every = if cols > 12 { 2 } else { 1 };
    for c in 0..cols {
        if c % label_every == 0 {
            s += &format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#475569\">{}</text>",
                left + cell * (c as f64 + 0.5),
                top - 6.0,
                col_label(c)
            );
        }
    }
    for r in 0..rows {
        if r % label_every == 0 || rows <= 12 {
            s += &format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#475569\">{}</text>",
                left - 5.0,
                top + cell * (r as f64 + 0.5) + 4.0,
                row_label(r)
            );
        }
        for c in 0..cols {
            let v = values[r * cols + c];
            s += &format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" stroke=\"#e2e8f0\" stroke-width=\"0.5\"><title>{} · {}: {v:.3}</title></rect>",
                left + cell * c as f64,
                top + cell * r as f64,
                cell,
                cell,
                diverging(v, max_abs),
                row_label(r),
                col_label(c)
            );
        }
    }
    for &(r, c) in highlight {
        s += &format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#1e293b\" stroke-width=\"2\"/>",
            left + cell * c as f64 + 1.0,
            top + cell * r as f64 + 1.0,
            cell - 2.0,
            cell - 2.0
        );
    }
    s += "</svg>";
    s
}

/// A loss curve on a log scale: one point per `every` steps.
fn loss_svg(log: &LossLog) -> String {
    let (w, h, left, bottom) = (360.0, 150.0, 44.0, 24.0);
    let vals: Vec<(f64, f64)> = log
        .values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite() && **v > 0.0)
        .map(|(i, v)| (((i + 1) * log.every) as f64, (*v as f64).log10()))
        .collect();
    let mut s = format!("<svg class=\"loss-chart\" data-testid=\"loss-chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"training loss\" font-size=\"11\">");
    if vals.len() >= 2 {
        let xmax = vals.last().map(|v| v.0).unwrap_or(1.0).max(1.0);
        let ymin = vals.iter().map(|v| v.1).fold(f64::INFINITY, f64::min).floor();
        let ymax = vals.iter().map(|v| v.1).fold(f64::NEG_INFINITY, f64::max).ceil().max(ymin + 1.0);
        let x = |v: f64| left + (w - left - 8.0) * v / xmax;
        let y = |v: f64| 6.0 + (h - bottom - 6.0) * (ymax - v) / (ymax - ymin);
        let mut d = ymin;
        while d <= ymax + 1e-9 {
            s += &format!(
                "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e2e8f0\"/>",
                w - 8.0,
                y(d),
                y(d)
            );
            s += &format!(
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#475569\">1e{}</text>",
                left - 4.0,
                y(d) + 4.0,
                d as i32
            );
            d += 1.0;
        }
        let pts: Vec<String> = vals.iter().map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b))).collect();
        s += &format!("<polyline points=\"{}\" fill=\"none\" stroke=\"#2563eb\" stroke-width=\"2\"/>", pts.join(" "));
        s += &format!("<text x=\"{left}\" y=\"{}\" fill=\"#475569\">0</text>", h - 6.0);
        s += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#475569\">step {}</text>",
            w - 8.0,
            h - 6.0,
            fmt_int(xmax as usize)
        );
    } else {
        s += &format!("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#64748b\">The loss curve appears once training starts.</text>", w / 2.0, h / 2.0);
    }
    s += "</svg>";
    s
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
    for i in 0..n {
        let col = snap.column(i);
        let (x, y) = (col[0] as f64, col[1] as f64);
        let norm = v.metrics.norms[i];
        let angle = (y.atan2(x).to_degrees() + 360.0) % 360.0;
        let t = if imax > imin { (imp[i] - imin) / (imax - imin) } else { 1.0 };
        let colour = importance_colour(t);
        let (ex, ey) = (c + x * scale, c - y * scale);
        let width = if norm >= REPRESENTED_NORM { 3.0 } else { 1.5 };
        s += &format!(
            "<line data-testid=\"feature-arrow\" data-feature=\"{i}\" data-norm=\"{norm:.4}\" data-angle=\"{angle:.2}\" x1=\"{c}\" y1=\"{c}\" x2=\"{ex:.1}\" y2=\"{ey:.1}\" stroke=\"{colour}\" stroke-width=\"{width}\" marker-end=\"url(#tip)\"><title>feature {}: length {norm:.2}, importance {:.2}</title></line>",
            i + 1,
            imp[i]
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

fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// When a slider hands its value on to training.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// On every step while dragging (the caller debounces).
    WhileDragging,
    /// Once, when the thumb is let go; the label still follows the thumb.
    OnRelease,
}

/// A labelled range input for one setting: "`label` = value" with `digits` decimals, the value clamped to
/// `(min, max)` in steps of `step`, and `changed` called as `commit` says.
fn slider(
    label: &'static str,
    value: RwSignal<f32>,
    (min, max, step): (f32, f32, f32),
    digits: usize,
    testid: &'static str,
    commit: Commit,
    changed: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let set = move |ev: web_sys::Event, now: bool| {
        if let Ok(v) = event_target_value(&ev).parse::<f32>() {
            value.set(v.clamp(min, max));
            if now {
                changed();
            }
        }
    };
    view! {
        <label class="slider">{move || format!("{label} = {:.*} ", digits, value.get())}
            <input type="range" min=min.to_string() max=max.to_string() step=step.to_string() data-testid=testid
                prop:value=move || format!("{:.*}", digits, value.get())
                on:input=move |ev| set(ev, commit == Commit::WhileDragging)
                on:change=move |ev| set(ev, commit == Commit::OnRelease) />
        </label>
    }
}

#[component]
pub fn SuperpositionLab(query: Vec<(String, String)>) -> impl IntoView {
    let preset = RwSignal::new(query_value(&query, "nm").and_then(Preset::from_key).unwrap_or(Preset::FiveInTwo));
    let sparsity = RwSignal::new(
        query_value(&query, "s")
            .and_then(|v| v.parse::<f32>().ok())
            .filter(|s| (0.0..=0.99).contains(s))
            .unwrap_or(0.9),
    );
    let decay = RwSignal::new(preset.get_untracked().default_decay());
    let seed = RwSignal::new(query_value(&query, "seed").unwrap_or("0").to_string());
    let lr = RwSignal::new("0.01".to_string());
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
                match reply {
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
            match reply {
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
        let s = format!("{:.2}", sparsity.get_untracked());
        let sd = seed.get_untracked();
        let q = [("nm", preset.get_untracked().key()), ("s", s.as_str()), ("seed", sd.trim())];
        super::shell::replace_hash_soon(&crate::routes::section_hash_with("9.2.4", &q));
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
                if drag_gen.get_value() == g {
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
    }
}

// ---------------------------------------------------------------- 9.2.5

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
        WorkerEvent::Reply(tag, reply) => match (tag.kind, reply) {
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
