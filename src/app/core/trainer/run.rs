//! A toy lab's training worker, driven by the lab's jobs. A job sends requests and awaits their replies as its
//! checkpoints (`Job::wait_for`), so it has a ticket, progress and Cancel like any main-thread job: a newer run,
//! Cancel (or Stop) and leaving the lab all end it at its next reply, after which it touches nothing. The
//! replies of a stopped run are dropped unread (see `core::worker`).
use std::collections::VecDeque;

use leptos::prelude::*;

use super::super::browser::now_ms;
use super::super::jobs::Job;
use super::super::worker::{Answer, Worker, WorkerEvent};
use super::rules::{cannot_train, status_of, worker_failed, Chunks, Redraw, WorkerState, FIRST_CHUNK, IN_FLIGHT};
use crate::lens::toy::model::Status;
use crate::lens::toy::protocol::{LabReply, LabRequest};

/// A lab's training worker as its jobs see it: the connection, whether it listens, the chunk size learnt so
/// far (kept from run to run) and the speed of the latest run.
#[derive(Clone, Copy)]
pub struct Trainer {
    worker: Worker,
    pub state: RwSignal<WorkerState>,
    pub rate: RwSignal<Option<f64>>,
    chunk: StoredValue<usize>,
}

/// How a training run ended, when its job was not stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every step asked for was taken.
    Finished,
    /// The run diverged; its last reply, drawn, holds the last good weights.
    Diverged,
}

impl Trainer {
    /// Starts the lab's worker. Leaving the lab terminates it, which resolves every answer still awaited, so the
    /// lab's jobs end too.
    pub fn new() -> Self {
        let state = RwSignal::new(WorkerState::Starting);
        let worker = Worker::connect(move |ev| {
            // `try_`: a failure may be reported after the lab was left.
            state.try_set(match ev {
                WorkerEvent::Ready => WorkerState::Ready,
                WorkerEvent::Failed(m) => WorkerState::Failed(m),
            });
        });
        on_cleanup(move || worker.disconnect());
        Trainer { worker, state, rate: RwSignal::new(None), chunk: StoredValue::new(FIRST_CHUNK) }
    }

    /// Whether the worker listens (tracked).
    pub fn ready(self) -> bool {
        self.state.with(|s| *s == WorkerState::Ready)
    }

    /// One request, as a checkpoint of `job`: the reply, or the message of an error reply. `None` when the job
    /// was stopped, or the worker went away (its state says why); then the caller returns and touches nothing.
    pub async fn ask(self, job: &Job, request: &LabRequest) -> Option<Result<LabReply, String>> {
        Some(match job.wait_for(self.worker.ask(request)).await?? {
            LabReply::Error { message } => Err(message),
            reply => Ok(reply),
        })
    }

    /// `requests` as `job`, `IN_FLIGHT` at a time, each reply handed to `each` in order; an error reply ends
    /// it. `None` as for `ask`.
    pub async fn ask_each(
        self,
        job: &Job,
        requests: impl IntoIterator<Item = LabRequest>,
        mut each: impl FnMut(LabReply),
    ) -> Option<Result<(), String>> {
        let mut requests = requests.into_iter();
        let ask = |r: LabRequest| self.worker.ask(&r);
        let mut answers: VecDeque<Answer> = requests.by_ref().take(IN_FLIGHT).map(ask).collect();
        while let Some(answer) = answers.pop_front() {
            let reply = job.wait_for(answer).await??;
            // The worker gets its next request before the page handles this reply.
            answers.extend(requests.next().map(ask));
            match reply {
                LabReply::Error { message } => return Some(Err(message)),
                reply => each(reply),
            }
        }
        Some(Ok(()))
    }

    /// Trains `steps` more steps as `job`, in chunks of `request(k)` (see `Chunks`), with the share done on
    /// the job's progress bar. The newest reply goes to `show` at most every `REDRAW_MS` and always at the
    /// end; an error reply first shows the last good reply held back, then ends the run with its message.
    /// `None` as for `ask`.
    pub async fn train(
        self,
        job: &Job,
        phase: &'static str,
        steps: usize,
        request: impl Fn(usize) -> LabRequest,
        show: impl Fn(LabReply),
    ) -> Option<Result<Ended, String>> {
        let mut chunks = Chunks::new(steps, self.chunk.get_value(), now_ms());
        let mut redraw = Redraw::default();
        let mut answers: VecDeque<Answer> = VecDeque::new();
        let top_up = |chunks: &mut Chunks, answers: &mut VecDeque<Answer>| {
            while let Some(k) = chunks.next_request() {
                answers.push_back(self.worker.ask(&request(k)));
            }
        };
        top_up(&mut chunks, &mut answers);
        while let Some(answer) = answers.pop_front() {
            let reply = job.wait_for(answer).await??;
            let now = now_ms();
            chunks.answered(now);
            self.chunk.set_value(chunks.size());
            self.rate.set(chunks.rate(now));
            let diverged = match status_of(&reply) {
                Ok(status) => matches!(status, Status::Diverged { .. }),
                Err(message) => {
                    if let Some(good) = redraw.take() {
                        show(good);
                    }
                    return Some(Err(message));
                }
            };
            let last = diverged || chunks.finished();
            if !last {
                // The worker gets its next chunk before the page draws this one.
                top_up(&mut chunks, &mut answers);
            }
            job.report(phase, chunks.frac());
            if let Some(reply) = redraw.offer(reply, now, last) {
                show(reply);
            }
            if last {
                return Some(Ok(if diverged { Ended::Diverged } else { Ended::Finished }));
            }
        }
        Some(Ok(Ended::Finished))
    }
}

impl Default for Trainer {
    fn default() -> Self {
        Self::new()
    }
}

/// The status line both toy labs show, with what the tests and the benchmark read: the step, whether a run is
/// in progress, its speed, and the chunk size (`data-rev` counts the drawn replies).
#[component]
pub fn RunStatus(
    trainer: Trainer,
    #[prop(into)] step: Signal<usize>,
    #[prop(into)] training: Signal<bool>,
    rev: RwSignal<u32>,
    #[prop(into)] text: Signal<String>,
) -> impl IntoView {
    let text = move || match trainer.state.get() {
        WorkerState::Failed(m) => cannot_train(&m),
        _ => text.get(),
    };
    view! {
        <p class="lab-status toy-status" data-testid="lab-status" data-rev=move || rev.get()
            data-step=move || step.get()
            data-training=move || if training.get() { "1" } else { "0" }
            data-steps-per-s=move || trainer.rate.get().map(|r| format!("{r:.0}")).unwrap_or_default()
            data-chunk=move || { rev.get(); trainer.chunk.get_value() }
            role="status" aria-live="polite">{text}</p>
    }
}

/// The alert of `lab` ("the superposition lab") when its worker could not start.
pub fn worker_alert(trainer: Trainer, lab: &'static str) -> impl IntoView {
    move || match trainer.state.get() {
        WorkerState::Failed(m) => {
            Some(view! { <p class="load-error" data-testid="load-error" role="alert">{worker_failed(lab, &m)}</p> })
        }
        _ => None,
    }
}

/// A run's messages under its buttons: why a request failed (`toy-error`), and why training cannot go on
/// (`diverged`, from `diverged_message`).
pub fn run_messages(
    error: RwSignal<Option<String>>,
    diverged: impl Fn() -> Option<String> + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        {move || error.get().map(|e| view! { <p class="input-error" data-testid="toy-error" role="alert">{e}</p> })}
        {move || diverged().map(|d| view! { <p class="input-error" data-testid="diverged" role="alert">{d}</p> })}
    }
}
