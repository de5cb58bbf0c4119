//! The probing lab (9.2.3): a concept (built-in, or a regular expression over the text), a probe per layer of
//! the Moby-Dick model against a baseline and a control. Its URL state: the concept.
use crate::app::core::url::{Reader, UrlState, Writer};
use crate::lens::methods::probe::BuiltinConcept;

#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::ProbeLab;

/// The longest regular expression a link carries.
pub const MAX_REGEX: usize = 200;

#[derive(Clone, Debug, PartialEq)]
pub struct ProbeState {
    pub concept: BuiltinConcept,
    /// A regular expression, which takes the place of the built-in concept when present.
    pub regex: Option<String>,
}

impl Default for ProbeState {
    fn default() -> Self {
        ProbeState { concept: BuiltinConcept::SpaceNext, regex: None }
    }
}

impl UrlState for ProbeState {
    fn read(r: &mut Reader) -> Self {
        ProbeState {
            concept: r.choice("concept", BuiltinConcept::SpaceNext, &BuiltinConcept::by_key()),
            regex: r.optional_text("re", MAX_REGEX),
        }
    }

    fn write(&self, w: &mut Writer) {
        w.choice("concept", self.concept, BuiltinConcept::SpaceNext, &BuiltinConcept::by_key());
        w.optional_text("re", self.regex.as_deref());
    }
}

/// What a run's best layer says, in words: whether the probe beats the majority baseline by a margin, and
/// whether its shuffled-label control stays near the baseline (else the score may be memorisation).
pub fn verdict(best: f32, control: Option<f32>, baseline: f32) -> &'static str {
    if best - baseline < 0.02 {
        "No layer beats always guessing the majority class by much: the concept is not linearly readable here (or it is too rare to learn from 4,000 examples)."
    } else if control.is_some_and(|c| c > baseline + 0.05) {
        "Careful: the shuffled-label control also beats the baseline, so part of the score may be memorisation."
    } else {
        "The probe beats both the baseline and the control, so the concept can be read linearly from this layer. That says it is there, not that the model uses it."
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::core::url::parse_query;

    #[test]
    fn every_concept_round_trips() {
        for c in BuiltinConcept::ALL {
            assert_eq!(BuiltinConcept::from_key(c.key()), Some(c));
            let s = ProbeState { concept: c, regex: None };
            assert_eq!(ProbeState::from_query(&s.to_query()), (s, vec![]));
        }
        let s = ProbeState { concept: BuiltinConcept::VowelNext, regex: Some("[A-Z]{2,}".into()) };
        assert_eq!(ProbeState::from_query(&s.to_query()), (s, vec![]));
    }

    #[test]
    fn the_verdict_weighs_baseline_and_control() {
        assert!(verdict(0.83, Some(0.82), 0.82).starts_with("No layer"));
        assert!(verdict(0.92, Some(0.90), 0.82).starts_with("Careful"));
        assert!(verdict(0.92, Some(0.83), 0.82).starts_with("The probe beats"));
        assert!(verdict(0.92, None, 0.82).starts_with("The probe beats"));
    }

    #[test]
    fn unknown_concepts_and_empty_patterns_are_named() {
        let (s, p) = ProbeState::from_query(&parse_query("concept=no-such-thing"));
        assert_eq!(s, ProbeState::default());
        assert!(p[0].to_string().contains("no-such-thing"), "{}", p[0]);
        let (s, p) = ProbeState::from_query(&parse_query("re="));
        assert_eq!((s.regex, p[0].key.as_str()), (None, "re"));
    }
}
