//! `train -- gpt2-random`: writes a GPT-2-shaped model with seeded random weights, nothing trained, as a Hugging
//! Face GPT-2 folder (`config.json`, `model.safetensors`) that `Transformer::from_bytes` (and `transformers`)
//! read. The default shape is GPT-2 small's (12 layers, 12 heads, d_model 768, vocab 50,257, 1,024 positions,
//! tied unembedding): the peer benchmark (`tests/peers/`) times it, and it stands in for a model a user brings.
//!
//!     cargo run --release --bin train -- gpt2-random [--out .cache/gpt2-small] [--seed S] [--layers L]
//!         [--heads H] [--d-model D] [--vocab V] [--positions P] [--untied]
//!
//! The weights are `Transformer::random`'s: GPT-2's initialisation (N(0, 0.02), the projections into the
//! residual stream scaled by 1/sqrt(2 n_layer), LayerNorms at identity, biases zero), so activations stay
//! finite at any depth, and the same seed always gives the same file.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use glassbox::lens::{Gpt2Config, Transformer};

use super::arg;

/// GPT-2 small's shape, or the one the flags ask for.
pub fn config(args: &[String]) -> Gpt2Config {
    let vocab = arg(args, "--vocab", 50_257usize);
    let positions = arg(args, "--positions", 1_024usize);
    let d_model = arg(args, "--d-model", 768usize);
    let layers = arg(args, "--layers", 12usize);
    let heads = arg(args, "--heads", 12usize);
    let mut cfg = Gpt2Config::new(vocab, positions, d_model, layers, heads, false);
    // GPT-2 ties its unembedding to the token embedding, and its one special token is the last id.
    cfg.tie_word_embeddings = !args.iter().any(|a| a == "--untied");
    cfg.bos_token_id = Some(vocab as u32 - 1);
    cfg.eos_token_id = Some(vocab as u32 - 1);
    cfg
}

pub fn write_gpt2_random(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = arg(args, "--out", PathBuf::from(".cache/gpt2-small"));
    let seed = arg(args, "--seed", 1u64);
    let cfg = config(args);
    let start = Instant::now();
    write(&dir, &cfg, seed)?;
    eprintln!(
        "wrote {} ({} layers, {} heads, d_model {}, vocab {}, {} positions, seed {seed}) in {:.1}s",
        dir.display(),
        cfg.n_layer,
        cfg.n_head,
        cfg.n_embd,
        cfg.vocab_size,
        cfg.n_positions,
        start.elapsed().as_secs_f32()
    );
    Ok(())
}

/// Draws the model from `seed` and writes its folder.
pub fn write(dir: &Path, cfg: &Gpt2Config, seed: u64) -> Result<(), Box<dyn std::error::Error>> {
    let model = Transformer::random(cfg.clone(), seed)?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), cfg.to_json())?;
    let tensors: HashMap<String, candle_core::Tensor> = model.to_tensors()?.into_iter().collect();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    /// The folder written for a small shape loads as any GPT-2 folder does and predicts exactly what the
    /// generator drew, with finite logits; the defaults are GPT-2 small's.
    #[test]
    fn the_written_folder_loads_and_runs() {
        let small = args("--vocab 37 --positions 16 --d-model 32 --layers 2 --heads 4");
        let cfg = config(&small);
        let dir = std::env::temp_dir().join(format!("glassbox-gpt2-random-{}", std::process::id()));
        write(&dir, &cfg, 7).unwrap();
        let json = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        let loaded = Transformer::from_bytes(&json, &weights).unwrap();
        assert_eq!(loaded.cfg, cfg);
        assert!(cfg.tie_word_embeddings && !json.contains("\"attn_only\": true"));
        let tokens: Vec<u32> = (0..16).map(|i| (i * 5 % 37) as u32).collect();
        let got: Vec<f32> = loaded.logits(&tokens).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let want: Vec<f32> =
            Transformer::random(cfg, 7).unwrap().logits(&tokens).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got.len(), 16 * 37);
        assert!(got.iter().all(|v| v.is_finite()));
        assert_eq!(got, want);

        let gpt2 = config(&[]);
        let shape = (gpt2.n_layer, gpt2.n_head, gpt2.n_embd, gpt2.vocab_size, gpt2.n_positions);
        assert_eq!(shape, (12, 12, 768, 50_257, 1_024));
        assert_eq!(gpt2.bos_token_id, Some(50_256));
        assert!(!config(&args("--untied")).tie_word_embeddings);
    }
}
