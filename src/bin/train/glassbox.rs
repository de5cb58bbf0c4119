//! `train -- glassbox`: writes the hand-built glassbox model (`lens::methods::glassbox`) to
//! `public/models/glassbox/`. Nothing is trained: the weights are set in code. The folder is a Hugging Face GPT-2
//! folder like the trained ones: `config.json`, `model.safetensors` (Hugging Face names), `vocab.json`
//! (`{word: id}`), `tokenizer.json` (Hugging Face `tokenizers`, same ids) and `training.json`, which says the
//! model is hand-built, gives each head's role and the figures `tests/glassbox.rs` measures.
use std::collections::BTreeMap;
use std::path::Path;

use glassbox::lens::methods::glassbox::{self as hand_built, ROLES};

pub fn write_glassbox_model(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = hand_built::config();
    let vocab = hand_built::vocab();
    let model = hand_built::model()?;
    let figures = hand_built::figures(&model)?;
    let heads: BTreeMap<String, &str> = ROLES
        .iter()
        .enumerate()
        .flat_map(|(l, row)| row.iter().enumerate().map(move |(h, r)| (format!("L{l}H{h}"), r.name())))
        .collect();
    eprintln!(
        "glassbox: d_model {}, {} heads per layer, vocab {}; loss first half {:.3} (ln vocab {:.3}), repeat {:.2e}; \
         ACDC ROC AUC {:.3}",
        cfg.n_embd,
        cfg.n_head,
        cfg.vocab_size,
        figures.loss_first_half,
        figures.ln_vocab,
        figures.loss_second_half,
        figures.acdc_auc
    );

    super::write_word_model(dir, &cfg, &vocab, &model)?;
    let report = serde_json::json!({
        "model": "glassbox",
        "hand_built": true,
        "training": "none: every weight is set by hand in src/lens/methods/glassbox.rs, so the mechanism is known exactly",
        "heads": heads,
        "circuit": hand_built::circuit().iter().map(|e| e.to_string()).collect::<std::collections::BTreeSet<_>>(),
        "residual_stream": {
            "d_model": cfg.n_embd,
            "subspaces": {
                "token": hand_built::TOKEN.start, "pos": hand_built::POS.start, "prev": hand_built::PREV.start,
                "bos_mark": hand_built::BOS_MARK.start, "out": hand_built::OUT.start, "dup": hand_built::DUP.start,
            },
            "note": "each subspace is a one-hot code plus a sink dimension (a feature is written e[i] - e[sink]), so the stream has mean 0 and the same norm at every position: LayerNorm only rescales uniformly, and each gamma undoes it",
        },
        "attention_scores": { "match": hand_built::MATCH, "fallback_to_bos": hand_built::FALLBACK },
        "unembedding_gain": hand_built::UNEMBED,
        "measured": {
            "sequences": format!("{} repeated sequences of distinct words, half lengths {:?}, seed {}", figures.sequences, hand_built::LENGTHS, hand_built::SEED),
            "patching_and_acdc_input": format!("glassbox::patch_input({}, {}): clean and corrupted repeated sequences with no word in common; answer clean[1], wrong clean[2]", hand_built::PATCH_HALF, hand_built::SEED),
        },
        "figures": figures,
    });
    std::fs::write(dir.join("training.json"), serde_json::to_string_pretty(&report)? + "\n")?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}
