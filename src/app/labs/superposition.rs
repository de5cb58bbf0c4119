//! The superposition lab (9.2.4): the toy model of superposition trained live in the worker, and the phase
//! diagram. Its URL state (the preset, sparsity, importance decay, seed and learning rate) and its plain rules:
//! the model the controls describe, the sweep's cells, and what the panels say.
use crate::app::core::charts::{Cell, Heat};
use crate::app::core::trainer::{status_line, PAUSED};
use crate::app::core::url::{Reader, UrlState, Writer};
use crate::lens::methods::superposition::metrics::AngleGap;
use crate::lens::methods::superposition::phase::{Phase, PhaseCell, PhaseSpec};
use crate::lens::toy::model::ToyConfig;
use crate::lens::toy::protocol::LabRequest;

#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::SuperpositionLab;

/// The two shapes the lab offers: n features in m hidden dimensions.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Preset {
    FiveInTwo,
    TwentyInFive,
}

impl Preset {
    pub fn key(self) -> &'static str {
        match self {
            Preset::FiveInTwo => "5-2",
            Preset::TwentyInFive => "20-5",
        }
    }
    pub fn from_key(k: &str) -> Option<Preset> {
        PRESETS.iter().find(|(key, _)| *key == k).map(|(_, p)| *p)
    }
    pub fn dims(self) -> (usize, usize) {
        match self {
            Preset::FiveInTwo => (5, 2),
            Preset::TwentyInFive => (20, 5),
        }
    }
    pub fn default_decay(self) -> f32 {
        match self {
            Preset::FiveInTwo => 1.0,
            Preset::TwentyInFive => 0.9,
        }
    }
}

const PRESETS: &[(&str, Preset)] = &[("5-2", Preset::FiveInTwo), ("20-5", Preset::TwentyInFive)];

#[derive(Clone, Debug, PartialEq)]
pub struct ToyState {
    pub preset: Preset,
    pub sparsity: f32,
    pub decay: f32,
    pub seed: u64,
    pub lr: f32,
}

impl Default for ToyState {
    fn default() -> Self {
        ToyState {
            preset: Preset::FiveInTwo,
            sparsity: 0.9,
            decay: Preset::FiveInTwo.default_decay(),
            seed: 0,
            lr: 0.01,
        }
    }
}

impl UrlState for ToyState {
    fn read(r: &mut Reader) -> Self {
        let preset = r.choice("nm", Preset::FiveInTwo, PRESETS);
        ToyState {
            preset,
            sparsity: r.number("s", 0.9, 0.0..=0.99),
            decay: r.number("r", preset.default_decay(), 0.5..=1.0),
            seed: r.number("seed", 0, 0..=u64::MAX),
            lr: r.number("lr", 0.01, 1e-5..=1.0),
        }
    }

    fn write(&self, w: &mut Writer) {
        let d = ToyState::default();
        w.choice("nm", self.preset, d.preset, PRESETS);
        w.number("s", self.sparsity, d.sparsity);
        w.number("r", self.decay, self.preset.default_decay());
        w.number("seed", self.seed, d.seed);
        w.number("lr", self.lr, d.lr);
    }
}

/// One press of Train runs this many steps, then pauses (the pentagon needs about 5,000).
pub const TOY_BUDGET: usize = 10_000;
/// The toy model's batch: large enough that the loss curve is smooth at a few thousand steps per second.
const BATCH_SIZE: usize = 1024;

/// The controls as the student left them. The seed and the learning rate are typed, so they may not parse.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub preset: Preset,
    pub sparsity: f32,
    pub decay: f32,
    pub seed: String,
    pub lr: String,
}

impl Settings {
    pub fn from_state(s: &ToyState) -> Self {
        Settings {
            preset: s.preset,
            sparsity: s.sparsity,
            decay: s.decay,
            seed: s.seed.to_string(),
            lr: s.lr.to_string(),
        }
    }

    /// The toy model the controls describe, or a message that says what to type instead.
    pub fn config(&self) -> Result<ToyConfig, String> {
        let (n, m) = self.preset.dims();
        let seed = self.seed.trim().parse::<u64>().map_err(|_| "The seed must be a whole number from 0 upwards.")?;
        let lr = self.lr.trim().parse::<f32>().map_err(|_| "The learning rate must be a number, such as 0.01.")?;
        let cfg = ToyConfig {
            n_features: n,
            n_hidden: m,
            sparsity: self.sparsity,
            importance_decay: self.decay,
            importance: None,
            batch_size: BATCH_SIZE,
            lr,
            seed,
        };
        cfg.validate().map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    /// What the link keeps: the sliders as they show (two decimals), and a seed or rate that does not parse left
    /// at its default (the lab's message says why).
    pub fn url_state(&self) -> ToyState {
        let d = ToyState::default();
        let shown = |v: f32| (v * 100.0).round() / 100.0;
        ToyState {
            preset: self.preset,
            sparsity: shown(self.sparsity),
            decay: shown(self.decay),
            seed: self.seed.trim().parse().unwrap_or(d.seed),
            lr: self.lr.trim().parse().unwrap_or(d.lr),
        }
    }
}

/// The status line under the model's buttons. A run that stopped part-way can go on, unless it diverged.
pub fn model_status(step: usize, loss: Option<f32>, training: bool, rate: Option<f64>, diverged: bool) -> String {
    let idle = if step > 0 && !diverged { PAUSED } else { "" };
    status_line("Step", step, loss, training, rate, idle)
}

/// The angles between neighbouring represented features, as the summary says them ("72°, 72°") and as its
/// `data-gaps` attribute holds them.
pub fn gaps_text(gaps: &[AngleGap]) -> (String, String) {
    let said: Vec<String> = gaps.iter().map(|g| format!("{:.0}°", g.degrees)).collect();
    let attr: Vec<String> = gaps.iter().map(|g| format!("{:.2}", g.degrees)).collect();
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(" Angles between neighbouring represented features: {}.", said.join(", "))
    };
    (said, attr.join(","))
}

/// A feature's bar colour by how much it shares its dimensions (interference): 0 is a dimension of its own
/// (blue), 1 or more is heavily shared (orange).
pub fn sharing_colour(interference: f32) -> String {
    let t = interference.clamp(0.0, 1.0);
    let lerp = |a: f32, b: f32| (a + t * (b - a)) as u8;
    format!("rgb({},{},{})", lerp(37.0, 217.0), lerp(99.0, 119.0), lerp(235.0, 6.0))
}

/// The request for cell `i` of the sweep, row by row.
pub fn cell_request(spec: &PhaseSpec, i: usize) -> LabRequest {
    let cols = spec.importances.len();
    LabRequest::PhaseCell { spec: spec.clone(), row: i / cols, col: i % cols }
}

/// Where a cell's answer goes in the row-by-row list of cells.
pub fn cell_index(spec: &PhaseSpec, cell: &PhaseCell) -> usize {
    cell.row * spec.importances.len() + cell.col
}

/// The line beside the sweep's buttons: how far it got, how long it took, or where it was cancelled.
pub fn sweep_summary(done: usize, total: usize, running: bool, seconds: Option<f64>) -> String {
    match (running, seconds) {
        (true, _) => format!("{done} / {total} cells…"),
        (false, Some(s)) => format!("all {total} cells in {s:.1} s"),
        (false, None) if done > 0 => format!("cancelled at {done} / {total} cells"),
        _ => String::new(),
    }
}

/// The phase diagram as a heat grid, row by row (densities down, the extra feature's importance across): each
/// cell coloured by its phase (the colours of the legend under it) or pale while not computed yet. Density is
/// labelled every other row and importance every third column, and always at the last.
pub fn phase_heat(spec: &PhaseSpec, cells: &[Option<PhaseCell>]) -> Heat {
    let (rows, cols) = (spec.densities.len(), spec.importances.len());
    let cell = |c: &Option<PhaseCell>| match c {
        None => Cell { fill: "#f1f5f9".into(), title: "not computed yet".into() },
        Some(c) => {
            let (fill, name) = match c.phase {
                Phase::Ignored => ("#cbd5e1", "ignored"),
                Phase::Dedicated => ("#2563eb", "its own dimension"),
                Phase::Superposed => ("#d97706", "superposed"),
            };
            let title = format!(
                "density {:.3}, relative importance {:.2}: {name} (length {:.2})",
                c.density, c.importance, c.norm
            );
            Cell { fill: fill.into(), title }
        }
    };
    let shown = |i: usize, every: usize, n: usize| i.is_multiple_of(every) || i + 1 == n;
    let row_labels = (spec.densities.iter().enumerate())
        .map(|(r, &d)| match shown(r, 2, rows) {
            true if d >= 0.1 => format!("{d:.2}"),
            true => format!("{d:.3}"),
            false => String::new(),
        })
        .collect();
    let col_labels = (spec.importances.iter().enumerate())
        .map(|(k, imp)| if shown(k, 3, cols) { format!("{imp:.1}") } else { String::new() })
        .collect();
    let names = (
        spec.densities.iter().map(|d| format!("{d}")).collect(),
        spec.importances.iter().map(|i| format!("{i}")).collect(),
    );
    let cells = cells.iter().map(cell).collect();
    Heat { rows, cols, cells, row_labels, col_labels, outlined: vec![], key: None, values: vec![], names }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::core::url::parse_query;

    #[test]
    fn state_round_trips() {
        let s = ToyState { preset: Preset::TwentyInFive, sparsity: 0.75, decay: 0.8, seed: 9, lr: 0.003 };
        assert_eq!(ToyState::from_query(&s.to_query()), (s, vec![]));
        assert!(ToyState::default().to_query().is_empty());
    }

    #[test]
    fn values_that_were_dropped_silently_are_now_named() {
        for (q, key) in [("s=", "s"), ("nm=", "nm"), ("s=1.5", "s"), ("seed=x", "seed"), ("nm=3-1", "nm")] {
            let (s, p) = ToyState::from_query(&parse_query(q));
            assert_eq!(s, ToyState::default(), "{q}");
            assert_eq!(p.len(), 1, "{q}");
            assert_eq!(p[0].key, key);
        }
    }

    #[test]
    fn settings_give_the_model_or_say_what_to_type() {
        let s = Settings::from_state(&ToyState::default());
        let cfg = s.config().unwrap();
        assert_eq!((cfg.n_features, cfg.n_hidden, cfg.seed, cfg.lr), (5, 2, 0, 0.01));
        let bad_seed = Settings { seed: "-1".into(), ..s.clone() };
        assert_eq!(bad_seed.config().unwrap_err(), "The seed must be a whole number from 0 upwards.");
        let bad_lr = Settings { lr: "fast".into(), ..s.clone() };
        assert!(bad_lr.config().unwrap_err().starts_with("The learning rate must be a number"));
        let big = Settings { preset: Preset::TwentyInFive, lr: " 0.003 ".into(), ..s };
        assert_eq!((big.config().unwrap().n_features, big.config().unwrap().lr), (20, 0.003));
    }

    #[test]
    fn the_link_keeps_what_the_sliders_show_and_drops_what_does_not_parse() {
        let s = Settings {
            preset: Preset::TwentyInFive,
            sparsity: 0.7512,
            decay: 0.8,
            seed: "oops".into(),
            lr: "0.003".into(),
        };
        let u = s.url_state();
        assert_eq!((u.sparsity, u.seed, u.lr), (0.75, 0, 0.003));
        assert_eq!(ToyState::from_query(&u.to_query()), (u, vec![]));
    }

    #[test]
    fn the_status_line_offers_to_go_on_unless_the_run_diverged() {
        assert_eq!(model_status(0, None, false, None, false), "Step 0");
        assert_eq!(model_status(500, Some(0.5), false, None, false), "Step 500 · loss 0.50000 · paused: Train goes on");
        assert_eq!(model_status(500, Some(0.5), false, None, true), "Step 500 · loss 0.50000");
    }

    #[test]
    fn gaps_are_said_in_degrees_and_kept_to_two_decimals() {
        let gaps = [AngleGap { from: 0, to: 1, degrees: 72.04 }, AngleGap { from: 1, to: 0, degrees: 287.96 }];
        let (said, attr) = gaps_text(&gaps);
        assert_eq!(said, " Angles between neighbouring represented features: 72°, 288°.");
        assert_eq!(attr, "72.04,287.96");
        assert_eq!(gaps_text(&[]), (String::new(), String::new()));
    }

    #[test]
    fn sharing_runs_from_blue_to_orange() {
        assert_eq!(sharing_colour(0.0), "rgb(37,99,235)");
        assert_eq!(sharing_colour(3.0), "rgb(217,119,6)");
    }

    #[test]
    fn every_cell_of_the_sweep_is_asked_once_and_lands_in_its_place() {
        use crate::lens::methods::superposition::phase::Phase;
        let spec = PhaseSpec::default();
        let (rows, cols) = (spec.densities.len(), spec.importances.len());
        for i in 0..spec.cells() {
            let LabRequest::PhaseCell { row, col, .. } = cell_request(&spec, i) else { panic!("not a cell") };
            assert!(row < rows && col < cols, "cell {i} at ({row}, {col})");
            let cell = PhaseCell {
                row,
                col,
                density: 0.0,
                importance: 0.0,
                phase: Phase::Ignored,
                norm: 0.0,
                interference: 0.0,
                loss: 0.0,
                w: vec![],
                b: vec![],
            };
            assert_eq!(cell_index(&spec, &cell), i, "the answer lands where its request came from");
        }
    }

    #[test]
    fn the_sweep_says_how_far_it_got() {
        assert_eq!(sweep_summary(57, 144, true, None), "57 / 144 cells…");
        assert_eq!(sweep_summary(144, 144, false, Some(3.71)), "all 144 cells in 3.7 s");
        assert_eq!(sweep_summary(57, 144, false, None), "cancelled at 57 / 144 cells");
        assert_eq!(sweep_summary(0, 144, false, None), "");
    }

    #[test]
    fn the_phase_grid_colours_cells_by_phase_and_thins_its_labels() {
        let spec = PhaseSpec::default();
        let mut cells = vec![None; spec.cells()];
        let done = |phase| PhaseCell {
            row: 0,
            col: 0,
            density: 1.0,
            importance: 0.5,
            phase,
            norm: 0.9,
            interference: 0.0,
            loss: 0.0,
            w: vec![],
            b: vec![],
        };
        cells[0] = Some(done(Phase::Dedicated));
        cells[1] = Some(done(Phase::Superposed));
        let h = phase_heat(&spec, &cells);
        assert_eq!((h.rows, h.cols, h.cells.len()), (12, 12, 144));
        assert_eq!([&h.cells[0].fill, &h.cells[1].fill, &h.cells[2].fill], ["#2563eb", "#d97706", "#f1f5f9"]);
        assert_eq!(h.cells[0].title, "density 1.000, relative importance 0.50: its own dimension (length 0.90)");
        assert_eq!(h.cells[2].title, "not computed yet");
        // Rows 0, 2, ..., 10 and the last; columns 0, 3, 6, 9 and the last.
        let named =
            |ls: &[String]| ls.iter().enumerate().filter(|(_, l)| !l.is_empty()).map(|(i, _)| i).collect::<Vec<_>>();
        assert_eq!(named(&h.row_labels), [0, 2, 4, 6, 8, 10, 11]);
        assert_eq!(named(&h.col_labels), [0, 3, 6, 9, 11]);
        assert_eq!((h.row_labels[0].as_str(), h.row_labels[11].as_str()), ("1.00", "0.010"));
    }
}
