//! The superposition lab (9.2.4): the toy model of superposition trained live in the worker, and the phase
//! diagram. Its URL state: the preset, sparsity, importance decay, seed and learning rate.
use crate::app::core::url::{Reader, UrlState, Writer};

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
}
