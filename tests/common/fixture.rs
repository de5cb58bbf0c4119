//! The native-numbers fixture `tests/fixtures/induction_native.json`: what the engine computes natively on the
//! shipped induction model (`public/models/induction/`), which the in-browser tests (`tests/web.rs`) must
//! reproduce in wasm.
//!
//! Written by `GLASSBOX_WRITE_FIXTURES=1 cargo test --test fixtures`; checked (without that variable) by the same
//! test natively, to 1e-5, and by `tests/web.rs` in headless Chromium, to 1e-4. The computation lives here, in
//! one place, so that native and wasm run exactly the same code on the same inputs and only the numbers can differ.
//!
//! Included with `#[path = "common/fixture.rs"] mod fixture;`; not every test crate uses every item.
#![allow(dead_code)]
use std::fmt::Write as _;

use glassbox::lens::gpt2::vocab::{Tokenized, Vocab};
use glassbox::lens::methods::induction::{head_scores, HeadScores, TaskSpec};
use glassbox::lens::rng::Rng;
use glassbox::lens::Transformer;
use serde::Deserialize;

/// Where the fixture lives, relative to the crate root.
pub const FIXTURE_PATH: &str = "tests/fixtures/induction_native.json";
/// Where the model it describes lives, relative to the crate root.
pub const MODEL_DIR: &str = "public/models/induction";
/// The command that rewrites the fixture; every "stale fixture" message quotes it.
pub const REGENERATE: &str = "GLASSBOX_WRITE_FIXTURES=1 cargo test --test fixtures";

/// Seed of the random repeated sequence.
pub const REPEAT_SEED: u64 = 2024;
/// The short sequence: typed text, so it also pins what the vocabulary makes of it.
pub const SHORT_TEXT: &str = "the cat sat on the mat and the cat sat on the";
/// Typed texts whose encoding must be the same natively and in wasm: case, odd whitespace (tabs, newlines,
/// no-break and ideographic spaces), words listed twice in the word list, unknown and non-ASCII words.
pub const VOCAB_TEXTS: &[&str] = &[
    "the cat sat on the mat",
    "  The CAT\tsat\non the MAT  ",
    "",
    "   ",
    "red gold red cook chef cook road",
    "ISLAND Forest castle LADDER mirror candle basket",
    "the\u{a0}cat\u{3000}sat\u{2003}on",
    "the zzzqx cat <bos> zzzqx",
    "Élan the café naïve CAFÉ",
    "the cat's mat, the dog.",
];

/// FNV-1a, 64 bit: identifies the exact model files a fixture was written from, on any platform, without a crate.
pub fn fnv1a64(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Which model files the numbers come from.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ModelId {
    pub dir: String,
    pub config_fnv1a64: String,
    pub safetensors_fnv1a64: String,
    pub vocab_fnv1a64: String,
    pub safetensors_bytes: usize,
}

impl ModelId {
    pub fn of(config_json: &str, safetensors: &[u8], vocab_json: &str) -> ModelId {
        ModelId {
            dir: MODEL_DIR.to_string(),
            config_fnv1a64: fnv1a64(config_json.as_bytes()),
            safetensors_fnv1a64: fnv1a64(safetensors),
            vocab_fnv1a64: fnv1a64(vocab_json.as_bytes()),
            safetensors_bytes: safetensors.len(),
        }
    }
}

/// One sequence's numbers.
#[derive(Clone, Debug, Deserialize)]
pub struct SequenceNumbers {
    pub name: String,
    pub tokens: Vec<u32>,
    /// `[pos][vocab]`, flattened row-major.
    pub logits: Vec<f32>,
    /// `[layer][head]`, each `[query][key]` flattened row-major (`blocks.{l}.attn.hook_pattern`, batch 0).
    pub patterns: Vec<Vec<Vec<f32>>>,
    /// `[layer][head]`: `glassbox::lens::methods::induction::head_scores` of each pattern.
    pub head_scores: Vec<Vec<HeadScores>>,
}

/// What the vocabulary makes of one typed text: ids, or the unknown words.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct VocabCase {
    pub text: String,
    pub ids: Option<Vec<u32>>,
    pub unknown: Option<Vec<String>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Fixture {
    pub about: String,
    pub model: ModelId,
    pub n_layer: usize,
    pub n_head: usize,
    pub vocab_size: usize,
    pub sequences: Vec<SequenceNumbers>,
    pub vocab_cases: Vec<VocabCase>,
}

pub fn vocab_case(vocab: &Vocab, text: &str) -> VocabCase {
    match vocab.encode(text) {
        Tokenized::Ok(ids) => VocabCase { text: text.to_string(), ids: Some(ids), unknown: None },
        Tokenized::Unknown(words) => VocabCase { text: text.to_string(), ids: None, unknown: Some(words) },
    }
}

/// The two sequences: `<bos>` + 31 random tokens + the same 31 again + the first of them once more (64 tokens,
/// the model's whole context, and still a repeat), and `SHORT_TEXT` through the vocabulary.
pub fn sequences(model: &Transformer, vocab: &Vocab) -> Vec<(String, Vec<u32>)> {
    let n = model.cfg.n_positions;
    let half = (n - 1) / 2;
    let mut rng = Rng::new(REPEAT_SEED);
    let mut repeated = TaskSpec::new(model.cfg.vocab_size, n).repeated_sequence(&mut rng, half);
    while repeated.len() < n {
        repeated.push(repeated[repeated.len() - half]);
    }
    let Tokenized::Ok(short) = vocab.encode(SHORT_TEXT) else {
        panic!("the shipped vocabulary cannot encode {SHORT_TEXT:?}")
    };
    vec![("repeated".to_string(), repeated), ("typed".to_string(), short)]
}

/// Runs the engine and collects every number the fixture holds. Exactly this runs natively and in wasm.
pub fn compute(model: &Transformer, vocab: &Vocab, id: ModelId) -> Fixture {
    let (n_layer, n_head) = (model.cfg.n_layer, model.cfg.n_head);
    let sequences = sequences(model, vocab)
        .into_iter()
        .map(|(name, tokens)| {
            let (logits, cache) = model.run_with_cache(&tokens).unwrap();
            let logits = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let mut patterns = Vec::new();
            let mut scores = Vec::new();
            for l in 0..n_layer {
                let (mut pl, mut sl) = (Vec::new(), Vec::new());
                for h in 0..n_head {
                    let p = cache.pattern(l, h, 0).unwrap();
                    sl.push(head_scores(&p, &tokens));
                    pl.push(p.concat());
                }
                patterns.push(pl);
                scores.push(sl);
            }
            SequenceNumbers { name, tokens, logits, patterns, head_scores: scores }
        })
        .collect();
    Fixture {
        about: format!(
            "Native engine numbers on the shipped model in {MODEL_DIR}, checked natively to 1e-5 by tests/fixtures.rs and \
             in headless Chromium to 1e-4 by tests/web.rs. Do not edit: regenerate with `{REGENERATE}`."
        ),
        model: id,
        n_layer,
        n_head,
        vocab_size: model.cfg.vocab_size,
        sequences,
        vocab_cases: VOCAB_TEXTS.iter().map(|t| vocab_case(vocab, t)).collect(),
    }
}

/// The largest absolute difference; NaN when one side has a NaN the other lacks.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| if x == y { 0.0 } else { (x - y).abs() }).fold(0.0f32, |m, d| {
        if d.is_nan() || m.is_nan() {
            f32::NAN
        } else {
            m.max(d)
        }
    })
}

fn scores_flat(s: &[Vec<HeadScores>]) -> Vec<f32> {
    s.iter().flatten().flat_map(|h| [h.previous_token, h.induction, h.duplicate_token]).collect()
}

/// Compares two fixtures: identical metadata, tokens and vocabulary cases, numbers within `tol` (absolute).
/// Returns the worst difference seen per kind (logits, patterns, head scores), or every problem found.
pub fn compare(got: &Fixture, want: &Fixture, tol: f32) -> Result<[f32; 3], Vec<String>> {
    let mut problems = Vec::new();
    let mut worst = [0.0f32; 3];
    let mut check = |kind: usize, what: String, a: &[f32], b: &[f32], problems: &mut Vec<String>| {
        if a.len() != b.len() {
            problems.push(format!("{what}: {} values, the fixture has {}", a.len(), b.len()));
            return;
        }
        let d = max_abs_diff(a, b);
        if d.is_nan() || d > worst[kind] {
            worst[kind] = d;
        }
        let too_far = |e: f32| e.is_nan() || e > tol;
        if too_far(d) {
            let at = a.iter().zip(b).position(|(x, y)| x != y && too_far((x - y).abs())).unwrap_or(0);
            problems.push(format!(
                "{what}: max abs difference {d} > {tol} (first at flat index {at}: {} vs fixture {})",
                a[at], b[at]
            ));
        }
    };
    if (got.n_layer, got.n_head, got.vocab_size) != (want.n_layer, want.n_head, want.vocab_size) {
        problems.push(format!(
            "model shape (layers, heads, vocab) {:?}, the fixture has {:?}",
            (got.n_layer, got.n_head, got.vocab_size),
            (want.n_layer, want.n_head, want.vocab_size)
        ));
    }
    if got.sequences.len() != want.sequences.len() {
        problems.push(format!("{} sequences, the fixture has {}", got.sequences.len(), want.sequences.len()));
    }
    for (g, w) in got.sequences.iter().zip(&want.sequences) {
        if g.name != w.name || g.tokens != w.tokens {
            problems
                .push(format!("sequence `{}` is {:?}, the fixture's `{}` is {:?}", g.name, g.tokens, w.name, w.tokens));
            continue;
        }
        check(0, format!("`{}` logits", g.name), &g.logits, &w.logits, &mut problems);
        for (l, (gl, wl)) in g.patterns.iter().zip(&w.patterns).enumerate() {
            for (h, (gp, wp)) in gl.iter().zip(wl).enumerate() {
                check(1, format!("`{}` pattern L{l}H{h}", g.name), gp, wp, &mut problems);
            }
        }
        check(
            2,
            format!("`{}` head scores", g.name),
            &scores_flat(&g.head_scores),
            &scores_flat(&w.head_scores),
            &mut problems,
        );
    }
    if got.vocab_cases != want.vocab_cases {
        for (g, w) in got.vocab_cases.iter().zip(&want.vocab_cases) {
            if g != w {
                problems.push(format!("vocabulary: {g:?}, the fixture has {w:?}"));
            }
        }
        if got.vocab_cases.len() != want.vocab_cases.len() {
            problems.push(format!(
                "{} vocabulary cases, the fixture has {}",
                got.vocab_cases.len(),
                want.vocab_cases.len()
            ));
        }
    }
    if problems.is_empty() {
        Ok(worst)
    } else {
        Err(problems)
    }
}

// ---- writing: JSON by hand, so that f32s keep their shortest exact form and arrays stay on few lines ----

/// The shortest decimal that reads back as the same f32 (exact, so a fresh fixture matches bit for bit).
fn num(x: f32) -> String {
    assert!(x.is_finite(), "non-finite value {x} in the fixture");
    if x == 0.0 {
        "0".into()
    } else if (1e-4..1e7).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

fn str_json(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Numbers, 16 to a line.
fn nums(xs: impl IntoIterator<Item = String>, indent: &str) -> String {
    let xs: Vec<String> = xs.into_iter().collect();
    if xs.len() <= 16 {
        return format!("[{}]", xs.join(", "));
    }
    let lines: Vec<String> = xs.chunks(16).map(|c| format!("{indent}  {}", c.join(", "))).collect();
    format!("[\n{}\n{indent}]", lines.join(",\n"))
}

pub fn to_json(f: &Fixture) -> String {
    let mut o = String::new();
    let m = &f.model;
    writeln!(o, "{{").unwrap();
    writeln!(o, "  \"about\": {},", str_json(&f.about)).unwrap();
    writeln!(
        o,
        "  \"model\": {{\"dir\": {}, \"config_fnv1a64\": \"{}\", \"safetensors_fnv1a64\": \"{}\", \"vocab_fnv1a64\": \"{}\", \"safetensors_bytes\": {}}},",
        str_json(&m.dir),
        m.config_fnv1a64,
        m.safetensors_fnv1a64,
        m.vocab_fnv1a64,
        m.safetensors_bytes
    )
    .unwrap();
    writeln!(o, "  \"n_layer\": {}, \"n_head\": {}, \"vocab_size\": {},", f.n_layer, f.n_head, f.vocab_size).unwrap();
    writeln!(o, "  \"sequences\": [").unwrap();
    for (i, s) in f.sequences.iter().enumerate() {
        writeln!(o, "    {{").unwrap();
        writeln!(o, "      \"name\": {},", str_json(&s.name)).unwrap();
        writeln!(o, "      \"tokens\": [{}],", s.tokens.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", "))
            .unwrap();
        let scores: Vec<String> = s
            .head_scores
            .iter()
            .map(|layer| {
                let heads: Vec<String> = layer
                    .iter()
                    .map(|h| {
                        format!(
                            "{{\"previous_token\": {}, \"induction\": {}, \"duplicate_token\": {}}}",
                            num(h.previous_token),
                            num(h.induction),
                            num(h.duplicate_token)
                        )
                    })
                    .collect();
                format!("        [\n          {}\n        ]", heads.join(",\n          "))
            })
            .collect();
        writeln!(o, "      \"head_scores\": [\n{}\n      ],", scores.join(",\n")).unwrap();
        writeln!(o, "      \"logits\": {},", nums(s.logits.iter().map(|&x| num(x)), "      ")).unwrap();
        let layers: Vec<String> = s
            .patterns
            .iter()
            .map(|layer| {
                let heads: Vec<String> = layer
                    .iter()
                    .map(|p| format!("          {}", nums(p.iter().map(|&x| num(x)), "          ")))
                    .collect();
                format!("        [\n{}\n        ]", heads.join(",\n"))
            })
            .collect();
        writeln!(o, "      \"patterns\": [\n{}\n      ]", layers.join(",\n")).unwrap();
        writeln!(o, "    }}{}", if i + 1 < f.sequences.len() { "," } else { "" }).unwrap();
    }
    writeln!(o, "  ],").unwrap();
    writeln!(o, "  \"vocab_cases\": [").unwrap();
    let cases: Vec<String> = f
        .vocab_cases
        .iter()
        .map(|c| {
            let ids = c.ids.as_ref().map_or("null".into(), |v| {
                format!("[{}]", v.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", "))
            });
            let unknown = c.unknown.as_ref().map_or("null".into(), |v| {
                format!("[{}]", v.iter().map(|w| str_json(w)).collect::<Vec<_>>().join(", "))
            });
            format!("    {{\"text\": {}, \"ids\": {ids}, \"unknown\": {unknown}}}", str_json(&c.text))
        })
        .collect();
    writeln!(o, "{}", cases.join(",\n")).unwrap();
    writeln!(o, "  ]").unwrap();
    writeln!(o, "}}").unwrap();
    o
}

pub fn from_json(text: &str) -> Fixture {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{FIXTURE_PATH} is not a readable fixture ({e}); regenerate it with `{REGENERATE}`"))
}
