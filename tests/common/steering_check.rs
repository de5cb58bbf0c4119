//! The steering target, shared by the native test (`tests/moby_model.rs`) and the same check in
//! headless Chromium (`tests/web.rs`): the default pair at its default layer and coefficient, 500 characters
//! with and without steering from one prompt and one seed.
use glassbox::lens::gpt2::generate::{generate, SampleSettings};
use glassbox::lens::gpt2::text::CharVocab;
use glassbox::lens::methods::steering::PAIRS;
use glassbox::lens::Transformer;

/// The prompt both generations start from.
pub const PROMPT: &str = "It was a clear steel-blue day. The firmaments of air and sea were hardly separable";

/// Asserts that the default pair at least doubles the rate of what it targets (with a floor of 0.5 % for an
/// unsteered rate near zero), and returns the unsteered and steered texts for the caller to print.
pub fn assert_default_pair_doubles_its_rate(model: &Transformer, vocab: &CharVocab) -> (String, String) {
    let pair = &PAIRS[0];
    let vector = pair.steering_vector(model, vocab).unwrap();
    let prompt = vocab.encode(PROMPT).unwrap();
    let settings = SampleSettings { temperature: 0.8, top_k: 0, seed: 11 };
    let plain = vocab.decode(&generate(model, &prompt, 500, &settings, &[]).unwrap().tokens);
    let steered = vocab.decode(
        &generate(model, &prompt, 500, &settings, &[vector.intervention(pair.coefficient).unwrap()]).unwrap().tokens,
    );
    let (a, b) = (pair.rate(&plain), pair.rate(&steered));
    assert!(
        b >= 2.0 * a.max(0.005),
        "steering moved the {} rate from {a} to {b} ({}, {})",
        pair.measure_name,
        pair.name,
        vector.hook
    );
    (plain, steered)
}
