//! Compiles the chapter text (`content/*.md`) into HTML at build time and writes `$OUT_DIR/content.rs`,
//! which `src/content.rs` includes. Nothing here runs in the browser: the app ships finished HTML with
//! MathML, so math renders without any JavaScript.
//!
//! The conventions an author can use in `content/{slug}.md` (one file per entry of `routes::SECTIONS`):
//!
//! - CommonMark with tables and smart punctuation; footnotes are off.
//! - `# Title` is the section title (kept as `<h1>`); `##`/`###` headings get slugified ids
//!   (`{#custom-id}` after a heading sets one by hand).
//! - `$...$` is inline math, `$$...$$` display math, converted to MathML by latex2mathml. Math that
//!   latex2mathml cannot convert, converts wrongly or into something that is not well-formed fails the
//!   build. Its quirks: write `{W_K}^\top` (not `W_K^\top`, which it reads as W_{K^T}), `{\hat{x}}_i`,
//!   and Unicode `ℝ` rather than `\mathbb{R}` (Chromium ignores MathML's mathvariant); no `cases`.
//! - `[@key]` or `[@key1; @key2]` cites works listed in `content/references.md`, one per line:
//!   `- key | Short label | Full reference in markdown`. An unknown key fails the build. Each section
//!   ends with the list of the works it cites.
//! - Blocks, each opened by a line `:::NAME [title]` and closed by a line `:::`, may nest:
//!   `:::technical Title` -> `<details class="technical"><summary>Title</summary>…</details>`,
//!   `:::note [Title]` -> `<aside class="note">…</aside>`,
//!   `:::beyond [Title]` -> `<aside class="beyond"><p class="aside-label">Beyond the chapter…</p>…</aside>`.
//!
//! Errors name the file and the line or the offending text, and stop the build: broken text should
//! never reach a student.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use latex2mathml::{latex_to_mathml, DisplayStyle};
use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

// The list of sections is the app's own (plain data, std only): the build checks the content files
// against it and orders "cited in" lists by reading order.
#[allow(dead_code)]
#[path = "src/routes.rs"]
mod routes;

const REFERENCES_FILE: &str = "references.md";

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let content_dir = root.join("content");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/routes.rs");
    println!("cargo:rerun-if-changed=content");

    match build(&content_dir) {
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

// ---------------------------------------------------------------------------------------------
// References

struct RefEntry {
    key: String,
    label: String,
    /// The full reference, rendered as inline HTML.
    html: String,
}

fn parse_references(path: &Path, errors: &mut Vec<String>) -> Vec<RefEntry> {
    let name = display_name(path);
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            errors.push(format!("{name}: cannot read it ({e}); every citation is resolved from this file"));
            return Vec::new();
        }
    };
    let mut refs: Vec<RefEntry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(entry) = line.strip_prefix("- ") else { continue };
        let at = format!("{name}:{}", i + 1);
        let parts: Vec<&str> = entry.splitn(3, '|').map(str::trim).collect();
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
            errors.push(format!("{at}: expected `- key | Short label | Full reference`, got `{line}`"));
            continue;
        }
        let (key, label, full) = (parts[0], parts[1], parts[2]);
        if !valid_key(key) {
            errors.push(format!("{at}: reference key `{key}` may only use letters, digits, `-` and `_`"));
            continue;
        }
        if refs.iter().any(|r| r.key == key) {
            errors.push(format!("{at}: reference key `{key}` is listed twice"));
            continue;
        }
        if full.contains("[@") {
            errors.push(format!("{at}: a reference cannot cite another (`[@` in `{key}`)"));
            continue;
        }
        let no_citations = HashMap::new();
        let mut ctx = RenderCtx::new(&at, &no_citations);
        let html = ctx.render_inline(full);
        errors.extend(ctx.errors);
        refs.push(RefEntry { key: key.to_string(), label: label.to_string(), html });
    }
    if refs.is_empty() && errors.is_empty() {
        errors.push(format!("{name}: lists no references (lines of the form `- key | Short label | Full reference`)"));
    }
    refs
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

// ---------------------------------------------------------------------------------------------
// Block directives (:::technical, :::note, :::beyond)

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Technical,
    Note,
    Beyond,
}

enum Block {
    Markdown(String),
    Container { kind: Kind, title: String, children: Vec<Block> },
}

/// Splits a file into markdown runs and `:::` blocks. Lines inside fenced code are left alone.
fn parse_blocks(name: &str, text: &str, errors: &mut Vec<String>) -> Vec<Block> {
    // Each open frame: (kind, title, line opened, children, pending markdown).
    struct Frame {
        kind: Option<(Kind, String, usize)>,
        children: Vec<Block>,
        md: String,
    }
    fn flush(frame: &mut Frame) {
        if !frame.md.trim().is_empty() {
            frame.children.push(Block::Markdown(std::mem::take(&mut frame.md)));
        }
        frame.md.clear();
    }
    let mut stack = vec![Frame { kind: None, children: Vec::new(), md: String::new() }];
    let mut fence: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let trimmed = line.trim();
        if let Some(f) = &fence {
            if trimmed.starts_with(f.as_str()) {
                fence = None;
            }
            push_line(&mut stack.last_mut().unwrap().md, line);
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(trimmed[..3].to_string());
            push_line(&mut stack.last_mut().unwrap().md, line);
            continue;
        }
        let Some(rest) = trimmed.strip_prefix(":::") else {
            push_line(&mut stack.last_mut().unwrap().md, line);
            continue;
        };
        let rest = rest.trim();
        if rest.is_empty() {
            // Closing line.
            if stack.len() == 1 {
                errors.push(format!("{name}:{lineno}: `:::` closes a block, but no block is open"));
                continue;
            }
            let mut frame = stack.pop().unwrap();
            flush(&mut frame);
            let (kind, title, _) = frame.kind.unwrap();
            let parent = stack.last_mut().unwrap();
            flush(parent);
            parent.children.push(Block::Container { kind, title, children: frame.children });
            continue;
        }
        let (word, title) = match rest.split_once(char::is_whitespace) {
            Some((w, t)) => (w, t.trim().to_string()),
            None => (rest, String::new()),
        };
        let kind = match word {
            "technical" => Kind::Technical,
            "note" => Kind::Note,
            "beyond" => Kind::Beyond,
            other => {
                errors.push(format!(
                    "{name}:{lineno}: unknown block `:::{other}` (known: `:::technical Title`, `:::note`, `:::beyond`)"
                ));
                continue;
            }
        };
        if kind == Kind::Technical && title.is_empty() {
            errors.push(format!(
                "{name}:{lineno}: `:::technical` needs a title: `:::technical Title of the technical part`"
            ));
        }
        flush(stack.last_mut().unwrap());
        stack.push(Frame { kind: Some((kind, title, lineno)), children: Vec::new(), md: String::new() });
    }
    while stack.len() > 1 {
        let frame = stack.pop().unwrap();
        let (kind, _, opened) = frame.kind.unwrap();
        errors.push(format!(
            "{name}:{opened}: the `:::{}` block opened here is never closed with `:::`",
            kind_word(kind)
        ));
    }
    let mut top = stack.pop().unwrap();
    flush(&mut top);
    top.children
}

fn push_line(buf: &mut String, line: &str) {
    buf.push_str(line);
    buf.push('\n');
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Technical => "technical",
        Kind::Note => "note",
        Kind::Beyond => "beyond",
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

struct RenderCtx<'r> {
    /// "content/9.1.md" or "content/9.1.md:12", for messages.
    at: String,
    labels: &'r HashMap<String, String>,
    /// Keys cited, in order of first citation.
    cited: Vec<String>,
    heading_ids: BTreeSet<String>,
    errors: Vec<String>,
}

impl<'r> RenderCtx<'r> {
    fn new(at: &str, labels: &'r HashMap<String, String>) -> Self {
        RenderCtx { at: at.to_string(), labels, cited: Vec::new(), heading_ids: BTreeSet::new(), errors: Vec::new() }
    }

    fn options() -> Options {
        let mut o = Options::empty();
        o.insert(Options::ENABLE_TABLES);
        o.insert(Options::ENABLE_MATH);
        o.insert(Options::ENABLE_SMART_PUNCTUATION);
        o.insert(Options::ENABLE_HEADING_ATTRIBUTES);
        o
    }

    fn render_blocks(&mut self, blocks: &[Block], out: &mut String) {
        for block in blocks {
            match block {
                Block::Markdown(md) => out.push_str(&self.render_markdown(md)),
                Block::Container { kind, title, children } => {
                    let title_html = if title.is_empty() { String::new() } else { self.render_inline(title) };
                    match kind {
                        Kind::Technical => {
                            let _ = writeln!(out, "<details class=\"technical\"><summary>{title_html}</summary>");
                            self.render_blocks(children, out);
                            out.push_str("</details>\n");
                        }
                        Kind::Note => {
                            out.push_str("<aside class=\"note\">\n");
                            if !title_html.is_empty() {
                                let _ = writeln!(out, "<p class=\"aside-label\">{title_html}</p>");
                            }
                            self.render_blocks(children, out);
                            out.push_str("</aside>\n");
                        }
                        Kind::Beyond => {
                            out.push_str("<aside class=\"beyond\">\n<p class=\"aside-label\">Beyond the chapter");
                            if !title_html.is_empty() {
                                let _ = write!(out, ": {title_html}");
                            }
                            out.push_str("</p>\n");
                            self.render_blocks(children, out);
                            out.push_str("</aside>\n");
                        }
                    }
                }
            }
        }
    }

    fn render_markdown(&mut self, md: &str) -> String {
        let md = self.replace_citations(md);
        let events = self.transform(Parser::new_ext(&md, Self::options()).collect());
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, events.into_iter());
        html
    }

    /// One line of markdown (a title, a reference) rendered without its paragraph.
    fn render_inline(&mut self, md: &str) -> String {
        let md = self.replace_citations(md);
        let events: Vec<Event> = self
            .transform(Parser::new_ext(&md, Self::options()).collect())
            .into_iter()
            .filter(|e| !matches!(e, Event::Start(Tag::Paragraph) | Event::End(TagEnd::Paragraph)))
            .collect();
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, events.into_iter());
        html.trim().to_string()
    }

    /// `[@a; @b]` -> `<span class="citation">(<a class="cite" …>A 2020</a>; <a …>B 2021</a>)</span>`, as inline
    /// HTML that the markdown parser passes through.
    fn replace_citations(&mut self, md: &str) -> String {
        let mut out = String::with_capacity(md.len());
        let mut rest = md;
        while let Some(start) = rest.find("[@") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find(']') else {
                self.errors.push(format!("{}: a citation `[@…` is never closed with `]`", self.at));
                rest = &rest[start + 2..];
                continue;
            };
            let inner = &after[..end];
            let mut links = Vec::new();
            for part in inner.split(';') {
                let part = part.trim();
                let Some(key) = part.strip_prefix('@').filter(|k| valid_key(k)) else {
                    self.errors.push(format!(
                        "{}: malformed citation `[{inner}]`: write `[@key]` or `[@key1; @key2]`",
                        self.at
                    ));
                    continue;
                };
                match self.labels.get(key) {
                    Some(label) => {
                        if !self.cited.iter().any(|k| k == key) {
                            self.cited.push(key.to_string());
                        }
                        links.push(format!(
                            "<a class=\"cite\" href=\"#ref-{key}\" data-ref=\"{key}\">{}</a>",
                            escape_html(label)
                        ));
                    }
                    None => self.errors.push(format!(
                        "{}: unknown citation key `{key}` in `[{inner}]`: add it to content/{REFERENCES_FILE} \
                         as `- {key} | Short label | Full reference`",
                        self.at
                    )),
                }
            }
            let _ = write!(out, "<span class=\"citation\">({})</span>", links.join("; "));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Math to MathML; ids on `##`/`###` headings.
    fn transform<'a>(&mut self, events: Vec<Event<'a>>) -> Vec<Event<'a>> {
        let mut out: Vec<Event<'a>> = Vec::with_capacity(events.len());
        let mut heading_start: Option<usize> = None;
        let mut heading_text = String::new();
        for event in events {
            match event {
                Event::InlineMath(tex) => {
                    if heading_start.is_some() {
                        heading_text.push_str(&tex);
                    }
                    out.push(Event::InlineHtml(CowStr::from(self.math(&tex, DisplayStyle::Inline))));
                }
                Event::DisplayMath(tex) => {
                    out.push(Event::InlineHtml(CowStr::from(self.math(&tex, DisplayStyle::Block))));
                }
                Event::Start(Tag::Heading { level, id, classes, attrs }) => {
                    if matches!(level, HeadingLevel::H2 | HeadingLevel::H3) && id.is_none() {
                        heading_start = Some(out.len());
                        heading_text.clear();
                    } else if let Some(id) = &id {
                        if !self.heading_ids.insert(id.to_string()) {
                            self.errors.push(format!("{}: heading id `{id}` is used twice", self.at));
                        }
                    }
                    out.push(Event::Start(Tag::Heading { level, id, classes, attrs }));
                }
                Event::End(TagEnd::Heading(level)) => {
                    if let Some(i) = heading_start.take() {
                        let base = slugify(&heading_text);
                        let base = if base.is_empty() { "section".to_string() } else { base };
                        let mut id = base.clone();
                        let mut n = 2;
                        while !self.heading_ids.insert(id.clone()) {
                            id = format!("{base}-{n}");
                            n += 1;
                        }
                        if let Event::Start(Tag::Heading { id: slot, .. }) = &mut out[i] {
                            *slot = Some(CowStr::from(id));
                        }
                    }
                    out.push(Event::End(TagEnd::Heading(level)));
                }
                Event::Text(t) => {
                    if heading_start.is_some() {
                        heading_text.push_str(&t);
                    }
                    out.push(Event::Text(t));
                }
                Event::Code(t) => {
                    if heading_start.is_some() {
                        heading_text.push_str(&t);
                    }
                    out.push(Event::Code(t));
                }
                other => out.push(other),
            }
        }
        out
    }

    fn math(&mut self, tex: &str, display: DisplayStyle) -> String {
        match convert_math(tex, display) {
            Ok(mathml) => mathml,
            Err(why) => {
                let delim = if display == DisplayStyle::Block { "$$" } else { "$" };
                self.errors.push(format!("{}: cannot convert the math {delim}{tex}{delim} to MathML: {why}", self.at));
                String::new()
            }
        }
    }
}

/// latex2mathml, made strict: it renders unknown commands as a visible "[PARSE ERROR: …]" and passes
/// `<`, `>` through unescaped, so its output is checked as well as its result.
fn convert_math(tex: &str, display: DisplayStyle) -> Result<String, String> {
    let result = std::panic::catch_unwind(|| latex_to_mathml(tex, display));
    let mathml = match result {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("latex2mathml panicked on it".to_string()),
    };
    if let Some(i) = mathml.find("[PARSE ERROR") {
        let end = mathml[i..].find(']').map_or(mathml.len(), |j| i + j + 1);
        return Err(format!("unsupported LaTeX ({})", &mathml[i..end]));
    }
    lint_tex(tex)?;
    // Chromium implements MathML Core, which ignores mathvariant values other than "normal".
    for (i, _) in mathml.match_indices("mathvariant=\"") {
        let value: String = mathml[i + 13..].chars().take_while(|&c| c != '"').collect();
        if value != "normal" && value != "italic" {
            return Err(format!(
                "it asks for mathvariant=\"{value}\", which Chromium ignores; use the Unicode letter instead \
                 (ℝ rather than \\mathbb{{R}}, 𝐱 rather than \\mathbf{{x}})"
            ));
        }
    }
    let mathml = mathml.replace("<mo><</mo>", "<mo>&lt;</mo>").replace("<mo>></mo>", "<mo>&gt;</mo>");
    check_well_formed(&mathml).map_err(|e| format!("the MathML it produced is not well-formed ({e}): {mathml}"))?;
    Ok(mathml)
}

/// latex2mathml reads a script's argument greedily, so some ordinary LaTeX comes out silently wrong:
/// `W_K^\top` becomes W with subscript K^T, `\mathbb{R}^n` loses its blackboard R, `\hat{x}_i` puts the
/// hat over x_i. These are rejected with the braced spelling that works.
fn lint_tex(tex: &str) -> Result<(), String> {
    #[derive(Debug)]
    enum Tok<'t> {
        Cmd(&'t str),
        Group,
        Script(char),
        Other,
    }
    let mut toks = Vec::new();
    let mut it = tex.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        match c {
            c if c.is_whitespace() => {}
            '\\' => {
                let start = i + 1;
                let mut end = start;
                match it.next() {
                    Some((j, d)) if d.is_ascii_alphabetic() => {
                        end = j + 1;
                        while let Some(&(k, e)) = it.peek() {
                            if !e.is_ascii_alphabetic() {
                                break;
                            }
                            end = k + 1;
                            it.next();
                        }
                    }
                    Some((j, d)) => end = j + d.len_utf8(),
                    None => {}
                }
                toks.push(Tok::Cmd(&tex[start..end]));
            }
            '{' => {
                let mut depth = 1;
                let mut end = tex.len();
                let mut escaped = false;
                for (j, d) in it.by_ref() {
                    match d {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = j;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let inner = &tex[i + 1..end];
                lint_tex(inner)?;
                toks.push(Tok::Group);
            }
            '_' | '^' => toks.push(Tok::Script(c)),
            _ => toks.push(Tok::Other),
        }
    }
    const BIG: &[&str] = &[
        "sum",
        "prod",
        "coprod",
        "bigcup",
        "bigcap",
        "bigoplus",
        "bigotimes",
        "bigodot",
        "biguplus",
        "bigvee",
        "bigwedge",
        "bigsqcup",
        "int",
        "iint",
        "iiint",
        "oint",
    ];
    const ONE_ARG: &[&str] = &[
        "mathrm",
        "mathit",
        "mathbf",
        "bm",
        "mathsf",
        "mathbb",
        "mathfrak",
        "mathscr",
        "mathcal",
        "texttt",
        "textbf",
        "textit",
        "sqrt",
        "dot",
        "ddot",
        "bar",
        "hat",
        "check",
        "breve",
        "acute",
        "grave",
        "tilde",
        "vec",
        "overline",
        "underline",
        "widehat",
        "widetilde",
        "overrightarrow",
        "overleftarrow",
        "slashed",
    ];
    const TWO_ARGS: &[&str] = &["frac", "binom", "tbinom", "dbinom", "overset", "underset"];
    for (i, t) in toks.iter().enumerate() {
        // `a_b^c` or `a^b_c` on an ordinary base.
        if let (Tok::Script(a), Some(Tok::Script(b))) = (t, toks.get(i + 2)) {
            let big = i > 0 && matches!(toks[i - 1], Tok::Cmd(name) if BIG.contains(&name));
            if a != b && !big {
                return Err(format!(
                    "latex2mathml would read `x{a}y{b}z` as x{a}{{y{b}z}}; write `{{x{a}y}}{b}z` instead"
                ));
            }
        }
        // A command with arguments, followed by a script.
        if let Tok::Cmd(name) = t {
            let args = if ONE_ARG.contains(name) {
                1
            } else if TWO_ARGS.contains(name) {
                2
            } else {
                0
            };
            if args > 0 {
                if let Some(Tok::Script(op)) = toks.get(i + 1 + args) {
                    return Err(format!(
                        "latex2mathml would apply the script in `\\{name}{{..}}{op}..` to the argument, not to the whole; \
                         wrap it in braces: `{{\\{name}{{..}}}}{op}..`"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A small XML well-formedness check: balanced tags, no stray `<` or `&` in text.
fn check_well_formed(s: &str) -> Result<(), String> {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(tag_start) = rest.strip_prefix('<') {
            let end = tag_start.find('>').ok_or("a tag is never closed")?;
            let tag = &tag_start[..end];
            if tag.contains('<') {
                return Err(format!("stray `<` in `<{tag}>`"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name.trim() => {}
                    Some(open) => return Err(format!("`</{name}>` closes `<{open}>`")),
                    None => return Err(format!("`</{name}>` closes nothing")),
                }
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().ok_or("an empty tag")?;
                stack.push(name);
            }
            rest = &tag_start[end + 1..];
        } else {
            let next = rest.find('<').unwrap_or(rest.len());
            let text = &rest[..next];
            let mut amp = text;
            while let Some(i) = amp.find('&') {
                let ent = &amp[i + 1..];
                let semi = ent.find(';').ok_or("a bare `&` in text")?;
                let name = &ent[..semi];
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '#') {
                    return Err("a bare `&` in text".into());
                }
                amp = &ent[semi + 1..];
            }
            rest = &rest[next..];
        }
    }
    match stack.pop() {
        Some(open) => Err(format!("`<{open}>` is never closed")),
        None => Ok(()),
    }
}

fn slugify(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_string()
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn display_name(path: &Path) -> String {
    format!("content/{}", path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// The whole build

fn build(content_dir: &Path) -> Result<String, Vec<String>> {
    let mut errors = Vec::new();
    let refs = parse_references(&content_dir.join(REFERENCES_FILE), &mut errors);
    println!("cargo:rerun-if-changed={}", content_dir.join(REFERENCES_FILE).display());
    let labels: HashMap<String, String> = refs.iter().map(|r| (r.key.clone(), r.label.clone())).collect();
    let by_key: HashMap<&str, &RefEntry> = refs.iter().map(|r| (r.key.as_str(), r)).collect();

    // Every other .md file is a section, named by its slug.
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

    let mut sections: Vec<(String, String)> = Vec::new();
    let mut cited_in: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (slug, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = display_name(path);
        if order(slug) == usize::MAX {
            println!("cargo:warning={name} is not a section in src/routes.rs (compiled, but nothing links to it)");
        }
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("{name}: cannot read it ({e})"));
                continue;
            }
        };
        if !text.trim_start().starts_with("# ") {
            errors.push(format!("{name}: the first line should be the section title, `# Title`"));
        }
        let blocks = parse_blocks(&name, &text, &mut errors);
        let mut ctx = RenderCtx::new(&name, &labels);
        let mut html = String::new();
        ctx.render_blocks(&blocks, &mut html);
        if !ctx.cited.is_empty() {
            let mut keys = ctx.cited.clone();
            keys.sort_by_key(|k| sort_key(&labels[k]));
            html.push_str("<section class=\"references\"><h2>References</h2><ol>\n");
            for key in &keys {
                let _ = writeln!(html, "<li id=\"ref-{key}\">{}</li>", by_key[key.as_str()].html);
                cited_in.entry(key.clone()).or_default().push(slug.clone());
            }
            html.push_str("</ol></section>\n");
        }
        errors.extend(ctx.errors);
        if let Some(i) = html.find('$') {
            let start = (0..=i.saturating_sub(40)).rev().find(|&j| html.is_char_boundary(j)).unwrap_or(0);
            let around: String = html[start..].chars().take(80).collect();
            errors.push(format!("{name}: a `$` is left in the text (unclosed math?) near `{around}`"));
        }
        sections.push((slug.clone(), html));
    }

    if !errors.is_empty() {
        return Err(errors);
    }

    // The complete list, alphabetical by label, each with the sections that cite it.
    let mut all: Vec<&RefEntry> = refs.iter().collect();
    all.sort_by_key(|r| sort_key(&r.label));
    let mut full = String::from("<section class=\"references\"><h1>References</h1><ol>\n");
    for r in &all {
        let _ = write!(full, "<li id=\"ref-{}\">{}", r.key, r.html);
        let slugs = cited_in.get(&r.key).map(Vec::as_slice).unwrap_or(&[]);
        if slugs.is_empty() {
            println!("cargo:warning=content/{REFERENCES_FILE}: `{}` is cited by no section", r.key);
        } else {
            let links: Vec<String> = slugs
                .iter()
                .map(|slug| {
                    let title = routes::SECTIONS
                        .iter()
                        .find(|s| s.slug == slug)
                        .map(|s| {
                            if s.number.is_empty() {
                                s.title.to_string()
                            } else {
                                format!("{} {}", s.number, s.title)
                            }
                        })
                        .unwrap_or_else(|| slug.clone());
                    format!("<a href=\"#/{slug}\">{}</a>", escape_html(&title))
                })
                .collect();
            let _ = write!(full, " <span class=\"cited-in\">Cited in: {}.</span>", links.join(", "));
        }
        full.push_str("</li>\n");
    }
    full.push_str("</ol></section>\n");

    // The generated Rust.
    let mut rs = String::from("// @generated by build.rs from content/*.md. Do not edit.\n\n");
    rs.push_str("static SECTION_HTML: &[(&str, &str)] = &[\n");
    for (slug, html) in &sections {
        let _ = writeln!(rs, "    ({slug:?}, {html:?}),");
    }
    rs.push_str("];\n\npub static REFERENCES: &[Reference] = &[\n");
    for r in &all {
        let slugs = cited_in.get(&r.key).cloned().unwrap_or_default();
        let _ = writeln!(
            rs,
            "    Reference {{ key: {:?}, label: {:?}, html: {:?}, cited_in: &{:?} }},",
            r.key, r.label, r.html, slugs
        );
    }
    rs.push_str("];\n\n");
    let _ = writeln!(rs, "static REFERENCES_HTML: &str = {full:?};");
    Ok(rs)
}

/// Alphabetical by label, ignoring case ("nostalgebraist 2020" sorts among the N's).
fn sort_key(label: &str) -> String {
    label.to_lowercase()
}
