//! The induction task and the head-detector scores.
//!
//! Training data: random tokens in which several segments of random length recur at random offsets. A fixed
//! offset would let the model cheat with purely positional attention; a varying one leaves only the general
//! solution, a previous-token head feeding an induction head (Olsson et al. 2022).
//!
//! Scores follow TransformerLens's head detector (`detect_head`, "mul" measure): the attention a head puts
//! on the key positions the pattern predicts. We average over the query positions that have such a key,
//! which is what its induction-score tutorial does for repeated sequences (rows with no expected key would
//! only dilute the score).
use crate::lens::rng::Rng;

/// Parameters of the synthetic induction task.
#[derive(Clone, Copy, Debug)]
pub struct TaskSpec {
    pub vocab_size: usize,
    /// Sequence length including the leading `<bos>` (id 0).
    pub seq_len: usize,
    pub min_repeat: usize,
    pub max_repeat: usize,
}

impl TaskSpec {
    pub fn new(vocab_size: usize, seq_len: usize) -> Self {
        TaskSpec { vocab_size, seq_len, min_repeat: 4, max_repeat: (seq_len - 1) / 2 }
    }

    fn random_token(&self, rng: &mut Rng) -> u32 {
        rng.range(1, self.vocab_size - 1) as u32
    }

    /// `<bos>` then uniformly random tokens, with segments of random length copied to random later offsets.
    pub fn training_sequence(&self, rng: &mut Rng) -> Vec<u32> {
        self.training_example(rng).0
    }

    /// A training sequence and, for each of its `seq_len - 1` next-token predictions, whether the target is
    /// predictable (inside a copy, after its first token). Training on those predictions only keeps the
    /// gradient free of the noise of unpredictable random tokens, so the induction circuit forms sooner.
    pub fn training_example(&self, rng: &mut Rng) -> (Vec<u32>, Vec<f32>) {
        let n = self.seq_len;
        let mut seq: Vec<u32> = (0..n).map(|i| if i == 0 { 0 } else { self.random_token(rng) }).collect();
        let mut used = vec![false; n];
        used[0] = true;
        let mut weights = vec![0.0f32; n - 1];
        // Several non-overlapping repeats, mostly short. With only long repeats a model can find the copy by
        // matching a smeared bag of recent tokens and never forms a sharp previous-token head; short repeats
        // leave exact matching of the previous token as the only way to predict them.
        for attempt in 0..24 {
            let len = if attempt == 0 || rng.uniform() < 0.2 {
                rng.range(self.min_repeat, self.max_repeat)
            } else {
                rng.range(2, 8.min(self.max_repeat))
            };
            if 2 * len > n - 1 {
                continue;
            }
            let first = rng.range(1, n - 2 * len);
            let second = rng.range(first + len, n - len);
            if used[first..first + len].iter().chain(&used[second..second + len]).any(|&u| u) {
                continue;
            }
            for i in 0..len {
                seq[second + i] = seq[first + i];
                used[first + i] = true;
                used[second + i] = true;
                // Prediction second+i-1 targets seq[second+i]; the copy's first token is not predictable.
                if i > 0 {
                    weights[second + i - 1] = 1.0;
                }
            }
        }
        (seq, weights)
    }

    /// `<bos>` followed by `len` random tokens and the same `len` tokens again.
    pub fn repeated_sequence(&self, rng: &mut Rng, len: usize) -> Vec<u32> {
        let half: Vec<u32> = (0..len).map(|_| self.random_token(rng)).collect();
        let mut seq = vec![0];
        seq.extend(&half);
        seq.extend(&half);
        seq
    }
}

/// A random run of 8 to 20 distinct words, repeated once, as text for the word-level model (`seed` picks it):
/// the induction model's home ground, shown when a lab opens without a sequence of its own. The words are
/// distinct because a word that occurs twice in the first half has two continuations, and a student would read
/// the model's honest guess between them as a failure of induction (one in sixteen draws had one).
pub fn random_repeat_text(vocab: &crate::lens::gpt2::vocab::Vocab, n_positions: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let spec = TaskSpec::new(vocab.len(), n_positions);
    let len = rng.range(8, 20.min(spec.max_repeat));
    let mut half: Vec<u32> = Vec::with_capacity(len);
    while half.len() < len {
        let t = spec.random_token(&mut rng);
        if !half.contains(&t) {
            half.push(t);
        }
    }
    let seq: Vec<u32> = std::iter::once(0).chain(half.iter().copied()).chain(half.iter().copied()).collect();
    vocab.decode(&seq)
}

/// Rows q: for each query position, the key positions a previous-token head should attend to.
pub fn previous_token_targets(n: usize) -> Vec<Vec<usize>> {
    (0..n).map(|q| if q == 0 { vec![] } else { vec![q - 1] }).collect()
}

/// Earlier positions holding the same token as the query.
pub fn duplicate_token_targets(tokens: &[u32]) -> Vec<Vec<usize>> {
    (0..tokens.len()).map(|q| (0..q).filter(|&k| tokens[k] == tokens[q]).collect()).collect()
}

/// The positions just after each earlier occurrence of the query's token: where an induction head looks.
pub fn induction_targets(tokens: &[u32]) -> Vec<Vec<usize>> {
    duplicate_token_targets(tokens).into_iter().map(|ks| ks.into_iter().map(|k| k + 1).collect()).collect()
}

/// Mean, over query rows with at least one target, of the attention mass on the targets.
/// `pattern[q][k]` is one head's attention. None when no row has a target.
pub fn detector_score(pattern: &[Vec<f32>], targets: &[Vec<usize>]) -> Option<f32> {
    let mut sum = 0.0;
    let mut rows = 0;
    for (q, ks) in targets.iter().enumerate() {
        if ks.is_empty() {
            continue;
        }
        sum += ks.iter().map(|&k| pattern[q][k]).sum::<f32>();
        rows += 1;
    }
    (rows > 0).then(|| sum / rows as f32)
}

/// The three scores the lab shows for a head.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeadScores {
    pub previous_token: f32,
    pub induction: f32,
    pub duplicate_token: f32,
}

pub fn head_scores(pattern: &[Vec<f32>], tokens: &[u32]) -> HeadScores {
    HeadScores {
        previous_token: detector_score(pattern, &previous_token_targets(tokens.len())).unwrap_or(0.0),
        induction: detector_score(pattern, &induction_targets(tokens)).unwrap_or(0.0),
        duplicate_token: detector_score(pattern, &duplicate_token_targets(tokens)).unwrap_or(0.0),
    }
}

/// Mean loss over the predictions made inside each half of `<bos>` + `n_words` words, split at h = n_words / 2.
/// `loss[i]` predicts token i + 1. First half: targets 2..=h (its first word is unpredictable). Second half:
/// targets h+2..=n_words (even in an exact repeat, nothing tells the model that its first word repeats).
/// None when a half has no such prediction.
pub fn split_half_losses(loss: &[f32], n_words: usize) -> Option<(f32, f32)> {
    let h = n_words / 2;
    if h < 2 || h + 1 >= n_words || loss.len() < n_words {
        return None;
    }
    let mean = |r: std::ops::Range<usize>| r.clone().map(|i| loss[i]).sum::<f32>() / r.len() as f32;
    Some((mean(1..h), mean(h + 1..n_words)))
}

/// `split_half_losses` for `<bos> + half + half` with `len` words in each half.
pub fn half_losses(loss: &[f32], len: usize) -> (f32, f32) {
    split_half_losses(loss, 2 * len).unwrap_or((f32::NAN, f32::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_sequences_contain_their_repeat() {
        let spec = TaskSpec::new(300, 64);
        let mut rng = Rng::new(3);
        for _ in 0..200 {
            let s = spec.training_sequence(&mut rng);
            assert_eq!(s.len(), 64);
            assert_eq!(s[0], 0);
            assert!(s[1..].iter().all(|t| (1..300).contains(t)));
            // Some run of at least min_repeat tokens occurs twice.
            let found = (1..64).any(|a| (a + 1..64).any(|b| b + 4 <= 64 && s[a..a + 4] == s[b..b + 4]));
            assert!(found, "{s:?}");
        }
        // Weighted predictions are exactly the predictable ones: their target equals the token `gap` earlier,
        // where gap is the distance between the copies.
        for _ in 0..200 {
            let (s, w) = spec.training_example(&mut rng);
            assert_eq!(w.len(), 63);
            let marked: Vec<usize> = (0..63).filter(|&i| w[i] == 1.0).map(|i| i + 1).collect();
            assert!(marked.len() >= 3, "{w:?}");
            // Every marked target continues a copy: the same two tokens occur earlier in the sequence.
            for &t in &marked {
                let earlier = (1..t - 1).any(|j| s[j] == s[t - 1] && s[j + 1] == s[t]);
                assert!(earlier, "target {t} in {s:?} does not continue an earlier bigram");
            }
        }
    }

    #[test]
    fn detector_scores_on_hand_made_patterns() {
        // tokens: bos A B A B -> induction targets: q3 (A) -> 2 ; q4 (B) -> 3
        let tokens = [0, 5, 6, 5, 6];
        assert_eq!(induction_targets(&tokens), vec![vec![], vec![], vec![], vec![2], vec![3]]);
        assert_eq!(duplicate_token_targets(&tokens), vec![vec![], vec![], vec![], vec![1], vec![2]]);
        let n = tokens.len();
        let prev: Vec<Vec<f32>> = (0..n)
            .map(|q| (0..n).map(|k| if q == 0 { (k == 0) as u8 as f32 } else { (k + 1 == q) as u8 as f32 }).collect())
            .collect();
        let s = head_scores(&prev, &tokens);
        assert_eq!(s.previous_token, 1.0);
        // A previous-token head attends to q-1, which is the induction target for q=3 (2) and q=4 (3).
        assert_eq!(s.induction, 1.0);
        assert_eq!(s.duplicate_token, 0.0);
        // Uniform causal attention: row q spreads 1/(q+1) on each key.
        let uni: Vec<Vec<f32>> =
            (0..n).map(|q| (0..n).map(|k| if k <= q { 1.0 / (q + 1) as f32 } else { 0.0 }).collect()).collect();
        let s = head_scores(&uni, &tokens);
        let expect_prev = (1.0 / 2.0 + 1.0 / 3.0 + 1.0 / 4.0 + 1.0 / 5.0) / 4.0;
        assert!((s.previous_token - expect_prev).abs() < 1e-6);
        assert!((s.induction - (1.0 / 4.0 + 1.0 / 5.0) / 2.0).abs() < 1e-6);
    }

    #[test]
    fn half_losses_split_where_expected() {
        // <bos> a b c a b c: 6 predictions
        let loss = [9.0, 1.0, 1.0, 5.0, 0.0, 0.0];
        assert_eq!(half_losses(&loss, 3), (1.0, 0.0));
        // Odd length: <bos> + 5 words, h = 2: first half target 2 (loss[1]), second half targets 4..=5 (loss[3..5]).
        assert_eq!(split_half_losses(&[9.0, 2.0, 7.0, 1.0, 3.0], 5), Some((2.0, 2.0)));
        assert_eq!(split_half_losses(&[1.0, 1.0, 1.0], 3), None);
        assert_eq!(split_half_losses(&[], 0), None);
    }
}
