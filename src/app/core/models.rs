//! The word-level task models the interventional labs share, with one name each: the attention, patching and
//! ACDC labs offer the same two, and a link's `model=ioi` means the same folder in all of them.

/// A task model shipped under `public/models/{folder}/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskModel {
    /// Three layers trained on indirect object identification (9.3.1, 9.4).
    Ioi,
    /// Two attention-only layers trained on repeated sequences (the attention lab, 9.2.2).
    Induction,
}

/// The files each kind of model folder holds that its loader (`core::load`) fetches, in the order it fetches them;
/// named once here so that `labs::first_files_json` lists what the loaders really ask for.
pub const TASK_FILES: [&str; 4] = ["config.json", "vocab.json", "model.safetensors", "training.json"];
/// A character-level model's (`load_char_model`).
pub const CHAR_FILES: [&str; 4] = ["config.json", "vocab.json", "model.safetensors", "held_out.txt"];
/// The vision model's (`load_vision`).
pub const VISION_FILES: [&str; 4] = ["config.json", "model.safetensors", "samples.bin", "featvis.bin"];

/// The values of a link's `model` key.
pub const TASK_MODELS: &[(&str, TaskModel)] = &[("ioi", TaskModel::Ioi), ("induction", TaskModel::Induction)];

impl TaskModel {
    /// The folder under `models/`.
    pub fn folder(self) -> &'static str {
        match self {
            TaskModel::Ioi => "ioi",
            TaskModel::Induction => "induction",
        }
    }

    /// As a sentence names it while it loads ("Loading the IOI model…").
    pub fn what(self) -> &'static str {
        match self {
            TaskModel::Ioi => "the IOI model",
            TaskModel::Induction => "the induction model",
        }
    }
}

/// What a transformer lab runs: a task model we ship, or the model a student opened in this tab (`#/open`,
/// `core::opened`). A link says `model=own` for the latter, but cannot carry it: the weights never leave the tab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LabModel {
    Task(TaskModel),
    Own,
}

/// The values of a link's `model` key in a lab that also runs an opened model.
pub const LAB_MODELS: &[(&str, LabModel)] = &[
    ("ioi", LabModel::Task(TaskModel::Ioi)),
    ("induction", LabModel::Task(TaskModel::Induction)),
    ("own", LabModel::Own),
];

impl LabModel {
    /// The task model, or `instead` for an opened one.
    pub fn task_or(self, instead: TaskModel) -> TaskModel {
        match self {
            LabModel::Task(t) => t,
            LabModel::Own => instead,
        }
    }
}

/// What a lab says when its link names an opened model (`model=own`) and this tab has none, with what it shows
/// instead.
pub fn own_not_open(instead: TaskModel) -> String {
    own_not_open_showing(instead.what())
}

/// `own_not_open` for a lab whose fallback is not a task model (`what`: "the Moby-Dick model").
pub fn own_not_open_showing(what: &str) -> String {
    format!(
        "This link names a model opened from a computer (model=own). An opened model stays in the tab that opened \
         it and never travels in a link, so this tab has none: open it on the “Open your own model” page \
         (#/open), in one click if you kept it in this browser, then come back. Meanwhile the lab shows {what}."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lab_model_has_its_own_key_and_a_task_model_keeps_its_key() {
        for &(key, m) in LAB_MODELS {
            assert_eq!(LAB_MODELS.iter().filter(|(_, o)| *o == m).count(), 1);
            if let LabModel::Task(t) = m {
                assert_eq!(key, t.folder());
            }
        }
        assert_eq!(LabModel::Own.task_or(TaskModel::Ioi), TaskModel::Ioi);
        assert!(own_not_open(TaskModel::Induction).ends_with("the lab shows the induction model."));
    }

    #[test]
    fn every_model_has_its_own_key_and_its_key_is_its_folder() {
        for &(key, m) in TASK_MODELS {
            assert_eq!(key, m.folder());
            assert_eq!(TASK_MODELS.iter().filter(|(_, o)| *o == m).count(), 1);
        }
    }
}
