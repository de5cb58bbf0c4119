//! The Leptos user interface. Two layers, and a rule between them:
//! - `core`: what every lab uses (model loading, the lab frame, the job runner, URL state, browser helpers,
//!   charts, the training worker). It never names a lab.
//! - `labs`: one module per lab, and the registry that maps each section's `LabKind` to its view. A lab imports
//!   only `app::core`, `lens` and `routes`, never another lab (`tests/boundaries.rs` checks it).
//!
//! The plain parts (URL state, each lab's state and rules) build natively and are unit-tested there; the views
//! build for wasm32 only.
pub mod core;
pub mod labs;

#[cfg(target_arch = "wasm32")]
mod bench;
#[cfg(target_arch = "wasm32")]
mod shell;

#[cfg(target_arch = "wasm32")]
pub use bench::bench_forward;

/// Mounts the app. A panic anywhere afterwards replaces the page with a message and a reload button
/// instead of leaving a white screen.
#[cfg(target_arch = "wasm32")]
pub fn start() {
    install_panic_overlay();
    let doc = core::browser::document();
    if let Some(boot) = doc.get_element_by_id("boot") {
        boot.remove();
    }
    leptos::mount::mount_to_body(shell::App);
    if let Some(body) = doc.body() {
        let _ = body.set_attribute("data-ready", "1");
    }
    core::warm::soon();
}

#[cfg(target_arch = "wasm32")]
fn install_panic_overlay() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        web_sys::console::error_1(&wasm_bindgen::JsValue::from_str(&format!("glassbox panicked: {msg}")));
        let doc = core::browser::document();
        if doc.get_element_by_id("fatal-error").is_some() {
            return;
        }
        let Ok(div) = doc.create_element("div") else { return };
        div.set_id("fatal-error");
        let _ = div.set_attribute("data-testid", "fatal-error");
        let _ = div.set_attribute("role", "alert");
        div.set_class_name("fatal");
        let text = format!(
            "<div class=\"fatal-box\"><h1>Something broke in the playground</h1>\
             <p>The page hit an internal error and stopped. Your text is not lost if it is in the address bar: \
             reloading brings the section back.</p><pre>{}</pre>\
             <p><button id=\"fatal-reload\">Reload</button></p></div>",
            core::format::html_escape(&msg)
        );
        div.set_inner_html(&text);
        // A listener, not an `onclick` attribute: the page's Content-Security-Policy forbids inline handlers.
        if let Some(button) = div.query_selector("#fatal-reload").ok().flatten() {
            let reload = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(|| {
                let _ = web_sys::window().expect("a window").location().reload();
            });
            let _ =
                button.add_event_listener_with_callback("click", wasm_bindgen::JsCast::unchecked_ref(reload.as_ref()));
            reload.forget();
        }
        if let Some(body) = doc.body() {
            let _ = body.append_child(&div);
        }
    }));
}
