//! The student's predictions: which choice they committed to for each exercise (`content::Predict`), kept in
//! the browser's local storage under one key, so nothing leaves the machine. Plain Rust, tested natively;
//! `core::predict` holds the browser side (the stored copy, the controls).
//!
//! A committed prediction is final: the reveal has been seen, so changing it would record hindsight, not a
//! prediction. "Reset my progress" clears them all.
use std::collections::BTreeMap;

use crate::content::{section_predicts, Predict, PREDICTS};

/// The local-storage key.
pub const PROGRESS_KEY: &str = "glassbox.predictions";

/// Committed choices by exercise id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    answers: BTreeMap<String, usize>,
}

impl Progress {
    /// Reads the stored JSON object (`{"id": choice}`). Entries for exercises that no longer exist, or whose
    /// choice is out of range, are dropped; anything that is not such an object reads as no progress (a
    /// tampered or half-written value must not break the page).
    pub fn parse(stored: &str) -> Progress {
        let Ok(raw) = serde_json::from_str::<BTreeMap<String, serde_json::Value>>(stored) else {
            return Progress::default();
        };
        let answers = raw
            .into_iter()
            .filter_map(|(id, v)| {
                let choice = usize::try_from(v.as_u64()?).ok()?;
                let p = PREDICTS.iter().find(|p| p.id == id)?;
                (choice < p.choices.len()).then_some((id, choice))
            })
            .collect();
        Progress { answers }
    }

    /// The JSON stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.answers).expect("a map of strings to numbers serialises")
    }

    /// The choice committed for an exercise.
    pub fn answer(&self, id: &str) -> Option<usize> {
        self.answers.get(id).copied()
    }

    /// Records a choice, unless one is already committed (the first one stands). Returns whether it was new.
    pub fn commit(&mut self, p: &Predict, choice: usize) -> bool {
        if choice >= p.choices.len() || self.answers.contains_key(p.id) {
            return false;
        }
        self.answers.insert(p.id.to_string(), choice);
        true
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// A section's exercises: how many are committed, how many there are, how many were right.
    pub fn section(&self, slug: &str) -> SectionProgress {
        let mut out = SectionProgress::default();
        for p in section_predicts(slug) {
            out.total += 1;
            if let Some(choice) = self.answer(p.id) {
                out.done += 1;
                out.right += usize::from(choice == p.answer);
            }
        }
        out
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SectionProgress {
    pub done: usize,
    pub total: usize,
    pub right: usize,
}

impl SectionProgress {
    /// The navigation's mark, `1/2`, or nothing for a section without exercises.
    pub fn label(self) -> Option<String> {
        (self.total > 0).then(|| format!("{}/{}", self.done, self.total))
    }

    /// The mark's tooltip.
    pub fn title(self) -> String {
        match (self.done, self.total) {
            (_, 1) => format!("{} of 1 prediction made", self.done),
            (0, t) => format!("{t} predictions to make"),
            (d, t) => format!("{d} of {t} predictions made, {} right", self.right),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some_predict() -> &'static Predict {
        PREDICTS.first().expect("the chapter has exercises")
    }

    #[test]
    fn a_commit_round_trips_through_storage_and_the_first_stands() {
        let p = some_predict();
        let mut progress = Progress::default();
        assert!(progress.commit(p, 0));
        assert!(!progress.commit(p, 1), "a committed prediction is final");
        assert!(!progress.commit(p, p.choices.len()), "out of range");
        let back = Progress::parse(&progress.to_json());
        assert_eq!(back, progress);
        assert_eq!(back.answer(p.id), Some(0));
        let s = back.section(p.section);
        assert_eq!((s.done, s.right), (1, usize::from(p.answer == 0)));
        assert!(s.total >= 1);
    }

    #[test]
    fn corrupt_or_stale_storage_reads_as_no_progress() {
        let p = some_predict();
        for bad in ["", "NaN", "[1,2]", "{\"x\": ", "null"] {
            assert!(Progress::parse(bad).is_empty(), "{bad}");
        }
        let stale = format!(
            "{{\"no-such-exercise\": 0, \"{}\": {}, \"{}\": -1}}",
            p.id,
            p.choices.len(),
            PREDICTS.last().unwrap().id
        );
        assert!(Progress::parse(&stale).is_empty(), "{stale}");
        let good = format!("{{\"{}\": 0, \"no-such-exercise\": 0}}", p.id);
        assert_eq!(Progress::parse(&good).answer(p.id), Some(0));
    }

    #[test]
    fn the_navigation_mark() {
        let s = SectionProgress { done: 1, total: 2, right: 1 };
        assert_eq!(s.label().as_deref(), Some("1/2"));
        assert_eq!(s.title(), "1 of 2 predictions made, 1 right");
        assert_eq!(SectionProgress { done: 0, total: 2, right: 0 }.title(), "2 predictions to make");
        assert_eq!(SectionProgress::default().label(), None);
    }
}
