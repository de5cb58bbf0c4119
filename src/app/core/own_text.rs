//! What a model opened in this tab (`#/open`, `core::opened`) reads, in plain Rust tested natively: a text's
//! ids from its own tokenizer with the model's first token put in front, each token as a cell shows it, and a
//! random repeated text made of the tokenizer's own words (the attention lab's "Random repeat" on any model).
use crate::lens::gpt2::tokenizer::Encoded;
use crate::lens::rng::Rng;
use crate::lens::Gpt2Config;

/// The most tokens a lab reads from an opened model at once: its grids show every position, and a 1024-token
/// context would make a million-cell pattern and a 30 s lens.
pub const MAX_TOKENS: usize = 64;

/// What the model reads for an encoded text: the model's `bos` token first when its config names one (as
/// TransformerLens prepends GPT-2's `<|endoftext|>`), then the text's tokens, with each one's piece. Refuses
/// an empty text, a text longer than the context, and ids the model has no embedding for, each in words.
pub fn model_input(
    enc: &Encoded,
    bos: Option<(u32, &str)>,
    n_positions: usize,
    vocab_size: usize,
) -> Result<(Vec<u32>, Vec<String>), String> {
    if enc.ids.is_empty() {
        return Err("Type some text: the model needs at least one token to read.".into());
    }
    let room = n_positions.min(MAX_TOKENS) - usize::from(bos.is_some());
    if enc.ids.len() > room {
        let whose = if n_positions > MAX_TOKENS { "this page reads" } else { "the model reads" };
        return Err(format!(
            "This text is {} tokens and {whose} at most {room}{}: shorten it.",
            enc.ids.len(),
            if bos.is_some() { " after the model's first token" } else { "" }
        ));
    }
    check_ids(&enc.ids, vocab_size).map_err(|e| super::format::sentence(&e) + ".")?;
    let mut ids: Vec<u32> = bos.iter().map(|&(id, _)| id).collect();
    let mut pieces: Vec<String> = bos.iter().map(|&(_, p)| p.to_string()).collect();
    ids.extend(&enc.ids);
    pieces.extend(enc.pieces.iter().cloned());
    Ok((ids, pieces))
}

/// Refuses ids the model has no embedding for (a tokenizer bigger than the model's vocabulary), in words (a
/// clause, as the engine's messages are: the caller ends the sentence).
pub fn check_ids(ids: &[u32], vocab_size: usize) -> Result<(), String> {
    match ids.iter().find(|&&id| id as usize >= vocab_size) {
        Some(&bad) => Err(format!("the tokenizer gave the id {bad}, but the model has only {vocab_size} tokens")),
        None => Ok(()),
    }
}

/// The longest text a student may paste for an opened model to read at length (probes, an SAE's index), in
/// characters; the book's held-out passages are 60,000.
pub const MAX_PASTED: usize = 200_000;

/// Checks a pasted long text before any work: not empty, not over `MAX_PASTED`. `what` says what the text is
/// for ("to probe on").
pub fn check_pasted(text: &str, what: &str) -> Result<(), String> {
    let n = text.chars().count();
    if text.trim().is_empty() {
        return Err(format!("Paste a text {what}: the box is empty."));
    }
    if n > MAX_PASTED {
        return Err(format!("The text is {n} characters; this page reads at most {MAX_PASTED}: shorten it."));
    }
    Ok(())
}

/// A piece as a cell shows it: spaces made visible (`·`), line breaks as `⏎`, cut to 14 characters with `…`.
pub fn show_piece(piece: &str) -> String {
    if piece.chars().count() > 14 {
        return show_piece(&piece.chars().take(13).collect::<String>()) + "…";
    }
    piece
        .chars()
        .map(|c| match c {
            ' ' => '·',
            '\n' => '⏎',
            '\t' => '→',
            c => c,
        })
        .collect()
}

/// A half block over a window costs at most about this many multiply-adds and adds (12 d_model² per token):
/// a slice of the browser's forward pass stays well inside a frame's budget.
const HALF_BLOCK_FLOPS: u64 = 250_000_000;

/// How many tokens of a long text an opened model reads at once (with its first token in front, when `bos`):
/// 128 for a small model (the Moby-Dick model's own context), fewer for a big one, whose half block over them
/// must fit in a slice (GPT-2 small: 35).
pub fn reading_window(cfg: &Gpt2Config, bos: bool) -> usize {
    // u64: a big model's figures overflow wasm32's usize.
    let d2 = (cfg.d_model() * cfg.d_model()) as u64;
    let room = cfg.n_positions.saturating_sub(usize::from(bos)).max(1) as u64;
    (HALF_BLOCK_FLOPS / (12 * d2).max(1)).clamp(16, 128).min(room) as usize
}

/// How many tokens of a long text an opened model can read for about `flops` multiply-adds and adds (24
/// d_model² per token per layer), between `min` and `max`.
pub fn tokens_for(cfg: &Gpt2Config, flops: u64, min: usize, max: usize) -> usize {
    let per_token = 24 * (cfg.d_model() * cfg.d_model()) as u64 * cfg.n_layer.max(1) as u64;
    (flops / per_token.max(1)).clamp(min as u64, max as u64) as usize
}

/// The most words in each half of `random_repeat`'s text.
const MAX_HALF: usize = 20;

/// How many of the vocabulary's first whole words `random_repeat` draws from. A BPE vocabulary numbers its
/// tokens in the order its merges were learnt, so its first words are its most common (GPT-2's first thousand
/// run from ` the` to about ` development`), where later ones include pieces of words (` redu`, ` ruct`).
const COMMON_WORDS: usize = 1000;

/// A text of distinct random words, then the same words again: what an induction head copies. The words are
/// the tokenizer's own whole-word tokens (lowercase letters, 3 to 9 of them, as a BPE vocabulary writes them
/// with their leading space; the most common: see `COMMON_WORDS`), so each is one token and the two halves
/// read as the same tokens. A word's
/// count is chosen to fit `n_positions` with the model's first token. `None` when the vocabulary has too few
/// such words.
pub fn random_repeat(pieces: &[String], n_positions: usize, seed: u64) -> Option<String> {
    let words = common_words(pieces);
    let half = ((n_positions.min(MAX_TOKENS).saturating_sub(1)) / 2).min(MAX_HALF);
    if half < 2 || words.len() < 4 * half {
        return None;
    }
    let mut rng = Rng::new(seed);
    let mut drawn: Vec<&str> = Vec::with_capacity(half);
    while drawn.len() < half {
        let w = words[rng.range(0, words.len() - 1)];
        if !drawn.contains(&w) {
            drawn.push(w);
        }
    }
    // In a BPE vocabulary a word after a space is another token than the same word first in a text (`the` and
    // ` the`): a leading space makes the first word the same token in both halves.
    let lead = if pieces.iter().any(|p| p.starts_with(' ')) { " " } else { "" };
    let once = drawn.join(" ");
    Some(format!("{lead}{once} {once}"))
}

/// The vocabulary's first `COMMON_WORDS` whole words, in id order. A BPE vocabulary marks a word's start with
/// its space (` the`); its pieces without one are mostly parts of words (`ing`). Some spaced pieces are the
/// start of a longer word too (` con`, ` opportun`): a piece that begins another one at least three letters
/// longer is left out (which costs a few real words, ` was` among them, that the rest easily replace). A word-level
/// vocabulary has no spaces, and all its words count.
fn common_words(pieces: &[String]) -> Vec<&str> {
    let spaced = pieces.iter().any(|p| p.starts_with(' '));
    let letters = |w: &&str| w.bytes().all(|b| b.is_ascii_lowercase());
    let all: Vec<&str> = pieces
        .iter()
        .filter_map(|p| if spaced { p.strip_prefix(' ') } else { Some(p.as_str()) })
        .filter(|w| w.len() >= 3 && letters(w))
        .collect();
    let mut sorted = all.clone();
    sorted.sort_unstable();
    // The words starting with `w` follow it in sorted order.
    let begins_longer = |w: &str| {
        let from = sorted.partition_point(|o| *o <= w);
        sorted[from..].iter().take_while(|o| o.starts_with(w)).any(|o| o.len() >= w.len() + 3)
    };
    all.into_iter().filter(|w| w.len() <= 9 && (!spaced || !begins_longer(w))).take(COMMON_WORDS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_reads_its_bos_then_the_text_and_refuses_what_it_cannot_read() {
        let enc = Encoded { ids: vec![15496, 995], pieces: vec!["Hello".into(), " world".into()] };
        let bos = Some((50256, "<|endoftext|>"));
        let (ids, pieces) = model_input(&enc, bos, 1024, 50257).unwrap();
        assert_eq!(ids, [50256, 15496, 995]);
        assert_eq!(pieces, ["<|endoftext|>", "Hello", " world"]);
        assert_eq!(model_input(&enc, None, 2, 50257).unwrap().0, [15496, 995]);
        assert!(model_input(&Encoded::default(), bos, 1024, 50257).unwrap_err().starts_with("Type some text"));
        let long = model_input(&enc, bos, 2, 50257).unwrap_err();
        assert!(long.contains("2 tokens and the model reads at most 1"), "{long}");
        let many = Encoded { ids: vec![262; 64], pieces: vec![" the".into(); 64] };
        let long = model_input(&many, bos, 1024, 50257).unwrap_err();
        assert!(long.contains("64 tokens and this page reads at most 63"), "{long}");
        assert_eq!(model_input(&many, None, 1024, 50257).unwrap().0.len(), 64);
        assert!(model_input(&enc, None, 8, 1000).unwrap_err().contains("id 15496"));
        assert_eq!(check_ids(&[1, 2], 3), Ok(()));
        assert!(check_ids(&[1, 3], 3).unwrap_err().contains("id 3, but the model has only 3 tokens"));
        let long = model_input(&Encoded { ids: vec![7], pieces: vec!["x".into()] }, None, 8, 3).unwrap_err();
        assert_eq!(long, "The tokenizer gave the id 7, but the model has only 3 tokens.");
        assert!(check_pasted(" \n ", "to index").unwrap_err().contains("Paste a text to index: the box is empty"));
        assert!(check_pasted(&"a".repeat(MAX_PASTED + 1), "to index").unwrap_err().contains("at most 200000"));
        assert_eq!(check_pasted(&"a".repeat(MAX_PASTED), "to index"), Ok(()));
        assert_eq!(show_piece(" the\n"), "·the⏎");
        assert_eq!(show_piece("<|endoftext|>"), "<|endoftext|>");
        assert_eq!(show_piece(&"x".repeat(20)), "x".repeat(13) + "…");
    }

    #[test]
    fn a_big_model_reads_a_long_text_in_shorter_windows_and_fewer_tokens() {
        let moby = Gpt2Config::new(83, 128, 128, 4, 4, false);
        assert_eq!(reading_window(&moby, false), 128);
        let gpt2 = Gpt2Config::new(50257, 1024, 768, 12, 12, false);
        assert_eq!(reading_window(&gpt2, true), 35);
        assert_eq!(reading_window(&Gpt2Config::new(300, 24, 64, 2, 4, false), true), 23);
        assert_eq!(tokens_for(&moby, 200_000_000_000, 1000, 5000), 5000);
        assert_eq!(tokens_for(&gpt2, 200_000_000_000, 1000, 5000), 1177);
        assert_eq!(tokens_for(&gpt2, 1, 1000, 5000), 1000);
    }

    #[test]
    fn a_random_repeat_is_distinct_words_twice_that_fit_the_context() {
        // 200 distinct three-letter words with GPT-2's leading space, and pieces that are not whole words.
        let letter = |i: u32| char::from(b'a' + (i % 26) as u8);
        let pieces: Vec<String> = (0..200u32)
            .map(|i| format!(" {}{}{}", letter(i), letter(i / 26), letter(i / 7)))
            .chain(["<|endoftext|>".to_string(), " The".into(), " a1b".into(), "ab".into()])
            .collect();
        for seed in 0..50 {
            let t = random_repeat(&pieces, 1024, seed).unwrap();
            let t = t.strip_prefix(' ').expect("a BPE vocabulary's text starts with a space");
            let w: Vec<&str> = t.split(' ').collect();
            assert_eq!(w.len(), 2 * MAX_HALF, "{t}");
            assert_eq!(w[..MAX_HALF], w[MAX_HALF..]);
            for (i, a) in w[..MAX_HALF].iter().enumerate() {
                assert!(pieces.contains(&format!(" {a}")), "{a} is not a whole-word token");
                assert!(!w[..i].contains(a), "{a} drawn twice");
            }
        }
        // A short context: bos and two halves fit in it.
        let t = random_repeat(&pieces, 11, 3).unwrap();
        assert_eq!(t.trim_start().split(' ').count(), 10);
        // A word-level vocabulary: no leading space.
        let words: Vec<String> = pieces.iter().map(|p| p.trim_start().to_string()).collect();
        assert!(random_repeat(&words, 1024, 3).unwrap().starts_with(|c: char| c.is_ascii_lowercase()));
        // Pieces that begin longer words are left out of a BPE vocabulary's words.
        let bpe: Vec<String> = [" the", " there", " con", " contract", " cat", " cats", "ing"].map(String::from).into();
        assert_eq!(common_words(&bpe), [" the", " there", " contract", " cat", " cats"].map(|w| &w[1..]));
        // Too few whole words (a character-level vocabulary): nothing to offer.
        let chars: Vec<String> = ('a'..='z').map(String::from).collect();
        assert_eq!(random_repeat(&chars, 1024, 1), None);
        assert_eq!(random_repeat(&pieces, 4, 1), None);
    }
}
