//! The rules of a training run in the worker, in plain Rust (tested natively): how many steps to ask for at a
//! time, which replies to draw, what a reply means for the run, and what the labs say about it.
use std::collections::VecDeque;

use super::super::format::{fmt_int, sentence};
use crate::lens::toy::model::Status;
use crate::lens::toy::protocol::LabReply;

/// Work per request, in milliseconds of worker time: short enough that Stop feels immediate.
pub const CHUNK_MS: f64 = 25.0;
/// Requests kept in flight while training, so the worker never waits for the page.
pub const IN_FLIGHT: usize = 2;
/// The page redraws at most this often while training.
pub const REDRAW_MS: f64 = 60.0;
/// A lab's first chunk, before any reply has shown how fast the worker is.
pub const FIRST_CHUNK: usize = 50;
/// The chunk stays in this range whatever the timings say (a stalled tab can report absurd intervals).
const CHUNK_RANGE: (f64, f64) = (10.0, 20_000.0);

/// What the idle status line says once a run has paused.
pub const PAUSED: &str = "paused: Train goes on";

/// Whether the training worker listens.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerState {
    Starting,
    Ready,
    Failed(String),
}

/// The chunk controller of one run of `budget` steps: it asks for chunks of about `CHUNK_MS` of worker time,
/// `IN_FLIGHT` at a time, and never for more than the budget.
///
/// While requests are always in flight the worker never idles, so the time between two answers is the worker's
/// time for the chunk just answered: that sets the next chunk's size, halfway from the current one, so one
/// slow reply does not swing it.
#[derive(Clone, Debug)]
pub struct Chunks {
    budget: usize,
    asked: usize,
    answered: usize,
    size: usize,
    in_flight: VecDeque<usize>,
    started: f64,
    last_answer: Option<f64>,
}

impl Chunks {
    /// A run of `budget` steps starting at `now` (ms), with chunks of `size` steps until a timing says better.
    pub fn new(budget: usize, size: usize, now: f64) -> Self {
        Chunks {
            budget,
            asked: 0,
            answered: 0,
            size: size.max(1),
            in_flight: VecDeque::new(),
            started: now,
            last_answer: None,
        }
    }

    /// The size of the next request, while fewer than `IN_FLIGHT` are out and steps are left to ask for.
    pub fn next_request(&mut self) -> Option<usize> {
        let k = self.size.min(self.budget - self.asked);
        if self.in_flight.len() >= IN_FLIGHT || k == 0 {
            return None;
        }
        self.asked += k;
        self.in_flight.push_back(k);
        Some(k)
    }

    /// The oldest request in flight was answered at `now` (ms).
    pub fn answered(&mut self, now: f64) {
        let k = self.in_flight.pop_front().unwrap_or(0);
        self.answered += k;
        if let Some(dt) = self.last_answer.map(|t| now - t).filter(|dt| *dt > 1.0 && k > 0) {
            let want = (k as f64 * CHUNK_MS / dt).clamp(CHUNK_RANGE.0, CHUNK_RANGE.1);
            self.size = (0.5 * self.size as f64 + 0.5 * want).round() as usize;
        }
        self.last_answer = Some(now);
    }

    /// Every step of the budget was answered.
    pub fn finished(&self) -> bool {
        self.answered >= self.budget
    }

    /// The share of the budget answered, for the progress bar.
    pub fn frac(&self) -> f32 {
        if self.budget == 0 {
            1.0
        } else {
            self.answered as f32 / self.budget as f32
        }
    }

    /// The chunk size the timings have led to, which the lab's next run starts from.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Steps per second since the run started, once a step was answered.
    pub fn rate(&self, now: f64) -> Option<f64> {
        (now > self.started && self.answered > 0).then(|| self.answered as f64 * 1000.0 / (now - self.started))
    }
}

/// Which of a run's replies are drawn: the run's last one always, the others at most every `REDRAW_MS` (a
/// redraw costs the page more than a chunk costs the worker). The newest reply not drawn is held, so a run that
/// ends on an error can still show the last good state.
#[derive(Clone, Debug)]
pub struct Redraw<T> {
    held: Option<T>,
    last_draw: Option<f64>,
}

impl<T> Default for Redraw<T> {
    fn default() -> Self {
        Redraw { held: None, last_draw: None }
    }
}

impl<T> Redraw<T> {
    /// A reply arrived at `now` (ms), the run's `last` or not: returns it if it is to be drawn now, or holds it.
    pub fn offer(&mut self, reply: T, now: f64, last: bool) -> Option<T> {
        if last || self.last_draw.is_none_or(|t| now - t >= REDRAW_MS) {
            self.held = None;
            self.last_draw = Some(now);
            Some(reply)
        } else {
            self.held = Some(reply);
            None
        }
    }

    /// The newest reply not drawn, if any.
    pub fn take(&mut self) -> Option<T> {
        self.held.take()
    }
}

/// What a reply to a training request says about the run: whether it can go on (a divergence shows in the
/// snapshot's status, with the last good weights), or why the request failed.
pub fn status_of(reply: &LabReply) -> Result<&Status, String> {
    match reply {
        LabReply::Toy { snapshot, .. } => Ok(&snapshot.status),
        LabReply::Sae { snapshot, .. } => Ok(&snapshot.status),
        LabReply::Error { message } => Err(message.clone()),
        LabReply::PhaseCell { .. } => {
            Err("the training worker answered a training request with a phase-diagram cell".into())
        }
    }
}

/// The message for a diverged run, `None` while training can go on.
pub fn diverged_message(status: &Status) -> Option<String> {
    match status {
        Status::Ready => None,
        // The engine's message already names the step and what to change.
        Status::Diverged { message, .. } => {
            Some(format!("{}. The view keeps the last good weights.", sentence(message.trim().trim_end_matches('.'))))
        }
    }
}

/// The status line of a run: "`what` 1,234 · loss 0.01234", then what it is doing: training at its speed, or
/// `idle` (what the lab says while it waits; empty for nothing).
pub fn status_line(
    what: &str,
    step: usize,
    loss: Option<f32>,
    training: bool,
    rate: Option<f64>,
    idle: &str,
) -> String {
    let loss = loss.map(|l| format!(" · loss {l:.5}")).unwrap_or_default();
    let doing = if training {
        let rate = rate.map(|r| format!(" ({} steps/s)", fmt_int(r as usize))).unwrap_or_default();
        format!(" · training…{rate}")
    } else if idle.is_empty() {
        String::new()
    } else {
        format!(" · {idle}")
    };
    format!("{what} {}{loss}{doing}", fmt_int(step))
}

/// The status line of a lab whose worker failed.
pub fn cannot_train(message: &str) -> String {
    format!("The lab cannot train: {message}.")
}

/// The alert of a lab (`the superposition lab`) whose worker failed.
pub fn worker_failed(lab: &str, message: &str) -> String {
    format!("The {lab} could not start its training worker: {message}. Reload the page to try again.")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives `c` as the page would: ask while it lets us, then answer the oldest request `ms` later.
    fn answer_all(c: &mut Chunks, mut now: f64, ms: f64) -> (Vec<usize>, f64) {
        let mut sizes = Vec::new();
        while !c.finished() {
            while let Some(k) = c.next_request() {
                sizes.push(k);
            }
            now += ms;
            c.answered(now);
        }
        (sizes, now)
    }

    #[test]
    fn chunks_keep_two_in_flight_and_never_ask_past_the_budget() {
        let mut c = Chunks::new(120, 50, 0.0);
        assert_eq!((c.next_request(), c.next_request(), c.next_request()), (Some(50), Some(50), None));
        c.answered(10.0);
        assert_eq!(c.next_request(), Some(20), "only the 20 steps left");
        assert_eq!(c.next_request(), None);
        c.answered(20.0);
        c.answered(30.0);
        assert!(c.finished());
        assert_eq!(c.frac(), 1.0);
        assert_eq!(c.next_request(), None);
    }

    #[test]
    fn chunks_settle_on_the_size_that_takes_chunk_ms() {
        // A worker that takes 0.05 ms a step: CHUNK_MS of work is 500 steps, and it runs 20,000 steps/s.
        let mut c = Chunks::new(1_000_000, FIRST_CHUNK, 0.0);
        let mut now = 0.0;
        for _ in 0..40 {
            while c.next_request().is_some() {}
            now += c.in_flight[0] as f64 * 0.05;
            c.answered(now);
        }
        assert!((c.size() as f64 - 500.0).abs() < 5.0, "{}", c.size());
        let rate = c.rate(now).unwrap();
        assert!((rate - 20_000.0).abs() < 1.0, "{rate}");
    }

    #[test]
    fn a_stalled_reply_does_not_blow_the_chunk_up_or_down() {
        let mut c = Chunks::new(1_000_000, 100, 0.0);
        while c.next_request().is_some() {}
        c.answered(10.0);
        c.answered(10.5); // under a millisecond apart: no timing
        assert_eq!(c.size(), 100);
        while c.next_request().is_some() {}
        c.answered(60_000.0); // a minute: the tab slept
        assert!(c.size() >= 10, "{}", c.size());
    }

    #[test]
    fn a_run_of_nothing_is_finished_at_once() {
        let mut c = Chunks::new(0, 50, 0.0);
        assert!(c.finished());
        assert_eq!(c.next_request(), None);
        assert_eq!(c.rate(5.0), None);
        let (sizes, _) = answer_all(&mut Chunks::new(7, 5, 0.0), 0.0, 3.0);
        assert_eq!(sizes.iter().sum::<usize>(), 7);
    }

    #[test]
    fn redraw_draws_the_first_the_last_and_at_most_every_redraw_ms() {
        let mut r = Redraw::default();
        assert_eq!(r.offer(1, 0.0, false), Some(1));
        assert_eq!(r.offer(2, 20.0, false), None);
        assert_eq!(r.offer(3, 40.0, false), None);
        assert_eq!(r.offer(4, REDRAW_MS, false), Some(4));
        assert_eq!(r.offer(5, REDRAW_MS + 1.0, true), Some(5), "the run's last reply is always drawn");
        assert_eq!(r.take(), None);
    }

    #[test]
    fn redraw_holds_the_newest_undrawn_reply_for_an_error() {
        let mut r = Redraw::default();
        r.offer(1, 0.0, false);
        r.offer(2, 10.0, false);
        r.offer(3, 20.0, false);
        assert_eq!(r.take(), Some(3), "the last good state");
        assert_eq!(r.take(), None);
    }

    #[test]
    fn a_divergence_is_explained_and_keeps_the_last_good_weights() {
        assert_eq!(diverged_message(&Status::Ready), None);
        let s = Status::Diverged { step: 3, message: "the loss diverged at step 3: lower the learning rate.".into() };
        assert_eq!(
            diverged_message(&s).unwrap(),
            "The loss diverged at step 3: lower the learning rate. The view keeps the last good weights."
        );
    }

    #[test]
    fn an_error_reply_is_the_reason_a_run_stops() {
        let reply = LabReply::Error { message: "no model".into() };
        assert_eq!(status_of(&reply), Err("no model".to_string()));
    }

    #[test]
    fn the_status_line_says_what_the_run_does() {
        assert_eq!(
            status_line("Step", 12_345, Some(0.012345), true, Some(20_708.4), PAUSED),
            "Step 12,345 · loss 0.01235 · training… (20,708 steps/s)"
        );
        assert_eq!(
            status_line("SAE step", 0, None, false, None, "untrained: press Train"),
            "SAE step 0 · untrained: press Train"
        );
        assert_eq!(status_line("Step", 0, None, false, None, ""), "Step 0");
        assert_eq!(cannot_train("it broke"), "The lab cannot train: it broke.");
    }
}
