//! The probing lab (9.2.3): a concept (built-in, or a regular expression over the text), a probe per layer of
//! the Moby-Dick model against a baseline and a control. Its URL state: the concept.
use crate::app::core::url::{Reader, UrlState, Writer};
use crate::lens::probe::BuiltinConcept;

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
    fn unknown_concepts_and_empty_patterns_are_named() {
        let (s, p) = ProbeState::from_query(&parse_query("concept=no-such-thing"));
        assert_eq!(s, ProbeState::default());
        assert!(p[0].to_string().contains("no-such-thing"), "{}", p[0]);
        let (s, p) = ProbeState::from_query(&parse_query("re="));
        assert_eq!((s.regex, p[0].key.as_str()), (None, "re"));
    }
}
