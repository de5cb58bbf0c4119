//! The language-model lab (9.2.2): the logit lens as a layer × position grid on the character-level
//! Moby-Dick model (or the word-level induction model), and sampling with temperature, top-k and a seed.
//! Bad input (empty, unknown characters or words) shows an inline message and keeps the last good grid.
use std::sync::Arc;

use leptos::prelude::*;

use super::{LanguageState, Sampling, Which, MAX_URL_TEXT};
use crate::app::core::browser::{now_ms, replace_hash_soon};
use crate::app::core::frame::{LabFrame, UrlNotes};
use crate::app::core::jobs::Jobs;
use crate::app::core::load::{load_char_model, load_model, LoadedChar, LoadedModel, Model};
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::gpt2::generate::{Generator, SampleSettings};
use crate::lens::gpt2::text::quoted_chars;
use crate::lens::gpt2::vocab::Tokenized;
use crate::lens::methods::induction::random_repeat_text;
use crate::lens::methods::logit_lens::{logit_lens, resid_label, LogitLens};

/// One cell of the grid as the view shows it.
#[derive(Clone, Debug, PartialEq)]
struct Cell {
    top: Vec<(String, f32)>,
    target_prob: Option<f32>,
    target_rank: Option<usize>,
}

/// The logit lens of one input, decoded into labels.
#[derive(Clone, Debug, PartialEq)]
struct LensView {
    which: Which,
    /// The input token at each position.
    inputs: Vec<String>,
    /// The true next token after each position (None at the last one).
    next: Vec<Option<String>>,
    /// `[layer][pos]`
    cells: Vec<Vec<Cell>>,
    note: Option<String>,
}

/// A character as a grid label: space, newline and tab made visible.
fn show_char(c: char) -> String {
    match c {
        ' ' => "␣".into(),
        '\n' => "↵".into(),
        '\t' => "⇥".into(),
        c => c.to_string(),
    }
}

fn to_view(lens: &LogitLens, which: Which, label: &dyn Fn(u32) -> String, note: Option<String>) -> LensView {
    let t = &lens.tokens;
    LensView {
        which,
        inputs: t.iter().map(|&i| label(i)).collect(),
        next: (0..t.len()).map(|p| t.get(p + 1).map(|&i| label(i))).collect(),
        cells: lens
            .cells
            .iter()
            .map(|row| {
                row.iter()
                    .map(|c| Cell {
                        top: c.top.iter().map(|&(i, p)| (label(i), p)).collect(),
                        target_prob: c.target_prob,
                        target_rank: c.target_rank,
                    })
                    .collect()
            })
            .collect(),
        note,
    }
}

/// Inline error: the message and whether a "replace unknown characters" button helps.
type InputError = (String, bool);

fn compute_moby(m: &LoadedChar, text: &str) -> Result<LensView, InputError> {
    if text.is_empty() {
        return Err(("Type some text: the grid needs at least one character.".into(), false));
    }
    let unknown = m.vocab.unknown_chars(text);
    if !unknown.is_empty() {
        return Err((format!("The model has never seen {}: replace them (quotes become the book's curly ones, the rest a space) or delete them.", quoted_chars(&unknown)), true));
    }
    let ctx = m.model.cfg.n_positions;
    let n = text.chars().count();
    let (text, note) = if n > ctx {
        let kept: String = text.chars().skip(n - ctx).collect();
        (kept, Some(format!("The model reads at most {ctx} characters: the grid shows the last {ctx} of your {n}.")))
    } else {
        (text.to_string(), None)
    };
    let tokens = m.vocab.encode(&text).map_err(|e| (e.to_string(), true))?;
    let lens = logit_lens(&m.model, &tokens, 5).map_err(|e| (e.to_string(), false))?;
    Ok(to_view(&lens, Which::Moby, &|i| show_char(m.vocab.char(i)), note))
}

fn compute_induction(m: &LoadedModel, text: &str) -> Result<LensView, InputError> {
    let tokens = match m.vocab.encode(text) {
        Tokenized::Ok(t) => t,
        Tokenized::Unknown(words) => {
            return Err((
                format!(
                    "“{}” is not in the induction model's vocabulary of {} words: use “Random repeat” or its words.",
                    words[0],
                    m.vocab.len() - 1
                ),
                false,
            ));
        }
    };
    if tokens.len() <= 1 {
        return Err(("Type a few words (or press “Random repeat”): the sequence is empty.".into(), false));
    }
    let ctx = m.model.cfg.n_positions;
    if tokens.len() > ctx {
        return Err((
            format!(
                "That is {} words, but the model reads at most {} (plus <bos>). Shorten the sequence.",
                tokens.len() - 1,
                ctx - 1
            ),
            false,
        ));
    }
    let lens = logit_lens(&m.model, &tokens, 5).map_err(|e| (e.to_string(), false))?;
    Ok(to_view(&lens, Which::Induction, &|i| m.vocab.word(i).to_string(), None))
}

/// A default prompt: about 100 characters of held-out text starting at a sentence, on one line.
fn default_prompt(held_out: &str) -> String {
    let start = held_out.find(". ").map(|i| i + 2).unwrap_or(0);
    let mut out = String::new();
    for w in held_out[start..].split_whitespace() {
        if out.chars().count() + w.chars().count() + 1 > 100 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Background for a probability: the theme's heat colour with that opacity.
fn heat_style(p: f32) -> String {
    let p = p.clamp(0.0, 1.0);
    let ink = if p > 0.55 { "color: white;" } else { "" };
    format!("background: rgba(var(--heat-rgb), {p:.3}); {ink}")
}

/// A generation: each character with its probability, and the time taken; or why there is none.
type Generated = Result<(Vec<(String, f32)>, f64), String>;

/// How many characters one press of Generate adds.
const GENERATE: usize = 200;

fn random_repeat(m: &LoadedModel, seed: u64) -> String {
    random_repeat_text(&m.vocab, m.model.cfg.n_positions, seed)
}

#[component]
pub fn LanguageLab(query: Vec<(String, String)>) -> impl IntoView {
    let (url, problems) = LanguageState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    let from_url = url.text.clone();
    let words_from_url = url.words.clone();
    let moby = Model::new("the Moby-Dick model", || load_char_model("moby"));
    // The induction model loads only once the student switches to it.
    let which = RwSignal::new(url.which);
    let wants_induction =
        Memo::new(move |before: Option<&bool>| before == Some(&true) || which.get() == Which::Induction);
    let induction = Model::new("the induction model", move || {
        let wanted = wants_induction.get();
        async move {
            if !wanted {
                futures::future::pending::<()>().await;
            }
            load_model("induction").await
        }
    });
    let moby_text = RwSignal::new(String::new());
    let ind_text = RwSignal::new(String::new());
    let last_good: RwSignal<Option<Arc<LensView>>> = RwSignal::new(None);
    let error: RwSignal<Option<InputError>> = RwSignal::new(None);
    let selected: RwSignal<Option<(usize, usize)>> = RwSignal::new(None);
    let rev = RwSignal::new(0u32);
    let last_ms = RwSignal::new(0.0f64);
    let random_seed = RwSignal::new(now_ms() as u64 | 1);

    let moby_model = move || moby.get();
    let ind_model = move || induction.get();
    let text = move || if which.get() == Which::Moby { moby_text } else { ind_text };

    Effect::new(move |_| {
        if let Some(m) = moby_model() {
            if moby_text.get_untracked().is_empty() {
                let start = match &from_url {
                    Some(t) if m.vocab.unknown_chars(t).is_empty() => t.clone(),
                    Some(t) => {
                        notes.add(format!("The link's text has characters the model has never seen ({}), so the lab starts from its default text.", quoted_chars(&m.vocab.unknown_chars(t))));
                        default_prompt(&m.held_out)
                    }
                    None => default_prompt(&m.held_out),
                };
                moby_text.set(start);
            }
        }
    });
    Effect::new(move |_| {
        if let Some(m) = ind_model() {
            if ind_text.get_untracked().is_empty() {
                let start = words_from_url.clone().unwrap_or_else(|| random_repeat(&m, 2024));
                ind_text.set(start);
            }
        }
    });

    // Recompute on every edit or model switch; a bad input keeps the last good grid. The work runs as a job in
    // two tasks (the model, then the grid's redraw), each well under 50 ms, after the keystroke's own task; a
    // newer keystroke drops an older run.
    let lens_jobs = Jobs::new();
    Effect::new(move |_| {
        let (w, t) = (which.get(), text().get());
        let (moby_m, ind_m) = (moby_model(), ind_model());
        lens_jobs.spawn("reading the layers", move |job| async move {
            if !job.pause("reading the layers", 0.0).await {
                return;
            }
            let t0 = now_ms();
            let r = match (w, moby_m, ind_m) {
                (Which::Moby, Some(m), _) => compute_moby(&m, &t),
                (Which::Induction, _, Some(m)) => compute_induction(&m, &t),
                _ => return,
            };
            let ms = now_ms() - t0;
            if !job.pause("drawing the grid", 0.5).await {
                return;
            }
            match r {
                Ok(v) => {
                    let same_shape = last_good
                        .get_untracked()
                        .map(|o| o.which == v.which && o.inputs.len() == v.inputs.len())
                        .unwrap_or(false);
                    if !same_shape {
                        selected.set(Some((v.cells.len() - 1, v.inputs.len().saturating_sub(2))));
                    }
                    last_good.set(Some(Arc::new(v)));
                    error.set(None);
                    rev.update(|r| *r += 1);
                }
                Err(e) => error.set(Some(e)),
            }
            last_ms.set(ms);
        });
    });

    let status =
        move || if which.get() == Which::Moby { moby.status().into_any() } else { induction.status().into_any() };

    let on_replace = move |_| {
        if let Some(m) = moby_model() {
            moby_text.update(|t| *t = m.vocab.replace_unknown(t, Some(' ')));
        }
    };
    let on_random = move |_| {
        if let Some(m) = ind_model() {
            random_seed.update(|s| *s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
            ind_text.set(random_repeat(&m, random_seed.get_untracked()));
        }
    };

    let grid = move || {
        let v = last_good.get()?;
        let n_layers = v.cells.len();
        let n_pos = v.inputs.len();
        let which_name = if v.which == Which::Moby { "moby" } else { "induction" };
        let header = v.inputs.iter().enumerate().map(|(p, s)| view! { <th class="lens-input" data-testid="lens-input" title=format!("position {p}")>{s.clone()}</th> }).collect_view();
        let next_row =
            v.next.iter().map(|s| view! { <td class="lens-next">{s.clone().unwrap_or_default()}</td> }).collect_view();
        // Layers from the top of the model down, so the output sits next to the "true next" row.
        let rows = (0..n_layers)
            .rev()
            .map(|l| {
                let cells = v.cells[l]
                    .iter()
                    .enumerate()
                    .map(|(p, c)| {
                        let (top1, p1) = c.top.first().cloned().unwrap_or_default();
                        let correct = v.next[p].as_ref().map(|n| *n == top1);
                        let title = format!("{} at position {p}: “{top1}” {:.0}%", resid_label(l), 100.0 * p1);
                        view! {
                            <td class="lens-cell" data-testid="lens-cell" data-layer=l data-pos=p data-top1=top1.clone()
                                data-p=format!("{p1:.4}")
                                data-correct=correct.map(|c| if c { "1" } else { "0" }).unwrap_or("")
                                class:selected=move || selected.get() == Some((l, p))
                                class:correct=correct == Some(true)
                                style=heat_style(p1) title=title
                                on:click=move |_| selected.set(Some((l, p)))>{top1.clone()}</td>
                        }
                    })
                    .collect_view();
                view! { <tr><th class="lens-layer" scope="row">{resid_label(l)}</th>{cells}</tr> }
            })
            .collect_view();
        Some(view! {
            <div class="lens-scroll">
                <table class="lens-grid" data-testid="lens-grid" data-layers=n_layers data-positions=n_pos
                    data-which=which_name>
                    <thead><tr><th class="lens-layer">"input"</th>{header}</tr></thead>
                    <tbody>
                        {rows}
                        <tr><th class="lens-layer" scope="row">"true next"</th>{next_row}</tr>
                    </tbody>
                </table>
            </div>
        })
    };

    let detail = move || {
        let v = last_good.get()?;
        let (l, p) = selected.get()?;
        let cell = v.cells.get(l)?.get(p)?.clone();
        let top = cell
            .top
            .iter()
            .map(|(s, q)| {
                view! {
                    <div class="prob-row" data-testid="top5-item" data-token=s.clone() data-p=format!("{q:.4}")>
                        <span class="prob-label lens-mono">{s.clone()}</span>
                        <span class="prob-bar"><span style=format!("width: {:.1}%", 100.0 * q)></span></span>
                        <span class="prob-value">{format!("{:.1}%", 100.0 * q)}</span>
                    </div>
                }
            })
            .collect_view();
        let target = v.next.get(p).cloned().flatten();
        let across = target.clone().map(|t| {
            let bars = (0..v.cells.len())
                .map(|layer| {
                    let c = &v.cells[layer][p];
                    let q = c.target_prob.unwrap_or(0.0);
                    let rank = c.target_rank.map(|r| format!(" (rank {})", r + 1)).unwrap_or_default();
                    view! {
                        <div class="prob-row" class:best=layer == l data-testid="target-prob" data-layer=layer data-p=format!("{q:.4}")>
                            <span class="prob-label">{resid_label(layer)}</span>
                            <span class="prob-bar"><span style=format!("width: {:.1}%", 100.0 * q)></span></span>
                            <span class="prob-value">{format!("{:.1}%{rank}", 100.0 * q)}</span>
                        </div>
                    }
                })
                .collect_view();
            view! {
                <div>
                    <h4>{format!("Probability of the true next token “{t}”, layer by layer")}</h4>
                    {bars}
                </div>
            }
            .into_any()
        });
        Some(view! {
            <section class="panel lens-detail" data-testid="lens-detail">
                <h3>{format!("{} · position {p} (input “{}”)", resid_label(l), v.inputs[p])}</h3>
                <div class="lens-detail-cols">
                    <div data-testid="top5"><h4>"Top 5 guesses read at this layer"</h4>{top}</div>
                    {across.unwrap_or_else(|| view! { <div><p class="muted">"This is the last position: there is no true next token to score."</p></div> }.into_any())}
                </div>
            </section>
        })
    };

    // Generation (Moby-Dick model only), a few characters per slice so the page stays responsive.
    let temperature = RwSignal::new(url.sampling.temperature);
    let top_k = RwSignal::new(url.sampling.top_k);
    let seed = RwSignal::new(url.sampling.seed);
    let gen_jobs = Jobs::new();
    let generated: RwSignal<Option<Generated>> = RwSignal::new(None);
    let on_generate = move |_| {
        let Some(m) = moby_model() else { return };
        let t = moby_text.get_untracked();
        let s = SampleSettings {
            temperature: temperature.get_untracked(),
            top_k: top_k.get_untracked(),
            seed: seed.get_untracked(),
        };
        gen_jobs.spawn("generating", move |job| async move {
            let t0 = now_ms();
            let start = || -> Result<Generator, String> {
                if t.is_empty() {
                    return Err("Type a prompt first: generation continues your text.".to_string());
                }
                let ids = m.vocab.encode(&t).map_err(|e| format!("The prompt cannot be read: {e}"))?;
                Generator::new(&m.model, &ids, &s, &[]).map_err(|e| e.to_string())
            };
            let mut gen = match start() {
                Ok(g) => g,
                Err(e) => return generated.set(Some(Err(e))),
            };
            let r = job.sliced("generating", || {
                gen.step(&m.model, 4)?;
                let n = gen.out.tokens.len();
                Ok::<_, crate::lens::LensError>((n < GENERATE).then_some(n as f32 / GENERATE as f32))
            });
            match r.await {
                Ok(true) => {
                    let chars = gen.out.tokens.iter().zip(&gen.out.probs);
                    let chars = chars.map(|(&i, &p)| (m.vocab.char(i).to_string(), p)).collect();
                    generated.set(Some(Ok((chars, now_ms() - t0))));
                }
                Ok(false) => {}
                Err(e) => generated.set(Some(Err(e.to_string()))),
            }
        });
    };
    let gen_view = move || match generated.get()? {
        Err(e) => Some(view! { <p class="input-error" data-testid="gen-error" role="status">{e}</p> }.into_any()),
        Ok((chars, ms)) => {
            let n = chars.len();
            let spans = chars
                .into_iter()
                .map(|(c, p)| {
                    let title = format!("{} · the model gave it {:.1}%", show_char(c.chars().next().unwrap_or(' ')), 100.0 * p);
                    let low = p < 0.1;
                    view! { <span class="gen-char" class:low=low data-testid="gen-char" data-p=format!("{p:.4}") title=title>{c}</span> }
                })
                .collect_view();
            Some(view! {
                <div>
                    <p class="gen-text" data-testid="gen-text">{spans}</p>
                    <p class="muted small" data-testid="gen-status">{format!("{n} characters in {ms:.0} ms. Hover a character for its probability; underlined ones had less than 10%.")}</p>
                </div>
            }
            .into_any())
        }
    };

    // The URL follows every control.
    Effect::new(move |_| {
        let text_of = |t: String, ok: bool| (ok && !t.is_empty() && t.chars().count() <= MAX_URL_TEXT).then_some(t);
        let state = LanguageState {
            which: which.get(),
            text: text_of(moby_text.get(), moby_model().is_some()),
            words: text_of(ind_text.get(), ind_model().is_some()),
            sampling: Sampling { temperature: temperature.get(), top_k: top_k.get(), seed: seed.get() },
        };
        if moby_model().is_some() || ind_model().is_some() {
            replace_hash_soon(&section_hash_with("9.2.2", &state.to_query()));
        }
    });

    let loaded = move || if which.get() == Which::Moby { moby_model().is_some() } else { ind_model().is_some() };

    view! {
        <LabFrame notes=notes>
        <div class="language-lab" data-testid="language-lab" class:unloaded=move || !loaded()>
            <div class="model-switch" role="radiogroup" aria-label="Model">
                <label><input type="radio" name="lens-model" data-testid="model-moby" prop:checked=move || which.get() == Which::Moby
                    on:change=move |_| which.set(Which::Moby) />" Moby-Dick (characters, 4 layers)"</label>
                <label><input type="radio" name="lens-model" data-testid="model-induction" prop:checked=move || which.get() == Which::Induction
                    on:change=move |_| which.set(Which::Induction) />" Induction model (words, 2 layers)"</label>
            </div>
            {status}
            <div class="lab-body">
                <section class="panel">
                    <label class="input-label" for="lens-input">{move || if which.get() == Which::Moby { "Text (up to 128 characters are read)" } else { "Words (a repeated random sequence shows induction)" }}</label>
                    <textarea id="lens-input" data-testid="lens-text" rows="3" spellcheck="false"
                        aria-invalid=move || error.get().is_some().to_string()
                        prop:value=move || text().get()
                        on:input=move |ev| text().set(event_target_value(&ev))></textarea>
                    <div class="input-actions">
                        {move || (which.get() == Which::Induction).then(|| view! { <button data-testid="random-btn" class="primary" on:click=on_random>"Random repeat"</button> })}
                        <span class="muted" data-testid="lab-status" data-rev=move || rev.get() data-ms=move || format!("{:.2}", last_ms.get())>
                            {move || format!("grid computed in {:.0} ms", last_ms.get())}
                        </span>
                    </div>
                    {move || error.get().map(|(e, replace)| view! {
                        <p class="input-error" data-testid="input-error" role="status">{e}
                            {replace.then(|| view! { " " <button data-testid="replace-btn" on:click=on_replace>"Replace them"</button> })}
                        </p>
                    })}
                    {move || last_good.get().and_then(|v| v.note.clone()).map(|n| view! { <p class="muted small" data-testid="input-note">{n}</p> })}
                </section>
                <section class="panel">
                    <h3>"Logit lens: the top guess read off each layer"</h3>
                    <p class="muted small">"Rows are layers of the residual stream, columns are positions. Each cell shows the most likely next token if the model stopped there; the deeper the colour, the surer it is. Outlined cells match the true next token. Click a cell."</p>
                    {grid}
                </section>
                {detail}
                <Show when=move || which.get() == Which::Moby>
                    <section class="panel" data-testid="gen-panel">
                        <h3>"Generate"</h3>
                        <div class="gen-controls">
                            <label>"temperature " <input type="range" min="0" max="2" step="0.1" data-testid="gen-temperature"
                                prop:value=move || temperature.get().to_string()
                                on:input=move |ev| temperature.set(event_target_value(&ev).parse().unwrap_or(0.8)) />
                                {move || format!(" {:.1}", temperature.get())}</label>
                            <label>"top-k " <input type="number" min="0" max="83" data-testid="gen-topk" class="num-input"
                                prop:value=move || top_k.get().to_string()
                                on:change=move |ev| top_k.set(event_target_value(&ev).parse().unwrap_or(0)) /></label>
                            <label>"seed " <input type="number" min="0" data-testid="gen-seed" class="num-input"
                                prop:value=move || seed.get().to_string()
                                on:change=move |ev| seed.set(event_target_value(&ev).parse().unwrap_or(1)) /></label>
                            <button class="primary" data-testid="gen-btn" on:click=on_generate disabled=move || gen_jobs.busy()>
                                {move || if gen_jobs.busy() { "Generating…" } else { "Generate 200 characters" }}</button>
                        </div>
                        <p class="muted small">"Temperature 0 always takes the most likely character; top-k 0 means no limit. The same seed gives the same text."</p>
                        {gen_view}
                    </section>
                </Show>
            </div>
        </div>
        </LabFrame>
    }
}
