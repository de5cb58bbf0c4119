//! The chapter's sections and the URL scheme, as plain data and functions (tested natively).
//!
//! URLs are hash routes (`/#/9.2.1`) so that every section opens directly and on reload from any
//! static file server, with no server-side fallback, and an unknown route is answered in the app.

/// What the right-hand pane shows for a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabKind {
    /// A map of the chapter and the labs (Overview).
    Map,
    /// Attention patterns and induction heads (primer before 9.2.2).
    Attention,
    /// The MNIST CNN: drawing, activations, feature visualization, circuits, saliency (9.2.1).
    Vision,
    /// The character-level language model: logit-lens grid and generation (9.2.2).
    Language,
    /// Linear probes per layer on the character model, against a baseline and a control (9.2.3).
    Probe,
    /// Activation and attribution patching on the IOI and induction models (9.3.1).
    Patching,
    /// Steering vectors added to the residual stream during generation (9.3.2).
    Steer,
    /// Toy models of superposition trained live in a Web Worker, with the phase diagram (9.2.4).
    Superposition,
    /// A sparse autoencoder on the toy model, checked against the true features (9.2.5).
    Sae,
    /// ACDC pruning the IOI or induction model's graph edge by edge, with the threshold on a slider (9.4).
    Acdc,
    /// One experiment per caveat, each with a prediction to commit to before the run (9.5).
    Critiques,
    /// A model the student brings, opened in the page (`#/open`, not a section of the chapter).
    OwnModel,
    /// Not built yet: the pane says so plainly and names the issue that will bring it.
    Planned(&'static str),
}

impl LabKind {
    /// Whether the section has a working lab (marked "lab" in the navigation).
    pub fn is_live(self) -> bool {
        !matches!(self, LabKind::Map | LabKind::Planned(_))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    /// URL slug and content file stem: `content/{slug}.md`.
    pub slug: &'static str,
    /// The chapter's number ("9.2.1"), empty for sections that have none.
    pub number: &'static str,
    pub title: &'static str,
    /// A section that goes beyond the chapter is marked as such in the navigation.
    pub beyond_chapter: bool,
    pub lab: LabKind,
}

const fn s(slug: &'static str, number: &'static str, title: &'static str, lab: LabKind) -> Section {
    Section { slug, number, title, beyond_chapter: false, lab }
}

/// Reading order. The attention primer sits before 9.2.2 because the transformer sections lean on it.
pub const SECTIONS: &[Section] = &[
    s("overview", "", "Overview", LabKind::Map),
    s("9.1", "9.1", "What is interpretability?", LabKind::Map),
    s("9.2.1", "9.2.1", "Feature visualization", LabKind::Vision),
    Section {
        slug: "attention",
        number: "",
        title: "Primer: attention and induction heads",
        beyond_chapter: true,
        lab: LabKind::Attention,
    },
    s("9.2.2", "9.2.2", "Logit lens", LabKind::Language),
    s("9.2.3", "9.2.3", "Probing classifiers", LabKind::Probe),
    s("9.2.4", "9.2.4", "Superposition", LabKind::Superposition),
    s("9.2.5", "9.2.5", "Sparse autoencoders", LabKind::Sae),
    s("9.3.1", "9.3.1", "Activation patching", LabKind::Patching),
    s("9.3.2", "9.3.2", "Activation steering", LabKind::Steer),
    s("9.4", "9.4", "Automating interpretability: ACDC", LabKind::Acdc),
    s("9.5", "9.5", "Critiques of interpretability", LabKind::Critiques),
];

/// Where a URL leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// A section, with the lab state in `query` (the raw query string; `app::core::url` reads it).
    Section {
        index: usize,
        query: String,
    },
    References,
    /// Opening a model of one's own (`#/open`).
    OwnModel,
    NotFound(String),
}

/// Parses `location.hash`: `""`, `"#"`, `"#/"` open the overview; `"#/9.2.1"` a section;
/// `"#/attention?seq=..."` a section with lab state; anything else is not found.
pub fn parse_hash(hash: &str) -> Route {
    let path = hash.strip_prefix('#').unwrap_or(hash);
    let path = path.strip_prefix('/').unwrap_or(path);
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return Route::Section { index: 0, query: query.to_string() };
    }
    if path == "references" {
        return Route::References;
    }
    if path == "open" {
        return Route::OwnModel;
    }
    match SECTIONS.iter().position(|s| s.slug == path) {
        Some(index) => Route::Section { index, query: query.to_string() },
        None => Route::NotFound(path.to_string()),
    }
}

/// The hash for a section, without lab state.
pub fn section_hash(index: usize) -> String {
    format!("#/{}", SECTIONS[index].slug)
}

/// The registry as JSON, for the end-to-end tests (`tests/e2e/sections.json`, kept fresh by a test below):
/// each section's slug and whether its lab is live, planned, or the chapter map.
pub fn sections_json() -> String {
    let rows: Vec<String> = SECTIONS
        .iter()
        .map(|s| {
            let lab = match s.lab {
                LabKind::Map => "map",
                LabKind::Planned(_) => "planned",
                _ => "live",
            };
            format!("  {{ \"slug\": \"{}\", \"lab\": \"{lab}\" }}", s.slug)
        })
        .collect();
    format!("[\n{}\n]\n", rows.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slug_round_trips() {
        for (i, _) in SECTIONS.iter().enumerate() {
            assert_eq!(parse_hash(&section_hash(i)), Route::Section { index: i, query: String::new() });
        }
    }

    #[test]
    fn empty_hash_is_overview_and_unknown_is_not_found() {
        assert_eq!(parse_hash(""), Route::Section { index: 0, query: String::new() });
        assert_eq!(parse_hash("#/"), Route::Section { index: 0, query: String::new() });
        assert_eq!(parse_hash("#/9.9.9"), Route::NotFound("9.9.9".into()));
        assert_eq!(parse_hash("#/references"), Route::References);
        assert_eq!(parse_hash("#/open"), Route::OwnModel);
        assert_eq!(parse_hash("#/open?x=1"), Route::OwnModel);
    }

    #[test]
    fn the_query_is_passed_on_raw() {
        let i = SECTIONS.iter().position(|s| s.slug == "attention").unwrap();
        assert_eq!(parse_hash("#/attention?seq=a+b&x=%25"), Route::Section { index: i, query: "seq=a+b&x=%25".into() });
    }

    /// The end-to-end tests read the section list from `tests/e2e/sections.json`. Like rust-analyzer's
    /// generated files, this test rewrites it when the registry changed, and fails so that the change is seen.
    #[test]
    fn e2e_section_list_is_fresh() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/sections.json");
        let want = sections_json();
        let have = std::fs::read_to_string(path).unwrap_or_default();
        if have != want {
            std::fs::write(path, &want).expect("write tests/e2e/sections.json");
            panic!("tests/e2e/sections.json was out of date with routes::SECTIONS; it has been rewritten: commit it");
        }
    }
}
