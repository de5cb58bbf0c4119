//! Probes on the Moby-Dick model as main-thread jobs, shared by the probing lab (9.2.3) and the steering lab's
//! probe direction (9.3.2): the held-out text's residual stream is recorded once per session, then a probe
//! per layer is trained in slices between frames.
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::jobs::Job;
use super::load::LoadedChar;
use crate::lens::gpt2::RandomInit;
use crate::lens::methods::probe::{
    control_task_job, Concept, ProbeData, ProbeJob, ProbeRecording, ProbeReport, ProbeSettings,
};
use crate::lens::Transformer;

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
