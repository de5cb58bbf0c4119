//! The shipped IOI model, checked from the files the app serves (`public/models/ioi/`), on prompts whose
//! templates AND name pairs were both held out from training.
//!
//! Must reach: accuracy (logit(IO) > logit(S) at the last position) >= 95% and a mean logit difference
//! IO − S >= 3, with every number of leading clauses and in both name orders; the chapter's sentence right as
//! typed; a circuit under head patching (a few heads restore far more of the logit difference than the
//! median head). `vocab.json` and `tokenizer.json` must agree, and the held-out templates and name pairs must
//! be disjoint from the training ones.
use std::collections::HashMap;

use glassbox::lens::gpt2::vocab::{Tokenized, Vocab};
use glassbox::lens::methods::ioi::{self, Part};
use glassbox::lens::{Gpt2Config, Transformer};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/ioi");

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{file}")).unwrap_or_else(|e| panic!("public/models/ioi/{file}: {e}"))
}

fn shipped() -> Transformer {
    let weights = std::fs::read(format!("{DIR}/model.safetensors")).expect("public/models/ioi/model.safetensors");
    Transformer::from_bytes(&read("config.json"), &weights).expect("the shipped model loads")
}

#[test]
fn shipped_files_are_a_gpt2_folder() {
    let cfg = Gpt2Config::from_json(&read("config.json")).unwrap();
    assert_eq!(cfg.model_type, "gpt2");
    assert_eq!(cfg.architectures, vec!["GPT2LMHeadModel".to_string()]);
    assert!(cfg.attn_only && cfg.n_embd <= 128);
    let vocab = Vocab::from_json(&read("vocab.json")).unwrap();
    assert_eq!(vocab.len(), cfg.vocab_size);
    // The vocabulary is the task's word list, so prompts built by `ioi` mean the same to the model.
    let builtin = ioi::vocab();
    assert_eq!(builtin.len(), vocab.len());
    assert!((0..vocab.len() as u32).all(|i| vocab.word(i) == builtin.word(i)));
    let bytes = std::fs::read(format!("{DIR}/model.safetensors")).unwrap();
    assert!(bytes.len() <= 2_200_000, "model.safetensors is {} bytes", bytes.len());
    let tensors = candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu).unwrap();
    for (name, shape) in glassbox::lens::gpt2::model::weight_shapes(&cfg) {
        assert_eq!(tensors.get(&name).map(|t| t.dims().to_vec()), Some(shape), "{name}");
    }
}

#[test]
fn vocab_and_tokenizer_agree() {
    let vocab = Vocab::from_json(&read("vocab.json")).unwrap();
    let tok: serde_json::Value = serde_json::from_str(&read("tokenizer.json")).unwrap();
    assert_eq!(tok["model"]["type"], "WordLevel");
    let ids: HashMap<String, u32> = serde_json::from_value(tok["model"]["vocab"].clone()).unwrap();
    assert_eq!(ids.len(), vocab.len(), "the same number of tokens");
    for (w, &id) in &ids {
        assert_eq!(vocab.id(w), Some(id), "`{w}`");
    }
    // `<bos>` is the special token the post-processor puts first, as `Vocab::encode` does.
    assert_eq!(tok["added_tokens"][0]["content"], "<bos>");
    assert_eq!(tok["added_tokens"][0]["id"], 0);
    assert_eq!(tok["post_processor"]["special_tokens"]["<bos>"]["ids"][0], 0);
    // The shipped file is what the code writes today.
    assert_eq!(tok, glassbox::lens::gpt2::hf::word_tokenizer_json(&vocab));
}

#[test]
fn held_out_templates_and_name_pairs_are_disjoint_from_training() {
    let (train_t, held_t) = (ioi::templates(Part::Train), ioi::templates(Part::HeldOut));
    assert!(!held_t.is_empty() && held_t.iter().all(|t| !train_t.contains(t)));
    assert_eq!(train_t.len() + held_t.len(), ioi::TEMPLATE_COUNT);
    let (train_p, held_p) = (ioi::name_pairs(Part::Train), ioi::name_pairs(Part::HeldOut));
    assert!(!held_p.is_empty() && held_p.iter().all(|p| !train_p.contains(p)));
    // A held-out template's introduction is in no training template (not even as the same text).
    let intro = |t: usize| ioi::INTROS[t / ioi::ACTIONS.len()];
    for &h in &held_t {
        assert!(train_t.iter().all(|&t| intro(t) != intro(h) && ioi::template(t) != ioi::template(h)));
    }
    // Training stories never contain a held-out pair or a held-out template's prompt.
    let vocab = ioi::vocab();
    let held_prompts = ioi::prompts(&vocab, Part::HeldOut, Part::HeldOut, 300, 5);
    let mut rng = glassbox::lens::rng::Rng::new(1);
    let names: HashMap<u32, usize> = ioi::NAMES.iter().enumerate().map(|(i, n)| (vocab.id(n).unwrap(), i)).collect();
    for _ in 0..2000 {
        let s = ioi::training_story(&vocab, &mut rng, ioi::Mix { p_ioi: 0.6, p_three: 0.3, p_middle: 0.5 });
        let mut ns: Vec<usize> = s.tokens.iter().filter_map(|t| names.get(t).copied()).collect();
        ns.sort();
        ns.dedup();
        if let [a, b] = ns[..] {
            assert_eq!(ioi::pair_part(a, b), Part::Train);
        }
        if let Some(a) = s.answer {
            assert!(held_prompts.iter().all(|p| p.tokens[..] != s.tokens[..a]));
        }
    }
}

#[test]
fn shipped_model_solves_held_out_ioi() {
    let model = shipped();
    let vocab = ioi::vocab();
    let held = ioi::prompts(&vocab, Part::HeldOut, Part::HeldOut, 600, 31337);
    let m = ioi::evaluate(&model, &held).unwrap();
    eprintln!(
        "held-out: {} prompts, accuracy {:.3}, mean logit difference {:.2}, IO top-1 {:.3}",
        m.prompts, m.accuracy, m.logit_diff, m.top1
    );
    assert!(m.accuracy >= 0.95, "held-out accuracy {:.3} < 0.95", m.accuracy);
    assert!(m.logit_diff >= 3.0, "held-out mean logit difference {:.2} < 3", m.logit_diff);
    // Both name orders, and every number of leading clauses (the names move, the answer must not).
    for order in ioi::Order::ALL {
        let ps: Vec<_> = held.iter().filter(|p| p.fill.order == order).cloned().collect();
        let mo = ioi::evaluate(&model, &ps).unwrap();
        assert!(mo.accuracy >= 0.9 && mo.logit_diff >= 2.0, "{}: {mo:?}", order.name());
    }
    for k in 0..=ioi::MAX_PREFIX {
        let ps = ioi::prompts_with(&vocab, Part::HeldOut, Part::HeldOut, 150, 4000 + k as u64, Some(k), 0);
        let mk = ioi::evaluate(&model, &ps).unwrap();
        eprintln!("{k} leading clauses: accuracy {:.3}, logit difference {:.2}", mk.accuracy, mk.logit_diff);
        assert!(mk.accuracy >= 0.9 && mk.logit_diff >= 2.0, "{k} leading clauses: {mk:?}");
    }
    // Clauses between the introduction and the ending move the subject's second mention and the end away from
    // the introduction.
    for k in 1..=ioi::MAX_MIDDLE {
        let ps = ioi::prompts_with(&vocab, Part::HeldOut, Part::HeldOut, 150, 5000 + k as u64, None, k);
        let mk = ioi::evaluate(&model, &ps).unwrap();
        eprintln!("{k} middle clauses: accuracy {:.3}, logit difference {:.2}", mk.accuracy, mk.logit_diff);
        assert!(mk.accuracy >= 0.9 && mk.logit_diff >= 2.0, "{k} middle clauses: {mk:?}");
    }
}

#[test]
fn shipped_model_answers_the_chapter_sentence() {
    let model = shipped();
    let vocab = Vocab::from_json(&read("vocab.json")).unwrap();
    let Tokenized::Ok(tokens) = vocab.encode(ioi::CHAPTER_PROMPT) else { panic!("the chapter's sentence is readable") };
    let logits = model.logits(&tokens).unwrap();
    let last: Vec<f32> = logits.get(0).unwrap().get(tokens.len() - 1).unwrap().to_vec1().unwrap();
    let (mary, john) = (vocab.id("mary").unwrap() as usize, vocab.id("john").unwrap() as usize);
    eprintln!("{}: logit(mary) − logit(john) = {:.2}", ioi::CHAPTER_PROMPT, last[mary] - last[john]);
    assert!(last[mary] - last[john] >= 3.0);
}

#[test]
fn head_patching_finds_a_few_heads_that_matter() {
    let model = shipped();
    let vocab = ioi::vocab();
    let held = ioi::prompts(&vocab, Part::HeldOut, Part::HeldOut, 40, 2718);
    let grid = ioi::mean_head_patching(&model, &vocab, &held, 5).unwrap();
    let ranked = ioi::ranked_heads(&grid);
    let shares: Vec<String> = ranked.iter().map(|(l, h, v)| format!("L{l}H{h} {v:.2}")).collect();
    eprintln!("head patching (denoising, ABC): {}", shares.join(", "));
    // A circuit, not a smear: the top head alone restores a large share, far more than the median head, and
    // the top three restore more than twice what all the others do together.
    let (top, median) = (ranked[0].2, ranked[ranked.len() / 2].2);
    assert!(top >= 0.4, "the top head restores only {top:.2}");
    assert!(top >= 5.0 * median.abs().max(0.02), "top {top:.2} against median {median:.2}");
    let top3: f32 = ranked[..3].iter().map(|r| r.2).sum();
    let rest: f32 = ranked[3..].iter().map(|r| r.2.max(0.0)).sum();
    assert!(top3 >= 2.0 * rest, "the top three heads restore {top3:.2}, the others {rest:.2}");
}
