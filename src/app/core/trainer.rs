//! What the two toy-model labs (9.2.4 superposition, 9.2.5's toy SAE) share. All training runs in the Web Worker
//! (`src/bin/toy_worker.rs`, through `super::worker`); the page only draws the worker's `LabReply`s.
//! - `rules` (plain, tested natively): the chunk controller, which replies are drawn, what a reply means for
//!   the run, and the labs' messages about it.
//! - `run` (browser): `Trainer`, the worker driven by the lab's jobs (`super::jobs`), and the status line and
//!   messages both labs show.
//! - Here: the loss chart, and the slider.
//!
//! Natively only `rules` is built (see `core.rs`), so the labs' plain modules and tests can use it.
mod rules;
mod run;

pub use rules::*;
pub use run::*;

use leptos::prelude::*;

use super::charts::{Axis, LineChart};
use crate::lens::toy::model::LossLog;

/// The loss on a log scale, one point per `log.every` steps.
pub fn loss_chart(log: &LossLog) -> impl IntoView {
    let points: Vec<(f64, f64)> = log
        .values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite() && **v > 0.0)
        .map(|(i, v)| (((i + 1) * log.every) as f64, (*v as f64).log10()))
        .collect();
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min).floor();
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max).ceil();
    let (lo, hi) = if points.is_empty() { (-2, 0) } else { (lo as i32, (hi as i32).max(lo as i32 + 1)) };
    let steps = points.last().map(|p| p.0).unwrap_or(1.0);
    view! {
        <LineChart lines=vec![(points, "blue")] x=Axis::from_zero(steps, 5).titled("training step")
            y=Axis::decades(lo, hi).titled("loss") size=(420.0, 220.0) class="loss-chart" testid="loss-chart"
            empty="The loss curve appears once training starts." label="training loss, log scale" />
    }
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
