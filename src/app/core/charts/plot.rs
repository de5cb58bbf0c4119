//! The plotted charts as marks: axes, bars in groups along x, and lines.
use super::{line_path, Axis, Mark, Path, Plot};

/// One bar of a group: its value, its series' CSS class, and its tooltip.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub value: f64,
    pub class: &'static str,
    pub title: String,
}

/// A horizontal line over bands `from..to` at `value` (a mean, a baseline), with its tooltip.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub from: f64,
    pub to: f64,
    pub value: f64,
    pub class: &'static str,
    pub title: String,
}

/// The y ticks as grid lines labelled on the left, the x ticks labelled under the plot, and the titles (the y
/// title turned to read upwards). They come first, so the data lies over the grid.
pub fn axes(plot: &Plot, x: &Axis, y: &Axis) -> Vec<Mark> {
    let (sx, sy) = (plot.x(x), plot.y(y));
    let (x0, x1, base) = (plot.left, plot.width - plot.right, plot.height - plot.bottom);
    let mut marks: Vec<Mark> =
        y.ticks.iter().map(|t| Mark::line("grid", (x0, sy.at(t.at)), (x1, sy.at(t.at)))).collect();
    marks.extend(y.ticks.iter().map(|t| Mark::text("tick", (x0 - 6.0, sy.at(t.at)), "end", "0.35em", t.label.clone())));
    marks
        .extend(x.ticks.iter().map(|t| Mark::text("tick", (sx.at(t.at), base + 18.0), "middle", "0", t.label.clone())));
    if !x.title.is_empty() {
        marks.push(Mark::text("axis-title", ((x0 + x1) / 2.0, plot.height - 7.0), "middle", "0", x.title.clone()));
    }
    if !y.title.is_empty() {
        let at = (16.0, (plot.top + base) / 2.0);
        marks.push(Mark::Text {
            class: "axis-title",
            at,
            anchor: "middle",
            dy: "0",
            turn: true,
            text: y.title.clone(),
        });
    }
    marks
}

/// The x axis line at the bottom of the plot, last so no bar covers it.
fn base(plot: &Plot) -> Mark {
    let y = plot.height - plot.bottom;
    Mark::line("axis", (plot.left, y), (plot.width - plot.right, y))
}

/// Where `k` bars sit side by side in a band of width 1 with `pad` left free at each end: (offset, width) each.
pub fn bar_slots(k: usize, pad: f64) -> Vec<(f64, f64)> {
    let k = k.max(1);
    let usable = 1.0 - 2.0 * pad;
    let gap = if k > 1 { usable * 0.04 } else { 0.0 };
    let w = (usable - gap * (k - 1) as f64) / k as f64;
    (0..k).map(|j| (pad + j as f64 * (w + gap), w)).collect()
}

/// `groups[i]` are the bars of band i, side by side with `pad` of the band free at each end (0 for a histogram,
/// whose bars touch, with a one-pixel seam so neighbours of equal height still read as two). Every bar is
/// drawn, even at zero height, so each has its tooltip. Values outside the y axis are drawn at its ends.
/// `shade` is a range of bands shaded behind the grid.
pub fn bars(
    plot: &Plot,
    (x, y): (&Axis, &Axis),
    groups: Vec<Vec<Bar>>,
    rules: Vec<Rule>,
    shade: Option<(f64, f64)>,
    pad: f64,
) -> Vec<Mark> {
    let (sx, sy) = (plot.x(x), plot.y(y));
    let bottom = plot.height - plot.bottom;
    let at_y = |v: f64| sy.at(if v.is_nan() { y.lo } else { v.clamp(y.lo, y.hi) });
    let seam = if pad == 0.0 { 1.0 } else { 0.0 };
    let mut marks = Vec::new();
    if let Some((a, b)) = shade {
        let rect = (sx.at(a), plot.top, sx.at(b) - sx.at(a), bottom - plot.top);
        marks.push(Mark::Rect { class: "shade".into(), rect, fill: None, title: None });
    }
    marks.extend(axes(plot, x, y));
    for (i, group) in groups.into_iter().enumerate() {
        for ((offset, w), b) in bar_slots(group.len(), pad).into_iter().zip(group) {
            let (left, top) = (sx.at(i as f64 + offset), at_y(b.value));
            let width = (sx.at(i as f64 + offset + w) - left - seam).max(0.5);
            let rect = (left, top, width, bottom - top);
            marks.push(Mark::Rect { class: format!("bar {}", b.class), rect, fill: None, title: Some(b.title) });
        }
    }
    for r in rules.into_iter().filter(|r| r.value.is_finite()) {
        let (from, to) = ((sx.at(r.from), at_y(r.value)), (sx.at(r.to), at_y(r.value)));
        let d = line_path(&[from, to]);
        marks.push(Mark::Path(Path { class: format!("rule {}", r.class), d, title: Some(r.title), ..Path::default() }));
    }
    marks.push(base(plot));
    marks
}

/// Each line is its points in axis units and its series' CSS class; points outside the y axis are drawn at its
/// ends. With fewer than two points in every line, only `empty` is shown, in the middle.
pub fn lines(plot: &Plot, x: &Axis, y: &Axis, lines: Vec<(Vec<(f64, f64)>, &'static str)>, empty: &str) -> Vec<Mark> {
    if lines.iter().all(|(points, _)| points.len() < 2) {
        return vec![Mark::text("empty", (plot.width / 2.0, plot.height / 2.0), "middle", "0", empty.into())];
    }
    let (sx, sy) = (plot.x(x), plot.y(y));
    let mut marks = axes(plot, x, y);
    for (points, class) in lines {
        let px: Vec<(f64, f64)> = points.iter().map(|&(a, b)| (sx.at(a), sy.at(b.clamp(y.lo, y.hi)))).collect();
        marks.push(Mark::path(format!("line {class}"), line_path(&px)));
    }
    marks.push(base(plot));
    marks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rects(marks: &[Mark]) -> Vec<(String, (f64, f64, f64, f64))> {
        marks
            .iter()
            .filter_map(|m| match m {
                Mark::Rect { class, rect, .. } => Some((class.clone(), *rect)),
                _ => None,
            })
            .collect()
    }

    fn texts(marks: &[Mark]) -> Vec<&str> {
        marks
            .iter()
            .filter_map(|m| match m {
                Mark::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// A plot of 100 x 100 with the plot area at x 10..90 and y 10..90.
    fn square() -> Plot {
        Plot { width: 100.0, height: 100.0, left: 10.0, right: 10.0, top: 10.0, bottom: 10.0 }
    }

    #[test]
    fn bars_share_a_band() {
        assert_eq!(bar_slots(1, 0.1), [(0.1, 0.8)]);
        let s = bar_slots(2, 0.1);
        // Two bars and one gap of 4% of the usable 0.8 fill the band between the pads.
        let gap = 0.8 * 0.04;
        assert!((s[0].1 * 2.0 + gap - 0.8).abs() < 1e-12);
        assert!((s[1].0 - (0.1 + s[0].1 + gap)).abs() < 1e-12);
        assert!((s[1].0 + s[1].1 - 0.9).abs() < 1e-12);
    }

    #[test]
    fn bars_stand_on_the_axis_at_their_value() {
        let x = Axis::bands(["a", "b", "c", "d"].map(String::from).to_vec());
        let y = Axis::linear(0.0, 1.0, 2);
        let bar = |v: f64| vec![Bar { value: v, class: "blue", title: String::new() }];
        let rule = Rule { from: 0.0, to: 4.0, value: 0.5, class: "orange dashed", title: "mean".into() };
        let groups = vec![bar(1.0), bar(0.25), bar(2.0), bar(f64::NAN)];
        let marks = bars(&square(), (&x, &y), groups, vec![rule], None, 0.0);
        let r = rects(&marks);
        // Band 0 is x 10..30: the bar fills it but for the seam, from the axis (y 90) up to the top (10).
        assert_eq!(r[0], ("bar blue".to_string(), (10.0, 10.0, 19.0, 80.0)));
        assert_eq!(r[1].1, (30.0, 70.0, 19.0, 20.0));
        // Past the axis: at its top; no value: at its bottom, zero high but still there for its tooltip.
        assert_eq!(r[2].1, (50.0, 10.0, 19.0, 80.0));
        assert_eq!(r[3].1, (70.0, 90.0, 19.0, 0.0));
        assert_eq!(r.len(), 4, "bars only: no frame or background rectangles");
        // A shaded band comes first, behind the grid, from the axis to the top.
        let shaded = bars(&square(), (&x, &y), vec![], vec![], Some((1.0, 3.0)), 0.0);
        assert_eq!(rects(&shaded), [("shade".to_string(), (30.0, 10.0, 40.0, 80.0))]);
        assert!(marks.contains(&Mark::Path(Path {
            class: "rule orange dashed".into(),
            d: "M10,50L90,50".into(),
            title: Some("mean".into()),
            ..Path::default()
        })));
        assert_eq!(texts(&marks), ["0.0", "0.5", "1.0", "a", "b", "c", "d"]);
        // The base line comes last, over the bars.
        assert_eq!(marks.last(), Some(&Mark::line("axis", (10.0, 90.0), (90.0, 90.0))));
    }

    #[test]
    fn lines_map_their_points_and_wait_for_two() {
        let (x, y) = (Axis::linear(0.0, 10.0, 2).titled("step"), Axis::linear(0.0, 1.0, 1));
        let marks = lines(&square(), &x, &y, vec![(vec![(0.0, 0.0), (5.0, 0.5), (10.0, 3.0)], "blue")], "");
        assert!(marks.contains(&Mark::path("line blue", "M10,90L50,50L90,10".into())));
        assert!(texts(&marks).contains(&"step"));
        let marks = lines(&square(), &x, &y, vec![(vec![(0.0, 0.0)], "blue")], "Not yet.");
        assert_eq!(marks, [Mark::text("empty", (50.0, 50.0), "middle", "0", "Not yet.".into())]);
    }
}
