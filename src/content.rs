//! The chapter text: `content/*.md`, compiled to HTML (with MathML for the math) at build time by the compiler in
//! `content/compile.rs`, which `build.rs` runs (through `content/driver.rs`).
//!
//! What the app needs at once is compiled in: the exercises (`PREDICTS`) and the references' entries
//! (`REFERENCES`, with the sections citing each). The text itself, each section's HTML and the references page's,
//! is data, not code: in the browser it is one file of the built site, `CHAPTER_FILE`, written by the pre-build
//! program `chapter/` and fetched once at start (`app::core::load::load_chapter`), read by `ChapterText` and cut
//! at its exercises by `pieces`. Native builds (the tests) also have it compiled in: `section_html`,
//! `references_html`, `section_pieces`.
//!
//! Markup the UI can style (see `content/compile.rs` for the authoring side):
//! - `details.technical > summary`: each method's collapsible technical part;
//! - `aside.note`, `aside.beyond` (with `p.aside-label`, "Beyond the chapter"): boxes;
//! - `span.citation > a.cite[data-ref]`: a citation, `href="#ref-KEY"`;
//! - `section.references > ol > li#ref-KEY`: the works a section cites, at its end;
//! - `math` (inline) and `math[display=block]`: MathML Core.

/// One entry of `content/references.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    pub key: &'static str,
    /// Author–year, as shown in the text ("Olsson et al. 2022").
    pub label: &'static str,
    /// The full reference, as inline HTML.
    pub html: &'static str,
    /// Slugs of the sections that cite it, in reading order.
    pub cited_in: &'static [&'static str],
}

/// A prediction exercise (`:::predict` in the chapter, `:::card` in a lab): the student commits to a choice
/// before the reveal is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Predict {
    /// Unique in the chapter; the key of the student's answer in their stored progress.
    pub id: &'static str,
    /// The slug of the section it belongs to.
    pub section: &'static str,
    /// Shown by the section's lab beside a live run (`:::card`), not in the chapter.
    pub in_lab: bool,
    /// HTML blocks.
    pub question: &'static str,
    /// Inline HTML, one per choice.
    pub choices: &'static [&'static str],
    /// The index of the right choice.
    pub answer: usize,
    /// HTML blocks shown once the student has committed (for a card: once its run has finished).
    pub reveal: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/content.rs"));

/// A piece of a section's HTML: text, or the place of a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Html(&'a str),
    Predict(&'static Predict),
}

/// The slot the compiler leaves for a `:::predict` (as `compile::predict_slot` writes it).
const SLOT_START: &str = "<div class=\"predict-slot\" data-predict=\"";
const SLOT_END: &str = "\"></div>\n";

/// A section's HTML cut at its predictions' slots, so the chapter pane can put a live control in each. A slot
/// naming no exercise of this build ends the cutting: the rest is shown as it is (the slot is an empty `div`).
pub fn pieces(html: &str) -> Vec<Piece<'_>> {
    let mut rest = html;
    let mut pieces = Vec::new();
    while let Some(i) = rest.find(SLOT_START) {
        let after = &rest[i + SLOT_START.len()..];
        let Some(j) = after.find(SLOT_END) else { break };
        let Some(p) = predict(&after[..j]) else { break };
        if i > 0 {
            pieces.push(Piece::Html(&rest[..i]));
        }
        pieces.push(Piece::Predict(p));
        rest = &after[j + SLOT_END.len()..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Html(rest));
    }
    pieces
}

/// How much of a page's HTML the chapter pane shows at once, at least: more than a 1920x1080 pane holds (about
/// 3 KB of it with its markup). The pane builds the page up to its first `fold` after this many bytes at once, and
/// the rest when the page is next idle: a section's full HTML is most of a first visit's work for its chapter pane
/// (about 30 ms of the attention primer's 22 KB, measured), and the pane shows less than a fifth of it.
pub const LEAD_BYTES: usize = 4096;

/// The elements a fold may not be inside.
const BLOCKS: [&str; 10] = ["details", "section", "aside", "div", "blockquote", "ul", "ol", "li", "table", "figure"];

/// The first place at or after byte `from` where `html` may be cut in two whole halves: the start of a line
/// opening an `<h2` or a `<details`, with every block element before it closed. None if there is none (or it is
/// at the very start). A prediction's slot is a closed `div`, so `pieces` of the two halves are those of `html`.
pub fn fold(html: &str, from: usize) -> Option<usize> {
    let opens = |head: &str, tag: &str| {
        head.match_indices('<')
            .filter(|(i, _)| {
                let after = &head[i + 1..];
                after.starts_with(tag) && matches!(after.as_bytes().get(tag.len()), Some(b'>' | b' ' | b'\n'))
            })
            .count()
    };
    let closed = |head: &str| BLOCKS.iter().all(|tag| opens(head, tag) == head.matches(&format!("</{tag}>")).count());
    html.match_indices('\n')
        .map(|(i, _)| i + 1)
        .filter(|&i| i >= from.max(1) && i < html.len())
        .filter(|&i| html[i..].starts_with("<h2") || html[i..].starts_with("<details"))
        .find(|&i| closed(&html[..i]))
}

/// The chapter's text as the site serves it (`CHAPTER_FILE`, written by `content/driver.rs`'s `chapter_json`):
/// `{"sections": {slug: html, ...}, "references": html}`. Read once, then kept for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChapterText {
    sections: Vec<(String, String)>,
    references: String,
}

impl ChapterText {
    /// Reads the file; a broken one (not JSON, a part missing or not text, a section of `routes::SECTIONS`
    /// without text) is an error that says what is wrong.
    pub fn from_json(json: &str) -> Result<Self, String> {
        use serde_json::Value;
        let value: Value = serde_json::from_str(json).map_err(|e| format!("it is not valid JSON ({e})"))?;
        let Value::Object(mut file) = value else { return Err("it is not a JSON object".into()) };
        let Some(Value::Object(found)) = file.remove("sections") else {
            return Err("it has no `sections` object".into());
        };
        let Some(Value::String(references)) = file.remove("references") else {
            return Err("it has no `references` text".into());
        };
        let mut sections = Vec::with_capacity(found.len());
        for (slug, html) in found {
            let Value::String(html) = html else { return Err(format!("section `{slug}` is not text")) };
            sections.push((slug, html));
        }
        let text = ChapterText { sections, references };
        if let Some(s) = crate::routes::SECTIONS.iter().find(|s| text.section(s.slug).is_none()) {
            return Err(format!("it has no text for section {} (`{}`)", s.number, s.slug));
        }
        Ok(text)
    }

    /// The HTML of a section (`content/{slug}.md`), ending with the list of the works it cites.
    pub fn section(&self, slug: &str) -> Option<&str> {
        self.sections.iter().find(|(s, _)| s == slug).map(|(_, html)| html.as_str())
    }

    /// Every reference, alphabetical by label, each `<li id="ref-KEY">` followed by links to the sections citing
    /// it.
    pub fn references(&self) -> &str {
        &self.references
    }
}

/// A prediction by id.
pub fn predict(id: &str) -> Option<&'static Predict> {
    PREDICTS.iter().find(|p| p.id == id)
}

/// The predictions of a section, in reading order (its chapter's and its lab's).
pub fn section_predicts(slug: &str) -> impl Iterator<Item = &'static Predict> + '_ {
    PREDICTS.iter().filter(move |p| p.section == slug)
}

// The compiler and its driver, for their unit tests (build.rs and chapter/ include the same files).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod compile;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod driver;
#[cfg(all(test, not(target_arch = "wasm32")))]
use crate::routes;

/// The HTML of a section (`content/{slug}.md`), ending with the list of the works it cites. Native builds only:
/// the browser reads it from `CHAPTER_FILE` (`ChapterText::section`).
#[cfg(not(target_arch = "wasm32"))]
pub fn section_html(slug: &str) -> Option<&'static str> {
    SECTION_HTML.iter().find(|(s, _)| *s == slug).map(|(_, html)| *html)
}

/// `pieces` of a section's compiled-in HTML (native builds only).
#[cfg(not(target_arch = "wasm32"))]
pub fn section_pieces(slug: &str) -> Vec<Piece<'static>> {
    section_html(slug).map(pieces).unwrap_or_default()
}

/// Every reference, alphabetical by label, each `<li id="ref-KEY">` followed by links to the sections citing it.
/// Native builds only: the browser reads it from `CHAPTER_FILE` (`ChapterText::references`).
#[cfg(not(target_arch = "wasm32"))]
pub fn references_html() -> &'static str {
    REFERENCES_HTML
}

/// A reference by key (for a tooltip on `a.cite[data-ref]`).
pub fn reference(key: &str) -> Option<&'static Reference> {
    REFERENCES.iter().find(|r| r.key == key)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::routes::SECTIONS;

    fn html(slug: &str) -> &'static str {
        section_html(slug).unwrap_or_else(|| panic!("no HTML for section `{slug}`"))
    }

    /// Values of `attr="..."` in order of appearance.
    fn attr_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
        let pat = format!("{attr}=\"");
        let mut out = Vec::new();
        let mut rest = html;
        while let Some(i) = rest.find(&pat) {
            let v = &rest[i + pat.len()..];
            let end = v.find('"').expect("unterminated attribute");
            out.push(&v[..end]);
            rest = &v[end..];
        }
        out
    }

    #[test]
    fn every_section_has_text_with_a_title() {
        for s in SECTIONS {
            let h = html(s.slug);
            assert!(h.starts_with("<h1>"), "{} should open with its title: {:.80}", s.slug, h);
            assert!(h.len() > 600, "{} is too short to be a section ({} bytes)", s.slug, h.len());
        }
        assert_eq!(section_html("no-such-section"), None);
    }

    #[test]
    fn written_sections_have_a_technical_part() {
        for slug in ["overview", "9.1", "9.2.1", "attention", "9.2.2", "9.2.3", "9.2.4", "9.2.5", "9.3.2"] {
            let h = html(slug);
            let i =
                h.find("<details class=\"technical\"><summary>").unwrap_or_else(|| panic!("{slug}: no technical part"));
            let summary = &h[i..];
            let end = summary.find("</summary>").unwrap();
            assert!(
                end > "<details class=\"technical\"><summary>".len(),
                "{slug}: the technical part has an empty title"
            );
            assert_eq!(h.matches("<details").count(), h.matches("</details>").count(), "{slug}: unbalanced details");
        }
    }

    #[test]
    fn math_is_mathml() {
        let h = html("attention");
        assert!(h.contains("<math xmlns=\"http://www.w3.org/1998/Math/MathML\" display=\"block\">"), "no display math");
        assert!(h.contains("<math xmlns=\"http://www.w3.org/1998/Math/MathML\"><mi>"), "no inline math");
        // The attention formula: a softmax over a fraction with a square root.
        assert!(h.contains(">softmax</mo>") && h.contains("<msqrt>") && h.contains("<mfrac>"));
        for s in SECTIONS {
            let h = html(s.slug);
            assert_eq!(h.matches("<math").count(), h.matches("</math>").count(), "{}: unbalanced math", s.slug);
            assert!(!h.contains("<merror"), "{}: an error rendered into the math", s.slug);
        }
    }

    #[test]
    fn no_raw_math_or_citation_markup_survives() {
        for s in SECTIONS {
            let h = html(s.slug);
            assert!(!h.contains('$'), "{}: a raw `$` survived", s.slug);
            assert!(!h.contains("[@"), "{}: a raw citation survived", s.slug);
            assert!(!h.contains(":::"), "{}: a raw block marker survived", s.slug);
            assert!(!h.contains("class=\"math"), "{}: math left to pulldown-cmark's default", s.slug);
        }
        assert!(!references_html().contains("[@") && !references_html().contains('$'));
    }

    /// A section's HTML with its exercises' (whose citations its reference list includes).
    fn with_predicts(slug: &str) -> String {
        let mut out = html(slug).to_string();
        for p in section_predicts(slug) {
            out.push_str(p.question);
            out.extend(p.choices.iter().copied());
            out.push_str(p.reveal);
        }
        out
    }

    #[test]
    fn every_citation_resolves_within_its_section() {
        let mut total = 0;
        for s in SECTIONS {
            let full = with_predicts(s.slug);
            let h = full.as_str();
            let ids = attr_values(h, "id");
            let cites = attr_values(h, "data-ref");
            for key in &cites {
                assert!(ids.contains(&format!("ref-{key}").as_str()), "{}: `{key}` is cited but not listed", s.slug);
                assert!(h.contains(&format!("<a class=\"cite\" href=\"#ref-{key}\" data-ref=\"{key}\">")));
                let r = reference(key).unwrap_or_else(|| panic!("{key} not in REFERENCES"));
                assert!(h.contains(&format!(">{}</a>", r.label.replace('&', "&amp;"))), "{key}: label not shown");
                assert!(r.cited_in.contains(&s.slug), "{key}: cited_in misses {}", s.slug);
            }
            // Listed means cited: each section lists exactly the works it cites.
            for id in ids.iter().filter_map(|id| id.strip_prefix("ref-")) {
                assert!(cites.contains(&id), "{}: lists `{id}` without citing it", s.slug);
            }
            if !cites.is_empty() {
                assert!(h.contains("<section class=\"references\"><h2>References</h2><ol>"), "{}", s.slug);
            }
            total += cites.len();
        }
        assert!(total > 50, "the chapter should cite its sources ({total} citations)");
        for slug in ["9.1", "9.2.1", "attention", "9.2.4"] {
            assert!(html(slug).contains("class=\"cite\""), "{slug} cites nothing");
        }
    }

    #[test]
    fn reference_list_is_complete_and_consistent() {
        let all = references_html();
        assert!(REFERENCES.len() >= 40, "{} references", REFERENCES.len());
        let mut keys: Vec<_> = REFERENCES.iter().map(|r| r.key).collect();
        keys.dedup();
        assert_eq!(keys.len(), REFERENCES.len(), "duplicate keys");
        for r in REFERENCES {
            assert!(
                all.contains(&format!("<li id=\"ref-{}\">{}", r.key, r.html)),
                "{} missing from the full list",
                r.key
            );
            assert!(!r.cited_in.is_empty(), "{} is cited nowhere", r.key);
            for slug in r.cited_in {
                assert!(
                    with_predicts(slug).contains(&format!("data-ref=\"{}\"", r.key)),
                    "{} not cited in {slug}",
                    r.key
                );
                assert!(all.contains(&format!("<a href=\"#/{slug}\">")), "no link to {slug}");
            }
            // cited_in follows the reading order.
            let pos: Vec<_> = r.cited_in.iter().map(|s| SECTIONS.iter().position(|x| x.slug == *s).unwrap()).collect();
            assert!(pos.windows(2).all(|w| w[0] < w[1]), "{}: cited_in out of order", r.key);
        }
        // Alphabetical by label.
        let labels: Vec<String> = REFERENCES.iter().map(|r| r.label.to_lowercase()).collect();
        assert!(labels.windows(2).all(|w| w[0] <= w[1]), "references are not sorted");
        // Facts the chapter hangs on.
        let olsson = reference("olsson2022").expect("Olsson et al. 2022");
        assert_eq!(olsson.label, "Olsson et al. 2022");
        assert!(olsson.html.contains("Induction Heads"));
        assert!(olsson.cited_in.contains(&"attention"));
        assert!(reference("degrave2021").unwrap().cited_in.contains(&"9.1"));
    }

    #[test]
    fn every_prediction_has_one_place() {
        for s in SECTIONS {
            let pieces = section_pieces(s.slug);
            let rebuilt: String = pieces
                .iter()
                .map(|p| match p {
                    Piece::Html(h) => h.to_string(),
                    Piece::Predict(p) => format!("{SLOT_START}{}{SLOT_END}", p.id),
                })
                .collect();
            assert_eq!(rebuilt, html(s.slug), "{}: the pieces are the whole section", s.slug);
            for p in section_predicts(s.slug) {
                let placed = pieces.iter().filter(|x| matches!(x, Piece::Predict(q) if q.id == p.id)).count();
                assert_eq!(placed, usize::from(!p.in_lab), "{}: `{}` placed {placed} times", s.slug, p.id);
                assert!(!p.in_lab || s.lab.is_live(), "{}: a `:::card` needs a live lab to show it", s.slug);
                assert!(p.answer < p.choices.len() && p.choices.len() >= 2, "{}", p.id);
            }
        }
        assert_eq!(PREDICTS.iter().filter(|p| !SECTIONS.iter().any(|s| s.slug == p.section)).count(), 0);
    }

    /// `pieces` on any text: slots naming an exercise become controls, text around them stays as it was, and a
    /// slot this build does not know ends the cutting rather than dropping text.
    #[test]
    fn pieces_cut_any_text_at_known_slots() {
        let p = PREDICTS.iter().find(|p| !p.in_lab).expect("a chapter exercise");
        let slot = format!("{SLOT_START}{}{SLOT_END}", p.id);
        let html = format!("<p>a</p>{slot}<p>b</p>{slot}");
        assert_eq!(
            pieces(&html),
            vec![Piece::Html("<p>a</p>"), Piece::Predict(p), Piece::Html("<p>b</p>"), Piece::Predict(p)]
        );
        assert_eq!(pieces(""), vec![]);
        assert_eq!(pieces("<p>no slot</p>"), vec![Piece::Html("<p>no slot</p>")]);
        let unknown = format!("<p>a</p>{SLOT_START}no-such-exercise{SLOT_END}<p>b</p>{slot}");
        assert_eq!(pieces(&unknown), vec![Piece::Html(&unknown)]);
        let unclosed = format!("<p>a</p>{SLOT_START}{}", p.id);
        assert_eq!(pieces(&unclosed), vec![Piece::Html(&unclosed)]);
    }

    /// The file the site serves (`chapter/`, through the shared driver) holds exactly the text compiled in here,
    /// reads back through `ChapterText`, and has the name build.rs compiled in.
    #[test]
    fn the_text_file_reads_back_as_compiled() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("content");
        let built = driver::build(&dir).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(built.warnings, Vec::<String>::new(), "the chapter compiles without warnings");
        assert_eq!(built.read.len(), SECTIONS.len() + 1, "each section's file and the references: {:?}", built.read);
        let json = driver::chapter_json(&built.chapter);
        assert_eq!(driver::file_name(&json), CHAPTER_FILE, "build.rs and the driver name the same file");
        let text = ChapterText::from_json(&json).unwrap();
        for s in SECTIONS {
            assert_eq!(text.section(s.slug), Some(html(s.slug)), "{}", s.slug);
        }
        assert_eq!(text.section("no-such-section"), None);
        assert_eq!(text.references(), references_html());
        assert!(driver::build(&dir.join("no-such-folder")).is_err_and(|e| e[0].contains("cannot read")));
    }

    #[test]
    fn json_strings_read_back_as_written() {
        let cases = [
            "",
            "plain",
            "\"quoted\" and back\\slash\\",
            "lines\nand\r\ttabs",
            "controls \u{0} \u{1} \u{8} \u{b} \u{c} \u{1f} \u{7f}",
            "unicode: é ∑ ≤ ℝ 🙂, and the separators \u{2028} \u{2029}",
            "</script><!-- -->",
        ];
        for case in cases {
            let mut json = String::new();
            driver::json_string(case, &mut json);
            let back: String = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(back, case);
            assert!(!json.chars().any(|c| (c as u32) < 0x20), "{json:?}: a raw control character");
        }
        let mut json = String::new();
        driver::json_string("a\u{1}\"", &mut json);
        assert_eq!(json, "\"a\\u0001\\\"\"");
    }

    #[test]
    fn file_names_follow_the_bytes() {
        let a = driver::file_name("{}");
        assert!(a.starts_with("chapter-") && a.ends_with(".json") && a.len() == "chapter-.json".len() + 16, "{a}");
        assert_ne!(a, driver::file_name("{ }"));
        // FNV-1a 64 of the empty input is its offset basis: the same name on every platform and Rust release.
        assert_eq!(driver::file_name(""), "chapter-cbf29ce484222325.json");
    }

    #[test]
    fn a_broken_text_file_says_what_is_wrong() {
        let all: String =
            SECTIONS.iter().map(|s| format!("\"{}\": \"<h1>x</h1>\"", s.slug)).collect::<Vec<_>>().join(", ");
        let good = format!("{{\"sections\": {{{all}}}, \"references\": \"<h1>References</h1>\"}}");
        let text = ChapterText::from_json(&good).unwrap();
        assert_eq!(text.section("9.1"), Some("<h1>x</h1>"));
        assert_eq!(text.references(), "<h1>References</h1>");
        let cases = [
            ("", "not valid JSON"),
            ("<!doctype html><html>", "not valid JSON"),
            (&good[..good.len() / 2], "not valid JSON"),
            ("[]", "not a JSON object"),
            ("{\"references\": \"\"}", "no `sections` object"),
            ("{\"sections\": [], \"references\": \"\"}", "no `sections` object"),
            ("{\"sections\": {}}", "no `references` text"),
            ("{\"sections\": {}, \"references\": 3}", "no `references` text"),
            ("{\"sections\": {\"9.1\": 3}, \"references\": \"\"}", "section `9.1` is not text"),
            ("{\"sections\": {\"9.1\": \"\"}, \"references\": \"\"}", "no text for section"),
        ];
        for (json, says) in cases {
            let e = ChapterText::from_json(json).expect_err(json);
            assert!(e.contains(says), "{json:.40}: {e}");
        }
    }

    #[test]
    fn blocks_render_as_styled_elements() {
        let beyond = html("attention");
        assert!(beyond.contains("<aside class=\"beyond\">\n<p class=\"aside-label\">Beyond the chapter"));
        for s in SECTIONS.iter().filter(|s| {
            !matches!(
                s.slug,
                "overview"
                    | "9.1"
                    | "9.2.1"
                    | "9.2.2"
                    | "9.2.3"
                    | "attention"
                    | "9.2.4"
                    | "9.2.5"
                    | "9.3.1"
                    | "9.3.2"
                    | "9.4"
                    | "9.5"
            )
        }) {
            let h = html(s.slug);
            let note = h.find("<aside class=\"note\">").unwrap_or_else(|| panic!("{}: no note", s.slug));
            assert!(h[note..].contains("later version"), "{}: the note should say the full text comes later", s.slug);
        }
        for s in SECTIONS {
            let h = html(s.slug);
            assert_eq!(h.matches("<aside").count(), h.matches("</aside>").count(), "{}", s.slug);
        }
    }

    #[test]
    fn subheadings_have_unique_ids() {
        for s in SECTIONS {
            let h = html(s.slug);
            let mut n = 0;
            for tag in ["<h2", "<h3"] {
                for (i, _) in h.match_indices(tag) {
                    let open = &h[i..i + h[i..].find('>').unwrap()];
                    if open.contains("References") {
                        continue;
                    }
                    n += 1;
                    let in_refs = h[..i].ends_with("<section class=\"references\">");
                    assert!(in_refs || open.contains(" id=\""), "{}: `{open}>` has no id", s.slug);
                }
            }
            let ids = attr_values(h, "id");
            let mut sorted = ids.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), ids.len(), "{}: duplicate ids", s.slug);
            if matches!(s.slug, "overview" | "9.1" | "9.2.1" | "attention") {
                assert!(n >= 3, "{}: expected `##` subheadings", s.slug);
            }
        }
        // Slugs: lowercase, punctuation and spaces to single hyphens.
        assert!(html("attention").contains("<h2 id=\"previous-token-heads-and-induction-heads\">"));
        assert!(html("attention").contains("<h3 id=\"k-composition-building-an-induction-head-from-two-heads\">"));
        assert!(html("9.1").contains("<h2 id=\"why-it-matters-for-safety\">"));
    }

    /// The text of pieces, with each exercise as its id, in order.
    fn flat(pieces: &[Piece]) -> String {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Html(h) => h.to_string(),
                Piece::Predict(p) => format!("[{}]", p.id),
            })
            .collect()
    }

    #[test]
    fn a_fold_is_before_a_top_level_heading_or_technical_part() {
        let h = "<h1>T</h1>\n<p>one</p>\n<aside>\n<h2>inside</h2>\n</aside>\n<h2 id=\"a\">A</h2>\n<p>two</p>\n";
        let at = h.find("<h2 id").unwrap();
        assert_eq!(fold(h, 1), Some(at), "not inside the aside");
        assert_eq!(fold(h, at), Some(at));
        assert_eq!(fold(h, at + 1), None, "nothing after the last heading");
        let d = "<p>a</p>\n<details class=\"technical\"><summary>S</summary>\n<h2>x</h2>\n</details>\n<p>b</p>\n";
        assert_eq!(fold(d, 1), Some(d.find("<details").unwrap()), "before the details, never inside it");
        assert_eq!(fold(d, d.find("<details").unwrap() + 1), None);
        // A list item or a div left open before it: not a fold.
        assert_eq!(fold("<ul>\n<li>\n<h2>x</h2>\n</li>\n</ul>\n", 0), None);
        assert_eq!(fold("<div class=\"x\">\n<h2>x</h2>\n</div>\n", 0), None);
        // `<link>` is not an `<li>`, and a heading at the very start is no fold.
        let l = "<h2>x</h2>\n<link rel=\"x\">\n<h2>y</h2>\n";
        assert_eq!(fold(l, 0), Some(l.rfind("<h2").unwrap()));
        assert_eq!(fold("", 0), None);
    }

    #[test]
    fn a_page_cut_at_its_fold_keeps_every_piece_in_order() {
        let mut split = 0;
        for s in SECTIONS {
            let page = html(s.slug);
            let Some(at) = fold(page, LEAD_BYTES) else { continue };
            split += 1;
            let (lead, rest) = page.split_at(at);
            // No exercise's slot is cut: the pieces of the two halves are the page's, in order.
            let (mut halves, whole) = (pieces(lead), pieces(page));
            halves.extend(pieces(rest));
            assert_eq!(flat(&halves), flat(&whole), "{}: lost or reordered", s.slug);
            assert!(lead.len() >= LEAD_BYTES, "{}: a lead of {} bytes", s.slug, lead.len());
            for tag in ["details", "section", "aside", "math", "ul", "ol", "p"] {
                let opened = lead.matches(&format!("<{tag}>")).count() + lead.matches(&format!("<{tag} ")).count();
                assert_eq!(opened, lead.matches(&format!("</{tag}>")).count(), "{}: `{tag}` left open", s.slug);
            }
            assert!(rest.starts_with("<h2") || rest.starts_with("<details"), "{}: the rest starts mid-text", s.slug);
        }
        // The long sections are cut; the primer's lead ends where its third `##` part does.
        assert!(split >= 8, "only {split} sections cut");
        let lead = &html("attention")[..fold(html("attention"), LEAD_BYTES).unwrap()];
        assert!(lead.ends_with("</p>\n") && !lead.contains("reading-the-lab"));
        // A page shorter than the lead is not cut.
        assert_eq!(fold("<h1>T</h1>\n<h2>A</h2>\n", LEAD_BYTES), None);
    }
}
