//! The page's side of our Web Workers (`src/bin/toy_worker.rs` trains the toy models, `src/bin/tokenizer_worker.rs`
//! runs an opened model's tokenizer): start one, send requests as JSON, and resolve each request's answer with
//! its reply. A worker answers every request exactly once and in order, so a queue of answers in flight matches
//! replies to requests. A job awaits its answers as checkpoints (`core::jobs::Job::wait_for`): a reply nobody
//! waits for any more (its job was stopped) is dropped unread.
//!
//! Connections live in a thread-local table keyed by a number, so components hold only a `Worker` (which is
//! `Send`, as Leptos wants) and the worker is terminated when the component is cleaned up. What differs between
//! workers (their messages, their loader, what the page calls them) is a `Protocol`.
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::channel::oneshot;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::lens::gpt2::tokenizer::{TokReply, TokRequest};
use crate::lens::toy::protocol::{LabReply, LabRequest};

use crate::serve::READY;
/// How long a worker may take to start before the lab says it failed.
const START_TIMEOUT_MS: i32 = 30_000;

/// One kind of worker: its messages, the loader Trunk's build puts next to index.html (not hashed), and its
/// name in messages.
pub trait Protocol: 'static {
    type Request: Serialize;
    type Reply: DeserializeOwned;
    const LOADER: &'static str;
    /// Its name in the browser's task manager and debugger.
    const NAME: &'static str;
    /// Its name in the messages a student reads ("the training worker").
    const WHAT: &'static str;
    /// The reply that stands for one the page could not read.
    fn unreadable(message: String) -> Self::Reply;
}

/// The superposition and SAE labs' trainer.
pub struct Training;

impl Protocol for Training {
    type Request = LabRequest;
    type Reply = LabReply;
    const LOADER: &'static str = "./toy_worker_loader.js";
    const NAME: &'static str = "glassbox-toy-trainer";
    const WHAT: &'static str = "the training worker";
    fn unreadable(message: String) -> LabReply {
        LabReply::Error { message }
    }
}

/// An opened model's tokenizer.
pub struct Tokenizing;

impl Protocol for Tokenizing {
    type Request = TokRequest;
    type Reply = TokReply;
    const LOADER: &'static str = "./tokenizer_worker_loader.js";
    const NAME: &'static str = "glassbox-tokenizer";
    const WHAT: &'static str = "the tokenizer worker";
    fn unreadable(message: String) -> TokReply {
        TokReply::Error { message }
    }
}

/// What happens to the worker itself; replies go to the answers of `Worker::ask`.
pub enum WorkerEvent {
    Ready,
    Failed(String),
}

/// A connection to a worker: only a number, so it is `Copy` and `Send`.
pub struct Worker<P: Protocol = Training>(u64, PhantomData<fn() -> P>);

impl<P: Protocol> Clone for Worker<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: Protocol> Copy for Worker<P> {}
impl<P: Protocol> PartialEq for Worker<P> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<P: Protocol> std::fmt::Debug for Worker<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Worker({}, {})", self.0, P::NAME)
    }
}

/// The answer to one request: resolves to its reply, or to `None` if the worker stopped or was disconnected first
/// (then every answer still awaited resolves, so no job waits for ever). The reply is read (parsed) only when it
/// is awaited.
pub struct Answer<P: Protocol = Training>(oneshot::Receiver<String>, PhantomData<fn() -> P>);

impl<P: Protocol> Future for Answer<P> {
    type Output = Option<P::Reply>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| {
            r.ok().map(|text| {
                serde_json::from_str::<P::Reply>(&text)
                    .unwrap_or_else(|e| P::unreadable(format!("the page could not read {}'s reply: {e}", P::WHAT)))
            })
        })
    }
}

struct Conn {
    worker: web_sys::Worker,
    state: Life,
    /// Requests sent before the worker listened, posted once it does.
    queued: Vec<(oneshot::Sender<String>, JsValue)>,
    in_flight: VecDeque<oneshot::Sender<String>>,
    _onmessage: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _onerror: Closure<dyn FnMut(web_sys::Event)>,
}

/// Where a worker is in its life: requests wait while it starts, go out while it listens, and are answered
/// with nothing at once after it failed (a terminated worker would never answer them).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Life {
    Starting,
    Listening,
    Failed,
}

thread_local! {
    static CONNS: RefCell<HashMap<u64, Conn>> = RefCell::new(HashMap::new());
    static NEXT_ID: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

impl<P: Protocol> Worker<P> {
    /// Starts a worker; `on_event` hears when it listens or fails (a failure arrives after this returns).
    pub fn connect(on_event: impl Fn(WorkerEvent) + 'static) -> Worker<P> {
        let id = NEXT_ID.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        });
        let on_event: Rc<dyn Fn(WorkerEvent)> = Rc::new(on_event);
        let opts = web_sys::WorkerOptions::new();
        opts.set_name(P::NAME);
        let worker = match web_sys::Worker::new_with_options(P::LOADER, &opts) {
            Ok(w) => w,
            Err(e) => {
                let msg = e.as_string().or_else(|| js_sys::Error::from(e).message().as_string()).unwrap_or_default();
                let h = on_event.clone();
                set_timeout(move || h(WorkerEvent::Failed(format!("{} could not be created ({msg})", P::WHAT))), 0);
                return Worker(id, PhantomData);
            }
        };
        let h = on_event.clone();
        let onmessage = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            let Some(text) = ev.data().as_string() else { return };
            if text == READY {
                with_conn(id, |conn| {
                    conn.state = Life::Listening;
                    for (answer, message) in std::mem::take(&mut conn.queued) {
                        if conn.worker.post_message(&message).is_ok() {
                            conn.in_flight.push_back(answer);
                        }
                    }
                });
                h(WorkerEvent::Ready);
                return;
            }
            let Some(answer) = with_conn(id, |conn| conn.in_flight.pop_front()).flatten() else { return };
            // A reply whose job has stopped is not even read.
            if answer.is_canceled() {
                return;
            }
            let _ = answer.send(text);
        });
        let h = on_event.clone();
        let onerror = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
            // Handled here: the lab shows the message instead of the console.
            ev.prevent_default();
            let detail = ev.dyn_ref::<web_sys::ErrorEvent>().map(|e| e.message()).filter(|m| !m.is_empty());
            let msg = match detail {
                Some(m) => format!("{} stopped with an error: {m}", P::WHAT),
                None => format!("{} could not be loaded ({}); was the site built with Trunk?", P::WHAT, P::LOADER),
            };
            // Stopped but kept in the table: dropping the connection would drop this very closure. Dropping the
            // answers in flight ends the jobs waiting for them.
            with_conn(id, |conn| {
                conn.worker.terminate();
                conn.state = Life::Failed;
                conn.queued.clear();
                conn.in_flight.clear();
            });
            h(WorkerEvent::Failed(msg));
        });
        worker.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        worker.set_onerror(Some(onerror.as_ref().unchecked_ref()));
        CONNS.with(|c| {
            c.borrow_mut().insert(
                id,
                Conn {
                    worker,
                    state: Life::Starting,
                    queued: Vec::new(),
                    in_flight: VecDeque::new(),
                    _onmessage: onmessage,
                    _onerror: onerror,
                },
            )
        });
        let h = on_event;
        set_timeout(
            move || {
                // (A worker that failed earlier is not reported twice.)
                if with_conn(id, |conn| conn.state == Life::Starting) == Some(true) {
                    Worker::<P>(id, PhantomData).disconnect();
                    h(WorkerEvent::Failed(format!("{} did not start within {} s", P::WHAT, START_TIMEOUT_MS / 1000)));
                }
            },
            START_TIMEOUT_MS,
        );
        Worker(id, PhantomData)
    }

    /// Sends `request` now (before the worker listens it waits in a queue) and returns its answer.
    pub fn ask(self, request: &P::Request) -> Answer<P> {
        self.ask_with(request, &[])
    }

    /// `ask`, with `files` attached: the worker reads them itself and hands their texts to its handler, in
    /// order (`crate::serve`). The page only passes the handles, so their bytes never cross its own thread.
    pub fn ask_with(self, request: &P::Request, files: &[web_sys::Blob]) -> Answer<P> {
        let (answer, reply) = oneshot::channel();
        if let Ok(json) = serde_json::to_string(request) {
            let message = if files.is_empty() {
                JsValue::from_str(&json)
            } else {
                let parts = js_sys::Array::of1(&JsValue::from_str(&json));
                for f in files {
                    parts.push(f);
                }
                parts.into()
            };
            // A request that cannot go out drops its answer, which resolves to `None`.
            with_conn(self.0, |conn| match conn.state {
                Life::Starting => conn.queued.push((answer, message)),
                Life::Listening => {
                    if conn.worker.post_message(&message).is_ok() {
                        conn.in_flight.push_back(answer);
                    }
                }
                Life::Failed => {}
            });
        }
        Answer(reply, PhantomData)
    }

    /// Terminates the worker and forgets the connection; every answer still awaited resolves to `None`.
    pub fn disconnect(self) {
        if let Some(conn) = CONNS.with(|c| c.borrow_mut().remove(&self.0)) {
            conn.worker.terminate();
            conn.worker.set_onmessage(None);
            conn.worker.set_onerror(None);
        }
    }
}

/// Runs `f` on connection `id`, if it is still there.
fn with_conn<R>(id: u64, f: impl FnOnce(&mut Conn) -> R) -> Option<R> {
    CONNS.with(|c| c.borrow_mut().get_mut(&id).map(f))
}

fn set_timeout(f: impl FnOnce() + 'static, ms: i32) {
    let cb = Closure::once_into_js(f);
    if let Some(w) = web_sys::window() {
        let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(cb.unchecked_ref(), ms);
    }
}
