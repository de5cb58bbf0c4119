//! The runs and findings of the cards on features: the Moby-Dick SAE's reconstruction gap, a misleading latent,
//! the L1 sweep, and a polysemantic channel of the MNIST CNN. Every number comes from `crate::app::labs::critiques::sae` and
//! `crate::app::labs::critiques::polysemantic` (plain, tested natively); each run is sliced through the job system.
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::Finding;
use crate::app::core::charts::{Axis, LineChart};
use crate::app::core::export::{images_table, CanvasExport, TableExport};
use crate::app::core::format::{fmt_int, pct};
use crate::app::core::jobs::Job;
use crate::app::core::load::{load_char_sae, load_vision, with_timeout, LoadedSae};
use crate::app::labs::critiques::polysemantic::{mark_clean, pick, read_channel, PolyFinding, LAYER, TOP};
use crate::app::labs::critiques::sae::{
    misleading_latent, score_rows, show_char, show_text, GapFinding, L1Point, L1Sweep, MisleadingLatent, GAP_CHARS,
};
use crate::lens::cnn::model::VisionHook;
use crate::lens::methods::sae::{scored_windows, ActivationRecording, LossTally, ReconTally, SaeTraining, WindowRun};
use crate::lens::methods::units::{polysemanticity, top_examples, ChannelScan};
use crate::lens::LensError;

fn err(e: LensError) -> String {
    e.to_string()
}

async fn load_sae(job: &Job) -> Option<Result<std::sync::Arc<LoadedSae>, String>> {
    job.report("loading the Moby-Dick model and its SAE", 0.0);
    job.wait_for(with_timeout("The Moby-Dick model's SAE", load_char_sae("moby"))).await
}

/// Every scoring window of the first `GAP_CHARS` held-out characters: the clean pass, the reconstruction, the
/// spliced-in pass and the zero-ablated pass, half a block (or 32 positions) per step.
pub async fn run_sae_gap(job: &Job) -> Result<Option<Finding>, String> {
    let Some(d) = load_sae(job).await else { return Ok(None) };
    let d = d?;
    let (model, sae) = (&d.lm.model, &d.sae);
    let text: String = d.chars.iter().take(GAP_CHARS).collect();
    let ids = d.lm.vocab.encode(&text).map_err(err)?;
    let n = model.cfg.n_positions;
    let wins = scored_windows(ids.len(), n);
    let mut losses = LossTally::default();
    let mut stats = ReconTally::new(sae.d_in, sae.d_sae);
    for (k, &(start, from)) in wins.iter().enumerate() {
        let window = &ids[start..(start + n).min(ids.len())];
        let mut run = WindowRun::new(model, sae, window, from).map_err(err)?.with_zero_ablation();
        let frac = k as f32 / wins.len() as f32;
        let ok = job
            .sliced("clean, spliced-in and zero-ablated passes", || {
                Ok::<_, LensError>(match run.step(model, sae)? {
                    Some(t) => {
                        losses.add(t);
                        None
                    }
                    None => Some(frac),
                })
            })
            .await
            .map_err(err)?;
        if !ok {
            return Ok(None);
        }
        stats.merge(run.stats());
    }
    let whole = &d.report["held_out"];
    let shipped = whole["dead"].as_u64().zip(whole["positions"].as_u64());
    Ok(Some(Finding::SaeGap { gap: GapFinding::of(&losses, &stats), shipped }))
}

/// The card's rule over the shipped feature index and the logit effects computed at load.
pub async fn run_sae_latent(job: &Job) -> Result<Option<Finding>, String> {
    let Some(d) = load_sae(job).await else { return Ok(None) };
    let d = d?;
    if !job.pause("reading every latent's top contexts", 0.5).await {
        return Ok(None);
    }
    let found = misleading_latent(&d.index, &d.chars, &d.effects, &d.lm.vocab)
        .ok_or("no latent's top contexts all peak before one character")?;
    Ok(Some(Finding::SaeLatent(found)))
}

/// Records the hook over the first held-out characters, then trains one small SAE per L1 coefficient (one Adam
/// step per piece) and scores it on the characters after them.
pub async fn run_sae_l1(job: &Job) -> Result<Option<Finding>, String> {
    let Some(d) = load_sae(job).await else { return Ok(None) };
    let d = d?;
    let (model, hook, d_in) = (&d.lm.model, d.sae.hook, d.sae.d_in);
    let s = L1Sweep::default();
    let text: String = d.chars.iter().take(s.train_chars + s.test_chars).collect();
    let ids = d.lm.vocab.encode(&text).map_err(err)?;
    // A fifth of the bar for recording, the rest for training and scoring.
    let mut rec = ActivationRecording::new(model, hook, &ids).map_err(err)?;
    let ok = job
        .sliced("recording activations", || Ok::<_, LensError>((!rec.step(model)?).then(|| rec.progress() / 5.0)))
        .await
        .map_err(err)?;
    if !ok {
        return Ok(None);
    }
    let acts = rec.finish();
    let split = (s.train_chars * d_in).min(acts.len());
    let (train, test) = acts.split_at(split);
    let mut points = Vec::new();
    for (k, &l1) in s.l1.iter().enumerate() {
        let mut training = SaeTraining::new(train, d_in, hook, &s.train_config(l1)).map_err(err)?;
        let mut trained = None;
        let mut tally = ReconTally::default();
        let mut next = 0;
        let share = |f: f32| 0.2 + 0.8 * (k as f32 + f) / s.l1.len() as f32;
        let phase = "training an SAE at each L1 coefficient";
        let ok = job
            .sliced(phase, || {
                if !training.done() {
                    training.step(train)?;
                    return Ok::<_, LensError>(Some(share(0.9 * training.progress())));
                }
                if trained.is_none() {
                    let sae = training.finish()?;
                    tally = ReconTally::new(d_in, sae.d_sae);
                    trained = Some(sae);
                }
                let Some(sae) = trained.as_ref() else { return Ok(None) };
                next = score_rows(sae, test, &mut tally, next);
                Ok((next * d_in < test.len()).then(|| share(0.9)))
            })
            .await
            .map_err(err)?;
        if !ok {
            return Ok(None);
        }
        if tally.rows == 0 {
            return Err("the scoring sample is empty".into());
        }
        points.push(L1Point::of(l1, &tally));
    }
    Ok(Some(Finding::SaeL1(points)))
}

/// Scans the shipped digits through conv3, reads every channel's picture, and picks by the card's rule.
pub async fn run_polysemantic(job: &Job) -> Result<Option<Finding>, String> {
    job.report("loading the MNIST CNN", 0.0);
    let Some(v) = job.wait_for(with_timeout("The MNIST CNN", load_vision("mnist-cnn"))).await else {
        return Ok(None);
    };
    let v = v?;
    let atlas = v.atlas.as_ref().map_err(|e| format!("The feature visualizations are missing: {e}"))?;
    let mut scan = ChannelScan::new(VisionHook::Conv(LAYER)).map_err(err)?;
    let total = v.samples.len().max(1);
    let ok = job
        .sliced("running the test digits through conv3", || {
            Ok::<_, LensError>((!scan.step(&v.model, &v.samples)?).then(|| 0.9 * scan.done() as f32 / total as f32))
        })
        .await
        .map_err(err)?;
    if !ok {
        return Ok(None);
    }
    let means = scan.finish();
    let mixes = polysemanticity(&means, &v.samples.labels, TOP).map_err(err)?;
    let mut readings = Vec::with_capacity(mixes.len());
    let ok = job
        .sliced("reading each channel's picture", || {
            let Some(mix) = mixes.get(readings.len()) else { return Ok::<_, LensError>(None) };
            readings.push(read_channel(&v.model, atlas, mix)?);
            Ok(Some(0.9 + 0.1 * readings.len() as f32 / mixes.len() as f32))
        })
        .await
        .map_err(err)?;
    if !ok {
        return Ok(None);
    }
    mark_clean(&mut readings);
    let clean = readings.iter().filter(|r| r.clean).count();
    let r = pick(&readings).ok_or("no channel's picture is clean by the card's rule")?.clone();
    let top: Vec<(usize, f32, u8)> = top_examples(&means, r.channel, TOP)
        .map_err(err)?
        .into_iter()
        .map(|(i, a)| (i, a, v.samples.labels[i]))
        .collect();
    let images = top_images(&v.samples, &top);
    let pixels = atlas.get(LAYER, r.channel).map(|e| e.pixels.clone()).unwrap_or_default();
    let finding = PolyFinding { reading: r, pixels, side: atlas.side, top, clean, channels: readings.len() };
    Ok(Some(Finding::Poly(finding, images)))
}

fn top_images(samples: &crate::lens::cnn::mnist::Samples, top: &[(usize, f32, u8)]) -> Vec<Vec<f32>> {
    top.iter().map(|&(i, _, _)| samples.image(i)).collect()
}

// ------------------------------------------------------------------------------------------------ findings

pub fn gap_table(g: GapFinding, shipped: Option<(u64, u64)>) -> impl IntoView {
    let row = |name: &'static str, loss: f64, note: String| {
        view! {
            <tr data-testid="finding-row" data-pass=name data-loss=format!("{loss:.4}")>
                <th scope="row">{name}</th>
                <td class="num">{format!("{loss:.3}")}</td>
                <td>{note}</td>
            </tr>
        }
    };
    let rise = format!("+{:.1}%", 100.0 * g.rise());
    let shipped_text = shipped.map_or(String::new(), |(dead, positions)| {
        format!(" On all {} held-out characters: {dead}.", fmt_int(positions as usize))
    });
    let summary = format!(
        "FVU {:.3} ({} of the variance explained), L0 {:.1} of {} latents. Loss {rise} with the reconstruction; {} of the loss recovered against zero-ablation. Latents that never fire on these {} characters: {}.{shipped_text}",
        g.fvu,
        pct(g.explained()),
        g.l0,
        g.d_sae,
        pct(g.recovered as f32),
        fmt_int(g.positions),
        g.dead,
    );
    view! {
        <table class="finding" data-testid="finding">
            <caption>{format!("The model's loss on the first {} held-out characters (nats per character), with the activation after block 2 as it is, replaced by the SAE's reconstruction, and set to zero", fmt_int(g.positions))}</caption>
            <thead><tr><th>"activation after block 2"</th><th>"loss"</th><th></th></tr></thead>
            <tbody>
                {row("clean", g.clean, "the model as trained".into())}
                {row("spliced", g.spliced, format!("{rise} on the clean loss"))}
                {row("zero", g.zero_ablated, "the baseline of “loss recovered”".into())}
            </tbody>
        </table>
        <TableExport />
        <p class="small" data-testid="finding-summary" data-fvu=format!("{:.4}", g.fvu) data-l0=format!("{:.2}", g.l0)
            data-rise=format!("{:.4}", g.rise()) data-recovered=format!("{:.4}", g.recovered) data-dead=g.dead.to_string()
            data-positions=g.positions.to_string()>
            {summary}
        </p>
    }
}

pub fn latent_view(l: MisleadingLatent) -> impl IntoView {
    let snippet = |s: &crate::app::labs::critiques::sae::Snippet| {
        view! {
            <tr data-testid="finding-row">
                <td class="sample"><code>{show_text(&s.before)}<mark>{show_char(s.peak)}</mark><strong>{show_text(&s.after)}</strong></code></td>
            </tr>
        }
    };
    let chars = |xs: &[(char, f32)]| {
        xs.iter().map(|(c, e)| format!("{} ({e:+.2})", show_char(*c))).collect::<Vec<_>>().join(", ")
    };
    let summary = format!(
        "Latent {} (of {} whose eight top contexts all come right before one character). Its contexts say “{}” comes next; its direct effect on the logits ranks “{}” {} of {} characters ({:+.3}). It promotes most: {}. It suppresses most: {}.",
        l.latent,
        l.candidates,
        show_char(l.next),
        show_char(l.next),
        l.rank,
        l.vocab,
        l.effect,
        chars(&l.promoted),
        chars(&l.suppressed),
    );
    view! {
        <p class="small muted">{format!("Latent {}'s eight top contexts in the held-out text: the character where it peaks is highlighted, what follows it is in bold.", l.latent)}</p>
        <table class="finding snippets" data-testid="finding">
            <tbody>{l.snippets.iter().map(snippet).collect_view()}</tbody>
        </table>
        <TableExport />
        <p class="small" data-testid="finding-summary" data-latent=l.latent.to_string() data-next=l.next.to_string()
            data-rank=l.rank.to_string() data-vocab=l.vocab.to_string() data-effect=format!("{:.4}", l.effect)>
            {summary}
        </p>
    }
}

pub fn l1_view(points: Vec<L1Point>) -> impl IntoView {
    let s = L1Sweep::default();
    let line: Vec<(f64, f64)> = points.iter().map(|p| (p.l0 as f64, p.fvu as f64)).collect();
    let x_hi = points.iter().map(|p| p.l0 as f64).fold(1.0, f64::max);
    let y_hi = points.iter().map(|p| p.fvu as f64).fold(0.1, f64::max);
    let row = |p: &L1Point| {
        view! {
            <tr data-testid="finding-row" data-l1=p.l1.to_string() data-l0=format!("{:.2}", p.l0)
                data-fvu=format!("{:.4}", p.fvu) data-dead=p.dead.to_string()>
                <th scope="row">{format!("{}", p.l1)}</th>
                <td class="num">{format!("{:.1}", p.l0)}</td>
                <td class="num">{format!("{:.3}", p.fvu)}</td>
                <td class="num">{format!("{} of {}", p.dead, p.d_sae)}</td>
            </tr>
        }
    };
    let holds = crate::app::labs::critiques::sae::trade_off_holds(&points);
    view! {
        <table class="finding" data-testid="finding">
            <caption>{format!("Four SAEs of {} latents, each trained here for {} steps on {} held-out characters, scored on the next {}", s.d_sae, s.steps, fmt_int(s.train_chars), fmt_int(s.test_chars))}</caption>
            <thead><tr><th>"L1 coefficient λ"</th><th>"L0 (active latents)"</th><th>"FVU"</th><th>"dead latents"</th></tr></thead>
            <tbody>{points.iter().map(row).collect_view()}</tbody>
        </table>
        <TableExport />
        <LineChart lines=vec![(line, "blue")] x=Axis::linear(0.0, x_hi, 5).titled("L0: latents active per character")
            y=Axis::linear(0.0, y_hi, 4).titled("FVU") size=(360.0, 200.0)
            label="FVU against L0, one point per L1 coefficient" testid="l1-chart" />
        <p class="small" data-testid="finding-summary" data-holds=holds.to_string()>
            {if holds { "Every larger λ gave a sparser code (lower L0) and a worse reconstruction (higher FVU)." } else { "This run did not order every point: see the table." }}
        </p>
    }
}

/// A grey image on a canvas, one canvas pixel per value (CSS scales it without smoothing), painted once the
/// canvas is on the page.
fn digit(values: Vec<f32>, side: usize, class: &'static str, title: String, label: String) -> impl IntoView {
    let node = NodeRef::<leptos::html::Canvas>::new();
    Effect::new(move |_| {
        let Some(canvas) = node.get() else { return };
        let Some(ctx) = canvas
            .get_context("2d")
            .ok()
            .flatten()
            .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
        else {
            return;
        };
        let mut data = vec![255u8; side * side * 4];
        for (px, &v) in data.chunks_exact_mut(4).zip(&values) {
            let g = (v.clamp(0.0, 1.0) * 255.0) as u8;
            px[..3].copy_from_slice(&[g, g, g]);
        }
        if let Ok(img) =
            web_sys::ImageData::new_with_u8_clamped_array_and_sh(wasm_bindgen::Clamped(&data), side as u32, side as u32)
        {
            let _ = ctx.put_image_data(&img, 0.0, 0.0);
        }
    });
    view! { <canvas node_ref=node class=class width=side height=side title=title.clone() aria-label=title data-label=label></canvas> }
}

pub fn poly_view(f: PolyFinding, images: Vec<Vec<f32>>) -> impl IntoView {
    let r = &f.reading;
    let classes: Vec<String> = f.classes().iter().map(|(c, n)| format!("{c}s: {n}")).collect();
    let summary = format!(
        "conv3 channel {}: its picture is among the smoothest quarter of the layer's and the CNN reads it as a {} with probability {:.2} ({} of the {} channels pass both tests; this one has the most mixed top digits). Its top {} test digits: {}. Digits of the class it reads as: {}.",
        r.channel,
        r.read_as,
        r.prob,
        f.clean,
        f.channels,
        f.top.len(),
        classes.join(", "),
        f.of_read_class(),
    );
    let side = f.side;
    // The pictures' pixels in long form (picture, row, column, value), for the sheet's CSV.
    let mut pictures =
        vec![(format!("feature visualization of conv3 channel {}", r.channel), (side, side), f.pixels.clone())];
    pictures.extend(
        f.top
            .iter()
            .zip(&images)
            .map(|(&(i, _, label), img)| (format!("test digit {i} (a {label})"), (side, side), img.clone())),
    );
    let csv = Callback::new(move |_| {
        Some(images_table(
            "a polysemantic channel: its picture and its top test digits",
            ["picture", "row", "column"],
            &pictures,
        ))
    });
    let examples = f
        .top
        .iter()
        .zip(images)
        .map(|(&(i, a, label), img)| {
            view! {
                <figure class="poly-example" data-testid="finding-row" data-sample=i.to_string() data-class=label.to_string()>
                    {digit(img, side, "poly-digit", format!("test digit {i}: a {label}, mean activation {a:.2}"), format!("#{i}: a {label}"))}
                    <figcaption>{label.to_string()}</figcaption>
                </figure>
            }
        })
        .collect_view();
    view! {
        <div class="poly" data-testid="finding" id="poly-canvases">
            <figure class="poly-featvis">
                {digit(f.pixels.clone(), side, "poly-picture", format!("feature visualization of conv3 channel {}", r.channel), "its picture".into())}
                <figcaption>{format!("feature visualization: read as a {} ({:.2})", r.read_as, r.prob)}</figcaption>
            </figure>
            <div class="poly-examples">
                <p class="small muted">{format!("The {} test digits that excite it most, best first, with their true classes", f.top.len())}</p>
                <div class="poly-grid">{examples}</div>
            </div>
        </div>
        <p class="small" data-testid="finding-summary" data-channel=r.channel.to_string() data-read-as=r.read_as.to_string()
            data-prob=format!("{:.4}", r.prob) data-of-read-class=f.of_read_class().to_string()
            data-classes=r.mix.classes_present.to_string() data-top-share=format!("{:.2}", r.mix.top_share)>
            {summary}
        </p>
        <CanvasExport selector="#poly-canvases" what="polysemantic channel pictures" table=csv />
    }
}
