//! The vision lab (9.2.1): draw a digit (or pick a test image) and take the MNIST CNN apart. Its URL state:
//! the test image, the channel in focus, and the saliency method and sanity level.
use crate::app::core::url::{Reader, UrlState, Writer};

#[cfg(target_arch = "wasm32")]
mod draw;
#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::VisionLab;

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

impl Method {
    pub fn key(self) -> &'static str {
        METHODS.iter().find(|(_, m)| *m == self).map(|(k, _)| *k).unwrap_or("gradient")
    }
}

/// Bounds a link may name before the model is known; the view checks the real ones.
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
}

impl Default for VisionState {
    fn default() -> Self {
        VisionState { sample: None, focus: (3, 0), method: Method::IntegratedGradients, sanity: 0 }
    }
}

impl UrlState for VisionState {
    fn read(r: &mut Reader) -> Self {
        let d = VisionState::default();
        VisionState {
            // Any whole number: the view knows how many test images there are and says so for one too many.
            sample: r.optional_number("sample", 0..=usize::MAX),
            focus: (r.number("layer", d.focus.0, 1..=16), r.number("ch", d.focus.1, 0..=MAX_INDEX)),
            method: r.choice("method", d.method, METHODS),
            sanity: r.number("sanity", d.sanity, 0..=64),
        }
    }

    fn write(&self, w: &mut Writer) {
        let d = VisionState::default();
        w.optional_number("sample", self.sample);
        w.number("layer", self.focus.0, d.focus.0);
        w.number("ch", self.focus.1, d.focus.1);
        w.choice("method", self.method, d.method, METHODS);
        w.number("sanity", self.sanity, d.sanity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::core::url::parse_query;

    #[test]
    fn state_round_trips() {
        let s = VisionState { sample: Some(12), focus: (2, 7), method: Method::Occlusion, sanity: 3 };
        assert_eq!(VisionState::from_query(&s.to_query()), (s, vec![]));
        assert!(VisionState::default().to_query().is_empty());
    }

    #[test]
    fn a_bad_sample_is_named_not_dropped() {
        let (s, p) = VisionState::from_query(&parse_query("sample=abc"));
        assert_eq!((s.sample, p[0].key.as_str()), (None, "sample"));
        // A number past the shipped images is left to the view, which knows how many there are.
        let (s, p) = VisionState::from_query(&parse_query("sample=999999"));
        assert_eq!((s.sample, p.len()), (Some(999_999), 0));
    }
}
