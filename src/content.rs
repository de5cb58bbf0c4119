//! The chapter text: `content/*.md`, compiled to HTML (with MathML for the math) at build time by the compiler in
//! `content/compile.rs`, which `build.rs` runs.
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
pub enum Piece {
    Html(&'static str),
    Predict(&'static Predict),
}

/// The slot the compiler leaves for a `:::predict` (as `compile::predict_slot` writes it).
const SLOT_START: &str = "<div class=\"predict-slot\" data-predict=\"";
const SLOT_END: &str = "\"></div>\n";

/// A section's HTML cut at its predictions' slots, so the chapter pane can put a live control in each.
pub fn section_pieces(slug: &str) -> Vec<Piece> {
    let Some(mut rest) = section_html(slug) else { return Vec::new() };
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

/// A prediction by id.
pub fn predict(id: &str) -> Option<&'static Predict> {
    PREDICTS.iter().find(|p| p.id == id)
}

/// The predictions of a section, in reading order (its chapter's and its lab's).
pub fn section_predicts(slug: &str) -> impl Iterator<Item = &'static Predict> + '_ {
    PREDICTS.iter().filter(move |p| p.section == slug)
}

// The compiler itself, for its unit tests (build.rs includes the same file).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod compile;

/// The HTML of a section (`content/{slug}.md`), ending with the list of the works it cites.
pub fn section_html(slug: &str) -> Option<&'static str> {
    SECTION_HTML.iter().find(|(s, _)| *s == slug).map(|(_, html)| *html)
}

/// Every reference, alphabetical by label, each `<li id="ref-KEY">` followed by links to the sections citing it.
pub fn references_html() -> &'static str {
    REFERENCES_HTML
}

/// A reference by key (for a tooltip on `a.cite[data-ref]`).
pub fn reference(key: &str) -> Option<&'static Reference> {
    REFERENCES.iter().find(|r| r.key == key)
}

#[cfg(test)]
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
}
