//! The language-model lab (9.2.2): the logit lens on the Moby-Dick character model or the word-level induction
//! model, and sampling. Its URL state: the model, each model's text, and the sampling settings.
use crate::app::core::url::{Reader, UrlState, Writer};

#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::LanguageLab;

/// The longest text a link carries; the grid reads only the last 128 characters anyway, and a longer text
/// would make an unwieldy URL.
pub const MAX_URL_TEXT: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Moby,
    Induction,
}

const WHICH: &[(&str, Which)] = &[("moby", Which::Moby), ("induction", Which::Induction)];

/// Sampling settings as the controls hold them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    pub top_k: usize,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { temperature: 0.8, top_k: 0, seed: 1 }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LanguageState {
    pub which: Which,
    /// The Moby-Dick text; `None` opens on a passage of the held-out text.
    pub text: Option<String>,
    /// The induction model's words; `None` opens on a random repeat.
    pub words: Option<String>,
    pub sampling: Sampling,
}

impl Default for LanguageState {
    fn default() -> Self {
        LanguageState { which: Which::Moby, text: None, words: None, sampling: Sampling::default() }
    }
}

impl UrlState for LanguageState {
    fn read(r: &mut Reader) -> Self {
        let d = Sampling::default();
        LanguageState {
            which: r.choice("model", Which::Moby, WHICH),
            text: r.optional_text("text", MAX_URL_TEXT),
            words: r.optional_text("words", MAX_URL_TEXT),
            sampling: Sampling {
                temperature: r.number("temp", d.temperature, 0.0..=2.0),
                top_k: r.number("topk", d.top_k, 0..=100_000),
                seed: r.number("seed", d.seed, 0..=u64::MAX),
            },
        }
    }

    fn write(&self, w: &mut Writer) {
        let d = Sampling::default();
        w.choice("model", self.which, Which::Moby, WHICH);
        w.optional_text("text", self.text.as_deref());
        w.optional_text("words", self.words.as_deref());
        w.number("temp", self.sampling.temperature, d.temperature);
        w.number("topk", self.sampling.top_k, d.top_k);
        w.number("seed", self.sampling.seed, d.seed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::core::url::parse_query;

    #[test]
    fn state_round_trips() {
        let s = LanguageState {
            which: Which::Induction,
            text: Some("Call me Ishmael.\n".into()),
            words: Some("the cat the cat".into()),
            sampling: Sampling { temperature: 1.3, top_k: 5, seed: 77 },
        };
        assert_eq!(LanguageState::from_query(&s.to_query()), (s, vec![]));
    }

    #[test]
    fn the_old_text_only_link_still_opens() {
        let (s, p) = LanguageState::from_query(&parse_query("text=Call+me"));
        assert_eq!((s.which, s.text.as_deref(), p.len()), (Which::Moby, Some("Call me"), 0));
    }

    #[test]
    fn over_long_and_empty_text_are_named() {
        let long = format!("text={}", "a".repeat(MAX_URL_TEXT + 1));
        let (s, p) = LanguageState::from_query(&parse_query(&long));
        assert_eq!(s.text, None);
        assert!(p[0].to_string().contains("1001 characters"), "{}", p[0]);
        let (_, p) = LanguageState::from_query(&parse_query("text=&temp=9"));
        assert_eq!(p.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), ["text", "temp"]);
    }
}
