//! The steering lab (9.3.2): a steering vector from the difference of mean activations of two sets of
//! contexts (a built-in pair or two sets the student types) or from a trained probe's direction, added at one
//! residual layer times a coefficient while the Moby-Dick model generates. The same prompt and seed are
//! generated with and without the vector side by side, so the vector is the only difference.
//!
//! Both texts grow a few characters per slice (`lens::generate::Generator`), with a yield to the browser
//! between slices, so the page shows them as they come and Cancel stops at once.

use leptos::prelude::*;

use super::{Source, SteerState, COEF_MAX, DEFAULT_SEED, MAX_LAYER, MAX_SET};
use crate::app::core::browser::{now_ms, replace_hash_soon};
use crate::app::core::format::sentence;
use crate::app::core::frame::{progress_bar, LabFrame, UrlNotes};
use crate::app::core::jobs::{slice, start_when_ready, Jobs};
use crate::app::core::load::{load_char_model, LoadedChar, Model};
use crate::app::core::probes::train_probes;
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::gpt2::generate::{Generator, SampleSettings};
use crate::lens::gpt2::text::quoted_chars;
use crate::lens::methods::logit_lens::resid_hook;
use crate::lens::methods::probe::{BuiltinConcept, Concept};
use crate::lens::methods::steering::{contexts_from_lines, steering_from_probe, ContextMeans, SteeringVector, PAIRS};
use crate::lens::LensError;

/// The encoded contexts of the two sets, positive then negative.
type ContextSets = (Vec<Vec<u32>>, Vec<Vec<u32>>);

/// Characters generated on each side.
const LENGTH: usize = 400;
const TEMPERATURE: f32 = 0.8;

/// One side's text so far.
#[derive(Clone, Debug, Default, PartialEq)]
struct Side {
    text: String,
}

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

/// A residual layer as the pickers name it: its number and where it sits.
fn layer_name(l: usize) -> String {
    if l == 0 {
        "0 · the embedding".into()
    } else {
        format!("{l} · after block {}", l - 1)
    }
}

/// What the rates count: the pair's measure for built-in pairs, capital letters otherwise.
fn measure_of(src: Source) -> usize {
    match src {
        Source::Pair(i) => i,
        _ => 0,
    }
}

fn rate_text(measure: usize, s: &str) -> (String, f32) {
    let p = &PAIRS[measure];
    let r = p.rate(s);
    (format!("{}: {:.1}%", p.measure_name, 100.0 * r), r)
}

/// Checks a typed text against the vocabulary, naming the unknown characters.
fn check_chars(m: &LoadedChar, text: &str, what: &str) -> Result<(), String> {
    let unknown = m.vocab.unknown_chars(text);
    if unknown.is_empty() {
        return Ok(());
    }
    Err(format!(
        "The model has never seen {} in {what}: the book's quotes are curly (“ ” ’); remove or replace them.",
        quoted_chars(&unknown)
    ))
}

#[component]
pub fn SteerLab(query: Vec<(String, String)>) -> impl IntoView {
    let model = Model::new("the Moby-Dick model", || load_char_model("moby"));
    let (url, problems) = SteerState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    let source = RwSignal::new(url.source);
    let layer = RwSignal::new(url.layer);
    let coef = RwSignal::new(url.coef);
    let seed = RwSignal::new(url.seed);
    let prompt = RwSignal::new(url.prompt);
    let pos_text = RwSignal::new(url.positive.unwrap_or_else(|| PAIRS[0].positive.join("\n")));
    let neg_text = RwSignal::new(url.negative.unwrap_or_else(|| PAIRS[0].negative.join("\n")));

    let live: RwSignal<Option<(Side, Side)>> = RwSignal::new(None);
    let outcome: RwSignal<Option<Outcome>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let jobs = Jobs::new();
    let rev = RwSignal::new(0u32);

    let loaded = move || model.get();

    let start = move || {
        let Some(m) = loaded() else { return };
        let (src, l, c, s, p) = (
            source.get_untracked(),
            layer.get_untracked(),
            coef.get_untracked(),
            seed.get_untracked(),
            prompt.get_untracked(),
        );
        // Everything a student types is checked before any work, so a bad input keeps the last result.
        let checked = (|| -> Result<Option<ContextSets>, String> {
            if p.trim().is_empty() {
                return Err("Type a prompt: both generations continue it.".into());
            }
            check_chars(&m, &p, "the prompt")?;
            match src {
                Source::Pair(i) => Ok(Some(PAIRS[i].contexts(&m.vocab).map_err(|e| e.to_string())?)),
                Source::Custom => {
                    let (pt, nt) = (pos_text.get_untracked(), neg_text.get_untracked());
                    if pt.trim().is_empty() {
                        return Err(
                            "The first set (“towards”) is empty: type at least one line, one context per line.".into(),
                        );
                    }
                    if nt.trim().is_empty() {
                        return Err(
                            "The second set (“away from”) is empty: type at least one line, one context per line."
                                .into(),
                        );
                    }
                    check_chars(&m, &pt, "the first set")?;
                    check_chars(&m, &nt, "the second set")?;
                    let pc = contexts_from_lines(&m.vocab, &pt, "first").map_err(|e| e.to_string())?;
                    let nc = contexts_from_lines(&m.vocab, &nt, "second").map_err(|e| e.to_string())?;
                    Ok(Some((pc, nc)))
                }
                Source::Probe(_) => Ok(None),
            }
        })();
        let contexts = match checked {
            Ok(c) => c,
            Err(e) => {
                error.set(Some(format!("{e} The last result stays on screen.")));
                return;
            }
        };
        error.set(None);
        // Typed sets travel in the link unless they are too long for one (then the link keeps the pair's).
        let typed = |t: String, dflt: &[&str]| (t != dflt.join("\n") && t.chars().count() <= MAX_SET).then_some(t);
        let state = SteerState {
            source: src,
            layer: l,
            coef: c,
            seed: s,
            prompt: p.clone(),
            positive: typed(pos_text.get_untracked(), PAIRS[0].positive),
            negative: typed(neg_text.get_untracked(), PAIRS[0].negative),
        };
        replace_hash_soon(&section_hash_with("9.3.2", &state.to_query()));
        jobs.spawn("finding the direction", move |job| async move {
            if !job.pause("finding the direction", 0.0).await {
                return;
            }
            let t0 = now_ms();
            let hook = resid_hook(l);
            let vector: Result<Option<(SteeringVector, String)>, String> = match (src, contexts) {
                (Source::Probe(b), _) => {
                    match train_probes(&m, &Concept::Builtin(b), &[l], false, &job).await {
                        Ok(Some(r)) => {
                            let lp = &r.layers[0];
                            let note = format!(
                                "v = the direction of a probe for “{}” at layer {} (held-out accuracy {:.1}%), scaled to the gap between the classes",
                                b.name(),
                                layer_name(l),
                                100.0 * lp.test_accuracy
                            );
                            Ok(Some((steering_from_probe(lp), note)))
                        }
                        Ok(None) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
                (src, Some((pc, nc))) => {
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
                    // One context per step, however many were typed, so Cancel stays within reach.
                    match ContextMeans::new(&m.model, &pc, &nc, hook) {
                        Err(e) => Err(e.to_string()),
                        Ok(mut means) => {
                            let run = job
                                .sliced("finding the direction", || {
                                    let done = means.step(&m.model, 1)?;
                                    Ok::<_, LensError>((!done).then(|| 0.5 * means.progress()))
                                })
                                .await;
                            match run {
                                Ok(true) => means.finish().map(|v| Some((v, note))).map_err(|e| e.to_string()),
                                Ok(false) => Ok(None),
                                Err(e) => Err(e.to_string()),
                            }
                        }
                    }
                }
                (_, None) => Err("no contexts".into()),
            };
            if !job.alive() {
                return;
            }
            let (vector, note) = match vector {
                Ok(Some(v)) => v,
                Ok(None) => return,
                Err(e) => {
                    error.set(Some(format!("{}. The last result stays on screen.", sentence(&e))));
                    return;
                }
            };
            let ids = match m.vocab.encode(&p) {
                Ok(ids) => ids,
                Err(e) => {
                    error.set(Some(sentence(&e.to_string())));
                    return;
                }
            };
            let settings = SampleSettings { temperature: TEMPERATURE, top_k: 0, seed: s };
            let gens = vector.intervention(c).and_then(|iv| {
                Ok((Generator::new(&m.model, &ids, &settings, &[])?, Generator::new(&m.model, &ids, &settings, &[iv])?))
            });
            let (mut plain, mut steered) = match gens {
                Ok(g) => g,
                Err(e) => {
                    error.set(Some(sentence(&e.to_string())));
                    return;
                }
            };
            // The direction took the first half of the bar.
            let base = 0.5;
            live.set(Some((Side::default(), Side::default())));
            while plain.out.tokens.len() < LENGTH {
                let stepped = slice(|| {
                    plain.step(&m.model, 2)?;
                    steered.step(&m.model, 2)?;
                    Ok::<_, LensError>(plain.out.tokens.len() >= LENGTH)
                });
                if let Err(e) = stepped {
                    error.set(Some(sentence(&e.to_string())));
                    return;
                }
                if !job.alive() {
                    return;
                }
                live.set(Some((
                    Side { text: m.vocab.decode(&plain.out.tokens) },
                    Side { text: m.vocab.decode(&steered.out.tokens) },
                )));
                let done = plain.out.tokens.len() as f32 / LENGTH as f32;
                if !job.pause("generating", base + (1.0 - base) * done).await {
                    return;
                }
            }
            live.set(None);
            outcome.set(Some(Outcome {
                plain: m.vocab.decode(&plain.out.tokens[..LENGTH]),
                steered: m.vocab.decode(&steered.out.tokens[..LENGTH]),
                vector_note: note,
                norm: vector.norm(),
                coef: c,
                layer: l,
                measure: measure_of(src),
                ms: now_ms() - t0,
            }));
            rev.update(|r| *r += 1);
        });
    };
    let cancel = move || {
        live.set(None);
        error.set(Some("Cancelled. The last result stays on screen.".into()));
    };

    // The default comparison runs once the model is there, so the page opens on a result. Changing the
    // direction, the layer or the coefficient reruns at once (a run in progress is dropped).
    start_when_ready(move || loaded().is_some(), start);

    let set_source = move |v: String| {
        let src = if let Some(i) =
            v.strip_prefix("pair").and_then(|i| i.parse::<usize>().ok()).filter(|&i| i < PAIRS.len())
        {
            layer.set(PAIRS[i].layer);
            coef.set(PAIRS[i].coefficient);
            Source::Pair(i)
        } else if v == "custom" {
            Source::Custom
        } else if let Some(c) = v.strip_prefix("probe-").and_then(BuiltinConcept::from_key) {
            if !matches!(source.get_untracked(), Source::Probe(_)) {
                layer.set(2);
                coef.set(1.0);
            }
            Source::Probe(c)
        } else {
            return;
        };
        source.set(src);
    };
    let source_value = move || match source.get() {
        Source::Pair(i) => format!("pair{i}"),
        Source::Custom => "custom".into(),
        Source::Probe(c) => format!("probe-{}", BuiltinConcept::key(c)),
    };
    let pair_options = PAIRS
        .iter()
        .enumerate()
        .map(|(i, p)| view! { <option value=format!("pair{i}")>{format!("pair: {}", p.name)}</option> })
        .collect_view();
    let probe_options = BuiltinConcept::ALL
        .into_iter()
        .map(|c| view! { <option value=format!("probe-{}", BuiltinConcept::key(c))>{format!("probe direction: {}", c.name())}</option> })
        .collect_view();
    let layer_options =
        (0..=MAX_LAYER).map(|l| view! { <option value=l.to_string()>{layer_name(l)}</option> }).collect_view();

    let progress = progress_bar(jobs, "steer", cancel);

    let sets_view = move || {
        let src = source.get();
        match src {
            Source::Custom => view! {
                <div class="steer-sets">
                    <label>"Towards (one context per line)"
                        <textarea rows="5" spellcheck="false" data-testid="set-pos" prop:value=move || pos_text.get()
                            on:input=move |ev| pos_text.set(event_target_value(&ev))></textarea></label>
                    <label>"Away from (one context per line)"
                        <textarea rows="5" spellcheck="false" data-testid="set-neg" prop:value=move || neg_text.get()
                            on:input=move |ev| neg_text.set(event_target_value(&ev))></textarea></label>
                </div>
            }
            .into_any(),
            Source::Pair(i) => {
                let p = PAIRS[i];
                view! {
                    <details class="steer-pair">
                        <summary>{format!("The pair's contexts ({} each way)", p.positive.len())}</summary>
                        <div class="steer-sets">
                            <div><strong>"Towards"</strong><ul>{p.positive.iter().map(|s| view! { <li>{*s}</li> }).collect_view()}</ul></div>
                            <div><strong>"Away from"</strong><ul>{p.negative.iter().map(|s| view! { <li>{*s}</li> }).collect_view()}</ul></div>
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
    };

    // The end of the prompt, greyed, before each continuation, so the text reads on from where it starts.
    let tail = move || {
        let p = prompt.get_untracked();
        let n = p.chars().count();
        let t: String = p.chars().skip(n.saturating_sub(40)).collect();
        if n > 40 {
            format!("…{t}")
        } else {
            t
        }
    };
    let side_view = move |title: String, text: String, measure: usize, side: &'static str, done: bool| {
        let (rate_s, rate) = rate_text(measure, &text);
        view! {
            <div class="steer-side" data-testid="steer-out" data-side=side data-rate=format!("{rate:.4}") data-done=done.to_string()>
                <h4>{title}</h4>
                <p class="gen-text"><span class="prompt-tail">{tail()}</span><span data-testid=format!("steer-text-{side}") class="steer-gen">{text}</span></p>
                <p class="muted small">{rate_s}</p>
            </div>
        }
    };

    let outputs = move || {
        if let Some((a, b)) = live.get() {
            let m = measure_of(source.get_untracked());
            return Some(
                view! {
                    <div class="steer-cols">
                        {side_view("Without steering".into(), a.text, m, "plain", false)}
                        {side_view(format!("With steering: {:+.2} × v", coef.get_untracked()), b.text, m, "steered", false)}
                    </div>
                }
                .into_any(),
            );
        }
        let o = outcome.get()?;
        let ratio = {
            let (a, b) = (PAIRS[o.measure].rate(&o.plain), PAIRS[o.measure].rate(&o.steered));
            if a > 0.0 {
                format!("{:.1}× the unsteered rate of {}", b / a, PAIRS[o.measure].measure_name)
            } else {
                format!("unsteered text has no {}", PAIRS[o.measure].measure_name)
            }
        };
        Some(
            view! {
                <div>
                    <div class="steer-cols" data-testid="steer-result" data-ms=format!("{:.0}", o.ms)>
                        {side_view("Without steering".into(), o.plain.clone(), o.measure, "plain", true)}
                        {side_view(format!("With steering: {:+.2} × v", o.coef), o.steered.clone(), o.measure, "steered", true)}
                    </div>
                    <p class="small" data-testid="steer-note">{format!("{}; |v| = {:.1}, so each position gets a vector of length {:.1} added. Same prompt, same seed: the steered text has {ratio}.", o.vector_note, o.norm, (o.coef * o.norm).abs())}</p>
                </div>
            }
            .into_any(),
        )
    };

    view! {
        <LabFrame notes=notes>
        <div class="steer-lab" data-testid="steer-lab" class:unloaded=move || loaded().is_none()>
            {model.status()}
            <div class="lab-body">
                <section class="panel">
                    <h3>"Steering vector"</h3>
                    <div class="gen-controls">
                        <label>"direction "
                            <select data-testid="steer-source" prop:value=source_value on:change=move |ev| { set_source(event_target_value(&ev)); start(); }>
                                {pair_options}
                                <option value="custom">"your own two sets of contexts"</option>
                                {probe_options}
                            </select>
                        </label>
                        <label>"layer "
                            <select data-testid="steer-layer" prop:value=move || layer.get().to_string()
                                on:change=move |ev| if let Ok(l) = event_target_value(&ev).parse() { layer.set(l); start(); }>{layer_options}</select>
                        </label>
                    </div>
                    {sets_view}
                    <div class="gen-controls steer-coef">
                        <label class="coef-label" title="Negative pushes away from the first set, 0 changes nothing.">"coefficient "
                            <input type="range" min=(-COEF_MAX).to_string() max=COEF_MAX.to_string() step="0.05" data-testid="steer-coef"
                                prop:value=move || format!("{:.2}", coef.get())
                                on:input=move |ev| coef.set(event_target_value(&ev).parse().unwrap_or(0.0))
                                on:change=move |_| start() />
                            <output data-testid="steer-coef-value">{move || format!(" {:+.2}", coef.get())}</output>
                        </label>
                    </div>
                    <label class="input-label" for="steer-prompt">"Prompt"</label>
                    <textarea id="steer-prompt" rows="2" spellcheck="false" data-testid="steer-prompt"
                        prop:value=move || prompt.get() on:input=move |ev| prompt.set(event_target_value(&ev))></textarea>
                    <div class="gen-controls">
                        <label>"seed " <input type="number" min="0" class="num-input" data-testid="steer-seed"
                            prop:value=move || seed.get().to_string()
                            on:change=move |ev| seed.set(event_target_value(&ev).parse().unwrap_or(DEFAULT_SEED)) /></label>
                        <button class="primary" data-testid="steer-run" disabled=move || jobs.busy() || loaded().is_none()
                            on:click=move |_| start()>{format!("Generate {LENGTH} characters, with and without")}</button>
                        <span class="muted small">{format!("temperature {TEMPERATURE}")}</span>
                    </div>
                    {progress}
                    {move || error.get().map(|e| view! { <p class="input-error" data-testid="input-error" role="status">{e}</p> })}
                    <p class="muted small" data-testid="lab-status" data-rev=move || rev.get()>
                        {move || outcome.get().map(|o| format!("Last run: both texts in {:.1} s.", o.ms / 1000.0))}
                    </p>
                </section>
                <section class="panel" data-testid="steer-panel">
                    <h3>"Same prompt, same seed"</h3>
                    {outputs}
                </section>
            </div>
        </div>
        </LabFrame>
    }
}
