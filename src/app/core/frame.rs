//! The frame every lab sits in: the problems found in its link, its share and export tools (Copy link,
//! Numbers as JSON), and the progress of its job with Cancel. A lab renders `LabFrame` around its panels.
use leptos::prelude::*;
use serde_json::Value;

use super::export::{lab_tools, ExportContext};

use super::jobs::Jobs;
use super::url::UrlProblem;

/// Messages about the lab's link: problems found when it was read, and any the lab finds later (a text with
/// characters the model does not know, once the model is there).
#[derive(Clone, Copy)]
pub struct UrlNotes(RwSignal<Vec<String>>);

impl UrlNotes {
    pub fn new(problems: &[UrlProblem]) -> Self {
        UrlNotes(RwSignal::new(problems.iter().map(ToString::to_string).collect()))
    }

    pub fn add(self, message: String) {
        self.0.update(|v| v.push(message));
    }

    pub fn is_empty(self) -> bool {
        self.0.with(Vec::is_empty)
    }

    /// One box (`data-testid="url-error"`) with a line per problem, nothing for a clean link.
    pub fn view(self) -> impl IntoView {
        move || {
            (!self.is_empty()).then(|| {
                let lines = self.0.get().into_iter().map(|m| view! { <p>{m}</p> }).collect_view();
                view! { <div class="input-error url-error" data-testid="url-error" role="status">{lines}</div> }
            })
        }
    }
}

/// The frame: link problems on top, the lab's share and export tools, then the lab. `model` names the model
/// folder(s) the lab runs, for the exports' metadata; `numbers` gives the lab's own figures for its JSON (beside
/// the tables of its charts and page, which the JSON always has), `None` while there is no result.
#[component]
pub fn LabFrame(
    notes: UrlNotes,
    #[prop(optional, into)] model: MaybeProp<String>,
    #[prop(optional)] numbers: Option<Callback<(), Option<Value>>>,
    children: Children,
) -> impl IntoView {
    // Provided before the lab's panels are built, so every chart in them finds it.
    let ctx = ExportContext::provide(Signal::derive(move || model.get().unwrap_or_default()), numbers);
    let frame = NodeRef::<leptos::html::Div>::new();
    view! {
        <div class="lab-frame" data-testid="lab-frame" node_ref=frame>
            <div class="lab-frame-notes">{notes.view()}</div>
            <div class="lab-frame-tools" data-slot="tools">{lab_tools(ctx, frame)}</div>
            {children()}
        </div>
    }
}

/// The progress bar of `jobs`' job in progress and its Cancel button (`{testid}-progress`, `{testid}-cancel`).
/// `on_cancel` runs after the job is stopped, for a lab that must also undo something.
///
/// Made once per job; then only the bar's value and the line's text follow the progress. (Re-made on every
/// report, it was four elements taken out and put back, and the page laid out again, after every slice of work:
/// dozens of times a second during a long job.)
pub fn progress_bar(
    jobs: Jobs,
    testid: &'static str,
    on_cancel: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let running = Memo::new(move |_| jobs.busy());
    let frac = move || jobs.progress().map_or(0.0, |p| p.frac);
    let line = move || jobs.progress().map(|p| format!("{}… {:.0}%", p.phase, 100.0 * p.frac)).unwrap_or_default();
    move || {
        running.get().then(|| {
            view! {
                <div class="probe-progress" data-testid=format!("{testid}-progress") role="status">
                    <progress max="1" value=move || format!("{:.3}", frac())></progress>
                    <span class="muted small">{line}</span>
                    <button data-testid=format!("{testid}-cancel") on:click=move |_| {
                        jobs.cancel();
                        on_cancel();
                    }>"Cancel"</button>
                </div>
            }
        })
    }
}

/// The choice of a lab that runs on the Moby-Dick model or on the model opened in this tab, shown only in that
/// tab (`opened` is `None` elsewhere): `own` says which is on, and `pick` gets the one chosen when it changes.
#[component]
pub fn MobyOrOwn(
    /// The radio group's name, one per lab.
    group: &'static str,
    opened: Option<std::sync::Arc<super::opened::OwnModel>>,
    #[prop(into)] own: Signal<bool>,
    pick: impl Fn(bool) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let o = opened?;
    let choose = move |to: bool| {
        if own.get_untracked() != to {
            pick(to);
        }
    };
    let own_label = format!(" Your model: {} ({} layers)", o.name, o.model.cfg.n_layer);
    Some(view! {
        <div class="model-switch" role="radiogroup" aria-label="Model">
            <label><input type="radio" name=group data-testid="model-moby" prop:checked=move || !own.get()
                on:change=move |_| choose(false) />" Moby-Dick (characters, 4 layers)"</label>
            <label><input type="radio" name=group data-testid="model-own" prop:checked=move || own.get()
                on:change=move |_| choose(true) />{own_label}</label>
        </div>
    })
}
