//! A word-level vocabulary: the induction model reads short English words, so a student can type
//! "the cat sat on the mat" instead of token ids. Stored as a GPT-2-style `vocab.json` ({token: id}).
use std::collections::HashMap;

use crate::lens::{LensError, Result};

pub const BOS: &str = "<bos>";

/// The induction model's words, id = index + 1 (id 0 is `<bos>`). Chosen to be short, common and distinct.
pub const WORDS: &[&str] = &[
    "the", "cat", "sat", "on", "mat", "dog", "ran", "to", "park", "a", "red", "ball", "big", "small", "tree", "house",
    "sun", "moon", "star", "sky", "blue", "green", "fish", "bird", "frog", "bear", "fox", "owl", "cow", "pig", "hen",
    "bee", "ant", "bat", "rat", "elk", "yak", "ape", "cup", "pot", "pan", "jar", "box", "bag", "hat", "cap", "coat",
    "shoe", "sock", "ring", "key", "door", "wall", "roof", "road", "hill", "lake", "sea", "rain", "snow", "wind",
    "fire", "ice", "rock", "sand", "leaf", "root", "seed", "rose", "corn", "rice", "bread", "milk", "egg", "cake",
    "pie", "jam", "tea", "salt", "soup", "apple", "pear", "plum", "lime", "kiwi", "fig", "date", "nut", "bean", "pea",
    "king", "queen", "boy", "girl", "man", "woman", "baby", "aunt", "uncle", "friend", "doctor", "cook", "pilot",
    "judge", "nurse", "chef", "poet", "clown", "red", "gold", "pink", "gray", "black", "white", "brown", "old", "new",
    "hot", "cold", "wet", "dry", "fast", "slow", "loud", "quiet", "soft", "hard", "dark", "light", "tall", "short",
    "long", "wide", "thin", "fat", "rich", "poor", "happy", "sad", "angry", "calm", "brave", "shy", "kind", "wild",
    "tame", "clean", "dirty", "empty", "full", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "run", "walk", "jump", "swim", "fly", "sing", "read", "write", "draw", "paint", "cook", "eat", "drink",
    "sleep", "wake", "sit", "stand", "fall", "climb", "dig", "push", "pull", "open", "close", "give", "take", "make",
    "break", "find", "lose", "win", "play", "see", "hear", "feel", "smell", "think", "know", "want", "need", "like",
    "love", "hate", "hope", "wish", "ask", "tell", "say", "in", "at", "by", "for", "from", "with", "under", "over",
    "near", "far", "up", "down", "into", "out", "off", "past", "and", "or", "but", "so", "if", "then", "when", "while",
    "is", "was", "are", "were", "be", "has", "had", "did", "not", "no", "yes", "all", "some", "many", "few", "more",
    "most", "each", "every", "this", "that", "these", "those", "here", "there", "now", "soon", "today", "night", "day",
    "week", "year", "time", "home", "town", "city", "farm", "shop", "school", "road", "ship", "boat", "car", "bus",
    "train", "bike", "plane", "map", "book", "pen", "desk", "chair", "bed", "lamp", "clock", "phone", "song", "game",
    "toy", "gift", "coin", "card", "note", "word", "name", "story", "dream", "idea", "plan", "rule", "team", "club",
    "river", "ocean", "island", "forest", "desert", "valley", "cave", "bridge", "tower", "castle", "garden", "window",
    "mirror", "candle", "basket", "ladder",
];

/// The pieces of `text` as the `Whitespace` pre-tokenizer of Hugging Face `tokenizers` cuts them (its pattern
/// `\w+|[^\w\s]+`): runs of letters, digits and `_`, and runs of other characters that are not spaces. So
/// "the store, john" is "the", "store", ",", "john", and a model folder's `tokenizer.json` with that
/// pre-tokenizer reads typed text as `Vocab::encode` does.
pub fn split_words(text: &str) -> Vec<&str> {
    let kind = |c: char| {
        if c.is_whitespace() {
            0
        } else if c.is_alphanumeric() || c == '_' {
            1
        } else {
            2
        }
    };
    let mut out = Vec::new();
    let mut start: Option<(usize, u8)> = None;
    for (i, c) in text.char_indices() {
        let k = kind(c);
        match start {
            Some((_, sk)) if sk == k => {}
            _ => {
                if let Some((s, _)) = start.take() {
                    out.push(&text[s..i]);
                }
                if k != 0 {
                    start = Some((i, k));
                }
            }
        }
    }
    if let Some((s, _)) = start {
        out.push(&text[s..]);
    }
    out
}

#[derive(Clone, Debug)]
pub struct Vocab {
    to_id: HashMap<String, u32>,
    to_word: Vec<String>,
}

/// A tokenised sequence, or the words that could not be tokenised.
#[derive(Clone, Debug, PartialEq)]
pub enum Tokenized {
    Ok(Vec<u32>),
    Unknown(Vec<String>),
}

impl Vocab {
    /// The shipped word list with duplicates dropped (first occurrence wins), `<bos>` as id 0.
    pub fn builtin() -> Self {
        let mut words: Vec<String> = vec![BOS.to_string()];
        for w in WORDS {
            if !words.iter().any(|x| x == w) {
                words.push(w.to_string());
            }
        }
        Self::from_words(words)
    }

    fn from_words(to_word: Vec<String>) -> Self {
        let to_id = to_word.iter().enumerate().map(|(i, w)| (w.clone(), i as u32)).collect();
        Vocab { to_id, to_word }
    }

    pub fn len(&self) -> usize {
        self.to_word.len()
    }
    pub fn is_empty(&self) -> bool {
        self.to_word.is_empty()
    }
    pub fn word(&self, id: u32) -> &str {
        self.to_word.get(id as usize).map(String::as_str).unwrap_or("<?>")
    }
    pub fn id(&self, word: &str) -> Option<u32> {
        self.to_id.get(word).copied()
    }

    /// `{token: id}` JSON, the shape of GPT-2's vocab.json.
    pub fn to_json(&self) -> String {
        let entries: Vec<String> = self
            .to_word
            .iter()
            .enumerate()
            .map(|(i, w)| format!("  {}: {i}", serde_json::to_string(w).unwrap()))
            .collect();
        format!("{{\n{}\n}}\n", entries.join(",\n"))
    }

    /// Reads `{token: id}` JSON; ids must be exactly 0..n.
    pub fn from_json(text: &str) -> Result<Self> {
        let map: HashMap<String, u32> = serde_json::from_str(text).map_err(|e| LensError::Vocab(e.to_string()))?;
        let mut to_word = vec![String::new(); map.len()];
        for (w, &id) in &map {
            let slot = to_word
                .get_mut(id as usize)
                .ok_or_else(|| LensError::Vocab(format!("id {id} of `{w}` is out of range")))?;
            *slot = w.clone();
        }
        if to_word.iter().any(String::is_empty) {
            return Err(LensError::Vocab("ids are not contiguous".into()));
        }
        Ok(Self::from_words(to_word))
    }

    /// Splits into words and punctuation (`split_words`), lower-cases, and prepends `<bos>`. Unknown words are
    /// all reported at once.
    pub fn encode(&self, text: &str) -> Tokenized {
        let mut ids = vec![0u32];
        let mut unknown = Vec::new();
        for w in split_words(text) {
            let lw = w.to_lowercase();
            match self.id(&lw) {
                Some(id) if id != 0 => ids.push(id),
                _ => {
                    if !unknown.contains(&w.to_string()) {
                        unknown.push(w.to_string());
                    }
                }
            }
        }
        if unknown.is_empty() {
            Tokenized::Ok(ids)
        } else {
            Tokenized::Unknown(unknown)
        }
    }

    /// The words of a sequence without the leading `<bos>`, joined by spaces.
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter().filter(|&&i| i != 0).map(|&i| self.word(i)).collect::<Vec<_>>().join(" ")
    }

    /// Known words that start like `prefix`, for a helpful "did you mean" in error messages.
    pub fn suggestions(&self, prefix: &str, n: usize) -> Vec<&str> {
        let p: String = prefix.to_lowercase().chars().take(2).collect();
        self.to_word.iter().skip(1).filter(|w| !p.is_empty() && w.starts_with(&p)).take(n).map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_is_unique_and_round_trips() {
        let v = Vocab::builtin();
        assert!(v.len() > 250, "{}", v.len());
        assert_eq!(v.word(0), BOS);
        let back = Vocab::from_json(&v.to_json()).unwrap();
        assert_eq!(back.len(), v.len());
        for i in 0..v.len() as u32 {
            assert_eq!(back.word(i), v.word(i));
        }
    }

    #[test]
    fn encodes_words_and_reports_unknown_ones() {
        let v = Vocab::builtin();
        let Tokenized::Ok(ids) = v.encode("  The cat\nsat ") else { panic!() };
        assert_eq!(ids.len(), 4);
        assert_eq!(ids[0], 0);
        assert_eq!(v.decode(&ids), "the cat sat");
        // `<bos>` cannot be typed: its brackets are punctuation, and no word of the list.
        let unknown = ["zzzqx", "<", "bos", ">"].map(String::from).to_vec();
        assert_eq!(v.encode("the zzzqx cat <bos> zzzqx"), Tokenized::Unknown(unknown));
        assert_eq!(v.encode(""), Tokenized::Ok(vec![0]));
    }

    #[test]
    fn splits_words_and_punctuation_as_the_whitespace_pre_tokenizer_does() {
        assert_eq!(
            split_words("When John and Mary went to the store, John gave a bottle to"),
            ["When", "John", "and", "Mary", "went", "to", "the", "store", ",", "John", "gave", "a", "bottle", "to"]
        );
        assert_eq!(
            split_words("  it's 10:30...  ok_2 é!\n"),
            ["it", "'", "s", "10", ":", "30", "...", "ok_2", "é", "!"]
        );
        assert_eq!(split_words("a , b ."), ["a", ",", "b", "."]);
        assert!(split_words(" \t\n").is_empty());
    }

    #[test]
    fn rejects_broken_vocab_files() {
        assert!(Vocab::from_json("[1,2]").is_err());
        assert!(Vocab::from_json("{\"a\": 0, \"b\": 2}").is_err());
    }
}
