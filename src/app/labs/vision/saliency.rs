//! A saliency map as the lab asks for it: the request (`SaliencyKey`), its work cut into steps of a few
//! milliseconds (`SaliencyWork`: the trained model's map, the weight-randomisation cascade one layer per step,
//! the randomised model's map, and how well the two agree), and what the panel says about the map it shows.
use super::Method;
use crate::lens::cnn::Cnn;
use crate::lens::methods::attribution::{rank_correlation, Saliency, SaliencyRun, SanityCascade, Target};
use crate::lens::{LensError, Result};

/// The cascade's seed: one fixed cascade, so a sanity level always names the same randomised model.
pub const CASCADE_SEED: u64 = 11;

/// What a map is asked for. A result answers the request with the same key; a newer key replaces an older one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaliencyKey {
    /// Which analysis of the image (its `Latest::rev`): the image, and so the predicted class.
    pub image: u32,
    pub method: Method,
    /// 0 = the trained model; k = the cascade's k-th level.
    pub sanity: usize,
}

/// A finished request.
#[derive(Clone, Debug, PartialEq)]
pub struct SaliencyOutcome {
    pub key: SaliencyKey,
    /// The trained model's map (kept so that a change of sanity level need not recompute it).
    pub trained: Saliency,
    /// The map shown: the trained model's, or at a sanity level the randomised model's.
    pub map: Saliency,
    /// At a sanity level, the rank correlation of the two maps.
    pub correlation: Option<f32>,
}

enum Phase {
    Trained(SaliencyRun),
    Cascade(SanityCascade),
    Random(SaliencyRun),
    Done,
}

/// One request's work, a step at a time (see `step`). Each step is a fixed piece of work, so the outcome is the
/// same however the steps are spread over frames: the one-shot methods' maps, exactly.
pub struct SaliencyWork {
    key: SaliencyKey,
    model: Cnn,
    image: Vec<f32>,
    target: Target,
    phase: Phase,
    trained: Option<Saliency>,
    random: Option<Saliency>,
}

impl SaliencyWork {
    /// The work for `key` on `image`, whose predicted class is `class`. `reuse` is the last outcome: when it is
    /// for the same image and method its trained map is used instead of computed again.
    pub fn new(
        model: &Cnn,
        image: &[f32],
        class: usize,
        key: SaliencyKey,
        reuse: Option<&SaliencyOutcome>,
    ) -> Result<Self> {
        let depth = model.layer_names().len();
        if key.sanity > depth {
            return Err(LensError::Input(format!(
                "there is no randomisation level {} (the model has {depth} layers)",
                key.sanity
            )));
        }
        let target = Target::Class(class);
        let trained =
            reuse.filter(|o| o.key.image == key.image && o.key.method == key.method).map(|o| o.trained.clone());
        let mut work = SaliencyWork {
            key,
            model: model.clone(),
            image: image.to_vec(),
            target,
            phase: Phase::Done,
            trained,
            random: None,
        };
        work.phase = match work.trained {
            Some(_) => work.after_trained(),
            None => Phase::Trained(SaliencyRun::new(model, image, target, key.method.engine())?),
        };
        Ok(work)
    }

    fn after_trained(&self) -> Phase {
        if self.key.sanity == 0 {
            Phase::Done
        } else {
            Phase::Cascade(SanityCascade::new(&self.model, CASCADE_SEED))
        }
    }

    /// One step: a few images of a map, or one more randomised layer. `Some(fraction done)` while there is
    /// more, `None` once finished (the shape `Job::sliced` takes).
    pub fn step(&mut self) -> Result<Option<f32>> {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Trained(mut run) => {
                self.phase = if run.step()? {
                    self.trained = Some(run.finish()?);
                    self.after_trained()
                } else {
                    Phase::Trained(run)
                };
            }
            Phase::Cascade(mut cascade) => {
                cascade.step()?;
                self.phase = match cascade.levels().get(self.key.sanity - 1) {
                    Some((_, random)) => {
                        Phase::Random(SaliencyRun::new(random, &self.image, self.target, self.key.method.engine())?)
                    }
                    None => Phase::Cascade(cascade),
                };
            }
            Phase::Random(mut run) => {
                self.phase = if run.step()? {
                    self.random = Some(run.finish()?);
                    Phase::Done
                } else {
                    Phase::Random(run)
                };
            }
            Phase::Done => return Ok(None),
        }
        Ok(Some(self.progress()))
    }

    /// The fraction done: at a sanity level, the trained map is the first half and the randomised one the second.
    pub fn progress(&self) -> f32 {
        let (trained, random) = match &self.phase {
            Phase::Trained(run) => (run.progress(), 0.0),
            Phase::Cascade(_) => (1.0, 0.0),
            Phase::Random(run) => (1.0, run.progress()),
            Phase::Done => (1.0, 1.0),
        };
        if self.key.sanity == 0 {
            trained
        } else {
            0.5 * (trained + random)
        }
    }

    /// The outcome, once `step` has said it is finished.
    pub fn finish(self) -> Result<SaliencyOutcome> {
        let unfinished = || LensError::Input("the saliency map is not finished".into());
        let trained = self.trained.ok_or_else(unfinished)?;
        let (map, correlation) = match (self.key.sanity, self.random) {
            (0, _) => (trained.clone(), None),
            (_, Some(random)) => {
                let r = rank_correlation(&trained.map, &random.map);
                (random, Some(r))
            }
            (_, None) => return Err(unfinished()),
        };
        Ok(SaliencyOutcome { key: self.key, trained, map, correlation })
    }
}

/// What the panel says beside the map it shows: it answers the current request, or (no job running) it was
/// left from an earlier one because that request failed or was cancelled.
pub fn shown_note(shown: Option<SaliencyKey>, wanted: Option<SaliencyKey>, busy: bool) -> Option<&'static str> {
    match (shown, wanted) {
        (Some(s), Some(w)) if s != w && !busy => {
            Some("This map is from before the last change: its computation was cancelled or failed.")
        }
        _ => None,
    }
}

/// The map's description: its target, completeness where the method has a baseline, the sanity check's
/// correlation, and the time it took.
pub fn describe(o: &SaliencyOutcome, ms: f64) -> String {
    let s = &o.map;
    let sum: f32 = s.map.iter().sum();
    let mut out = format!("Target: the predicted class's logit, {:.3}. ", s.value);
    if let Some(b) = s.baseline_value {
        out += &format!(
            "On a black image it is {b:.3}, so the attributions should add up to {:.3}; they add up to {sum:.3}. ",
            s.value - b
        );
    }
    if let Some(r) = o.correlation {
        out += &format!(
            "Rank correlation with the trained model's map: {r:.2} — a method that still looks the same is not \
             explaining the trained network. "
        );
    }
    out + &format!("Computed in {ms:.0} ms.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::labs::vision::METHODS;
    use crate::lens::cnn::VisionConfig;
    use crate::lens::methods::attribution::sanity_cascade;
    use crate::lens::rng::Rng;

    fn setup() -> (Cnn, Vec<f32>) {
        let model = Cnn::init(VisionConfig::mnist(), &mut Rng::new(4)).unwrap().0;
        let mut rng = Rng::new(5);
        (model, (0..784).map(|_| rng.uniform()).collect())
    }

    fn stepped(mut work: SaliencyWork) -> SaliencyOutcome {
        let mut last = work.progress();
        while let Some(f) = work.step().unwrap() {
            assert!(f >= last && f <= 1.0, "progress {last} -> {f}");
            last = f;
        }
        work.finish().unwrap()
    }

    /// Stepped to the end, the work equals the one-shot computation: the method on the trained model, and at
    /// a sanity level the method on the one-shot cascade's model and the rank correlation of the two maps.
    #[test]
    fn sliced_work_equals_the_one_shot_maps_for_every_method_and_level() {
        let (model, image) = setup();
        let cascade = sanity_cascade(&model, CASCADE_SEED).unwrap();
        for &(_, method) in METHODS {
            let trained = SaliencyRun::new(&model, &image, Target::Class(2), method.engine()).unwrap().run().unwrap();
            for sanity in [0, 1, 4] {
                let key = SaliencyKey { image: 1, method, sanity };
                let got = stepped(SaliencyWork::new(&model, &image, 2, key, None).unwrap());
                let (map, correlation) = if sanity == 0 {
                    (trained.clone(), None)
                } else {
                    let random = &cascade[sanity - 1].1;
                    let map =
                        SaliencyRun::new(random, &image, Target::Class(2), method.engine()).unwrap().run().unwrap();
                    let r = rank_correlation(&trained.map, &map.map);
                    (map, Some(r))
                };
                let want = SaliencyOutcome { key, trained: trained.clone(), map, correlation };
                assert_eq!(got, want, "{method:?} at sanity level {sanity}");
            }
        }
    }

    #[test]
    fn the_trained_map_is_reused_for_the_same_image_and_method_only() {
        let (model, image) = setup();
        let key = SaliencyKey { image: 3, method: Method::Gradient, sanity: 0 };
        let first = stepped(SaliencyWork::new(&model, &image, 1, key, None).unwrap());
        // A sanity level on the same image and method starts from the cascade: its first step builds a layer.
        let mut again = SaliencyWork::new(&model, &image, 1, SaliencyKey { sanity: 2, ..key }, Some(&first)).unwrap();
        assert_eq!(again.progress(), 0.5);
        assert!(matches!(again.phase, Phase::Cascade(_)));
        again.step().unwrap();
        let level2 = stepped(again);
        assert_eq!(level2.trained, first.trained);
        // Back at level 0 nothing is left to compute.
        let mut back = SaliencyWork::new(&model, &image, 1, key, Some(&level2)).unwrap();
        assert_eq!(back.step().unwrap(), None);
        assert_eq!(back.finish().unwrap(), first);
        // Another image or method computes afresh.
        let other = SaliencyWork::new(&model, &image, 1, SaliencyKey { image: 4, ..key }, Some(&first)).unwrap();
        assert!(matches!(other.phase, Phase::Trained(_)));
    }

    #[test]
    fn unfinished_or_impossible_work_is_an_error() {
        let (model, image) = setup();
        let key = SaliencyKey { image: 1, method: Method::IntegratedGradients, sanity: 1 };
        let mut work = SaliencyWork::new(&model, &image, 0, key, None).unwrap();
        work.step().unwrap();
        assert!(work.finish().unwrap_err().to_string().contains("not finished"));
        let deep = SaliencyWork::new(&model, &image, 0, SaliencyKey { sanity: 5, ..key }, None);
        assert!(deep.err().unwrap().to_string().contains("no randomisation level 5"));
    }

    #[test]
    fn the_panel_says_when_its_map_is_left_from_an_earlier_request() {
        let a = SaliencyKey { image: 1, method: Method::Gradient, sanity: 0 };
        let b = SaliencyKey { sanity: 1, ..a };
        assert_eq!(shown_note(Some(a), Some(a), false), None);
        assert_eq!(shown_note(Some(a), Some(b), true), None, "the progress bar says it is coming");
        assert!(shown_note(Some(a), Some(b), false).unwrap().contains("cancelled"));
        assert_eq!(shown_note(None, Some(b), false), None);
    }

    #[test]
    fn the_description_shows_completeness_and_correlation() {
        let s = Saliency { side: 2, map: vec![0.5, 0.25, 0.25, 0.0], value: 3.0, baseline_value: Some(2.0) };
        let key = SaliencyKey { image: 1, method: Method::IntegratedGradients, sanity: 1 };
        let o = SaliencyOutcome { key, trained: s.clone(), map: s, correlation: Some(0.123) };
        let text = describe(&o, 41.6);
        assert!(text.contains("should add up to 1.000; they add up to 1.000"), "{text}");
        assert!(text.contains("Rank correlation with the trained model's map: 0.12"), "{text}");
        assert!(text.ends_with("Computed in 42 ms."), "{text}");
    }
}
