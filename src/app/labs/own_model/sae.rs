//! An SAE on the opened model (issue #14, item 5): a SAELens folder (`cfg.json`, `sae_weights.safetensors`)
//! checked against the model's hook and width, then, under "Try it", the latents it finds in the text, computed
//! live a few positions per slice.
use std::sync::Arc;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::view::{path_of, read_index, read_pieces};
use super::{latent_trace, top_latents, TryView, MAX_SAE_BYTES};
use crate::app::core::charts::{ink_on, sequential};
use crate::app::core::frame::progress_bar;
use crate::app::core::jobs::{Job, Jobs};
use crate::lens::gpt2::Gpt2Config;
use crate::lens::methods::sae::{active_latents, LmSae, SaeReader, SaelensCfg};

/// How many latents the list shows.
const LISTED: usize = 12;

/// Reads and checks a picked SAELens folder against the model's config. `None` if the job was stopped.
async fn open_sae(files: Vec<web_sys::File>, cfg: &Gpt2Config, job: &Job) -> Option<Result<LmSae, String>> {
    let find = |base: &str| files.iter().find(|f| path_of(f).rsplit(['/', '\\']).next() == Some(base)).cloned();
    let (Some(cfg_file), Some(weights)) = (find("cfg.json"), find("sae_weights.safetensors")) else {
        return Some(Err(
            "an SAE is two files from SAELens: pick its cfg.json and sae_weights.safetensors together".into()
        ));
    };
    let text = match JsFuture::from(cfg_file.text()).await.ok().and_then(|t| t.as_string()) {
        Some(t) => t,
        None => return Some(Err("cfg.json could not be read".into())),
    };
    let sae_cfg = match SaelensCfg::parse(&text).and_then(|c| c.check_against(cfg).map(|_| c)) {
        Ok(c) => c,
        Err(e) => return Some(Err(format!("cfg.json: {e}"))),
    };
    let len = weights.size() as u64;
    if len > MAX_SAE_BYTES {
        return Some(Err(format!(
            "sae_weights.safetensors is {} MB; this page opens SAEs up to {} MB",
            len / 1_000_000,
            MAX_SAE_BYTES / 1_000_000
        )));
    }
    // Read as the model's weights are (`view::read_pieces`): the file is never in memory twice and no step
    // holds the page.
    let name = "sae_weights.safetensors";
    let reader = read_index(&weights, name).await.and_then(|index| {
        SaeReader::new(sae_cfg.hook, sae_cfg.d_in, sae_cfg.d_sae, &index).map_err(|e| format!("{name}: {e}"))
    });
    match reader {
        Ok(r) => read_pieces(&weights, name, r, job, ("reading the SAE", "preparing the encoder")).await,
        Err(e) => Some(Err(e)),
    }
}

/// The SAE's active latents at every row of `x` (`rows × d_in`), a few rows per step. `None` if stopped.
pub async fn encode_rows(sae: &LmSae, x: &[f32], job: &Job) -> Option<Result<Vec<Vec<(u32, f32)>>, String>> {
    let d = sae.d_in;
    let rows = x.len() / d.max(1);
    // About 20M multiply-adds per step: a row of GPT-2 small's 24,576-latent SAEs is 19M.
    let per_step = (20_000_000 / (sae.d_in * sae.d_sae).max(1)).clamp(1, rows.max(1));
    let mut out = Vec::with_capacity(rows);
    let done = job
        .sliced("reading the text with the SAE", || {
            let at = out.len();
            let n = per_step.min(rows - at);
            out.extend(active_latents(sae, &x[at * d..(at + n) * d]));
            Ok::<_, String>((out.len() < rows).then(|| out.len() as f32 / rows as f32))
        })
        .await;
    match done {
        Ok(true) => Some(Ok(out)),
        Ok(false) => None,
        Err(e) => Some(Err(e)),
    }
}

/// The SAE picker, its progress and what was opened.
#[component]
pub fn SaeOpen(sae: RwSignal<Option<Arc<LmSae>>>, cfg: Gpt2Config) -> impl IntoView {
    let jobs = Jobs::new();
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let cfg = StoredValue::new(cfg);
    let on_pick = move |ev: leptos::ev::Event| {
        let input: Option<web_sys::HtmlInputElement> = ev.target().and_then(|t| t.dyn_into().ok());
        let files: Vec<web_sys::File> = input
            .as_ref()
            .and_then(|i| i.files())
            .map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect())
            .unwrap_or_default();
        if let Some(i) = input {
            i.set_value("");
        }
        if files.is_empty() {
            return;
        }
        jobs.spawn("opening the SAE", move |job| async move {
            match open_sae(files, &cfg.get_value(), &job).await {
                Some(Ok(s)) => {
                    sae.set(Some(Arc::new(s)));
                    error.set(None);
                }
                Some(Err(e)) => error.set(Some(e)),
                None => {}
            }
        });
    };
    view! {
        <div class="own-sae" data-testid="sae-open">
            <h4>"An SAE on this model"</h4>
            <p class="muted small">"A sparse autoencoder saved by SAELens: pick its " <code>"cfg.json"</code>
                " and " <code>"sae_weights.safetensors"</code> " together (standard ReLU SAEs, on this model's residual stream, attention or MLP). Its latents on the text then show above."</p>
            <label class="button-like">"Open an SAE…"
                <input type="file" multiple data-testid="pick-sae" class="sr-only" on:change=on_pick />
            </label>
            {progress_bar(jobs, "sae", || {})}
            <div aria-live="polite">
                {move || error.get().map(|e| view! { <p class="input-error" data-testid="sae-error" role="alert">{format!("This SAE could not be opened. {e}")}</p> })}
                {move || sae.get().map(|s| view! {
                    <p data-testid="sae-opened" data-hook=s.hook.to_string() data-d-sae=s.d_sae>
                        "Opened an SAE of " {s.d_sae} " latents on " <code>{s.hook.to_string()}</code> "."
                    </p>
                })}
            </div>
        </div>
    }
}

/// The latents that fire hardest on the text, and where a chosen one fires.
#[component]
pub fn SaeLatents(v: Arc<TryView>) -> impl IntoView {
    let Some((hook, acts)) = v.sae.clone() else { return ().into_any() };
    let top = top_latents(&acts, LISTED);
    let chosen = RwSignal::new(top.first().map(|t| t.0));
    let list = top
        .iter()
        .map(|&(j, a, pos)| {
            let at = v.inputs.get(pos).map(|s| super::show_piece(s)).unwrap_or_default();
            view! {
                <li><button class="latent-pick" data-testid="sae-latent" data-latent=j data-max=format!("{a:.4}") data-pos=pos
                    aria-pressed=move || if chosen.get() == Some(j) { "true" } else { "false" }
                    on:click=move |_| chosen.set(Some(j))>
                    {format!("#{j}: {a:.2} at “{at}”")}
                </button></li>
            }
        })
        .collect_view();
    let inputs = v.inputs.clone();
    let strip = move || {
        let j = chosen.get()?;
        let trace = latent_trace(&acts, j);
        let max = trace.iter().copied().fold(0.0f32, f32::max).max(1e-6);
        let tokens = inputs
            .iter()
            .zip(&trace)
            .map(|(s, &a)| {
                let bg = sequential((a / max).clamp(0.0, 1.0));
                view! {
                    <span class="token" data-testid="sae-token" data-act=format!("{a:.4}") title=format!("{a:.3}")
                        style=format!("background: {bg}; color: {}", ink_on(bg))>{super::show_piece(s)}</span>
                }
            })
            .collect_view();
        Some(view! {
            <p class="small">{format!("Latent #{j} on each token (brighter is stronger; hover for the value):")}</p>
            <div class="token-strip" data-testid="sae-strip" data-latent=j>{tokens}</div>
        })
    };
    let empty = top.is_empty();
    view! {
        <div class="own-sae-latents" data-testid="sae-latents" data-hook=hook.clone()>
            <h4>{format!("The SAE's latents on this text ({hook})")}</h4>
            {empty.then(|| view! { <p class="muted small">"No latent is active anywhere in this text."</p> })}
            <ol class="latent-list">{list}</ol>
            {strip}
        </div>
    }
    .into_any()
}
