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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_has_its_own_key_and_its_key_is_its_folder() {
        for &(key, m) in TASK_MODELS {
            assert_eq!(key, m.folder());
            assert_eq!(TASK_MODELS.iter().filter(|(_, o)| *o == m).count(), 1);
        }
    }
}
