//! The feature browser of 9.2.5: the sparse autoencoder shipped with the Moby-Dick character model. Pick a
//! latent and see its top activating contexts in the held-out text (each character shaded by the latent's
//! activation), its activation histogram and density, the characters its decoder direction promotes and
//! suppresses through the unembedding, and how much the model's loss rises with the SAE spliced in.
//!
//! Everything per latent comes precomputed from `features.json` or is a few dot products, so picking is
//! instant; the spliced-in loss is measured live on request, one half-window per task, with progress and a
//! Cancel button. The chosen latent lives in the URL (`#/9.2.5?latent=17`). The rules are in `super::browser`.

use std::sync::Arc;

use leptos::prelude::*;

use super::browser::{
    char_label, density_text, fmt_act, live_summary, ordered, parse_latent, shade, show_char, snippet, starting_latent,
    step_in_list, Live, LIVE_CHARS,
};
use super::{histogram_table, SaeState, Tab, ToySae, ORDERS};
use crate::app::core::browser::{document, replace_hash_soon};
use crate::app::core::charts::{log_count, Axis, Bar, BarChart};
use crate::app::core::format::fmt_int;
use crate::app::core::frame::{LabFrame, UrlNotes};
use crate::app::core::jobs::{Job, Jobs};
use crate::app::core::keys;
use crate::app::core::load::{load_char_sae, LoadedSae, Model};
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::methods::sae::{
    dequantise, promoted_and_suppressed, scored_windows, LatentCard, LossTally, WindowRun,
};
use crate::lens::LensError;

/// The activation histogram: bars over equal bins of (0, max], counts on a log scale (a few strong
/// activations would vanish next to many weak ones on a linear one).
fn histogram(card: &LatentCard) -> impl IntoView {
    let bins = card.hist.len().max(1);
    let peak = card.hist.iter().copied().max().unwrap_or(0);
    let edge = |i: usize| fmt_act(card.max * i as f32 / bins as f32);
    let groups = card
        .hist
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let title = format!("{} to {}: {} characters", edge(i), edge(i + 1), fmt_int(c as usize));
            vec![Bar { value: log_count(c, peak), class: "blue", title }]
        })
        .collect();
    let x = Axis::linear(0.0, card.max as f64, 5).onto(0.0, bins as f64).titled("activation");
    let table = histogram_table(&card.hist, card.max);
    view! {
        <BarChart groups=groups x=x y=Axis::log_counts(peak).titled("characters") size=(300.0, 190.0) pad=0.0 table=table
            class="feat-hist" testid="feature-histogram" label="histogram of the latent's nonzero activations" />
    }
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
    let toy = ToySettings { l1: RwSignal::new(url.toy.l1), d_sae: RwSignal::new(url.toy.d_sae) };
    // The toy tab's link (the browser writes its own while it shows).
    Effect::new(move |_| {
        if tab.get() == Tab::Toy {
            let state = SaeState { tab: Tab::Toy, toy: toy.get(), ..SaeState::default() };
            replace_hash_soon(&section_hash_with("9.2.5", &state.to_query()));
        }
    });
    let tab_button = move |t: Tab, id: &'static str, label: &'static str| {
        view! {
            <button role="tab" data-testid=id class:active=move || tab.get() == t aria-selected=move || (tab.get() == t).to_string()
                on:click=move |_| tab.set(t)>{label}</button>
        }
    };
    view! {
        <LabFrame notes=notes model="moby, with its sparse autoencoder (SAE tab); the toy tab trains its own">
        <div class="lab-tabs" role="tablist">
            {tab_button(Tab::Toy, "tab-toy", "Toy model: known features")}
            {tab_button(Tab::Features, "tab-features", "Moby-Dick model: feature browser")}
        </div>
        <div style:display=move || if tab.get() == Tab::Toy { "block" } else { "none" }>
            <super::toy::SaeLab l1=toy.l1 d_sae=toy.d_sae />
        </div>
        <div style:display=move || if tab.get() == Tab::Features { "block" } else { "none" }>
            <FeatureBrowser url=url visible=visible notes=notes toy=toy />
        </div>
        </LabFrame>
    }
}

/// The toy tab's settings, owned here so that both tabs' links carry them.
#[derive(Clone, Copy)]
struct ToySettings {
    l1: RwSignal<f32>,
    d_sae: RwSignal<usize>,
}

impl ToySettings {
    fn get(self) -> ToySae {
        ToySae { l1: self.l1.get(), d_sae: self.d_sae.get() }
    }
}

/// The browser's shared state.
#[derive(Clone, Copy)]
struct Browser {
    loaded: Model<LoadedSae>,
    latent: RwSignal<Option<usize>>,
    order: RwSignal<super::Order>,
    hide_dead: RwSignal<bool>,
    /// A latent typed into the box that is not in the dictionary.
    input_problem: RwSignal<Option<String>>,
    /// The latents in the list's order.
    list: Memo<Vec<usize>>,
}

impl Browser {
    fn pick(self, j: usize) {
        self.input_problem.set(None);
        self.latent.set(Some(j));
    }
}

#[component]
fn FeatureBrowser(url: SaeState, visible: Signal<bool>, notes: UrlNotes, toy: ToySettings) -> impl IntoView {
    let loaded = Model::new("the Moby-Dick model's sparse autoencoder", || load_char_sae("moby"));
    let (order, hide_dead) = (RwSignal::new(url.order), RwSignal::new(url.hide_dead));
    let list = Memo::new(move |_| {
        loaded.get().map(|d| ordered(&d.index.latents, order.get(), hide_dead.get())).unwrap_or_default()
    });
    let b = Browser { loaded, latent: RwSignal::new(None), order, hide_dead, input_problem: RwSignal::new(None), list };

    // Once loaded, settle the starting latent: the URL's if it is valid, else the densest.
    let asked = url.latent;
    Effect::new(move |_| {
        let Some(d) = loaded.get() else { return };
        if b.latent.get_untracked().is_none() {
            let (j, problem) = starting_latent(asked, &d.index.latents);
            if let Some(m) = problem {
                notes.add(m);
            }
            b.latent.set(Some(j));
        }
    });
    // Keep the choice in the URL while the browser's tab is showing .
    Effect::new(move |_| {
        // Until the SAE is there, the link keeps the latent it asked for.
        let (latent, order, hide_dead) = (b.latent.get().or(asked), order.get(), hide_dead.get());
        if visible.get() {
            let state = SaeState { tab: Tab::Features, latent, order, hide_dead, toy: toy.get() };
            replace_hash_soon(&section_hash_with("9.2.5", &state.to_query()));
        }
    });
    scroll_to_latent(b, visible);

    let header = move || {
        loaded.get().map(|d| {
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
            {move || b.input_problem.get().map(|m| view! { <p class="input-error" data-testid="latent-error" role="alert">{m}</p> })}
            {move || loaded.get().map(|d| view! { <LatentControls b=b d_sae=d.sae.d_sae /> })}
            <div class="feature-layout">
                <LatentList b=b />
                {move || loaded.get().zip(b.latent.get()).map(|(d, j)| view! { <FeatureCard d=d j=j /> })}
            </div>
            {move || loaded.get().map(|d| view! { <Quality d=d /> })}
        </section>
    }
}

/// Scrolls the list (only the list, not the page) so the chosen latent is in sight, e.g. one from the URL.
fn scroll_to_latent(b: Browser, visible: Signal<bool>) {
    Effect::new(move |_| {
        let Some(j) = b.latent.get() else { return };
        let _ = (b.list.get(), visible.get());
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
}

/// The number box, previous/next in the list's order, the order and the dead-latent filter.
#[component]
fn LatentControls(b: Browser, d_sae: usize) -> impl IntoView {
    let step = move |delta: isize| {
        let next = b.latent.get_untracked().and_then(|cur| step_in_list(&b.list.get_untracked(), cur, delta));
        if let Some(j) = next {
            b.pick(j);
        }
    };
    let on_typed = move |ev| match parse_latent(&event_target_value(&ev), d_sae) {
        Ok(j) => b.pick(j),
        Err(m) => b.input_problem.set(Some(m)),
    };
    let on_order = move |ev| {
        if let Some((_, o)) = ORDERS.iter().find(|(k, _)| *k == event_target_value(&ev)) {
            b.order.set(*o);
        }
    };
    view! {
        <div class="feature-controls">
            <label>"Latent "
                <input type="number" min="0" max=d_sae.saturating_sub(1) data-testid="latent-input" class="latent-input"
                    prop:value=move || b.latent.get().map(|j| j.to_string()).unwrap_or_default() on:change=on_typed />
            </label>
            <button data-testid="latent-prev" on:click=move |_| step(-1) title="the previous latent in the list's order" aria-label="previous latent">"◀"</button>
            <button data-testid="latent-next" on:click=move |_| step(1) title="the next latent in the list's order" aria-label="next latent">"▶"</button>
            <label>"Order "
                <select data-testid="latent-order" prop:value=move || b.order.get().key() on:change=on_order>
                    <option value="density">"most frequent first"</option>
                    <option value="peak">"strongest peak first"</option>
                    <option value="index">"by number"</option>
                </select>
            </label>
            <label class="check"><input type="checkbox" data-testid="hide-dead" prop:checked=move || b.hide_dead.get()
                on:change=move |ev| b.hide_dead.set(event_target_checked(&ev)) />" hide dead latents"</label>
        </div>
    }
}

/// Every latent with its density and a snippet around its peak.
#[component]
fn LatentList(b: Browser) -> impl IntoView {
    // One tab stop for the whole list (WAI-ARIA's roving tabindex): Tab enters on the chosen latent and leaves in
    // one press; the arrows, Home, End and Page Up/Down move the focus; Enter or Space picks, as a click does.
    let focus = RwSignal::new(None::<usize>);
    Effect::new(move |_| focus.set(b.latent.get()));
    let stop = Memo::new(move |_| {
        let list = b.list.get();
        focus.get().filter(|j| list.contains(j)).or_else(|| list.first().copied())
    });
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let list = b.list.get_untracked();
        let at = stop.get_untracked().and_then(|j| list.iter().position(|&x| x == j)).unwrap_or(0);
        let Some(next) = keys::list_move(&ev.key(), at, list.len(), 10, false) else { return };
        ev.prevent_default();
        let j = list[next];
        focus.set(Some(j));
        use wasm_bindgen::JsCast;
        if let Some(e) = document()
            .query_selector(&format!("[data-testid=latent-list] [data-latent=\"{j}\"]"))
            .ok()
            .flatten()
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = e.focus();
        }
    };
    move || {
        let d = b.loaded.get()?;
        let items = b
            .list
            .get()
            .into_iter()
            .map(|j| {
                let card = &d.index.latents[j];
                let dead = card.count == 0;
                let density = if dead { "dead".to_string() } else { super::browser::fmt_pct(card.density) };
                // Reactive per item, so picking a latent restyles two buttons instead of rebuilding the list.
                let selected = move || b.latent.get() == Some(j);
                view! {
                    <li>
                        <button class="latent-item" class:selected=selected class:dead=dead data-latent=j aria-pressed=move || if selected() { "true" } else { "false" }
                            tabindex=move || if stop.get() == Some(j) { "0" } else { "-1" }
                            on:click=move |_| b.pick(j)>
                            <span class="latent-num">{format!("#{j}")}</span>
                            <span class="latent-density">{density}</span>
                            <span class="latent-snippet">{snippet(&d.chars, card)}</span>
                        </button>
                    </li>
                }
            })
            .collect_view();
        Some(view! { <ul class="latent-list" data-testid="latent-list" on:keydown=on_key
        aria-label="latents: arrow keys move, Enter picks">{items}</ul> })
    }
}

/// One latent: density, top contexts, histogram and the characters it pushes.
#[component]
fn FeatureCard(d: Arc<LoadedSae>, j: usize) -> impl IntoView {
    let card = d.index.latents.get(j).cloned()?;
    let dead = card.count == 0;
    let contexts = card.contexts.iter().map(|c| {
        let spans = c.acts.chars().enumerate().map(|(k, q)| {
            let p = c.start + k;
            let (style, title) = shade(dequantise(q));
            view! { <span class="ctx-char" class:peak=p == c.pos style=style title=title>{show_char(d.chars.get(p).copied().unwrap_or(' '))}</span> }
        });
        view! {
            <li class="ctx">
                <span class="ctx-text">{spans.collect_view()}</span>
                <span class="ctx-peak" title="the activation at the outlined character">{fmt_act(c.peak)}</span>
            </li>
        }
    });
    let vocab = d.lm.vocab.chars();
    let (up, down) = promoted_and_suppressed(&d.effects[j * vocab.len()..(j + 1) * vocab.len()], 8);
    let chips = |v: Vec<(usize, f32)>, cls: &'static str| {
        v.into_iter()
            .map(|(c, e)| view! { <li class=format!("logit-chip {cls}")><span class="chip-char">{char_label(vocab[c])}</span><span class="chip-val">{format!("{e:+.2}")}</span></li> })
            .collect_view()
    };
    let hist = histogram(&card);
    Some(view! {
        <div class="feature-card" data-testid="feature-card" data-latent=j data-dead=if dead { "1" } else { "0" }>
            <h4>{format!("Latent {j}")} {dead.then(|| view! { <span class="dead-badge">"dead"</span> })}</h4>
            <p data-testid="feature-density">{density_text(&card, d.index.positions)}</p>
            <h5>"Top activating contexts in the held-out text"</h5>
            {if dead {
                view! { <p class="small muted">"No contexts: a dead latent is a slot in the dictionary that training never put to use."</p> }.into_any()
            } else {
                view! {
                    <p class="small muted">"Shading: the latent's activation at each character, darker is stronger; the outlined character is the peak, whose value is on the right. ↵ is a line break."</p>
                    <ol class="contexts" data-testid="feature-contexts">{contexts.collect_view()}</ol>
                }.into_any()
            }}
            <div class="feature-grid">
                <section>
                    <h5>"Activation histogram"</h5>
                    <p class="small muted">"How strongly it fires when it fires (counts on a log scale)."</p>
                    {hist}
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
}

/// How much of the model the dictionary explains: the shipped figures, and the loss measured live on request.
#[component]
fn Quality(d: Arc<LoadedSae>) -> impl IntoView {
    let h = &d.report["held_out"];
    let num = |k: &str| h[k].as_f64();
    let metric = |value: Option<String>, label: String| {
        view! {
            <div class="metric">
                <span class="metric-value">{value.unwrap_or_else(|| "–".into())}</span>
                <span class="metric-label">{label}</span>
            </div>
        }
    };
    let shipped = num("loss_clean").zip(num("loss_spliced")).map(|(clean, spliced)| {
        view! {
            <div class="metric wide" data-testid="shipped-loss" data-clean=format!("{clean:.4}") data-spliced=format!("{spliced:.4}")>
                <span class="metric-value">{format!("{clean:.3} → {spliced:.3}")}</span>
                <span class="metric-label">"loss in nats per character: the model as it is → with the SAE's reconstruction in place of " <code>{d.sae.hook.to_string()}</code> " (all held-out text)"</span>
            </div>
        }
    });
    let recovered = num("loss_zero_ablated").zip(num("loss_recovered")).map(|(z, r)| {
        metric(
            Some(format!("{:.1}%", 100.0 * r)),
            format!("of the loss recovered, against zeroing the hook ({z:.2} nats)"),
        )
    });
    view! {
        <section class="feature-quality">
            <h4>"How much of the model does the dictionary explain?"</h4>
            <p class="small muted">"Splicing the reconstruction into the forward pass shows what the SAE misses: whatever the loss rises by is computation the features do not capture."</p>
            {shipped.map(|shipped| view! {
                <div class="sae-metrics" data-testid="sae-quality">
                    {shipped}
                    {metric(num("fvu").map(|f| format!("{:.1}%", 100.0 * f)), "variance unexplained (FVU)".into())}
                    {metric(num("l0").map(|f| format!("{f:.1}")), format!("L0: latents active per character, of {}", d.sae.d_sae))}
                    {metric(num("dead").map(|f| format!("{f:.0}")), "dead latents on the held-out text".into())}
                    {recovered}
                </div>
            })}
            <div role="status"><LiveLoss d=d.clone() /></div>
        </section>
    }
}

/// "Measure it here": the clean and spliced-in loss on the first `LIVE_CHARS` held-out characters.
#[component]
fn LiveLoss(d: Arc<LoadedSae>) -> impl IntoView {
    let live = RwSignal::new(Live::Idle);
    let jobs = Jobs::new();
    let chars = d.chars.len().min(LIVE_CHARS);
    let start = move |_| {
        let d = d.clone();
        jobs.spawn("measuring the loss", move |job| measure(job, d, live));
    };
    let start = StoredValue::new(start);
    let again = move |label: &'static str| view! { <button data-testid="measure-loss" on:click=move |e| start.with_value(|s| s(e))>{label}</button> };
    let cancel = move |_| {
        jobs.cancel();
        live.set(Live::Cancelled);
    };
    move || {
        match live.get() {
        Live::Idle => view! {
            <p class="live-loss" data-testid="live-loss" data-state="idle">
                {again("Measure it here")}
                {format!(" recomputes both losses on the first {} held-out characters, in your browser.", fmt_int(chars))}
            </p>
        }
        .into_any(),
        Live::Running { done, total } => view! {
            <p class="live-loss" data-testid="live-loss" data-state="running">
                <button data-testid="cancel-loss" on:click=cancel>"Cancel"</button>
                <progress max=total value=done></progress>
                {format!(" window {done} of {total}…")}
            </p>
        }
        .into_any(),
        Live::Done(t) => view! {
            <p class="live-loss" data-testid="live-loss" data-state="done" data-clean=format!("{:.4}", t.clean_loss()) data-spliced=format!("{:.4}", t.spliced_loss())>
                <strong>{format!("Measured here: {:.3} → {:.3} nats per character", t.clean_loss(), t.spliced_loss())}</strong>
                {live_summary(&t)}
                {again("Again")}
            </p>
        }
        .into_any(),
        Live::Cancelled => view! {
            <p class="live-loss" data-testid="live-loss" data-state="cancelled">"Cancelled. " {again("Measure again")}</p>
        }
        .into_any(),
        Live::Failed(e) => view! {
            <p class="input-error" data-testid="live-loss" data-state="failed" role="alert">{format!("The measurement stopped: {e}")}</p>
        }
        .into_any(),
    }
    }
}

/// The live measurement: per scoring window, the clean forward, the SAE's reconstruction and the spliced
/// forward as three tasks (each well under 50 ms) with the browser given the thread between them.
async fn measure(job: Job, d: Arc<LoadedSae>, live: RwSignal<Live>) {
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
        let mut run = match WindowRun::new(&d.lm.model, &d.sae, window, from) {
            Ok(r) => r,
            Err(e) => return live.set(Live::Failed(e.to_string())),
        };
        // A piece is half a block of the clean or the spliced pass, or the reconstruction in between.
        let frac = k as f32 / total as f32;
        let sliced = job.sliced("measuring the loss", || {
            Ok::<_, LensError>(match run.step(&d.lm.model, &d.sae)? {
                Some(t) => {
                    tally.add(t);
                    None
                }
                None => Some(frac),
            })
        });
        match sliced.await {
            Ok(true) => live.set(Live::Running { done: k + 1, total }),
            Ok(false) => return,
            Err(e) => return live.set(Live::Failed(e.to_string())),
        }
    }
    live.set(Live::Done(tally));
}
