//! The steering lab (9.3.2): a steering vector from the difference of mean activations of two sets of
//! contexts (a built-in pair or two sets the student types) or from a trained probe's direction, added at one
//! residual layer times a coefficient while the Moby-Dick model generates. The same prompt and seed are
//! generated with and without the vector side by side, so the vector is the only difference.
//!
//! Both texts grow a few characters per slice (`lens::generate::Generator`), with a yield to the browser
//! between slices, so the page shows them as they come and Cancel stops at once.

use std::sync::Arc;

use leptos::prelude::*;

use super::{
    check_inputs, layer_name, prompt_tail, rate_text, ratio_text, set_for_url, settings_after_switch, ContextSets,
    Source, SteerState, COEF_MAX, DEFAULT_SEED, LENGTH, MAX_LAYER, TEMPERATURE,
};
use crate::app::core::browser::{now_ms, replace_hash_soon};
use crate::app::core::format::sentence;
use crate::app::core::frame::{progress_bar, LabFrame, UrlNotes};
use crate::app::core::jobs::{start_when_ready, Job, Jobs};
use crate::app::core::load::{load_char_model, LoadedChar, Model};
use crate::app::core::probes::train_probes;
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::gpt2::generate::{Generator, SampleSettings};
use crate::lens::methods::logit_lens::resid_hook;
use crate::lens::methods::probe::{BuiltinConcept, Concept};
use crate::lens::methods::steering::{steering_from_probe, ContextMeans, SteeringVector, PAIRS};
use crate::lens::LensError;

/// A finished comparison.
#[derive(Clone, Debug, PartialEq)]
struct Outcome {
    plain: String,
    steered: String,
    /// What the vector was and how it was applied, in words.
    vector_note: String,
    norm: f32,
    coef: f32,
    layer: usize,
    measure: usize,
    ms: f64,
}

/// What the panels share: the controls' values and what the last run left.
#[derive(Clone, Copy)]
struct Steer {
    source: RwSignal<Source>,
    layer: RwSignal<usize>,
    coef: RwSignal<f32>,
    seed: RwSignal<u64>,
    prompt: RwSignal<String>,
    pos_text: RwSignal<String>,
    neg_text: RwSignal<String>,
    /// Both texts while they grow (plain, steered).
    live: RwSignal<Option<(String, String)>>,
    outcome: RwSignal<Option<Outcome>>,
    error: RwSignal<Option<String>>,
    rev: RwSignal<u32>,
}

impl Steer {
    fn url_state(self) -> SteerState {
        SteerState {
            source: self.source.get_untracked(),
            layer: self.layer.get_untracked(),
            coef: self.coef.get_untracked(),
            seed: self.seed.get_untracked(),
            prompt: self.prompt.get_untracked(),
            positive: set_for_url(self.pos_text.get_untracked(), PAIRS[0].positive),
            negative: set_for_url(self.neg_text.get_untracked(), PAIRS[0].negative),
        }
    }
}

#[component]
pub fn SteerLab(query: Vec<(String, String)>) -> impl IntoView {
    let model = Model::new("the Moby-Dick model", || load_char_model("moby"));
    let (url, problems) = SteerState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    let st = Steer {
        source: RwSignal::new(url.source),
        layer: RwSignal::new(url.layer),
        coef: RwSignal::new(url.coef),
        seed: RwSignal::new(url.seed),
        prompt: RwSignal::new(url.prompt),
        pos_text: RwSignal::new(url.positive.unwrap_or_else(|| PAIRS[0].positive.join("\n"))),
        neg_text: RwSignal::new(url.negative.unwrap_or_else(|| PAIRS[0].negative.join("\n"))),
        live: RwSignal::new(None),
        outcome: RwSignal::new(None),
        error: RwSignal::new(None),
        rev: RwSignal::new(0),
    };
    let jobs = Jobs::new();

    let start = move || {
        let Some(m) = model.get_untracked() else { return };
        let state = st.url_state();
        // Everything a student types is checked before any work, so a bad input keeps the last result.
        let (pos, neg) = (st.pos_text.get_untracked(), st.neg_text.get_untracked());
        let contexts = match check_inputs(&m.vocab, state.source, &state.prompt, &pos, &neg) {
            Ok(c) => c,
            Err(e) => return st.error.set(Some(format!("{e} The last result stays on screen."))),
        };
        st.error.set(None);
        replace_hash_soon(&section_hash_with("9.3.2", &state.to_query()));
        jobs.spawn("finding the direction", move |job| run(job, m, state, contexts, st));
    };
    let cancel = move || {
        st.live.set(None);
        st.error.set(Some("Cancelled. The last result stays on screen.".into()));
    };

    // The default comparison runs once the model is there, so the page opens on a result. Changing the
    // direction, the layer or the coefficient reruns at once (a run in progress is dropped).
    start_when_ready(move || model.get().is_some(), start);
    // The JSON's own part: both generations and the vector's figures.
    let numbers = Callback::new(move |_| {
        st.outcome.with_untracked(|o| {
            let o = o.as_ref()?;
            Some(serde_json::json!({
                "unsteered": o.plain, "steered": o.steered, "vector": o.vector_note, "norm": o.norm,
                "coefficient": o.coef, "layer": o.layer, "measure": o.measure, "ms": o.ms,
            }))
        })
    });

    view! {
        <LabFrame notes=notes model="moby" numbers=numbers>
        <div class="steer-lab" data-testid="steer-lab" class:unloaded=move || model.get().is_none()>
            {model.status()}
            <div class="lab-body">
                <section class="panel">
                    <h3>"Steering vector"</h3>
                    <DirectionControls st=st start=start />
                    <SetsView st=st />
                    <PromptControls st=st start=start busy=Signal::derive(move || jobs.busy() || model.get().is_none()) />
                    {progress_bar(jobs, "steer", cancel)}
                    {move || st.error.get().map(|e| view! { <p class="input-error" data-testid="input-error" role="status">{e}</p> })}
                    <p class="muted small" data-testid="lab-status" data-rev=move || st.rev.get()>
                        {move || st.outcome.get().map(|o| format!("Last run: both texts in {:.1} s.", o.ms / 1000.0))}
                    </p>
                </section>
                <section class="panel" data-testid="steer-panel">
                    <h3>"Same prompt, same seed"</h3>
                    <Outputs st=st />
                </section>
            </div>
        </div>
        </LabFrame>
    }
}

/// One run: the direction (averaged contexts or a trained probe), then both texts side by side.
async fn run(job: Job, m: Arc<LoadedChar>, s: SteerState, contexts: Option<ContextSets>, st: Steer) {
    if !job.pause("finding the direction", 0.0).await {
        return;
    }
    let t0 = now_ms();
    let (vector, note) = match find_vector(&job, &m, s.source, s.layer, contexts).await {
        Ok(Some(v)) => v,
        Ok(None) => return,
        Err(e) => return st.error.set(Some(format!("{}. The last result stays on screen.", sentence(&e)))),
    };
    if !job.alive() {
        return;
    }
    let fail = |e: LensError| st.error.set(Some(sentence(&e.to_string())));
    let settings = SampleSettings { temperature: TEMPERATURE, top_k: 0, seed: s.seed };
    let gens = m.vocab.encode(&s.prompt).and_then(|ids| {
        let iv = vector.intervention(s.coef)?;
        Ok((Generator::new(&m.model, &ids, &settings, &[])?, Generator::new(&m.model, &ids, &settings, &[iv])?))
    });
    let (mut plain, mut steered) = match gens {
        Ok(g) => g,
        Err(e) => return fail(e),
    };
    // The direction took the first half of the bar. The prompt's two passes get a task of their own.
    let base = 0.5;
    st.live.set(Some(Default::default()));
    if !job.pause("generating", base).await {
        return;
    }
    let left = |g: &Generator| g.out.tokens.len() < LENGTH;
    while left(&plain) || left(&steered) {
        // The two texts take turns, a piece each (a token, or a block of a prefill after the context slides).
        let stepped = job.slice(|| {
            if left(&plain) && plain.out.tokens.len() <= steered.out.tokens.len() {
                plain.advance(&m.model)?;
            } else if left(&steered) {
                steered.advance(&m.model)?;
            }
            Ok::<_, LensError>(!left(&plain) && !left(&steered))
        });
        if let Err(e) = stepped {
            return fail(e);
        }
        if !job.alive() {
            return;
        }
        st.live.set(Some((m.vocab.decode(&plain.out.tokens), m.vocab.decode(&steered.out.tokens))));
        let done = (plain.out.tokens.len() + steered.out.tokens.len()) as f32 / (2 * LENGTH) as f32;
        if !job.pause("generating", base + (1.0 - base) * done).await {
            return;
        }
    }
    st.live.set(None);
    st.outcome.set(Some(Outcome {
        plain: m.vocab.decode(&plain.out.tokens[..LENGTH]),
        steered: m.vocab.decode(&steered.out.tokens[..LENGTH]),
        vector_note: note,
        norm: vector.norm(),
        coef: s.coef,
        layer: s.layer,
        measure: s.source.measure(),
        ms: now_ms() - t0,
    }));
    st.rev.update(|r| *r += 1);
}

/// The steering vector and its description; `Ok(None)` when the job was stopped on the way.
async fn find_vector(
    job: &Job,
    m: &LoadedChar,
    src: Source,
    l: usize,
    contexts: Option<ContextSets>,
) -> Result<Option<(SteeringVector, String)>, String> {
    let (pc, nc) = match (src, contexts) {
        (Source::Probe(b), _) => {
            let Some(r) = train_probes(m, &Concept::Builtin(b), &[l], false, job).await? else { return Ok(None) };
            let lp = &r.layers[0];
            let note = format!(
                "v = the direction of a probe for “{}” at layer {} (held-out accuracy {:.1}%), scaled to the gap between the classes",
                b.name(),
                layer_name(l),
                100.0 * lp.test_accuracy
            );
            return Ok(Some((steering_from_probe(lp), note)));
        }
        (_, Some(sets)) => sets,
        (_, None) => return Err("no contexts".into()),
    };
    let name = match src {
        Source::Pair(i) => PAIRS[i].name.to_string(),
        _ => "your first set minus your second".to_string(),
    };
    let note = format!(
        "v = mean activation difference “{name}” ({} and {} contexts) at layer {}",
        pc.len(),
        nc.len(),
        layer_name(l)
    );
    // A block of one context per step, however many and however long the contexts, so Cancel stays within reach.
    let mut means = ContextMeans::new(&m.model, &pc, &nc, resid_hook(l)).map_err(|e| e.to_string())?;
    let run = job.sliced("finding the direction", || {
        let done = means.advance(&m.model)?;
        Ok::<_, LensError>((!done).then(|| 0.5 * means.progress()))
    });
    match run.await.map_err(|e| e.to_string())? {
        true => means.finish().map(|v| Some((v, note))).map_err(|e| e.to_string()),
        false => Ok(None),
    }
}

/// The direction and layer pickers; changing either reruns at once.
#[component]
fn DirectionControls(st: Steer, start: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let set_source = move |v: String| {
        let Some(to) = Source::from_key(&v) else { return };
        let (l, c) =
            settings_after_switch(st.source.get_untracked(), to, (st.layer.get_untracked(), st.coef.get_untracked()));
        st.layer.set(l);
        st.coef.set(c);
        st.source.set(to);
        start();
    };
    let pair_options = PAIRS
        .iter()
        .enumerate()
        .map(|(i, p)| view! { <option value=Source::Pair(i).key()>{format!("pair: {}", p.name)}</option> })
        .collect_view();
    let probe_options = BuiltinConcept::ALL
        .into_iter()
        .map(|c| view! { <option value=Source::Probe(c).key()>{format!("probe direction: {}", c.name())}</option> })
        .collect_view();
    let layer_options =
        (0..=MAX_LAYER).map(|l| view! { <option value=l.to_string()>{layer_name(l)}</option> }).collect_view();
    view! {
        <div class="gen-controls">
            <label>"direction "
                <select data-testid="steer-source" prop:value=move || st.source.get().key() on:change=move |ev| set_source(event_target_value(&ev))>
                    {pair_options}
                    <option value="custom">"your own two sets of contexts"</option>
                    {probe_options}
                </select>
            </label>
            <label>"layer "
                <select data-testid="steer-layer" prop:value=move || st.layer.get().to_string()
                    on:change=move |ev| if let Ok(l) = event_target_value(&ev).parse() { st.layer.set(l); start(); }>{layer_options}</select>
            </label>
        </div>
    }
}

/// The contexts behind the direction: two boxes for typed sets, the pair's lists, or what a probe trains on.
#[component]
fn SetsView(st: Steer) -> impl IntoView {
    move || {
        match st.source.get() {
        Source::Custom => view! {
            <div class="steer-sets">
                <label>"Towards (one context per line)"
                    <textarea rows="5" spellcheck="false" data-testid="set-pos" prop:value=move || st.pos_text.get()
                        on:input=move |ev| st.pos_text.set(event_target_value(&ev))></textarea></label>
                <label>"Away from (one context per line)"
                    <textarea rows="5" spellcheck="false" data-testid="set-neg" prop:value=move || st.neg_text.get()
                        on:input=move |ev| st.neg_text.set(event_target_value(&ev))></textarea></label>
            </div>
        }
        .into_any(),
        Source::Pair(i) => {
            let p = PAIRS[i];
            let list = |v: &[&'static str]| v.iter().map(|s| view! { <li>{*s}</li> }).collect_view();
            view! {
                <details class="steer-pair">
                    <summary>{format!("The pair's contexts ({} each way)", p.positive.len())}</summary>
                    <div class="steer-sets">
                        <div><strong>"Towards"</strong><ul>{list(p.positive)}</ul></div>
                        <div><strong>"Away from"</strong><ul>{list(p.negative)}</ul></div>
                    </div>
                </details>
            }
            .into_any()
        }
        Source::Probe(c) => view! {
            <p class="muted small">{format!("The lab trains a probe for “{}” at the chosen layer on 5,000 positions of held-out text and steers along its direction.", c.name())}</p>
        }
        .into_any(),
    }
    }
}

/// The coefficient (reruns when let go), the prompt, the seed and the run button.
#[component]
fn PromptControls(st: Steer, start: impl Fn() + Copy + Send + Sync + 'static, busy: Signal<bool>) -> impl IntoView {
    view! {
        <div class="gen-controls steer-coef">
            <label class="coef-label" title="Negative pushes away from the first set, 0 changes nothing.">"coefficient "
                <input type="range" min=(-COEF_MAX).to_string() max=COEF_MAX.to_string() step="0.05" data-testid="steer-coef"
                    prop:value=move || format!("{:.2}", st.coef.get())
                    on:input=move |ev| st.coef.set(event_target_value(&ev).parse().unwrap_or(0.0))
                    on:change=move |_| start() />
                <output data-testid="steer-coef-value">{move || format!(" {:+.2}", st.coef.get())}</output>
            </label>
        </div>
        <label class="input-label" for="steer-prompt">"Prompt"</label>
        <textarea id="steer-prompt" rows="2" spellcheck="false" data-testid="steer-prompt"
            prop:value=move || st.prompt.get() on:input=move |ev| st.prompt.set(event_target_value(&ev))></textarea>
        <div class="gen-controls">
            <label>"seed " <input type="number" min="0" class="num-input" data-testid="steer-seed"
                prop:value=move || st.seed.get().to_string()
                on:change=move |ev| st.seed.set(event_target_value(&ev).parse().unwrap_or(DEFAULT_SEED)) /></label>
            <button class="primary" data-testid="steer-run" disabled=move || busy.get()
                on:click=move |_| start()>{format!("Generate {LENGTH} characters, with and without")}</button>
            <span class="muted small">{format!("temperature {TEMPERATURE}")}</span>
        </div>
    }
}

/// Both texts, growing while the run goes and then with the rates and what the vector was.
#[component]
fn Outputs(st: Steer) -> impl IntoView {
    let side = move |title: String, text: String, measure: usize, side: &'static str, done: bool| {
        let (rate_s, rate) = rate_text(measure, &text);
        view! {
            <div class="steer-side" data-testid="steer-out" data-side=side data-rate=format!("{rate:.4}") data-done=done.to_string()>
                <h4>{title}</h4>
                <p class="gen-text"><span class="prompt-tail">{prompt_tail(&st.prompt.get_untracked())}</span><span data-testid=format!("steer-text-{side}") class="steer-gen">{text}</span></p>
                <p class="muted small">{rate_s}</p>
            </div>
        }
    };
    move || {
        if let Some((a, b)) = st.live.get() {
            let m = st.source.get_untracked().measure();
            let title = format!("With steering: {:+.2} × v", st.coef.get_untracked());
            return Some(
                view! {
                    <div class="steer-cols">
                        {side("Without steering".into(), a, m, "plain", false)}
                        {side(title, b, m, "steered", false)}
                    </div>
                }
                .into_any(),
            );
        }
        let o = st.outcome.get()?;
        let ratio = ratio_text(o.measure, &o.plain, &o.steered);
        let note = format!(
            "{}; |v| = {:.1}, so each position gets a vector of length {:.1} added. Same prompt, same seed: the steered text has {ratio}.",
            o.vector_note,
            o.norm,
            (o.coef * o.norm).abs()
        );
        Some(
            view! {
                <div>
                    <div class="steer-cols" data-testid="steer-result" data-ms=format!("{:.0}", o.ms) data-layer=o.layer>
                        {side("Without steering".into(), o.plain.clone(), o.measure, "plain", true)}
                        {side(format!("With steering: {:+.2} × v", o.coef), o.steered.clone(), o.measure, "steered", true)}
                    </div>
                    <p class="small" data-testid="steer-note">{note}</p>
                </div>
            }
            .into_any(),
        )
    }
}
