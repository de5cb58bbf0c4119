//! The offline copy's state, as the navigation shows it: plain Rust, so its rules are tested natively.
//! `service_worker` (browser only) registers the worker (`src/worker/sw.js`) and feeds this with what the
//! worker says.
//!
//! Rules:
//! - The first build a browser saves becomes "ready" once every file is in. A build saved while a saved build
//!   runs the page is an update, and the page only offers to reload (it never switches code by itself).
//! - A failure to save is shown, but the playground keeps working online: nothing here ever blocks a lab.

/// What the service worker tells a page (`sw.js`'s messages), already read out of JavaScript.
#[derive(Clone, Debug, PartialEq)]
pub enum SwMessage {
    /// `done` of `total` files saved, `bytes` of `total_bytes`.
    Precache { done: u32, total: u32, bytes: u64, total_bytes: u64 },
    /// Every file is saved.
    Ready { bytes: u64 },
    /// Saving failed; the worker's words.
    Failed { message: String },
}

/// The offline copy, as the student sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum OfflineState {
    /// Not known yet (the worker is being registered).
    Checking,
    /// Saving a build; `update` when the page already runs an older saved build.
    Saving { update: bool, done: u32, total: u32, bytes: u64, total_bytes: u64 },
    /// This page's build is saved and will open with no network.
    Ready { bytes: u64 },
    /// A newer build is saved and waits for the student's reload.
    UpdateReady,
    /// Saving failed: the site works online, not yet offline.
    Failed(String),
    /// This browser or this address cannot keep an offline copy (no service workers, a plain `http://` address
    /// other than localhost, or a blocked registration).
    Unavailable(String),
}

/// The offline state, and whether a saved build runs this page.
#[derive(Clone, Debug, PartialEq)]
pub struct Offline {
    pub state: OfflineState,
    /// A service worker controls this page: it runs a saved build, so a message from any other worker (one
    /// installing or waiting) is about an update. False on a first visit, until the first save takes over.
    pub controlled: bool,
}

impl Offline {
    pub fn new(controlled: bool) -> Self {
        Offline { state: OfflineState::Checking, controlled }
    }

    /// The state after `msg`, sent by the worker that controls the page (`from_controller`) or by another.
    pub fn apply(&mut self, msg: SwMessage, from_controller: bool) {
        // A waiting update stays offered whatever the active worker says afterwards.
        if self.state == OfflineState::UpdateReady {
            return;
        }
        let update = self.controlled && !from_controller;
        self.state = match msg {
            SwMessage::Precache { done, total, bytes, total_bytes } => {
                OfflineState::Saving { update, done, total, bytes, total_bytes }
            }
            SwMessage::Ready { .. } if update => OfflineState::UpdateReady,
            SwMessage::Ready { bytes } => OfflineState::Ready { bytes },
            SwMessage::Failed { .. } if update && matches!(self.state, OfflineState::Ready { .. }) => {
                // The saved copy still works offline; the browser tries the update again on the next visit.
                return;
            }
            SwMessage::Failed { message } => OfflineState::Failed(message),
        };
    }

    /// The first save has taken over the page (`controllerchange` on a first visit).
    pub fn took_over(&mut self) {
        self.controlled = true;
    }

    /// The registration has a worker waiting (an update saved on an earlier visit).
    pub fn waiting(&mut self) {
        self.state = OfflineState::UpdateReady;
    }
}

impl OfflineState {
    /// A short name for tests and styles (`data-state`).
    pub fn key(&self) -> &'static str {
        match self {
            OfflineState::Checking => "checking",
            OfflineState::Saving { .. } => "saving",
            OfflineState::Ready { .. } => "ready",
            OfflineState::UpdateReady => "update",
            OfflineState::Failed(_) => "failed",
            OfflineState::Unavailable(_) => "unavailable",
        }
    }

    /// The line shown in the navigation.
    pub fn label(&self) -> String {
        match self {
            OfflineState::Checking => "Checking the offline copy…".into(),
            OfflineState::Saving { update, bytes, total_bytes, .. } => {
                let what = if *update { "Saving the new version" } else { "Saving for offline use" };
                format!("{what}… {} of {}", megabytes(*bytes), megabytes(*total_bytes))
            }
            OfflineState::Ready { bytes } => format!("Ready for offline use · {}", megabytes(*bytes)),
            OfflineState::UpdateReady => "A new version is ready.".into(),
            OfflineState::Failed(why) => format!("Not saved for offline use: {why}. It still works online."),
            OfflineState::Unavailable(why) => format!("No offline copy: {why}."),
        }
    }

    /// Saved share in [0, 1] while saving.
    pub fn progress(&self) -> Option<f64> {
        match self {
            OfflineState::Saving { bytes, total_bytes, .. } if *total_bytes > 0 => {
                Some((*bytes as f64 / *total_bytes as f64).clamp(0.0, 1.0))
            }
            _ => None,
        }
    }
}

/// `13.1 MB` (decimal megabytes, as file managers show sizes).
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn precache(bytes: u64) -> SwMessage {
        SwMessage::Precache { done: 1, total: 4, bytes, total_bytes: 4_000_000 }
    }

    #[test]
    fn a_first_visit_saves_then_is_ready() {
        let mut o = Offline::new(false);
        o.apply(precache(1_000_000), false);
        assert_eq!(o.state.key(), "saving");
        assert_eq!(o.state.progress(), Some(0.25));
        assert_eq!(o.state.label(), "Saving for offline use… 1.0 MB of 4.0 MB");
        o.apply(SwMessage::Ready { bytes: 4_000_000 }, false);
        assert_eq!(o.state, OfflineState::Ready { bytes: 4_000_000 });
        assert_eq!(o.state.label(), "Ready for offline use · 4.0 MB");
        // The first save then controls the page; its later answers are about the running build.
        o.took_over();
        o.apply(SwMessage::Ready { bytes: 4_000_000 }, true);
        assert_eq!(o.state.key(), "ready");
    }

    #[test]
    fn a_new_build_is_offered_not_switched_to() {
        let mut o = Offline::new(true);
        o.apply(SwMessage::Ready { bytes: 10 }, true);
        assert_eq!(o.state.key(), "ready");
        o.apply(precache(2_000_000), false);
        assert_eq!(
            o.state,
            OfflineState::Saving { update: true, done: 1, total: 4, bytes: 2_000_000, total_bytes: 4_000_000 }
        );
        assert!(o.state.label().starts_with("Saving the new version"));
        o.apply(SwMessage::Ready { bytes: 10 }, false);
        assert_eq!(o.state, OfflineState::UpdateReady);
        // The active worker answering a late status request does not hide the offer.
        o.apply(SwMessage::Ready { bytes: 10 }, true);
        assert_eq!(o.state, OfflineState::UpdateReady);
    }

    #[test]
    fn a_failed_update_keeps_the_working_copy() {
        let mut o = Offline::new(true);
        o.apply(SwMessage::Ready { bytes: 10 }, true);
        o.apply(SwMessage::Failed { message: "x: the server answered 404".into() }, false);
        assert_eq!(o.state, OfflineState::Ready { bytes: 10 });
    }

    #[test]
    fn a_failed_first_save_says_it_still_works_online() {
        let mut o = Offline::new(false);
        o.apply(precache(5), false);
        o.apply(SwMessage::Failed { message: "models/x.bin: received 3 bytes, the build has 5".into() }, false);
        assert_eq!(o.state.key(), "failed");
        assert!(o.state.label().contains("received 3 bytes"));
        assert!(o.state.label().ends_with("It still works online."));
        assert_eq!(o.state.progress(), None);
    }

    #[test]
    fn a_waiting_worker_is_an_update() {
        let mut o = Offline::new(true);
        o.waiting();
        assert_eq!(o.state.key(), "update");
        assert_eq!(OfflineState::Unavailable("x".into()).label(), "No offline copy: x.");
    }
}
