//! What the two toy-model labs (9.2.4 superposition, 9.2.5's toy SAE) share. All training runs in the Web Worker
//! (`src/bin/toy_worker.rs`, through `super::worker`); the page only draws the worker's `LabReply`s.
//! - `rules` (plain, tested natively): the chunk controller, which replies are drawn, what a reply means for
//!   the run, and the labs' messages about it.
//! - `run` (browser): `Trainer`, the worker driven by the lab's jobs (`super::jobs`), and the status line and
//!   messages both labs show.
//! - Here: the heatmap and loss charts, and the slider.
//!
//! Natively only `rules` is built (see `core.rs`), so the labs' plain modules and tests can use it.
mod rules;
mod run;

pub use rules::*;
pub use run::*;

use leptos::prelude::*;

use super::format::fmt_int;
use crate::lens::toy::model::LossLog;

// ---------------------------------------------------------------- drawing (SVG strings)

/// Diverging colour: negative blue, zero white, positive red, for `v / max_abs` in [-1, 1].
pub fn diverging(v: f32, max_abs: f32) -> String {
    let a = if max_abs > 0.0 { (v / max_abs).clamp(-1.0, 1.0) } else { 0.0 };
    let (c, a) = if a >= 0.0 { ((200.0, 30.0, 45.0), a) } else { ((30.0, 90.0, 200.0), -a) };
    let mix = |x: f32| (255.0 - a * (255.0 - x)) as u8;
    format!("rgb({},{},{})", mix(c.0), mix(c.1), mix(c.2))
}

/// Importance colour: light teal (least important) to deep violet (most).
pub fn importance_colour(t: f32) -> String {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f32, b: f32| (a + (b - a) * t) as u8;
    format!("rgb({},{},{})", lerp(45.0, 91.0), lerp(170.0, 33.0), lerp(160.0, 182.0))
}

/// A heatmap as SVG: `values` row-major `rows x cols`, coloured on one diverging scale.
pub fn heatmap_svg(
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
pub fn loss_svg(log: &LossLog) -> String {
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

/// When a slider hands its value on to training.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// On every step while dragging (the caller debounces).
    WhileDragging,
    /// Once, when the thumb is let go; the label still follows the thumb.
    OnRelease,
}

/// A labelled range input for one setting: "`label` = value" with `digits` decimals, the value clamped to
/// `(min, max)` in steps of `step`, and `changed` called as `commit` says.
pub fn slider(
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
