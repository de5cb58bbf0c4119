//! The feature browser of 9.2.5: the sparse autoencoder shipped with the Moby-Dick character model. Pick a
//! latent and see its top activating contexts in the held-out text (each character shaded by the latent's
//! activation), its activation histogram and density, the characters its decoder direction promotes and
//! suppresses through the unembedding, and how much the model's loss rises with the SAE spliced in.
//!
//! Everything per latent comes precomputed from `features.json` or is a few dot products, so picking is
//! instant; the spliced-in loss is measured live on request, one half-window per task, with progress and a
//! Cancel button. The chosen latent lives in the URL (`#/9.2.5?latent=17`).

use leptos::prelude::*;

use super::{Order, SaeState, Tab};
use crate::app::core::browser::{document, replace_hash, replace_hash_soon};
use crate::app::core::format::fmt_int;
use crate::app::core::frame::{LabFrame, UrlNotes};
use crate::app::core::jobs::Jobs;
use crate::app::core::load::{load_char_sae, Model};
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::methods::sae::{
    clean_pass, dequantise, promoted_and_suppressed, scored_windows, spliced_pass, LatentCard, LossTally,
};

/// Characters of held-out text the live measurement covers (about 60 windows): a few seconds in the browser.
const LIVE_CHARS: usize = 4_000;

/// The latents in the list's order, dead ones dropped when `hide_dead`.
fn ordered(cards: &[LatentCard], order: Order, hide_dead: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..cards.len()).filter(|&j| !hide_dead || cards[j].count > 0).collect();
    match order {
        Order::Index => {}
        Order::Density => idx.sort_by(|&a, &b| cards[b].density.total_cmp(&cards[a].density).then(a.cmp(&b))),
        Order::Peak => idx.sort_by(|&a, &b| cards[b].max.total_cmp(&cards[a].max).then(a.cmp(&b))),
    }
    idx
}

/// How a character is shown inside a context: visible stand-ins for the invisible ones.
fn show_char(c: char) -> String {
    match c {
        '\n' => "↵".into(),
        ' ' => "\u{a0}".into(),
        c => c.to_string(),
    }
}

/// A character as a label on its own (in the promoted and suppressed lists).
fn char_label(c: char) -> String {
    match c {
        '\n' => "↵ newline".into(),
        ' ' => "␣ space".into(),
        c => c.to_string(),
    }
}

/// The few characters around a latent's strongest peak, for the list.
fn snippet(chars: &[char], card: &LatentCard) -> String {
    let Some(c) = card.contexts.first() else { return "never fires".into() };
    let from = c.pos.saturating_sub(8);
    let before: String = chars[from..c.pos].iter().map(|&c| if c == '\n' { '↵' } else { c }).collect();
    let peak = chars.get(c.pos).map(|&c| show_char(c)).unwrap_or_default();
    format!("{before}[{peak}]")
}

fn fmt_pct(x: f32) -> String {
    let p = 100.0 * x;
    if p == 0.0 {
        "0%".into()
    } else if p < 0.1 {
        format!("{p:.3}%")
    } else if p < 10.0 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

/// The activation histogram as SVG: bars over equal bins of (0, max], counts on a log scale (a few strong
/// activations would vanish next to many weak ones on a linear one).
fn histogram_svg(card: &LatentCard) -> String {
    let (w, h, left, bottom, top) = (420.0f32, 150.0f32, 44.0f32, 30.0f32, 8.0f32);
    let bins = card.hist.len().max(1);
    let peak = card.hist.iter().copied().max().unwrap_or(0).max(1) as f32;
    let ly = |c: u32| if c == 0 { 0.0 } else { (1.0 + c as f32).log10() / (1.0 + peak).log10() };
    let bw = (w - left - 8.0) / bins as f32;
    let mut s = format!(
        r#"<svg class="feat-hist" data-testid="feature-histogram" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="histogram of the latent's nonzero activations">"#
    );
    let base = h - bottom;
    s += &format!(r##"<line x1="{left}" y1="{base}" x2="{}" y2="{base}" stroke="#888"/>"##, w - 8.0);
    for (i, &c) in card.hist.iter().enumerate() {
        let bh = ly(c) * (base - top);
        let x = left + i as f32 * bw;
        s += &format!(
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#2f6fb0"><title>{} to {}: {} characters</title></rect>"##,
            x + 0.5,
            base - bh,
            (bw - 1.0).max(0.5),
            fmt_act(card.max * i as f32 / bins as f32),
            fmt_act(card.max * (i + 1) as f32 / bins as f32),
            c
        );
    }
    s += &format!(r##"<text x="{left}" y="{}" font-size="12" fill="#555">0</text>"##, h - 12.0);
    s += &format!(
        r##"<text x="{}" y="{}" font-size="12" fill="#555" text-anchor="end">{}</text>"##,
        w - 8.0,
        h - 12.0,
        fmt_act(card.max)
    );
    s += &format!(
        r##"<text x="{}" y="{}" font-size="12" fill="#555" text-anchor="middle">activation</text>"##,
        left + (w - left) / 2.0,
        h - 12.0
    );
    s += &format!(
        r##"<text x="{}" y="{}" font-size="12" fill="#555" text-anchor="end">{}</text>"##,
        left - 4.0,
        top + 10.0,
        fmt_int(peak as usize)
    );
    s += &format!(r##"<text x="{}" y="{base}" font-size="12" fill="#555" text-anchor="end">0</text>"##, left - 4.0);
    s += "</svg>";
    s
}

fn fmt_act(a: f32) -> String {
    if a >= 10.0 {
        format!("{a:.0}")
    } else {
        format!("{a:.1}")
    }
}

/// The live measurement's state.
#[derive(Clone, Debug, PartialEq)]
enum Live {
    Idle,
    Running { done: usize, total: usize },
    Done(LossTally),
    Cancelled,
    Failed(String),
}

/// The 9.2.5 lab: two tabs, the toy SAE (known features) and the feature browser (a real model). Both stay
/// mounted, so switching keeps the toy SAE's training and the browser's choice. A URL that names a latent
/// opens the browser.
#[component]
pub fn SaeLabs(query: Vec<(String, String)>) -> impl IntoView {
    let (url, problems) = SaeState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    let tab = RwSignal::new(url.tab);
    let visible = Signal::derive(move || tab.get() == Tab::Features);
    let pick = move |t: Tab| {
        tab.set(t);
        let state = SaeState { tab: t, ..SaeState::default() };
        replace_hash(&section_hash_with("9.2.5", &state.to_query()));
    };
    view! {
        <LabFrame notes=notes>
        <div class="lab-tabs" role="tablist">
            <button role="tab" data-testid="tab-toy" class:active=move || tab.get() == Tab::Toy aria-selected=move || if tab.get() == Tab::Toy { "true" } else { "false" }
                on:click=move |_| pick(Tab::Toy)>"Toy model: known features"</button>
            <button role="tab" data-testid="tab-features" class:active=move || tab.get() == Tab::Features aria-selected=move || if tab.get() == Tab::Features { "true" } else { "false" }
                on:click=move |_| pick(Tab::Features)>"Moby-Dick model: feature browser"</button>
        </div>
        <div style:display=move || if tab.get() == Tab::Toy { "block" } else { "none" }>
            <super::toy::SaeLab />
        </div>
        <div style:display=move || if tab.get() == Tab::Features { "block" } else { "none" }>
            <FeatureBrowser url=url visible=visible notes=notes />
        </div>
        </LabFrame>
    }
}

#[component]
fn FeatureBrowser(url: SaeState, visible: Signal<bool>, notes: UrlNotes) -> impl IntoView {
    let loaded = Model::new("the Moby-Dick model's sparse autoencoder", || load_char_sae("moby"));
    let asked = url.latent;
    let order = RwSignal::new(url.order);
    let hide_dead = RwSignal::new(url.hide_dead);
    let latent: RwSignal<Option<usize>> = RwSignal::new(None);
    let live = RwSignal::new(Live::Idle);
    let live_run = Jobs::new();
    // A latent typed into the box that is not in the dictionary.
    let input_problem: RwSignal<Option<String>> = RwSignal::new(None);

    let data = move || loaded.get();
    // For event handlers, which must not subscribe to anything.
    let data_now = move || loaded.get_untracked();

    // Once loaded, settle the starting latent: the URL's if it is valid, else the densest.
    Effect::new(move |_| {
        let Some(d) = data() else { return };
        if latent.get_untracked().is_some() {
            return;
        }
        let n = d.sae.d_sae;
        let first = ordered(&d.index.latents, Order::Density, false).first().copied().unwrap_or(0);
        let pick = match asked {
            None => first,
            Some(j) if j < n => j,
            Some(j) => {
                notes.add(format!("The link's “latent={j}” is not in this dictionary of latents 0 to {}, so the lab shows latent {first}, the one that fires most often.", n - 1));
                first
            }
        };
        latent.set(Some(pick));
    });

    // Keep the choice in the URL while the browser's tab is showing.
    Effect::new(move |_| {
        let (Some(j), order, hide_dead) = (latent.get(), order.get(), hide_dead.get()) else { return };
        if !visible.get() {
            return;
        }
        let state = SaeState { tab: Tab::Features, latent: Some(j), order, hide_dead };
        replace_hash_soon(&section_hash_with("9.2.5", &state.to_query()));
    });

    let list =
        Memo::new(move |_| data().map(|d| ordered(&d.index.latents, order.get(), hide_dead.get())).unwrap_or_default());

    // Scroll the list (only the list, not the page) so the chosen latent is in sight, e.g. one from the URL.
    Effect::new(move |_| {
        let Some(j) = latent.get() else { return };
        let _ = (list.get(), visible.get());
        request_animation_frame(move || {
            use wasm_bindgen::JsCast;
            let doc = document();
            let find = |sel: &str| {
                doc.query_selector(sel).ok().flatten().and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
            };
            let (Some(ul), Some(item)) =
                (find("[data-testid=latent-list]"), find(&format!("[data-testid=latent-list] [data-latent=\"{j}\"]")))
            else {
                return;
            };
            let (u, r) = (ul.get_bounding_client_rect(), item.get_bounding_client_rect());
            if r.top() < u.top() || r.bottom() > u.bottom() {
                let delta = r.top() - u.top() - (u.height() - r.height()) / 2.0;
                ul.set_scroll_top(ul.scroll_top() + delta as i32);
            }
        });
    });

    let step = move |delta: isize| {
        let l = list.get_untracked();
        let Some(cur) = latent.get_untracked() else { return };
        if l.is_empty() {
            return;
        }
        let at = l.iter().position(|&j| j == cur).map(|p| p as isize).unwrap_or(-1);
        let next = (at + delta).rem_euclid(l.len() as isize) as usize;
        input_problem.set(None);
        latent.set(Some(l[next]));
    };

    let start_live = move |_| {
        let Some(d) = data_now() else { return };
        live_run.spawn("measuring the loss", move |job| async move {
            let text: String = d.chars.iter().take(LIVE_CHARS).collect();
            let ids = match d.lm.vocab.encode(&text) {
                Ok(ids) => ids,
                Err(e) => return live.set(Live::Failed(e.to_string())),
            };
            let n = d.lm.model.cfg.n_positions;
            let wins = scored_windows(ids.len(), n);
            let total = wins.len();
            let mut tally = LossTally::default();
            live.set(Live::Running { done: 0, total });
            for (k, &(start, from)) in wins.iter().enumerate() {
                let window = &ids[start..(start + n).min(ids.len())];
                // Two tasks per window (clean, then spliced), each well under 50 ms, with a pause between.
                let pass = match clean_pass(&d.lm.model, &d.sae, window, from) {
                    Ok(p) => p,
                    Err(e) => return live.set(Live::Failed(e.to_string())),
                };
                if !job.pause("measuring the loss", (2 * k + 1) as f32 / (2 * total) as f32).await {
                    return;
                }
                match spliced_pass(&d.lm.model, &d.sae, &pass, window, from) {
                    Ok(s) => {
                        tally.add(LossTally { clean: pass.clean, spliced: s, zero_ablated: 0.0, count: pass.count })
                    }
                    Err(e) => return live.set(Live::Failed(e.to_string())),
                }
                live.set(Live::Running { done: k + 1, total });
                if !job.pause("measuring the loss", (k + 1) as f32 / total as f32).await {
                    return;
                }
            }
            live.set(Live::Done(tally));
        });
    };
    let cancel_live = move |_| {
        live_run.cancel();
        live.set(Live::Cancelled);
    };

    let list_view = move || {
        let d = data()?;
        let items = list
            .get()
            .into_iter()
            .map(|j| {
                let card = &d.index.latents[j];
                let dead = card.count == 0;
                let label = snippet(&d.chars, card);
                // Reactive per item, so picking a latent restyles two buttons instead of rebuilding the list.
                let selected = move || latent.get() == Some(j);
                view! {
                    <li>
                        <button class="latent-item" class:selected=selected class:dead=dead data-latent=j aria-pressed=move || if selected() { "true" } else { "false" }
                            on:click=move |_| { input_problem.set(None); latent.set(Some(j)); }>
                            <span class="latent-num">{format!("#{j}")}</span>
                            <span class="latent-density">{if dead { "dead".to_string() } else { fmt_pct(card.density) }}</span>
                            <span class="latent-snippet">{label}</span>
                        </button>
                    </li>
                }
            })
            .collect_view();
        Some(view! { <ul class="latent-list" data-testid="latent-list">{items}</ul> })
    };

    let card_view = move || {
        let d = data()?;
        let j = latent.get()?;
        let card = d.index.latents.get(j)?.clone();
        let positions = d.index.positions;
        let dead = card.count == 0;
        let density_text = if dead {
            format!("Dead: this latent never fires on the {} held-out characters.", fmt_int(positions))
        } else {
            let one_in = (1.0 / card.density).round() as usize;
            format!(
                "Fires on {} characters of {} ({}, about 1 in {}); strongest activation {}.",
                fmt_int(card.count),
                fmt_int(positions),
                fmt_pct(card.density),
                fmt_int(one_in.max(1)),
                fmt_act(card.max)
            )
        };
        let contexts = card
            .contexts
            .iter()
            .map(|c| {
                let spans = c
                    .acts
                    .chars()
                    .enumerate()
                    .map(|(k, q)| {
                        let p = c.start + k;
                        let ch = d.chars.get(p).copied().unwrap_or(' ');
                        let a = dequantise(q);
                        let style = if a > 0.0 { format!("background: rgba(232, 119, 34, {:.2})", 0.12 + 0.88 * a) } else { String::new() };
                        let title = if a > 0.0 { format!("about {:.0}% of the latent's maximum", 100.0 * a) } else { "inactive (or below 3% of the maximum)".to_string() };
                        view! { <span class="ctx-char" class:peak=p == c.pos style=style title=title>{show_char(ch)}</span> }
                    })
                    .collect_view();
                view! {
                    <li class="ctx">
                        <span class="ctx-text">{spans}</span>
                        <span class="ctx-peak" title="the activation at the outlined character">{fmt_act(c.peak)}</span>
                    </li>
                }
            })
            .collect_view();
        let vocab = d.lm.vocab.chars();
        let row = &d.effects[j * vocab.len()..(j + 1) * vocab.len()];
        let (up, down) = promoted_and_suppressed(row, 8);
        let chips = |v: Vec<(usize, f32)>, cls: &'static str| {
            v.into_iter()
                .map(|(c, e)| view! { <li class=format!("logit-chip {cls}")><span class="chip-char">{char_label(vocab[c])}</span><span class="chip-val">{format!("{e:+.2}")}</span></li> })
                .collect_view()
        };
        let hist = histogram_svg(&card);
        Some(view! {
            <div class="feature-card" data-testid="feature-card" data-latent=j data-dead=if dead { "1" } else { "0" }>
                <h4>{format!("Latent {j}")} {dead.then(|| view! { <span class="dead-badge">"dead"</span> })}</h4>
                <p data-testid="feature-density">{density_text}</p>
                <h5>"Top activating contexts in the held-out text"</h5>
                {if dead {
                    view! { <p class="small muted">"No contexts: a dead latent is a slot in the dictionary that training never put to use."</p> }.into_any()
                } else {
                    view! {
                        <p class="small muted">"Shading: the latent's activation at each character, darker is stronger; the outlined character is the peak, whose value is on the right. ↵ is a line break."</p>
                        <ol class="contexts" data-testid="feature-contexts">{contexts}</ol>
                    }.into_any()
                }}
                <div class="feature-grid">
                    <section>
                        <h5>"Activation histogram"</h5>
                        <p class="small muted">"How strongly it fires when it fires (counts on a log scale)."</p>
                        <div inner_html=hist></div>
                    </section>
                    <section data-testid="feature-logits">
                        <h5>"Next characters it pushes"</h5>
                        <p class="small muted">"Its decoder direction read through the final LayerNorm's γ and the unembedding, skipping the layers in between."</p>
                        <div class="logit-cols">
                            <div><span class="small">"promotes"</span><ul class="chips" data-testid="promoted">{chips(up, "up")}</ul></div>
                            <div><span class="small">"suppresses"</span><ul class="chips" data-testid="suppressed">{chips(down, "down")}</ul></div>
                        </div>
                    </section>
                </div>
            </div>
        })
    };

    let quality_view = move || {
        let d = data()?;
        let h = &d.report["held_out"];
        let num = |k: &str| h[k].as_f64();
        let clean = num("loss_clean")?;
        let spliced = num("loss_spliced")?;
        let zero = num("loss_zero_ablated");
        let rec = num("loss_recovered");
        let hook = d.sae.hook.to_string();
        Some(view! {
            <div class="sae-metrics" data-testid="sae-quality">
                <div class="metric wide" data-testid="shipped-loss" data-clean=format!("{clean:.4}") data-spliced=format!("{spliced:.4}")>
                    <span class="metric-value">{format!("{clean:.3} → {spliced:.3}")}</span>
                    <span class="metric-label">"loss in nats per character: the model as it is → with the SAE's reconstruction in place of " <code>{hook}</code> " (all held-out text)"</span>
                </div>
                <div class="metric">
                    <span class="metric-value">{num("fvu").map(|f| format!("{:.1}%", 100.0 * f)).unwrap_or_else(|| "–".into())}</span>
                    <span class="metric-label">"variance unexplained (FVU)"</span>
                </div>
                <div class="metric">
                    <span class="metric-value">{num("l0").map(|f| format!("{f:.1}")).unwrap_or_else(|| "–".into())}</span>
                    <span class="metric-label">{format!("L0: latents active per character, of {}", d.sae.d_sae)}</span>
                </div>
                <div class="metric">
                    <span class="metric-value">{num("dead").map(|f| format!("{f:.0}")).unwrap_or_else(|| "–".into())}</span>
                    <span class="metric-label">"dead latents on the held-out text"</span>
                </div>
                {zero.zip(rec).map(|(z, r)| view! {
                    <div class="metric">
                        <span class="metric-value">{format!("{:.1}%", 100.0 * r)}</span>
                        <span class="metric-label">{format!("of the loss recovered, against zeroing the hook ({z:.2} nats)")}</span>
                    </div>
                })}
            </div>
        })
    };

    let live_view = move || {
        let d = data()?;
        let chars = d.chars.len().min(LIVE_CHARS);
        Some(match live.get() {
            Live::Idle => view! {
                <p class="live-loss" data-testid="live-loss" data-state="idle">
                    <button data-testid="measure-loss" on:click=start_live>"Measure it here"</button>
                    {format!(" recomputes both losses on the first {} held-out characters, in your browser.", fmt_int(chars))}
                </p>
            }
            .into_any(),
            Live::Running { done, total } => view! {
                <p class="live-loss" data-testid="live-loss" data-state="running">
                    <button data-testid="cancel-loss" on:click=cancel_live>"Cancel"</button>
                    <progress max=total value=done></progress>
                    {format!(" window {done} of {total}…")}
                </p>
            }
            .into_any(),
            Live::Done(t) => view! {
                <p class="live-loss" data-testid="live-loss" data-state="done" data-clean=format!("{:.4}", t.clean_loss()) data-spliced=format!("{:.4}", t.spliced_loss())>
                    <strong>{format!("Measured here: {:.3} → {:.3} nats per character", t.clean_loss(), t.spliced_loss())}</strong>
                    {format!(
                        " on the first {} held-out characters, +{:.1}%. These passages happen to be easier than the book's average, so both numbers sit below the shipped ones; compare the gap, not the level. ",
                        fmt_int(t.count),
                        100.0 * (t.spliced_loss() / t.clean_loss() - 1.0)
                    )}
                    <button data-testid="measure-loss" on:click=start_live>"Again"</button>
                </p>
            }
            .into_any(),
            Live::Cancelled => view! {
                <p class="live-loss" data-testid="live-loss" data-state="cancelled">"Cancelled. " <button data-testid="measure-loss" on:click=start_live>"Measure again"</button></p>
            }
            .into_any(),
            Live::Failed(e) => view! {
                <p class="input-error" data-testid="live-loss" data-state="failed" role="alert">{format!("The measurement stopped: {e}")}</p>
            }
            .into_any(),
        })
    };

    let d_sae = move || data().map(|d| d.sae.d_sae).unwrap_or(0);
    let d_sae_now = move || data_now().map(|d| d.sae.d_sae).unwrap_or(0);
    let header = move || {
        data().map(|d| {
            format!(
                "A dictionary of {} latents trained on {} of the character model from 9.2.2 (d_model {}), with activations from the training half of the book. Contexts come from the {} held-out characters it never trained on.",
                d.sae.d_sae,
                d.sae.hook,
                d.sae.d_in,
                fmt_int(d.index.positions)
            )
        })
    };

    view! {
        <section class="panel feature-browser" data-testid="feature-browser">
            <h3>"Feature browser: an SAE on the Moby-Dick model"</h3>
            {loaded.status_with("features-loading", "features-error")}
            <p class="small muted">{header}</p>
            {move || input_problem.get().map(|m| view! { <p class="input-error" data-testid="latent-error" role="alert">{m}</p> })}
            {move || data().map(|_| view! {
                <div class="feature-controls">
                    <label>"Latent "
                        <input type="number" min="0" max=move || d_sae().saturating_sub(1) data-testid="latent-input" class="latent-input"
                            prop:value=move || latent.get().map(|j| j.to_string()).unwrap_or_default()
                            on:change=move |ev| {
                                let v = event_target_value(&ev);
                                match v.trim().parse::<usize>() {
                                    Ok(j) if j < d_sae_now() => { input_problem.set(None); latent.set(Some(j)); }
                                    _ => input_problem.set(Some(format!("“{v}” is not a latent: pick a whole number from 0 to {}.", d_sae_now().saturating_sub(1)))),
                                }
                            } />
                    </label>
                    <button data-testid="latent-prev" on:click=move |_| step(-1) title="the previous latent in the list's order">"◀"</button>
                    <button data-testid="latent-next" on:click=move |_| step(1) title="the next latent in the list's order">"▶"</button>
                    <label>"Order "
                        <select data-testid="latent-order" prop:value=move || order.get().key() on:change=move |ev| {
                            if let Some((_, o)) = super::ORDERS.iter().find(|(k, _)| *k == event_target_value(&ev)) { order.set(*o); }
                        }>
                            <option value="density">"most frequent first"</option>
                            <option value="peak">"strongest peak first"</option>
                            <option value="index">"by number"</option>
                        </select>
                    </label>
                    <label class="check"><input type="checkbox" data-testid="hide-dead" prop:checked=move || hide_dead.get() on:change=move |ev| hide_dead.set(event_target_checked(&ev)) />" hide dead latents"</label>
                </div>
            })}
            <div class="feature-layout">
                {list_view}
                {card_view}
            </div>
            {move || data().map(|_| view! {
                <section class="feature-quality">
                    <h4>"How much of the model does the dictionary explain?"</h4>
                    <p class="small muted">"Splicing the reconstruction into the forward pass shows what the SAE misses: whatever the loss rises by is computation the features do not capture."</p>
                    {quality_view}
                    {live_view}
                </section>
            })}
        </section>
    }
}
