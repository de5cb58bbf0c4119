//! The model config, stored as a Hugging Face GPT-2 `config.json` so that `transformers` and
//! TransformerLens read the same folder unchanged.
use serde::{Deserialize, Serialize};

use crate::lens::{LensError, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    #[serde(default = "gpt2")]
    pub model_type: String,
    #[serde(default = "architectures")]
    pub architectures: Vec<String>,
    pub vocab_size: usize,
    /// Context length: the number of learned position embeddings.
    pub n_positions: usize,
    /// d_model.
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// d_mlp; GPT-2 takes null to mean 4 * d_model.
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "gelu_new")]
    pub activation_function: String,
    #[serde(default = "eps")]
    pub layer_norm_epsilon: f64,
    /// When false the unembedding is its own matrix (`lm_head.weight`), not the token embedding.
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    #[serde(default = "yes")]
    pub scale_attn_weights: bool,
    /// Our own key, ignored by other readers: the MLP weights are stored as zeros (so every GPT-2
    /// reader computes the same function) and the engine skips the MLP entirely.
    #[serde(default)]
    pub attn_only: bool,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    #[serde(default)]
    pub n_ctx: Option<usize>,
    #[serde(default = "zero")]
    pub resid_pdrop: f64,
    #[serde(default = "zero")]
    pub embd_pdrop: f64,
    #[serde(default = "zero")]
    pub attn_pdrop: f64,
}

fn gpt2() -> String {
    "gpt2".into()
}
fn architectures() -> Vec<String> {
    vec!["GPT2LMHeadModel".into()]
}
fn gelu_new() -> String {
    "gelu_new".into()
}
fn eps() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}
fn zero() -> f64 {
    0.0
}

/// The largest config `Gpt2Config::validate` accepts, per key.
pub const MAX_LAYERS: usize = 256;
pub const MAX_HEADS: usize = 256;
pub const MAX_WIDTH: usize = 16_384;
pub const MAX_VOCAB: usize = 1 << 20;
pub const MAX_POSITIONS: usize = 8_192;

impl Gpt2Config {
    pub fn new(
        vocab_size: usize,
        n_positions: usize,
        d_model: usize,
        n_layer: usize,
        n_head: usize,
        attn_only: bool,
    ) -> Self {
        Gpt2Config {
            model_type: gpt2(),
            architectures: architectures(),
            vocab_size,
            n_positions,
            n_embd: d_model,
            n_layer,
            n_head,
            n_inner: None,
            activation_function: gelu_new(),
            layer_norm_epsilon: eps(),
            tie_word_embeddings: false,
            scale_attn_weights: true,
            attn_only,
            bos_token_id: Some(0),
            eos_token_id: Some(0),
            n_ctx: Some(n_positions),
            resid_pdrop: 0.0,
            embd_pdrop: 0.0,
            attn_pdrop: 0.0,
        }
    }

    pub fn d_model(&self) -> usize {
        self.n_embd
    }
    pub fn d_head(&self) -> usize {
        self.n_embd / self.n_head
    }
    pub fn d_mlp(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let c: Gpt2Config = serde_json::from_str(text).map_err(|e| LensError::Config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serialises")
    }

    /// Rejects configs the engine cannot run, with the reason.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LensError::Config(m));
        if self.model_type != "gpt2" {
            return bad(format!("model_type is `{}`, expected `gpt2`", self.model_type));
        }
        if self.n_embd == 0 || self.n_head == 0 || self.n_layer == 0 || self.vocab_size == 0 || self.n_positions == 0 {
            return bad("n_embd, n_head, n_layer, vocab_size and n_positions must all be positive".into());
        }
        // Upper bounds, checked before anything is allocated from these numbers (a layer list, the causal mask of
        // n_positions² floats): far above GPT-2's largest (48 layers, 1,600 wide, 50,257 words, 1,024
        // positions), far below what would exhaust memory on a mistyped or tampered file.
        for (key, value, max) in [
            ("n_layer", self.n_layer, MAX_LAYERS),
            ("n_head", self.n_head, MAX_HEADS),
            ("n_embd", self.n_embd, MAX_WIDTH),
            ("n_inner", self.n_inner.unwrap_or(0), 4 * MAX_WIDTH),
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("n_positions", self.n_positions, MAX_POSITIONS),
        ] {
            if value > max {
                return bad(format!("{key} is {value}, more than the {max} this playground can run"));
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return bad(format!("n_embd ({}) is not divisible by n_head ({})", self.n_embd, self.n_head));
        }
        if self.activation_function != "gelu_new" {
            return bad(format!("activation_function `{}` is not supported (only gelu_new)", self.activation_function));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_sizes_beyond_the_bounds_before_allocating() {
        // From the fuzz harness (`tests/fuzz.rs`): 2^31 layers made the model builder reserve 192 GiB.
        let mut c = Gpt2Config::new(11, 8, 8, 2, 2, false);
        c.n_layer = 1 << 31;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("n_layer is 2147483648"), "{e}");
        let mut c = Gpt2Config::new(11, 8, 8, 2, 2, false);
        c.n_positions = MAX_POSITIONS + 1;
        assert!(c.validate().unwrap_err().to_string().contains("n_positions"));
        c.n_positions = MAX_POSITIONS;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn round_trips_and_uses_gpt2_keys() {
        let c = Gpt2Config::new(300, 64, 64, 2, 4, true);
        let j = c.to_json();
        for key in [
            "\"model_type\": \"gpt2\"",
            "\"n_embd\": 64",
            "\"n_layer\": 2",
            "\"n_head\": 4",
            "\"n_positions\": 64",
            "\"vocab_size\": 300",
            "\"attn_only\": true",
        ] {
            assert!(j.contains(key), "{key} missing from {j}");
        }
        assert_eq!(Gpt2Config::from_json(&j).unwrap(), c);
        assert_eq!(c.d_head(), 16);
        assert_eq!(c.d_mlp(), 256);
    }

    #[test]
    fn rejects_nonsense() {
        let mut c = Gpt2Config::new(300, 64, 64, 2, 3, true);
        assert!(c.validate().is_err());
        c.n_head = 4;
        c.model_type = "bert".into();
        assert!(c.validate().is_err());
        assert!(Gpt2Config::from_json("{not json").is_err());
    }
}
