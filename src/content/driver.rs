//! The chapter's build driver, shared by `build.rs` (which compiles the chapter into the app) and `chapter/` (the
//! `glassbox-chapter` program, run by Trunk's pre-build hook, which writes the chapter's text into the site as one
//! JSON file). Both include this file with `#[path]`, beside `compile.rs` and `routes.rs` as `super::compile` and
//! `super::routes`; so do the native unit tests (`content::driver`). Plain std: no app code, no crate of its own.
//!
//! It reads `content/*.md`, orders the sections by `routes::SECTIONS`, runs the compiler, and writes the text file
//! (`chapter_json`) under a name made from its bytes (`file_name`), which `build.rs` compiles into the app as
//! `content::CHAPTER_FILE`: an app and a text file from different builds never meet, whatever a cache keeps.
use std::fs;
use std::path::{Path, PathBuf};

use super::compile::{self, Source, REFERENCES_FILE};
use super::routes;

/// The compiled chapter, what was read to make it, and what its author should know.
pub struct Built {
    pub chapter: compile::Chapter,
    /// Every file read (cargo reruns `build.rs` when one changes).
    pub read: Vec<PathBuf>,
    /// A section without a file, a file that is no section, and the compiler's own warnings.
    pub warnings: Vec<String>,
}

/// Reads and compiles `content_dir`: every `.md` file but the references is a section, named by its slug. Errors
/// name the file (and the compiler's, the line).
pub fn build(content_dir: &Path) -> Result<Built, Vec<String>> {
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
    let mut warnings = Vec::new();
    for s in routes::SECTIONS {
        if !files.iter().any(|(slug, _)| slug == s.slug) {
            warnings.push(format!("content/{}.md is missing: section `{}` has no text", s.slug, s.slug));
        }
    }

    let mut errors = Vec::new();
    let mut read = Vec::new();
    let mut read_file = |path: &Path| {
        read.push(path.to_path_buf());
        let name = format!("content/{}", path.file_name().unwrap_or_default().to_string_lossy());
        let text = fs::read_to_string(path).unwrap_or_else(|e| {
            errors.push(format!("{name}: cannot read it ({e})"));
            String::new()
        });
        (name, text)
    };
    let (refs_name, refs_text) = read_file(&content_dir.join(REFERENCES_FILE));
    let texts: Vec<(String, String, String)> = files
        .iter()
        .map(|(slug, path)| {
            let (name, text) = read_file(path);
            if order(slug) == usize::MAX {
                warnings.push(format!("{name} is not a section in src/routes.rs (compiled, but nothing links to it)"));
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
    warnings.extend(chapter.warnings.iter().cloned());
    Ok(Built { chapter, read, warnings })
}

/// The chapter's text as the site serves it: `{"sections": {slug: html, ...}, "references": html}`, sections in
/// reading order. The rest of the chapter (exercises, the references' entries) stays compiled into the app.
pub fn chapter_json(chapter: &compile::Chapter) -> String {
    let size: usize = chapter.sections.iter().map(|(s, h)| s.len() + h.len()).sum::<usize>();
    let mut out = String::with_capacity(size + chapter.references_html.len() + 1024);
    out.push_str("{\"sections\": {");
    for (i, (slug, html)) in chapter.sections.iter().enumerate() {
        out.push_str(if i == 0 { "\n  " } else { ",\n  " });
        json_string(slug, &mut out);
        out.push_str(": ");
        json_string(html, &mut out);
    }
    out.push_str("\n},\n\"references\": ");
    json_string(&chapter.references_html, &mut out);
    out.push_str("}\n");
    out
}

/// `s` as a JSON string, quotes included (RFC 8259, section 7): `"` and `\` escaped, control characters as
/// `\n`, `\t`… or `\u00XX`, everything else as itself in UTF-8.
///
/// Written here rather than taken from serde_json: the pre-build hook compiles this driver before every build
/// from scratch, and with pulldown-cmark and math-core (which the compiler needs) as its only crates it builds
/// in seconds; serde and serde_json would add more than the rest put together, for ten lines. The app reads
/// the file with serde_json, and the tests check that it reads back what was written.
pub fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The text file's name in the site, `chapter-{hash}.json`: the 64-bit FNV-1a hash of its bytes, in hex. Spelled
/// out (not std's `DefaultHasher`, whose output may change between Rust releases) because `build.rs` and the
/// pre-build program must agree on it.
pub fn file_name(json: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("chapter-{h:016x}.json")
}
