//! Character-level text: the vocabulary of the Moby-Dick model and the corpus split it is trained and
//! measured on.
//!
//! The vocabulary is every distinct character of the training text, sorted by code point, one id each. It is
//! stored as a GPT-2-style `vocab.json` (`{"a": 57, ...}`), so a folder stays readable by other tools.
use std::collections::{BTreeSet, HashMap};

use crate::lens::{LensError, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct CharVocab {
    chars: Vec<char>,
    ids: HashMap<char, u32>,
}

impl CharVocab {
    /// The distinct characters of `text`, sorted by code point.
    pub fn from_text(text: &str) -> Self {
        let set: BTreeSet<char> = text.chars().collect();
        Self::from_chars(set.into_iter().collect())
    }

    fn from_chars(chars: Vec<char>) -> Self {
        let ids = chars.iter().enumerate().map(|(i, &c)| (c, i as u32)).collect();
        CharVocab { chars, ids }
    }

    pub fn len(&self) -> usize {
        self.chars.len()
    }
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }
    pub fn id(&self, c: char) -> Option<u32> {
        self.ids.get(&c).copied()
    }
    /// The character of an id; `\u{FFFD}` for an id outside the vocabulary.
    pub fn char(&self, id: u32) -> char {
        self.chars.get(id as usize).copied().unwrap_or('\u{FFFD}')
    }
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The characters of `text` the model has never seen, each once, in order of first appearance.
    /// The lab shows them so the student can replace or remove them.
    pub fn unknown_chars(&self, text: &str) -> Vec<char> {
        let mut out = Vec::new();
        for c in text.chars() {
            if self.id(c).is_none() && !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// Ids of `text`, or an `Input` error that lists every unknown character.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let unknown = self.unknown_chars(text);
        if !unknown.is_empty() {
            let list: Vec<String> = unknown.iter().map(|c| format!("{c:?}")).collect();
            return Err(LensError::Input(format!(
                "the model has never seen these characters: {} (replace or remove them)",
                list.join(", ")
            )));
        }
        Ok(text.chars().map(|c| self.ids[&c]).collect())
    }

    /// `text` with unknown characters replaced: straight quotes and apostrophes by the book's curly ones,
    /// tabs by spaces, anything else unknown by `fallback` (or dropped when `fallback` is None or unknown too).
    pub fn replace_unknown(&self, text: &str, fallback: Option<char>) -> String {
        let mut out = String::with_capacity(text.len());
        let mut open_quote = true;
        for c in text.chars() {
            if self.id(c).is_some() {
                out.push(c);
                continue;
            }
            let sub = match c {
                '"' => {
                    let q = if open_quote { '\u{201C}' } else { '\u{201D}' };
                    open_quote = !open_quote;
                    Some(q)
                }
                '\'' | '`' => Some('\u{2019}'),
                '\t' | '\r' => Some(' '),
                '\u{2013}' => Some('-'),
                _ => fallback,
            };
            if let Some(s) = sub.filter(|&s| self.id(s).is_some()) {
                out.push(s);
            }
        }
        out
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter().map(|&i| self.char(i)).collect()
    }

    /// `{char: id}` JSON, the shape of GPT-2's vocab.json.
    pub fn to_json(&self) -> String {
        let entries: Vec<String> = self
            .chars
            .iter()
            .enumerate()
            .map(|(i, c)| format!("  {}: {i}", serde_json::to_string(&c.to_string()).unwrap()))
            .collect();
        format!("{{\n{}\n}}\n", entries.join(",\n"))
    }

    /// Reads `{char: id}` JSON; every key must be one character and the ids exactly 0..n.
    pub fn from_json(text: &str) -> Result<Self> {
        let map: HashMap<String, u32> = serde_json::from_str(text).map_err(|e| LensError::Vocab(e.to_string()))?;
        let mut chars = vec![None; map.len()];
        for (s, &id) in &map {
            let mut it = s.chars();
            let (Some(c), None) = (it.next(), it.next()) else {
                return Err(LensError::Vocab(format!("`{s}` is not a single character")));
            };
            let slot = chars
                .get_mut(id as usize)
                .ok_or_else(|| LensError::Vocab(format!("id {id} of {s:?} is out of range")))?;
            *slot = Some(c);
        }
        let chars: Option<Vec<char>> = chars.into_iter().collect();
        Ok(Self::from_chars(chars.ok_or_else(|| LensError::Vocab("ids are not contiguous".into()))?))
    }
}

/// The corpus cut into blocks of `BLOCK` characters; every `HELD_OUT_EVERY`-th block (starting at block
/// `HELD_OUT_EVERY / 2`) is held out. Interleaved blocks keep both parts alike in style (chapters differ a lot),
/// and whole blocks keep held-out text away from the training windows.
pub const BLOCK: usize = 4096;
pub const HELD_OUT_EVERY: usize = 20;

/// Token ids split into a training stream and held-out blocks.
#[derive(Clone, Debug)]
pub struct Split {
    /// The training blocks, concatenated in order.
    pub train: Vec<u32>,
    /// Each held-out block on its own, so evaluation windows never span two distant passages.
    pub held_out: Vec<Vec<u32>>,
}

impl Split {
    pub fn new(ids: &[u32]) -> Self {
        let mut train = Vec::with_capacity(ids.len());
        let mut held_out = Vec::new();
        for (b, block) in ids.chunks(BLOCK).enumerate() {
            if b % HELD_OUT_EVERY == HELD_OUT_EVERY / 2 {
                held_out.push(block.to_vec());
            } else {
                train.extend_from_slice(block);
            }
        }
        Split { train, held_out }
    }

    pub fn held_out_len(&self) -> usize {
        self.held_out.iter().map(Vec::len).sum()
    }
}

/// The shipped file of held-out passages (`public/models/moby/held_out.txt`) and what separates them there.
pub const HELD_OUT_FILE: &str = "held_out.txt";
pub const HELD_OUT_SEPARATOR: &str = "\n\n\n";

/// Characters as a message names them: each in curly quotes, with the invisible ones escaped
/// (`“é”, “\t”`), as the labs list characters the model has never seen.
pub fn quoted_chars(chars: &[char]) -> String {
    chars.iter().map(|c| format!("“{}”", c.escape_debug())).collect::<Vec<_>>().join(", ")
}

/// The same split on the text itself: (training text, held-out passages).
pub fn split_text(text: &str) -> (String, Vec<String>) {
    let chars: Vec<char> = text.chars().collect();
    let mut train = String::new();
    let mut held = Vec::new();
    for (b, block) in chars.chunks(BLOCK).enumerate() {
        if b % HELD_OUT_EVERY == HELD_OUT_EVERY / 2 {
            held.push(block.iter().collect());
        } else {
            train.extend(block.iter());
        }
    }
    (train, held)
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoted_chars_escape_the_invisible() {
        assert_eq!(super::quoted_chars(&['é', '\t', '"']), "“é”, “\\t”, “\\\"”");
        assert_eq!(super::quoted_chars(&[]), "");
    }

    use super::*;

    #[test]
    fn vocab_round_trips_and_reports_unknown_characters() {
        let v = CharVocab::from_text("Call me Ishmael. “Ahoy!”\n");
        assert_eq!(v.decode(&v.encode("me Ishmael").unwrap()), "me Ishmael");
        let back = CharVocab::from_json(&v.to_json()).unwrap();
        assert_eq!(back, v);
        assert_eq!(v.unknown_chars("Call Zed, Zoe! ~"), vec!['Z', 'd', ',', '~']);
        let err = v.encode("Zed").unwrap_err().to_string();
        assert!(err.contains("'Z'") && err.contains("'d'"), "{err}");
        assert_eq!(v.replace_unknown("\"Ahoy\" 'me'", None), "“Ahoy” me");
        assert_eq!(v.replace_unknown("Zoo", Some(' ')), " oo");
    }

    #[test]
    fn rejects_broken_vocab_files() {
        assert!(CharVocab::from_json("{\"ab\": 0}").is_err());
        assert!(CharVocab::from_json("{\"a\": 0, \"b\": 2}").is_err());
        assert!(CharVocab::from_json("[]").is_err());
    }

    #[test]
    fn split_holds_out_every_twentieth_block() {
        let ids: Vec<u32> = (0..(BLOCK * 45) as u32).collect();
        let s = Split::new(&ids);
        assert_eq!(s.held_out.len(), 2);
        assert_eq!(s.held_out[0][0], (BLOCK * 10) as u32);
        assert_eq!(s.held_out[1][0], (BLOCK * 30) as u32);
        assert_eq!(s.train.len() + s.held_out_len(), ids.len());
        let text = "abcd".repeat(BLOCK * 11 / 4);
        let (train, held) = split_text(&text);
        assert_eq!(held.len(), 1);
        assert_eq!(train.chars().count() + BLOCK, text.chars().count());
    }
}
