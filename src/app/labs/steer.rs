//! The steering lab (9.3.2): a steering vector from a built-in pair, two typed sets of contexts or a probe's
//! direction, added at one layer during generation, on the Moby-Dick model or on a model opened in this tab
//! (typed sets only). Its URL state: the model, source, layer, coefficient, seed, prompt and the typed sets.
use crate::app::core::url::{Reader, UrlState, Writer};
use crate::lens::gpt2::text::{quoted_chars, CharVocab};
use crate::lens::methods::probe::BuiltinConcept;
use crate::lens::methods::steering::{contexts_from_lines, PAIRS};

#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::SteerLab;

pub use crate::lens::methods::steering::DEFAULT_PROMPT;
pub const DEFAULT_SEED: u64 = 11;
/// The slider's range: far enough either way to break the text.
pub const COEF_MAX: f32 = 2.0;
/// The residual layers of the Moby-Dick model: 0 (embedding) to 4 (after the last block).
pub const MAX_LAYER: usize = 4;
/// The longest prompt, and the longest typed set of contexts, a link carries.
pub const MAX_PROMPT: usize = 500;
pub const MAX_SET: usize = 2000;

/// On an opened model: the default layer (after the first block, which every model has), coefficient, prompt
/// and sets. A word-level or BPE model reads sentences, so the sets are two moods rather than the book's
/// capitals; the coefficient is larger because a difference of means over a few sentences is short next to
/// the residual stream of a big model.
pub const OWN_LAYER: usize = 1;
pub const OWN_COEF: f32 = 4.0;
pub const OWN_COEF_MAX: f32 = 10.0;
/// The deepest residual layer a link may name for an opened model; the lab then holds it to the model's own.
pub const OWN_MAX_LAYER: usize = 128;
pub const OWN_PROMPT: &str = "I went to the market this morning and";
pub const OWN_POSITIVE: &[&str] =
    &["I love this, it is wonderful.", "What a happy, beautiful day.", "Thank you, this is great news!"];
pub const OWN_NEGATIVE: &[&str] =
    &["I hate this, it is awful.", "What a sad, miserable day.", "Oh no, this is terrible news."];
/// Tokens generated on each side on an opened model.
pub const OWN_LENGTH: usize = 40;
/// The most lines a typed set may have on an opened model: each is a pass through the model.
pub const OWN_MAX_LINES: usize = 16;

const MODELS: &[(&str, bool)] = &[("moby", false), ("own", true)];

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
    /// On the model opened in this tab (URL `model=own`); its source is always the typed sets.
    pub own: bool,
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
            own: false,
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

/// A model's defaults and bounds for the link: the layer and coefficient a source starts from, their bounds and
/// the default prompt.
struct Defaults {
    layer: usize,
    coef: f32,
    max_layer: usize,
    max_coef: f32,
    prompt: &'static str,
}

fn defaults(own: bool, source: Source) -> Defaults {
    if own {
        Defaults {
            layer: OWN_LAYER,
            coef: OWN_COEF,
            max_layer: OWN_MAX_LAYER,
            max_coef: OWN_COEF_MAX,
            prompt: OWN_PROMPT,
        }
    } else {
        let (layer, coef) = source.defaults();
        Defaults { layer, coef, max_layer: MAX_LAYER, max_coef: COEF_MAX, prompt: DEFAULT_PROMPT }
    }
}

impl UrlState for SteerState {
    fn read(r: &mut Reader) -> Self {
        let own = r.choice("model", false, MODELS);
        let concepts = BuiltinConcept::by_key();
        // An opened model has no built-in pairs or probes: its source is always the typed sets.
        let source = match own {
            true => Source::Custom,
            false => match r.choice("src", Kind::Pair, KINDS) {
                Kind::Pair => Source::Pair(r.number("pair", 0, 0..=PAIRS.len() - 1)),
                Kind::Custom => Source::Custom,
                Kind::Probe => Source::Probe(r.choice("concept", BuiltinConcept::CapitalNext, &concepts)),
            },
        };
        let d = defaults(own, source);
        SteerState {
            own,
            source,
            layer: r.number("layer", d.layer, 0..=d.max_layer),
            coef: r.number("c", d.coef, -d.max_coef..=d.max_coef),
            seed: r.number("seed", DEFAULT_SEED, 0..=u64::MAX),
            prompt: r.text("prompt", d.prompt, MAX_PROMPT),
            positive: r.optional_text("pos", MAX_SET),
            negative: r.optional_text("neg", MAX_SET),
        }
    }

    fn write(&self, w: &mut Writer) {
        let concepts = BuiltinConcept::by_key();
        w.choice("model", self.own, false, MODELS);
        match self.source {
            _ if self.own => {}
            Source::Pair(i) => w.number("pair", i, 0),
            Source::Custom => w.choice("src", Kind::Custom, Kind::Pair, KINDS),
            Source::Probe(c) => {
                w.choice("src", Kind::Probe, Kind::Pair, KINDS);
                w.choice("concept", c, BuiltinConcept::CapitalNext, &concepts);
            }
        }
        let d = defaults(self.own, self.source);
        w.number("layer", self.layer, d.layer);
        w.number("c", self.coef, d.coef);
        w.number("seed", self.seed, DEFAULT_SEED);
        w.text("prompt", &self.prompt, d.prompt);
        w.optional_text("pos", self.positive.as_deref());
        w.optional_text("neg", self.negative.as_deref());
    }
}

/// Characters generated on each side.
pub const LENGTH: usize = 400;
pub const TEMPERATURE: f32 = 0.8;

/// The encoded contexts of the two sets, positive then negative.
pub type ContextSets = (Vec<Vec<u32>>, Vec<Vec<u32>>);

impl Source {
    /// The direction picker's value for this source.
    pub fn key(self) -> String {
        match self {
            Source::Pair(i) => format!("pair{i}"),
            Source::Custom => "custom".into(),
            Source::Probe(c) => format!("probe-{}", BuiltinConcept::key(c)),
        }
    }

    /// The source a picker value names, if any.
    pub fn from_key(v: &str) -> Option<Source> {
        if let Some(i) = v.strip_prefix("pair").and_then(|i| i.parse::<usize>().ok()).filter(|&i| i < PAIRS.len()) {
            Some(Source::Pair(i))
        } else if v == "custom" {
            Some(Source::Custom)
        } else {
            v.strip_prefix("probe-").and_then(BuiltinConcept::from_key).map(Source::Probe)
        }
    }

    /// What the rates count: the pair's measure for built-in pairs, capital letters (pair 0's) otherwise.
    pub fn measure(self) -> usize {
        match self {
            Source::Pair(i) => i,
            _ => 0,
        }
    }
}

/// The layer and coefficient after picking `to` while on `from`: a pair brings its own; the first probe
/// brings the probes' (later probes keep what the student set); typed sets keep the current ones.
pub fn settings_after_switch(from: Source, to: Source, current: (usize, f32)) -> (usize, f32) {
    match to {
        Source::Pair(_) => to.defaults(),
        Source::Probe(_) if !matches!(from, Source::Probe(_)) => to.defaults(),
        _ => current,
    }
}

/// A residual layer as the pickers name it: its number and where it sits.
pub fn layer_name(l: usize) -> String {
    if l == 0 {
        "0 · the embedding".into()
    } else {
        format!("{l} · after block {}", l - 1)
    }
}

/// A text's rate of the measure, as a label and a number.
pub fn rate_text(measure: usize, s: &str) -> (String, f32) {
    let p = &PAIRS[measure];
    let r = p.rate(s);
    (format!("{}: {:.1}%", p.measure_name, 100.0 * r), r)
}

/// How the steered text compares with the plain one, in words.
pub fn ratio_text(measure: usize, plain: &str, steered: &str) -> String {
    let p = &PAIRS[measure];
    let (a, b) = (p.rate(plain), p.rate(steered));
    if a > 0.0 {
        format!("{:.1}× the unsteered rate of {}", b / a, p.measure_name)
    } else {
        format!("unsteered text has no {}", p.measure_name)
    }
}

/// The end of the prompt shown greyed before each continuation, so the text reads on from where it starts.
pub fn prompt_tail(prompt: &str) -> String {
    let n = prompt.chars().count();
    let t: String = prompt.chars().skip(n.saturating_sub(40)).collect();
    if n > 40 {
        format!("…{t}")
    } else {
        t
    }
}

/// Checks a typed text against the vocabulary, naming the unknown characters.
pub fn check_chars(vocab: &CharVocab, text: &str, what: &str) -> Result<(), String> {
    let unknown = vocab.unknown_chars(text);
    if unknown.is_empty() {
        return Ok(());
    }
    Err(format!(
        "The model has never seen {} in {what}: the book's quotes are curly (“ ” ’); remove or replace them.",
        quoted_chars(&unknown)
    ))
}

/// Everything a student types, checked before any work so that a bad input keeps the last result: the
/// contexts to average (none for a probe, which trains its own), or the message to show.
pub fn check_inputs(
    vocab: &CharVocab,
    source: Source,
    prompt: &str,
    positive: &str,
    negative: &str,
) -> Result<Option<ContextSets>, String> {
    if prompt.trim().is_empty() {
        return Err("Type a prompt: both generations continue it.".into());
    }
    check_chars(vocab, prompt, "the prompt")?;
    match source {
        Source::Pair(i) => Ok(Some(PAIRS[i].contexts(vocab).map_err(|e| e.to_string())?)),
        Source::Custom => {
            if positive.trim().is_empty() {
                return Err("The first set (“towards”) is empty: type at least one line, one context per line.".into());
            }
            if negative.trim().is_empty() {
                return Err(
                    "The second set (“away from”) is empty: type at least one line, one context per line.".into()
                );
            }
            check_chars(vocab, positive, "the first set")?;
            check_chars(vocab, negative, "the second set")?;
            let pc = contexts_from_lines(vocab, positive, "first").map_err(|e| e.to_string())?;
            let nc = contexts_from_lines(vocab, negative, "second").map_err(|e| e.to_string())?;
            Ok(Some((pc, nc)))
        }
        Source::Probe(_) => Ok(None),
    }
}

/// What a student types for an opened model, checked before any work (its tokenizer reads any text, so only
/// emptiness and size are checked here): the sets' lines, positive then negative, or the message to show.
pub fn check_own_inputs(prompt: &str, positive: &str, negative: &str) -> Result<(Vec<String>, Vec<String>), String> {
    if prompt.trim().is_empty() {
        return Err("Type a prompt: both generations continue it.".into());
    }
    let lines = |text: &str, which: &str| -> Result<Vec<String>, String> {
        let lines: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        match lines.len() {
            0 => Err(format!("The {which} is empty: type at least one line, one context per line.")),
            n if n > OWN_MAX_LINES => Err(format!(
                "The {which} has {n} lines; on your own model a set takes at most {OWN_MAX_LINES} (each is a pass through the model)."
            )),
            _ => Ok(lines),
        }
    };
    Ok((lines(positive, "first set (“towards”)")?, lines(negative, "second set (“away from”)")?))
}

/// A typed set as the link keeps it: not when it is the first pair's (the default), nor when it is too long
/// for a link (then the link keeps the pair's and the lab says nothing false: the set is still on screen).
pub fn set_for_url(text: String, pair_default: &[&str]) -> Option<String> {
    (text != pair_default.join("\n") && text.chars().count() <= MAX_SET).then_some(text)
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
                own: false,
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
    fn an_opened_model_round_trips_with_its_own_defaults() {
        let s = SteerState {
            own: true,
            source: Source::Custom,
            layer: 9,
            coef: -6.5,
            seed: 2,
            prompt: "Hello".into(),
            positive: Some("good".into()),
            negative: None,
        };
        assert_eq!(SteerState::from_query(&s.to_query()), (s, vec![]));
        let (d, p) = SteerState::from_query(&parse_query("model=own"));
        assert_eq!(
            (d.own, d.source, d.layer, d.coef, d.prompt.as_str(), p.len()),
            (true, Source::Custom, OWN_LAYER, OWN_COEF, OWN_PROMPT, 0)
        );
        assert_eq!(d.to_query(), vec![("model".to_string(), "own".to_string())]);
        // A link's layer beyond any model and a source an opened model has not are named.
        let (_, p) = SteerState::from_query(&parse_query("model=own&layer=999&src=probe"));
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["layer", "src"]);
    }

    #[test]
    fn own_inputs_are_lines_checked_before_any_work() {
        let (p, n) = check_own_inputs("Hi", " good day \n\n fine ", "bad").unwrap();
        assert_eq!((p, n), (vec!["good day".to_string(), "fine".to_string()], vec!["bad".to_string()]));
        assert!(check_own_inputs(" ", "a", "b").unwrap_err().contains("Type a prompt"));
        assert!(check_own_inputs("Hi", "\n ", "b").unwrap_err().contains("first set"));
        assert!(check_own_inputs("Hi", "a", "").unwrap_err().contains("second set"));
        let many = "x\n".repeat(OWN_MAX_LINES + 1);
        assert!(check_own_inputs("Hi", &many, "b").unwrap_err().contains(&format!("at most {OWN_MAX_LINES}")));
    }

    #[test]
    fn a_tampered_link_names_every_bad_key() {
        let (s, p) = SteerState::from_query(&parse_query("src=pair&pair=7&layer=9&c=abc&seed=-1"));
        assert_eq!(s, SteerState::default());
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["pair", "layer", "c", "seed"]);
    }

    #[test]
    fn picker_values_name_sources() {
        for src in [Source::Pair(1), Source::Custom, Source::Probe(BuiltinConcept::VowelNext)] {
            assert_eq!(Source::from_key(&src.key()), Some(src));
        }
        assert_eq!(Source::from_key(&format!("pair{}", PAIRS.len())), None);
        assert_eq!(Source::from_key("probe-nothing"), None);
        assert_eq!((Source::Pair(1).measure(), Source::Custom.measure()), (1, 0));
    }

    #[test]
    fn switching_sources_sets_layer_and_coefficient() {
        let probe = Source::Probe(BuiltinConcept::VowelNext);
        assert_eq!(settings_after_switch(Source::Custom, Source::Pair(1), (0, 0.1)), Source::Pair(1).defaults());
        assert_eq!(settings_after_switch(Source::Pair(0), probe, (3, -1.0)), (2, 1.0));
        assert_eq!(settings_after_switch(probe, Source::Probe(BuiltinConcept::CapitalNext), (3, -1.0)), (3, -1.0));
        assert_eq!(settings_after_switch(Source::Pair(0), Source::Custom, (3, -1.0)), (3, -1.0));
    }

    #[test]
    fn words_for_the_result() {
        assert_eq!(layer_name(0), "0 · the embedding");
        assert_eq!(layer_name(3), "3 · after block 2");
        assert_eq!(prompt_tail("short"), "short");
        let tail = prompt_tail(&"x".repeat(50));
        assert_eq!((tail.chars().count(), tail.starts_with('…')), (41, true));
        let measure = PAIRS[0].measure_name;
        assert!(ratio_text(0, "abc", "ABC").contains(measure), "{}", ratio_text(0, "abc", "ABC"));
        assert_eq!(ratio_text(0, "", "x"), format!("unsteered text has no {measure}"));
    }

    #[test]
    fn typed_sets_travel_in_the_link_unless_default_or_too_long() {
        let pair = PAIRS[0].positive;
        assert_eq!(set_for_url(pair.join("\n"), pair), None);
        assert_eq!(set_for_url("WHALE".into(), pair).as_deref(), Some("WHALE"));
        assert_eq!(set_for_url("x".repeat(MAX_SET + 1), pair), None);
    }

    #[test]
    fn inputs_are_checked_before_any_work() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/moby");
        let vocab = CharVocab::from_json(&std::fs::read_to_string(format!("{dir}/vocab.json")).unwrap()).unwrap();
        let ok = check_inputs(&vocab, Source::Custom, "Call me", "THE WHALE\nTHE SEA", "the whale").unwrap().unwrap();
        assert_eq!((ok.0.len(), ok.1.len()), (2, 1));
        assert!(check_inputs(&vocab, Source::Probe(BuiltinConcept::VowelNext), "Call", "", "").unwrap().is_none());
        assert!(check_inputs(&vocab, Source::Pair(0), " ", "", "").unwrap_err().contains("Type a prompt"));
        assert!(check_inputs(&vocab, Source::Custom, "Call", "\n", "x").unwrap_err().contains("first set"));
        assert!(check_inputs(&vocab, Source::Custom, "Call", "x", "").unwrap_err().contains("second set"));
        let e = check_inputs(&vocab, Source::Custom, "Call", "x\u{1F40B}", "y").unwrap_err();
        assert!(e.contains("in the first set") && e.contains("never seen"), "{e}");
    }

    #[test]
    fn a_probe_source_defaults_to_its_own_layer() {
        let (s, p) = SteerState::from_query(&parse_query("src=probe&concept=capital-next"));
        assert_eq!((s.source, s.layer, s.coef, p.len()), (Source::Probe(BuiltinConcept::CapitalNext), 2, 1.0, 0));
    }
}
