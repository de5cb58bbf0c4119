//! The Leptos user interface (wasm32 only). Components stay thin: what they show is computed by plain
//! functions in `lens` (the engine) or in the `logic` parts of each lab module, which are tested natively.
mod attention;
mod charts;
mod draw;
mod features;
mod fetch;
mod language;
mod probe;
mod run;
mod shell;
mod steer;
mod toy;
mod vision;
mod worker;

use wasm_bindgen::prelude::*;

pub use fetch::bench_forward;

/// Mounts the app. A panic anywhere afterwards replaces the page with a message and a reload button
/// instead of leaving a white screen.
pub fn start() {
    install_panic_overlay();
    if let Some(boot) = document().get_element_by_id("boot") {
        boot.remove();
    }
    leptos::mount::mount_to_body(shell::App);
    if let Some(body) = document().body() {
        let _ = body.set_attribute("data-ready", "1");
    }
}

pub(crate) fn document() -> web_sys::Document {
    web_sys::window().expect("a window").document().expect("a document")
}

pub(crate) fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0)
}

fn install_panic_overlay() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        web_sys::console::error_1(&JsValue::from_str(&format!("glassbox panicked: {msg}")));
        let doc = document();
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
             <p><button onclick=\"location.reload()\">Reload</button></p></div>",
            html_escape(&msg)
        );
        div.set_inner_html(&text);
        if let Some(body) = doc.body() {
            let _ = body.append_child(&div);
        }
    }));
}

/// A whole number with thousands separators ("12,345"), as the labs print counts.
pub(crate) fn fmt_int(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
