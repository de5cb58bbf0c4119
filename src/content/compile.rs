//! The chapter compiler: `content/*.md` to HTML with MathML, run at build time through `driver.rs` by `build.rs`
//! (the exercises, compiled into the app) and by `chapter/` (the text, a file of the site), and by the native unit
//! tests below. Nothing here runs in the browser: the site ships finished HTML, so math renders without any
//! JavaScript. Plain std, pulldown-cmark and math-core; no app code (the driver passes the reading order and the
//! section titles in).
//!
//! The conventions an author can use in `content/{slug}.md` (one file per entry of `routes::SECTIONS`):
//!
//! - CommonMark with tables and smart punctuation; footnotes are off.
//! - `# Title` is the section title (kept as `<h1>`); `##`/`###` headings get slugified ids
//!   (`## Why it matters` -> `id="why-it-matters"`, a repeat gets `-2`, `-3`…); `{#custom-id}` after a
//!   heading sets one by hand, and a custom id used twice is an error.
//! - `$...$` is inline math, `$$...$$` display math, converted to MathML Core by math-core. Ordinary LaTeX
//!   works as written: `W_K^\top`, `\hat{x}_i`, `\|W\|_F^2`, `\mathbb{R}^n` (math-core writes the Unicode
//!   letter ℝ, which Chromium renders; it ignores `mathvariant`), `\operatorname{softmax}`, `\left(…\right)`,
//!   `\text{…}`. Math that math-core cannot convert (an unknown command, an unclosed group…) fails the build
//!   with the file, the line and the TeX.
//! - `[@key]` or `[@key1; @key2]` cites works listed in `content/references.md`, one per line:
//!   `- key | Short label | Full reference in markdown`. An unknown key fails the build. Each section
//!   ends with the list of the works it cites, alphabetical by label.
//! - Blocks, each opened by a line `:::NAME [title]` and closed by a line `:::`, may nest:
//!   `:::technical Title` -> `<details class="technical"><summary>Title</summary>…</details>`,
//!   `:::note [Title]` -> `<aside class="note">…</aside>`,
//!   `:::beyond [Title]` -> `<aside class="beyond"><p class="aside-label">Beyond the chapter…</p>…</aside>`.
//! - A prediction exercise, `:::predict ID` (shown in the chapter where it stands) or `:::card ID` (shown by
//!   the section's lab beside a live run, and not in the chapter), at the top level only and with no block
//!   inside. Its Markdown is the question, then the choices as the block's first ordered list (2 to 6 items,
//!   one line each, the right one ending in ` (*)`), then the reveal. `ID` is `[a-z0-9-]+`, unique in the
//!   chapter. The chapter gets `<div class="predict-slot" data-predict="ID"></div>` in its place (a `:::card`
//!   gets nothing), and `Chapter::predicts` the compiled parts, which the app renders as a control.
//!
//! Errors name the file and the line, and stop the build: broken text should never reach a student.
//!
//! Why math-core (0.7, the newest that builds with this project's rustc 1.95): it is maintained, emits only
//! MathML Core (what Chromium implements; no `mathvariant`, no stylesheet or web fonts needed) and returns a
//! `Result` with the position of the problem. pulldown-latex, the other candidate, also aims at MathML Core, but
//! its renderer writes parse errors into the output as `<merror>` and its tables and spacing rely on a stylesheet
//! and fonts of its own. latex2mathml, used before, is unmaintained, panicked or printed "[PARSE ERROR…]" into the
//! output, read scripts greedily (`W_K^\top` came out as W with subscript K^T) and emitted `mathvariant`.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use math_core::{LatexToMathML, MathCoreConfig, MathDisplay};
use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// The file in `content/` that lists the references; every other `.md` file is a section.
pub const REFERENCES_FILE: &str = "references.md";

/// One content file.
pub struct Source<'a> {
    /// The section's slug (`9.2.1`); unused for the references file.
    pub slug: &'a str,
    /// The name in messages: `content/9.2.1.md`.
    pub name: &'a str,
    pub text: &'a str,
}

/// The compiled chapter.
pub struct Chapter {
    /// `(slug, html)` in the order the sections were given (the reading order).
    pub sections: Vec<(String, String)>,
    /// Every reference, alphabetical by label.
    pub references: Vec<Reference>,
    /// The references page: every reference with links to the sections that cite it.
    pub references_html: String,
    /// Every `:::predict` and `:::card`, in reading order.
    pub predicts: Vec<Predict>,
    /// Problems that do not stop the build (a reference nobody cites).
    pub warnings: Vec<String>,
}

/// One prediction exercise, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Predict {
    pub id: String,
    /// The slug of the section it is written in.
    pub section: String,
    /// `:::card`: the lab shows it beside its live run; `:::predict`: the chapter shows it.
    pub in_lab: bool,
    /// The question, as HTML blocks.
    pub question: String,
    /// Each choice as inline HTML, without the answer mark.
    pub choices: Vec<String>,
    /// The index of the right choice.
    pub answer: usize,
    /// What is shown once the student has committed, as HTML blocks.
    pub reveal: String,
}

/// The slot a `:::predict` leaves in its section's HTML; the app puts the control there.
pub fn predict_slot(id: &str) -> String {
    format!("<div class=\"predict-slot\" data-predict=\"{id}\"></div>\n")
}

pub struct Reference {
    pub key: String,
    pub label: String,
    /// The full reference, rendered as inline HTML.
    pub html: String,
    /// Slugs of the sections citing it, in reading order.
    pub cited_in: Vec<String>,
}

/// Compiles the references file and the sections (given in reading order). `section_title` gives the title
/// shown for a slug in the references page's "Cited in" links. Every error found is returned, each starting
/// with `content/FILE.md:LINE:`.
pub fn compile(
    references: &Source,
    sections: &[Source],
    section_title: &dyn Fn(&str) -> String,
) -> Result<Chapter, Vec<String>> {
    let math = math_converter();
    let mut errors = Vec::new();
    let refs = parse_references(references, &math, &mut errors);
    let labels: HashMap<String, String> = refs.iter().map(|r| (r.key.clone(), r.label.clone())).collect();

    let mut html_sections: Vec<(String, String)> = Vec::new();
    let mut predicts: Vec<Predict> = Vec::new();
    let mut cited_in: HashMap<String, Vec<String>> = HashMap::new();
    for source in sections {
        let name = source.name;
        if !source.text.trim_start().starts_with("# ") {
            errors.push(format!("{name}:1: the first line should be the section title, `# Title`"));
        }
        let blocks = parse_blocks(name, source.text, &mut errors);
        let mut ctx = RenderCtx::new(name, &labels, &math);
        ctx.slug = source.slug.to_string();
        let mut html = String::new();
        ctx.render_blocks(&blocks, &mut html);
        for p in std::mem::take(&mut ctx.predicts) {
            if predicts.iter().any(|q| q.id == p.id) {
                errors.push(format!("{name}: the prediction id `{}` is used twice in the chapter", p.id));
            }
            predicts.push(p);
        }
        if !ctx.cited.is_empty() {
            let mut keys = ctx.cited.clone();
            keys.sort_by_key(|k| sort_key(&labels[k]));
            html.push_str("<section class=\"references\"><h2>References</h2><ol>\n");
            for key in &keys {
                let r = refs.iter().find(|r| &r.key == key).expect("cited keys are known");
                let _ = writeln!(html, "<li id=\"ref-{key}\">{}</li>", r.html);
                cited_in.entry(key.clone()).or_default().push(source.slug.to_string());
            }
            html.push_str("</ol></section>\n");
        }
        let found_dollar = ctx.errors.iter().any(|e| e.contains("a `$` is left"));
        errors.extend(ctx.errors);
        if let Some(i) = html.find('$').filter(|_| !found_dollar) {
            let start = (0..=i.saturating_sub(40)).rev().find(|&j| html.is_char_boundary(j)).unwrap_or(0);
            let around: String = html[start..].chars().take(80).collect();
            errors.push(format!("{name}: a `$` is left in the text (unclosed math?) near `{around}`"));
        }
        html_sections.push((source.slug.to_string(), html));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // The complete list, alphabetical by label, each with the sections that cite it.
    let mut warnings = Vec::new();
    let mut all: Vec<Reference> =
        refs.into_iter().map(|r| Reference { cited_in: cited_in.remove(&r.key).unwrap_or_default(), ..r }).collect();
    all.sort_by_key(|r| sort_key(&r.label));
    let mut full = String::from("<section class=\"references\"><h1>References</h1><ol>\n");
    for r in &all {
        let _ = write!(full, "<li id=\"ref-{}\">{}", r.key, r.html);
        if r.cited_in.is_empty() {
            warnings.push(format!("{}: `{}` is cited by no section", references.name, r.key));
        } else {
            let links: Vec<String> = r
                .cited_in
                .iter()
                .map(|slug| format!("<a href=\"#/{slug}\">{}</a>", escape_html(&section_title(slug))))
                .collect();
            let _ = write!(full, " <span class=\"cited-in\">Cited in: {}.</span>", links.join(", "));
        }
        full.push_str("</li>\n");
    }
    full.push_str("</ol></section>\n");
    Ok(Chapter { sections: html_sections, references: all, references_html: full, predicts, warnings })
}

fn math_converter() -> LatexToMathML {
    // Unknown commands are errors (the default); MathML Core only, no commands Chromium renders unreliably.
    let config = MathCoreConfig { xml_namespace: true, ..Default::default() };
    LatexToMathML::new(config).expect("no custom macros to parse")
}

// ---------------------------------------------------------------------------------------------
// References

fn parse_references(source: &Source, math: &LatexToMathML, errors: &mut Vec<String>) -> Vec<Reference> {
    let name = source.name;
    let mut refs: Vec<Reference> = Vec::new();
    let no_citations = HashMap::new();
    for (i, line) in source.text.lines().enumerate() {
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
        let mut ctx = RenderCtx::new(name, &no_citations, math);
        let html = ctx.render_inline(full, i + 1);
        errors.extend(ctx.errors);
        refs.push(Reference { key: key.to_string(), label: label.to_string(), html, cited_in: Vec::new() });
    }
    if refs.is_empty() && errors.is_empty() {
        errors.push(format!("{name}: lists no references (lines of the form `- key | Short label | Full reference`)"));
    }
    refs
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Alphabetical by label, ignoring case ("nostalgebraist 2020" sorts among the N's).
fn sort_key(label: &str) -> String {
    label.to_lowercase()
}

// ---------------------------------------------------------------------------------------------
// Block directives (:::technical, :::note, :::beyond, :::predict, :::card)

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Technical,
    Note,
    Beyond,
    /// A prediction exercise; `in_lab` for `:::card`.
    Predict {
        in_lab: bool,
    },
}

#[derive(Debug)]
enum Block {
    /// Markdown, starting at line `line` of the file.
    Markdown {
        text: String,
        line: usize,
    },
    Container {
        kind: Kind,
        title: String,
        line: usize,
        children: Vec<Block>,
    },
}

/// Splits a file into markdown runs and `:::` blocks. Lines inside fenced code are left alone.
fn parse_blocks(name: &str, text: &str, errors: &mut Vec<String>) -> Vec<Block> {
    struct Frame {
        /// The block's kind, title and the line that opened it; `None` for the file itself.
        kind: Option<(Kind, String, usize)>,
        children: Vec<Block>,
        md: String,
        md_line: usize,
    }
    impl Frame {
        fn new(kind: Option<(Kind, String, usize)>) -> Self {
            Frame { kind, children: Vec::new(), md: String::new(), md_line: 0 }
        }
        fn push_line(&mut self, line: &str, lineno: usize) {
            if self.md.is_empty() {
                self.md_line = lineno;
            }
            self.md.push_str(line);
            self.md.push('\n');
        }
        fn flush(&mut self) {
            let text = std::mem::take(&mut self.md);
            if !text.trim().is_empty() {
                self.children.push(Block::Markdown { text, line: self.md_line });
            }
        }
    }
    let mut stack = vec![Frame::new(None)];
    let mut fence: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let trimmed = line.trim();
        let depth = stack.len();
        let top = stack.last_mut().expect("the file's own frame is never popped");
        let in_predict = matches!(top.kind, Some((Kind::Predict { .. }, _, _)));
        if let Some(f) = &fence {
            if trimmed.starts_with(f.as_str()) {
                fence = None;
            }
            top.push_line(line, lineno);
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(trimmed[..3].to_string());
            top.push_line(line, lineno);
            continue;
        }
        let Some(rest) = trimmed.strip_prefix(":::") else {
            top.push_line(line, lineno);
            continue;
        };
        let rest = rest.trim();
        if rest.is_empty() {
            // Closing line.
            if stack.len() == 1 {
                errors.push(format!("{name}:{lineno}: `:::` closes a block, but no block is open"));
                continue;
            }
            let mut frame = stack.pop().expect("checked above");
            frame.flush();
            let (kind, title, opened) = frame.kind.expect("only the file's frame has no kind");
            let parent = stack.last_mut().expect("checked above");
            parent.flush();
            parent.children.push(Block::Container { kind, title, line: opened, children: frame.children });
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
            "predict" => Kind::Predict { in_lab: false },
            "card" => Kind::Predict { in_lab: true },
            other => {
                errors.push(format!(
                    "{name}:{lineno}: unknown block `:::{other}` (known: `:::technical Title`, `:::note`, `:::beyond`, \
                     `:::predict ID`, `:::card ID`)"
                ));
                continue;
            }
        };
        if let Kind::Predict { .. } = kind {
            let word = kind_word(kind);
            if depth > 1 {
                errors.push(format!("{name}:{lineno}: `:::{word}` must be at the top level, not inside another block"));
            }
            if title.is_empty() || !title.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                errors.push(format!(
                    "{name}:{lineno}: `:::{word}` needs an id of lower-case letters, digits and `-`: `:::{word} my-question`"
                ));
            }
        }
        if in_predict {
            errors.push(format!("{name}:{lineno}: a `:::predict` or `:::card` block cannot hold another block"));
        }
        if kind == Kind::Technical && title.is_empty() {
            errors.push(format!(
                "{name}:{lineno}: `:::technical` needs a title: `:::technical Title of the technical part`"
            ));
        }
        top.flush();
        stack.push(Frame::new(Some((kind, title, lineno))));
    }
    while stack.len() > 1 {
        let frame = stack.pop().expect("checked by the loop");
        let (kind, _, opened) = frame.kind.expect("only the file's frame has no kind");
        errors.push(format!(
            "{name}:{opened}: the `:::{}` block opened here is never closed with `:::`",
            kind_word(kind)
        ));
    }
    let mut top = stack.pop().expect("the file's own frame");
    top.flush();
    top.children
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Technical => "technical",
        Kind::Note => "note",
        Kind::Beyond => "beyond",
        Kind::Predict { in_lab: false } => "predict",
        Kind::Predict { in_lab: true } => "card",
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// Where the citation replacement changed the text: `new` in the replaced text came from `orig` in the source.
struct Splice {
    new: std::ops::Range<usize>,
    orig: std::ops::Range<usize>,
}

/// Markdown with its citations replaced, and the way back to the source's offsets (for line numbers).
struct Prepared<'s> {
    text: String,
    source: &'s str,
    splices: Vec<Splice>,
    line: usize,
}

impl Prepared<'_> {
    /// The line in the file of an offset in `text`.
    fn line_of(&self, offset: usize) -> usize {
        let orig = match self.splices.iter().rev().find(|s| s.new.start <= offset) {
            None => offset,
            Some(s) if offset < s.new.end => s.orig.start,
            Some(s) => offset - s.new.end + s.orig.end,
        };
        let orig = orig.min(self.source.len());
        self.line + self.source.as_bytes()[..orig].iter().filter(|&&b| b == b'\n').count()
    }
}

struct RenderCtx<'r> {
    /// "content/9.1.md", for messages.
    name: String,
    labels: &'r HashMap<String, String>,
    math: &'r LatexToMathML,
    /// Keys cited, in order of first citation.
    cited: Vec<String>,
    heading_ids: BTreeSet<String>,
    errors: Vec<String>,
    /// The section's slug, for the predictions it compiles.
    slug: String,
    predicts: Vec<Predict>,
}

impl<'r> RenderCtx<'r> {
    fn new(name: &str, labels: &'r HashMap<String, String>, math: &'r LatexToMathML) -> Self {
        RenderCtx {
            name: name.to_string(),
            labels,
            math,
            cited: Vec::new(),
            heading_ids: BTreeSet::new(),
            errors: Vec::new(),
            slug: String::new(),
            predicts: Vec::new(),
        }
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
                Block::Markdown { text, line } => out.push_str(&self.render_markdown(text, *line)),
                Block::Container { kind, title, line, children } => {
                    let title_html = if title.is_empty() { String::new() } else { self.render_inline(title, *line) };
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
                        Kind::Predict { in_lab } => {
                            let md = match children.as_slice() {
                                [Block::Markdown { text, line }] => Some((text.as_str(), *line)),
                                _ => None,
                            };
                            let Some((md, md_line)) = md else {
                                self.errors.push(format!(
                                    "{}:{line}: the `:::{}` block is empty",
                                    self.name,
                                    kind_word(*kind)
                                ));
                                continue;
                            };
                            if let Some(p) = self.predict(title, *in_lab, md, md_line, *line) {
                                if !in_lab {
                                    out.push_str(&predict_slot(&p.id));
                                }
                                self.predicts.push(p);
                            }
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

    /// A prediction block's Markdown (starting at line `md_line`; the block opened at `line`): the question
    /// before the first ordered list, the list's items as choices, and the reveal after it.
    fn predict(&mut self, id: &str, in_lab: bool, md: &str, md_line: usize, line: usize) -> Option<Predict> {
        let line_at = |offset: usize| md_line + md[..offset].matches('\n').count();
        let mut list: Option<std::ops::Range<usize>> = None;
        let mut items: Vec<std::ops::Range<usize>> = Vec::new();
        let mut depth = 0usize;
        for (event, range) in Parser::new_ext(md, Self::options()).into_offset_iter() {
            match event {
                Event::Start(Tag::List(first)) => {
                    if depth == 0 && list.is_none() && first.is_some() {
                        list = Some(range);
                    }
                    depth += 1;
                }
                Event::End(TagEnd::List(_)) => depth -= 1,
                Event::Start(Tag::Item) if depth == 1 && list.as_ref().is_some_and(|l| l.contains(&range.start)) => {
                    items.push(range)
                }
                _ => {}
            }
        }
        let word = kind_word(Kind::Predict { in_lab });
        let Some(list) = list else {
            self.errors.push(format!("{}:{line}: `:::{word} {id}` has no ordered list of choices (`1. …`)", self.name));
            return None;
        };
        let mut choices = Vec::new();
        let mut answers = Vec::new();
        for (k, item) in items.iter().enumerate() {
            let text = md[item.clone()].trim();
            let text = text.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start_matches(['.', ')']).trim();
            let (text, right) = match text.strip_suffix("(*)") {
                Some(t) => (t.trim_end(), true),
                None => (text, false),
            };
            if right {
                answers.push(k);
            }
            if text.contains('\n') {
                self.errors.push(format!("{}:{}: a choice must be one line", self.name, line_at(item.start)));
            }
            choices.push(self.render_inline(text, line_at(item.start)));
        }
        if !(2..=6).contains(&choices.len()) || answers.len() != 1 {
            self.errors.push(format!(
                "{}:{line}: `:::{word} {id}` needs 2 to 6 choices with exactly one marked ` (*)` (found {} choices, {} marked)",
                self.name,
                choices.len(),
                answers.len()
            ));
            return None;
        }
        let (before, after) = (&md[..list.start], &md[list.end..]);
        if before.trim().is_empty() || after.trim().is_empty() {
            self.errors.push(format!(
                "{}:{line}: `:::{word} {id}` needs a question before its choices and a reveal after them",
                self.name
            ));
            return None;
        }
        Some(Predict {
            id: id.to_string(),
            section: self.slug.clone(),
            in_lab,
            question: self.render_markdown(before, md_line),
            choices,
            answer: answers[0],
            reveal: self.render_markdown(after, line_at(list.end)),
        })
    }

    /// Markdown that starts at line `line` of the file.
    fn render_markdown(&mut self, md: &str, line: usize) -> String {
        let prepared = self.replace_citations(md, line);
        let events = self.transform(&prepared);
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, events.into_iter());
        html
    }

    /// One line of markdown (a title, a reference) rendered without its paragraph.
    fn render_inline(&mut self, md: &str, line: usize) -> String {
        let prepared = self.replace_citations(md, line);
        let events: Vec<Event> = self
            .transform(&prepared)
            .into_iter()
            .filter(|e| !matches!(e, Event::Start(Tag::Paragraph) | Event::End(TagEnd::Paragraph)))
            .collect();
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, events.into_iter());
        html.trim().to_string()
    }

    /// `[@a; @b]` -> `<span class="citation">(<a class="cite" …>A 2020</a>; <a …>B 2021</a>)</span>`, as inline
    /// HTML that the markdown parser passes through.
    fn replace_citations<'s>(&mut self, md: &'s str, line: usize) -> Prepared<'s> {
        let mut out = Prepared { text: String::with_capacity(md.len()), source: md, splices: Vec::new(), line };
        let mut pos = 0;
        while let Some(found) = md[pos..].find("[@") {
            let start = pos + found;
            out.text.push_str(&md[pos..start]);
            let Some(len) = md[start..].find(']') else {
                let at = out.line_of(out.text.len());
                self.errors.push(format!("{}:{at}: a citation `[@…` is never closed with `]`", self.name));
                out.text.push_str("[@");
                pos = start + 2;
                continue;
            };
            let end = start + len + 1;
            let inner = &md[start + 1..end - 1];
            let at = out.line_of(out.text.len());
            let mut links = Vec::new();
            for part in inner.split(';') {
                let part = part.trim();
                let Some(key) = part.strip_prefix('@').filter(|k| valid_key(k)) else {
                    self.errors.push(format!(
                        "{}:{at}: malformed citation `[{inner}]`: write `[@key]` or `[@key1; @key2]`",
                        self.name
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
                        "{}:{at}: unknown citation key `{key}` in `[{inner}]`: add it to content/{REFERENCES_FILE} \
                         as `- {key} | Short label | Full reference`",
                        self.name
                    )),
                }
            }
            let new_start = out.text.len();
            let _ = write!(out.text, "<span class=\"citation\">({})</span>", links.join("; "));
            out.splices.push(Splice { new: new_start..out.text.len(), orig: start..end });
            pos = end;
        }
        out.text.push_str(&md[pos..]);
        out
    }

    /// Parses prepared markdown, turning math into MathML and giving `##`/`###` headings ids.
    fn transform<'a>(&mut self, prepared: &'a Prepared) -> Vec<Event<'a>> {
        let mut out: Vec<Event<'a>> = Vec::new();
        let mut heading_start: Option<usize> = None;
        let mut heading_text = String::new();
        for (event, range) in Parser::new_ext(&prepared.text, Self::options()).into_offset_iter() {
            match event {
                Event::InlineMath(tex) => {
                    if heading_start.is_some() {
                        heading_text.push_str(&tex);
                    }
                    let line = prepared.line_of(range.start);
                    out.push(Event::InlineHtml(CowStr::from(self.math(&tex, MathDisplay::Inline, line))));
                }
                Event::DisplayMath(tex) => {
                    let line = prepared.line_of(range.start);
                    out.push(Event::InlineHtml(CowStr::from(self.math(&tex, MathDisplay::Block, line))));
                }
                Event::Start(Tag::Heading { level, id, classes, attrs }) => {
                    if matches!(level, HeadingLevel::H2 | HeadingLevel::H3) && id.is_none() {
                        heading_start = Some(out.len());
                        heading_text.clear();
                    } else if let Some(id) = &id {
                        if !self.heading_ids.insert(id.to_string()) {
                            let line = prepared.line_of(range.start);
                            self.errors.push(format!("{}:{line}: heading id `{id}` is used twice", self.name));
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
                    if t.contains('$') {
                        // pulldown-cmark leaves `$` as text when it is not math (unclosed, or braces unbalanced).
                        let line = prepared.line_of(range.start);
                        self.errors.push(format!(
                            "{}:{line}: a `$` is left in the text (unclosed math, or unbalanced braces in it?)",
                            self.name
                        ));
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

    fn math(&mut self, tex: &str, display: MathDisplay, line: usize) -> String {
        match convert_math(self.math, tex, display) {
            Ok(mathml) => mathml,
            Err(why) => {
                let delim = if display == MathDisplay::Block { "$$" } else { "$" };
                self.errors.push(format!(
                    "{}:{line}: cannot convert the math {delim}{tex}{delim} to MathML: {why}",
                    self.name
                ));
                String::new()
            }
        }
    }
}

/// TeX to MathML Core. math-core returns an error for anything it cannot convert; its warnings (an unknown
/// `\ref`) are errors here too.
fn convert_math(math: &LatexToMathML, tex: &str, display: MathDisplay) -> Result<String, String> {
    match math.convert_with_local_state(tex, display) {
        Ok(result) if result.warnings.has_any() => Err("it refers to an undefined label or command".to_string()),
        Ok(result) => Ok(result.mathml),
        Err(e) => {
            // `to_message` starts with the character offset of the problem in the TeX.
            let mut msg = String::new();
            e.to_message(&mut msg, tex);
            Err(match msg.split_once(": ") {
                Some((at, what)) => format!("{what} (at character {at})"),
                None => msg,
            })
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const REFS: &str = "# References\n\
        - olsson2022 | Olsson et al. 2022 | Olsson, C. et al. (2022). *In-context Learning and Induction Heads*.\n\
        - elhage2021 | Elhage et al. 2021 | Elhage, N. et al. (2021). A Mathematical Framework.\n\
        - bricken2023 | Bricken & al. 2023 | Bricken, T. et al. (2023). Towards Monosemanticity.\n";

    fn title(slug: &str) -> String {
        format!("Title of {slug}")
    }

    /// Compiles one section (`content/s.md`) against `REFS`.
    fn one(text: &str) -> Result<Chapter, Vec<String>> {
        let refs = Source { slug: "", name: "content/references.md", text: REFS };
        compile(&refs, &[Source { slug: "s", name: "content/s.md", text }], &title)
    }

    fn html(text: &str) -> String {
        match one(text) {
            Ok(c) => c.sections.into_iter().next().unwrap().1,
            Err(e) => panic!("unexpected errors: {e:#?}"),
        }
    }

    fn errors(text: &str) -> Vec<String> {
        match one(text) {
            Ok(_) => panic!("expected errors for {text:?}"),
            Err(e) => e,
        }
    }

    fn math(tex: &str, display: MathDisplay) -> Result<String, String> {
        convert_math(&math_converter(), tex, display)
    }

    // --- Directives

    #[test]
    fn technical_block_is_a_details_with_a_summary() {
        let h = html("# T\n\nBefore.\n\n:::technical How it *works*\nInside.\n:::\n\nAfter.\n");
        assert_eq!(
            h,
            "<h1>T</h1>\n<p>Before.</p>\n<details class=\"technical\"><summary>How it <em>works</em></summary>\n\
             <p>Inside.</p>\n</details>\n<p>After.</p>\n"
        );
    }

    #[test]
    fn note_with_and_without_a_title() {
        assert_eq!(
            html("# T\n:::note\nA note.\n:::\n"),
            "<h1>T</h1>\n<aside class=\"note\">\n<p>A note.</p>\n</aside>\n"
        );
        assert_eq!(
            html("# T\n:::note Careful\nA note.\n:::\n"),
            "<h1>T</h1>\n<aside class=\"note\">\n<p class=\"aside-label\">Careful</p>\n<p>A note.</p>\n</aside>\n"
        );
    }

    #[test]
    fn beyond_block_says_beyond_the_chapter() {
        assert_eq!(
            html("# T\n:::beyond\nMore.\n:::\n"),
            "<h1>T</h1>\n<aside class=\"beyond\">\n<p class=\"aside-label\">Beyond the chapter</p>\n<p>More.</p>\n</aside>\n"
        );
        assert!(html("# T\n:::beyond Circuits\nMore.\n:::\n")
            .contains("<p class=\"aside-label\">Beyond the chapter: Circuits</p>"));
    }

    #[test]
    fn blocks_nest() {
        let h = html("# T\n:::technical Outer\nA.\n:::note\nB.\n:::\nC.\n:::\n");
        assert_eq!(
            h,
            "<h1>T</h1>\n<details class=\"technical\"><summary>Outer</summary>\n<p>A.</p>\n\
             <aside class=\"note\">\n<p>B.</p>\n</aside>\n<p>C.</p>\n</details>\n"
        );
    }

    const PREDICT: &str = "# T\n\nBefore.\n\n:::predict lens-first\nWhich *layer* first?\n\n1. The embedding\n2. Layer $2$ (*)\n3. None\n\nLayer 2, see [the lab](#/9.2.2?text=a).\n:::\n\nAfter.\n";

    #[test]
    fn a_prediction_compiles_to_its_parts_and_leaves_a_slot() {
        let c = one(PREDICT).unwrap();
        let h = &c.sections[0].1;
        assert_eq!(h, "<h1>T</h1>\n<p>Before.</p>\n<div class=\"predict-slot\" data-predict=\"lens-first\"></div>\n<p>After.</p>\n");
        let [p] = c.predicts.as_slice() else { panic!("{:?}", c.predicts) };
        assert_eq!((p.id.as_str(), p.section.as_str(), p.in_lab, p.answer), ("lens-first", "s", false, 1));
        assert_eq!(p.question, "<p>Which <em>layer</em> first?</p>\n");
        assert_eq!(p.choices[0], "The embedding");
        assert!(p.choices[1].starts_with("Layer <math") && !p.choices[1].contains("(*)"), "{}", p.choices[1]);
        assert_eq!(p.choices[2], "None");
        assert_eq!(p.reveal, "<p>Layer 2, see <a href=\"#/9.2.2?text=a\">the lab</a>.</p>\n");
    }

    #[test]
    fn a_card_is_compiled_but_left_out_of_the_chapter() {
        let c = one(&PREDICT.replace(":::predict", ":::card")).unwrap();
        assert_eq!(c.sections[0].1, "<h1>T</h1>\n<p>Before.</p>\n<p>After.</p>\n");
        assert!(c.predicts[0].in_lab);
    }

    #[test]
    fn prediction_errors_name_file_and_line() {
        let e = errors("# T\n:::predict x\nQ?\n\n1. a\n2. b\n\nR.\n:::\n");
        assert!(
            e[0].starts_with("content/s.md:2: `:::predict x` needs 2 to 6 choices with exactly one marked"),
            "{e:?}"
        );
        let e = errors("# T\n:::predict x\nQ?\n\n1. a (*)\n2. b\n:::\n");
        assert!(e[0].contains("needs a question before its choices and a reveal after them"), "{e:?}");
        let e = errors("# T\n:::predict x\nQ?\n\n- a (*)\n- b\n\nR.\n:::\n");
        assert!(e[0].contains("has no ordered list of choices"), "{e:?}");
        let e = errors("# T\n:::note\n:::predict x\nQ?\n\n1. a (*)\n2. b\n\nR.\n:::\n:::\n");
        assert!(e[0].starts_with("content/s.md:3: `:::predict` must be at the top level"), "{e:?}");
        let e = errors("# T\n:::predict Bad_Id\nQ?\n\n1. a (*)\n2. b\n\nR.\n:::\n");
        assert!(e[0].contains("needs an id of lower-case letters"), "{e:?}");
        let twice = format!("{PREDICT}\n{}", &PREDICT[4..]);
        assert!(errors(&twice).iter().any(|e| e.contains("`lens-first` is used twice")), "{:?}", errors(&twice));
    }

    #[test]
    fn block_markers_inside_fenced_code_are_text() {
        let h = html("# T\n```\n:::note\n```\n");
        assert!(h.contains("<pre><code>:::note\n</code></pre>"), "{h}");
    }

    #[test]
    fn block_errors_name_file_and_line() {
        assert_eq!(
            errors("# T\n\n:::technical Open\ntext\n"),
            ["content/s.md:3: the `:::technical` block opened here is never closed with `:::`"]
        );
        let e = errors("# T\n:::warning\nx\n:::\n");
        assert!(e[0].starts_with("content/s.md:2: unknown block `:::warning`"), "{e:?}");
        assert_eq!(errors("# T\ntext\n:::\n"), ["content/s.md:3: `:::` closes a block, but no block is open"]);
        let e = errors("# T\n:::technical\nx\n:::\n");
        assert!(e[0].starts_with("content/s.md:2: `:::technical` needs a title"), "{e:?}");
    }

    #[test]
    fn a_section_must_start_with_its_title() {
        assert_eq!(errors("Text first.\n"), ["content/s.md:1: the first line should be the section title, `# Title`"]);
    }

    // --- Citations

    #[test]
    fn one_citation_links_to_the_reference_list_at_the_end() {
        let h = html("# T\n\nInduction heads [@olsson2022].\n");
        assert_eq!(
            h,
            "<h1>T</h1>\n<p>Induction heads <span class=\"citation\">(<a class=\"cite\" href=\"#ref-olsson2022\" \
             data-ref=\"olsson2022\">Olsson et al. 2022</a>)</span>.</p>\n\
             <section class=\"references\"><h2>References</h2><ol>\n\
             <li id=\"ref-olsson2022\">Olsson, C. et al. (2022). <em>In-context Learning and Induction Heads</em>.</li>\n\
             </ol></section>\n"
        );
    }

    #[test]
    fn several_citations_share_one_parenthesis_and_the_list_is_alphabetical() {
        let h = html("# T\n\nA [@olsson2022; @elhage2021]. B [@olsson2022].\n");
        assert!(h.contains(
            "<span class=\"citation\">(<a class=\"cite\" href=\"#ref-olsson2022\" data-ref=\"olsson2022\">Olsson et al. \
             2022</a>; <a class=\"cite\" href=\"#ref-elhage2021\" data-ref=\"elhage2021\">Elhage et al. 2021</a>)</span>"
        ));
        // Listed once each, Elhage before Olsson; Bricken is not cited here, so not listed.
        let list = &h[h.find("<section class=\"references\">").unwrap()..];
        assert_eq!(list.matches("<li").count(), 2);
        assert!(list.find("ref-elhage2021").unwrap() < list.find("ref-olsson2022").unwrap());
        assert!(!h.contains("bricken"));
    }

    #[test]
    fn unknown_citation_key_is_an_error_with_its_line() {
        let e = errors("# T\n\nFine.\nBad [@nobody2020].\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("content/s.md:4: unknown citation key `nobody2020` in `[@nobody2020]`"), "{e:?}");
        let e = errors("# T\n\nBad [@olsson2022; x y].\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("content/s.md:3: malformed citation `[@olsson2022; x y]`"), "{e:?}");
    }

    #[test]
    fn unclosed_citation_is_an_error() {
        let e = errors("# T\n\nText [@olsson2022 and more\n");
        assert_eq!(e, ["content/s.md:3: a citation `[@…` is never closed with `]`"]);
    }

    #[test]
    fn the_references_page_links_each_work_to_the_sections_citing_it() {
        let refs = Source { slug: "", name: "content/references.md", text: REFS };
        let a = Source { slug: "a", name: "content/a.md", text: "# A\n[@olsson2022]\n" };
        let b = Source { slug: "b", name: "content/b.md", text: "# B\n[@olsson2022; @bricken2023]\n" };
        let c = compile(&refs, &[a, b], &title).unwrap();
        let keys: Vec<_> = c.references.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["bricken2023", "elhage2021", "olsson2022"]);
        assert_eq!(c.references[2].cited_in, ["a", "b"]);
        assert!(c.references_html.contains(
            "<li id=\"ref-olsson2022\">Olsson, C. et al. (2022). <em>In-context Learning and Induction Heads</em>. \
             <span class=\"cited-in\">Cited in: <a href=\"#/a\">Title of a</a>, <a href=\"#/b\">Title of b</a>.</span></li>"
        ));
        assert_eq!(c.warnings, ["content/references.md: `elhage2021` is cited by no section"]);
    }

    #[test]
    fn malformed_reference_lines_are_errors() {
        let refs = Source {
            slug: "",
            name: "content/references.md",
            text: "- good | Good 2020 | Good.\n- bad key | X | Y\n- good | Again | Z\n- short | only two\n",
        };
        let e = compile(&refs, &[], &title).err().unwrap();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("content/references.md:2: reference key `bad key`"));
        assert_eq!(e[1], "content/references.md:3: reference key `good` is listed twice");
        assert!(e[2].starts_with("content/references.md:4: expected `- key | Short label | Full reference`"));
    }

    // --- Headings

    #[test]
    fn headings_get_slug_ids() {
        assert_eq!(slugify("Why it matters, for safety!"), "why-it-matters-for-safety");
        assert_eq!(slugify("K-composition: two heads"), "k-composition-two-heads");
        assert_eq!(slugify("Über große Modelle"), "über-große-modelle");
        let h = html("# Title\n\n## Why it *matters*\n\n### The `QK` circuit\n");
        assert!(h.contains("<h1>Title</h1>"), "{h}");
        assert!(h.contains("<h2 id=\"why-it-matters\">Why it <em>matters</em></h2>"), "{h}");
        assert!(h.contains("<h3 id=\"the-qk-circuit\">The <code>QK</code> circuit</h3>"), "{h}");
    }

    #[test]
    fn custom_heading_ids_and_duplicates() {
        let h = html("# T\n\n## Setup {#my-setup}\n\n## Results\n\n## Results\n\n## ?!\n");
        assert!(h.contains("<h2 id=\"my-setup\">Setup</h2>"), "{h}");
        assert!(h.contains("<h2 id=\"results\">Results</h2>"), "{h}");
        assert!(h.contains("<h2 id=\"results-2\">Results</h2>"), "{h}");
        assert!(h.contains("<h2 id=\"section\">?!</h2>"), "{h}");
        assert_eq!(errors("# T\n\n## A {#x}\n\n## B {#x}\n"), ["content/s.md:5: heading id `x` is used twice"]);
    }

    // --- Escaping

    #[test]
    fn text_and_titles_are_escaped() {
        let h = html("# Q & A\n\nIf a < b & b > c, then \"a\" < c.\n\n:::technical Cost < 1 & more\nx\n:::\n");
        assert!(h.contains("<h1>Q &amp; A</h1>"), "{h}");
        assert!(h.contains("<p>If a &lt; b &amp; b &gt; c, then “a” &lt; c.</p>"), "{h}");
        assert!(h.contains("<summary>Cost &lt; 1 &amp; more</summary>"), "{h}");
        // A label with `&` is escaped in the link text.
        assert!(html("# T\n[@bricken2023]\n").contains(">Bricken &amp; al. 2023</a>"));
        let refs = Source { slug: "", name: "content/references.md", text: REFS };
        let s = Source { slug: "s", name: "content/s.md", text: "# S\n[@olsson2022]\n" };
        let c = compile(&refs, &[s], &|_| "A <b> & c".to_string()).unwrap();
        assert!(c.references_html.contains("<a href=\"#/s\">A &lt;b&gt; &amp; c</a>"));
    }

    // --- Math

    #[test]
    fn inline_and_display_math_become_mathml() {
        let h = html("# T\n\nWith $x^2$:\n\n$$\\frac{a}{b}$$\n");
        assert!(
            h.contains(
                "With <math xmlns=\"http://www.w3.org/1998/Math/MathML\"><msup><mi>x</mi><mn>2</mn></msup></math>:"
            ),
            "{h}"
        );
        assert!(h.contains("<math xmlns=\"http://www.w3.org/1998/Math/MathML\" display=\"block\">"), "{h}");
        assert!(h.contains("<mfrac><mi>a</mi><mi>b</mi></mfrac>"), "{h}");
        assert!(!h.contains('$'));
    }

    #[test]
    fn math_errors_name_file_line_and_tex() {
        let e = errors("# T\n\nFine $x$.\n\nThen\n$\\frob{x}$ here.\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("content/s.md:6: cannot convert the math $\\frob{x}$ to MathML: "), "{e:?}");
        assert!(e[0].contains("frob"), "{e:?}");
        // Display math, after a citation that the compiler rewrote on an earlier line.
        let e = errors("# T\n\nSee [@olsson2022; @elhage2021]\nand\n\n$$\\frac{1}$$\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("content/s.md:6: cannot convert the math $$\\frac{1}$$ to MathML: "), "{e:?}");
        // Inside a block, on the block's own lines.
        let e = errors("# T\n:::technical T\nx\n\n$$a^$$\n:::\n");
        assert!(e[0].starts_with("content/s.md:5: cannot convert the math $$a^$$"), "{e:?}");
        // A `$` that pulldown-cmark does not take as math is reported rather than shipped.
        let e = errors("# T\n\nIt costs $5.\n");
        assert_eq!(e, ["content/s.md:3: a `$` is left in the text (unclosed math, or unbalanced braces in it?)"]);
        let e = errors("# T\n\nA\n$\\frac{1}{2$ b.\n");
        assert!(e[0].starts_with("content/s.md:4: a `$` is left in the text"), "{e:?}");
    }

    #[test]
    fn scripts_attach_as_in_latex() {
        // latex2mathml read `W_K^\top` as W_{K^T}; math-core gives one msubsup on W.
        let m = math(r"W_K^\top", MathDisplay::Inline).unwrap();
        assert!(m.contains("<msubsup><mi>W</mi><mi>K</mi>"), "{m}");
        let m = math(r"\hat{x}_i", MathDisplay::Inline).unwrap();
        assert!(m.starts_with("<math xmlns=\"http://www.w3.org/1998/Math/MathML\"><msub><mover"), "{m}");
        let m = math(r"\sum_{i=0}^{n} x_i", MathDisplay::Block).unwrap();
        assert!(m.contains("<munderover>"), "{m}");
    }

    #[test]
    fn blackboard_letters_are_unicode_not_mathvariant() {
        let m = math(r"x \in \mathbb{R}^n", MathDisplay::Inline).unwrap();
        assert!(m.contains('ℝ'), "{m}");
        assert!(!m.contains("mathvariant=\"double-struck\""), "{m}");
    }

    #[test]
    fn math_output_is_escaped() {
        let m = math(r"a < b > c", MathDisplay::Inline).unwrap();
        assert!(m.contains("<mo>&lt;</mo>") && m.contains("<mo>&gt;</mo>"), "{m}");
        let m = math(r"\text{a & b}", MathDisplay::Inline);
        assert!(m.map_or(true, |m| m.contains("&amp;")));
    }
}
