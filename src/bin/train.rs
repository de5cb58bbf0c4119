//! Trains the shipped models from a fixed seed and writes each to its own folder under `public/models/`:
//! `config.json` (Hugging Face GPT-2), `model.safetensors`, `vocab.json`, and `training.json` (curve and metrics).
//!
//!     cargo run --release --bin train -- induction [--steps N] [--seed S] [--batch B] [--lr LR] [--wd WD]
//!         [--other-weight W] [--d-model D] [--heads H] [--out public/models]
//!     cargo run --release --bin train -- ioi [--steps N] [--seed S] [--batch B] [--lr LR] [--wd WD] [--layers L]
//!         [--heads H] [--d-model D] [--mlp] [--p-ioi P] [--p-three P] [--p-middle P] [--answer-weight W]
//!         [--eval-only]   # indirect object identification into public/models/ioi/
//!     cargo run --release --bin train -- glassbox   # the hand-built model (no training) into public/models/glassbox/
//!     cargo run --release --bin train -- mnist [--epochs E] [--seed S] [--batch B] [--lr LR] [--wd WD] [--shift P]
//!     cargo run --release --bin train -- mnist-atlas   # only recompute featvis.bin from the shipped CNN
//!     cargo run --release --bin train -- fetch-mnist   # only fetch MNIST into .cache/mnist/ (bash .ci/fetch-mnist)
//!     cargo run --release --bin train -- moby [--steps N] [--seed S] [--batch B] [--lr LR] [--wd WD] [--layers L]
//!         [--d-model D] [--d-mlp M] [--warmup W]   # the character-level GPT on Moby-Dick (.ci/fetch-moby)
//!     cargo run --release --bin train -- fetch-moby    # only fetch the text into .cache/moby/
//!     cargo run --release --bin train -- moby-text     # only rewrite public/models/moby/held_out.txt
//!     cargo run --release --bin train -- moby-sae [--d-sae N] [--l1 L] [--steps N] [--batch B] [--lr LR]
//!         [--windows W] [--seed S]   # the SAE on the shipped Moby-Dick model, into public/models/moby/sae/
//!     cargo run --release --bin train -- gpt2-random [--out .cache/gpt2-small] [--seed S] [--layers L] [--heads H]
//!         [--d-model D] [--vocab V] [--positions P] [--untied]   # GPT-2-small-shaped, seeded random weights
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use glassbox::lens::gpt2::hf;
use glassbox::lens::gpt2::train::{evaluate_induction, train_induction, TrainConfig};
use glassbox::lens::gpt2::vocab::{Vocab, BOS};
use glassbox::lens::Gpt2Config;

/// The induction model's shape: small enough to train in minutes on 2 cores and run in ~1 ms in a browser.
pub fn induction_config(vocab_size: usize) -> Gpt2Config {
    Gpt2Config::new(vocab_size, 64, 64, 2, 4, true)
}

/// Writes a word-level model folder as the app and Hugging Face read it: `config.json`, `vocab.json`, a
/// `tokenizer.json` (word level, `Whitespace` pre-tokenizer) with its `tokenizer_config.json`, and
/// `model.safetensors` under GPT-2 names. The caller adds its `training.json`.
fn write_word_model(
    dir: &std::path::Path,
    cfg: &Gpt2Config,
    vocab: &Vocab,
    model: &glassbox::lens::Transformer,
) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), cfg.to_json())?;
    std::fs::write(dir.join("vocab.json"), vocab.to_json())?;
    write_hf_tokenizer(dir, cfg.n_positions, &hf::word_tokenizer_json(vocab), Some(BOS))?;
    let tensors: HashMap<String, candle_core::Tensor> = model.to_tensors()?.into_iter().collect();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    Ok(())
}

/// Writes `tokenizer.json` and `tokenizer_config.json` (`lens::gpt2::hf`) into a model folder, so
/// `AutoTokenizer.from_pretrained(dir)` reads it with the ids the app uses.
pub fn write_hf_tokenizer(
    dir: &std::path::Path,
    n_positions: usize,
    tokenizer: &serde_json::Value,
    bos: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::write(dir.join("tokenizer.json"), serde_json::to_string_pretty(tokenizer)? + "\n")?;
    let config = hf::tokenizer_config_json(n_positions, bos);
    std::fs::write(dir.join("tokenizer_config.json"), serde_json::to_string_pretty(&config)? + "\n")?;
    Ok(())
}

/// `train -- hf-files`: rewrites the tokenizer files of every shipped transformer folder from its `vocab.json`
/// and `config.json`, and the Moby-Dick SAE's SAELens `cfg.json` from its `sae.json`, without training anything (for folders trained before the files existed, or after a change
/// to `lens::gpt2::hf`).
fn write_hf_files(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    for name in ["induction", "ioi", "glassbox", "moby"] {
        let dir = out.join(name);
        let cfg = Gpt2Config::from_json(&std::fs::read_to_string(dir.join("config.json"))?)?;
        let vocab_text = std::fs::read_to_string(dir.join("vocab.json"))?;
        if name == "moby" {
            let vocab = glassbox::lens::gpt2::text::CharVocab::from_json(&vocab_text)?;
            write_hf_tokenizer(&dir, cfg.n_positions, &hf::char_tokenizer_json(&vocab), None)?;
        } else {
            let vocab = Vocab::from_json(&vocab_text)?;
            write_hf_tokenizer(&dir, cfg.n_positions, &hf::word_tokenizer_json(&vocab), Some(BOS))?;
        }
        eprintln!("{}: tokenizer.json, tokenizer_config.json", dir.display());
    }
    // The Moby-Dick SAE's SAELens `cfg.json`, from the hook and sizes in its `sae.json`.
    let sae_dir = out.join("moby").join("sae");
    let sae: glassbox::lens::methods::sae::LmSaeConfig =
        serde_json::from_str(&std::fs::read_to_string(sae_dir.join("sae.json"))?)?;
    let moby = Gpt2Config::from_json(&std::fs::read_to_string(out.join("moby").join("config.json"))?)?;
    let cfg = sae.saelens_cfg("moby", moby.n_positions);
    std::fs::write(sae_dir.join("cfg.json"), serde_json::to_string_pretty(&cfg)? + "\n")?;
    eprintln!("{}: cfg.json", sae_dir.display());
    Ok(())
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("bad value for {name}: {v}")))
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // These tensors are tiny: one thread beats two that contend for every op (measured: ~2x per step).
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().cloned().unwrap_or_else(|| "induction".into());
    let out: PathBuf = arg(&args, "--out", PathBuf::from("public/models"));
    match which.as_str() {
        "induction" => train_induction_model(&args, &out.join("induction")),
        "inspect" => inspect(args.get(1).map(String::as_str).unwrap_or("public/models/induction")),
        "ioi" => ioi::train_ioi_model(&args, &out.join("ioi")),
        "glassbox" => glassbox_model::write_glassbox_model(&out.join("glassbox")),
        "mnist" => mnist::train_mnist_model(&args, &out.join("mnist-cnn")),
        "mnist-atlas" => mnist::atlas_only(&out.join("mnist-cnn")),
        "fetch-mnist" => mnist::fetch().map(|_| ()),
        "moby" => moby::train_moby_model(&args, &out.join("moby")),
        "fetch-moby" => moby::fetch().map(|_| ()),
        "moby-text" => moby::held_out_text_only(&out.join("moby")),
        "moby-sae" => moby_sae::train_moby_sae(&args, &out.join("moby")),
        "hf-files" => write_hf_files(&out),
        "gpt2-random" => gpt2_random::write_gpt2_random(&args),
        other => Err(format!("unknown model `{other}`; known: induction, ioi, glassbox, mnist, moby (and the commands inspect, fetch-mnist, fetch-moby, moby-text, moby-sae, mnist-atlas, hf-files, gpt2-random)").into()),
    }
}

// The crate root sits in src/bin/, so name the file: it lives beside this one in train/.
#[path = "train/glassbox.rs"]
mod glassbox_model;
#[path = "train/gpt2_random.rs"]
mod gpt2_random;
#[path = "train/ioi.rs"]
mod ioi;
#[path = "train/mnist.rs"]
mod mnist;
#[path = "train/moby.rs"]
mod moby;
#[path = "train/moby_sae.rs"]
mod moby_sae;

fn train_induction_model(args: &[String], dir: &PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let vocab = Vocab::builtin();
    let mut cfg = induction_config(vocab.len());
    cfg.n_embd = arg(args, "--d-model", cfg.n_embd);
    cfg.n_head = arg(args, "--heads", cfg.n_head);
    let tc = TrainConfig {
        seed: arg(args, "--seed", 1u64),
        steps: arg(args, "--steps", 8000usize),
        batch: arg(args, "--batch", 16usize),
        lr: arg(args, "--lr", 1e-3f64),
        warmup: 200,
        weight_decay: arg(args, "--wd", 0.01f64),
        log_every: 50,
        other_weight: arg(args, "--other-weight", 0.1f32),
    };
    eprintln!(
        "training the induction model: {} layers, d_model {}, {} heads, vocab {}, {:?}",
        cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.vocab_size, tc
    );
    let start = Instant::now();
    let mut curve: Vec<(usize, f32)> = Vec::new();
    let model = train_induction(cfg.clone(), &tc, |step, loss| {
        eprintln!("step {step:>6}  loss {loss:.4}  {:.0}s", start.elapsed().as_secs_f32());
        curve.push((step, loss));
        true
    })?;
    let seconds = start.elapsed().as_secs_f32();
    let lengths: Vec<usize> = vec![4, 8, 12, 16, 20, 24, 28, 31];
    let m = evaluate_induction(&model, &lengths, 16, 12345)?;
    let (pl, ph, ps) = m.best(Some(0), |s| s.previous_token);
    let (il, ih, is) = m.best(Some(1), |s| s.induction);
    eprintln!(
        "loss first half {:.3}, repeated half {:.3} ({:.1}%); best previous-token L{pl}H{ph} {ps:.3}; best induction L{il}H{ih} {is:.3}; {seconds:.0}s",
        m.loss_first_half,
        m.loss_repeat_half,
        100.0 * m.loss_repeat_half / m.loss_first_half
    );
    for (l, row) in m.scores.iter().enumerate() {
        for (h, s) in row.iter().enumerate() {
            eprintln!(
                "  L{l}H{h}: prev {:.3} induction {:.3} dup {:.3}",
                s.previous_token, s.induction, s.duplicate_token
            );
        }
    }

    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), cfg.to_json())?;
    std::fs::write(dir.join("vocab.json"), vocab.to_json())?;
    let tensors: HashMap<String, candle_core::Tensor> = model.to_tensors()?.into_iter().collect();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    let report = serde_json::json!({
        "model": "induction",
        "task": "random words after <bos>; each sequence holds several non-overlapping segments copied to random later offsets, mostly 2 to 8 words long and sometimes 4 to 31; copied words weigh 1 in the loss, fresh words other_weight",
        "train": tc,
        "train_seconds": seconds,
        "curve": curve,
        "metrics": m,
        "best_previous_token": { "layer": pl, "head": ph, "score": ps },
        "best_induction": { "layer": il, "head": ih, "score": is },
    });
    std::fs::write(dir.join("training.json"), serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}

/// Where each head's attention goes on repeated sequences: to `<bos>`, itself, the previous token,
/// the induction target, or elsewhere. For checking that a trained model formed clean heads.
fn inspect(dir: &str) -> Result<(), Box<dyn std::error::Error>> {
    use glassbox::lens::methods::induction::{induction_targets, TaskSpec};
    use glassbox::lens::rng::Rng;
    let model = glassbox::lens::Transformer::from_bytes(
        &std::fs::read_to_string(format!("{dir}/config.json"))?,
        &std::fs::read(format!("{dir}/model.safetensors"))?,
    )?;
    let spec = TaskSpec::new(model.cfg.vocab_size, model.cfg.n_positions);
    let mut rng = Rng::new(99);
    let len = 20;
    let tokens = spec.repeated_sequence(&mut rng, len);
    let (_, cache) = model.run_with_cache(&tokens)?;
    let targets = induction_targets(&tokens);
    // A control: the same layout with no repeat. A model that has not seen the future cannot predict it.
    let control: Vec<u32> =
        (0..tokens.len()).map(|i| if i == 0 { 0 } else { rng.range(1, model.cfg.vocab_size - 1) as u32 }).collect();
    for (name, seq) in [("repeated", &tokens), ("no repeat (control)", &control)] {
        let loss = glassbox::lens::gpt2::model::per_position_loss(&model.logits(seq)?, seq)?;
        let (a, b) = glassbox::lens::methods::induction::half_losses(&loss, len);
        println!("{name}: first half {a:.3}, second half {b:.3}");
    }
    println!("mean attention over queries in the repeated half (len {len}):");
    for l in 0..model.cfg.n_layer {
        for h in 0..model.cfg.n_head {
            let p = cache.pattern(l, h, 0)?;
            let (mut bos, mut this, mut prev, mut ind) = (0.0, 0.0, 0.0, 0.0);
            let qs: Vec<usize> = (len + 2..=2 * len).collect();
            for &q in &qs {
                bos += p[q][0];
                this += p[q][q];
                prev += p[q][q - 1];
                ind += targets[q].iter().map(|&k| p[q][k]).sum::<f32>();
            }
            let n = qs.len() as f32;
            // The most common distance from each query to the key it attends to most.
            let mut offsets = std::collections::BTreeMap::new();
            for &q in &qs {
                let k = (0..=q).max_by(|&a, &b| p[q][a].total_cmp(&p[q][b])).unwrap();
                *offsets.entry(q - k).or_insert(0) += 1;
            }
            let (off, cnt) = offsets.iter().max_by_key(|(_, &c)| c).unwrap();
            println!(
                "  L{l}H{h}: bos {:.2} self {:.2} prev {:.2} induction {:.2} other {:.2}; commonest q-argmax {off} ({cnt}/{})",
                bos / n, this / n, prev / n, ind / n, 1.0 - (bos + this + prev + ind) / n, qs.len()
            );
        }
    }
    Ok(())
}
