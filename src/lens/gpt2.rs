//! GPT-2-style language models: the word-level induction model and the Moby-Dick character model.
//!
//! - `config`: `Gpt2Config`, the Hugging Face `config.json` plus our `attn_only` key.
//! - `model`: `Transformer` (Hugging Face names on disk, every activation through a `HookSet`), `KvCache`
//!   and `per_position_loss`.
//! - `hooks`: `Hook` (the TransformerLens hook points), `ActivationCache`, `Intervention` with `Op`, `HookSet`.
//! - `generate`: sampling and generation, in one go or a few tokens per step.
//! - `open`: a folder a student brings: which file is which, and its weights read a piece at a time.
//! - `tokenizer`: an opened model's own tokenizer (Hugging Face's `tokenizers`) and its worker's messages.
//! - `hf`: the tokenizer files Hugging Face readers need (`tokenizer.json`, `tokenizer_config.json`).
//! - `vocab`: the word-level vocabulary of the induction model.
//! - `text`: the character vocabulary of the Moby-Dick model and its corpus split.
//! - `train`: the training loops (induction task, language modelling) and the held-out loss.
pub mod config;
pub mod generate;
pub mod hf;
pub mod hooks;
pub mod model;
pub mod open;
pub mod text;
pub mod tokenizer;
pub mod train;
pub mod vocab;

pub use config::Gpt2Config;
pub use hooks::{ActivationCache, Hook, HookSet, Intervention, Op};
pub use model::{per_position_loss, KvCache, Pass, RandomInit, SplitAttention, Stepped, Transformer};
