//! The app's entry point: mounts the Leptos app in the browser, and nothing else.
#[cfg(target_arch = "wasm32")]
fn main() {
    glassbox::app::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("glassbox is a browser app: build and serve it with `bash .ci/serve` (see README.md).");
    eprintln!("Native commands: `cargo run --release --bin train`, `cargo run --release --bin bench`.");
}
