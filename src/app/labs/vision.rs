//! The vision lab (9.2.1): draw a digit (or pick a test image) and take the MNIST CNN apart. Its URL state
//! (the test image, the channel in focus, the saliency method and sanity level, and what feature visualization
//! optimises with which regularisers) and the rules the panels follow, in plain Rust tested natively:
//! `analysis` (what the network made of the image, the last good one kept), `features` (feature
//! visualization's target and the picture to show), `saliency` (a saliency request and its sliced work).
use crate::app::core::export::{DataTable, Datum};
use crate::app::core::url::{Reader, UrlState, Writer};
use crate::lens::methods::attribution::SaliencyMethod;

pub mod analysis;
pub mod features;
pub mod saliency;

#[cfg(target_arch = "wasm32")]
mod draw;
#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::VisionLab;

use features::FvControls;

/// The saliency methods the lab offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Gradient,
    GradientXInput,
    IntegratedGradients,
    SmoothGrad,
    Occlusion,
}

pub const METHODS: &[(&str, Method)] = &[
    ("gradient", Method::Gradient),
    ("gradient-x-input", Method::GradientXInput),
    ("integrated-gradients", Method::IntegratedGradients),
    ("smoothgrad", Method::SmoothGrad),
    ("occlusion", Method::Occlusion),
];

/// Integrated-gradients steps.
const IG_STEPS: usize = 50;

impl Method {
    pub fn key(self) -> &'static str {
        METHODS.iter().find(|(_, m)| *m == self).map(|(k, _)| *k).unwrap_or("gradient")
    }

    pub fn from_key(key: &str) -> Option<Method> {
        METHODS.iter().find(|(k, _)| *k == key).map(|(_, m)| *m)
    }

    /// The name in the method menu, with the settings that matter.
    pub fn label(self) -> &'static str {
        match self {
            Method::Gradient => "Vanilla gradient",
            Method::GradientXInput => "Gradient × input",
            Method::IntegratedGradients => "Integrated gradients (50 steps)",
            Method::SmoothGrad => "SmoothGrad (25 noisy copies)",
            Method::Occlusion => "Occlusion (4×4 patch)",
        }
    }

    /// The engine's method with the lab's settings.
    pub fn engine(self) -> SaliencyMethod {
        match self {
            Method::Gradient => SaliencyMethod::Gradient,
            Method::GradientXInput => SaliencyMethod::GradientXInput,
            Method::IntegratedGradients => SaliencyMethod::IntegratedGradients { steps: IG_STEPS },
            Method::SmoothGrad => SaliencyMethod::SmoothGrad { sigma: 0.15, n: 25, seed: 7 },
            Method::Occlusion => SaliencyMethod::Occlusion { patch: 4, stride: 2, fill: 0.0 },
        }
    }
}

/// Bounds a link may name before the model is known; `check_link` checks the real ones.
const MAX_INDEX: usize = 100_000;

#[derive(Clone, Debug, PartialEq)]
pub struct VisionState {
    /// A shipped test image; `None` means the drawing pad.
    pub sample: Option<usize>,
    /// The conv layer (from 1) and channel in focus.
    pub focus: (usize, usize),
    pub method: Method,
    /// 0 = the trained model; k = the k-th step of the weight-randomisation cascade.
    pub sanity: usize,
    /// Feature visualization's target and regularisers.
    pub fv: FvControls,
}

impl Default for VisionState {
    fn default() -> Self {
        VisionState {
            sample: None,
            focus: (3, 0),
            method: Method::IntegratedGradients,
            sanity: 0,
            fv: FvControls::default(),
        }
    }
}

impl UrlState for VisionState {
    fn read(r: &mut Reader) -> Self {
        let d = VisionState::default();
        VisionState {
            // Any whole number: the lab knows how many test images there are and says so for one too many.
            sample: r.optional_number("sample", 0..=usize::MAX),
            focus: (r.number("layer", d.focus.0, 1..=16), r.number("ch", d.focus.1, 0..=MAX_INDEX)),
            method: r.choice("method", d.method, METHODS),
            sanity: r.number("sanity", d.sanity, 0..=64),
            fv: FvControls {
                class: r.optional_number("fv-class", 0..=MAX_INDEX),
                jitter: r.flag("fv-jitter", d.fv.jitter),
                l2: r.flag("fv-l2", d.fv.l2),
                tv: r.flag("fv-tv", d.fv.tv),
                blur: r.flag("fv-blur", d.fv.blur),
            },
        }
    }

    fn write(&self, w: &mut Writer) {
        let d = VisionState::default();
        w.optional_number("sample", self.sample);
        w.number("layer", self.focus.0, d.focus.0);
        w.number("ch", self.focus.1, d.focus.1);
        w.choice("method", self.method, d.method, METHODS);
        w.number("sanity", self.sanity, d.sanity);
        w.optional_number("fv-class", self.fv.class);
        w.flag("fv-jitter", self.fv.jitter, d.fv.jitter);
        w.flag("fv-l2", self.fv.l2, d.fv.l2);
        w.flag("fv-tv", self.fv.tv, d.fv.tv);
        w.flag("fv-blur", self.fv.blur, d.fv.blur);
    }
}

/// What the model has, for checking a link against it.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelShape {
    pub samples: usize,
    /// Channels per conv layer.
    pub channels: Vec<usize>,
    pub classes: usize,
}

/// A link checked against the model: the state to use, the link's problems for the lab frame, and the note
/// for the input panel when the test image does not exist (the pad is then the input).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedLink {
    pub state: VisionState,
    pub notes: Vec<String>,
    pub input_note: Option<String>,
}

/// Once the model is there: a test image, a channel, a class or a randomisation level that the model does not
/// have falls back to the default, with a message.
pub fn check_link(state: &VisionState, model: &ModelShape) -> CheckedLink {
    let d = VisionState::default();
    let mut out = CheckedLink { state: state.clone(), notes: Vec::new(), input_note: None };
    if let Some(i) = state.sample.filter(|&i| i >= model.samples) {
        out.state.sample = None;
        out.input_note =
            Some(format!("There is no test image {i} (the lab ships {}); draw a digit instead.", model.samples));
    }
    let (l, c) = state.focus;
    if model.channels.get(l.wrapping_sub(1)).is_none_or(|&n| c >= n) {
        out.state.focus = d.focus;
        out.notes.push(format!(
            "The link's channel {c} of conv{l} does not exist in this model, so the lab shows conv{} channel {}.",
            d.focus.0, d.focus.1
        ));
    }
    if let Some(class) = state.fv.class.filter(|&k| k >= model.classes) {
        out.state.fv.class = None;
        out.notes.push(format!(
            "The link's class {class} does not exist in this model (it has {}), so feature visualization \
             maximises the channel in focus.",
            model.classes
        ));
    }
    let depth = model.channels.len() + 1; // every conv layer and the head
    if state.sanity > depth {
        out.state.sanity = d.sanity;
        out.notes.push(format!(
            "The link's sanity level {} does not exist in this model (it has {depth} layers to randomise), so \
             the lab uses the trained weights.",
            state.sanity
        ));
    }
    out
}

/// The index of the largest value (the last of equals); 0 for an empty slice.
pub fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0)
}

/// The largest absolute value, the scale of a diverging colour map (0 for an empty slice).
pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, &x| m.max(x.abs()))
}

/// Where the image under study comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Sample(usize),
    Drawing,
}

/// The chosen test image if the sample has it, else the drawing if there is one, else nothing to study.
pub fn image_source(sample: Option<usize>, n_samples: usize, drawn: bool) -> Option<Source> {
    match sample {
        Some(i) if i < n_samples => Some(Source::Sample(i)),
        _ if drawn => Some(Source::Drawing),
        _ => None,
    }
}

/// A class's name: the model's label if it has one, else the number.
pub fn class_label(labels: &[String], class: usize) -> String {
    labels.get(class).cloned().unwrap_or_else(|| class.to_string())
}

/// The network's answer as a table: each class's label and probability (the bars under the prediction).
pub fn probs_table(labels: &[String], probs: &[f32]) -> DataTable {
    DataTable {
        caption: "the network's probability for each class".into(),
        columns: vec!["class".into(), "probability".into()],
        rows: probs
            .iter()
            .enumerate()
            .map(|(c, &p)| vec![Datum::Text(class_label(labels, c)), Datum::from(p)])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probabilities_table_has_a_row_per_class() {
        let t = probs_table(&[], &[0.25, 0.75]);
        assert_eq!(t.columns, ["class", "probability"]);
        assert_eq!(t.rows[1], [Datum::Text(class_label(&[], 1)), Datum::Num(0.75)]);
    }
    use crate::app::core::url::parse_query;

    fn full() -> VisionState {
        VisionState {
            sample: Some(12),
            focus: (2, 7),
            method: Method::Occlusion,
            sanity: 3,
            fv: FvControls { class: Some(4), jitter: false, l2: false, tv: true, blur: false },
        }
    }

    #[test]
    fn state_round_trips() {
        let s = full();
        assert_eq!(VisionState::from_query(&s.to_query()), (s.clone(), vec![]));
        assert!(VisionState::default().to_query().is_empty());
        let keys: Vec<String> = s.to_query().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["sample", "layer", "ch", "method", "sanity", "fv-class", "fv-jitter", "fv-l2", "fv-blur"]);
        // Each feature-visualization control alone round-trips too, and only it is written.
        for fv in [
            FvControls { class: Some(0), ..FvControls::default() },
            FvControls { jitter: false, ..FvControls::default() },
            FvControls { l2: false, ..FvControls::default() },
            FvControls { tv: false, ..FvControls::default() },
            FvControls { blur: false, ..FvControls::default() },
        ] {
            let s = VisionState { fv, ..VisionState::default() };
            assert_eq!(s.to_query().len(), 1, "{fv:?}");
            assert_eq!(VisionState::from_query(&s.to_query()), (s, vec![]));
        }
    }

    #[test]
    fn a_bad_sample_is_named_not_dropped() {
        let (s, p) = VisionState::from_query(&parse_query("sample=abc"));
        assert_eq!((s.sample, p[0].key.as_str()), (None, "sample"));
        // A number past the shipped images is left to `check_link`, which knows how many there are.
        let (s, p) = VisionState::from_query(&parse_query("sample=999999"));
        assert_eq!((s.sample, p.len()), (Some(999_999), 0));
    }

    #[test]
    fn bad_feature_visualization_values_keep_their_defaults_with_one_message_each() {
        let (s, p) =
            VisionState::from_query(&parse_query("fv-class=x&fv-jitter=2&fv-l2=&fv-tv=yes&fv-blur=0&method=occlusion"));
        let want = VisionState {
            method: Method::Occlusion,
            fv: FvControls { blur: false, ..FvControls::default() },
            ..VisionState::default()
        };
        assert_eq!(s, want);
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["fv-class", "fv-jitter", "fv-l2", "fv-tv"]);
        assert_eq!(p[0].to_string(), "The link's “fv-class=x” is not a whole number, so the lab uses its default.");
        assert_eq!(p[1].to_string(), "The link's “fv-jitter=2” is not one of 1, 0, so the lab uses “1”.");
        let (s, p) = VisionState::from_query(&parse_query("fv-class=100001"));
        assert_eq!((s.fv.class, p[0].why.as_str()), (None, "is outside 0 to 100000"));
    }

    fn shape() -> ModelShape {
        ModelShape { samples: 2000, channels: vec![8, 16, 32], classes: 10 }
    }

    #[test]
    fn a_link_is_checked_against_the_model() {
        let ok = check_link(&full(), &shape());
        assert_eq!(ok, CheckedLink { state: full(), notes: vec![], input_note: None });

        let bad = VisionState {
            sample: Some(2000),
            focus: (3, 32),
            sanity: 5,
            fv: FvControls { class: Some(10), ..FvControls::default() },
            ..full()
        };
        let c = check_link(&bad, &shape());
        assert_eq!(
            c.state,
            VisionState { sample: None, focus: (3, 0), sanity: 0, fv: FvControls::default(), ..full() }
        );
        assert_eq!(
            c.input_note.as_deref(),
            Some("There is no test image 2000 (the lab ships 2000); draw a digit instead.")
        );
        assert_eq!(c.notes.len(), 3, "{:?}", c.notes);
        assert!(c.notes[0].contains("channel 32 of conv3"), "{}", c.notes[0]);
        assert!(c.notes[1].contains("class 10"), "{}", c.notes[1]);
        assert!(c.notes[2].contains("sanity level 5"), "{}", c.notes[2]);
        // A layer the model lacks, and the deepest level that exists.
        let c = check_link(&VisionState { focus: (4, 0), sanity: 4, ..VisionState::default() }, &shape());
        assert_eq!((c.state.focus, c.state.sanity, c.notes.len()), ((3, 0), 4, 1));
    }

    #[test]
    fn small_rules() {
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), 1);
        assert_eq!(argmax(&[0.5, 0.5]), 1, "the last of equals");
        assert_eq!(argmax(&[]), 0);
        assert_eq!(max_abs(&[0.5, -2.0, 1.0]), 2.0);
        assert_eq!(max_abs(&[]), 0.0);
        assert_eq!(image_source(Some(3), 10, true), Some(Source::Sample(3)));
        assert_eq!(image_source(Some(10), 10, true), Some(Source::Drawing));
        assert_eq!(image_source(None, 10, false), None);
        assert_eq!(class_label(&["zero".into()], 0), "zero");
        assert_eq!(class_label(&[], 7), "7");
        for &(k, m) in METHODS {
            assert_eq!((m.key(), Method::from_key(k)), (k, Some(m)));
        }
        assert_eq!(Method::from_key("nope"), None);
    }
}
