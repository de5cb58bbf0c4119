//! The 9.5 lab: a column of cards. Each card shows its question, takes the student's prediction, and only
//! then offers its run; the reading (the card's reveal) appears once the run has finished. A run is a job of
//! its own (progress, Cancel), loading its model when first run.
use leptos::prelude::*;

mod features;

use super::scorecard::{
    acdc_score, attention_score, lens_probabilities, lens_tokens, logit_lens_score, patching_score, probe_score,
    probe_sequences, sae_match_from, sae_rows, sae_score, sae_training, Method, PrevProbeData, SaeTally, Score,
    Verdict, ACDC_TAU,
};
use super::{
    acdc_runs, add_correlations, best_selectivity, head_difference, head_findings, layer_name, metric_pair,
    metric_rows, probe_rows, random_margin, saliency_rows, steering_pair, sweep_settings, tau_steps, top_heads,
    tuned_lens_settings, AcdcFinding, Card, CritiquesState, HeadFinding, MetricRow, ProbeRow, SaliencyRow, TauStep,
    ACDC_RUNS, GLASSBOX_SEED, PROBE_CONCEPT, PROBE_POSITIONS, RANDOM_SEED, SALIENCY_IMAGES, SALIENCY_SEED,
};
use crate::app::core::browser::{document, follow_citation, replace_hash_soon};
use crate::app::core::export::TableExport;
use crate::app::core::format::pct;
use crate::app::core::frame::{progress_bar, LabFrame, UrlNotes};
use crate::app::core::jobs::{Job, Jobs};
use crate::app::core::load::{load_char_model, load_model, load_vision, with_timeout};
use crate::app::core::predict::{PredictChoices, Predictions};
use crate::app::core::probes::{train_control_probes_on, train_probes_on, Net};
use crate::app::core::url::{section_hash_with, UrlState};
use crate::content;
use crate::lens::methods::acdc::{AcdcEvent, AcdcMetric, AcdcRun, KlPositions};
use crate::lens::methods::attribution::{SaliencyMethod, SanityCorrelations, Target as SaliencyTarget};
use crate::lens::methods::glassbox;
use crate::lens::methods::ioi::chapter_input;
use crate::lens::methods::patching::{Direction, Metric, PatchResult, PatchSweep, Target};
use crate::lens::methods::probe::Concept;
use crate::lens::methods::probe::FitSettings;
use crate::lens::methods::steering::{ContextMeans, SteeringSweep, SweepPoint, DEFAULT_PROMPT};
use crate::lens::methods::tuned_lens::{LensComparison, TunedLens, TunedLensRecording, TunedLensTraining};
use crate::lens::{LensError, Transformer};

/// What a finished run found, one variant per card.
#[derive(Clone, Debug, PartialEq)]
enum Finding {
    Attention(Vec<HeadFinding>),
    Metric(Vec<MetricRow>),
    Probe {
        rows: Vec<ProbeRow>,
        baseline: f32,
    },
    Saliency(Vec<SaliencyRow>),
    Lens(Vec<LensComparison>),
    Sweep(Vec<SweepPoint>),
    Acdc(Vec<AcdcFinding>),
    SaeGap {
        gap: super::sae::GapFinding,
        shipped: Option<(u64, u64)>,
    },
    SaeLatent(super::sae::MisleadingLatent),
    SaeL1(Vec<super::sae::L1Point>),
    /// The channel, and its top examples' images.
    Poly(super::polysemantic::PolyFinding, Vec<Vec<f32>>),
    Scorecard(Vec<Score>),
}

#[component]
pub fn CritiquesLab(query: Vec<(String, String)>) -> impl IntoView {
    let (state, problems) = CritiquesState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    let focus = RwSignal::new(state.card);
    // The link names a card: keep it in the URL and bring the card into view once drawn.
    Effect::new(move |_| {
        let s = CritiquesState { card: focus.get() };
        replace_hash_soon(&section_hash_with("9.5", &s.to_query()));
    });
    if let Some(card) = state.card {
        request_animation_frame(move || {
            if let Some(el) = document().get_element_by_id(&format!("card-{}", card.key())) {
                el.scroll_into_view();
            }
        });
    }
    let rev = RwSignal::new(0u32);
    view! {
        <LabFrame notes=notes model="moby, mnist-cnn (and random and toy models made in this page)">
            <div class="critiques" data-testid="critiques-lab">
                <p class="muted small" data-testid="lab-status" data-rev=move || rev.get()>
                    "Commit to a prediction on a card, then run its experiment."
                </p>
                {Card::ALL.into_iter().map(|card| view! { <CardView card=card focus=focus rev=rev /> }).collect_view()}
            </div>
        </LabFrame>
    }
}

/// One card: question and prediction, then Run, progress, the finding and the reveal.
#[component]
fn CardView(card: Card, focus: RwSignal<Option<Card>>, rev: RwSignal<u32>) -> impl IntoView {
    let p = content::predict(&card.predict_id()).expect("every card's question is in content/9.5.md (a native test)");
    let store = Predictions::get();
    let committed = move || store.answer(p.id).is_some();
    let jobs = Jobs::new();
    let finding = RwSignal::new(None::<Finding>);
    let error = RwSignal::new(None::<String>);
    let revealed = Signal::derive(move || committed() && finding.with(Option::is_some));
    let run = move |_| {
        focus.set(Some(card));
        error.set(None);
        jobs.spawn("starting", move |job| async move {
            // Each card's run behind its own boxed future: awaited inline in one `match`, the twelve runs' state
            // machines became one 80 KB poll function (with the web build's LTO), compiled in one long task on
            // the first click of any card.
            use futures::future::FutureExt;
            let run: futures::future::LocalBoxFuture<'_, _> = match card {
                Card::Attention => run_attention(&job).boxed_local(),
                Card::Metric => run_metric(&job).boxed_local(),
                Card::RandomProbe => run_probe(&job).boxed_local(),
                Card::Saliency => run_saliency(&job).boxed_local(),
                Card::TunedLens => run_tuned_lens(&job).boxed_local(),
                Card::Steering => run_steering(&job).boxed_local(),
                Card::AcdcMetric => run_acdc(&job).boxed_local(),
                Card::SaeGap => features::run_sae_gap(&job).boxed_local(),
                Card::SaeLatent => features::run_sae_latent(&job).boxed_local(),
                Card::SaeL1 => features::run_sae_l1(&job).boxed_local(),
                Card::Polysemantic => features::run_polysemantic(&job).boxed_local(),
                Card::Scorecard => run_scorecard(&job).boxed_local(),
            };
            let out = run.await;
            if !job.alive() {
                return;
            }
            match out {
                Ok(Some(f)) => {
                    finding.set(Some(f));
                    rev.update(|r| *r += 1);
                }
                Ok(None) => {}
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let state = move || {
        if finding.with(Option::is_some) {
            "revealed"
        } else if committed() {
            "committed"
        } else {
            "open"
        }
    };
    view! {
        <article class="critique-card" id=format!("card-{}", card.key()) data-testid="critique-card"
            data-card=card.key() data-state=state class:focused=move || focus.get() == Some(card) on:click=follow_citation>
            <header class="critique-head">
                <h3>{card.title()}</h3>
                <span class="badge model-badge">{card.model()}</span>
            </header>
            <PredictChoices p=p revealed=revealed />
            {move || committed().then(|| view! {
                <p class="critique-run">
                    <button class="primary" data-testid="critique-run" disabled=move || jobs.busy() on:click=run>
                        {move || if finding.with(Option::is_some) { "Run it again" } else { "Run the experiment" }}
                    </button>
                </p>
            })}
            {progress_bar(jobs, "critique", || {})}
            {move || error.get().map(|e| view! { <p class="input-error" role="alert" data-testid="critique-error">{e}</p> })}
            {move || finding.get().map(finding_view)}
            {move || revealed.get().then(|| view! {
                <div class="predict-reveal" data-testid="predict-reveal" inner_html=p.reveal></div>
            })}
        </article>
    }
}

/// A head-output patching sweep in slices; `None` when stopped.
async fn sweep(
    job: &Job,
    model: &Transformer,
    input: &crate::lens::methods::patching::PatchInput,
    direction: Direction,
    phase: &'static str,
) -> Result<Option<PatchResult>, String> {
    let mut s = PatchSweep::new(model, input, Target::HeadOut, direction).map_err(|e| e.to_string())?;
    let n = model.cfg.n_layer * model.cfg.n_head;
    let mut done = 0;
    let ok = job
        .sliced(phase, || {
            let finished = s.step(model, 1)?;
            done += 1;
            Ok::<_, crate::lens::LensError>((!finished).then_some(done as f32 / n as f32))
        })
        .await
        .map_err(|e| e.to_string())?;
    if !ok {
        return Ok(None);
    }
    s.finish().map(Some).map_err(|e| e.to_string())
}

async fn run_attention(job: &Job) -> Result<Option<Finding>, String> {
    job.report("loading the glassbox model", 0.0);
    let Some(m) = job.wait_for(with_timeout("The glassbox model", load_model("glassbox"))).await else {
        return Ok(None);
    };
    let m = m?;
    let input = glassbox::patch_input(glassbox::PATCH_HALF, GLASSBOX_SEED);
    let Some(noising) = sweep(job, &m.model, &input, Direction::Noising, "patching each head").await? else {
        return Ok(None);
    };
    let found = head_findings(&m.model, &input.clean, &noising).map_err(|e| e.to_string())?;
    Ok(Some(Finding::Attention(found)))
}

async fn run_metric(job: &Job) -> Result<Option<Finding>, String> {
    job.report("loading the IOI model", 0.0);
    let Some(m) = job.wait_for(with_timeout("The IOI model", load_model("ioi"))).await else { return Ok(None) };
    let m = m?;
    let input = chapter_input(&m.vocab).map_err(|e| e.to_string())?;
    let Some(denoising) = sweep(job, &m.model, &input, Direction::Denoising, "denoising each head").await? else {
        return Ok(None);
    };
    let Some(noising) = sweep(job, &m.model, &input, Direction::Noising, "noising each head").await? else {
        return Ok(None);
    };
    Ok(Some(Finding::Metric(metric_rows(&denoising, &noising).map_err(|e| e.to_string())?)))
}

async fn run_probe(job: &Job) -> Result<Option<Finding>, String> {
    job.report("loading the Moby-Dick model", 0.0);
    let Some(m) = job.wait_for(with_timeout("The Moby-Dick model", load_char_model("moby"))).await else {
        return Ok(None);
    };
    let m = m?;
    let concept = Concept::Builtin(PROBE_CONCEPT);
    let layers: Vec<usize> = (0..=m.model.cfg.n_layer).collect();
    // Each network's probes on the concept, then on its control task (the same recording).
    let mut reports = Vec::new();
    for net in [Net::Random(RANDOM_SEED), Net::Trained] {
        let Some(real) = train_probes_on(&m, net, PROBE_POSITIONS, &concept, &layers, false, job).await? else {
            return Ok(None);
        };
        let Some(control) = train_control_probes_on(&m, net, PROBE_POSITIONS, &concept, &layers, job).await? else {
            return Ok(None);
        };
        reports.push((real, control));
    }
    let [(random, random_control), (trained, trained_control)] = <[_; 2]>::try_from(reports).expect("two networks");
    let (rows, baseline) = probe_rows(&random, &trained, &random_control, &trained_control);
    Ok(Some(Finding::Probe { rows, baseline }))
}

async fn run_saliency(job: &Job) -> Result<Option<Finding>, String> {
    job.report("loading the MNIST CNN", 0.0);
    let Some(v) = job.wait_for(with_timeout("The MNIST CNN", load_vision("mnist-cnn"))).await else { return Ok(None) };
    let v = v?;
    let images = SALIENCY_IMAGES.min(v.samples.labels.len());
    let mut means = [Vec::new(), Vec::new()];
    for (k, method) in [SaliencyMethod::Gradient, SaliencyMethod::GradientXInput].into_iter().enumerate() {
        for i in 0..images {
            let target = SaliencyTarget::Class(v.samples.labels[i] as usize);
            let mut run = SanityCorrelations::new(&v.model, &v.samples.image(i), target, method, SALIENCY_SEED)
                .map_err(|e| e.to_string())?;
            let done = (k * images + i) as f32;
            let ok = job
                .sliced("randomising the layers", || {
                    let finished = run.step()?;
                    let frac = (done + run.progress()) / (2 * images) as f32;
                    Ok::<_, LensError>((!finished).then_some(frac))
                })
                .await
                .map_err(|e| e.to_string())?;
            if !ok {
                return Ok(None);
            }
            add_correlations(&mut means[k], run.correlations(), images);
        }
    }
    Ok(Some(Finding::Saliency(saliency_rows(&means[0], &means[1]))))
}

async fn run_tuned_lens(job: &Job) -> Result<Option<Finding>, String> {
    job.report("loading the Moby-Dick model", 0.0);
    let Some(m) = job.wait_for(with_timeout("The Moby-Dick model", load_char_model("moby"))).await else {
        return Ok(None);
    };
    let m = m?;
    let model = &m.model;
    let settings = tuned_lens_settings();
    let err = |e: LensError| e.to_string();
    // A third of the progress bar for recording, a half for training, the rest for scoring.
    let mut rec = TunedLensRecording::new(model, &m.vocab, &m.held_out, &settings).map_err(err)?;
    let ok = job
        .sliced("recording the residual stream", || {
            let finished = rec.step(model)?;
            Ok::<_, LensError>((!finished).then(|| rec.progress(model) / 3.0))
        })
        .await
        .map_err(err)?;
    if !ok {
        return Ok(None);
    }
    let data = rec.finish(model).map_err(err)?;
    let mut training = TunedLensTraining::new(model, &data, &settings).map_err(err)?;
    let ok = job
        .sliced("training the translators", || {
            let finished = training.step()?;
            Ok::<_, LensError>((!finished).then(|| 1.0 / 3.0 + training.progress() / 2.0))
        })
        .await
        .map_err(err)?;
    if !ok {
        return Ok(None);
    }
    let tuned = training.finish().map_err(err)?;
    let logit = TunedLens::identity(model).map_err(err)?;
    // One lens at one layer per step: each reads every held-out position.
    let n = model.cfg.n_layer + 1;
    let mut scores = Vec::new();
    let ok = job
        .sliced("scoring both lenses", || {
            let k = scores.len();
            let lens = if k % 2 == 0 { &logit } else { &tuned };
            scores.push(lens.layer_score(model, &data, k / 2)?);
            Ok::<_, LensError>((scores.len() < 2 * n).then(|| 5.0 / 6.0 + scores.len() as f32 / (12 * n) as f32))
        })
        .await
        .map_err(err)?;
    if !ok {
        return Ok(None);
    }
    let rows = scores.chunks(2).enumerate().map(|(layer, s)| LensComparison { layer, logit: s[0], tuned: s[1] });
    Ok(Some(Finding::Lens(rows.collect())))
}

async fn run_acdc(job: &Job) -> Result<Option<Finding>, String> {
    job.report("loading the IOI model", 0.0);
    let Some(m) = job.wait_for(with_timeout("The IOI model", load_model("ioi"))).await else { return Ok(None) };
    let m = m?;
    let input = chapter_input(&m.vocab).map_err(|e| e.to_string())?;
    let runs = acdc_runs();
    let mut found = Vec::new();
    for (k, &(metric, tau)) in runs.iter().enumerate() {
        let mut run =
            AcdcRun::with_metric(&m.model, &input, tau, KlPositions::Last, metric).map_err(|e| e.to_string())?;
        let phase = if metric == AcdcMetric::Kl { "ACDC by KL divergence" } else { "ACDC by logit difference" };
        let ok = job
            .sliced(phase, || {
                let finished = run.step()? == AcdcEvent::Finished;
                Ok::<_, LensError>((!finished).then(|| (k as f32 + run.progress()) / runs.len() as f32))
            })
            .await
            .map_err(|e| e.to_string())?;
        if !ok {
            return Ok(None);
        }
        found.push(AcdcFinding::of(&run.finish().map_err(|e| e.to_string())?));
    }
    Ok(Some(Finding::Acdc(found)))
}

async fn run_steering(job: &Job) -> Result<Option<Finding>, String> {
    job.report("loading the Moby-Dick model", 0.0);
    let Some(m) = job.wait_for(with_timeout("The Moby-Dick model", load_char_model("moby"))).await else {
        return Ok(None);
    };
    let m = m?;
    let model = &m.model;
    let err = |e: LensError| e.to_string();
    // The steering vector first (a tenth of the bar), one block of one context per step, then the sweep.
    let pair = steering_pair();
    let (positive, negative) = pair.contexts(&m.vocab).map_err(err)?;
    let mut means = ContextMeans::new(model, &positive, &negative, pair.hook()).map_err(err)?;
    let ok = job
        .sliced("the steering vector", || {
            let finished = means.advance(model)?;
            Ok::<_, LensError>((!finished).then(|| means.progress() / 10.0))
        })
        .await
        .map_err(err)?;
    if !ok {
        return Ok(None);
    }
    let vector = means.finish().map_err(err)?;
    let mut sweep =
        SteeringSweep::new(model, &m.vocab, &vector, pair.measure, DEFAULT_PROMPT, &sweep_settings()).map_err(err)?;
    let ok = job
        .sliced("generating at each coefficient", || {
            let finished = sweep.step(model)?;
            Ok::<_, LensError>((!finished).then(|| 0.1 + 0.9 * sweep.progress()))
        })
        .await
        .map_err(err)?;
    if !ok {
        return Ok(None);
    }
    Ok(Some(Finding::Sweep(sweep.finish().map_err(err)?)))
}

fn finding_view(f: Finding) -> AnyView {
    match f {
        Finding::Attention(heads) => attention_table(heads).into_any(),
        Finding::Metric(rows) => metric_table(rows).into_any(),
        Finding::Probe { rows, baseline } => probe_table(rows, baseline).into_any(),
        Finding::Saliency(rows) => saliency_table(rows).into_any(),
        Finding::Lens(rows) => lens_table(rows).into_any(),
        Finding::Sweep(points) => sweep_table(points).into_any(),
        Finding::Acdc(runs) => acdc_table(runs).into_any(),
        Finding::SaeGap { gap, shipped } => features::gap_table(gap, shipped).into_any(),
        Finding::SaeLatent(l) => features::latent_view(l).into_any(),
        Finding::SaeL1(points) => features::l1_view(points).into_any(),
        Finding::Poly(f, images) => features::poly_view(f, images).into_any(),
        Finding::Scorecard(scores) => scorecard_table(scores).into_any(),
    }
}

fn acdc_table(runs: Vec<AcdcFinding>) -> impl IntoView {
    let (only_a, only_b) = metric_pair(&runs).map(|[a, b]| head_difference(a, b)).unwrap_or_default();
    let steps = tau_steps(&runs);
    let row = |r: AcdcFinding| {
        let ld = r.logit_diff.map_or("–".to_string(), |v| format!("{v:.2}"));
        let pair = ACDC_RUNS.contains(&(r.metric, r.tau));
        view! {
            <tr data-testid="finding-row" data-metric=r.metric.to_string() data-tau=r.tau.to_string()
                data-edges=r.edges.to_string() class:top=pair>
                <th scope="row">{format!("{}, τ = {}", r.metric, r.tau)}</th>
                <td class="num">{r.edges}</td>
                <td>{r.heads.join(", ")}</td>
                <td class="num">{format!("{:.2}", r.kl)}</td>
                <td class="num">{ld}</td>
            </tr>
        }
    };
    let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ").replace("->", "→") };
    let step = move |s: TauStep| {
        view! {
            <tr data-testid="tau-step" data-metric=s.metric.to_string() data-dropped=s.dropped.len().to_string()
                data-added=s.added.len().to_string()>
                <th scope="row">{format!("{}: {} → {}", short_metric(s.metric), s.from, s.to)}</th>
                <td>{list(&s.dropped)}</td>
                <td>{list(&s.added)}</td>
            </tr>
        }
    };
    let (a, b) = (ACDC_RUNS[0], ACDC_RUNS[1]);
    let summary = format!(
        "At the highlighted thresholds (τ = {} and {}): only by {}: {}. Only by {}: {}.",
        a.1,
        b.1,
        a.0,
        list(&only_a),
        b.0,
        list(&only_b)
    );
    view! {
        <table class="finding" data-testid="finding">
            <caption>"ACDC on the chapter's sentence with each metric at three thresholds: the edges kept, the heads in the circuit, and how the circuit alone does (KL divergence from the model in nats; logit difference, 1 = the model's). The two runs compared below are highlighted."</caption>
            <thead><tr><th>"metric"</th><th>"edges"</th><th>"heads"</th><th>"KL"</th><th>"logit diff."</th></tr></thead>
            <tbody>{runs.into_iter().map(row).collect_view()}</tbody>
        </table>
        <TableExport />
        <table class="finding" data-testid="finding-tau">
            <caption>"What raising τ changes: the edges each step drops, and any it keeps that the lower τ had dropped"</caption>
            <thead><tr><th>"τ"</th><th>"edges dropped"</th><th>"added"</th></tr></thead>
            <tbody>{steps.into_iter().map(step).collect_view()}</tbody>
        </table>
        <TableExport />
        <p class="small" data-testid="finding-summary" data-only-kl=only_a.join(",") data-only-ld=only_b.join(",")>{summary}</p>
    }
}

/// A metric's name in the narrow column of the τ steps.
fn short_metric(m: AcdcMetric) -> &'static str {
    match m {
        AcdcMetric::Kl => "KL",
        AcdcMetric::LogitDiff => "logit diff.",
    }
}

fn sweep_table(points: Vec<SweepPoint>) -> impl IntoView {
    let plain = points.first().map_or(f32::NAN, |p| p.loss);
    let row = |p: SweepPoint| {
        let sample: String = p.text.chars().take(48).map(|c| if c == '\n' { '⏎' } else { c }).collect();
        view! {
            <tr data-testid="finding-row" data-coef=p.coef.to_string() data-rate=format!("{:.3}", p.target_rate)
                data-loss=format!("{:.3}", p.loss)>
                <th scope="row">{format!("{}", p.coef)}</th>
                <td class="num">{pct(p.target_rate)}</td>
                <td class="num">{format!("{:.2}", p.loss)}</td>
                <td class="sample"><code>{format!("{sample}…")}</code></td>
            </tr>
        }
    };
    view! {
        <table class="finding" data-testid="finding">
            <caption>{format!("“{}” after block 0, 120 characters at each coefficient: the share of capitals, and the unsteered model's loss on the text (nats per character; {plain:.2} unsteered)", steering_pair().name)}</caption>
            <thead><tr><th>"coefficient"</th><th>"capitals"</th><th>"loss"</th><th>"the text begins"</th></tr></thead>
            <tbody>{points.into_iter().map(row).collect_view()}</tbody>
        </table>
        <TableExport />
    }
}

fn saliency_table(rows: Vec<SaliencyRow>) -> impl IntoView {
    let row = |r: SaliencyRow| {
        view! {
            <tr data-testid="finding-row" data-level=r.level.clone()>
                <th scope="row">{format!("down to {}", r.level)}</th>
                <td class="num">{format!("{:.2}", r.gradient)}</td>
                <td class="num">{format!("{:.2}", r.gradient_x_input)}</td>
            </tr>
        }
    };
    let last = rows.last().map(|r| (r.gradient, r.gradient_x_input)).unwrap_or_default();
    view! {
        <table class="finding" data-testid="finding">
            <caption>{format!("Rank correlation with the trained model's map, mean over {SALIENCY_IMAGES} digits, as the layers are randomised from the top down (1 = the same map)")}</caption>
            <thead><tr><th>"layers randomised"</th><th>"gradient"</th><th>"gradient × input"</th></tr></thead>
            <tbody>{rows.into_iter().map(row).collect_view()}</tbody>
        </table>
        <TableExport />
        <p class="small" data-testid="finding-summary" data-gradient=format!("{:.3}", last.0) data-gxi=format!("{:.3}", last.1)>
            {format!("With every layer random: gradient {:.2}, gradient × input {:.2}.", last.0, last.1)}
        </p>
    }
}

fn lens_table(rows: Vec<LensComparison>) -> impl IntoView {
    let first = rows.first().map(|r| (r.logit.top1, r.tuned.top1)).unwrap_or_default();
    let row = |r: LensComparison| {
        view! {
            <tr data-testid="finding-row" data-layer=r.layer.to_string()>
                <th scope="row">{layer_name(r.layer)}</th>
                <td class="num">{pct(r.logit.top1)}</td>
                <td class="num">{pct(r.tuned.top1)}</td>
                <td class="num">{format!("{:.2}", r.logit.kl)}</td>
                <td class="num">{format!("{:.2}", r.tuned.kl)}</td>
            </tr>
        }
    };
    view! {
        <table class="finding" data-testid="finding">
            <caption>"On held-out text: how often each lens's top guess is the model's final one, and its KL divergence from the final distribution (nats)"</caption>
            <thead>
                <tr><th></th><th colspan="2">"agrees with the model"</th><th colspan="2">"KL from the model"</th></tr>
                <tr><th>"layer"</th><th>"logit lens"</th><th>"tuned lens"</th><th>"logit lens"</th><th>"tuned lens"</th></tr>
            </thead>
            <tbody>{rows.into_iter().map(row).collect_view()}</tbody>
        </table>
        <TableExport />
        <p class="small" data-testid="finding-summary" data-logit=format!("{:.3}", first.0) data-tuned=format!("{:.3}", first.1)>
            {format!("At the embedding the logit lens agrees with the model {}, the tuned lens {}.", pct(first.0), pct(first.1))}
        </p>
    }
}

fn attention_table(heads: Vec<HeadFinding>) -> impl IntoView {
    let row = |h: HeadFinding| {
        let (kind, score) = h.pattern();
        view! {
            <tr data-testid="finding-row" data-head=format!("{}.{}", h.layer, h.head)
                class:busy=h.looks_busy() class:matters=h.matters()>
                <th scope="row">{h.name()}</th>
                <td>{format!("{kind} {score:.2}")}</td>
                <td class="num">{pct(h.lost)}</td>
                <td>{h.role.name()}</td>
            </tr>
        }
    };
    view! {
        <table class="finding" data-testid="finding">
            <caption>"Each head: its attention pattern on a repeated sequence, and the share of the answer lost when its output is patched from an unrelated sequence"</caption>
            <thead><tr><th>"head"</th><th>"pattern (best detector score)"</th><th>"answer lost"</th><th>"built to be"</th></tr></thead>
            <tbody>{heads.into_iter().map(row).collect_view()}</tbody>
        </table>
        <TableExport />
    }
}

fn metric_table(rows: Vec<MetricRow>) -> impl IntoView {
    let top = top_heads(&rows);
    let mark = move |k: usize, r: &MetricRow| top[k] == (r.layer, r.head);
    let row = move |r: MetricRow| {
        let cell = move |k: usize, v: f32| view! { <td class="num" class:top=mark(k, &r)>{format!("{v:.2}")}</td> };
        view! {
            <tr data-testid="finding-row" data-head=format!("{}.{}", r.layer, r.head)>
                <th scope="row">{format!("L{}H{}", r.layer, r.head)}</th>
                {cell(0, r.denoise_ld)}{cell(1, r.denoise_prob)}{cell(2, r.noise_ld)}{cell(3, r.noise_prob)}
            </tr>
        }
    };
    let names: Vec<String> = top.iter().map(|(l, h)| format!("L{l}H{h}")).collect();
    view! {
        <table class="finding" data-testid="finding">
            <caption>"Head-output patching on the chapter's sentence. Denoising: 1 = the clean answer restored. Noising: 0 = the answer broken. The most important head of each column is outlined."</caption>
            <thead>
                <tr><th></th><th colspan="2">"denoising"</th><th colspan="2">"noising"</th></tr>
                <tr><th>"head"</th><th>"logit diff."</th><th>"probability"</th><th>"logit diff."</th><th>"probability"</th></tr>
            </thead>
            <tbody>{rows.into_iter().map(row).collect_view()}</tbody>
        </table>
        <TableExport />
        <p class="small" data-testid="finding-summary">
            {format!("Most important head: {} and {} when denoising, {} and {} when noising.", names[0], names[1], names[2], names[3])}
        </p>
    }
}

fn probe_table(rows: Vec<ProbeRow>, baseline: f32) -> impl IntoView {
    let margin = random_margin(&rows, baseline);
    let (sel_random, sel_trained) = best_selectivity(&rows);
    let points = |v: f32| format!("{:+.1}", 100.0 * v);
    let row = move |r: ProbeRow| {
        view! {
            <tr data-testid="finding-row" data-layer=r.layer.to_string()
                data-sel-random=format!("{:.3}", r.random_selectivity()) data-sel-trained=format!("{:.3}", r.trained_selectivity())>
                <th scope="row">{layer_name(r.layer)}</th>
                <td class="num">{pct(r.random)}</td>
                <td class="num">{points(r.random_selectivity())}</td>
                <td class="num">{pct(r.trained)}</td>
                <td class="num">{points(r.trained_selectivity())}</td>
            </tr>
        }
    };
    view! {
        <table class="finding" data-testid="finding">
            <caption>"Test accuracy of a linear probe for “the current character is a letter”, layer by layer, and its selectivity: that accuracy minus the same probe's accuracy on a control task (a fixed random label for each character), in points"</caption>
            <thead>
                <tr><th></th><th colspan="2">"random network"</th><th colspan="2">"trained model"</th></tr>
                <tr><th>"layer"</th><th>"accuracy"</th><th>"selectivity"</th><th>"accuracy"</th><th>"selectivity"</th></tr>
            </thead>
            <tbody>{rows.into_iter().map(row).collect_view()}</tbody>
        </table>
        <TableExport />
        <p class="small" data-testid="finding-summary" data-margin=format!("{margin:.1}")
            data-sel-random=format!("{sel_random:.1}") data-sel-trained=format!("{sel_trained:.1}")>
            {format!("Always giving the more common answer (“a letter”) scores {}. The random network's best probe beats that by {margin:.1} points. Best selectivity: random network {sel_random:+.1} points, trained model {sel_trained:+.1}.", pct(baseline))}
        </p>
    }
}

// ---------------------------------------------------------------------------------------------------------
// The glassbox scorecard

async fn run_scorecard(job: &Job) -> Result<Option<Finding>, String> {
    job.report("loading the glassbox model", 0.0);
    let Some(m) = job.wait_for(with_timeout("The glassbox model", load_model("glassbox"))).await else {
        return Ok(None);
    };
    let m = m?;
    let model = &m.model;
    let err = |e: LensError| e.to_string();
    // Patching each head both ways (attention patterns are read off the clean run alongside).
    let input = glassbox::patch_input(glassbox::PATCH_HALF, GLASSBOX_SEED);
    let Some(noising) = sweep(job, model, &input, Direction::Noising, "patching each head (noising)").await? else {
        return Ok(None);
    };
    let Some(denoising) = sweep(job, model, &input, Direction::Denoising, "patching each head (denoising)").await?
    else {
        return Ok(None);
    };
    let heads = head_findings(model, &input.clean, &noising).map_err(err)?;
    let grid = |r: &PatchResult| r.grid(Metric::LogitDiff).map(|g| g.rows()).map_err(err);
    let mut scores = vec![
        attention_score(&heads),
        patching_score(Method::Noising, &grid(&noising)?),
        patching_score(Method::Denoising, &grid(&denoising)?),
    ];
    // ACDC, an edge per step.
    let mut run = AcdcRun::with_positions(model, &input, ACDC_TAU, glassbox::repeat_positions(&input)).map_err(err)?;
    let ok = job
        .sliced("ACDC", || {
            let finished = run.step()? == AcdcEvent::Finished;
            Ok::<_, LensError>((!finished).then(|| run.progress()))
        })
        .await
        .map_err(err)?;
    if !ok {
        return Ok(None);
    }
    scores.push(acdc_score(&run.finish().map_err(err)?));
    // The logit lens: one forward pass of 21 positions.
    if !job.pause("the logit lens", 0.0).await {
        return Ok(None);
    }
    scores.push(logit_lens_score(&lens_probabilities(model, &lens_tokens()).map_err(err)?));
    // The probe: record a sequence per step, then fit each layer's probe a few iterations per step.
    let seqs = probe_sequences();
    let (mut data, mut recorded) = (PrevProbeData::default(), 0);
    let ok = job
        .sliced("recording for the probe", || {
            data.record(model, recorded, &seqs[recorded])?;
            recorded += 1;
            Ok::<_, LensError>((recorded < seqs.len()).then(|| recorded as f32 / seqs.len() as f32))
        })
        .await
        .map_err(err)?;
    if !ok {
        return Ok(None);
    }
    let layers = model.cfg.n_layer + 1;
    let iterations = FitSettings::default().iterations;
    let (mut accuracies, mut fit) = (Vec::new(), None);
    let ok = job
        .sliced("training the probes", || {
            let layer = accuracies.len();
            match fit.as_mut() {
                None => fit = Some(data.fit(layer)?),
                Some(f) => {
                    f.run(10);
                    if f.iterations() >= iterations {
                        accuracies.push(data.accuracy(layer, &f.probe()));
                        fit = None;
                    }
                }
            }
            Ok::<_, LensError>((accuracies.len() < layers).then(|| accuracies.len() as f32 / layers as f32))
        })
        .await
        .map_err(err)?;
    if !ok {
        return Ok(None);
    }
    scores.push(probe_score(&accuracies, data.baseline()));
    // The SAE on the probe's recording after block 0, a step of Adam per slice step.
    let rows = sae_rows(&data);
    let mut sae = sae_training(&rows, data.d_model).map_err(err)?;
    let ok = job
        .sliced("training the sparse autoencoder", || {
            sae.step(&rows)?;
            Ok::<_, LensError>((!sae.done()).then(|| sae.progress()))
        })
        .await
        .map_err(err)?;
    if !ok {
        return Ok(None);
    }
    let sae = sae.finish().map_err(err)?;
    let mut tally = SaeTally::default();
    let ok = job
        .sliced("scoring the latents", || Ok::<_, LensError>((!tally.step(&sae, &rows)).then_some(1.0)))
        .await
        .map_err(err)?;
    if !ok {
        return Ok(None);
    }
    scores.push(sae_score(&sae_match_from(&sae, &rows, &tally)));
    Ok(Some(Finding::Scorecard(scores)))
}

fn scorecard_table(scores: Vec<Score>) -> impl IntoView {
    let count = |v: Verdict| scores.iter().filter(|s| s.verdict == v).count();
    let summary = format!(
        "Recovers: {}. Misses: {}. Gets wrong: {}.",
        count(Verdict::Recovers),
        count(Verdict::Misses),
        count(Verdict::GetsWrong)
    );
    let verdicts =
        scores.iter().map(|s| format!("{}:{}", s.method.key(), s.verdict.name().replace(' ', "-"))).collect::<Vec<_>>();
    let row = |s: Score| {
        let verdict = s.verdict.name().replace(' ', "-");
        view! {
            <tr data-testid="finding-row" data-method=s.method.key() data-verdict=verdict.clone()>
                <th scope="row">{s.method.name()}</th>
                <td>{s.claim}<br /><span class="muted small">{s.numbers}</span></td>
                <td>{s.truth}</td>
                <td class=format!("verdict verdict-{verdict}")>{s.verdict.name()}</td>
            </tr>
        }
    };
    view! {
        <table class="finding scorecard" data-testid="finding">
            <caption>"Each method run on the glassbox model: what it claims (with the numbers behind it), what the model was built to do, and the verdict"</caption>
            <thead><tr><th>"method"</th><th>"claims"</th><th>"known answer"</th><th>"verdict"</th></tr></thead>
            <tbody>{scores.into_iter().map(row).collect_view()}</tbody>
        </table>
        <TableExport />
        <p class="small" data-testid="finding-summary" data-verdicts=verdicts.join(",")>{summary}</p>
    }
}
