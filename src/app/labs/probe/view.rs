//! The probing lab (9.2.3): pick a concept (built-in, or a regular expression over the text), record the
//! Moby-Dick model's residual stream on 5,000 held-out positions, train a logistic-regression probe per layer
//! and show held-out accuracy per layer against the majority baseline and a shuffled-label control.
//!
//! Recording and training are split into slices of about 16 ms (`lens::probe::{ProbeRecording, ProbeJob}`)
//! with a yield to the browser between slices, so the page keeps drawing, shows progress and can cancel.
//! The recording is kept for the session: a second concept costs only the training.
//!
//! On a model opened in this tab (`core::opened`) the concept is a regular expression over the text of a token
//! or of the next one (`TokenConcept`), over the book's held-out passages or a text the student pastes, cut
//! by the model's own tokenizer (`core::probes::train_own_probes`).

use std::cell::RefCell;
use std::sync::Arc;

use leptos::prelude::*;

use super::{own_plan, token_excerpt, verdict, ProbeState, OWN_REGEX};
use crate::app::core::browser::{now_ms, replace_hash_soon};
use crate::app::core::charts::{Axis, Bar, BarChart, Legend, Rule};
use crate::app::core::export::TableExport;
use crate::app::core::format::sentence;
use crate::app::core::frame::{progress_bar, LabFrame, MobyOrOwn, UrlNotes};
use crate::app::core::jobs::{start_when_ready, Job, Jobs};
use crate::app::core::load::{load_book_text, load_char_model, LoadedChar, Model};
use crate::app::core::models::own_not_open_showing;
use crate::app::core::opened::{opened, OwnModel};
use crate::app::core::own_text::{check_pasted, MAX_PASTED};
use crate::app::core::probes::{train_own_probes, train_probes};
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::methods::logit_lens::resid_label;
use crate::lens::methods::probe::{BuiltinConcept, Concept, ProbeReport, TokenConcept};

thread_local! {
    /// The text a student pasted for an opened model, kept for the tab (a link does not carry it).
    static MINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// An excerpt of the held-out text with the concept's positive characters marked, so the student sees what
/// the labels mean before trusting a score.
fn excerpt(m: &LoadedChar, concept: &Concept) -> Option<Vec<(char, bool)>> {
    let labels = concept.labels(&m.held_out).ok()?;
    let chars: Vec<char> = m.held_out.chars().collect();
    // Start at the first positive after the first 1,000 characters, a little before it, so the excerpt shows both classes.
    let first = (1000..chars.len()).find(|&i| labels[i] == Some(true)).unwrap_or(1000).saturating_sub(60);
    let end = (first + 160).min(chars.len());
    Some((first..end).map(|i| (chars[i], labels[i] == Some(true))).collect())
}

/// What the lab is set to probe.
#[derive(Clone, Debug, PartialEq)]
enum Choice {
    Builtin(BuiltinConcept),
    Regex,
}

/// A finished run, as the view shows it.
#[derive(Clone, Debug)]
struct Shown {
    report: ProbeReport,
    ms: f64,
    /// The steering lab with this concept's probe direction at the best layer (built-in concepts only).
    steer: Option<String>,
}

/// Where a run leaves its result: what is shown, the error, and the revision the tests wait on.
type Out = (RwSignal<Option<Shown>>, RwSignal<Option<String>>, RwSignal<u32>);

/// What an opened model's probes read: the book's held-out passages or the student's own text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Book,
    Mine,
}

/// The controls of the lab on an opened model.
#[derive(Clone, Copy)]
struct Own {
    model: StoredValue<Option<Arc<OwnModel>>>,
    on: RwSignal<bool>,
    regex: RwSignal<String>,
    next: RwSignal<bool>,
    source: RwSignal<Source>,
    mine: RwSignal<String>,
    /// A stretch of the last run's tokens, each with its label.
    excerpt: RwSignal<Option<Vec<(String, bool)>>>,
}

impl Own {
    fn concept(self) -> TokenConcept {
        TokenConcept { pattern: self.regex.get_untracked(), next: self.next.get_untracked() }
    }
}

#[component]
pub fn ProbeLab(query: Vec<(String, String)>) -> impl IntoView {
    let (mut url, problems) = ProbeState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    let own_model = opened();
    if url.own && own_model.is_none() {
        notes.add(own_not_open_showing("the Moby-Dick model"));
        url = ProbeState::default();
    }
    let on = RwSignal::new(url.own);
    // Each mode fetches only what it reads: our model (its held-out text comes with it), or, on an opened
    // model, the book's held-out passages alone (60 KB, not the 3.3 MB of weights).
    let model = Model::when_wanted("the Moby-Dick model", move || !on.get(), || load_char_model("moby"));
    let book = Model::when_wanted("the book's held-out passages", move || on.get(), load_book_text);
    let own = Own {
        model: StoredValue::new(own_model),
        on,
        regex: RwSignal::new(if url.own { url.token_concept().pattern } else { OWN_REGEX.to_string() }),
        next: RwSignal::new(url.next),
        source: RwSignal::new(Source::Book),
        mine: RwSignal::new(MINE.with(|m| m.borrow().clone())),
        excerpt: RwSignal::new(None),
    };
    let (choice0, regex0) = match url.regex.filter(|_| !url.own) {
        Some(re) => (Choice::Regex, re),
        None => (Choice::Builtin(url.concept), String::new()),
    };
    let choice = RwSignal::new(choice0);
    let regex = RwSignal::new(if regex0.is_empty() { "the".to_string() } else { regex0 });
    let shown: RwSignal<Option<Shown>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let jobs = Jobs::new();
    let rev = RwSignal::new(0u32);

    let ready = move || if own.on.get() { book.get().is_some() } else { model.get().is_some() };

    let out = (shown, error, rev);
    let start = move || {
        if own.on.get_untracked() {
            let Some(text) = book.get_untracked() else { return };
            start_own(&text, own, jobs, out);
        } else {
            let Some(m) = model.get_untracked() else { return };
            let c = concept_untracked(choice, regex);
            // The URL follows the concept the student actually ran.
            let state = match &c {
                Concept::Builtin(b) => ProbeState { concept: *b, ..ProbeState::default() },
                Concept::Regex(p) => ProbeState { regex: Some(p.clone()), ..ProbeState::default() },
            };
            replace_hash_soon(&section_hash_with("9.2.3", &state.to_query()));
            jobs.spawn("starting", move |job| run_moby(job, m, c, out));
        }
    };
    let cancel = move || {
        error.set(Some("Cancelled. The last result stays on screen.".into()));
    };
    start_when_ready(ready, start);

    let progress = progress_bar(jobs, "probe", cancel);
    let switch = move |to: bool| {
        own.on.set(to);
        shown.set(None);
        error.set(None);
        start();
    };
    let model_name = move || match (own.on.get(), own.model.get_value()) {
        (true, Some(o)) => o.name.clone(),
        _ => "moby".to_string(),
    };
    view! {
        <LabFrame notes=notes model=Signal::derive(model_name)>
        <div class="probe-lab" data-testid="probe-lab" class:unloaded=move || !ready()>
            <MobyOrOwn group="probe-model" opened=own.model.get_value() own=own.on pick=switch />
            {move || if own.on.get() { book.status().into_any() } else { model.status().into_any() }}
            <div class="lab-body">
                <section class="panel">
                    <h3>"Concept"</h3>
                    {move || if own.on.get() {
                        view! { <OwnConcept own=own busy=Signal::derive(move || jobs.busy()) start=start /> }.into_any()
                    } else {
                        view! { <MobyConcept model choice regex busy=Signal::derive(move || jobs.busy()) start /> }.into_any()
                    }}
                    {progress}
                    {move || error.get().map(|e| view! { <p class="input-error" data-testid="input-error" role="status">{e}</p> })}
                    <p class="muted small" data-testid="lab-status" role="status" data-rev=move || rev.get()>
                        {move || shown.get().map(|s| format!("Last run: {}, {} layers in {:.1} s.", s.report.concept, s.report.layers.len(), s.ms / 1000.0))}
                    </p>
                </section>
                <ProbeResults shown=shown />
            </div>
        </div>
        </LabFrame>
    }
}

/// The concept on our Moby-Dick model: a built-in one, or a regular expression over the characters, with an
/// excerpt of the held-out text marked by it.
#[component]
fn MobyConcept(
    model: Model<LoadedChar>,
    choice: RwSignal<Choice>,
    regex: RwSignal<String>,
    busy: Signal<bool>,
    start: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let concept = move || match choice.get() {
        Choice::Builtin(c) => Concept::Builtin(c),
        Choice::Regex => Concept::Regex(regex.get()),
    };
    let concept_buttons = move || {
        BuiltinConcept::ALL
            .into_iter()
            .map(|c| {
                view! {
                    <label class="concept-option" title=c.description()>
                        <input type="radio" name="probe-concept" data-testid="concept" data-key=c.key()
                            prop:checked=move || choice.get() == Choice::Builtin(c)
                            prop:disabled=move || busy.get()
                            on:change=move |_| { choice.set(Choice::Builtin(c)); start(); } />
                        " " {c.name()}
                    </label>
                }
            })
            .collect_view()
    };

    let description = move || {
        match choice.get() {
        Choice::Builtin(c) => format!("True where {}.", c.description()),
        Choice::Regex => "True on every character inside a match of your regular expression: “the” marks the t, h and e of every “the” (in “then” and “other” too); “[A-Z][a-z]+” marks capitalised words.".into(),
    }
    };

    let sample = move || {
        let m = model.get()?;
        let marks = excerpt(&m, &concept())?;
        let spans = marks
            .into_iter()
            .map(|(ch, on)| {
                let s = match ch {
                    '\n' => "↵\n".to_string(),
                    c => c.to_string(),
                };
                view! { <span class:label-on=on>{s}</span> }
            })
            .collect_view();
        Some(
            view! { <p class="probe-excerpt" data-testid="probe-excerpt" tabindex="0" role="region" aria-label="excerpt with the concept's characters marked (scrolls)">{spans}</p> },
        )
    };

    view! {
        <div class="concept-grid">{concept_buttons()}</div>
        <div class="regex-row">
            <label class="concept-option">
                <input type="radio" name="probe-concept" data-testid="concept-regex"
                    prop:checked=move || choice.get() == Choice::Regex
                    prop:disabled=move || busy.get()
                    on:change=move |_| choice.set(Choice::Regex) />
                " your own: regular expression "
            </label>
            <input type="text" class="regex-input" data-testid="regex-input" spellcheck="false" aria-label="Regular expression"
                prop:value=move || regex.get()
                on:input=move |ev| { regex.set(event_target_value(&ev)); choice.set(Choice::Regex); }
                on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" && !busy.get_untracked() { start(); } />
            <button class="primary" data-testid="probe-train" disabled=move || busy.get() || model.get().is_none()
                on:click=move |_| start()>"Train probes"</button>
        </div>
        <p class="muted small" data-testid="concept-description">{description}</p>
        {sample}
        <p class="muted small">"Highlighted characters are labelled “yes”. Each probe reads the residual stream at one position and guesses the label there."</p>
    }
}

/// Starts a run on the opened model: the text (the book's held-out passages, `book`, or the pasted one) checked
/// first, so a bad one keeps the last result.
fn start_own(book: &str, own: Own, jobs: Jobs, out: Out) {
    let Some(o) = own.model.get_value() else { return };
    let error = out.1;
    let text = match own.source.get_untracked() {
        Source::Book => book.to_string(),
        Source::Mine => own.mine.get_untracked(),
    };
    if let Err(e) = check_pasted(&text, "to probe on") {
        return error.set(Some(format!("{e} The last result stays on screen.")));
    }
    let c = own.concept();
    let state = ProbeState {
        own: true,
        regex: Some(c.pattern.clone()).filter(|p| p != OWN_REGEX),
        next: c.next,
        ..ProbeState::default()
    };
    replace_hash_soon(&section_hash_with("9.2.3", &state.to_query()));
    jobs.spawn("starting", move |job| run_own(job, o, text, c, own, out));
}

/// One run on our Moby-Dick model.
async fn run_moby(job: Job, m: Arc<LoadedChar>, c: Concept, (shown, error, rev): Out) {
    if !job.pause("starting", 0.0).await {
        return;
    }
    let t0 = now_ms();
    let layers: Vec<usize> = (0..=m.model.cfg.n_layer).collect();
    let r = train_probes(&m, &c, &layers, true, &job).await;
    if !job.alive() {
        return; // cancelled, or the lab is gone
    }
    match r {
        Ok(Some(report)) => {
            let steer = steer_href(&c, report.best_layer().layer);
            shown.set(Some(Shown { report, ms: now_ms() - t0, steer }));
            error.set(None);
            rev.update(|r| *r += 1);
        }
        Ok(None) => {}
        Err(e) => error.set(Some(format!("{}. The last result stays on screen.", sentence(&e)))),
    }
}

/// One run on an opened model; the lab's result and error signals are `out`.
async fn run_own(job: Job, o: Arc<OwnModel>, text: String, concept: TokenConcept, own: Own, (shown, error, rev): Out) {
    if !job.pause("starting", 0.0).await {
        return;
    }
    let t0 = now_ms();
    let plan = own_plan(&o.model.cfg, o.bos().is_some());
    let r = train_own_probes(&o, text, &concept, (plan.window, plan.positions), &job).await;
    if !job.alive() {
        return;
    }
    match r {
        Ok(Some(run)) => {
            own.excerpt.set(Some(token_excerpt(&run.pieces, &run.labels)));
            shown.set(Some(Shown { report: run.report, ms: now_ms() - t0, steer: None }));
            error.set(None);
            rev.update(|r| *r += 1);
        }
        Ok(None) => {}
        Err(e) => error.set(Some(format!("{}. The last result stays on screen.", sentence(&e)))),
    }
}

/// The concept on an opened model: a pattern over the text of a token or the next one, and the text to read.
#[component]
fn OwnConcept(own: Own, busy: Signal<bool>, start: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let excerpt = move || {
        let marks = own.excerpt.get()?;
        let spans = marks
            .into_iter()
            .map(|(piece, on)| {
                let s = piece.replace('\n', "↵\n");
                view! { <span class="tok" class:label-on=on>{s}</span> }
            })
            .collect_view();
        Some(view! {
            <p class="probe-excerpt" data-testid="probe-excerpt" tabindex="0" role="region" aria-label="excerpt with the tokens labelled yes marked (scrolls)">{spans}</p>
            <p class="muted small">"A stretch of the last run's text, cut into the model's tokens; highlighted tokens are labelled “yes”."</p>
        })
    };
    let set_source = move |v: String| {
        own.source.set(if v == "mine" { Source::Mine } else { Source::Book });
    };
    view! {
        <div class="regex-row own-concept">
            <label>"Yes where the text of "
                <select data-testid="probe-token" prop:value=move || if own.next.get() { "next" } else { "this" }
                    prop:disabled=move || busy.get()
                    on:change=move |ev| own.next.set(event_target_value(&ev) == "next")>
                    <option value="next">"the next token"</option>
                    <option value="this">"the token itself"</option>
                </select>
            </label>
            <label>" matches "
                <input type="text" class="regex-input" data-testid="regex-input" spellcheck="false" aria-label="Regular expression"
                    prop:value=move || own.regex.get()
                    on:input=move |ev| own.regex.set(event_target_value(&ev))
                    on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" && !busy.get_untracked() { start(); } />
            </label>
            <button class="primary" data-testid="probe-train" disabled=move || busy.get()
                on:click=move |_| start()>"Train probes"</button>
        </div>
        <p class="muted small" data-testid="concept-description">
            "A regular expression over each token's text as the tokenizer cut it (^ is the token's start, \\s a space or a line break). “^\\s” on the next token: a word ends here. “^ [A-Z]” on the token itself: a capitalised word. “[0-9]”: a digit."
        </p>
        <div class="own-text" role="radiogroup" aria-label="Text to probe on">
            <span>"Text:"</span>
            <label><input type="radio" name="probe-text" data-testid="probe-text-book" prop:checked=move || own.source.get() == Source::Book
                prop:disabled=move || busy.get() on:change=move |_| set_source("book".into()) />" Moby-Dick's held-out passages (60,000 characters)"</label>
            <label><input type="radio" name="probe-text" data-testid="probe-text-mine" prop:checked=move || own.source.get() == Source::Mine
                prop:disabled=move || busy.get() on:change=move |_| set_source("mine".into()) />" a text you paste"</label>
        </div>
        {move || (own.source.get() == Source::Mine).then(|| view! {
            <textarea rows="5" spellcheck="false" data-testid="probe-own-text" aria-label="Your text to probe on"
                maxlength=MAX_PASTED.to_string()
                placeholder="Paste a few thousand words in the model's language, then Train probes."
                prop:value=move || own.mine.get()
                on:input=move |ev| { let t = event_target_value(&ev); MINE.with(|m| *m.borrow_mut() = t.clone()); own.mine.set(t); }></textarea>
            <p class="muted small">"Your text stays in this tab: it is read here and never sent anywhere, and a link does not carry it."</p>
        })}
        {excerpt}
    }
}

/// The last run's accuracy per layer against the baseline and the control, with the verdict.
#[component]
fn ProbeResults(shown: RwSignal<Option<Shown>>) -> impl IntoView {
    move || {
        let s = shown.get()?;
        let r = &s.report;
        let best = r.best_layer().clone();
        let lo = r
            .layers
            .iter()
            .flat_map(|l| [l.test_accuracy, l.shuffled_accuracy.unwrap_or(1.0)])
            .fold(r.baseline, f32::min);
        let lo = ((lo * 10.0).floor() / 10.0).clamp(0.0, 0.9);
        let chart = accuracy_chart(r, lo);
        let rows = r
            .layers
            .iter()
            .map(|l| {
                let ctrl = l.shuffled_accuracy.unwrap_or(f32::NAN);
                view! {
                    <tr data-testid="probe-layer" data-layer=l.layer data-test=format!("{:.4}", l.test_accuracy)
                        data-train=format!("{:.4}", l.train_accuracy) data-control=format!("{ctrl:.4}") class:best=l.layer == best.layer>
                        <th scope="row">{resid_label(l.layer)}</th>
                        <td>{pct(l.test_accuracy)}</td>
                        <td>{pct(l.train_accuracy)}</td>
                        <td>{pct(ctrl)}</td>
                    </tr>
                }
            })
            .collect_view();
        let verdict = verdict(best.test_accuracy, best.shuffled_accuracy, r.baseline);
        Some(view! {
            <section class="panel" data-testid="probe-results" data-best-layer=best.layer data-best=format!("{:.4}", best.test_accuracy)
                data-baseline=format!("{:.4}", r.baseline) data-control=format!("{:.4}", best.shuffled_accuracy.unwrap_or(f32::NAN))
                data-ms=format!("{:.0}", s.ms)>
                <h3>{format!("Held-out accuracy per layer: {}", r.concept)}</h3>
                <p class="probe-headline" data-testid="probe-headline">
                    {format!("Best: {} with {} on held-out positions. Always guessing “{}” scores {}; the same probe on shuffled labels scores {}.",
                        resid_label(best.layer), pct(best.test_accuracy), if r.positive_rate > 0.5 { "yes" } else { "no" }, pct(r.baseline), pct(best.shuffled_accuracy.unwrap_or(f32::NAN)))}
                </p>
                {chart}
                <p class="small">{verdict}</p>
                <table class="probe-table">
                    <thead><tr><th>"layer"</th><th>"held-out"</th><th>"training"</th><th>"shuffled labels"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
                <TableExport />
                <p class="muted small" data-testid="probe-status">
                    {format!("{} training and {} held-out positions ({:.1}% labelled yes), one probe per layer plus its control, in {:.1} s.",
                        r.n_train, r.n_test, 100.0 * r.positive_rate, s.ms / 1000.0)}
                </p>
                {s.steer.clone().map(|href| view! {
                    <p class="small"><a data-testid="steer-link" href=href>
                        {format!("Steer with a probe's direction for this concept at {} (9.3.2) →", resid_label(best.layer))}</a></p>
                })}
            </section>
        })
    }
}

fn concept_untracked(choice: RwSignal<Choice>, regex: RwSignal<String>) -> Concept {
    match choice.get_untracked() {
        Choice::Builtin(c) => Concept::Builtin(c),
        Choice::Regex => Concept::Regex(regex.get_untracked()),
    }
}

/// A link to the steering lab with a probe's direction at `layer`: only for built-in concepts, the ones the
/// steering lab can train a probe for.
fn steer_href(c: &Concept, layer: usize) -> Option<String> {
    match c {
        Concept::Builtin(b) => Some(section_hash_with(
            "9.3.2",
            &[("src", "probe"), ("concept", b.key()), ("layer", &layer.to_string())].map(|(k, v)| (k.into(), v.into())),
        )),
        Concept::Regex(_) => None,
    }
}

fn pct(x: f32) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{:.1}%", 100.0 * x)
    }
}

/// Grouped bars per layer (probe, shuffled-label control) over the majority baseline as a dashed line; the
/// accuracy axis starts at `lo`, so the differences that matter are not squeezed into the top of the chart.
fn accuracy_chart(r: &ProbeReport, lo: f32) -> impl IntoView {
    let bar = |a: f32, class, layer: usize, what| Bar {
        value: a as f64,
        class,
        title: format!("{}: {what} {:.1}%", resid_label(layer), 100.0 * a),
    };
    let groups = r
        .layers
        .iter()
        .map(|l| {
            vec![
                bar(l.test_accuracy, "blue", l.layer, "probe"),
                bar(l.shuffled_accuracy.unwrap_or(lo), "grey", l.layer, "shuffled-label control"),
            ]
        })
        .collect();
    let x = Axis::bands(r.layers.iter().map(|l| resid_label(l.layer)).collect());
    let baseline = Rule {
        from: 0.0,
        to: r.layers.len() as f64,
        value: r.baseline as f64,
        class: "orange dashed",
        title: format!("majority baseline {:.1}%", 100.0 * r.baseline),
    };
    view! {
        <Legend items=vec![("blue", "probe"), ("grey", "shuffled-label control"), ("rule orange", "majority baseline")] />
        <BarChart groups=groups x=x y=Axis::percent(lo as f64, 1.0).titled("held-out accuracy") size=(560.0, 240.0)
            rules=vec![baseline] pad=0.14 class="probe-chart" testid="probe-chart" label="held-out accuracy per layer"
            series=vec!["probe", "shuffled-label control"] />
    }
}
