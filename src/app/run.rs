//! What the labs on the Moby-Dick model (probing 9.2.3, steering 9.3.2) share around their work: the model's
//! loading message, the first run once the model is there, and a run on the main thread that is sliced between
//! frames, shows its progress and can be cancelled.
use std::sync::Arc;

use leptos::prelude::*;

use super::fetch::LoadedChar;

/// Runs sliced between frames. Each run takes a ticket; a run goes on only while its ticket is the newest, so
/// Cancel, a newer run or leaving the page stop it at its next check (between two slices).
#[derive(Clone, Copy)]
pub(super) struct Runs {
    newest: StoredValue<u64>,
    /// The phase and the fraction done of the run in progress; `None` when nothing runs.
    pub busy: RwSignal<Option<(&'static str, f32)>>,
}

impl Runs {
    /// Runs owned by the current component: leaving the page stops the one in progress.
    pub fn new() -> Self {
        let runs = Self { newest: StoredValue::new(0), busy: RwSignal::new(None) };
        on_cleanup(move || runs.newest.try_update_value(|r| *r += 1).unwrap_or(()));
        runs
    }

    /// Starts a run in `phase` and returns its ticket; an older run stops at its next check.
    pub fn begin(self, phase: &'static str) -> u64 {
        self.newest.update_value(|r| *r += 1);
        self.busy.set(Some((phase, 0.0)));
        self.newest.get_value()
    }

    /// Whether the run with this ticket should go on. `try_`: the component may be gone.
    pub fn alive(self, ticket: u64) -> bool {
        self.newest.try_get_value() == Some(ticket)
    }

    /// Shows the progress of the run with this ticket; false once it should stop.
    pub fn report(self, ticket: u64, phase: &'static str, frac: f32) -> bool {
        if !self.alive(ticket) {
            return false;
        }
        self.busy.try_set(Some((phase, frac)));
        true
    }

    /// The run ended (done or failed).
    pub fn finish(self) {
        self.busy.try_set(None);
    }

    /// Stops the run in progress at its next check.
    pub fn cancel(self) {
        self.newest.update_value(|r| *r += 1);
        self.busy.set(None);
    }
}

/// The progress bar of the run in progress and its Cancel button (`{testid}-progress`, `{testid}-cancel`).
pub(super) fn run_progress(runs: Runs, testid: &'static str, on_cancel: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    move || {
        runs.busy.get().map(|(phase, frac)| {
            view! {
                <div class="probe-progress" data-testid=format!("{testid}-progress") role="status">
                    <progress max="1" value=format!("{frac:.3}")></progress>
                    <span class="muted small">{format!("{phase}… {:.0}%", 100.0 * frac)}</span>
                    <button data-testid=format!("{testid}-cancel") on:click=move |_| on_cancel()>"Cancel"</button>
                </div>
            }
        })
    }
}

/// Calls `start` once, as soon as `ready` becomes true, so the page opens on a result rather than on a button.
pub(super) fn start_when_ready(ready: impl Fn() -> bool + 'static, start: impl Fn() + 'static) {
    Effect::new(move |prev: Option<bool>| {
        let now = ready();
        if now && prev != Some(true) {
            start();
        }
        now
    });
}

/// "Loading…" while the Moby-Dick model comes, the reason if it failed, nothing once it is there.
pub(super) fn model_status(model: RwSignal<Option<Result<Arc<LoadedChar>, String>>>, lab: &'static str) -> impl Fn() -> Option<AnyView> + Copy {
    move || match model.get() {
        None => Some(view! { <p class="muted" data-testid="lab-loading">"Loading the Moby-Dick model…"</p> }.into_any()),
        Some(Err(e)) => Some(view! { <p class="load-error" data-testid="load-error" role="alert">{format!("The {lab} lab could not start: {e}")}</p> }.into_any()),
        Some(Ok(_)) => None,
    }
}
