//! The labs, one module per lab, and the registry's last column: which view serves each `LabKind` of
//! `routes::SECTIONS`. Adding a lab touches its module, its `content/{slug}.md`, and its row (the `LabKind`
//! variant in `routes.rs` and the arm below; the compiler refuses a variant without an arm).
//!
//! Each lab module holds its URL state (`UrlState`) and plain rules, tested natively, and a `view` submodule
//! (wasm32 only) with its components. A lab imports `app::core`, `lens` and `routes`, never another lab.
pub mod acdc;
pub mod attention;
pub mod language;
pub mod patching;
pub mod probe;
pub mod sae;
pub mod steer;
pub mod superposition;
pub mod vision;

/// The lab of a section, mounted with the raw query of its URL.
#[cfg(target_arch = "wasm32")]
pub fn lab_view(kind: crate::routes::LabKind, query: &str) -> leptos::prelude::AnyView {
    use crate::routes::LabKind;
    use leptos::prelude::*;
    let q = crate::app::core::url::parse_query(query);
    match kind {
        LabKind::Attention => view! { <attention::AttentionLab query=q /> }.into_any(),
        LabKind::Vision => view! { <vision::VisionLab query=q /> }.into_any(),
        LabKind::Language => view! { <language::LanguageLab query=q /> }.into_any(),
        LabKind::Probe => view! { <probe::ProbeLab query=q /> }.into_any(),
        LabKind::Patching => view! { <patching::PatchingLab query=q /> }.into_any(),
        LabKind::Steer => view! { <steer::SteerLab query=q /> }.into_any(),
        LabKind::Superposition => view! { <superposition::SuperpositionLab query=q /> }.into_any(),
        LabKind::Sae => view! { <sae::SaeLabs query=q /> }.into_any(),
        LabKind::Acdc => view! { <acdc::AcdcLab query=q /> }.into_any(),
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
