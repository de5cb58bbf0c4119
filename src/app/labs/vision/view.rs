//! The vision lab for 9.2.1: draw a digit (or pick a test image) and watch a small MNIST CNN respond:
//! class probabilities, every layer's feature maps with receptive fields, feature visualization with its
//! regularisers, the top dataset examples of a channel, its circuit and class mix, and saliency maps with
//! the weight-randomisation sanity check. The numbers come from `lens` through the lab's plain modules; these
//! components only show them, one panel each, over the state they share (`Lab`).
mod activations;
mod circuit;
mod dataset;
mod featvis;
mod focus;
mod input;
mod paint;
mod saliency;

use std::sync::Arc;

use leptos::prelude::*;

use super::analysis::{analyse, Analysis, Latest};
use super::features::FvControls;
use super::{check_link, image_source, Method, ModelShape, Source, VisionState};
use crate::app::core::browser::replace_hash_soon;
use crate::app::core::frame::{LabFrame, UrlNotes};
use crate::app::core::jobs::start_when_ready;
use crate::app::core::load::{load_vision, LoadedVision, Model};
use crate::app::core::url::{section_hash_with, UrlState};

/// Each test image's mean activation per channel of one layer (`[image][channel]`).
type LayerMeans = Arc<Vec<Vec<f32>>>;

/// What the panels share: the model, the image under study and what the network made of it, and every
/// control that lives in the URL. Panels own their jobs and results; a job writes only its own panel's
/// signals and these, which outlive it.
#[derive(Clone, Copy)]
struct Lab {
    model: Model<LoadedVision>,
    /// A shipped test image; `None` studies the drawing.
    sample: RwSignal<Option<usize>>,
    /// The drawing, preprocessed like MNIST.
    drawn: RwSignal<Option<Vec<f32>>>,
    /// About the input: an empty pad, a drawing that cannot be read, a link's test image that does not exist.
    input_note: RwSignal<Option<String>>,
    analysis: Memo<Latest<Arc<Analysis>>>,
    /// The conv layer (from 1) and channel in focus, and the focus map's cell under the pointer.
    focus: RwSignal<(usize, usize)>,
    hover: RwSignal<Option<(usize, usize, usize)>>,
    method: RwSignal<Method>,
    sanity: RwSignal<usize>,
    fv: RwSignal<FvControls>,
    /// Per conv layer (`means[l]`), the channel means over the test images once the scan has them.
    means: RwSignal<Vec<Option<LayerMeans>>>,
}

impl Lab {
    fn new(url: &VisionState) -> Self {
        let model = Model::new("the MNIST model", || load_vision("mnist-cnn"));
        let (sample, drawn) = (RwSignal::new(url.sample), RwSignal::new(None::<Vec<f32>>));
        // A new image is analysed once (a Memo); a failure keeps the last good analysis on screen.
        let analysis = Memo::new(move |prev: Option<&Latest<Arc<Analysis>>>| {
            let outcome = model.get().and_then(|m| {
                let image = match image_source(sample.get(), m.samples.len(), drawn.with(Option::is_some))? {
                    Source::Sample(i) => m.samples.image(i),
                    Source::Drawing => drawn.get()?,
                };
                Some(analyse(&m.model, image).map(Arc::new))
            });
            Latest::next(prev, outcome)
        });
        Lab {
            model,
            sample,
            drawn,
            input_note: RwSignal::new(None),
            analysis,
            focus: RwSignal::new(url.focus),
            hover: RwSignal::new(None),
            method: RwSignal::new(url.method),
            sanity: RwSignal::new(url.sanity),
            fv: RwSignal::new(url.fv),
            means: RwSignal::new(Vec::new()),
        }
    }

    fn loaded(self) -> Option<Arc<LoadedVision>> {
        self.model.get()
    }

    /// The last good analysis (tracked).
    fn current(self) -> Option<Arc<Analysis>> {
        self.analysis.with(|a| a.good.clone())
    }

    /// The scanned channel means of conv `l` (tracked).
    fn layer_means(self, l: usize) -> Option<LayerMeans> {
        self.means.with(|m| m.get(l).cloned().flatten())
    }

    /// The state as the URL keeps it (tracked).
    fn state(self) -> VisionState {
        VisionState {
            sample: self.sample.get(),
            focus: self.focus.get(),
            method: self.method.get(),
            sanity: self.sanity.get(),
            fv: self.fv.get(),
        }
    }

    /// Once the model is there, what the link names and the model lacks falls back to its default.
    fn check_link(self, notes: UrlNotes) {
        let Some(m) = self.model.get_untracked() else { return };
        let cfg = &m.model.cfg;
        let shape = ModelShape { samples: m.samples.len(), channels: cfg.channels.clone(), classes: cfg.num_classes };
        let checked = check_link(&self.state_untracked(), &shape);
        // Only what changed: setting the image again would analyse it again.
        fn fix<T: PartialEq + Send + Sync + 'static>(signal: RwSignal<T>, value: T) {
            if signal.with_untracked(|v| *v != value) {
                signal.set(value);
            }
        }
        let s = checked.state;
        fix(self.sample, s.sample);
        fix(self.focus, s.focus);
        fix(self.sanity, s.sanity);
        fix(self.fv, s.fv);
        checked.notes.into_iter().for_each(|n| notes.add(n));
        if checked.input_note.is_some() {
            self.input_note.set(checked.input_note);
        }
    }

    fn state_untracked(self) -> VisionState {
        untrack(move || self.state())
    }
}

#[component]
pub fn VisionLab(query: Vec<(String, String)>) -> impl IntoView {
    let (url, problems) = VisionState::from_query(&query);
    let notes = UrlNotes::new(&problems);
    let lab = Lab::new(&url);
    start_when_ready(move || lab.model.get().is_some(), move || lab.check_link(notes));
    // The URL follows every control, once the model is there to check them.
    Effect::new(move |_| {
        let state = lab.state();
        if lab.model.get().is_some() {
            replace_hash_soon(&section_hash_with("9.2.1", &state.to_query()));
        }
    });

    view! {
        <LabFrame notes=notes model="mnist-cnn">
        <div class="vision-lab" data-testid="vision-lab" class:unloaded=move || lab.loaded().is_none()>
            {lab.model.status()}
            <div class="lab-body">
            <span class="lab-status" data-testid="lab-status" data-rev=move || lab.analysis.with(|a| a.rev)></span>
            <div class="vis-top">
                <input::InputPanel lab=lab />
                <input::SeenPanel lab=lab />
            </div>
            <activations::ActivationsPanel lab=lab />
            <focus::FocusPanel lab=lab />
            <saliency::SaliencyPanel lab=lab />
            </div>
        </div>
        </LabFrame>
    }
}
