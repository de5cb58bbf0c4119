//! The probing lab (9.2.3): a concept (built-in, or a regular expression over the text), a probe per layer of
//! the Moby-Dick model against a baseline and a control; or, on a model opened in this tab, a regular
//! expression over its tokens' text. Its URL state: the model and the concept.
use crate::app::core::own_text::{reading_window, tokens_for};
use crate::app::core::url::{Reader, UrlState, Writer};
use crate::lens::methods::probe::{BuiltinConcept, ProbeSettings, TokenConcept};
use crate::lens::Gpt2Config;

#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::ProbeLab;

/// The longest regular expression a link carries.
pub const MAX_REGEX: usize = 200;

/// The pattern an opened model starts from, on the next token: "a space or a line break starts the next
/// token", the token-level "space next" (the same labels on a character-level model).
pub const OWN_REGEX: &str = r"^\s";

const MODELS: &[(&str, bool)] = &[("moby", false), ("own", true)];
const WHICH_TOKEN: &[(&str, bool)] = &[("next", true), ("this", false)];

#[derive(Clone, Debug, PartialEq)]
pub struct ProbeState {
    /// On the model opened in this tab (URL `model=own`), whose concept is always a regular expression.
    pub own: bool,
    pub concept: BuiltinConcept,
    /// A regular expression, which takes the place of the built-in concept when present.
    pub regex: Option<String>,
    /// On an opened model: the pattern reads the next token's text (URL `tok=next`) or the position's own.
    pub next: bool,
}

impl Default for ProbeState {
    fn default() -> Self {
        ProbeState { own: false, concept: BuiltinConcept::SpaceNext, regex: None, next: true }
    }
}

impl ProbeState {
    /// The concept on an opened model: the link's pattern, or `OWN_REGEX`.
    pub fn token_concept(&self) -> TokenConcept {
        TokenConcept { pattern: self.regex.clone().unwrap_or_else(|| OWN_REGEX.to_string()), next: self.next }
    }
}

impl UrlState for ProbeState {
    fn read(r: &mut Reader) -> Self {
        let own = r.choice("model", false, MODELS);
        ProbeState {
            own,
            // An opened model has no built-in concepts; a link that names one for it is read as the default.
            concept: if own {
                BuiltinConcept::SpaceNext
            } else {
                r.choice("concept", BuiltinConcept::SpaceNext, &BuiltinConcept::by_key())
            },
            regex: r.optional_text("re", MAX_REGEX),
            next: if own { r.choice("tok", true, WHICH_TOKEN) } else { true },
        }
    }

    fn write(&self, w: &mut Writer) {
        w.choice("model", self.own, false, MODELS);
        if self.own {
            w.choice("tok", self.next, true, WHICH_TOKEN);
        } else {
            w.choice("concept", self.concept, BuiltinConcept::SpaceNext, &BuiltinConcept::by_key());
        }
        w.optional_text("re", self.regex.as_deref());
    }
}

/// The tokens an excerpt shows.
const EXCERPT_TOKENS: usize = 60;

/// A stretch of `EXCERPT_TOKENS` tokens with their labels (unlabelled ones as "no"), starting a little before
/// the first "yes" after the text's first hundred tokens, so the student sees both classes before trusting a
/// score.
pub fn token_excerpt(pieces: &[String], labels: &[Option<bool>]) -> Vec<(String, bool)> {
    let n = pieces.len().min(labels.len());
    let skip = 100.min(n / 2);
    let first = (skip..n).find(|&i| labels[i] == Some(true)).unwrap_or(skip).saturating_sub(EXCERPT_TOKENS / 3);
    let end = (first + EXCERPT_TOKENS).min(n);
    (first..end).map(|i| (pieces[i].clone(), labels[i] == Some(true))).collect()
}

/// How an opened model is probed: windows of `window` tokens of the text (the model's first token, when it has
/// one, in front of each and left out of the probes), about `positions` of them in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnPlan {
    pub window: usize,
    pub positions: usize,
}

/// All the windows cost at most about this many (24 d_model² per token per layer): seconds, not minutes.
const RECORDING_FLOPS: u64 = 200_000_000_000;

/// The plan for `cfg`: the Moby-Dick model's own (128-token windows, 5,000 positions) for a small model, so
/// the same folder opened from disk is probed as the lab probes it; shorter windows and fewer positions for a
/// bigger one (GPT-2 small: 35 tokens, 1,177 positions).
pub fn own_plan(cfg: &Gpt2Config, bos: bool) -> OwnPlan {
    OwnPlan {
        window: reading_window(cfg, bos),
        positions: tokens_for(cfg, RECORDING_FLOPS, 1000, ProbeSettings::default().positions),
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
            let s = ProbeState { concept: c, ..ProbeState::default() };
            assert_eq!(ProbeState::from_query(&s.to_query()), (s, vec![]));
        }
        let s =
            ProbeState { concept: BuiltinConcept::VowelNext, regex: Some("[A-Z]{2,}".into()), ..Default::default() };
        assert_eq!(ProbeState::from_query(&s.to_query()), (s, vec![]));
        assert!(ProbeState::default().to_query().is_empty());
    }

    #[test]
    fn an_opened_model_reads_a_pattern_on_this_token_or_the_next() {
        let own = ProbeState { own: true, ..ProbeState::default() };
        assert_eq!(ProbeState::from_query(&own.to_query()), (own.clone(), vec![]));
        assert_eq!(own.token_concept(), TokenConcept { pattern: OWN_REGEX.into(), next: true });
        let this = ProbeState { own: true, regex: Some("^ [A-Z]".into()), next: false, ..ProbeState::default() };
        assert_eq!(ProbeState::from_query(&this.to_query()), (this.clone(), vec![]));
        assert!(this.to_query().iter().any(|(k, v)| k == "tok" && v == "this"));
        // A built-in concept means nothing on an opened model; `tok` nothing on ours.
        let (s, _) = ProbeState::from_query(&parse_query("model=own&concept=vowel-next"));
        assert_eq!(s, own);
        let (s, p) = ProbeState::from_query(&parse_query("tok=this"));
        assert_eq!((s.next, p.len()), (true, 1));
        let (s, p) = ProbeState::from_query(&parse_query("model=own&tok=sideways"));
        assert_eq!((s.next, p[0].key.as_str()), (true, "tok"));
    }

    #[test]
    fn an_excerpt_starts_before_the_first_yes_after_the_opening() {
        let pieces: Vec<String> = (0..400).map(|i| format!("t{i}")).collect();
        let mut labels = vec![Some(false); 400];
        labels[50] = Some(true);
        labels[250] = Some(true);
        let ex = token_excerpt(&pieces, &labels);
        assert_eq!(ex.len(), EXCERPT_TOKENS);
        assert_eq!(ex[0].0, "t230");
        assert_eq!(ex.iter().filter(|(_, on)| *on).count(), 1);
        // A short text: from its middle, to its end.
        let ex = token_excerpt(&pieces[..10], &labels[..10]);
        assert_eq!(ex.first().map(|e| e.0.as_str()), Some("t0"));
        assert_eq!(ex.len(), 10);
        assert!(token_excerpt(&[], &[]).is_empty());
    }

    #[test]
    fn a_small_model_is_probed_as_ours_and_a_big_one_in_fewer_shorter_windows() {
        let moby = Gpt2Config::new(83, 128, 128, 4, 4, false);
        assert_eq!(own_plan(&moby, false), OwnPlan { window: 128, positions: 5000 });
        let gpt2 = Gpt2Config::new(50257, 1024, 768, 12, 12, false);
        assert_eq!(own_plan(&gpt2, true), OwnPlan { window: 35, positions: 1177 });
        // A short context holds the window and the model's first token.
        let short = Gpt2Config::new(300, 24, 64, 2, 4, false);
        assert_eq!(own_plan(&short, true).window, 23);
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
