//! Whole models through the fast kernels against the same models through candle's differentiable ops: a model
//! whose weights are autograd variables takes candle's ops everywhere (the kernels only serve tensors no
//! gradient flows through), and its plain copy takes the kernels. Logits and every recorded activation must
//! agree to float rounding: 2e-5 relative to the largest value of each (the kernels sum in another order).
#![allow(dead_code)]

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use glassbox::lens::cnn::model::{Cnn, VisionConfig};
use glassbox::lens::rng::Rng;
use glassbox::lens::{Gpt2Config, HookSet, KvCache, Transformer};

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn assert_near(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes");
    let (g, w) = (values(got), values(want));
    let top = w.iter().filter(|v| v.is_finite()).fold(1e-6f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let same = a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 2e-5 * top;
        assert!(same, "{what}[{i}]: fast {a}, candle {b} (largest {top})");
    }
}

/// Gives every variable random values (LayerNorm weights near 1, everything else N(0, 0.3²)), so that
/// biases and LayerNorm affines are not the identity `init` leaves them at.
fn randomise(vars: &[(String, candle_core::Var)], rng: &mut Rng) {
    for (name, var) in vars {
        let n = var.as_tensor().elem_count();
        let ln = name.contains("ln_") && name.ends_with(".weight");
        let data: Vec<f32> = (0..n).map(|_| if ln { 1.0 + 0.2 * rng.normal() } else { 0.3 * rng.normal() }).collect();
        var.set(&Tensor::from_vec(data, var.as_tensor().dims(), &Device::Cpu).unwrap()).unwrap();
    }
}

pub fn transformer_fast_paths_match_candles_ops() {
    for (attn_only, scaled, d_model, n_head, pos) in
        [(false, true, 24, 3, 13), (true, true, 16, 2, 9), (false, false, 12, 4, 1), (false, true, 32, 4, 33)]
    {
        let mut cfg = Gpt2Config::new(29, 40, d_model, 2, n_head, attn_only);
        cfg.scale_attn_weights = scaled;
        let mut rng = Rng::new(d_model as u64);
        let (tracked, vars) = Transformer::init(cfg.clone(), &mut rng).unwrap();
        randomise(&vars, &mut rng);
        let plain =
            Transformer::from_tensors(cfg.clone(), tracked.to_tensors().unwrap().into_iter().collect()).unwrap();
        let tokens: Vec<u32> = (0..pos).map(|i| ((i * 7 + 3) % 29) as u32).collect();
        let what = format!("attn_only {attn_only}, scaled {scaled}, d_model {d_model}, pos {pos}");

        let (want, want_cache) = tracked.run_with_cache(&tokens).unwrap();
        let (got, got_cache) = plain.run_with_cache(&tokens).unwrap();
        assert_near(&format!("logits ({what})"), &got, &want);
        assert_eq!(got_cache.len(), want_cache.len());
        for hook in want_cache.hooks() {
            assert_near(&format!("{hook} ({what})"), got_cache.get(hook).unwrap(), want_cache.get(hook).unwrap());
        }
        assert_near(&format!("logits without hooks ({what})"), &plain.logits(&tokens).unwrap(), &want);
        // With no hook on the scores the plain forward fuses scale, mask and softmax: bit for bit the same.
        let bits = |t: &Tensor| {
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(bits(&plain.logits(&tokens).unwrap()), bits(&got), "fused softmax ({what})");

        // Incremental decoding (the causal mask with tokens already cached): the plain model in two pieces
        // against the tracked model's full forward.
        if pos > 2 {
            let split = pos / 2;
            let mut kv = KvCache::new();
            let t = |ts: &[u32]| Tensor::from_slice(ts, (1, ts.len()), &Device::Cpu).unwrap();
            plain.forward_cached(&t(&tokens[..split]), &mut kv, &mut HookSet::none()).unwrap();
            let rest = plain.forward_cached(&t(&tokens[split..]), &mut kv, &mut HookSet::none()).unwrap();
            let want_rest = want.narrow(1, split, pos - split).unwrap();
            assert_near(&format!("cached decoding ({what})"), &rest, &want_rest);
        }
    }
}

pub fn cnn_fast_paths_match_candles_ops() {
    let mut cfg = VisionConfig::mnist();
    for (image_size, channels, pool) in
        [(28, vec![8, 16, 32], vec![true, true, true]), (9, vec![3, 5], vec![false, true])]
    {
        cfg.image_size = image_size;
        cfg.channels = channels;
        cfg.pool = pool;
        let mut rng = Rng::new(image_size as u64);
        let (tracked, vars) = Cnn::init(cfg.clone(), &mut rng).unwrap();
        randomise(&vars, &mut rng);
        let map: HashMap<String, Tensor> = tracked.to_tensors().unwrap().into_iter().collect();
        let plain = Cnn::from_tensors(cfg.clone(), map).unwrap();
        let pixels: Vec<f32> = (0..2 * image_size * image_size).map(|_| rng.uniform()).collect();
        let x = glassbox::lens::cnn::model::images_tensor(&cfg, &pixels, 2).unwrap();
        let (want, want_cache) = tracked.run_with_cache(&x).unwrap();
        let (got, got_cache) = plain.run_with_cache(&x).unwrap();
        assert_near(&format!("cnn logits ({image_size})"), &got, &want);
        for ((h, g), (h2, w)) in got_cache.entries.iter().zip(&want_cache.entries) {
            assert_eq!(h, h2);
            assert_near(&format!("cnn {h} ({image_size})"), g, w);
        }
    }
}
