//! Messages between the page and a Web Worker that owns the lab's training state. The worker keeps one
//! `LabState`, deserialises each `LabRequest` it receives, calls `handle`, and posts the `LabReply` back.
//! Everything here is plain data with serde, and `handle` is plain Rust, tested natively.
use serde::{Deserialize, Serialize};

use super::model::{ToyConfig, ToyModel, ToySnapshot};
use crate::lens::methods::superposition::metrics::ToyMetrics;
use crate::lens::methods::superposition::phase::{phase_cell, PhaseCell, PhaseSpec};
use crate::lens::methods::superposition::sae::{Sae, SaeConfig, SaeMetrics, SaeSnapshot};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum LabRequest {
    /// Build a toy model (replacing any previous one and its SAE).
    NewToy {
        config: ToyConfig,
    },
    /// Train the toy model `steps` more steps.
    StepToy {
        steps: usize,
    },
    /// Start the toy model again from its seed.
    ResetToy,
    /// Build an SAE on `toy`, or on the current toy model's present state when `toy` is none.
    NewSae {
        config: SaeConfig,
        toy: Option<ToySnapshot>,
    },
    StepSae {
        steps: usize,
    },
    ResetSae,
    /// Train and classify one cell of a phase diagram.
    PhaseCell {
        spec: PhaseSpec,
        row: usize,
        col: usize,
    },
}

// One reply is built per chunk of steps and posted at once, so the size gap between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum LabReply {
    /// The toy model's state; a divergence shows in `snapshot.status`, with the last finite parameters.
    Toy {
        snapshot: ToySnapshot,
        metrics: ToyMetrics,
    },
    Sae {
        snapshot: SaeSnapshot,
        metrics: SaeMetrics,
    },
    PhaseCell {
        cell: PhaseCell,
    },
    /// The request could not be carried out (a bad setting, or no model yet); the message says why.
    Error {
        message: String,
    },
}

/// What the worker owns.
#[derive(Clone, Debug, Default)]
pub struct LabState {
    pub toy: Option<ToyModel>,
    pub sae: Option<Sae>,
}

fn toy_reply(t: &ToyModel) -> LabReply {
    let snapshot = t.snapshot();
    LabReply::Toy { metrics: ToyMetrics::of(&snapshot), snapshot }
}

fn sae_reply(s: &Sae) -> LabReply {
    let snapshot = s.snapshot();
    LabReply::Sae { metrics: SaeMetrics::of(&snapshot), snapshot }
}

fn error(message: impl ToString) -> LabReply {
    LabReply::Error { message: message.to_string() }
}

impl LabState {
    pub fn handle(&mut self, request: LabRequest) -> LabReply {
        const NO_TOY: &str = "there is no toy model yet: build one first";
        const NO_SAE: &str = "there is no sparse autoencoder yet: build one first";
        match request {
            LabRequest::NewToy { config } => match ToyModel::new(config) {
                Ok(t) => {
                    let reply = toy_reply(&t);
                    (self.toy, self.sae) = (Some(t), None);
                    reply
                }
                Err(e) => error(e),
            },
            LabRequest::StepToy { steps } => match &mut self.toy {
                // A divergence is reported through the snapshot's status.
                Some(t) => {
                    let _ = t.step(steps);
                    toy_reply(t)
                }
                None => error(NO_TOY),
            },
            LabRequest::ResetToy => match &mut self.toy {
                Some(t) => {
                    t.reset();
                    toy_reply(t)
                }
                None => error(NO_TOY),
            },
            LabRequest::NewSae { config, toy } => {
                let toy = match (toy, &self.toy) {
                    (Some(s), _) => s,
                    (None, Some(t)) => t.snapshot(),
                    (None, None) => return error(NO_TOY),
                };
                match Sae::new(&toy, config) {
                    Ok(s) => {
                        let reply = sae_reply(&s);
                        self.sae = Some(s);
                        reply
                    }
                    Err(e) => error(e),
                }
            }
            LabRequest::StepSae { steps } => match &mut self.sae {
                Some(s) => {
                    let _ = s.step(steps);
                    sae_reply(s)
                }
                None => error(NO_SAE),
            },
            LabRequest::ResetSae => match &mut self.sae {
                Some(s) => {
                    s.reset();
                    sae_reply(s)
                }
                None => error(NO_SAE),
            },
            LabRequest::PhaseCell { spec, row, col } => match spec.validate().and_then(|_| phase_cell(&spec, row, col))
            {
                Ok(cell) => LabReply::PhaseCell { cell },
                Err(e) => error(e),
            },
        }
    }
}
