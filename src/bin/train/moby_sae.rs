//! `train -- moby-sae`: a sparse autoencoder on one residual-stream hook of the shipped Moby-Dick model,
//! trained on activations from the book's training split and written to `public/models/moby/sae/`:
//! `sae_weights.safetensors` (SAELens names) with SAELens's `cfg.json`, `sae.json` (hook, sizes, settings,
//! metrics) and `features.json` (the feature browser's index over `held_out.txt`: per latent density, histogram
//! and top contexts).
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use glassbox::lens::gpt2::text::{CharVocab, Split, HELD_OUT_FILE};
use glassbox::lens::methods::sae::{
    active_latents, build_index, sae_stats, scored_activations, spliced_losses, train_sae, IndexSettings,
    SaeTrainConfig,
};
use glassbox::lens::rng::Rng;
use glassbox::lens::{Hook, HookSet, Transformer};

use super::arg;

/// The hook the shipped SAE reads: the residual stream after block 2 of 4, late enough that its features
/// say something about the next character, early enough that two blocks still act on the reconstruction.
pub const SAE_HOOK: Hook = Hook::ResidPost(2);

/// Activations at `hook` over `windows` random windows of the training stream, `rows x d_model`.
fn record(
    model: &Transformer,
    hook: Hook,
    train: &[u32],
    windows: usize,
    seed: u64,
) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let n = model.cfg.n_positions;
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let per_batch = 32;
    for b in 0..windows.div_ceil(per_batch) {
        let k = per_batch.min(windows - b * per_batch);
        let data: Vec<u32> = (0..k)
            .flat_map(|_| {
                let s = rng.range(0, train.len() - n - 1);
                train[s..s + n].to_vec()
            })
            .collect();
        let tokens = Tensor::from_vec(data, (k, n), &Device::Cpu)?;
        let mut set = HookSet::cache_only(vec![hook]);
        model.forward(&tokens, &mut set)?;
        out.extend(set.cache.get(hook).expect("recorded").flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

pub fn train_moby_sae(args: &[String], moby: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(super::moby::fetch()?)?;
    let model = Transformer::from_bytes(
        &std::fs::read_to_string(moby.join("config.json"))?,
        &std::fs::read(moby.join("model.safetensors"))?,
    )?;
    let vocab = CharVocab::from_json(&std::fs::read_to_string(moby.join("vocab.json"))?)?;
    let split = Split::new(&vocab.encode(&text)?);
    let windows: usize = arg(args, "--windows", 2000usize);
    let tc = SaeTrainConfig {
        d_sae: arg(args, "--d-sae", 512usize),
        l1: arg(args, "--l1", 3.0f32),
        lr: arg(args, "--lr", 1e-3f64),
        batch: arg(args, "--batch", 1024usize),
        steps: arg(args, "--steps", 3000usize),
        l1_warmup: arg(args, "--l1-warmup", 300usize),
        seed: arg(args, "--seed", 1u64),
    };
    let start = Instant::now();
    let d = model.cfg.d_model();
    let train_x = record(&model, SAE_HOOK, &split.train, windows, tc.seed)?;
    // A separate sample of training windows for the final metrics, so they are not measured on the batches.
    let check_x = record(&model, SAE_HOOK, &split.train, 200, tc.seed + 1000)?;
    let norm2 =
        train_x.chunks_exact(d).map(|r| r.iter().map(|v| v * v).sum::<f32>()).sum::<f32>() / (train_x.len() / d) as f32;
    eprintln!(
        "recorded {} activations of {SAE_HOOK} (mean squared norm {norm2:.2}) in {:.0}s; {tc:?}",
        train_x.len() / d,
        start.elapsed().as_secs_f32()
    );
    let t0 = Instant::now();
    let mut curve = Vec::new();
    let sae = train_sae(&train_x, d, SAE_HOOK, &tc, |step, loss, mse| {
        eprintln!("step {step:>6}  loss {loss:.4}  mse {mse:.4}  {:.0}s", t0.elapsed().as_secs_f32());
        curve.push(serde_json::json!({ "step": step, "loss": loss, "mse": mse }));
        true
    })?;
    let train_seconds = t0.elapsed().as_secs_f32();
    let stats = sae_stats(&sae, &check_x);
    eprintln!("training-split sample: FVU {:.4}, L0 {:.2}, dead {} of {}", stats.fvu, stats.l0, stats.dead, tc.d_sae);

    let held_text = std::fs::read_to_string(moby.join(HELD_OUT_FILE))?;
    let held = vocab.encode(&held_text)?;
    // Every held-out position read in its scoring window, once: the index, FVU and L0 all come from these.
    let held_x = scored_activations(&model, SAE_HOOK, &held)?;
    let acts = active_latents(&sae, &held_x);
    let index = build_index(&acts, tc.d_sae, IndexSettings::default());
    let dead_held = index.latents.iter().filter(|l| l.count == 0).count();
    let l0_held = acts.iter().map(Vec::len).sum::<usize>() as f32 / acts.len() as f32;
    let losses = spliced_losses(&model, &sae, &held, true)?;
    let held_stats = sae_stats(&sae, &held_x);
    eprintln!(
        "held out: FVU {:.4}, L0 {l0_held:.2}, dead {dead_held}; loss clean {:.4}, spliced {:.4}, zero-ablated {:.4}, recovered {:.3}; {:.0}s in all",
        held_stats.fvu,
        losses.clean_loss(),
        losses.spliced_loss(),
        losses.zero_ablated_loss(),
        losses.loss_recovered(),
        start.elapsed().as_secs_f32()
    );

    let dir = moby.join("sae");
    std::fs::create_dir_all(&dir)?;
    let tensors: HashMap<String, Tensor> = sae.tensors()?.into_iter().collect();
    candle_core::safetensors::save(&tensors, dir.join("sae_weights.safetensors"))?;
    let cfg = sae.config();
    let report = serde_json::json!({
        "hook": cfg.hook,
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "architecture": "f = ReLU((x - b_dec) W_enc + b_enc), x_hat = f W_dec + b_dec, unit-norm rows of W_dec, loss ||x - x_hat||^2 + l1 * sum(f)",
        "data": format!("activations at {} over {windows} random windows of {} characters from the training split of public/models/moby", cfg.hook, model.cfg.n_positions),
        "train": tc,
        "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_default(),
        "train_seconds": train_seconds,
        "curve": curve,
        "train_sample": { "positions": stats.rows, "fvu": stats.fvu, "l0": stats.l0, "dead": stats.dead, "mse": stats.mse },
        "held_out": {
            "positions": held.len(),
            "fvu": held_stats.fvu,
            "mse": held_stats.mse,
            "l0": l0_held,
            "dead": dead_held,
            "loss_clean": losses.clean_loss(),
            "loss_spliced": losses.spliced_loss(),
            "loss_zero_ablated": losses.zero_ablated_loss(),
            "loss_recovered": losses.loss_recovered(),
        },
    });
    std::fs::write(dir.join("sae.json"), serde_json::to_string_pretty(&report)?)?;
    let saelens = cfg.saelens_cfg("moby", model.cfg.n_positions);
    std::fs::write(dir.join("cfg.json"), serde_json::to_string_pretty(&saelens)? + "\n")?;
    std::fs::write(dir.join("features.json"), serde_json::to_string(&index)?)?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}
