//! The sparse-autoencoder lab (9.2.5): two tabs, the toy SAE (known features, trained in the worker) and the
//! feature browser of the SAE shipped with the Moby-Dick model. Its URL state: the tab, the toy SAE's L1
//! coefficient and dictionary size, and the browser's latent, order and whether dead latents are hidden. And the toy tab's plain rules: when the SAE can train, and
//! what the tab says.
use crate::app::core::export::{DataTable, Datum};
use crate::app::core::format::fmt_int;
use crate::app::core::trainer::{status_line, PAUSED};
use crate::app::core::url::{Reader, UrlState, Writer};
use crate::lens::methods::superposition::sae::{SaeConfig, SaeMetrics, RECOVERY_COSINE};

pub mod browser;
#[cfg(target_arch = "wasm32")]
mod toy;
#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::SaeLabs;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Toy,
    Features,
}

/// How the feature browser lists latents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Density,
    Index,
    Peak,
}

impl Order {
    pub fn key(self) -> &'static str {
        ORDERS.iter().find(|(_, o)| *o == self).map(|(k, _)| *k).unwrap_or("density")
    }
}

pub const ORDERS: &[(&str, Order)] = &[("density", Order::Density), ("index", Order::Index), ("peak", Order::Peak)];
const TABS: &[(&str, Tab)] = &[("toy", Tab::Toy), ("features", Tab::Features)];

/// The largest latent number a link may name before the dictionary is known; the view checks the real size.
const MAX_LATENT: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq)]
pub struct SaeState {
    pub tab: Tab,
    /// The chosen latent; `None` picks the one that fires most often.
    pub latent: Option<usize>,
    pub order: Order,
    pub hide_dead: bool,
    /// The toy SAE's settings (kept whichever tab shows).
    pub toy: ToySae,
}

/// The toy tab's controls: the L1 coefficient λ and the dictionary size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ToySae {
    pub l1: f32,
    pub d_sae: usize,
}

impl Default for ToySae {
    fn default() -> Self {
        let c = SaeConfig::default();
        ToySae { l1: c.l1, d_sae: c.d_sae }
    }
}

impl Default for SaeState {
    fn default() -> Self {
        SaeState { tab: Tab::Toy, latent: None, order: Order::Density, hide_dead: false, toy: ToySae::default() }
    }
}

impl UrlState for SaeState {
    fn read(r: &mut Reader) -> Self {
        let tab = r.choice("tab", Tab::Toy, TABS);
        let order_named = r.raw("order").is_some();
        let latent_named = r.raw("latent").is_some();
        let latent = r.optional_number("latent", 0..=MAX_LATENT);
        let order = r.choice("order", Order::Density, ORDERS);
        let hide_dead = r.flag("alive", false);
        let d = ToySae::default();
        let l1 = r.number("l1", d.l1, L1_RANGE.0..=L1_RANGE.1);
        let mut d_sae = r.number("dsae", d.d_sae, 1..=usize::MAX);
        if !DICT_SIZES.iter().any(|&(n, _)| n == d_sae) {
            let sizes: Vec<String> = DICT_SIZES.iter().map(|(n, _)| n.to_string()).collect();
            r.problem(
                "dsae",
                &d_sae.to_string(),
                format!("is not one of the sizes offered ({})", sizes.join(", ")),
                d.d_sae,
            );
            d_sae = d.d_sae;
        }
        // A link that names a latent or an order means the browser, as links made before the tab key did.
        let browser = latent_named || order_named || hide_dead;
        let tab = if browser { Tab::Features } else { tab };
        SaeState { tab, latent, order, hide_dead, toy: ToySae { l1, d_sae } }
    }

    fn write(&self, w: &mut Writer) {
        let browser_keys = self.latent.is_some() || self.order != Order::Density || self.hide_dead;
        if !browser_keys {
            w.choice("tab", self.tab, Tab::Toy, TABS);
        }
        w.optional_number("latent", self.latent);
        w.choice("order", self.order, Order::Density, ORDERS);
        w.flag("alive", self.hide_dead, false);
        let d = ToySae::default();
        w.number("l1", self.toy.l1, d.l1);
        w.number("dsae", self.toy.d_sae, d.d_sae);
    }
}

// ---------------------------------------------------------------- the toy tab

/// Steps the toy tab trains its toy model for before building the SAE (the pentagon needs about 5,000).
pub const SAE_TOY_STEPS: usize = 5_000;
/// One press of Train runs this many SAE steps.
pub const SAE_BUDGET: usize = 3_000;
/// The L1 coefficient's slider: (min, max, step).
pub const L1_RANGE: (f32, f32, f32) = (0.0, 0.3, 0.005);
/// The dictionary sizes offered, with their labels (the toy model has five features).
pub const DICT_SIZES: &[(usize, &str)] = &[
    (3, "3 latents (fewer than features)"),
    (5, "5 latents"),
    (10, "10 latents"),
    (20, "20 latents"),
    (40, "40 latents"),
];

/// What Train does in the toy tab: the SAE needs a trained toy model first, then an SAE to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToyTabStep {
    /// Train the toy model the rest of the way (it stopped part-way), then build the SAE.
    FinishToy,
    /// Build the SAE (building it failed before).
    BuildSae,
    TrainSae,
}

impl ToyTabStep {
    pub fn of(toy_ready: bool, sae_built: bool) -> Self {
        match (toy_ready, sae_built) {
            (false, _) => ToyTabStep::FinishToy,
            (true, false) => ToyTabStep::BuildSae,
            (true, true) => ToyTabStep::TrainSae,
        }
    }

    /// What the progress bar says while the step runs.
    pub fn phase(self) -> &'static str {
        match self {
            ToyTabStep::FinishToy => "training the toy model",
            ToyTabStep::BuildSae => "building the SAE",
            ToyTabStep::TrainSae => "training the SAE",
        }
    }
}

/// The toy tab's status line: the toy model's training first, then the SAE's.
pub fn toy_tab_status(
    toy_step: usize,
    toy_ready: bool,
    sae: Option<(usize, Option<f32>)>,
    training: bool,
    rate: Option<f64>,
) -> String {
    if !toy_ready {
        let (step, of) = (fmt_int(toy_step), fmt_int(SAE_TOY_STEPS));
        return if training {
            format!("Training the toy model first (five features in two dimensions): step {step} of {of}…")
        } else {
            format!("The toy model stopped at step {step} of {of}: Train goes on.")
        };
    }
    let Some((step, loss)) = sae else { return "Building the sparse autoencoder…".into() };
    let idle = if step == 0 { "untrained: press Train" } else { PAUSED };
    status_line("SAE step", step, loss, training, rate, idle)
}

/// The dead latents as the metric shows them: "none", or how many and which (counting from 1).
pub fn dead_text(dead: &[usize]) -> String {
    if dead.is_empty() {
        return "none".into();
    }
    let which: Vec<String> = dead.iter().map(|d| (d + 1).to_string()).collect();
    format!("{} ({})", dead.len(), which.join(", "))
}

/// The cells to frame in the cosine heatmap: (latent, feature) of each recovered feature's best latent.
pub fn best_matches(m: &SaeMetrics) -> Vec<(usize, usize)> {
    m.best_latent
        .iter()
        .enumerate()
        .filter(|(i, _)| m.best_cosine[*i] >= RECOVERY_COSINE)
        .map(|(i, &latent)| (latent, i))
        .collect()
}

/// A latent's activation histogram as a table: each bin's range over (0, `max`] and its count of characters
/// (the chart draws the counts on a log scale; the table has them as counted).
pub fn histogram_table(hist: &[u32], max: f32) -> DataTable {
    let bins = hist.len().max(1) as f64;
    let edge = |i: usize| Datum::Num(max as f64 * i as f64 / bins);
    DataTable {
        caption: "histogram of the latent's nonzero activations".into(),
        columns: vec!["activation from".into(), "activation to".into(), "characters".into()],
        rows: hist.iter().enumerate().map(|(i, &c)| vec![edge(i), edge(i + 1), Datum::Num(c as f64)]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_table_has_the_counts_not_their_logs() {
        let t = histogram_table(&[5, 0, 1000], 3.0);
        assert_eq!(t.columns, ["activation from", "activation to", "characters"]);
        assert_eq!(t.rows[2], [Datum::Num(2.0), Datum::Num(3.0), Datum::Num(1000.0)]);
    }
    use crate::app::core::url::parse_query;

    #[test]
    fn state_round_trips() {
        for s in [
            SaeState::default(),
            SaeState { tab: Tab::Features, ..SaeState::default() },
            SaeState {
                tab: Tab::Features,
                latent: Some(17),
                order: Order::Peak,
                hide_dead: true,
                ..SaeState::default()
            },
            SaeState { toy: ToySae { l1: 0.035, d_sae: 20 }, ..SaeState::default() },
            SaeState { tab: Tab::Features, latent: Some(3), toy: ToySae { l1: 0.2, d_sae: 3 }, ..SaeState::default() },
        ] {
            assert_eq!(SaeState::from_query(&s.to_query()), (s, vec![]));
        }
    }

    #[test]
    fn a_latent_opens_the_browser_and_a_bad_one_is_named() {
        let (s, p) = SaeState::from_query(&parse_query("latent=5"));
        assert_eq!((s.tab, s.latent, p.len()), (Tab::Features, Some(5), 0));
        let (s, p) = SaeState::from_query(&parse_query("latent=abc&tab=features"));
        assert_eq!((s.tab, s.latent, p[0].key.as_str()), (Tab::Features, None, "latent"));
    }

    #[test]
    fn toy_settings_outside_the_offer_are_named() {
        let (s, p) = SaeState::from_query(&parse_query("dsae=7&l1=0.9"));
        assert_eq!((s.tab, s.toy), (Tab::Toy, ToySae::default()));
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["l1", "dsae"]);
        assert!(p[1].to_string().contains("not one of the sizes offered (3, 5, 10, 20, 40)"), "{}", p[1]);
    }

    #[test]
    fn train_finishes_the_toy_model_then_builds_then_trains_the_sae() {
        assert_eq!(ToyTabStep::of(false, false), ToyTabStep::FinishToy);
        assert_eq!(ToyTabStep::of(false, true), ToyTabStep::FinishToy);
        assert_eq!(ToyTabStep::of(true, false), ToyTabStep::BuildSae);
        assert_eq!(ToyTabStep::of(true, true), ToyTabStep::TrainSae);
        assert_eq!(ToyTabStep::BuildSae.phase(), "building the SAE");
    }

    #[test]
    fn the_toy_tab_says_which_model_trains() {
        assert_eq!(
            toy_tab_status(1200, false, None, true, None),
            "Training the toy model first (five features in two dimensions): step 1,200 of 5,000…"
        );
        assert_eq!(
            toy_tab_status(1200, false, None, false, None),
            "The toy model stopped at step 1,200 of 5,000: Train goes on."
        );
        assert_eq!(toy_tab_status(5000, true, None, false, None), "Building the sparse autoencoder…");
        assert_eq!(toy_tab_status(5000, true, Some((0, None)), false, None), "SAE step 0 · untrained: press Train");
        assert_eq!(
            toy_tab_status(5000, true, Some((3000, Some(0.25))), false, None),
            "SAE step 3,000 · loss 0.25000 · paused: Train goes on"
        );
    }

    #[test]
    fn dead_latents_count_from_one() {
        assert_eq!(dead_text(&[]), "none");
        assert_eq!(dead_text(&[0, 4]), "2 (1, 5)");
    }

    #[test]
    fn only_recovered_features_are_framed() {
        let m = SaeMetrics {
            mse: 0.0,
            fvu: None,
            l0: 0.0,
            density: vec![],
            dead: vec![],
            cosine: vec![],
            best_latent: vec![3, 1, 0],
            best_cosine: vec![0.95, 0.5, RECOVERY_COSINE],
            counted: vec![true; 3],
            recovered: 2,
            recovery: 2.0 / 3.0,
        };
        assert_eq!(best_matches(&m), vec![(3, 0), (0, 2)]);
    }
}
