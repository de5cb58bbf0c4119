//! What every lab uses, and nothing that names a lab. `url` and `format` are plain Rust (tested natively);
//! the rest needs the browser.
pub mod format;
pub mod url;

#[cfg(target_arch = "wasm32")]
pub mod browser;
#[cfg(target_arch = "wasm32")]
pub mod charts;
#[cfg(target_arch = "wasm32")]
pub mod frame;
#[cfg(target_arch = "wasm32")]
pub mod jobs;
#[cfg(target_arch = "wasm32")]
pub mod load;
#[cfg(target_arch = "wasm32")]
pub mod probes;
#[cfg(target_arch = "wasm32")]
pub mod trainer;
#[cfg(target_arch = "wasm32")]
pub mod worker;
