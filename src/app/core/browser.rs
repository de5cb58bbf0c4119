//! The few browser services the labs use, in one place: the document, a clock, the URL's hash, stored
//! preferences, and yielding the thread. Timers and storage come from gloo; what remains is one-line glue.
use wasm_bindgen::JsCast;

pub fn document() -> web_sys::Document {
    web_sys::window().expect("a window").document().expect("a document")
}

/// Milliseconds since the page opened (`performance.now()`), for timings and budgets.
pub fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0)
}

pub fn location_hash() -> String {
    web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default()
}

thread_local! {
    /// Bumped by every navigation: when it starts (`go`) and when the page has taken it in (`navigated`, from
    /// the shell's `hashchange` listener). A lab's delayed URL write from before either is stale.
    static NAVIGATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The shell has taken in a change of the hash (its `hashchange` listener calls this).
pub fn navigated() {
    NAVIGATIONS.with(|n| n.set(n.get() + 1));
}

/// Navigates to `hash` (a new history entry).
pub fn go(hash: &str) {
    navigated();
    if let Some(w) = web_sys::window() {
        let _ = w.location().set_hash(hash);
    }
}

/// Replaces the URL's hash without a navigation or a history entry (for lab state such as the typed text).
pub fn replace_hash(hash: &str) {
    if let Some(h) = web_sys::window().and_then(|w| w.history().ok()) {
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(hash));
    }
}

/// `replace_hash`, once the calls stop for a moment. Typing fires an update per key, and Chrome's
/// `history.replaceState` costs several ms a call (and is rate-limited), so the URL follows a little behind.
pub fn replace_hash_soon(hash: &str) {
    thread_local! {
        static GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    let gen = GENERATION.with(|g| {
        g.set(g.get() + 1);
        g.get()
    });
    let hash = hash.to_string();
    let at_call = (location_hash(), NAVIGATIONS.with(|n| n.get()));
    gloo_timers::callback::Timeout::new(250, move || {
        // A later call supersedes this one; and if the page has navigated since (another section, or the same lab
        // in another state: a chapter link, a presenter step), the old lab's state must not overwrite the new
        // address. Both checks are needed: a link or the back button changes the hash without `go`, and a lab
        // about to be replaced can still call this between `go` and the `hashchange` that replaces it.
        if GENERATION.with(|g| g.get()) == gen && (location_hash(), NAVIGATIONS.with(|n| n.get())) == at_call {
            replace_hash(&hash);
        }
    })
    .forget();
}

/// Whether the student asked the system for less motion (`prefers-reduced-motion: reduce`): smooth scrolling
/// and optional animations are then skipped (the stylesheet stops CSS transitions under the same query).
pub fn reduced_motion() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media("(prefers-reduced-motion: reduce)").ok().flatten())
        .is_some_and(|m| m.matches())
}

/// Whether the system prefers a dark theme now.
pub fn system_dark() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
        .is_some_and(|m| m.matches())
}

/// Applies a colour theme to the page (`html[data-theme]`, which `style/main.css` reads).
pub fn apply_theme(theme: super::theme::Theme) {
    let Some(root) = document().document_element() else { return };
    let _ = root.set_attribute("data-theme", theme.attribute(system_dark()));
}

/// Calls `changed` whenever the system's light or dark preference changes (for the System theme).
pub fn on_system_theme_change(changed: impl Fn() + 'static) {
    use wasm_bindgen::closure::Closure;
    let Some(m) = web_sys::window().and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten()) else {
        return;
    };
    let f = Closure::<dyn Fn()>::new(changed);
    let _ = m.add_event_listener_with_callback("change", f.as_ref().unchecked_ref());
    // The page's own listener for the page's whole life.
    f.forget();
}

/// A stored preference, if present and readable.
pub fn stored(key: &str) -> Option<String> {
    use gloo_storage::Storage;
    gloo_storage::LocalStorage::raw().get_item(key).ok().flatten()
}

/// Stores a preference; a full or disabled storage only loses the preference.
pub fn store(key: &str, value: &str) {
    use gloo_storage::Storage;
    let _ = gloo_storage::LocalStorage::raw().set_item(key, value);
}

/// A click on a citation (`a.cite`, in the chapter or in an exercise shown by a lab) scrolls the chapter pane to
/// its reference and flashes it, instead of changing the route (`#ref-KEY` is not a section).
pub fn follow_citation(ev: web_sys::MouseEvent) {
    use wasm_bindgen::JsCast;
    let Some(el) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return };
    let Ok(Some(link)) = el.closest("a.cite") else { return };
    ev.prevent_default();
    let Some(key) = link.get_attribute("data-ref") else { return };
    if let Some(target) = document().get_element_by_id(&format!("ref-{key}")) {
        let opts = web_sys::ScrollIntoViewOptions::new();
        opts.set_behavior(if reduced_motion() {
            web_sys::ScrollBehavior::Auto
        } else {
            web_sys::ScrollBehavior::Smooth
        });
        opts.set_block(web_sys::ScrollLogicalPosition::Center);
        target.scroll_into_view_with_scroll_into_view_options(&opts);
        let _ = target.class_list().add_1("flash");
        let t = target.clone();
        let cb = wasm_bindgen::closure::Closure::once_into_js(move || {
            let _ = t.class_list().remove_1("flash");
        });
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(cb.unchecked_ref(), 1600);
        }
    }
}

/// Removes a stored preference.
pub fn forget(key: &str) {
    use gloo_storage::Storage;
    let _ = gloo_storage::LocalStorage::raw().remove_item(key);
}

/// Gives the thread back to the browser for a moment: a message posted to ourselves on a `MessageChannel`
/// is a new task, so input, layout and painting due before it run first.
///
/// Tried and set aside: `scheduler.yield()` resumes the work ahead of rendering (Chromium then drew a frame
/// only every 100 ms during a job, and a feature visualization was over before its first frames were shown);
/// waiting for the next animation frame paces a job at one slice per frame, which is slow when the slice
/// budget holds a single short step; a zero timeout is clamped to at least 4 ms once timeouts nest, which
/// took a quarter of every 16 ms slice's time (the probing lab's recording ran at half its one-go speed).
pub async fn yield_to_browser() {
    let Ok(channel) = web_sys::MessageChannel::new() else {
        // No channel (never seen in a browser that runs the app): the timeout still yields.
        gloo_timers::future::TimeoutFuture::new(0).await;
        return;
    };
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        channel.port1().set_onmessage(Some(&resolve));
        let _ = channel.port2().post_message(&wasm_bindgen::JsValue::NULL);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    // Closed, so the ports (and the handler they hold) are let go.
    channel.port1().close();
    channel.port2().close();
}

/// Resolves when the browser next has nothing else to do (`requestIdleCallback`), or after `timeout_ms` at the
/// latest; where there is no `requestIdleCallback` (Safari), after a zero timeout. For work that can wait behind
/// whatever is already queued: the rest of a chapter page waits behind the lab's first result.
pub async fn when_idle(timeout_ms: u32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let Some(w) = web_sys::window() else {
            let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
            return;
        };
        let opts = web_sys::IdleRequestOptions::new();
        opts.set_timeout(timeout_ms);
        if w.request_idle_callback_with_options(&resolve, &opts).is_err()
            && w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0).is_err()
        {
            let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Resolves on the next animation frame, so a result is painted before more work starts.
pub async fn next_frame() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.request_animation_frame(&resolve);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// The canvas with this id, if it is on the page.
pub fn canvas_by_id(id: &str) -> Option<web_sys::HtmlCanvasElement> {
    document().get_element_by_id(id).and_then(|e| e.dyn_into().ok())
}
