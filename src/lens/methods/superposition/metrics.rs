//! The geometry of a toy model's W: how strongly each feature is represented, how much it collides with
//! the others, and, in two hidden dimensions, the polygon the features form.
//!
//! Every function takes W column-major (`w[i * m + k]`, see the module doc of `toy`), so each is checkable
//! on a hand-made matrix.
use serde::{Deserialize, Serialize};

use crate::lens::toy::model::ToySnapshot;

/// A feature counts as represented when its column's norm exceeds this (a learned feature's is close to 1,
/// an ignored one's close to 0).
pub const REPRESENTED_NORM: f32 = 0.5;

fn column(w: &[f32], m: usize, i: usize) -> &[f32] {
    &w[i * m..(i + 1) * m]
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// ||W_i|| for every feature.
pub fn feature_norms(w: &[f32], m: usize) -> Vec<f32> {
    w.chunks_exact(m).map(|c| dot(c, c).sqrt()).collect()
}

/// Interference (the paper's superposition measure) of each feature: Σ_{j≠i} (Ŵ_i · W_j)², where Ŵ_i is
/// W_i scaled to length 1. Near 0: the feature has its own direction; near 1 or more: other features share
/// it. A zero column has no direction and gets 0.
pub fn interference(w: &[f32], m: usize) -> Vec<f32> {
    let n = w.len() / m;
    let norms = feature_norms(w, m);
    (0..n)
        .map(|i| {
            if norms[i] == 0.0 {
                return 0.0;
            }
            (0..n).filter(|&j| j != i).map(|j| (dot(column(w, m, i), column(w, m, j)) / norms[i]).powi(2)).sum()
        })
        .collect()
}

/// The paper's feature dimensionality D_i = ||W_i||² / Σ_j (Ŵ_i · W_j)² (the sum includes j = i): 1 for a
/// feature with a dimension of its own, 1/2 for each of an antipodal pair, 2/5 for a pentagon's corners.
pub fn feature_dimensionality(w: &[f32], m: usize) -> Vec<f32> {
    let norms = feature_norms(w, m);
    norms.iter().zip(interference(w, m)).map(|(&nm, i)| if nm == 0.0 { 0.0 } else { nm * nm / (nm * nm + i) }).collect()
}

/// WᵀW, n x n row-major: entry (i, j) is W_i · W_j.
pub fn gram(w: &[f32], m: usize) -> Vec<f32> {
    let n = w.len() / m;
    let mut g = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            g[i * n + j] = dot(column(w, m, i), column(w, m, j));
        }
    }
    g
}

/// How many features are represented (norm above `REPRESENTED_NORM`).
pub fn represented_count(norms: &[f32]) -> usize {
    norms.iter().filter(|&&v| v > REPRESENTED_NORM).count()
}

/// An angle in [0, 360): `rem_euclid` alone can round a tiny negative angle up to exactly 360.
fn wrap360(deg: f32) -> f32 {
    let a = deg.rem_euclid(360.0);
    if a >= 360.0 {
        0.0
    } else {
        a
    }
}

/// For m = 2: the angle of each column in degrees, in [0, 360), counter-clockwise from the first hidden axis.
pub fn angles_2d(w: &[f32]) -> Vec<f32> {
    w.chunks_exact(2).map(|c| wrap360(c[1].atan2(c[0]).to_degrees())).collect()
}

/// The angle from one represented feature to the next, going counter-clockwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AngleGap {
    pub from: usize,
    pub to: usize,
    pub degrees: f32,
}

/// For m = 2: the represented features in angular order, and the gap from each to the next (the last wraps
/// around to the first). The gaps add up to 360°; a regular pentagon has five gaps of 72°. Fewer than two
/// represented features have no gaps.
pub fn angular_gaps(w: &[f32]) -> Vec<AngleGap> {
    let norms = feature_norms(w, 2);
    let angles = angles_2d(w);
    let mut order: Vec<usize> = (0..norms.len()).filter(|&i| norms[i] > REPRESENTED_NORM).collect();
    if order.len() < 2 {
        return vec![];
    }
    order.sort_by(|&a, &b| angles[a].total_cmp(&angles[b]).then(a.cmp(&b)));
    (0..order.len())
        .map(|k| {
            let (from, to) = (order[k], order[(k + 1) % order.len()]);
            AngleGap { from, to, degrees: wrap360(angles[to] - angles[from]) }
        })
        .collect()
}

/// Everything the lab shows about one W, computed from a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToyMetrics {
    pub norms: Vec<f32>,
    pub interference: Vec<f32>,
    pub dimensionality: Vec<f32>,
    /// WᵀW, n x n row-major.
    pub gram: Vec<f32>,
    pub b: Vec<f32>,
    pub represented: usize,
    /// m divided by the squared Frobenius norm of W: the paper's "dimensions per feature" (none when W = 0).
    pub dims_per_feature: Option<f32>,
    /// Only when m = 2.
    pub angles: Option<Vec<f32>>,
    pub gaps: Option<Vec<AngleGap>>,
}

impl ToyMetrics {
    pub fn of(s: &ToySnapshot) -> Self {
        let m = s.config.n_hidden;
        let norms = feature_norms(&s.w, m);
        let frob: f32 = s.w.iter().map(|v| v * v).sum();
        ToyMetrics {
            represented: represented_count(&norms),
            interference: interference(&s.w, m),
            dimensionality: feature_dimensionality(&s.w, m),
            gram: gram(&s.w, m),
            b: s.b.clone(),
            dims_per_feature: (frob > 0.0).then(|| m as f32 / frob),
            angles: (m == 2).then(|| angles_2d(&s.w)),
            gaps: (m == 2).then(|| angular_gaps(&s.w)),
            norms,
        }
    }
}
