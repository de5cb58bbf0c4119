//! The steering lab (9.3.2): a steering vector from the difference of mean activations of two sets of
//! contexts (a built-in pair or two sets the student types) or from a trained probe's direction, added at one
//! residual layer times a coefficient while the Moby-Dick model generates. The same prompt and seed are
//! generated with and without the vector side by side, so the vector is the only difference.
//!
//! On a model opened in this tab (`core::opened`) the direction comes from two typed sets only: each line is
//! encoded by the model's tokenizer, the model's first token left out of the means (`ContextMeans::skip_first`).
//!
//! Both texts grow a few characters per slice (`lens::generate::Generator`), with a yield to the browser
//! between slices, so the page shows them as they come and Cancel stops at once.

use std::sync::Arc;

use leptos::prelude::*;

use super::{
    check_inputs, check_own_inputs, layer_name, prompt_tail, rate_text, ratio_text, set_for_url, settings_after_switch,
    ContextSets, Source, SteerState, COEF_MAX, DEFAULT_SEED, LENGTH, MAX_LAYER, OWN_COEF_MAX, OWN_LENGTH, OWN_NEGATIVE,
    OWN_POSITIVE, TEMPERATURE,
};
use crate::app::core::browser::{now_ms, replace_hash_soon};
use crate::app::core::format::sentence;
use crate::app::core::frame::{progress_bar, LabFrame, MobyOrOwn, UrlNotes};
use crate::app::core::jobs::{start_when_ready, Job, Jobs};
use crate::app::core::load::{load_char_model, LoadedChar, Model};
use crate::app::core::models::own_not_open_showing;
use crate::app::core::opened::{opened, OwnModel};
use crate::app::core::probes::train_probes;
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::gpt2::generate::{Generator, SampleSettings};
use crate::lens::methods::logit_lens::resid_hook;
use crate::lens::methods::probe::{BuiltinConcept, Concept};
use crate::lens::methods::steering::{steering_from_probe, ContextMeans, SteeringVector, PAIRS};
use crate::lens::{LensError, Transformer};

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
    /// Made on an opened model: no rate of the book's measure is shown.
    own: bool,
    ms: f64,
}

/// What the panels share: the controls' values and what the last run left.
#[derive(Clone, Copy)]
struct Steer {
    /// The model opened in this tab, if any, and whether the lab is on it.
    opened: StoredValue<Option<Arc<OwnModel>>>,
    own: RwSignal<bool>,
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
        let own = self.own.get_untracked();
        let (pos, neg) = default_sets(own);
        SteerState {
            own,
            source: self.source.get_untracked(),
            layer: self.layer.get_untracked(),
            coef: self.coef.get_untracked(),
            seed: self.seed.get_untracked(),
            prompt: self.prompt.get_untracked(),
            positive: set_for_url(self.pos_text.get_untracked(), pos),
            negative: set_for_url(self.neg_text.get_untracked(), neg),
        }
    }

    /// The deepest residual layer of the model the lab is on.
    fn max_layer(self) -> usize {
        match (self.own.get(), self.opened.get_value()) {
            (true, Some(o)) => o.model.cfg.n_layer,
            _ => MAX_LAYER,
        }
    }

    /// Puts the lab on the Moby-Dick model (`own` false) or the opened one, each from its own defaults.
    fn switch_model(self, own: bool) {
        let s = if own {
            SteerState::from_query(&[("model".to_string(), "own".to_string())]).0
        } else {
            SteerState::default()
        };
        self.load(s);
        self.outcome.set(None);
        self.error.set(None);
    }

    /// Sets every control from a state (its sets, or the model's default sets where it has none).
    fn load(self, s: SteerState) {
        let (pos, neg) = default_sets(s.own);
        self.own.set(s.own);
        self.source.set(s.source);
        self.layer.set(s.layer);
        self.coef.set(s.coef);
        self.seed.set(s.seed);
        self.prompt.set(s.prompt);
        self.pos_text.set(s.positive.unwrap_or_else(|| pos.join("\n")));
        self.neg_text.set(s.negative.unwrap_or_else(|| neg.join("\n")));
    }
}

/// The sets a model starts from (towards, away from): the first pair's on ours, two moods on an opened one.
fn default_sets(own: bool) -> (&'static [&'static str], &'static [&'static str]) {
    if own {
        (OWN_POSITIVE, OWN_NEGATIVE)
    } else {
        (PAIRS[0].positive, PAIRS[0].negative)
    }
}

#[component]
pub fn SteerLab(query: Vec<(String, String)>) -> impl IntoView {
    let model = Model::new("the Moby-Dick model", || load_char_model("moby"));
    let (mut url, problems) = SteerState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    let own_model = opened();
    match &own_model {
        None if url.own => {
            notes.add(own_not_open_showing("the Moby-Dick model"));
            url = SteerState::default();
        }
        Some(o) if url.own && url.layer > o.model.cfg.n_layer => {
            let n = o.model.cfg.n_layer;
            notes.add(format!(
                "The link asks for layer {}, but {} has layers 0 to {n}: the lab uses {n}.",
                url.layer, o.name
            ));
            url.layer = n;
        }
        _ => {}
    }
    let st = Steer {
        opened: StoredValue::new(own_model),
        own: RwSignal::new(false),
        source: RwSignal::new(url.source),
        layer: RwSignal::new(url.layer),
        coef: RwSignal::new(url.coef),
        seed: RwSignal::new(url.seed),
        prompt: RwSignal::new(String::new()),
        pos_text: RwSignal::new(String::new()),
        neg_text: RwSignal::new(String::new()),
        live: RwSignal::new(None),
        outcome: RwSignal::new(None),
        error: RwSignal::new(None),
        rev: RwSignal::new(0),
    };
    st.load(url);
    let jobs = Jobs::new();

    let start = move || {
        let state = st.url_state();
        if state.own {
            let Some(o) = st.opened.get_value() else { return };
            let sets = match check_own_inputs(&state.prompt, &st.pos_text.get_untracked(), &st.neg_text.get_untracked())
            {
                Ok(s) => s,
                Err(e) => return st.error.set(Some(format!("{e} The last result stays on screen."))),
            };
            st.error.set(None);
            replace_hash_soon(&section_hash_with("9.3.2", &state.to_query()));
            jobs.spawn("finding the direction", move |job| run_own(job, o, state, sets, st));
            return;
        }
        let Some(m) = model.get_untracked() else { return };
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
    start_when_ready(move || st.own.get() || model.get().is_some(), start);
    // The JSON's own part: both generations and the vector's figures.
    let numbers = Callback::new(move |_| {
        st.outcome.with_untracked(|o| {
            let o = o.as_ref()?;
            Some(serde_json::json!({
                "unsteered": o.plain, "steered": o.steered, "vector": o.vector_note, "norm": o.norm,
                "coefficient": o.coef, "layer": o.layer, "measure": (!o.own).then_some(o.measure), "ms": o.ms,
            }))
        })
    });

    let model_name = move || match (st.own.get(), st.opened.get_value()) {
        (true, Some(o)) => o.name.clone(),
        _ => "moby".to_string(),
    };
    view! {
        <LabFrame notes=notes model=Signal::derive(model_name) numbers=numbers>
        <div class="steer-lab" data-testid="steer-lab" class:unloaded=move || !st.own.get() && model.get().is_none()>
            // Switching starts the new model from its own defaults and reruns.
            <MobyOrOwn group="steer-model" opened=st.opened.get_value() own=st.own pick=move |own| { st.switch_model(own); start(); } />
            {move || (!st.own.get()).then(|| model.status())}
            <div class="lab-body">
                <section class="panel">
                    <h3>"Steering vector"</h3>
                    <DirectionControls st=st start=start />
                    <SetsView st=st />
                    <PromptControls st=st start=start busy=Signal::derive(move || jobs.busy() || !st.own.get() && model.get().is_none()) />
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

/// Both texts, the two generators taking turns a piece each (a token, or a block of a prefill), shown as they
/// grow; from `base` of the bar to its end. False if the job stopped or failed (the error is then shown).
async fn generate_pair(
    job: &Job,
    model: &Transformer,
    (plain, steered): (&mut Generator, &mut Generator),
    length: usize,
    decode: &dyn Fn(&[u32]) -> String,
    base: f32,
    st: Steer,
) -> bool {
    st.live.set(Some(Default::default()));
    if !job.pause("generating", base).await {
        return false;
    }
    let left = |g: &Generator| g.out.tokens.len() < length;
    while left(plain) || left(steered) {
        let stepped = job.slice(|| {
            if left(plain) && plain.out.tokens.len() <= steered.out.tokens.len() {
                plain.advance(model)?;
            } else if left(steered) {
                steered.advance(model)?;
            }
            Ok::<_, LensError>(!left(plain) && !left(steered))
        });
        if let Err(e) = stepped {
            st.error.set(Some(sentence(&e.to_string())));
            return false;
        }
        if !job.alive() {
            return false;
        }
        st.live.set(Some((decode(&plain.out.tokens), decode(&steered.out.tokens))));
        let done = (plain.out.tokens.len() + steered.out.tokens.len()) as f32 / (2 * length) as f32;
        if !job.pause("generating", base + (1.0 - base) * done).await {
            return false;
        }
    }
    st.live.set(None);
    true
}

/// One run on an opened model: every typed line and the prompt through its tokenizer's worker, the difference
/// of means a block per slice (the model's first token left out), then both texts a piece per slice (the
/// generator cuts a big model's token into half blocks).
async fn run_own(job: Job, o: Arc<OwnModel>, s: SteerState, sets: (Vec<String>, Vec<String>), st: Steer) {
    let t0 = now_ms();
    let fail = move |e: String| st.error.set(Some(format!("{}. The last result stays on screen.", sentence(&e))));
    let mut encoded: [Vec<Vec<u32>>; 2] = Default::default();
    let mut bos = false;
    for (k, lines) in [sets.0, sets.1].into_iter().enumerate() {
        for line in lines {
            match o.encode(line, &job, "encoding the sets").await {
                None => return,
                Some(Ok(input)) => {
                    bos = input.bos;
                    encoded[k].push(input.ids);
                }
                Some(Err(e)) => return fail(e),
            }
        }
    }
    let prompt = match o.encode(s.prompt.clone(), &job, "encoding the prompt").await {
        None => return,
        Some(Ok(input)) => input.ids,
        Some(Err(e)) => return fail(e),
    };
    let model = &o.model;
    let [pc, nc] = encoded;
    let means = ContextMeans::new(model, &pc, &nc, resid_hook(s.layer)).map(|m| m.skip_first(usize::from(bos)));
    let mut means = match means {
        Ok(m) => m,
        Err(e) => return fail(e.to_string()),
    };
    let found = job
        .sliced("finding the direction", || {
            let done = means.advance(model)?;
            Ok::<_, LensError>((!done).then(|| 0.3 * means.progress()))
        })
        .await;
    match found {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => return fail(e.to_string()),
    }
    let vector = match means.finish() {
        Ok(v) => v,
        Err(e) => return fail(e.to_string()),
    };
    let settings = SampleSettings { temperature: TEMPERATURE, top_k: 0, seed: s.seed };
    let gens = vector.intervention(s.coef).and_then(|iv| {
        Ok((Generator::new(model, &prompt, &settings, &[])?, Generator::new(model, &prompt, &settings, &[iv])?))
    });
    let (mut plain, mut steered) = match gens {
        Ok(g) => g,
        Err(e) => return fail(e.to_string()),
    };
    let decode = |t: &[u32]| t.iter().map(|&i| o.pieces[i as usize].as_str()).collect::<String>();
    if !generate_pair(&job, model, (&mut plain, &mut steered), OWN_LENGTH, &decode, 0.3, st).await {
        return;
    }
    let first = if bos { ", the model's first token left out" } else { "" };
    st.outcome.set(Some(Outcome {
        plain: decode(&plain.out.tokens[..OWN_LENGTH]),
        steered: decode(&steered.out.tokens[..OWN_LENGTH]),
        vector_note: format!(
            "v = mean activation difference “your first set minus your second” ({} and {} contexts{first}) at layer {}",
            pc.len(),
            nc.len(),
            layer_name(s.layer)
        ),
        norm: vector.norm(),
        coef: s.coef,
        layer: s.layer,
        measure: 0,
        own: true,
        ms: now_ms() - t0,
    }));
    st.rev.update(|r| *r += 1);
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
    // The direction took the first half of the bar.
    let decode = |t: &[u32]| m.vocab.decode(t);
    if !generate_pair(&job, &m.model, (&mut plain, &mut steered), LENGTH, &decode, 0.5, st).await {
        return;
    }
    st.outcome.set(Some(Outcome {
        plain: m.vocab.decode(&plain.out.tokens[..LENGTH]),
        steered: m.vocab.decode(&steered.out.tokens[..LENGTH]),
        vector_note: note,
        norm: vector.norm(),
        coef: s.coef,
        layer: s.layer,
        measure: s.source.measure(),
        own: false,
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
    let pair_options = move || {
        PAIRS
            .iter()
            .enumerate()
            .map(|(i, p)| view! { <option value=Source::Pair(i).key()>{format!("pair: {}", p.name)}</option> })
            .collect_view()
    };
    let probe_options = move || {
        BuiltinConcept::ALL
            .into_iter()
            .map(|c| view! { <option value=Source::Probe(c).key()>{format!("probe direction: {}", c.name())}</option> })
            .collect_view()
    };
    let layer_options = move || {
        (0..=st.max_layer()).map(|l| view! { <option value=l.to_string()>{layer_name(l)}</option> }).collect_view()
    };
    // An opened model has no built-in pairs or probes: its direction is always the two typed sets.
    let source = move || {
        if st.own.get() {
            return view! { <span data-testid="steer-source-own">"direction: your own two sets of contexts"</span> }
                .into_any();
        }
        view! {
            <label>"direction "
                <select data-testid="steer-source" prop:value=move || st.source.get().key() on:change=move |ev| set_source(event_target_value(&ev))>
                    {pair_options()}
                    <option value="custom">"your own two sets of contexts"</option>
                    {probe_options()}
                </select>
            </label>
        }
        .into_any()
    };
    view! {
        <div class="gen-controls">
            {source}
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
        let source = if st.own.get() { Source::Custom } else { st.source.get() };
        match source {
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
    let coef_max = move || if st.own.get() { OWN_COEF_MAX } else { COEF_MAX };
    let button = move || match st.own.get() {
        true => format!("Generate {OWN_LENGTH} tokens, with and without"),
        false => format!("Generate {LENGTH} characters, with and without"),
    };
    view! {
        <div class="gen-controls steer-coef">
            <label class="coef-label" title="Negative pushes away from the first set, 0 changes nothing.">"coefficient "
                <input type="range" min=move || (-coef_max()).to_string() max=move || coef_max().to_string() step="0.05" data-testid="steer-coef"
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
                on:click=move |_| start()>{button}</button>
            <span class="muted small">{format!("temperature {TEMPERATURE}")}</span>
        </div>
    }
}

/// Both texts, growing while the run goes and then with the rates and what the vector was.
#[component]
fn Outputs(st: Steer) -> impl IntoView {
    // On an opened model there is no measure to count (the book's capitals mean nothing there).
    let side = move |title: String, text: String, measure: Option<usize>, side: &'static str, done: bool| {
        let (rate_s, rate) = measure.map_or((String::new(), 0.0), |m| rate_text(m, &text));
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
            let m = (!st.own.get_untracked()).then(|| st.source.get_untracked().measure());
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
        let measure = (!o.own).then_some(o.measure);
        let compared = match measure {
            Some(m) => format!("the steered text has {}.", ratio_text(m, &o.plain, &o.steered)),
            None => "any difference between the texts is the vector's doing.".to_string(),
        };
        let note = format!(
            "{}; |v| = {:.1}, so each position gets a vector of length {:.1} added. Same prompt, same seed: {compared}",
            o.vector_note,
            o.norm,
            (o.coef * o.norm).abs()
        );
        Some(
            view! {
                <div>
                    <div class="steer-cols" data-testid="steer-result" data-ms=format!("{:.0}", o.ms) data-layer=o.layer>
                        {side("Without steering".into(), o.plain.clone(), measure, "plain", true)}
                        {side(format!("With steering: {:+.2} × v", o.coef), o.steered.clone(), measure, "steered", true)}
                    </div>
                    <p class="small" data-testid="steer-note">{note}</p>
                </div>
            }
            .into_any(),
        )
    }
}
