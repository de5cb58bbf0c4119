//! The page frame: navigation, the chapter pane, the draggable divider, the lab pane, routing and keys.
use leptos::ev;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::core::browser::{
    apply_theme, document, follow_citation, go, location_hash, navigated, on_system_theme_change, replace_hash, store,
    stored,
};
use super::core::format::parse_share;
use super::core::load::{load_chapter, Model};
use super::core::predict::{section_mark, ChapterPredict, Predictions, ResetProgress};
use super::core::presenter::{self, next_step, step_hash, toggle_hash, Presenting};
use super::core::service_worker::OfflineStatus;
use super::core::theme::{self, Theme};
use super::core::url::set_shell_keys;
use super::labs::steps;
use crate::content::{self, ChapterText, Piece};
use crate::routes::{parse_hash, section_hash, LabKind, Route, SECTIONS};

/// Where the chapter's width (in percent of the split) is remembered across visits, and its bounds.
const WIDTH_KEY: &str = "glassbox.chapter-width";
const WIDTH_RANGE: (f64, f64) = (20.0, 75.0);

/// Keys typed into a text field, a slider or the divider belong to that control, not to the page.
fn key_belongs_to_control(ev: &web_sys::KeyboardEvent) -> bool {
    let Some(el) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return false };
    let tag = el.tag_name().to_ascii_lowercase();
    matches!(tag.as_str(), "input" | "textarea" | "select" | "button")
        || el.get_attribute("role").as_deref() == Some("separator")
        || el.closest("[contenteditable]").ok().flatten().is_some()
}

#[component]
pub fn App() -> impl IntoView {
    Predictions::provide();
    // The chapter's text: fetched now, while the page is still opening, and kept for the session.
    let text = Model::new("the chapter's text", load_chapter);
    let hash = RwSignal::new(location_hash());
    let _ = window_event_listener(ev::hashchange, move |_| {
        navigated();
        hash.set(location_hash());
    });
    let route = Memo::new(move |_| parse_hash(&hash.get()));
    let current = Memo::new(move |_| match route.get() {
        Route::Section { index, .. } => Some(index),
        _ => None,
    });

    // Chapter width in percent of the split, remembered across visits.
    // A corrupt stored value (not a number, out of bounds) is ignored, and not written back until the student
    // moves the divider.
    let saved = stored(WIDTH_KEY).and_then(|v| parse_share(&v, WIDTH_RANGE));
    let chapter_width = RwSignal::new(saved.unwrap_or(42.0));
    let lab_full = RwSignal::new(false);
    Effect::new(move |prev: Option<f64>| {
        let w = chapter_width.get();
        if prev.is_some_and(|p| p != w) {
            store(WIDTH_KEY, &format!("{w:.1}"));
        }
        w
    });

    // Presenter mode: `present=1` (and `step=K`) in the section's query. The shell's keys, never the lab's.
    let presenting = Memo::new(move |_| match route.get() {
        Route::Section { index, query } => presenter::split(&query, steps(SECTIONS[index].lab).len()).0,
        _ => Presenting::default(),
    });
    let nav = Navigation;
    listen_for_keys(nav, lab_full);

    // Narrow screens (tablets in portrait, phones; `style/main.css` under 900 px): the section list is a drawer
    // behind a Contents button, closed by any navigation, and the chapter and the lab are two panes with a switch
    // between them. A link that carries a lab's settings opens on the lab, any other on the chapter.
    let nav_open = RwSignal::new(false);
    Effect::new(move |_| {
        route.track();
        nav_open.set(false);
    });
    let show_lab = RwSignal::new(matches!(route.get_untracked(), Route::Section { query, .. } if !query.is_empty()));
    let _ = window_event_listener(ev::keydown, move |ev: web_sys::KeyboardEvent| {
        if ev.key() == "Escape" && nav_open.get_untracked() {
            nav_open.set(false);
        }
    });

    // Dragging the divider: pointer position over the split sets the chapter's share.
    let split_ref = NodeRef::<leptos::html::Main>::new();
    let dragging = RwSignal::new(false);
    let _ = window_event_listener(ev::pointermove, move |ev: web_sys::PointerEvent| {
        if !dragging.get_untracked() {
            return;
        }
        if let Some(split) = split_ref.get_untracked() {
            let r = split.get_bounding_client_rect();
            if r.width() > 0.0 {
                chapter_width.set((100.0 * (ev.client_x() as f64 - r.left()) / r.width()).clamp(20.0, 75.0));
            }
        }
    });
    let _ = window_event_listener(ev::pointerup, move |_| dragging.set(false));

    Effect::new(move |_| document().set_title(&format!("{} · Glassbox", page_title(&route.get()))));

    view! {
        <div class="app" data-testid="app" class:lab-full=move || lab_full.get() class:dragging=move || dragging.get()
            class:presenter=move || presenting.get().on class:nav-open=move || nav_open.get()>
            <Laser on=Signal::derive(move || presenting.get().on) />
            <TopBar route=route current=current presenting=presenting nav_open=nav_open />
            <Nav current=current route=route />
            {move || nav_open.get().then(|| view! {
                <div class="nav-backdrop" data-testid="nav-backdrop" aria-hidden="true" on:click=move |_| nav_open.set(false)></div>
            })}
            {move || match route.get() {
                Route::NotFound(path) => view! { <NotFound path=path /> }.into_any(),
                r => {
                    let (page, lab) = match &r {
                        Route::Section { index, .. } => (Page::Section(SECTIONS[*index].slug), SECTIONS[*index].lab),
                        Route::OwnModel => (Page::Own(crate::app::labs::own_model::PAGE_HTML), LabKind::OwnModel),
                        _ => (Page::References, LabKind::Map),
                    };
                    let slug = match &r { Route::Section { index, .. } => SECTIONS[*index].slug, _ => "" };
                    let query = match r { Route::Section { query, .. } => query, _ => String::new() };
                    // The shell's keys come off before the lab reads its query, and ride along on what it writes.
                    let (p, own) = presenter::split(&query, steps(lab).len());
                    set_shell_keys(p.keys());
                    let query = presenter::lab_query(p, own.clone(), steps(lab));
                    if let (Some(k), true) = (p.step, query != own) {
                        // A step named alone opened that step's state: the address says so (a link to copy).
                        replace_hash(&step_hash(slug, steps(lab), k));
                    }
                    view! {
                        <main class="split" node_ref=split_ref style=move || format!("--chapter-width: {:.1}%", chapter_width.get())
                            class:show-lab=move || show_lab.get() class:show-chapter=move || !show_lab.get()>
                            <div class="pane-switch" data-testid="pane-switch" role="group" aria-label="Show the chapter or the lab">
                                <button data-testid="show-chapter" aria-pressed=move || (!show_lab.get()).to_string()
                                    on:click=move |_| show_lab.set(false)>"Chapter"</button>
                                <button data-testid="show-lab" aria-pressed=move || show_lab.get().to_string()
                                    on:click=move |_| show_lab.set(true)>"Lab"</button>
                            </div>
                            <Chapter page=page text=text />
                            <div class="divider" data-testid="divider" role="separator" aria-orientation="vertical"
                                aria-label="Drag to resize the chapter and the lab" tabindex="0"
                                aria-valuemin="20" aria-valuemax="75" aria-valuenow=move || format!("{:.0}", chapter_width.get())
                                on:pointerdown=move |ev: web_sys::PointerEvent| { ev.prevent_default(); dragging.set(true); }
                                on:keydown=move |ev: web_sys::KeyboardEvent| match ev.key().as_str() {
                                    "ArrowLeft" => chapter_width.update(|w| *w = (*w - 2.0).max(20.0)),
                                    "ArrowRight" => chapter_width.update(|w| *w = (*w + 2.0).min(75.0)),
                                    _ => {}
                                }>
                                <span class="grip"></span>
                            </div>
                            <section class="lab" data-testid="lab" aria-label="Lab">
                                <div class="lab-bar">
                                    <span class="lab-label">"Lab"</span>
                                    <button data-testid="lab-full" class="ghost" aria-pressed=move || lab_full.get().to_string()
                                        title="Give the lab the whole window (f)" on:click=move |_| lab_full.update(|f| *f = !*f)>
                                        {move || if lab_full.get() { "Show the chapter" } else { "Full width" }}
                                    </button>
                                </div>
                                {p.on.then(|| view! { <PresenterBar lab=lab presenting=p /> })}
                                <Lab kind=lab query=query />
                            </section>
                        </main>
                    }
                    .into_any()
                }
            }}
        </div>
    }
}

/// The heading of a route: the section's number and title, or the page's name.
fn page_title(route: &Route) -> String {
    match route {
        Route::Section { index, .. } => {
            let s = &SECTIONS[*index];
            if s.number.is_empty() {
                s.title.to_string()
            } else {
                format!("{} {}", s.number, s.title)
            }
        }
        Route::References => "References".into(),
        Route::OwnModel => "Open your own model".into(),
        Route::NotFound(_) => "Not found".into(),
    }
}

/// The top bar: the Contents button (narrow screens only), the name, where the student is, presenter mode and
/// the previous / next section.
#[component]
fn TopBar(
    route: Memo<Route>,
    current: Memo<Option<usize>>,
    presenting: Memo<Presenting>,
    nav_open: RwSignal<bool>,
) -> impl IntoView {
    let nav = Navigation;
    view! {
        <header class="topbar">
            <button class="ghost menu-toggle" data-testid="menu-toggle" aria-controls="nav"
                aria-expanded=move || nav_open.get().to_string() on:click=move |_| nav_open.update(|o| *o = !*o)>
                <span aria-hidden="true">"☰ "</span>"Contents"
            </button>
            <a class="brand" href="#/overview">"Glassbox"</a>
            <span class="tagline">"an interpretability playground"</span>
            <span class="crumb">{move || page_title(&route.get())}</span>
            <span class="spacer"></span>
            <button data-testid="present-toggle" class="ghost" aria-pressed=move || presenting.get().on.to_string()
                title="Presenter mode: large type, the lab alone, its steps on → and ← (s; Esc leaves)"
                on:click=move |_| nav.toggle_presenting()>
                {move || if presenting.get().on { "Leave presenter mode" } else { "Present" }}
            </button>
            <button data-testid="prev" class="ghost" title="Previous section (p or ←)"
                disabled=move || current.get().is_none_or(|i| i == 0) on:click=move |_| nav.step(-1)>
                "←"<span class="btn-word">" Prev"</span>
            </button>
            <button data-testid="next" class="ghost" title="Next section (n or →)"
                disabled=move || current.get().is_none_or(|i| i + 1 >= SECTIONS.len()) on:click=move |_| nav.step(1)>
                <span class="btn-word">"Next "</span>"→"
            </button>
        </header>
    }
}

#[component]
fn Nav(current: Memo<Option<usize>>, route: Memo<Route>) -> impl IntoView {
    let item = move |i: usize| {
        let s = SECTIONS[i];
        view! {
            <li>
                <a href=section_hash(i) data-section=s.slug class:beyond=s.beyond_chapter
                    aria-current=move || (current.get() == Some(i)).then_some("page")>
                    <span class="num">{s.number}</span>
                    <span class="name">{s.title}
                        {s.beyond_chapter.then(|| view! { " " <span class="badge" title="Goes beyond the chapter">"extra"</span> })}
                        {s.lab.is_live().then(|| view! { " " <span class="badge lab-badge" title="Has a live lab">"lab"</span> })}
                        " " {section_mark(s.slug)}
                    </span>
                </a>
            </li>
        }
    };
    view! {
        <nav class="nav" id="nav" data-testid="nav" aria-label="Chapter sections">
            <p class="nav-head">"Chapter 9 · Interpretability"</p>
            <ul>{(0..SECTIONS.len()).map(item).collect_view()}</ul>
            <ul class="nav-foot">
                <li><a href="#/references" data-section="references"
                    aria-current=move || matches!(route.get(), Route::References).then_some("page")>
                    <span class="num"></span><span class="name">"References"</span></a></li>
                <li><a href="#/open" data-section="open"
                    aria-current=move || matches!(route.get(), Route::OwnModel).then_some("page")>
                    <span class="num"></span><span class="name">"Open your own model"</span></a></li>
            </ul>
            <ThemeSwitch />
            <ResetProgress />
            <OfflineStatus />
            <p class="keys">"Keys: " <kbd>"n"</kbd> " / " <kbd>"p"</kbd> " next / previous, " <kbd>"f"</kbd> " full-width lab, " <kbd>"s"</kbd> " presenter mode"</p>
        </nav>
    }
}

/// Light, dark or the system's theme, kept across visits. Applied at once on start, so a stored choice holds
/// from the first screen on.
#[component]
fn ThemeSwitch() -> impl IntoView {
    let theme = RwSignal::new(stored(theme::KEY).map(|v| Theme::parse(&v)).unwrap_or_default());
    // On System, the page follows the system when it switches (a laptop's dark mode at dusk).
    on_system_theme_change(move || apply_theme(theme.get_untracked()));
    Effect::new(move |prev: Option<Theme>| {
        let t = theme.get();
        apply_theme(t);
        if prev.is_some_and(|p| p != t) {
            store(theme::KEY, t.key());
        }
        t
    });
    let options = Theme::ALL
        .into_iter()
        .map(|t| view! { <option value=t.key() selected=move || theme.get() == t>{t.label()}</option> })
        .collect_view();
    view! {
        <p class="theme-switch">
            <label>"Theme "
                <select data-testid="theme-switch" prop:value=move || theme.get().key()
                    on:change=move |ev| theme.set(Theme::parse(&event_target_value(&ev)))>{options}</select>
            </label>
        </p>
    }
}

/// What the chapter pane shows: a section's text or the references page (both from the chapter's text file), or a
/// page's own HTML (`#/open`).
#[derive(Clone, Copy)]
enum Page {
    Section(&'static str),
    References,
    Own(&'static str),
}

/// The chapter pane: the page's HTML with a live control in the place of each prediction. Citation links scroll
/// to their reference in this pane instead of changing the route. Until the chapter's text has arrived (the first
/// page of a visit only) a quiet line says it is coming; if it cannot be loaded, a message says why, with Retry.
/// The lab beside it never waits for the text.
#[component]
fn Chapter(page: Page, text: Model<ChapterText>) -> impl IntoView {
    let body = move || {
        // A page's own HTML never waits (nor is drawn again when the text arrives).
        let loaded = match page {
            Page::Own(html) => return chapter_pieces(html).into_any(),
            _ => text.result(),
        };
        match loaded {
            Some(Ok(t)) => match page {
                Page::Section(slug) => chapter_pieces(t.section(slug).unwrap_or_default()).into_any(),
                _ => chapter_pieces(t.references()).into_any(),
            },
            None => view! {
                <p class="loading chapter-loading" data-testid="chapter-loading" role="status">
                    <span class="spinner"></span>"Loading the chapter…"
                </p>
            }
            .into_any(),
            Some(Err(e)) => view! {
                <div class="load-error chapter-error" data-testid="chapter-error" role="alert">
                    <h2>"The chapter’s text could not be loaded"</h2>
                    <p>{e}</p>
                    <p>"The lab does not need it and still works. Check that the site is still served, then retry."</p>
                    <p><button data-testid="chapter-retry" on:click=move |_| text.retry()>"Retry"</button></p>
                </div>
            }
            .into_any(),
        }
    };
    view! { <article class="chapter" data-testid="chapter" on:click=follow_citation>{body}</article> }
}

/// A page's HTML: its lead (up to its first `content::fold` after `content::LEAD_BYTES`, more than the pane shows)
/// at once, and the rest when the page is next idle. On a first visit the lab's first result would otherwise wait
/// behind text below the fold (the attention primer's first pattern came about 30 ms later with all of its text
/// built at once).
fn chapter_pieces(html: &str) -> impl IntoView {
    /// The longest the rest waits for an idle moment.
    const REST_WITHIN_MS: u32 = 500;
    let at = content::fold(html, content::LEAD_BYTES).unwrap_or(html.len());
    let rest = html[at..].to_string();
    let shown = RwSignal::new(rest.is_empty());
    if !rest.is_empty() {
        leptos::task::spawn_local(async move {
            super::core::browser::when_idle(REST_WITHIN_MS).await;
            // The page changed before: these pieces, and their signal, are gone.
            let _ = shown.try_set(true);
        });
    }
    view! {
        {pieces_view(&html[..at])}
        {move || shown.get().then(|| pieces_view(&rest))}
    }
}

/// HTML cut at its predictions (`content::pieces`): each piece of text as is, a control in each slot.
fn pieces_view(html: &str) -> impl IntoView {
    content::pieces(html)
        .into_iter()
        .map(|piece| match piece {
            Piece::Html(html) => view! { <div class="chunk" inner_html=html.to_string()></div> }.into_any(),
            Piece::Predict(p) => view! { <ChapterPredict p=p /> }.into_any(),
        })
        .collect_view()
}

#[component]
fn NotFound(path: String) -> impl IntoView {
    view! {
        <main class="not-found" data-testid="not-found">
            <h1>"There is no page here"</h1>
            <p>"The address " <code>{format!("#/{path}")}</code> " does not match any section of the chapter."</p>
            <p><a href="#/overview" class="button">"Back to the overview"</a></p>
            <p class="muted">"Or pick a section from the list on the left."</p>
        </main>
    }
}

/// Moving on from where the page is: sections, presenter steps, presenter mode on and off. Each reads the
/// address itself rather than the route signal, which lags until the `hashchange` is handled: two quick key
/// presses must move twice from where the first one went.
#[derive(Clone, Copy)]
struct Navigation;

impl Navigation {
    /// The section and presenter mode the address says now.
    fn here(self) -> Option<(usize, String, Presenting)> {
        match parse_hash(&location_hash()) {
            Route::Section { index, query } => {
                let (p, lab_query) = presenter::split(&query, steps(SECTIONS[index].lab).len());
                Some((index, lab_query, p))
            }
            _ => None,
        }
    }

    /// The section `delta` away. In presenter mode it opens in presenter mode too, at its first step if it has
    /// any (its last, going back, as slides do).
    fn step(self, delta: isize) {
        let (current, presenting) = self.here().map(|(i, _, p)| (i, p)).unwrap_or((0, Presenting::default()));
        let i = current as isize + delta;
        if !(0..SECTIONS.len() as isize).contains(&i) {
            return;
        }
        let i = i as usize;
        let lab_steps = steps(SECTIONS[i].lab);
        match presenting.on {
            true if !lab_steps.is_empty() => {
                let k = if delta < 0 { lab_steps.len() - 1 } else { 0 };
                go(&step_hash(SECTIONS[i].slug, lab_steps, k))
            }
            true => go(&toggle_hash(SECTIONS[i].slug, "", true)),
            false => go(&section_hash(i)),
        }
    }

    /// A lab's step `delta` away, or past its ends the next section (what a presenter's clicker sends).
    fn present_step(self, delta: isize) {
        let Some((i, _, p)) = self.here() else { return };
        let lab_steps = steps(SECTIONS[i].lab);
        match next_step(p.step, delta, lab_steps.len()) {
            Some(k) => go(&step_hash(SECTIONS[i].slug, lab_steps, k)),
            None => self.step(delta),
        }
    }

    /// Presenter mode on or off, the lab's state kept.
    fn toggle_presenting(self) {
        if let Some((i, lab_query, p)) = self.here() {
            go(&toggle_hash(SECTIONS[i].slug, &lab_query, !p.on));
        }
    }

    fn presenting(self) -> bool {
        self.here().is_some_and(|(_, _, p)| p.on)
    }
}

/// The page's keys: n / p (and the arrows) for sections, f for full width, s for presenter mode; presenting,
/// the arrows and Page Up / Down step through the lab's steps and Esc leaves.
fn listen_for_keys(nav: Navigation, lab_full: RwSignal<bool>) {
    let _ = window_event_listener(ev::keydown, move |ev: web_sys::KeyboardEvent| {
        // A widget that used the key (a roving list or grid moving its focus) prevented its default: the arrows
        // are then that widget's, not the page's.
        if ev.ctrl_key() || ev.meta_key() || ev.alt_key() || ev.default_prevented() {
            return;
        }
        let key = ev.key();
        // Presenting, the stepping keys work from a focused button too (the one just clicked keeps the focus).
        let on_button = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlButtonElement>().ok()).is_some();
        if nav.presenting() && (on_button || !key_belongs_to_control(&ev)) {
            match key.as_str() {
                "ArrowRight" | "PageDown" => nav.present_step(1),
                "ArrowLeft" | "PageUp" => nav.present_step(-1),
                "Escape" | "s" => nav.toggle_presenting(),
                "n" => nav.step(1),
                "p" => nav.step(-1),
                _ => return,
            }
            ev.prevent_default();
            return;
        }
        if key_belongs_to_control(&ev) {
            return;
        }
        match key.as_str() {
            "n" | "ArrowRight" => nav.step(1),
            "p" | "ArrowLeft" => nav.step(-1),
            "f" => lab_full.update(|f| *f = !*f),
            "s" => nav.toggle_presenting(),
            _ => return,
        }
        ev.prevent_default();
    });
}

/// The laser pointer: a bright dot that follows the pointer in presenter mode, for the back of the room.
#[component]
fn Laser(on: Signal<bool>) -> impl IntoView {
    let at = RwSignal::new(None::<(i32, i32)>);
    let _ = window_event_listener(ev::pointermove, move |ev: web_sys::PointerEvent| {
        if on.get_untracked() {
            at.set(Some((ev.client_x(), ev.client_y())));
        }
    });
    move || {
        on.get().then(|| {
            at.get().map(|(x, y)| {
                view! {
                    <div class="laser" data-testid="laser" aria-hidden="true"
                        style=format!("transform: translate({}px, {}px)", x - 14, y - 14)></div>
                }
            })
        })
    }
}

/// Presenter mode's bar above the lab: the step shown, and buttons to step and to leave (what the keys do).
#[component]
fn PresenterBar(lab: LabKind, presenting: Presenting) -> impl IntoView {
    let lab_steps = steps(lab);
    let n = lab_steps.len();
    let label = match presenting.step {
        Some(k) => format!("Step {} of {n}: {}", k + 1, lab_steps[k].title),
        None if n > 0 => format!("{n} steps: press → to begin"),
        None => "No steps here: → goes to the next section".to_string(),
    };
    // The buttons are disabled at the lab's ends, so they never carry on into another section as the keys do.
    view! {
        <div class="presenter-bar" data-testid="presenter-bar" data-step=presenting.step.map(|k| k + 1).unwrap_or(0)>
            <button data-testid="present-prev" disabled=next_step(presenting.step, -1, n).is_none()
                on:click=move |_| Navigation.present_step(-1) title="Previous step (← or Page Up)" aria-label="previous step">"←"</button>
            <span class="presenter-step" aria-live="polite">{label}</span>
            <button data-testid="present-next" disabled=next_step(presenting.step, 1, n).is_none()
                on:click=move |_| Navigation.present_step(1) title="Next step (→ or Page Down)" aria-label="next step">"→"</button>
            <span class="spacer"></span>
            <button class="ghost" data-testid="present-leave" on:click=move |_| Navigation.toggle_presenting()
                title="Leave presenter mode (Esc)">"Leave (Esc)"</button>
        </div>
    }
}

/// The lab is mounted one task after the rest of the page. A route change rebuilds the chapter pane and the lab
/// pane; in one task, the chapter's text, the lab's mount (its code compiled on first use) and the layout that
/// Chromium forces after a lab's form controls go in came to 50-70 ms on GPT-2 small's 9.2.2 (traced). Split, the
/// chapter paints first and neither task reaches 50 ms. Until then the pane holds an empty placeholder, and the
/// lab's model is already on its way (`labs::prefetch`).
#[component]
fn Lab(kind: LabKind, query: String) -> impl IntoView {
    super::labs::prefetch(kind, &query);
    let ready = RwSignal::new(false);
    leptos::task::spawn_local(async move {
        super::core::browser::yield_to_browser().await;
        // A route changed again before the yield: this lab is gone, and its signal with it.
        let _ = ready.try_set(true);
    });
    move || match (ready.get(), kind) {
        (false, _) => view! { <div class="lab-pending" data-testid="lab-pending"></div> }.into_any(),
        (true, LabKind::Map) => view! { <ChapterMap /> }.into_any(),
        (true, kind) => super::labs::lab_view(kind, &query),
    }
}

/// Overview and 9.1: the chapter as a map, with where the live labs are.
#[component]
fn ChapterMap() -> impl IntoView {
    // Which group a section belongs to; the primer sits with the observational methods it prepares for.
    fn group(s: &crate::routes::Section) -> usize {
        match s.number {
            "" if s.beyond_chapter => 1,
            "" | "9.1" => 0,
            n if n.starts_with("9.2") => 1,
            n if n.starts_with("9.3") => 2,
            _ => 3,
        }
    }
    let groups = [
        ("Foundations", "What interpretability is for and how this playground works."),
        ("9.2 Observational methods", "Read what is inside a model without changing it."),
        ("9.3 Interventional methods", "Change activations and watch what happens."),
        ("9.4–9.5 Scaling up and critiques", "Automating circuit discovery, and the case against."),
    ];
    view! {
        <div class="chapter-map" data-testid="chapter-map">
            <h2>"Map of the chapter"</h2>
            {groups.into_iter().enumerate().map(|(g, (name, blurb))| {
                let cards = SECTIONS.iter().enumerate()
                    .filter(|(_, s)| group(s) == g)
                    .map(|(i, s)| {
                        let live = s.lab.is_live();
                        let status = if live { "live lab" } else if matches!(s.lab, LabKind::Map) { "reading" } else { "lab coming" };
                        view! {
                            <a class="map-card" class:live=live href=section_hash(i)>
                                <span class="num">{if s.beyond_chapter { "beyond the chapter" } else { s.number }}</span>
                                <span class="name">{s.title}</span>
                                <span class="status">{status}</span>
                            </a>
                        }
                    })
                    .collect_view();
                view! { <section class="map-group"><h3>{name}</h3><p class="muted">{blurb}</p><div class="map-cards">{cards}</div></section> }
            }).collect_view()}
        </div>
    }
}
