//! Feature visualization in the lab: what it optimises (the channel in focus or a class logit), the
//! regularisers the student toggles, a run's progress, and which picture the panel shows.
use crate::lens::cnn::VisionHook;
use crate::lens::methods::atlas::FeatureAtlas;
use crate::lens::methods::attribution::Target;
use crate::lens::methods::featvis::{FeatureVis, FeatureVisSettings};

/// Steps of one run: what the tests guarantee is enough to beat the dataset.
pub const FV_STEPS: usize = 200;

/// The panel's controls, kept in the URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FvControls {
    /// A class logit to maximise; `None` maximises the channel in focus.
    pub class: Option<usize>,
    pub jitter: bool,
    pub l2: bool,
    pub tv: bool,
    pub blur: bool,
}

impl Default for FvControls {
    /// The channel in focus, every regulariser on: how the shipped atlas was made.
    fn default() -> Self {
        FvControls { class: None, jitter: true, l2: true, tv: true, blur: true }
    }
}

impl FvControls {
    pub fn target(self, focus: (usize, usize)) -> Target {
        match self.class {
            Some(c) => Target::Class(c),
            None => Target::Channel { hook: VisionHook::Conv(focus.0), channel: focus.1 },
        }
    }

    /// Each regulariser at the engine's default strength, or off.
    pub fn settings(self) -> FeatureVisSettings {
        let d = FeatureVisSettings::default();
        FeatureVisSettings {
            jitter: if self.jitter { d.jitter } else { 0 },
            l2: if self.l2 { d.l2 } else { 0.0 },
            tv: if self.tv { d.tv } else { 0.0 },
            blur: if self.blur { d.blur } else { 0.0 },
            ..d
        }
    }
}

/// What the run maximises, in words.
pub fn target_label(target: Target) -> String {
    match target {
        Target::Class(c) => format!("the logit of class {c}"),
        Target::Channel { hook, channel } => format!("{hook} channel {channel} (mean activation)"),
        Target::Unit { hook, channel, y, x } => format!("{hook} channel {channel} at ({y}, {x})"),
    }
}

/// A run of the student's, as far as it has got.
#[derive(Clone, Debug, PartialEq)]
pub struct FvRun {
    pub target: Target,
    pub image: Vec<f32>,
    /// The activation on the starting noise, to compare the result against.
    pub start: f32,
    pub activation: f32,
    pub steps: usize,
    pub error: Option<String>,
}

impl FvRun {
    pub fn new(fv: &FeatureVis) -> Self {
        let a = fv.activation();
        FvRun { target: fv.target, image: fv.image(), start: a, activation: a, steps: fv.steps_done(), error: None }
    }

    /// The run's state after more steps.
    pub fn update(&mut self, fv: &FeatureVis) {
        self.image = fv.image();
        self.activation = fv.activation();
        self.steps = fv.steps_done();
    }
}

/// What the panel shows.
#[derive(Clone, Debug, PartialEq)]
pub enum FvPicture {
    /// The student's run for the current target.
    Run(FvRun),
    /// The shipped atlas's picture of the channel (200 steps with the default regularisers), so there is
    /// something to see before pressing the button.
    Preview(Vec<f32>),
    /// Nothing yet (a class target, or no atlas): a black image.
    Blank(Vec<f32>),
}

impl FvPicture {
    pub fn pixels(&self) -> &[f32] {
        match self {
            FvPicture::Run(r) => &r.image,
            FvPicture::Preview(p) | FvPicture::Blank(p) => p,
        }
    }

    pub fn run(&self) -> Option<&FvRun> {
        match self {
            FvPicture::Run(r) => Some(r),
            _ => None,
        }
    }
}

/// A run for another target (the focus or the class changed) gives way to the new target's preview.
pub fn picture(run: Option<&FvRun>, target: Target, atlas: Option<&FeatureAtlas>, side: usize) -> FvPicture {
    if let Some(r) = run.filter(|r| r.target == target) {
        return FvPicture::Run(r.clone());
    }
    let entry = match target {
        Target::Channel { hook: VisionHook::Conv(l), channel } => atlas.and_then(|a| a.get(l, channel)),
        _ => None,
    };
    match entry {
        Some(e) => FvPicture::Preview(e.pixels.clone()),
        None => FvPicture::Blank(vec![0.0; side * side]),
    }
}

/// The line under the picture: the run's step and activation, or what the preview is, and the channel's best
/// test image for comparison once the scan has found it.
pub fn caption(picture: &FvPicture, best_sample: Option<f32>) -> String {
    let mut parts = Vec::new();
    match picture {
        FvPicture::Run(r) => parts.push(format!("step {} of {FV_STEPS} · activation {:.3}", r.steps, r.activation)),
        FvPicture::Preview(_) => {
            parts.push("Precomputed with the default settings. Press Visualize to watch it form from noise.".into())
        }
        FvPicture::Blank(_) => {}
    }
    if let Some(b) = best_sample {
        parts.push(format!("Best test image: {b:.3}."));
    }
    let sep = if matches!(picture, FvPicture::Run(_)) { " · " } else { " " };
    parts.join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lens::cnn::{Cnn, VisionConfig};
    use crate::lens::methods::atlas::AtlasEntry;
    use crate::lens::rng::Rng;

    #[test]
    fn controls_give_the_target_and_the_engine_settings() {
        let d = FvControls::default();
        assert_eq!(d.settings(), FeatureVisSettings::default(), "the defaults are the atlas's settings");
        assert_eq!(d.target((2, 5)), Target::Channel { hook: VisionHook::Conv(2), channel: 5 });
        assert_eq!(FvControls { class: Some(3), ..d }.target((2, 5)), Target::Class(3));
        let off = FvControls { class: None, jitter: false, l2: false, tv: false, blur: false }.settings();
        assert_eq!(off, FeatureVisSettings::unregularised(0));
        assert_eq!(target_label(Target::Class(3)), "the logit of class 3");
        assert_eq!(target_label(d.target((2, 5))), "conv2 channel 5 (mean activation)");
    }

    #[test]
    fn the_picture_follows_the_target() {
        let model = Cnn::init(VisionConfig::mnist(), &mut Rng::new(1)).unwrap().0;
        let channel = Target::Channel { hook: VisionHook::Conv(1), channel: 0 };
        let fv = FeatureVis::new(&model, channel, FeatureVisSettings::default()).unwrap();
        let run = FvRun::new(&fv);
        assert_eq!((run.steps, run.start, run.image.len()), (0, run.activation, 784));
        let entry = AtlasEntry { pixels: vec![0.5; 784], activation: 1.0 };
        let atlas = FeatureAtlas { side: 28, steps: 200, layers: vec![vec![entry]] };

        assert_eq!(picture(Some(&run), channel, Some(&atlas), 28), FvPicture::Run(run.clone()));
        // Another target: the atlas's picture of that channel, or black for a class or without an atlas.
        let other = Target::Channel { hook: VisionHook::Conv(1), channel: 1 };
        assert_eq!(picture(Some(&run), other, Some(&atlas), 28), FvPicture::Blank(vec![0.0; 784]));
        assert_eq!(picture(None, channel, Some(&atlas), 28), FvPicture::Preview(vec![0.5; 784]));
        assert_eq!(picture(None, Target::Class(2), Some(&atlas), 28), FvPicture::Blank(vec![0.0; 784]));
        assert_eq!(picture(None, channel, None, 28).pixels(), &[0.0; 784][..]);

        let shown = FvPicture::Run(FvRun { steps: 12, activation: 0.25, ..run });
        assert_eq!(caption(&shown, Some(1.5)), "step 12 of 200 · activation 0.250 · Best test image: 1.500.");
        assert_eq!(caption(&FvPicture::Blank(vec![]), Some(1.5)), "Best test image: 1.500.");
        assert!(caption(&FvPicture::Preview(vec![]), None).starts_with("Precomputed"));
    }
}
