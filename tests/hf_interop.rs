//! Every shipped transformer folder is read by Hugging Face's own `tokenizers` library (the Rust crate the
//! Python package wraps) with exactly the ids the app uses, and its tokenizer and SAE configs say what
//! `AutoTokenizer` and SAELens need. No Python here: `tests/hf_tokenizer_check.py` and the README's commands
//! run the same checks through `transformers` for those who have it.
// Native only: the `tokenizers` crate is a native dev-dependency (it reads files; the app never loads it).
#![cfg(not(target_arch = "wasm32"))]
use std::path::Path;

use glassbox::lens::gpt2::text::CharVocab;
use glassbox::lens::gpt2::vocab::{Tokenized, Vocab};
use glassbox::lens::methods::sae::LmSaeConfig;
use glassbox::lens::Gpt2Config;
use tokenizers::Tokenizer;

const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models");
const WORD_MODELS: [&str; 3] = ["induction", "ioi", "glassbox"];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tokenizer(dir: &Path) -> Tokenizer {
    Tokenizer::from_file(dir.join("tokenizer.json")).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn config(dir: &Path) -> Gpt2Config {
    Gpt2Config::from_json(&read(&dir.join("config.json"))).unwrap()
}

/// Texts a student might type into a word model's lab: the chapter's IOI sentence, capitals, punctuation glued
/// to words, extra spaces and a newline, plus one made of the folder's own words.
fn word_samples(vocab: &Vocab) -> Vec<String> {
    let words: Vec<&str> = (1..vocab.len() as u32).map(|i| vocab.word(i)).collect();
    let own = words.iter().step_by(7).take(24).copied().collect::<Vec<_>>().join(" ");
    let capitalised = words.iter().take(6).map(|w| w.to_uppercase()).collect::<Vec<_>>().join("  ");
    vec![
        own,
        capitalised,
        "When John and Mary went to the store, John gave a bottle to".into(),
        "the cat sat on the mat.\nthe dog ran to the park".into(),
        String::new(),
    ]
}

#[test]
fn word_model_tokenizers_give_the_apps_ids() {
    for name in WORD_MODELS {
        let dir = Path::new(MODELS).join(name);
        let vocab = Vocab::from_json(&read(&dir.join("vocab.json"))).unwrap();
        let tok = tokenizer(&dir);
        assert_eq!(tok.get_vocab_size(true), config(&dir).vocab_size, "{name}: tokenizer and model vocabulary sizes");
        // Every word of the vocabulary is one token with its own id.
        for id in 1..vocab.len() as u32 {
            let enc = tok.encode(vocab.word(id), false).unwrap();
            assert_eq!(enc.get_ids(), [id], "{name}: `{}`", vocab.word(id));
        }
        let mut compared = 0;
        for text in word_samples(&vocab) {
            // The app refuses text with words it does not know; Hugging Face then has no id either (its
            // `<unk>` is not in the vocabulary). Compare where the app reads the text.
            let Tokenized::Ok(ours) = vocab.encode(&text) else { continue };
            let theirs = tok.encode(text.as_str(), true).unwrap();
            assert_eq!(theirs.get_ids(), ours.as_slice(), "{name}: {text:?}");
            assert_eq!(tok.decode(&ours, true).unwrap(), vocab.decode(&ours), "{name}: decoding {text:?}");
            compared += 1;
        }
        assert!(compared >= 2, "{name}: only {compared} sample texts were in the vocabulary");
    }
}

#[test]
fn the_character_tokenizer_reads_the_book_as_the_app_does() {
    let dir = Path::new(MODELS).join("moby");
    let vocab = CharVocab::from_json(&read(&dir.join("vocab.json"))).unwrap();
    let tok = tokenizer(&dir);
    assert_eq!(tok.get_vocab_size(true), config(&dir).vocab_size);
    // The held-out text the labs read, in its first 4,000 characters: spaces, newlines and punctuation included.
    let text: String = read(&dir.join("held_out.txt")).chars().take(4000).collect();
    let ours = vocab.encode(&text).unwrap();
    let theirs = tok.encode(text.as_str(), false).unwrap();
    assert_eq!(theirs.get_ids(), ours.as_slice());
    assert_eq!(tok.decode(&ours, false).unwrap(), text, "decoding gives the text back");
    for (i, c) in vocab.chars().iter().enumerate() {
        assert_eq!(tok.encode(c.to_string().as_str(), false).unwrap().get_ids(), [i as u32], "{c:?}");
    }
}

#[test]
fn tokenizer_configs_name_the_fast_tokenizer_and_the_context() {
    for name in WORD_MODELS.into_iter().chain(["moby"]) {
        let dir = Path::new(MODELS).join(name);
        let cfg = json(&dir.join("tokenizer_config.json"));
        assert_eq!(cfg["tokenizer_class"], "PreTrainedTokenizerFast", "{name}");
        assert_eq!(cfg["model_max_length"], config(&dir).n_positions, "{name}");
        // A word model's <bos> is id 0 in both files; the character model has none.
        let bos = config(&dir).bos_token_id;
        match bos {
            Some(id) => {
                assert_eq!(cfg["bos_token"], "<bos>", "{name}");
                assert_eq!(tokenizer(&dir).token_to_id("<bos>"), Some(id), "{name}");
            }
            None => assert!(cfg.get("bos_token").is_none(), "{name}"),
        }
    }
}

#[test]
fn the_sae_folder_is_saelens_layout() {
    let dir = Path::new(MODELS).join("moby/sae");
    let ours: LmSaeConfig = serde_json::from_str(&read(&dir.join("sae.json"))).unwrap();
    let cfg = json(&dir.join("cfg.json"));
    assert_eq!(cfg, ours.saelens_cfg("moby", config(&Path::new(MODELS).join("moby")).n_positions), "cfg.json is fresh");
    assert_eq!(cfg["hook_name"], "blocks.2.hook_resid_post");
    assert_eq!(cfg["hook_layer"], 2);
    assert_eq!(cfg["d_in"], 128);
    assert_eq!(cfg["metadata"]["hook_name"], cfg["hook_name"]);
    // The weights under SAELens's file name and tensor names and shapes.
    let bytes = std::fs::read(dir.join("sae_weights.safetensors")).unwrap();
    let tensors = candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu).unwrap();
    let (d_in, d_sae) = (ours.d_in, ours.d_sae);
    for (name, shape) in
        [("W_enc", vec![d_in, d_sae]), ("b_enc", vec![d_sae]), ("W_dec", vec![d_sae, d_in]), ("b_dec", vec![d_in])]
    {
        assert_eq!(tensors[name].dims(), shape.as_slice(), "{name}");
    }
}
