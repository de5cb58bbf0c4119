//! The feature browser of an SAE opened on the opened model (issue #14, item 5): its index computed here over a
//! long text (the book's held-out passages, or one the student pastes), read by the model's own tokenizer,
//! then any latent's top contexts, how often and how hard it fires, and the next tokens it pushes up and down.
//!
//! The index is three pieces of work, each a slice at a time with a yield to the browser between slices, so
//! the page shows progress and Cancel stops at once: the hook's activations (`ActivationRecording`, half a
//! block per slice, windows of `own_text::reading_window`), the SAE's latents (`encode_rows`), and the cards
//! (`IndexBuild`, a few latents per step).
use std::sync::Arc;

use leptos::prelude::*;

use super::sae::encode_rows;
use super::{context_tokens, show_piece, strongest, INDEX_FLOPS, INDEX_LISTED, INDEX_SETTINGS, MAX_INDEX_TOKENS};
use crate::app::core::browser::now_ms;
use crate::app::core::charts::{ink_on, sequential, Axis, Bar, BarChart};
use crate::app::core::format::sentence;
use crate::app::core::frame::progress_bar;
use crate::app::core::jobs::{Job, Jobs};
use crate::app::core::load::load_book_text;
use crate::app::core::opened::OwnModel;
use crate::app::core::own_text::{check_ids, check_pasted, reading_window, tokens_for, MAX_PASTED};
use crate::lens::methods::sae::{
    logit_effect_row, promoted_and_suppressed, ActivationRecording, FeatureIndex, IndexBuild, LmSae,
};
use crate::lens::LensError;

/// A finished index.
struct Indexed {
    idx: FeatureIndex,
    /// Each indexed token's text.
    pieces: Vec<String>,
    /// Tokens in the whole text (the index reads the first `idx.positions`).
    text_tokens: usize,
    ms: f64,
}

/// Reads `text` with `own` and `sae` and builds the index. `None` if the job was stopped.
async fn build(own: &OwnModel, sae: &LmSae, text: String, job: &Job) -> Option<Result<Indexed, String>> {
    let t0 = now_ms();
    let enc = match own.tokenize(text, job, "cutting the text into tokens").await? {
        Ok(e) => e,
        Err(e) => return Some(Err(e)),
    };
    let model = &own.model;
    let cfg = &model.cfg;
    if let Err(e) = check_ids(&enc.ids, cfg.vocab_size) {
        return Some(Err(e));
    }
    let n = enc.ids.len().min(tokens_for(cfg, INDEX_FLOPS, 2000, MAX_INDEX_TOKENS));
    if n < 2 * INDEX_SETTINGS.before {
        return Some(Err(format!(
            "the text is {} tokens: give the index at least {} to find contexts in",
            enc.ids.len(),
            2 * INDEX_SETTINGS.before
        )));
    }
    let ids = &enc.ids[..n];
    let bos = own.bos();
    let window = reading_window(cfg, bos.is_some());
    let mut rec = match ActivationRecording::windowed(sae.hook, ids, window, bos) {
        Ok(r) => r,
        Err(e) => return Some(Err(e.to_string())),
    };
    let read = job.sliced("reading the text", || rec.step(model).map(|done| (!done).then(|| rec.progress()))).await;
    match read {
        Ok(true) => {}
        Ok(false) => return None,
        Err(e) => return Some(Err(e.to_string())),
    }
    let x = rec.finish();
    let acts = match encode_rows(sae, &x, job).await? {
        Ok(a) => a,
        Err(e) => return Some(Err(e)),
    };
    let mut index = IndexBuild::new(&acts, sae.d_sae, INDEX_SETTINGS);
    let built = job
        .sliced("building the index", || Ok::<_, LensError>((!index.step(&acts, 16)).then(|| index.progress())))
        .await;
    match built {
        Ok(true) => {}
        Ok(false) => return None,
        Err(e) => return Some(Err(e.to_string())),
    }
    Some(Ok(Indexed {
        idx: index.finish(),
        pieces: enc.pieces[..n].to_vec(),
        text_tokens: enc.ids.len(),
        ms: now_ms() - t0,
    }))
}

/// The index's controls: the text, the button, the progress; then the browser.
#[component]
pub fn SaeIndex(own: Arc<OwnModel>, sae: Arc<LmSae>) -> impl IntoView {
    let jobs = Jobs::new();
    let book = RwSignal::new(true);
    let mine = RwSignal::new(String::new());
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let shown: RwSignal<Option<Arc<Indexed>>> = RwSignal::new(None);
    let latent: RwSignal<usize> = RwSignal::new(0);
    let (own, sae) = (StoredValue::new(own), StoredValue::new(sae));
    let start = move || {
        let pasted = (!book.get_untracked()).then(|| mine.get_untracked());
        if let Some(Err(e)) = pasted.as_deref().map(|t| check_pasted(t, "to index")) {
            return error.set(Some(e));
        }
        let (own, sae) = (own.get_value(), sae.get_value());
        jobs.spawn("fetching the text", move |job| async move {
            let text = match pasted {
                Some(t) => t,
                None => match job.wait_for(load_book_text()).await {
                    Some(Ok(t)) => t.to_string(),
                    Some(Err(e)) => return error.set(Some(format!("{}.", sentence(&e)))),
                    None => return,
                },
            };
            match build(&own, &sae, text, &job).await {
                Some(Ok(ix)) => {
                    if !job.frame().await {
                        return;
                    }
                    latent.set(strongest(&ix.idx, 1).first().copied().unwrap_or(0));
                    shown.set(Some(Arc::new(ix)));
                    error.set(None);
                }
                Some(Err(e)) => error.set(Some(format!("{}. The last index stays.", sentence(&e)))),
                None => {}
            }
        });
    };
    let cancel = move || error.set(Some("Cancelled. The last index stays.".into()));
    view! {
        <div class="own-index" data-testid="sae-index">
            <h4>"Feature browser over a long text"</h4>
            <p class="muted small">"The SAE's index, computed here: every latent's strongest contexts, how often it fires, and which next tokens it pushes up and down. The model reads the text in its own tokens; nothing leaves this page."</p>
            <div class="own-text" role="radiogroup" aria-label="Text to index">
                <span>"Text:"</span>
                <label><input type="radio" name="index-text" data-testid="index-text-book" prop:checked=move || book.get()
                    prop:disabled=move || jobs.busy() on:change=move |_| book.set(true) />" Moby-Dick's held-out passages (60,000 characters)"</label>
                <label><input type="radio" name="index-text" data-testid="index-text-mine" prop:checked=move || !book.get()
                    prop:disabled=move || jobs.busy() on:change=move |_| book.set(false) />" a text you paste"</label>
            </div>
            {move || (!book.get()).then(|| view! {
                <textarea rows="4" spellcheck="false" data-testid="index-own-text" aria-label="Your text to index"
                    maxlength=MAX_PASTED.to_string() placeholder="Paste a long text in the model's language."
                    prop:value=move || mine.get() on:input=move |ev| mine.set(event_target_value(&ev))></textarea>
            })}
            <button class="primary" data-testid="index-build" disabled=move || jobs.busy() on:click=move |_| start()>
                "Build the index"
            </button>
            {progress_bar(jobs, "index", cancel)}
            <div aria-live="polite">
                {move || error.get().map(|e| view! { <p class="input-error" data-testid="index-error" role="alert">{e}</p> })}
            </div>
            {move || shown.get().map(|ix| view! { <IndexView ix latent own=own.get_value() sae=sae.get_value() /> })}
        </div>
    }
}

/// The index: a summary, the strongest latents to pick from (or any by number), and the chosen one's card.
#[component]
fn IndexView(ix: Arc<Indexed>, latent: RwSignal<usize>, own: Arc<OwnModel>, sae: Arc<LmSae>) -> impl IntoView {
    let d_sae = ix.idx.latents.len();
    let alive = ix.idx.latents.iter().filter(|l| l.count > 0).count();
    let summary = format!(
        "Indexed {} tokens{} in {:.1} s: {alive} of {d_sae} latents fire at least once.",
        ix.idx.positions,
        if ix.idx.positions < ix.text_tokens {
            format!(" (the first of {}: the rest would take this model too long)", ix.text_tokens)
        } else {
            String::new()
        },
        ix.ms / 1000.0
    );
    let list = strongest(&ix.idx, INDEX_LISTED)
        .into_iter()
        .map(|j| {
            let max = ix.idx.latents[j].max;
            view! {
                <li><button class="latent-pick" data-testid="index-latent" data-latent=j
                    aria-pressed=move || if latent.get() == j { "true" } else { "false" }
                    on:click=move |_| latent.set(j)>{format!("#{j} · {max:.2}")}</button></li>
            }
        })
        .collect_view();
    let last = d_sae.saturating_sub(1);
    // A number outside the SAE, or not a number, leaves the card as it is (the box shows the latent again).
    let pick = move |typed: String| match typed.trim().parse::<usize>() {
        Ok(j) if j < d_sae => latent.set(j),
        _ => latent.update(|_| {}),
    };
    let step =
        move |delta: isize| latent.update(|j| *j = (*j as isize + delta).rem_euclid(d_sae.max(1) as isize) as usize);
    let card = {
        let ix = ix.clone();
        move || view! { <LatentCardView ix=ix.clone() j=latent.get() own=own.clone() sae=sae.clone() /> }
    };
    view! {
        <p class="small" data-testid="index-summary" data-positions=ix.idx.positions data-alive=alive>{summary}</p>
        <p class="small">"Strongest latents (number · highest activation):"</p>
        <ol class="latent-list">{list}</ol>
        <div class="gen-controls">
            <button data-testid="index-prev" on:click=move |_| step(-1) aria-label="previous latent">"←"</button>
            <label>"latent "
                <input type="number" class="num-input" min="0" max=last.to_string() data-testid="index-latent-input"
                    prop:value=move || latent.get().to_string()
                    on:change=move |ev| pick(event_target_value(&ev)) />
                {format!(" of 0 to {last}")}
            </label>
            <button data-testid="index-next" on:click=move |_| step(1) aria-label="next latent">"→"</button>
        </div>
        {card}
    }
}

/// One latent: how often and how hard it fires, its histogram, its top contexts and its logit effects.
#[component]
fn LatentCardView(ix: Arc<Indexed>, j: usize, own: Arc<OwnModel>, sae: Arc<LmSae>) -> impl IntoView {
    let Some(card) = ix.idx.latents.get(j) else { return ().into_any() };
    let n = ix.idx.positions;
    if card.count == 0 {
        return view! {
            <div class="panel-inset" data-testid="index-card" data-latent=j data-count="0">
                <p>{format!("Latent #{j} never fires on these {n} tokens (a dead latent, or one this text does not call for).")}</p>
            </div>
        }
        .into_any();
    }
    let head = format!(
        "Latent #{j} fires on {} of {n} tokens ({:.2}%); its highest activation is {:.3}.",
        card.count,
        100.0 * card.density,
        card.max
    );
    let bins = card.hist.len();
    let groups = card
        .hist
        .iter()
        .enumerate()
        .map(|(b, &c)| {
            let (lo, hi) = (card.max * b as f32 / bins as f32, card.max * (b + 1) as f32 / bins as f32);
            vec![Bar { value: c as f64, class: "blue", title: format!("{c} tokens between {lo:.2} and {hi:.2}") }]
        })
        .collect();
    let top = card.hist.iter().copied().max().unwrap_or(1).max(1) as f64;
    let labels = (0..bins)
        .map(|b| {
            if b == 0 || b + 1 == bins {
                format!("{:.2}", card.max * (b + 1) as f32 / bins as f32)
            } else {
                String::new()
            }
        })
        .collect();
    let contexts = card
        .contexts
        .iter()
        .map(|c| {
            let toks = context_tokens(&ix.pieces, c)
                .into_iter()
                .enumerate()
                .map(|(k, (piece, share))| {
                    let bg = sequential(share.clamp(0.0, 1.0));
                    let peak = c.start + k == c.pos;
                    view! {
                        <span class="token" class:peak=peak title=format!("{:.0}% of the maximum", 100.0 * share)
                            style=format!("background: {bg}; color: {}", ink_on(bg))>{show_piece(&piece)}</span>
                    }
                })
                .collect_view();
            view! { <li><div class="token-strip" data-testid="index-context" data-pos=c.pos data-peak=format!("{:.4}", c.peak)>{toks}</div></li> }
        })
        .collect_view();
    let first = card.contexts.first().map_or(0, |c| c.pos);
    let effects = match logit_effect_row(&own.model, &sae, j) {
        Ok(row) => {
            let (up, down) = promoted_and_suppressed(&row, 8);
            let words = |v: Vec<(usize, f32)>| {
                v.into_iter()
                    .map(|(t, e)| {
                        let p = own.pieces.get(t).map(|p| show_piece(p)).unwrap_or_default();
                        view! { <li data-testid="index-effect" data-token=t>{format!("{p} ({e:+.2})")}</li> }
                    })
                    .collect_view()
            };
            view! {
                <div class="steer-sets">
                    <div><strong>"Pushes up"</strong><ul class="effect-list">{words(up)}</ul></div>
                    <div><strong>"Pushes down"</strong><ul class="effect-list">{words(down)}</ul></div>
                </div>
                <p class="muted small">"Its decoder direction read straight through the final LayerNorm's gain and the unembedding, as if it were the last thing added to the residual stream."</p>
            }
            .into_any()
        }
        Err(e) => view! { <p class="muted small">{format!("No logit effects: {e}.")}</p> }.into_any(),
    };
    view! {
        <div class="panel-inset" data-testid="index-card" data-latent=j data-count=card.count data-max=format!("{:.4}", card.max) data-first=first>
            <p><strong>{head}</strong></p>
            <BarChart groups=groups x=Axis::bands(labels).titled("activation") y=Axis::linear(0.0, top, 4).titled("tokens")
                size=(420.0, 150.0) pad=0.05 label=format!("how strongly latent {j} fires") class="index-hist" />
            <p class="small">"Its strongest contexts (the peak outlined; brighter is stronger):"</p>
            <ol class="index-contexts">{contexts}</ol>
            {effects}
        </div>
    }
    .into_any()
}
