//! The matrix product as the browser's relaxed-SIMD build runs it (`f32x4.relaxed_madd`, the `relaxed-simd`
//! feature), in headless Chromium, against the same f64 check as the plain build (tests/common/matmul_checks.rs,
//! which tests/kernels.rs and tests/web.rs run on the plain kernel). Run by .ci/test:
//!
//!     source .ci/env.sh
//!     CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!       cargo test -p glassbox-kernels --target wasm32-unknown-unknown --features relaxed-simd --test web_relaxed
#![cfg(target_arch = "wasm32")]

#[cfg(not(feature = "relaxed-simd"))]
compile_error!("run with `--features relaxed-simd`: without it this test would check the plain kernel");

use wasm_bindgen_test::*;

#[path = "../../tests/common/matmul_checks.rs"]
mod matmul_checks;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn relaxed_matmul_matches_f64() {
    matmul_checks::matmul_matches_f64();
}

#[wasm_bindgen_test]
fn relaxed_gemm_matches_f64() {
    matmul_checks::gemm_matches_f64();
}

#[wasm_bindgen_test]
fn relaxed_gemm_causal_is_gemm_where_read() {
    matmul_checks::gemm_causal_is_gemm_where_read();
}
