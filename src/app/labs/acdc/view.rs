//! The ACDC lab (9.4): ACDC prunes the model's graph edge by edge while the drawing follows, the edge being
//! tried highlighted, removed edges fading out; then the circuit it found, its KL and faithfulness, and its
//! heads with links to where each is shown on its own.
//!
//! One edge is one `AcdcRun::step` (a pass from its receiver on, a few ms); the run goes through
//! `Job::sliced`, so the drawing advances a few edges per slice and Cancel stops it at once.
//!
//! On a model opened in this tab (`core::opened`), the two prompts are typed and cut by its tokenizer, the KL is
//! measured at the last position, and faithfulness is read on the clean run's top guess against the corrupted
//! run's; a graph too big to get through (`MAX_OWN_EDGES`) is refused before any work.
use std::collections::HashSet;
use std::sync::Arc;

use leptos::prelude::*;

use super::layout::{Layout, BOX_H, BOX_W, WIDTH};
use super::{
    check_own_prompts, circuit_table, default_tau, edge_look, edge_text, head_links, head_name, induction_input,
    ioi_input, kl_positions, node_label, slider_of_tau, tau_of_slider, tau_text, AcdcState, Pruning, Tried,
    LOG_TAU_MAX, LOG_TAU_MIN, LOG_TAU_STEP,
};
use crate::app::core::browser::{now_ms, reduced_motion, replace_hash_soon};
use crate::app::core::export::figure_with_exports;
use crate::app::core::format::sentence;
use crate::app::core::frame::{progress_bar, LabFrame, UrlNotes};
use crate::app::core::jobs::{Job, Jobs};
use crate::app::core::load::{LoadedModel, TaskModels};
use crate::app::core::models::{own_not_open, TaskModel};
use crate::app::core::opened::{opened, OwnModel};
use crate::app::core::own_text::show_piece;
use crate::app::core::url::{section_hash_with, UrlState};
use crate::lens::methods::acdc::{AcdcEvent, AcdcGraph, AcdcRun, Circuit, Edge, KlPositions, Node, Qkv};
use crate::lens::methods::patching::PatchInput;
use crate::lens::{LensError, Transformer};

/// A finished run.
#[derive(Clone, Debug, PartialEq)]
struct Outcome {
    /// The task model it ran on; `None` for the opened model.
    which: Option<TaskModel>,
    circuit: Circuit,
    /// On the opened model: the tokens faithfulness is read on (the clean run's top guess, the corrupted run's).
    answers: Option<(String, String)>,
    /// The clean and corrupted prompts, for the heads' links (see `head_links`).
    prompts: (String, String),
    ms: f64,
}

/// What the panels share: the controls' values, the pruning in progress and what the last run found.
#[derive(Clone, Copy)]
struct Acdc {
    /// The model opened in this tab, if any, and whether the lab is on it.
    opened: StoredValue<Option<Arc<OwnModel>>>,
    own: RwSignal<bool>,
    which: RwSignal<TaskModel>,
    tau: RwSignal<f32>,
    clean: RwSignal<String>,
    corrupted: RwSignal<String>,
    seed: RwSignal<u64>,
    watch: RwSignal<bool>,
    pruning: RwSignal<Option<Pruning>>,
    outcome: RwSignal<Option<Outcome>>,
    error: RwSignal<Option<String>>,
    rev: RwSignal<u32>,
}

impl Acdc {
    fn url_state(self) -> AcdcState {
        AcdcState {
            own: self.own.get_untracked(),
            which: self.which.get_untracked(),
            tau: self.tau.get_untracked(),
            clean: self.clean.get_untracked(),
            corrupted: self.corrupted.get_untracked(),
            seed: self.seed.get_untracked(),
            watch: self.watch.get_untracked(),
        }
    }
}

/// The model a run reads: a task model's, or the opened one.
enum Held {
    Task(Arc<LoadedModel>),
    Own(Arc<OwnModel>),
}

impl Held {
    fn model(&self) -> &Transformer {
        match self {
            Held::Task(m) => &m.model,
            Held::Own(o) => &o.model,
        }
    }
}

#[component]
pub fn AcdcLab(query: Vec<(String, String)>) -> impl IntoView {
    let (mut url, problems) = AcdcState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    let own_model = opened();
    if url.own && own_model.is_none() {
        notes.add(own_not_open(TaskModel::Ioi));
        url = AcdcState::default();
    }
    let st = Acdc {
        opened: StoredValue::new(own_model),
        own: RwSignal::new(url.own),
        which: RwSignal::new(url.which),
        tau: RwSignal::new(url.tau),
        clean: RwSignal::new(url.clean),
        corrupted: RwSignal::new(url.corrupted),
        seed: RwSignal::new(url.seed),
        watch: RwSignal::new(super::watch_at_start(
            url.watch,
            query.iter().any(|(k, _)| k == "watch"),
            reduced_motion(),
        )),
        pruning: RwSignal::new(None),
        outcome: RwSignal::new(None),
        error: RwSignal::new(None),
        rev: RwSignal::new(0),
    };
    let models = TaskModels::new(st.which);
    let model = move |w: TaskModel| models.of(w);
    let jobs = Jobs::new();

    let start = move || {
        let state = st.url_state();
        if state.own {
            let Some(o) = st.opened.get_value() else { return };
            st.error.set(None);
            replace_hash_soon(&section_hash_with("9.4", &state.to_query()));
            jobs.spawn("pruning edges", move |job| run_own(job, o, state, st));
            return;
        }
        let w = st.which.get_untracked();
        let Some(m) = model(w).get_untracked() else { return };
        let cfg = &m.model.cfg;
        // The prompts are checked before any work, so a bad one keeps the last graph.
        let input = match w {
            TaskModel::Ioi => ioi_input(&m.vocab, cfg.n_positions, &state.clean, &state.corrupted),
            TaskModel::Induction => Ok(induction_input(cfg.vocab_size, cfg.n_positions, state.seed)),
        };
        let input = match input {
            Ok(i) => i,
            Err(e) => return st.error.set(Some(format!("{e} The last graph stays on screen."))),
        };
        st.error.set(None);
        replace_hash_soon(&section_hash_with("9.4", &state.to_query()));
        // What a head's link carries: the IOI prompts as typed, the induction sequence's words.
        let prompts = match w {
            TaskModel::Ioi => (state.clean.clone(), state.corrupted.clone()),
            TaskModel::Induction => (m.vocab.decode(&input.clean), m.vocab.decode(&input.corrupted)),
        };
        let how = (state.tau, state.watch, kl_positions(w));
        jobs.spawn("pruning edges", move |job| run(job, Held::Task(m), Some(w), input, (prompts, None), how, st));
    };
    let cancel = move || st.error.set(Some("Cancelled: the drawing stops where ACDC was.".into()));

    // The lab opens on a run, and switching model runs again once that model is there (the opened one is).
    Effect::new(move |before: Option<(bool, TaskModel, bool)>| {
        let own = st.own.get();
        let now = (own, st.which.get(), own || model(st.which.get()).get().is_some());
        if now.2 && before != Some(now) {
            start();
        }
        now
    });
    // The JSON's own part: the last run's circuit in the engine's terms, with the prompts it ran on.
    let numbers = Callback::new(move |_| {
        st.outcome.with_untracked(|o| {
            let o = o.as_ref()?;
            Some(
                serde_json::json!({ "circuit": o.circuit, "clean": o.prompts.0, "corrupted": o.prompts.1, "ms": o.ms }),
            )
        })
    });

    view! {
        <LabFrame notes=notes model=Signal::derive(move || model_name(st)) numbers=numbers>
        <div class="acdc-lab" data-testid="acdc-lab">
            {move || (!st.own.get()).then(|| model(st.which.get()).status())}
            <div class="lab-body">
                <section class="panel acdc-controls">
                    <h3>"ACDC"</h3>
                    <Controls st=st start=start busy=Signal::derive(move || jobs.busy()) />
                    {progress_bar(jobs, "acdc", cancel)}
                    {move || st.error.get().map(|e| view! { <p class="input-error" data-testid="input-error" role="status">{e}</p> })}
                </section>
                // The graph right under the controls, so the pruning is in view while it runs (on a projector too).
                <section class="panel acdc-graph-panel" data-testid="acdc-panel">
                    <Graph st=st />
                </section>
                <section class="panel acdc-result">
                    <Summary st=st />
                    <p class="muted small" data-testid="lab-status" role="status" data-rev=move || st.rev.get()>
                        {move || st.outcome.get().map(|o| format!("Last run: {} edges tried in {:.1} s.", o.circuit.total_edges, o.ms / 1000.0))}
                    </p>
                    <EdgeLog st=st />
                </section>
            </div>
        </div>
        </LabFrame>
    }
}

/// The name the frame shows: the task model's folder, or the opened model's name.
fn model_name(st: Acdc) -> String {
    match (st.own.get(), st.opened.get_value()) {
        (true, Some(o)) => o.name.clone(),
        _ => st.which.get().folder().to_string(),
    }
}

/// One run on the opened model: both prompts through its tokenizer's worker and checked, the tokens that
/// faithfulness is read on from a pass over each, then ACDC as on ours.
async fn run_own(job: Job, o: Arc<OwnModel>, s: AcdcState, st: Acdc) {
    let fail = move |e: String| {
        st.error.try_set(Some(format!("{} The last graph stays on screen.", sentence(&e))));
    };
    let mut ids: [Vec<u32>; 2] = Default::default();
    for (k, text) in [s.clean.clone(), s.corrupted.clone()].into_iter().enumerate() {
        match o.encode(text, &job, "encoding the prompts").await {
            None => return,
            Some(Ok(input)) => ids[k] = input.ids,
            Some(Err(e)) => return fail(e),
        }
    }
    let model = &o.model;
    let [clean, corrupted] = ids;
    if let Err(e) = check_own_prompts(&clean, &corrupted, AcdcGraph::of(model).edges().len()) {
        return fail(e);
    }
    // The clean run's top guess and the corrupted run's: the pair the logit difference is read on.
    let top = |t: &[u32]| -> Result<u32, LensError> {
        let logits: Vec<f32> = model.logits(t)?.flatten_all()?.to_vec1()?; // [pos * vocab]
        let last = &logits[logits.len() - model.cfg.vocab_size..];
        Ok(last.iter().enumerate().fold(0, |b, (i, x)| if *x > last[b] { i } else { b }) as u32)
    };
    let answers = match top(&clean).and_then(|a| Ok((a, top(&corrupted)?))) {
        Ok(a) => a,
        Err(e) => return fail(e.to_string()),
    };
    let piece = |t: u32| show_piece(o.pieces.get(t as usize).map_or("?", |p| p.as_str()));
    let shown = (piece(answers.0), piece(answers.1));
    let input = PatchInput::new(clean, corrupted, answers.0, answers.1);
    let how = (s.tau, s.watch, KlPositions::Last);
    run(job, Held::Own(o), None, input, ((s.clean, s.corrupted), Some(shown)), how, st).await;
}

/// One run: ACDC stepped edge by edge in slices, the drawing updated at every step, then the circuit.
async fn run(
    job: Job,
    held: Held,
    which: Option<TaskModel>,
    input: PatchInput,
    (prompts, answers): ((String, String), Option<(String, String)>),
    (tau, watch, positions): (f32, bool, KlPositions),
    st: Acdc,
) {
    if !job.pause("pruning edges", 0.0).await {
        return;
    }
    let t0 = now_ms();
    let fail = move |e: String| {
        st.error.try_set(Some(format!("{}. The last graph stays on screen.", sentence(&e))));
    };
    let mut acdc = match AcdcRun::with_positions(held.model(), &input, tau, positions) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    st.pruning.set(Some(Pruning::new(acdc.graph())));
    let mut step = || {
        let event = acdc.step()?;
        if event == AcdcEvent::Finished {
            return Ok(None);
        }
        st.pruning.try_update(|p| p.as_mut().map(|p| p.apply(&event)));
        Ok(Some(acdc.progress()))
    };
    let stepped: Result<bool, LensError> = if watch {
        // One edge (or one skipped receiver) per frame: a few seconds for the IOI graph's 193 edges.
        loop {
            match step() {
                Ok(Some(frac)) => {
                    if !(job.report("pruning edges", frac) && job.frame().await) {
                        break Ok(false);
                    }
                }
                Ok(None) => break Ok(job.alive()),
                Err(e) => break Err(e),
            }
        }
    } else {
        job.sliced("pruning edges", step).await
    };
    match stepped {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => return fail(e.to_string()),
    }
    let circuit = match acdc.finish() {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    st.outcome.set(Some(Outcome { which, circuit, answers, prompts, ms: now_ms() - t0 }));
    st.rev.update(|r| *r += 1);
}

/// The model switch, τ (reruns when let go), and the prompts (typed for IOI, drawn for induction).
#[component]
fn Controls(st: Acdc, start: impl Fn() + Copy + Send + Sync + 'static, busy: Signal<bool>) -> impl IntoView {
    let pick = move |w: TaskModel| {
        // Coming back from the opened model, the IOI prompts start again from the chapter's.
        if st.own.get_untracked() {
            st.clean.set(super::CHAPTER_PROMPT.into());
            st.corrupted.set(super::DEFAULT_CORRUPTED.into());
            st.own.set(false);
        }
        st.which.set(w);
        st.tau.set(default_tau(w));
    };
    let radio = move |w: TaskModel, label: &'static str| {
        view! {
            <label><input type="radio" name="acdc-model" data-testid=format!("acdc-model-{}", w.folder())
                prop:checked=move || !st.own.get() && st.which.get() == w on:change=move |_| pick(w) />{label}</label>
        }
    };
    // The opened model, offered only in the tab that opened it; it starts from its own prompts and τ.
    let own_radio = st.opened.get_value().map(|o| {
        let pick_own = move |_| {
            let d = AcdcState::own_default();
            st.tau.set(d.tau);
            st.clean.set(d.clean);
            st.corrupted.set(d.corrupted);
            st.own.set(true);
        };
        view! {
            <label><input type="radio" name="acdc-model" data-testid="acdc-model-own" prop:checked=move || st.own.get()
                on:change=pick_own />{format!(" your model: {} ({} layers)", o.name, o.model.cfg.n_layer)}</label>
        }
    });
    view! {
        <div class="gen-controls">
            {radio(TaskModel::Ioi, " IOI model")}
            {radio(TaskModel::Induction, " induction model")}
            {own_radio}
        </div>
        <div class="gen-controls acdc-tau">
            <label title="An edge stays only if removing it raises the KL by more than τ.">"threshold τ "
                <input type="range" min=LOG_TAU_MIN.to_string() max=LOG_TAU_MAX.to_string() step=LOG_TAU_STEP.to_string()
                    data-testid="acdc-tau" prop:value=move || slider_of_tau(st.tau.get()).to_string()
                    on:input=move |ev| if let Ok(x) = event_target_value(&ev).parse() { st.tau.set(tau_of_slider(x)) }
                    on:change=move |_| start() />
                <output data-testid="acdc-tau-value">{move || format!(" {} nats", tau_text(st.tau.get()))}</output>
            </label>
            <label title="One edge per frame, so you can follow the pruning; unticked, a run takes a fraction of a second.">
                <input type="checkbox" data-testid="acdc-watch" prop:checked=move || st.watch.get()
                    on:change=move |ev| {
                        st.watch.set(event_target_checked(&ev));
                        replace_hash_soon(&section_hash_with("9.4", &st.url_state().to_query()));
                    } />" watch edge by edge"
            </label>
        </div>
        {move || match (st.own.get(), st.which.get()) {
            (true, _) | (false, TaskModel::Ioi) => view! { <IoiPrompts st=st start=start busy=busy /> }.into_any(),
            (false, TaskModel::Induction) => view! {
                <p class="small">"Clean: a random sequence of 31 words, then the same again. Corrupted: another such sequence. The KL is measured over the repeated half, where induction predicts."</p>
                <div class="gen-controls">
                    <button data-testid="acdc-new-seq" disabled=move || busy.get()
                        on:click=move |_| { st.seed.update(|s| *s += 1); start(); }>"Another pair of sequences"</button>
                    <span class="muted small">{move || format!("seed {}", st.seed.get())}</span>
                </div>
            }
            .into_any(),
        }}
    }
}

/// The clean and corrupted IOI prompts, and the run button.
#[component]
fn IoiPrompts(st: Acdc, start: impl Fn() + Copy + Send + Sync + 'static, busy: Signal<bool>) -> impl IntoView {
    view! {
        <label class="input-label" for="acdc-clean">
            {move || if st.own.get() { "Clean prompt (KL is measured on the next token after it)" } else { "Clean prompt (the answer is the name said once)" }}
        </label>
        <input id="acdc-clean" class="text-input" spellcheck="false" data-testid="acdc-clean"
            prop:value=move || st.clean.get() on:input=move |ev| st.clean.set(event_target_value(&ev)) />
        <label class="input-label" for="acdc-corrupt">
            {move || if st.own.get() { "Corrupted prompt (as many tokens, with what matters changed)" } else { "Corrupted prompt (both names replaced)" }}
        </label>
        <input id="acdc-corrupt" class="text-input" spellcheck="false" data-testid="acdc-corrupt"
            prop:value=move || st.corrupted.get() on:input=move |ev| st.corrupted.set(event_target_value(&ev)) />
        <div class="gen-controls">
            <button class="primary" data-testid="acdc-run" disabled=move || busy.get() on:click=move |_| start()>"Run ACDC"</button>
        </div>
    }
}

/// The graph: every edge as a curve under the boxes, the edge being tried drawn on top.
#[component]
fn Graph(st: Acdc) -> impl IntoView {
    let graph = Memo::new(move |_| st.pruning.with(|p| p.as_ref().map(|p| p.graph)));
    let circuit: Memo<Option<(HashSet<Edge>, Vec<Node>)>> =
        Memo::new(move |_| st.outcome.with(|o| o.as_ref().map(|o| (o.circuit.edge_set(), o.circuit.nodes.clone()))));
    // One signal per edge, set only when that edge's look changes: a step of the run touches one or a few
    // edges, so a frame of the animation updates those paths and not all 193 (which cost ~50 ms a frame). The
    // list itself is a signal, so the paths follow when another model's graph brings a new list; its items are
    // Arc signals, made in the effect (whose owner would dispose plain ones when it runs again).
    let looks: RwSignal<Vec<ArcRwSignal<&'static str>>> = RwSignal::new(Vec::new());
    Effect::new(move |_| {
        let c = circuit.read();
        st.pruning.with(|p| {
            let Some(p) = p.as_ref() else { return };
            if looks.with_untracked(Vec::len) != p.edges.len() {
                looks.set((0..p.edges.len()).map(|_| ArcRwSignal::new("untried")).collect());
            }
            looks.with_untracked(|ls| {
                for (i, l) in ls.iter().enumerate() {
                    let new = edge_look(p, i, c.as_ref().map(|c| &c.0));
                    if l.get_untracked() != new {
                        l.set(new);
                    }
                }
            });
        });
    });
    let look = move |i: usize| looks.with(|ls| ls.get(i).cloned()).map_or("untried", |l| l.get());
    let done = move || st.pruning.with(|p| p.as_ref().is_some_and(|p| p.current().is_none()));
    let in_circuit = move |n: Node| circuit.with(|c| c.as_ref().is_some_and(|c| c.1.contains(&n)));
    move || {
        let layout = Layout::new(graph.get()?);
        let edges = layout.graph.edges();
        let paths = edges
            .iter()
            .enumerate()
            .map(|(i, &e)| view! { <path class=move || format!("acdc-edge {}", look(i)) d=layout.edge_path(e) data-testid="acdc-edge" data-look=move || look(i) /> })
            .collect_view();
        let trying = {
            let layout = layout.clone();
            move || {
                st.pruning
                    .with(|p| p.as_ref().and_then(Pruning::current))
                    .map(|e| layout.edge_path(e))
                    .unwrap_or_default()
            }
        };
        let boxes = layout
            .boxes()
            .into_iter()
            .map(|b| {
                let node = b.node;
                let ports = matches!(node, Node::Head { .. }).then(|| head_ports(&layout, node));
                view! {
                    <g class="acdc-node" data-testid="acdc-node" data-node=node.to_string()
                        class:dim=move || done() && !in_circuit(node)>
                        <rect x=b.x - BOX_W / 2.0 y=b.y - BOX_H / 2.0 width=BOX_W height=BOX_H rx="5" />
                        <text x=b.x y=b.y - if ports.is_some() { 2.0 } else { -4.0 } text-anchor="middle">{node_label(node)}</text>
                        {ports}
                    </g>
                }
            })
            .collect_view();
        let svg = view! {
            <svg class="acdc-graph" data-testid="acdc-graph" viewBox=format!("0 0 {WIDTH} {}", layout.height)
                role="img" aria-label="The model's graph: every edge from a sender to a receiver">
                <g class="acdc-edges">{paths}</g>
                <path class="acdc-edge trying" data-testid="acdc-trying" d=trying />
                {boxes}
            </svg>
        };
        // The graph as it is now; its numbers are the last run's circuit.
        let table =
            Callback::new(move |_| st.outcome.with_untracked(|o| o.as_ref().map(|o| circuit_table(&o.circuit))));
        Some(figure_with_exports(svg.into_any(), table, "acdc-graph"))
    }
}

/// A head's three input ports along its box's bottom edge, lettered q, k, v.
fn head_ports(layout: &Layout, head: Node) -> impl IntoView {
    let Node::Head { layer, head } = head else { unreachable!("ports belong to heads") };
    Qkv::ALL
        .iter()
        .zip(["q", "k", "v"])
        .map(|(&input, letter)| {
            let (x, y) = layout.in_point(Node::HeadInput { layer, head, input });
            view! {
                <circle class="acdc-port" cx=x cy=y r="3" />
                <text class="acdc-port-letter" x=x y=y - 4.0 text-anchor="middle">{letter}</text>
            }
        })
        .collect_view()
}

/// The last tried edges, newest first: the KL with and without each, and whether it stayed.
#[component]
fn EdgeLog(st: Acdc) -> impl IntoView {
    // Keyed, so each frame of the animation adds one row and drops one instead of rebuilding the list (whose text
    // layout cost more than the step itself). An edge is tried once per run; its KLs tell runs apart.
    let rows =
        move || st.pruning.with(|p| p.as_ref().map(|p| p.log.iter().copied().collect::<Vec<_>>()).unwrap_or_default());
    let key = |t: &Tried| (t.edge, t.kl_before.to_bits(), t.kl_after.to_bits());
    let row = |t: Tried| {
        let verdict = if t.kept { "kept" } else { "removed" };
        view! {
            <li class=format!("acdc-log-item {verdict}") data-testid="acdc-log-item" data-kept=t.kept.to_string()>
                <span class="acdc-log-edge">{edge_text(t.edge)}</span>
                <span class="acdc-log-kl">{format!("KL {:.4} → {:.4}", t.kl_before, t.kl_after)}</span>
                <span class="acdc-log-verdict">{verdict}</span>
            </li>
        }
    };
    view! {
        <div class="acdc-log">
            <h4>"Last edges tried"</h4>
            <ol data-testid="acdc-log"><For each=rows key=key children=row /></ol>
            <p class="muted small">"Receivers are visited from the logits down; an edge is removed (patched to the corrupted run) and stays removed if the KL rose by at most τ."</p>
        </div>
    }
}

/// What the last run found: edges kept, the circuit's KL and faithfulness, and its heads with their links.
#[component]
fn Summary(st: Acdc) -> impl IntoView {
    move || {
        let o = st.outcome.get()?;
        let c = &o.circuit;
        let on = match &o.answers {
            Some((a, b)) => format!(" between the clean run's top guess “{a}” and the corrupted run's “{b}”"),
            None => String::new(),
        };
        let faith = match c.logit_diff {
            Some(f) => format!(
                "{:.0}% of the full model's logit difference{on} (normalised: 0 = corrupted run, 1 = clean)",
                100.0 * f
            ),
            None => format!("not defined: the corruption leaves the logit difference{on} unchanged"),
        };
        let heads: Vec<(usize, usize)> = c
            .nodes
            .iter()
            .filter_map(|n| if let Node::Head { layer, head } = *n { Some((layer, head)) } else { None })
            .collect();
        let links = heads
            .iter()
            .map(|&(l, h)| {
                // An opened model's heads are named only: the other labs' links cannot carry it.
                let Some(which) = o.which else {
                    return view! {
                        <li data-testid="acdc-head" data-head=format!("{l}.{h}")>
                            <strong>{head_name(l, h)}</strong><span class="muted small">{format!(" a{l}.{h}")}</span>
                        </li>
                    }
                    .into_any();
                };
                let links = head_links(which, l, h, &o.prompts.0, &o.prompts.1);
                view! {
                    <li data-testid="acdc-head" data-head=format!("{l}.{h}")>
                        <strong>{head_name(l, h)}</strong><span class="muted small">{format!(" a{l}.{h} · ")}</span>
                        <a data-testid="acdc-pattern-link" href=links.pattern
                            title=format!("{}'s attention pattern on the clean prompt (attention lab)", head_name(l, h))>"pattern"</a>
                        <span class="muted small">" · "</span>
                        <a data-testid="acdc-head-link" href=links.patching
                            title=format!("patching {}'s output on these prompts (9.3.1)", head_name(l, h))>"patching"</a>
                    </li>
                }
                .into_any()
            })
            .collect_view();
        Some(view! {
            <div class="acdc-summary" data-testid="acdc-summary" data-kept=c.edges.len() data-kl=c.kl.to_string()
                data-faith=c.logit_diff.map(|f| f.to_string()).unwrap_or_default() data-tau=c.tau.to_string()>
                <p><strong>{format!("{} of {} edges kept", c.edges.len(), c.total_edges)}</strong>{format!(" at τ = {}", tau_text(c.tau))}</p>
                <p class="small">{format!("KL(clean ‖ circuit) = {:.4} nats (the corrupted run: {:.2})", c.kl, c.kl_corrupted)}</p>
                <p class="small">{format!("Faithfulness: {faith}.")}</p>
                <p class="small">{if o.which.is_some() {
                    format!("Heads in the circuit ({}), each with its attention pattern and its patching result on these prompts:", heads.len())
                } else {
                    format!("Heads in the circuit ({}):", heads.len())
                }}</p>
                <ul class="acdc-heads">{links}</ul>
            </div>
        })
    }
}
