//! The chart components. Each turns its props into marks (plain, in `plot` and `grid`) and hands them to
//! `chart`, the one SVG, which holds them as markup (`svg_markup`, plain and tested natively): one call to the
//! page per chart, however many bars, cells and labels it has.
use std::sync::Arc;

use leptos::prelude::*;

use super::{grid, num, plot, svg_markup, Arrow, Axis, Bar, Heat, Mark, Plot, Rule};
use crate::app::core::export::{arrows_table, bars_table, chart_with_exports, heat_table, lines_table, DataTable};

/// Every attribute value is an `Arc<str>`: a page's static parts are turned into owned views (`into_any`), which
/// makes a `&str` or `String` attribute an `Arc<str>` one, a second Leptos type with its own code. Starting
/// from `Arc<str>` keeps one type, however a chart is placed.
type Str = Arc<str>;

fn s(v: impl Into<Str>) -> Str {
    v.into()
}

fn n(v: f64) -> Str {
    num(v).into()
}

/// The `<svg>` of a chart: its CSS class, size in its own units, test id and accessible name. `natural` also
/// sets its width and height, so it keeps its size instead of filling the panel (CSS may still shrink it).
struct Frame {
    class: String,
    size: (f64, f64),
    natural: bool,
    testid: Option<&'static str>,
    label: String,
}

/// The one SVG every chart is, its marks in order (later ones on top), with its exports and its numbers as a
/// table (`export::chart_with_exports`); the files are named after the test id, else the label.
#[inline(never)]
fn chart(frame: Frame, marks: Vec<Mark>, table: DataTable) -> AnyView {
    let (w, h) = frame.size;
    let (width, height) = if frame.natural { (Some(n(w)), Some(n(h))) } else { (None, None) };
    let what = frame.testid.map(str::to_string).unwrap_or_else(|| frame.label.clone());
    let svg = view! {
        <svg class=s(frame.class) data-testid=frame.testid.map(s) viewBox=s(format!("0 0 {} {}", num(w), num(h)))
            width=width height=height role=s("img") aria-label=s(frame.label) inner_html=svg_markup(&marks)>
        </svg>
    }
    .into_any();
    chart_with_exports(svg, table, what)
}

/// Bars in groups along x (heads, positions, layers, histogram bins): `groups[i]` stand side by side in band i
/// with `pad` of the band free at each end (0 for a histogram). `rules` are horizontal lines (means, a
/// baseline); `shade` is a range of bands shaded behind everything (the selected head, the second half).
#[component]
pub fn BarChart(
    groups: Vec<Vec<Bar>>,
    x: Axis,
    y: Axis,
    /// The SVG's size in its own units; CSS scales it to the panel.
    size: (f64, f64),
    #[prop(into)] label: String,
    #[prop(optional)] rules: Vec<Rule>,
    #[prop(optional_no_strip)] shade: Option<(f64, f64)>,
    #[prop(default = 0.12)] pad: f64,
    #[prop(optional)] class: &'static str,
    #[prop(optional)] testid: Option<&'static str>,
    /// The name of each bar in a group, for the table (by default the y axis' title).
    #[prop(optional)]
    series: Vec<&'static str>,
    /// The chart's numbers, where the bars are not them (a log scale); by default the bars' values.
    #[prop(optional)]
    table: Option<DataTable>,
) -> impl IntoView {
    let table = table.unwrap_or_else(|| bars_table(&label, &x, &y, &groups, &series));
    let plot = Plot::new(size, &x, &y);
    let marks = plot::bars(&plot, (&x, &y), groups, rules, shade, pad);
    chart(Frame { class: format!("chart-svg {class}"), size, natural: false, testid, label }, marks, table)
}

/// Lines over two axes (training curves, loss logs): each is its points in axis units and its series' CSS
/// class. Until some line has two points, `empty` says why there is nothing to see.
#[component]
pub fn LineChart(
    lines: Vec<(Vec<(f64, f64)>, &'static str)>,
    x: Axis,
    y: Axis,
    /// The SVG's size in its own units; CSS scales it to the panel.
    size: (f64, f64),
    #[prop(into)] label: String,
    #[prop(optional)] empty: &'static str,
    #[prop(optional)] class: &'static str,
    #[prop(optional)] testid: Option<&'static str>,
) -> impl IntoView {
    let table = lines_table(&label, &x, &y, &lines);
    let plot = Plot::new(size, &x, &y);
    let marks = plot::lines(&plot, &x, &y, lines, empty);
    chart(Frame { class: format!("chart-svg {class}"), size, natural: false, testid, label }, marks, table)
}

/// A grid of coloured cells at their natural size, `cell` pixels a side (by default `Heat::cell_size`); CSS only
/// shrinks a grid that does not fit. An x title makes the column labels an axis under the grid.
#[component]
pub fn HeatGrid(
    heat: Heat,
    #[prop(into)] label: String,
    #[prop(optional)] x_title: &'static str,
    #[prop(optional)] y_title: &'static str,
    #[prop(optional)] cell: Option<f64>,
    #[prop(optional)] testid: Option<&'static str>,
) -> impl IntoView {
    let cell = cell.unwrap_or_else(|| heat.cell_size());
    let mut table = heat_table(&label, y_title, &heat);
    if !x_title.is_empty() {
        // The columns are the x axis' values: say so in the table's caption.
        table.caption = format!("{label} (columns: {x_title})");
    }
    let (size, marks) = heat.marks(cell, x_title, y_title);
    chart(Frame { class: "chart-svg heat-grid".into(), size, natural: true, testid, label }, marks, table)
}

/// Directions in a plane as arrows from the centre of a square of `size` pixels, scaled so that `extent` data
/// units reach the edge, over the unit circle. Each shaft carries `data-testid=item`, its index as
/// `data-feature`, and its `data-norm` and `data-angle` (degrees) for the tests.
#[component]
pub fn Arrows(
    arrows: Vec<Arrow>,
    extent: f64,
    #[prop(into)] label: String,
    #[prop(default = 340.0)] size: f64,
    testid: &'static str,
    item: &'static str,
) -> impl IntoView {
    let table = arrows_table(&label, &arrows);
    let marks = grid::arrows(arrows, size, extent, item);
    chart(
        Frame { class: "chart-svg arrows".into(), size: (size, size), natural: false, testid: Some(testid), label },
        marks,
        table,
    )
}

/// A chart's key, in the page's own type so it wraps and reads at text size: a swatch (a series' CSS class
/// such as `blue`, or `rule orange` for a dashed line) and a name for each series, then an optional note.
#[component]
pub fn Legend(items: Vec<(&'static str, &'static str)>, #[prop(optional)] note: &'static str) -> impl IntoView {
    let items = items
        .into_iter()
        .map(|(class, name)| {
            view! { <span class=s("legend-item")><span class=s(format!("key {class}"))></span>{name.to_string()}</span> }
        })
        .collect_view();
    let note = (!note.is_empty()).then(|| view! { <span class=s("muted")>{note.to_string()}</span> });
    view! { <p class=s("legend")>{items}{note}</p> }
}
