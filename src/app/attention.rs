//! The first lab: attention patterns and induction heads on a 2-layer attention-only transformer.
//! Everything recomputes from the typed sequence; the sequence lives in the URL so a link reproduces the view.
use std::sync::Arc;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::charts;
use super::fetch::{load_model, LoadedModel};
use super::shell::replace_hash_soon;
use crate::lens::gpt2::model::per_position_loss;
use crate::lens::gpt2::vocab::Tokenized;
use crate::lens::methods::induction::{head_scores, split_half_losses, HeadScores, TaskSpec};
use crate::lens::rng::Rng;
use crate::routes::section_hash_with;

/// Everything the views need from one forward pass, as plain numbers.
#[derive(Clone, Debug, PartialEq)]
struct LabResult {
    tokens: Vec<u32>,
    words: Vec<String>,
    /// `[layer][head][q][k]`
    patterns: Vec<Vec<Vec<Vec<f32>>>>,
    scores: Vec<Vec<HeadScores>>,
    /// Entry i is the loss of predicting token i + 1.
    loss: Vec<f32>,
    /// Where the second half starts (in words after `<bos>`), and both halves' mean loss.
    half: usize,
    halves: Option<(f32, f32)>,
    exact_repeat: bool,
}

/// Tokenises and runs the model; the error is the inline message the student sees.
fn compute(m: &LoadedModel, text: &str) -> Result<LabResult, String> {
    let tokens = match m.vocab.encode(text) {
        Tokenized::Ok(t) => t,
        Tokenized::Unknown(words) => {
            let w = &words[0];
            let hint = m.vocab.suggestions(w, 4);
            let hint =
                if hint.is_empty() { String::new() } else { format!(" Known words like it: {}.", hint.join(", ")) };
            let more = if words.len() > 1 { format!(" (and {} more unknown)", words.len() - 1) } else { String::new() };
            return Err(format!("“{w}”{more} is not in the model's vocabulary of {} words.{hint}", m.vocab.len() - 1));
        }
    };
    if tokens.len() == 1 {
        return Err("Type a few words (or press “Random repeat”): the sequence is empty.".into());
    }
    let ctx = m.model.cfg.n_positions;
    if tokens.len() > ctx {
        return Err(format!(
            "That is {} words, but the model reads at most {} (plus <bos>). Shorten the sequence.",
            tokens.len() - 1,
            ctx - 1
        ));
    }
    let (logits, cache) = m.model.run_with_cache(&tokens).map_err(|e| e.to_string())?;
    let mut patterns = Vec::with_capacity(m.model.cfg.n_layer);
    for l in 0..m.model.cfg.n_layer {
        let t = cache.get(crate::lens::Hook::Pattern(l)).ok_or("missing pattern")?;
        patterns.push(t.get(0).and_then(|t| t.to_vec3::<f32>()).map_err(|e| e.to_string())?);
    }
    let scores = patterns.iter().map(|layer| layer.iter().map(|p| head_scores(p, &tokens)).collect()).collect();
    let loss = per_position_loss(&logits, &tokens).map_err(|e| e.to_string())?;
    let n_words = tokens.len() - 1;
    let half = n_words / 2;
    let exact_repeat = n_words % 2 == 0 && half > 0 && tokens[1..=half] == tokens[half + 1..];
    let words = tokens.iter().map(|&t| m.vocab.word(t).to_string()).collect();
    Ok(LabResult {
        tokens,
        words,
        patterns,
        scores,
        halves: split_half_losses(&loss, n_words),
        loss,
        half,
        exact_repeat,
    })
}

/// A random half of `len` words, repeated: the induction model's home ground.
pub(super) fn random_repeat(m: &LoadedModel, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let spec = TaskSpec::new(m.model.cfg.vocab_size, m.model.cfg.n_positions);
    let len = rng.range(8, 20.min(spec.max_repeat));
    m.vocab.decode(&spec.repeated_sequence(&mut rng, len))
}

fn best_induction_head(scores: &[Vec<HeadScores>]) -> (usize, usize) {
    let mut best = (scores.len().saturating_sub(1), 0, f32::MIN);
    for (l, row) in scores.iter().enumerate() {
        for (h, s) in row.iter().enumerate() {
            if s.induction > best.2 {
                best = (l, h, s.induction);
            }
        }
    }
    (best.0, best.1)
}

/// Heat colour for a weight in [0, 1], from the theme's `--heat-rgb`. Read once: `getComputedStyle` forces a
/// style recalculation of the whole page, which cost more than the model itself when done on every update.
fn heat_rgb() -> (u8, u8, u8) {
    thread_local! {
        static RGB: std::cell::OnceCell<(u8, u8, u8)> = const { std::cell::OnceCell::new() };
    }
    RGB.with(|c| {
        *c.get_or_init(|| {
            let doc = super::document();
            let css = web_sys::window()
                .and_then(|w| doc.document_element().and_then(|e| w.get_computed_style(&e).ok().flatten()))
                .and_then(|s| s.get_property_value("--heat-rgb").ok())
                .unwrap_or_default();
            let parts: Vec<u8> = css.split(',').filter_map(|p| p.trim().parse().ok()).collect();
            match parts[..] {
                [r, g, b] => (r, g, b),
                _ => (37, 99, 235),
            }
        })
    })
}

/// Paints a pattern one pixel per (q, k) cell; CSS scales it up without smoothing. Cells above the diagonal
/// (keys a query may not see) are painted `masked`, so the causal triangle stays visible.
fn draw_pattern(canvas: &web_sys::HtmlCanvasElement, pattern: &[Vec<f32>], rgb: (u8, u8, u8), masked: (u8, u8, u8)) {
    let n = pattern.len() as u32;
    if n == 0 {
        return;
    }
    if canvas.width() != n {
        canvas.set_width(n);
        canvas.set_height(n);
    }
    let Some(ctx) =
        canvas.get_context("2d").ok().flatten().and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
    else {
        return;
    };
    let mut data = vec![0u8; (n * n * 4) as usize];
    for (q, row) in pattern.iter().enumerate() {
        for (k, &w) in row.iter().enumerate() {
            let i = (q * n as usize + k) * 4;
            let px = if k > q {
                masked
            } else {
                // Blend from white so that zero reads as paper, one as full colour.
                let a = w.clamp(0.0, 1.0);
                let mix = |c: u8| (255.0 - a * (255.0 - c as f32)) as u8;
                (mix(rgb.0), mix(rgb.1), mix(rgb.2))
            };
            data[i] = px.0;
            data[i + 1] = px.1;
            data[i + 2] = px.2;
            data[i + 3] = 255;
        }
    }
    if let Ok(img) = web_sys::ImageData::new_with_u8_clamped_array_and_sh(wasm_bindgen::Clamped(&data), n, n) {
        let _ = ctx.put_image_data(&img, 0.0, 0.0);
    }
}

/// The (q, k) cell under a point at fraction (fx, fy) of an n x n pattern, if it is one a query can see.
fn cell_at(fx: f64, fy: f64, n: usize) -> Option<(usize, usize)> {
    if !(0.0..1.0).contains(&fx) || !(0.0..1.0).contains(&fy) {
        return None;
    }
    let (q, k) = ((fy * n as f64) as usize, (fx * n as f64) as usize);
    (k <= q && q < n).then_some((q, k))
}

fn fmt_loss(x: f32) -> String {
    format!("{x:.2}")
}

#[component]
pub fn AttentionLab(query: Vec<(String, String)>) -> impl IntoView {
    let from_url = query.iter().find(|(k, _)| k == "seq").map(|(_, v)| v.clone());
    let state: RwSignal<Option<Result<Arc<LoadedModel>, String>>> = RwSignal::new(None);
    leptos::task::spawn_local(async move { state.set(Some(load_model("induction").await)) });

    let text = RwSignal::new(from_url.clone().unwrap_or_default());
    let last_good: RwSignal<Option<Arc<LabResult>>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let rev = RwSignal::new(0u32);
    let selected: RwSignal<Option<(usize, usize)>> = RwSignal::new(None);
    let hover_tok: RwSignal<Option<usize>> = RwSignal::new(None);
    let hover_cell: RwSignal<Option<(usize, usize)>> = RwSignal::new(None);
    let tip_pos = RwSignal::new((0.0f64, 0.0f64));
    let random_seed = RwSignal::new(super::now_ms() as u64);
    let last_ms = RwSignal::new(0.0f64);

    let model = move || state.get().and_then(|r| r.ok());

    // Without a sequence in the URL, start from a random repeat so the first view already shows induction.
    Effect::new(move |_| {
        if let Some(m) = model() {
            if text.get_untracked().is_empty() && from_url.is_none() {
                text.set(random_repeat(&m, 2024));
            }
        }
    });

    // Recompute whenever the text or the model changes. A bad input keeps the last good result on screen.
    Effect::new(move |_| {
        let t = text.get();
        let Some(m) = model() else { return };
        let t0 = super::now_ms();
        match compute(&m, &t) {
            Ok(r) => {
                if selected.get_untracked().is_none() {
                    selected.set(Some(best_induction_head(&r.scores)));
                }
                last_good.set(Some(Arc::new(r)));
                error.set(None);
                rev.update(|r| *r += 1);
            }
            Err(e) => error.set(Some(e)),
        }
        last_ms.set(super::now_ms() - t0);
        replace_hash_soon(&section_hash_with("attention", &[("seq", t.trim())]));
    });

    let sel = move || selected.get().unwrap_or((1, 0));
    let cur_pattern = move || -> Option<Vec<Vec<f32>>> {
        let r = last_good.get()?;
        let (l, h) = sel();
        r.patterns.get(l)?.get(h).cloned()
    };

    // Head-grid thumbnails are canvases redrawn after each result.
    Effect::new(move |_| {
        let Some(r) = last_good.get() else { return };
        let rgb = heat_rgb();
        let doc = super::document();
        for (l, layer) in r.patterns.iter().enumerate() {
            for (h, p) in layer.iter().enumerate() {
                if let Some(c) = doc
                    .get_element_by_id(&format!("thumb-{l}-{h}"))
                    .and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok())
                {
                    draw_pattern(&c, p, rgb, (255, 255, 255));
                }
            }
        }
    });

    // The selected head's pattern, painted on a canvas: a few thousand SVG rects cost tens of ms per update.
    let cur_n = Memo::new(move |_| last_good.get().map(|r| r.tokens.len()).unwrap_or(0));
    Effect::new(move |_| {
        let Some(p) = cur_pattern() else { return };
        if let Some(c) = super::document()
            .get_element_by_id("pattern-canvas")
            .and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok())
        {
            draw_pattern(&c, &p, heat_rgb(), (241, 245, 249));
        }
    });

    let on_random = move |_| {
        if let Some(m) = model() {
            random_seed.update(|s| *s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
            text.set(random_repeat(&m, random_seed.get_untracked()));
        }
    };

    let token_class = move |pos: usize| -> (bool, bool, f32, bool) {
        // (attended by the hovered token, attends to the hovered token, weight for shading, highlighted by a cell hover)
        let Some(r) = last_good.get() else { return (false, false, 0.0, false) };
        let (l, h) = sel();
        let Some(p) = r.patterns.get(l).and_then(|x| x.get(h)) else { return (false, false, 0.0, false) };
        if let Some((q, k)) = hover_cell.get() {
            return (false, false, 0.0, pos == q || pos == k);
        }
        match hover_tok.get() {
            Some(q) if q < p.len() && pos <= q => {
                let w = p[q][pos];
                (w >= 0.1, false, w, false)
            }
            Some(k) if k < p.len() && pos > k => {
                let w = p[pos][k];
                (false, w >= 0.1, w, false)
            }
            _ => (false, false, 0.0, false),
        }
    };

    let token_strip = move || {
        last_good.get().map(|r| {
            r.words
                .iter()
                .enumerate()
                .map(|(pos, w)| {
                    let w = w.clone();
                    let is_bos = pos == 0;
                    let second = !is_bos && pos > r.half && r.half > 0;
                    view! {
                        <span class="token" data-testid="token" data-pos=pos
                            class:bos=is_bos class:second-half=second
                            class:attended=move || token_class(pos).0
                            class:attending=move || token_class(pos).1
                            class:linked=move || token_class(pos).3
                            style=move || { let w = token_class(pos).2; if w > 0.0 { format!("--w: {w:.3}") } else { String::new() } }
                            on:mouseenter=move |_| hover_tok.set(Some(pos))
                            on:mouseleave=move |_| hover_tok.set(None)
                            title=move || format!("position {pos}")>
                            {w}
                        </span>
                    }
                })
                .collect_view()
        })
    };

    let head_grid = move || {
        let Some(m) = model() else { return None };
        let (nl, nh) = (m.model.cfg.n_layer, m.model.cfg.n_head);
        Some(
            (0..nl)
                .map(|l| {
                    let cells = (0..nh)
                        .map(|h| {
                            let score = move || {
                                last_good.get().and_then(|r| r.scores.get(l).and_then(|x| x.get(h)).copied()).unwrap_or_default()
                            };
                            view! {
                                <button class="head-cell" data-testid="head-cell" data-layer=l data-head=h
                                    aria-pressed=move || (sel() == (l, h)).to_string()
                                    title=move || { let s = score(); format!("L{l}H{h}: previous-token {:.2}, induction {:.2}, duplicate-token {:.2}", s.previous_token, s.induction, s.duplicate_token) }
                                    on:click=move |_| selected.set(Some((l, h)))>
                                    <canvas id=format!("thumb-{l}-{h}") class="thumb" width="1" height="1"></canvas>
                                    <span class="head-name">{format!("L{l}H{h}")}</span>
                                    <span class="head-tags">
                                        {move || { let s = score(); let mut tags = vec![];
                                            if s.previous_token >= 0.5 { tags.push(view! { <span class="tag prev">"prev"</span> }); }
                                            if s.induction >= 0.5 { tags.push(view! { <span class="tag ind">"induction"</span> }); }
                                            if s.duplicate_token >= 0.5 { tags.push(view! { <span class="tag dup">"dup"</span> }); }
                                            tags }}
                                    </span>
                                </button>
                            }
                        })
                        .collect_view();
                    view! { <div class="head-row"><span class="layer-label">{format!("layer {l}")}</span>{cells}</div> }
                })
                .collect_view(),
        )
    };

    let tooltip_text = move || -> Option<String> {
        let (q, k) = hover_cell.get()?;
        let r = last_good.get()?;
        let (l, h) = sel();
        let w = *r.patterns.get(l)?.get(h)?.get(q)?.get(k)?;
        Some(format!("L{l}H{h} · query {q} “{}” → key {k} “{}”: {w:.3}", r.words.get(q)?, r.words.get(k)?))
    };
    let on_pattern_move = move |ev: web_sys::MouseEvent| {
        let Some(el) = ev.current_target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return };
        let r = el.get_bounding_client_rect();
        let (x, y) = (ev.client_x() as f64 - r.left(), ev.client_y() as f64 - r.top());
        tip_pos.set((x, y));
        let n = cur_n.get_untracked();
        // Cells are measured on the canvas itself, inside the frame's border.
        let c =
            super::document().get_element_by_id("pattern-canvas").map(|c| c.get_bounding_client_rect()).unwrap_or(r);
        let (cx, cy) = (ev.client_x() as f64 - c.left(), ev.client_y() as f64 - c.top());
        let cell = if c.width() > 0.0 && c.height() > 0.0 { cell_at(cx / c.width(), cy / c.height(), n) } else { None };
        if hover_cell.get_untracked() != cell {
            hover_cell.set(cell);
        }
    };

    let loss_summary = move || {
        last_good.get().map(|r| {
            let (a, b) = r.halves.unwrap_or((f32::NAN, f32::NAN));
            let label = if r.exact_repeat { "repeated half" } else { "second half" };
            let ratio = if a > 0.0 && b.is_finite() { format!("{:.0}%", 100.0 * b / a) } else { "–".into() };
            view! {
                <p class="loss-summary" data-testid="loss-summary" data-first-half=format!("{a:.4}") data-repeat-half=format!("{b:.4}")>
                    "Mean loss, first half: " <strong>{fmt_loss(a)}</strong> " nats · " {label} ": "
                    <strong class="second">{fmt_loss(b)}</strong> " nats (" {ratio} " of the first half)"
                    {(!r.exact_repeat).then(|| view! { <span class="muted">" — the halves are not an exact repeat"</span> })}
                </p>
            }
        })
    };

    let curve = move || {
        let m = model()?;
        let c = m.training.as_ref()?.get("curve")?.as_array()?;
        let pts: Vec<(f64, f64)> = c.iter().filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?))).collect();
        (!pts.is_empty()).then(|| charts::curve_svg(&pts, (560, 220)))
    };

    view! {
        <div class="attention-lab" class:unloaded=move || model().is_none()>
            {move || match state.get() {
                None => view! { <p class="loading" data-testid="lab-loading"><span class="spinner"></span>"Loading the induction model…"</p> }.into_any(),
                Some(Err(e)) => view! {
                    <div class="load-error" data-testid="load-error" role="alert">
                        <h3>"The model could not be loaded"</h3><p>{e}</p>
                        <p class="muted">"Rebuild the site (see README.md) or check that the files under models/induction/ are intact, then reload."</p>
                    </div>
                }.into_any(),
                Some(Ok(_)) => ().into_any(),
            }}
            <div class="lab-body">
            <div class="input-row">
                <label for="seq-input" class="input-label">"Sequence (words from the model's vocabulary, separated by spaces)"</label>
                <textarea id="seq-input" data-testid="seq-input" rows="3" spellcheck="false"
                    aria-invalid=move || error.get().is_some().to_string()
                    prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))></textarea>
                <div class="input-actions">
                    <button data-testid="random-btn" class="primary" on:click=on_random disabled=move || model().is_none()>"Random repeat"</button>
                    <span class="muted" data-testid="lab-status" data-rev=move || rev.get()
                        data-ms=move || format!("{:.2}", last_ms.get())>
                        {move || last_good.get().map(|r| format!("{} tokens · recomputed in {:.1} ms", r.tokens.len(), last_ms.get()))}
                    </span>
                </div>
                {move || error.get().map(|e| view! { <p class="input-error" data-testid="input-error" role="alert">{e}<span class="muted">" Showing the last good sequence."</span></p> })}
            </div>

            <div class="token-strip" data-testid="token-strip" aria-label="tokens">{token_strip}</div>
            <p class="hint muted">"Hover a token: blue marks what it attends to in the selected head, orange what attends to it."</p>

            <div class="lab-grid">
                <section class="panel">
                    <h3>"Heads"</h3>
                    <div class="head-grid" data-testid="head-grid">{head_grid}</div>
                </section>
                <section class="panel pattern-panel">
                    <h3 data-testid="pattern-title">{move || { let (l, h) = sel(); format!("Attention pattern of L{l}H{h}") }}</h3>
                    <div class="pattern-wrap">
                        <span class="axis-y">"query (reading) ↓"</span>
                        <div class="pattern-large" data-testid="pattern-large" data-n=move || cur_n.get()
                            on:mousemove=on_pattern_move on:mouseleave=move |_| hover_cell.set(None)>
                            <canvas id="pattern-canvas" class="pattern-canvas" role="img"
                                aria-label=move || { let (l, h) = sel(); format!("attention pattern of L{l}H{h}: rows are queries, columns are keys") }></canvas>
                            {move || hover_cell.get().map(|(q, k)| {
                                let n = cur_n.get().max(1) as f64;
                                let style = format!("left: {:.4}%; top: {:.4}%; width: {:.4}%; height: {:.4}%", 100.0 * k as f64 / n, 100.0 * q as f64 / n, 100.0 / n, 100.0 / n);
                                view! { <div class="pattern-hl" data-q=q data-k=k style=style></div> }
                            })}
                        </div>
                        <span class="axis-x">"key (attended to) →"</span>
                        <div class="pattern-tooltip" data-testid="pattern-tooltip" role="tooltip"
                            class:visible=move || hover_cell.get().is_some()
                            style=move || { let (x, y) = tip_pos.get(); format!("left: {:.0}px; top: {:.0}px", x + 14.0, y + 14.0) }>
                            {tooltip_text}
                        </div>
                    </div>
                </section>
            </div>

            <section class="panel">
                <h3>"Head scores"</h3>
                <p class="legend">
                    <span class="key prev"></span>"previous-token " <span class="key ind"></span>"induction " <span class="key dup"></span>"duplicate-token"
                    <span class="muted">" · mean attention on the key each pattern predicts"</span>
                </p>
                <div class="chart" data-testid="head-scores"
                    inner_html=move || last_good.get().map(|r| charts::head_scores_svg(&r.scores, sel(), (640, 240))).unwrap_or_default()></div>
            </section>

            <section class="panel">
                <h3>"Loss at each position"</h3>
                {loss_summary}
                <div class="chart" data-testid="loss-chart"
                    inner_html=move || last_good.get().map(|r| charts::loss_svg(&r.loss, r.half, r.halves, (640, 220))).unwrap_or_default()></div>
            </section>

            <details class="panel">
                <summary>"How this model was trained"</summary>
                <p>"Two attention-only layers of four heads, d_model 64, trained from a fixed seed on sequences of random words in which several segments, mostly 2 to 8 words long, reappear at random later offsets. Copied words count fully in the loss and fresh words at a tenth, so the model learns to copy early yet stays unsure where nothing repeats. The sharp drop in the curve is the induction circuit forming."</p>
                <div class="chart" data-testid="training-curve" inner_html=move || curve().unwrap_or_default()></div>
            </details>
            </div>
        </div>
    }
}
