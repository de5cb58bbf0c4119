//! Probes on the Moby-Dick model as main-thread jobs, shared by the probing lab (9.2.3) and the steering lab's
//! probe direction (9.3.2): the held-out text's residual stream is recorded once per session, then a probe
//! per layer is trained in slices between frames.
use std::cell::RefCell;
use std::rc::Rc;

use super::jobs::Job;
use super::load::LoadedChar;
use crate::lens::methods::probe::{Concept, ProbeData, ProbeJob, ProbeRecording, ProbeReport, ProbeSettings};

thread_local! {
    /// The held-out text's residual stream, recorded once per session (both labs use it).
    static RECORDED: RefCell<Option<Rc<ProbeData>>> = const { RefCell::new(None) };
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
    // Labels first: a bad regular expression is reported before any recording.
    concept.labels(&m.held_out).map_err(|e| e.to_string())?;
    let settings = ProbeSettings { shuffled_control, ..probe_settings() };
    let data = match RECORDED.with(|r| r.borrow().clone()) {
        Some(d) => d,
        None => {
            let mut rec = ProbeRecording::new(&m.model, &m.vocab, &m.held_out, &settings).map_err(|e| e.to_string())?;
            loop {
                let done = job.slice(|| rec.step(&m.model, 1)).map_err(|e| e.to_string())?;
                let (a, b) = rec.progress();
                if done {
                    break;
                }
                if !job.pause("recording activations", a as f32 / b.max(1) as f32).await {
                    return Ok(None);
                }
            }
            let d = Rc::new(rec.finish());
            RECORDED.with(|r| *r.borrow_mut() = Some(d.clone()));
            d
        }
    };
    let mut fit = ProbeJob::new(&data, concept, &settings, layers).map_err(|e| e.to_string())?;
    loop {
        if !job.pause("training probes", fit.progress()).await {
            return Ok(None);
        }
        if job.slice(|| fit.step(&data, 8)).map_err(|e| e.to_string())? {
            return Ok(Some(fit.report()));
        }
    }
}
