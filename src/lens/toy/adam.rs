//! Adam (Kingma & Ba 2015) on one flat parameter buffer, with no allocation per step.
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    /// Steps taken, for the bias correction.
    t: i32,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

impl Adam {
    pub fn new(len: usize) -> Self {
        Adam { m: vec![0.0; len], v: vec![0.0; len], t: 0 }
    }

    /// One descent step: `params -= lr * m̂ / (sqrt(v̂) + eps)`.
    pub fn step(&mut self, lr: f32, params: &mut [f32], grads: &[f32]) {
        debug_assert_eq!(params.len(), self.m.len());
        debug_assert_eq!(grads.len(), self.m.len());
        self.t = self.t.saturating_add(1);
        let c1 = 1.0 / (1.0 - BETA1.powi(self.t));
        let c2 = 1.0 / (1.0 - BETA2.powi(self.t));
        for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(&mut self.m).zip(&mut self.v) {
            *m = BETA1 * *m + (1.0 - BETA1) * g;
            *v = BETA2 * *v + (1.0 - BETA2) * g * g;
            *p -= lr * (*m * c1) / ((*v * c2).sqrt() + EPS);
        }
    }
}
