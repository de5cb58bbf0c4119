//! One error type for the engine, with messages a student can act on.
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LensError {
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("the model's config.json could not be read: {0}")]
    Config(String),
    #[error("the model's weights could not be read: {0}")]
    Weights(String),
    #[error("the vocabulary could not be read: {0}")]
    Vocab(String),
    #[error("the data file could not be read: {0}")]
    Data(String),
    #[error("{0}")]
    Input(String),
    #[error("unknown hook name `{0}`")]
    UnknownHook(String),
}

pub type Result<T> = std::result::Result<T, LensError>;
