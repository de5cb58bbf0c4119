//! What the labs on the Moby-Dick model (probing 9.2.3, steering 9.3.2) share around their work: the model's
//! loading message, the first run once the model is there, and a run on the main thread that is sliced between
//! frames, shows its progress and can be cancelled. The feature browser's live measurement uses the tickets.
use std::sync::Arc;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::fetch::LoadedChar;

/// Tickets for work that a newer start, a Cancel or leaving the page must stop. Each start takes a ticket;
/// the work goes on only while its ticket is the newest, checking between two slices.
#[derive(Clone, Copy)]
pub(super) struct Tickets(StoredValue<u64>);

impl Tickets {
    /// Tickets owned by the current component: leaving the page revokes the one in use.
    pub fn new() -> Self {
        let t = Tickets(StoredValue::new(0));
        on_cleanup(move || t.0.try_update_value(|r| *r += 1).unwrap_or(()));
        t
    }

    /// A new ticket; every older one stops being current.
    pub fn take(self) -> u64 {
        self.0.update_value(|r| *r += 1);
        self.0.get_value()
    }

    /// Whether the work holding `ticket` should go on. `try_`: the component may be gone.
    pub fn is_current(self, ticket: u64) -> bool {
        self.0.try_get_value() == Some(ticket)
    }

    /// Stops the work holding the current ticket at its next check.
    pub fn revoke(self) {
        self.0.update_value(|r| *r += 1);
    }
}

/// Runs sliced between frames, with a phase and a fraction done to show (see `run_progress`).
#[derive(Clone, Copy)]
pub(super) struct Runs {
    tickets: Tickets,
    /// The phase and the fraction done of the run in progress; `None` when nothing runs.
    pub busy: RwSignal<Option<(&'static str, f32)>>,
}

impl Runs {
    pub fn new() -> Self {
        Self { tickets: Tickets::new(), busy: RwSignal::new(None) }
    }

    /// Starts a run in `phase` and returns its ticket; an older run stops at its next check.
    pub fn begin(self, phase: &'static str) -> u64 {
        self.busy.set(Some((phase, 0.0)));
        self.tickets.take()
    }

    pub fn alive(self, ticket: u64) -> bool {
        self.tickets.is_current(ticket)
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
        self.tickets.revoke();
        self.busy.set(None);
    }
}

/// The progress bar of the run in progress and its Cancel button (`{testid}-progress`, `{testid}-cancel`).
pub(super) fn run_progress(
    runs: Runs,
    testid: &'static str,
    on_cancel: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
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
pub(super) fn model_status(
    model: RwSignal<Option<Result<Arc<LoadedChar>, String>>>,
    lab: &'static str,
) -> impl Fn() -> Option<AnyView> + Copy {
    move || {
        match model.get() {
        None => Some(view! { <p class="muted" data-testid="lab-loading">"Loading the Moby-Dick model…"</p> }.into_any()),
        Some(Err(e)) => Some(view! { <p class="load-error" data-testid="load-error" role="alert">{format!("The {lab} lab could not start: {e}")}</p> }.into_any()),
        Some(Ok(_)) => None,
    }
    }
}

/// Main-thread work per slice before the browser gets the thread back: input and painting wait at most this
/// long, half of the 50 ms that counts as a long task.
pub(super) const SLICE_MS: f64 = 25.0;

/// Calls `step` until it says it is done or the slice's time is up; returns whether the work is done.
pub(super) fn slice<E>(mut step: impl FnMut() -> Result<bool, E>) -> Result<bool, E> {
    let t0 = super::now_ms();
    loop {
        if step()? {
            return Ok(true);
        }
        if super::now_ms() - t0 >= SLICE_MS {
            return Ok(false);
        }
    }
}

/// Gives the thread back to the browser for a moment (a zero timeout: input, layout and painting run first).
pub(super) async fn yield_to_browser() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(resolve.unchecked_ref(), 0);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
