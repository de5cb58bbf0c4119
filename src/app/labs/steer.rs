//! The steering lab (9.3.2): a steering vector from a built-in pair, two typed sets of contexts or a probe's
//! direction, added at one layer during generation. Its URL state: the source, layer, coefficient, seed,
//! prompt and the typed sets.
use crate::app::core::url::{Reader, UrlState, Writer};
use crate::lens::methods::probe::BuiltinConcept;
use crate::lens::methods::steering::PAIRS;

#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::SteerLab;

pub const DEFAULT_PROMPT: &str = "It was a clear steel-blue day. The firmaments of air and sea were hardly separable";
pub const DEFAULT_SEED: u64 = 11;
/// The slider's range: far enough either way to break the text.
pub const COEF_MAX: f32 = 2.0;
/// The residual layers of the Moby-Dick model: 0 (embedding) to 4 (after the last block).
pub const MAX_LAYER: usize = 4;
/// The longest prompt, and the longest typed set of contexts, a link carries.
pub const MAX_PROMPT: usize = 500;
pub const MAX_SET: usize = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Pair(usize),
    Custom,
    Probe(BuiltinConcept),
}

impl Source {
    /// The layer and coefficient a source starts from.
    pub fn defaults(self) -> (usize, f32) {
        match self {
            Source::Pair(i) => (PAIRS[i].layer, PAIRS[i].coefficient),
            Source::Custom => (PAIRS[0].layer, PAIRS[0].coefficient),
            Source::Probe(_) => (2, 1.0),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pair,
    Custom,
    Probe,
}

const KINDS: &[(&str, Kind)] = &[("pair", Kind::Pair), ("custom", Kind::Custom), ("probe", Kind::Probe)];

#[derive(Clone, Debug, PartialEq)]
pub struct SteerState {
    pub source: Source,
    pub layer: usize,
    pub coef: f32,
    pub seed: u64,
    pub prompt: String,
    /// The typed sets (one context per line); `None` starts from the first built-in pair's.
    pub positive: Option<String>,
    pub negative: Option<String>,
}

impl Default for SteerState {
    fn default() -> Self {
        let source = Source::Pair(0);
        let (layer, coef) = source.defaults();
        SteerState {
            source,
            layer,
            coef,
            seed: DEFAULT_SEED,
            prompt: DEFAULT_PROMPT.into(),
            positive: None,
            negative: None,
        }
    }
}

impl UrlState for SteerState {
    fn read(r: &mut Reader) -> Self {
        let concepts = BuiltinConcept::by_key();
        let source = match r.choice("src", Kind::Pair, KINDS) {
            Kind::Pair => Source::Pair(r.number("pair", 0, 0..=PAIRS.len() - 1)),
            Kind::Custom => Source::Custom,
            Kind::Probe => Source::Probe(r.choice("concept", BuiltinConcept::CapitalNext, &concepts)),
        };
        let (layer, coef) = source.defaults();
        SteerState {
            source,
            layer: r.number("layer", layer, 0..=MAX_LAYER),
            coef: r.number("c", coef, -COEF_MAX..=COEF_MAX),
            seed: r.number("seed", DEFAULT_SEED, 0..=u64::MAX),
            prompt: r.text("prompt", DEFAULT_PROMPT, MAX_PROMPT),
            positive: r.optional_text("pos", MAX_SET),
            negative: r.optional_text("neg", MAX_SET),
        }
    }

    fn write(&self, w: &mut Writer) {
        let concepts = BuiltinConcept::by_key();
        match self.source {
            Source::Pair(i) => w.number("pair", i, 0),
            Source::Custom => w.choice("src", Kind::Custom, Kind::Pair, KINDS),
            Source::Probe(c) => {
                w.choice("src", Kind::Probe, Kind::Pair, KINDS);
                w.choice("concept", c, BuiltinConcept::CapitalNext, &concepts);
            }
        }
        let (layer, coef) = self.source.defaults();
        w.number("layer", self.layer, layer);
        w.number("c", self.coef, coef);
        w.number("seed", self.seed, DEFAULT_SEED);
        w.text("prompt", &self.prompt, DEFAULT_PROMPT);
        w.optional_text("pos", self.positive.as_deref());
        w.optional_text("neg", self.negative.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::core::url::parse_query;

    #[test]
    fn every_source_round_trips() {
        let sources =
            [Source::Pair(0), Source::Pair(PAIRS.len() - 1), Source::Custom, Source::Probe(BuiltinConcept::VowelNext)];
        for source in sources {
            let s = SteerState {
                source,
                layer: 3,
                coef: -1.25,
                seed: 5,
                prompt: "Call me Ishmael.".into(),
                positive: Some("WHALE\nSHIP".into()),
                negative: Some("whale\nship".into()),
            };
            assert_eq!(SteerState::from_query(&s.to_query()), (s, vec![]));
        }
        assert!(SteerState::default().to_query().is_empty());
    }

    #[test]
    fn a_tampered_link_names_every_bad_key() {
        let (s, p) = SteerState::from_query(&parse_query("src=pair&pair=7&layer=9&c=abc&seed=-1"));
        assert_eq!(s, SteerState::default());
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["pair", "layer", "c", "seed"]);
    }

    #[test]
    fn a_probe_source_defaults_to_its_own_layer() {
        let (s, p) = SteerState::from_query(&parse_query("src=probe&concept=capital-next"));
        assert_eq!((s.source, s.layer, s.coef, p.len()), (Source::Probe(BuiltinConcept::CapitalNext), 2, 1.0, 0));
    }
}
