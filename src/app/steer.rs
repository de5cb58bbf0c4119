//! The steering lab (9.3.2): a steering vector from the difference of mean activations of two sets of
//! contexts (a built-in pair or two sets the student types) or from a trained probe's direction, added at one
//! residual layer times a coefficient while the Moby-Dick model generates. The same prompt and seed are
//! generated with and without the vector side by side, so the vector is the only difference.
//!
//! Both texts grow a few characters per slice (`lens::gpt2::generate::Generator`), with a yield to the browser
//! between slices, so the page shows them as they come and Cancel stops at once.
use std::sync::Arc;

use leptos::prelude::*;

use super::fetch::{load_char_model, LoadedChar};
use super::probe::{concept_from_key, concept_key, sentence, train_probes};
use super::run::{model_status, run_progress, slice, start_when_ready, yield_to_browser, Runs};
use super::shell::replace_hash_soon;
use crate::lens::gpt2::generate::{Generator, SampleSettings};
use crate::lens::gpt2::text::quoted_chars;
use crate::lens::methods::logit_lens::resid_hook;
use crate::lens::methods::probe::{BuiltinConcept, Concept};
use crate::lens::methods::steering::{
    contexts_from_lines, steering_from_contexts, steering_from_probe, SteeringVector, PAIRS,
};
use crate::lens::LensError;
use crate::routes::section_hash_with;

/// Characters generated on each side.
const LENGTH: usize = 400;
const DEFAULT_PROMPT: &str = "It was a clear steel-blue day. The firmaments of air and sea were hardly separable";
const DEFAULT_SEED: u64 = 11;
const TEMPERATURE: f32 = 0.8;
/// The slider's range: far enough either way to break the text.
const COEF_MAX: f32 = 2.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Pair(usize),
    Custom,
    Probe(BuiltinConcept),
}

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
    let model: RwSignal<Option<Result<Arc<LoadedChar>, String>>> = RwSignal::new(None);
    leptos::task::spawn_local(async move { model.set(Some(load_char_model("moby").await)) });

    // URL state: src=pair&pair=0 | src=custom | src=probe&concept=...; layer; c (coefficient); seed.
    let q = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let mut problems: Vec<String> = Vec::new();
    let src0 = match q("src").as_deref() {
        None | Some("pair") => match q("pair").map(|p| p.parse::<usize>().ok().filter(|&i| i < PAIRS.len())) {
            None => Source::Pair(0),
            Some(Some(i)) => Source::Pair(i),
            Some(None) => {
                problems.push("the pair number is not one of the built-in pairs".into());
                Source::Pair(0)
            }
        },
        Some("custom") => Source::Custom,
        Some("probe") => match q("concept") {
            None => Source::Probe(BuiltinConcept::CapitalNext),
            Some(k) => concept_from_key(&k).map(Source::Probe).unwrap_or_else(|| {
                problems.push(format!("“{k}” is not a built-in concept"));
                Source::Probe(BuiltinConcept::CapitalNext)
            }),
        },
        Some(other) => {
            problems.push(format!("“{other}” is not a source (pair, custom or probe)"));
            Source::Pair(0)
        }
    };
    let (def_layer, def_coef) = match src0 {
        Source::Pair(i) => (PAIRS[i].layer, PAIRS[i].coefficient),
        Source::Custom => (PAIRS[0].layer, PAIRS[0].coefficient),
        Source::Probe(_) => (2, 1.0),
    };
    let layer0 = match q("layer") {
        None => def_layer,
        Some(v) => v.parse::<usize>().ok().filter(|&l| l <= 4).unwrap_or_else(|| {
            problems.push(format!("layer “{v}” is not between 0 and 4"));
            def_layer
        }),
    };
    let coef0 = match q("c") {
        None => def_coef,
        Some(v) => v.parse::<f32>().ok().filter(|c| c.is_finite() && c.abs() <= COEF_MAX).unwrap_or_else(|| {
            problems.push(format!("coefficient “{v}” is not a number between −{COEF_MAX} and {COEF_MAX}"));
            def_coef
        }),
    };
    let seed0 = match q("seed") {
        None => DEFAULT_SEED,
        Some(v) => v.parse::<u64>().ok().unwrap_or_else(|| {
            problems.push(format!("seed “{v}” is not a whole number"));
            DEFAULT_SEED
        }),
    };
    let url_error = RwSignal::new((!problems.is_empty()).then(|| {
        format!("The link could not be used as it is ({}), so the lab uses its defaults there.", problems.join("; "))
    }));

    let source = RwSignal::new(src0);
    let layer = RwSignal::new(layer0);
    let coef = RwSignal::new(coef0);
    let seed = RwSignal::new(seed0);
    let prompt = RwSignal::new(DEFAULT_PROMPT.to_string());
    let pos_text = RwSignal::new(PAIRS[0].positive.join("\n"));
    let neg_text = RwSignal::new(PAIRS[0].negative.join("\n"));

    let live: RwSignal<Option<(Side, Side)>> = RwSignal::new(None);
    let outcome: RwSignal<Option<Outcome>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let runs = Runs::new();
    let busy = runs.busy;
    let rev = RwSignal::new(0u32);

    let loaded = move || model.get().and_then(|r| r.ok());

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
        let checked = (|| -> Result<Option<(Vec<Vec<u32>>, Vec<Vec<u32>>)>, String> {
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
        let ticket = runs.begin("finding the direction");
        let (ls, cs, ss) = (l.to_string(), format!("{c:.2}"), s.to_string());
        let mut qs: Vec<(&str, &str)> = Vec::new();
        let pair_s;
        match src {
            Source::Pair(i) => {
                pair_s = i.to_string();
                qs.extend([("src", "pair"), ("pair", pair_s.as_str())]);
            }
            Source::Custom => qs.push(("src", "custom")),
            Source::Probe(b) => qs.extend([("src", "probe"), ("concept", concept_key(b))]),
        }
        qs.extend([("layer", ls.as_str()), ("c", cs.as_str()), ("seed", ss.as_str())]);
        replace_hash_soon(&section_hash_with("9.3.2", &qs));
        leptos::task::spawn_local(async move {
            yield_to_browser().await;
            let t0 = super::now_ms();
            let alive = move || runs.alive(ticket);
            let hook = resid_hook(l);
            let vector: Result<Option<(SteeringVector, String)>, String> = match (src, contexts) {
                (Source::Probe(b), _) => {
                    let report = |phase: &'static str, frac: f32| runs.report(ticket, phase, 0.5 * frac);
                    match train_probes(&m, &Concept::Builtin(b), &[l], false, &report).await {
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
                    steering_from_contexts(&m.model, &pc, &nc, hook)
                        .map(|v| {
                            Some((
                                v,
                                format!(
                                    "v = mean activation difference “{name}” ({} and {} contexts) at layer {}",
                                    pc.len(),
                                    nc.len(),
                                    layer_name(l)
                                ),
                            ))
                        })
                        .map_err(|e| e.to_string())
                }
                (_, None) => Err("no contexts".into()),
            };
            if !alive() {
                return;
            }
            let (vector, note) = match vector {
                Ok(Some(v)) => v,
                Ok(None) => return,
                Err(e) => {
                    runs.finish();
                    error.set(Some(format!("{}. The last result stays on screen.", sentence(&e))));
                    return;
                }
            };
            let ids = match m.vocab.encode(&p) {
                Ok(ids) => ids,
                Err(e) => {
                    runs.finish();
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
                    runs.finish();
                    error.set(Some(sentence(&e.to_string())));
                    return;
                }
            };
            let base = if matches!(src, Source::Probe(_)) { 0.5 } else { 0.0 };
            live.set(Some((Side::default(), Side::default())));
            while plain.out.tokens.len() < LENGTH {
                let stepped = slice(|| {
                    plain.step(&m.model, 2)?;
                    steered.step(&m.model, 2)?;
                    Ok::<_, LensError>(plain.out.tokens.len() >= LENGTH)
                });
                if let Err(e) = stepped {
                    runs.finish();
                    error.set(Some(sentence(&e.to_string())));
                    return;
                }
                if !alive() {
                    return;
                }
                let done = plain.out.tokens.len() as f32 / LENGTH as f32;
                runs.report(ticket, "generating", base + (1.0 - base) * done);
                live.set(Some((
                    Side { text: m.vocab.decode(&plain.out.tokens) },
                    Side { text: m.vocab.decode(&steered.out.tokens) },
                )));
                yield_to_browser().await;
                if !alive() {
                    return;
                }
            }
            runs.finish();
            live.set(None);
            outcome.set(Some(Outcome {
                plain: m.vocab.decode(&plain.out.tokens[..LENGTH]),
                steered: m.vocab.decode(&steered.out.tokens[..LENGTH]),
                vector_note: note,
                norm: vector.norm(),
                coef: c,
                layer: l,
                measure: measure_of(src),
                ms: super::now_ms() - t0,
            }));
            rev.update(|r| *r += 1);
        });
    };
    let cancel = move || {
        runs.cancel();
        live.set(None);
        error.set(Some("Cancelled. The last result stays on screen.".into()));
    };

    // The default comparison runs once the model is there, so the page opens on a result. Changing the
    // direction, the layer or the coefficient reruns at once (a run in progress is dropped).
    start_when_ready(move || loaded().is_some(), start);

    let status = model_status(model, "steering");

    let set_source = move |v: String| {
        let src = if let Some(i) =
            v.strip_prefix("pair").and_then(|i| i.parse::<usize>().ok()).filter(|&i| i < PAIRS.len())
        {
            layer.set(PAIRS[i].layer);
            coef.set(PAIRS[i].coefficient);
            Source::Pair(i)
        } else if v == "custom" {
            Source::Custom
        } else if let Some(c) = v.strip_prefix("probe-").and_then(concept_from_key) {
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
        Source::Probe(c) => format!("probe-{}", concept_key(c)),
    };
    let pair_options = PAIRS
        .iter()
        .enumerate()
        .map(|(i, p)| view! { <option value=format!("pair{i}")>{format!("pair: {}", p.name)}</option> })
        .collect_view();
    let probe_options = BuiltinConcept::ALL
        .into_iter()
        .map(|c| view! { <option value=format!("probe-{}", concept_key(c))>{format!("probe direction: {}", c.name())}</option> })
        .collect_view();
    let layer_options =
        (0..=4usize).map(|l| view! { <option value=l.to_string()>{layer_name(l)}</option> }).collect_view();

    let progress = run_progress(runs, "steer", cancel);

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
        <div class="steer-lab" data-testid="steer-lab" class:unloaded=move || loaded().is_none()>
            {status}
            {move || url_error.get().map(|e| view! { <p class="input-error" data-testid="url-error" role="status">{e}</p> })}
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
                        <button class="primary" data-testid="steer-run" disabled=move || busy.get().is_some() || loaded().is_none()
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
    }
}
