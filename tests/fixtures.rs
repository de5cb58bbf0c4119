//! The native numbers that the in-browser tests compare against: `tests/fixtures/induction_native.json`.
//!
//! `GLASSBOX_WRITE_FIXTURES=1 cargo test --test fixtures` rewrites the fixture from the shipped model in
//! `public/models/induction/`. Without the variable this test checks that the native engine still computes the
//! committed numbers (to 1e-5) from the same model files, and fails with the command above when they differ —
//! after retraining the model, or after a change to the engine that moves its numbers.
//!
//! The same holds for the patching fixture `tests/fixtures/ioi_native.json` (`tests/common/patch_fixture.rs`):
//! activation and attribution patching and ACDC on the shipped IOI model; and for the vision fixture
//! `tests/fixtures/mnist_cnn_native.json` (`tests/common/vision_fixture.rs`): the shipped MNIST CNN's logits and
//! input gradients.
use std::path::{Path, PathBuf};

use glassbox::lens::gpt2::vocab::Vocab;
use glassbox::lens::Transformer;

#[path = "common/fixture.rs"]
mod fixture;
#[path = "common/patch_fixture.rs"]
mod patch_fixture;
#[path = "common/reference.rs"]
mod reference;
#[path = "common/vision_fixture.rs"]
mod vision_fixture;

use fixture::{Fixture, ModelId, FIXTURE_PATH, MODEL_DIR, REGENERATE};
use reference::{assert_close, Ref, RefEdit};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!("cannot read {} ({e}); the fixture is made from the shipped model: train it first (cargo run --release --bin train -- induction)", path.display())
    })
}

/// The shipped model, its vocabulary, and the identity of the exact files.
fn shipped() -> (Transformer, Vocab, ModelId) {
    let dir = root().join(MODEL_DIR);
    let config = String::from_utf8(read(&dir.join("config.json"))).unwrap();
    let weights = read(&dir.join("model.safetensors"));
    let vocab_json = String::from_utf8(read(&dir.join("vocab.json"))).unwrap();
    let model = Transformer::from_bytes(&config, &weights).unwrap();
    let vocab = Vocab::from_json(&vocab_json).unwrap();
    (model, vocab, ModelId::of(&config, &weights, &vocab_json))
}

#[test]
fn native_engine_matches_the_committed_fixture() {
    let (model, vocab, id) = shipped();
    let got = fixture::compute(&model, &vocab, id);
    let path = root().join(FIXTURE_PATH);

    if std::env::var_os("GLASSBOX_WRITE_FIXTURES").is_some_and(|v| v == "1") {
        let text = fixture::to_json(&got);
        // What was written must read back as exactly what was computed.
        let back = fixture::from_json(&text);
        fixture::compare(&back, &got, 0.0)
            .unwrap_or_else(|p| panic!("the fixture does not read back exactly:\n{}", p.join("\n")));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        eprintln!("wrote {} ({} bytes)", path.display(), text.len());
        return;
    }

    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {} ({e}); write it with `{REGENERATE}`", path.display()));
    let want: Fixture = fixture::from_json(&text);
    assert!(
        got.model == want.model,
        "STALE FIXTURE: the model files in {MODEL_DIR} are not the ones {FIXTURE_PATH} was written from\n  now:     {:?}\n  fixture: {:?}\nregenerate it with `{REGENERATE}` (and commit it)",
        got.model,
        want.model
    );
    match fixture::compare(&got, &want, 1e-5) {
        Ok(worst) => eprintln!("native vs fixture: max abs difference logits {:e}, patterns {:e}, head scores {:e}", worst[0], worst[1], worst[2]),
        Err(problems) => panic!(
            "STALE FIXTURE: the native engine no longer computes the numbers in {FIXTURE_PATH} (tolerance 1e-5):\n  {}\n\
             if the change is intended, regenerate it with `{REGENERATE}` (and commit it)",
            problems.join("\n  ")
        ),
    }
}

/// The fixture's numbers are right, not just stable: the independent plain-loop forward on the same shipped
/// weights gives the same logits and patterns.
#[test]
fn fixture_agrees_with_the_plain_loop_reference() {
    let (model, vocab, id) = shipped();
    let reference = Ref::from_model(&model);
    let numbers = fixture::compute(&model, &vocab, id);
    for s in &numbers.sequences {
        let (logits, patterns) = reference.forward(&s.tokens, &RefEdit::default());
        assert_close(&s.logits, &logits.concat(), 1e-4, &format!("`{}` logits", s.name));
        for (l, layer) in s.patterns.iter().enumerate() {
            for (h, p) in layer.iter().enumerate() {
                assert_close(p, &patterns[l][h].concat(), 1e-4, &format!("`{}` pattern L{l}H{h}", s.name));
            }
        }
    }
    // The long sequence fills the context and repeats; the short one is the typed text.
    assert_eq!(numbers.sequences[0].tokens.len(), model.cfg.n_positions);
    assert_eq!(numbers.sequences[1].tokens.len(), 1 + fixture::SHORT_TEXT.split_whitespace().count());
}

#[test]
fn native_vision_engine_matches_the_committed_fixture() {
    use glassbox::lens::cnn::{Cnn, Samples};
    use vision_fixture::{VisionFixture, VisionModelId, VISION_FIXTURE_PATH, VISION_MODEL_DIR};
    let dir = root().join(VISION_MODEL_DIR);
    let config = String::from_utf8(read(&dir.join("config.json"))).unwrap();
    let weights = read(&dir.join("model.safetensors"));
    let samples_bytes = read(&dir.join("samples.bin"));
    let model = Cnn::from_bytes(&config, &weights).unwrap();
    let samples = Samples::from_bytes(&samples_bytes).unwrap();
    // The fixture is written from candle's autograd; the hand-written backward pass is checked against it below.
    let id = VisionModelId::of(&config, &weights, &samples_bytes);
    let got = vision_fixture::compute_with(&model, &samples, id.clone(), true);
    let path = root().join(VISION_FIXTURE_PATH);

    if std::env::var_os("GLASSBOX_WRITE_FIXTURES").is_some_and(|v| v == "1") {
        let text = serde_json::to_string(&got).unwrap();
        let back: VisionFixture = serde_json::from_str(&text).unwrap();
        vision_fixture::compare(&back, &got, 0.0)
            .unwrap_or_else(|p| panic!("the fixture does not read back exactly:\n{}", p.join("\n")));
        std::fs::write(&path, &text).unwrap();
        eprintln!("wrote {} ({} bytes)", path.display(), text.len());
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {} ({e}); write it with `{REGENERATE}`", path.display()));
    let want: VisionFixture = serde_json::from_str(&text).unwrap();
    assert!(
        got.model == want.model,
        "STALE FIXTURE: the files in {VISION_MODEL_DIR} are not the ones {VISION_FIXTURE_PATH} was written from\n  now:     {:?}\n  fixture: {:?}\nregenerate it with `{REGENERATE}` (and commit it)",
        got.model,
        want.model
    );
    // Gradients must be substantial for the comparison to mean anything.
    assert!(got.cases.iter().all(|c| c.gradient.iter().any(|g| g.abs() > 1e-3)), "a fixture gradient is all but zero");
    match vision_fixture::compare(&got, &want, 1e-5) {
        Ok(w) => eprintln!("native vs vision fixture: max abs difference logits {:e}, values {:e}, gradients {:e}", w[0], w[1], w[2]),
        Err(problems) => panic!("STALE FIXTURE: {VISION_FIXTURE_PATH} (tolerance 1e-5):\n  {}\nif intended, regenerate it with `{REGENERATE}`", problems.join("\n  ")),
    }
    let hand = vision_fixture::compute(&model, &samples, id);
    if let Err(problems) = vision_fixture::compare(&hand, &want, 1e-5) {
        panic!("the hand-written backward pass differs from the autograd fixture:\n  {}", problems.join("\n  "));
    }
}

#[test]
fn native_patching_and_acdc_match_the_committed_fixture() {
    use patch_fixture::{PatchFixture, FIXTURE_PATH as PATCH_FIXTURE, MODEL_DIR as IOI_DIR};
    let dir = root().join(IOI_DIR);
    let config = String::from_utf8(read(&dir.join("config.json"))).unwrap();
    let weights = read(&dir.join("model.safetensors"));
    let vocab_json = String::from_utf8(read(&dir.join("vocab.json"))).unwrap();
    let model = Transformer::from_bytes(&config, &weights).unwrap();
    let vocab = Vocab::from_json(&vocab_json).unwrap();
    let files = [config.as_bytes(), weights.as_slice(), vocab_json.as_bytes()].map(fixture::fnv1a64);
    let got = patch_fixture::compute(&model, &vocab, files);
    let path = root().join(PATCH_FIXTURE);

    if std::env::var_os("GLASSBOX_WRITE_FIXTURES").is_some_and(|v| v == "1") {
        let text = serde_json::to_string(&got).unwrap();
        let back: PatchFixture = serde_json::from_str(&text).unwrap();
        assert_eq!(back, got, "the fixture does not read back exactly");
        std::fs::write(&path, &text).unwrap();
        eprintln!("wrote {} ({} bytes)", path.display(), text.len());
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {} ({e}); write it with `{REGENERATE}`", path.display()));
    let want: PatchFixture = serde_json::from_str(&text).unwrap();
    let ids = |f: &PatchFixture| [f.config_fnv1a64.clone(), f.safetensors_fnv1a64.clone(), f.vocab_fnv1a64.clone()];
    assert!(
        ids(&got) == ids(&want),
        "STALE FIXTURE: the files in {IOI_DIR} are not the ones {PATCH_FIXTURE} was written from; regenerate it with \
         `{REGENERATE}` (and commit it)"
    );
    // The maps must hold real effects for the comparison to mean anything: in both directions, some head's output
    // moves the logit difference by more than half its range.
    let strong =
        |m: &&patch_fixture::Map| m.target == "attn_head_out_all_pos" && m.values.iter().any(|v| v.abs() > 0.5);
    assert_eq!(got.real.iter().filter(strong).count(), 2, "the head-output maps are all but zero");
    match patch_fixture::compare(&got, &want, 1e-5) {
        Ok(worst) => eprintln!("native vs patching fixture: largest difference {worst:e}"),
        Err(problems) => panic!(
            "STALE FIXTURE: the native engine no longer computes the numbers in {PATCH_FIXTURE} (tolerance 1e-5):\n  {}\n\
             if the change is intended, regenerate it with `{REGENERATE}` (and commit it)",
            problems.join("\n  ")
        ),
    }
}
