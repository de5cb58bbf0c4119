//! Predict, then reveal: the student's stored progress (`Predictions`, one per page, in context) and the
//! controls of an exercise. The chapter shows a `:::predict` with its reveal (`ChapterPredict`); a lab shows
//! a `:::card` with `PredictChoices` and reveals it once its own run has finished.
use leptos::prelude::*;

use super::browser::{forget, store, stored};
use super::progress::{Progress, SectionProgress, PROGRESS_KEY};
use crate::content::Predict;

/// The student's predictions, read from local storage once and written back on every change.
#[derive(Clone, Copy)]
pub struct Predictions(RwSignal<Progress>);

impl Predictions {
    /// Reads the stored progress and puts it in context for every exercise on the page. A corrupt stored value
    /// reads as no progress and is left alone until the student commits something.
    pub fn provide() -> Predictions {
        let progress = stored(PROGRESS_KEY).map(|s| Progress::parse(&s)).unwrap_or_default();
        let p = Predictions(RwSignal::new(progress));
        provide_context(p);
        p
    }

    /// The page's predictions (`provide` runs in the app's root).
    pub fn get() -> Predictions {
        use_context::<Predictions>().expect("Predictions::provide runs in the app's root")
    }

    pub fn answer(self, id: &'static str) -> Option<usize> {
        self.0.with(|p| p.answer(id))
    }

    pub fn section(self, slug: &str) -> SectionProgress {
        self.0.with(|p| p.section(slug))
    }

    pub fn is_empty(self) -> bool {
        self.0.with(Progress::is_empty)
    }

    pub fn commit(self, p: &Predict, choice: usize) {
        let mut changed = false;
        self.0.update(|progress| changed = progress.commit(p, choice));
        if changed {
            store(PROGRESS_KEY, &self.0.with_untracked(Progress::to_json));
        }
    }

    /// "Reset my progress": every prediction forgotten, here and in storage.
    pub fn reset(self) {
        self.0.set(Progress::default());
        forget(PROGRESS_KEY);
    }
}

/// The question, its choices as radio buttons and "Lock in my prediction". Once committed, the choices stay
/// visible and disabled with the student's marked; when `revealed` turns true, the right one is marked too.
#[component]
pub fn PredictChoices(p: &'static Predict, #[prop(into)] revealed: Signal<bool>) -> impl IntoView {
    let store = Predictions::get();
    let picked = RwSignal::new(None::<usize>);
    let committed = move || store.answer(p.id);
    let name = format!("predict-{}", p.id);
    let choice = move |(k, html): (usize, &&'static str)| {
        let html: &'static str = html;
        let name = name.clone();
        let mine = move || committed() == Some(k);
        let right = move || revealed.get() && committed().is_some() && k == p.answer;
        view! {
            <li class="predict-choice" role="none" class:mine=mine class:right=right
                class:wrong=move || mine() && revealed.get() && k != p.answer>
                <label>
                    <input type="radio" name=name.clone() value=k.to_string()
                        data-testid=format!("predict-{}-{k}", p.id)
                        prop:checked=move || committed().or(picked.get()) == Some(k)
                        disabled=move || committed().is_some()
                        on:change=move |_| picked.set(Some(k)) />
                    <span inner_html=html></span>
                </label>
                {move || mine().then(|| view! { <span class="predict-tag">"your prediction"</span> })}
                {move || right().then(|| view! { <span class="predict-tag right">"the answer"</span> })}
            </li>
        }
    };
    view! {
        <div class="predict-question" inner_html=p.question></div>
        <ol class="predict-choices" role="radiogroup" aria-label="Your prediction">
            {p.choices.iter().enumerate().map(choice).collect_view()}
        </ol>
        {move || committed().is_none().then(|| view! {
            <button class="primary" data-testid=format!("predict-{}-commit", p.id)
                disabled=move || picked.get().is_none()
                on:click=move |_| if let Some(k) = picked.get_untracked() { store.commit(p, k) }>
                "Lock in my prediction"
            </button>
            <span class="muted small">" The answer shows once you have committed."</span>
        })}
    }
}

/// A `:::predict` in the chapter: the choices, then the reveal once the student has committed.
#[component]
pub fn ChapterPredict(p: &'static Predict) -> impl IntoView {
    let store = Predictions::get();
    let committed = Signal::derive(move || store.answer(p.id).is_some());
    view! {
        <aside class="predict" data-testid="predict" data-predict=p.id
            data-state=move || if committed.get() { "revealed" } else { "open" }>
            <p class="aside-label">"Predict, then check"</p>
            <PredictChoices p=p revealed=committed />
            {move || committed.get().then(|| view! {
                <div class="predict-reveal" data-testid="predict-reveal" inner_html=p.reveal></div>
            })}
        </aside>
    }
}

/// The navigation's count for a section (`1/2`), nothing when it has no exercises.
pub fn section_mark(slug: &'static str) -> impl IntoView {
    let store = Predictions::get();
    move || {
        let s = store.section(slug);
        s.label().map(|label| {
            view! {
                <span class="badge predict-badge" class:complete=s.done == s.total data-testid="predict-count"
                    title=s.title()>{label}</span>
            }
        })
    }
}

/// "Reset my progress", with a second click to confirm; shown only once something is committed.
#[component]
pub fn ResetProgress() -> impl IntoView {
    let store = Predictions::get();
    let armed = RwSignal::new(false);
    move || {
        (!store.is_empty()).then(|| {
            view! {
                <p class="reset-progress">
                    {move || if armed.get() {
                        view! {
                            "Forget every prediction? "
                            <button class="ghost" data-testid="reset-progress-confirm"
                                on:click=move |_| { store.reset(); armed.set(false); }>"Yes, reset"</button>
                            <button class="ghost" on:click=move |_| armed.set(false)>"Keep them"</button>
                        }.into_any()
                    } else {
                        view! {
                            <button class="ghost" data-testid="reset-progress" title="Your predictions are kept in this browser only"
                                on:click=move |_| armed.set(true)>"Reset my progress"</button>
                        }.into_any()
                    }}
                </p>
            }
        })
    }
}
