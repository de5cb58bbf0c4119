//! The attention lab (primer before 9.2.2): attention patterns and induction heads on the 2-layer
//! attention-only model, or the patterns of the IOI model (the ACDC lab links its heads here). Its URL state:
//! the model, the typed sequence and the selected head.
use crate::app::core::charts::{Axis, Bar, Rule};
use crate::app::core::export::{matrix_table, DataTable, Datum};
use crate::app::core::models::{LabModel, TaskModel, LAB_MODELS};
use crate::app::core::url::{Reader, UrlState, Writer};
use crate::lens::gpt2::model::per_position_loss;
use crate::lens::gpt2::vocab::{Tokenized, Vocab};
use crate::lens::methods::induction::{head_scores, split_half_losses, HeadScores};
use crate::lens::Transformer;

#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::AttentionLab;

/// The longest sequence a link carries, in characters (the model reads at most 63 words anyway).
pub const MAX_URL_SEQ: usize = 2000;

/// Largest layer or head number a link may name before the model is known; the view checks the real bounds.
const MAX_INDEX: usize = 63;

#[derive(Clone, Debug, PartialEq)]
pub struct AttentionState {
    /// A shipped task model, or the one opened in this tab (`model=own`).
    pub model: LabModel,
    /// The sequence; `None` opens on the model's default (a random repeat, or the chapter's IOI sentence).
    pub seq: Option<String>,
    /// The selected head; `None` selects the strongest induction head.
    pub head: Option<(usize, usize)>,
}

impl Default for AttentionState {
    fn default() -> Self {
        AttentionState { model: LabModel::Task(TaskModel::Induction), seq: None, head: None }
    }
}

impl UrlState for AttentionState {
    fn read(r: &mut Reader) -> Self {
        let model = r.choice("model", LabModel::Task(TaskModel::Induction), LAB_MODELS);
        let seq = r.optional_text("seq", MAX_URL_SEQ);
        let layer = r.optional_number("layer", 0..=MAX_INDEX);
        let head = r.optional_number("head", 0..=MAX_INDEX);
        AttentionState { model, seq, head: layer.zip(head) }
    }

    fn write(&self, w: &mut Writer) {
        w.choice("model", self.model, LabModel::Task(TaskModel::Induction), LAB_MODELS);
        w.optional_text("seq", self.seq.as_deref());
        w.optional_number("layer", self.head.map(|h| h.0));
        w.optional_number("head", self.head.map(|h| h.1));
    }
}

/// Everything the views need from one forward pass, as plain numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct LabResult {
    pub tokens: Vec<u32>,
    pub words: Vec<String>,
    /// `[layer][head][q][k]`
    pub patterns: Vec<Vec<Vec<Vec<f32>>>>,
    pub scores: Vec<Vec<HeadScores>>,
    /// Entry i is the loss of predicting token i + 1.
    pub loss: Vec<f32>,
    /// Where the second half starts (in words after `<bos>`), and both halves' mean loss.
    pub half: usize,
    pub halves: Option<(f32, f32)>,
    pub exact_repeat: bool,
}

/// Tokenises and runs the model; the error is the inline message the student sees.
pub fn compute(model: &Transformer, vocab: &Vocab, text: &str) -> Result<LabResult, String> {
    let tokens = match vocab.encode(text) {
        Tokenized::Ok(t) => t,
        Tokenized::Unknown(words) => {
            let w = &words[0];
            let hint = vocab.suggestions(w, 4);
            let hint =
                if hint.is_empty() { String::new() } else { format!(" Known words like it: {}.", hint.join(", ")) };
            let more = if words.len() > 1 { format!(" (and {} more unknown)", words.len() - 1) } else { String::new() };
            return Err(format!("“{w}”{more} is not in the model's vocabulary of {} words.{hint}", vocab.len() - 1));
        }
    };
    if tokens.len() == 1 {
        return Err("Type a few words (or press “Random repeat”): the sequence is empty.".into());
    }
    let ctx = model.cfg.n_positions;
    if tokens.len() > ctx {
        return Err(format!(
            "That is {} words, but the model reads at most {} (plus <bos>). Shorten the sequence.",
            tokens.len() - 1,
            ctx - 1
        ));
    }
    let (logits, cache) = model.run_with_cache(&tokens).map_err(|e| e.to_string())?;
    let mut patterns = Vec::with_capacity(model.cfg.n_layer);
    for l in 0..model.cfg.n_layer {
        let t = cache.get(crate::lens::Hook::Pattern(l)).ok_or("missing pattern")?;
        patterns.push(t.get(0).and_then(|t| t.to_vec3::<f32>()).map_err(|e| e.to_string())?);
    }
    let loss = per_position_loss(&logits, &tokens).map_err(|e| e.to_string())?;
    let words = tokens.iter().map(|&t| vocab.word(t).to_string()).collect();
    Ok(result_of(tokens, words, patterns, loss))
}

/// The lab's result from one pass's patterns `[layer][head][q][k]` and per-position loss (entry i: of predicting
/// token i + 1), over `tokens` whose first is the model's first token (`<bos>`), each shown as `words`.
pub fn result_of(tokens: Vec<u32>, words: Vec<String>, patterns: Vec<Vec<Vec<Vec<f32>>>>, loss: Vec<f32>) -> LabResult {
    let scores = patterns.iter().map(|layer| layer.iter().map(|p| head_scores(p, &tokens)).collect()).collect();
    let n_words = tokens.len().saturating_sub(1);
    let half = n_words / 2;
    let exact_repeat = n_words.is_multiple_of(2) && half > 0 && tokens[1..=half] == tokens[half + 1..];
    LabResult { halves: split_half_losses(&loss, n_words), tokens, words, patterns, scores, loss, half, exact_repeat }
}

/// Per-position loss from the logit lens's last layer (the model's own output): entry i is −ln of the
/// probability given to token i + 1. The last position has no next token and no entry.
pub fn loss_of_cells(cells: &[crate::lens::methods::logit_lens::LensCell]) -> Vec<f32> {
    cells.iter().filter_map(|c| c.target_prob).map(|p| -p.max(f32::MIN_POSITIVE).ln()).collect()
}

/// A model's training curve from its `training.json`, as (step, loss) points. The induction model writes each
/// point as `[step, loss]`, the IOI model as `{"step": .., "loss": ..}`; both are read.
pub fn training_curve(training: &serde_json::Value) -> Vec<(f64, f64)> {
    let point = |p: &serde_json::Value| match p {
        serde_json::Value::Array(a) => Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?)),
        serde_json::Value::Object(o) => Some((o.get("step")?.as_f64()?, o.get("loss")?.as_f64()?)),
        _ => None,
    };
    training.get("curve").and_then(|c| c.as_array()).map(|c| c.iter().filter_map(point).collect()).unwrap_or_default()
}

/// The head with the highest induction score (the last layer's first head if all are zero).
pub fn best_induction_head(scores: &[Vec<HeadScores>]) -> (usize, usize) {
    let mut best = (scores.len().saturating_sub(1), 0, f32::MIN);
    for (l, row) in scores.iter().enumerate() {
        for (h, s) in row.iter().enumerate() {
            if s.induction > best.2 {
                best = (l, h, s.induction);
            }
        }
    }
    (best.0, best.1)
}

/// The head-scores chart: a group per head (labelled `L{layer}H{head}`, in layer order) with its
/// previous-token, induction and duplicate-token scores, coloured as the legend says.
pub fn score_bars(scores: &[Vec<HeadScores>]) -> (Vec<Vec<Bar>>, Axis) {
    let mut groups = Vec::new();
    let mut names = Vec::new();
    for (layer, row) in scores.iter().enumerate() {
        for (head, s) in row.iter().enumerate() {
            let name = format!("L{layer}H{head}");
            let bar = |v: f32, class, what| Bar { value: v as f64, class, title: format!("{name} {what}: {v:.2}") };
            groups.push(vec![
                bar(s.previous_token, "blue", "previous-token"),
                bar(s.induction, "orange", "induction"),
                bar(s.duplicate_token, "violet", "duplicate-token"),
            ]);
            names.push(name);
        }
    }
    (groups, Axis::bands(names))
}

/// Where head (layer, head) sits among the groups of `score_bars`.
pub fn head_index(scores: &[Vec<HeadScores>], (layer, head): (usize, usize)) -> Option<usize> {
    let row = scores.get(layer)?;
    (head < row.len()).then(|| scores[..layer].iter().map(Vec::len).sum::<usize>() + head)
}

/// The loss chart: a bar per predicted token (the second half in the second colour), labelled by position at 1
/// and every fifth, and each half's mean as a line over its half.
pub fn loss_bars(r: &LabResult) -> (Vec<Vec<Bar>>, Axis, Vec<Rule>) {
    let second = |i: usize| r.half > 0 && i >= r.half;
    let groups = r
        .loss
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            let class = if second(i) { "orange" } else { "blue" };
            vec![Bar { value: l as f64, class, title: format!("position {}: {l:.2} nats", i + 1) }]
        })
        .collect();
    let labels = (1..=r.loss.len()).map(|p| if p == 1 || p % 5 == 0 { p.to_string() } else { String::new() });
    let (n, half) = (r.loss.len() as f64, r.half as f64);
    let rules = match r.halves {
        Some((a, b)) if r.half > 0 => vec![
            Rule { from: 0.0, to: half, value: a as f64, class: "ink", title: format!("first half: mean {a:.2} nats") },
            Rule { from: half, to: n, value: b as f64, class: "ink", title: format!("second half: mean {b:.2} nats") },
        ],
        _ => Vec::new(),
    };
    (groups, Axis::bands(labels.collect()), rules)
}

/// The (q, k) cell under a point at fraction (fx, fy) of an n x n pattern, if it is one a query can see.
pub fn cell_at(fx: f64, fy: f64, n: usize) -> Option<(usize, usize)> {
    if !(0.0..1.0).contains(&fx) || !(0.0..1.0).contains(&fy) {
        return None;
    }
    let (q, k) = ((fy * n as f64) as usize, (fx * n as f64) as usize);
    (k <= q && q < n).then_some((q, k))
}

/// A pattern (`[q][k]`) as RGBA pixels of a `side` x `side` image, each pixel the cell under its centre
/// (nearest neighbour, no smoothing: at `side == n` one pixel per cell). A weight is coloured by the app's
/// magnitude map (viridis: lightness carries it for every reader); the keys a query may not see (k > q) are
/// `masked`, so the causal triangle stays visible. Painted here rather than by scaling a pattern-sized canvas
/// with `drawImage`: that copy from canvas to canvas was an 11 ms call on a first visit (traced).
pub fn pattern_pixels(pattern: &[Vec<f32>], side: usize, masked: (u8, u8, u8)) -> Vec<u8> {
    let n = pattern.len();
    let mut data = vec![0u8; side * side * 4];
    if n == 0 {
        return data;
    }
    // The cell under pixel i's centre, for a row or a column (the same map both ways).
    let cell: Vec<usize> = (0..side).map(|i| ((2 * i + 1) * n / (2 * side)).min(n - 1)).collect();
    for (y, px_row) in data.chunks_exact_mut(side * 4).enumerate() {
        let q = cell[y];
        for (x, px) in px_row.chunks_exact_mut(4).enumerate() {
            let k = cell[x];
            let (r, g, b) = match pattern[q].get(k) {
                Some(&w) if k <= q => {
                    let c = crate::app::core::charts::sequential(w);
                    (c.0, c.1, c.2)
                }
                _ => masked,
            };
            px.copy_from_slice(&[r, g, b, 255]);
        }
    }
    data
}

/// Where the head thumbnails drawn in one frame end, from `from` on: at most `per_frame` thumbnails, of which at
/// most `new_per_frame` are `fresh` (their canvas gets its backing store now, which costs the page's thread
/// about 2 ms each in Chromium: 24 at once were a 50-90 ms task). At least one is drawn, so drawing always ends.
pub fn thumb_batch_end(
    from: usize,
    total: usize,
    fresh: impl Fn(usize) -> bool,
    per_frame: usize,
    new_per_frame: usize,
) -> usize {
    let (mut end, mut new) = (from, 0);
    while end < total && end - from < per_frame.max(1) {
        if fresh(end) {
            if new >= new_per_frame && end > from {
                break;
            }
            new += 1;
        }
        end += 1;
    }
    end
}

/// How a token is marked while the student hovers a token or a pattern cell, in the selected head's pattern.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TokenMark {
    /// The hovered token attends to this one (weight at least 0.1).
    pub attended: bool,
    /// This token attends to the hovered one (weight at least 0.1).
    pub attending: bool,
    /// The weight, for shading (0 when unmarked).
    pub weight: f32,
    /// This token is the query or the key of the hovered cell.
    pub linked: bool,
}

/// The mark of token `pos` in `pattern` (`[q][k]`), given what is hovered.
pub fn token_mark(
    pattern: &[Vec<f32>],
    pos: usize,
    hover_tok: Option<usize>,
    hover_cell: Option<(usize, usize)>,
) -> TokenMark {
    if let Some((q, k)) = hover_cell {
        return TokenMark { linked: pos == q || pos == k, ..TokenMark::default() };
    }
    match hover_tok {
        Some(q) if q < pattern.len() && pos <= q => {
            let w = pattern[q][pos];
            TokenMark { attended: w >= 0.1, weight: w, ..TokenMark::default() }
        }
        Some(k) if k < pattern.len() && pos > k && pos < pattern.len() => {
            let w = pattern[pos][k];
            TokenMark { attending: w >= 0.1, weight: w, ..TokenMark::default() }
        }
        _ => TokenMark::default(),
    }
}

/// Head (`layer`, `head`)'s attention pattern as a table: a row per query position, a column per key, each
/// position named by its number and word (`words[i]`, where there is one).
pub fn pattern_table(pattern: &[Vec<f32>], words: &[String], (layer, head): (usize, usize)) -> DataTable {
    let n = pattern.len();
    let name = |i: usize| match words.get(i) {
        Some(w) => format!("{i} {w}"),
        None => i.to_string(),
    };
    let values: Vec<Datum> =
        (0..n * n).map(|i| Datum::from(pattern[i / n].get(i % n).copied().unwrap_or(0.0))).collect();
    let caption = format!("attention pattern of L{layer}H{head}: rows are queries, columns are keys");
    matrix_table(&caption, "query \\ key", &values, (n, n), &name, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_pixels_paint_each_cell_and_the_mask_at_any_size() {
        let p = vec![vec![1.0, 0.0], vec![0.25, 0.75]];
        let masked = (255, 255, 255);
        let rgb = |w: f32| {
            let c = crate::app::core::charts::sequential(w);
            [c.0, c.1, c.2, 255]
        };
        // One pixel per cell, row by row; the cell above the diagonal is masked.
        let one = pattern_pixels(&p, 2, masked);
        assert_eq!(one, [rgb(1.0), [255, 255, 255, 255], rgb(0.25), rgb(0.75)].concat());
        // Scaled to 5 px: pixel centres 0.5..4.5 of 5 fall in cells 0, 0, 1, 1, 1 (2 wide, then 3).
        let five = pattern_pixels(&p, 5, masked);
        let at = |x: usize, y: usize| five[(y * 5 + x) * 4..(y * 5 + x) * 4 + 4].to_vec();
        assert_eq!(at(0, 0), rgb(1.0));
        assert_eq!(at(1, 1), rgb(1.0));
        assert_eq!(at(2, 1), vec![255, 255, 255, 255], "row 1 is still query 0");
        assert_eq!(at(1, 2), rgb(0.25));
        assert_eq!(at(4, 4), rgb(0.75));
        // Scaled down (more cells than pixels) every pixel still names a real cell; nothing to paint is blank.
        let big: Vec<Vec<f32>> = (0..100).map(|q| (0..=q).map(|k| k as f32 / 100.0).collect()).collect();
        assert_eq!(pattern_pixels(&big, 72, masked).len(), 72 * 72 * 4);
        assert!(pattern_pixels(&[], 3, masked).iter().all(|&b| b == 0));
    }

    #[test]
    fn thumbnail_frames_hold_a_few_new_canvases_and_more_redrawn_ones() {
        // 144 heads, none drawn yet: three a frame.
        let all_new = |_| true;
        assert_eq!(thumb_batch_end(0, 144, all_new, 24, 3), 3);
        assert_eq!(thumb_batch_end(141, 144, all_new, 24, 3), 144);
        // Every canvas already has its store: 24 a frame, the last frame shorter.
        assert_eq!(thumb_batch_end(0, 144, |_| false, 24, 3), 24);
        assert_eq!(thumb_batch_end(120, 144, |_| false, 24, 3), 144);
        // Mixed: old ones fill the frame around the three new ones.
        let every_fifth_new = |i: usize| i.is_multiple_of(5);
        assert_eq!(thumb_batch_end(0, 144, every_fifth_new, 24, 3), 15, "new at 0, 5, 10; 15 would be the fourth");
        // A frame always draws something, even with no room for new canvases.
        assert_eq!(thumb_batch_end(7, 144, all_new, 24, 0), 8);
        assert_eq!(thumb_batch_end(144, 144, all_new, 24, 3), 144);
    }

    #[test]
    fn a_pattern_is_a_table_of_queries_by_keys() {
        let t = pattern_table(&[vec![1.0, 0.0], vec![0.25, 0.75]], &["<bos>".into(), "a".into()], (1, 0));
        assert_eq!(t.columns, ["query \\ key", "0 <bos>", "1 a"]);
        assert_eq!(t.rows[1], [Datum::Text("1 a".into()), Datum::Num(0.25), Datum::Num(0.75)]);
        assert!(t.caption.contains("L1H0"));
    }
    use crate::app::core::url::parse_query;

    #[test]
    fn state_round_trips() {
        let s = AttentionState {
            model: LabModel::Task(TaskModel::Induction),
            seq: Some("the cat & the hat".into()),
            head: Some((1, 3)),
        };
        assert_eq!(AttentionState::from_query(&s.to_query()), (s, vec![]));
        assert_eq!(AttentionState::default().to_query(), vec![]);
        let ioi = AttentionState { model: LabModel::Task(TaskModel::Ioi), seq: None, head: Some((2, 0)) };
        assert_eq!(ioi.to_query()[0], ("model".to_string(), "ioi".to_string()));
        assert_eq!(AttentionState::from_query(&ioi.to_query()), (ioi, vec![]));
        // An unknown model is named and the lab opens on the induction model.
        let (s, problems) = AttentionState::from_query(&parse_query("model=gpt9&layer=1&head=2"));
        assert_eq!((s.model, s.head), (LabModel::Task(TaskModel::Induction), Some((1, 2))));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "model");
        // An opened model is named in the link (the view says so when this tab has none).
        let own = AttentionState { model: LabModel::Own, seq: Some("a b a b".into()), head: Some((11, 7)) };
        assert_eq!(own.to_query()[0], ("model".to_string(), "own".to_string()));
        assert_eq!(AttentionState::from_query(&own.to_query()), (own, vec![]));
    }

    #[test]
    fn both_models_training_curves_are_read() {
        let induction = serde_json::json!({ "curve": [[0, 5.5], [100, 2.25]] });
        assert_eq!(training_curve(&induction), vec![(0.0, 5.5), (100.0, 2.25)]);
        let ioi = serde_json::json!({ "curve": [{ "step": 50, "loss": 5.0, "held_out": null }, { "step": 100 }] });
        assert_eq!(training_curve(&ioi), vec![(50.0, 5.0)]);
        assert!(training_curve(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn chart_bars_follow_the_heads_and_positions() {
        let s = |p: f32, i: f32| HeadScores { previous_token: p, induction: i, duplicate_token: 0.0 };
        let scores = vec![vec![s(0.9, 0.0), s(0.1, 0.0)], vec![s(0.0, 0.8), s(0.0, 0.2)]];
        let (groups, x) = score_bars(&scores);
        assert_eq!(groups.len(), 4);
        assert_eq!(x.ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(), ["L0H0", "L0H1", "L1H0", "L1H1"]);
        assert_eq!((groups[2][1].value as f32, groups[2][1].class), (0.8, "orange"));
        assert_eq!(groups[2][1].title, "L1H0 induction: 0.80");
        assert_eq!(head_index(&scores, (1, 1)), Some(3));
        assert_eq!(head_index(&scores, (1, 2)), None);
        assert_eq!(head_index(&scores, (2, 0)), None);

        let r = LabResult {
            tokens: vec![],
            words: vec![],
            patterns: vec![],
            scores,
            loss: vec![5.0; 12],
            half: 6,
            halves: Some((5.0, 0.5)),
            exact_repeat: true,
        };
        let (groups, x, rules) = loss_bars(&r);
        assert_eq!(groups.iter().map(|g| g[0].class).collect::<Vec<_>>()[5..7], ["blue", "orange"]);
        assert_eq!(x.ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(), ["1", "5", "10"]);
        assert_eq!((rules[1].from, rules[1].to, rules[1].value), (6.0, 12.0, 0.5));
    }

    #[test]
    fn cells_outside_the_causal_triangle_are_not_hovered() {
        assert_eq!(cell_at(0.1, 0.9, 4), Some((3, 0)));
        assert_eq!(cell_at(0.9, 0.1, 4), None, "a key after the query");
        assert_eq!(cell_at(1.0, 0.5, 4), None);
        assert_eq!(cell_at(-0.1, 0.5, 4), None);
    }

    #[test]
    fn tokens_are_marked_by_what_is_hovered() {
        // Token 2 attends 0.7 to token 0 and 0.3 to itself; token 1 attends 0.05 to token 0.
        let p = vec![vec![1.0, 0.0, 0.0], vec![0.05, 0.95, 0.0], vec![0.7, 0.0, 0.3]];
        let m = token_mark(&p, 0, Some(2), None);
        assert_eq!((m.attended, m.weight), (true, 0.7));
        assert!(!token_mark(&p, 1, Some(2), None).attended, "weight 0 is not marked");
        let m = token_mark(&p, 2, Some(0), None);
        assert_eq!((m.attending, m.weight), (true, 0.7));
        assert!(!token_mark(&p, 1, Some(0), None).attending, "0.05 is under the threshold");
        assert!(token_mark(&p, 1, None, Some((2, 1))).linked);
        assert_eq!(token_mark(&p, 0, None, None), TokenMark::default());
    }

    #[test]
    fn the_strongest_induction_head_is_chosen() {
        let s = |induction: f32| HeadScores { induction, ..HeadScores::default() };
        assert_eq!(best_induction_head(&[vec![s(0.1), s(0.2)], vec![s(0.9), s(0.3)]]), (1, 0));
        assert_eq!(best_induction_head(&[]), (0, 0));
    }

    /// The shipped induction model: a repeated half is predicted far better than the first, and bad input
    /// gets a message a student can act on.
    #[test]
    fn compute_on_the_shipped_model() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/induction");
        let read = |f: &str| std::fs::read(format!("{dir}/{f}")).unwrap();
        let model =
            Transformer::from_bytes(&String::from_utf8(read("config.json")).unwrap(), &read("model.safetensors"))
                .unwrap();
        let vocab = Vocab::from_json(&String::from_utf8(read("vocab.json")).unwrap()).unwrap();
        let half = "the cat sat on the mat a red ball big tree";
        let r = compute(&model, &vocab, &format!("{half} {half}")).unwrap();
        assert!(r.exact_repeat);
        assert_eq!(r.words.len(), 23);
        let (first, second) = r.halves.unwrap();
        assert!(second < 0.5 * first, "{first} vs {second}");
        assert!(compute(&model, &vocab, "").unwrap_err().contains("empty"));
        assert!(compute(&model, &vocab, "the zzzz").unwrap_err().contains("“zzzz”"));
        let long = vec!["the"; 200].join(" ");
        assert!(compute(&model, &vocab, &long).unwrap_err().contains("Shorten"));

        // The opened-model path reads its loss from the logit lens's last layer: the same numbers.
        let lens = crate::lens::methods::logit_lens::logit_lens(&model, &r.tokens, 1).unwrap();
        let loss = loss_of_cells(lens.cells.last().unwrap());
        assert_eq!(loss.len(), r.loss.len());
        for (a, b) in loss.iter().zip(&r.loss) {
            assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "{a} vs {b}");
        }
        let again = result_of(r.tokens.clone(), r.words.clone(), r.patterns.clone(), loss);
        assert_eq!((again.half, again.exact_repeat, again.scores.len()), (r.half, r.exact_repeat, r.scores.len()));
    }

    #[test]
    fn a_bad_head_is_named_and_dropped() {
        let (s, p) = AttentionState::from_query(&parse_query("seq=a+b&layer=x&head=2"));
        assert_eq!((s.seq.as_deref(), s.head), (Some("a b"), None));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, "layer");
    }
}
