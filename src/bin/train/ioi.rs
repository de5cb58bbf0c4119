//! `train -- ioi`: a small GPT-2 trained for indirect object identification (`lens::methods::ioi`), written to
//! `public/models/ioi/`: `config.json` (Hugging Face GPT-2), `model.safetensors` (Hugging Face names),
//! `vocab.json` (`{word: id}`), `tokenizer.json` (Hugging Face `tokenizers`, same ids) and `training.json`
//! (settings, seed, time, curve, held-out figures, head patching, attention of each head).
//!
//! Training stories are name-free leading clauses then an IOI sentence (training templates, training name
//! pairs) or another sentence, with the next-token loss on every token and the IOI answer weighted more.
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use glassbox::lens::gpt2::train::{lm_loss, warmup_cosine};
use glassbox::lens::methods::ioi::{self, IoiPrompt, Order, Part};
use glassbox::lens::rng::Rng;
use glassbox::lens::{Gpt2Config, Transformer};
use serde::Serialize;

use super::arg;

/// The model's shape: 3 attention-only layers of 4 heads, d_model 64, 64 positions (the longest training
/// story, with three leading clauses and two in the middle, has under 62 tokens).
pub fn ioi_config(vocab_size: usize) -> Gpt2Config {
    Gpt2Config::new(vocab_size, 64, 64, 3, 4, true)
}

#[derive(Clone, Debug, Serialize)]
pub struct IoiTrainConfig {
    pub seed: u64,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub warmup: usize,
    pub weight_decay: f64,
    pub log_every: usize,
    pub eval_every: usize,
    /// The training stories' mix: IOI sentences (with two or three names) and others.
    pub mix: ioi::Mix,
    /// The loss weight of the IOI answer; every other prediction weighs 1.
    pub answer_weight: f32,
}

#[derive(Clone, Debug, Serialize)]
struct LogPoint {
    step: usize,
    /// Mean training loss (weighted, as trained) since the last point.
    loss: f32,
    /// Held-out accuracy and logit difference on a fixed set of prompts, when measured at this step.
    held_out: Option<(f32, f32)>,
    seconds: f32,
}

/// A batch of stories, padded with `<bos>` to the longest: tokens `[batch, len]` and the weight of each
/// prediction `[batch, len - 1]` (0 on padding, `answer_weight` on the IOI answer, 1 elsewhere).
fn batch(
    vocab: &glassbox::lens::gpt2::vocab::Vocab,
    rng: &mut Rng,
    tc: &IoiTrainConfig,
) -> candle_core::Result<(Tensor, Tensor)> {
    let stories: Vec<ioi::Story> = (0..tc.batch).map(|_| ioi::training_story(vocab, rng, tc.mix)).collect();
    let len = stories.iter().map(|s| s.tokens.len()).max().unwrap_or(2);
    let (mut data, mut weights) = (Vec::with_capacity(tc.batch * len), Vec::with_capacity(tc.batch * (len - 1)));
    for s in &stories {
        data.extend(s.tokens.iter().copied().chain(std::iter::repeat_n(0, len - s.tokens.len())));
        // Prediction i targets token i + 1.
        weights.extend((1..len).map(|t| {
            if t >= s.tokens.len() {
                0.0
            } else if Some(t) == s.answer {
                tc.answer_weight
            } else {
                1.0
            }
        }));
    }
    Ok((
        Tensor::from_vec(data, (tc.batch, len), &Device::Cpu)?,
        Tensor::from_vec(weights, (tc.batch, len - 1), &Device::Cpu)?,
    ))
}

fn train(
    cfg: &Gpt2Config,
    tc: &IoiTrainConfig,
    eval: &[IoiPrompt],
    mut on_log: impl FnMut(&LogPoint),
) -> Result<Transformer, Box<dyn std::error::Error>> {
    let vocab = ioi::vocab();
    let start = Instant::now();
    let mut rng = Rng::new(tc.seed);
    let (mut model, vars) = Transformer::init(cfg.clone(), &mut rng)?;
    let params = ParamsAdamW { lr: tc.lr, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: tc.weight_decay };
    let mut opt = AdamW::new(vars.iter().map(|(_, v)| v.clone()).collect(), params)?;
    let (mut acc, mut count) = (0.0f32, 0);
    for step in 1..=tc.steps {
        opt.set_learning_rate(warmup_cosine(tc.lr, step, tc.warmup, tc.steps));
        let (tokens, weights) = batch(&vocab, &mut rng, tc)?;
        let loss = lm_loss(&model, &tokens, Some(&weights))?;
        opt.backward_step(&loss)?;
        acc += loss.to_scalar::<f32>()?;
        count += 1;
        if step % tc.log_every == 0 || step == tc.steps {
            let mean = acc / count as f32;
            (acc, count) = (0.0, 0);
            if !mean.is_finite() {
                return Err(format!("training diverged at step {step} (loss {mean})").into());
            }
            let held_out = if step % tc.eval_every == 0 || step == tc.steps {
                model.autograd = false;
                let m = ioi::evaluate(&model, eval)?;
                model.autograd = true;
                Some((m.accuracy, m.logit_diff))
            } else {
                None
            };
            on_log(&LogPoint { step, loss: mean, held_out, seconds: start.elapsed().as_secs_f32() });
        }
    }
    // Re-read the trained weights as plain tensors so the model no longer carries an autograd graph.
    let tensors = model.to_tensors()?.into_iter().collect();
    Ok(Transformer::from_tensors(model.cfg.clone(), tensors)?)
}

/// Mean attention of each head `[layer][head]` from the last position to the IO, S1, S2, `<bos>` and itself,
/// and from S2 to S1 (a duplicate-token head's signature).
#[derive(Clone, Debug, Default, Serialize)]
struct HeadAttention {
    end_to_io: f32,
    end_to_s1: f32,
    end_to_s2: f32,
    end_to_bos: f32,
    end_to_end: f32,
    s2_to_s1: f32,
}

fn head_attention(
    model: &Transformer,
    prompts: &[IoiPrompt],
) -> Result<Vec<Vec<HeadAttention>>, Box<dyn std::error::Error>> {
    let (nl, nh) = (model.cfg.n_layer, model.cfg.n_head);
    let mut out = vec![vec![HeadAttention::default(); nh]; nl];
    for p in prompts {
        let (_, cache) = model.run_with_cache(&p.tokens)?;
        for (l, row) in out.iter_mut().enumerate() {
            for (h, a) in row.iter_mut().enumerate() {
                let pat = cache.pattern(l, h, 0)?;
                let e = p.end();
                a.end_to_io += pat[e][p.io_pos];
                a.end_to_s1 += pat[e][p.s1_pos];
                a.end_to_s2 += pat[e][p.s2_pos];
                a.end_to_bos += pat[e][0];
                a.end_to_end += pat[e][e];
                a.s2_to_s1 += pat[p.s2_pos][p.s1_pos];
            }
        }
    }
    let n = prompts.len() as f32;
    for a in out.iter_mut().flatten() {
        a.end_to_io /= n;
        a.end_to_s1 /= n;
        a.end_to_s2 /= n;
        a.end_to_bos /= n;
        a.end_to_end /= n;
        a.s2_to_s1 /= n;
    }
    Ok(out)
}

/// Seeds of the evaluation sets, fixed so the test measures the same prompts.
pub const HELD_OUT_SEED: u64 = 2024;
pub const HELD_OUT_PROMPTS: usize = 1000;

/// CPU seconds this process has used (user + system, all threads), from `/proc/self/stat` (Linux; ticks of
/// 1/100 s). The machine that trains may be shared, so the wall-clock time alone overstates the cost.
fn cpu_seconds() -> Option<f32> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces): state is field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f32, f32) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    Some((utime + stime) / 100.0)
}

pub fn train_ioi_model(args: &[String], dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let vocab = ioi::vocab();
    let mut cfg = ioi_config(vocab.len());
    cfg.n_layer = arg(args, "--layers", cfg.n_layer);
    cfg.n_head = arg(args, "--heads", cfg.n_head);
    cfg.n_embd = arg(args, "--d-model", cfg.n_embd);
    if args.iter().any(|a| a == "--mlp") {
        cfg.attn_only = false;
        cfg.n_inner = Some(4 * cfg.n_embd);
    }
    let tc = IoiTrainConfig {
        seed: arg(args, "--seed", 1u64),
        // The circuit forms by step ~1,250. In runs of 6,000 steps held-out accuracy peaked near step 2,000 and
        // then fell while the training templates were fitted further.
        steps: arg(args, "--steps", 2500usize),
        batch: arg(args, "--batch", 32usize),
        lr: arg(args, "--lr", 2e-3f64),
        warmup: arg(args, "--warmup", 200usize),
        weight_decay: arg(args, "--wd", 0.01f64),
        log_every: arg(args, "--log-every", 50usize),
        eval_every: arg(args, "--eval-every", 250usize),
        mix: ioi::Mix {
            p_ioi: arg(args, "--p-ioi", 0.6f32),
            p_three: arg(args, "--p-three", 0.3f32),
            p_middle: arg(args, "--p-middle", 0.3f32),
        },
        answer_weight: arg(args, "--answer-weight", 4.0f32),
    };
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_default();
    if args.iter().any(|a| a == "--eval-only") {
        // Re-measure a trained folder without training (nothing is written).
        let model = Transformer::from_bytes(
            &std::fs::read_to_string(dir.join("config.json"))?,
            &std::fs::read(dir.join("model.safetensors"))?,
        )?;
        measure(&model, &vocab)?;
        return Ok(());
    }
    eprintln!(
        "training the IOI model: {} layers, d_model {}, {} heads, attn_only {}, context {}, vocab {}, threads {threads}; {:?}",
        cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.attn_only, cfg.n_positions, cfg.vocab_size, tc
    );
    let eval_during = ioi::prompts(&vocab, Part::HeldOut, Part::HeldOut, 200, 77);
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let mut curve = Vec::new();
    let model = train(&cfg, &tc, &eval_during, |p| {
        match p.held_out {
            Some((a, d)) => eprintln!(
                "step {:>6}  loss {:.4}  held-out accuracy {:.3}, logit diff {d:.2}  {:.0}s",
                p.step, p.loss, a, p.seconds
            ),
            None => eprintln!("step {:>6}  loss {:.4}  {:.0}s", p.step, p.loss, p.seconds),
        }
        curve.push(p.clone());
    })?;
    let seconds = start.elapsed().as_secs_f32();
    let cpu = cpu_seconds().zip(cpu_start).map(|(b, a)| b - a);
    eprintln!("trained in {seconds:.0}s wall-clock, {:.0}s of CPU", cpu.unwrap_or(f32::NAN));
    let figures = measure(&model, &vocab)?;

    super::write_word_model(dir, &cfg, &vocab, &model)?;
    let mut report = serde_json::json!({
        "model": "ioi",
        "task": "indirect object identification (Wang et al. 2023): name-free leading clauses (0 to 3), then an IOI sentence from the training templates with a training name pair in either order (ABBA, BABA), or (p_three of the IOI sentences) three names of which two come back, with (p_middle) 1 or 2 name-free clauses between the introduction and the ending, or (1 - p_ioi) another sentence with one or two names and no indirect object to find; next-token loss on every token, the IOI answer weighted answer_weight",
        "split": {
            "templates": format!("a template is an introduction (with both names) and an ending (the subject gives something to the answer); every {}th introduction is held out with every ending ({} of {} introductions, {} of {} templates)", ioi::HELD_OUT_INTRO_EVERY, ioi::templates(Part::HeldOut).len() / ioi::ACTIONS.len(), ioi::INTROS.len(), ioi::templates(Part::HeldOut).len(), ioi::TEMPLATE_COUNT),
            "name_pairs": format!("unordered pairs held out by a fixed hash, about 1 in {} ({} of {})", ioi::HELD_OUT_PAIR_ONE_IN, ioi::name_pairs(Part::HeldOut).len(), ioi::NAMES.len() * (ioi::NAMES.len() - 1) / 2),
        },
        "config": cfg,
        "train": tc,
        "threads": if threads.is_empty() { "default".to_string() } else { threads },
        "train_seconds": seconds,
        "train_cpu_seconds": cpu,
        "curve": curve,
    });
    if let (Some(r), serde_json::Value::Object(f)) = (report.as_object_mut(), figures) {
        r.extend(f);
    }
    std::fs::write(dir.join("training.json"), serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}

/// Every figure of the report: held-out accuracy and logit difference (overall, per order, per template, per
/// number of leading clauses), the other splits for comparison, head patching and each head's attention.
fn measure(
    model: &Transformer,
    vocab: &glassbox::lens::gpt2::vocab::Vocab,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    // The figures: held-out templates and held-out name pairs, then the other three combinations for
    // comparison, each name order, and each number of leading clauses.
    let held = ioi::prompts(vocab, Part::HeldOut, Part::HeldOut, HELD_OUT_PROMPTS, HELD_OUT_SEED);
    let m = ioi::evaluate(model, &held)?;
    let mut parts = serde_json::Map::new();
    for (name, t, p) in [
        ("train_templates_train_pairs", Part::Train, Part::Train),
        ("train_templates_held_out_pairs", Part::Train, Part::HeldOut),
        ("held_out_templates_train_pairs", Part::HeldOut, Part::Train),
    ] {
        let mm = ioi::evaluate(model, &ioi::prompts(vocab, t, p, 500, HELD_OUT_SEED + 1))?;
        eprintln!("{name}: accuracy {:.3}, logit diff {:.2}", mm.accuracy, mm.logit_diff);
        parts.insert(name.into(), serde_json::to_value(mm)?);
    }
    // Three names, two of which come back (training introductions and pairs: the skill, not generalisation).
    let mut rng = Rng::new(HELD_OUT_SEED + 3);
    let three: Vec<ioi::Story> = (0..300)
        .map(|_| ioi::training_story(vocab, &mut rng, ioi::Mix { p_ioi: 1.0, p_three: 1.0, p_middle: 0.0 }))
        .collect();
    let m3 = ioi::evaluate_stories(model, &three)?;
    eprintln!(
        "three names (answer against the larger of the two others): accuracy {:.3}, logit diff {:.2}",
        m3.accuracy, m3.logit_diff
    );
    parts.insert("three_names_training_distribution".into(), serde_json::to_value(m3)?);
    let mut by_order = serde_json::Map::new();
    for order in Order::ALL {
        let ps: Vec<IoiPrompt> = held.iter().filter(|p| p.fill.order == order).cloned().collect();
        let mm = ioi::evaluate(model, &ps)?;
        eprintln!("held-out {}: accuracy {:.3}, logit diff {:.2}", order.name(), mm.accuracy, mm.logit_diff);
        by_order.insert(order.name().into(), serde_json::to_value(mm)?);
    }
    let mut by_intro = Vec::new();
    for (i, intro) in ioi::INTROS.iter().enumerate() {
        let ps: Vec<IoiPrompt> = held.iter().filter(|p| p.fill.template / ioi::ACTIONS.len() == i).cloned().collect();
        if ps.is_empty() {
            continue;
        }
        let mm = ioi::evaluate(model, &ps)?;
        let baba: Vec<IoiPrompt> = ps.iter().filter(|p| p.fill.order == Order::Baba).cloned().collect();
        let mb = ioi::evaluate(model, &baba)?;
        eprintln!(
            "held-out introduction {i} ({intro}): accuracy {:.3} (BABA {:.3}), logit diff {:.2}",
            mm.accuracy, mb.accuracy, mm.logit_diff
        );
        by_intro.push(serde_json::json!({ "introduction": intro, "metrics": mm }));
    }
    let mut by_prefix = Vec::new();
    for k in 0..=ioi::MAX_PREFIX {
        let ps = ioi::prompts_with(vocab, Part::HeldOut, Part::HeldOut, 300, HELD_OUT_SEED + 2, Some(k), 0);
        let mm = ioi::evaluate(model, &ps)?;
        eprintln!("held-out with {k} leading clauses: accuracy {:.3}, logit diff {:.2}", mm.accuracy, mm.logit_diff);
        by_prefix.push(serde_json::json!({ "leading_clauses": k, "metrics": mm }));
    }
    let mut by_middle = Vec::new();
    for k in 0..=ioi::MAX_MIDDLE {
        let ps = ioi::prompts_with(vocab, Part::HeldOut, Part::HeldOut, 300, HELD_OUT_SEED + 4, None, k);
        let mm = ioi::evaluate(model, &ps)?;
        eprintln!(
            "held-out with {k} clauses between introduction and ending: accuracy {:.3}, logit diff {:.2}",
            mm.accuracy, mm.logit_diff
        );
        by_middle.push(serde_json::json!({ "middle_clauses": k, "metrics": mm }));
    }
    eprintln!(
        "held-out ({} prompts, templates and name pairs both held out): accuracy {:.3}, mean logit diff IO − S {:.2}, IO top-1 {:.3}, P(IO) {:.3}",
        m.prompts, m.accuracy, m.logit_diff, m.top1, m.io_prob
    );

    // The circuit: head patching (denoising, ABC corruption) and where each head looks.
    let patch_prompts: Vec<IoiPrompt> = held.iter().take(100).cloned().collect();
    let grid = ioi::mean_head_patching(model, vocab, &patch_prompts, 99)?;
    let ranked = ioi::ranked_heads(&grid);
    let attention = head_attention(model, &patch_prompts)?;
    eprintln!(
        "head patching (denoising, ABC corruption, normalised logit difference, mean of {}):",
        patch_prompts.len()
    );
    for (l, row) in grid.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:>6.3}")).collect();
        eprintln!("  layer {l}: {}", cells.join(" "));
    }
    for (l, h, v) in ranked.iter().take(6) {
        let a = &attention[*l][*h];
        eprintln!(
            "  L{l}H{h}: {v:.3}  attention end→IO {:.2} end→S1 {:.2} end→S2 {:.2} end→bos {:.2} end→end {:.2} S2→S1 {:.2}",
            a.end_to_io, a.end_to_s1, a.end_to_s2, a.end_to_bos, a.end_to_end, a.s2_to_s1
        );
    }

    Ok(serde_json::json!({
        "held_out": { "seed": HELD_OUT_SEED, "metrics": m, "by_order": by_order, "by_introduction": by_intro, "by_leading_clauses": by_prefix, "by_middle_clauses": by_middle },
        "other_parts": parts,
        "head_patching": {
            "target": "attn_head_out_all_pos (hook_z)",
            "direction": "denoising",
            "corruption": "ABC: both names replaced by two other names",
            "metric": "normalised logit difference IO − S, mean over prompts",
            "prompts": patch_prompts.len(),
            "grid": grid,
            "top": ranked.iter().take(6).map(|(l, h, v)| serde_json::json!({ "layer": l, "head": h, "value": v })).collect::<Vec<_>>(),
        },
        "attention": attention,
    }))
}
