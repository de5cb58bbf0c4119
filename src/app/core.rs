//! What every lab uses, and nothing that names a lab. `url`, `format`, `kept`'s manifest, `keys`, `models`, `own_text`, `progress`, `slices`, `theme`, the geometry of `charts` and
//! `trainer`'s rules are plain Rust (tested natively); the rest needs the browser.
pub mod charts;
pub mod export;
pub mod format;
pub mod kept;
pub mod keys;
pub mod models;
pub mod offline;
pub mod own_text;
pub mod presenter;
pub mod progress;
pub mod slices;
pub mod theme;
pub mod url;

/// The toy labs' training: in the browser all of `trainer.rs`; natively only its plain rules, which the labs'
/// plain modules use and the native tests check.
#[cfg(target_arch = "wasm32")]
pub mod trainer;
#[cfg(not(target_arch = "wasm32"))]
pub mod trainer {
    mod rules;
    pub use rules::*;
}

#[cfg(target_arch = "wasm32")]
pub mod browser;
#[cfg(target_arch = "wasm32")]
pub mod frame;
#[cfg(target_arch = "wasm32")]
pub mod jobs;
#[cfg(target_arch = "wasm32")]
pub mod load;
#[cfg(target_arch = "wasm32")]
pub mod opened;
#[cfg(target_arch = "wasm32")]
pub mod predict;
#[cfg(target_arch = "wasm32")]
pub mod probes;
#[cfg(target_arch = "wasm32")]
pub mod service_worker;
#[cfg(target_arch = "wasm32")]
pub mod warm;
#[cfg(target_arch = "wasm32")]
pub mod worker;
