//! An opened model's own tokenizer, and the messages of the Web Worker that runs it.
//!
//! Text becomes ids by the model's tokenizer files exactly as Hugging Face's `tokenizers` library reads them
//! (byte-level BPE for GPT-2): we do not write a BPE of our own, because a tokenizer that differs by one merge
//! feeds the model ids it never saw. That library is 0.73 MB of wasm, more than half the app, so the page does
//! not link it: a worker (`src/bin/tokenizer_worker.rs`) does, and the page sends it `TokRequest`s.
//!
//! Everything here but `Tokenizer` is plain data with serde, always compiled; `Tokenizer` and `TokState` need
//! the `tokenizer` feature (the app is built without it). Both are tested natively and in Chromium.
use serde::{Deserialize, Serialize};

/// The tokenizer files as text, by the names the page found them under (for messages).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TokenizerSource {
    /// A `tokenizer.json`: the whole pipeline (normaliser, pre-tokeniser, model, decoder) in one file.
    Json { file: String, text: String },
    /// GPT-2's pair: `vocab.json` (`{token: id}`) and `merges.txt` (one merge per line, after a `#version` line).
    VocabMerges { vocab_file: String, vocab: String, merges_file: String, merges: String },
}

impl TokenizerSource {
    /// The same files with `texts` as their texts, in the order `files` names them. Refused, naming the files,
    /// unless there is exactly one text per file.
    pub fn with_texts(self, texts: Vec<String>) -> Result<Self, String> {
        let want = self.files().len();
        if texts.len() != want {
            return Err(format!("{} came with {} texts for {want} files", self.files().join(" and "), texts.len()));
        }
        let mut texts = texts.into_iter();
        let mut next = || texts.next().unwrap_or_default();
        Ok(match self {
            TokenizerSource::Json { file, .. } => TokenizerSource::Json { file, text: next() },
            TokenizerSource::VocabMerges { vocab_file, merges_file, .. } => {
                TokenizerSource::VocabMerges { vocab_file, vocab: next(), merges_file, merges: next() }
            }
        })
    }

    /// The files' names: `tokenizer.json`'s, or `vocab.json`'s then `merges.txt`'s.
    pub fn files(&self) -> Vec<&str> {
        match self {
            TokenizerSource::Json { file, .. } => vec![file],
            TokenizerSource::VocabMerges { vocab_file, merges_file, .. } => vec![vocab_file, merges_file],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum TokRequest {
    /// Build the tokenizer (replacing any previous one).
    Load { source: TokenizerSource },
    /// `Load`, with the files attached to the message instead of their texts in it (`source`'s texts are
    /// empty): the worker reads them itself (`crate::serve`), in the order `TokenizerSource::files` names them.
    /// Why: GPT-2's vocab.json and merges.txt are 1.5 MB of text, and reading, escaping and posting them from
    /// the page was one 45 ms task on its thread.
    LoadAttached { source: TokenizerSource },
    /// Encode `text` with the loaded tokenizer.
    Encode { text: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum TokReply {
    /// The tokenizer is built; it knows `tokens` tokens (its highest id plus one), and `pieces[id]` is how
    /// each reads (so the page shows any id the model predicts without asking again).
    Loaded {
        tokens: usize,
        pieces: Vec<String>,
    },
    Encoded(Encoded),
    Error {
        message: String,
    },
}

/// Text as the model reads it: one entry per token.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Encoded {
    pub ids: Vec<u32>,
    /// Each token as a student reads it (GPT-2's `Ġthe` shown as ` the`). A token that is only part of a
    /// character's UTF-8 bytes shows the bytes it holds, as `<e2 80>`.
    pub pieces: Vec<String>,
}

/// The longest text the worker encodes: far beyond any model's context here, and it keeps one message small.
pub const MAX_TEXT_BYTES: usize = 100_000;

#[cfg(feature = "tokenizer")]
pub use hf::{TokState, Tokenizer};

#[cfg(feature = "tokenizer")]
mod hf {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    use tokenizers::decoders::byte_level::ByteLevel;
    use tokenizers::models::bpe::{Vocab, BPE};

    use super::{Encoded, TokReply, TokRequest, TokenizerSource, MAX_TEXT_BYTES};

    /// A Hugging Face tokenizer, built from files a student opened.
    pub struct Tokenizer {
        inner: tokenizers::Tokenizer,
        tokens: usize,
    }

    impl Tokenizer {
        /// Builds the tokenizer; every refusal names the file and says what is wrong with it.
        pub fn from_source(source: &TokenizerSource) -> Result<Tokenizer, String> {
            let inner = match source {
                TokenizerSource::Json { file, text } => {
                    // Checked as JSON first: `tokenizers` 0.23 panics on a document cut short inside its decoder
                    // (found by tests/fuzz.rs), and a panic in the worker would end it.
                    serde_json::from_str::<serde::de::IgnoredAny>(text)
                        .map_err(|e| format!("{file} is not JSON ({e}): the file is damaged or not a tokenizer"))?;
                    tokenizers::Tokenizer::from_bytes(text.as_bytes())
                        .map_err(|e| format!("{file} is not a tokenizer the `tokenizers` library can read ({e})"))?
                }
                TokenizerSource::VocabMerges { vocab_file, vocab, merges_file, merges } => {
                    gpt2_pair(vocab_file, vocab, merges_file, merges)?
                }
            };
            let tokens = inner.get_vocab(true).values().max().map_or(0, |&m| m as usize + 1);
            if tokens == 0 {
                return Err("the tokenizer defines no tokens".into());
            }
            Ok(Tokenizer { inner, tokens })
        }

        /// How many ids it can give: its highest id plus one.
        pub fn tokens(&self) -> usize {
            self.tokens
        }

        /// `text` as ids and readable pieces. No special tokens are added: the labs add the model's own.
        pub fn encode(&self, text: &str) -> Result<Encoded, String> {
            if text.len() > MAX_TEXT_BYTES {
                return Err(format!(
                    "the text is {} KB; at most {} KB is encoded at once",
                    text.len() / 1000,
                    MAX_TEXT_BYTES / 1000
                ));
            }
            let enc = self.inner.encode(text, false).map_err(|e| self.why_not(text, &e.to_string()))?;
            let ids = enc.get_ids().to_vec();
            let pieces = ids.iter().map(|&id| self.piece(id)).collect();
            Ok(Encoded { ids, pieces })
        }

        /// Why `text` cannot be encoded, in words: a word-level tokenizer without an unknown token refuses any
        /// word it does not know, so name the first such word.
        fn why_not(&self, text: &str, error: &str) -> String {
            let unknown = text.split_whitespace().find(|w| self.inner.encode(*w, false).is_err());
            match unknown {
                Some(w) => format!(
                    "“{w}” is not in this tokenizer's vocabulary, and it has no token for unknown words: use words it knows"
                ),
                None => format!("the tokenizer could not encode this ({error})"),
            }
        }

        /// Every id's piece, in id order (`<id>` for an id the tokenizer skips).
        pub fn pieces(&self) -> Vec<String> {
            (0..self.tokens as u32).map(|id| self.piece(id)).collect()
        }

        /// One token as text: decoded alone, or its raw bytes when they are not whole characters.
        pub fn piece(&self, id: u32) -> String {
            match self.inner.decode(&[id], false) {
                Ok(s) if !s.contains('\u{FFFD}') => s,
                _ => match self.inner.id_to_token(id) {
                    // Byte-level tokens map each byte to one printable character; turn them back into bytes.
                    Some(tok) => {
                        let bytes = byte_level_bytes(&tok);
                        match bytes {
                            Some(b) => {
                                let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
                                format!("<{}>", hex.join(" "))
                            }
                            None => tok,
                        }
                    }
                    None => format!("<{id}>"),
                },
            }
        }
    }

    /// The bytes a byte-level token stands for (GPT-2 maps each byte to a printable character), or `None` if
    /// the token has characters outside that map.
    fn byte_level_bytes(token: &str) -> Option<Vec<u8>> {
        static TO_BYTE: OnceLock<HashMap<char, u8>> = OnceLock::new();
        let to_byte = TO_BYTE.get_or_init(|| {
            // GPT-2's map: printable Latin-1 bytes stand for themselves, the others in order from U+0100 on.
            let mut shifted = 0u32;
            (0..=255u8)
                .map(|b| {
                    let printable =
                        (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
                    if printable {
                        (char::from(b), b)
                    } else {
                        shifted += 1;
                        (char::from_u32(255 + shifted).unwrap_or('\u{FFFD}'), b)
                    }
                })
                .collect()
        });
        token.chars().map(|c| to_byte.get(&c).copied()).collect()
    }

    /// GPT-2's tokenizer from its two files: byte-level BPE, with GPT-2's pre-tokeniser and decoder.
    fn gpt2_pair(
        vocab_file: &str,
        vocab: &str,
        merges_file: &str,
        merges: &str,
    ) -> Result<tokenizers::Tokenizer, String> {
        let map: HashMap<String, u32> = serde_json::from_str(vocab)
            .map_err(|e| format!("{vocab_file} is not a {{token: id}} map ({e}): the file is damaged"))?;
        let vocab: Vocab = map.into_iter().collect();
        // `tokenizers` reads merges only from a path, and the page has no paths: the format is one pair per line.
        let mut pairs = Vec::new();
        for (i, line) in merges.lines().enumerate() {
            if (i == 0 && line.starts_with("#version")) || line.trim().is_empty() {
                continue;
            }
            let (a, b) = line.split_once(' ').ok_or_else(|| {
                format!("{merges_file}, line {}: a merge is two tokens with a space between, not {line:?}", i + 1)
            })?;
            pairs.push((a.to_string(), b.to_string()));
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, pairs)
            .build()
            .map_err(|e| format!("{vocab_file} and {merges_file} do not fit together ({e})"))?;
        let mut t = tokenizers::Tokenizer::new(bpe);
        // GPT-2: no prefix space, offsets trimmed, GPT-2's splitting regex.
        let byte_level = ByteLevel::new(false, true, true);
        t.with_pre_tokenizer(Some(byte_level));
        t.with_decoder(Some(byte_level));
        t.with_post_processor(Some(byte_level));
        Ok(t)
    }

    /// What the worker keeps: the tokenizer, once loaded.
    #[derive(Default)]
    pub struct TokState {
        tokenizer: Option<Tokenizer>,
    }

    impl TokState {
        /// Answers one request (the worker's whole job, so it is plain Rust, tested natively).
        pub fn handle(&mut self, request: TokRequest) -> TokReply {
            self.handle_attached(request, Vec::new())
        }

        /// Answers one request with the texts of the files attached to it (`TokRequest::LoadAttached`).
        pub fn handle_attached(&mut self, request: TokRequest, attached: Vec<String>) -> TokReply {
            let source = match request {
                TokRequest::Load { source } => source,
                TokRequest::LoadAttached { source } => match source.with_texts(attached) {
                    Ok(source) => source,
                    Err(message) => return TokReply::Error { message },
                },
                TokRequest::Encode { text } => {
                    return match &self.tokenizer {
                        Some(t) => {
                            t.encode(&text).map_or_else(|message| TokReply::Error { message }, TokReply::Encoded)
                        }
                        None => TokReply::Error { message: "no tokenizer is loaded".into() },
                    }
                }
            };
            match Tokenizer::from_source(&source) {
                Ok(t) => {
                    let (tokens, pieces) = (t.tokens(), t.pieces());
                    self.tokenizer = Some(t);
                    TokReply::Loaded { tokens, pieces }
                }
                Err(message) => TokReply::Error { message },
            }
        }
    }
}
