//! The offline copy in the browser: registers the service worker (`src/worker/sw.js`, completed with the build's
//! file list by `src/worker/post_build.mjs`) and shows what it says in the navigation (`OfflineStatus`). The rules
//! of what is shown are plain Rust in `offline`.
use std::cell::{Cell, RefCell};

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::offline::{Offline, OfflineState, SwMessage};

/// The worker's file, next to index.html: relative, so that its scope is the site's own folder wherever the site
/// is served (the root, or a school's `/glassbox/`).
const SW_URL: &str = "./sw.js";

thread_local! {
    static REGISTRATION: RefCell<Option<web_sys::ServiceWorkerRegistration>> = const { RefCell::new(None) };
    /// The student pressed "Reload": the next change of controller (the update taking over) reloads the page.
    static RELOAD_ASKED: Cell<bool> = const { Cell::new(false) };
}

/// One line in the navigation: saving (with a bar), ready with its size, an update to reload into, or why not.
#[component]
pub fn OfflineStatus() -> impl IntoView {
    let offline = RwSignal::new(Offline::new(false));
    register(offline);
    let state = move || offline.with(|o| o.state.clone());
    view! {
        <div class="offline-status" data-testid="offline-status" data-state=move || state().key()
            role="status" aria-live="polite">
            <span class="offline-label">{move || state().label()}</span>
            {move || state().progress().map(|p| view! {
                <progress class="offline-bar" max="1" value=p.to_string()
                    aria-label="Offline copy saved"></progress>
            })}
            {move || matches!(state(), OfflineState::UpdateReady).then(|| view! {
                <button class="small" data-testid="offline-reload" on:click=move |_| switch_to_update()>
                    "Reload to use it"
                </button>
            })}
            {move || matches!(state(), OfflineState::Ready { .. }).then(|| view! {
                <span class="muted offline-note">" Kept in this browser only."</span>
            })}
        </div>
    }
}

fn register(offline: RwSignal<Offline>) {
    let window = web_sys::window().expect("a window");
    let navigator = window.navigator();
    let supported = js_sys::Reflect::has(&navigator, &JsValue::from_str("serviceWorker")).unwrap_or(false);
    if !supported || !window.is_secure_context() {
        offline.update(|o| {
            o.state = OfflineState::Unavailable(
                "this browser, or this address, does not allow it (it needs https, or localhost)".into(),
            )
        });
        return;
    }
    let container = navigator.service_worker();
    offline.update(|o| o.controlled = container.controller().is_some());

    // Messages from any of the site's workers (the active one, or an update being saved).
    let c = container.clone();
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        let Some(msg) = read_message(&ev.data()) else { return };
        let from_controller = match (ev.source(), c.controller()) {
            (Some(source), Some(controller)) => js_sys::Object::is(&source, &controller),
            _ => false,
        };
        offline.update(|o| o.apply(msg, from_controller));
    });
    container.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // Both handlers live as long as the page.
    on_message.forget();
    let on_change = Closure::<dyn FnMut()>::new(move || {
        if RELOAD_ASKED.with(Cell::get) {
            let _ = web_sys::window().expect("a window").location().reload();
        } else {
            offline.update(Offline::took_over);
        }
    });
    container.set_oncontrollerchange(Some(on_change.as_ref().unchecked_ref()));
    on_change.forget();

    leptos::task::spawn_local(async move {
        match JsFuture::from(container.register(SW_URL)).await {
            Ok(reg) => {
                // A browser that blocks service workers by policy (or a test harness) resolves with nothing.
                let Ok(reg) = reg.dyn_into::<web_sys::ServiceWorkerRegistration>() else {
                    offline.update(|o| o.state = OfflineState::Unavailable("this browser blocks it".into()));
                    return;
                };
                let controlled = offline.with_untracked(|o| o.controlled);
                if controlled && reg.waiting().is_some() {
                    offline.update(Offline::waiting);
                } else if let Some(active) = reg.active() {
                    // The active worker answers `ready` once it has checked that its copy is complete.
                    let _ = active.post_message(&message("status"));
                }
                // A worker installing reports its progress by itself.
                REGISTRATION.with(|r| *r.borrow_mut() = Some(reg));
            }
            // With the network cut, the browser's check for a newer `sw.js` fails and so does `register`; the
            // saved build that runs this page is still there to answer.
            Err(_) if container.controller().is_some() => {
                if let Some(c) = container.controller() {
                    let _ = c.post_message(&message("status"));
                }
            }
            Err(e) => {
                let why = e
                    .dyn_ref::<js_sys::Error>()
                    .map(|e| String::from(e.message()))
                    .unwrap_or_else(|| "the browser refused to register it".into());
                offline.update(|o| o.state = OfflineState::Unavailable(why));
            }
        }
    });
}

/// "Reload to use it": the waiting worker takes over, and the change of controller reloads the page.
fn switch_to_update() {
    let waiting = REGISTRATION.with(|r| r.borrow().as_ref().and_then(|reg| reg.waiting()));
    match waiting {
        Some(w) => {
            RELOAD_ASKED.with(|r| r.set(true));
            let _ = w.post_message(&message("skip-waiting"));
        }
        // Already taken over (another tab pressed it): a plain reload picks the new build up.
        None => {
            let _ = web_sys::window().expect("a window").location().reload();
        }
    }
}

fn message(kind: &str) -> JsValue {
    let o = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&o, &JsValue::from_str("type"), &JsValue::from_str(kind));
    o.into()
}

fn read_message(data: &JsValue) -> Option<SwMessage> {
    let get = |k: &str| js_sys::Reflect::get(data, &JsValue::from_str(k)).ok();
    let number = |k: &str| get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
    match get("type")?.as_string()?.as_str() {
        "precache" => Some(SwMessage::Precache {
            done: number("done") as u32,
            total: number("total") as u32,
            bytes: number("bytes") as u64,
            total_bytes: number("totalBytes") as u64,
        }),
        "ready" => Some(SwMessage::Ready { bytes: number("bytes") as u64 }),
        "failed" => Some(SwMessage::Failed {
            message: get("message").and_then(|v| v.as_string()).unwrap_or_else(|| "unknown error".into()),
        }),
        _ => None,
    }
}
