//! The app again, built with the `relaxed-simd` feature: the same code, whose matrix products use relaxed SIMD's
//! fused multiply-add (kernels/src/matmul.rs). Engines without relaxed SIMD refuse such a .wasm outright, so the
//! page loads this build only where a probe module with that instruction validates, and the plain `glassbox`
//! build everywhere else (index.html, src/worker/post_build.mjs).
#[cfg(target_arch = "wasm32")]
fn main() {
    glassbox::app::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("glassbox_relaxed is the browser app's relaxed-SIMD build: see README.md.");
}
