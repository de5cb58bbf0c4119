//! The language-model lab (9.2.2): the logit lens on the Moby-Dick character model, the word-level induction
//! model or a model opened in this tab (`core::opened`), and sampling. Its URL state: the model, each model's
//! text, the selected cell and the sampling settings. The grid's rules (what a text gives, which cell is selected) are plain functions, tested here.
use crate::app::core::charts::heat_style;
use crate::app::core::url::{Reader, UrlState, Writer};
use crate::lens::gpt2::text::{quoted_chars, CharVocab};
use crate::lens::gpt2::vocab::{Tokenized, Vocab};
use crate::lens::methods::logit_lens::{resid_label, LensRun, LogitLens};
use crate::lens::{LensError, Transformer};

#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::LanguageLab;

/// The longest text a link carries; the grid reads only the last 128 characters anyway, and a longer text
/// would make an unwieldy URL.
pub const MAX_URL_TEXT: usize = 1000;

/// Largest layer or position a link may name before the grid is known; the view checks the real bounds.
const MAX_INDEX: usize = 4096;

/// How many characters one press of Generate adds.
pub const GENERATE: usize = 200;

/// How many tokens one press of Generate adds on an opened model: GPT-2 small takes about 50 ms a token here.
pub const GENERATE_OWN: usize = 40;

/// The text an opened model's box starts with.
pub const OWN_PROMPT: &str = "The quick brown fox jumps over the lazy dog. The quick brown fox";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Moby,
    Induction,
    /// The model opened in this tab (`model=own`; a link cannot carry it).
    Own,
}

const WHICH: &[(&str, Which)] = &[("moby", Which::Moby), ("induction", Which::Induction), ("own", Which::Own)];

impl Which {
    pub fn key(self) -> &'static str {
        WHICH.iter().find(|(_, w)| *w == self).map(|(k, _)| *k).unwrap_or("moby")
    }
}

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
    /// An opened model's text; `None` opens on `OWN_PROMPT`.
    pub prompt: Option<String>,
    /// The selected grid cell as (layer, pos); `None` selects the default cell (`default_cell`).
    pub cell: Option<(usize, usize)>,
    pub sampling: Sampling,
}

impl Default for LanguageState {
    fn default() -> Self {
        LanguageState {
            which: Which::Moby,
            text: None,
            words: None,
            prompt: None,
            cell: None,
            sampling: Sampling::default(),
        }
    }
}

impl UrlState for LanguageState {
    fn read(r: &mut Reader) -> Self {
        let d = Sampling::default();
        LanguageState {
            which: r.choice("model", Which::Moby, WHICH),
            text: r.optional_text("text", MAX_URL_TEXT),
            words: r.optional_text("words", MAX_URL_TEXT),
            prompt: r.optional_text("prompt", MAX_URL_TEXT),
            cell: r.optional_number("layer", 0..=MAX_INDEX).zip(r.optional_number("pos", 0..=MAX_INDEX)),
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
        w.optional_text("prompt", self.prompt.as_deref());
        w.optional_number("layer", self.cell.map(|c| c.0));
        w.optional_number("pos", self.cell.map(|c| c.1));
        w.number("temp", self.sampling.temperature, d.temperature);
        w.number("topk", self.sampling.top_k, d.top_k);
        w.number("seed", self.sampling.seed, d.seed);
    }
}

/// One cell of the grid as the view shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub top: Vec<(String, f32)>,
    pub target_prob: Option<f32>,
    pub target_rank: Option<usize>,
}

/// The logit lens of one input, decoded into labels.
#[derive(Clone, Debug, PartialEq)]
pub struct LensView {
    pub which: Which,
    /// The input token at each position.
    pub inputs: Vec<String>,
    /// The true next token after each position (None at the last one).
    pub next: Vec<Option<String>>,
    /// `[layer][pos]`
    pub cells: Vec<Vec<Cell>>,
    /// Said under the grid, e.g. that only the last 128 characters are read.
    pub note: Option<String>,
}

impl LensView {
    pub fn n_layers(&self) -> usize {
        self.cells.len()
    }

    pub fn n_pos(&self) -> usize {
        self.inputs.len()
    }

    /// The cell selected when a grid first shows: the top layer at the last position that has a true next token.
    pub fn default_cell(&self) -> (usize, usize) {
        (self.n_layers().saturating_sub(1), self.n_pos().saturating_sub(2))
    }

    pub fn contains(&self, (layer, pos): (usize, usize)) -> bool {
        layer < self.n_layers() && pos < self.n_pos()
    }

    /// The cell's top-1 guess, its probability and whether it is the true next token (None at the last pos).
    pub fn top1(&self, layer: usize, pos: usize) -> (String, f32, Option<bool>) {
        let (top1, p1) = self.cells[layer][pos].top.first().cloned().unwrap_or_default();
        let correct = self.next[pos].as_ref().map(|n| *n == top1);
        (top1, p1, correct)
    }

    /// The hover text of a cell.
    pub fn cell_title(&self, layer: usize, pos: usize) -> String {
        let (top1, p1, _) = self.top1(layer, pos);
        cell_title(layer, pos, &top1, p1)
    }
}

/// A cell's tooltip from its top guess `top1` and that guess's probability `p1`.
fn cell_title(layer: usize, pos: usize, top1: &str, p1: f32) -> String {
    format!("{} at position {pos}: “{top1}” {:.0}%", resid_label(layer), 100.0 * p1)
}

/// Which cell to select once `new` replaces `old`: the selection stays while the grid keeps its model and
/// length (typing in the middle of a text), and goes back to the default cell otherwise.
pub fn selection_after(old: Option<&LensView>, new: &LensView, selected: Option<(usize, usize)>) -> (usize, usize) {
    let same_shape = old.is_some_and(|o| o.which == new.which && o.n_pos() == new.n_pos());
    match selected {
        Some(c) if same_shape && new.contains(c) => c,
        _ => new.default_cell(),
    }
}

/// The message for a link's cell that the grid does not have.
pub fn cell_outside(cell: (usize, usize), v: &LensView) -> String {
    let (l, p) = v.default_cell();
    format!(
        "The link's cell (layer {}, position {}) is outside this grid of {} layers × {} positions, so the lab selects layer {l}, position {p}.",
        cell.0,
        cell.1,
        v.n_layers(),
        v.n_pos()
    )
}

/// A character as a grid label: space, newline and tab made visible.
pub fn show_char(c: char) -> String {
    match c {
        ' ' => "␣".into(),
        '\n' => "↵".into(),
        '\t' => "⇥".into(),
        c => c.to_string(),
    }
}

fn to_view(lens: &LogitLens, which: Which, label: &dyn Fn(u32) -> String, note: Option<String>) -> LensView {
    let t = &lens.tokens;
    LensView {
        which,
        inputs: t.iter().map(|&i| label(i)).collect(),
        next: (0..t.len()).map(|p| t.get(p + 1).map(|&i| label(i))).collect(),
        cells: lens
            .cells
            .iter()
            .map(|row| {
                row.iter()
                    .map(|c| Cell {
                        top: c.top.iter().map(|&(i, p)| (label(i), p)).collect(),
                        target_prob: c.target_prob,
                        target_rank: c.target_rank,
                    })
                    .collect()
            })
            .collect(),
        note,
    }
}

/// Inline error: the message and whether a "replace unknown characters" button helps.
pub type InputError = (String, bool);

/// The grid of a text on the character model: at most its context, the last characters kept.
pub fn compute_moby(model: &Transformer, vocab: &CharVocab, text: &str) -> Result<LensView, InputError> {
    LensJob::moby(model, vocab, text)?.run_to_end(model, &|i| show_char(vocab.char(i)))
}

/// The grid of a word sequence on the induction model; too long a sequence is refused, not cut.
pub fn compute_induction(model: &Transformer, vocab: &Vocab, text: &str) -> Result<LensView, InputError> {
    LensJob::induction(model, vocab, text)?.run_to_end(model, &|i| vocab.word(i).to_string())
}

/// A grid on its way: the input checked, the forward pass run a block per `step` (so the browser can give the
/// thread back in between), then read and labelled by `finish`. The same grid as `compute_moby` and
/// `compute_induction`, which run it in one go.
pub struct LensJob {
    run: LensRun,
    which: Which,
    note: Option<String>,
}

fn model_error(e: LensError) -> InputError {
    (e.to_string(), false)
}

impl LensJob {
    fn new(model: &Transformer, tokens: &[u32], which: Which, note: Option<String>) -> Result<Self, InputError> {
        Ok(LensJob { run: LensRun::new(model, tokens, 5).map_err(model_error)?, which, note })
    }

    /// Runs the next block; `Some(share done)` while there is more.
    pub fn step(&mut self, model: &Transformer) -> Result<Option<f32>, InputError> {
        let done = self.run.step(model).map_err(model_error)?;
        Ok((!done).then(|| self.run.progress(model)))
    }

    /// The grid, labelled by `label` (a token's text), once `step` has returned `None`.
    pub fn finish(self, model: &Transformer, label: &dyn Fn(u32) -> String) -> Result<LensView, InputError> {
        let lens = self.run.finish(model).map_err(model_error)?;
        Ok(to_view(&lens, self.which, label, self.note))
    }

    fn run_to_end(mut self, model: &Transformer, label: &dyn Fn(u32) -> String) -> Result<LensView, InputError> {
        while self.step(model)?.is_some() {}
        self.finish(model, label)
    }

    /// Checks a text for the character model (at most its context, the last characters kept).
    pub fn moby(model: &Transformer, vocab: &CharVocab, text: &str) -> Result<Self, InputError> {
        if text.is_empty() {
            return Err(("Type some text: the grid needs at least one character.".into(), false));
        }
        let unknown = vocab.unknown_chars(text);
        if !unknown.is_empty() {
            return Err((format!("The model has never seen {}: replace them (quotes become the book's curly ones, the rest a space) or delete them.", quoted_chars(&unknown)), true));
        }
        let ctx = model.cfg.n_positions;
        let n = text.chars().count();
        let (text, note) = if n > ctx {
            let kept: String = text.chars().skip(n - ctx).collect();
            (
                kept,
                Some(format!("The model reads at most {ctx} characters: the grid shows the last {ctx} of your {n}.")),
            )
        } else {
            (text.to_string(), None)
        };
        let tokens = vocab.encode(&text).map_err(|e| (e.to_string(), true))?;
        LensJob::new(model, &tokens, Which::Moby, note)
    }

    /// Checks a word sequence for the induction model; too long a sequence is refused, not cut.
    pub fn induction(model: &Transformer, vocab: &Vocab, text: &str) -> Result<Self, InputError> {
        let tokens = match vocab.encode(text) {
            Tokenized::Ok(t) => t,
            Tokenized::Unknown(words) => {
                let n = vocab.len() - 1;
                let msg = format!(
                    "“{}” is not in the induction model's vocabulary of {n} words: use “Random repeat” or its words.",
                    words[0]
                );
                return Err((msg, false));
            }
        };
        if tokens.len() <= 1 {
            return Err(("Type a few words (or press “Random repeat”): the sequence is empty.".into(), false));
        }
        let ctx = model.cfg.n_positions;
        if tokens.len() > ctx {
            return Err((
                format!(
                    "That is {} words, but the model reads at most {} (plus <bos>). Shorten the sequence.",
                    tokens.len() - 1,
                    ctx - 1
                ),
                false,
            ));
        }
        LensJob::new(model, &tokens, Which::Induction, None)
    }
}

/// A default prompt: about 100 characters of held-out text starting at a sentence, on one line.
pub fn default_prompt(held_out: &str) -> String {
    let start = held_out.find(". ").map(|i| i + 2).unwrap_or(0);
    let mut out = String::new();
    for w in held_out[start..].split_whitespace() {
        if out.chars().count() + w.chars().count() + 1 > 100 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// The grid's rows as HTML: the input row in `<thead>`, the layers from the top of the model down (so the output
/// sits next to it) and the "true next" row in `<tbody>`. `stop` is the cell that holds the grid's one tab stop.
/// One string the table takes as its inner HTML: built element by element, the 896 cells of a 128-character
/// text cost about 9,000 calls from wasm into the page, a 40-55 ms task on each keystroke (profiled). Every
/// value is escaped by `html_escape`; the view's handlers are on the table, so the cells need none.
pub fn grid_markup(v: &LensView, stop: (usize, usize)) -> String {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
    use std::fmt::Write;
    let mut out = String::with_capacity(256 * (v.n_layers() + 2) * v.n_pos().max(1));
    out.push_str(r#"<thead><tr><th class="lens-layer">input</th>"#);
    for (p, s) in v.inputs.iter().enumerate() {
        let _ = write!(out, r#"<th class="lens-input" data-testid="lens-input" title="position {p}">{}</th>"#, text(s));
    }
    out.push_str("</tr></thead><tbody>");
    for l in (0..v.n_layers()).rev() {
        let _ = write!(out, r#"<tr><th class="lens-layer" scope="row">{}</th>"#, text(&resid_label(l)));
        for p in 0..v.n_pos() {
            let (top1, p1, correct) = v.top1(l, p);
            let _ = write!(
                out,
                r#"<td class="{}" data-testid="lens-cell" data-layer="{l}" data-pos="{p}" data-top1="{}" tabindex="{}" data-p="{p1:.4}" data-correct="{}" style="{}" title="{}">{}</td>"#,
                if correct == Some(true) { "lens-cell correct" } else { "lens-cell" },
                attr(&top1),
                if (l, p) == stop { "0" } else { "-1" },
                correct.map_or("", |c| if c { "1" } else { "0" }),
                attr(&heat_style(p1)),
                attr(&cell_title(l, p, &top1, p1)),
                text(&top1)
            );
        }
        out.push_str("</tr>");
    }
    out.push_str(r#"<tr><th class="lens-layer" scope="row">true next</th>"#);
    for s in &v.next {
        let _ = write!(out, r#"<td class="lens-next">{}</td>"#, text(s.as_deref().unwrap_or_default()));
    }
    out.push_str("</tr></tbody>");
    out
}

/// The text the URL keeps for a model's box: none until that model is loaded (the box is still empty), and
/// none when empty or too long for a link.
pub fn text_for_url(text: String, loaded: bool) -> Option<String> {
    (loaded && !text.is_empty() && text.chars().count() <= MAX_URL_TEXT).then_some(text)
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
            prompt: Some("When Mary and John".into()),
            cell: Some((2, 17)),
            sampling: Sampling { temperature: 1.3, top_k: 5, seed: 77 },
        };
        assert_eq!(LanguageState::from_query(&s.to_query()), (s, vec![]));
        assert_eq!(LanguageState::default().to_query(), vec![]);
        // An opened model is named in the link (the view says so when this tab has none).
        let own = LanguageState { which: Which::Own, prompt: Some("Hello there".into()), ..LanguageState::default() };
        assert_eq!(own.to_query()[0], ("model".to_string(), "own".to_string()));
        assert_eq!(LanguageState::from_query(&own.to_query()), (own, vec![]));
    }

    #[test]
    fn the_old_text_only_link_still_opens() {
        let (s, p) = LanguageState::from_query(&parse_query("text=Call+me"));
        assert_eq!((s.which, s.text.as_deref(), s.cell, p.len()), (Which::Moby, Some("Call me"), None, 0));
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

    #[test]
    fn a_bad_cell_is_named_and_dropped() {
        let (s, p) = LanguageState::from_query(&parse_query("layer=1&pos=x"));
        assert_eq!(s.cell, None);
        assert_eq!(p.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), ["pos"]);
    }

    fn grid(which: Which, n_layers: usize, n_pos: usize) -> LensView {
        let cell = Cell { top: vec![("a".into(), 0.5)], target_prob: None, target_rank: None };
        LensView {
            which,
            inputs: vec!["a".into(); n_pos],
            next: (0..n_pos).map(|p| (p + 1 < n_pos).then(|| "a".to_string())).collect(),
            cells: vec![vec![cell; n_pos]; n_layers],
            note: None,
        }
    }

    #[test]
    fn the_selection_stays_while_the_grid_keeps_its_shape() {
        let (a, b) = (grid(Which::Moby, 5, 10), grid(Which::Moby, 5, 10));
        assert_eq!(a.default_cell(), (4, 8), "the top layer, the last position with a true next token");
        assert_eq!(selection_after(Some(&a), &b, Some((1, 3))), (1, 3));
        assert_eq!(selection_after(None, &b, Some((1, 3))), (4, 8), "the first grid");
        assert_eq!(selection_after(Some(&a), &grid(Which::Moby, 5, 11), Some((1, 3))), (4, 9), "longer text");
        assert_eq!(selection_after(Some(&a), &grid(Which::Induction, 3, 10), Some((1, 3))), (2, 8));
        assert_eq!(grid(Which::Moby, 5, 1).default_cell(), (4, 0), "one position");
    }

    #[test]
    fn a_cell_outside_the_grid_is_explained() {
        let v = grid(Which::Moby, 5, 10);
        assert!(!v.contains((5, 0)) && !v.contains((0, 10)) && v.contains((4, 9)));
        let m = cell_outside((7, 2), &v);
        assert!(m.contains("layer 7, position 2") && m.contains("5 layers × 10 positions"), "{m}");
        assert!(m.ends_with("layer 4, position 8."), "{m}");
    }

    #[test]
    fn top1_is_scored_against_the_true_next_token() {
        let v = grid(Which::Moby, 2, 3);
        assert_eq!(v.top1(0, 0), ("a".to_string(), 0.5, Some(true)));
        assert_eq!(v.top1(1, 2).2, None, "the last position has no next token");
        assert_eq!(v.cell_title(1, 2), "block 0 at position 2: “a” 50%");
    }

    #[test]
    fn labels_and_styles() {
        assert_eq!([show_char(' '), show_char('\n'), show_char('q')], ["␣", "↵", "q"]);
        assert_eq!(text_for_url("hi".into(), false), None, "not before the model has filled the box");
        assert_eq!(text_for_url("hi".into(), true).as_deref(), Some("hi"));
        assert_eq!(text_for_url("x".repeat(MAX_URL_TEXT + 1), true), None);
    }

    #[test]
    fn the_default_prompt_starts_at_a_sentence_and_fits_a_line() {
        let p = default_prompt("end of one. Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse");
        assert!(p.starts_with("Call me Ishmael."), "{p}");
        assert!(p.chars().count() <= 100 && !p.contains('\n'), "{p}");
    }

    fn shipped_moby() -> (Transformer, CharVocab) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/moby");
        let read = |f: &str| std::fs::read(format!("{dir}/{f}")).unwrap();
        let model =
            Transformer::from_bytes(&String::from_utf8(read("config.json")).unwrap(), &read("model.safetensors"))
                .unwrap();
        (model, CharVocab::from_json(&String::from_utf8(read("vocab.json")).unwrap()).unwrap())
    }

    /// The grid's markup: a row per layer from the top down, a cell per position with what the view and the
    /// tests read, one tab stop, and every token escaped (a "<" typed in the text stays text).
    #[test]
    fn grid_markup_has_every_cell_once_and_escapes_tokens() {
        let cell = |t: &str, p: f32| Cell { top: vec![(t.to_string(), p)], target_prob: None, target_rank: None };
        let v = LensView {
            which: Which::Moby,
            inputs: vec!["<".into(), "b".into()],
            next: vec![Some("b".into()), None],
            cells: vec![vec![cell("a", 0.25), cell("&", 0.5)], vec![cell("b", 0.75), cell("\"", 1.0)]],
            note: None,
        };
        let html = grid_markup(&v, (1, 0));
        assert_eq!(html.matches(r#"data-testid="lens-cell""#).count(), 4);
        assert_eq!(html.matches(r#"tabindex="0""#).count(), 1);
        // Layer 1 (the top) comes first, and its first cell is the tab stop and the true next token.
        let first = html.find(r#"data-layer="1""#).unwrap();
        assert!(first < html.find(r#"data-layer="0""#).unwrap());
        assert!(html.contains(r#"<td class="lens-cell correct" data-testid="lens-cell" data-layer="1" data-pos="0" data-top1="b" tabindex="0" data-p="0.7500" data-correct="1""#), "{html}");
        assert!(
            html.contains(
                r#"data-layer="1" data-pos="1" data-top1="&quot;" tabindex="-1" data-p="1.0000" data-correct="""#
            ),
            "{html}"
        );
        assert!(html.contains(r#"title="position 0">&lt;</th>"#));
        assert!(html.contains(">&amp;</td>"));
        assert!(html.ends_with(r#"<td class="lens-next">b</td><td class="lens-next"></td></tr></tbody>"#), "{html}");
        assert_eq!(
            grid_markup(&LensView { inputs: vec![], next: vec![], cells: vec![], ..v }, (0, 0)).matches("<td").count(),
            0
        );
    }

    /// The shipped character model: a grid per layer and position, the last 128 characters of a long text,
    /// and messages a student can act on.
    #[test]
    fn compute_on_the_shipped_moby_model() {
        let (model, vocab) = shipped_moby();
        let v = compute_moby(&model, &vocab, "Call me Ishmael.").unwrap();
        assert_eq!((v.n_layers(), v.n_pos()), (model.cfg.n_layer + 1, 16));
        assert_eq!(v.inputs[4], "␣");
        assert_eq!(v.next[0].as_deref(), Some("a"));
        assert_eq!(v.note, None);
        let long = "a whale ".repeat(40);
        let v = compute_moby(&model, &vocab, &long).unwrap();
        assert_eq!(v.n_pos(), 128);
        assert!(v.note.unwrap().contains("the last 128 of your 320"));
        assert!(!compute_moby(&model, &vocab, "").unwrap_err().1, "no replace button for an empty text");
        let (m, replace) = compute_moby(&model, &vocab, "caf\u{e9} \u{1F40B}").unwrap_err();
        assert!(replace && m.contains("never seen"), "{m}");
    }
}
