//! Charts drawn with plotters into SVG strings (no canvas state to manage, crisp on a projector).
use plotters::prelude::*;

use crate::lens::methods::induction::HeadScores;

/// A bar series of the head-scores chart: its colour and the score it shows.
type Series = (RGBColor, fn(&HeadScores) -> f32);

pub const BLUE: RGBColor = RGBColor(37, 99, 235);
pub const ORANGE: RGBColor = RGBColor(217, 119, 6);
pub const PURPLE: RGBColor = RGBColor(124, 58, 237);
const GRID: RGBColor = RGBColor(203, 213, 225);
const INK: RGBColor = RGBColor(30, 41, 59);

fn font(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&INK)
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A chart with described axes on `root`, shared by the loss and training-curve charts. `x_label` formats the
/// x tick labels.
fn described_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    (x_desc, y_desc): (&str, &str),
    x_label: &dyn Fn(&f64) -> String,
) -> Chart<'a, 'b> {
    let mut chart = ChartBuilder::on(root)
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(x, y)
        .expect("chart");
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(GRID.mix(0.4))
        .bold_line_style(GRID)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(font(13))
        .x_label_style(font(12))
        .y_label_style(font(12))
        .x_label_formatter(x_label)
        .draw()
        .expect("mesh");
    chart
}

/// Grouped bars: for every head, its previous-token, induction and duplicate-token scores.
pub fn head_scores_svg(scores: &[Vec<HeadScores>], selected: (usize, usize), size: (u32, u32)) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        let heads: Vec<(usize, usize, HeadScores)> = scores
            .iter()
            .enumerate()
            .flat_map(|(l, row)| row.iter().enumerate().map(move |(h, s)| (l, h, *s)))
            .collect();
        let n = heads.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(36)
            .build_cartesian_2d(0f64..n, 0f64..1f64)
            .expect("chart");
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(GRID.mix(0.4))
            .bold_line_style(GRID)
            .y_labels(5)
            .y_label_style(font(13))
            .x_labels(heads.len())
            .x_label_style(font(13))
            .x_label_formatter(&|x| {
                let i = (*x - 0.5).round() as usize;
                heads
                    .get(i)
                    .filter(|_| (x.fract() - 0.5).abs() < 1e-6)
                    .map(|(l, h, _)| format!("L{l}H{h}"))
                    .unwrap_or_default()
            })
            .draw()
            .expect("mesh");
        // Shade the selected head.
        if let Some(i) = heads.iter().position(|(l, h, _)| (*l, *h) == selected) {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(i as f64, 0.0), (i as f64 + 1.0, 1.0)],
                    RGBColor(241, 245, 249).filled(),
                )))
                .expect("shade");
        }
        let series: [Series; 3] =
            [(BLUE, |s| s.previous_token), (ORANGE, |s| s.induction), (PURPLE, |s| s.duplicate_token)];
        for (j, (color, get)) in series.into_iter().enumerate() {
            chart
                .draw_series(heads.iter().enumerate().map(|(i, (_, _, s))| {
                    let x0 = i as f64 + 0.12 + j as f64 * 0.26;
                    Rectangle::new([(x0, 0.0), (x0 + 0.24, get(s).clamp(0.0, 1.0) as f64)], color.filled())
                }))
                .expect("bars");
        }
        root.present().expect("present");
    }
    out
}

/// Per-position loss as bars, with the second half shaded, and the mean of each half as a line.
pub fn loss_svg(loss: &[f32], half: usize, halves: Option<(f32, f32)>, size: (u32, u32)) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        let n = loss.len().max(1) as f64;
        let ymax = loss.iter().cloned().fold(1.0f32, f32::max) as f64 * 1.08;
        let mut chart =
            described_chart(&root, 0f64..n, 0f64..ymax, ("position of the predicted token", "loss (nats)"), &|x| {
                format!("{}", *x as usize + 1)
            });
        if half > 0 && (half as f64) < n {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(half as f64, 0.0), (n, ymax)],
                    RGBColor(255, 247, 237).filled(),
                )))
                .expect("shade");
        }
        chart
            .draw_series(loss.iter().enumerate().map(|(i, &l)| {
                let color = if half > 0 && i >= half { ORANGE } else { BLUE };
                Rectangle::new([(i as f64 + 0.1, 0.0), (i as f64 + 0.9, l.max(0.0) as f64)], color.filled())
            }))
            .expect("bars");
        if let Some((a, b)) = halves {
            let style = ShapeStyle { color: INK.to_rgba(), filled: false, stroke_width: 2 };
            chart
                .draw_series(std::iter::once(PathElement::new(vec![(1.0, a as f64), (half as f64, a as f64)], style)))
                .expect("mean");
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(half as f64 + 1.0, b as f64), (n, b as f64)],
                    style,
                )))
                .expect("mean");
        }
        root.present().expect("present");
    }
    out
}

/// The training curve (loss against step).
pub fn curve_svg(curve: &[(f64, f64)], size: (u32, u32)) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        let xmax = curve.last().map(|c| c.0).unwrap_or(1.0).max(1.0);
        let ymax = curve.iter().map(|c| c.1).fold(0.1, f64::max) * 1.05;
        let mut chart =
            described_chart(&root, 0f64..xmax, 0f64..ymax, ("training step", "loss on repeated tokens"), &|x| {
                format!("{x:.0}")
            });
        chart.draw_series(LineSeries::new(curve.iter().copied(), BLUE.stroke_width(2))).expect("line");
        root.present().expect("present");
    }
    out
}
