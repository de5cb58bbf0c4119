//! The one job runner every lab uses for work longer than a frame: main-thread work cut into slices of
//! `SLICE_MS` with the browser given the thread between them, progress for the lab frame's bar, and Cancel.
//!
//! Invariant: a job stops at its next checkpoint when a newer job starts, when Cancel is pressed, or when the
//! lab is left (its owner is disposed). After every `await` the job asks `alive()` (the checkpoints do it for
//! it) and returns if not, so nothing touches a lab's reactive state after the lab is gone: leaving a busy lab
//! never panics.
//!
//! Work that runs in a Web Worker is a job too: its checkpoints are the worker's replies (`Job::wait_for`), so it
//! has a ticket, progress and Cancel like any other, with nothing to slice on the page.
use std::cell::Cell;
use std::future::Future;

use leptos::prelude::*;

use super::browser::{next_frame, now_ms, yield_to_browser};

/// Main-thread work per slice before the browser gets the thread back: input and painting wait at most this
/// long, half of the 50 ms that counts as a long task.
pub use super::slices::SLICE_MS;
use super::slices::{progress_due, SliceBudget};

/// What the progress bar shows: the phase and the fraction done.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub phase: &'static str,
    pub frac: f32,
}

/// A lab's jobs: at most one runs at a time (per `Jobs`; a lab may own several, e.g. one per panel).
#[derive(Clone, Copy)]
pub struct Jobs {
    ticket: StoredValue<u64>,
    progress: RwSignal<Option<Progress>>,
    /// Whether a job runs, changing only when that does. A view that reads `busy` (a Run/Stop button) is built
    /// again only then: read off `progress`, it was rebuilt on every progress report, ten times a second, and a
    /// click whose press and release fell on two different buttons was lost (Stop missed, seen in the e2e test).
    running: Memo<bool>,
}

/// The running job's handle. Dropping it (the job ended, failed or stopped) clears the progress bar if the job
/// is still the current one.
///
/// The job keeps one slice clock for all its work: a slice starts when the job last got the thread back (it
/// began, or resumed after a checkpoint), so two pieces of work run back to back in one task (one window's
/// measurement ending, the next one's beginning) share the slice instead of each taking a whole one.
pub struct Job {
    jobs: Jobs,
    ticket: u64,
    budget: Cell<SliceBudget>,
    /// The last progress the page was given: its phase and when (see `progress_due`).
    shown: Cell<Option<(&'static str, f64)>>,
}

impl Default for Jobs {
    fn default() -> Self {
        Self::new()
    }
}

impl Jobs {
    /// Jobs owned by the current component: leaving the lab stops the one in progress.
    pub fn new() -> Self {
        let progress = RwSignal::new(None);
        let running = Memo::new(move |_| progress.with(Option::is_some));
        let jobs = Jobs { ticket: StoredValue::new(0), progress, running };
        on_cleanup(move || {
            let _ = jobs.ticket.try_update_value(|t| *t += 1);
        });
        jobs
    }

    /// Starts a job in `phase` and returns its handle; an older job stops at its next checkpoint.
    pub fn begin(self, phase: &'static str) -> Job {
        self.ticket.update_value(|t| *t += 1);
        self.progress.set(Some(Progress { phase, frac: 0.0 }));
        let now = now_ms();
        Job {
            jobs: self,
            ticket: self.ticket.get_value(),
            budget: Cell::new(SliceBudget::new(now)),
            shown: Cell::new(Some((phase, now))),
        }
    }

    /// `begin`, then runs `work` as a task of its own.
    pub fn spawn<F, Fut>(self, phase: &'static str, work: F)
    where
        F: FnOnce(Job) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        let fut = work(self.begin(phase));
        leptos::task::spawn_local(fut);
    }

    /// Stops the job in progress at its next checkpoint.
    pub fn cancel(self) {
        let _ = self.ticket.try_update_value(|t| *t += 1);
        self.progress.try_set(None);
    }

    /// The progress of the job in progress, `None` when idle (tracked).
    pub fn progress(self) -> Option<Progress> {
        self.progress.get()
    }

    /// Whether a job runs (tracked; it notifies only when that changes).
    pub fn busy(self) -> bool {
        self.running.get()
    }

    /// `busy` without tracking, for event handlers and effects that must not subscribe to it.
    pub fn busy_untracked(self) -> bool {
        self.progress.with_untracked(Option::is_some)
    }
}

impl Job {
    /// Whether the job should go on: it is the newest, not cancelled, and its lab is still open.
    pub fn alive(&self) -> bool {
        self.jobs.ticket.try_get_value() == Some(self.ticket)
    }

    /// Shows the progress (a new phase at once, otherwise at most ten times a second: `progress_due`); false once
    /// the job should stop.
    pub fn report(&self, phase: &'static str, frac: f32) -> bool {
        if !self.alive() {
            return false;
        }
        let now = now_ms();
        if progress_due(self.shown.get(), phase, now) {
            self.shown.set(Some((phase, now)));
            self.jobs.progress.try_set(Some(Progress { phase, frac: frac.clamp(0.0, 1.0) }));
        }
        true
    }

    /// A checkpoint: shows the progress, gives the thread back to the browser, and says whether to go on.
    pub async fn pause(&self, phase: &'static str, frac: f32) -> bool {
        if !self.report(phase, frac) {
            return false;
        }
        yield_to_browser().await;
        self.resumed()
    }

    /// A checkpoint that waits for the next frame, so what the job just showed is painted first.
    pub async fn frame(&self) -> bool {
        if !self.alive() {
            return false;
        }
        next_frame().await;
        self.resumed()
    }

    /// A checkpoint at work done outside the page's thread (a Web Worker's reply): waits for `answer`, then
    /// returns its output if the job should go on. Waiting costs the page nothing, so a job made of such
    /// checkpoints needs no slices. A stopped job notices when `answer` resolves, so it must resolve soon after
    /// (a worker answers every request, and leaving the lab terminates the worker, which drops every answer).
    pub async fn wait_for<T>(&self, answer: impl Future<Output = T>) -> Option<T> {
        if !self.alive() {
            return None;
        }
        let out = answer.await;
        self.resumed().then_some(out)
    }

    /// Back from giving the thread away: a new slice starts now. Whether to go on.
    fn resumed(&self) -> bool {
        self.update_budget(|b| b.next_slice(now_ms()));
        self.alive()
    }

    fn update_budget(&self, f: impl FnOnce(&mut SliceBudget)) {
        let mut b = self.budget.get();
        f(&mut b);
        self.budget.set(b);
    }

    /// Calls `step` while the current slice has room for it (the first step of a slice always runs), until it
    /// says it is done; whether the work is done. For work that reports no fraction: the caller pauses between
    /// slices itself.
    pub fn slice<E>(&self, mut step: impl FnMut() -> Result<bool, E>) -> Result<bool, E> {
        while self.budget.get().fits(now_ms()) {
            let began = now_ms();
            let done = step();
            self.update_budget(|b| b.ran(began, now_ms()));
            if done? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Runs `step` (which returns `Some(fraction done)` while there is more, `None` when finished) in slices of
    /// `SLICE_MS` (a step starts only if the longest step so far still fits: see `slices`), pausing between
    /// slices. The first slice is what is left of the current one. `Ok(true)` when finished, `Ok(false)` when the
    /// job was stopped.
    pub async fn sliced<E>(
        &self,
        phase: &'static str,
        mut step: impl FnMut() -> Result<Option<f32>, E>,
    ) -> Result<bool, E> {
        loop {
            let mut frac = None;
            let done = self.slice(|| {
                Ok(match step()? {
                    Some(f) => {
                        frac = Some(f);
                        false
                    }
                    None => true,
                })
            })?;
            if done {
                return Ok(self.alive());
            }
            if !self.pause(phase, frac.unwrap_or(0.0)).await {
                return Ok(false);
            }
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if self.alive() {
            self.jobs.progress.try_set(None);
        }
    }
}

/// Calls `start` once, as soon as `ready` becomes true, so the page opens on a result rather than on a button.
pub fn start_when_ready(ready: impl Fn() -> bool + 'static, start: impl Fn() + 'static) {
    Effect::new(move |prev: Option<bool>| {
        let now = ready();
        if now && prev != Some(true) {
            start();
        }
        now
    });
}
