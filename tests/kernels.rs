//! The fast kernels (`glassbox_kernels`) against their plain references, natively; tests/web.rs runs the same
//! checks (tests/common/kernel_checks.rs) in Chromium, where the kernels are simd128 code. Then whole models:
//! the forward paths that use the kernels (plain tensors) against candle's differentiable ops (the same weights
//! as autograd variables), every activation compared.
#![cfg(not(target_arch = "wasm32"))]

#[path = "common/kernel_checks.rs"]
mod kernel_checks;

#[path = "common/kernel_models.rs"]
mod kernel_models;

#[test]
fn exp_is_accurate_over_its_range() {
    kernel_checks::exp_is_accurate_over_its_range();
}

#[test]
fn sigmoid_and_gelu_match_the_f64_formulas() {
    kernel_checks::sigmoid_and_gelu_match_the_f64_formulas();
}

#[test]
fn gelu_matches_the_candle_ops() {
    kernel_checks::gelu_matches_the_candle_ops();
}

#[test]
fn softmax_matches_candle_with_masks_and_edges() {
    kernel_checks::softmax_matches_candle_with_masks_and_edges();
}

#[test]
fn row_statistics_match_f64() {
    kernel_checks::row_statistics_match_f64();
}

#[test]
fn layer_norm_matches_candle() {
    kernel_checks::layer_norm_matches_candle();
}

#[test]
fn bias_add_and_causal_mask_are_bit_exact() {
    kernel_checks::bias_add_and_causal_mask_are_bit_exact();
}

#[test]
fn fused_causal_softmax_is_the_two_steps() {
    kernel_checks::fused_causal_softmax_is_the_two_steps();
}

#[test]
fn conv2d_matches_candle() {
    kernel_checks::conv2d_matches_candle();
}

#[test]
fn max_pool2_matches_candle() {
    kernel_checks::max_pool2_matches_candle();
}

#[test]
fn backward_kernels_match_references() {
    kernel_checks::backward_kernels_match_references();
}

#[test]
fn transformer_backward_kernels_match_f64() {
    kernel_checks::transformer_backward_kernels_match_f64();
}

#[test]
fn dot_and_axpy_match_references() {
    kernel_checks::dot_and_axpy_match_references();
}

#[test]
fn matmul_matches_f64() {
    kernel_checks::matmul_matches_f64();
}

#[test]
fn fast_matmul_matches_candle() {
    kernel_checks::fast_matmul_matches_candle();
}

#[test]
fn attention_products_match_candle() {
    kernel_checks::attention_products_match_candle();
}

#[test]
fn transformer_fast_paths_match_candles_ops() {
    kernel_models::transformer_fast_paths_match_candles_ops();
}

#[test]
fn cnn_fast_paths_match_candles_ops() {
    kernel_models::cnn_fast_paths_match_candles_ops();
}
