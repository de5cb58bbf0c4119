//! Compiles the chapter text (`content/*.md`) into HTML with MathML and writes `$OUT_DIR/content.rs`, which
//! `src/content.rs` includes. The compiler and its authoring conventions are in `src/content/compile.rs`; this
//! driver reads the files, orders them by `routes::SECTIONS`, reports errors and writes the Rust.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

#[path = "src/content/compile.rs"]
mod compile;

// The list of sections is the app's own (plain data, std only): the build checks the content files
// against it and orders "cited in" lists by reading order.
#[allow(dead_code)]
#[path = "src/routes.rs"]
mod routes;

use compile::{Source, REFERENCES_FILE};

/// The commit the site is built from, which exports carry as the site's version beside the package's
/// (`app::core::export::COMMIT`): "unknown" outside a git checkout. The build reruns when HEAD moves; only files
/// that exist are watched (cargo reruns a build script on every build for a missing one).
fn commit() -> String {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let mut watched = vec!["HEAD".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    watched.push("packed-refs".into());
    for name in watched {
        // `--git-path` finds HEAD in a worktree's own folder and the branches in the shared one.
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    git(&["rev-parse", "--short=10", "HEAD"]).unwrap_or_else(|| "unknown".into())
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/content/compile.rs");
    println!("cargo:rerun-if-changed=src/routes.rs");
    println!("cargo:rerun-if-changed=content");
    println!("cargo:rustc-env=GLASSBOX_COMMIT={}", commit());

    match build(&root.join("content")) {
        Ok(generated) => {
            let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("content.rs");
            fs::write(&out, generated).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
        }
        Err(errors) => {
            eprintln!("\nThe chapter text in content/ has {} error(s):", errors.len());
            for e in &errors {
                eprintln!("  error: {e}");
            }
            eprintln!();
            std::process::exit(1);
        }
    }
}

fn build(content_dir: &Path) -> Result<String, Vec<String>> {
    // Every .md file but the references is a section, named by its slug.
    let mut files: Vec<(String, PathBuf)> = match fs::read_dir(content_dir) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .filter(|p| p.file_name().is_some_and(|f| f != REFERENCES_FILE))
            .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
            .collect(),
        Err(e) => return Err(vec![format!("cannot read {}: {e}", content_dir.display())]),
    };
    // Reading order: the order of routes::SECTIONS, then anything else by name.
    let order = |slug: &str| routes::SECTIONS.iter().position(|s| s.slug == slug).unwrap_or(usize::MAX);
    files.sort_by(|a, b| order(&a.0).cmp(&order(&b.0)).then(a.0.cmp(&b.0)));
    for s in routes::SECTIONS {
        if !files.iter().any(|(slug, _)| slug == s.slug) {
            println!("cargo:warning=content/{}.md is missing: section `{}` has no text", s.slug, s.slug);
        }
    }

    let mut errors = Vec::new();
    let mut read = |path: &Path| {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = format!("content/{}", path.file_name().unwrap_or_default().to_string_lossy());
        let text = fs::read_to_string(path).unwrap_or_else(|e| {
            errors.push(format!("{name}: cannot read it ({e})"));
            String::new()
        });
        (name, text)
    };
    let (refs_name, refs_text) = read(&content_dir.join(REFERENCES_FILE));
    let texts: Vec<(String, String, String)> = files
        .iter()
        .map(|(slug, path)| {
            let (name, text) = read(path);
            if order(slug) == usize::MAX {
                println!("cargo:warning={name} is not a section in src/routes.rs (compiled, but nothing links to it)");
            }
            (slug.clone(), name, text)
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }

    let references = Source { slug: "", name: &refs_name, text: &refs_text };
    let sections: Vec<Source> = texts.iter().map(|(slug, name, text)| Source { slug, name, text }).collect();
    let title = |slug: &str| match routes::SECTIONS.iter().find(|s| s.slug == slug) {
        Some(s) if s.number.is_empty() => s.title.to_string(),
        Some(s) => format!("{} {}", s.number, s.title),
        None => slug.to_string(),
    };
    let chapter = compile::compile(&references, &sections, &title)?;
    for w in &chapter.warnings {
        println!("cargo:warning={w}");
    }

    // The generated Rust.
    let mut rs = String::from("// @generated by build.rs from content/*.md. Do not edit.\n\n");
    rs.push_str("static SECTION_HTML: &[(&str, &str)] = &[\n");
    for (slug, html) in &chapter.sections {
        let _ = writeln!(rs, "    ({slug:?}, {html:?}),");
    }
    rs.push_str("];\n\npub static REFERENCES: &[Reference] = &[\n");
    for r in &chapter.references {
        let _ = writeln!(
            rs,
            "    Reference {{ key: {:?}, label: {:?}, html: {:?}, cited_in: &{:?} }},",
            r.key, r.label, r.html, r.cited_in
        );
    }
    rs.push_str("];\n\npub static PREDICTS: &[Predict] = &[\n");
    for p in &chapter.predicts {
        let _ = writeln!(
            rs,
            "    Predict {{ id: {:?}, section: {:?}, in_lab: {}, question: {:?}, choices: &{:?}, answer: {}, reveal: {:?} }},",
            p.id, p.section, p.in_lab, p.question, p.choices, p.answer, p.reveal
        );
    }
    rs.push_str("];\n\n");
    let _ = writeln!(rs, "static REFERENCES_HTML: &str = {:?};", chapter.references_html);
    Ok(rs)
}
