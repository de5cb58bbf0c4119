//! Presenter mode's rules, as plain Rust: which keys of a section's query belong to the shell, and the hash of
//! each step. The shell shows it (`shell.rs`); each lab declares its steps (`labs::steps`).
//!
//! A facilitator prepares links such as `#/attention?seq=…&layer=1&head=1&present=1&step=2`: `present=1` opens
//! presenter mode, `step=K` (1-based) names the step shown. Both keys belong to the shell, never to the lab: the
//! shell takes them off before the lab reads its query (so a lab never reports them as unknown settings), and
//! `url::section_hash_with` puts them back on every URL a lab writes (`url::set_shell_keys`), so they stay while
//! the lab is worked.
use super::url::{encode_query, parse_query};

/// The shell's keys in a section's query.
pub const PRESENT_KEY: &str = "present";
pub const STEP_KEY: &str = "step";

/// One step of a lab in presenter mode: a title for the room, and the lab's state as a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub title: &'static str,
    pub query: &'static str,
}

/// Presenter mode as a section's query says it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Presenting {
    pub on: bool,
    /// The step shown, 0-based; `None` when the link names none (the lab as the query leaves it).
    pub step: Option<usize>,
}

impl Presenting {
    /// The shell's keys as they ride along on the lab's URLs (empty when off).
    pub fn keys(self) -> Vec<(String, String)> {
        let mut keys = Vec::new();
        if self.on {
            keys.push((PRESENT_KEY.to_string(), "1".to_string()));
            if let Some(s) = self.step {
                keys.push((STEP_KEY.to_string(), (s + 1).to_string()));
            }
        }
        keys
    }
}

/// Splits a section's query into presenter mode and the lab's own pairs. A step beyond the lab's `n_steps`, or
/// one that is not a number, is dropped (the lab opens as its own keys say); `present` other than `1` is off.
pub fn split(query: &str, n_steps: usize) -> (Presenting, String) {
    let mut presenting = Presenting::default();
    let mut lab = Vec::new();
    for (k, v) in parse_query(query) {
        match k.as_str() {
            PRESENT_KEY => presenting.on = v == "1",
            STEP_KEY => {
                presenting.step = v.parse::<usize>().ok().filter(|&s| (1..=n_steps).contains(&s)).map(|s| s - 1)
            }
            _ => lab.push((k, v)),
        }
    }
    if !presenting.on {
        presenting.step = None;
    }
    (presenting, encode_query(&lab))
}

/// The query the lab opens with: its own keys, or, when a link names a step and nothing else (a facilitator's
/// hand-written `?present=1&step=2`), that step's state.
pub fn lab_query(presenting: Presenting, lab_query: String, steps: &[Step]) -> String {
    match presenting.step {
        Some(k) if lab_query.is_empty() => steps[k].query.to_string(),
        _ => lab_query,
    }
}

/// The hash that shows step `k` (0-based) of section `slug`'s lab in presenter mode.
pub fn step_hash(slug: &str, steps: &[Step], k: usize) -> String {
    let mut pairs = parse_query(steps[k].query);
    pairs.extend(Presenting { on: true, step: Some(k) }.keys());
    format!("#/{slug}?{}", encode_query(&pairs))
}

/// The hash of section `slug` with the lab's `query`, in presenter mode or not (the toggle keeps the lab's state).
pub fn toggle_hash(slug: &str, lab_query: &str, on: bool) -> String {
    let mut pairs = parse_query(lab_query);
    pairs.extend(Presenting { on, step: None }.keys());
    if pairs.is_empty() {
        format!("#/{slug}")
    } else {
        format!("#/{slug}?{}", encode_query(&pairs))
    }
}

/// The step after `delta` from `current` (no step shown yet: the first step forward, nothing back), if any.
pub fn next_step(current: Option<usize>, delta: isize, n_steps: usize) -> Option<usize> {
    let target = match current {
        None if delta > 0 => 0,
        None => return None,
        Some(s) => s as isize + delta,
    };
    (0..n_steps as isize).contains(&target).then_some(target as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: [Step; 2] =
        [Step { title: "A", query: "layer=0&head=1" }, Step { title: "B", query: "layer=1&head=1" }];

    #[test]
    fn the_shell_keys_come_off_the_lab_query() {
        let (p, lab) = split("seq=a+b&present=1&step=2&layer=1", 2);
        assert_eq!(p, Presenting { on: true, step: Some(1) });
        assert_eq!(lab, "seq=a+b&layer=1");
        let (p, lab) = split("seq=a", 2);
        assert_eq!(p, Presenting::default());
        assert_eq!(lab, "seq=a");
    }

    #[test]
    fn a_bad_step_or_flag_is_dropped_not_passed_to_the_lab() {
        assert_eq!(split("present=1&step=9", 2).0, Presenting { on: true, step: None });
        assert_eq!(split("present=1&step=0", 2).0, Presenting { on: true, step: None });
        assert_eq!(split("present=1&step=x", 2), (Presenting { on: true, step: None }, String::new()));
        assert_eq!(split("present=yes&step=1", 2).0, Presenting::default());
    }

    #[test]
    fn step_links_carry_the_lab_state_and_the_shell_keys() {
        assert_eq!(step_hash("attention", &STEPS, 1), "#/attention?layer=1&head=1&present=1&step=2");
        let (p, lab) = split(step_hash("attention", &STEPS, 0).split_once('?').unwrap().1, 2);
        assert_eq!((p.step, lab.as_str()), (Some(0), "layer=0&head=1"));
        assert_eq!(toggle_hash("9.1", "", true), "#/9.1?present=1");
        assert_eq!(toggle_hash("9.2.4", "s=0.7", false), "#/9.2.4?s=0.7");
    }

    #[test]
    fn a_step_named_alone_opens_its_state() {
        let (p, q) = split("present=1&step=2", 2);
        assert_eq!(lab_query(p, q, &STEPS), "layer=1&head=1");
        let (p, q) = split("layer=0&head=0&present=1&step=2", 2);
        assert_eq!(lab_query(p, q, &STEPS), "layer=0&head=0", "the link's own state wins");
        let (p, q) = split("present=1", 2);
        assert_eq!(lab_query(p, q, &STEPS), "");
    }

    #[test]
    fn stepping_stays_within_the_steps() {
        assert_eq!(next_step(None, 1, 2), Some(0));
        assert_eq!(next_step(None, -1, 2), None);
        assert_eq!(next_step(Some(0), 1, 2), Some(1));
        assert_eq!(next_step(Some(1), 1, 2), None);
        assert_eq!(next_step(Some(0), -1, 2), None);
        assert_eq!(next_step(None, 1, 0), None);
    }
}
