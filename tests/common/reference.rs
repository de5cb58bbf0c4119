//! An independent computation of the engine's forward pass, shared by the native tests (`tests/engine.rs`,
//! `tests/fixtures.rs`) and the in-browser tests (`tests/web.rs`): a plain-loop GPT-2 forward written from the
//! Hugging Face definition (Conv1D weights `[in, out]`, pre-LayerNorm, causal softmax attention, gelu_new MLP),
//! run on the same weights. It uses no tensor library, only `Vec<f32>` and loops, so it cannot share a bug
//! with candle or with the engine.
//!
//! Included with `#[path = "common/reference.rs"] mod reference;`; not every test crate uses every item.
#![allow(dead_code)]
use std::collections::HashMap;

use candle_core::{Device, Tensor};
use glassbox::lens::rng::Rng;
use glassbox::lens::{Gpt2Config, Transformer};

pub type Mat = Vec<Vec<f32>>;

/// Weights as plain vectors, by Hugging Face name.
pub struct Ref {
    pub cfg: Gpt2Config,
    pub w: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

/// What the reference can change, to check interventions: zero one head's z in one layer, add a vector to resid_pre.
#[derive(Default, Clone)]
pub struct RefEdit {
    pub zero_head: Option<(usize, usize)>,
    pub add_resid_pre: Option<(usize, Vec<f32>)>,
    pub zero_attn_out: bool,
}

impl Ref {
    /// The reference on a loaded model's weights, copied out as plain vectors under their Hugging Face names.
    pub fn from_model(model: &Transformer) -> Ref {
        let w = model
            .to_tensors()
            .unwrap()
            .into_iter()
            .map(|(name, t)| (name, (t.dims().to_vec(), t.flatten_all().unwrap().to_vec1::<f32>().unwrap())))
            .collect();
        Ref { cfg: model.cfg.clone(), w }
    }

    fn get(&self, name: &str) -> &Vec<f32> {
        &self.w[name].1
    }
    /// y[i][o] = sum_k x[i][k] W[k][o] + b[o], W stored row-major [in, out].
    fn conv1d(&self, x: &Mat, w: &str, b: &str) -> Mat {
        let (shape, wv) = &self.w[w];
        let (din, dout) = (shape[0], shape[1]);
        let bv = self.get(b);
        x.iter()
            .map(|row| (0..dout).map(|o| bv[o] + (0..din).map(|k| row[k] * wv[k * dout + o]).sum::<f32>()).collect())
            .collect()
    }
    fn layer_norm(&self, x: &Mat, w: &str, b: &str) -> Mat {
        let (wv, bv) = (self.get(w), self.get(b));
        let eps = self.cfg.layer_norm_epsilon as f32;
        x.iter()
            .map(|row| {
                let n = row.len() as f32;
                let mean = row.iter().sum::<f32>() / n;
                let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
                let sd = (var + eps).sqrt();
                row.iter().enumerate().map(|(i, v)| (v - mean) / sd * wv[i] + bv[i]).collect()
            })
            .collect()
    }
    fn add(a: &Mat, b: &Mat) -> Mat {
        a.iter().zip(b).map(|(x, y)| x.iter().zip(y).map(|(p, q)| p + q).collect()).collect()
    }
    fn gelu_new(x: f32) -> f32 {
        0.5 * x * (1.0 + ((2.0 / std::f32::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
    }

    /// Returns (logits [pos][vocab], patterns [layer][head][q][k]).
    pub fn forward(&self, tokens: &[u32], edit: &RefEdit) -> (Mat, Vec<Vec<Mat>>) {
        let c = &self.cfg;
        let (d, nh, dh, v) = (c.n_embd, c.n_head, c.n_embd / c.n_head, c.vocab_size);
        let n = tokens.len();
        let wte = self.get("transformer.wte.weight");
        let wpe = self.get("transformer.wpe.weight");
        let mut x: Mat =
            (0..n).map(|p| (0..d).map(|i| wte[tokens[p] as usize * d + i] + wpe[p * d + i]).collect()).collect();
        let mut patterns = Vec::new();
        for l in 0..c.n_layer {
            if let Some((layer, add)) = &edit.add_resid_pre {
                if *layer == l {
                    for row in x.iter_mut() {
                        for (a, b) in row.iter_mut().zip(add) {
                            *a += b;
                        }
                    }
                }
            }
            let h = |s: &str| format!("transformer.h.{l}.{s}");
            let ln = self.layer_norm(&x, &h("ln_1.weight"), &h("ln_1.bias"));
            let qkv = self.conv1d(&ln, &h("attn.c_attn.weight"), &h("attn.c_attn.bias"));
            let mut z: Mat = vec![vec![0.0; d]; n];
            let mut layer_patterns = Vec::new();
            for head in 0..nh {
                let q = |p: usize, i: usize| qkv[p][head * dh + i];
                let k = |p: usize, i: usize| qkv[p][d + head * dh + i];
                let val = |p: usize, i: usize| qkv[p][2 * d + head * dh + i];
                let mut pat = vec![vec![0.0f32; n]; n];
                for qp in 0..n {
                    let scores: Vec<f32> = (0..=qp)
                        .map(|kp| (0..dh).map(|i| q(qp, i) * k(kp, i)).sum::<f32>() / (dh as f32).sqrt())
                        .collect();
                    let m = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
                    let sum: f32 = e.iter().sum();
                    for kp in 0..=qp {
                        pat[qp][kp] = e[kp] / sum;
                    }
                    if edit.zero_head == Some((l, head)) {
                        continue;
                    }
                    for i in 0..dh {
                        z[qp][head * dh + i] = (0..=qp).map(|kp| pat[qp][kp] * val(kp, i)).sum();
                    }
                }
                layer_patterns.push(pat);
            }
            patterns.push(layer_patterns);
            let attn_out = self.conv1d(&z, &h("attn.c_proj.weight"), &h("attn.c_proj.bias"));
            if !edit.zero_attn_out {
                x = Self::add(&x, &attn_out);
            }
            if !c.attn_only {
                let ln2 = self.layer_norm(&x, &h("ln_2.weight"), &h("ln_2.bias"));
                let pre = self.conv1d(&ln2, &h("mlp.c_fc.weight"), &h("mlp.c_fc.bias"));
                let post: Mat = pre.iter().map(|r| r.iter().map(|&a| Self::gelu_new(a)).collect()).collect();
                x = Self::add(&x, &self.conv1d(&post, &h("mlp.c_proj.weight"), &h("mlp.c_proj.bias")));
            }
        }
        let lnf = self.layer_norm(&x, "transformer.ln_f.weight", "transformer.ln_f.bias");
        let head_name = if c.tie_word_embeddings { "transformer.wte.weight" } else { "lm_head.weight" };
        let lm = self.get(head_name);
        let logits =
            lnf.iter().map(|row| (0..v).map(|t| (0..d).map(|i| row[i] * lm[t * d + i]).sum()).collect()).collect();
        (logits, patterns)
    }
}

/// A model with every weight random (LayerNorm weights and biases too, so their affine part is exercised):
/// vocab 37, context 16, d_model 24, 2 layers, 3 heads, d_mlp 40.
pub fn random_model(attn_only: bool, seed: u64) -> (Transformer, Ref) {
    let mut cfg = Gpt2Config::new(37, 16, 24, 2, 3, attn_only);
    cfg.n_inner = Some(40);
    let mut rng = Rng::new(seed);
    let mut map = HashMap::new();
    let mut w = HashMap::new();
    for (name, shape) in glassbox::lens::gpt2::model::weight_shapes(&cfg) {
        let n: usize = shape.iter().product();
        let zero_mlp = attn_only && (name.contains(".mlp.") || name.contains(".ln_2."));
        let data: Vec<f32> = (0..n)
            .map(|_| {
                if zero_mlp {
                    0.0
                } else if name.contains("ln_") && name.ends_with("weight") {
                    1.0 + 0.3 * rng.normal()
                } else {
                    0.3 * rng.normal()
                }
            })
            .collect();
        map.insert(name.clone(), Tensor::from_vec(data.clone(), shape.clone(), &Device::Cpu).unwrap());
        w.insert(name, (shape, data));
    }
    (Transformer::from_tensors(cfg.clone(), map).unwrap(), Ref { cfg, w })
}

/// The largest absolute difference between two equally long slices; NaN if either side has a NaN where the
/// other does not (so that a NaN can never pass a tolerance check).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| if x == y { 0.0 } else { (x - y).abs() }).fold(0.0f32, |m, d| {
        if d.is_nan() || m.is_nan() {
            f32::NAN
        } else {
            m.max(d)
        }
    })
}

pub fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let worst = max_abs_diff(a, b);
    assert!(worst <= tol, "{what}: max abs difference {worst} > {tol}");
}

pub fn logits_vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// The token sequence the engine-versus-reference tests use on `random_model` (vocab 37, context 16).
pub const TOKENS: [u32; 11] = [0, 5, 9, 36, 5, 9, 1, 2, 3, 30, 12];
