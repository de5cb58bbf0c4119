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
    /// Steering vectors added to the residual stream during generation (9.3.2).
    Steer,
    /// Toy models of superposition trained live in a Web Worker, with the phase diagram (9.2.4).
    Superposition,
    /// A sparse autoencoder on the toy model, checked against the true features (9.2.5).
    Sae,
    /// Not built yet: the pane says so plainly and names the issue that will bring it.
    Planned(&'static str),
}

impl LabKind {
    /// Whether the section has a working lab (marked "lab" in the navigation).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            LabKind::Attention
                | LabKind::Vision
                | LabKind::Language
                | LabKind::Probe
                | LabKind::Steer
                | LabKind::Superposition
                | LabKind::Sae
        )
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
    s(
        "9.3.1",
        "9.3.1",
        "Activation patching",
        LabKind::Planned("activation patching over layers, heads and positions"),
    ),
    s("9.3.2", "9.3.2", "Activation steering", LabKind::Steer),
    s("9.4", "9.4", "Automating interpretability: ACDC", LabKind::Planned("automatic circuit discovery")),
    s("9.5", "9.5", "Critiques of interpretability", LabKind::Planned("a gallery of each method's failure modes")),
];

/// Where a URL leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Section { index: usize, query: Vec<(String, String)> },
    References,
    NotFound(String),
}

/// Parses `location.hash`: `""`, `"#"`, `"#/"` open the overview; `"#/9.2.1"` a section;
/// `"#/attention?seq=..."` a section with lab state; anything else is not found.
pub fn parse_hash(hash: &str) -> Route {
    let path = hash.strip_prefix('#').unwrap_or(hash);
    let path = path.strip_prefix('/').unwrap_or(path);
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, parse_query(q)),
        None => (path, Vec::new()),
    };
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return Route::Section { index: 0, query };
    }
    if path == "references" {
        return Route::References;
    }
    match SECTIONS.iter().position(|s| s.slug == path) {
        Some(index) => Route::Section { index, query },
        None => Route::NotFound(path.to_string()),
    }
}

/// The hash for a section, without lab state.
pub fn section_hash(index: usize) -> String {
    format!("#/{}", SECTIONS[index].slug)
}

/// The hash for the section `slug` with lab state (`key=value` pairs, percent-encoded). A lab names its own
/// section by slug; no query gives the plain section hash.
pub fn section_hash_with(slug: &str, query: &[(&str, &str)]) -> String {
    debug_assert!(SECTIONS.iter().any(|s| s.slug == slug), "no section `{slug}`");
    let mut h = format!("#/{slug}");
    for (i, (k, v)) in query.iter().enumerate() {
        h.push(if i == 0 { '?' } else { '&' });
        h.push_str(&encode(k));
        h.push('=');
        h.push_str(&encode(v));
    }
    h
}

pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Percent-encodes everything but unreserved characters; spaces become `+`, which reads better in a shared link.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes `encode`'s output. Malformed escapes are kept literally and invalid UTF-8 is replaced,
/// so a tampered URL still yields a string that the lab can reject with a message.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slug_round_trips() {
        for (i, _) in SECTIONS.iter().enumerate() {
            assert_eq!(parse_hash(&section_hash(i)), Route::Section { index: i, query: vec![] });
        }
    }

    #[test]
    fn empty_hash_is_overview_and_unknown_is_not_found() {
        assert_eq!(parse_hash(""), Route::Section { index: 0, query: vec![] });
        assert_eq!(parse_hash("#/"), Route::Section { index: 0, query: vec![] });
        assert_eq!(parse_hash("#/9.9.9"), Route::NotFound("9.9.9".into()));
        assert_eq!(parse_hash("#/references"), Route::References);
    }

    #[test]
    fn query_survives_encoding() {
        let i = SECTIONS.iter().position(|s| s.slug == "attention").unwrap();
        let h = section_hash_with("attention", &[("seq", "the cat & the hat%")]);
        assert_eq!(section_hash_with("attention", &[]), section_hash(i));
        assert_eq!(h, "#/attention?seq=the+cat+%26+the+hat%25");
        match parse_hash(&h) {
            Route::Section { index, query } => {
                assert_eq!(index, i);
                assert_eq!(query, vec![("seq".to_string(), "the cat & the hat%".to_string())]);
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn tampered_escapes_do_not_panic() {
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("%FF"), "\u{FFFD}");
    }
}
