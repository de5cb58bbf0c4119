//! The shipped induction model, checked from the files the app serves (`public/models/induction/`), on
//! `<bos> + half + half` sequences at the repeat lengths it was trained on (4 to 31 words).
//!
//! Must reach: mean loss on the repeated half <= 10% of the first half's; a layer-1 head with induction
//! score >= 0.7; a layer-0 head with previous-token score >= 0.7 (scores as TransformerLens's head detector,
//! over the query positions that have an expected key).
use glassbox::lens::gpt2::train::evaluate_induction;
use glassbox::lens::gpt2::vocab::Vocab;
use glassbox::lens::{Gpt2Config, Transformer};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/induction");

fn shipped() -> Transformer {
    let cfg =
        std::fs::read_to_string(format!("{DIR}/config.json")).expect("public/models/induction/config.json is shipped");
    let weights = std::fs::read(format!("{DIR}/model.safetensors"))
        .expect("public/models/induction/model.safetensors is shipped");
    Transformer::from_bytes(&cfg, &weights).expect("the shipped model loads")
}

#[test]
fn shipped_files_are_a_gpt2_folder() {
    let cfg = Gpt2Config::from_json(&std::fs::read_to_string(format!("{DIR}/config.json")).unwrap()).unwrap();
    assert_eq!(cfg.model_type, "gpt2");
    assert_eq!(cfg.architectures, vec!["GPT2LMHeadModel".to_string()]);
    assert!(cfg.attn_only);
    assert_eq!((cfg.n_layer, cfg.n_head), (2, 4));
    let vocab = Vocab::from_json(&std::fs::read_to_string(format!("{DIR}/vocab.json")).unwrap()).unwrap();
    assert_eq!(vocab.len(), cfg.vocab_size);
    // The vocabulary is the builtin word list, so the lab's tokenizer and the file agree.
    let builtin = Vocab::builtin();
    assert!((0..vocab.len() as u32).all(|i| vocab.word(i) == builtin.word(i)));
    let weights = std::fs::read(format!("{DIR}/model.safetensors")).unwrap();
    let tensors = candle_core::safetensors::load_buffer(&weights, &candle_core::Device::Cpu).unwrap();
    for (name, shape) in glassbox::lens::gpt2::model::weight_shapes(&cfg) {
        assert_eq!(tensors.get(&name).map(|t| t.dims().to_vec()), Some(shape), "{name}");
    }
}

#[test]
fn shipped_model_forms_induction_and_previous_token_heads() {
    let model = shipped();
    let lengths: Vec<usize> = (4..=31).step_by(3).collect();
    let m = evaluate_induction(&model, &lengths, 12, 777).unwrap();
    let ratio = m.loss_repeat_half / m.loss_first_half;
    let (pl, ph, prev) = m.best(Some(0), |s| s.previous_token);
    let (il, ih, ind) = m.best(Some(1), |s| s.induction);
    eprintln!(
        "first half {:.3} nats, repeated half {:.3} nats ({:.1}%); best previous-token L{pl}H{ph} {prev:.3}; best induction L{il}H{ih} {ind:.3}",
        m.loss_first_half,
        m.loss_repeat_half,
        100.0 * ratio
    );
    assert!(ratio <= 0.10, "repeated-half loss is {:.1}% of the first half's (limit 10%)", 100.0 * ratio);
    assert!(ind >= 0.7, "best layer-1 induction score {ind:.3} < 0.7");
    assert!(prev >= 0.7, "best layer-0 previous-token score {prev:.3} < 0.7");
}
