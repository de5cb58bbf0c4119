//! Probes on the Moby-Dick model as main-thread jobs, shared by the probing lab (9.2.3) and the steering lab's
//! probe direction (9.3.2): the held-out text's residual stream is recorded once per session, then a probe
//! per layer is trained in slices between frames. On a model opened in this tab (`train_own_probes`) the
//! text is cut by its own tokenizer and read a window at a time, half a block per slice.
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use super::jobs::Job;
use super::load::LoadedChar;
use super::opened::OwnModel;
use super::own_text::check_ids;
use crate::lens::gpt2::RandomInit;
use crate::lens::methods::logit_lens::LensRun;
use crate::lens::methods::probe::{
    control_task_job, Concept, ProbeData, ProbeJob, ProbeRecording, ProbeReport, ProbeSettings, ResidShape,
    TokenConcept,
};
use crate::lens::{LensError, Transformer};

/// Which network the probes read: the trained Moby-Dick model, or a random one of its shape (never trained,
/// drawn from a seed), the control for "does the probe find what training put there".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Net {
    Trained,
    Random(u64),
}

thread_local! {
    /// The held-out text's residual stream per network, recorded once per session (the labs share it).
    static RECORDED: RefCell<HashMap<(Net, usize), Rc<ProbeData>>> = RefCell::new(HashMap::new());
    /// The last text read by an opened model, so a second concept on it costs only the training.
    static OWN_RECORDED: RefCell<Option<OwnRecorded>> = const { RefCell::new(None) };
}

/// A text as an opened model read it: each token's text and the residual stream of the windows.
struct OwnRecorded {
    model: *const OwnModel,
    text: String,
    pieces: Rc<Vec<String>>,
    data: Rc<ProbeData>,
}

/// A finished run on an opened model: the report, and each token's text with its label (the lab shows a
/// stretch of them).
pub struct OwnProbes {
    pub report: ProbeReport,
    pub pieces: Rc<Vec<String>>,
    pub labels: Vec<Option<bool>>,
}

/// Probes every residual layer of the opened model `own` for `concept` over `text`: the text through its
/// tokenizer's worker, the labels (a bad pattern is reported before any reading), about `positions` tokens in
/// windows of `window` read half a block per slice (unless this text was the last one read), then a probe per
/// layer. `Ok(None)` when the job is stopped.
pub async fn train_own_probes(
    own: &Arc<OwnModel>,
    text: String,
    concept: &TokenConcept,
    (window, positions): (usize, usize),
    job: &Job,
) -> Result<Option<OwnProbes>, String> {
    let settings = ProbeSettings { positions, ..probe_settings() };
    let key = Arc::as_ptr(own);
    let kept = OWN_RECORDED.with(|r| {
        r.borrow().as_ref().filter(|k| k.model == key && k.text == text).map(|k| (k.pieces.clone(), k.data.clone()))
    });
    let (pieces, data) = match kept {
        Some(k) => k,
        None => {
            let Some(enc) = own.tokenize(text.clone(), job, "cutting the text into tokens").await else {
                return Ok(None);
            };
            let enc = enc?;
            check_ids(&enc.ids, own.model.cfg.vocab_size)?;
            concept.labels(&enc.pieces).map_err(|e| e.to_string())?;
            let pieces = Rc::new(enc.pieces);
            let Some(data) = record_own(own, text.clone(), enc.ids, window, &settings, job).await? else {
                return Ok(None);
            };
            let data = Rc::new(data);
            OWN_RECORDED.with(|r| {
                *r.borrow_mut() = Some(OwnRecorded { model: key, text, pieces: pieces.clone(), data: data.clone() })
            });
            (pieces, data)
        }
    };
    let labels = concept.labels(&pieces).map_err(|e| e.to_string())?;
    let layers: Vec<usize> = (0..=own.model.cfg.n_layer).collect();
    let fit = ProbeJob::with_labels(&data, concept.name(), &labels, &settings, &layers).map_err(|e| e.to_string())?;
    Ok(fit_probes(fit, &data, job).await?.map(|report| OwnProbes { report, pieces, labels }))
}

/// The residual stream of `ids` in windows of `window` tokens, each read with the model's first token in front
/// when its config names one (that row is left out), half a block per slice. `Ok(None)` when the job is stopped.
async fn record_own(
    own: &OwnModel,
    text: String,
    ids: Vec<u32>,
    window: usize,
    settings: &ProbeSettings,
    job: &Job,
) -> Result<Option<ProbeData>, String> {
    let model = &own.model;
    let cfg = &model.cfg;
    let bos = own.bos();
    let skip = usize::from(bos.is_some());
    let shape = ResidShape { layers: cfg.n_layer + 1, d_model: cfg.d_model() };
    let mut rec = ProbeRecording::from_ids(text, ids, shape, window, settings).map_err(|e| e.to_string())?;
    let mut current: Option<LensRun> = None;
    let recorded = job
        .sliced("recording activations", || {
            let run = match current.as_mut() {
                Some(run) => run,
                None => {
                    let Some(w) = rec.next_window() else { return Ok(None) };
                    let input: Vec<u32> = bos.into_iter().chain(w.iter().copied()).collect();
                    current.insert(LensRun::recording(model, &input, 1, &[])?)
                }
            };
            if run.step(model)? {
                let run = current.take().expect("stepped above");
                if rec.push(&run.finish_resid(model)?, skip)? {
                    return Ok(None);
                }
            }
            let (done, all) = rec.progress();
            let part = current.as_ref().map_or(0.0, |r| r.progress(model));
            Ok::<_, LensError>(Some((done as f32 + part) / all.max(1) as f32))
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(recorded.then(|| rec.finish()))
}

/// The random network of `seed` with the trained model's shape, drawn a parameter per step (in one call it was
/// a 55 ms task); `Ok(None)` when the job is stopped. Only its recording is kept: the network is not needed
/// once its activations are.
async fn random_net(m: &LoadedChar, seed: u64, job: &Job) -> Result<Option<Transformer>, String> {
    let mut init = RandomInit::new(m.model.cfg.clone(), seed).map_err(|e| e.to_string())?;
    loop {
        let done = job.slice(|| Ok::<_, String>(init.step()))?;
        if done {
            break;
        }
        if !job.pause("drawing a random network", init.progress()).await {
            return Ok(None);
        }
    }
    init.finish().map(Some).map_err(|e| e.to_string())
}

/// How many positions the lab probes on (the figure the benchmark measures).
pub const POSITIONS: usize = 5000;

pub fn probe_settings() -> ProbeSettings {
    ProbeSettings { positions: POSITIONS, ..ProbeSettings::default() }
}

/// Records (unless already recorded) and trains probes for `layers`, a slice at a time. Between slices `job`
/// shows the phase and the share done; when it is stopped (Cancel, a newer run, the lab closed) the result is
/// `Ok(None)`.
pub async fn train_probes(
    m: &LoadedChar,
    concept: &Concept,
    layers: &[usize],
    shuffled_control: bool,
    job: &Job,
) -> Result<Option<ProbeReport>, String> {
    train_probes_on(m, Net::Trained, POSITIONS, concept, layers, shuffled_control, job).await
}

/// `train_probes` on the trained model or on a random network of its shape, over the first `positions` labelled
/// positions (each network's recording is kept per number of positions).
pub async fn train_probes_on(
    m: &LoadedChar,
    net: Net,
    positions: usize,
    concept: &Concept,
    layers: &[usize],
    shuffled_control: bool,
    job: &Job,
) -> Result<Option<ProbeReport>, String> {
    // Labels first: a bad regular expression is reported before any recording.
    concept.labels(&m.held_out).map_err(|e| e.to_string())?;
    let settings = ProbeSettings { shuffled_control, positions, ..probe_settings() };
    let Some(data) = recorded(m, net, &settings, job).await? else { return Ok(None) };
    let fit = ProbeJob::new(&data, concept, &settings, layers).map_err(|e| e.to_string())?;
    fit_probes(fit, &data, job).await
}

/// `train_probes_on` for `concept`'s control task (Hewitt & Liang 2019; `probe::control_task_job`: a fixed
/// random label per character, drawn from the probing settings' seed), on the same recording.
pub async fn train_control_probes_on(
    m: &LoadedChar,
    net: Net,
    positions: usize,
    concept: &Concept,
    layers: &[usize],
    job: &Job,
) -> Result<Option<ProbeReport>, String> {
    concept.labels(&m.held_out).map_err(|e| e.to_string())?;
    let settings = ProbeSettings { shuffled_control: false, positions, ..probe_settings() };
    let Some(data) = recorded(m, net, &settings, job).await? else { return Ok(None) };
    let fit = control_task_job(&data, concept, &settings, layers).map_err(|e| e.to_string())?;
    fit_probes(fit, &data, job).await
}

/// The held-out text's residual stream on `net` over `settings.positions` positions: recorded a window per step
/// unless this session already has it; `Ok(None)` when the job is stopped.
async fn recorded(
    m: &LoadedChar,
    net: Net,
    settings: &ProbeSettings,
    job: &Job,
) -> Result<Option<Rc<ProbeData>>, String> {
    let positions = settings.positions;
    if let Some(d) = RECORDED.with(|r| r.borrow().get(&(net, positions)).cloned()) {
        return Ok(Some(d));
    }
    let random = match net {
        Net::Trained => None,
        Net::Random(seed) => match random_net(m, seed, job).await? {
            Some(net) => Some(net),
            None => return Ok(None),
        },
    };
    let model = random.as_ref().unwrap_or(&m.model);
    let mut rec = ProbeRecording::new(model, &m.vocab, &m.held_out, settings).map_err(|e| e.to_string())?;
    loop {
        let done = job.slice(|| rec.step(model, 1)).map_err(|e| e.to_string())?;
        let (a, b) = rec.progress();
        if done {
            break;
        }
        if !job.pause("recording activations", a as f32 / b.max(1) as f32).await {
            return Ok(None);
        }
    }
    let d = Rc::new(rec.finish());
    RECORDED.with(|r| r.borrow_mut().insert((net, positions), d.clone()));
    Ok(Some(d))
}

/// Steps `fit` to the end in slices; `Ok(None)` when the job is stopped.
async fn fit_probes(mut fit: ProbeJob, data: &ProbeData, job: &Job) -> Result<Option<ProbeReport>, String> {
    loop {
        if !job.pause("training probes", fit.progress()).await {
            return Ok(None);
        }
        if job.slice(|| fit.step(data, 8)).map_err(|e| e.to_string())? {
            return Ok(Some(fit.report()));
        }
    }
}
