//! How much work fits in one slice of the main thread (plain Rust, tested natively; `jobs` uses it).
//!
//! A slice runs steps until its time is up. Checking the clock only *after* a step lets the last step overrun
//! the slice by its own length, so a slice of 25 ms with 20 ms steps becomes a 45 ms task, and the frame drawn
//! after it pushes the whole over 50 ms. So a step starts only when the longest step seen so far still fits.
//! The first step of a slice always runs: a slice is at most `max(SLICE_MS, one step)`, and the engine cuts
//! its work (a block of a forward pass, one token) so that one step is well under that.

/// The main thread's budget per slice, in milliseconds: a third of the 50 ms a task may take, leaving room for
/// the frame drawn after it (a lab's chart or heatmap, 10–20 ms) and for the slowdown of a busy machine (on a
/// shared 2-core machine the same slice measured up to twice its quiet length; at 25 ms that made tasks of 55–86
/// ms).
pub const SLICE_MS: f64 = 16.0;

/// The clock of one slice and the longest step of the job so far.
#[derive(Clone, Copy, Debug)]
pub struct SliceBudget {
    start: f64,
    longest: f64,
    steps: usize,
}

impl SliceBudget {
    /// A budget for a job whose slices start at `now` (milliseconds).
    pub fn new(now: f64) -> Self {
        SliceBudget { start: now, longest: 0.0, steps: 0 }
    }

    /// Starts the next slice at `now`; the longest step is remembered across slices.
    pub fn next_slice(&mut self, now: f64) {
        self.start = now;
        self.steps = 0;
    }

    /// Whether another step should start at `now`.
    pub fn fits(&self, now: f64) -> bool {
        self.steps == 0 || now - self.start + self.longest <= SLICE_MS
    }

    /// Records a step that ran from `began` to `now`.
    pub fn ran(&mut self, began: f64, now: f64) {
        self.longest = self.longest.max(now - began);
        self.steps += 1;
    }
}

/// The shortest time between two progress reports that reach the page in one phase of a job, in milliseconds.
/// Each report changes the bar and its line, and the browser then lays out and paints the page again: with
/// GPT-2 small's "Try it" on screen that was 2-4 ms a frame, a fifth of the lens's time when every slice
/// reported. Ten reports a second still move the bar smoothly.
pub const PROGRESS_MS: f64 = 100.0;

/// Whether a report of `phase` at `now` should reach the page, the last one shown being `last` (its phase and
/// time): a new phase at once, the same phase once `PROGRESS_MS` have passed.
pub fn progress_due(last: Option<(&'static str, f64)>, phase: &'static str, now: f64) -> bool {
    match last {
        Some((shown, at)) => shown != phase || now - at >= PROGRESS_MS,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps of the given lengths from t = 0: the slices' lengths as the budget cuts them.
    fn slices(steps: &[f64]) -> Vec<f64> {
        let mut t = 0.0;
        let mut b = SliceBudget::new(t);
        let mut out = Vec::new();
        let mut start = t;
        for &d in steps {
            if !b.fits(t) {
                out.push(t - start);
                t += 16.0; // the browser's turn
                b.next_slice(t);
                start = t;
            }
            let began = t;
            t += d;
            b.ran(began, t);
        }
        out.push(t - start);
        out
    }

    #[test]
    fn small_steps_fill_a_slice_without_passing_it() {
        // 3 ms steps: five fit (15 ms), the sixth would end at 18.
        assert_eq!(slices(&[3.0; 16]), vec![15.0, 15.0, 15.0, 3.0]);
    }

    #[test]
    fn a_long_step_after_short_ones_starts_the_next_slice() {
        // Once a 20 ms step has been seen (longer than the slice), each later step runs in a slice of its own.
        assert_eq!(slices(&[2.0, 2.0, 20.0, 2.0, 2.0, 2.0, 2.0]), vec![24.0, 2.0, 2.0, 2.0, 2.0]);
        // Before one is seen, the first long step can overrun (here 12 + 20 ms); the later ones cannot.
        assert_eq!(slices(&[4.0, 4.0, 4.0, 20.0, 1.0, 20.0, 20.0]), vec![32.0, 1.0, 20.0, 20.0]);
        // A 6 ms step leaves room for one more 6 ms step and not a third.
        assert_eq!(slices(&[6.0, 6.0, 6.0, 6.0]), vec![12.0, 12.0]);
    }

    #[test]
    fn a_step_longer_than_the_slice_still_runs_alone() {
        assert_eq!(slices(&[40.0, 40.0]), vec![40.0, 40.0]);
    }

    #[test]
    fn progress_reaches_the_page_ten_times_a_second_and_at_every_new_phase() {
        assert!(progress_due(None, "reading", 0.0));
        assert!(!progress_due(Some(("reading", 0.0)), "reading", 99.0));
        assert!(progress_due(Some(("reading", 0.0)), "reading", 100.0));
        assert!(progress_due(Some(("reading", 0.0)), "decoding", 1.0), "a new phase shows at once");
        // Reports after every 16 ms slice for about a second: every seventh is shown, 112 ms apart.
        let mut last = None;
        let shown: Vec<f64> = (0..63)
            .map(|i| i as f64 * 16.0)
            .filter(|&now| {
                let due = progress_due(last, "reading", now);
                if due {
                    last = Some(("reading", now));
                }
                due
            })
            .collect();
        assert_eq!(shown, (0..9).map(|i| i as f64 * 112.0).collect::<Vec<_>>());
    }
}
