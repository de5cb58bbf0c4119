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
    /// A computed result (a gradient) came out NaN or infinite: a run that diverged, which a caller may report as
    /// such rather than as an error. Names what it was.
    #[error("{0} contains NaN or infinite values")]
    NotFinite(String),
    #[error("unknown hook name `{0}`")]
    UnknownHook(String),
}

pub type Result<T> = std::result::Result<T, LensError>;
