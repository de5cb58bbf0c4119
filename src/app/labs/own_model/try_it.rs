//! "Try it" on an opened model: a text, encoded by the model's own tokenizer in its worker, read by the model a
//! block at a time, and shown as its next-token guesses and its logit lens (a few rows decoded per slice: a row
//! of GPT-2 small's unembedding is 39M multiply-adds). Every change of the text is a new job that replaces the
//! one in flight; a refused text keeps the last grid.
use std::sync::Arc;

use leptos::prelude::*;

use super::features::SaeIndex;
use super::sae::{encode_rows, SaeLatents, SaeOpen};
use super::{fmt_prob, show_piece, ScoreKind, TryView, TRY_TEXT};
use crate::app::core::browser::{now_ms, yield_to_browser};
use crate::app::core::charts::heat_style;
use crate::app::core::export::TableExport;
use crate::app::core::frame::progress_bar;
use crate::app::core::jobs::{Job, Jobs};
use crate::app::core::opened::{KeptWith, OwnInput, OwnModel, ReadText};
use crate::lens::gpt2::Hook;
use crate::lens::methods::induction::head_scores;
use crate::lens::methods::logit_lens::{resid_label, LogitLens};
use crate::lens::methods::sae::LmSae;

/// Reads `text` (`OwnModel::read_text`) with every pattern and the SAE's hook recorded and every layer decoded:
/// the view, or the message to show instead. `None` if the job was replaced or cancelled.
async fn run(own: &OwnModel, text: String, sae: Option<Arc<LmSae>>, job: &Job) -> Option<Result<TryView, String>> {
    let started = now_ms();
    let model = &own.model;
    let n_layer = model.cfg.n_layer;
    let also: Vec<Hook> = (0..n_layer).map(Hook::Pattern).chain(sae.as_ref().map(|s| s.hook)).collect();
    let read = match own.read_text(text, &also, 0..n_layer + 1, job).await? {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    // [layer][head][q][k], and each head's detector scores.
    let patterns = match read.patterns(n_layer) {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    let ReadText { input: OwnInput { ids, pieces: inputs, bos }, run, cells } = read;
    let scores = patterns.iter().map(|layer| layer.iter().map(|p| head_scores(p, &ids)).collect()).collect();
    // The SAE's latents at every position, from its hook's activations in this same pass.
    let sae = match &sae {
        Some(s) => {
            let x = run.cache().get(s.hook).map(|t| t.flatten_all().and_then(|t| t.to_vec1::<f32>()));
            let x = match x {
                Some(Ok(x)) => x,
                _ => return Some(Err(format!("the SAE's hook {} was not recorded", s.hook))),
            };
            match encode_rows(s, &x, job).await? {
                Ok(acts) => Some((s.hook.to_string(), acts)),
                Err(e) => return Some(Err(e)),
            }
        }
        None => None,
    };
    let hooks = crate::lens::methods::logit_lens::resid_hooks(n_layer);
    let lens = LogitLens { tokens: ids, hooks, cells };
    Some(Ok(TryView { lens, inputs, vocab: own.pieces.clone(), bos, patterns, sae, scores, ms: now_ms() - started }))
}

/// Rows of the logit lens grid built per task.
const LENS_ROWS_PER_TASK: usize = 4;

thread_local! {
    /// The SAE opened on the model, kept for the tab as the model is, so that it is still there back on
    /// `#/open`.
    static KEPT_SAE: KeptWith<Arc<LmSae>> = const { KeptWith::new() };
}

#[component]
pub fn TryIt(own: Arc<OwnModel>) -> impl IntoView {
    let jobs = Jobs::new();
    let text = RwSignal::new(TRY_TEXT.to_string());
    let last_good: RwSignal<Option<Arc<TryView>>> = RwSignal::new(None);
    // The heads and the SAE's latents follow the grid a frame later: GPT-2 small's 144 heads and its grid laid
    // out at once held the thread for over 50 ms.
    let heads_shown: RwSignal<Option<Arc<TryView>>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    // The head shown and what the head table is coloured by, kept from run to run (the induction head at first).
    let kind = RwSignal::new(ScoreKind::Induction);
    let head: RwSignal<Option<(usize, usize)>> = RwSignal::new(None);
    // An SAE opened on the model: the text is read again with it. It stays for the tab, as the model does.
    let sae: RwSignal<Option<Arc<LmSae>>> = RwSignal::new(KEPT_SAE.with(|k| k.get(&own)));
    let keeper = own.clone();
    Effect::new(move |_| {
        let s = sae.get();
        KEPT_SAE.with(|k| k.set(&keeper, s));
    });
    let name = own.name.clone();
    let cfg = own.model.cfg.clone();
    let own = StoredValue::new(own);
    Effect::new(move |_| {
        let t = text.get();
        let s = sae.get();
        let own = own.get_value();
        jobs.spawn("encoding the text", move |job| async move {
            if let Some(result) = run(&own, t, s, &job).await {
                // The result is drawn in a task of its own, apart from the last piece of work.
                if !job.frame().await {
                    return;
                }
                match result {
                    Ok(v) => {
                        if head.get_untracked().is_none() {
                            head.set(Some(v.best_head(ScoreKind::Induction)));
                        }
                        let v = Arc::new(v);
                        last_good.set(Some(v.clone()));
                        error.set(None);
                        if job.frame().await {
                            heads_shown.set(Some(v));
                        }
                    }
                    Err(e) => error.set(Some(e)),
                }
            }
        });
    });
    view! {
        <section class="panel try-it" data-testid="try-it">
            <h3>"Try it on " {name}</h3>
            <label class="block-label" for="own-text">"Text for the model to read"</label>
            <textarea id="own-text" data-testid="own-text" rows="3" spellcheck="false" prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))></textarea>
            {progress_bar(jobs, "try", || {})}
            <div aria-live="polite">
                {move || error.get().map(|e| view! { <p class="input-error" data-testid="own-error" role="alert">{e}</p> })}
            </div>
            {move || last_good.get().map(|v| view! { <TryResult v /> })}
            {move || heads_shown.get().map(|v| view! { <Heads v=v.clone() kind head /> <SaeLatents v /> })}
            <SaeOpen sae cfg />
            {move || sae.get().map(|s| view! { <SaeIndex own=own.get_value() sae=s /> })}
        </section>
    }
}

#[component]
fn TryResult(v: Arc<TryView>) -> impl IntoView {
    let tokens = v
        .lens
        .tokens
        .iter()
        .zip(&v.inputs)
        .enumerate()
        .map(|(pos, (&id, piece))| {
            let class = if pos == 0 && v.bos { "token bos" } else { "token" };
            view! { <span class=class data-testid="own-token" data-id=id title=format!("id {id}: {piece:?}")>{show_piece(piece)}</span> }
        })
        .collect_view();
    let guesses = v
        .next_guesses()
        .into_iter()
        .map(|(piece, p)| {
            view! {
                <div class="prob-row" data-testid="own-guess" data-token=piece.clone() data-p=format!("{p:.4}")>
                    <span class="prob-label lens-mono">{format!("{piece:?}")}</span>
                    <span class="prob-bar"><span style=format!("width: {:.1}%", 100.0 * p)></span></span>
                    <span class="prob-value">{fmt_prob(p)}</span>
                </div>
            }
        })
        .collect_view();
    let header =
        v.inputs.iter().map(|s| view! { <th class="lens-input lens-mono">{show_piece(s)}</th> }).collect_view();
    let layers = v.lens.n_layers();
    // The rows come `LENS_ROWS_PER_TASK` at a time, each batch in a task of its own: GPT-2 small's 13 x 32 cells
    // built and laid out at once held the thread for ~60 ms.
    let shown = RwSignal::new(LENS_ROWS_PER_TASK.min(layers));
    leptos::task::spawn_local(async move {
        while shown.try_get_untracked().is_some_and(|s| s < layers) {
            yield_to_browser().await;
            shown.try_update(|s| *s = (*s + LENS_ROWS_PER_TASK).min(layers));
        }
    });
    let row = {
        let v = v.clone();
        move |l: usize| {
            let cells = (0..v.inputs.len())
                .map(|p| {
                    let cell = &v.lens.cells[l][p];
                    let (id, prob) = cell.top[0];
                    let correct = cell.target_rank.map(|r| r == 0);
                    view! {
                        <td class=if correct == Some(true) { "lens-cell correct" } else { "lens-cell" } data-testid="own-lens-cell"
                            data-layer=l data-pos=p data-p=format!("{prob:.4}") style=heat_style(prob) title=v.cell_title(l, p)>
                            {show_piece(&v.piece(id))}
                        </td>
                    }
                })
                .collect_view();
            view! { <tr><th class="lens-layer" scope="row">{resid_label(l)}</th>{cells}</tr> }
        }
    };
    let each = move || (0..layers).rev().take(shown.get()).collect::<Vec<_>>();
    let body = view! { <For each=each key=|l| *l children=row /> };
    view! {
        <div data-testid="own-result" data-tokens=v.lens.tokens.len() data-ms=format!("{:.0}", v.ms)>
            <h4>"The tokens"</h4>
            <div class="token-strip" data-testid="own-tokens">{tokens}</div>
            <h4>"Its guesses for the next token"</h4>
            <div class="probs own-next" data-testid="own-next">{guesses}</div>
            <h4>"The logit lens: each layer's top guess"</h4>
            <p class="muted small">"Rows are layers, from the output down; columns are positions. Brighter is more likely; a framed cell guessed the true next token. Hover a cell for its top five."</p>
            <div class="lens-scroll">
                <table class="lens-grid" data-testid="own-lens" data-layers=layers data-positions=v.inputs.len()
                    aria-label="logit lens of the opened model: the top guess at each layer (rows) and position (columns)">
                    <thead><tr><th class="lens-layer">"input"</th>{header}</tr></thead>
                    <tbody>{body}</tbody>
                </table>
                <TableExport image=true what="logit lens of the opened model" />
            </div>
        </div>
    }
}

/// The heads coloured by a detector score, and the chosen head's pattern: the attention lab's view of the
/// opened model.
#[component]
fn Heads(v: Arc<TryView>, kind: RwSignal<ScoreKind>, head: RwSignal<Option<(usize, usize)>>) -> impl IntoView {
    let n_heads = v.scores.first().map_or(0, Vec::len);
    let header = (0..n_heads).map(|h| view! { <th scope="col">{format!("H{h}")}</th> }).collect_view();
    let scores = v.scores.clone();
    let rows = move || {
        let k = kind.get();
        let chosen = head.get();
        scores
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                let cells = layer
                    .iter()
                    .enumerate()
                    .map(|(h, s)| {
                        let score = k.of(s);
                        view! {
                            <td class="own-head-cell" data-testid="own-head" data-layer=l data-head=h data-score=format!("{score:.4}")
                                data-selected=if chosen == Some((l, h)) { "true" } else { "false" }
                                style=heat_style(score) title=format!("L{l}H{h}: {} {score:.2}", k.label())>
                                <button class="head-pick" on:click=move |_| head.set(Some((l, h)))
                                    aria-pressed=if chosen == Some((l, h)) { "true" } else { "false" }
                                    aria-label=format!("{score:.2}: show head L{l}H{h}")>{format!("{score:.2}")}</button>
                            </td>
                        }
                    })
                    .collect_view();
                view! { <tr><th scope="row">{format!("L{l}")}</th>{cells}</tr> }
            })
            .collect_view()
    };
    let on_kind = move |ev: leptos::ev::Event| {
        let key = event_target_value(&ev);
        if let Some(k) = ScoreKind::ALL.into_iter().find(|k| k.key() == key) {
            kind.set(k);
        }
    };
    // The chosen head's pattern (up to 64 x 64 cells) follows the table in a task of its own.
    let ready = RwSignal::new(false);
    leptos::task::spawn_local(async move {
        yield_to_browser().await;
        ready.try_set(true);
    });
    let pattern = {
        let v = v.clone();
        move || {
            if !ready.get() {
                return None;
            }
            let (l, h) = head.get()?;
            let p = v.patterns.get(l)?.get(h)?;
            let keys = v
                .inputs
                .iter()
                .map(|s| view! { <th scope="col" class="pattern-key lens-mono">{show_piece(s)}</th> })
                .collect_view();
            let rows = p
                .iter()
                .enumerate()
                .map(|(q, row)| {
                    let cells = row
                        .iter()
                        .enumerate()
                        .map(|(k, &w)| {
                            if k > q {
                                view! { <td class="pattern-cell masked"></td> }.into_any()
                            } else {
                                let title = format!(
                                    "{} → {}: {:.1}%",
                                    show_piece(&v.inputs[q]),
                                    show_piece(&v.inputs[k]),
                                    100.0 * w
                                );
                                view! { <td class="pattern-cell" data-w=format!("{w:.5}") style=heat_style(w) title=title></td> }.into_any()
                            }
                        })
                        .collect_view();
                    view! { <tr><th scope="row" class="lens-mono">{show_piece(&v.inputs[q])}</th>{cells}</tr> }
                })
                .collect_view();
            Some(view! {
                <h4>{format!("Head L{l}H{h}: where each token (row) looks (columns)")}</h4>
                <div class="lens-scroll">
                    <table class="pattern-table" data-testid="own-pattern" data-layer=l data-head=h
                        aria-label=format!("attention pattern of head L{l}H{h}: rows are the tokens attending, columns the tokens attended to")>
                        <thead><tr><th></th>{keys}</tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                    <TableExport image=true what=format!("attention pattern L{l}H{h}") />
                </div>
            })
        }
    };
    view! {
        <div class="own-heads" data-testid="own-attention">
            <h4>"Attention: what each head does on this text"</h4>
            <label class="small">"Colour the heads by the "
                <select data-testid="own-score-kind" on:change=on_kind>
                    {ScoreKind::ALL.map(|k| view! { <option value=k.key() selected=move || kind.get() == k>{k.label()}</option> })}
                </select>
            </label>
            <p class="muted small">"A previous-token head attends from each token to the one before it; an induction head, in a repeated text, to the token after the earlier copy of the current one. Type a sentence twice to find them. Pick a head to see its pattern."</p>
            <div class="lens-scroll">
                <table class="head-table" data-testid="own-heads" aria-label="heads: layers (rows) by heads (columns), coloured by the chosen score">
                    <thead><tr><th></th>{header}</tr></thead>
                    <tbody>{rows}</tbody>
                </table>
                <TableExport what="head scores" />
            </div>
            {pattern}
        </div>
    }
}
