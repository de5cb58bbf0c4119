//! Opening your own model (issue #14, first slice): a GPT-2-family folder picked or dropped in the page is
//! sorted, checked and read into the engine without leaving the browser, and one forward pass with every
//! activation recorded proves it runs. The plain part: the page's text, the tokenizer's size as its files
//! state it, and the summary shown once the model is in. The reading itself is `lens::gpt2::open`.
use serde_json::Value;

use crate::app::core::offline::megabytes;
pub use crate::app::core::own_text::{model_input, show_piece, MAX_TOKENS};
use crate::lens::methods::induction::HeadScores;
use crate::lens::methods::logit_lens::LogitLens;
use crate::lens::methods::sae::{dequantise, FeatureIndex, IndexSettings, TopContext};

#[cfg(target_arch = "wasm32")]
pub mod features;
#[cfg(target_arch = "wasm32")]
pub mod sae;
#[cfg(target_arch = "wasm32")]
pub mod try_it;
#[cfg(target_arch = "wasm32")]
pub mod view;

/// The text beside the lab, in our own words.
pub const PAGE_HTML: &str = r##"<h1>Open your own model</h1>
<p>Every lab in this playground runs a small model we trained and shipped with the page (the
<a href="#/attention">attention lab</a>'s induction model, for one). This page opens one you bring instead: any model in the layout of GPT-2 as the Hugging Face <code>transformers</code> library saves
it.</p>
<h2>What to pick</h2>
<ul>
<li><code>config.json</code>: the model's shape (layers, heads, width, vocabulary, context);</li>
<li><code>model.safetensors</code>: the weights, in f32, f16 or bf16, up to 1 GB (GPT-2 small in f32 is 0.5 GB);</li>
<li>the tokenizer: <code>tokenizer.json</code>, or GPT-2's own pair <code>vocab.json</code> and <code>merges.txt</code>.</li>
</ul>
<p>Pick the whole folder, or the files together, or drop them on the lab. Other files in the folder are listed
and left alone.</p>
<h2>What happens to the files</h2>
<p>Nothing is uploaded. The page reads the files in this tab, a few megabytes at a time, checks them and builds
the model in memory. Closing the tab forgets it. The page works the same with the network cut.</p>
<h2>What is checked</h2>
<p>Before any weight is read: that the config describes a GPT-2 model the engine can run, that the weights file
holds every tensor that config needs with the right shape, and that the tokenizer has no more tokens than the
model's vocabulary. While reading: that no weight is NaN or infinite. Each refusal names the file and says what
to do.</p>
<h2>Where a folder comes from</h2>
<p>In Python, <code>model.save_pretrained(folder, safe_serialization=True)</code> and
<code>tokenizer.save_pretrained(folder)</code> write one. Every model this playground ships is such a folder
too: <code>public/models/induction</code> opens here as it opens in <code>transformers</code>.</p>
<h2>Try it</h2>
<p>Once the model is in, type a text of up to 64 tokens under it. The model's own tokenizer splits it into tokens
(GPT-2's byte-level BPE, run by Hugging Face's <code>tokenizers</code> library in a worker of its own), and the model
reads them. You see its guesses for the next token; the <a href="#/9.2.2">logit lens</a>, what the residual stream
after each layer would predict if the model stopped there; and every head's attention, scored as in the
<a href="#/attention">attention lab</a> for previous-token, induction and duplicate-token behaviour. Type a
sentence twice to look for induction heads.</p>
<p>An SAE trained on the model with SAELens opens there too (its <code>cfg.json</code> and
<code>sae_weights.safetensors</code>): the page checks that it reads a hook this model has, at this model's width,
and shows which of its latents fire hardest on the text, and where.</p>
<h2>In the labs</h2>
<p>The model stays in this tab, and four labs offer it beside ours: choose “Your model” there. The
<a href="#/attention">attention lab</a> shows every head's pattern on any text, with its scores and its loss on a
repeated sequence. <a href="#/9.2.2">The logit lens (9.2.2)</a> reads every layer's guess at every position,
and generates text from your prompt. <a href="#/9.3.1">Activation patching (9.3.1)</a> estimates, for every layer, head and
position at once, how much each piece carries the answer from a clean prompt to a corrupted one: attribution
patching, a forward and a backward pass rather than one run per cell. <a href="#/9.3.2">Steering (9.3.2)</a>
adds the difference between the mean activations of two sets of sentences you type, and generates from your
prompt with and without it, same seed. A link to a lab can name your model
(<code>model=own</code>) but never carries it: a tab that has not opened it says so and shows one of ours. The
other labs will follow.</p>"##;

/// The text the "Try it" box opens with: the chapter's indirect-object sentence.
pub const TRY_TEXT: &str = "When Mary and John went to the store, John gave a drink to";

/// A probability as a percentage with two significant digits below 1%, so that the near-uniform guesses of an
/// untrained model read as 0.0020%, not as 0.0%.
pub fn fmt_prob(p: f32) -> String {
    let pct = 100.0 * p;
    if pct >= 1.0 || pct <= 0.0 {
        format!("{pct:.1}%")
    } else {
        let decimals = (-pct.log10()).floor() as usize + 2;
        format!("{pct:.decimals$}%")
    }
}

/// The "Try it" result: the lens grid with the pieces to read it by.
#[derive(Clone, Debug, PartialEq)]
pub struct TryView {
    pub lens: LogitLens,
    /// The input's pieces, one per position.
    pub inputs: Vec<String>,
    /// `pieces[id]` for any id.
    pub vocab: std::sync::Arc<Vec<String>>,
    /// Whether position 0 is the model's own first token rather than the student's text.
    pub bos: bool,
    /// `[layer][head][q][k]`: each head's attention pattern.
    pub patterns: Vec<Vec<Vec<Vec<f32>>>>,
    /// An opened SAE's active latents at each position, with the hook it reads.
    pub sae: Option<(String, LatentsByPos)>,
    /// `[layer][head]`: how much each head acts as a previous-token, induction or duplicate-token head here.
    pub scores: Vec<Vec<HeadScores>>,
    /// From the text to the whole grid, in ms of wall time (encoding, the forward pass, every layer decoded).
    pub ms: f64,
}

/// Per position, its active latents as `(latent, activation)`.
pub type LatentsByPos = Vec<Vec<(u32, f32)>>;

/// The largest SAE weights file "Try it" opens. It is read a piece at a time (`SaeReader`), but the SAE then
/// stays in the page beside the model (GPT-2 small's residual-stream SAEs of 24,576 latents are 151 MB in f32).
pub const MAX_SAE_BYTES: u64 = 320_000_000;

/// The `n` latents that fire hardest on a text: (latent, its largest activation, the position of it), largest
/// first, from each position's active latents.
pub fn top_latents(acts: &[Vec<(u32, f32)>], n: usize) -> Vec<(u32, f32, usize)> {
    let mut best: std::collections::HashMap<u32, (f32, usize)> = std::collections::HashMap::new();
    for (pos, row) in acts.iter().enumerate() {
        for &(j, a) in row {
            let e = best.entry(j).or_insert((a, pos));
            if a > e.0 {
                *e = (a, pos);
            }
        }
    }
    let mut out: Vec<(u32, f32, usize)> = best.into_iter().map(|(j, (a, p))| (j, a, p)).collect();
    out.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    out.truncate(n);
    out
}

/// A latent's activation at each position (0 where it is not active).
pub fn latent_trace(acts: &[Vec<(u32, f32)>], latent: u32) -> Vec<f32> {
    acts.iter().map(|row| row.iter().find(|(j, _)| *j == latent).map_or(0.0, |&(_, a)| a)).collect()
}

/// The feature index over a long text on an opened model: the top contexts of each latent, 12 tokens before its
/// peak and 3 after (the book's index shows 40 and 10 characters).
pub const INDEX_SETTINGS: IndexSettings = IndexSettings { top: 6, before: 12, after: 3, bins: 20 };

/// The most tokens the feature index reads: the book's held-out passages are 60,495 characters, so a
/// character-level model reads all of them.
pub const MAX_INDEX_TOKENS: usize = 100_000;

/// What reading the index's text may cost, in multiply-adds and adds (see `own_text::tokens_for`): GPT-2 small
/// reads about 2,900 tokens, some 25 s here.
pub const INDEX_FLOPS: u64 = 500_000_000_000;

/// How many latents the index lists to pick from.
pub const INDEX_LISTED: usize = 24;

/// The latents with the highest peaks in an index, highest first (dead latents left out).
pub fn strongest(idx: &FeatureIndex, n: usize) -> Vec<usize> {
    let mut alive: Vec<usize> = (0..idx.latents.len()).filter(|&j| idx.latents[j].count > 0).collect();
    alive.sort_by(|&a, &b| idx.latents[b].max.total_cmp(&idx.latents[a].max).then(a.cmp(&b)));
    alive.truncate(n);
    alive
}

/// A top context as tokens: each one's text and the latent's activation there as a share of its maximum.
pub fn context_tokens(pieces: &[String], c: &TopContext) -> Vec<(String, f32)> {
    c.acts.chars().enumerate().filter_map(|(k, q)| Some((pieces.get(c.start + k)?.clone(), dequantise(q)))).collect()
}

/// What the head table is coloured by: the three detector scores of the attention lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreKind {
    PreviousToken,
    Induction,
    DuplicateToken,
}

impl ScoreKind {
    pub const ALL: [ScoreKind; 3] = [ScoreKind::PreviousToken, ScoreKind::Induction, ScoreKind::DuplicateToken];

    pub fn key(self) -> &'static str {
        match self {
            ScoreKind::PreviousToken => "previous",
            ScoreKind::Induction => "induction",
            ScoreKind::DuplicateToken => "duplicate",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ScoreKind::PreviousToken => "previous-token score",
            ScoreKind::Induction => "induction score",
            ScoreKind::DuplicateToken => "duplicate-token score",
        }
    }

    pub fn of(self, s: &HeadScores) -> f32 {
        match self {
            ScoreKind::PreviousToken => s.previous_token,
            ScoreKind::Induction => s.induction,
            ScoreKind::DuplicateToken => s.duplicate_token,
        }
    }
}

impl TryView {
    /// The head with the highest `kind` score (the first of equals), as (layer, head).
    pub fn best_head(&self, kind: ScoreKind) -> (usize, usize) {
        let mut best = ((0, 0), f32::NEG_INFINITY);
        for (l, layer) in self.scores.iter().enumerate() {
            for (h, s) in layer.iter().enumerate() {
                if kind.of(s) > best.1 {
                    best = ((l, h), kind.of(s));
                }
            }
        }
        best.0
    }

    pub fn piece(&self, id: u32) -> String {
        self.vocab.get(id as usize).cloned().unwrap_or_else(|| format!("<{id}>"))
    }

    /// The last layer's guesses for the token after the text: (piece, probability), most likely first.
    pub fn next_guesses(&self) -> Vec<(String, f32)> {
        let last = self.lens.cells.last().and_then(|layer| layer.last());
        last.map(|c| c.top.iter().map(|&(id, p)| (self.piece(id), p)).collect()).unwrap_or_default()
    }

    /// A cell's title: its top guesses, and how likely the true next token was.
    pub fn cell_title(&self, layer: usize, pos: usize) -> String {
        let cell = &self.lens.cells[layer][pos];
        let mut lines: Vec<String> =
            cell.top.iter().map(|&(id, p)| format!("{:?} {}", self.piece(id), fmt_prob(p))).collect();
        if let (Some(p), Some(r), Some(&next)) = (cell.target_prob, cell.target_rank, self.lens.tokens.get(pos + 1)) {
            lines.push(format!("true next {:?}: {}, rank {}", self.piece(next), fmt_prob(p), r + 1));
        }
        lines.join("\n")
    }
}

/// A tokenizer with more tokens than the model has rows of embeddings would give ids the model cannot read.
/// Fewer is fine: models often round their vocabulary up (GPT-2's 50,257 tokens in 50,304 rows).
pub fn check_tokenizer(file: &str, tokens: usize, vocab_size: usize) -> Result<(), String> {
    if tokens > vocab_size {
        return Err(format!(
            "{file} has {tokens} tokens but config.json says the model has {vocab_size}: they belong to different models"
        ));
    }
    Ok(())
}

/// The name a picked folder goes by: its folder's name, else the config's `_name_or_path`, else "your model".
pub fn model_name(weights_path: &str, config: &Value) -> String {
    let folder = weights_path.rsplit_once(['/', '\\']).map(|(dir, _)| dir.rsplit(['/', '\\']).next().unwrap_or(dir));
    let from_config = config.get("_name_or_path").and_then(Value::as_str).filter(|s| !s.is_empty());
    folder.filter(|f| !f.is_empty()).or(from_config).unwrap_or("your model").to_string()
}

/// What the page says about an opened model.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub name: String,
    pub n_layer: usize,
    pub n_head: usize,
    pub d_model: usize,
    pub d_mlp: usize,
    pub vocab_size: usize,
    pub n_positions: usize,
    pub params: u64,
    pub file_bytes: u64,
    pub tokenizer: String,
    pub unused: Vec<String>,
    pub load_ms: f64,
    /// Tokens of the check run, its time, and how many activations it recorded.
    pub check: (usize, f64, usize),
}

/// A count as people read it: 124.4M, 7.1k, 512.
pub fn short_count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.2}B", n as f64 / 1e9),
    }
}

/// A duration as people read it: 640 ms, 4.2 s.
pub fn duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1e3)
    }
}

impl Summary {
    /// The summary as (label, value) rows of a table.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let (tokens, ms, acts) = self.check;
        let mut rows = vec![
            ("Parameters", short_count(self.params)),
            ("Layers × heads", format!("{} × {}", self.n_layer, self.n_head)),
            ("d_model / d_mlp", format!("{} / {}", self.d_model, self.d_mlp)),
            ("Vocabulary", format!("{} tokens", self.vocab_size)),
            ("Context", format!("{} positions", self.n_positions)),
            ("Weights file", format!("{}, read in {}", megabytes(self.file_bytes), duration(self.load_ms))),
            ("Tokenizer", self.tokenizer.clone()),
            ("Check run", format!("{tokens} tokens, {acts} activations recorded, {ms:.0} ms")),
        ];
        if !self.unused.is_empty() {
            rows.push(("Not used", self.unused.join(", ")));
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_lists_its_strongest_latents_and_shows_contexts_as_tokens() {
        let mut acts: Vec<Vec<(u32, f32)>> = vec![Vec::new(); 30];
        acts[4].push((2, 1.0));
        acts[20].push((0, 3.0));
        acts[21].push((0, 1.5));
        let idx = crate::lens::methods::sae::build_index(&acts, 4, INDEX_SETTINGS);
        assert_eq!(strongest(&idx, 10), [0, 2]);
        assert_eq!(strongest(&idx, 1), [0]);
        let pieces: Vec<String> = (0..30).map(|i| format!("t{i}")).collect();
        let toks = context_tokens(&pieces, &idx.latents[0].contexts[0]);
        assert_eq!(toks.first().map(|t| t.0.as_str()), Some("t8"), "12 tokens before the peak at 20");
        assert_eq!(toks.len(), 12 + 1 + 3);
        assert_eq!(toks[12], ("t20".to_string(), 15.0 / 16.0), "the peak, at the top digit");
        assert_eq!(toks[13].1, 0.5);
    }

    #[test]
    fn a_tokenizer_bigger_than_the_model_is_refused_with_the_file_named() {
        assert_eq!(check_tokenizer("vocab.json", 50257, 50304), Ok(()));
        assert!(check_tokenizer("vocab.json", 50257, 1000).unwrap_err().contains("different models"));
    }

    #[test]
    fn a_probability_keeps_two_significant_digits_below_one_percent() {
        assert_eq!((fmt_prob(0.5), fmt_prob(0.012), fmt_prob(0.0)), ("50.0%".into(), "1.2%".into(), "0.0%".into()));
        assert_eq!((fmt_prob(0.0012), fmt_prob(0.00002)), ("0.12%".into(), "0.0020%".into()));
    }

    #[test]
    fn the_best_head_is_the_highest_score_of_the_kind_asked() {
        let s = |p, i, d| HeadScores { previous_token: p, induction: i, duplicate_token: d };
        let v = TryView {
            lens: LogitLens { tokens: vec![], hooks: vec![], cells: vec![] },
            inputs: vec![],
            vocab: Default::default(),
            bos: false,
            patterns: vec![],
            sae: None,
            scores: vec![vec![s(0.9, 0.1, 0.0), s(0.2, 0.1, 0.5)], vec![s(0.1, 0.8, 0.5), s(0.9, 0.3, 0.1)]],
            ms: 0.0,
        };
        assert_eq!(v.best_head(ScoreKind::PreviousToken), (0, 0));
        assert_eq!(v.best_head(ScoreKind::Induction), (1, 0));
        assert_eq!(v.best_head(ScoreKind::DuplicateToken), (0, 1));
        assert_eq!(ScoreKind::ALL.map(ScoreKind::key), ["previous", "induction", "duplicate"]);
    }

    #[test]
    fn the_top_latents_are_the_largest_activations_each_at_its_position() {
        let acts = vec![vec![(3, 0.5), (7, 2.0)], vec![], vec![(3, 4.0), (9, 1.0)], vec![(7, 1.0)]];
        assert_eq!(top_latents(&acts, 5), vec![(3, 4.0, 2), (7, 2.0, 0), (9, 1.0, 2)]);
        assert_eq!(top_latents(&acts, 1), vec![(3, 4.0, 2)]);
        assert_eq!(latent_trace(&acts, 7), vec![2.0, 0.0, 0.0, 1.0]);
        assert_eq!(latent_trace(&acts, 1), vec![0.0; 4]);
        assert!(top_latents(&[], 3).is_empty());
    }

    #[test]
    fn a_model_is_named_after_its_folder() {
        let none = Value::Null;
        assert_eq!(model_name("gpt2-small/model.safetensors", &none), "gpt2-small");
        assert_eq!(model_name("a/b/model.safetensors", &none), "b");
        let cfg: Value = serde_json::json!({"_name_or_path": "openai-community/gpt2"});
        assert_eq!(model_name("model.safetensors", &cfg), "openai-community/gpt2");
        assert_eq!(model_name("model.safetensors", &none), "your model");
    }

    #[test]
    fn the_summary_reads_as_a_person_would_say_it() {
        assert_eq!(short_count(512), "512");
        assert_eq!(short_count(124_439_808), "124.4M");
        assert_eq!(short_count(71_000), "71.0k");
        assert_eq!((duration(640.2), duration(4200.0)), ("640 ms".to_string(), "4.2 s".to_string()));
        let s = Summary {
            name: "gpt2".into(),
            n_layer: 12,
            n_head: 12,
            d_model: 768,
            d_mlp: 3072,
            vocab_size: 50257,
            n_positions: 1024,
            params: 124_439_808,
            file_bytes: 497_759_232,
            tokenizer: "vocab.json + merges.txt (50257 tokens)".into(),
            unused: vec![],
            load_ms: 4200.0,
            check: (32, 812.0, 170),
        };
        let rows = s.rows();
        assert_eq!(rows[0], ("Parameters", "124.4M".to_string()));
        assert_eq!(rows[5].1, "497.8 MB, read in 4.2 s");
        assert_eq!(rows.len(), 8);
    }
}
