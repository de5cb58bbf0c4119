//! The tokenizer files a Hugging Face reader needs beside a model folder, written from our vocabularies.
//!
//! `config.json` and `model.safetensors` already make a folder a GPT-2 model to `transformers`; the tokenizer is
//! what `AutoTokenizer.from_pretrained(dir)` (and through it TransformerLens) reads. A folder gets:
//! - `tokenizer.json`, Hugging Face `tokenizers`' own format, with exactly our ids: word level for the word models
//!   (`word_tokenizer_json`), one token per character for the Moby-Dick model (`char_tokenizer_json`);
//! - `tokenizer_config.json`, which names the generic fast tokenizer class (so `AutoTokenizer` reads
//!   `tokenizer.json` alone, instead of looking for GPT-2's `vocab.json` + `merges.txt` pair, which our folders do
//!   not have), the special tokens and the context length.
//!
//! `tests/hf_tokenizers.rs` loads every shipped `tokenizer.json` with the `tokenizers` crate (Hugging Face's
//! library) and checks it encodes sample text to the ids the app uses.
use serde_json::{json, Map, Value};

use super::text::CharVocab;
use super::vocab::{Vocab, BOS};

/// A `tokenizer.json` with the same ids as `vocab`, reading text as `Vocab::encode` does: a Lowercase
/// normalizer, the Whitespace pre-tokenizer (words and punctuation apart, so "store," is "store" then ",";
/// `vocab::split_words`), a WordLevel model and a post-processor that puts `<bos>` first. An unknown word is an
/// error there as here: `<unk>` is named but not in the vocabulary. Decoding joins the words with spaces (no
/// decoder), as `Vocab::decode` does.
pub fn word_tokenizer_json(vocab: &Vocab) -> Value {
    let ids: Map<String, Value> = (0..vocab.len() as u32).map(|i| (vocab.word(i).to_string(), json!(i))).collect();
    let bos = json!({ "SpecialToken": { "id": BOS, "type_id": 0 } });
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [{
            "id": 0, "content": BOS, "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": false, "special": true
        }],
        "normalizer": { "type": "Lowercase" },
        "pre_tokenizer": { "type": "Whitespace" },
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [bos, { "Sequence": { "id": "A", "type_id": 0 } }],
            "pair": [bos, { "Sequence": { "id": "A", "type_id": 0 } }, { "Sequence": { "id": "B", "type_id": 1 } }],
            "special_tokens": { BOS: { "id": BOS, "ids": [0], "tokens": [BOS] } }
        },
        "decoder": null,
        "model": { "type": "WordLevel", "vocab": ids, "unk_token": "<unk>" }
    })
}

/// A `tokenizer.json` with one token per character, the ids of `vocab`, and no `<bos>` (the Moby-Dick model reads
/// raw text). `tokenizers` has no character model as such: a BPE model whose vocabulary is the characters and
/// which has no merges cuts text into its characters and stops there. No normalizer and no pre-tokenizer, so
/// spaces and newlines are tokens like any other character; the Fuse decoder joins the characters back without
/// spaces. A character outside the vocabulary has no token (`unk_token` is null), where `CharVocab::encode`
/// refuses the text: the app never hands such text to the model.
pub fn char_tokenizer_json(vocab: &CharVocab) -> Value {
    let ids: Map<String, Value> = vocab.chars().iter().enumerate().map(|(i, c)| (c.to_string(), json!(i))).collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": { "type": "Fuse" },
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": ids, "merges": []
        }
    })
}

/// `tokenizer_config.json` for a folder: the generic fast tokenizer over `tokenizer.json`, the model's context
/// length, and the special tokens. A word model's `<bos>` is also its end and padding token (it has no others);
/// TransformerLens reads these, and would otherwise add a token of its own, past the model's vocabulary.
pub fn tokenizer_config_json(n_positions: usize, bos: Option<&str>) -> Value {
    let mut cfg = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": n_positions,
        "clean_up_tokenization_spaces": false,
        "add_bos_token": bos.is_some(),
    });
    if let Some(b) = bos {
        for key in ["bos_token", "eos_token", "pad_token"] {
            cfg[key] = json!(b);
        }
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_tokenizer_has_the_vocabulary_ids() {
        let v = Vocab::builtin();
        let t = word_tokenizer_json(&v);
        let ids = t["model"]["vocab"].as_object().unwrap();
        for (w, id) in ids {
            assert_eq!(v.id(w), Some(id.as_u64().unwrap() as u32), "{w}");
        }
        assert_eq!(t["model"]["type"], "WordLevel");
        assert_eq!(t["added_tokens"][0]["content"], BOS);
    }

    #[test]
    fn char_tokenizer_has_every_character_once() {
        let v = CharVocab::from_text("ab\n c");
        let t = char_tokenizer_json(&v);
        let ids = t["model"]["vocab"].as_object().unwrap();
        assert_eq!(ids.len(), 5);
        assert_eq!(ids["\n"], 0);
        assert_eq!(ids[" "], 1);
        assert_eq!(ids["c"], 4);
        assert_eq!(t["model"]["merges"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn tokenizer_config_names_special_tokens_only_when_there_are_some() {
        let word = tokenizer_config_json(64, Some(BOS));
        assert_eq!(word["bos_token"], BOS);
        assert_eq!(word["pad_token"], BOS);
        assert_eq!(word["model_max_length"], 64);
        let chars = tokenizer_config_json(128, None);
        assert!(chars.get("bos_token").is_none());
        assert_eq!(chars["add_bos_token"], false);
    }
}
