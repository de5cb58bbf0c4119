//! The app's layering, checked on the source text (ARCHITECTURE.md, "Boundaries"):
//! - a lab imports only `app::core`, `lens` and `routes`: never another lab, the shell or the bench hooks;
//! - `app::core` never names a lab (nor the shell);
//! - there is no import cycle among the modules of `app::core`;
//! - the engine (`lens`) never names the app, leptos or web-sys.
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without its comments (so prose may mention other labs).
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The labs: the modules under `src/app/labs/` (a `name.rs` with or without a `name/` folder).
fn labs() -> Vec<String> {
    let dir = root().join("src/app/labs");
    let mut names: BTreeSet<String> = BTreeSet::new();
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        names.insert(stem);
    }
    names.into_iter().collect()
}

/// Which lab a file under `src/app/labs/` belongs to.
fn lab_of(path: &Path) -> String {
    let rel = path.strip_prefix(root().join("src/app/labs")).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn labs_import_no_other_lab() {
    let labs = labs();
    assert!(labs.len() >= 7, "expected the seven labs, found {labs:?}");
    let mut offences = Vec::new();
    for f in rust_files(&root().join("src/app/labs")) {
        let me = lab_of(&f);
        let src = code(&f);
        for other in labs.iter().filter(|l| **l != me) {
            for pat in [format!("labs::{other}"), format!("super::super::{other}")] {
                if src.contains(&pat) {
                    offences.push(format!("{} names `{pat}`", f.display()));
                }
            }
            // From a lab's root file, `super::` is `labs`.
            if f.parent() == Some(&root().join("src/app/labs")) && src.contains(&format!("super::{other}")) {
                offences.push(format!("{} names `super::{other}`", f.display()));
            }
        }
        for pat in ["app::shell", "app::bench", "super::super::super::shell"] {
            if src.contains(pat) {
                offences.push(format!("{} names `{pat}`", f.display()));
            }
        }
    }
    assert!(offences.is_empty(), "labs must import only app::core, lens and routes:\n{}", offences.join("\n"));
}

#[test]
fn core_names_no_lab() {
    let mut offences = Vec::new();
    for f in rust_files(&root().join("src/app/core")) {
        let src = code(&f);
        for pat in ["app::labs", "super::labs", "super::super::labs", "app::shell", "super::shell"] {
            if src.contains(pat) {
                offences.push(format!("{} names `{pat}`", f.display()));
            }
        }
    }
    assert!(offences.is_empty(), "app::core must not depend on the labs or the shell:\n{}", offences.join("\n"));
}

#[test]
fn core_modules_have_no_import_cycle() {
    let dir = root().join("src/app/core");
    let modules: Vec<String> =
        rust_files(&dir).iter().map(|p| p.file_stem().unwrap().to_string_lossy().to_string()).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in rust_files(&dir) {
        let me = f.file_stem().unwrap().to_string_lossy().to_string();
        let src = code(&f);
        for other in modules.iter().filter(|m| **m != me) {
            if src.contains(&format!("super::{other}::")) || src.contains(&format!("core::{other}::")) {
                edges.entry(me.clone()).or_default().insert(other.clone());
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(1) => {
                let i = path.iter().position(|p| p == n).unwrap();
                let mut cycle = path[i..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            Some(2) => return None,
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in &modules {
        if let Some(cycle) = visit(m, &edges, &mut state, &mut Vec::new()) {
            panic!("import cycle in app::core: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_engine_knows_nothing_of_the_browser() {
    let mut offences = Vec::new();
    for f in rust_files(&root().join("src/lens")) {
        let src = code(&f);
        for pat in ["crate::app", "leptos", "web_sys", "js_sys", "wasm_bindgen"] {
            if src.contains(pat) {
                offences.push(format!("{} names `{pat}`", f.display()));
            }
        }
    }
    assert!(offences.is_empty(), "lens must not depend on the browser:\n{}", offences.join("\n"));
}

/// The checks above must catch what they are for: a lab file naming another lab is found.
#[test]
fn the_checks_see_an_offence() {
    let dir = std::env::temp_dir().join(format!("glassbox-boundaries-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let f = dir.join("x.rs");
    fs::write(&f, "use crate::app::labs::probe::ProbeState; // labs::steer in a comment is fine\n").unwrap();
    let src = code(&f);
    assert!(src.contains("labs::probe"));
    assert!(!src.contains("labs::steer"));
    fs::remove_dir_all(&dir).unwrap();
}

/// The longest a function under `src/app/` may be: a component longer than this is several panels (issue #12:
/// "no component function over ~150 lines").
const MAX_FN_LINES: usize = 150;

/// Every function's name and length in lines, from its `fn` line to the `}` at the same indentation. (Text, not
/// a parser: rustfmt's layout makes the closing brace's indentation reliable.)
fn function_lengths(src: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = src.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let indent = l.len() - t.len();
        let sig = ["pub fn ", "pub(crate) fn ", "pub(super) fn ", "fn ", "async fn ", "pub async fn "]
            .iter()
            .find_map(|p| t.strip_prefix(p));
        let Some(rest) = sig else { continue };
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let close = format!("{}}}", " ".repeat(indent));
        if let Some(end) =
            lines[i + 1..].iter().position(|x| x.starts_with(&close) && x.trim_end().len() <= close.len() + 1)
        {
            out.push((name, i + 1, end + 2));
        }
    }
    out
}

#[test]
fn no_function_in_the_app_is_over_150_lines() {
    let mut longest = (String::new(), 0);
    let mut offences = Vec::new();
    for f in rust_files(&root().join("src/app")) {
        for (name, line, len) in function_lengths(&fs::read_to_string(&f).unwrap()) {
            let at = format!("{}:{line} {name}", f.strip_prefix(root()).unwrap().display());
            if len > longest.1 {
                longest = (at.clone(), len);
            }
            if len > MAX_FN_LINES {
                offences.push(format!("{at}: {len} lines"));
            }
        }
    }
    println!("the longest function under src/app: {} ({} lines)", longest.0, longest.1);
    assert!(offences.is_empty(), "split these into smaller panels or plain functions:\n{}", offences.join("\n"));
}

#[test]
fn function_lengths_are_measured_to_the_closing_brace() {
    let src = "fn a() {\n    x();\n}\n\n    pub fn b(\n        y: u8,\n    ) -> u8 {\n        y\n    }\n";
    let got = function_lengths(src);
    assert_eq!(got, [("a".to_string(), 1, 3), ("b".to_string(), 5, 5)]);
}
