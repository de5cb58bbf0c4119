//! The labs, one module per lab, and the registry's last column: which view serves each `LabKind` of
//! `routes::SECTIONS`. Adding a lab touches its module, its `content/{slug}.md`, and its row (the `LabKind`
//! variant in `routes.rs` and the arm below; the compiler refuses a variant without an arm).
//!
//! Each lab module holds its URL state (`UrlState`) and plain rules, tested natively, and a `view` submodule
//! (wasm32 only) with its components. A lab imports `app::core`, `lens` and `routes`, never another lab.
pub mod acdc;
pub mod attention;
pub mod critiques;
pub mod language;
pub mod own_model;
pub mod patching;
pub mod probe;
pub mod sae;
pub mod steer;
pub mod superposition;
pub mod vision;

/// Presenter mode's steps for each lab: what a facilitator walks a room through, in order, each a state of the
/// lab as its URL query (every one opens its lab with no URL problem: a native test below).
pub fn steps(kind: crate::routes::LabKind) -> &'static [crate::app::core::presenter::Step] {
    use crate::app::core::presenter::Step;
    use crate::routes::LabKind;
    // The chapter's repeated sequence, with more of the attention lab's state after it.
    macro_rules! repeated {
        ($rest:literal) => {
            concat!(
                "seq=snow+plan+hear+tame+seed+pink+basket+plum+town+desk+snow+plan+hear+tame+seed+pink+basket+plum+town+desk",
                $rest
            )
        };
    }
    match kind {
        LabKind::Attention => &[
            Step { title: "Words repeated: look at all the heads", query: repeated!("") },
            Step { title: "A previous-token head: each word looks one back", query: repeated!("&layer=0&head=1") },
            Step { title: "An induction head: look at what followed last time", query: repeated!("&layer=1&head=1") },
            Step {
                title: "The same idea in the IOI model",
                query: "model=ioi&seq=When+John+and+Mary+went+to+the+store%2C+John+gave+a+bottle+to&layer=1&head=3",
            },
        ],
        LabKind::Vision => &[
            Step { title: "A test digit and what the network says", query: "sample=0" },
            Step { title: "Saliency: gradient × input", query: "sample=0&method=gradient-x-input" },
            Step { title: "Sanity check: the same map with the weights randomised", query: "sample=0&method=gradient-x-input&sanity=4" },
        ],
        LabKind::Language => &[
            Step { title: "The logit lens on Moby-Dick", query: "" },
            Step {
                title: "Repeated words in the induction model",
                query: "model=induction&words=snow+plan+hear+tame+seed+pink+basket+plum+town+desk+snow+plan+hear+tame+seed+pink+basket+plum+town+desk",
            },
        ],
        LabKind::Probe => &[
            Step { title: "Probing for “a space comes next”", query: "" },
            Step { title: "Probing for “inside quotes”", query: "concept=inside-quotes" },
        ],
        LabKind::Patching => &[
            Step { title: "Patching the residual stream", query: "" },
            Step { title: "Patching each head's values", query: "target=v" },
            Step { title: "The induction model, head by head, noising", query: "model=induction&target=head_out&dir=noising" },
        ],
        LabKind::Steer => &[
            Step { title: "No steering", query: "c=0" },
            Step { title: "Steered", query: "c=1" },
            Step { title: "Steered at an earlier layer", query: "layer=0&c=1" },
        ],
        LabKind::Superposition => &[
            Step { title: "Dense features: no superposition", query: "s=0" },
            Step { title: "Sparsity 0.7", query: "s=0.7" },
            Step { title: "Sparsity 0.9: features share dimensions", query: "s=0.9" },
        ],
        LabKind::Sae => &[
            Step { title: "A sparse autoencoder on the toy model", query: "" },
            Step { title: "Without the sparsity penalty", query: "l1=0" },
            Step { title: "One latent of the Moby-Dick SAE", query: "latent=304" },
        ],
        LabKind::Acdc => &[
            Step { title: "ACDC on the IOI model", query: "" },
            Step { title: "ACDC on the induction model", query: "model=induction" },
        ],
        LabKind::Critiques => &[
            Step { title: "A sharp pattern is not an important head", query: "card=attention" },
            Step { title: "The metric changes the answer", query: "card=metric" },
            Step { title: "A probe on a network that learned nothing", query: "card=random-probe" },
        ],
        LabKind::Map | LabKind::OwnModel | LabKind::Planned(_) => &[],
    }
}

/// A model folder a lab loads as it opens, with the loader that reads it (`core::load`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstLoad {
    Task(&'static str),
    Char(&'static str),
    Vision(&'static str),
}

impl FirstLoad {
    /// The files its loader fetches, as the page names them.
    pub fn files(self) -> Vec<String> {
        use crate::app::core::models::{CHAR_FILES, TASK_FILES, VISION_FILES};
        let (folder, files) = match self {
            FirstLoad::Task(f) => (f, TASK_FILES),
            FirstLoad::Char(f) => (f, CHAR_FILES),
            FirstLoad::Vision(f) => (f, VISION_FILES),
        };
        files.iter().map(|file| format!("models/{folder}/{file}")).collect()
    }
}

/// The model folder the lab of `kind` loads first when opened on `query`, if it loads one as it opens.
pub fn first_load(kind: crate::routes::LabKind, query: &str) -> Option<FirstLoad> {
    use crate::app::core::models::LabModel;
    use crate::app::core::url::UrlState;
    use crate::routes::LabKind;
    match kind {
        LabKind::Attention => {
            match attention::AttentionState::from_query(&crate::app::core::url::parse_query(query)).0.model {
                LabModel::Task(t) => Some(FirstLoad::Task(t.folder())),
                _ => None,
            }
        }
        LabKind::Vision => Some(FirstLoad::Vision("mnist-cnn")),
        LabKind::Steer => Some(FirstLoad::Char("moby")),
        _ => None,
    }
}

/// What `index.html` preloads for a section opened with no query (`src/worker/first_files.json`, kept fresh by
/// a test below; `post_build.mjs` puts it in the loader): each section's `first_load` files, by slug. They then
/// download beside the app's code, and the lab's fetches get them from the preload: on a first visit to the
/// attention lab its first pattern came about 25 ms sooner (measured).
pub fn first_files_json() -> String {
    let rows: Vec<String> = crate::routes::SECTIONS
        .iter()
        .filter_map(|s| {
            let files = first_load(s.lab, "")?.files();
            let files: Vec<String> = files.iter().map(|f| format!("\"{f}\"")).collect();
            Some(format!("  \"{}\": [{}]", s.slug, files.join(", ")))
        })
        .collect();
    format!("{{\n{}\n}}\n", rows.join(",\n"))
}

/// Starts fetching the folder a lab opens on, as the page starts: `shell::Lab` mounts the lab a task later, after
/// the chapter, and the download then runs while the chapter is laid out instead of after it. The lab's own load
/// joins this one (`load::load_once`), and a failure is the lab's to report: it loads again, and says why.
#[cfg(target_arch = "wasm32")]
pub fn prefetch(kind: crate::routes::LabKind, query: &str) {
    use crate::app::core::load::{load_char_model, load_model, load_vision};
    use leptos::task::spawn_local;
    match first_load(kind, query) {
        Some(FirstLoad::Task(folder)) => spawn_local(async move { _ = load_model(folder).await }),
        Some(FirstLoad::Char(folder)) => spawn_local(async move { _ = load_char_model(folder).await }),
        Some(FirstLoad::Vision(folder)) => spawn_local(async move { _ = load_vision(folder).await }),
        None => {}
    }
}

/// One lab's view, built in a function of its own. Chromium compiles a wasm function on its first call, whole: with
/// every lab's mount inlined into `lab_view`, opening any lab compiled all of them first (traced: the largest
/// function compiled on a first visit).
#[cfg(target_arch = "wasm32")]
#[inline(never)]
fn apart<V: leptos::prelude::IntoView + 'static>(view: impl FnOnce() -> V) -> leptos::prelude::AnyView {
    use leptos::prelude::IntoAny;
    view().into_any()
}

/// The lab of a section, mounted with the raw query of its URL.
#[cfg(target_arch = "wasm32")]
pub fn lab_view(kind: crate::routes::LabKind, query: &str) -> leptos::prelude::AnyView {
    use crate::routes::LabKind;
    use leptos::prelude::*;
    let q = crate::app::core::url::parse_query(query);
    match kind {
        LabKind::Attention => apart(move || view! { <attention::AttentionLab query=q /> }),
        LabKind::Vision => apart(move || view! { <vision::VisionLab query=q /> }),
        LabKind::Language => apart(move || view! { <language::LanguageLab query=q /> }),
        LabKind::Probe => apart(move || view! { <probe::ProbeLab query=q /> }),
        LabKind::Patching => apart(move || view! { <patching::PatchingLab query=q /> }),
        LabKind::Steer => apart(move || view! { <steer::SteerLab query=q /> }),
        LabKind::Superposition => apart(move || view! { <superposition::SuperpositionLab query=q /> }),
        LabKind::Sae => apart(move || view! { <sae::SaeLabs query=q /> }),
        LabKind::Acdc => apart(move || view! { <acdc::AcdcLab query=q /> }),
        LabKind::Critiques => apart(move || view! { <critiques::CritiquesLab query=q /> }),
        LabKind::OwnModel => apart(move || view! { <own_model::view::OwnModelLab /> }),
        LabKind::Planned(what) => view! {
            <div class="planned" data-testid="lab-planned">
                <h2>"This lab is not built yet"</h2>
                <p>"It will bring " {what} "."</p>
                <p>"Meanwhile the chapter text on the left covers the method, and the "
                   <a href="#/attention">"attention and induction-head lab"</a> " is live."</p>
            </div>
        }
        .into_any(),
        LabKind::Map => ().into_any(),
    }
}

/// Links between labs: they are written by one lab and read by another, so they are checked here, where both are
/// known (a lab itself names no other lab; `tests/boundaries.rs`).
/// What a section's lab makes of a link's query: the problems it reports (an empty list for a clean link). A
/// section without a lab reports every key as unused. Plain Rust, for the tests and the fuzz harness
/// (`tests/fuzz.rs`): the views read their state the same way, through `UrlState::from_query`.
pub fn read_link(kind: crate::routes::LabKind, q: &[(String, String)]) -> Vec<crate::app::core::url::UrlProblem> {
    use crate::app::core::url::{UrlProblem, UrlState};
    use crate::routes::LabKind;
    match kind {
        LabKind::Attention => attention::AttentionState::from_query(q).1,
        LabKind::Vision => vision::VisionState::from_query(q).1,
        LabKind::Language => language::LanguageState::from_query(q).1,
        LabKind::Probe => probe::ProbeState::from_query(q).1,
        LabKind::Patching => patching::PatchState::from_query(q).1,
        LabKind::Steer => steer::SteerState::from_query(q).1,
        LabKind::Superposition => superposition::ToyState::from_query(q).1,
        LabKind::Sae => sae::SaeState::from_query(q).1,
        LabKind::Acdc => acdc::AcdcState::from_query(q).1,
        LabKind::Critiques => critiques::CritiquesState::from_query(q).1,
        LabKind::Map | LabKind::OwnModel | LabKind::Planned(_) => q
            .iter()
            .map(|(k, v)| UrlProblem {
                key: k.clone(),
                value: v.clone(),
                why: "this section has no lab to set".into(),
                instead: None,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::acdc::head_links;
    use super::attention::AttentionState;
    use super::patching::PatchState;
    use crate::app::core::models::{LabModel, TaskModel};
    use crate::app::core::url::{parse_query, UrlState};
    use crate::lens::methods::ioi::{CHAPTER_CORRUPTED, CHAPTER_PROMPT};
    use crate::lens::methods::patching::{Direction, Target};

    fn query(link: &str) -> Vec<(String, String)> {
        parse_query(link.split_once('?').expect("a link with a query").1)
    }

    #[test]
    fn an_acdc_head_link_opens_each_lab_on_that_head_and_those_prompts() {
        let ind = head_links(TaskModel::Induction, 1, 3, "a b a b", "c d c d");
        let (p, problems) = PatchState::from_query(&query(&ind.patching));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!((p.which, p.cell, p.target), (TaskModel::Induction, Some(vec![1, 3]), Target::HeadOut));
        assert_eq!((p.clean.as_deref(), p.corrupted.as_deref()), (Some("a b a b"), Some("c d c d")));
        assert_eq!(p.direction, Direction::Denoising);
        let (a, problems) = AttentionState::from_query(&query(&ind.pattern));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            (a.model, a.head, a.seq.as_deref()),
            (LabModel::Task(TaskModel::Induction), Some((1, 3)), Some("a b a b"))
        );

        let ioi = head_links(TaskModel::Ioi, 2, 1, CHAPTER_PROMPT, CHAPTER_CORRUPTED);
        let (p, problems) = PatchState::from_query(&query(&ioi.patching));
        assert!(problems.is_empty(), "{problems:?}");
        // The patching lab's default clean prompt is the chapter's sentence, so the link leaves it out.
        assert_eq!((p.which, p.clean, p.corrupted.as_deref()), (TaskModel::Ioi, None, Some(CHAPTER_CORRUPTED)));
        let (a, problems) = AttentionState::from_query(&query(&ioi.pattern));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            (a.model, a.head, a.seq.as_deref()),
            (LabModel::Task(TaskModel::Ioi), Some((2, 1)), Some(CHAPTER_PROMPT))
        );
    }

    /// Every presenter step opens its lab with no URL problem, and every live lab has at least two.
    #[test]
    fn every_presenter_step_opens_its_lab_cleanly() {
        use crate::app::core::url::parse_query;
        use crate::routes::SECTIONS;
        for s in SECTIONS {
            let steps = super::steps(s.lab);
            assert_eq!(s.lab.is_live(), steps.len() >= 2, "{}: {} steps", s.slug, steps.len());
            for step in steps {
                let problems = super::read_link(s.lab, &parse_query(step.query));
                assert!(problems.is_empty(), "{} step “{}”: {problems:?}", s.slug, step.title);
            }
        }
    }

    /// Every link in the chapter that opens a section (its text, its exercises' questions and reveals) names a
    /// section that exists and opens its lab with no problem reported.
    #[test]
    #[cfg(not(target_arch = "wasm32"))] // the chapter's text is compiled in for native builds only
    fn every_link_in_the_chapter_opens_its_lab_cleanly() {
        use crate::content::{section_html, PREDICTS};
        use crate::routes::{parse_hash, Route, SECTIONS};
        let mut texts: Vec<(String, &str)> =
            SECTIONS.iter().map(|s| (s.slug.to_string(), section_html(s.slug).unwrap())).collect();
        for p in PREDICTS {
            texts.push((p.id.to_string(), p.question));
            texts.push((p.id.to_string(), p.reveal));
            texts.extend(p.choices.iter().map(|c| (p.id.to_string(), *c)));
        }
        let mut links = 0;
        for (whose, html) in texts {
            for (i, _) in html.match_indices("href=\"#/") {
                let href = &html[i + 7..];
                let href = &href[..href.find('"').unwrap()];
                let href = href.replace("&amp;", "&");
                match parse_hash(&href) {
                    Route::Section { index, query } => {
                        let problems = super::read_link(SECTIONS[index].lab, &parse_query(&query));
                        assert!(problems.is_empty(), "{whose}: {href}: {problems:?}");
                    }
                    Route::References | Route::OwnModel => {}
                    Route::NotFound(p) => panic!("{whose}: {href} leads nowhere ({p})"),
                }
                links += 1;
            }
        }
        assert!(links > 20, "only {links} links found");
    }

    #[test]
    fn a_lab_loads_first_the_model_its_query_names() {
        use super::{first_load, FirstLoad};
        use crate::routes::LabKind;
        assert_eq!(first_load(LabKind::Attention, ""), Some(FirstLoad::Task("induction")));
        assert_eq!(first_load(LabKind::Attention, "model=ioi&seq=a+b"), Some(FirstLoad::Task("ioi")));
        assert_eq!(first_load(LabKind::Vision, ""), Some(FirstLoad::Vision("mnist-cnn")));
        assert_eq!(first_load(LabKind::Steer, "c=1"), Some(FirstLoad::Char("moby")));
        assert_eq!(first_load(LabKind::Map, ""), None);
        assert_eq!(
            FirstLoad::Task("induction").files(),
            ["config.json", "vocab.json", "model.safetensors", "training.json"]
                .map(|f| format!("models/induction/{f}"))
        );
        // Every file named is shipped.
        for s in crate::routes::SECTIONS {
            for f in first_load(s.lab, "").map(FirstLoad::files).unwrap_or_default() {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("public").join(&f);
                assert!(path.is_file(), "{}: {f} is not in public/", s.slug);
            }
        }
    }

    /// The loader in `index.html` preloads what `src/worker/first_files.json` lists. Like
    /// `routes::e2e_section_list_is_fresh`, this test rewrites it when it is out of date, and fails so that the
    /// change is seen.
    #[test]
    fn the_preloaded_files_are_fresh() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/worker/first_files.json");
        let want = super::first_files_json();
        let have = std::fs::read_to_string(path).unwrap_or_default();
        if have != want {
            std::fs::write(path, &want).expect("write src/worker/first_files.json");
            panic!(
                "src/worker/first_files.json was out of date with labs::first_load; it has been rewritten: commit it"
            );
        }
    }
}
