//! The phase diagram of superposition (Elhage et al. 2022, "The phase change"): train many small models
//! while sweeping two knobs, the features' density (1 - S) and the importance of one extra feature relative
//! to the others, and ask what happened to that extra feature:
//! - **ignored**: it gets (almost) no direction, norm below 0.5;
//! - **dedicated**: it gets a direction of its own, little interference (Σ (Ŵ_i · W_j)² below 0.5);
//! - **superposed**: it shares its direction with other features (interference 0.5 or more).
//!
//! The default is the paper's smallest case, n = 2 features in m = 1 dimension: dense and less important,
//! the extra feature is ignored; dense and more important, it takes the only dimension; sparse, the two
//! features share the dimension as an antipodal pair (W_1 ≈ -W_2).
//!
//! Each cell is a separate call (`phase_cell`), so a worker can stream the diagram cell by cell.
use serde::{Deserialize, Serialize};

use super::metrics::{feature_norms, interference, REPRESENTED_NORM};
use crate::lens::toy::model::{ToyConfig, ToyModel};
use crate::lens::{LensError, Result};

/// Interference at or above which a represented feature counts as superposed.
pub const SUPERPOSED_INTERFERENCE: f32 = 0.5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    Ignored,
    Dedicated,
    Superposed,
}

impl Phase {
    /// The extra feature's phase from its norm and interference.
    pub fn classify(norm: f32, interference: f32) -> Phase {
        if norm <= REPRESENTED_NORM {
            Phase::Ignored
        } else if interference < SUPERPOSED_INTERFERENCE {
            Phase::Dedicated
        } else {
            Phase::Superposed
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseSpec {
    pub n_features: usize,
    pub n_hidden: usize,
    /// Feature density 1 - S of each row, in (0, 1].
    pub densities: Vec<f32>,
    /// Importance of the extra (last) feature in each column; the others have importance 1.
    pub importances: Vec<f32>,
    /// Training steps per model.
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f32,
    /// Models trained per cell from different seeds; the one with the lowest held-out loss is kept, since
    /// a single small model can settle in a local minimum.
    pub restarts: usize,
    pub seed: u64,
}

/// `count` values from `a` to `b`, evenly spaced on a log scale.
pub fn log_space(a: f32, b: f32, count: usize) -> Vec<f32> {
    if count == 1 {
        return vec![a];
    }
    let (la, lb) = (a.ln(), b.ln());
    (0..count).map(|i| (la + (lb - la) * i as f32 / (count - 1) as f32).exp()).collect()
}

impl Default for PhaseSpec {
    /// 12 x 12 cells: density from 1 down to 0.01 and relative importance from 0.1 to 10, both on log scales,
    /// as in the paper's figure. Steps and restarts are sized so the whole grid takes a few seconds
    /// (measured in `src/bin/bench.rs`): four short runs per cell find the best arrangement more reliably
    /// than two long ones.
    fn default() -> Self {
        PhaseSpec::grid(12, 12)
    }
}

impl PhaseSpec {
    pub fn grid(rows: usize, cols: usize) -> Self {
        PhaseSpec {
            n_features: 2,
            n_hidden: 1,
            densities: log_space(1.0, 0.01, rows),
            importances: log_space(0.1, 10.0, cols),
            steps: 1000,
            batch_size: 256,
            lr: 0.02,
            restarts: 4,
            seed: 0,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(LensError::Input(msg));
        if self.densities.is_empty() || self.importances.is_empty() {
            return bad("the phase diagram needs at least one density and one importance".into());
        }
        if let Some(d) = self.densities.iter().find(|d| !(**d > 0.0 && **d <= 1.0)) {
            return bad(format!("a feature density must be in (0, 1] (got {d})"));
        }
        if let Some(r) = self.importances.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
            return bad(format!("a relative importance must be a positive number (got {r})"));
        }
        if self.steps == 0 || self.restarts == 0 {
            return bad("the phase diagram needs at least one step and one restart per cell".into());
        }
        self.cell_config(0, 0, 0).validate()
    }

    /// The config of one model in cell (row, col), for restart `restart`.
    pub fn cell_config(&self, row: usize, col: usize, restart: usize) -> ToyConfig {
        let n = self.n_features;
        let mut importance = vec![1.0; n];
        if let Some(last) = importance.last_mut() {
            *last = self.importances[col];
        }
        let cell = (row * self.importances.len() + col) as u64;
        ToyConfig {
            n_features: n,
            n_hidden: self.n_hidden,
            sparsity: 1.0 - self.densities[row],
            importance_decay: 1.0,
            importance: Some(importance),
            batch_size: self.batch_size,
            lr: self.lr,
            seed: self.seed.wrapping_mul(1_000_003).wrapping_add(cell * 64 + restart as u64),
        }
    }

    pub fn cells(&self) -> usize {
        self.densities.len() * self.importances.len()
    }
}

/// One trained cell of the diagram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseCell {
    pub row: usize,
    pub col: usize,
    pub density: f32,
    pub importance: f32,
    pub phase: Phase,
    /// Norm and interference of the extra feature in the kept model.
    pub norm: f32,
    pub interference: f32,
    /// Held-out loss of the kept model.
    pub loss: f32,
    /// The kept model's W (column-major) and b, to draw the cell's arrangement.
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

/// Held-out samples for choosing among restarts; the same inputs for every restart of a cell.
const EVAL_SAMPLES: usize = 8192;

/// Trains cell (row, col) and classifies its extra feature.
pub fn phase_cell(spec: &PhaseSpec, row: usize, col: usize) -> Result<PhaseCell> {
    if row >= spec.densities.len() || col >= spec.importances.len() {
        return Err(LensError::Input(format!(
            "no cell ({row}, {col}) in a {} x {} diagram",
            spec.densities.len(),
            spec.importances.len()
        )));
    }
    let mut best: Option<(f32, ToyModel)> = None;
    let eval_seed = spec.cell_config(row, col, 0).seed ^ 0x5EED_5EED;
    for restart in 0..spec.restarts {
        let cfg = spec.cell_config(row, col, restart);
        let mut model = ToyModel::new(cfg)?;
        // A diverged restart is skipped; if all diverge, the error is reported.
        if model.step(spec.steps).is_err() {
            continue;
        }
        let loss = model.eval_loss(EVAL_SAMPLES, eval_seed);
        if best.as_ref().is_none_or(|(l, _)| loss < *l) {
            best = Some((loss, model));
        }
    }
    let Some((loss, model)) = best else {
        return Err(LensError::Input(format!("every model of cell ({row}, {col}) diverged; lower the learning rate")));
    };
    let (n, m) = (spec.n_features, spec.n_hidden);
    let extra = n - 1;
    let norm = feature_norms(model.w(), m)[extra];
    let interference = interference(model.w(), m)[extra];
    Ok(PhaseCell {
        row,
        col,
        density: spec.densities[row],
        importance: spec.importances[col],
        phase: Phase::classify(norm, interference),
        norm,
        interference,
        loss,
        w: model.w().to_vec(),
        b: model.b().to_vec(),
    })
}

/// The whole grid, row by row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseDiagram {
    pub spec: PhaseSpec,
    pub cells: Vec<PhaseCell>,
}

impl PhaseDiagram {
    pub fn at(&self, row: usize, col: usize) -> &PhaseCell {
        &self.cells[row * self.spec.importances.len() + col]
    }
}

/// Trains every cell. A worker that wants to stream should call `phase_cell` itself instead.
pub fn phase_diagram(spec: &PhaseSpec) -> Result<PhaseDiagram> {
    spec.validate()?;
    let mut cells = Vec::with_capacity(spec.cells());
    for row in 0..spec.densities.len() {
        for col in 0..spec.importances.len() {
            cells.push(phase_cell(spec, row, col)?);
        }
    }
    Ok(PhaseDiagram { spec: spec.clone(), cells })
}
