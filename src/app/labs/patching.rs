//! The activation-patching lab (9.3.1): a clean and a corrupted prompt on the IOI model (or on the induction
//! model), one activation copied from one run into the other for every cell of a target's grid, and the metric
//! read on each patched run; attribution patching beside it. Its URL state, the corruptions, the checks of what
//! a student types, the words for a cell and the CSV live here, plain and tested natively; the colour scale and
//! the heatmap's layout are in `heat`.
use crate::app::core::export::{DataTable, Datum};
use crate::app::core::models::{LabModel, TaskModel, LAB_MODELS};
use crate::app::core::url::{Reader, UrlState, Writer};
use crate::lens::gpt2::vocab::{Tokenized, Vocab};
use crate::lens::methods::induction::TaskSpec;
use crate::lens::methods::ioi::NAMES;
use crate::lens::methods::patching::{unravel, Direction, Metric, PatchGrid, PatchInput, Target};
use crate::lens::rng::Rng;
use crate::lens::Transformer;

pub mod heat;
#[cfg(target_arch = "wasm32")]
mod heatmap;
#[cfg(target_arch = "wasm32")]
mod own;
#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::PatchingLab;

/// The chapter's sentence, as the student would type it.
pub const IOI_PROMPT: &str = "When John and Mary went to the store, John gave a bottle to";
/// The longest prompt a link carries (the models read 64 words).
pub const MAX_TEXT: usize = 600;
/// The longest answer or wrong token a link carries.
pub const MAX_WORD: usize = 40;
/// The induction model's default sequence: `<bos>`, then this many random words, then the same again.
pub const REPEAT_LEN: usize = 10;
pub const DEFAULT_SEED: u64 = 1;

/// The corruptions `model` offers, the first being its default.
pub fn corruptions(model: TaskModel) -> &'static [(&'static str, Corruption)] {
    match model {
        TaskModel::Ioi => &[("names", Corruption::Names), ("swap", Corruption::Swap), ("typed", Corruption::Typed)],
        TaskModel::Induction => &[("redraw", Corruption::Redraw), ("typed", Corruption::Typed)],
    }
}

pub fn default_corruption(model: TaskModel) -> Corruption {
    corruptions(model)[0].1
}

/// How the corrupted prompt is made from the clean one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Corruption {
    /// Every name replaced by another name from the task's list (the ABC corruption).
    Names,
    /// The two names swapped: the other name now appears once.
    Swap,
    /// The second half of a repeated sequence drawn again.
    Redraw,
    /// Typed by the student.
    Typed,
}

impl Corruption {
    pub fn key(self) -> &'static str {
        match self {
            Corruption::Names => "names",
            Corruption::Swap => "swap",
            Corruption::Redraw => "redraw",
            Corruption::Typed => "typed",
        }
    }

    /// What the picker says.
    pub fn label(self) -> &'static str {
        match self {
            Corruption::Names => "other names: both names replaced (ABC)",
            Corruption::Swap => "the two names swapped",
            Corruption::Redraw => "the second half drawn again: nothing to copy",
            Corruption::Typed => "typed by you",
        }
    }
}

/// The targets in the order the picker lists them, with their keys in the link.
pub const TARGETS: &[(&str, Target)] = &[
    ("resid_pre", Target::ResidPre),
    ("attn_out", Target::AttnOut),
    ("mlp_out", Target::MlpOut),
    ("head_out", Target::HeadOut),
    ("head_out_pos", Target::HeadOutByPos),
    ("pattern", Target::Pattern),
    ("q", Target::Q),
    ("k", Target::K),
    ("v", Target::V),
];

pub fn target_key(t: Target) -> &'static str {
    TARGETS.iter().find(|(_, x)| *x == t).map(|(k, _)| *k).unwrap_or("resid_pre")
}

/// The picker's short name for each target.
pub fn target_option(t: Target) -> &'static str {
    match t {
        Target::ResidPre => "resid_pre · residual stream, by layer and position",
        Target::AttnOut => "attn_out · attention output, by layer and position",
        Target::MlpOut => "mlp_out · MLP output, by layer and position",
        Target::HeadOut => "z · each head's output, all positions at once",
        Target::HeadOutByPos => "z · each head's output, by position",
        Target::Pattern => "pattern · each head's attention pattern",
        Target::Q => "q · each head's queries",
        Target::K => "k · each head's keys",
        Target::V => "v · each head's values",
    }
}

/// What each target patches, in plain words.
pub fn target_label(t: Target) -> &'static str {
    match t {
        Target::ResidPre => "Each cell copies everything the model carries into one layer at one position.",
        Target::AttnOut => "Each cell copies what one layer's heads add at one position.",
        Target::MlpOut => "Each cell copies what one layer's MLP adds at one position.",
        Target::HeadOut => "Each cell copies one head's output (z) at every position.",
        Target::HeadOutByPos => "Each cell copies one head's output (z) at one position: a row per layer and head.",
        Target::Pattern => "Each cell copies where one head looks (its whole attention pattern).",
        Target::Q => "Each cell copies one head's queries (what it looks for) at every position.",
        Target::K => "Each cell copies one head's keys (what it is found by) at every position.",
        Target::V => "Each cell copies one head's values (what it moves) at every position.",
    }
}

/// The activation's name in a sentence ("attn_out", "the output z of").
fn target_noun(t: Target) -> &'static str {
    match t {
        Target::ResidPre => "resid_pre",
        Target::AttnOut => "attn_out",
        Target::MlpOut => "mlp_out",
        Target::HeadOut | Target::HeadOutByPos => "head output z",
        Target::Pattern => "attention pattern",
        Target::Q => "queries q",
        Target::K => "keys k",
        Target::V => "values v",
    }
}

const DIRECTIONS: &[(&str, Direction)] = &[("denoising", Direction::Denoising), ("noising", Direction::Noising)];
pub const METRICS: &[(&str, Metric)] =
    &[("logit_diff", Metric::LogitDiff), ("answer_prob", Metric::AnswerProb), ("kl", Metric::Kl)];

pub fn metric_key(m: Metric) -> &'static str {
    METRICS.iter().find(|(_, x)| *x == m).map(|(k, _)| *k).unwrap_or("logit_diff")
}

/// The picker's short name for each metric.
pub fn metric_option(m: Metric) -> &'static str {
    match m {
        Metric::LogitDiff => "logit difference, normalised (0 = corrupted, 1 = clean)",
        Metric::AnswerProb => "probability of the answer",
        Metric::Kl => "KL divergence from the clean run",
    }
}

/// What each metric reads, in plain words.
pub fn metric_label(m: Metric) -> &'static str {
    match m {
        Metric::LogitDiff => "logit(answer) − logit(wrong), scaled so the corrupted run is 0 and the clean run 1",
        Metric::AnswerProb => "the probability of the answer on the patched run",
        Metric::Kl => "how far the patched run's prediction is from the clean run's (KL divergence; 0 = the same)",
    }
}

/// The direction switch's short names.
pub fn direction_option(d: Direction) -> &'static str {
    match d {
        Direction::Denoising => "denoising: clean → corrupted run",
        Direction::Noising => "noising: corrupted → clean run",
    }
}

/// What each direction does, in plain words.
pub fn direction_label(d: Direction) -> &'static str {
    match d {
        Direction::Denoising => {
            "Runs the corrupted prompt with one clean activation: is this piece enough to bring the answer back?"
        }
        Direction::Noising => {
            "Runs the clean prompt with one corrupted activation: does losing this piece break the answer?"
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PatchState {
    pub which: TaskModel,
    /// The model opened in this tab instead (`model=own`; `which` is then the model shown if this tab has none).
    pub own: bool,
    /// The clean prompt; `None` opens on the model's default (the chapter's sentence, or a repeated sequence).
    pub clean: Option<String>,
    pub corruption: Corruption,
    /// The typed corrupted prompt (used with `Corruption::Typed`); `None` starts from the default corruption's.
    pub corrupted: Option<String>,
    /// The answer and the wrong token; `None` takes them from the prompts.
    pub answer: Option<String>,
    pub wrong: Option<String>,
    /// Picks the other names, and the induction model's random sequences.
    pub seed: u64,
    pub target: Target,
    pub direction: Direction,
    pub metric: Metric,
    /// The clicked cell, one index per axis of the target.
    pub cell: Option<Vec<usize>>,
    /// Attribution patching shown beside real patching.
    pub attribution: bool,
}

impl Default for PatchState {
    fn default() -> Self {
        PatchState {
            which: TaskModel::Ioi,
            own: false,
            clean: None,
            corruption: Corruption::Names,
            corrupted: None,
            answer: None,
            wrong: None,
            seed: DEFAULT_SEED,
            target: Target::ResidPre,
            direction: Direction::Denoising,
            metric: Metric::LogitDiff,
            cell: None,
            attribution: false,
        }
    }
}

/// A cell as the link writes it: `1.4` or `1.4.2`.
pub fn cell_key(cell: &[usize]) -> String {
    cell.iter().map(usize::to_string).collect::<Vec<_>>().join(".")
}

/// A cell of `target` from the link, if it names one (the grid's bounds are checked once the grid is there).
pub fn parse_cell(s: &str, target: Target) -> Option<Vec<usize>> {
    let cell: Vec<usize> = s.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    (cell.len() == target.axes().len() && cell.iter().all(|&i| i < 4096)).then_some(cell)
}

impl UrlState for PatchState {
    fn read(r: &mut Reader) -> Self {
        let d = PatchState::default();
        let model = r.choice("model", LabModel::Task(d.which), LAB_MODELS);
        let which = model.task_or(d.which);
        let clean = r.optional_text("clean", MAX_TEXT);
        let corruption = r.choice("corr", default_corruption(which), corruptions(which));
        let corrupted = r.optional_text("corrupted", MAX_TEXT);
        let target = r.choice("target", d.target, TARGETS);
        let cell = r.raw("cell").and_then(|v| {
            let c = parse_cell(v, target);
            if c.is_none() {
                let why = format!(
                    "does not name a cell of {} (one number per axis: {})",
                    target.name(),
                    target.axes().join(", ")
                );
                r.problem("cell", v, why, "no selected cell");
            }
            c
        });
        PatchState {
            which,
            own: model == LabModel::Own,
            clean,
            corruption,
            corrupted,
            answer: r.optional_text("answer", MAX_WORD),
            wrong: r.optional_text("wrong", MAX_WORD),
            seed: r.number("seed", d.seed, 0..=u64::MAX),
            target,
            direction: r.choice("dir", d.direction, DIRECTIONS),
            metric: r.choice("metric", d.metric, METRICS),
            cell,
            attribution: r.flag("attr", d.attribution),
        }
    }

    fn write(&self, w: &mut Writer) {
        let d = PatchState::default();
        let model = if self.own { LabModel::Own } else { LabModel::Task(self.which) };
        w.choice("model", model, LabModel::Task(d.which), LAB_MODELS);
        w.optional_text("clean", self.clean.as_deref());
        w.choice("corr", self.corruption, default_corruption(self.which), corruptions(self.which));
        if self.corruption == Corruption::Typed {
            w.optional_text("corrupted", self.corrupted.as_deref());
        }
        w.optional_text("answer", self.answer.as_deref());
        w.optional_text("wrong", self.wrong.as_deref());
        w.number("seed", self.seed, d.seed);
        w.choice("target", self.target, d.target, TARGETS);
        w.choice("dir", self.direction, d.direction, DIRECTIONS);
        w.choice("metric", self.metric, d.metric, METRICS);
        w.optional_text("cell", self.cell.as_deref().map(cell_key).as_deref());
        w.flag("attr", self.attribution, d.attribution);
    }
}

/// Punctuation the IOI model reads as words of their own: "store," is "store ,".
const PUNCTUATION: &[char] = &[',', '.', '!', '?', ';', ':'];

/// The text with punctuation split off, so "the store, John" reads as the model's words "the store , john".
pub fn split_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if PUNCTUATION.contains(&c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// A typed text as tokens (`<bos>` first), or a message naming what is wrong: empty, words the model does not
/// know, longer than its context. `what` names the box ("the clean prompt").
pub fn tokenize(vocab: &Vocab, n_positions: usize, text: &str, what: &str) -> Result<Vec<u32>, String> {
    if text.trim().is_empty() {
        return Err(format!("{} is empty: type a few words.", crate::app::core::format::sentence(what)));
    }
    match vocab.encode(&split_words(text)) {
        Tokenized::Ok(ids) if ids.len() > n_positions => Err(format!(
            "{} has {} tokens with <bos>, more than the {n_positions} the model reads: shorten it.",
            crate::app::core::format::sentence(what),
            ids.len()
        )),
        Tokenized::Ok(ids) => Ok(ids),
        Tokenized::Unknown(words) => Err(format!(
            "The model does not know {} in {what}. It reads lower-case words from its training task, with \
             punctuation as separate words.",
            quoted(&words)
        )),
    }
}

/// “a”, “b” and “c”.
fn quoted(words: &[String]) -> String {
    let q: Vec<String> = words.iter().map(|w| format!("“{w}”")).collect();
    match q.len() {
        0 => String::new(),
        1 => q[0].clone(),
        n => format!("{} and {}", q[..n - 1].join(", "), q[n - 1]),
    }
}

/// A typed answer or wrong token as one token, or why it is not one.
pub fn single_token(vocab: &Vocab, text: &str, what: &str) -> Result<u32, String> {
    let words: Vec<String> = split_words(text).split_whitespace().map(str::to_lowercase).collect();
    match words.as_slice() {
        [] => Err(format!("The {what} is empty: type one word.")),
        [w] => match vocab.id(w) {
            Some(id) if id != 0 => Ok(id),
            _ => Err(format!("The model does not know “{w}”, the {what}.")),
        },
        many => Err(format!(
            "The {what} “{}” is {} tokens ({}): patching compares the logits of one next token, so type a single word.",
            text.trim(),
            many.len(),
            many.join(" · ")
        )),
    }
}

/// The token ids of the task's names in `vocab`.
fn name_ids(vocab: &Vocab) -> Vec<u32> {
    NAMES.iter().filter_map(|n| vocab.id(n)).collect()
}

/// The distinct names of a prompt in order of first appearance, each with how often it appears.
fn names_in(vocab: &Vocab, tokens: &[u32]) -> Vec<(u32, usize)> {
    let names = name_ids(vocab);
    let mut found: Vec<(u32, usize)> = Vec::new();
    for t in tokens.iter().filter(|t| names.contains(t)) {
        match found.iter_mut().find(|(n, _)| n == t) {
            Some((_, c)) => *c += 1,
            None => found.push((*t, 1)),
        }
    }
    found
}

/// The IOI roles of a prompt: (the indirect object, the subject), when it has two names, one appearing once
/// and the other more often.
pub fn ioi_roles(vocab: &Vocab, tokens: &[u32]) -> Option<(u32, u32)> {
    match names_in(vocab, tokens).as_slice() {
        [(a, 1), (b, n)] if *n >= 2 => Some((*a, *b)),
        [(a, n), (b, 1)] if *n >= 2 => Some((*b, *a)),
        _ => None,
    }
}

/// The ABC corruption of any prompt: every name replaced by another name from the task's list that is not in
/// the prompt (the same name by the same name), drawn with `seed`.
pub fn other_names(vocab: &Vocab, tokens: &[u32], seed: u64) -> Result<Vec<u32>, String> {
    let found = names_in(vocab, tokens);
    if found.is_empty() {
        return Err("The clean prompt has no name from the task's list to replace: type one (mary, john, anna…) \
                    or choose another corruption."
            .into());
    }
    let pool: Vec<u32> = name_ids(vocab).into_iter().filter(|n| !found.iter().any(|(f, _)| f == n)).collect();
    let mut rng = Rng::new(seed);
    let mut map: Vec<(u32, u32)> = Vec::new();
    for (name, _) in &found {
        let new = loop {
            let c = pool[rng.range(0, pool.len() - 1)];
            if !map.iter().any(|(_, m)| *m == c) {
                break c;
            }
        };
        map.push((*name, new));
    }
    Ok(tokens.iter().map(|t| map.iter().find(|(n, _)| n == t).map(|(_, m)| *m).unwrap_or(*t)).collect())
}

/// The two names of a prompt swapped.
pub fn swap_names(vocab: &Vocab, tokens: &[u32]) -> Result<Vec<u32>, String> {
    match names_in(vocab, tokens).as_slice() {
        [(a, _), (b, _)] => Ok(tokens
            .iter()
            .map(|t| {
                if t == a {
                    *b
                } else if t == b {
                    *a
                } else {
                    *t
                }
            })
            .collect()),
        found => Err(format!(
            "Swapping needs exactly two different names in the clean prompt; it has {}. Choose another corruption.",
            found.len()
        )),
    }
}

/// The induction model's default clean prompt: `<bos>`, `REPEAT_LEN` random words, the same words again.
pub fn repeated_sequence(vocab_size: usize, n_positions: usize, seed: u64) -> Vec<u32> {
    TaskSpec::new(vocab_size, n_positions).repeated_sequence(&mut Rng::new(seed), REPEAT_LEN)
}

/// The second half of a repeated sequence (`<bos>`, a half, the same half) drawn again from words not in the
/// first half, so nothing repeats.
pub fn redraw_second_half(tokens: &[u32], vocab_size: usize, seed: u64) -> Result<Vec<u32>, String> {
    let n = tokens.len().saturating_sub(1) / 2;
    let repeated = n > 0 && tokens.len() == 2 * n + 1 && tokens[0] == 0 && tokens[1..=n] == tokens[n + 1..];
    if !repeated {
        return Err("Drawing the second half again needs a repeated sequence (some words, then the same words \
                    again): press “New random sequence” or type the corrupted prompt."
            .into());
    }
    let first = &tokens[1..=n];
    let mut rng = Rng::new(seed ^ 0x5EC0_0D4A_1F00);
    let mut out = tokens[..=n].to_vec();
    while out.len() < tokens.len() {
        let t = rng.range(1, vocab_size - 1) as u32;
        if !first.contains(&t) && !out[n + 1..].contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// What induction predicts after the last token: the token that followed its most recent earlier appearance.
pub fn induction_answer(tokens: &[u32]) -> Option<u32> {
    let (&last, before) = tokens.split_last()?;
    let i = before.iter().rposition(|&t| t == last)?;
    tokens.get(i + 1).copied().filter(|_| i + 1 < tokens.len())
}

/// The corrupted run's own top prediction at the last position, other than `answer`: what the model says
/// instead when induction has nothing to copy.
pub fn top_other(model: &Transformer, tokens: &[u32], answer: u32) -> Result<u32, String> {
    let logits = model.logits(tokens).map_err(|e| e.to_string())?;
    let last = crate::lens::methods::patching::last_log_probs(&logits).map_err(|e| e.to_string())?;
    let best = (1..last.len()).filter(|&i| i as u32 != answer).max_by(|&a, &b| last[a].total_cmp(&last[b]));
    best.map(|i| i as u32).ok_or_else(|| "the vocabulary has no other token".into())
}

/// The prompts and tokens a run patches, ready for the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    pub input: PatchInput,
    /// The tokens as words, `<bos>` first.
    pub clean_words: Vec<String>,
    pub corrupted_words: Vec<String>,
    /// The corrupted prompt as text (what the corruption made, or what was typed).
    pub corrupted_text: String,
    pub answer: String,
    pub wrong: String,
}

/// Why the input cannot be patched: a message, and both tokenizations when their lengths differ.
#[derive(Clone, Debug, PartialEq)]
pub struct InputProblem {
    pub message: String,
    pub tokenizations: Option<(Vec<String>, Vec<String>)>,
}

impl From<String> for InputProblem {
    fn from(message: String) -> Self {
        InputProblem { message, tokenizations: None }
    }
}

/// What the student typed and chose, as `prepare` reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Typed<'a> {
    pub which: TaskModel,
    pub clean: &'a str,
    pub corruption: Corruption,
    pub corrupted: &'a str,
    pub answer: &'a str,
    pub wrong: &'a str,
    pub seed: u64,
}

fn words(vocab: &Vocab, tokens: &[u32]) -> Vec<String> {
    tokens.iter().map(|&t| vocab.word(t).to_string()).collect()
}

/// Every check before any work, so a bad input keeps the last result: the clean prompt, the corruption, their
/// lengths, the answer and the wrong token (each typed, or taken from the prompts).
pub fn prepare(model: &Transformer, vocab: &Vocab, t: &Typed) -> Result<Prepared, InputProblem> {
    let n_ctx = model.cfg.n_positions;
    let clean = tokenize(vocab, n_ctx, t.clean, "the clean prompt")?;
    let corrupted = match t.corruption {
        Corruption::Names => other_names(vocab, &clean, t.seed)?,
        Corruption::Swap => swap_names(vocab, &clean)?,
        Corruption::Redraw => redraw_second_half(&clean, model.cfg.vocab_size, t.seed)?,
        Corruption::Typed => tokenize(vocab, n_ctx, t.corrupted, "the corrupted prompt")?,
    };
    let (clean_words, corrupted_words) = (words(vocab, &clean), words(vocab, &corrupted));
    same_length(clean.len(), corrupted.len(), &clean_words, &corrupted_words)?;
    if clean == corrupted {
        return Err("The clean and the corrupted prompt are the same, so every patch would copy an activation onto \
                    itself: change the corrupted prompt."
            .to_string()
            .into());
    }
    let answer = match (t.answer.trim(), t.which) {
        ("", TaskModel::Ioi) => ioi_roles(vocab, &clean).map(|r| r.0).ok_or_else(|| {
            "Type the answer and the wrong token: the clean prompt has no name that appears once beside one that \
             appears twice, so the lab cannot pick them."
                .to_string()
        })?,
        ("", TaskModel::Induction) => induction_answer(&clean).ok_or_else(|| {
            "Type the answer: the clean prompt's last word does not appear earlier, so induction predicts nothing."
                .to_string()
        })?,
        (a, _) => single_token(vocab, a, "answer")?,
    };
    let wrong = match (t.wrong.trim(), t.which) {
        ("", TaskModel::Ioi) => ioi_roles(vocab, &clean)
            .map(|r| r.1)
            .ok_or_else(|| "Type the wrong token: the clean prompt has no name that appears twice.".to_string())?,
        ("", TaskModel::Induction) => top_other(model, &corrupted, answer)?,
        (w, _) => single_token(vocab, w, "wrong token")?,
    };
    if answer == wrong {
        return Err(format!(
            "The answer and the wrong token are both “{}”: their logit difference is always 0.",
            vocab.word(answer)
        )
        .into());
    }
    let corrupted_text = match t.corruption {
        Corruption::Typed => t.corrupted.to_string(),
        _ => vocab.decode(&corrupted),
    };
    Ok(Prepared {
        input: PatchInput::new(clean, corrupted, answer, wrong),
        clean_words,
        corrupted_words,
        corrupted_text,
        answer: vocab.word(answer).to_string(),
        wrong: vocab.word(wrong).to_string(),
    })
}

/// Patching copies activations position by position: both prompts need as many tokens. Else the message, with
/// both tokenizations to compare.
pub fn same_length(
    clean: usize,
    corrupted: usize,
    clean_words: &[String],
    corrupted_words: &[String],
) -> Result<(), InputProblem> {
    if clean == corrupted {
        return Ok(());
    }
    Err(InputProblem {
        message: format!(
            "The clean prompt has {clean} tokens and the corrupted prompt {corrupted}: patching copies activations \
             position by position, so both need the same number of tokens."
        ),
        tokenizations: Some((clean_words.to_vec(), corrupted_words.to_vec())),
    })
}

/// An opened model's prompts to start from: the chapter's sentence and the same with the repeated name changed,
/// so the answer moves from one name to the other (GPT-2 small's IOI circuit, Wang et al. 2022).
pub const OWN_CLEAN: &str = "When Mary and John went to the store, John gave a drink to";
pub const OWN_CORRUPTED: &str = "When Mary and John went to the store, Mary gave a drink to";
/// The answer and the wrong token, each one token of GPT-2's (a word inside a sentence starts with its space).
pub const OWN_ANSWER: &str = " Mary";
pub const OWN_WRONG: &str = " John";

/// The one token an answer or wrong token encodes to, or why not: `what` names the box, `pieces` are the
/// tokenizer's pieces for `text`.
pub fn one_token(what: &str, text: &str, ids: &[u32], pieces: &[String]) -> Result<u32, String> {
    match ids {
        [id] => Ok(*id),
        [] => Err(format!(
            "{} is empty: type one token, such as “ Mary” (with its space).",
            crate::app::core::format::sentence(what)
        )),
        _ => {
            let spaced = if text.starts_with(' ') {
                ""
            } else {
                " A word inside a sentence is usually one token with the space before it: try it with a space first."
            };
            Err(format!(
                "“{text}” is {} tokens for this tokenizer ({}), but {what} must be one.{spaced}",
                ids.len(),
                pieces.iter().map(|p| format!("“{p}”")).collect::<Vec<_>>().join(", ")
            ))
        }
    }
}

/// The share of the larger logit difference below which a corruption "does not change the answer": the
/// normalised logit difference divides by the gap, so a gap within the model's noise would only magnify noise.
pub const MIN_GAP_SHARE: f32 = 0.05;

/// Whether the normalised logit difference means anything for these two runs: an error a student can act on
/// when the corruption leaves logit(answer) − logit(wrong) (all but) unchanged.
pub fn check_gap(clean: f32, corrupted: f32, answer: &str, wrong: &str) -> Result<(), String> {
    let gap = clean - corrupted;
    if gap.is_finite() && gap.abs() >= MIN_GAP_SHARE * clean.abs().max(corrupted.abs()) && gap.abs() > 1e-6 {
        return Ok(());
    }
    Err(format!(
        "The corruption does not change the answer: logit({answer}) − logit({wrong}) is {clean:.2} on the clean \
         prompt and {corrupted:.2} on the corrupted one. The normalised logit difference divides by their gap \
         ({gap:.2}), so it is undefined here. Change the corrupted prompt (the names, say), or score by the \
         probability of the answer or the KL divergence."
    ))
}

/// Where a cell sits, in words: "layer 1, pos 4 (“mary”)", "layer 1, head 3", "layer 1, head 3, pos 4 (“mary”)".
pub fn cell_place(target: Target, cell: &[usize], tokens: &[String]) -> String {
    let pos = |p: usize| format!("pos {p} (“{}”)", tokens.get(p).map(String::as_str).unwrap_or("?"));
    match (target.axes().len(), cell) {
        (3, [l, p, h]) => format!("layer {l}, head {h}, {}", pos(*p)),
        (2, [l, x]) if target.axes()[1] == "pos" => format!("layer {l}, {}", pos(*x)),
        (2, [l, h]) => format!("layer {l}, head {h}"),
        _ => format!("{cell:?}"),
    }
}

/// What patching a cell did: "patched clean attn_out at layer 1, pos 4 (“mary”) into the corrupted run".
pub fn patch_sentence(target: Target, direction: Direction, cell: &[usize], tokens: &[String]) -> String {
    let (from, into) = match direction {
        Direction::Denoising => ("clean", "corrupted"),
        Direction::Noising => ("corrupted", "clean"),
    };
    let every = if target.axes() == ["layer", "head"] { " (every position)" } else { "" };
    format!("patched {from} {} at {}{every} into the {into} run", target_noun(target), cell_place(target, cell, tokens))
}

/// A value as the heatmap and the detail print it.
pub fn fmt_value(metric: Metric, v: f32) -> String {
    match metric {
        Metric::AnswerProb => format!("{:.1}%", 100.0 * v),
        _ => format!("{v:.2}"),
    }
}

/// A value inside a heatmap cell, short enough for a narrow column: ".87", "-.13", "1.00", "12", "0".
pub fn fmt_cell(v: f32) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v.abs() >= 9.995 {
        return format!("{v:.0}");
    }
    // "-.00" and ".00" would only add noise: what rounds to zero prints as 0.
    if v.abs() < 0.005 {
        return "0".into();
    }
    let s = format!("{v:.2}");
    s.replacen("0.", ".", usize::from(s.starts_with("0.") || s.starts_with("-0.")))
}

/// How to read the colours, for the metric and direction shown.
pub fn legend_note(metric: Metric, direction: Direction) -> &'static str {
    match (metric, direction) {
        (Metric::LogitDiff, Direction::Denoising) => {
            "Orange near 1: this piece alone brings the clean answer back. White: no effect. Blue: it pushes the answer further away."
        }
        (Metric::LogitDiff, Direction::Noising) => {
            "Orange near 1: the clean answer survives losing this piece. Pale, near 0: losing it breaks the answer as the corruption does."
        }
        (Metric::AnswerProb, _) => "From dark violet (0) to yellow (1): the brighter, the more likely the answer on the patched run.",
        (Metric::Kl, _) => {
            "Dark violet: the patched run predicts what the clean run does. The brighter (towards yellow), the further its prediction from the clean run's."
        }
    }
}

/// The grid as a table (its CSV), one row per cell, with TransformerLens's axis names: `layer`, `pos`, `head`
/// (empty where the target has no such axis), the value, and what it measures. `method` is `activation` or
/// `attribution`.
pub fn csv_table(grid: &PatchGrid, direction: Direction, method: &str) -> DataTable {
    let axes = grid.axes();
    let columns =
        ["layer", "pos", "head", "value", "metric", "target", "direction", "method"].map(String::from).to_vec();
    let rows = (grid.values.iter().enumerate())
        .map(|(flat, &v)| {
            let cell = unravel(flat, &grid.dims);
            let at = |name: &str| match axes.iter().position(|a| *a == name) {
                Some(i) => Datum::from(cell[i]),
                None => Datum::from(""),
            };
            vec![
                at("layer"),
                at("pos"),
                at("head"),
                Datum::from(v),
                metric_key(grid.metric).into(),
                grid.target.name().into(),
                direction.name().into(),
                method.into(),
            ]
        })
        .collect();
    let caption = format!("{method} patching, {}, {}", grid.target.name(), direction.name());
    DataTable { caption, columns, rows }
}

/// The file a CSV downloads as.
pub fn csv_name(grid: &PatchGrid, direction: Direction, method: &str) -> String {
    format!("{method}-patching-{}-{}-{}.csv", target_key(grid.target), direction.name(), metric_key(grid.metric))
}

/// The `n` cells where the estimate is furthest from real patching: (cell, real, estimate), largest gap first.
pub fn disagreements(real: &PatchGrid, estimate: &PatchGrid, n: usize) -> Vec<(Vec<usize>, f32, f32)> {
    let mut all: Vec<(usize, f32, f32)> =
        real.values.iter().zip(&estimate.values).enumerate().map(|(i, (&r, &e))| (i, r, e)).collect();
    all.sort_by(|a, b| (b.1 - b.2).abs().total_cmp(&(a.1 - a.2).abs()));
    all.into_iter().take(n).map(|(i, r, e)| (unravel(i, &real.dims), r, e)).collect()
}

/// A link's cell that lies outside the grid, explained.
pub fn cell_outside(cell: &[usize], dims: &[usize]) -> String {
    format!(
        "The link's cell {} lies outside this grid ({}), so no cell is selected.",
        cell_key(cell),
        dims.iter().map(usize::to_string).collect::<Vec<_>>().join(" × ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::core::export::{to_csv, Meta};
    use crate::app::core::url::parse_query;
    use crate::lens::methods::ioi;

    #[test]
    fn state_round_trips_and_defaults_write_nothing() {
        assert!(PatchState::default().to_query().is_empty());
        let s = PatchState {
            which: TaskModel::Ioi,
            own: false,
            clean: Some("When Anna and Tom went to the park, Tom gave a ball to".into()),
            corruption: Corruption::Typed,
            corrupted: Some("When Anna and Tom went to the park, Anna gave a ball to".into()),
            answer: Some("anna".into()),
            wrong: Some("tom".into()),
            seed: 7,
            target: Target::HeadOutByPos,
            direction: Direction::Noising,
            metric: Metric::Kl,
            cell: Some(vec![1, 4, 2]),
            attribution: true,
        };
        assert_eq!(PatchState::from_query(&s.to_query()), (s, vec![]));
        let ind = PatchState { which: TaskModel::Induction, corruption: Corruption::Redraw, ..PatchState::default() };
        assert_eq!(ind.to_query(), vec![("model".to_string(), "induction".to_string())]);
        assert_eq!(PatchState::from_query(&ind.to_query()), (ind, vec![]));
        // A typed corrupted prompt travels only with the typed corruption.
        let swap = PatchState { corruption: Corruption::Swap, corrupted: Some("x".into()), ..PatchState::default() };
        assert_eq!(swap.to_query(), vec![("corr".to_string(), "swap".to_string())]);
    }

    #[test]
    fn bad_link_values_are_named_and_fall_back() {
        let q = parse_query("model=gpt9&corr=redraw&target=mlp&dir=up&metric=acc&cell=1.x&attr=2&seed=-3&clean=");
        let (s, p) = PatchState::from_query(&q);
        assert_eq!(s, PatchState::default());
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["model", "clean", "corr", "target", "cell", "seed", "dir", "metric", "attr"]);
        assert!(p[2].to_string().contains("is not one of names, swap, typed"), "{}", p[2]);
        // A cell must have one index per axis of its target.
        let (s, p) = PatchState::from_query(&parse_query("target=head_out&cell=1.2.3"));
        assert_eq!((s.cell, p.len()), (None, 1));
        assert!(p[0].why.contains("layer, head"), "{}", p[0].why);
        let (s, _) = PatchState::from_query(&parse_query("target=head_out&cell=2.3"));
        assert_eq!(s.cell, Some(vec![2, 3]));
        // Each model has its own corruptions.
        let (s, p) = PatchState::from_query(&parse_query("model=induction&corr=swap"));
        assert_eq!((s.corruption, p.len()), (Corruption::Redraw, 1));
    }

    #[test]
    fn punctuation_is_split_and_unknown_words_are_named() {
        let v = ioi::vocab();
        let ids = tokenize(&v, 64, IOI_PROMPT, "the clean prompt").unwrap();
        assert_eq!(v.decode(&ids), "when john and mary went to the store , john gave a bottle to");
        assert_eq!(ids[0], 0);
        let e = tokenize(&v, 64, "When Zorro and Mary went to the shop", "the clean prompt").unwrap_err();
        assert!(e.contains("“Zorro” and “shop” in the clean prompt"), "{e}");
        assert!(tokenize(&v, 64, "  ", "the clean prompt").unwrap_err().starts_with("The clean prompt is empty"));
        let long = "mary ".repeat(64);
        assert!(tokenize(&v, 64, &long, "the clean prompt")
            .unwrap_err()
            .contains("65 tokens with <bos>, more than the 64"));
    }

    #[test]
    fn answers_must_be_one_known_token() {
        let v = ioi::vocab();
        assert_eq!(single_token(&v, " Mary", "answer"), Ok(v.id("mary").unwrap()));
        assert!(single_token(&v, "mary jane", "answer").unwrap_err().contains("is 2 tokens (mary · jane)"));
        assert!(single_token(&v, "", "answer").unwrap_err().contains("empty"));
        assert!(single_token(&v, "Zorro", "wrong token")
            .unwrap_err()
            .contains("does not know “zorro”, the wrong token"));
    }

    fn ids(v: &Vocab, text: &str) -> Vec<u32> {
        tokenize(v, 64, text, "x").unwrap()
    }

    #[test]
    fn corruptions_change_only_the_names() {
        let v = ioi::vocab();
        let clean = ids(&v, IOI_PROMPT);
        let (mary, john) = (v.id("mary").unwrap(), v.id("john").unwrap());
        assert_eq!(ioi_roles(&v, &clean), Some((mary, john)));
        let swapped = swap_names(&v, &clean).unwrap();
        assert_eq!(v.decode(&swapped), "when mary and john went to the store , mary gave a bottle to");
        assert_eq!(ioi_roles(&v, &swapped), Some((john, mary)));
        for seed in 0..50 {
            let abc = other_names(&v, &clean, seed).unwrap();
            assert_eq!(abc.len(), clean.len());
            let changed: Vec<usize> = (0..clean.len()).filter(|&i| abc[i] != clean[i]).collect();
            assert_eq!(changed, [2, 4, 10]);
            assert!(!abc.contains(&mary) && !abc.contains(&john));
            // Still an IOI sentence, with two new names.
            let (io, s) = ioi_roles(&v, &abc).unwrap();
            assert!(io != s && abc[4] == io && abc[2] == s && abc[10] == s);
        }
        assert_eq!(other_names(&v, &clean, 3), other_names(&v, &clean, 3));
        assert!(other_names(&v, &ids(&v, "the store"), 1).unwrap_err().contains("no name"));
        assert!(swap_names(&v, &ids(&v, "mary went to the store")).unwrap_err().contains("it has 1"));
    }

    #[test]
    fn the_induction_corruption_redraws_the_second_half() {
        let clean = repeated_sequence(318, 64, 4);
        assert_eq!(clean.len(), 2 * REPEAT_LEN + 1);
        assert_eq!(clean[1..=REPEAT_LEN], clean[REPEAT_LEN + 1..]);
        // Induction: the last word came after … its earlier copy, so the answer is the word that followed it.
        assert_eq!(induction_answer(&clean), Some(clean[1]));
        let c = redraw_second_half(&clean, 318, 4).unwrap();
        assert_eq!((c.len(), &c[..=REPEAT_LEN]), (clean.len(), &clean[..=REPEAT_LEN]));
        assert!(c[REPEAT_LEN + 1..].iter().all(|t| !clean[1..=REPEAT_LEN].contains(t) && *t != 0));
        assert_eq!(induction_answer(&c), None);
        assert!(redraw_second_half(&[0, 5, 6, 5], 318, 1).unwrap_err().contains("repeated sequence"));
        assert_eq!(induction_answer(&[0, 5, 6, 7, 5]), Some(6));
        assert_eq!(induction_answer(&[0]), None);
    }

    fn shipped(folder: &str) -> Option<(Transformer, Vocab)> {
        let dir = format!("{}/public/models/{folder}", env!("CARGO_MANIFEST_DIR"));
        let (Ok(cfg), Ok(w), Ok(v)) = (
            std::fs::read_to_string(format!("{dir}/config.json")),
            std::fs::read(format!("{dir}/model.safetensors")),
            std::fs::read_to_string(format!("{dir}/vocab.json")),
        ) else {
            eprintln!("skipped: no model in {dir}");
            return None;
        };
        Some((Transformer::from_bytes(&cfg, &w).unwrap(), Vocab::from_json(&v).unwrap()))
    }

    fn typed(which: TaskModel, clean: &str, corruption: Corruption) -> Typed<'_> {
        Typed { which, clean, corruption, corrupted: "", answer: "", wrong: "", seed: 1 }
    }

    #[test]
    fn prepare_checks_everything_the_student_types() {
        let Some((m, v)) = shipped("ioi") else { return };
        let p = prepare(&m, &v, &typed(TaskModel::Ioi, IOI_PROMPT, Corruption::Names)).unwrap();
        assert_eq!((p.answer.as_str(), p.wrong.as_str()), ("mary", "john"));
        assert_eq!((p.input.len(), p.clean_words[4].as_str()), (15, "mary"));
        let mut t = typed(TaskModel::Ioi, IOI_PROMPT, Corruption::Typed);
        t.corrupted = "When John and Mary went to the store, John gave the bottle back to";
        let e = prepare(&m, &v, &t).unwrap_err();
        assert!(e.message.contains("15 tokens and the corrupted prompt 16"), "{}", e.message);
        let (a, b) = e.tokenizations.unwrap();
        assert_eq!((a.len(), b.len(), b[14].as_str()), (15, 16, "back"));
        t.corrupted = IOI_PROMPT;
        assert!(prepare(&m, &v, &t).unwrap_err().message.contains("are the same"));
        t.corrupted = "When John and Mary went to the store, Mary gave a bottle to";
        t.answer = "mary jane";
        assert!(prepare(&m, &v, &t).unwrap_err().message.contains("is 2 tokens"));
        t.answer = "john";
        t.wrong = "John";
        assert!(prepare(&m, &v, &t).unwrap_err().message.contains("both “john”"));
        t.answer = "";
        t.wrong = "";
        let p = prepare(&m, &v, &t).unwrap();
        assert_eq!(p.corrupted_text, t.corrupted);
        let e = prepare(&m, &v, &typed(TaskModel::Ioi, "the store", Corruption::Names)).unwrap_err();
        assert!(e.message.contains("no name"), "{}", e.message);
        let e = prepare(&m, &v, &typed(TaskModel::Ioi, "mary went to the store", Corruption::Typed)).unwrap_err();
        assert!(e.message.contains("corrupted prompt is empty"), "{}", e.message);
    }

    #[test]
    fn the_induction_default_answers_by_copying() {
        let Some((m, v)) = shipped("induction") else { return };
        let clean = v.decode(&repeated_sequence(m.cfg.vocab_size, m.cfg.n_positions, 1));
        let p = prepare(&m, &v, &typed(TaskModel::Induction, &clean, Corruption::Redraw)).unwrap();
        assert_eq!(p.answer, p.clean_words[1]);
        assert_ne!(p.answer, p.wrong);
        // The clean run predicts the copied word; the corrupted run prefers its own guess.
        let lp = |toks: &[u32]| crate::lens::methods::patching::last_log_probs(&m.logits(toks).unwrap()).unwrap();
        let (c, k) = (lp(&p.input.clean), lp(&p.input.corrupted));
        let (a, w) = (p.input.answer as usize, p.input.wrong as usize);
        assert!(c[a] > c[w] + 1.0 && k[w] >= k[a], "clean {} vs {}, corrupted {} vs {}", c[a], c[w], k[a], k[w]);
    }

    #[test]
    fn a_corruption_that_changes_nothing_has_no_normalised_scale() {
        assert_eq!(check_gap(14.05, 4.86, "mary", "john"), Ok(()));
        assert_eq!(check_gap(0.1, -3.0, "mary", "john"), Ok(()));
        let e = check_gap(14.05, 14.13, "mary", "john").unwrap_err();
        assert!(e.contains("does not change the answer: logit(mary) − logit(john) is 14.05"), "{e}");
        assert!(e.contains("gap (-0.08)") && e.contains("probability of the answer"), "{e}");
        assert!(check_gap(0.0, 0.0, "a", "b").is_err());
        assert!(check_gap(f32::NAN, 1.0, "a", "b").is_err());
    }

    #[test]
    fn words_for_a_cell() {
        let toks: Vec<String> = ["<bos>", "when", "john", "and", "mary"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            patch_sentence(Target::AttnOut, Direction::Denoising, &[1, 4], &toks),
            "patched clean attn_out at layer 1, pos 4 (“mary”) into the corrupted run"
        );
        assert_eq!(
            patch_sentence(Target::HeadOut, Direction::Noising, &[2, 3], &toks),
            "patched corrupted head output z at layer 2, head 3 (every position) into the clean run"
        );
        assert_eq!(cell_place(Target::HeadOutByPos, &[0, 2, 1], &toks), "layer 0, head 1, pos 2 (“john”)");
        assert_eq!(fmt_value(Metric::AnswerProb, 0.25), "25.0%");
        assert_eq!(fmt_value(Metric::LogitDiff, -0.126), "-0.13");
        let cells: Vec<String> = [0.871, -0.126, 1.0, 0.0, -0.004, 12.4, f32::NAN].into_iter().map(fmt_cell).collect();
        assert_eq!(cells, [".87", "-.13", "1.00", "0", "0", "12", "–"]);
        assert_eq!(
            (cell_key(&[1, 4, 2]), parse_cell("1.4.2", Target::HeadOutByPos)),
            ("1.4.2".into(), Some(vec![1, 4, 2]))
        );
        assert_eq!(parse_cell("1.4", Target::HeadOutByPos), None);
        assert!(cell_outside(&[5, 1], &[3, 16]).contains("5.1 lies outside this grid (3 × 16)"));
    }

    #[test]
    fn csv_has_transformer_lens_columns() {
        let g = PatchGrid {
            target: Target::HeadOutByPos,
            metric: Metric::LogitDiff,
            dims: vec![2, 3, 2],
            values: (0..12).map(|v| v as f32 / 4.0).collect(),
        };
        // As written, the metadata's comment lines skipped.
        let csv = |g: &PatchGrid, d, m| -> String {
            let text = to_csv(&Meta::default(), &csv_table(g, d, m));
            text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect()
        };
        let text = csv(&g, Direction::Denoising, "activation");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "layer,pos,head,value,metric,target,direction,method");
        assert_eq!(lines.len(), 13);
        assert_eq!(lines[1], "0,0,0,0,logit_diff,attn_head_out_by_pos,denoising,activation");
        assert_eq!(lines[4], "0,1,1,0.75,logit_diff,attn_head_out_by_pos,denoising,activation");
        assert_eq!(lines[12], "1,2,1,2.75,logit_diff,attn_head_out_by_pos,denoising,activation");
        let h = PatchGrid { target: Target::HeadOut, metric: Metric::Kl, dims: vec![1, 2], values: vec![0.5, 1.0] };
        assert_eq!(
            csv(&h, Direction::Noising, "attribution").lines().nth(2),
            Some("0,,1,1,kl,attn_head_out_all_pos,noising,attribution")
        );
        let r = PatchGrid {
            target: Target::ResidPre,
            metric: Metric::AnswerProb,
            dims: vec![1, 2],
            values: vec![0.5, 1.0],
        };
        assert_eq!(
            csv(&r, Direction::Noising, "activation").lines().nth(1),
            Some("0,0,,0.5,answer_prob,resid_pre,noising,activation")
        );
        assert_eq!(
            csv_name(&r, Direction::Noising, "activation"),
            "activation-patching-resid_pre-noising-answer_prob.csv"
        );
    }

    #[test]
    fn the_largest_disagreements_come_first() {
        let real = PatchGrid {
            target: Target::HeadOut,
            metric: Metric::LogitDiff,
            dims: vec![2, 2],
            values: vec![0.0, 1.0, 0.5, 0.2],
        };
        let est = PatchGrid { values: vec![0.1, 0.2, 0.5, 0.9], ..real.clone() };
        let d = disagreements(&real, &est, 3);
        assert_eq!(d.iter().map(|x| x.0.clone()).collect::<Vec<_>>(), [vec![0, 1], vec![1, 1], vec![0, 0]]);
        assert_eq!((d[0].1, d[0].2), (1.0, 0.2));
    }

    #[test]
    fn an_opened_model_is_named_in_the_link_and_its_tokens_are_checked() {
        let own = PatchState { own: true, target: Target::HeadOut, ..PatchState::default() };
        assert_eq!(own.to_query()[0], ("model".to_string(), "own".to_string()));
        assert_eq!(PatchState::from_query(&own.to_query()), (own, vec![]));
        let pieces = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(one_token("the answer", " Mary", &[5335], &pieces(&[" Mary"])), Ok(5335));
        let two = one_token("the answer", "Marie", &[44, 2954], &pieces(&["Mar", "ie"])).unwrap_err();
        assert!(two.contains("“Marie” is 2 tokens for this tokenizer (“Mar”, “ie”)"), "{two}");
        assert!(two.contains("with a space first"), "{two}");
        assert!(!one_token("the answer", " Marie", &[1, 2], &pieces(&[" Mar", "ie"]))
            .unwrap_err()
            .contains("space first"));
        assert!(one_token("the wrong token", "", &[], &[]).unwrap_err().starts_with("The wrong token is empty"));
        let w = pieces(&["a", "b"]);
        assert!(same_length(2, 2, &w, &w).is_ok());
        let e = same_length(2, 3, &w, &w).unwrap_err();
        assert!(e.message.contains("2 tokens and the corrupted prompt 3"));
        assert!(e.tokenizations.is_some());
    }
}
