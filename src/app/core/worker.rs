//! The page's side of the training worker (`src/bin/toy_worker.rs`): start it, send `LabRequest`s as JSON,
//! and hand each `LabReply` back with the tag of the request it answers. The worker answers every request
//! exactly once and in order, so a queue of tags matches replies to requests.
//!
//! Connections live in a thread-local table keyed by a number, so components hold only a `u64` (which is
//! `Send`, as Leptos wants) and the worker is terminated when the component is cleaned up.
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::lens::toy::protocol::{LabReply, LabRequest};

/// What the worker posts once it listens (see `src/bin/toy_worker.rs`).
const READY: &str = "{\"type\":\"Ready\"}";
/// The loader Trunk writes for the worker binary, next to index.html (not hashed).
const LOADER: &str = "./toy_worker_loader.js";
/// How long the worker may take to start before the lab says it failed.
const START_TIMEOUT_MS: i32 = 30_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    NewToy,
    StepToy,
    NewSae,
    StepSae,
    Phase,
}

/// Which request a reply answers: the lab's run (generation) at the time of sending, and what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag {
    pub gen: u64,
    pub kind: Kind,
}

pub enum WorkerEvent {
    Ready,
    /// Boxed: a reply is large, the other events small.
    Reply(Tag, Box<LabReply>),
    Failed(String),
}

struct Conn {
    worker: web_sys::Worker,
    ready: bool,
    queued: Vec<(Tag, String)>,
    in_flight: VecDeque<Tag>,
    _onmessage: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _onerror: Closure<dyn FnMut(web_sys::Event)>,
}

thread_local! {
    static CONNS: RefCell<HashMap<u64, Conn>> = RefCell::new(HashMap::new());
    static NEXT_ID: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

/// Starts a worker; `handler` receives its events. Returns the connection's id (failures arrive as
/// `WorkerEvent::Failed`, after this returns).
pub fn connect(handler: impl Fn(WorkerEvent) + 'static) -> u64 {
    let id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    });
    let handler: Rc<dyn Fn(WorkerEvent)> = Rc::new(handler);
    let opts = web_sys::WorkerOptions::new();
    opts.set_name("glassbox-toy-trainer");
    let worker = match web_sys::Worker::new_with_options(LOADER, &opts) {
        Ok(w) => w,
        Err(e) => {
            let msg = e.as_string().or_else(|| js_sys::Error::from(e).message().as_string()).unwrap_or_default();
            let h = handler.clone();
            set_timeout(move || h(WorkerEvent::Failed(format!("the training worker could not be created ({msg})"))), 0);
            return id;
        }
    };
    let h = handler.clone();
    let onmessage = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        let Some(text) = ev.data().as_string() else { return };
        if text == READY {
            CONNS.with(|c| {
                if let Some(conn) = c.borrow_mut().get_mut(&id) {
                    conn.ready = true;
                    for (tag, json) in std::mem::take(&mut conn.queued) {
                        if conn.worker.post_message(&JsValue::from_str(&json)).is_ok() {
                            conn.in_flight.push_back(tag);
                        }
                    }
                }
            });
            h(WorkerEvent::Ready);
            return;
        }
        let tag = CONNS.with(|c| c.borrow_mut().get_mut(&id).and_then(|conn| conn.in_flight.pop_front()));
        let reply = serde_json::from_str::<LabReply>(&text).unwrap_or_else(|e| LabReply::Error {
            message: format!("the page could not read the worker's reply: {e}"),
        });
        if let Some(tag) = tag {
            h(WorkerEvent::Reply(tag, Box::new(reply)));
        }
    });
    let h = handler.clone();
    let onerror = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
        // Handled here: the lab shows the message instead of the console.
        ev.prevent_default();
        let detail = ev.dyn_ref::<web_sys::ErrorEvent>().map(|e| e.message()).filter(|m| !m.is_empty());
        let msg = match detail {
            Some(m) => format!("the training worker stopped with an error: {m}"),
            None => format!("the training worker could not be loaded ({LOADER}); was the site built with Trunk?"),
        };
        // Stopped but kept in the table: dropping the connection would drop this very closure.
        CONNS.with(|c| {
            if let Some(conn) = c.borrow_mut().get_mut(&id) {
                conn.worker.terminate();
                conn.ready = true;
                conn.in_flight.clear();
            }
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
                ready: false,
                queued: Vec::new(),
                in_flight: VecDeque::new(),
                _onmessage: onmessage,
                _onerror: onerror,
            },
        )
    });
    let h = handler;
    set_timeout(
        move || {
            let waiting = CONNS.with(|c| c.borrow().get(&id).map(|conn| !conn.ready).unwrap_or(false));
            // (A worker that failed earlier is marked ready, so it is not reported twice.)
            if waiting {
                disconnect(id);
                h(WorkerEvent::Failed(format!(
                    "the training worker did not start within {} s",
                    START_TIMEOUT_MS / 1000
                )));
            }
        },
        START_TIMEOUT_MS,
    );
    id
}

/// Sends `request`; before the worker is ready it waits in a queue. Returns false if the connection is gone.
pub fn send(id: u64, tag: Tag, request: &LabRequest) -> bool {
    let Ok(json) = serde_json::to_string(request) else { return false };
    CONNS.with(|c| {
        let mut conns = c.borrow_mut();
        let Some(conn) = conns.get_mut(&id) else { return false };
        if !conn.ready {
            conn.queued.push((tag, json));
            return true;
        }
        if conn.worker.post_message(&JsValue::from_str(&json)).is_err() {
            return false;
        }
        conn.in_flight.push_back(tag);
        true
    })
}

/// Terminates the worker and forgets the connection.
pub fn disconnect(id: u64) {
    if let Some(conn) = CONNS.with(|c| c.borrow_mut().remove(&id)) {
        conn.worker.terminate();
        conn.worker.set_onmessage(None);
        conn.worker.set_onerror(None);
    }
}

fn set_timeout(f: impl FnOnce() + 'static, ms: i32) {
    let cb = Closure::once_into_js(f);
    if let Some(w) = web_sys::window() {
        let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(cb.unchecked_ref(), ms);
    }
}
